//! The operator processes and what Kubernetes would do for them: two replicas with leader
//! election, each started again when it exits (the kubelet's restart, after a short delay), and
//! the record of why each process ended.
//!
//! A process may end because the schedule killed it (kill -9 or SIGTERM), because it lost the
//! lease (on this loaded machine a renewal can miss the harness's 2 s deadline; exiting at once is
//! the design, so that no two write) or because it crashed. Only the last is a violation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;

use crate::harness::{Env, Operator};

/// The identities of the two replicas.
pub const IDENTITIES: [&str; 2] = ["a", "b"];
/// The Lease the harness's operators share.
const LEASE: &str = "prism-operator-leader";
/// How long the kubelet waits before starting a process that exited by itself.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// How long a SIGTERMed process may take before it is killed (Kubernetes' default grace period).
const GRACE_PERIOD: Duration = Duration::from_secs(30);
/// The client limits the operators run with (`--qps`, `--burst`; their defaults, made explicit
/// because the request-rate bound is derived from them).
pub const QPS: u64 = 20;
pub const BURST: u64 = 30;

/// The user agent of an identity's requests (see `Env::tagged_kubeconfig`): the emulator counts
/// and faults each process by it.
pub fn agent(identity: &str) -> String {
    format!("soak-operator-{identity}")
}

/// The user-agent prefix every operator process shares, for fault rules.
pub const AGENT_PREFIX: &str = "soak-operator-";

/// Why a process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// kill -9 by the schedule.
    Killed,
    /// SIGTERM by the schedule; the exit code.
    Terminated(Option<i32>),
    /// It exited after losing the lease, as designed.
    LostLease,
    /// Any other exit.
    Crashed(Option<i32>),
}

/// A process that ended, for the report and the crash invariant.
#[derive(Clone, Debug)]
pub struct Ended {
    pub identity: &'static str,
    pub started: Instant,
    pub ended: Instant,
    pub end: End,
    pub log: PathBuf,
}

/// What the schedule asked of a running process before it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Kill,
    Terminate(Instant),
}

struct Running {
    operator: Operator,
    started: Instant,
    request: Option<Request>,
}

#[derive(Default)]
struct Slot {
    running: Option<Running>,
    /// When to start the identity again, while it is not running.
    restart_at: Option<Instant>,
    /// Start times of every process of this identity, oldest first.
    starts: Vec<Instant>,
}

/// The two replicas.
pub struct Fleet {
    env: Arc<Env>,
    kubeconfigs: BTreeMap<&'static str, String>,
    slots: Mutex<BTreeMap<&'static str, Slot>>,
    ended: Mutex<Vec<Ended>>,
}

impl Fleet {
    /// Serves a tagged port per identity; starts nothing yet.
    pub async fn new(env: Arc<Env>) -> Fleet {
        let mut kubeconfigs = BTreeMap::new();
        for identity in IDENTITIES {
            let path = env.tagged_kubeconfig(&agent(identity)).await;
            kubeconfigs.insert(identity, path.display().to_string());
        }
        let slots = IDENTITIES.iter().map(|i| (*i, Slot::default())).collect();
        Fleet { env, kubeconfigs, slots: Mutex::new(slots), ended: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Slot>> {
        self.slots.lock().expect("fleet")
    }

    /// Starts `identity` now.
    pub fn start(&self, identity: &'static str) {
        let mut slots = self.lock();
        let slot = slots.get_mut(identity).expect("a known identity");
        self.start_in(identity, slot);
    }

    fn start_in(&self, identity: &'static str, slot: &mut Slot) {
        let (qps, burst) = (QPS.to_string(), BURST.to_string());
        let args = ["--kubeconfig", self.kubeconfigs[identity].as_str(), "--qps", &qps, "--burst", &burst];
        let operator = self.env.spawn_operator(identity, &args);
        let started = Instant::now();
        slot.starts.push(started);
        slot.running = Some(Running { operator, started, request: None });
        slot.restart_at = None;
    }

    /// The identity holding the Lease, if it can be read.
    pub async fn leader(&self) -> Option<String> {
        self.env.api::<Lease>().get_opt(LEASE).await.ok().flatten()?.spec?.holder_identity
    }

    /// Kills the leader's process (kill -9) and has it started again after `restart_after`.
    /// Returns what was done, or why nothing was.
    pub async fn kill_leader(&self, restart_after: Duration) -> Result<String, String> {
        let (leader, pid) = self.ask_leader(Request::Kill, Some(restart_after)).await?;
        Ok(format!("killed {leader} (pid {})", pid.map_or("?".into(), |p| p.to_string())))
    }

    /// Sends SIGTERM to the leader's process; it is started again once it has exited.
    pub async fn terminate_leader(&self) -> Result<String, String> {
        let (leader, pid) = self.ask_leader(Request::Terminate(Instant::now()), None).await?;
        let pid = pid.ok_or_else(|| format!("leader {leader} has already exited"))?;
        let sent = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        match sent {
            Ok(status) if status.success() => Ok(format!("SIGTERM to {leader} (pid {pid})")),
            other => Err(format!("SIGTERM to {leader} (pid {pid}) failed: {other:?}")),
        }
    }

    /// Asks the leader's process to end (SIGKILL is sent at once; the exit is collected by the
    /// next tick), to be started again after `restart_after` (else once it has exited). Returns
    /// the leader and its pid, or why there is none to ask.
    async fn ask_leader(
        &self,
        request: Request,
        restart_after: Option<Duration>,
    ) -> Result<(String, Option<u32>), String> {
        let leader = self.leader().await.ok_or("no leader")?;
        let mut slots = self.lock();
        let slot = slots.get_mut(leader.as_str()).ok_or_else(|| format!("unknown leader {leader:?}"))?;
        let not_running = || format!("leader {leader} is not running (its lease has not expired yet)");
        let running = slot.running.as_mut().filter(|r| r.request.is_none()).ok_or_else(not_running)?;
        running.request = Some(request);
        if request == Request::Kill {
            let _ = running.operator.child.start_kill();
        }
        let pid = running.operator.child.id();
        slot.restart_at = restart_after.map(|after| Instant::now() + after);
        Ok((leader, pid))
    }

    /// The kubelet's round: collects exits, kills what outlived its grace period, starts what is
    /// due. Returns the processes that ended in this round.
    pub fn tick(&self) -> Vec<Ended> {
        let now = Instant::now();
        let mut ended = Vec::new();
        let mut slots = self.lock();
        for (identity, slot) in slots.iter_mut() {
            if let Some(done) = collect_exit(identity, slot, now) {
                ended.push(done);
            }
            if slot.running.is_none() && slot.restart_at.is_some_and(|at| at <= now) {
                self.start_in(identity, slot);
            }
        }
        drop(slots);
        self.ended.lock().expect("ended").extend(ended.iter().cloned());
        ended
    }

    /// Starts at once every identity that is not running (the quiet period begins).
    pub fn start_missing(&self) {
        let now = Instant::now();
        let mut slots = self.lock();
        for slot in slots.values_mut().filter(|s| s.running.is_none()) {
            slot.restart_at = Some(now);
        }
        drop(slots);
        self.tick();
    }

    /// Whether every identity has a process that has not been asked to end.
    pub fn all_running(&self) -> bool {
        self.lock().values().all(|s| s.running.as_ref().is_some_and(|r| r.request.is_none()))
    }

    /// The resident memory of `identity`'s process, in bytes, and how long it has run.
    pub fn memory(&self, identity: &str) -> Option<(u64, Duration)> {
        let slots = self.lock();
        let running = slots.get(identity)?.running.as_ref()?;
        let pid = running.operator.child.id()?;
        Some((resident_bytes(pid)?, running.started.elapsed()))
    }

    /// Which process of which identity ran at `at`: the identity and the start of that process.
    pub fn process_at(&self, identity: &str, at: Instant) -> Option<Instant> {
        let slots = self.lock();
        slots.get(identity)?.starts.iter().rev().find(|s| **s <= at).copied()
    }

    /// How many processes were started so far.
    pub fn starts(&self) -> usize {
        self.lock().values().map(|s| s.starts.len()).sum()
    }

    /// Every process that ended so far.
    pub fn ended(&self) -> Vec<Ended> {
        self.ended.lock().expect("ended").clone()
    }

    /// The logs of every process, ended or running.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = self.ended().into_iter().map(|e| e.log).collect();
        logs.extend(self.lock().values().filter_map(|s| s.running.as_ref()).map(|r| r.operator.log.clone()));
        logs
    }

    /// Kills every process (the end of the soak).
    pub fn stop(&self) {
        let mut slots = self.lock();
        for slot in slots.values_mut() {
            slot.restart_at = None;
            if let Some(running) = slot.running.as_mut() {
                running.request = Some(Request::Kill);
                let _ = running.operator.child.start_kill();
            }
        }
    }
}

/// If `slot`'s process has exited, why; kills a SIGTERMed one past its grace period.
fn collect_exit(identity: &'static str, slot: &mut Slot, now: Instant) -> Option<Ended> {
    let running = slot.running.as_mut()?;
    let status = match running.operator.child.try_wait() {
        Ok(Some(status)) => status,
        Ok(None) => {
            if let Some(Request::Terminate(at)) = running.request
                && now.duration_since(at) > GRACE_PERIOD
            {
                let _ = running.operator.child.start_kill();
            }
            return None;
        }
        Err(_) => return None,
    };
    let running = slot.running.take()?;
    let log = running.operator.log.clone();
    let end = match running.request {
        Some(Request::Kill) => End::Killed,
        Some(Request::Terminate(_)) => End::Terminated(status.code()),
        None => {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("lost the leader lease") { End::LostLease } else { End::Crashed(status.code()) }
        }
    };
    if slot.restart_at.is_none() {
        slot.restart_at = Some(now + RESTART_DELAY);
    }
    Some(Ended { identity, started: running.started, ended: now, end, log })
}

/// VmRSS of a process, from /proc.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
