use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::common::{BackendKind, PatternType, WorkloadKind};
use crate::common::{Condition, ImageSpec, PodOverrides, VolumeSpec, conditions_schema};

/// One Prism pattern runner: the workload that runs a pattern (keyvalue, consumer, ...) against
/// its backends. Created by a PrismCluster for each of its `spec.patterns`, by a PrismNamespace
/// for dedicated runners, or directly; fields its creator does not set are free for kubectl tuning.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "prism.io",
    version = "v1beta1",
    kind = "PrismPattern",
    plural = "prismpatterns",
    singular = "prismpattern",
    shortname = "ppat",
    category = "prism",
    namespaced,
    status = "PrismPatternStatus",
    derive = "PartialEq",
    derive = "Default",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type", description = "Pattern the runner serves"),
    printcolumn(name = "Workload", type_ = "string", json_path = ".spec.workload", description = "Deployment or StatefulSet"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas", description = "Observed replicas"),
    printcolumn(name = "Available", type_ = "integer", json_path = ".status.availableReplicas", description = "Replicas ready to serve"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    selectable = ".spec.cluster",
    validation = kube::core::Rule::new(
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 52"
    ).message("metadata.name must be a lowercase DNS-1035 label of at most 52 characters: it names the runner's workload, Service and pods")
)]
#[serde(rename_all = "camelCase")]
pub struct PrismPatternSpec {
    /// Name of the PrismCluster (same namespace) whose backends and proxy this runner uses.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec.cluster is immutable: a pattern cannot move to another PrismCluster"))]
    pub cluster: String,

    /// The pattern this runner serves.
    #[serde(rename = "type")]
    pub pattern_type: PatternType,

    /// Workload kind of the runner. StatefulSet gives each replica its own volume.
    #[serde(default)]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec.workload is immutable: delete and recreate the PrismPattern to change its workload kind"))]
    pub workload: WorkloadKind,

    /// Desired replicas. Ignored while autoscaling is enabled (the autoscaler owns the count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Image of the runner; the operator's default for the pattern type where unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,

    /// Backends the runner uses, each with driver settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub backends: Vec<PatternBackend>,

    /// Pattern settings passed to the runner's configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// Compute resources of the runner container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// A volume per replica (StatefulSet only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<VolumeSpec>,

    /// Horizontal autoscaling with an HPA or a KEDA ScaledObject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<PatternAutoscaling>,

    /// Where the runner's pods are scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,

    /// The runner's Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<RunnerService>,

    /// The ports the runner's process listens on, for images that do not use the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<RunnerPorts>,

    /// Pod template fields merged over what the operator builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_overrides: Option<PodOverrides>,
}

/// One backend of a runner and its driver settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PatternBackend {
    /// The backend.
    pub name: BackendKind,
    /// Driver settings (e.g. maxConnections), passed to the runner's configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// Autoscaling of a runner (field meanings as in the upstream Go operator).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!self.enabled || has(self.maxReplicas)").message("spec.autoscaling.maxReplicas is required when autoscaling is enabled").field_path(".maxReplicas"),
    validation = kube::core::Rule::new("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas").message("spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas").field_path(".minReplicas"),
    validation = kube::core::Rule::new("self.scaler != 'hpa' || !has(self.minReplicas) || self.minReplicas >= 1").message("spec.autoscaling.minReplicas must be at least 1 with the hpa scaler (scale to zero needs keda)").field_path(".minReplicas"),
    validation = kube::core::Rule::new("!self.enabled || self.scaler != 'hpa' || has(self.targetCPU) || has(self.targetMemory) || (has(self.metrics) && size(self.metrics) > 0)").message("spec.autoscaling needs targetCPU, targetMemory or metrics with the hpa scaler"),
    validation = kube::core::Rule::new("!self.enabled || self.scaler != 'keda' || has(self.targetCPU) || has(self.targetMemory) || (has(self.triggers) && size(self.triggers) > 0)").message("spec.autoscaling needs triggers, targetCPU or targetMemory with the keda scaler"),
)]
pub struct PatternAutoscaling {
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

/// Ports of a runner's container (defaults: gRPC 8982, metrics 9092, health 9093).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunnerPorts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub grpc: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub metrics: Option<i32>,
    /// Serves /health (liveness) and /ready (readiness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub health: Option<i32>,
}

/// Kubernetes Service type.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// Observed state of a PrismPattern.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrismPatternStatus {
    /// Pending, Progressing, Running, Degraded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PatternPhase>,
    /// Replicas of the runner workload (for the scale subresource).
    #[serde(default)]
    pub replicas: i32,
    /// Replicas ready to serve.
    #[serde(default)]
    pub available_replicas: i32,
    /// Label selector of the runner's pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The generation of the PrismPattern this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, BackendsReady and SpecValid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
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
