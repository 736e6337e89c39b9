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

/// Facts about one backing service.
#[derive(Debug)]
pub struct BackendFacts {
    pub kind: BackendKind,
    /// Default image repository (the tag is the backend's `version`).
    pub repository: &'static str,
    /// The client port, named after the backend.
    pub port: i32,
    /// Keys of the generated credentials Secret; empty when the service runs without credentials.
    pub secret_keys: &'static [&'static str],
    /// Environment of a runner that uses the backend.
    pub client_env: &'static [ClientEnv],
}

const REDIS: BackendFacts = BackendFacts {
    kind: BackendKind::Redis,
    repository: "redis",
    port: 6379,
    secret_keys: &["password"],
    client_env: &[
        ClientEnv::Value("REDIS_URL", "redis://{host}:{port}"),
        ClientEnv::Secret("REDIS_PASSWORD", "password"),
    ],
};

const NATS: BackendFacts = BackendFacts {
    kind: BackendKind::Nats,
    repository: "nats",
    port: 4222,
    secret_keys: &[],
    client_env: &[ClientEnv::Value("NATS_URL", "nats://{host}:{port}")],
};

const POSTGRES: BackendFacts = BackendFacts {
    kind: BackendKind::Postgres,
    repository: "postgres",
    port: 5432,
    secret_keys: &["username", "password"],
    client_env: &[
        ClientEnv::Value("POSTGRES_HOST", "{host}"),
        ClientEnv::Value("POSTGRES_PORT", "{port}"),
        ClientEnv::Secret("POSTGRES_USER", "username"),
        ClientEnv::Secret("POSTGRES_PASSWORD", "password"),
    ],
};

const MINIO: BackendFacts = BackendFacts {
    kind: BackendKind::Minio,
    repository: "minio/minio",
    port: 9000,
    secret_keys: &["access-key", "secret-key"],
    client_env: &[
        ClientEnv::Value("S3_ENDPOINT", "http://{host}:{port}"),
        ClientEnv::Secret("S3_ACCESS_KEY", "access-key"),
        ClientEnv::Secret("S3_SECRET_KEY", "secret-key"),
    ],
};

const KAFKA: BackendFacts = BackendFacts {
    kind: BackendKind::Kafka,
    repository: "apache/kafka",
    port: 9092,
    secret_keys: &[],
    client_env: &[ClientEnv::Value("KAFKA_BROKERS", "{host}:{port}")],
};

/// The facts of a backend service; `None` for embedded drivers (sqlite, memstore).
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
