//! RFC 7386 JSON merge patch (`application/merge-patch+json`).

use serde_json::{Map, Value};

use super::PatchError;

/// Applies a merge patch: objects merge member by member, `null` deletes, anything else replaces.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Value {
    let Value::Object(patch_members) = patch else {
        return patch.clone();
    };
    let mut out = match doc {
        Value::Object(members) => members.clone(),
        _ => Map::new(),
    };
    for (key, patch_value) in patch_members {
        if patch_value.is_null() {
            out.remove(key);
            continue;
        }
        let merged = apply_merge_patch(out.get(key).unwrap_or(&Value::Null), patch_value);
        out.insert(key.clone(), merged);
    }
    Value::Object(out)
}

/// kube-apiserver (Go json-patch v4 `MergePatch`) refuses a merge patch body that is `null` or neither an
/// object nor an array with 400 "Invalid JSON Patch"; RFC 7386 alone would accept it as a replacement.
pub fn check_merge_patch(patch: &Value) -> Result<(), PatchError> {
    match patch {
        Value::Object(_) | Value::Array(_) => Ok(()),
        _ => Err(PatchError::BadRequest("Invalid JSON Patch".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn null_deletes_and_objects_merge_recursively() {
        let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2], "y": 1}});
        let patch =
            json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"x": [3], "z": {"k": null, "v": 1}}});
        assert_eq!(
            apply_merge_patch(&doc, &patch),
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"x": [3], "y": 1, "z": {"v": 1}}})
        );
    }

    #[test]
    fn deleting_a_missing_member_is_a_no_op() {
        let doc = json!({"a": 1});
        assert_eq!(apply_merge_patch(&doc, &json!({"b": null})), doc);
    }

    #[test]
    fn non_object_patches_replace_and_bad_bodies_are_400() {
        assert_eq!(apply_merge_patch(&json!({"a": 1}), &json!([1])), json!([1]));
        assert_eq!(apply_merge_patch(&json!({"a": 1}), &json!({"a": {"b": 1}})), json!({"a": {"b": 1}}));
        let err = check_merge_patch(&json!("x")).unwrap_err();
        assert_eq!((err.status_code(), err.message().as_str()), (400, "Invalid JSON Patch"));
        assert!(check_merge_patch(&Value::Null).is_err());
        assert!(check_merge_patch(&json!({})).is_ok());
    }
}
