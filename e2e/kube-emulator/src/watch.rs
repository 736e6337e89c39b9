//! Watch streams: one JSON event per line, flushed per event.
//!
//! RV unset/"0" (or sendInitialEvents) starts with synthetic ADDED events; RV=N replays the event
//! log after N; an RV older than the log gets an in-stream ERROR 410 (an HTTP 410 would make
//! kube-runtime retry the same RV forever). Selector transitions become ADDED/DELETED.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::errors::{ApiError, ApiResult};
use crate::ops::{Cluster, Filter, Target, presented};
use crate::registry::ResourceType;
use crate::store::{Change, EventType};
use crate::table::{IncludeObject, partial_metadata, table};

/// How objects are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Full,
    Metadata,
    Table(IncludeObject),
}

#[derive(Debug, Clone)]
pub struct WatchParams {
    pub resource_version: Option<String>,
    pub timeout: Duration,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub shape: Shape,
}

/// Renders events for one watcher.
struct Encoder {
    t: Target,
    shape: Shape,
    first: bool,
}

/// An object (at the watched version) as a watch event in `shape` shows it; `first` carries the
/// column definitions of a Table.
pub fn render(shape: Shape, rt: &ResourceType, version: &str, object: Value, first: bool) -> Value {
    match shape {
        Shape::Full => object,
        Shape::Metadata => partial_metadata(&object),
        Shape::Table(inc) => {
            let rv = object.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""));
            table(rt, version, &[object], json!({"resourceVersion": rv}), inc, first)
        }
    }
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: &Value) -> Bytes {
        let presented = presented(&self.t.rt, &self.t.version, obj);
        if self.shape == Shape::Full {
            // The stored object itself, as a rule: written out without a copy.
            return encode(kind, &presented);
        }
        let object = render(self.shape, &self.t.rt, &self.t.version, presented.into_owned(), self.first);
        self.first = false;
        encode(kind, &object)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let (api_version, kind) = match self.shape {
            Shape::Metadata => ("meta.k8s.io/v1".to_string(), "PartialObjectMetadata".to_string()),
            _ => (self.t.rt.api_version(&self.t.version), self.t.rt.kind.clone()),
        };
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        encode("BOOKMARK", &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}))
    }
}

/// One line of a watch: `{"type": kind, "object": object}`, written from the object as it is.
pub fn encode(kind: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a Value,
    }
    let mut line = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The event a watcher with `filter` sees for a change, if any.
fn transition<'a>(change: &'a Change, filter: &Filter) -> Option<(&'static str, &'a Value)> {
    match change.kind {
        EventType::Added => filter.matches(&change.object).then_some(("ADDED", &*change.object)),
        EventType::Deleted => {
            let was = change.old.as_deref().unwrap_or(&change.object);
            filter.matches(was).then_some(("DELETED", &*change.object))
        }
        EventType::Modified => {
            let was = change.old.as_deref().is_some_and(|o| filter.matches(o));
            match (was, filter.matches(&change.object)) {
                (true, true) => Some(("MODIFIED", &*change.object)),
                (true, false) => Some(("DELETED", &*change.object)),
                (false, true) => Some(("ADDED", &*change.object)),
                (false, false) => None,
            }
        }
    }
}

/// Starts a watch; the receiver yields the lines of the response body.
pub fn start(cluster: &Arc<Cluster>, t: Target, filter: Filter, p: WatchParams) -> ApiResult<mpsc::Receiver<Bytes>> {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let mut enc = Encoder { t: t.clone(), shape: p.shape, first: true };
    let mut initial = Vec::new();
    let st = cluster.store.lock();
    let live = cluster.store.subscribe();
    let requested = p.resource_version.as_deref().filter(|s| !s.is_empty() && *s != "0");
    let start_rv = st.rv;
    match requested {
        Some(rv) if !p.send_initial_events => {
            let n: u64 = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
            if n < st.compacted {
                let status = ApiError::expired(format!("too old resource version: {n} ({})", st.compacted)).to_status();
                initial.push(encode("ERROR", &status));
                drop(st);
                spawn_fixed(tx, initial);
                return Ok(rx);
            }
            for change in st.changes_since(t.rt.key(), n) {
                if let Some((kind, obj)) = transition(&change, &filter) {
                    initial.push(enc.line(kind, obj));
                }
            }
        }
        _ => {
            let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
            for obj in st.list(t.rt.key(), ns, None) {
                if filter.matches(&obj) {
                    initial.push(enc.line("ADDED", &obj));
                }
            }
            if p.send_initial_events {
                initial.push(enc.bookmark(start_rv, true));
            }
        }
    }
    drop(st);
    let storage = t.rt.key().to_string();
    let interval = cluster.bookmark_interval();
    tokio::spawn(async move {
        let mut w = Watcher { tx, live, enc, filter, storage, last_rv: start_rv };
        w.run(initial, p.timeout, p.bookmarks, interval).await;
    });
    Ok(rx)
}

fn spawn_fixed(tx: mpsc::Sender<Bytes>, lines: Vec<Bytes>) {
    tokio::spawn(async move {
        for l in lines {
            if tx.send(l).await.is_err() {
                return;
            }
        }
    });
}

struct Watcher {
    tx: mpsc::Sender<Bytes>,
    live: broadcast::Receiver<Arc<Change>>,
    enc: Encoder,
    filter: Filter,
    storage: String,
    last_rv: u64,
}

impl Watcher {
    async fn run(&mut self, initial: Vec<Bytes>, timeout: Duration, bookmarks: bool, every: Duration) {
        for l in initial {
            if self.tx.send(l).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            let line = tokio::select! {
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
                _ = tick.tick(), if bookmarks => Some(self.enc.bookmark(self.last_rv, false)),
                r = self.live.recv() => match r {
                    Ok(change) => self.on_change(&change),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let st = ApiError::expired(format!("too old resource version: {}", self.last_rv)).to_status();
                        let _ = self.tx.send(encode("ERROR", &st)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Some(l) = line
                && self.tx.send(l).await.is_err()
            {
                return;
            }
        }
    }

    fn on_change(&mut self, change: &Change) -> Option<Bytes> {
        if change.rv <= self.last_rv {
            return None;
        }
        self.last_rv = change.rv;
        if change.storage != self.storage {
            return None;
        }
        let (kind, obj) = transition(change, &self.filter)?;
        Some(self.enc.line(kind, obj))
    }
}
