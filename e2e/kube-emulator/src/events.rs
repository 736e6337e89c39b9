//! core/v1 and events.k8s.io/v1 Events are one stored object in two shapes (as in the real
//! server). The store keeps the core shape; these convert field names both ways.

use serde_json::{Map, Value};

/// (events.k8s.io/v1 name, core/v1 name) pairs that differ.
const RENAMES: [(&str, &str); 8] = [
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingInstance", "reportingInstance"),
];

fn rename(obj: Value, to_core: bool) -> Value {
    let Value::Object(map) = obj else { return obj };
    let mut out = Map::new();
    for (k, v) in map {
        let renamed = RENAMES.iter().find_map(|(new, core)| {
            if to_core && k == *new {
                Some(*core)
            } else if !to_core && k == *core {
                Some(*new)
            } else {
                None
            }
        });
        out.insert(renamed.map(String::from).unwrap_or(k), v);
    }
    Value::Object(out)
}

/// events.k8s.io/v1 shape -> stored core/v1 shape.
pub fn to_core(obj: Value) -> Value {
    rename(obj, true)
}

/// Stored core/v1 shape -> events.k8s.io/v1 shape.
pub fn from_core(obj: Value) -> Value {
    rename(obj, false)
}
