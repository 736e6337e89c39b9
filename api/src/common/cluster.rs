//! What PrismCluster shares across its versions: the admin, the backing services, ingress,
//! observability, the deletion policy and the whole status. (v1alpha1 and v1beta1 differ in the
//! proxy and the pattern entries, see docs/api-versions.md.)

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::IngressTLS;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    BackendKind, ComponentSpec, Condition, ImageSpec, NamespacePhase, NamespaceSettings, Resources, VolumeSpec,
    conditions_schema,
};

/// The admin service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.storage.type != 'sqlite' || self.replicas <= 1")
    .message("spec.admin.replicas must be at most 1 with sqlite storage: a SQLite file has a single writer")
    .field_path(".replicas"))]
pub struct AdminSpec {
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 9))]
    pub replicas: i32,
    #[serde(default)]
    pub storage: AdminStorage,
    /// Resources, image and pod overrides.
    #[serde(flatten)]
    pub component: ComponentSpec,
}

impl Default for AdminSpec {
    fn default() -> Self {
        AdminSpec { replicas: 1, storage: AdminStorage::default(), component: ComponentSpec::default() }
    }
}

/// Serde's default of replica counts that default to one.
pub fn one() -> i32 {
    1
}

/// Where the admin service keeps its state.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdminStorage {
    /// `sqlite` on a volume of the admin pod, or `postgres` through the postgres backend.
    #[serde(rename = "type", default)]
    pub storage_type: AdminStorageType,
    /// Size of the SQLite volume (default 1Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Storage class of the SQLite volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// Admin state store.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AdminStorageType {
    #[default]
    Sqlite,
    Postgres,
}

/// A Prism namespace of the cluster, materialised as a child PrismNamespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNamespace {
    /// Name of the namespace (the child PrismNamespace is named `<cluster>-<name>`).
    #[schemars(length(min = 1, max = 20), pattern(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    #[serde(flatten)]
    pub settings: NamespaceSettings,
}

/// What a cluster's pattern entry sets on its runner besides the pattern type and workload kind:
/// the same in every version.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRunnerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Backends the runner uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), extend("x-kubernetes-list-type" = "set"))]
    pub backends: Vec<BackendKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<VolumeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// Pattern settings passed to the runner's configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// The backing services, each off unless enabled. Each is boxed: a `BackendService` takes about
/// 300 bytes inline, and most clusters enable two or three of the five, so a cached PrismCluster
/// carried some 900 bytes of empty room per cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Backends {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Box<BackendService>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats: Option<Box<BackendService>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Box<BackendService>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minio: Option<Box<BackendService>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<Box<BackendService>>,
}

impl Backends {
    /// Each configured backend service with its kind, in dependency-free, stable order.
    pub fn iter(&self) -> impl Iterator<Item = (BackendKind, &BackendService)> {
        [
            (BackendKind::Redis, &self.redis),
            (BackendKind::Nats, &self.nats),
            (BackendKind::Postgres, &self.postgres),
            (BackendKind::Minio, &self.minio),
            (BackendKind::Kafka, &self.kafka),
        ]
        .into_iter()
        .filter_map(|(kind, spec)| spec.as_deref().map(|s| (kind, s)))
    }

    /// The enabled backend services.
    pub fn enabled(&self) -> impl Iterator<Item = (BackendKind, &BackendService)> {
        self.iter().filter(|(_, s)| s.enabled)
    }
}

/// One backing service (Redis, NATS, Postgres, MinIO or Kafka).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!self.enabled || has(self.version) || (has(self.image) && has(self.image.tag))")
    .message("version is required when the backend is enabled")
    .field_path(".version"))]
pub struct BackendService {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 9))]
    pub replicas: i32,
    /// Size of each replica's data volume, e.g. `1Gi`; no volume (ephemeral data) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Image tag of the service, e.g. `7-alpine` for Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))]
    pub version: Option<String>,
    /// Database to create (Postgres).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z_][a-z0-9_]*$"))]
    pub database: Option<String>,
    /// Resources, image and pod overrides.
    #[serde(flatten)]
    pub component: ComponentSpec,
}

/// Ingress to the proxy's gRPC port.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!self.enabled || has(self.host)")
    .message("spec.ingress.host is required when ingress is enabled")
    .field_path(".host"))]
pub struct IngressSpec {
    #[serde(default)]
    pub enabled: bool,
    /// IngressClass, e.g. `nginx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Host name clients use, e.g. `prism.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        pattern(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub host: Option<String>,
    /// Annotations of the Ingress, e.g. the controller's gRPC backend protocol.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// TLS of the Ingress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<IngressTLS>,
}

/// Metrics, dashboards and logs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana: Option<GrafanaSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loki: Option<LokiSpec>,
}

/// Prometheus scraping through a ServiceMonitor (needs the Prometheus Operator's CRD).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Scrape interval, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]+(ms|s|m|h)$"))]
    pub scrape_interval: Option<String>,
}

/// A Grafana dashboard ConfigMap (picked up by Grafana's dashboard sidecar).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaSpec {
    #[serde(default)]
    pub enabled: bool,
}

/// Log shipping to Loki.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LokiSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Push endpoint of Loki, e.g. `http://loki.monitoring:3100/loki/api/v1/push`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^https?://"))]
    pub url: Option<String>,
}

/// What happens to data volumes when their component is removed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Keep the PersistentVolumeClaims (the default: data outlives the deployment).
    #[default]
    Retain,
    /// Delete the PersistentVolumeClaims with their component.
    Delete,
}

/// Observed state of a PrismCluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrismClusterStatus {
    /// Pending, Running, Degraded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClusterPhase>,
    /// Ready components of all, e.g. `7/9`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_components: Option<String>,
    /// Ready pattern runners of all, e.g. `3/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_patterns: Option<String>,
    /// The generation of the PrismCluster this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (not bumped on passes that change nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled: Option<Time>,
    /// Ready, BackendsReady, AdminReady, ProxyReady, PatternsReady, Paused and SpecValid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_status: Option<ComponentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_status: Option<ComponentStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pattern_status: Vec<ComponentStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_status: Vec<ComponentStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_status: Vec<NamespaceSummary>,
}

/// Health of one component, from its observed workload.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub available_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Phase of one of the cluster's namespaces.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSummary {
    pub name: String,
    /// The Kubernetes namespace of a tenant's PrismNamespace (absent: the cluster's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<NamespacePhase>,
}

/// Lifecycle phase of a cluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterPhase {
    /// Not yet ready for the first time.
    Pending,
    /// Every component ready.
    Running,
    /// Something that was ready is not.
    Degraded,
    /// The spec cannot be realised (see the SpecValid condition).
    Failed,
}

impl ClusterPhase {
    /// Every phase, in lifecycle order.
    pub const ALL: [ClusterPhase; 4] =
        [ClusterPhase::Pending, ClusterPhase::Running, ClusterPhase::Degraded, ClusterPhase::Failed];

    /// The phase as the status writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterPhase::Pending => "Pending",
            ClusterPhase::Running => "Running",
            ClusterPhase::Degraded => "Degraded",
            ClusterPhase::Failed => "Failed",
        }
    }
}

/// Declares `PrismClusterSpec` (and through kube's derive `PrismCluster`) at one API version,
/// with the `ProxySpec` and `ClusterPattern` of the calling module: the versions differ only in
/// those two and in `$extra`, fields only that version has (v1beta1's `tenancy`), so everything
/// else is declared once.
macro_rules! prism_cluster_version {
    ($version:literal, { $($extra:tt)* }) => {
        /// A whole Prism deployment: backends, admin, proxy, pattern runners, namespaces, ingress and
        /// observability. The operator creates and keeps every part of it; children are owned by the
        /// cluster, so deleting it tears the deployment down (data volumes follow `deletionPolicy`).
        #[derive(kube::CustomResource, kube::KubeSchema, serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq)]
        #[kube(
            group = "prism.io",
            version = $version,
            kind = "PrismCluster",
            plural = "prismclusters",
            singular = "prismcluster",
            shortname = "pcl",
            category = "prism",
            namespaced,
            status = "PrismClusterStatus",
            derive = "PartialEq",
            derive = "Default",
            printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
            printcolumn(name = "Ready", type_ = "string", json_path = ".status.readyComponents", description = "Ready components of all components"),
            printcolumn(name = "Patterns", type_ = "string", json_path = ".status.readyPatterns", description = "Ready pattern runners of all"),
            printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused"),
            printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
            validation = kube::core::Rule::new(
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 30"
            ).message("metadata.name must be a lowercase DNS-1035 label of at most 30 characters: it prefixes the names of every child object")
        )]
        #[serde(rename_all = "camelCase")]
        #[x_kube(validation = kube::core::Rule::new(
            "self.admin.storage.type != 'postgres' || (has(self.backends.postgres) && self.backends.postgres.enabled)"
        ).message("spec.backends.postgres.enabled must be true when spec.admin.storage.type is postgres").field_path(".admin.storage.type"))]
        pub struct PrismClusterSpec {
            /// The admin service (control plane).
            #[serde(default)]
            pub admin: $crate::common::AdminSpec,

            /// The proxy that clients talk to.
            #[serde(default)]
            pub proxy: ProxySpec,

            /// Pattern runners; each becomes a child PrismPattern named `<cluster>-<name>`.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
            pub patterns: Vec<ClusterPattern>,

            /// Prism namespaces; each becomes a child PrismNamespace named `<cluster>-<name>`.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
            pub namespaces: Vec<$crate::common::ClusterNamespace>,

            /// Backing services the operator runs for the patterns.
            #[serde(default)]
            pub backends: $crate::common::Backends,

            /// Ingress to the proxy.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub ingress: Option<$crate::common::IngressSpec>,

            /// Metrics, dashboards and logs.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub observability: Option<$crate::common::ObservabilitySpec>,

            /// Stops all writes to the cluster's children (for manual repair); status still reports.
            #[serde(default)]
            pub paused: bool,

            /// What happens to data volumes when the cluster, or a backend or pattern, is removed.
            #[serde(default)]
            pub deletion_policy: $crate::common::DeletionPolicy,

            $($extra)*
        }
    };
}
pub(crate) use prism_cluster_version;
