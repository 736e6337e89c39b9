//! The test instruments of a cluster (fault rules, request accounting, workload simulation
//! settings) and the tower middleware that applies them to every HTTP request.
//!
//! The middleware wraps the API router (`http::router`), so the in-process client and the
//! loopback server see the same faults and are counted alike. Paths under `/emulator/` are the
//! admin endpoints (see `admin`) and are neither counted nor faulted.
//!
//! From a test (the cluster is `Emulator::cluster` or the one given to `http::router`):
//!
//! ```text
//! // fail the next 2 creates of ConfigMaps with 503; 429 carries Retry-After
//! cluster.instruments.faults.add(FaultRule::error(503).verb("create").resource("configmaps").times(2));
//! cluster.instruments.faults.add(FaultRule::too_many_requests(1).verb("patch").field_manager("prism"));
//! cluster.instruments.faults.add(FaultRule::new(FaultAction::WatchExpired { after_events: 3 }).verb("watch"));
//! cluster.instruments.faults.server_down(Duration::from_secs(2), DownMode::Unavailable);
//! faults::compact(&cluster);
//! // what the client did
//! let snap = cluster.instruments.requests.snapshot();
//! assert_eq!(snap.writes_by("prism"), 3);
//! let rbac = snap.permissions(Some("prism"));
//! // workloads become ready 200 ms after each new generation
//! cluster.instruments.simulation.enable(Duration::from_millis(200));
//! controllers::settle(&cluster).await; // GC and simulation caught up
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use crate::accounting::Accounting;
use crate::controllers::{ControlPlane, Simulation};
use crate::faults::{Answer, Decision, Faults, WatchFault};
use crate::ops::{Cluster, PatchKind, WriteOptions};
use crate::request_info::RequestInfo;

/// Per-cluster instruments, reachable as `cluster.instruments`.
#[derive(Debug, Default)]
pub struct Instruments {
    /// Fault rules and server-down state.
    pub faults: Faults,
    /// Request counts; `cluster.instruments.requests.snapshot()`.
    pub requests: Accounting,
    /// Workload simulation switch and default readiness delay.
    pub simulation: Simulation,
    /// GC and workload controllers, started on first use.
    pub(crate) control_plane: OnceLock<ControlPlane>,
}

/// Wraps the API router with the instruments middleware.
pub fn wrap(router: Router, cluster: &Arc<Cluster>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(cluster.clone(), intercept))
}

async fn intercept(State(cluster): State<Arc<Cluster>>, req: Request, next: Next) -> Response {
    // The control plane runs wherever the API is served; starting here needs no extra wiring.
    crate::controllers::start(&cluster);
    if req.uri().path().starts_with("/emulator/") {
        return crate::admin::handle(&cluster, req).await;
    }
    let info = RequestInfo::parse(req.method(), req.uri(), req.headers());
    let (method, uri) = (req.method().to_string(), req.uri().to_string());
    let decision = cluster.instruments.faults.decide(&info);
    let resp = serve(&cluster, &info, &decision, req, next).await;
    let fired = (!decision.fired.is_empty())
        .then(|| decision.fired.iter().map(|id| format!("#{}", id.0)).collect::<Vec<_>>().join(","));
    let code = if matches!(decision.answer, Some(Answer::Reset)) { 0 } else { resp.status().as_u16() };
    cluster.instruments.requests.record(&method, &uri, &info, code, fired);
    resp
}

async fn serve(cluster: &Arc<Cluster>, info: &RequestInfo, d: &Decision, req: Request, next: Next) -> Response {
    if !d.latency.is_zero() {
        tokio::time::sleep(d.latency).await;
    }
    if d.compact {
        cluster.store.lock().compact();
    }
    if d.touch {
        touch(cluster, info);
    }
    match &d.answer {
        Some(Answer::Status(e)) => e.clone().into_response(),
        Some(Answer::Reset) => reset_response(),
        None if info.verb == "watch" => {
            let expired = expired_line(cluster, &req);
            let resp = next.run(req).await;
            tap_watch(resp, d.watch, cluster.instruments.faults.down_signal(), expired)
        }
        None => next.run(req).await,
    }
}

/// A response whose body fails before anything is written: hyper drops the connection without
/// sending a status line (the client sees a reset / incomplete message).
pub fn reset_response() -> Response {
    let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "kube-emulator fault: connection reset");
    Response::new(Body::from_stream(futures::stream::once(async move { Err::<Bytes, _>(err) })))
}

/// Changes the addressed object, so that a write carrying the resourceVersion the client read
/// conflicts as if another writer had been faster.
fn touch(cluster: &Arc<Cluster>, info: &RequestInfo) {
    let ns = if info.resource == "namespaces" { "" } else { info.namespace.as_str() };
    let Ok(t) = cluster.target(&info.group, &info.version, &info.resource, ns, &info.name) else { return };
    let stamp = crate::meta::new_uid();
    let patch = json!({"metadata": {"annotations": {"kube-emulator.io/touched": stamp}}});
    if let Err(e) = cluster.patch(&t, PatchKind::Merge, &patch, &WriteOptions::manager("kube-emulator-touch")) {
        tracing::debug!(error = %e, "touch fault could not modify the object");
    }
}

/// The in-stream ERROR 410 line a `watchExpired` fault sends.
fn expired_line(cluster: &Arc<Cluster>, req: &Request) -> Bytes {
    let st = cluster.store.lock();
    let asked = crate::request_info::query_param(req.uri().query().unwrap_or(""), "resourceVersion")
        .unwrap_or_else(|| st.rv.to_string());
    let status = crate::errors::ApiError::expired(format!("too old resource version: {asked} ({})", st.rv)).to_status();
    let mut line = json!({"type": "ERROR", "object": status}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// Passes a watch body through, applying a watch fault and ending it when the server goes down.
fn tap_watch(resp: Response, fault: Option<WatchFault>, mut down: watch::Receiver<u64>, expired: Bytes) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    down.borrow_and_update();
    let (parts, body) = resp.into_parts();
    let mut tap = Tap {
        inner: body.into_data_stream(),
        fault,
        events: 0,
        down,
        down_gone: false,
        pending: VecDeque::new(),
        buf: Vec::new(),
        done: false,
        stalled: false,
        expired,
    };
    if fault.is_some_and(|f| threshold(f) == 0) {
        tap.trigger();
    }
    let stream = futures::stream::unfold(tap, |mut t| async move { t.next().await.map(|item| (item, t)) });
    Response::from_parts(parts, Body::from_stream(stream))
}

fn threshold(f: WatchFault) -> usize {
    match f {
        WatchFault::End(n) | WatchFault::Expired(n) | WatchFault::Stall(n) => n,
    }
}

struct Tap {
    inner: BodyDataStream,
    fault: Option<WatchFault>,
    /// Non-bookmark events delivered so far.
    events: usize,
    down: watch::Receiver<u64>,
    down_gone: bool,
    pending: VecDeque<Bytes>,
    /// An incomplete line (events are one line each; chunks may split or join them).
    buf: Vec<u8>,
    done: bool,
    stalled: bool,
    expired: Bytes,
}

impl Tap {
    async fn next(&mut self) -> Option<Result<Bytes, axum::Error>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(Ok(b));
            }
            if self.done {
                return None;
            }
            let chunk = tokio::select! {
                c = self.inner.next() => c,
                r = self.down.changed(), if !self.down_gone => match r {
                    // The server went down: open watches end like dropped connections.
                    Ok(()) => return None,
                    Err(_) => { self.down_gone = true; continue; }
                },
            };
            match chunk? {
                Ok(bytes) => self.feed(bytes),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn feed(&mut self, bytes: Bytes) {
        let Some(fault) = self.fault else {
            self.pending.push_back(bytes);
            return;
        };
        self.buf.extend_from_slice(&bytes);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            if self.done || self.stalled {
                continue;
            }
            let event = !is_bookmark(&line);
            self.pending.push_back(Bytes::from(line));
            if event {
                self.events += 1;
                if self.events >= threshold(fault) {
                    self.trigger();
                }
            }
        }
    }

    fn trigger(&mut self) {
        match self.fault {
            Some(WatchFault::End(_)) => self.done = true,
            Some(WatchFault::Expired(_)) => {
                self.pending.push_back(self.expired.clone());
                self.done = true;
            }
            Some(WatchFault::Stall(_)) => self.stalled = true,
            None => {}
        }
    }
}

fn is_bookmark(line: &[u8]) -> bool {
    let s = String::from_utf8_lossy(line);
    let s = s.trim();
    s.starts_with("{\"type\":\"BOOKMARK\"") || s.ends_with("\"type\":\"BOOKMARK\"}")
}
