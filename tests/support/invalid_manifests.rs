//! The invalid manifests both the schema test (tests/samples.rs) and the end-to-end bad-input
//! scenario (tests/e2e/bad_input.rs) apply, each with the exact message the API server answers.
//! Included with `#[path]`: each test crate compiles its own copy.
#![allow(dead_code)]

use serde_json::{Value, json};

/// One invalid manifest: a valid sample with a merge patch applied (and, for update rules, the
/// sample as the old object), and the error the server must answer.
pub struct Invalid {
    pub what: &'static str,
    pub sample: &'static str,
    pub patch: Value,
    pub update: bool,
    pub error: &'static str,
}

pub fn create(what: &'static str, sample: &'static str, patch: Value, error: &'static str) -> Invalid {
    Invalid { what, sample, patch, update: false, error }
}

pub fn update(what: &'static str, sample: &'static str, patch: Value, error: &'static str) -> Invalid {
    Invalid { what, sample, patch, update: true, error }
}

pub const CLUSTER: &str = "minimal-cluster.yaml";
pub const NAMESPACE: &str = "app-team-namespace.yaml";
pub const PATTERN: &str = "pattern-tuning.yaml";

pub fn invalid_manifests() -> Vec<Invalid> {
    vec![
        create(
            "negative proxy replicas",
            CLUSTER,
            json!({"spec": {"proxy": {"replicas": -1}}}),
            "spec.proxy.replicas: Invalid value: -1: spec.proxy.replicas in body should be greater than or equal to 0",
        ),
        create(
            "proxy autoscaling without a maximum",
            CLUSTER,
            json!({"spec": {"proxy": {"autoscaling": {"enabled": true, "targetCPU": 70}}}}),
            "spec.proxy.autoscaling.maxReplicas: Invalid value: \"object\": autoscaling.maxReplicas is required when autoscaling is enabled",
        ),
        create(
            "proxy scaled by KEDA",
            CLUSTER,
            json!({"spec": {"proxy": {"autoscaling": {"enabled": true, "scaler": "keda", "maxReplicas": 4, "targetCPU": 70}}}}),
            "spec.proxy.autoscaling.scaler: Invalid value: \"object\": spec.proxy.autoscaling.scaler must be hpa: the proxy scales with a HorizontalPodAutoscaler",
        ),
        create(
            "proxy minimum above maximum",
            CLUSTER,
            json!({"spec": {"proxy": {"autoscaling": {"enabled": true, "minReplicas": 5, "maxReplicas": 2, "targetCPU": 70}}}}),
            "spec.proxy.autoscaling.minReplicas: Invalid value: \"object\": autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
        ),
        create(
            "pattern name that is not a DNS label",
            CLUSTER,
            json!({"spec": {"patterns": [{"name": "Key_Value", "type": "keyvalue"}]}}),
            "spec.patterns[0].name: Invalid value: \"Key_Value\": spec.patterns[0].name in body should match '^[a-z]([-a-z0-9]*[a-z0-9])?$'",
        ),
        create(
            "two patterns with one name",
            CLUSTER,
            json!({"spec": {"patterns": [{"name": "keyvalue"}, {"name": "keyvalue"}]}}),
            "spec.patterns[1]: Duplicate value: map[string]interface {}{\"name\":\"keyvalue\"}",
        ),
        create(
            "pattern without a type",
            CLUSTER,
            json!({"spec": {"patterns": [{"name": "cache"}]}}),
            "spec.patterns[0].type: Invalid value: \"object\": spec.patterns[].type is required when the name is not a pattern type (keyvalue, consumer, producer, mailbox, multicast-registry, claimcheck)",
        ),
        create(
            "storage on a Deployment runner",
            CLUSTER,
            json!({"spec": {"patterns": [{"name": "keyvalue", "storage": {"size": "1Gi"}}]}}),
            "spec.patterns[0].storage: Invalid value: \"object\": spec.patterns[].storage requires workload StatefulSet: each replica gets its own volume",
        ),
        create(
            "unknown backend",
            CLUSTER,
            json!({"spec": {"patterns": [{"name": "keyvalue", "backends": ["mysql"]}]}}),
            "spec.patterns[0].backends[0]: Unsupported value: \"mysql\": supported values: \"redis\", \"nats\", \"postgres\", \"minio\", \"kafka\", \"sqlite\", \"memstore\"",
        ),
        create(
            "ingress without a host",
            CLUSTER,
            json!({"spec": {"ingress": {"enabled": true}}}),
            "spec.ingress.host: Invalid value: \"object\": spec.ingress.host is required when ingress is enabled",
        ),
        create(
            "enabled backend without a version",
            CLUSTER,
            json!({"spec": {"backends": {"redis": {"enabled": true}}}}),
            "spec.backends.redis.version: Invalid value: \"object\": version is required when the backend is enabled",
        ),
        create(
            "two admin replicas on sqlite",
            CLUSTER,
            json!({"spec": {"admin": {"replicas": 2}}}),
            "spec.admin.replicas: Invalid value: \"object\": spec.admin.replicas must be at most 1 with sqlite storage: a SQLite file has a single writer",
        ),
        create(
            "admin on postgres without the postgres backend",
            CLUSTER,
            json!({"spec": {"admin": {"storage": {"type": "postgres"}}}}),
            "spec.admin.storage.type: Invalid value: \"object\": spec.backends.postgres.enabled must be true when spec.admin.storage.type is postgres",
        ),
        create(
            "cluster name too long for its children",
            CLUSTER,
            json!({"metadata": {"name": "a-very-long-cluster-name-that-is-31"}}),
            "<nil>: Invalid value: \"object\": metadata.name must be a lowercase DNS-1035 label of at most 30 characters: it prefixes the names of every child object",
        ),
        create(
            "unknown deletion policy",
            CLUSTER,
            json!({"spec": {"deletionPolicy": "Destroy"}}),
            "spec.deletionPolicy: Unsupported value: \"Destroy\": supported values: \"Retain\", \"Delete\"",
        ),
        create(
            "field that does not exist",
            CLUSTER,
            json!({"spec": {"replicas": 3}}),
            "strict decoding error: unknown field \"spec.replicas\"",
        ),
        create(
            "scrape interval that is not a duration",
            CLUSTER,
            json!({"spec": {"observability": {"prometheus": {"enabled": true, "scrapeInterval": "30 seconds"}}}}),
            "spec.observability.prometheus.scrapeInterval: Invalid value: \"30 seconds\": spec.observability.prometheus.scrapeInterval in body should match '^[0-9]+(ms|s|m|h)$'",
        ),
        create(
            "zero session quota in an inline namespace",
            CLUSTER,
            json!({"spec": {"namespaces": [{"name": "orders", "quota": {"maxSessions": 0}}]}}),
            "spec.namespaces[0].quota.maxSessions: Invalid value: 0: spec.namespaces[0].quota.maxSessions in body should be greater than or equal to 1",
        ),
        create(
            "unknown isolation",
            NAMESPACE,
            json!({"spec": {"isolation": "strict"}}),
            "spec.isolation: Unsupported value: \"strict\": supported values: \"none\", \"namespace\", \"session\"",
        ),
        create(
            "burst without a rate",
            NAMESPACE,
            json!({"spec": {"quota": {"maxRequestsPerSecond": null}}}),
            "spec.quota.burst: Invalid value: \"object\": burst requires maxRequestsPerSecond: a burst is what is allowed above the sustained rate",
        ),
        create(
            "namespace without a cluster",
            NAMESPACE,
            json!({"spec": {"cluster": null}}),
            "spec.cluster: Required value",
        ),
        update(
            "namespace moved to another cluster",
            NAMESPACE,
            json!({"spec": {"cluster": "other"}}),
            "spec.cluster: Invalid value: \"string\": spec.cluster is immutable: create a new PrismNamespace on the other cluster",
        ),
        update(
            "runner workload kind changed",
            PATTERN,
            json!({"spec": {"workload": "StatefulSet"}}),
            "spec.workload: Invalid value: \"string\": spec.workload is immutable: delete and recreate the PrismPattern to change its workload kind",
        ),
        create(
            "unknown pattern type",
            PATTERN,
            json!({"spec": {"type": "cache"}}),
            "spec.type: Unsupported value: \"cache\": supported values: \"keyvalue\", \"consumer\", \"producer\", \"mailbox\", \"multicast-registry\", \"claimcheck\"",
        ),
        create(
            "keda scaler with nothing to scale on",
            PATTERN,
            json!({"spec": {"autoscaling": {"triggers": null, "targetMemory": null}}}),
            "spec.autoscaling: Invalid value: \"object\": autoscaling needs triggers, targetCPU or targetMemory with the keda scaler",
        ),
        create(
            "hpa scaler scaled to zero",
            PATTERN,
            json!({"spec": {"autoscaling": {"scaler": "hpa", "minReplicas": 0, "triggers": null}}}),
            "spec.autoscaling.minReplicas: Invalid value: \"object\": autoscaling.minReplicas must be at least 1 with the hpa scaler (scale to zero needs keda)",
        ),
        create(
            "service port out of range",
            PATTERN,
            json!({"spec": {"service": {"port": 70000}}}),
            "spec.service.port: Invalid value: 70000: spec.service.port in body should be less than or equal to 65535",
        ),
        create(
            "replicas as a word",
            PATTERN,
            json!({"spec": {"replicas": "two"}}),
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
        ),
    ]
}
