//! PrismPattern v1alpha1 (the upstream Go operator's shape) <-> v1beta1.
//!
//! Going up, what v1alpha1 cannot say is defaulted: the cluster is the one the label
//! `prism.io/cluster` names, else [`DEFAULT_CLUSTER`]; the workload is a Deployment (what the
//! upstream operator creates); the one `backend` becomes the list of backends; the image
//! reference is split into registry, repository and tag. Going down, the first backend is the
//! `backend`; the rest, with the cluster, storage, ports, pod overrides and backend settings, stays
//! in the annotation. Upstream's `backendConfig` and `placement.strategy`, which v1beta1 does not
//! use, stay in the annotation of the v1beta1 object.

use crate::common::{ImageSpec, WorkloadKind};
use crate::names::{annotations, labels};
use crate::{v1alpha1 as old, v1beta1 as hub};

use super::Pair;

/// The PrismCluster a v1alpha1 PrismPattern runs on when its label `prism.io/cluster` names none.
pub const DEFAULT_CLUSTER: &str = "prism";

pub const PAIR: Pair<old::PrismPattern, hub::PrismPattern> =
    Pair { to_hub, to_old, old_fields: annotations::V1ALPHA1_FIELDS };

pub fn to_hub(o: &old::PrismPattern) -> hub::PrismPattern {
    let s = &o.spec;
    let cluster = o.metadata.labels.as_ref().and_then(|l| l.get(labels::CLUSTER)).map(String::as_str);
    let spec = hub::PrismPatternSpec {
        cluster: cluster.unwrap_or(DEFAULT_CLUSTER).to_string(),
        pattern_type: s.pattern,
        workload: WorkloadKind::Deployment,
        replicas: s.replicas,
        image: s.image.as_deref().map(parse_image),
        backends: s.backend.iter().map(|&name| hub::PatternBackend { name, config: Default::default() }).collect(),
        config: s.config.clone(),
        resources: s.resources.clone(),
        storage: None,
        autoscaling: s.autoscaling.as_ref().map(|a| {
            Box::new(hub::Autoscaling {
                enabled: a.enabled,
                scaler: a.scaler,
                min_replicas: a.min_replicas,
                max_replicas: a.max_replicas,
                target_cpu: a.target_cpu_utilization_percentage,
                target_memory: a.target_memory_utilization_percentage,
                behavior: a.behavior.clone(),
                metrics: a.metrics.clone(),
                triggers: a
                    .triggers
                    .iter()
                    .map(|t| hub::KedaTrigger {
                        trigger_type: t.trigger_type.clone(),
                        name: None,
                        metadata: t.metadata.clone(),
                        authentication_ref: t
                            .authentication_ref
                            .as_ref()
                            .map(|r| hub::KedaAuthenticationRef { name: r.name.clone(), kind: None }),
                    })
                    .collect(),
                polling_interval: a.polling_interval,
                cooldown_period: a.cooldown_period,
            })
        }),
        placement: s.placement.as_ref().map(|p| Box::new(p.scheduling.clone())),
        service: s.service.clone(),
        ports: None,
        pod_overrides: None,
    };
    let status = o.status.as_ref().map(|st| hub::PrismPatternStatus {
        phase: st.phase,
        replicas: st.replicas,
        available_replicas: st.available_replicas,
        selector: None,
        observed_generation: st.observed_generation,
        conditions: st.conditions.clone(),
    });
    hub::PrismPattern { metadata: o.metadata.clone(), spec, status }
}

pub fn to_old(h: &hub::PrismPattern) -> old::PrismPattern {
    let s = &h.spec;
    let spec = old::PrismPatternSpec {
        pattern: s.pattern_type,
        backend: s.backends.first().map(|b| b.name),
        image: s.image.as_ref().and_then(format_image),
        replicas: s.replicas,
        resources: s.resources.clone(),
        backend_config: None,
        config: s.config.clone(),
        service: s.service.clone(),
        autoscaling: s.autoscaling.as_ref().map(|a| old::UpstreamAutoscaling {
            enabled: a.enabled,
            scaler: a.scaler,
            min_replicas: a.min_replicas,
            max_replicas: a.max_replicas,
            target_cpu_utilization_percentage: a.target_cpu,
            target_memory_utilization_percentage: a.target_memory,
            metrics: a.metrics.clone(),
            behavior: a.behavior.clone(),
            triggers: a
                .triggers
                .iter()
                .map(|t| old::UpstreamTrigger {
                    trigger_type: t.trigger_type.clone(),
                    metadata: t.metadata.clone(),
                    authentication_ref: t
                        .authentication_ref
                        .as_ref()
                        .map(|r| old::UpstreamAuthenticationRef { name: r.name.clone() }),
                })
                .collect(),
            polling_interval: a.polling_interval,
            cooldown_period: a.cooldown_period,
        }),
        placement: s
            .placement
            .as_ref()
            .map(|p| old::UpstreamPlacement { strategy: None, scheduling: hub::Placement::clone(p) }),
    };
    let status = h.status.as_ref().map(|st| old::PrismPatternStatus {
        phase: st.phase,
        replicas: st.replicas,
        available_replicas: st.available_replicas,
        observed_generation: st.observed_generation,
        conditions: st.conditions.clone(),
    });
    old::PrismPattern { metadata: h.metadata.clone(), spec, status }
}

/// Splits an image reference into registry (only when the first path segment names a host, as
/// `ghcr.io` or `localhost:5000` do), repository and tag; [`format_image`] joins them back to the
/// same string. A reference without a registry resolves against the operator's registry
/// (ghcr.io), and one without a tag takes the operator's Prism version, not `latest`.
pub fn parse_image(reference: &str) -> ImageSpec {
    let (registry, rest) = match reference.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (Some(first.to_string()), rest)
        }
        _ => (None, reference),
    };
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag.to_string())),
        _ => (rest, None),
    };
    ImageSpec { registry, repository: Some(repository.to_string()), tag, ..ImageSpec::default() }
}

/// The reference `[registry/]repository[:tag]` of an image, or none when it names no part.
pub fn format_image(image: &ImageSpec) -> Option<String> {
    let registry = image.registry.as_deref().map(|r| format!("{r}/")).unwrap_or_default();
    let tag = image.tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default();
    let reference = format!("{registry}{}{tag}", image.repository.as_deref().unwrap_or_default());
    (!reference.is_empty()).then_some(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_and_join_back() {
        for reference in [
            "ghcr.io/prism/keyvalue-runner:0.1.0",
            "localhost:5000/runner",
            "redis:7-alpine",
            "prism/runner",
            "registry.example.com:443/a/b/c:v1",
        ] {
            assert_eq!(format_image(&parse_image(reference)).as_deref(), Some(reference));
        }
        let image = parse_image("ghcr.io/prism/keyvalue-runner:0.1.0");
        assert_eq!(
            (image.registry.as_deref(), image.repository.as_deref(), image.tag.as_deref()),
            (Some("ghcr.io"), Some("prism/keyvalue-runner"), Some("0.1.0"))
        );
        assert_eq!(parse_image("prism/runner").registry, None, "the first segment is not a host");
    }
}
