//! The readiness of a workload (Deployment or StatefulSet), read from its status: the one view
//! every status aggregator of the operator works from.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};

/// The readiness of a workload, read from its status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadView {
    pub desired: i32,
    pub replicas: i32,
    pub updated: i32,
    pub available: i32,
    /// The workload controller has seen the latest spec.
    pub observed_current: bool,
    /// The rollout gave up (Deployment's ProgressDeadlineExceeded).
    pub stalled: bool,
}

impl WorkloadView {
    pub fn of_deployment(deployment: &Deployment) -> Self {
        let spec_replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = deployment.status.clone().unwrap_or_default();
        let stalled = status.conditions.iter().flatten().any(|c| {
            c.type_ == "Progressing" && c.status == "False" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        WorkloadView {
            desired: spec_replicas,
            replicas: status.replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            observed_current: status.observed_generation >= deployment.metadata.generation,
            stalled,
        }
    }

    pub fn of_stateful_set(set: &StatefulSet) -> Self {
        let spec_replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = set.status.clone().unwrap_or_default();
        WorkloadView {
            desired: spec_replicas,
            replicas: status.replicas,
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            observed_current: status.observed_generation >= set.metadata.generation,
            stalled: false,
        }
    }

    /// The view of `object` if it is a workload (a Deployment or a StatefulSet).
    pub fn of_any(object: &dyn std::any::Any) -> Option<Self> {
        if let Some(deployment) = object.downcast_ref::<Deployment>() {
            return Some(Self::of_deployment(deployment));
        }
        object.downcast_ref::<StatefulSet>().map(Self::of_stateful_set)
    }

    /// The rollout is complete as `kubectl rollout status` judges it: every replica updated and
    /// available, and no pod of an older template left (during a surge, old and new pods
    /// together can be as many as desired and available before the rollout has finished).
    pub fn rolled_out(&self) -> bool {
        self.observed_current
            && self.updated >= self.desired
            && self.replicas <= self.updated
            && self.available >= self.desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_with_old_pods_left_is_not_rolled_out() {
        let done =
            WorkloadView { desired: 2, replicas: 2, updated: 2, available: 2, observed_current: true, stalled: false };
        assert!(done.rolled_out());
        // Surge: both new pods exist, one ready, beside an old ready pod that has not gone yet.
        let surging = WorkloadView { replicas: 3, ..done.clone() };
        assert!(!surging.rolled_out());
        assert!(!WorkloadView { updated: 1, ..done.clone() }.rolled_out());
        assert!(!WorkloadView { observed_current: false, ..done }.rolled_out());
    }
}
