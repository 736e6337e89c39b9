//! prism.io/v1beta1: every kind, the storage version and the only one the controllers read and
//! write (the hub that the older versions convert to and from).

mod cluster;
mod namespace;
mod pattern;
mod tenancy;

pub use cluster::*;
pub use namespace::*;
pub use pattern::*;
pub use tenancy::*;
