//! What a served PrismNamespace gets: the dedicated runners of a namespace-isolated one, and the
//! connection details its app team's clients read. Pure and infallible: it takes only a validated
//! namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use prism_api::names::labels;
use prism_api::v1beta1::{Connection, PrismPattern};
use serde::Serialize;

use super::validate::{ValidPattern, ValidatedNamespace};
use crate::{children, meta, naming, ports};

/// Configuration keys a dedicated runner gets on top of its cluster pattern's configuration, so
/// that the runner knows whose data it serves.
pub const CONFIG_ISOLATION: &str = "isolation";
pub const CONFIG_PRISM_NAMESPACE: &str = "prismNamespace";

/// The PrismPatterns dedicated to `valid`, each controlled by `owner` (the PrismNamespace), so
/// that they go with it and the cluster never prunes them as its own. A tenant's run in its
/// cluster's namespace (they use the backends' credentials, which never leave it), tied to the
/// PrismNamespace by labels instead: the namespace's finalizer deletes them, and the cluster
/// sweeps those whose tenant is gone.
pub fn dedicated_runners(valid: &ValidatedNamespace, owner: &OwnerReference) -> Vec<PrismPattern> {
    valid.dedicated().map(|pattern| dedicated_runner(valid, pattern, owner)).collect()
}

fn dedicated_runner(valid: &ValidatedNamespace, pattern: &ValidPattern, owner: &OwnerReference) -> PrismPattern {
    let extra = BTreeMap::from([
        (CONFIG_ISOLATION.to_string(), valid.isolation.as_str().to_string()),
        (CONFIG_PRISM_NAMESPACE.to_string(), valid.name.clone()),
    ]);
    let mut runner = PrismPattern::new(&pattern.runner, children::pattern_spec(&valid.cluster, &pattern.entry, extra));
    runner.metadata = ObjectMeta {
        name: Some(pattern.runner.clone()),
        namespace: Some(valid.cluster_namespace.clone()),
        labels: Some(runner_labels(valid, &pattern.runner)),
        owner_references: (!valid.tenant).then(|| vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    runner
}

/// A runner's labels plus the namespace it is dedicated to (how prune and the watch find it),
/// and for a tenant's, what ties it to its PrismNamespace.
pub fn runner_labels(valid: &ValidatedNamespace, runner: &str) -> BTreeMap<String, String> {
    let mut all = naming::runner_labels(&valid.cluster, runner);
    all.insert(labels::NAMESPACE.to_string(), valid.name.clone());
    if valid.tenant {
        all.extend(tenant_labels(valid));
    }
    all
}

/// What ties a tenant's runners to its PrismNamespace: selects them for its sweep.
pub fn tenant_labels(valid: &ValidatedNamespace) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::TENANT_NAMESPACE.to_string(), valid.namespace.clone()),
        (labels::TENANT_UID.to_string(), valid.uid.clone()),
    ])
}

/// Keys of the connection ConfigMap, for `envFrom` (no credentials: the proxy authenticates
/// clients itself).
pub const CONNECTION_ADDRESS: &str = "PRISM_PROXY_ADDRESS";
pub const CONNECTION_HOST: &str = "PRISM_PROXY_HOST";
pub const CONNECTION_PORT: &str = "PRISM_PROXY_PORT";
pub const CONNECTION_NAMESPACE: &str = "PRISM_NAMESPACE";
pub const CONNECTION_PATTERNS: &str = "PRISM_PATTERNS";
/// The patterns with their type and endpoint, as JSON.
pub const CONNECTION_PATTERNS_JSON: &str = "patterns.json";

/// The `app.kubernetes.io/component` of connection ConfigMaps (how their watch selects them).
pub const CONNECTION_COMPONENT: &str = "connection";

/// One pattern of a namespace, as its clients see it.
#[derive(Serialize)]
struct ClientPattern<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    pattern_type: &'a str,
    endpoint: &'a str,
}

/// Where `valid`'s clients connect: the status's and the ConfigMap's account of it.
pub fn connection(valid: &ValidatedNamespace) -> Connection {
    Connection { config_map: naming::connection_config(&valid.name), endpoint: proxy_address(valid) }
}

fn proxy_host(valid: &ValidatedNamespace) -> String {
    format!("{}.{}.svc", naming::proxy_service(&valid.cluster), valid.cluster_namespace)
}

fn proxy_address(valid: &ValidatedNamespace) -> String {
    format!("{}:{}", proxy_host(valid), ports::PROXY_GRPC)
}

/// The connection details of `valid` in its own namespace, controlled by `owner` (the
/// PrismNamespace): the proxy's address, the Prism namespace's name, its patterns and their
/// endpoint.
pub fn connection_config_map(valid: &ValidatedNamespace, owner: &OwnerReference) -> ConfigMap {
    let address = proxy_address(valid);
    let patterns: Vec<ClientPattern> = valid
        .patterns
        .iter()
        .map(|p| ClientPattern {
            name: &p.entry.name,
            pattern_type: p.entry.pattern_type().map_or("", |t| t.as_str()),
            endpoint: &address,
        })
        .collect();
    let names: Vec<&str> = valid.patterns.iter().map(|p| p.entry.name.as_str()).collect();
    let data = BTreeMap::from([
        (CONNECTION_ADDRESS.to_string(), address.clone()),
        (CONNECTION_HOST.to_string(), proxy_host(valid)),
        (CONNECTION_PORT.to_string(), ports::PROXY_GRPC.to_string()),
        (CONNECTION_NAMESPACE.to_string(), valid.name.clone()),
        (CONNECTION_PATTERNS.to_string(), names.join(",")),
        (CONNECTION_PATTERNS_JSON.to_string(), serde_json::to_string(&patterns).unwrap_or_default()),
    ]);
    ConfigMap {
        metadata: meta::object(
            &naming::connection_config(&valid.name),
            &valid.namespace,
            connection_labels(&valid.name),
            Some(owner),
        ),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// Labels of a namespace's connection ConfigMap (no cluster label: it is not the cluster's child).
pub fn connection_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_string(), "prism".to_string()),
        (labels::COMPONENT.to_string(), CONNECTION_COMPONENT.to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string()),
        (labels::NAMESPACE.to_string(), name.to_string()),
    ])
}

/// The label selector of the runners dedicated to PrismNamespace `name`.
pub fn dedicated_selector(name: &str) -> String {
    format!("{}={name},{}={}", labels::NAMESPACE, labels::MANAGED_BY, labels::MANAGED_BY_VALUE)
}

#[cfg(test)]
mod tests {
    use kube::Resource;
    use prism_api::v1beta1::Isolation;

    use super::*;
    use crate::namespace::fixtures::{cluster, namespace};
    use crate::namespace::validate::validate;

    fn owner() -> OwnerReference {
        namespace(&[], Isolation::Namespace).controller_owner_ref(&()).expect("owner")
    }

    #[test]
    fn namespace_isolation_gets_one_owned_runner_per_pattern_from_the_cluster_entry() {
        let ns = namespace(&["keyvalue", "consumer"], Isolation::Namespace);
        let valid = validate(&ns, Some(&cluster(&["keyvalue", "consumer", "producer"]))).expect("valid");
        let runners = dedicated_runners(&valid, &owner());
        let names: Vec<String> = runners.iter().map(|r| r.metadata.name.clone().unwrap_or_default()).collect();
        assert_eq!(names, ["orders-keyvalue", "orders-consumer"]);
        let kv = &runners[0];
        assert_eq!(kv.spec.cluster, "prod");
        assert_eq!(kv.spec.replicas, Some(2), "the cluster entry's settings");
        assert_eq!(kv.spec.config.get("isolation").map(String::as_str), Some("namespace"));
        assert_eq!(kv.spec.config.get("prismNamespace").map(String::as_str), Some("orders"));
        let labels = kv.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("prism.io/namespace").map(String::as_str), Some("orders"));
        assert_eq!(labels.get("prism.io/cluster").map(String::as_str), Some("prod"));
        assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("prism-operator"));
        let owners = kv.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!((owners[0].kind.as_str(), owners[0].controller), ("PrismNamespace", Some(true)));
    }

    #[test]
    fn shared_isolation_builds_nothing() {
        for isolation in [Isolation::None, Isolation::Session] {
            let valid = validate(&namespace(&["keyvalue"], isolation), Some(&cluster(&["keyvalue"]))).expect("valid");
            assert!(dedicated_runners(&valid, &owner()).is_empty());
        }
    }

    #[test]
    fn building_twice_gives_the_same_objects() {
        let valid =
            validate(&namespace(&["keyvalue"], Isolation::Namespace), Some(&cluster(&["keyvalue"]))).expect("valid");
        assert_eq!(dedicated_runners(&valid, &owner()), dedicated_runners(&valid, &owner()));
    }
}
