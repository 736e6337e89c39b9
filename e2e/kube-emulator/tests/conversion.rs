//! CRD conversion webhooks as kube-apiserver 1.33 uses them, with the kube client and kubectl:
//! ConversionReview v1 on reads, lists, watches and writes at a version other than the storage
//! version, objects stored at the storage version, pruning and defaulting at the served
//! version's schema, and failures answered as the real server answers them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::kubectl::Env;
use common::webhook::{Reply, WebhookServer, allow};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams, WatchParams,
};
use kube_emulator::Emulator;
use serde_json::{Value, json};

/// Gadgets: v1 (stored) says `spec.size`, v2 says `spec.length` and defaults `spec.unit`.
fn gadget_crd(client_config: Value) -> Value {
    let v1 = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}});
    let v2 = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "length": {"type": "integer"}, "unit": {"type": "string", "default": "cm"}}}}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "conversion": {"strategy": "Webhook",
                                "webhook": {"clientConfig": client_config, "conversionReviewVersions": ["v1"]}},
                 "versions": [
                     {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": v1}},
                     {"name": "v2", "served": true, "storage": false, "schema": {"openAPIV3Schema": v2}}]}
    })
}

/// Converts `spec.size` <-> `spec.length` (and adds a field v2 does not declare, to be pruned);
/// answers a Failure while `failing` is set.
fn converter(failing: Arc<AtomicBool>) -> impl Fn(&str, &Value) -> Reply + Send + Sync + 'static {
    move |_, review| {
        let request = &review["request"];
        let desired = request["desiredAPIVersion"].as_str().unwrap_or("").to_string();
        let converted: Vec<Value> = request["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let mut o = o.clone();
                let spec = o["spec"].as_object_mut().map(std::mem::take).unwrap_or_default();
                o["spec"] = if desired.ends_with("/v2") {
                    json!({"length": spec.get("size"), "extra": "pruned at v2"})
                } else {
                    json!({"size": spec.get("length")})
                };
                o["apiVersion"] = json!(desired);
                o
            })
            .collect();
        let result = if failing.load(Ordering::SeqCst) {
            json!({"status": "Failure", "message": "no conversion today"})
        } else {
            json!({"status": "Success"})
        };
        Reply::now(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                          "response": {"uid": request["uid"], "convertedObjects": converted, "result": result}}))
    }
}

struct Setup {
    emulator: Emulator,
    client: Client,
    server: WebhookServer,
    failing: Arc<AtomicBool>,
}

async fn setup() -> Setup {
    let failing = Arc::new(AtomicBool::new(false));
    let server = WebhookServer::start(converter(failing.clone())).await;
    let (emulator, client) = common::in_process();
    emulator.services.register("webhooks", "hooks", server.addr);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = serde_json::from_value(gadget_crd(server.service_config("/convert"))).expect("CRD");
    crds.create(&PostParams::default(), &crd).await.expect("CRD created");
    Setup { emulator, client, server, failing }
}

fn gadgets(client: &Client, version: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", version, "Gadget"));
    Api::namespaced_with(client.clone(), "default", &resource)
}

fn gadget_v2(name: &str, length: i64) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v2", "kind": "Gadget", "metadata": {"name": name},
                                  "spec": {"length": length}}))
    .expect("gadget")
}

#[tokio::test]
async fn objects_are_stored_at_the_storage_version_and_served_converted() {
    let s = setup().await;
    let (v1, v2) = (gadgets(&s.client, "v1"), gadgets(&s.client, "v2"));
    let created = v2.create(&PostParams::default(), &gadget_v2("g", 3)).await.expect("created at v2");
    assert_eq!(created.data["spec"], json!({"length": 3, "unit": "cm"}), "pruned and defaulted at v2");
    let stored = s
        .emulator
        .cluster
        .stored(&s.emulator.cluster.target("example.com", "v1", "gadgets", "default", "g").expect("target"));
    let stored = stored.expect("stored");
    assert_eq!((stored["apiVersion"].as_str(), &stored["spec"]), (Some("example.com/v1"), &json!({"size": 3})));
    assert_eq!(v1.get("g").await.expect("v1").data["spec"], json!({"size": 3}), "no conversion at the storage version");
    assert_eq!(v2.get("g").await.expect("v2").data["spec"], json!({"length": 3, "unit": "cm"}));

    v2.patch("g", &PatchParams::default(), &Patch::Merge(json!({"spec": {"length": 5}}))).await.expect("patched at v2");
    assert_eq!(v1.get("g").await.expect("v1").data["spec"], json!({"size": 5}));
    let listed = v2.list(&ListParams::default()).await.expect("list at v2");
    assert_eq!(listed.items[0].data["spec"]["length"], 5);

    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    let status = crds.get("gadgets.example.com").await.expect("CRD").status.expect("status");
    assert_eq!(status.stored_versions, Some(vec!["v1".to_string()]));
    let desired: Vec<String> = s
        .server
        .reviews("/convert")
        .iter()
        .map(|r| r["request"]["desiredAPIVersion"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(desired.contains(&"example.com/v1".to_string()) && desired.contains(&"example.com/v2".to_string()));
    assert_eq!(s.server.reviews("/convert")[0]["apiVersion"], "apiextensions.k8s.io/v1");
}

#[tokio::test]
async fn watches_at_another_version_are_converted_event_by_event() {
    let s = setup().await;
    let v2 = gadgets(&s.client, "v2");
    let mut events = v2.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    v2.create(&PostParams::default(), &gadget_v2("w", 7)).await.expect("created");
    let Some(kube::api::WatchEvent::Added(added)) = events.try_next().await.expect("event") else { panic!("ADDED") };
    assert_eq!(
        (added.types.as_ref().map(|t| t.api_version.as_str()), &added.data["spec"]),
        (Some("example.com/v2"), &json!({"length": 7, "unit": "cm"}))
    );
    s.failing.store(true, Ordering::SeqCst);
    gadgets(&s.client, "v1")
        .patch("w", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": 8}})))
        .await
        .expect("v1");
    let Some(kube::api::WatchEvent::Error(e)) = events.try_next().await.expect("event") else { panic!("ERROR") };
    assert_eq!(
        (e.code, e.message.as_str()),
        (500, "conversion webhook for example.com/v1, Kind=Gadget failed: no conversion today")
    );
    assert!(events.next().await.is_none(), "the watch ends");
}

#[tokio::test]
async fn a_failing_conversion_fails_reads_lists_and_writes_as_the_real_server() {
    let s = setup().await;
    let (v1, v2) = (gadgets(&s.client, "v1"), gadgets(&s.client, "v2"));
    v2.create(&PostParams::default(), &gadget_v2("g", 3)).await.expect("created");
    s.failing.store(true, Ordering::SeqCst);
    let failed = "conversion webhook for example.com/v1, Kind=Gadget failed: no conversion today";
    let status = common::status_of(v2.get("g").await.expect_err("get"));
    assert_eq!((status.code, status.reason.as_str(), status.message.as_str()), (500, "", failed));
    assert_eq!(common::status_of(v2.list(&ListParams::default()).await.expect_err("list")).message, failed);
    let status = common::status_of(v2.create(&PostParams::default(), &gadget_v2("h", 1)).await.expect_err("create"));
    assert_eq!(status.message, "conversion webhook for example.com/v2, Kind=Gadget failed: no conversion today");
    v1.get("g").await.expect("the storage version needs no conversion");

    drop(s.server);
    let status = common::status_of(v2.get("g").await.expect_err("down"));
    assert!(
        status.message.starts_with(r#"conversion webhook for example.com/v1, Kind=Gadget failed: Post "https://hooks.webhooks.svc:443/convert?timeout=30s": dial tcp 127.0.0.1:"#),
        "{}",
        status.message
    );
    assert!(status.message.ends_with("connect: connection refused"), "{}", status.message);
}

#[tokio::test]
async fn admission_with_match_policy_equivalent_sees_the_version_its_rules_name() {
    let s = setup().await;
    let guard = WebhookServer::start(|_, review| Reply::now(allow(review, None, &[]))).await;
    let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration");
    let configurations: Api<DynamicObject> = Api::all_with(s.client.clone(), &ApiResource::from_gvk(&gvk));
    let hook = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "v1-only"},
        "webhooks": [{"name": "v1.example.com", "clientConfig": guard.url_config("/"), "sideEffects": "None",
                      "admissionReviewVersions": ["v1"],
                      "rules": [{"operations": ["CREATE"], "apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["gadgets"]}]}]});
    configurations.create(&PostParams::default(), &serde_json::from_value(hook).expect("hook")).await.expect("hook");
    gadgets(&s.client, "v2").create(&PostParams::default(), &gadget_v2("g", 4)).await.expect("created at v2");
    let request = &guard.reviews("/")[0]["request"];
    assert_eq!(request["kind"]["version"], "v1");
    assert_eq!(request["requestKind"]["version"], "v2");
    assert_eq!(request["object"]["spec"], json!({"size": 4}), "converted to the version the rule names");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reads_other_versions_through_the_webhook_and_prints_its_failure() {
    let failing = Arc::new(AtomicBool::new(false));
    let server = WebhookServer::start(converter(failing.clone())).await;
    let emulator = Emulator::start();
    emulator.services.register("webhooks", "hooks", server.addr);
    let env = Env::serving(emulator).await;
    env.ok(&["apply", "-f", &env.file("crd.json", &gadget_crd(server.service_config("/convert")).to_string())]).await;
    let gadget = "apiVersion: example.com/v2\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  length: 2\n";
    env.ok(&["apply", "-f", &env.file("g.yaml", gadget)]).await;
    let length = env.ok(&["get", "gadgets.v2.example.com", "g", "-o", "jsonpath={.spec.length} {.spec.unit}"]).await;
    assert_eq!(length, "2 cm");
    let size = env.ok(&["get", "gadgets.v1.example.com", "g", "-o", "jsonpath={.spec.size}"]).await;
    assert_eq!(size, "2");
    failing.store(true, Ordering::SeqCst);
    let out = env.run(&["get", "gadgets.v2.example.com", "g"]).await;
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        "Error from server: conversion webhook for example.com/v1, Kind=Gadget failed: no conversion today"
    );
}

#[tokio::test]
async fn objects_stored_before_the_storage_version_changed_convert_at_the_new_one() {
    let s = setup().await;
    let (v1, v2) = (gadgets(&s.client, "v1"), gadgets(&s.client, "v2"));
    let old: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "old"}, "spec": {"size": 4}}))
    .expect("gadget");
    v1.create(&PostParams::default(), &old).await.expect("stored at v1");
    // An upgrade makes v2 the storage version; "old" stays stored at v1 until it is written.
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    let storage = json!({"spec": {"versions": [
        {"name": "v1", "served": true, "storage": false, "schema": gadget_crd(json!({}))["spec"]["versions"][0]["schema"]},
        {"name": "v2", "served": true, "storage": true, "schema": gadget_crd(json!({}))["spec"]["versions"][1]["schema"]}]}});
    crds.patch("gadgets.example.com", &PatchParams::default(), &Patch::Merge(storage)).await.expect("storage v2");
    assert_eq!(v2.get("old").await.expect("v2").data["spec"], json!({"length": 4, "unit": "cm"}), "converted from v1");
    assert_eq!(v1.get("old").await.expect("v1").data["spec"], json!({"size": 4}), "as stored");
    let listed = v2.list(&ListParams::default()).await.expect("list at v2");
    assert_eq!(listed.items[0].data["spec"]["length"], 4);
    // A write (the storage migrator's no-op patch) stores it at v2.
    v2.patch("old", &PatchParams::default(), &Patch::Merge(json!({}))).await.expect("rewritten");
    let target = s.emulator.cluster.target("example.com", "v2", "gadgets", "default", "old").expect("target");
    let stored = s.emulator.cluster.stored(&target).expect("stored");
    assert_eq!(
        (stored["apiVersion"].as_str(), &stored["spec"]),
        (Some("example.com/v2"), &json!({"length": 4, "unit": "cm"}))
    );
}

/// A deprecated version warns on every request at it, reads included, as kube-apiserver does:
/// with `deprecationWarning`, or with its default naming the version to use instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_at_a_deprecated_version_are_warned_reads_included() {
    let server = WebhookServer::start(converter(Arc::new(AtomicBool::new(false)))).await;
    let emulator = Emulator::start();
    emulator.services.register("webhooks", "hooks", server.addr);
    let env = Env::serving(emulator).await;
    let mut crd = gadget_crd(server.service_config("/convert"));
    crd["spec"]["versions"][0]["deprecated"] = json!(true);
    env.ok(&["apply", "-f", &env.file("crd.json", &crd.to_string())]).await;
    let gadget = "apiVersion: example.com/v2\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  length: 2\n";
    env.ok(&["apply", "-f", &env.file("g.yaml", gadget)]).await;

    let current = env.run(&["get", "gadgets.v2.example.com", "g"]).await;
    assert!(current.ok && !current.stderr.contains("Warning"), "{}", current.stderr);
    let old = env.run(&["get", "gadgets.v1.example.com", "g"]).await;
    assert!(old.ok, "{}", old.stderr);
    assert_eq!(old.stderr.trim(), "Warning: example.com/v1 Gadget is deprecated; use example.com/v2 Gadget");

    crd["spec"]["versions"][0]["deprecationWarning"] = json!("v1 goes away in 2027: use v2");
    env.ok(&["apply", "-f", &env.file("crd.json", &crd.to_string())]).await;
    let listed = env.run(&["get", "gadgets.v1.example.com"]).await;
    assert_eq!(listed.stderr.trim(), "Warning: v1 goes away in 2027: use v2");
}
