//! Tenancy: which PrismNamespaces a PrismCluster serves, decided the same way by every party
//! that asks (the cluster's routes, the namespace's own status, the admission webhook). Pure:
//! callers read the objects and the namespaces' labels; this decides.
//!
//! A PrismNamespace attached to a cluster is, in this order:
//! 1. admitted, or not: its Kubernetes namespace is the cluster's, or the cluster's
//!    `spec.tenancy.namespaces` admits it (All, or a Selector its labels match);
//! 2. within the cluster's tenant limits, or not: patterns it may use, dedicated runners it may
//!    have (refused above the limit); its quota is lowered to the limits (clamped, not refused:
//!    the team is served at what the platform allows, and its condition says what was lowered);
//! 3. the holder of its name, or not: Prism namespace names are global in a cluster, and of the
//!    admitted namespaces asking for one name the cluster's own (from its `spec.namespaces`) win,
//!    then the oldest, then the first by Kubernetes namespace and uid. The others are Conflicted.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};
use prism_api::v1beta1::{Isolation, NamespacesFrom, PrismCluster, PrismNamespace, Quota, Tenancy, TenantLimits};

use crate::conditions::Problem;

/// What the cluster makes of one attached PrismNamespace.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Served, with the quota the proxy enforces.
    Served(Served),
    /// Not admitted, or asking beyond the limits: the Accepted condition is False.
    NotAccepted(Problem),
    /// Admitted, but another PrismNamespace holds its name: the Conflicted condition is True.
    Conflicted(Problem),
}

/// How a served namespace is served.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Served {
    /// The quota the proxy enforces: the namespace's own, lowered to the cluster's limits.
    pub quota: Option<Quota>,
    /// What was lowered, e.g. `spec.quota.maxSessions 5000 to 1000`; empty when nothing was.
    pub clamped: Vec<String>,
}

impl Verdict {
    pub fn served(&self) -> Option<&Served> {
        match self {
            Verdict::Served(served) => Some(served),
            _ => None,
        }
    }
}

/// The labels of Kubernetes namespaces, as last seen (`None`: not seen).
pub type Labels = BTreeMap<String, String>;

/// Whether `cluster` admits PrismNamespaces from Kubernetes namespace `namespace`, whose labels
/// are `labels` (`None`: not known). The refusal names the cluster and its rule.
pub fn admits(cluster: &PrismCluster, namespace: &str, labels: Option<&Labels>) -> Result<(), Problem> {
    let own = cluster.namespace().unwrap_or_default();
    if namespace == own {
        return Ok(());
    }
    let tenancy = cluster.spec.tenancy.clone().unwrap_or_default();
    let who = format!("PrismCluster {own}/{}", cluster.name_any());
    let refused = |rule: String, transient: bool| Problem {
        reason: "NamespaceNotAllowed",
        message: format!("{who} does not admit PrismNamespaces from namespace {namespace:?}: {rule}"),
        transient,
    };
    match tenancy.namespaces.from {
        NamespacesFrom::All => Ok(()),
        NamespacesFrom::Same => Err(refused(
            format!("spec.tenancy.namespaces.from is Same (only namespace {own:?}); the platform team may admit yours"),
            false,
        )),
        NamespacesFrom::Selector => {
            let selector = selector_of(&tenancy).map_err(|rule| refused(rule, false))?;
            let rule = format!("spec.tenancy.namespaces.selector is {selector}");
            match labels {
                Some(labels) if selector.matches(labels) => Ok(()),
                Some(_) => Err(refused(format!("{rule}, which namespace {namespace:?}'s labels do not match"), false)),
                // Not seen yet (or the operator may not read namespaces): it may yet turn out.
                None => Err(refused(format!("{rule}, and namespace {namespace:?}'s labels are not known"), true)),
            }
        }
    }
}

fn selector_of(tenancy: &Tenancy) -> Result<Selector, String> {
    let selector = tenancy.namespaces.selector.clone().unwrap_or_default();
    Selector::try_from(selector).map_err(|e| format!("spec.tenancy.namespaces.selector is not a valid selector: {e}"))
}

/// `namespace`'s quota under `limits`, or why it asks beyond what may be granted.
pub fn within_limits(namespace: &PrismNamespace, cluster: &PrismCluster) -> Result<Served, Problem> {
    let settings = &namespace.spec.settings;
    let Some(limits) = cluster.spec.tenancy.as_ref().and_then(|t| t.limits.as_ref()) else {
        return Ok(Served { quota: settings.quota.clone(), clamped: Vec::new() });
    };
    let who = format!("PrismCluster {}/{}", cluster.namespace().unwrap_or_default(), cluster.name_any());
    let forbidden: Vec<&str> = settings
        .patterns
        .iter()
        .filter(|p| !limits.patterns.is_empty() && !limits.patterns.contains(p))
        .map(String::as_str)
        .collect();
    if !forbidden.is_empty() {
        return Err(Problem::spec(
            "PatternNotAllowed",
            format!(
                "spec.patterns: {} not allowed to tenants of {who} (spec.tenancy.limits.patterns: {}): remove it here",
                forbidden.join(", "),
                limits.patterns.join(", ")
            ),
        ));
    }
    let dedicated = if settings.isolation == Isolation::Namespace { settings.patterns.len() } else { 0 };
    if let Some(max) = limits.max_dedicated_runners.filter(|max| dedicated > usize::try_from(*max).unwrap_or(0)) {
        return Err(Problem::spec(
            "TooManyDedicatedRunners",
            format!(
                "spec.isolation namespace gives {dedicated} dedicated runners (one per pattern) but {who} allows at most \
                 {max} (spec.tenancy.limits.maxDedicatedRunners): use fewer patterns, or isolation none or session"
            ),
        ));
    }
    Ok(clamp(settings.quota.as_ref(), limits))
}

/// The quota asked, each value lowered to its limit (an absent value, no limit, takes the limit).
fn clamp(asked: Option<&Quota>, limits: &TenantLimits) -> Served {
    let asked = asked.cloned().unwrap_or_default();
    let mut clamped = Vec::new();
    let mut field = |name: &str, asked: Option<i64>, limit: Option<i64>| match (asked, limit) {
        (Some(value), Some(limit)) if value > limit => {
            clamped.push(format!("spec.quota.{name} {value} to {limit}"));
            Some(limit)
        }
        (None, Some(limit)) => {
            clamped.push(format!("spec.quota.{name} unlimited to {limit}"));
            Some(limit)
        }
        (asked, _) => asked,
    };
    let quota = Quota {
        max_sessions: field("maxSessions", asked.max_sessions, limits.quota.max_sessions),
        max_requests_per_second: field(
            "maxRequestsPerSecond",
            asked.max_requests_per_second,
            limits.quota.max_requests_per_second,
        ),
        burst: field("burst", asked.burst, limits.quota.burst),
    };
    let quota = (quota != Quota::default()).then_some(quota);
    Served { quota, clamped }
}

/// Whether `namespace` is one of the cluster's own (materialised from its `spec.namespaces`): the
/// platform's, neither admitted nor limited, and first to its name.
pub fn is_cluster_own(namespace: &PrismNamespace, cluster: &PrismCluster) -> bool {
    let uid = cluster.uid();
    namespace.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

/// The PrismNamespaces of `attached` that name `cluster`, each with what the cluster makes of it.
/// Namespaces being deleted are left out (the proxy stops serving them first).
pub fn judge<'a>(
    cluster: &PrismCluster,
    attached: &[&'a PrismNamespace],
    labels: impl Fn(&str) -> Option<Labels>,
) -> Vec<(&'a PrismNamespace, Verdict)> {
    let alive: Vec<&PrismNamespace> = attached
        .iter()
        .copied()
        .filter(|n| n.metadata.deletion_timestamp.is_none() && attaches_to(n, cluster))
        .collect();
    let accepted = |n: &PrismNamespace| -> Result<Served, Problem> {
        if is_cluster_own(n, cluster) {
            return Ok(Served { quota: n.spec.settings.quota.clone(), clamped: Vec::new() });
        }
        let ns = n.namespace().unwrap_or_default();
        admits(cluster, &ns, labels(&ns).as_ref())?;
        within_limits(n, cluster)
    };
    let first: Vec<(&PrismNamespace, Result<Served, Problem>)> = alive.iter().map(|n| (*n, accepted(n))).collect();
    let holders = holders(cluster, first.iter().filter(|(_, r)| r.is_ok()).map(|(n, _)| *n));
    first
        .into_iter()
        .map(|(n, result)| {
            let verdict = match result {
                Err(problem) => Verdict::NotAccepted(problem),
                Ok(served) => match holders.get(&n.name_any()) {
                    Some(holder) if !same_object(holder, n) => Verdict::Conflicted(conflict(n, holder, cluster)),
                    _ => Verdict::Served(served),
                },
            };
            (n, verdict)
        })
        .collect()
}

/// Whether `namespace` names `cluster` (by name and namespace).
pub fn attaches_to(namespace: &PrismNamespace, cluster: &PrismCluster) -> bool {
    let target = namespace.cluster_ref();
    target.name == cluster.name_any() && Some(target.namespace) == cluster.metadata.namespace.as_deref()
}

/// The holder of each Prism namespace name among `contenders`.
fn holders<'a>(
    cluster: &PrismCluster,
    contenders: impl Iterator<Item = &'a PrismNamespace>,
) -> BTreeMap<String, &'a PrismNamespace> {
    let mut holders: BTreeMap<String, &PrismNamespace> = BTreeMap::new();
    for n in contenders {
        let entry = holders.entry(n.name_any()).or_insert(n);
        if precedence(cluster, n, entry) == Ordering::Less {
            *entry = n;
        }
    }
    holders
}

/// Which of two namespaces asking for one name gets it: the cluster's own, then the oldest, then
/// the first by Kubernetes namespace, then by uid (deterministic, whoever judges).
fn precedence(cluster: &PrismCluster, a: &PrismNamespace, b: &PrismNamespace) -> Ordering {
    let key = |n: &PrismNamespace| {
        (
            !is_cluster_own(n, cluster),
            n.metadata.creation_timestamp.as_ref().map(|t| t.0),
            n.namespace().unwrap_or_default(),
            n.uid().unwrap_or_default(),
        )
    };
    key(a).cmp(&key(b))
}

fn same_object(a: &PrismNamespace, b: &PrismNamespace) -> bool {
    (a.namespace(), a.name_any(), a.uid()) == (b.namespace(), b.name_any(), b.uid())
}

fn conflict(loser: &PrismNamespace, holder: &PrismNamespace, cluster: &PrismCluster) -> Problem {
    let name = loser.name_any();
    let holder_ns = holder.namespace().unwrap_or_default();
    Problem {
        reason: "NameInUse",
        message: format!(
            "Prism namespace {name:?} of PrismCluster {}/{} is held by the PrismNamespace in namespace {holder_ns:?} \
             (names are global in a cluster; the first created holds it): choose another name",
            cluster.namespace().unwrap_or_default(),
            cluster.name_any()
        ),
        // It is served once the holder goes.
        transient: true,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use serde_json::json;

    use super::*;

    fn cluster(tenancy: serde_json::Value) -> PrismCluster {
        serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
            "metadata": {"name": "prod", "namespace": "platform", "uid": "uid-prod"},
            "spec": {"patterns": [{"name": "keyvalue"}, {"name": "consumer"}], "tenancy": tenancy}
        }))
        .expect("cluster")
    }

    fn tenant(ns: &str, name: &str, created: i64, spec: serde_json::Value) -> PrismNamespace {
        let mut spec = spec;
        spec["cluster"] = json!("prod");
        spec["clusterNamespace"] = json!("platform");
        let mut n: PrismNamespace = serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")},
            "spec": spec
        }))
        .expect("namespace");
        n.metadata.creation_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(created).expect("time")));
        n
    }

    fn labels(pairs: &[(&str, &[(&str, &str)])]) -> impl Fn(&str) -> Option<Labels> + use<> {
        let known: BTreeMap<String, Labels> = pairs
            .iter()
            .map(|(ns, l)| (ns.to_string(), l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
            .collect();
        move |ns| known.get(ns).cloned()
    }

    #[test]
    fn by_default_only_the_clusters_namespace_is_admitted() {
        let c = cluster(json!(null));
        assert!(admits(&c, "platform", None).is_ok());
        let refused = admits(&c, "team-a", None).unwrap_err();
        assert_eq!(refused.reason, "NamespaceNotAllowed");
        assert!(refused.message.contains("PrismCluster platform/prod"), "{}", refused.message);
        assert!(refused.message.contains("spec.tenancy.namespaces.from is Same"), "{}", refused.message);
        assert!(!refused.transient);
        assert!(admits(&cluster(json!({"namespaces": {"from": "All"}})), "team-a", None).is_ok());
    }

    #[test]
    fn a_selector_admits_the_namespaces_its_labels_match() {
        let c = cluster(
            json!({"namespaces": {"from": "Selector", "selector": {"matchLabels": {"prism.io/tenant": "true"}}}}),
        );
        let known = labels(&[("team-a", &[("prism.io/tenant", "true")]), ("team-c", &[("team", "c")])]);
        assert!(admits(&c, "team-a", known("team-a").as_ref()).is_ok());
        let refused = admits(&c, "team-c", known("team-c").as_ref()).unwrap_err();
        assert!(refused.message.contains("prism.io/tenant=true"), "the rule is named: {}", refused.message);
        assert!(!refused.transient);
        assert!(admits(&c, "team-x", None).unwrap_err().transient, "labels not seen yet may still match");
        let bad = cluster(json!({"namespaces": {"from": "Selector",
            "selector": {"matchExpressions": [{"key": "a", "operator": "Sometimes"}]}}}));
        let refused = admits(&bad, "team-a", known("team-a").as_ref()).unwrap_err();
        assert!(refused.message.contains("not a valid selector"), "{}", refused.message);
    }

    #[test]
    fn quotas_above_the_limits_are_lowered_and_said_so() {
        let c = cluster(json!({"namespaces": {"from": "All"},
                               "limits": {"maxSessions": 100, "maxRequestsPerSecond": 50}}));
        let n = tenant("team-a", "orders", 1, json!({"quota": {"maxSessions": 500, "maxRequestsPerSecond": 10}}));
        let served = within_limits(&n, &c).expect("within");
        assert_eq!(
            served.quota,
            Some(Quota { max_sessions: Some(100), max_requests_per_second: Some(10), burst: None })
        );
        assert_eq!(served.clamped, ["spec.quota.maxSessions 500 to 100"]);
        let unlimited = within_limits(&tenant("team-a", "orders", 1, json!({})), &c).expect("within");
        assert_eq!(unlimited.quota.and_then(|q| q.max_sessions), Some(100), "no quota takes the limit");
        assert_eq!(unlimited.clamped.len(), 2);
        let no_limits = within_limits(&n, &cluster(json!({"namespaces": {"from": "All"}}))).expect("within");
        assert_eq!((no_limits.quota, no_limits.clamped.len()), (n.spec.settings.quota.clone(), 0));
    }

    #[test]
    fn patterns_and_dedicated_runners_beyond_the_limits_are_refused() {
        let c = cluster(json!({"namespaces": {"from": "All"},
                               "limits": {"patterns": ["keyvalue"], "maxDedicatedRunners": 1}}));
        let mailbox = tenant("team-a", "o", 1, json!({"patterns": ["keyvalue", "consumer"], "isolation": "none"}));
        let problem = within_limits(&mailbox, &c).unwrap_err();
        assert_eq!(problem.reason, "PatternNotAllowed");
        assert!(problem.message.contains("consumer") && problem.message.contains("limits.patterns: keyvalue"));
        let c = cluster(json!({"namespaces": {"from": "All"}, "limits": {"maxDedicatedRunners": 1}}));
        let two = tenant("team-a", "o", 1, json!({"patterns": ["keyvalue", "consumer"], "isolation": "namespace"}));
        let problem = within_limits(&two, &c).unwrap_err();
        assert_eq!(problem.reason, "TooManyDedicatedRunners");
        assert!(problem.message.contains("2 dedicated runners") && problem.message.contains("at most 1"));
        let shared = tenant("team-a", "o", 1, json!({"patterns": ["keyvalue", "consumer"], "isolation": "session"}));
        assert!(within_limits(&shared, &c).is_ok(), "shared runners are not dedicated");
    }

    #[test]
    fn the_first_created_admitted_namespace_holds_a_name_and_the_others_are_told_where() {
        let c = cluster(json!({"namespaces": {"from": "Selector", "selector": {"matchLabels": {"t": "y"}}}}));
        let known = labels(&[("team-a", &[("t", "y")]), ("team-b", &[("t", "y")]), ("team-c", &[])]);
        let early_but_refused = tenant("team-c", "orders", 1, json!({}));
        let holder = tenant("team-b", "orders", 5, json!({}));
        let loser = tenant("team-a", "orders", 9, json!({}));
        let other = tenant("team-a", "billing", 2, json!({}));
        let verdicts = judge(&c, &[&loser, &early_but_refused, &holder, &other], &known);
        let by_ns = |ns: &str, name: &str| {
            verdicts
                .iter()
                .find(|(n, _)| n.namespace().as_deref() == Some(ns) && n.name_any() == name)
                .map(|(_, v)| v.clone())
                .expect("judged")
        };
        assert!(matches!(by_ns("team-b", "orders"), Verdict::Served(_)));
        assert!(matches!(by_ns("team-a", "billing"), Verdict::Served(_)));
        assert!(matches!(by_ns("team-c", "orders"), Verdict::NotAccepted(_)), "a refused one holds nothing");
        let Verdict::Conflicted(problem) = by_ns("team-a", "orders") else { panic!("conflicted") };
        assert_eq!(problem.reason, "NameInUse");
        assert!(problem.message.contains("namespace \"team-b\""), "{}", problem.message);
        // Whoever judges, in whatever order, the same holder.
        let again = judge(&c, &[&other, &holder, &early_but_refused, &loser], &known);
        assert_eq!(again.len(), 4);
        for (n, verdict) in again {
            assert_eq!(verdict, by_ns(&n.namespace().unwrap_or_default(), &n.name_any()));
        }
    }

    #[test]
    fn ties_on_age_go_by_namespace_and_the_clusters_own_namespaces_always_win() {
        let c = cluster(json!({"namespaces": {"from": "All"}}));
        let (b, a) = (tenant("team-b", "orders", 5, json!({})), tenant("team-a", "orders", 5, json!({})));
        let verdicts = judge(&c, &[&b, &a], labels(&[]));
        assert!(matches!(verdicts[0].1, Verdict::Conflicted(_)) && matches!(verdicts[1].1, Verdict::Served(_)));
        let mut own = tenant("platform", "orders", 50, json!({}));
        own.spec.cluster_namespace = None;
        own.metadata.owner_references =
            Some(vec![OwnerReference { uid: "uid-prod".into(), controller: Some(true), ..OwnerReference::default() }]);
        let verdicts = judge(&c, &[&a, &own], labels(&[]));
        assert!(matches!(verdicts[0].1, Verdict::Conflicted(_)) && matches!(verdicts[1].1, Verdict::Served(_)));
    }

    #[test]
    fn namespaces_of_other_clusters_and_deleting_ones_are_not_judged() {
        let c = cluster(json!({"namespaces": {"from": "All"}}));
        let mut elsewhere = tenant("team-a", "orders", 1, json!({}));
        elsewhere.spec.cluster_namespace = Some("other".into());
        let mut deleting = tenant("team-b", "orders", 1, json!({}));
        deleting.metadata.deletion_timestamp = deleting.metadata.creation_timestamp.clone();
        assert!(judge(&c, &[&elsewhere, &deleting], labels(&[])).is_empty());
    }
}
