//! What a spec implies once things are quiet (invariant 1), written from the documented
//! behaviour, not from the controllers' code: a cluster whose patterns use a disabled backend or
//! whose namespaces use an unknown pattern is Failed, a valid one is Running (workloads are
//! simulated, so they become ready); a pattern or namespace whose cluster does not exist is
//! Pending; one that asks its cluster for something it lacks is Failed; otherwise a pattern is
//! Running and a namespace Ready. A paused or invalid cluster writes nothing to its children, so
//! what waits on it may be in any phase; the status must still describe the current generation.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::Api;
use prism_api::v1beta1::{ClusterPhase, PrismCluster, PrismClusterSpec};
use prism_api::v1beta1::{NamespacePhase, PrismNamespace};
use prism_api::v1beta1::{PatternPhase, PrismPattern};

use crate::checks::Child;

/// Why a cluster's spec cannot be realised, if it cannot.
pub fn cluster_problem(spec: &PrismClusterSpec) -> Option<String> {
    let enabled: Vec<_> = spec.backends.enabled().map(|(kind, _)| kind).collect();
    for pattern in &spec.patterns {
        if let Some(backend) = pattern.runner.backends.iter().find(|b| b.is_service() && !enabled.contains(b)) {
            return Some(format!("pattern {} uses backend {} which is not enabled", pattern.name, backend.as_str()));
        }
    }
    for namespace in &spec.namespaces {
        if let Some(missing) = namespace.settings.patterns.iter().find(|p| !spec.patterns.iter().any(|e| &&e.name == p))
        {
            return Some(format!("namespace {} uses pattern {missing} which the cluster lacks", namespace.name));
        }
    }
    None
}

/// Whether a cluster writes its children: it is valid and not paused. What waits on one that does
/// not may stay in any phase.
fn writes_children(cluster: &PrismCluster) -> bool {
    !cluster.spec.paused && cluster_problem(&cluster.spec).is_none()
}

/// The phase `cluster` must report (`None`: any).
pub fn cluster_phase(cluster: &PrismCluster) -> Option<ClusterPhase> {
    if cluster_problem(&cluster.spec).is_some() {
        return Some(ClusterPhase::Failed);
    }
    // Paused keeps whatever phase it had.
    (!cluster.spec.paused).then_some(ClusterPhase::Running)
}

/// The phase `pattern` must report, given the live clusters by name (`None`: any).
pub fn pattern_phase(pattern: &PrismPattern, clusters: &BTreeMap<String, PrismCluster>) -> Option<PatternPhase> {
    let Some(cluster) = clusters.get(&pattern.spec.cluster) else { return Some(PatternPhase::Pending) };
    let enabled: Vec<_> = cluster.spec.backends.enabled().map(|(kind, _)| kind).collect();
    if pattern.spec.backends.iter().any(|b| b.name.is_service() && !enabled.contains(&b.name)) {
        return Some(PatternPhase::Failed);
    }
    writes_children(cluster).then_some(PatternPhase::Running)
}

/// The phase `namespace` must report, given the live clusters by name (`None`: any).
pub fn namespace_phase(
    namespace: &PrismNamespace,
    clusters: &BTreeMap<String, PrismCluster>,
) -> Option<NamespacePhase> {
    let Some(cluster) = clusters.get(&namespace.spec.cluster) else { return Some(NamespacePhase::Pending) };
    let defined = |p: &String| cluster.spec.patterns.iter().any(|e| &e.name == p);
    if !namespace.spec.settings.patterns.iter().all(defined) {
        return Some(NamespacePhase::Failed);
    }
    writes_children(cluster).then_some(NamespacePhase::Ready)
}

/// Whether the teardown of `cluster_name`'s pattern or namespace may wait for as long as things
/// stay as they are: it waits for the cluster's proxy to stop routing to it, and a paused or
/// invalid cluster writes nothing, its routes included.
fn teardown_blocked(cluster_name: &str, clusters: &BTreeMap<String, PrismCluster>) -> bool {
    clusters.get(cluster_name).is_some_and(|c| !writes_children(c))
}

/// What a convergence check found.
pub struct Judged {
    /// How many Prism objects it judged.
    pub objects: usize,
    /// Each object not converged, as `kind/name: why`.
    pub off: Vec<String>,
}

/// Every Prism object whose status is not what its spec implies, and every child still being
/// deleted (unless a paused or invalid cluster holds its teardown up), as `kind/name: why`.
pub async fn unconverged(client: &kube::Client, namespace: &str, children: &[Child]) -> Result<Judged, kube::Error> {
    let clusters = Api::<PrismCluster>::namespaced(client.clone(), namespace).list(&Default::default()).await?.items;
    let patterns = Api::<PrismPattern>::namespaced(client.clone(), namespace).list(&Default::default()).await?.items;
    let namespaces =
        Api::<PrismNamespace>::namespaced(client.clone(), namespace).list(&Default::default()).await?.items;
    let live: BTreeMap<String, PrismCluster> = clusters
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .map(|c| (c.name_any(), c.clone()))
        .collect();
    let mut off = Vec::new();
    for c in &clusters {
        let status = c.status.as_ref();
        let paused = status.is_some_and(|s| s.conditions.iter().any(|k| k.type_ == "Paused" && k.status == "True"));
        let also = (c.spec.paused && !paused).then_some("Paused condition not True".to_string());
        let seen = Seen { observed: status.and_then(|s| s.observed_generation), phase: status.and_then(|s| s.phase) };
        let implied = Implied { phase: cluster_phase(c), may_linger: false };
        off.extend(judge("prismcluster", c, seen, implied, also));
    }
    for p in &patterns {
        let status = p.status.as_ref();
        let seen = Seen { observed: status.and_then(|s| s.observed_generation), phase: status.and_then(|s| s.phase) };
        let may_linger = teardown_blocked(&p.spec.cluster, &live);
        off.extend(judge("prismpattern", p, seen, Implied { phase: pattern_phase(p, &live), may_linger }, None));
    }
    for n in &namespaces {
        let status = n.status.as_ref();
        let seen = Seen { observed: status.and_then(|s| s.observed_generation), phase: status.and_then(|s| s.phase) };
        let may_linger = teardown_blocked(&n.spec.cluster, &live);
        off.extend(judge("prismnamespace", n, seen, Implied { phase: namespace_phase(n, &live), may_linger }, None));
    }
    // The Prism kinds among the children are judged above, with their finalizers.
    let other_kinds = children.iter().filter(|c| !c.name.starts_with("Prism"));
    for child in other_kinds.filter(|c| c.terminating && !teardown_blocked(&c.cluster, &live)) {
        off.push(format!("{}: still terminating", child.name));
    }
    Ok(Judged { objects: clusters.len() + patterns.len() + namespaces.len(), off })
}

/// What an object's status says.
struct Seen<P> {
    observed: Option<i64>,
    phase: Option<P>,
}

/// What its spec implies: a phase (`None`: any), and whether its deletion may be held up.
struct Implied<P> {
    phase: Option<P>,
    may_linger: bool,
}

/// `kind/name: why` unless the object describes its current generation in the implied phase (or
/// is being deleted, where that may take as long as things stay as they are).
fn judge<K: kube::Resource, P: PartialEq + std::fmt::Debug>(
    kind: &str,
    object: &K,
    seen: Seen<P>,
    implied: Implied<P>,
    also: Option<String>,
) -> Option<String> {
    let meta = object.meta();
    let mut why = Vec::new();
    if meta.deletion_timestamp.is_some() {
        if !implied.may_linger {
            why.push(format!("still terminating (finalizers {:?})", meta.finalizers.clone().unwrap_or_default()));
        }
    } else {
        if seen.observed != meta.generation {
            why.push(format!("observed generation {:?} of {:?}", seen.observed, meta.generation));
        }
        if let Some(expected) = implied.phase.filter(|e| seen.phase.as_ref() != Some(e)) {
            why.push(format!("phase {:?} where its spec implies {expected:?}", seen.phase));
        }
        why.extend(also);
    }
    let name = meta.name.clone().unwrap_or_default();
    (!why.is_empty()).then(|| format!("{kind}/{name}: {}", why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(json: &str) -> PrismCluster {
        serde_json::from_str(json).expect("a PrismCluster")
    }

    const ALPHA: &str = r#"{"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster", "metadata": {"name": "alpha"},
        "spec": {"backends": {"redis": {"enabled": true, "version": "7"}},
                 "patterns": [{"name": "keyvalue", "backends": ["redis"]}],
                 "namespaces": [{"name": "orders", "patterns": ["keyvalue"]}]}}"#;

    #[test]
    fn a_cluster_is_running_failed_or_any_phase_when_paused() {
        let valid = cluster(ALPHA);
        assert_eq!(cluster_phase(&valid), Some(ClusterPhase::Running));
        let mut paused = valid.clone();
        paused.spec.paused = true;
        assert_eq!(cluster_phase(&paused), None, "paused keeps whatever phase it had");
        let mut no_redis = paused.clone();
        no_redis.spec.backends.redis = None;
        assert_eq!(cluster_phase(&no_redis), Some(ClusterPhase::Failed), "invalid even when paused");
        assert!(cluster_problem(&no_redis.spec).is_some_and(|p| p.contains("redis")));
        let mut lost_pattern = valid.clone();
        lost_pattern.spec.patterns.clear();
        assert!(cluster_problem(&lost_pattern.spec).is_some_and(|p| p.contains("orders")));
    }

    #[test]
    fn patterns_and_namespaces_follow_their_cluster() {
        let alpha = cluster(ALPHA);
        let clusters = BTreeMap::from([("alpha".to_string(), alpha.clone())]);
        let pattern = |cluster: &str, backend: &str| -> PrismPattern {
            serde_json::from_str(&format!(
                r#"{{"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern", "metadata": {{"name": "p"}},
                    "spec": {{"cluster": "{cluster}", "type": "keyvalue", "backends": [{{"name": "{backend}"}}]}}}}"#
            ))
            .expect("a PrismPattern")
        };
        assert_eq!(pattern_phase(&pattern("alpha", "redis"), &clusters), Some(PatternPhase::Running));
        assert_eq!(pattern_phase(&pattern("alpha", "memstore"), &clusters), Some(PatternPhase::Running));
        assert_eq!(pattern_phase(&pattern("other", "redis"), &clusters), Some(PatternPhase::Pending));
        let namespace = |patterns: &str| -> PrismNamespace {
            serde_json::from_str(&format!(
                r#"{{"apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace", "metadata": {{"name": "n"}},
                    "spec": {{"cluster": "alpha", "patterns": {patterns}}}}}"#
            ))
            .expect("a PrismNamespace")
        };
        assert_eq!(namespace_phase(&namespace(r#"["keyvalue"]"#), &clusters), Some(NamespacePhase::Ready));
        assert_eq!(namespace_phase(&namespace(r#"["typo"]"#), &clusters), Some(NamespacePhase::Failed));

        let mut paused = alpha;
        paused.spec.paused = true;
        let clusters = BTreeMap::from([("alpha".to_string(), paused)]);
        assert_eq!(pattern_phase(&pattern("alpha", "redis"), &clusters), None);
        assert_eq!(namespace_phase(&namespace(r#"["keyvalue"]"#), &clusters), None);
        assert!(teardown_blocked("alpha", &clusters));
    }
}
