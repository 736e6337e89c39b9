//! The write pipeline's adapters to the engines it runs (JSON/merge/strategic patches in `patch`,
//! server-side apply in `ssa`, CRD schemas in `schema`): each engine speaks its own error type,
//! and these functions turn it into the `Status` the real server answers (reason, message,
//! causes), so that `ops` deals only in `ApiError`.

use std::sync::Arc;

use serde_json::Value;

use crate::errors::{ApiError, ApiResult, Cause};
use crate::meta::now_rfc3339;
use crate::registry::ResourceType;
use crate::schema::CompiledSchema;
use crate::ssa::Structure;

/// RFC 7386 JSON merge patch.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    crate::patch::apply_merge_patch(doc, patch)
}

/// A merge patch, after checking it is one (an object).
pub fn checked_merge_patch(doc: &Value, patch: &Value) -> ApiResult<Value> {
    crate::patch::check_merge_patch(patch).map_err(patch_error)?;
    Ok(merge_patch(doc, patch))
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge_patch(doc: &Value, patch: &Value, group: &str, kind: &str) -> ApiResult<Value> {
    crate::patch::apply_strategic_merge_patch(doc, patch, group, kind).map_err(patch_error)
}

/// RFC 6902 JSON patch with the Go library's rules (a `test` of a missing path against `null`
/// succeeds; the kube-runtime finalizer helper depends on it).
pub fn json_patch(doc: &Value, ops: &Value) -> ApiResult<Value> {
    crate::patch::apply_json_patch(doc, ops).map_err(patch_error)
}

fn patch_error(e: crate::patch::PatchError) -> ApiError {
    let mut err = ApiError::new(e.status_code(), e.reason(), e.message());
    if let Some(cause) = e.cause() {
        err = err.with_details(serde_json::json!({
            "causes": [{"reason": "UnexpectedServerResponse", "message": cause}],
        }));
    }
    err
}

/// The field structure server-side apply merges by: Go types for built-ins, the CRD schema
/// (cached at registration) for custom resources.
fn structure(rt: &ResourceType, version: &str) -> Arc<Structure> {
    if let Some(s) = rt.version_info.get(version).and_then(|v| v.structure.clone()) {
        return s;
    }
    Arc::new(Structure::built_in(&rt.group, &rt.kind))
}

/// Server-side apply of `applied` onto `live` by `manager` (409 with FieldManagerConflict causes).
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    sub: Option<&str>,
    force: bool,
    rt: &ResourceType,
    version: &str,
) -> ApiResult<Value> {
    let name = crate::meta::meta_str(applied, "name");
    crate::ssa::apply(live, applied, manager, sub, force, &structure(rt, version), &now_rfc3339()).map_err(|e| {
        let mut details = serde_json::json!({"name": name, "group": rt.group, "kind": rt.plural});
        let causes = e.causes();
        if !causes.is_empty() {
            details["causes"] = Value::Array(causes);
        }
        ApiError::new(e.status_code(), e.reason(), e.to_string()).with_details(details)
    })
}

/// Records a non-apply write by `manager` in `managedFields`.
pub fn record_update(
    old: Option<&Value>,
    new: Value,
    manager: &str,
    sub: Option<&str>,
    rt: &ResourceType,
    version: &str,
) -> Value {
    crate::ssa::record_update(old, &new, manager, sub, &structure(rt, version), &now_rfc3339())
}

/// Drops the fields `schema` does not declare; returns their paths like `spec.foo` (for
/// fieldValidation).
pub fn prune(schema: &CompiledSchema, obj: &mut Value) -> Vec<String> {
    schema.prune(obj).into_iter().map(|p| p.trim_start_matches('.').to_string()).collect()
}

/// Validation causes and the Status message; None when valid.
pub fn validate(
    schema: &CompiledSchema,
    kind_group: &str,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
) -> Option<(String, Vec<Cause>)> {
    let errs = schema.validate_write(obj, old);
    if errs.is_empty() {
        return None;
    }
    let message = crate::schema::invalid_message(kind_group, name, &errs);
    let causes = errs.iter().map(|e| Cause::new(e.reason(), &e.field, e.body())).collect();
    Some((message, causes))
}
