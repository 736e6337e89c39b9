//! The tree: each object under its owner (its controller owner reference; a Prism object without
//! one under the PrismCluster it names; a volume claim under the StatefulSet that made it), and
//! the objects with the operator's labels whose owner is gone apart, as orphans.

use std::collections::HashMap;

use serde::Serialize;

use super::node::Node;

/// An object and what hangs under it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tree {
    #[serde(flatten)]
    pub node: Node,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Tree>,
}

/// An object with the operator's labels whose owner is gone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Orphan {
    #[serde(flatten)]
    pub node: Node,
    /// Which owner is gone.
    pub orphaned: String,
}

/// Every tree of a scope, PrismClusters first, and the orphans.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Forest {
    pub items: Vec<Tree>,
    pub orphans: Vec<Orphan>,
}

/// Where a node hangs.
enum Place {
    Under(usize),
    Root,
    Orphan(String),
    /// The operator's own objects, of no cluster (its webhook certificate): not drawn.
    Outside,
}

/// The order of kinds under one parent: custom resources, workloads, then what serves them.
const KIND_ORDER: [&str; 14] = [
    "PrismCluster",
    "PrismNamespace",
    "PrismPattern",
    "StatefulSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    "PodDisruptionBudget",
    "Service",
    "Ingress",
    "ServiceMonitor",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER.iter().position(|k| *k == kind).unwrap_or(KIND_ORDER.len())
}

/// Hangs every node where it belongs.
pub fn build(mut nodes: Vec<Node>) -> Forest {
    nodes.sort_by(|a, b| (&a.namespace, kind_rank(&a.kind), &a.name).cmp(&(&b.namespace, kind_rank(&b.kind), &b.name)));
    let places: Vec<Place> = nodes.iter().map(|n| place(n, &nodes)).collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let (mut roots, mut orphans) = (Vec::new(), Vec::new());
    for (index, place) in places.into_iter().enumerate() {
        match place {
            Place::Under(parent) => children.entry(parent).or_default().push(index),
            Place::Root => roots.push(index),
            Place::Orphan(why) => orphans.push((index, why)),
            Place::Outside => {}
        }
    }
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    let items = roots.into_iter().filter_map(|r| grow(r, &mut slots, &children)).collect();
    let orphans = orphans
        .into_iter()
        .filter_map(|(index, orphaned)| slots[index].take().map(|node| Orphan { node, orphaned }))
        .collect();
    Forest { items, orphans }
}

/// The tree under `index`; each node is taken once, so that no cycle can loop.
fn grow(index: usize, slots: &mut [Option<Node>], children: &HashMap<usize, Vec<usize>>) -> Option<Tree> {
    let node = slots.get_mut(index)?.take()?;
    let below = children.get(&index).map(Vec::as_slice).unwrap_or_default();
    let children = below.iter().filter_map(|c| grow(*c, slots, children)).collect();
    Some(Tree { node, children })
}

fn place(node: &Node, nodes: &[Node]) -> Place {
    let same_namespace = |other: &&Node| other.namespace == node.namespace;
    if let Some(owner) = &node.owner {
        return match nodes.iter().position(|n| n.uid == owner.uid && n.namespace == node.namespace) {
            Some(parent) => Place::Under(parent),
            None => Place::Orphan(format!("its owner {}/{} is gone", owner.kind, owner.name)),
        };
    }
    let cluster = node.cluster.as_deref().filter(|_| node.kind != "PrismCluster");
    let parent_cluster =
        cluster.and_then(|c| nodes.iter().position(|n| n.kind == "PrismCluster" && n.name == c && same_namespace(&n)));
    if node.kind.starts_with("Prism") {
        return parent_cluster.map_or(Place::Root, Place::Under);
    }
    if node.kind == "PersistentVolumeClaim"
        && let Some(set) =
            nodes.iter().position(|n| n.kind == "StatefulSet" && same_namespace(&n) && claim_of(&node.name, &n.name))
    {
        return Place::Under(set);
    }
    match (parent_cluster, cluster) {
        (Some(parent), _) => Place::Under(parent),
        (None, Some(cluster)) => Place::Orphan(format!("its PrismCluster {cluster} is gone")),
        // Every child of a cluster carries its label: this one is the operator's own.
        (None, None) => Place::Outside,
    }
}

/// Whether claim `claim` was made from a volumeClaimTemplate of StatefulSet `set`: its name is
/// `<template>-<set>-<ordinal>`.
fn claim_of(claim: &str, set: &str) -> bool {
    claim
        .rsplit_once('-')
        .filter(|(_, ordinal)| !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
        .is_some_and(|(rest, _)| rest.ends_with(&format!("-{set}")))
}

impl Forest {
    /// Only the tree of PrismCluster `name` in `namespace`, and the orphans that name it.
    pub fn of_cluster(self, namespace: &str, name: &str) -> Option<Forest> {
        let is_it = |n: &Node| n.kind == "PrismCluster" && n.name == name && n.namespace == namespace;
        let tree = self.items.into_iter().find(|t| is_it(&t.node))?;
        let orphans = self
            .orphans
            .into_iter()
            .filter(|o| o.node.namespace == namespace && o.node.cluster.as_deref() == Some(name))
            .collect();
        Some(Forest { items: vec![tree], orphans })
    }

    /// Every node, depth first.
    pub fn walk(&self) -> Vec<&Node> {
        let mut out: Vec<&Node> = self.items.iter().flat_map(Tree::walk).collect();
        out.extend(self.orphans.iter().map(|o| &o.node));
        out
    }

    pub fn find(&self, namespace: &str, kind: &str, name: &str) -> Option<&Tree> {
        self.items.iter().find_map(|t| t.find(namespace, kind, name))
    }
}

impl Tree {
    /// This object and every object under it, depth first.
    pub fn walk(&self) -> Vec<&Node> {
        let mut out = vec![&self.node];
        out.extend(self.children.iter().flat_map(Tree::walk));
        out
    }

    pub fn find(&self, namespace: &str, kind: &str, name: &str) -> Option<&Tree> {
        if self.node.namespace == namespace && self.node.kind == kind && self.node.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(namespace, kind, name))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(kind: &str, name: &str, uid: &str, owner: Option<(&str, &str)>, cluster: Option<&str>) -> Node {
        let mut meta = ObjectMeta {
            name: Some(name.into()),
            namespace: Some("prism".into()),
            uid: Some(uid.into()),
            ..ObjectMeta::default()
        };
        if let Some((owner_kind, owner_uid)) = owner {
            meta.owner_references = Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                kind: owner_kind.into(),
                name: format!("{owner_kind}-owner"),
                uid: owner_uid.into(),
                controller: Some(true),
                ..Default::default()
            }]);
        }
        let mut node = Node::new(kind, &meta);
        node.cluster = cluster.map(String::from);
        node
    }

    fn shape(tree: &Tree, depth: usize, out: &mut Vec<String>) {
        out.push(format!("{}{}", "  ".repeat(depth), tree.node.reference()));
        for child in &tree.children {
            shape(child, depth + 1, out);
        }
    }

    #[test]
    fn objects_hang_under_their_owners_and_the_lost_ones_are_orphans() {
        let forest = build(vec![
            node("Deployment", "local-kv", "d1", Some(("PrismPattern", "p1")), Some("local")),
            node("PrismPattern", "local-kv", "p1", Some(("PrismCluster", "c1")), Some("local")),
            node("PrismCluster", "local", "c1", None, None),
            node("StatefulSet", "local-redis", "s1", Some(("PrismCluster", "c1")), Some("local")),
            node("PersistentVolumeClaim", "data-local-redis-0", "v1", None, Some("local")),
            node("PrismNamespace", "team", "n1", None, Some("local")),
            node("PrismPattern", "stray", "p2", None, Some("missing")),
            node("ConfigMap", "old", "m1", Some(("PrismCluster", "gone")), Some("old")),
            node("Secret", "old-credentials", "x1", None, Some("old")),
            node("Secret", "prism-operator-webhook-cert", "w1", None, None),
        ]);
        let mut lines = Vec::new();
        for tree in &forest.items {
            shape(tree, 0, &mut lines);
        }
        assert_eq!(
            lines,
            [
                "PrismCluster/local",
                "  PrismNamespace/team",
                "  PrismPattern/local-kv",
                "    Deployment/local-kv",
                "  StatefulSet/local-redis",
                "    PersistentVolumeClaim/data-local-redis-0",
                "PrismPattern/stray",
            ]
        );
        let orphans: Vec<(String, &str)> =
            forest.orphans.iter().map(|o| (o.node.reference(), o.orphaned.as_str())).collect();
        assert_eq!(
            orphans,
            [
                ("ConfigMap/old".to_string(), "its owner PrismCluster/PrismCluster-owner is gone"),
                ("Secret/old-credentials".to_string(), "its PrismCluster old is gone"),
            ]
        );
    }

    #[test]
    fn claims_belong_to_the_set_whose_name_they_carry() {
        assert!(claim_of("data-local-redis-0", "local-redis"));
        assert!(claim_of("data-local-redis-12", "local-redis"));
        assert!(!claim_of("data-local-redis-x", "local-redis"));
        assert!(!claim_of("data-other-redis-0", "local-redis"));
    }
}
