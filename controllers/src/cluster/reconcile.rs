//! One pass of the PrismCluster controller over one cluster: read, then decide (validate, build,
//! status are pure), then write.

use std::future::Future;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use prism_api::names::labels;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{DeletionPolicy, PrismCluster, PrismClusterStatus};

use super::build::{self, Inputs, Role, Visit};
use super::read::{self, Read};
use super::status::{self, Observations};
use super::validate::{self, ValidatedCluster};
use super::{credentials, routes, teardown};
use crate::context::Identity;
use crate::driver::Reconciler;
use crate::error::{Error, Result};
use crate::indexed::Indexed;
use crate::metrics::Metrics;
use crate::projection::Child;
use crate::watches::{NamespaceMeta, namespace_labels};
use crate::workload::WorkloadView;
use crate::writer::Writer;

/// The PrismCluster controller's reconciler, with what it reads besides its children.
pub struct ClusterReconciler {
    /// Every PrismPattern and PrismNamespace in the watch scope, app teams' included (the routes
    /// list them all).
    pub patterns: Indexed<PrismPattern>,
    pub namespaces: Indexed<PrismNamespace>,
    /// The metadata of every Kubernetes namespace (their labels admit tenants); `None` when the
    /// operator watches one namespace.
    pub namespace_labels: Option<Indexed<NamespaceMeta>>,
    /// Whether the Prometheus Operator's ServiceMonitor API is served.
    pub service_monitor_api: bool,
}

impl Reconciler for ClusterReconciler {
    type Kind = PrismCluster;
    type Observations = Observations;

    const IDENTITY: Identity = super::IDENTITY;

    async fn apply(&self, cluster: &PrismCluster, w: &Writer<'_>) -> Result<Observations> {
        let valid = match validate::validate(cluster) {
            Ok(valid) => valid,
            // Nothing is written either way, but a pause the user asked for is reported as such.
            Err(invalid) => {
                return Ok(Observations {
                    invalid: Some(invalid),
                    paused: cluster.spec.paused,
                    ..Observations::default()
                });
            }
        };
        let read = read::read(&valid, &self.patterns, &self.namespaces, w).await?;
        if cluster.spec.paused {
            return Ok(Observations { paused: true, ..read.observed(&valid) });
        }
        self.realise(cluster, &valid, read, w).await
    }

    async fn cleanup(&self, cluster: &PrismCluster, w: &Writer<'_>) -> Result<()> {
        teardown::teardown(cluster, &self.namespaces, &self.patterns, w).await
    }

    fn record_metrics(status: &PrismClusterStatus, metrics: &Metrics, namespace: &str, name: &str) {
        if let Some(health) = status::health(status) {
            metrics.set_cluster_health(namespace, name, &health);
        }
    }

    fn forget_metrics(metrics: &Metrics, namespace: &str, name: &str) {
        metrics.forget_cluster(namespace, name);
    }
}

impl ClusterReconciler {
    /// Builds every object from what was read, applies them in dependency order, sweeps what is
    /// no longer wanted, and observes.
    async fn realise(
        &self,
        cluster: &PrismCluster,
        valid: &ValidatedCluster,
        read: Read,
        w: &Writer<'_>,
    ) -> Result<Observations> {
        for secret in &read.lingering_credentials {
            let note = format!("Secret {} was deleted: recreating it with the same credentials", secret.name_any());
            w.announce(EventType::Warning, "CredentialsRecreated", &note);
            credentials::release(w, secret).await?;
        }
        let owner = cluster.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
        let credentials = credentials::complete(valid, read.credentials.clone());
        let labels = |ns: &str| namespace_labels(self.namespace_labels.as_ref(), ns);
        let routes = routes::routes(valid, &read.patterns, &read.namespaces, labels);
        let inputs =
            Inputs { owner, credentials: &credentials, routes: &routes, service_monitor_api: self.service_monitor_api };
        let mut applier = Applier { w, live_proxy: read.proxy.as_ref(), observed: read.observed_children(valid) };
        build::build(valid, &inputs).visit(&mut applier).await?;
        w.sweep(&children_selector(valid)).await?;
        sweep_orphaned_runners(valid, &read.patterns, &self.namespaces, w).await?;
        if valid.spec.deletion_policy == DeletionPolicy::Delete {
            delete_volumes_of_removed_backends(valid, w).await?;
            credentials::release_removed(valid, w).await?;
        }
        Ok(Observations { observability: observability_problems(valid, self.service_monitor_api), ..applier.observed })
    }
}

/// Applies a cluster's objects as [`build::ClusterObjects::visit`] hands them out, observing the
/// workloads as applied.
struct Applier<'a> {
    w: &'a Writer<'a>,
    /// The proxy's Deployment before this pass, for the hand-over of its replicas.
    live_proxy: Option<&'a Deployment>,
    observed: Observations,
}

impl Visit for Applier<'_> {
    type Error = Error;

    // Boxed: the visit awaits a dozen kinds in turn, and unboxed, each kind's future would take its
    // own room in the visit's stack frame (hundreds of kilobytes in a debug build).
    fn object<K: Child>(&mut self, role: Role, object: K) -> impl Future<Output = Result<()>> + Send {
        Box::pin(async move {
            if let (Role::Proxy { autoscaled: true }, Some(live)) = (role, self.live_proxy) {
                self.w.hand_over_replicas(live).await?;
            }
            let (applied, _) = self.w.apply(object).await?;
            let view = WorkloadView::of_any(&applied);
            match role {
                Role::Plain => {}
                Role::Backend(kind) => self.observed.backends.push((kind.as_str().to_string(), view)),
                Role::Admin => self.observed.admin = view,
                Role::Proxy { .. } => self.observed.proxy = view,
            }
            Ok(())
        })
    }

    fn dynamic(&mut self, object: DynamicObject, resource: ApiResource) -> impl Future<Output = Result<()>> + Send {
        Box::pin(async move { self.w.apply_dynamic(object, &resource).await.map(drop) })
    }
}

/// Selects the cluster's children.
fn children_selector(valid: &ValidatedCluster) -> String {
    format!("{}={},{}={}", labels::CLUSTER, valid.name, labels::MANAGED_BY, labels::MANAGED_BY_VALUE)
}

/// Deletes the runners of tenants that are gone: a tenant's runners live in the cluster's
/// namespace, tied to its PrismNamespace by labels, and its finalizer deletes them; this catches
/// those left behind when the finalizer was removed by force.
async fn sweep_orphaned_runners(
    valid: &ValidatedCluster,
    patterns: &[PrismPattern],
    namespaces: &Indexed<PrismNamespace>,
    w: &Writer<'_>,
) -> Result<()> {
    let alive = |uid: &str| namespaces.find(|n| n.uid().as_deref() == Some(uid)).is_some();
    for runner in orphaned_runners(&valid.name, patterns, alive) {
        w.announce(
            EventType::Normal,
            "OrphanSwept",
            &format!("PrismPattern {runner}: its tenant's PrismNamespace is gone"),
        );
        w.delete::<PrismPattern>(&runner).await?;
    }
    Ok(())
}

/// The tenants' runners of cluster `cluster` among `patterns` whose PrismNamespace is not
/// `alive` (by uid), not already going.
pub fn orphaned_runners(cluster: &str, patterns: &[PrismPattern], alive: impl Fn(&str) -> bool) -> Vec<String> {
    patterns
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.labels().get(labels::CLUSTER).map(String::as_str) == Some(cluster)
        })
        .filter(|p| p.labels().get(labels::TENANT_UID).is_some_and(|uid| !alive(uid)))
        .map(ResourceExt::name_any)
        .collect()
}

/// With the Delete policy, a removed backend's volumes (not owned by anything: the StatefulSet
/// controller creates them) go too. They carry the cluster's labels, so the volume cache holds
/// them: read there (a list here was a request on every reconcile, resyncs included), listed only
/// until that cache has its first list.
async fn delete_volumes_of_removed_backends(valid: &ValidatedCluster, w: &Writer<'_>) -> Result<()> {
    let selector = format!("{}={},{}", labels::CLUSTER, valid.name, labels::BACKEND);
    let volumes: Vec<ObjectMeta> = match w.children.all_in::<PersistentVolumeClaim>(&valid.namespace) {
        Some(cached) => cached.iter().map(|pvc| pvc.metadata.clone()).collect(),
        None => w
            .api::<PersistentVolumeClaim>()
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::api("list", "PersistentVolumeClaim", &selector, source))?
            .items
            .into_iter()
            .map(|pvc| pvc.metadata)
            .collect(),
    };
    for pvc in volumes.iter().filter(|meta| removed_backend_volume(valid, meta)) {
        w.delete::<PersistentVolumeClaim>(pvc.name.as_deref().unwrap_or_default()).await?;
    }
    Ok(())
}

/// Whether `pvc` is a live volume of one of the cluster's backends that is no longer enabled.
fn removed_backend_volume(valid: &ValidatedCluster, pvc: &ObjectMeta) -> bool {
    let labels = pvc.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    let Some(backend) = label(labels::BACKEND) else { return false };
    label(labels::CLUSTER) == Some(valid.name.as_str())
        && pvc.deletion_timestamp.is_none()
        && !valid.spec.backends.enabled().any(|(kind, _)| kind.as_str() == backend)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn runner(name: &str, cluster: &str, tenant_uid: Option<&str>, going: bool) -> PrismPattern {
        let mut labels = json!({"prism.io/cluster": cluster});
        if let Some(uid) = tenant_uid {
            labels["prism.io/tenant-uid"] = json!(uid);
        }
        let mut p: PrismPattern = serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismPattern",
            "metadata": {"name": name, "namespace": "platform", "labels": labels},
            "spec": {"cluster": cluster, "type": "keyvalue"}
        }))
        .expect("pattern");
        if going {
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        }
        p
    }

    #[test]
    fn only_runners_of_tenants_that_are_gone_are_orphans() {
        let patterns = [
            runner("alive-kv", "shared", Some("uid-alive"), false),
            runner("gone-kv", "shared", Some("uid-gone"), false),
            runner("gone-going-kv", "shared", Some("uid-gone"), true),
            runner("shared-kv", "shared", None, false),
            runner("other-kv", "other", Some("uid-gone"), false),
        ];
        let orphans = orphaned_runners("shared", &patterns, |uid| uid == "uid-alive");
        assert_eq!(orphans, ["gone-kv"], "the cluster's own runners and another cluster's are not its to sweep");
    }
}
