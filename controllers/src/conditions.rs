//! metav1.Condition bookkeeping: a condition's lastTransitionTime changes only when its status
//! flips, so that recomputing an unchanged status yields an equal value (and no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use prism_api::v1beta1::PrismClusterStatus;
use prism_api::v1beta1::PrismNamespaceStatus;
use prism_api::v1beta1::PrismPatternStatus;
use serde::Serialize;

/// The status of a custom resource, as the reconcile driver writes it.
pub trait ObjectStatus: Clone + PartialEq + Serialize + Send + Sync {
    /// The phase, for the phase metric.
    fn phase(&self) -> Option<String>;
    fn observed_generation(&self) -> Option<i64>;
    fn conditions(&self) -> &[Condition];
}

/// What a pass observed, from which its object's status is computed.
pub trait IntoStatus: Send {
    type Status;

    /// The status these observations make of the `previous` one, for an object of `generation`
    /// (pure: `now` is only the time of any condition that changes).
    fn into_status(self, previous: Option<&Self::Status>, generation: Option<i64>, now: &Time) -> Self::Status;
}

/// The three kinds' statuses share their shape: a phase and metav1 conditions.
macro_rules! object_status {
    ($($status:ty),*) => {$(
        impl ObjectStatus for $status {
            fn phase(&self) -> Option<String> {
                self.phase.map(|phase| format!("{phase:?}"))
            }

            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }

            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
        }
    )*};
}

object_status!(PrismClusterStatus, PrismNamespaceStatus, PrismPatternStatus);

/// Why a custom resource cannot be realised, with what to fix: its SpecValid condition.
/// `reason` is the condition's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
    /// Whether the problem may resolve by itself (a cluster not created yet) rather than needing a
    /// change of spec: decides Pending versus Failed.
    pub transient: bool,
}

impl Problem {
    /// A problem only a change of spec can solve.
    pub fn spec(reason: &'static str, message: String) -> Self {
        Problem { reason, message, transient: false }
    }
}

/// A condition as a reconcile computes it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Observed {
    pub fn new(type_: &'static str, status: bool, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Observed { type_, status, reason: reason.into(), message: message.into() }
    }
}

/// The new conditions: each observed one, keeping the previous lastTransitionTime when its status
/// did not change; conditions of other types are dropped (the set is computed whole each time).
pub fn merge(previous: &[Condition], observed: Vec<Observed>, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    observed
        .into_iter()
        .map(|o| {
            let status = if o.status { "True" } else { "False" }.to_string();
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == o.type_ && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: o.type_.to_string(),
                status,
                reason: o.reason,
                message: o.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("time"))
    }

    #[test]
    fn transition_time_moves_only_on_a_flip() {
        let first = merge(&[], vec![Observed::new("Ready", false, "Pending", "")], Some(1), &at(10));
        let same = merge(&first, vec![Observed::new("Ready", false, "Pending", "still")], Some(2), &at(20));
        assert_eq!(same[0].last_transition_time, at(10));
        let flipped = merge(&same, vec![Observed::new("Ready", true, "Running", "")], Some(2), &at(30));
        assert_eq!(flipped[0].last_transition_time, at(30));
    }
}
