//! The desired objects of a PrismCluster: pure, deterministic, in apply order. The object set
//! is the one place that lists a cluster's child kinds: the reconcile applies them and render
//! prints them by visiting it, and the controller watches the kinds it names.

mod backends;
mod children;
mod components;
mod exposure;
mod secrets;

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject};
use prism_api::v1beta1::DeletionPolicy;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::{BackendKind, PrismPattern};

pub use exposure::service_monitor_resource;

use super::validate::ValidatedCluster;
use crate::projection::Child;
use crate::routes::Routes;

/// Generated credentials per backend (secret key -> value).
pub type Credentials = BTreeMap<BackendKind, BTreeMap<String, String>>;

/// What a build needs besides the validated spec: facts observed or decided at the edges.
pub struct Inputs<'a> {
    /// Controller reference to the cluster.
    pub owner: OwnerReference,
    /// Existing or freshly generated credentials of every backend that has some.
    pub credentials: &'a Credentials,
    /// The proxy's routes, rendered from observed patterns and namespaces.
    pub routes: &'a Routes,
    /// Whether the ServiceMonitor API is served.
    pub service_monitor_api: bool,
}

/// One backend's objects.
#[derive(Clone, Debug)]
pub struct BackendObjects {
    pub kind: BackendKind,
    pub headless: Service,
    pub client: Service,
    pub stateful_set: StatefulSet,
    pub pdb: Option<PodDisruptionBudget>,
}

/// Every object of a cluster, grouped in apply order: credentials and configuration, backends,
/// admin, proxy, child custom resources, then ingress and observability.
#[derive(Clone, Debug)]
pub struct ClusterObjects {
    pub secrets: Vec<Secret>,
    pub config_maps: Vec<ConfigMap>,
    pub backends: Vec<BackendObjects>,
    pub admin_volume: Option<PersistentVolumeClaim>,
    pub admin_service: Service,
    pub admin: Deployment,
    pub proxy_service: Service,
    pub proxy: Deployment,
    pub proxy_hpa: Option<HorizontalPodAutoscaler>,
    pub proxy_pdb: Option<PodDisruptionBudget>,
    pub patterns: Vec<PrismPattern>,
    pub namespaces: Vec<PrismNamespace>,
    pub ingress: Option<Ingress>,
    pub service_monitor: Option<DynamicObject>,
}

/// What an object is to the pass that applies it: most are applied and done with; the workloads'
/// readiness makes the status, and an autoscaled proxy first hands its replicas to its autoscaler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Plain,
    Backend(BackendKind),
    Admin,
    Proxy { autoscaled: bool },
}

/// Visits a cluster's objects in apply order: the reconcile applies them, render prints them.
pub trait Visit {
    type Error;

    fn object<K: Child>(&mut self, role: Role, object: K) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// An object of a kind known only at run time.
    fn dynamic(
        &mut self,
        object: DynamicObject,
        resource: ApiResource,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Visits the kinds of a cluster's objects, in apply order: what the controller watches.
pub trait VisitKinds {
    fn kind<K: Child>(&mut self);
    fn dynamic(&mut self, resource: ApiResource);
}

impl ClusterObjects {
    /// Hands every object to `visitor`, in apply order: credentials and configuration, backends,
    /// admin, proxy, child custom resources, then ingress and observability.
    pub async fn visit<V: Visit + Send>(self, v: &mut V) -> Result<(), V::Error> {
        // Every field, no `..`: a new one does not compile until it is visited here.
        let ClusterObjects {
            secrets,
            config_maps,
            backends,
            admin_volume,
            admin_service,
            admin,
            proxy_service,
            proxy,
            proxy_hpa,
            proxy_pdb,
            patterns,
            namespaces,
            ingress,
            service_monitor,
        } = self;
        for secret in secrets {
            v.object(Role::Plain, secret).await?;
        }
        for config_map in config_maps {
            v.object(Role::Plain, config_map).await?;
        }
        for BackendObjects { kind, headless, client, stateful_set, pdb } in backends {
            v.object(Role::Plain, headless).await?;
            v.object(Role::Plain, client).await?;
            v.object(Role::Backend(kind), stateful_set).await?;
            if let Some(pdb) = pdb {
                v.object(Role::Plain, pdb).await?;
            }
        }
        if let Some(volume) = admin_volume {
            v.object(Role::Plain, volume).await?;
        }
        v.object(Role::Plain, admin_service).await?;
        v.object(Role::Admin, admin).await?;
        v.object(Role::Plain, proxy_service).await?;
        v.object(Role::Proxy { autoscaled: proxy_hpa.is_some() }, proxy).await?;
        if let Some(hpa) = proxy_hpa {
            v.object(Role::Plain, hpa).await?;
        }
        if let Some(pdb) = proxy_pdb {
            v.object(Role::Plain, pdb).await?;
        }
        for pattern in patterns {
            v.object(Role::Plain, pattern).await?;
        }
        for namespace in namespaces {
            v.object(Role::Plain, namespace).await?;
        }
        if let Some(ingress) = ingress {
            v.object(Role::Plain, ingress).await?;
        }
        if let Some(monitor) = service_monitor {
            v.dynamic(monitor, service_monitor_resource()).await?;
        }
        Ok(())
    }
}

/// The kinds [`ClusterObjects::visit`] hands out, in the order of their first appearance.
pub fn visit_kinds(v: &mut impl VisitKinds) {
    v.kind::<Secret>();
    v.kind::<ConfigMap>();
    v.kind::<Service>();
    v.kind::<StatefulSet>();
    v.kind::<PodDisruptionBudget>();
    v.kind::<PersistentVolumeClaim>();
    v.kind::<Deployment>();
    v.kind::<HorizontalPodAutoscaler>();
    v.kind::<PrismPattern>();
    v.kind::<PrismNamespace>();
    v.kind::<Ingress>();
    v.dynamic(service_monitor_resource());
}

/// Builds every object of `cluster`.
pub fn build(cluster: &ValidatedCluster, inputs: &Inputs<'_>) -> ClusterObjects {
    let owner = &inputs.owner;
    // Data outlives the cluster unless its policy says otherwise: retained volumes and their
    // credentials carry no owner reference, so garbage collection leaves them.
    let data_owner = (cluster.spec.deletion_policy == DeletionPolicy::Delete).then_some(owner);
    let mut config_maps =
        vec![backends::discovery_config_map(cluster, owner), components::proxy_config(cluster, owner, inputs.routes)];
    config_maps.extend(exposure::grafana_dashboard(cluster, owner));
    let (admin_volume, admin_service, admin) = components::admin(cluster, owner, data_owner);
    let (proxy_service, proxy, proxy_hpa, proxy_pdb) = components::proxy(cluster, owner, inputs.routes);
    ClusterObjects {
        secrets: secrets::build(cluster, inputs.credentials, data_owner),
        config_maps,
        backends: cluster
            .spec
            .backends
            .enabled()
            .filter_map(|(kind, spec)| {
                crate::backends::facts(kind).map(|facts| backends::build(cluster, facts, spec, owner))
            })
            .collect(),
        admin_volume,
        admin_service,
        admin,
        proxy_service,
        proxy,
        proxy_hpa,
        proxy_pdb,
        patterns: children::patterns(cluster, owner),
        namespaces: children::namespaces(cluster, owner),
        ingress: exposure::ingress(cluster, owner),
        service_monitor: exposure::service_monitor(cluster, owner, inputs.service_monitor_api),
    }
}

#[cfg(test)]
mod tests {
    use kube::Resource;
    use prism_api::v1beta1::PrismCluster;
    use serde_json::json;

    use super::*;
    use crate::cluster::validate::validate;

    fn cluster(spec: serde_json::Value) -> ValidatedCluster {
        let mut c: PrismCluster = serde_json::from_value(json!({
            "apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u-1"}, "spec": spec
        }))
        .expect("cluster");
        c.meta_mut().uid = Some("u-1".into());
        validate(&c).expect("valid")
    }

    fn build_for(spec: serde_json::Value, service_monitor_api: bool) -> ClusterObjects {
        let valid = cluster(spec);
        let owner =
            OwnerReference { uid: "u-1".into(), name: "c".into(), controller: Some(true), ..OwnerReference::default() };
        let credentials = crate::cluster::credentials::complete(&valid, Credentials::new());
        let routes = crate::cluster::routes::routes(&valid, &[], &[], |_| None);
        build(&valid, &Inputs { owner, credentials: &credentials, routes: &routes, service_monitor_api })
    }

    fn env_of(set: &StatefulSet) -> Vec<String> {
        let pod = set.spec.as_ref().and_then(|s| s.template.spec.clone()).expect("pod");
        pod.containers[0].env.iter().flatten().map(|e| e.name.clone()).collect()
    }

    #[test]
    fn every_backend_alone_gets_its_services_statefulset_and_credentials() {
        for (backend, secret_keys, env) in [
            ("redis", 1, "REDIS_PASSWORD"),
            ("nats", 0, ""),
            ("postgres", 2, "POSTGRES_PASSWORD"),
            ("minio", 2, "MINIO_ROOT_PASSWORD"),
            ("kafka", 0, "KAFKA_CONTROLLER_QUORUM_VOTERS"),
        ] {
            let objects =
                build_for(json!({"backends": {backend: {"enabled": true, "version": "1", "storage": "1Gi"}}}), false);
            assert_eq!(objects.backends.len(), 1, "{backend}");
            let b = &objects.backends[0];
            assert_eq!(b.client.metadata.name.as_deref(), Some(format!("c-{backend}").as_str()));
            assert_eq!(b.headless.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()), Some("None"));
            let set = b.stateful_set.spec.as_ref().expect("spec");
            assert!(set.volume_claim_templates.is_some(), "{backend} keeps data on a volume");
            assert!(set.template.spec.as_ref().expect("pod").containers[0].readiness_probe.is_some());
            assert!(b.pdb.is_none(), "one replica needs no disruption budget");
            assert_eq!(objects.secrets.len(), usize::from(secret_keys > 0), "{backend}");
            if let Some(secret) = objects.secrets.first() {
                assert_eq!(secret.data.as_ref().map(|d| d.len()), Some(secret_keys));
            }
            if !env.is_empty() {
                assert!(env_of(&b.stateful_set).contains(&env.to_string()), "{backend}: {:?}", env_of(&b.stateful_set));
            }
        }
    }

    #[test]
    fn all_backends_together_and_replicated_ones_get_a_disruption_budget() {
        let spec = json!({"backends": {
            "redis": {"enabled": true, "version": "7"}, "nats": {"enabled": true, "version": "2", "replicas": 3},
            "postgres": {"enabled": true, "version": "16"}, "minio": {"enabled": true, "version": "x"},
            "kafka": {"enabled": true, "version": "4", "replicas": 3}
        }});
        let objects = build_for(spec, false);
        assert_eq!(objects.backends.len(), 5);
        let with_pdb: Vec<&str> =
            objects.backends.iter().filter(|b| b.pdb.is_some()).map(|b| b.kind.as_str()).collect();
        assert_eq!(with_pdb, vec!["nats", "kafka"]);
        let kafka = objects.backends.iter().find(|b| b.kind.as_str() == "kafka").expect("kafka");
        let pod = kafka.stateful_set.spec.as_ref().and_then(|s| s.template.spec.clone()).expect("pod");
        let voters = pod.containers[0]
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "KAFKA_CONTROLLER_QUORUM_VOTERS")
            .expect("voters");
        assert_eq!(voters.value.as_deref().map(|v| v.split(',').count()), Some(3), "a KRaft quorum of three");
    }

    #[test]
    fn an_autoscaled_proxy_leaves_replicas_to_its_hpa() {
        let on = build_for(
            json!({"proxy": {"replicas": 2, "autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 9, "targetCPU": 70}}}),
            false,
        );
        assert_eq!(on.proxy.spec.as_ref().and_then(|s| s.replicas), None);
        let hpa = on.proxy_hpa.expect("hpa").spec.expect("spec");
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 9));
        assert!(on.proxy_pdb.is_some());
        let off = build_for(json!({"proxy": {"replicas": 3}}), false);
        assert_eq!(off.proxy.spec.as_ref().and_then(|s| s.replicas), Some(3));
        assert!(off.proxy_hpa.is_none());
    }

    #[test]
    fn ingress_with_tls_reaches_the_proxy_over_grpc() {
        let objects = build_for(
            json!({"ingress": {"enabled": true, "className": "nginx", "host": "prism.example.com",
            "tls": [{"hosts": ["prism.example.com"], "secretName": "prism-tls"}]}}),
            false,
        );
        let ingress = objects.ingress.expect("ingress");
        let annotations = ingress.metadata.annotations.clone().expect("annotations");
        assert_eq!(annotations["nginx.ingress.kubernetes.io/backend-protocol"], "GRPC");
        let spec = ingress.spec.expect("spec");
        assert_eq!(spec.tls.expect("tls")[0].secret_name.as_deref(), Some("prism-tls"));
        let backend = spec.rules.expect("rules")[0].http.clone().expect("http").paths[0]
            .backend
            .service
            .clone()
            .expect("service");
        assert_eq!(backend.name, "c-proxy");
    }

    /// Records the kinds a visit hands out, and the kinds `visit_kinds` names.
    #[derive(Default)]
    struct Kinds(Vec<String>);

    impl Visit for Kinds {
        type Error = ();

        fn object<K: Child>(&mut self, _: Role, _: K) -> impl Future<Output = Result<(), ()>> + Send {
            self.0.push(K::kind(&()).to_string());
            std::future::ready(Ok(()))
        }

        fn dynamic(&mut self, _: DynamicObject, resource: ApiResource) -> impl Future<Output = Result<(), ()>> + Send {
            self.0.push(resource.kind);
            std::future::ready(Ok(()))
        }
    }

    impl VisitKinds for Kinds {
        fn kind<K: Child>(&mut self) {
            self.0.push(K::kind(&()).to_string());
        }

        fn dynamic(&mut self, resource: ApiResource) {
            self.0.push(resource.kind);
        }
    }

    #[test]
    fn every_kind_a_cluster_has_is_watched_in_the_order_it_is_applied() {
        let everything = json!({
            "admin": {"storage": {"size": "1Gi"}},
            "proxy": {"autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 4, "targetCPU": 70}},
            "patterns": [{"name": "keyvalue", "backends": ["redis"]}],
            "namespaces": [{"name": "orders", "patterns": ["keyvalue"]}],
            "backends": {"redis": {"enabled": true, "version": "7", "replicas": 3}},
            "ingress": {"enabled": true, "host": "prism.example.com"},
            "observability": {"prometheus": {"enabled": true}, "grafana": {"enabled": true}}
        });
        let mut visited = Kinds::default();
        futures::executor::block_on(build_for(everything, true).visit(&mut visited)).expect("visited");
        let mut watched = Kinds::default();
        visit_kinds(&mut watched);
        visited.0.dedup();
        let first_seen: Vec<&String> =
            visited.0.iter().enumerate().filter(|(i, k)| !visited.0[..*i].contains(k)).map(|(_, k)| k).collect();
        let named: Vec<&String> = watched.0.iter().filter(|k| visited.0.contains(k)).collect();
        assert_eq!(first_seen, named, "visit_kinds names every kind visit hands out, in apply order");
        assert_eq!(watched.0.len(), first_seen.len(), "and no other: {:?} vs {:?}", watched.0, first_seen);
    }

    #[test]
    fn a_service_monitor_only_where_its_api_is_served() {
        let spec = json!({"observability": {"prometheus": {"enabled": true, "scrapeInterval": "15s"}, "grafana": {"enabled": true}}});
        let with = build_for(spec.clone(), true);
        let monitor = with.service_monitor.expect("service monitor");
        assert_eq!(monitor.data["spec"]["endpoints"][0]["interval"], "15s");
        assert!(with.config_maps.iter().any(|c| c.metadata.name.as_deref() == Some("c-grafana-dashboard")));
        assert!(build_for(spec, false).service_monitor.is_none());
    }

    #[test]
    fn retained_data_carries_no_owner_and_deleted_data_does() {
        let spec = json!({"backends": {"redis": {"enabled": true, "version": "7"}}});
        let retained = build_for(spec.clone(), false);
        assert!(retained.secrets[0].metadata.owner_references.is_none());
        assert!(retained.admin_volume.as_ref().expect("sqlite volume").metadata.owner_references.is_none());
        let mut deleted = spec;
        deleted["deletionPolicy"] = json!("Delete");
        let deleted = build_for(deleted, false);
        assert!(deleted.secrets[0].metadata.owner_references.is_some());
    }
}
