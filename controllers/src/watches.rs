//! Watches shared by the controllers.
//!
//! Every watch backs off on its own, and a controller's triggers share no backoff: kube-runtime's
//! controller otherwise holds all of its watches behind one backoff, so that one watch's error (a
//! dropped connection, an in-stream 410) pauses every other. When the watches of a controller then
//! fail one after another (all resume after a reset, each meets its own 410 and relists), that shared
//! backoff doubles at each to 30 s and only resets after 120 s without error: a change waited
//! minutes to be seen. client-go's informers, likewise, back off each on its own.

use std::fmt::Debug;
use std::time::Duration;

use kube::Resource;
use kube::core::{NamespaceResourceScope, PartialObjectMeta};
use kube::runtime::reflector::{self, reflector};
use kube::runtime::utils::Backoff;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

use crate::context::scoped_api;

/// What the controllers watch: namespaced, static kinds.
pub trait Watched:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// A controller of `K` objects in `ns` (all namespaces if `None`), with no shared trigger backoff.
/// Its other triggers must back off on their own: add them from `metadata_changes` or
/// `cached_changes`.
pub fn controller<K: Watched>(client: &kube::Client, ns: Option<&str>) -> Controller<K> {
    let (store, writer) = reflector::store();
    let objects = watcher(scoped_api::<K>(client, ns), watcher::Config::default().any_semantic()).default_backoff();
    Controller::for_stream(reflector(writer, objects).applied_objects(), store).trigger_backoff(Unpaused)
}

/// Changes of `K` objects as metadata only: the smallest watch that can wake an owner.
pub fn metadata_changes<K: Watched>(
    client: &kube::Client,
    ns: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static {
    watcher(scoped_api::<PartialObjectMeta<K>>(client, ns), config).default_backoff().touched_objects()
}

/// Changes of all `K` objects in `ns`, kept whole in `writer`'s store for reconciles to read.
pub fn cached_changes<K: Watched>(
    client: &kube::Client,
    ns: Option<&str>,
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    let objects = watcher(scoped_api::<K>(client, ns), watcher::Config::default().any_semantic()).default_backoff();
    reflector(writer, objects).touched_objects()
}

/// The controller's shared trigger backoff, made a no-op: each trigger backs off on its own.
struct Unpaused;

impl Iterator for Unpaused {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for Unpaused {
    fn reset(&mut self) {}
}

/// Whether an API group version serves `plural`.
pub async fn api_served(client: &kube::Client, group_version: &str, plural: &str) -> bool {
    client
        .list_api_group_resources(group_version)
        .await
        .is_ok_and(|list| list.resources.iter().any(|r| r.name == plural))
}
