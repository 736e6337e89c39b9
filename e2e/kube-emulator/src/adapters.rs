//! Thin wrappers around the patch, server-side-apply and schema engines.
//!
//! The engines live in `patch.rs`, `ssa.rs` and `schema.rs` (owned by other engineers); the write
//! pipeline calls them only through these functions, so wiring or replacing one is a one-line
//! change here. Until an engine lands, the fallback here is deliberately simple.

use serde_json::{Map, Value};

use crate::errors::{ApiError, ApiResult, Cause};

/// RFC 7386 JSON merge patch.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

/// Strategic merge patch for built-in kinds.
/// Fallback until `patch::apply_strategic_merge_patch` lands: a merge patch.
pub fn strategic_merge_patch(doc: &Value, patch: &Value, _group: &str, _kind: &str) -> ApiResult<Value> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("strategic merge patch must be a JSON object"));
    }
    Ok(merge_patch(doc, patch))
}

/// RFC 6902 JSON patch with the Go library's rules (a `test` of a missing path against `null`
/// succeeds; the kube-runtime finalizer helper depends on it).
pub fn json_patch(doc: &Value, ops: &Value) -> ApiResult<Value> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch"))?;
    let mut doc = doc.clone();
    for op in ops {
        apply_op(&mut doc, op).map_err(|m| ApiError::new(422, "Invalid", m))?;
    }
    Ok(doc)
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let name = op.get("op").and_then(Value::as_str).unwrap_or("");
    let path = op.get("path").and_then(Value::as_str).ok_or("missing path")?;
    let value = || op.get("value").cloned().ok_or_else(|| format!("missing value for {name}"));
    match name {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(|_| ()),
        "replace" => {
            remove(doc, path).map_err(|_| format!("replace operation does not apply: doc is missing key: {path}"))?;
            add(doc, path, value()?)
        }
        "test" => {
            let want = value()?;
            let got = doc.pointer(path);
            let ok = match got {
                Some(g) => *g == want,
                None => want.is_null(),
            };
            if ok { Ok(()) } else { Err(format!("testing value {path} failed: test failed")) }
        }
        "move" | "copy" => {
            let from = op.get("from").and_then(Value::as_str).ok_or("missing from")?;
            let v = if name == "move" {
                remove(doc, from)?
            } else {
                doc.pointer(from).cloned().ok_or_else(|| format!("copy from {from}: missing"))?
            };
            add(doc, path, v)
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let idx = path.rfind('/').ok_or_else(|| format!("invalid path {path}"))?;
    let last = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..idx].to_string(), last))
}

fn add(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = v;
        return Ok(());
    }
    let (parent, key) = split_pointer(path)?;
    let missing = || format!("add operation does not apply: doc is missing path: \"{path}\"");
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(key, v);
            Ok(())
        }
        Value::Array(a) => {
            let i = if key == "-" { a.len() } else { key.parse::<usize>().map_err(|_| missing())? };
            if i > a.len() {
                return Err(format!("add operation does not apply: index out of bounds: {path}"));
            }
            a.insert(i, v);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, key) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: \"{path}\"");
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&key).ok_or_else(missing),
        Value::Array(a) => {
            let i = key.parse::<usize>().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
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

/// A compiled CRD version schema. Fallback until `schema::CompiledSchema` lands: accepts all.
#[derive(Debug, Clone)]
pub struct Schema;

pub fn compile_schema(_schema: &Value) -> Result<Schema, Vec<String>> {
    Ok(Schema)
}

impl Schema {
    /// Drops unknown fields; returns their paths (for fieldValidation Strict/Warn).
    pub fn prune(&self, _obj: &mut Value) -> Vec<String> {
        Vec::new()
    }

    pub fn apply_defaults(&self, _obj: &mut Value) {}

    /// Validation causes; empty when valid.
    pub fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
        Vec::new()
    }

    /// The 422 message for `causes`.
    pub fn invalid_message(kind_group: &str, name: &str, causes: &[Cause]) -> Option<String> {
        let _ = (kind_group, name, causes);
        None
    }
}
