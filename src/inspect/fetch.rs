//! Reads what the views show, in one pass: the three Prism kinds and the operator's children
//! (selected by its `managed-by` label; Secrets and ConfigMaps as metadata only: names, never
//! data). The only part of `inspect` that talks to the API.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PartialObjectMeta};
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource};
use prism_api::names::labels;
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use serde::de::DeserializeOwned;

use super::node::{self, Node};

/// Where to look: one namespace, or all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    All,
}

impl Scope {
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
            Scope::All => Api::all(client.clone()),
        }
    }

    fn dynamic_api(&self, client: &Client, resource: &ApiResource) -> Api<DynamicObject> {
        match self {
            Scope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, resource),
            Scope::All => Api::all_with(client.clone(), resource),
        }
    }

    /// `namespace "x"` or `all namespaces`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Scope::Namespace(ns) => format!("namespace {ns:?}"),
            Scope::All => "all namespaces".into(),
        }
    }
}

/// Why the objects could not be read, in one line a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "the Prism CRDs are not installed in this cluster (install them with: kubectl prism crds | kubectl apply --server-side -f -)"
    )]
    NoCrds,
    #[error("no permission to list {resource} in {scope}: {message}")]
    Forbidden { resource: String, scope: String, message: String },
    #[error("the credentials were refused by the Kubernetes API: {0}")]
    Unauthorized(String),
    #[error("cannot list {resource} in {scope}: {source}")]
    Api { resource: String, scope: String, source: kube::Error },
}

/// Everything the views show, as read in one pass.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub clusters: Vec<PrismCluster>,
    pub namespaces: Vec<PrismNamespace>,
    pub patterns: Vec<PrismPattern>,
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub services: Vec<Service>,
    pub config_maps: Vec<PartialObjectMeta<ConfigMap>>,
    pub secrets: Vec<PartialObjectMeta<Secret>>,
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    pub volume_claims: Vec<PersistentVolumeClaim>,
    pub disruption_budgets: Vec<PodDisruptionBudget>,
    pub ingresses: Vec<Ingress>,
    /// KEDA's, when its API is served.
    pub scaled_objects: Vec<DynamicObject>,
    /// The Prometheus Operator's, when its API is served.
    pub service_monitors: Vec<DynamicObject>,
}

impl Snapshot {
    /// Reads every kind the views show in `scope`.
    pub async fn fetch(client: &Client, scope: &Scope) -> Result<Snapshot, FetchError> {
        let reader = Reader { client, scope, children: ListParams::default().labels(&managed_by_operator()) };
        Ok(Snapshot {
            clusters: reader.prism().await?,
            namespaces: reader.prism().await?,
            patterns: reader.prism().await?,
            deployments: reader.children().await?,
            stateful_sets: reader.children().await?,
            services: reader.children().await?,
            config_maps: reader.names().await?,
            secrets: reader.names().await?,
            autoscalers: reader.children().await?,
            volume_claims: reader.children().await?,
            disruption_budgets: reader.children().await?,
            ingresses: reader.children().await?,
            scaled_objects: reader.optional(&prism_controllers::pattern::build::scaled_object_resource()).await?,
            service_monitors: reader.optional(&prism_controllers::cluster::build::service_monitor_resource()).await?,
        })
    }

    /// Every object as a node, Prism kinds first.
    pub fn nodes(&self) -> Vec<Node> {
        let mut nodes: Vec<Node> = Vec::new();
        nodes.extend(self.clusters.iter().map(node::cluster));
        nodes.extend(self.namespaces.iter().map(node::namespace));
        nodes.extend(self.patterns.iter().map(node::pattern));
        nodes.extend(self.stateful_sets.iter().map(node::workload));
        nodes.extend(self.deployments.iter().map(node::workload));
        nodes.extend(self.autoscalers.iter().map(node::autoscaler));
        nodes.extend(self.scaled_objects.iter().map(node::scaled_object));
        nodes.extend(self.services.iter().map(node::service));
        nodes.extend(self.config_maps.iter().map(|c| node::named("ConfigMap", &c.metadata)));
        nodes.extend(self.secrets.iter().map(|s| node::named("Secret", &s.metadata)));
        nodes.extend(self.volume_claims.iter().map(node::volume_claim));
        nodes.extend(self.disruption_budgets.iter().map(node::disruption_budget));
        nodes.extend(self.ingresses.iter().map(node::ingress));
        nodes.extend(self.service_monitors.iter().map(node::service_monitor));
        nodes
    }

    pub fn cluster(&self, namespace: &str, name: &str) -> Option<&PrismCluster> {
        self.clusters
            .iter()
            .find(|c| c.metadata.namespace.as_deref() == Some(namespace) && c.metadata.name.as_deref() == Some(name))
    }
}

/// The operator's children: `app.kubernetes.io/managed-by=prism-operator`.
fn managed_by_operator() -> String {
    format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE)
}

struct Reader<'a> {
    client: &'a Client,
    scope: &'a Scope,
    children: ListParams,
}

impl Reader<'_> {
    /// The objects of a Prism kind; a 404 means its CRD is not installed.
    async fn prism<K>(&self) -> Result<Vec<K>, FetchError>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match self.scope.api::<K>(self.client).list(&ListParams::default()).await {
            Err(kube::Error::Api(status)) if status.code == 404 => Err(FetchError::NoCrds),
            result => result.map(|list| list.items).map_err(|e| self.error::<K>(e)),
        }
    }

    async fn children<K>(&self) -> Result<Vec<K>, FetchError>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let list = self.scope.api::<K>(self.client).list(&self.children).await;
        list.map(|list| list.items).map_err(|e| self.error::<K>(e))
    }

    /// Metadata only: the names of Secrets and ConfigMaps, never their data.
    async fn names<K>(&self) -> Result<Vec<PartialObjectMeta<K>>, FetchError>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let list = self.scope.api::<K>(self.client).list_metadata(&self.children).await;
        list.map(|list| list.items).map_err(|e| self.error::<K>(e))
    }

    /// The objects of a kind another project defines: none when its API is not served.
    async fn optional(&self, resource: &ApiResource) -> Result<Vec<DynamicObject>, FetchError> {
        match self.scope.dynamic_api(self.client, resource).list(&self.children).await {
            Ok(list) => Ok(list.items),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
            Err(source) => Err(classify(source, &resource.plural, self.scope)),
        }
    }

    fn error<K: Resource>(&self, source: kube::Error) -> FetchError
    where
        K::DynamicType: Default,
    {
        classify(source, &K::plural(&Default::default()), self.scope)
    }
}

fn classify(source: kube::Error, resource: &str, scope: &Scope) -> FetchError {
    let (resource, scope_text) = (resource.to_string(), scope.describe());
    match source {
        kube::Error::Api(status) if status.code == 403 => {
            FetchError::Forbidden { resource, scope: scope_text, message: status.message }
        }
        kube::Error::Api(status) if status.code == 401 => FetchError::Unauthorized(status.message),
        source => FetchError::Api { resource, scope: scope_text, source },
    }
}
