//! How fast the operator converges PrismClusters, what it asks of the API server, and what it
//! costs in memory and CPU: the figures of the scale targets, printed beside them. It asserts
//! nothing.
//!
//! `cargo bench --bench operator` runs the release binary against the in-process emulator (with
//! simulated workload readiness), N copies of samples/prism-local.yaml, each in its own
//! namespace. Environment:
//! - `PRISM_BENCH_CLUSTERS`: N (default 10);
//! - `PRISM_BENCH_PASSES`: `both` (the default client rate limit, then unlimited) or `unlimited`
//!   (for large N, where the rate-limited pass would take an hour); default `both` up to 100
//!   clusters, `unlimited` above;
//! - `PRISM_BENCH_IDLE`: the quiet window after convergence, in seconds (default 60);
//! - `PRISM_BENCH_LOG`: a file to keep the operator's log in (default: a temporary file);
//! - `PRISM_BENCH_WRAPPER`: a command the operator runs under, for profiling (e.g.
//!   `valgrind --tool=massif --massif-out-file=/tmp/operator.massif`). It must become the operator's
//!   process (valgrind does; heaptrack forks it as a child, which the bench's SIGTERM then misses
//!   and which outlives the bench).

#[path = "support/cache_bytes.rs"]
mod cache_bytes;
#[allow(dead_code)]
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../tests/support/operator_log.rs"]
mod operator_log;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use harness::{Env, sample};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube_emulator::instruments::accounting::{RequestKey, RequestSnapshot};
use prism_api::v1beta1::{ClusterPhase, NamespacePhase, PrismCluster};
use prism_controllers::workload::WorkloadView;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The operator's User-Agent on its tagged port.
const AGENT: &str = "prism-operator";
/// A converged cluster is resynced within the quiet window: it must cost no request either.
const RESYNC: &str = "30s";
const LIMIT: Duration = Duration::from_secs(3600);
const VERBS: [&str; 7] = ["get", "list", "watch", "create", "update", "patch", "delete"];
/// The kinds the operator writes as children (what the floor counts).
const CHILD_KINDS: [(&str, &str, &str, &str); 11] = [
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Service", "services"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "Deployment", "deployments"),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ("networking.k8s.io", "v1", "Ingress", "ingresses"),
    ("prism.io", "v1beta1", "PrismPattern", "prismpatterns"),
    ("prism.io", "v1beta1", "PrismNamespace", "prismnamespaces"),
];

/// Counts allocations: what a cached object takes (see `cache_bytes`).
#[global_allocator]
static ALLOCATOR: &cache_bytes::Counting = &cache_bytes::COUNTING;

fn main() {
    let clusters: usize = env_or("PRISM_BENCH_CLUSTERS", 10);
    let idle = Duration::from_secs(env_or("PRISM_BENCH_IDLE", 60));
    let both = match std::env::var("PRISM_BENCH_PASSES").as_deref() {
        Ok("unlimited") => false,
        Ok("both") => true,
        _ => clusters <= 100,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = runtime.expect("a tokio runtime");
    let mut passes = Vec::new();
    if both {
        passes.push(("20", "20 (default)"));
    }
    passes.push(("0", "unlimited"));
    for (qps, label) in passes {
        let figures = runtime.block_on(measure(qps, clusters, idle));
        print(label, clusters, &figures);
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one pass measured.
struct Figures {
    /// The same objects applied by a plain client at full speed, on a fresh emulator.
    emulator_bound: Option<Bound>,
    converge: Duration,
    converge_requests: Requests,
    /// The operator's requests while converging, per verb and resource, most first.
    converge_by_resource: String,
    events: u64,
    /// The Events' reasons, most first.
    event_reasons: String,
    floor: Floor,
    cpu_seconds: f64,
    memory: Memory,
    idle: Duration,
    idle_requests: Requests,
    idle_by_resource: String,
    /// The namespaces the operator's requests of the quiet window named: where to look.
    idle_namespaces: String,
    idle_reconciles: Option<u64>,
    change: Duration,
    change_requests: Requests,
    restart: Restart,
    /// After the idle window, its scrapes of /metrics and one change.
    memory_before_restart: Memory,
    memory_end: Memory,
    emulator_rss_mib: f64,
    /// What a cluster's objects take in the operator's caches, by kind.
    cache: cache_bytes::CacheBytes,
}

/// The writes converging cannot do without.
struct Floor {
    /// Children the operator applied (objects carrying one of its field managers).
    children: u64,
    /// Phase changes of the custom resources (one status write each), from the operator's log.
    phase_changes: u64,
    /// Custom resources (one finalizer each).
    custom_resources: u64,
}

impl Floor {
    fn total(&self) -> u64 {
        self.children + self.phase_changes + self.custom_resources
    }
}

struct Memory {
    rss_mib: f64,
    peak_mib: f64,
}

struct Restart {
    writes_elsewhere: u64,
    requests: Requests,
    change_converged: Duration,
}

/// The operator's requests between two snapshots, per verb (Events apart).
struct Requests(Vec<(&'static str, u64)>);

impl Requests {
    fn between(before: &RequestSnapshot, after: &RequestSnapshot, only: impl Fn(&RequestKey) -> bool) -> Self {
        let count = |s: &RequestSnapshot, verb: &str| {
            s.count_where(|k| k.verb == verb && k.is_by(AGENT) && k.resource != "events" && only(k))
        };
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

fn everywhere(_: &RequestKey) -> bool {
    true
}

async fn measure(qps: &str, clusters: usize, idle: Duration) -> Figures {
    let emulator_bound = if qps == "0" { Some(emulator_bound(clusters).await) } else { None };
    let env = Env::new("bench").await;
    let namespaces: Vec<String> = (0..clusters).map(|i| format!("bench-{i}")).collect();
    create_namespaces(&env, &namespaces).await;
    let kubeconfig = env.tagged_kubeconfig(AGENT).await;
    let log = tempfile::NamedTempFile::new().expect("log file");
    let log_path = std::env::var_os("PRISM_BENCH_LOG").map_or_else(|| log.path().to_path_buf(), Into::into);
    let metrics_port = free_port();
    let mut operator = start_operator(&kubeconfig, qps, metrics_port, &log_path);
    let requests = &env.emulator().instruments.requests;

    let before = requests.snapshot();
    let started = Instant::now();
    apply_clusters(&env, &namespaces).await;
    all_running(&env, None).await;
    let converge = started.elapsed();
    let converged = requests.snapshot();
    let cpu_seconds = cpu_seconds(&operator);
    let memory = operator_memory(&operator);
    let events = converged.count_where(|k| k.is_by(AGENT) && k.resource == "events" && k.is_write())
        - before.count_where(|k| k.is_by(AGENT) && k.resource == "events" && k.is_write());
    let floor = floor(&env, &log_path, &namespaces).await;
    let event_reasons = event_reasons(&env).await;
    let cache = cache_bytes::in_namespace(ALLOCATOR, &env.client, &namespaces[0]).await;

    let reconciles_before = reconciles(metrics_port).await;
    tokio::time::sleep(idle).await;
    let quiet = requests.snapshot();
    let idle_reconciles = reconciles(metrics_port).await.zip(reconciles_before).map(|(after, before)| after - before);

    let started = Instant::now();
    change_cluster(&env, &namespaces[0], 12).await;
    all_running(&env, Some(&namespaces[0])).await;
    let change = started.elapsed();
    // Let the change's own echoes (status writes, child events) settle before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changed = requests.snapshot();

    // The peak so far covers the idle window's resyncs, two scrapes of /metrics and the change.
    let memory_before_restart = operator_memory(&operator);
    let restart = restart(&env, &mut operator, &kubeconfig, qps, &log_path, &namespaces).await;
    let memory_end = operator_memory(&operator);
    stop(&mut operator).await;
    let figures = Figures {
        emulator_bound,
        converge,
        converge_requests: Requests::between(&before, &converged, everywhere),
        converge_by_resource: by_resource(&before, &converged),
        events,
        event_reasons,
        floor,
        cpu_seconds,
        memory,
        idle,
        idle_requests: Requests::between(&converged, &quiet, everywhere),
        idle_by_resource: by_resource(&converged, &quiet),
        idle_namespaces: namespaces_of(&converged, &quiet),
        idle_reconciles,
        change,
        change_requests: Requests::between(&quiet, &changed, everywhere),
        restart,
        memory_before_restart,
        memory_end,
        emulator_rss_mib: memory_of(std::process::id()).rss_mib,
        cache,
    };
    env.shut_down().await;
    figures
}

/// What a plain client takes to apply the same objects (rendered offline) at full speed, on a
/// fresh emulator: the bound the emulator itself sets.
struct Bound {
    /// Until every object is accepted.
    applied: Duration,
    /// Until every workload among them is ready too: the emulator's simulated workload controllers
    /// (ReplicaSets, Pods, statuses) then did the same work as in a converged cluster.
    ready: Duration,
}

async fn emulator_bound(clusters: usize) -> Bound {
    let env = Env::new("bench-bound").await;
    let namespaces: Vec<String> = (0..clusters).map(|i| format!("bound-{i}")).collect();
    create_namespaces(&env, &namespaces).await;
    let manifest: Value = serde_saphyr::from_str(&sample("prism-local.yaml", "x")).expect("sample");
    let objects = prism_controllers::render::render(&[manifest]).expect("the sample renders");
    let served: Vec<(ApiResource, Value)> =
        objects.into_iter().filter_map(|object| Some((resource_of(&object)?, object))).collect();
    let started = Instant::now();
    let writes = namespaces.iter().flat_map(|ns| served.iter().map(move |(r, o)| (ns, r, o)));
    stream::iter(writes)
        .map(|(ns, resource, object)| apply_plain(&env, ns, resource, object))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("applied");
    let applied = started.elapsed();
    workloads_ready(&env).await;
    let ready = started.elapsed();
    env.shut_down().await;
    Bound { applied, ready }
}

/// Waits until every Deployment and StatefulSet has rolled out, as the operator judges it.
async fn workloads_ready(env: &Env) {
    let deployments = Api::<Deployment>::all(env.client.clone());
    let sets = Api::<StatefulSet>::all(env.client.clone());
    tokio::join!(
        until_all(deployments, |d| WorkloadView::of_deployment(d).rolled_out()),
        until_all(sets, |s| WorkloadView::of_stateful_set(s).rolled_out()),
    );
}

/// Watches `api` until every object in it is `done`. A watch, not a list every so often: at
/// 1,000 clusters each list of every PrismCluster took a core of the 2 the bench shares with the
/// emulator and the operator, and a watch costs only the changes.
async fn until_all<K>(api: Api<K>, done: impl Fn(&K) -> bool)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    use kube::runtime::WatchStreamExt;
    use kube::runtime::watcher::{self, Event};
    let key =
        |o: &K| format!("{}/{}", o.meta().namespace.as_deref().unwrap_or(""), o.meta().name.as_deref().unwrap_or(""));
    // Objects not done yet; `listing` holds a (re)list's until it ends.
    let (mut pending, mut listing) = (BTreeSet::new(), None::<BTreeSet<String>>);
    let mut listed = false;
    let mut events = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let event = tokio::time::timeout_at(deadline, events.next()).await;
        let event = event.unwrap_or_else(|_| panic!("not done within {LIMIT:?}")).expect("a watch never ends");
        // A failed watch is retried (with backoff) by the watcher itself.
        let Ok(event) = event else { continue };
        match event {
            Event::Init => listing = Some(BTreeSet::new()),
            Event::InitApply(o) if !done(&o) => drop(listing.get_or_insert_default().insert(key(&o))),
            Event::InitApply(_) => {}
            Event::InitDone => (pending, listed) = (listing.take().unwrap_or_default(), true),
            Event::Apply(o) if done(&o) => drop(pending.remove(&key(&o))),
            Event::Apply(o) => drop(pending.insert(key(&o))),
            Event::Delete(o) => drop(pending.remove(&key(&o))),
        }
        if listed && pending.is_empty() {
            return;
        }
    }
}

/// The API resource of a rendered object, if the emulator serves its kind (no ServiceMonitors).
fn resource_of(object: &Value) -> Option<ApiResource> {
    let kind = object["kind"].as_str()?;
    let (group, version, _, plural) = CHILD_KINDS.iter().find(|(_, _, k, _)| *k == kind)?;
    Some(ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural))
}

async fn apply_plain(env: &Env, ns: &str, resource: &ApiResource, object: &Value) -> Result<(), kube::Error> {
    let mut object = object.clone();
    object["metadata"]["namespace"] = json!(ns);
    // Owners that do not exist here would be collected at once.
    object["metadata"].as_object_mut().map(|m| m.remove("ownerReferences"));
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), ns, resource);
    api.patch(&name, &PatchParams::apply("plain-client").force(), &Patch::Apply(&object)).await.map(drop)
}

async fn create_namespaces(env: &Env, names: &[String]) {
    let api: Api<Namespace> = Api::all(env.client.clone());
    stream::iter(names)
        .map(|name| {
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
            let api = api.clone();
            async move { api.create(&PostParams::default(), &ns).await.map(drop) }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("namespaces created");
}

/// Applies one prism-local per namespace, as a user's client would (16 at once).
async fn apply_clusters(env: &Env, namespaces: &[String]) {
    stream::iter(namespaces)
        .map(|ns| {
            let cluster: Value = serde_saphyr::from_str(&sample("prism-local.yaml", ns)).expect("sample");
            let api: Api<PrismCluster> = Api::namespaced(env.client.clone(), ns);
            async move { api.patch("prism-local", &PatchParams::apply("bench"), &Patch::Apply(&cluster)).await.map(drop) }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("clusters applied");
}

async fn change_cluster(env: &Env, ns: &str, max_replicas: i32) {
    let patch = json!({"spec": {"proxy": {"autoscaling": {"maxReplicas": max_replicas}}}});
    Api::<PrismCluster>::namespaced(env.client.clone(), ns)
        .patch("prism-local", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the change is accepted");
}

fn start_operator(kubeconfig: &Path, qps: &str, metrics_port: u16, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    let metrics = format!("127.0.0.1:{metrics_port}");
    let binary = env!("CARGO_BIN_EXE_prism-operator");
    let wrapper = std::env::var("PRISM_BENCH_WRAPPER").unwrap_or_default();
    let mut command: Vec<&str> = wrapper.split_whitespace().chain([binary]).collect();
    Command::new(command.remove(0))
        .args(command)
        .args(["run", "--leader-elect=false", "--qps", qps, "--resync", RESYNC, "--log-format", "json"])
        .args(["--metrics-addr", &metrics, "--health-addr", "127.0.0.1:0"])
        // The figures measure the controllers; no Service reaches a webhook here.
        .arg("--webhook=false")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the operator starts")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("address").port()
}

/// Waits until every cluster (of `only`, else of every namespace) is Running for its generation.
async fn all_running(env: &Env, only: Option<&str>) {
    let api: Api<PrismCluster> = match only {
        Some(ns) => Api::namespaced(env.client.clone(), ns),
        None => Api::all(env.client.clone()),
    };
    // Converged: Running at the current generation, and its status shows its namespaces Ready
    // too (a namespace turns Ready after its cluster, whose status then follows).
    until_all(api, |c: &PrismCluster| {
        let status = c.status.as_ref();
        status.and_then(|s| s.phase) == Some(ClusterPhase::Running)
            && status.and_then(|s| s.observed_generation) == c.metadata.generation
            && status.is_some_and(|s| s.namespace_status.iter().all(|n| n.phase == Some(NamespacePhase::Ready)))
    })
    .await;
}

/// The floor: children the operator applied, phase changes it logged, custom resources.
async fn floor(env: &Env, log: &Path, namespaces: &[String]) -> Floor {
    let ours: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
    let mut children = 0;
    for (group, version, kind, plural) in CHILD_KINDS {
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::all_with(env.client.clone(), &resource);
        let list = api.list(&ListParams::default()).await.expect("children listed");
        children += list
            .items
            .iter()
            .filter(|o| o.metadata.namespace.as_deref().is_some_and(|ns| ours.contains(ns)))
            .filter(|o| applied_by_operator(&o.metadata))
            .count() as u64;
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let phase_changes = text.lines().filter(|l| is_phase_change(l)).count() as u64;
    let patterns = count_in(env, "prism.io", "v1beta1", "PrismPattern", "prismpatterns", &ours).await;
    let namespaces = count_in(env, "prism.io", "v1beta1", "PrismNamespace", "prismnamespaces", &ours).await;
    Floor { children, phase_changes, custom_resources: ours.len() as u64 + patterns + namespaces }
}

fn applied_by_operator(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref().is_some_and(|n| n.starts_with("prism-operator/"))
            && m.operation.as_deref() == Some("Apply")
            && m.subresource.is_none()
    })
}

/// Whether a log line is a phase change ("PrismCluster prism-local Running").
fn is_phase_change(line: &str) -> bool {
    let Ok(entry) = serde_json::from_str::<Value>(line) else { return false };
    let message = entry["message"].as_str().unwrap_or_default();
    let words: Vec<&str> = message.split(' ').collect();
    words.len() == 3 && words[0].starts_with("Prism") && words[2].chars().next().is_some_and(char::is_uppercase)
}

async fn count_in(env: &Env, group: &str, version: &str, kind: &str, plural: &str, ours: &BTreeSet<&str>) -> u64 {
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let api: Api<DynamicObject> = Api::all_with(env.client.clone(), &resource);
    let list = api.list(&ListParams::default()).await.expect("listed");
    list.items.iter().filter(|o| o.metadata.namespace.as_deref().is_some_and(|ns| ours.contains(ns))).count() as u64
}

/// The operator's requests between two snapshots per verb and resource, most first.
fn by_resource(before: &RequestSnapshot, after: &RequestSnapshot) -> String {
    let mut counts = std::collections::BTreeMap::<String, i64>::new();
    for (snapshot, sign) in [(after, 1), (before, -1)] {
        for (key, n) in snapshot.counts.iter().filter(|(k, _)| k.is_by(AGENT) && k.is_resource) {
            let resource = if key.subresource.is_empty() {
                key.resource.clone()
            } else {
                format!("{}/{}", key.resource, key.subresource)
            };
            *counts.entry(format!("{} {resource}", key.verb)).or_default() += sign * *n as i64;
        }
    }
    let mut counts: Vec<(String, i64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts.iter().map(|(what, n)| format!("{what} {n}")).collect::<Vec<_>>().join(", ")
}

/// The namespaces of the operator's requests between two snapshots (the first few), or nothing.
fn namespaces_of(before: &RequestSnapshot, after: &RequestSnapshot) -> String {
    let mut counts = std::collections::BTreeMap::<&str, i64>::new();
    for (snapshot, sign) in [(after, 1), (before, -1)] {
        for (key, n) in snapshot.counts.iter().filter(|(k, _)| k.is_by(AGENT) && !k.namespace.is_empty()) {
            *counts.entry(key.namespace.as_str()).or_default() += sign * *n as i64;
        }
    }
    let named: Vec<&str> = counts.into_iter().filter(|(_, n)| *n > 0).map(|(ns, _)| ns).take(5).collect();
    if named.is_empty() { String::new() } else { format!(" in {}", named.join(", ")) }
}

/// The reasons of the Events in the cluster, with how many of each, most first.
async fn event_reasons(env: &Env) -> String {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::all(env.client.clone());
    let events = api.list(&ListParams::default()).await.expect("events listed");
    let mut by_reason = std::collections::BTreeMap::<String, usize>::new();
    for event in events.items {
        *by_reason.entry(event.reason.unwrap_or_default()).or_default() += 1;
    }
    let mut reasons: Vec<(String, usize)> = by_reason.into_iter().collect();
    reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    reasons.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
}

/// A converged operator stopped and started again: what it writes while its caches fill and every
/// object is reconciled again, and how soon a change made at once converges.
async fn restart(
    env: &Env,
    operator: &mut Child,
    kubeconfig: &Path,
    qps: &str,
    log: &Path,
    namespaces: &[String],
) -> Restart {
    stop(operator).await;
    let requests = &env.emulator().instruments.requests;
    let before = requests.snapshot();
    let started = Instant::now();
    *operator = start_operator(kubeconfig, qps, free_port(), log);
    let changed = namespaces.last().expect("a cluster");
    change_cluster(env, changed, 14).await;
    all_running(env, Some(changed)).await;
    let change_converged = started.elapsed();
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(started.elapsed())).await;
    let after = requests.snapshot();
    let elsewhere = |k: &RequestKey| k.namespace != *changed;
    Restart {
        writes_elsewhere: Requests::between(&before, &after, elsewhere).writes(),
        requests: Requests::between(&before, &after, everywhere),
        change_converged,
    }
}

/// Stops the operator as Kubernetes would (SIGTERM, then SIGKILL after a grace period), so that
/// it hands over cleanly, and a profiler it runs under writes its report.
async fn stop(operator: &mut Child) {
    if let Some(pid) = operator.id() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(60), operator.wait()).await.is_err() {
        let _ = operator.kill().await;
    }
}

/// The operator's reconciles so far, from its metrics.
async fn reconciles(port: u16) -> Option<u64> {
    let text = reqwest_like_get(port, "/metrics").await?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("prism_operator_reconcile_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}

/// A plain HTTP/1.1 GET on loopback (the operator's metrics endpoint).
async fn reqwest_like_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

fn cpu_seconds(operator: &Child) -> f64 {
    let Some(pid) = operator.id() else { return f64::NAN };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn operator_memory(operator: &Child) -> Memory {
    operator.id().map_or(Memory { rss_mib: f64::NAN, peak_mib: f64::NAN }, memory_of)
}

/// The process's resident and peak resident memory (VmRSS, VmHWM) in MiB.
fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    Memory { rss_mib: field("VmRSS:"), peak_mib: field("VmHWM:") }
}

fn print(label: &str, clusters: usize, f: &Figures) {
    let n = clusters as f64;
    let writes = f.converge_requests.writes();
    println!("\nclient QPS {label}, {clusters} prism-local clusters, each in its own namespace:");
    let row = |figure: &str, target: &str, measured: String| println!("  {figure:<44} {target:>14}   {measured}");
    row("figure", "target", "measured".to_string());
    row(
        "operator RSS / peak after converging",
        "<= 100 MiB",
        format!("{:.1} / {:.1} MiB ({:.3} MiB per cluster)", f.memory.rss_mib, f.memory.peak_mib, f.memory.rss_mib / n),
    );
    row(
        "operator RSS / peak before the restart",
        "<= 100 MiB",
        format!("{:.1} / {:.1} MiB", f.memory_before_restart.rss_mib, f.memory_before_restart.peak_mib),
    );
    row(
        "operator RSS / peak at the end",
        "",
        format!("{:.1} / {:.1} MiB", f.memory_end.rss_mib, f.memory_end.peak_mib),
    );
    row(
        "writes per cluster / floor per cluster",
        "<= 1.1x",
        format!(
            "{:.1} / {:.1} = {:.2}x (floor: {} children + {} phase changes + {} finalizers)",
            writes as f64 / n,
            f.floor.total() as f64 / n,
            writes as f64 / f.floor.total() as f64,
            f.floor.children,
            f.floor.phase_changes,
            f.floor.custom_resources
        ),
    );
    row("Events per cluster", "<= 5", format!("{:.1} ({})", f.events as f64 / n, f.event_reasons));
    row("converge all", "", format!("{:.2} s, requests {}", f.converge.as_secs_f64(), f.converge_requests));
    row("  by resource", "", f.converge_by_resource.clone());
    if let Some(bound) = &f.emulator_bound {
        let converge = f.converge.as_secs_f64();
        let (applied, ready) = (bound.applied.as_secs_f64(), bound.ready.as_secs_f64());
        row(
            "converge / plain client applying the objects",
            "<= 2x",
            format!("{converge:.2} s / {applied:.2} s = {:.2}x", converge / applied),
        );
        row(
            "converge / plain client until its workloads are ready",
            "",
            format!("{converge:.2} s / {ready:.2} s = {:.2}x", converge / ready),
        );
    } else {
        let floor_time = f.floor.total() as f64 / 20.0;
        row(
            "converge / (floor writes / 20 QPS)",
            "<= 1.1x",
            format!(
                "{:.2} s / {floor_time:.2} s = {:.2}x",
                f.converge.as_secs_f64(),
                f.converge.as_secs_f64() / floor_time
            ),
        );
    }
    let reconciled = f.idle_reconciles.map_or("?".to_string(), |r| r.to_string());
    row(
        &format!("requests in {} s idle ({reconciled} resync reconciles)", f.idle.as_secs()),
        "0",
        format!("{} {}{}", f.idle_requests, f.idle_by_resource, f.idle_namespaces),
    );
    row(
        "one spec change on one cluster",
        "< 1 s, <= 5",
        format!("{:.2} s, requests {}", f.change.as_secs_f64(), f.change_requests),
    );
    row(
        "restart: writes outside a changed cluster",
        "0",
        format!("{} (all requests in 30 s: {})", f.restart.writes_elsewhere, f.restart.requests),
    );
    row(
        "restart: a change made at once converges",
        "< 30 s",
        format!("{:.2} s after the start", f.restart.change_converged.as_secs_f64()),
    );
    row(
        "operator CPU per converged cluster",
        "",
        format!("{:.3} s ({:.1} s in all)", f.cpu_seconds / n, f.cpu_seconds),
    );
    row("emulator (bench process) RSS", "", format!("{:.0} MiB", f.emulator_rss_mib));
    print_cache(&f.cache);
}

/// The cache's bytes per kind for one cluster (each object cached once, as trimmed).
fn print_cache(cache: &cache_bytes::CacheBytes) {
    println!(
        "
cached per cluster, by kind (heap of one trimmed copy as stored, and its store key):"
    );
    for kind in cache.kinds.iter().filter(|k| k.objects > 0) {
        let each = kind.bytes / kind.objects;
        println!("  {:<26} {:>3} x {:>6} B = {:>7} B", kind.kind, kind.objects, each, kind.bytes);
    }
    println!("  {:<26} {:>20} = {:>7} B", "parts records share", "(interned, once)", cache.shared);
    let objects: usize = cache.kinds.iter().map(|k| k.objects).sum();
    let bytes = cache.kinds.iter().map(|k| k.bytes).sum::<usize>() + cache.shared;
    println!("  {:<26} {objects:>3} objects       {bytes:>7} B = {:.1} KiB", "all", bytes as f64 / 1024.0);
}
