//! Scenario 8: leader election. Two operator processes share one Lease; only the leader writes
//! (Lease holder, Events' reporting instance, and — on the emulator — request accounting per
//! process); after kill -9 of the leader the standby takes over within the lease duration and
//! converges a change made meanwhile.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};

use crate::harness::{Env, eventually, sample};

const LEASE: &str = "prism-operator-leader";
/// The harness runs the operators with --lease-duration 3s and --retry-period 500ms.
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RETRY_PERIOD: Duration = Duration::from_millis(500);
/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

async fn holder(env: &Env) -> Option<String> {
    env.api::<Lease>().get_opt(LEASE).await.ok().flatten()?.spec?.holder_identity
}

/// The reporting instances of the Events in the scenario's namespace, with how many each wrote.
async fn event_instances(env: &Env) -> std::collections::BTreeMap<String, usize> {
    let events = env.api::<Event>().list(&Default::default()).await.expect("events");
    let mut by = std::collections::BTreeMap::new();
    for e in events.items {
        *by.entry(e.reporting_instance.unwrap_or_default()).or_default() += 1;
    }
    by
}

fn log_of(env: &mut Env, identity: &str) -> String {
    let operator = env.operators().iter().find(|o| o.identity == identity).expect("operator");
    std::fs::read_to_string(&operator.log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_the_standby_takes_over_after_kill_9() {
    let mut env = Env::new("leader").await;
    env.fast_failover = true;
    let emulated = env.emulated();
    if !emulated {
        eprintln!("real cluster: per-process request accounting needs the emulator; checking the Lease and Events");
    }
    // On the emulator each process gets its own User-Agent, so accounting tells them apart.
    let mut args: Vec<Vec<String>> = Vec::new();
    for agent in ["operator-a", "operator-b"] {
        args.push(match emulated {
            true => vec!["--kubeconfig".into(), env.tagged_kubeconfig(agent).await.display().to_string()],
            false => Vec::new(),
        });
    }
    let (args_a, args_b) = (args[0].clone(), args[1].clone());

    env.start_operator("a", &args_a.iter().map(String::as_str).collect::<Vec<_>>());
    let limit = Duration::from_secs(30);
    eventually("a leads", limit, || async { (holder(&env).await.as_deref() == Some("a")).then_some(()) }).await;
    env.start_operator("b", &args_b.iter().map(String::as_str).collect::<Vec<_>>());
    eventually("b stands by", limit, || {
        let log = log_of(&mut env, "b");
        async move { log.contains("standing by").then_some(()) }
    })
    .await;

    env.apply(&sample("minimal-cluster.yaml", &env.namespace)).await;
    let clusters = env.api::<PrismCluster>();
    let deployments = env.api::<Deployment>();
    let proxy_replicas = eventually("the cluster converges under a", limit, || async {
        let c = clusters.get_opt("minimal").await.ok().flatten()?;
        let proxy = deployments.get_opt("minimal-proxy").await.ok().flatten()?;
        let status = c.status?;
        let done = if emulated { status.phase == Some(ClusterPhase::Running) } else { true };
        (done && status.observed_generation == c.metadata.generation).then_some(proxy.spec?.replicas.unwrap_or(1))
    })
    .await;
    // Let the standby poll the lease for a few rounds while the leader renews.
    tokio::time::sleep(RETRY_PERIOD * 4).await;

    assert_eq!(holder(&env).await.as_deref(), Some("a"), "a still leads");
    let instances = event_instances(&env).await;
    println!("Events by reporting instance while a leads: {instances:?}");
    assert!(instances.get("a").is_some_and(|n| *n > 0), "the leader announced the cluster Running: {instances:?}");
    assert_eq!(instances.keys().collect::<Vec<_>>(), ["a"], "only the leader writes: {instances:?}");
    if emulated {
        let snapshot = env.emulator().instruments.requests.snapshot();
        // Only the leader installs the webhook: the standby writes nothing at all.
        let (writes_a, writes_b) = (snapshot.writes_by("operator-a"), snapshot.writes_by("operator-b"));
        let reads_b = snapshot.requests_by("operator-b");
        let b_resources: std::collections::BTreeSet<String> = snapshot
            .counts
            .iter()
            .filter(|(k, _)| k.is_resource && k.is_by("operator-b"))
            // The webhook every replica serves: its certificate (read from the leader's Secret),
            // and the clusters it looks up to admit the leader's writes.
            .filter(|(k, _)| {
                let certificate = k.verb == "get" && k.resource == "secrets";
                let lookup = k.verb == "get" && k.resource.starts_with("prism");
                !certificate && !lookup
            })
            .map(|(k, _)| format!("{} {}", k.verb, k.resource))
            .collect();
        println!("while a leads: writes by a {writes_a}, by b {writes_b}; b's requests {reads_b}: {b_resources:?}");
        assert!(writes_a > 0, "the leader wrote");
        assert_eq!(writes_b, 0, "the standby never writes: {b_resources:?}");
        assert!(reads_b > 0, "the standby polls the lease");
        assert_eq!(b_resources.into_iter().collect::<Vec<_>>(), ["get leases"], "the standby only reads the Lease");
    }

    // kill -9 the leader; change the cluster at once.
    let writes_a_at_kill = emulated.then(|| env.emulator().instruments.requests.snapshot().writes_by("operator-a"));
    env.operators().iter_mut().find(|o| o.identity == "a").expect("a").kill_hard().await;
    let killed = Instant::now();
    let wanted = proxy_replicas + 1;
    let patch = format!(r#"{{"spec": {{"proxy": {{"replicas": {wanted}}}}}}}"#);
    let out = env.kubectl(&["patch", "prismcluster", "minimal", "--type", "merge", "-p", &patch]).await;
    assert!(out.success, "{}", out.stderr);

    eventually("b takes over", limit, || async { (holder(&env).await.as_deref() == Some("b")).then_some(()) }).await;
    let takeover = killed.elapsed();
    eventually("b converges the change", limit, || async {
        let proxy = deployments.get_opt("minimal-proxy").await.ok().flatten()?;
        let c = clusters.get_opt("minimal").await.ok().flatten()?;
        let converged = proxy.spec?.replicas == Some(wanted) && c.status?.observed_generation == c.metadata.generation;
        converged.then_some(())
    })
    .await;
    let converged = killed.elapsed();
    println!(
        "takeover after kill -9: {:.2} s (lease duration {LEASE_DURATION:?}); change converged after {:.2} s",
        takeover.as_secs_f64(),
        converged.as_secs_f64()
    );
    assert!(
        takeover <= LEASE_DURATION + RETRY_PERIOD + SLACK,
        "b took over within a lease duration (+ a retry period and slack): {takeover:?}\n{}",
        env.operator_logs()
    );
    let lease = env.api::<Lease>().get(LEASE).await.expect("lease").spec.expect("spec");
    assert_eq!(lease.lease_transitions, Some(1), "one hand-over");
    // The new leader's writes: the converged status above (its status write) and, on the emulator,
    // the accounting below. (Events mark transitions now, and this change makes none.)
    let instances = event_instances(&env).await;
    println!("Events by reporting instance after the takeover: {instances:?}");
    assert!(instances.keys().all(|i| i == "a" || i == "b"), "only the two leaders announce: {instances:?}");
    if let Some(before) = writes_a_at_kill {
        let snapshot = env.emulator().instruments.requests.snapshot();
        assert_eq!(snapshot.writes_by("operator-a"), before, "a dead leader writes nothing");
        assert!(snapshot.writes_by("operator-b") > 0, "the new leader writes");
    }
    assert!(log_of(&mut env, "b").contains("acquired the leader lease"));
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "no operator panics:\n{logs}");
}
