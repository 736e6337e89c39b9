//! Admission webhooks as kube-apiserver 1.33 calls them, with the kube client and kubectl:
//! AdmissionReview v1 over HTTPS (caBundle verified; Services at a registered loopback address,
//! URLs as given), rules, selectors, matchPolicy, failurePolicy, timeouts, sideEffects and dry
//! runs, JSONPatch mutations before validation, reinvocation, warnings and the real wording.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::kubectl::Env;
use common::webhook::{Reply, WebhookServer, allow, deny};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube_emulator::Emulator;
use serde_json::{Value, json};

fn config_map(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})).expect("cm")
}

/// A webhook entry for ConfigMaps (CREATE and UPDATE unless `rules` says otherwise).
fn webhook(name: &str, client_config: Value, extra: Value) -> Value {
    let mut w = json!({
        "name": name, "clientConfig": client_config, "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
    });
    if let (Some(w), Some(extra)) = (w.as_object_mut(), extra.as_object()) {
        w.extend(extra.clone());
    }
    w
}

/// Creates a Validating- or MutatingWebhookConfiguration.
async fn configure(client: &Client, kind: &str, name: &str, webhooks: Vec<Value>) {
    let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    let obj = serde_json::from_value(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                                             "metadata": {"name": name}, "webhooks": webhooks}))
    .expect("configuration");
    api.create(&PostParams::default(), &obj).await.expect("configuration created");
}

/// An emulator whose Service webhooks/hooks is `server`.
fn emulator_with(server: &WebhookServer) -> (Emulator, Client) {
    let (emulator, client) = common::in_process();
    emulator.services.register("webhooks", "hooks", server.addr);
    (emulator, client)
}

/// An emulator with the guard (see [`guard`]) served by `server` as a validating webhook.
async fn guarded(server: &WebhookServer) -> (Emulator, Client) {
    let (emulator, client) = emulator_with(server);
    let hook = webhook("guard.example.com", server.service_config("/validate"), json!({}));
    configure(&client, "ValidatingWebhookConfiguration", "guard", vec![hook]).await;
    (emulator, client)
}

/// Denies ConfigMaps labelled `forbidden`, warns about the others.
fn guard(_path: &str, review: &Value) -> Reply {
    if review["request"]["object"]["metadata"]["labels"]["forbidden"].is_string() {
        Reply::now(deny(review, 403, "configmaps may not be forbidden"))
    } else {
        Reply::now(allow(review, None, &["checked by the guard"]))
    }
}

#[tokio::test]
async fn a_validating_webhook_behind_a_service_denies_with_the_real_wording() {
    let server = WebhookServer::start(guard).await;
    let (_emulator, client) = guarded(&server).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &config_map("fine", json!({}))).await.expect("allowed");
    let err =
        api.create(&PostParams::default(), &config_map("bad", json!({"forbidden": "yes"}))).await.expect_err("denied");
    let status = common::status_of(err);
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        r#"admission webhook "guard.example.com" denied the request: configmaps may not be forbidden"#
    );
    assert!(api.get_opt("bad").await.expect("get").is_none(), "nothing stored");

    let reviews = server.reviews("/validate");
    let first = &reviews[0]["request"];
    assert_eq!(reviews[0]["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(first["operation"], "CREATE");
    assert_eq!(first["kind"], json!({"group": "", "version": "v1", "kind": "ConfigMap"}));
    assert_eq!(first["resource"], json!({"group": "", "version": "v1", "resource": "configmaps"}));
    assert_eq!((first["namespace"].as_str(), first["name"].as_str()), (Some("default"), Some("fine")));
    assert_eq!(first["userInfo"]["username"], "kubernetes-admin");
    assert_eq!(first["options"]["kind"], "CreateOptions");
    assert_eq!(first["dryRun"], false);
}

#[tokio::test]
async fn mutations_are_applied_before_validation_and_reinvoked_if_needed() {
    let server = WebhookServer::start(|path, review| match path {
        // Labels every ConfigMap; the second adds an annotation the first would want to see.
        "/label" => Reply::now(allow(
            review,
            Some(json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])),
            &[],
        )),
        "/annotate" => {
            let patch = json!([{"op": "add", "path": "/metadata/annotations", "value": {"annotated": "yes"}}]);
            let has = review["request"]["object"]["metadata"]["annotations"]["annotated"].is_string();
            Reply::now(allow(review, (!has).then_some(patch), &[]))
        }
        _ => guard(path, review),
    })
    .await;
    let (_emulator, client) = emulator_with(&server);
    configure(
        &client,
        "MutatingWebhookConfiguration",
        "a-mutate",
        vec![
            webhook("label.example.com", server.service_config("/label"), json!({"reinvocationPolicy": "IfNeeded"})),
            webhook("annotate.example.com", server.service_config("/annotate"), json!({})),
        ],
    )
    .await;
    // The guard denies what the mutation labels `forbidden`: mutations come first.
    let guard_hook = webhook("guard.example.com", server.service_config("/validate"), json!({}));
    configure(&client, "ValidatingWebhookConfiguration", "guard", vec![guard_hook]).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = api.create(&PostParams::default(), &config_map("c", json!({"team": "a"}))).await.expect("created");
    let labels = created.metadata.labels.expect("labels");
    assert_eq!(labels.get("mutated").map(String::as_str), Some("yes"));
    assert_eq!(created.metadata.annotations.expect("annotations").get("annotated").map(String::as_str), Some("yes"));
    let validated = server.reviews("/validate");
    assert_eq!(
        validated[0]["request"]["object"]["metadata"]["labels"]["mutated"], "yes",
        "validation sees the mutation"
    );
    assert_eq!(server.reviews("/label").len(), 2, "reinvoked once after a later webhook changed the object");
    assert_eq!(server.reviews("/annotate").len(), 1);
}

#[tokio::test]
async fn rules_and_selectors_decide_which_requests_a_webhook_sees() {
    let server = WebhookServer::start(guard).await;
    let (_emulator, client) = emulator_with(&server);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    for (name, team) in [("watched", "a"), ("other", "b")] {
        let ns = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}})).expect("ns");
        namespaces.create(&PostParams::default(), &ns).await.expect("namespace");
    }
    let selective = webhook(
        "guard.example.com",
        server.service_config("/validate"),
        json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "scope": "Namespaced"}],
               "namespaceSelector": {"matchLabels": {"team": "a"}},
               "objectSelector": {"matchExpressions": [{"key": "exempt", "operator": "DoesNotExist"}]}}),
    );
    configure(&client, "ValidatingWebhookConfiguration", "guard", vec![selective]).await;
    let forbidden = json!({"forbidden": "yes"});
    let watched: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    watched
        .create(&PostParams::default(), &config_map("c", forbidden.clone()))
        .await
        .expect("CREATE is not in the rules");
    let label = |l: Value| Patch::Merge(json!({"metadata": {"labels": l}}));
    let err = watched.patch("c", &PatchParams::default(), &label(json!({"x": "1"}))).await.expect_err("UPDATE is");
    assert_eq!(common::status_of(err).code, 403);
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
    other.create(&PostParams::default(), &config_map("c", forbidden)).await.expect("create");
    other.patch("c", &PatchParams::default(), &label(json!({"x": "1"}))).await.expect("namespace not selected");
    // The objectSelector picks a request when either the new or the old object matches.
    let err = watched.patch("c", &PatchParams::default(), &label(json!({"exempt": "yes"}))).await.expect_err("old");
    assert_eq!(common::status_of(err).code, 403);
    let both = json!({"forbidden": "yes", "exempt": "yes"});
    watched.create(&PostParams::default(), &config_map("e", both)).await.expect("create");
    watched.patch("e", &PatchParams::default(), &label(json!({"x": "1"}))).await.expect("exempt, old and new");
    assert_eq!(server.reviews("/validate").len(), 2, "only the UPDATEs of c in the selected namespace were sent");
}

#[tokio::test]
async fn a_webhook_down_fails_closed_under_fail_and_open_under_ignore() {
    let (_emulator, client) = common::in_process();
    // A URL where nothing listens, and a Service nobody registered.
    let closed =
        json!({"url": "https://127.0.0.1:1/validate", "caBundle": WebhookServer::start(guard).await.ca_bundle()});
    configure(
        &client,
        "ValidatingWebhookConfiguration",
        "down",
        vec![webhook("down.example.com", closed, json!({"failurePolicy": "Fail"}))],
    )
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api.create(&PostParams::default(), &config_map("a", json!({}))).await.expect_err("fails closed");
    let status = common::status_of(err);
    assert_eq!((status.code, status.reason.as_str()), (500, "InternalError"));
    assert_eq!(
        status.message,
        r#"Internal error occurred: failed calling webhook "down.example.com": failed to call webhook: Post "https://127.0.0.1:1/validate?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused"#
    );
    let missing = json!({"service": {"namespace": "webhooks", "name": "nowhere", "path": "/v"}, "caBundle": ""});
    configure(
        &client,
        "ValidatingWebhookConfiguration",
        "open",
        vec![webhook("open.example.com", missing, json!({"failurePolicy": "Ignore"}))],
    )
    .await;
    let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration");
    let configurations: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    configurations.delete("down", &DeleteParams::default()).await.expect("delete");
    api.create(&PostParams::default(), &config_map("a", json!({}))).await.expect("fails open");
}

#[tokio::test]
async fn a_routed_service_has_no_endpoint_until_its_server_is_known() {
    let server = WebhookServer::start(guard).await;
    let (emulator, client) = common::in_process();
    let known = Arc::new(std::sync::OnceLock::new());
    let route = known.clone();
    emulator.services.route("webhooks", "hooks", move || route.get().copied());
    let hook = webhook("guard.example.com", server.service_config("/validate"), json!({}));
    configure(&client, "ValidatingWebhookConfiguration", "guard", vec![hook]).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api.create(&PostParams::default(), &config_map("early", json!({}))).await.expect_err("no endpoint");
    assert_eq!(
        common::status_of(err).message,
        r#"Internal error occurred: failed calling webhook "guard.example.com": failed to call webhook: Post "https://hooks.webhooks.svc:443/validate?timeout=10s": no endpoints available for service "hooks""#
    );
    known.set(server.addr).expect("set once");
    let err = api.create(&PostParams::default(), &config_map("bad", json!({"forbidden": "yes"}))).await;
    assert!(err.is_err(), "the guard is reached once its address is known");
    api.create(&PostParams::default(), &config_map("late", json!({}))).await.expect("allowed by the guard");
}

#[tokio::test]
async fn a_slow_webhook_times_out_and_a_wrong_ca_bundle_is_refused() {
    let server =
        WebhookServer::start(|_, review| Reply { delay: Duration::from_secs(3), body: Some(allow(review, None, &[])) })
            .await;
    let (_emulator, client) = emulator_with(&server);
    configure(
        &client,
        "ValidatingWebhookConfiguration",
        "slow",
        vec![webhook("slow.example.com", server.url_config("/slow"), json!({"timeoutSeconds": 1}))],
    )
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api.create(&PostParams::default(), &config_map("a", json!({}))).await.expect_err("timed out");
    let url = format!("https://{}/slow?timeout=1s", server.addr);
    assert_eq!(
        common::status_of(err).message,
        format!(
            r#"Internal error occurred: failed calling webhook "slow.example.com": failed to call webhook: Post "{url}": context deadline exceeded"#
        )
    );

    let stranger = WebhookServer::start(guard).await;
    let (_emulator, client) = emulator_with(&server);
    let mut wrong = server.service_config("/validate");
    wrong["caBundle"] = json!(stranger.ca_bundle());
    configure(&client, "ValidatingWebhookConfiguration", "wrong-ca", vec![webhook("ca.example.com", wrong, json!({}))])
        .await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api.create(&PostParams::default(), &config_map("a", json!({}))).await.expect_err("untrusted");
    let message = common::status_of(err).message;
    assert!(
        message.ends_with("tls: failed to verify certificate: x509: certificate signed by unknown authority"),
        "the server's certificate is checked against the caBundle: {message}"
    );
}

#[tokio::test]
async fn dry_runs_reach_only_webhooks_without_side_effects() {
    let server = WebhookServer::start(guard).await;
    let (_emulator, client) = guarded(&server).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let dry = PostParams { dry_run: true, ..PostParams::default() };
    api.create(&dry, &config_map("d", json!({}))).await.expect("dry run");
    assert_eq!(server.reviews("/validate")[0]["request"]["dryRun"], true);
    assert!(api.get_opt("d").await.expect("get").is_none(), "a dry run stores nothing");
    configure(
        &client,
        "ValidatingWebhookConfiguration",
        "effects",
        vec![webhook("effects.example.com", server.service_config("/other"), json!({"sideEffects": "Some"}))],
    )
    .await;
    let err = api.create(&dry, &config_map("d", json!({}))).await.expect_err("refused");
    let status = common::status_of(err);
    assert_eq!(
        (status.code, status.message.as_str()),
        (400, r#"admission webhook "effects.example.com" does not support dry run"#)
    );
    api.create(&PostParams::default(), &config_map("d", json!({}))).await.expect("not a dry run");
}

#[tokio::test]
async fn deletes_are_admitted_with_the_old_object() {
    let server = WebhookServer::start(|_, review| {
        let protected = review["request"]["oldObject"]["metadata"]["labels"]["protected"].is_string();
        Reply::now(if protected { deny(review, 403, "protected") } else { allow(review, None, &[]) })
    })
    .await;
    let (_emulator, client) = emulator_with(&server);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &config_map("keep", json!({"protected": "yes"}))).await.expect("create");
    api.create(&PostParams::default(), &config_map("drop", json!({}))).await.expect("create");
    let rule = json!({"rules": [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]});
    configure(
        &client,
        "ValidatingWebhookConfiguration",
        "protect",
        vec![webhook("protect.example.com", server.url_config("/"), rule)],
    )
    .await;
    let err = api.delete("keep", &DeleteParams::default()).await.expect_err("denied");
    assert_eq!(
        common::status_of(err).message,
        r#"admission webhook "protect.example.com" denied the request: protected"#
    );
    api.delete("drop", &DeleteParams::default()).await.expect("allowed");
    let review = &server.reviews("/")[0]["request"];
    assert_eq!(
        (review["operation"].as_str(), review["options"]["kind"].as_str()),
        (Some("DELETE"), Some("DeleteOptions"))
    );
    assert!(review["object"].is_null());
    // A collection's deletion admits each object, and fails at the first denied.
    api.create(&PostParams::default(), &config_map("free", json!({}))).await.expect("create");
    let every = kube::api::ListParams::default();
    let err = api.delete_collection(&DeleteParams::default(), &every).await.expect_err("keep is protected");
    assert_eq!(
        common::status_of(err).message,
        r#"admission webhook "protect.example.com" denied the request: protected"#
    );
    assert!(api.get_opt("keep").await.expect("get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_denials_and_webhook_warnings() {
    let server = WebhookServer::start(guard).await;
    let emulator = Emulator::start();
    emulator.services.register("webhooks", "hooks", server.addr);
    let env = Env::serving(emulator).await;
    let configuration = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "guard"}, "webhooks": [webhook("guard.example.com", server.service_config("/validate"), json!({}))]});
    env.ok(&["apply", "-f", &env.file("hook.json", &configuration.to_string())]).await;
    let out = env.run(&["create", "configmap", "fine", "--from-literal=a=b"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stderr.contains("Warning: checked by the guard"), "{}", out.stderr);
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  labels:\n    forbidden: \"yes\"\n";
    let out = env.run(&["create", "-f", &env.file("bad.yaml", bad)]).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains(r#"admission webhook "guard.example.com" denied the request: configmaps may not be forbidden"#),
        "{}",
        out.stderr
    );
}
