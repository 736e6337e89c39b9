//! The seeded soak (issue 17): for a while, at random times and overlapping, the schedule edits
//! clusters and app teams' namespaces (valid edits, invalid ones the API refuses, invalid ones
//! the operator reports), tunes PrismPatterns with kubectl, deletes and re-creates clusters and
//! namespaces, deletes children by hand, kills the leading operator (kill -9, or SIGTERM as in a
//! rolling restart) and injects bursts of API faults, against the emulator with simulated
//! workloads and two operator processes with leader election. Invariants are checked all along
//! and after a final quiet period; a table sums it up.
//!
//! `PRISM_SOAK_SEED` replays a schedule (the seed is printed; random when unset);
//! `PRISM_SOAK_SECONDS` sets its length (default 60); `PRISM_SOAK_JOURNAL=1` prints every step
//! with its outcome after the table. For a long run:
//! `PRISM_SOAK_SECONDS=600 cargo test --release --test soak -- --nocapture`.

#[path = "../e2e/harness.rs"]
#[allow(dead_code)] // Shared with the end-to-end scenarios; the soak uses part of it.
mod harness;
#[path = "../support/operator_log.rs"]
mod operator_log;

mod actions;
mod checks;
mod expect;
mod fleet;
mod record;
mod schedule;
mod table;
mod world;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::checks::{Credentials, Orphans, Traffic, Volumes};
use crate::fleet::{Fleet, IDENTITIES};
use crate::harness::{Env, REAL_CLUSTER_ENV};
use crate::record::{Invariant, Journal, Tallies, Violations};
use crate::world::{APP_NAMESPACES, CLUSTERS, World};

/// How long the world may take to converge: at the start, and after the schedule (the bound
/// invariant 1 is held to; printed with the table).
const CONVERGENCE_BOUND: Duration = Duration::from_secs(120);
/// How long the operators must stay idle once converged.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// Idle windows measured at most, while processes start or watches resume in them: beyond the
/// longest watch backoff (30 s).
const IDLE_WINDOWS: usize = 5;
/// A leader younger than this may still be reading the world when the idle window opens (its
/// watches' first lists, slowed by the last faults; the storage migration's reads; its first
/// reconciles): the window waits for it to be this old. A leader that never calms down is still
/// reported, in the windows after.
const LEADER_WARM_UP: Duration = Duration::from_secs(20);
/// Steps still running when the schedule ends get this long to finish.
const STEP_DRAIN: Duration = Duration::from_secs(120);
/// How often the continuous checks run (the orphan check every fifth time).
const CHECK_PERIOD: Duration = Duration::from_secs(1);
/// Memory at the end may be this much of the memory after the first convergence.
const LEAK_FACTOR: f64 = 1.2;

/// Everything the steps and the checks share.
pub struct Soak {
    pub env: Arc<Env>,
    pub fleet: Fleet,
    pub journal: Journal,
    pub violations: Violations,
    pub tallies: Tallies,
    /// One lock per object, so that steps on one object run in schedule order.
    locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Soak {
    pub fn lock_for(&self, target: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().expect("locks").entry(target.to_string()).or_default().clone()
    }
}

/// The seed and length of this soak, from the environment.
fn settings() -> (u64, Duration) {
    let seed = std::env::var("PRISM_SOAK_SEED").ok().map(|s| s.parse().expect("PRISM_SOAK_SEED is a number"));
    let seconds: u64 = std::env::var("PRISM_SOAK_SECONDS")
        .ok()
        .map_or(60, |s| s.parse().expect("PRISM_SOAK_SECONDS is a number of seconds"));
    assert!((10..=3600).contains(&seconds), "PRISM_SOAK_SECONDS must be 10 to 3600, got {seconds}");
    (seed.unwrap_or_else(rand::random), Duration::from_secs(seconds))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_soak_of_edits_kills_and_api_faults_keeps_every_invariant() {
    let (seed, length) = settings();
    if std::env::var_os(REAL_CLUSTER_ENV).is_some() {
        eprintln!("skipped on a real cluster: the soak needs the emulator's faults, accounting and simulation");
        return;
    }
    let steps = schedule::generate(seed, length);
    let journal = Journal::new(seed, length, steps);
    println!("soak: seed {seed}, {} s, {} steps; replay: {}", length.as_secs(), journal.steps.len(), journal.replay());

    // Leaders are killed and must be replaced within the invariants' bounds.
    let mut env = Env::new("soak").await;
    env.fast_failover = true;
    let env = Arc::new(env);
    let fleet = Fleet::new(env.clone()).await;
    let soak = Arc::new(Soak {
        env,
        fleet,
        journal,
        violations: Violations::default(),
        tallies: Tallies::default(),
        locks: Mutex::default(),
    });
    let figures = run(&soak).await;
    soak.fleet.stop();
    let kept = keep_logs(&soak);
    table::print(&soak, &figures);
    println!("operator logs: {}", kept.display());
    let violations = soak.violations.all();
    assert!(
        violations.is_empty(),
        "{} violation(s) with seed {seed} (replay: {}):\n{}",
        violations.len(),
        soak.journal.replay(),
        violations.iter().map(|v| format!("  {}: {}", v.invariant.label(), v.what)).collect::<Vec<_>>().join("\n")
    );
}

/// The figures of the table that are not counts.
#[derive(Debug, Default)]
pub struct Figures {
    pub first_convergence: Option<Duration>,
    pub quiet_convergence: Option<Duration>,
    pub restored_convergence: Option<Duration>,
    pub idle_requests: Vec<String>,
    /// Watches that resumed in idle windows measured again.
    pub resumed_watches: usize,
    pub memory_first: Option<(String, u64)>,
    pub memory_end: Option<(String, u64, Duration)>,
    pub peak: Option<(u64, String, u64)>,
    pub writers: usize,
}

/// The whole soak: setup and first convergence, the schedule with the checks, quiet, the final
/// checks.
async fn run(soak: &Arc<Soak>) -> Figures {
    let mut figures = Figures::default();
    let origin = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let kubelet = tokio::spawn(kubelet(soak.clone(), stopped.clone()));
    start_fleet(soak).await;
    apply_world(soak).await;
    figures.first_convergence = converge(soak, "the first convergence").await;
    settle(soak).await;
    figures.memory_first = leader_memory(soak).await.map(|(who, bytes, _)| (who, bytes));

    let checks = tokio::spawn(monitor(soak.clone(), origin, stopped));
    play(soak).await;
    quiet(soak, &mut figures).await;

    let _ = stop.send(true);
    let traffic = checks.await.expect("the continuous checks ran to the end");
    let _ = kubelet.await;
    checks::judge_exits(soak, &soak.fleet.tick());
    checks::judge_panics(soak);
    soak.violations.judge_vacuous(&soak.journal);
    figures.peak = traffic.peak();
    figures.writers = traffic.writers();
    figures
}

/// Runs every step at its time, each as its own task (steps overlap), and waits for them.
async fn play(soak: &Arc<Soak>) {
    let start = soak.journal.start_clock();
    let mut running = Vec::new();
    for step in soak.journal.steps.clone() {
        tokio::time::sleep_until((start + step.at).into()).await;
        let soak = soak.clone();
        running.push(tokio::spawn(async move { actions::run(&soak, &step).await }));
    }
    tokio::time::sleep_until((start + soak.journal.length).into()).await;
    if tokio::time::timeout(STEP_DRAIN, futures::future::join_all(running)).await.is_err() {
        println!("steps still running {STEP_DRAIN:?} after the schedule ended: going quiet regardless");
    }
}

/// No more faults, every replica running: convergence, idleness, then the whole catalog again
/// for the memory (compared in the world it was first measured in).
async fn quiet(soak: &Soak, figures: &mut Figures) {
    soak.env.emulator().instruments.faults.clear();
    soak.fleet.start_missing();
    println!("quiet from +{:.1}s", soak.journal.now().as_secs_f64());
    figures.quiet_convergence = converge(soak, "convergence after quiet").await;
    settle(soak).await;
    figures.idle_requests = idle_requests(soak, figures).await;
    apply_world(soak).await;
    figures.restored_convergence = converge(soak, "convergence of the whole catalog restored").await;
    settle(soak).await;
    figures.memory_end = leader_memory(soak).await;
    judge_memory(soak, figures);
}

/// The kubelet: restarts what exited, and judges each exit.
async fn kubelet(soak: Arc<Soak>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        let ended = soak.fleet.tick();
        checks::judge_exits(&soak, &ended);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// The continuous checks, until stopped; returns the traffic seen (for the table).
async fn monitor(soak: Arc<Soak>, origin: Instant, mut stopped: watch::Receiver<bool>) -> Traffic {
    let mut traffic = Traffic::new(origin);
    let (mut credentials, mut volumes, mut orphans) = (Credentials::default(), Volumes::default(), Orphans::default());
    let mut round: u64 = 0;
    loop {
        traffic.check(&soak);
        credentials.check(&soak).await;
        volumes.check(&soak).await;
        if round.is_multiple_of(5) {
            orphans.check(&soak).await;
        }
        if *stopped.borrow() {
            return traffic;
        }
        round += 1;
        tokio::select! {
            _ = tokio::time::sleep(CHECK_PERIOD) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Starts replica a, waits for it to lead, then starts the standby.
async fn start_fleet(soak: &Soak) {
    soak.fleet.start(IDENTITIES[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while soak.fleet.leader().await.as_deref() != Some(IDENTITIES[0]) {
        assert!(Instant::now() < deadline, "operator a did not take the lease within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    soak.fleet.start(IDENTITIES[1]);
}

/// Applies the whole catalog.
async fn apply_world(soak: &Soak) {
    let world = World::full();
    let ns = &soak.env.namespace;
    let mut manifests = Vec::new();
    for plan in CLUSTERS {
        if let Some(Some(spec)) = world.clusters.get(plan.name) {
            manifests.push(world::cluster_manifest(plan, spec, ns));
        }
    }
    for plan in APP_NAMESPACES {
        if let Some(Some(spec)) = world.app_namespaces.get(plan.name) {
            manifests.push(world::app_namespace_manifest(plan, spec, ns));
        }
    }
    for manifest in manifests {
        soak.env.apply(&manifest.to_string()).await;
    }
}

/// Waits until every Prism object reports what its spec implies, nothing lingers in deletion and
/// nothing is orphaned, up to
/// [`CONVERGENCE_BOUND`]; records violations of invariants 1 and 2 if it does not come to that.
async fn converge(soak: &Soak, what: &str) -> Option<Duration> {
    let started = Instant::now();
    let deadline = started + CONVERGENCE_BOUND;
    let (mut off, mut orphaned, mut judged) = (Vec::new(), Vec::new(), (0, 0));
    while Instant::now() < deadline {
        if let Ok(children) = checks::children(&soak.env.client, &soak.env.namespace).await
            && let Ok(unconverged) = expect::unconverged(&soak.env.client, &soak.env.namespace, &children).await
        {
            judged = (unconverged.objects as u64, children.len() as u64);
            off = unconverged.off;
            orphaned = children.into_iter().filter_map(|c| c.orphaned).collect();
            if off.is_empty() && orphaned.is_empty() && soak.fleet.all_running() {
                let took = started.elapsed();
                println!("{what}: {:.1} s", took.as_secs_f64());
                soak.violations.checked(Invariant::Converged, judged.0);
                soak.violations.checked(Invariant::NoOrphan, judged.1);
                return Some(took);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    soak.violations.checked(Invariant::Converged, judged.0);
    soak.violations.checked(Invariant::NoOrphan, judged.1);
    if !off.is_empty() {
        let message = format!("{what}: not converged within {CONVERGENCE_BOUND:?}: {}", off.join("; "));
        soak.violations.found(&soak.journal, Invariant::Converged, message, off);
    }
    if !orphaned.is_empty() {
        let message = format!("{what}: orphans left after {CONVERGENCE_BOUND:?}: {}", orphaned.join("; "));
        soak.violations.found(&soak.journal, Invariant::NoOrphan, message, orphaned);
    }
    None
}

/// Waits until the operators have written nothing (Lease renewals aside) for two seconds, up to
/// thirty: the last status writes of a convergence land after the phases read right.
async fn settle(soak: &Soak) {
    let writes = || {
        let snapshot = soak.env.emulator().instruments.requests.snapshot();
        snapshot
            .count_where(|k| k.is_write() && k.resource != "leases" && k.user_agent.starts_with(fleet::AGENT_PREFIX))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut last, mut quiet_since) = (writes(), Instant::now());
    while quiet_since.elapsed() < Duration::from_secs(2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = writes();
        if now != last {
            (last, quiet_since) = (now, Instant::now());
        }
    }
}

/// Invariant 6's second half: once converged, the operators send nothing but Lease renewals for
/// [`IDLE_WINDOW`]. Returns what they sent besides (each `identity verb uri (code)`).
///
/// A window is measured again (up to [`IDLE_WINDOWS`] in all) when a process started in it (a
/// new leader reads the world) or when all it holds is watches resuming, with the lists that
/// re-sync them: a watch that failed during the last faults waits out its backoff (up to 30 s,
/// as client-go's reflectors do) before it resumes once, so the operator was still recovering.
/// A watch that keeps resuming, window after window, is reported.
async fn idle_requests(soak: &Soak, figures: &mut Figures) -> Vec<String> {
    let requests = &soak.env.emulator().instruments.requests;
    let mut sent = Vec::new();
    for _ in 0..IDLE_WINDOWS {
        warm_leader(soak).await;
        let (from, starts) = (requests.snapshot().log.last().map_or(0, |r| r.seq), soak.fleet.starts());
        tokio::time::sleep(IDLE_WINDOW).await;
        let window: Vec<_> = requests
            .log_after(from)
            .into_iter()
            .filter(|r| r.info.user_agent.starts_with(fleet::AGENT_PREFIX) && r.info.resource != "leases")
            .collect();
        sent = window.iter().map(|r| format!("{} {} {} ({})", r.info.user_agent, r.info.verb, r.uri, r.code)).collect();
        if soak.fleet.starts() != starts {
            println!("a process started during the idle window: measuring it again");
            settle(soak).await;
            continue;
        }
        let resuming = !window.is_empty() && window.iter().all(|r| ["watch", "list"].contains(&r.info.verb.as_str()));
        if !resuming {
            break;
        }
        let watches = window.iter().filter(|r| r.info.verb == "watch").count();
        figures.resumed_watches += watches;
        println!("{watches} watches resumed during the idle window (backing off since the faults): measuring it again");
    }
    soak.violations.checked(Invariant::BoundedRate, 1);
    if !sent.is_empty() {
        let what = format!("{} requests in {IDLE_WINDOW:?} after converging: {}", sent.len(), sent.join("; "));
        soak.violations.found(&soak.journal, Invariant::BoundedRate, what, Vec::new());
    }
    sent
}

/// Waits until the leader's process is [`LEADER_WARM_UP`] old, then for the writes to settle.
async fn warm_leader(soak: &Soak) {
    let Some((leader, _, age)) = leader_memory(soak).await else { return };
    if age < LEADER_WARM_UP {
        println!("leader {leader} started {:.1}s ago: the idle window waits for it to warm up", age.as_secs_f64());
        tokio::time::sleep(LEADER_WARM_UP - age).await;
        settle(soak).await;
    }
}

/// The leader's identity, resident memory and process age.
async fn leader_memory(soak: &Soak) -> Option<(String, u64, Duration)> {
    let leader = soak.fleet.leader().await?;
    let (bytes, age) = soak.fleet.memory(&leader)?;
    Some((leader, bytes, age))
}

/// Invariant 8.
fn judge_memory(soak: &Soak, figures: &Figures) {
    let (Some((_, first)), Some((who, end, age))) = (&figures.memory_first, &figures.memory_end) else {
        soak.violations.checked(Invariant::NoLeak, 0);
        let what = "the leader's memory could not be read at the first convergence or at the end".to_string();
        soak.violations.found(&soak.journal, Invariant::NoLeak, what, Vec::new());
        return;
    };
    soak.violations.checked(Invariant::NoLeak, 1);
    if *end as f64 > *first as f64 * LEAK_FACTOR {
        let what = format!(
            "leader {who} (up {:.0} s) holds {} at the end, more than {LEAK_FACTOR} x {} after the first convergence",
            age.as_secs_f64(),
            table::mib(*end),
            table::mib(*first)
        );
        soak.violations.found(&soak.journal, Invariant::NoLeak, what, vec![format!("operator {who}")]);
    }
}

/// Copies the operators' logs where they outlive the test: `<target>/tmp/soak-<seed>/`.
fn keep_logs(soak: &Soak) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{}", soak.journal.seed));
    let _ = std::fs::create_dir_all(&dir);
    for log in soak.fleet.logs() {
        if let Some(name) = log.file_name() {
            let _ = std::fs::copy(&log, dir.join(name));
        }
    }
    dir
}
