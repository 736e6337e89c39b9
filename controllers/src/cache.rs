//! A controller's children as last seen by its label-scoped watches, one store per kind: a
//! reconcile reads a child here instead of GETting it at every pass (a pass over a cluster once
//! cost a GET per child: 20 and more, throttled by the client's rate limit). Only the operator's
//! own children are cached (the watches select them by label), not every object of their kinds.
//!
//! A hit may be stale (a change not seen yet); the change's event then triggers another
//! reconcile, which sees it. A miss means "absent" only once the store has listed its objects,
//! for an object its selector would select, and unless this controller wrote that object and the
//! watch has not brought it back yet; any other miss is read from the API server.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dashmap::DashSet;
use futures::FutureExt;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;

use crate::watches::{Watched, cached_changes};

/// What the cache knows of one object.
pub enum Lookup<K> {
    /// Seen, as it was last seen.
    Seen(Arc<K>),
    /// Not there: the store has listed, would hold it, and is not waiting for a write of ours.
    Absent,
    /// The cache cannot tell: read it.
    Unknown,
}

/// One kind's store and the selector of the watch that fills it.
struct Cached<K: Watched> {
    store: Store<K>,
    selector: Selector,
}

#[derive(Clone, Default)]
pub struct Children {
    stores: Arc<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    /// Objects this controller wrote whose watch event has not been seen yet (kind, namespace,
    /// name): a miss of one of them is a store lagging behind, not an absence.
    written: Arc<DashSet<(TypeId, String, String)>>,
}

impl Children {
    /// The cached object `name` in `ns`, if this controller caches `K` and has seen it.
    pub fn get<K: Watched>(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.cached::<K>()?.store.get(&ObjectRef::new(name).within(ns))
    }

    /// What the cache knows of the object `name` in `ns` that would carry `labels`.
    pub fn lookup<K: Watched>(&self, ns: &str, name: &str, labels: &BTreeMap<String, String>) -> Lookup<K> {
        let Some(cached) = self.cached::<K>() else { return Lookup::Unknown };
        if let Some(seen) = cached.store.get(&ObjectRef::new(name).within(ns)) {
            // Every apply passes here: build the key only when there is a note to clear.
            if !self.written.is_empty() {
                self.written.remove(&key::<K>(ns, name));
            }
            return Lookup::Seen(seen);
        }
        let trusted = listed(&cached.store) && cached.selector.matches(labels);
        if trusted && !self.written.contains(&key::<K>(ns, name)) { Lookup::Absent } else { Lookup::Unknown }
    }

    /// Notes that this controller just wrote the object: until its watch brings it, a miss is not
    /// an absence.
    pub fn wrote<K: Watched>(&self, ns: &str, name: &str) {
        if self.cached::<K>().is_some() {
            self.written.insert(key::<K>(ns, name));
        }
    }

    /// Notes that this controller deleted the object: no write of ours is in flight any more.
    pub fn deleted<K: Watched>(&self, ns: &str, name: &str) {
        self.written.remove(&key::<K>(ns, name));
    }

    /// Whether a child this controller controls exists, as far as its cache knows: `None` when
    /// `K` is not cached or its first list is not in yet. (Its watches select every child it
    /// controls.)
    pub fn holds<K: Watched>(&self, ns: &str, name: &str) -> Option<bool> {
        let cached = self.cached::<K>().filter(|c| listed(&c.store))?;
        Some(cached.store.get(&ObjectRef::new(name).within(ns)).is_some())
    }

    /// Every cached `K` object, once the first list is in.
    pub fn all<K: Watched>(&self) -> Option<Vec<Arc<K>>> {
        let cached = self.cached::<K>().filter(|c| listed(&c.store))?;
        Some(cached.store.state())
    }

    fn cached<K: Watched>(&self) -> Option<&Cached<K>> {
        self.stores.get(&TypeId::of::<K>())?.downcast_ref::<Cached<K>>()
    }
}

fn key<K: Watched>(ns: &str, name: &str) -> (TypeId, String, String) {
    (TypeId::of::<K>(), ns.to_string(), name.to_string())
}

fn listed<K: Watched>(store: &Store<K>) -> bool {
    store.wait_until_ready().now_or_never().is_some_and(|ready| ready.is_ok())
}

/// Collects a controller's child caches as its watches are set up.
#[derive(Default)]
pub struct ChildrenBuilder {
    stores: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl ChildrenBuilder {
    /// Watches the `K` objects in `ns` that `selector` selects, caching them whole; the changes
    /// wake the controller (`owns_stream`, `watches_stream`).
    pub fn watch<K: Watched>(
        &mut self,
        client: &kube::Client,
        ns: Option<&str>,
        selector: Selector,
    ) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let (store, writer) = reflector::store();
        let config = watcher::Config::default().labels_from(&selector);
        self.keep(store, selector);
        cached_changes(client, ns, config, writer)
    }

    /// Adds a store that another watch fills, with that watch's selector.
    pub fn keep<K: Watched>(&mut self, store: Store<K>, selector: Selector) {
        self.stores.insert(TypeId::of::<K>(), Box::new(Cached { store, selector }));
    }

    pub fn build(self) -> Children {
        Children { stores: Arc::new(self.stores), written: Arc::default() }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;
    use kube::core::Expression;

    use super::*;

    fn deployment(ns: &str, name: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..ObjectMeta::default() },
            ..Deployment::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Children caching Deployments labelled `owner=prism`, and the store's writer.
    fn children() -> (Children, reflector::store::Writer<Deployment>) {
        let (store, writer) = reflector::store::<Deployment>();
        let mut builder = ChildrenBuilder::default();
        builder.keep(store, Selector::from(Expression::Equal("owner".into(), "prism".into())));
        (builder.build(), writer)
    }

    #[test]
    fn hits_of_cached_kinds_are_answered_and_misses_are_no_answer_until_listed() {
        let (children, mut writer) = children();
        writer.apply_watcher_event(&watcher::Event::Apply(deployment("prism", "prod-proxy")));
        let ours = labels(&[("owner", "prism")]);

        assert!(matches!(children.lookup::<Deployment>("prism", "prod-proxy", &ours), Lookup::Seen(_)));
        assert!(children.get::<Deployment>("prism", "prod-proxy").is_some());
        assert!(children.get::<Deployment>("other", "prod-proxy").is_none(), "namespaces are told apart");
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Unknown), "listing");
        assert_eq!(children.holds::<Deployment>("prism", "prod-admin"), None);
        assert!(children.all::<Deployment>().is_none());
        assert!(matches!(children.lookup::<Service>("prism", "prod-proxy", &ours), Lookup::Unknown), "not cached");
        assert!(Children::default().get::<Deployment>("prism", "prod-proxy").is_none());
    }

    #[test]
    fn once_listed_a_miss_is_absent_only_for_what_the_selector_selects() {
        let (children, mut writer) = children();
        writer.apply_watcher_event(&watcher::Event::InitApply(deployment("prism", "prod-proxy")));
        writer.apply_watcher_event(&watcher::Event::InitDone);

        let ours = labels(&[("owner", "prism")]);
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Absent));
        let theirs = labels(&[("owner", "someone")]);
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &theirs), Lookup::Unknown));
        assert_eq!(children.holds::<Deployment>("prism", "prod-admin"), Some(false));
        assert_eq!(children.holds::<Deployment>("prism", "prod-proxy"), Some(true));
        assert_eq!(children.all::<Deployment>().map(|all| all.len()), Some(1));
        assert_eq!(children.holds::<Service>("prism", "prod-proxy"), None, "Services are not cached");
    }

    #[test]
    fn a_write_not_seen_yet_makes_a_miss_unknown_until_the_watch_brings_it() {
        let (children, mut writer) = children();
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let ours = labels(&[("owner", "prism")]);

        children.wrote::<Deployment>("prism", "prod-admin");
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Unknown));
        children.deleted::<Deployment>("prism", "prod-admin");
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Absent), "deleted");
        children.wrote::<Deployment>("prism", "prod-admin");
        writer.apply_watcher_event(&watcher::Event::Apply(deployment("prism", "prod-admin")));
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Seen(_)));
        writer.apply_watcher_event(&watcher::Event::Delete(deployment("prism", "prod-admin")));
        assert!(
            matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Absent),
            "seen, then gone"
        );
    }
}
