//! Kubernetes `Status` errors, worded like the real kube-apiserver.
//!
//! Every non-2xx answer carries a `kind: Status` body: kube-client fails with "Failed to parse
//! error data" otherwise, and kubectl prints `message` verbatim.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// A failed API call, rendered as a `metav1.Status`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (name, group, kind, causes, retryAfterSeconds).
    pub details: Option<Value>,
}

/// Identifies the object an error is about, for `details`.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub group: &'a str,
    /// The resource (plural) name, e.g. `configmaps`.
    pub plural: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    /// `configmaps` or `deployments.apps`, as the real messages write it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    fn details(&self) -> Value {
        json!({"name": self.name, "group": self.group, "kind": self.plural})
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(s: Subject<'_>) -> Self {
        Self::new(404, "NotFound", format!("{} \"{}\" not found", s.qualified(), s.name)).with_details(s.details())
    }

    pub fn already_exists(s: Subject<'_>) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{}\" already exists", s.qualified(), s.name))
            .with_details(s.details())
    }

    /// The optimistic-concurrency failure of an update.
    pub fn conflict(s: Subject<'_>, why: &str) -> Self {
        Self::new(409, "Conflict", format!("Operation cannot be fulfilled on {} \"{}\": {why}", s.qualified(), s.name))
            .with_details(s.details())
    }

    /// The standard stale-resourceVersion conflict.
    pub fn stale(s: Subject<'_>) -> Self {
        Self::conflict(s, "the object has been modified; please apply your changes to the latest version and try again")
    }

    /// 422 Invalid; `kind_group` is e.g. `ConfigMap` or `Widget.example.com`.
    pub fn invalid(kind_group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes.iter().map(|c| c.display()).collect();
        let message = if list.len() == 1 {
            format!("{kind_group} \"{name}\" is invalid: {}", list[0])
        } else {
            format!("{kind_group} \"{name}\" is invalid: [{}]", list.join(", "))
        };
        Self::invalid_with_message(kind_group, name, message, causes)
    }

    /// 422 with a message computed elsewhere (e.g. by the schema module).
    pub fn invalid_with_message(kind_group: &str, name: &str, message: String, causes: Vec<Cause>) -> Self {
        let (kind, group) = kind_group.split_once('.').unwrap_or((kind_group, ""));
        let causes: Vec<Value> = causes.iter().map(Cause::to_json).collect();
        Self::new(422, "Invalid", message)
            .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// The 401 of a request without valid credentials (the real body says no more).
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410 for an expired resourceVersion or continue token.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn gone_too_old(rv: u64) -> Self {
        Self::expired(format!("too old resource version: {rv}"))
    }

    /// A patch type the resource does not accept (strategic merge on custom resources).
    pub fn unsupported_patch_type() -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    }

    /// A request body in a media type the server cannot decode.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type}"
            ),
        )
    }

    /// 429 with `Retry-After` (kube-client retries these).
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self::new(429, "TooManyRequests", "Too many requests, please try again later.")
            .with_details(json!({"retryAfterSeconds": retry_after_seconds}))
    }

    /// 504 Timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The 404 for a path that names no resource at all.
    pub fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

/// A Status answer (429 and 503 with `retryAfterSeconds` also carry Retry-After).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.details.as_ref().and_then(|d| d.get("retryAfterSeconds")).and_then(Value::as_u64);
        let mut resp = (code, Json(self.to_status())).into_response();
        if let Some(h) = retry_after.and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok()) {
            resp.headers_mut().insert(header::RETRY_AFTER, h);
        }
        resp
    }
}

/// One `details.causes` entry of a 422.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// e.g. `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`.
    pub reason: String,
    pub field: String,
    /// The message after the field path, e.g. `Invalid value: "x": must be ...`.
    pub message: String,
}

impl Cause {
    pub fn new(reason: &str, field: &str, message: impl Into<String>) -> Self {
        Self { reason: reason.to_string(), field: field.to_string(), message: message.into() }
    }

    pub fn display(&self) -> String {
        if self.field.is_empty() { self.message.clone() } else { format!("{}: {}", self.field, self.message) }
    }

    fn to_json(&self) -> Value {
        // The real server's cause message leaves the field out (kubectl prints "field: message").
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }
}

/// The Status a successful DELETE answers when the object is gone at once.
pub fn success_status(s: Subject<'_>, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": s.name, "group": s.group, "kind": s.plural, "uid": uid},
    })
}
