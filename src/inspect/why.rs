//! `kubectl prism why KIND/NAME`: from an object that is not Ready, down its children and across
//! to what it depends on (a pattern's backends, a namespace's runners, a paused cluster), to the
//! first object whose own state explains it: the root cause.

use std::fmt::Write;

use prism_api::names::labels;
use serde::Serialize;

use super::advice::what_to_do;
use super::fetch::Snapshot;
use super::node::{Health, Node};
use super::text::{Look, explanation};
use super::tree::Forest;

/// Reasons that are the object's own doing (its spec, or something missing from the cluster):
/// the chain ends there.
const OWN_CAUSES: [&str; 10] = [
    "BackendNotEnabled",
    "BackendNotSupported",
    "UnknownPatternType",
    "PatternNotFound",
    "ClusterNotFound",
    "InvalidPodOverrides",
    "RunnerNameClash",
    "KedaNotInstalled",
    "ServiceMonitorAPIMissing",
    "LokiTargetMissing",
];

/// One object of the chain, and how it relates to the one before.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// `its runner`, `its backend`, `its owner`, ... (empty for the first).
    pub relation: String,
    pub object: Node,
}

/// The chain from the object asked about to its root cause.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    pub links: Vec<Link>,
    /// The last link's own explanation (none when the object is ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<String>,
}

impl Chain {
    pub fn ready(&self) -> bool {
        self.root_cause.is_none()
    }
}

/// Follows `start` to its root cause.
pub fn explain(start: &Node, forest: &Forest, snapshot: &Snapshot) -> Chain {
    let mut links = vec![Link { relation: String::new(), object: start.clone() }];
    if let Some(orphan) = forest.orphans.iter().find(|o| o.node.uid == start.uid && o.node.kind == start.kind) {
        let mut orphaned = start.clone();
        orphaned.reason = Some("Orphaned".into());
        let root_cause = Some(format!("{} is an orphan: {}", start.reference(), orphan.orphaned));
        let what_to_do = what_to_do("Orphaned", &orphaned, snapshot);
        return Chain { links, root_cause, what_to_do };
    }
    if start.is_ready() {
        return Chain { links, root_cause: None, what_to_do: None };
    }
    while let Some((relation, next)) = links.last().and_then(|l| next_cause(&l.object, forest, snapshot)) {
        if links.iter().any(|l| l.object.uid == next.uid && l.object.kind == next.kind) {
            break;
        }
        links.push(Link { relation: relation.to_string(), object: next.clone() });
    }
    let last = &links[links.len() - 1].object;
    let root_cause = Some(root_cause(last));
    let what_to_do = last.reason.as_deref().and_then(|r| what_to_do(r, last, snapshot));
    Chain { links, root_cause, what_to_do }
}

fn root_cause(node: &Node) -> String {
    let detail = explanation(node).unwrap_or_else(|| node.status.clone());
    format!("{} is {}: {detail}", node.reference(), node.status)
}

/// The object that explains why `node` is not ready, if another one does.
fn next_cause<'a>(node: &Node, forest: &'a Forest, snapshot: &Snapshot) -> Option<(&'static str, &'a Node)> {
    if node.is_ready() || node.reason.as_deref().is_some_and(|r| OWN_CAUSES.contains(&r)) {
        return None;
    }
    let find = |kind: &str, name: &str| forest.find(&node.namespace, kind, name).map(|t| &t.node);
    if node.reason.as_deref() == Some("ClusterPaused") {
        return node.cluster.as_deref().and_then(|c| find("PrismCluster", c)).map(|n| ("its cluster", n));
    }
    let mut candidates: Vec<(&'static str, &Node)> = Vec::new();
    match node.kind.as_str() {
        "PrismPattern" => {
            candidates.extend(backends_of(node, forest, snapshot).into_iter().map(|n| ("its backend", n)))
        }
        "PrismNamespace" => candidates.extend(
            runners_of(node, snapshot).iter().filter_map(|r| find("PrismPattern", r)).map(|n| ("its runner", n)),
        ),
        _ => {}
    }
    let tree = forest.find(&node.namespace, &node.kind, &node.name)?;
    candidates.extend(tree.children.iter().map(|c| ("its child", &c.node)));
    // A failing object explains more than one still on its way; among equals, the first in
    // dependency order (backends, then workloads, then what uses them).
    candidates.retain(|(_, n)| !n.is_ready());
    candidates.sort_by_key(|(_, n)| (n.health != Health::Failing, dependency_rank(n)));
    candidates.into_iter().next()
}

fn dependency_rank(node: &Node) -> u8 {
    match node.kind.as_str() {
        "StatefulSet" | "PersistentVolumeClaim" => 0,
        "Deployment" => 1,
        "PrismPattern" => 2,
        "PrismNamespace" => 3,
        _ => 4,
    }
}

/// The backend StatefulSets of the cluster a pattern runs against, for the backends it uses.
fn backends_of<'a>(node: &Node, forest: &'a Forest, snapshot: &Snapshot) -> Vec<&'a Node> {
    let Some(pattern) = snapshot.patterns.iter().find(|p| {
        p.metadata.name.as_deref() == Some(node.name.as_str())
            && p.metadata.namespace.as_deref() == Some(&node.namespace)
    }) else {
        return Vec::new();
    };
    let uses = |n: &&Node| {
        n.kind == "StatefulSet"
            && n.namespace == node.namespace
            && n.cluster.as_deref() == Some(pattern.spec.cluster.as_str())
            && n.labels.get(labels::BACKEND).is_some_and(|b| pattern.spec.backends.iter().any(|u| u.name.as_str() == b))
    };
    forest.walk().into_iter().filter(uses).collect()
}

/// The runners that serve a namespace's patterns, as its status resolved them.
fn runners_of(node: &Node, snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .namespaces
        .iter()
        .find(|n| {
            n.metadata.name.as_deref() == Some(node.name.as_str())
                && n.metadata.namespace.as_deref() == Some(&node.namespace)
        })
        .and_then(|n| n.status.as_ref())
        .map(|s| s.patterns.iter().map(|p| p.runner.clone()).collect())
        .unwrap_or_default()
}

/// The chain as a person reads it.
pub fn render(chain: &Chain, look: &Look) -> String {
    let mut out = String::new();
    for (index, link) in chain.links.iter().enumerate() {
        let node = &link.object;
        let word = match node.health {
            Health::None => "present (it has no readiness)",
            Health::Ready => "Ready",
            Health::Progressing | Health::Failing => "not Ready",
        };
        let state = look.health(node.health, word);
        let detail = explanation(node).map(|e| format!(": {e}")).unwrap_or_default();
        if index == 0 {
            let _ = writeln!(out, "{} is {state}{detail}", look.bold(&node.reference()));
        } else {
            let _ = writeln!(out, "  <- {} {} is {state}{detail}", link.relation, look.bold(&node.reference()));
        }
    }
    if let Some(cause) = &chain.root_cause {
        let _ = writeln!(out, "root cause: {cause}");
    }
    if let Some(advice) = &chain.what_to_do {
        let _ = writeln!(out, "what to do: {advice}");
    }
    out
}
