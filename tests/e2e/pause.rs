//! Scenario 11: a paused PrismCluster receives no writes to its children while paused (proved by
//! the emulator's request accounting: nothing written by the cluster controller's field manager
//! but the PrismCluster's own status, no deletes by the operator), even when its spec changes and
//! a child is deleted meanwhile; resumed, it catches up.

use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube_emulator::instruments::accounting::RequestRecord;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};

use crate::clusters::{
    LIMIT, condition, converged, kubectl_ok, kubectl_patch, log_tail, patterns_converged, settle, wait_for,
};
use crate::harness::Env;

const CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: pz
spec:
  proxy: {replicas: 1}
  patterns:
    - {name: keyvalue, backends: [redis]}
  backends:
    redis: {enabled: true, version: "7-alpine", storage: 1Gi}
"#;

const FIELD_MANAGER: &str = "prism-operator/cluster";

fn describe(r: &RequestRecord) -> String {
    format!("{} {} (manager {:?}, agent {})", r.info.verb, r.uri, r.info.field_manager, r.info.user_agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_cluster_gets_no_writes_to_its_children_and_catches_up_when_resumed() {
    let mut env = Env::new("pause").await;
    if !env.emulated() {
        eprintln!(
            "skipped on a real cluster: proving that nothing was written needs the emulator's request accounting"
        );
        return;
    }
    let started = Instant::now();
    env.start_operator("a", &[]);
    env.apply(CLUSTER).await;
    converged(&env, "pz").await;
    patterns_converged(&env, &["pz-keyvalue"]).await;
    settle(&env).await;
    let requests = &env.emulator().instruments.requests;
    // The operator's user agent, to attribute its deletes (a DELETE carries no field manager).
    let agent = requests
        .snapshot()
        .log
        .iter()
        .find(|r| r.info.field_manager.as_deref() == Some(FIELD_MANAGER))
        .map(|r| r.info.user_agent.clone())
        .expect("the cluster controller wrote with its field manager");
    let from = requests.snapshot().log.last().map_or(0, |r| r.seq);

    kubectl_patch(&env, "prismcluster/pz", "merge", r#"{"spec": {"paused": true}}"#).await;
    let clusters = env.api::<PrismCluster>();
    wait_for(&env, "Paused=True", LIMIT, || async {
        let c = clusters.get_opt("pz").await.ok().flatten()?;
        let status = c.status?;
        let paused = condition(&status.conditions, "Paused")?;
        (paused.status == "True" && status.observed_generation == c.metadata.generation).then_some(())
    })
    .await;
    // While paused: the spec changes (more proxy replicas, a new pattern) and a child is deleted.
    kubectl_patch(&env, "prismcluster/pz", "merge", r#"{"spec": {"proxy": {"replicas": 3}}}"#).await;
    kubectl_patch(
        &env,
        "prismcluster/pz",
        "json",
        r#"[{"op": "add", "path": "/spec/patterns/-", "value": {"name": "producer", "backends": ["memstore"]}}]"#,
    )
    .await;
    kubectl_ok(&env, &["delete", "service/pz-admin", "--wait=false"]).await;
    let paused = wait_for(&env, "the paused cluster to observe its latest spec", LIMIT, || async {
        let c = clusters.get_opt("pz").await.ok().flatten()?;
        (c.status.as_ref()?.observed_generation == c.metadata.generation).then_some(c)
    })
    .await;
    settle(&env).await;

    let log = requests.snapshot().log;
    let window: Vec<&RequestRecord> = log.iter().filter(|r| r.seq > from).collect();
    let to_children: Vec<String> = window
        .iter()
        .filter(|r| r.info.field_manager.as_deref() == Some(FIELD_MANAGER) && r.info.resource != "prismclusters")
        .filter(|r| kube_emulator::request_info::WRITE_VERBS.contains(&r.info.verb.as_str()))
        .map(|r| describe(r))
        .collect();
    let deletes: Vec<String> = window
        .iter()
        .filter(|r| r.info.user_agent == agent && r.info.verb == "delete" && r.info.resource != "leases")
        .map(|r| describe(r))
        .collect();
    let own = window
        .iter()
        .filter(|r| r.info.field_manager.as_deref() == Some(FIELD_MANAGER) && r.info.resource == "prismclusters")
        .count();
    println!("while paused: {own} writes to the PrismCluster's status, {} to children", to_children.len());
    assert_eq!(to_children, Vec::<String>::new(), "no writes to children while paused\n{}", log_tail(&env, 40));
    assert_eq!(deletes, Vec::<String>::new(), "no deletes while paused");
    assert_eq!(paused.status.as_ref().and_then(|s| s.phase), Some(ClusterPhase::Running), "the phase is kept");
    let deployments = env.api::<Deployment>();
    let proxy = deployments.get("pz-proxy").await.expect("proxy");
    assert_eq!(proxy.spec.and_then(|s| s.replicas), Some(1), "the proxy is not scaled while paused");
    assert!(env.api::<PrismPattern>().get_opt("pz-producer").await.expect("get").is_none(), "no new pattern");
    assert!(env.api::<Service>().get_opt("pz-admin").await.expect("get").is_none(), "no repair while paused");
    println!("paused for {:?}", started.elapsed());

    // Resumed: everything held back happens.
    let resumed = Instant::now();
    kubectl_patch(&env, "prismcluster/pz", "merge", r#"{"spec": {"paused": false}}"#).await;
    wait_for(&env, "the proxy scaled to 3", LIMIT, || async {
        let d = deployments.get_opt("pz-proxy").await.ok().flatten()?;
        (d.spec?.replicas == Some(3)).then_some(())
    })
    .await;
    wait_for(&env, "the admin Service back", LIMIT, || async {
        env.api::<Service>().get_opt("pz-admin").await.ok().flatten()
    })
    .await;
    patterns_converged(&env, &["pz-keyvalue", "pz-producer"]).await;
    let cluster = converged(&env, "pz").await;
    let status = cluster.status.expect("status");
    assert_eq!(condition(&status.conditions, "Paused").map(|c| c.status.as_str()), Some("False"));
    assert_eq!(status.ready_patterns.as_deref(), Some("2/2"));
    println!("caught up {:?} after resuming ({:?} in all)", resumed.elapsed(), started.elapsed());
}

/// Found by the soak (issue 17, seed 1): an app team's PrismNamespace or a PrismPattern deleted
/// while its cluster is paused waits, as designed, for the paused cluster's proxy to stop serving
/// it. While it waited, the operator GETted the proxy's ConfigMap every 2 s (the driver requeued
/// a waiting teardown every 2 s and the check read the API, not a cache), for as long as the
/// cluster stayed paused: the operator was never idle. A waiting teardown now reads the routes
/// from its controller's cache and is woken by their change: it sends nothing while nothing
/// changes, and both deletions complete once the cluster resumes (long before any resync).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_waiting_on_a_paused_cluster_sends_no_requests_and_completes_when_resumed() {
    let mut env = Env::new("pause-wait").await;
    if !env.emulated() {
        eprintln!("skipped on a real cluster: counting the operator's requests needs the emulator's accounting");
        return;
    }
    let agent = "paused-waiter";
    let kubeconfig = env.tagged_kubeconfig(agent).await.display().to_string();
    env.start_operator("a", &["--kubeconfig", &kubeconfig, "--leader-elect=false"]);
    env.apply(CLUSTER).await;
    env.apply(&APP_NAMESPACE.replace("NAMESPACE", &env.namespace)).await;
    env.apply(&HAND_MADE_PATTERN.replace("NAMESPACE", &env.namespace)).await;
    converged(&env, "pz").await;
    patterns_converged(&env, &["pz-keyvalue", "hand"]).await;
    let configs = env.api::<ConfigMap>();
    wait_for(&env, "the proxy routing to both runners", LIMIT, || async {
        let routes = configs.get_opt("pz-proxy-config").await.ok().flatten()?.data?.remove("routes.json")?;
        (routes.contains("\"hand\"") && routes.contains("\"team\"")).then_some(())
    })
    .await;
    kubectl_patch(&env, "prismcluster/pz", "merge", r#"{"spec": {"paused": true}}"#).await;
    let clusters = env.api::<PrismCluster>();
    wait_for(&env, "Paused=True", LIMIT, || async {
        let status = clusters.get_opt("pz").await.ok().flatten()?.status?;
        (condition(&status.conditions, "Paused")?.status == "True").then_some(())
    })
    .await;
    kubectl_ok(&env, &["delete", "prismnamespace/team", "prismpattern/hand", "--wait=false"]).await;
    settle(&env).await;

    let requests = &env.emulator().instruments.requests;
    let before = requests.snapshot().log.last().map_or(0, |r| r.seq);
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let sent: Vec<String> = requests
        .log_after(before)
        .iter()
        .filter(|r| r.info.user_agent.starts_with(agent) && r.info.resource != "leases")
        .map(|r| format!("{} {}", r.info.verb, r.uri))
        .collect();
    let (namespaces, patterns) = (env.api::<PrismNamespace>(), env.api::<PrismPattern>());
    let namespace = namespaces.get_opt("team").await.expect("get");
    assert!(
        namespace.is_some_and(|n| n.metadata.deletion_timestamp.is_some()),
        "the namespace's deletion waits for the paused cluster's proxy to stop serving it"
    );
    let pattern = patterns.get_opt("hand").await.expect("get");
    assert!(
        pattern.is_some_and(|p| p.metadata.deletion_timestamp.is_some()),
        "the pattern's deletion waits for the paused cluster's proxy to stop routing to it"
    );
    assert_eq!(sent, Vec::<String>::new(), "a waiting deletion sends nothing while nothing changes");

    let resumed = Instant::now();
    kubectl_patch(&env, "prismcluster/pz", "merge", r#"{"spec": {"paused": false}}"#).await;
    wait_for(&env, "both deletions completed after resuming", LIMIT, || async {
        let namespace = namespaces.get_opt("team").await.ok()?;
        let pattern = patterns.get_opt("hand").await.ok()?;
        (namespace.is_none() && pattern.is_none()).then_some(())
    })
    .await;
    println!("both deletions completed {:?} after resuming", resumed.elapsed());
}

const APP_NAMESPACE: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismNamespace
metadata:
  name: team
  namespace: NAMESPACE
spec:
  cluster: pz
  patterns: [keyvalue]
  isolation: none
"#;

/// A runner made by hand (not in the cluster's spec), which the proxy routes to all the same.
const HAND_MADE_PATTERN: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismPattern
metadata:
  name: hand
  namespace: NAMESPACE
spec:
  cluster: pz
  type: keyvalue
  backends: [{name: redis}]
"#;
