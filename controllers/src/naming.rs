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

/// The proxy's Service.
pub fn proxy_service(cluster: &str) -> String {
    component(cluster, "proxy")
}

/// The ConfigMap of the proxy's routing configuration (namespaces and the runners they use).
pub fn proxy_config(cluster: &str) -> String {
    component(cluster, "proxy-config")
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
    all.insert(labels::COMPONENT.to_string(), "pattern-runner".to_string());
    all.insert(labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string());
    all.insert(labels::CLUSTER.to_string(), cluster.to_string());
    all
}

/// A label selector string (`k=v,k=v`) for the status of the scale subresource.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}
