//! A container's compute resources, held compactly.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceClaim, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A container's compute resources: a `ResourceRequirements` in schema and JSON, held as sorted
/// slices rather than B-trees. The caches keep every custom resource whole, and the first node of
/// a B-tree (about half a kilobyte, for a map of one or two quantities) made resource
/// requirements the biggest part of a cached PrismCluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    requests: Option<Box<[(String, Quantity)]>>,
    limits: Option<Box<[(String, Quantity)]>>,
    claims: Option<Box<[ResourceClaim]>>,
}

impl Resources {
    /// The resources as a container spec takes them.
    pub fn requirements(&self) -> ResourceRequirements {
        let map = |list: &Option<Box<[(String, Quantity)]>>| list.as_deref().map(|l| l.iter().cloned().collect());
        ResourceRequirements {
            requests: map(&self.requests),
            limits: map(&self.limits),
            claims: self.claims.as_deref().map(<[ResourceClaim]>::to_vec),
        }
    }
}

impl From<ResourceRequirements> for Resources {
    fn from(requirements: ResourceRequirements) -> Self {
        let slice = |map: Option<BTreeMap<String, Quantity>>| map.map(|m| m.into_iter().collect());
        Resources {
            requests: slice(requirements.requests),
            limits: slice(requirements.limits),
            claims: requirements.claims.map(Vec::into_boxed_slice),
        }
    }
}

impl From<&Resources> for ResourceRequirements {
    fn from(resources: &Resources) -> Self {
        resources.requirements()
    }
}

impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.requirements().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ResourceRequirements::deserialize(deserializer).map(Resources::from)
    }
}

impl JsonSchema for Resources {
    fn schema_name() -> Cow<'static, str> {
        ResourceRequirements::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        ResourceRequirements::schema_id()
    }

    fn inline_schema() -> bool {
        ResourceRequirements::inline_schema()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        ResourceRequirements::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resources_read_and_write_as_resource_requirements() {
        let written = json!({"requests": {"memory": "64Mi", "cpu": "100m"}, "limits": {}, "claims": [{"name": "gpu"}]});
        let resources: Resources = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(serde_json::to_value(&resources).unwrap(), written);
        let requirements: ResourceRequirements = serde_json::from_value(written).unwrap();
        assert_eq!(resources.requirements(), requirements);
        assert_eq!(Resources::from(requirements), resources);
        let unset: Resources = serde_json::from_value(json!({})).unwrap();
        assert_eq!(serde_json::to_value(&unset).unwrap(), json!({}));
    }

    #[test]
    fn the_schema_is_that_of_resource_requirements() {
        let ours = schemars::SchemaGenerator::default().into_root_schema_for::<Resources>();
        let theirs = schemars::SchemaGenerator::default().into_root_schema_for::<ResourceRequirements>();
        assert_eq!(ours, theirs);
    }
}
