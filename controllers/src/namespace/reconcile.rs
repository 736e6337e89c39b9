//! One pass of the PrismNamespace controller over one namespace (I/O at the edges; decisions in
//! validate, build and status).

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Resource, ResourceExt};
use prism_api::names::field_managers;
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use serde_json::json;

use super::build;
use super::status::{self, Observations};
use super::validate::{self, ValidatedNamespace};
use super::{CONTROLLER, NamespaceReconciler};
use crate::context::Identity;
use crate::driver::Reconciler;
use crate::error::{Error, Result};
use crate::metrics::WriteAction;
use crate::routes::Routes;
use crate::writer::Writer;
use crate::{meta, naming};

impl Reconciler for NamespaceReconciler {
    type Kind = PrismNamespace;
    type Observations = Observations;

    const IDENTITY: Identity = super::IDENTITY;

    async fn apply(&self, namespace: &PrismNamespace, w: &Writer<'_>) -> Result<Observations> {
        let cluster = w.live::<PrismCluster>(&namespace.spec.cluster).await?;
        if let Some(cluster) = &cluster {
            tie_to_cluster(namespace, cluster, w).await?;
        }
        match validate::validate(namespace, cluster.as_ref()) {
            Ok(valid) => realise(namespace, &valid, w).await,
            // Nothing is built or swept for an invalid spec: a typo must not tear down runners.
            Err(problem) => Ok(Observations { problem: Some(problem), ..Observations::default() }),
        }
    }

    /// Before the namespace goes, the proxy must stop serving it (the cluster controller drops a
    /// deleting namespace from the routes), then its dedicated runners go.
    async fn cleanup(&self, namespace: &PrismNamespace, w: &Writer<'_>) -> Result<()> {
        let name = namespace.name_any();
        if let Some(config_name) = proxy_still_serves(namespace, w).await? {
            return Err(Error::Waiting(format!("the proxy still serves {name}; waiting for {config_name} to drop it")));
        }
        let remaining = w.sweep_one::<PrismPattern>(&build::dedicated_selector(&name)).await?;
        if remaining > 0 {
            return Err(Error::Waiting(format!("waiting for {remaining} dedicated runners of {name} to go")));
        }
        Ok(())
    }
}

/// Gives the namespace an owner reference to its cluster, so that it is garbage-collected with
/// it. Not a controller reference: the cluster prunes the children it controls that its spec does
/// not list, and an app team's namespace is not in its spec. A namespace the cluster created
/// already has its (controller) reference: nothing to do.
async fn tie_to_cluster(namespace: &PrismNamespace, cluster: &PrismCluster, w: &Writer<'_>) -> Result<()> {
    let Some(uid) = cluster.uid() else { return Ok(()) };
    let tied = |owners: &[OwnerReference]| owners.iter().any(|o| o.uid == uid);
    if tied(namespace.owner_references()) {
        return Ok(());
    }
    let name = namespace.name_any();
    let api = w.api::<PrismNamespace>();
    // The cached object may predate this controller's own write: look at the stored one first.
    let stored = api.get_metadata(&name).await.map_err(|source| Error::api("get", "PrismNamespace", &name, source))?;
    if tied(stored.owner_references()) {
        return Ok(());
    }
    let body = owner_reference_patch(&name, cluster, &uid);
    api.patch(&name, &PatchParams::apply(field_managers::NAMESPACE).force(), &Patch::Apply(&body))
        .await
        .map_err(|source| Error::api("apply ownerReferences", "PrismNamespace", &name, source))?;
    w.ctx.metrics.object_written(CONTROLLER, "PrismNamespace", WriteAction::Updated);
    Ok(())
}

/// The server-side apply body holding only this controller's owner reference to `cluster`: the
/// fields of the namespace that others own (its spec, the cluster's controller reference) are left
/// alone.
fn owner_reference_patch(name: &str, cluster: &PrismCluster, uid: &str) -> serde_json::Value {
    json!({
        "apiVersion": PrismNamespace::api_version(&()), "kind": PrismNamespace::kind(&()),
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": PrismCluster::api_version(&()), "kind": PrismCluster::kind(&()),
            "name": cluster.name_any(), "uid": uid,
        }]},
    })
}

/// Applies the dedicated runners, sweeps those no longer wanted and observes every runner. Under
/// a paused cluster nothing is written: the runners are only observed.
async fn realise(namespace: &PrismNamespace, valid: &ValidatedNamespace, w: &Writer<'_>) -> Result<Observations> {
    let mut observed = Vec::new();
    if !valid.paused {
        let owner = namespace.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
        for runner in build::dedicated_runners(valid, &owner) {
            let existing = w.live_child::<PrismPattern>(&runner.name_any(), runner.labels()).await?;
            if let Some(problem) = validate::runner_taken(&runner, existing.as_ref(), &owner.uid) {
                return Ok(Observations { problem: Some(problem), ..Observations::default() });
            }
            observed.push(w.apply(runner).await?.0);
        }
        w.sweep(&build::dedicated_selector(&valid.name)).await?;
    }
    for pattern in valid.patterns.iter().filter(|p| valid.paused || !p.dedicated) {
        observed.extend(w.live::<PrismPattern>(&pattern.runner).await?);
    }
    let ready = |runner: &str| status::runner_ready(observed.iter().find(|r| r.name_any() == runner));
    Ok(Observations { problem: None, patterns: status::resolve(valid, ready), paused: valid.paused })
}

/// The proxy config that still lists `namespace`, if one does. Without the cluster or its proxy
/// config there is no proxy to wait for.
async fn proxy_still_serves(namespace: &PrismNamespace, w: &Writer<'_>) -> Result<Option<String>> {
    if w.live::<PrismCluster>(&namespace.spec.cluster).await?.is_none() {
        return Ok(None);
    }
    let config_name = naming::proxy_config(&namespace.spec.cluster);
    let labels = meta::proxy_config_labels(&namespace.spec.cluster);
    let config = w.live_child::<ConfigMap>(&config_name, &labels).await?;
    let serves = Routes::from_config_map(config.as_ref()).is_some_and(|r| r.serves_namespace(&namespace.name_any()));
    Ok(serves.then_some(config_name))
}
