//! The reviews, answered at once and never stored: access reviews (`kubectl auth can-i`), rules
//! reviews (`kubectl auth can-i --list`), token reviews and `kubectl auth whoami`.

use serde_json::{Value, json};

use super::authn::Authenticator;
use super::authz;
use super::rbac::{Decision, PolicyRule};
use super::tokens::ISSUER;
use super::user::UserInfo;
use crate::errors::{ApiError, ApiResult, Cause};
use crate::ops::Cluster;
use crate::request_info::RequestInfo;

/// What a review needs to be answered.
pub struct Review<'a> {
    pub cluster: &'a Cluster,
    pub authenticator: &'a Authenticator,
    /// Who created the review.
    pub user: &'a UserInfo,
    /// The namespace of the path (LocalSubjectAccessReview).
    pub namespace: &'a str,
}

impl Review<'_> {
    /// The answer to the review `plural` of `group` (the body, with its status filled in).
    pub fn answer(&self, group: &str, plural: &str, body: &Value) -> ApiResult<Value> {
        let spec = body.get("spec").cloned().unwrap_or(json!({}));
        let (kind, status) = match plural {
            "selfsubjectaccessreviews" => {
                ("SelfSubjectAccessReview", self.access(self.user, &spec, "SelfSubjectAccessReview")?)
            }
            "subjectaccessreviews" => {
                ("SubjectAccessReview", self.access(&subject(&spec)?, &spec, "SubjectAccessReview")?)
            }
            "localsubjectaccessreviews" => ("LocalSubjectAccessReview", self.local_access(&spec)?),
            "selfsubjectrulesreviews" => ("SelfSubjectRulesReview", self.rules(&spec)),
            "tokenreviews" => ("TokenReview", self.token(&spec)),
            "selfsubjectreviews" => ("SelfSubjectReview", json!({"userInfo": self.user})),
            _ => return Err(ApiError::no_route()),
        };
        let mut metadata = json!({"creationTimestamp": null});
        if !self.namespace.is_empty() {
            metadata["namespace"] = json!(self.namespace);
        }
        Ok(
            json!({"kind": kind, "apiVersion": format!("{group}/v1"), "metadata": metadata, "spec": spec, "status": status}),
        )
    }

    fn access(&self, user: &UserInfo, spec: &Value, kind: &str) -> ApiResult<Value> {
        let request = attributes(spec, kind)?;
        Ok(match authz::decide(self.cluster, user, &request) {
            Decision::Allowed(reason) if reason.is_empty() => json!({"allowed": true}),
            Decision::Allowed(reason) => json!({"allowed": true, "reason": reason}),
            Decision::Denied => json!({"allowed": false}),
        })
    }

    fn local_access(&self, spec: &Value) -> ApiResult<Value> {
        let namespace = spec.pointer("/resourceAttributes/namespace").and_then(Value::as_str).unwrap_or("");
        if namespace != self.namespace {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {}",
                self.namespace
            )));
        }
        self.access(&subject(spec)?, spec, "LocalSubjectAccessReview")
    }

    fn rules(&self, spec: &Value) -> Value {
        let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
        let rules = authz::policy(self.cluster).rules_for(self.user, namespace);
        let (non_resource, resource): (Vec<&PolicyRule>, Vec<&PolicyRule>) =
            rules.iter().partition(|r| !r.non_resource_urls.is_empty());
        let resource: Vec<Value> = resource
            .iter()
            .map(|r| {
                let mut v = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                if !r.resource_names.is_empty() {
                    v["resourceNames"] = json!(r.resource_names);
                }
                v
            })
            .collect();
        let non_resource: Vec<Value> =
            non_resource.iter().map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls})).collect();
        json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false})
    }

    fn token(&self, spec: &Value) -> Value {
        let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
        match self.authenticator.token_user(self.cluster, token) {
            Some(user) => json!({"authenticated": true, "user": user, "audiences": [ISSUER]}),
            None => json!({"user": {}, "error": "invalid bearer token"}),
        }
    }
}

/// The user a SubjectAccessReview asks about (exactly the groups given, none added).
fn subject(spec: &Value) -> ApiResult<UserInfo> {
    let user = UserInfo {
        username: spec.get("user").and_then(Value::as_str).unwrap_or("").to_string(),
        uid: spec.get("uid").and_then(Value::as_str).unwrap_or("").to_string(),
        groups: serde_json::from_value(spec.get("groups").cloned().unwrap_or(json!([]))).unwrap_or_default(),
        extra: serde_json::from_value(spec.get("extra").cloned().unwrap_or(json!({}))).unwrap_or_default(),
    };
    if user.username.is_empty() && user.groups.is_empty() {
        let cause = Cause::new(
            "FieldValueInvalid",
            "spec.user",
            "Invalid value: \"\": at least one of user or group must be specified",
        );
        return Err(ApiError::invalid("SubjectAccessReview.authorization.k8s.io", "", vec![cause]));
    }
    Ok(user)
}

/// The request a review asks about: its resourceAttributes or its nonResourceAttributes.
fn attributes(spec: &Value, kind: &str) -> ApiResult<RequestInfo> {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match (spec.get("resourceAttributes"), spec.get("nonResourceAttributes")) {
        (Some(r), None) => Ok(RequestInfo {
            verb: field(r, "verb"),
            is_resource: true,
            group: field(r, "group"),
            version: field(r, "version"),
            resource: field(r, "resource"),
            subresource: field(r, "subresource"),
            namespace: field(r, "namespace"),
            name: field(r, "name"),
            ..RequestInfo::default()
        }),
        (None, Some(n)) => Ok(RequestInfo { verb: field(n, "verb"), path: field(n, "path"), ..RequestInfo::default() }),
        (Some(_), Some(_)) => Err(invalid_spec(
            kind,
            "spec.nonResourceAttributes",
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => Err(invalid_spec(
            kind,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

fn invalid_spec(kind: &str, field: &str, why: &str) -> ApiError {
    let cause = Cause::new("FieldValueInvalid", field, format!("Invalid value: \"null\": {why}"));
    ApiError::invalid(&format!("{kind}.authorization.k8s.io"), "", vec![cause])
}
