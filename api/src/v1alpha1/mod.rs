//! prism.io/v1alpha1: PrismCluster, a whole Prism deployment.

mod cluster;

pub use cluster::*;
