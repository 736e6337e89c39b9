//! The controllers of the Prism operator, one module per kind, and the pure builders they share.
//!
//! Each reconcile is the same pipeline: read -> validate -> build (pure) -> apply -> prune ->
//! status.

pub mod cluster;
pub mod context;
pub mod metrics;
pub mod namespace;
pub mod pattern;

pub use context::{Config, Context};

use std::future::Future;
use std::sync::Arc;

/// Runs every controller until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static) {
    // The controllers are wired in here as they are built.
    let _ = ctx;
    shutdown.await;
}
