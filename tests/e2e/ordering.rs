//! Scenario 4: a backend held not ready (the emulator's `kube-emulator.io/never-ready` annotation
//! on its StatefulSet) keeps the pattern runners that use it waiting, with a BackendsReady=False
//! condition naming it; they start when it becomes ready. Runners on other backends do not wait.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use prism_api::v1beta1::{PatternPhase, PrismPattern};

use crate::clusters::{LIMIT, condition, converged, kubectl_ok, patterns_converged, wait_for};
use crate::harness::Env;

const CLUSTER: &str = r#"
apiVersion: prism.io/v1beta1
kind: PrismCluster
metadata:
  name: ord
spec:
  patterns:
    - {name: keyvalue, backends: [redis]}
    - {name: consumer, backends: [nats]}
  backends:
    redis: {enabled: true, version: "7-alpine", storage: 1Gi}
    nats: {enabled: true, version: "2.10-alpine"}
"#;

const NEVER_READY: &str = "kube-emulator.io/never-ready";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_wait_for_a_backend_that_is_not_ready_and_start_when_it_is() {
    let mut env = Env::new("ordering").await;
    if !env.emulated() {
        eprintln!("skipped on a real cluster: holding a backend not ready needs the emulator's never-ready annotation");
        return;
    }
    let started = Instant::now();
    // The annotation must be on the StatefulSet before its first rollout completes: hold the
    // simulated control plane until it is there.
    let simulation = &env.emulator().instruments.simulation;
    let delay = simulation.ready_delay();
    simulation.disable();
    env.start_operator("a", &[]);
    env.apply(CLUSTER).await;
    let sets = env.api::<StatefulSet>();
    wait_for(&env, "the redis StatefulSet", LIMIT, || async { sets.get_opt("ord-redis").await.ok().flatten() }).await;
    kubectl_ok(&env, &["annotate", "statefulset/ord-redis", &format!("{NEVER_READY}=true")]).await;
    env.emulator().instruments.simulation.enable(delay);

    // The runner on NATS starts; the one on Redis waits, saying why.
    patterns_converged(&env, &["ord-consumer"]).await;
    let patterns = env.api::<PrismPattern>();
    let waiting = wait_for(&env, "ord-keyvalue waiting with BackendsReady=False", LIMIT, || async {
        let p = patterns.get_opt("ord-keyvalue").await.ok().flatten()?;
        let status = p.status.as_ref()?;
        let backends = condition(&status.conditions, "BackendsReady")?;
        (backends.status == "False" && status.observed_generation == p.metadata.generation).then_some(p.clone())
    })
    .await;
    let status = waiting.status.expect("status");
    let backends = condition(&status.conditions, "BackendsReady").expect("condition");
    assert_eq!(backends.reason, "BackendNotReady");
    assert!(backends.message.contains("redis"), "the condition names the backend: {}", backends.message);
    assert!(!backends.message.contains("nats"), "and only it: {}", backends.message);
    assert_eq!(status.phase, Some(PatternPhase::Pending));
    let ready = condition(&status.conditions, "Ready").expect("Ready");
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("redis"), "Ready says what it waits for: {}", ready.message);

    // It keeps waiting: no runner workload while the backend is not ready.
    let deployments = env.api::<Deployment>();
    let hold = Instant::now() + Duration::from_secs(2);
    while Instant::now() < hold {
        assert!(
            deployments.get_opt("ord-keyvalue").await.expect("get").is_none(),
            "the runner must not start before redis is ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(deployments.get_opt("ord-consumer").await.expect("get").is_some(), "the NATS runner did not wait");
    let redis = sets.get("ord-redis").await.expect("redis");
    assert_eq!(
        redis.metadata.annotations.as_ref().and_then(|a| a.get(NEVER_READY)).map(String::as_str),
        Some("true"),
        "the operator leaves annotations it does not own"
    );
    println!("runner held for {:?}: {}", started.elapsed(), backends.message);

    // The backend becomes ready: the runner starts by itself.
    let released = Instant::now();
    kubectl_ok(&env, &["annotate", "statefulset/ord-redis", &format!("{NEVER_READY}-")]).await;
    wait_for(&env, "the keyvalue runner", LIMIT, || async { deployments.get_opt("ord-keyvalue").await.ok().flatten() })
        .await;
    patterns_converged(&env, &["ord-keyvalue", "ord-consumer"]).await;
    let p = patterns.get("ord-keyvalue").await.expect("pattern");
    let conditions = p.status.expect("status").conditions;
    assert_eq!(condition(&conditions, "BackendsReady").map(|c| c.status.as_str()), Some("True"));
    converged(&env, "ord").await;
    println!("runner started {:?} after the backend was released ({:?} in all)", released.elapsed(), started.elapsed());
}
