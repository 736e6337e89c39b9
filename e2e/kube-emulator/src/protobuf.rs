//! Just enough of the Kubernetes protobuf encoding to accept the bodies kubectl's generators
//! send (every `kubectl create` generator: clusterrole, clusterrolebinding, configmap, cronjob,
//! deployment, ingress, job (also `--from=cronjob/...`), namespace, poddisruptionbudget,
//! priorityclass, quota, role, rolebinding, secret, service, serviceaccount, token; and
//! `kubectl auth can-i|whoami`): they
//! post `application/vnd.kubernetes.protobuf` whatever the server prefers; and the DeleteOptions
//! of client-go clients configured for protobuf (Helm's release storage). Fields outside the
//! tables below are skipped; answers stay JSON (kubectl accepts either).

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, ApiResult};

/// How one protobuf field maps to JSON.
#[derive(Clone, Copy)]
enum F {
    Str,
    Bool,
    /// A `*bool`: false is a value, not an absence.
    OptBool,
    Int,
    /// A `*int32`/`*int64` (or an int JSON never omits): zero is a value, not an absence.
    OptInt,
    /// `intstr.IntOrString`.
    IntOrStr,
    /// A struct embedded inline: its fields are the parent's in JSON.
    Inline(&'static [Field]),
    /// `map[string]resource.Quantity`.
    MapQuantity,
    Time,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
    RepStr,
    RepMsg(&'static [Field]),
}

type Field = (u64, &'static str, F);

const OWNER_REF: &[Field] = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];
const OBJECT_META: &[Field] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "generation", F::Int),
    (8, "creationTimestamp", F::Time),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (13, "ownerReferences", F::RepMsg(OWNER_REF)),
    (14, "finalizers", F::RepStr),
];
const META: (u64, &str, F) = (1, "metadata", F::Msg(OBJECT_META));
const EMPTY: &[Field] = &[];
const NAMESPACE: &[Field] = &[META, (2, "spec", F::Msg(&[(1, "finalizers", F::RepStr)])), (3, "status", F::Msg(EMPTY))];
const CONFIG_MAP: &[Field] = &[META, (2, "data", F::MapStr), (3, "binaryData", F::MapBytes), (4, "immutable", F::Bool)];
const SECRET: &[Field] =
    &[META, (2, "data", F::MapBytes), (3, "type", F::Str), (4, "stringData", F::MapStr), (5, "immutable", F::Bool)];
const LOCAL_REF: &[Field] = &[(1, "name", F::Str)];
const SERVICE_ACCOUNT: &[Field] =
    &[META, (3, "imagePullSecrets", F::RepMsg(LOCAL_REF)), (4, "automountServiceAccountToken", F::Bool)];
const POLICY_RULE: &[Field] = &[
    (1, "verbs", F::RepStr),
    (2, "apiGroups", F::RepStr),
    (3, "resources", F::RepStr),
    (4, "resourceNames", F::RepStr),
    (5, "nonResourceURLs", F::RepStr),
];
const ROLE: &[Field] = &[META, (2, "rules", F::RepMsg(POLICY_RULE))];
/// `kubectl create clusterrole --aggregation-rule=...`.
const CLUSTER_ROLE: &[Field] = &[
    META,
    (2, "rules", F::RepMsg(POLICY_RULE)),
    (3, "aggregationRule", F::Msg(&[(1, "clusterRoleSelectors", F::RepMsg(LABEL_SELECTOR))])),
];
const SUBJECT: &[Field] =
    &[(1, "kind", F::Str), (2, "apiGroup", F::Str), (3, "name", F::Str), (4, "namespace", F::Str)];
const ROLE_REF: &[Field] = &[(1, "apiGroup", F::Str), (2, "kind", F::Str), (3, "name", F::Str)];
const ROLE_BINDING: &[Field] = &[META, (2, "subjects", F::RepMsg(SUBJECT)), (3, "roleRef", F::Msg(ROLE_REF))];
const CONTAINER_PORT: &[Field] = &[(1, "name", F::Str), (3, "containerPort", F::Int), (4, "protocol", F::Str)];
const RESOURCES: &[Field] = &[(1, "limits", F::MapQuantity), (2, "requests", F::MapQuantity)];
const CONTAINER: &[Field] = &[
    (1, "name", F::Str),
    (2, "image", F::Str),
    (3, "command", F::RepStr),
    (4, "args", F::RepStr),
    (5, "workingDir", F::Str),
    (6, "ports", F::RepMsg(CONTAINER_PORT)),
    (8, "resources", F::Msg(RESOURCES)),
    (13, "terminationMessagePath", F::Str),
    (14, "imagePullPolicy", F::Str),
    (20, "terminationMessagePolicy", F::Str),
];
const POD_SPEC: &[Field] = &[
    (2, "containers", F::RepMsg(CONTAINER)),
    (3, "restartPolicy", F::Str),
    (4, "terminationGracePeriodSeconds", F::OptInt),
    (5, "activeDeadlineSeconds", F::OptInt),
    (6, "dnsPolicy", F::Str),
    (7, "nodeSelector", F::MapStr),
    (8, "serviceAccountName", F::Str),
    (14, "securityContext", F::Msg(EMPTY)),
    (19, "schedulerName", F::Str),
];
const POD_TEMPLATE: &[Field] = &[META, (2, "spec", F::Msg(POD_SPEC))];
const SELECTOR_REQUIREMENT: &[Field] = &[(1, "key", F::Str), (2, "operator", F::Str), (3, "values", F::RepStr)];
const LABEL_SELECTOR: &[Field] =
    &[(1, "matchLabels", F::MapStr), (2, "matchExpressions", F::RepMsg(SELECTOR_REQUIREMENT))];
const DEPLOYMENT_SPEC: &[Field] = &[
    (1, "replicas", F::OptInt),
    (2, "selector", F::Msg(LABEL_SELECTOR)),
    (3, "template", F::Msg(POD_TEMPLATE)),
    (4, "strategy", F::Msg(EMPTY)),
];
const DEPLOYMENT: &[Field] = &[META, (2, "spec", F::Msg(DEPLOYMENT_SPEC)), (3, "status", F::Msg(EMPTY))];

/// batch/v1 JobSpec (`kubectl create job`, and `--from=cronjob/...` with the CronJob's template).
const JOB_SPEC: &[Field] = &[
    (1, "parallelism", F::OptInt),
    (2, "completions", F::OptInt),
    (3, "activeDeadlineSeconds", F::OptInt),
    (4, "selector", F::Msg(LABEL_SELECTOR)),
    (5, "manualSelector", F::OptBool),
    (6, "template", F::Msg(POD_TEMPLATE)),
    (7, "backoffLimit", F::OptInt),
    (8, "ttlSecondsAfterFinished", F::OptInt),
    (9, "completionMode", F::Str),
    (10, "suspend", F::OptBool),
    (14, "podReplacementPolicy", F::Str),
];
const JOB: &[Field] = &[META, (2, "spec", F::Msg(JOB_SPEC)), (3, "status", F::Msg(EMPTY))];
const JOB_TEMPLATE: &[Field] = &[META, (2, "spec", F::Msg(JOB_SPEC))];
const CRON_JOB_SPEC: &[Field] = &[
    (1, "schedule", F::Str),
    (2, "startingDeadlineSeconds", F::OptInt),
    (3, "concurrencyPolicy", F::Str),
    (4, "suspend", F::OptBool),
    (5, "jobTemplate", F::Msg(JOB_TEMPLATE)),
    (6, "successfulJobsHistoryLimit", F::OptInt),
    (7, "failedJobsHistoryLimit", F::OptInt),
    (8, "timeZone", F::Str),
];
const CRON_JOB: &[Field] = &[META, (2, "spec", F::Msg(CRON_JOB_SPEC)), (3, "status", F::Msg(EMPTY))];

/// core/v1 Service (`kubectl create service clusterip|nodeport|loadbalancer|externalname`).
const SERVICE_PORT: &[Field] = &[
    (1, "name", F::Str),
    (2, "protocol", F::Str),
    (3, "port", F::Int),
    (4, "targetPort", F::IntOrStr),
    (5, "nodePort", F::Int),
];
const SERVICE_SPEC: &[Field] = &[
    (1, "ports", F::RepMsg(SERVICE_PORT)),
    (2, "selector", F::MapStr),
    (3, "clusterIP", F::Str),
    (4, "type", F::Str),
    (10, "externalName", F::Str),
];
const SERVICE: &[Field] = &[META, (2, "spec", F::Msg(SERVICE_SPEC)), (3, "status", F::Msg(EMPTY))];

/// networking/v1 Ingress (`kubectl create ingress --rule=... --default-backend=...`).
const SERVICE_BACKEND_PORT: &[Field] = &[(1, "name", F::Str), (2, "number", F::Int)];
const INGRESS_SERVICE_BACKEND: &[Field] = &[(1, "name", F::Str), (2, "port", F::Msg(SERVICE_BACKEND_PORT))];
const INGRESS_BACKEND: &[Field] = &[(4, "service", F::Msg(INGRESS_SERVICE_BACKEND))];
const HTTP_INGRESS_PATH: &[Field] =
    &[(1, "path", F::Str), (2, "backend", F::Msg(INGRESS_BACKEND)), (3, "pathType", F::Str)];
const INGRESS_RULE_VALUE: &[Field] = &[(1, "http", F::Msg(&[(1, "paths", F::RepMsg(HTTP_INGRESS_PATH))]))];
const INGRESS_RULE: &[Field] = &[(1, "host", F::Str), (2, "ingressRuleValue", F::Inline(INGRESS_RULE_VALUE))];
const INGRESS_TLS: &[Field] = &[(1, "hosts", F::RepStr), (2, "secretName", F::Str)];
const INGRESS_SPEC: &[Field] = &[
    (1, "defaultBackend", F::Msg(INGRESS_BACKEND)),
    (2, "tls", F::RepMsg(INGRESS_TLS)),
    (3, "rules", F::RepMsg(INGRESS_RULE)),
    (4, "ingressClassName", F::Str),
];
const INGRESS: &[Field] = &[META, (2, "spec", F::Msg(INGRESS_SPEC)), (3, "status", F::Msg(EMPTY))];

/// policy/v1 PodDisruptionBudget (`kubectl create poddisruptionbudget`).
const PDB_SPEC: &[Field] = &[
    (1, "minAvailable", F::IntOrStr),
    (2, "selector", F::Msg(LABEL_SELECTOR)),
    (3, "maxUnavailable", F::IntOrStr),
    (4, "unhealthyPodEvictionPolicy", F::Str),
];
const PDB: &[Field] = &[META, (2, "spec", F::Msg(PDB_SPEC)), (3, "status", F::Msg(EMPTY))];

/// scheduling/v1 PriorityClass (`kubectl create priorityclass`): `value` is never omitted.
const PRIORITY_CLASS: &[Field] = &[
    META,
    (2, "value", F::OptInt),
    (3, "globalDefault", F::Bool),
    (4, "description", F::Str),
    (5, "preemptionPolicy", F::Str),
];

/// core/v1 ResourceQuota (`kubectl create quota --hard=... --scopes=...`).
const RESOURCE_QUOTA: &[Field] = &[
    META,
    (2, "spec", F::Msg(&[(1, "hard", F::MapQuantity), (2, "scopes", F::RepStr)])),
    (3, "status", F::Msg(EMPTY)),
];

const BOUND_OBJECT_REF: &[Field] =
    &[(1, "kind", F::Str), (2, "apiVersion", F::Str), (3, "name", F::Str), (4, "uid", F::Str)];
const TOKEN_REQUEST_SPEC: &[Field] =
    &[(1, "audiences", F::RepStr), (3, "boundObjectRef", F::Msg(BOUND_OBJECT_REF)), (4, "expirationSeconds", F::Int)];
/// `kubectl create token`.
const TOKEN_REQUEST: &[Field] = &[META, (2, "spec", F::Msg(TOKEN_REQUEST_SPEC))];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", F::Str), (2, "verb", F::Str)];
const ACCESS_REVIEW_SPEC: &[Field] = &[
    (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", F::Msg(NON_RESOURCE_ATTRIBUTES)),
    (3, "user", F::Str),
    (4, "groups", F::RepStr),
    (6, "uid", F::Str),
];
/// `kubectl auth can-i` (and the other access reviews).
const ACCESS_REVIEW: &[Field] = &[META, (2, "spec", F::Msg(ACCESS_REVIEW_SPEC))];
/// `kubectl auth can-i --list`.
const RULES_REVIEW: &[Field] = &[META, (2, "spec", F::Msg(&[(1, "namespace", F::Str)]))];
const TOKEN_REVIEW: &[Field] = &[META, (2, "spec", F::Msg(&[(1, "token", F::Str), (2, "audiences", F::RepStr)]))];

const PRECONDITIONS: &[Field] = &[(1, "uid", F::Str), (2, "resourceVersion", F::Str)];
/// The body of a DELETE from client-go clients that speak protobuf (Helm's release storage).
const DELETE_OPTIONS: &[Field] = &[
    (1, "gracePeriodSeconds", F::Int),
    (2, "preconditions", F::Msg(PRECONDITIONS)),
    (3, "orphanDependents", F::Bool),
    (4, "propagationPolicy", F::Str),
    (5, "dryRun", F::RepStr),
];

/// The message table of a kind, if generators send it.
fn table(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        // client-go stamps the options with the group version of the resource being deleted.
        (_, "DeleteOptions") => DELETE_OPTIONS,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("v1", "Service") => SERVICE,
        ("v1", "ResourceQuota") => RESOURCE_QUOTA,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("batch/v1", "Job") => JOB,
        ("batch/v1", "CronJob") => CRON_JOB,
        ("networking.k8s.io/v1", "Ingress") => INGRESS,
        ("policy/v1", "PodDisruptionBudget") => PDB,
        ("scheduling.k8s.io/v1", "PriorityClass") => PRIORITY_CLASS,
        ("rbac.authorization.k8s.io/v1", "Role") => ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => ROLE_BINDING,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        ("authentication.k8s.io/v1", "TokenReview") => TOKEN_REVIEW,
        // `kubectl auth whoami`: nothing to read but the kind.
        ("authentication.k8s.io/v1", "SelfSubjectReview") => &[META],
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            ACCESS_REVIEW
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => RULES_REVIEW,
        _ => return None,
    })
}

/// Decodes a `k8s\0`-prefixed `runtime.Unknown` envelope into a JSON object.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let bad = |m: &str| ApiError::bad_request(format!("unable to decode protobuf body: {m}"));
    let envelope = body.strip_prefix(b"k8s\x00").ok_or_else(|| bad("missing k8s magic"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (num, val) in fields(envelope).map_err(|e| bad(&e))? {
        match (num, val) {
            (1, Wire::Len(tm)) => {
                for (n, v) in fields(tm).map_err(|e| bad(&e))? {
                    match (n, v) {
                        (1, Wire::Len(s)) => api_version = String::from_utf8_lossy(s).into_owned(),
                        (2, Wire::Len(s)) => kind = String::from_utf8_lossy(s).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(r)) => raw = r,
            _ => {}
        }
    }
    let t = table(&api_version, &kind).ok_or_else(|| {
        ApiError::unsupported_media_type(&format!(
            "application/vnd.kubernetes.protobuf (for {kind} {api_version}; send JSON or YAML)"
        ))
    })?;
    let mut obj = message(raw, t).map_err(|e| bad(&e))?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len()).ok_or("truncated field")?;
                let w = Wire::Len(&buf[pos..end]);
                pos = end;
                w
            }
            1 => {
                pos += 8;
                Wire::Fixed
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((key >> 3, wire));
    }
    Ok(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn message(buf: &[u8], table: &[Field]) -> Result<Value, String> {
    let mut out = Map::new();
    for (num, wire) in fields(buf)? {
        let Some((_, name, f)) = table.iter().find(|(n, _, _)| *n == num) else { continue };
        let name = name.to_string();
        match (f, wire) {
            // Go's protobuf writes empty optional strings and zero numbers; JSON omits them.
            (F::Str, Wire::Len(b)) if !b.is_empty() => {
                out.insert(name, text(b));
            }
            (F::Bool, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(true));
            }
            (F::OptBool, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (F::Int, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(v as i64));
            }
            (F::OptInt, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (F::IntOrStr, Wire::Len(b)) => {
                out.insert(name, int_or_string(b)?);
            }
            (F::Inline(t), Wire::Len(b)) => {
                if let Value::Object(inner) = message(b, t)? {
                    out.extend(inner);
                }
            }
            (F::MapQuantity, Wire::Len(b)) => {
                let (mut k, mut v) = (String::new(), String::new());
                for (n, w) in fields(b)? {
                    match (n, w) {
                        (1, Wire::Len(x)) => k = String::from_utf8_lossy(x).into_owned(),
                        // resource.Quantity is a message holding its string form.
                        (2, Wire::Len(q)) => {
                            for (qn, qw) in fields(q)? {
                                if let (1, Wire::Len(x)) = (qn, qw) {
                                    v = String::from_utf8_lossy(x).into_owned();
                                }
                            }
                        }
                        _ => {}
                    }
                }
                let map = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = map.as_object_mut() {
                    m.insert(k, json!(v));
                }
            }
            (F::Time, Wire::Len(b)) => {
                let secs = fields(b)?.into_iter().find_map(|(n, w)| match (n, w) {
                    (1, Wire::Varint(s)) => Some(s as i64),
                    _ => None,
                });
                out.insert(name, secs.map_or(Value::Null, |s| json!(crate::meta::rfc3339(s))));
            }
            (F::Msg(t), Wire::Len(b)) => {
                out.insert(name, message(b, t)?);
            }
            (F::MapStr | F::MapBytes, Wire::Len(b)) => {
                let (mut k, mut v) = (String::new(), Value::String(String::new()));
                for (n, w) in fields(b)? {
                    match (n, w) {
                        (1, Wire::Len(x)) => k = String::from_utf8_lossy(x).into_owned(),
                        (2, Wire::Len(x)) if matches!(f, F::MapBytes) => {
                            v = json!(base64::engine::general_purpose::STANDARD.encode(x));
                        }
                        (2, Wire::Len(x)) => v = text(x),
                        _ => {}
                    }
                }
                let map = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = map.as_object_mut() {
                    m.insert(k, v);
                }
            }
            (F::RepStr, Wire::Len(b)) => push(&mut out, name, text(b)),
            (F::RepMsg(t), Wire::Len(b)) => push(&mut out, name, message(b, t)?),
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// `intstr.IntOrString`: type (0 int, 1 string), intVal, strVal.
fn int_or_string(b: &[u8]) -> Result<Value, String> {
    let (mut kind, mut int, mut text) = (0, 0i64, String::new());
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Varint(v)) => kind = v,
            (2, Wire::Varint(v)) => int = v as i64,
            (3, Wire::Len(x)) => text = String::from_utf8_lossy(x).into_owned(),
            _ => {}
        }
    }
    Ok(if kind == 1 { json!(text) } else { json!(int) })
}

fn push(out: &mut Map<String, Value>, name: String, v: Value) {
    let list = out.entry(name).or_insert_with(|| json!([]));
    if let Some(a) = list.as_array_mut() {
        a.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(num: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(num << 3) | 2, u8::try_from(bytes.len()).expect("short")];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn delete_options_from_a_protobuf_client_are_decoded() {
        let type_meta = [len_field(1, b"v1"), len_field(2, b"DeleteOptions")].concat();
        let grace = [1 << 3, 5];
        let options = [&grace[..], &len_field(4, b"Background"), &len_field(5, b"All")].concat();
        let body = [&b"k8s\x00"[..], &len_field(1, &type_meta), &len_field(2, &options)].concat();
        let decoded = decode(&body).expect("decoded");
        assert_eq!(decoded["kind"], "DeleteOptions");
        assert_eq!(decoded["gracePeriodSeconds"], 5);
        assert_eq!(decoded["propagationPolicy"], "Background");
        assert_eq!(decoded["dryRun"], json!(["All"]));
    }
}
