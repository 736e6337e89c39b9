//! The chart's RBAC is least privilege, proven against the API emulator enforcing it: the real
//! operator binary authenticates with a token of the chart's ServiceAccount, bound by the
//! chart's Roles and bindings (rendered from charts/prism-operator/files/rbac-rules.yaml as the
//! templates render them), and runs every controller through a scenario that touches every kind
//! it manages: the design record's PrismCluster (backends, admin, proxy, patterns, a namespace,
//! ingress, ServiceMonitors) converging, a PrismPattern tuned through HPA -> KEDA -> no
//! autoscaler and deleted, the cluster shrunk (pruning) and deleted with deletionPolicy Delete
//! (volumes go), leader election and the hand-over on SIGTERM.
//!
//! - Sufficient: the emulator refuses none of the operator's requests (no 401, no 403).
//! - Necessary: each granted permission is used (except the few in MAY_BE_UNUSED, each with its
//!   reason), and each rule of the file is needed: without it, the scenario meets a 403.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Client, Resource};
use kube_emulator::instruments::accounting::RequestRecord;
use kube_emulator::{Emulator, Server};
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use prism_api::v1beta1::{PatternPhase, PrismPattern};
use serde_json::{Value, json};
use support::operator_log;
use support::rbac::{self, Binding, Grant, Install, Report, Request, RulesFile};

const WATCHED: &str = "prism";
/// An app team's namespace, labelled as the cluster's tenants are.
const TENANT_NS: &str = "team-rbac";
const RELEASE_NS: &str = "prism-system";
/// The release name of the README's install: the chart's objects are named `prism-operator`.
const RELEASE: &str = "prism-operator";

/// Granted permissions this scenario may leave unused, each as (verb, group, resource, why it
/// is granted). The test prints a note when a listed one is used, and fails on any other unused
/// permission.
const MAY_BE_UNUSED: &[(&str, &str, &str, &str)] = &[
    ("get", "prism.io", "prismclusters", CACHE_MISS),
    ("get", "prism.io", "prismnamespaces", CACHE_MISS),
    ("get", "prism.io", "prismpatterns", CACHE_MISS),
    ("get", "", "configmaps", CACHE_MISS),
    ("get", "", "persistentvolumeclaims", CACHE_MISS),
    ("get", "", "secrets", CACHE_MISS),
    ("get", "", "services", CACHE_MISS),
    ("get", "apps", "deployments", CACHE_MISS),
    ("get", "apps", "statefulsets", CACHE_MISS),
    ("get", "autoscaling", "horizontalpodautoscalers", CACHE_MISS),
    ("get", "networking.k8s.io", "ingresses", CACHE_MISS),
    ("get", "policy", "poddisruptionbudgets", CACHE_MISS),
    (
        "create",
        "",
        "secrets",
        "a first install creates the webhook's Secret; this scenario is an upgrade that left one to renew \
         (each_rule_of_the_chart_is_needed also runs a first install)",
    ),
    (
        "patch",
        "apiextensions.k8s.io",
        "customresourcedefinitions/status",
        "an operator watching one namespace migrates its objects but leaves storedVersions to a cluster-wide one",
    ),
];

/// Why a controller may never GET a kind it caches: it reads its children from its watches'
/// stores, and GETs one only when the store cannot tell (not listed yet, or a write of its own
/// not seen yet), a race this scenario may not meet.
const CACHE_MISS: &str = "read from the cache; a GET only when the cache cannot tell";

/// The design record's cluster, with deletionPolicy Delete so that deleting it removes volumes.
const SAMPLE: &str = "samples/prism-local.yaml";
const CLUSTER_NAME: &str = "prism-local";

/// A pattern tuned by hand on the sample's cluster, with an HPA to start with.
const PATTERN: &str = r#"{"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern",
  "metadata": {"name": "kv", "namespace": "prism"},
  "spec": {"cluster": "prism-local", "type": "keyvalue", "replicas": 2,
           "backends": [{"name": "redis", "config": {"maxConnections": "100"}}],
           "autoscaling": {"enabled": true, "scaler": "hpa", "minReplicas": 2, "maxReplicas": 5, "targetCPU": 70}}}"#;

/// The Prometheus Operator's ServiceMonitor API, enough for the operator to write it.
fn service_monitor_crd() -> CustomResourceDefinition {
    minimal_crd("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors")
}

/// KEDA's ScaledObject API, enough for the operator to find and write it.
fn keda_crd() -> CustomResourceDefinition {
    minimal_crd("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects")
}

fn minimal_crd(group: &str, version: &str, kind: &str, plural: &str) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind,
                           "listKind": format!("{kind}List")},
                 "versions": [{"name": version, "served": true, "storage": true,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .expect("CRD")
}

fn chart_values() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/prism-operator/values.yaml");
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("values.yaml")).expect("YAML")
}

fn lease_name() -> String {
    chart_values()["leaderElection"]["leaseName"].as_str().expect("leaseName").to_string()
}

/// The chart's rules, with the Lease's name from values.yaml.
fn chart_rules() -> RulesFile {
    RulesFile::load(&lease_name()).unwrap_or_else(|e| panic!("{e}"))
}

fn chart_install(watch_namespace: Option<&str>) -> Install {
    Install {
        watch_namespace: watch_namespace.map(String::from),
        release_namespace: RELEASE_NS.into(),
        leader_election: true,
        webhook: true,
    }
}

/// Who the operator is to the API server.
fn operator_user() -> String {
    format!("system:serviceaccount:{RELEASE_NS}:{RELEASE}")
}

/// An emulator with the CRDs, the scenario's namespaces and the chart's RBAC objects, the
/// test's admin client, and a token of the chart's ServiceAccount.
struct Installed {
    server: Server,
    client: Client,
    token: String,
}

/// What the emulator holds before the operator starts: a first install, or an upgrade's leftovers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Before {
    FirstInstall,
    Upgrade,
}

async fn install(rules: &RulesFile, install: &Install, before: Before) -> Installed {
    let server = Emulator::start().serve("127.0.0.1:0").await.expect("emulator");
    server.emulator.instruments.simulation.enable(Duration::from_millis(50));
    // The test's own client: in-process, the cluster admin.
    let client = Client::new(server.emulator.router(), "default");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in prism_api::crds().into_iter().chain([keda_crd(), service_monitor_crd()]) {
        crds.create(&PostParams::default(), &crd).await.expect("CRD");
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [WATCHED, RELEASE_NS] {
        let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        namespaces.create(&PostParams::default(), &namespace).await.expect("namespace");
    }
    for object in rbac::render(rules, install, RELEASE) {
        create(&client, object).await;
    }
    if before == Before::Upgrade {
        upgrade_leftovers(&client).await;
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), RELEASE_NS);
    let answer = accounts.create_token_request(RELEASE, &PostParams::default(), &Default::default()).await;
    let token = answer.expect("a token of the chart's ServiceAccount").status.expect("token").token;
    Installed { server, client, token }
}

/// What an upgrade leaves for the operator: objects stored at the first release's versions (the
/// leader migrates them and trims storedVersions) and a webhook certificate 15 days from expiry
/// (the operator renews it).
async fn upgrade_leftovers(client: &Client) {
    use prism_operator::webhook::certs;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (crd, older) in [
        ("prismclusters.prism.io", "v1alpha1"),
        ("prismnamespaces.prism.io", "v1alpha2"),
        ("prismpatterns.prism.io", "v1alpha1"),
    ] {
        let stored = json!({"status": {"storedVersions": [older, "v1beta1"]}});
        crds.patch_status(crd, &PatchParams::default(), &Patch::Merge(&stored)).await.expect("storedVersions");
    }
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let names = certs::service_names("prism-operator-webhook", RELEASE_NS);
    let expiring = certs::generate(&names, now - 350 * 86400).expect("a certificate");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), RELEASE_NS);
    let secret = certs::secret(support::rbac::WEBHOOK_SECRET, RELEASE_NS, &expiring);
    secrets.create(&PostParams::default(), &secret).await.expect("the webhook's Secret");
}

/// Creates any object (its apiVersion, kind and namespace say where).
async fn create(client: &Client, object: Value) {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().expect("kind"));
    let resource = ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let object: DynamicObject = serde_json::from_value(object).expect("object");
    api.create(&PostParams::default(), &object).await.expect("chart object created");
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// The operator binary as the chart runs it, against the emulator, as the chart's ServiceAccount.
struct Operator {
    child: Child,
    kubeconfig: PathBuf,
}

impl Operator {
    fn start(installed: &Installed, watch_namespace: Option<&str>) -> Operator {
        let scope = watch_namespace.unwrap_or("all");
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let kubeconfig = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("rbac-{}-{scope}-{run}.kubeconfig", std::process::id()));
        installed.server.write_token_kubeconfig(&kubeconfig, &installed.token).expect("kubeconfig");
        let log_path = kubeconfig.with_extension("log");
        eprintln!("operator log ({scope}): {}", log_path.display());
        let mut command = Command::new(env!("CARGO_BIN_EXE_prism-operator"));
        command.arg("run").arg("--kubeconfig").arg(&kubeconfig);
        if let Some(ns) = watch_namespace {
            command.arg(format!("--namespace={ns}"));
        }
        // The webhook as the chart serves it: its Service reaches the port this process binds.
        let route = operator_log::route_to(log_path.clone(), "the webhook");
        installed.server.emulator.services.route(RELEASE_NS, "prism-operator-webhook", route);
        command.args(["--webhook-addr=127.0.0.1:0".to_string(), format!("--webhook-namespace={RELEASE_NS}")]);
        // The chart's lease settings: tighter ones can lose the lease on a loaded machine.
        let election = &chart_values()["leaderElection"];
        let setting = |key: &str| election[key].as_str().expect("leaderElection setting").to_string();
        command.args([
            "--leader-elect=true",
            &format!("--lease-name={}", setting("leaseName")),
            &format!("--lease-namespace={RELEASE_NS}"),
            &format!("--lease-duration={}", setting("leaseDuration")),
            &format!("--renew-deadline={}", setting("renewDeadline")),
            &format!("--retry-period={}", setting("retryPeriod")),
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--qps=0",
            // Warnings, and the addresses it binds (the webhook's route reads them).
            "--log-format=json",
            "--log-level=warn,prism_operator::http=info",
        ]);
        let log = std::fs::File::create(&log_path).expect("operator log");
        command.env("POD_NAME", "prism-operator-rbac").stdout(Stdio::null()).stderr(log);
        Operator { child: command.spawn().expect("prism-operator starts"), kubeconfig }
    }

    /// SIGTERM, as the kubelet sends, and the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        self.child.wait().expect("exit")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// Waits until `check` answers, up to 2 minutes (generous: CI runs many tests at once on 2 cores).
async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> Fut) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply("rbac-test").force()
}

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.ok().flatten().is_none().then_some(())
}

/// The scenario, driven by the test's client while the operator reconciles: from the operator
/// taking the Lease to the cluster deleted. `cluster_wide`: the operator watches every namespace,
/// so an app team's namespace elsewhere attaches a PrismNamespace to the cluster too.
async fn scenario(client: &Client, cluster_wide: bool) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NS);
    let lease = lease_name();
    eventually("the operator to lead", || async {
        let held = leases.get_opt(&lease).await.ok().flatten()?.spec?.holder_identity?;
        held.starts_with("prism-operator-rbac").then_some(())
    })
    .await;

    // The design record's cluster converges: backends, admin, proxy, patterns, a namespace,
    // ingress and ServiceMonitors.
    let sample = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SAMPLE)).expect(SAMPLE);
    let mut cluster: Value = serde_saphyr::from_str(&sample).expect("sample YAML");
    cluster["spec"]["deletionPolicy"] = json!("Delete");
    // Its deletion deletes data: confirmed, as the webhook requires.
    cluster["metadata"]["annotations"] = json!({"prism.io/confirm-data-deletion": CLUSTER_NAME});
    // App teams' namespaces labelled as tenants may attach (see `tenant`).
    cluster["spec"]["tenancy"] =
        json!({"namespaces": {"from": "Selector", "selector": {"matchLabels": {"prism.io/tenant": "true"}}}});
    let clusters: Api<PrismCluster> = Api::namespaced(client.clone(), WATCHED);
    clusters.patch(CLUSTER_NAME, &apply_params(), &Patch::Apply(&cluster)).await.expect("apply the cluster");
    eventually("the cluster Running", || async {
        let phase = clusters.get_opt(CLUSTER_NAME).await.ok().flatten()?.status?.phase?;
        (phase == ClusterPhase::Running).then_some(())
    })
    .await;
    if cluster_wide {
        tenant(client).await;
    }
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
    let monitors: Api<DynamicObject> = Api::namespaced_with(client.clone(), WATCHED, &ApiResource::from_gvk(&gvk));
    eventually("ServiceMonitors", || async {
        (!monitors.list(&ListParams::default()).await.ok()?.items.is_empty()).then_some(())
    })
    .await;

    // A pattern tuned by hand: HPA -> KEDA -> no autoscaler, then deleted (its finalizer).
    let patterns: Api<PrismPattern> = Api::namespaced(client.clone(), WATCHED);
    let pattern: Value = serde_json::from_str(PATTERN).expect("JSON");
    patterns.patch("kv", &apply_params(), &Patch::Apply(&pattern)).await.expect("apply kv");
    eventually("kv Running", || async {
        let phase = patterns.get_opt("kv").await.ok().flatten()?.status?.phase?;
        (phase == PatternPhase::Running).then_some(())
    })
    .await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), WATCHED);
    eventually("the HPA", || async { hpas.get_opt("kv").await.ok().flatten() }).await;
    assert!(Api::<Deployment>::namespaced(client.clone(), WATCHED).get_opt("kv").await.expect("get").is_some());
    let switch = |scaler: Value| json!({"spec": {"autoscaling": scaler}});
    let merge = PatchParams::default();
    patterns.patch("kv", &merge, &Patch::Merge(switch(json!({"scaler": "keda"})))).await.expect("keda");
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject");
    let scaled: Api<DynamicObject> = Api::namespaced_with(client.clone(), WATCHED, &ApiResource::from_gvk(&gvk));
    eventually("the ScaledObject", || async { scaled.get_opt("kv").await.ok().flatten() }).await;
    eventually("the HPA gone", || gone(&hpas, "kv")).await;
    patterns.patch("kv", &merge, &Patch::Merge(switch(json!({"enabled": false})))).await.expect("off");
    eventually("the ScaledObject gone", || gone(&scaled, "kv")).await;
    patterns.delete("kv", &DeleteParams::default()).await.expect("delete kv");
    eventually("kv gone", || gone(&patterns, "kv")).await;

    // The cluster shrinks: its namespace, two patterns, MinIO (StatefulSet, Services, Secret,
    // volume), the ingress, Grafana's dashboard and the proxy's autoscaler and PDB are pruned.
    let children = ListParams::default().labels(&format!("prism.io/cluster={CLUSTER_NAME}"));
    let before = patterns.list(&children).await.expect("patterns").items.len();
    let spec = &mut cluster["spec"];
    spec["namespaces"] = json!([]);
    let kept: Vec<Value> = spec["patterns"]
        .as_array()
        .expect("patterns")
        .iter()
        .filter(|p| p["name"] != "producer" && p["name"] != "mailbox")
        .cloned()
        .collect();
    spec["patterns"] = json!(kept);
    spec["backends"]["minio"]["enabled"] = json!(false);
    spec["ingress"]["enabled"] = json!(false);
    spec["observability"]["grafana"]["enabled"] = json!(false);
    spec["observability"]["prometheus"]["enabled"] = json!(false);
    spec["proxy"]["replicas"] = json!(1);
    spec["proxy"]["autoscaling"]["enabled"] = json!(false);
    clusters.patch(CLUSTER_NAME, &apply_params(), &Patch::Apply(&cluster)).await.expect("shrink the cluster");
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), WATCHED);
    eventually("the ingress pruned", || async {
        ingresses.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
    eventually("the ServiceMonitor pruned", || async {
        monitors.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
    let prism_namespaces: Api<PrismNamespace> = Api::namespaced(client.clone(), WATCHED);
    eventually("the pattern and the namespace pruned", || async {
        let patterns_left = patterns.list(&children).await.ok()?.items.len();
        let namespaces_left = prism_namespaces.list(&ListParams::default()).await.ok()?.items.len();
        (patterns_left < before && namespaces_left == 0).then_some(())
    })
    .await;

    // The cluster goes, with its volumes (deletionPolicy Delete).
    clusters.delete(CLUSTER_NAME, &DeleteParams::default()).await.expect("delete the cluster");
    eventually("the cluster gone", || gone(&clusters, CLUSTER_NAME)).await;
}

/// An app team's PrismNamespace in its own namespace, on the cluster: the webhook reads the
/// namespace's labels, the controllers (watching every namespace's metadata) serve it with a
/// dedicated runner in the cluster's namespace and connection details in the team's; deleted,
/// its finalizer takes the runner.
async fn tenant(client: &Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let team = serde_json::from_value(json!({"metadata": {"name": TENANT_NS, "labels": {"prism.io/tenant": "true"}}}))
        .expect("namespace");
    namespaces.create(&PostParams::default(), &team).await.expect("the team's namespace");
    let orders = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace",
        "metadata": {"name": "team-orders", "namespace": TENANT_NS},
        "spec": {"cluster": CLUSTER_NAME, "clusterNamespace": WATCHED, "patterns": ["keyvalue"], "isolation": "namespace"}});
    let tenants: Api<PrismNamespace> = Api::namespaced(client.clone(), TENANT_NS);
    tenants.patch("team-orders", &apply_params(), &Patch::Apply(&orders)).await.expect("the team's PrismNamespace");
    let runners: Api<PrismPattern> = Api::namespaced(client.clone(), WATCHED);
    eventually("the tenant's runner", || async { runners.get_opt("team-orders-keyvalue").await.ok().flatten() }).await;
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), TENANT_NS);
    eventually("its connection details", || async {
        configs.get_opt("team-orders-prism-connection").await.ok().flatten()
    })
    .await;
    tenants.delete("team-orders", &DeleteParams::default()).await.expect("delete the team's PrismNamespace");
    eventually("the tenant gone", || gone(&tenants, "team-orders")).await;
    eventually("its runner gone", || gone(&runners, "team-orders-keyvalue")).await;
}

/// The whole scenario with the chart's rules enforced, then the operator's termination: every
/// request the operator sent.
async fn enforced_run(watch_namespace: Option<&str>) -> Vec<RequestRecord> {
    let installed = install(&chart_rules(), &chart_install(watch_namespace), Before::Upgrade).await;
    let mut operator = Operator::start(&installed, watch_namespace);
    scenario(&installed.client, watch_namespace.is_none()).await;
    // At least one renewal (every retryPeriod), then the pod's termination: the lease is handed back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = operator.terminate();
        drop(operator);
        status
    })
    .await
    .expect("join");
    assert!(status.success(), "the operator exits cleanly on SIGTERM: {status}");
    let snapshot = installed.server.emulator.instruments.requests.snapshot();
    snapshot.log.into_iter().filter(|r| r.user == operator_user()).collect()
}

/// The scenario with `rules` enforced, until the operator is refused a request: that request,
/// or None when the scenario ends without one.
async fn first_refusal(rules: &RulesFile, watch_namespace: Option<&str>, before: Before) -> Option<RequestRecord> {
    let installed = install(rules, &chart_install(watch_namespace), before).await;
    let _operator = Operator::start(&installed, watch_namespace);
    let accounting = &installed.server.emulator.instruments.requests;
    let refused = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let log = accounting.snapshot().log;
            if let Some(r) = log.into_iter().find(|r| r.user == operator_user() && r.code == 403) {
                return r;
            }
        }
    };
    tokio::select! {
        refused = refused => Some(refused),
        () = scenario(&installed.client, watch_namespace.is_none()) => None,
    }
}

fn chart_grants(watch_namespace: Option<&str>) -> Vec<Grant> {
    rbac::grants(&chart_rules(), &chart_install(watch_namespace))
}

/// No request of the operator was refused, and the chart grants nothing it does not use.
fn assert_sufficient_and_least_privilege(records: &[RequestRecord], grants: &[Grant]) -> Report {
    let refused: Vec<String> = records
        .iter()
        .filter(|r| r.code == 401 || r.code == 403)
        .map(|r| format!("{} {} -> {}", r.method, r.uri, r.code))
        .collect();
    assert!(refused.is_empty(), "the API server refused the operator:\n{}", refused.join("\n"));
    let requests: Vec<Request> = records.iter().map(|r| Request::from_info(&r.info)).collect();
    let report = rbac::check(&requests, grants);
    assert_least_privilege(&report, requests.len());
    report
}

fn assert_least_privilege(report: &Report, requests: usize) {
    println!("{requests} operator requests; permissions used:");
    for permission in &report.used {
        println!("  {permission}");
    }
    println!("discovery (default roles): {:?}", report.discovery);
    let ignore: Vec<(&str, &str, &str)> = MAY_BE_UNUSED.iter().map(|(v, g, r, _)| (*v, *g, *r)).collect();
    if let Some(problems) = report.problems(&ignore) {
        panic!("{problems}");
    }
    for (verb, group, resource, _) in MAY_BE_UNUSED {
        if report.used.iter().any(|p| p.verb == *verb && p.group == *group && p.resource == *resource) {
            println!("note: {verb} {group}/{resource} is exercised now: remove it from MAY_BE_UNUSED");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_scoped_install_allows_exactly_what_the_operator_does() {
    let records = enforced_run(Some(WATCHED)).await;
    let report = assert_sufficient_and_least_privilege(&records, &chart_grants(Some(WATCHED)));
    assert!(report.used.iter().any(|p| p.binding == Binding::Namespace(WATCHED.into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_install_allows_exactly_what_the_operator_does() {
    let records = enforced_run(None).await;
    assert_sufficient_and_least_privilege(&records, &chart_grants(None));
    // Watching all namespaces needs the ClusterRole; a Role in one namespace would not do.
    let requests: Vec<Request> = records.iter().map(|r| Request::from_info(&r.info)).collect();
    let namespaced = rbac::check(&requests, &chart_grants(Some(WATCHED)));
    assert!(
        namespaced.denied.iter().any(|r| r.namespace.is_empty() && r.verb == "watch"),
        "all-namespace watches: {:?}",
        namespaced.denied
    );
}

/// Each rule of the file, removed alone, makes the enforced scenario meet a 403 (cluster-wide
/// install; three scenarios at a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_of_the_chart_is_needed() {
    let rules = chart_rules();
    let runs = rules.each_rule().into_iter().map(|(at, rule)| {
        let without = rules.without(at);
        async move {
            // An upgrade first (renewal, migration), else a first install (the Secret created).
            let refused = match first_refusal(&without, None, Before::Upgrade).await {
                Some(refused) => Some(refused),
                None => first_refusal(&without, None, Before::FirstInstall).await,
            };
            (at, rule, refused)
        }
    });
    let outcomes: Vec<_> = futures::stream::iter(runs).buffered(3).collect().await;
    println!("{:<18} {:<72} first request refused without it", "rule", "grants");
    let mut unneeded = Vec::new();
    for (at, rule, refused) in &outcomes {
        let first = match refused {
            Some(r) => format!("403 {}", Request::from_info(&r.info)),
            None => {
                unneeded.push(at.to_string());
                "none: the scenario ran to its end".to_string()
            }
        };
        println!("{:<18} {:<72} {first}", at.to_string(), rule.to_string());
    }
    assert!(unneeded.is_empty(), "rules the scenario does not need: {unneeded:?}");
}

/// The checker itself, on a recorded list of requests.
mod checker {
    use super::support::rbac::{self, Binding, Install, Request, RulesFile};

    const RULES: &str = r#"
watched:
  - apiGroups: [prism.io]
    resources: [prismpatterns]
    verbs: [get, list, watch]
  - apiGroups: [prism.io]
    resources: [prismpatterns/status]
    verbs: [patch]
leaderElection:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [create]
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    resourceNames: ["{{ .Values.leaderElection.leaseName }}"]
    verbs: [get, update]
"#;

    fn install(watch: Option<&str>) -> Install {
        Install {
            watch_namespace: watch.map(String::from),
            release_namespace: "ops".into(),
            leader_election: true,
            webhook: false,
        }
    }

    fn recorded() -> Vec<Request> {
        vec![
            Request::resource("list", "prism.io", "prismpatterns", "apps", ""),
            Request::resource("watch", "prism.io", "prismpatterns", "apps", ""),
            Request::resource("get", "prism.io", "prismpatterns", "apps", "kv"),
            Request::resource("patch", "prism.io", "prismpatterns/status", "apps", "kv"),
            Request::resource("create", "coordination.k8s.io", "leases", "ops", ""),
            Request::resource("get", "coordination.k8s.io", "leases", "ops", "leader"),
            Request::resource("update", "coordination.k8s.io", "leases", "ops", "leader"),
            Request::non_resource("get", "/apis/keda.sh/v1alpha1"),
            Request::non_resource("get", "/version"),
        ]
    }

    #[test]
    fn every_recorded_request_allowed_and_every_permission_used() {
        let rules = RulesFile::parse(RULES, "leader").expect("rules");
        let report = rbac::check(&recorded(), &rbac::grants(&rules, &install(Some("apps"))));
        assert_eq!(report.problems(&[]), None);
        assert_eq!(report.discovery.len(), 2);
        assert_eq!(report.used.len(), 7);
    }

    #[test]
    fn a_request_outside_the_rules_is_denied_and_an_idle_rule_reported() {
        let rules = RulesFile::parse(RULES, "leader").expect("rules");
        let mut requests = recorded();
        requests.retain(|r| r.verb != "get" || r.resource != "prismpatterns");
        requests.push(Request::resource("delete", "prism.io", "prismpatterns", "apps", "kv"));
        requests.push(Request::resource("patch", "prism.io", "prismpatterns", "apps", "kv"));
        requests.push(Request::non_resource("post", "/apis"));
        let report = rbac::check(&requests, &rbac::grants(&rules, &install(Some("apps"))));
        let denied: Vec<String> = report.denied.iter().map(ToString::to_string).collect();
        assert_eq!(denied, ["delete prism.io/prismpatterns kv in apps", "patch prism.io/prismpatterns kv in apps"]);
        assert_eq!(report.denied_non_resource.len(), 1);
        let unused: Vec<String> = report.unused.iter().map(ToString::to_string).collect();
        assert_eq!(unused, ["get prism.io/prismpatterns (Role in apps)"]);
        let problems = report.problems(&[]).expect("problems");
        assert!(problems.contains("do not allow") && problems.contains("no request used"), "{problems}");
        assert!(report.problems(&[("get", "prism.io", "prismpatterns")]).is_some(), "denials still count");
    }

    #[test]
    fn a_role_covers_its_namespace_only_and_names_restrict_the_lease() {
        let rules = RulesFile::parse(RULES, "leader").expect("rules");
        let grants = rbac::grants(&rules, &install(Some("apps")));
        let elsewhere = [
            Request::resource("list", "prism.io", "prismpatterns", "", ""),
            Request::resource("get", "prism.io", "prismpatterns", "other", "kv"),
            Request::resource("get", "coordination.k8s.io", "leases", "ops", "someone-elses"),
            Request::resource("get", "coordination.k8s.io", "leases", "apps", "leader"),
        ];
        let report = rbac::check(&elsewhere, &grants);
        assert_eq!(report.denied.len(), 4, "{:?}", report.denied);
        // The cluster-wide install allows the watched rules everywhere, the Lease still only in "ops".
        let cluster = rbac::grants(&rules, &install(None));
        assert!(cluster.iter().any(|g| g.binding == Binding::Cluster));
        let report = rbac::check(&elsewhere, &cluster);
        assert_eq!(report.denied.len(), 2, "{:?}", report.denied);
    }

    #[test]
    fn wildcards_and_unnamed_verbs_with_names_are_problems() {
        let bad = r#"
watched:
  - apiGroups: ["*"]
    resources: [pods]
    verbs: [get, frobnicate]
leaderElection:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    resourceNames: [x]
    verbs: [create]
"#;
        let problems = RulesFile::parse(bad, "x").expect("parses").problems();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(RulesFile::parse("watched: []\nleaderElection: []\nextra: []\n", "x").is_err(), "unknown sections");
    }
}
