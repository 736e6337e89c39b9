//! The controllers of the Prism operator, one module per kind, and the pure builders they share.
//!
//! Each reconcile is the same pipeline: read -> validate -> build (pure) -> apply -> prune ->
//! status.

pub mod apply;
pub mod backends;
pub mod backoff;
pub mod cache;
pub mod children;
pub mod cluster;
pub mod conditions;
pub mod context;
pub mod error;
pub mod hash;
pub mod images;
pub mod meta;
pub mod metrics;
pub mod namespace;
pub mod naming;
pub mod objects;
pub mod pattern;
pub mod pod;
pub mod policy;
pub mod render;
pub mod routes;
pub mod watches;
pub mod workload;

pub use context::{Config, Context};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often a teardown that waits on another controller looks again.
pub const WAIT_POLL: Duration = Duration::from_secs(2);

/// Runs every controller until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static) {
    futures::join!(
        pattern::run(ctx.clone(), shutdown.clone()),
        cluster::run(ctx.clone(), shutdown.clone()),
        namespace::run(ctx, shutdown),
    );
}
