//! Small object builders every component uses: Services, disruption budgets, autoscalers.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{ContainerPort, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A named port of a component.
pub type Port = (&'static str, i32);

pub fn container_ports(ports: &[Port]) -> Vec<ContainerPort> {
    ports
        .iter()
        .map(|(name, port)| ContainerPort {
            name: Some((*name).into()),
            container_port: *port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        })
        .collect()
}

/// A Service over `selector`; headless ones publish not-ready pods too, so that peers of a
/// starting StatefulSet can find each other.
pub fn service(meta: ObjectMeta, selector: BTreeMap<String, String>, ports: &[Port], headless: bool) -> Service {
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: headless.then(|| "None".into()),
            publish_not_ready_addresses: headless.then_some(true),
            selector: Some(selector),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| ServicePort {
                        name: Some((*name).into()),
                        port: *port,
                        target_port: Some(IntOrString::String((*name).into())),
                        protocol: Some("TCP".into()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A budget that lets voluntary disruptions take one pod at a time.
pub fn pdb(meta: ObjectMeta, selector: BTreeMap<String, String>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(selector), ..LabelSelector::default() }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// What an autoscaler scales and on what.
pub struct Scaling {
    pub kind: &'static str,
    pub target: String,
    pub min: i32,
    pub max: i32,
    pub target_cpu: Option<i32>,
    pub target_memory: Option<i32>,
    pub extra_metrics: Vec<MetricSpec>,
    pub behavior: Option<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior>,
}

/// An autoscaling/v2 HorizontalPodAutoscaler.
pub fn hpa(meta: ObjectMeta, scaling: Scaling) -> HorizontalPodAutoscaler {
    let mut metrics = Vec::new();
    metrics.extend(scaling.target_cpu.map(|t| utilization("cpu", t)));
    metrics.extend(scaling.target_memory.map(|t| utilization("memory", t)));
    metrics.extend(scaling.extra_metrics);
    HorizontalPodAutoscaler {
        metadata: meta,
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: scaling.kind.into(),
                name: scaling.target,
            },
            min_replicas: Some(scaling.min),
            max_replicas: scaling.max,
            metrics: Some(metrics),
            behavior: scaling.behavior,
        }),
        ..HorizontalPodAutoscaler::default()
    }
}

fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}
