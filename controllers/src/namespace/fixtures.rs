//! Small objects for the pure tests of the namespace controller.

use prism_api::v1beta1::{Isolation, NamespaceSettings, PrismNamespace, PrismNamespaceSpec};
use prism_api::v1beta1::{PrismCluster, PrismClusterSpec};

/// PrismCluster `prod` in namespace `prism` defining `patterns` (each named by its type).
pub fn cluster(patterns: &[&str]) -> PrismCluster {
    let entries = patterns
        .iter()
        .map(|name| serde_json::from_value(serde_json::json!({"name": name, "replicas": 2})).expect("pattern entry"))
        .collect();
    let mut cluster = PrismCluster::new("prod", PrismClusterSpec { patterns: entries, ..PrismClusterSpec::default() });
    cluster.metadata.namespace = Some("prism".into());
    cluster
}

/// PrismNamespace `orders` of cluster `prod`, with a uid (as a stored object has).
pub fn namespace(patterns: &[&str], isolation: Isolation) -> PrismNamespace {
    let settings =
        NamespaceSettings { patterns: patterns.iter().map(|p| p.to_string()).collect(), isolation, quota: None };
    let mut ns =
        PrismNamespace::new("orders", PrismNamespaceSpec { cluster: "prod".into(), cluster_namespace: None, settings });
    ns.metadata.namespace = Some("prism".into());
    ns.metadata.uid = Some("uid-orders".into());
    ns
}
