//! One reconcile of a PrismPattern (I/O at the edges; decisions in validate, build and status).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use prism_api::names::{field_managers, finalizers};
use prism_api::v1alpha1::PrismCluster;
use prism_api::v1beta1::{PrismPattern, PrismPatternStatus, Scaler, WorkloadKind};
use serde_json::json;

use super::CONTROLLER;
use super::build::{self, Autoscaler, Workload};
use super::status::{self, Observations, WorkloadView};
use super::validate::{self, ValidatedPattern};
use crate::apply::{Writer, api_error};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::naming;
use crate::routes::Routes;

pub async fn reconcile(pattern: Arc<PrismPattern>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let ns = pattern.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<PrismPattern> = Api::namespaced(ctx.client.clone(), &ns);
    let key = crate::policy::backoff_key(CONTROLLER, pattern.as_ref());
    let action = finalizer(&api, finalizers::PATTERN, pattern, |event| async {
        match event {
            Finalizer::Apply(pattern) => apply(&pattern, &ctx).await,
            Finalizer::Cleanup(pattern) => cleanup(&pattern, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.backoffs.reset(&key);
    Ok(action)
}

pub fn error_policy(pattern: Arc<PrismPattern>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::policy::on_error(pattern.as_ref(), error, &ctx, CONTROLLER, field_managers::PATTERN)
}

fn writer<'a>(pattern: &PrismPattern, ctx: &'a Context) -> Writer<'a> {
    Writer { ctx, controller: CONTROLLER, field_manager: field_managers::PATTERN, parent: pattern.object_ref(&()) }
}

async fn apply(pattern: &PrismPattern, ctx: &Context) -> Result<Action> {
    let ns = pattern.namespace().unwrap_or_default();
    let clusters: Api<PrismCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let cluster = ctx.live(&clusters, &pattern.spec.cluster).await?;
    let selector = naming::selector_string(&naming::runner_selector(&pattern.spec.cluster, &pattern.name_any()));
    let observations = match validate::validate(pattern, cluster.as_ref()) {
        Ok(valid) => realise(pattern, &valid, ctx).await?,
        Err(problem) => Observations { problem: Some(problem), selector: selector.clone(), ..Observations::default() },
    };
    write_status(pattern, ctx, Observations { selector, ..observations }).await?;
    Ok(Action::requeue(ctx.config.resync))
}

/// Applies the runner's objects and observes the result.
async fn realise(pattern: &PrismPattern, valid: &ValidatedPattern, ctx: &Context) -> Result<Observations> {
    let writer = writer(pattern, ctx);
    let waiting_for = backends_not_ready(valid, ctx).await?;
    let live = LiveWorkload::get(valid, ctx).await?;
    if valid.spec.autoscaling.as_ref().is_some_and(|a| a.enabled) {
        live.hand_over_replicas(&writer, &valid.namespace).await?;
    }
    let replicas = build::replicas(&valid.spec);
    let owner = pattern.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let resources = build::build(valid, &owner, replicas);
    let ns = &valid.namespace;
    writer.apply(&Api::namespaced(ctx.client.clone(), ns), resources.config_map).await?;
    writer.apply(&Api::namespaced(ctx.client.clone(), ns), resources.service).await?;
    if !waiting_for.is_empty() && !live.exists() {
        // Start the runner only once its backends serve; a running runner is left alone.
        return Ok(Observations { waiting_for, ..Observations::default() });
    }
    let workload = match resources.workload {
        Workload::Deployment(d) => {
            WorkloadView::of_deployment(&writer.apply(&Api::namespaced(ctx.client.clone(), ns), d).await?.0)
        }
        Workload::StatefulSet(s) => {
            WorkloadView::of_stateful_set(&writer.apply(&Api::namespaced(ctx.client.clone(), ns), s).await?.0)
        }
    };
    let autoscaling_problem = reconcile_autoscaler(valid, &writer, resources.autoscaler).await?;
    Ok(Observations { waiting_for, workload: Some(workload), autoscaling_problem, ..Observations::default() })
}

/// Each backend service the runner uses that is not serving yet, with why.
async fn backends_not_ready(valid: &ValidatedPattern, ctx: &Context) -> Result<Vec<String>> {
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &valid.namespace);
    let mut waiting = Vec::new();
    for backend in &valid.service_backends {
        let name = naming::backend_service(&valid.spec.cluster, *backend);
        let set = ctx.live(&api, &name).await?;
        let view = set.as_ref().map(WorkloadView::of_stateful_set);
        match view {
            None => waiting.push(format!("backend {} is not deployed yet (StatefulSet {name})", backend.as_str())),
            Some(v) if v.desired == 0 || v.available < v.desired || !v.observed_current => waiting.push(format!(
                "backend {} is not ready ({}/{} replicas available)",
                backend.as_str(),
                v.available,
                v.desired
            )),
            Some(_) => {}
        }
    }
    Ok(waiting)
}

/// The runner's workload as it is before this reconcile writes it.
enum LiveWorkload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    Absent,
}

impl LiveWorkload {
    async fn get(valid: &ValidatedPattern, ctx: &Context) -> Result<Self> {
        let name = &valid.name;
        let client = ctx.client.clone();
        Ok(match valid.spec.workload {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(client, &valid.namespace);
                let live = ctx.live(&api, name).await?;
                live.map_or(LiveWorkload::Absent, |d| LiveWorkload::Deployment(Box::new(d)))
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(client, &valid.namespace);
                let live = ctx.live(&api, name).await?;
                live.map_or(LiveWorkload::Absent, |s| LiveWorkload::StatefulSet(Box::new(s)))
            }
        })
    }

    fn exists(&self) -> bool {
        !matches!(self, LiveWorkload::Absent)
    }

    async fn hand_over_replicas(&self, writer: &Writer<'_>, ns: &str) -> Result<()> {
        let client = writer.ctx.client.clone();
        match self {
            LiveWorkload::Deployment(d) => writer.hand_over_replicas(&Api::namespaced(client, ns), d.as_ref()).await,
            LiveWorkload::StatefulSet(s) => writer.hand_over_replicas(&Api::namespaced(client, ns), s.as_ref()).await,
            LiveWorkload::Absent => Ok(()),
        }
    }
}

/// Applies the wanted autoscaler and deletes the other kind; returns why autoscaling cannot be
/// honoured, if it cannot.
async fn reconcile_autoscaler(
    valid: &ValidatedPattern,
    writer: &Writer<'_>,
    wanted: Option<Autoscaler>,
) -> Result<Option<(&'static str, String)>> {
    let client = writer.ctx.client.clone();
    let ns = &valid.namespace;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    let scaled_objects: Api<DynamicObject> = Api::namespaced_with(client, ns, &build::scaled_object_resource());
    let wants_keda = matches!(wanted, Some(Autoscaler::Keda(_)));
    let mut problem = None;
    match wanted {
        Some(Autoscaler::Hpa(hpa)) => {
            writer.apply(&hpas, *hpa).await?;
        }
        Some(Autoscaler::Keda(object)) => problem = apply_scaled_object(writer, &scaled_objects, *object).await?,
        None => {}
    }
    let wants_hpa = valid.spec.autoscaling.as_ref().is_some_and(|a| a.enabled && a.scaler == Scaler::Hpa);
    if !wants_hpa {
        writer.delete(&hpas, &valid.name).await?;
    }
    // Without KEDA there is no ScaledObject to delete.
    if !wants_keda && writer.ctx.keda {
        delete_scaled_object(writer, &scaled_objects, &valid.name).await?;
    }
    Ok(problem)
}

async fn apply_scaled_object(
    writer: &Writer<'_>,
    api: &Api<DynamicObject>,
    object: DynamicObject,
) -> Result<Option<(&'static str, String)>> {
    match writer.apply_with(api, object, &build::scaled_object_resource()).await {
        Ok(_) => Ok(None),
        Err(error) if error.api_status() == Some(404) => Ok(Some((
            "KedaNotInstalled",
            "spec.autoscaling.scaler is keda but KEDA's ScaledObject API (keda.sh/v1alpha1) is not installed: install KEDA or use scaler hpa".into(),
        ))),
        Err(error) => Err(error),
    }
}

async fn delete_scaled_object(writer: &Writer<'_>, api: &Api<DynamicObject>, name: &str) -> Result<()> {
    match writer.delete_with(api, name, &build::scaled_object_resource()).await {
        // Without KEDA there is nothing to delete.
        Err(error) if error.api_status() == Some(404) => Ok(()),
        other => other.map(drop),
    }
}

async fn write_status(pattern: &PrismPattern, ctx: &Context, observed: Observations) -> Result<()> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let new = status::compute(pattern.status.as_ref(), pattern.metadata.generation, observed, &now);
    let ns = pattern.namespace().unwrap_or_default();
    let name = pattern.name_any();
    if let Some(phase) = new.phase {
        ctx.metrics.set_phase("PrismPattern", &ns, &name, &format!("{phase:?}"));
    }
    if pattern.status.as_ref() == Some(&new) {
        return Ok(());
    }
    announce_problem(pattern, ctx, &new).await;
    let api: Api<PrismPattern> = Api::namespaced(ctx.client.clone(), &ns);
    let body = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern", "status": new});
    api.patch_status(&name, &PatchParams::apply(field_managers::PATTERN).force(), &Patch::Apply(&body))
        .await
        .map_err(|source| api_error("apply status", "PrismPattern", &name, source))?;
    Ok(())
}

/// A Warning Event when the spec becomes invalid (once per change of status, not per pass).
async fn announce_problem(pattern: &PrismPattern, ctx: &Context, new: &PrismPatternStatus) {
    let invalid =
        new.conditions.iter().find(|c| c.type_ == prism_api::names::conditions::SPEC_VALID && c.status == "False");
    if let Some(condition) = invalid {
        writer(pattern, ctx).announce(EventType::Warning, &condition.reason, &condition.message);
    }
}

/// Before the runner goes, the proxy must stop routing to it: the cluster controller drops a
/// deleting pattern from the proxy's routes; this waits until it has.
async fn cleanup(pattern: &PrismPattern, ctx: &Context) -> Result<Action> {
    let ns = pattern.namespace().unwrap_or_default();
    let name = pattern.name_any();
    ctx.metrics.forget("PrismPattern", &ns, &name);
    let config_name = naming::proxy_config(&pattern.spec.cluster);
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let config =
        api.get_opt(&config_name).await.map_err(|source| api_error("get", "ConfigMap", &config_name, source))?;
    if Routes::from_config_map(config.as_ref()).is_some_and(|routes| routes.routes_to_runner(&name)) {
        return Err(Error::Waiting(format!("the proxy still routes to {name}; waiting for {config_name} to drop it")));
    }
    Ok(Action::await_change())
}
