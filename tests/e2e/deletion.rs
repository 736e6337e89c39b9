//! Scenario 5: deleting a PrismCluster with kubectl tears it down in order (its PrismNamespaces,
//! then its PrismPatterns, then the proxy and admin, then the backends), recorded by watching the
//! deletions; with the default Retain policy only the data volumes and their credentials remain;
//! with `deletionPolicy: Delete` nothing of the cluster remains.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::{StreamExt, stream::BoxStream};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;

use crate::clusters::{LIMIT, converged, kubectl_ok, log_tail, patterns_converged, read_until, wait_for};
use crate::harness::Env;

fn cluster(name: &str, policy: &str) -> String {
    format!(
        r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: {name}
  annotations:
    # Deletion with policy Delete deletes data: the webhook wants it confirmed.
    prism.io/confirm-data-deletion: {name}
spec:
  deletionPolicy: {policy}
  patterns:
    - {{name: keyvalue, backends: [redis]}}
    - {{name: consumer, backends: [nats]}}
  namespaces:
    - {{name: orders, patterns: [keyvalue], isolation: none}}
  backends:
    redis: {{enabled: true, version: "7-alpine", storage: 1Gi}}
    nats: {{enabled: true, version: "2.10-alpine"}}
"#
    )
}

/// One object seen going: its kind, name and the resourceVersion of its deletion.
#[derive(Clone, Debug)]
struct Gone {
    kind: &'static str,
    name: String,
    resource_version: String,
    /// Arrival order, for servers whose resourceVersions are not comparable numbers.
    seen: usize,
}

/// Deletions of `K` objects, as they happen.
fn deletions<K>(
    api: Api<PartialObjectMeta<K>>,
    kind: &'static str,
    synced: Arc<AtomicUsize>,
) -> BoxStream<'static, (&'static str, String, String)>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Clone + Eq + std::hash::Hash,
{
    // Backed off: when the scenario's API server stops, a watcher retrying without pause never
    // yields, and the test's runtime cannot shut down.
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| {
            let synced = synced.clone();
            async move {
                match event {
                    Ok(Event::InitDone) => {
                        synced.fetch_add(1, Ordering::SeqCst);
                        None
                    }
                    Ok(Event::Delete(object)) => Some((
                        kind,
                        object.metadata.name.clone().unwrap_or_default(),
                        object.metadata.resource_version.clone().unwrap_or_default(),
                    )),
                    _ => None,
                }
            }
        })
        .boxed()
}

/// Records the deletions of the cluster's PrismNamespaces, PrismPatterns, Deployments and
/// StatefulSets from now on.
async fn record_deletions(env: &Env) -> Arc<Mutex<Vec<Gone>>> {
    let synced = Arc::new(AtomicUsize::new(0));
    let streams = vec![
        deletions(env.api::<PartialObjectMeta<PrismNamespace>>(), "PrismNamespace", synced.clone()),
        deletions(env.api::<PartialObjectMeta<PrismPattern>>(), "PrismPattern", synced.clone()),
        deletions(env.api::<PartialObjectMeta<Deployment>>(), "Deployment", synced.clone()),
        deletions(env.api::<PartialObjectMeta<StatefulSet>>(), "StatefulSet", synced.clone()),
    ];
    let record = Arc::new(Mutex::new(Vec::new()));
    let sink = record.clone();
    tokio::spawn(async move {
        let mut all = futures::stream::select_all(streams);
        while let Some((kind, name, resource_version)) = all.next().await {
            let mut gone = sink.lock().expect("record");
            let seen = gone.len();
            gone.push(Gone { kind, name, resource_version, seen });
        }
    });
    wait_for(env, "the deletion watches to start", LIMIT, || async {
        (synced.load(Ordering::SeqCst) >= 4).then_some(())
    })
    .await;
    record
}

/// Everything left in the scenario's namespace, by kind (what the server creates by itself, the
/// root CA ConfigMap, does not count).
async fn leftovers(env: &Env) -> BTreeMap<&'static str, Vec<String>> {
    async fn names<K>(api: Api<K>) -> Vec<String>
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    {
        let list = api.list_metadata(&Default::default()).await.expect("list");
        let mut names: Vec<String> = list.items.into_iter().filter_map(|o| o.metadata.name).collect();
        names.retain(|n| n != "kube-root-ca.crt");
        names.sort();
        names
    }
    let mut all = BTreeMap::new();
    all.insert("PrismCluster", names(env.api::<PrismCluster>()).await);
    all.insert("PrismNamespace", names(env.api::<PrismNamespace>()).await);
    all.insert("PrismPattern", names(env.api::<PrismPattern>()).await);
    all.insert("Deployment", names(env.api::<Deployment>()).await);
    all.insert("StatefulSet", names(env.api::<StatefulSet>()).await);
    all.insert("Service", names(env.api::<Service>()).await);
    all.insert("ConfigMap", names(env.api::<ConfigMap>()).await);
    all.insert("Secret", names(env.api::<Secret>()).await);
    all.insert("PodDisruptionBudget", names(env.api::<PodDisruptionBudget>()).await);
    all.insert("HorizontalPodAutoscaler", names(env.api::<HorizontalPodAutoscaler>()).await);
    all.insert("Ingress", names(env.api::<Ingress>()).await);
    all.insert("PersistentVolumeClaim", names(env.api::<PersistentVolumeClaim>()).await);
    all.retain(|_, v| !v.is_empty());
    all
}

async fn running_with_volumes(env: &Env, name: &str) {
    converged(env, name).await;
    patterns_converged(env, &[&format!("{name}-keyvalue"), &format!("{name}-consumer")]).await;
    if env.emulated() {
        let pvcs = env.api::<PersistentVolumeClaim>();
        wait_for(env, "the redis data volume", LIMIT, || async {
            let list = pvcs.list_metadata(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|p| p.metadata.name.as_deref().is_some_and(|n| n.contains(&format!("{name}-redis"))))
                .then_some(())
        })
        .await;
    }
}

async fn delete_and_wait(env: &Env, name: &str) {
    kubectl_ok(env, &["delete", &format!("prismcluster/{name}"), "--wait=false"]).await;
    let clusters = env.api::<PrismCluster>();
    wait_for(env, &format!("PrismCluster {name} gone"), LIMIT, || async {
        clusters.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;
}

/// The teardown stage an object belongs to, if it is one whose order is promised.
fn stage(cluster: &str, gone: &Gone) -> Option<usize> {
    match gone.kind {
        "PrismNamespace" => Some(0),
        "PrismPattern" => Some(1),
        "Deployment" if [format!("{cluster}-proxy"), format!("{cluster}-admin")].contains(&gone.name) => Some(2),
        "StatefulSet" if [format!("{cluster}-redis"), format!("{cluster}-nats")].contains(&gone.name) => Some(3),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_cluster_tears_down_in_order_and_keeps_only_data_and_credentials() {
    let started = Instant::now();
    let mut env = Env::new("deletion").await;
    env.start_operator("a", &[]);
    env.apply(&cluster("del", "Retain")).await;
    running_with_volumes(&env, "del").await;
    let record = record_deletions(&env).await;
    let teardown = Instant::now();
    delete_and_wait(&env, "del").await;
    println!("teardown took {:?}", teardown.elapsed());

    // Garbage collection takes what the cluster owned; data and credentials carry no owner.
    let remaining = read_until(
        LIMIT,
        || leftovers(&env),
        |left| left.keys().all(|k| ["PersistentVolumeClaim", "Secret"].contains(k)),
    )
    .await;
    println!("left after deleting del: {remaining:?}");
    assert!(
        remaining.keys().all(|k| ["PersistentVolumeClaim", "Secret"].contains(k)),
        "only data volumes and credentials remain: {remaining:?}\n{}",
        log_tail(&env, 60)
    );
    assert_eq!(remaining.get("Secret"), Some(&vec!["del-redis-credentials".to_string()]), "{remaining:?}");
    if env.emulated() {
        let volumes = remaining.get("PersistentVolumeClaim").cloned().unwrap_or_default();
        assert!(volumes.iter().any(|v| v.contains("del-redis")), "the backend's data volume is retained: {volumes:?}");
        assert!(volumes.iter().any(|v| v.contains("del-admin")), "and the admin's: {volumes:?}");
    }

    let gone = record.lock().expect("record").clone();
    let numeric = gone.iter().all(|g| g.resource_version.parse::<u64>().is_ok());
    let at = |g: &Gone| if numeric { g.resource_version.parse::<u64>().unwrap_or_default() } else { g.seen as u64 };
    let mut ordered: Vec<&Gone> = gone.iter().collect();
    ordered.sort_by_key(|g| at(g));
    let order: Vec<String> = ordered.iter().map(|g| format!("{}/{}", g.kind, g.name)).collect();
    println!("deletion order: {order:?}");
    for expected in [
        "PrismNamespace/del-orders",
        "PrismPattern/del-keyvalue",
        "PrismPattern/del-consumer",
        "Deployment/del-proxy",
        "Deployment/del-admin",
        "StatefulSet/del-redis",
        "StatefulSet/del-nats",
    ] {
        assert!(order.contains(&expected.to_string()), "{expected} was seen going: {order:?}");
    }
    for earlier in 0..3 {
        let last_of = ordered.iter().filter(|g| stage("del", g) == Some(earlier)).map(|g| at(g)).max();
        let first_of_next = ordered.iter().filter(|g| stage("del", g) > Some(earlier)).map(|g| at(g)).min();
        if let (Some(last), Some(next)) = (last_of, first_of_next) {
            assert!(
                last < next,
                "teardown order: namespaces, patterns, proxy and admin, backends; stage {earlier} ended after a later \
                 one began: {order:?}"
            );
        }
    }
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
    println!("deletion with Retain: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_delete_policy_nothing_of_the_cluster_remains() {
    let started = Instant::now();
    let mut env = Env::new("deletion-all").await;
    env.start_operator("a", &[]);
    env.apply(&cluster("gone", "Delete")).await;
    running_with_volumes(&env, "gone").await;
    delete_and_wait(&env, "gone").await;
    let remaining = read_until(LIMIT, || leftovers(&env), BTreeMap::is_empty).await;
    assert!(remaining.is_empty(), "nothing of the cluster remains: {remaining:?}\n{}", log_tail(&env, 60));
    println!("deletion with Delete: {:?}", started.elapsed());
}

/// `kubectl delete namespace` with a running cluster inside: the namespace controller deletes
/// everything at once and forbids new objects there, and the operator's finalizers must still
/// complete (nothing they wait for may need creating), or the namespace stays Terminating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_namespace_of_a_running_cluster_completes() {
    let started = Instant::now();
    let mut env = Env::new("deletion-ns").await;
    // The lease lives in the scenario's namespace: without election nothing else needs it.
    env.start_operator("a", &["--leader-elect=false"]);
    env.apply(&cluster("doomed", "Retain")).await;
    running_with_volumes(&env, "doomed").await;
    kubectl_ok(&env, &["delete", "namespace", &env.namespace, "--wait=false"]).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let gone =
        read_until(LIMIT, || async { namespaces.get_opt(&env.namespace).await.ok().flatten() }, Option::is_none).await;
    assert!(
        gone.is_none(),
        "the namespace is still there: {:?}; left in it: {:?}\n{}",
        gone.and_then(|n| n.status).and_then(|s| s.conditions),
        leftovers(&env).await,
        log_tail(&env, 60)
    );
    println!("namespace deletion: {:?}", started.elapsed());
}

/// With the Delete policy, a backend removed from the spec takes its data along: its volumes go
/// (the cluster deletes them) and so does its credentials Secret, which the cluster's sweep
/// deletes. The Secret carries the credentials' protection finalizer, released only while its
/// backend is enabled (to recreate it) or when the whole cluster goes: it must not stay
/// Terminating for as long as the cluster lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_delete_policy_a_removed_backends_credentials_go() {
    let mut env = Env::new("deletion-backend").await;
    env.start_operator("a", &["--leader-elect=false"]);
    let manifest = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: drop
spec:
  deletionPolicy: Delete
  patterns:
    - {name: keyvalue, backends: [memstore]}
  backends:
    redis: {enabled: true, version: "7-alpine", storage: 1Gi}
"#;
    env.apply(manifest).await;
    converged(&env, "drop").await;
    let secrets = env.api::<Secret>();
    wait_for(&env, "the redis credentials", LIMIT, || async {
        secrets.get_opt("drop-redis-credentials").await.ok().flatten()
    })
    .await;
    let volume = "data-drop-redis-0";
    let volumes = env.api::<PersistentVolumeClaim>();
    if env.emulated() {
        wait_for(&env, "the redis data volume", LIMIT, || async { volumes.get_opt(volume).await.ok().flatten() }).await;
    }

    kubectl_ok(
        &env,
        &["patch", "prismcluster/drop", "--type", "merge", "-p", r#"{"spec": {"backends": {"redis": null}}}"#],
    )
    .await;
    converged(&env, "drop").await;
    let left =
        read_until(LIMIT, || async { secrets.get_opt("drop-redis-credentials").await.ok().flatten() }, Option::is_none)
            .await;
    assert!(
        left.is_none(),
        "the removed backend's credentials are still there: deletionTimestamp {:?}, finalizers {:?}\n{}",
        left.as_ref().and_then(|s| s.metadata.deletion_timestamp.clone()),
        left.as_ref().and_then(|s| s.metadata.finalizers.clone()),
        log_tail(&env, 40)
    );
    if env.emulated() {
        let left = read_until(
            LIMIT,
            || async { volumes.get_opt(volume).await.ok().flatten() },
            |v| v.as_ref().is_none_or(|v| v.metadata.deletion_timestamp.is_some()),
        )
        .await;
        assert!(
            left.as_ref().is_none_or(|v| v.metadata.deletion_timestamp.is_some()),
            "the removed backend's volume {volume} is still there\n{}",
            log_tail(&env, 40)
        );
    }
}
