//! The webhook server of `prism-operator run`, served by every replica (not only the leader):
//! HTTPS with `/convert` (ConversionReview v1, the CRDs' conversion) and `/validate`
//! (AdmissionReview v1, checks a schema cannot express).
//!
//! Every replica serves with the certificate of one shared Secret and follows it as it is
//! renewed; only the leader writes: it makes the Secret (a CA and a serving certificate, renewed
//! before expiry) unless cert-manager does, and points the API server at the webhook. So a
//! standby never writes, and a replica that cannot reach the API server yet retries rather than
//! exits (as cert-manager's cainjector and controller-runtime's certificate rotator do it).

pub mod admission;
pub mod certs;
pub mod install;
pub mod review;
pub mod tls;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{Api, Client};
use prism_api::v1beta1::{PrismCluster, PrismPattern};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::{CertificateSource, WebhookArgs};
use admission::Lookup;
use certs::ServingCert;
use install::Endpoint;

/// How often the certificates are checked (renewal, or a Secret cert-manager renewed).
const REFRESH: Duration = Duration::from_secs(300);
/// How often a Secret that is not written yet (by the leader, or cert-manager) is looked for.
const SECRET_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Certificates(#[from] certs::CertError),
    #[error(transparent)]
    Install(#[from] install::InstallError),
    #[error("waiting for the webhook's certificate: the server stopped")]
    NotServing,
}

/// Where the webhook runs and how it is reached, from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub secret: String,
    pub configuration: String,
    pub certificates: CertificateSource,
    /// The namespace the operator watches, if only one: the webhook validates that one only.
    pub scope: Option<String>,
}

impl Settings {
    pub fn from_args(args: &WebhookArgs, scope: Option<String>) -> Settings {
        Settings {
            endpoint: Endpoint {
                service: args.service.clone(),
                namespace: args.namespace(),
                port: i32::from(args.service_port),
            },
            secret: args.secret.clone(),
            configuration: args.configuration.clone(),
            certificates: args.certificates,
            scope,
        }
    }
}

/// The webhook of one replica: what it serves with, known from the Secret or, on the leader,
/// from what it has just written there.
#[derive(Clone)]
pub struct Webhook {
    client: Client,
    settings: Settings,
    certificate: watch::Sender<Option<ServingCert>>,
}

impl Webhook {
    pub fn new(client: Client, settings: Settings) -> Webhook {
        Webhook { client, settings, certificate: watch::Sender::new(None) }
    }

    /// Every replica: serves on `listener` once a certificate is known, calls `on_serving`, and
    /// swaps in each renewed certificate from the next connection on. Runs until the process
    /// exits; a certificate that cannot be used is logged and the next one awaited.
    pub async fn serve(self, listener: TcpListener, on_serving: impl FnOnce()) {
        tokio::spawn(self.clone().follow_secret());
        let addr = listener.local_addr().ok();
        let mut certificates = self.certificate.subscribe();
        let current = loop {
            let Ok(offered) = certificates.wait_for(Option::is_some).await.map(|c| c.clone()) else { return };
            match offered.as_ref().map(tls::server_config) {
                Some(Ok((config, current))) => {
                    tls::spawn(listener, router(Validator::of(&self.client, &self.settings)), config);
                    break current;
                }
                Some(Err(e)) => tracing::warn!(error = %e, "the webhook's certificate is not usable"),
                None => {}
            }
            if certificates.changed().await.is_err() {
                return;
            }
        };
        tracing::info!(?addr, "webhook serving /convert and /validate");
        on_serving();
        while certificates.changed().await.is_ok() {
            let renewed = certificates.borrow_and_update().clone();
            match renewed.as_ref().map(|c| current.set(c)) {
                Some(Ok(())) => tracing::info!("serving the renewed webhook certificate"),
                Some(Err(e)) => tracing::warn!(error = %e, "the renewed webhook certificate is not usable"),
                None => {}
            }
        }
    }

    /// Reads the Secret until it holds a certificate, then again every [`REFRESH`]: the
    /// leader (or cert-manager) renews it, every replica follows.
    async fn follow_secret(self) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.settings.endpoint.namespace);
        loop {
            match secrets.get_opt(&self.settings.secret).await {
                Ok(Some(secret)) => match certs::serving_from(&secret) {
                    Ok(serving) => self.offer(serving),
                    Err(e) => tracing::warn!(error = %e, "waiting for the webhook's certificate"),
                },
                Ok(None) => tracing::info!(secret = %self.settings.secret, "waiting for the webhook's Secret"),
                Err(e) => tracing::warn!(error = %e, "reading the webhook's Secret"),
            }
            let known = self.certificate.borrow().is_some();
            tokio::time::sleep(if known { REFRESH } else { SECRET_POLL }).await;
        }
    }

    fn offer(&self, serving: ServingCert) {
        self.certificate.send_if_modified(|current| {
            let changed = current.as_ref() != Some(&serving);
            *current = Some(serving);
            changed
        });
    }

    /// The leader: the certificates made or renewed (unless cert-manager makes them), then the
    /// API server pointed at the webhook, writing only what differs. Retried until done: the
    /// controllers read v1beta1 only once the CRDs convert through the webhook.
    pub async fn install(&self) {
        let attempt = || async {
            let serving = self.current_certificate().await?;
            let settings = &self.settings;
            let scope = settings.scope.as_deref();
            install::install(&self.client, &settings.configuration, &settings.endpoint, &serving.ca_pem, scope).await?;
            Ok::<_, WebhookError>(())
        };
        let retried = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_secs(1))
                    .with_max_delay(REFRESH / 10)
                    .without_max_times(),
            )
            .notify(|e, wait| tracing::warn!(error = %e, ?wait, "installing the webhook; retrying"))
            .await;
        if let Err(e) = retried {
            tracing::warn!(error = %e, "installing the webhook failed; the next refresh retries");
        }
    }

    /// The leader, for as long as it leads: renews and re-installs every [`REFRESH`] (CRDs
    /// installed since, or re-applied, get their conversion back). Never returns.
    pub async fn keep_installed(&self) {
        loop {
            tokio::time::sleep(REFRESH).await;
            self.install().await;
        }
    }

    /// The certificate to install: the one the leader has just made sure of in the Secret, or
    /// the one cert-manager wrote (once this replica has read it).
    async fn current_certificate(&self) -> Result<ServingCert, WebhookError> {
        match self.settings.certificates {
            CertificateSource::SelfSigned => {
                let endpoint = &self.settings.endpoint;
                let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &endpoint.namespace);
                let names = certs::service_names(&endpoint.service, &endpoint.namespace);
                let now = k8s_openapi::jiff::Timestamp::now().as_second();
                let serving = certs::ensure(&secrets, &endpoint.namespace, &self.settings.secret, &names, now).await?;
                self.offer(serving.clone());
                Ok(serving)
            }
            CertificateSource::Secret => {
                let mut certificates = self.certificate.subscribe();
                let known = certificates.wait_for(Option::is_some).await.map_err(|_| WebhookError::NotServing)?;
                known.clone().ok_or(WebhookError::NotServing)
            }
        }
    }
}

/// What the validating webhook reads with.
#[derive(Clone)]
struct Validator {
    client: Client,
    /// Whether the namespaces' labels may be read (an operator watching one namespace may not).
    cluster_wide: bool,
}

impl Validator {
    fn of(client: &Client, settings: &Settings) -> Validator {
        Validator { client: client.clone(), cluster_wide: settings.scope.is_none() }
    }
}

fn router(validator: Validator) -> Router {
    Router::new().route("/convert", post(serve_convert)).route("/validate", post(serve_validate)).with_state(validator)
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

async fn serve_validate(State(Validator { client, cluster_wide }): State<Validator>, body: Bytes) -> Response {
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
    let labels = match cluster.as_ref().filter(|c| cluster_wide && admission::needs_labels(&request, c)) {
        Some(_) => namespace_labels(&client, &request.namespace).await,
        None => None,
    };
    let mut verdict = if lookup_warning.is_some() {
        admission::Verdict { refusal: None, warnings: admission::deprecation(&request).into_iter().collect() }
    } else {
        admission::decide(&request, cluster.as_ref(), labels.as_ref())
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

/// The labels of Kubernetes namespace `ns`, if they can be read (a tenant's, for a cluster that
/// admits by labels; not read, the check steps aside and the condition decides).
async fn namespace_labels(client: &Client, ns: &str) -> Option<prism_controllers::tenancy::Labels> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_metadata_opt(ns).await {
        Ok(found) => found.map(|n| n.metadata.labels.unwrap_or_default()),
        Err(error) => {
            tracing::debug!(%error, namespace = ns, "the namespace's labels were not read");
            None
        }
    }
}

async fn look_up(client: &Client, request: &admission::Request) -> Result<Option<PrismCluster>, kube::Error> {
    let clusters: Api<PrismCluster> = Api::namespaced(client.clone(), &request.namespace);
    match admission::lookup(request) {
        Lookup::Nothing => Ok(None),
        Lookup::Cluster { namespace, name } => {
            Api::<PrismCluster>::namespaced(client.clone(), &namespace).get_opt(&name).await
        }
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
