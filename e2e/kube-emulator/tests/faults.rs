//! Fault injection with the real kube 5 client: canned Status errors, retries of 429/503/504,
//! latency, connection resets, watch faults, compaction, server down, and the admin endpoint.

mod common;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use http::header::USER_AGENT;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::client::retry::RetryPolicy;
use kube_emulator::instruments::faults::{DownMode, FaultAction, FaultRule};
use kube_emulator::{Emulator, Server};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("valid configmap")
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected a Status error, got {other:?}"),
    }
}

/// A loopback emulator and a client built from a kubeconfig-like Config, as the operator builds
/// it (kube's default retry layer included).
async fn loopback() -> (Server, Client) {
    let em = Emulator::start().serve("127.0.0.1:0").await.expect("serve");
    let mut config = common::admin_config(&em).await;
    config.headers.push((USER_AGENT, "fault-test/1.0".parse().expect("header")));
    let client = Client::try_from(config).expect("client");
    (em, client)
}

async fn seed(api: &Api<ConfigMap>, names: &[&str]) {
    for n in names {
        api.create(&PostParams::default(), &cm(n)).await.expect("seed");
    }
}

#[tokio::test]
async fn canned_errors_carry_the_real_status() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a"]).await;
    let cases = [
        (
            409,
            "Conflict",
            "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again",
        ),
        (429, "TooManyRequests", "Too many requests, please try again later."),
        (500, "InternalError", "Internal error occurred: injected fault"),
        (503, "ServiceUnavailable", "the server is currently unable to handle the request"),
        (504, "Timeout", "Timeout: request did not complete within requested timeout - context deadline exceeded"),
    ];
    for (code, reason, message) in cases {
        emulator.instruments.faults.add(FaultRule::error(code).verb("get").name("a").times(1));
        let s = api_error(api.get("a").await.expect_err("injected"));
        assert_eq!((s.code, s.reason.as_str(), s.message.as_str()), (code, reason, message));
    }
    api.get("a").await.expect("rules are used up");
}

#[tokio::test]
async fn too_many_requests_sends_retry_after() {
    let (emulator, client) = common::in_process();
    emulator.instruments.faults.add(FaultRule::too_many_requests(7).verb("list"));
    let req =
        http::Request::get("/api/v1/namespaces/default/configmaps").body(kube::client::Body::empty()).expect("req");
    let resp = client.send(req).await.expect("response");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
}

#[tokio::test]
async fn default_kube_client_retries_transient_errors() {
    let (em, client) = loopback().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a"]).await;
    let faults = &em.emulator.instruments.faults;
    faults.add(FaultRule::too_many_requests(0).verb("get").times(2));
    faults.add(FaultRule::error(503).verb("get").times(1));
    faults.add(FaultRule::error(504).verb("get").times(1));
    api.get("a").await.expect("kube's default client retries 429/503/504");
    let codes: Vec<u16> = em
        .emulator
        .instruments
        .requests
        .snapshot()
        .log
        .iter()
        .filter(|r| r.info.verb == "get")
        .map(|r| r.code)
        .collect();
    assert_eq!(codes, [429, 429, 503, 504, 200]);
}

#[tokio::test]
async fn default_kube_client_waits_for_retry_after() {
    let (em, client) = loopback().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    em.emulator.instruments.faults.add(FaultRule::too_many_requests(1).verb("list").times(1));
    let started = Instant::now();
    api.list(&ListParams::default()).await.expect("retried");
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

/// kube's `RetryPolicy` with three retries (the count of `RetryPolicy::default()`) over the
/// in-process router: four failures in a row get through to the caller, three do not.
#[tokio::test]
async fn three_retries_give_up_on_the_fourth_failure() {
    let emulator = Emulator::start();
    let policy = RetryPolicy::new(Duration::from_millis(5), Duration::from_millis(50), 3, false).expect("policy");
    let service = tower::ServiceBuilder::new()
        .layer(tower::retry::RetryLayer::new(policy))
        .map_err(tower::BoxError::from)
        .service(emulator.router());
    let api: Api<ConfigMap> = Api::default_namespaced(Client::new(service, "default"));
    seed(&api, &["a"]).await;
    emulator.instruments.faults.add(FaultRule::error(503).verb("get").times(3));
    api.get("a").await.expect("three failures are retried");
    emulator.instruments.faults.add(FaultRule::error(503).verb("get").times(4));
    let s = api_error(api.get("a").await.expect_err("the fourth failure is returned"));
    assert_eq!(s.code, 503);
    assert_eq!(emulator.instruments.requests.snapshot().verb("get"), 4 + 4);
}

#[tokio::test]
async fn latency_delays_matching_requests() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    emulator.instruments.faults.add(FaultRule::new(FaultAction::Latency { ms: 300 }).verb("list").times(1));
    let started = Instant::now();
    api.list(&ListParams::default()).await.expect("list");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    api.list(&ListParams::default()).await.expect("list");
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn connection_reset_fails_the_request_without_a_status() {
    let (em, client) = loopback().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a"]).await;
    em.emulator.instruments.faults.add(FaultRule::new(FaultAction::Reset).verb("get").times(1));
    let err = api.get("a").await.expect_err("reset");
    assert!(!matches!(err, kube::Error::Api(_)), "a transport error, not a Status: {err:?}");
    api.get("a").await.expect("the next request is served");
    let last_get =
        em.emulator.instruments.requests.snapshot().log.iter().find(|r| r.info.verb == "get").map(|r| r.code);
    assert_eq!(last_get, Some(0), "logged as dropped");
}

#[tokio::test]
async fn server_down_refuses_then_recovers() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    emulator.instruments.faults.server_down(Duration::from_millis(300), DownMode::Unavailable);
    let s = api_error(api.list(&ListParams::default()).await.expect_err("down"));
    assert_eq!((s.code, s.reason.as_str()), (503, "ServiceUnavailable"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    api.list(&ListParams::default()).await.expect("up again");
}

#[tokio::test]
async fn server_down_dropping_connections_fails_requests() {
    let (em, client) = loopback().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    em.emulator.instruments.faults.server_down(Duration::from_secs(30), DownMode::Drop);
    let err = api.list(&ListParams::default()).await.expect_err("dropped");
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    em.emulator.instruments.faults.server_up();
    api.list(&ListParams::default()).await.expect("up again");
}

#[tokio::test]
async fn server_down_ends_open_watches() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let stream = api.watch(&WatchParams::default(), "0").await.expect("watch");
    let mut stream = stream.boxed();
    emulator.instruments.faults.server_down(Duration::from_millis(100), DownMode::Unavailable);
    let end = tokio::time::timeout(Duration::from_secs(2), stream.next()).await.expect("the watch ends");
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn watch_ends_after_n_events() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a", "b", "c"]).await;
    emulator.instruments.faults.add(FaultRule::new(FaultAction::WatchEnd { after_events: 2 }).verb("watch").times(1));
    let events: Vec<_> =
        api.watch(&WatchParams::default(), "0").await.expect("watch").try_collect().await.expect("events");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| matches!(e, WatchEvent::Added(_))));
}

#[tokio::test]
async fn watch_gets_an_in_stream_410() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a", "b"]).await;
    emulator.instruments.faults.add(FaultRule::new(FaultAction::WatchExpired { after_events: 1 }).verb("watch"));
    let events: Vec<_> =
        api.watch(&WatchParams::default(), "0").await.expect("watch").try_collect().await.expect("events");
    assert_eq!(events.len(), 2);
    match &events[1] {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.starts_with("too old resource version: "), "{}", e.message);
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_watcher_relists_after_an_in_stream_410() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a"]).await;
    emulator
        .instruments
        .faults
        .add(FaultRule::new(FaultAction::WatchExpired { after_events: 0 }).verb("watch").times(1));
    let w = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default());
    let task = tokio::spawn(w.for_each(|_| async {}));
    let deadline = Instant::now() + Duration::from_secs(5);
    while emulator.instruments.requests.snapshot().verb("list") < 2 {
        assert!(Instant::now() < deadline, "the watcher should relist after 410");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}

#[tokio::test]
async fn compaction_makes_resumes_expire() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let created = api.create(&PostParams::default(), &cm("a")).await.expect("create");
    let old_rv = created.metadata.resource_version.expect("rv");
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.expect("patch");
    kube_emulator::instruments::faults::compact(&emulator.cluster);
    let mut stream = api.watch(&WatchParams::default(), &old_rv).await.expect("watch").boxed();
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected ERROR 410, got {other:?}"),
    }
}

#[tokio::test]
async fn compaction_rule_applies_before_the_matching_watch() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let created = api.create(&PostParams::default(), &cm("a")).await.expect("create");
    let old_rv = created.metadata.resource_version.expect("rv");
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.expect("patch");
    emulator.instruments.faults.add(FaultRule::new(FaultAction::Compact).verb("watch").times(1));
    let mut stream = api.watch(&WatchParams::default(), &old_rv).await.expect("watch").boxed();
    assert!(matches!(stream.try_next().await.expect("event"), Some(WatchEvent::Error(e)) if e.code == 410));
}

#[tokio::test]
async fn touch_makes_a_stale_update_conflict_for_real() {
    let (emulator, client) = common::in_process();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a"]).await;
    let read = api.get("a").await.expect("get");
    emulator.instruments.faults.add(FaultRule::new(FaultAction::Touch).verb("update").name("a").times(1));
    let s = api_error(api.replace("a", &PostParams::default(), &read).await.expect_err("conflict"));
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    let fresh = api.get("a").await.expect("get");
    api.replace("a", &PostParams::default(), &fresh).await.expect("a fresh read succeeds");
}

#[tokio::test]
async fn rules_match_field_manager_user_agent_and_probability() {
    let (em, client) = loopback().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    seed(&api, &["a"]).await;
    let faults = &em.emulator.instruments.faults;
    let never = faults.add(FaultRule::error(500).verb("get").probability(0.0));
    api.get("a").await.expect("probability 0 never fires");
    assert_eq!(faults.fired(never), 0);
    faults.add(FaultRule::error(500).verb("patch").field_manager("operator"));
    let patch = Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "y"}}));
    api.patch("a", &PatchParams::apply("someone-else"), &patch).await.expect("other managers pass");
    let s = api_error(api.patch("a", &PatchParams::apply("operator"), &patch).await.expect_err("operator fails"));
    assert_eq!(s.code, 500);
    faults.add(FaultRule::error(500).verb("list").user_agent("fault-test/"));
    assert_eq!(api_error(api.list(&ListParams::default()).await.expect_err("by user agent")).code, 500);
}

#[tokio::test]
async fn admin_endpoint_adds_lists_and_clears_rules() {
    let (em, client) = loopback().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let rule = json!({"verbs": ["create"], "resource": "configmaps", "times": 1,
                      "action": {"type": "error", "code": 500, "message": "disk full"}});
    let req = http::Request::post("/emulator/faults").body(serde_json::to_vec(&rule).expect("json")).expect("req");
    let added: serde_json::Value = client.request(req).await.expect("add rule");
    assert!(added["id"].as_u64().is_some());
    let s = api_error(api.create(&PostParams::default(), &cm("a")).await.expect_err("injected"));
    assert_eq!(s.message, "Internal error occurred: disk full");

    let listed: serde_json::Value =
        client.request(http::Request::get("/emulator/faults").body(vec![]).expect("req")).await.expect("list");
    assert_eq!(listed["rules"][0]["fired"], 1);
    let down = json!({"ms": 60_000, "mode": "unavailable"});
    let req = http::Request::post("/emulator/server-down").body(serde_json::to_vec(&down).expect("json")).expect("req");
    let _: serde_json::Value = client.request(req).await.expect("down");
    assert!(em.emulator.instruments.faults.down_mode().is_some());
    let _: serde_json::Value =
        client.request(http::Request::delete("/emulator/faults").body(vec![]).expect("req")).await.expect("clear");
    assert!(em.emulator.instruments.faults.rules().is_empty());
    api.create(&PostParams::default(), &cm("a")).await.expect("cleared and up");
}
