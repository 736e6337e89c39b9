//! Admission webhooks as the real server selects and obeys them, as pure functions: the webhooks
//! of a configuration, whether one applies to a request (rules, scope, matchPolicy, namespace
//! and object selectors), the AdmissionReview it is sent, and what its answer means (allowed,
//! a JSONPatch, warnings, or a denial worded as the real server words it).

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::errors::ApiError;
use crate::selectors::LabelSelector;

/// The default and the largest `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// One `rules` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    /// `*` (the default), `Cluster` or `Namespaced`.
    pub scope: String,
}

/// One webhook of a Validating- or MutatingWebhookConfiguration.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub name: String,
    pub client_config: Value,
    pub rules: Vec<Rule>,
    /// failurePolicy Fail (the default): a failed call fails the request.
    pub fail_closed: bool,
    /// matchPolicy Equivalent (the default): a rule naming another version of the resource applies.
    pub equivalent: bool,
    pub namespace_selector: LabelSelector,
    pub object_selector: LabelSelector,
    /// `None` or `NoneOnDryRun`: the webhook may be called for dry runs.
    pub dry_run_safe: bool,
    pub timeout: Duration,
    /// reinvocationPolicy IfNeeded (mutating webhooks).
    pub reinvoke: bool,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

/// The webhooks of a configuration, in order.
pub fn webhooks(configuration: &Value) -> Vec<Webhook> {
    let hooks = configuration.get("webhooks").and_then(Value::as_array).cloned().unwrap_or_default();
    hooks.iter().map(webhook).collect()
}

fn webhook(w: &Value) -> Webhook {
    let text = |k: &str| w.get(k).and_then(Value::as_str).unwrap_or("");
    let selector = |k: &str| w.get(k).and_then(|s| LabelSelector::from_object(s).ok()).unwrap_or_default();
    let rules = w.get("rules").and_then(Value::as_array).into_iter().flatten().map(|r| Rule {
        operations: strings(r.get("operations")),
        api_groups: strings(r.get("apiGroups")),
        api_versions: strings(r.get("apiVersions")),
        resources: strings(r.get("resources")),
        scope: r.get("scope").and_then(Value::as_str).unwrap_or("*").to_string(),
    });
    let timeout = w.get("timeoutSeconds").and_then(Value::as_u64).map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT);
    Webhook {
        name: text("name").to_string(),
        client_config: w.get("clientConfig").cloned().unwrap_or(json!({})),
        rules: rules.collect(),
        fail_closed: text("failurePolicy") != "Ignore",
        equivalent: text("matchPolicy") != "Exact",
        namespace_selector: selector("namespaceSelector"),
        object_selector: selector("objectSelector"),
        dry_run_safe: matches!(text("sideEffects"), "None" | "NoneOnDryRun"),
        timeout: timeout.min(MAX_TIMEOUT),
        reinvoke: text("reinvocationPolicy") == "IfNeeded",
    }
}

/// A request, as webhook rules see it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: &'static str,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// "" for cluster-scoped objects.
    pub namespace: String,
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

impl Rule {
    fn matches(&self, r: &Request, version: &str) -> bool {
        has(&self.operations, r.operation)
            && has(&self.api_groups, &r.group)
            && has(&self.api_versions, version)
            && self.resources.iter().any(|res| {
                let (res, sub) = res.split_once('/').unwrap_or((res.as_str(), ""));
                (res == "*" || res == r.resource) && (sub == "*" || sub == r.subresource)
            })
            && self.scope_matches(r)
    }

    /// Namespace objects are cluster-scoped, whatever namespace their requests name.
    fn scope_matches(&self, r: &Request) -> bool {
        let cluster_scoped = r.namespace.is_empty() || (r.group.is_empty() && r.resource == "namespaces");
        match self.scope.as_str() {
            "Cluster" => cluster_scoped,
            "Namespaced" => !cluster_scoped,
            _ => true,
        }
    }
}

/// The version of the resource `webhook` is called with: the request's own when a rule names it,
/// else (matchPolicy Equivalent) the first of the resource's other `served` versions a rule
/// names; None when the webhook does not apply.
pub fn version_for(webhook: &Webhook, r: &Request, served: &[String]) -> Option<String> {
    if webhook.rules.iter().any(|rule| rule.matches(r, &r.version)) {
        return Some(r.version.clone());
    }
    if !webhook.equivalent {
        return None;
    }
    served.iter().find(|v| *v != &r.version && webhook.rules.iter().any(|rule| rule.matches(r, v))).cloned()
}

/// Whether the selectors let the webhook see the request: the namespace's labels (cluster-scoped
/// objects other than namespaces are never excluded) and the labels of the object or the old one.
pub fn selected(
    webhook: &Webhook,
    r: &Request,
    namespace: Option<&Value>,
    object: Option<&Value>,
    old: Option<&Value>,
) -> bool {
    let namespace_ok = if r.namespace.is_empty() && !(r.group.is_empty() && r.resource == "namespaces") {
        true
    } else {
        namespace.is_some_and(|ns| webhook.namespace_selector.matches(ns)) || webhook.namespace_selector.is_empty()
    };
    let object_ok = webhook.object_selector.is_empty()
        || [object, old].into_iter().flatten().any(|o| webhook.object_selector.matches(o));
    namespace_ok && object_ok
}

/// What a review carries besides the request's resource.
#[derive(Debug, Clone)]
pub struct Review<'a> {
    pub uid: &'a str,
    pub request: &'a Request,
    /// The version the webhook sees (see [`version_for`]) and the kind in it.
    pub version: &'a str,
    pub kind: &'a str,
    /// The request's own group, version and kind (`requestKind`).
    pub request_kind: (&'a str, &'a str, &'a str),
    pub name: &'a str,
    pub user: &'a UserInfo,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub dry_run: bool,
    /// CreateOptions, UpdateOptions, PatchOptions or DeleteOptions.
    pub options: Value,
}

/// The AdmissionReview v1 sent to a webhook.
pub fn review(r: &Review<'_>) -> Value {
    let q = r.request;
    let (group, version, kind) = r.request_kind;
    let mut request = json!({
        "uid": r.uid,
        "kind": {"group": q.group, "version": r.version, "kind": r.kind},
        "resource": {"group": q.group, "version": r.version, "resource": q.resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": q.group, "version": q.version, "resource": q.resource},
        "name": r.name,
        "operation": q.operation,
        "userInfo": r.user,
        "object": r.object,
        "oldObject": r.old_object,
        "dryRun": r.dry_run,
        "options": r.options,
    });
    if !q.namespace.is_empty() {
        request["namespace"] = json!(q.namespace);
    }
    if !q.subresource.is_empty() {
        request["subResource"] = json!(q.subresource);
        request["requestSubResource"] = json!(q.subresource);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// What a webhook answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Allowed, with the JSONPatch operations of a mutating webhook's patch, and warnings.
    Allowed { patch: Option<Value>, warnings: Vec<String> },
    /// Denied: the Status the request fails with.
    Denied(ApiError),
}

/// Reads an AdmissionReview answer; Err says why it is not a valid one.
pub fn verdict(name: &str, uid: &str, answer: &Value) -> Result<Verdict, String> {
    if answer.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || answer.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}, Kind={}",
            answer.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
            answer.get("kind").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let response = answer.get("response").ok_or("response was absent")?;
    let answered = response.get("uid").and_then(Value::as_str).unwrap_or("");
    if answered != uid {
        return Err(format!("expected response.uid={uid:?}, got {answered:?}"));
    }
    let warnings = strings(response.get("warnings"));
    if response.get("allowed").and_then(Value::as_bool) != Some(true) {
        return Ok(Verdict::Denied(denied(name, response.get("status"))));
    }
    let patch = match response.get("patch").and_then(Value::as_str) {
        None => None,
        Some(encoded) => {
            let patch_type = response.get("patchType").and_then(Value::as_str).unwrap_or("");
            if patch_type != "JSONPatch" {
                return Err(format!("patchType must be JSONPatch, got {patch_type:?}"));
            }
            let raw = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| e.to_string())?;
            Some(serde_json::from_slice(&raw).map_err(|e| e.to_string())?)
        }
    };
    Ok(Verdict::Allowed { patch, warnings })
}

/// `admission webhook "x" denied the request: <message>`, with the webhook's code (at least 400)
/// and reason.
fn denied(name: &str, status: Option<&Value>) -> ApiError {
    let field = |k: &str| status.and_then(|s| s.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
    let denied_by = format!("admission webhook {name:?} denied the request");
    let (message, reason) = (field("message"), field("reason"));
    let message = match (message.is_empty(), reason.is_empty()) {
        (false, _) => format!("{denied_by}: {message}"),
        (true, false) => format!("{denied_by}: {reason}"),
        (true, true) => format!("{denied_by} without explanation"),
    };
    let code = status.and_then(|s| s.get("code")).and_then(Value::as_u64).unwrap_or(400).max(400);
    let code = u16::try_from(code).unwrap_or(400);
    let mut error = ApiError::new(code, reason_of(&reason), message);
    if let Some(details) = status.and_then(|s| s.get("details")) {
        error = error.with_details(details.clone());
    }
    error
}

/// The reasons a Status may carry (its reason field is an enumeration).
fn reason_of(reason: &str) -> &'static str {
    const KNOWN: [&str; 12] = [
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
    ];
    KNOWN.into_iter().find(|k| *k == reason).unwrap_or("")
}

/// The 500 of a webhook call that failed under failurePolicy Fail.
pub fn call_failed(name: &str, why: &str) -> ApiError {
    ApiError::internal(format!("Internal error occurred: failed calling webhook {name:?}: {why}"))
}

/// The 400 of a dry run meeting a webhook with side effects.
pub fn dry_run_unsupported(name: &str) -> ApiError {
    ApiError::bad_request(format!("admission webhook {name:?} does not support dry run"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(operation: &'static str, resource: &str, sub: &str, ns: &str) -> Request {
        Request {
            operation,
            group: "example.com".into(),
            version: "v2".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
        }
    }

    fn hook(rule: Value, extra: Value) -> Webhook {
        let mut w = json!({"name": "w.example.com", "rules": [rule], "sideEffects": "None"});
        if let (Some(w), Some(extra)) = (w.as_object_mut(), extra.as_object()) {
            w.extend(extra.clone());
        }
        webhook(&w)
    }

    #[test]
    fn rules_match_operations_resources_subresources_and_scope() {
        let rule = json!({"operations": ["CREATE"], "apiGroups": ["example.com"], "apiVersions": ["*"],
                          "resources": ["widgets", "gadgets/status"], "scope": "Namespaced"});
        let w = hook(rule, json!({}));
        let served = ["v2".to_string()];
        assert!(version_for(&w, &request("CREATE", "widgets", "", "ns"), &served).is_some());
        assert!(version_for(&w, &request("UPDATE", "widgets", "", "ns"), &served).is_none());
        assert!(version_for(&w, &request("CREATE", "widgets", "status", "ns"), &served).is_none());
        assert!(version_for(&w, &request("CREATE", "gadgets", "status", "ns"), &served).is_some());
        assert!(version_for(&w, &request("CREATE", "widgets", "", ""), &served).is_none(), "cluster-scoped");
        let all = hook(
            json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}),
            json!({}),
        );
        assert!(version_for(&all, &request("DELETE", "widgets", "scale", ""), &served).is_some());
    }

    #[test]
    fn match_policy_equivalent_reaches_other_versions_and_exact_does_not() {
        let rule =
            json!({"operations": ["*"], "apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["widgets"]});
        let served = ["v2".to_string(), "v1".to_string()];
        let r = request("CREATE", "widgets", "", "ns");
        assert_eq!(version_for(&hook(rule.clone(), json!({})), &r, &served), Some("v1".into()));
        assert_eq!(version_for(&hook(rule, json!({"matchPolicy": "Exact"})), &r, &served), None);
    }

    #[test]
    fn selectors_see_the_namespace_and_either_object() {
        let w = hook(
            json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}),
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}},
                   "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}}),
        );
        let r = request("UPDATE", "widgets", "", "ns");
        let ns = |team: &str| json!({"metadata": {"labels": {"team": team}}});
        let plain = json!({"metadata": {}});
        let skipped = json!({"metadata": {"labels": {"skip": "yes"}}});
        assert!(selected(&w, &r, Some(&ns("a")), Some(&plain), None));
        assert!(!selected(&w, &r, Some(&ns("b")), Some(&plain), None));
        assert!(!selected(&w, &r, Some(&ns("a")), Some(&skipped), Some(&skipped)));
        assert!(selected(&w, &r, Some(&ns("a")), Some(&skipped), Some(&plain)), "the old object matches");
        assert!(selected(&w, &request("UPDATE", "widgets", "", ""), None, Some(&plain), None), "cluster-scoped");
    }

    #[test]
    fn answers_are_read_and_denials_worded_as_the_real_server() {
        let patch = base64::engine::general_purpose::STANDARD.encode(r#"[{"op":"add","path":"/x","value":1}]"#);
        let ok = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "response": {"uid": "u", "allowed": true, "patch": patch, "patchType": "JSONPatch", "warnings": ["w1"]}});
        assert_eq!(
            verdict("h", "u", &ok),
            Ok(Verdict::Allowed {
                patch: Some(json!([{"op": "add", "path": "/x", "value": 1}])),
                warnings: vec!["w1".into()]
            })
        );
        let no = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "response": {"uid": "u", "allowed": false, "status": {"code": 403, "message": "not on Sundays"}}});
        let Ok(Verdict::Denied(e)) = verdict("h", "u", &no) else { panic!("denied") };
        assert_eq!((e.code, e.message.as_str()), (403, r#"admission webhook "h" denied the request: not on Sundays"#));
        let bare = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": false}});
        let Ok(Verdict::Denied(e)) = verdict("h", "u", &bare) else { panic!("denied") };
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, r#"admission webhook "h" denied the request without explanation"#)
        );
        assert!(verdict("h", "other", &ok).is_err_and(|e| e.contains("expected response.uid")));
    }
}
