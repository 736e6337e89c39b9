//! Serving on a loopback TCP port, with a kubeconfig for kubectl and kube clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::ops::Cluster;

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

/// A running emulator; dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    pub cluster: Arc<Cluster>,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Serves a fresh cluster on `listen` (e.g. `127.0.0.1:0`).
    pub async fn start(listen: &str) -> Result<Self, ServeError> {
        Self::start_with(Cluster::new(), listen).await
    }

    /// Serves an existing cluster (e.g. one with controllers attached).
    pub async fn start_with(cluster: Arc<Cluster>, listen: &str) -> Result<Self, ServeError> {
        let bind_err = |source| ServeError::Bind { addr: listen.to_string(), source };
        let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let app = crate::http::router(cluster.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        Ok(Self { cluster, addr, shutdown: Some(tx), task: Some(task) })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at this emulator (namespace `default`).
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

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

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

/// Creates every object of a (multi-document) YAML file, e.g. CRDs given with `--crd`.
pub fn load_manifests(cluster: &Cluster, path: &Path) -> Result<usize, ServeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServeError::Read { path: path.to_path_buf(), source })?;
    let load_err = |message: String| ServeError::Load { path: path.to_path_buf(), message };
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).map_err(|e| load_err(e.to_string()))?;
    let mut n = 0;
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        create_manifest(cluster, doc).map_err(|e| load_err(e.to_string()))?;
        n += 1;
    }
    Ok(n)
}

fn create_manifest(cluster: &Cluster, doc: serde_json::Value) -> Result<(), crate::errors::ApiError> {
    let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    let kind = doc.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let rt = cluster.store.lock().registry.by_kind(group, kind).ok_or_else(crate::errors::ApiError::no_route)?;
    let ns = if rt.namespaced { crate::meta::meta_str(&doc, "namespace").to_string() } else { String::new() };
    let ns = if rt.namespaced && ns.is_empty() { "default".to_string() } else { ns };
    let t = cluster.target(group, version, &rt.plural, &ns, "")?;
    cluster.create(&t, doc, &crate::ops::WriteOptions::manager("kube-emulator"))?;
    Ok(())
}
