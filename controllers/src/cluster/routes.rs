//! The proxy's routes of a cluster (pure): what the spec decides is derived from the spec, what
//! app teams created is taken from the objects observed, and served only as the cluster's
//! tenancy says (admitted, within its limits, holding its name; quotas lowered to the limits).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{Isolation, PrismCluster, PrismNamespace, PrismNamespaceSpec};

use super::validate::ValidatedCluster;
use crate::naming;
use crate::routes::{self, PatternRoute, Routes};
use crate::tenancy::{self, Labels};

/// The proxy's routes. What the spec declares (the cluster's patterns and namespaces, and the
/// dedicated runners of namespace-isolated namespaces) is derived, not observed, so the routes
/// are final from the first reconcile and the proxy rolls once, not once per child appearing; what
/// app teams created (`attached`: the PrismNamespaces naming this cluster, from any namespace) is
/// observed, and judged (see `tenancy`); `labels` are the Kubernetes namespaces' labels.
pub fn routes(
    valid: &ValidatedCluster,
    observed_patterns: &[PrismPattern],
    attached: &[PrismNamespace],
    labels: impl Fn(&str) -> Option<Labels>,
) -> Routes {
    let cluster = valid.resource();
    let derived = spec_namespaces(valid, &cluster, attached);
    // The cluster's own, as observed, are what the spec derives: judged once, as derived.
    let observed = attached
        .iter()
        .filter(|n| !(tenancy::is_cluster_own(n, &cluster) && derived.iter().any(|d| d.name_any() == n.name_any())));
    let candidates: Vec<&PrismNamespace> = derived.iter().chain(observed).collect();
    let served: Vec<PrismNamespace> = tenancy::judge(&cluster, &candidates, labels)
        .into_iter()
        .filter_map(|(n, verdict)| {
            let quota = verdict.served()?.quota.clone();
            let mut served = n.clone();
            served.spec.settings.quota = quota;
            Some(served)
        })
        .collect();
    let mut runners: Vec<PatternRoute> = valid
        .spec
        .patterns
        .iter()
        .filter_map(|entry| {
            let runner = naming::cluster_pattern(&valid.name, &entry.name);
            Some(routes::pattern_route(&runner, &valid.namespace, entry.pattern_type()?.as_str(), None))
        })
        .collect();
    runners.extend(served.iter().flat_map(|n| dedicated_routes(valid, n)));
    // A runner being deleted (by hand, or pruned) leaves the routes so that its finalizer can
    // proceed; the cluster recreates it afterwards if the spec still wants it.
    let pattern_deleting = |runner: &str| {
        observed_patterns.iter().any(|p| p.name_any() == runner && p.metadata.deletion_timestamp.is_some())
    };
    runners.retain(|r| !pattern_deleting(&r.runner));
    runners.extend(routes::observed_runners(&valid.name, observed_patterns));
    routes::render(&valid.name, runners, &served)
}

/// The namespaces the spec declares, as the child PrismNamespaces the cluster makes of them
/// (controlled by it), except those being deleted.
fn spec_namespaces(
    valid: &ValidatedCluster,
    cluster: &PrismCluster,
    attached: &[PrismNamespace],
) -> Vec<PrismNamespace> {
    let deleting =
        |name: &str| attached.iter().any(|n| n.name_any() == name && n.metadata.deletion_timestamp.is_some());
    let owner = cluster.controller_owner_ref(&()).unwrap_or_else(|| OwnerReference {
        uid: valid.uid.clone(),
        controller: Some(true),
        ..OwnerReference::default()
    });
    valid
        .spec
        .namespaces
        .iter()
        .map(|entry| {
            let name = naming::cluster_namespace(&valid.name, &entry.name);
            let spec = PrismNamespaceSpec {
                cluster: valid.name.clone(),
                cluster_namespace: None,
                settings: entry.settings.clone(),
            };
            let mut namespace = PrismNamespace::new(&name, spec);
            namespace.metadata.namespace = Some(valid.namespace.clone());
            namespace.metadata.owner_references = Some(vec![owner.clone()]);
            namespace
        })
        .filter(|n| !deleting(&n.name_any()))
        .collect()
}

/// The routes to the dedicated runners of a namespace-isolated namespace, in the cluster's
/// namespace (a tenant's run there too).
fn dedicated_routes(valid: &ValidatedCluster, namespace: &PrismNamespace) -> Vec<PatternRoute> {
    if namespace.spec.settings.isolation != Isolation::Namespace {
        return Vec::new();
    }
    let type_of = |pattern: &str| {
        valid.spec.patterns.iter().find(|p| p.name == pattern).and_then(|p| p.pattern_type()).map(|t| t.as_str())
    };
    namespace
        .spec
        .settings
        .patterns
        .iter()
        .filter_map(|pattern| {
            let runner = routes::runner_for(namespace, pattern);
            type_of(pattern).map(|t| routes::pattern_route(&runner, &valid.namespace, t, None))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::cluster::validate::validate;

    fn cluster() -> ValidatedCluster {
        let c: PrismCluster = serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
            "metadata": {"name": "shared", "namespace": "platform", "uid": "u-shared"},
            "spec": {"patterns": [{"name": "keyvalue"}], "namespaces": [{"name": "ops", "patterns": ["keyvalue"]}],
                     "tenancy": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"tenant": "yes"}}},
                                 "limits": {"maxSessions": 10}}}
        }))
        .expect("cluster");
        validate(&c).expect("valid")
    }

    fn tenant(ns: &str, name: &str, created: i64) -> PrismNamespace {
        let mut n: PrismNamespace = serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace",
            "metadata": {"name": name, "namespace": ns, "uid": format!("{ns}-{name}")},
            "spec": {"cluster": "shared", "clusterNamespace": "platform", "patterns": ["keyvalue"],
                     "isolation": "namespace", "quota": {"maxSessions": 50}}
        }))
        .expect("namespace");
        n.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(created).expect("time"),
        ));
        n
    }

    #[test]
    fn tenants_are_routed_as_the_cluster_admits_them_with_their_quota_capped() {
        let admitted: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::from([
            ("team-a", BTreeMap::from([("tenant".to_string(), "yes".to_string())])),
            ("team-b", BTreeMap::from([("tenant".to_string(), "yes".to_string())])),
        ]);
        let attached = [tenant("team-a", "orders", 1), tenant("team-b", "orders", 2), tenant("team-c", "search", 1)];
        let routes = routes(&cluster(), &[], &attached, |ns| admitted.get(ns).cloned());
        let served: Vec<(&str, Option<&str>)> =
            routes.namespaces.iter().map(|n| (n.name.as_str(), n.tenant.as_deref())).collect();
        assert_eq!(
            served,
            [("orders", Some("team-a")), ("shared-ops", None)],
            "team-c is not admitted, team-b's orders lost"
        );
        let orders = &routes.namespaces[0];
        assert_eq!(orders.quota.as_ref().and_then(|q| q.max_sessions), Some(10), "capped");
        assert_eq!(routes.namespaces[1].quota, None, "the cluster's own namespaces are not capped");
        assert!(routes.routes_to_runner("orders-keyvalue"));
        let runner = routes.patterns.iter().find(|p| p.runner == "orders-keyvalue").expect("route");
        assert_eq!(
            runner.address, "orders-keyvalue.platform.svc:8982",
            "a tenant's runner runs in the cluster's namespace"
        );
        assert!(routes.serves(&attached[0]) && !routes.serves(&attached[1]), "the loser is not the one served");
    }
}
