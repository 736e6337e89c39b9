//! The proxy's routes of a cluster (pure): what the spec decides is derived from the spec, what
//! app teams created is taken from the objects observed in the cluster's namespace.

use kube::ResourceExt;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;

use super::validate::ValidatedCluster;
use crate::naming;
use crate::routes::Routes;

/// The proxy's routes. What the spec declares (the cluster's patterns and namespaces, and the
/// dedicated runners of namespace-isolated namespaces) is derived, not observed, so the routes
/// are final from the first reconcile and the proxy rolls once, not once per child appearing; what
/// app teams created is observed.
pub fn routes(
    valid: &ValidatedCluster,
    observed_patterns: &[PrismPattern],
    observed_namespaces: &[PrismNamespace],
) -> Routes {
    let ns = &valid.namespace;
    let deleting = |name: &str| {
        observed_namespaces.iter().any(|n| n.name_any() == name && n.metadata.deletion_timestamp.is_some())
    };
    let mut namespaces: Vec<PrismNamespace> = valid
        .spec
        .namespaces
        .iter()
        .map(|entry| {
            let name = naming::cluster_namespace(&valid.name, &entry.name);
            let spec = prism_api::v1beta1::PrismNamespaceSpec {
                cluster: valid.name.clone(),
                cluster_namespace: None,
                settings: entry.settings.clone(),
            };
            PrismNamespace::new(&name, spec)
        })
        .filter(|n| !deleting(&n.name_any()))
        .collect();
    namespaces.extend(observed_namespaces.iter().cloned());
    let type_of = |pattern: &str| {
        valid.spec.patterns.iter().find(|p| p.name == pattern).and_then(|p| p.pattern_type()).map(|t| t.as_str())
    };
    let mut runners: Vec<crate::routes::PatternRoute> = valid
        .spec
        .patterns
        .iter()
        .filter_map(|entry| {
            let runner = naming::cluster_pattern(&valid.name, &entry.name);
            Some(crate::routes::pattern_route(&runner, ns, entry.pattern_type()?.as_str(), None))
        })
        .collect();
    for namespace in
        namespaces.iter().filter(|n| n.spec.cluster == valid.name && n.metadata.deletion_timestamp.is_none())
    {
        if namespace.spec.settings.isolation == prism_api::v1beta1::Isolation::Namespace {
            for pattern in &namespace.spec.settings.patterns {
                let runner = crate::routes::runner_for(namespace, pattern);
                runners.extend(type_of(pattern).map(|t| crate::routes::pattern_route(&runner, ns, t, None)));
            }
        }
    }
    // A runner being deleted (by hand, or pruned) leaves the routes so that its finalizer can
    // proceed; the cluster recreates it afterwards if the spec still wants it.
    let pattern_deleting = |runner: &str| {
        observed_patterns.iter().any(|p| p.name_any() == runner && p.metadata.deletion_timestamp.is_some())
    };
    runners.retain(|r| !pattern_deleting(&r.runner));
    runners.extend(crate::routes::observed_runners(&valid.name, observed_patterns));
    crate::routes::render(&valid.name, runners, &namespaces)
}
