//! What the cluster scenarios (runtime changes, self-healing, ordering, deletion, app teams, pause)
//! share: kubectl that must succeed, waiting for a PrismCluster to converge, the rollout state of
//! every workload (to prove which pods rolled), and quiet periods measured by the emulator.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use prism_api::common::Condition;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use prism_api::v1beta1::{PatternPhase, PrismPattern};

use crate::harness::Env;

/// How long one step of a scenario may take to converge.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The pod-template annotation that rolls a workload's pods when its configuration changes.
pub const CONFIG_HASH: &str = "prism.io/config-hash";

/// Runs kubectl, failing the scenario (with what kubectl said) if it fails; returns its output.
pub async fn kubectl_ok(env: &Env, args: &[&str]) -> String {
    let out = env.kubectl(args).await;
    assert!(out.success, "kubectl {} failed:\n{}{}", args.join(" "), out.stdout, out.stderr);
    out.stdout
}

/// `kubectl patch <target> --type <kind> -p <body>`.
pub async fn kubectl_patch(env: &Env, target: &str, kind: &str, body: &str) -> String {
    kubectl_ok(env, &["patch", target, "--type", kind, "-p", body]).await
}

/// Waits until `check` returns `Some`, up to `limit`; a timeout fails with the operator's log.
pub async fn wait_for<T, F, Fut>(env: &Env, what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}\n{}", log_tail(env, 80));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last `lines` lines the operators logged.
pub fn log_tail(env: &Env, lines: usize) -> String {
    let logs = env.operator_logs();
    let all: Vec<&str> = logs.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!("operator log (last {lines} lines):\n{}", all[start..].join("\n"))
}

pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The cluster once its status describes its current generation and, on the emulator (where
/// workloads become ready), once it is Running with Ready=True. On a real cluster readiness depends
/// on Prism's images being pullable, so only the generation is waited for.
pub async fn converged(env: &Env, name: &str) -> PrismCluster {
    let clusters = env.api::<PrismCluster>();
    let emulated = env.emulated();
    wait_for(env, &format!("PrismCluster {name} converged"), LIMIT, || async {
        let cluster = clusters.get_opt(name).await.ok().flatten()?;
        let status = cluster.status.as_ref()?;
        if status.observed_generation != cluster.metadata.generation {
            return None;
        }
        if emulated {
            let ready = condition(&status.conditions, "Ready").is_some_and(|c| c.status == "True");
            (status.phase == Some(ClusterPhase::Running) && ready).then_some(())?;
        }
        Some(cluster)
    })
    .await
}

/// Waits until each PrismPattern's status describes its current generation (and, on the
/// emulator, until it is Running).
pub async fn patterns_converged(env: &Env, names: &[&str]) {
    let patterns = env.api::<PrismPattern>();
    let emulated = env.emulated();
    for name in names {
        wait_for(env, &format!("PrismPattern {name} converged"), LIMIT, || async {
            let pattern = patterns.get_opt(name).await.ok().flatten()?;
            let status = pattern.status.as_ref()?;
            let current = status.observed_generation == pattern.metadata.generation;
            (current && (!emulated || status.phase == Some(PatternPhase::Running))).then_some(())
        })
        .await;
    }
}

/// Waits until nothing writes to the API for a while (on the emulator, measured by its request
/// accounting, leaving out lease renewals and events; on a real cluster, a fixed pause).
pub async fn settle(env: &Env) {
    if !env.emulated() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        return;
    }
    let writes = || {
        let snapshot = env.emulator().instruments.requests.snapshot();
        snapshot.count_where(|k| k.is_write() && !["leases", "events"].contains(&k.resource.as_str()))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut last = writes();
    let mut quiet = 0;
    while quiet < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = writes();
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

/// Where one workload's rollout stands: its generation moves with every spec change, the
/// template's config hash with every configuration change; a changed template rolls the pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    pub generation: i64,
    pub config_hash: Option<String>,
    /// The pod template as JSON: any difference rolls the pods.
    pub template: String,
}

impl Rollout {
    fn of(generation: Option<i64>, template: Option<&PodTemplateSpec>) -> Rollout {
        let config_hash = template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_HASH).cloned());
        Rollout {
            generation: generation.unwrap_or_default(),
            config_hash,
            template: template.map(|t| serde_json::to_string(t).unwrap_or_default()).unwrap_or_default(),
        }
    }
}

/// Every Deployment and StatefulSet of the scenario's namespace, as `Deployment/<name>` and
/// `StatefulSet/<name>`.
pub async fn rollouts(env: &Env) -> BTreeMap<String, Rollout> {
    let mut all = BTreeMap::new();
    let deployments = env.api::<Deployment>().list(&Default::default()).await.expect("list Deployments");
    for d in deployments.items {
        let name = d.metadata.name.clone().unwrap_or_default();
        all.insert(
            format!("Deployment/{name}"),
            Rollout::of(d.metadata.generation, d.spec.as_ref().map(|s| &s.template)),
        );
    }
    let sets = env.api::<StatefulSet>().list(&Default::default()).await.expect("list StatefulSets");
    for s in sets.items {
        let name = s.metadata.name.clone().unwrap_or_default();
        all.insert(
            format!("StatefulSet/{name}"),
            Rollout::of(s.metadata.generation, s.spec.as_ref().map(|s| &s.template)),
        );
    }
    all
}

/// What changed between two [`rollouts`]: `(rolled, spec changed without a roll)` by name, plus
/// workloads that appeared or went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub rolled: Vec<String>,
    pub respecified: Vec<String>,
    pub appeared: Vec<String>,
    pub gone: Vec<String>,
}

pub fn changes(before: &BTreeMap<String, Rollout>, after: &BTreeMap<String, Rollout>) -> Changes {
    let mut c = Changes::default();
    for (name, b) in before {
        match after.get(name) {
            None => c.gone.push(name.clone()),
            Some(a) if a.template != b.template => c.rolled.push(name.clone()),
            Some(a) if a.generation != b.generation => c.respecified.push(name.clone()),
            Some(_) => {}
        }
    }
    c.appeared = after.keys().filter(|k| !before.contains_key(*k)).cloned().collect();
    c
}

/// The proxy's routes document (`<cluster>-proxy-config`, key `routes.json`).
pub async fn routes(env: &Env, cluster: &str) -> Option<serde_json::Value> {
    let name = format!("{cluster}-proxy-config");
    let config = env.api::<k8s_openapi::api::core::v1::ConfigMap>().get_opt(&name).await.ok().flatten()?;
    serde_json::from_str(config.data?.get("routes.json")?).ok()
}

/// Polls `read` until `done` holds or `limit` passes, and returns the last value read (for an
/// assertion that shows what was there instead).
pub async fn read_until<T, F, Fut>(limit: Duration, mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let value = read().await;
        if done(&value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
