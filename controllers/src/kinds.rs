//! The kinds the controllers watch and write, and how to reach them: the bottom of the
//! controllers' layers (it imports nothing of the crate).

use std::fmt::Debug;

use kube::Resource;
use kube::core::{Expression, NamespaceResourceScope, Selector};
use prism_api::names::labels;
use serde::de::DeserializeOwned;

/// What the controllers watch: namespaced, static kinds.
pub trait Watched:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// The StatefulSets both the cluster controller (backends) and the pattern controller (runners,
/// and the backends they wait for) read: every one a cluster's label names. One selector for both,
/// so that they share one watch and one cache.
pub fn stateful_sets() -> Selector {
    Selector::from(Expression::Exists(labels::CLUSTER.into()))
}

/// An Api for `K` in the watch scope: one namespace, or all.
pub fn scoped_api<K>(client: &kube::Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

/// Whether an API group version serves `plural` (an optional API: KEDA's, the Prometheus
/// Operator's).
pub async fn api_served(client: &kube::Client, group_version: &str, plural: &str) -> bool {
    client
        .list_api_group_resources(group_version)
        .await
        .is_ok_and(|list| list.resources.iter().any(|r| r.name == plural))
}
