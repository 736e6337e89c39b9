//! RBAC evaluation as the real authorizer does it, as pure functions over the roles and bindings:
//! which bindings apply to a user, whether a rule allows a request, the rules a user holds in a
//! namespace (for SelfSubjectRulesReview and escalation checks), and the real wording of a denial.

use serde::Deserialize;
use serde_json::Value;

use super::user::UserInfo;
use crate::request_info::RequestInfo;

/// One `rules` entry of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoleRef {
    pub kind: String,
    pub name: String,
}

/// A RoleBinding (with its namespace) or a ClusterRoleBinding (namespace empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

/// A Role (with its namespace) or a ClusterRole (namespace empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub namespace: String,
    pub rules: Vec<PolicyRule>,
}

/// Every role and binding of the cluster at one moment.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub roles: Vec<Role>,
    pub bindings: Vec<Binding>,
}

/// The authorizer's answer; `Allowed` names the binding, as SubjectAccessReview reasons do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed(String),
    Denied,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

/// Reads the `rules` of a Role or ClusterRole object (malformed rules grant nothing).
pub fn role_from_object(obj: &Value) -> Role {
    let rules = obj.get("rules").cloned().and_then(|r| serde_json::from_value(r).ok()).unwrap_or_default();
    let (name, namespace) = name_and_namespace(obj);
    Role { name, namespace, rules }
}

/// Reads a RoleBinding or ClusterRoleBinding object; None when its roleRef is malformed.
pub fn binding_from_object(obj: &Value) -> Option<Binding> {
    let role_ref = serde_json::from_value(obj.get("roleRef")?.clone()).ok()?;
    let subjects = obj.get("subjects").cloned().and_then(|s| serde_json::from_value(s).ok()).unwrap_or_default();
    let (name, namespace) = name_and_namespace(obj);
    Some(Binding { name, namespace, role_ref, subjects })
}

fn name_and_namespace(obj: &Value) -> (String, String) {
    let field = |k: &str| obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or("").to_string();
    (field("name"), field("namespace"))
}

impl Policy {
    /// Whether `user` may do `request`: ClusterRoleBindings first, then the RoleBindings of the
    /// request's namespace, the first allowing rule wins. Members of system:masters may do
    /// anything (the real server's privileged-group authorizer answers before RBAC).
    pub fn authorize(&self, user: &UserInfo, request: &RequestInfo) -> Decision {
        if user.is_privileged() {
            return Decision::Allowed(String::new());
        }
        for (binding, subject) in self.bindings_of(user, &request.namespace) {
            if self.rules_of(binding).iter().any(|rule| rule_allows(rule, request)) {
                return Decision::Allowed(format!("RBAC: allowed by {}", describe(binding, subject)));
            }
        }
        Decision::Denied
    }

    /// The rules `user` holds in `namespace` (cluster-wide ones included); "" for cluster scope.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        if user.is_privileged() {
            return vec![everything(), everything_non_resource()];
        }
        self.bindings_of(user, namespace).flat_map(|(binding, _)| self.rules_of(binding)).cloned().collect()
    }

    /// The bindings that apply to `user` for a request in `namespace`, with the subject that matched.
    fn bindings_of<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a Binding, &'a Subject)> + 'a {
        let cluster = self.bindings.iter().filter(|b| b.namespace.is_empty());
        let local = self.bindings.iter().filter(move |b| !namespace.is_empty() && b.namespace == namespace);
        cluster
            .chain(local)
            .filter_map(move |b| b.subjects.iter().find(|s| applies_to(s, user, &b.namespace)).map(|s| (b, s)))
    }

    /// A binding's rules: a Role of its namespace or a ClusterRole (missing roles grant nothing).
    pub fn rules_of(&self, binding: &Binding) -> &[PolicyRule] {
        let namespace = if binding.role_ref.kind == "Role" { binding.namespace.as_str() } else { "" };
        if binding.role_ref.kind == "Role" && namespace.is_empty() {
            return &[];
        }
        self.roles
            .iter()
            .find(|r| r.name == binding.role_ref.name && r.namespace == namespace)
            .map(|r| r.rules.as_slice())
            .unwrap_or(&[])
    }
}

fn applies_to(subject: &Subject, user: &UserInfo, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == user.username,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() { binding_namespace } else { subject.namespace.as_str() };
            user.service_account_ref() == Some((ns, subject.name.as_str()))
        }
        _ => false,
    }
}

/// `ClusterRoleBinding "b" of ClusterRole "r" to Group "g"`, as the real authorizer describes it.
fn describe(binding: &Binding, subject: &Subject) -> String {
    let subject_name = if subject.kind == "ServiceAccount" {
        let ns = if subject.namespace.is_empty() { &binding.namespace } else { &subject.namespace };
        format!("{}/{ns}", subject.name)
    } else {
        subject.name.clone()
    };
    let (kind, name) = if binding.namespace.is_empty() {
        ("ClusterRoleBinding", binding.name.clone())
    } else {
        ("RoleBinding", format!("{}/{}", binding.name, binding.namespace))
    };
    format!(
        "{kind} {name:?} of {} {:?} to {} {subject_name:?}",
        binding.role_ref.kind, binding.role_ref.name, subject.kind
    )
}

/// Every verb on every resource of every group (cluster-admin's first rule).
pub fn everything() -> PolicyRule {
    let all = vec!["*".to_string()];
    PolicyRule { verbs: all.clone(), api_groups: all.clone(), resources: all, ..PolicyRule::default() }
}

fn everything_non_resource() -> PolicyRule {
    let all = vec!["*".to_string()];
    PolicyRule { verbs: all.clone(), non_resource_urls: all, ..PolicyRule::default() }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// Whether one rule allows one request.
pub fn rule_allows(rule: &PolicyRule, request: &RequestInfo) -> bool {
    if !has(&rule.verbs, &request.verb) {
        return false;
    }
    if !request.is_resource {
        return rule.non_resource_urls.iter().any(|url| url_matches(url, &request.path));
    }
    has(&rule.api_groups, &request.group)
        && resource_matches(&rule.resources, &request.resource, &request.subresource)
        && (rule.resource_names.is_empty() || rule.resource_names.contains(&request.name))
}

/// `*`, the exact `resource[/subresource]`, or `*/subresource`.
fn resource_matches(resources: &[String], resource: &str, subresource: &str) -> bool {
    let combined = if subresource.is_empty() { resource.to_string() } else { format!("{resource}/{subresource}") };
    resources
        .iter()
        .any(|r| r == "*" || *r == combined || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource)))
}

/// `*`, the exact path, or a prefix ending in `*`.
fn url_matches(rule: &str, path: &str) -> bool {
    rule == "*" || rule == path || rule.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
}

/// The real server's 403 for an unauthorized request (`secrets is forbidden: User "x" cannot
/// list resource "secrets" in API group "" in the namespace "prism"`), with its Status details.
pub fn forbidden_message(user: &UserInfo, request: &RequestInfo) -> String {
    let who = &user.username;
    if !request.is_resource {
        return format!("forbidden: User {who:?} cannot {} path {:?}", request.verb, request.path);
    }
    let resource = request.resource_path();
    let scope = if request.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", request.namespace)
    };
    let reason =
        format!("User {who:?} cannot {} resource {resource:?} in API group {:?} {scope}", request.verb, request.group);
    let qualified = if request.group.is_empty() {
        request.resource.clone()
    } else {
        format!("{}.{}", request.resource, request.group)
    };
    if request.name.is_empty() {
        format!("{qualified} is forbidden: {reason}")
    } else {
        format!("{qualified} {:?} is forbidden: {reason}", request.name)
    }
}

/// The rules of `wanted` that `held` does not cover, each broken down to one verb on one thing
/// (the real escalation check compares such pieces).
pub fn uncovered(held: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    wanted.iter().flat_map(pieces).filter(|piece| !held.iter().any(|h| covers(h, piece))).collect()
}

/// One verb on one (group, resource, name) or one non-resource URL.
fn pieces(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |v: &String| vec![v.clone()];
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for url in &rule.non_resource_urls {
            out.push(PolicyRule { verbs: one(verb), non_resource_urls: one(url), ..PolicyRule::default() });
        }
        for group in &rule.api_groups {
            for resource in &rule.resources {
                let piece = |names: Vec<String>| PolicyRule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    resource_names: names,
                    ..PolicyRule::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(piece(Vec::new()));
                } else {
                    out.extend(rule.resource_names.iter().map(|n| piece(one(n))));
                }
            }
        }
    }
    out
}

/// Whether `held` grants everything one piece grants.
fn covers(held: &PolicyRule, piece: &PolicyRule) -> bool {
    let verb = &piece.verbs[0];
    if !has(&held.verbs, verb) {
        return false;
    }
    if let Some(url) = piece.non_resource_urls.first() {
        return held.non_resource_urls.iter().any(|h| url_matches(h, url));
    }
    let (resource, subresource) = piece.resources[0].split_once('/').unwrap_or((&piece.resources[0], ""));
    has(&held.api_groups, &piece.api_groups[0])
        && (held.resources.iter().any(|r| r == "*" || *r == piece.resources[0])
            || (resource != "*" && resource_matches(&held.resources, resource, subresource)))
        && (held.resource_names.is_empty()
            || piece.resource_names.first().is_some_and(|n| held.resource_names.contains(n)))
}

/// A rule as the real escalation error prints it (Go's `%q` of each non-empty list):
/// `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`.
pub fn compact(rule: &PolicyRule) -> String {
    let list = |v: &[String]| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" ");
    let mut parts = Vec::new();
    for (name, values) in [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ] {
        if !values.is_empty() {
            parts.push(format!("{name}:[{}]", list(values)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> RequestInfo {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        RequestInfo {
            verb: verb.into(),
            is_resource: true,
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..RequestInfo::default()
        }
    }

    fn path(verb: &str, path: &str) -> RequestInfo {
        RequestInfo { verb: verb.into(), path: path.into(), ..RequestInfo::default() }
    }

    fn rule(v: Value) -> PolicyRule {
        serde_json::from_value(v).expect("rule")
    }

    fn policy() -> Policy {
        let role = |name: &str, ns: &str, rules: Value| {
            role_from_object(&json!({"metadata": {"name": name, "namespace": ns}, "rules": rules}))
        };
        let binding = |name: &str, ns: &str, kind: &str, role: &str, subjects: Value| {
            binding_from_object(&json!({"metadata": {"name": name, "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}, "subjects": subjects}))
            .expect("binding")
        };
        Policy {
            roles: vec![
                role(
                    "reader",
                    "",
                    json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                                          {"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}]),
                ),
                role(
                    "lease",
                    "ops",
                    json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                             "resourceNames": ["leader"], "verbs": ["get", "update"]}]),
                ),
                role("scaler", "", json!([{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]}])),
            ],
            bindings: vec![
                binding(
                    "all-sa",
                    "",
                    "ClusterRole",
                    "reader",
                    json!([{"kind": "Group", "name": "system:serviceaccounts:apps"}]),
                ),
                binding("lease", "ops", "Role", "lease", json!([{"kind": "ServiceAccount", "name": "op"}])),
                binding("scale", "apps", "ClusterRole", "scaler", json!([{"kind": "User", "name": "alice"}])),
            ],
        }
    }

    #[test]
    fn bindings_apply_by_user_group_and_service_account() {
        let p = policy();
        let op = UserInfo::service_account("ops", "op", "1");
        let app = UserInfo::service_account("apps", "web", "2");
        let alice = UserInfo::user("alice", &[]);
        assert!(p.authorize(&app, &request("list", "", "configmaps", "", "")).allowed(), "group of the SA's namespace");
        assert!(!p.authorize(&op, &request("list", "", "configmaps", "x", "")).allowed());
        assert!(p.authorize(&op, &request("get", "coordination.k8s.io", "leases", "ops", "leader")).allowed());
        assert!(!p.authorize(&op, &request("get", "coordination.k8s.io", "leases", "ops", "other")).allowed(), "names");
        assert!(!p.authorize(&op, &request("get", "coordination.k8s.io", "leases", "apps", "leader")).allowed(), "ns");
        assert!(!p.authorize(&op, &request("create", "coordination.k8s.io", "leases", "ops", "")).allowed());
        assert!(p.authorize(&alice, &request("patch", "apps", "deployments/scale", "apps", "d")).allowed(), "*/scale");
        assert!(!p.authorize(&alice, &request("patch", "apps", "deployments", "apps", "d")).allowed());
        assert!(
            !p.authorize(&alice, &request("patch", "apps", "deployments/scale", "", "d")).allowed(),
            "bound in apps"
        );
        assert!(p.authorize(&UserInfo::admin(), &request("delete", "x", "y", "", "")).allowed());
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix_and_only_cluster_wide() {
        let p = policy();
        let app = UserInfo::service_account("apps", "web", "2");
        assert!(p.authorize(&app, &path("get", "/healthz")).allowed());
        assert!(p.authorize(&app, &path("get", "/apis/apps/v1")).allowed());
        assert!(!p.authorize(&app, &path("get", "/api/v1")).allowed());
        assert!(!p.authorize(&app, &path("post", "/healthz")).allowed());
    }

    #[test]
    fn the_reason_names_the_binding_as_the_real_authorizer() {
        let p = policy();
        let op = UserInfo::service_account("ops", "op", "1");
        let d = p.authorize(&op, &request("get", "coordination.k8s.io", "leases", "ops", "leader"));
        assert_eq!(
            d,
            Decision::Allowed(
                r#"RBAC: allowed by RoleBinding "lease/ops" of Role "lease" to ServiceAccount "op/ops""#.into()
            )
        );
    }

    #[test]
    fn denials_are_worded_as_the_real_server_words_them() {
        let sa = UserInfo::service_account("prism-system", "prism-operator", "1");
        assert_eq!(
            forbidden_message(&sa, &request("list", "", "secrets", "prism", "")),
            r#"secrets is forbidden: User "system:serviceaccount:prism-system:prism-operator" cannot list resource "secrets" in API group "" in the namespace "prism""#
        );
        assert_eq!(
            forbidden_message(&sa, &request("patch", "apps", "deployments/status", "", "d")),
            r#"deployments.apps "d" is forbidden: User "system:serviceaccount:prism-system:prism-operator" cannot patch resource "deployments/status" in API group "apps" at the cluster scope"#
        );
        assert_eq!(
            forbidden_message(&sa, &path("get", "/metrics")),
            r#"forbidden: User "system:serviceaccount:prism-system:prism-operator" cannot get path "/metrics""#
        );
    }

    #[test]
    fn escalation_compares_single_permissions() {
        let held = vec![
            rule(json!({"apiGroups": [""], "resources": ["configmaps", "pods/log"], "verbs": ["get", "list"]})),
            rule(json!({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["*"]})),
            rule(json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]})),
        ];
        let ok = vec![
            rule(json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]})),
            rule(json!({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]})),
            rule(json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]})),
        ];
        assert_eq!(uncovered(&held, &ok), Vec::<PolicyRule>::new());
        let more = vec![
            rule(json!({"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get"]})),
            rule(json!({"apiGroups": ["*"], "resources": ["configmaps"], "verbs": ["get"]})),
        ];
        let missing: Vec<String> = uncovered(&held, &more).iter().map(compact).collect();
        assert_eq!(
            missing,
            [
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#,
                r#"{APIGroups:["*"], Resources:["configmaps"], Verbs:["get"]}"#
            ]
        );
    }
}
