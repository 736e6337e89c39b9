//! The status of a PrismCluster, aggregated from its observed children by one aggregator for all
//! components.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use prism_api::names::conditions as types;
use prism_api::v1beta1::{ClusterPhase, ComponentStatus, NamespaceSummary, PrismClusterStatus};
use prism_api::v1beta1::{PatternPhase, PrismPatternStatus};

use super::validate::Invalid;
use crate::conditions::{self, IntoStatus, Observed};
use crate::metrics::ClusterHealth;
use crate::workload::WorkloadView;

/// Everything the status is computed from.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    pub invalid: Option<Invalid>,
    pub paused: bool,
    pub admin: Option<WorkloadView>,
    pub proxy: Option<WorkloadView>,
    /// Each enabled backend by name, with its StatefulSet if it exists.
    pub backends: Vec<(String, Option<WorkloadView>)>,
    /// Each child PrismPattern by name, with its status if it exists.
    pub patterns: Vec<(String, Option<PrismPatternStatus>)>,
    pub namespaces: Vec<NamespaceSummary>,
    /// What of the observability spec cannot be honoured: (reason, message).
    pub observability: Vec<(&'static str, String)>,
}

/// One component's health from its workload.
pub fn component(name: &str, view: Option<&WorkloadView>) -> ComponentStatus {
    match view {
        None => {
            ComponentStatus { name: name.into(), message: Some("not created yet".into()), ..ComponentStatus::default() }
        }
        Some(v) => ComponentStatus {
            name: name.into(),
            ready: v.rolled_out() && v.desired > 0,
            replicas: v.replicas,
            available_replicas: v.available,
            message: (!v.rolled_out()).then(|| format!("{}/{} replicas available", v.available, v.desired)),
        },
    }
}

/// One runner's health from its PrismPattern's status.
fn pattern(name: &str, status: Option<&PrismPatternStatus>) -> ComponentStatus {
    let phase = status.and_then(|s| s.phase);
    ComponentStatus {
        name: name.into(),
        ready: phase == Some(PatternPhase::Running),
        replicas: status.map_or(0, |s| s.replicas),
        available_replicas: status.map_or(0, |s| s.available_replicas),
        message: match phase {
            Some(PatternPhase::Running) => None,
            Some(other) => Some(format!("{other:?}")),
            None => Some("not reconciled yet".into()),
        },
    }
}

impl IntoStatus for Observations {
    type Status = PrismClusterStatus;

    /// The status for `observed`; `lastReconciled` moves only when something else changed.
    fn into_status(self, previous: Option<&Self::Status>, generation: Option<i64>, now: &Time) -> Self::Status {
        let observed = self;
        let admin = component("admin", observed.admin.as_ref());
        let proxy = component("proxy", observed.proxy.as_ref());
        let backends: Vec<ComponentStatus> = observed.backends.iter().map(|(n, v)| component(n, v.as_ref())).collect();
        let patterns: Vec<ComponentStatus> = observed.patterns.iter().map(|(n, s)| pattern(n, s.as_ref())).collect();
        let all: Vec<&ComponentStatus> = [&admin, &proxy].into_iter().chain(&backends).chain(&patterns).collect();
        let ready = all.iter().filter(|c| c.ready).count();
        let patterns_ready = patterns.iter().filter(|c| c.ready).count();
        let all_ready = ready == all.len();
        let previous_phase = previous.and_then(|s| s.phase);
        let phase = phase(previous_phase, &observed, all_ready);
        let conditions = conditions_for(&observed, all_ready, &admin, &proxy, &backends, &patterns);
        let previous_conditions = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
        let mut status = PrismClusterStatus {
            phase: Some(phase),
            ready_components: Some(format!("{ready}/{}", all.len())),
            ready_patterns: Some(format!("{patterns_ready}/{}", patterns.len())),
            observed_generation: generation,
            last_reconciled: previous.and_then(|s| s.last_reconciled.clone()),
            conditions: conditions::merge(previous_conditions, conditions, generation, now),
            admin_status: Some(admin),
            proxy_status: Some(proxy),
            pattern_status: patterns,
            backend_status: backends,
            namespace_status: observed.namespaces,
        };
        if previous != Some(&status) {
            status.last_reconciled = Some(now.clone());
        }
        status
    }
}

/// What the `prism_cluster_*` metrics show of a status: its phase, admin, proxy and each
/// backend, and each pattern runner (none before the first phase).
pub fn health(status: &PrismClusterStatus) -> Option<ClusterHealth> {
    let ready = |c: &ComponentStatus| (c.name.clone(), c.ready);
    let components = status.admin_status.iter().chain(&status.proxy_status).chain(&status.backend_status);
    Some(ClusterHealth {
        phase: status.phase?,
        components: components.map(ready).collect(),
        patterns: status.pattern_status.iter().map(ready).collect(),
    })
}

fn phase(previous: Option<ClusterPhase>, observed: &Observations, all_ready: bool) -> ClusterPhase {
    if observed.invalid.is_some() {
        return ClusterPhase::Failed;
    }
    if observed.paused {
        // Paused keeps the phase: the cluster is not being changed, not failing.
        return previous.unwrap_or(ClusterPhase::Pending);
    }
    match (all_ready, previous) {
        (true, _) => ClusterPhase::Running,
        (false, Some(ClusterPhase::Running | ClusterPhase::Degraded)) => ClusterPhase::Degraded,
        (false, _) => ClusterPhase::Pending,
    }
}

fn group(type_: &'static str, members: &[&ComponentStatus], what: &str) -> Observed {
    let waiting: Vec<&str> = members.iter().filter(|c| !c.ready).map(|c| c.name.as_str()).collect();
    if waiting.is_empty() {
        Observed::new(type_, true, "Ready", "")
    } else {
        Observed::new(type_, false, "NotReady", format!("{what} not ready: {}", waiting.join(", ")))
    }
}

fn conditions_for(
    observed: &Observations,
    all_ready: bool,
    admin: &ComponentStatus,
    proxy: &ComponentStatus,
    backends: &[ComponentStatus],
    patterns: &[ComponentStatus],
) -> Vec<Observed> {
    let mut list = Vec::new();
    list.push(match &observed.invalid {
        Some(invalid) => Observed::new(types::READY, false, invalid.reason, invalid.message.clone()),
        None if all_ready => Observed::new(types::READY, true, "AllComponentsReady", ""),
        None => Observed::new(types::READY, false, "ComponentsNotReady", "some components are not ready yet"),
    });
    list.push(match &observed.invalid {
        Some(invalid) => Observed::new(types::SPEC_VALID, false, invalid.reason, invalid.message.clone()),
        None => Observed::new(types::SPEC_VALID, true, "Valid", ""),
    });
    list.push(group(types::BACKENDS_READY, &backends.iter().collect::<Vec<_>>(), "backends"));
    list.push(group(types::ADMIN_READY, &[admin], "admin"));
    list.push(group(types::PROXY_READY, &[proxy], "proxy"));
    list.push(group(types::PATTERNS_READY, &patterns.iter().collect::<Vec<_>>(), "patterns"));
    list.push(if observed.paused {
        Observed::new(types::PAUSED, true, "SpecPaused", "spec.paused is true: children are not written")
    } else {
        Observed::new(types::PAUSED, false, "NotPaused", "")
    });
    list.push(match observed.observability.first() {
        Some((reason, message)) => Observed::new(types::OBSERVABILITY, false, *reason, message.clone()),
        None => Observed::new(types::OBSERVABILITY, true, "Honoured", ""),
    });
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("time"))
    }

    fn ready(n: i32) -> Option<WorkloadView> {
        Some(WorkloadView { desired: n, replicas: n, updated: n, available: n, observed_current: true, stalled: false })
    }

    fn observed(admin_available: i32) -> Observations {
        let mut admin = ready(1);
        if let Some(a) = admin.as_mut() {
            a.available = admin_available;
        }
        Observations { admin, proxy: ready(2), backends: vec![("redis".into(), ready(1))], ..Observations::default() }
    }

    #[test]
    fn pending_until_first_ready_then_running_then_degraded() {
        let first = observed(0).into_status(None, Some(1), &now(1));
        assert_eq!(first.phase, Some(ClusterPhase::Pending));
        assert_eq!(first.ready_components.as_deref(), Some("2/3"));
        let running = observed(1).into_status(Some(&first), Some(1), &now(2));
        assert_eq!(running.phase, Some(ClusterPhase::Running));
        let degraded = observed(0).into_status(Some(&running), Some(1), &now(3));
        assert_eq!(degraded.phase, Some(ClusterPhase::Degraded));
        let admin = degraded.conditions.iter().find(|c| c.type_ == "AdminReady").expect("condition");
        assert_eq!((admin.status.as_str(), admin.message.as_str()), ("False", "admin not ready: admin"));
    }

    #[test]
    fn an_unchanged_status_is_equal_and_keeps_last_reconciled() {
        let first = observed(1).into_status(None, Some(1), &now(1));
        let again = observed(1).into_status(Some(&first), Some(1), &now(500));
        assert_eq!(first, again);
    }

    #[test]
    fn health_names_admin_proxy_backends_and_patterns() {
        let mut observed = observed(0);
        observed.patterns = vec![("keyvalue".into(), None)];
        let health = health(&observed.into_status(None, Some(1), &now(1))).expect("a phase");
        assert_eq!(health.phase, ClusterPhase::Pending);
        let components: Vec<(&str, bool)> = health.components.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        assert_eq!(components, [("admin", false), ("proxy", true), ("redis", true)]);
        assert_eq!(health.patterns, [("keyvalue".to_string(), false)]);
    }

    #[test]
    fn paused_keeps_the_phase_and_says_so() {
        let running = observed(1).into_status(None, Some(1), &now(1));
        let mut paused = observed(0);
        paused.paused = true;
        let status = paused.into_status(Some(&running), Some(2), &now(2));
        assert_eq!(status.phase, Some(ClusterPhase::Running));
        assert!(status.conditions.iter().any(|c| c.type_ == "Paused" && c.status == "True"));
    }
}
