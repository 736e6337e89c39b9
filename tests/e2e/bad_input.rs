//! Scenario 7: bad input. Invalid manifests applied with kubectl (server-side and client-side
//! apply) are refused by the CRD schemas and CEL rules with messages that name the field; manifests
//! that pass the schema but cannot be realised are reported in conditions; the operator never
//! panics, and a valid cluster next to the bad ones converges unaffected.

use std::time::Duration;

use kube_emulator::patch::apply_merge_patch;
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use serde_json::{Value, json};

use crate::harness::{Env, eventually};

#[path = "../support/invalid_manifests.rs"]
mod table;

/// The two ways users apply manifests.
const APPLY_MODES: [&[&str]; 2] = [&["apply", "--server-side", "-f", "-"], &["apply", "-f", "-"]];

fn sample_object(name: &str, namespace: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name);
    let text = std::fs::read_to_string(path).expect("sample");
    let mut object: Value = serde_saphyr::from_str(&text).expect("sample parses");
    object["metadata"]["namespace"] = json!(namespace);
    object
}

/// Whether kubectl printed the server's refusal of a manifest, naming the field: the table's
/// message (kubectl prefixes it, e.g. `The PrismCluster "minimal" is invalid: `), with two
/// differences of the wire from the validator's message:
/// - server-side apply refuses a list-map with a duplicate key before validation, as
///   kube-apiserver does (`failed to create typed patch object ...: .spec.patterns: duplicate
///   entries for key [name="keyvalue"]`);
/// - a rule on the whole object has no field path: the message says `<nil>: `, kubectl prints the
///   `details.causes[].field`, which the emulator leaves empty (kube-apiserver: `<nil>`).
fn refused_as_expected(stderr: &str, expected: &str, server_side: bool) -> bool {
    if stderr.contains(expected) {
        return true;
    }
    if server_side && expected.contains("Duplicate value") {
        let field = expected.split('[').next().unwrap_or_default();
        return stderr.contains("failed to create typed patch object")
            && stderr.contains(&format!(".{field}: duplicate entries for key"));
    }
    expected.strip_prefix("<nil>").is_some_and(|rest| stderr.contains(&format!("is invalid: {rest}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_are_refused_and_semantic_errors_are_reported_without_harm() {
    let mut env = Env::new("bad-input").await;
    // The conditions' side of invalid references: admission steps aside as with the operator
    // down (tests/e2e/versions.rs covers the refusals).
    env.webhook_reachable = false;
    env.start_operator("a", &[]);
    let ns = env.namespace.clone();

    // A valid cluster next to everything bad: it must converge regardless.
    let mut valid = sample_object(table::CLUSTER, &ns);
    valid["metadata"]["name"] = json!("valid");
    env.apply(&valid.to_string()).await;

    // Schema and CEL rules: creates first (nothing of that name exists), then updates of an
    // existing valid object.
    let mut cases = table::invalid_manifests();
    cases.sort_by_key(|c| c.update);
    let mut failures = Vec::new();
    let mut refused = 0;
    for case in &cases {
        let base = sample_object(case.sample, &ns);
        if case.update {
            env.apply(&base.to_string()).await;
        }
        let manifest = apply_merge_patch(&base, &case.patch).to_string();
        for mode in APPLY_MODES {
            let out = env.kubectl_with_input(mode, Some(&manifest)).await;
            if out.success {
                failures.push(format!("{} ({}): accepted:\n{}", case.what, mode.join(" "), out.stdout));
            } else if !refused_as_expected(&out.stderr, case.error, mode.contains(&"--server-side")) {
                failures.push(format!(
                    "{} ({}):\n  expected: {}\n  kubectl:  {}",
                    case.what,
                    mode.join(" "),
                    case.error,
                    out.stderr.trim()
                ));
            } else {
                refused += 1;
            }
        }
    }
    println!("{refused} invalid manifest applications refused with the field named ({} cases x 2 modes)", cases.len());
    assert!(failures.is_empty(), "{} refusal(s) not as expected:\n{}", failures.len(), failures.join("\n"));
    assert!(cases.len() >= 20, "at least 20 invalid manifests");

    // Semantically invalid, but the schema cannot know: each is reported in its conditions.
    let semantic = [
        (
            "prismcluster",
            "bad-backend",
            json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
                   "metadata": {"name": "bad-backend", "namespace": ns},
                   "spec": {"patterns": [{"name": "consumer", "backends": ["nats"]}]}}),
            "BackendNotEnabled",
            "spec.backends.nats.enabled",
        ),
        (
            "prismcluster",
            "bad-namespace",
            json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismCluster",
                   "metadata": {"name": "bad-namespace", "namespace": ns},
                   "spec": {"namespaces": [{"name": "orders", "patterns": ["keyvalue"]}]}}),
            "PatternNotFound",
            "spec.namespaces[0].patterns",
        ),
        (
            "prismpattern",
            "orphan",
            json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismPattern",
                   "metadata": {"name": "orphan", "namespace": ns},
                   "spec": {"cluster": "missing", "type": "keyvalue"}}),
            "ClusterNotFound",
            "spec.cluster",
        ),
        (
            "prismnamespace",
            "lost",
            json!({"apiVersion": "prism.io/v1beta1", "kind": "PrismNamespace",
                   "metadata": {"name": "lost", "namespace": ns},
                   "spec": {"cluster": "valid", "patterns": ["mailbox"]}}),
            "PatternNotFound",
            "\"mailbox\"",
        ),
    ];
    for (_, _, manifest, _, _) in &semantic {
        let out = env.kubectl_with_input(&["apply", "-f", "-"], Some(&manifest.to_string())).await;
        assert!(out.success, "passes the schema: {}", out.stderr);
    }
    let limit = Duration::from_secs(45);
    for (kind, name, _, reason, field) in &semantic {
        let (spec_valid, ready) = eventually(&format!("{kind}/{name} reports {reason}"), limit, || async {
            let spec_valid = condition(&env, kind, name, "SpecValid").await?;
            let ready = condition(&env, kind, name, "Ready").await?;
            (spec_valid.starts_with("False|") && ready.starts_with("False|")).then_some((spec_valid, ready))
        })
        .await;
        println!("{kind}/{name}: SpecValid {spec_valid}; Ready {ready}");
        assert!(spec_valid.starts_with(&format!("False|{reason}|")), "{kind}/{name} SpecValid: {spec_valid}");
        assert!(ready.starts_with(&format!("False|{reason}|")), "{kind}/{name} Ready: {ready}");
        assert!(spec_valid.contains(field), "{kind}/{name}: the message names {field}: {spec_valid}");
    }

    // The valid cluster converged as if nothing else were there.
    let clusters = env.api::<PrismCluster>();
    if env.emulated() {
        eventually("the valid cluster Running", limit, || async {
            let c = clusters.get_opt("valid").await.ok().flatten()?;
            let status = c.status?;
            (status.phase == Some(ClusterPhase::Running) && status.observed_generation == c.metadata.generation)
                .then_some(())
        })
        .await;
        let ready = condition(&env, "prismcluster", "valid", "Ready").await.unwrap_or_default();
        assert!(ready.starts_with("True|"), "valid cluster Ready: {ready}");
    } else {
        eventually("the valid cluster's children", limit, || async {
            env.api::<k8s_openapi::api::apps::v1::Deployment>().get_opt("valid-proxy").await.ok().flatten()
        })
        .await;
    }
    let logs = env.operator_logs();
    assert!(env.operators().iter_mut().all(|o| o.is_running()), "the operator is still running:\n{logs}");
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
}

/// `status|reason|message` of a condition, through kubectl's jsonpath.
async fn condition(env: &Env, kind: &str, name: &str, type_: &str) -> Option<String> {
    let path = format!(
        "jsonpath={{range .status.conditions[?(@.type==\"{type_}\")]}}{{.status}}|{{.reason}}|{{.message}}{{end}}"
    );
    let out = env.kubectl(&["get", kind, name, "-o", &path]).await;
    (out.success && !out.stdout.is_empty()).then_some(out.stdout)
}
