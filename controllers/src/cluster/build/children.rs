//! The cluster's child custom resources: a PrismPattern per `spec.patterns[]` entry and a
//! PrismNamespace per `spec.namespaces[]` entry, owned by the cluster.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{PrismNamespace, PrismNamespaceSpec};

use crate::cluster::validate::ValidatedCluster;
use crate::{children, meta, naming};

pub fn patterns(cluster: &ValidatedCluster, owner: &OwnerReference) -> Vec<PrismPattern> {
    cluster
        .spec
        .patterns
        .iter()
        .map(|entry| {
            let name = naming::cluster_pattern(&cluster.name, &entry.name);
            let mut pattern = PrismPattern::new(&name, children::pattern_spec(&cluster.name, entry, BTreeMap::new()));
            pattern.metadata =
                meta::object(&name, &cluster.namespace, meta::component_labels(&cluster.name, "pattern"), Some(owner));
            pattern
        })
        .collect()
}

pub fn namespaces(cluster: &ValidatedCluster, owner: &OwnerReference) -> Vec<PrismNamespace> {
    cluster
        .spec
        .namespaces
        .iter()
        .map(|entry| {
            let name = naming::cluster_namespace(&cluster.name, &entry.name);
            let spec = PrismNamespaceSpec {
                cluster: cluster.name.clone(),
                cluster_namespace: None,
                settings: entry.settings.clone(),
            };
            let mut namespace = PrismNamespace::new(&name, spec);
            namespace.metadata = meta::object(
                &name,
                &cluster.namespace,
                meta::component_labels(&cluster.name, "namespace"),
                Some(owner),
            );
            namespace
        })
        .collect()
}
