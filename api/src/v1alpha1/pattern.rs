use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use crate::common::{BackendKind, PatternPhase, PatternType, Placement, RunnerService, Scaler};
use crate::common::{Condition, Resources, conditions_schema};

/// A pattern runner in the upstream Go operator's shape (prism-operator, `prism.io/v1alpha1`), so
/// that its users' manifests keep working: one backend, the image as one reference, KEDA triggers
/// with a named authentication. Served and converted to v1beta1, where the runner also has a
/// cluster, a workload kind, several backends, storage, ports and pod overrides.
// Printer columns repeat `type_ = "string"`: clippy reads them as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "prism.io",
    version = "v1alpha1",
    kind = "PrismPattern",
    plural = "prismpatterns",
    singular = "prismpattern",
    shortname = "ppat",
    category = "prism",
    namespaced,
    status = "PrismPatternStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(
        name = "Pattern",
        type_ = "string",
        json_path = ".spec.pattern",
        description = "Pattern the runner serves"
    ),
    printcolumn(name = "Backend", type_ = "string", json_path = ".spec.backend"),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Observed replicas"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas",
        description = "Replicas ready to serve"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PrismPatternSpec {
    /// The pattern this runner serves.
    pub pattern: PatternType,
    /// The backend the runner uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendKind>,
    /// Image reference of the runner, e.g. `ghcr.io/prism/keyvalue-runner:0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Desired replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Compute resources of the runner container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// The upstream PrismBackend holding the backend's configuration (kept; this operator takes
    /// backends from the PrismCluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_config: Option<BackendConfigRef>,
    /// Pattern settings passed to the runner's configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// The runner's Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<RunnerService>,
    /// Horizontal autoscaling with an HPA or a KEDA ScaledObject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<UpstreamAutoscaling>,
    /// Where the runner's pods are scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<UpstreamPlacement>,
}

/// Reference to an upstream PrismBackend object.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendConfigRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Autoscaling as the upstream operator names it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamAutoscaling {
    #[serde(default)]
    pub enabled: bool,
    /// `hpa` (default) or `keda`.
    #[serde(default)]
    pub scaler: Scaler,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: Option<i32>,
    #[serde(rename = "targetCPUUtilizationPercentage", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_utilization_percentage: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_memory_utilization_percentage: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub metrics: Vec<MetricSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub triggers: Vec<UpstreamTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub polling_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub cooldown_period: Option<i32>,
}

/// A KEDA trigger as the upstream operator names it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamTrigger {
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub trigger_type: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<UpstreamAuthenticationRef>,
}

/// A KEDA TriggerAuthentication by name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamAuthenticationRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Placement as the upstream operator names it: a free-form strategy beside the scheduling fields.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamPlacement {
    /// A placement strategy name (kept; scheduling follows the fields below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(flatten)]
    pub scheduling: Placement,
}

/// Observed state of a PrismPattern, as the upstream operator reports it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrismPatternStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PatternPhase>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub available_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
