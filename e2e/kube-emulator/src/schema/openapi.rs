//! OpenAPI v3 constraints of structural schemas: validation, pruning and defaulting, each a walk
//! of the schema alongside the value.

use std::collections::{HashMap, HashSet};

use regex::Regex;
use serde_json::{Map, Value};

use super::errors::{FieldError, FieldErrorKind, go_number};

pub(super) fn preserves_unknown(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true)
}

fn is_nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

fn property<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema.get("properties").and_then(|p| p.get(key))
}

/// The schema of a map's values: `additionalProperties` when it is a schema.
fn map_values(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|v| v.is_object())
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

// ---------------------------------------------------------------- validation

/// The `pattern`s of a schema, compiled once when its CRD is registered: compiling one at each
/// string validated took a twentieth of the emulator's CPU while an operator wrote custom
/// resources.
#[derive(Default)]
pub(super) struct Patterns(HashMap<String, Regex>);

impl Patterns {
    pub(super) fn of(schema: &Value) -> Self {
        let mut patterns = Patterns::default();
        patterns.collect(schema);
        patterns
    }

    fn collect(&mut self, schema: &Value) {
        match schema {
            Value::Object(fields) => {
                if let Some(Value::String(pattern)) = fields.get("pattern")
                    && let Ok(regex) = Regex::new(pattern)
                {
                    self.0.insert(pattern.clone(), regex);
                }
                fields.values().for_each(|v| self.collect(v));
            }
            Value::Array(items) => items.iter().for_each(|v| self.collect(v)),
            _ => {}
        }
    }

    /// Whether `s` matches `pattern`; a pattern that does not compile matches anything (such a
    /// CRD was refused at registration).
    fn matches(&self, pattern: &str, s: &str) -> bool {
        match self.0.get(pattern) {
            Some(regex) => regex.is_match(s),
            None => Regex::new(pattern).map_or(true, |regex| regex.is_match(s)),
        }
    }
}

/// Checks `value` against `schema`, appending an error per violation; `path` is the value's
/// field path (`spec.replicas`).
pub(super) fn validate(schema: &Value, value: &Value, path: &str, patterns: &Patterns, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if !is_nullable(schema) && schema.get("type").is_some() {
            errors.push(type_error(schema, value, path));
        }
        return;
    }
    if !type_matches(schema, value) {
        errors.push(type_error(schema, value, path));
        return;
    }
    validate_enum(schema, value, path, errors);
    match value {
        Value::Number(n) => validate_number(schema, n, path, errors),
        Value::String(s) => validate_string(schema, s, path, patterns, errors),
        Value::Array(items) => validate_array(schema, items, path, patterns, errors),
        Value::Object(map) => validate_object(schema, map, path, patterns, errors),
        Value::Bool(_) | Value::Null => {}
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(schema: &Value, value: &Value) -> bool {
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return matches!(json_type(value), "integer" | "string");
    }
    match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("number") => value.is_number(),
        Some(expected) => json_type(value) == expected,
    }
}

fn type_error(schema: &Value, value: &Value, path: &str) -> FieldError {
    let expected = if schema.get("x-kubernetes-int-or-string").is_some() {
        "integer,string"
    } else {
        schema.get("type").and_then(Value::as_str).unwrap_or("object")
    };
    let actual = json_type(value);
    FieldError::new(
        FieldErrorKind::TypeInvalid,
        path,
        Value::String(actual.to_string()),
        format!("{path} in body must be of type {expected}: \"{actual}\""),
    )
}

fn validate_enum(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(allowed) = schema.get("enum").and_then(Value::as_array) else { return };
    if allowed.contains(value) {
        return;
    }
    let supported: Vec<String> = allowed
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| match v {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        })
        .collect();
    errors.push(FieldError::new(
        FieldErrorKind::NotSupported,
        path,
        value.clone(),
        format!("supported values: {}", supported.join(", ")),
    ));
}

fn validate_number(schema: &Value, n: &serde_json::Number, path: &str, errors: &mut Vec<FieldError>) {
    let Some(x) = n.as_f64() else { return };
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    let show = |b: f64| go_number(&serde_json::Number::from_f64(b).unwrap_or_else(|| 0.into()));
    if let Some(min) = bound("minimum") {
        let (fails, words) = if exclusive("exclusiveMinimum") {
            (x <= min, "greater than")
        } else {
            (x < min, "greater than or equal to")
        };
        if fails {
            let detail = format!("{path} in body should be {words} {}", show(min));
            errors.push(FieldError::new(FieldErrorKind::Invalid, path, Value::Number(n.clone()), detail));
        }
    }
    if let Some(max) = bound("maximum") {
        let (fails, words) =
            if exclusive("exclusiveMaximum") { (x >= max, "less than") } else { (x > max, "less than or equal to") };
        if fails {
            let detail = format!("{path} in body should be {words} {}", show(max));
            errors.push(FieldError::new(FieldErrorKind::Invalid, path, Value::Number(n.clone()), detail));
        }
    }
}

fn validate_string(schema: &Value, s: &str, path: &str, patterns: &Patterns, errors: &mut Vec<FieldError>) {
    let value = || Value::String(s.to_string());
    let length = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        let detail = format!("may not be more than {max} bytes");
        errors.push(FieldError::new(FieldErrorKind::TooLong, path, value(), detail));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        let detail = format!("{path} in body should be at least {min} chars long");
        errors.push(FieldError::new(FieldErrorKind::Invalid, path, value(), detail));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && !patterns.matches(pattern, s)
    {
        let detail = format!("{path} in body should match '{pattern}'");
        errors.push(FieldError::new(FieldErrorKind::Invalid, path, value(), detail));
    }
}

fn validate_array(schema: &Value, items: &[Value], path: &str, patterns: &Patterns, errors: &mut Vec<FieldError>) {
    let count = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && count > max
    {
        let detail = format!("must have at most {max} items");
        errors.push(FieldError::new(FieldErrorKind::TooMany, path, Value::from(count), detail));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && count < min
    {
        let detail = format!("{path} in body should have at least {min} items");
        errors.push(FieldError::new(FieldErrorKind::Invalid, path, Value::Array(items.to_vec()), detail));
    }
    validate_list_uniqueness(schema, items, path, errors);
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"), patterns, errors);
        }
    }
}

/// `x-kubernetes-list-type: set` items and `map` keys must be unique.
fn validate_list_uniqueness(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let keys_of = |item: &Value| -> Value {
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys = schema.get("x-kubernetes-list-map-keys").and_then(Value::as_array);
                let mut key = Map::new();
                for k in keys.into_iter().flatten().filter_map(Value::as_str) {
                    if let Some(v) = item.get(k) {
                        key.insert(k.to_string(), v.clone());
                    }
                }
                Value::Object(key)
            }
            _ => item.clone(),
        }
    };
    if !matches!(schema.get("x-kubernetes-list-type").and_then(Value::as_str), Some("set" | "map")) {
        return;
    }
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let key = keys_of(item);
        if !seen.insert(key.to_string()) {
            errors.push(FieldError::new(FieldErrorKind::Duplicate, &format!("{path}[{i}]"), key, ""));
        }
    }
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    patterns: &Patterns,
    errors: &mut Vec<FieldError>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(field) {
                errors.push(FieldError::required(&child_path(path, field)));
            }
        }
    }
    for (key, value) in map {
        if let Some(prop) = property(schema, key) {
            validate(prop, value, &child_path(path, key), patterns, errors);
        } else if let Some(values) = map_values(schema) {
            validate(values, value, &format!("{path}[{key}]"), patterns, errors);
        }
    }
}

// ---------------------------------------------------------------- pruning

/// Removes undeclared fields under `value`, recording their paths (`.spec.foo`).
pub(super) fn prune(schema: &Value, value: &mut Value, path: &str, pruned: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let keep_unknown = preserves_unknown(schema) || schema.get("additionalProperties").is_some();
            let mut unknown = Vec::new();
            for (key, child) in map.iter_mut() {
                if let Some(prop) = property(schema, key) {
                    prune(prop, child, &format!("{path}.{key}"), pruned);
                } else if let Some(values) = map_values(schema) {
                    prune(values, child, &format!("{path}.{key}"), pruned);
                } else if !keep_unknown {
                    unknown.push(key.clone());
                }
            }
            for key in unknown {
                map.remove(&key);
                pruned.push(format!("{path}.{key}"));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- defaulting

/// Drops nulls of non-nullable fields, then fills absent fields from their `default`, top down,
/// so that a defaulted object gets the defaults of its own fields too.
pub(super) fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, prop) in props {
                    if map.get(key).is_some_and(Value::is_null) && !is_nullable(prop) {
                        map.remove(key);
                    }
                    if !map.contains_key(key)
                        && let Some(default) = prop.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                }
            }
            for (key, child) in map.iter_mut() {
                if let Some(prop) = property(schema, key).or_else(|| map_values(schema)) {
                    apply_defaults(prop, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|item| apply_defaults(item_schema, item));
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- CEL support

/// The schema type of the node that holds `rule`, found on the way from the root to the error's
/// path (which may go deeper, through the rule's `fieldPath`).
pub(super) fn rule_holder_type(root: &Value, path: &str, rule: &str) -> String {
    let holds = |schema: &Value| {
        schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .is_some_and(|rules| rules.iter().any(|r| r.get("rule").and_then(Value::as_str) == Some(rule)))
    };
    let type_of = |schema: &Value| schema.get("type").and_then(Value::as_str).unwrap_or("object").to_string();
    let mut found = if holds(root) { Some(type_of(root)) } else { None };
    let mut node = root;
    for segment in path_segments(path) {
        let next = match segment {
            Segment::Field(name) => property(node, name).or_else(|| map_values(node)),
            Segment::Index => node.get("items").or_else(|| map_values(node)),
        };
        let Some(next) = next else { break };
        node = next;
        if holds(node) {
            found = Some(type_of(node));
        }
    }
    found.unwrap_or_else(|| type_of(node))
}

enum Segment<'a> {
    Field(&'a str),
    Index,
}

/// Splits `spec.items[0].name` into fields and indexes (map keys in brackets count as indexes).
fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    for part in path.trim_start_matches('.').split('.') {
        let (name, rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            segments.push(Segment::Field(name));
        }
        segments.extend(rest.split('[').filter(|s| !s.is_empty()).map(|_| Segment::Index));
    }
    segments
}
