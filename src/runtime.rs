//! `prism-operator run`: wires the client, the endpoints, leader election and the controllers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use prism_controllers::Context;
use prism_controllers::context::RequestBudget;
use prism_controllers::metrics::Metrics;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::args::{ArgsError, LeaderArgs, RunArgs};
use crate::client::{self, ClientError};
use crate::health::Readiness;
use crate::http::{self, BindError};
use crate::leader::{LeaderElector, LostLease, Timings};
use crate::rate_limit::RateLimitLayer;
use crate::shutdown::{self, Shutdown};
use crate::telemetry::{self, TelemetryError};
use crate::webhook::Webhook;

/// How long the controllers may take to finish their in-flight reconciles on shutdown; below
/// Kubernetes' default 30 s grace period, leaving time to release the lease.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Args(#[from] ArgsError),
    #[error("cannot start logging")]
    Telemetry(#[from] TelemetryError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the controllers did not stop within {0:?}; the lease is left to expire")]
    DrainTimeout(Duration),
    #[error("the controllers failed")]
    ControllersFailed(#[source] tokio::task::JoinError),
    #[error("the controllers stopped without being asked to")]
    ControllersStopped,
}

/// Runs the operator on a new multi-threaded runtime until shutdown (a lost lease ends the
/// process at once, see `lose`).
pub fn run_blocking(args: RunArgs) -> Result<(), RunError> {
    args.validate()?;
    telemetry::init(args.log_format, args.log_level.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(RunError::Runtime)?;
    runtime.block_on(run(args))
}

/// The operator's endpoints, bound before anything else so that a taken port fails at once.
pub struct Listeners {
    metrics: TcpListener,
    health: TcpListener,
    webhook: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(args: &RunArgs) -> Result<Listeners, BindError> {
        Ok(Listeners {
            metrics: http::bind(args.metrics_addr, "metrics").await?,
            health: http::bind(args.health_addr, "health probes").await?,
            webhook: match args.webhook.enabled {
                true => Some(http::bind(args.webhook.addr, "the webhook").await?),
                false => None,
            },
        })
    }

    /// Where the webhook listens (with port 0 in its flag, known only once bound).
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// The operator's life: endpoints up, API reached, then lead (or stand by) until asked to stop.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let listeners = Listeners::bind(&args).await?;
    run_on(args, listeners).await
}

/// [`run`] on endpoints already bound (by an embedder that must know their addresses first).
pub async fn run_on(args: RunArgs, listeners: Listeners) -> Result<(), RunError> {
    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(shutdown::on_signals(trigger));
    let metrics = Arc::new(Metrics::new());
    if let Some(limit) = args.memory_limit {
        metrics.set_memory_limit(limit);
    }
    let readiness = Readiness::new(args.leader.enabled.then_some(args.leader.lease_duration));
    let readiness = Arc::new(if args.webhook.enabled { readiness.with_webhook() } else { readiness });
    http::spawn(listeners.metrics, http::metrics_router(metrics.clone()), "metrics");
    http::spawn(listeners.health, http::health_router(readiness.clone()), "health probes");

    let config = client::load_config(args.kubeconfig.as_deref()).await?;
    let url = config.cluster_url.to_string();
    let controller_limit = RateLimitLayer::from_qps(args.qps, args.burst);
    let budget = controller_limit.as_ref().map(|limit| Arc::new(limit.bucket()) as Arc<dyn RequestBudget>);
    let controller_client = client::build_client(config.clone(), controller_limit, Some(metrics.clone()))?;
    let info = tokio::select! {
        info = client::wait_for_api(&controller_client, &url, client::connect_backoff()) => info?,
        () = shutdown.requested() => return Ok(()),
    };
    tracing::info!(%url, version = %info.git_version, "connected to the Kubernetes API");
    readiness.api_reached();

    // Every replica serves the webhook, leader or not; only the leader installs it (below).
    let webhook = match listeners.webhook {
        Some(listener) => {
            let limit = RateLimitLayer::from_qps(args.qps, args.burst);
            let webhook_client = client::build_client(config.clone(), limit, Some(metrics.clone()))?;
            let webhook = Webhook::new(
                webhook_client,
                crate::webhook::Settings::from_args(&args.webhook, args.namespace.clone()),
            );
            let readiness = readiness.clone();
            tokio::spawn(webhook.clone().serve(listener, move || readiness.webhook_serving()));
            Some(webhook)
        }
        None => None,
    };

    // One identity for the Lease and for Events, so both name the same instance.
    let identity = args.leader.identity();
    // Events get their own client (and rate limit): best effort, never ahead of reconciles.
    let event_limit = RateLimitLayer::from_qps(args.qps, args.burst);
    let event_client = client::build_client(config.clone(), event_limit, Some(metrics.clone()))?;
    let ctx = Context::with_event_client(
        controller_client,
        budget,
        event_client,
        metrics.clone(),
        controllers_config(&args, &identity),
    );
    let result = if args.leader.enabled {
        // Renewals get their own client: never queued behind the controllers' rate limit.
        let lease_client = client::build_client(config, None, Some(metrics.clone()))?;
        let elector = elector(lease_client, &args.leader, identity, readiness.clone());
        lead_then_run(elector, ctx, webhook, &metrics, shutdown).await
    } else {
        // Without election this instance is the only writer: it leads, for the leader metric.
        metrics.set_leader(true);
        run_controllers(ctx, webhook, shutdown).await
    };
    readiness.stopping();
    result
}

fn controllers_config(args: &RunArgs, identity: &str) -> prism_controllers::Config {
    prism_controllers::Config {
        namespace: args.namespace.clone(),
        concurrency: args.concurrency,
        resync: args.resync,
        instance: identity.to_string(),
    }
}

fn elector(client: Client, args: &LeaderArgs, identity: String, readiness: Arc<Readiness>) -> LeaderElector {
    let timings = Timings {
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
    };
    let api = Api::<Lease>::namespaced(client, &args.lease_namespace());
    LeaderElector::new(api, &args.lease_name, identity, timings).on_contact(move |at| readiness.lease_contact(at))
}

/// The leader migrates stored objects to v1beta1 beside the controllers (they read v1beta1
/// either way); a failure is logged and the next leader term tries again.
fn spawn_migration(ctx: &Context) {
    let client = ctx.client.clone();
    let namespace = ctx.config.namespace.clone();
    tokio::spawn(async move {
        match crate::migration::migrate(&client, namespace.as_deref()).await {
            Ok(done) if done.trimmed.is_empty() && done.rewritten == 0 => {}
            Ok(done) => tracing::info!(rewritten = done.rewritten, trimmed = ?done.trimmed, "storage migration done"),
            Err(e) => tracing::warn!(error = %e, "storage migration failed; the next leader term retries"),
        }
    });
}

/// A term of leading, until `stop`: the webhook installed first (the controllers read v1beta1
/// only once the CRDs convert through it, and so does the storage migration), then the
/// controllers, with the webhook kept installed beside them.
async fn lead(ctx: Arc<Context>, webhook: Option<Webhook>, stop: Shutdown) {
    if let Some(webhook) = &webhook {
        tokio::select! {
            () = webhook.install() => {}
            () = stop.requested() => return,
        }
    }
    spawn_migration(&ctx);
    let controllers = prism_controllers::run(ctx, stop.into_future());
    match webhook {
        // `keep_installed` never returns: the term ends with the controllers.
        Some(webhook) => tokio::select! {
            () = controllers => {}
            () = webhook.keep_installed() => {}
        },
        None => controllers.await,
    }
}

/// Without leader election: the controllers run until shutdown.
async fn run_controllers(ctx: Arc<Context>, webhook: Option<Webhook>, shutdown: Shutdown) -> Result<(), RunError> {
    let controllers = tokio::spawn(lead(ctx, webhook, shutdown.clone()));
    shutdown.requested().await;
    let mut controllers = controllers;
    let drained = drain(&mut controllers).await;
    controllers.abort();
    drained
}

/// What ends a term as leader.
enum TermEnd {
    Shutdown,
    Lost(LostLease),
    ControllersEnded(Result<(), tokio::task::JoinError>),
}

/// Waits for the lease, runs the controllers while holding it, then stops them and hands the
/// lease back on shutdown. A lost lease ends the process at once.
async fn lead_then_run(
    mut elector: LeaderElector,
    ctx: Arc<Context>,
    webhook: Option<Webhook>,
    metrics: &Metrics,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    tracing::info!(identity = %elector.identity(), "waiting for the leader lease");
    tokio::select! {
        () = elector.acquire() => {}
        () = shutdown.requested() => return Ok(()),
    }
    metrics.set_leader(true);
    let (stop_controllers, controllers_stop) = shutdown::channel();
    let mut controllers = tokio::spawn(lead(ctx, webhook, controllers_stop));
    let end = tokio::select! {
        lost = elector.keep() => TermEnd::Lost(lost),
        () = shutdown.requested() => TermEnd::Shutdown,
        joined = &mut controllers => TermEnd::ControllersEnded(joined),
    };
    match end {
        TermEnd::Lost(lost) => lose(lost),
        TermEnd::ControllersEnded(joined) => {
            release(&mut elector, metrics).await;
            joined.map_err(RunError::ControllersFailed)?;
            return Err(RunError::ControllersStopped);
        }
        TermEnd::Shutdown => {}
    }
    // Keep renewing while the in-flight reconciles finish: the lease must outlive every write.
    stop_controllers.trigger();
    let drained = tokio::select! {
        lost = elector.keep() => lose(lost),
        drained = drain(&mut controllers) => drained,
    };
    if drained.is_err() {
        // Still writing: the lease must not be handed over; it expires once we are gone.
        controllers.abort();
        metrics.set_leader(false);
        return drained;
    }
    release(&mut elector, metrics).await;
    Ok(())
}

/// Ends the process at once after losing the lease: no request of the controllers may follow (as
/// client-go's leader election ends its process). Dropping the runtime instead cancelled the
/// reconcile tasks one by one while kube-runtime's applier could still poll them, and it unwraps
/// their cancellation: a panic on the way out (seen by the soak).
fn lose(lost: LostLease) -> ! {
    tracing::error!(reason = %lost, "lost the leader lease: exiting at once so that no two instances write");
    std::process::exit(1)
}

async fn drain(controllers: &mut JoinHandle<()>) -> Result<(), RunError> {
    match tokio::time::timeout(DRAIN_TIMEOUT, controllers).await {
        Ok(joined) => joined.map_err(RunError::ControllersFailed),
        Err(_) => Err(RunError::DrainTimeout(DRAIN_TIMEOUT)),
    }
}

async fn release(elector: &mut LeaderElector, metrics: &Metrics) {
    match tokio::time::timeout(Duration::from_secs(5), elector.release()).await {
        Ok(Ok(true)) => tracing::info!("released the leader lease: a standby takes over now"),
        Ok(Ok(false)) => tracing::info!("the leader lease was no longer ours to release"),
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot release the leader lease; it expires by itself"),
        Err(_) => tracing::warn!("releasing the leader lease timed out; it expires by itself"),
    }
    metrics.set_leader(false);
}
