//! Semantic validation of a PrismCluster: what its schema cannot know.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use prism_api::common::PodOverrides;
use prism_api::v1beta1::BackendKind;
use prism_api::v1beta1::{PrismCluster, PrismClusterSpec};

/// A PrismCluster whose spec can be realised.
#[derive(Clone, Debug)]
pub struct ValidatedCluster {
    pub name: String,
    pub namespace: String,
    /// The cluster's uid: its own namespaces are the ones it controls.
    pub uid: String,
    pub spec: PrismClusterSpec,
    pub admin_overrides: Option<PodTemplateSpec>,
    pub proxy_overrides: Option<PodTemplateSpec>,
    pub backend_overrides: BTreeMap<BackendKind, PodTemplateSpec>,
}

/// Why a PrismCluster's spec cannot be realised, naming the field to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

pub fn validate(cluster: &PrismCluster) -> Result<ValidatedCluster, Invalid> {
    let spec = &cluster.spec;
    check_patterns(spec)?;
    check_namespaces(spec)?;
    let mut backend_overrides = BTreeMap::new();
    for (kind, backend) in spec.backends.enabled() {
        if let Some(t) =
            parse(backend.component.pod_overrides.as_ref(), &format!("spec.backends.{}.podOverrides", kind.as_str()))?
        {
            backend_overrides.insert(kind, t);
        }
    }
    Ok(ValidatedCluster {
        name: cluster.metadata.name.clone().unwrap_or_default(),
        namespace: cluster.metadata.namespace.clone().unwrap_or_default(),
        uid: cluster.metadata.uid.clone().unwrap_or_default(),
        admin_overrides: parse(spec.admin.component.pod_overrides.as_ref(), "spec.admin.podOverrides")?,
        proxy_overrides: parse(spec.proxy.component.pod_overrides.as_ref(), "spec.proxy.podOverrides")?,
        backend_overrides,
        spec: spec.clone(),
    })
}

impl ValidatedCluster {
    /// The cluster as a resource again (identity and spec, no status): what the tenancy judge reads.
    pub fn resource(&self) -> PrismCluster {
        let mut cluster = PrismCluster::new(&self.name, self.spec.clone());
        cluster.metadata.namespace = Some(self.namespace.clone());
        cluster.metadata.uid = Some(self.uid.clone());
        cluster
    }
}

fn parse(overrides: Option<&PodOverrides>, field: &str) -> Result<Option<PodTemplateSpec>, Invalid> {
    overrides.map(|o| o.template()).transpose().map_err(|e| Invalid {
        reason: "InvalidPodOverrides",
        message: format!("{field} is not a valid PodTemplateSpec: {e}"),
    })
}

fn check_patterns(spec: &PrismClusterSpec) -> Result<(), Invalid> {
    for (i, pattern) in spec.patterns.iter().enumerate() {
        let Some(pattern_type) = pattern.pattern_type() else {
            return Err(Invalid {
                reason: "UnknownPatternType",
                message: format!("spec.patterns[{i}].pattern is required: {:?} is not a pattern type", pattern.name),
            });
        };
        for backend in &pattern.runner.backends {
            if !pattern_type.supported_backends().contains(backend) {
                let supported: Vec<&str> = pattern_type.supported_backends().iter().map(|b| b.as_str()).collect();
                return Err(Invalid {
                    reason: "BackendNotSupported",
                    message: format!(
                        "spec.patterns[{i}].backends: pattern {} does not support backend {} (supported: {})",
                        pattern_type.as_str(),
                        backend.as_str(),
                        supported.join(", ")
                    ),
                });
            }
            let enabled = spec.backends.enabled().any(|(kind, _)| kind == *backend);
            if backend.is_service() && !enabled {
                return Err(Invalid {
                    reason: "BackendNotEnabled",
                    message: format!(
                        "spec.patterns[{i}].backends: {b} is used by pattern {:?} but spec.backends.{b}.enabled is not true",
                        pattern.name,
                        b = backend.as_str()
                    ),
                });
            }
        }
    }
    Ok(())
}

fn check_namespaces(spec: &PrismClusterSpec) -> Result<(), Invalid> {
    for (i, namespace) in spec.namespaces.iter().enumerate() {
        for pattern in &namespace.settings.patterns {
            if !spec.patterns.iter().any(|p| &p.name == pattern) {
                return Err(Invalid {
                    reason: "PatternNotFound",
                    message: format!("spec.namespaces[{i}].patterns: {pattern:?} is not one of spec.patterns[].name"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(yaml: &str) -> PrismCluster {
        serde_saphyr::from_str(yaml).expect("cluster")
    }

    #[test]
    fn the_sample_is_valid() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/prism-local.yaml"))
            .expect("sample");
        validate(&cluster(&text)).expect("valid");
    }

    #[test]
    fn a_pattern_on_a_disabled_backend_names_the_field_to_fix() {
        let c = cluster(
            r#"{"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster", "metadata": {"name": "c", "namespace": "n"},
                "spec": {"patterns": [{"name": "consumer", "backends": ["nats"]}]}}"#,
        );
        let invalid = validate(&c).unwrap_err();
        assert_eq!(invalid.reason, "BackendNotEnabled");
        assert!(invalid.message.contains("spec.backends.nats.enabled"), "{}", invalid.message);
    }

    #[test]
    fn a_namespace_using_an_unknown_pattern_is_invalid() {
        let c = cluster(
            r#"{"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster", "metadata": {"name": "c", "namespace": "n"},
                "spec": {"namespaces": [{"name": "orders", "patterns": ["keyvalue"]}]}}"#,
        );
        assert_eq!(validate(&c).unwrap_err().reason, "PatternNotFound");
    }
}
