//! The simulated controllers behind workloads, as kube-controller-manager and the kubelets run
//! them, in steps: each call looks at the stored objects, makes one move through the write
//! pipeline and returns; the change it makes brings the next call. Deployments roll out through
//! ReplicaSets (maxSurge and maxUnavailable honoured, so a template change is a new ReplicaSet),
//! ReplicaSets keep their Pods, the kubelet runs Pods (Ready after the simulation's delay; Job
//! Pods succeed), Jobs complete, PodDisruptionBudgets count healthy Pods and
//! HorizontalPodAutoscalers follow a utilization a test sets.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::objects::{ObjKey, target};
use crate::errors::ApiResult;
use crate::meta::{is_deleting, meta_str, now_rfc3339};
use crate::ops::{Cluster, PatchKind, Sub, WriteOptions};
use crate::registry::ResourceType;
use crate::selectors::LabelSelector;

pub const REPLICASET_MANAGER: &str = "replicaset-controller";
pub const KUBELET_MANAGER: &str = "kubelet";
pub const JOB_MANAGER: &str = "job-controller";
pub const DISRUPTION_MANAGER: &str = "controllermanager";
pub const HPA_MANAGER: &str = "horizontal-pod-autoscaler";
/// The CPU load a simulated HPA measures, set by a test on the HPA: the total demand in percent
/// of one pod's request ("300": three pods' worth), spread over the target's pods (so the
/// utilization falls as they scale out, as with a real load). Without it the HPA reports it
/// cannot get metrics, as without a metrics server.
pub const LOAD_ANNOTATION: &str = "kube-emulator.io/cpu-load";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

pub const PODS: &str = "/pods";
pub const REPLICASETS: &str = "apps/replicasets";

/// The stored objects of `storage` in `ns` whose controller owner has `uid`.
pub fn owned(c: &Cluster, storage: &str, ns: &str, uid: &str) -> Vec<Arc<Value>> {
    c.store.lock().list(storage, Some(ns), None).into_iter().filter(|o| controller_uid(o) == Some(uid)).collect()
}

/// The uid of an object's controller owner.
pub fn controller_uid(obj: &Value) -> Option<&str> {
    controller_ref(obj)?.get("uid").and_then(Value::as_str)
}

pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

fn owner_ref(owner: &Value, kind: &str, api_version: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": meta_str(owner, "name"), "uid": meta_str(owner, "uid"),
            "controller": true, "blockOwnerDeletion": true}])
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn rt_of(c: &Cluster, storage: &str) -> Option<Arc<ResourceType>> {
    c.store.lock().registry.by_storage(storage)
}

fn key_of(storage: &str, obj: &Value) -> ObjKey {
    ObjKey::of_object(storage, obj)
}

/// Writes `status` through /status when it differs from the stored one.
pub fn write_status(c: &Cluster, rt: &Arc<ResourceType>, obj: &Value, status: Value, manager: &str) -> ApiResult<()> {
    if obj.get("status") == Some(&status) {
        return Ok(());
    }
    let mut body = obj.clone();
    body["status"] = status;
    let key = ObjKey::of_object(&rt.storage, obj);
    c.replace(&target(rt, &key, Some(Sub::Status)), body, &WriteOptions::manager(manager)).map(|_| ())
}

/// A merge patch of the main resource, conditional on the resourceVersion it was read at.
fn patch(c: &Cluster, rt: &Arc<ResourceType>, obj: &Value, mut body: Value, manager: &str) -> ApiResult<()> {
    body["metadata"]["resourceVersion"] = obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
    let key = ObjKey::of_object(&rt.storage, obj);
    c.patch(&target(rt, &key, None), PatchKind::Merge, &body, &WriteOptions::manager(manager)).map(|_| ())
}

// ---------------------------------------------------------------- pods

pub fn is_ready(pod: &Value) -> bool {
    crate::pod_rules::is_ready(pod)
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending")
}

fn finished(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The kubelet's report for a pod whose containers started: Running (Ready unless `held`), or
/// Succeeded for a pod that runs to completion (a Job's).
pub fn kubelet_status(pod: &Value, held: bool) -> Value {
    let now = now_rfc3339();
    let completes = owner_kind(pod) == Some("Job");
    let ready = !held && !completes;
    let cond = |t: &str, s: bool| {
        let mut c = json!({"type": t, "status": if s { "True" } else { "False" }, "lastProbeTime": null,
                           "lastTransitionTime": now});
        if completes && matches!(t, "Ready" | "ContainersReady") {
            c["reason"] = json!("PodCompleted");
        }
        c
    };
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|ct| {
            let state = if completes {
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}})
            } else {
                json!({"running": {"startedAt": now}})
            };
            json!({"name": ct.get("name"), "image": ct.get("image"), "imageID": "", "ready": ready,
                   "started": !completes, "restartCount": 0, "state": state,
                   "containerID": format!("containerd://{}", meta_str(pod, "uid").replace('-', ""))})
        })
        .collect();
    let ip = pod_ip(meta_str(pod, "uid"));
    let mut status = json!({
        "phase": if completes { "Succeeded" } else { "Running" },
        "conditions": [cond("PodReadyToStartContainers", !completes), cond("Initialized", true), cond("Ready", ready),
                       cond("ContainersReady", ready), cond("PodScheduled", true)],
        "containerStatuses": containers,
        "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": now,
    });
    if let Some(q) = pod.pointer("/status/qosClass") {
        status["qosClass"] = q.clone();
    }
    status
}

/// A stable address in the default pod CIDR (10.244.0.0/16) from the pod's uid.
fn pod_ip(uid: &str) -> String {
    let h = uid.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("10.244.{}.{}", (h >> 8) % 256, (h % 254) + 1)
}

fn owner_kind(obj: &Value) -> Option<&str> {
    controller_ref(obj)?.get("kind").and_then(Value::as_str)
}

/// Whether the kubelet still has to start this pod.
pub fn needs_kubelet(pod: &Value) -> bool {
    !is_deleting(pod) && pod.pointer("/status/containerStatuses").is_none() && !finished(pod)
}

/// A running pod whose containers are not ready (held by the simulation).
pub fn started_unready(pod: &Value) -> bool {
    !is_deleting(pod) && phase(pod) == "Running" && !is_ready(pod)
}

pub fn start_pod(c: &Cluster, pod: &Value, held: bool) -> ApiResult<()> {
    let Some(rt) = rt_of(c, PODS) else { return Ok(()) };
    write_status(c, &rt, pod, kubelet_status(pod, held), KUBELET_MANAGER)
}

/// Creates a pod from a template, owned by `owner`.
fn create_pod(
    c: &Cluster,
    owner: &Value,
    kind: &str,
    api_version: &str,
    template: &Value,
    extra: Value,
) -> ApiResult<()> {
    let ns = meta_str(owner, "namespace");
    let mut meta = template.get("metadata").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("creationTimestamp");
        m.insert("generateName".into(), json!(format!("{}-", meta_str(owner, "name"))));
        m.insert("namespace".into(), json!(ns));
        m.insert("ownerReferences".into(), owner_ref(owner, kind, api_version));
        if let Value::Object(extra) = extra {
            let ann = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = ann.as_object_mut() {
                a.extend(extra);
            }
        }
    }
    let body = json!({"metadata": meta, "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))});
    let t = c.target("", "v1", "pods", ns, "")?;
    let manager = if kind == "Job" { JOB_MANAGER } else { REPLICASET_MANAGER };
    c.create(&t, body, &WriteOptions::manager(manager)).map(|_| ())
}

fn delete(c: &Cluster, storage: &str, obj: &Value) -> ApiResult<()> {
    let Some(rt) = rt_of(c, storage) else { return Ok(()) };
    match c.delete(&target(&rt, &key_of(storage, obj), None), &json!({}), &WriteOptions::default()) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The simulation's annotations of a workload, carried to the pods it creates.
fn simulation_annotations(obj: &Value) -> Value {
    let mut out = Map::new();
    if let Some(a) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        for (k, v) in a {
            if k.starts_with("kube-emulator.io/") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------- replica sets

/// The ReplicaSet controller: as many pods as `spec.replicas` (unready and newest go first),
/// and the counts in its status.
pub fn replica_set(c: &Cluster, rt: &Arc<ResourceType>, rs: &Value) -> ApiResult<()> {
    let mut pods: Vec<Arc<Value>> = owned(c, PODS, meta_str(rs, "namespace"), meta_str(rs, "uid"))
        .into_iter()
        .filter(|p| !is_deleting(p))
        .collect();
    let want = int_at(rs, "/spec/replicas");
    let have = pods.len() as i64;
    if have < want {
        let template = rs.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        // Pods made now carry the simulation's annotations of the ReplicaSet and, as they stand
        // now, of its Deployment (never-ready there holds the pods of its current rollout).
        let mut annotations = simulation_annotations(rs);
        if let Some(d) = controller_ref(rs)
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .and_then(|name| c.store.lock().get(super::conventions::DEPLOYMENTS, meta_str(rs, "namespace"), name))
            && let (Value::Object(a), Value::Object(more)) = (&mut annotations, simulation_annotations(&d))
        {
            a.extend(more);
        }
        for _ in have..want {
            create_pod(c, rs, "ReplicaSet", "apps/v1", &template, annotations.clone())?;
        }
    } else if have > want {
        pods.sort_by_key(|p| (is_ready(p), std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string())));
        for p in pods.drain(..(have - want) as usize) {
            delete(c, PODS, &p)?;
        }
    }
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    put_nonzero(&mut status, "fullyLabeledReplicas", pods.len() as i64);
    put_nonzero(&mut status, "readyReplicas", ready);
    put_nonzero(&mut status, "availableReplicas", ready);
    status.insert("observedGeneration".into(), json!(int_at(rs, "/metadata/generation")));
    write_status(c, rt, rs, Value::Object(status), REPLICASET_MANAGER)
}

pub fn put_nonzero(m: &mut Map<String, Value>, key: &str, n: i64) {
    // The real controllers' status fields are omitempty.
    if n != 0 {
        m.insert(key.into(), json!(n));
    }
}

// ---------------------------------------------------------------- deployments

/// maxSurge / maxUnavailable as a count of `replicas` (percentages round up for surge and down
/// for unavailability, as intstr.GetScaledValueFromIntOrPercent is called).
fn scaled(v: Option<&Value>, replicas: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let x = pct * replicas;
            if round_up { (x + 99) / 100 } else { x / 100 }
        }
        _ => {
            if round_up {
                (replicas * 25 + 99) / 100
            } else {
                replicas * 25 / 100
            }
        }
    }
}

/// What a Deployment's ReplicaSets add up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i64,
    pub updated: i64,
    pub ready: i64,
    pub available: i64,
}

/// One step of the deployment controller: the new ReplicaSet (named after the template hash)
/// exists, and new and old ReplicaSets are scaled within maxSurge and maxUnavailable (Recreate:
/// old ones to zero first). Returns the counts its status reports.
pub fn roll_out(c: &Cluster, d: &Value) -> ApiResult<(Counts, String)> {
    let ns = meta_str(d, "namespace");
    let hash = super::conventions::template_hash(d);
    let new_name = format!("{}-{hash}", meta_str(d, "name"));
    let mut sets = owned(c, REPLICASETS, ns, meta_str(d, "uid"));
    sets.retain(|s| !is_deleting(s));
    let Some(rs_rt) = rt_of(c, REPLICASETS) else { return Ok((Counts::default(), new_name)) };
    let replicas = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
    let old: Vec<&Arc<Value>> = sets.iter().filter(|s| meta_str(s, "name") != new_name).collect();
    let Some(new) = sets.iter().find(|s| meta_str(s, "name") == new_name) else {
        let revision = 1 + old
            .iter()
            .filter_map(|s| s.pointer(&format!("/metadata/annotations/{}", REVISION_ANNOTATION.replace('/', "~1"))))
            .filter_map(|v| v.as_str()?.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        create_replica_set(c, d, &new_name, &hash, revision)?;
        return Ok((counts(&sets, &new_name), new_name));
    };
    let spec = |s: &Value| int_at(s, "/spec/replicas");
    let scale = |s: &Value, n: i64| -> ApiResult<()> {
        if spec(s) == n {
            return Ok(());
        }
        patch(c, &rs_rt, s, json!({"spec": {"replicas": n}}), super::conventions::DEPLOYMENT_MANAGER)
    };
    if recreate {
        let old_pods: usize = old.iter().map(|s| owned(c, PODS, ns, meta_str(s, "uid")).len()).sum();
        for s in &old {
            scale(s, 0)?;
        }
        if old_pods == 0 {
            scale(new, replicas)?;
        }
        return Ok((counts(&sets, &new_name), new_name));
    }
    let rolling = d.pointer("/spec/strategy/rollingUpdate");
    let surge = scaled(rolling.and_then(|r| r.get("maxSurge")), replicas, true);
    let mut unavailable = scaled(rolling.and_then(|r| r.get("maxUnavailable")), replicas, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let total: i64 = sets.iter().map(|s| spec(s)).sum();
    let new_spec = spec(new);
    if new_spec > replicas {
        scale(new, replicas)?;
    } else if new_spec < replicas {
        let room = (replicas + surge - total).max(0).min(replicas - new_spec);
        if room > 0 {
            scale(new, new_spec + room)?;
        }
    }
    // NewRSNewReplicas first, then old ones down as far as availability allows
    // (deployment/rolling.go reconcileOldReplicaSets).
    let available = |s: &Value| int_at(s, "/status/availableReplicas");
    let new_unavailable = (spec(new) - available(new)).max(0);
    let mut budget = total - (replicas - unavailable) - new_unavailable;
    let mut old_sorted = old.clone();
    old_sorted.sort_by_key(|s| meta_str(s, "creationTimestamp").to_string());
    for s in old_sorted {
        // Unhealthy old pods go first: they count against nothing.
        let unhealthy = (spec(s) - available(s)).max(0);
        let down = (unhealthy + budget.max(0)).min(spec(s));
        if down > 0 {
            scale(s, spec(s) - down)?;
            budget -= (down - unhealthy).max(0);
        }
    }
    Ok((counts(&sets, &new_name), new_name))
}

fn counts(sets: &[Arc<Value>], new_name: &str) -> Counts {
    let sum = |k: &str| sets.iter().map(|s| int_at(s, &format!("/status/{k}"))).sum::<i64>();
    Counts {
        replicas: sum("replicas"),
        updated: sets.iter().find(|s| meta_str(s, "name") == new_name).map_or(0, |s| int_at(s, "/status/replicas")),
        ready: sum("readyReplicas"),
        available: sum("availableReplicas"),
    }
}

fn create_replica_set(c: &Cluster, d: &Value, name: &str, hash: &str, revision: i64) -> ApiResult<()> {
    let ns = meta_str(d, "namespace");
    let mut template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut annotations = simulation_annotations(d);
    annotations[REVISION_ANNOTATION] = json!(revision.to_string());
    annotations["deployment.kubernetes.io/desired-replicas"] =
        json!(d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1).to_string());
    let meta = json!({"name": name, "namespace": ns, "labels": template["metadata"]["labels"].clone(),
        "annotations": annotations, "ownerReferences": owner_ref(d, "Deployment", "apps/v1")});
    let body = json!({"metadata": meta, "spec": {"replicas": 0, "selector": selector, "template": template,
        "minReadySeconds": d.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0))}});
    let t = c.target("apps", "v1", "replicasets", ns, "")?;
    match c.create(&t, body, &WriteOptions::manager(super::conventions::DEPLOYMENT_MANAGER)) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- jobs

/// The Job controller: up to `parallelism` pods at a time until `completions` succeeded, then
/// the Complete condition (with SuccessCriteriaMet, as 1.33 reports it).
pub fn job(c: &Cluster, rt: &Arc<ResourceType>, job: &Value) -> ApiResult<()> {
    let ns = meta_str(job, "namespace");
    let pods = owned(c, PODS, ns, meta_str(job, "uid"));
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !finished(p) && !is_deleting(p)).collect();
    let completions = job.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
    let parallelism = int_at(job, "/spec/parallelism");
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let done = succeeded >= completions;
    let was_done = job.pointer("/status/completionTime").is_some();
    if !done && !suspended && !was_done {
        let want = parallelism.min(completions - succeeded) - active.len() as i64;
        let template = job.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        for _ in 0..want.max(0) {
            create_pod(c, job, "Job", "batch/v1", &template, simulation_annotations(job))?;
        }
    }
    let now = now_rfc3339();
    let mut status = Map::new();
    let start = job.pointer("/status/startTime").cloned().unwrap_or_else(|| json!(now));
    if !suspended {
        status.insert("startTime".into(), start);
    }
    put_nonzero(&mut status, "active", if done { 0 } else { active.len() as i64 });
    status.insert("ready".into(), json!(active.iter().filter(|p| is_ready(p)).count()));
    put_nonzero(&mut status, "succeeded", succeeded);
    put_nonzero(&mut status, "failed", failed);
    status.insert("terminating".into(), json!(0));
    status.insert("uncountedTerminatedPods".into(), json!({}));
    if done {
        let time = job.pointer("/status/completionTime").cloned().unwrap_or_else(|| json!(now));
        status.insert("completionTime".into(), time.clone());
        let message = "Reached expected number of succeeded pods";
        let cond = |t: &str| {
            json!({"type": t, "status": "True", "reason": "CompletionsReached", "message": message,
                                    "lastProbeTime": time, "lastTransitionTime": time})
        };
        status.insert("conditions".into(), json!([cond("SuccessCriteriaMet"), cond("Complete")]));
    }
    write_status(c, rt, job, Value::Object(status), JOB_MANAGER)
}

// ---------------------------------------------------------------- disruption budgets

/// The disruption controller: the budget's pods, how many are healthy and how many may go.
pub fn budget(c: &Cluster, rt: &Arc<ResourceType>, pdb: &Value) -> ApiResult<()> {
    let ns = meta_str(pdb, "namespace");
    let selector = pdb.pointer("/spec/selector").and_then(|s| LabelSelector::from_object(s).ok()).unwrap_or_default();
    let pods: Vec<Arc<Value>> = c
        .store
        .lock()
        .list(PODS, Some(ns), None)
        .into_iter()
        .filter(|p| !selector.is_empty() && selector.matches(p) && !is_deleting(p) && !finished(p))
        .collect();
    // Expected pods: the scale of the pods' controllers (getExpectedPodCount), or the pods.
    let expected = expected_pods(c, &pods);
    let healthy = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
        scaled_ceil(min, expected)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - scaled_ceil(max, expected)).max(0)
    } else {
        expected
    };
    let allowed = (healthy - desired).max(0);
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(int_at(pdb, "/metadata/generation")));
    let names: Vec<&str> = pods.iter().map(|p| meta_str(p, "name")).collect();
    if let Some(Value::Object(d)) = pdb.pointer("/status/disruptedPods") {
        // Evicted pods stay recorded until they are gone.
        let kept: Map<String, Value> =
            d.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        if !kept.is_empty() {
            status.insert("disruptedPods".into(), Value::Object(kept));
        }
    }
    let pending = status.get("disruptedPods").and_then(Value::as_object).map_or(0, |m| m.len() as i64);
    let allowed = (allowed - pending).max(0);
    status.insert("disruptionsAllowed".into(), json!(allowed));
    status.insert("currentHealthy".into(), json!(healthy));
    status.insert("desiredHealthy".into(), json!(desired));
    status.insert("expectedPods".into(), json!(expected));
    let (s, reason) = if allowed > 0 { ("True", "SufficientPods") } else { ("False", "InsufficientPods") };
    let cond = json!({"type": "DisruptionAllowed", "status": s, "reason": reason, "message": "",
        "observedGeneration": int_at(pdb, "/metadata/generation")});
    status.insert("conditions".into(), json!([super::conventions::keep_transition(pdb, cond)]));
    write_status(c, rt, pdb, Value::Object(status), DISRUPTION_MANAGER)
}

fn expected_pods(c: &Cluster, pods: &[Arc<Value>]) -> i64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for p in pods {
        match controller_ref(p) {
            Some(r) => {
                let uid = r.get("uid").and_then(Value::as_str).unwrap_or("").to_string();
                if !seen.insert(uid) {
                    continue;
                }
                let storage = match r.get("kind").and_then(Value::as_str) {
                    Some("ReplicaSet") => REPLICASETS,
                    Some("StatefulSet") => STATEFULSETS,
                    _ => {
                        total += 1;
                        continue;
                    }
                };
                let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                let owner = c.store.lock().get(storage, meta_str(p, "namespace"), name);
                total += owner.map_or(1, |o| int_at(&o, "/spec/replicas"));
            }
            None => total += 1,
        }
    }
    total
}

/// An int or a percentage of `of`, rounded up.
fn scaled_ceil(v: &Value, of: i64) -> i64 {
    match v {
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            (pct * of + 99) / 100
        }
        other => other.as_i64().unwrap_or(0),
    }
}

// ---------------------------------------------------------------- autoscalers

/// The HPA controller (autoscaling/v2, one CPU utilization metric): the target's replicas move
/// to ceil(current * utilization / target) within [minReplicas, maxReplicas], outside a 10%
/// tolerance. The utilization is the load of the HPA's `kube-emulator.io/cpu-load` annotation
/// over the current replicas.
pub fn autoscale(c: &Cluster, rt: &Arc<ResourceType>, hpa: &Value) -> ApiResult<()> {
    let ns = meta_str(hpa, "namespace");
    let target_ref = hpa.pointer("/spec/scaleTargetRef").cloned().unwrap_or_default();
    let kind = target_ref.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = target_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let plural = match kind {
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        "ReplicaSet" => "replicasets",
        _ => return Ok(()),
    };
    let scale_target =
        c.target("apps", "v1", plural, ns, name).map(|t| crate::ops::Target { sub: Some(Sub::Scale), ..t })?;
    let Ok(scale) = c.get(&scale_target) else {
        return Ok(()); // no target: the real HPA reports FailedGetScale; nothing to move
    };
    let current = int_at(&scale, "/spec/replicas");
    let min = hpa.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1);
    let max = int_at(hpa, "/spec/maxReplicas");
    let target_utilization = hpa
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .and_then(|m| m.iter().find_map(|m| m.pointer("/resource/target/averageUtilization")?.as_i64()))
        .unwrap_or(80);
    let utilization = hpa
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LOAD_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.trim_end_matches('%').parse::<i64>().ok())
        .filter(|_| current > 0)
        .map(|load| (load + current - 1) / current);
    let (mut desired, active) = match utilization {
        _ if current == 0 => (
            0,
            cond(
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            ),
        ),
        Some(u) => {
            let ratio = u as f64 / target_utilization as f64;
            let wanted = if (ratio - 1.0).abs() <= 0.1 { current } else { (ratio * current as f64).ceil() as i64 };
            (
                wanted,
                cond(
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                ),
            )
        }
        None => (
            current,
            cond(
                "ScalingActive",
                "False",
                "FailedGetResourceMetric",
                "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
            ),
        ),
    };
    let limited = if current != 0 && desired > max {
        desired = max;
        cond(
            "ScalingLimited",
            "True",
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    } else if current != 0 && desired < min {
        desired = min;
        cond(
            "ScalingLimited",
            "True",
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )
    } else {
        cond("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range")
    };
    let mut last_scale = hpa.pointer("/status/lastScaleTime").cloned();
    if current != 0 && desired != current {
        let body = json!({"spec": {"replicas": desired}});
        c.patch(&scale_target, PatchKind::Merge, &body, &WriteOptions::manager(HPA_MANAGER))?;
        last_scale = Some(json!(now_rfc3339()));
    }
    let able = cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size");
    let mut status = Map::new();
    status.insert("currentReplicas".into(), json!(int_at(&scale, "/status/replicas")));
    status.insert("desiredReplicas".into(), json!(desired));
    if let Some(t) = last_scale {
        status.insert("lastScaleTime".into(), t);
    }
    if let Some(u) = utilization {
        status.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": u}}}]),
        );
    }
    let conditions: Vec<Value> =
        [able, active, limited].into_iter().map(|c| super::conventions::keep_transition(hpa, c)).collect();
    status.insert("conditions".into(), Value::Array(conditions));
    write_status(c, rt, hpa, Value::Object(status), HPA_MANAGER)
}

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message})
}

// ---------------------------------------------------------------- stateful sets

pub const STATEFULSETS: &str = "apps/statefulsets";
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The ordinal of a StatefulSet's pod (`<set>-<ordinal>`).
fn ordinal(set: &str, pod: &Value) -> Option<i64> {
    meta_str(pod, "name").strip_prefix(&format!("{set}-"))?.parse().ok()
}

fn revision_of(pod: &Value) -> &str {
    pod.pointer(&format!("/metadata/labels/{CONTROLLER_REVISION_HASH}")).and_then(Value::as_str).unwrap_or("")
}

/// One step of the StatefulSet controller: pods `<set>-0..n-1` with their claims, created in
/// order (OrderedReady: each once the one before is Running and Ready; Parallel: at once),
/// removed from the highest ordinal, and replaced from the highest ordinal down to the
/// partition when the template changes (RollingUpdate); then the status their counts give.
pub fn stateful_set(c: &Cluster, rt: &Arc<ResourceType>, set: &Value) -> ApiResult<()> {
    let (ns, name) = (meta_str(set, "namespace"), meta_str(set, "name"));
    let replicas = set.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let update = format!("{name}-{}", super::conventions::template_hash(set));
    let parallel = set.pointer("/spec/podManagementPolicy").and_then(Value::as_str) == Some("Parallel");
    let on_delete = set.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete");
    let partition = int_at(set, "/spec/updateStrategy/rollingUpdate/partition");
    let mut pods: Vec<(i64, Arc<Value>)> = owned(c, PODS, ns, meta_str(set, "uid"))
        .into_iter()
        .filter(|p| !is_deleting(p))
        .filter_map(|p| Some((ordinal(name, &p)?, p)))
        .collect();
    pods.sort_by_key(|(i, _)| *i);
    let at = |i: i64| pods.iter().find(|(o, _)| *o == i).map(|(_, p)| p);
    for i in 0..replicas {
        match at(i) {
            None => {
                create_ordinal_pod(c, set, i, &update)?;
                if !parallel {
                    break;
                }
            }
            Some(p) if !parallel && !is_ready(p) => break,
            Some(_) => {}
        }
    }
    let all_ready = (0..replicas).all(|i| at(i).is_some_and(|p| is_ready(p)));
    let mut extra: Vec<&Arc<Value>> = pods.iter().filter(|(i, _)| *i >= replicas).map(|(_, p)| p).collect();
    extra.reverse();
    for p in extra.iter().take(if parallel { usize::MAX } else { 1 }) {
        if parallel || all_ready {
            delete(c, PODS, p)?;
        }
    }
    if !on_delete && all_ready && extra.is_empty() {
        let stale = (partition..replicas).rev().find_map(|i| at(i).filter(|p| revision_of(p) != update));
        if let Some(p) = stale {
            delete(c, PODS, p)?;
        }
    }
    let live: Vec<&Arc<Value>> = pods.iter().map(|(_, p)| p).collect();
    let ready = live.iter().filter(|p| is_ready(p)).count() as i64;
    let updated = live.iter().filter(|p| revision_of(p) == update).count() as i64;
    let previous = set.pointer("/status/currentRevision").and_then(Value::as_str).filter(|s| !s.is_empty());
    let done = updated == replicas && ready == replicas && live.len() as i64 == replicas;
    let current_revision = if done { update.clone() } else { previous.unwrap_or(&update).to_string() };
    let current = live.iter().filter(|p| revision_of(p) == current_revision).count() as i64;
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(int_at(set, "/metadata/generation")));
    status.insert("replicas".into(), json!(live.len()));
    put_nonzero(&mut status, "readyReplicas", ready);
    put_nonzero(&mut status, "currentReplicas", current);
    put_nonzero(&mut status, "updatedReplicas", updated);
    status.insert("availableReplicas".into(), json!(ready));
    status.insert("currentRevision".into(), json!(current_revision));
    status.insert("updateRevision".into(), json!(update));
    status.insert("collisionCount".into(), json!(0));
    write_status(c, rt, set, Value::Object(status), super::conventions::STATEFULSET_MANAGER)
}

/// Pod `<set>-<i>`: the template, its identity (hostname, subdomain, index labels) and its
/// claims `<template>-<set>-<i>` as volumes.
fn create_ordinal_pod(c: &Cluster, set: &Value, i: i64, revision: &str) -> ApiResult<()> {
    let (ns, name) = (meta_str(set, "namespace"), meta_str(set, "name"));
    let pod_name = format!("{name}-{i}");
    let mut template = set.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut meta = template.get("metadata").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("creationTimestamp");
        m.insert("name".into(), json!(pod_name));
        m.insert("namespace".into(), json!(ns));
        m.insert("ownerReferences".into(), owner_ref(set, "StatefulSet", "apps/v1"));
    }
    // The set's own delay applies to its pods; its never-ready is read live (see the kubelet).
    let mut annotations = simulation_annotations(set);
    if let Some(a) = annotations.as_object_mut() {
        a.remove(super::conventions::NEVER_READY_ANNOTATION);
        if !a.is_empty() {
            let merged = meta.as_object_mut().map(|m| m.entry("annotations").or_insert_with(|| json!({})));
            if let Some(Value::Object(m)) = merged {
                m.extend(a.clone());
            }
        }
    }
    meta["labels"][CONTROLLER_REVISION_HASH] = json!(revision);
    meta["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
    meta["labels"]["apps.kubernetes.io/pod-index"] = json!(i.to_string());
    let spec = template.get_mut("spec").filter(|s| s.is_object()).map(std::mem::take).unwrap_or_else(|| json!({}));
    let mut spec = spec;
    spec["hostname"] = json!(pod_name);
    if let Some(service) = set.pointer("/spec/serviceName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        spec["subdomain"] = json!(service);
    }
    for claim in set.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array).into_iter().flatten() {
        let claim_name = meta_str(claim, "name");
        let volume =
            json!({"name": claim_name, "persistentVolumeClaim": {"claimName": format!("{claim_name}-{pod_name}")}});
        let volumes = spec.as_object_mut().map(|s| s.entry("volumes").or_insert_with(|| json!([])));
        if let Some(Value::Array(v)) = volumes
            && !v.iter().any(|x| x.get("name").and_then(Value::as_str) == Some(claim_name))
        {
            v.push(volume);
        }
    }
    let t = c.target("", "v1", "pods", ns, "")?;
    match c.create(
        &t,
        json!({"metadata": meta, "spec": spec}),
        &WriteOptions::manager(super::conventions::STATEFULSET_MANAGER),
    ) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailability_down() {
        assert_eq!(scaled(Some(&json!("25%")), 3, true), 1);
        assert_eq!(scaled(Some(&json!("25%")), 3, false), 0);
        assert_eq!(scaled(Some(&json!(2)), 3, false), 2);
        assert_eq!(scaled_ceil(&json!("50%"), 3), 2);
    }

    #[test]
    fn a_job_pod_succeeds_and_others_run() {
        let job_pod = json!({"metadata": {"uid": "u", "ownerReferences": [{"kind": "Job", "controller": true, "uid": "j"}]},
            "spec": {"containers": [{"name": "c", "image": "x"}]}});
        assert_eq!(kubelet_status(&job_pod, false)["phase"], "Succeeded");
        let pod = json!({"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        let running = kubelet_status(&pod, false);
        assert_eq!(running["phase"], "Running");
        assert!(is_ready(&json!({"status": running})));
        assert!(!is_ready(&json!({"status": kubelet_status(&pod, true)})));
    }
}
