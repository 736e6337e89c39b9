//! Names and labels of the objects the operator creates. Every controller derives child names
//! here, so that the cluster, namespace and pattern controllers agree on them.

use std::collections::BTreeMap;

use prism_api::names::labels;
use prism_api::v1beta1::BackendKind;

/// Name of a cluster component's objects: `<cluster>-<component>`.
pub fn component(cluster: &str, component: &str) -> String {
    format!("{cluster}-{component}")
}

/// Client Service (and StatefulSet) of a backend: `<cluster>-<backend>`.
pub fn backend_service(cluster: &str, backend: BackendKind) -> String {
    component(cluster, backend.as_str())
}

/// Secret holding a backend's generated credentials.
pub fn backend_secret(cluster: &str, backend: BackendKind) -> String {
    format!("{cluster}-{}-credentials", backend.as_str())
}

/// The admin service's Service.
pub fn admin_service(cluster: &str) -> String {
    component(cluster, "admin")
}

/// The component label of a pattern runner's objects.
pub const RUNNER_COMPONENT: &str = "pattern-runner";

/// The proxy's component: its label value, and its objects' name suffix.
pub const PROXY_COMPONENT: &str = "proxy";

/// The proxy's Service.
pub fn proxy_service(cluster: &str) -> String {
    component(cluster, PROXY_COMPONENT)
}

/// The ConfigMap of the proxy's routing configuration (namespaces and the runners they use).
pub fn proxy_config(cluster: &str) -> String {
    component(cluster, "proxy-config")
}

/// The ConfigMap of a PrismNamespace's connection details, in its own namespace.
pub fn connection_config(prism_namespace: &str) -> String {
    format!("{prism_namespace}-prism-connection")
}

/// Key of the routing document in the proxy's ConfigMap.
pub const PROXY_ROUTES_KEY: &str = "routes.json";

/// The ConfigMap of a pattern runner.
pub fn runner_config(pattern: &str) -> String {
    format!("{pattern}-config")
}

/// Labels that select a pattern runner's pods. Built from immutable facts only (the cluster, which
/// the schema makes immutable, and the object's name), because a workload's selector can never
/// change.
pub fn runner_selector(cluster: &str, pattern: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_string(), "prism".to_string()),
        (labels::INSTANCE.to_string(), cluster.to_string()),
        (labels::PATTERN.to_string(), pattern.to_string()),
    ])
}

/// Labels on every object of a pattern runner: the selector plus descriptive labels.
pub fn runner_labels(cluster: &str, pattern: &str) -> BTreeMap<String, String> {
    let mut all = runner_selector(cluster, pattern);
    all.insert(labels::COMPONENT.to_string(), RUNNER_COMPONENT.to_string());
    all.insert(labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string());
    all.insert(labels::CLUSTER.to_string(), cluster.to_string());
    all
}

/// A label selector string (`k=v,k=v`) for the status of the scale subresource.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Longest name of a runner's workload: its pods and controller-revision labels add a suffix and
/// must stay within 63 characters.
pub const MAX_RUNNER_NAME: usize = 52;

/// `name` if it fits in `max` characters; otherwise a prefix and a short hash of the whole name,
/// so that distinct long names stay distinct and the result is a valid DNS label.
pub fn bounded(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let hash = crate::hash::of(&name);
    let prefix: String = name.chars().take(max.saturating_sub(7)).collect();
    format!("{}-{}", prefix.trim_end_matches('-'), &hash[..6])
}

/// A cluster's child PrismPattern for its `spec.patterns[]` entry `pattern`.
pub fn cluster_pattern(cluster: &str, pattern: &str) -> String {
    bounded(&component(cluster, pattern), MAX_RUNNER_NAME)
}

/// A cluster's child PrismNamespace for its `spec.namespaces[]` entry `namespace`.
pub fn cluster_namespace(cluster: &str, namespace: &str) -> String {
    component(cluster, namespace)
}

/// The PrismPattern dedicated to PrismNamespace `namespace` for the cluster pattern `pattern`.
pub fn dedicated_runner(namespace: &str, pattern: &str) -> String {
    bounded(&component(namespace, pattern), MAX_RUNNER_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_bounded_and_stay_distinct() {
        let a = dedicated_runner("a-namespace-name-that-is-quite-long-indeed-yes", "multicast-registry");
        let b = dedicated_runner("a-namespace-name-that-is-quite-long-indeed-no", "multicast-registry");
        assert!(a.len() <= MAX_RUNNER_NAME && b.len() <= MAX_RUNNER_NAME);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_eq!(dedicated_runner("orders", "keyvalue"), "orders-keyvalue");
    }
}
