//! Thin wrappers around the patch, server-side-apply and schema engines.
//!
//! The engines live in `patch.rs`, `ssa.rs` and `schema.rs` (owned by other engineers); the write
//! pipeline calls them only through these functions, so wiring or replacing one is a one-line
//! change here. Until an engine lands, the fallback here is deliberately simple.

use std::sync::Arc;

use serde_json::Value;

use crate::meta::now_rfc3339;
use crate::registry::ResourceType;
use crate::ssa::Structure;

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

/// The field structure server-side apply merges by: Go types for built-ins, the CRD schema
/// (cached at registration) for custom resources.
fn structure(rt: &ResourceType, version: &str) -> Arc<Structure> {
    if let Some(s) = rt.version_info.get(version).and_then(|v| v.structure.clone()) {
        return s;
    }
    Arc::new(Structure::built_in(&rt.group, &rt.kind))
}

/// The CRD version's structure, computed once when the CRD is registered.
pub fn crd_structure(schema: &Value, status_subresource: bool) -> Arc<Structure> {
    Arc::new(Structure::from_crd_schema(schema, status_subresource))
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
