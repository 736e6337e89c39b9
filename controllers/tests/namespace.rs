//! The PrismNamespace controller against the API emulator: readiness from its runners and the
//! API cost of getting there, dedicated versus shared runners, invalid references that recover by
//! themselves, the owner reference to the cluster, pruning on an isolation change and the
//! finalizer's order (routes first, then the dedicated runners).

mod common;

use std::time::Duration;

use common::{Harness, eventually, settle};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{NamespacePhase, PrismNamespace};
use serde_json::json;

const CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata: {name: prod, namespace: prism}
spec:
  patterns:
    - {name: keyvalue, replicas: 2}
    - {name: consumer}
"#;

const NAMESPACE: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismNamespace
metadata: {name: orders, namespace: prism}
spec:
  cluster: prod
  patterns: [keyvalue, consumer]
  isolation: namespace
  quota: {maxSessions: 100}
"#;

/// Applies a PrismNamespace manifest as an app team would (field manager `test`).
async fn apply_namespace(h: &Harness, yaml: &str) {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
    let name = value["metadata"]["name"].as_str().expect("name").to_string();
    let params = PatchParams::apply("test").force();
    h.api::<PrismNamespace>().patch(&name, &params, &Patch::Apply(&value)).await.expect("apply PrismNamespace");
}

async fn namespace(h: &Harness, name: &str) -> Option<PrismNamespace> {
    h.api::<PrismNamespace>().get_opt(name).await.ok().flatten()
}

async fn phase(h: &Harness, name: &str) -> Option<NamespacePhase> {
    namespace(h, name).await.and_then(|n| n.status).and_then(|s| s.phase)
}

async fn wait_phase(h: &Harness, name: &str, wanted: NamespacePhase) {
    eventually(&format!("{name} {wanted:?}"), || async { (phase(h, name).await == Some(wanted)).then_some(()) }).await;
}

async fn condition(h: &Harness, name: &str, type_: &str) -> Option<(String, String, String)> {
    let c = namespace(h, name).await?.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
    Some((c.status, c.reason, c.message))
}

async fn runner(h: &Harness, name: &str) -> Option<PrismPattern> {
    h.api::<PrismPattern>().get_opt(name).await.ok().flatten()
}

async fn wait_runner(h: &Harness, name: &str) -> PrismPattern {
    eventually(&format!("runner {name}"), || runner(h, name)).await
}

async fn wait_runner_gone(h: &Harness, name: &str) {
    eventually(&format!("runner {name} gone"), || async { runner(h, name).await.is_none().then_some(()) }).await;
}

/// Sets a runner's phase as the pattern controller would.
async fn runner_phase(h: &Harness, name: &str, phase: &str) {
    let status = json!({"status": {"phase": phase}});
    h.api::<PrismPattern>().patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
}

/// A shared runner as the cluster controller creates it (labelled with its cluster).
async fn shared_runner(h: &Harness, name: &str) {
    let runner = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern",
        "metadata": {"name": name, "namespace": common::NS,
            "labels": {"prism.io/cluster": "prod", "app.kubernetes.io/managed-by": "prism-operator"}},
        "spec": {"cluster": "prod", "type": "keyvalue"}});
    let params = PatchParams::apply("prism-operator/cluster").force();
    h.api::<PrismPattern>().patch(name, &params, &Patch::Apply(&runner)).await.expect("shared runner");
}

/// The proxy's routes document serving `namespaces`, as the cluster controller renders it.
/// The proxy config of cluster `prod` serving `namespaces`, labelled as the cluster labels it
/// (the teardowns find it in their caches by those labels).
fn routes(namespaces: &[&str]) -> ConfigMap {
    let served: Vec<_> =
        namespaces.iter().map(|n| json!({"name": n, "isolation": "namespace", "patterns": []})).collect();
    let document = json!({"cluster": "prod", "patterns": [], "namespaces": served});
    let labels = prism_controllers::meta::proxy_config_labels("prod");
    serde_json::from_value(json!({"metadata": {"name": "prod-proxy-config", "namespace": common::NS, "labels": labels},
        "data": {"routes.json": document.to_string()}}))
    .expect("configmap")
}

/// Object writes (not Events) as sorted "METHOD path", whatever else the harness records.
fn object_writes(writes: Vec<String>) -> Vec<String> {
    let mut writes: Vec<String> = writes
        .into_iter()
        .filter(|w| !w.contains("/events"))
        .map(|w| w.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    writes.sort();
    writes
}

fn count(writes: &[String], path: &str) -> usize {
    writes.iter().filter(|w| w.ends_with(path)).count()
}

/// A cluster defining keyvalue and consumer, and the namespace controller running.
async fn with_cluster() -> Harness {
    let mut h = Harness::new().await;
    h.apply_yaml(CLUSTER).await;
    h.start(prism_controllers::namespace::run);
    h
}

#[tokio::test]
async fn a_namespace_isolated_namespace_gets_its_runners_becomes_ready_and_then_stays_quiet() {
    let h = with_cluster().await;
    apply_namespace(&h, NAMESPACE).await;
    let kv = wait_runner(&h, "orders-keyvalue").await;
    wait_runner(&h, "orders-consumer").await;
    let (_, reason, message) = eventually("Ready condition", || condition(&h, "orders", "Ready")).await;
    assert_eq!(reason, "RunnersNotReady");
    assert!(message.contains("orders-keyvalue"), "{message}");
    assert_eq!(phase(&h, "orders").await, Some(NamespacePhase::Pending));

    // The dedicated runner: the cluster's entry, told whose it is, controlled by the namespace.
    assert_eq!(kv.spec.cluster, "prod");
    assert_eq!(kv.spec.replicas, Some(2));
    assert_eq!(kv.spec.config.get("prismNamespace").map(String::as_str), Some("orders"));
    assert_eq!(kv.spec.config.get("isolation").map(String::as_str), Some("namespace"));
    assert_eq!(kv.labels().get("prism.io/namespace").map(String::as_str), Some("orders"));
    let orders = namespace(&h, "orders").await.expect("namespace");
    let owner = kv.owner_references().first().cloned().expect("owner");
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("PrismNamespace", orders.uid().unwrap_or_default().as_str(), Some(true))
    );

    runner_phase(&h, "orders-keyvalue", "Running").await;
    runner_phase(&h, "orders-consumer", "Running").await;
    wait_phase(&h, "orders", NamespacePhase::Ready).await;
    settle(&h.writes, Duration::from_millis(300)).await;
    let status = namespace(&h, "orders").await.and_then(|n| n.status).expect("status");
    assert!(status.patterns.iter().all(|p| p.dedicated && p.ready), "{:?}", status.patterns);
    assert_eq!(status.observed_generation, orders.metadata.generation);

    let writes = object_writes(h.writes.take());
    println!("converging a PrismNamespace with 2 dedicated runners: {} object writes: {writes:#?}", writes.len());
    assert_eq!(count(&writes, "/prismpatterns/orders-keyvalue"), 1, "{writes:#?}");
    assert_eq!(count(&writes, "/prismpatterns/orders-consumer"), 1, "{writes:#?}");
    assert_eq!(count(&writes, "/prismnamespaces/orders"), 2, "finalizer and owner reference: {writes:#?}");
    assert_eq!(count(&writes, "/prismnamespaces/orders/status"), 2, "Pending, then Ready: {writes:#?}");
    assert_eq!(count(&writes, "/configmaps/orders-prism-connection"), 1, "connection details: {writes:#?}");
    assert_eq!(writes.len(), 7, "{writes:#?}");

    // The app team's connection details: named in the status, owned by the namespace, no secrets.
    let connection = status.connection.clone().expect("connection");
    assert_eq!(connection.endpoint, "prod-proxy.prism.svc:8980");
    let config = h.api::<ConfigMap>().get(&connection.config_map).await.expect("connection ConfigMap");
    let data = config.data.clone().unwrap_or_default();
    assert_eq!(data.get("PRISM_PROXY_ADDRESS").map(String::as_str), Some("prod-proxy.prism.svc:8980"));
    assert_eq!(data.get("PRISM_NAMESPACE").map(String::as_str), Some("orders"));
    assert_eq!(data.get("PRISM_PATTERNS").map(String::as_str), Some("keyvalue,consumer"));
    let patterns: serde_json::Value = serde_json::from_str(&data["patterns.json"]).expect("patterns.json");
    assert_eq!(patterns[0], json!({"name": "keyvalue", "type": "keyvalue", "endpoint": "prod-proxy.prism.svc:8980"}));
    assert_eq!(config.owner_references().first().map(|o| o.uid.clone()), orders.uid());

    // A reconcile of the unchanged, ready namespace (and a runner's unrelated change) writes nothing.
    let touch = json!({"metadata": {"labels": {"touched": "yes"}}});
    h.api::<PrismNamespace>().patch("orders", &PatchParams::default(), &Patch::Merge(&touch)).await.expect("touch");
    h.api::<PrismPattern>()
        .patch("orders-keyvalue", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .expect("touch");
    settle(&h.writes, Duration::from_millis(300)).await;
    let writes = object_writes(h.writes.take());
    println!("re-reconciling an unchanged, ready PrismNamespace: {} object writes", writes.len());
    assert_eq!(writes, Vec::<String>::new());

    // A runner that stops serving degrades the namespace.
    runner_phase(&h, "orders-consumer", "Degraded").await;
    wait_phase(&h, "orders", NamespacePhase::Degraded).await;
}

#[tokio::test]
async fn a_shared_isolation_namespace_uses_the_clusters_runner_and_wakes_when_it_runs() {
    let h = with_cluster().await;
    shared_runner(&h, "prod-keyvalue").await;
    apply_namespace(
        &h,
        &NAMESPACE.replace("[keyvalue, consumer]", "[keyvalue]").replace("isolation: namespace", "isolation: none"),
    )
    .await;
    let (status, reason, _) = eventually("Ready condition", || condition(&h, "orders", "Ready")).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "RunnersNotReady"));
    let resolved = namespace(&h, "orders").await.and_then(|n| n.status).expect("status").patterns;
    assert_eq!((resolved[0].runner.as_str(), resolved[0].dedicated), ("prod-keyvalue", false));

    runner_phase(&h, "prod-keyvalue", "Running").await;
    wait_phase(&h, "orders", NamespacePhase::Ready).await;
    settle(&h.writes, Duration::from_millis(200)).await;
    let runners = h.api::<PrismPattern>().list(&Default::default()).await.expect("list");
    let names: Vec<String> = runners.items.iter().map(|r| r.name_any()).collect();
    assert_eq!(names, ["prod-keyvalue"], "no dedicated runner without namespace isolation");
    let writes = object_writes(h.writes.take());
    assert_eq!(count(&writes, "/prismpatterns/prod-keyvalue"), 0, "the shared runner is the cluster's: {writes:#?}");
}

#[tokio::test]
async fn an_unknown_cluster_is_reported_and_the_namespace_proceeds_once_it_exists() {
    let mut h = Harness::new().await;
    h.start(prism_controllers::namespace::run);
    apply_namespace(&h, NAMESPACE).await;
    let (status, reason, message) = eventually("SpecValid", || condition(&h, "orders", "SpecValid")).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ClusterNotFound"));
    assert!(message.contains("\"prod\""), "{message}");
    assert_eq!(phase(&h, "orders").await, Some(NamespacePhase::Pending));
    settle(&h.writes, Duration::from_millis(200)).await;
    assert!(runner(&h, "orders-keyvalue").await.is_none(), "nothing is built without the cluster");

    h.apply_yaml(CLUSTER).await;
    wait_runner(&h, "orders-keyvalue").await;
    let (status, _, _) =
        eventually("SpecValid=True", || async { condition(&h, "orders", "SpecValid").await.filter(|c| c.0 == "True") })
            .await;
    assert_eq!(status, "True");
}

#[tokio::test]
async fn an_unknown_pattern_fails_with_its_name_and_recovers_when_the_cluster_defines_it() {
    let h = with_cluster().await;
    apply_namespace(&h, &NAMESPACE.replace("[keyvalue, consumer]", "[keyvalue, mailbox]")).await;
    wait_phase(&h, "orders", NamespacePhase::Failed).await;
    let (_, reason, message) = condition(&h, "orders", "SpecValid").await.expect("condition");
    assert_eq!(reason, "PatternNotFound");
    assert!(message.contains("\"mailbox\""), "{message}");
    settle(&h.writes, Duration::from_millis(200)).await;
    assert!(runner(&h, "orders-keyvalue").await.is_none(), "nothing is built for an invalid spec");

    let add = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster", "metadata": {"name": "prod"},
        "spec": {"patterns": [{"name": "keyvalue"}, {"name": "consumer"}, {"name": "mailbox", "workload": "StatefulSet"}]}});
    let clusters = h.api::<prism_api::v1beta1::PrismCluster>();
    clusters.patch("prod", &PatchParams::apply("test").force(), &Patch::Apply(&add)).await.expect("add mailbox");
    wait_runner(&h, "orders-mailbox").await;
    eventually("SpecValid=True", || async { condition(&h, "orders", "SpecValid").await.filter(|c| c.0 == "True") })
        .await;
}

#[tokio::test]
async fn an_app_team_namespace_is_tied_to_its_cluster_by_a_non_controller_owner_reference() {
    let h = with_cluster().await;
    apply_namespace(&h, NAMESPACE).await;
    let cluster = h.api::<prism_api::v1beta1::PrismCluster>().get("prod").await.expect("cluster");
    let owners = eventually("owner reference", || async {
        namespace(&h, "orders").await?.metadata.owner_references.filter(|o| !o.is_empty())
    })
    .await;
    assert_eq!(owners.len(), 1);
    assert_eq!((owners[0].kind.as_str(), owners[0].name.as_str()), ("PrismCluster", "prod"));
    assert_eq!(Some(owners[0].uid.clone()), cluster.uid());
    assert_ne!(owners[0].controller, Some(true), "never a controller reference: the cluster would prune it");
    // The app team's spec is untouched.
    let orders = namespace(&h, "orders").await.expect("namespace");
    assert_eq!(orders.spec.settings.patterns, ["keyvalue", "consumer"]);
}

#[tokio::test]
async fn a_namespace_the_cluster_created_keeps_its_controller_reference_and_gets_no_other() {
    let h = with_cluster().await;
    let cluster = h.api::<prism_api::v1beta1::PrismCluster>().get("prod").await.expect("cluster");
    let created = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace",
        "metadata": {"name": "prod-billing", "namespace": common::NS, "ownerReferences": [{"apiVersion": "prism.io/v1beta1",
            "kind": "PrismCluster", "name": "prod", "uid": cluster.uid(), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"cluster": "prod", "patterns": ["keyvalue"], "isolation": "none"}});
    let params = PatchParams::apply("prism-operator/cluster").force();
    h.api::<PrismNamespace>().patch("prod-billing", &params, &Patch::Apply(&created)).await.expect("create");
    eventually("status", || async { namespace(&h, "prod-billing").await?.status }).await;
    settle(&h.writes, Duration::from_millis(200)).await;
    let writes = object_writes(h.writes.take());
    assert_eq!(count(&writes, "/prismnamespaces/prod-billing"), 1, "the finalizer only: {writes:#?}");
    let owners = namespace(&h, "prod-billing").await.expect("namespace").metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].controller, Some(true));
}

#[tokio::test]
async fn changing_isolation_or_patterns_prunes_the_dedicated_runners_no_longer_wanted() {
    let h = with_cluster().await;
    apply_namespace(&h, NAMESPACE).await;
    wait_runner(&h, "orders-keyvalue").await;
    wait_runner(&h, "orders-consumer").await;

    apply_namespace(&h, &NAMESPACE.replace("[keyvalue, consumer]", "[keyvalue]")).await;
    wait_runner_gone(&h, "orders-consumer").await;
    assert!(runner(&h, "orders-keyvalue").await.is_some());

    apply_namespace(
        &h,
        &NAMESPACE.replace("[keyvalue, consumer]", "[keyvalue]").replace("isolation: namespace", "isolation: session"),
    )
    .await;
    wait_runner_gone(&h, "orders-keyvalue").await;
    let resolved = eventually("shared runner in status", || async {
        let patterns = namespace(&h, "orders").await?.status?.patterns;
        patterns.first().filter(|p| p.runner == "prod-keyvalue").cloned()
    })
    .await;
    assert!(!resolved.dedicated);
}

#[tokio::test]
async fn deletion_waits_until_the_proxy_no_longer_serves_the_namespace_then_removes_its_runners() {
    let h = with_cluster().await;
    h.api::<ConfigMap>().create(&PostParams::default(), &routes(&["orders"])).await.expect("routes");
    apply_namespace(&h, NAMESPACE).await;
    wait_runner(&h, "orders-keyvalue").await;
    wait_runner(&h, "orders-consumer").await;
    eventually("finalizer", || async { namespace(&h, "orders").await?.metadata.finalizers.filter(|f| !f.is_empty()) })
        .await;

    h.api::<PrismNamespace>().delete("orders", &DeleteParams::default()).await.expect("delete");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleting = namespace(&h, "orders").await.expect("still there while the proxy serves it");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert!(runner(&h, "orders-keyvalue").await.is_some(), "runners stay while the proxy may route to them");

    h.api::<ConfigMap>().replace("prod-proxy-config", &PostParams::default(), &routes(&[])).await.expect("unroute");
    wait_runner_gone(&h, "orders-keyvalue").await;
    wait_runner_gone(&h, "orders-consumer").await;
    eventually("namespace gone", || async { namespace(&h, "orders").await.is_none().then_some(()) }).await;
}

#[tokio::test]
async fn deletion_does_not_wait_for_a_cluster_that_is_gone() {
    let h = with_cluster().await;
    apply_namespace(&h, NAMESPACE).await;
    wait_runner(&h, "orders-keyvalue").await;
    eventually("finalizer", || async { namespace(&h, "orders").await?.metadata.finalizers.filter(|f| !f.is_empty()) })
        .await;
    h.api::<prism_api::v1beta1::PrismCluster>().delete("prod", &DeleteParams::default()).await.expect("delete cluster");
    // The namespace is owned by its cluster once reconciled: the garbage collector may have
    // deleted it, and let it go, before this request.
    match h.api::<PrismNamespace>().delete("orders", &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => panic!("delete: {error}"),
    }
    eventually("namespace gone", || async { namespace(&h, "orders").await.is_none().then_some(()) }).await;
    assert!(runner(&h, "orders-keyvalue").await.is_none());
}

fn sample(name: &str) -> String {
    let path = format!("{}/../samples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("sample")
}

/// The proxy's routes of cluster `cluster` as the cluster controller rendered them.
async fn proxy_routes(h: &Harness, cluster: &str) -> Option<prism_controllers::routes::Routes> {
    let config = h.api::<ConfigMap>().get_opt(&format!("{cluster}-proxy-config")).await.ok().flatten();
    prism_controllers::routes::Routes::from_config_map(config.as_ref())
}

/// All three controllers with simulated workloads, the sample cluster and the app team's
/// namespace, both of its namespaces Ready.
async fn samples_ready() -> Harness {
    let mut h = Harness::new().await;
    h.simulate_workloads();
    h.start(prism_controllers::pattern::run);
    h.start(prism_controllers::cluster::run);
    h.start(prism_controllers::namespace::run);
    h.apply_yaml(&sample("prism-local.yaml")).await;
    apply_namespace(&h, &sample("app-team-namespace.yaml")).await;
    wait_phase(&h, "prism-local-orders", NamespacePhase::Ready).await;
    wait_phase(&h, "payments", NamespacePhase::Ready).await;
    h
}

/// All three controllers with simulated workloads: the sample's own namespace and an app team's
/// become Ready on their dedicated runners, the proxy serves both, and deleting the app team's
/// namespace takes it out of the routes before its runners go.
#[tokio::test]
async fn the_whole_hierarchy_serves_the_samples_namespaces_and_tears_one_down_in_order() {
    let h = samples_ready().await;
    let cluster = h.api::<prism_api::v1beta1::PrismCluster>().get("prism-local").await.expect("cluster");
    let payments = namespace(&h, "payments").await.expect("payments");
    let tie = payments.owner_references().iter().find(|o| Some(&o.uid) == cluster.metadata.uid.as_ref()).cloned();
    assert_ne!(tie.expect("owner reference to the cluster").controller, Some(true));
    for runner_name in ["prism-local-orders-keyvalue", "payments-keyvalue", "payments-consumer"] {
        let r = runner(&h, runner_name).await.expect(runner_name);
        assert_eq!(r.owner_references()[0].kind, "PrismNamespace", "{runner_name}");
    }
    let routes = eventually("routes serve payments", || async {
        proxy_routes(&h, "prism-local").await.filter(|r| r.serves_namespace("payments"))
    })
    .await;
    assert!(routes.routes_to_runner("payments-keyvalue"), "{routes:?}");
    settle(&h.writes, Duration::from_millis(500)).await;
    let writes = h.writes.take();
    let mine: Vec<&String> = writes.iter().filter(|w| w.ends_with("by prism-operator/namespace")).collect();
    println!("the whole hierarchy: {} writes by the namespace controller: {mine:#?}", mine.len());
    let payments_writes: Vec<&&String> = mine.iter().filter(|w| w.contains("payments")).collect();
    let status_writes = payments_writes.iter().filter(|w| w.contains("/status ")).count();
    assert_eq!(
        payments_writes.len() - status_writes,
        4,
        "owner reference, 2 runners and the connection details: {payments_writes:#?}"
    );
    assert!(status_writes <= 3, "status written once per readiness change: {payments_writes:#?}");

    // Quiet once converged: nothing more from the namespace controller.
    let touch = json!({"metadata": {"labels": {"touched": "yes"}}});
    h.api::<PrismNamespace>().patch("payments", &PatchParams::default(), &Patch::Merge(&touch)).await.expect("touch");
    settle(&h.writes, Duration::from_millis(500)).await;
    let again: Vec<String> =
        h.writes.take().into_iter().filter(|w| w.ends_with("by prism-operator/namespace")).collect();
    assert_eq!(again, Vec::<String>::new());

    h.api::<PrismNamespace>().delete("payments", &DeleteParams::default()).await.expect("delete");
    eventually("payments gone", || async { namespace(&h, "payments").await.is_none().then_some(()) }).await;
    wait_runner_gone(&h, "payments-keyvalue").await;
    wait_runner_gone(&h, "payments-consumer").await;
    let routes = proxy_routes(&h, "prism-local").await.expect("routes");
    assert!(!routes.serves_namespace("payments") && !routes.routes_to_runner("payments-keyvalue"), "{routes:?}");
    assert!(routes.serves_namespace("prism-local-orders"));
}

#[tokio::test]
async fn dedicated_runners_follow_their_cluster_entry_and_come_back_when_deleted() {
    let h = with_cluster().await;
    apply_namespace(&h, NAMESPACE).await;
    wait_runner(&h, "orders-keyvalue").await;

    let scale = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster", "metadata": {"name": "prod"},
        "spec": {"patterns": [{"name": "keyvalue", "replicas": 3}, {"name": "consumer"}]}});
    let clusters = h.api::<prism_api::v1beta1::PrismCluster>();
    clusters.patch("prod", &PatchParams::apply("test").force(), &Patch::Apply(&scale)).await.expect("scale");
    eventually("replicas follow the cluster", || async {
        (runner(&h, "orders-keyvalue").await?.spec.replicas == Some(3)).then_some(())
    })
    .await;

    h.api::<PrismPattern>().delete("orders-consumer", &DeleteParams::default()).await.expect("delete runner");
    eventually("runner recreated", || async {
        runner(&h, "orders-consumer").await.filter(|r| r.metadata.deletion_timestamp.is_none())
    })
    .await;
}

#[tokio::test]
async fn a_paused_cluster_stops_runner_writes_and_the_namespace_says_so() {
    let h = with_cluster().await;
    apply_namespace(&h, NAMESPACE).await;
    wait_runner(&h, "orders-keyvalue").await;
    wait_runner(&h, "orders-consumer").await;
    let pause = json!({"spec": {"paused": true}});
    let clusters = h.api::<prism_api::v1beta1::PrismCluster>();
    clusters.patch("prod", &PatchParams::default(), &Patch::Merge(&pause)).await.expect("pause");
    eventually("Paused", || async { condition(&h, "orders", "Paused").await.filter(|c| c.0 == "True") }).await;
    settle(&h.writes, Duration::from_millis(200)).await;
    h.writes.take();

    apply_namespace(&h, &NAMESPACE.replace("[keyvalue, consumer]", "[keyvalue]")).await;
    h.api::<PrismPattern>().delete("orders-keyvalue", &DeleteParams::default()).await.expect("delete runner");
    settle(&h.writes, Duration::from_millis(500)).await;
    let writes = object_writes(h.writes.take());
    assert_eq!(count(&writes, "/prismpatterns/orders-consumer") + count(&writes, "/prismpatterns/orders-keyvalue"), 0);
    assert!(runner(&h, "orders-consumer").await.is_some(), "not pruned while paused");
    assert!(runner(&h, "orders-keyvalue").await.is_none(), "not recreated while paused");

    let resume = json!({"spec": {"paused": false}});
    clusters.patch("prod", &PatchParams::default(), &Patch::Merge(&resume)).await.expect("resume");
    wait_runner(&h, "orders-keyvalue").await;
    wait_runner_gone(&h, "orders-consumer").await;
}

/// Deleting the cluster takes every namespace with it: its own by its ordered teardown, an app
/// team's by garbage collection through the owner reference this controller added; dedicated
/// runners go with their namespaces.
#[tokio::test]
async fn deleting_the_cluster_takes_its_own_and_app_team_namespaces_with_their_runners() {
    let h = samples_ready().await;

    let clusters = h.api::<prism_api::v1beta1::PrismCluster>();
    clusters.delete("prism-local", &DeleteParams::default()).await.expect("delete cluster");
    for name in ["prism-local-orders", "payments"] {
        eventually(&format!("{name} gone"), || async { namespace(&h, name).await.is_none().then_some(()) }).await;
    }
    for name in ["prism-local-orders-keyvalue", "payments-keyvalue", "payments-consumer"] {
        wait_runner_gone(&h, name).await;
    }
    eventually("cluster gone", || async { clusters.get_opt("prism-local").await.ok()?.is_none().then_some(()) }).await;
}

#[tokio::test]
async fn a_dedicated_runner_name_another_namespace_has_is_refused_and_not_taken_over() {
    let mut h = Harness::new().await;
    h.apply_yaml(
        r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata: {name: prod, namespace: prism}
spec:
  patterns:
    - {name: keyvalue}
    - {name: eu-keyvalue, type: keyvalue}
"#,
    )
    .await;
    h.start(prism_controllers::namespace::run);
    let dedicated = |name: &str, pattern: &str| {
        format!(
            "{{apiVersion: prism.io/v1beta1, kind: PrismNamespace, metadata: {{name: {name}, namespace: prism}}, \
             spec: {{cluster: prod, patterns: [{pattern}], isolation: namespace}}}}"
        )
    };
    // "orders" + "eu-keyvalue" and "orders-eu" + "keyvalue" both make the runner "orders-eu-keyvalue".
    apply_namespace(&h, &dedicated("orders", "eu-keyvalue")).await;
    let first = wait_runner(&h, "orders-eu-keyvalue").await;
    apply_namespace(&h, &dedicated("orders-eu", "keyvalue")).await;

    wait_phase(&h, "orders-eu", NamespacePhase::Failed).await;
    let (status, reason, message) = eventually("Ready", || condition(&h, "orders-eu", "Ready")).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "RunnerNameClash"));
    assert!(message.contains("\"orders-eu-keyvalue\"") && message.contains("PrismNamespace \"orders\""), "{message}");
    settle(&h.writes, Duration::from_millis(300)).await;
    let kept = runner(&h, "orders-eu-keyvalue").await.expect("the first namespace's runner stays");
    assert_eq!(kept.owner_references(), first.owner_references(), "not taken over");
    assert_eq!(kept.metadata.resource_version, first.metadata.resource_version, "not written");
}
