//! How the cluster is reached and watched: the Ingress to the proxy, the Prometheus
//! ServiceMonitor and the Grafana dashboard.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use prism_api::names::labels;
use serde_json::json;

use crate::cluster::validate::ValidatedCluster;
use crate::{meta, naming};

/// The ingress-nginx annotation that makes it speak gRPC to the proxy.
const NGINX_GRPC: (&str, &str) = ("nginx.ingress.kubernetes.io/backend-protocol", "GRPC");

pub fn ingress(cluster: &ValidatedCluster, owner: &OwnerReference) -> Option<Ingress> {
    let spec = cluster.spec.ingress.as_ref().filter(|i| i.enabled)?;
    let mut annotations = spec.annotations.clone();
    if spec.class_name.as_deref() == Some("nginx") {
        annotations.entry(NGINX_GRPC.0.into()).or_insert_with(|| NGINX_GRPC.1.into());
    }
    let mut metadata = meta::object(
        &naming::proxy_service(&cluster.name),
        &cluster.namespace,
        meta::component_labels(&cluster.name, "proxy"),
        Some(owner),
    );
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: naming::proxy_service(&cluster.name),
            port: Some(ServiceBackendPort { name: Some("grpc".into()), number: None }),
        }),
        resource: None,
    };
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: spec.host.clone(),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath { path: Some("/".into()), path_type: "Prefix".into(), backend }],
                }),
            }]),
            tls: (!spec.tls.is_empty()).then(|| spec.tls.clone()),
            default_backend: None,
        }),
        ..Ingress::default()
    })
}

/// The API resource of the Prometheus Operator's ServiceMonitor (not in k8s-openapi).
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// A ServiceMonitor scraping every component's `metrics` port, when Prometheus is enabled and its
/// API is served (otherwise a condition says why there is none).
pub fn service_monitor(cluster: &ValidatedCluster, owner: &OwnerReference, api_served: bool) -> Option<DynamicObject> {
    let prometheus = cluster.spec.observability.as_ref()?.prometheus.as_ref().filter(|p| p.enabled)?;
    if !api_served {
        return None;
    }
    let name = cluster.name.clone();
    let mut object = DynamicObject::new(&name, &service_monitor_resource()).within(&cluster.namespace);
    object.metadata =
        meta::object(&name, &cluster.namespace, meta::component_labels(&cluster.name, "monitoring"), Some(owner));
    object.data = json!({"spec": {
        "selector": {"matchLabels": {labels::NAME: "prism", labels::INSTANCE: cluster.name}},
        "endpoints": [{"port": "metrics", "interval": prometheus.scrape_interval.clone().unwrap_or_else(|| "30s".into())}],
    }});
    Some(object)
}

/// A dashboard ConfigMap that Grafana's dashboard sidecar picks up (label `grafana_dashboard`).
pub fn grafana_dashboard(cluster: &ValidatedCluster, owner: &OwnerReference) -> Option<ConfigMap> {
    cluster.spec.observability.as_ref()?.grafana.as_ref().filter(|g| g.enabled)?;
    let mut labels = meta::component_labels(&cluster.name, "monitoring");
    labels.insert("grafana_dashboard".into(), "1".into());
    let selector = format!("namespace=\"{}\", {}=\"{}\"", cluster.namespace, "instance", cluster.name);
    let panel = |title: &str, expr: String| json!({"type": "timeseries", "title": title, "targets": [{"expr": expr}]});
    let dashboard = json!({
        "title": format!("Prism {}", cluster.name),
        "uid": crate::hash::of(&format!("{}/{}", cluster.namespace, cluster.name)),
        "panels": [
            panel("Requests per second", format!("sum(rate(grpc_server_handled_total{{{selector}}}[5m])) by (job)")),
            panel("Ready replicas", format!("sum(up{{{selector}}}) by (job)")),
        ],
    });
    Some(ConfigMap {
        metadata: meta::object(
            &naming::component(&cluster.name, "grafana-dashboard"),
            &cluster.namespace,
            labels,
            Some(owner),
        ),
        data: Some(BTreeMap::from([("prism.json".to_string(), dashboard.to_string())])),
        ..ConfigMap::default()
    })
}
