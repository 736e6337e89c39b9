//! What every controller shares, built once by the binary: the client, metrics, the event
//! recorder and the settings; and who each controller is.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use crate::events::Recorder;
use crate::metrics::Metrics;

/// Settings of the controllers, from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Watch one namespace only; all namespaces when `None`.
    pub namespace: Option<String>,
    /// Reconciles running at once, per controller.
    pub concurrency: u16,
    /// Re-reconcile every object this often even without a change (a safety net, not polling).
    pub resync: Duration,
    /// Name of this operator instance in Events (the pod name in a cluster).
    pub instance: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { namespace: None, concurrency: 4, resync: Duration::from_secs(600), instance: "prism-operator".into() }
    }
}

/// Who a controller is, in metrics, logs, Events and the objects it writes.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    /// Name in metrics and logs.
    pub controller: &'static str,
    /// Server-side apply field manager of every write.
    pub field_manager: &'static str,
    /// Finalizer held on each object it reconciles.
    pub finalizer: &'static str,
}

/// The client's rate limit as the drivers see it (the binary's client stack implements it).
pub trait RequestBudget: Send + Sync {
    /// Whether a request sent now would wait for its turn: others are queued before it.
    fn exhausted(&self) -> bool;
}

/// What the controllers share: the client (and its rate limit, if it has one), metrics, the
/// event recorder and the settings.
pub struct Context {
    pub client: kube::Client,
    pub budget: Option<Arc<dyn RequestBudget>>,
    pub metrics: Arc<Metrics>,
    pub recorder: Arc<Recorder>,
    pub config: Config,
}

impl Context {
    /// A context over a client without a rate limit, which also publishes the Events.
    pub fn new(client: kube::Client, metrics: Arc<Metrics>, config: Config) -> Arc<Self> {
        Self::with_event_client(client.clone(), None, client, metrics, config)
    }

    /// A context whose requests `budget` limits, and whose Events go through `events`: a client
    /// with its own rate limit, so that Events never take the reconciles' share of requests
    /// (client-go's recorders likewise).
    pub fn with_event_client(
        client: kube::Client,
        budget: Option<Arc<dyn RequestBudget>>,
        events: kube::Client,
        metrics: Arc<Metrics>,
        config: Config,
    ) -> Arc<Self> {
        let recorder = Arc::new(Recorder::new(events, "prism-operator", &config.instance));
        Arc::new(Context { client, budget, metrics, recorder, config })
    }

    /// Whether the client's requests queue for its rate limit now.
    pub fn throttled(&self) -> bool {
        self.budget.as_ref().is_some_and(|budget| budget.exhausted())
    }

    /// Publishes an Event on `object`, in the background: a reconcile does not wait for its
    /// Events, and failing to record one (they are best effort) must not fail it.
    pub fn announce(&self, object: &ObjectReference, type_: EventType, reason: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let (recorder, object, reason) = (self.recorder.clone(), object.clone(), reason.to_string());
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &object).await {
                tracing::debug!(%error, reason, "could not publish an event");
            }
        });
    }
}
