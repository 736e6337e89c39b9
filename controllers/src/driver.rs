//! The reconcile driver: what every controller does around its own apply and cleanup. A
//! controller says who it is and how it applies and cleans up one object ([`Reconciler`]); the
//! driver holds the finalizer, times and counts each pass, writes the status when it changed,
//! backs failing objects off one by one and announces failures and invalid specs as Events.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use tracing::Instrument;

use crate::backoff::Backoffs;
use crate::cache::Children;
use crate::conditions::{IntoStatus, ObjectStatus};
use crate::context::{Context, Identity};
use crate::error::{Error, Result};
use crate::hash;
use crate::kinds::Watched;
use crate::metrics::Metrics;
use crate::resync;
use crate::runner::{self, Action, Triggers};
use crate::transitions;
use crate::writer::Writer;

/// How long a status write of a controller's own may take to show in its cache before the
/// cache is believed again (then someone else wrote the status since).
const OWN_WRITE_LAG: Duration = Duration::from_secs(2);

/// How often a status may be written while only its progress changes (see `write_status`).
const STATUS_PACE: Duration = Duration::from_secs(1);

/// The same while the client's rate limit queues requests: a progress write would take the
/// turn of a write that makes progress (a child applied, a phase reported), and a queue of
/// them adds up (at QPS 20, ten clusters converging wrote 50 of them, 2.5 s of requests).
/// The counts are at most this stale meanwhile; a phase change is written at once as ever.
const THROTTLED_STATUS_PACE: Duration = Duration::from_secs(10);

/// What became of a pass's status.
enum StatusWrite {
    Written,
    Unchanged,
    /// Not written yet: to be looked at again after this long.
    Deferred(Duration),
}

/// A status write of a controller's own: the hash of what it wrote, and when.
#[derive(Clone, Debug)]
struct StatusWritten {
    hash: String,
    at: Instant,
}

impl StatusWritten {
    /// How long to wait for the cache to show this write, if it does not show it yet.
    fn unseen_for<S: ObjectStatus>(&self, cached: Option<&S>) -> Option<Duration> {
        let waited = self.at.elapsed();
        (waited < OWN_WRITE_LAG && hash::of(&cached) != self.hash).then(|| OWN_WRITE_LAG - waited)
    }

    /// How long to wait before looking at `new` again instead of writing it over `cached`, if
    /// only progress changed within `pace` of this write. The wait is at most [`STATUS_PACE`]:
    /// the pace may have shortened by then (the client's queue drained).
    fn paced_for<S: ObjectStatus>(&self, cached: Option<&S>, new: &S, pace: Duration) -> Option<Duration> {
        let waited = self.at.elapsed();
        let significant = cached.is_none_or(|cached| {
            cached.phase() != new.phase() || cached.observed_generation() != new.observed_generation()
        });
        (!significant && waited < pace).then(|| (pace - waited).min(STATUS_PACE))
    }
}

/// This controller's recent status writes, by object key. A write matters for as long as the
/// cache may not show it or the status pace holds ([`RecentWrites::matters`]); older ones are
/// dropped at the next write (at most once per that long), so that a converged installation
/// holds none instead of one per object.
#[derive(Debug, Default)]
struct RecentWrites {
    writes: DashMap<String, StatusWritten>,
    pruned: Mutex<Option<Instant>>,
}

impl RecentWrites {
    /// How long a write matters at `pace`: kept only as long as that, the writes of a
    /// throttled client (at most its QPS a second) stay few, an unlimited one's brief.
    fn matters(pace: Duration) -> Duration {
        OWN_WRITE_LAG.max(pace)
    }

    /// The last write to the object at `key`, if it still matters at `pace`.
    fn get(&self, key: &str, pace: Duration) -> Option<StatusWritten> {
        self.writes.remove_if(key, |_, last| last.at.elapsed() >= Self::matters(pace));
        self.writes.get(key).map(|last| last.clone())
    }

    fn insert(&self, key: String, written: StatusWritten, pace: Duration) {
        self.prune(Self::matters(pace));
        self.writes.insert(key, written);
    }

    fn remove(&self, key: &str) {
        self.writes.remove(key);
    }

    fn prune(&self, matters: Duration) {
        // Poisoning cannot leave an Instant half-written.
        let mut pruned = self.pruned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pruned.is_some_and(|at| at.elapsed() < matters) {
            return;
        }
        *pruned = Some(Instant::now());
        self.writes.retain(|_, last| last.at.elapsed() < matters);
    }
}

/// One controller: who it is, and how it realises and tears down one object of its kind. Its
/// own state (caches of other kinds, optional APIs found at start) lives in the implementing
/// value.
pub trait Reconciler: Send + Sync + 'static {
    type Kind: Watched + Serialize + HasStatus<Status: ObjectStatus>;
    /// What a pass observed: it makes the status.
    type Observations: IntoStatus<Status = StatusOf<Self>>;

    const IDENTITY: Identity;

    /// Brings the object's children to its spec and observes them.
    fn apply(&self, object: &Self::Kind, w: &Writer<'_>) -> impl Future<Output = Result<Self::Observations>> + Send;

    /// Records what the kind's own metrics show of a status (none by default); called at every
    /// pass, beside the phase metric.
    fn record_metrics(_status: &StatusOf<Self>, _metrics: &Metrics, _namespace: &str, _name: &str) {}

    /// Removes the kind's own series of a deleted object (none by default).
    fn forget_metrics(_metrics: &Metrics, _namespace: &str, _name: &str) {}

    /// Tears the object's children down before its finalizer goes; [`Error::Waiting`] while it
    /// waits on another controller.
    fn cleanup(&self, object: &Self::Kind, w: &Writer<'_>) -> impl Future<Output = Result<()>> + Send;
}

/// The status type of a reconciler's kind.
pub type StatusOf<R> = <<R as Reconciler>::Kind as HasStatus>::Status;

/// A controller's reconciles: the shared context, its caches and per-object state, and its
/// reconciler.
pub struct Driver<R> {
    ctx: Arc<Context>,
    children: Children,
    backoffs: Backoffs,
    status_writes: RecentWrites,
    reconciler: R,
}

impl<R: Reconciler> Driver<R> {
    pub fn new(ctx: Arc<Context>, children: Children, reconciler: R) -> Self {
        Driver { ctx, children, backoffs: Backoffs::default(), status_writes: RecentWrites::default(), reconciler }
    }

    /// Runs the reconciles `triggers` ask for until `shutdown` completes, reconciling every
    /// object again once per resync period (see `resync`).
    pub async fn run(self, triggers: Triggers<R::Kind>, shutdown: impl Future<Output = ()> + Send) {
        let settings = runner::Settings {
            controller: R::IDENTITY.controller,
            concurrency: self.ctx.config.concurrency,
            metrics: self.ctx.metrics.clone(),
        };
        let resyncs = resync::resyncs(triggers.store(), self.ctx.config.resync);
        let triggers = triggers.reconcile_on(resyncs);
        runner::run(triggers, reconcile::<R>, error_policy::<R>, Arc::new(self), settings, shutdown).await;
    }

    async fn apply(&self, object: &R::Kind) -> Result<Action> {
        self.children.wait_listed().await;
        let writer = Writer::new(&self.ctx, &self.children, R::IDENTITY, object);
        // Boxed: a controller's pass is a large future, and debug builds copy it on the stack.
        let observed = Box::pin(self.reconciler.apply(object, &writer)).await?;
        Ok(match self.write_status(object, observed).await? {
            StatusWrite::Deferred(wait) => Action::requeue(wait),
            StatusWrite::Written | StatusWrite::Unchanged => Action::await_change(),
        })
    }

    async fn cleanup(&self, object: &R::Kind) -> Result<Action> {
        self.children.wait_listed().await;
        let (kind, ns, name) = (R::Kind::kind(&()), object.namespace().unwrap_or_default(), object.name_any());
        let phase = HasStatus::status(object).and_then(ObjectStatus::phase);
        self.ctx.metrics.forget(&kind, &ns, &name, phase.as_deref());
        R::forget_metrics(&self.ctx.metrics, &ns, &name);
        self.status_writes.remove(&key::<R>(object));
        let writer = Writer::new(&self.ctx, &self.children, R::IDENTITY, object);
        Box::pin(self.reconciler.cleanup(object, &writer)).await?;
        tracing::info!("{kind} {name} torn down");
        if !controlled_by_prism(object) {
            let note = format!("{kind} {name} and what it ran are torn down");
            self.ctx.announce(&object.object_ref(&()), EventType::Normal, "TornDown", &note);
        }
        Ok(Action::await_change())
    }

    /// Writes the status computed from `observed` when it differs from the cached one, but not:
    /// - while the cache has not shown this controller's last status write yet: computed from a
    ///   stale status, the write would be redundant and move transition times. That write's own
    ///   watch event reconciles the object again; a recheck is scheduled in case it never shows
    ///   (someone else wrote the status meanwhile);
    /// - more than once per [`STATUS_PACE`] when only progress changed (counts of ready parts),
    ///   not the phase nor the generation observed: a burst of child events makes one write;
    ///   [`THROTTLED_STATUS_PACE`] while the client's requests queue for its rate limit.
    async fn write_status(&self, object: &R::Kind, observed: R::Observations) -> Result<StatusWrite> {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let (kind, ns, name) = (R::Kind::kind(&()), object.namespace().unwrap_or_default(), object.name_any());
        let cached = HasStatus::status(object);
        let new = observed.into_status(cached, object.meta().generation, &now);
        R::record_metrics(&new, &self.ctx.metrics, &ns, &name);
        let key = key::<R>(object);
        let pace = if self.ctx.throttled() { THROTTLED_STATUS_PACE } else { STATUS_PACE };
        let last = self.status_writes.get(&key, pace);
        if let Some(wait) = last.as_ref().and_then(|last| last.unseen_for(cached)) {
            return Ok(StatusWrite::Deferred(wait));
        }
        let show_phase = || {
            let (before, after) = (cached.and_then(ObjectStatus::phase), new.phase());
            if let Some(after) = after {
                self.ctx.metrics.set_phase(&kind, &ns, &name, before.as_deref(), &after);
            }
        };
        if cached == Some(&new) {
            show_phase();
            return Ok(StatusWrite::Unchanged);
        }
        if let Some(wait) = last.and_then(|last| last.paced_for(cached, &new, pace)) {
            return Ok(StatusWrite::Deferred(wait));
        }
        self.announce_transition(object, cached, &new);
        let body = serde_json::json!({
            "apiVersion": R::Kind::api_version(&()), "kind": kind, "status": new
        });
        let params = PatchParams::apply(R::IDENTITY.field_manager).force();
        Api::<R::Kind>::namespaced(self.ctx.client.clone(), &ns)
            .patch_status(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::api("apply status", &kind, &name, source))?;
        show_phase();
        self.status_writes.insert(key, StatusWritten { hash: hash::of(&Some(&new)), at: Instant::now() }, pace);
        Ok(StatusWrite::Written)
    }

    /// Logs a phase change and publishes the Event a status change deserves (see `transitions`).
    fn announce_transition(&self, object: &R::Kind, before: Option<&StatusOf<R>>, after: &StatusOf<R>) {
        let (kind, name) = (R::Kind::kind(&()), object.name_any());
        if let Some(phase) = transitions::new_phase(before, after) {
            tracing::info!("{kind} {name} {phase}");
        }
        if let Some(a) = transitions::announcement(&kind, &name, before, after, controlled_by_prism(object)) {
            self.ctx.announce(&object.object_ref(&()), a.type_, &a.reason, &a.note);
        }
    }
}

/// Whether another Prism custom resource controls `object` (a cluster's patterns and namespaces,
/// a namespace's runners).
fn controlled_by_prism<K: Resource>(object: &K) -> bool {
    let group = |api_version: &str| api_version.split('/').next() == Some(prism_api::names::GROUP);
    object.meta().owner_references.iter().flatten().any(|o| o.controller == Some(true) && group(&o.api_version))
}

/// A short, process-wide number for one reconcile, so that its log lines can be told apart.
fn next_reconcile_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The key of `object` in per-object state: controller, namespace and name.
fn key<R: Reconciler>(object: &R::Kind) -> String {
    format!("{}/{}/{}", R::IDENTITY.controller, object.namespace().unwrap_or_default(), object.name_any())
}

/// One reconcile: the finalizer splits it into apply and cleanup.
async fn reconcile<R: Reconciler>(object: Arc<R::Kind>, driver: Arc<Driver<R>>) -> Result<Action> {
    let _timer = driver.ctx.metrics.reconcile_started(R::IDENTITY.controller);
    let ns = object.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    // The object's name is `object`, not `name`: a JSON log line writes the span's own name under
    // `name`, and a log pipeline keeps only one of two equal keys.
    let span = tracing::info_span!(
        "reconcile",
        controller = R::IDENTITY.controller,
        namespace = %ns,
        object = %object.name_any(),
        id = next_reconcile_id()
    );
    reconcile_in(object, driver, &ns).instrument(span).await
}

async fn reconcile_in<R: Reconciler>(object: Arc<R::Kind>, driver: Arc<Driver<R>>, ns: &str) -> Result<Action> {
    let api: Api<R::Kind> = Api::namespaced(driver.ctx.client.clone(), ns);
    let key = key::<R>(&object);
    // What the pass asks for next: kube-runtime's finalizer speaks its own `Action`, which does
    // not tell its requeue.
    let mut action = Action::await_change();
    finalizer(&api, R::IDENTITY.finalizer, object, |event| async {
        action = match event {
            Finalizer::Apply(object) => driver.apply(&object).await?,
            Finalizer::Cleanup(object) => driver.cleanup(&object).await?,
        };
        Ok::<_, Error>(kube::runtime::controller::Action::await_change())
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    driver.backoffs.reset(&key);
    driver.ctx.metrics.reconcile_succeeded(R::IDENTITY.controller);
    driver.ctx.metrics.set_backing_off(R::IDENTITY.controller, driver.backoffs.len());
    Ok(action)
}

/// The requeue after `error`: a teardown that waits on another controller is not polled (what it
/// waits for is watched, and its change wakes the object: a cluster's routes dropping it, its
/// children going, a cluster resuming), only looked at again at the next resync; a failure is counted,
/// backed off per object, logged and announced as an Event on the object.
fn error_policy<R: Reconciler>(object: Arc<R::Kind>, error: &Error, driver: Arc<Driver<R>>) -> Action {
    let controller = R::IDENTITY.controller;
    if let Some(why) = error.waiting() {
        tracing::debug!(controller, object = %object.name_any(), why, "waiting");
        return Action::await_change();
    }
    driver.ctx.metrics.reconcile_failed(controller, error.metric_label());
    let delay = driver.backoffs.next_delay(key::<R>(&object));
    driver.ctx.metrics.set_backing_off(controller, driver.backoffs.len());
    tracing::warn!(controller, object = %object.name_any(), %error, retry_in = ?delay, "reconcile failed");
    driver.ctx.announce(&object.object_ref(&()), EventType::Warning, "ReconcileFailed", &error.to_string());
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use prism_api::v1beta1::{ClusterPhase, PrismClusterStatus};

    use super::{RecentWrites, STATUS_PACE, StatusWritten, THROTTLED_STATUS_PACE};

    fn written(ago: Duration) -> StatusWritten {
        let at = Instant::now().checked_sub(ago).expect("the clock is past boot by a few seconds");
        StatusWritten { hash: "h".into(), at }
    }

    #[test]
    fn old_writes_do_not_stay_once_another_is_written() {
        let writes = RecentWrites::default();
        let matters = RecentWrites::matters(STATUS_PACE);
        writes.insert("prism/old".into(), written(matters + Duration::from_secs(1)), STATUS_PACE);
        writes.insert("prism/recent".into(), written(Duration::ZERO), STATUS_PACE);
        assert_eq!(writes.writes.len(), 2, "pruned at most once per `matters`");
        *writes.pruned.lock().expect("not poisoned") = None;
        writes.insert("prism/other".into(), written(Duration::ZERO), STATUS_PACE);
        assert_eq!(writes.writes.len(), 2, "the old write is dropped, not only hidden");
        assert!(writes.get("prism/recent", STATUS_PACE).is_some());
        assert!(writes.get("prism/old", STATUS_PACE).is_none());
    }

    #[test]
    fn a_throttled_client_keeps_writes_for_its_longer_pace() {
        let writes = RecentWrites::default();
        writes.insert("prism/a".into(), written(Duration::from_secs(5)), THROTTLED_STATUS_PACE);
        assert!(writes.get("prism/a", THROTTLED_STATUS_PACE).is_some(), "within the throttled pace");
        assert!(writes.get("prism/a", STATUS_PACE).is_none(), "past the pace once the queue drained");
    }

    fn status(phase: ClusterPhase, ready: u32) -> PrismClusterStatus {
        PrismClusterStatus {
            phase: Some(phase),
            observed_generation: Some(1),
            ready_components: Some(format!("{ready}/9")),
            ..PrismClusterStatus::default()
        }
    }

    #[test]
    fn progress_waits_out_the_pace_and_a_phase_change_never_does() {
        let (cached, progress) = (status(ClusterPhase::Pending, 1), status(ClusterPhase::Pending, 2));
        let running = status(ClusterPhase::Running, 2);
        let last = written(Duration::from_millis(2500));
        assert_eq!(last.paced_for(Some(&cached), &progress, STATUS_PACE), None, "past the pace");
        let wait = last.paced_for(Some(&cached), &progress, THROTTLED_STATUS_PACE).expect("held while throttled");
        assert_eq!(wait, STATUS_PACE, "looked at again within a second, in case the queue drains");
        assert_eq!(last.paced_for(Some(&cached), &running, THROTTLED_STATUS_PACE), None, "a phase change");
        let older = written(THROTTLED_STATUS_PACE);
        assert_eq!(older.paced_for(Some(&cached), &progress, THROTTLED_STATUS_PACE), None, "at most that stale");
    }
}
