//! Prometheus metrics of the operator, served in the Prometheus text format on /metrics.
//!
//! The operator's own metrics start with `prism_operator_`; the health of each PrismCluster is
//! `prism_cluster_*`, as the design record names it (ADR-059, Observability). The registry has no
//! prefix of its own: a prefixed registry plus names that already start with the prefix would
//! double it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prism_api::v1beta1::ClusterPhase;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, prometheus_text,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::intern;

/// A label value of a series kept per object: the few texts all of a cluster's series repeat
/// (its namespace, its name, component names) are one shared copy (see `intern`), not one each.
/// At 300 clusters the health series held 4.5 KiB per cluster (heaptrack), most of it copies of
/// the same names.
type Label = Arc<str>;

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
    kind: Label,
    namespace: Label,
    name: Label,
    phase: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterPhaseLabels {
    namespace: Label,
    cluster: Label,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    namespace: Label,
    cluster: Label,
    component: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PatternLabels {
    namespace: Label,
    cluster: Label,
    pattern: Label,
}

/// A PrismCluster by namespace and name.
type ClusterKey = (Label, Label);

/// What the `prism_cluster_*` gauges show of one PrismCluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterHealth {
    pub phase: ClusterPhase,
    /// admin, proxy and each backend, with whether it is ready.
    pub components: Vec<(String, bool)>,
    /// Each pattern runner, with whether it is ready.
    pub patterns: Vec<(String, bool)>,
}

/// The components and patterns a cluster has series for, so that one that goes away loses them.
#[derive(Debug, Default)]
struct ClusterSeries {
    components: Vec<Label>,
    patterns: Vec<Label>,
}

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
    leader: Gauge,
    reconcile_successes: Family<ControllerLabels, Counter>,
    in_flight: Family<ControllerLabels, Gauge>,
    backing_off: Family<ControllerLabels, Gauge>,
    queue_depth: Family<ControllerLabels, Gauge>,
    queue_wait: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    requests: Family<RequestLabels, Counter>,
    memory_limit: Gauge,
    cluster_phase: Family<ClusterPhaseLabels, Gauge>,
    cluster_components: Family<ComponentLabels, Gauge>,
    cluster_patterns: Family<PatternLabels, Gauge>,
    cluster_series: Mutex<HashMap<ClusterKey, ClusterSeries>>,
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

/// The most a piece of the metrics page holds (see [`Metrics::encode_in_pieces`]).
const PAGE_PIECE: usize = 64 * 1024;

/// A text written into pieces of at most [`PAGE_PIECE`] bytes (one write that is longer gets a
/// piece of its own).
struct Pieces(Vec<String>);

impl fmt::Write for Pieces {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        match self.0.last_mut() {
            Some(last) if last.len() + text.len() <= PAGE_PIECE => last.push_str(text),
            _ => self.0.push(String::with_capacity(PAGE_PIECE.max(text.len())) + text),
        }
        Ok(())
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
        let mut metrics = Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            objects,
            phase,
            leader,
            reconcile_successes: Family::default(),
            in_flight: Family::default(),
            backing_off: Family::default(),
            queue_depth: Family::default(),
            queue_wait: Family::new_with_constructor(duration_histogram as _),
            requests: Family::default(),
            memory_limit: Gauge::default(),
            cluster_phase: Family::default(),
            cluster_components: Family::default(),
            cluster_patterns: Family::default(),
            cluster_series: Mutex::new(HashMap::new()),
        };
        metrics.register_more();
        metrics
    }

    /// The families beside the first ones: successes, the work queue, API requests, memory and
    /// the health of each cluster.
    fn register_more(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "prism_operator_reconcile_success",
            "Reconciles that succeeded, by controller",
            self.reconcile_successes.clone(),
        );
        registry.register(
            "prism_operator_reconciles_in_flight",
            "Reconciles running now, by controller",
            self.in_flight.clone(),
        );
        registry.register(
            "prism_operator_objects_backing_off",
            "Objects whose last reconcile failed and that wait for their retry, by controller",
            self.backing_off.clone(),
        );
        registry.register(
            "prism_operator_work_queue_depth",
            "Objects waiting for their turn to be reconciled, by controller",
            self.queue_depth.clone(),
        );
        registry.register(
            "prism_operator_work_queue_wait_seconds",
            "How long objects waited for their turn to be reconciled, by controller",
            self.queue_wait.clone(),
        );
        registry.register(
            "prism_operator_kube_requests",
            "Requests to the Kubernetes API, by verb and HTTP status code (error: no answer)",
            self.requests.clone(),
        );
        registry.register(
            "prism_operator_memory_limit_bytes",
            "The memory limit of the operator's container (0 when unknown)",
            self.memory_limit.clone(),
        );
        registry.register_collector(Box::new(ResidentMemory));
        registry.register(
            "prism_cluster_phase",
            "1 for the phase a PrismCluster reports, 0 for the other phases",
            self.cluster_phase.clone(),
        );
        registry.register(
            "prism_cluster_components_ready",
            "1 when a PrismCluster's component (admin, proxy, each backend) is ready",
            self.cluster_components.clone(),
        );
        registry.register(
            "prism_cluster_patterns_ready",
            "1 when a PrismCluster's pattern runner is ready",
            self.cluster_patterns.clone(),
        );
    }

    /// Every metric in the Prometheus text format (version 0.0.4), as served on /metrics.
    pub fn encode(&self) -> String {
        self.encode_in_pieces().concat()
    }

    /// [`Metrics::encode`] in pieces of at most [`PAGE_PIECE`] bytes, to send one after the other.
    /// One string grows by doubling: a page of 1,000 clusters' 21,000 series (2.2 MB) took twice
    /// that while its last copy was made, at every scrape, a peak of the operator's memory that
    /// nothing else reached (at 1,000 clusters, 103 MiB against 97 MiB before and after).
    pub fn encode_in_pieces(&self) -> Vec<String> {
        let mut out = Pieces(vec![String::with_capacity(PAGE_PIECE)]);
        // Writing into strings cannot fail; an encoder error would leave a partial page, which
        // is still better than none for a scrape.
        if let Err(err) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %err, "encoding metrics failed");
        }
        out.0
    }

    /// Counts a reconcile and times it: the duration is recorded when the timer is dropped.
    pub fn reconcile_started(&self, controller: &'static str) -> ReconcileTimer {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        let in_flight = self.in_flight.get_or_create_owned(&labels);
        in_flight.inc();
        ReconcileTimer {
            histogram: Some(self.reconcile_duration.get_or_create_owned(&labels)),
            in_flight,
            start: Instant::now(),
        }
    }

    /// Counts a reconcile that succeeded.
    pub fn reconcile_succeeded(&self, controller: &'static str) {
        self.reconcile_successes.get_or_create(&ControllerLabels { controller }).inc();
    }

    /// How many of a controller's objects wait for a retry after a failure.
    pub fn set_backing_off(&self, controller: &'static str, objects: usize) {
        let objects = i64::try_from(objects).unwrap_or(i64::MAX);
        self.backing_off.get_or_create(&ControllerLabels { controller }).set(objects);
    }

    /// How many of a controller's objects wait for their turn now.
    pub fn set_queue_depth(&self, controller: &'static str, objects: usize) {
        let objects = i64::try_from(objects).unwrap_or(i64::MAX);
        self.queue_depth.get_or_create(&ControllerLabels { controller }).set(objects);
    }

    /// Records how long an object waited for its turn.
    pub fn queue_waited(&self, controller: &'static str, waited: Duration) {
        self.queue_wait.get_or_create(&ControllerLabels { controller }).observe(waited.as_secs_f64());
    }

    /// Counts a request to the Kubernetes API: `verb` as the API server names it (get, list,
    /// watch, create, patch, ...), `code` its HTTP status or `error` when none came back.
    pub fn kube_request(&self, verb: &'static str, code: &str) {
        self.requests.get_or_create(&RequestLabels { verb, code: code.to_string() }).inc();
    }

    /// The container's memory limit, in bytes.
    pub fn set_memory_limit(&self, bytes: i64) {
        self.memory_limit.set(bytes);
    }

    /// Records the health of a PrismCluster; the series of components and patterns it no
    /// longer has are removed.
    pub fn set_cluster_health(&self, namespace: &str, cluster: &str, health: &ClusterHealth) {
        let key = (intern::text(namespace), intern::text(cluster));
        let mut series = self.lock_clusters();
        let previous = series.remove(&key).unwrap_or_default();
        let current = ClusterSeries {
            components: health.components.iter().map(|(name, _)| intern::text(name)).collect(),
            patterns: health.patterns.iter().map(|(name, _)| intern::text(name)).collect(),
        };
        self.remove_cluster_series(&key, &previous, Some(&current));
        for phase in ClusterPhase::ALL {
            let labels = cluster_phase_labels(&key, phase);
            self.cluster_phase.get_or_create(&labels).set(i64::from(phase == health.phase));
        }
        for (component, ready) in &health.components {
            self.cluster_components.get_or_create(&component_labels(&key, component)).set(i64::from(*ready));
        }
        for (pattern, ready) in &health.patterns {
            self.cluster_patterns.get_or_create(&pattern_labels(&key, pattern)).set(i64::from(*ready));
        }
        series.insert(key, current);
    }

    /// Removes every `prism_cluster_*` series of a deleted PrismCluster.
    pub fn forget_cluster(&self, namespace: &str, cluster: &str) {
        let key = (intern::text(namespace), intern::text(cluster));
        if let Some(previous) = self.lock_clusters().remove(&key) {
            self.remove_cluster_series(&key, &previous, None);
        }
    }

    /// Removes the series of `previous` that `current` does not have (all of them without one).
    fn remove_cluster_series(&self, key: &ClusterKey, previous: &ClusterSeries, current: Option<&ClusterSeries>) {
        let none = ClusterSeries::default();
        if current.is_none() {
            for phase in ClusterPhase::ALL {
                self.cluster_phase.remove(&cluster_phase_labels(key, phase));
            }
        }
        let current = current.unwrap_or(&none);
        for component in previous.components.iter().filter(|c| !current.components.contains(c)) {
            self.cluster_components.remove(&component_labels(key, component));
        }
        for pattern in previous.patterns.iter().filter(|p| !current.patterns.contains(p)) {
            self.cluster_patterns.remove(&pattern_labels(key, pattern));
        }
    }

    fn lock_clusters(&self) -> std::sync::MutexGuard<'_, HashMap<ClusterKey, ClusterSeries>> {
        // Poisoning cannot leave the map inconsistent (whole entries go in and out).
        self.cluster_series.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a failed reconcile; `error_kind` is a short, bounded label (an error enum's variant).
    pub fn reconcile_failed(&self, controller: &'static str, error_kind: &str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { controller, error: error_kind.to_string() }).inc();
    }

    /// Counts a write to a child object of `kind` (e.g. `Deployment`).
    pub fn object_written(&self, controller: &'static str, kind: &str, action: WriteAction) {
        self.objects.get_or_create(&ObjectLabels { controller, kind: kind.to_string(), action }).inc();
    }

    /// Records the phase a custom resource reports, `phase`, where it reported `previous`
    /// before: the series of the previous phase goes. Nothing is kept per object to know it (a
    /// map of current phases held about 1.5 KiB per prism-local cluster): the status the object
    /// showed is the phase this gauge last recorded, because the driver records only phases it
    /// wrote or found unchanged.
    pub fn set_phase(&self, kind: &str, namespace: &str, name: &str, previous: Option<&str>, phase: &str) {
        if let Some(previous) = previous.filter(|&previous| previous != phase) {
            self.phase.remove(&phase_labels(kind, namespace, name, previous));
        }
        self.phase.get_or_create(&phase_labels(kind, namespace, name, phase)).set(1);
    }

    /// Removes the series of a deleted custom resource, which last reported `phase`, so that the
    /// gauge does not grow forever.
    pub fn forget(&self, kind: &str, namespace: &str, name: &str, phase: Option<&str>) {
        if let Some(phase) = phase {
            self.phase.remove(&phase_labels(kind, namespace, name, phase));
        }
    }

    /// Whether this instance currently leads (1) or stands by (0).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}

fn phase_labels(kind: &str, namespace: &str, name: &str, phase: &str) -> PhaseLabels {
    let [kind, namespace, name, phase] = [kind, namespace, name, phase].map(intern::text);
    PhaseLabels { kind, namespace, name, phase }
}

/// The phase label of `prism_cluster_phase` is lower case, as the design record queries it
/// (`prism_cluster_phase{phase="running"}`).
fn cluster_phase_labels((namespace, cluster): &ClusterKey, phase: ClusterPhase) -> ClusterPhaseLabels {
    let phase = match phase {
        ClusterPhase::Pending => "pending",
        ClusterPhase::Running => "running",
        ClusterPhase::Degraded => "degraded",
        ClusterPhase::Failed => "failed",
    };
    ClusterPhaseLabels { namespace: namespace.clone(), cluster: cluster.clone(), phase }
}

fn component_labels((namespace, cluster): &ClusterKey, component: &str) -> ComponentLabels {
    ComponentLabels { namespace: namespace.clone(), cluster: cluster.clone(), component: intern::text(component) }
}

fn pattern_labels((namespace, cluster): &ClusterKey, pattern: &str) -> PatternLabels {
    PatternLabels { namespace: namespace.clone(), cluster: cluster.clone(), pattern: intern::text(pattern) }
}

/// `prism_operator_memory_resident_bytes`, read from /proc at each scrape (Linux; elsewhere the
/// series is absent).
#[derive(Debug)]
struct ResidentMemory;

impl Collector for ResidentMemory {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(bytes) = resident_memory_bytes() else { return Ok(()) };
        let gauge = ConstGauge::new(bytes);
        let metric = encoder.encode_descriptor(
            "prism_operator_memory_resident_bytes",
            "Resident memory of the operator process",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

/// The process's resident set size: the `VmRSS` line of /proc/self/status, in kB.
fn resident_memory_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kilobytes: i64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kilobytes * 1024)
}

/// Times one reconcile; records into `prism_operator_reconcile_duration_seconds` once, on
/// [`ReconcileTimer::finish`] or when dropped (so an early return or `?` is timed too).
#[derive(Debug)]
pub struct ReconcileTimer {
    histogram: Option<Histogram>,
    /// Counts the reconcile as running until it is recorded.
    in_flight: Gauge,
    start: Instant,
}

impl ReconcileTimer {
    pub fn finish(mut self) {
        self.record();
    }

    fn record(&mut self) {
        if let Some(histogram) = self.histogram.take() {
            histogram.observe(self.start.elapsed().as_secs_f64());
            self.in_flight.dec();
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
    fn a_page_is_written_in_pieces_that_make_the_whole() {
        let mut pieces = Pieces(vec![String::new()]);
        let line = "prism_cluster_phase{namespace=\"a\",name=\"b\",phase=\"Running\"} 1\n";
        for _ in 0..5_000 {
            fmt::Write::write_str(&mut pieces, line).unwrap();
        }
        let long = "x".repeat(PAGE_PIECE + 1);
        fmt::Write::write_str(&mut pieces, &long).unwrap();
        assert!(pieces.0.len() > 2, "{} pieces", pieces.0.len());
        assert!(pieces.0.iter().all(|p| p.len() <= PAGE_PIECE || p.as_str() == long), "no piece outgrows its size");
        assert_eq!(pieces.0.concat(), line.repeat(5_000) + &long);
    }

    #[test]
    fn names_carry_the_prefix_once() {
        let metrics = Metrics::new();
        // A family without series is left out of the text format: give each one a series.
        metrics.reconcile_started("pattern").finish();
        metrics.reconcile_failed("pattern", "kube");
        metrics.object_written("pattern", "Service", WriteAction::Created);
        metrics.set_phase("PrismPattern", "prism", "kv", None, "Running");
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
        metrics.set_phase("PrismPattern", "prism", "kv", None, "Pending");
        metrics.set_phase("PrismPattern", "prism", "kv", Some("Pending"), "Running");
        metrics.set_phase("PrismPattern", "prism", "kv", Some("Running"), "Running");
        metrics.set_phase("PrismPattern", "prism", "other", None, "Failed");
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
        metrics.set_phase("PrismPattern", "prism", "kv", None, "Running");
        metrics.set_phase("PrismCluster", "prism", "kv", None, "Running");
        metrics.forget("PrismPattern", "prism", "kv", Some("Running"));
        metrics.forget("PrismPattern", "prism", "never-seen", None);
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

    fn health(phase: ClusterPhase, components: &[(&str, bool)], patterns: &[(&str, bool)]) -> ClusterHealth {
        let owned = |list: &[(&str, bool)]| list.iter().map(|(n, r)| (n.to_string(), *r)).collect();
        ClusterHealth { phase, components: owned(components), patterns: owned(patterns) }
    }

    #[test]
    fn cluster_health_has_one_phase_series_per_phase_and_one_per_component_and_pattern() {
        let metrics = Metrics::new();
        let health = health(ClusterPhase::Pending, &[("admin", true), ("redis", false)], &[("keyvalue", false)]);
        metrics.set_cluster_health("prism", "local", &health);
        let text = metrics.encode();
        let mut phases = lines_starting(&text, "prism_cluster_phase{");
        phases.sort();
        assert_eq!(
            phases,
            [
                r#"prism_cluster_phase{namespace="prism",cluster="local",phase="degraded"} 0"#,
                r#"prism_cluster_phase{namespace="prism",cluster="local",phase="failed"} 0"#,
                r#"prism_cluster_phase{namespace="prism",cluster="local",phase="pending"} 1"#,
                r#"prism_cluster_phase{namespace="prism",cluster="local",phase="running"} 0"#,
            ]
        );
        assert!(
            text.contains(
                "prism_cluster_components_ready{namespace=\"prism\",cluster=\"local\",component=\"redis\"} 0\n"
            )
        );
        assert!(
            text.contains(
                "prism_cluster_patterns_ready{namespace=\"prism\",cluster=\"local\",pattern=\"keyvalue\"} 0\n"
            )
        );
    }

    #[test]
    fn a_component_that_goes_away_loses_its_series_and_a_forgotten_cluster_loses_all() {
        let metrics = Metrics::new();
        metrics.set_cluster_health("prism", "a", &health(ClusterPhase::Running, &[("nats", true)], &[("kv", true)]));
        metrics.set_cluster_health("prism", "b", &health(ClusterPhase::Running, &[("admin", true)], &[]));
        metrics.set_cluster_health("prism", "a", &health(ClusterPhase::Running, &[("admin", true)], &[]));
        let text = metrics.encode();
        assert!(!text.contains("nats"), "{text}");
        assert!(lines_starting(&text, "prism_cluster_patterns_ready{").is_empty(), "{text}");
        metrics.forget_cluster("prism", "a");
        let text = metrics.encode();
        assert!(!text.contains("cluster=\"a\""), "{text}");
        assert_eq!(lines_starting(&text, "prism_cluster_phase{").len(), 4, "b keeps its series: {text}");
    }

    #[test]
    fn successes_in_flight_backoffs_and_requests_are_counted() {
        let metrics = Metrics::new();
        let timer = metrics.reconcile_started("pattern");
        assert!(metrics.encode().contains("prism_operator_reconciles_in_flight{controller=\"pattern\"} 1\n"));
        timer.finish();
        metrics.reconcile_succeeded("pattern");
        metrics.set_backing_off("pattern", 2);
        metrics.set_queue_depth("pattern", 3);
        metrics.queue_waited("pattern", Duration::from_millis(20));
        metrics.kube_request("watch", "200");
        metrics.kube_request("patch", "error");
        let text = metrics.encode();
        for line in [
            "prism_operator_reconciles_in_flight{controller=\"pattern\"} 0\n",
            "prism_operator_reconcile_success_total{controller=\"pattern\"} 1\n",
            "prism_operator_objects_backing_off{controller=\"pattern\"} 2\n",
            "prism_operator_work_queue_depth{controller=\"pattern\"} 3\n",
            "prism_operator_work_queue_wait_seconds_count{controller=\"pattern\"} 1\n",
            "prism_operator_kube_requests_total{verb=\"watch\",code=\"200\"} 1\n",
            "prism_operator_kube_requests_total{verb=\"patch\",code=\"error\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn memory_is_reported_with_its_limit() {
        let metrics = Metrics::new();
        metrics.set_memory_limit(256 << 20);
        let text = metrics.encode();
        assert!(text.contains("\nprism_operator_memory_limit_bytes 268435456\n"), "{text}");
        let resident = lines_starting(&text, "prism_operator_memory_resident_bytes ");
        assert_eq!(resident.len(), 1, "{text}");
        let bytes: i64 = resident[0].rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number");
        assert!(bytes > 1 << 20, "{bytes}");
    }
}
