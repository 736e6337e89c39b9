//! CustomResourceDefinition lifecycle: validation, status conditions, registration.

use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult, Cause};
use crate::meta::{meta_str, now_rfc3339};
use crate::registry;
use crate::schema::CompiledSchema;
use crate::store::State;

/// The finalizer the real server puts on every CRD: its objects are deleted before it goes.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Sets the Terminating condition of a CRD being deleted.
pub fn mark_terminating(crd: &mut Value) {
    let cond = json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
                      "message": "CustomResource deletion is in progress", "lastTransitionTime": now_rfc3339()});
    if let Some(conds) = crd.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
        conds.retain(|c| c["type"] != "Terminating");
        conds.push(cond);
    }
}

/// New objects of a CRD being deleted are refused, as by the real server.
pub fn check_not_terminating(st: &State, rt: &registry::ResourceType) -> ApiResult<()> {
    let name = format!("{}.{}", rt.plural, rt.group);
    match st.get("apiextensions.k8s.io/customresourcedefinitions", "", &name) {
        Some(crd) if crate::meta::is_deleting(&crd) => {
            Err(ApiError::method_not_allowed("create not allowed while custom resource definition is terminating"))
        }
        _ => Ok(()),
    }
}

fn invalid(name: &str, field: &str, msg: String) -> ApiError {
    ApiError::invalid(
        "CustomResourceDefinition.apiextensions.k8s.io",
        name,
        vec![Cause::new("FieldValueInvalid", field, msg)],
    )
}

/// Validates a CRD and fills in defaults and status (names accepted, established at once).
pub fn prepare(crd: &mut Value) -> ApiResult<()> {
    let name = meta_str(crd, "name").to_string();
    let spec = crd.get("spec").cloned().unwrap_or(json!({}));
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let plural = spec.pointer("/names/plural").and_then(Value::as_str).unwrap_or("");
    let kind = spec.pointer("/names/kind").and_then(Value::as_str).unwrap_or("").to_string();
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            &name,
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = spec.get("versions").and_then(Value::as_array).cloned().unwrap_or_default();
    let storage: Vec<&Value> =
        versions.iter().filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true)).collect();
    if storage.len() != 1 {
        return Err(invalid(&name, "spec.versions", "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one version marked as storage version".to_string()));
    }
    for (i, v) in versions.iter().enumerate() {
        if let Some(schema) = v.pointer("/schema/openAPIV3Schema")
            && let Err(errs) = CompiledSchema::new(schema)
        {
            let causes = errs
                .into_iter()
                .map(|e| Cause::new("FieldValueInvalid", &format!("spec.versions[{i}].schema.openAPIV3Schema"), e))
                .collect();
            return Err(ApiError::invalid("CustomResourceDefinition.apiextensions.k8s.io", &name, causes));
        }
    }
    check_conversion(&name, spec.get("conversion"))?;
    let storage_name = storage[0].get("name").cloned().unwrap_or(json!(""));
    let names = &mut crd["spec"]["names"];
    if names.get("singular").is_none() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    let accepted = crd["spec"]["names"].clone();
    if crd.pointer("/spec/conversion").is_none() {
        crd["spec"]["conversion"] = json!({"strategy": "None"});
    }
    let prior_stored = crd.pointer("/status/storedVersions").cloned();
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Established").and_then(|c| c.get("lastTransitionTime")).cloned())
        .unwrap_or_else(|| json!(now_rfc3339()));
    let mut stored: Vec<Value> = prior_stored.and_then(|v| v.as_array().cloned()).unwrap_or_default();
    if !stored.contains(&storage_name) {
        stored.push(storage_name);
    }
    crd["status"] = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": established},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": established},
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    });
    if crate::meta::is_deleting(crd) {
        mark_terminating(crd);
    }
    Ok(())
}

/// A Webhook conversion needs a client config and to speak ConversionReview v1.
fn check_conversion(name: &str, conversion: Option<&Value>) -> ApiResult<()> {
    let Some(conversion) = conversion.filter(|c| c.get("strategy").and_then(Value::as_str) == Some("Webhook")) else {
        return Ok(());
    };
    let Some(webhook) = conversion.get("webhook").filter(|w| w.get("clientConfig").is_some()) else {
        let cause = Cause::new(
            "FieldValueRequired",
            "spec.conversion.webhook",
            "Required value: required when strategy is set to Webhook",
        );
        return Err(ApiError::invalid("CustomResourceDefinition.apiextensions.k8s.io", name, vec![cause]));
    };
    let versions = webhook.get("conversionReviewVersions").and_then(Value::as_array).cloned().unwrap_or_default();
    if !versions.iter().any(|v| v == "v1") {
        return Err(invalid(
            name,
            "spec.conversion.webhook.conversionReviewVersions",
            format!(
                "Invalid value: {}: the emulator speaks ConversionReview v1 only",
                serde_json::to_string(&versions).unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// Makes the CRD's resource servable at once (discovery and OpenAPI follow the registry).
pub fn register(st: &mut State, crd: &Value) -> ApiResult<()> {
    let rt = registry::from_crd(crd).ok_or_else(|| {
        invalid(meta_str(crd, "name"), "spec", "Invalid value: incomplete CustomResourceDefinition".into())
    })?;
    if let Some(existing) = st.registry.by_kind(&rt.group, &rt.kind)
        && !existing.custom
    {
        return Err(invalid(
            meta_str(crd, "name"),
            "spec.group",
            format!("Invalid value: \"{}\": is a built-in group", rt.group),
        ));
    }
    st.registry.upsert_custom(rt);
    Ok(())
}

/// Removes a deleted CRD's resource and all its objects.
pub fn unregister(st: &mut State, crd: &Value) {
    let Some(rt) = registry::from_crd(crd) else { return };
    for obj in st.list(rt.key(), None, None) {
        st.remove(rt.key(), meta_str(&obj, "namespace"), meta_str(&obj, "name"));
    }
    st.registry.remove_custom(&rt.group, &rt.plural);
}
