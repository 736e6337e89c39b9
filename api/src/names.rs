//! Strings that Kubernetes reads: the API group, label and annotation keys, finalizers, field
//! managers, condition types and reasons. One module, so that a typo cannot split a name in two.

/// The API group of every Prism custom resource. (kube's derive attributes take literals only;
/// tests/crds.rs holds them to this constant and to [`CATEGORY`].)
pub const GROUP: &str = "prism.io";

/// The `kubectl get prism` category shared by all three kinds.
pub const CATEGORY: &str = "prism";

/// Where the API server reaches the operator's conversion webhook unless the operator, at its
/// start, points the CRDs elsewhere: the chart's Service in the namespace the README installs to.
pub mod webhook {
    /// The webhook's Service (the operator's `--webhook-service` default).
    pub const SERVICE: &str = "prism-operator-webhook";
    /// The namespace of a default install.
    pub const NAMESPACE: &str = "prism-system";
    /// The Service's port.
    pub const PORT: u16 = 443;
    /// The path of the ConversionReview endpoint.
    pub const CONVERT_PATH: &str = "/convert";
}

/// Labels the operator puts on every object it creates.
pub mod labels {
    /// Standard label naming the application (`prism`).
    pub const NAME: &str = "app.kubernetes.io/name";
    /// Standard label naming the instance: the owning PrismCluster.
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    /// Standard label naming the component (admin, proxy, redis, pattern-keyvalue, ...).
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// Standard label naming the tool that manages the object.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// Value of [`MANAGED_BY`] on every object of this operator.
    pub const MANAGED_BY_VALUE: &str = "prism-operator";
    /// The PrismCluster an object belongs to.
    pub const CLUSTER: &str = "prism.io/cluster";
    /// The PrismPattern a runner object belongs to.
    pub const PATTERN: &str = "prism.io/pattern";
    /// The backend a backing service's objects belong to (redis, nats, ...).
    pub const BACKEND: &str = "prism.io/backend";
    /// The PrismNamespace a dedicated runner belongs to.
    pub const NAMESPACE: &str = "prism.io/namespace";
    /// On a tenant's dedicated runner (in the cluster's namespace): the Kubernetes namespace of
    /// the PrismNamespace it serves. Owner references cannot cross namespaces: labels tie them.
    pub const TENANT_NAMESPACE: &str = "prism.io/tenant-namespace";
    /// On a tenant's dedicated runner: the uid of the PrismNamespace it serves, so that a runner
    /// whose tenant is gone (even re-created under the same name) is known as an orphan.
    pub const TENANT_UID: &str = "prism.io/tenant-uid";
}

/// Annotations the operator reads or writes.
pub mod annotations {
    /// Hash of the configuration a pod template depends on: a change rolls the pods.
    pub const CONFIG_HASH: &str = "prism.io/config-hash";
    /// Hash of the desired state last applied to a child: lets a reconcile skip writes that would
    /// change nothing (drift is still caught by comparing the live object).
    pub const APPLIED_HASH: &str = "prism.io/applied-hash";
    /// On an object read at an older version: its v1beta1 fields that version has no place for
    /// (a delta, JSON), taken back when it converts to v1beta1 again.
    pub const V1BETA1_FIELDS: &str = "prism.io/v1beta1-fields";
    /// On a v1beta1 PrismCluster or PrismPattern: its v1alpha1 fields v1beta1 has no place for.
    pub const V1ALPHA1_FIELDS: &str = "prism.io/v1alpha1-fields";
    /// On a v1beta1 PrismNamespace: its v1alpha2 fields v1beta1 has no place for.
    pub const V1ALPHA2_FIELDS: &str = "prism.io/v1alpha2-fields";
}

/// Finalizers, one per controller that needs ordered teardown.
pub mod finalizers {
    /// Held by a PrismCluster until its children are torn down in order.
    pub const CLUSTER: &str = "prism.io/cluster-teardown";
    /// Held by a PrismNamespace until it is removed from the proxy configuration.
    pub const NAMESPACE: &str = "prism.io/namespace-teardown";
    /// Held by a PrismPattern until the proxy stops routing to its runner.
    pub const PATTERN: &str = "prism.io/pattern-teardown";
    /// Held by a generated credentials Secret: a deleted one lingers (Terminating, data intact)
    /// until the operator has read its data back and recreated it with the same credentials.
    pub const CREDENTIALS: &str = "prism.io/credentials-protection";
}

/// Server-side apply field managers, one per controller.
pub mod field_managers {
    pub const CLUSTER: &str = "prism-operator/cluster";
    pub const NAMESPACE: &str = "prism-operator/namespace";
    pub const PATTERN: &str = "prism-operator/pattern";
    /// Shares ownership of a workload's replicas while they pass to an autoscaler, so that
    /// dropping them from the operator's apply does not reset them (server-side apply's documented
    /// hand-over).
    pub const AUTOSCALER_HANDOVER: &str = "prism-operator/autoscaler-handover";
}

/// Condition types used in the status of the three kinds.
pub mod conditions {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    pub const DEGRADED: &str = "Degraded";
    pub const PAUSED: &str = "Paused";
    pub const BACKENDS_READY: &str = "BackendsReady";
    pub const ADMIN_READY: &str = "AdminReady";
    pub const PROXY_READY: &str = "ProxyReady";
    pub const PATTERNS_READY: &str = "PatternsReady";
    pub const SPEC_VALID: &str = "SpecValid";
    pub const AUTOSCALING: &str = "Autoscaling";
    pub const OBSERVABILITY: &str = "Observability";
    /// A PrismNamespace: its cluster admits it (its namespace, its patterns, its runners).
    pub const ACCEPTED: &str = "Accepted";
    /// A PrismNamespace: another PrismNamespace on the same cluster holds its name.
    pub const CONFLICTED: &str = "Conflicted";
    /// A PrismNamespace: its quota was lowered to the cluster's tenant limits.
    pub const QUOTA_CLAMPED: &str = "QuotaClamped";
}
