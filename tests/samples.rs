//! Every sample is accepted by the CRD schemas, as kube-apiserver would accept it (pruning with
//! strict field validation, defaulting, OpenAPI validation and CEL rules); and a table of invalid
//! manifests is refused, each with a message that names the field.

use std::path::{Path, PathBuf};

use kube_emulator::patch::apply_merge_patch;
use kube_emulator::schema::CompiledSchema;
use serde::Deserialize;
use serde_json::Value;

#[path = "support/invalid_manifests.rs"]
mod invalid_manifests;
use invalid_manifests::invalid_manifests;

/// Validates `object` (and `old` for an update) as the API server does with
/// `fieldValidation=Strict`, kubectl's default; returns the server's error messages.
fn server_errors(object: &Value, old: Option<&Value>) -> Vec<String> {
    let schema = schema_for(object);
    let mut object = object.clone();
    let unknown = schema.prune(&mut object);
    if !unknown.is_empty() {
        let fields: Vec<String> =
            unknown.iter().map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.'))).collect();
        return vec![format!("strict decoding error: {}", fields.join(", "))];
    }
    schema.apply_defaults(&mut object);
    let old = old.map(|o| {
        let mut o = o.clone();
        schema.prune(&mut o);
        schema.apply_defaults(&mut o);
        o
    });
    schema.validate(&object, old.as_ref()).iter().map(ToString::to_string).collect()
}

fn schema_for(object: &Value) -> CompiledSchema {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').expect("group/version");
    let crd = prism_api::crds()
        .into_iter()
        .find(|c| c.spec.group == group && c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}.{group}"));
    let served = crd.spec.versions.iter().find(|v| v.name == version).expect("served version");
    let schema = served.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("schema");
    CompiledSchema::new(&serde_json::to_value(schema).expect("json")).expect("structural")
}

fn sample_paths() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("samples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
}

fn load(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("readable");
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

fn sample(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name);
    load(&path).remove(0)
}

#[test]
fn every_sample_is_valid() {
    let paths = sample_paths();
    assert!(paths.len() >= 4, "samples: {paths:?}");
    for path in paths {
        for doc in load(&path) {
            assert_eq!(server_errors(&doc, None), Vec::<String>::new(), "{}", path.display());
        }
    }
}

/// The samples of the older versions (samples/alpha/): valid at their version, valid at v1beta1
/// once converted, and read back at their version exactly as written.
#[test]
fn alpha_samples_are_valid_and_convert_to_valid_v1beta1_and_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/alpha");
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("samples/alpha/").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    let mut versions = Vec::new();
    for path in paths {
        for doc in load(&path) {
            assert_eq!(server_errors(&doc, None), Vec::<String>::new(), "{}", path.display());
            let hub = prism_api::conversion::convert(&doc, "prism.io/v1beta1").expect("converts");
            assert_eq!(server_errors(&hub, None), Vec::<String>::new(), "{} at v1beta1: {hub:#}", path.display());
            let api_version = doc["apiVersion"].as_str().expect("apiVersion");
            // As stored: with the defaults of the version it was written at.
            let mut defaulted = doc.clone();
            schema_for(&doc).apply_defaults(&mut defaulted);
            let back = prism_api::conversion::convert(&hub, api_version).expect("converts back");
            assert_eq!(back, defaulted, "{}", path.display());
            versions.push(format!("{api_version} {}", doc["kind"].as_str().unwrap_or_default()));
        }
    }
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions,
        ["prism.io/v1alpha1 PrismCluster", "prism.io/v1alpha1 PrismPattern", "prism.io/v1alpha2 PrismNamespace"]
    );
}

#[test]
fn every_sample_deserializes_into_its_rust_type() {
    for path in sample_paths() {
        for doc in load(&path) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let result = match kind.as_str() {
                "PrismCluster" => prism_api::v1beta1::PrismCluster::deserialize(&doc).map(drop),
                "PrismNamespace" => prism_api::v1beta1::PrismNamespace::deserialize(&doc).map(drop),
                "PrismPattern" => prism_api::v1beta1::PrismPattern::deserialize(&doc).map(drop),
                other => panic!("{}: unexpected kind {other}", path.display()),
            };
            result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn invalid_manifests_are_refused_with_a_message_naming_the_field() {
    let cases = invalid_manifests();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in cases {
        let valid = sample(case.sample);
        let object = apply_merge_patch(&valid, &case.patch);
        let errors = if case.update { server_errors(&object, Some(&valid)) } else { server_errors(&object, None) };
        if errors != [case.error] {
            failures.push(format!("{}:\n  expected: {}\n  got:      {errors:?}", case.what, case.error));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}
