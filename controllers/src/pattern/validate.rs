//! Semantic validation of a PrismPattern against its PrismCluster: what the schema cannot know.
//! Pure: the reconcile reads, this decides.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use prism_api::v1beta1::{BackendKind, PrismPattern, PrismPatternSpec};
use prism_api::v1beta1::{DeletionPolicy, PrismCluster};

use crate::conditions::Problem;

/// A PrismPattern that can be built: its cluster exists and has every backend it needs.
#[derive(Clone, Debug)]
pub struct ValidatedPattern {
    pub name: String,
    pub namespace: String,
    pub spec: PrismPatternSpec,
    /// Backends that are services of the cluster (the runner waits for them to be ready).
    pub service_backends: Vec<BackendKind>,
    pub overrides: Option<PodTemplateSpec>,
    /// The owning cluster's data policy, for the runner's volumes.
    pub deletion_policy: DeletionPolicy,
}

/// Checks `pattern` against its cluster (`None` when the named PrismCluster does not exist).
pub fn validate(pattern: &PrismPattern, cluster: Option<&PrismCluster>) -> Result<ValidatedPattern, Problem> {
    let name = pattern.metadata.name.clone().unwrap_or_default();
    let namespace = pattern.metadata.namespace.clone().unwrap_or_default();
    let spec = &pattern.spec;
    let Some(cluster) = cluster else {
        return Err(Problem {
            reason: "ClusterNotFound",
            message: format!(
                "PrismCluster {:?} does not exist in namespace {namespace:?}: create it or fix spec.cluster",
                spec.cluster
            ),
            transient: true,
        });
    };
    check_backends(spec, cluster)?;
    let overrides = match &spec.pod_overrides {
        Some(raw) => Some(raw.template().map_err(|e| {
            Problem::spec("InvalidPodOverrides", format!("spec.podOverrides is not a valid PodTemplateSpec: {e}"))
        })?),
        None => None,
    };
    Ok(ValidatedPattern {
        name,
        namespace,
        spec: spec.clone(),
        service_backends: spec.backends.iter().map(|b| b.name).filter(|b| b.is_service()).collect(),
        overrides,
        deletion_policy: cluster.spec.deletion_policy,
    })
}

fn check_backends(spec: &PrismPatternSpec, cluster: &PrismCluster) -> Result<(), Problem> {
    let supported = spec.pattern_type.supported_backends();
    for backend in spec.backends.iter().map(|b| b.name) {
        if !supported.contains(&backend) {
            let names: Vec<&str> = supported.iter().map(|b| b.as_str()).collect();
            return Err(Problem::spec(
                "BackendNotSupported",
                format!(
                    "spec.backends: pattern {} does not support backend {} (supported: {})",
                    spec.pattern_type.as_str(),
                    backend.as_str(),
                    names.join(", ")
                ),
            ));
        }
        let enabled = cluster.spec.backends.enabled().any(|(kind, _)| kind == backend);
        if backend.is_service() && !enabled {
            return Err(Problem::spec(
                "BackendNotEnabled",
                format!(
                    "spec.backends: backend {b} is not enabled in PrismCluster {c:?}: set spec.backends.{b}.enabled there",
                    b = backend.as_str(),
                    c = spec.cluster
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use prism_api::v1beta1::{BackendService, PrismClusterSpec};
    use prism_api::v1beta1::{PatternBackend, PatternType};

    use super::*;

    fn pattern(pattern_type: PatternType, backends: &[BackendKind]) -> PrismPattern {
        let mut p = PrismPattern::new(
            "kv",
            PrismPatternSpec {
                cluster: "prod".into(),
                pattern_type,
                backends: backends.iter().map(|&name| PatternBackend { name, config: Default::default() }).collect(),
                ..PrismPatternSpec::default()
            },
        );
        p.metadata.namespace = Some("prism".into());
        p
    }

    fn cluster_with_redis() -> PrismCluster {
        let mut spec = PrismClusterSpec::default();
        spec.backends.redis =
            Some(Box::new(BackendService { enabled: true, version: Some("7".into()), ..Default::default() }));
        PrismCluster::new("prod", spec)
    }

    #[test]
    fn a_missing_cluster_is_transient() {
        let problem = validate(&pattern(PatternType::KeyValue, &[]), None).unwrap_err();
        assert_eq!(problem.reason, "ClusterNotFound");
        assert!(problem.transient);
    }

    #[test]
    fn backends_must_be_supported_and_enabled() {
        let cluster = cluster_with_redis();
        let unsupported = validate(&pattern(PatternType::KeyValue, &[BackendKind::Nats]), Some(&cluster)).unwrap_err();
        assert_eq!(unsupported.reason, "BackendNotSupported");
        assert!(unsupported.message.contains("supported: memstore, redis"), "{}", unsupported.message);
        let disabled = validate(&pattern(PatternType::Producer, &[BackendKind::Nats]), Some(&cluster)).unwrap_err();
        assert_eq!(disabled.reason, "BackendNotEnabled");
        assert!(disabled.message.contains("spec.backends.nats.enabled"));
        let ok = validate(&pattern(PatternType::KeyValue, &[BackendKind::Redis]), Some(&cluster)).expect("valid");
        assert_eq!(ok.service_backends, vec![BackendKind::Redis]);
    }

    #[test]
    fn malformed_pod_overrides_are_reported_with_the_field() {
        let mut p = pattern(PatternType::KeyValue, &[]);
        p.spec.pod_overrides = Some(prism_api::common::PodOverrides(
            serde_json::json!({"spec": {"containers": "not a list"}}).as_object().cloned().unwrap_or_default(),
        ));
        let problem = validate(&p, Some(&cluster_with_redis())).unwrap_err();
        assert_eq!(problem.reason, "InvalidPodOverrides");
        assert!(problem.message.starts_with("spec.podOverrides"));
    }
}
