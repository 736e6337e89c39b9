//! The emulator as tests and the `kube-emulator` binary use it: the API ([`Cluster`]) with its
//! test instruments and its control plane, started explicitly, served in-process as a router or
//! on a loopback port (HTTPS with a CA of its own, or plain HTTP) with a kubeconfig for kubectl
//! and kube clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::UserInfo;
use crate::auth::authn::Authenticator;
use crate::auth::layer::{self, Authentication};
use crate::controllers::ControlPlane;
use crate::errors::ApiError;
use crate::instruments::{Instruments, admin, middleware};
use crate::ops::{Cluster, WriteOptions};
use crate::requests::Context;
use crate::tls::{self, Ca, Issued, TlsError};
use crate::webhooks::Services;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig { path: PathBuf, source: std::io::Error },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("loading {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How a served emulator talks: HTTPS, as a real API server (the default), or plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    Http,
}

/// A cluster with its instruments and its running control plane (garbage collection, and
/// workload simulation while `instruments.simulation` is enabled). Dropping it stops the
/// control plane.
#[derive(Debug)]
pub struct Emulator {
    /// The API: store, registry, write pipeline, watches.
    pub cluster: Arc<Cluster>,
    /// Fault rules, request accounting and the workload simulation switch.
    pub instruments: Arc<Instruments>,
    /// The credentials the API accepts (the admin's, ServiceAccount tokens).
    pub authenticator: Arc<Authenticator>,
    /// Where the Services that admission and conversion webhooks name are served: a test
    /// registers its webhook server's loopback address here.
    pub services: Arc<Services>,
    control_plane: ControlPlane,
}

impl Emulator {
    /// A fresh cluster (the boot namespaces only), no fault rules, simulation off, and the
    /// control plane running.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the control plane's tasks are spawned on the current one).
    pub fn start() -> Self {
        let cluster = Cluster::new();
        if let Err(e) = crate::auth::bootstrap::install(&cluster) {
            tracing::error!(error = %e, "the default RBAC roles could not be created");
        }
        let instruments = Arc::new(Instruments::default());
        let control_plane = ControlPlane::start(&cluster, instruments.simulation.clone());
        Self { cluster, instruments, authenticator: Arc::default(), services: Arc::default(), control_plane }
    }

    /// The emulator's HTTP surface as an axum router, also a `tower::Service` for in-process
    /// clients (`kube::Client::new(emulator.router(), "default")`): the API under the
    /// instruments' middleware, and the admin endpoints under `/emulator/`, authenticated and
    /// authorized as on a real server. A request without credentials is the cluster admin's (the
    /// in-process client is the test's own); one with a bearer token is its owner's. The
    /// control plane runs as long as the `Emulator`, not the router: keep the emulator while
    /// using it.
    ///
    /// Each request is served on a task of its own, as a server serves a connection: its work
    /// does not run on (and deepen) the stack of the client's future that sends it.
    pub fn router(&self) -> Router {
        let app = self.app(Some(UserInfo::admin()));
        Router::new().fallback_service(tower::service_fn(move |req: axum::extract::Request| {
            let served = tokio::spawn(tower::ServiceExt::oneshot(app.clone(), req));
            async move {
                let response = match served.await {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(e) => ApiError::internal(format!("serving the request failed: {e}")).into_response(),
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        }))
    }

    /// The router a port serves: requests without credentials are refused (401).
    fn app(&self, without_credentials: Option<UserInfo>) -> Router {
        let cluster = &self.cluster;
        let requests = Context { cluster: cluster.clone(), services: self.services.clone() };
        let api = crate::http::router(requests, self.authenticator.clone());
        let api = middleware::layer(layer::authorize(api, cluster.clone()), cluster, &self.instruments);
        let admin = layer::authorize(admin::router(cluster.clone(), self.instruments.clone()), cluster.clone());
        let app = Router::new().nest("/emulator", admin).fallback_service(api);
        let authentication =
            Authentication { authenticator: self.authenticator.clone(), cluster: cluster.clone(), without_credentials };
        layer::authenticate(app, authentication)
    }

    /// Waits until the control plane has handled every change so far (at most 30 s), for
    /// deterministic tests of garbage collection and simulated workloads.
    pub async fn settle(&self) {
        self.control_plane.settle(&self.cluster).await;
    }

    /// Serves the emulator over HTTPS on `listen` (e.g. `127.0.0.1:0`) until the server is stopped
    /// or dropped: a CA generated now signs the serving certificate and the admin's client
    /// certificate, both in the kubeconfig the server writes.
    pub async fn serve(self, listen: &str) -> Result<Server, ServeError> {
        self.serve_with(listen, Transport::Https).await
    }

    /// Serves the emulator on `listen` over `transport`; over plain HTTP the kubeconfig carries
    /// the admin's bearer token.
    pub async fn serve_with(self, listen: &str, transport: Transport) -> Result<Server, ServeError> {
        let bind_err = |source| ServeError::Bind { addr: listen.to_string(), source };
        let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let tls = match transport {
            Transport::Https => Some(ServerTls::new(&self.authenticator)?),
            Transport::Http => None,
        };
        let config = tls.as_ref().map(|t| t.config.clone());
        let task = crate::transport::spawn(listener, self.app(None), config);
        Ok(Server { emulator: self, addr, tls, task: Some(task) })
    }

    /// Puts objects back as a backup of etcd holds them (see `Cluster::restore`): each keeps its
    /// uid, owners, managedFields and status. The CRDs of custom resources must be there first.
    pub fn restore(&self, objects: impl IntoIterator<Item = serde_json::Value>) -> Result<usize, ApiError> {
        let targeted = objects
            .into_iter()
            .map(|object| Ok((manifest_target(&self.cluster, &object)?, object)))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let n = targeted.len();
        self.cluster.restore(targeted)?;
        Ok(n)
    }

    /// Creates every object of a (multi-document) YAML file, e.g. CRDs given with `--crd`.
    pub fn load_manifests(&self, path: &Path) -> Result<usize, ServeError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ServeError::Read { path: path.to_path_buf(), source })?;
        let load_err = |message: String| ServeError::Load { path: path.to_path_buf(), message };
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).map_err(|e| load_err(e.to_string()))?;
        let mut n = 0;
        for doc in docs.into_iter().filter(|d| d.is_object()) {
            create_manifest(&self.cluster, doc).map_err(|e| load_err(e.to_string()))?;
            n += 1;
        }
        Ok(n)
    }
}

/// The write target of a manifest's object, at the version it names.
fn manifest_target(cluster: &Cluster, doc: &serde_json::Value) -> Result<crate::ops::Target, ApiError> {
    let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    let kind = doc.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let rt = cluster.store.lock().registry.by_kind(group, kind).ok_or_else(ApiError::no_route)?;
    let ns = if rt.namespaced { crate::meta::meta_str(doc, "namespace").to_string() } else { String::new() };
    let ns = if rt.namespaced && ns.is_empty() { "default".to_string() } else { ns };
    cluster.target(group, version, &rt.plural, &ns, "")
}

fn create_manifest(cluster: &Cluster, doc: serde_json::Value) -> Result<(), ApiError> {
    let t = manifest_target(cluster, &doc)?;
    cluster.create(&t, doc, &WriteOptions::manager("kube-emulator"))?;
    Ok(())
}

/// The TLS material of a served emulator.
struct ServerTls {
    ca: Ca,
    admin: Issued,
    config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// A new CA, its serving certificate and the admin's client certificate (trusted by
    /// `authenticator` from now on).
    fn new(authenticator: &Authenticator) -> Result<Self, TlsError> {
        let ca = Ca::generate("kubernetes")?;
        let serving = ca.issue_server(&tls::SERVING_NAMES)?;
        let admin_user = UserInfo::admin();
        let admin = ca.issue_client(&admin_user.username, &[crate::auth::user::MASTERS])?;
        authenticator.trust_certificate(&admin.cert_der, admin_user);
        let config = tls::server_config(&serving, &ca)?;
        Ok(Self { ca, admin, config })
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// How long [`Server::stop`] waits for the aborted connections to let go of the emulator.
const CONNECTIONS_CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// An emulator serving on a TCP port; dropping it stops the server (and the emulator's control
/// plane with it).
#[derive(Debug)]
pub struct Server {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    tls: Option<ServerTls>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// `https://127.0.0.1:PORT` (`http://` when served over plain HTTP).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA that signed the serving certificate (None over plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca.pem())
    }

    /// A kubeconfig of the cluster admin (namespace `default`): the admin's client certificate
    /// over HTTPS, its bearer token over plain HTTP.
    pub fn kubeconfig_yaml(&self) -> String {
        let credentials = match &self.tls {
            Some(tls) => Credentials::Certificate(&tls.admin),
            None => Credentials::Token(self.emulator.authenticator.admin_token()),
        };
        kubeconfig_yaml(&self.url(), self.ca_pem(), credentials)
    }

    /// A kubeconfig that authenticates with `token` (e.g. a ServiceAccount's, from
    /// `kubectl create token` or the TokenRequest API).
    pub fn token_kubeconfig_yaml(&self, token: &str) -> String {
        kubeconfig_yaml(&self.url(), self.ca_pem(), Credentials::Token(token))
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), ServeError> {
        write_file(path, &self.kubeconfig_yaml())
    }

    pub fn write_token_kubeconfig(&self, path: &Path, token: &str) -> Result<(), ServeError> {
        write_file(path, &self.token_kubeconfig_yaml(token))
    }

    /// Stops serving: the port closes, and with it every open connection. Returns once the
    /// emulator is freed too: freeing a store of thousands of objects takes a core for seconds,
    /// which whatever the caller does next (a benchmark's next measurement) must not pay for.
    pub async fn stop(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        // Each aborted connection holds the API, and so the cluster, until it is next polled.
        let deadline = tokio::time::Instant::now() + CONNECTIONS_CLOSE_WITHIN;
        while Arc::strong_count(&self.emulator.cluster) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), ServeError> {
    std::fs::write(path, text).map_err(|source| ServeError::Kubeconfig { path: path.to_path_buf(), source })
}

/// How a kubeconfig's user authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// None: for a port of a test's own serving [`Emulator::router`] (the admin's then).
    None,
    Token(&'a str),
    Certificate(&'a Issued),
}

/// A kubeconfig for an emulator at `server` (namespace `default`), trusting `ca_pem` if given.
pub fn kubeconfig_yaml(server: &str, ca_pem: Option<&str>, credentials: Credentials<'_>) -> String {
    let ca = ca_pem.map(|pem| format!("\n    certificate-authority-data: {}", BASE64.encode(pem))).unwrap_or_default();
    let user = match credentials {
        Credentials::None => " {}".to_string(),
        Credentials::Token(token) => format!("\n    token: {token}"),
        Credentials::Certificate(issued) => format!(
            "\n    client-certificate-data: {}\n    client-key-data: {}",
            BASE64.encode(&issued.cert_pem),
            BASE64.encode(&issued.key_pem)
        ),
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-emulator
  cluster:
    server: {server}{ca}
contexts:
- name: kube-emulator
  context:
    cluster: kube-emulator
    user: kube-emulator
    namespace: default
current-context: kube-emulator
preferences: {{}}
users:
- name: kube-emulator
  user:{user}
"
    )
}
