//! The desired objects of a pattern runner. Pure and deterministic: the same validated pattern
//! always builds the same objects, which is what lets a reconcile skip writes that change nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::autoscaling::v2::{CrossVersionObjectReference, HorizontalPodAutoscaler};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, Probe, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use prism_api::common::Resources;
use prism_api::names::annotations;
use prism_api::v1beta1::DeletionPolicy;
use prism_api::v1beta1::{Autoscaling, Scaler, ServiceType, WorkloadKind};
use serde_json::json;

use super::validate::ValidatedPattern;
use crate::ports::{RUNNER_GRPC, RUNNER_HEALTH, RUNNER_METRICS};
use crate::{backends, hash, images, naming, objects, pod};

/// Key of the runner's configuration in its ConfigMap.
pub const CONFIG_KEY: &str = "pattern.json";
const CONFIG_DIR: &str = "/etc/prism";
const DATA_DIR: &str = "/data";

/// Every object of a pattern runner, in apply order.
#[derive(Clone, Debug)]
pub struct PatternResources {
    pub config_map: ConfigMap,
    pub service: Service,
    pub workload: Workload,
    pub autoscaler: Option<Autoscaler>,
}

/// The runner's workload.
#[derive(Clone, Debug)]
pub enum Workload {
    Deployment(Deployment),
    StatefulSet(StatefulSet),
}

/// The runner's autoscaler.
#[derive(Clone, Debug)]
pub enum Autoscaler {
    Hpa(Box<HorizontalPodAutoscaler>),
    Keda(Box<DynamicObject>),
}

/// The API resource of KEDA's ScaledObject (not in k8s-openapi).
pub fn scaled_object_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"), "scaledobjects")
}

/// The workload's replicas: the spec's when no autoscaler is in charge; with one, none at all
/// (a new workload starts at one and the autoscaler raises it to its minimum).
pub fn replicas(spec: &prism_api::v1beta1::PrismPatternSpec) -> Option<i32> {
    match &spec.autoscaling {
        Some(scaling) if scaling.enabled => None,
        _ => Some(spec.replicas.unwrap_or(1)),
    }
}

/// Builds the runner of `pattern`. `replicas` is the workload's replica count, or `None` to leave
/// it to an autoscaler (the operator never sets replicas while one is in charge).
pub fn build(pattern: &ValidatedPattern, owner: &OwnerReference, replicas: Option<i32>) -> PatternResources {
    let config_map = config_map(pattern, owner);
    let config_hash = hash::of(&config_map.data);
    PatternResources {
        service: service(pattern, owner),
        workload: workload(pattern, owner, replicas, &config_hash),
        autoscaler: pattern.spec.autoscaling.as_ref().filter(|a| a.enabled).map(|a| autoscaler(pattern, owner, a)),
        config_map,
    }
}

fn metadata(pattern: &ValidatedPattern, owner: &OwnerReference, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(pattern.namespace.clone()),
        labels: Some(naming::runner_labels(&pattern.spec.cluster, &pattern.name)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

fn config_map(pattern: &ValidatedPattern, owner: &OwnerReference) -> ConfigMap {
    let spec = &pattern.spec;
    let config = json!({
        "name": pattern.name,
        "type": spec.pattern_type.as_str(),
        "cluster": spec.cluster,
        "backends": spec.backends.iter().map(|b| json!({"name": b.name.as_str(), "config": b.config})).collect::<Vec<_>>(),
        "config": spec.config,
    });
    ConfigMap {
        metadata: metadata(pattern, owner, naming::runner_config(&pattern.name)),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), config.to_string())])),
        ..ConfigMap::default()
    }
}

fn service(pattern: &ValidatedPattern, owner: &OwnerReference) -> Service {
    let options = pattern.spec.service.clone().unwrap_or_default();
    let service_type = match options.service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    Service {
        metadata: metadata(pattern, owner, pattern.name.clone()),
        spec: Some(ServiceSpec {
            type_: Some(service_type.into()),
            selector: Some(naming::runner_selector(&pattern.spec.cluster, &pattern.name)),
            ports: Some(vec![
                service_port("grpc", options.port.unwrap_or(RUNNER_GRPC)),
                service_port("metrics", RUNNER_METRICS),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

fn workload(pattern: &ValidatedPattern, owner: &OwnerReference, replicas: Option<i32>, config_hash: &str) -> Workload {
    let meta = metadata(pattern, owner, pattern.name.clone());
    let selector = LabelSelector {
        match_labels: Some(naming::runner_selector(&pattern.spec.cluster, &pattern.name)),
        ..LabelSelector::default()
    };
    let template = pod::with_overrides(pod::template(pod_parts(pattern, config_hash)), pattern.overrides.as_ref());
    match pattern.spec.workload {
        WorkloadKind::Deployment => Workload::Deployment(Deployment {
            metadata: meta,
            spec: Some(DeploymentSpec { replicas, selector, template, ..DeploymentSpec::default() }),
            ..Deployment::default()
        }),
        WorkloadKind::StatefulSet => Workload::StatefulSet(StatefulSet {
            metadata: meta,
            spec: Some(StatefulSetSpec {
                replicas,
                selector,
                template,
                service_name: Some(pattern.name.clone()),
                volume_claim_templates: volume_claim_template(pattern).map(|t| vec![t]),
                persistent_volume_claim_retention_policy: Some(retention(pattern.deletion_policy)),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }),
    }
}

fn retention(policy: DeletionPolicy) -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    let when_deleted = match policy {
        DeletionPolicy::Retain => "Retain",
        DeletionPolicy::Delete => "Delete",
    };
    // Scaling down never deletes data: scaling back up finds it again.
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some(when_deleted.into()),
        when_scaled: Some("Retain".into()),
    }
}

fn volume_claim_template(pattern: &ValidatedPattern) -> Option<PersistentVolumeClaim> {
    let storage = pattern.spec.storage.as_ref()?;
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta { name: Some("data".into()), ..ObjectMeta::default() },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), storage.size.clone())])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    })
}

/// The container's ports: the spec's where set, the runner's defaults otherwise.
struct Ports {
    grpc: i32,
    metrics: i32,
    health: i32,
}

fn ports(pattern: &ValidatedPattern) -> Ports {
    let spec = pattern.spec.ports.clone().unwrap_or_default();
    Ports {
        grpc: spec.grpc.unwrap_or(RUNNER_GRPC),
        metrics: spec.metrics.unwrap_or(RUNNER_METRICS),
        health: spec.health.unwrap_or(RUNNER_HEALTH),
    }
}

fn pod_parts(pattern: &ValidatedPattern, config_hash: &str) -> pod::PodParts {
    let spec = &pattern.spec;
    let ports = ports(pattern);
    let repository = format!("prism/{}-runner", spec.pattern_type.as_str());
    let image = images::resolve(images::PRISM_REGISTRY, &repository, images::PRISM_VERSION, spec.image.as_ref());
    let mut volumes = vec![Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: naming::runner_config(&pattern.name),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let mut mounts = vec![mount("config", CONFIG_DIR)];
    if spec.storage.is_none() {
        // Without a claim template the data directory is scratch space, lost with the pod.
        volumes.push(Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
    mounts.push(mount("data", DATA_DIR));
    let mut labels = naming::runner_labels(&spec.cluster, &pattern.name);
    labels.insert(prism_api::names::labels::COMPONENT.into(), naming::RUNNER_COMPONENT.into());
    pod::PodParts {
        labels,
        annotations: BTreeMap::from([(annotations::CONFIG_HASH.to_string(), config_hash.to_string())]),
        container: Container {
            name: "runner".into(),
            image: Some(image.reference),
            image_pull_policy: image.pull_policy,
            env: Some(env(pattern)),
            ports: Some(objects::container_ports(&[
                ("grpc", ports.grpc),
                ("metrics", ports.metrics),
                ("health", ports.health),
            ])),
            liveness_probe: Some(http_probe("/health", 10)),
            readiness_probe: Some(http_probe("/ready", 5)),
            resources: spec.resources.as_ref().map(Resources::requirements),
            volume_mounts: Some(mounts),
            ..Container::default()
        },
        volumes,
        pull_secrets: image.pull_secrets,
        placement: spec.placement.as_deref().cloned(),
        run_as_user: None,
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), ..VolumeMount::default() }
}

fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("health".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        ..Probe::default()
    }
}

fn env(pattern: &ValidatedPattern) -> Vec<EnvVar> {
    let spec = &pattern.spec;
    let value = |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), value_from: None };
    let admin = format!("{}.{}.svc:8981", naming::admin_service(&spec.cluster), pattern.namespace);
    let mut env = vec![
        value("PATTERN_NAME", pattern.name.clone()),
        value("PATTERN_TYPE", spec.pattern_type.as_str().into()),
        value("PRISM_CLUSTER", spec.cluster.clone()),
        value("PRISM_ADMIN_ENDPOINT", admin),
        value("PATTERN_CONFIG", format!("{CONFIG_DIR}/{CONFIG_KEY}")),
        value("GRPC_PORT", ports(pattern).grpc.to_string()),
        value("HEALTH_PORT", ports(pattern).health.to_string()),
        value("METRICS_PORT", ports(pattern).metrics.to_string()),
        EnvVar {
            name: "PROCESS_ID".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), api_version: None }),
                ..EnvVarSource::default()
            }),
        },
    ];
    for backend in spec.backends.iter().map(|b| b.name) {
        env.extend(backends::client_env(&spec.cluster, &pattern.namespace, backend));
        if backend == prism_api::v1beta1::BackendKind::Sqlite {
            env.push(value("SQLITE_PATH", format!("{DATA_DIR}/{}.db", pattern.name)));
        }
    }
    env
}

fn autoscaler(pattern: &ValidatedPattern, owner: &OwnerReference, scaling: &Autoscaling) -> Autoscaler {
    match scaling.scaler {
        Scaler::Hpa => Autoscaler::Hpa(Box::new(hpa(pattern, owner, scaling))),
        Scaler::Keda => Autoscaler::Keda(Box::new(scaled_object(pattern, owner, scaling))),
    }
}

fn target_ref(pattern: &ValidatedPattern) -> CrossVersionObjectReference {
    let kind = match pattern.spec.workload {
        WorkloadKind::Deployment => "Deployment",
        WorkloadKind::StatefulSet => "StatefulSet",
    };
    CrossVersionObjectReference { api_version: Some("apps/v1".into()), kind: kind.into(), name: pattern.name.clone() }
}

fn hpa(pattern: &ValidatedPattern, owner: &OwnerReference, scaling: &Autoscaling) -> HorizontalPodAutoscaler {
    let target = target_ref(pattern);
    objects::hpa(
        metadata(pattern, owner, pattern.name.clone()),
        objects::Scaling {
            kind: if pattern.spec.workload == WorkloadKind::StatefulSet { "StatefulSet" } else { "Deployment" },
            target: target.name,
            min: scaling.min_replicas.unwrap_or(1),
            // The schema requires maxReplicas when autoscaling is enabled.
            max: scaling.max_replicas.unwrap_or(1),
            target_cpu: scaling.target_cpu,
            target_memory: scaling.target_memory,
            extra_metrics: scaling.metrics.clone(),
            behavior: scaling.behavior.clone(),
        },
    )
}

fn scaled_object(pattern: &ValidatedPattern, owner: &OwnerReference, scaling: &Autoscaling) -> DynamicObject {
    let mut triggers: Vec<serde_json::Value> = Vec::new();
    for (kind, target) in [("cpu", scaling.target_cpu), ("memory", scaling.target_memory)] {
        if let Some(percent) = target {
            triggers
                .push(json!({"type": kind, "metricType": "Utilization", "metadata": {"value": percent.to_string()}}));
        }
    }
    triggers.extend(scaling.triggers.iter().map(|t| serde_json::to_value(t).unwrap_or_default()));
    let mut spec = json!({
        "scaleTargetRef": target_ref(pattern),
        "minReplicaCount": scaling.min_replicas.unwrap_or(1),
        "maxReplicaCount": scaling.max_replicas.unwrap_or(1),
        "pollingInterval": scaling.polling_interval.unwrap_or(10),
        "cooldownPeriod": scaling.cooldown_period.unwrap_or(300),
        "triggers": triggers,
    });
    if let Some(behavior) = &scaling.behavior {
        spec["advanced"] = json!({"horizontalPodAutoscalerConfig": {"behavior": behavior}});
    }
    let mut object = DynamicObject::new(&pattern.name, &scaled_object_resource()).within(&pattern.namespace);
    object.metadata = metadata(pattern, owner, pattern.name.clone());
    object.data = json!({ "spec": spec });
    object
}

#[cfg(test)]
mod tests {
    use prism_api::v1beta1::DeletionPolicy;
    use prism_api::v1beta1::{PrismPatternSpec, RunnerPorts};

    use super::*;

    fn valid(spec: PrismPatternSpec) -> ValidatedPattern {
        ValidatedPattern {
            name: "kv".into(),
            namespace: "ns".into(),
            spec,
            service_backends: Vec::new(),
            overrides: None,
            deletion_policy: DeletionPolicy::Retain,
        }
    }

    #[test]
    fn every_port_is_overridable() {
        let spec = PrismPatternSpec {
            cluster: "c".into(),
            ports: Some(RunnerPorts { grpc: Some(50051), metrics: Some(9100), health: Some(8086) }),
            ..PrismPatternSpec::default()
        };
        let built = build(&valid(spec), &OwnerReference::default(), Some(1));
        let Workload::Deployment(deployment) = built.workload else { panic!("a Deployment") };
        let container = deployment.spec.expect("spec").template.spec.expect("pod").containers[0].clone();
        let ports: Vec<i32> = container.ports.iter().flatten().map(|p| p.container_port).collect();
        assert_eq!(ports, vec![50051, 9100, 8086]);
        let grpc = container.env.iter().flatten().find(|e| e.name == "GRPC_PORT").and_then(|e| e.value.clone());
        assert_eq!(grpc.as_deref(), Some("50051"));
    }

    #[test]
    fn storage_makes_claim_templates_and_autoscaling_leaves_replicas() {
        let spec = PrismPatternSpec {
            cluster: "c".into(),
            workload: WorkloadKind::StatefulSet,
            storage: Some(prism_api::common::VolumeSpec {
                size: k8s_openapi::apimachinery::pkg::api::resource::Quantity("1Gi".into()),
                storage_class_name: None,
            }),
            autoscaling: Some(Box::new(Autoscaling {
                enabled: true,
                max_replicas: Some(4),
                target_cpu: Some(60),
                ..Default::default()
            })),
            ..PrismPatternSpec::default()
        };
        assert_eq!(replicas(&spec), None);
        let built = build(&valid(spec), &OwnerReference::default(), None);
        let Workload::StatefulSet(set) = built.workload else { panic!("a StatefulSet") };
        let set = set.spec.expect("spec");
        assert_eq!(set.replicas, None);
        assert_eq!(set.volume_claim_templates.map(|t| t.len()), Some(1));
        assert!(matches!(built.autoscaler, Some(Autoscaler::Hpa(_))));
    }
}
