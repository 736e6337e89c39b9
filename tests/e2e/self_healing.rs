//! Scenario 3: children deleted or edited by hand with kubectl are restored (credentials with the
//! same data: they are never regenerated), and fields tuned with kubectl on a child PrismPattern
//! that the cluster does not set survive the cluster's later applies.

use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Resource;
use prism_api::v1beta1::PrismPattern;

use crate::clusters::{
    LIMIT, converged, kubectl_ok, kubectl_patch, log_tail, patterns_converged, read_until, settle, wait_for,
};
use crate::harness::Env;

const CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: heal
spec:
  patterns:
    - {name: keyvalue, backends: [redis]}
  backends:
    redis: {enabled: true, version: "7-alpine", storage: 1Gi}
"#;

fn uid<K: Resource>(object: &K) -> String {
    object.meta().uid.clone().unwrap_or_default()
}

fn image(deployment: &Deployment) -> Option<String> {
    deployment.spec.as_ref()?.template.spec.as_ref()?.containers.first()?.image.clone()
}

async fn start(name: &str) -> Env {
    let mut env = Env::new(name).await;
    env.start_operator("a", &[]);
    env.apply(CLUSTER).await;
    converged(&env, "heal").await;
    patterns_converged(&env, &["heal-keyvalue"]).await;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_children_come_back_and_hand_edits_are_reverted() {
    let started = Instant::now();
    let env = start("heal").await;
    let deployments = env.api::<Deployment>();
    let services = env.api::<Service>();
    let admin = deployments.get("heal-admin").await.expect("admin");
    let proxy_service = services.get("heal-proxy").await.expect("proxy service");

    kubectl_ok(&env, &["delete", "deployment/heal-admin", "service/heal-proxy", "--wait=false"]).await;
    let back = wait_for(&env, "heal-admin and heal-proxy back", LIMIT, || async {
        let d = deployments.get_opt("heal-admin").await.ok().flatten()?;
        let s = services.get_opt("heal-proxy").await.ok().flatten()?;
        (uid(&d) != uid(&admin) && uid(&s) != uid(&proxy_service)).then_some((d, s))
    })
    .await;
    assert_eq!(image(&back.0), image(&admin), "the Deployment comes back as it was");
    assert_eq!(
        back.1.spec.as_ref().and_then(|s| s.ports.clone()),
        proxy_service.spec.as_ref().and_then(|s| s.ports.clone()),
        "the Service comes back as it was"
    );
    converged(&env, "heal").await;

    // An owned field edited by hand: the image of the proxy's container.
    let original = image(&deployments.get("heal-proxy").await.expect("proxy")).expect("image");
    kubectl_ok(&env, &["set", "image", "deployment/heal-proxy", "proxy=registry.example/tampered:1"]).await;
    wait_for(&env, "the proxy's image restored", LIMIT, || async {
        let d = deployments.get_opt("heal-proxy").await.ok().flatten()?;
        (image(&d).as_deref() == Some(original.as_str())).then_some(())
    })
    .await;
    // And a Service's selector: the admin Service would route to no pod.
    kubectl_patch(
        &env,
        "service/heal-admin",
        "merge",
        r#"{"spec": {"selector": {"app.kubernetes.io/component": "tampered"}}}"#,
    )
    .await;
    wait_for(&env, "the admin Service's selector restored", LIMIT, || async {
        let s = services.get_opt("heal-admin").await.ok().flatten()?;
        let selector = s.spec?.selector?;
        (selector.get("app.kubernetes.io/component").map(String::as_str) == Some("admin")).then_some(())
    })
    .await;
    converged(&env, "heal").await;
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
    println!("self-healing: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_credentials_secret_comes_back_with_the_same_data() {
    let started = Instant::now();
    let env = start("heal-secret").await;
    let secrets = env.api::<Secret>();
    let before = secrets.get("heal-redis-credentials").await.expect("credentials");
    assert!(
        before.data.as_ref().is_some_and(|d| d.contains_key("password")),
        "{:?}",
        before.data.as_ref().map(|d| d.keys().collect::<Vec<_>>())
    );

    kubectl_ok(&env, &["delete", "secret/heal-redis-credentials", "--wait=false"]).await;
    // Back means a new object (a new uid), not the deleted one lingering.
    let live = read_until(
        LIMIT,
        || async { secrets.get_opt("heal-redis-credentials").await.ok().flatten() },
        |s| s.as_ref().is_some_and(|s| uid(s) != uid(&before)),
    )
    .await;
    let after = match live {
        Some(s) if uid(&s) != uid(&before) => s,
        other => panic!(
            "heal-redis-credentials did not come back within {LIMIT:?}: {}\n{}",
            match other {
                None => "it is gone".to_string(),
                Some(s) => format!(
                    "the deleted one lingers (deletionTimestamp {:?}, finalizers {:?})",
                    s.metadata.deletion_timestamp, s.metadata.finalizers
                ),
            },
            log_tail(&env, 40)
        ),
    };
    assert!(
        after.data == before.data,
        "credentials are never regenerated: the recreated Secret must carry the same password (the backend's \
         data and running clients still use the old one); keys before {:?}, after {:?}, same password: false",
        before.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()),
        after.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()),
    );
    converged(&env, "heal").await;
    println!("credentials secret: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_tuned_with_kubectl_on_a_child_pattern_survive_the_clusters_applies() {
    let started = Instant::now();
    let env = start("heal-tuned").await;
    let patterns = env.api::<PrismPattern>();
    kubectl_patch(
        &env,
        "prismpattern/heal-keyvalue",
        "merge",
        r#"{"spec": {"config": {"logLevel": "debug"}, "placement": {"nodeSelector": {"disk": "ssd"}}}}"#,
    )
    .await;
    let deployments = env.api::<Deployment>();
    wait_for(&env, "the tuning reaches the runner", LIMIT, || async {
        let d = deployments.get_opt("heal-keyvalue").await.ok().flatten()?;
        let selector = d.spec?.template.spec?.node_selector?;
        (selector.get("disk").map(String::as_str) == Some("ssd")).then_some(())
    })
    .await;

    // Something the cluster does set on that PrismPattern changes: the cluster applies it again.
    kubectl_patch(
        &env,
        "prismcluster/heal",
        "json",
        r#"[{"op": "test", "path": "/spec/patterns/0/name", "value": "keyvalue"},
            {"op": "add", "path": "/spec/patterns/0/replicas", "value": 2}]"#,
    )
    .await;
    wait_for(&env, "the cluster's change reaches the PrismPattern", LIMIT, || async {
        let p = patterns.get_opt("heal-keyvalue").await.ok().flatten()?;
        (p.spec.replicas == Some(2)).then_some(())
    })
    .await;
    // And something it does not set on it, to reconcile once more.
    kubectl_patch(&env, "prismcluster/heal", "merge", r#"{"spec": {"proxy": {"replicas": 2}}}"#).await;
    wait_for(&env, "the proxy's replicas", LIMIT, || async {
        let d = deployments.get_opt("heal-proxy").await.ok().flatten()?;
        (d.spec?.replicas == Some(2)).then_some(())
    })
    .await;
    converged(&env, "heal").await;
    patterns_converged(&env, &["heal-keyvalue"]).await;
    settle(&env).await;

    let pattern = patterns.get("heal-keyvalue").await.expect("pattern");
    assert_eq!(pattern.spec.replicas, Some(2));
    assert_eq!(pattern.spec.config.get("logLevel").map(String::as_str), Some("debug"), "{:?}", pattern.spec);
    let selector = pattern.spec.placement.as_ref().map(|p| p.node_selector.clone()).unwrap_or_default();
    assert_eq!(selector.get("disk").map(String::as_str), Some("ssd"), "{:?}", pattern.spec.placement);
    let runner = deployments.get("heal-keyvalue").await.expect("runner");
    let spec = runner.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let selector = spec.template.spec.and_then(|s| s.node_selector).unwrap_or_default();
    assert_eq!(selector.get("disk").map(String::as_str), Some("ssd"));
    println!("kubectl tuning: {:?}", started.elapsed());
}
