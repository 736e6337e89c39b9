//! Watches shared by the controllers.
//!
//! Every watch backs off on its own, and a controller's triggers share no backoff: kube-runtime's
//! controller otherwise holds all of its watches behind one backoff, so that one watch's error (a
//! dropped connection, an in-stream 410) pauses every other. When the watches of a controller then
//! fail one after another (all resume after a reset, each meets its own 410 and relists), that shared
//! backoff doubles at each to 30 s and only resets after 120 s without error: a change waited
//! minutes to be seen. client-go's informers, likewise, back off each on its own.

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::Resource;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, reflector};
use kube::runtime::utils::Backoff;
use kube::runtime::{Controller, WatchStreamExt, watcher};

use crate::error::Error;
use crate::kinds::{Watched, scoped_api};
use crate::projection::{Cached, project, strip_managed_fields};

/// A controller of `K` objects in `ns` (all namespaces if `None`), with no shared trigger backoff.
/// Its other triggers must back off on their own: add them from `cached_changes` (or
/// `cache::ChildrenBuilder::watch`).
pub fn controller<K: Watched>(client: &kube::Client, ns: Option<&str>) -> Controller<K> {
    let (store, writer) = reflector::store();
    let objects = backed_off_watch(client, ns, watcher::Config::default()).modify(strip_managed_fields::<K>);
    Controller::for_stream(reflector(writer, objects).applied_objects(), store).trigger_backoff(Unpaused)
}

/// Runs `controller` with `concurrency` reconciles at once until `shutdown`, letting in-flight
/// reconciles finish. If by then its objects were never listed (no CRDs installed, no
/// permission to list), it stops at once: kube-runtime's runner would wait for that first list
/// even after the shutdown, and the operator would hang until its drain timeout.
pub async fn run<K, Ctx, Fut>(
    controller: Controller<K>,
    reconcile: fn(Arc<K>, Arc<Ctx>) -> Fut,
    error_policy: fn(Arc<K>, &Error, Arc<Ctx>) -> Action,
    ctx: Arc<Ctx>,
    concurrency: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) where
    K: Watched,
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let store = controller.store();
    let running = controller
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile did not complete");
            }
        });
    let never_listed = async {
        shutdown.await;
        if store.wait_until_ready().now_or_never().is_none() {
            tracing::info!(kind = %K::kind(&()), "stopping before the first list completed");
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = running => {}
        () = never_listed => {}
    }
}

/// Changes of the `K` objects in `ns` selected by `config`, kept in `writer`'s store as the
/// controllers read them (see `projection`).
pub fn cached_changes<K: Watched + Cached>(
    client: &kube::Client,
    ns: Option<&str>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    reflector(writer, backed_off_watch(client, ns, config).modify(project::<K>)).touched_objects()
}

/// Watch events of the `K` objects in `ns` that `config` selects, backing off on their own.
fn backed_off_watch<K: Watched>(
    client: &kube::Client,
    ns: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    watcher(scoped_api::<K>(client, ns), config.any_semantic()).default_backoff()
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

/// What of a cluster can change its namespaces and patterns: its spec (generation), its identity
/// (a cluster recreated under the same name has a new uid, so owner references must follow) and
/// its deletion. Not its status, which changes often.
pub fn spec_or_identity<K: Resource>(cluster: &K) -> Option<u64> {
    let meta = cluster.meta();
    let mut hasher = DefaultHasher::new();
    (meta.generation, &meta.uid, meta.deletion_timestamp.is_some()).hash(&mut hasher);
    Some(hasher.finish())
}
