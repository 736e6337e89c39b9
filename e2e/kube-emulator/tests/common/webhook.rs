//! A webhook server for tests: HTTPS on a loopback port with a CA of its own (its caBundle), a
//! handler deciding each answer, and the log of the reviews it was sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::Uri;
use base64::Engine;
use kube_emulator::tls::{self, Ca};
use serde_json::{Value, json};

/// The answer to one call: after `delay`, `body` (a 500 when None).
pub struct Reply {
    pub delay: Duration,
    pub body: Option<Value>,
}

impl Reply {
    pub fn now(body: Value) -> Reply {
        Reply { delay: Duration::ZERO, body: Some(body) }
    }
}

type Handler = dyn Fn(&str, &Value) -> Reply + Send + Sync;

/// A running webhook server; it stops when dropped.
pub struct WebhookServer {
    pub addr: SocketAddr,
    ca: Ca,
    /// (path, review) of every call, in order.
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookServer {
    /// Serves `handler` with a certificate for 127.0.0.1 and the Service `hooks.webhooks.svc`.
    pub async fn start(handler: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> WebhookServer {
        let ca = Ca::generate("webhook-ca").expect("CA");
        let served = ca.issue_server(&["127.0.0.1", "hooks.webhooks.svc"]).expect("certificate");
        let config = tls::server_config(&served, &ca).expect("TLS");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let addr = listener.local_addr().expect("address");
        let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let (log, handler): (_, Arc<Handler>) = (calls.clone(), Arc::new(handler));
        let app = Router::new().fallback(move |uri: Uri, body: Bytes| {
            let (log, handler) = (log.clone(), handler.clone());
            async move {
                let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                log.lock().expect("log").push((uri.path().to_string(), review.clone()));
                let reply = handler(uri.path(), &review);
                tokio::time::sleep(reply.delay).await;
                match reply.body {
                    Some(body) => (axum::http::StatusCode::OK, body.to_string()),
                    None => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                }
            }
        });
        let task = kube_emulator::transport::spawn(listener, app, Some(config));
        WebhookServer { addr, ca, calls, task }
    }

    /// The caBundle that trusts this server.
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca.pem())
    }

    /// A clientConfig naming the Service `webhooks/hooks` at `path` (register it with the emulator).
    pub fn service_config(&self, path: &str) -> Value {
        json!({"service": {"namespace": "webhooks", "name": "hooks", "path": path, "port": 443},
               "caBundle": self.ca_bundle()})
    }

    /// A clientConfig with this server's URL.
    pub fn url_config(&self, path: &str) -> Value {
        json!({"url": format!("https://{}{path}", self.addr), "caBundle": self.ca_bundle()})
    }

    /// The reviews sent to `path`.
    pub fn reviews(&self, path: &str) -> Vec<Value> {
        self.calls.lock().expect("log").iter().filter(|(p, _)| p == path).map(|(_, r)| r.clone()).collect()
    }
}

/// An AdmissionReview answer allowing the request, with an optional JSONPatch and warnings.
pub fn allow(review: &Value, patch: Option<Value>, warnings: &[&str]) -> Value {
    let mut response = json!({"uid": review["request"]["uid"], "allowed": true, "warnings": warnings});
    if let Some(patch) = patch {
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// An AdmissionReview answer denying the request.
pub fn deny(review: &Value, code: u16, message: &str) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "response": {"uid": review["request"]["uid"], "allowed": false,
                        "status": {"code": code, "message": message}}})
}
