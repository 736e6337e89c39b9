//! One view of every object kind: what the tree, the status and the chain of causes show of it
//! (readiness, phase or reason, what it waits on), built from the object alone.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::api::DynamicObject;
use prism_api::names::{conditions as types, labels};
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use prism_api::v1beta1::{PatternPhase, PrismPattern};
use serde::Serialize;

/// Whether an object does what it should.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ready,
    /// On its way: rolling out, waiting for something that is coming.
    Progressing,
    /// Will not get there by itself.
    Failing,
    /// Has no readiness of its own (a ConfigMap, a Secret, a Service).
    None,
}

/// The object an object names as its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerLink {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// One object as the views show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Ready of desired, e.g. `2/3`, where the kind counts replicas or components.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    pub health: Health,
    /// The phase, or a word for the state (`Bound`, `ClusterIP`, ...); `-` when there is none.
    pub status: String,
    /// The reason of the condition that says why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What it waits on, or why it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Time>,
    #[serde(skip)]
    pub uid: String,
    /// Its controller owner reference, else its first owner reference.
    #[serde(skip)]
    pub owner: Option<OwnerLink>,
    /// The PrismCluster it belongs to: `spec.cluster` of a namespace or pattern, the
    /// `prism.io/cluster` label of a child.
    #[serde(skip)]
    pub cluster: Option<String>,
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
    #[serde(skip)]
    pub conditions: Vec<Condition>,
}

impl Node {
    /// A node of `kind` from `meta`, with no state yet.
    pub fn new(kind: &str, meta: &ObjectMeta) -> Node {
        let owners = meta.owner_references.as_deref().unwrap_or_default();
        let owner = owners.iter().find(|o| o.controller == Some(true)).or(owners.first());
        let labels = meta.labels.clone().unwrap_or_default();
        Node {
            kind: kind.to_string(),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            ready: None,
            health: Health::None,
            status: "-".into(),
            reason: None,
            message: None,
            creation_timestamp: meta.creation_timestamp.clone(),
            uid: meta.uid.clone().unwrap_or_default(),
            owner: owner.map(|o| OwnerLink { kind: o.kind.clone(), name: o.name.clone(), uid: o.uid.clone() }),
            cluster: labels.get(labels::CLUSTER).cloned(),
            labels,
            conditions: Vec::new(),
        }
    }

    /// `Kind/name`, as kubectl names objects.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.health, Health::Ready | Health::None)
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    fn with_state(mut self, health: Health, status: impl Into<String>) -> Node {
        self.health = health;
        self.status = status.into();
        self
    }

    /// Takes reason and message from the Ready condition when it is not True.
    fn explained_by_ready(mut self) -> Node {
        if let Some(ready) = self.condition(types::READY).filter(|c| c.status != "True").cloned() {
            self.reason = Some(ready.reason).filter(|r| !r.is_empty());
            self.message = Some(ready.message).filter(|m| !m.is_empty());
        }
        self
    }

    /// Health is Progressing while the controller has not yet seen the latest spec.
    fn unless_stale(mut self, generation: Option<i64>, observed: Option<i64>) -> Node {
        if self.health == Health::Ready && observed < generation {
            self.health = Health::Progressing;
            self.reason = Some("NotObservedYet".into());
            self.message = Some(format!("the operator has not reconciled generation {} yet", generation.unwrap_or(0)));
        }
        self
    }
}

pub fn cluster(cluster: &PrismCluster) -> Node {
    let status = cluster.status.clone().unwrap_or_default();
    let mut node = Node::new("PrismCluster", &cluster.metadata);
    node.cluster = cluster.metadata.name.clone();
    node.conditions = status.conditions.clone();
    node.ready = status.ready_components.clone();
    let health = match status.phase {
        Some(ClusterPhase::Running) => Health::Ready,
        Some(ClusterPhase::Pending) | None => Health::Progressing,
        Some(ClusterPhase::Degraded | ClusterPhase::Failed) => Health::Failing,
    };
    let phase = status.phase.map_or("Pending", ClusterPhase::as_str);
    let mut node = node.with_state(health, phase).explained_by_ready();
    if node.reason.as_deref() == Some("ComponentsNotReady") {
        // The groups' conditions name what is missing: more useful than "some components".
        let waiting: Vec<&str> = [types::BACKENDS_READY, types::ADMIN_READY, types::PROXY_READY, types::PATTERNS_READY]
            .iter()
            .filter_map(|t| node.condition(t).filter(|c| c.status == "False").map(|c| c.message.as_str()))
            .collect();
        node.message = Some(waiting.join("; ")).filter(|m| !m.is_empty());
    }
    if cluster.spec.paused {
        node.status = format!("{phase} (paused)");
    }
    node.unless_stale(cluster.metadata.generation, status.observed_generation)
}

pub fn namespace(namespace: &PrismNamespace) -> Node {
    let status = namespace.status.clone().unwrap_or_default();
    let mut node = Node::new("PrismNamespace", &namespace.metadata);
    node.cluster = Some(namespace.spec.cluster.clone());
    node.conditions = status.conditions.clone();
    if !status.patterns.is_empty() {
        let ready = status.patterns.iter().filter(|p| p.ready).count();
        node.ready = Some(format!("{ready}/{}", status.patterns.len()));
    }
    let phase = status.phase.map(|p| format!("{p:?}"));
    let health = match phase.as_deref() {
        Some("Ready") => Health::Ready,
        Some("Degraded" | "Failed") => Health::Failing,
        _ => Health::Progressing,
    };
    node.with_state(health, phase.unwrap_or_else(|| "Pending".into()))
        .explained_by_ready()
        .unless_stale(namespace.metadata.generation, status.observed_generation)
}

pub fn pattern(pattern: &PrismPattern) -> Node {
    let status = pattern.status.clone().unwrap_or_default();
    let mut node = Node::new("PrismPattern", &pattern.metadata);
    node.cluster = Some(pattern.spec.cluster.clone());
    node.conditions = status.conditions.clone();
    // Without spec.replicas an autoscaler decides (the status says how many), else one.
    let desired = pattern.spec.replicas.unwrap_or(status.replicas.max(1));
    node.ready = Some(format!("{}/{desired}", status.available_replicas));
    let health = match status.phase {
        Some(PatternPhase::Running) => Health::Ready,
        Some(PatternPhase::Degraded | PatternPhase::Failed) => Health::Failing,
        _ => Health::Progressing,
    };
    let phase = status.phase.map_or_else(|| "Pending".to_string(), |p| format!("{p:?}"));
    node.with_state(health, phase)
        .explained_by_ready()
        .unless_stale(pattern.metadata.generation, status.observed_generation)
}

/// A Deployment or a StatefulSet: their rollouts are read alike (their fields share names, not
/// a type).
pub trait Workload {
    const KIND: &'static str;
    fn meta(&self) -> &ObjectMeta;
    /// Replicas desired, ready and up to date; the generation observed; the conditions.
    fn rollout(&self) -> ([Option<i32>; 3], Option<i64>, Vec<Condition>);
}

/// One implementation for both: the same field names in two types.
macro_rules! impl_workload {
    ($type:ty, $kind:literal) => {
        impl Workload for $type {
            const KIND: &'static str = $kind;
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn rollout(&self) -> ([Option<i32>; 3], Option<i64>, Vec<Condition>) {
                let s = self.status.clone().unwrap_or_default();
                let conditions = s
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| condition(c.type_, c.status, c.reason, c.message, c.last_transition_time))
                    .collect();
                let desired = self.spec.as_ref().and_then(|x| x.replicas);
                ([desired, s.ready_replicas, s.updated_replicas], s.observed_generation, conditions)
            }
        }
    };
}

impl_workload!(Deployment, "Deployment");
impl_workload!(StatefulSet, "StatefulSet");

pub fn workload<W: Workload>(workload: &W) -> Node {
    let (counts, observed, conditions) = workload.rollout();
    Rollout::new(counts, observed, workload.meta()).judge(Node::new(W::KIND, workload.meta()), conditions)
}

/// Where a workload's rollout stands.
struct Rollout {
    desired: i32,
    ready: i32,
    updated: i32,
    /// Its controller has seen the latest spec.
    current: bool,
}

impl Rollout {
    /// From the replicas desired, ready and up to date (Deployments and StatefulSets name them
    /// alike) and the generation the workload's controller observed.
    fn new([desired, ready, updated]: [Option<i32>; 3], observed: Option<i64>, meta: &ObjectMeta) -> Rollout {
        Rollout {
            desired: desired.unwrap_or(1),
            ready: ready.unwrap_or(0),
            updated: updated.unwrap_or(0),
            current: observed >= meta.generation,
        }
    }

    /// Ready when every replica is ready and up to date; Failed past the progress deadline
    /// (a Progressing condition that is False); Progressing otherwise.
    fn judge(&self, mut node: Node, conditions: Vec<Condition>) -> Node {
        node.conditions = conditions;
        node.ready = Some(format!("{}/{}", self.ready, self.desired));
        if let Some(stalled) = node.condition("Progressing").filter(|c| c.status == "False").cloned() {
            node.reason = Some(stalled.reason);
            node.message = Some(stalled.message).filter(|m| !m.is_empty());
            return node.with_state(Health::Failing, "Failed");
        }
        if self.current && self.ready >= self.desired && self.updated >= self.desired {
            return node.with_state(Health::Ready, "Ready");
        }
        node.reason = Some("RollingOut".into());
        node.message = Some(format!(
            "{} of {} replicas ready, {} up to date",
            self.ready,
            self.desired,
            self.updated.min(self.desired)
        ));
        node.with_state(Health::Progressing, "Progressing")
    }
}

/// A condition of another shape (a workload's, KEDA's) as a metav1.Condition.
fn condition(
    type_: String,
    status: String,
    reason: Option<String>,
    message: Option<String>,
    last_transition_time: Option<Time>,
) -> Condition {
    Condition {
        type_,
        status,
        reason: reason.unwrap_or_default(),
        message: message.unwrap_or_default(),
        observed_generation: None,
        last_transition_time: last_transition_time.unwrap_or(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
    }
}

pub fn service(service: &Service) -> Node {
    let spec = service.spec.clone().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let kind = if headless { "Headless".to_string() } else { spec.type_.unwrap_or_else(|| "ClusterIP".into()) };
    Node::new("Service", &service.metadata).with_state(Health::None, kind)
}

/// A ConfigMap or a Secret: a name only (a Secret's data is never read).
pub fn named(kind: &str, meta: &ObjectMeta) -> Node {
    Node::new(kind, meta)
}

pub fn autoscaler(hpa: &HorizontalPodAutoscaler) -> Node {
    let spec = hpa.spec.clone().unwrap_or_default();
    let status = hpa.status.clone().unwrap_or_default();
    let mut node = Node::new("HorizontalPodAutoscaler", &hpa.metadata);
    node.ready = Some(format!("{}/{}", status.current_replicas.unwrap_or(0), status.desired_replicas));
    let range = format!("{}-{} replicas", spec.min_replicas.unwrap_or(1), spec.max_replicas);
    node.with_state(Health::None, range)
}

pub fn scaled_object(object: &DynamicObject) -> Node {
    let mut node = Node::new("ScaledObject", &object.metadata);
    let conditions = object.data.pointer("/status/conditions").cloned().unwrap_or_default();
    node.conditions = serde_json::from_value::<Vec<LooseJson>>(conditions)
        .unwrap_or_default()
        .into_iter()
        .map(|c| condition(c.type_, c.status, c.reason, c.message, None))
        .collect();
    match node.condition(types::READY).map(|c| c.status.clone()) {
        Some(s) if s == "True" => node.with_state(Health::Ready, "Ready"),
        Some(s) if s == "False" => node.with_state(Health::Failing, "NotReady").explained_by_ready(),
        _ => node.with_state(Health::Progressing, "Pending"),
    }
}

/// A condition as an unknown kind's status carries it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseJson {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

pub fn volume_claim(pvc: &PersistentVolumeClaim) -> Node {
    let node = Node::new("PersistentVolumeClaim", &pvc.metadata);
    let status = pvc.status.clone().unwrap_or_default();
    let size = pvc.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref());
    let size = size.and_then(|r| r.get("storage")).map(|q| q.0.clone());
    let mut node = match status.phase.as_deref() {
        Some("Bound") => node.with_state(Health::Ready, "Bound"),
        Some("Lost") => node.with_state(Health::Failing, "Lost"),
        _ => {
            let mut node = node.with_state(Health::Progressing, "Pending");
            node.reason = Some("VolumeNotBound".into());
            node.message = Some("waiting for a volume to be bound".into());
            node
        }
    };
    node.ready = size;
    node
}

pub fn disruption_budget(pdb: &PodDisruptionBudget) -> Node {
    let status = pdb.status.clone().unwrap_or_default();
    let mut node = Node::new("PodDisruptionBudget", &pdb.metadata);
    node.ready = Some(format!("{}/{}", status.current_healthy, status.desired_healthy));
    node.with_state(Health::None, format!("{} disruptions allowed", status.disruptions_allowed))
}

pub fn ingress(ingress: &Ingress) -> Node {
    let hosts: Vec<String> =
        ingress.spec.iter().flat_map(|s| s.rules.iter().flatten()).filter_map(|rule| rule.host.clone()).collect();
    let hosts = if hosts.is_empty() { "*".to_string() } else { hosts.join(",") };
    Node::new("Ingress", &ingress.metadata).with_state(Health::None, hosts)
}

pub fn service_monitor(object: &DynamicObject) -> Node {
    Node::new("ServiceMonitor", &object.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_saphyr::from_str(text).expect("fixture")
    }

    #[test]
    fn a_pending_cluster_says_which_groups_wait() {
        let cluster: PrismCluster = yaml(
            "metadata: {name: local, namespace: prism, generation: 1}\n\
             spec: {}\n\
             status:\n  phase: Pending\n  readyComponents: 2/3\n  observedGeneration: 1\n  conditions:\n\
             \x20 - {type: Ready, status: 'False', reason: ComponentsNotReady, message: m, lastTransitionTime: '2026-01-01T00:00:00Z'}\n\
             \x20 - {type: BackendsReady, status: 'False', reason: NotReady, message: 'backends not ready: redis', lastTransitionTime: '2026-01-01T00:00:00Z'}\n",
        );
        let node = cluster_node(&cluster);
        assert_eq!((node.health, node.status.as_str()), (Health::Progressing, "Pending"));
        assert_eq!(node.message.as_deref(), Some("backends not ready: redis"));
        assert_eq!(node.ready.as_deref(), Some("2/3"));
    }

    fn cluster_node(c: &PrismCluster) -> Node {
        cluster(c)
    }

    #[test]
    fn a_running_cluster_whose_new_generation_is_unseen_is_progressing() {
        let cluster: PrismCluster = yaml(
            "metadata: {name: local, namespace: prism, generation: 2}\nspec: {}\nstatus: {phase: Running, observedGeneration: 1}\n",
        );
        let node = cluster_node(&cluster);
        assert_eq!(node.health, Health::Progressing);
        assert_eq!(node.reason.as_deref(), Some("NotObservedYet"));
    }

    #[test]
    fn a_deployment_past_its_deadline_fails_and_one_rolling_out_progresses() {
        let stuck: Deployment = yaml(
            "metadata: {name: d, generation: 1}\nspec: {replicas: 2, selector: {}, template: {}}\n\
             status:\n  observedGeneration: 1\n  readyReplicas: 0\n  conditions:\n\
             \x20 - {type: Progressing, status: 'False', reason: ProgressDeadlineExceeded, message: 'too slow'}\n",
        );
        let node = workload(&stuck);
        assert_eq!((node.health, node.reason.as_deref()), (Health::Failing, Some("ProgressDeadlineExceeded")));
        let rolling: Deployment = yaml(
            "metadata: {name: d, generation: 2}\nspec: {replicas: 2, selector: {}, template: {}}\n\
             status: {observedGeneration: 2, readyReplicas: 1, updatedReplicas: 1}\n",
        );
        let node = workload(&rolling);
        assert_eq!((node.health, node.ready.as_deref()), (Health::Progressing, Some("1/2")));
        assert_eq!(node.message.as_deref(), Some("1 of 2 replicas ready, 1 up to date"));
    }

    #[test]
    fn owners_prefer_the_controller_reference() {
        let meta: ObjectMeta = yaml(
            "name: x\nownerReferences:\n\
             - {apiVersion: v1, kind: A, name: a, uid: '1'}\n\
             - {apiVersion: v1, kind: B, name: b, uid: '2', controller: true}\n",
        );
        assert_eq!(Node::new("ConfigMap", &meta).owner.map(|o| o.name), Some("b".to_string()));
    }
}
