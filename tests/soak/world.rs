//! The world the soak drives: a fixed catalog of clusters and app teams' namespaces, the desired
//! state the schedule keeps of them, and the manifests that state renders to.
//!
//! The catalog is the largest world: the soak starts with every cluster, pattern, backend and
//! namespace of it, and the schedule only removes and restores parts, so that the memory at the
//! end is compared with the memory of a world at least as large.

use std::collections::{BTreeMap, BTreeSet};

use prism_api::v1beta1::PrismCluster;
use serde_json::{Value, json};

/// What happens to a cluster's data volumes when it (or a backend) goes. Fixed per cluster: the
/// invariant "under Retain no volume is ever deleted" needs to know it at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Retain,
    Delete,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::Retain => "Retain",
            Policy::Delete => "Delete",
        }
    }
}

/// A backend the catalog uses, with the two versions an image change switches between.
pub struct BackendPlan {
    pub name: &'static str,
    pub versions: [&'static str; 2],
    /// Whether it keeps data on a volume.
    pub storage: bool,
}

pub struct PatternPlan {
    pub name: &'static str,
    pub workload: &'static str,
    pub backends: &'static [&'static str],
    /// A volume per replica (StatefulSet runners only).
    pub storage: bool,
}

pub struct NamespacePlan {
    pub name: &'static str,
    pub patterns: &'static [&'static str],
    pub isolation: &'static str,
}

pub struct ClusterPlan {
    pub name: &'static str,
    pub policy: Policy,
    pub backends: &'static [BackendPlan],
    pub patterns: &'static [PatternPlan],
    /// The cluster's own `spec.namespaces[]`.
    pub namespaces: &'static [NamespacePlan],
}

/// An app team's PrismNamespace, created directly (not by a cluster).
pub struct AppNamespacePlan {
    pub name: &'static str,
    pub cluster: &'static str,
    pub patterns: &'static [&'static str],
    pub isolation: &'static str,
}

const REDIS: BackendPlan = BackendPlan { name: "redis", versions: ["7-alpine", "7.2-alpine"], storage: true };
const NATS: BackendPlan = BackendPlan { name: "nats", versions: ["2.10-alpine", "2.11-alpine"], storage: false };
const MINIO: BackendPlan = BackendPlan {
    name: "minio",
    versions: ["RELEASE.2025-09-07T16-13-09Z", "RELEASE.2025-10-15T17-29-55Z"],
    storage: true,
};
const POSTGRES: BackendPlan = BackendPlan { name: "postgres", versions: ["16-alpine", "17-alpine"], storage: true };

pub const CLUSTERS: &[ClusterPlan] = &[
    ClusterPlan {
        name: "alpha",
        policy: Policy::Retain,
        backends: &[REDIS, NATS, MINIO],
        patterns: &[
            PatternPlan { name: "keyvalue", workload: "Deployment", backends: &["redis"], storage: false },
            PatternPlan { name: "consumer", workload: "Deployment", backends: &["nats"], storage: false },
            PatternPlan { name: "producer", workload: "Deployment", backends: &["nats"], storage: false },
            PatternPlan { name: "mailbox", workload: "StatefulSet", backends: &["minio", "sqlite"], storage: true },
        ],
        namespaces: &[
            NamespacePlan { name: "orders", patterns: &["keyvalue", "consumer"], isolation: "namespace" },
            NamespacePlan { name: "audit", patterns: &["mailbox"], isolation: "none" },
        ],
    },
    ClusterPlan {
        name: "beta",
        policy: Policy::Retain,
        backends: &[REDIS, POSTGRES],
        patterns: &[
            PatternPlan { name: "keyvalue", workload: "Deployment", backends: &["memstore"], storage: false },
            PatternPlan { name: "claimcheck", workload: "Deployment", backends: &["redis"], storage: false },
            PatternPlan { name: "mailbox", workload: "StatefulSet", backends: &["postgres"], storage: true },
        ],
        namespaces: &[],
    },
    ClusterPlan {
        name: "gamma",
        policy: Policy::Delete,
        backends: &[REDIS, NATS],
        patterns: &[
            PatternPlan { name: "keyvalue", workload: "StatefulSet", backends: &["redis"], storage: true },
            PatternPlan { name: "consumer", workload: "Deployment", backends: &["nats"], storage: false },
            PatternPlan { name: "producer", workload: "Deployment", backends: &["redis"], storage: false },
        ],
        namespaces: &[NamespacePlan { name: "events", patterns: &["consumer"], isolation: "session" }],
    },
];

pub const APP_NAMESPACES: &[AppNamespacePlan] = &[
    AppNamespacePlan {
        name: "payments",
        cluster: "alpha",
        patterns: &["keyvalue", "consumer"],
        isolation: "namespace",
    },
    AppNamespacePlan { name: "search", cluster: "beta", patterns: &["keyvalue"], isolation: "none" },
    AppNamespacePlan { name: "ledger", cluster: "gamma", patterns: &["keyvalue", "producer"], isolation: "namespace" },
];

/// A pattern name no cluster defines: an app team's typo, reported by its namespace.
pub const UNKNOWN_PATTERN: &str = "typo";

/// Proxy image tags an image change switches between.
pub const PROXY_TAGS: [&str; 2] = ["0.1.0", "0.1.1"];

/// The policy of the cluster named `name` (Retain for names outside the catalog: the default).
pub fn policy_of(name: &str) -> Policy {
    CLUSTERS.iter().find(|c| c.name == name).map_or(Policy::Retain, |c| c.policy)
}

/// A cluster's desired spec, in the catalog's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub proxy_replicas: i32,
    pub autoscaling: bool,
    pub proxy_tag: usize,
    /// Enabled backends, each with the index of its version.
    pub backends: BTreeMap<&'static str, usize>,
    /// Patterns, each with its replicas.
    pub patterns: BTreeMap<&'static str, i32>,
    pub namespaces: BTreeSet<&'static str>,
    pub paused: bool,
}

impl ClusterSpec {
    /// Everything of the plan, valid and running.
    pub fn full(plan: &ClusterPlan) -> ClusterSpec {
        ClusterSpec {
            proxy_replicas: 1,
            autoscaling: false,
            proxy_tag: 0,
            backends: plan.backends.iter().map(|b| (b.name, 0)).collect(),
            patterns: plan.patterns.iter().map(|p| (p.name, 1)).collect(),
            namespaces: plan.namespaces.iter().map(|n| n.name).collect(),
            paused: false,
        }
    }
}

/// An app team's namespace's desired spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppNamespaceSpec {
    pub patterns: Vec<&'static str>,
    pub max_sessions: i64,
}

impl AppNamespaceSpec {
    pub fn full(plan: &AppNamespacePlan) -> AppNamespaceSpec {
        AppNamespaceSpec { patterns: plan.patterns.to_vec(), max_sessions: 500 }
    }
}

/// The desired state of the whole world: `None` where the object is meant to be absent.
#[derive(Clone, Debug)]
pub struct World {
    pub clusters: BTreeMap<&'static str, Option<ClusterSpec>>,
    pub app_namespaces: BTreeMap<&'static str, Option<AppNamespaceSpec>>,
}

impl World {
    /// The whole catalog.
    pub fn full() -> World {
        World {
            clusters: CLUSTERS.iter().map(|c| (c.name, Some(ClusterSpec::full(c)))).collect(),
            app_namespaces: APP_NAMESPACES.iter().map(|n| (n.name, Some(AppNamespaceSpec::full(n)))).collect(),
        }
    }
}

pub fn cluster_plan(name: &str) -> &'static ClusterPlan {
    CLUSTERS.iter().find(|c| c.name == name).expect("a cluster of the catalog")
}

pub fn app_namespace_plan(name: &str) -> &'static AppNamespacePlan {
    APP_NAMESPACES.iter().find(|n| n.name == name).expect("an app namespace of the catalog")
}

/// The PrismCluster manifest of `spec`.
pub fn cluster_manifest(plan: &ClusterPlan, spec: &ClusterSpec, namespace: &str) -> Value {
    let mut proxy = json!({"replicas": spec.proxy_replicas, "image": {"tag": PROXY_TAGS[spec.proxy_tag]}});
    if spec.autoscaling {
        proxy["autoscaling"] = json!({"enabled": true, "minReplicas": 1, "maxReplicas": 4, "targetCPU": 70});
    }
    let backends: serde_json::Map<String, Value> = plan
        .backends
        .iter()
        .filter_map(|b| spec.backends.get(b.name).map(|version| (b, *version)))
        .map(|(b, version)| {
            let mut backend = json!({"enabled": true, "version": b.versions[version]});
            if b.storage {
                backend["storage"] = json!("1Gi");
            }
            (b.name.to_string(), backend)
        })
        .collect();
    let patterns: Vec<Value> = plan
        .patterns
        .iter()
        .filter_map(|p| spec.patterns.get(p.name).map(|replicas| (p, *replicas)))
        .map(|(p, replicas)| {
            let mut pattern =
                json!({"name": p.name, "workload": p.workload, "replicas": replicas, "backends": p.backends});
            if p.storage {
                pattern["storage"] = json!({"size": "1Gi"});
            }
            pattern
        })
        .collect();
    let namespaces: Vec<Value> = plan
        .namespaces
        .iter()
        .filter(|n| spec.namespaces.contains(n.name))
        .map(|n| json!({"name": n.name, "patterns": n.patterns, "isolation": n.isolation}))
        .collect();
    // A user of the Delete policy confirms, as the data-safety webhook asks, that its data may go.
    let annotations = match plan.policy {
        Policy::Delete => json!({prism_operator::webhook::admission::CONFIRM_DATA_DELETION: plan.name}),
        Policy::Retain => json!({}),
    };
    json!({
        "apiVersion": "prism.io/v1beta1",
        "kind": "PrismCluster",
        "metadata": {"name": plan.name, "namespace": namespace, "annotations": annotations},
        "spec": {
            "proxy": proxy,
            "backends": backends,
            "patterns": patterns,
            "namespaces": namespaces,
            "paused": spec.paused,
            "deletionPolicy": plan.policy.as_str(),
        }
    })
}

/// The PrismCluster `spec` describes (named as in the catalog, in no namespace).
pub fn cluster_object(plan: &ClusterPlan, spec: &ClusterSpec) -> PrismCluster {
    serde_json::from_value(cluster_manifest(plan, spec, "soak")).expect("the catalog renders PrismClusters")
}

/// The PrismNamespace manifest of an app team's namespace.
pub fn app_namespace_manifest(plan: &AppNamespacePlan, spec: &AppNamespaceSpec, namespace: &str) -> Value {
    json!({
        "apiVersion": "prism.io/v1beta1",
        "kind": "PrismNamespace",
        "metadata": {"name": plan.name, "namespace": namespace},
        "spec": {
            "cluster": plan.cluster,
            "patterns": spec.patterns,
            "isolation": plan.isolation,
            "quota": {"maxSessions": spec.max_sessions},
        }
    })
}

/// The children of a live cluster that a user might delete by hand, as `kind/name` for kubectl:
/// workloads, Services, configuration, credentials, child PrismPatterns and PrismNamespaces.
/// (Never a volume: deleting data is the user's own decision, not something to repair.)
pub fn deletable_children(plan: &ClusterPlan, spec: &ClusterSpec) -> Vec<String> {
    let c = plan.name;
    let mut children = vec![
        format!("deployment/{c}-admin"),
        format!("deployment/{c}-proxy"),
        format!("service/{c}-admin"),
        format!("service/{c}-proxy"),
        format!("configmap/{c}-proxy-config"),
    ];
    for backend in plan.backends.iter().filter(|b| spec.backends.contains_key(b.name)) {
        children.push(format!("statefulset/{c}-{}", backend.name));
        children.push(format!("service/{c}-{}", backend.name));
        if backend.name != "nats" {
            children.push(format!("secret/{c}-{}-credentials", backend.name));
        }
    }
    for pattern in plan.patterns.iter().filter(|p| spec.patterns.contains_key(p.name)) {
        children.push(format!("prismpattern/{c}-{}", pattern.name));
        children.push(format!("{}/{c}-{}", pattern.workload.to_lowercase(), pattern.name));
        children.push(format!("configmap/{c}-{}-config", pattern.name));
    }
    for namespace in plan.namespaces.iter().filter(|n| spec.namespaces.contains(n.name)) {
        children.push(format!("prismnamespace/{c}-{}", namespace.name));
    }
    if spec.autoscaling {
        children.push(format!("horizontalpodautoscaler/{c}-proxy"));
    }
    children
}

/// The PrismPatterns kubectl may tune: a live cluster's runners and the dedicated runners of its
/// namespaces with isolation `namespace`.
pub fn tunable_patterns(world: &World) -> Vec<String> {
    let mut names = Vec::new();
    for plan in CLUSTERS {
        let Some(Some(spec)) = world.clusters.get(plan.name) else { continue };
        names.extend(spec.patterns.keys().map(|p| format!("{}-{p}", plan.name)));
        for namespace in plan.namespaces.iter().filter(|n| n.isolation == "namespace") {
            if spec.namespaces.contains(namespace.name) {
                names.extend(namespace.patterns.iter().map(|p| format!("{}-{}-{p}", plan.name, namespace.name)));
            }
        }
    }
    for plan in APP_NAMESPACES.iter().filter(|n| n.isolation == "namespace") {
        if let Some(Some(spec)) = world.app_namespaces.get(plan.name) {
            let known = spec.patterns.iter().filter(|p| **p != UNKNOWN_PATTERN);
            names.extend(known.map(|p| format!("{}-{p}", plan.name)));
        }
    }
    names
}
