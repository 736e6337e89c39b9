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
use kube::core::{Expression, Selector};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{PredicateConfig, WatchStreamExt};
use kube::{Resource, ResourceExt};
use prism_api::names::{field_managers, finalizers, labels};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{ClusterRef, PrismNamespace};

use crate::cache::ChildrenBuilder;
use crate::context::{Context, Identity};
use crate::driver::Driver;
use crate::indexed::Indexed;
use crate::watches::{self, NamespaceMeta, SharedWatches};
use crate::{naming, routes};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "prismnamespace";

/// The PrismNamespace controller's reconciler, with what it reads besides its children.
pub struct NamespaceReconciler {
    /// Every PrismNamespace in the watch scope: the others asking a cluster for the same name.
    pub namespaces: Indexed<PrismNamespace>,
    /// The metadata of every Kubernetes namespace (their labels admit tenants); `None` when the
    /// operator watches one namespace.
    pub namespace_labels: Option<Indexed<NamespaceMeta>>,
}

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
    let (controller, store) = watches::controller::<PrismNamespace>(watches);
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
    // ConfigMaps: the proxies' configs (a deleting namespace waits until its cluster's proxy no
    // longer serves it, and a change of the routes wakes it) and the namespaces' connection
    // details (their own children): one selector, one cache.
    let config_maps = children.owned::<ConfigMap>(config_maps());
    // A namespace appearing, changing or going decides whether another holds its name.
    let (_, rivals) = watches.watch::<PrismNamespace>(&Selector::default());
    let mut controller = controller
        .watches_stream(clusters, namespaces_of_cluster(store.clone()))
        .watches_stream(runners, namespaces_of_runner(store.clone()))
        .watches_stream(config_maps, namespaces_of_config_map(store.clone()))
        .watches_stream(rivals, rivals_of(store.clone()));
    let namespace_labels = match watches.namespaces() {
        Some((labels, changes)) => {
            children.wait_for(labels.clone());
            let relabelled = changes.predicate_filter(watches::labels_of, PredicateConfig::default());
            controller = controller.watches_stream(relabelled, namespaces_in(store.clone()));
            Some(labels)
        }
        None => None,
    };
    let reconciler = NamespaceReconciler { namespaces: store, namespace_labels };
    Driver::new(ctx, children.build(), reconciler).run(controller, shutdown)
}

/// Selects the ConfigMaps this controller reads: every cluster's proxy config and every
/// PrismNamespace's connection details.
fn config_maps() -> Selector {
    let components = [naming::PROXY_COMPONENT.to_string(), build::CONNECTION_COMPONENT.to_string()];
    Selector::from_iter([
        Expression::In(labels::COMPONENT.into(), components.into_iter().collect()),
        Expression::Equal(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
    ])
}

/// A proxy config changed: the namespaces of its cluster that are being deleted look again (their
/// teardown waits for the routes to drop them). A connection ConfigMap changed (or went): its
/// PrismNamespace puts it back.
fn namespaces_of_config_map(
    store: Indexed<PrismNamespace>,
) -> impl Fn(ConfigMap) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    move |config| {
        let ns = config.namespace().unwrap_or_default();
        let Some(cluster) = config.labels().get(labels::CLUSTER) else {
            let owner = config.owner_references().iter().find(|o| o.controller == Some(true));
            return owner.map(|o| ObjectRef::new(&o.name).within(&ns)).into_iter().collect();
        };
        let target = ClusterRef { namespace: &ns, name: cluster };
        let deleting = |n: &PrismNamespace| n.cluster_ref() == target && n.metadata.deletion_timestamp.is_some();
        store.state_filter(deleting).iter().map(|n| ObjectRef::from_obj(n.as_ref())).collect()
    }
}

/// A PrismCluster change wakes the namespaces that name it, in any namespace.
fn namespaces_of_cluster<M: Resource>(
    store: Indexed<PrismNamespace>,
) -> impl Fn(M) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    move |cluster| {
        let (name, ns) = (cluster.name_any(), cluster.namespace().unwrap_or_default());
        let named = store.state_filter(|n| n.cluster_ref() == ClusterRef { namespace: &ns, name: &name });
        named.iter().map(|n| ObjectRef::from_obj(n.as_ref())).collect()
    }
}

/// A PrismNamespace change wakes the others asking its cluster for the same name: one going, or
/// becoming admitted, may change which holds it.
fn rivals_of(
    store: Indexed<PrismNamespace>,
) -> impl Fn(PrismNamespace) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    move |changed| {
        let (name, uid) = (changed.name_any(), changed.uid());
        let target = changed.cluster_ref();
        let rivals = store.state_filter(|n| n.name_any() == name && n.uid() != uid && n.cluster_ref() == target);
        rivals.iter().map(|n| ObjectRef::from_obj(n.as_ref())).collect()
    }
}

/// A Kubernetes namespace relabelled wakes its PrismNamespaces attached elsewhere (admitted or not
/// any more) and their rivals for their names.
fn namespaces_in(
    store: Indexed<PrismNamespace>,
) -> impl Fn(NamespaceMeta) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    let rivals = rivals_of(store.clone());
    move |relabelled| {
        let ns = relabelled.name_any();
        let tenants = store.in_namespace(&ns, |n| n.is_cross_namespace());
        let mut woken: Vec<ObjectRef<PrismNamespace>> =
            tenants.iter().flat_map(|n| rivals(n.as_ref().clone())).collect();
        woken.extend(tenants.iter().map(|n| ObjectRef::from_obj(n.as_ref())));
        woken
    }
}

/// A runner change wakes the namespace that owns it (a dedicated runner: by owner reference, or
/// for a tenant's, by its labels) and the namespaces of its cluster that it serves (a shared
/// runner becoming Running, or going away).
fn namespaces_of_runner<M: Resource>(
    store: Indexed<PrismNamespace>,
) -> impl Fn(M) -> Vec<ObjectRef<PrismNamespace>> + Send + Sync + 'static {
    move |runner| {
        let (name, ns) = (runner.name_any(), runner.namespace().unwrap_or_default());
        let owner = runner
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == PrismNamespace::kind(&()))
            .map(|o| ObjectRef::<PrismNamespace>::new(&o.name).within(&ns));
        let labels = runner.labels();
        let tenant = labels
            .get(labels::TENANT_NAMESPACE)
            .zip(labels.get(labels::NAMESPACE))
            .map(|(tenant_ns, tenant)| ObjectRef::<PrismNamespace>::new(tenant).within(tenant_ns));
        let Some(cluster) = labels.get(labels::CLUSTER).cloned() else {
            return owner.into_iter().chain(tenant).collect();
        };
        let target = ClusterRef { namespace: &ns, name: &cluster };
        let serves = |n: &PrismNamespace| {
            n.cluster_ref() == target && n.spec.settings.patterns.iter().any(|p| routes::runner_for(n, p) == name)
        };
        let served = store.state_filter(serves);
        owner.into_iter().chain(tenant).chain(served.iter().map(|n| ObjectRef::from_obj(n.as_ref()))).collect()
    }
}
