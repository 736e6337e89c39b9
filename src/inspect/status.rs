//! `kubectl prism status CLUSTER`: a cluster's components and their readiness, its conditions in
//! plain words, and every object under it that is not ready, each with what to do.

use std::fmt::Write;

use prism_api::names::conditions as types;
use prism_api::v1beta1::{ComponentStatus, PrismCluster};
use serde::Serialize;

use super::advice::what_to_do;
use super::fetch::Snapshot;
use super::node::{self, Health, Node};
use super::text::{Look, explanation};
use super::tree::Forest;

/// What `status` reports of one cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cluster: Node,
    pub components: Vec<Component>,
    pub patterns: Vec<Component>,
    pub conditions: Vec<ConditionLine>,
    /// Objects under the cluster that are not ready, in tree order.
    pub problems: Vec<Problem>,
}

/// One component or pattern runner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Component {
    pub name: String,
    pub ready: bool,
    pub replicas: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One condition, and whether it is as it should be.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionLine {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub good: bool,
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<String>,
}

/// An object under the cluster that is not ready.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub object: Node,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<String>,
}

impl Report {
    /// Whether the cluster is Ready (Running, its latest spec seen): `status` exits 0 then.
    pub fn ready(&self) -> bool {
        self.cluster.health == Health::Ready
    }
}

/// The report of `cluster`, with the problems found in its tree.
pub fn report(cluster: &PrismCluster, forest: &Forest, snapshot: &Snapshot) -> Report {
    let node = node::cluster(cluster);
    let status = cluster.status.clone().unwrap_or_default();
    let components = status.admin_status.iter().chain(&status.proxy_status).chain(&status.backend_status);
    // An invalid spec explains every other condition: advice goes with it alone.
    let spec_invalid = node.condition(types::SPEC_VALID).is_some_and(|c| c.status == "False");
    let conditions = node
        .conditions
        .iter()
        .map(|c| condition_line(c, &node, snapshot))
        .map(|mut line| {
            if spec_invalid && line.type_ != types::SPEC_VALID {
                line.what_to_do = None;
            }
            line
        })
        .collect();
    let problems = forest
        .find(&node.namespace, &node.kind, &node.name)
        .map(|tree| tree.children.iter().flat_map(|c| c.walk()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !n.is_ready())
        .map(|n| Problem {
            what_to_do: n.reason.as_deref().and_then(|r| what_to_do(r, n, snapshot)),
            object: n.clone(),
        })
        .collect();
    Report {
        components: components.map(component).collect(),
        patterns: status.pattern_status.iter().map(component).collect(),
        conditions,
        problems,
        cluster: node,
    }
}

fn component(status: &ComponentStatus) -> Component {
    Component {
        name: status.name.clone(),
        ready: status.ready,
        replicas: format!("{}/{}", status.available_replicas, status.replicas),
        message: status.message.clone(),
    }
}

/// Paused, Degraded and Progressing are good when False; every other condition when True.
fn condition_line(
    c: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition,
    cluster: &Node,
    snapshot: &Snapshot,
) -> ConditionLine {
    let good_when_false = [types::PAUSED, types::DEGRADED, types::PROGRESSING].contains(&c.type_.as_str());
    let good = (c.status == "True") != good_when_false;
    ConditionLine {
        type_: c.type_.clone(),
        status: c.status.clone(),
        good,
        reason: c.reason.clone(),
        message: c.message.clone(),
        what_to_do: if good { None } else { what_to_do(&c.reason, cluster, snapshot) },
    }
}

/// The report as a person reads it.
pub fn render(report: &Report, look: &Look) -> String {
    let mut out = String::new();
    let cluster = &report.cluster;
    let _ = writeln!(
        out,
        "{} {}/{}: {}, {} components ready",
        look.bold("PrismCluster"),
        cluster.namespace,
        cluster.name,
        look.health(cluster.health, &cluster.status),
        cluster.ready.as_deref().unwrap_or("0/0")
    );
    if let Some(why) = explanation(cluster) {
        let _ = writeln!(out, "  {}", look.dim(&why));
    }
    section(&mut out, look, "COMPONENTS", &report.components);
    section(&mut out, look, "PATTERNS", &report.patterns);
    let _ = writeln!(out, "\n{}", look.bold("CONDITIONS"));
    for line in &report.conditions {
        let (mark, health) = if line.good { ("✓", Health::Ready) } else { ("✗", Health::Failing) };
        let mut text = format!("{} {}", look.health(health, mark), plain(&line.type_, &line.status));
        if !line.good || !line.message.is_empty() {
            let detail = if line.message.is_empty() {
                line.reason.clone()
            } else {
                format!("{}: {}", line.reason, line.message)
            };
            text.push_str(&format!(" ({detail})"));
        }
        let _ = writeln!(out, "  {text}");
        if let Some(advice) = &line.what_to_do {
            let _ = writeln!(out, "      what to do: {advice}");
        }
    }
    if !report.problems.is_empty() {
        let _ = writeln!(out, "\n{}", look.bold("NOT READY BELOW IT"));
        for problem in &report.problems {
            let node = &problem.object;
            let _ = writeln!(out, "  {} {}", node.reference(), look.health(node.health, &node.status));
            if let Some(why) = explanation(node) {
                let _ = writeln!(out, "      {}", look.dim(&why));
            }
            if let Some(advice) = &problem.what_to_do {
                let _ = writeln!(out, "      what to do: {advice}");
            }
        }
    }
    out
}

fn section(out: &mut String, look: &Look, title: &str, components: &[Component]) {
    if components.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", look.bold(title));
    let width = components.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in components {
        let (health, word) = if c.ready { (Health::Ready, "ready") } else { (Health::Progressing, "not ready") };
        let mut line = format!("  {:width$}  {:>5}  {}", c.name, c.replicas, look.health(health, word));
        if let Some(message) = c.message.as_deref().filter(|_| !c.ready) {
            line.push_str(&format!(": {message}"));
        }
        let _ = writeln!(out, "{line}");
    }
}

/// A condition in plain words: `Backends are ready`, `Spec is not valid`, `Paused: no`.
fn plain(type_: &str, status: &str) -> String {
    let yes = status == "True";
    let subject = match type_ {
        t if t == types::READY => "Cluster",
        t if t == types::SPEC_VALID => "Spec",
        t if t == types::BACKENDS_READY => "Backends",
        t if t == types::ADMIN_READY => "Admin",
        t if t == types::PROXY_READY => "Proxy",
        t if t == types::PATTERNS_READY => "Pattern runners",
        t if t == types::PAUSED => return format!("Paused: {}", if yes { "yes" } else { "no" }),
        t if t == types::OBSERVABILITY => {
            return format!("Observability {}", if yes { "as asked" } else { "not as asked" });
        }
        other => return format!("{other}: {status}"),
    };
    let plural = subject.ends_with('s');
    let verb = match (plural, yes) {
        (true, true) => "are",
        (true, false) => "are not",
        (false, true) => "is",
        (false, false) => "is not",
    };
    let adjective = if type_ == types::SPEC_VALID { "valid" } else { "ready" };
    format!("{subject} {verb} {adjective}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_sentences() {
        assert_eq!(plain("BackendsReady", "False"), "Backends are not ready");
        assert_eq!(plain("AdminReady", "True"), "Admin is ready");
        assert_eq!(plain("SpecValid", "False"), "Spec is not valid");
        assert_eq!(plain("Paused", "False"), "Paused: no");
        assert_eq!(plain("Observability", "False"), "Observability not as asked");
    }
}
