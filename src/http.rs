//! HTTP endpoints: /metrics on one address, /healthz and /readyz on another (so that probes
//! never wait behind a slow scrape, and the ports can be exposed differently).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prism_controllers::metrics::Metrics;
use tokio::net::TcpListener;

use crate::health::Readiness;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for {purpose}")]
pub struct BindError {
    addr: SocketAddr,
    purpose: &'static str,
    source: std::io::Error,
}

/// Binds at startup, so that a taken port fails the process with a clear message.
pub async fn bind(addr: SocketAddr, purpose: &'static str) -> Result<TcpListener, BindError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| BindError { addr, purpose, source })?;
    if let Ok(addr) = listener.local_addr() {
        // With port 0 the address is known only now: tests and people read it here.
        tracing::info!(%addr, purpose, "listening");
    }
    Ok(listener)
}

pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route("/metrics", get(serve_metrics)).with_state(metrics)
}

pub fn health_router(readiness: Arc<Readiness>) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(serve_readyz)).with_state(readiness)
}

/// Serves `router` on `listener` in a background task until the process exits.
pub fn spawn(listener: TcpListener, router: Router, purpose: &'static str) {
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, purpose, "HTTP server stopped");
        }
    });
}

/// The page goes out in the pieces it was written in, each freed once sent: at 1,000 clusters a
/// page is 2.2 MB (see `Metrics::encode_in_pieces`).
async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    let pieces = metrics.encode_in_pieces().into_iter().map(Ok::<_, std::convert::Infallible>);
    ([(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)], Body::from_stream(futures::stream::iter(pieces)))
}

async fn serve_readyz(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    match readiness.check(tokio::time::Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_path(router: Router, path: &str) -> (StatusCode, String, String) {
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = router.oneshot(request).await.expect("infallible");
        let status = response.status();
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, content_type, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text() {
        let metrics = Arc::new(Metrics::new());
        metrics.set_leader(true);
        let (status, content_type, body) = get_path(metrics_router(metrics), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        assert!(body.contains("prism_operator_leader 1"), "{body}");
    }

    #[tokio::test]
    async fn readyz_follows_readiness_and_healthz_is_always_ok() {
        let readiness = Arc::new(Readiness::new(None));
        let router = health_router(readiness.clone());
        assert_eq!(get_path(router.clone(), "/healthz").await.0, StatusCode::OK);
        let (status, _, body) = get_path(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("not been reached"), "{body}");
        readiness.api_reached();
        assert_eq!(get_path(router, "/readyz").await.0, StatusCode::OK);
    }
}
