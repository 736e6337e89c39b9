//! The Kubernetes API over HTTP: routing of /api, /apis, discovery and OpenAPI paths to the
//! cluster, content negotiation and response encoding.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::auth::authn::Authenticator;
use crate::auth::reviews::Review;
use crate::errors::{ApiError, ApiResult, Cause};
use crate::ops::{Cluster, FieldValidation, Filter, ListQuery, PatchKind, Sub, Target, WriteOp, WriteOptions, Written};
use crate::request_info::percent_decode;
use crate::requests::Context;
use crate::table::{IncludeObject, partial_metadata, table};
use crate::watch::{Shape, WatchParams};
use crate::{discovery, openapi};

/// The Kubernetes API of `cluster` as an axum router, without authentication, authorization or
/// instruments (the `Emulator`'s router layers them over this one). A request is answered as the
/// `UserInfo` in its extensions (authentication puts it there), or as the admin.
pub fn router(requests: Context, authenticator: Arc<Authenticator>) -> Router {
    let cluster = requests.cluster.clone();
    Router::new().fallback(handle).with_state(Api { cluster, requests, authenticator })
}

/// What the API answers from.
#[derive(Clone)]
struct Api {
    cluster: Arc<Cluster>,
    /// Conversion and admission webhooks around the cluster.
    requests: Context,
    /// Issues ServiceAccount tokens and reviews them.
    authenticator: Arc<Authenticator>,
}

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A decoded request.
struct Req {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    accept: String,
    content_type: String,
    body: Bytes,
    user: UserInfo,
}

impl Req {
    fn q(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.q(key), Some("true" | "1" | "True"))
    }
}

async fn handle(State(api): State<Api>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let header_str =
        |h: header::HeaderName| parts.headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let r = Req {
        method: parts.method.clone(),
        segments: parts.uri.path().split('/').filter(|s| !s.is_empty()).map(percent_decode).collect(),
        query: parse_query(parts.uri.query().unwrap_or("")),
        accept: header_str(header::ACCEPT),
        content_type: header_str(header::CONTENT_TYPE),
        body,
        user: parts.extensions.get::<UserInfo>().cloned().unwrap_or_else(UserInfo::admin),
    };
    match dispatch(&api, &r).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(api: &Api, r: &Req) -> ApiResult<Response> {
    let cluster = &api.cluster;
    let segs: Vec<&str> = r.segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["version"] => Ok(json_response(StatusCode::OK, &discovery::version())),
        ["healthz" | "readyz" | "livez", ..] => Ok(text_response(StatusCode::OK, "ok")),
        ["openapi", "v2"] => openapi_v2(cluster, r),
        ["openapi", "v3"] => Ok(json_response(StatusCode::OK, &openapi::v3_root(&cluster.store.lock().registry))),
        ["openapi", "v3", "api", v] => openapi_gv(cluster, "", v),
        ["openapi", "v3", "apis", g, v] => openapi_gv(cluster, g, v),
        ["api"] => Ok(discovery_root(cluster, r, true)),
        ["apis"] => Ok(discovery_root(cluster, r, false)),
        ["api", v] => resource_list_doc(cluster, "", v),
        ["apis", g] => {
            let doc = discovery::api_group(&cluster.store.lock().registry, g).ok_or_else(ApiError::no_route)?;
            Ok(json_response(StatusCode::OK, &doc))
        }
        ["apis", g, v] => resource_list_doc(cluster, g, v),
        ["api", "v1", "namespaces", ns, "serviceaccounts", name, "token"] => token_request(api, r, ns, name),
        ["api", v, rest @ ..] => resource(api, r, "", v, rest).await,
        ["apis", g, v, rest @ ..] => resource(api, r, g, v, rest).await,
        _ => Err(ApiError::no_route()),
    }
}

fn openapi_gv(cluster: &Arc<Cluster>, group: &str, version: &str) -> ApiResult<Response> {
    let registry = cluster.store.lock().registry.clone();
    let doc = openapi::v3_group_version(&registry, group, version).ok_or_else(ApiError::no_route)?;
    Ok(json_response(StatusCode::OK, &doc))
}

/// `/openapi/v2`, in protobuf when the client asks for it first (client-go does), else JSON.
fn openapi_v2(cluster: &Arc<Cluster>, r: &Req) -> ApiResult<Response> {
    let registry = cluster.store.lock().registry.clone();
    let doc = openapi::v2(&registry);
    let first = r.accept.split(',').next().unwrap_or("").trim();
    if first.starts_with("application/com.github.proto-openapi.spec.v2") {
        let mut resp = Response::new(Body::from(openapi::protobuf::encode(&doc)));
        let content_type = HeaderValue::from_static(openapi::protobuf::CONTENT_TYPE);
        resp.headers_mut().insert(header::CONTENT_TYPE, content_type);
        return Ok(resp);
    }
    Ok(json_response(StatusCode::OK, &doc))
}

fn discovery_root(cluster: &Arc<Cluster>, r: &Req, legacy: bool) -> Response {
    let reg = cluster.store.lock().registry.clone();
    if r.accept.contains("as=APIGroupDiscoveryList") {
        let mut resp = json_response(StatusCode::OK, &discovery::aggregated(&reg, legacy));
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE));
        return resp;
    }
    let doc = if legacy { discovery::api_versions() } else { discovery::api_group_list(&reg) };
    json_response(StatusCode::OK, &doc)
}

fn resource_list_doc(cluster: &Arc<Cluster>, group: &str, version: &str) -> ApiResult<Response> {
    let doc =
        discovery::api_resource_list(&cluster.store.lock().registry, group, version).ok_or_else(ApiError::no_route)?;
    Ok(json_response(StatusCode::OK, &doc))
}

/// Splits `[namespaces/{ns}/]{plural}[/{name}[/{sub}]]` and resolves the type.
fn parse_target(cluster: &Arc<Cluster>, group: &str, version: &str, rest: &[&str]) -> ApiResult<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !(tail.is_empty() && matches!(*plural, "status" | "finalize")) => {
            (*ns, [&[*plural][..], tail].concat())
        }
        _ => ("", rest.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [p] => (*p, "", None),
        [p, n] => (*p, *n, None),
        [p, n, s] => {
            let sub = match *s {
                "status" => Sub::Status,
                "scale" => Sub::Scale,
                "finalize" => Sub::Finalize,
                "eviction" => Sub::Eviction,
                "resize" => Sub::Resize,
                _ => return Err(ApiError::no_route()),
            };
            (*p, *n, Some(sub))
        }
        _ => return Err(ApiError::no_route()),
    };
    let mut t = cluster.target(group, version, plural, namespace, name)?;
    // Namespaced kinds need a namespace except for cluster-wide lists; cluster kinds have none.
    let bad_scope = if t.rt.namespaced { namespace.is_empty() && !name.is_empty() } else { !namespace.is_empty() };
    if bad_scope {
        return Err(ApiError::no_route());
    }
    let ok_sub = match sub {
        None => true,
        Some(Sub::Status) => t.rt.has_status(version),
        Some(Sub::Scale) => t.rt.scale(version).is_some() || t.rt.group == "apps",
        Some(Sub::Finalize) => t.rt.group.is_empty() && t.rt.plural == "namespaces",
        Some(Sub::Eviction | Sub::Resize) => t.rt.group.is_empty() && t.rt.plural == "pods",
    };
    if !ok_sub {
        return Err(ApiError::no_route());
    }
    t.sub = sub;
    Ok(t)
}

async fn resource(api: &Api, r: &Req, group: &str, version: &str, rest: &[&str]) -> ApiResult<Response> {
    let t = parse_target(&api.cluster, group, version, rest)?;
    // Every request at a deprecated version is answered with its warning, reads and watches too.
    let deprecation = t.rt.deprecation(&t.version);
    let mut response = serve_target(api, r, t).await?;
    if let Some(warning) = deprecation {
        append_warning(&mut response, &warning);
    }
    Ok(response)
}

async fn serve_target(api: &Api, r: &Req, t: Target) -> ApiResult<Response> {
    let requests = &api.requests;
    if t.rt.is_review() {
        return review(api, r, &t);
    }
    if t.sub == Some(Sub::Eviction) {
        if r.method != Method::POST {
            return Err(not_allowed());
        }
        let answer = api.cluster.evict(&t, &decode_body(r)?, &write_options(r)?)?;
        return Ok(json_response(StatusCode::CREATED, &answer));
    }
    let shape = negotiate(&r.accept, r.q("includeObject"))?;
    let collection = t.name.is_empty();
    let user = &r.user;
    match (&r.method, collection) {
        (&Method::GET, true) if r.flag("watch") => watch_response(requests, t, r, shape),
        (&Method::GET, true) => list_response(requests, &t, r, shape).await,
        (&Method::GET, false) => {
            let obj = requests.get(&t).await?;
            Ok(json_response(StatusCode::OK, &render_one(&t, obj, shape)))
        }
        (&Method::POST, true) if !t.namespace.is_empty() || !t.rt.namespaced => {
            let w = requests.write(&t, WriteOp::Create(decode_body(r)?), write_options(r)?, user).await?;
            Ok(written_response(StatusCode::CREATED, &t, w, shape))
        }
        (&Method::PUT, false) => {
            let w = requests.write(&t, WriteOp::Replace(decode_body(r)?), write_options(r)?, user).await?;
            Ok(written_response(StatusCode::OK, &t, w, shape))
        }
        (&Method::PATCH, false) => {
            let kind = patch_kind(&r.content_type)?;
            let patch = if kind == PatchKind::Apply { decode_yaml(&r.body)? } else { decode_json(&r.body)? };
            let w = requests.write(&t, WriteOp::Patch(kind, patch), write_options(r)?, user).await?;
            let code = if w.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(written_response(code, &t, w, shape))
        }
        (&Method::DELETE, false) => {
            let (opts, wo) = delete_options(r)?;
            let obj = requests.delete(&t, &opts, &wo, user).await?;
            Ok(json_response(StatusCode::OK, &obj))
        }
        (&Method::DELETE, true) => {
            let (opts, wo) = delete_options(r)?;
            let list = requests.delete_collection(&t, &list_query(r), &opts, &wo, user).await?;
            Ok(json_response(StatusCode::OK, &list))
        }
        _ => Err(not_allowed()),
    }
}

/// A review (`kubectl auth can-i`, `whoami`, token reviews): created, answered, never stored.
fn review(api: &Api, r: &Req, t: &Target) -> ApiResult<Response> {
    if r.method != Method::POST || !t.name.is_empty() {
        return Err(not_allowed());
    }
    let review =
        Review { cluster: &api.cluster, authenticator: &api.authenticator, user: &r.user, namespace: &t.namespace };
    let answer = review.answer(&t.rt.group, &t.rt.plural, &decode_body(r)?)?;
    Ok(json_response(StatusCode::CREATED, &answer))
}

/// `kubectl create token`: the TokenRequest subresource of a ServiceAccount.
fn token_request(api: &Api, r: &Req, namespace: &str, name: &str) -> ApiResult<Response> {
    if r.method != Method::POST {
        return Err(not_allowed());
    }
    let answer = api.authenticator.token_request(&api.cluster, namespace, name, &decode_body(r)?)?;
    Ok(json_response(StatusCode::CREATED, &answer))
}

fn not_allowed() -> ApiError {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
}

/// Picks the first acceptable representation from the Accept header.
fn negotiate(accept: &str, include: Option<&str>) -> ApiResult<Shape> {
    if accept.trim().is_empty() {
        return Ok(Shape::Full);
    }
    for option in accept.split(',') {
        let option = option.trim();
        let media = option.split(';').next().unwrap_or("").trim();
        if !matches!(media, "application/json" | "*/*" | "application/*" | "application/yaml") {
            continue;
        }
        if option.contains("as=Table") {
            if option.contains("v=v1beta1") {
                continue;
            }
            return Ok(Shape::Table(IncludeObject::parse(include.unwrap_or(""))));
        }
        if option.contains("as=PartialObjectMetadata") {
            return Ok(Shape::Metadata);
        }
        if option.contains("as=") {
            continue;
        }
        return Ok(Shape::Full);
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json; got {accept}"
    )))
}

fn render_one(t: &Target, obj: Value, shape: Shape) -> Value {
    match shape {
        Shape::Full => obj,
        Shape::Metadata => partial_metadata(&obj),
        Shape::Table(inc) if t.sub.is_none() => {
            let rv = obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""));
            table(&t.rt, &t.version, &[obj], json!({"resourceVersion": rv}), inc, true)
        }
        Shape::Table(_) => obj,
    }
}

fn list_query(r: &Req) -> ListQuery {
    ListQuery {
        label_selector: r.q("labelSelector").unwrap_or("").to_string(),
        field_selector: r.q("fieldSelector").unwrap_or("").to_string(),
        limit: r.q("limit").and_then(|l| l.parse().ok()),
        continue_token: r.q("continue").map(String::from),
    }
}

async fn list_response(requests: &Context, t: &Target, r: &Req, shape: Shape) -> ApiResult<Response> {
    let page = requests.list(t, &list_query(r)).await?;
    let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    let body = match shape {
        Shape::Table(inc) => table(&t.rt, &t.version, &page.items, meta, inc, true),
        Shape::Metadata => json!({
            "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "items": page.items.iter().map(partial_metadata).collect::<Vec<_>>(),
        }),
        Shape::Full => json!({
            "kind": t.rt.list_kind, "apiVersion": t.rt.api_version(&t.version), "metadata": meta,
            "items": page.items,
        }),
    };
    Ok(json_response(StatusCode::OK, &body))
}

fn watch_response(requests: &Context, t: Target, r: &Req, shape: Shape) -> ApiResult<Response> {
    let q = list_query(r);
    let filter = Filter::new(&t, &q.label_selector, &q.field_selector)?;
    // The real server picks 30-60 min when unset.
    let timeout = r.q("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).unwrap_or(1800);
    let params = WatchParams {
        resource_version: r.q("resourceVersion").map(String::from),
        timeout: Duration::from_secs(timeout),
        bookmarks: r.flag("allowWatchBookmarks"),
        send_initial_events: r.flag("sendInitialEvents"),
        shape,
    };
    let rx = requests.watch(t, filter, params)?;
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let ct = if matches!(shape, Shape::Full) { "application/json" } else { "application/json;stream=watch" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

fn written_response(code: StatusCode, t: &Target, w: Written, shape: Shape) -> Response {
    let mut resp = json_response(code, &render_one(t, w.object, shape));
    for warning in w.warnings {
        append_warning(&mut resp, &warning);
    }
    resp
}

/// A `Warning` header as the API server writes it (code 299, no agent).
fn append_warning(resp: &mut Response, warning: &str) {
    let v = format!("299 - \"{}\"", warning.replace('"', "\\\""));
    if let Ok(h) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::WARNING, h);
    }
}

fn write_options(r: &Req) -> ApiResult<WriteOptions> {
    let field_validation = match r.q("fieldValidation") {
        None | Some("") => None,
        Some("Strict") => Some(FieldValidation::Strict),
        Some("Warn") => Some(FieldValidation::Warn),
        Some("Ignore") => Some(FieldValidation::Ignore),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got: {other}"
            )));
        }
    };
    Ok(WriteOptions {
        field_manager: r.q("fieldManager").map(String::from),
        dry_run: dry_run(r)?,
        force: r.flag("force"),
        field_validation,
        seen: None,
    })
}

/// `dryRun` values other than `All` are refused as the options' validation does
/// (apimachinery meta/v1/validation `ValidateDryRun`), in the options kind of the verb.
fn dry_run(r: &Req) -> ApiResult<bool> {
    let values: Vec<&str> = r.query.iter().filter(|(k, _)| k == "dryRun").map(|(_, v)| v.as_str()).collect();
    let options = match r.method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        Method::DELETE => "DeleteOptions",
        _ => "PatchOptions",
    };
    check_dry_run(&values, options)?;
    Ok(!values.is_empty())
}

fn check_dry_run(values: &[&str], options: &str) -> ApiResult<()> {
    if values.iter().all(|v| *v == "All") {
        return Ok(());
    }
    let shown = serde_json::to_string(values).unwrap_or_default();
    let cause = Cause::new(
        "FieldValueNotSupported",
        "dryRun",
        format!("Unsupported value: {shown}: supported values: \"All\""),
    );
    Err(ApiError::invalid(&format!("{options}.meta.k8s.io"), "", vec![cause]))
}

/// DeleteOptions from the body and the query; `dryRun` may come in either.
fn delete_options(r: &Req) -> ApiResult<(Value, WriteOptions)> {
    let mut opts = if r.body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { decode_body(r)? };
    if let Some(p) = r.q("propagationPolicy") {
        opts["propagationPolicy"] = json!(p);
    }
    let mut wo = write_options(r)?;
    let body_values: Vec<&str> =
        opts.get("dryRun").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    check_dry_run(&body_values, "DeleteOptions")?;
    wo.dry_run |= !body_values.is_empty();
    Ok((opts, wo))
}

fn patch_kind(content_type: &str) -> ApiResult<PatchKind> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" => Ok(PatchKind::Apply),
        _ => Err(ApiError::unsupported_patch_type()),
    }
}

fn decode_body(r: &Req) -> ApiResult<Value> {
    let media = r.content_type.split(';').next().unwrap_or("").trim();
    match media {
        "" | "application/json" | "*/*" => decode_json(&r.body),
        "application/yaml" => decode_yaml(&r.body),
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(&r.body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn decode_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

fn decode_yaml(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn text_response(code: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// `a=b&&c=d` (kube writes `?&a=b`): empty pairs are skipped.
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}
