//! The emulator on a TCP port: HTTP/1.1 over TLS, each request carrying the client certificate
//! its connection presented (for authentication), or plain HTTP.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::authn::PeerCertificate;

/// Serves `app` on `listener` until the returned task is aborted, which closes every
/// connection it accepted (open watches included).
pub fn spawn(listener: TcpListener, app: Router, tls: Option<Arc<ServerConfig>>) -> JoinHandle<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    continue;
                }
            };
            // Small requests and answers: no Nagle delay (kube and kubectl wait for each answer).
            let _ = tcp.set_nodelay(true);
            while connections.try_join_next().is_some() {}
            connections.spawn(connection(tcp, app.clone(), acceptor.clone()));
        }
    })
}

async fn connection(tcp: TcpStream, app: Router, acceptor: Option<TlsAcceptor>) {
    let Some(acceptor) = acceptor else {
        return serve_http(tcp, app, None).await;
    };
    match acceptor.accept(tcp).await {
        Ok(stream) => {
            let peer = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
            let peer = peer.map(|cert| PeerCertificate(cert.clone().into_owned()));
            serve_http(stream, app, peer).await
        }
        // A client that does not trust the CA, or presents a certificate it did not sign.
        Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
    }
}

async fn serve_http<S>(stream: S, app: Router, peer: Option<PeerCertificate>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        if let Some(peer) = &peer {
            req.extensions_mut().insert(peer.clone());
        }
        app.clone().oneshot(req.map(Body::new))
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(error = %e, "connection ended");
    }
}
