//! Scenario 9: crash consistency. The operator is killed with SIGKILL mid-reconcile, right after
//! its Nth write of the cluster's children (an emulator fault rule holds the next write, so the
//! kill lands at a known point), for several N, and restarted: the final state is the same as an
//! uninterrupted run's (the set of objects and their specs), the generated credentials are the
//! ones generated before the crash, and nothing is duplicated.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, PostParams};
use kube_emulator::instruments::faults::{FaultAction, FaultRule};
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use prism_api::v1beta1::{NamespacePhase, PrismNamespace};
use prism_api::v1beta1::{PatternPhase, PrismPattern};
use serde_json::{Value, json};

use crate::harness::{Env, eventually, sample};

/// Every run uses this namespace (each in its own emulator), so that names and the hashes of
/// everything that mentions the namespace compare equal across runs.
const NAMESPACE: &str = "crash-consistency";
const CLUSTER_MANAGER: &str = "prism-operator/cluster";
/// Crash consistency is about the state a killed process leaves, not about who leads: without
/// leader election the restarted process starts at once, and a loaded machine (four runs at once,
/// beside other tests) cannot make it lose a lease it must renew within the harness's short 2 s.
const NO_ELECTION: &[&str] = &["--leader-elect=false"];
/// How long the held write waits: longer than it takes to notice it and kill the operator.
const HOLD: Duration = Duration::from_millis(2000);

/// Per object (`Kind/name`): what must not depend on the run (no uids, resourceVersions,
/// timestamps, allocated IPs, status; Secrets by their keys, their values being random).
type State = BTreeMap<String, Value>;
/// Secret name → its data.
type Credentials = BTreeMap<String, BTreeMap<String, String>>;

async fn new_env(name: &str) -> Env {
    let mut env = Env::new(name).await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).expect("namespace");
    namespaces.create(&PostParams::default(), &ns).await.expect("namespace created");
    env.namespace = NAMESPACE.to_string();
    env
}

fn manifest() -> String {
    sample("prism-local.yaml", NAMESPACE)
}

/// The cluster Running for its generation, every runner Running and the namespace Ready.
async fn wait_converged(env: &Env, what: &str) {
    let limit = Duration::from_secs(60);
    eventually(what, limit, || async {
        let c = env.api::<PrismCluster>().get_opt("prism-local").await.ok().flatten()?;
        let status = c.status?;
        if status.phase != Some(ClusterPhase::Running) || status.observed_generation != c.metadata.generation {
            return None;
        }
        let patterns = env.api::<PrismPattern>().list(&Default::default()).await.ok()?;
        let runners_running = patterns.items.iter().all(|p| {
            p.status.as_ref().is_some_and(|s| {
                s.phase == Some(PatternPhase::Running) && s.observed_generation == p.metadata.generation
            })
        });
        let namespaces = env.api::<PrismNamespace>().list(&Default::default()).await.ok()?;
        let ready =
            namespaces.items.iter().all(|n| n.status.as_ref().and_then(|s| s.phase) == Some(NamespacePhase::Ready));
        (runners_running && ready && !patterns.items.is_empty()).then_some(())
    })
    .await;
}

fn normalize(kind: &str, object: Value) -> Value {
    let meta = &object["metadata"];
    let mut annotations = meta["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        // The applied hash covers the owner's uid (and a Secret's random values): the spec below
        // is compared instead.
        a.remove(prism_api::names::annotations::APPLIED_HASH);
    }
    let owners: Vec<Value> = meta["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| json!({"kind": o["kind"], "name": o["name"], "controller": o["controller"]}))
        .collect();
    let body = match kind {
        "Secret" => {
            let keys: BTreeSet<&String> = object["data"].as_object().into_iter().flat_map(|d| d.keys()).collect();
            json!({"type": object["type"], "keys": keys})
        }
        "ConfigMap" => json!({"data": object["data"], "binaryData": object["binaryData"]}),
        _ => {
            let mut spec = object["spec"].clone();
            if let Some(s) = spec.as_object_mut() {
                for allocated in ["clusterIP", "clusterIPs", "volumeName"] {
                    s.remove(allocated);
                }
            }
            spec
        }
    };
    json!({
        "labels": meta["labels"],
        "annotations": annotations,
        "finalizers": meta["finalizers"],
        "owners": owners,
        "body": body,
    })
}

async fn add_all<K>(env: &Env, state: &mut State)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let kind = K::kind(&()).to_string();
    let list = env.api::<K>().list(&Default::default()).await.expect("list");
    for item in list.items {
        let value = serde_json::to_value(&item).expect("json");
        let name = value["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let previous = state.insert(format!("{kind}/{name}"), normalize(&kind, value));
        assert!(previous.is_none(), "{kind}/{name} listed twice");
    }
}

async fn state(env: &Env) -> State {
    let mut state = State::new();
    add_all::<Secret>(env, &mut state).await;
    add_all::<ConfigMap>(env, &mut state).await;
    add_all::<Service>(env, &mut state).await;
    add_all::<StatefulSet>(env, &mut state).await;
    add_all::<Deployment>(env, &mut state).await;
    add_all::<PodDisruptionBudget>(env, &mut state).await;
    add_all::<HorizontalPodAutoscaler>(env, &mut state).await;
    add_all::<PersistentVolumeClaim>(env, &mut state).await;
    add_all::<Ingress>(env, &mut state).await;
    add_all::<PrismPattern>(env, &mut state).await;
    add_all::<PrismNamespace>(env, &mut state).await;
    state
}

async fn credentials(env: &Env) -> Credentials {
    let secrets = env.api::<Secret>().list(&Default::default()).await.expect("secrets");
    secrets
        .items
        .into_iter()
        .map(|s| {
            let data = s.data.unwrap_or_default();
            let data = data.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect();
            (s.metadata.name.unwrap_or_default(), data)
        })
        .collect()
}

fn diff(expected: &State, actual: &State) -> Vec<String> {
    let keys: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (expected.get(k), actual.get(k)) {
            (Some(_), None) => Some(format!("missing {k}")),
            (None, Some(_)) => Some(format!("extra {k}")),
            (Some(e), Some(a)) if e != a => {
                let mut paths = Vec::new();
                differing_paths("", e, a, &mut paths);
                Some(format!("{k} differs: {}", paths.join("; ")))
            }
            _ => None,
        })
        .collect()
}

/// The leaves where two values differ, as `path: expected -> actual`.
fn differing_paths(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for k in keys {
                let null = Value::Null;
                differing_paths(&format!("{path}.{k}"), e.get(k).unwrap_or(&null), a.get(k).unwrap_or(&null), out);
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                differing_paths(&format!("{path}[{i}]"), e, a, out);
            }
        }
        (e, a) if e != a => out.push(format!("{path}: {e} -> {a}")),
        _ => {}
    }
}

/// The uninterrupted run: its final state, and how many writes the cluster controller made.
async fn uninterrupted() -> (State, u64) {
    let mut env = new_env("crash-ref").await;
    env.start_operator("a", NO_ELECTION);
    env.apply(&manifest()).await;
    wait_converged(&env, "the uninterrupted run converges").await;
    let writes = env
        .emulator()
        .instruments
        .requests
        .snapshot()
        .count_where(|k| k.is_write() && k.field_manager == CLUSTER_MANAGER);
    let state = state(&env).await;
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "{logs}");
    (state, writes)
}

struct Outcome {
    writes_before_kill: u64,
    secrets_at_kill: usize,
    restart_converged: Duration,
}

/// A run killed right after the cluster controller's `n`th write, then restarted.
async fn interrupted(n: u64, expected: &State) -> Outcome {
    let mut env = new_env(&format!("crash-{n}")).await;
    let faults = &env.emulator().instruments.faults;
    let hold = FaultRule::new(FaultAction::Latency { ms: HOLD.as_millis() as u64 })
        .verb("patch")
        .verb("create")
        .verb("update")
        .verb("delete")
        .field_manager(CLUSTER_MANAGER)
        .after(n)
        .times(1);
    let id = faults.add(hold);
    env.start_operator("a", NO_ELECTION);
    env.apply(&manifest()).await;
    eventually(&format!("the cluster controller's write #{}", n + 1), Duration::from_secs(60), || async {
        (env.emulator().instruments.faults.fired(id) > 0).then_some(())
    })
    .await;
    env.operators()[0].kill_hard().await;
    let killed = Instant::now();
    let faults = &env.emulator().instruments.faults;
    faults.remove(id);
    let at_kill = credentials(&env).await;
    let writes_before_kill = env
        .emulator()
        .instruments
        .requests
        .snapshot()
        .count_where(|k| k.is_write() && k.field_manager == CLUSTER_MANAGER);

    // A new process.
    env.start_operator("a-restarted", NO_ELECTION);
    wait_converged(&env, &format!("the run killed after write #{n} converges after the restart")).await;
    let restart_converged = killed.elapsed();
    // The state settles with the last status writes; compare until equal or out of time.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut differences = diff(expected, &state(&env).await);
    while !differences.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        differences = diff(expected, &state(&env).await);
    }
    assert!(
        differences.is_empty(),
        "killed after write #{n}: the final state differs from the uninterrupted run's:\n{}\n{}",
        differences.join("\n"),
        env.operator_logs()
    );
    let after = credentials(&env).await;
    for (name, data) in &at_kill {
        assert_eq!(after.get(name), Some(data), "killed after write #{n}: Secret {name} was regenerated");
    }
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "{logs}");
    Outcome { writes_before_kill, secrets_at_kill: at_kill.len(), restart_converged }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_reconcile_then_restart_ends_in_the_uninterrupted_state() {
    if std::env::var_os(crate::harness::REAL_CLUSTER_ENV).is_some() {
        eprintln!("skipped on a real cluster: needs the emulator's fault hooks to kill after the Nth write");
        return;
    }
    let (expected, total) = uninterrupted().await;
    println!("uninterrupted run: {} objects, {total} writes by {CLUSTER_MANAGER}", expected.len());
    assert!(total >= 10, "enough writes to interrupt: {total}");
    // Early (credentials just generated), in the middle, and near the end.
    let points: BTreeSet<u64> = [1, 3, total / 2, total * 3 / 4].into_iter().collect();
    let expected = &expected;
    let runs = points.iter().map(|&n| async move { (n, interrupted(n, expected).await) });
    for (n, outcome) in futures::future::join_all(runs).await {
        println!(
            "killed after write #{n} ({} writes counted at the kill, {} Secrets existed): \
             same state after restart, credentials unchanged; converged {:.1} s after the kill",
            outcome.writes_before_kill,
            outcome.secrets_at_kill,
            outcome.restart_converged.as_secs_f64()
        );
    }
}
