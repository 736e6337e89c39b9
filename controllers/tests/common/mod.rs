//! A controller under test against the in-process API emulator, with every write it sends
//! recorded (the API cost is part of the contract).
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use kube_emulator::Emulator;
use prism_controllers::{Config, Context, metrics::Metrics};
use serde_json::json;
use tower::ServiceExt;

pub const NS: &str = "prism";

/// Writes (method and path) the operator's client sent.
#[derive(Clone, Default)]
pub struct Writes(Arc<Mutex<Vec<String>>>);

impl Writes {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
    pub fn count(&self) -> usize {
        self.0.lock().expect("lock").len()
    }
}

pub struct Harness {
    pub emulator: Emulator,
    /// The test's own client (its writes are not counted).
    pub client: Client,
    pub ctx: Arc<Context>,
    pub writes: Writes,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

impl Harness {
    /// A fresh emulator with the Prism CRDs and the `prism` namespace.
    pub async fn new() -> Self {
        let emulator = Emulator::start();
        let client = Client::new(emulator.router(), "default");
        let writes = Writes::default();
        let recorded = writes.clone();
        let counted = emulator.router().map_request(move |req: http::Request<kube::client::Body>| {
            if req.method() != http::Method::GET {
                let query = req.uri().query().unwrap_or_default();
                let manager = query.split('&').find_map(|kv| kv.strip_prefix("fieldManager="));
                let by = manager.map(|m| format!(" by {}", m.replace("%2F", "/"))).unwrap_or_default();
                recorded.0.lock().expect("lock").push(format!("{} {}{by}", req.method(), req.uri().path()));
            }
            req
        });
        let operator_client = Client::new(counted, "default");
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        for crd in prism_api::crds() {
            crds.create(&PostParams::default(), &crd).await.expect("CRD created");
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("namespace");
        namespaces.create(&PostParams::default(), &ns).await.expect("namespace created");
        let config = Config { namespace: Some(NS.into()), ..Config::default() };
        let ctx = Context::new(operator_client, Arc::new(Metrics::new()), config);
        Harness { emulator, client, ctx, writes, tasks: Vec::new() }
    }

    /// Starts a controller (e.g. `prism_controllers::pattern::run`).
    pub fn start<F, Fut>(&mut self, run: F)
    where
        F: FnOnce(Arc<Context>, futures::future::Pending<()>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(run(self.ctx.clone(), futures::future::pending())));
    }

    /// Stops every controller started so far, as a process exit would: their caches and state go.
    pub fn stop_controllers(&mut self) {
        self.tasks.drain(..).for_each(|task| task.abort());
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    pub async fn apply_yaml(&self, yaml: &str) {
        let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        let kind = value["kind"].as_str().expect("kind").to_string();
        let name = value["metadata"]["name"].as_str().expect("name").to_string();
        let params = PatchParams::apply("test").force();
        let result = match kind.as_str() {
            "PrismCluster" => self
                .api::<prism_api::v1beta1::PrismCluster>()
                .patch(&name, &params, &Patch::Apply(&value))
                .await
                .map(drop),
            "PrismPattern" => self
                .api::<prism_api::v1beta1::PrismPattern>()
                .patch(&name, &params, &Patch::Apply(&value))
                .await
                .map(drop),
            "StatefulSet" => self.api::<StatefulSet>().patch(&name, &params, &Patch::Apply(&value)).await.map(drop),
            other => panic!("apply_yaml: unsupported kind {other}"),
        };
        result.unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }

    /// Marks a Deployment's replicas ready, as the deployment controller would.
    pub async fn deployment_ready(&self, name: &str) {
        let api = self.api::<Deployment>();
        let d = api.get(name).await.expect("deployment");
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = json!({"status": {"observedGeneration": d.metadata.generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
    }

    /// Sets a StatefulSet's ready replicas, as the statefulset controller would.
    pub async fn stateful_set_ready(&self, name: &str, ready: i32) {
        let api = self.api::<StatefulSet>();
        let s = api.get(name).await.expect("statefulset");
        let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = json!({"status": {"observedGeneration": s.metadata.generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": replicas}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
    }
}

impl Harness {
    /// Deployments and StatefulSets become ready by themselves, as kubelets would make them.
    pub fn simulate_workloads(&self) {
        self.emulator.instruments.simulation.enable(Duration::from_millis(50));
    }
}

/// Waits until `check` returns `Some`, up to 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Lets the controller settle: waits until no write happened for `quiet`.
pub async fn settle(writes: &Writes, quiet: Duration) {
    let mut last = writes.count();
    loop {
        tokio::time::sleep(quiet).await;
        let now = writes.count();
        if now == last {
            return;
        }
        last = now;
    }
}
