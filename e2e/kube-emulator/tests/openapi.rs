//! OpenAPI v2 and v3 as kube-apiserver 1.33 serves them: the discovery of /openapi/v3, a
//! document per group version with the schemas of its kinds (built-in and custom) and all they
//! refer to, and /openapi/v2 with every definition.

mod common;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

async fn get(client: &kube::Client, path: &str, accept: &str) -> Result<Value, kube::Error> {
    let req = http::Request::get(path).header(http::header::ACCEPT, accept).body(vec![]).expect("request");
    client.request(req).await
}

#[tokio::test]
async fn v3_documents_carry_the_schemas_of_every_kind_and_crd_version() {
    let (_emulator, client) = common::in_process();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = serde_json::from_value(common::widget_crd()).expect("CRD");
    crds.create(&PostParams::default(), &crd).await.expect("CRD");

    let root = get(&client, "/openapi/v3", "application/json").await.expect("root");
    let url = root["paths"]["apis/example.com/v1"]["serverRelativeURL"].as_str().expect("the CRD's group version");
    let doc = get(&client, url, "application/json").await.expect("document");
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(widget["properties"]["spec"]["properties"]["size"]["minimum"].as_f64(), Some(0.0));
    let meta = widget["properties"]["metadata"]["allOf"][0]["$ref"].as_str().expect("metadata is a reference");
    assert_eq!(meta, "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    assert!(doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());

    let core = get(&client, root["paths"]["api/v1"]["serverRelativeURL"].as_str().expect("v1"), "application/json")
        .await
        .expect("core/v1");
    let config_map = &core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"];
    assert!(config_map["description"].as_str().is_some_and(|d| d.starts_with("ConfigMap holds configuration data")));
    assert_eq!(config_map["x-kubernetes-group-version-kind"][0]["kind"], "ConfigMap");
}

#[tokio::test]
async fn v2_is_served_in_json_and_in_protobuf_as_client_go_asks() {
    let (_emulator, client) = common::in_process();
    let doc = get(&client, "/openapi/v2", "application/json").await.expect("v2");
    assert_eq!(doc["swagger"], "2.0");
    let deployment = &doc["definitions"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(deployment["x-kubernetes-group-version-kind"][0]["group"], "apps");
    assert_eq!(deployment["properties"]["spec"]["$ref"], "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
    let req = http::Request::get("/openapi/v2")
        .header(http::header::ACCEPT, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json")
        .body(vec![])
        .expect("request");
    let resp = client.send(req.map(kube::client::Body::from)).await.expect("protobuf");
    let content_type = resp.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(content_type, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes();
    // Document.swagger = 1: "2.0".
    assert_eq!(&body[..5], &[0x0a, 3, b'2', b'.', b'0']);
    let name = b"io.k8s.api.apps.v1.Deployment";
    assert!(body.windows(name.len()).any(|w| w == name), "the definitions are in it");
}
