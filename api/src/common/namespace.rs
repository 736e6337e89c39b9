//! PrismNamespace, the same at every version (v1alpha2 and v1beta1 differ only in name): the
//! spec is generated per version by [`prism_namespace_version!`], the status is shared.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, NamespacePhase, conditions_schema};

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
    /// Ready, SpecValid, Paused, and for a namespace attached to a cluster: Accepted (the cluster
    /// admits it), Conflicted (another namespace holds its name) and QuotaClamped (its quota was
    /// lowered to the cluster's limits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// How the app team's clients reach this namespace, once the proxy serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
}

/// Where a served namespace's connection details are: what an app team's clients need.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The ConfigMap in the PrismNamespace's own namespace holding the connection details (no
    /// credentials).
    pub config_map: String,
    /// `host:port` of the proxy's gRPC endpoint.
    pub endpoint: String,
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

/// Declares `PrismNamespaceSpec` (and through kube's derive `PrismNamespace`) at one API version.
/// Both served versions have one shape, so one declaration serves both and cannot drift.
///
/// `$extra` are fields only that version has (v1beta1's `clusterNamespace`), pasted after
/// `cluster`; `$rule`, if given, is a CEL rule of that version's spec.
macro_rules! prism_namespace_version {
    ($version:literal $(, spec_rule = $rule:expr)?, { $($extra:tt)* }) => {
        /// An app team's Prism namespace: the logical dataset its clients address through the proxy, the
        /// patterns it uses on a PrismCluster, its isolation and its quota.
        #[derive(kube::CustomResource, kube::KubeSchema, serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq)]
        #[kube(
            group = "prism.io",
            version = $version,
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
            printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.connection.endpoint", description = "The proxy's address for this namespace's clients"),
            printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
            selectable = ".spec.cluster",
            validation = kube::core::Rule::new(
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63"
            ).message("metadata.name must be a lowercase DNS-1035 label (at most 63 characters): it names the namespace in the proxy's routes and labels")
        )]
        #[serde(rename_all = "camelCase")]
        $(#[x_kube(validation = $rule)])?
        pub struct PrismNamespaceSpec {
            /// Name of the PrismCluster that serves this namespace.
            #[schemars(length(min = 1, max = 63), pattern(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
            #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec.cluster is immutable: create a new PrismNamespace on the other cluster"))]
            pub cluster: String,

            $($extra)*

            /// Patterns, isolation and quota.
            #[serde(flatten)]
            pub settings: $crate::common::NamespaceSettings,
        }
    };
}
pub(crate) use prism_namespace_version;
