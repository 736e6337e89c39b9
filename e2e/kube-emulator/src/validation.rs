//! Object metadata validation (names, labels, annotations) worded like apimachinery's.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::errors::Cause;
use crate::registry::ResourceType;

static DNS1123_SUBDOMAIN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").ok());
static DNS1123_LABEL: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").ok());
static DNS1035_LABEL: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^[a-z]([-a-z0-9]*[a-z0-9])?$").ok());
static LABEL_VALUE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").ok());
static QUALIFIED_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").ok());

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_none_or(|r| r.is_match(s))
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const MAX_ANNOTATIONS: usize = 256 * 1024;

fn invalid(field: &str, value: &str, msg: &str) -> Cause {
    Cause::new("FieldValueInvalid", field, format!("Invalid value: \"{value}\": {msg}"))
}

/// Errors in the name of a new object of type `rt`.
pub fn name(rt: &ResourceType, name: &str) -> Vec<Cause> {
    if rt.group == "rbac.authorization.k8s.io" {
        return path_segment_name(name);
    }
    let (re, max, msg) = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => (&DNS1123_LABEL, 63, LABEL_MSG),
        ("", "services") => (&DNS1035_LABEL, 63, DNS1035_MSG),
        _ => (&DNS1123_SUBDOMAIN, 253, SUBDOMAIN_MSG),
    };
    let mut out = Vec::new();
    if name.len() > max {
        out.push(invalid("metadata.name", name, &format!("must be no more than {max} characters")));
    }
    if !matches(re, name) {
        out.push(invalid("metadata.name", name, msg));
    }
    out
}

/// RBAC objects are named like path segments (`system:discovery`): anything but `.`, `..`, `/`
/// and `%`.
fn path_segment_name(name: &str) -> Vec<Cause> {
    let why = match name {
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        _ if name.contains('/') => Some("may not contain '/'"),
        _ if name.contains('%') => Some("may not contain '%'"),
        _ => None,
    };
    why.map(|why| invalid("metadata.name", name, why)).into_iter().collect()
}

/// Errors in labels and annotations.
pub fn labels_and_annotations(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            out.extend(qualified_name("metadata.labels", k));
            let v = v.as_str().unwrap_or_default();
            if v.len() > 63 {
                out.push(invalid("metadata.labels", v, "must be no more than 63 characters"));
            }
            if !matches(&LABEL_VALUE, v) {
                out.push(invalid("metadata.labels", v, LABEL_VALUE_MSG));
            }
        }
    }
    if let Some(ann) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        let mut size = 0;
        for (k, v) in ann {
            out.extend(qualified_name("metadata.annotations", k));
            size += k.len() + v.as_str().map_or(0, str::len);
        }
        if size > MAX_ANNOTATIONS {
            out.push(Cause::new(
                "FieldValueTooLong",
                "metadata.annotations",
                format!("Too long: must have at most {MAX_ANNOTATIONS} bytes"),
            ));
        }
    }
    out
}

/// A label or annotation key: `[prefix/]name`.
fn qualified_name(field: &str, key: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push(invalid(field, key, "prefix part must be non-empty"));
        } else if !matches(&DNS1123_SUBDOMAIN, p) || p.len() > 253 {
            out.push(invalid(field, key, &format!("prefix part {SUBDOMAIN_MSG}")));
        }
    }
    if name.is_empty() {
        out.push(invalid(field, key, "name part must be non-empty"));
    } else {
        if name.len() > 63 {
            out.push(invalid(field, key, "name part must be no more than 63 characters"));
        }
        if !matches(&QUALIFIED_NAME, name) {
            out.push(invalid(field, key, NAME_PART_MSG));
        }
    }
    out
}

/// `immutable: true` ConfigMaps and Secrets refuse changes to their data.
pub fn immutable_data(rt: &ResourceType, live: &Value, new: &Value) -> Vec<Cause> {
    if !(rt.group.is_empty() && matches!(rt.plural.as_str(), "configmaps" | "secrets")) {
        return Vec::new();
    }
    if live.get("immutable") != Some(&Value::Bool(true)) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for key in ["data", "binaryData"] {
        if live.get(key) != new.get(key) {
            out.push(Cause::new("FieldValueForbidden", key, "Forbidden: field is immutable when `immutable` is set"));
        }
    }
    if new.get("immutable") != Some(&Value::Bool(true)) {
        out.push(Cause::new(
            "FieldValueForbidden",
            "immutable",
            "Forbidden: field is immutable when `immutable` is set",
        ));
    }
    out
}

/// Spec fields built-in kinds refuse to change after creation (the classic operator mistake:
/// editing a StatefulSet's volumeClaimTemplates or a Deployment's selector).
pub fn immutable_spec(rt: &ResourceType, live: &Value, new: &Value) -> Vec<Cause> {
    let (Some(old), Some(cur)) = (live.get("spec"), new.get("spec")) else {
        return Vec::new();
    };
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "statefulsets") => {
            const MUTABLE: [&str; 6] = [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ];
            if without(old, &MUTABLE) != without(cur, &MUTABLE) {
                return vec![Cause::new(
                    "FieldValueForbidden",
                    "spec",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                )];
            }
            Vec::new()
        }
        ("apps", "deployments" | "replicasets" | "daemonsets") => unchanged(old, cur, "selector", "spec.selector"),
        ("batch", "jobs") => {
            let mut out = unchanged(old, cur, "selector", "spec.selector");
            out.extend(unchanged(old, cur, "template", "spec.template"));
            out
        }
        ("", "services") => {
            let ip = |s: &Value| s.get("clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
            let (a, b) = (ip(old), ip(cur));
            if !a.is_empty() && !b.is_empty() && a != b {
                return vec![Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs[0]",
                    format!("Invalid value: []string{{\"{b}\"}}: may not change once set"),
                )];
            }
            Vec::new()
        }
        ("", "persistentvolumeclaims") => {
            let strip = |s: &Value| {
                let mut s = without(s, &["volumeAttributesClassName", "volumeName"]);
                if let Some(r) = s.get_mut("resources").and_then(Value::as_object_mut) {
                    r.remove("requests");
                }
                s
            };
            if strip(old) != strip(cur) {
                return vec![Cause::new(
                    "FieldValueForbidden",
                    "spec",
                    "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                )];
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn without(spec: &Value, keys: &[&str]) -> Value {
    let mut s = spec.clone();
    if let Some(m) = s.as_object_mut() {
        for k in keys {
            m.remove(*k);
        }
    }
    s
}

fn unchanged(old: &Value, cur: &Value, key: &str, field: &str) -> Vec<Cause> {
    if old.get(key) == cur.get(key) {
        return Vec::new();
    }
    let shown = cur.get(key).map(Value::to_string).unwrap_or_else(|| "null".into());
    vec![Cause::new("FieldValueInvalid", field, format!("Invalid value: {shown}: field is immutable"))]
}
