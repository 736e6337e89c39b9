//! What a pattern runner and the proxy share across versions: autoscaling, placement, the
//! runner's Service and the runner's phase.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use k8s_openapi::api::core::v1::{Affinity, Toleration, TopologySpreadConstraint};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Horizontal autoscaling of a workload (a pattern runner or the proxy); field meanings as in the
/// upstream Go operator. The messages name the field relative to `autoscaling`: the path of the
/// error says where it is.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!self.enabled || has(self.maxReplicas)").message("autoscaling.maxReplicas is required when autoscaling is enabled").field_path(".maxReplicas"),
    validation = kube::core::Rule::new("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas").field_path(".minReplicas"),
    validation = kube::core::Rule::new("self.scaler != 'hpa' || !has(self.minReplicas) || self.minReplicas >= 1").message("autoscaling.minReplicas must be at least 1 with the hpa scaler (scale to zero needs keda)").field_path(".minReplicas"),
    validation = kube::core::Rule::new("!self.enabled || self.scaler != 'hpa' || has(self.targetCPU) || has(self.targetMemory) || (has(self.metrics) && size(self.metrics) > 0)").message("autoscaling needs targetCPU, targetMemory or metrics with the hpa scaler"),
    validation = kube::core::Rule::new("!self.enabled || self.scaler != 'keda' || has(self.targetCPU) || has(self.targetMemory) || (has(self.triggers) && size(self.triggers) > 0)").message("autoscaling needs triggers, targetCPU or targetMemory with the keda scaler"),
)]
pub struct Autoscaling {
    /// Whether the runner is autoscaled. While it is, the operator never sets the workload's replicas.
    #[serde(default)]
    pub enabled: bool,
    /// Which autoscaler: an autoscaling/v2 HorizontalPodAutoscaler or a KEDA ScaledObject.
    #[serde(default)]
    pub scaler: Scaler,
    /// Lower bound of replicas (default 1; 0 allowed with keda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub min_replicas: Option<i32>,
    /// Upper bound of replicas.
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
    /// HPA scaling behavior (hpa scaler; also passed to KEDA's advanced section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
    /// Extra HPA metrics (hpa scaler).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub metrics: Vec<MetricSpec>,
    /// KEDA triggers (keda scaler).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub triggers: Vec<KedaTrigger>,
    /// KEDA polling interval in seconds (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub polling_interval: Option<i32>,
    /// KEDA cooldown period in seconds before scaling to minReplicas (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub cooldown_period: Option<i32>,
}

/// Which autoscaler drives a runner.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scaler {
    #[default]
    Hpa,
    Keda,
}

/// A KEDA ScaledObject trigger.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KedaTrigger {
    /// Scaler type, e.g. `nats-jetstream`, `redis`, `kafka`, `prometheus`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub trigger_type: String,
    /// Optional trigger name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scaler settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// A KEDA TriggerAuthentication (or ClusterTriggerAuthentication) holding the scaler's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<KedaAuthenticationRef>,
}

/// Reference to a KEDA TriggerAuthentication.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KedaAuthenticationRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// `TriggerAuthentication` (default) or `ClusterTriggerAuthentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<KedaAuthenticationKind>,
}

/// Kind of a KEDA authentication object.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KedaAuthenticationKind {
    TriggerAuthentication,
    ClusterTriggerAuthentication,
}

/// Scheduling of a runner's pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
}

/// The runner's Service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunnerService {
    /// Service type.
    #[serde(rename = "type", default)]
    pub service_type: ServiceType,
    /// Port of the Service's `grpc` port (default 8982, the runner's gRPC port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// Lifecycle phase of a runner.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternPhase {
    Pending,
    Progressing,
    Running,
    Degraded,
    Failed,
}

/// Kubernetes Service type.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}
