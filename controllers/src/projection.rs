//! What a cache keeps of an object: what the controllers read, and no more, so that memory grows
//! with the number of objects, not with their size.
//!
//! Every cached object loses its managedFields (often the biggest part of it) and the annotations
//! no controller reads (kubectl's last-applied-configuration, the conversion webhook's carried
//! fields). A child also loses the content the operator wrote (spec, data), which only the no-op
//! check of an apply read: that check compares hashes instead, so a child keeps a hash of its
//! content. A workload keeps its replicas and the status readiness is read from; Secrets keep
//! their data (credentials are read back); a proxy's config keeps its routes (a deleting pattern
//! or namespace waits until they no longer name it); other children keep no status (none is
//! read). Children
//! are then held as compact [`Record`]s; custom resources are kept whole (their specs and statuses
//! are read) as typed objects.
//!
//! The hashes and the managers that applied `spec.replicas` ride in annotations of the cached
//! copy only: nothing in a cache is ever sent back to the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{DynamicObject, PartialObjectMeta};
use prism_api::names::annotations::APPLIED_HASH;
use prism_api::names::labels;
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use serde::Serialize;
use serde_json::Value;

use crate::hash;
use crate::kinds::Watched;
use crate::naming;
use crate::record::{Record, Stored};

/// Annotation of a cached copy: the hash of the object's content as the server holds it.
const CONTENT_HASH: &str = "cache.prism.io/content-hash";
/// Annotation of a cached copy: the field managers that applied `spec.replicas`, comma-separated.
const REPLICAS_APPLIED_BY: &str = "cache.prism.io/replicas-applied-by";
/// Label of a cached custom resource: its applied-hash annotation, moved. A child PrismPattern or
/// PrismNamespace carries no other annotation, and a map of one entry is a whole B-tree node
/// (540 bytes, about 4 KB per cluster); its labels map has room to spare.
const APPLIED_HASH_LABEL: &str = "cache.prism.io/applied-hash";

/// A kind of child the controllers watch, cache and write.
pub trait Child: Watched + Cached {}

impl<K: Watched + Cached> Child for K {}

/// Annotations no controller reads from a cache, large ones among them: kubectl's copy of the
/// whole object it last applied, and the fields the conversion webhook carries across versions.
const UNREAD_ANNOTATIONS: [&str; 4] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    prism_api::names::annotations::V1BETA1_FIELDS,
    prism_api::names::annotations::V1ALPHA1_FIELDS,
    prism_api::names::annotations::V1ALPHA2_FIELDS,
];

/// A kind as the controllers cache it.
pub trait Cached: Resource + Serialize + Sized {
    /// What a cache holds of each object: a [`Record`] for children, the object for kinds kept
    /// whole.
    type Stored: Stored<Self>;

    /// Drops what the controllers never read of this kind (kept whole unless a kind says so).
    /// Only a kind stored as a [`Record`] may drop content: a kind kept whole is hashed from its
    /// cached copy.
    fn trim(&mut self) {}
}

/// Trims `object` for a cache: see the module's documentation.
pub fn project<K: Cached>(object: &mut K) {
    // A kind kept whole hashes the same from its cached copy: no annotation needed (a custom
    // resource with none then keeps no annotation map at all). Hashing costs a serialization of
    // the whole object, on every watch event.
    let whole = <K::Stored as Stored<K>>::WHOLE;
    let content = (!whole).then(|| content_hash(object));
    let replicas_by = replicas_applied_by(object.meta());
    object.trim();
    let meta = object.meta_mut();
    meta.managed_fields = None;
    let mut annotations = meta.annotations.take().unwrap_or_default();
    annotations.retain(|key, _| !UNREAD_ANNOTATIONS.contains(&key.as_str()));
    if let Some(content) = content {
        annotations.insert(CONTENT_HASH.into(), content);
    }
    if !replicas_by.is_empty() {
        annotations.insert(REPLICAS_APPLIED_BY.into(), replicas_by.join(","));
    }
    // A record keeps its annotations as compact text already, and shares its labels with its
    // siblings: only a kind kept whole moves the hash.
    if whole
        && let Some(labels) = meta.labels.as_mut().filter(|labels| !labels.is_empty())
        && let Some(hash) = annotations.remove(APPLIED_HASH)
    {
        labels.insert(APPLIED_HASH_LABEL.into(), hash);
    }
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
}

/// The hash of the desired state the operator last applied to an object, from the object or its
/// cached copy.
pub fn applied_hash(meta: &ObjectMeta) -> Option<&str> {
    let annotation = meta.annotations.as_ref().and_then(|a| a.get(APPLIED_HASH));
    annotation.or_else(|| meta.labels.as_ref()?.get(APPLIED_HASH_LABEL)).map(String::as_str)
}

/// The hash of an object's content as the server holds it (all but its metadata, its status and
/// its replicas, which an autoscaler moves and the no-op check compares by value), from its
/// cached copy or computed from the object itself.
pub fn content_hash<K: Serialize + Resource>(object: &K) -> String {
    if let Some(hash) = object.meta().annotations.as_ref().and_then(|a| a.get(CONTENT_HASH)) {
        return hash.clone();
    }
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(fields) = value.as_object_mut() {
        for outside in ["metadata", "status", "apiVersion", "kind"] {
            fields.remove(outside);
        }
    }
    if let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("replicas");
    }
    hash::of(&value)
}

/// What the no-op check compares by value, of a cached copy or a whole object: its metadata and
/// its replicas.
pub fn compared<K: Serialize>(object: &K) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    let hash = value["metadata"]["labels"].as_object_mut().and_then(|labels| labels.remove(APPLIED_HASH_LABEL));
    if let Some(hash) = hash {
        value["metadata"]["annotations"][APPLIED_HASH] = hash;
    }
    let mut compared = serde_json::json!({"metadata": value["metadata"]});
    if let Some(replicas) = value["spec"].get("replicas") {
        compared["spec"] = serde_json::json!({"replicas": replicas});
    }
    compared
}

/// Whether `manager` applied the object's `spec.replicas`, from its cached copy or its
/// managedFields.
pub fn applied_replicas(meta: &ObjectMeta, manager: &str) -> bool {
    match meta.annotations.as_ref().and_then(|a| a.get(REPLICAS_APPLIED_BY)) {
        Some(managers) => managers.split(',').any(|m| m == manager),
        None => replicas_applied_by(meta).iter().any(|m| m == manager),
    }
}

fn replicas_applied_by(meta: &ObjectMeta) -> Vec<String> {
    let owns_replicas = |fields: &Value| fields.get("f:spec").and_then(|spec| spec.get("f:replicas")).is_some();
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.operation.as_deref() == Some("Apply"))
        .filter(|entry| entry.fields_v1.as_ref().is_some_and(|f| owns_replicas(&f.0)))
        .filter_map(|entry| entry.manager.clone())
        .collect()
}

impl Cached for Deployment {
    type Stored = Record<Self>;

    fn trim(&mut self) {
        let replicas = self.spec.as_ref().and_then(|s| s.replicas);
        self.spec = Some(DeploymentSpec { replicas, ..DeploymentSpec::default() });
        // Readiness reads a condition's type, status and reason (a stalled rollout), not its
        // message nor its times.
        let conditions = self.status.as_mut().and_then(|s| s.conditions.as_mut());
        for condition in conditions.into_iter().flatten() {
            (condition.message, condition.last_update_time, condition.last_transition_time) = (None, None, None);
        }
    }
}

impl Cached for StatefulSet {
    type Stored = Record<Self>;

    fn trim(&mut self) {
        let replicas = self.spec.as_ref().and_then(|s| s.replicas);
        self.spec = Some(StatefulSetSpec { replicas, ..StatefulSetSpec::default() });
        if let Some(status) = self.status.as_mut() {
            status.conditions = None;
        }
    }
}

impl Cached for ConfigMap {
    type Stored = Record<Self>;

    fn trim(&mut self) {
        let routes = self
            .data
            .take()
            .filter(|_| is_proxy_config(&self.metadata))
            .and_then(|mut data| data.remove_entry(naming::PROXY_ROUTES_KEY));
        self.data = routes.map(|entry| BTreeMap::from([entry]));
        self.binary_data = None;
    }
}

/// Whether a ConfigMap is a proxy's config (its routes): by its component label.
fn is_proxy_config(meta: &ObjectMeta) -> bool {
    meta.labels.as_ref().and_then(|l| l.get(labels::COMPONENT)).is_some_and(|c| c == naming::PROXY_COMPONENT)
}

/// Kept with its data: credentials are read back from their Secrets.
impl Cached for Secret {
    type Stored = Record<Self>;
}

/// The children whose content and status no controller reads: their metadata is what counts.
macro_rules! cached_metadata_only {
    ($($kind:ty),*) => {$(
        impl Cached for $kind {
            type Stored = Record<Self>;

            fn trim(&mut self) {
                (self.spec, self.status) = (None, None);
            }
        }
    )*};
}

cached_metadata_only!(Service, PodDisruptionBudget, HorizontalPodAutoscaler, Ingress, PersistentVolumeClaim);

/// Custom resources are kept whole: their specs are read (routes, validation, readiness) and
/// their statuses are what the next status is computed from.
impl Cached for PrismCluster {
    type Stored = Self;
}

impl Cached for PrismNamespace {
    type Stored = Self;
}

impl Cached for PrismPattern {
    type Stored = Self;
}

/// Kubernetes namespaces are watched as metadata already (their labels admit tenants).
impl Cached for PartialObjectMeta<k8s_openapi::api::core::v1::Namespace> {
    type Stored = Self;
}

/// Kinds known only at run time are watched as metadata already.
impl Cached for PartialObjectMeta<DynamicObject> {
    type Stored = Self;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
    use serde_json::json;

    use super::*;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}, "managedFields": [
                {"manager": "prism-operator/cluster", "operation": "Apply",
                 "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}},
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            ]},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 3, "availableReplicas": 2}
        }))
        .expect("deployment")
    }

    #[test]
    fn a_cached_workload_keeps_replicas_status_and_what_the_checks_need() {
        let full = deployment();
        let mut cached = full.clone();
        project(&mut cached);
        assert_eq!(cached.metadata.managed_fields, None);
        assert_eq!(cached.spec.as_ref().and_then(|s| s.replicas), Some(3));
        assert!(cached.spec.as_ref().is_some_and(|s| s.template.spec.is_none()), "the template is dropped");
        assert_eq!(cached.status.as_ref().and_then(|s| s.available_replicas), Some(2));
        assert_eq!(cached.metadata.labels, full.metadata.labels);
        assert_eq!(content_hash(&cached), content_hash(&full), "the content hash survives the trim");
        assert!(applied_replicas(&cached.metadata, "prism-operator/cluster"));
        assert!(!applied_replicas(&cached.metadata, "kubectl"), "only an Apply owns them for the hand-over");
        assert!(applied_replicas(&full.metadata, "prism-operator/cluster"), "read from managedFields too");
    }

    #[test]
    fn the_content_hash_sees_spec_edits_but_not_status_metadata_or_replicas() {
        let base = deployment();
        let mut status_only = base.clone();
        status_only.status.get_or_insert_default().available_replicas = Some(3);
        status_only.metadata.resource_version = Some("9".into());
        assert_eq!(content_hash(&status_only), content_hash(&base));
        let mut scaled = base.clone();
        scaled.spec.get_or_insert_default().replicas = Some(4);
        assert_eq!(content_hash(&scaled), content_hash(&base), "replicas are compared by value, not hashed");
        let mut edited = base.clone();
        edited.spec.get_or_insert_default().min_ready_seconds = Some(5);
        assert_ne!(content_hash(&edited), content_hash(&base));
    }

    #[test]
    fn a_cached_config_map_keeps_no_data() {
        let mut config: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "c"}, "data": {"routes.json": "{}"}
        }))
        .expect("config map");
        config.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            fields_v1: Some(FieldsV1(json!({"f:data": {}}))),
            ..ManagedFieldsEntry::default()
        }]);
        let hash = content_hash(&config);
        project(&mut config);
        assert_eq!((&config.data, &config.metadata.managed_fields), (&None, &None));
        assert_eq!(content_hash(&config), hash);
    }

    #[test]
    fn a_cached_proxy_config_keeps_its_routes_and_nothing_else() {
        let mut config: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "prod-proxy-config", "labels": {"app.kubernetes.io/component": "proxy"}},
            "data": {"routes.json": "{\"cluster\": \"prod\"}", "other": "x"}
        }))
        .expect("config map");
        let hash = content_hash(&config);
        project(&mut config);
        let kept = BTreeMap::from([("routes.json".to_string(), "{\"cluster\": \"prod\"}".to_string())]);
        assert_eq!(config.data, Some(kept));
        assert_eq!(content_hash(&config), hash, "the no-op check still compares the whole content");
    }

    #[test]
    fn a_custom_resource_is_kept_whole_without_the_annotations_no_controller_reads() {
        let mut cluster: PrismCluster = serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
            "metadata": {"name": "prod", "namespace": "prism", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\": {}}",
                "prism.io/v1alpha1-fields": "{}"
            }},
            "spec": {"proxy": {"replicas": 3}}
        }))
        .expect("cluster");
        let (spec, hash) = (cluster.spec.clone(), content_hash(&cluster));
        project(&mut cluster);
        assert_eq!(cluster.metadata.annotations, None, "no content hash either: it is computed from the copy");
        assert_eq!((content_hash(&cluster), cluster.spec), (hash, spec));
    }

    #[test]
    fn a_child_custom_resource_keeps_its_applied_hash_among_its_labels() {
        let full: PrismPattern = serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismPattern",
            "metadata": {"name": "prod-keyvalue", "namespace": "prism",
                         "labels": {"prism.io/cluster": "prod"},
                         "annotations": {"prism.io/applied-hash": "0123456789abcdef"}},
            "spec": {"cluster": "prod", "type": "keyvalue"}
        }))
        .expect("pattern");
        let mut cached = full.clone();
        project(&mut cached);
        assert_eq!(cached.metadata.annotations, None, "no map kept for one entry");
        assert_eq!(applied_hash(&cached.metadata), Some("0123456789abcdef"));
        assert_eq!(applied_hash(&full.metadata), Some("0123456789abcdef"));
        assert_eq!(compared(&cached), compared(&full), "the no-op check sees the copy as the object");
    }

    #[test]
    fn a_cached_secret_keeps_its_data_and_the_hash_of_it() {
        let full: Secret = serde_json::from_value(json!({
            "metadata": {"name": "prod-redis-auth"}, "data": {"password": "c2VjcmV0"}
        }))
        .expect("secret");
        let mut cached = full.clone();
        project(&mut cached);
        assert_eq!(cached.data, full.data, "credentials are read back");
        assert_eq!(content_hash(&cached), content_hash(&full));
    }

    #[test]
    fn children_keep_only_the_status_readiness_reads() {
        let mut service: Service = serde_json::from_value(json!({
            "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}, "status": {"loadBalancer": {}}
        }))
        .expect("service");
        project(&mut service);
        assert_eq!((&service.spec, &service.status), (&None, &None));

        let mut stalled = deployment();
        stalled.status.get_or_insert_default().conditions = Some(vec![
            serde_json::from_value(json!({
                "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"p-1\" has timed out progressing.", "lastUpdateTime": "2026-12-02T10:00:00Z"
            }))
            .expect("condition"),
        ]);
        project(&mut stalled);
        let kept = json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"});
        assert_eq!(serde_json::to_value(stalled.status.and_then(|s| s.conditions)).expect("json"), json!([kept]));
    }
}
