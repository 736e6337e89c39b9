//! Generated credentials of the backends. Generated once and then only ever read back: a
//! regenerated password would cut the runners off from their data.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rand::distr::{Alphanumeric, SampleString};

use super::Credentials;
use crate::cluster::validate::ValidatedCluster;
use crate::{backends, meta, naming};

/// Fixed user names: predictable, and nothing secret about them.
const USERNAME: &str = "prism";

/// `existing` with every missing key of a backend's secret generated: 32 random alphanumerics
/// from the operating system's generator.
pub fn complete_credentials(cluster: &ValidatedCluster, mut existing: Credentials) -> Credentials {
    for (kind, _) in cluster.spec.backends.enabled() {
        let Some(facts) = backends::facts(kind) else { continue };
        if facts.secret_keys.is_empty() {
            continue;
        }
        let values = existing.entry(kind).or_default();
        for key in facts.secret_keys {
            values.entry((*key).to_string()).or_insert_with(|| match *key {
                "username" => USERNAME.to_string(),
                _ => Alphanumeric.sample_string(&mut rand::rng(), 32),
            });
        }
    }
    existing
}

pub fn build(cluster: &ValidatedCluster, credentials: &Credentials, owner: Option<&OwnerReference>) -> Vec<Secret> {
    cluster
        .spec
        .backends
        .enabled()
        .filter_map(|(kind, _)| {
            let values = credentials.get(&kind)?;
            let mut labels = meta::component_labels(&cluster.name, kind.as_str());
            labels.insert(prism_api::names::labels::BACKEND.into(), kind.as_str().into());
            let mut metadata =
                meta::object(&naming::backend_secret(&cluster.name, kind), &cluster.namespace, labels, owner);
            metadata.finalizers = Some(vec![prism_api::names::finalizers::CREDENTIALS.to_string()]);
            Some(Secret {
                metadata,
                data: Some(
                    values
                        .iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                        .collect::<BTreeMap<_, _>>(),
                ),
                type_: Some("Opaque".into()),
                ..Secret::default()
            })
        })
        .collect()
}
