//! The Helm chart (charts/prism-operator) agrees with the code: the same CRDs, the operator's
//! real flags, the crate's version, well-formed least-privilege rules and values its schema
//! knows. Helm itself checks the chart in scripts/chart-check.sh (lint, schema, install).

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::rbac::{RULES_FILE, RulesFile};

const CHART: &str = "charts/prism-operator";
const CHECKED_IN_CRDS: &str = "crds/prism-crds.yaml";
const CHART_CRDS: &str = "charts/prism-operator/crds/prism-crds.yaml";

fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn yaml(relative: &str) -> Value {
    serde_saphyr::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn values() -> Value {
    yaml(&format!("{CHART}/values.yaml"))
}

#[test]
fn chart_crds_are_the_checked_in_crds() {
    assert!(
        read(CHART_CRDS) == read(CHECKED_IN_CRDS),
        "{CHART_CRDS} differs from {CHECKED_IN_CRDS}: copy it with\n    cp {CHECKED_IN_CRDS} {CHART_CRDS}"
    );
}

#[test]
fn chart_crds_hold_every_kind() {
    let documents: Vec<Value> = serde_saphyr::from_multiple(&read(CHART_CRDS)).expect("CRD YAML");
    let names: Vec<&str> = documents.iter().filter_map(|d| d["metadata"]["name"].as_str()).collect();
    let kinds: Vec<String> = prism_api::crds().into_iter().filter_map(|c| c.metadata.name).collect();
    assert_eq!(
        names, kinds,
        "{CHART_CRDS} must hold one CRD per kind: regenerate both copies with\n    \
         cargo run -- crds > {CHECKED_IN_CRDS} && cp {CHECKED_IN_CRDS} {CHART_CRDS}"
    );
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart = yaml(&format!("{CHART}/Chart.yaml"));
    assert_eq!(chart["appVersion"].as_str(), Some(env!("CARGO_PKG_VERSION")), "{CHART}/Chart.yaml appVersion");
    assert_eq!(chart["apiVersion"].as_str(), Some("v2"));
}

/// Every `--flag` the Deployment passes is one `prism-operator run` accepts.
#[test]
fn deployment_passes_only_flags_the_operator_has() {
    let template = read(&format!("{CHART}/templates/deployment.yaml"));
    let flags: Vec<&str> = template
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- --"))
        .map(|flag| flag.split(['=', ' ']).next().unwrap_or(flag))
        .collect();
    assert!(flags.len() >= 10, "flags found in the template: {flags:?}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_prism-operator"))
        .args(["run", "--help"])
        .output()
        .expect("prism-operator run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let missing: Vec<&&str> = flags.iter().filter(|flag| !help.contains(&format!("--{flag} "))).collect();
    assert!(missing.is_empty(), "templates/deployment.yaml passes flags `prism-operator run` lacks: {missing:?}");
}

#[test]
fn rbac_rules_are_least_privilege() {
    let lease_name = values()["leaderElection"]["leaseName"].as_str().expect("leaseName").to_string();
    let rules = RulesFile::load(&lease_name).unwrap_or_else(|e| panic!("{e}"));
    let problems = rules.problems();
    assert!(problems.is_empty(), "{RULES_FILE}:\n{}", problems.join("\n"));
    let names: Vec<&String> = rules.leader_election.iter().flat_map(|r| &r.resource_names).collect();
    assert_eq!(names, [&lease_name], "the Lease rules name the chart's Lease");
}

/// Values the schema does not know would be refused at install (additionalProperties: false):
/// every default in values.yaml must be described by values.schema.json.
#[test]
fn schema_describes_every_default_value() {
    let schema: Value = serde_json::from_str(&read(&format!("{CHART}/values.schema.json"))).expect("schema JSON");
    let mut unknown = Vec::new();
    undescribed(&values(), &schema, &schema, "", &mut unknown);
    assert!(unknown.is_empty(), "values.yaml keys missing from values.schema.json: {unknown:?}");
}

fn undescribed(value: &Value, schema: &Value, root: &Value, at: &str, out: &mut Vec<String>) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |s, key| &s[key]))
            .unwrap_or_else(|| panic!("unsupported $ref {reference}")),
        None => schema,
    };
    let (Some(object), Some(properties)) = (value.as_object(), schema.get("properties")) else { return };
    for (key, child) in object {
        match properties.get(key) {
            Some(child_schema) => undescribed(child, child_schema, root, &format!("{at}/{key}"), out),
            None if schema["additionalProperties"] == Value::Bool(false) => out.push(format!("{at}/{key}")),
            None => {}
        }
    }
}

#[test]
fn operator_runs_least_privileged_by_default() {
    let values = values();
    let container = &values["securityContext"];
    assert_eq!(container["allowPrivilegeEscalation"], Value::Bool(false));
    assert_eq!(container["readOnlyRootFilesystem"], Value::Bool(true));
    assert_eq!(container["runAsNonRoot"], Value::Bool(true));
    assert_eq!(container["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(container["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(values["podSecurityContext"]["runAsNonRoot"], Value::Bool(true));
    assert_eq!(values["replicaCount"], 2, "a standby by default");
    assert_eq!(values["leaderElection"]["enabled"], Value::Bool(true));
}
