//! One reconcile of a PrismNamespace (I/O at the edges; decisions in validate, build and status).

use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use prism_api::names::{conditions, field_managers, finalizers};
use prism_api::v1alpha1::PrismCluster;
use prism_api::v1alpha2::{PrismNamespace, PrismNamespaceStatus};
use prism_api::v1beta1::PrismPattern;
use serde_json::json;

use super::CONTROLLER;
use super::build;
use super::status::{self, Observations};
use super::validate::{self, ValidatedNamespace};
use crate::apply::{Writer, api_error};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::metrics::WriteAction;
use crate::naming;
use crate::routes::Routes;

pub async fn reconcile(namespace: Arc<PrismNamespace>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let ns = namespace.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<PrismNamespace> = Api::namespaced(ctx.client.clone(), &ns);
    let key = crate::policy::backoff_key(CONTROLLER, namespace.as_ref());
    let action = finalizer(&api, finalizers::NAMESPACE, namespace, |event| async {
        match event {
            Finalizer::Apply(namespace) => apply(&namespace, &ctx).await,
            Finalizer::Cleanup(namespace) => cleanup(&namespace, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.backoffs.reset(&key);
    Ok(action)
}

pub fn error_policy(namespace: Arc<PrismNamespace>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::policy::on_error(namespace.as_ref(), error, &ctx, CONTROLLER, field_managers::NAMESPACE)
}

fn writer<'a>(namespace: &PrismNamespace, ctx: &'a Context) -> Writer<'a> {
    Writer { ctx, controller: CONTROLLER, field_manager: field_managers::NAMESPACE, parent: namespace.object_ref(&()) }
}

fn patterns_api(ctx: &Context, ns: &str) -> Api<PrismPattern> {
    Api::namespaced(ctx.client.clone(), ns)
}

async fn apply(namespace: &PrismNamespace, ctx: &Context) -> Result<Action> {
    let ns = namespace.namespace().unwrap_or_default();
    let cluster = get_cluster(namespace, ctx).await?;
    if let Some(cluster) = &cluster {
        tie_to_cluster(namespace, cluster, ctx).await?;
    }
    let observations = match validate::validate(namespace, cluster.as_ref()) {
        Ok(valid) => realise(namespace, &valid, ctx).await?,
        // Nothing is built or pruned for an invalid spec: a typo must not tear down runners.
        Err(problem) => Observations { problem: Some(problem), ..Observations::default() },
    };
    write_status(namespace, &ns, ctx, observations).await?;
    Ok(Action::requeue(ctx.config.resync))
}

async fn get_cluster(namespace: &PrismNamespace, ctx: &Context) -> Result<Option<PrismCluster>> {
    let ns = namespace.namespace().unwrap_or_default();
    let name = &namespace.spec.cluster;
    let api: Api<PrismCluster> = Api::namespaced(ctx.client.clone(), &ns);
    ctx.live(&api, name).await
}

/// Gives the namespace an owner reference to its cluster, so that it is garbage-collected with
/// it. Not a controller reference: the cluster prunes the children it controls that its spec does
/// not list, and an app team's namespace is not in its spec. A namespace the cluster created
/// already has its (controller) reference: nothing to do.
async fn tie_to_cluster(namespace: &PrismNamespace, cluster: &PrismCluster, ctx: &Context) -> Result<()> {
    let Some(uid) = cluster.uid() else { return Ok(()) };
    let tied = |owners: &[OwnerReference]| owners.iter().any(|o| o.uid == uid);
    if tied(namespace.owner_references()) {
        return Ok(());
    }
    let name = namespace.name_any();
    let api: Api<PrismNamespace> = Api::namespaced(ctx.client.clone(), &namespace.namespace().unwrap_or_default());
    // The cached object may predate this controller's own write: look at the stored one first.
    let stored = api.get_metadata(&name).await.map_err(|source| api_error("get", "PrismNamespace", &name, source))?;
    if tied(stored.owner_references()) {
        return Ok(());
    }
    let body = owner_reference_patch(&name, cluster, &uid);
    api.patch(&name, &PatchParams::apply(field_managers::NAMESPACE).force(), &Patch::Apply(&body))
        .await
        .map_err(|source| api_error("apply ownerReferences", "PrismNamespace", &name, source))?;
    ctx.metrics.object_written(CONTROLLER, "PrismNamespace", WriteAction::Updated);
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

/// Applies the dedicated runners, prunes those no longer wanted and observes every runner. Under
/// a paused cluster nothing is written: the runners are only observed.
async fn realise(namespace: &PrismNamespace, valid: &ValidatedNamespace, ctx: &Context) -> Result<Observations> {
    let api = patterns_api(ctx, &valid.namespace);
    let mut observed = Vec::new();
    if !valid.paused {
        let owner = namespace.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
        let writer = writer(namespace, ctx);
        for runner in build::dedicated_runners(valid, &owner) {
            let existing = ctx.live(&api, &runner.name_any()).await?;
            if let Some(problem) = validate::runner_taken(&runner, existing.as_ref(), &owner.uid) {
                return Ok(Observations { problem: Some(problem), ..Observations::default() });
            }
            observed.push(writer.apply(&api, runner).await?.0);
        }
        let keep: Vec<String> = valid.dedicated().map(|p| p.runner.clone()).collect();
        prune(&writer, namespace, &keep).await?;
    }
    for pattern in valid.patterns.iter().filter(|p| valid.paused || !p.dedicated) {
        let runner = ctx.live(&api, &pattern.runner).await?;
        observed.extend(runner);
    }
    let ready = |runner: &str| status::runner_ready(observed.iter().find(|r| r.name_any() == runner));
    Ok(Observations { problem: None, patterns: status::resolve(valid, ready), paused: valid.paused })
}

/// Deletes the runners dedicated to `namespace` that are not in `keep` (isolation changed, pattern
/// removed). Returns how many of those still exist (deleting ones included).
async fn prune(writer: &Writer<'_>, namespace: &PrismNamespace, keep: &[String]) -> Result<usize> {
    let api = patterns_api(writer.ctx, &namespace.namespace().unwrap_or_default());
    let selector = build::dedicated_selector(&namespace.name_any());
    writer.prune(&api, &selector, &namespace.uid().unwrap_or_default(), keep).await
}

/// Writes the status computed from `observed` when it differs from the stored one. The object a
/// reconcile gets may predate this controller's last status write (the cache lags behind): before
/// writing, the stored status is read again, so that a lagging cache costs a read, not a write.
async fn write_status(namespace: &PrismNamespace, ns: &str, ctx: &Context, observed: Observations) -> Result<()> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let generation = namespace.metadata.generation;
    let name = namespace.name_any();
    let mut new = status::compute(namespace.status.as_ref(), generation, observed.clone(), &now);
    if let Some(phase) = new.phase {
        ctx.metrics.set_phase("PrismNamespace", ns, &name, &format!("{phase:?}"));
    }
    if namespace.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let api: Api<PrismNamespace> = Api::namespaced(ctx.client.clone(), ns);
    let stored =
        api.get_status(&name).await.map_err(|source| api_error("get status", "PrismNamespace", &name, source))?;
    if stored.status != namespace.status {
        new = status::compute(stored.status.as_ref(), generation, observed, &now);
        if stored.status.as_ref() == Some(&new) {
            return Ok(());
        }
    }
    announce_problem(namespace, ctx, &new).await;
    let body =
        json!({"apiVersion": PrismNamespace::api_version(&()), "kind": PrismNamespace::kind(&()), "status": new});
    api.patch_status(&name, &PatchParams::apply(field_managers::NAMESPACE).force(), &Patch::Apply(&body))
        .await
        .map_err(|source| api_error("apply status", "PrismNamespace", &name, source))?;
    Ok(())
}

/// A Warning Event when the spec becomes invalid (once per change of status, not per pass).
async fn announce_problem(namespace: &PrismNamespace, ctx: &Context, new: &PrismNamespaceStatus) {
    let invalid = new.conditions.iter().find(|c| c.type_ == conditions::SPEC_VALID && c.status == "False");
    if let Some(condition) = invalid {
        writer(namespace, ctx).announce(EventType::Warning, &condition.reason, &condition.message);
    }
}

/// Before the namespace goes, the proxy must stop serving it (the cluster controller drops a
/// deleting namespace from the routes), then its dedicated runners go.
async fn cleanup(namespace: &PrismNamespace, ctx: &Context) -> Result<Action> {
    let ns = namespace.namespace().unwrap_or_default();
    let name = namespace.name_any();
    ctx.metrics.forget("PrismNamespace", &ns, &name);
    if let Some(config_name) = proxy_still_serves(namespace, ctx).await? {
        return Err(Error::Waiting(format!("the proxy still serves {name}; waiting for {config_name} to drop it")));
    }
    let remaining = prune(&writer(namespace, ctx), namespace, &[]).await?;
    if remaining > 0 {
        return Err(Error::Waiting(format!("waiting for {remaining} dedicated runners of {name} to go")));
    }
    Ok(Action::await_change())
}

/// The proxy config that still lists `namespace`, if one does. Without the cluster or its proxy
/// config there is no proxy to wait for.
async fn proxy_still_serves(namespace: &PrismNamespace, ctx: &Context) -> Result<Option<String>> {
    if get_cluster(namespace, ctx).await?.is_none() {
        return Ok(None);
    }
    let config_name = naming::proxy_config(&namespace.spec.cluster);
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace.namespace().unwrap_or_default());
    let config =
        api.get_opt(&config_name).await.map_err(|source| api_error("get", "ConfigMap", &config_name, source))?;
    let serves = Routes::from_config_map(config.as_ref()).is_some_and(|r| r.serves_namespace(&namespace.name_any()));
    Ok(serves.then_some(config_name))
}
