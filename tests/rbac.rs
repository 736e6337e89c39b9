//! The chart's RBAC is least privilege, proven from the operator's own requests: the real
//! operator binary runs the PrismPattern scenario (converge, autoscaler switches HPA -> KEDA ->
//! none, finalizer, leader election, graceful shutdown) against the API emulator, whose request
//! accounting records every request it sends. Each must be allowed by the rules of
//! charts/prism-operator/files/rbac-rules.yaml as the chart grants them, and each granted
//! permission must be used, except the ones listed in NOT_EXERCISED with the reason.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::{HeaderValue, Request as HttpRequest, header};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use kube_emulator::Emulator;
use prism_api::v1beta1::{PatternPhase, PrismPattern};
use serde_json::{Value, json};
use support::rbac::{self, Binding, Grant, Install, Report, Request, RulesFile};
use tower::ServiceExt;

/// The test's own requests carry this user agent and are not the operator's.
const TEST_AGENT: &str = "prism-rbac-test";
const WATCHED: &str = "prism";
const RELEASE_NS: &str = "prism-system";

/// Granted permissions this scenario may leave unused, with the controller that needs them.
/// Remove an entry once a scenario here always exercises it (the test prints a note when one is).
const NOT_EXERCISED: &[(&str, &str, &str, &str)] = &[
    ("get", "prism.io", "prismnamespaces", "namespace controller"),
    ("list", "prism.io", "prismnamespaces", "namespace controller"),
    ("watch", "prism.io", "prismnamespaces", "namespace controller"),
    ("patch", "prism.io", "prismnamespaces", "namespace controller (finalizer), cluster controller (children)"),
    ("delete", "prism.io", "prismnamespaces", "cluster controller (prunes child namespaces)"),
    ("delete", "prism.io", "prismpatterns", "cluster controller (prunes child patterns)"),
    ("patch", "prism.io", "prismclusters", "cluster controller (finalizer)"),
    ("get", "prism.io", "prismpatterns", "cluster controller (child patterns)"),
    ("patch", "prism.io", "prismclusters/status", "cluster controller"),
    ("patch", "prism.io", "prismnamespaces/status", "namespace controller"),
    ("get", "", "secrets", "cluster controller (generated credentials)"),
    ("list", "", "secrets", "cluster controller"),
    ("watch", "", "secrets", "cluster controller"),
    ("patch", "", "secrets", "cluster controller"),
    ("delete", "", "secrets", "cluster controller"),
    ("delete", "", "configmaps", "cluster controller (prune)"),
    ("delete", "", "services", "cluster controller (prune)"),
    ("delete", "apps", "deployments", "cluster controller (prune)"),
    ("delete", "apps", "statefulsets", "cluster controller (prune)"),
    ("patch", "apps", "statefulsets", "cluster controller (backends); pattern controller (StatefulSet runners)"),
    ("get", "policy", "poddisruptionbudgets", "cluster controller"),
    ("list", "policy", "poddisruptionbudgets", "cluster controller"),
    ("watch", "policy", "poddisruptionbudgets", "cluster controller"),
    ("patch", "policy", "poddisruptionbudgets", "cluster controller"),
    ("delete", "policy", "poddisruptionbudgets", "cluster controller"),
    ("get", "networking.k8s.io", "ingresses", "cluster controller"),
    ("list", "networking.k8s.io", "ingresses", "cluster controller"),
    ("watch", "networking.k8s.io", "ingresses", "cluster controller"),
    ("patch", "networking.k8s.io", "ingresses", "cluster controller"),
    ("delete", "networking.k8s.io", "ingresses", "cluster controller"),
    ("get", "monitoring.coreos.com", "servicemonitors", "cluster controller"),
    ("list", "monitoring.coreos.com", "servicemonitors", "cluster controller"),
    ("watch", "monitoring.coreos.com", "servicemonitors", "cluster controller"),
    ("patch", "monitoring.coreos.com", "servicemonitors", "cluster controller"),
    ("delete", "monitoring.coreos.com", "servicemonitors", "cluster controller"),
    ("list", "", "persistentvolumeclaims", "cluster controller (deletionPolicy Delete)"),
    ("delete", "", "persistentvolumeclaims", "cluster controller (deletionPolicy Delete)"),
    ("patch", "events.k8s.io", "events", "the Event recorder, when an Event repeats (timing-dependent here)"),
];

const CLUSTER: &str = r#"{"apiVersion": "prism.io/v1alpha1", "kind": "PrismCluster",
  "metadata": {"name": "prod", "namespace": "prism"},
  "spec": {"backends": {"redis": {"enabled": true, "version": "7-alpine"}}}}"#;

const REDIS: &str = r#"{"apiVersion": "apps/v1", "kind": "StatefulSet",
  "metadata": {"name": "prod-redis", "namespace": "prism",
               "labels": {"prism.io/cluster": "prod", "prism.io/backend": "redis"}},
  "spec": {"replicas": 1, "serviceName": "prod-redis", "selector": {"matchLabels": {"app": "redis"}},
           "template": {"metadata": {"labels": {"app": "redis"}},
                        "spec": {"containers": [{"name": "redis", "image": "redis"}]}}}}"#;

const PATTERN: &str = r#"{"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern",
  "metadata": {"name": "kv", "namespace": "prism"},
  "spec": {"cluster": "prod", "type": "keyvalue", "replicas": 2,
           "backends": [{"name": "redis", "config": {"maxConnections": "100"}}],
           "autoscaling": {"enabled": true, "scaler": "hpa", "minReplicas": 2, "maxReplicas": 5, "targetCPU": 70}}}"#;

/// KEDA's ScaledObject API, enough for the operator to find and write it.
fn keda_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "scaledobjects.keda.sh"},
        "spec": {"group": "keda.sh", "scope": "Namespaced",
                 "names": {"plural": "scaledobjects", "singular": "scaledobject", "kind": "ScaledObject",
                           "listKind": "ScaledObjectList"},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .expect("KEDA CRD")
}

fn lease_name() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/prism-operator/values.yaml");
    let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).expect("values.yaml")).expect("YAML");
    values["leaderElection"]["leaseName"].as_str().expect("leaseName").to_string()
}

/// The operator binary as the chart runs it, against the emulator.
struct Operator {
    child: Child,
    kubeconfig: PathBuf,
}

impl Operator {
    fn start(emulator: &Emulator, watch_namespace: Option<&str>) -> Operator {
        let scope = watch_namespace.unwrap_or("all");
        let kubeconfig =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rbac-{}-{scope}.kubeconfig", std::process::id()));
        emulator.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let mut command = Command::new(env!("CARGO_BIN_EXE_prism-operator"));
        command.arg("run").arg("--kubeconfig").arg(&kubeconfig);
        if let Some(ns) = watch_namespace {
            command.arg(format!("--namespace={ns}"));
        }
        let lease = lease_name();
        command.args([
            "--leader-elect=true",
            &format!("--lease-name={lease}"),
            &format!("--lease-namespace={RELEASE_NS}"),
            "--lease-duration=2s",
            "--renew-deadline=1500ms",
            "--retry-period=300ms",
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--log-level=warn",
        ]);
        command.env("POD_NAME", "prism-operator-rbac").stdout(Stdio::null()).stderr(Stdio::inherit());
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

/// The test's client: in-process over the emulator's router, tagged with TEST_AGENT.
fn test_client(emulator: &Emulator) -> Client {
    let router = kube_emulator::http::router(emulator.cluster.clone()).map_request(
        |mut request: HttpRequest<kube::client::Body>| {
            request.headers_mut().insert(header::USER_AGENT, HeaderValue::from_static(TEST_AGENT));
            request
        },
    );
    Client::new(router, "default")
}

async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> Fut) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn apply<K>(api: &Api<K>, json: &str)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let value: Value = serde_json::from_str(json).expect("JSON");
    let name = value["metadata"]["name"].as_str().expect("name").to_string();
    api.patch(&name, &PatchParams::apply("rbac-test").force(), &Patch::Apply(&value)).await.expect("apply");
}

/// Runs the scenario and returns every request the operator sent.
async fn operator_requests(watch_namespace: Option<&str>) -> Vec<Request> {
    let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
    emulator.cluster.instruments.simulation.enable(Duration::from_millis(50));
    let client = test_client(&emulator);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in prism_api::crds().into_iter().chain([keda_crd()]) {
        crds.create(&PostParams::default(), &crd).await.expect("CRD");
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [WATCHED, RELEASE_NS] {
        let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        namespaces.create(&PostParams::default(), &namespace).await.expect("namespace");
    }

    let mut operator = Operator::start(&emulator, watch_namespace);
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NS);
    let lease = lease_name();
    eventually("the operator to lead", || async {
        let held = leases.get_opt(&lease).await.ok().flatten()?.spec?.holder_identity?;
        held.starts_with("prism-operator-rbac").then_some(())
    })
    .await;

    apply(&Api::<prism_api::v1alpha1::PrismCluster>::namespaced(client.clone(), WATCHED), CLUSTER).await;
    apply(&Api::<k8s_openapi::api::apps::v1::StatefulSet>::namespaced(client.clone(), WATCHED), REDIS).await;
    let patterns: Api<PrismPattern> = Api::namespaced(client.clone(), WATCHED);
    apply(&patterns, PATTERN).await;
    let phase = |patterns: Api<PrismPattern>| async move {
        patterns.get_opt("kv").await.ok().flatten().and_then(|p| p.status).and_then(|s| s.phase)
    };
    eventually("kv Running", || async { (phase(patterns.clone()).await == Some(PatternPhase::Running)).then_some(()) })
        .await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), WATCHED);
    eventually("the HPA", || async { hpas.get_opt("kv").await.ok().flatten() }).await;
    assert!(Api::<Deployment>::namespaced(client.clone(), WATCHED).get_opt("kv").await.expect("get").is_some());

    // HPA -> KEDA: the ScaledObject replaces the HPA.
    let switch = |scaler: Value| json!({"spec": {"autoscaling": scaler}});
    let merge = PatchParams::default();
    patterns.patch("kv", &merge, &Patch::Merge(switch(json!({"scaler": "keda"})))).await.expect("keda");
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject");
    let scaled: Api<DynamicObject> = Api::namespaced_with(client.clone(), WATCHED, &ApiResource::from_gvk(&gvk));
    eventually("the ScaledObject", || async { scaled.get_opt("kv").await.ok().flatten() }).await;
    eventually("the HPA gone", || async { hpas.get_opt("kv").await.ok().flatten().is_none().then_some(()) }).await;

    // No autoscaling: the ScaledObject goes.
    patterns.patch("kv", &merge, &Patch::Merge(switch(json!({"enabled": false})))).await.expect("off");
    eventually("the ScaledObject gone", || async { scaled.get_opt("kv").await.ok().flatten().is_none().then_some(()) })
        .await;

    // Deletion runs the finalizer.
    patterns.delete("kv", &DeleteParams::default()).await.expect("delete");
    eventually("kv gone", || async { patterns.get_opt("kv").await.ok().flatten().is_none().then_some(()) }).await;

    // A few renewals, then the pod's termination: the lease is handed back.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = operator.terminate();
        drop(operator);
        status
    })
    .await
    .expect("join");
    assert!(status.success(), "the operator exits cleanly on SIGTERM: {status}");

    let snapshot = emulator.cluster.instruments.requests.snapshot();
    snapshot.log.iter().filter(|r| r.info.user_agent != TEST_AGENT).map(|r| Request::from_info(&r.info)).collect()
}

fn chart_grants(watch_namespace: Option<&str>) -> Vec<Grant> {
    let rules = RulesFile::load(&lease_name()).unwrap_or_else(|e| panic!("{e}"));
    let install = Install {
        watch_namespace: watch_namespace.map(String::from),
        release_namespace: RELEASE_NS.into(),
        leader_election: true,
    };
    rbac::grants(&rules, &install)
}

fn assert_least_privilege(report: &Report, requests: usize) {
    println!("{requests} operator requests; permissions used:");
    for permission in &report.used {
        println!("  {permission}");
    }
    println!("discovery (default roles): {:?}", report.discovery);
    let ignore: Vec<(&str, &str, &str)> = NOT_EXERCISED.iter().map(|(v, g, r, _)| (*v, *g, *r)).collect();
    if let Some(problems) = report.problems(&ignore) {
        panic!("{problems}");
    }
    for (verb, group, resource, _) in NOT_EXERCISED {
        if report.used.iter().any(|p| p.verb == *verb && p.group == *group && p.resource == *resource) {
            println!("note: {verb} {group}/{resource} is exercised now: remove it from NOT_EXERCISED");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_scoped_install_allows_exactly_what_the_operator_does() {
    let requests = operator_requests(Some(WATCHED)).await;
    let report = rbac::check(&requests, &chart_grants(Some(WATCHED)));
    assert_least_privilege(&report, requests.len());
    assert!(report.used.iter().any(|p| p.binding == Binding::Namespace(WATCHED.into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_install_allows_exactly_what_the_operator_does() {
    let requests = operator_requests(None).await;
    let report = rbac::check(&requests, &chart_grants(None));
    assert_least_privilege(&report, requests.len());
    // Watching all namespaces needs the ClusterRole; a Role in one namespace would not do.
    let namespaced = rbac::check(&requests, &chart_grants(Some(WATCHED)));
    assert!(
        namespaced.denied.iter().any(|r| r.namespace.is_empty() && r.verb == "watch"),
        "all-namespace watches: {:?}",
        namespaced.denied
    );
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
        Install { watch_namespace: watch.map(String::from), release_namespace: "ops".into(), leader_election: true }
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
