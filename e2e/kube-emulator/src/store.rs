//! The object store: one lock, one global resourceVersion counter, a bounded event log for
//! watch resume and a broadcast channel for live watchers and in-process controllers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::registry::Registry;

/// How many committed changes the event log keeps for watch resume and continue tokens.
pub const DEFAULT_HISTORY: usize = 10_000;
/// Capacity of the live channel; a watcher that falls this far behind gets a 410.
const BROADCAST_CAPACITY: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change, as recorded in the log and sent to subscribers.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    /// Storage key of the resource type (see `ResourceType::key`).
    pub storage: String,
    pub namespace: String,
    pub name: String,
    pub kind: EventType,
    /// The object after the change (for DELETED: the last state, with the deletion's RV).
    pub object: Arc<Value>,
    /// The object before the change (MODIFIED, DELETED), for selector transitions.
    pub old: Option<Arc<Value>>,
}

type Objects = BTreeMap<(String, String), Arc<Value>>;

/// Everything guarded by the store's lock.
#[derive(Debug)]
pub struct State {
    /// The last resourceVersion handed out.
    pub rv: u64,
    /// Watches and continue tokens from before this RV get 410 Expired.
    pub compacted: u64,
    pub registry: Registry,
    objects: HashMap<String, Objects>,
    log: VecDeque<Arc<Change>>,
    history_limit: usize,
    tx: broadcast::Sender<Arc<Change>>,
}

/// The shared store.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY)
    }
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        // Seeding from wall-clock micros keeps RVs monotonic across restarts of the emulator.
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(1);
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let state = State {
            rv: seed,
            compacted: seed,
            registry: Registry::new(),
            objects: HashMap::new(),
            log: VecDeque::new(),
            history_limit,
            tx: tx.clone(),
        };
        Self { state: Mutex::new(state), tx }
    }

    /// Locks the store. A poisoned lock is recovered: every mutation is a single map write.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live changes from now on (subscribe while holding the lock to not miss any).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

impl State {
    pub fn get(&self, storage: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects.get(storage)?.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    /// Objects of a type, sorted by namespace then name, optionally in one namespace and
    /// strictly after a `(namespace, name)` key (for continue tokens).
    pub fn list(&self, storage: &str, namespace: Option<&str>, after: Option<&(String, String)>) -> Vec<Arc<Value>> {
        self.range(storage, namespace, after).map(|(_, v)| v.clone()).collect()
    }

    /// One page of a list: the first `limit` objects that `keep` keeps, in [`State::list`]'s order,
    /// and whether more follow. It stops at the page's end, as etcd's ranged read does: a paged
    /// list of n objects costs n, not n² / limit.
    pub fn page(
        &self,
        storage: &str,
        namespace: Option<&str>,
        after: Option<&(String, String)>,
        keep: impl Fn(&Value) -> bool,
        limit: usize,
    ) -> (Vec<Arc<Value>>, bool) {
        let mut kept = self.range(storage, namespace, after).map(|(_, v)| v).filter(|v| keep(v));
        let page: Vec<Arc<Value>> = kept.by_ref().take(limit).cloned().collect();
        let more = kept.next().is_some();
        (page, more)
    }

    /// How many objects of a type follow `after` (in one namespace, if given).
    pub fn count_after(&self, storage: &str, namespace: Option<&str>, after: Option<&(String, String)>) -> usize {
        self.range(storage, namespace, after).count()
    }

    fn range<'a>(
        &'a self,
        storage: &str,
        namespace: Option<&'a str>,
        after: Option<&(String, String)>,
    ) -> impl Iterator<Item = (&'a (String, String), &'a Arc<Value>)> + 'a {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        // Keys sort by namespace first, so one namespace is one contiguous range.
        let start = match (after, namespace) {
            (Some(k), _) => Excluded(k.clone()),
            (None, Some(ns)) => Included((ns.to_string(), String::new())),
            (None, None) => Unbounded,
        };
        self.objects
            .get(storage)
            .into_iter()
            .flat_map(move |map| map.range::<(String, String), _>((start.clone(), Unbounded)))
            .skip_while(move |((ns, _), _)| namespace.is_some_and(|n| ns.as_str() < n))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|n| n == ns))
    }

    /// Number of objects in a namespace across all types (namespace deletion).
    pub fn count_in_namespace(&self, namespace: &str) -> usize {
        self.objects
            .values()
            .map(|m| {
                m.range::<(String, String), _>((namespace.to_string(), String::new())..)
                    .take_while(|((ns, _), _)| ns == namespace)
                    .count()
            })
            .sum()
    }
    /// Keys `(storage, name)` of all objects in a namespace.
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (storage, m) in &self.objects {
            for (ns, name) in m.keys() {
                if ns == namespace {
                    out.push((storage.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// Stores `obj` with a fresh resourceVersion and records ADDED or MODIFIED.
    pub fn put(&mut self, storage: &str, namespace: &str, name: &str, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        let old = self
            .objects
            .entry(storage.to_string())
            .or_default()
            .insert((namespace.to_string(), name.to_string()), obj.clone());
        let kind = if old.is_some() { EventType::Modified } else { EventType::Added };
        self.record(Change {
            rv,
            storage: storage.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind,
            object: obj.clone(),
            old,
        });
        obj
    }

    /// Removes an object and records DELETED; the returned object carries the deletion's RV.
    pub fn remove(&mut self, storage: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let old = self.objects.get_mut(storage)?.remove(&(namespace.to_string(), name.to_string()))?;
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*old).clone();
        set_rv(&mut last, rv);
        let last = Arc::new(last);
        self.record(Change {
            rv,
            storage: storage.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind: EventType::Deleted,
            object: last.clone(),
            old: Some(old),
        });
        Some(last)
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.log.push_back(change.clone());
        while self.log.len() > self.history_limit {
            if let Some(ev) = self.log.pop_front() {
                self.compacted = ev.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(change);
    }

    /// Logged changes of a storage key with RV greater than `rv`, oldest first.
    pub fn changes_since(&self, storage: &str, rv: u64) -> Vec<Arc<Change>> {
        let start = self.log.partition_point(|c| c.rv <= rv);
        self.log.range(start..).filter(|c| c.storage == storage).cloned().collect()
    }

    /// Forgets the whole event log (fault injection: compaction).
    pub fn compact(&mut self) {
        self.log.clear();
        self.compacted = self.rv;
    }
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}
