//! Prometheus metrics of the operator, served in the Prometheus text format on /metrics.
//!
//! Every name starts with `prism_operator_`. The registry has no prefix of its own: a prefixed
//! registry plus names that already start with the prefix would double it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the reconcile duration buckets: from a no-op pass served by the
/// cache (milliseconds) to a slow first convergence throttled by the client QPS (a minute).
const DURATION_BUCKETS: [f64; 13] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    controller: &'static str,
    kind: String,
    action: WriteAction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    kind: String,
    namespace: String,
    name: String,
    phase: String,
}

/// Identity of one custom resource in the phase gauge.
type ObjectKey = (String, String, String);

/// What a controller did to a child object; the `action` label of `prism_operator_objects_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum WriteAction {
    Created,
    Updated,
    Deleted,
}

impl WriteAction {
    /// The label value: lower case, like Kubernetes' own verbs in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteAction::Created => "created",
            WriteAction::Updated => "updated",
            WriteAction::Deleted => "deleted",
        }
    }
}

impl EncodeLabelValue for WriteAction {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The operator's registry and metric families. One instance is shared by every controller.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    objects: Family<ObjectLabels, Counter>,
    phase: Family<PhaseLabels, Gauge>,
    /// The phase each object currently reports, so a phase change removes the old series.
    current_phase: Mutex<HashMap<ObjectKey, String>>,
    leader: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Metrics {
    /// The `Content-Type` of what [`Metrics::encode`] returns.
    pub const CONTENT_TYPE: &'static str = prometheus_text::CONTENT_TYPE;

    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration =
            Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram as _);
        let objects = Family::<ObjectLabels, Counter>::default();
        let phase = Family::<PhaseLabels, Gauge>::default();
        let leader = Gauge::default();
        // Counters are registered without `_total`: the encoder appends it.
        registry.register("prism_operator_reconcile", "Reconciles started, by controller", reconciles.clone());
        registry.register(
            "prism_operator_reconcile_errors",
            "Reconciles that failed, by controller and error kind",
            reconcile_errors.clone(),
        );
        registry.register(
            "prism_operator_reconcile_duration_seconds",
            "Duration of reconciles, by controller",
            reconcile_duration.clone(),
        );
        registry.register(
            "prism_operator_objects",
            "Child objects created, updated or deleted, by controller and kind",
            objects.clone(),
        );
        registry.register(
            "prism_operator_resource_phase",
            "1 for the phase a custom resource currently reports",
            phase.clone(),
        );
        registry.register("prism_operator_leader", "1 while this instance holds the leader lease", leader.clone());
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            objects,
            phase,
            current_phase: Mutex::new(HashMap::new()),
            leader,
        }
    }

    /// Every metric in the Prometheus text format (version 0.0.4), as served on /metrics.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a partial page,
        // which is still better than none for a scrape.
        if let Err(err) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %err, "encoding metrics failed");
        }
        out
    }

    /// Counts a reconcile and times it: the duration is recorded when the timer is dropped.
    pub fn reconcile_started(&self, controller: &'static str) -> ReconcileTimer {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        ReconcileTimer { histogram: Some(self.reconcile_duration.get_or_create_owned(&labels)), start: Instant::now() }
    }

    /// Counts a failed reconcile; `error_kind` is a short, bounded label (an error enum's variant).
    pub fn reconcile_failed(&self, controller: &'static str, error_kind: &str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { controller, error: error_kind.to_string() }).inc();
    }

    /// Counts a write to a child object of `kind` (e.g. `Deployment`).
    pub fn object_written(&self, controller: &'static str, kind: &str, action: WriteAction) {
        self.objects.get_or_create(&ObjectLabels { controller, kind: kind.to_string(), action }).inc();
    }

    /// Records the phase a custom resource reports: its series for this phase is 1, and the
    /// series of its previous phase is removed.
    pub fn set_phase(&self, kind: &str, namespace: &str, name: &str, phase: &str) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        let previous = self.lock_phases().insert(key.clone(), phase.to_string());
        if let Some(previous) = previous.filter(|p| p != phase) {
            self.phase.remove(&phase_labels(&key, previous));
        }
        self.phase.get_or_create(&phase_labels(&key, phase.to_string())).set(1);
    }

    /// Removes every series of a deleted custom resource, so the gauge does not grow forever.
    pub fn forget(&self, kind: &str, namespace: &str, name: &str) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        if let Some(previous) = self.lock_phases().remove(&key) {
            self.phase.remove(&phase_labels(&key, previous));
        }
    }

    /// Whether this instance currently leads (1) or stands by (0).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    fn lock_phases(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, String>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.current_phase.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn phase_labels((kind, namespace, name): &ObjectKey, phase: String) -> PhaseLabels {
    PhaseLabels { kind: kind.clone(), namespace: namespace.clone(), name: name.clone(), phase }
}

/// Times one reconcile; records into `prism_operator_reconcile_duration_seconds` once, on
/// [`ReconcileTimer::finish`] or when dropped (so an early return or `?` is timed too).
#[derive(Debug)]
pub struct ReconcileTimer {
    histogram: Option<Histogram>,
    start: Instant,
}

impl ReconcileTimer {
    pub fn finish(mut self) {
        self.record();
    }

    fn record(&mut self) {
        if let Some(histogram) = self.histogram.take() {
            histogram.observe(self.start.elapsed().as_secs_f64());
        }
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_starting(text: &str, prefix: &str) -> Vec<String> {
        text.lines().filter(|l| l.starts_with(prefix)).map(str::to_string).collect()
    }

    #[test]
    fn names_carry_the_prefix_once() {
        let metrics = Metrics::new();
        // A family without series is left out of the text format: give each one a series.
        metrics.reconcile_started("pattern").finish();
        metrics.reconcile_failed("pattern", "kube");
        metrics.object_written("pattern", "Service", WriteAction::Created);
        metrics.set_phase("PrismPattern", "prism", "kv", "Running");
        let text = metrics.encode();
        assert!(!text.contains("prism_prism"), "{text}");
        assert!(!text.contains("_total_total"), "{text}");
        for family in [
            "# TYPE prism_operator_reconcile_total counter",
            "# TYPE prism_operator_reconcile_errors_total counter",
            "# TYPE prism_operator_reconcile_duration_seconds histogram",
            "# TYPE prism_operator_objects_total counter",
            "# TYPE prism_operator_resource_phase gauge",
            "# TYPE prism_operator_leader gauge",
        ] {
            assert!(text.contains(family), "missing {family:?} in\n{text}");
        }
    }

    #[test]
    fn a_reconcile_counts_and_records_its_duration_once() {
        let metrics = Metrics::new();
        let timer = metrics.reconcile_started("pattern");
        drop(timer);
        metrics.reconcile_started("pattern").finish();
        let text = metrics.encode();
        assert!(text.contains("prism_operator_reconcile_total{controller=\"pattern\"} 2\n"), "{text}");
        assert!(text.contains("prism_operator_reconcile_duration_seconds_count{controller=\"pattern\"} 2\n"), "{text}");
        assert!(
            text.contains("prism_operator_reconcile_duration_seconds_bucket{le=\"+Inf\",controller=\"pattern\"} 2\n")
                || text.contains(
                    "prism_operator_reconcile_duration_seconds_bucket{controller=\"pattern\",le=\"+Inf\"} 2\n"
                ),
            "{text}"
        );
    }

    #[test]
    fn errors_are_labelled_by_kind() {
        let metrics = Metrics::new();
        metrics.reconcile_failed("pattern", "kube");
        metrics.reconcile_failed("pattern", "kube");
        metrics.reconcile_failed("cluster", "invalid_spec");
        let text = metrics.encode();
        assert!(text.contains("prism_operator_reconcile_errors_total{controller=\"pattern\",error=\"kube\"} 2\n"));
        assert!(
            text.contains("prism_operator_reconcile_errors_total{controller=\"cluster\",error=\"invalid_spec\"} 1\n")
        );
    }

    #[test]
    fn object_writes_are_labelled_by_kind_and_action() {
        let metrics = Metrics::new();
        metrics.object_written("pattern", "Deployment", WriteAction::Created);
        metrics.object_written("pattern", "Deployment", WriteAction::Updated);
        metrics.object_written("pattern", "Deployment", WriteAction::Updated);
        metrics.object_written("pattern", "ScaledObject", WriteAction::Deleted);
        let text = metrics.encode();
        let objects = lines_starting(&text, "prism_operator_objects_total{");
        assert_eq!(objects.len(), 3, "one series per (controller, kind, action): {objects:?}");
        assert!(text.contains(
            "prism_operator_objects_total{controller=\"pattern\",kind=\"Deployment\",action=\"created\"} 1\n"
        ));
        assert!(text.contains(
            "prism_operator_objects_total{controller=\"pattern\",kind=\"Deployment\",action=\"updated\"} 2\n"
        ));
        assert!(text.contains(
            "prism_operator_objects_total{controller=\"pattern\",kind=\"ScaledObject\",action=\"deleted\"} 1\n"
        ));
    }

    #[test]
    fn the_phase_gauge_keeps_only_the_current_phase() {
        let metrics = Metrics::new();
        metrics.set_phase("PrismPattern", "prism", "kv", "Pending");
        metrics.set_phase("PrismPattern", "prism", "kv", "Running");
        metrics.set_phase("PrismPattern", "prism", "kv", "Running");
        metrics.set_phase("PrismPattern", "prism", "other", "Failed");
        let text = metrics.encode();
        let mut series = lines_starting(&text, "prism_operator_resource_phase{");
        series.sort();
        assert_eq!(
            series,
            vec![
                r#"prism_operator_resource_phase{kind="PrismPattern",namespace="prism",name="kv",phase="Running"} 1"#,
                r#"prism_operator_resource_phase{kind="PrismPattern",namespace="prism",name="other",phase="Failed"} 1"#,
            ]
        );
    }

    #[test]
    fn forgetting_an_object_removes_its_series() {
        let metrics = Metrics::new();
        metrics.set_phase("PrismPattern", "prism", "kv", "Running");
        metrics.set_phase("PrismCluster", "prism", "kv", "Running");
        metrics.forget("PrismPattern", "prism", "kv");
        metrics.forget("PrismPattern", "prism", "never-seen");
        let series = lines_starting(&metrics.encode(), "prism_operator_resource_phase{");
        assert_eq!(
            series,
            vec![
                "prism_operator_resource_phase{kind=\"PrismCluster\",namespace=\"prism\",name=\"kv\",phase=\"Running\"} 1"
            ]
        );
    }

    #[test]
    fn the_leader_gauge_follows_the_lease() {
        let metrics = Metrics::new();
        assert!(metrics.encode().contains("\nprism_operator_leader 0\n"));
        metrics.set_leader(true);
        assert!(metrics.encode().contains("\nprism_operator_leader 1\n"));
        metrics.set_leader(false);
        assert!(metrics.encode().contains("\nprism_operator_leader 0\n"));
    }
}
