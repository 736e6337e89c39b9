//! The workload simulation switch: whether the control plane makes Deployments and StatefulSets
//! ready as kubelets would (see `controllers::workloads`), and after how long.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

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
