//! The resource types the emulator serves: a built-in table plus CRDs registered at runtime.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::schema::CompiledSchema;
use crate::ssa::Structure;

/// When `metadata.generation` moves, per kind (see the spec, item 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationRule {
    /// No generation at all (ConfigMap, Secret, Service, Lease, ...).
    None,
    /// Bumped when `spec` changes (StatefulSet, ReplicaSet, PDB, Ingress, CRD).
    Spec,
    /// Deployment: `spec` or annotations.
    SpecAndAnnotations,
    /// Custom resources: anything outside `metadata` (and outside `status` with the subresource).
    AllButMetadata,
}

/// One `additionalPrinterColumns` entry of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// Paths of the scale subresource of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// Per-version facts of a custom resource.
#[derive(Debug, Clone, Default)]
pub struct VersionInfo {
    pub printer_columns: Vec<PrinterColumn>,
    /// The raw `openAPIV3Schema` (served in OpenAPI, compiled by the schema module).
    pub schema: Option<Value>,
    /// Compiled at registration; None when the version has no schema.
    pub compiled: Option<Arc<CompiledSchema>>,
    /// How server-side apply merges this version's objects.
    pub structure: Option<Arc<Structure>>,
    /// Field selector names, e.g. `spec.color` (from `.spec.color`).
    pub selectable_fields: Vec<String>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// `deprecated` and `deprecationWarning`: see [`ResourceType::deprecation`].
    pub deprecated: bool,
    pub deprecation_warning: Option<String>,
}

/// A servable resource.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, most preferred first.
    pub versions: Vec<String>,
    pub storage_version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    /// Built-ins: whether a `status` subresource exists. CRs: see `VersionInfo::status`.
    pub status: bool,
    pub generation: GenerationRule,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub custom: bool,
    /// For CRs, by version name.
    pub version_info: BTreeMap<String, VersionInfo>,
    /// Objects live under this storage key (core and events.k8s.io Events share one).
    pub storage: String,
    /// The verbs discovery lists: the standard ones, or `create` alone for the reviews (access,
    /// rules and token reviews), which are answered at once and never stored.
    pub verbs: &'static [&'static str],
    /// CRDs with `spec.conversion.strategy: Webhook`: the webhook's `clientConfig` (else objects
    /// change version by their apiVersion alone).
    pub conversion_webhook: Option<Value>,
}

pub const STANDARD_VERBS: [&str; 8] =
    ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// The verbs of a review: POST it, read the answer in its status.
pub const REVIEW_VERBS: [&str; 1] = ["create"];

impl ResourceType {
    /// The warning every request at a deprecated `version` gets: its `deprecationWarning`, or
    /// the API server's default, which names the preferred version that is not deprecated.
    pub fn deprecation(&self, version: &str) -> Option<String> {
        let info = self.version_info.get(version).filter(|info| info.deprecated)?;
        if let Some(warning) = &info.deprecation_warning {
            return Some(warning.clone());
        }
        let deprecated = format!("{}/{version} {} is deprecated", self.group, self.kind);
        let current = self.versions.iter().find(|v| self.version_info.get(*v).is_some_and(|i| !i.deprecated));
        Some(match current {
            Some(current) => format!("{deprecated}; use {}/{current} {}", self.group, self.kind),
            None => deprecated,
        })
    }

    /// `group/plural`, the key under which objects are stored.
    pub fn key(&self) -> &str {
        &self.storage
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() { version.to_string() } else { format!("{}/{}", self.group, version) }
    }

    /// `Kind` or `Kind.group`, as 422 messages name a type.
    pub fn kind_group(&self) -> String {
        if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) }
    }

    pub fn has_status(&self, version: &str) -> bool {
        if self.custom { self.version_info.get(version).is_some_and(|v| v.status) } else { self.status }
    }

    pub fn scale(&self, version: &str) -> Option<&ScalePaths> {
        self.version_info.get(version).and_then(|v| v.scale.as_ref())
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// A review (SelfSubjectAccessReview, TokenReview, ...): created and answered, never stored.
    pub fn is_review(&self) -> bool {
        self.verbs == REVIEW_VERBS
    }

    pub fn subject<'a>(&'a self, name: &'a str) -> crate::errors::Subject<'a> {
        crate::errors::Subject { group: &self.group, plural: &self.plural, name }
    }
}

/// Columns of a built-in table row description: (group, version, kind, plural, namespaced,
/// status, generation, short names, categories).
type BuiltIn = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    GenerationRule,
    &'static [&'static str],
    &'static [&'static str],
);

const BUILT_INS: &[BuiltIn] = {
    use GenerationRule::{None as N, Spec as S, SpecAndAnnotations as SA};
    &[
        ("", "v1", "Namespace", "namespaces", false, true, N, &["ns"], &[]),
        ("", "v1", "ConfigMap", "configmaps", true, false, N, &["cm"], &[]),
        ("", "v1", "Secret", "secrets", true, false, N, &[], &[]),
        ("", "v1", "Service", "services", true, true, N, &["svc"], &["all"]),
        ("", "v1", "ServiceAccount", "serviceaccounts", true, false, N, &["sa"], &[]),
        ("", "v1", "Pod", "pods", true, true, N, &["po"], &["all"]),
        ("", "v1", "Event", "events", true, false, N, &["ev"], &[]),
        ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true, N, &["pvc"], &[]),
        ("", "v1", "Endpoints", "endpoints", true, false, N, &["ep"], &[]),
        ("", "v1", "PersistentVolume", "persistentvolumes", false, true, N, &["pv"], &[]),
        ("", "v1", "Node", "nodes", false, true, N, &["no"], &[]),
        ("", "v1", "ResourceQuota", "resourcequotas", true, true, N, &["quota"], &[]),
        ("", "v1", "LimitRange", "limitranges", true, false, N, &["limits"], &[]),
        ("", "v1", "ReplicationController", "replicationcontrollers", true, true, N, &["rc"], &["all"]),
        ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false, N, &[], &[]),
        ("apps", "v1", "ControllerRevision", "controllerrevisions", true, false, N, &[], &[]),
        ("batch", "v1", "CronJob", "cronjobs", true, true, S, &["cj"], &["all"]),
        ("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, false, N, &["sc"], &[]),
        ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, false, N, &["pc"], &[]),
        ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, false, N, &[], &[]),
        (
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            false,
            N,
            &[],
            &["api-extensions"],
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            false,
            false,
            N,
            &[],
            &["api-extensions"],
        ),
        ("events.k8s.io", "v1", "Event", "events", true, false, N, &["ev"], &[]),
        ("apps", "v1", "Deployment", "deployments", true, true, SA, &["deploy"], &["all"]),
        ("apps", "v1", "StatefulSet", "statefulsets", true, true, S, &["sts"], &["all"]),
        ("apps", "v1", "ReplicaSet", "replicasets", true, true, S, &["rs"], &["all"]),
        ("apps", "v1", "DaemonSet", "daemonsets", true, true, S, &["ds"], &["all"]),
        ("batch", "v1", "Job", "jobs", true, true, S, &[], &["all"]),
        ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, true, N, &["hpa"], &["all"]),
        ("networking.k8s.io", "v1", "Ingress", "ingresses", true, true, S, &["ing"], &[]),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, false, S, &["netpol"], &[]),
        ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, true, S, &["pdb"], &[]),
        ("coordination.k8s.io", "v1", "Lease", "leases", true, false, N, &[], &[]),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false, N, &[], &[]),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false, N, &[], &[]),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false, N, &[], &[]),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false, N, &[], &[]),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
            S,
            &["crd", "crds"],
            &["api-extensions"],
        ),
    ]
};

/// The reviews: (group, kind, plural, namespaced), all of version v1.
const REVIEWS: &[(&str, &str, &str, bool)] = &[
    ("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews", false),
    ("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews", false),
    ("authorization.k8s.io", "LocalSubjectAccessReview", "localsubjectaccessreviews", true),
    ("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews", false),
    ("authentication.k8s.io", "TokenReview", "tokenreviews", false),
    ("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", false),
];

/// All servable types, built-in first.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
    /// Bumped on every CRD change (OpenAPI hashes, discovery ETags).
    pub generation: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        let reviews = REVIEWS.iter().map(|&(group, kind, plural, namespaced)| {
            let mut t = built_in(&(group, "v1", kind, plural, namespaced, false, GenerationRule::None, &[], &[]));
            t.verbs = &REVIEW_VERBS;
            t
        });
        let types = BUILT_INS.iter().map(built_in).chain(reviews).map(Arc::new).collect();
        Self { types, generation: 1 }
    }

    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// The type served at `/apis/{group}/{version}/{plural}`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.group == group && t.plural == plural && t.serves(version)).cloned()
    }

    /// The type of a kind in a group, any version.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.group == group && t.kind == kind).cloned()
    }

    pub fn by_storage(&self, storage: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.storage == storage).cloned()
    }

    /// Adds or replaces a custom resource type (matched by group and plural).
    pub fn upsert_custom(&mut self, t: ResourceType) {
        self.types.retain(|x| !(x.group == t.group && x.plural == t.plural));
        self.types.push(Arc::new(t));
        self.generation += 1;
    }

    pub fn remove_custom(&mut self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        let pos = self.types.iter().position(|x| x.custom && x.group == group && x.plural == plural)?;
        self.generation += 1;
        Some(self.types.remove(pos))
    }

    /// Groups with their served versions, in discovery order (preferred version first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            let entry = match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some(e) => e,
                None => {
                    out.push((t.group.clone(), Vec::new()));
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            for v in &t.versions {
                if !entry.1.contains(v) {
                    entry.1.push(v.clone());
                }
            }
        }
        for (_, versions) in &mut out {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    /// Types served in one group version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types.iter().filter(|t| t.group == group && t.serves(version)).cloned().collect()
    }
}

fn built_in(b: &BuiltIn) -> ResourceType {
    let (group, version, kind, plural, namespaced, status, generation, short, cats) = *b;
    let storage = if plural == "events" { "/events".to_string() } else { format!("{group}/{plural}") };
    ResourceType {
        group: group.into(),
        versions: vec![version.into()],
        storage_version: version.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        status,
        generation,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: cats.iter().map(|s| s.to_string()).collect(),
        custom: false,
        version_info: BTreeMap::new(),
        storage,
        verbs: &STANDARD_VERBS,
        conversion_webhook: None,
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first; others last.
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, n) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match n.parse::<u64>() {
        Ok(minor) => (level, major, minor),
        Err(_) => (0, 0, 0),
    }
}

/// Builds the type a CRD object describes (validation happens in `crd`).
pub fn from_crd(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let group = spec.get("group")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let plural = names.get("plural")?.as_str()?.to_string();
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut versions = Vec::new();
    let mut storage_version = String::new();
    let mut version_info = BTreeMap::new();
    for v in spec.get("versions")?.as_array()? {
        let name = v.get("name")?.as_str()?.to_string();
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_version = name.clone();
        }
        if v.get("served").and_then(Value::as_bool) != Some(false) {
            versions.push(name.clone());
        }
        version_info.insert(name, crd_version_info(v));
    }
    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    Some(ResourceType {
        storage: format!("{group}/{plural}"),
        group,
        versions,
        storage_version,
        list_kind: names
            .get("listKind")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("{kind}List")),
        singular: names
            .get("singular")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        kind,
        plural,
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        status: false,
        generation: GenerationRule::AllButMetadata,
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        custom: true,
        version_info,
        verbs: &STANDARD_VERBS,
        conversion_webhook: (spec.pointer("/conversion/strategy").and_then(Value::as_str) == Some("Webhook"))
            .then(|| spec.pointer("/conversion/webhook/clientConfig").cloned())
            .flatten(),
    })
}

fn crd_version_info(v: &Value) -> VersionInfo {
    let str_at = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let printer_columns = v
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: str_at(c, "name"),
                    type_: str_at(c, "type"),
                    format: str_at(c, "format"),
                    description: str_at(c, "description"),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: str_at(c, "jsonPath"),
                })
                .collect()
        })
        .unwrap_or_default();
    let subresources = v.get("subresources");
    let scale = subresources.and_then(|s| s.get("scale")).map(|s| ScalePaths {
        spec_replicas: str_at(s, "specReplicasPath"),
        status_replicas: str_at(s, "statusReplicasPath"),
        label_selector: s.get("labelSelectorPath").and_then(Value::as_str).map(String::from),
    });
    let selectable_fields = v
        .get("selectableFields")
        .and_then(Value::as_array)
        .map(|f| f.iter().map(|x| str_at(x, "jsonPath").trim_start_matches('.').to_string()).collect())
        .unwrap_or_default();
    let status = subresources.and_then(|s| s.get("status")).is_some();
    VersionInfo {
        structure: v.pointer("/schema/openAPIV3Schema").map(|s| Arc::new(Structure::from_crd_schema(s, status))),
        printer_columns,
        schema: v.pointer("/schema/openAPIV3Schema").cloned(),
        compiled: v.pointer("/schema/openAPIV3Schema").and_then(|s| CompiledSchema::new(s).ok()).map(Arc::new),
        selectable_fields,
        status,
        scale,
        deprecated: v.get("deprecated").and_then(Value::as_bool) == Some(true),
        deprecation_warning: v.get("deprecationWarning").and_then(Value::as_str).map(String::from),
    }
}
