//! Graceful shutdown: SIGTERM or ctrl-c asks every part to stop; a second signal exits at once.

use std::future::Future;
use std::pin::Pin;

use futures::FutureExt;
use futures::future::Shared;
use tokio::sync::watch;

/// Exit code after a second signal, like a shell's for SIGINT.
const FORCED_EXIT_CODE: i32 = 130;

/// A future that completes once shutdown was asked for; cheap to clone, `Send + Sync`, as
/// kube-runtime's `graceful_shutdown_on` wants.
pub type ShutdownFuture = Shared<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Asks for shutdown; every [`Shutdown`] made from it sees the request.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Waits for a shutdown request.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when shutdown is asked for (at once if it already was, or if the trigger is gone).
    pub async fn requested(&self) {
        let mut rx = self.0.clone();
        // An error means every trigger was dropped: nobody can ask any more, so stop too.
        let _ = rx.wait_for(|requested| *requested).await;
    }

    pub fn into_future(self) -> ShutdownFuture {
        let fut: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move { self.requested().await });
        fut.shared()
    }
}

/// Triggers shutdown on the first SIGTERM or ctrl-c, and exits the process on the second (an
/// operator stuck in draining must still be stoppable by hand).
pub async fn on_signals(trigger: ShutdownTrigger) {
    for attempt in 0.. {
        let signal = next_signal().await;
        if attempt == 0 {
            tracing::info!(%signal, "shutting down: stopping the controllers, then releasing the lease");
            trigger.trigger();
        } else {
            tracing::warn!(%signal, "second signal: exiting now");
            std::process::exit(FORCED_EXIT_CODE);
        }
    }
}

#[cfg(unix)]
async fn next_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only ctrl-c stops the operator");
            ctrl_c().await
        }
    }
}

#[cfg(not(unix))]
async fn next_signal() -> &'static str {
    ctrl_c().await
}

async fn ctrl_c() -> &'static str {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling at all: never complete, rather than shut down for no reason.
        std::future::pending::<()>().await;
    }
    "SIGINT"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_request() {
        let (trigger, shutdown) = channel();
        let fut = shutdown.clone().into_future();
        let (a, b) = (fut.clone(), fut);
        assert!(!shutdown.is_requested());
        trigger.trigger();
        a.await;
        b.await;
        shutdown.requested().await;
        assert!(shutdown.is_requested());
    }
}
