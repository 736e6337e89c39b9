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

/// How field errors show a value since Kubernetes 1.31: strings quoted, everything else as JSON.
fn shown(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_else(|| "null".into())
}

/// A workload's selector must select its own pod template (pkg/apis/apps/validation
/// `ValidateDeploymentSpec`, `ValidateStatefulSetSpec`, `ValidateDaemonSetSpec`,
/// `ValidateReplicaSetSpec`, pkg/apis/batch/validation `validateJobSpec`), and its pods restart
/// as the controller expects.
pub fn workload_spec(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    let noun = match (rt.group.as_str(), rt.plural.as_str()) {
        // ValidateReplicaSetSpec reuses the Deployment's wording.
        ("apps", "deployments" | "replicasets") => "deployment",
        ("apps", "statefulsets") => "statefulset",
        ("apps", "daemonsets") => "daemonset",
        ("batch", "jobs") => "job",
        _ => return Vec::new(),
    };
    let Some(spec) = obj.get("spec") else { return Vec::new() };
    let mut out = Vec::new();
    let selector = spec.get("selector").filter(|s| !s.is_null());
    let template_labels = spec.pointer("/template/metadata/labels");
    match selector {
        None => {
            out.push(Cause::new("FieldValueRequired", "spec.selector", "Required value"));
            // A missing selector selects nothing, so the template does not match it either.
            out.push(selector_mismatch(template_labels));
        }
        Some(sel) => {
            let empty = ["matchLabels", "matchExpressions"].iter().all(|k| {
                sel.get(*k).is_none_or(|v| {
                    v.as_object().is_some_and(|m| m.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty())
                        || v.is_null()
                })
            });
            if empty && noun != "job" {
                out.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.selector",
                    format!("Invalid value: {}: empty selector is invalid for {noun}", sel),
                ));
            }
            let pod = serde_json::json!({"metadata": {"labels": template_labels.cloned().unwrap_or(Value::Null)}});
            match crate::selectors::LabelSelector::from_object(sel) {
                Ok(s) if !empty && !s.matches(&pod) => out.push(selector_mismatch(template_labels)),
                Ok(_) => {}
                Err(_) => out.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.selector",
                    format!("Invalid value: {sel}: invalid label selector"),
                )),
            }
        }
    }
    let restart = spec.pointer("/template/spec/restartPolicy");
    let supported: &[&str] = if noun == "job" { &["OnFailure", "Never"] } else { &["Always"] };
    if let Some(r) = restart.and_then(Value::as_str)
        && !supported.contains(&r)
    {
        let list = supported.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
        out.push(Cause::new(
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy",
            format!("Unsupported value: \"{r}\": supported values: {list}"),
        ));
    }
    out
}

/// A Job whose selector the server generated must keep exactly that selector
/// (pkg/apis/batch/validation `ValidateGeneratedSelector`).
pub fn job_generated_selector(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    if !(rt.group == "batch" && rt.plural == "jobs")
        || obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true)
    {
        return Vec::new();
    }
    let Some(sel) = obj.pointer("/spec/selector") else { return Vec::new() };
    let uid = obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
    let expected = serde_json::json!({"matchLabels": {crate::defaults::JOB_CONTROLLER_UID_LABEL: uid}});
    if *sel == expected {
        return Vec::new();
    }
    vec![Cause::new(
        "FieldValueInvalid",
        "spec.selector",
        format!("Invalid value: {sel}: `selector` not auto-generated"),
    )]
}

fn selector_mismatch(template_labels: Option<&Value>) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        "spec.template.metadata.labels",
        format!("Invalid value: {}: `selector` does not match template `labels`", shown(template_labels)),
    )
}

/// The byte offset at which Go's `base64.StdEncoding` gives up on `s` (`illegal base64 data at
/// input byte N`), or None when it decodes: encoding/base64 `decodeQuantum`, step by step
/// (newlines skipped; the last bits of a quantum need not be zero, Go's decoder is not strict).
pub fn base64_error_offset(s: &str) -> Option<usize> {
    let src = s.as_bytes();
    let newline = |b: u8| b == b'\n' || b == b'\r';
    let symbol = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let mut si = 0;
    loop {
        let mut j = 0;
        while j < 4 {
            let Some(&b) = src.get(si) else {
                return (j != 0).then(|| si - j);
            };
            si += 1;
            if symbol(b) {
                j += 1;
                continue;
            }
            if newline(b) {
                continue;
            }
            if b != b'=' || j < 2 {
                return Some(si - 1);
            }
            if j == 2 {
                // "==" is expected; the first "=" is consumed.
                while src.get(si).is_some_and(|b| newline(*b)) {
                    si += 1;
                }
                match src.get(si) {
                    None => return Some(src.len()),
                    Some(b'=') => si += 1,
                    Some(_) => return Some(si - 1),
                }
            }
            while src.get(si).is_some_and(|b| newline(*b)) {
                si += 1;
            }
            // Trailing garbage after the padding.
            return (si < src.len()).then_some(si);
        }
    }
}

/// A Secret's `data` values are bytes, written as base64: anything else fails to decode, which
/// the real server answers with a 400 (`transformDecodeError` in the apiserver's handlers).
pub fn secret_data(rt: &ResourceType, obj: &Value) -> Option<String> {
    if !(rt.group.is_empty() && rt.plural == "secrets") {
        return None;
    }
    let data = obj.get("data")?.as_object()?;
    data.values().find_map(|v| match v {
        Value::String(s) => base64_error_offset(s).map(|n| format!("illegal base64 data at input byte {n}")),
        Value::Null => None,
        other => Some(format!("json: cannot unmarshal {} into Go value of type []uint8", json_type(other))),
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::String(_) => "string",
        Value::Null => "null",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_errors_are_at_the_offsets_go_reports() {
        assert_eq!(base64_error_offset("cQ=="), None);
        assert_eq!(base64_error_offset("aGVsbG8="), None);
        assert_eq!(base64_error_offset("aGVs\nbG8="), None);
        assert_eq!(base64_error_offset(""), None);
        assert_eq!(base64_error_offset("not base64!"), Some(3));
        assert_eq!(base64_error_offset("abc"), Some(0));
        assert_eq!(base64_error_offset("abcdab"), Some(4));
        assert_eq!(base64_error_offset("ab=c"), Some(2));
        assert_eq!(base64_error_offset("ab="), Some(3));
        assert_eq!(base64_error_offset("a==="), Some(1));
        assert_eq!(base64_error_offset("cQ==cQ=="), Some(4));
    }
}
