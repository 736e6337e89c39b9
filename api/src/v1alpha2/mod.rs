//! prism.io/v1alpha2: PrismNamespace, an app team's Prism namespace.

mod namespace;

pub use namespace::*;
