//! The PrismPattern controller: one pattern runner (ConfigMap, Service, workload, autoscaler).
//!
//! Pipeline: read the pattern and its cluster -> validate -> wait for backends -> build (pure) ->
//! apply (skipping writes that change nothing) -> prune the autoscaler not wanted -> status.

pub mod build;
mod reconcile;
pub mod status;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{Expression, Selector};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{PredicateConfig, WatchStreamExt};
use kube::{Resource, ResourceExt};
use prism_api::names::{field_managers, finalizers, labels};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismPattern;

use crate::cache::ChildrenBuilder;
use crate::context::{Context, Identity};
use crate::driver::Driver;
use crate::indexed::Indexed;
use crate::kinds::{self, api_served};
use crate::naming;
use crate::watches::{self, SharedWatches};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "prismpattern";

/// The PrismPattern controller's reconciler: it needs nothing beyond what the driver gives.
pub struct PatternReconciler;

/// Who this controller is: its name, field manager and finalizer.
pub const IDENTITY: Identity =
    Identity { controller: CONTROLLER, field_manager: field_managers::PATTERN, finalizer: finalizers::PATTERN };

/// Runs the PrismPattern controller alone until `shutdown` completes.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static) {
    crate::run_some(ctx, shutdown, &[crate::Kind::Pattern]).await;
}

/// Sets up the PrismPattern controller's watches in `watches`; the future it returns runs the
/// controller until `shutdown` completes.
pub async fn start<S>(ctx: Arc<Context>, watches: &SharedWatches, shutdown: S) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let (controller, store) = watches::controller::<PrismPattern>(watches);
    let mut children = ChildrenBuilder::new(watches);
    let runners = || Selector::from(Expression::Equal(labels::COMPONENT.into(), naming::RUNNER_COMPONENT.into()));
    // ConfigMaps: the runners' own, and the proxies' configs, whose routes a deleting pattern
    // waits on (one watch, one cache; the sweep only deletes what a pattern controls).
    let config_maps = Selector::from(Expression::In(
        labels::COMPONENT.into(),
        [naming::RUNNER_COMPONENT.to_string(), naming::PROXY_COMPONENT.to_string()].into(),
    ));
    // Children in apply order (the sweep deletes in reverse).
    let mut controller = controller
        .watches_stream(children.owned::<ConfigMap>(config_maps), owner_or_waiting(store.clone()))
        .owns_stream(children.owned::<Service>(runners()))
        .owns_stream(children.owned::<Deployment>(runners()))
        .watches_stream(children.owned::<StatefulSet>(kinds::stateful_sets()), owner_or_dependents(store.clone()))
        .owns_stream(children.owned::<HorizontalPodAutoscaler>(runners()))
        // Only a change of the cluster's spec or identity matters to its patterns, not its status.
        .watches_stream(
            children
                .referenced::<PrismCluster>(Selector::default())
                .predicate_filter(watches::spec_or_identity, PredicateConfig::default()),
            patterns_of_cluster(store.clone()),
        );
    if keda_installed(&ctx.client).await {
        let resource = build::scaled_object_resource();
        controller = controller.owns_stream(children.owned_dynamic(&resource, runners()));
    } else {
        tracing::info!("KEDA's ScaledObject API is not installed: patterns with scaler keda report Autoscaling=False");
    }
    Driver::new(ctx, children.build(), PatternReconciler).run(controller, shutdown)
}

/// Whether KEDA's ScaledObject API is served, so that it can be watched.
pub async fn keda_installed(client: &kube::Client) -> bool {
    api_served(client, "keda.sh/v1alpha1", &build::scaled_object_resource().plural).await
}

/// A ConfigMap changing wakes the pattern that owns it (a runner's), or the patterns of its
/// cluster that are being deleted (a proxy's config: their teardown waits for its routes to drop
/// them).
fn owner_or_waiting(
    store: Indexed<PrismPattern>,
) -> impl Fn(ConfigMap) -> Vec<ObjectRef<PrismPattern>> + Send + Sync + 'static {
    move |config| {
        let ns = config.namespace();
        if let Some(owner) = pattern_owner(config.meta()) {
            return ns.map(|ns| ObjectRef::new(&owner).within(&ns)).into_iter().collect();
        }
        let Some(cluster) = config.labels().get(labels::CLUSTER) else { return Vec::new() };
        let deleting = |p: &PrismPattern| &p.spec.cluster == cluster && p.metadata.deletion_timestamp.is_some();
        let waiting = store.in_namespace(ns.as_deref().unwrap_or_default(), deleting);
        waiting.iter().map(|p| ObjectRef::from_obj(p.as_ref())).collect()
    }
}

/// The PrismPattern that controls an object, if one does.
fn pattern_owner(meta: &ObjectMeta) -> Option<String> {
    let (kind, group) = (<PrismPattern as Resource>::kind(&()), <PrismPattern as Resource>::group(&()));
    let owners = meta.owner_references.iter().flatten();
    owners
        .filter(|o| o.controller == Some(true) && o.kind == kind && o.api_version.split('/').next() == Some(&group))
        .map(|o| o.name.clone())
        .next()
}

/// A PrismCluster change wakes the patterns that name it.
fn patterns_of_cluster<M: kube::Resource>(
    store: Indexed<PrismPattern>,
) -> impl Fn(M) -> Vec<ObjectRef<PrismPattern>> + Send + Sync + 'static {
    move |cluster| {
        let (name, ns) = (cluster.name_any(), cluster.meta().namespace.as_deref());
        let named = store.in_namespace(ns.unwrap_or_default(), |p| p.spec.cluster == name);
        named.iter().map(|p| ObjectRef::from_obj(p.as_ref())).collect()
    }
}

/// A StatefulSet changing wakes the pattern that owns it (a runner's), or the patterns that use it
/// (a backend's, e.g. becoming ready).
fn owner_or_dependents(
    store: Indexed<PrismPattern>,
) -> impl Fn(StatefulSet) -> Vec<ObjectRef<PrismPattern>> + Send + Sync + 'static {
    let dependents = patterns_of_backend(store);
    move |set| match (pattern_owner(&set.metadata), set.namespace()) {
        (Some(owner), Some(ns)) => vec![ObjectRef::new(&owner).within(&ns)],
        _ => dependents(set),
    }
}

/// A backend's StatefulSet changing (e.g. becoming ready) wakes the patterns that use it.
fn patterns_of_backend<M: kube::Resource>(
    store: Indexed<PrismPattern>,
) -> impl Fn(M) -> Vec<ObjectRef<PrismPattern>> + Send + Sync + 'static {
    move |backend| {
        let labels = backend.labels();
        let (Some(cluster), Some(kind)) = (labels.get(labels::CLUSTER), labels.get(labels::BACKEND)) else {
            return Vec::new();
        };
        let uses =
            |p: &PrismPattern| &p.spec.cluster == cluster && p.spec.backends.iter().any(|b| b.name.as_str() == kind);
        let users = store.in_namespace(backend.meta().namespace.as_deref().unwrap_or_default(), uses);
        users.iter().map(|p| ObjectRef::from_obj(p.as_ref())).collect()
    }
}
