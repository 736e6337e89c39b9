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
    /// The rules, on the paths that lead to them only (see [`prune_inert`]).
    cel: kube_cel::CompiledSchema,
    /// Whether a rule or its message reads `oldSelf`: if none does, the old object is not
    /// converted for CEL at all.
    reads_old: bool,
    /// Rules that need CEL's optional types, which kube-cel lacks (`optional`).
    optional: optional::OptionalRules,
    patterns: openapi::Patterns,
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
        let mut cel = kube_cel::compile_schema(&for_kube_cel);
        problems.extend(cel.compilation_errors().iter().map(|e| format!("x-kubernetes-validations: {e}")));
        if problems.is_empty() {
            prune_inert(&mut cel);
            let reads_old = mentions_old_self(&for_kube_cel);
            let patterns = openapi::Patterns::of(openapi_v3_schema);
            Ok(CompiledSchema { root: openapi_v3_schema.clone(), cel, reads_old, optional, patterns })
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
                    openapi::validate(schema, value, key, &self.patterns, &mut errors);
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

    /// [`CompiledSchema::validate`] of an object being written. CEL at the root sees only
    /// `metadata.name` and `metadata.generateName`, as on the real server (whose CEL type of a
    /// custom resource's metadata declares only those): the rest of the metadata is set aside for
    /// the walk, which then does not convert managedFields, labels and owners at each write.
    pub fn validate_write(&self, obj: &mut Value, old: Option<&Value>) -> Vec<FieldError> {
        let Some(metadata) = obj.get_mut("metadata") else {
            return self.validate(obj, old);
        };
        let narrow: serde_json::Map<String, Value> = ["name", "generateName"]
            .into_iter()
            .filter_map(|key| Some((key.to_string(), metadata.get(key)?.clone())))
            .collect();
        let full = std::mem::replace(metadata, Value::Object(narrow));
        let errors = self.validate(obj, old);
        if let Some(metadata) = obj.get_mut("metadata") {
            *metadata = full;
        }
        errors
    }

    fn validate_cel(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        thread_local! {
            // The validator holds the CEL function registry: build it once per thread.
            static VALIDATOR: kube_cel::Validator = kube_cel::Validator::new();
        }
        let cel_old = old.filter(|_| self.reads_old);
        let mut errors: Vec<FieldError> = VALIDATOR.with(|validator| {
            validator
                .validate_compiled(&self.cel, obj, cel_old)
                .into_iter()
                .map(|e| cel_error(&e, &self.root))
                .collect()
        });
        errors.extend(self.optional.validate(obj, old));
        errors
    }
}

/// Drops the subtrees that hold no rule and nothing the conversion to CEL reads (a date-time or
/// duration format, an embedded resource); true when `node` itself is such a subtree. kube-cel
/// converts the value, and the old value, at every schema node it walks and binds them as `self`
/// and `oldSelf`, rules or not, so each write cost a conversion of every subtree at each level of
/// its depth. A value without a schema converts as one with an inert schema, and a walk that
/// skips inert nodes evaluates the same rules: the errors are the same.
fn prune_inert(node: &mut kube_cel::CompiledSchema) -> bool {
    node.properties.retain(|_, child| !prune_inert(child));
    if node.items.as_deref_mut().is_some_and(prune_inert) {
        node.items = None;
    }
    if node.additional_properties.as_deref_mut().is_some_and(prune_inert) {
        node.additional_properties = None;
    }
    for branches in [&mut node.all_of, &mut node.one_of, &mut node.any_of] {
        branches.retain_mut(|branch| !prune_inert(branch));
    }
    let converts_plainly = matches!(node.format, kube_cel::SchemaFormat::None | kube_cel::SchemaFormat::IntOrString)
        && !node.embedded_resource;
    converts_plainly
        && node.validations.is_empty()
        && node.properties.is_empty()
        && node.items.is_none()
        && node.additional_properties.is_none()
        && node.all_of.is_empty()
        && node.one_of.is_empty()
        && node.any_of.is_empty()
}

/// Whether any `x-kubernetes-validations` rule or message expression in `schema` names `oldSelf`.
fn mentions_old_self(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(key, value)| {
            let in_rules = key == "x-kubernetes-validations"
                && value.as_array().into_iter().flatten().any(|rule| {
                    ["rule", "messageExpression"]
                        .iter()
                        .any(|field| rule.get(*field).and_then(Value::as_str).is_some_and(|e| e.contains("oldSelf")))
                });
            in_rules || mentions_old_self(value)
        }),
        Value::Array(items) => items.iter().any(mentions_old_self),
        _ => false,
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
