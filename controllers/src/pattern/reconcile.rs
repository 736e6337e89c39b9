//! One pass of the PrismPattern controller over one pattern (I/O at the edges; decisions in
//! validate, build and status).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::{PrismPattern, WorkloadKind};

use super::PatternReconciler;
use super::build::{self, Autoscaler, Workload};
use super::status::{Observations, WorkloadView};
use super::validate::{self, ValidatedPattern};
use crate::context::Identity;
use crate::driver::Reconciler;
use crate::error::{Error, Result};
use crate::routes::Routes;
use crate::writer::Writer;
use crate::{meta, naming};

impl Reconciler for PatternReconciler {
    type Kind = PrismPattern;
    type Observations = Observations;

    const IDENTITY: Identity = super::IDENTITY;

    async fn apply(&self, pattern: &PrismPattern, w: &Writer<'_>) -> Result<Observations> {
        let selector = naming::selector_string(&naming::runner_selector(&pattern.spec.cluster, &pattern.name_any()));
        let cluster = w.live::<PrismCluster>(&pattern.spec.cluster).await?;
        let observations = match validate::validate(pattern, cluster.as_ref()) {
            Ok(valid) => realise(pattern, &valid, w, &selector).await?,
            Err(problem) => Observations { problem: Some(problem), ..Observations::default() },
        };
        Ok(Observations { selector, ..observations })
    }

    /// Before the runner goes, the proxy must stop routing to it: the cluster controller drops a
    /// deleting pattern from the proxy's routes; this waits until it has.
    async fn cleanup(&self, pattern: &PrismPattern, w: &Writer<'_>) -> Result<()> {
        let name = pattern.name_any();
        let config_name = naming::proxy_config(&pattern.spec.cluster);
        let labels = meta::proxy_config_labels(&pattern.spec.cluster);
        let config = w.live_child::<ConfigMap>(&config_name, &labels).await?;
        if Routes::from_config_map(config.as_ref()).is_some_and(|routes| routes.routes_to_runner(&name)) {
            return Err(Error::Waiting(format!(
                "the proxy still routes to {name}; waiting for {config_name} to drop it"
            )));
        }
        Ok(())
    }
}

/// Applies the runner's objects, sweeps the autoscaler no longer wanted, and observes.
async fn realise(
    pattern: &PrismPattern,
    valid: &ValidatedPattern,
    w: &Writer<'_>,
    selector: &str,
) -> Result<Observations> {
    let waiting_for = backends_not_ready(valid, w).await?;
    let live = LiveWorkload::get(valid, w).await?;
    if valid.spec.autoscaling.as_ref().is_some_and(|a| a.enabled) {
        live.hand_over_replicas(w).await?;
    }
    let owner = pattern.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let resources = build::build(valid, &owner, build::replicas(&valid.spec));
    w.apply(resources.config_map).await?;
    w.apply(resources.service).await?;
    if !waiting_for.is_empty() && !live.exists() {
        // Start the runner only once its backends serve; a running runner is left alone.
        return Ok(Observations { waiting_for, ..Observations::default() });
    }
    let workload = match resources.workload {
        Workload::Deployment(d) => WorkloadView::of_deployment(&w.apply(d).await?.0),
        Workload::StatefulSet(s) => WorkloadView::of_stateful_set(&w.apply(s).await?.0),
    };
    let autoscaling_problem = match resources.autoscaler {
        Some(Autoscaler::Hpa(hpa)) => w.apply(*hpa).await.map(|_| None)?,
        Some(Autoscaler::Keda(object)) => apply_scaled_object(w, *object).await?,
        None => None,
    };
    // The autoscaler of the other kind (or any, with autoscaling off) goes.
    w.sweep(selector).await?;
    Ok(Observations { waiting_for, workload: Some(workload), autoscaling_problem, ..Observations::default() })
}

/// Each backend service the runner uses that is not serving yet, with why.
async fn backends_not_ready(valid: &ValidatedPattern, w: &Writer<'_>) -> Result<Vec<String>> {
    let mut waiting = Vec::new();
    for backend in &valid.service_backends {
        let name = naming::backend_service(&valid.spec.cluster, *backend);
        let set = w.live::<StatefulSet>(&name).await?;
        match set.as_ref().map(WorkloadView::of_stateful_set) {
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

/// The runner's workload as it is before this pass writes it.
enum LiveWorkload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    Absent,
}

impl LiveWorkload {
    async fn get(valid: &ValidatedPattern, w: &Writer<'_>) -> Result<Self> {
        let labels = naming::runner_labels(&valid.spec.cluster, &valid.name);
        Ok(match valid.spec.workload {
            WorkloadKind::Deployment => w
                .live_child(&valid.name, &labels)
                .await?
                .map_or(LiveWorkload::Absent, |d| LiveWorkload::Deployment(Box::new(d))),
            WorkloadKind::StatefulSet => w
                .live_child(&valid.name, &labels)
                .await?
                .map_or(LiveWorkload::Absent, |s| LiveWorkload::StatefulSet(Box::new(s))),
        })
    }

    fn exists(&self) -> bool {
        !matches!(self, LiveWorkload::Absent)
    }

    async fn hand_over_replicas(&self, w: &Writer<'_>) -> Result<()> {
        match self {
            LiveWorkload::Deployment(d) => w.hand_over_replicas(d.as_ref()).await,
            LiveWorkload::StatefulSet(s) => w.hand_over_replicas(s.as_ref()).await,
            LiveWorkload::Absent => Ok(()),
        }
    }
}

/// Applies a KEDA ScaledObject; returns why autoscaling cannot be honoured when KEDA is missing.
async fn apply_scaled_object(w: &Writer<'_>, object: DynamicObject) -> Result<Option<(&'static str, String)>> {
    match w.apply_dynamic(object, &build::scaled_object_resource()).await {
        Ok(_) => Ok(None),
        Err(error) if error.api_status() == Some(404) => Ok(Some((
            "KedaNotInstalled",
            "spec.autoscaling.scaler is keda but KEDA's ScaledObject API (keda.sh/v1alpha1) is not installed: install KEDA or use scaler hpa".into(),
        ))),
        Err(error) => Err(error),
    }
}
