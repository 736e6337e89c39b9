//! The status of a PrismNamespace, computed from the observed status of the runners serving it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use prism_api::names::conditions as types;
use prism_api::v1beta1::{Connection, NamespacePhase, PrismNamespaceStatus, ResolvedPattern};
use prism_api::v1beta1::{PatternPhase, PrismPattern};

use super::validate::ValidatedNamespace;
use crate::conditions::{self, IntoStatus, Observed, Problem};
use crate::tenancy::Verdict;

/// Everything a status is computed from.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Why the spec cannot be realised, if it cannot.
    pub problem: Option<Problem>,
    /// What the cluster made of the namespace (once the spec is valid): served, not accepted or
    /// conflicted.
    pub verdict: Option<Verdict>,
    /// Where its clients connect, once served.
    pub connection: Option<Connection>,
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
        let mut observed_conditions = vec![ready, spec_valid, paused];
        observed_conditions.extend(observed.verdict.as_ref().map(tenancy_conditions).into_iter().flatten());
        let previous_conditions = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
        PrismNamespaceStatus {
            phase: Some(phase),
            observed_generation: generation,
            patterns: observed.patterns,
            conditions: conditions::merge(previous_conditions, observed_conditions, generation, now),
            connection: observed.connection,
        }
    }
}

/// Accepted, Conflicted and QuotaClamped, from what the cluster made of the namespace.
fn tenancy_conditions(verdict: &Verdict) -> [Observed; 3] {
    let accepted = match verdict {
        Verdict::NotAccepted(p) => Observed::new(types::ACCEPTED, false, p.reason, p.message.clone()),
        _ => Observed::new(types::ACCEPTED, true, "Accepted", "the PrismCluster admits this namespace"),
    };
    let conflicted = match verdict {
        Verdict::Conflicted(p) => Observed::new(types::CONFLICTED, true, p.reason, p.message.clone()),
        _ => Observed::new(types::CONFLICTED, false, "NoConflict", ""),
    };
    let clamped = match verdict.served().map(|s| s.clamped.as_slice()).unwrap_or_default() {
        [] => Observed::new(types::QUOTA_CLAMPED, false, "WithinLimits", ""),
        lowered => Observed::new(
            types::QUOTA_CLAMPED,
            true,
            "AboveClusterLimits",
            format!("the proxy enforces the cluster's limits (spec.tenancy.limits) instead: {}", lowered.join(", ")),
        ),
    };
    [accepted, conflicted, clamped]
}

fn phase(previous: Option<NamespacePhase>, observed: &Observations) -> (NamespacePhase, &'static str, String) {
    let refusal = match &observed.verdict {
        Some(Verdict::NotAccepted(problem) | Verdict::Conflicted(problem)) => Some(problem),
        _ => None,
    };
    if let Some(problem) = observed.problem.as_ref().or(refusal) {
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
        Observations { patterns: patterns(ready), ..Observations::default() }
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
    fn refusals_set_their_condition_and_keep_the_namespace_from_ready() {
        let refused = |verdict: Verdict| {
            let mut observed = observations(&[]);
            observed.verdict = Some(verdict);
            observed.into_status(None, Some(1), &now())
        };
        let problem = |reason, transient| Problem { reason, message: "why".into(), transient };
        let not_allowed = refused(Verdict::NotAccepted(problem("NamespaceNotAllowed", false)));
        assert_eq!(not_allowed.phase, Some(NamespacePhase::Failed));
        assert_eq!(condition(&not_allowed, "Accepted"), ("False", "NamespaceNotAllowed", "why"));
        assert_eq!(condition(&not_allowed, "Ready"), ("False", "NamespaceNotAllowed", "why"));
        let conflicted = refused(Verdict::Conflicted(problem("NameInUse", true)));
        assert_eq!(conflicted.phase, Some(NamespacePhase::Pending), "served once the holder goes");
        assert_eq!(condition(&conflicted, "Conflicted"), ("True", "NameInUse", "why"));
        assert_eq!(condition(&conflicted, "Accepted").0, "True");
        let clamped = refused(Verdict::Served(crate::tenancy::Served {
            quota: None,
            clamped: vec!["spec.quota.maxSessions 5 to 1".into()],
        }));
        assert_eq!(clamped.phase, Some(NamespacePhase::Ready), "clamped, yet served");
        let (status, reason, message) = condition(&clamped, "QuotaClamped");
        assert_eq!((status, reason), ("True", "AboveClusterLimits"));
        assert!(message.ends_with("spec.quota.maxSessions 5 to 1"), "{message}");
        assert!(observations(&[]).into_status(None, Some(1), &now()).conditions.iter().all(|c| c.type_ != "Accepted"));
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
