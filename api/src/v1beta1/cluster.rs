use kube::KubeSchema;
use serde::{Deserialize, Serialize};

pub use crate::common::{
    AdminSpec, AdminStorage, AdminStorageType, Autoscaling, BackendService, Backends, ClusterNamespace, ClusterPhase,
    ClusterRunnerSettings, ComponentStatus, DeletionPolicy, GrafanaSpec, IngressSpec, LokiSpec, NamespaceSummary,
    ObservabilitySpec, PrismClusterStatus, PrometheusSpec,
};
use crate::common::{ComponentSpec, PatternType, WorkloadKind, one};

crate::common::prism_cluster_version!("v1beta1", {
    /// Which namespaces may attach PrismNamespaces to this cluster, and the limits of what each
    /// may ask. Unset: PrismNamespaces of the cluster's own namespace only, without limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<super::Tenancy>,
});

/// The proxy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!has(self.autoscaling) || self.autoscaling.scaler == 'hpa'")
    .message("spec.proxy.autoscaling.scaler must be hpa: the proxy scales with a HorizontalPodAutoscaler")
    .field_path(".autoscaling.scaler"))]
pub struct ProxySpec {
    /// Replicas when autoscaling is off.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// Autoscaling with a HorizontalPodAutoscaler: the same type as a PrismPattern's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// Resources, image and pod overrides.
    #[serde(flatten)]
    pub component: ComponentSpec,
}

impl Default for ProxySpec {
    fn default() -> Self {
        ProxySpec { replicas: 1, autoscaling: None, component: ComponentSpec::default() }
    }
}

/// A pattern runner of the cluster, materialised as a child PrismPattern.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("has(self.type) || self.name in ['keyvalue', 'consumer', 'producer', 'mailbox', 'multicast-registry', 'claimcheck']")
        .message("spec.patterns[].type is required when the name is not a pattern type (keyvalue, consumer, producer, mailbox, multicast-registry, claimcheck)")
        .field_path(".type"),
    validation = kube::core::Rule::new("!has(self.storage) || self.workload == 'StatefulSet'")
        .message("spec.patterns[].storage requires workload StatefulSet: each replica gets its own volume")
        .field_path(".storage"),
)]
pub struct ClusterPattern {
    /// Name of the pattern in this cluster (the runner is named `<cluster>-<name>`).
    #[schemars(length(min = 1, max = 20), pattern(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// The pattern type, as in PrismPattern; defaults to the name when the name is a pattern type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<PatternType>,
    /// Workload kind of the runner, as in PrismPattern.
    #[serde(default)]
    pub workload: WorkloadKind,
    /// Replicas, backends, storage, resources, image and configuration of the runner.
    #[serde(flatten)]
    pub runner: ClusterRunnerSettings,
}

impl ClusterPattern {
    /// The pattern type: explicit, or named by the entry's name (the schema requires one of them).
    pub fn pattern_type(&self) -> Option<PatternType> {
        self.pattern_type.or_else(|| PatternType::from_name(&self.name))
    }
}
