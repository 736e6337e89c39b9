//! The checked-in CRDs are what the code generates, and a real API server would accept them.

use std::path::Path;

use kube_emulator::schema::CompiledSchema;
use serde_json::Value;

const CHECKED_IN: &str = "crds/prism-crds.yaml";

fn generated_yaml() -> String {
    let mut yaml = String::new();
    for crd in prism_api::crds() {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&crd).expect("CRDs serialize"));
    }
    yaml
}

#[test]
fn checked_in_crds_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHECKED_IN);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated_yaml(),
        "{CHECKED_IN} is out of date with the types in api/: regenerate it with\n    cargo run -- crds > {CHECKED_IN}"
    );
}

#[test]
fn crds_command_prints_the_same_stream() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_prism-operator")).arg("crds").output().expect("runs");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), generated_yaml());
}

#[test]
fn every_served_version_has_a_structural_schema_with_compiling_cel_rules() {
    for crd in prism_api::crds() {
        for version in &crd.spec.versions {
            let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("schema");
            let schema = serde_json::to_value(schema).expect("json");
            if let Err(problems) = CompiledSchema::new(&schema) {
                panic!("{} {} is not structural: {problems:#?}", crd.metadata.name.unwrap_or_default(), version.name);
            }
        }
    }
}

#[test]
fn kinds_share_the_prism_category_and_none_is_named_like_it() {
    use prism_api::names::{CATEGORY, GROUP};
    for crd in prism_api::crds() {
        let names = &crd.spec.names;
        // The derive attributes need literals: here they are held to the names module.
        assert_eq!(crd.spec.group, GROUP, "{}", names.kind);
        assert_eq!(names.categories.as_deref(), Some(&[CATEGORY.to_string()][..]));
        let mut all = vec![names.plural.clone(), names.kind.to_lowercase()];
        all.extend(names.singular.clone());
        all.extend(names.short_names.clone().unwrap_or_default());
        assert!(!all.iter().any(|n| n == CATEGORY), "a name equal to the category confuses kubectl: {all:?}");
        for version in &crd.spec.versions {
            let subresources = version.subresources.as_ref().expect("subresources");
            assert!(subresources.status.is_some(), "{} {} has a status subresource", names.kind, version.name);
            let columns: Vec<&str> =
                version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
            assert!(
                columns.contains(&"Phase") && columns.contains(&"Age"),
                "{} {}: {columns:?}",
                names.kind,
                version.name
            );
        }
    }
}

#[test]
fn every_kind_serves_its_older_version_and_stores_v1beta1() {
    let served: Vec<(String, Vec<(String, bool)>)> = prism_api::crds()
        .into_iter()
        .map(|crd| {
            let versions = crd.spec.versions.iter().filter(|v| v.served).map(|v| (v.name.clone(), v.storage)).collect();
            (crd.spec.names.kind, versions)
        })
        .collect();
    let both = |older: &str| vec![(older.to_string(), false), ("v1beta1".to_string(), true)];
    assert_eq!(
        served,
        vec![
            ("PrismCluster".to_string(), both("v1alpha1")),
            ("PrismNamespace".to_string(), both("v1alpha2")),
            ("PrismPattern".to_string(), both("v1alpha1")),
        ]
    );
}

#[test]
fn every_kind_converts_through_the_webhook_and_fails_closed_until_the_operator_trusts_it() {
    for crd in prism_api::crds() {
        let conversion = crd.spec.conversion.as_ref().expect("conversion");
        assert_eq!(conversion.strategy, "Webhook", "{}: None would store older shapes as v1beta1", crd.spec.names.kind);
        let webhook = conversion.webhook.as_ref().expect("webhook");
        let config = webhook.client_config.as_ref().expect("clientConfig");
        let service = config.service.as_ref().expect("service");
        assert_eq!(
            (service.name.as_str(), service.namespace.as_str(), service.path.as_deref(), service.port),
            ("prism-operator-webhook", "prism-system", Some("/convert"), Some(443))
        );
        // No CA: nothing converts until an operator puts its own there.
        assert_eq!(config.ca_bundle, None);
        assert_eq!(webhook.conversion_review_versions, ["v1"]);
    }
}

#[test]
fn printer_columns_speak_each_versions_own_field_names() {
    let crd = prism_api::crds().into_iter().find(|c| c.spec.names.kind == "PrismPattern").expect("crd");
    let paths = |name: &str| -> Vec<String> {
        let version = crd.spec.versions.iter().find(|v| v.name == name).expect("version");
        version.additional_printer_columns.iter().flatten().map(|c| c.json_path.clone()).collect()
    };
    assert!(paths("v1alpha1").contains(&".spec.pattern".to_string()), "upstream's field: {:?}", paths("v1alpha1"));
    assert!(paths("v1beta1").contains(&".spec.type".to_string()), "{:?}", paths("v1beta1"));
}

#[test]
fn prism_pattern_serves_the_scale_subresource() {
    let crd = prism_api::crds().into_iter().find(|c| c.spec.names.kind == "PrismPattern").expect("crd");
    let v1beta1 = crd.spec.versions.iter().find(|v| v.name == "v1beta1").expect("v1beta1");
    let scale = v1beta1.subresources.as_ref().and_then(|s| s.scale.as_ref()).expect("scale");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
}

#[test]
fn each_crd_fits_in_a_client_side_apply_annotation() {
    // kubectl apply (client side) stores the whole object in an annotation of at most 256 KiB.
    for crd in prism_api::crds() {
        let size = serde_json::to_vec(&crd).expect("json").len();
        assert!(size < 200 * 1024, "{} is {size} bytes", crd.metadata.name.unwrap_or_default());
        let _: Value = serde_json::to_value(&crd).expect("json");
    }
}
