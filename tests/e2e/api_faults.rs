//! Scenario 10: API faults. Bursts of 409, 429 (with Retry-After), 500 and 503 on the operator's
//! writes, watches that end, watches that reset and an in-stream 410: during each fault window the
//! operator's request rate stays bounded (backoff, no hot loop), and afterwards it converges a
//! change made during the window. Prints a table of the figures.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube_emulator::instruments::accounting::RequestSnapshot;
use kube_emulator::instruments::faults::{DownMode, FaultAction, FaultRule};
use prism_api::v1beta1::{ClusterPhase, PrismCluster};

use crate::harness::{Env, eventually, sample};

/// The operator's User-Agent on its tagged port (see `Env::tagged_kubeconfig`).
const AGENT: &str = "prism-operator";
/// How long each fault lasts.
const WINDOW: Duration = Duration::from_secs(3);
/// A generous bound on the operator's average request rate during a fault: a hot loop against
/// the loopback emulator does hundreds to thousands per second.
const MAX_RATE: f64 = 50.0;

fn on_writes(rule: FaultRule) -> FaultRule {
    ["create", "update", "patch", "delete"].into_iter().fold(rule, FaultRule::verb).user_agent(AGENT)
}

fn on_watches(action: FaultAction) -> FaultRule {
    FaultRule::new(action).verb("watch").user_agent(AGENT)
}

struct Row {
    fault: &'static str,
    window: Duration,
    requests: u64,
    fired: u64,
    converged_after: Duration,
}

impl Row {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }
}

/// The operator's requests between two snapshots, per verb.
fn per_verb(before: &RequestSnapshot, after: &RequestSnapshot) -> String {
    let count = |s: &RequestSnapshot, verb: &str| s.count_where(|k| k.verb == verb && k.is_by(AGENT));
    ["get", "list", "watch", "create", "update", "patch", "delete"]
        .into_iter()
        .map(|verb| (verb, count(after, verb) - count(before, verb)))
        .filter(|(_, n)| *n > 0)
        .map(|(verb, n)| format!("{verb} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until the cluster reflects `replicas` on its proxy and reports Running for its current
/// generation.
async fn converged(env: &Env, replicas: i32, limit: Duration) {
    let clusters = env.api::<PrismCluster>();
    let deployments = env.api::<Deployment>();
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while Instant::now() < deadline {
        let proxy = deployments.get_opt("minimal-proxy").await.ok().flatten();
        let cluster = clusters.get_opt("minimal").await.ok().flatten();
        let proxy_replicas = proxy.and_then(|p| p.spec?.replicas);
        let generation = cluster.as_ref().and_then(|c| c.metadata.generation);
        let status = cluster.and_then(|c| c.status);
        let observed = status.as_ref().and_then(|s| s.observed_generation);
        let phase = status.as_ref().and_then(|s| s.phase);
        if proxy_replicas == Some(replicas) && observed == generation && phase == Some(ClusterPhase::Running) {
            return;
        }
        seen = format!("proxy replicas {proxy_replicas:?}, generation {generation:?} observed {observed:?}, {phase:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not converged to {replicas} proxy replicas within {limit:?}: {seen}\n{}", env.operator_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_request_rate_under_api_faults_and_convergence_afterwards() {
    run("api-faults", write_faults()).await;
}

fn write_faults() -> Vec<(&'static str, FaultRule)> {
    vec![
        ("409 Conflict on writes", on_writes(FaultRule::error(409))),
        ("429 TooManyRequests (Retry-After 1) on writes", on_writes(FaultRule::too_many_requests(1))),
        ("500 InternalError on writes", on_writes(FaultRule::error(500))),
        ("503 ServiceUnavailable on writes", on_writes(FaultRule::error(503))),
        ("watches end at once", on_watches(FaultAction::WatchEnd { after_events: 0 })),
    ]
}

/// Watch connections reset (no answer), or watches answered with an in-stream 410, for a few
/// seconds: each watch resumes, meets a 410 for the history it had and lists again, on its own
/// backoff. (A controller-wide trigger backoff once held every watch for each one's error, and
/// the change waited minutes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convergence_after_watch_resets_and_in_stream_410() {
    run("watch-resets", watch_faults()).await;
}

fn watch_faults() -> Vec<(&'static str, FaultRule)> {
    vec![
        ("in-stream 410 Expired on watches", on_watches(FaultAction::WatchExpired { after_events: 0 })),
        ("watch connections reset", on_watches(FaultAction::Reset)),
    ]
}

/// The faults `PRISM_E2E_FAULT` (part of a fault's name) selects, all when it is unset. A filter
/// that matches no fault of any scenario fails: a typo must not pass with an empty table.
fn selected(faults: Vec<(&'static str, FaultRule)>) -> Vec<(&'static str, FaultRule)> {
    let Ok(only) = std::env::var("PRISM_E2E_FAULT") else { return faults };
    let known = write_faults().into_iter().chain(watch_faults()).any(|(name, _)| name.contains(&only));
    assert!(known, "PRISM_E2E_FAULT={only:?} matches no fault of any scenario");
    faults.into_iter().filter(|(name, _)| name.contains(&only)).collect()
}

/// Applies each fault for a window while changing the cluster, measures the operator's request
/// rate in the window and the time to converge after it; prints the table and asserts.
async fn run(name: &str, faults: Vec<(&'static str, FaultRule)>) {
    let faults = selected(faults);
    if faults.is_empty() {
        eprintln!("skipped: PRISM_E2E_FAULT selects none of this scenario's faults");
        return;
    }
    let mut env = Env::new(name).await;
    if !env.emulated() {
        eprintln!("skipped on a real cluster: needs the emulator's fault injection and request accounting");
        return;
    }
    let kubeconfig = env.tagged_kubeconfig(AGENT).await.display().to_string();
    // No leader election: the faults target the controllers' requests, not the lease's renewals
    // (a leader that cannot renew exits by design, which runtime_leader.rs covers).
    env.start_operator("a", &["--kubeconfig", &kubeconfig, "--leader-elect=false"]);
    env.apply(&sample("minimal-cluster.yaml", &env.namespace)).await;
    let limit = Duration::from_secs(40);
    let mut replicas = eventually("the proxy exists", limit, || async {
        env.api::<Deployment>().get_opt("minimal-proxy").await.ok().flatten()?.spec?.replicas
    })
    .await;
    converged(&env, replicas, limit).await;

    // Idle baseline: nothing changes, nothing fails.
    let instruments = &env.emulator().instruments;
    let before = instruments.requests.snapshot();
    tokio::time::sleep(WINDOW).await;
    let after = instruments.requests.snapshot();
    let idle = after.requests_by(AGENT) - before.requests_by(AGENT);
    println!("idle after convergence: {idle} requests in {WINDOW:?} ({})", per_verb(&before, &after));

    let mut rows = Vec::new();
    for (fault, rule) in faults {
        let before = instruments.requests.snapshot().requests_by(AGENT);
        let watch_fault = rule.verbs == ["watch"];
        let before_by_verb = instruments.requests.snapshot();
        let id = instruments.faults.add(rule);
        if watch_fault {
            // Open watches end (as on a dropped connection) so that their resumptions meet the rule.
            instruments.faults.server_down(Duration::from_millis(1), DownMode::Drop);
        }
        let started = Instant::now();
        // A change made during the fault: the operator must converge it afterwards.
        replicas += 1;
        let patch = format!(r#"{{"spec": {{"proxy": {{"replicas": {replicas}}}}}}}"#);
        let out = env.kubectl(&["patch", "prismcluster", "minimal", "--type", "merge", "-p", &patch]).await;
        assert!(out.success, "{}", out.stderr);
        tokio::time::sleep(WINDOW.saturating_sub(started.elapsed())).await;
        let snapshot = instruments.requests.snapshot();
        let requests = snapshot.requests_by(AGENT) - before;
        let verbs = per_verb(&before_by_verb, &snapshot);
        let window = started.elapsed();
        let fired = instruments.faults.fired(id);
        instruments.faults.remove(id);
        let removed = Instant::now();
        converged(&env, replicas, limit).await;
        let row = Row { fault, window, requests, fired, converged_after: removed.elapsed() };
        println!(
            "{fault}: {} requests in {:.1} s ({:.1}/s; {verbs}), fault fired {fired} times, converged {:.1} s after",
            row.requests,
            row.window.as_secs_f64(),
            row.rate(),
            row.converged_after.as_secs_f64()
        );
        rows.push(row);
    }

    println!(
        "\n{:<48} {:>8} {:>9} {:>11} {:>7} {:>16}",
        "fault", "window", "requests", "requests/s", "fired", "converged after"
    );
    for r in &rows {
        println!(
            "{:<48} {:>7.1}s {:>9} {:>11.1} {:>7} {:>15.1}s",
            r.fault,
            r.window.as_secs_f64(),
            r.requests,
            r.rate(),
            r.fired,
            r.converged_after.as_secs_f64()
        );
    }
    let logs = env.operator_logs();
    let hot: Vec<String> =
        rows.iter().filter(|r| r.rate() >= MAX_RATE).map(|r| format!("{}: {:.1}/s", r.fault, r.rate())).collect();
    assert!(hot.is_empty(), "request rate not bounded (>= {MAX_RATE}/s) during: {hot:?}");
    for r in &rows {
        assert!(r.fired > 0, "the fault {:?} was exercised", r.fault);
    }
    assert!(env.operators().iter_mut().all(|o| o.is_running()), "the operator survived the faults:\n{logs}");
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
}
