//! How the controllers address, read and write stored objects: by storage key, at the storage
//! version, through the normal write pipeline.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::errors::ApiResult;
use crate::ops::{Cluster, PatchKind, Sub, Target, WriteOptions};
use crate::registry::ResourceType;
use crate::store::{Change, State};

/// Identifies a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub storage: String,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub(super) fn of(change: &Change) -> Self {
        Self { storage: change.storage.clone(), namespace: change.namespace.clone(), name: change.name.clone() }
    }

    pub(super) fn of_object(storage: &str, obj: &Value) -> Self {
        Self {
            storage: storage.to_string(),
            namespace: crate::meta::meta_str(obj, "namespace").to_string(),
            name: crate::meta::meta_str(obj, "name").to_string(),
        }
    }
}

/// The live object and its type.
pub(super) fn live(cluster: &Cluster, key: &ObjKey) -> Option<(Arc<Value>, Arc<ResourceType>)> {
    let st = cluster.store.lock();
    let obj = st.get(&key.storage, &key.namespace, &key.name)?;
    let rt = st.registry.by_storage(&key.storage)?;
    Some((obj, rt))
}

pub(super) fn target(rt: &Arc<ResourceType>, key: &ObjKey, sub: Option<Sub>) -> Target {
    Target {
        rt: rt.clone(),
        version: rt.storage_version.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        sub,
    }
}

/// A merge patch of the object's metadata, conditional on the resourceVersion it was read at.
pub(super) fn patch_metadata(
    cluster: &Cluster,
    rt: &Arc<ResourceType>,
    obj: &Value,
    fields: Value,
    manager: &str,
) -> ApiResult<()> {
    let mut meta = fields;
    meta["resourceVersion"] = obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
    let key = ObjKey::of_object(&rt.storage, obj);
    let patch = serde_json::json!({"metadata": meta});
    cluster.patch(&target(rt, &key, None), PatchKind::Merge, &patch, &WriteOptions::manager(manager)).map(|_| ())
}

/// Storage keys of every servable type (objects of all of them are scanned at start).
fn all_storages(st: &State) -> Vec<String> {
    let mut keys: Vec<String> = st.registry.all().iter().map(|t| t.storage.clone()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Objects of every type, for a controller's initial scan (or rescan after it fell behind).
pub(super) fn snapshot_all(st: &State) -> HashMap<String, Vec<Arc<Value>>> {
    all_storages(st)
        .into_iter()
        .map(|s| {
            let objs = st.list(&s, None, None);
            (s, objs)
        })
        .collect()
}
