pub use crate::common::{
    Connection, Isolation, NamespacePhase, NamespaceSettings, PrismNamespaceStatus, Quota, ResolvedPattern,
};

crate::common::prism_namespace_version!(
    "v1beta1",
    spec_rule = kube::core::Rule::new(
        "has(self.clusterNamespace) == has(oldSelf.clusterNamespace) && (!has(self.clusterNamespace) || self.clusterNamespace == oldSelf.clusterNamespace)"
    )
    .message("spec.clusterNamespace is immutable: create a new PrismNamespace on the other cluster")
    .field_path(".clusterNamespace"),
    {
        /// Namespace of the PrismCluster, when it is not this PrismNamespace's own (an app team's
        /// namespace attaching to a platform team's cluster; the cluster must admit it, see the
        /// cluster's `spec.tenancy`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
        pub cluster_namespace: Option<String>,
    }
);

/// The PrismCluster a PrismNamespace attaches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

impl std::fmt::Display for ClusterRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl PrismNamespace {
    /// The cluster this namespace attaches to: `spec.clusterNamespace`, else its own namespace.
    pub fn cluster_ref(&self) -> ClusterRef<'_> {
        let own = self.metadata.namespace.as_deref().unwrap_or_default();
        ClusterRef { namespace: self.spec.cluster_namespace.as_deref().unwrap_or(own), name: &self.spec.cluster }
    }

    /// Whether the namespace attaches to a cluster of another Kubernetes namespace (a tenant).
    pub fn is_cross_namespace(&self) -> bool {
        self.cluster_ref().namespace != self.metadata.namespace.as_deref().unwrap_or_default()
    }
}
