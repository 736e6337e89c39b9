//! Object metadata and labels of a cluster's components.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use prism_api::names::labels;

/// Labels that select a cluster component's pods: immutable facts only.
pub fn selector(cluster: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_string(), "prism".to_string()),
        (labels::INSTANCE.to_string(), cluster.to_string()),
        (labels::COMPONENT.to_string(), component.to_string()),
    ])
}

/// Labels of every object of a cluster component: the selector plus ownership labels, by which
/// the cluster finds (and prunes, or adopts) its children.
pub fn component_labels(cluster: &str, component: &str) -> BTreeMap<String, String> {
    let mut all = selector(cluster, component);
    all.insert(labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string());
    all.insert(labels::CLUSTER.to_string(), cluster.to_string());
    all
}

/// Labels of a cluster's proxy config, by which the teardowns of its patterns and namespaces find
/// it in their caches.
pub fn proxy_config_labels(cluster: &str) -> BTreeMap<String, String> {
    component_labels(cluster, crate::naming::PROXY_COMPONENT)
}

/// Metadata of a child object.
pub fn object(
    name: &str,
    namespace: &str,
    labels: BTreeMap<String, String>,
    owner: Option<&OwnerReference>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..ObjectMeta::default()
    }
}
