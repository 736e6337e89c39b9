//! The PrismCluster controller: a whole Prism deployment (backends, admin, proxy, child
//! PrismPatterns and PrismNamespaces, ingress, observability).
//!
//! Pipeline: validate -> build (pure) -> apply in dependency order (skipping writes that change
//! nothing) -> prune -> status from observed children. A finalizer tears down in order.

pub mod build;
mod reconcile;
pub mod routes;
pub mod status;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::core::{Expression, Selector};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use prism_api::names::labels;
use prism_api::v1alpha1::PrismCluster;
use prism_api::v1alpha2::PrismNamespace;
use prism_api::v1beta1::PrismPattern;

use crate::cache::ChildrenBuilder;
use crate::context::Context;
use crate::watches::{self, api_served, cached_changes};
pub use reconcile::ClusterContext;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "prismcluster";

/// Runs the PrismCluster controller until `shutdown` completes.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static) {
    let client = ctx.client.clone();
    let ns = ctx.config.namespace.as_deref();
    let mut children = ChildrenBuilder::default();
    // Patterns and namespaces are read at every reconcile (routes, status): cache them, and let a
    // change of one wake the cluster it names.
    let (patterns, pattern_writer) = reflector::store();
    let (namespaces, namespace_writer) = reflector::store();
    children.keep(patterns.clone(), Selector::default());
    children.keep(namespaces.clone(), Selector::default());
    let pattern_changes = cached_changes(&client, ns, watcher::Config::default(), pattern_writer);
    let namespace_changes = cached_changes(&client, ns, watcher::Config::default(), namespace_writer);
    // The cluster's own children: the pattern controller has the runners.
    let own = || {
        Selector::from_iter([
            Expression::Exists(labels::CLUSTER.into()),
            Expression::Equal(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
            Expression::NotEqual(labels::COMPONENT.into(), "pattern-runner".into()),
        ])
    };
    let controller = watches::controller::<PrismCluster>(&client, ns)
        .owns_stream(children.watch::<StatefulSet>(&client, ns, own()))
        .owns_stream(children.watch::<Deployment>(&client, ns, own()))
        .owns_stream(children.watch::<Service>(&client, ns, own()))
        .owns_stream(children.watch::<ConfigMap>(&client, ns, own()))
        .owns_stream(children.watch::<PodDisruptionBudget>(&client, ns, own()))
        .owns_stream(children.watch::<HorizontalPodAutoscaler>(&client, ns, own()))
        .owns_stream(children.watch::<Ingress>(&client, ns, own()))
        // Retained credentials and volumes carry no owner reference (so that garbage collection
        // leaves them): their label says which cluster they belong to.
        .watches_stream(children.watch::<Secret>(&client, ns, own()), cluster_of_label)
        .watches_stream(children.watch::<PersistentVolumeClaim>(&client, ns, own()), cluster_of_label)
        .watches_stream(pattern_changes, |p: PrismPattern| cluster_named(&p.spec.cluster, p.namespace()))
        .watches_stream(namespace_changes, |n: PrismNamespace| cluster_named(&n.spec.cluster, n.namespace()));
    let service_monitor_api = api_served(&client, "monitoring.coreos.com/v1", "servicemonitors").await;
    let ctx = Arc::new(ctx.for_controller(children.build()));
    let cc = Arc::new(ClusterContext { ctx: ctx.clone(), patterns, namespaces, service_monitor_api });
    let concurrency = ctx.config.concurrency;
    watches::run(controller, reconcile::reconcile, reconcile::error_policy, cc, concurrency, shutdown).await;
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
