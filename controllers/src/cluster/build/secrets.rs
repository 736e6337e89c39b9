//! The backends' credentials Secrets, from credentials read back or generated at the edge (see
//! `cluster::credentials`).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::Credentials;
use crate::cluster::validate::ValidatedCluster;
use crate::{meta, naming};

/// The credentials Secrets, one per backend that has credentials, each with its protection
/// finalizer.
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
