//! What the operator's caches hold per object of each kind: the objects of one converged cluster,
//! trimmed as `projection` trims them, and the heap each copy and its store key take, counted by
//! the instrumented allocator of `stats_alloc`. Its counts are process-wide, so that each copy is
//! measured several times and the median taken: another thread's allocation may fall in one.

use std::alloc::System;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::Lookup;
use kube::{Client, Resource};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_controllers::projection::{Cached, project};
use serde::de::DeserializeOwned;
use stats_alloc::{Region, StatsAlloc};

/// The allocator to install as the global one: the system's, counted.
pub type Counting = StatsAlloc<System>;
pub use stats_alloc::INSTRUMENTED_SYSTEM as COUNTING;

/// Measurements of each copy, of which the median counts.
const TRIES: usize = 7;

/// One kind's cached objects in the measured cluster's namespace.
pub struct KindBytes {
    pub kind: String,
    pub objects: usize,
    pub bytes: usize,
}

/// The bytes a cached copy of each object of the operator's kinds in `ns` takes.
pub async fn in_namespace(allocator: &'static Counting, client: &Client, ns: &str) -> Vec<KindBytes> {
    vec![
        kind::<PrismCluster>(allocator, client, ns).await,
        kind::<PrismPattern>(allocator, client, ns).await,
        kind::<PrismNamespace>(allocator, client, ns).await,
        kind::<Secret>(allocator, client, ns).await,
        kind::<ConfigMap>(allocator, client, ns).await,
        kind::<Service>(allocator, client, ns).await,
        kind::<PersistentVolumeClaim>(allocator, client, ns).await,
        kind::<StatefulSet>(allocator, client, ns).await,
        kind::<Deployment>(allocator, client, ns).await,
        kind::<PodDisruptionBudget>(allocator, client, ns).await,
        kind::<HorizontalPodAutoscaler>(allocator, client, ns).await,
        kind::<Ingress>(allocator, client, ns).await,
    ]
}

async fn kind<K>(allocator: &'static Counting, client: &Client, ns: &str) -> KindBytes
where
    K: Cached + Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let list = Api::<K>::namespaced(client.clone(), ns).list(&ListParams::default()).await.expect("listed");
    let objects = list.items.len();
    let bytes = list.items.into_iter().map(|mut object| {
        project(&mut object);
        stored_bytes(allocator, &object)
    });
    KindBytes { kind: K::kind(&()).into_owned(), objects, bytes: bytes.sum() }
}

/// The heap a store's copy of `object` takes: the object behind an Arc, under its reference.
fn stored_bytes<K: Resource<DynamicType = ()> + Clone>(allocator: &'static Counting, object: &K) -> usize {
    let mut tries: Vec<isize> = (0..TRIES)
        .map(|_| {
            let region = Region::new(allocator);
            let stored = (object.to_object_ref(()), Arc::new(object.clone()));
            let change = region.change();
            drop(stored);
            change.bytes_allocated as isize - change.bytes_deallocated as isize + change.bytes_reallocated
        })
        .collect();
    tries.sort_unstable();
    tries[TRIES / 2].max(0) as usize
}
