//! Request accounting: what the operator's API cost and RBAC are measured with.

mod common;

use futures::StreamExt;
use http::header::USER_AGENT;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube_emulator::Emulator;
use kube_emulator::instruments::accounting::Permission;
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("valid configmap")
}

#[tokio::test]
async fn counts_every_verb_once() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let pp = PostParams { field_manager: Some("op".into()), ..PostParams::default() };
    api.create(&pp, &cm("a")).await.expect("create");
    api.create(&pp, &cm("b")).await.expect("create");
    let a = api.get("a").await.expect("get");
    api.list(&ListParams::default()).await.expect("list");
    api.replace("a", &PostParams::default(), &a).await.expect("update");
    api.patch(
        "a",
        &PatchParams::apply("op"),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "1"}})),
    )
    .await
    .expect("patch");
    drop(api.watch(&WatchParams::default().timeout(1), "0").await.expect("watch").boxed());
    api.delete("a", &DeleteParams::default()).await.expect("delete");
    api.delete_collection(&DeleteParams::default(), &ListParams::default()).await.expect("deletecollection");

    let snap = emulator.instruments.requests.snapshot();
    let by_verb = snap.by_verb();
    for (verb, n) in [
        ("create", 2),
        ("get", 1),
        ("list", 1),
        ("update", 1),
        ("patch", 1),
        ("watch", 1),
        ("delete", 1),
        ("deletecollection", 1),
    ] {
        assert_eq!(by_verb.get(verb).copied(), Some(n), "{verb}: {by_verb:?}");
    }
    assert_eq!(snap.writes(), 6);
    assert_eq!(snap.writes_by("op"), 3, "two creates and an apply named the manager");
    assert_eq!(snap.verb_on("create", "configmaps"), 2);
    assert_eq!(snap.by_resource().get("configmaps").copied(), Some(9));

    emulator.instruments.requests.reset();
    assert_eq!(emulator.instruments.requests.snapshot().total(), 0);
}

#[tokio::test]
async fn the_log_is_read_on_from_where_a_reader_stopped_in_arrival_order() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("a")).await.expect("create");
    let requests = &emulator.instruments.requests;
    let first = requests.log_after(0);
    assert_eq!(first.len(), 1, "{first:?}");
    api.get("a").await.expect("get");
    api.list(&ListParams::default()).await.expect("list");

    let rest = requests.log_after(first[0].seq);
    let verbs: Vec<&str> = rest.iter().map(|r| r.info.verb.as_str()).collect();
    assert_eq!(verbs, ["get", "list"]);
    assert!(first[0].at <= rest[0].at && rest[0].at <= rest[1].at, "stamped in arrival order");
    assert!(requests.log_after(rest[1].seq).is_empty());
}

#[tokio::test]
async fn records_group_subresource_and_namespace_for_rbac() {
    let (emulator, client) = common::in_process();
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns"))
        .await
        .expect("namespace");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "team");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
    .expect("deployment");
    deploys.create(&PostParams::default(), &d).await.expect("create");
    let status = Patch::Merge(json!({"status": {"observedGeneration": 1}}));
    deploys.patch_status("web", &PatchParams::default(), &status).await.expect("status");
    let all: Api<ConfigMap> = Api::all(client);
    all.list(&ListParams::default()).await.expect("cluster-wide list");

    let perms = emulator.instruments.requests.snapshot().permissions(None);
    let p = |verb: &str, group: &str, resource: &str, namespace: &str| Permission {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
    };
    for want in [
        p("create", "", "namespaces", ""),
        p("create", "apps", "deployments", "team"),
        p("patch", "apps", "deployments/status", "team"),
        p("list", "", "configmaps", ""),
    ] {
        assert!(perms.contains(&want), "missing {want:?} in {perms:?}");
    }
    assert_eq!(perms.len(), 4, "{perms:?}");
}

#[tokio::test]
async fn user_agent_and_discovery_are_counted_over_http() {
    let em = Emulator::start().serve("127.0.0.1:0").await.expect("serve");
    let mut config = common::admin_config(&em).await;
    config.headers.push((USER_AGENT, "prism-operator/0.1.0 (linux)".parse().expect("header")));
    let client = Client::try_from(config).expect("client");
    client.apiserver_version().await.expect("version");
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &cm("a")).await.expect("create");

    let snap = em.emulator.instruments.requests.snapshot();
    assert_eq!(snap.writes_by("prism-operator"), 1);
    assert_eq!(snap.requests_by("prism-operator"), 2);
    assert_eq!(snap.count_where(|k| !k.is_resource && k.resource == "/version"), 1);
    assert!(snap.permissions(Some("prism-operator")).iter().all(|p| p.resource == "configmaps"));

    let body: serde_json::Value = client
        .request(http::Request::get("/emulator/requests?log=true").body(vec![]).expect("req"))
        .await
        .expect("admin");
    assert_eq!(body["byVerb"]["create"], 1);
    assert_eq!(body["log"][1]["verb"], "create");
    assert_eq!(body["log"][1]["userAgent"], "prism-operator/0.1.0 (linux)");
}
