//! RBAC escalation prevention, as the real server applies it to writes of roles and bindings: a
//! user may grant only permissions it holds, unless it may `escalate` (roles) or `bind` (the
//! role a binding names). Members of system:masters are never checked.

use serde_json::{Value, json};

use super::authz;
use super::rbac::{self, Decision, Policy, PolicyRule};
use super::user::UserInfo;
use crate::errors::{ApiError, ApiResult};
use crate::ops::{Cluster, Target};
use crate::request_info::RequestInfo;

const GROUP: &str = "rbac.authorization.k8s.io";

/// Whether a write to `t` by `user` must pass the escalation check.
pub fn applies(t: &Target, user: &UserInfo) -> bool {
    t.rt.group == GROUP && t.sub.is_none() && !user.is_privileged()
}

/// Ok when writing `new` (over `old`, for updates) to `t` grants nothing `user` lacks; else the
/// real server's 403.
pub fn check(cluster: &Cluster, user: &UserInfo, t: &Target, new: &Value, old: Option<&Value>) -> ApiResult<()> {
    let policy = authz::policy(cluster);
    let name = crate::meta::meta_str(new, "name");
    let refused = (format!("{}.{GROUP}", t.rt.plural), name.to_string());
    match t.rt.plural.as_str() {
        "roles" | "clusterroles" => {
            if old.is_some_and(|o| {
                o.get("rules") == new.get("rules") && o.get("aggregationRule") == new.get("aggregationRule")
            }) || may(&policy, user, "escalate", &t.rt.plural, &t.namespace, name)
            {
                return Ok(());
            }
            let role = rbac::role_from_object(new);
            confirm(&policy, user, &t.namespace, &role.rules, &refused)?;
            if new.get("aggregationRule").is_some() {
                confirm(&policy, user, "", &[rbac::everything()], &refused).map_err(|_| {
                    forbidden(&refused, "must have cluster-admin privileges to use the aggregationRule".into())
                })?;
            }
            Ok(())
        }
        "rolebindings" | "clusterrolebindings" => {
            if old.is_some_and(|o| o.get("roleRef") == new.get("roleRef") && o.get("subjects") == new.get("subjects")) {
                return Ok(());
            }
            let Some(binding) = rbac::binding_from_object(&with_namespace(new, &t.namespace)) else { return Ok(()) };
            let role_resource = if binding.role_ref.kind == "Role" { "roles" } else { "clusterroles" };
            if may(&policy, user, "bind", role_resource, &t.namespace, &binding.role_ref.name) {
                return Ok(());
            }
            confirm(&policy, user, &t.namespace, policy.rules_of(&binding), &refused)
        }
        _ => Ok(()),
    }
}

fn with_namespace(obj: &Value, namespace: &str) -> Value {
    let mut obj = obj.clone();
    if !namespace.is_empty() {
        obj["metadata"]["namespace"] = json!(namespace);
    }
    obj
}

/// Whether `user` may `verb` the role named `name` (escalate a role, bind one).
fn may(policy: &Policy, user: &UserInfo, verb: &str, resource: &str, namespace: &str, name: &str) -> bool {
    let request = RequestInfo {
        verb: verb.into(),
        is_resource: true,
        group: GROUP.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..RequestInfo::default()
    };
    matches!(policy.authorize(user, &request), Decision::Allowed(_))
}

/// Ok when `user` holds every rule of `wanted` in `namespace` ("" for cluster-wide).
fn confirm(
    policy: &Policy,
    user: &UserInfo,
    namespace: &str,
    wanted: &[PolicyRule],
    refused: &(String, String),
) -> ApiResult<()> {
    let missing = rbac::uncovered(&policy.rules_for(user, namespace), wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let rules: Vec<String> = missing.iter().map(rbac::compact).collect();
    let why = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.username,
        groups.join(" "),
        rules.join("\n")
    );
    Err(forbidden(refused, why))
}

/// `roles.rbac.authorization.k8s.io "x" is forbidden: <why>`.
fn forbidden((qualified, name): &(String, String), why: String) -> ApiError {
    let kind = qualified.split('.').next().unwrap_or("");
    ApiError::forbidden(format!("{qualified} {name:?} is forbidden: {why}"))
        .with_details(json!({"name": name, "group": GROUP, "kind": kind}))
}
