//! PrismCluster v1alpha1 <-> v1beta1: the pattern entries' `pattern`/`type` become `type`/
//! `workload` (as in PrismPattern), and the proxy's autoscaling takes the shared type (v1alpha1
//! has no place for its scaler, behavior, metrics and KEDA fields).

use crate::names::annotations;
use crate::{v1alpha1 as old, v1beta1 as hub};

use super::Pair;

pub const PAIR: Pair<old::PrismCluster, hub::PrismCluster> =
    Pair { to_hub, to_old, old_fields: annotations::V1ALPHA1_FIELDS };

pub fn to_hub(o: &old::PrismCluster) -> hub::PrismCluster {
    let s = &o.spec;
    let spec = hub::PrismClusterSpec {
        admin: s.admin.clone(),
        proxy: hub::ProxySpec {
            replicas: s.proxy.replicas,
            autoscaling: s.proxy.autoscaling.as_ref().map(|a| hub::Autoscaling {
                enabled: a.enabled,
                min_replicas: a.min_replicas,
                max_replicas: a.max_replicas,
                target_cpu: a.target_cpu,
                target_memory: a.target_memory,
                ..hub::Autoscaling::default()
            }),
            component: s.proxy.component.clone(),
        },
        patterns: s
            .patterns
            .iter()
            .map(|p| hub::ClusterPattern {
                name: p.name.clone(),
                pattern_type: p.pattern,
                workload: p.workload,
                runner: p.runner.clone(),
            })
            .collect(),
        namespaces: s.namespaces.clone(),
        backends: s.backends.clone(),
        ingress: s.ingress.clone(),
        observability: s.observability.clone(),
        paused: s.paused,
        deletion_policy: s.deletion_policy,
        // v1alpha1 has no tenancy: what it meant (same namespace only, no limits); a v1beta1
        // object's tenancy survives a trip through v1alpha1 in the annotation.
        tenancy: None,
    };
    hub::PrismCluster { metadata: o.metadata.clone(), spec, status: o.status.clone() }
}

pub fn to_old(h: &hub::PrismCluster) -> old::PrismCluster {
    let s = &h.spec;
    let spec = old::PrismClusterSpec {
        admin: s.admin.clone(),
        proxy: old::ProxySpec {
            replicas: s.proxy.replicas,
            autoscaling: s.proxy.autoscaling.as_ref().map(|a| old::ProxyAutoscaling {
                enabled: a.enabled,
                min_replicas: a.min_replicas,
                max_replicas: a.max_replicas,
                target_cpu: a.target_cpu,
                target_memory: a.target_memory,
            }),
            component: s.proxy.component.clone(),
        },
        patterns: s
            .patterns
            .iter()
            .map(|p| old::ClusterPattern {
                name: p.name.clone(),
                pattern: p.pattern_type,
                workload: p.workload,
                runner: p.runner.clone(),
            })
            .collect(),
        namespaces: s.namespaces.clone(),
        backends: s.backends.clone(),
        ingress: s.ingress.clone(),
        observability: s.observability.clone(),
        paused: s.paused,
        deletion_policy: s.deletion_policy,
    };
    old::PrismCluster { metadata: h.metadata.clone(), spec, status: h.status.clone() }
}
