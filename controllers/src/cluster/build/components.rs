//! Prism's own components: the admin service and the proxy (with its routing configuration).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodTemplateSpec, Probe, SecretKeySelector, Service,
    TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use prism_api::common::{ImageSpec, Resources};
use prism_api::names::annotations;
use prism_api::v1beta1::AdminStorageType;
use prism_api::v1beta1::BackendKind;

use crate::cluster::validate::ValidatedCluster;
use crate::objects::{self, Port, Scaling};
use crate::routes::Routes;
use crate::{hash, images, meta, naming, pod};

/// Admin ports (upstream prism-admin): control-plane gRPC, HTTP, metrics.
pub const ADMIN_PORTS: [Port; 3] = [("grpc", 8981), ("http", 8980), ("metrics", 9090)];
/// Proxy ports: client gRPC and metrics.
pub const PROXY_PORTS: [Port; 2] = [("grpc", crate::ports::PROXY_GRPC), ("metrics", 9090)];
/// prism-admin runs as user nobody upstream.
const ADMIN_UID: i64 = 65534;

struct Component<'a> {
    cluster: &'a ValidatedCluster,
    name: &'static str,
    repository: &'static str,
    image: Option<&'a ImageSpec>,
    ports: &'static [Port],
    overrides: Option<&'a PodTemplateSpec>,
}

impl Component<'_> {
    fn object_name(&self) -> String {
        naming::component(&self.cluster.name, self.name)
    }

    /// The component's pod template: one container on the component's image and ports, probed on
    /// its gRPC port, with the user's overrides merged on top.
    fn template(
        &self,
        container: Container,
        volumes: Vec<Volume>,
        annotations: BTreeMap<String, String>,
        uid: Option<i64>,
    ) -> PodTemplateSpec {
        let image = images::resolve(images::PRISM_REGISTRY, self.repository, images::PRISM_VERSION, self.image);
        let container = Container {
            name: self.name.into(),
            image: Some(image.reference),
            image_pull_policy: image.pull_policy,
            ports: Some(objects::container_ports(self.ports)),
            readiness_probe: Some(tcp_probe(5)),
            liveness_probe: Some(tcp_probe(10)),
            ..container
        };
        let template = pod::template(pod::PodParts {
            labels: meta::component_labels(&self.cluster.name, self.name),
            annotations,
            container,
            volumes,
            pull_secrets: image.pull_secrets,
            placement: None,
            run_as_user: uid,
        });
        pod::with_overrides(template, self.overrides)
    }

    fn deployment(
        &self,
        owner: &OwnerReference,
        replicas: Option<i32>,
        template: PodTemplateSpec,
        recreate: bool,
    ) -> Deployment {
        Deployment {
            metadata: meta::object(
                &self.object_name(),
                &self.cluster.namespace,
                meta::component_labels(&self.cluster.name, self.name),
                Some(owner),
            ),
            spec: Some(DeploymentSpec {
                replicas,
                selector: LabelSelector {
                    match_labels: Some(meta::selector(&self.cluster.name, self.name)),
                    ..LabelSelector::default()
                },
                template,
                strategy: recreate.then(|| DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn service(&self, owner: &OwnerReference) -> Service {
        let m = meta::object(
            &self.object_name(),
            &self.cluster.namespace,
            meta::component_labels(&self.cluster.name, self.name),
            Some(owner),
        );
        objects::service(m, meta::selector(&self.cluster.name, self.name), self.ports, false)
    }
}

fn tcp_probe(period: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::String("grpc".into()), host: None }),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value), value_from: None }
}

fn secret_env(name: &str, secret: String, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: secret, key: key.into(), optional: None }),
            ..EnvVarSource::default()
        }),
    }
}

/// The admin service: SQLite on its own volume (one replica, replaced not rolled, since the
/// volume attaches to one pod), or Postgres through the cluster's postgres backend.
pub fn admin(
    cluster: &ValidatedCluster,
    owner: &OwnerReference,
    data_owner: Option<&OwnerReference>,
) -> (Option<PersistentVolumeClaim>, Service, Deployment) {
    let spec = &cluster.spec.admin;
    let component = Component {
        cluster,
        name: "admin",
        repository: "prism/prism-admin",
        image: spec.component.image.as_ref(),
        ports: &ADMIN_PORTS,
        overrides: cluster.admin_overrides.as_ref(),
    };
    let volume_name = naming::component(&cluster.name, "admin-data");
    let sqlite = spec.storage.storage_type == AdminStorageType::Sqlite;
    let mut container_env = vec![
        EnvVar {
            name: "PRISM_NODE_ID".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), api_version: None }),
                ..EnvVarSource::default()
            }),
        },
        env("PRISM_BIND_ADDR", "0.0.0.0:8981".into()),
    ];
    let db = if sqlite {
        "sqlite:///data/admin.db".to_string()
    } else {
        let secret = naming::backend_secret(&cluster.name, BackendKind::Postgres);
        container_env.push(secret_env("POSTGRES_USER", secret.clone(), "username"));
        container_env.push(secret_env("POSTGRES_PASSWORD", secret, "password"));
        let host =
            format!("{}.{}.svc", naming::backend_service(&cluster.name, BackendKind::Postgres), cluster.namespace);
        let database =
            cluster.spec.backends.postgres.as_ref().and_then(|p| p.database.clone()).unwrap_or_else(|| "prism".into());
        format!("postgres://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@{host}:5432/{database}")
    };
    let volume = if sqlite {
        Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: volume_name.clone(),
                read_only: None,
            }),
            ..Volume::default()
        }
    } else {
        Volume { name: "data".into(), empty_dir: Some(Default::default()), ..Volume::default() }
    };
    let container = Container {
        args: Some(vec!["serve".into(), "--data-dir".into(), "/data".into(), "--db".into(), db]),
        env: Some(container_env),
        resources: spec.component.resources.as_ref().map(Resources::requirements),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: "/data".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let template = component.template(container, vec![volume], BTreeMap::new(), Some(ADMIN_UID));
    let claim = sqlite.then(|| PersistentVolumeClaim {
        metadata: meta::object(
            &volume_name,
            &cluster.namespace,
            meta::component_labels(&cluster.name, "admin"),
            data_owner,
        ),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    spec.storage.size.clone().unwrap_or_else(|| Quantity("1Gi".into())),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    });
    (claim, component.service(owner), component.deployment(owner, Some(spec.replicas), template, sqlite))
}

/// The proxy: its Deployment rolls when the routes it serves change (a hash of them is on the pod
/// template); with autoscaling, an HPA owns its replicas.
pub fn proxy(
    cluster: &ValidatedCluster,
    owner: &OwnerReference,
    routes: &Routes,
) -> (Service, Deployment, Option<HorizontalPodAutoscaler>, Option<PodDisruptionBudget>) {
    let spec = &cluster.spec.proxy;
    let component = Component {
        cluster,
        name: "proxy",
        repository: "prism/prism-proxy",
        image: spec.component.image.as_ref(),
        ports: &PROXY_PORTS,
        overrides: cluster.proxy_overrides.as_ref(),
    };
    let admin = format!("http://{}.{}.svc:8981", naming::admin_service(&cluster.name), cluster.namespace);
    let container = Container {
        env: Some(vec![
            env("PRISM_ADMIN_URL", admin),
            env("PRISM_ROUTES", format!("/etc/prism/{}", naming::PROXY_ROUTES_KEY)),
            env("RUST_LOG", "info".into()),
        ]),
        resources: spec.component.resources.as_ref().map(Resources::requirements),
        volume_mounts: Some(vec![VolumeMount {
            name: "routes".into(),
            mount_path: "/etc/prism".into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let volume = Volume {
        name: "routes".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: naming::proxy_config(&cluster.name),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let annotations = BTreeMap::from([(annotations::CONFIG_HASH.to_string(), hash::of(routes))]);
    let template = component.template(container, vec![volume], annotations, None);
    let autoscaling = spec.autoscaling.as_ref().filter(|a| a.enabled);
    // While an autoscaler is in charge the operator never sets replicas (a new Deployment
    // starts at one and the HPA raises it to its minimum).
    let replicas = autoscaling.is_none().then_some(spec.replicas);
    let labels = meta::component_labels(&cluster.name, "proxy");
    let m = || meta::object(&component.object_name(), &cluster.namespace, labels.clone(), Some(owner));
    let hpa = autoscaling.map(|a| {
        objects::hpa(
            m(),
            Scaling {
                kind: "Deployment",
                target: component.object_name(),
                min: a.min_replicas.unwrap_or(1),
                max: a.max_replicas.unwrap_or(1),
                target_cpu: a.target_cpu,
                target_memory: a.target_memory,
                extra_metrics: a.metrics.clone(),
                behavior: a.behavior.clone(),
            },
        )
    });
    let several = autoscaling.is_some() || spec.replicas > 1;
    let pdb = several.then(|| objects::pdb(m(), meta::selector(&cluster.name, "proxy")));
    (component.service(owner), component.deployment(owner, replicas, template, false), hpa, pdb)
}

/// The ConfigMap holding the proxy's routes.
pub fn proxy_config(cluster: &ValidatedCluster, owner: &OwnerReference, routes: &Routes) -> ConfigMap {
    ConfigMap {
        metadata: meta::object(
            &naming::proxy_config(&cluster.name),
            &cluster.namespace,
            meta::proxy_config_labels(&cluster.name),
            Some(owner),
        ),
        data: Some(BTreeMap::from([(
            naming::PROXY_ROUTES_KEY.to_string(),
            serde_json::to_string(routes).unwrap_or_default(),
        )])),
        ..ConfigMap::default()
    }
}
