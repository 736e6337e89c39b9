//! What every controller shares: the client, metrics, the event recorder and the settings.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};

use crate::backoff::Backoffs;
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

/// Shared by every reconcile of every controller.
pub struct Context {
    pub client: kube::Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub config: Config,
    pub backoffs: Backoffs,
}

impl Context {
    pub fn new(client: kube::Client, metrics: Arc<Metrics>, config: Config) -> Arc<Self> {
        let reporter = Reporter { controller: "prism-operator".into(), instance: Some(config.instance.clone()) };
        let recorder = Recorder::new(client.clone(), reporter);
        Arc::new(Context { client, metrics, recorder, config, backoffs: Backoffs::default() })
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
