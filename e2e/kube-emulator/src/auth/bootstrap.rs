//! The RBAC objects every real cluster starts with, for what the emulator enforces: the admin
//! group's cluster-admin, and what every authenticated user may do (discovery, /version and the
//! health paths, reviews of its own access).

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

/// Creates the default ClusterRoles and ClusterRoleBindings, labelled and annotated as the real
/// server's bootstrap policy is.
pub fn install(cluster: &Cluster) -> ApiResult<()> {
    let metadata = |name: &str| {
        json!({"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
               "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
    };
    for (name, rules, groups) in defaults() {
        cluster.create_builtin(GROUP, "v1", "clusterroles", "", json!({"metadata": metadata(name), "rules": rules}))?;
        let subjects: Vec<Value> =
            groups.iter().map(|g| json!({"apiGroup": GROUP, "kind": "Group", "name": g})).collect();
        let binding = json!({"metadata": metadata(name), "subjects": subjects,
                             "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name}});
        cluster.create_builtin(GROUP, "v1", "clusterrolebindings", "", binding)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_role_and_binding_is_created() {
        let cluster = Cluster::new();
        install(&cluster).expect("bootstrap policy");
        let policy = crate::auth::authz::policy(&cluster);
        assert_eq!(policy.roles.len(), defaults().len());
        assert_eq!(policy.bindings.len(), defaults().len());
    }
}
