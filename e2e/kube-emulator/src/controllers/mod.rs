//! The emulated control plane (kube-controller-manager's share of the cluster): garbage
//! collection, ClusterRole aggregation and, when the simulation is switched on, workload
//! simulation. They run as
//! background tasks fed by the store's change stream and write through the normal write
//! pipeline, so their effects are asynchronous and visible to watchers exactly like a real
//! controller's.
//!
//! [`ControlPlane::start`] starts them (the `Emulator` does when it is built) and dropping the
//! [`ControlPlane`] stops them; [`ControlPlane::settle`] waits until they have caught up with
//! every change, for deterministic tests.

mod aggregation;
mod conventions;
mod gc;
mod objects;
mod replicas;
mod workloads;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::instruments::simulation::Simulation;
use crate::ops::Cluster;

pub use conventions::{NEVER_READY_ANNOTATION, READY_AFTER_ANNOTATION};
pub use replicas::LOAD_ANNOTATION;

/// The running controllers of one cluster; their tasks stop when it is dropped.
#[derive(Debug)]
pub struct ControlPlane {
    tasks: Vec<JoinHandle<()>>,
    /// The resourceVersion up to which each controller has handled every change.
    progress: Vec<watch::Receiver<u64>>,
}

impl ControlPlane {
    /// Starts the garbage collector, the ClusterRole aggregation and the workload simulation
    /// (which acts while `simulation` is enabled) on the current tokio runtime; panics outside one.
    pub fn start(cluster: &Arc<Cluster>, simulation: Arc<Simulation>) -> Self {
        let (gc_tx, gc_rx) = watch::channel(0);
        let (wl_tx, wl_rx) = watch::channel(0);
        let (agg_tx, agg_rx) = watch::channel(0);
        let tasks = vec![
            tokio::spawn(gc::run(Arc::downgrade(cluster), gc_tx)),
            tokio::spawn(workloads::run(Arc::downgrade(cluster), simulation, wl_tx)),
            tokio::spawn(aggregation::run(Arc::downgrade(cluster), agg_tx)),
        ];
        Self { tasks, progress: vec![gc_rx, wl_rx, agg_rx] }
    }

    /// Waits until the controllers have handled every change of `cluster` so far, including the
    /// changes they made themselves (at most 30 s). Timers of simulated readiness are not waited
    /// for.
    pub async fn settle(&self, cluster: &Cluster) {
        let mut progress = self.progress.clone();
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
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
