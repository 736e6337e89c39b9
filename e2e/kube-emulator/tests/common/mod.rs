//! Shared helpers of the emulator's integration tests.
#![allow(dead_code)]

pub mod kubectl;
pub mod webhook;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_emulator::{Emulator, Server};

/// A fresh emulator (control plane running) and a kube client talking to it in-process (no
/// socket). Keep the emulator for the test's length: dropping it stops the control plane.
pub fn in_process() -> (Emulator, Client) {
    let emulator = Emulator::start();
    let client = Client::new(emulator.router(), "default");
    (emulator, client)
}

/// A kube Config from a kubeconfig the server wrote (HTTPS, its CA, the given credentials), as
/// the operator builds one.
pub async fn config_from(kubeconfig_yaml: &str) -> Config {
    let kubeconfig = Kubeconfig::from_yaml(kubeconfig_yaml).expect("kubeconfig");
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config")
}

/// The Status of a failed call (panics on any other error).
pub fn status_of(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected a Status error, got {other:?}"),
    }
}

/// Creates a ServiceAccount and returns a token for it from the TokenRequest API.
pub async fn service_account_token(admin: &Client, namespace: &str, name: &str) -> String {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{Api, PostParams};
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let account = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("ServiceAccount");
    accounts.create(&PostParams::default(), &account).await.expect("ServiceAccount created");
    let answer = accounts.create_token_request(name, &PostParams::default(), &Default::default()).await.expect("token");
    answer.status.expect("TokenRequest status").token
}

/// An in-process client that authenticates with `token` (the router otherwise is the admin's).
pub fn client_with_token(emulator: &Emulator, token: &str) -> Client {
    let value = http::HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
    let router =
        tower::ServiceExt::map_request(emulator.router(), move |mut req: http::Request<kube::client::Body>| {
            req.headers_mut().insert(http::header::AUTHORIZATION, value.clone());
            req
        });
    Client::new(router, "default")
}

/// The admin's Config for a served emulator.
pub async fn admin_config(server: &Server) -> Config {
    config_from(&server.kubeconfig_yaml()).await
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
