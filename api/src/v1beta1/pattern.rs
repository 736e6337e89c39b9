use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use crate::common::{
    Autoscaling, BackendKind, KedaAuthenticationKind, KedaAuthenticationRef, KedaTrigger, PatternPhase, PatternType,
    Placement, RunnerService, Scaler, ServiceType, WorkloadKind,
};
use crate::common::{Condition, ImageSpec, PodOverrides, Resources, VolumeSpec, conditions_schema};

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
    pub resources: Option<Resources>,

    /// A volume per replica (StatefulSet only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<VolumeSpec>,

    /// Horizontal autoscaling with an HPA or a KEDA ScaledObject.
    // Boxed, as `placement`: rarely set, and 264 bytes each inline in every cached PrismPattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Box<Autoscaling>>,

    /// Where the runner's pods are scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Box<Placement>>,

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
