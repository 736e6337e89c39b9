//! The API's semantics as kube-apiserver 1.33 has them, measured with clients the emulator was
//! not written against: strictly typed k8s-openapi objects, and the real server's answers
//! (code, reason, message) to what it refuses.

mod common;

use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn typed<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

fn pod_template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
}

fn workload_spec(app: &str) -> Value {
    json!({"selector": {"matchLabels": {"app": app}}, "template": pod_template(app)})
}

/// Creates `body` with a typed client: the answer must decode into `T` (k8s-openapi's types
/// require the fields the Go types never omit), and returns it as JSON.
async fn create_typed<T>(client: &Client, body: Value) -> Value
where
    T: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    T::DynamicType: Default,
{
    let api: Api<T> = Api::default_namespaced(client.clone());
    let created = api.create(&PostParams::default(), &typed::<T>(body)).await.expect("created and decoded");
    serde_json::to_value(created).expect("json")
}

#[tokio::test]
async fn new_built_in_objects_carry_the_status_fields_their_go_types_never_omit() {
    let (_emulator, client) = common::in_process();
    let sts =
        create_typed::<StatefulSet>(&client, json!({"metadata": {"name": "db"}, "spec": workload_spec("db")})).await;
    assert_eq!(sts["status"], json!({"replicas": 0, "availableReplicas": 0}));
    let rs =
        create_typed::<ReplicaSet>(&client, json!({"metadata": {"name": "rs"}, "spec": workload_spec("rs")})).await;
    assert_eq!(rs["status"], json!({"replicas": 0}));
    let ds = create_typed::<DaemonSet>(&client, json!({"metadata": {"name": "ds"}, "spec": workload_spec("ds")})).await;
    assert_eq!(
        ds["status"],
        json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0})
    );
    let rc = create_typed::<ReplicationController>(
        &client,
        json!({"metadata": {"name": "rc"}, "spec": {"selector": {"app": "rc"}, "template": pod_template("rc")}}),
    )
    .await;
    assert_eq!(rc["status"], json!({"replicas": 0}));
    let hpa = create_typed::<HorizontalPodAutoscaler>(
        &client,
        json!({"metadata": {"name": "hpa"}, "spec": {"maxReplicas": 3,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}}}),
    )
    .await;
    assert_eq!(hpa["status"], json!({"desiredReplicas": 0}));
    let pdb = create_typed::<PodDisruptionBudget>(
        &client,
        json!({"metadata": {"name": "pdb"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}),
    )
    .await;
    assert_eq!(
        pdb["status"],
        json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
    );
    let ing = create_typed::<Ingress>(
        &client,
        json!({"metadata": {"name": "ing"}, "spec": {"defaultBackend": {"service": {"name": "db", "port": {"number": 80}}}}}),
    )
    .await;
    assert_eq!(ing["status"], json!({"loadBalancer": {}}));
}

#[tokio::test]
async fn a_partial_status_write_keeps_the_zero_values() {
    let (_emulator, client) = common::in_process();
    create_typed::<PodDisruptionBudget>(
        &client,
        json!({"metadata": {"name": "pdb"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "db"}}}}),
    )
    .await;
    let api: Api<PodDisruptionBudget> = Api::default_namespaced(client);
    let patch = json!({"status": {"observedGeneration": 1, "expectedPods": 2}});
    let written = api.patch_status("pdb", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("decoded");
    let status = written.status.expect("status");
    assert_eq!((status.observed_generation, status.expected_pods, status.current_healthy), (Some(1), 2, 0));
    let read = api.get("pdb").await.expect("get decodes");
    assert_eq!(read.status.map(|s| s.disruptions_allowed), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_shows_the_zero_status_of_a_new_statefulset() {
    let env = common::kubectl::Env::start().await;
    let manifest = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": workload_spec("db")});
    let file = env.file("sts.yaml", &manifest.to_string());
    let out = env.ok(&["create", "-f", &file, "-o", "jsonpath={.status}"]).await;
    assert_eq!(serde_json::from_str::<Value>(&out).expect("json"), json!({"replicas": 0, "availableReplicas": 0}));
}
