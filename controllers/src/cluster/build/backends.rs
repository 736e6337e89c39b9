//! One builder for every backing service, driven by the facts table in `crate::backends`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, Probe, SecretKeySelector, TCPSocketAction, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use prism_api::common::Resources;
use prism_api::names::labels;
use prism_api::v1beta1::BackendKind;
use prism_api::v1beta1::BackendService;

use super::BackendObjects;
use crate::backends::{self, BackendFacts, ClientEnv, ServerEnv};
use crate::cluster::validate::ValidatedCluster;
use crate::objects::{self, Port};
use crate::{images, meta, naming, pod};

pub fn build(
    cluster: &ValidatedCluster,
    facts: &BackendFacts,
    spec: &BackendService,
    owner: &OwnerReference,
) -> BackendObjects {
    let kind = facts.kind;
    let name = naming::backend_service(&cluster.name, kind);
    let headless_name = format!("{name}-headless");
    let labels = backend_labels(cluster, kind);
    let selector = meta::selector(&cluster.name, kind.as_str());
    let ports = ports(facts);
    let m = |n: &str| meta::object(n, &cluster.namespace, labels.clone(), Some(owner));
    BackendObjects {
        kind,
        headless: objects::service(m(&headless_name), selector.clone(), &ports, true),
        client: objects::service(m(&name), selector.clone(), &ports, false),
        stateful_set: stateful_set(cluster, facts, spec, m(&name), &headless_name),
        pdb: (spec.replicas > 1).then(|| objects::pdb(m(&name), selector)),
    }
}

fn backend_labels(cluster: &ValidatedCluster, kind: BackendKind) -> BTreeMap<String, String> {
    let mut all = meta::component_labels(&cluster.name, kind.as_str());
    all.insert(labels::BACKEND.to_string(), kind.as_str().to_string());
    all
}

fn ports(facts: &BackendFacts) -> Vec<Port> {
    let mut ports = vec![(facts.kind.as_str(), facts.port)];
    ports.extend(facts.extra_ports.iter().copied());
    ports
}

fn stateful_set(
    cluster: &ValidatedCluster,
    facts: &BackendFacts,
    spec: &BackendService,
    meta_: ObjectMeta,
    headless: &str,
) -> StatefulSet {
    let kind = facts.kind;
    let selector = meta::selector(&cluster.name, kind.as_str());
    let tag = spec.version.as_deref().unwrap_or("latest");
    let image = images::resolve(images::BACKEND_REGISTRY, facts.repository, tag, spec.component.image.as_ref());
    let vars = Vars::new(cluster, facts, spec, headless);
    let mut volumes: Vec<Volume> =
        facts.scratch_dirs.iter().enumerate().map(|(i, _)| empty_dir(&format!("scratch-{i}"))).collect();
    let mut mounts: Vec<VolumeMount> = facts
        .scratch_dirs
        .iter()
        .enumerate()
        .map(|(i, path)| VolumeMount {
            name: format!("scratch-{i}"),
            mount_path: (*path).into(),
            ..VolumeMount::default()
        })
        .collect();
    if spec.storage.is_none() {
        // Without a size the data is ephemeral: fine for development, said in the docs.
        volumes.push(empty_dir("data"));
    }
    mounts.push(VolumeMount { name: "data".into(), mount_path: facts.data_path.into(), ..VolumeMount::default() });
    let container = Container {
        name: kind.as_str().into(),
        image: Some(image.reference),
        image_pull_policy: image.pull_policy,
        args: (!facts.args.is_empty()).then(|| facts.args.iter().map(|a| vars.expand(a)).collect()),
        env: Some(server_env(cluster, facts, &vars)),
        ports: Some(objects::container_ports(&ports(facts))),
        readiness_probe: Some(tcp_probe(kind.as_str(), 0, 5)),
        liveness_probe: Some(tcp_probe(kind.as_str(), 30, 10)),
        resources: spec.component.resources.as_ref().map(Resources::requirements),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let mut template = pod::template(pod::PodParts {
        labels: backend_labels(cluster, kind),
        container,
        volumes,
        pull_secrets: image.pull_secrets,
        run_as_user: Some(facts.run_as_user),
        ..pod::PodParts::default()
    });
    if facts.writable_root {
        allow_writable_root(&mut template);
    }
    let template = pod::with_overrides(template, cluster.backend_overrides.get(&kind));
    StatefulSet {
        metadata: meta_,
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas),
            service_name: Some(headless.into()),
            selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
            template,
            // Peers of a clustered service must start together to form a quorum.
            pod_management_policy: Some("Parallel".into()),
            volume_claim_templates: spec.storage.as_ref().map(|size| vec![claim(cluster, kind, size, spec)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn allow_writable_root(template: &mut k8s_openapi::api::core::v1::PodTemplateSpec) {
    let containers = template.spec.iter_mut().flat_map(|s| s.containers.iter_mut());
    for context in containers.filter_map(|c| c.security_context.as_mut()) {
        context.read_only_root_filesystem = Some(false);
    }
}

fn claim(
    cluster: &ValidatedCluster,
    kind: BackendKind,
    size: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    spec: &BackendService,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        // Labelled so that the data policy can find a removed backend's volumes.
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(backend_labels(cluster, kind)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size.clone())])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }
}

fn tcp_probe(port: &str, initial_delay: i32, period: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::String(port.into()), host: None }),
        initial_delay_seconds: (initial_delay > 0).then_some(initial_delay),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

fn server_env(cluster: &ValidatedCluster, facts: &BackendFacts, vars: &Vars) -> Vec<EnvVar> {
    let secret = naming::backend_secret(&cluster.name, facts.kind);
    facts
        .server_env
        .iter()
        .map(|env| match *env {
            ServerEnv::Value(name, template) => {
                EnvVar { name: name.into(), value: Some(vars.expand(template)), value_from: None }
            }
            ServerEnv::Secret(name, key) => EnvVar {
                name: name.into(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector { name: secret.clone(), key: key.into(), optional: None }),
                    ..EnvVarSource::default()
                }),
            },
            ServerEnv::Field(name, path) => EnvVar {
                name: name.into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector { field_path: path.into(), api_version: None }),
                    ..EnvVarSource::default()
                }),
            },
        })
        .collect()
}

/// Values the facts' templates refer to.
struct Vars {
    pairs: Vec<(&'static str, String)>,
}

impl Vars {
    fn new(cluster: &ValidatedCluster, facts: &BackendFacts, spec: &BackendService, headless: &str) -> Self {
        let set = naming::backend_service(&cluster.name, facts.kind);
        let ns = &cluster.namespace;
        let voters: Vec<String> =
            (0..spec.replicas).map(|i| format!("{i}@{set}-{i}.{headless}.{ns}.svc:9093")).collect();
        let cluster_id = crate::hash::of(&format!("{ns}/{}", cluster.name));
        Vars {
            pairs: vec![
                ("{host}", format!("{set}.{ns}.svc")),
                ("{port}", facts.port.to_string()),
                ("{headless}", headless.to_string()),
                ("{namespace}", ns.clone()),
                ("{database}", spec.database.clone().unwrap_or_else(|| "prism".into())),
                ("{voters}", voters.join(",")),
                ("{replication}", spec.replicas.min(3).to_string()),
                // KRaft wants 22 base64url characters; a hash of the cluster's identity is stable.
                ("{cluster_id}", format!("{cluster_id}{}", &cluster_id[..6])),
            ],
        }
    }

    fn expand(&self, template: &str) -> String {
        self.pairs.iter().fold(template.to_string(), |acc, (key, value)| acc.replace(key, value))
    }
}

/// The service-discovery ConfigMap: every enabled backend's non-secret connection settings.
pub fn discovery_config_map(cluster: &ValidatedCluster, owner: &OwnerReference) -> ConfigMap {
    let mut data = BTreeMap::new();
    for (kind, _) in cluster.spec.backends.enabled() {
        for env in backends::client_env(&cluster.name, &cluster.namespace, kind) {
            if let Some(value) = env.value {
                data.insert(env.name, value);
            }
        }
        if let Some(facts) = backends::facts(kind) {
            for env in facts.client_env {
                if let ClientEnv::Secret(name, key) = env {
                    data.insert(
                        format!("{name}_SECRET"),
                        format!("{}/{key}", naming::backend_secret(&cluster.name, kind)),
                    );
                }
            }
        }
    }
    ConfigMap {
        metadata: meta::object(
            &naming::component(&cluster.name, "backends"),
            &cluster.namespace,
            meta::component_labels(&cluster.name, "backends"),
            Some(owner),
        ),
        data: Some(data),
        ..ConfigMap::default()
    }
}
