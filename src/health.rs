//! Readiness of this instance, as /readyz reports it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Ready once the API server answered and, with leader election, while the lease is being read
/// or renewed successfully: a leader, or a standby able to take over.
#[derive(Debug)]
pub struct Readiness {
    api_reached: AtomicBool,
    stopping: AtomicBool,
    /// With the webhook: whether it serves (certificate loaded, API server pointed at it).
    webhook: Option<AtomicBool>,
    /// With leader election: how stale the last lease contact may be, and when it was.
    lease: Option<(Duration, Mutex<Option<Instant>>)>,
}

impl Readiness {
    /// `lease_staleness`: `Some(lease duration)` with leader election, `None` without.
    pub fn new(lease_staleness: Option<Duration>) -> Readiness {
        Readiness {
            api_reached: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            webhook: None,
            lease: lease_staleness.map(|d| (d, Mutex::new(None))),
        }
    }

    /// Ready only once the webhook serves, too.
    pub fn with_webhook(mut self) -> Readiness {
        self.webhook = Some(AtomicBool::new(false));
        self
    }

    pub fn webhook_serving(&self) {
        if let Some(webhook) = &self.webhook {
            webhook.store(true, Ordering::Relaxed);
        }
    }

    pub fn api_reached(&self) {
        self.api_reached.store(true, Ordering::Relaxed);
    }

    /// The lease was read or written successfully at `at`.
    pub fn lease_contact(&self, at: Instant) {
        if let Some((_, last)) = &self.lease {
            *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
        }
    }

    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// `Ok` when ready, else why not (the body of a 503).
    pub fn check(&self, now: Instant) -> Result<(), &'static str> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err("shutting down");
        }
        if !self.api_reached.load(Ordering::Relaxed) {
            return Err("the Kubernetes API has not been reached yet");
        }
        if self.webhook.as_ref().is_some_and(|w| !w.load(Ordering::Relaxed)) {
            return Err("the webhook does not serve yet");
        }
        let Some((staleness, last)) = &self.lease else { return Ok(()) };
        match *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(at) if now.saturating_duration_since(at) <= *staleness => Ok(()),
            Some(_) => Err("the leader lease could not be read or renewed lately"),
            None => Err("the leader lease has not been read yet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_election_ready_once_the_api_answered() {
        let readiness = Readiness::new(None);
        let now = Instant::now();
        assert!(readiness.check(now).is_err());
        readiness.api_reached();
        assert_eq!(readiness.check(now), Ok(()));
        readiness.stopping();
        assert_eq!(readiness.check(now), Err("shutting down"));
    }

    #[test]
    fn with_the_webhook_ready_once_it_serves() {
        let readiness = Readiness::new(None).with_webhook();
        let now = Instant::now();
        readiness.api_reached();
        assert_eq!(readiness.check(now), Err("the webhook does not serve yet"));
        readiness.webhook_serving();
        assert_eq!(readiness.check(now), Ok(()));
    }

    #[test]
    fn with_election_ready_while_the_lease_is_reachable() {
        let readiness = Readiness::new(Some(Duration::from_secs(15)));
        let now = Instant::now();
        readiness.api_reached();
        assert!(readiness.check(now).is_err(), "no lease contact yet");
        readiness.lease_contact(now);
        assert_eq!(readiness.check(now + Duration::from_secs(15)), Ok(()));
        assert!(readiness.check(now + Duration::from_secs(16)).is_err(), "stale");
    }
}
