//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds, following
//! k8s.io/apimachinery/pkg/util/strategicpatch with the options kube-apiserver uses
//! (`MergeParallelList` and `IgnoreUnmatchedNulls` both on).
//!
//! Behaviour worth knowing, all of it the apiserver's:
//! - lists merged by key put items that are new to the object *before* the existing ones, unless
//!   `$setElementOrder/<field>` says otherwise;
//! - `$patch: delete` on a map leaves an empty map, not a missing field;
//! - lists without a merge strategy are replaced whole, `$patch` elements included in nothing.
//!
//! Where the apiserver would decode the result into a Go struct (dropping unknown `$...` keys and nulls),
//! patch content copied into the object is cleaned the same way.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::PatchError;
use super::merge_keys::{self, Shape};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Position in the built-in type table: the Go type name, or None where the table knows nothing.
type TypeRef = Option<&'static str>;

/// Applies a strategic merge patch to an object of a built-in kind (`group` is "" for core).
///
/// The caller answers 415 for custom resources before calling this.
pub fn apply_strategic_merge_patch(doc: &Value, patch: &Value, group: &str, kind: &str) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_kind(patch)
        )));
    };
    let original = doc.as_object().cloned().unwrap_or_default();
    merge_map(original, patch.clone(), merge_keys::root_type(group, kind)).map(Value::Object)
}

/// How a list field merges under SMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// No `patchStrategy:"merge"`: the patch's list replaces the object's.
    Replace,
    /// `patchStrategy:"merge"`, with the merge key for lists of objects.
    Merge(Option<&'static str>),
}

/// The table's answer for `field` of type `ty`: the value's type and the list strategy.
fn field_meta(ty: TypeRef, field: &str) -> (TypeRef, ListStrategy) {
    let Some(row) = ty.and_then(|t| merge_keys::lookup(t, field)) else {
        return (None, ListStrategy::Replace);
    };
    let strategy = match row.shape {
        Shape::KeyedList { smp_key, .. } => ListStrategy::Merge(Some(smp_key)),
        Shape::SetList => ListStrategy::Merge(None),
        Shape::Object | Shape::AtomicObject | Shape::AtomicList => ListStrategy::Replace,
    };
    (Some(row.ty), strategy)
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: TypeRef,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return map_directive(directive.clone(), patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, ty)?;
    for (key, patch_value) in patch {
        merge_field(&mut original, key, patch_value, ty)?;
    }
    Ok(original)
}

/// `$patch` inside a map: `replace` takes the patch as is, `delete` empties the map.
fn map_directive(directive: Value, mut patch: Map<String, Value>) -> Result<Map<String, Value>, PatchError> {
    match directive.as_str() {
        Some("replace") => {
            patch.remove(DIRECTIVE);
            Ok(clean_map(patch))
        }
        Some("delete") => Ok(Map::new()),
        _ => Err(PatchError::Unconverted(format!(
            "unknown patch type: {} in map: {}",
            go_fmt(&directive),
            go_fmt(&Value::Object(patch))
        ))),
    }
}

/// Merges one member of the patch into `original`.
fn merge_field(
    original: &mut Map<String, Value>,
    key: String,
    patch_value: Value,
    ty: TypeRef,
) -> Result<(), PatchError> {
    let (key, is_delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
        Some(rest) => (directive_target(rest, bad_primitive_list)?.to_string(), true),
        // Other `$` keys are unknown fields to the Go types and vanish on decoding.
        None if key.starts_with('$') => return Ok(()),
        None => (key, false),
    };
    if patch_value.is_null() {
        original.remove(&key);
        return Ok(());
    }
    let (child_ty, strategy) = field_meta(ty, &key);
    let merged = match (original.remove(&key), patch_value) {
        (Some(Value::Object(o)), Value::Object(p)) => Value::Object(merge_map(o, p, child_ty)?),
        (Some(Value::Array(o)), Value::Array(p)) => Value::Array(merge_list(o, p, child_ty, strategy, is_delete_list)?),
        (current, _) if is_delete_list => match current {
            Some(v) => v,
            None => return Ok(()),
        },
        (_, p) => clean(p),
    };
    original.insert(key, merged);
    Ok(())
}

/// The field name after `$directive/`; anything else is the directive's 400 error.
fn directive_target(rest: &str, err: fn() -> PatchError) -> Result<&str, PatchError> {
    rest.strip_prefix('/').ok_or_else(err)
}

fn bad_primitive_list() -> PatchError {
    PatchError::BadRequest("invalid patch format of primitive list".to_string())
}

fn bad_set_element_order() -> PatchError {
    PatchError::BadRequest("invalid patch format of setElementOrder list".to_string())
}

fn bad_retain_keys() -> PatchError {
    PatchError::BadRequest("invalid patch format of retainKeys".to_string())
}

/// `$retainKeys`: drop members of `original` that are not listed; every patched member must be listed.
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let retain = retain.as_array().ok_or_else(bad_retain_keys)?;
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    let unlisted_patch_member = patch.iter().any(|(k, v)| {
        !v.is_null() && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST) && !k.starts_with(SET_ELEMENT_ORDER) && !listed(k)
    });
    if unlisted_patch_member {
        return Err(bad_retain_keys());
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the field's list now and orders the result by the directive,
/// then the patch, then the live object (the apiserver's `mergePatchIntoOriginal`).
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: TypeRef,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for directive_key in keys {
        let order = patch.remove(&directive_key).unwrap_or(Value::Null);
        let field = directive_target(&directive_key[SET_ELEMENT_ORDER.len()..], bad_set_element_order)?.to_string();
        let Value::Array(order) = order else {
            return Err(bad_set_element_order());
        };
        let current = take_list(original, &field)?;
        let patched = take_list(patch, &field)?;
        if let Some(merged) = merge_in_order(current, patched, &order, field_meta(ty, &field))? {
            original.insert(field, Value::Array(merged));
        }
    }
    Ok(())
}

fn take_list(map: &mut Map<String, Value>, field: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match map.remove(field) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => {
            Err(PatchError::Unconverted(format!("expected []interface{{}}, but got {}", go_type_name(&other))))
        }
    }
}

fn merge_in_order(
    current: Option<Vec<Value>>,
    patched: Option<Vec<Value>>,
    order: &[Value],
    (child_ty, strategy): (TypeRef, ListStrategy),
) -> Result<Option<Vec<Value>>, PatchError> {
    let merge_key = match strategy {
        ListStrategy::Merge(key) => key,
        ListStrategy::Replace => None,
    };
    if let Some(patched) = &patched {
        validate_order(patched, order, merge_key)?;
    }
    let server_order = current.clone().unwrap_or_default();
    let merged = match (current, patched) {
        (Some(c), None) => c,
        (None, Some(p)) => clean_list(p),
        (Some(c), Some(p)) => merge_list(c, p, child_ty, strategy, false)?,
        (None, None) => return Ok(None),
    };
    let (in_order, server_only) = partition(merged, order, merge_key)?;
    Ok(Some(normalize_order(in_order, server_only, order, &server_order, merge_key)?))
}

/// The patch's items (deletions aside) must appear in the directive's list, in the same relative order.
fn validate_order(patched: &[Value], order: &[Value], merge_key: Option<&str>) -> Result<(), PatchError> {
    let items: Vec<&Value> = patched.iter().filter(|v| v.get(DIRECTIVE).is_none()).collect();
    let mut next = 0;
    for wanted in order {
        let Some(item) = items.get(next) else { break };
        if same_item(item, wanted, merge_key)? {
            next += 1;
        }
    }
    if next < items.len() {
        return Err(PatchError::Unconverted(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_fmt(&Value::Array(patched.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    ty: TypeRef,
    strategy: ListStrategy,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    match strategy {
        ListStrategy::Replace => Ok(clean_list(patch)),
        ListStrategy::Merge(merge_key) => merge_slice(original, patch, ty, merge_key, is_delete_list),
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    ty: TypeRef,
    merge_key: Option<&str>,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if !element_kind_is_map(&original, &patch)? {
        if is_delete_list {
            return Ok(original.into_iter().filter(|v| !patch.contains(v)).collect());
        }
        let merged = dedup(original.iter().chain(&patch).cloned().collect());
        let (in_patch, server_only) = partition(merged, &patch, None)?;
        return normalize_order(in_patch, server_only, &patch, &original, None);
    }
    let merge_key = merge_key.ok_or_else(|| {
        PatchError::Unconverted(format!("cannot merge lists without merge key for {}", ty.unwrap_or("")))
    })?;
    let (original, patch) = split_special_elements(original, patch, merge_key)?;
    let merged = merge_items(original.clone(), &patch, merge_key, ty)?;
    let (in_patch, server_only) = partition(merged, &patch, Some(merge_key))?;
    normalize_order(in_patch, server_only, &patch, &original, Some(merge_key))
}

/// All elements of both lists must be of one JSON kind; lists of lists are refused (422).
fn element_kind_is_map(original: &[Value], patch: &[Value]) -> Result<bool, PatchError> {
    let mut kinds = original.iter().chain(patch).map(go_kind);
    let first = kinds.next().unwrap_or("object");
    if first == "array" {
        return Err(PatchError::Unprocessable("lists of lists are not supported".to_string()));
    }
    if kinds.any(|k| k != first) {
        return Err(PatchError::Unconverted("list element types are not identical".to_string()));
    }
    Ok(first == "object")
}

fn dedup(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Handles `$patch` elements of a keyed list: `delete` removes matching items from the original,
/// `replace` makes the rest of the patch the whole list. Returns (original, patch without them).
fn split_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let key_value = item.get(merge_key).ok_or_else(|| no_merge_key(&item, merge_key))?;
                original.retain(|o| o.get(merge_key) != Some(key_value));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::Unconverted("merging lists cannot yet be specified in the patch".to_string()));
            }
            _ => {
                return Err(PatchError::Unconverted(format!(
                    "unknown patch type: {} in map: {}",
                    go_fmt(directive),
                    go_fmt(&item)
                )));
            }
        }
    }
    if replace { Ok((clean_list(plain), Vec::new())) } else { Ok((original, plain)) }
}

/// Merges each patch item into the original item with the same key, or appends it.
fn merge_items(
    mut merged: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    ty: TypeRef,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let key_value = item.get(merge_key).ok_or_else(|| no_merge_key(item, merge_key))?;
        let found = merged.iter().position(|o| o.get(merge_key) == Some(key_value));
        match (found, item) {
            (Some(i), Value::Object(p)) => {
                let current = match std::mem::take(&mut merged[i]) {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                merged[i] = Value::Object(merge_map(current, p.clone(), ty)?);
            }
            _ => merged.push(clean(item.clone())),
        }
    }
    Ok(merged)
}

fn no_merge_key(item: &Value, merge_key: &str) -> PatchError {
    PatchError::Unconverted(format!("map: {} does not contain declared merge key: {merge_key}", go_fmt(item)))
}

/// Whether two list items are the same item: equal merge key values, or equal scalars.
fn same_item(a: &Value, b: &Value, merge_key: Option<&str>) -> Result<bool, PatchError> {
    let Some(key) = merge_key else { return Ok(a == b) };
    let ka = a.get(key).ok_or_else(|| no_merge_key(a, key))?;
    let kb = b.get(key).ok_or_else(|| no_merge_key(b, key))?;
    Ok(ka == kb)
}

fn position(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    list.iter().position(|o| same_item(o, item, merge_key).unwrap_or(false))
}

/// Splits `merged` into items present in `by` and the others, keeping order.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut others = Vec::new();
    for item in merged {
        if let Some(key) = merge_key {
            item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
        }
        if position(by, &item, merge_key).is_some() { present.push(item) } else { others.push(item) }
    }
    Ok((present, others))
}

/// Sorts patch items by `patch_order` and server-only items by `server_order`, then interleaves them:
/// a server-only item goes first only when both are in the live list and it was earlier there, so new
/// items end up in front (the apiserver's `normalizeElementOrder`/`mergeSortedSlice`).
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    sort_by_order(&mut patch_items, patch_order, merge_key);
    sort_by_order(&mut server_only, server_order, merge_key);
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, merge_key), position(server_order, r, merge_key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

fn sort_by_order(items: &mut [Value], order: &[Value], merge_key: Option<&str>) {
    items.sort_by(|a, b| match (position(order, a, merge_key), position(order, b, merge_key)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => Ordering::Equal,
    });
}

/// Patch content copied into the object loses what decoding into Go types would drop: `null` members
/// and `$` directives.
fn clean(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(clean_map(map)),
        Value::Array(items) => Value::Array(clean_list(items)),
        other => other,
    }
}

fn clean_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter().filter(|(k, v)| !v.is_null() && !k.starts_with('$')).map(|(k, v)| (k, clean(v))).collect()
}

fn clean_list(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter(|v| v.get(DIRECTIVE).is_none()).map(clean).collect()
}

/// JSON kind names as Go's encoding/json reports them.
fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` of a decoded JSON value, used in the error messages the apiserver passes through.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut members: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{}", go_fmt(v))).collect();
            members.sort();
            format!("map[{}]", members.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "finalizers": ["a", "b"], "labels": {"x": "1"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}}
        })
    }

    fn smp(doc: &Value, patch: Value) -> Value {
        apply_strategic_merge_patch(doc, &patch, "apps", "Deployment").unwrap()
    }

    fn containers(doc: &Value) -> &Value {
        &doc["spec"]["template"]["spec"]["containers"]
    }

    #[test]
    fn containers_merge_by_name_and_new_ones_go_first() {
        let doc = deployment(json!([{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]));
        let out = smp(&doc, json!({"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n:1"}]}}}}));
        assert_eq!(
            containers(&out),
            &json!([{"name": "new", "image": "n:1"}, {"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}])
        );
        // A new item after an existing one in the patch stays after it.
        let out = smp(
            &doc,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "side", "image": "s:2"}, {"name": "new", "image": "n:1"}
            ]}}}}),
        );
        assert_eq!(
            containers(&out),
            &json!([{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:2"}, {"name": "new", "image": "n:1"}])
        );
    }

    #[test]
    fn env_and_ports_merge_by_their_keys() {
        let doc = deployment(json!([{
            "name": "app",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "name": "http"}],
            "args": ["x", "y"]
        }]));
        let out = smp(
            &doc,
            json!({"spec": {"template": {"spec": {"containers": [{
                "name": "app",
                "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                "args": ["z"]
            }]}}}}),
        );
        let app = &containers(&out)[0];
        assert_eq!(app["env"], json!([{"name": "B", "value": "3"}]));
        assert_eq!(
            app["ports"],
            json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}])
        );
        assert_eq!(app["args"], json!(["z"]), "lists without a merge strategy are replaced");
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list_removes() {
        let doc = deployment(json!([]));
        let out =
            smp(&doc, json!({"metadata": {"finalizers": ["b", "c"], "$deleteFromPrimitiveList/finalizers": ["a"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        let out = smp(&doc, json!({"metadata": {"finalizers": ["c"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }

    #[test]
    fn set_element_order_orders_the_merged_list() {
        let doc = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let out = smp(
            &doc,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
                "containers": [{"name": "c", "image": "c:2"}]
            }}}}),
        );
        assert_eq!(containers(&out), &json!([{"name": "c", "image": "c:2"}, {"name": "a"}, {"name": "b"}]));
        let out = smp(
            &doc,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "new"}, {"name": "b"}, {"name": "c"}],
                "containers": [{"name": "new"}]
            }}}}),
        );
        assert_eq!(containers(&out), &json!([{"name": "a"}, {"name": "new"}, {"name": "b"}, {"name": "c"}]));
    }

    #[test]
    fn patch_replace_and_delete_directives() {
        let doc = deployment(json!([{"name": "a"}, {"name": "b"}]));
        let out =
            smp(&doc, json!({"spec": {"template": {"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}}}));
        assert_eq!(containers(&out), &json!([{"name": "z"}]));
        let out = smp(&doc, json!({"metadata": {"labels": {"$patch": "replace", "y": "2"}}}));
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        let out = smp(&doc, json!({"metadata": {"labels": {"$patch": "delete"}}}));
        assert_eq!(out["metadata"]["labels"], json!({}));
        let err = apply_strategic_merge_patch(
            &doc,
            &json!({"metadata": {"labels": {"$patch": "merge"}}}),
            "apps",
            "Deployment",
        )
        .unwrap_err();
        assert_eq!(err.status_code(), 500);
    }

    #[test]
    fn retain_keys_clears_unlisted_members() {
        let doc = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = apply_strategic_merge_patch(
            &doc,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            "apps",
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let err = apply_strategic_merge_patch(
            &doc,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            "apps",
            "Deployment",
        )
        .unwrap_err();
        assert_eq!((err.status_code(), err.message().as_str()), (400, "invalid patch format of retainKeys"));
    }

    #[test]
    fn nulls_delete_and_unmatched_nulls_are_dropped() {
        let doc = deployment(json!([]));
        let out = smp(
            &doc,
            json!({"metadata": {"labels": {"x": null}}, "spec": {"replicas": null, "paused": {"a": null, "b": 1}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
        assert!(out["spec"].get("replicas").is_none());
        assert_eq!(out["spec"]["paused"], json!({"b": 1}));
    }

    #[test]
    fn service_ports_merge_by_port_and_owner_references_by_uid() {
        let svc = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "x"}}});
        let out = apply_strategic_merge_patch(
            &svc,
            &json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "b"}]}, "spec": {"ports": [{"port": 80, "name": "http"}]}}),
            "",
            "Service",
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port": 80, "targetPort": 8080, "name": "http"}]));
        assert_eq!(out["metadata"]["ownerReferences"], json!([{"uid": "1", "name": "b"}]));
    }

    #[test]
    fn pod_conditions_merge_by_type_and_tolerations_are_replaced() {
        let pod = json!({"spec": {"tolerations": [{"key": "a"}]}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let out = apply_strategic_merge_patch(
            &pod,
            &json!({"spec": {"tolerations": [{"key": "b"}]}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            "",
            "Pod",
        )
        .unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
        assert_eq!(out["status"]["conditions"], json!([{"type": "Ready", "status": "True"}]));
    }

    #[test]
    fn errors_match_the_apiserver() {
        let doc = deployment(json!([{"name": "a"}]));
        let err = apply_strategic_merge_patch(&doc, &json!([1]), "apps", "Deployment").unwrap_err();
        assert_eq!(err.status_code(), 400);
        let missing_key = json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}});
        let err = apply_strategic_merge_patch(&doc, &missing_key, "apps", "Deployment").unwrap_err();
        assert_eq!(err.message(), "map: map[image:nginx] does not contain declared merge key: name");
        assert_eq!((err.status_code(), err.reason()), (500, ""));
        let lists = json!({"metadata": {"finalizers": [["x"]]}});
        assert_eq!(apply_strategic_merge_patch(&doc, &lists, "apps", "Deployment").unwrap_err().status_code(), 500);
        let empty = json!({"metadata": {"finalizers": []}});
        assert_eq!(apply_strategic_merge_patch(&empty, &lists, "apps", "Deployment").unwrap_err().status_code(), 422);
    }

    #[test]
    fn unknown_kinds_merge_maps_and_replace_lists() {
        let doc = json!({"spec": {"a": [1, 2], "m": {"x": 1}}});
        let out =
            apply_strategic_merge_patch(&doc, &json!({"spec": {"a": [3], "m": {"y": 2}}}), "example.com", "Thing")
                .unwrap();
        assert_eq!(out, json!({"spec": {"a": [3], "m": {"x": 1, "y": 2}}}));
    }
}
