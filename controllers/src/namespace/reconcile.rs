//! One pass of the PrismNamespace controller over one namespace (I/O at the edges; decisions in
//! validate, build and status).

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

use prism_api::names::{field_managers, labels};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use serde_json::json;

use super::build;
use super::status::{self, Observations};
use super::validate::{self, ValidatedNamespace};
use super::{CONTROLLER, NamespaceReconciler};
use crate::conditions::Problem;
use crate::context::Identity;
use crate::driver::Reconciler;
use crate::error::{Error, Result};
use crate::metrics::WriteAction;
use crate::routes::Routes;
use crate::tenancy::{self, Verdict};
use crate::watches::namespace_labels;
use crate::writer::Writer;
use crate::{meta, naming};

impl Reconciler for NamespaceReconciler {
    type Kind = PrismNamespace;
    type Observations = Observations;

    const IDENTITY: Identity = super::IDENTITY;

    async fn apply(&self, namespace: &PrismNamespace, w: &Writer<'_>) -> Result<Observations> {
        if let Some(problem) = self.out_of_scope(namespace, w) {
            return Ok(Observations { problem: Some(problem), ..Observations::default() });
        }
        let target = namespace.cluster_ref();
        let cluster = w.live_in::<PrismCluster>(target.namespace, target.name).await?;
        if let Some(cluster) = cluster.as_ref().filter(|_| !namespace.is_cross_namespace()) {
            tie_to_cluster(namespace, cluster, w).await?;
        }
        let (valid, cluster) = match (validate::validate(namespace, cluster.as_ref()), cluster) {
            (Ok(valid), Some(cluster)) => (valid, cluster),
            // Nothing is built or swept for an invalid spec: a typo must not tear down runners.
            (Err(problem), _) => return Ok(Observations { problem: Some(problem), ..Observations::default() }),
            (Ok(_), None) => return Err(Error::MissingField("the validated namespace's cluster")),
        };
        let verdict = self.verdict(namespace, &cluster);
        let mut observed = match &verdict {
            Verdict::Served(_) => realise(namespace, &valid, w).await?,
            Verdict::NotAccepted(problem) | Verdict::Conflicted(problem) => {
                // Labels not seen yet decide nothing: keep what runs until they are.
                if !(problem.transient && problem.reason == "NamespaceNotAllowed") {
                    withdraw(&valid, w).await?;
                }
                Observations::default()
            }
        };
        if observed.problem.is_none() {
            observed.verdict = Some(verdict);
        }
        Ok(observed)
    }

    /// Before the namespace goes, the proxy must stop serving it (the cluster controller drops a
    /// deleting namespace from the routes), then its dedicated runners go (a tenant's, in its
    /// cluster's namespace, by their labels: this finalizer is what ties them).
    async fn cleanup(&self, namespace: &PrismNamespace, w: &Writer<'_>) -> Result<()> {
        let name = namespace.name_any();
        if self.out_of_scope(namespace, w).is_none()
            && let Some(config_name) = proxy_still_serves(namespace, w).await?
        {
            return Err(Error::Waiting(format!("the proxy still serves {name}; waiting for {config_name} to drop it")));
        }
        let mut remaining = w.sweep_one::<PrismPattern>(&build::dedicated_selector(&name)).await?;
        if namespace.is_cross_namespace() && self.out_of_scope(namespace, w).is_none() {
            let tenant = tenant_selector(&namespace.uid().unwrap_or_default());
            remaining += w.sweep_labelled::<PrismPattern>(namespace.cluster_ref().namespace, &tenant).await?;
        }
        if remaining > 0 {
            return Err(Error::Waiting(format!("waiting for {remaining} dedicated runners of {name} to go")));
        }
        Ok(())
    }
}

impl NamespaceReconciler {
    /// A cluster outside the namespace the operator watches: it can neither see nor serve it.
    fn out_of_scope(&self, namespace: &PrismNamespace, w: &Writer<'_>) -> Option<Problem> {
        let scope = w.ctx.config.namespace.as_deref()?;
        let target = namespace.cluster_ref();
        (target.namespace != scope).then(|| {
            Problem::spec(
                "ClusterOutOfScope",
                format!(
                    "spec.clusterNamespace {:?}: this operator watches namespace {scope:?} only and cannot serve a \
                     PrismCluster elsewhere",
                    target.namespace
                ),
            )
        })
    }

    /// What `cluster` makes of `namespace`, judged against every PrismNamespace asking the cluster
    /// for the same name (the same judgement the cluster's routes make).
    fn verdict(&self, namespace: &PrismNamespace, cluster: &PrismCluster) -> Verdict {
        let name = namespace.name_any();
        let contenders = self.namespaces.state_filter(|n| n.name_any() == name && tenancy::attaches_to(n, cluster));
        let mut attached: Vec<&PrismNamespace> = contenders.iter().map(AsRef::as_ref).collect();
        // The cached copy may lag behind the one being reconciled: judge the latter.
        attached.retain(|n| n.uid() != namespace.uid());
        attached.push(namespace);
        let judged = tenancy::judge(cluster, &attached, |ns| namespace_labels(self.namespace_labels.as_ref(), ns));
        let mine = judged.into_iter().find(|(n, _)| n.uid() == namespace.uid()).map(|(_, verdict)| verdict);
        // Not judged: it does not attach to this cluster (it cannot be: it was looked up by its
        // reference) or it is being deleted (then cleanup runs, not apply).
        mine.unwrap_or_else(|| {
            Verdict::NotAccepted(Problem::spec("Deleting", "the PrismNamespace is being deleted".into()))
        })
    }
}

/// The label of a tenant's runners (in its cluster's namespace) that ties them to the
/// PrismNamespace of uid `uid`.
fn tenant_selector(uid: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::TENANT_UID.to_string(), uid.to_string())])
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

/// Applies the dedicated runners and the connection details, sweeps what is no longer wanted and
/// observes every runner. Under a paused cluster nothing is written: the runners are only
/// observed.
async fn realise(namespace: &PrismNamespace, valid: &ValidatedNamespace, w: &Writer<'_>) -> Result<Observations> {
    let mut observed = Vec::new();
    if !valid.paused {
        let owner = namespace.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
        for runner in build::dedicated_runners(valid, &owner) {
            let ns = runner.namespace().unwrap_or_default();
            let existing = w.live_child_in::<PrismPattern>(&ns, &runner.name_any(), runner.labels()).await?;
            if let Some(problem) = validate::runner_taken(&runner, existing.as_ref(), &owner.uid) {
                return Ok(Observations { problem: Some(problem), ..Observations::default() });
            }
            observed.push(w.apply(runner).await?.0);
        }
        if !valid.cluster_own {
            w.apply(build::connection_config_map(valid, &owner)).await?;
        }
        sweep(valid, w).await?;
    }
    for pattern in valid.patterns.iter().filter(|p| valid.paused || !p.dedicated) {
        observed.extend(w.live_in::<PrismPattern>(&valid.cluster_namespace, &pattern.runner).await?);
    }
    let ready = |runner: &str| status::runner_ready(observed.iter().find(|r| r.name_any() == runner));
    Ok(Observations {
        patterns: status::resolve(valid, ready),
        paused: valid.paused,
        connection: (!valid.cluster_own).then(|| build::connection(valid)),
        ..Observations::default()
    })
}

/// Removes what a namespace the cluster does not serve had: its runners and connection details.
async fn withdraw(valid: &ValidatedNamespace, w: &Writer<'_>) -> Result<()> {
    if valid.paused { Ok(()) } else { sweep(valid, w).await }
}

/// Deletes the namespace's children this pass did not apply: in its own namespace by owner, and a
/// tenant's runners in its cluster's namespace by their labels.
async fn sweep(valid: &ValidatedNamespace, w: &Writer<'_>) -> Result<()> {
    w.sweep(&build::dedicated_selector(&valid.name)).await?;
    if valid.tenant {
        w.sweep_labelled::<PrismPattern>(&valid.cluster_namespace, &tenant_selector(&valid.uid)).await?;
    }
    Ok(())
}

/// The proxy config that still lists `namespace`, if one does. Without the cluster or its proxy
/// config there is no proxy to wait for.
async fn proxy_still_serves(namespace: &PrismNamespace, w: &Writer<'_>) -> Result<Option<String>> {
    let target = namespace.cluster_ref();
    if w.live_in::<PrismCluster>(target.namespace, target.name).await?.is_none() {
        return Ok(None);
    }
    let config_name = naming::proxy_config(target.name);
    let labels = meta::proxy_config_labels(target.name);
    let config = w.live_child_in::<ConfigMap>(target.namespace, &config_name, &labels).await?;
    let serves = Routes::from_config_map(config.as_ref()).is_some_and(|r| r.serves(namespace));
    Ok(serves.then_some(config_name))
}
