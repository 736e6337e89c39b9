//! kubectl-prism as users run it (`kubectl prism ...`, the plugin found on the PATH) against the
//! emulator and the operator: its output on the samples healthy, progressing and failing for each
//! known reason, with an orphan; its exit codes; and one clear line for what it cannot answer.
//! The outputs are snapshots in tests/e2e/snapshots, reviewed like code (ages and the scenario's
//! namespace are masked).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube_emulator::Emulator;
use kube_emulator::instruments::faults::{FaultAction, FaultRule};
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use prism_api::v1beta1::{PatternPhase, PrismPattern};
use serde_json::json;

use crate::harness::{Env, Kubectl, eventually, path_with_plugin, sample};

const CONVERGE: Duration = Duration::from_secs(60);

/// Runs `kubectl prism <args>` in the scenario's namespace.
async fn prism(env: &Env, args: &[&str]) -> Kubectl {
    let mut all = vec!["prism"];
    all.extend_from_slice(args);
    env.kubectl(&all).await
}

/// `out`'s standard output, checked for its exit code, as a snapshot named `name`.
fn snapshot(env: &Env, name: &str, out: &Kubectl, code: i32) {
    assert_eq!(out.code, Some(code), "{name}: exit code; stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    insta::with_settings!({
        filters => vec![
            (env.namespace.as_str(), "<namespace>"),
            // The AGE column, last on each row of the tree.
            (r"(?m)  (\d+[smhdy])+$", "  <age>"),
            // A hash of the pod template, which names the namespace.
            (r#"ReplicaSet "[a-z0-9-]+""#, r#"ReplicaSet "<name>""#),
        ],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, out.stdout);
    });
}

async fn cluster_phase(env: &Env, name: &str) -> Option<ClusterPhase> {
    env.api::<PrismCluster>().get_opt(name).await.ok().flatten()?.status?.phase
}

async fn pattern_phase(env: &Env, name: &str) -> Option<PatternPhase> {
    env.api::<PrismPattern>().get_opt(name).await.ok().flatten()?.status?.phase
}

async fn pattern_reasons(env: &Env, name: &str) -> Vec<String> {
    let status = env.api::<PrismPattern>().get_opt(name).await.ok().flatten().and_then(|p| p.status);
    status.map(|s| s.conditions.into_iter().map(|c| c.reason).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_deployment_is_drawn_ready_and_status_exits_zero() {
    let mut env = Env::new("plugin-healthy").await;
    env.start_operator("a", &[]);
    env.apply(&sample("prism-local.yaml", &env.namespace)).await;
    env.apply(&sample("app-team-namespace.yaml", &env.namespace)).await;
    // A namespace's status follows its runners' by one reconcile of its own, so the cluster can be
    // Running while its namespaces still report the runners they last saw: wait for each of them.
    eventually("everything Ready", CONVERGE, || async {
        let status = prism(&env, &["status", "prism-local"]).await;
        let team = prism(&env, &["why", "prismnamespace/payments"]).await;
        let owned = prism(&env, &["why", "prismnamespace/prism-local-orders"]).await;
        [status, team, owned].iter().all(|out| out.code == Some(0)).then_some(())
    })
    .await;
    snapshot(&env, "healthy_tree", &prism(&env, &["tree"]).await, 0);
    snapshot(&env, "healthy_status", &prism(&env, &["status", "prism-local"]).await, 0);
    snapshot(&env, "healthy_why", &prism(&env, &["why", "prismnamespace/payments"]).await, 0);
    let wait = prism(&env, &["status", "prism-local", "--wait", "--timeout", "5s"]).await;
    assert_eq!(wait.code, Some(0), "--wait on a Ready cluster returns at once: {}", wait.stderr);

    let json = prism(&env, &["tree", "prism-local", "-o", "json"]).await;
    let tree: serde_json::Value = serde_json::from_str(&json.stdout).expect("tree -o json is JSON");
    assert_eq!(tree["items"][0]["kind"], "PrismCluster");
    assert_eq!(tree["items"][0]["health"], "ready");
    assert!(tree["items"][0]["children"].as_array().is_some_and(|c| c.len() > 10), "{}", json.stdout);
    let yaml = prism(&env, &["status", "prism-local", "-o", "yaml"]).await;
    let status: serde_json::Value = serde_saphyr::from_str(&yaml.stdout).expect("status -o yaml is YAML");
    assert_eq!(status["cluster"]["status"], "Running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progressing_cluster_says_what_it_waits_on_and_wait_times_out() {
    let mut env = Env::new("plugin-progressing").await;
    // No workload becomes ready: the cluster stays Pending, its runners wait.
    env.emulator().instruments.simulation.disable();
    env.start_operator("a", &[]);
    env.apply(&sample("minimal-cluster.yaml", &env.namespace)).await;
    eventually("the minimal cluster Pending with its runner observed", CONVERGE, || async {
        let pending = cluster_phase(&env, "minimal").await == Some(ClusterPhase::Pending);
        let runner = pattern_phase(&env, "minimal-keyvalue").await == Some(PatternPhase::Progressing);
        // The cluster reports its runner's phase once it has seen it, a pass after the runner's own.
        let status = env.api::<PrismCluster>().get_opt("minimal").await.ok().flatten().and_then(|c| c.status);
        let reported = status.is_some_and(|s| {
            s.pattern_status.iter().any(|p| p.name == "keyvalue" && p.message.as_deref() == Some("Progressing"))
        });
        (pending && runner && reported).then_some(())
    })
    .await;
    snapshot(&env, "progressing_tree", &prism(&env, &["tree", "minimal"]).await, 0);
    snapshot(&env, "progressing_status", &prism(&env, &["status", "minimal"]).await, 1);
    snapshot(&env, "progressing_why", &prism(&env, &["why", "pcl/minimal"]).await, 1);
    let started = std::time::Instant::now();
    let wait = prism(&env, &["status", "minimal", "--wait", "--timeout", "2s"]).await;
    assert_eq!(wait.code, Some(1), "--wait times out not Ready: {}", wait.stderr);
    assert!(started.elapsed() >= Duration::from_secs(2), "--wait waited");
}

/// A cluster that uses a backend it does not enable, a namespace asking for a pattern its cluster
/// does not offer, a runner without a cluster, one with malformed pod overrides, one whose pods
/// never become ready, and an object left behind by a cluster that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_known_failure_is_explained_with_what_to_do() {
    let mut env = Env::new("plugin-failing").await;
    // Broken objects on purpose: admission steps aside (as with the operator down) so that the
    // conditions, which the plugin explains, report them.
    env.webhook_reachable = false;
    env.start_operator("a", &[]);
    let ns = env.namespace.clone();
    env.apply(&sample("minimal-cluster.yaml", &ns)).await;
    env.apply(&failures(&ns)).await;
    eventually("minimal Running, broken Failed", CONVERGE, || async {
        let ok = cluster_phase(&env, "minimal").await == Some(ClusterPhase::Running);
        (ok && cluster_phase(&env, "broken").await == Some(ClusterPhase::Failed)).then_some(())
    })
    .await;
    make_never_ready(&env, "slow").await;
    eventually("every failure reported", CONVERGE, || async {
        // Degraded first for unavailable replicas, then for the deadline the Deployment gave up at.
        let degraded = pattern_phase(&env, "slow").await == Some(PatternPhase::Degraded)
            && pattern_reasons(&env, "slow").await.iter().any(|r| r == "ProgressDeadlineExceeded");
        let stray = pattern_phase(&env, "stray").await == Some(PatternPhase::Pending);
        let overrides = pattern_phase(&env, "bad-overrides").await == Some(PatternPhase::Failed);
        let typo = prism(&env, &["why", "pns/typo"]).await.stdout.contains("PatternNotFound");
        (degraded && stray && overrides && typo).then_some(())
    })
    .await;
    snapshot(&env, "failing_tree", &prism(&env, &["tree"]).await, 0);
    snapshot(&env, "failing_status_backend_not_enabled", &prism(&env, &["status", "broken"]).await, 1);
    snapshot(&env, "failing_why_pattern_not_found", &prism(&env, &["why", "prismnamespace/typo"]).await, 1);
    snapshot(&env, "failing_why_cluster_not_found", &prism(&env, &["why", "prismpattern/stray"]).await, 1);
    snapshot(&env, "failing_why_invalid_pod_overrides", &prism(&env, &["why", "ppat/bad-overrides"]).await, 1);
    snapshot(&env, "failing_why_progress_deadline", &prism(&env, &["why", "prismpattern/slow"]).await, 1);
    snapshot(&env, "orphan_tree", &prism(&env, &["tree", "old"]).await.or_orphans(&env).await, 0);
    snapshot(&env, "orphan_why", &prism(&env, &["why", "configmap/old-proxy-config"]).await, 1);
}

/// The failing objects of [`each_known_failure_is_explained_with_what_to_do`].
fn failures(ns: &str) -> String {
    let labels = "{app.kubernetes.io/managed-by: prism-operator, prism.io/cluster: old}";
    format!(
        r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata: {{name: broken, namespace: {ns}}}
spec:
  backends: {{redis: {{enabled: true, version: "7-alpine"}}}}
  patterns:
    - {{name: keyvalue, backends: [redis]}}
    - {{name: consumer, backends: [nats]}}
---
apiVersion: prism.io/v1beta1
kind: PrismNamespace
metadata: {{name: typo, namespace: {ns}}}
spec: {{cluster: minimal, patterns: [keyvalue, mailbox]}}
---
apiVersion: prism.io/v1beta1
kind: PrismPattern
metadata: {{name: stray, namespace: {ns}}}
spec: {{cluster: missing, type: keyvalue, backends: [{{name: memstore}}]}}
---
apiVersion: prism.io/v1beta1
kind: PrismPattern
metadata: {{name: bad-overrides, namespace: {ns}}}
spec:
  cluster: minimal
  type: keyvalue
  backends: [{{name: memstore}}]
  podOverrides: {{spec: {{containers: "not a list"}}}}
---
apiVersion: prism.io/v1beta1
kind: PrismPattern
metadata: {{name: slow, namespace: {ns}}}
spec: {{cluster: minimal, type: keyvalue, replicas: 1, backends: [{{name: memstore}}]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: old-proxy-config, namespace: {ns}, labels: {labels}}}
data: {{routes: "[]"}}
"#
    )
}

/// Makes the runner of PrismPattern `name` time out: once its Deployment is available, the
/// emulator's never-ready annotation on it, then a new generation (one more replica) that can never become ready.
async fn make_never_ready(env: &Env, name: &str) {
    let deployments = env.api::<Deployment>();
    // Available first, so that what times out is the new generation, as in a real rollout.
    eventually("the runner's Deployment available", CONVERGE, || async {
        let deployment = deployments.get_opt(name).await.ok().flatten()?;
        (deployment.status?.available_replicas? >= 1).then_some(())
    })
    .await;
    let annotate = json!({"metadata": {"annotations": {"kube-emulator.io/never-ready": "true"}}});
    deployments.patch(name, &PatchParams::default(), &Patch::Merge(&annotate)).await.expect("annotated");
    let more = json!({"spec": {"replicas": 2}});
    env.api::<PrismPattern>().patch(name, &PatchParams::default(), &Patch::Merge(&more)).await.expect("scaled");
}

impl Kubectl {
    /// `tree old` names a cluster that is gone: it answers not found, and the orphan shows in
    /// the namespace's tree instead.
    async fn or_orphans(self, env: &Env) -> Kubectl {
        assert_eq!(self.code, Some(3), "tree of a missing cluster: {}", self.stderr);
        let mut all = prism(env, &["tree"]).await;
        let from = all.stdout.find("ORPHANS").expect("an orphans section");
        all.stdout = all.stdout[from..].to_string();
        all
    }
}

/// What kubectl-prism cannot answer, it says in one line and exits 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_one_clear_line_and_exit_code_three() {
    let env = Env::new("plugin-bad-input").await;
    let unknown = prism(&env, &["status", "nope"]).await;
    one_line(&unknown, &format!("error: PrismCluster \"nope\" not found in namespace \"{}\"", env.namespace));
    let bad = prism(&env, &["why", "orders"]).await;
    one_line(&bad, "error: \"orders\" is not KIND/NAME of a kind kubectl prism knows");

    let denied = FaultRule::new(FaultAction::Error {
        code: 403,
        message: Some("prismclusters is forbidden: User \"dev\" cannot list resource \"prismclusters\"".into()),
        retry_after_seconds: None,
    })
    .group("prism.io")
    .resource("prismclusters")
    .verb("list");
    env.emulator().instruments.faults.add(denied);
    let forbidden = prism(&env, &["tree"]).await;
    one_line(&forbidden, &format!("error: no permission to list prismclusters in namespace \"{}\"", env.namespace));

    // An API server without the Prism CRDs.
    let bare = Emulator::start();
    let server = bare.serve("127.0.0.1:0").await.expect("emulator");
    let kubeconfig = tempfile::NamedTempFile::new().expect("kubeconfig");
    server.write_kubeconfig(kubeconfig.path()).expect("kubeconfig written");
    let out = plugin_with(kubeconfig.path(), &["tree", "-A"]).await;
    one_line(&out, "error: the Prism CRDs are not installed in this cluster");
    let gone = plugin_with(std::path::Path::new("/nonexistent/kubeconfig"), &["tree"]).await;
    one_line(&gone, "error: cannot read the kubeconfig /nonexistent/kubeconfig");
}

/// The plugin run directly, with `--kubeconfig`.
async fn plugin_with(kubeconfig: &std::path::Path, args: &[&str]) -> Kubectl {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-prism"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("PATH", path_with_plugin())
        .output()
        .await
        .expect("kubectl-prism runs");
    Kubectl {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn one_line(out: &Kubectl, starts: &str) {
    assert_eq!(out.code, Some(3), "exit code 3: {out:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert!(out.stderr.starts_with(starts), "{:?} starts with {starts:?}", out.stderr);
}
