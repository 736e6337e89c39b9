//! The Kubernetes client: configuration, the rate-limited service stack, and the first contact
//! with the API server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::USER_AGENT;
use axum::http::{HeaderValue, Request, Response};
use backon::{ExponentialBuilder, Retryable};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::Builder as HyperBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::apimachinery::pkg::version::Info;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt, DynBody};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use prism_controllers::metrics::Metrics;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;
use tower::util::BoxService;
use tower::util::option_layer;
use tower::{BoxError, ServiceBuilder};

use crate::rate_limit::RateLimitLayer;
use crate::request_metrics::RequestMetricsLayer;

/// First-contact attempts before giving up: 1 + 2 + 4 + 8 + 8 s of waiting (~25 s), long enough
/// for an API server that is restarting, short enough that a wrong address is reported soon.
const CONNECT_RETRIES: usize = 5;

/// Requests the buffer under the retry layer holds (kube's own buffer above holds as many).
const RETRY_BUFFER: usize = 1024;

/// The most a connection's read buffer grows to. hyper grows it to fit the largest read (up to
/// 400 KiB by default) and keeps it for the connection's life: with a connection per watch, each
/// of which once read a page of a list, that was 5.9 MiB of an operator's heap at 300 clusters.
/// At 64 KiB a restarted operator still kept about 1 MiB more than before its restart; at 16 KiB
/// (`cargo bench --bench operator`, 100 clusters: 37.0 to 36.1 MiB after a restart, peak 40.0 to
/// 39.1, convergence unchanged) a page is read in more pieces, which costs nothing measurable.
/// A larger body is read in pieces of this size, not refused; a response's head must fit (an
/// API server's are a few hundred bytes, a kilobyte or two with warnings). hyper's floor is 8 KiB.
const READ_BUFFER_MAX: usize = 16 * 1024;

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

/// A client over the default kube stack, rate limited by `limit` when given, naming itself in
/// every request's User-Agent, and counting its requests in `metrics` when given.
///
/// Transient refusals (429, 503, 504) are retried as kube retries them (`Retry-After` honoured,
/// else exponential from 5 ms), but above the rate limit and the metrics, not below them as in
/// kube's own stack: there, every retry bypassed `--qps` (under a 503 burst one process sent 129
/// requests in a second, where its two clients' limits allow 100) and the request metrics saw
/// none of them. Here each attempt waits for a token and is counted with its answer.
pub fn build_client(
    mut config: Config,
    limit: Option<RateLimitLayer>,
    metrics: Option<Arc<Metrics>>,
) -> Result<Client, ClientError> {
    if let Ok(agent) = HeaderValue::from_str(&user_agent()) {
        config.headers.push((USER_AGENT, agent));
    }
    config.default_retry = false;
    let url = config.cluster_url.to_string();
    // kube's own stack behind a proxy: its connector speaks to proxies, ours does not.
    let base = match config.proxy_url {
        Some(_) => ClientBuilder::try_from(config),
        None => base_stack(&config),
    };
    let client = base
        .map_err(|source| ClientError::Build { url, source })?
        .with_layer(&RequestMetricsLayer::new(metrics))
        // Retries send from a clone of what they wrap: a buffer makes kube's boxed stack cloneable.
        .with_layer(&BufferLayer::new(RETRY_BUFFER))
        .with_layer(&option_layer(limit))
        .with_layer(&RetryLayer::new(RetryPolicy::server_retry()))
        .build();
    Ok(client)
}

/// What kube's client builder holds (kube names the type but does not export it).
type BaseStack = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// The stack kube builds for a configuration without a proxy (TLS, timeouts, base URI,
/// credentials, extra headers), over a hyper client whose read buffers stay below
/// [`READ_BUFFER_MAX`]: kube 5 offers no way to set that on the client it builds. Left out:
/// kube's debug-level span per request (the request metrics layer counts every request) and
/// its retry layer (off in `build_client` anyway).
fn base_stack(config: &Config) -> Result<ClientBuilder<BaseStack>, kube::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let mut connector = TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let hyper = HyperBuilder::new(TokioExecutor::new()).http1_max_buf_size(READ_BUFFER_MAX).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .map_response(|response: Response<Incoming>| {
            response.map(|body| Box::new(body.map_err(BoxError::from)) as Box<DynBody>)
        })
        .service(hyper);
    Ok(ClientBuilder::new(BoxService::new(service), config.default_namespace.clone()))
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
