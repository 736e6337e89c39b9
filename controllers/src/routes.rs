//! The proxy's routing document: which runner serves each pattern, for each Prism namespace.
//! The cluster controller renders it from observed PrismPatterns and PrismNamespaces into the
//! `<cluster>-proxy-config` ConfigMap; the proxy reads it; the pattern and namespace finalizers
//! wait until it no longer lists what they are tearing down.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::core::{Expression, Selector};
use prism_api::names::labels;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{PrismNamespace, Quota};
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
    /// The Kubernetes namespace of a tenant's PrismNamespace (absent: the cluster's own), so that
    /// a PrismNamespace asking for a name another holds knows it is not the one served.
    #[serde(default, rename = "kubernetesNamespace", skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
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

    /// Whether the document lists PrismNamespace `name` (of whichever Kubernetes namespace).
    pub fn serves_namespace(&self, name: &str) -> bool {
        self.namespaces.iter().any(|n| n.name == name)
    }

    /// Whether the document lists `namespace` itself: its name, from its Kubernetes namespace.
    pub fn serves(&self, namespace: &PrismNamespace) -> bool {
        let tenant = namespace.is_cross_namespace().then(|| namespace.namespace()).flatten();
        self.namespaces.iter().any(|n| n.name == namespace.name_any() && n.tenant == tenant)
    }

    /// The document in a proxy config ConfigMap, if it has a readable one.
    pub fn from_config_map(config_map: Option<&ConfigMap>) -> Option<Routes> {
        let data = config_map?.data.as_ref()?.get(naming::PROXY_ROUTES_KEY)?;
        serde_json::from_str(data).ok()
    }
}

/// Selects the proxies' configs, every cluster's: the ConfigMaps that hold the routes.
pub fn proxy_configs() -> Selector {
    Selector::from_iter([
        Expression::Equal(labels::COMPONENT.into(), naming::PROXY_COMPONENT.into()),
        Expression::Equal(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
        Expression::Exists(labels::CLUSTER.into()),
    ])
}

/// Assembles the routes of `cluster`: `runners` (sorted, first of a name wins) and every namespace
/// of `namespaces` that belongs to the cluster and is not being deleted (leaving it out is what
/// lets its finalizer proceed), each pattern resolved to its runner with [`runner_for`].
pub fn render(cluster: &str, mut runners: Vec<PatternRoute>, namespaces: &[PrismNamespace]) -> Routes {
    runners.sort_by(|a, b| a.runner.cmp(&b.runner));
    runners.dedup_by(|a, b| a.runner == b.runner);
    let mut served: Vec<NamespaceRoute> = namespaces
        .iter()
        .filter(|n| n.spec.cluster == cluster && n.metadata.deletion_timestamp.is_none())
        .map(|n| NamespaceRoute {
            name: n.name_any(),
            tenant: n.is_cross_namespace().then(|| n.namespace()).flatten(),
            isolation: n.spec.settings.isolation.as_str().to_string(),
            quota: n.spec.settings.quota.clone(),
            patterns: n
                .spec
                .settings
                .patterns
                .iter()
                .map(|p| NamespacePattern { name: p.clone(), runner: runner_for(n, p) })
                .collect(),
        })
        .collect();
    served.sort_by(|a, b| a.name.cmp(&b.name));
    served.dedup_by(|a, b| a.name == b.name);
    Routes { cluster: cluster.to_string(), patterns: runners, namespaces: served }
}

/// The route to a runner: its Service's gRPC port.
pub fn pattern_route(runner: &str, namespace: &str, pattern_type: &str, port: Option<i32>) -> PatternRoute {
    PatternRoute {
        runner: runner.to_string(),
        pattern_type: pattern_type.to_string(),
        address: format!("{runner}.{namespace}.svc:{}", port.unwrap_or(crate::ports::RUNNER_GRPC)),
    }
}

/// Routes to observed PrismPatterns of `cluster` that are not being deleted.
pub fn observed_runners(cluster: &str, patterns: &[PrismPattern]) -> Vec<PatternRoute> {
    patterns
        .iter()
        .filter(|p| p.spec.cluster == cluster && p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let port = p.spec.service.as_ref().and_then(|s| s.port);
            pattern_route(&p.name_any(), &p.namespace().unwrap_or_default(), p.spec.pattern_type.as_str(), port)
        })
        .collect()
}

/// The runner that serves pattern `pattern` (a name of the cluster's `spec.patterns`) for
/// PrismNamespace `namespace`: its dedicated runner with `namespace` isolation, else the cluster's
/// shared one.
pub fn runner_for(namespace: &PrismNamespace, pattern: &str) -> String {
    match namespace.spec.settings.isolation {
        prism_api::v1beta1::Isolation::Namespace => naming::dedicated_runner(&namespace.name_any(), pattern),
        prism_api::v1beta1::Isolation::None | prism_api::v1beta1::Isolation::Session => {
            naming::cluster_pattern(&namespace.spec.cluster, pattern)
        }
    }
}
