//! The controllers of the Prism operator, one module per kind, and the pure builders they share.
//!
//! Each reconcile is the same pipeline: read -> validate -> build (pure) -> apply -> sweep ->
//! status. One driver runs it for every kind; a controller supplies its identity, its apply and
//! its cleanup.
//!
//! Layers, each importing only from the layers below it:
//! 1. Foundations, no I/O: `error`, `kinds`, `hash`, `ports`, `naming`, `meta`, `conditions`,
//!    `transitions`, `record`, `projection`, `workload`, `metrics`, `backoff`, and the shared
//!    builders `images`, `objects`, `pod`,
//!    `backends`, `children`, `routes`, `tenancy`.
//! 2. The runtime of a controller: `watches` (backed-off watches shared by the controllers),
//!    `queue` and `runner` (what wakes an object, and reconciles in the order asked), `resync`
//!    (each object again once per period, spread over it), `cache` (the children as last seen),
//!    `context` (what all controllers share), `writer` (apply, the ledger, the sweep), `driver`
//!    (finalizer, status, errors, Events).
//! 3. The controllers: `pattern`, `namespace`, `cluster` (each: validate, build, status, reconcile).
//! 4. What uses them all: `render` (offline), and [`run`].

pub mod backends;
pub mod backoff;
pub mod cache;
pub mod children;
pub mod cluster;
pub mod conditions;
pub mod context;
pub mod driver;
pub mod error;
pub mod events;
pub mod hash;
pub mod images;
pub mod indexed;
pub mod intern;
pub mod kinds;
pub mod meta;
pub mod metrics;
pub mod namespace;
pub mod naming;
pub mod objects;
pub mod pattern;
pub mod pod;
pub mod ports;
pub mod projection;
pub mod queue;
pub mod record;
pub mod render;
pub mod resync;
pub mod routes;
pub mod runner;
pub mod tenancy;
pub mod transitions;
pub mod watches;
pub mod workload;
pub mod writer;

pub use context::{Config, Context};

use std::future::Future;
use std::sync::Arc;

/// One of the controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pattern,
    Cluster,
    Namespace,
}

/// Runs every controller until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static) {
    run_some(ctx, shutdown, &[Kind::Pattern, Kind::Cluster, Kind::Namespace]).await;
}

/// Runs the controllers of `kinds` (a test's choice) until `shutdown` completes. They share their
/// watches: each controller sets its up first, then all run.
pub async fn run_some(
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
    kinds: &[Kind],
) {
    let watches = watches::SharedWatches::new(ctx.client.clone(), ctx.config.namespace.clone());
    let pattern = match kinds.contains(&Kind::Pattern) {
        true => Some(pattern::start(ctx.clone(), &watches, shutdown.clone()).await),
        false => None,
    };
    let cluster = match kinds.contains(&Kind::Cluster) {
        true => Some(cluster::start(ctx.clone(), &watches, shutdown.clone()).await),
        false => None,
    };
    let namespace = kinds.contains(&Kind::Namespace).then(|| namespace::start(ctx, &watches, shutdown.clone()));
    futures::join!(watches.run(shutdown), run_if(pattern), run_if(cluster), run_if(namespace));
}

async fn run_if(controller: Option<impl Future<Output = ()>>) {
    if let Some(controller) = controller {
        controller.await;
    }
}
