//! Prism's own vocabulary, the same in every API version: pattern types, backends, workload
//! kinds, and what a Prism namespace uses (its patterns, isolation and quota).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern types Prism's runners implement.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    #[default]
    #[serde(rename = "keyvalue")]
    KeyValue,
    #[serde(rename = "consumer")]
    Consumer,
    #[serde(rename = "producer")]
    Producer,
    #[serde(rename = "mailbox")]
    Mailbox,
    #[serde(rename = "multicast-registry")]
    MulticastRegistry,
    #[serde(rename = "claimcheck")]
    ClaimCheck,
}

impl PatternType {
    /// Every pattern type, in a stable order.
    pub const ALL: [PatternType; 6] = [
        PatternType::KeyValue,
        PatternType::Consumer,
        PatternType::Producer,
        PatternType::Mailbox,
        PatternType::MulticastRegistry,
        PatternType::ClaimCheck,
    ];

    /// The name used in manifests and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternType::KeyValue => "keyvalue",
            PatternType::Consumer => "consumer",
            PatternType::Producer => "producer",
            PatternType::Mailbox => "mailbox",
            PatternType::MulticastRegistry => "multicast-registry",
            PatternType::ClaimCheck => "claimcheck",
        }
    }

    /// Backends the pattern's runner code supports (upstream runners: keyvalue on memstore or
    /// redis; consumer on memstore or nats; producer on memstore, nats or redis; mailbox reads
    /// from nats, kafka or redis and stores in sqlite or postgres, payloads in minio;
    /// multicast-registry on redis, nats, kafka or postgres; claim-check moves payloads to minio
    /// and messages through nats, redis or kafka).
    pub fn supported_backends(self) -> &'static [BackendKind] {
        use BackendKind::*;
        match self {
            PatternType::KeyValue => &[Memstore, Redis],
            PatternType::Consumer => &[Memstore, Nats],
            PatternType::Producer => &[Memstore, Nats, Redis],
            PatternType::Mailbox => &[Nats, Kafka, Redis, Sqlite, Postgres, Minio],
            PatternType::MulticastRegistry => &[Redis, Nats, Kafka, Postgres],
            PatternType::ClaimCheck => &[Minio, Nats, Redis, Kafka, Memstore],
        }
    }

    /// The pattern type of that name, if there is one.
    pub fn from_name(name: &str) -> Option<PatternType> {
        PatternType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Workload kind of a runner.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WorkloadKind {
    #[default]
    Deployment,
    StatefulSet,
}

/// A backend a runner uses: one of the cluster's backing services, or an embedded driver.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Redis,
    Nats,
    Postgres,
    Minio,
    Kafka,
    /// Embedded: a SQLite file on the runner's volume.
    Sqlite,
    /// Embedded: in-memory, lost on restart.
    Memstore,
}

impl BackendKind {
    /// The name used in manifests, Service names and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Redis => "redis",
            BackendKind::Nats => "nats",
            BackendKind::Postgres => "postgres",
            BackendKind::Minio => "minio",
            BackendKind::Kafka => "kafka",
            BackendKind::Sqlite => "sqlite",
            BackendKind::Memstore => "memstore",
        }
    }

    /// Whether the backend is a service the PrismCluster runs (as opposed to an embedded driver).
    pub fn is_service(self) -> bool {
        !matches!(self, BackendKind::Sqlite | BackendKind::Memstore)
    }
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

/// Limits of a namespace (its quota), or what a cluster allows each tenant at most (its
/// `spec.tenancy.limits`). Every value must be positive; an absent value means no limit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!has(self.burst) || has(self.maxRequestsPerSecond)").message("burst requires maxRequestsPerSecond: a burst is what is allowed above the sustained rate").field_path(".burst"))]
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

/// Lifecycle phase of a namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespacePhase {
    Pending,
    Ready,
    Degraded,
    Failed,
}
