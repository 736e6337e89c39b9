//! The desired objects of a PrismCluster: pure, deterministic, in apply order.

mod backends;
mod children;
mod components;
mod exposure;
mod secrets;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::DynamicObject;
use prism_api::v1alpha1::DeletionPolicy;
use prism_api::v1alpha2::PrismNamespace;
use prism_api::v1beta1::{BackendKind, PrismPattern};

pub use exposure::service_monitor_resource;
pub use secrets::complete_credentials;

use super::validate::ValidatedCluster;
use crate::routes::Routes;

/// Generated credentials per backend (secret key -> value).
pub type Credentials = BTreeMap<BackendKind, BTreeMap<String, String>>;

/// What a build needs besides the validated spec: facts observed or decided at the edges.
pub struct Inputs<'a> {
    /// Controller reference to the cluster.
    pub owner: OwnerReference,
    /// Existing or freshly generated credentials of every backend that has some.
    pub credentials: &'a Credentials,
    /// The proxy's routes, rendered from observed patterns and namespaces.
    pub routes: &'a Routes,
    /// Whether the ServiceMonitor API is served.
    pub service_monitor_api: bool,
}

/// One backend's objects.
#[derive(Clone, Debug)]
pub struct BackendObjects {
    pub kind: BackendKind,
    pub headless: Service,
    pub client: Service,
    pub stateful_set: StatefulSet,
    pub pdb: Option<PodDisruptionBudget>,
}

/// Every object of a cluster, grouped in apply order: credentials and configuration, backends,
/// admin, proxy, child custom resources, then ingress and observability.
#[derive(Clone, Debug)]
pub struct ClusterObjects {
    pub secrets: Vec<Secret>,
    pub config_maps: Vec<ConfigMap>,
    pub backends: Vec<BackendObjects>,
    pub admin_volume: Option<PersistentVolumeClaim>,
    pub admin_service: Service,
    pub admin: Deployment,
    pub proxy_service: Service,
    pub proxy: Deployment,
    pub proxy_hpa: Option<HorizontalPodAutoscaler>,
    pub proxy_pdb: Option<PodDisruptionBudget>,
    pub patterns: Vec<PrismPattern>,
    pub namespaces: Vec<PrismNamespace>,
    pub ingress: Option<Ingress>,
    pub service_monitor: Option<DynamicObject>,
}

/// Builds every object of `cluster`.
pub fn build(cluster: &ValidatedCluster, inputs: &Inputs<'_>) -> ClusterObjects {
    let owner = &inputs.owner;
    // Data outlives the cluster unless its policy says otherwise: retained volumes and their
    // credentials carry no owner reference, so garbage collection leaves them.
    let data_owner = (cluster.spec.deletion_policy == DeletionPolicy::Delete).then_some(owner);
    let mut config_maps =
        vec![backends::discovery_config_map(cluster, owner), components::proxy_config(cluster, owner, inputs.routes)];
    config_maps.extend(exposure::grafana_dashboard(cluster, owner));
    let (admin_volume, admin_service, admin) = components::admin(cluster, owner, data_owner);
    let (proxy_service, proxy, proxy_hpa, proxy_pdb) = components::proxy(cluster, owner, inputs.routes);
    ClusterObjects {
        secrets: secrets::build(cluster, inputs.credentials, data_owner),
        config_maps,
        backends: cluster
            .spec
            .backends
            .enabled()
            .filter_map(|(kind, spec)| {
                crate::backends::facts(kind).map(|facts| backends::build(cluster, facts, spec, owner))
            })
            .collect(),
        admin_volume,
        admin_service,
        admin,
        proxy_service,
        proxy,
        proxy_hpa,
        proxy_pdb,
        patterns: children::patterns(cluster, owner),
        namespaces: children::namespaces(cluster, owner),
        ingress: exposure::ingress(cluster, owner),
        service_monitor: exposure::service_monitor(cluster, owner, inputs.service_monitor_api),
    }
}
