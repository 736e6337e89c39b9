//! Thin wrappers around the patch, server-side-apply and schema engines.
//!
//! The engines live in `patch.rs`, `ssa.rs` and `schema.rs` (owned by other engineers); the write
//! pipeline calls them only through these functions, so wiring or replacing one is a one-line
//! change here. Until an engine lands, the fallback here is deliberately simple.

use std::sync::Arc;

use serde_json::Value;

use crate::errors::{ApiError, ApiResult, Cause};

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

/// Server-side apply of `applied` onto `live` by `manager`.
/// Fallback until `ssa::apply` lands: a merge of the applied fields, no ownership or conflicts.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    _manager: &str,
    _subresource: Option<&str>,
    _force: bool,
) -> ApiResult<Value> {
    Ok(match live {
        Some(l) => merge_patch(l, applied),
        None => applied.clone(),
    })
}

/// Records a non-apply write by `manager` in `managedFields`.
/// Fallback until `ssa::record_update` lands: leaves the object unchanged.
pub fn record_update(_old: Option<&Value>, new: Value, _manager: &str, _subresource: Option<&str>) -> Value {
    new
}

/// A compiled CRD version schema (compiled once, at CRD registration).
#[derive(Debug, Clone)]
pub struct Schema(Arc<crate::schema::CompiledSchema>);

/// Compiles a version's `openAPIV3Schema`; errors say why the server refuses the CRD.
pub fn compile_schema(schema: &Value) -> Result<Schema, Vec<String>> {
    crate::schema::CompiledSchema::new(schema).map(|s| Schema(Arc::new(s)))
}

impl Schema {
    /// Drops unknown fields; returns their paths like `spec.foo` (for fieldValidation).
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        self.0.prune(obj).into_iter().map(|p| p.trim_start_matches('.').to_string()).collect()
    }

    pub fn apply_defaults(&self, obj: &mut Value) {
        self.0.apply_defaults(obj);
    }

    /// Validation causes and the Status message; None when valid.
    pub fn validate(
        &self,
        kind_group: &str,
        name: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Option<(String, Vec<Cause>)> {
        let errs = self.0.validate(obj, old);
        if errs.is_empty() {
            return None;
        }
        let message = crate::schema::invalid_message(kind_group, name, &errs);
        let causes = errs.iter().map(|e| Cause::new(e.reason(), &e.field, e.body())).collect();
        Some((message, causes))
    }
}
