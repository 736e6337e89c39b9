//! The OpenAPI documents of the API, as kubectl reads them (`kubectl explain`, client-side apply):
//! `/openapi/v3` (one document per group version, each holding the schemas of its kinds and all
//! they refer to) and `/openapi/v2` (one document with every schema, in JSON or in protobuf).
//!
//! Built-in kinds take their schemas from k8s-openapi (the Kubernetes 1.33 definitions, with
//! their descriptions), annotated with the list and map semantics of the strategic merge patch
//! and server-side apply table (`patch::merge_keys`) as the real server publishes them; every
//! served version of a CRD takes its `openAPIV3Schema`, with `metadata` as ObjectMeta.

pub mod protobuf;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::patch::merge_keys::{self, Shape};
use crate::registry::{Registry, ResourceType};

const V3_REFS: &str = "#/components/schemas/";
const V2_REFS: &str = "#/definitions/";

/// The schemas of the built-in kinds, generated once.
struct BuiltIns {
    /// Every definition, by its Kubernetes name (`io.k8s.api.apps.v1.Deployment`).
    definitions: Map<String, Value>,
    /// (group, version, kind) -> the definition of the kind.
    kinds: Vec<(&'static str, &'static str, &'static str, String)>,
}

fn built_ins() -> &'static BuiltIns {
    static BUILT_INS: OnceLock<BuiltIns> = OnceLock::new();
    BUILT_INS.get_or_init(generate_built_ins)
}

/// Registers the schema of `K` (and of everything it refers to) and names its kind.
fn kind<K>(generator: &mut SchemaGenerator) -> (&'static str, &'static str, &'static str, String)
where
    K: schemars::JsonSchema + k8s_openapi::Resource,
{
    generator.subschema_for::<K>();
    (K::GROUP, K::VERSION, K::KIND, K::schema_name().into_owned())
}

fn generate_built_ins() -> BuiltIns {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let g = &mut generator;
    let kinds = vec![
        kind::<api::core::v1::Namespace>(g),
        kind::<api::core::v1::ConfigMap>(g),
        kind::<api::core::v1::Secret>(g),
        kind::<api::core::v1::Service>(g),
        kind::<api::core::v1::ServiceAccount>(g),
        kind::<api::core::v1::Pod>(g),
        kind::<api::core::v1::Event>(g),
        kind::<api::core::v1::PersistentVolumeClaim>(g),
        kind::<api::core::v1::Endpoints>(g),
        kind::<api::core::v1::PersistentVolume>(g),
        kind::<api::core::v1::Node>(g),
        kind::<api::core::v1::ResourceQuota>(g),
        kind::<api::core::v1::LimitRange>(g),
        kind::<api::core::v1::ReplicationController>(g),
        kind::<api::discovery::v1::EndpointSlice>(g),
        kind::<api::apps::v1::ControllerRevision>(g),
        kind::<api::apps::v1::Deployment>(g),
        kind::<api::apps::v1::StatefulSet>(g),
        kind::<api::apps::v1::ReplicaSet>(g),
        kind::<api::apps::v1::DaemonSet>(g),
        kind::<api::batch::v1::CronJob>(g),
        kind::<api::batch::v1::Job>(g),
        kind::<api::storage::v1::StorageClass>(g),
        kind::<api::scheduling::v1::PriorityClass>(g),
        kind::<api::networking::v1::IngressClass>(g),
        kind::<api::networking::v1::Ingress>(g),
        kind::<api::networking::v1::NetworkPolicy>(g),
        kind::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(g),
        kind::<api::admissionregistration::v1::MutatingWebhookConfiguration>(g),
        kind::<api::events::v1::Event>(g),
        kind::<api::autoscaling::v2::HorizontalPodAutoscaler>(g),
        kind::<api::policy::v1::PodDisruptionBudget>(g),
        kind::<api::coordination::v1::Lease>(g),
        kind::<api::rbac::v1::Role>(g),
        kind::<api::rbac::v1::RoleBinding>(g),
        kind::<api::rbac::v1::ClusterRole>(g),
        kind::<api::rbac::v1::ClusterRoleBinding>(g),
        kind::<apiextensions::CustomResourceDefinition>(g),
        kind::<api::authorization::v1::SelfSubjectAccessReview>(g),
        kind::<api::authorization::v1::SubjectAccessReview>(g),
        kind::<api::authorization::v1::LocalSubjectAccessReview>(g),
        kind::<api::authorization::v1::SelfSubjectRulesReview>(g),
        kind::<api::authentication::v1::TokenReview>(g),
        kind::<api::authentication::v1::SelfSubjectReview>(g),
        kind::<api::authentication::v1::TokenRequest>(g),
        kind::<api::autoscaling::v1::Scale>(g),
    ];
    let mut definitions = generator.take_definitions(true);
    for (group, version, kind, name) in &kinds {
        if let Some(schema) = definitions.get_mut(name) {
            schema["x-kubernetes-group-version-kind"] = json!([{"group": group, "kind": kind, "version": version}]);
        }
    }
    for (name, schema) in definitions.iter_mut() {
        annotate(go_type(name), schema);
    }
    BuiltIns { definitions, kinds }
}

/// `io.k8s.api.core.v1.PodSpec` -> `PodSpec`, as the merge table names Go types.
fn go_type(definition: &str) -> &str {
    definition.rsplit('.').next().unwrap_or(definition)
}

/// The list and map semantics of the Go type's fields, as `x-kubernetes-*` extensions.
fn annotate(go_type: &str, schema: &mut Value) {
    if merge_keys::ATOMIC_TYPES.contains(&go_type) {
        schema["x-kubernetes-map-type"] = json!("atomic");
    }
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { return };
    for row in merge_keys::FIELDS.iter().filter(|r| r.owner == go_type) {
        let Some(field) = properties.get_mut(row.field).and_then(Value::as_object_mut) else { continue };
        let extensions = match row.shape {
            Shape::Object => json!({}),
            Shape::AtomicObject => json!({"x-kubernetes-map-type": "atomic"}),
            Shape::SetList => json!({"x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"}),
            Shape::AtomicList => json!({"x-kubernetes-list-type": "atomic"}),
            Shape::KeyedList { smp_key, ssa_keys } => {
                let mut e = json!({"x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": smp_key});
                match ssa_keys {
                    Some(keys) => {
                        e["x-kubernetes-list-type"] = json!("map");
                        e["x-kubernetes-list-map-keys"] = json!(keys.iter().map(|(k, _)| *k).collect::<Vec<_>>());
                    }
                    None => e["x-kubernetes-list-type"] = json!("atomic"),
                }
                e
            }
        };
        if let Value::Object(extensions) = extensions {
            field.extend(extensions);
        }
    }
}

/// The definition name of a CRD version's kind: `io.prism.v1alpha1.PrismCluster`.
fn crd_definition_name(rt: &ResourceType, version: &str) -> String {
    let reversed: Vec<&str> = rt.group.split('.').rev().collect();
    format!("{}.{version}.{}", reversed.join("."), rt.kind)
}

/// A CRD version's schema as the real server publishes it: the version's `openAPIV3Schema` with
/// the standard apiVersion, kind and ObjectMeta metadata, tagged with its kind.
fn crd_definition(rt: &ResourceType, version: &str) -> Value {
    let mut schema = rt
        .version_info
        .get(version)
        .and_then(|v| v.schema.clone())
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    // apiVersion, kind and metadata as every built-in kind describes them.
    let standard = |field: &str| {
        built_ins()
            .definitions
            .get("io.k8s.api.core.v1.ConfigMap")
            .and_then(|cm| cm.pointer(&format!("/properties/{field}")))
            .cloned()
            .unwrap_or(json!({"type": "string"}))
    };
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]["apiVersion"] = standard("apiVersion");
    schema["properties"]["kind"] = standard("kind");
    schema["properties"]["metadata"] = standard("metadata");
    schema["x-kubernetes-group-version-kind"] = json!([{"group": rt.group, "kind": rt.kind, "version": version}]);
    schema
}

/// The definitions of the kinds served in one group version, by name.
fn kinds_in(reg: &Registry, group: &str, version: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for rt in reg.in_group_version(group, version) {
        if rt.custom {
            out.insert(crd_definition_name(&rt, version), crd_definition(&rt, version));
        } else if let Some((.., name)) =
            built_ins().kinds.iter().find(|(g, v, k, _)| *g == group && *v == version && *k == rt.kind)
            && let Some(schema) = built_ins().definitions.get(name)
        {
            out.insert(name.clone(), schema.clone());
        }
    }
    out
}

/// `definitions` plus every built-in definition they refer to, transitively.
fn with_references(mut definitions: Map<String, Value>) -> Map<String, Value> {
    let mut pending: Vec<String> = definitions.values().flat_map(references).collect();
    let mut seen: BTreeSet<String> = definitions.keys().cloned().collect();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = built_ins().definitions.get(&name) {
            pending.extend(references(schema));
            definitions.insert(name, schema.clone());
        }
    }
    definitions
}

/// The definition names a schema refers to (`$ref`s anywhere in it).
fn references(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![schema];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(V3_REFS)) {
                    out.push(r.to_string());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// `/openapi/v3`: one entry per group version; the hash changes with the registry.
pub fn v3_root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let p = gv_path(&group, &v);
            let url = format!("/openapi/v3/{p}?hash={:016X}", reg.generation);
            paths.insert(p, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/{api/v1|apis/g/v}`: the schemas of the group version's kinds (with all they
/// refer to), and per kind a PATCH operation that accepts `fieldValidation`, which is what makes
/// kubectl leave validation to the server.
pub fn v3_group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = reg.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for rt in types.iter().filter(|rt| !rt.is_review()) {
        let ns = if rt.namespaced { "namespaces/{namespace}/" } else { "" };
        let path = format!("/{}/{ns}{}/{{name}}", gv_path(group, version), rt.plural);
        let op = json!({
            "operationId": format!("patch{}", rt.kind),
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": rt.kind},
            "x-kubernetes-action": "patch",
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": op}));
    }
    let schemas = with_references(kinds_in(reg, group, version));
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v2`: every schema (built-ins and every served CRD version) in one Swagger 2.0
/// document.
pub fn v2(reg: &Registry) -> Value {
    let mut definitions = built_ins().definitions.clone();
    for rt in reg.all().iter().filter(|rt| rt.custom) {
        for version in &rt.versions {
            definitions.insert(crd_definition_name(rt, version), crd_definition(rt, version));
        }
    }
    let mut definitions = Value::Object(definitions);
    to_v2_references(&mut definitions);
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {},
           "definitions": definitions})
}

/// OpenAPI v3 wraps a reference with siblings (a description) as `allOf: [{$ref}]`; v2 writes
/// `$ref` beside them, under `#/definitions/`, as the real server's v2 document does.
fn to_v2_references(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let single = map.get("allOf").and_then(Value::as_array).filter(|all| all.len() == 1).cloned();
            if let Some(reference) = single.and_then(|all| all[0].get("$ref").cloned()) {
                map.remove("allOf");
                map.insert("$ref".into(), reference);
            }
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                *r = r.replace(V3_REFS, V2_REFS);
            }
            map.values_mut().for_each(to_v2_references);
        }
        Value::Array(items) => items.iter_mut().for_each(to_v2_references),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_kind_has_a_schema_tagged_with_its_kind() {
        let reg = Registry::new();
        for rt in reg.all() {
            let doc = v3_group_version(&reg, &rt.group, &rt.storage_version).expect("a document");
            let schemas = doc["components"]["schemas"].as_object().expect("schemas");
            let tagged = schemas.values().any(|s| {
                s["x-kubernetes-group-version-kind"][0]["kind"] == rt.kind.as_str()
                    && s["x-kubernetes-group-version-kind"][0]["group"] == rt.group.as_str()
            });
            assert!(tagged, "{}/{} {}", rt.group, rt.storage_version, rt.kind);
        }
    }

    #[test]
    fn documents_hold_what_their_schemas_refer_to_and_the_merge_semantics() {
        let doc = v3_group_version(&Registry::new(), "apps", "v1").expect("apps/v1");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for schema in schemas.values() {
            for name in references(schema) {
                assert!(schemas.contains_key(&name), "{name} is referred to but missing");
            }
        }
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert_eq!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"], "atomic");
    }
}
