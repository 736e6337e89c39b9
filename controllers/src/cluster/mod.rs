//! The PrismCluster controller: a whole Prism deployment (backends, admin, proxy, child
//! PrismPatterns and PrismNamespaces, ingress, observability).
//!
//! Pipeline: validate -> read -> build (pure) -> apply in dependency order (skipping writes that
//! change nothing) -> sweep -> status from observed children. A finalizer tears down in order.

pub mod build;
pub mod credentials;
mod read;
mod reconcile;
pub mod routes;
pub mod status;
mod teardown;
pub mod validate;

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::ResourceExt;
use kube::api::ApiResource;
use kube::core::{Expression, Selector};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{PredicateConfig, WatchStreamExt};
use prism_api::names::{field_managers, finalizers, labels};
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{NamespacesFrom, PrismCluster};

use crate::cache::ChildrenBuilder;
use crate::context::{Context, Identity};
use crate::driver::Driver;
use crate::indexed::Indexed;
use crate::kinds::{self, api_served};
use crate::projection::Child;
use crate::watches::{self, SharedWatches};
use build::VisitKinds;
pub use reconcile::ClusterReconciler;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "prismcluster";

/// Who this controller is: its name, field manager and finalizer.
pub const IDENTITY: Identity =
    Identity { controller: CONTROLLER, field_manager: field_managers::CLUSTER, finalizer: finalizers::CLUSTER };

/// Runs the PrismCluster controller alone until `shutdown` completes.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static) {
    crate::run_some(ctx, shutdown, &[crate::Kind::Cluster]).await;
}

/// Sets up the PrismCluster controller's watches in `watches`; the future it returns runs the
/// controller until `shutdown` completes.
pub async fn start<S>(ctx: Arc<Context>, watches: &SharedWatches, shutdown: S) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let mut children = ChildrenBuilder::new(watches);
    // Patterns and namespaces are read at every pass (routes, status), app teams' ones too: cache
    // them all, and let a change of one wake the cluster it names.
    let (patterns, pattern_changes) = watches.watch::<PrismPattern>(&Selector::default());
    let (namespaces, namespace_changes) = watches.watch::<PrismNamespace>(&Selector::default());
    children.keep_owned(patterns.clone(), Selector::default());
    children.keep_owned(namespaces.clone(), Selector::default());
    let served = served_optional_kinds(&ctx.client).await;
    let mut watch = WatchChildren { children: &mut children, served: &served, triggers: Vec::new() };
    build::visit_kinds(&mut watch);
    let (controller, clusters) = watches::controller::<PrismCluster>(watches);
    let mut controller = controller
        .reconcile_on(stream::select_all(watch.triggers))
        .watches_stream(pattern_changes, |p: PrismPattern| cluster_named(&p.spec.cluster, p.namespace()))
        .watches_stream(namespace_changes, |n: PrismNamespace| {
            let target = n.cluster_ref();
            cluster_named(target.name, Some(target.namespace.to_string()))
        });
    // A namespace relabelled into (or out of) a cluster's selector is served (or not) without
    // anything else changing: the clusters that select by labels look again.
    let namespace_labels = match watches.namespaces() {
        Some((labels, changes)) => {
            children.wait_for(labels.clone());
            let relabelled = changes.predicate_filter(watches::labels_of, PredicateConfig::default());
            controller = controller.watches_stream(relabelled, selecting_clusters(clusters));
            Some(labels)
        }
        None => None,
    };
    let service_monitor_api = served.contains(&build::service_monitor_resource());
    let reconciler = ClusterReconciler { patterns, namespaces, namespace_labels, service_monitor_api };
    Driver::new(ctx, children.build(), reconciler).run(controller, shutdown)
}

/// The cluster's own children: every child kind, selected by label (the pattern controller has
/// the runners).
fn own() -> Selector {
    Selector::from_iter([
        Expression::Exists(labels::CLUSTER.into()),
        Expression::Equal(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
        Expression::NotEqual(labels::COMPONENT.into(), crate::naming::RUNNER_COMPONENT.into()),
    ])
}

/// Watches every kind of the cluster's object set; a change of a child wakes the cluster its
/// label names (retained credentials and volumes carry no owner reference, so that garbage
/// collection leaves them: the label is what they all have).
struct WatchChildren<'a, 'w> {
    children: &'a mut ChildrenBuilder<'w>,
    /// The optional kinds whose API is served.
    served: &'a [ApiResource],
    triggers: Vec<BoxStream<'static, ObjectRef<PrismCluster>>>,
}

impl VisitKinds for WatchChildren<'_, '_> {
    fn kind<K: Child>(&mut self) {
        // Patterns and namespaces are watched whole already.
        if !self.children.has::<K>() {
            // StatefulSets: one cache with the pattern controller's (see `kinds::stateful_sets`).
            let shared = TypeId::of::<K>() == TypeId::of::<StatefulSet>();
            let changes = self.children.owned::<K>(if shared { kinds::stateful_sets() } else { own() });
            self.triggers.push(changes.filter_map(|change| async move { cluster_of_label(change.ok()?) }).boxed());
        }
    }

    fn dynamic(&mut self, resource: ApiResource) {
        if self.served.contains(&resource) {
            let changes = self.children.owned_dynamic(&resource, own());
            self.triggers.push(changes.filter_map(|change| async move { cluster_of_label(change.ok()?) }).boxed());
        }
    }
}

/// The optional kinds of the object set (e.g. ServiceMonitors) whose API is served.
async fn served_optional_kinds(client: &kube::Client) -> Vec<ApiResource> {
    struct Optional(Vec<ApiResource>);
    impl VisitKinds for Optional {
        fn kind<K: Child>(&mut self) {}
        fn dynamic(&mut self, resource: ApiResource) {
            self.0.push(resource);
        }
    }
    let mut optional = Optional(Vec::new());
    build::visit_kinds(&mut optional);
    let mut served = Vec::new();
    for resource in optional.0 {
        if api_served(client, &resource.api_version, &resource.plural).await {
            served.push(resource);
        }
    }
    served
}

/// The clusters that admit tenants by a label selector.
fn selecting_clusters(
    store: Indexed<PrismCluster>,
) -> impl Fn(watches::NamespaceMeta) -> Vec<ObjectRef<PrismCluster>> + Send + Sync + 'static {
    move |_| {
        let selects =
            |c: &PrismCluster| c.spec.tenancy.as_ref().is_some_and(|t| t.namespaces.from == NamespacesFrom::Selector);
        store.state_filter(selects).iter().map(|c| ObjectRef::from_obj(c.as_ref())).collect()
    }
}

fn cluster_of_label<K: kube::Resource>(object: K) -> Option<ObjectRef<PrismCluster>> {
    let name = object.labels().get(labels::CLUSTER)?.clone();
    cluster_named(&name, object.namespace())
}

fn cluster_named(name: &str, namespace: Option<String>) -> Option<ObjectRef<PrismCluster>> {
    let reference = ObjectRef::new(name);
    Some(match namespace {
        Some(ns) => reference.within(&ns),
        None => reference,
    })
}
