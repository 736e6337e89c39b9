//! One reconcile of a PrismCluster: I/O at the edges; validate, build and status decide.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use prism_api::names::{field_managers, finalizers, labels};
use prism_api::v1alpha1::{DeletionPolicy, NamespaceSummary, PrismCluster};
use prism_api::v1alpha2::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use serde_json::json;

use super::CONTROLLER;
use super::build::{self, ClusterObjects, Credentials, Inputs};
use super::status::{self, Observations};
use super::validate::{self, ValidatedCluster};
use crate::apply::{Writer, api_error};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::naming;
use crate::routes::Routes;
use crate::workload::WorkloadView;

/// The shared context plus the caches this controller reads from.
pub struct ClusterContext {
    pub ctx: Arc<Context>,
    pub patterns: Store<PrismPattern>,
    pub namespaces: Store<PrismNamespace>,
    /// Whether the Prometheus Operator's ServiceMonitor API is served.
    pub service_monitor_api: bool,
}

pub async fn reconcile(cluster: Arc<PrismCluster>, cc: Arc<ClusterContext>) -> Result<Action> {
    let ctx = &cc.ctx;
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let ns = cluster.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<PrismCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let key = crate::policy::backoff_key(CONTROLLER, cluster.as_ref());
    let action = finalizer(&api, finalizers::CLUSTER, cluster, |event| async {
        match event {
            Finalizer::Apply(cluster) => apply(&cluster, &cc).await,
            Finalizer::Cleanup(cluster) => teardown(&cluster, &cc).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.backoffs.reset(&key);
    Ok(action)
}

pub fn error_policy(cluster: Arc<PrismCluster>, error: &Error, cc: Arc<ClusterContext>) -> Action {
    crate::policy::on_error(cluster.as_ref(), error, &cc.ctx, CONTROLLER, field_managers::CLUSTER)
}

fn writer<'a>(cluster: &PrismCluster, ctx: &'a Context) -> Writer<'a> {
    Writer { ctx, controller: CONTROLLER, field_manager: field_managers::CLUSTER, parent: cluster.object_ref(&()) }
}

fn api<K>(ctx: &Context, ns: &str) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(ctx.client.clone(), ns)
}

async fn apply(cluster: &PrismCluster, cc: &ClusterContext) -> Result<Action> {
    let ctx = &cc.ctx;
    let observations = match validate::validate(cluster) {
        Err(invalid) => Observations { invalid: Some(invalid), ..Observations::default() },
        Ok(valid) if cluster.spec.paused => Observations { paused: true, ..observe(&valid, cc).await? },
        Ok(valid) => realise(cluster, &valid, cc).await?,
    };
    write_status(cluster, ctx, observations).await?;
    Ok(Action::requeue(ctx.config.resync))
}

/// Applies every object in dependency order, prunes what is no longer wanted, and observes.
async fn realise(cluster: &PrismCluster, valid: &ValidatedCluster, cc: &ClusterContext) -> Result<Observations> {
    let ctx = &cc.ctx;
    let ns = &valid.namespace;
    let w = writer(cluster, ctx);
    let owner = cluster.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let credentials = build::complete_credentials(valid, read_credentials(valid, &w).await?);
    let routes = render_routes(valid, cc);
    let live_proxy = ctx.live(&api::<Deployment>(ctx, ns), &naming::proxy_service(&valid.name)).await?;
    let objects = build::build(
        valid,
        &Inputs {
            owner: owner.clone(),
            credentials: &credentials,
            routes: &routes,
            service_monitor_api: cc.service_monitor_api,
        },
    );
    let kept = names_of(&objects);
    for secret in objects.secrets {
        w.apply(&api::<Secret>(ctx, ns), secret).await?;
    }
    for config_map in objects.config_maps {
        w.apply(&api::<ConfigMap>(ctx, ns), config_map).await?;
    }
    let mut backends = Vec::new();
    for b in objects.backends {
        w.apply(&api::<Service>(ctx, ns), b.headless).await?;
        w.apply(&api::<Service>(ctx, ns), b.client).await?;
        let (set, _) = w.apply(&api::<StatefulSet>(ctx, ns), b.stateful_set).await?;
        if let Some(pdb) = b.pdb {
            w.apply(&api::<PodDisruptionBudget>(ctx, ns), pdb).await?;
        }
        backends.push((b.kind.as_str().to_string(), Some(WorkloadView::of_stateful_set(&set))));
    }
    if let Some(volume) = objects.admin_volume {
        w.apply(&api::<PersistentVolumeClaim>(ctx, ns), volume).await?;
    }
    w.apply(&api::<Service>(ctx, ns), objects.admin_service).await?;
    let (admin, _) = w.apply(&api::<Deployment>(ctx, ns), objects.admin).await?;
    w.apply(&api::<Service>(ctx, ns), objects.proxy_service).await?;
    if let (Some(live), Some(_)) = (&live_proxy, &objects.proxy_hpa) {
        w.hand_over_replicas(&api::<Deployment>(ctx, ns), live).await?;
    }
    let (proxy, _) = w.apply(&api::<Deployment>(ctx, ns), objects.proxy).await?;
    if let Some(hpa) = objects.proxy_hpa {
        w.apply(&api::<HorizontalPodAutoscaler>(ctx, ns), hpa).await?;
    }
    if let Some(pdb) = objects.proxy_pdb {
        w.apply(&api::<PodDisruptionBudget>(ctx, ns), pdb).await?;
    }
    for pattern in objects.patterns {
        w.apply(&api::<PrismPattern>(ctx, ns), pattern).await?;
    }
    for namespace in objects.namespaces {
        w.apply(&api::<PrismNamespace>(ctx, ns), namespace).await?;
    }
    if let Some(ingress) = objects.ingress {
        w.apply(&api::<Ingress>(ctx, ns), ingress).await?;
    }
    if let Some(monitor) = objects.service_monitor {
        let resource = build::service_monitor_resource();
        w.apply_with(&Api::namespaced_with(ctx.client.clone(), ns, &resource), monitor, &resource).await?;
    }
    // Pruning reads the cache: every pass. ServiceMonitors are not cached (their API is optional):
    // they are listed only when the spec changed, the only way one becomes unwanted.
    prune(valid, &w, &owner, &kept).await?;
    let spec_changed = cluster.status.as_ref().and_then(|s| s.observed_generation) != cluster.metadata.generation;
    if spec_changed && cc.service_monitor_api {
        let resource = build::service_monitor_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &resource);
        w.prune_with(&api, &resource, &children_selector(valid), &owner.uid, &kept.service_monitors).await?;
    }
    let mut observed = observe_children(valid, cc);
    observed.admin = Some(WorkloadView::of_deployment(&admin));
    observed.proxy = Some(WorkloadView::of_deployment(&proxy));
    observed.backends = backends;
    observed.observability = observability_problems(valid, cc.service_monitor_api);
    Ok(observed)
}

/// Names of every desired child, by kind: what prune keeps.
struct Kept {
    secrets: Vec<String>,
    config_maps: Vec<String>,
    services: Vec<String>,
    stateful_sets: Vec<String>,
    deployments: Vec<String>,
    pdbs: Vec<String>,
    hpas: Vec<String>,
    patterns: Vec<String>,
    namespaces: Vec<String>,
    ingresses: Vec<String>,
    service_monitors: Vec<String>,
}

fn names_of(objects: &ClusterObjects) -> Kept {
    fn names<K: Resource>(items: impl IntoIterator<Item = K>) -> Vec<String> {
        items.into_iter().filter_map(|k| k.meta().name.clone()).collect()
    }
    let b = &objects.backends;
    Kept {
        secrets: names(objects.secrets.clone()),
        config_maps: names(objects.config_maps.clone()),
        services: names(
            b.iter()
                .flat_map(|b| [b.headless.clone(), b.client.clone()])
                .chain([objects.admin_service.clone(), objects.proxy_service.clone()]),
        ),
        stateful_sets: names(b.iter().map(|b| b.stateful_set.clone())),
        deployments: names([objects.admin.clone(), objects.proxy.clone()]),
        pdbs: names(b.iter().filter_map(|b| b.pdb.clone()).chain(objects.proxy_pdb.clone())),
        hpas: names(objects.proxy_hpa.clone()),
        patterns: names(objects.patterns.clone()),
        namespaces: names(objects.namespaces.clone()),
        ingresses: names(objects.ingress.clone()),
        service_monitors: names(objects.service_monitor.clone()),
    }
}

/// Selects the cluster's children.
fn children_selector(valid: &ValidatedCluster) -> String {
    format!("{}={},{}={}", labels::CLUSTER, valid.name, labels::MANAGED_BY, labels::MANAGED_BY_VALUE)
}

/// Deletes the cluster's children that are no longer desired (a pattern, namespace or backend
/// removed from the spec, autoscaling turned off, ...). Data volumes follow the deletion policy.
async fn prune(valid: &ValidatedCluster, w: &Writer<'_>, owner: &OwnerReference, kept: &Kept) -> Result<()> {
    let ctx = w.ctx;
    let ns = &valid.namespace;
    let selector = children_selector(valid);
    let uid = owner.uid.as_str();
    w.prune(&api::<PrismNamespace>(ctx, ns), &selector, uid, &kept.namespaces).await?;
    w.prune(&api::<PrismPattern>(ctx, ns), &selector, uid, &kept.patterns).await?;
    w.prune(&api::<Ingress>(ctx, ns), &selector, uid, &kept.ingresses).await?;
    w.prune(&api::<HorizontalPodAutoscaler>(ctx, ns), &selector, uid, &kept.hpas).await?;
    w.prune(&api::<PodDisruptionBudget>(ctx, ns), &selector, uid, &kept.pdbs).await?;
    w.prune(&api::<Deployment>(ctx, ns), &selector, uid, &kept.deployments).await?;
    w.prune(&api::<StatefulSet>(ctx, ns), &selector, uid, &kept.stateful_sets).await?;
    w.prune(&api::<Service>(ctx, ns), &selector, uid, &kept.services).await?;
    w.prune(&api::<ConfigMap>(ctx, ns), &selector, uid, &kept.config_maps).await?;
    w.prune(&api::<Secret>(ctx, ns), &selector, uid, &kept.secrets).await?;
    if valid.spec.deletion_policy == DeletionPolicy::Delete {
        delete_volumes_of_removed_backends(valid, w).await?;
    }
    Ok(())
}

/// With the Delete policy, a removed backend's volumes (not owned by anything: the StatefulSet
/// controller creates them) go too.
async fn delete_volumes_of_removed_backends(valid: &ValidatedCluster, w: &Writer<'_>) -> Result<()> {
    let pvcs = api::<PersistentVolumeClaim>(w.ctx, &valid.namespace);
    let selector = format!("{}={},{}", labels::CLUSTER, valid.name, labels::BACKEND);
    let list = pvcs
        .list_metadata(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(|source| api_error("list", "PersistentVolumeClaim", &selector, source))?;
    for pvc in list.items {
        let backend = pvc.labels().get(labels::BACKEND).cloned().unwrap_or_default();
        let enabled = valid.spec.backends.enabled().any(|(kind, _)| kind.as_str() == backend);
        if !enabled && pvc.metadata.deletion_timestamp.is_none() {
            w.delete(&pvcs, &pvc.name_any()).await?;
        }
    }
    Ok(())
}

/// The credentials already in the backends' Secrets (never regenerated). A Secret someone
/// deleted lingers thanks to its protection finalizer: its data is read back here, then the
/// finalizer released so that this reconcile recreates it with the same credentials.
async fn read_credentials(valid: &ValidatedCluster, w: &Writer<'_>) -> Result<Credentials> {
    let secrets = api::<Secret>(w.ctx, &valid.namespace);
    let mut credentials = Credentials::new();
    // Only backends with credentials have a Secret (NATS has none: no need to look for it).
    let with_secrets = valid
        .spec
        .backends
        .enabled()
        .filter(|(kind, _)| crate::backends::facts(*kind).is_some_and(|facts| !facts.secret_keys.is_empty()));
    for (kind, _) in with_secrets {
        let name = naming::backend_secret(&valid.name, kind);
        let Some(secret) = w.ctx.live(&secrets, &name).await? else { continue };
        let deleting = secret.metadata.deletion_timestamp.is_some();
        let data: BTreeMap<String, String> = secret
            .data
            .clone()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v)))
            .collect();
        if !data.is_empty() {
            credentials.insert(kind, data);
        }
        if deleting {
            w.announce(
                EventType::Warning,
                "CredentialsRecreated",
                &format!("Secret {name} was deleted: recreating it with the same credentials"),
            );
            release_credentials(&secrets, &secret).await?;
        }
    }
    Ok(credentials)
}

/// Removes the credentials protection finalizer (and only it) from `secret`.
async fn release_credentials(secrets: &Api<Secret>, secret: &Secret) -> Result<()> {
    let ours = prism_api::names::finalizers::CREDENTIALS;
    let finalizers = secret.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == ours) {
        return Ok(());
    }
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != ours).collect();
    let name = secret.name_any();
    // The resourceVersion makes it a compare-and-swap: another finalizer added meanwhile is kept.
    let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": secret.resource_version()}});
    secrets
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| api_error("release", "Secret", &name, source))?;
    Ok(())
}

fn render_routes(valid: &ValidatedCluster, cc: &ClusterContext) -> Routes {
    let in_ns = |object_ns: Option<String>| object_ns.as_deref() == Some(valid.namespace.as_str());
    let patterns: Vec<PrismPattern> =
        cc.patterns.state().iter().filter(|p| in_ns(p.namespace())).map(|p| p.as_ref().clone()).collect();
    let namespaces: Vec<PrismNamespace> =
        cc.namespaces.state().iter().filter(|n| in_ns(n.namespace())).map(|n| n.as_ref().clone()).collect();
    super::routes::routes(valid, &patterns, &namespaces)
}

/// Child PrismPatterns' and PrismNamespaces' state, from the caches.
fn observe_children(valid: &ValidatedCluster, cc: &ClusterContext) -> Observations {
    let patterns = valid
        .spec
        .patterns
        .iter()
        .map(|entry| {
            let name = naming::cluster_pattern(&valid.name, &entry.name);
            let found = cc
                .patterns
                .state()
                .into_iter()
                .find(|p| p.name_any() == name && p.namespace().as_deref() == Some(&valid.namespace));
            (entry.name.clone(), found.and_then(|p| p.status.clone()))
        })
        .collect();
    let namespaces = cc
        .namespaces
        .state()
        .iter()
        .filter(|n| n.spec.cluster == valid.name && n.namespace().as_deref() == Some(&valid.namespace))
        .map(|n| NamespaceSummary { name: n.name_any(), phase: n.status.as_ref().and_then(|s| s.phase) })
        .collect();
    Observations { patterns, namespaces, ..Observations::default() }
}

/// Observation without writing (a paused cluster).
async fn observe(valid: &ValidatedCluster, cc: &ClusterContext) -> Result<Observations> {
    let ctx = &cc.ctx;
    let ns = &valid.namespace;
    let deployment = |name: String| async move { ctx.live(&api::<Deployment>(ctx, ns), &name).await };
    let mut observed = observe_children(valid, cc);
    observed.admin = deployment(naming::admin_service(&valid.name)).await?.as_ref().map(WorkloadView::of_deployment);
    observed.proxy = deployment(naming::proxy_service(&valid.name)).await?.as_ref().map(WorkloadView::of_deployment);
    for (kind, _) in valid.spec.backends.enabled() {
        let name = naming::backend_service(&valid.name, kind);
        let set = ctx.live(&api::<StatefulSet>(ctx, ns), &name).await?;
        observed.backends.push((kind.as_str().to_string(), set.as_ref().map(WorkloadView::of_stateful_set)));
    }
    Ok(observed)
}

fn observability_problems(valid: &ValidatedCluster, service_monitor_api: bool) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let Some(spec) = &valid.spec.observability else { return problems };
    if spec.prometheus.as_ref().is_some_and(|p| p.enabled) && !service_monitor_api {
        problems.push((
            "ServiceMonitorAPIMissing",
            "spec.observability.prometheus is enabled but the Prometheus Operator's ServiceMonitor API (monitoring.coreos.com/v1) is not installed: no ServiceMonitor was created".into(),
        ));
    }
    if spec.loki.as_ref().is_some_and(|l| l.enabled && l.url.is_none()) {
        problems.push((
            "LokiTargetMissing",
            "spec.observability.loki is enabled without a url: set spec.observability.loki.url".into(),
        ));
    }
    problems
}

async fn write_status(cluster: &PrismCluster, ctx: &Context, observed: Observations) -> Result<()> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let new = status::compute(cluster.status.as_ref(), cluster.metadata.generation, observed, &now);
    let ns = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    if let Some(phase) = new.phase {
        ctx.metrics.set_phase("PrismCluster", &ns, &name, &format!("{phase:?}"));
    }
    if cluster.status.as_ref() == Some(&new) {
        return Ok(());
    }
    if let Some(invalid) =
        new.conditions.iter().find(|c| c.type_ == prism_api::names::conditions::SPEC_VALID && c.status == "False")
    {
        writer(cluster, ctx).announce(EventType::Warning, &invalid.reason, &invalid.message);
    }
    let api: Api<PrismCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let body = json!({"apiVersion": "prism.io/v1alpha1", "kind": "PrismCluster", "status": new});
    api.patch_status(&name, &PatchParams::apply(field_managers::CLUSTER).force(), &Patch::Apply(&body))
        .await
        .map_err(|source| api_error("apply status", "PrismCluster", &name, source))?;
    Ok(())
}

/// Ordered teardown: namespaces, then patterns (their finalizers wait for the proxy to stop routing
/// to them, so the routes are emptied first), then proxy and admin, then backends; data volumes
/// and credentials stay unless the deletion policy is Delete.
async fn teardown(cluster: &PrismCluster, cc: &ClusterContext) -> Result<Action> {
    let ctx = &cc.ctx;
    let w = writer(cluster, ctx);
    let ns = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let uid = cluster.uid().ok_or(Error::MissingField("metadata.uid"))?;
    ctx.metrics.forget("PrismCluster", &ns, &name);
    empty_routes(cluster, &w).await?;
    let selector = format!("{}={}", labels::CLUSTER, name);
    let none: Vec<String> = Vec::new();
    let namespaces = w.prune(&api::<PrismNamespace>(ctx, &ns), &selector, &uid, &none).await?
        + delete_app_team_namespaces(cluster, cc, &w).await?;
    if namespaces > 0 {
        return Err(Error::Waiting(format!("tearing down {name}: waiting for its PrismNamespaces to go")));
    }
    if w.prune(&api::<PrismPattern>(ctx, &ns), &selector, &uid, &none).await? > 0 {
        return Err(Error::Waiting(format!("tearing down {name}: waiting for its PrismPatterns to go")));
    }
    let deployments = w.prune(&api::<Deployment>(ctx, &ns), &selector, &uid, &none).await?;
    w.prune(&api::<HorizontalPodAutoscaler>(ctx, &ns), &selector, &uid, &none).await?;
    if deployments > 0 {
        return Err(Error::Waiting(format!("tearing down {name}: waiting for the proxy and admin to go")));
    }
    if w.prune(&api::<StatefulSet>(ctx, &ns), &selector, &uid, &none).await? > 0 {
        return Err(Error::Waiting(format!("tearing down {name}: waiting for the backends to go")));
    }
    release_data(cluster, &w).await?;
    Ok(Action::await_change())
}

/// App teams' PrismNamespaces on this cluster (tied to it by a non-controller owner reference):
/// they go before the runners and backends they use, not after by garbage collection. Returns
/// how many remain.
async fn delete_app_team_namespaces(cluster: &PrismCluster, cc: &ClusterContext, w: &Writer<'_>) -> Result<usize> {
    let ns = cluster.namespace().unwrap_or_default();
    let uid = cluster.uid().unwrap_or_default();
    let api = api::<PrismNamespace>(w.ctx, &ns);
    let mut remaining = 0;
    for namespace in cc.namespaces.state().iter().filter(|n| n.namespace().as_deref() == Some(ns.as_str())) {
        let tied = namespace.owner_references().iter().any(|o| o.uid == uid && o.controller != Some(true));
        if !tied {
            continue;
        }
        remaining += 1;
        if namespace.metadata.deletion_timestamp.is_none() {
            w.delete(&api, &namespace.name_any()).await?;
        }
    }
    Ok(remaining)
}

/// The proxy routes to nothing any more: what lets the children's finalizers proceed.
async fn empty_routes(cluster: &PrismCluster, w: &Writer<'_>) -> Result<()> {
    let ns = cluster.namespace().unwrap_or_default();
    let configs = api::<ConfigMap>(w.ctx, &ns);
    let name = naming::proxy_config(&cluster.name_any());
    let live = w.ctx.live(&configs, &name).await?;
    let empty = Routes { cluster: cluster.name_any(), ..Routes::default() };
    if live.is_none() || Routes::from_config_map(live.as_ref()).as_ref() == Some(&empty) {
        return Ok(());
    }
    let owner = cluster.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let labels = crate::meta::component_labels(&cluster.name_any(), "proxy");
    let config = ConfigMap {
        metadata: crate::meta::object(&name, &ns, labels, Some(&owner)),
        data: Some(BTreeMap::from([(
            naming::PROXY_ROUTES_KEY.to_string(),
            serde_json::to_string(&empty).unwrap_or_default(),
        )])),
        ..ConfigMap::default()
    };
    w.apply(&configs, config).await.map(drop)
}

/// Credentials lose their protection when the cluster goes (retained ones stay, deletable by
/// hand); with the Delete policy, every data volume and credential of the cluster goes too.
async fn release_data(cluster: &PrismCluster, w: &Writer<'_>) -> Result<()> {
    let ns = cluster.namespace().unwrap_or_default();
    let selector = format!("{}={}", labels::CLUSTER, cluster.name_any());
    let params = kube::api::ListParams::default().labels(&selector);
    let delete = cluster.spec.deletion_policy == DeletionPolicy::Delete;
    let secrets = api::<Secret>(w.ctx, &ns);
    let list = secrets.list(&params).await.map_err(|source| api_error("list", "Secret", &selector, source))?;
    for secret in list.items {
        release_credentials(&secrets, &secret).await?;
        if delete {
            w.delete(&secrets, &secret.name_any()).await?;
        }
    }
    if delete {
        let pvcs = api::<PersistentVolumeClaim>(w.ctx, &ns);
        let list = pvcs
            .list_metadata(&params)
            .await
            .map_err(|source| api_error("list", "PersistentVolumeClaim", &selector, source))?;
        for pvc in list.items {
            w.delete(&pvcs, &pvc.name_any()).await?;
        }
    }
    Ok(())
}
