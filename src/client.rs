//! The Kubernetes client: configuration, the rate-limited service stack, and the first contact
//! with the API server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::http::header::USER_AGENT;
use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::apimachinery::pkg::version::Info;
use kube::client::ClientBuilder;
use kube::client::retry::RetryPolicy;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use prism_controllers::metrics::Metrics;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;
use tower::util::option_layer;

use crate::rate_limit::RateLimitLayer;
use crate::request_metrics::RequestMetricsLayer;

/// First-contact attempts before giving up: 1 + 2 + 4 + 8 + 8 s of waiting (~25 s), long enough
/// for an API server that is restarting, short enough that a wrong address is reported soon.
const CONNECT_RETRIES: usize = 5;

/// Requests the buffer under the retry layer holds (kube's own buffer above holds as many).
const RETRY_BUFFER: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the kubeconfig {path}")]
    Kubeconfig { path: PathBuf, source: kube::config::KubeconfigError },
    #[error(
        "cannot find a Kubernetes configuration (no --kubeconfig, $KUBECONFIG, in-cluster service account or ~/.kube/config)"
    )]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client for {url}")]
    Build { url: String, source: kube::Error },
    #[error("cannot reach the Kubernetes API at {url}: {source}")]
    Unreachable { url: String, source: kube::Error },
    #[error("the Kubernetes API at {url} refused our credentials: {source}")]
    Unauthorized { url: String, source: kube::Error },
}

/// The configuration from `--kubeconfig`, else inferred ($KUBECONFIG, in-cluster, ~/.kube/config).
pub async fn load_config(kubeconfig: Option<&Path>) -> Result<Config, ClientError> {
    match kubeconfig {
        Some(path) => {
            let kubeconfig_err = |source| ClientError::Kubeconfig { path: path.to_path_buf(), source };
            let file = Kubeconfig::read_from(path).map_err(kubeconfig_err)?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await.map_err(kubeconfig_err)
        }
        None => Config::infer().await.map_err(ClientError::Infer),
    }
}

/// A client over the default kube stack, rate limited when `qps` > 0, naming itself in every
/// request's User-Agent, and counting its requests in `metrics` when given.
///
/// Transient refusals (429, 503, 504) are retried as kube retries them (`Retry-After` honoured,
/// else exponential from 5 ms), but above the rate limit and the metrics, not below them as in
/// kube's own stack: there, every retry bypassed `--qps` (under a 503 burst one process sent 129
/// requests in a second, where its two clients' limits allow 100) and the request metrics saw
/// none of them. Here each attempt waits for a token and is counted with its answer.
pub fn build_client(
    mut config: Config,
    qps: f64,
    burst: u32,
    metrics: Option<Arc<Metrics>>,
) -> Result<Client, ClientError> {
    if let Ok(agent) = HeaderValue::from_str(&user_agent()) {
        config.headers.push((USER_AGENT, agent));
    }
    config.default_retry = false;
    let url = config.cluster_url.to_string();
    let limit = (qps > 0.0).then(|| RateLimitLayer::new(qps, burst));
    let client = ClientBuilder::try_from(config)
        .map_err(|source| ClientError::Build { url, source })?
        .with_layer(&RequestMetricsLayer::new(metrics))
        // Retries send from a clone of what they wrap: a buffer makes kube's boxed stack cloneable.
        .with_layer(&BufferLayer::new(RETRY_BUFFER))
        .with_layer(&option_layer(limit))
        .with_layer(&RetryLayer::new(RetryPolicy::server_retry()))
        .build();
    Ok(client)
}

/// `prism-operator/<version> (<os>/<arch>)`, as client-go names its binaries: kube sends no
/// User-Agent of its own, and API servers' audit logs, request metrics and priority-and-fairness
/// rules tell clients apart by it.
pub fn user_agent() -> String {
    format!("prism-operator/{} ({}/{})", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH)
}

/// The first-contact backoff: 1, 2, 4, 8, 8 s.
pub fn connect_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(8))
        .with_max_times(CONNECT_RETRIES)
}

/// Asks the API server for its version, retrying with `backoff` while it cannot be reached;
/// fails at once when it answers 401/403 (retrying cannot fix credentials).
pub async fn wait_for_api(client: &Client, url: &str, backoff: ExponentialBuilder) -> Result<Info, ClientError> {
    let result = (|| client.apiserver_version())
        .retry(backoff)
        .when(|err| !is_unauthorized(err))
        .notify(|err, wait| tracing::warn!(%url, error = %err, ?wait, "the Kubernetes API is not reachable yet"))
        .await;
    result.map_err(|source| {
        let url = url.to_string();
        if is_unauthorized(&source) {
            ClientError::Unauthorized { url, source }
        } else {
            ClientError::Unreachable { url, source }
        }
    })
}

fn is_unauthorized(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 401 || status.code == 403)
}
