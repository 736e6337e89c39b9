use kube::KubeSchema;
use serde::{Deserialize, Serialize};

pub use crate::common::{
    AdminSpec, AdminStorage, AdminStorageType, BackendService, Backends, ClusterNamespace, ClusterPhase,
    ClusterRunnerSettings, ComponentStatus, DeletionPolicy, GrafanaSpec, IngressSpec, LokiSpec, NamespaceSummary,
    ObservabilitySpec, PrismClusterStatus, PrometheusSpec,
};
use crate::common::{ComponentSpec, PatternType, WorkloadKind, one};

crate::common::prism_cluster_version!("v1alpha1", {});

/// The proxy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// Replicas when autoscaling is off.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<ProxyAutoscaling>,
    /// Resources, image and pod overrides.
    #[serde(flatten)]
    pub component: ComponentSpec,
}

impl Default for ProxySpec {
    fn default() -> Self {
        ProxySpec { replicas: 1, autoscaling: None, component: ComponentSpec::default() }
    }
}

/// Autoscaling of the proxy with a HorizontalPodAutoscaler.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!self.enabled || has(self.maxReplicas)").message("spec.proxy.autoscaling.maxReplicas is required when autoscaling is enabled").field_path(".maxReplicas"),
    validation = kube::core::Rule::new("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas").message("spec.proxy.autoscaling.minReplicas must not exceed spec.proxy.autoscaling.maxReplicas").field_path(".minReplicas"),
    validation = kube::core::Rule::new("!self.enabled || has(self.targetCPU) || has(self.targetMemory)").message("spec.proxy.autoscaling needs targetCPU or targetMemory when enabled"),
)]
pub struct ProxyAutoscaling {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: Option<i32>,
    /// Target average CPU utilization, percent of requests.
    #[serde(rename = "targetCPU", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu: Option<i32>,
    /// Target average memory utilization, percent of requests.
    #[serde(rename = "targetMemory", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_memory: Option<i32>,
}

/// A pattern runner of the cluster, materialised as a child PrismPattern.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("has(self.pattern) || self.name in ['keyvalue', 'consumer', 'producer', 'mailbox', 'multicast-registry', 'claimcheck']")
        .message("spec.patterns[].pattern is required when the name is not a pattern type (keyvalue, consumer, producer, mailbox, multicast-registry, claimcheck)")
        .field_path(".pattern"),
    validation = kube::core::Rule::new("!has(self.storage) || self.type == 'StatefulSet'")
        .message("spec.patterns[].storage requires type StatefulSet: each replica gets its own volume")
        .field_path(".storage"),
)]
pub struct ClusterPattern {
    /// Name of the pattern in this cluster (the runner is named `<cluster>-<name>`).
    #[schemars(length(min = 1, max = 20), pattern(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// The pattern type; defaults to the name when the name is a pattern type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<PatternType>,
    /// Workload kind of the runner.
    #[serde(rename = "type", default)]
    pub workload: WorkloadKind,
    /// Replicas, backends, storage, resources, image and configuration of the runner.
    #[serde(flatten)]
    pub runner: ClusterRunnerSettings,
}

impl ClusterPattern {
    /// The pattern type: explicit, or named by the entry's name (the schema requires one of them).
    pub fn pattern_type(&self) -> Option<PatternType> {
        self.pattern.or_else(|| PatternType::from_name(&self.name))
    }
}
