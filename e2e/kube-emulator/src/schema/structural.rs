//! The structural-schema rules kube-apiserver enforces on a CRD version's `openAPIV3Schema`.

use regex::Regex;
use serde_json::Value;

/// Why the schema is not structural (empty when it is).
pub(super) fn check(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        problems.push("spec.validation.openAPIV3Schema.type: Required value: must be object at the root".to_string());
    }
    walk(schema, "openAPIV3Schema", &mut problems);
    problems
}

fn walk(schema: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(node) = schema.as_object() else {
        problems.push(format!("{path}: Invalid value: must be a schema object"));
        return;
    };
    let flag = |key: &str| node.get(key).and_then(Value::as_bool) == Some(true);
    if node.contains_key("$ref") {
        problems.push(format!("{path}.$ref: Forbidden: $ref is not allowed in a structural schema"));
    }
    if !node.contains_key("type")
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        problems.push(format!("{path}.type: Required value: must not be empty for specified object fields"));
    }
    let ty = node.get("type").and_then(Value::as_str);
    if ty == Some("array") && !node.contains_key("items") {
        problems.push(format!("{path}.items: Required value: must be specified for arrays"));
    }
    if node.contains_key("properties") && node.get("additionalProperties").is_some_and(Value::is_object) {
        problems.push(format!(
            "{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        ));
    }
    if let Some(pattern) = node.get("pattern").and_then(Value::as_str)
        && Regex::new(pattern).is_err()
    {
        problems.push(format!("{path}.pattern: Invalid value: {pattern:?}: not a valid regular expression"));
    }
    check_list_type(node, path, problems);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (key, prop) in props {
            walk(prop, &format!("{path}.properties[{key}]"), problems);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}.items"), problems);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(values, &format!("{path}.additionalProperties"), problems);
    }
}

fn check_list_type(node: &serde_json::Map<String, Value>, path: &str, problems: &mut Vec<String>) {
    let Some(list_type) = node.get("x-kubernetes-list-type").and_then(Value::as_str) else { return };
    if !matches!(list_type, "atomic" | "set" | "map") {
        problems.push(format!(
            "{path}.x-kubernetes-list-type: Unsupported value: {list_type:?}: supported values: \"atomic\", \"set\", \"map\""
        ));
        return;
    }
    if list_type != "map" {
        return;
    }
    let keys: Vec<&str> = node
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        problems.push(format!(
            "{path}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        ));
    }
    let items = node.get("items");
    for key in keys {
        let prop = items.and_then(|i| i.get("properties")).and_then(|p| p.get(key));
        let required = items
            .and_then(|i| i.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|k| k.as_str() == Some(key)));
        let defaulted = prop.is_some_and(|p| p.get("default").is_some());
        if prop.is_none() || !(required || defaulted) {
            problems.push(format!(
                "{path}.items.properties[{key}]: Required value: entries are required to be required or to have a default value"
            ));
        }
    }
}
