//! Defaults the real API server fills in for built-in kinds (the `SetDefaults_*` functions of
//! kube-apiserver), applied on every write. Controllers that compare what they built with what
//! they read back must cope with them, as against a real cluster.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// Applies the built-in defaults of `rt` to a stored-form object.
pub fn apply(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => namespace(obj),
        ("", "secrets") => secret(obj),
        ("", "services") => service(obj),
        ("", "pods") => pod_spec(obj.get_mut("spec")),
        ("", "persistentvolumeclaims") => pvc_spec(obj.get_mut("spec")),
        ("apps", "deployments") => deployment(obj),
        ("apps", "statefulsets") => statefulset(obj),
        ("apps", "replicasets") | ("apps", "daemonsets") => {
            if rt.plural == "replicasets" {
                default(obj, "/spec", "replicas", json!(1));
            }
            template(obj)
        }
        ("batch", "jobs") => job(obj),
        _ => {}
    }
}

/// pkg/apis/core/v1/defaults.go `SetDefaults_Namespace`: every namespace is labelled with its
/// own name (on updates too, so the label cannot be changed), which webhooks' and network
/// policies' namespace selectors match on.
fn namespace(obj: &mut Value) {
    let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str).map(String::from) else { return };
    if let Some(metadata) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(NAMESPACE_NAME_LABEL.into(), json!(name));
        }
    }
}

/// The label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// pkg/apis/batch/v1/defaults.go `SetDefaults_Job`.
fn job(obj: &mut Value) {
    if obj.pointer("/spec/completions").is_none() && obj.pointer("/spec/parallelism").is_none() {
        default(obj, "/spec", "completions", json!(1));
    }
    default(obj, "/spec", "parallelism", json!(1));
    default(obj, "/spec", "backoffLimit", json!(6));
    default(obj, "/spec", "completionMode", json!("NonIndexed"));
    default(obj, "/spec", "suspend", json!(false));
    default(obj, "/spec", "manualSelector", json!(false));
    if obj.pointer("/spec/podFailurePolicy").is_none() {
        default(obj, "/spec", "podReplacementPolicy", json!("TerminatingOrFailed"));
    }
    let no_labels = obj.pointer("/metadata/labels").and_then(Value::as_object).is_none_or(|l| l.is_empty());
    if no_labels && let Some(labels) = obj.pointer("/spec/template/metadata/labels").cloned() {
        meta_labels(obj, labels);
    }
    template(obj);
}

fn meta_labels(obj: &mut Value, labels: Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("labels".into(), labels);
    }
}

pub const JOB_CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// A new Job's selector, unless `manualSelector` (pkg/registry/batch/job/strategy.go
/// `generateSelector`): its pods are labelled with the Job's name and uid (the legacy and the
/// `batch.kubernetes.io/` keys) and selected by uid; labels the user set stay, and validation
/// then refuses a template the selector does not match.
pub fn generate_job_selector(rt: &ResourceType, obj: &mut Value) {
    if !(rt.group == "batch" && rt.plural == "jobs")
        || obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true)
    {
        return;
    }
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let uid = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                for (key, value) in [
                    ("job-name", &name),
                    (JOB_NAME_LABEL, &name),
                    ("controller-uid", &uid),
                    (JOB_CONTROLLER_UID_LABEL, &uid),
                ] {
                    l.entry(key).or_insert_with(|| json!(value));
                }
            }
        }
    }
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if let Some(sel) = selector.as_object_mut() {
        let labels = sel.entry("matchLabels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.entry(JOB_CONTROLLER_UID_LABEL).or_insert_with(|| json!(uid));
        }
    }
}

/// The status fields a built-in kind's Go type does not omit when zero (no `omitempty` in its
/// JSON tag): the real server decodes every write into that type and encodes it back, so they are
/// always present, as 0, even when no controller has written a status yet (a new StatefulSet
/// reads `status: {replicas: 0, availableReplicas: 0}`). Strictly typed clients rely on them
/// (k8s-openapi's `StatefulSetStatus::replicas` is not an `Option`). Applied after the status
/// rules of every write, so a controller's partial status keeps them too.
pub fn status_zero_values(rt: &ResourceType, obj: &mut Value) {
    let fields: &[&str] = match (rt.group.as_str(), rt.plural.as_str()) {
        // k8s.io/api apps/v1 types.go: StatefulSetStatus.{Replicas, AvailableReplicas}.
        ("apps", "statefulsets") => &["replicas", "availableReplicas"],
        ("apps", "replicasets") | ("", "replicationcontrollers") => &["replicas"],
        ("apps", "daemonsets") => {
            &["currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"]
        }
        // autoscaling/v2 HorizontalPodAutoscalerStatus.DesiredReplicas (currentReplicas is omitempty).
        ("autoscaling", "horizontalpodautoscalers") => &["desiredReplicas"],
        ("policy", "poddisruptionbudgets") => {
            &["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"]
        }
        // IngressStatus.LoadBalancer is a struct: encoding/json never omits it.
        ("networking.k8s.io", "ingresses") => {
            if let Some(status) = obj.as_object_mut().map(|m| m.entry("status").or_insert_with(|| json!({})))
                && let Some(s) = status.as_object_mut()
            {
                s.entry("loadBalancer").or_insert_with(|| json!({}));
            }
            return;
        }
        _ => return,
    };
    let Some(map) = obj.as_object_mut() else { return };
    let status = map.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    if let Some(s) = status.as_object_mut() {
        for f in fields {
            s.entry(*f).or_insert(json!(0));
        }
    }
}

/// Sets `key` under the object at `pointer` when absent (the parent must exist).
fn default(obj: &mut Value, pointer: &str, key: &str, v: Value) {
    if let Some(Value::Object(m)) = obj.pointer_mut(pointer) {
        m.entry(key).or_insert(v);
    }
}

fn object_at<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    obj.get_mut(key).and_then(Value::as_object_mut)
}

/// `stringData` is write-only: merged into `data` (base64) as the server does; type Opaque.
fn secret(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else { return };
    if let Some(Value::Object(strings)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        if let Some(d) = data.as_object_mut() {
            for (k, v) in strings {
                let text = v.as_str().unwrap_or_default();
                d.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(text)));
            }
        }
    }
    map.entry("type").or_insert(json!("Opaque"));
}

fn service(obj: &mut Value) {
    let Some(spec) = object_at(obj, "spec") else { return };
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    let external = matches!(spec.get("type").and_then(Value::as_str), Some("ExternalName"));
    if !external {
        spec.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        let ip = spec.get("clusterIP").cloned().unwrap_or_else(|| json!(cluster_ip()));
        spec.insert("clusterIP".into(), ip.clone());
        spec.entry("clusterIPs").or_insert(json!([ip]));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                p.entry("targetPort").or_insert(port);
            }
        }
    }
}

/// A random address in the default service CIDR (10.96.0.0/12).
fn cluster_ip() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!("10.96.{}.{}", rng.random_range(0..=255u8), rng.random_range(1..=254u8))
}

fn deployment(obj: &mut Value) {
    default(obj, "/spec", "replicas", json!(1));
    default(obj, "/spec", "revisionHistoryLimit", json!(10));
    default(obj, "/spec", "progressDeadlineSeconds", json!(600));
    default(obj, "/spec", "strategy", json!({}));
    default(obj, "/spec/strategy", "type", json!("RollingUpdate"));
    if obj.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("RollingUpdate") {
        default(obj, "/spec/strategy", "rollingUpdate", json!({}));
        default(obj, "/spec/strategy/rollingUpdate", "maxUnavailable", json!("25%"));
        default(obj, "/spec/strategy/rollingUpdate", "maxSurge", json!("25%"));
    }
    template(obj);
}

fn statefulset(obj: &mut Value) {
    default(obj, "/spec", "replicas", json!(1));
    default(obj, "/spec", "revisionHistoryLimit", json!(10));
    default(obj, "/spec", "podManagementPolicy", json!("OrderedReady"));
    default(obj, "/spec", "updateStrategy", json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
    default(
        obj,
        "/spec",
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    if let Some(Value::Array(claims)) = obj.pointer_mut("/spec/volumeClaimTemplates") {
        for c in claims.iter_mut() {
            if let Some(m) = c.as_object_mut() {
                m.entry("apiVersion").or_insert(json!("v1"));
                m.entry("kind").or_insert(json!("PersistentVolumeClaim"));
                m.entry("status").or_insert(json!({"phase": "Pending"}));
            }
            pvc_spec(c.get_mut("spec"));
        }
    }
    template(obj);
}

fn pvc_spec(spec: Option<&mut Value>) {
    if let Some(Value::Object(s)) = spec {
        s.entry("volumeMode").or_insert(json!("Filesystem"));
    }
}

fn template(obj: &mut Value) {
    if let Some(Value::Object(meta)) = obj.pointer_mut("/spec/template/metadata") {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
    pod_spec(obj.pointer_mut("/spec/template/spec"));
}

fn pod_spec(spec: Option<&mut Value>) {
    let Some(Value::Object(s)) = spec else { return };
    s.entry("restartPolicy").or_insert(json!("Always"));
    s.entry("terminationGracePeriodSeconds").or_insert(json!(30));
    s.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    s.entry("securityContext").or_insert(json!({}));
    s.entry("schedulerName").or_insert(json!("default-scheduler"));
    for key in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = s.get_mut(key) {
            cs.iter_mut().filter_map(Value::as_object_mut).for_each(container);
        }
    }
    if let Some(Value::Array(vols)) = s.get_mut("volumes") {
        for v in vols.iter_mut().filter_map(Value::as_object_mut) {
            for kind in ["configMap", "secret"] {
                if let Some(Value::Object(src)) = v.get_mut(kind) {
                    src.entry("defaultMode").or_insert(json!(420));
                }
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    c.entry("terminationMessagePath").or_insert(json!("/dev/termination-log"));
    c.entry("terminationMessagePolicy").or_insert(json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let latest = !image.contains('@')
        && image.rsplit('/').next().is_none_or(|last| !last.contains(':') || last.ends_with(":latest"));
    c.entry("imagePullPolicy").or_insert(json!(if latest { "Always" } else { "IfNotPresent" }));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = c.get_mut(probe) {
            p.entry("timeoutSeconds").or_insert(json!(1));
            p.entry("periodSeconds").or_insert(json!(10));
            p.entry("successThreshold").or_insert(json!(1));
            p.entry("failureThreshold").or_insert(json!(3));
            if let Some(Value::Object(h)) = p.get_mut("httpGet") {
                h.entry("scheme").or_insert(json!("HTTP"));
            }
        }
    }
}
