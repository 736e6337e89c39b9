//! Scenario 2: changes made at runtime with kubectl reach the right children and roll only the
//! pods whose configuration changed: add a pattern, change the proxy's autoscaling bounds, enable
//! a backend for a runner, change a namespace's quota.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;

use crate::clusters::{
    LIMIT, Rollout, changes, converged, kubectl_patch, patterns_converged, rollouts, routes, settle, wait_for,
};
use crate::harness::Env;

const CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: rt
spec:
  proxy:
    replicas: 1
    autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 3, targetCPU: 70}
  patterns:
    - {name: keyvalue, backends: [redis]}
    - {name: mailbox, backends: [sqlite]}
  namespaces:
    - name: orders
      patterns: [keyvalue]
      isolation: none
      quota: {maxSessions: 100}
  backends:
    redis: {enabled: true, version: "7-alpine", storage: 1Gi}
"#;

/// The state every step starts from and is compared with.
async fn steady(env: &Env, patterns: &[&str]) -> BTreeMap<String, Rollout> {
    converged(env, "rt").await;
    patterns_converged(env, patterns).await;
    settle(env).await;
    rollouts(env).await
}

fn config_hash(all: &BTreeMap<String, Rollout>, name: &str) -> Option<String> {
    all.get(name).and_then(|r| r.config_hash.clone())
}

fn env_names(deployment: &Deployment) -> Vec<String> {
    let spec = deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    spec.into_iter().flat_map(|s| &s.containers).flat_map(|c| c.env.iter().flatten()).map(|e| e.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_changes_reach_the_right_children_and_roll_only_what_changed() {
    let started = Instant::now();
    let mut env = Env::new("runtime").await;
    env.start_operator("a", &[]);
    env.apply(CLUSTER).await;
    let before = steady(&env, &["rt-keyvalue", "rt-mailbox"]).await;
    for expected in ["Deployment/rt-admin", "Deployment/rt-proxy", "Deployment/rt-keyvalue", "Deployment/rt-mailbox"] {
        assert!(before.contains_key(expected), "{expected} exists: {:?}", before.keys());
    }
    println!("converged in {:?}", started.elapsed());

    // 1. A pattern added with a JSON patch: its PrismPattern and runner appear; the proxy's routes
    //    list the new runner, so the proxy (and nothing else) rolls, once.
    let step = Instant::now();
    kubectl_patch(
        &env,
        "prismcluster/rt",
        "json",
        r#"[{"op": "add", "path": "/spec/patterns/-", "value": {"name": "producer", "backends": ["memstore"]}}]"#,
    )
    .await;
    let after = steady(&env, &["rt-keyvalue", "rt-mailbox", "rt-producer"]).await;
    let routes_now = routes(&env, "rt").await.expect("routes");
    assert!(routes_now.to_string().contains("rt-producer"), "the proxy routes to the new runner: {routes_now}");
    let c = changes(&before, &after);
    assert_eq!(c.appeared, vec!["Deployment/rt-producer"], "{c:?}");
    assert_eq!(c.rolled, vec!["Deployment/rt-proxy"], "only the proxy rolls (its routes changed): {c:?}");
    assert!(c.respecified.is_empty() && c.gone.is_empty(), "{c:?}");
    let proxy = |all: &BTreeMap<String, Rollout>| all["Deployment/rt-proxy"].generation;
    assert_eq!(proxy(&after), proxy(&before) + 1, "the proxy rolls once, not once per child appearing");
    println!("add a pattern: {:?}", step.elapsed());

    // 2. Autoscaling bounds: the HPA changes; no workload's spec does.
    let step = Instant::now();
    let before = after;
    kubectl_patch(
        &env,
        "prismcluster/rt",
        "merge",
        r#"{"spec": {"proxy": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}}}}"#,
    )
    .await;
    let hpas = env.api::<HorizontalPodAutoscaler>();
    wait_for(&env, "the proxy's HPA bounds 2..6", LIMIT, || async {
        let spec = hpas.get_opt("rt-proxy").await.ok().flatten()?.spec?;
        (spec.min_replicas == Some(2) && spec.max_replicas == 6).then_some(())
    })
    .await;
    let after = steady(&env, &["rt-keyvalue", "rt-mailbox", "rt-producer"]).await;
    // The autoscaler itself scales the proxy up to its new minimum (through /scale, as a real
    // HPA does); the operator changes no workload's spec.
    let c = changes(&before, &after);
    assert!(c.rolled.is_empty() && c.appeared.is_empty() && c.gone.is_empty(), "{c:?}");
    assert!(c.respecified.iter().all(|w| w == "Deployment/rt-proxy"), "{c:?}");
    let deployments = env.api::<Deployment>();
    let proxy = wait_for(&env, "the proxy scaled to the HPA's minimum", LIMIT, || async {
        let proxy = deployments.get_opt("rt-proxy").await.ok().flatten()?;
        (proxy.spec.as_ref()?.replicas == Some(2)).then_some(proxy)
    })
    .await;
    let scaled_by = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry| {
        m.manager.as_deref() == Some("horizontal-pod-autoscaler")
    };
    assert!(proxy.metadata.managed_fields.iter().flatten().any(scaled_by), "by the autoscaler");
    println!("autoscaling bounds: {:?}", step.elapsed());

    // 3. A backend enabled and given to the mailbox runner: its StatefulSet appears, the mailbox
    //    runner gets its connection settings and rolls; the proxy's routes do not change.
    let step = Instant::now();
    let before = after;
    kubectl_patch(
        &env,
        "prismcluster/rt",
        "json",
        r#"[{"op": "add", "path": "/spec/backends/nats", "value": {"enabled": true, "version": "2.10-alpine"}},
            {"op": "test", "path": "/spec/patterns/1/name", "value": "mailbox"},
            {"op": "replace", "path": "/spec/patterns/1/backends", "value": ["sqlite", "nats"]}]"#,
    )
    .await;
    let deployments = env.api::<Deployment>();
    let mailbox = wait_for(&env, "the mailbox runner with NATS_URL", LIMIT, || async {
        let d = deployments.get_opt("rt-mailbox").await.ok().flatten()?;
        env_names(&d).contains(&"NATS_URL".to_string()).then_some(d)
    })
    .await;
    assert!(env_names(&mailbox).contains(&"SQLITE_PATH".to_string()), "{:?}", env_names(&mailbox));
    let after = steady(&env, &["rt-keyvalue", "rt-mailbox", "rt-producer"]).await;
    assert!(env.api::<StatefulSet>().get_opt("rt-nats").await.expect("get").is_some());
    let c = changes(&before, &after);
    assert_eq!(c.appeared, vec!["StatefulSet/rt-nats"], "{c:?}");
    assert_eq!(c.rolled, vec!["Deployment/rt-mailbox"], "only the runner using the backend rolls: {c:?}");
    assert_ne!(config_hash(&before, "Deployment/rt-mailbox"), config_hash(&after, "Deployment/rt-mailbox"));
    assert!(c.respecified.is_empty() && c.gone.is_empty(), "{c:?}");
    println!("enable a backend: {:?}", step.elapsed());

    // 4. A namespace's quota: the PrismNamespace and the routes change, the proxy's config hash
    //    with them; only the proxy rolls.
    let step = Instant::now();
    let before = after;
    let routes_before = routes(&env, "rt").await.expect("routes");
    kubectl_patch(
        &env,
        "prismcluster/rt",
        "json",
        r#"[{"op": "test", "path": "/spec/namespaces/0/name", "value": "orders"},
            {"op": "replace", "path": "/spec/namespaces/0/quota/maxSessions", "value": 250}]"#,
    )
    .await;
    let namespaces = env.api::<PrismNamespace>();
    wait_for(&env, "the PrismNamespace's quota", LIMIT, || async {
        let n = namespaces.get_opt("rt-orders").await.ok().flatten()?;
        (n.spec.settings.quota?.max_sessions == Some(250)).then_some(())
    })
    .await;
    wait_for(&env, "the routes' quota", LIMIT, || async {
        let r = routes(&env, "rt").await?;
        let orders = r["namespaces"].as_array()?.iter().find(|n| n["name"] == "rt-orders")?.clone();
        (orders["quota"]["maxSessions"] == 250).then_some(())
    })
    .await;
    let after = steady(&env, &["rt-keyvalue", "rt-mailbox", "rt-producer"]).await;
    assert_ne!(routes(&env, "rt").await, Some(routes_before));
    let c = changes(&before, &after);
    assert_eq!(c.rolled, vec!["Deployment/rt-proxy"], "only the proxy rolls: {c:?}");
    assert_ne!(config_hash(&before, "Deployment/rt-proxy"), config_hash(&after, "Deployment/rt-proxy"));
    assert!(c.appeared.is_empty() && c.respecified.is_empty() && c.gone.is_empty(), "{c:?}");
    println!("namespace quota: {:?}", step.elapsed());

    let patterns = env.api::<PrismPattern>().list(&Default::default()).await.expect("list");
    assert_eq!(patterns.items.len(), 3, "no stray PrismPatterns");
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
    println!("runtime changes: {:?} in all", started.elapsed());
}
