//! Watches shared by the controllers.
//!
//! One watch and one cache serve each kind and selector, however many controllers read them: the
//! three controllers all read every PrismCluster and PrismPattern, and one copy of each object in
//! memory is what lets a thousand clusters fit in the chart's limit (see [`SharedWatches`]).
//!
//! Every watch backs off on its own, and a controller's triggers share no backoff (see `runner`):
//! kube-runtime's controller holds all of its watches behind one backoff, so that one watch's error (a
//! dropped connection, an in-stream 410) pauses every other. When the watches of a controller then
//! fail one after another (all resume after a reset, each meets its own 410 and relists), that shared
//! backoff doubles at each to 30 s and only resets after 120 s without error: a change waited
//! minutes to be seen. client-go's informers, likewise, back off each on its own.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::Resource;
use kube::core::{PartialObjectMeta, Selector};
use kube::runtime::reflector::Lookup;
use kube::runtime::{WatchStreamExt, watcher};

use crate::indexed::{IndexWriter, Indexed, indexed};
use crate::kinds::{Watched, scoped_api};
use crate::projection::{Cached, project};
use crate::record::stored_event;
use crate::runner::Triggers;

/// Objects per page of a watch's list. Each page arrives whole (managedFields and all) before it
/// is trimmed for the cache, and every watch lists at once after a restart: kube's default of 500
/// made a restarted operator's peak memory grow with the number of clusters.
pub const LIST_PAGE: u32 = 50;

/// One consumer's stream of a shared watch's changes.
type Changes<K> = futures::stream::Map<mpsc::UnboundedReceiver<K>, fn(K) -> Result<K, watcher::Error>>;

/// A Kubernetes namespace as the controllers cache it: its metadata.
pub type NamespaceMeta = PartialObjectMeta<Namespace>;

/// The triggers of a controller of every `K` object in the watch scope, and its store. Its other
/// triggers must back off on their own: take them from `watches` (or `cache::ChildrenBuilder`).
pub fn controller<K: Watched + Cached<Stored = K>>(watches: &SharedWatches) -> (Triggers<K>, Indexed<K>) {
    let (store, changes) = watches.watch::<K>(&Selector::default());
    (Triggers::new(store.clone(), changes), store)
}

/// The watches of the controllers, one per kind and selector: each consumer gets the shared cache
/// and its own stream of the changes (objects applied or deleted). Watches are set up first, by
/// every controller, then run together by [`SharedWatches::run`].
pub struct SharedWatches {
    client: kube::Client,
    /// The watch scope: one namespace, or all.
    ns: Option<String>,
    /// The shared watches by kind and selector: each a [`Shared`] of that kind.
    shared: Mutex<HashMap<(TypeId, String), Arc<dyn Any + Send + Sync>>>,
    /// What runs each watch, filling its cache and passing its changes on.
    drivers: Mutex<Vec<BoxFuture<'static, ()>>>,
}

/// One shared watch: its cache (of what it keeps of each object, `S`), and a channel to each
/// consumer of its changes (the objects, `K`).
struct Shared<S: Lookup<DynamicType = ()> + Clone + 'static, K> {
    store: Indexed<S>,
    consumers: Arc<Mutex<Vec<mpsc::UnboundedSender<K>>>>,
}

impl SharedWatches {
    pub fn new(client: kube::Client, ns: Option<String>) -> Self {
        SharedWatches { client, ns, shared: Mutex::default(), drivers: Mutex::default() }
    }

    /// The cache of the `K` objects `selector` selects, kept as the controllers read them (see
    /// `projection`), and a stream of their changes for one consumer.
    pub fn watch<K: Watched + Cached>(
        &self,
        selector: &Selector,
    ) -> (Indexed<K::Stored>, impl Stream<Item = Result<K, watcher::Error>> + Send + use<K>) {
        self.shared_watch((TypeId::of::<K>(), selector.to_string()), || {
            let (store, writer) = indexed::<K::Stored>();
            let config = watcher::Config::default().labels_from(selector);
            (store, cached_changes::<K>(&self.client, self.ns.as_deref(), config, writer))
        })
    }

    /// The metadata of every Kubernetes namespace (their labels decide which a cluster admits) and
    /// a stream of their changes for one consumer; `None` when the operator watches one namespace,
    /// the only one whose PrismNamespaces it sees (and every cluster admits its own namespace).
    /// Metadata only, without managedFields: memory grows with the number of namespaces, not
    /// with what they hold.
    pub fn namespaces(
        &self,
    ) -> Option<(Indexed<NamespaceMeta>, impl Stream<Item = Result<NamespaceMeta, watcher::Error>> + Send + use<>)>
    {
        if self.ns.is_some() {
            return None;
        }
        Some(self.shared_watch((TypeId::of::<NamespaceMeta>(), String::new()), || {
            // Read by name only: no controller reconciles them.
            let (store, mut writer) = indexed::<NamespaceMeta>();
            let api = kube::Api::<NamespaceMeta>::all(self.client.clone());
            let config = watcher::Config::default().any_semantic().page_size(LIST_PAGE);
            let events = watcher(api, config).default_backoff().modify(|n| n.metadata.managed_fields = None);
            (store, events.inspect_ok(move |event| writer.apply(event)).touched_objects())
        }))
    }

    /// The shared watch of `key`, started by `start` (its cache and its changes) if there is none
    /// yet, and a stream of its changes for one more consumer.
    fn shared_watch<S, K, C>(
        &self,
        key: (TypeId, String),
        start: impl FnOnce() -> (Indexed<S>, C),
    ) -> (Indexed<S>, Changes<K>)
    where
        S: Lookup<DynamicType = ()> + Clone + Send + Sync + 'static,
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
        C: Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let found = shared.get(&key).cloned().and_then(|any| any.downcast::<Shared<S, K>>().ok());
        let watch = found.unwrap_or_else(|| {
            let (store, changes) = start();
            let started = Arc::new(self.fan_out(store, changes));
            shared.insert(key, started.clone());
            started
        });
        let (sender, changes) = mpsc::unbounded();
        watch.consumers.lock().unwrap_or_else(PoisonError::into_inner).push(sender);
        (watch.store.clone(), changes.map(Ok as fn(K) -> Result<K, watcher::Error>))
    }

    /// A watch whose `changes` go to each of its consumers, to run with the others.
    fn fan_out<S, K>(
        &self,
        store: Indexed<S>,
        changes: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    ) -> Shared<S, K>
    where
        S: Lookup<DynamicType = ()> + Clone + Send + Sync + 'static,
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let consumers: Arc<Mutex<Vec<mpsc::UnboundedSender<K>>>> = Arc::default();
        let fan_out = consumers.clone();
        let driver = changes.for_each(move |change| {
            match change {
                Ok(object) => {
                    for consumer in fan_out.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                        // A consumer gone (its controller stopped) needs nothing more.
                        let _ = consumer.unbounded_send(object.clone());
                    }
                }
                // The watch backs off and resumes on its own; a relist follows.
                Err(error) => tracing::debug!(kind = %K::kind(&()), %error, "watch interrupted"),
            }
            std::future::ready(())
        });
        self.drivers.lock().unwrap_or_else(PoisonError::into_inner).push(driver.boxed());
        Shared { store, consumers }
    }

    /// Runs every watch set up so far until `shutdown` completes.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let drivers = std::mem::take(&mut *self.drivers.lock().unwrap_or_else(PoisonError::into_inner));
        tokio::select! {
            _ = futures::future::join_all(drivers) => {}
            () = shutdown => {}
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn namespace(&self) -> Option<&str> {
        self.ns.as_deref()
    }
}

/// Changes of the `K` objects in `ns` selected by `config`, trimmed; `writer`'s store keeps them
/// as the controllers read them (see `projection`). The changes themselves pass on to the
/// controllers' triggers and are dropped there.
pub fn cached_changes<K: Watched + Cached>(
    client: &kube::Client,
    ns: Option<&str>,
    config: watcher::Config,
    mut writer: IndexWriter<K::Stored>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    backed_off_watch(client, ns, config)
        .modify(project::<K>)
        .inspect_ok(move |event| writer.apply(&stored_event(event)))
        .touched_objects()
}

/// Watch events of the `K` objects in `ns` that `config` selects, backing off on their own.
fn backed_off_watch<K: Watched>(
    client: &kube::Client,
    ns: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    watcher(scoped_api::<K>(client, ns), config.any_semantic().page_size(LIST_PAGE)).default_backoff()
}

/// What of a cluster can change its namespaces and patterns: its spec (generation), its identity
/// (a cluster recreated under the same name has a new uid, so owner references must follow) and
/// its deletion. Not its status, which changes often.
pub fn spec_or_identity<K: Resource>(cluster: &K) -> Option<u64> {
    let meta = cluster.meta();
    let mut hasher = DefaultHasher::new();
    (meta.generation, &meta.uid, meta.deletion_timestamp.is_some()).hash(&mut hasher);
    Some(hasher.finish())
}

/// What of a Kubernetes namespace decides whether a cluster admits its PrismNamespaces: its labels
/// (and its identity, a namespace re-created under the same name).
pub fn labels_of<K: Resource>(namespace: &K) -> Option<u64> {
    let meta = namespace.meta();
    let mut hasher = DefaultHasher::new();
    (&meta.labels, &meta.uid).hash(&mut hasher);
    Some(hasher.finish())
}

/// The labels of Kubernetes namespace `ns` as `store` last saw them (`None`: not seen, or no
/// store: the operator watches one namespace).
pub fn namespace_labels(store: Option<&Indexed<NamespaceMeta>>, ns: &str) -> Option<crate::tenancy::Labels> {
    let namespace = store?.get("", ns)?;
    Some(namespace.metadata.labels.clone().unwrap_or_default())
}
