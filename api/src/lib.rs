//! The custom resources of the Prism operator (API group `prism.io`): types, names, schema rules
//! and the conversions between versions, no I/O. One module per API version; v1beta1 is the hub
//! every other version converts to and from (see docs/api-versions.md).

pub mod common;
pub mod conversion;
pub mod names;
pub mod v1alpha1;
pub mod v1alpha2;
pub mod v1beta1;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The version every kind is stored at, and the only one the controllers read and write.
pub const STORAGE_VERSION: &str = "v1beta1";

/// The CustomResourceDefinitions of every kind, in install order, each serving its older version
/// and v1beta1 (storage). Conversion is `None` here: the operator switches it to its webhook
/// (with the CA bundle) when it starts, because only it knows the Service that serves it.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        with_older_versions(v1beta1::PrismCluster::crd(), [v1alpha1::PrismCluster::crd()]),
        with_older_versions(v1beta1::PrismNamespace::crd(), [v1alpha2::PrismNamespace::crd()]),
        with_older_versions(v1beta1::PrismPattern::crd(), [v1alpha1::PrismPattern::crd()]),
    ]
}

/// What a request at an older, deprecated version is told (by the API server, from the CRD, and
/// by the validating webhook on writes: kubectl prints identical warnings once).
pub fn deprecation_warning(kind: &str, older: &str) -> String {
    format!("{}/{older} {kind} is deprecated; use {}/{STORAGE_VERSION}", names::GROUP, names::GROUP)
}

/// The storage version's CRD with the versions of the older ones placed before it (served, not
/// stored). kube's `merge_crds` does the same but returns errors that these fixed types cannot
/// produce.
fn with_older_versions<const N: usize>(
    mut storage: CustomResourceDefinition,
    older: [CustomResourceDefinition; N],
) -> CustomResourceDefinition {
    let mut versions: Vec<_> = older
        .into_iter()
        .flat_map(|crd| crd.spec.versions)
        .map(|mut v| {
            v.storage = false;
            v.deprecated = Some(true);
            v.deprecation_warning = Some(deprecation_warning(&storage.spec.names.kind, &v.name));
            v
        })
        .collect();
    versions.append(&mut storage.spec.versions);
    storage.spec.versions = versions;
    storage
}
