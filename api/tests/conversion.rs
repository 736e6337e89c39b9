//! Property tests of conversion over generated objects: for every kind, old -> new -> old and
//! new -> old -> new give back the object (every field, annotations included), through
//! `conversion::convert`, the function the webhook serves.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior, MetricSpec};
use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta, Time};
use prism_api::common::*;
use prism_api::conversion::convert;
use prism_api::{v1alpha1, v1alpha2, v1beta1};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

const CASES: u64 = 400;

/// A seeded source of small, valid-looking values.
struct Gen(StdRng);

impl Gen {
    fn coin(&mut self) -> bool {
        self.0.random_bool(0.5)
    }
    fn maybe<T>(&mut self, f: impl FnOnce(&mut Gen) -> T) -> Option<T> {
        if self.coin() { Some(f(self)) } else { None }
    }
    fn int(&mut self, low: i32, high: i32) -> i32 {
        self.0.random_range(low..=high)
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.0.random_range(0..items.len())].clone()
    }
    fn word(&mut self) -> String {
        let len = self.0.random_range(1..8);
        let first = self.pick(&['a', 'b', 'k', 'x', 'z']);
        std::iter::once(first)
            .chain((1..len).map(|_| self.pick(&['a', 'e', 'r', '0', '7', '-', 'q'])))
            .collect::<String>()
            + "x"
    }
    fn list<T>(&mut self, max: usize, mut f: impl FnMut(&mut Gen) -> T) -> Vec<T> {
        let n = self.0.random_range(0..=max);
        (0..n).map(|_| f(self)).collect()
    }
    fn map(&mut self) -> BTreeMap<String, String> {
        let n = self.0.random_range(0..3);
        (0..n).map(|_| (self.pick(&["a/b", "x~y", "k"]).to_string() + &self.word(), self.word())).collect()
    }
    fn image_reference(&mut self) -> String {
        let registry = self.pick(&["", "ghcr.io/", "localhost:5000/", "registry.example.com/"]);
        let repository = self.pick(&["prism/keyvalue-runner", "runner", "a/b/c"]);
        let tag = self.pick(&["", ":0.1.0", ":latest", ":v2-rc.1"]);
        format!("{registry}{repository}{tag}")
    }
    fn image(&mut self) -> ImageSpec {
        ImageSpec {
            registry: self.maybe(|g| g.pick(&["ghcr.io", "registry.example.com:5000", "docker.io"]).into()),
            repository: self.maybe(|g| g.pick(&["prism/proxy", "x"]).into()),
            tag: self.maybe(|g| g.pick(&["1", "0.1.0"]).into()),
            pull_policy: self.maybe(|g| g.pick(&[PullPolicy::Always, PullPolicy::IfNotPresent, PullPolicy::Never])),
            image_pull_secrets: self.list(2, |g| LocalObjectReference { name: g.word() }),
        }
    }
    fn resources(&mut self) -> Resources {
        let cpu = self.pick(&["100m", "1", "250m"]);
        ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".to_string(), Quantity(cpu.into()))])),
            limits: self.maybe(|g| BTreeMap::from([("memory".to_string(), Quantity(g.pick(&["64Mi", "1Gi"]).into()))])),
            ..ResourceRequirements::default()
        }
        .into()
    }
    fn overrides(&mut self) -> PodOverrides {
        let value = self.pick(&[
            json!({"spec": {"priorityClassName": "high"}}),
            json!({"metadata": {"labels": {"team": "a"}}, "spec": {"containers": [{"name": "x", "env": null}]}}),
        ]);
        serde_json::from_value(value).expect("a pod template")
    }
    fn component(&mut self) -> ComponentSpec {
        ComponentSpec {
            resources: self.maybe(Gen::resources),
            image: self.maybe(Gen::image),
            pod_overrides: self.maybe(Gen::overrides),
        }
    }
    fn pattern_type(&mut self) -> PatternType {
        self.pick(&PatternType::ALL)
    }
    fn backend(&mut self) -> BackendKind {
        self.pick(&[BackendKind::Redis, BackendKind::Nats, BackendKind::Memstore, BackendKind::Kafka])
    }
    fn workload(&mut self) -> WorkloadKind {
        self.pick(&[WorkloadKind::Deployment, WorkloadKind::StatefulSet])
    }
    fn conditions(&mut self) -> Vec<Condition> {
        self.list(2, |g| Condition {
            type_: g.pick(&["Ready", "Progressing"]).into(),
            status: g.pick(&["True", "False"]).into(),
            reason: g.word(),
            message: g.word(),
            observed_generation: g.maybe(|g| g.int(1, 9).into()),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("a time")),
        })
    }
    fn metadata(&mut self) -> ObjectMeta {
        let mut labels = self.map();
        if self.coin() {
            labels.insert(prism_api::names::labels::CLUSTER.into(), self.pick(&["prism", "east"]).into());
        }
        ObjectMeta {
            name: Some(self.word()),
            namespace: Some("prism".into()),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: self.maybe(|g| BTreeMap::from([("team".to_string(), g.word())])),
            generation: self.maybe(|g| g.int(1, 9).into()),
            ..ObjectMeta::default()
        }
    }
    fn autoscaling(&mut self) -> Autoscaling {
        Autoscaling {
            enabled: self.coin(),
            scaler: self.pick(&[Scaler::Hpa, Scaler::Keda]),
            min_replicas: self.maybe(|g| g.int(0, 3)),
            max_replicas: self.maybe(|g| g.int(3, 9)),
            target_cpu: self.maybe(|g| g.int(1, 99)),
            target_memory: self.maybe(|g| g.int(1, 99)),
            behavior: self.maybe(|g| HorizontalPodAutoscalerBehavior {
                scale_down: Some(HPAScalingRules {
                    stabilization_window_seconds: Some(g.int(0, 300)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            metrics: self.list(1, |_| MetricSpec { type_: "Resource".into(), ..MetricSpec::default() }),
            triggers: self.list(2, |g| KedaTrigger {
                trigger_type: g.pick(&["nats-jetstream", "redis"]).into(),
                name: g.maybe(Gen::word),
                metadata: g.map(),
                authentication_ref: g.maybe(|g| KedaAuthenticationRef {
                    name: g.word(),
                    kind: g.maybe(|g| {
                        g.pick(&[
                            KedaAuthenticationKind::TriggerAuthentication,
                            KedaAuthenticationKind::ClusterTriggerAuthentication,
                        ])
                    }),
                }),
            }),
            polling_interval: self.maybe(|g| g.int(1, 60)),
            cooldown_period: self.maybe(|g| g.int(0, 600)),
        }
    }
    fn placement(&mut self) -> Placement {
        Placement {
            node_selector: self.map(),
            tolerations: self.list(1, |g| Toleration { key: Some(g.word()), ..Toleration::default() }),
            priority_class_name: self.maybe(Gen::word),
            runtime_class_name: self.maybe(Gen::word),
            ..Placement::default()
        }
    }
    fn service(&mut self) -> RunnerService {
        RunnerService {
            service_type: self.pick(&[ServiceType::ClusterIP, ServiceType::NodePort, ServiceType::LoadBalancer]),
            port: self.maybe(|g| g.int(1, 65535)),
        }
    }
    fn volume(&mut self) -> VolumeSpec {
        VolumeSpec { size: Quantity(self.pick(&["1Gi", "10Gi"]).into()), storage_class_name: self.maybe(Gen::word) }
    }

    // --- PrismCluster -------------------------------------------------------------------------
    fn shared_cluster_parts(&mut self) -> (AdminSpec, Vec<ClusterNamespace>, Backends, Option<PrismClusterStatus>) {
        let admin = AdminSpec {
            replicas: self.int(0, 3),
            storage: AdminStorage {
                storage_type: self.pick(&[AdminStorageType::Sqlite, AdminStorageType::Postgres]),
                size: self.maybe(|g| Quantity(g.pick(&["1Gi", "2Gi"]).into())),
                storage_class_name: self.maybe(Gen::word),
            },
            component: self.component(),
        };
        let namespaces = self.list(2, |g| ClusterNamespace { name: g.word(), settings: g.namespace_settings() });
        let backends = Backends {
            redis: self.maybe(|g| Box::new(g.backend_service())),
            nats: self.maybe(|g| Box::new(g.backend_service())),
            kafka: self.maybe(|g| Box::new(g.backend_service())),
            ..Backends::default()
        };
        let status = self.maybe(|g| PrismClusterStatus {
            phase: g.maybe(|g| g.pick(&ClusterPhase::ALL)),
            ready_components: g.maybe(|_| "1/2".into()),
            observed_generation: g.maybe(|g| g.int(1, 9).into()),
            conditions: g.conditions(),
            pattern_status: g.list(1, |g| ComponentStatus { name: g.word(), ready: g.coin(), ..Default::default() }),
            ..PrismClusterStatus::default()
        });
        (admin, namespaces, backends, status)
    }
    fn backend_service(&mut self) -> BackendService {
        BackendService {
            enabled: self.coin(),
            replicas: self.int(1, 3),
            storage: self.maybe(|g| Quantity(g.pick(&["1Gi"]).into())),
            version: self.maybe(|g| g.pick(&["7-alpine", "2.10"]).into()),
            component: self.component(),
            ..BackendService::default()
        }
    }
    fn runner_settings(&mut self) -> ClusterRunnerSettings {
        ClusterRunnerSettings {
            replicas: self.maybe(|g| g.int(0, 5)),
            backends: self.list(2, Gen::backend),
            storage: self.maybe(Gen::volume),
            resources: self.maybe(Gen::resources),
            image: self.maybe(Gen::image),
            config: self.map(),
        }
    }
    fn namespace_settings(&mut self) -> NamespaceSettings {
        NamespaceSettings {
            patterns: self.list(2, Gen::word),
            isolation: self.pick(&[Isolation::None, Isolation::Namespace, Isolation::Session]),
            quota: self.maybe(|g| Quota {
                max_sessions: g.maybe(|g| g.int(1, 100).into()),
                max_requests_per_second: g.maybe(|g| g.int(1, 100).into()),
                burst: None,
            }),
        }
    }
    fn old_cluster(&mut self) -> v1alpha1::PrismCluster {
        let (admin, namespaces, backends, status) = self.shared_cluster_parts();
        let spec = v1alpha1::PrismClusterSpec {
            admin,
            proxy: v1alpha1::ProxySpec {
                replicas: self.int(0, 5),
                autoscaling: self.maybe(|g| v1alpha1::ProxyAutoscaling {
                    enabled: g.coin(),
                    min_replicas: g.maybe(|g| g.int(1, 3)),
                    max_replicas: g.maybe(|g| g.int(3, 9)),
                    target_cpu: g.maybe(|g| g.int(1, 99)),
                    target_memory: g.maybe(|g| g.int(1, 99)),
                }),
                component: self.component(),
            },
            patterns: self.list(3, |g| v1alpha1::ClusterPattern {
                name: g.word(),
                pattern: g.maybe(Gen::pattern_type),
                workload: g.workload(),
                runner: g.runner_settings(),
            }),
            namespaces,
            backends,
            paused: self.coin(),
            deletion_policy: self.pick(&[DeletionPolicy::Retain, DeletionPolicy::Delete]),
            ..Default::default()
        };
        v1alpha1::PrismCluster { metadata: self.metadata(), spec, status }
    }
    fn new_cluster(&mut self) -> v1beta1::PrismCluster {
        let (admin, namespaces, backends, status) = self.shared_cluster_parts();
        let spec = v1beta1::PrismClusterSpec {
            admin,
            proxy: v1beta1::ProxySpec {
                replicas: self.int(0, 5),
                autoscaling: self.maybe(|g| Autoscaling { scaler: Scaler::Hpa, ..g.autoscaling() }),
                component: self.component(),
            },
            patterns: self.list(3, |g| v1beta1::ClusterPattern {
                name: g.word(),
                pattern_type: g.maybe(Gen::pattern_type),
                workload: g.workload(),
                runner: g.runner_settings(),
            }),
            namespaces,
            backends,
            paused: self.coin(),
            deletion_policy: self.pick(&[DeletionPolicy::Retain, DeletionPolicy::Delete]),
            tenancy: self.maybe(Gen::tenancy),
            ..Default::default()
        };
        v1beta1::PrismCluster { metadata: self.metadata(), spec, status }
    }

    fn tenancy(&mut self) -> v1beta1::Tenancy {
        let from = self.pick(&[
            v1beta1::NamespacesFrom::Same,
            v1beta1::NamespacesFrom::All,
            v1beta1::NamespacesFrom::Selector,
        ]);
        let selector = (from == v1beta1::NamespacesFrom::Selector)
            .then(|| LabelSelector { match_labels: Some(self.map()), ..LabelSelector::default() });
        v1beta1::Tenancy {
            namespaces: v1beta1::AllowedNamespaces { from, selector },
            limits: self.maybe(|g| v1beta1::TenantLimits {
                quota: Quota {
                    max_sessions: g.maybe(|g| g.int(1, 100).into()),
                    max_requests_per_second: g.maybe(|g| g.int(1, 100).into()),
                    burst: None,
                },
                max_dedicated_runners: g.maybe(|g| g.int(0, 4)),
                patterns: g.list(2, Gen::word),
            }),
        }
    }

    // --- PrismNamespace -----------------------------------------------------------------------
    fn namespace_status(&mut self) -> Option<PrismNamespaceStatus> {
        self.maybe(|g| PrismNamespaceStatus {
            phase: g.maybe(|g| g.pick(&[NamespacePhase::Pending, NamespacePhase::Ready])),
            observed_generation: g.maybe(|g| g.int(1, 9).into()),
            patterns: g.list(2, |g| ResolvedPattern {
                name: g.word(),
                runner: g.word(),
                dedicated: g.coin(),
                ready: g.coin(),
            }),
            conditions: g.conditions(),
            connection: g.maybe(|g| Connection { config_map: g.word(), endpoint: g.word() }),
        })
    }
    fn old_namespace(&mut self) -> v1alpha2::PrismNamespace {
        let spec = v1alpha2::PrismNamespaceSpec { cluster: self.word(), settings: self.namespace_settings() };
        v1alpha2::PrismNamespace { metadata: self.metadata(), spec, status: self.namespace_status() }
    }
    fn new_namespace(&mut self) -> v1beta1::PrismNamespace {
        let spec = v1beta1::PrismNamespaceSpec {
            cluster: self.word(),
            cluster_namespace: self.maybe(Gen::word),
            settings: self.namespace_settings(),
        };
        v1beta1::PrismNamespace { metadata: self.metadata(), spec, status: self.namespace_status() }
    }

    // --- PrismPattern -------------------------------------------------------------------------
    fn old_pattern(&mut self) -> v1alpha1::PrismPattern {
        let spec = v1alpha1::PrismPatternSpec {
            pattern: self.pattern_type(),
            backend: self.maybe(Gen::backend),
            image: self.maybe(Gen::image_reference),
            replicas: self.maybe(|g| g.int(0, 5)),
            resources: self.maybe(Gen::resources),
            backend_config: self
                .maybe(|g| v1alpha1::BackendConfigRef { name: g.word(), namespace: g.maybe(Gen::word) }),
            config: self.map(),
            service: self.maybe(Gen::service),
            autoscaling: self.maybe(|g| {
                let a = g.autoscaling();
                v1alpha1::UpstreamAutoscaling {
                    enabled: a.enabled,
                    scaler: a.scaler,
                    min_replicas: a.min_replicas,
                    max_replicas: a.max_replicas,
                    target_cpu_utilization_percentage: a.target_cpu,
                    target_memory_utilization_percentage: a.target_memory,
                    metrics: a.metrics,
                    behavior: a.behavior,
                    triggers: g.list(2, |g| v1alpha1::UpstreamTrigger {
                        trigger_type: g.word(),
                        metadata: g.map(),
                        authentication_ref: g.maybe(|g| v1alpha1::UpstreamAuthenticationRef { name: g.word() }),
                    }),
                    polling_interval: a.polling_interval,
                    cooldown_period: a.cooldown_period,
                }
            }),
            placement: self
                .maybe(|g| v1alpha1::UpstreamPlacement { strategy: g.maybe(Gen::word), scheduling: g.placement() }),
        };
        let status = self.maybe(|g| v1alpha1::PrismPatternStatus {
            phase: g.maybe(|g| g.pick(&[PatternPhase::Pending, PatternPhase::Running])),
            replicas: g.int(0, 3),
            available_replicas: g.int(0, 3),
            observed_generation: g.maybe(|g| g.int(1, 9).into()),
            conditions: g.conditions(),
        });
        v1alpha1::PrismPattern { metadata: self.metadata(), spec, status }
    }
    fn new_pattern(&mut self) -> v1beta1::PrismPattern {
        let spec = v1beta1::PrismPatternSpec {
            cluster: self.pick(&["prism", "east", "west"]).into(),
            pattern_type: self.pattern_type(),
            workload: self.workload(),
            replicas: self.maybe(|g| g.int(0, 5)),
            image: self.maybe(Gen::image),
            backends: self.list(3, |g| v1beta1::PatternBackend { name: g.backend(), config: g.map() }),
            config: self.map(),
            resources: self.maybe(Gen::resources),
            storage: self.maybe(Gen::volume),
            autoscaling: self.maybe(Gen::autoscaling).map(Box::new),
            placement: self.maybe(Gen::placement).map(Box::new),
            service: self.maybe(Gen::service),
            ports: self.maybe(|g| v1beta1::RunnerPorts { grpc: g.maybe(|g| g.int(1, 9000)), ..Default::default() }),
            pod_overrides: self.maybe(Gen::overrides),
        };
        let status = self.maybe(|g| v1beta1::PrismPatternStatus {
            phase: g.maybe(|g| g.pick(&[PatternPhase::Pending, PatternPhase::Running])),
            replicas: g.int(0, 3),
            available_replicas: g.int(0, 3),
            selector: g.maybe(|_| "app=x".into()),
            observed_generation: g.maybe(|g| g.int(1, 9).into()),
            conditions: g.conditions(),
        });
        v1beta1::PrismPattern { metadata: self.metadata(), spec, status }
    }
}

/// Converts `object` to `via` and back; the result must be the object itself.
fn assert_round_trip<K: Serialize>(seed: u64, object: &K, via: &str) {
    let original = serde_json::to_value(object).expect("JSON");
    let home = original["apiVersion"].as_str().expect("apiVersion").to_string();
    let there = convert(&original, via).unwrap_or_else(|e| panic!("seed {seed}: to {via}: {e}\n{original:#}"));
    assert_eq!(there["apiVersion"], via);
    let back = convert(&there, &home).unwrap_or_else(|e| panic!("seed {seed}: back to {home}: {e}\n{there:#}"));
    assert_eq!(back, original, "seed {seed}: {home} -> {via} -> {home} changed the object; at {via}: {there:#}");
}

fn each_seed(mut check: impl FnMut(u64, &mut Gen)) {
    for seed in 0..CASES {
        check(seed, &mut Gen(StdRng::seed_from_u64(seed)));
    }
}

#[test]
fn prism_cluster_v1alpha1_round_trips_through_v1beta1() {
    each_seed(|seed, g| assert_round_trip(seed, &g.old_cluster(), "prism.io/v1beta1"));
}

#[test]
fn prism_cluster_v1beta1_round_trips_through_v1alpha1() {
    each_seed(|seed, g| assert_round_trip(seed, &g.new_cluster(), "prism.io/v1alpha1"));
}

#[test]
fn prism_namespace_v1alpha2_round_trips_through_v1beta1() {
    each_seed(|seed, g| assert_round_trip(seed, &g.old_namespace(), "prism.io/v1beta1"));
}

#[test]
fn prism_namespace_v1beta1_round_trips_through_v1alpha2() {
    each_seed(|seed, g| assert_round_trip(seed, &g.new_namespace(), "prism.io/v1alpha2"));
}

#[test]
fn prism_pattern_v1alpha1_round_trips_through_v1beta1() {
    each_seed(|seed, g| assert_round_trip(seed, &g.old_pattern(), "prism.io/v1beta1"));
}

#[test]
fn prism_pattern_v1beta1_round_trips_through_v1alpha1() {
    each_seed(|seed, g| assert_round_trip(seed, &g.new_pattern(), "prism.io/v1alpha1"));
}

#[test]
fn the_generators_reach_the_fields_that_need_an_annotation() {
    // Without these, the round trips above would prove little about the lossless annotations.
    let mut annotated = BTreeMap::<&str, u64>::new();
    each_seed(|_, g| {
        for (kind, object, via) in [
            ("cluster down", serde_json::to_value(g.new_cluster()).unwrap(), "prism.io/v1alpha1"),
            ("pattern down", serde_json::to_value(g.new_pattern()).unwrap(), "prism.io/v1alpha1"),
            ("pattern up", serde_json::to_value(g.old_pattern()).unwrap(), "prism.io/v1beta1"),
            ("namespace down", serde_json::to_value(g.new_namespace()).unwrap(), "prism.io/v1alpha2"),
        ] {
            let converted = convert(&object, via).unwrap();
            if converted["metadata"]["annotations"]
                .as_object()
                .is_some_and(|a| a.keys().any(|k| k.ends_with("-fields")))
            {
                *annotated.entry(kind).or_default() += 1;
            }
        }
    });
    for kind in ["cluster down", "pattern down", "pattern up", "namespace down"] {
        let count = annotated.get(kind).copied().unwrap_or_default();
        assert!(count > CASES / 4, "{kind}: only {count} of {CASES} objects needed an annotation");
    }
}

#[test]
fn an_edit_through_the_old_version_wins_over_the_annotation() {
    let mut g = Gen(StdRng::seed_from_u64(7));
    let mut pattern = g.new_pattern();
    pattern.spec.backends = vec![
        v1beta1::PatternBackend { name: BackendKind::Redis, config: BTreeMap::from([("pool".into(), "8".into())]) },
        v1beta1::PatternBackend { name: BackendKind::Nats, config: BTreeMap::new() },
    ];
    pattern.spec.image = Some(ImageSpec { pull_policy: Some(PullPolicy::Always), ..parse("ghcr.io/prism/r:1") });
    let mut old = convert(&serde_json::to_value(&pattern).unwrap(), "prism.io/v1alpha1").unwrap();
    assert_eq!((&old["spec"]["backend"], &old["spec"]["image"]), (&json!("redis"), &json!("ghcr.io/prism/r:1")));
    old["spec"]["backend"] = json!("memstore");
    old["spec"]["image"] = json!("ghcr.io/prism/r:2");
    let new = convert(&old, "prism.io/v1beta1").unwrap();
    assert_eq!(new["spec"]["backends"], json!([{"name": "memstore"}]), "the old version's edit of the backend wins");
    assert_eq!(new["spec"]["image"]["tag"], "2");
    assert_eq!(new["spec"]["image"]["pullPolicy"], "Always", "what the old version cannot see survives");
    assert_eq!(new["spec"]["cluster"], pattern.spec.cluster);
}

fn parse(reference: &str) -> ImageSpec {
    prism_api::conversion::pattern::parse_image(reference)
}

#[test]
fn bad_input_gets_errors_that_say_what_is_wrong() {
    let unknown_version =
        json!({"apiVersion": "prism.io/v2", "kind": "PrismCluster", "metadata": {"name": "a"}, "spec": {}});
    let message = convert(&unknown_version, "prism.io/v1beta1").unwrap_err().to_string();
    assert_eq!(
        message,
        "PrismCluster is not served at prism.io/v2; its versions are prism.io/v1alpha1, prism.io/v1beta1"
    );
    let unknown_kind = json!({"apiVersion": "prism.io/v1beta1", "kind": "Gadget", "metadata": {"name": "a"}});
    assert!(convert(&unknown_kind, "prism.io/v1alpha1").unwrap_err().to_string().contains("\"Gadget\""));
    let invalid = json!({"apiVersion": "prism.io/v1alpha1", "kind": "PrismPattern", "metadata": {"name": "p"},
                         "spec": {"pattern": "teleport"}});
    let message = convert(&invalid, "prism.io/v1beta1").unwrap_err().to_string();
    assert!(
        message.starts_with(
            "prism.io/v1alpha1 PrismPattern \"p\" is not valid at that version: unknown variant `teleport`"
        ),
        "{message}"
    );
    let bad_annotation = json!({"apiVersion": "prism.io/v1alpha1", "kind": "PrismPattern",
                                "metadata": {"name": "p", "annotations": {"prism.io/v1beta1-fields": "{"}},
                                "spec": {"pattern": "keyvalue"}});
    let message = convert(&bad_annotation, "prism.io/v1beta1").unwrap_err().to_string();
    assert!(message.starts_with("annotation prism.io/v1beta1-fields of \"p\" is not a conversion delta"), "{message}");
}

#[test]
fn an_upstream_manifest_converts_with_the_defaults_the_docs_name() {
    let upstream = json!({"apiVersion": "prism.io/v1alpha1", "kind": "PrismPattern",
        "metadata": {"name": "orders", "namespace": "prism"},
        "spec": {"pattern": "consumer", "backend": "nats", "image": "ghcr.io/prism/consumer-runner:0.1.0", "replicas": 2,
                 "backendConfig": {"name": "nats-main"}, "service": {"type": "ClusterIP", "port": 8982},
                 "autoscaling": {"enabled": true, "scaler": "keda", "minReplicas": 0, "maxReplicas": 5,
                                 "triggers": [{"type": "nats-jetstream", "metadata": {"stream": "orders"},
                                               "authenticationRef": {"name": "nats-auth"}}]},
                 "placement": {"strategy": "spread", "nodeSelector": {"pool": "data"}}}});
    let new = convert(&upstream, "prism.io/v1beta1").unwrap();
    assert_eq!(new["spec"]["cluster"], "prism");
    assert_eq!(new["spec"]["workload"], "Deployment");
    assert_eq!(new["spec"]["backends"], json!([{"name": "nats"}]));
    assert_eq!(
        new["spec"]["image"],
        json!({"registry": "ghcr.io", "repository": "prism/consumer-runner", "tag": "0.1.0"})
    );
    assert_eq!(new["spec"]["autoscaling"]["triggers"][0]["authenticationRef"], json!({"name": "nats-auth"}));
    assert_eq!(new["spec"]["placement"], json!({"nodeSelector": {"pool": "data"}}));
    let kept: Value =
        serde_json::from_str(new["metadata"]["annotations"]["prism.io/v1alpha1-fields"].as_str().unwrap()).unwrap();
    assert_eq!(
        kept,
        json!({"set": {"/spec/backendConfig": {"name": "nats-main"}, "/spec/placement/strategy": "spread"}})
    );
    assert_eq!(convert(&new, "prism.io/v1alpha1").unwrap(), upstream);
}
