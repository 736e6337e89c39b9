//! Conversion between the served versions of each kind, through v1beta1 (the hub): pure
//! functions, lossless both ways.
//!
//! Each kind has a pair of *lossy* mappings between its older version and v1beta1 ([`cluster`],
//! [`namespace`], [`pattern`]); [`lossless`] makes them lossless as Kubernetes does it for its
//! own types: what the target version has no place for is kept in an annotation of the converted
//! object (`prism.io/v1beta1-fields` on an older version, `prism.io/<older>-fields` on v1beta1), as
//! a [`Delta`] from what the lossy mapping would restore to what the object really held, and
//! taken back when the object converts again. A field the older version *can* express always
//! follows the older object, so that an edit made through the older version is never undone by
//! a stale annotation.

pub mod cluster;
pub mod delta;
pub mod namespace;
pub mod pattern;

use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use delta::Delta;

use crate::names::{GROUP, annotations};

/// Why an object could not be converted; the message is what the API server shows the user.
#[derive(thiserror::Error, Debug)]
pub enum ConversionError {
    #[error("kind {kind:?} of {api_version} is not a kind of {GROUP} this operator converts")]
    UnknownKind { api_version: String, kind: String },
    #[error("{kind} is not served at {api_version}; its versions are {served}")]
    UnknownVersion { kind: String, api_version: String, served: String },
    #[error("{api_version} {kind} {name:?} is not valid at that version: {source}")]
    Invalid { api_version: String, kind: String, name: String, source: serde_json::Error },
    #[error("annotation {annotation} of {name:?} is not a conversion delta: {source}")]
    BadAnnotation { annotation: String, name: String, source: serde_json::Error },
    #[error("{kind} {name:?} could not be written as JSON: {source}")]
    Serialize { kind: String, name: String, source: serde_json::Error },
}

/// The versions a kind is served at, oldest first; the last is the hub.
pub fn served_versions(kind: &str) -> Option<[&'static str; 2]> {
    match kind {
        "PrismCluster" | "PrismPattern" => Some(["v1alpha1", crate::STORAGE_VERSION]),
        "PrismNamespace" => Some(["v1alpha2", crate::STORAGE_VERSION]),
        _ => None,
    }
}

/// Converts one object to `desired_api_version` (e.g. `prism.io/v1alpha1`).
pub fn convert(object: &Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let versions = served_versions(&kind)
        .ok_or_else(|| ConversionError::UnknownKind { api_version: api_version.clone(), kind: kind.clone() })?;
    let version_of = |api_version: &str| {
        api_version
            .strip_prefix(GROUP)
            .and_then(|v| v.strip_prefix('/'))
            .filter(|v| versions.contains(v))
            .map(str::to_string)
            .ok_or_else(|| ConversionError::UnknownVersion {
                kind: kind.clone(),
                api_version: api_version.to_string(),
                served: versions.map(|v| format!("{GROUP}/{v}")).join(", "),
            })
    };
    let (from, to) = (version_of(&api_version)?, version_of(desired_api_version)?);
    if from == to {
        return Ok(object.clone());
    }
    let up = from != crate::STORAGE_VERSION;
    match (kind.as_str(), up) {
        ("PrismCluster", true) => json(&lossless(&typed(object)?, &cluster::PAIR.up())?),
        ("PrismCluster", false) => json(&lossless(&typed(object)?, &cluster::PAIR.down())?),
        ("PrismNamespace", true) => json(&lossless(&typed(object)?, &namespace::PAIR.up())?),
        ("PrismNamespace", false) => json(&lossless(&typed(object)?, &namespace::PAIR.down())?),
        ("PrismPattern", true) => json(&lossless(&typed(object)?, &pattern::PAIR.up())?),
        _ => json(&lossless(&typed(object)?, &pattern::PAIR.down())?),
    }
}

/// A kind's lossy mappings between an older version and the hub.
pub struct Pair<Old, Hub> {
    pub to_hub: fn(&Old) -> Hub,
    pub to_old: fn(&Hub) -> Old,
    /// The annotation on a hub object holding the older version's fields.
    pub old_fields: &'static str,
}

/// One direction of a [`Pair`]: `forward` converts, `backward` is the reverse lossy mapping;
/// `carried` is the annotation of the source holding fields of the target, `left` the one of the
/// target that will hold what the target has no place for.
pub struct Direction<F, T> {
    pub forward: fn(&F) -> T,
    pub backward: fn(&T) -> F,
    pub carried: &'static str,
    pub left: &'static str,
}

impl<Old, Hub> Pair<Old, Hub> {
    pub fn up(&self) -> Direction<Old, Hub> {
        Direction {
            forward: self.to_hub,
            backward: self.to_old,
            carried: annotations::V1BETA1_FIELDS,
            left: self.old_fields,
        }
    }

    pub fn down(&self) -> Direction<Hub, Old> {
        Direction {
            forward: self.to_old,
            backward: self.to_hub,
            carried: self.old_fields,
            left: annotations::V1BETA1_FIELDS,
        }
    }
}

/// Converts `from` losslessly in one direction (see the module's documentation).
pub fn lossless<F, T>(from: &F, direction: &Direction<F, T>) -> Result<T, ConversionError>
where
    F: Resource<DynamicType = ()> + Serialize + Clone,
    T: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    let mut from = from.clone();
    let name = from.meta().name.clone().unwrap_or_default();
    let carried = take_annotation(&mut from, direction.carried);
    take_annotation(&mut from, direction.left);
    let carried: Option<Delta> = carried.map(|text| serde_json::from_str(&text)).transpose().map_err(|source| {
        ConversionError::BadAnnotation { annotation: direction.carried.into(), name: name.clone(), source }
    })?;
    let mut to = (direction.forward)(&from);
    if let Some(delta) = carried {
        // What the source version sees of the object must not change: its fields win.
        let baseline = body(&(direction.backward)(&to))?;
        to = take_delta(to, &delta, |candidate| {
            body(&(direction.backward)(candidate)).ok().as_ref() == Some(&baseline)
        })?;
    }
    let left = Delta::between(&body(&(direction.backward)(&to))?, &body(&from)?);
    if !left.is_empty() {
        let text = serde_json::to_string(&left).map_err(|source| serialize_error::<F>(&name, source))?;
        to.meta_mut().annotations.get_or_insert_default().insert(direction.left.to_string(), text);
    }
    Ok(to)
}

/// `to` with as much of `delta` as `accept` allows: all of it, else group by group, else write by
/// write.
fn take_delta<T>(to: T, delta: &Delta, accept: impl Fn(&T) -> bool) -> Result<T, ConversionError>
where
    T: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    let name = to.meta().name.clone().unwrap_or_default();
    let mut current = serde_json::to_value(&to).map_err(|source| serialize_error::<T>(&name, source))?;
    let attempt = |doc: &Value, part: &Delta| {
        let mut candidate = doc.clone();
        part.apply(&mut candidate);
        let typed: T = serde_json::from_value(candidate.clone()).ok()?;
        accept(&typed).then_some(candidate)
    };
    if let Some(all) = attempt(&current, delta) {
        current = all;
    } else {
        for group in delta.groups() {
            if let Some(next) = attempt(&current, &group) {
                current = next;
                continue;
            }
            for single in group.singles() {
                if let Some(next) = attempt(&current, &single) {
                    current = next;
                }
            }
        }
    }
    serde_json::from_value(current).map_err(|source| serialize_error::<T>(&name, source))
}

fn take_annotation<K: Resource>(object: &mut K, key: &str) -> Option<String> {
    let annotations = object.meta_mut().annotations.as_mut()?;
    let value = annotations.remove(key);
    if annotations.is_empty() {
        object.meta_mut().annotations = None;
    }
    value
}

/// The object without its identity (apiVersion, kind, metadata): what conversion maps.
fn body<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> Result<Value, ConversionError> {
    let name = object.meta().name.clone().unwrap_or_default();
    let mut value = serde_json::to_value(object).map_err(|source| serialize_error::<K>(&name, source))?;
    if let Value::Object(map) = &mut value {
        for key in ["apiVersion", "kind", "metadata"] {
            map.remove(key);
        }
    }
    Ok(value)
}

fn typed<K: Resource<DynamicType = ()> + DeserializeOwned>(object: &Value) -> Result<K, ConversionError> {
    serde_json::from_value(object.clone()).map_err(|source| ConversionError::Invalid {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: object["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        source,
    })
}

fn json<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> Result<Value, ConversionError> {
    serde_json::to_value(object)
        .map_err(|source| serialize_error::<K>(object.meta().name.as_deref().unwrap_or_default(), source))
}

fn serialize_error<K: Resource<DynamicType = ()>>(name: &str, source: serde_json::Error) -> ConversionError {
    ConversionError::Serialize { kind: K::kind(&()).into_owned(), name: name.to_string(), source }
}
