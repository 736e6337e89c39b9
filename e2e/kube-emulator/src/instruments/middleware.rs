//! The instruments as tower middleware over the API router. The outer layer counts every
//! request (see `accounting`); the inner one applies the fault rules (see `faults`) before the
//! request reaches the API: it delays, answers in the API's place, drops the connection, or
//! taps a watch stream to end, expire or stall it.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use super::Instruments;
use super::accounting::Answered;
use super::faults::{Answer, Decision, FaultId, WatchFault};
use crate::auth::UserInfo;
use crate::ops::{Cluster, PatchKind, WriteOptions};
use crate::request_info::RequestInfo;

/// Wraps the API router with the instruments: requests are counted, then faulted.
pub fn layer(api: Router, cluster: &Arc<Cluster>, instruments: &Arc<Instruments>) -> Router {
    let faults = FaultState { cluster: cluster.clone(), instruments: instruments.clone() };
    api.layer(from_fn_with_state(faults, inject_faults)).layer(from_fn_with_state(instruments.clone(), count))
}

/// What the fault layer did to a request, handed to the counting layer for the request log.
#[derive(Debug, Clone)]
struct FaultOutcome {
    fired: Vec<FaultId>,
    /// The connection was dropped without an answer.
    dropped: bool,
}

impl FaultOutcome {
    /// `#1,#3`: the rules that fired.
    fn label(&self) -> Option<String> {
        (!self.fired.is_empty()).then(|| self.fired.iter().map(|id| format!("#{}", id.0)).collect::<Vec<_>>().join(","))
    }
}

async fn count(State(instruments): State<Arc<Instruments>>, req: Request, next: Next) -> Response {
    let received = std::time::Instant::now();
    let info = RequestInfo::parse(req.method(), req.uri(), req.headers());
    let (method, uri) = (req.method().to_string(), req.uri().to_string());
    let user = req.extensions().get::<UserInfo>().map(|u| u.username.clone()).unwrap_or_default();
    let resp = next.run(req).await;
    let outcome = resp.extensions().get::<FaultOutcome>();
    let code = if outcome.is_some_and(|o| o.dropped) { 0 } else { resp.status().as_u16() };
    let answer = Answered { code, fault: outcome.and_then(FaultOutcome::label), user };
    instruments.requests.record(&method, &uri, &info, answer, received);
    resp
}

/// What the fault layer acts on: the rules, and the cluster (compaction, touches, 410 lines).
#[derive(Clone)]
struct FaultState {
    cluster: Arc<Cluster>,
    instruments: Arc<Instruments>,
}

async fn inject_faults(State(f): State<FaultState>, req: Request, next: Next) -> Response {
    let info = RequestInfo::parse(req.method(), req.uri(), req.headers());
    let decision = f.instruments.faults.decide(&info);
    let mut resp = serve(&f, &info, &decision, req, next).await;
    let dropped = matches!(decision.answer, Some(Answer::Reset));
    if dropped || !decision.fired.is_empty() {
        resp.extensions_mut().insert(FaultOutcome { fired: decision.fired, dropped });
    }
    resp
}

async fn serve(f: &FaultState, info: &RequestInfo, d: &Decision, req: Request, next: Next) -> Response {
    if !d.latency.is_zero() {
        tokio::time::sleep(d.latency).await;
    }
    if d.compact {
        super::faults::compact(&f.cluster);
    }
    if d.touch {
        touch(&f.cluster, info);
    }
    match &d.answer {
        Some(Answer::Status(e)) => e.clone().into_response(),
        Some(Answer::Reset) => reset_response(),
        None if info.verb == "watch" => {
            let expired = expired_line(&f.cluster, &req);
            let resp = next.run(req).await;
            tap_watch(resp, d.watch, f.instruments.faults.down_signal(), expired)
        }
        None => next.run(req).await,
    }
}

/// A response whose body fails before anything is written: hyper drops the connection without
/// sending a status line (the client sees a reset / incomplete message).
fn reset_response() -> Response {
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
