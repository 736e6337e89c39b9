//! The PrismCluster controller against the API emulator (with simulated workloads): the sample
//! converges, changes at runtime reach the right children, pause, adoption, self-healing and the
//! ordered teardown that keeps data.

mod common;

use std::time::Duration;

use common::{Harness, NS, eventually, settle};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use serde_json::json;

fn sample() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/prism-local.yaml")).expect("sample")
}

const SMALL: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata: {name: small, namespace: prism}
spec:
  patterns:
    - {name: keyvalue, backends: [redis]}
  backends:
    redis: {enabled: true, version: "7-alpine", storage: 1Gi}
"#;

async fn start(yaml: &str) -> Harness {
    let mut h = Harness::new().await;
    h.simulate_workloads();
    h.start(prism_controllers::pattern::run);
    h.start(prism_controllers::cluster::run);
    h.apply_yaml(yaml).await;
    h
}

async fn phase(h: &Harness, name: &str) -> Option<ClusterPhase> {
    h.api::<PrismCluster>().get_opt(name).await.ok().flatten()?.status?.phase
}

async fn wait_running(h: &Harness, name: &str) -> PrismCluster {
    eventually(&format!("{name} Running"), || async {
        let c = h.api::<PrismCluster>().get_opt(name).await.ok().flatten()?;
        (c.status.as_ref()?.phase == Some(ClusterPhase::Running)).then_some(c)
    })
    .await
}

fn writes_by(writes: &[String], manager: &str) -> Vec<String> {
    let mut mine: Vec<String> =
        writes.iter().filter(|w| w.ends_with(&format!("by {manager}")) && !w.contains("/events")).cloned().collect();
    mine.sort();
    mine
}

fn controlled_by_cluster<K: Resource>(object: &K, cluster: &PrismCluster) -> bool {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == cluster.meta().uid.as_ref() && o.controller == Some(true))
}

#[tokio::test]
async fn the_sample_converges_with_one_write_per_child_and_then_stays_quiet() {
    let h = start(&sample()).await;
    let cluster = wait_running(&h, "prism-local").await;
    settle(&h.writes, Duration::from_millis(400)).await;
    let writes = h.writes.take();
    let mine = writes_by(&writes, "prism-operator/cluster");
    let mut distinct = mine.clone();
    distinct.dedup();
    let status_writes = mine.iter().filter(|w| w.contains("/status ")).count();
    let repeated: Vec<&String> =
        distinct.iter().filter(|w| !w.contains("/status ") && mine.iter().filter(|m| m == w).count() > 1).collect();
    println!(
        "converging prism-local: {} writes by the cluster controller: {} children, {} status writes, repeated: {repeated:?}",
        mine.len(),
        distinct.len() - 1,
        status_writes
    );
    assert!(repeated.is_empty(), "each child written once: {mine:#?}");

    let status = cluster.status.expect("status");
    assert_eq!(status.observed_generation, cluster.metadata.generation);
    assert!(status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    assert_eq!(status.ready_patterns.as_deref(), Some("4/4"));
    let observability = status.conditions.iter().find(|c| c.type_ == "Observability").expect("condition");
    assert_eq!(observability.reason, "ServiceMonitorAPIMissing", "no Prometheus Operator here, and the status says so");

    for name in ["prism-local-redis", "prism-local-nats", "prism-local-minio"] {
        let set = h.api::<StatefulSet>().get(name).await.expect(name);
        assert!(controlled_by_cluster(&set, &h.api::<PrismCluster>().get("prism-local").await.expect("cluster")));
    }
    let live = h.api::<PrismCluster>().get("prism-local").await.expect("cluster");
    for name in ["prism-local-admin", "prism-local-proxy"] {
        assert!(controlled_by_cluster(&h.api::<Deployment>().get(name).await.expect(name), &live));
    }
    assert!(h.api::<HorizontalPodAutoscaler>().get_opt("prism-local-proxy").await.expect("get").is_some());
    assert!(h.api::<Ingress>().get_opt("prism-local-proxy").await.expect("get").is_some());
    for pattern in ["keyvalue", "consumer", "producer", "mailbox"] {
        let child = h.api::<PrismPattern>().get(&format!("prism-local-{pattern}")).await.expect(pattern);
        assert!(controlled_by_cluster(&child, &live));
    }
    let orders = h.api::<PrismNamespace>().get("prism-local-orders").await.expect("namespace");
    assert!(controlled_by_cluster(&orders, &live));
    let secret = h.api::<Secret>().get("prism-local-redis-credentials").await.expect("secret");
    assert!(
        secret.metadata.owner_references.is_none(),
        "retained credentials are not garbage-collected with the cluster"
    );

    let touch = json!({"metadata": {"labels": {"touched": "yes"}}});
    h.api::<PrismCluster>().patch("prism-local", &PatchParams::default(), &Patch::Merge(&touch)).await.expect("touch");
    settle(&h.writes, Duration::from_millis(400)).await;
    let quiet = writes_by(&h.writes.take(), "prism-operator/cluster");
    println!("re-reconciling an unchanged, ready cluster: {} writes", quiet.len());
    assert_eq!(quiet, Vec::<String>::new());
}

#[tokio::test]
async fn runtime_changes_reach_the_right_children() {
    let h = start(SMALL).await;
    wait_running(&h, "small").await;
    let change = json!({"spec": {
        "patterns": [{"name": "keyvalue", "backends": ["redis"]}, {"name": "producer", "backends": ["nats"]}],
        "backends": {"nats": {"enabled": true, "version": "2.10-alpine"}},
        "proxy": {"replicas": 3}
    }});
    h.api::<PrismCluster>().patch("small", &PatchParams::default(), &Patch::Merge(&change)).await.expect("change");
    eventually("nats", || async { h.api::<StatefulSet>().get_opt("small-nats").await.ok().flatten() }).await;
    eventually("producer", || async { h.api::<PrismPattern>().get_opt("small-producer").await.ok().flatten() }).await;
    eventually("proxy replicas", || async {
        let d = h.api::<Deployment>().get("small-proxy").await.ok()?;
        (d.spec?.replicas == Some(3)).then_some(())
    })
    .await;
    wait_running(&h, "small").await;

    let remove = json!({"spec": {"patterns": [{"name": "producer", "backends": ["nats"]}]}});
    h.api::<PrismCluster>().patch("small", &PatchParams::default(), &Patch::Merge(&remove)).await.expect("remove");
    eventually("keyvalue pruned", || async {
        h.api::<PrismPattern>().get_opt("small-keyvalue").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_paused_cluster_writes_nothing_to_its_children_and_catches_up() {
    let h = start(SMALL).await;
    wait_running(&h, "small").await;
    settle(&h.writes, Duration::from_millis(300)).await;
    h.writes.take();
    let pause = json!({"spec": {"paused": true, "proxy": {"replicas": 4}}});
    h.api::<PrismCluster>().patch("small", &PatchParams::default(), &Patch::Merge(&pause)).await.expect("pause");
    eventually("Paused condition", || async {
        let c = h.api::<PrismCluster>().get("small").await.ok()?;
        c.status?.conditions.into_iter().find(|c| c.type_ == "Paused" && c.status == "True")
    })
    .await;
    settle(&h.writes, Duration::from_millis(400)).await;
    let while_paused: Vec<String> = writes_by(&h.writes.take(), "prism-operator/cluster")
        .into_iter()
        .filter(|w| !w.contains("/prismclusters/"))
        .collect();
    assert_eq!(while_paused, Vec::<String>::new(), "no writes to children while paused");
    assert_eq!(phase(&h, "small").await, Some(ClusterPhase::Running), "the phase is kept");
    assert_eq!(h.api::<Deployment>().get("small-proxy").await.expect("proxy").spec.and_then(|s| s.replicas), Some(1));

    let resume = json!({"spec": {"paused": false}});
    h.api::<PrismCluster>().patch("small", &PatchParams::default(), &Patch::Merge(&resume)).await.expect("resume");
    eventually("caught up", || async {
        let d = h.api::<Deployment>().get("small-proxy").await.ok()?;
        (d.spec?.replicas == Some(4)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn deleted_children_come_back_and_credentials_never_change() {
    let h = start(SMALL).await;
    wait_running(&h, "small").await;
    let before = h.api::<Secret>().get("small-redis-credentials").await.expect("secret").data;
    h.api::<StatefulSet>().delete("small-redis", &DeleteParams::default()).await.expect("delete");
    h.api::<Service>().delete("small-admin", &DeleteParams::default()).await.expect("delete");
    eventually("redis back", || async { h.api::<StatefulSet>().get_opt("small-redis").await.ok().flatten() }).await;
    eventually("admin service back", || async { h.api::<Service>().get_opt("small-admin").await.ok().flatten() }).await;
    wait_running(&h, "small").await;
    let after = h.api::<Secret>().get("small-redis-credentials").await.expect("secret").data;
    assert_eq!(before, after, "a regenerated password would cut the runners off from their data");
}

#[tokio::test]
async fn existing_unowned_objects_are_adopted_not_duplicated() {
    let mut h = Harness::new().await;
    h.simulate_workloads();
    let orphan: Service = serde_json::from_value(json!({
        "metadata": {"name": "small-admin", "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "prism-operator", "prism.io/cluster": "small"}},
        "spec": {"ports": [{"name": "grpc", "port": 8981}], "selector": {"app": "old"}}
    }))
    .expect("service");
    h.api::<Service>().create(&PostParams::default(), &orphan).await.expect("create");
    h.start(prism_controllers::pattern::run);
    h.start(prism_controllers::cluster::run);
    h.apply_yaml(SMALL).await;
    let cluster = wait_running(&h, "small").await;
    let adopted = h.api::<Service>().get("small-admin").await.expect("service");
    assert!(controlled_by_cluster(&adopted, &cluster));
    assert_eq!(
        adopted.spec.and_then(|s| s.selector).expect("selector").get("app.kubernetes.io/component").map(String::as_str),
        Some("admin")
    );
    let services =
        h.api::<Service>().list(&ListParams::default().labels("prism.io/cluster=small")).await.expect("list");
    assert_eq!(services.items.iter().filter(|s| s.name_any() == "small-admin").count(), 1);
}

#[tokio::test]
async fn two_clusters_share_a_namespace_without_clashing() {
    let h = start(SMALL).await;
    h.apply_yaml(&SMALL.replace("name: small", "name: other")).await;
    let small = wait_running(&h, "small").await;
    let other = wait_running(&h, "other").await;
    for (cluster, name) in [(&small, "small-redis"), (&other, "other-redis")] {
        assert!(controlled_by_cluster(&h.api::<StatefulSet>().get(name).await.expect(name), cluster));
    }
    let small_pattern = h.api::<PrismPattern>().get("small-keyvalue").await.expect("pattern");
    assert_eq!(small_pattern.spec.cluster, "small");
}

#[tokio::test]
async fn deletion_tears_down_in_order_and_keeps_data_by_default() {
    let h = start(SMALL).await;
    wait_running(&h, "small").await;
    eventually("redis volume", || async {
        let pvcs = h.api::<PersistentVolumeClaim>().list(&ListParams::default()).await.ok()?;
        pvcs.items.into_iter().find(|p| p.name_any().contains("small-redis"))
    })
    .await;
    h.api::<PrismCluster>().delete("small", &DeleteParams::default()).await.expect("delete");
    eventually("cluster gone", || async {
        h.api::<PrismCluster>().get_opt("small").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(h.api::<PrismPattern>().get_opt("small-keyvalue").await.expect("get").is_none());
    assert!(h.api::<StatefulSet>().get_opt("small-redis").await.expect("get").is_none());
    assert!(h.api::<Deployment>().get_opt("small-proxy").await.expect("get").is_none());
    let pvcs = h.api::<PersistentVolumeClaim>().list(&ListParams::default()).await.expect("list");
    assert!(pvcs.items.iter().any(|p| p.name_any().contains("small-redis")), "data volumes are retained");
    assert!(
        h.api::<Secret>().get_opt("small-redis-credentials").await.expect("get").is_some(),
        "and their credentials"
    );
}

#[tokio::test]
async fn deletion_with_the_delete_policy_leaves_nothing() {
    let h = start(&SMALL.replace("spec:\n", "spec:\n  deletionPolicy: Delete\n")).await;
    wait_running(&h, "small").await;
    h.api::<PrismCluster>().delete("small", &DeleteParams::default()).await.expect("delete");
    eventually("cluster gone", || async {
        h.api::<PrismCluster>().get_opt("small").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually("volumes gone", || async {
        let pvcs = h.api::<PersistentVolumeClaim>().list(&ListParams::default()).await.ok()?;
        pvcs.items.is_empty().then_some(())
    })
    .await;
    assert!(h.api::<Secret>().get_opt("small-redis-credentials").await.expect("get").is_none());
}

#[tokio::test]
async fn a_spec_that_cannot_be_realised_fails_with_what_to_fix() {
    let h = start(&SMALL.replace("{name: keyvalue, backends: [redis]}", "{name: producer, backends: [nats]}")).await;
    eventually("Failed", || async { (phase(&h, "small").await == Some(ClusterPhase::Failed)).then_some(()) }).await;
    let cluster = h.api::<PrismCluster>().get("small").await.expect("cluster");
    let valid =
        cluster.status.expect("status").conditions.into_iter().find(|c| c.type_ == "SpecValid").expect("condition");
    assert_eq!(valid.reason, "BackendNotEnabled");
    assert!(valid.message.contains("spec.backends.nats.enabled"));
}

/// An operator restarted (or a new leader) over a converged cluster fills its caches by listing
/// and reconciles everything again: it writes nothing, not even an Event.
#[tokio::test]
async fn a_restarted_operator_writes_nothing_to_a_converged_cluster() {
    let mut h = start(&sample()).await;
    h.start(prism_controllers::namespace::run);
    wait_running(&h, "prism-local").await;
    settle(&h.writes, Duration::from_millis(1500)).await;
    h.stop_controllers();
    h.writes.take();
    let before = reconciles(&h, "prismcluster");

    h.start(prism_controllers::pattern::run);
    h.start(prism_controllers::cluster::run);
    h.start(prism_controllers::namespace::run);
    // Long enough for the caches to list and every object to be reconciled again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle(&h.writes, Duration::from_millis(1500)).await;
    let writes = h.writes.take();
    assert!(reconciles(&h, "prismcluster") > before, "the restarted controllers reconciled the cluster again");
    assert!(writes.is_empty(), "a restart writes nothing: {writes:#?}");
}

/// How many reconciles `controller` started, from the operator's metrics.
fn reconciles(h: &Harness, controller: &str) -> u64 {
    let prefix = format!("prism_operator_reconcile_total{{controller=\"{controller}\"}} ");
    h.ctx.metrics.encode().lines().find_map(|l| l.strip_prefix(&prefix)?.parse().ok()).unwrap_or(0)
}

/// Found by the soak (seed 13): a cluster paused while its spec cannot be realised reported
/// Paused=False (NotPaused), though nothing of it is written either way.
#[tokio::test]
async fn a_paused_cluster_says_so_even_when_its_spec_cannot_be_realised() {
    let h = start(&SMALL.replace("{name: keyvalue, backends: [redis]}", "{name: producer, backends: [nats]}")).await;
    eventually("Failed", || async { (phase(&h, "small").await == Some(ClusterPhase::Failed)).then_some(()) }).await;
    let pause = json!({"spec": {"paused": true}});
    h.api::<PrismCluster>().patch("small", &PatchParams::default(), &Patch::Merge(&pause)).await.expect("pause");
    let status = eventually("the paused generation observed", || async {
        let c = h.api::<PrismCluster>().get("small").await.ok()?;
        let status = c.status?;
        (status.observed_generation == c.metadata.generation).then_some(status)
    })
    .await;
    let paused = status.conditions.iter().find(|c| c.type_ == "Paused").expect("Paused condition");
    assert_eq!((paused.status.as_str(), paused.reason.as_str()), ("True", "SpecPaused"), "{paused:?}");
    assert_eq!(status.phase, Some(ClusterPhase::Failed), "the spec still cannot be realised");
}

/// Found by the soak (seed 10482285126338165731): a credentials Secret deleted by hand while its
/// Retain cluster writes nothing (paused, or its spec cannot be realised) lingers on its
/// protection, data intact; the cluster's teardown then released the protection, the deletion
/// completed, and the next cluster of the name generated new credentials for the data its retained
/// volumes hold. Retained credentials outlive the cluster: the teardown recreates the Secret with
/// the same data (unprotected, as retained credentials are), as a live cluster would have.
#[tokio::test]
async fn retained_credentials_deleted_by_hand_outlive_the_teardown_with_the_same_data() {
    let h = start(SMALL).await;
    wait_running(&h, "small").await;
    let secrets = h.api::<Secret>();
    let before = secrets.get("small-redis-credentials").await.expect("secret");
    let pause = json!({"spec": {"paused": true}});
    h.api::<PrismCluster>().patch("small", &PatchParams::default(), &Patch::Merge(&pause)).await.expect("pause");
    eventually("the paused generation observed", || async {
        let c = h.api::<PrismCluster>().get("small").await.ok()?;
        (c.status?.observed_generation == c.metadata.generation).then_some(())
    })
    .await;
    secrets.delete("small-redis-credentials", &DeleteParams::default()).await.expect("delete by hand");
    let lingering = secrets.get("small-redis-credentials").await.expect("held by its protection");
    assert!(lingering.metadata.deletion_timestamp.is_some());

    h.api::<PrismCluster>().delete("small", &DeleteParams::default()).await.expect("delete the cluster");
    eventually("the cluster gone", || async {
        h.api::<PrismCluster>().get_opt("small").await.ok()?.is_none().then_some(())
    })
    .await;
    let kept = secrets.get_opt("small-redis-credentials").await.expect("get").expect("the credentials are retained");
    assert_eq!(kept.data, before.data, "the same credentials, for the data the retained volumes hold");
    assert!(kept.metadata.deletion_timestamp.is_none(), "no longer being deleted");
    assert!(kept.metadata.finalizers.unwrap_or_default().is_empty(), "retained credentials are not protected");
    assert!(kept.metadata.owner_references.unwrap_or_default().is_empty(), "nor owned");
}
