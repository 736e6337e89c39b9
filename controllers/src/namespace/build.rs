//! The dedicated runners of a namespace-isolated PrismNamespace. Pure and infallible: it takes
//! only a validated namespace.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use prism_api::names::labels;
use prism_api::v1beta1::PrismPattern;

use super::validate::{ValidPattern, ValidatedNamespace};
use crate::{children, naming};

/// Configuration keys a dedicated runner gets on top of its cluster pattern's configuration, so
/// that the runner knows whose data it serves.
pub const CONFIG_ISOLATION: &str = "isolation";
pub const CONFIG_PRISM_NAMESPACE: &str = "prismNamespace";

/// The PrismPatterns dedicated to `valid`, each controlled by `owner` (the PrismNamespace), so
/// that they go with it and the cluster never prunes them as its own.
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
        namespace: Some(valid.namespace.clone()),
        labels: Some(runner_labels(valid, &pattern.runner)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    runner
}

/// A runner's labels plus the namespace it is dedicated to (how prune and the watch find it).
pub fn runner_labels(valid: &ValidatedNamespace, runner: &str) -> BTreeMap<String, String> {
    let mut all = naming::runner_labels(&valid.cluster, runner);
    all.insert(labels::NAMESPACE.to_string(), valid.name.clone());
    all
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
