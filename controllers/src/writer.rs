//! Writing a parent's children during one pass: server-side apply with the controller's field
//! manager, skipped when it would change nothing, and a ledger of every child the pass applied.
//! One sweep then deletes the parent's children that no longer belong (Stackable's
//! ClusterResources): those it controls, of every kind the controller owns, that the ledger
//! lacks. Every write is counted in the metrics and announced as an Event on the parent.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use prism_api::names::annotations;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cache::{CachedKind, Child, Children, Lookup, child, is_controlled_by};
use crate::context::{Context, Identity};
use crate::error::{Error, Result};
use crate::kinds::Watched;
use crate::metrics::WriteAction;
use crate::projection::{self, Child as ChildKind};

/// What applying one child did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// The children one pass applied, by API group, kind, namespace and name.
#[derive(Debug, Default)]
struct Ledger(BTreeSet<(String, String, String, String)>);

impl Ledger {
    fn key(resource: &ApiResource, ns: &str, name: &str) -> (String, String, String, String) {
        (resource.group.clone(), resource.kind.clone(), ns.to_string(), name.to_string())
    }

    fn record(&mut self, resource: &ApiResource, ns: &str, name: &str) {
        self.0.insert(Self::key(resource, ns, name));
    }

    fn has(&self, resource: &ApiResource, ns: &str, name: &str) -> bool {
        self.0.contains(&Self::key(resource, ns, name))
    }
}

/// Writes one parent's children on behalf of one controller, for one pass.
pub struct Writer<'a> {
    pub ctx: &'a Context,
    /// The controller's caches, read before each write.
    pub children: &'a Children,
    identity: Identity,
    parent: ObjectReference,
    /// The parent's namespace: its children's too.
    namespace: String,
    owner_uid: String,
    ledger: Mutex<Ledger>,
}

impl<'a> Writer<'a> {
    pub fn new<P: Resource<DynamicType = ()>>(
        ctx: &'a Context,
        children: &'a Children,
        identity: Identity,
        parent: &P,
    ) -> Self {
        Writer {
            ctx,
            children,
            identity,
            parent: parent.object_ref(&()),
            namespace: parent.meta().namespace.clone().unwrap_or_default(),
            owner_uid: parent.meta().uid.clone().unwrap_or_default(),
            ledger: Mutex::default(),
        }
    }

    /// An Api for `K` in the parent's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        self.api_in(&self.namespace)
    }

    /// An Api for `K` in namespace `ns` (a tenant's runners live in its cluster's namespace).
    pub fn api_in<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ctx.client.clone(), ns)
    }

    /// The object `name` of kind `K` in the parent's namespace, as last seen, else as read now.
    pub async fn live<K: ChildKind>(&self, name: &str) -> Result<Option<K>> {
        self.live_in(&self.namespace, name).await
    }

    /// The object `name` of kind `K` in namespace `ns`, as last seen, else as read now.
    pub async fn live_in<K: ChildKind>(&self, ns: &str, name: &str) -> Result<Option<K>> {
        self.children.live(&self.api_in::<K>(ns), name).await
    }

    /// The child `name` of kind `K` that carries `labels`, as last seen: once the cache has
    /// listed, a child it has not seen is absent (see [`Children::lookup`]); else as read now.
    pub async fn live_child<K: ChildKind>(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<Option<K>> {
        self.live_child_in(&self.namespace, name, labels).await
    }

    /// [`Writer::live_child`] in namespace `ns`.
    pub async fn live_child_in<K: ChildKind>(
        &self,
        ns: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<K>> {
        self.children.live_child(&self.api_in::<K>(ns), name, labels).await
    }

    /// Applies `desired` unless the live object already is what it would become, and returns the
    /// object as it now is with what happened. The desired state's hash rides in an annotation so
    /// that a field dropped from the desired state is noticed (and removed by the apply). The live
    /// object is read from the controller's cache of its children when it has one for `K`. The
    /// child goes to its own namespace if it names one (a tenant's runner goes to its cluster's),
    /// else to the parent's.
    pub async fn apply<K: ChildKind>(&self, desired: K) -> Result<(K, Outcome)> {
        let name = desired.name_any();
        let ns = desired.namespace().unwrap_or_else(|| self.namespace.clone());
        self.record(&ApiResource::erase::<K>(&()), &ns, &name);
        let known = match self.children.lookup::<K>(&ns, &name, desired.labels()) {
            Lookup::Seen(live) => Some(Some(live)),
            Lookup::Absent => Some(None),
            Lookup::Unknown => None,
        };
        let (object, outcome) = self.apply_over(&self.api_in(&ns), desired, &(), known).await?;
        if outcome != Outcome::Unchanged {
            self.children.wrote::<K>(&ns, &name);
        }
        Ok((object, outcome))
    }

    /// [`Writer::apply`] for a kind known only at run time (e.g. KEDA's ScaledObject): its live
    /// object is always read (only its metadata is cached).
    pub async fn apply_dynamic(
        &self,
        desired: DynamicObject,
        resource: &ApiResource,
    ) -> Result<(DynamicObject, Outcome)> {
        self.record(resource, &self.namespace, &desired.name_any());
        let api = Api::namespaced_with(self.ctx.client.clone(), &self.namespace, resource);
        self.apply_over(&api, desired, resource, None).await
    }

    fn record(&self, resource: &ApiResource, ns: &str, name: &str) {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner).record(resource, ns, name);
    }

    fn recorded(&self, resource: &ApiResource, ns: &str, name: &str) -> bool {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner).has(resource, ns, name)
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
        // A terminating object may be gone by now (its finalizer released by this very reconcile,
        // as with credentials): only the API server can tell whether to create it afresh.
        let live = match known {
            Some(Some(live)) if live.meta().deletion_timestamp.is_none() => Some(live),
            Some(None) => None,
            _ => api.get_opt(&name).await.map_err(|source| Error::api("get", &kind, &name, source))?,
        };
        if let Some(live) = &live {
            crate::meta::keep_served_owner_versions(desired.meta_mut(), live.meta());
        }
        let desired_hash = crate::hash::of(&desired);
        desired.annotations_mut().insert(annotations::APPLIED_HASH.into(), desired_hash.clone());
        let key = self.children.key_of(&kind, api.namespace().unwrap_or(&self.namespace), &name);
        if let Some(live) = &live
            && self.is_current(key, live, &desired, &desired_hash)
        {
            return Ok((live.clone(), Outcome::Unchanged));
        }
        let params = PatchParams::apply(self.identity.field_manager).force();
        let applied = api
            .patch(&name, &params, &Patch::Apply(&desired))
            .await
            .map_err(|source| Error::api("apply", &kind, &name, source))?;
        self.children.applied(key, &projection::content_hash(&applied));
        let (outcome, action) = if live.is_some() {
            (Outcome::Updated, WriteAction::Updated)
        } else {
            (Outcome::Created, WriteAction::Created)
        };
        self.written(&kind, &name, action);
        Ok((applied, outcome))
    }

    /// Deletes the child `name` of kind `K`, if it exists. Returns whether a delete was sent. The
    /// child must be one this controller's watches select (see [`Children`]): once they have
    /// listed their objects, a child they have not seen is taken as absent.
    pub async fn delete<K: ChildKind>(&self, name: &str) -> Result<bool> {
        let listed = self.children.owned_kind::<K>().is_some_and(|kind| kind.listed());
        let cached = listed.then(|| self.children.seen::<K>(&self.namespace, name));
        if cached == Some(false) {
            return Ok(false);
        }
        let resource = ApiResource::erase::<K>(&());
        self.delete_named(&resource, Some(TypeId::of::<K>()), &self.namespace, name, cached == Some(true)).await
    }

    /// Deletes every child the parent controls that this pass did not apply, of every kind the
    /// controller owns, newest kind first (the reverse of apply order). Kinds whose cache has not
    /// listed yet are listed by `selector`. Returns how many unwanted children remain, those
    /// being deleted included.
    pub async fn sweep(&self, selector: &str) -> Result<usize> {
        let mut remaining = 0;
        for kind in self.children.owned().rev() {
            remaining += self.sweep_kind(kind.resource(), Some(kind), selector).await?;
        }
        Ok(remaining)
    }

    /// [`Writer::sweep`] of one kind (an ordered teardown sweeps kind by kind).
    pub async fn sweep_one<K: ChildKind>(&self, selector: &str) -> Result<usize> {
        let resource = ApiResource::erase::<K>(&());
        self.sweep_kind(&resource, self.children.owned_kind::<K>(), selector).await
    }

    async fn sweep_kind(
        &self,
        resource: &ApiResource,
        cached: Option<&dyn CachedKind>,
        selector: &str,
    ) -> Result<usize> {
        let children = match cached.filter(|kind| kind.listed()) {
            Some(kind) => kind.controlled_by(&self.namespace, &self.owner_uid),
            None => self.list_controlled(resource, selector).await?,
        };
        let (doomed, remaining) = unwanted(children, |name| self.recorded(resource, &self.namespace, name));
        for name in doomed {
            self.delete_named(resource, cached.map(|kind| kind.stored_type()), &self.namespace, &name, true).await?;
        }
        Ok(remaining)
    }

    /// Deletes the `K` objects in namespace `ns` that `labels` select and this pass did not apply:
    /// children tied to the parent by labels alone (a tenant's runners in its cluster's
    /// namespace, where no owner reference can reach). Returns how many unwanted ones remain,
    /// those being deleted included.
    pub async fn sweep_labelled<K: Watched>(&self, ns: &str, labels: &BTreeMap<String, String>) -> Result<usize> {
        let resource = ApiResource::erase::<K>(&());
        let selector = kube::core::Selector::from_iter(
            labels.iter().map(|(k, v)| kube::core::Expression::Equal(k.clone(), v.clone())),
        );
        let cached = self.children.owned_kind::<K>().filter(|kind| kind.listed());
        let children = match cached {
            Some(kind) => kind.labelled(ns, &selector),
            None => {
                let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), ns, &resource);
                let params = ListParams::default().labels(&selector.to_string());
                let list = api
                    .list_metadata(&params)
                    .await
                    .map_err(|source| Error::api("list", &resource.kind, &selector.to_string(), source))?;
                list.items.iter().map(|item| child(&item.metadata)).collect()
            }
        };
        let (doomed, remaining) = unwanted(children, |name| self.recorded(&resource, ns, name));
        for name in doomed {
            self.delete_named(&resource, Some(TypeId::of::<K>()), ns, &name, true).await?;
        }
        Ok(remaining)
    }

    /// The children of kind `resource` that `selector` selects and the parent controls, listed.
    async fn list_controlled(&self, resource: &ApiResource, selector: &str) -> Result<Vec<Child>> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), &self.namespace, resource);
        let list = api
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(|source| Error::api("list", &resource.kind, selector, source))?;
        let controlled = |meta: &&ObjectMeta| is_controlled_by(meta, &self.owner_uid);
        Ok(list.items.iter().map(|item| &item.metadata).filter(controlled).map(child).collect())
    }

    /// Deletes `name` if it exists (`exists`: known to, so it need not be looked up). `cached` is
    /// the type of its cache, if it has one.
    async fn delete_named(
        &self,
        resource: &ApiResource,
        cached: Option<TypeId>,
        ns: &str,
        name: &str,
        exists: bool,
    ) -> Result<bool> {
        let kind = &resource.kind;
        let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), ns, resource);
        // Look first: deleting what is not there would still be a write request, on every pass.
        let exists = exists
            || api.get_metadata_opt(name).await.map_err(|source| Error::api("get", kind, name, source))?.is_some();
        if !exists {
            return Ok(false);
        }
        let sent = match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {
                self.written(kind, name, WriteAction::Deleted);
                true
            }
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(source) => return Err(Error::api("delete", kind, name, source)),
        };
        self.children.deleted(cached, kind, ns, name);
        Ok(sent)
    }

    /// Server-side apply's documented hand-over of `spec.replicas` to an autoscaler: another
    /// manager first co-owns them at their current value, so that the operator's next apply, which
    /// no longer carries them, does not reset them (a fall to one replica under load). Does nothing
    /// unless this writer applied the replicas before.
    pub async fn hand_over_replicas<K>(&self, live: &K) -> Result<()>
    where
        K: Watched + Serialize,
    {
        if !projection::applied_replicas(live.meta(), self.identity.field_manager) {
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
        self.api::<K>()
            .patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::api("apply", &K::kind(&()), &name, source))?;
        Ok(())
    }

    /// Whether `live` already is what applying `desired` would make it: the same applied hash (the
    /// desired state did not change), the metadata and replicas the operator sets still there, and
    /// its content as it was after the operator's last apply (no hand edit to revert; on first
    /// sight, e.g. after a restart, the content is taken as it is).
    fn is_current<K: Serialize + Resource>(&self, key: u64, live: &K, desired: &K, desired_hash: &str) -> bool {
        projection::applied_hash(live.meta()) == Some(desired_hash)
            && contains(&projection::compared(live), &projection::compared(desired))
            && self.children.content_unchanged(key, &projection::content_hash(live))
    }

    /// Counts and logs a write of a child: the record of what the operator did (an Event is for a
    /// transition of the parent, not for each child written).
    fn written(&self, kind: &str, name: &str, action: WriteAction) {
        self.ctx.metrics.object_written(self.identity.controller, kind, action);
        tracing::info!("{} {kind} {name}", action.as_str());
    }

    /// Publishes an Event on the parent (in the background; best effort).
    pub fn announce(&self, type_: EventType, reason: &str, note: &str) {
        self.ctx.announce(&self.parent, type_, reason, note);
    }
}

/// Of `children`, those not `wanted` that are not already going (to delete), and how many
/// unwanted ones there are, going ones included.
fn unwanted(children: Vec<Child>, wanted: impl Fn(&str) -> bool) -> (Vec<String>, usize) {
    let unwanted: Vec<Child> = children.into_iter().filter(|c| !wanted(&c.name)).collect();
    let doomed = unwanted.iter().filter(|c| !c.going).map(|c| c.name.clone()).collect();
    (doomed, unwanted.len())
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

    use super::{Child, contains, unwanted};

    #[test]
    fn only_children_of_the_owner_not_kept_are_unwanted_and_going_ones_are_not_deleted_twice() {
        let child = |name: &str, going: bool| Child { name: name.into(), going };
        // The sweep sees only the children the owner controls (the cache and the list filter
        // them): "theirs" never reaches it.
        let children = vec![child("kept", false), child("old", false), child("older", true)];
        let (doomed, remaining) = unwanted(children, |name| name == "kept");
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
