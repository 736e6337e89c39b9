//! The PrismNamespace controller: ties an app team's (or the cluster's) Prism namespace to its
//! PrismCluster, validates it there, runs its dedicated pattern runners when its isolation is
//! `namespace`, and reports whether the runners serving it are ready.
//!
//! Pipeline: read the namespace and its cluster -> validate -> build the dedicated runners (pure)
//! -> apply (skipping writes that change nothing) -> sweep runners no longer wanted -> status.
//! The proxy's routes are the cluster controller's: it renders them from observed namespaces, and
//! this controller's finalizer waits until they no longer list a deleting namespace.

pub mod build;
#[cfg(test)]
mod fixtures;
mod reconcile;
pub mod status;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::Selector;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt};
use kube::{Resource, ResourceExt};
use prism_api::names::{field_managers, finalizers, labels};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;

use crate::cache::{ChildrenBuilder, in_namespace};
use crate::context::{Context, Identity};
use crate::driver::Driver;
use crate::routes;
use crate::watches::{self, SharedWatches};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "prismnamespace";

/// The PrismNamespace controller's reconciler: it needs nothing beyond what the driver gives.
pub struct NamespaceReconciler;

/// Who this controller is: its name, field manager and finalizer.
pub const IDENTITY: Identity =
    Identity { controller: CONTROLLER, field_manager: field_managers::NAMESPACE, finalizer: finalizers::NAMESPACE };

/// Runs the PrismNamespace controller alone until `shutdown` completes.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static) {
    crate::run_some(ctx, shutdown, &[crate::Kind::Namespace]).await;
}

/// Sets up the PrismNamespace controller's watches in `watches`; the future it returns runs the
/// controller until `shutdown` completes.
pub fn start<S>(ctx: Arc<Context>, watches: &SharedWatches, shutdown: S) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let controller = watches::controller::<PrismNamespace>(watches);
    let store = controller.store();
    let mut children = ChildrenBuilder::new(watches);
    // Clusters: only changes of spec or identity wake namespaces (not status writes, which are
    // frequent and cannot change a namespace's validity).
    let clusters = children
        .referenced::<PrismCluster>(Selector::default())
        .predicate_filter(watches::spec_or_identity, PredicateConfig::default());
    // Every PrismPattern, not only runners: a dedicated runner's name may be taken by one made by
    // hand, and the cache must know that to refuse it. A change, status included, wakes the
    // namespaces a runner serves, whose reconcile reads the runner.
    let runners = children.owned::<PrismPattern>(Selector::default());
    // The proxies' configs: a deleting namespace waits until its cluster's proxy no longer serves
    // it, and a change of the routes wakes it.
    let proxy_configs = children.referenced::<ConfigMap>(routes::proxy_configs());
    let controller = controller
        .watches_stream(clusters, namespaces_of_cluster(store.clone()))
        .watches_stream(runners, namespaces_of_runner(store.clone()))
        .watches_stream(proxy_configs, deleting_namespaces_of_proxy(store));
    Driver::new(ctx, children.build(), NamespaceReconciler).run(controller, shutdown)
}

/// A PrismCluster change wakes the namespaces that name it.
fn namespaces_of_cluster<M: Resource>(
    store: Store<PrismNamespace>,
) -> impl Fn(M) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    move |cluster| {
        let (name, ns) = (cluster.name_any(), cluster.meta().namespace.as_deref());
        let named = in_namespace(&store, ns, |n| n.spec.cluster == name);
        named.iter().map(|n| ObjectRef::from_obj(n.as_ref())).collect()
    }
}

/// A change of a proxy's config wakes the namespaces of its cluster that are being deleted: their
/// teardown waits for the routes to drop them.
fn deleting_namespaces_of_proxy(
    store: Store<PrismNamespace>,
) -> impl Fn(ConfigMap) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    move |config| {
        let Some(cluster) = config.labels().get(labels::CLUSTER) else { return Vec::new() };
        let deleting = |n: &PrismNamespace| &n.spec.cluster == cluster && n.metadata.deletion_timestamp.is_some();
        let waiting = in_namespace(&store, config.metadata.namespace.as_deref(), deleting);
        waiting.iter().map(|n| ObjectRef::from_obj(n.as_ref())).collect()
    }
}

/// A runner change wakes the namespace that owns it (a dedicated runner) and the namespaces of
/// its cluster that it serves (a shared runner becoming Running, or going away).
fn namespaces_of_runner<M: Resource>(
    store: Store<PrismNamespace>,
) -> impl Fn(M) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    move |runner| {
        let (name, ns) = (runner.name_any(), runner.namespace());
        let owner = runner
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == PrismNamespace::kind(&()))
            .map(|o| ObjectRef::<PrismNamespace>::new(&o.name).within(ns.as_deref().unwrap_or_default()));
        let Some(cluster) = runner.labels().get(labels::CLUSTER).cloned() else {
            return owner.into_iter().collect();
        };
        let serves = |n: &PrismNamespace| {
            n.spec.cluster == cluster && n.spec.settings.patterns.iter().any(|p| routes::runner_for(n, p) == name)
        };
        let served = in_namespace(&store, ns.as_deref(), serves);
        owner.into_iter().chain(served.iter().map(|n| ObjectRef::from_obj(n.as_ref()))).collect()
    }
}
