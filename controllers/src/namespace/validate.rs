//! Semantic validation of a PrismNamespace against its PrismCluster: the cluster exists and
//! defines every pattern the namespace uses. Pure: the reconcile reads, this decides.

use kube::ResourceExt;
use prism_api::names::labels;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{ClusterPattern, PrismCluster};
use prism_api::v1beta1::{Isolation, PrismNamespace};

use crate::conditions::Problem;
use crate::{naming, routes};

/// A PrismNamespace whose every pattern resolves to a runner of its cluster.
#[derive(Clone, Debug)]
pub struct ValidatedNamespace {
    pub name: String,
    pub namespace: String,
    /// The PrismNamespace's uid: what ties a tenant's runners to it.
    pub uid: String,
    pub cluster: String,
    /// The cluster's Kubernetes namespace: where the runners and the proxy run.
    pub cluster_namespace: String,
    /// The cluster is in another namespace: the runners, in the cluster's, are tied to this
    /// namespace by labels (an owner reference cannot cross namespaces).
    pub tenant: bool,
    /// The cluster materialised this namespace from its spec (the platform's own): no connection
    /// details are written for it.
    pub cluster_own: bool,
    pub isolation: Isolation,
    /// The namespace's patterns in spec order, each resolved against the cluster.
    pub patterns: Vec<ValidPattern>,
    /// The cluster is paused (for manual repair): its runners, dedicated ones included, are not
    /// written.
    pub paused: bool,
}

/// One pattern of a namespace and the runner that serves it.
#[derive(Clone, Debug)]
pub struct ValidPattern {
    /// The cluster's `spec.patterns[]` entry of that name.
    pub entry: ClusterPattern,
    /// The PrismPattern serving it for this namespace.
    pub runner: String,
    /// Whether that runner is this namespace's own (isolation `namespace`).
    pub dedicated: bool,
}

impl ValidatedNamespace {
    /// The dedicated runners this namespace wants.
    pub fn dedicated(&self) -> impl Iterator<Item = &ValidPattern> {
        self.patterns.iter().filter(|p| p.dedicated)
    }
}

/// Checks `namespace` against its cluster (`None` when the named PrismCluster does not exist).
pub fn validate(namespace: &PrismNamespace, cluster: Option<&PrismCluster>) -> Result<ValidatedNamespace, Problem> {
    let ns = namespace.namespace().unwrap_or_default();
    let target = namespace.cluster_ref();
    let cluster_name = &namespace.spec.cluster;
    let Some(cluster) = cluster else {
        let fix = if namespace.is_cross_namespace() { "spec.cluster or spec.clusterNamespace" } else { "spec.cluster" };
        return Err(Problem {
            reason: "ClusterNotFound",
            message: format!(
                "PrismCluster {cluster_name:?} does not exist in namespace {:?}: create it or fix {fix}",
                target.namespace
            ),
            transient: true,
        });
    };
    let settings = &namespace.spec.settings;
    let missing: Vec<&str> = settings
        .patterns
        .iter()
        .filter(|name| !cluster.spec.patterns.iter().any(|entry| &entry.name == *name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(pattern_not_found(cluster_name, &missing, cluster));
    }
    let patterns: Vec<ValidPattern> = settings
        .patterns
        .iter()
        .filter_map(|name| cluster.spec.patterns.iter().find(|entry| &entry.name == name))
        .map(|entry| ValidPattern {
            entry: entry.clone(),
            runner: routes::runner_for(namespace, &entry.name),
            dedicated: settings.isolation == Isolation::Namespace,
        })
        .collect();
    if let Some(problem) = runner_name_clash(&patterns, cluster) {
        return Err(problem);
    }
    Ok(ValidatedNamespace {
        name: namespace.name_any(),
        uid: namespace.uid().unwrap_or_default(),
        cluster: cluster_name.clone(),
        cluster_namespace: target.namespace.to_string(),
        tenant: namespace.is_cross_namespace(),
        cluster_own: crate::tenancy::is_cluster_own(namespace, cluster),
        namespace: ns,
        isolation: settings.isolation,
        patterns,
        paused: cluster.spec.paused,
    })
}

/// A dedicated runner whose name is that of one of the cluster's shared runners (a namespace named
/// like its cluster, or a cluster pattern named `<namespace>-<pattern>`): applying it would take
/// the shared runner over, so it is refused with what to rename.
fn runner_name_clash(patterns: &[ValidPattern], cluster: &PrismCluster) -> Option<Problem> {
    let cluster_name = cluster.name_any();
    let dedicated = patterns.iter().filter(|p| p.dedicated);
    let (pattern, shared) = dedicated
        .flat_map(|p| cluster.spec.patterns.iter().map(move |shared| (p, shared)))
        .find(|(p, shared)| naming::cluster_pattern(&cluster_name, &shared.name) == p.runner)?;
    Some(Problem {
        reason: "RunnerNameClash",
        message: format!(
            "the dedicated runner {:?} of pattern {:?} would have the name of PrismCluster {cluster_name:?}'s shared \
             runner of pattern {:?}: rename the PrismNamespace (or use isolation none or session)",
            pattern.runner, pattern.entry.name, shared.name
        ),
        transient: false,
    })
}

/// A dedicated runner whose name another PrismNamespace's runner already has (`orders-eu` with
/// pattern `kv` and `orders` with pattern `eu-kv` both make `orders-eu-kv`; or two clusters of one
/// namespace each serving a tenant `orders`): applying it would take that runner over, and the two
/// namespaces would fight over it. Refused, naming the holder: the controller of the existing
/// runner, or the tenant its labels name.
pub fn runner_taken(runner: &PrismPattern, existing: Option<&PrismPattern>, owner_uid: &str) -> Option<Problem> {
    let existing = existing?;
    let holder = match existing.owner_references().iter().find(|o| o.controller == Some(true)) {
        Some(owner) => (owner.uid.clone(), format!("{} {:?}", owner.kind, owner.name)),
        None => {
            let labels = existing.labels();
            let uid = labels.get(labels::TENANT_UID)?;
            let tenant = labels.get(labels::TENANT_NAMESPACE).cloned().unwrap_or_default();
            let name = labels.get(labels::NAMESPACE).cloned().unwrap_or_default();
            (uid.clone(), format!("PrismNamespace {tenant}/{name}"))
        }
    };
    if holder.0 == owner_uid {
        return None;
    }
    Some(Problem {
        reason: "RunnerNameClash",
        message: format!(
            "the dedicated runner {:?} would have the name of a PrismPattern that {} holds: rename this \
             PrismNamespace or that one's pattern (or use isolation none or session)",
            runner.name_any(),
            holder.1
        ),
        transient: false,
    })
}

/// Names every missing pattern, and what the cluster offers instead.
fn pattern_not_found(cluster_name: &str, missing: &[&str], cluster: &PrismCluster) -> Problem {
    let quoted: Vec<String> = missing.iter().map(|m| format!("{m:?}")).collect();
    let offered: Vec<&str> = cluster.spec.patterns.iter().map(|p| p.name.as_str()).collect();
    let offered = if offered.is_empty() { "none".to_string() } else { offered.join(", ") };
    let noun = if missing.len() == 1 { "pattern" } else { "patterns" };
    Problem {
        reason: "PatternNotFound",
        message: format!(
            "spec.patterns: {noun} {} not defined in PrismCluster {cluster_name:?} (it defines: {offered}): \
             add it to the cluster's spec.patterns or remove it here",
            quoted.join(", ")
        ),
        transient: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::fixtures::{cluster, namespace};

    #[test]
    fn a_missing_cluster_is_transient_and_named() {
        let problem = validate(&namespace(&["keyvalue"], Isolation::None), None).unwrap_err();
        assert_eq!(problem.reason, "ClusterNotFound");
        assert!(problem.transient);
        assert!(problem.message.contains("\"prod\""), "{}", problem.message);
    }

    #[test]
    fn an_unknown_pattern_is_named_with_what_the_cluster_offers() {
        let cluster = cluster(&["keyvalue", "consumer"]);
        let problem = validate(&namespace(&["keyvalue", "mailbox"], Isolation::None), Some(&cluster)).unwrap_err();
        assert_eq!(problem.reason, "PatternNotFound");
        assert!(!problem.transient);
        assert!(problem.message.contains("\"mailbox\""), "{}", problem.message);
        assert!(problem.message.contains("keyvalue, consumer"), "{}", problem.message);
    }

    #[test]
    fn a_dedicated_runner_may_not_take_a_shared_runners_name() {
        let mut ns = namespace(&["keyvalue"], Isolation::Namespace);
        ns.metadata.name = Some("prod".into());
        let problem = validate(&ns, Some(&cluster(&["keyvalue"]))).unwrap_err();
        assert_eq!(problem.reason, "RunnerNameClash");
        assert!(problem.message.contains("\"prod-keyvalue\""), "{}", problem.message);
        ns.spec.settings.isolation = Isolation::None;
        assert!(validate(&ns, Some(&cluster(&["keyvalue"]))).is_ok(), "shared runners are meant to be shared");
    }

    #[test]
    fn isolation_decides_between_dedicated_and_shared_runners() {
        let cluster = cluster(&["keyvalue", "consumer"]);
        let own = validate(&namespace(&["keyvalue"], Isolation::Namespace), Some(&cluster)).expect("valid");
        assert_eq!(own.patterns[0].runner, "orders-keyvalue");
        assert!(own.patterns[0].dedicated);
        for isolation in [Isolation::None, Isolation::Session] {
            let shared = validate(&namespace(&["keyvalue", "consumer"], isolation), Some(&cluster)).expect("valid");
            let runners: Vec<&str> = shared.patterns.iter().map(|p| p.runner.as_str()).collect();
            assert_eq!(runners, ["prod-keyvalue", "prod-consumer"]);
            assert_eq!(shared.dedicated().count(), 0);
        }
    }
}
