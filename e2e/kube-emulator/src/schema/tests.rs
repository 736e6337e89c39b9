use serde_json::json;

use super::*;

fn schema() -> CompiledSchema {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["cluster"],
                "x-kubernetes-validations": [
                    {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max", "message": "min must not exceed max", "fieldPath": ".min"}
                ],
                "properties": {
                    "cluster": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
                    "replicas": {"type": "integer", "minimum": 0.0, "default": 1},
                    "min": {"type": "integer"},
                    "max": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "names": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "size": {"x-kubernetes-int-or-string": true}
                }
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }
    });
    CompiledSchema::new(&schema).expect("structural")
}

fn messages(obj: serde_json::Value) -> Vec<String> {
    schema().validate(&obj, None).iter().map(ToString::to_string).collect()
}

#[test]
fn a_valid_object_has_no_errors() {
    let obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
        "spec": {"cluster": "abc", "replicas": 2, "names": ["a", "b"], "size": "1Gi", "labels": {"k": "v"}}});
    assert_eq!(messages(obj), Vec::<String>::new());
}

#[test]
fn errors_are_worded_like_the_api_server() {
    let obj = json!({"spec": {"cluster": "TOOLONG", "replicas": -1, "mode": "c", "names": ["a", "a", "b"],
        "items": [{"name": "x"}, {"name": "x"}], "labels": {"k": 1}, "size": true}});
    assert_eq!(
        messages(obj),
        vec![
            "spec.cluster: Too long: may not be more than 5 bytes",
            "spec.cluster: Invalid value: \"TOOLONG\": spec.cluster in body should match '^[a-z]+$'",
            "spec.items[1]: Duplicate value: map[string]interface {}{\"name\":\"x\"}",
            "spec.labels[k]: Invalid value: \"integer\": spec.labels[k] in body must be of type string: \"integer\"",
            "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
            "spec.names: Too many: 3: must have at most 2 items",
            "spec.names[1]: Duplicate value: \"a\"",
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
            "spec.size: Invalid value: \"boolean\": spec.size in body must be of type integer,string: \"boolean\"",
        ]
    );
}

#[test]
fn required_fields_and_cel_rules_are_checked() {
    let errors = messages(json!({"spec": {"min": 3, "max": 1}}));
    assert_eq!(
        errors,
        vec!["spec.cluster: Required value", "spec.min: Invalid value: \"object\": min must not exceed max"]
    );
}

#[test]
fn invalid_message_aggregates_like_the_server() {
    let errs = schema().validate(&json!({"spec": {"replicas": -1, "cluster": "a"}}), None);
    assert_eq!(
        invalid_message("Foo.example.io", "x", &errs),
        "Foo.example.io \"x\" is invalid: spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
    );
    let errs = schema().validate(&json!({"spec": {"replicas": -1}}), None);
    assert!(
        invalid_message("Foo.example.io", "x", &errs)
            .contains("is invalid: [spec.cluster: Required value, spec.replicas")
    );
}

#[test]
fn pruning_removes_undeclared_fields_and_keeps_preserved_ones() {
    let mut obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"}, "extra": 1,
        "spec": {"cluster": "a", "unknown": {"x": 1}, "free": {"anything": [1]}, "items": [{"name": "n", "junk": 1}]}});
    let pruned = schema().prune(&mut obj);
    assert_eq!(pruned, vec![".extra", ".spec.items[0].junk", ".spec.unknown"]);
    assert_eq!(obj["spec"]["free"], json!({"anything": [1]}));
    assert_eq!(obj["metadata"], json!({"name": "a"}));
}

#[test]
fn defaults_fill_absent_fields_and_replace_non_nullable_nulls() {
    let mut obj = json!({"spec": {"cluster": "a", "replicas": null}});
    schema().apply_defaults(&mut obj);
    assert_eq!(obj["spec"]["replicas"], json!(1));
}

#[test]
fn non_structural_schemas_are_refused() {
    let errors =
        CompiledSchema::new(&json!({"type": "object", "properties": {"spec": {"properties": {}}}})).unwrap_err();
    assert_eq!(
        errors,
        vec!["openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"]
    );
    let errors = CompiledSchema::new(&json!({"type": "object", "properties": {"l": {"type": "array"}}})).unwrap_err();
    assert_eq!(errors, vec!["openAPIV3Schema.properties[l].items: Required value: must be specified for arrays"]);
}

#[test]
fn transition_rules_see_the_old_object() {
    let schema = CompiledSchema::new(&json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "cluster": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "spec.cluster is immutable"}]}
    }}}}))
    .expect("structural");
    let new = json!({"spec": {"cluster": "b"}});
    assert!(schema.validate(&new, None).is_empty(), "transition rules do not run on create");
    let errs = schema.validate(&new, Some(&json!({"spec": {"cluster": "a"}})));
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["spec.cluster: Invalid value: \"string\": spec.cluster is immutable"]
    );
}

/// A schema whose rules sit deep, next to subtrees with none, one of them formatted.
fn schema_with_deep_rules() -> serde_json::Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "window": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.start < self.end", "message": "start must precede end"}],
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                    "note": {"type": "object", "properties": {"text": {"type": "string"}}}
                }},
            "pools": {"type": "array", "items": {"type": "object", "properties": {
                "size": {"type": "integer", "x-kubernetes-validations": [{"rule": "self <= 10", "message": "at most 10"}]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}
            }}},
            "free": {"type": "object", "properties": {"deep": {"type": "object", "properties": {"x": {"type": "integer"}}}}}
        }},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
    }})
}

fn cel_messages(schema: &CompiledSchema, obj: serde_json::Value) -> Vec<String> {
    schema.validate(&obj, None).iter().map(ToString::to_string).collect()
}

#[test]
fn rules_judge_the_same_after_the_subtrees_without_rules_are_dropped() {
    let raw = schema_with_deep_rules();
    let schema = CompiledSchema::new(&raw).expect("structural");
    // What is kept: the paths to the rules, and the formatted strings a rule reads as timestamps
    // (compared as strings, "2026-12-04T10:00:00+01:00" would sort after "...T09:30:00Z").
    let spec = &schema.cel.properties["spec"];
    assert!(spec.properties.contains_key("window") && spec.properties.contains_key("pools"));
    assert!(!spec.properties.contains_key("free") && !schema.cel.properties.contains_key("status"));
    assert!(spec.properties["window"].properties.contains_key("start"));
    assert!(!spec.properties["window"].properties.contains_key("note"));
    let obj = json!({"spec": {
        "window": {"start": "2026-12-04T10:00:00+01:00", "end": "2026-12-04T09:30:00Z", "note": {"text": "t"}},
        "pools": [{"size": 3, "labels": {"a": "b"}}, {"size": 11}],
        "free": {"deep": {"x": 1}}}, "status": {"phase": "Running"}});
    assert_eq!(cel_messages(&schema, obj.clone()), vec!["spec.pools[1].size: Invalid value: \"integer\": at most 10"]);
    // The same errors as kube-cel's walk of the whole schema.
    let whole = kube_cel::Validator::new().validate(&raw, &obj, None);
    assert_eq!(whole.len(), 1, "{whole:?}");
    assert_eq!(whole[0].message, "at most 10");
    let reversed = json!({"spec": {"window": {"start": "2026-12-04T10:00:00Z", "end": "2026-12-04T09:30:00Z"}}});
    assert_eq!(cel_messages(&schema, reversed), vec!["spec.window: Invalid value: \"object\": start must precede end"]);
}

#[test]
fn the_old_object_is_read_only_by_schemas_whose_rules_name_it() {
    let plain = CompiledSchema::new(&schema_with_deep_rules()).expect("structural");
    assert!(!plain.reads_old);
    let bad = json!({"spec": {"pools": [{"size": 11}]}});
    assert_eq!(plain.validate(&bad, Some(&json!({"spec": {}}))).len(), 1, "non-transition rules still run");
    let in_message = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "true", "messageExpression": "string(oldSelf)"}]}}});
    assert!(CompiledSchema::new(&in_message).expect("structural").reads_old);
}

#[test]
fn rules_at_the_root_see_only_the_name_of_the_metadata_and_the_object_keeps_all_of_it() {
    let root_rule = |rule: &str, message: &str| {
        CompiledSchema::new(&json!({"type": "object",
            "x-kubernetes-validations": [{"rule": rule, "message": message}],
            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}))
        .expect("structural")
    };
    let mut obj = json!({"metadata": {"name": "toolong", "labels": {"a": "b"}, "managedFields": [{"manager": "m"}]},
                         "spec": {"size": 1}});
    let before = obj.clone();
    let errs = root_rule("self.metadata.name.size() <= 5", "name too long").validate_write(&mut obj, None);
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["<nil>: Invalid value: \"object\": name too long"]
    );
    assert_eq!(obj, before, "the object keeps its whole metadata");
    let labels = root_rule("!has(self.metadata.labels)", "labels are visible");
    assert!(labels.validate_write(&mut obj, None).is_empty());
    assert_eq!(obj, before);
}
