//! A watch's cache: its objects grouped by namespace and sorted by name.
//!
//! kube's reflector store answers "which objects ..." by visiting every object it holds. The
//! mappers ask at every watch event and the sweep at every pass, always within one namespace
//! (owner references never cross one): at 1,000 clusters each question visited 6,000
//! PrismPatterns or thousands of children, and these visits were half of the operator's CPU
//! while it converged. The index answers them from one namespace's objects.
//!
//! The index is the whole cache: no kube store is kept beside it, not even for the kinds a
//! controller reconciles (the work queue reads its objects here, see `runner`). A store's table
//! slot and key cost about 0.2 KB per object (a key of four strings, a table kept at most seven
//! eighths full): 10 KiB per prism-local cluster for the children (heaptrack, 300 clusters), and
//! 1.6 KiB for the custom resources.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::Notify;

use kube::runtime::reflector::Lookup;
use kube::runtime::watcher;

/// The objects of each namespace ("" for cluster-scoped ones), sorted by name: an install that
/// keeps thousands of objects in one namespace finds each in log n steps.
type ByNamespace<S> = HashMap<Box<str>, Vec<Arc<S>>>;

/// A watch's objects by namespace.
pub struct Indexed<S: Lookup + Clone + 'static>
where
    S::DynamicType: Eq + Hash + Clone,
{
    by_namespace: Arc<RwLock<ByNamespace<S>>>,
    listed: Arc<Listed>,
}

/// Whether a watch has listed its objects once, and who waits for it.
#[derive(Debug, Default)]
struct Listed {
    once: AtomicBool,
    waiting: Notify,
}

// By hand: a derive would ask `S: Clone` of the handle's parts, which `Arc` does not need.
impl<S: Lookup + Clone + 'static> Clone for Indexed<S>
where
    S::DynamicType: Eq + Hash + Clone,
{
    fn clone(&self) -> Self {
        Indexed { by_namespace: self.by_namespace.clone(), listed: self.listed.clone() }
    }
}

impl<S: Lookup + Clone + 'static> Indexed<S>
where
    S::DynamicType: Eq + Hash + Clone,
{
    /// The object `name` in namespace `ns` ("" for a cluster-scoped one), if seen.
    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<S>> {
        let by_namespace = self.by_namespace.read().unwrap_or_else(PoisonError::into_inner);
        let objects = by_namespace.get(ns)?;
        let found = objects.binary_search_by(|listed| listed.name().as_deref().cmp(&Some(name))).ok()?;
        Some(objects[found].clone())
    }

    /// The objects of namespace `ns` that `keep` keeps.
    pub fn in_namespace(&self, ns: &str, keep: impl Fn(&S) -> bool) -> Vec<Arc<S>> {
        let by_namespace = self.by_namespace.read().unwrap_or_else(PoisonError::into_inner);
        let objects = by_namespace.get(ns).map(Vec::as_slice).unwrap_or_default();
        objects.iter().filter(|object| keep(object)).cloned().collect()
    }

    /// Every object.
    pub fn state(&self) -> Vec<Arc<S>> {
        self.state_filter(|_| true)
    }

    /// The objects of every namespace that `keep` keeps.
    pub fn state_filter(&self, keep: impl Fn(&S) -> bool) -> Vec<Arc<S>> {
        let by_namespace = self.by_namespace.read().unwrap_or_else(PoisonError::into_inner);
        by_namespace.values().flatten().filter(|object| keep(object)).cloned().collect()
    }

    /// An object of any namespace that `wanted` accepts.
    pub fn find(&self, wanted: impl Fn(&S) -> bool) -> Option<Arc<S>> {
        let by_namespace = self.by_namespace.read().unwrap_or_else(PoisonError::into_inner);
        by_namespace.values().flatten().find(|object| wanted(object)).cloned()
    }

    /// Whether the watch has listed its objects (until then, an object not seen may exist).
    pub fn listed(&self) -> bool {
        self.listed.once.load(Ordering::Acquire)
    }

    /// Completes once the watch has listed its objects.
    pub async fn wait_listed(&self) {
        loop {
            // Registered before the check, so that a list ending in between still wakes it.
            let listed = self.listed.waiting.notified();
            if self.listed() {
                return;
            }
            listed.await;
        }
    }
}

/// Fills an [`Indexed`] cache from watch events, as a reflector's writer does.
pub struct IndexWriter<S: Lookup + Clone + 'static>
where
    S::DynamicType: Eq + Hash + Clone,
{
    reader: Indexed<S>,
    /// The objects of a relist under way, which replace the index at its end.
    relisted: ByNamespace<S>,
}

/// An empty cache and its writer.
pub fn indexed<S>() -> (Indexed<S>, IndexWriter<S>)
where
    S: Lookup + Clone + 'static,
    S::DynamicType: Eq + Hash + Clone,
{
    let reader = Indexed { by_namespace: Arc::default(), listed: Arc::default() };
    (reader.clone(), IndexWriter { reader, relisted: ByNamespace::new() })
}

impl<S: Lookup + Clone + 'static> IndexWriter<S>
where
    S::DynamicType: Eq + Hash + Clone,
{
    /// Applies one watch event to the index.
    pub fn apply(&mut self, event: &watcher::Event<S>) {
        match event {
            watcher::Event::Apply(object) => self.put(object),
            watcher::Event::Delete(object) => self.remove(object),
            // A relist fills a buffer and swaps it in at its end, as kube's store does.
            watcher::Event::Init => self.relisted = ByNamespace::new(),
            watcher::Event::InitApply(object) => insert(&mut self.relisted, Arc::new(object.clone())),
            watcher::Event::InitDone => {
                self.swap_in_relist();
                self.reader.listed.once.store(true, Ordering::Release);
                self.reader.listed.waiting.notify_waiters();
            }
        }
    }

    /// Lists `object` in its namespace, in place of an older copy.
    fn put(&self, object: &S) {
        let kept = Arc::new(object.clone());
        insert(&mut self.reader.by_namespace.write().unwrap_or_else(PoisonError::into_inner), kept);
    }

    fn remove(&self, object: &S) {
        let mut by_namespace = self.reader.by_namespace.write().unwrap_or_else(PoisonError::into_inner);
        let ns = namespace_of(object);
        if let Some(objects) = by_namespace.get_mut(ns.as_ref()) {
            if let Ok(found) = objects.binary_search_by(|listed| listed.name().cmp(&object.name())) {
                objects.remove(found);
            }
            if objects.is_empty() {
                by_namespace.remove(ns.as_ref());
            }
        }
    }

    /// Replaces the index with the relist's objects.
    fn swap_in_relist(&mut self) {
        let mut fresh = std::mem::take(&mut self.relisted);
        for objects in fresh.values_mut() {
            objects.shrink_to_fit();
        }
        *self.reader.by_namespace.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }
}

/// Lists `object` in its namespace by name, in place of a copy listed before.
fn insert<S: Lookup>(by_namespace: &mut ByNamespace<S>, object: Arc<S>) {
    let objects = by_namespace.entry(namespace_of(object.as_ref()).into()).or_default();
    match objects.binary_search_by(|listed| listed.name().cmp(&object.name())) {
        Ok(found) => objects[found] = object,
        Err(place) => objects.insert(place, object),
    }
}

fn namespace_of<S: Lookup>(object: &S) -> Cow<'_, str> {
    object.namespace().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn config_map(ns: &str, name: &str, data: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..ObjectMeta::default() },
            data: Some([("k".to_string(), data.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    fn names(store: &Indexed<ConfigMap>, ns: &str) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = store
            .in_namespace(ns, |_| true)
            .iter()
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap_or_default(),
                    c.data.as_ref().map(|d| d["k"].clone()).unwrap_or_default(),
                )
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn the_index_follows_applies_deletes_and_relists() {
        let (store, mut writer) = indexed::<ConfigMap>();
        writer.apply(&watcher::Event::Apply(config_map("a", "two", "2")));
        writer.apply(&watcher::Event::Apply(config_map("a", "one", "1")));
        writer.apply(&watcher::Event::Apply(config_map("b", "one", "1")));
        writer.apply(&watcher::Event::Apply(config_map("a", "one", "1b")));
        assert_eq!(names(&store, "a"), [("one".into(), "1b".into()), ("two".into(), "2".into())]);
        let in_a: Vec<Option<String>> =
            store.in_namespace("a", |_| true).iter().map(|c| c.metadata.name.clone()).collect();
        assert_eq!(in_a, [Some("one".to_string()), Some("two".to_string())], "by name, whatever the order of events");
        writer.apply(&watcher::Event::Delete(config_map("a", "two", "2")));
        assert_eq!(names(&store, "a"), [("one".to_string(), "1b".to_string())]);
        assert!(store.in_namespace("a", |c| c.metadata.name.as_deref() == Some("two")).is_empty());

        // A relist replaces everything at its end, as the store does.
        writer.apply(&watcher::Event::Init);
        writer.apply(&watcher::Event::InitApply(config_map("c", "three", "3")));
        assert_eq!(names(&store, "b").len(), 1, "until the relist ends, the old state stands");
        writer.apply(&watcher::Event::InitDone);
        assert!(names(&store, "a").is_empty() && names(&store, "b").is_empty());
        assert_eq!(names(&store, "c"), [("three".to_string(), "3".to_string())]);
        assert_eq!(store.state().len(), 1);
    }

    #[test]
    fn an_object_is_found_by_namespace_and_name_once_listed() {
        let (store, mut writer) = indexed::<ConfigMap>();
        writer.apply(&watcher::Event::Apply(config_map("a", "one", "1")));
        assert!(!store.listed(), "an apply before the first list proves nothing about the rest");
        writer.apply(&watcher::Event::Init);
        for name in ["one", "three", "two"] {
            writer.apply(&watcher::Event::InitApply(config_map("a", name, name)));
        }
        writer.apply(&watcher::Event::InitDone);
        assert!(store.listed());
        let found = store.get("a", "two").and_then(|c| c.data.clone()).map(|d| d["k"].clone());
        assert_eq!(found.as_deref(), Some("two"));
        assert!(store.get("a", "four").is_none() && store.get("b", "one").is_none());
        assert!(store.get("a", "one").is_some());
    }

    #[tokio::test]
    async fn a_wait_for_the_first_list_ends_when_it_does() {
        let (store, mut writer) = indexed::<ConfigMap>();
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.wait_listed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        writer.apply(&watcher::Event::Init);
        writer.apply(&watcher::Event::InitDone);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken by the list")
            .expect("no panic");
        store.wait_listed().await;
    }
}
