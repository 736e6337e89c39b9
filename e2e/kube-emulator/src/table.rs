//! `as=Table` output: printer columns of CRDs (Name first, Age by default) and a few built-ins.

use serde_json::{Value, json};

use crate::meta::{human_duration, now_secs, parse_rfc3339};
use crate::registry::{PrinterColumn, ResourceType};

/// What a row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: &str) -> Self {
        match s {
            "None" => Self::None,
            "Object" => Self::Object,
            _ => Self::Metadata,
        }
    }
}

fn col(name: &str, type_: &str, format: &str, json_path: &str, priority: i64, description: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: format.into(),
        description: description.into(),
        priority,
        json_path: json_path.into(),
    }
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created.";

/// Events are printed without Name first, as the real server's event printer does; `#` paths
/// are computed cells (see `computed_cell`).
fn event_columns() -> Vec<PrinterColumn> {
    vec![
        col("Last Seen", "string", "", "#event-last-seen", 0, "Time when last this event was observed."),
        col("Type", "string", "", ".type", 0, "Type of this event."),
        col(
            "Reason",
            "string",
            "",
            ".reason",
            0,
            "Short, machine understandable string that gives the reason for this event being generated.",
        ),
        col("Object", "string", "", "#event-object", 0, "The object that this event is about."),
        col(
            "Message",
            "string",
            "",
            "#event-message",
            0,
            "A human-readable description of the status of this operation.",
        ),
        col("Name", "string", "name", ".metadata.name", 1, NAME_DESC),
    ]
}

/// The columns after Name.
fn columns(rt: &ResourceType, version: &str) -> Vec<PrinterColumn> {
    let age = || col("Age", "date", "", ".metadata.creationTimestamp", 0, AGE_DESC);
    if rt.custom {
        let cols = rt.version_info.get(version).map(|v| v.printer_columns.clone()).unwrap_or_default();
        return if cols.is_empty() { vec![age()] } else { cols };
    }
    let extra: Vec<PrinterColumn> = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => vec![col("Status", "string", "", ".status.phase", 0, "The status of the namespace")],
        ("apps", "deployments") => vec![
            col("Ready", "string", "", "#ready", 0, "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "integer",
                "",
                "#updated",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "integer",
                "",
                "#available",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
        ],
        ("apps", "statefulsets") => vec![col("Ready", "string", "", "#ready", 0, "Number of the pod with ready state")],
        ("", "services") => vec![
            col("Type", "string", "", ".spec.type", 0, "The type of the service."),
            col("Cluster-IP", "string", "", ".spec.clusterIP", 0, "The cluster IP of the service."),
            col("External-IP", "string", "", "#external-ip", 0, "The external IP of the service."),
            col("Port(s)", "string", "", "#ports", 0, "The ports of the service."),
        ],
        ("", "configmaps") => vec![col("Data", "integer", "", "#data", 0, "Number of data entries.")],
        ("", "secrets") => vec![
            col("Type", "string", "", ".type", 0, "The type of the secret."),
            col("Data", "integer", "", "#data", 0, "Number of data entries."),
        ],
        ("", "pods") => {
            vec![col("Status", "string", "", ".status.phase", 0, "The aggregate status of the containers in this pod.")]
        }
        // kubectl shows the raw timestamp here, not an age.
        ("apiextensions.k8s.io", _) => {
            vec![col("Created At", "string", "", ".metadata.creationTimestamp", 0, AGE_DESC)]
        }
        _ => vec![],
    };
    let mut out = extra;
    if rt.group != "apiextensions.k8s.io" {
        out.push(age());
    }
    out
}

fn definition(c: &PrinterColumn) -> Value {
    json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
}

/// A Table of `objects` (already presented in the client's version).
pub fn table(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    list_meta: Value,
    include: IncludeObject,
    with_definitions: bool,
) -> Value {
    let is_event = rt.plural == "events" && (rt.group.is_empty() || rt.group == "events.k8s.io");
    let cols = if is_event {
        event_columns()
    } else {
        let mut c = vec![col("Name", "string", "name", ".metadata.name", 0, NAME_DESC)];
        c.extend(columns(rt, version));
        c
    };
    let defs: Vec<Value> = cols.iter().map(definition).collect();
    let rows: Vec<Value> = objects.iter().map(|o| row(&cols, o, include)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": if with_definitions { Value::Array(defs) } else { Value::Array(vec![]) },
        "rows": rows,
    })
}

fn row(cols: &[PrinterColumn], obj: &Value, include: IncludeObject) -> Value {
    let cells: Vec<Value> = cols.iter().map(|c| cell(c, obj)).collect();
    let mut r = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => r["object"] = partial_metadata(obj),
        IncludeObject::Object => r["object"] = obj.clone(),
    }
    r
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// Cells the real printers compute rather than read (both Event shapes are accepted).
fn computed_cell(key: &str, obj: &Value) -> Value {
    let first = |paths: &[&str]| paths.iter().find_map(|p| obj.pointer(p).filter(|v| !v.is_null()));
    match key {
        "#event-last-seen" => first(&[
            "/series/lastObservedTime",
            "/lastTimestamp",
            "/deprecatedLastTimestamp",
            "/eventTime",
            "/metadata/creationTimestamp",
        ])
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
        .map(|t| json!(human_duration(now_secs() - t)))
        .unwrap_or(json!("<unknown>")),
        "#event-object" => {
            let target = first(&["/involvedObject", "/regarding"]).cloned().unwrap_or(json!({}));
            let kind = target.get("kind").and_then(Value::as_str).unwrap_or("").to_lowercase();
            let name = target.get("name").and_then(Value::as_str).unwrap_or("");
            json!(format!("{kind}/{name}"))
        }
        "#ready" => {
            let ready = obj.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
            json!(format!("{ready}/{want}"))
        }
        "#updated" => json!(obj.pointer("/status/updatedReplicas").and_then(Value::as_i64).unwrap_or(0)),
        "#available" => json!(obj.pointer("/status/availableReplicas").and_then(Value::as_i64).unwrap_or(0)),
        "#external-ip" => json!("<none>"),
        "#ports" => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let port = p.get("port").map(Value::to_string).unwrap_or_default();
                            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                            format!("{port}/{proto}")
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(if ports.is_empty() { "<none>".to_string() } else { ports.join(",") })
        }
        "#data" => {
            let count = |k: &str| obj.get(k).and_then(Value::as_object).map_or(0, |m| m.len());
            json!(count("data") + count("binaryData"))
        }
        "#event-message" => json!(first(&["/message", "/note"]).and_then(Value::as_str).unwrap_or("").trim()),
        _ => Value::Null,
    }
}

fn cell(c: &PrinterColumn, obj: &Value) -> Value {
    if c.json_path.starts_with('#') {
        return computed_cell(&c.json_path, obj);
    }
    let Some(v) = jsonpath(obj, &c.json_path).into_iter().next() else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "date" => {
            v.as_str().and_then(parse_rfc3339).map(|t| json!(human_duration(now_secs() - t))).unwrap_or(Value::Null)
        }
        "integer" => v.as_i64().map(|i| json!(i)).unwrap_or(Value::Null),
        "number" => v.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(|b| json!(b)).unwrap_or(Value::Null),
        _ => match v {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
    }
}

/// A small subset of Kubernetes JSONPath: `.a.b`, `[n]`, `[*]`, `[?(@.k=="v")]`.
pub fn jsonpath<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}').trim();
    let mut cur: Vec<&Value> = vec![obj];
    for step in tokenize(path) {
        let mut next = Vec::new();
        for v in cur {
            match &step {
                Step::Key(k) => next.extend(v.get(k.as_str())),
                Step::Index(i) => next.extend(v.as_array().and_then(|a| a.get(*i))),
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter(k, want) => next.extend(
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter(|e| e.get(k.as_str()).and_then(Value::as_str) == Some(want.as_str())),
                ),
            }
        }
        cur = next;
    }
    cur
}

enum Step {
    Key(String),
    Index(usize),
    All,
    Filter(String, String),
}

fn tokenize(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Key(r[..end].to_string()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            let inner = r[..end].trim();
            steps.push(bracket(inner));
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    steps
}

fn bracket(inner: &str) -> Step {
    if inner == "*" {
        return Step::All;
    }
    if let Ok(i) = inner.parse::<usize>() {
        return Step::Index(i);
    }
    if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
        && let Some((k, v)) = f.split_once("==")
    {
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        return Step::Filter(k.trim().to_string(), v.to_string());
    }
    Step::Key(inner.trim_matches(|c| c == '"' || c == '\'').to_string())
}
