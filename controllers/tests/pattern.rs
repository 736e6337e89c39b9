//! The PrismPattern controller against the API emulator: convergence and its API cost, backend
//! ordering, self-healing, autoscaler switching, invalid references and the finalizer.

mod common;

use std::time::Duration;

use common::{Harness, eventually, settle};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use prism_api::v1beta1::{PatternPhase, PrismPattern};
use serde_json::json;

const CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata: {name: prod, namespace: prism}
spec:
  backends:
    redis: {enabled: true, version: "7-alpine"}
"#;

const REDIS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: prod-redis
  namespace: prism
  labels: {prism.io/cluster: prod, prism.io/backend: redis}
spec:
  replicas: 1
  serviceName: prod-redis
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec: {containers: [{name: redis, image: redis}]}
"#;

const PATTERN: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismPattern
metadata: {name: kv, namespace: prism}
spec:
  cluster: prod
  type: keyvalue
  replicas: 2
  backends: [{name: redis, config: {maxConnections: "100"}}]
"#;

async fn phase(h: &Harness, name: &str) -> Option<PatternPhase> {
    h.api::<PrismPattern>().get_opt(name).await.ok().flatten().and_then(|p| p.status).and_then(|s| s.phase)
}

async fn condition(h: &Harness, name: &str, type_: &str) -> Option<(String, String, String)> {
    let pattern = h.api::<PrismPattern>().get_opt(name).await.ok().flatten()?;
    let c = pattern.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
    Some((c.status, c.reason, c.message))
}

async fn wait_phase(h: &Harness, name: &str, wanted: PatternPhase) {
    eventually(&format!("{name} {wanted:?}"), || async { (phase(h, name).await == Some(wanted)).then_some(()) }).await;
}

async fn wait_deployment(h: &Harness, name: &str) -> Deployment {
    eventually("deployment", || async { h.api::<Deployment>().get_opt(name).await.ok().flatten() }).await
}

/// A cluster with a ready redis and the pattern controller running.
async fn ready_backends() -> Harness {
    let mut h = Harness::new().await;
    h.apply_yaml(CLUSTER).await;
    h.apply_yaml(REDIS).await;
    h.stateful_set_ready("prod-redis", 1).await;
    h.start(prism_controllers::pattern::run);
    h
}

/// Object writes (not Events) grouped as "METHOD path".
fn object_writes(writes: Vec<String>) -> Vec<String> {
    let mut writes: Vec<String> = writes.into_iter().filter(|w| !w.contains("/events")).collect();
    writes.sort();
    writes
}

#[tokio::test]
async fn a_new_pattern_converges_with_one_write_per_child_and_stays_quiet() {
    let h = ready_backends().await;
    h.apply_yaml(PATTERN).await;
    let deployment = wait_deployment(&h, "kv").await;
    h.deployment_ready("kv").await;
    wait_phase(&h, "kv", PatternPhase::Running).await;
    settle(&h.writes, Duration::from_millis(300)).await;

    let writes = object_writes(h.writes.take());
    let count = |path: &str| writes.iter().filter(|w| w.split(' ').nth(1).is_some_and(|p| p.ends_with(path))).count();
    println!("converging a new PrismPattern: {} object writes: {writes:#?}", writes.len());
    assert_eq!(count("/configmaps/kv-config"), 1, "{writes:#?}");
    assert_eq!(count("/services/kv"), 1);
    assert_eq!(count("/deployments/kv"), 1);
    assert_eq!(count("/prismpatterns/kv"), 1, "one finalizer write");
    assert!(count("/prismpatterns/kv/status") <= 2, "status written on change only: {writes:#?}");
    assert_eq!(writes.len(), 4 + count("/prismpatterns/kv/status"));

    // The runner: connection settings from the cluster's Service and Secret, probes, config hash.
    let pod = deployment.spec.expect("spec").template;
    let container = &pod.spec.as_ref().expect("pod").containers[0];
    let env: Vec<_> = container.env.clone().unwrap_or_default();
    let redis_url = env.iter().find(|e| e.name == "REDIS_URL").and_then(|e| e.value.clone());
    assert_eq!(redis_url.as_deref(), Some("redis://prod-redis.prism.svc:6379"));
    let password = env.iter().find(|e| e.name == "REDIS_PASSWORD").expect("password env");
    assert!(password.value.is_none() && password.value_from.is_some(), "credentials by secretKeyRef only");
    assert!(container.readiness_probe.is_some() && container.liveness_probe.is_some());
    assert!(pod.metadata.and_then(|m| m.annotations).is_some_and(|a| a.contains_key("prism.io/config-hash")));

    // A reconcile of the unchanged, ready pattern writes nothing.
    let touch = json!({"metadata": {"labels": {"touched": "yes"}}});
    h.api::<PrismPattern>().patch("kv", &PatchParams::default(), &Patch::Merge(&touch)).await.expect("touch");
    settle(&h.writes, Duration::from_millis(300)).await;
    let writes = object_writes(h.writes.take());
    println!("re-reconciling an unchanged, ready PrismPattern: {} object writes", writes.len());
    assert_eq!(writes, Vec::<String>::new());
}

#[tokio::test]
async fn a_runner_waits_for_its_backend_and_proceeds_by_itself() {
    let mut h = Harness::new().await;
    h.apply_yaml(CLUSTER).await;
    h.apply_yaml(REDIS).await;
    h.stateful_set_ready("prod-redis", 0).await;
    h.start(prism_controllers::pattern::run);
    h.apply_yaml(PATTERN).await;
    let (status, reason, message) = eventually("BackendsReady", || condition(&h, "kv", "BackendsReady")).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "BackendNotReady"));
    assert!(message.contains("redis"), "{message}");
    assert_eq!(phase(&h, "kv").await, Some(PatternPhase::Pending));
    settle(&h.writes, Duration::from_millis(200)).await;
    assert!(h.api::<Deployment>().get_opt("kv").await.expect("get").is_none(), "no runner before its backend");

    h.stateful_set_ready("prod-redis", 1).await;
    wait_deployment(&h, "kv").await;
    let (status, _, _) = eventually("BackendsReady=True", || async {
        condition(&h, "kv", "BackendsReady").await.filter(|c| c.0 == "True")
    })
    .await;
    assert_eq!(status, "True");
}

#[tokio::test]
async fn deleted_children_come_back_and_hand_edits_are_reverted() {
    let h = ready_backends().await;
    h.apply_yaml(PATTERN).await;
    wait_deployment(&h, "kv").await;
    h.deployment_ready("kv").await;
    wait_phase(&h, "kv", PatternPhase::Running).await;

    h.api::<Service>().delete("kv", &DeleteParams::default()).await.expect("delete service");
    eventually("service recreated", || async { h.api::<Service>().get_opt("kv").await.ok().flatten() }).await;

    let edit = json!({"spec": {"template": {"spec": {"containers": [{"name": "runner", "image": "evil:latest"}]}}}});
    h.api::<Deployment>().patch("kv", &PatchParams::default(), &Patch::Strategic(&edit)).await.expect("edit");
    eventually("image reverted", || async {
        let d = h.api::<Deployment>().get("kv").await.ok()?;
        let image = d.spec?.template.spec?.containers[0].image.clone()?;
        (image == "ghcr.io/prism/keyvalue-runner:0.1.0").then_some(())
    })
    .await;
}

#[tokio::test]
async fn fields_tuned_with_kubectl_reach_the_runner_and_survive() {
    let h = ready_backends().await;
    h.apply_yaml(PATTERN).await;
    wait_deployment(&h, "kv").await;
    let tune = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern", "metadata": {"name": "kv"},
        "spec": {"resources": {"limits": {"memory": "2Gi"}}, "config": {"logLevel": "debug"}}});
    h.api::<PrismPattern>().patch("kv", &PatchParams::apply("kubectl"), &Patch::Apply(&tune)).await.expect("tune");
    eventually("resources reach the runner", || async {
        let d = h.api::<Deployment>().get("kv").await.ok()?;
        let limits = d.spec?.template.spec?.containers[0].resources.clone()?.limits?;
        (limits.get("memory")?.0 == "2Gi").then_some(())
    })
    .await;
    let config = h.api::<ConfigMap>().get("kv-config").await.expect("config");
    assert!(config.data.expect("data")["pattern.json"].contains("\"logLevel\":\"debug\""));
    settle(&h.writes, Duration::from_millis(300)).await;
    let pattern = h.api::<PrismPattern>().get("kv").await.expect("pattern");
    assert_eq!(pattern.spec.config.get("logLevel").map(String::as_str), Some("debug"));
}

#[tokio::test]
async fn switching_scalers_replaces_the_autoscaler_and_keda_absent_is_a_condition() {
    let h = ready_backends().await;
    h.apply_yaml(PATTERN).await;
    wait_deployment(&h, "kv").await;
    let hpa = json!({"spec": {"autoscaling": {"enabled": true, "scaler": "hpa", "minReplicas": 2, "maxReplicas": 5, "targetCPU": 70}}});
    h.api::<PrismPattern>().patch("kv", &PatchParams::default(), &Patch::Merge(&hpa)).await.expect("hpa");
    let created =
        eventually("hpa", || async { h.api::<HorizontalPodAutoscaler>().get_opt("kv").await.ok().flatten() }).await;
    assert_eq!(created.spec.expect("spec").max_replicas, 5);
    settle(&h.writes, Duration::from_millis(300)).await;
    let deployment = h.api::<Deployment>().get("kv").await.expect("deployment");
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(2), "replicas kept through the hand-over");

    let keda = json!({"spec": {"autoscaling": {"scaler": "keda", "triggers": [{"type": "redis", "metadata": {"listName": "q"}}]}}});
    h.api::<PrismPattern>().patch("kv", &PatchParams::default(), &Patch::Merge(&keda)).await.expect("keda");
    let (status, reason, message) = eventually("Autoscaling condition", || condition(&h, "kv", "Autoscaling")).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "KedaNotInstalled"));
    assert!(message.contains("install KEDA"));
    eventually("hpa deleted", || async {
        h.api::<HorizontalPodAutoscaler>().get_opt("kv").await.ok().flatten().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_unknown_cluster_is_reported_and_the_runner_starts_once_it_exists() {
    let mut h = Harness::new().await;
    h.start(prism_controllers::pattern::run);
    h.apply_yaml(
        &PATTERN
            .replace("backends: [{name: redis, config: {maxConnections: \"100\"}}]", "backends: [{name: memstore}]"),
    )
    .await;
    let (status, reason, message) = eventually("Ready condition", || condition(&h, "kv", "Ready")).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ClusterNotFound"));
    assert!(message.contains("\"prod\""), "{message}");
    assert_eq!(phase(&h, "kv").await, Some(PatternPhase::Pending));
    h.apply_yaml(CLUSTER).await;
    wait_deployment(&h, "kv").await;
}

#[tokio::test]
async fn a_backend_the_cluster_does_not_run_fails_with_what_to_fix() {
    let mut h = Harness::new().await;
    h.apply_yaml(CLUSTER).await;
    h.start(prism_controllers::pattern::run);
    h.apply_yaml(&PATTERN.replace("type: keyvalue", "type: producer").replace("name: redis", "name: nats")).await;
    wait_phase(&h, "kv", PatternPhase::Failed).await;
    let (_, reason, message) = condition(&h, "kv", "SpecValid").await.expect("condition");
    assert_eq!(reason, "BackendNotEnabled");
    assert!(message.contains("spec.backends.nats.enabled"), "{message}");
    settle(&h.writes, Duration::from_millis(300)).await;
    let quiet = object_writes(h.writes.take()).into_iter().filter(|w| !w.contains("prismpatterns")).count();
    assert_eq!(quiet, 0, "nothing is built for an invalid spec");
}

#[tokio::test]
async fn deletion_waits_until_the_proxy_no_longer_routes_to_the_runner() {
    let h = ready_backends().await;
    // The proxy config, labelled as the cluster labels it (the teardown finds it in its cache so).
    let labels = prism_controllers::meta::proxy_config_labels("prod");
    let routes = |patterns: serde_json::Value| -> ConfigMap {
        serde_json::from_value(
            json!({"metadata": {"name": "prod-proxy-config", "namespace": "prism", "labels": labels},
            "data": {"routes.json": json!({"cluster": "prod", "namespaces": [], "patterns": patterns}).to_string()}}),
        )
        .expect("configmap")
    };
    h.api::<ConfigMap>()
        .create(
            &PostParams::default(),
            &routes(json!([{"runner": "kv", "type": "keyvalue", "address": "kv.prism.svc:8982"}])),
        )
        .await
        .expect("routes");
    h.apply_yaml(PATTERN).await;
    eventually("finalizer", || async {
        let p = h.api::<PrismPattern>().get("kv").await.ok()?;
        p.metadata.finalizers.filter(|f| !f.is_empty())
    })
    .await;
    h.api::<PrismPattern>().delete("kv", &DeleteParams::default()).await.expect("delete");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleting = h.api::<PrismPattern>().get("kv").await.expect("still there while routed");
    assert!(deleting.metadata.deletion_timestamp.is_some());

    h.api::<ConfigMap>()
        .replace("prod-proxy-config", &PostParams::default(), &routes(json!([])))
        .await
        .expect("unroute");
    eventually("pattern gone", || async { h.api::<PrismPattern>().get_opt("kv").await.ok()?.is_none().then_some(()) })
        .await;
}
