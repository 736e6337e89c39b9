pub use crate::common::{
    Connection, Isolation, NamespacePhase, NamespaceSettings, PrismNamespaceStatus, Quota, ResolvedPattern,
};

crate::common::prism_namespace_version!("v1alpha2", {});
