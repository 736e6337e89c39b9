//! Admin endpoints under `/emulator/`, for tests that reach the emulator only over HTTP (e.g.
//! the standalone binary):
//!
//! - `POST /emulator/faults` (a `FaultRule` as JSON) -> `{"id": n}`; `GET /emulator/faults`;
//!   `DELETE /emulator/faults` (all, and the server back up); `DELETE /emulator/faults/{id}`
//! - `POST /emulator/server-down` `{"ms": 2000, "mode": "unavailable"|"drop"}`; `DELETE` brings it up
//! - `POST /emulator/compact`: forget the event history (resumes from before get 410)
//! - `GET /emulator/requests[?log=true]`: request counts (and the log); `DELETE` resets them
//! - `GET|PUT /emulator/simulation` `{"enabled": true, "readyDelayMs": 200}`

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::faults::{DownMode, FaultId, FaultRule};
use crate::ops::Cluster;

const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DownRequest {
    ms: u64,
    #[serde(default)]
    mode: DownMode,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimulationRequest {
    enabled: bool,
    #[serde(default)]
    ready_delay_ms: Option<u64>,
}

/// Serves one admin request.
pub async fn handle(cluster: &Arc<Cluster>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let segments: Vec<&str> = parts.uri.path().split('/').filter(|s| !s.is_empty()).skip(1).collect();
    let log = crate::request_info::query_param(parts.uri.query().unwrap_or(""), "log").as_deref() == Some("true");
    match route(cluster, &parts.method, &segments, &body, log) {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => e.into_response(),
    }
}

fn route(
    cluster: &Arc<Cluster>,
    method: &Method,
    segments: &[&str],
    body: &[u8],
    log: bool,
) -> Result<(StatusCode, Value), ApiError> {
    let inst = &cluster.instruments;
    let ok = |v: Value| Ok((StatusCode::OK, v));
    match (method, segments) {
        (&Method::POST, ["faults"]) => {
            let id = inst.faults.add(decode::<FaultRule>(body)?);
            Ok((StatusCode::CREATED, json!({"id": id.0})))
        }
        (&Method::GET, ["faults"]) => ok(json!({"rules": inst.faults.rules()})),
        (&Method::DELETE, ["faults"]) => {
            inst.faults.clear();
            ok(json!({}))
        }
        (&Method::DELETE, ["faults", id]) => {
            let id = id.parse().map_err(|_| ApiError::bad_request(format!("invalid fault id {id}")))?;
            if inst.faults.remove(FaultId(id)) { ok(json!({})) } else { Err(not_found()) }
        }
        (&Method::POST, ["server-down"]) => {
            let d = decode::<DownRequest>(body)?;
            inst.faults.server_down(Duration::from_millis(d.ms), d.mode);
            ok(json!({}))
        }
        (&Method::DELETE, ["server-down"]) => {
            inst.faults.server_up();
            ok(json!({}))
        }
        (&Method::POST, ["compact"]) => {
            let mut st = cluster.store.lock();
            st.compact();
            ok(json!({"compacted": st.compacted.to_string()}))
        }
        (&Method::GET, ["requests"]) => ok(requests_json(cluster, log)),
        (&Method::DELETE, ["requests"]) => {
            inst.requests.reset();
            ok(json!({}))
        }
        (&Method::GET, ["simulation"]) => ok(simulation_json(cluster)),
        (&Method::PUT | &Method::POST, ["simulation"]) => {
            let s = decode::<SimulationRequest>(body)?;
            match (s.enabled, s.ready_delay_ms) {
                (true, Some(ms)) => inst.simulation.enable(Duration::from_millis(ms)),
                (true, None) => inst.simulation.enable(inst.simulation.ready_delay()),
                (false, _) => inst.simulation.disable(),
            }
            ok(simulation_json(cluster))
        }
        _ => Err(not_found()),
    }
}

fn requests_json(cluster: &Arc<Cluster>, log: bool) -> Value {
    let snap = cluster.instruments.requests.snapshot();
    let counts: Vec<Value> = snap.counts.iter().map(|(k, n)| json!({"key": k, "count": n})).collect();
    let mut out = json!({
        "total": snap.total(),
        "writes": snap.writes(),
        "byVerb": snap.by_verb(),
        "byResource": snap.by_resource(),
        "byFieldManager": snap.by_field_manager(),
        "byUserAgent": snap.by_user_agent(),
        "permissions": snap.permissions(None),
        "counts": counts,
    });
    if log {
        out["log"] = json!(snap.log);
    }
    out
}

fn simulation_json(cluster: &Arc<Cluster>) -> Value {
    let s = &cluster.instruments.simulation;
    json!({"enabled": s.is_enabled(), "readyDelayMs": s.ready_delay().as_millis() as u64})
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

fn not_found() -> ApiError {
    ApiError::no_route()
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}
