//! API versions end to end, with the operator's conversion and validating webhooks live: an
//! upgrade from the first release's CRDs and objects (storage migrated, every version readable,
//! nothing restarted), an upstream-shaped PrismPattern v1alpha1 that runs and reads back as
//! written, and admission refusing what a schema cannot see (and stepping aside when the
//! webhook is unreachable, the conditions reporting instead).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_emulator::instruments::faults::FaultRule;
use prism_api::v1beta1::PrismNamespace;
use serde_json::{Value, json};

use crate::clusters::{LIMIT, changes, converged, kubectl_ok, patterns_converged, rollouts, settle, wait_for};
use crate::harness::{Env, WEBHOOK_SERVICE, sample};

const PRISM_CRDS: [&str; 3] = ["prismclusters.prism.io", "prismnamespaces.prism.io", "prismpatterns.prism.io"];

/// The CRDs as the first release installed them (tests/fixtures/crds-0.1.0.yaml).
fn first_release_crds() -> Vec<CustomResourceDefinition> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crds-0.1.0.yaml");
    let text = std::fs::read_to_string(path).expect("fixture");
    serde_saphyr::from_multiple(&text).expect("CRDs")
}

/// The namespace the first release's objects were captured in (their contents name it).
const FIRST_RELEASE_NAMESPACE: &str = "upgrade";

/// What the first release left in a cluster: the objects its users wrote (the alpha minimal
/// sample and a PrismNamespace) and every object its operator wrote for them, read back whole
/// from a run of that release's binary (tests/fixtures/upgrade-0.1.0.json, made by
/// scripts/capture-upgrade-fixture.sh).
fn first_release_objects() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade-0.1.0.json");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    list["items"].as_array().cloned().expect("a List")
}

async fn stored_versions(env: &Env) -> Vec<Vec<String>> {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let mut all = Vec::new();
    for name in PRISM_CRDS {
        let crd = crds.get(name).await.expect("CRD");
        all.push(crd.status.and_then(|s| s.stored_versions).unwrap_or_default());
    }
    all
}

async fn migrated(env: &Env) {
    wait_for(env, "storedVersions trimmed to [v1beta1]", LIMIT, || async {
        let all = stored_versions(env).await;
        all.iter().all(|v| v == &["v1beta1".to_string()]).then_some(())
    })
    .await;
}

/// Writes to the workloads and volumes of the scenario (what an upgrade must not touch).
fn workload_writes(env: &Env) -> u64 {
    let snapshot = env.emulator().instruments.requests.snapshot();
    snapshot.count_where(|k| {
        k.is_write() && ["deployments", "statefulsets", "persistentvolumeclaims"].contains(&k.resource.as_str())
    })
}

/// The writes to the objects named by kind and name, as "VERB path": not of a status, nor the
/// storage migration's (it rewrites objects stored at an older version, as it must).
fn writes_to(env: &Env, objects: &[(String, String)]) -> Vec<String> {
    let log = env.emulator().instruments.requests.snapshot().log;
    let written = |r: &&kube_emulator::instruments::accounting::RequestRecord| {
        let path = r.uri.split('?').next().unwrap_or_default();
        let named = |(kind, name): &(String, String)| {
            r.info.resource == format!("{}s", kind.to_lowercase()) && path.ends_with(&format!("/{name}"))
        };
        let migration = r.info.field_manager.as_deref() == Some("prism-operator/storage-migration");
        r.method != "GET" && r.info.subresource.is_empty() && !migration && objects.iter().any(named)
    };
    log.iter().filter(written).map(|r| format!("{} {}", r.method, r.uri)).collect()
}

async fn get_json(env: &Env, resource: &str, name: &str) -> Value {
    serde_json::from_str(&kubectl_ok(env, &["get", resource, name, "-o", "json"]).await).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_converts_migrates_storage_and_restarts_nothing() {
    if !Env::will_emulate() {
        eprintln!("real cluster: this scenario reinstalls the CRDs of an earlier release; skipped");
        return;
    }
    let mut env = Env::with_crds_in(FIRST_RELEASE_NAMESPACE.into(), first_release_crds()).await;
    // What the first release left: its users' objects, at its versions, and every child its
    // operator wrote for them, as that operator wrote them.
    let objects = first_release_objects();
    let first_release_children: Vec<(String, String)> = objects
        .iter()
        .filter(|o| o["metadata"]["ownerReferences"].is_array())
        .map(|o| {
            (o["kind"].as_str().unwrap_or_default().into(), o["metadata"]["name"].as_str().unwrap_or_default().into())
        })
        .collect();
    env.emulator().restore(objects).expect("restored");
    let first_rollouts = rollouts(&env).await;
    assert!(!first_rollouts.is_empty(), "the first release's workloads");

    // The new release: its CRDs first, as the README says, then the operator.
    env.install_crds(prism_api::crds()).await;
    assert_eq!(stored_versions(&env).await[0], ["v1alpha1", "v1beta1"], "objects are still stored at v1alpha1");
    // Until the new operator serves its webhook, what needs a conversion fails: an older version's
    // object is refused, not stored in v1beta1's place with what v1beta1 has no room for pruned.
    let early = format!(
        "{{apiVersion: prism.io/v1alpha2, kind: PrismNamespace, metadata: {{name: early, namespace: {}}}, \
         spec: {{cluster: minimal, patterns: [keyvalue], isolation: none}}}}",
        env.namespace
    );
    let refused = env.kubectl_with_input(&["apply", "-f", "-"], Some(&early)).await;
    assert!(!refused.success && refused.stderr.contains("conversion webhook"), "{}", refused.stderr);
    // Cluster-wide: only an operator that sees every namespace may trim storedVersions.
    env.watch_all_namespaces = true;
    // The operator is killed and replaced below.
    env.fast_failover = true;
    env.start_operator("a", &[]);
    converged(&env, "minimal").await;
    migrated(&env).await;
    settle(&env).await;
    // The new operator took over the children the first release wrote without writing one
    // workload or volume: an upgrade restarts nothing.
    let rewritten = writes_to(&env, &first_release_children);
    println!("upgrade from the first release: {} writes to its children", rewritten.len());
    assert_eq!(rewritten, Vec::<String>::new(), "the new operator rewrote what the first release wrote");
    assert_eq!(changes(&first_rollouts, &rollouts(&env).await), Default::default());

    // Every object reads at every version, each in its own words.
    let alpha = get_json(&env, "prismclusters.v1alpha1.prism.io", "minimal").await;
    assert_eq!(alpha["spec"]["patterns"][0]["type"], "Deployment", "v1alpha1: type is the workload kind");
    let beta = get_json(&env, "prismclusters.v1beta1.prism.io", "minimal").await;
    assert_eq!(beta["spec"]["patterns"][0]["workload"], "Deployment");
    assert_eq!(beta["spec"]["patterns"][0].get("type"), None, "the type defaults to the entry's name");
    assert_eq!(get_json(&env, "prismnamespaces.v1alpha2.prism.io", "orders").await["spec"]["cluster"], "minimal");
    assert_eq!(get_json(&env, "prismnamespaces.v1beta1.prism.io", "orders").await["spec"]["cluster"], "minimal");
    let runner = get_json(&env, "prismpatterns.v1alpha1.prism.io", "minimal-keyvalue").await;
    assert_eq!((&runner["spec"]["pattern"], &runner["spec"]["backend"]), (&json!("keyvalue"), &json!("memstore")));
    let table = kubectl_ok(&env, &["get", "prismpatterns.v1alpha1.prism.io"]).await;
    assert!(table.starts_with("NAME") && table.contains("PATTERN") && table.contains("BACKEND"), "{table}");
    // Reads at an older version are warned too (the CRDs mark them deprecated), writes once.
    for (resource, warning) in [
        ("prismclusters.v1alpha1.prism.io", "prism.io/v1alpha1 PrismCluster is deprecated; use prism.io/v1beta1"),
        ("prismnamespaces.v1alpha2.prism.io", "prism.io/v1alpha2 PrismNamespace is deprecated; use prism.io/v1beta1"),
    ] {
        let read = env.kubectl(&["get", resource]).await;
        assert_eq!(read.stderr.trim(), format!("Warning: {warning}"), "{resource}");
    }
    let current = env.kubectl(&["get", "prismclusters.v1beta1.prism.io"]).await;
    assert!(!current.stderr.contains("Warning"), "{}", current.stderr);

    // An upgrade of the operator over objects still stored at an older version: the leader
    // rewrites them and trims storedVersions; not one workload or volume is written.
    settle(&env).await;
    let (before, writes_before) = (rollouts(&env).await, workload_writes(&env));
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let stale = json!({"status": {"storedVersions": ["v1alpha1", "v1beta1"]}});
    for name in PRISM_CRDS {
        crds.patch_status(name, &PatchParams::default(), &Patch::Merge(&stale)).await.expect("storedVersions");
    }
    env.operators()[0].kill_hard().await;
    env.start_operator("b", &[]);
    migrated(&env).await;
    converged(&env, "minimal").await;
    settle(&env).await;
    let writes = workload_writes(&env) - writes_before;
    println!("upgrade: {writes} writes to workloads and volumes");
    assert_eq!(writes, 0, "an upgrade restarts nothing");
    assert_eq!(changes(&before, &rollouts(&env).await), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_shaped_pattern_runs_and_reads_back_as_written() {
    let mut env = Env::new("upstream").await;
    env.start_operator("a", &[]);
    env.webhook_installed().await;
    env.apply(&sample("prism-local.yaml", &env.namespace)).await;
    let manifest = sample("alpha/upstream-pattern.yaml", &env.namespace);
    let out = env.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(&manifest)).await;
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr.contains("Warning: prism.io/v1alpha1 PrismPattern is deprecated; use prism.io/v1beta1"),
        "{}",
        out.stderr
    );

    patterns_converged(&env, &["orders-consumer"]).await;
    let hub = get_json(&env, "prismpatterns.v1beta1.prism.io", "orders-consumer").await;
    assert_eq!((&hub["spec"]["cluster"], &hub["spec"]["type"]), (&json!("prism-local"), &json!("consumer")));
    let deployment = get_json(&env, "deployment", "orders-consumer").await;
    let image = &deployment["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, "ghcr.io/prism/consumer-runner:0.1.0", "the upstream image reference runs as written");

    let written: Value = serde_saphyr::from_str(&manifest).expect("manifest");
    let read = get_json(&env, "prismpatterns.v1alpha1.prism.io", "orders-consumer").await;
    assert_eq!(read["spec"], written["spec"], "read back at v1alpha1 as it was written");
    assert_eq!(read["metadata"]["labels"], written["metadata"]["labels"]);
}

/// Applies `manifest` and expects a refusal whose message names each of `words`.
async fn refused(env: &Env, manifest: &str, words: &[&str]) {
    let out = env.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(manifest)).await;
    assert!(!out.success, "applied, but should have been refused: {manifest}");
    for word in words {
        assert!(out.stderr.contains(word), "the refusal names {word}: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_refuses_what_a_schema_cannot_see_and_steps_aside_without_the_webhook() {
    let mut env = Env::new("admission").await;
    env.start_operator("a", &[]);
    env.webhook_installed().await;
    let ns = env.namespace.clone();
    env.apply(&format!(
        "{{apiVersion: prism.io/v1beta1, kind: PrismCluster, metadata: {{name: local, namespace: {ns}}}, \
         spec: {{patterns: [{{name: keyvalue, backends: [memstore], replicas: 1}}]}}}}"
    ))
    .await;
    converged(&env, "local").await;
    let namespace = |name: &str, cluster: &str, pattern: &str| {
        format!(
            "{{apiVersion: prism.io/v1beta1, kind: PrismNamespace, metadata: {{name: {name}, namespace: {ns}}}, \
             spec: {{cluster: {cluster}, patterns: [{pattern}]}}}}"
        )
    };
    refused(&env, &namespace("orders", "nope", "keyvalue"), &["spec.cluster", "\"nope\"", "ClusterNotFound"]).await;
    refused(&env, &namespace("orders", "local", "mailbox"), &["spec.patterns", "\"mailbox\"", "\"local\""]).await;
    let pattern = format!(
        "{{apiVersion: prism.io/v1beta1, kind: PrismPattern, metadata: {{name: kv, namespace: {ns}}}, \
         spec: {{cluster: local, type: keyvalue, backends: [{{name: redis}}]}}}}"
    );
    refused(&env, &pattern, &["spec.backends", "redis", "\"local\""]).await;
    let out = env
        .kubectl(&[
            "patch",
            "prismcluster",
            "local",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"deletionPolicy":"Delete"}}"#,
        ])
        .await;
    assert!(!out.success, "the policy change needs its confirmation");
    assert!(
        out.stderr.contains("spec.deletionPolicy") && out.stderr.contains("prism.io/confirm-data-deletion=local"),
        "{}",
        out.stderr
    );

    // An edit that will not stick: the cluster owns the child's replicas. (`kubectl scale` gets
    // the same warning from a real server; the emulator shows the scale webhook the Scale as it
    // was before the change, so the scenario edits the PrismPattern itself.)
    let out = env
        .kubectl(&["patch", "prismpattern", "local-keyvalue", "--type", "merge", "-p", r#"{"spec":{"replicas":3}}"#])
        .await;
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Warning: spec.replicas of PrismPattern \"local-keyvalue\" is set by PrismCluster \"local\"")
            && out.stderr.contains("change spec.patterns[name=keyvalue].replicas of the cluster instead"),
        "{}",
        out.stderr
    );

    // The webhook unreachable: apply succeeds (failurePolicy Ignore), the condition reports.
    env.emulator().services.unregister(&env.operator_namespace(), WEBHOOK_SERVICE);
    env.apply(&namespace("orders", "nope", "keyvalue")).await;
    let namespaces = env.api::<PrismNamespace>();
    let reason = wait_for(&env, "the namespace's SpecValid condition", LIMIT, || async {
        let status = namespaces.get_opt("orders").await.ok().flatten()?.status?;
        status.conditions.iter().find(|c| c.type_ == "SpecValid" && c.status == "False").map(|c| c.reason.clone())
    })
    .await;
    assert_eq!(reason, "ClusterNotFound");
}

/// The soak found an operator that exited when the API server answered its webhook
/// installation with a 500 (and was restarted, and could fail again): the installation is
/// retried with backoff, the process stays up, and the controllers start once it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_installation_is_retried_not_fatal() {
    let mut env = Env::new("webhook-retry").await;
    if !env.emulated() {
        eprintln!("skipped on a real cluster: needs the emulator's fault injection");
        return;
    }
    let faults = &env.emulator().instruments.faults;
    let fault = faults.add(FaultRule::error(500).resource("customresourcedefinitions").verb("patch").times(3));
    env.start_operator("a", &["--leader-elect=false"]);
    env.webhook_installed().await;
    assert_eq!(env.emulator().instruments.faults.fired(fault), 3, "every injected 500 met the installation");
    env.apply(&sample("minimal-cluster.yaml", &env.namespace)).await;
    converged(&env, "minimal").await;
    let operator = env.operators().iter_mut().find(|o| o.identity == "a").expect("a");
    assert!(operator.is_running(), "the operator outlived the failed installations");
}
