//! Workload simulation (off by default, kwok-style): the controllers and kubelets behind
//! workloads (`replicas`: Deployments roll out through ReplicaSets and Pods, Pods run and become
//! Ready, Jobs complete, PodDisruptionBudgets and HorizontalPodAutoscalers follow their Pods and a
//! utilization a test sets), StatefulSets report status as their controller would once their pods
//! run and get PersistentVolumeClaims from their volumeClaimTemplates, Services get a cluster IP.
//!
//! Status goes through the /status subresource under the real controllers' manager names. A Pod
//! starts after a delay (the default, or the `kube-emulator.io/ready-after` annotation of the Pod
//! or of the workload that made it); `kube-emulator.io/never-ready: "true"` keeps its containers
//! unready, and makes a Deployment's current rollout time out once the delay has passed
//! (Progressing=False, ProgressDeadlineExceeded).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::conventions::{
    DEPLOYMENT_MANAGER, DEPLOYMENTS, NEVER_READY_ANNOTATION, PV_BINDER_MANAGER, READY_AFTER_ANNOTATION,
    SERVICE_IP_MANAGER, STATEFULSET_MANAGER, find_condition,
};
use super::objects::{ObjKey, live, snapshot_all, target};
use super::replicas::{self, Counts, PODS, REPLICASETS};
use crate::errors::ApiResult;
use crate::instruments::simulation::Simulation;
use crate::meta::{is_deleting, meta_str, now_rfc3339};
use crate::ops::{Cluster, PatchKind, Sub, WriteOptions};
use crate::registry::ResourceType;
use crate::selectors::LabelSelector;
use crate::store::Change;

const STATEFULSETS: &str = "apps/statefulsets";
const SERVICES: &str = "/services";
const PVCS: &str = "/persistentvolumeclaims";
const JOBS: &str = "batch/jobs";
const PDBS: &str = "policy/poddisruptionbudgets";
const HPAS: &str = "autoscaling/horizontalpodautoscalers";
/// The real controller's default `--horizontal-pod-autoscaler-sync-period`. Its inputs here (the
/// HPA's load annotation, its target's scale and status) are objects whose changes queue it at
/// once; syncing every `delay` instead cost 300 HPAs 3,000 passes a second.
const HPA_SYNC_PERIOD: Duration = Duration::from_secs(15);
/// Every kind the simulation acts on.
const WATCHED: [&str; 8] = [DEPLOYMENTS, STATEFULSETS, SERVICES, REPLICASETS, PODS, JOBS, PDBS, HPAS];

/// Where a workload's rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The new generation's pods are starting.
    Rolling,
    Ready,
    /// Never-ready past its delay: the progress deadline was exceeded.
    Stuck,
}

/// What a budget or an autoscaler follows, as the real controllers hear of changes: the disruption
/// controller of the pods its selector matches (and here of the workloads whose pods they are, for
/// their scale); the autoscaler of its target only (the real one reads pods at each periodic sync).
/// Queuing every budget and autoscaler of a namespace at each pod change made most of their passes.
#[derive(Debug)]
enum Follows {
    /// None: a budget without a usable selector, which matches no pod.
    Budget(Option<LabelSelector>),
    Autoscaler {
        storage: &'static str,
        name: String,
    },
}

impl Follows {
    fn budget(pdb: &Value) -> Self {
        let selector = pdb.pointer("/spec/selector").and_then(|s| LabelSelector::from_object(s).ok());
        // An empty or unreadable selector matches no pod (see `replicas::budget`).
        Follows::Budget(selector.filter(|s| !s.is_empty()))
    }

    fn autoscaler(hpa: &Value) -> Self {
        let target = |field: &str| hpa.pointer(&format!("/spec/scaleTargetRef/{field}")).and_then(Value::as_str);
        let storage = match target("kind") {
            Some("Deployment") => DEPLOYMENTS,
            Some("StatefulSet") => STATEFULSETS,
            Some("ReplicaSet") => REPLICASETS,
            _ => "",
        };
        Follows::Autoscaler { storage, name: target("name").unwrap_or_default().to_string() }
    }

    /// Whether a change of `object` (of storage `storage`) concerns the follower.
    fn hears(&self, storage: &str, object: &Value) -> bool {
        match self {
            Follows::Budget(None) => false,
            Follows::Budget(Some(selector)) => match storage {
                PODS => selector.matches(object),
                DEPLOYMENTS | STATEFULSETS | REPLICASETS => {
                    object.pointer("/spec/template").is_some_and(|template| selector.matches(template))
                }
                _ => false,
            },
            Follows::Autoscaler { storage: target, name } => storage == *target && meta_str(object, "name") == name,
        }
    }
}

/// When the current generation of a workload was first seen.
#[derive(Debug, Clone)]
struct Seen {
    uid: String,
    generation: i64,
    since: Instant,
}

#[derive(Debug)]
struct Sim {
    /// The switch and the default delay (instruments of the emulator).
    simulation: Arc<Simulation>,
    seen: HashMap<ObjKey, Seen>,
    timers: BTreeSet<(Instant, ObjKey)>,
    queue: VecDeque<ObjKey>,
    queued: HashSet<ObjKey>,
    /// Cluster IPs handed out (10.96.0.0/16; .0.1 is the `kubernetes` Service's in real clusters).
    next_ip: u32,
    used_ips: HashSet<String>,
    last_rv: u64,
    /// The budgets and autoscalers of each namespace, with what each follows.
    by_namespace: HashMap<String, HashMap<ObjKey, Follows>>,
}

/// The simulation's task: runs until the cluster is dropped.
pub(super) async fn run(cluster: Weak<Cluster>, simulation: Arc<Simulation>, progress: watch::Sender<u64>) {
    let mut switch = simulation.subscribe();
    let mut sim = Sim::new(simulation);
    let Some(mut rx) = sim.scan(&cluster) else { return };
    loop {
        sim.work(&cluster);
        progress.send_replace(sim.last_rv);
        let next_timer = sim.timers.first().map(|(at, _)| *at);
        tokio::select! {
            r = rx.recv() => match r {
                Ok(change) => {
                    sim.on_change(&change);
                    while let Ok(change) = rx.try_recv() {
                        sim.on_change(&change);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let Some(fresh) = sim.scan(&cluster) else { return };
                    rx = fresh;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = sleep_until(next_timer), if next_timer.is_some() => sim.fire_timers(),
            r = switch.changed() => {
                if r.is_err() {
                    return;
                }
                let Some(fresh) = sim.scan(&cluster) else { return };
                rx = fresh;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Sim {
    fn new(simulation: Arc<Simulation>) -> Self {
        Self {
            simulation,
            seen: HashMap::new(),
            timers: BTreeSet::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            next_ip: 10,
            used_ips: HashSet::new(),
            last_rv: 0,
            by_namespace: HashMap::new(),
        }
    }

    /// Queues every workload and Service (at start, after falling behind, when switched on).
    fn scan(&mut self, cluster: &Weak<Cluster>) -> Option<broadcast::Receiver<Arc<Change>>> {
        let c = cluster.upgrade()?;
        let (rx, all, rv) = {
            let st = c.store.lock();
            (c.store.subscribe(), snapshot_all(&st), st.rv)
        };
        self.last_rv = rv;
        for storage in WATCHED {
            for obj in all.get(storage).into_iter().flatten() {
                if storage == SERVICES {
                    self.note_ip(obj);
                }
                self.note_follower(ObjKey::of_object(storage, obj), Some(obj));
                self.enqueue(ObjKey::of_object(storage, obj));
            }
        }
        Some(rx)
    }

    fn on_change(&mut self, change: &Change) {
        self.last_rv = self.last_rv.max(change.rv);
        if !WATCHED.contains(&change.storage.as_str()) {
            return;
        }
        if change.storage == SERVICES {
            self.note_ip(&change.object);
        }
        self.enqueue(ObjKey::of(change));
        // A controller hears of its objects' changes; budgets and autoscalers of the namespace
        // of a pod or a workload look again.
        if let Some(owner) = replicas::controller_ref(&change.object) {
            let storage = match owner.get("kind").and_then(Value::as_str) {
                Some("ReplicaSet") => Some(REPLICASETS),
                Some("Deployment") => Some(DEPLOYMENTS),
                Some("Job") => Some(JOBS),
                Some("StatefulSet") => Some(STATEFULSETS),
                _ => None,
            };
            if let (Some(storage), Some(name)) = (storage, owner.get("name").and_then(Value::as_str)) {
                self.enqueue(ObjKey {
                    storage: storage.into(),
                    namespace: change.namespace.clone(),
                    name: name.into(),
                });
            }
        }
        let deleted = change.kind == crate::store::EventType::Deleted;
        self.note_follower(ObjKey::of(change), (!deleted).then_some(&*change.object));
        // Budgets and autoscalers hear of what they follow, before and after the change.
        let followers: Vec<ObjKey> = self
            .by_namespace
            .get(&change.namespace)
            .into_iter()
            .flatten()
            .filter(|(_, follows)| {
                [Some(&change.object), change.old.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|o| follows.hears(&change.storage, o))
            })
            .map(|(key, _)| key.clone())
            .collect();
        followers.into_iter().for_each(|k| self.enqueue(k));
    }

    /// Records (or forgets, when `obj` is None) what a budget or an autoscaler follows.
    fn note_follower(&mut self, key: ObjKey, obj: Option<&Value>) {
        let follows = match (key.storage.as_str(), obj) {
            (PDBS | HPAS, None) => None,
            (PDBS, Some(pdb)) => Some(Follows::budget(pdb)),
            (HPAS, Some(hpa)) => Some(Follows::autoscaler(hpa)),
            _ => return,
        };
        let followers = self.by_namespace.entry(key.namespace.clone()).or_default();
        match follows {
            Some(follows) => followers.insert(key, follows),
            None => followers.remove(&key),
        };
    }

    fn note_ip(&mut self, svc: &Value) {
        if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str) {
            self.used_ips.insert(ip.to_string());
        }
    }

    fn enqueue(&mut self, key: ObjKey) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.enqueue(key);
        }
    }

    fn work(&mut self, cluster: &Weak<Cluster>) {
        let Some(c) = cluster.upgrade() else { return };
        while let Some(key) = self.queue.pop_front() {
            self.queued.remove(&key);
            if !self.simulation.is_enabled() {
                continue;
            }
            if let Err(e) = self.process(&c, &key) {
                // A conflicting write produces an event that brings the object back here.
                tracing::debug!(error = %e, object = ?key, "workload simulation write failed");
            }
        }
    }

    fn process(&mut self, c: &Cluster, key: &ObjKey) -> ApiResult<()> {
        let Some((obj, rt)) = live(c, key) else {
            self.seen.remove(key);
            return Ok(());
        };
        if is_deleting(&obj) {
            return Ok(());
        }
        match key.storage.as_str() {
            DEPLOYMENTS => {
                let phase = self.phase(key, &obj);
                let (counts, rs) = replicas::roll_out(c, &obj)?;
                write_status(
                    c,
                    &rt,
                    &obj,
                    deployment_status(&obj, counts, phase == Phase::Stuck, &rs),
                    DEPLOYMENT_MANAGER,
                )
            }
            STATEFULSETS => {
                create_claims(c, &obj)?;
                replicas::stateful_set(c, &rt, &obj)?;
                // Its pods look again: the set's never-ready annotation holds them.
                let pods = replicas::owned(c, PODS, &key.namespace, meta_str(&obj, "uid"));
                pods.iter().for_each(|p| self.enqueue(ObjKey::of_object(PODS, p)));
                Ok(())
            }
            SERVICES => self.assign_cluster_ip(c, &rt, &obj),
            REPLICASETS => replicas::replica_set(c, &rt, &obj),
            PODS => self.kubelet(c, key, &obj),
            JOBS => replicas::job(c, &rt, &obj),
            PDBS => replicas::budget(c, &rt, &obj),
            HPAS => {
                // Besides the changes of the HPA and of its target, the autoscaler syncs
                // periodically, as the real one does.
                self.timers.insert((Instant::now() + HPA_SYNC_PERIOD, key.clone()));
                replicas::autoscale(c, &rt, &obj)
            }
            _ => Ok(()),
        }
    }

    /// Whether the delay of `obj` (its `ready-after` annotation, or the default) has passed since
    /// its current generation (0 for pods) was first seen; if not, schedules the moment it does.
    fn delay_passed(&mut self, key: &ObjKey, obj: &Value, generation: i64) -> bool {
        let uid = meta_str(obj, "uid").to_string();
        let seen = self.seen.entry(key.clone()).or_insert_with(|| Seen {
            uid: uid.clone(),
            generation,
            since: Instant::now(),
        });
        if seen.uid != uid || seen.generation != generation {
            // A new generation (or a new object of the same name) restarts the delay.
            *seen = Seen { uid, generation, since: Instant::now() };
        }
        let delay = annotation(obj, READY_AFTER_ANNOTATION)
            .and_then(|d| parse_duration(&d))
            .unwrap_or_else(|| self.simulation.ready_delay());
        let due = seen.since + delay;
        if Instant::now() < due {
            self.timers.insert((due, key.clone()));
            return false;
        }
        true
    }

    /// The kubelet: a new pod starts once its delay has passed since it was first seen.
    fn kubelet(&mut self, c: &Cluster, key: &ObjKey, pod: &Value) -> ApiResult<()> {
        let held = annotation(pod, NEVER_READY_ANNOTATION).as_deref() == Some("true") || held_by_stateful_set(c, pod);
        if replicas::started_unready(pod) {
            // A pod held unready becomes ready once released.
            return if held { Ok(()) } else { replicas::start_pod(c, pod, false) };
        }
        if !replicas::needs_kubelet(pod) {
            return Ok(());
        }
        if !self.delay_passed(key, pod, 0) {
            return Ok(());
        }
        replicas::start_pod(c, pod, held)
    }

    /// The phase of the object's current generation; schedules the moment it changes.
    fn phase(&mut self, key: &ObjKey, obj: &Value) -> Phase {
        let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        if !self.delay_passed(key, obj, generation) {
            return Phase::Rolling;
        }
        if annotation(obj, NEVER_READY_ANNOTATION).as_deref() == Some("true") { Phase::Stuck } else { Phase::Ready }
    }

    fn assign_cluster_ip(&mut self, c: &Cluster, rt: &Arc<ResourceType>, svc: &Value) -> ApiResult<()> {
        let current = svc.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("");
        let kind = svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
        if !current.is_empty() || kind == "ExternalName" {
            return Ok(());
        }
        let ip = self.allocate_ip();
        let patch = json!({"metadata": {"resourceVersion": svc.pointer("/metadata/resourceVersion")},
            "spec": {"clusterIP": ip, "clusterIPs": [ip]}});
        let key = ObjKey::of_object(SERVICES, svc);
        c.patch(&target(rt, &key, None), PatchKind::Merge, &patch, &WriteOptions::manager(SERVICE_IP_MANAGER))
            .map(|_| ())
    }

    fn allocate_ip(&mut self) -> String {
        loop {
            let n = self.next_ip;
            self.next_ip = if n >= 65_534 { 10 } else { n + 1 };
            let ip = format!("10.96.{}.{}", n / 256, n % 256);
            if !n.is_multiple_of(256) && self.used_ips.insert(ip.clone()) {
                return ip;
            }
        }
    }
}

/// A StatefulSet's never-ready annotation holds its pods, for as long as it is there.
fn held_by_stateful_set(c: &Cluster, pod: &Value) -> bool {
    let Some(owner) =
        replicas::controller_ref(pod).filter(|r| r.get("kind").and_then(Value::as_str) == Some("StatefulSet"))
    else {
        return false;
    };
    let name = owner.get("name").and_then(Value::as_str).unwrap_or("");
    c.store
        .lock()
        .get(STATEFULSETS, meta_str(pod, "namespace"), name)
        .is_some_and(|s| annotation(&s, NEVER_READY_ANNOTATION).as_deref() == Some("true"))
}

fn annotation(obj: &Value, key: &str) -> Option<String> {
    obj.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str).map(String::from)
}

fn spec_replicas(obj: &Value) -> i64 {
    // The real API server defaults replicas to 1.
    obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)
}

use replicas::write_status;

/// The status the deployment controller reports from its ReplicaSets' counts; `stuck` is a
/// rollout past its deadline.
fn deployment_status(obj: &Value, c: Counts, stuck: bool, rs: &str) -> Value {
    let r = spec_replicas(obj);
    let max_unavailable = match obj.pointer("/spec/strategy/rollingUpdate/maxUnavailable") {
        Some(Value::String(p)) => p.trim_end_matches('%').parse::<i64>().unwrap_or(0) * r / 100,
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    };
    let complete = c.updated == r && c.replicas == r && c.available == r;
    let available = if c.available >= r - max_unavailable && (r == 0 || c.available > 0 || max_unavailable >= r) {
        cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    } else {
        cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    };
    let progressing = if stuck {
        cond(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{rs}\" has timed out progressing."),
        )
    } else if complete {
        cond(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs}\" has successfully progressed."),
        )
    } else {
        cond("Progressing", "True", "ReplicaSetUpdated", &format!("ReplicaSet \"{rs}\" is progressing."))
    };
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation(obj)));
    put_nonzero(&mut status, "replicas", c.replicas);
    put_nonzero(&mut status, "updatedReplicas", c.updated);
    put_nonzero(&mut status, "readyReplicas", c.ready);
    put_nonzero(&mut status, "availableReplicas", c.available);
    put_nonzero(&mut status, "unavailableReplicas", (r - c.available).max(0));
    let conditions = vec![keep_times(obj, available), keep_times(obj, progressing)];
    status.insert("conditions".into(), Value::Array(conditions));
    Value::Object(status)
}

/// Creates the missing PVCs `<template>-<statefulset>-<ordinal>`, Bound. Like the real
/// controller, they are not owned by the StatefulSet (they stay when it goes) unless its
/// `persistentVolumeClaimRetentionPolicy.whenDeleted` is `Delete`.
fn create_claims(c: &Cluster, sts: &Value) -> ApiResult<()> {
    let Some(templates) = sts.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array) else { return Ok(()) };
    let ns = meta_str(sts, "namespace");
    for ordinal in 0..spec_replicas(sts) {
        for tmpl in templates {
            let name = format!("{}-{}-{ordinal}", meta_str(tmpl, "name"), meta_str(sts, "name"));
            if c.store.lock().get(PVCS, ns, &name).is_some() {
                continue;
            }
            create_claim(c, sts, tmpl, &name)?;
        }
    }
    Ok(())
}

fn create_claim(c: &Cluster, sts: &Value, tmpl: &Value, name: &str) -> ApiResult<()> {
    let ns = meta_str(sts, "namespace");
    let mut labels = tmpl.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}));
    if let (Some(l), Some(sel)) =
        (labels.as_object_mut(), sts.pointer("/spec/selector/matchLabels").and_then(Value::as_object))
    {
        l.extend(sel.clone());
    }
    let mut spec = tmpl.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        s.entry("volumeMode").or_insert(json!("Filesystem"));
    }
    let mut meta = json!({"name": name, "namespace": ns, "labels": labels});
    if sts.pointer("/spec/persistentVolumeClaimRetentionPolicy/whenDeleted").and_then(Value::as_str) == Some("Delete") {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": meta_str(sts, "name"),
            "uid": meta_str(sts, "uid"), "controller": true, "blockOwnerDeletion": true}]);
    }
    let t = c.target("", "v1", "persistentvolumeclaims", ns, "")?;
    let created =
        match c.create(&t, json!({"metadata": meta, "spec": spec}), &WriteOptions::manager(STATEFULSET_MANAGER)) {
            Ok(w) => w.object,
            Err(e) if e.code == 409 => return Ok(()),
            Err(e) => return Err(e),
        };
    let mut bound = created.clone();
    bound["status"] = json!({
        "phase": "Bound",
        "accessModes": spec.get("accessModes").cloned().unwrap_or_else(|| json!(["ReadWriteOnce"])),
        "capacity": {"storage": spec.pointer("/resources/requests/storage").cloned().unwrap_or_else(|| json!("1Gi"))},
    });
    let t = c
        .target("", "v1", "persistentvolumeclaims", ns, name)
        .map(|t| crate::ops::Target { sub: Some(Sub::Status), ..t })?;
    c.replace(&t, bound, &WriteOptions::manager(PV_BINDER_MANAGER)).map(|_| ())
}

use replicas::put_nonzero;

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message})
}

/// Timestamps as the controllers keep them: lastTransitionTime moves only when the status
/// does, lastUpdateTime when anything does. Keeping them makes an unchanged status a no-op.
fn keep_times(obj: &Value, mut c: Value) -> Value {
    let now = now_rfc3339();
    let old = find_condition(obj, c["type"].as_str().unwrap_or(""));
    let same = |k: &str| old.is_some_and(|o| o.get(k) == c.get(k));
    let time = |k: &str| old.and_then(|o| o.get(k)).cloned().unwrap_or_else(|| json!(now));
    let transition = if same("status") { time("lastTransitionTime") } else { json!(now) };
    let update = if same("status") && same("reason") && same("message") { time("lastUpdateTime") } else { json!(now) };
    c["lastTransitionTime"] = transition;
    c["lastUpdateTime"] = update;
    c
}

/// Go-style durations: `300ms`, `2s`, `1m30s`, `1.5s`, `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))?;
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|ch: char| ch.is_ascii_digit() || ch == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5"), None);
    }

    #[test]
    fn a_budget_hears_the_pods_it_selects_and_their_workloads() {
        let budget = Follows::budget(&json!({"spec": {"selector": {"matchLabels": {"app": "db"}}}}));
        let labelled = |app: &str| json!({"metadata": {"name": "x", "labels": {"app": app}}});
        assert!(budget.hears(PODS, &labelled("db")));
        assert!(!budget.hears(PODS, &labelled("web")));
        let set = |app: &str| json!({"metadata": {"name": "db"}, "spec": {"template": labelled(app)}});
        assert!(budget.hears(STATEFULSETS, &set("db")));
        assert!(!budget.hears(STATEFULSETS, &set("web")));
        assert!(!budget.hears(SERVICES, &labelled("db")));
        let selecting_nothing = Follows::budget(&json!({"spec": {"selector": {}}}));
        assert!(!selecting_nothing.hears(PODS, &labelled("db")));
    }

    #[test]
    fn an_autoscaler_hears_its_target_only() {
        let hpa = Follows::autoscaler(&json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}}));
        let named = |name: &str| json!({"metadata": {"name": name}});
        assert!(hpa.hears(DEPLOYMENTS, &named("web")));
        assert!(!hpa.hears(DEPLOYMENTS, &named("api")));
        assert!(!hpa.hears(STATEFULSETS, &named("web")));
        assert!(!hpa.hears(PODS, &named("web-1")));
    }

    #[test]
    fn template_hash_is_stable_and_safe() {
        use super::super::conventions::template_hash;
        let a = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        let b = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:2"}]}}}});
        assert_eq!(template_hash(&a), template_hash(&a));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert!(template_hash(&a).chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn ready_deployment_reports_all_replicas_and_conditions() {
        let d = json!({"metadata": {"name": "web", "generation": 3}, "spec": {"replicas": 2, "template": {}}});
        let all = Counts { replicas: 2, updated: 2, ready: 2, available: 2 };
        let s = deployment_status(&d, all, false, "web-x");
        assert_eq!(s["observedGeneration"], 3);
        for k in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
            assert_eq!(s[k], 2, "{k}");
        }
        assert_eq!(s["conditions"][0]["reason"], "MinimumReplicasAvailable");
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
        let rolling = deployment_status(&d, Counts { replicas: 3, updated: 1, ready: 2, available: 2 }, false, "web-x");
        assert_eq!(rolling["conditions"][1]["reason"], "ReplicaSetUpdated");
        let stuck = deployment_status(&d, all, true, "web-x");
        assert_eq!(stuck["conditions"][1]["status"], "False");
        assert_eq!(stuck["conditions"][1]["reason"], "ProgressDeadlineExceeded");
    }
}
