//! RFC 6902 JSON patch with the rules of Go's `gopkg.in/evanphx/json-patch.v4`, the library
//! kube-apiserver applies `application/json-patch+json` bodies with. Where Go and the RFC differ, Go wins:
//! - `test` of a missing object member against `null` succeeds (kube-runtime's finalizer helper relies on it);
//!   a member holding `null` counts as missing;
//! - `replace` of a missing object member sets it;
//! - negative array indices count from the end;
//! - a path's first segment is not checked to be empty (`a/b` addresses `/b`).
//!
//! Error messages are the library's, because the apiserver forwards them as the Status cause.

use serde_json::{Map, Value};

use super::PatchError;

/// kube-apiserver's `maxJSONPatchOperations`.
const MAX_OPERATIONS: usize = 10_000;

/// Applies a JSON patch body (`ops`, already parsed as JSON) to `doc`.
///
/// A body that is not an array of operation objects is a 400 BadRequest (the apiserver fails to decode it);
/// an operation that does not apply is a 422 (see [`PatchError::OperationFailed`]).
pub fn apply_json_patch(doc: &Value, ops: &Value) -> Result<Value, PatchError> {
    let ops = decode_operations(ops)?;
    let mut out = doc.clone();
    for op in ops {
        apply_operation(&mut out, op).map_err(PatchError::OperationFailed)?;
    }
    Ok(out)
}

fn decode_operations(ops: &Value) -> Result<&Vec<Value>, PatchError> {
    let list = ops.as_array().ok_or_else(|| {
        PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_json_kind(ops)
        ))
    })?;
    if let Some(bad) = list.iter().find(|op| !op.is_object()) {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            go_json_kind(bad)
        )));
    }
    if list.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations { max: MAX_OPERATIONS, got: list.len() });
    }
    Ok(list)
}

/// The JSON kind names Go's encoding/json uses in "cannot unmarshal X into ..." messages.
fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn apply_operation(doc: &mut Value, op: &Value) -> Result<(), String> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
    match kind {
        "add" => add(doc, op),
        "remove" => remove(doc, op),
        "replace" => replace(doc, op),
        "move" => move_op(doc, op),
        "copy" => copy(doc, op),
        "test" => test(doc, op),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// Go's lazyNode decodes JSON `null` to a nil pointer, so an absent `value` and `null` are the same.
fn op_value(op: &Value) -> Value {
    op.get("value").cloned().unwrap_or(Value::Null)
}

fn op_path<'a>(op: &'a Value, kind: &str) -> Result<&'a str, String> {
    op.get("path").and_then(Value::as_str).ok_or_else(|| match kind {
        // add, remove and copy drop the cause and wrap ErrMissing; the others keep it.
        "add" | "remove" | "copy" => format!("{kind} operation failed to decode path: missing value"),
        _ => format!("{kind} operation failed to decode path: operation missing path field: missing value"),
    })
}

fn op_from<'a>(op: &'a Value, kind: &str) -> Result<&'a str, String> {
    op.get("from")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{kind} operation failed to decode from: operation, missing from field: missing value"))
}

/// Splits a pointer into the container's tokens and the last key, like Go's `findObject`.
fn split_pointer(path: &str) -> Option<(Vec<String>, String)> {
    let mut parts: Vec<String> = path.split('/').map(unescape).collect();
    if parts.len() < 2 {
        return None;
    }
    let key = parts.pop()?;
    parts.remove(0);
    Some((parts, key))
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The container (object or array) a pointer's last token lives in, or None if a step is missing.
fn find_container<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let (parents, key) = split_pointer(path)?;
    let mut cur = doc;
    for part in &parents {
        cur = match cur {
            Value::Object(map) => map.get_mut(part).filter(|v| !v.is_null())?,
            Value::Array(items) => {
                let idx = array_index(part, items.len()).ok()?;
                items.get_mut(idx)?
            }
            _ => return None,
        };
    }
    match cur {
        Value::Object(_) | Value::Array(_) => Some((cur, key)),
        _ => None,
    }
}

/// Resolves an existing-element index (negative counts from the end), with the library's messages.
fn array_index(key: &str, len: usize) -> Result<usize, String> {
    let idx: i64 = key.parse().map_err(|_| {
        format!("value was not a proper array index: '{key}': strconv.Atoi: parsing \"{key}\": invalid syntax")
    })?;
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let resolved = if idx < 0 { idx + len_i } else { idx };
    if resolved < 0 || resolved >= len_i {
        return Err(format!("Unable to access invalid index: {idx}: invalid index referenced"));
    }
    usize::try_from(resolved).map_err(|_| format!("Unable to access invalid index: {idx}: invalid index referenced"))
}

/// Index for an insertion: `-` appends, `len` appends, negative counts from the end of the grown array.
fn insert_index(key: &str, len: usize) -> Result<usize, String> {
    if key == "-" {
        return Ok(len);
    }
    array_index(key, len + 1)
}

fn add(doc: &mut Value, op: &Value) -> Result<(), String> {
    let path = op_path(op, "add")?;
    let (container, key) = find_container(doc, path)
        .ok_or_else(|| format!("add operation does not apply: doc is missing path: \"{path}\": missing value"))?;
    insert(container, &key, op_value(op)).map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn insert(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            let idx = insert_index(key, items.len())?;
            items.insert(idx, value);
            Ok(())
        }
        _ => Err("invalid container".to_string()),
    }
}

fn remove(doc: &mut Value, op: &Value) -> Result<(), String> {
    let path = op_path(op, "remove")?;
    let (container, key) = find_container(doc, path)
        .ok_or_else(|| format!("remove operation does not apply: doc is missing path: \"{path}\": missing value"))?;
    take(container, &key).map(drop).map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

/// Removes and returns the member or element at `key`.
fn take(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(map) => {
            map.remove(key).ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value"))
        }
        Value::Array(items) => {
            let idx = array_index(key, items.len())?;
            Ok(items.remove(idx))
        }
        _ => Err("invalid container".to_string()),
    }
}

/// The value at `key`, None for a missing (or null) member; an error for a bad array index.
fn get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match container {
        Value::Object(map) => Ok(map.get(key).filter(|v| !v.is_null())),
        Value::Array(items) => {
            let idx = array_index(key, items.len())?;
            Ok(items.get(idx))
        }
        _ => Ok(None),
    }
}

fn replace(doc: &mut Value, op: &Value) -> Result<(), String> {
    let path = op_path(op, "replace")?;
    if path.is_empty() {
        // The whole document, which must stay an object or array.
        let value = op_value(op);
        if !value.is_object() && !value.is_array() {
            return Err("replace operation value must be object or array".to_string());
        }
        *doc = value;
        return Ok(());
    }
    let (container, key) = find_container(doc, path)
        .ok_or_else(|| format!("replace operation does not apply: doc is missing path: {path}: missing value"))?;
    get(container, &key)
        .map_err(|_| format!("replace operation does not apply: doc is missing key: {path}: missing value"))?;
    match container {
        Value::Object(map) => {
            map.insert(key, op_value(op));
        }
        Value::Array(items) => {
            let idx = array_index(&key, items.len())?;
            items[idx] = op_value(op);
        }
        _ => {}
    }
    Ok(())
}

fn move_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let from = op_from(op, "move")?;
    let (container, key) = find_container(doc, from)
        .ok_or_else(|| format!("move operation does not apply: doc is missing from path: {from}: missing value"))?;
    let value = take(container, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let path = op_path(op, "move")?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("move operation does not apply: doc is missing destination path: {path}: missing value")
    })?;
    insert(container, &key, value).map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn copy(doc: &mut Value, op: &Value) -> Result<(), String> {
    let from = op_from(op, "copy")?;
    let missing_from = || format!("copy operation does not apply: doc is missing from path: {from}: missing value");
    let (container, key) = find_container(doc, from).ok_or_else(missing_from)?;
    let value = get(container, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned()
        .ok_or_else(missing_from)?;
    let path = op_path(op, "copy")?;
    let (container, key) = find_container(doc, path).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing destination path: {path}: missing value")
    })?;
    insert(container, &key, value).map_err(|e| format!("error while adding value during copy: {e}"))
}

fn test(doc: &mut Value, op: &Value) -> Result<(), String> {
    let path = op_path(op, "test")?;
    let expected = op_value(op);
    let actual = if path.is_empty() {
        Some(&*doc)
    } else {
        let (container, key) = find_container(doc, path)
            .ok_or_else(|| format!("test operation does not apply: is missing path: {path}: missing value"))?;
        get(container, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?
    };
    let passed = match actual {
        None => expected.is_null(),
        Some(actual) => json_equal(actual, &expected),
    };
    if passed { Ok(()) } else { Err(format!("testing value {path} failed: test failed")) }
}

/// Deep equality where objects ignore member order and a `null` member equals a missing one, like
/// comparing Go's decoded lazyNodes.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    let present = |m: &Map<String, Value>| m.values().filter(|v| !v.is_null()).count();
    present(x) == present(y)
        && x.iter().filter(|(_, v)| !v.is_null()).all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod_with(finalizers: Option<Value>) -> Value {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        if let Some(f) = finalizers {
            pod["metadata"]["finalizers"] = f;
        }
        pod
    }

    #[test]
    fn finalizer_helper_adds_to_an_object_without_finalizers() {
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["F"]}
        ]);
        let out = apply_json_patch(&pod_with(None), &ops).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["F"]));
    }

    #[test]
    fn finalizer_helper_adds_to_existing_finalizers() {
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": ["other"]},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "F"}
        ]);
        let out = apply_json_patch(&pod_with(Some(json!(["other"]))), &ops).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["other", "F"]));
    }

    #[test]
    fn finalizer_helper_removes_by_index_after_testing_it() {
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "F"},
            {"op": "remove", "path": "/metadata/finalizers/1"}
        ]);
        let out = apply_json_patch(&pod_with(Some(json!(["other", "F"]))), &ops).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["other"]));
    }

    #[test]
    fn a_failed_test_is_a_422_with_the_library_message_as_cause() {
        let ops = json!([{"op": "test", "path": "/metadata/finalizers", "value": null}]);
        let err = apply_json_patch(&pod_with(Some(json!(["F"]))), &ops).unwrap_err();
        assert_eq!(err.status_code(), 422);
        assert_eq!(err.reason(), "Invalid");
        assert_eq!(err.message(), "the server rejected our request due to an error in our request");
        assert_eq!(err.cause(), Some("testing value /metadata/finalizers failed: test failed"));
    }

    #[test]
    fn stale_index_test_fails_so_the_removal_is_not_applied() {
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "F"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]);
        let err = apply_json_patch(&pod_with(Some(json!(["other", "F"]))), &ops).unwrap_err();
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn a_body_that_is_not_an_array_is_a_400() {
        let err = apply_json_patch(&pod_with(None), &json!({"op": "add"})).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert_eq!(err.reason(), "BadRequest");
        assert_eq!(err.message(), "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
    }

    #[test]
    fn removing_a_missing_member_fails() {
        let ops = json!([{"op": "remove", "path": "/metadata/labels"}]);
        let err = apply_json_patch(&pod_with(None), &ops).unwrap_err();
        assert_eq!(
            err.cause(),
            Some(
                "error in remove for path: '/metadata/labels': Unable to remove nonexistent key: labels: missing value"
            )
        );
        let ops = json!([{"op": "remove", "path": "/metadata/labels/a"}]);
        let err = apply_json_patch(&pod_with(None), &ops).unwrap_err();
        assert_eq!(
            err.cause(),
            Some("remove operation does not apply: doc is missing path: \"/metadata/labels/a\": missing value")
        );
    }

    #[test]
    fn add_needs_an_existing_parent_and_an_index_in_range() {
        let err =
            apply_json_patch(&pod_with(None), &json!([{"op": "add", "path": "/spec/x", "value": 1}])).unwrap_err();
        assert_eq!(err.status_code(), 422);
        let doc = pod_with(Some(json!(["a"])));
        let err = apply_json_patch(&doc, &json!([{"op": "add", "path": "/metadata/finalizers/3", "value": "b"}]))
            .unwrap_err();
        assert_eq!(
            err.cause(),
            Some(
                "error in add for path: '/metadata/finalizers/3': Unable to access invalid index: 3: invalid index referenced"
            )
        );
        let out =
            apply_json_patch(&doc, &json!([{"op": "add", "path": "/metadata/finalizers/0", "value": "b"}])).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
    }

    #[test]
    fn replace_move_copy_and_escapes() {
        let doc = json!({"metadata": {"annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"n": 1}});
        let ops = json!([
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "move", "from": "/metadata/annotations/c~0d", "path": "/spec/moved"},
            {"op": "copy", "from": "/spec/n", "path": "/spec/copied"},
            {"op": "replace", "path": "/spec/new", "value": true}
        ]);
        let out = apply_json_patch(&doc, &ops).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"annotations": {"a/b": "x"}}, "spec": {"n": 1, "moved": "2", "copied": 1, "new": true}})
        );
    }

    #[test]
    fn test_compares_objects_regardless_of_member_order_and_negative_indices_count_from_the_end() {
        let doc = json!({"a": {"x": 1, "y": [1, 2]}, "l": [1, 2, 3]});
        let ops = json!([
            {"op": "test", "path": "/a", "value": {"y": [1, 2], "x": 1}},
            {"op": "remove", "path": "/l/-1"}
        ]);
        assert_eq!(apply_json_patch(&doc, &ops).unwrap()["l"], json!([1, 2]));
    }

    #[test]
    fn more_than_ten_thousand_operations_are_too_large() {
        let ops = Value::Array(vec![json!({"op": "test", "path": "/a", "value": null}); 10_001]);
        let err = apply_json_patch(&json!({}), &ops).unwrap_err();
        assert_eq!((err.status_code(), err.reason()), (413, "RequestEntityTooLarge"));
        let ops = Value::Array(vec![json!({"op": "test", "path": "/a", "value": null}); 10_000]);
        assert!(apply_json_patch(&json!({}), &ops).is_ok());
    }

    #[test]
    fn operations_without_path_and_whole_document_replace() {
        let err = apply_json_patch(&json!({}), &json!([{"op": "add", "value": 1}])).unwrap_err();
        assert_eq!(err.cause(), Some("add operation failed to decode path: missing value"));
        let err = apply_json_patch(&json!({}), &json!([{"op": "move", "path": "/a"}])).unwrap_err();
        assert_eq!(
            err.cause(),
            Some("move operation failed to decode from: operation, missing from field: missing value")
        );
        let out =
            apply_json_patch(&json!({"a": 1}), &json!([{"op": "replace", "path": "", "value": {"b": 2}}])).unwrap();
        assert_eq!(out, json!({"b": 2}));
    }

    #[test]
    fn unknown_operation_is_rejected() {
        let err = apply_json_patch(&json!({}), &json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
        assert_eq!(err.cause(), Some("Unexpected kind: frobnicate"));
    }
}
