//! Scenario 6: app teams' PrismNamespaces. The sample (retargeted at an existing cluster) becomes
//! Ready with its dedicated runners and its quota in the proxy's routes; one naming an unknown
//! cluster and one using an unknown pattern say why in their conditions, and recover once fixed.

use std::time::Instant;

use prism_api::v1beta1::PrismPattern;
use prism_api::v1beta1::{NamespacePhase, PrismNamespace};

use crate::clusters::{LIMIT, condition, converged, kubectl_ok, kubectl_patch, patterns_converged, routes, wait_for};
use crate::harness::{Env, sample};

fn cluster(name: &str) -> String {
    format!(
        r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: {name}
spec:
  patterns:
    - {{name: keyvalue, backends: [memstore]}}
    - {{name: consumer, backends: [memstore]}}
"#
    )
}

const UNKNOWN_CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismNamespace
metadata:
  name: lost
spec:
  cluster: elsewhere
  patterns: [keyvalue]
  isolation: none
"#;

const UNKNOWN_PATTERN: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismNamespace
metadata:
  name: bad
spec:
  cluster: apps
  patterns: [keyvalue, mailbox]
"#;

/// The namespace once its status describes its current generation and is in `phase`.
async fn in_phase(env: &Env, name: &str, phase: NamespacePhase) -> PrismNamespace {
    let namespaces = env.api::<PrismNamespace>();
    wait_for(env, &format!("PrismNamespace {name} {phase:?}"), LIMIT, || async {
        let n = namespaces.get_opt(name).await.ok().flatten()?;
        let status = n.status.as_ref()?;
        (status.phase == Some(phase) && status.observed_generation == n.metadata.generation).then_some(n)
    })
    .await
}

/// The SpecValid condition's (status, reason, message).
fn spec_valid(namespace: &PrismNamespace) -> (String, String, String) {
    let conditions = namespace.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let c = condition(conditions, "SpecValid").expect("SpecValid");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_team_namespaces_become_ready_and_invalid_ones_say_why_and_recover() {
    let started = Instant::now();
    let mut env = Env::new("apps").await;
    // The conditions' side of invalid references: admission steps aside as with the operator
    // down (tests/e2e/versions.rs covers the refusals).
    env.webhook_reachable = false;
    env.start_operator("a", &[]);
    env.apply(&cluster("apps")).await;
    converged(&env, "apps").await;
    if !env.emulated() {
        eprintln!("real cluster: runners become ready only if Prism's images are pullable");
    }

    let payments = sample("app-team-namespace.yaml", &env.namespace).replace("cluster: prism-local", "cluster: apps");
    assert!(payments.contains("cluster: apps"), "the sample is retargeted:\n{payments}");
    env.apply(&payments).await;
    env.apply(UNKNOWN_CLUSTER).await;
    env.apply(UNKNOWN_PATTERN).await;

    // An unknown cluster: Pending (it may yet be created), saying which.
    let lost = in_phase(&env, "lost", NamespacePhase::Pending).await;
    let (status, reason, message) = spec_valid(&lost);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ClusterNotFound"), "{message}");
    assert!(message.contains("elsewhere"), "the message names the cluster: {message}");
    // An unknown pattern: Failed (only an edit fixes it), naming the pattern and what exists.
    let bad = in_phase(&env, "bad", NamespacePhase::Failed).await;
    let (status, reason, message) = spec_valid(&bad);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PatternNotFound"), "{message}");
    assert!(message.contains("mailbox"), "the message names the pattern: {message}");
    assert!(message.contains("keyvalue"), "and what the cluster offers: {message}");
    let listed = kubectl_ok(&env, &["get", "prismnamespaces"]).await;
    println!("kubectl get prismnamespaces:\n{listed}");
    assert!(listed.lines().any(|l| l.starts_with("bad ") && l.contains("Failed")), "{listed}");

    // The valid one: Ready, with dedicated runners and its quota in the proxy's routes.
    if env.emulated() {
        let ready = in_phase(&env, "payments", NamespacePhase::Ready).await;
        let resolved = ready.status.expect("status").patterns;
        let runners: Vec<&str> = resolved.iter().map(|p| p.runner.as_str()).collect();
        assert_eq!(runners, ["payments-keyvalue", "payments-consumer"], "{resolved:?}");
        assert!(resolved.iter().all(|p| p.dedicated && p.ready), "{resolved:?}");
    }
    let patterns = env.api::<PrismPattern>();
    for runner in ["payments-keyvalue", "payments-consumer"] {
        let p = wait_for(&env, runner, LIMIT, || async { patterns.get_opt(runner).await.ok().flatten() }).await;
        assert_eq!(p.spec.cluster, "apps");
    }
    let served = wait_for(&env, "the routes serving payments", LIMIT, || async {
        let r = routes(&env, "apps").await?;
        r["namespaces"].as_array()?.iter().find(|n| n["name"] == "payments").cloned()
    })
    .await;
    assert_eq!(served["quota"]["maxSessions"], 500, "{served}");
    println!("payments ready after {:?}", started.elapsed());

    // Fixes: the missing cluster is created; the unknown pattern is dropped with kubectl.
    let fixed = Instant::now();
    env.apply(&cluster("elsewhere")).await;
    kubectl_patch(&env, "prismnamespace/bad", "merge", r#"{"spec": {"patterns": ["keyvalue"]}}"#).await;
    if env.emulated() {
        for name in ["lost", "bad"] {
            let n = in_phase(&env, name, NamespacePhase::Ready).await;
            let (status, reason, _) = spec_valid(&n);
            assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"), "{name}");
        }
        patterns_converged(&env, &["bad-keyvalue", "elsewhere-keyvalue"]).await;
    } else {
        for name in ["lost", "bad"] {
            let namespaces = env.api::<PrismNamespace>();
            wait_for(&env, &format!("{name} valid"), LIMIT, || async {
                let n = namespaces.get_opt(name).await.ok().flatten()?;
                (spec_valid(&n).0 == "True").then_some(())
            })
            .await;
        }
    }
    let lost_runner = env.api::<PrismNamespace>().get("lost").await.expect("lost").status.expect("status").patterns;
    assert_eq!(lost_runner.first().map(|p| p.runner.as_str()), Some("elsewhere-keyvalue"), "{lost_runner:?}");
    println!("recovered {:?} after the fixes ({:?} in all)", fixed.elapsed(), started.elapsed());
    let logs = env.operator_logs();
    assert!(!logs.contains("panicked"), "the operator never panics:\n{logs}");
}
