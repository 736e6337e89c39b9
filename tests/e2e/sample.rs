//! Scenario 1: the sample applied with kubectl converges, and `kubectl get prism` shows the tree.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::Resource;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};

use crate::harness::{Env, eventually, sample};

fn controlled_by<K: Resource>(child: &K, owner: &impl Resource) -> bool {
    let uid = owner.meta().uid.as_deref();
    child.meta().owner_references.iter().flatten().any(|o| Some(o.uid.as_str()) == uid && o.controller == Some(true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_converges_and_kubectl_shows_the_tree() {
    let mut env = Env::new("sample").await;
    env.start_operator("a", &[]);
    env.apply(&sample("prism-local.yaml", &env.namespace)).await;
    if !env.emulated() {
        eprintln!("real cluster: readiness depends on Prism's images being pullable; checking structure only");
    }
    let clusters = env.api::<PrismCluster>();
    let limit = Duration::from_secs(60);
    let cluster = eventually("children created", limit, || async {
        let c = clusters.get_opt("prism-local").await.ok().flatten()?;
        let patterns = env.api::<PrismPattern>().list(&Default::default()).await.ok()?;
        env.api::<PrismNamespace>().get_opt("prism-local-orders").await.ok().flatten()?;
        env.api::<Deployment>().get_opt("prism-local-consumer").await.ok().flatten()?;
        (patterns.items.len() >= 4).then_some(c)
    })
    .await;
    for name in ["prism-local-redis", "prism-local-nats", "prism-local-minio"] {
        let set = env.api::<StatefulSet>().get(name).await.expect(name);
        assert!(controlled_by(&set, &cluster), "{name} is controlled by the cluster");
    }
    for name in ["prism-local-admin", "prism-local-proxy"] {
        assert!(controlled_by(&env.api::<Deployment>().get(name).await.expect(name), &cluster));
    }
    let namespace = env.api::<PrismNamespace>().get("prism-local-orders").await.expect("namespace");
    assert!(controlled_by(&namespace, &cluster));
    let runner = env.api::<Deployment>().get("prism-local-consumer").await.expect("runner");
    let pattern = env.api::<PrismPattern>().get("prism-local-consumer").await.expect("pattern");
    assert!(controlled_by(&runner, &pattern), "a runner is controlled by its PrismPattern");

    if env.emulated() {
        let running = eventually("Running", limit, || async {
            let c = clusters.get_opt("prism-local").await.ok().flatten()?;
            let status = c.status.clone()?;
            (status.phase == Some(ClusterPhase::Running) && status.observed_generation == c.metadata.generation)
                .then_some(status)
        })
        .await;
        assert!(running.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    }

    let table = env.kubectl(&["get", "prism"]).await;
    assert!(table.success, "{}", table.stderr);
    println!("kubectl get prism:\n{}", table.stdout);
    for expected in [
        "prismcluster.prism.io/prism-local",
        "prismnamespace.prism.io/prism-local-orders",
        "prismpattern.prism.io/prism-local-keyvalue",
        "PHASE",
        "READY",
        "PATTERNS",
        "TYPE",
        "WORKLOAD",
        "ISOLATION",
    ] {
        assert!(table.stdout.contains(expected), "`kubectl get prism` shows {expected}:\n{}", table.stdout);
    }
    if env.emulated() {
        assert!(table.stdout.contains("Running"), "{}", table.stdout);
    }
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
}
