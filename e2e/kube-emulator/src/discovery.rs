//! Discovery (aggregated apidiscovery.k8s.io/v2 and legacy) and /version.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

pub const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The version the emulator claims (matches the k8s-openapi feature the project targets).
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-emulator",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// A subresource as discovery lists it.
struct Subresource {
    name: &'static str,
    /// (group, version, kind) of what it answers; None: the resource's own kind.
    kind: Option<(&'static str, &'static str, &'static str)>,
    verbs: &'static [&'static str],
}

const READ_WRITE: &[&str] = &["get", "patch", "update"];

fn subresources(rt: &ResourceType, version: &str) -> Vec<Subresource> {
    let mut subs = Vec::new();
    if rt.has_status(version) {
        subs.push(Subresource { name: "status", kind: None, verbs: READ_WRITE });
    }
    if rt.scale(version).is_some() || rt.group == "apps" {
        subs.push(Subresource { name: "scale", kind: Some(("autoscaling", "v1", "Scale")), verbs: READ_WRITE });
    }
    if rt.group.is_empty() && rt.plural == "namespaces" {
        subs.push(Subresource { name: "finalize", kind: None, verbs: &["update"] });
    }
    if rt.group.is_empty() && rt.plural == "pods" {
        // kubectl drain evicts only where discovery lists pods/eviction (policy/v1 Eviction).
        subs.push(Subresource { name: "eviction", kind: Some(("policy", "v1", "Eviction")), verbs: &["create"] });
        subs.push(Subresource { name: "resize", kind: None, verbs: READ_WRITE });
    }
    if rt.group.is_empty() && rt.plural == "serviceaccounts" {
        let token_request = ("authentication.k8s.io", "v1", "TokenRequest");
        subs.push(Subresource { name: "token", kind: Some(token_request), verbs: &["create"] });
    }
    subs
}

fn aggregated_resource(rt: &ResourceType, version: &str) -> Value {
    let subresources: Vec<Value> = subresources(rt, version)
        .into_iter()
        .map(|sub| {
            let (g, v, k) = sub.kind.unwrap_or((rt.group.as_str(), version, rt.kind.as_str()));
            json!({"subresource": sub.name, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": sub.verbs})
        })
        .collect();
    let mut r = json!({
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": version, "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": rt.verbs,
        "subresources": subresources,
    });
    if !rt.short_names.is_empty() {
        r["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        r["categories"] = json!(rt.categories);
    }
    r
}

/// `/api` (legacy = true) or `/apis` as an APIGroupDiscoveryList.
pub fn aggregated(reg: &Registry, legacy: bool) -> Value {
    let items: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> =
                        reg.in_group_version(&group, v).iter().map(|rt| aggregated_resource(rt, v)).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let meta = if group.is_empty() { json!({}) } else { json!({"name": group}) };
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Legacy `/api`.
pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    let preferred = vs.first().cloned().unwrap_or(json!({}));
    json!({"name": group, "versions": vs, "preferredVersion": preferred})
}

/// Legacy `/apis`.
pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> =
        reg.groups().iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_entry(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/apis/{group}`.
pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let (_, versions) = reg.groups().into_iter().find(|(g, _)| g == group)?;
    let mut g = group_entry(group, &versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// Legacy `/api/v1` or `/apis/{group}/{version}`.
pub fn api_resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = reg.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for rt in &types {
        let mut r = json!({
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": rt.verbs,
        });
        if !rt.short_names.is_empty() {
            r["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            r["categories"] = json!(rt.categories);
        }
        resources.push(r);
        for sub in subresources(rt, version) {
            let kind = sub.kind.map_or(rt.kind.as_str(), |(_, _, k)| k);
            let mut r = json!({
                "name": format!("{}/{}", rt.plural, sub.name), "singularName": "", "namespaced": rt.namespaced,
                "kind": kind, "verbs": sub.verbs,
            });
            // Another kind's group and version are named (kubectl drain looks for pods/eviction
            // with policy/v1 here before it evicts rather than deletes).
            if let Some((g, v, _)) = sub.kind {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            resources.push(r);
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}
