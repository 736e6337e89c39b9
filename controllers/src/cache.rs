//! A controller's children, as its watches last saw them: its reconciles read them here instead
//! of asking the API server, and its sweep finds here the children no pass wants any more.
//!
//! Each controller watches its own children by label (never every object of a kind) and keeps
//! what its reads and the no-op check of an apply need (see `projection`): children as compact
//! records, restored to typed objects when read; custom resources whole. Kinds known only at run
//! time (KEDA's ScaledObject, the Prometheus Operator's ServiceMonitor) are kept as metadata: the
//! sweep needs no more.
//!
//! A hit may be stale (a change not seen yet); the change's event then triggers another
//! reconcile, which sees it. A miss means "absent" only once the store has listed its objects,
//! for an object its selector would select, and unless this controller wrote that object and the
//! watch has not brought it back yet; any other miss is read from the API server.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use futures::TryStreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::{PartialObjectMeta, Selector, SelectorExt};
use kube::runtime::{WatchStreamExt, watcher};

use crate::error::{Error, Result};
use crate::indexed::{Indexed, indexed};
use crate::kinds::Watched;
use crate::projection::{Cached, Child as ChildKind, project};
use crate::record::{Ownership, Stored};
use crate::watches::{LIST_PAGE, SharedWatches};

/// How often a pass waiting for the caches' first lists looks again.
const LIST_POLL: Duration = Duration::from_millis(50);

/// What the cache knows of one object.
pub enum Lookup<K> {
    /// Seen, as it was last seen.
    Seen(K),
    /// Not there: the store has listed, would hold it, and is not waiting for a write of ours.
    Absent,
    /// The cache cannot tell: read it.
    Unknown,
}

/// A child of a parent, as the sweep sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub name: String,
    /// Already being deleted.
    pub going: bool,
}

/// One cached kind, seen without its type: what the sweep reads.
pub trait CachedKind: Send + Sync {
    /// The kind's API resource (group, version, kind, plural).
    fn resource(&self) -> &ApiResource;
    /// The type of the cached objects.
    fn stored_type(&self) -> TypeId;
    /// Whether the first list is in, so that the cache holds every object its watch selects.
    fn listed(&self) -> bool;
    /// The cached objects in `ns` whose controller is `owner_uid`.
    fn controlled_by(&self, ns: &str, owner_uid: &str) -> Vec<Child>;
    /// The cached objects in `ns` that `selector` selects.
    fn labelled(&self, ns: &str, selector: &Selector) -> Vec<Child>;
}

/// One kind's store and the selector of the watch that fills it.
struct KindStore<K: Cached + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Indexed<K::Stored>,
    selector: Selector,
    resource: ApiResource,
}

impl<K> KindStore<K>
where
    K: Cached + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    /// The object `name` in `ns` as cached, if seen: `Some(None)` if seen but not restorable.
    fn get(&self, ns: &str, name: &str) -> Option<Option<K>> {
        self.store.get(ns, name).map(|stored| stored.restore())
    }
}

impl<K> KindStore<K>
where
    K: Cached + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// The sweep's view of the cached objects in `ns` that `keep` keeps, judged by their
    /// ownership first.
    fn children_where(&self, ns: &str, keep: impl Fn(Ownership<'_>, &K::Stored) -> bool) -> Vec<Child> {
        let kept = self.store.in_namespace(ns, |stored| keep(stored.ownership(), stored));
        kept.iter().map(|stored| stored.ownership()).map(|o| Child { name: o.name.into(), going: o.going }).collect()
    }
}

impl<K> CachedKind for KindStore<K>
where
    K: Cached + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    fn resource(&self) -> &ApiResource {
        &self.resource
    }

    fn stored_type(&self) -> TypeId {
        TypeId::of::<K>()
    }

    fn listed(&self) -> bool {
        self.store.listed()
    }

    fn controlled_by(&self, ns: &str, owner_uid: &str) -> Vec<Child> {
        self.children_where(ns, |ownership, _| ownership.controller == Some(owner_uid))
    }

    fn labelled(&self, ns: &str, selector: &Selector) -> Vec<Child> {
        // A record parses its copy of the labels.
        self.children_where(ns, |_, stored| selector.matches(&stored.labels().unwrap_or_default()))
    }
}

/// The sweep's view of a child's metadata.
pub fn child(meta: &ObjectMeta) -> Child {
    Child { name: meta.name.clone().unwrap_or_default(), going: meta.deletion_timestamp.is_some() }
}

/// Whether `owner_uid` is the controller of the object.
pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    controller_uid(meta.owner_references.as_deref()) == Some(owner_uid)
}

fn controller_uid(owners: Option<&[OwnerReference]>) -> Option<&str> {
    owners.into_iter().flatten().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

/// The caches of one controller: the children it owns (in apply order, which the sweep reverses)
/// and the other objects it reads.
#[derive(Clone, Default)]
pub struct Children {
    /// Static kinds by type, for typed reads.
    typed: Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// The kinds whose objects are this controller's children.
    owned: Arc<Vec<Arc<dyn CachedKind>>>,
    /// Every cache of this controller, owned kinds and read ones: what must have listed before a
    /// pass can trust what it does not see.
    every: Arc<Vec<Arc<dyn CachedKind>>>,
    /// Set once every cache has listed.
    all_listed: Arc<AtomicBool>,
    /// Objects this controller wrote whose watch event has not been seen yet (kind, namespace,
    /// name): a miss of one of them is a store lagging behind, not an absence.
    written: Arc<DashSet<(TypeId, String, String)>>,
    /// The content hash of each child as this controller last applied it, or first saw it, by
    /// [`Children::key_of`]: a child whose content moved since was edited by hand. Folded to a
    /// number: one entry per child of every cluster, and a string would be two words and a heap
    /// allocation more each.
    contents: Arc<DashMap<u64, u64>>,
}

impl Children {
    /// The cached object `name` in `ns`, if this controller caches `K` and has seen it.
    pub fn get<K: ChildKind>(&self, ns: &str, name: &str) -> Option<K> {
        self.cached::<K>()?.get(ns, name).flatten()
    }

    /// Whether this controller caches `K` and has seen the object `name` in `ns`.
    pub fn seen<K: ChildKind>(&self, ns: &str, name: &str) -> bool {
        self.cached::<K>().is_some_and(|cached| cached.store.get(ns, name).is_some())
    }

    /// The object `name` of `api`'s namespace as this controller last saw it, else as read now.
    pub async fn live<K: ChildKind>(&self, api: &Api<K>, name: &str) -> Result<Option<K>> {
        if let Some(cached) = api.namespace().and_then(|ns| self.get::<K>(ns, name)) {
            return Ok(Some(cached));
        }
        read(api, name).await
    }

    /// The child `name` of `api`'s namespace that would carry `labels`, as this controller last
    /// saw it; absent without asking when the cache can tell (see [`Children::lookup`]); else as
    /// read now.
    pub async fn live_child<K: ChildKind>(
        &self,
        api: &Api<K>,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<K>> {
        let Some(ns) = api.namespace() else { return read(api, name).await };
        match self.lookup::<K>(ns, name, labels) {
            Lookup::Seen(cached) => Ok(Some(cached)),
            Lookup::Absent => Ok(None),
            Lookup::Unknown => read(api, name).await,
        }
    }

    /// What the cache knows of the object `name` in `ns` that would carry `labels`.
    pub fn lookup<K: ChildKind>(&self, ns: &str, name: &str, labels: &BTreeMap<String, String>) -> Lookup<K> {
        let Some(cached) = self.cached::<K>() else { return Lookup::Unknown };
        if let Some(seen) = cached.get(ns, name) {
            // Every apply passes here: build the key only when there is a note to clear.
            if !self.written.is_empty() {
                self.written.remove(&key::<K>(ns, name));
            }
            return seen.map_or(Lookup::Unknown, Lookup::Seen);
        }
        let trusted = cached.store.listed() && cached.selector.matches(labels);
        if trusted && !self.written.contains(&key::<K>(ns, name)) { Lookup::Absent } else { Lookup::Unknown }
    }

    /// Notes that this controller just wrote the object: until its watch brings it, a miss is not
    /// an absence.
    pub fn wrote<K: ChildKind>(&self, ns: &str, name: &str) {
        if self.cached::<K>().is_some() {
            self.written.insert(key::<K>(ns, name));
        }
    }

    /// Notes that this controller deleted an object of `kind` (cached as the type `cached`): no
    /// write of ours is in flight any more, and its record goes.
    pub fn deleted(&self, cached: Option<TypeId>, kind: &str, ns: &str, name: &str) {
        self.contents.remove(&self.key_of(kind, ns, name));
        if let Some(type_id) = cached.filter(|_| !self.written.is_empty()) {
            self.written.remove(&(type_id, ns.to_string(), name.to_string()));
        }
    }

    /// Waits until every cache of this controller has listed its objects once. Before that, an
    /// object missing from a cache may only not be listed yet: a pass after a restart would, say,
    /// render the proxy's routes without the patterns not seen yet, and write them.
    pub async fn wait_listed(&self) {
        let mut polls: u32 = 0;
        while !self.all_listed.load(Ordering::Relaxed) {
            let unlisted: Vec<&str> =
                self.every.iter().filter(|k| !k.listed()).map(|k| k.resource().kind.as_str()).collect();
            if unlisted.is_empty() {
                self.all_listed.store(true, Ordering::Relaxed);
                return;
            }
            polls += 1;
            if polls.is_multiple_of(200) {
                tracing::warn!(?unlisted, "waiting for the first list of these caches (permissions?)");
            }
            tokio::time::sleep(LIST_POLL).await;
        }
    }

    /// A short key of one child for per-child records.
    pub fn key_of(&self, kind: &str, ns: &str, name: &str) -> u64 {
        folded(&(kind, ns, name))
    }

    /// Notes the content hash of a child as this controller just applied it.
    pub fn applied(&self, key: u64, content: &str) {
        self.contents.insert(key, folded(content));
    }

    /// Whether the child's content is as this controller last applied it (noting it, if it never
    /// did).
    pub fn content_unchanged(&self, key: u64, content: &str) -> bool {
        let content = folded(content);
        *self.contents.entry(key).or_insert(content) == content
    }

    /// Every cached `K` object in `ns` that restores, once the first list is in.
    pub fn all_in<K: ChildKind>(&self, ns: &str) -> Option<Vec<K>> {
        let cached = self.cached::<K>().filter(|c| c.store.listed())?;
        let in_ns = cached.store.in_namespace(ns, |_| true);
        Some(in_ns.iter().filter_map(|stored| stored.restore()).collect())
    }

    /// The kinds of this controller's children, in apply order.
    pub fn owned(&self) -> impl DoubleEndedIterator<Item = &dyn CachedKind> {
        self.owned.iter().map(AsRef::as_ref)
    }

    /// The cache of the static kind `K`, if it is one of this controller's children.
    pub fn owned_kind<K: Watched>(&self) -> Option<&dyn CachedKind> {
        self.owned().find(|kind| kind.stored_type() == TypeId::of::<K>())
    }

    fn cached<K: ChildKind>(&self) -> Option<&KindStore<K>> {
        self.typed.get(&TypeId::of::<K>())?.downcast_ref::<KindStore<K>>()
    }
}

async fn read<K: Watched>(api: &Api<K>, name: &str) -> Result<Option<K>> {
    api.get_opt(name).await.map_err(|source| Error::api("get", &K::kind(&()), name, source))
}

/// A value folded to 64 bits, for keys and hashes kept per child.
fn folded<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn key<K: Watched>(ns: &str, name: &str) -> (TypeId, String, String) {
    (TypeId::of::<K>(), ns.to_string(), name.to_string())
}

/// Collects a controller's caches as its watches are set up.
pub struct ChildrenBuilder<'a> {
    watches: &'a SharedWatches,
    typed: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    owned: Vec<Arc<dyn CachedKind>>,
    every: Vec<Arc<dyn CachedKind>>,
}

impl<'a> ChildrenBuilder<'a> {
    pub fn new(watches: &'a SharedWatches) -> Self {
        ChildrenBuilder { watches, typed: HashMap::new(), owned: Vec::new(), every: Vec::new() }
    }

    /// Watches this controller's children of kind `K` that `selector` selects, caching them as
    /// `projection` says; the changes wake the controller. Call in apply order: the sweep deletes
    /// in reverse.
    pub fn owned<K: ChildKind>(
        &mut self,
        selector: Selector,
    ) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + use<K> {
        self.watch(selector, true)
    }

    /// Watches objects of kind `K` that this controller reads but does not own (e.g. the
    /// PrismCluster a pattern names).
    pub fn referenced<K: ChildKind>(
        &mut self,
        selector: Selector,
    ) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + use<K> {
        self.watch(selector, false)
    }

    fn watch<K: ChildKind>(
        &mut self,
        selector: Selector,
        owned: bool,
    ) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + use<K> {
        let (store, changes) = self.watches.watch::<K>(&selector);
        self.keep::<K>(store, selector, owned);
        changes
    }

    /// Makes passes wait for `store` to list too (a cache of objects read whole, not children,
    /// e.g. the Kubernetes namespaces whose labels admit tenants).
    pub fn wait_for<K>(&mut self, store: Indexed<K>)
    where
        K: Cached<Stored = K, DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let resource = ApiResource::erase::<K>(&());
        self.every.push(Arc::new(KindStore::<K> { store, selector: Selector::default(), resource }));
    }

    /// Adds the store of this controller's children of kind `K` that another watch fills, with
    /// that watch's selector.
    pub fn keep_owned<K: ChildKind<Stored = K>>(&mut self, store: Indexed<K>, selector: Selector) {
        self.keep::<K>(store, selector, true);
    }

    fn keep<K: ChildKind>(&mut self, store: Indexed<K::Stored>, selector: Selector, owned: bool) {
        let cached = Arc::new(KindStore::<K> { store, selector, resource: ApiResource::erase::<K>(&()) });
        self.typed.insert(TypeId::of::<K>(), cached.clone());
        self.every.push(cached.clone());
        if owned {
            self.owned.push(cached);
        }
    }

    /// Watches the metadata of this controller's children of a kind known only at run time.
    pub fn owned_dynamic(
        &mut self,
        resource: &ApiResource,
        selector: Selector,
    ) -> impl futures::Stream<Item = Result<PartialObjectMeta<DynamicObject>, watcher::Error>> + Send + 'static {
        // Read by the sweep only: no controller reconciles them.
        let (store, mut writer) = indexed();
        let client = self.watches.client().clone();
        let api: Api<PartialObjectMeta<DynamicObject>> = match self.watches.namespace() {
            Some(ns) => Api::namespaced_with(client, ns, resource),
            None => Api::all_with(client, resource),
        };
        let config = watcher::Config::default().labels_from(&selector).any_semantic().page_size(LIST_PAGE);
        let cached =
            Arc::new(KindStore::<PartialObjectMeta<DynamicObject>> { store, selector, resource: resource.clone() });
        self.every.push(cached.clone());
        self.owned.push(cached);
        let changes = watcher(api, config).default_backoff().modify(project::<PartialObjectMeta<DynamicObject>>);
        changes.inspect_ok(move |event| writer.apply(event)).touched_objects()
    }

    /// Whether `K` is cached already (e.g. watched whole for another purpose).
    pub fn has<K: Watched>(&self) -> bool {
        self.typed.contains_key(&TypeId::of::<K>())
    }

    pub fn build(self) -> Children {
        Children {
            typed: Arc::new(self.typed),
            owned: Arc::new(self.owned),
            every: Arc::new(self.every),
            all_listed: Arc::default(),
            written: Arc::default(),
            contents: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;
    use kube::core::Expression;

    use super::*;
    use crate::record::Record;

    fn deployment(ns: &str, name: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..ObjectMeta::default() },
            ..Deployment::default()
        }
    }

    fn owned_by(mut d: Deployment, uid: &str, controller: bool) -> Deployment {
        d.metadata.owner_references =
            Some(vec![OwnerReference { uid: uid.into(), controller: Some(controller), ..OwnerReference::default() }]);
        d
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A client whose every request fails: these tests fill the stores by hand.
    fn no_api_server() -> kube::Client {
        let refuse = |_: http::Request<kube::client::Body>| async {
            Err::<http::Response<kube::client::Body>, _>(std::io::Error::other("no API server in this test"))
        };
        kube::Client::new(tower::service_fn(refuse), "default")
    }

    type StoreWriter = crate::indexed::IndexWriter<Record<Deployment>>;

    /// Children caching Deployments labelled `owner=prism` (as records), and the store's writer.
    fn children() -> (Children, StoreWriter) {
        let (store, writer) = indexed::<Record<Deployment>>();
        let watches = SharedWatches::new(no_api_server(), None);
        let mut builder = ChildrenBuilder::new(&watches);
        builder.keep::<Deployment>(store, Selector::from(Expression::Equal("owner".into(), "prism".into())), true);
        (builder.build(), writer)
    }

    /// Fills the store as its watch would.
    fn feed(writer: &mut StoreWriter, event: watcher::Event<Deployment>) {
        writer.apply(&crate::record::stored_event(&event));
    }

    #[tokio::test]
    async fn hits_of_cached_kinds_are_answered_and_misses_are_no_answer_until_listed() {
        let (children, mut writer) = children();
        feed(&mut writer, watcher::Event::Apply(deployment("prism", "prod-proxy")));
        let ours = labels(&[("owner", "prism")]);

        assert!(matches!(children.lookup::<Deployment>("prism", "prod-proxy", &ours), Lookup::Seen(_)));
        assert!(children.get::<Deployment>("prism", "prod-proxy").is_some());
        assert!(children.get::<Deployment>("other", "prod-proxy").is_none(), "namespaces are told apart");
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Unknown), "listing");
        assert!(children.all_in::<Deployment>("prism").is_none());
        assert!(!children.owned().all(|kind| kind.listed()));
        assert!(matches!(children.lookup::<Service>("prism", "prod-proxy", &ours), Lookup::Unknown), "not cached");
        assert!(Children::default().get::<Deployment>("prism", "prod-proxy").is_none());
    }

    #[tokio::test]
    async fn once_listed_a_miss_is_absent_only_for_what_the_selector_selects() {
        let (children, mut writer) = children();
        feed(&mut writer, watcher::Event::InitApply(deployment("prism", "prod-proxy")));
        feed(&mut writer, watcher::Event::InitDone);

        let ours = labels(&[("owner", "prism")]);
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Absent));
        let theirs = labels(&[("owner", "someone")]);
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &theirs), Lookup::Unknown));
        assert_eq!(children.all_in::<Deployment>("prism").map(|all| all.len()), Some(1));
        assert_eq!(children.all_in::<Deployment>("other").map(|all| all.len()), Some(0));
        assert!(children.owned_kind::<Service>().is_none(), "Services are not cached");
    }

    #[tokio::test]
    async fn the_sweep_sees_only_the_children_a_parent_controls_in_its_namespace() {
        let (children, mut writer) = children();
        for d in [
            owned_by(deployment("prism", "mine"), "me", true),
            owned_by(deployment("prism", "referenced-only"), "me", false),
            owned_by(deployment("prism", "theirs"), "them", true),
            owned_by(deployment("other", "mine-elsewhere"), "me", true),
        ] {
            feed(&mut writer, watcher::Event::InitApply(d));
        }
        feed(&mut writer, watcher::Event::InitDone);
        let kind = children.owned_kind::<Deployment>().expect("owned");
        assert!(kind.listed());
        assert_eq!(kind.resource().kind, "Deployment");
        assert_eq!(kind.controlled_by("prism", "me"), vec![Child { name: "mine".into(), going: false }]);
    }

    #[tokio::test]
    async fn a_write_not_seen_yet_makes_a_miss_unknown_until_the_watch_brings_it() {
        let (children, mut writer) = children();
        feed(&mut writer, watcher::Event::InitDone);
        let ours = labels(&[("owner", "prism")]);

        children.wrote::<Deployment>("prism", "prod-admin");
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Unknown));
        children.deleted(Some(TypeId::of::<Deployment>()), "Deployment", "prism", "prod-admin");
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Absent), "deleted");
        children.wrote::<Deployment>("prism", "prod-admin");
        feed(&mut writer, watcher::Event::Apply(deployment("prism", "prod-admin")));
        assert!(matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Seen(_)));
        feed(&mut writer, watcher::Event::Delete(deployment("prism", "prod-admin")));
        assert!(
            matches!(children.lookup::<Deployment>("prism", "prod-admin", &ours), Lookup::Absent),
            "seen, then gone"
        );
    }
}
