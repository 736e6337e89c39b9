//! The status of a PrismPattern, computed from what was observed (never from what was wished).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use prism_api::names::conditions as types;
use prism_api::v1beta1::{PatternPhase, PrismPatternStatus};

use crate::conditions::{self, IntoStatus, Observed, Problem};
pub use crate::workload::WorkloadView;

/// Everything a status is computed from.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Why the spec cannot be realised, if it cannot.
    pub problem: Option<Problem>,
    /// Backends not ready yet, each with why.
    pub waiting_for: Vec<String>,
    /// The runner's workload, if it exists.
    pub workload: Option<WorkloadView>,
    /// Why autoscaling cannot be honoured (e.g. KEDA not installed).
    pub autoscaling_problem: Option<(&'static str, String)>,
    pub selector: String,
}

impl IntoStatus for Observations {
    type Status = PrismPatternStatus;

    /// The status for `observed`, carrying over transition times from `previous`.
    fn into_status(self, previous: Option<&Self::Status>, generation: Option<i64>, now: &Time) -> Self::Status {
        let observed = self;
        let previous_phase = previous.and_then(|s| s.phase);
        let (phase, reason, message) = phase(previous_phase, &observed);
        let mut conditions = vec![Observed::new(types::READY, phase == PatternPhase::Running, reason, message.clone())];
        conditions.push(match &observed.problem {
            Some(problem) => Observed::new(types::SPEC_VALID, false, problem.reason, problem.message.clone()),
            None => Observed::new(types::SPEC_VALID, true, "Valid", ""),
        });
        conditions.push(if observed.waiting_for.is_empty() {
            Observed::new(types::BACKENDS_READY, true, "BackendsReady", "")
        } else {
            Observed::new(types::BACKENDS_READY, false, "BackendNotReady", observed.waiting_for.join("; "))
        });
        let progressing = phase == PatternPhase::Progressing;
        conditions.push(Observed::new(
            types::PROGRESSING,
            progressing,
            if progressing { "RollingOut" } else { reason },
            if progressing { message } else { String::new() },
        ));
        if let Some((reason, message)) = &observed.autoscaling_problem {
            conditions.push(Observed::new(types::AUTOSCALING, false, *reason, message.clone()));
        }
        let previous_conditions = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
        let workload = observed.workload.unwrap_or_default();
        PrismPatternStatus {
            phase: Some(phase),
            replicas: workload.replicas,
            available_replicas: workload.available,
            selector: Some(observed.selector),
            observed_generation: generation,
            conditions: conditions::merge(previous_conditions, conditions, generation, now),
        }
    }
}

fn phase(previous: Option<PatternPhase>, observed: &Observations) -> (PatternPhase, &'static str, String) {
    if let Some(problem) = &observed.problem {
        let phase = if problem.transient { PatternPhase::Pending } else { PatternPhase::Failed };
        return (phase, problem.reason, problem.message.clone());
    }
    let Some(workload) = &observed.workload else {
        let message = format!("waiting for backends: {}", observed.waiting_for.join("; "));
        return (PatternPhase::Pending, "WaitingForBackends", message);
    };
    let counts = format!("{}/{} replicas available", workload.available, workload.desired);
    if workload.rolled_out() {
        return (PatternPhase::Running, "Running", counts);
    }
    if workload.stalled {
        return (PatternPhase::Degraded, "ProgressDeadlineExceeded", counts);
    }
    let was_serving = matches!(previous, Some(PatternPhase::Running | PatternPhase::Degraded));
    if was_serving && workload.observed_current && workload.updated >= workload.desired {
        // The spec is rolled out but replicas went away: that is a fault, not progress.
        return (PatternPhase::Degraded, "ReplicasUnavailable", counts);
    }
    (PatternPhase::Progressing, "RollingOut", counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_000).expect("time"))
    }

    fn workload(available: i32) -> WorkloadView {
        WorkloadView { desired: 2, replicas: 2, updated: 2, available, observed_current: true, stalled: false }
    }

    fn observations(workload: Option<WorkloadView>) -> Observations {
        Observations { workload, selector: "a=b".into(), ..Observations::default() }
    }

    #[test]
    fn a_runner_waiting_for_a_backend_is_pending_with_a_reason_naming_it() {
        let mut observed = observations(None);
        observed.waiting_for = vec!["redis: 0/1 replicas ready".into()];
        let status = observed.into_status(None, Some(1), &now());
        assert_eq!(status.phase, Some(PatternPhase::Pending));
        let backends = status.conditions.iter().find(|c| c.type_ == "BackendsReady").expect("condition");
        assert_eq!((backends.status.as_str(), backends.reason.as_str()), ("False", "BackendNotReady"));
        assert!(backends.message.contains("redis"));
    }

    #[test]
    fn phases_follow_observed_readiness() {
        let progressing = observations(Some(workload(1))).into_status(None, Some(1), &now());
        assert_eq!(progressing.phase, Some(PatternPhase::Progressing));
        let running = observations(Some(workload(2))).into_status(Some(&progressing), Some(1), &now());
        assert_eq!(running.phase, Some(PatternPhase::Running));
        assert!(running.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let degraded = observations(Some(workload(1))).into_status(Some(&running), Some(1), &now());
        assert_eq!(degraded.phase, Some(PatternPhase::Degraded));
    }

    #[test]
    fn recomputing_an_unchanged_status_gives_an_equal_value() {
        let first = observations(Some(workload(2))).into_status(None, Some(3), &now());
        let later = Time(k8s_openapi::jiff::Timestamp::from_second(9_000).expect("time"));
        let again = observations(Some(workload(2))).into_status(Some(&first), Some(3), &later);
        assert_eq!(first, again);
    }

    #[test]
    fn an_invalid_spec_fails_and_a_missing_cluster_waits() {
        let mut observed = observations(None);
        observed.problem = Some(Problem { reason: "BackendNotSupported", message: "m".into(), transient: false });
        assert_eq!(observed.clone().into_status(None, Some(1), &now()).phase, Some(PatternPhase::Failed));
        observed.problem = Some(Problem { reason: "ClusterNotFound", message: "m".into(), transient: true });
        assert_eq!(observed.into_status(None, Some(1), &now()).phase, Some(PatternPhase::Pending));
    }
}
