//! `prism-operator render`: the objects for a file of custom resources, offline.

use std::process::Command;

fn render(file: &str) -> std::process::Output {
    let path = format!("{}/samples/{file}", env!("CARGO_MANIFEST_DIR"));
    Command::new(env!("CARGO_BIN_EXE_prism-operator")).args(["render", "-f", &path]).output().expect("runs")
}

#[test]
fn renders_the_sample_offline_as_yaml_documents() {
    let output = render("prism-local.yaml");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("YAML documents");
    let named = |kind: &str, name: &str| documents.iter().any(|d| d["kind"] == kind && d["metadata"]["name"] == name);
    assert!(named("StatefulSet", "prism-local-redis"));
    assert!(named("Deployment", "prism-local-proxy"));
    assert!(named("PrismPattern", "prism-local-mailbox"));
    assert!(named("StatefulSet", "prism-local-mailbox"), "the runners of the child patterns too");
    assert!(documents.len() > 30, "{} objects", documents.len());
}

#[test]
fn a_tenants_runners_render_in_the_clusters_namespace_and_its_connection_details_in_its_own() {
    let output = render("tenancy.yaml");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&String::from_utf8(output.stdout).expect("utf-8")).expect("YAML documents");
    let found = |kind: &str, name: &str| {
        documents.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).cloned().unwrap_or_default()
    };
    let runner = found("PrismPattern", "orders-keyvalue");
    assert_eq!(runner["metadata"]["namespace"], "platform");
    assert_eq!(runner["metadata"]["labels"]["prism.io/tenant-namespace"], "team-a");
    let connection = found("ConfigMap", "orders-prism-connection");
    assert_eq!(connection["metadata"]["namespace"], "team-a");
    assert_eq!(connection["data"]["PRISM_PROXY_ADDRESS"], "shared-proxy.platform.svc:8980");
}

#[test]
fn a_pattern_without_its_cluster_is_a_clear_error() {
    let output = render("pattern-tuning.yaml");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec.cluster names PrismCluster \"prism-local\""), "{stderr}");
}
