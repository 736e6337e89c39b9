//! What the simulated controllers share: their field managers, the annotations that steer the
//! simulation, the storage keys they address, and how they keep conditions and name revisions.
//! Below both the workload controllers and the replica controllers, so that neither imports the
//! other for these.

use serde_json::{Value, json};

use crate::meta::now_rfc3339;

pub const READY_AFTER_ANNOTATION: &str = "kube-emulator.io/ready-after";
pub const NEVER_READY_ANNOTATION: &str = "kube-emulator.io/never-ready";
pub const DEPLOYMENT_MANAGER: &str = "deployment-controller";
pub const STATEFULSET_MANAGER: &str = "statefulset-controller";
pub const PV_BINDER_MANAGER: &str = "persistentvolume-binder-controller";
pub const SERVICE_IP_MANAGER: &str = "kube-apiserver";

pub(super) const DEPLOYMENTS: &str = "apps/deployments";

pub(super) fn find_condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// A condition whose lastTransitionTime moves only when its status does (PDB, HPA conditions).
pub(super) fn keep_transition(obj: &Value, mut c: Value) -> Value {
    let old = find_condition(obj, c["type"].as_str().unwrap_or(""));
    c["lastTransitionTime"] = match old {
        Some(o) if o.get("status") == c.get("status") => o.get("lastTransitionTime").cloned().unwrap_or(Value::Null),
        _ => json!(now_rfc3339()),
    };
    c
}

/// The pod-template hash / controller revision suffix: FNV-1a 32 of the template, written
/// with the apimachinery "safe" alphabet like `rand.SafeEncodeString(fmt.Sprint(hash))`.
pub fn template_hash(obj: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = obj.pointer("/spec/template").map(Value::to_string).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string().bytes().map(|d| ALPHABET[usize::from(d) % ALPHABET.len()] as char).collect()
}
