//! The RBAC objects every real cluster starts with, for what the emulator enforces: the admin
//! group's cluster-admin, what every authenticated user may do (discovery, /version and the
//! health paths, reviews of its own access), and the user-facing roles `admin`, `edit` and `view`,
//! aggregated as kube-apiserver's bootstrap policy makes them: each gathers the ClusterRoles
//! labelled `rbac.authorization.k8s.io/aggregate-to-<role>: "true"` (so that a CRD's own roles
//! extend them), view's rules flow into edit and edit's into admin.

use serde_json::{Value, json};

use crate::errors::ApiResult;
use crate::ops::Cluster;

const GROUP: &str = "rbac.authorization.k8s.io";

/// (ClusterRole name, rules, the groups its ClusterRoleBinding of the same name binds).
fn defaults() -> Vec<(&'static str, Value, &'static [&'static str])> {
    vec![
        (
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                   {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            &["system:masters"],
        ),
        (
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                        "/openapi/*", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
            &["system:authenticated"],
        ),
        (
            "system:basic-user",
            json!([{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                   {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
            &["system:authenticated"],
        ),
        (
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

/// The label a ClusterRole carries to add its rules to the user-facing role `role`.
pub fn aggregate_to(role: &str) -> String {
    format!("{GROUP}/aggregate-to-{role}")
}

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];

/// (ClusterRole name, the user-facing role it aggregates to, its rules): the built-in rules of
/// `view`, `edit` and `admin`, as the real server's `system:aggregate-to-*` roles hold them (for
/// the API groups the emulator serves).
fn aggregated_parts() -> Vec<(&'static str, &'static str, Value)> {
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| json!({"apiGroups": [group], "resources": resources, "verbs": verbs});
    let view = json!([
        rule(
            "",
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status"
            ],
            &READ
        ),
        rule(
            "",
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status"
            ],
            &READ
        ),
        rule("", &["namespaces"], &READ),
        rule(
            "apps",
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status"
            ],
            &READ
        ),
        rule("autoscaling", &["horizontalpodautoscalers", "horizontalpodautoscalers/status"], &READ),
        rule("batch", &["cronjobs", "cronjobs/status", "jobs", "jobs/status"], &READ),
        rule("policy", &["poddisruptionbudgets", "poddisruptionbudgets/status"], &READ),
        rule("networking.k8s.io", &["ingresses", "ingresses/status", "networkpolicies"], &READ),
        rule("discovery.k8s.io", &["endpointslices"], &READ),
    ]);
    let edit = json!([
        rule("", &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], &READ),
        rule("", &["serviceaccounts"], &["impersonate"]),
        rule("", &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], &WRITE),
        rule("", &["pods/eviction"], &["create"]),
        rule(
            "",
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy"
            ],
            &WRITE
        ),
        rule("", &["serviceaccounts/token"], &["create"]),
        rule(
            "apps",
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale"
            ],
            &WRITE
        ),
        rule("autoscaling", &["horizontalpodautoscalers"], &WRITE),
        rule("batch", &["cronjobs", "jobs"], &WRITE),
        rule("networking.k8s.io", &["ingresses", "networkpolicies"], &WRITE),
        rule("policy", &["poddisruptionbudgets"], &WRITE),
    ]);
    let admin = json!([
        rule("authorization.k8s.io", &["localsubjectaccessreviews"], &["create"]),
        rule(
            GROUP,
            &["rolebindings", "roles"],
            &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        ),
    ]);
    vec![
        ("system:aggregate-to-view", "view", view),
        ("system:aggregate-to-edit", "edit", edit),
        ("system:aggregate-to-admin", "admin", admin),
    ]
}

/// (user-facing role, the role it aggregates into, if any): view into edit, edit into admin.
const USER_FACING: [(&str, Option<&str>); 3] = [("view", Some("edit")), ("edit", Some("admin")), ("admin", None)];

/// Creates the default ClusterRoles and ClusterRoleBindings, labelled and annotated as the real
/// server's bootstrap policy is.
pub fn install(cluster: &Cluster) -> ApiResult<()> {
    for (name, rules, groups) in defaults() {
        let role = json!({"metadata": metadata(name, None), "rules": rules});
        cluster.create_builtin(GROUP, "v1", "clusterroles", "", role)?;
        let subjects: Vec<Value> =
            groups.iter().map(|g| json!({"apiGroup": GROUP, "kind": "Group", "name": g})).collect();
        let binding = json!({"metadata": metadata(name, None), "subjects": subjects,
                             "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name}});
        cluster.create_builtin(GROUP, "v1", "clusterrolebindings", "", binding)?;
    }
    for (name, into, rules) in aggregated_parts() {
        let role = json!({"metadata": metadata(name, Some(into)), "rules": rules});
        cluster.create_builtin(GROUP, "v1", "clusterroles", "", role)?;
    }
    for (name, into) in USER_FACING {
        let selector = json!({"matchLabels": {aggregate_to(name): "true"}});
        let role = json!({"metadata": metadata(name, into), "rules": [],
                          "aggregationRule": {"clusterRoleSelectors": [selector]}});
        cluster.create_builtin(GROUP, "v1", "clusterroles", "", role)?;
    }
    Ok(())
}

/// Metadata of a bootstrap object, labelled to aggregate into `into` if given.
fn metadata(name: &str, into: Option<&str>) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let Some(into) = into {
        labels[aggregate_to(into)] = json!("true");
    }
    json!({"name": name, "labels": labels, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_role_and_binding_is_created() {
        let cluster = Cluster::new();
        install(&cluster).expect("bootstrap policy");
        let policy = crate::auth::authz::policy(&cluster);
        assert_eq!(policy.roles.len(), defaults().len() + aggregated_parts().len() + USER_FACING.len());
        assert_eq!(policy.bindings.len(), defaults().len());
    }
}
