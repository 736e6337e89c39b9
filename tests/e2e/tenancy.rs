//! Scenario: app teams in their own namespaces (issue 18), with the emulator enforcing RBAC. The
//! platform team's PrismCluster admits namespaces labelled `prism.io/tenant=true` and caps what
//! tenants ask; two app teams, each a user with the built-in `edit` role in its own namespace,
//! attach PrismNamespaces and get runners (in the platform's namespace) and connection details (in
//! theirs), and cannot touch each other's or the platform's objects. Then: a namespace outside
//! the selector (refused at admission, not served, relabelled: served without re-creating), a name
//! taken first elsewhere, a tenant namespace deleted, a finalizer removed by force.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use prism_api::v1beta1::{NamespacePhase, PrismNamespace, PrismPattern};
use serde_json::json;

use crate::clusters::{LIMIT, condition, converged, kubectl_ok, routes, wait_for};
use crate::harness::{Env, Kubectl};

const PLATFORM_CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: shared
spec:
  patterns:
    - {name: keyvalue, backends: [memstore]}
    - {name: consumer, backends: [memstore]}
    - {name: producer, backends: [memstore]}
  tenancy:
    namespaces:
      from: Selector
      selector: {matchLabels: {prism.io/tenant: "true"}}
    limits: {maxSessions: 100, maxRequestsPerSecond: 1000, maxDedicatedRunners: 2, patterns: [keyvalue, consumer]}
"#;

/// An app team: its user and its namespace.
struct Team {
    user: &'static str,
    namespace: String,
}

impl Team {
    async fn kubectl(&self, env: &Env, args: &[&str], input: Option<&str>) -> Kubectl {
        let mut all = vec!["--as", self.user];
        all.extend_from_slice(args);
        env.kubectl_in(&self.namespace, &all, input).await
    }

    /// kubectl as this team in `namespace`, expected to be refused with a 403: prints it.
    async fn forbidden(&self, env: &Env, namespace: &str, args: &[&str]) {
        let mut all = vec!["--as", self.user];
        all.extend_from_slice(args);
        let out = env.kubectl_in(namespace, &all, None).await;
        println!("{} in {namespace}: kubectl {}\n  {}", self.user, args.join(" "), out.stderr.trim());
        assert!(!out.success, "{} may not: kubectl {}", self.user, args.join(" "));
        assert!(out.stderr.contains("Forbidden") || out.stderr.contains("forbidden"), "{}", out.stderr);
    }

    /// Applies a PrismNamespace manifest as this team.
    async fn apply(&self, env: &Env, manifest: &str) -> Kubectl {
        self.kubectl(env, &["apply", "--server-side", "-f", "-"], Some(manifest)).await
    }

    fn namespaces(&self, env: &Env) -> Api<PrismNamespace> {
        Api::namespaced(env.client.clone(), &self.namespace)
    }
}

/// A PrismNamespace of `team` on the platform's cluster.
fn tenant_namespace(env: &Env, name: &str, patterns: &[&str], extra: &str) -> String {
    format!(
        "apiVersion: prism.io/v1beta1\nkind: PrismNamespace\nmetadata: {{name: {name}}}\nspec:\n  cluster: shared\n  \
         clusterNamespace: {}\n  patterns: [{}]\n  isolation: namespace\n{extra}",
        env.namespace,
        patterns.join(", ")
    )
}

/// Creates namespace `name` (labelled a tenant when `tenant`) and binds `edit` there to `user`.
async fn team(env: &Env, suffix: &str, user: &'static str, tenant: bool) -> Team {
    let namespace = format!("{}-{suffix}", env.namespace);
    let labels = if tenant { json!({"prism.io/tenant": "true"}) } else { json!({}) };
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": namespace, "labels": labels}})).expect("namespace");
    Api::<Namespace>::all(env.client.clone()).create(&PostParams::default(), &ns).await.expect("team namespace");
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": format!("{user}-edit"), "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]});
    let api: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(env.client.clone(), &namespace);
    api.create(&PostParams::default(), &serde_json::from_value(binding).expect("binding")).await.expect("binding");
    Team { user, namespace }
}

/// The chart's aggregated roles, as `helm install` creates them (the emulator aggregates them
/// into `view`, `edit` and `admin`).
async fn chart_user_roles(client: &Client) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/prism-operator/templates/user-roles.yaml"
    ))
    .expect("user-roles.yaml");
    let api: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    for document in text.split("\n---\n") {
        // The template without its Helm directives: the rules and the aggregation labels.
        let from = document.find("apiVersion:").expect("a ClusterRole");
        let plain: String = document[from..]
            .replace("{{ $fullname }}", "prism-operator")
            .lines()
            .filter(|l| !l.contains("{{"))
            .collect::<Vec<_>>()
            .join("\n");
        let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_saphyr::from_str(&plain).expect("ClusterRole");
        api.create(&PostParams::default(), &role).await.expect("aggregated ClusterRole");
    }
}

async fn relabel(env: &Env, namespace: &str, tenant: bool) {
    let value = if tenant { json!("true") } else { json!(null) };
    let patch = json!({"metadata": {"labels": {"prism.io/tenant": value}}});
    Api::<Namespace>::all(env.client.clone())
        .patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("relabel");
}

/// The PrismNamespace once it is in `phase` for its current generation.
async fn in_phase(env: &Env, api: &Api<PrismNamespace>, name: &str, phase: NamespacePhase) -> PrismNamespace {
    wait_for(env, &format!("PrismNamespace {name} {phase:?}"), LIMIT, || async {
        let n = api.get_opt(name).await.ok().flatten()?;
        let status = n.status.as_ref()?;
        (status.phase == Some(phase) && status.observed_generation == n.metadata.generation).then_some(n)
    })
    .await
}

/// A condition of `namespace` as (status, reason, message).
fn cond(namespace: &PrismNamespace, type_: &str) -> (String, String, String) {
    let conditions = namespace.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let c = condition(conditions, type_).unwrap_or_else(|| panic!("{type_} in {conditions:?}"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// The routes' entry of Prism namespace `name`, if the proxy serves it.
async fn served(env: &Env, name: &str) -> Option<serde_json::Value> {
    let r = routes(env, "shared").await?;
    r["namespaces"].as_array()?.iter().find(|n| n["name"] == name).cloned()
}

async fn wait_served(env: &Env, name: &str, yes: bool) -> Option<serde_json::Value> {
    let what = format!("the routes {} {name}", if yes { "serving" } else { "without" });
    wait_for(env, &what, LIMIT, || async {
        let entry = served(env, name).await;
        (entry.is_some() == yes).then_some(entry)
    })
    .await
}

/// Waits until the object `name` of `api` is gone.
async fn wait_gone<K>(env: &Env, what: &str, api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(env, what, LIMIT, || async { api.get_opt(name).await.ok()?.is_none().then_some(()) }).await;
}

/// Resource versions of what must not be touched, by name.
async fn versions<K>(api: &Api<K>, names: &[&str]) -> BTreeMap<String, Option<String>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut all = BTreeMap::new();
    for name in names {
        let found = api.get_opt(name).await.ok().flatten();
        all.insert(name.to_string(), found.and_then(|o| o.meta().resource_version.clone()));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_teams_attach_their_namespaces_and_cannot_touch_each_others() {
    let mut env = Env::new("tenancy").await;
    if !env.emulated() {
        eprintln!("skipped: needs the emulator (users by impersonation, a webhook it reaches, simulated readiness)");
        return;
    }
    env.watch_all_namespaces = true;
    env.start_operator("a", &[]);
    env.webhook_installed().await;
    chart_user_roles(&env.client).await;
    env.apply(PLATFORM_CLUSTER).await;
    converged(&env, "shared").await;
    let (alice, bob, carol) = (
        team(&env, "a", "alice", true).await,
        team(&env, "b", "bob", true).await,
        team(&env, "c", "carol", false).await,
    );

    // --- Two app teams attach their PrismNamespaces, each in its own namespace. --------------
    let orders = tenant_namespace(&env, "orders", &["keyvalue"], "  quota: {maxSessions: 500}\n");
    let out = alice.apply(&env, &orders).await;
    assert!(out.success, "alice applies orders: {}", out.stderr);
    assert!(out.stderr.contains("QuotaClamped"), "the webhook warns about the clamp: {}", out.stderr);
    println!("alice's apply warned: {}", out.stderr.trim());
    let out = bob.apply(&env, &tenant_namespace(&env, "billing", &["consumer"], "")).await;
    assert!(out.success, "bob applies billing: {}", out.stderr);

    let a_orders = in_phase(&env, &alice.namespaces(&env), "orders", NamespacePhase::Ready).await;
    in_phase(&env, &bob.namespaces(&env), "billing", NamespacePhase::Ready).await;
    let (status, reason, message) = cond(&a_orders, "QuotaClamped");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "AboveClusterLimits"), "{message}");
    assert!(message.contains("spec.quota.maxSessions 500 to 100"), "{message}");
    let entry = wait_served(&env, "orders", true).await.expect("served");
    assert_eq!(entry["quota"]["maxSessions"], 100, "the proxy enforces the cap: {entry}");
    assert_eq!(entry["quota"]["maxRequestsPerSecond"], 1000, "an unlimited ask takes the cap: {entry}");
    wait_served(&env, "billing", true).await;
    // The platform team sees its tenants in the cluster's status, with their namespaces.
    let clusters = env.api::<prism_api::v1beta1::PrismCluster>();
    let summary = wait_for(&env, "the tenants in the cluster's status", LIMIT, || async {
        let status = clusters.get("shared").await.ok()?.status?;
        let tenants: Vec<(String, Option<String>)> =
            status.namespace_status.into_iter().map(|n| (n.name, n.namespace)).collect();
        (tenants.len() == 2).then_some(tenants)
    })
    .await;
    assert!(summary.contains(&("orders".to_string(), Some(alice.namespace.clone()))), "{summary:?}");

    // Runners in the platform's namespace, tied to their tenant by labels (no owner reference).
    let runners = env.api::<PrismPattern>();
    let runner = runners.get("orders-keyvalue").await.expect("alice's runner");
    assert!(runner.owner_references().is_empty(), "{:?}", runner.owner_references());
    assert_eq!(runner.labels().get("prism.io/tenant-namespace"), Some(&alice.namespace));
    assert_eq!(runner.labels().get("prism.io/tenant-uid"), a_orders.metadata.uid.as_ref());
    runners.get("billing-consumer").await.expect("bob's runner");
    // Connection details in the team's namespace, named in the status, no credentials.
    let connection = a_orders.status.as_ref().and_then(|s| s.connection.clone()).expect("connection");
    let endpoint = format!("shared-proxy.{}.svc:8980", env.namespace);
    assert_eq!(connection.endpoint, endpoint);
    let out = alice.kubectl(&env, &["get", "configmap", &connection.config_map, "-o", "json"], None).await;
    assert!(out.success, "alice reads her connection details: {}", out.stderr);
    let config: ConfigMap = serde_json::from_str(&out.stdout).expect("ConfigMap");
    let data = config.data.unwrap_or_default();
    assert_eq!(data.get("PRISM_PROXY_ADDRESS"), Some(&endpoint));
    assert_eq!(data.get("PRISM_NAMESPACE").map(String::as_str), Some("orders"));
    assert!(data.keys().all(|k| !k.to_lowercase().contains("password")), "{data:?}");
    let listed = alice.kubectl(&env, &["get", "prismnamespaces"], None).await;
    println!("alice: kubectl get prismnamespaces\n{}", listed.stdout);
    assert!(listed.stdout.contains("ENDPOINT") && listed.stdout.contains(&endpoint), "{}", listed.stdout);

    // --- Neither team can read, change or delete the other's, nor the platform's. -----------
    println!("refused, as the API server words it:");
    let (pause, unroute) = (r#"{"spec":{"paused":true}}"#, r#"{"spec":{"patterns":[]}}"#);
    let platform = env.namespace.as_str();
    let refusals: [(&Team, &str, &[&str]); 9] = [
        (&bob, &alice.namespace, &["get", "prismnamespace", "orders"]),
        (&bob, &alice.namespace, &["patch", "prismnamespace", "orders", "--type", "merge", "-p", unroute]),
        (&bob, &alice.namespace, &["delete", "prismnamespace", "orders"]),
        (&bob, &alice.namespace, &["get", "configmap", &connection.config_map]),
        (&alice, &bob.namespace, &["delete", "prismnamespace", "billing"]),
        (&alice, platform, &["get", "prismpattern", "orders-keyvalue"]),
        (&alice, platform, &["delete", "prismpattern", "billing-consumer"]),
        (&bob, platform, &["patch", "prismcluster", "shared", "--type", "merge", "-p", pause]),
        (&alice, platform, &["delete", "prismcluster", "shared"]),
    ];
    for (team, namespace, args) in refusals {
        team.forbidden(&env, namespace, args).await;
    }
    let own_cluster = alice
        .kubectl(
            &env,
            &["apply", "--server-side", "-f", "-"],
            Some("apiVersion: prism.io/v1beta1\nkind: PrismCluster\nmetadata: {name: mine}\nspec: {}\n"),
        )
        .await;
    println!("alice creates a PrismCluster in her namespace: {}", own_cluster.stderr.trim());
    assert!(!own_cluster.success && own_cluster.stderr.contains("forbidden"), "PrismClusters are the platform's");
    assert!(alice.kubectl(&env, &["get", "prismnamespace", "orders"], None).await.success, "her own she reads");

    // --- A namespace outside the selector: refused at admission. -----------------------------
    let search = tenant_namespace(&env, "search", &["keyvalue"], "");
    let refused = carol.apply(&env, &search).await;
    println!("carol (namespace not labelled) applies: {}", refused.stderr.trim());
    assert!(!refused.success, "refused at admission");
    assert!(
        refused.stderr.contains("NamespaceNotAllowed") && refused.stderr.contains("prism.io/tenant=true"),
        "{}",
        refused.stderr
    );
    // With the webhook down (failurePolicy Ignore lets it in), the condition says the same and
    // nothing is served.
    let webhooks: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(env.client.clone());
    webhooks
        .delete(&format!("prism-operator-{}", env.namespace), &DeleteParams::default())
        .await
        .expect("webhook down");
    assert!(carol.apply(&env, &search).await.success, "admitted by the API server");
    let c_search = in_phase(&env, &carol.namespaces(&env), "search", NamespacePhase::Failed).await;
    let (status, reason, message) = cond(&c_search, "Accepted");
    println!("carol's search: Accepted={status} {reason}: {message}");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NamespaceNotAllowed"));
    assert!(
        message.contains(&format!("PrismCluster {}/shared", env.namespace)) && message.contains("selector"),
        "{message}"
    );
    assert!(served(&env, "search").await.is_none(), "not served");
    assert!(runners.get_opt("search-keyvalue").await.expect("get").is_none(), "no runner");
    // Relabelled into the selector: served, the same object, nothing re-created.
    relabel(&env, &carol.namespace, true).await;
    let c_served = in_phase(&env, &carol.namespaces(&env), "search", NamespacePhase::Ready).await;
    assert_eq!(c_served.metadata.uid, c_search.metadata.uid);
    assert_eq!(c_served.metadata.generation, c_search.metadata.generation, "not edited either");
    wait_served(&env, "search", true).await;
    // And out again: not served any more, its runner and connection details gone.
    relabel(&env, &carol.namespace, false).await;
    wait_served(&env, "search", false).await;
    wait_gone(&env, "search's runner gone", &runners, "search-keyvalue").await;

    // --- A name taken first elsewhere: Conflicted, naming the holder's namespace. ------------
    assert!(bob.apply(&env, &tenant_namespace(&env, "orders", &["consumer"], "")).await.success);
    let b_orders = in_phase(&env, &bob.namespaces(&env), "orders", NamespacePhase::Pending).await;
    let (status, reason, message) = cond(&b_orders, "Conflicted");
    println!("bob's orders: Conflicted={status} {reason}: {message}");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "NameInUse"));
    assert!(message.contains(&format!("namespace {:?}", alice.namespace)), "{message}");
    let entry = served(&env, "orders").await.expect("orders served");
    assert_eq!(entry["patterns"][0]["runner"], "orders-keyvalue", "still alice's: {entry}");
    assert_eq!(
        runners.get("orders-keyvalue").await.expect("runner").labels().get("prism.io/tenant-uid"),
        a_orders.metadata.uid.as_ref(),
        "nothing shared by accident"
    );

    // --- A tenant namespace deleted: its runners go, the routes follow, nothing else moves. --
    let kept_runners = versions(&runners, &["orders-keyvalue", "shared-keyvalue", "shared-consumer"]).await;
    let kept_config =
        versions(&Api::<ConfigMap>::namespaced(env.client.clone(), &alice.namespace), &[&connection.config_map]).await;
    Api::<Namespace>::all(env.client.clone())
        .delete(&bob.namespace, &DeleteParams::default())
        .await
        .expect("delete team b");
    wait_served(&env, "billing", false).await;
    wait_gone(&env, "billing's runner gone", &runners, "billing-consumer").await;
    wait_gone(&env, "team b's namespace gone", &Api::<Namespace>::all(env.client.clone()), &bob.namespace).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(versions(&runners, &["orders-keyvalue", "shared-keyvalue", "shared-consumer"]).await, kept_runners);
    assert_eq!(
        versions(&Api::<ConfigMap>::namespaced(env.client.clone(), &alice.namespace), &[&connection.config_map]).await,
        kept_config
    );
    assert_eq!(
        in_phase(&env, &alice.namespaces(&env), "orders", NamespacePhase::Ready).await.metadata.uid,
        a_orders.metadata.uid
    );

    // --- A finalizer removed by force (the operator down): the cluster sweeps the runner. ----
    for operator in env.operators() {
        operator.kill_hard().await;
    }
    alice.namespaces(&env).delete("orders", &DeleteParams::default()).await.expect("delete orders");
    let no_finalizers = json!({"metadata": {"finalizers": null}});
    alice
        .namespaces(&env)
        .patch("orders", &PatchParams::default(), &Patch::Merge(&no_finalizers))
        .await
        .expect("force");
    assert!(alice.namespaces(&env).get_opt("orders").await.expect("get").is_none(), "gone at once");
    assert!(runners.get_opt("orders-keyvalue").await.expect("get").is_some(), "its runner left behind");
    env.start_operator("b", &[]);
    wait_gone(&env, "the orphaned runner swept", &runners, "orders-keyvalue").await;
    wait_served(&env, "orders", false).await;
    let events = kubectl_ok(&env, &["get", "events", "-o", "custom-columns=REASON:.reason,MESSAGE:.message"]).await;
    let swept: Vec<&str> = events.lines().filter(|l| l.starts_with("OrphanSwept")).collect();
    println!("orphan swept: {swept:?}");
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
}
