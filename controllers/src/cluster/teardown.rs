//! The ordered teardown of a deleted PrismCluster: namespaces, then patterns (their finalizers
//! wait for the proxy to stop routing to them, so the routes are emptied first), then proxy and
//! admin, then backends; data volumes and credentials stay unless the deletion policy is Delete.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use kube::api::ListParams;
use kube::{Resource, ResourceExt};
use prism_api::names::labels;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{DeletionPolicy, PrismCluster};

use super::credentials;
use crate::error::{Error, Result};
use crate::indexed::Indexed;
use crate::naming;
use crate::routes::Routes;
use crate::writer::Writer;

/// Tears `cluster` down one layer at a time: [`Error::Waiting`] until the current layer is gone.
/// `namespaces` holds every PrismNamespace in the watch scope (app teams' ones must go first too),
/// `patterns` every PrismPattern (tenants' runners go with the cluster's).
pub async fn teardown(
    cluster: &PrismCluster,
    namespaces: &Indexed<PrismNamespace>,
    patterns: &Indexed<PrismPattern>,
    w: &Writer<'_>,
) -> Result<()> {
    let name = cluster.name_any();
    empty_routes(cluster, w).await?;
    let selector = format!("{}={}", labels::CLUSTER, name);
    let waiting = |what: &str| Err(Error::Waiting(format!("tearing down {name}: waiting for {what} to go")));
    let namespaces =
        w.sweep_one::<PrismNamespace>(&selector).await? + delete_app_team_namespaces(cluster, namespaces, w).await?;
    if namespaces > 0 {
        return waiting("its PrismNamespaces");
    }
    if w.sweep_one::<PrismPattern>(&selector).await? + delete_tenant_runners(cluster, patterns, w).await? > 0 {
        return waiting("its PrismPatterns");
    }
    let deployments = w.sweep_one::<Deployment>(&selector).await?;
    w.sweep_one::<HorizontalPodAutoscaler>(&selector).await?;
    if deployments > 0 {
        return waiting("the proxy and admin");
    }
    if w.sweep_one::<StatefulSet>(&selector).await? > 0 {
        return waiting("the backends");
    }
    release_data(cluster, w).await
}

/// App teams' PrismNamespaces on this cluster (tied to it by a non-controller owner reference):
/// they go before the runners and backends they use, not after by garbage collection. Returns
/// how many remain.
async fn delete_app_team_namespaces(
    cluster: &PrismCluster,
    namespaces: &Indexed<PrismNamespace>,
    w: &Writer<'_>,
) -> Result<usize> {
    let ns = cluster.namespace().unwrap_or_default();
    let uid = cluster.uid().unwrap_or_default();
    let mut remaining = 0;
    for namespace in namespaces.in_namespace(&ns, |_| true) {
        let tied = namespace.owner_references().iter().any(|o| o.uid == uid && o.controller != Some(true));
        if !tied {
            continue;
        }
        remaining += 1;
        if namespace.metadata.deletion_timestamp.is_none() {
            w.delete::<PrismNamespace>(&namespace.name_any()).await?;
        }
    }
    Ok(remaining)
}

/// The runners of tenants in other namespaces (tied to their PrismNamespaces by labels, and to
/// nothing here): they go with the cluster, whose backends they use. The tenants' PrismNamespaces
/// stay, in their teams' namespaces, saying that the cluster is gone. Returns how many remain.
async fn delete_tenant_runners(
    cluster: &PrismCluster,
    patterns: &Indexed<PrismPattern>,
    w: &Writer<'_>,
) -> Result<usize> {
    let (ns, name) = (cluster.namespace().unwrap_or_default(), cluster.name_any());
    let tenants = patterns.in_namespace(&ns, |p| {
        p.labels().get(labels::CLUSTER) == Some(&name) && p.labels().contains_key(labels::TENANT_UID)
    });
    for runner in tenants.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        w.delete::<PrismPattern>(&runner.name_any()).await?;
    }
    Ok(tenants.len())
}

/// The proxy routes to nothing any more: what lets the children's finalizers proceed.
async fn empty_routes(cluster: &PrismCluster, w: &Writer<'_>) -> Result<()> {
    let ns = cluster.namespace().unwrap_or_default();
    let name = naming::proxy_config(&cluster.name_any());
    // The apply that follows changes nothing when the routes are empty already.
    if w.live::<ConfigMap>(&name).await?.is_none() {
        return Ok(());
    }
    let empty = Routes { cluster: cluster.name_any(), ..Routes::default() };
    let owner = cluster.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let labels = crate::meta::proxy_config_labels(&cluster.name_any());
    let config = ConfigMap {
        metadata: crate::meta::object(&name, &ns, labels, Some(&owner)),
        data: Some(BTreeMap::from([(
            naming::PROXY_ROUTES_KEY.to_string(),
            serde_json::to_string(&empty).unwrap_or_default(),
        )])),
        ..ConfigMap::default()
    };
    w.apply(config).await.map(drop)
}

/// Credentials lose their protection when the cluster goes (retained ones stay, deletable by
/// hand); with the Delete policy, every data volume and credential of the cluster goes too.
async fn release_data(cluster: &PrismCluster, w: &Writer<'_>) -> Result<()> {
    let selector = format!("{}={}", labels::CLUSTER, cluster.name_any());
    let params = ListParams::default().labels(&selector);
    let delete = cluster.spec.deletion_policy == DeletionPolicy::Delete;
    let list =
        w.api::<Secret>().list(&params).await.map_err(|source| Error::api("list", "Secret", &selector, source))?;
    for secret in list.items {
        if delete {
            credentials::release(w, &secret).await?;
            w.delete::<Secret>(&secret.name_any()).await?;
        } else {
            credentials::retain(w, &secret).await?;
        }
    }
    if delete {
        let list = w
            .api::<PersistentVolumeClaim>()
            .list_metadata(&params)
            .await
            .map_err(|source| Error::api("list", "PersistentVolumeClaim", &selector, source))?;
        for pvc in list.items {
            w.delete::<PersistentVolumeClaim>(&pvc.name_any()).await?;
        }
    }
    Ok(())
}
