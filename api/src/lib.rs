//! The custom resources of the Prism operator (API group `prism.io`): types, names, schema rules
//! and the conversions between versions, no I/O. One module per API version; v1beta1 is the hub
//! every other version converts to and from (see docs/api-versions.md).

pub mod common;
pub mod conversion;
pub mod names;
pub mod v1alpha1;
pub mod v1alpha2;
pub mod v1beta1;

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;

/// The version every kind is stored at, and the only one the controllers read and write.
pub const STORAGE_VERSION: &str = "v1beta1";

/// The CustomResourceDefinitions of every kind, in install order, each serving its older version
/// and v1beta1 (storage).
///
/// Their conversion is the operator's webhook at its default Service, without a CA bundle: until
/// an operator has started and put its CA there (and pointed the CRDs at its own Service, if
/// installed elsewhere), every request that needs a conversion fails, so the API server never
/// stores an older version's object as if it were v1beta1. With strategy `None` it would: it
/// only renames the apiVersion and prunes what v1beta1 has no place for, losing those fields for
/// good (a v1alpha1 PrismCluster applied before the operator's first start, or written by the
/// previous release's operator during an upgrade). Requests at v1beta1 need no conversion and
/// work throughout.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        with_older_versions(v1beta1::PrismCluster::crd(), [v1alpha1::PrismCluster::crd()]),
        with_older_versions(v1beta1::PrismNamespace::crd(), [v1alpha2::PrismNamespace::crd()]),
        with_older_versions(v1beta1::PrismPattern::crd(), [v1alpha1::PrismPattern::crd()]),
    ]
    .into_iter()
    .map(|mut crd| {
        let (service, namespace) = (names::webhook::SERVICE, names::webhook::NAMESPACE);
        crd.spec.conversion = Some(webhook_conversion(service, namespace, i32::from(names::webhook::PORT), None));
        crd
    })
    .collect()
}

/// Conversion of a CRD by the operator's webhook at `service` in `namespace`, trusting the PEM
/// `ca_bundle` (`None`: nothing, so that every conversion fails until an operator puts its own).
pub fn webhook_conversion(
    service: &str,
    namespace: &str,
    port: i32,
    ca_bundle: Option<&str>,
) -> CustomResourceConversion {
    CustomResourceConversion {
        strategy: "Webhook".to_string(),
        webhook: Some(WebhookConversion {
            conversion_review_versions: vec!["v1".to_string()],
            client_config: Some(WebhookClientConfig {
                ca_bundle: ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec())),
                service: Some(ServiceReference {
                    name: service.to_string(),
                    namespace: namespace.to_string(),
                    path: Some(names::webhook::CONVERT_PATH.to_string()),
                    port: Some(port),
                }),
                url: None,
            }),
        }),
    }
}

/// Whether this release serves `kind` of group `prism.io` at `api_version` (its CRD keeps the
/// older version served beside v1beta1): what an owner reference written by an earlier release
/// names still resolves while it does.
pub fn serves(api_version: &str, kind: &str) -> bool {
    use kube::Resource;
    let served: [String; 2] = match kind {
        "PrismCluster" => {
            [v1alpha1::PrismCluster::api_version(&()).into(), v1beta1::PrismCluster::api_version(&()).into()]
        }
        "PrismNamespace" => {
            [v1alpha2::PrismNamespace::api_version(&()).into(), v1beta1::PrismNamespace::api_version(&()).into()]
        }
        "PrismPattern" => {
            [v1alpha1::PrismPattern::api_version(&()).into(), v1beta1::PrismPattern::api_version(&()).into()]
        }
        _ => return false,
    };
    served.iter().any(|version| version == api_version)
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
