//! One table of facts per backing service: image, ports, the environment a client (a pattern
//! runner) needs to reach it, and the credentials it is given. The cluster controller builds the
//! services from it; the pattern controller builds runners' connection settings from it.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use prism_api::v1beta1::BackendKind;

use crate::naming;

/// How a runner connects to a backend: a value, or a key of the backend's generated Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEnv {
    /// A literal value; `{host}` and `{port}` are replaced with the backend Service's address.
    Value(&'static str, &'static str),
    /// A key of the backend's credentials Secret.
    Secret(&'static str, &'static str),
}

/// The environment of a backend's own container. Templates may use `{host}`, `{port}`,
/// `{headless}`, `{namespace}`, `{database}`, `{voters}`, `{replication}` and `{cluster_id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEnv {
    Value(&'static str, &'static str),
    Secret(&'static str, &'static str),
    /// A field of the pod (downward API), e.g. `metadata.name`.
    Field(&'static str, &'static str),
}

/// Facts about one backing service.
#[derive(Debug)]
pub struct BackendFacts {
    pub kind: BackendKind,
    /// Default image repository (the tag is the backend's `version`).
    pub repository: &'static str,
    /// The client port, named after the backend.
    pub port: i32,
    /// Other ports of the service (monitoring, console, peers).
    pub extra_ports: &'static [(&'static str, i32)],
    /// Keys of the generated credentials Secret; empty when the service runs without credentials.
    pub secret_keys: &'static [&'static str],
    /// Environment of a runner that uses the backend.
    pub client_env: &'static [ClientEnv],
    /// Arguments of the service's container (templated like [`ServerEnv`]).
    pub args: &'static [&'static str],
    /// Environment of the service's container.
    pub server_env: &'static [ServerEnv],
    /// Where the service keeps its data (the volume's mount path).
    pub data_path: &'static str,
    /// Other directories the service writes to, given scratch space.
    pub scratch_dirs: &'static [&'static str],
    /// User the image's process runs as.
    pub run_as_user: i64,
    /// Whether the image writes to its root filesystem (e.g. configuration generated at start).
    pub writable_root: bool,
}

const REDIS: BackendFacts = BackendFacts {
    kind: BackendKind::Redis,
    repository: "redis",
    port: 6379,
    extra_ports: &[],
    secret_keys: &["password"],
    client_env: &[
        ClientEnv::Value("REDIS_URL", "redis://{host}:{port}"),
        ClientEnv::Secret("REDIS_PASSWORD", "password"),
    ],
    args: &["--requirepass", "$(REDIS_PASSWORD)", "--dir", "/data", "--appendonly", "yes"],
    server_env: &[ServerEnv::Secret("REDIS_PASSWORD", "password")],
    data_path: "/data",
    scratch_dirs: &[],
    run_as_user: 999,
    writable_root: false,
};

const NATS: BackendFacts = BackendFacts {
    kind: BackendKind::Nats,
    repository: "nats",
    port: 4222,
    extra_ports: &[("monitor", 8222), ("cluster", 6222)],
    secret_keys: &[],
    client_env: &[ClientEnv::Value("NATS_URL", "nats://{host}:{port}")],
    args: &["--jetstream", "--store_dir", "/data", "--http_port", "8222"],
    server_env: &[],
    data_path: "/data",
    scratch_dirs: &[],
    run_as_user: 1000,
    writable_root: false,
};

const POSTGRES: BackendFacts = BackendFacts {
    kind: BackendKind::Postgres,
    repository: "postgres",
    port: 5432,
    extra_ports: &[],
    secret_keys: &["username", "password"],
    client_env: &[
        ClientEnv::Value("POSTGRES_HOST", "{host}"),
        ClientEnv::Value("POSTGRES_PORT", "{port}"),
        ClientEnv::Secret("POSTGRES_USER", "username"),
        ClientEnv::Secret("POSTGRES_PASSWORD", "password"),
    ],
    args: &[],
    server_env: &[
        ServerEnv::Secret("POSTGRES_USER", "username"),
        ServerEnv::Secret("POSTGRES_PASSWORD", "password"),
        ServerEnv::Value("POSTGRES_DB", "{database}"),
        // A subdirectory: the volume's root holds lost+found, which initdb refuses.
        ServerEnv::Value("PGDATA", "/var/lib/postgresql/data/pgdata"),
    ],
    data_path: "/var/lib/postgresql/data",
    scratch_dirs: &["/var/run/postgresql"],
    run_as_user: 999,
    writable_root: false,
};

const MINIO: BackendFacts = BackendFacts {
    kind: BackendKind::Minio,
    repository: "minio/minio",
    port: 9000,
    extra_ports: &[("console", 9001)],
    secret_keys: &["access-key", "secret-key"],
    client_env: &[
        ClientEnv::Value("S3_ENDPOINT", "http://{host}:{port}"),
        ClientEnv::Secret("S3_ACCESS_KEY", "access-key"),
        ClientEnv::Secret("S3_SECRET_KEY", "secret-key"),
    ],
    args: &["server", "/data", "--console-address", ":9001"],
    server_env: &[
        ServerEnv::Secret("MINIO_ROOT_USER", "access-key"),
        ServerEnv::Secret("MINIO_ROOT_PASSWORD", "secret-key"),
    ],
    data_path: "/data",
    scratch_dirs: &[],
    run_as_user: 1000,
    writable_root: false,
};

/// Kafka in KRaft mode: every replica is broker and controller, with no ZooKeeper (removed from
/// Kafka in 4.0; one stateful service fewer to run and keep healthy).
const KAFKA: BackendFacts = BackendFacts {
    kind: BackendKind::Kafka,
    repository: "apache/kafka",
    port: 9092,
    extra_ports: &[("controller", 9093)],
    secret_keys: &[],
    client_env: &[ClientEnv::Value("KAFKA_BROKERS", "{host}:{port}")],
    args: &[],
    server_env: &[
        ServerEnv::Field("POD_NAME", "metadata.name"),
        ServerEnv::Field("KAFKA_NODE_ID", "metadata.labels['apps.kubernetes.io/pod-index']"),
        ServerEnv::Value("CLUSTER_ID", "{cluster_id}"),
        ServerEnv::Value("KAFKA_PROCESS_ROLES", "broker,controller"),
        ServerEnv::Value("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ServerEnv::Value("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://$(POD_NAME).{headless}.{namespace}.svc:9092"),
        ServerEnv::Value("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        ServerEnv::Value("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"),
        ServerEnv::Value("KAFKA_CONTROLLER_QUORUM_VOTERS", "{voters}"),
        ServerEnv::Value("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "{replication}"),
        ServerEnv::Value("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "{replication}"),
        ServerEnv::Value("KAFKA_LOG_DIRS", "/var/lib/kafka/data"),
    ],
    data_path: "/var/lib/kafka/data",
    scratch_dirs: &[],
    run_as_user: 1000,
    // The image writes its server.properties from the environment at start.
    writable_root: true,
};

/// The facts of a backend service; `None` for embedded drivers (sqlite, memstore).
/// Every backing service's facts.
pub fn all() -> impl Iterator<Item = &'static BackendFacts> {
    [&REDIS, &NATS, &POSTGRES, &MINIO, &KAFKA].into_iter()
}

pub fn facts(kind: BackendKind) -> Option<&'static BackendFacts> {
    match kind {
        BackendKind::Redis => Some(&REDIS),
        BackendKind::Nats => Some(&NATS),
        BackendKind::Postgres => Some(&POSTGRES),
        BackendKind::Minio => Some(&MINIO),
        BackendKind::Kafka => Some(&KAFKA),
        BackendKind::Sqlite | BackendKind::Memstore => None,
    }
}

/// Environment variables a runner in `namespace` needs to reach `kind` of `cluster`: addresses
/// from the backend's Service, credentials by reference to its generated Secret (never literal).
pub fn client_env(cluster: &str, namespace: &str, kind: BackendKind) -> Vec<EnvVar> {
    let Some(facts) = facts(kind) else { return Vec::new() };
    let host = format!("{}.{namespace}.svc", naming::backend_service(cluster, kind));
    let secret = naming::backend_secret(cluster, kind);
    facts
        .client_env
        .iter()
        .map(|env| match *env {
            ClientEnv::Value(name, template) => EnvVar {
                name: name.to_string(),
                value: Some(template.replace("{host}", &host).replace("{port}", &facts.port.to_string())),
                value_from: None,
            },
            ClientEnv::Secret(name, key) => EnvVar {
                name: name.to_string(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.clone(),
                        key: key.to_string(),
                        optional: None,
                    }),
                    ..EnvVarSource::default()
                }),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_generated_secret_never_literal() {
        let env = client_env("prod", "prism", BackendKind::Minio);
        assert_eq!(env[0].value.as_deref(), Some("http://prod-minio.prism.svc:9000"));
        for secret_env in &env[1..] {
            assert!(secret_env.value.is_none());
            let key_ref = secret_env.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).expect("secret");
            assert_eq!(key_ref.name, "prod-minio-credentials");
        }
    }

    #[test]
    fn embedded_drivers_need_no_connection_settings() {
        assert!(client_env("prod", "prism", BackendKind::Sqlite).is_empty());
        assert!(facts(BackendKind::Memstore).is_none());
    }
}
