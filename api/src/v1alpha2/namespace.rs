use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, conditions_schema};

/// An app team's Prism namespace: the logical dataset its clients address through the proxy, the
/// patterns it uses on a PrismCluster, its isolation and its quota.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "prism.io",
    version = "v1alpha2",
    kind = "PrismNamespace",
    plural = "prismnamespaces",
    singular = "prismnamespace",
    shortname = "pns",
    category = "prism",
    namespaced,
    status = "PrismNamespaceStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster", description = "The PrismCluster serving this namespace"),
    printcolumn(name = "Isolation", type_ = "string", json_path = ".spec.isolation"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    selectable = ".spec.cluster",
    validation = kube::core::Rule::new(
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63"
    ).message("metadata.name must be a lowercase DNS-1035 label (at most 63 characters): it names the namespace in the proxy's routes and labels")
)]
#[serde(rename_all = "camelCase")]
pub struct PrismNamespaceSpec {
    /// Name of the PrismCluster (same namespace) that serves this namespace.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec.cluster is immutable: create a new PrismNamespace on the other cluster"))]
    pub cluster: String,

    /// Patterns, isolation and quota.
    #[serde(flatten)]
    pub settings: NamespaceSettings,
}

/// What a Prism namespace uses and how it is isolated: shared by PrismNamespace and the inline
/// `spec.namespaces` of a PrismCluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSettings {
    /// Names of the cluster's patterns this namespace uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "maxLength": 63, "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$"}))]
    pub patterns: Vec<String>,

    /// How the namespace's data and sessions are isolated from other namespaces.
    #[serde(default)]
    pub isolation: Isolation,

    /// Limits the proxy enforces for this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

/// Isolation levels of Prism namespaces.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Share the cluster's pattern runners with other namespaces.
    None,
    /// Dedicated pattern runners for this namespace.
    #[default]
    Namespace,
    /// Shared runners, with a separate backend session per client session.
    Session,
}

impl Isolation {
    /// The name used in manifests and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::None => "none",
            Isolation::Namespace => "namespace",
            Isolation::Session => "session",
        }
    }
}

/// Limits of a namespace. Every value must be positive; an absent value means no limit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!has(self.burst) || has(self.maxRequestsPerSecond)").message("spec.quota.burst requires spec.quota.maxRequestsPerSecond").field_path(".burst"))]
pub struct Quota {
    /// Concurrent client sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_sessions: Option<i64>,
    /// Sustained requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_requests_per_second: Option<i64>,
    /// Requests allowed above the sustained rate in a burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub burst: Option<i64>,
}

/// Observed state of a PrismNamespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrismNamespaceStatus {
    /// Pending, Ready, Degraded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<NamespacePhase>,
    /// The generation of the PrismNamespace this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Each pattern of the spec and the runner that serves it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<ResolvedPattern>,
    /// Ready and SpecValid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// A pattern of a namespace, resolved against its cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPattern {
    /// The pattern's name in the cluster.
    pub name: String,
    /// The PrismPattern that serves it.
    pub runner: String,
    /// Whether the runner is dedicated to this namespace.
    #[serde(default)]
    pub dedicated: bool,
    /// Whether the runner is ready.
    #[serde(default)]
    pub ready: bool,
}

/// Lifecycle phase of a namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespacePhase {
    Pending,
    Ready,
    Degraded,
    Failed,
}
