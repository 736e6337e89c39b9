//! What a cache holds of each object, and the compact record it holds of a child.
//!
//! A typed k8s-openapi object is mostly room, not content: a trimmed Service takes 2.5 KB in a
//! cache, of which its struct is 0.8 KB (mostly empty options), each of its label and annotation
//! maps a B-tree node of half a kilobyte for five entries, and every key and value its own heap
//! string. A [`Record`] keeps the same facts in a tenth of that: its name, the parts it shares
//! with its siblings (namespace, labels, owner references, finalizers: the same for every child
//! of one component) interned once for all of them, and the rest of its trimmed form (annotations,
//! resourceVersion, generation, and what the kind keeps of its content) as compact JSON. A read
//! restores the typed object from it; the sweep reads its namespace, controller and name in place.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::reflector::Lookup;
use kube::runtime::watcher::Event;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::intern::{self, Pool};

/// What the sweep reads of a cached object, in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership<'a> {
    pub namespace: Option<&'a str>,
    /// The uid of its controller owner.
    pub controller: Option<&'a str>,
    pub name: &'a str,
    /// Already being deleted.
    pub going: bool,
}

/// What a cache holds of each object of kind `K`: the (trimmed) object itself, or a [`Record`]
/// of it.
pub trait Stored<K: Resource>: Lookup<DynamicType = K::DynamicType> + Clone + Send + Sync + 'static {
    /// Whether the cache keeps the objects themselves (the custom resources, which a controller
    /// may reconcile), not records of them.
    const WHOLE: bool;

    /// The cache's copy of `object`, already trimmed.
    fn keep(object: &K) -> Self;
    /// The object as the cache holds it; `None` if it cannot be restored (the caller then reads
    /// it from the API server).
    fn restore(&self) -> Option<K>;
    /// What the sweep reads.
    fn ownership(&self) -> Ownership<'_>;
    /// Its labels (a record parses its interned copy).
    fn labels(&self) -> Option<BTreeMap<String, String>>;
}

/// Kinds kept whole hold themselves (the custom resources: their specs and statuses are read).
impl<K> Stored<K> for K
where
    K: Resource + Clone + Send + Sync + 'static,
{
    const WHOLE: bool = true;

    fn keep(object: &K) -> Self {
        object.clone()
    }

    fn restore(&self) -> Option<K> {
        Some(self.clone())
    }

    fn ownership(&self) -> Ownership<'_> {
        let meta = self.meta();
        Ownership {
            namespace: meta.namespace.as_deref(),
            controller: controller_uid(meta),
            name: meta.name.as_deref().unwrap_or_default(),
            going: meta.deletion_timestamp.is_some(),
        }
    }

    fn labels(&self) -> Option<BTreeMap<String, String>> {
        self.meta().labels.clone()
    }
}

/// A cached child of kind `K`: see the module's documentation.
pub struct Record<K> {
    name: Box<str>,
    going: bool,
    /// Interned: one copy for every object with the same namespace, labels, owners, finalizers.
    shared: Arc<Shared>,
    /// The rest of the trimmed object, as compact JSON without its apiVersion and kind.
    rest: Box<str>,
    kind: PhantomData<fn() -> K>,
}

// By hand: a derive would ask `K: Clone` of the phantom kind.
impl<K> Clone for Record<K> {
    fn clone(&self) -> Self {
        Record {
            name: self.name.clone(),
            going: self.going,
            shared: self.shared.clone(),
            rest: self.rest.clone(),
            kind: PhantomData,
        }
    }
}

// By hand: the rest of a Secret's record is its data, which no log may show.
impl<K> std::fmt::Debug for Record<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rest = format!("{} bytes", self.rest.len());
        f.debug_struct("Record").field("name", &self.name).field("shared", &self.shared).field("rest", &rest).finish()
    }
}

/// The part of a record that a parent's children of one component have in common. Each of its
/// texts is interned too: a parent's owner reference is the same for all its components, a
/// component's labels for children of different owners.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Shared {
    namespace: Option<Arc<str>>,
    /// The uid of the controller owner: what the sweep compares.
    controller: Option<Arc<str>>,
    /// Labels, owner references and finalizers, each as compact JSON.
    labels: Option<Arc<str>>,
    owners: Option<Arc<str>>,
    finalizers: Option<Arc<str>>,
}

/// Every record's shared parts, one copy each: a process-wide pool, because the three
/// controllers' watches and every kind share them (their texts are in [`intern::text`]'s).
static SHARED: LazyLock<Pool<Shared>> = LazyLock::new(Pool::default);

impl<K> Stored<K> for Record<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    const WHOLE: bool = false;

    fn keep(object: &K) -> Self {
        let meta = object.meta();
        let shared = Shared {
            namespace: meta.namespace.as_deref().map(intern::text),
            controller: controller_uid(meta).map(intern::text),
            labels: meta.labels.as_ref().map(|labels| intern::text(compact(labels).as_str())),
            owners: meta.owner_references.as_ref().map(|owners| intern::text(compact(owners).as_str())),
            finalizers: meta.finalizers.as_ref().map(|finalizers| intern::text(compact(finalizers).as_str())),
        };
        Record {
            name: meta.name.as_deref().unwrap_or_default().into(),
            going: meta.deletion_timestamp.is_some(),
            shared: SHARED.intern(shared),
            rest: rest_of(object).into(),
            kind: PhantomData,
        }
    }

    fn restore(&self) -> Option<K> {
        let mut object: K = parsed(&self.rest)?;
        let shared = &self.shared;
        let meta = object.meta_mut();
        meta.name = Some(self.name.to_string());
        meta.namespace = shared.namespace.as_deref().map(String::from);
        meta.labels = parsed_part(shared.labels.as_deref())?;
        meta.owner_references = parsed_part(shared.owners.as_deref())?;
        meta.finalizers = parsed_part(shared.finalizers.as_deref())?;
        Some(object)
    }

    fn ownership(&self) -> Ownership<'_> {
        Ownership {
            namespace: self.shared.namespace.as_deref(),
            controller: self.shared.controller.as_deref(),
            name: &self.name,
            going: self.going,
        }
    }

    fn labels(&self) -> Option<BTreeMap<String, String>> {
        parsed_part(self.shared.labels.as_deref()).flatten()
    }
}

/// The store keys a record by name and namespace only: a resourceVersion and a uid in each key
/// would be two more strings per object, and nothing looks them up.
impl<K: Resource<DynamicType = ()>> Lookup for Record<K> {
    type DynamicType = ();

    fn kind(dyntype: &()) -> Cow<'_, str> {
        K::kind(dyntype)
    }

    fn group(dyntype: &()) -> Cow<'_, str> {
        K::group(dyntype)
    }

    fn version(dyntype: &()) -> Cow<'_, str> {
        K::version(dyntype)
    }

    fn plural(dyntype: &()) -> Cow<'_, str> {
        K::plural(dyntype)
    }

    fn name(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.name))
    }

    fn namespace(&self) -> Option<Cow<'_, str>> {
        self.shared.namespace.as_deref().map(Cow::Borrowed)
    }

    fn resource_version(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        None
    }
}

/// A watch event of `K` objects as the cache of `S` stores it.
pub fn stored_event<K: Resource, S: Stored<K>>(event: &Event<K>) -> Event<S> {
    match event {
        Event::Apply(object) => Event::Apply(S::keep(object)),
        Event::Delete(object) => Event::Delete(S::keep(object)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(S::keep(object)),
        Event::InitDone => Event::InitDone,
    }
}

fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references.iter().flatten().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

/// The trimmed object without what the record holds apart (name, shared parts) and what no
/// controller reads of a child (uid, creationTimestamp; managedFields are gone already).
fn rest_of<K: Serialize>(object: &K) -> String {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(fields) = value.as_object_mut() {
        fields.remove("apiVersion");
        fields.remove("kind");
    }
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|field, _| KEPT_METADATA.contains(&field.as_str()));
    }
    compact(&value)
}

/// The metadata a record keeps beside its name and shared parts.
const KEPT_METADATA: [&str; 4] = ["annotations", "resourceVersion", "generation", "deletionTimestamp"];

fn compact<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn parsed<T: DeserializeOwned>(json: &str) -> Option<T> {
    serde_json::from_str(json)
        .inspect_err(|error| tracing::warn!(%error, "a cached record does not restore; reading it instead"))
        .ok()
}

/// An optional part parsed: `Some(None)` if absent, `None` if it does not parse.
fn parsed_part<T: DeserializeOwned>(json: Option<&str>) -> Option<Option<T>> {
    json.map_or(Some(None), |json| parsed(json).map(Some))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Secret;
    use serde_json::json;

    use super::*;

    fn deployment(name: &str, owner_uid: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": "u-1", "resourceVersion": "42", "generation": 3,
                "creationTimestamp": "2026-12-02T10:00:00Z",
                "labels": {"app.kubernetes.io/instance": "prod", "app.kubernetes.io/component": "proxy"},
                "annotations": {"prism.io/applied-hash": "0123456789abcdef"},
                "ownerReferences": [{"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster", "name": "prod",
                                     "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"replicas": 2, "availableReplicas": 1, "observedGeneration": 3}
        }))
        .expect("deployment")
    }

    #[test]
    fn a_record_restores_what_it_was_given_but_uid_and_creation_time() {
        let object = deployment("prod-proxy", "owner-1");
        let restored = Record::keep(&object).restore().expect("restores");
        let mut expected = object.clone();
        (expected.metadata.uid, expected.metadata.creation_timestamp) = (None, None);
        assert_eq!(restored, expected);
    }

    #[test]
    fn the_sweep_reads_a_record_in_place_and_it_is_keyed_by_name_and_namespace() {
        let mut object = deployment("prod-proxy", "owner-1");
        object.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let record: Record<Deployment> = Record::keep(&object);
        let expected =
            Ownership { namespace: Some("ns"), controller: Some("owner-1"), name: "prod-proxy", going: true };
        assert_eq!(record.ownership(), expected);
        assert_eq!(Stored::ownership(&object), expected, "a kept object says the same");
        let key = record.to_object_ref(());
        assert_eq!((key.name.as_str(), key.namespace.as_deref()), ("prod-proxy", Some("ns")));
        assert_eq!((key.extra.resource_version, key.extra.uid), (None, None));
    }

    #[test]
    fn siblings_share_one_copy_of_their_common_parts() {
        let (a, b): (Record<Deployment>, Record<Deployment>) =
            (Record::keep(&deployment("a", "owner-2")), Record::keep(&deployment("b", "owner-2")));
        assert!(Arc::ptr_eq(&a.shared, &b.shared));
        let other: Record<Deployment> = Record::keep(&deployment("c", "owner-3"));
        assert!(!Arc::ptr_eq(&a.shared, &other.shared), "another owner, another copy");
        let (labels, other_labels) = (a.shared.labels.as_ref(), other.shared.labels.as_ref());
        assert!(labels.zip(other_labels).is_some_and(|(a, b)| Arc::ptr_eq(a, b)), "but the same labels");
    }

    #[test]
    fn a_secret_keeps_its_data_and_finalizers() {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "creds", "namespace": "ns", "finalizers": ["prism.io/credentials-protection"],
                         "resourceVersion": "7"},
            "data": {"password": "c2VjcmV0"}
        }))
        .expect("secret");
        assert_eq!(Record::keep(&secret).restore(), Some(secret));
    }

    #[test]
    fn a_record_shows_no_data_in_logs() {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "creds", "namespace": "ns"}, "data": {"password": "c2VjcmV0"}
        }))
        .expect("secret");
        let shown = format!("{:?}", Record::keep(&secret));
        assert!(shown.contains("creds") && !shown.contains("c2VjcmV0"), "{shown}");
    }
}
