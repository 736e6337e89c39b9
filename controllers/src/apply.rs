//! Writing children: server-side apply with one field manager per controller, skipped when it
//! would change nothing; deletion of children no longer desired. Every write is counted in the
//! metrics and announced as an Event on the parent.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use prism_api::names::annotations;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cache::Lookup;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::metrics::WriteAction;
use crate::watches::Watched;

/// What applying one child did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// Writes a parent's children on behalf of one controller.
pub struct Writer<'a> {
    pub ctx: &'a Context,
    pub controller: &'static str,
    pub field_manager: &'static str,
    /// The parent, for Events.
    pub parent: ObjectReference,
}

impl Writer<'_> {
    /// Applies `desired` unless the live object already is what it would become, and returns the
    /// object as it now is with what happened. The desired state's hash rides in an annotation so
    /// that a field dropped from the desired state is noticed (and removed by the apply). The live
    /// object is read from the controller's cache of its children when it has one for `K`.
    pub async fn apply<K>(&self, api: &Api<K>, desired: K) -> Result<(K, Outcome)>
    where
        K: Watched + Serialize,
    {
        let Some(ns) = api.namespace() else { return self.apply_over(api, desired, &(), None).await };
        let name = desired.name_any();
        let known = match self.ctx.children.lookup::<K>(ns, &name, desired.labels()) {
            Lookup::Seen(live) => Some(Some(Arc::unwrap_or_clone(live))),
            Lookup::Absent => Some(None),
            Lookup::Unknown => None,
        };
        let (object, outcome) = self.apply_over(api, desired, &(), known).await?;
        if outcome != Outcome::Unchanged {
            self.ctx.children.wrote::<K>(ns, &name);
        }
        Ok((object, outcome))
    }

    /// [`Writer::apply`] for a kind known only at run time (e.g. KEDA's ScaledObject): never cached.
    pub async fn apply_with<K>(&self, api: &Api<K>, desired: K, dt: &K::DynamicType) -> Result<(K, Outcome)>
    where
        K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    {
        self.apply_over(api, desired, dt, None).await
    }

    /// Applies `desired` over the live object: `known` (`Some(None)`: known to be absent), else read.
    async fn apply_over<K>(
        &self,
        api: &Api<K>,
        mut desired: K,
        dt: &K::DynamicType,
        known: Option<Option<K>>,
    ) -> Result<(K, Outcome)>
    where
        K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    {
        let kind = K::kind(dt).to_string();
        let name = desired.name_any();
        let desired_hash = crate::hash::of(&desired);
        desired.annotations_mut().insert(annotations::APPLIED_HASH.into(), desired_hash.clone());
        // A terminating object may be gone by now (its finalizer released by this very reconcile,
        // as with credentials): only the API server can tell whether to create it afresh.
        let live = match known {
            Some(Some(live)) if live.meta().deletion_timestamp.is_none() => Some(live),
            Some(None) => None,
            _ => api.get_opt(&name).await.map_err(|source| api_error("get", &kind, &name, source))?,
        };
        if let Some(live) = &live
            && is_current(live, &desired, &desired_hash)?
        {
            return Ok((live.clone(), Outcome::Unchanged));
        }
        let params = PatchParams::apply(self.field_manager).force();
        let applied = api
            .patch(&name, &params, &Patch::Apply(&desired))
            .await
            .map_err(|source| api_error("apply", &kind, &name, source))?;
        let outcome = if live.is_some() { Outcome::Updated } else { Outcome::Created };
        let action = if live.is_some() { WriteAction::Updated } else { WriteAction::Created };
        self.ctx.metrics.object_written(self.controller, &kind, action);
        self.announce(EventType::Normal, &format!("{kind}{outcome:?}"), &format!("{outcome:?} {kind} {name}"));
        Ok((applied, outcome))
    }

    /// Deletes a child, if it exists. Returns whether a delete was sent. The child must be one
    /// this controller's watches select (see [`crate::cache::Children`]): once they have listed
    /// their objects, a child they have not seen is taken as absent.
    pub async fn delete<K>(&self, api: &Api<K>, name: &str) -> Result<bool>
    where
        K: Watched,
    {
        let Some(ns) = api.namespace() else { return self.delete_over(api, name, &(), false).await };
        let cached = self.ctx.children.holds::<K>(ns, name);
        if cached == Some(false) {
            return Ok(false);
        }
        let sent = self.delete_over(api, name, &(), cached == Some(true)).await?;
        self.ctx.children.deleted::<K>(ns, name);
        Ok(sent)
    }

    /// [`Writer::delete`] for a kind known only at run time: never cached.
    pub async fn delete_with<K>(&self, api: &Api<K>, name: &str, dt: &K::DynamicType) -> Result<bool>
    where
        K: Resource + Clone + Debug + DeserializeOwned,
    {
        self.delete_over(api, name, dt, false).await
    }

    /// Deletes `name` if it exists (`cached`: the cache has it, so it need not be looked up).
    async fn delete_over<K>(&self, api: &Api<K>, name: &str, dt: &K::DynamicType, cached: bool) -> Result<bool>
    where
        K: Resource + Clone + Debug + DeserializeOwned,
    {
        let kind = K::kind(dt).to_string();
        // Look first: deleting what is not there would still be a write request, on every pass.
        let exists = cached
            || api.get_metadata_opt(name).await.map_err(|source| api_error("get", &kind, name, source))?.is_some();
        if !exists {
            return Ok(false);
        }
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {
                self.ctx.metrics.object_written(self.controller, &kind, WriteAction::Deleted);
                self.announce(EventType::Normal, &format!("{kind}Deleted"), &format!("Deleted {kind} {name}"));
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(source) => Err(api_error("delete", &kind, name, source)),
        }
    }

    /// Server-side apply's documented hand-over of `spec.replicas` to an autoscaler: another
    /// manager first co-owns them at their current value, so that the operator's next apply, which
    /// no longer carries them, does not reset them (a fall to one replica under load). Does nothing
    /// unless this writer applied the replicas before.
    pub async fn hand_over_replicas<K>(&self, api: &Api<K>, live: &K) -> Result<()>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
    {
        if !applied_field(live.meta(), self.field_manager, &["f:spec", "f:replicas"]) {
            return Ok(());
        }
        let name = live.name_any();
        let replicas = serde_json::to_value(live).ok().and_then(|v| v["spec"]["replicas"].as_i64());
        let Some(replicas) = replicas else { return Ok(()) };
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()), "kind": K::kind(&()),
            "metadata": {"name": name}, "spec": {"replicas": replicas}
        });
        let params = PatchParams::apply(prism_api::names::field_managers::AUTOSCALER_HANDOVER).force();
        api.patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| api_error("apply", &K::kind(&()), &name, source))?;
        Ok(())
    }

    /// Deletes this parent's children of one kind (found by `labels`, controlled by `owner_uid`)
    /// whose names are not in `keep`. Returns how many remain (deleted ones included until gone).
    /// They are found in the controller's cache once it has listed them, else listed.
    pub async fn prune<K>(&self, api: &Api<K>, labels: &str, owner_uid: &str, keep: &[String]) -> Result<usize>
    where
        K: Watched,
    {
        // Read in place: the cache holds every child of the namespace, not only this owner's.
        let (doomed, remaining) = match self.ctx.children.all::<K>() {
            Some(cached) => unwanted(
                cached.iter().map(|c| c.meta()).filter(|m| m.namespace.as_deref() == api.namespace()),
                owner_uid,
                keep,
            ),
            None => unwanted(&list_children(api, &(), labels).await?, owner_uid, keep),
        };
        for name in doomed {
            self.delete(api, &name).await?;
        }
        Ok(remaining)
    }

    /// [`Writer::prune`] for a kind known only at run time (e.g. ServiceMonitors): always listed.
    pub async fn prune_with<K>(
        &self,
        api: &Api<K>,
        dt: &K::DynamicType,
        labels: &str,
        owner_uid: &str,
        keep: &[String],
    ) -> Result<usize>
    where
        K: Resource + Clone + Debug + DeserializeOwned,
    {
        let (doomed, remaining) = unwanted(&list_children(api, dt, labels).await?, owner_uid, keep);
        for name in doomed {
            self.delete_with(api, &name, dt).await?;
        }
        Ok(remaining)
    }

    /// Publishes an Event on the parent, in the background: a reconcile does not wait for its
    /// Events, and failing to record one (they are best effort) must not fail it.
    pub fn announce(&self, type_: EventType, reason: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let (recorder, parent, reason) = (self.ctx.recorder.clone(), self.parent.clone(), reason.to_string());
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &parent).await {
                tracing::debug!(%error, reason, "could not publish an event");
            }
        });
    }
}

/// The metadata of the objects `labels` selects in `api`'s scope.
async fn list_children<K>(api: &Api<K>, dt: &K::DynamicType, labels: &str) -> Result<Vec<ObjectMeta>>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let params = kube::api::ListParams::default().labels(labels);
    let list = api.list_metadata(&params).await.map_err(|source| api_error("list", &K::kind(dt), labels, source))?;
    Ok(list.items.into_iter().map(|i| i.metadata).collect())
}

/// Of `children`, those controlled by `owner_uid` and not in `keep` that are not already going
/// (to delete), and how many of them there are, going ones included.
fn unwanted<'a>(
    children: impl IntoIterator<Item = &'a ObjectMeta>,
    owner_uid: &str,
    keep: &[String],
) -> (Vec<String>, usize) {
    let unwanted: Vec<&ObjectMeta> = children
        .into_iter()
        .filter(|c| controlled_by(c.owner_references.as_deref(), owner_uid))
        .filter(|c| c.name.as_ref().is_some_and(|name| !keep.contains(name)))
        .collect();
    let doomed = unwanted.iter().filter(|c| c.deletion_timestamp.is_none()).filter_map(|c| c.name.clone()).collect();
    (doomed, unwanted.len())
}

/// Whether an owner reference list names `uid` as the controller.
pub fn controlled_by(
    owners: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]>,
    uid: &str,
) -> bool {
    owners.into_iter().flatten().any(|o| o.uid == uid && o.controller == Some(true))
}

/// Whether `manager` applied the field at `path` (per the object's managedFields).
pub fn applied_field(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    manager: &str,
    path: &[&str],
) -> bool {
    meta.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(manager)
            && entry.operation.as_deref() == Some("Apply")
            && entry
                .fields_v1
                .as_ref()
                .is_some_and(|f| path.iter().try_fold(&f.0, |node, key| node.get(*key)).is_some())
    })
}

pub fn api_error(verb: &'static str, kind: &str, name: &str, source: kube::Error) -> Error {
    Error::Api { verb, kind: kind.to_string(), name: name.to_string(), source: Box::new(source) }
}

/// Whether `live` already carries the desired state: the same applied hash, and every desired
/// field present with the desired value (so hand edits of owned fields are noticed as drift).
fn is_current<K: Serialize + Resource>(live: &K, desired: &K, desired_hash: &str) -> Result<bool> {
    if live.annotations().get(annotations::APPLIED_HASH).map(String::as_str) != Some(desired_hash) {
        return Ok(false);
    }
    let to_value = |object: &K| {
        serde_json::to_value(object).map_err(|source| Error::Serialize {
            kind: "object".into(),
            name: object.meta().name.clone().unwrap_or_default(),
            source,
        })
    };
    Ok(contains(&to_value(live)?, &to_value(desired)?))
}

/// Whether every field of `wanted` is in `actual` with the same value. Lists must have the same
/// length and contain their items in order; fields the server added (defaults, status) are fine.
pub fn contains(actual: &Value, wanted: &Value) -> bool {
    match (actual, wanted) {
        (Value::Object(actual), Value::Object(wanted)) => {
            wanted.iter().all(|(key, w)| actual.get(key).is_some_and(|a| contains(a, w)) || w.is_null())
        }
        (Value::Array(actual), Value::Array(wanted)) => {
            actual.len() == wanted.len() && actual.iter().zip(wanted).all(|(a, w)| contains(a, w))
        }
        (actual, wanted) => actual == wanted,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ObjectMeta, contains, unwanted};

    #[test]
    fn only_children_of_the_owner_not_kept_are_unwanted_and_going_ones_are_not_deleted_twice() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
        let child = |name: &str, owner: &str, going: bool| ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(vec![OwnerReference {
                uid: owner.into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            deletion_timestamp: going.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..ObjectMeta::default()
        };
        let children = [
            child("kept", "me", false),
            child("old", "me", false),
            child("older", "me", true),
            child("theirs", "them", false),
        ];
        let (doomed, remaining) = unwanted(&children, "me", &["kept".to_string()]);
        assert_eq!(doomed, vec!["old".to_string()]);
        assert_eq!(remaining, 2, "the one already going still counts until it is gone");
    }

    #[test]
    fn server_defaults_do_not_count_as_drift_but_edits_do() {
        let desired = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "a", "image": "x"}]}}});
        let defaulted = json!({"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"},
            "template": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "IfNotPresent"}]}}});
        assert!(contains(&defaulted, &desired));
        let edited = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "a", "image": "y"}]}}});
        assert!(!contains(&edited, &desired));
        let extra_container =
            json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}});
        assert!(!contains(&extra_container, &desired));
    }
}
