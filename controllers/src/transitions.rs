//! What a status change means to people: the Events and the log lines a transition deserves.
//! Pure: the driver decides with this and announces.
//!
//! Events mark transitions, not work: a custom resource becoming ready, failing or degrading, and
//! its spec becoming invalid; every child written is a log line, not an Event. A custom resource
//! another Prism resource controls (a cluster's patterns and namespaces, a namespace's runners)
//! reports its good news in its status only: its parent's Event covers it. Its bad news is still
//! announced, on itself, where `kubectl describe` shows it.

use kube::runtime::events::EventType;
use prism_api::names::conditions;

use crate::conditions::ObjectStatus;

/// An Event to publish on the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub type_: EventType,
    pub reason: String,
    pub note: String,
}

/// What a phase says of an object's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Health {
    Ready,
    Unhealthy,
    /// On its way (Pending, Progressing): no Event.
    Transient,
}

fn health(phase: &str) -> Health {
    match phase {
        "Running" | "Ready" => Health::Ready,
        "Degraded" | "Failed" => Health::Unhealthy,
        _ => Health::Transient,
    }
}

/// The new phase, if the status change moved it.
pub fn new_phase<S: ObjectStatus>(before: Option<&S>, after: &S) -> Option<String> {
    let phase = after.phase()?;
    (before.and_then(ObjectStatus::phase).as_ref() != Some(&phase)).then_some(phase)
}

/// The Event a status change deserves, if any. `kind` and `name` name the object in the note;
/// `controlled` says whether another Prism resource controls it.
pub fn announcement<S: ObjectStatus>(
    kind: &str,
    name: &str,
    before: Option<&S>,
    after: &S,
    controlled: bool,
) -> Option<Announcement> {
    if let Some(invalid) = newly_invalid(before, after) {
        return Some(invalid);
    }
    let phase = new_phase(before, after)?;
    let ready = condition_message(after, conditions::READY);
    let note = if ready.is_empty() {
        format!("{kind} {name} is {phase}")
    } else {
        format!("{kind} {name} is {phase}: {ready}")
    };
    let type_ = match health(&phase) {
        Health::Ready if !controlled => EventType::Normal,
        Health::Unhealthy => EventType::Warning,
        Health::Ready | Health::Transient => return None,
    };
    Some(Announcement { type_, reason: phase, note })
}

/// A Warning when the spec became invalid, or invalid for another reason than before.
fn newly_invalid<S: ObjectStatus>(before: Option<&S>, after: &S) -> Option<Announcement> {
    let invalid = |status: &S| {
        status.conditions().iter().find(|c| c.type_ == conditions::SPEC_VALID && c.status == "False").cloned()
    };
    let now = invalid(after)?;
    let was = before.and_then(invalid);
    let same = was.is_some_and(|was| was.reason == now.reason && was.message == now.message);
    (!same).then_some(Announcement { type_: EventType::Warning, reason: now.reason, note: now.message })
}

fn condition_message<S: ObjectStatus>(status: &S, type_: &str) -> String {
    status.conditions().iter().find(|c| c.type_ == type_).map(|c| c.message.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use prism_api::v1beta1::{ClusterPhase, PrismClusterStatus};

    use super::*;

    fn status(phase: ClusterPhase, conditions: &[(&str, &str, &str, &str)]) -> PrismClusterStatus {
        PrismClusterStatus {
            phase: Some(phase),
            conditions: conditions
                .iter()
                .map(|(type_, status, reason, message)| Condition {
                    type_: (*type_).into(),
                    status: (*status).into(),
                    reason: (*reason).into(),
                    message: (*message).into(),
                    observed_generation: None,
                    last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                })
                .collect(),
            ..PrismClusterStatus::default()
        }
    }

    #[test]
    fn becoming_ready_is_announced_once_and_being_on_the_way_is_not() {
        let pending = status(ClusterPhase::Pending, &[("Ready", "False", "ComponentsNotReady", "")]);
        let running = status(ClusterPhase::Running, &[("Ready", "True", "AllComponentsReady", "9/9 ready")]);
        assert_eq!(announcement("PrismCluster", "c", None, &pending, false), None, "created: Pending is no news");
        let ready = announcement("PrismCluster", "c", Some(&pending), &running, false).expect("announced");
        assert_eq!((ready.type_, ready.reason.as_str()), (EventType::Normal, "Running"));
        assert_eq!(ready.note, "PrismCluster c is Running: 9/9 ready");
        assert_eq!(announcement("PrismCluster", "c", Some(&running), &running, false), None, "no change, no Event");
        assert_eq!(new_phase(Some(&pending), &running).as_deref(), Some("Running"));
        assert_eq!(new_phase(Some(&running), &running), None);
    }

    #[test]
    fn a_controlled_child_announces_trouble_but_not_readiness() {
        let pending = status(ClusterPhase::Pending, &[]);
        let running = status(ClusterPhase::Running, &[]);
        let degraded = status(ClusterPhase::Degraded, &[("Ready", "False", "ComponentsNotReady", "proxy 1/2")]);
        assert_eq!(announcement("PrismPattern", "p", Some(&pending), &running, true), None);
        let warning = announcement("PrismPattern", "p", Some(&running), &degraded, true).expect("announced");
        assert_eq!((warning.type_, warning.reason.as_str()), (EventType::Warning, "Degraded"));
    }

    #[test]
    fn an_invalid_spec_is_announced_when_it_becomes_so_or_its_reason_changes() {
        let valid = status(ClusterPhase::Running, &[("SpecValid", "True", "Valid", "")]);
        let bad = status(ClusterPhase::Failed, &[("SpecValid", "False", "PatternNotFound", "spec.patterns[0]")]);
        let worse = status(ClusterPhase::Failed, &[("SpecValid", "False", "BackendNotEnabled", "spec.backends")]);
        let first = announcement("PrismCluster", "c", Some(&valid), &bad, true).expect("announced");
        assert_eq!(
            (first.type_, first.reason.as_str(), first.note.as_str()),
            (EventType::Warning, "PatternNotFound", "spec.patterns[0]")
        );
        assert_eq!(announcement("PrismCluster", "c", Some(&bad), &bad, false), None, "still the same problem");
        assert_eq!(
            announcement("PrismCluster", "c", Some(&bad), &worse, false).map(|a| a.reason),
            Some("BackendNotEnabled".into())
        );
    }
}
