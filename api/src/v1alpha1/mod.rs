//! prism.io/v1alpha1: PrismCluster as first released, and PrismPattern in the upstream Go
//! operator's shape. Both are served and converted to and from v1beta1, the storage version.

mod cluster;
mod pattern;

pub use cluster::*;
pub use pattern::*;
