//! What the validating webhook decides, as pure functions of the request and the objects it
//! refers to: references a schema cannot check (refused, with the same words as the SpecValid
//! condition), the confirmation a destructive deletion policy needs (refused), and soft issues
//! (warnings): a deprecated version, an edit of a field that the owning PrismCluster will put
//! back.

use prism_api::v1beta1::NamespacesFrom;
use prism_api::v1beta1::{ClusterPattern, DeletionPolicy};
use prism_api::v1beta1::{PrismCluster, PrismNamespace, PrismPattern};
use prism_controllers::conditions::Problem;
use prism_controllers::tenancy::{self, Labels};
use prism_controllers::{children, namespace, pattern};
use serde_json::Value;

/// The annotation a PrismCluster needs, set to its own name, before its deletion policy may
/// become Delete or it may be deleted with that policy.
pub const CONFIRM_DATA_DELETION: &str = "prism.io/confirm-data-deletion";

/// Field managers of the operator's own writes start with this: it validates what it writes
/// itself, and must never be refused its own objects (e.g. removing a finalizer).
const OPERATOR_MANAGER_PREFIX: &str = "prism-operator/";

/// One admission request, as the webhook reads it (objects at v1beta1: the configuration asks
/// for v1beta1 and the API server converts with matchPolicy Equivalent).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub operation: Operation,
    pub kind: String,
    /// The version the client used (`requestKind`), for the deprecation warning.
    pub request_version: String,
    pub subresource: Option<String>,
    pub namespace: String,
    pub name: String,
    pub field_manager: Option<String>,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Request {
    /// Whether the operator itself writes.
    pub fn by_operator(&self) -> bool {
        self.field_manager.as_deref().is_some_and(|m| m.starts_with(OPERATOR_MANAGER_PREFIX))
    }

    /// The name of the PrismCluster the request's object refers to (spec.cluster), or for a
    /// PrismCluster itself, none.
    pub fn referenced_cluster(&self) -> Option<String> {
        if self.by_operator()
            || self.subresource.is_some()
            || !matches!(self.operation, Operation::Create | Operation::Update)
        {
            return None;
        }
        if !matches!(self.kind.as_str(), "PrismNamespace" | "PrismPattern") {
            return None;
        }
        let object = self.object.as_ref()?;
        // An update that leaves the spec alone (labels, finalizers) is not checked again.
        if self.old_object.as_ref().is_some_and(|old| old["spec"] == object["spec"]) {
            return None;
        }
        object["spec"]["cluster"].as_str().map(str::to_string)
    }

    /// The PrismCluster that owns the request's object as its controller (a child the cluster
    /// materialised), for the warnings about edits that will not stick.
    pub fn owning_cluster(object: &Value) -> Option<String> {
        object["metadata"]["ownerReferences"].as_array()?.iter().find_map(|r| {
            let controller = r["controller"].as_bool() == Some(true);
            (controller && r["kind"] == "PrismCluster").then(|| r["name"].as_str().map(str::to_string)).flatten()
        })
    }
}

/// Which PrismCluster the caller must look up before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Nothing,
    /// The cluster a PrismNamespace or PrismPattern names in spec.cluster (a PrismNamespace's in
    /// spec.clusterNamespace, else in its own namespace).
    Cluster {
        namespace: String,
        name: String,
    },
    /// The cluster owning PrismPattern `0` (a `kubectl scale`, whose object is a Scale).
    OwnerOfPattern(String),
}

/// What `decide` needs looked up for `request`.
pub fn lookup(request: &Request) -> Lookup {
    let user_write = !request.by_operator() && matches!(request.operation, Operation::Create | Operation::Update);
    match (request.kind.as_str(), request.subresource.as_deref()) {
        ("PrismPattern", Some("scale")) if user_write => Lookup::OwnerOfPattern(request.name.clone()),
        ("PrismNamespace" | "PrismPattern", None) if user_write => {
            let Some(spec) = request.object.as_ref().map(|o| &o["spec"]) else { return Lookup::Nothing };
            let namespace = match (request.kind.as_str(), spec["clusterNamespace"].as_str()) {
                ("PrismNamespace", Some(elsewhere)) => elsewhere,
                _ => request.namespace.as_str(),
            };
            spec["cluster"].as_str().map_or(Lookup::Nothing, |name| Lookup::Cluster {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
        }
        _ => Lookup::Nothing,
    }
}

/// The answer: allowed or refused with a message, and warnings either way.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    pub refusal: Option<String>,
    pub warnings: Vec<String>,
}

/// Decides `request`; `cluster` is the PrismCluster the object refers to or is owned by, looked
/// up by the caller (`None`: it does not exist, or there was none to look up), and `labels` those
/// of the request's namespace when a cluster elsewhere admits namespaces by their labels
/// ([`needs_labels`]; `None`: not read).
pub fn decide(request: &Request, cluster: Option<&PrismCluster>, labels: Option<&Labels>) -> Verdict {
    let mut verdict = Verdict { refusal: None, warnings: deprecation(request).into_iter().collect() };
    let result = match request.kind.as_str() {
        "PrismCluster" => data_safety(request),
        "PrismNamespace" => check_namespace(request, cluster, labels, &mut verdict.warnings),
        "PrismPattern" => check_pattern(request, cluster, &mut verdict.warnings),
        _ => Ok(()),
    };
    verdict.refusal = result.err();
    verdict
}

/// The deprecation warning for a request at an older version.
pub fn deprecation(request: &Request) -> Option<String> {
    let [older, _] = prism_api::conversion::served_versions(&request.kind)?;
    (request.request_version == older).then(|| prism_api::deprecation_warning(&request.kind, older))
}

fn typed<K: serde::de::DeserializeOwned>(value: Option<&Value>) -> Option<K> {
    value.and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Deletion policy Delete removes the data volumes with the cluster: turning it on, or deleting a
/// cluster that has it, needs the confirmation annotation set to the cluster's name.
fn data_safety(request: &Request) -> Result<(), String> {
    let confirmed = |object: &PrismCluster| {
        object.metadata.annotations.as_ref().and_then(|a| a.get(CONFIRM_DATA_DELETION)) == object.metadata.name.as_ref()
    };
    let how = |name: &str| {
        format!(
            "set annotation {CONFIRM_DATA_DELETION}={name} on PrismCluster {name:?} to confirm that its data may be deleted"
        )
    };
    match request.operation {
        Operation::Update if request.subresource.is_none() => {
            let (Some(new), Some(old)) =
                (typed::<PrismCluster>(request.object.as_ref()), typed::<PrismCluster>(request.old_object.as_ref()))
            else {
                return Ok(());
            };
            let turned_on = new.spec.deletion_policy == DeletionPolicy::Delete
                && old.spec.deletion_policy != DeletionPolicy::Delete;
            if turned_on && !confirmed(&new) {
                return Err(format!(
                    "spec.deletionPolicy: changing PrismCluster {:?} to Delete makes deleting it delete its data volumes: {}",
                    request.name,
                    how(&request.name)
                ));
            }
            Ok(())
        }
        Operation::Delete => {
            let Some(old) = typed::<PrismCluster>(request.old_object.as_ref()) else { return Ok(()) };
            if old.spec.deletion_policy == DeletionPolicy::Delete && !confirmed(&old) {
                return Err(format!(
                    "PrismCluster {:?} has spec.deletionPolicy Delete: deleting it deletes its data volumes; {}, or set spec.deletionPolicy to Retain",
                    request.name,
                    how(&request.name)
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether deciding `request` about `cluster` needs the labels of the request's namespace: a
/// PrismNamespace attaching from another namespace to a cluster that admits by labels.
pub fn needs_labels(request: &Request, cluster: &PrismCluster) -> bool {
    let selects = cluster.spec.tenancy.as_ref().is_some_and(|t| t.namespaces.from == NamespacesFrom::Selector);
    request.kind == "PrismNamespace" && selects && cluster.metadata.namespace.as_deref() != Some(&request.namespace)
}

fn check_namespace(
    request: &Request,
    cluster: Option<&PrismCluster>,
    labels: Option<&Labels>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let Some(object) = typed::<PrismNamespace>(request.object.as_ref()) else { return Ok(()) };
    let old = typed::<PrismNamespace>(request.old_object.as_ref());
    if request.referenced_cluster().is_some() {
        let judge = |ns: &PrismNamespace| namespace_references(ns, cluster, &request.namespace, labels);
        warnings.extend(ratchet(judge(&object), old.as_ref().map(judge))?);
    }
    let owner = request.object.as_ref().and_then(Request::owning_cluster);
    if let (Some(old), Some(owner), false) = (old, owner, request.by_operator())
        && old.spec != object.spec
    {
        let entry = request.name.strip_prefix(&format!("{owner}-")).unwrap_or(&request.name);
        warnings.push(format!(
            "spec of PrismNamespace {:?} belongs to PrismCluster {owner:?}, which will put it back: change spec.namespaces[name={entry}] of the cluster instead",
            request.name
        ));
    }
    Ok(())
}

/// The reference problems of PrismNamespace `object` in `namespace`, or the warnings it earns.
fn namespace_references(
    object: &PrismNamespace,
    cluster: Option<&PrismCluster>,
    namespace: &str,
    labels: Option<&Labels>,
) -> Result<Vec<String>, Problem> {
    namespace::validate::validate(object, cluster)?;
    let Some(cluster) = cluster.filter(|c| !tenancy::is_cluster_own(object, c)) else { return Ok(Vec::new()) };
    let mut warnings = Vec::new();
    match tenancy::admits(cluster, namespace, labels) {
        // Labels not read: the condition will say (fail open, as everywhere here).
        Err(problem) if problem.transient => warnings.push(said(&problem)),
        admitted => admitted?,
    }
    let served = tenancy::within_limits(object, cluster)?;
    if !served.clamped.is_empty() {
        warnings.push(format!(
            "QuotaClamped: the proxy enforces PrismCluster {:?}'s limits instead: {}",
            object.spec.cluster,
            served.clamped.join(", ")
        ));
    }
    Ok(warnings)
}

/// Refuses the problem `new` has unless the object had the very same one before this update:
/// then the edit did not cause it (a platform engineer switched a backend off under a team's
/// pattern), refusing would only block unrelated tuning, and the status already reports it.
/// Kubernetes ratchets unchanged invalid values the same way.
fn ratchet(
    new: Result<Vec<String>, Problem>,
    old: Option<Result<Vec<String>, Problem>>,
) -> Result<Vec<String>, String> {
    let problem = match new {
        Ok(warnings) => return Ok(warnings),
        Err(problem) => problem,
    };
    match old {
        Some(Err(was)) if was.reason == problem.reason && was.message == problem.message => Ok(vec![format!(
            "{} (this edit did not cause it, so it is not refused; the object's status reports it)",
            said(&problem)
        )]),
        _ => Err(said(&problem)),
    }
}

fn said(problem: &Problem) -> String {
    format!("{}: {}", problem.reason, problem.message)
}

fn check_pattern(request: &Request, cluster: Option<&PrismCluster>, warnings: &mut Vec<String>) -> Result<(), String> {
    if request.by_operator() {
        return Ok(());
    }
    if request.subresource.as_deref() == Some("scale") {
        // `kubectl scale`: the object is an autoscaling/v1 Scale. It will not stick if the
        // cluster sets another count.
        if let (Some(cluster), Some(new)) = (cluster, &request.object) {
            let owned = owned_value(&request.name, cluster, "replicas");
            if owned.is_some_and(|owned| owned != new["spec"]["replicas"]) {
                warnings.extend(owned_field_edits(&request.name, cluster, &["replicas"]));
            }
        }
        return Ok(());
    }
    let Some(object) = typed::<PrismPattern>(request.object.as_ref()) else { return Ok(()) };
    let old = typed::<PrismPattern>(request.old_object.as_ref());
    if request.referenced_cluster().is_some() {
        let judge = |p: &PrismPattern| pattern::validate::validate(p, cluster).map(|_| Vec::new());
        warnings.extend(ratchet(judge(&object), old.as_ref().map(judge))?);
    }
    let Some(old) = old else { return Ok(()) };
    let owned_by_cluster = request.object.as_ref().and_then(Request::owning_cluster);
    if let (Some(cluster), Some(_)) = (cluster, owned_by_cluster) {
        let (new, old) = (serde_json::to_value(&object.spec), serde_json::to_value(&old.spec));
        let (Ok(new), Ok(old)) = (new, old) else { return Ok(()) };
        let changed: Vec<&str> = new
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
            .chain(old.as_object().into_iter().flatten().map(|(k, _)| (k.as_str(), &Value::Null)))
            .filter(|(k, _)| new.get(*k) != old.get(*k))
            .map(|(k, _)| k)
            .collect();
        warnings.extend(owned_field_edits(&request.name, cluster, &changed));
    }
    Ok(())
}

/// A warning per field of `changed` that the cluster sets on its child pattern `child`.
fn owned_field_edits(child: &str, cluster: &PrismCluster, changed: &[&str]) -> Vec<String> {
    let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
    let Some(entry) = entry_of(child, &cluster_name, &cluster.spec.patterns) else { return Vec::new() };
    let Ok(owned) = serde_json::to_value(children::pattern_spec(&cluster_name, entry, Default::default())) else {
        return Vec::new();
    };
    let mut fields: Vec<&str> = changed.iter().copied().filter(|f| owned.get(*f).is_some()).collect();
    fields.sort_unstable();
    fields.dedup();
    fields
        .into_iter()
        .map(|field| {
            let cluster_field = match field {
                "type" | "cluster" => format!("spec.patterns[name={}]", entry.name),
                other => format!("spec.patterns[name={}].{other}", entry.name),
            };
            format!(
                "spec.{field} of PrismPattern {child:?} is set by PrismCluster {cluster_name:?}, which will put back its value within seconds: change {cluster_field} of the cluster instead"
            )
        })
        .collect()
}

/// The value the cluster sets for `field` of its child pattern `child`, if it sets one.
fn owned_value(child: &str, cluster: &PrismCluster, field: &str) -> Option<Value> {
    let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
    let entry = entry_of(child, &cluster_name, &cluster.spec.patterns)?;
    let owned = serde_json::to_value(children::pattern_spec(&cluster_name, entry, Default::default())).ok()?;
    owned.get(field).cloned()
}

fn entry_of<'a>(child: &str, cluster: &str, entries: &'a [ClusterPattern]) -> Option<&'a ClusterPattern> {
    let name = child.strip_prefix(cluster)?.strip_prefix('-')?;
    entries.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cluster() -> PrismCluster {
        serde_json::from_value(json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
            "metadata": {"name": "local", "namespace": "prism"},
            "spec": {"patterns": [{"name": "keyvalue", "backends": ["redis"], "replicas": 1}],
                     "backends": {"redis": {"enabled": true, "version": "7"}}}}))
        .unwrap()
    }

    fn request(kind: &str, operation: Operation, object: Option<Value>, old: Option<Value>) -> Request {
        let name =
            object.as_ref().or(old.as_ref()).and_then(|o| o["metadata"]["name"].as_str()).unwrap_or("x").to_string();
        Request {
            operation,
            kind: kind.into(),
            request_version: "v1beta1".into(),
            subresource: None,
            namespace: "prism".into(),
            name,
            field_manager: Some("kubectl".into()),
            object,
            old_object: old,
        }
    }

    fn namespace(cluster: &str, patterns: &[&str]) -> Value {
        json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace", "metadata": {"name": "orders", "namespace": "prism"},
               "spec": {"cluster": cluster, "patterns": patterns}})
    }

    fn pattern(backends: &[&str], replicas: i32, owned: bool) -> Value {
        let mut p = json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern",
            "metadata": {"name": "local-keyvalue", "namespace": "prism"},
            "spec": {"cluster": "local", "type": "keyvalue", "replicas": replicas,
                     "backends": backends.iter().map(|b| json!({"name": b})).collect::<Vec<_>>()}});
        if owned {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
                "name": "local", "uid": "u", "controller": true}]);
        }
        p
    }

    #[test]
    fn a_namespace_naming_an_unknown_cluster_or_pattern_is_refused_naming_the_field_and_referent() {
        let unknown = request("PrismNamespace", Operation::Create, Some(namespace("nope", &[])), None);
        assert_eq!(lookup(&unknown), Lookup::Cluster { namespace: "prism".into(), name: "nope".into() });
        assert_eq!(
            decide(&unknown, None, None).refusal.as_deref(),
            Some(
                "ClusterNotFound: PrismCluster \"nope\" does not exist in namespace \"prism\": create it or fix spec.cluster"
            )
        );
        let not_offered = request("PrismNamespace", Operation::Create, Some(namespace("local", &["mailbox"])), None);
        let refusal = decide(&not_offered, Some(&cluster()), None).refusal.unwrap();
        assert!(refusal.starts_with("PatternNotFound: spec.patterns: pattern \"mailbox\""), "{refusal}");
        let fine = request("PrismNamespace", Operation::Create, Some(namespace("local", &["keyvalue"])), None);
        assert_eq!(decide(&fine, Some(&cluster()), None), Verdict::default());
    }

    #[test]
    fn a_pattern_on_a_backend_the_cluster_does_not_enable_is_refused() {
        let nats = request("PrismPattern", Operation::Create, Some(pattern(&["nats"], 1, false)), None);
        let refusal = decide(&nats, Some(&cluster()), None).refusal.unwrap();
        assert!(refusal.contains("BackendNotSupported") || refusal.contains("BackendNotEnabled"), "{refusal}");
        let redis = request("PrismPattern", Operation::Create, Some(pattern(&["redis"], 1, false)), None);
        assert_eq!(decide(&redis, Some(&cluster()), None).refusal, None);
    }

    #[test]
    fn an_edit_that_keeps_a_problem_the_object_already_had_is_warned_about_not_refused() {
        // The cluster switched nats off after the pattern was created on it: tuning the pattern
        // is not refused for a problem the tuning did not cause.
        let tuned = request(
            "PrismPattern",
            Operation::Update,
            Some(pattern(&["nats"], 2, false)),
            Some(pattern(&["nats"], 1, false)),
        );
        let verdict = decide(&tuned, Some(&cluster()), None);
        assert_eq!(verdict.refusal, None);
        assert!(verdict.warnings.iter().any(|w| w.contains("this edit did not cause it")), "{:?}", verdict.warnings);
        // Moving a working pattern onto that backend is the edit's own doing: refused.
        let moved = request(
            "PrismPattern",
            Operation::Update,
            Some(pattern(&["nats"], 1, false)),
            Some(pattern(&["redis"], 1, false)),
        );
        assert!(decide(&moved, Some(&cluster()), None).refusal.is_some());
        // Likewise for a PrismNamespace: a new problem is refused, an old one kept is not.
        let mut renamed = namespace("local", &["mailbox"]);
        renamed["metadata"]["labels"] = json!({"team": "a"});
        renamed["spec"]["patterns"] = json!(["mailbox", "keyvalue"]);
        let kept = request("PrismNamespace", Operation::Update, Some(renamed), Some(namespace("local", &["mailbox"])));
        assert_eq!(decide(&kept, Some(&cluster()), None).refusal, None);
        let added = request(
            "PrismNamespace",
            Operation::Update,
            Some(namespace("local", &["mailbox"])),
            Some(namespace("local", &[])),
        );
        assert!(decide(&added, Some(&cluster()), None).refusal.is_some());
    }

    #[test]
    fn the_deletion_policy_delete_needs_the_confirmation_annotation() {
        let with_policy = |policy: &str, confirmed: bool| {
            let mut c = serde_json::to_value(cluster()).unwrap();
            c["spec"]["deletionPolicy"] = json!(policy);
            if confirmed {
                c["metadata"]["annotations"] = json!({CONFIRM_DATA_DELETION: "local"});
            }
            c
        };
        let turn_on = request(
            "PrismCluster",
            Operation::Update,
            Some(with_policy("Delete", false)),
            Some(with_policy("Retain", false)),
        );
        let refusal = decide(&turn_on, None, None).refusal.unwrap();
        assert!(refusal.starts_with("spec.deletionPolicy: changing PrismCluster \"local\" to Delete"), "{refusal}");
        assert!(refusal.contains("prism.io/confirm-data-deletion=local"), "{refusal}");
        let confirmed = request(
            "PrismCluster",
            Operation::Update,
            Some(with_policy("Delete", true)),
            Some(with_policy("Retain", false)),
        );
        assert_eq!(decide(&confirmed, None, None).refusal, None);
        let delete = request("PrismCluster", Operation::Delete, None, Some(with_policy("Delete", false)));
        assert!(decide(&delete, None, None).refusal.unwrap().contains("has spec.deletionPolicy Delete"));
        let delete_confirmed = request("PrismCluster", Operation::Delete, None, Some(with_policy("Delete", true)));
        assert_eq!(decide(&delete_confirmed, None, None).refusal, None);
        let retain = request("PrismCluster", Operation::Delete, None, Some(with_policy("Retain", false)));
        assert_eq!(decide(&retain, None, None).refusal, None);
    }

    #[test]
    fn older_versions_are_warned_about() {
        let mut old = request("PrismCluster", Operation::Create, Some(serde_json::to_value(cluster()).unwrap()), None);
        old.request_version = "v1alpha1".into();
        assert_eq!(
            decide(&old, None, None).warnings,
            vec!["prism.io/v1alpha1 PrismCluster is deprecated; use prism.io/v1beta1"]
        );
        old.request_version = "v1beta1".into();
        assert!(decide(&old, None, None).warnings.is_empty());
    }

    #[test]
    fn an_edit_of_a_field_the_cluster_owns_is_warned_about_naming_the_cluster_field() {
        let edit = request(
            "PrismPattern",
            Operation::Update,
            Some(pattern(&["redis"], 3, true)),
            Some(pattern(&["redis"], 1, true)),
        );
        let verdict = decide(&edit, Some(&cluster()), None);
        assert_eq!(verdict.refusal, None);
        assert_eq!(
            verdict.warnings,
            vec![
                "spec.replicas of PrismPattern \"local-keyvalue\" is set by PrismCluster \"local\", which will put back its value within seconds: change spec.patterns[name=keyvalue].replicas of the cluster instead"
            ]
        );
        let mut scale = request(
            "PrismPattern",
            Operation::Update,
            Some(json!({"spec": {"replicas": 3}})),
            Some(json!({"spec": {"replicas": 1}})),
        );
        scale.subresource = Some("scale".into());
        scale.name = "local-keyvalue".into();
        assert_eq!(lookup(&scale), Lookup::OwnerOfPattern("local-keyvalue".into()));
        assert_eq!(decide(&scale, Some(&cluster()), None).warnings.len(), 1);
        let mut by_operator = edit.clone();
        by_operator.field_manager = Some("prism-operator/cluster".into());
        assert_eq!(lookup(&by_operator), Lookup::Nothing);
        assert_eq!(decide(&by_operator, Some(&cluster()), None), Verdict::default());
    }
}

#[cfg(test)]
mod tenancy_tests {
    use serde_json::json;

    use super::*;

    fn platform_cluster(tenancy: Value) -> PrismCluster {
        serde_json::from_value(json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
            "metadata": {"name": "shared", "namespace": "platform", "uid": "u"},
            "spec": {"patterns": [{"name": "keyvalue"}, {"name": "consumer"}], "tenancy": tenancy}}))
        .expect("cluster")
    }

    /// A PrismNamespace created in `ns` by its app team, naming the platform's cluster.
    fn tenant_create(ns: &str, spec: Value) -> Request {
        let mut spec = spec;
        spec["cluster"] = json!("shared");
        spec["clusterNamespace"] = json!("platform");
        Request {
            operation: Operation::Create,
            kind: "PrismNamespace".into(),
            request_version: "v1beta1".into(),
            subresource: None,
            namespace: ns.into(),
            name: "orders".into(),
            field_manager: Some("kubectl".into()),
            object: Some(json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace",
                "metadata": {"name": "orders", "namespace": ns}, "spec": spec})),
            old_object: None,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_cluster_is_looked_up_in_the_namespace_the_object_names() {
        let request = tenant_create("team-a", json!({"patterns": ["keyvalue"]}));
        assert_eq!(lookup(&request), Lookup::Cluster { namespace: "platform".into(), name: "shared".into() });
    }

    #[test]
    fn a_namespace_the_cluster_does_not_admit_is_refused_naming_the_rule() {
        let selects = platform_cluster(json!({"namespaces": {"from": "Selector",
            "selector": {"matchLabels": {"prism.io/tenant": "true"}}}}));
        let request = tenant_create("team-c", json!({"patterns": ["keyvalue"]}));
        assert!(needs_labels(&request, &selects));
        let refusal = decide(&request, Some(&selects), Some(&labels(&[]))).refusal.expect("refused");
        assert!(refusal.starts_with("NamespaceNotAllowed: PrismCluster platform/shared"), "{refusal}");
        assert!(refusal.contains("prism.io/tenant=true"), "{refusal}");
        let admitted = decide(&request, Some(&selects), Some(&labels(&[("prism.io/tenant", "true")])));
        assert_eq!(admitted, Verdict::default());
        let unread = decide(&request, Some(&selects), None);
        assert_eq!(unread.refusal, None, "labels not read: the condition decides");
        assert!(unread.warnings[0].contains("are not known"), "{:?}", unread.warnings);
        let same = decide(&request, Some(&platform_cluster(json!(null))), None).refusal.expect("refused");
        assert!(same.contains("spec.tenancy.namespaces.from is Same"), "{same}");
    }

    #[test]
    fn limits_refuse_what_cannot_be_lowered_and_warn_about_what_is() {
        let limited = platform_cluster(json!({"namespaces": {"from": "All"},
            "limits": {"maxSessions": 10, "patterns": ["keyvalue"]}}));
        let consumer = tenant_create("team-a", json!({"patterns": ["consumer"]}));
        let refusal = decide(&consumer, Some(&limited), None).refusal.expect("refused");
        assert!(refusal.starts_with("PatternNotAllowed: spec.patterns: consumer"), "{refusal}");
        let greedy = tenant_create("team-a", json!({"patterns": ["keyvalue"], "quota": {"maxSessions": 500}}));
        let verdict = decide(&greedy, Some(&limited), None);
        assert_eq!(verdict.refusal, None);
        assert_eq!(
            verdict.warnings,
            [
                "QuotaClamped: the proxy enforces PrismCluster \"shared\"'s limits instead: spec.quota.maxSessions 500 to 10"
            ]
        );
    }
}
