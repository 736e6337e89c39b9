//! The patch and server-side-apply engines as the write pipeline and its clients use them: whole
//! request sequences, checked on the objects and managedFields they leave behind.

use kube_emulator::patch::{apply_json_patch, apply_merge_patch, apply_strategic_merge_patch};
use kube_emulator::ssa::{Structure, apply, record_update};
use serde_json::{Value, json};

const FINALIZER: &str = "prism.example.com/cleanup";

fn times() -> impl Iterator<Item = String> {
    (1..).map(|s| format!("2026-01-01T00:{:02}:{:02}Z", s / 60, s % 60))
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "backend", "namespace": "prism", "labels": {"app.kubernetes.io/name": "prism"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "backend"}},
            "template": {
                "metadata": {"labels": {"app": "backend"}},
                "spec": {"containers": [{"name": "backend", "image": image, "ports": [{"containerPort": 8980}]}]}
            }
        }
    })
}

/// kube-runtime's finalizer helper over a whole object lifetime, with a second finalizer present.
#[test]
fn finalizer_helper_lifecycle() {
    let pattern = json!({"apiVersion": "prism.example.com/v1alpha1", "kind": "Pattern", "metadata": {"name": "p"}});
    let added = apply_json_patch(
        &pattern,
        &json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
        ]),
    )
    .unwrap();
    // Someone else adds theirs with a merge patch (kubectl patch --type merge).
    let both = apply_merge_patch(&added, &json!({"metadata": {"finalizers": [FINALIZER, "other/x"]}}));
    // A second add from a stale read fails its test instead of duplicating the finalizer.
    let stale = apply_json_patch(
        &both,
        &json!([
            {"op": "test", "path": "/metadata/finalizers", "value": [FINALIZER]},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}
        ]),
    );
    assert_eq!(stale.unwrap_err().status_code(), 422);
    let removed = apply_json_patch(
        &both,
        &json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]),
    )
    .unwrap();
    assert_eq!(removed["metadata"]["finalizers"], json!(["other/x"]));
}

/// An operator applying its Deployment every reconcile while the workload controller writes status:
/// after the first apply, re-applying the same configuration must change nothing at all, or the
/// operator would wake itself forever.
#[test]
fn repeated_applies_with_a_status_writer_are_no_ops() {
    let structure = Structure::built_in("apps", "Deployment");
    let mut now = times();
    let mut live =
        apply(None, &deployment(2, "prism:1"), "prism-operator", None, true, &structure, &now.next().unwrap()).unwrap();
    let mut with_status = live.clone();
    with_status["status"] = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2});
    live = record_update(
        Some(&live),
        &with_status,
        "deployment-controller",
        Some("status"),
        &structure,
        &now.next().unwrap(),
    );
    for _ in 0..3 {
        let again = apply(
            Some(&live),
            &deployment(2, "prism:1"),
            "prism-operator",
            None,
            true,
            &structure,
            &now.next().unwrap(),
        )
        .unwrap();
        assert_eq!(again, live);
    }
    let upgraded =
        apply(Some(&live), &deployment(2, "prism:2"), "prism-operator", None, true, &structure, &now.next().unwrap())
            .unwrap();
    assert_eq!(upgraded["spec"]["template"]["spec"]["containers"][0]["image"], "prism:2");
    assert_eq!(upgraded["status"], with_status["status"], "status belongs to the status writer");
}

/// `kubectl scale` (a merge patch recorded as an Update) then the operator's apply: without force the
/// apply conflicts on exactly the scaled field; with force it wins and kubectl keeps nothing there.
#[test]
fn scaled_by_kubectl_then_applied_by_the_operator() {
    let structure = Structure::built_in("apps", "Deployment");
    let mut now = times();
    let live =
        apply(None, &deployment(2, "prism:1"), "prism-operator", None, true, &structure, &now.next().unwrap()).unwrap();
    let scaled = apply_merge_patch(&live, &json!({"spec": {"replicas": 5}}));
    let scaled = record_update(Some(&live), &scaled, "kubectl", None, &structure, &now.next().unwrap());

    let err =
        apply(Some(&scaled), &deployment(2, "prism:1"), "prism-operator", None, false, &structure, "t").unwrap_err();
    assert_eq!(err.status_code(), 409);
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );

    let forced =
        apply(Some(&scaled), &deployment(2, "prism:1"), "prism-operator", None, true, &structure, &now.next().unwrap())
            .unwrap();
    assert_eq!(forced["spec"]["replicas"], 2);
    let managers: Vec<&str> =
        forced["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|e| e["manager"].as_str()).collect();
    assert_eq!(managers, vec!["prism-operator"], "kubectl owned only the replicas it lost");
}

/// kubectl client-side apply of a built-in: a strategic merge patch with ordering directives, then the
/// Update entry it leaves.
#[test]
fn client_side_apply_of_a_built_in() {
    let structure = Structure::built_in("apps", "Deployment");
    let live =
        record_update(None, &deployment(1, "prism:1"), "kubectl-create", None, &structure, "2026-01-01T00:00:01Z");
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "backend"}, {"name": "proxy"}],
        "containers": [{"name": "proxy", "image": "envoy:1"}]
    }}}});
    let patched = apply_strategic_merge_patch(&live, &patch, "apps", "Deployment").unwrap();
    let names: Vec<&str> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["backend", "proxy"]);
    let recorded =
        record_update(Some(&live), &patched, "kubectl-client-side-apply", None, &structure, "2026-01-01T00:00:02Z");
    let entry = recorded["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubectl-client-side-apply")
        .unwrap();
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}
        }}}}})
    );
}
