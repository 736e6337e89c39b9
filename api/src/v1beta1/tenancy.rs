//! Tenancy of a PrismCluster (v1beta1 only): which Kubernetes namespaces may attach
//! PrismNamespaces to it, in the manner of a Gateway's `allowedRoutes.namespaces`, and the limits
//! of what each such tenant may ask.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Quota;

/// Who may attach PrismNamespaces to the cluster, and what they may ask.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tenancy {
    /// The namespaces whose PrismNamespaces the cluster serves (its own namespace always).
    #[serde(default)]
    pub namespaces: AllowedNamespaces,
    /// Caps on what a tenant's PrismNamespace may ask; none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<TenantLimits>,
}

/// The namespaces admitted, as Gateway API's `allowedRoutes.namespaces` says it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("self.from != 'Selector' || has(self.selector)")
        .message("spec.tenancy.namespaces.selector is required when from is Selector")
        .field_path(".selector"),
    validation = kube::core::Rule::new("self.from == 'Selector' || !has(self.selector)")
        .message("spec.tenancy.namespaces.selector is read only when from is Selector")
        .field_path(".selector"),
)]
pub struct AllowedNamespaces {
    /// `Same` (the cluster's namespace only, the default), `All`, or `Selector`.
    #[serde(default)]
    pub from: NamespacesFrom,
    /// With `from: Selector`: the labels of the namespaces admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Where PrismNamespaces may attach from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NamespacesFrom {
    /// The cluster's own namespace only.
    #[default]
    Same,
    /// Every namespace.
    All,
    /// The cluster's namespace and the namespaces `selector` selects.
    Selector,
}

impl NamespacesFrom {
    /// The name used in manifests and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            NamespacesFrom::Same => "Same",
            NamespacesFrom::All => "All",
            NamespacesFrom::Selector => "Selector",
        }
    }
}

/// What one tenant's PrismNamespace may ask at most: its quota's values (the same fields as
/// `spec.quota`), its dedicated runners and patterns. A quota above a limit is lowered to it (the
/// proxy's routes carry the lowered value, and the namespace's QuotaClamped condition says so);
/// an unlimited ask gets the limit. Patterns outside `patterns` or more dedicated runners than
/// `maxDedicatedRunners` are refused (the namespace is not served).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantLimits {
    /// Sessions, requests per second and burst, as a PrismNamespace's quota says them.
    #[serde(flatten)]
    pub quota: Quota,
    /// Dedicated runners (isolation `namespace`: one per pattern) a tenant may have; 0 forbids
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    pub max_dedicated_runners: Option<i32>,
    /// Names of the cluster's patterns tenants may use; every pattern when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "maxLength": 63, "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$"}))]
    pub patterns: Vec<String>,
}
