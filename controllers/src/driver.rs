//! The reconcile driver: what every controller does around its own apply and cleanup. A
//! controller says who it is and how it applies and cleans up one object ([`Reconciler`]); the
//! driver holds the finalizer, times and counts each pass, writes the status when it changed,
//! backs failing objects off one by one and announces failures and invalid specs as Events.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use prism_api::names::conditions;
use serde::Serialize;

use crate::backoff::Backoffs;
use crate::cache::Children;
use crate::context::{Context, Identity};
use crate::error::{Error, Result};
use crate::kinds::Watched;
use crate::metrics::Metrics;
use crate::watches;
use crate::writer::Writer;

/// How often a teardown that waits on another controller looks again.
pub const WAIT_POLL: Duration = Duration::from_secs(2);

/// The status of a custom resource, as the driver writes it.
pub trait ObjectStatus: Clone + PartialEq + Serialize + Send + Sync {
    /// The phase, for the phase metric.
    fn phase(&self) -> Option<String>;
    fn conditions(&self) -> &[Condition];

    /// Records what the kind's own metrics show of this status (none by default); called at
    /// every pass, beside the phase metric.
    fn record_metrics(&self, _metrics: &Metrics, _namespace: &str, _name: &str) {}

    /// Removes the kind's own series of a deleted object (none by default).
    fn forget_metrics(_metrics: &Metrics, _namespace: &str, _name: &str)
    where
        Self: Sized,
    {
    }
}

/// One controller: who it is, and how it realises and tears down one object of its kind. Its
/// own state (caches of other kinds, optional APIs found at start) lives in the implementing
/// value.
pub trait Reconciler: Send + Sync + 'static {
    type Kind: Watched + Serialize;
    type Status: ObjectStatus;
    /// What a pass observed, from which the status is computed.
    type Observations: Clone + Send;

    const IDENTITY: Identity;

    fn status(object: &Self::Kind) -> Option<&Self::Status>;

    /// The status `observed` makes of `previous` (pure).
    fn compute_status(
        previous: Option<&Self::Status>,
        generation: Option<i64>,
        observed: Self::Observations,
        now: &Time,
    ) -> Self::Status;

    /// Brings the object's children to its spec and observes them.
    fn apply(&self, object: &Self::Kind, w: &Writer<'_>) -> impl Future<Output = Result<Self::Observations>> + Send;

    /// Tears the object's children down before its finalizer goes; [`Error::Waiting`] while it
    /// waits on another controller.
    fn cleanup(&self, object: &Self::Kind, w: &Writer<'_>) -> impl Future<Output = Result<()>> + Send;
}

/// A controller's reconciles: the shared context, its caches and per-object state, and its
/// reconciler.
pub struct Driver<R> {
    ctx: Arc<Context>,
    children: Children,
    backoffs: Backoffs,
    /// Objects whose status this controller wrote, by key, with the resourceVersion the write
    /// gave them, until a reconcile sees that version: until then the cache may lag behind.
    status_writes: DashMap<String, String>,
    reconciler: R,
}

impl<R: Reconciler> Driver<R> {
    pub fn new(ctx: Arc<Context>, children: Children, reconciler: R) -> Self {
        Driver { ctx, children, backoffs: Backoffs::default(), status_writes: DashMap::new(), reconciler }
    }

    /// Runs `controller` until `shutdown` completes.
    pub async fn run(
        self,
        controller: kube::runtime::Controller<R::Kind>,
        shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
    ) {
        let concurrency = self.ctx.config.concurrency;
        watches::run(controller, reconcile::<R>, error_policy::<R>, Arc::new(self), concurrency, shutdown).await;
    }

    async fn apply(&self, object: &R::Kind) -> Result<Action> {
        let writer = Writer::new(&self.ctx, &self.children, R::IDENTITY, object);
        let observed = self.reconciler.apply(object, &writer).await?;
        self.write_status(object, observed).await?;
        Ok(Action::requeue(self.ctx.config.resync))
    }

    async fn cleanup(&self, object: &R::Kind) -> Result<Action> {
        let (kind, ns, name) = (R::Kind::kind(&()), object.namespace().unwrap_or_default(), object.name_any());
        self.ctx.metrics.forget(&kind, &ns, &name);
        R::Status::forget_metrics(&self.ctx.metrics, &ns, &name);
        self.status_writes.remove(&key::<R>(object));
        let writer = Writer::new(&self.ctx, &self.children, R::IDENTITY, object);
        self.reconciler.cleanup(object, &writer).await?;
        Ok(Action::await_change())
    }

    /// Writes the status computed from `observed` when it differs from the stored one.
    async fn write_status(&self, object: &R::Kind, observed: R::Observations) -> Result<()> {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let (kind, ns, name) = (R::Kind::kind(&()), object.namespace().unwrap_or_default(), object.name_any());
        let generation = object.meta().generation;
        let cached = R::status(object);
        let mut new = R::compute_status(cached, generation, observed.clone(), &now);
        if let Some(phase) = new.phase() {
            self.ctx.metrics.set_phase(&kind, &ns, &name, &phase);
        }
        new.record_metrics(&self.ctx.metrics, &ns, &name);
        let key = key::<R>(object);
        let cache_may_lag = self.status_may_lag(&key, object);
        if cached == Some(&new) {
            return Ok(());
        }
        let api: Api<R::Kind> = Api::namespaced(self.ctx.client.clone(), &ns);
        if cache_may_lag {
            // Our last status write may not have reached the cache yet: a read costs less than a
            // write that changes nothing.
            let stored = api.get(&name).await.map_err(|source| Error::api("get", &kind, &name, source))?;
            if stored.meta().resource_version == object.meta().resource_version {
                self.status_writes.remove(&key);
            }
            if R::status(&stored) != cached {
                new = R::compute_status(R::status(&stored), generation, observed, &now);
                if R::status(&stored) == Some(&new) {
                    return Ok(());
                }
            }
        }
        self.announce_invalid(object, &new);
        let body = serde_json::json!({
            "apiVersion": R::Kind::api_version(&()), "kind": kind, "status": new
        });
        let params = PatchParams::apply(R::IDENTITY.field_manager).force();
        let written = api
            .patch_status(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::api("apply status", &kind, &name, source))?;
        if let Some(version) = written.resource_version() {
            self.status_writes.insert(key, version);
        }
        Ok(())
    }

    /// Whether the cached `object` may predate this controller's last status write to it.
    fn status_may_lag(&self, key: &str, object: &R::Kind) -> bool {
        let version = object.meta().resource_version.as_deref();
        // The cache shows the version our write made: the note has served.
        self.status_writes.remove_if(key, |_, written| Some(written.as_str()) == version);
        self.status_writes.contains_key(key)
    }

    /// A Warning Event when the spec becomes invalid (once per change of status, not per pass).
    fn announce_invalid(&self, object: &R::Kind, new: &R::Status) {
        let invalid = new.conditions().iter().find(|c| c.type_ == conditions::SPEC_VALID && c.status == "False");
        if let Some(condition) = invalid {
            self.ctx.announce(&object.object_ref(&()), EventType::Warning, &condition.reason, &condition.message);
        }
    }
}

/// The key of `object` in per-object state: controller, namespace and name.
fn key<R: Reconciler>(object: &R::Kind) -> String {
    format!("{}/{}/{}", R::IDENTITY.controller, object.namespace().unwrap_or_default(), object.name_any())
}

/// One reconcile: the finalizer splits it into apply and cleanup.
async fn reconcile<R: Reconciler>(object: Arc<R::Kind>, driver: Arc<Driver<R>>) -> Result<Action> {
    let _timer = driver.ctx.metrics.reconcile_started(R::IDENTITY.controller);
    let ns = object.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<R::Kind> = Api::namespaced(driver.ctx.client.clone(), &ns);
    let key = key::<R>(&object);
    let action = finalizer(&api, R::IDENTITY.finalizer, object, |event| async {
        match event {
            Finalizer::Apply(object) => driver.apply(&object).await,
            Finalizer::Cleanup(object) => driver.cleanup(&object).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    driver.backoffs.reset(&key);
    driver.ctx.metrics.reconcile_succeeded(R::IDENTITY.controller);
    driver.ctx.metrics.set_backing_off(R::IDENTITY.controller, driver.backoffs.len());
    Ok(action)
}

/// The requeue after `error`: a teardown that waits on another controller is polled gently; a
/// failure is counted, backed off per object, logged and announced as an Event on the object.
fn error_policy<R: Reconciler>(object: Arc<R::Kind>, error: &Error, driver: Arc<Driver<R>>) -> Action {
    let controller = R::IDENTITY.controller;
    if let Some(why) = error.waiting() {
        tracing::debug!(controller, object = %object.name_any(), why, "waiting");
        return Action::requeue(WAIT_POLL);
    }
    driver.ctx.metrics.reconcile_failed(controller, error.metric_label());
    let delay = driver.backoffs.next_delay(key::<R>(&object));
    driver.ctx.metrics.set_backing_off(controller, driver.backoffs.len());
    tracing::warn!(controller, object = %object.name_any(), %error, retry_in = ?delay, "reconcile failed");
    driver.ctx.announce(&object.object_ref(&()), EventType::Warning, "ReconcileFailed", &error.to_string());
    Action::requeue(delay)
}
