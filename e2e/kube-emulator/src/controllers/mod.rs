//! The emulated control plane (kube-controller-manager's share of the cluster): garbage
//! collection and, when switched on, workload simulation. Both run as background tasks fed by
//! the store's change stream and write through the normal write pipeline, so their effects are
//! asynchronous and visible to watchers exactly like a real controller's.
//!
//! They start on the first API request (see `instruments`) or with [`start`]; [`settle`] waits
//! until they have caught up with every change, for deterministic tests.

pub mod gc;
pub mod workloads;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::errors::ApiResult;
use crate::ops::{Cluster, PatchKind, Sub, Target, WriteOptions};
use crate::registry::ResourceType;
use crate::store::Change;

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

/// Identifies a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub storage: String,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    fn of(change: &Change) -> Self {
        Self { storage: change.storage.clone(), namespace: change.namespace.clone(), name: change.name.clone() }
    }

    fn of_object(storage: &str, obj: &Value) -> Self {
        Self {
            storage: storage.to_string(),
            namespace: crate::meta::meta_str(obj, "namespace").to_string(),
            name: crate::meta::meta_str(obj, "name").to_string(),
        }
    }
}

/// The live object and its type.
fn live(cluster: &Cluster, key: &ObjKey) -> Option<(Arc<Value>, Arc<ResourceType>)> {
    let st = cluster.store.lock();
    let obj = st.get(&key.storage, &key.namespace, &key.name)?;
    let rt = st.registry.by_storage(&key.storage)?;
    Some((obj, rt))
}

fn target(rt: &Arc<ResourceType>, key: &ObjKey, sub: Option<Sub>) -> Target {
    Target {
        rt: rt.clone(),
        version: rt.storage_version.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        sub,
    }
}

/// A merge patch of the object's metadata, conditional on the resourceVersion it was read at.
fn patch_metadata(
    cluster: &Cluster,
    rt: &Arc<ResourceType>,
    obj: &Value,
    fields: Value,
    manager: &str,
) -> ApiResult<()> {
    let mut meta = fields;
    meta["resourceVersion"] = obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
    let key = ObjKey::of_object(&rt.storage, obj);
    let patch = serde_json::json!({"metadata": meta});
    cluster.patch(&target(rt, &key, None), PatchKind::Merge, &patch, &WriteOptions::manager(manager)).map(|_| ())
}

/// Storage keys of every servable type (objects of all of them are scanned at start).
fn all_storages(st: &crate::store::State) -> Vec<String> {
    let mut keys: Vec<String> = st.registry.all().iter().map(|t| t.storage.clone()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Objects of every type, for a controller's initial scan (or rescan after it fell behind).
fn snapshot_all(st: &crate::store::State) -> HashMap<String, Vec<Arc<Value>>> {
    all_storages(st)
        .into_iter()
        .map(|s| {
            let objs = st.list(&s, None, None);
            (s, objs)
        })
        .collect()
}
