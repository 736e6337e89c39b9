//! The emulated control plane (kube-controller-manager's share of the cluster): garbage
//! collection and, when switched on, workload simulation. Both run as background tasks fed by
//! the store's change stream and write through the normal write pipeline, so their effects are
//! asynchronous and visible to watchers exactly like a real controller's.
//!
//! They start on the first API request (see `instruments`) or with [`start`]; [`settle`] waits
//! until they have caught up with every change, for deterministic tests.

pub mod gc;
mod objects;
pub mod workloads;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ops::Cluster;

pub use workloads::{NEVER_READY_ANNOTATION, READY_AFTER_ANNOTATION};

/// Default delay before simulated workloads report ready.
pub const DEFAULT_READY_DELAY: Duration = Duration::from_millis(200);

/// The workload simulation switch (off by default) and its default readiness delay.
#[derive(Debug)]
pub struct Simulation {
    enabled: AtomicBool,
    delay_ms: AtomicU64,
    /// Tells the workload controller to look at every object again when the switch moves.
    changed: watch::Sender<u64>,
}

impl Default for Simulation {
    fn default() -> Self {
        Self {
            enabled: AtomicBool::new(false),
            delay_ms: AtomicU64::new(DEFAULT_READY_DELAY.as_millis() as u64),
            changed: watch::channel(0).0,
        }
    }
}

impl Simulation {
    /// Deployments and StatefulSets become ready `ready_delay` after each new generation.
    pub fn enable(&self, ready_delay: Duration) {
        self.delay_ms.store(ready_delay.as_millis() as u64, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Relaxed);
        self.changed.send_modify(|n| *n += 1);
    }

    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        self.changed.send_modify(|n| *n += 1);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn ready_delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// The running controllers of one cluster; their tasks stop when it is dropped.
#[derive(Debug)]
pub struct ControlPlane {
    tasks: Vec<JoinHandle<()>>,
    /// The resourceVersion up to which each controller has handled every change.
    progress: Vec<watch::Receiver<u64>>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the controllers of `cluster` once (later calls do nothing). Needs a tokio runtime;
/// outside one it does nothing.
pub fn start(cluster: &Arc<Cluster>) {
    if cluster.instruments.control_plane.get().is_some() || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    cluster.instruments.control_plane.get_or_init(|| spawn(cluster));
}

fn spawn(cluster: &Arc<Cluster>) -> ControlPlane {
    let (gc_tx, gc_rx) = watch::channel(0);
    let (wl_tx, wl_rx) = watch::channel(0);
    let tasks = vec![
        tokio::spawn(gc::run(Arc::downgrade(cluster), gc_tx)),
        tokio::spawn(workloads::run(Arc::downgrade(cluster), wl_tx)),
    ];
    ControlPlane { tasks, progress: vec![gc_rx, wl_rx] }
}

/// Waits until the controllers have handled every change so far, including the changes they
/// made themselves (at most 30 s). Timers of simulated readiness are not waited for.
pub async fn settle(cluster: &Arc<Cluster>) {
    start(cluster);
    let Some(cp) = cluster.instruments.control_plane.get() else { return };
    let mut progress = cp.progress.clone();
    let wait = async {
        loop {
            let target = cluster.store.lock().rv;
            for p in &mut progress {
                if p.wait_for(|rv| *rv >= target).await.is_err() {
                    return;
                }
            }
            if cluster.store.lock().rv == target {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), wait).await.is_err() {
        tracing::warn!("controllers did not settle within 30 s");
    }
}
