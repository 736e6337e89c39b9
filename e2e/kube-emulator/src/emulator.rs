//! The emulator as tests and the `kube-emulator` binary use it: the API ([`Cluster`]) with its
//! test instruments and its control plane, started explicitly, served in-process as a router or
//! on a loopback port with a kubeconfig for kubectl and kube clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::controllers::ControlPlane;
use crate::errors::ApiError;
use crate::instruments::{Instruments, admin, middleware};
use crate::ops::{Cluster, WriteOptions};

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
        let instruments = Arc::new(Instruments::default());
        let control_plane = ControlPlane::start(&cluster, instruments.simulation.clone());
        Self { cluster, instruments, control_plane }
    }

    /// The emulator's HTTP surface as an axum router, also a `tower::Service` for in-process
    /// clients (`kube::Client::new(emulator.router(), "default")`): the API under the
    /// instruments' middleware, and the admin endpoints under `/emulator/`. The control plane
    /// runs as long as the `Emulator`, not the router: keep the emulator while using it.
    pub fn router(&self) -> Router {
        let api = middleware::layer(crate::http::router(self.cluster.clone()), &self.cluster, &self.instruments);
        Router::new()
            .nest("/emulator", admin::router(self.cluster.clone(), self.instruments.clone()))
            .fallback_service(api)
    }

    /// Waits until the control plane has handled every change so far (at most 30 s), for
    /// deterministic tests of garbage collection and simulated workloads.
    pub async fn settle(&self) {
        self.control_plane.settle(&self.cluster).await;
    }

    /// Serves the emulator on `listen` (e.g. `127.0.0.1:0`) until the server is stopped or
    /// dropped.
    pub async fn serve(self, listen: &str) -> Result<Server, ServeError> {
        let bind_err = |source| ServeError::Bind { addr: listen.to_string(), source };
        let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let app = self.router();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        Ok(Server { emulator: self, addr, shutdown: Some(tx), task: Some(task) })
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

fn create_manifest(cluster: &Cluster, doc: serde_json::Value) -> Result<(), ApiError> {
    let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    let kind = doc.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let rt = cluster.store.lock().registry.by_kind(group, kind).ok_or_else(ApiError::no_route)?;
    let ns = if rt.namespaced { crate::meta::meta_str(&doc, "namespace").to_string() } else { String::new() };
    let ns = if rt.namespaced && ns.is_empty() { "default".to_string() } else { ns };
    let t = cluster.target(group, version, &rt.plural, &ns, "")?;
    cluster.create(&t, doc, &WriteOptions::manager("kube-emulator"))?;
    Ok(())
}

/// An emulator serving on a TCP port; dropping it stops the server (and the emulator's control
/// plane with it).
#[derive(Debug)]
pub struct Server {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at this server (namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), ServeError> {
        std::fs::write(path, self.kubeconfig_yaml())
            .map_err(|source| ServeError::Kubeconfig { path: path.to_path_buf(), source })
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
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

/// A kubeconfig for an emulator at `server` (e.g. one served on a port of a test's own).
pub fn kubeconfig_yaml(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-emulator
  cluster:
    server: {server}
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
  user:
    token: kube-emulator
"
    )
}
