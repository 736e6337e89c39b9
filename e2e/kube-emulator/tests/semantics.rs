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

// ---------------------------------------------------------------- validation (item 2)

async fn create_dynamic(client: &Client, api_version: &str, kind: &str, body: Value) -> Result<Value, kube::Error> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.expect("discovered");
    let api: Api<kube::api::DynamicObject> = Api::default_namespaced_with(client.clone(), &ar);
    let mut body = body;
    body["apiVersion"] = json!(api_version);
    body["kind"] = json!(kind);
    let obj: kube::api::DynamicObject = serde_json::from_value(body).expect("object");
    api.create(&PostParams::default(), &obj).await.map(|o| serde_json::to_value(o).expect("json"))
}

#[tokio::test]
async fn workloads_whose_selector_misses_their_template_are_invalid() {
    let (_emulator, client) = common::in_process();
    let mut spec = workload_spec("web");
    spec["selector"] = json!({"matchLabels": {"app": "other"}});
    for (api_version, kind, group) in [
        ("apps/v1", "Deployment", "apps"),
        ("apps/v1", "ReplicaSet", "apps"),
        ("apps/v1", "StatefulSet", "apps"),
        ("apps/v1", "DaemonSet", "apps"),
    ] {
        let err = create_dynamic(&client, api_version, kind, json!({"metadata": {"name": "web"}, "spec": spec}))
            .await
            .expect_err("mismatch refused");
        let s = common::status_of(err);
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{kind}");
        assert_eq!(
            s.message,
            format!(
                "{kind}.{group} \"web\" is invalid: spec.template.metadata.labels: Invalid value: {{\"app\":\"web\"}}: `selector` does not match template `labels`"
            )
        );
        let cause = &s.details.expect("details").causes[0];
        assert_eq!(
            (cause.reason.as_str(), cause.field.as_str()),
            ("FieldValueInvalid", "spec.template.metadata.labels")
        );
    }
    let mut no_selector = workload_spec("web");
    no_selector["selector"] = Value::Null;
    let err = create_dynamic(&client, "apps/v1", "Deployment", json!({"metadata": {"name": "a"}, "spec": no_selector}))
        .await
        .expect_err("no selector");
    assert_eq!(
        common::status_of(err).message,
        "Deployment.apps \"a\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`]"
    );
    let mut empty = workload_spec("web");
    empty["selector"] = json!({});
    let err = create_dynamic(&client, "apps/v1", "ReplicaSet", json!({"metadata": {"name": "b"}, "spec": empty}))
        .await
        .expect_err("empty selector");
    assert_eq!(
        common::status_of(err).message,
        "ReplicaSet.apps \"b\" is invalid: spec.selector: Invalid value: {}: empty selector is invalid for deployment"
    );
    let mut never = workload_spec("web");
    never["template"]["spec"]["restartPolicy"] = json!("Never");
    let err = create_dynamic(&client, "apps/v1", "Deployment", json!({"metadata": {"name": "c"}, "spec": never}))
        .await
        .expect_err("restartPolicy");
    assert_eq!(
        common::status_of(err).message,
        "Deployment.apps \"c\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
    );
}

#[tokio::test]
async fn a_mismatch_introduced_by_an_update_is_invalid_too() {
    let (_emulator, client) = common::in_process();
    create_dynamic(
        &client,
        "apps/v1",
        "Deployment",
        json!({"metadata": {"name": "web"}, "spec": workload_spec("web")}),
    )
    .await
    .expect("created");
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::default_namespaced(client);
    let patch = json!({"spec": {"template": {"metadata": {"labels": {"app": "moved"}}}}});
    let err = api.patch("web", &PatchParams::default(), &Patch::Strategic(&patch)).await.expect_err("refused");
    let s = common::status_of(err);
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains("Invalid value: {\"app\":\"moved\"}: `selector` does not match template `labels`"),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn jobs_get_a_generated_selector_and_refuse_bad_ones() {
    let (_emulator, client) = common::in_process();
    let mut template = pod_template("batch");
    template["spec"]["restartPolicy"] = json!("Never");
    let job =
        create_dynamic(&client, "batch/v1", "Job", json!({"metadata": {"name": "pi"}, "spec": {"template": template}}))
            .await
            .expect("created");
    let uid = job["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(job["spec"]["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
    let labels = &job["spec"]["template"]["metadata"]["labels"];
    for (k, v) in
        [("job-name", "pi"), ("batch.kubernetes.io/job-name", "pi"), ("controller-uid", uid), ("app", "batch")]
    {
        assert_eq!(labels[k], v, "{k}");
    }
    assert_eq!(
        (&job["spec"]["completions"], &job["spec"]["backoffLimit"], &job["spec"]["completionMode"]),
        (&json!(1), &json!(6), &json!("NonIndexed"))
    );
    let mut manual =
        json!({"manualSelector": true, "selector": {"matchLabels": {"app": "other"}}, "template": template});
    let err = create_dynamic(&client, "batch/v1", "Job", json!({"metadata": {"name": "m"}, "spec": manual}))
        .await
        .expect_err("mismatch");
    assert_eq!(
        common::status_of(err).message,
        "Job.batch \"m\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"batch\"}: `selector` does not match template `labels`"
    );
    manual["template"]["spec"]["restartPolicy"] = json!("Always");
    manual["selector"] = json!({"matchLabels": {"app": "batch"}});
    let err = create_dynamic(&client, "batch/v1", "Job", json!({"metadata": {"name": "m"}, "spec": manual}))
        .await
        .expect_err("restartPolicy");
    assert_eq!(
        common::status_of(err).message,
        "Job.batch \"m\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );
    let mut own = json!({"selector": {"matchLabels": {"app": "batch"}}, "template": template});
    own["template"]["spec"]["restartPolicy"] = json!("Never");
    let err = create_dynamic(&client, "batch/v1", "Job", json!({"metadata": {"name": "o"}, "spec": own}))
        .await
        .expect_err("not generated");
    let s = common::status_of(err);
    assert!(
        s.message.starts_with("Job.batch \"o\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{"),
        "{}",
        s.message
    );
    assert!(s.message.ends_with("}}: `selector` not auto-generated"), "{}", s.message);
}

#[tokio::test]
async fn secret_data_that_is_not_base64_is_a_bad_request() {
    let (_emulator, client) = common::in_process();
    let err = create_dynamic(&client, "v1", "Secret", json!({"metadata": {"name": "s"}, "data": {"k": "not base64!"}}))
        .await
        .expect_err("refused");
    let s = common::status_of(err);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        s.message,
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );
    create_dynamic(&client, "v1", "Secret", json!({"metadata": {"name": "s"}, "data": {"k": "cQ=="}}))
        .await
        .expect("base64 is fine");
    let api: Api<kube::api::DynamicObject> =
        Api::default_namespaced_with(client, &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()));
    let err = api
        .patch("s", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "abc"}})))
        .await
        .expect_err("a patch is decoded too");
    assert_eq!(common::status_of(err).code, 400);
}

#[tokio::test]
async fn dry_run_values_other_than_all_are_invalid() {
    let (_emulator, client) = common::in_process();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let cases = [
        ("POST", "/api/v1/namespaces/default/configmaps?dryRun=Some", body.clone(), "CreateOptions"),
        ("DELETE", "/api/v1/namespaces/default/configmaps/c?dryRun=true", json!({}), "DeleteOptions"),
    ];
    for (method, uri, body, options) in cases {
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("json"))
            .expect("request");
        let err = client.request::<Value>(req).await.expect_err("refused");
        let s = common::status_of(err);
        let bad = uri.rsplit('=').next().unwrap_or_default();
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
        assert_eq!(
            s.message,
            format!(
                "{options}.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"{bad}\"]: supported values: \"All\""
            )
        );
    }
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams { dry_run: true, ..Default::default() }, &typed(body)).await.expect("All is fine");
    assert!(api.get_opt("c").await.expect("get").is_none(), "a dry run stores nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_the_real_servers_refusals() {
    let env = common::kubectl::Env::start().await;
    let mut spec = workload_spec("web");
    spec["selector"] = json!({"matchLabels": {"app": "other"}});
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec});
    let file = env.file("deploy.yaml", &deploy.to_string());
    let out = env.run(&["create", "-f", &file]).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("The Deployment \"web\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"),
        "{}",
        out.stderr
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "abc"}});
    let file = env.file("secret.yaml", &secret.to_string());
    let out = env.run(&["apply", "-f", &file]).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("Error from server (BadRequest)")
            && out.stderr.contains(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0"
            ),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------- storage version (item 5)

/// Widgets served at v1 (declares `legacy`) and v2 (the storage version, declares `shade`).
async fn two_version_widgets(client: &Client) -> (Api<kube::api::DynamicObject>, Api<kube::api::DynamicObject>) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let version = |name: &str, storage: bool, extra: &str| {
        json!({"name": name, "served": true, "storage": storage, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"type": "object", "properties": {
            "color": {"type": "string"},
            extra: {"type": "string"},
            "size": {"type": "integer", "default": 1}
        }}}}}})
    };
    let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [version("v1", false, "legacy"), version("v2", true, "shade")]}});
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &typed(crd)).await.expect("crd");
    let api = |v: &str| {
        let gvk = kube::api::GroupVersionKind::gvk("example.com", v, "Widget");
        Api::default_namespaced_with(client.clone(), &kube::api::ApiResource::from_gvk_with_plural(&gvk, "widgets"))
    };
    (api("v1"), api("v2"))
}

fn widget_at(version: &str, name: &str, spec: Value) -> kube::api::DynamicObject {
    typed(
        json!({"apiVersion": format!("example.com/{version}"), "kind": "Widget", "metadata": {"name": name}, "spec": spec}),
    )
}

#[tokio::test]
async fn an_object_written_at_another_version_is_pruned_against_the_storage_versions_schema() {
    let (emulator, client) = common::in_process();
    let (v1, v2) = two_version_widgets(&client).await;
    let created = v1
        .create(&PostParams::default(), &widget_at("v1", "old", json!({"color": "red", "legacy": "x"})))
        .await
        .expect("created at v1");
    // The answer is read back at v1 from the stored (v2) object: `legacy` did not survive storage.
    assert_eq!(created.data["spec"], json!({"color": "red", "size": 1}));
    let stored = emulator
        .cluster
        .stored(&emulator.cluster.target("example.com", "v2", "widgets", "default", "old").expect("target"))
        .expect("stored");
    assert_eq!(stored["spec"], json!({"color": "red", "size": 1}));
    assert_eq!(stored["apiVersion"], "example.com/v2");
    v2.create(&PostParams::default(), &widget_at("v2", "new", json!({"color": "blue", "shade": "dark"})))
        .await
        .expect("created at v2");
    assert_eq!(v2.get("new").await.expect("v2").data["spec"]["shade"], "dark");
    // Read at v1, a field only v2 declares is pruned (it stays stored).
    assert_eq!(v1.get("new").await.expect("v1").data["spec"], json!({"color": "blue", "size": 1}));
    let listed = v1.list(&Default::default()).await.expect("list at v1");
    assert!(listed.items.iter().all(|w| w.data["spec"].get("shade").is_none()));
    assert_eq!(v2.get("new").await.expect("still stored").data["spec"]["shade"], "dark");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_a_field_of_the_old_version_dropped_by_storage() {
    let env = common::kubectl::Env::start().await;
    let client = kube::Client::try_from(common::admin_config(&env.em).await).expect("client");
    two_version_widgets(&client).await;
    let manifest = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"color": "red", "legacy": "x"}});
    let file = env.file("w.yaml", &manifest.to_string());
    env.ok(&["create", "-f", &file]).await;
    let out = env.ok(&["get", "widgets.v2.example.com", "w", "-o", "jsonpath={.spec}"]).await;
    assert_eq!(serde_json::from_str::<Value>(&out).expect("json"), json!({"color": "red", "size": 1}));
}

// ---------------------------------------------------------------- pods/eviction, pods/resize (item 3)

use k8s_openapi::api::core::v1::Pod;
use kube::api::EvictParams;

/// A pod the kubelet reports Running (and Ready unless told otherwise), as a simulation would.
async fn running_pod(pods: &Api<Pod>, name: &str, ready: bool) {
    let pod = json!({"metadata": {"name": name, "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "db:1", "resources": {"requests": {"cpu": "100m"}}}]}});
    pods.create(&PostParams::default(), &typed(pod)).await.expect("pod");
    let status = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("running");
}

/// A budget selecting app=db whose status the disruption controller has written.
async fn budget(client: &Client, allowed: i32, observed: bool) -> Api<PodDisruptionBudget> {
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    let pdb =
        json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}});
    pdbs.create(&PostParams::default(), &typed(pdb)).await.expect("pdb");
    let status = json!({"status": {"observedGeneration": if observed { 1 } else { 0 }, "disruptionsAllowed": allowed,
        "currentHealthy": 1 + allowed, "desiredHealthy": 1, "expectedPods": 1 + allowed}});
    pdbs.patch_status("db", &PatchParams::default(), &Patch::Merge(&status)).await.expect("pdb status");
    pdbs
}

#[tokio::test]
async fn eviction_deletes_a_pod_its_budget_allows_and_spends_the_disruption() {
    let (_emulator, client) = common::in_process();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    running_pod(&pods, "db-0", true).await;
    running_pod(&pods, "db-1", true).await;
    let pdbs = budget(&client, 1, true).await;
    let answer = pods.evict("db-0", &EvictParams::default()).await.expect("evicted");
    assert_eq!((answer.code, answer.status), (201, Some(kube::core::response::StatusSummary::Success)));
    assert!(pods.get_opt("db-0").await.expect("get").is_none(), "the pod is gone");
    let status = pdbs.get("db").await.expect("pdb").status.expect("status");
    assert_eq!(status.disruptions_allowed, 0);
    assert!(status.disrupted_pods.expect("recorded").contains_key("db-0"));
    let err = pods.evict("db-1", &EvictParams::default()).await.expect_err("budget spent");
    let s = common::status_of(err);
    assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(s.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    let cause = &s.details.expect("details").causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.message.as_str()),
        // The disruption controller has not recounted yet: the eviction spent what it reported.
        ("DisruptionBudget", "The disruption budget db needs 1 healthy pods and has 2 currently")
    );
    assert!(pods.get_opt("db-1").await.expect("get").is_some(), "the pod stays");
}

#[tokio::test]
async fn eviction_follows_the_real_servers_exceptions() {
    let (_emulator, client) = common::in_process();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    budget(&client, 0, false).await;
    running_pod(&pods, "ready", true).await;
    let err = pods.evict("ready", &EvictParams::default()).await.expect_err("budget not yet observed");
    let s = common::status_of(err);
    assert_eq!(s.code, 429);
    assert_eq!(
        s.details.expect("details").causes[0].message,
        "The disruption budget db is still being processed by the server."
    );
    // An unready pod does not count against a met budget; a pending one ignores budgets.
    running_pod(&pods, "unready", false).await;
    pods.evict("unready", &EvictParams::default()).await.expect("unready pod evicted");
    pods.create(
        &PostParams::default(),
        &typed(json!({"metadata": {"name": "pending", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "db:1"}]}})),
    )
    .await
    .expect("pending pod");
    pods.evict("pending", &EvictParams::default()).await.expect("pending pod evicted");
    let err = pods.evict("missing", &EvictParams::default()).await.expect_err("404");
    assert_eq!(common::status_of(err).message, "pods \"missing\" not found");
    // A dry run checks the budget and deletes nothing.
    let dry = EvictParams { delete_options: Some(kube::api::DeleteParams::default().dry_run()), ..Default::default() };
    assert_eq!(common::status_of(pods.evict("ready", &dry).await.expect_err("still refused")).code, 429);
}

#[tokio::test]
async fn resize_changes_only_cpu_and_memory_of_a_pods_containers() {
    let (_emulator, client) = common::in_process();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    running_pod(&pods, "app", true).await;
    assert_eq!(pods.get("app").await.expect("pod").status.and_then(|s| s.qos_class).as_deref(), Some("Burstable"));
    let resize = json!({"spec": {"containers": [{"name": "c", "image": "other:2",
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]}});
    let pp = PatchParams::default();
    let resized = pods.patch_subresource("resize", "app", &pp, &Patch::Strategic(&resize)).await.expect("resized");
    let c = &resized.spec.expect("spec").containers[0];
    assert_eq!(c.image.as_deref(), Some("db:1"), "the rest of the request is dropped");
    let requests = c.resources.as_ref().and_then(|r| r.requests.clone()).expect("requests");
    assert_eq!((requests["cpu"].0.as_str(), requests["memory"].0.as_str()), ("250m", "64Mi"));
    let gpu = json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}});
    let err = pods.patch_subresource("resize", "app", &pp, &Patch::Strategic(&gpu)).await.expect_err("refused");
    let s = common::status_of(err);
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(s.message, "Pod \"app\" is invalid: spec: Forbidden: only cpu and memory resources are mutable");
    let guaranteed = json!({"spec": {"containers": [{"name": "c", "resources": {
        "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}]}});
    let err = pods.patch_subresource("resize", "app", &pp, &Patch::Strategic(&guaranteed)).await.expect_err("qos");
    assert_eq!(
        common::status_of(err).message,
        "Pod \"app\" is invalid: spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_evicts_and_waits_on_a_budget_and_kubectl_patch_resizes() {
    let env = common::kubectl::Env::start().await;
    let client = kube::Client::try_from(common::admin_config(&env.em).await).expect("client");
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes.create(&PostParams::default(), &typed(json!({"metadata": {"name": "node-1"}}))).await.expect("node");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    for name in ["db-0", "web-0"] {
        let app = name.trim_end_matches("-0");
        let pod = json!({"metadata": {"name": name, "labels": {"app": app}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x:1", "resources": {"requests": {"cpu": "100m"}}}]}});
        pods.create(&PostParams::default(), &typed(pod)).await.expect("pod");
        let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("running");
    }
    budget(&client, 0, true).await;
    let out = env.run(&["drain", "node-1", "--force", "--timeout=3s"]).await;
    assert!(!out.ok, "the budget holds the drain: {}", out.stdout);
    assert!(out.stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."), "{}", out.stderr);
    assert!(pods.get_opt("web-0").await.expect("get").is_none(), "the pod without a budget was evicted");
    assert!(pods.get_opt("db-0").await.expect("get").is_some(), "the budgeted pod stays");
    let out = env
        .ok(&[
            "patch",
            "pod",
            "db-0",
            "--subresource=resize",
            "-p",
            r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"300m"}}}]}}"#,
        ])
        .await;
    assert!(out.contains("pod/db-0 patched"), "{out}");
    let cpu = env.ok(&["get", "pod", "db-0", "-o", "jsonpath={.spec.containers[0].resources.requests.cpu}"]).await;
    assert_eq!(cpu, "300m");
}

// ---------------------------------------------------------------- CEL optional types (item 4)

/// Gadgets whose rules use CEL's optional types, as kube-apiserver accepts them.
fn gadget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object",
                "properties": {"size": {"type": "integer"}, "mode": {"type": "string"},
                               "limits": {"type": "object", "properties": {"max": {"type": "integer"}}}},
                "x-kubernetes-validations": [
                    {"rule": "oldSelf.optMap(o, o.size <= self.size).orValue(true)", "optionalOldSelf": true,
                     "message": "size may not shrink"},
                    {"rule": "self.?limits.?max.orValue(10) >= self.size", "message": "size over the limit"},
                    {"rule": "self.?mode.hasValue() ? self.mode in ['fast', 'slow'] : true",
                     "messageExpression": "'unknown mode ' + self.mode"}
                ]}}}}}]}})
}

#[tokio::test]
async fn validation_rules_with_optional_types_are_accepted_and_enforced() {
    let (_emulator, client) = common::in_process();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(&PostParams::default(), &typed(gadget_crd())).await.expect("the CRD is accepted");
    let gvk = kube::api::GroupVersionKind::gvk("example.com", "v1", "Gadget");
    let api: Api<kube::api::DynamicObject> =
        Api::default_namespaced_with(client, &kube::api::ApiResource::from_gvk_with_plural(&gvk, "gadgets"));
    let gadget = |spec: Value| -> kube::api::DynamicObject {
        typed(json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec}))
    };
    api.create(&PostParams::default(), &gadget(json!({"size": 5}))).await.expect("created: oldSelf is none");
    let refuse = |spec: Value| {
        let api = api.clone();
        async move {
            let patch = json!({"spec": spec});
            let err = api.patch("g", &PatchParams::default(), &Patch::Merge(&patch)).await.expect_err("refused");
            let s = common::status_of(err);
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            s.message
        }
    };
    assert_eq!(
        refuse(json!({"size": 4})).await,
        "Gadget.example.com \"g\" is invalid: spec: Invalid value: \"object\": size may not shrink"
    );
    assert_eq!(
        refuse(json!({"size": 20, "limits": {"max": 15}})).await,
        "Gadget.example.com \"g\" is invalid: spec: Invalid value: \"object\": size over the limit"
    );
    assert_eq!(
        refuse(json!({"mode": "warp"})).await,
        "Gadget.example.com \"g\" is invalid: spec: Invalid value: \"object\": unknown mode warp"
    );
    let grown = json!({"spec": {"size": 8, "mode": "fast"}});
    api.patch("g", &PatchParams::default(), &Patch::Merge(&grown)).await.expect("a valid update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_a_crd_with_optional_types_and_sees_its_refusals() {
    let env = common::kubectl::Env::start().await;
    let crd = env.file("crd.yaml", &gadget_crd().to_string());
    env.ok(&["apply", "-f", &crd]).await;
    env.ok(&["wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s"]).await;
    let g = |size: i64| json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": size}});
    env.ok(&["apply", "-f", &env.file("g1.yaml", &g(3).to_string())]).await;
    let out = env.run(&["apply", "-f", &env.file("g2.yaml", &g(2).to_string())]).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("The Gadget \"g\" is invalid: spec: Invalid value: \"object\": size may not shrink"),
        "{}",
        out.stderr
    );
}

/// Every namespace carries `kubernetes.io/metadata.name` with its own name, and keeps it through
/// updates that drop or change it (webhooks' namespaceSelectors rely on it).
#[tokio::test]
async fn a_namespace_is_labelled_with_its_own_name_for_good() {
    use k8s_openapi::api::core::v1::Namespace;
    let (_emulator, client) = common::in_process();
    let namespaces: Api<Namespace> = Api::all(client);
    let team: Namespace = typed(json!({"metadata": {"name": "team-a", "labels": {"team": "a"}}}));
    let created = namespaces.create(&PostParams::default(), &team).await.expect("created");
    let labels = |ns: &Namespace| ns.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels(&created).get("kubernetes.io/metadata.name").map(String::as_str), Some("team-a"));
    assert_eq!(labels(&created).get("team").map(String::as_str), Some("a"));
    let patch = json!({"metadata": {"labels": {"kubernetes.io/metadata.name": "other", "team": "b"}}});
    let patched = namespaces.patch("team-a", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patched");
    assert_eq!(labels(&patched).get("kubernetes.io/metadata.name").map(String::as_str), Some("team-a"));
    assert_eq!(labels(&patched).get("team").map(String::as_str), Some("b"));
}
