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

/// Keeps, in `desired`, the apiVersion of an owner reference `live` already has to the same owner
/// (uid and kind) at another version this release still serves. A release whose kinds were
/// stored at an older version wrote its children's owner references at that version; they
/// still resolve, and rewriting only their apiVersion would write every child of every cluster
/// on an upgrade. Once a release stops serving that version, the current one is written.
pub fn keep_served_owner_versions(desired: &mut ObjectMeta, live: &ObjectMeta) {
    for owner in desired.owner_references.iter_mut().flatten() {
        let earlier = live.owner_references.iter().flatten().find(|o| o.uid == owner.uid && o.kind == owner.kind);
        if let Some(earlier) = earlier
            && earlier.api_version != owner.api_version
            && prism_api::serves(&earlier.api_version, &earlier.kind)
        {
            owner.api_version = earlier.api_version.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::keep_served_owner_versions;

    fn owned_by(api_version: &str, kind: &str, uid: &str) -> ObjectMeta {
        let owner = OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "minimal".into(),
            uid: uid.into(),
            controller: Some(true),
            ..OwnerReference::default()
        };
        ObjectMeta { owner_references: Some(vec![owner]), ..ObjectMeta::default() }
    }

    fn kept(desired: &ObjectMeta, live: &ObjectMeta) -> String {
        let mut desired = desired.clone();
        keep_served_owner_versions(&mut desired, live);
        desired.owner_references.expect("owners")[0].api_version.clone()
    }

    #[test]
    fn an_owner_reference_at_a_still_served_older_version_is_kept_and_any_other_is_current() {
        let desired = owned_by("prism.io/v1beta1", "PrismCluster", "u1");
        // Written by the first release, whose clusters were stored at v1alpha1 (still served).
        assert_eq!(kept(&desired, &owned_by("prism.io/v1alpha1", "PrismCluster", "u1")), "prism.io/v1alpha1");
        // A version this release does not serve, another owner, another kind: the current one.
        assert_eq!(kept(&desired, &owned_by("prism.io/v1alpha0", "PrismCluster", "u1")), "prism.io/v1beta1");
        assert_eq!(kept(&desired, &owned_by("prism.io/v1alpha1", "PrismCluster", "u2")), "prism.io/v1beta1");
        assert_eq!(kept(&desired, &owned_by("prism.io/v1alpha2", "PrismCluster", "u1")), "prism.io/v1beta1");
        let namespace = owned_by("prism.io/v1beta1", "PrismNamespace", "u1");
        assert_eq!(kept(&namespace, &owned_by("prism.io/v1alpha2", "PrismNamespace", "u1")), "prism.io/v1alpha2");
    }
}
