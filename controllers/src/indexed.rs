//! A watch's store with its objects grouped by namespace.
//!
//! kube's reflector store answers "which objects ..." by visiting every object it holds. The
//! mappers ask at every watch event and the sweep at every pass, always within one namespace
//! (owner references never cross one): at 1,000 clusters each question visited 6,000
//! PrismPatterns or thousands of children, and these visits were half of the operator's CPU
//! while it converged. The index lists, per namespace, the very `Arc`s the store holds: no
//! object is kept twice.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::{Arc, PoisonError, RwLock};

use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher;

/// The objects of each namespace ("" for cluster-scoped ones), sorted by name: an install that
/// keeps thousands of objects in one namespace finds each in log n steps.
type ByNamespace<S> = HashMap<Box<str>, Vec<Arc<S>>>;

/// A reflector store and its objects by namespace. It reads as the store it wraps.
pub struct Indexed<S: Lookup + Clone + 'static>
where
    S::DynamicType: Eq + Hash + Clone,
{
    store: Store<S>,
    by_namespace: Arc<RwLock<ByNamespace<S>>>,
}

// By hand: a derive would ask `S: Clone` of the handle's parts, which `Arc` does not need.
impl<S: Lookup + Clone + 'static> Clone for Indexed<S>
where
    S::DynamicType: Eq + Hash + Clone,
{
    fn clone(&self) -> Self {
        Indexed { store: self.store.clone(), by_namespace: self.by_namespace.clone() }
    }
}

impl<S: Lookup + Clone + 'static> Indexed<S>
where
    S::DynamicType: Eq + Hash + Clone,
{
    /// The store itself (what kube-runtime's controller takes).
    pub fn store(&self) -> &Store<S> {
        &self.store
    }

    /// The objects of namespace `ns` that `keep` keeps.
    pub fn in_namespace(&self, ns: &str, keep: impl Fn(&S) -> bool) -> Vec<Arc<S>> {
        let by_namespace = self.by_namespace.read().unwrap_or_else(PoisonError::into_inner);
        let objects = by_namespace.get(ns).map(Vec::as_slice).unwrap_or_default();
        objects.iter().filter(|object| keep(object)).cloned().collect()
    }
}

impl<S: Lookup + Clone + 'static> Deref for Indexed<S>
where
    S::DynamicType: Eq + Hash + Clone,
{
    type Target = Store<S>;

    fn deref(&self) -> &Store<S> {
        &self.store
    }
}

/// Fills an [`Indexed`] store from watch events, as a reflector's writer does.
pub struct IndexWriter<S: Lookup + Clone + 'static>
where
    S::DynamicType: Eq + Hash + Clone,
{
    writer: reflector::store::Writer<S>,
    reader: Indexed<S>,
    dyntype: S::DynamicType,
}

/// An empty indexed store and its writer.
pub fn indexed<S>(dyntype: S::DynamicType) -> (Indexed<S>, IndexWriter<S>)
where
    S: Lookup + Clone + 'static,
    S::DynamicType: Eq + Hash + Clone,
{
    let writer = reflector::store::Writer::new(dyntype.clone());
    let reader = Indexed { store: writer.as_reader(), by_namespace: Arc::default() };
    (reader.clone(), IndexWriter { writer, reader, dyntype })
}

impl<S: Lookup + Clone + 'static> IndexWriter<S>
where
    S::DynamicType: Eq + Hash + Clone,
{
    /// Applies one watch event to the store, then to the index.
    pub fn apply(&mut self, event: &watcher::Event<S>) {
        self.writer.apply_watcher_event(event);
        match event {
            watcher::Event::Apply(object) => self.put(object),
            watcher::Event::Delete(object) => self.remove(object),
            // A relist fills the store's buffer and swaps it in at its end: so does the index.
            watcher::Event::InitDone => self.rebuild(),
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    /// Lists the store's own copy of `object` in its namespace, in place of an older one.
    fn put(&self, object: &S) {
        let Some(stored) = self.reader.store.get(&object.to_object_ref(self.dyntype.clone())) else { return };
        let mut by_namespace = self.reader.by_namespace.write().unwrap_or_else(PoisonError::into_inner);
        let objects = by_namespace.entry(namespace_of(object).into()).or_default();
        match objects.binary_search_by(|listed| listed.name().cmp(&object.name())) {
            Ok(found) => objects[found] = stored,
            Err(place) => objects.insert(place, stored),
        }
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

    fn rebuild(&self) {
        let mut fresh = ByNamespace::<S>::new();
        for object in self.reader.store.state() {
            fresh.entry(namespace_of(object.as_ref()).into()).or_default().push(object);
        }
        for objects in fresh.values_mut() {
            objects.sort_by(|a, b| a.name().cmp(&b.name()));
        }
        *self.reader.by_namespace.write().unwrap_or_else(PoisonError::into_inner) = fresh;
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
        let (store, mut writer) = indexed::<ConfigMap>(());
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
    fn the_index_holds_the_stores_own_copies() {
        let (store, mut writer) = indexed::<ConfigMap>(());
        writer.apply(&watcher::Event::Apply(config_map("a", "one", "1")));
        let listed = store.in_namespace("a", |_| true);
        let stored = store.state();
        assert!(Arc::ptr_eq(&listed[0], &stored[0]));
    }
}
