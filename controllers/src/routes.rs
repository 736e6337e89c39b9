//! The proxy's routing document: which runner serves each pattern, for each Prism namespace.
//! The cluster controller renders it from observed PrismPatterns and PrismNamespaces into the
//! `<cluster>-proxy-config` ConfigMap; the proxy reads it; the pattern and namespace finalizers
//! wait until it no longer lists what they are tearing down.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use prism_api::v1alpha2::{PrismNamespace, Quota};
use prism_api::v1beta1::PrismPattern;
use serde::{Deserialize, Serialize};

use crate::naming;

/// The whole routing document of one cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Routes {
    pub cluster: String,
    /// Every runner of the cluster the proxy may route to.
    pub patterns: Vec<PatternRoute>,
    /// Every Prism namespace the proxy serves.
    pub namespaces: Vec<NamespaceRoute>,
}

/// A runner the proxy routes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternRoute {
    /// The PrismPattern (runner) name.
    pub runner: String,
    #[serde(rename = "type")]
    pub pattern_type: String,
    /// `host:port` of the runner's gRPC Service port.
    pub address: String,
}

/// A Prism namespace and the runner serving each of its patterns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRoute {
    /// The PrismNamespace name.
    pub name: String,
    pub isolation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Pattern name in the cluster -> runner name.
    pub patterns: Vec<NamespacePattern>,
}

/// One pattern of a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacePattern {
    pub name: String,
    pub runner: String,
}

impl Routes {
    /// Whether the document lists runner `runner`.
    pub fn routes_to_runner(&self, runner: &str) -> bool {
        self.patterns.iter().any(|p| p.runner == runner)
    }

    /// Whether the document lists PrismNamespace `name`.
    pub fn serves_namespace(&self, name: &str) -> bool {
        self.namespaces.iter().any(|n| n.name == name)
    }

    /// The document in a proxy config ConfigMap, if it has a readable one.
    pub fn from_config_map(config_map: Option<&ConfigMap>) -> Option<Routes> {
        let data = config_map?.data.as_ref()?.get(naming::PROXY_ROUTES_KEY)?;
        serde_json::from_str(data).ok()
    }
}

/// Renders the routes of `cluster` from the PrismPatterns and PrismNamespaces observed in its
/// namespace. Objects being deleted are left out: that is what lets their finalizers proceed.
/// `resolve` says which runner serves pattern `p` for namespace `ns` (dedicated or shared).
pub fn render(
    cluster: &str,
    patterns: &[PrismPattern],
    namespaces: &[PrismNamespace],
    resolve: impl Fn(&PrismNamespace, &str) -> Option<String>,
) -> Routes {
    let live = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| meta.deletion_timestamp.is_none();
    let mut runners: Vec<PatternRoute> = patterns
        .iter()
        .filter(|p| p.spec.cluster == cluster && live(&p.metadata))
        .map(|p| PatternRoute {
            runner: p.name_any(),
            pattern_type: p.spec.pattern_type.as_str().to_string(),
            address: format!(
                "{}.{}.svc:{}",
                p.name_any(),
                p.namespace().unwrap_or_default(),
                p.spec.service.as_ref().and_then(|s| s.port).unwrap_or(crate::pattern::build::GRPC_PORT)
            ),
        })
        .collect();
    runners.sort_by(|a, b| a.runner.cmp(&b.runner));
    let mut served: Vec<NamespaceRoute> = namespaces
        .iter()
        .filter(|n| n.spec.cluster == cluster && live(&n.metadata))
        .map(|n| NamespaceRoute {
            name: n.name_any(),
            isolation: n.spec.settings.isolation.as_str().to_string(),
            quota: n.spec.settings.quota.clone(),
            patterns: n
                .spec
                .settings
                .patterns
                .iter()
                .filter_map(|p| resolve(n, p).map(|runner| NamespacePattern { name: p.clone(), runner }))
                .filter(|np| runners.iter().any(|r| r.runner == np.runner))
                .collect(),
        })
        .collect();
    served.sort_by(|a, b| a.name.cmp(&b.name));
    Routes { cluster: cluster.to_string(), patterns: runners, namespaces: served }
}

/// The runner that serves pattern `pattern` (a name of the cluster's `spec.patterns`) for
/// PrismNamespace `namespace`: its dedicated runner with `namespace` isolation, else the cluster's
/// shared one.
pub fn runner_for(namespace: &PrismNamespace, pattern: &str) -> String {
    match namespace.spec.settings.isolation {
        prism_api::v1alpha2::Isolation::Namespace => naming::dedicated_runner(&namespace.name_any(), pattern),
        prism_api::v1alpha2::Isolation::None | prism_api::v1alpha2::Isolation::Session => {
            naming::cluster_pattern(&namespace.spec.cluster, pattern)
        }
    }
}
