//! What every controller shares: the client, metrics, the event recorder and the settings.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};

use crate::apply::api_error;
use crate::backoff::Backoffs;
use crate::cache::Children;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::watches::Watched;

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

/// What the reconciles of a controller share: the client, metrics, the event recorder, the
/// settings, and the controller's cache of its children.
pub struct Context {
    pub client: kube::Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub config: Config,
    pub backoffs: Backoffs,
    /// The children this controller watches, as last seen (none cached until `for_controller`).
    pub children: Children,
    /// Whether KEDA's ScaledObject API is served (looked up once, at start).
    pub keda: bool,
}

impl Context {
    pub fn new(client: kube::Client, metrics: Arc<Metrics>, config: Config) -> Arc<Self> {
        Self::with_event_client(client.clone(), client, metrics, config)
    }

    /// A context whose Events go through `events`: a client with its own rate limit, so that
    /// Events never take the reconciles' share of requests (client-go's recorders likewise).
    pub fn with_event_client(
        client: kube::Client,
        events: kube::Client,
        metrics: Arc<Metrics>,
        config: Config,
    ) -> Arc<Self> {
        let reporter = Reporter { controller: "prism-operator".into(), instance: Some(config.instance.clone()) };
        let recorder = Recorder::new(events, reporter);
        let (backoffs, children) = Default::default();
        Arc::new(Context { client, metrics, recorder, config, backoffs, children, keda: false })
    }

    /// The context of one controller: the same client, metrics, recorder and settings, with its
    /// own failure counts and the cache of its children.
    pub fn for_controller(&self, children: Children) -> Self {
        Context {
            client: self.client.clone(),
            metrics: self.metrics.clone(),
            recorder: self.recorder.clone(),
            config: self.config.clone(),
            backoffs: Backoffs::default(),
            children,
            keda: self.keda,
        }
    }

    /// The object `name` of `api`'s namespace as this controller last saw it (see [`Children`]),
    /// else as read now.
    pub async fn live<K: Watched>(&self, api: &kube::Api<K>, name: &str) -> Result<Option<K>> {
        if let Some(cached) = api.namespace().and_then(|ns| self.children.get::<K>(ns, name)) {
            return Ok(Some(Arc::unwrap_or_clone(cached)));
        }
        api.get_opt(name).await.map_err(|source| api_error("get", &K::kind(&()), name, source))
    }
}

/// An Api for `K` in the watch scope: one namespace, or all.
pub fn scoped_api<K>(client: &kube::Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}
