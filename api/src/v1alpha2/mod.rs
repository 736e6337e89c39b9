//! prism.io/v1alpha2: PrismNamespace as first released; the same shape as v1beta1.

mod namespace;

pub use namespace::*;
