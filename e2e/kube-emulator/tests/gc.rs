//! Garbage collection by owner references (Background, Foreground, Orphan, dangling owners,
//! restored objects), driven through the real kube 5 client against an in-process emulator.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn owner_ref(kind: &str, api_version: &str, name: &str, uid: &str, block: bool) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "blockOwnerDeletion": block})
}

fn cm(name: &str, owners: Vec<Value>, finalizers: &[&str]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
        "data": {"k": "v"},
    }))
    .expect("valid configmap")
}

async fn create_owner(api: &Api<ConfigMap>, name: &str) -> String {
    let o = api.create(&PostParams::default(), &cm(name, vec![], &[])).await.expect("create owner");
    o.metadata.uid.expect("uid")
}

async fn create_dependent(api: &Api<ConfigMap>, name: &str, owner: &str, uid: &str, block: bool, fins: &[&str]) {
    let refs = vec![owner_ref("ConfigMap", "v1", owner, uid, block)];
    api.create(&PostParams::default(), &cm(name, refs, fins)).await.expect("create dependent");
}

#[tokio::test]
async fn background_deletion_removes_dependents_and_their_dependents() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let uid = create_owner(&api, "owner").await;
    create_dependent(&api, "child", "owner", &uid, false, &[]).await;
    let child_uid = api.get("child").await.expect("child").metadata.uid.expect("uid");
    create_dependent(&api, "grandchild", "child", &child_uid, false, &[]).await;

    api.delete("owner", &DeleteParams::background()).await.expect("delete owner");
    emulator.settle().await;

    for name in ["owner", "child", "grandchild"] {
        assert!(api.get_opt(name).await.expect("get").is_none(), "{name} should be collected");
    }
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents_and_their_finalizers() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let uid = create_owner(&api, "owner").await;
    create_dependent(&api, "blocker", "owner", &uid, true, &["example.com/hold"]).await;
    create_dependent(&api, "free", "owner", &uid, false, &[]).await;

    api.delete("owner", &DeleteParams::foreground()).await.expect("delete owner");
    emulator.settle().await;

    let owner = api.get("owner").await.expect("owner waits for its blocking dependent");
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert_eq!(owner.metadata.finalizers.as_deref(), Some(&["foregroundDeletion".to_string()][..]));
    let blocker = api.get("blocker").await.expect("blocker is held by its own finalizer");
    assert!(blocker.metadata.deletion_timestamp.is_some(), "the dependent is being deleted");
    assert!(api.get_opt("free").await.expect("get").is_none(), "non-blocking dependents are deleted too");

    let release = json!({"metadata": {"finalizers": null}});
    api.patch("blocker", &PatchParams::default(), &Patch::Merge(&release)).await.expect("release");
    emulator.settle().await;
    assert!(api.get_opt("blocker").await.expect("get").is_none());
    assert!(api.get_opt("owner").await.expect("get").is_none(), "the owner goes after its dependents");
}

#[tokio::test]
async fn foreground_deletion_without_dependents_completes() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    create_owner(&api, "lonely").await;
    api.delete("lonely", &DeleteParams::foreground()).await.expect("delete");
    emulator.settle().await;
    assert!(api.get_opt("lonely").await.expect("get").is_none());
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let uid = create_owner(&api, "owner").await;
    create_dependent(&api, "child", "owner", &uid, true, &[]).await;

    let answer = api.delete("owner", &DeleteParams::orphan()).await.expect("delete owner");
    let pending = answer.left().expect("the owner is answered while the orphan finalizer runs");
    assert_eq!(pending.metadata.finalizers.as_deref(), Some(&["orphan".to_string()][..]));
    emulator.settle().await;

    assert!(api.get_opt("owner").await.expect("get").is_none());
    let child = api.get("child").await.expect("the dependent stays");
    assert!(child.metadata.owner_references.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn dangling_owner_reference_gets_the_dependent_deleted() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    create_dependent(&api, "stray", "ghost", "00000000-0000-0000-0000-000000000000", false, &[]).await;
    emulator.settle().await;
    assert!(api.get_opt("stray").await.expect("get").is_none());
}

#[tokio::test]
async fn owner_recreated_with_the_same_name_is_not_the_owner() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let uid = create_owner(&api, "owner").await;
    api.delete("owner", &DeleteParams::default()).await.expect("delete");
    create_owner(&api, "owner").await;
    create_dependent(&api, "child", "owner", &uid, false, &[]).await;
    emulator.settle().await;
    assert!(api.get_opt("child").await.expect("get").is_none(), "owners are matched by uid");
}

#[tokio::test]
async fn dependent_with_a_live_owner_only_loses_the_absent_one() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let a = create_owner(&api, "a").await;
    let b = create_owner(&api, "b").await;
    let refs = vec![owner_ref("ConfigMap", "v1", "a", &a, false), owner_ref("ConfigMap", "v1", "b", &b, false)];
    api.create(&PostParams::default(), &cm("shared", refs, &[])).await.expect("create");

    api.delete("a", &DeleteParams::default()).await.expect("delete a");
    emulator.settle().await;

    let shared = api.get("shared").await.expect("still owned by b");
    let owners: Vec<String> = shared.metadata.owner_references.unwrap_or_default().into_iter().map(|r| r.uid).collect();
    assert_eq!(owners, [b]);
}

#[tokio::test]
async fn cluster_scoped_owner_collects_namespaced_dependents() {
    let (emulator, client) = common::in_process();
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role: ClusterRole = serde_json::from_value(json!({"metadata": {"name": "owner-role"}})).expect("role");
    let uid = roles.create(&PostParams::default(), &role).await.expect("role").metadata.uid.expect("uid");
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let refs = vec![owner_ref("ClusterRole", "rbac.authorization.k8s.io/v1", "owner-role", &uid, false)];
    api.create(&PostParams::default(), &cm("dep", refs, &[])).await.expect("create");
    emulator.settle().await;
    assert!(api.get_opt("dep").await.expect("get").is_some(), "a live owner keeps it");

    roles.delete("owner-role", &DeleteParams::default()).await.expect("delete role");
    emulator.settle().await;
    assert!(api.get_opt("dep").await.expect("get").is_none());
}

#[tokio::test]
async fn collection_is_asynchronous_and_visible_to_watchers() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let uid = create_owner(&api, "owner").await;
    create_dependent(&api, "child", "owner", &uid, false, &[]).await;
    let mut rx = emulator.cluster.store.subscribe();
    api.delete("owner", &DeleteParams::default()).await.expect("delete");
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        let change = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time").expect("change");
        if change.kind == kube_emulator::store::EventType::Deleted {
            deleted.push(change.name.clone());
        }
    }
    assert_eq!(deleted, ["owner", "child"], "the owner goes first, then the collector deletes the dependent");
}

/// A restore (as from a backup of etcd) keeps uids, owners and managedFields and gives new
/// resourceVersions: a restored dependent of a restored owner stays, and goes with it.
#[tokio::test]
async fn restored_objects_keep_their_identity_and_their_owners() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let managed = json!([{"manager": "earlier-release", "operation": "Apply", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k": {}}}}]);
    let owner = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}, "metadata": {
        "name": "owner", "namespace": "default", "uid": "uid-owner", "resourceVersion": "999999",
        "managedFields": managed}});
    let child = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}, "metadata": {
        "name": "child", "namespace": "default", "uid": "uid-child",
        "ownerReferences": [owner_ref("ConfigMap", "v1", "owner", "uid-owner", false)]}});
    assert_eq!(emulator.restore([owner, child]).expect("restored"), 2);
    emulator.settle().await;

    let child = api.get("child").await.expect("kept: its owner is there");
    assert_eq!(child.metadata.uid.as_deref(), Some("uid-child"));
    let owner = api.get("owner").await.expect("owner");
    let managers: Vec<_> = owner.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.clone()).collect();
    assert_eq!(managers, ["earlier-release"]);
    assert_ne!(owner.metadata.resource_version.as_deref(), Some("999999"), "a new resourceVersion");

    api.delete("owner", &DeleteParams::background()).await.expect("delete owner");
    emulator.settle().await;
    assert!(api.get_opt("child").await.expect("get").is_none(), "collected with its owner");
}
