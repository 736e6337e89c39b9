//! What the operator's caches hold per object of each kind: the objects of one converged cluster,
//! trimmed as `projection` trims them and stored as each kind is stored (children as records),
//! and the heap each copy and its store key take, counted by the instrumented allocator of
//! `stats_alloc`. Its counts are process-wide, so that each copy is measured several times and the
//! median taken: another thread's allocation may fall in one. The parts records share (interned
//! labels, owner references, finalizers) are counted once, apart.

use std::alloc::System;
use std::any::Any;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::{Lookup, ObjectRef};
use kube::{Client, Resource};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use prism_controllers::projection::{Cached, project};
use prism_controllers::record::Stored;
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

/// What one cluster's objects take in the caches.
pub struct CacheBytes {
    pub kinds: Vec<KindBytes>,
    /// The parts records share, once for all of them (measured once: may include noise).
    pub shared: usize,
}

/// The trimmed objects of each kind in `ns`, to measure.
macro_rules! listed {
    ($client:expr, $ns:expr; $($kind:ty),*) => {{
        let all: Vec<Box<dyn Measured>> = vec![$(Box::new(listed::<$kind>($client, $ns).await)),*];
        all
    }};
}

/// The bytes a cached copy of each object of the operator's kinds in `ns` takes.
pub async fn in_namespace(allocator: &'static Counting, client: &Client, ns: &str) -> CacheBytes {
    let listed = listed!(client, ns; PrismCluster, PrismPattern, PrismNamespace, Secret, ConfigMap, Service,
        PersistentVolumeClaim, StatefulSet, Deployment, PodDisruptionBudget, HorizontalPodAutoscaler, Ingress);
    // Every copy at once, as first stored: the shared parts are made here, once. The vectors that
    // hold the copies are made before (a store's table is not counted for one copy either).
    let mut rooms: Vec<Box<dyn Any>> = listed.iter().map(|kind| kind.room()).collect();
    let region = Region::new(allocator);
    for (kind, room) in listed.iter().zip(rooms.iter_mut()) {
        kind.keep_all(room.as_mut());
    }
    let all = net(&region);
    drop(rooms);
    let kinds: Vec<KindBytes> = listed.iter().map(|kind| kind.per_copy(allocator)).collect();
    let copies: usize = kinds.iter().map(|k| k.bytes).sum();
    CacheBytes { kinds, shared: all.saturating_sub(copies) }
}

/// The trimmed objects of one kind, to measure.
struct Listed<K>(Vec<K>);

trait Measured {
    /// Room for a stored copy of every object.
    fn room(&self) -> Box<dyn Any>;
    /// A stored copy of every object, with its store key, kept in `room`.
    fn keep_all(&self, room: &mut dyn Any);
    /// The bytes of one more stored copy of each (the shared parts exist already).
    fn per_copy(&self, allocator: &'static Counting) -> KindBytes;
}

impl<K> Measured for Listed<K>
where
    K: Cached + Resource<DynamicType = ()> + 'static,
    K::Stored: Lookup<DynamicType = ()>,
{
    fn room(&self) -> Box<dyn Any> {
        Box::new(Vec::<StoredCopy<K>>::with_capacity(self.0.len()))
    }

    fn keep_all(&self, room: &mut dyn Any) {
        let room = room.downcast_mut::<Vec<StoredCopy<K>>>().expect("the room of this kind");
        room.extend(self.0.iter().map(stored::<K>));
    }

    fn per_copy(&self, allocator: &'static Counting) -> KindBytes {
        let bytes = self.0.iter().map(|object| stored_bytes::<K>(allocator, object)).sum();
        KindBytes { kind: K::kind(&()).into_owned(), objects: self.0.len(), bytes }
    }
}

async fn listed<K>(client: &Client, ns: &str) -> Listed<K>
where
    K: Cached + Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let list = Api::<K>::namespaced(client.clone(), ns).list(&ListParams::default()).await.expect("listed");
    Listed(
        list.items
            .into_iter()
            .map(|mut object| {
                project(&mut object);
                object
            })
            .collect(),
    )
}

/// A store's copy of an object of kind `K` and its key.
type StoredCopy<K> = (ObjectRef<<K as Cached>::Stored>, Arc<<K as Cached>::Stored>);

/// A store's copy of `object` under its key.
fn stored<K>(object: &K) -> StoredCopy<K>
where
    K: Cached + Resource<DynamicType = ()>,
    K::Stored: Lookup<DynamicType = ()>,
{
    let kept = K::Stored::keep(object);
    (kept.to_object_ref(()), Arc::new(kept))
}

/// The heap one more stored copy of `object` takes, median of several.
fn stored_bytes<K>(allocator: &'static Counting, object: &K) -> usize
where
    K: Cached + Resource<DynamicType = ()>,
    K::Stored: Lookup<DynamicType = ()>,
{
    let mut tries: Vec<usize> = (0..TRIES)
        .map(|_| {
            let region = Region::new(allocator);
            let copy = stored(object);
            let bytes = net(&region);
            drop(copy);
            bytes
        })
        .collect();
    tries.sort_unstable();
    tries[TRIES / 2]
}

/// The bytes still allocated of those allocated since `region` began. A reallocation's
/// difference is already in the bytes allocated or deallocated (`bytes_reallocated` repeats it).
fn net(region: &Region<'static, System>) -> usize {
    let change = region.change();
    change.bytes_allocated.saturating_sub(change.bytes_deallocated)
}
