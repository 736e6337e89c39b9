//! prism.io/v1beta1: every kind, the storage version and the only one the controllers read and
//! write (the hub that the older versions convert to and from).

mod cluster;
mod namespace;
mod pattern;

pub use cluster::*;
pub use namespace::*;
pub use pattern::*;
