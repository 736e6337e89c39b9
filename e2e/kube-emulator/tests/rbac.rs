//! RBAC authorization as kube-apiserver 1.33 enforces it, with the kube client and kubectl:
//! Roles and ClusterRoles bound to users, groups and ServiceAccounts, resourceNames,
//! subresources, non-resource URLs, aggregated ClusterRoles, the real 403, access reviews
//! (`kubectl auth can-i`), impersonation and escalation prevention.

mod common;

use common::kubectl::Env;
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// Creates any object as the admin (kind and apiVersion decide where).
async fn create(admin: &Client, obj: Value) {
    let (group, version) = obj["apiVersion"].as_str().and_then(|v| v.rsplit_once('/')).unwrap_or(("", "v1"));
    let kind = obj["kind"].as_str().expect("kind");
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let ns = obj["metadata"]["namespace"].as_str();
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &resource),
        None => Api::all_with(admin.clone(), &resource),
    };
    let obj: DynamicObject = serde_json::from_value(obj).expect("object");
    api.create(&PostParams::default(), &obj).await.expect("create");
}

async fn namespace(admin: &Client, name: &str) {
    create(admin, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})).await;
}

/// The namespace `team` and a token of its ServiceAccount `app`.
async fn team_app(admin: &Client) -> String {
    namespace(admin, "team").await;
    common::service_account_token(admin, "team", "app").await
}

fn role(kind: &str, name: &str, ns: Option<&str>, rules: Value) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": rules})
}

fn binding(kind: &str, name: &str, ns: Option<&str>, role_kind: &str, role: &str, subjects: Value) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "subjects": subjects,
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}})
}

fn sa_subject(ns: &str, name: &str) -> Value {
    json!([{"kind": "ServiceAccount", "name": name, "namespace": ns}])
}

#[tokio::test]
async fn a_role_allows_its_verbs_in_its_namespace_and_the_rest_is_403() {
    let (emulator, admin) = common::in_process();
    let token = team_app(&admin).await;
    create(
        &admin,
        role(
            "Role",
            "reader",
            Some("team"),
            json!([
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["mine"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps/status", "namespaces"], "verbs": ["patch"]}]),
        ),
    )
    .await;
    create(&admin, binding("RoleBinding", "reader", Some("team"), "Role", "reader", sa_subject("team", "app"))).await;
    let app = common::client_with_token(&emulator, &token);

    let configmaps: Api<ConfigMap> = Api::namespaced(app.clone(), "team");
    configmaps.list(&ListParams::default()).await.expect("list configmaps in team");
    let err = Api::<ConfigMap>::namespaced(app.clone(), "default").list(&ListParams::default()).await.expect_err("403");
    let status = common::status_of(err);
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert_eq!(
        status.message,
        r#"configmaps is forbidden: User "system:serviceaccount:team:app" cannot list resource "configmaps" in API group "" in the namespace "default""#
    );
    let secrets: Api<Secret> = Api::namespaced(app.clone(), "team");
    let err = secrets.list(&ListParams::default()).await.expect_err("no list of secrets");
    assert_eq!(
        common::status_of(err).message,
        r#"secrets is forbidden: User "system:serviceaccount:team:app" cannot list resource "secrets" in API group "" in the namespace "team""#
    );
    assert_eq!(
        common::status_of(secrets.get("mine").await.expect_err("absent")).code,
        404,
        "allowed by name, then not found"
    );
    let err = secrets.get("theirs").await.expect_err("403");
    assert_eq!(
        common::status_of(err).message,
        r#"secrets "theirs" is forbidden: User "system:serviceaccount:team:app" cannot get resource "secrets" in API group "" in the namespace "team""#
    );
    // A subresource is its own resource.
    let status = json!({"status": {}});
    let err = configmaps.patch("c", &PatchParams::default(), &Patch::Merge(&status)).await.expect_err("403");
    assert!(common::status_of(err).message.contains(r#"cannot patch resource "configmaps" in API group"#));
    let err = Api::<Namespace>::all(app.clone()).list(&ListParams::default()).await.expect_err("cluster scope");
    assert!(
        common::status_of(err)
            .message
            .ends_with(r#"cannot list resource "namespaces" in API group "" at the cluster scope"#)
    );
}

#[tokio::test]
async fn groups_users_cluster_bindings_and_non_resource_urls() {
    let (emulator, admin) = common::in_process();
    let token = team_app(&admin).await;
    create(
        &admin,
        role(
            "ClusterRole",
            "cm-reader",
            None,
            json!([
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
        {"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]}]),
        ),
    )
    .await;
    let group =
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts:team"}]);
    create(&admin, binding("ClusterRoleBinding", "team-reads", None, "ClusterRole", "cm-reader", group)).await;
    let app = common::client_with_token(&emulator, &token);
    Api::<ConfigMap>::all(app.clone()).list(&ListParams::default()).await.expect("all namespaces, by group");
    let get = |path: &str| http::Request::get(path).body(vec![]).expect("request");
    // Allowed, then not served: the emulator has no /metrics.
    let err = app.request_text(get("/metrics")).await.expect_err("not served");
    assert_eq!(common::status_of(err).code, 404);
    let err = app.request_text(get("/logs")).await.expect_err("403");
    assert_eq!(
        common::status_of(err).message,
        r#"forbidden: User "system:serviceaccount:team:app" cannot get path "/logs""#
    );
    let version = app.apiserver_version().await.expect("/version: every authenticated user");
    assert_eq!(version.minor, "33");

    // A RoleBinding of a ClusterRole grants it in the binding's namespace only, to a user by name.
    create(
        &admin,
        binding(
            "RoleBinding",
            "alice",
            Some("team"),
            "ClusterRole",
            "cm-reader",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]),
        ),
    )
    .await;
    let review = |ns: &str| access_review_as("alice", &[], "list", "", "configmaps", ns);
    assert!(allowed(&admin, review("team")).await);
    assert!(!allowed(&admin, review("default")).await);
}

fn access_review_as(user: &str, groups: &[&str], verb: &str, group: &str, resource: &str, ns: &str) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": user, "groups": groups,
                    "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": ns}}})
}

async fn allowed(client: &Client, review: Value) -> bool {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let review: SubjectAccessReview = serde_json::from_value(review).expect("review");
    api.create(&PostParams::default(), &review).await.expect("review").status.expect("status").allowed
}

#[tokio::test]
async fn access_and_rules_reviews_answer_for_their_subject() {
    let (emulator, admin) = common::in_process();
    let token = team_app(&admin).await;
    create(&admin, role("Role", "lease", Some("team"), json!([
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["leader"], "verbs": ["get", "update"]}]))).await;
    create(&admin, binding("RoleBinding", "lease", Some("team"), "Role", "lease", sa_subject("team", "app"))).await;
    let app = common::client_with_token(&emulator, &token);
    let ssar = |verb: &str, name: &str| {
        serde_json::from_value::<SelfSubjectAccessReview>(json!({"spec": {"resourceAttributes": {
            "verb": verb, "group": "coordination.k8s.io", "resource": "leases", "namespace": "team", "name": name}}}))
        .expect("review")
    };
    let reviews: Api<SelfSubjectAccessReview> = Api::all(app.clone());
    let answer =
        reviews.create(&PostParams::default(), &ssar("get", "leader")).await.expect("ssar").status.expect("status");
    assert!(answer.allowed);
    assert_eq!(
        answer.reason.as_deref(),
        Some(r#"RBAC: allowed by RoleBinding "lease/team" of Role "lease" to ServiceAccount "app/team""#)
    );
    assert!(
        !reviews.create(&PostParams::default(), &ssar("get", "other")).await.expect("ssar").status.expect("s").allowed
    );
    assert!(
        !reviews.create(&PostParams::default(), &ssar("create", "")).await.expect("ssar").status.expect("s").allowed
    );

    let rules: Api<SelfSubjectRulesReview> = Api::all(app.clone());
    let review = serde_json::from_value(json!({"spec": {"namespace": "team"}})).expect("review");
    let status = rules.create(&PostParams::default(), &review).await.expect("rules").status.expect("status");
    let lease =
        status.resource_rules.iter().find(|r| r.resources.as_ref().is_some_and(|r| r.contains(&"leases".to_string())));
    assert_eq!(lease.and_then(|r| r.resource_names.clone()), Some(vec!["leader".to_string()]));
    assert!(
        status
            .non_resource_rules
            .iter()
            .any(|r| r.non_resource_urls.as_ref().is_some_and(|u| u.contains(&"/version".to_string())))
    );

    // A SubjectAccessReview needs its own permission, and says what it would be for another user.
    let sar =
        access_review_as("system:serviceaccount:team:app", &[], "update", "coordination.k8s.io", "leases", "team");
    let api: Api<SubjectAccessReview> = Api::all(app.clone());
    let review: SubjectAccessReview = serde_json::from_value(sar.clone()).expect("review");
    let err = api.create(&PostParams::default(), &review).await.expect_err("403");
    assert_eq!(common::status_of(err).code, 403);
    assert!(!allowed(&admin, sar).await, "no resource name: the named rule does not apply");
    let invalid =
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "x"}});
    let review: SubjectAccessReview = serde_json::from_value(invalid).expect("review");
    let err =
        Api::<SubjectAccessReview>::all(admin.clone()).create(&PostParams::default(), &review).await.expect_err("422");
    assert_eq!(
        common::status_of(err).message,
        r#"SubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#
    );
}

#[tokio::test]
async fn aggregated_cluster_roles_gather_the_rules_of_the_roles_they_select() {
    let (emulator, admin) = common::in_process();
    let token = common::service_account_token(&admin, "default", "viewer").await;
    let mut aggregate = role("ClusterRole", "viewing", None, json!([]));
    aggregate["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-view": "true"}}]});
    create(&admin, aggregate).await;
    create(
        &admin,
        binding("ClusterRoleBinding", "viewing", None, "ClusterRole", "viewing", sa_subject("default", "viewer")),
    )
    .await;
    let viewer = common::client_with_token(&emulator, &token);
    let configmaps: Api<ConfigMap> = Api::all(viewer.clone());
    assert_eq!(common::status_of(configmaps.list(&ListParams::default()).await.expect_err("nothing yet")).code, 403);
    let mut part = role(
        "ClusterRole",
        "view-configmaps",
        None,
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    );
    part["metadata"]["labels"] = json!({"example.com/aggregate-to-view": "true"});
    create(&admin, part).await;
    emulator.settle().await;
    configmaps.list(&ListParams::default()).await.expect("aggregated");
    let roles: Api<DynamicObject> = Api::all_with(
        admin.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRole")),
    );
    let viewing = roles.get("viewing").await.expect("role");
    assert_eq!(viewing.data["rules"], json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]));
}

#[tokio::test]
async fn the_built_in_admin_edit_and_view_roles_aggregate_as_a_real_clusters_do() {
    let (emulator, admin) = common::in_process();
    let token = team_app(&admin).await;
    namespace(&admin, "other").await;
    // `edit` bound in the team's namespace, as a platform team hands a namespace to an app team.
    create(&admin, binding("RoleBinding", "app-edit", Some("team"), "ClusterRole", "edit", sa_subject("team", "app")))
        .await;
    emulator.settle().await;
    let app = common::client_with_token(&emulator, &token);
    let configmaps: Api<ConfigMap> = Api::namespaced(app.clone(), "team");
    let config: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("configmap");
    configmaps.create(&PostParams::default(), &config).await.expect("edit writes ConfigMaps in its namespace");
    Api::<Secret>::namespaced(app.clone(), "team").list(&ListParams::default()).await.expect("edit reads Secrets");
    let elsewhere = Api::<ConfigMap>::namespaced(app.clone(), "other").list(&ListParams::default()).await;
    assert_eq!(common::status_of(elsewhere.expect_err("403")).code, 403, "only where it is bound");
    let roles = Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(app.clone(), "team");
    let status = common::status_of(roles.list(&ListParams::default()).await.expect_err("403"));
    assert!(status.message.contains(r#"cannot list resource "roles""#), "roles are admin's: {}", status.message);

    // A CRD's roles extend them by label: edit gets widgets, and admin gets what edit has.
    let mut widgets = role(
        "ClusterRole",
        "widgets-edit",
        None,
        json!([{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "create"]}]),
    );
    widgets["metadata"]["labels"] = json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"});
    create(&admin, widgets).await;
    emulator.settle().await;
    let cluster_roles: Api<DynamicObject> = Api::all_with(
        admin.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRole")),
    );
    let has_widgets = |role: &DynamicObject| {
        role.data["rules"].as_array().into_iter().flatten().any(|r| r["resources"] == json!(["widgets"]))
    };
    for (name, expected) in [("edit", true), ("admin", true), ("view", false)] {
        let role = cluster_roles.get(name).await.expect(name);
        assert_eq!(has_widgets(&role), expected, "{name}: {}", role.data["rules"]);
    }
    let view = cluster_roles.get("view").await.expect("view");
    let view_verbs: Vec<&Value> = view.data["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["verbs"].as_array().into_iter().flatten())
        .collect();
    assert!(
        view_verbs.iter().all(|v| ["get", "list", "watch"].contains(&v.as_str().unwrap_or_default())),
        "{view_verbs:?}"
    );
    let edit = cluster_roles.get("edit").await.expect("edit");
    assert!(
        view.data["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|r| edit.data["rules"].as_array().is_some_and(|e| e.contains(r))),
        "edit holds every rule of view"
    );
}

#[tokio::test]
async fn escalation_is_refused_unless_escalate_or_bind_is_granted() {
    let (emulator, admin) = common::in_process();
    namespace(&admin, "team").await;
    let token = common::service_account_token(&admin, "team", "lead").await;
    create(
        &admin,
        role(
            "Role",
            "rbac-manager",
            Some("team"),
            json!([
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
        ),
    )
    .await;
    create(
        &admin,
        binding("RoleBinding", "rbac-manager", Some("team"), "Role", "rbac-manager", sa_subject("team", "lead")),
    )
    .await;
    let lead = common::client_with_token(&emulator, &token);
    let roles: Api<DynamicObject> = Api::namespaced_with(
        lead.clone(),
        "team",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "Role")),
    );
    let held = serde_json::from_value(role(
        "Role",
        "cm",
        Some("team"),
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
    ))
    .expect("role");
    roles.create(&PostParams::default(), &held).await.expect("a role within what it holds");
    let more = serde_json::from_value(role(
        "Role",
        "secrets",
        Some("team"),
        json!([{"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get"]}]),
    ))
    .expect("role");
    let err = roles.create(&PostParams::default(), &more).await.expect_err("escalation");
    assert_eq!(
        common::status_of(err).message,
        "roles.rbac.authorization.k8s.io \"secrets\" is forbidden: user \"system:serviceaccount:team:lead\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"
    );
    // Binding a role it does not hold: refused, until it may bind that role.
    create(
        &admin,
        role(
            "Role",
            "secret-reader",
            Some("team"),
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        ),
    )
    .await;
    let bindings: Api<DynamicObject> = Api::namespaced_with(
        lead.clone(),
        "team",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "RoleBinding")),
    );
    let bind = serde_json::from_value(binding(
        "RoleBinding",
        "b",
        Some("team"),
        "Role",
        "secret-reader",
        sa_subject("team", "lead"),
    ))
    .expect("binding");
    let err = bindings.create(&PostParams::default(), &bind).await.expect_err("escalation by binding");
    assert!(common::status_of(err).message.starts_with(
        "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"system:serviceaccount:team:lead\""
    ));
    create(&admin, role("Role", "binder", Some("team"), json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "resourceNames": ["secret-reader"], "verbs": ["bind"]}]))).await;
    create(&admin, binding("RoleBinding", "binder", Some("team"), "Role", "binder", sa_subject("team", "lead"))).await;
    bindings.create(&PostParams::default(), &bind).await.expect("bind is granted");
    Api::<Secret>::namespaced(lead.clone(), "team").get("x").await.expect_err("404 now, not 403");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_impersonation_and_the_forbidden_message() {
    let env = Env::start().await;
    env.ok(&["create", "namespace", "team"]).await;
    env.ok(&["-n", "team", "create", "serviceaccount", "app"]).await;
    env.ok(&["-n", "team", "create", "role", "reader", "--verb=get,list", "--resource=configmaps"]).await;
    env.ok(&["-n", "team", "create", "rolebinding", "reader", "--role=reader", "--serviceaccount=team:app"]).await;
    let sa = "system:serviceaccount:team:app";
    assert_eq!(env.ok(&["auth", "can-i", "list", "configmaps", "-n", "team", "--as", sa]).await.trim(), "yes");
    let out = env.run(&["auth", "can-i", "list", "secrets", "-n", "team", "--as", sa]).await;
    assert!(!out.ok);
    assert_eq!(out.stdout.trim(), "no");
    assert_eq!(env.ok(&["auth", "can-i", "delete", "nodes"]).await.trim(), "yes", "the admin");
    let token = env.ok(&["-n", "team", "create", "token", "app"]).await;
    let kubeconfig = env.file("app.kubeconfig", &env.em.token_kubeconfig_yaml(token.trim()));
    let app = std::path::Path::new(&kubeconfig);
    let out = env.run_with(app, &["auth", "can-i", "get", "configmaps", "-n", "team"]).await;
    assert_eq!(out.stdout.trim(), "yes", "{}", out.stderr);
    let out = env.run_with(app, &["auth", "can-i", "--list", "-n", "team"]).await;
    assert!(
        out.ok && out.stdout.contains("configmaps") && out.stdout.contains("[get list]"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = env.run_with(app, &["-n", "team", "get", "secrets"]).await;
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        r#"Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:team:app" cannot list resource "secrets" in API group "" in the namespace "team""#
    );
    let out = env.run_with(app, &["-n", "team", "get", "configmaps", "--as", "someone"]).await;
    assert!(out.stderr.contains(r#"users "someone" is forbidden: User "system:serviceaccount:team:app" cannot impersonate resource "users" in API group "" at the cluster scope"#), "{}", out.stderr);
}
