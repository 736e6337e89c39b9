//! The status of a PrismNamespace, computed from the observed status of the runners serving it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use prism_api::names::conditions as types;
use prism_api::v1beta1::{NamespacePhase, PrismNamespaceStatus, ResolvedPattern};
use prism_api::v1beta1::{PatternPhase, PrismPattern};

use super::validate::ValidatedNamespace;
use crate::conditions::{self, IntoStatus, Observed, Problem};

/// Everything a status is computed from.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Why the spec cannot be realised, if it cannot.
    pub problem: Option<Problem>,
    /// Each pattern of the spec, with whether its runner was observed Running.
    pub patterns: Vec<ResolvedPattern>,
    /// The cluster is paused: runners were observed, not written.
    pub paused: bool,
}

/// Whether a runner serves: its own controller says Running.
pub fn runner_ready(runner: Option<&PrismPattern>) -> bool {
    runner.and_then(|r| r.status.as_ref()).and_then(|s| s.phase) == Some(PatternPhase::Running)
}

/// The resolved patterns of `valid`, each ready as `ready(runner name)` says.
pub fn resolve(valid: &ValidatedNamespace, ready: impl Fn(&str) -> bool) -> Vec<ResolvedPattern> {
    valid
        .patterns
        .iter()
        .map(|p| ResolvedPattern {
            name: p.entry.name.clone(),
            runner: p.runner.clone(),
            dedicated: p.dedicated,
            ready: ready(&p.runner),
        })
        .collect()
}

impl IntoStatus for Observations {
    type Status = PrismNamespaceStatus;

    /// The status for `observed`, carrying over transition times from `previous`.
    fn into_status(self, previous: Option<&Self::Status>, generation: Option<i64>, now: &Time) -> Self::Status {
        let observed = self;
        let (phase, reason, message) = phase(previous.and_then(|s| s.phase), &observed);
        let spec_valid = match &observed.problem {
            Some(problem) => Observed::new(types::SPEC_VALID, false, problem.reason, problem.message.clone()),
            None => Observed::new(types::SPEC_VALID, true, "Valid", ""),
        };
        let ready = Observed::new(types::READY, phase == NamespacePhase::Ready, reason, message);
        let paused = if observed.paused {
            Observed::new(types::PAUSED, true, "ClusterPaused", "the PrismCluster is paused: runners are not written")
        } else {
            Observed::new(types::PAUSED, false, "NotPaused", "")
        };
        let previous_conditions = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
        PrismNamespaceStatus {
            phase: Some(phase),
            observed_generation: generation,
            patterns: observed.patterns,
            conditions: conditions::merge(previous_conditions, vec![ready, spec_valid, paused], generation, now),
            connection: None,
        }
    }
}

fn phase(previous: Option<NamespacePhase>, observed: &Observations) -> (NamespacePhase, &'static str, String) {
    if let Some(problem) = &observed.problem {
        let phase = if problem.transient { NamespacePhase::Pending } else { NamespacePhase::Failed };
        return (phase, problem.reason, problem.message.clone());
    }
    let waiting: Vec<&str> = observed.patterns.iter().filter(|p| !p.ready).map(|p| p.runner.as_str()).collect();
    if waiting.is_empty() {
        let message = format!("{} pattern runners ready", observed.patterns.len());
        return (NamespacePhase::Ready, "Ready", message);
    }
    let message = format!("runners not ready: {}", waiting.join(", "));
    if matches!(previous, Some(NamespacePhase::Ready | NamespacePhase::Degraded)) {
        // It served before: a runner going away is a fault, not start-up.
        return (NamespacePhase::Degraded, "RunnerUnavailable", message);
    }
    (NamespacePhase::Pending, "RunnersNotReady", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_000).expect("time"))
    }

    fn patterns(ready: &[bool]) -> Vec<ResolvedPattern> {
        ready
            .iter()
            .enumerate()
            .map(|(i, &ready)| ResolvedPattern {
                name: format!("p{i}"),
                runner: format!("orders-p{i}"),
                dedicated: true,
                ready,
            })
            .collect()
    }

    fn observations(ready: &[bool]) -> Observations {
        Observations { problem: None, patterns: patterns(ready), paused: false }
    }

    fn condition<'a>(status: &'a PrismNamespaceStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).expect("condition");
        (c.status.as_str(), c.reason.as_str(), c.message.as_str())
    }

    #[test]
    fn ready_when_every_runner_is_and_degraded_when_one_goes() {
        let pending = observations(&[true, false]).into_status(None, Some(1), &now());
        assert_eq!(pending.phase, Some(NamespacePhase::Pending));
        let (status, reason, message) = condition(&pending, "Ready");
        assert_eq!((status, reason), ("False", "RunnersNotReady"));
        assert!(message.contains("orders-p1") && !message.contains("orders-p0"), "{message}");
        let ready = observations(&[true, true]).into_status(Some(&pending), Some(1), &now());
        assert_eq!(ready.phase, Some(NamespacePhase::Ready));
        assert_eq!(condition(&ready, "Ready").0, "True");
        let degraded = observations(&[false, true]).into_status(Some(&ready), Some(1), &now());
        assert_eq!(degraded.phase, Some(NamespacePhase::Degraded));
        assert_eq!(condition(&degraded, "Ready").1, "RunnerUnavailable");
    }

    #[test]
    fn a_paused_cluster_is_reported_and_readiness_still_observed() {
        let mut observed = observations(&[true]);
        observed.paused = true;
        let status = observed.into_status(None, Some(1), &now());
        assert_eq!(
            condition(&status, "Paused"),
            ("True", "ClusterPaused", "the PrismCluster is paused: runners are not written")
        );
        assert_eq!(status.phase, Some(NamespacePhase::Ready));
    }

    #[test]
    fn a_namespace_without_patterns_is_ready() {
        assert_eq!(observations(&[]).into_status(None, Some(1), &now()).phase, Some(NamespacePhase::Ready));
    }

    #[test]
    fn problems_set_spec_valid_false_with_their_reason() {
        let mut observed = observations(&[]);
        observed.problem = Some(Problem { reason: "PatternNotFound", message: "\"mailbox\"".into(), transient: false });
        let failed = observed.clone().into_status(None, Some(2), &now());
        assert_eq!(failed.phase, Some(NamespacePhase::Failed));
        assert_eq!(condition(&failed, "SpecValid"), ("False", "PatternNotFound", "\"mailbox\""));
        assert_eq!(condition(&failed, "Ready").1, "PatternNotFound");
        observed.problem = Some(Problem { reason: "ClusterNotFound", message: "m".into(), transient: true });
        assert_eq!(observed.into_status(None, Some(2), &now()).phase, Some(NamespacePhase::Pending));
    }

    #[test]
    fn recomputing_an_unchanged_status_gives_an_equal_value() {
        let first = observations(&[true]).into_status(None, Some(3), &now());
        let later = Time(k8s_openapi::jiff::Timestamp::from_second(9_000).expect("time"));
        assert_eq!(first, observations(&[true]).into_status(Some(&first), Some(3), &later));
    }

    #[test]
    fn only_running_runners_are_ready() {
        let mut runner = PrismPattern::default();
        assert!(!runner_ready(None));
        assert!(!runner_ready(Some(&runner)));
        runner.status = Some(prism_api::v1beta1::PrismPatternStatus {
            phase: Some(PatternPhase::Progressing),
            ..Default::default()
        });
        assert!(!runner_ready(Some(&runner)));
        runner.status.as_mut().expect("status").phase = Some(PatternPhase::Running);
        assert!(runner_ready(Some(&runner)));
    }
}
