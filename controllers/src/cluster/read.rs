//! The dereference step of a cluster pass: everything the pass reads, read before anything is
//! decided or written. Nothing here writes, releases a finalizer or sends an Event.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use prism_api::v1beta1::NamespaceSummary;
use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{ClusterRef, PrismNamespace};

use super::build::Credentials;
use super::credentials;
use super::status::Observations;
use super::validate::ValidatedCluster;
use crate::error::Result;
use crate::indexed::Indexed;
use crate::workload::WorkloadView;
use crate::writer::Writer;
use crate::{meta, naming};

/// What one pass read.
pub struct Read {
    /// The credentials already in the backends' Secrets.
    pub credentials: Credentials,
    /// Credentials Secrets someone deleted, lingering on their protection finalizer.
    pub lingering_credentials: Vec<Secret>,
    pub admin: Option<Deployment>,
    pub proxy: Option<Deployment>,
    /// Each enabled backend by name, with its StatefulSet if it exists.
    pub backends: Vec<(String, Option<StatefulSet>)>,
    /// Every PrismPattern of the cluster's namespace and every PrismNamespace naming the cluster,
    /// from any namespace (for the routes and the status), as cached.
    pub patterns: Vec<PrismPattern>,
    pub namespaces: Vec<PrismNamespace>,
}

/// Reads what a pass over `valid` needs: its children through `w`, the PrismPatterns of its
/// namespace and the PrismNamespaces naming it from their stores.
pub async fn read(
    valid: &ValidatedCluster,
    patterns: &Indexed<PrismPattern>,
    namespaces: &Indexed<PrismNamespace>,
    w: &Writer<'_>,
) -> Result<Read> {
    let (credentials, lingering_credentials) = credentials::read(valid, w).await?;
    let mut backends = Vec::new();
    let labels = |component: &str| meta::component_labels(&valid.name, component);
    for (kind, _) in valid.spec.backends.enabled() {
        let name = naming::backend_service(&valid.name, kind);
        backends.push((kind.as_str().to_string(), w.live_child::<StatefulSet>(&name, &labels(kind.as_str())).await?));
    }
    Ok(Read {
        credentials,
        lingering_credentials,
        admin: w.live_child(&naming::admin_service(&valid.name), &labels("admin")).await?,
        proxy: w.live_child(&naming::proxy_service(&valid.name), &labels("proxy")).await?,
        backends,
        patterns: patterns.in_namespace(&valid.namespace, |_| true).iter().map(|p| p.as_ref().clone()).collect(),
        namespaces: attached(namespaces, valid).iter().map(|n| n.as_ref().clone()).collect(),
    })
}

impl Read {
    /// The cluster as read, written nothing (a paused cluster).
    pub fn observed(&self, valid: &ValidatedCluster) -> Observations {
        Observations {
            admin: self.admin.as_ref().map(WorkloadView::of_deployment),
            proxy: self.proxy.as_ref().map(WorkloadView::of_deployment),
            backends: self
                .backends
                .iter()
                .map(|(kind, set)| (kind.clone(), set.as_ref().map(WorkloadView::of_stateful_set)))
                .collect(),
            ..self.observed_children(valid)
        }
    }

    /// The child PrismPatterns' and PrismNamespaces' state.
    pub fn observed_children(&self, valid: &ValidatedCluster) -> Observations {
        let patterns = valid
            .spec
            .patterns
            .iter()
            .map(|entry| {
                let name = naming::cluster_pattern(&valid.name, &entry.name);
                let found = self.patterns.iter().find(|p| p.name_any() == name);
                (entry.name.clone(), found.and_then(|p| p.status.clone()))
            })
            .collect();
        let namespaces = self
            .namespaces
            .iter()
            .map(|n| NamespaceSummary {
                name: n.name_any(),
                namespace: n.namespace().filter(|ns| *ns != valid.namespace),
                phase: n.status.as_ref().and_then(|s| s.phase),
            })
            .collect();
        Observations { patterns, namespaces, ..Observations::default() }
    }
}

/// The PrismNamespaces of `store` naming the cluster `valid`, from any namespace.
pub fn attached(store: &Indexed<PrismNamespace>, valid: &ValidatedCluster) -> Vec<std::sync::Arc<PrismNamespace>> {
    let target = ClusterRef { namespace: &valid.namespace, name: &valid.name };
    store.state_filter(|n| n.cluster_ref() == target)
}
