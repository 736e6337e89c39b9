//! The pods subresource a real server has besides status and resize: `eviction` (deletion
//! honouring PodDisruptionBudgets, pkg/registry/core/pod/storage/eviction.go). The rules of pods
//! themselves (readiness, QoS class, resize) are in `pod_rules`, below the write pipeline that
//! applies them.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::meta::{is_deleting, meta_str, now_rfc3339};
use crate::ops::{Cluster, Sub, Target, WriteOptions};
use crate::pod_rules::is_ready;
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
