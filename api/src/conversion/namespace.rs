//! PrismNamespace v1alpha2 <-> v1beta1: one shape but for v1beta1's `clusterNamespace` (v1alpha2
//! names a cluster of its own namespace, and still means that); a v1beta1 object's
//! `clusterNamespace` survives a trip through v1alpha2 in the annotation.

use crate::names::annotations;
use crate::{v1alpha2 as old, v1beta1 as hub};

use super::Pair;

pub const PAIR: Pair<old::PrismNamespace, hub::PrismNamespace> =
    Pair { to_hub, to_old, old_fields: annotations::V1ALPHA2_FIELDS };

pub fn to_hub(o: &old::PrismNamespace) -> hub::PrismNamespace {
    let spec = hub::PrismNamespaceSpec {
        cluster: o.spec.cluster.clone(),
        cluster_namespace: None,
        settings: o.spec.settings.clone(),
    };
    hub::PrismNamespace { metadata: o.metadata.clone(), spec, status: o.status.clone() }
}

pub fn to_old(h: &hub::PrismNamespace) -> old::PrismNamespace {
    let spec = old::PrismNamespaceSpec { cluster: h.spec.cluster.clone(), settings: h.spec.settings.clone() };
    old::PrismNamespace { metadata: h.metadata.clone(), spec, status: h.status.clone() }
}
