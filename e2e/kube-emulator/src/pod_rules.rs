//! The rules of pods as the API server applies them, no I/O: readiness, the QoS class
//! (pkg/apis/core/helper/qos) and the `resize` subresource's changes (in-place changes of
//! container CPU and memory, the podResizeStrategy of pkg/registry/core/pod).

use serde_json::Value;

use crate::errors::Cause;

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
    use serde_json::json;

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
