//! Garbage collection by owner references, as kube-controller-manager's garbage collector does it.
//!
//! Owners are matched by uid. A dependent whose owners are all gone (deleted, or never existed) is
//! deleted (Background, or per its own `orphan`/`foregroundDeletion` finalizer). An owner deleted
//! with `propagationPolicy: Foreground` carries the `foregroundDeletion` finalizer: its
//! dependents are deleted first, and the finalizer goes once no dependent with
//! `blockOwnerDeletion: true` is left. An owner deleted with `Orphan` carries the `orphan`
//! finalizer: the references to it are removed from its dependents, then the finalizer goes.
//! Dependents that still have a live owner only lose their references to absent owners.
//!
//! The work is asynchronous (a background task fed by the store's change stream) like the real
//! one, and every write goes through the normal write pipeline, so dependents' own finalizers are
//! respected and watchers see the same events as on a real cluster.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use super::objects::{ObjKey, live, patch_metadata, snapshot_all, target};
use crate::errors::ApiResult;
use crate::meta::{finalizers, is_deleting, meta_str};
use crate::ops::{Cluster, WriteOptions};
use crate::registry::ResourceType;
use crate::store::{Change, EventType};

/// The field manager / actor name of the collector's writes.
pub const MANAGER: &str = "generic-garbage-collector";
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
pub const ORPHAN_FINALIZER: &str = "orphan";
/// Pause before retrying work that hit a conflict.
const RETRY_DELAY: Duration = Duration::from_millis(20);

/// How an owner reference resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// No object with that uid: deleted, or it never existed.
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
    /// The kind is not served (or a cluster-scoped dependent names a namespaced owner): the real
    /// collector leaves such references alone.
    Unresolvable,
}

#[derive(Debug, Default)]
struct Gc {
    /// Owner uid -> dependents referring to it.
    dependents: HashMap<String, HashSet<ObjKey>>,
    /// Dependent -> the owner uids it was indexed under.
    owners_of: HashMap<ObjKey, Vec<String>>,
    /// Owners in foreground deletion, by uid.
    waiting: HashMap<String, ObjKey>,
    queue: VecDeque<ObjKey>,
    queued: HashSet<ObjKey>,
    retry: HashSet<ObjKey>,
    last_rv: u64,
}

/// The collector's task: runs until the cluster is dropped.
pub(super) async fn run(cluster: Weak<Cluster>, progress: watch::Sender<u64>) {
    let mut gc = Gc::default();
    let Some(mut rx) = gc.scan(&cluster) else { return };
    loop {
        gc.work(&cluster);
        if gc.retry.is_empty() {
            progress.send_replace(gc.last_rv);
        }
        tokio::select! {
            r = rx.recv() => match r {
                Ok(change) => {
                    gc.on_change(&change);
                    if !gc.drain(&mut rx) {
                        let Some(fresh) = gc.scan(&cluster) else { return };
                        rx = fresh;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let Some(fresh) = gc.scan(&cluster) else { return };
                    rx = fresh;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tokio::time::sleep(RETRY_DELAY), if !gc.retry.is_empty() => {
                for key in std::mem::take(&mut gc.retry) {
                    gc.enqueue(key);
                }
            }
        }
    }
}

impl Gc {
    /// Rebuilds the index from the store (at start, and after falling behind the change stream).
    /// Subscribing under the lock guarantees no change is missed between the scan and the stream.
    fn scan(&mut self, cluster: &Weak<Cluster>) -> Option<broadcast::Receiver<Arc<Change>>> {
        let c = cluster.upgrade()?;
        let (rx, all, rv) = {
            let st = c.store.lock();
            (c.store.subscribe(), snapshot_all(&st), st.rv)
        };
        *self = Gc { retry: std::mem::take(&mut self.retry), ..Gc::default() };
        self.last_rv = rv;
        for (storage, objs) in all {
            for obj in objs {
                self.observe(&ObjKey::of_object(&storage, &obj), &obj, &[]);
            }
        }
        Some(rx)
    }

    /// Handles every change already waiting; false when the stream fell behind.
    fn drain(&mut self, rx: &mut broadcast::Receiver<Arc<Change>>) -> bool {
        loop {
            match rx.try_recv() {
                Ok(change) => self.on_change(&change),
                Err(broadcast::error::TryRecvError::Lagged(_)) => return false,
                Err(_) => return true,
            }
        }
    }

    fn on_change(&mut self, change: &Change) {
        self.last_rv = self.last_rv.max(change.rv);
        let key = ObjKey::of(change);
        let old_owners = self.unindex(&key);
        match change.kind {
            EventType::Deleted => self.forget(&change.object, &old_owners),
            _ => self.observe(&key, &change.object, &old_owners),
        }
    }

    /// An object is gone: its dependents lose an owner, its owners may stop waiting.
    fn forget(&mut self, obj: &Value, old_owners: &[String]) {
        let uid = meta_str(obj, "uid");
        self.waiting.remove(uid);
        let deps: Vec<ObjKey> = self.dependents.get(uid).map(|d| d.iter().cloned().collect()).unwrap_or_default();
        for d in deps {
            self.enqueue(d);
        }
        self.wake_waiting_owners(old_owners);
    }

    /// An object was added or changed: index its owner references and queue what it affects.
    fn observe(&mut self, key: &ObjKey, obj: &Value, old_owners: &[String]) {
        let owners = owner_uids(obj);
        if !owners.is_empty() {
            for o in &owners {
                self.dependents.entry(o.clone()).or_default().insert(key.clone());
            }
            self.owners_of.insert(key.clone(), owners.clone());
            self.enqueue(key.clone());
        }
        self.wake_waiting_owners(old_owners);
        self.wake_waiting_owners(&owners);
        let uid = meta_str(obj, "uid").to_string();
        let fins = finalizers(obj);
        if is_deleting(obj) && fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
            self.waiting.insert(uid, key.clone());
            self.enqueue(key.clone());
        } else {
            self.waiting.remove(&uid);
        }
        if is_deleting(obj) && fins.iter().any(|f| f == ORPHAN_FINALIZER) {
            self.enqueue(key.clone());
        }
    }

    fn unindex(&mut self, key: &ObjKey) -> Vec<String> {
        let owners = self.owners_of.remove(key).unwrap_or_default();
        for o in &owners {
            if let Some(set) = self.dependents.get_mut(o) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(o);
                }
            }
        }
        owners
    }

    fn wake_waiting_owners(&mut self, owners: &[String]) {
        let keys: Vec<ObjKey> = owners.iter().filter_map(|o| self.waiting.get(o).cloned()).collect();
        for k in keys {
            self.enqueue(k);
        }
    }

    fn enqueue(&mut self, key: ObjKey) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    fn work(&mut self, cluster: &Weak<Cluster>) {
        let Some(c) = cluster.upgrade() else { return };
        while let Some(key) = self.queue.pop_front() {
            self.queued.remove(&key);
            if let Err(e) = self.process(&c, &key) {
                if e.code == 409 || e.code >= 500 {
                    self.retry.insert(key);
                } else {
                    tracing::warn!(error = %e, object = ?key, "garbage collector gave up on an object");
                }
            }
        }
    }

    fn process(&mut self, c: &Cluster, key: &ObjKey) -> ApiResult<()> {
        let Some((obj, rt)) = live(c, key) else { return Ok(()) };
        if is_deleting(&obj) {
            let fins = finalizers(&obj);
            if fins.iter().any(|f| f == ORPHAN_FINALIZER) {
                return self.orphan_dependents(c, &rt, &obj);
            }
            if fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
                return self.delete_dependents(c, &rt, &obj);
            }
            return Ok(());
        }
        if owner_refs(&obj).is_empty() {
            return Ok(());
        }
        self.check_owners(c, &rt, &obj)
    }

    /// Live dependents of `owner` that still refer to it, with their reference.
    fn live_dependents(&self, c: &Cluster, owner_uid: &str) -> Vec<(ObjKey, Arc<Value>, Arc<ResourceType>, Value)> {
        let keys: Vec<ObjKey> = self.dependents.get(owner_uid).map(|d| d.iter().cloned().collect()).unwrap_or_default();
        keys.into_iter()
            .filter_map(|k| {
                let (obj, rt) = live(c, &k)?;
                let r =
                    owner_refs(&obj).into_iter().find(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))?;
                Some((k, obj, rt, r))
            })
            .collect()
    }

    /// Foreground deletion: dependents go first; the owner's finalizer goes once no dependent
    /// that blocks owner deletion is left.
    fn delete_dependents(&mut self, c: &Cluster, rt: &Arc<ResourceType>, owner: &Value) -> ApiResult<()> {
        let uid = meta_str(owner, "uid").to_string();
        let mut blocking = 0;
        for (key, dep, _, r) in self.live_dependents(c, &uid) {
            if r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                blocking += 1;
            }
            if !is_deleting(&dep) {
                self.enqueue(key);
            }
        }
        if blocking > 0 {
            return Ok(());
        }
        remove_finalizer(c, rt, owner, FOREGROUND_FINALIZER)
    }

    /// Orphan deletion: the references to the owner are removed from its dependents, then the
    /// owner's finalizer.
    fn orphan_dependents(&mut self, c: &Cluster, rt: &Arc<ResourceType>, owner: &Value) -> ApiResult<()> {
        let uid = meta_str(owner, "uid").to_string();
        for (_, dep, dep_rt, _) in self.live_dependents(c, &uid) {
            let keep: Vec<Value> = owner_refs(&dep)
                .into_iter()
                .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()))
                .collect();
            set_owner_refs(c, &dep_rt, &dep, keep)?;
        }
        remove_finalizer(c, rt, owner, ORPHAN_FINALIZER)
    }

    /// A dependent's owners decide its fate (the real collector's `attemptToDeleteItem`).
    fn check_owners(&mut self, c: &Cluster, rt: &Arc<ResourceType>, obj: &Value) -> ApiResult<()> {
        let refs = owner_refs(obj);
        let states: Vec<OwnerState> = refs.iter().map(|r| resolve_owner(c, rt, obj, r)).collect();
        let alive = |s: &OwnerState| matches!(s, OwnerState::Solid | OwnerState::Unresolvable);
        if states.iter().any(alive) {
            if states.iter().all(alive) {
                return Ok(());
            }
            // Keep the live owners; references to absent or waiting owners are removed.
            let keep = refs.into_iter().zip(&states).filter(|(_, s)| alive(s)).map(|(r, _)| r).collect();
            return set_owner_refs(c, rt, obj, keep);
        }
        let uid = meta_str(obj, "uid");
        let has_dependents = self.dependents.get(uid).is_some_and(|d| !d.is_empty());
        let policy =
            if states.contains(&OwnerState::Waiting) && has_dependents { "Foreground" } else { own_policy(obj) };
        delete(c, rt, obj, policy)
    }
}

/// The owner's state, looked up by kind and name and matched by uid.
fn resolve_owner(c: &Cluster, dep_rt: &ResourceType, dep: &Value, r: &Value) -> OwnerState {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    let group = s("apiVersion").rsplit_once('/').map_or("", |(g, _)| g);
    let st = c.store.lock();
    let Some(owner_rt) = st.registry.by_kind(group, s("kind")) else { return OwnerState::Unresolvable };
    if owner_rt.namespaced && !dep_rt.namespaced {
        return OwnerState::Unresolvable;
    }
    let ns = if owner_rt.namespaced { meta_str(dep, "namespace") } else { "" };
    match st.get(owner_rt.key(), ns, s("name")) {
        Some(o) if meta_str(&o, "uid") == s("uid") => {
            let waiting = is_deleting(&o) && finalizers(&o).iter().any(|f| f == FOREGROUND_FINALIZER);
            if waiting { OwnerState::Waiting } else { OwnerState::Solid }
        }
        _ => OwnerState::Dangling,
    }
}

/// The propagation policy a dependent's own finalizers ask for.
fn own_policy(obj: &Value) -> &'static str {
    let fins = finalizers(obj);
    if fins.iter().any(|f| f == ORPHAN_FINALIZER) {
        "Orphan"
    } else if fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
        "Foreground"
    } else {
        "Background"
    }
}

fn delete(c: &Cluster, rt: &Arc<ResourceType>, obj: &Value, policy: &str) -> ApiResult<()> {
    let key = ObjKey::of_object(&rt.storage, obj);
    // The uid precondition keeps a recreated object with the same name safe.
    let opts = json!({"propagationPolicy": policy, "preconditions": {"uid": meta_str(obj, "uid")}});
    match c.delete(&target(rt, &key, None), &opts, &WriteOptions::manager(MANAGER)) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 || (e.code == 409 && e.message.contains("Precondition failed: UID")) => Ok(()),
        Err(e) => Err(e),
    }
}

fn remove_finalizer(c: &Cluster, rt: &Arc<ResourceType>, obj: &Value, finalizer: &str) -> ApiResult<()> {
    let rest: Vec<String> = finalizers(obj).into_iter().filter(|f| f != finalizer).collect();
    let value = if rest.is_empty() { Value::Null } else { json!(rest) };
    ignore_gone(patch_metadata(c, rt, obj, json!({"finalizers": value}), MANAGER))
}

fn set_owner_refs(c: &Cluster, rt: &Arc<ResourceType>, obj: &Value, refs: Vec<Value>) -> ApiResult<()> {
    let value = if refs.is_empty() { Value::Null } else { Value::Array(refs) };
    ignore_gone(patch_metadata(c, rt, obj, json!({"ownerReferences": value}), MANAGER))
}

fn ignore_gone(r: ApiResult<()>) -> ApiResult<()> {
    match r {
        Err(e) if e.code == 404 => Ok(()),
        other => other,
    }
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    let Some(refs) = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array) else { return Vec::new() };
    refs.iter().filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from)).collect()
}
