//! The sandbox's view: every Prism object of a namespace and the workloads under it, as a tree.

use std::fmt::Write;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use prism_api::v1alpha1::{ClusterPhase, PrismCluster};
use prism_api::v1alpha2::PrismNamespace;
use prism_api::v1beta1::PrismPattern;

/// What was observed in one pass.
pub struct Snapshot {
    clusters: Vec<PrismCluster>,
    patterns: Vec<PrismPattern>,
    namespaces: Vec<PrismNamespace>,
    deployments: Vec<Deployment>,
    stateful_sets: Vec<StatefulSet>,
}

pub async fn snapshot(client: &Client, namespace: &str) -> Result<Snapshot, kube::Error> {
    let all = ListParams::default();
    Ok(Snapshot {
        clusters: Api::namespaced(client.clone(), namespace).list(&all).await?.items,
        patterns: Api::namespaced(client.clone(), namespace).list(&all).await?.items,
        namespaces: Api::namespaced(client.clone(), namespace).list(&all).await?.items,
        deployments: Api::namespaced(client.clone(), namespace).list(&all).await?.items,
        stateful_sets: Api::namespaced(client.clone(), namespace).list(&all).await?.items,
    })
}

impl Snapshot {
    /// Every cluster is Running.
    pub fn converged(&self) -> bool {
        !self.clusters.is_empty()
            && self.clusters.iter().all(|c| c.status.as_ref().and_then(|s| s.phase) == Some(ClusterPhase::Running))
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for cluster in &self.clusters {
            let status = cluster.status.clone().unwrap_or_default();
            let phase = status.phase.map_or("Pending".to_string(), |p| format!("{p:?}"));
            let ready = status.ready_components.unwrap_or_default();
            let _ = writeln!(out, "PrismCluster {}  {phase}  ready {ready}", cluster.name_any());
            let name = cluster.name_any();
            for set in self.stateful_sets.iter().filter(|s| owned_by(s.owner_references(), &name)) {
                let status = set.status.clone().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "├─ StatefulSet {}  {}/{} ready",
                    set.name_any(),
                    status.ready_replicas.unwrap_or(0),
                    status.replicas
                );
            }
            for deployment in self.deployments.iter().filter(|d| owned_by(d.owner_references(), &name)) {
                let _ = writeln!(out, "├─ Deployment {}  {}", deployment.name_any(), deployment_ready(deployment));
            }
            for pattern in self.patterns.iter().filter(|p| p.spec.cluster == name) {
                self.render_pattern(&mut out, pattern);
            }
            for namespace in self.namespaces.iter().filter(|n| n.spec.cluster == name) {
                let phase =
                    namespace.status.as_ref().and_then(|s| s.phase).map_or("-".to_string(), |p| format!("{p:?}"));
                let _ = writeln!(
                    out,
                    "├─ PrismNamespace {}  {}  {phase}",
                    namespace.name_any(),
                    namespace.spec.settings.isolation.as_str()
                );
            }
        }
        out
    }

    fn render_pattern(&self, out: &mut String, pattern: &PrismPattern) {
        let status = pattern.status.clone().unwrap_or_default();
        let phase = status.phase.map_or("Pending".to_string(), |p| format!("{p:?}"));
        let _ = writeln!(
            out,
            "├─ PrismPattern {}  {}  {phase}  {}/{} available",
            pattern.name_any(),
            pattern.spec.pattern_type.as_str(),
            status.available_replicas,
            status.replicas
        );
        let name = pattern.name_any();
        for deployment in self.deployments.iter().filter(|d| owned_by(d.owner_references(), &name)) {
            let _ = writeln!(out, "│  └─ Deployment {}  {}", deployment.name_any(), deployment_ready(deployment));
        }
        for set in self.stateful_sets.iter().filter(|s| owned_by(s.owner_references(), &name)) {
            let ready = set.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
            let _ = writeln!(out, "│  └─ StatefulSet {}  {ready} ready", set.name_any());
        }
    }
}

fn owned_by(owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference], name: &str) -> bool {
    owners.iter().any(|o| o.name == name && o.controller == Some(true))
}

fn deployment_ready(deployment: &Deployment) -> String {
    let status = deployment.status.clone().unwrap_or_default();
    let desired = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    format!("{}/{desired} ready", status.ready_replicas.unwrap_or(0))
}
