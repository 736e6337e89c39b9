//! Interned values: one shared copy of each distinct value in use, for what many cached objects
//! and metric series repeat (a namespace, a cluster's name, a component's labels).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// The process-wide pool of texts: the caches' records and the metrics' labels share it.
static TEXTS: LazyLock<Pool<str>> = LazyLock::new(Pool::default);

/// The one shared copy of `text`.
pub fn text(text: &str) -> Arc<str> {
    TEXTS.intern(text)
}

/// Interned values: one `Arc` per distinct value. Values no longer used by anything but the pool
/// go when the pool has doubled since it last looked, so that it stays within twice what is in
/// use and each insertion costs O(1) amortised.
pub struct Pool<T: ?Sized> {
    inner: Mutex<PoolInner<T>>,
}

struct PoolInner<T: ?Sized> {
    values: HashSet<Arc<T>>,
    /// How many values were in use at the last clean-up.
    in_use: usize,
}

/// The pool's size below which it never cleans up.
const POOL_FLOOR: usize = 256;

impl<T: ?Sized> Default for Pool<T> {
    fn default() -> Self {
        Pool { inner: Mutex::new(PoolInner { values: HashSet::new(), in_use: 0 }) }
    }
}

impl<T: Hash + Eq + ?Sized> Pool<T> {
    /// The pool's copy of `value` (a `T`, or a `&str` for a pool of `str`).
    pub fn intern<V: Borrow<T> + Into<Arc<T>>>(&self, value: V) -> Arc<T> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = inner.values.get(value.borrow()) {
            return found.clone();
        }
        if inner.values.len() >= 2 * inner.in_use.max(POOL_FLOOR) {
            inner.values.retain(|v| Arc::strong_count(v) > 1);
            inner.in_use = inner.values.len();
        }
        let interned: Arc<T> = value.into();
        inner.values.insert(interned.clone());
        interned
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_what_is_in_use_and_lets_the_rest_go() {
        let pool = Pool::default();
        let kept: Vec<Arc<usize>> = (0..POOL_FLOOR).map(|i| pool.intern(i)).collect();
        assert!(Arc::ptr_eq(&pool.intern(0), &kept[0]), "an equal value is the same copy");
        for i in POOL_FLOOR..4 * POOL_FLOOR {
            drop(pool.intern(i));
        }
        assert!(pool.len() <= 2 * POOL_FLOOR + 1, "unused values went: {}", pool.len());
        assert!(Arc::ptr_eq(&pool.intern(1), &kept[1]), "values in use stay");
    }
}
