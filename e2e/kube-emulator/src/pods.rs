//! The pods subresources a real server has besides status: `eviction` (deletion honouring
//! PodDisruptionBudgets, pkg/registry/core/pod/storage/eviction.go) and `resize` (in-place
//! changes of container CPU and memory, the podResizeStrategy of pkg/registry/core/pod), with the
//! pod's QoS class (pkg/apis/core/helper/qos) they both depend on.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult, Cause};
use crate::meta::{is_deleting, meta_str, now_rfc3339};
use crate::ops::{Cluster, Sub, Target, WriteOptions};
use crate::selectors::LabelSelector;
use crate::store::State;

const PDBS: &str = "policy/poddisruptionbudgets";
/// The most pods a budget records as disrupted before refusing more (eviction.go).
const MAX_DISRUPTED_PODS: usize = 2000;

impl Cluster {
    /// POST pods/{name}/eviction: deletes the pod unless its PodDisruptionBudget forbids it.
    /// Answers the real server's 201 Status.
    pub fn evict(&self, t: &Target, eviction: &Value, o: &WriteOptions) -> ApiResult<Value> {
        let body_name = meta_str(eviction, "name");
        if !body_name.is_empty() && body_name != t.name {
            return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
        }
        let options = eviction.get("deleteOptions").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        let dry_run =
            o.dry_run || options.get("dryRun").and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == "All"));
        let o = WriteOptions { dry_run, ..o.clone() };
        let pod_target = Target { sub: None, ..t.clone() };
        let mut st = self.store.lock();
        let pod = st
            .get(t.rt.key(), &t.namespace, &t.name)
            .ok_or_else(|| ApiError::not_found(pod_target.rt.subject(&t.name)))?;
        if !ignores_budgets(&pod) {
            self.take_disruption(&mut st, &pod, dry_run)?;
        }
        self.delete_locked(&mut st, &pod_target, &options, &o)?;
        Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
    }

    /// `checkAndDecrement`: the one budget selecting the pod must allow a disruption; it is spent
    /// (disruptionsAllowed - 1, the pod recorded in disruptedPods) before the pod goes.
    fn take_disruption(&self, st: &mut State, pod: &Value, dry_run: bool) -> ApiResult<()> {
        let ns = meta_str(pod, "namespace");
        let budgets: Vec<Arc<Value>> = st
            .list(PDBS, Some(ns), None)
            .into_iter()
            .filter(|pdb| {
                pdb.pointer("/spec/selector")
                    .and_then(|s| LabelSelector::from_object(s).ok())
                    .is_some_and(|s| !s.is_empty() && s.matches(pod))
            })
            .collect();
        let pdb = match budgets.as_slice() {
            [] => return Ok(()),
            [one] => one.clone(),
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        };
        let name = meta_str(&pdb, "name").to_string();
        let status = |k: &str| pdb.pointer(&format!("/status/{k}")).and_then(Value::as_i64).unwrap_or(0);
        // An unhealthy pod does not count against a budget that is met (IfHealthyBudget, the
        // default) or one that says so (AlwaysAllow).
        let policy =
            pdb.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str).unwrap_or("IfHealthyBudget");
        if !is_ready(pod) && (policy == "AlwaysAllow" || status("currentHealthy") >= status("desiredHealthy")) {
            return Ok(());
        }
        let generation = pdb.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        if status("observedGeneration") < generation {
            return Err(budget_violated(format!(
                "The disruption budget {name} is still being processed by the server."
            )));
        }
        let allowed = status("disruptionsAllowed");
        if allowed < 0 {
            return Err(ApiError::forbidden("pdb disruptions allowed is negative"));
        }
        let disrupted = pdb.pointer("/status/disruptedPods").and_then(Value::as_object).map_or(0, |m| m.len());
        if disrupted > MAX_DISRUPTED_PODS {
            return Err(ApiError::forbidden(
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        if allowed == 0 {
            return Err(budget_violated(format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status("desiredHealthy"),
                status("currentHealthy")
            )));
        }
        if dry_run {
            return Ok(());
        }
        let mut spent = (*pdb).clone();
        spent["status"]["disruptionsAllowed"] = json!(allowed - 1);
        let disrupted = spent["status"].as_object_mut().map(|s| s.entry("disruptedPods").or_insert_with(|| json!({})));
        if let Some(Value::Object(m)) = disrupted {
            m.insert(meta_str(pod, "name").to_string(), json!(now_rfc3339()));
        }
        // The store's lock is held: the type comes from its registry, not `Cluster::target`.
        let rt = st.registry.lookup("policy", "v1", "poddisruptionbudgets").ok_or_else(ApiError::no_route)?;
        let t =
            Target { version: "v1".into(), rt, namespace: ns.to_string(), name: name.clone(), sub: Some(Sub::Status) };
        self.replace_locked(st, &t, spent, &WriteOptions::manager("kube-apiserver"))?;
        Ok(())
    }
}

/// The 429 of a budget that forbids the eviction, with its cause.
fn budget_violated(cause: String) -> ApiError {
    ApiError::new(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
        .with_details(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}))
}

/// `canIgnorePDB`: pods being deleted, finished or not yet running go without a budget.
fn ignores_budgets(pod: &Value) -> bool {
    is_deleting(pod)
        || matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed" | "Pending") | None
        )
}

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Ready")
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// The QoS class of a pod spec (pkg/apis/core/helper/qos `ComputePodQOS`): Guaranteed when every
/// container limits CPU and memory and requests what it limits, BestEffort when none requests
/// or limits either, Burstable otherwise.
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(*k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let (mut any, mut guaranteed) = (false, true);
    for c in &containers {
        let get = |kind: &str, r: &str| {
            c.pointer(&format!("/resources/{kind}/{r}")).and_then(Value::as_str).map(String::from).or_else(|| {
                c.pointer(&format!("/resources/{kind}/{r}")).filter(|v| v.is_number()).map(Value::to_string)
            })
        };
        for r in ["cpu", "memory"] {
            let (request, limit) = (get("requests", r), get("limits", r));
            any |= request.is_some() || limit.is_some();
            // A request defaults to the limit when only the limit is set.
            guaranteed &= limit.is_some() && request.as_ref().is_none_or(|q| Some(q) == limit.as_ref());
        }
    }
    match (any, guaranteed && !containers.is_empty()) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// The rules of pods/resize: only the containers' resources (and resize policies) change, the
/// rest of the request is dropped (`dropNonResizeUpdates`); resources other than CPU and memory
/// and a changed QoS class are refused (pkg/apis/core/validation `ValidatePodResize`).
pub fn resized(live: &Value, new: &Value) -> Result<Value, Vec<Cause>> {
    let mut out = live.clone();
    let mut errors = Vec::new();
    for key in ["containers", "initContainers"] {
        let Some(Value::Array(live_cs)) = out.pointer_mut(&format!("/spec/{key}")) else { continue };
        let wanted = new.pointer(&format!("/spec/{key}")).and_then(Value::as_array).cloned().unwrap_or_default();
        for c in live_cs.iter_mut() {
            let Some(w) = wanted.iter().find(|w| w.get("name") == c.get("name")) else { continue };
            for field in ["resources", "resizePolicy"] {
                match (w.get(field), c.as_object_mut()) {
                    (Some(v), Some(m)) => {
                        m.insert(field.into(), v.clone());
                    }
                    (None, Some(m)) => {
                        m.remove(field);
                    }
                    _ => {}
                }
            }
        }
    }
    let others_changed = |spec: Option<&Value>| {
        let mut s = spec.cloned().unwrap_or(Value::Null);
        for key in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = s.get_mut(key) {
                for c in cs.iter_mut() {
                    if let Some(Value::Object(r)) = c.get_mut("resources") {
                        for kind in ["requests", "limits"] {
                            if let Some(Value::Object(m)) = r.get_mut(kind) {
                                m.remove("cpu");
                                m.remove("memory");
                            }
                        }
                        r.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
                    }
                    if let Some(m) = c.as_object_mut() {
                        m.remove("resizePolicy");
                    }
                }
            }
        }
        s
    };
    if others_changed(out.get("spec")) != others_changed(live.get("spec")) {
        errors.push(Cause::new("FieldValueForbidden", "spec", "Forbidden: only cpu and memory resources are mutable"));
    }
    let (before, after) = (qos_class(live.get("spec")), qos_class(out.get("spec")));
    if before != after {
        errors.push(Cause::new(
            "FieldValueInvalid",
            "spec",
            format!("Invalid value: \"{before}\": Pod QOS Class may not change as a result of resizing"),
        ));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: Value) -> Value {
        json!({"spec": {"containers": [{"name": "c", "image": "x", "resources": resources}]}})
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        assert_eq!(qos_class(pod(json!({})).get("spec")), "BestEffort");
        assert_eq!(qos_class(pod(json!({"requests": {"cpu": "1"}})).get("spec")), "Burstable");
        let limits = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos_class(pod(limits).get("spec")), "Guaranteed");
    }

    #[test]
    fn a_resize_changes_only_cpu_and_memory_within_the_qos_class() {
        let live = pod(json!({"requests": {"cpu": "100m"}}));
        let mut wanted = pod(json!({"requests": {"cpu": "200m"}}));
        wanted["spec"]["containers"][0]["image"] = json!("other");
        let out = resized(&live, &wanted).expect("allowed");
        assert_eq!(out["spec"]["containers"][0]["resources"]["requests"]["cpu"], "200m");
        assert_eq!(out["spec"]["containers"][0]["image"], "x", "other changes are dropped");
        let gpu = pod(json!({"requests": {"cpu": "100m", "nvidia.com/gpu": "1"}}));
        assert_eq!(
            resized(&live, &gpu).expect_err("refused")[0].display(),
            "spec: Forbidden: only cpu and memory resources are mutable"
        );
        let guaranteed = pod(json!({"requests": {"cpu": "1"}, "limits": {"cpu": "1", "memory": "1Gi"}}));
        let err = resized(&live, &guaranteed).expect_err("qos");
        assert_eq!(
            err[0].display(),
            "spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"
        );
    }
}
