//! The webhook server of `prism-operator run`, served by every replica (not only the leader):
//! HTTPS with `/convert` (ConversionReview v1, the CRDs' conversion) and `/validate`
//! (AdmissionReview v1, checks a schema cannot express). It takes its certificate from a Secret
//! that it makes itself (a CA and a serving certificate, shared by the replicas, renewed before
//! expiry) or that cert-manager writes, and points the API server at itself.

pub mod admission;
pub mod certs;
pub mod install;
pub mod review;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use prism_api::v1beta1::{PrismCluster, PrismPattern};
use tokio::net::TcpListener;

use crate::args::{CertificateSource, WebhookArgs};
use admission::Lookup;
use install::Endpoint;

/// How often the certificates are checked (renewal, or a Secret cert-manager renewed).
const REFRESH: Duration = Duration::from_secs(300);
/// How often a Secret that cert-manager has not written yet is looked for.
const SECRET_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Certificates(#[from] certs::CertError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Install(#[from] install::InstallError),
}

/// Where the webhook runs and how it is reached, from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub secret: String,
    pub configuration: String,
    pub certificates: CertificateSource,
}

impl Settings {
    pub fn from_args(args: &WebhookArgs) -> Settings {
        Settings {
            endpoint: Endpoint {
                service: args.service.clone(),
                namespace: args.namespace(),
                port: i32::from(args.service_port),
            },
            secret: args.secret.clone(),
            configuration: args.configuration.clone(),
            certificates: args.certificates,
        }
    }
}

/// Serves the webhook on `listener` once its certificate is ready, points the API server at it,
/// and keeps the certificate fresh in the background. Returns the address once all is in place
/// (the moment readiness may say so).
pub async fn start(client: Client, settings: Settings, listener: TcpListener) -> Result<SocketAddr, WebhookError> {
    let serving = current_certificate(&client, &settings).await?;
    let (config, current) = tls::server_config(&serving)?;
    let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    tls::spawn(listener, router(client.clone()), config);
    tracing::info!(%addr, "webhook serving /convert and /validate");
    install::install(&client, &settings.configuration, &settings.endpoint, &serving.ca_pem).await?;
    tokio::spawn(refresh(client, settings, current, serving));
    Ok(addr)
}

async fn current_certificate(client: &Client, settings: &Settings) -> Result<certs::ServingCert, WebhookError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.endpoint.namespace);
    match settings.certificates {
        CertificateSource::SelfSigned => {
            let names = certs::service_names(&settings.endpoint.service, &settings.endpoint.namespace);
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            Ok(certs::ensure(&secrets, &settings.endpoint.namespace, &settings.secret, &names, now).await?)
        }
        CertificateSource::Secret => loop {
            match secrets.get_opt(&settings.secret).await {
                Ok(Some(secret)) => match certs::serving_from(&secret) {
                    Ok(serving) => return Ok(serving),
                    Err(e) => tracing::warn!(error = %e, "waiting for the webhook's certificate"),
                },
                Ok(None) => {
                    tracing::info!(secret = %settings.secret, "waiting for cert-manager to write the webhook's Secret")
                }
                Err(e) => tracing::warn!(error = %e, "reading the webhook's Secret"),
            }
            tokio::time::sleep(SECRET_POLL).await;
        },
    }
}

/// Re-reads (and renews) the certificate periodically: a new one is served from the next
/// connection on; a new CA is injected again.
async fn refresh(client: Client, settings: Settings, current: Arc<tls::CurrentCert>, mut serving: certs::ServingCert) {
    loop {
        tokio::time::sleep(REFRESH).await;
        let next = match current_certificate(&client, &settings).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the webhook's certificate");
                continue;
            }
        };
        if next == serving {
            // Again anyway: CRDs installed since, or re-applied, get their conversion back.
            if let Err(e) =
                install::install(&client, &settings.configuration, &settings.endpoint, &serving.ca_pem).await
            {
                tracing::warn!(error = %e, "pointing the API server at the webhook");
            }
            continue;
        }
        if let Err(e) = current.set(&next) {
            tracing::warn!(error = %e, "the renewed webhook certificate is not usable");
            continue;
        }
        if next.ca_pem != serving.ca_pem
            && let Err(e) = install::install(&client, &settings.configuration, &settings.endpoint, &next.ca_pem).await
        {
            tracing::warn!(error = %e, "injecting the renewed CA bundle");
            continue;
        }
        tracing::info!("serving the renewed webhook certificate");
        serving = next;
    }
}

fn router(client: Client) -> Router {
    Router::new().route("/convert", post(serve_convert)).route("/validate", post(serve_validate)).with_state(client)
}

fn bad_request(e: review::BadReview) -> Response {
    (StatusCode::BAD_REQUEST, e.to_string()).into_response()
}

async fn serve_convert(body: Bytes) -> Response {
    match review::convert(&body) {
        Ok(answer) => json(&answer),
        Err(e) => bad_request(e),
    }
}

async fn serve_validate(State(client): State<Client>, body: Bytes) -> Response {
    let (request, uid) = match review::admission_request(&body) {
        Ok(parsed) => parsed,
        Err(e) => return bad_request(e),
    };
    let (cluster, lookup_warning) = match look_up(&client, &request).await {
        Ok(cluster) => (cluster, None),
        // The references cannot be checked now: allowed (as failurePolicy Ignore would), and the
        // conditions will report what is wrong.
        Err(e) => (None, Some(format!("the references of this object were not checked: {e}"))),
    };
    let mut verdict = if lookup_warning.is_some() {
        admission::Verdict { refusal: None, warnings: admission::deprecation(&request).into_iter().collect() }
    } else {
        admission::decide(&request, cluster.as_ref())
    };
    verdict.warnings.extend(lookup_warning);
    tracing::debug!(
        kind = %request.kind, operation = ?request.operation, name = %request.name, version = %request.request_version,
        subresource = ?request.subresource, manager = ?request.field_manager, cluster = ?cluster.as_ref().map(|c| c.metadata.name.clone()),
        refusal = ?verdict.refusal, warnings = ?verdict.warnings, "admission review"
    );
    json(&review::admission_response(&uid, &verdict))
}

fn json(value: &serde_json::Value) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

async fn look_up(client: &Client, request: &admission::Request) -> Result<Option<PrismCluster>, kube::Error> {
    let clusters: Api<PrismCluster> = Api::namespaced(client.clone(), &request.namespace);
    match admission::lookup(request) {
        Lookup::Nothing => Ok(None),
        Lookup::Cluster(name) => clusters.get_opt(&name).await,
        Lookup::OwnerOfPattern(name) => {
            let patterns: Api<PrismPattern> = Api::namespaced(client.clone(), &request.namespace);
            let Some(pattern) = patterns.get_opt(&name).await? else { return Ok(None) };
            let owner = serde_json::to_value(&pattern).ok().as_ref().and_then(admission::Request::owning_cluster);
            match owner {
                Some(owner) => clusters.get_opt(&owner).await,
                None => Ok(None),
            }
        }
    }
}
