//! `metadata.managedFields` entries: decoding, identity and encoding as kube-apiserver writes them.

use serde_json::{Map, Value, json};

use super::fieldpath::{FieldSet, Path};

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";

/// One manager's claim. Its identity is (manager, operation, subresource) and, for `Update` entries
/// only, apiVersion (the apiserver's `BuildManagerIdentifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    pub(crate) fn new(manager: &str, operation: &str, api_version: &str, subresource: Option<&str>) -> Entry {
        Entry {
            manager: manager.to_string(),
            operation: operation.to_string(),
            api_version: api_version.to_string(),
            time: None,
            subresource: subresource.map(str::to_string),
            set: FieldSet::new(),
        }
    }

    pub(crate) fn is(&self, manager: &str, operation: &str, api_version: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == APPLY || self.api_version == api_version)
    }

    /// The apiserver's `printManager`: `"name"`, `"name" with subresource "status"`, `... using apps/v1`.
    pub(crate) fn printable(&self) -> String {
        let mut out = go_quote(&self.manager);
        if let Some(sub) = &self.subresource {
            out = format!("{out} with subresource {}", go_quote(sub));
        }
        if self.operation == UPDATE {
            out = format!("{out} using {}", self.api_version);
        }
        out
    }

    fn decode(entry: &Value) -> Option<Entry> {
        let text = |key: &str| entry.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let set = match entry.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)?,
            None => FieldSet::new(),
        };
        Some(Entry {
            manager: text("manager").unwrap_or_default(),
            operation: text("operation")?,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource"),
            set,
        })
    }

    fn encode(&self) -> Value {
        let mut out = Map::new();
        out.insert("manager".into(), json!(self.manager));
        out.insert("operation".into(), json!(self.operation));
        out.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            out.insert("time".into(), json!(time));
        }
        out.insert("fieldsType".into(), json!("FieldsV1"));
        out.insert("fieldsV1".into(), self.set.to_fields_v1());
        if let Some(sub) = &self.subresource {
            out.insert("subresource".into(), json!(sub));
        }
        Value::Object(out)
    }
}

fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The entries of an object's `metadata.managedFields`; None if absent or not decodable (the apiserver
/// then starts from nothing).
pub(crate) fn decode(object: &Value) -> Option<Vec<Entry>> {
    let list = object.pointer("/metadata/managedFields")?.as_array()?;
    list.iter().map(Entry::decode).collect()
}

/// `managedFields: []` or `[{}]` in a request clears the field managers (the apiserver's
/// `isResetManagedFields`).
pub(crate) fn is_reset(object: &Value) -> bool {
    match object.pointer("/metadata/managedFields").and_then(Value::as_array) {
        Some(list) if list.is_empty() => true,
        Some(list) => list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty),
        None => false,
    }
}

/// Encodes entries sorted as the apiserver sorts them: operation, time, manager, apiVersion, subresource.
pub(crate) fn encode(entries: &[Entry]) -> Value {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.operation, a.time.as_deref().unwrap_or(""), &a.manager, &a.api_version, &a.subresource).cmp(&(
            &b.operation,
            b.time.as_deref().unwrap_or(""),
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    Value::Array(sorted.into_iter().map(Entry::encode).collect())
}

/// Writes `entries` into the object's metadata (removing the member when there are none).
pub(crate) fn write(object: &mut Value, entries: &[Entry]) {
    let Some(root) = object.as_object_mut() else { return };
    let metadata = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else { return };
    if entries.is_empty() {
        metadata.remove("managedFields");
    } else {
        metadata.insert("managedFields".into(), encode(entries));
    }
}

/// A copy of the object without `metadata.managedFields`.
pub(crate) fn without_managed_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(metadata) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    out
}

/// Paths nobody owns: the apiserver's strip set (`stripMetaManager`) plus the deletion markers only the
/// server sets.
pub(crate) fn server_owned() -> FieldSet {
    let mut set = FieldSet::new();
    set.insert(&Path::field(&["apiVersion"]));
    set.insert(&Path::field(&["kind"]));
    set.insert(&Path::field(&["metadata"]));
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        set.insert(&Path::field(&["metadata", field]));
    }
    set
}
