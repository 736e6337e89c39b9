//! How fast the operator converges PrismClusters, and what it asks of the API server to do so.
//!
//! `cargo bench --bench operator` runs the release binary against the in-process emulator (with
//! simulated workload readiness) and prints, for the default client rate limit and for none:
//! the time to converge N copies of samples/prism-local.yaml applied at once, the requests that
//! took (per verb and per cluster), the requests of an idle operator, the time and requests to
//! converge one spec change, and the operator's memory. It prints figures and asserts nothing.
//! PRISM_BENCH_CLUSTERS sets N (default 10).

#[allow(dead_code)]
#[path = "../tests/e2e/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::{Env, sample};
use kube::api::{ListParams, Patch, PatchParams};
use kube_emulator::instruments::accounting::RequestSnapshot;
use prism_api::v1alpha1::{ClusterPhase, PrismCluster};

/// The operator's User-Agent on its tagged port.
const AGENT: &str = "prism-operator";
const IDLE: Duration = Duration::from_secs(10);
const LIMIT: Duration = Duration::from_secs(300);
const VERBS: [&str; 7] = ["get", "list", "watch", "create", "update", "patch", "delete"];

struct Figures {
    qps: &'static str,
    clusters: usize,
    converge: Duration,
    converge_requests: Requests,
    converge_reads: String,
    idle_requests: Requests,
    change: Duration,
    change_requests: Requests,
    rss_mib: f64,
    peak_mib: f64,
}

/// The operator's requests between two snapshots, per verb.
struct Requests(Vec<(&'static str, u64)>);

impl Requests {
    fn between(before: &RequestSnapshot, after: &RequestSnapshot) -> Self {
        let count = |s: &RequestSnapshot, verb: &str| s.count_where(|k| k.verb == verb && k.is_by(AGENT));
        Self(VERBS.into_iter().map(|verb| (verb, count(after, verb) - count(before, verb))).collect())
    }

    fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    fn writes(&self) -> u64 {
        self.0.iter().filter(|(verb, _)| ["create", "update", "patch", "delete"].contains(verb)).map(|(_, n)| n).sum()
    }
}

impl std::fmt::Display for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().filter(|(_, n)| *n > 0).map(|(v, n)| format!("{v} {n}")).collect();
        write!(f, "{} ({})", self.total(), parts.join(", "))
    }
}

fn main() {
    let clusters = std::env::var("PRISM_BENCH_CLUSTERS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = runtime.expect("a tokio runtime");
    let figures: Vec<Figures> = [("20", "20 (default)"), ("0", "unlimited")]
        .into_iter()
        .map(|(qps, label)| runtime.block_on(measure(qps, label, clusters)))
        .collect();
    print(&figures);
}

async fn measure(qps: &str, label: &'static str, clusters: usize) -> Figures {
    let mut env = Env::new("bench").await;
    let kubeconfig = env.tagged_kubeconfig(AGENT).await.display().to_string();
    // No leader election: its renewals would be counted, at the e2e harness's short periods.
    let operator = env.start_operator("bench", &["--kubeconfig", &kubeconfig, "--leader-elect=false", "--qps", qps]);
    let pid = operator.child.id().expect("the operator runs");
    let requests = &env.emulator().instruments.requests;

    let before = requests.snapshot();
    let started = Instant::now();
    for i in 0..clusters {
        env.apply(
            &sample("prism-local.yaml", &env.namespace).replace("name: prism-local", &format!("name: bench-{i}")),
        )
        .await;
    }
    all_running(&env).await;
    let converge = started.elapsed();
    let converged = requests.snapshot();

    tokio::time::sleep(IDLE).await;
    let idle = requests.snapshot();

    let started = Instant::now();
    let patch = serde_json::json!({"spec": {"proxy": {"autoscaling": {"maxReplicas": 12}}}});
    env.api::<PrismCluster>()
        .patch("bench-0", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the change is accepted");
    all_running(&env).await;
    let change = started.elapsed();
    // Let the change's own echoes (status writes, child events) settle before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changed = requests.snapshot();

    let (rss_mib, peak_mib) = memory_mib(pid);
    Figures {
        qps: label,
        clusters,
        converge,
        converge_requests: Requests::between(&before, &converged),
        converge_reads: reads_by_resource(&before, &converged),
        idle_requests: Requests::between(&converged, &idle),
        change,
        change_requests: Requests::between(&idle, &changed),
        rss_mib,
        peak_mib,
    }
}

/// The operator's GETs and LISTs between two snapshots per resource, most first.
fn reads_by_resource(before: &RequestSnapshot, after: &RequestSnapshot) -> String {
    let mut reads: BTreeMap<String, i64> = BTreeMap::new();
    for (snapshot, sign) in [(after, 1), (before, -1)] {
        for (key, n) in
            snapshot.counts.iter().filter(|(k, _)| k.is_by(AGENT) && ["get", "list"].contains(&k.verb.as_str()))
        {
            *reads.entry(format!("{} {}", key.verb, key.resource)).or_default() += sign * *n as i64;
        }
    }
    let mut reads: Vec<(String, i64)> = reads.into_iter().filter(|(_, n)| *n > 0).collect();
    reads.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    reads.iter().map(|(what, n)| format!("{what} {n}")).collect::<Vec<_>>().join(", ")
}

/// Waits until every cluster of the namespace is Running for its current generation.
async fn all_running(env: &Env) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let list = env.api::<PrismCluster>().list(&ListParams::default()).await.expect("clusters listed");
        let done = list.items.iter().all(|c| {
            let status = c.status.as_ref();
            status.and_then(|s| s.phase) == Some(ClusterPhase::Running)
                && status.and_then(|s| s.observed_generation) == c.metadata.generation
        });
        if done {
            return;
        }
        if Instant::now() > deadline {
            let states: Vec<String> = list
                .items
                .iter()
                .map(|c| format!("{}: {:?}", c.metadata.name.as_deref().unwrap_or_default(), c.status))
                .collect();
            panic!("clusters not Running within {LIMIT:?}:\n{}\n{}", states.join("\n"), env.operator_logs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process's resident and peak resident memory (VmRSS, VmHWM) in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn print(figures: &[Figures]) {
    for f in figures {
        let per_cluster = f.converge_requests.total() as f64 / f.clusters as f64;
        println!("client QPS {}, {} clusters (samples/prism-local.yaml):", f.qps, f.clusters);
        println!("  converge all          {:>7.2} s   requests {}", f.converge.as_secs_f64(), f.converge_requests);
        println!(
            "                                    {per_cluster:.1} per cluster, {} writes",
            f.converge_requests.writes()
        );
        println!("                                    reads: {}", f.converge_reads);
        println!("  idle {:>2} s            {:>9}   requests {}", IDLE.as_secs(), "", f.idle_requests);
        println!("  one spec change       {:>7.2} s   requests {}", f.change.as_secs_f64(), f.change_requests);
        println!("  operator memory       RSS {:.1} MiB, peak {:.1} MiB", f.rss_mib, f.peak_mib);
    }
    if let [throttled, unlimited] = figures {
        let ratio = throttled.converge.as_secs_f64() / unlimited.converge.as_secs_f64();
        println!("convergence time, default QPS / unlimited: {ratio:.2}");
    }
}
