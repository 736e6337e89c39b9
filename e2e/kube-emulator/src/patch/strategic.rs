//! Strategic merge patch (placeholder while it is written).

use serde_json::Value;

use super::PatchError;

/// Applies a strategic merge patch to a built-in kind's object.
pub fn apply_strategic_merge_patch(doc: &Value, patch: &Value, _group: &str, _kind: &str) -> Result<Value, PatchError> {
    Ok(super::apply_merge_patch(doc, patch))
}
