//! Shared helpers of the emulator's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use kube::Client;
use kube_emulator::{Cluster, http};

/// A fresh cluster and a kube client talking to it in-process (no socket).
pub fn in_process() -> (Arc<Cluster>, Client) {
    let cluster = Cluster::new();
    let client = Client::new(http::router(cluster.clone()), "default");
    (cluster, client)
}

/// A client for a cluster created elsewhere (e.g. with a small event log).
pub fn client_for(cluster: &Arc<Cluster>) -> Client {
    Client::new(http::router(cluster.clone()), "default")
}

pub fn widget_crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "selectableFields": [{"jsonPath": ".spec.color"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "color": {"type": "string"},
                            "size": {"type": "integer", "minimum": 0}
                        }},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "observedGeneration": {"type": "integer"}
                        }}
                    }
                }}
            }]
        }
    })
}
