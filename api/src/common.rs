//! What every API version shares: Prism's vocabulary (pattern types, backends, namespace
//! settings) and Kubernetes shapes (images, storage, pod overrides, conditions). Version modules
//! import from here and from nowhere else in the crate, so that each version stands alone.

mod cluster;
mod namespace;
mod prism;
mod resources;
mod runner;

pub use cluster::*;
pub use namespace::*;
pub use prism::*;
pub use resources::Resources;
pub use runner::*;

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{LocalObjectReference, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Where a component's container image comes from. Every field is optional: what is not set keeps
/// the operator's default for that component.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Registry host, e.g. `ghcr.io` or `registry.example.com:5000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub registry: Option<String>,
    /// Repository within the registry, e.g. `prism/prism-proxy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub repository: Option<String>,
    /// Image tag. For a backend it overrides `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))]
    pub tag: Option<String>,
    /// Image pull policy of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// Secrets used to pull the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// Image pull policy, as in a Pod's container.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// What every component the operator runs accepts: its container's resources and image, and pod
/// template overrides. Flattened into the admin, the proxy and the backing services (v1beta1).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Compute resources of the component's main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Image of the component; the operator's default where unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// Pod template fields merged over what the operator builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_overrides: Option<PodOverrides>,
}

/// A persistent volume for a component's data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// Size of the volume, e.g. `1Gi`.
    pub size: Quantity,
    /// Storage class of the volume claim; the cluster's default class when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// A PodTemplateSpec merged over the pod template the operator builds for a component (strategic
/// merge: containers by name, env by name, and so on). For what no typed field covers.
///
/// The schema preserves unknown fields instead of embedding the whole PodTemplateSpec schema: that
/// schema is hundreds of kilobytes, once per component, which would push the CRD past what
/// client-side `kubectl apply` can store. The operator parses it when it validates the spec and
/// reports a malformed override in a condition that names the field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct PodOverrides(pub serde_json::Map<String, serde_json::Value>);

impl PodOverrides {
    /// The override as a typed PodTemplateSpec.
    pub fn template(&self) -> Result<PodTemplateSpec, serde_json::Error> {
        serde_json::from_value(serde_json::Value::Object(self.0.clone()))
    }
}

impl JsonSchema for PodOverrides {
    fn schema_name() -> Cow<'static, str> {
        "PodOverrides".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A PodTemplateSpec merged over the pod template the operator builds (strategic merge: containers and env by name).",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

/// Marks a `conditions` list as a list-map keyed by `type`, as metav1.Condition lists are, so that
/// server-side apply merges conditions by type.
pub(crate) fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}
