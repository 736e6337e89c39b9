//! Custom resource schemas as kube-apiserver applies them: the structural check on CRD
//! registration, pruning of unknown fields, defaulting, and validation (OpenAPI v3 constraints and
//! CEL `x-kubernetes-validations` rules), with errors worded like the real server's.

mod errors;
mod openapi;
mod optional;
mod structural;

use serde_json::Value;

pub use errors::{FieldError, FieldErrorKind, invalid_message};

/// The schema of one served version of a custom resource, compiled once at CRD registration.
pub struct CompiledSchema {
    root: Value,
    cel: kube_cel::CompiledSchema,
    /// Rules that need CEL's optional types, which kube-cel lacks (`optional`).
    optional: optional::OptionalRules,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema").finish_non_exhaustive()
    }
}

impl CompiledSchema {
    /// Compiles a version's `openAPIV3Schema`. Errors say why the schema is not structural or
    /// which CEL rule does not compile: the server refuses such a CRD with 422.
    pub fn new(openapi_v3_schema: &Value) -> Result<Self, Vec<String>> {
        let mut problems = structural::check(openapi_v3_schema);
        let (for_kube_cel, optional) = optional::OptionalRules::split(openapi_v3_schema);
        let cel = kube_cel::compile_schema(&for_kube_cel);
        problems.extend(cel.compilation_errors().iter().map(|e| format!("x-kubernetes-validations: {e}")));
        if problems.is_empty() {
            Ok(CompiledSchema { root: openapi_v3_schema.clone(), cel, optional })
        } else {
            Err(problems)
        }
    }

    /// Removes fields the schema does not declare (unless it preserves unknown fields) and
    /// returns their paths, e.g. `.spec.foo`, for `fieldValidation` Strict and Warn.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut pruned = Vec::new();
        if let Value::Object(map) = obj {
            for (key, value) in map.iter_mut() {
                if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                    && let Some(schema) = self.root.get("properties").and_then(|p| p.get(key))
                {
                    openapi::prune(schema, value, &format!(".{key}"), &mut pruned);
                }
            }
            let declared = |key: &str| {
                matches!(key, "apiVersion" | "kind" | "metadata")
                    || self.root.get("properties").and_then(|p| p.get(key)).is_some()
                    || openapi::preserves_unknown(&self.root)
            };
            let unknown: Vec<String> = map.keys().filter(|k| !declared(k)).cloned().collect();
            for key in unknown {
                map.remove(&key);
                pruned.push(format!(".{key}"));
            }
        }
        pruned.sort();
        pruned
    }

    /// Fills absent fields that have a `default` in the schema, as the server does on write.
    pub fn apply_defaults(&self, obj: &mut Value) {
        if let Value::Object(map) = obj {
            for (key, value) in map.iter_mut() {
                if let Some(schema) = self.root.get("properties").and_then(|p| p.get(key)) {
                    openapi::apply_defaults(schema, value);
                }
            }
        }
    }

    /// Every way the object breaks the schema: OpenAPI constraints first, then CEL rules (with
    /// `old` for transition rules on update). Empty when the object is valid.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Value::Object(map) = obj {
            for (key, value) in map {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(schema) = self.root.get("properties").and_then(|p| p.get(key)) {
                    openapi::validate(schema, value, key, &mut errors);
                }
            }
            if let Some(required) = self.root.get("required").and_then(Value::as_array) {
                for field in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(field) {
                        errors.push(FieldError::required(field));
                    }
                }
            }
        }
        errors.extend(self.validate_cel(obj, old));
        errors
    }

    fn validate_cel(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        thread_local! {
            // The validator holds the CEL function registry: build it once per thread.
            static VALIDATOR: kube_cel::Validator = kube_cel::Validator::new();
        }
        let mut errors: Vec<FieldError> = VALIDATOR.with(|validator| {
            validator.validate_compiled(&self.cel, obj, old).into_iter().map(|e| cel_error(&e, &self.root)).collect()
        });
        errors.extend(self.optional.validate(obj, old));
        errors
    }
}

/// A failed CEL rule. The server shows the schema type of the node holding the rule as the
/// value (`Invalid value: "object": <message>`).
fn cel_error(error: &kube_cel::ValidationError, root: &Value) -> FieldError {
    let kind = match error.reason.as_deref() {
        Some("FieldValueForbidden") => FieldErrorKind::Forbidden,
        Some("FieldValueRequired") => FieldErrorKind::Required,
        Some("FieldValueDuplicate") => FieldErrorKind::Duplicate,
        _ => FieldErrorKind::Invalid,
    };
    let node_type = openapi::rule_holder_type(root, &error.field_path, &error.rule);
    let field = error.field_path.trim_start_matches('.');
    FieldError::new(kind, field, Value::String(node_type), error.message.clone())
}

#[cfg(test)]
mod tests;
