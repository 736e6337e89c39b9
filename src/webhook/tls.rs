//! HTTPS for the webhook: rustls (ring, the one crypto provider of the process) with a
//! certificate that can be swapped while serving, so that a renewed certificate is served by the
//! next connection without a restart.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::certs::ServingCert;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the webhook certificate is not PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("the webhook certificate is not usable: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified_key(cert: &ServingCert) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}

/// The certificate currently served; [`CurrentCert::set`] swaps it.
#[derive(Debug)]
pub struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    pub fn new(cert: &ServingCert) -> Result<Arc<CurrentCert>, TlsError> {
        Ok(Arc::new(CurrentCert(RwLock::new(certified_key(cert)?))))
    }

    pub fn set(&self, cert: &ServingCert) -> Result<(), TlsError> {
        let key = certified_key(cert)?;
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        Ok(())
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// A server configuration serving `cert` (TLS 1.2/1.3, HTTP/1.1 as the API server speaks it to
/// webhooks).
pub fn server_config(cert: &ServingCert) -> Result<(Arc<ServerConfig>, Arc<CurrentCert>), TlsError> {
    let current = CurrentCert::new(cert)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), current))
}

/// Serves `app` over TLS on `listener` until the process exits.
pub fn spawn(listener: TcpListener, app: Router, config: Arc<ServerConfig>) {
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: accepting a connection");
                    continue;
                }
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let stream = match acceptor.accept(tcp).await {
                    Ok(stream) => stream,
                    Err(e) => return tracing::debug!(error = %e, "webhook: TLS handshake failed"),
                };
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    app.clone().oneshot(req.map(Body::new))
                });
                let connection =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "webhook: connection ended");
                }
            });
        }
    });
}
