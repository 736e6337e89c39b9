//! Admin endpoints, nested under `/emulator/` beside the API, for tests that reach the emulator
//! only over HTTP (e.g. the operator as a separate process against the standalone binary). They
//! are neither counted nor faulted:
//!
//! - `POST /emulator/faults` (a `FaultRule` as JSON) -> `{"id": n}`; `GET /emulator/faults`;
//!   `DELETE /emulator/faults` (all, and the server back up); `DELETE /emulator/faults/{id}`
//! - `POST /emulator/server-down` `{"ms": 2000, "mode": "unavailable"|"drop"}`; `DELETE` brings it up
//! - `POST /emulator/compact`: forget the event history (resumes from before get 410)
//! - `GET /emulator/requests[?log=true]`: request counts (and the log); `DELETE` resets them
//! - `GET|PUT /emulator/simulation` `{"enabled": true, "readyDelayMs": 200}`

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Instruments;
use super::faults::{self, DownMode, FaultId, FaultRule};
use crate::errors::ApiError;
use crate::ops::Cluster;
use crate::request_info::query_param;

const MAX_BODY: usize = 1024 * 1024;

/// An admin answer: JSON, or a Status error.
type Answer = Result<(StatusCode, Json<Value>), ApiError>;

/// What the admin endpoints act on.
#[derive(Clone)]
struct Admin {
    cluster: Arc<Cluster>,
    instruments: Arc<Instruments>,
}

/// The admin endpoints, to nest under `/emulator`; unknown paths and methods get a 404 Status.
pub fn router(cluster: Arc<Cluster>, instruments: Arc<Instruments>) -> Router {
    Router::new()
        .route("/faults", post(add_fault).get(list_faults).delete(clear_faults).fallback(not_found))
        .route("/faults/{id}", delete(remove_fault).fallback(not_found))
        .route("/server-down", post(server_down).delete(server_up).fallback(not_found))
        .route("/compact", post(compact).fallback(not_found))
        .route("/requests", get(requests).delete(reset_requests).fallback(not_found))
        .route("/simulation", get(simulation).put(set_simulation).post(set_simulation).fallback(not_found))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Admin { cluster, instruments })
}

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

fn ok(v: Value) -> Answer {
    Ok((StatusCode::OK, Json(v)))
}

async fn not_found() -> ApiError {
    ApiError::no_route()
}

async fn add_fault(State(a): State<Admin>, body: Bytes) -> Answer {
    let id = a.instruments.faults.add(decode::<FaultRule>(&body)?);
    Ok((StatusCode::CREATED, Json(json!({"id": id.0}))))
}

async fn list_faults(State(a): State<Admin>) -> Answer {
    ok(json!({"rules": a.instruments.faults.rules()}))
}

async fn clear_faults(State(a): State<Admin>) -> Answer {
    a.instruments.faults.clear();
    ok(json!({}))
}

async fn remove_fault(State(a): State<Admin>, Path(id): Path<String>) -> Answer {
    let id = id.parse().map_err(|_| ApiError::bad_request(format!("invalid fault id {id}")))?;
    if a.instruments.faults.remove(FaultId(id)) { ok(json!({})) } else { Err(ApiError::no_route()) }
}

async fn server_down(State(a): State<Admin>, body: Bytes) -> Answer {
    let d = decode::<DownRequest>(&body)?;
    a.instruments.faults.server_down(Duration::from_millis(d.ms), d.mode);
    ok(json!({}))
}

async fn server_up(State(a): State<Admin>) -> Answer {
    a.instruments.faults.server_up();
    ok(json!({}))
}

async fn compact(State(a): State<Admin>) -> Answer {
    ok(json!({"compacted": faults::compact(&a.cluster).to_string()}))
}

async fn requests(State(a): State<Admin>, RawQuery(query): RawQuery) -> Answer {
    let snap = a.instruments.requests.snapshot();
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
    if query_param(query.as_deref().unwrap_or(""), "log").as_deref() == Some("true") {
        out["log"] = json!(snap.log);
    }
    ok(out)
}

async fn reset_requests(State(a): State<Admin>) -> Answer {
    a.instruments.requests.reset();
    ok(json!({}))
}

async fn simulation(State(a): State<Admin>) -> Answer {
    let s = &a.instruments.simulation;
    ok(json!({"enabled": s.is_enabled(), "readyDelayMs": s.ready_delay().as_millis() as u64}))
}

async fn set_simulation(State(a): State<Admin>, body: Bytes) -> Answer {
    let s = decode::<SimulationRequest>(&body)?;
    let sim = &a.instruments.simulation;
    match (s.enabled, s.ready_delay_ms) {
        (true, Some(ms)) => sim.enable(Duration::from_millis(ms)),
        (true, None) => sim.enable(sim.ready_delay()),
        (false, _) => sim.disable(),
    }
    simulation(State(a)).await
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}
