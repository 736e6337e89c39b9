//! Per-object retry backoff. kube-runtime backs off its watches but not failing reconciles: each
//! failing object waits exponentially longer, independently of the others, and starts afresh after
//! a success.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use dashmap::DashMap;

/// Consecutive failures per object (keyed by controller and object).
#[derive(Debug, Default)]
pub struct Backoffs {
    failures: DashMap<String, usize>,
}

impl Backoffs {
    /// The delay before retrying `key` after one more failure.
    pub fn next_delay(&self, key: String) -> Duration {
        let mut failures = self.failures.entry(key).or_insert(0);
        let attempt = *failures;
        *failures += 1;
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(300))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt)
            .unwrap_or(Duration::from_secs(300))
    }

    /// Forgets the failures of `key` after it reconciled successfully.
    pub fn reset(&self, key: &str) {
        self.failures.remove(key);
    }

    /// How many objects wait for a retry after a failure.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_per_object_and_reset_on_success() {
        let backoffs = Backoffs::default();
        let first = backoffs.next_delay("a".into());
        let _ = backoffs.next_delay("a".into());
        let third = backoffs.next_delay("a".into());
        assert!(third > first, "{third:?} > {first:?}");
        assert!(backoffs.next_delay("b".into()) < Duration::from_secs(2), "other objects are not slowed");
        assert_eq!(backoffs.len(), 2);
        backoffs.reset("a");
        assert_eq!(backoffs.len(), 1);
        assert!(backoffs.next_delay("a".into()) < Duration::from_secs(2));
    }
}
