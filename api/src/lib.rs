//! The custom resources of the Prism operator (API group `prism.io`): types, names and schema
//! rules only, no I/O. One module per API version, so that a kind can later be served at several
//! versions with conversion.

pub mod common;
pub mod names;
pub mod v1alpha1;
pub mod v1alpha2;
pub mod v1beta1;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The CustomResourceDefinitions of every kind, in install order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![v1alpha1::PrismCluster::crd(), v1alpha2::PrismNamespace::crd(), v1beta1::PrismPattern::crd()]
}
