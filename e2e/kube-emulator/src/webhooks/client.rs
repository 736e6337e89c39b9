//! Calls a webhook as the API server does: a POST of JSON over HTTPS to the URL or the Service a
//! `clientConfig` names, the server's certificate verified against the config's `caBundle`
//! (for a Service, as `{name}.{namespace}.svc`), within the webhook's timeout. A Service is
//! reached at the loopback address a test registered for it. Failures are worded as Go's HTTP
//! client words them (`Post "https://...": dial tcp ...: connect: connection refused`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where a Service leads at the time of a call; None while it has no endpoint.
type Route = Arc<dyn Fn() -> Option<SocketAddr> + Send + Sync>;

/// Where Services that webhooks name are served (a test registers its webhook server here).
#[derive(Default)]
pub struct Services {
    routes: Mutex<HashMap<(String, String), Route>>,
}

impl Services {
    /// Makes the Service `namespace/name` reach `addr` (any port of the Service).
    pub fn register(&self, namespace: &str, name: &str, addr: SocketAddr) {
        self.route(namespace, name, move || Some(addr));
    }

    /// Makes the Service `namespace/name` reach wherever `resolve` says at each call. For a
    /// server whose port is known only once it has bound port 0: a port picked free beforehand
    /// can be taken by another process before the server binds it. Until `resolve` knows, the
    /// Service has no endpoint, as a real one has none before its pod is ready.
    pub fn route(&self, namespace: &str, name: &str, resolve: impl Fn() -> Option<SocketAddr> + Send + Sync + 'static) {
        self.lock().insert((namespace.to_string(), name.to_string()), Arc::new(resolve));
    }

    pub fn unregister(&self, namespace: &str, name: &str) {
        self.lock().remove(&(namespace.to_string(), name.to_string()));
    }

    fn lookup(&self, namespace: &str, name: &str) -> Result<SocketAddr, String> {
        let route = self.lock().get(&(namespace.to_string(), name.to_string())).cloned();
        // Resolved outside the lock: a route may read a file.
        match route {
            None => Err(format!("service \"{name}\" not found")),
            Some(resolve) => resolve().ok_or_else(|| format!("no endpoints available for service \"{name}\"")),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Route>> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.lock().keys()).finish()
    }
}

/// Why a call failed, worded as the real server's error messages quote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request could not be made or answered: `Post "<url>": <cause>`.
    #[error("Post \"{url}\": {cause}")]
    Post { url: String, cause: String },
    /// The webhook answered, but not with a 200 and JSON.
    #[error("{0}")]
    Response(String),
    /// The clientConfig is unusable (no URL or Service, a bad caBundle).
    #[error("{0}")]
    Config(String),
}

/// Where a call goes.
struct Endpoint {
    /// The URL as the real server writes it in errors (with its `?timeout=` parameter).
    url: String,
    /// The name the certificate must carry.
    server_name: String,
    path: String,
    /// Where to connect, or why there is nowhere (a Service not registered or without endpoint).
    addr: Result<SocketAddr, String>,
}

/// POSTs `body` to the webhook `client_config` describes; its JSON answer.
pub async fn call(
    services: &Services,
    client_config: &Value,
    body: &Value,
    timeout: Duration,
) -> Result<Value, CallError> {
    let endpoint = endpoint(services, client_config, timeout)?;
    let tls = tls_config(client_config)?;
    let post = |cause: String| CallError::Post { url: endpoint.url.clone(), cause };
    let attempt = async {
        let addr = endpoint.addr.clone().map_err(post)?;
        let tcp = TcpStream::connect(addr).await.map_err(|e| post(dial_error(addr, &e)))?;
        let name = ServerName::try_from(endpoint.server_name.clone()).map_err(|e| post(e.to_string()))?;
        let stream = TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| post(tls_error(&e)))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| post(e.to_string()))?;
        tokio::spawn(connection);
        let request = http::Request::post(&endpoint.path)
            .header(http::header::HOST, &endpoint.server_name)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| post(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| post(e.to_string()))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| post(e.to_string()))?.to_bytes();
        if !status.is_success() {
            return Err(CallError::Response(format!(
                "the server responded with the status code {} but did not return more information",
                status.as_u16()
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| CallError::Response(format!("unable to decode the response: {e}")))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(post("context deadline exceeded".to_string())),
    }
}

fn endpoint(services: &Services, client_config: &Value, timeout: Duration) -> Result<Endpoint, CallError> {
    let query = format!("?timeout={}s", timeout.as_secs());
    if let Some(url) = client_config.get("url").and_then(Value::as_str) {
        let uri: http::Uri = url.parse().map_err(|e| CallError::Config(format!("invalid webhook URL {url}: {e}")))?;
        let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        let addr = format!("{host}:{port}")
            .parse()
            .ok()
            .or_else(|| resolve_loopback(&host, port))
            .ok_or_else(|| format!("dial tcp: lookup {host}: no such host"));
        let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let separator = if path.contains('?') { "&" } else { "?" };
        return Ok(Endpoint {
            url: format!("{url}{separator}{}", &query[1..]),
            server_name: host,
            path: format!("{path}{separator}{}", &query[1..]),
            addr,
        });
    }
    let service = client_config
        .get("service")
        .ok_or_else(|| CallError::Config("the webhook names neither a URL nor a Service".into()))?;
    let field = |k: &str| service.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (namespace, name) = (field("namespace"), field("name"));
    let port = service.get("port").and_then(Value::as_u64).unwrap_or(443);
    let path = service.get("path").and_then(Value::as_str).unwrap_or("/").to_string();
    let server_name = format!("{name}.{namespace}.svc");
    Ok(Endpoint {
        url: format!("https://{server_name}:{port}{path}{query}"),
        path: format!("{path}{query}"),
        addr: services.lookup(&namespace, &name),
        server_name,
    })
}

/// `localhost` is the only name a URL may use besides an IP address (there is no DNS here).
fn resolve_loopback(host: &str, port: u16) -> Option<SocketAddr> {
    (host == "localhost").then(|| SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A client trusting the config's caBundle (base64 PEM); without one, nothing is trusted.
fn tls_config(client_config: &Value) -> Result<std::sync::Arc<rustls::ClientConfig>, CallError> {
    let bundle = client_config.get("caBundle").and_then(Value::as_str).unwrap_or("");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(bundle)
        .map_err(|e| CallError::Config(format!("caBundle is not base64: {e}")))?;
    crate::tls::client_config(&pem).map_err(|e| CallError::Config(format!("caBundle: {e}")))
}

fn dial_error(addr: SocketAddr, e: &std::io::Error) -> String {
    let cause = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {addr}: connect: {cause}")
}

/// Go's wording of the usual certificate failures.
fn tls_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    // BadSignature: a CA of the same name signed it (Go reports an unknown authority too).
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        "tls: failed to verify certificate: x509: certificate signed by unknown authority".into()
    } else if text.contains("NotValidForName") {
        "tls: failed to verify certificate: x509: certificate is not valid for the requested name".into()
    } else {
        format!("remote error: {text}")
    }
}
