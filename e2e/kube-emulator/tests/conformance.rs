//! Conformance of the emulator with the real kube 5 client and kube-runtime.

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("valid cm")
}

fn rv(o: &impl kube::Resource) -> String {
    o.meta().resource_version.clone().unwrap_or_default()
}

#[tokio::test]
async fn create_get_list_sets_metadata_and_sorted_items() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for n in ["b", "a", "c"] {
        api.create(&PostParams::default(), &cm(n)).await.expect("create");
    }
    let got = api.get("a").await.expect("get");
    assert!(got.metadata.uid.is_some());
    assert!(got.metadata.creation_timestamp.is_some());
    assert_eq!(got.metadata.namespace.as_deref(), Some("default"));
    let list = api.list(&ListParams::default()).await.expect("list");
    let names: Vec<_> = list.items.iter().map(|o| o.metadata.name.clone().unwrap_or_default()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let err = api.create(&PostParams::default(), &cm("a")).await.expect_err("exists");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"), "{err:?}");
    let err = api.get("zzz").await.expect_err("missing");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message == "configmaps \"zzz\" not found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn list_pages_with_continue_and_remaining_count() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"))).await.expect("create");
    }
    let first = api.list(&ListParams::default().limit(2)).await.expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().expect("continue token");
    let second = api.list(&ListParams::default().limit(2).continue_token(&token)).await.expect("page 2");
    assert_eq!(second.items[0].metadata.name.as_deref(), Some("cm-2"));
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
}

#[tokio::test]
async fn a_filtered_list_pages_through_every_match_once() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for i in 0..7 {
        let mut o = cm(&format!("cm-{i}"));
        let tier = if i % 2 == 0 { "web" } else { "db" };
        o.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        api.create(&PostParams::default(), &o).await.expect("create");
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().labels("tier=web").limit(2);
    loop {
        let page = api.list(&params).await.expect("page");
        assert!(page.items.len() <= 2);
        // Filtered lists carry no count: the server cannot know it without reading everything.
        assert_eq!(page.metadata.remaining_item_count, None);
        seen.extend(page.items.into_iter().filter_map(|o| o.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(seen, ["cm-0", "cm-2", "cm-4", "cm-6"]);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for (n, tier) in [("a", Some("web")), ("b", Some("db")), ("c", None)] {
        let mut o = cm(n);
        if let Some(t) = tier {
            o.metadata.labels = Some([("tier".to_string(), t.to_string())].into());
        }
        api.create(&PostParams::default(), &o).await.expect("create");
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items.into_iter().filter_map(|o| o.metadata.name).collect()
    };
    let l = api.list(&ListParams::default().labels("tier in (web,db)")).await.expect("in");
    assert_eq!(names(l), ["a", "b"]);
    let l = api.list(&ListParams::default().labels("tier!=web")).await.expect("!=");
    assert_eq!(names(l), ["b", "c"]);
    let l = api.list(&ListParams::default().labels("!tier")).await.expect("!exists");
    assert_eq!(names(l), ["c"]);
    let l = api.list(&ListParams::default().fields("metadata.name=b")).await.expect("field");
    assert_eq!(names(l), ["b"]);
    let err = api.list(&ListParams::default().fields("spec.nope=1")).await.expect_err("unknown field");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 400), "{err:?}");
}

#[tokio::test]
async fn watch_from_list_rv_sees_changes_and_resumes() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("before")).await.expect("create");
    let list_rv = api.list(&ListParams::default()).await.expect("list").metadata.resource_version.expect("rv");
    let created = api.create(&PostParams::default(), &cm("x")).await.expect("create");
    let mut patched = created.clone();
    patched.data = Some([("k".to_string(), "w".to_string())].into());
    let patched = api.replace("x", &PostParams::default(), &patched).await.expect("replace");
    api.delete("x", &DeleteParams::default()).await.expect("delete");

    let stream = api.watch(&WatchParams::default(), &list_rv).await.expect("watch");
    let events: Vec<_> = stream.take(3).try_collect().await.expect("events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        })
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);

    // Resuming from the MODIFIED event's RV replays only what came after.
    let stream = api.watch(&WatchParams::default(), &rv(&patched)).await.expect("watch");
    let first = stream.boxed().next().await.expect("event").expect("ok");
    assert!(matches!(first, WatchEvent::Deleted(ref o) if o.metadata.name.as_deref() == Some("x")));
}

#[tokio::test]
async fn watch_rv_zero_starts_with_synthetic_added_then_live() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("old")).await.expect("create");
    let mut stream = api.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    let first = stream.next().await.expect("event").expect("ok");
    assert!(matches!(first, WatchEvent::Added(ref o) if o.metadata.name.as_deref() == Some("old")));
    api.create(&PostParams::default(), &cm("new")).await.expect("create");
    let second = stream.next().await.expect("event").expect("ok");
    assert!(matches!(second, WatchEvent::Added(ref o) if o.metadata.name.as_deref() == Some("new")));
}

#[tokio::test]
async fn watch_with_too_old_rv_gets_in_stream_410() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o = api.create(&PostParams::default(), &cm("a")).await.expect("create");
    api.create(&PostParams::default(), &cm("b")).await.expect("create");
    emulator.cluster.store.lock().compact();
    let mut stream = api.watch(&WatchParams::default(), &rv(&o)).await.expect("200 answer").boxed();
    match stream.next().await.expect("event").expect("ok") {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected ERROR 410, got {other:?}"),
    }
}

#[tokio::test]
async fn label_selector_transitions_become_added_and_deleted() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o = api.create(&PostParams::default(), &cm("t")).await.expect("create");
    let wp = WatchParams::default().labels("app=x");
    let mut stream = api.watch(&wp, &rv(&o)).await.expect("watch").boxed();
    let label = |v: Option<&str>| Patch::Merge(json!({"metadata": {"labels": {"app": v}}}));
    api.patch("t", &PatchParams::default(), &label(Some("x"))).await.expect("label");
    api.patch("t", &PatchParams::default(), &label(None)).await.expect("unlabel");
    let a = stream.next().await.expect("event").expect("ok");
    let d = stream.next().await.expect("event").expect("ok");
    assert!(matches!(a, WatchEvent::Added(_)), "{a:?}");
    assert!(matches!(d, WatchEvent::Deleted(_)), "{d:?}");
}

#[tokio::test]
async fn kube_runtime_watcher_relists_after_410() {
    let (emulator, client) = common::in_process();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &cm("a")).await.expect("create");
    // A 1 s server-side timeout makes the watcher reconnect with its last RV.
    let cfg = watcher::Config::default().timeout(1);
    let mut events = watcher(cms.clone(), cfg).boxed();
    let mut inits = 0;
    let mut compacted = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while inits < 2 {
        let ev = tokio::time::timeout_at(deadline, events.next()).await.expect("in time").expect("event");
        if let Ok(watcher::Event::InitDone) = ev {
            inits += 1;
            if !compacted {
                // Move the RV on in another type, then forget history: the watcher's RV is too old.
                let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).expect("secret");
                secrets.create(&PostParams::default(), &s).await.expect("secret");
                emulator.cluster.store.lock().compact();
                compacted = true;
            }
        }
    }
    assert_eq!(inits, 2, "the watcher relisted after the 410");
}

#[tokio::test]
async fn kube_runtime_reflector_sees_all_objects_with_streaming_lists() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for n in ["a", "b"] {
        api.create(&PostParams::default(), &cm(n)).await.expect("create");
    }
    let cfg = watcher::Config::default().streaming_lists();
    let objs: Vec<ConfigMap> =
        watcher(api.clone(), cfg).applied_objects().take(2).try_collect().await.expect("objects");
    assert_eq!(objs.len(), 2);
}

#[tokio::test]
async fn no_op_writes_do_not_bump_resource_version() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o = api.create(&PostParams::default(), &cm("same")).await.expect("create");
    let again = api.replace("same", &PostParams::default(), &o).await.expect("replace");
    assert_eq!(rv(&again), rv(&o));
    let p =
        api.patch("same", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "v"}}))).await.expect("patch");
    assert_eq!(rv(&p), rv(&o));
    let changed =
        api.patch("same", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "z"}}))).await.expect("patch");
    assert_ne!(rv(&changed), rv(&o));
}

#[tokio::test]
async fn stale_replace_is_a_409_conflict() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o = api.create(&PostParams::default(), &cm("c")).await.expect("create");
    api.patch("c", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "1"}}))).await.expect("patch");
    let err = api.replace("c", &PostParams::default(), &o).await.expect_err("stale");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert_eq!(
                s.message,
                "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn finalizer_helper_adds_and_removes_its_finalizer() {
    use kube::runtime::controller::Action;
    use kube::runtime::finalizer::{Event, finalizer};
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("f")).await.expect("create");
    let run = |obj: ConfigMap| {
        let api = api.clone();
        async move {
            finalizer(&api, "example.com/cleanup", std::sync::Arc::new(obj), |ev| async move {
                match ev {
                    Event::Apply(_) | Event::Cleanup(_) => Ok::<_, std::convert::Infallible>(Action::await_change()),
                }
            })
            .await
        }
    };
    run(api.get("f").await.expect("get")).await.expect("add finalizer");
    let with = api.get("f").await.expect("get");
    assert_eq!(with.metadata.finalizers.as_deref(), Some(&["example.com/cleanup".to_string()][..]));
    // Apply runs once the finalizer is there.
    run(with).await.expect("apply");
    api.delete("f", &DeleteParams::default()).await.expect("delete");
    let deleting = api.get("f").await.expect("still there");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    run(deleting).await.expect("cleanup");
    assert!(api.get_opt("f").await.expect("get").is_none(), "gone once the finalizer is removed");
}

async fn install_widgets(client: &kube::Client) -> Api<DynamicObject> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(common::widget_crd()).expect("crd");
    let created = crds.create(&PostParams::default(), &crd).await.expect("create crd");
    let conds = created.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(conds.iter().any(|c| c.type_ == "Established" && c.status == "True"));
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    Api::default_namespaced_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "widgets"))
}

fn widget(name: &str, color: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": {"color": color, "size": 1}
    }))
    .expect("widget")
}

#[tokio::test]
async fn crd_registration_serves_custom_resources_at_once() {
    let (_c, client) = common::in_process();
    let widgets = install_widgets(&client).await;
    let w = widgets.create(&PostParams::default(), &widget("w", "red")).await.expect("create");
    assert_eq!(w.metadata.generation, Some(1));
    let l = widgets.list(&ListParams::default().fields("spec.color=red")).await.expect("selectable field");
    assert_eq!(l.items.len(), 1);
    let discovery = kube::Discovery::new(client.clone()).run().await.expect("discovery");
    assert!(discovery.groups().any(|g| g.name() == "example.com"));
}

#[tokio::test]
async fn status_subresource_and_generation_rules() {
    let (_c, client) = common::in_process();
    let widgets = install_widgets(&client).await;
    let mut body = widget("g", "red");
    body.data["status"] = json!({"phase": "Ignored"});
    let w = widgets.create(&PostParams::default(), &body).await.expect("create");
    assert!(w.data.get("status").is_none(), "create drops status");

    let st = widgets
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"color": "blue"}})),
        )
        .await
        .expect("status");
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert_eq!(st.data["spec"]["color"], "red", "/status does not write spec");
    assert_eq!(st.metadata.generation, Some(1), "status writes keep generation");

    let main = widgets
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "X"}, "spec": {"color": "blue"}})),
        )
        .await
        .expect("main");
    assert_eq!(main.data["status"]["phase"], "Ready", "main endpoint keeps status");
    assert_eq!(main.metadata.generation, Some(2));

    let labelled = widgets
        .patch("g", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .expect("label");
    assert_eq!(labelled.metadata.generation, Some(2), "metadata changes keep generation");
}

#[tokio::test]
async fn schema_validation_rejects_with_422() {
    let (_c, client) = common::in_process();
    let widgets = install_widgets(&client).await;
    let mut bad = widget("bad", "red");
    bad.data["spec"]["size"] = json!(-1);
    let err = widgets.create(&PostParams::default(), &bad).await.expect_err("invalid");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.reason == "Invalid"), "{err:?}");
}

#[tokio::test]
async fn strategic_merge_patch_on_custom_resource_is_415() {
    let (_c, client) = common::in_process();
    let widgets = install_widgets(&client).await;
    widgets.create(&PostParams::default(), &widget("s", "red")).await.expect("create");
    let err = widgets
        .patch("s", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"color": "x"}})))
        .await
        .expect_err("415");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 415), "{err:?}");
}

#[tokio::test]
async fn server_side_apply_creates_then_updates() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let pp = PatchParams::apply("tester").force();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let o = api.patch("ssa", &pp, &Patch::Apply(&body)).await.expect("apply create");
    assert_eq!(o.data.as_ref().and_then(|d| d.get("a")).map(String::as_str), Some("1"));
    let again = api.patch("ssa", &pp, &Patch::Apply(&body)).await.expect("apply again");
    assert_eq!(rv(&again), rv(&o), "re-applying the same object is a no-op");
}

#[tokio::test]
async fn namespaces_missing_and_terminating() {
    use k8s_openapi::api::core::v1::Namespace;
    let (_c, client) = common::in_process();
    let in_missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let err = in_missing.create(&PostParams::default(), &cm("x")).await.expect_err("404");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message == "namespaces \"nope\" not found"),
        "{err:?}"
    );

    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    nss.create(&PostParams::default(), &ns).await.expect("create ns");
    let in_team: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    in_team.create(&PostParams::default(), &held).await.expect("create");
    in_team.create(&PostParams::default(), &cm("plain")).await.expect("create");
    nss.delete("team", &DeleteParams::default()).await.expect("delete ns");
    let terminating = nss.get("team").await.expect("terminating");
    assert_eq!(terminating.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    assert!(in_team.get_opt("plain").await.expect("get").is_none());
    let err = in_team.create(&PostParams::default(), &cm("late")).await.expect_err("403");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 403), "{err:?}");
    in_team
        .patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .expect("release");
    assert!(nss.get_opt("team").await.expect("get").is_none(), "namespace goes once empty");
}

#[tokio::test]
async fn metadata_only_watcher_works() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &cm("m")).await.expect("create");
    // Api<PartialObjectMeta<K>> sends the PartialObjectMetadataList Accept header.
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> = Api::default_namespaced(client);
    let metas: Vec<_> =
        watcher(meta_api, watcher::Config::default()).applied_objects().take(1).try_collect().await.expect("metadata");
    assert_eq!(metas[0].metadata.name.as_deref(), Some("m"));
}

#[tokio::test]
async fn serves_over_tcp_with_a_kubeconfig() {
    let em = kube_emulator::Emulator::start().serve("127.0.0.1:0").await.expect("start");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("kubeconfig");
    em.write_kubeconfig(&path).expect("write");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("tcp")).await.expect("create over tcp");
    assert_eq!(api.list(&ListParams::default()).await.expect("list").items.len(), 1);
}

#[tokio::test]
async fn server_side_apply_conflicts_removal_and_force() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let body = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "own"}, "data": data});
    api.patch("own", &PatchParams::apply("alice"), &Patch::Apply(&body(json!({"a": "1", "b": "1"}))))
        .await
        .expect("alice applies");
    let err = api
        .patch("own", &PatchParams::apply("bob"), &Patch::Apply(&body(json!({"a": "2"}))))
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.message, "Apply failed with 1 conflict: conflict with \"alice\": .data.a");
        }
        other => panic!("{other:?}"),
    }
    // Same value: shared ownership, no conflict.
    api.patch("own", &PatchParams::apply("bob"), &Patch::Apply(&body(json!({"b": "1"}))))
        .await
        .expect("same value is no conflict");
    let forced = api
        .patch("own", &PatchParams::apply("bob").force(), &Patch::Apply(&body(json!({"a": "2", "b": "1"}))))
        .await
        .expect("force");
    assert_eq!(forced.data.as_ref().and_then(|d| d.get("a")).map(String::as_str), Some("2"));
    // alice stops applying b, but bob still owns it: it stays. Then bob drops it too: gone.
    api.patch("own", &PatchParams::apply("alice"), &Patch::Apply(&body(json!({})))).await.expect("alice shrinks");
    let o = api.get("own").await.expect("get");
    assert!(o.data.as_ref().is_some_and(|d| d.contains_key("b")), "{o:?}");
    api.patch("own", &PatchParams::apply("bob"), &Patch::Apply(&body(json!({"a": "2"})))).await.expect("bob shrinks");
    let o = api.get("own").await.expect("get");
    assert!(!o.data.as_ref().is_some_and(|d| d.contains_key("b")), "{o:?}");
    let managers: Vec<String> =
        o.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    assert!(managers.contains(&"bob".to_string()), "{managers:?}");
}

#[tokio::test]
async fn apply_without_field_manager_is_rejected() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let err = api.patch("x", &PatchParams::default(), &Patch::Apply(&body)).await.expect_err("needs a field manager");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422), "{err:?}");
}

#[tokio::test]
async fn recorder_events_are_listed_as_core_events_of_the_object() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let o = api.create(&PostParams::default(), &cm("ev")).await.expect("create");
    let recorder = Recorder::new(client.clone(), Reporter { controller: "tester".into(), instance: None });
    let ev = Event {
        type_: EventType::Normal,
        reason: "Reconciled".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = kube::Resource::object_ref(&o, &());
    recorder.publish(&ev, &reference).await.expect("publish");
    recorder.publish(&ev, &reference).await.expect("publish again (series patch)");
    let core: Api<CoreEvent> = Api::default_namespaced(client);
    let uid = o.metadata.uid.clone().unwrap_or_default();
    let fields = format!(
        "involvedObject.name=ev,involvedObject.namespace=default,involvedObject.kind=ConfigMap,involvedObject.uid={uid}"
    );
    let list = core.list(&ListParams::default().fields(&fields)).await.expect("list core events");
    assert_eq!(list.items.len(), 1, "{list:?}");
    let e = &list.items[0];
    assert_eq!(e.message.as_deref(), Some("all good"));
    assert_eq!(e.reason.as_deref(), Some("Reconciled"));
    assert_eq!(e.reporting_component.as_deref(), Some("tester"));
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));
}

#[tokio::test]
async fn watch_sends_periodic_bookmarks_and_ends_at_timeout() {
    let (emulator, client) = common::in_process();
    emulator.cluster.set_bookmark_interval(Duration::from_millis(100));
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o = api.create(&PostParams::default(), &cm("b")).await.expect("create");
    let wp = WatchParams::default().timeout(2);
    let started = tokio::time::Instant::now();
    let events: Vec<_> = api.watch(&wp, &rv(&o)).await.expect("watch").try_collect().await.expect("events");
    assert!(started.elapsed() >= Duration::from_millis(1900), "closed at timeoutSeconds");
    assert!(started.elapsed() < Duration::from_secs(5));
    let marks: Vec<_> = events.iter().filter(|e| matches!(e, WatchEvent::Bookmark(_))).collect();
    assert!(marks.len() >= 5, "{events:?}");
    if let WatchEvent::Bookmark(b) = marks[0] {
        assert_eq!(b.metadata.resource_version, rv(&o));
    }
}

#[tokio::test]
async fn deletion_with_finalizers_marks_then_removes() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let mut o = cm("fin");
    o.metadata.finalizers = Some(vec!["example.com/x".into()]);
    let created = api.create(&PostParams::default(), &o).await.expect("create");
    let mut stream = api.watch(&WatchParams::default(), &rv(&created)).await.expect("watch").boxed();
    let answer = api.delete("fin", &DeleteParams::default()).await.expect("delete");
    let marked = answer.left().expect("the object comes back while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    let err = api
        .patch(
            "fin",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/x", "new"]}})),
        )
        .await
        .expect_err("no new finalizers while deleting");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422), "{err:?}");
    api.patch("fin", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .expect("release");
    let m = stream.next().await.expect("event").expect("ok");
    let d = stream.next().await.expect("event").expect("ok");
    assert!(matches!(m, WatchEvent::Modified(_)), "{m:?}");
    assert!(matches!(d, WatchEvent::Deleted(_)), "{d:?}");
    assert!(api.get_opt("fin").await.expect("get").is_none());
}

#[tokio::test]
async fn delete_preconditions_and_dry_run() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o = api.create(&PostParams::default(), &cm("p")).await.expect("create");
    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid: Some("nope".into()), resource_version: None }),
        ..DeleteParams::default()
    };
    let err = api.delete("p", &wrong).await.expect_err("precondition");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err:?}");
    api.delete("p", &DeleteParams { dry_run: true, ..DeleteParams::default() }).await.expect("dry run");
    assert!(api.get_opt("p").await.expect("get").is_some(), "dry run deletes nothing");
    let dry = PostParams { dry_run: true, ..PostParams::default() };
    api.create(&dry, &cm("dry")).await.expect("dry create");
    assert!(api.get_opt("dry").await.expect("get").is_none(), "dry run creates nothing");
    let right = DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid: o.metadata.uid.clone(), resource_version: Some(rv(&o)) }),
        ..DeleteParams::default()
    };
    api.delete("p", &right).await.expect("delete");
}

#[tokio::test]
async fn generate_name_and_name_mismatch() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).expect("cm");
    let made = api.create(&PostParams::default(), &o).await.expect("create");
    let name = made.metadata.name.clone().unwrap_or_default();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let mut other = made.clone();
    other.metadata.name = Some("different".into());
    let err = api.replace(&name, &PostParams::default(), &other).await.expect_err("mismatch");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 400), "{err:?}");
}

#[tokio::test]
async fn deployment_generation_and_scale_subresource() {
    use k8s_openapi::api::apps::v1::Deployment;
    let (_c, client) = common::in_process();
    let api: Api<Deployment> = Api::default_namespaced(client);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .expect("deployment");
    let made = api.create(&PostParams::default(), &d).await.expect("create");
    assert_eq!(made.metadata.generation, Some(1));
    let annotated = api
        .patch("d", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})))
        .await
        .expect("annotate");
    assert_eq!(annotated.metadata.generation, Some(2), "Deployments bump on annotation changes");
    let scale = api.get_scale("d").await.expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    assert_eq!(scale.status.map(|s| s.selector), Some(Some("app=d".to_string())));
    api.patch_scale("d", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("scale up");
    let after = api.get("d").await.expect("get");
    assert_eq!(after.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(after.metadata.generation, Some(3));
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_objects() {
    let (_c, client) = common::in_process();
    let widgets = install_widgets(&client).await;
    widgets.create(&PostParams::default(), &widget("w", "red")).await.expect("create");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default()).await.expect("delete crd");
    let err = widgets.list(&ListParams::default()).await.expect_err("type gone");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
    // Re-registering starts empty.
    let widgets = install_widgets(&client).await;
    assert!(widgets.list(&ListParams::default()).await.expect("list").items.is_empty());
}

#[tokio::test]
async fn multi_version_crd_serves_every_version() {
    let (_c, client) = common::in_process();
    let mut crd = common::widget_crd();
    let mut beta = crd["spec"]["versions"][0].clone();
    beta["name"] = json!("v1beta1");
    beta["storage"] = json!(false);
    crd["spec"]["versions"].as_array_mut().expect("versions").push(beta);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &serde_json::from_value(crd).expect("crd")).await.expect("create crd");
    let api_for = |v: &str| -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("example.com", v, "Widget");
        Api::default_namespaced_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "widgets"))
    };
    let mut w = widget("mv", "red");
    w.types.as_mut().expect("types").api_version = "example.com/v1beta1".into();
    api_for("v1beta1").create(&PostParams::default(), &w).await.expect("create via v1beta1");
    let got = api_for("v1").get("mv").await.expect("get via v1");
    assert_eq!(got.types.expect("types").api_version, "example.com/v1");
}

#[tokio::test]
async fn built_in_defaults_are_filled_in_like_the_real_server() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    let (_c, client) = common::in_process();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}))
        .expect("secret");
    let made = secrets.create(&PostParams::default(), &s).await.expect("create");
    assert_eq!(made.type_.as_deref(), Some("Opaque"));
    assert!(made.string_data.is_none(), "stringData is write-only");
    let data = made.data.expect("data");
    assert_eq!(data.get("password").map(|b| b.0.as_slice()), Some(&b"hunter2"[..]));

    let services: Api<Service> = Api::default_namespaced(client.clone());
    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}),
    )
    .expect("service");
    let made = services.create(&PostParams::default(), &svc).await.expect("create");
    let spec = made.spec.expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ip = spec.cluster_ip.clone().expect("cluster IP allocated");
    let port = &spec.ports.expect("ports")[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    // An update that leaves the IP out keeps it.
    let put: Service = serde_json::from_value(json!({"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 81}]}}))
        .expect("service");
    let after = services.replace("svc", &PostParams::default(), &put).await.expect("replace");
    assert_eq!(after.spec.and_then(|s| s.cluster_ip), Some(ip));

    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}
    }))
    .expect("deployment");
    let made = deployments.create(&PostParams::default(), &d).await.expect("create");
    let spec = made.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
    // Re-sending the same (undefaulted) object is still a no-op.
    let again = deployments
        .replace("d", &PostParams::default(), &{
            let mut d2 = d.clone();
            d2.metadata.resource_version = made.metadata.resource_version.clone();
            d2
        })
        .await
        .expect("replace");
    assert_eq!(again.metadata.resource_version, made.metadata.resource_version);
    assert_eq!(again.metadata.generation, Some(1));
}

#[tokio::test]
async fn invalid_names_and_labels_are_rejected_like_the_real_server() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api.create(&PostParams::default(), &cm("Bad_Name")).await.expect_err("bad name");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(s.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
    let mut long_label = cm("l");
    long_label.metadata.labels = Some([("app".to_string(), "x".repeat(64))].into());
    let err = api.create(&PostParams::default(), &long_label).await.expect_err("long label");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("must be no more than 63 characters")),
        "{err:?}"
    );
    let mut frozen = cm("frozen");
    frozen.immutable = Some(true);
    api.create(&PostParams::default(), &frozen).await.expect("create");
    let err = api
        .patch("frozen", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "changed"}})))
        .await
        .expect_err("immutable");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("field is immutable when `immutable` is set")),
        "{err:?}"
    );
}

#[tokio::test]
async fn lease_taken_over_by_a_second_holder() {
    use k8s_openapi::api::coordination::v1::Lease;
    let (_c, client) = common::in_process();
    let leases: Api<Lease> = Api::default_namespaced(client);
    let apply = |holder: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
    };
    leases.patch("leader", &PatchParams::apply("pod-a"), &Patch::Apply(&apply("pod-a"))).await.expect("a takes it");
    let err = leases
        .patch("leader", &PatchParams::apply("pod-b"), &Patch::Apply(&apply("pod-b")))
        .await
        .expect_err("held by a");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"), "{err:?}");
    let taken = leases
        .patch("leader", &PatchParams::apply("pod-b").force(), &Patch::Apply(&apply("pod-b")))
        .await
        .expect("b takes over");
    assert_eq!(taken.spec.and_then(|s| s.holder_identity).as_deref(), Some("pod-b"));
    // Creating it again is the create race kube-lease-manager sees: 409 AlreadyExists.
    let dup: Lease = serde_json::from_value(apply("pod-c")).expect("lease");
    let err = leases.create(&PostParams::default(), &dup).await.expect_err("exists");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"), "{err:?}");
}

#[tokio::test]
async fn status_apply_by_a_controller_owns_only_status() {
    let (_c, client) = common::in_process();
    let widgets = install_widgets(&client).await;
    widgets.create(&PostParams::default(), &widget("sa", "red")).await.expect("create");
    let status = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "sa"},
                        "status": {"phase": "Ready", "observedGeneration": 1}});
    let pp = PatchParams::apply("widget-controller").force();
    let w = widgets.patch_status("sa", &pp, &Patch::Apply(&status)).await.expect("status apply");
    assert_eq!(w.data["status"]["phase"], "Ready");
    assert_eq!(w.data["spec"]["color"], "red");
    let again = widgets.patch_status("sa", &pp, &Patch::Apply(&status)).await.expect("again");
    assert_eq!(rv(&again), rv(&w), "same status apply is a no-op");
    let entry = w
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("widget-controller"))
        .expect("managed fields entry");
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
}

#[tokio::test]
async fn cluster_wide_lists_of_namespaced_kinds() {
    let (_c, client) = common::in_process();
    for ns in ["default", "kube-system"] {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        api.create(&PostParams::default(), &cm("same-name")).await.expect("create");
    }
    let all: Api<ConfigMap> = Api::all(client);
    let list = all.list(&ListParams::default()).await.expect("list");
    let keys: Vec<(String, String)> = list
        .items
        .iter()
        .map(|o| (o.metadata.namespace.clone().unwrap_or_default(), o.metadata.name.clone().unwrap_or_default()))
        .collect();
    assert_eq!(keys, [("default".into(), "same-name".into()), ("kube-system".into(), "same-name".into())]);
    let only = all.list(&ListParams::default().fields("metadata.namespace=kube-system")).await.expect("list");
    assert_eq!(only.items.len(), 1);
}

#[tokio::test]
async fn kube_runtime_controller_reconciles_against_the_emulator() {
    use kube::runtime::controller::{Action, Controller};
    use std::sync::Arc;
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    async fn reconcile(obj: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>) -> Result<Action, kube::Error> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"reconciled": "yes"}}});
        api.patch(&name, &PatchParams::apply("reconciler").force(), &Patch::Apply(&patch)).await?;
        Ok(Action::await_change())
    }
    fn error_policy(_o: Arc<ConfigMap>, _e: &kube::Error, _a: Arc<Api<ConfigMap>>) -> Action {
        Action::requeue(Duration::from_millis(100))
    }
    let ctrl = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(api.clone()))
        .for_each(|_| async {});
    let handle = tokio::spawn(ctrl);
    api.create(&PostParams::default(), &cm("r1")).await.expect("create");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = api.get("r1").await.expect("get");
        if o.metadata.labels.as_ref().and_then(|l| l.get("reconciled")).is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "reconciled in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.abort();
}

#[tokio::test]
async fn crd_deletion_waits_for_custom_resource_finalizers() {
    let (_c, client) = common::in_process();
    let widgets = install_widgets(&client).await;
    let mut held = widget("held", "red");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    widgets.create(&PostParams::default(), &held).await.expect("create");
    widgets.create(&PostParams::default(), &widget("plain", "red")).await.expect("create");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("widgets.example.com").await.expect("crd");
    assert_eq!(
        crd.metadata.finalizers.as_deref(),
        Some(&["customresourcecleanup.apiextensions.k8s.io".to_string()][..])
    );
    crds.delete("widgets.example.com", &DeleteParams::default()).await.expect("delete crd");
    let terminating = crds.get("widgets.example.com").await.expect("still there");
    let conds = terminating.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(conds.iter().any(|c| c.type_ == "Terminating" && c.status == "True"), "{conds:?}");
    assert!(widgets.get_opt("plain").await.expect("get").is_none());
    let err = widgets.create(&PostParams::default(), &widget("late", "red")).await.expect_err("terminating");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 405), "{err:?}");
    widgets
        .patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .expect("release");
    assert!(crds.get_opt("widgets.example.com").await.expect("get").is_none(), "CRD goes with its last object");
}

#[tokio::test]
async fn immutable_built_in_fields_are_refused() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (_c, client) = common::in_process();
    let api: Api<StatefulSet> = Api::default_namespaced(client);
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .expect("sts");
    api.create(&PostParams::default(), &sts).await.expect("create");
    api.patch("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("replicas may change");
    let grow = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}]}});
    let err = api.patch("db", &PatchParams::default(), &Patch::Merge(grow)).await.expect_err("forbidden");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message
                    .starts_with("StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn namespace_finalize_subresource_releases_a_custom_spec_finalizer() {
    use k8s_openapi::api::core::v1::Namespace;
    let (_c, client) = common::in_process();
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": "held"}, "spec": {"finalizers": ["kubernetes", "example.com/cleanup"]}}),
    )
    .expect("ns");
    nss.create(&PostParams::default(), &ns).await.expect("create");
    nss.delete("held", &DeleteParams::default()).await.expect("delete");
    let terminating = nss.get("held").await.expect("held by its spec finalizer");
    let fins = terminating.spec.and_then(|s| s.finalizers).unwrap_or_default();
    assert_eq!(fins, ["example.com/cleanup"], "the namespace controller's own finalizer is gone");
    let mut body = nss.get("held").await.expect("get");
    body.spec = Some(Default::default());
    let req = kube::core::Request::new("/api/v1/namespaces")
        .replace_subresource("finalize", "held", &PostParams::default(), serde_json::to_vec(&body).expect("json"))
        .expect("request");
    client.request::<Namespace>(req).await.ok();
    assert!(nss.get_opt("held").await.expect("get").is_none(), "finalized namespace is removed");
}

#[tokio::test]
async fn creating_an_object_that_carries_a_resource_version_fails_like_the_real_server() {
    let (_c, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let o = api.create(&PostParams::default(), &cm("orig")).await.expect("create");
    let mut copy = o.clone();
    copy.metadata.name = Some("copy".into());
    copy.metadata.uid = None;
    let err = api.create(&PostParams::default(), &copy).await.expect_err("rv set");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 500 && s.message.ends_with("resourceVersion should not be set on objects to be created")),
        "{err:?}"
    );
}

#[tokio::test]
async fn expired_continue_token_is_410_and_bad_token_is_400() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for n in ["a", "b"] {
        api.create(&PostParams::default(), &cm(n)).await.expect("create");
    }
    let first = api.list(&ListParams::default().limit(1)).await.expect("page");
    let token = first.metadata.continue_.expect("token");
    api.create(&PostParams::default(), &cm("c")).await.expect("create");
    emulator.cluster.store.lock().compact();
    let err = api.list(&ListParams::default().limit(1).continue_token(&token)).await.expect_err("expired");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 410 && s.reason == "Expired"), "{err:?}");
    let err = api.list(&ListParams::default().limit(1).continue_token("garbage!")).await.expect_err("bad");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 400), "{err:?}");
}
