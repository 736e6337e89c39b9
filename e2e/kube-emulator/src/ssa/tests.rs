//! Behaviour of server-side apply and field ownership, one scenario per test.

use serde_json::{Value, json};

use super::*;

const T1: &str = "2026-01-01T00:00:01Z";
const T2: &str = "2026-01-01T00:00:02Z";
const T3: &str = "2026-01-01T00:00:03Z";

fn deployments() -> Structure {
    Structure::built_in("apps", "Deployment")
}

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"}, "spec": spec})
}

fn entries(object: &Value) -> &Vec<Value> {
    object["metadata"]["managedFields"].as_array().expect("managedFields")
}

fn entry<'a>(object: &'a Value, manager: &str) -> &'a Value {
    entries(object).iter().find(|e| e["manager"] == manager).expect("entry of manager")
}

fn apply_as(live: Option<&Value>, applied: &Value, manager: &str, now: &str) -> Value {
    apply(live, applied, manager, None, false, &deployments(), now).expect("apply")
}

#[test]
fn create_by_apply_records_exactly_the_applied_fields() {
    let applied = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}
    });
    let out = apply_as(None, &applied, "kubectl", T1);
    assert_eq!(out["spec"], applied["spec"]);
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1, "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
                        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                    }}
                }}}}
            }
        }])
    );
}

#[test]
fn reapplying_without_a_field_removes_it() {
    let first = apply_as(None, &deployment(json!({"replicas": 2, "paused": true})), "kubectl", T1);
    let second = apply_as(Some(&first), &deployment(json!({"replicas": 2})), "kubectl", T2);
    assert_eq!(second["spec"], json!({"replicas": 2}));
    assert_eq!(entry(&second, "kubectl")["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(entry(&second, "kubectl")["time"], T2, "the object changed");
}

#[test]
fn dropped_field_stays_while_another_manager_owns_it() {
    let first = apply_as(None, &deployment(json!({"replicas": 2, "paused": true})), "a", T1);
    let shared = apply_as(Some(&first), &deployment(json!({"paused": true})), "b", T2);
    let dropped = apply_as(Some(&shared), &deployment(json!({"replicas": 2})), "a", T3);
    assert_eq!(dropped["spec"], json!({"replicas": 2, "paused": true}));
    assert_eq!(entry(&dropped, "a")["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(entry(&dropped, "b")["fieldsV1"], json!({"f:spec": {"f:paused": {}}}));
}

#[test]
fn applying_a_value_another_manager_set_differently_is_a_conflict() {
    let created = record_update(None, &deployment(json!({"replicas": 1})), "kubectl", None, &deployments(), T1);
    let err = apply(Some(&created), &deployment(json!({"replicas": 3})), "operator", None, false, &deployments(), T2)
        .unwrap_err();
    assert_eq!(err.status_code(), 409);
    assert_eq!(err.reason(), "Conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        err.causes(),
        vec![
            json!({"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\" using apps/v1", "field": ".spec.replicas"})
        ]
    );
}

#[test]
fn several_conflicts_are_grouped_by_manager() {
    let a = apply_as(None, &deployment(json!({"replicas": 1, "paused": false})), "a", T1);
    let ab = apply_as(Some(&a), &deployment(json!({"minReadySeconds": 5})), "b", T2);
    let err = apply(
        Some(&ab),
        &deployment(json!({"replicas": 2, "paused": true, "minReadySeconds": 6})),
        "c",
        None,
        false,
        &deployments(),
        T3,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.paused\n- .spec.replicas\nconflicts with \"b\":\n- .spec.minReadySeconds"
    );
}

#[test]
fn applying_the_same_value_shares_ownership_without_conflict() {
    let created = record_update(None, &deployment(json!({"replicas": 1})), "kubectl", None, &deployments(), T1);
    let out = apply_as(Some(&created), &deployment(json!({"replicas": 1})), "operator", T2);
    assert_eq!(entry(&out, "kubectl")["fieldsV1"]["f:spec"], json!({".": {}, "f:replicas": {}}));
    assert_eq!(entry(&out, "operator")["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
}

#[test]
fn force_takes_the_field_from_the_other_manager() {
    let created =
        record_update(None, &deployment(json!({"replicas": 1, "paused": true})), "kubectl", None, &deployments(), T1);
    let out =
        apply(Some(&created), &deployment(json!({"replicas": 3})), "operator", None, true, &deployments(), T2).unwrap();
    assert_eq!(out["spec"], json!({"replicas": 3, "paused": true}));
    assert_eq!(entry(&out, "kubectl")["fieldsV1"]["f:spec"], json!({".": {}, "f:paused": {}}));
    assert_eq!(entry(&out, "operator")["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
}

#[test]
fn list_map_items_of_two_managers_merge_and_leave_separately() {
    let containers = |items: Value| deployment(json!({"template": {"spec": {"containers": items}}}));
    let a = apply_as(None, &containers(json!([{"name": "app", "image": "a"}])), "a", T1);
    let ab = apply_as(Some(&a), &containers(json!([{"name": "sidecar", "image": "s"}])), "b", T2);
    assert_eq!(
        ab["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "a"}, {"name": "sidecar", "image": "s"}])
    );
    let b_only = apply_as(Some(&ab), &containers(json!([])), "a", T3);
    assert_eq!(b_only["spec"]["template"]["spec"]["containers"], json!([{"name": "sidecar", "image": "s"}]));
    assert!(entries(&b_only).iter().all(|e| e["manager"] != "a"), "a owns nothing any more");
}

#[test]
fn set_lists_merge_values_of_several_managers() {
    let with_finalizers =
        |f: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": f}});
    let a = apply_as(None, &with_finalizers(json!(["x"])), "a", T1);
    let ab = apply_as(Some(&a), &with_finalizers(json!(["y"])), "b", T2);
    assert_eq!(ab["metadata"]["finalizers"], json!(["x", "y"]));
    assert_eq!(entry(&ab, "b")["fieldsV1"], json!({"f:metadata": {"f:finalizers": {"v:\"y\"": {}}}}));
    let b_only = apply_as(Some(&ab), &with_finalizers(json!([])), "a", T3);
    assert_eq!(b_only["metadata"]["finalizers"], json!(["y"]));
}

#[test]
fn atomic_lists_are_owned_and_replaced_whole() {
    let args = |a: Value| deployment(json!({"template": {"spec": {"containers": [{"name": "app", "args": a}]}}}));
    let a = apply_as(None, &args(json!(["1", "2"])), "a", T1);
    let owned = &entry(&a, "a")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
    assert_eq!(owned["f:args"], json!({}));
    let err = apply(Some(&a), &args(json!(["3"])), "b", None, false, &deployments(), T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.template.spec.containers[name=\"app\"].args"
    );
    let forced = apply(Some(&a), &args(json!(["3"])), "b", None, true, &deployments(), T2).unwrap();
    assert_eq!(forced["spec"]["template"]["spec"]["containers"][0]["args"], json!(["3"]));
}

#[test]
fn a_no_op_reapply_returns_the_live_object_unchanged() {
    let config =
        deployment(json!({"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "a"}]}}}));
    let first = apply_as(None, &config, "kubectl", T1);
    let again = apply_as(Some(&first), &config, "kubectl", T2);
    assert_eq!(again, first);
    assert_eq!(entry(&again, "kubectl")["time"], T1);
}

#[test]
fn status_applies_are_separate_entries_and_the_main_endpoint_ignores_status() {
    let created = apply_as(None, &deployment(json!({"replicas": 1})), "kubectl", T1);
    let status =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 1}});
    let out =
        apply(Some(&created), &status, "deployment-controller", Some("status"), false, &deployments(), T2).unwrap();
    assert_eq!(out["status"], json!({"replicas": 1}));
    let status_entry = entry(&out, "deployment-controller");
    assert_eq!(status_entry["subresource"], "status");
    assert_eq!(status_entry["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    let main = apply_as(
        Some(&out),
        &deployment(json!({"replicas": 1}))
            .as_object()
            .map(|m| {
                let mut m = m.clone();
                m.insert("status".into(), json!({"replicas": 9}));
                Value::Object(m)
            })
            .unwrap(),
        "kubectl",
        T3,
    );
    assert_eq!(main["status"], json!({"replicas": 1}), "status is not written through the main endpoint");
    assert_eq!(entry(&main, "kubectl")["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
}

#[test]
fn apply_with_managed_fields_is_a_bad_request() {
    let mut config = deployment(json!({}));
    config["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &config, "x", None, false, &deployments(), T1).unwrap_err();
    assert_eq!((err.status_code(), err.to_string().as_str()), (400, "metadata.managedFields must be nil"));
}

#[test]
fn list_map_items_without_their_key_are_refused() {
    let config = deployment(json!({"template": {"spec": {"containers": [{"image": "x"}]}}}));
    let err = apply(None, &config, "x", None, false, &deployments(), T1).unwrap_err();
    assert_eq!(err.status_code(), 500);
    assert!(err.to_string().starts_with("failed to create typed patch object (ns/web; apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\""), "{err}");
}

#[test]
fn an_object_without_managers_is_owned_by_before_first_apply() {
    let live = deployment(json!({"replicas": 1}));
    let err =
        apply(Some(&live), &deployment(json!({"replicas": 2})), "op", None, false, &deployments(), T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn updates_take_what_they_change_from_other_managers() {
    let applied = apply_as(None, &deployment(json!({"replicas": 1, "paused": true})), "kubectl", T1);
    let mut edited = applied.clone();
    edited["spec"]["replicas"] = json!(5);
    let out = record_update(Some(&applied), &edited, "kubectl-edit", None, &deployments(), T2);
    assert_eq!(entry(&out, "kubectl")["fieldsV1"], json!({"f:spec": {"f:paused": {}}}));
    let edit = entry(&out, "kubectl-edit");
    assert_eq!((edit["operation"].as_str(), edit["time"].as_str()), (Some("Update"), Some(T2)));
    assert_eq!(edit["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
}

#[test]
fn an_update_that_changes_nothing_leaves_managed_fields_alone() {
    let created = record_update(None, &deployment(json!({"replicas": 1})), "kubectl-create", None, &deployments(), T1);
    let again = record_update(Some(&created), &created, "kubectl-edit", None, &deployments(), T2);
    assert_eq!(again, created);
}

#[test]
fn requests_can_clear_managed_fields_and_untracked_objects_stay_untracked() {
    let created = record_update(None, &deployment(json!({"replicas": 1})), "kubectl-create", None, &deployments(), T1);
    let mut live = created.clone();
    live["metadata"]["uid"] = json!("u1");
    let mut cleared = live.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    cleared["spec"]["replicas"] = json!(2);
    let out = record_update(Some(&live), &cleared, "kubectl-edit", None, &deployments(), T2);
    assert!(out["metadata"].get("managedFields").is_none());
}

#[test]
fn custom_resources_use_their_schema() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "backends": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                         "items": {"type": "object", "properties": {"name": {"type": "string"}, "weight": {"type": "integer"}}}},
            "hosts": {"type": "array", "items": {"type": "string"}}
        }}
    }});
    let crd = Structure::from_crd_schema(&schema, true);
    let cr = |spec: Value| json!({"apiVersion": "x.io/v1", "kind": "Route", "metadata": {"name": "r"}, "spec": spec});
    let a = apply(
        None,
        &cr(json!({"backends": [{"name": "a", "weight": 1}], "hosts": ["h1"]})),
        "a",
        None,
        false,
        &crd,
        T1,
    )
    .unwrap();
    let ab =
        apply(Some(&a), &cr(json!({"backends": [{"name": "b", "weight": 2}]})), "b", None, false, &crd, T2).unwrap();
    assert_eq!(ab["spec"]["backends"], json!([{"name": "a", "weight": 1}, {"name": "b", "weight": 2}]));
    let err = apply(Some(&ab), &cr(json!({"hosts": ["h2"]})), "b", None, false, &crd, T3).unwrap_err();
    assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"a\": .spec.hosts");
    let created = record_update(None, &cr(json!({"hosts": ["h"]})), "kubectl-create", None, &crd, T1);
    assert_eq!(entry(&created, "kubectl-create")["fieldsV1"], json!({"f:spec": {".": {}, "f:hosts": {}}}));
}

#[test]
fn status_updates_are_recorded_per_subresource() {
    let created = apply_as(None, &deployment(json!({"replicas": 1})), "kubectl", T1);
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 1, "readyReplicas": 1});
    let out = record_update(Some(&created), &with_status, "deployment-controller", Some("status"), &deployments(), T2);
    let status = entry(&out, "deployment-controller");
    assert_eq!((status["operation"].as_str(), status["subresource"].as_str()), (Some("Update"), Some("status")));
    assert_eq!(status["fieldsV1"], json!({"f:status": {".": {}, "f:readyReplicas": {}, "f:replicas": {}}}));
    assert_eq!(entry(&out, "kubectl")["time"], T1, "other managers keep their times");
}

#[test]
fn an_update_with_duplicate_keys_is_stored_without_managed_fields() {
    let created = apply_as(None, &deployment(json!({"replicas": 1})), "kubectl", T1);
    let mut dup = created.clone();
    dup["spec"]["template"] = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
    let out = record_update(Some(&created), &dup, "kubectl-edit", None, &deployments(), T2);
    assert!(out["metadata"].get("managedFields").is_none());
    assert_eq!(out["spec"]["template"], dup["spec"]["template"]);
}

#[test]
fn duplicate_keys_in_an_apply_configuration_are_refused() {
    let config = deployment(json!({"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}));
    let err = apply(None, &config, "x", None, false, &deployments(), T1).unwrap_err();
    assert!(
        err.to_string().ends_with(".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"),
        "{err}"
    );
}

#[test]
fn atomic_struct_items_and_crd_key_defaults() {
    let config = deployment(json!({"template": {"spec": {"imagePullSecrets": [{"name": "regcred"}]}}}));
    let out = apply_as(None, &config, "a", T1);
    assert_eq!(
        entry(&out, "a")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:imagePullSecrets"],
        json!({"k:{\"name\":\"regcred\"}": {}})
    );
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
                  "items": {"type": "object", "properties": {"port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}}
    }}}});
    let crd = Structure::from_crd_schema(&schema, false);
    let cr =
        json!({"apiVersion": "x.io/v1", "kind": "Gate", "metadata": {"name": "g"}, "spec": {"ports": [{"port": 80}]}});
    let out = apply(None, &cr, "a", None, false, &crd, T1).unwrap();
    assert_eq!(
        entry(&out, "a")["fieldsV1"]["f:spec"]["f:ports"],
        json!({"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}})
    );
}

#[test]
fn typability_is_judged_as_the_field_set_judges_it() {
    let structure = deployments();
    let containers = |items: Value| deployment(json!({"template": {"spec": {"containers": items}}}));
    let objects = [
        containers(json!([{"name": "a"}, {"name": "b"}])),
        containers(json!([{"name": "a"}, {"name": "a"}])),
        containers(json!([{"image": "nginx"}])),
    ];
    let judged: Vec<bool> = objects.iter().map(|o| typed::typable(o, structure.root())).collect();
    assert_eq!(judged, [true, false, false]);
    for object in &objects {
        assert_eq!(typed::typable(object, structure.root()), typed::field_set(object, structure.root()).is_ok());
    }
}
