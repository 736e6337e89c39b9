//! Workload simulation: Deployments and StatefulSets become ready after a delay, never-ready
//! Deployments time out, StatefulSets get Bound PVCs, Services get cluster IPs.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const DELAY: Duration = Duration::from_millis(150);

/// Polls `probe` until it yields a value or `within` passes.
async fn eventually<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn deployment(name: &str, replicas: i32, annotations: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": "example/app:1"}]}},
        },
    }))
    .expect("valid deployment")
}

fn statefulset(name: &str, replicas: i32) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": "example/db:1"}]}},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": {"tier": "storage"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
            }],
        },
    }))
    .expect("valid statefulset")
}

fn condition<'a>(d: &'a Deployment, type_: &str) -> Option<&'a k8s_openapi::api::apps::v1::DeploymentCondition> {
    d.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn simulated() -> (kube_emulator::Emulator, kube::Client) {
    let (emulator, client) = common::in_process();
    emulator.instruments.simulation.enable(DELAY);
    (emulator, client)
}

#[tokio::test]
async fn deployment_observes_at_once_and_becomes_ready_after_the_delay() {
    let (emulator, client) = simulated();
    let api: Api<Deployment> = Api::default_namespaced(client);
    let started = Instant::now();
    api.create(&PostParams::default(), &deployment("web", 3, json!({}))).await.expect("create");
    emulator.settle().await;

    let rolling = api.get("web").await.expect("get");
    let status = rolling.status.clone().expect("status written at once");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.ready_replicas, None, "not ready before the delay");
    assert_eq!(condition(&rolling, "Available").map(|c| c.reason.as_deref()), Some(Some("MinimumReplicasUnavailable")));

    let ready = eventually(Duration::from_secs(5), || async {
        let d = api.get("web").await.ok()?;
        (d.status.as_ref()?.ready_replicas == Some(3)).then_some(d)
    })
    .await
    .expect("ready in time");
    assert!(started.elapsed() >= DELAY);
    let s = ready.status.clone().expect("status");
    assert_eq!((s.replicas, s.updated_replicas, s.available_replicas), (Some(3), Some(3), Some(3)));
    let available = condition(&ready, "Available").expect("Available");
    assert_eq!((available.status.as_str(), available.reason.as_deref()), ("True", Some("MinimumReplicasAvailable")));
    let progressing = condition(&ready, "Progressing").expect("Progressing");
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetAvailable"));
    let managers: Vec<_> =
        ready.metadata.managed_fields.unwrap_or_default().into_iter().map(|m| (m.manager, m.subresource)).collect();
    assert!(managers.contains(&(Some("deployment-controller".into()), Some("status".into()))), "{managers:?}");
}

#[tokio::test]
async fn a_new_generation_restarts_the_readiness_delay() {
    let (emulator, client) = simulated();
    let api: Api<Deployment> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &deployment("web", 2, json!({}))).await.expect("create");
    eventually(Duration::from_secs(5), || async {
        (api.get("web").await.ok()?.status?.ready_replicas == Some(2)).then_some(())
    })
    .await
    .expect("first rollout ready");

    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example/app:2"}]}}}});
    api.patch("web", &PatchParams::default(), &Patch::Strategic(&image)).await.expect("new image");
    emulator.settle().await;
    let rolling = api.get("web").await.expect("get");
    let s = rolling.status.clone().expect("status");
    assert_eq!(s.observed_generation, Some(2));
    // maxSurge 25% of 2: one new pod starts beside the two old ones, none of which goes yet.
    assert_eq!(
        (s.replicas, s.updated_replicas, s.available_replicas),
        (Some(3), Some(1), Some(2)),
        "the new generation is not rolled out yet"
    );
    assert_eq!(condition(&rolling, "Progressing").and_then(|c| c.reason.as_deref()), Some("ReplicaSetUpdated"));
    assert_eq!(condition(&rolling, "Available").map(|c| c.status.as_str()), Some("True"), "old pods keep serving");

    eventually(Duration::from_secs(5), || async {
        (api.get("web").await.ok()?.status?.updated_replicas == Some(2)).then_some(())
    })
    .await
    .expect("second rollout ready");
}

#[tokio::test]
async fn never_ready_deployment_exceeds_its_progress_deadline() {
    let (_emulator, client) = simulated();
    let api: Api<Deployment> = Api::default_namespaced(client);
    let ann = json!({"kube-emulator.io/never-ready": "true"});
    api.create(&PostParams::default(), &deployment("stuck", 1, ann)).await.expect("create");
    let stuck = eventually(Duration::from_secs(5), || async {
        let d = api.get("stuck").await.ok()?;
        (condition(&d, "Progressing")?.status == "False").then_some(d)
    })
    .await
    .expect("times out progressing");
    assert_eq!(condition(&stuck, "Progressing").and_then(|c| c.reason.as_deref()), Some("ProgressDeadlineExceeded"));
    assert_eq!(stuck.status.and_then(|s| s.ready_replicas), None);
}

#[tokio::test]
async fn ready_after_annotation_overrides_the_delay() {
    let (_emulator, client) = simulated();
    let api: Api<Deployment> = Api::default_namespaced(client);
    let started = Instant::now();
    let ann = json!({"kube-emulator.io/ready-after": "700ms"});
    api.create(&PostParams::default(), &deployment("slow", 1, ann)).await.expect("create");
    eventually(Duration::from_secs(5), || async {
        (api.get("slow").await.ok()?.status?.ready_replicas == Some(1)).then_some(())
    })
    .await
    .expect("ready in time");
    assert!(started.elapsed() >= Duration::from_millis(700), "{:?}", started.elapsed());
}

#[tokio::test]
async fn simulation_is_off_by_default() {
    let (emulator, client) = common::in_process();
    let api: Api<Deployment> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &deployment("idle", 1, json!({}))).await.expect("create");
    tokio::time::sleep(DELAY * 2).await;
    emulator.settle().await;
    let d = api.get("idle").await.expect("get");
    assert_eq!(d.status.and_then(|s| s.observed_generation), None);
}

#[tokio::test]
async fn statefulset_gets_revisions_and_bound_claims_that_outlive_it() {
    let (emulator, client) = simulated();
    let sts_api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(client);
    sts_api.create(&PostParams::default(), &statefulset("db", 2)).await.expect("create");

    let ready = eventually(Duration::from_secs(5), || async {
        let s = sts_api.get("db").await.ok()?;
        (s.status.as_ref()?.ready_replicas == Some(2)).then_some(s)
    })
    .await
    .expect("ready in time");
    let s = ready.status.expect("status");
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!((s.current_replicas, s.updated_replicas, s.available_replicas), (Some(2), Some(2), Some(2)));
    let rev = s.update_revision.expect("updateRevision");
    assert!(rev.starts_with("db-") && rev.len() > 3, "{rev}");
    assert_eq!(s.current_revision, Some(rev));

    let mut names: Vec<String> = pvcs
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["data-db-0", "data-db-1"]);
    let claim = pvcs.get("data-db-0").await.expect("claim");
    assert_eq!(claim.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Bound"));
    assert_eq!(claim.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str), Some("db"));
    assert!(claim.metadata.owner_references.is_none(), "claims are not owned by the StatefulSet");

    sts_api.delete("db", &DeleteParams::default()).await.expect("delete");
    emulator.settle().await;
    assert!(pvcs.get_opt("data-db-1").await.expect("get").is_some(), "claims stay when the StatefulSet goes");
}

#[tokio::test]
async fn statefulset_template_change_moves_the_update_revision() {
    let (emulator, client) = simulated();
    let api: Api<StatefulSet> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &statefulset("db", 1)).await.expect("create");
    let first = eventually(Duration::from_secs(5), || async {
        let s = api.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(1)).then_some(s.update_revision?)
    })
    .await
    .expect("ready");
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example/db:2"}]}}}});
    api.patch("db", &PatchParams::default(), &Patch::Strategic(&image)).await.expect("patch");
    emulator.settle().await;
    let s = api.get("db").await.expect("get").status.expect("status");
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(s.current_revision.as_deref(), Some(first.as_str()), "old revision is current until ready");
    assert_ne!(s.update_revision.as_deref(), Some(first.as_str()));
}

#[tokio::test]
async fn services_get_a_cluster_ip_unless_headless() {
    let (emulator, client) = simulated();
    let api: Api<Service> = Api::default_namespaced(client);
    let svc = |name: &str, ip: Option<&str>| -> Service {
        let mut spec = json!({"ports": [{"port": 80}], "selector": {"app": name}});
        if let Some(ip) = ip {
            spec["clusterIP"] = json!(ip);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("valid service")
    };
    api.create(&PostParams::default(), &svc("web", None)).await.expect("create");
    api.create(&PostParams::default(), &svc("web-headless", Some("None"))).await.expect("create");
    api.create(&PostParams::default(), &svc("other", None)).await.expect("create");
    emulator.settle().await;
    let ip = |s: Service| s.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    let web = ip(api.get("web").await.expect("get"));
    let other = ip(api.get("other").await.expect("get"));
    assert!(web.starts_with("10.96."), "{web}");
    assert_ne!(web, other);
    assert_eq!(ip(api.get("web-headless").await.expect("get")), "None");
}

// ---------------------------------------------------------------- controllers behind workloads

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn pods_of(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let list = pods.list(&ListParams::default().labels(selector)).await.expect("pods");
    list.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
}

#[tokio::test]
async fn a_deployment_rolls_out_through_replica_sets_within_surge_and_unavailability() {
    let (_emulator, client) = simulated();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("web", 3, json!({}))).await.expect("create");
    eventually(Duration::from_secs(5), || async {
        (api.get("web").await.ok()?.status?.available_replicas == Some(3)).then_some(())
    })
    .await
    .expect("first rollout");
    let first = sets.list(&ListParams::default().labels("app=web")).await.expect("sets").items;
    assert_eq!(first.len(), 1);
    let rs = &first[0];
    let hash = rs.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")).cloned().expect("hash label");
    assert_eq!(rs.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
    assert_eq!(
        rs.metadata.annotations.as_ref().and_then(|a| a.get("deployment.kubernetes.io/revision")).map(String::as_str),
        Some("1")
    );
    assert_eq!(rs.metadata.owner_references.as_ref().map(|o| o[0].kind.as_str()), Some("Deployment"));
    let pods = pods_of(&client, "app=web").await;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| pod_ready(p) && p.status.as_ref().and_then(|s| s.pod_ip.clone()).is_some()));
    assert!(
        pods.iter().all(|p| p.metadata.owner_references.as_ref().is_some_and(|o| o[0].name == format!("web-{hash}")))
    );

    // A template change is a new ReplicaSet; maxSurge 25% of 3 = 1, maxUnavailable 25% of 3 = 0:
    // never more than 4 pods, never fewer than 3 ready.
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example/app:2"}]}}}});
    api.patch("web", &PatchParams::default(), &Patch::Strategic(&image)).await.expect("new image");
    let done = eventually(Duration::from_secs(10), || async {
        let pods = pods_of(&client, "app=web").await;
        assert!(pods.len() <= 4, "surge exceeded: {} pods", pods.len());
        assert!(pods.iter().filter(|p| pod_ready(p)).count() >= 3, "availability dropped");
        let d = api.get("web").await.ok()?;
        let s = d.status?;
        (s.updated_replicas == Some(3) && s.available_replicas == Some(3) && s.replicas == Some(3)).then_some(())
    })
    .await;
    done.expect("second rollout");
    let sets = sets.list(&ListParams::default().labels("app=web")).await.expect("sets").items;
    assert_eq!(sets.len(), 2, "the old ReplicaSet stays, scaled to zero");
    let revision = |rs: &ReplicaSet| {
        rs.metadata.annotations.as_ref().and_then(|a| a.get("deployment.kubernetes.io/revision")).cloned()
    };
    let old = sets.iter().find(|s| revision(s).as_deref() == Some("1")).expect("old");
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(0));
    assert!(
        sets.iter().any(|s| revision(s).as_deref() == Some("2") && s.spec.as_ref().and_then(|s| s.replicas) == Some(3))
    );
}

#[tokio::test]
async fn a_bare_pod_starts_after_the_delay() {
    let (_emulator, client) = simulated();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod = json!({"metadata": {"name": "solo"}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}});
    let created = pods.create(&PostParams::default(), &typed(pod)).await.expect("pod");
    assert_eq!(created.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    let running = eventually(Duration::from_secs(5), || async {
        let p = pods.get("solo").await.ok()?;
        pod_ready(&p).then_some(p)
    })
    .await
    .expect("running");
    let status = running.status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let cs = &status.container_statuses.expect("container statuses")[0];
    assert!(cs.ready && cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
}

#[tokio::test]
async fn a_job_runs_its_pods_to_completion() {
    let (_emulator, client) = simulated();
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let job = json!({"metadata": {"name": "pi"}, "spec": {"completions": 2, "parallelism": 1, "template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl:5"}]}}}});
    jobs.create(&PostParams::default(), &typed(job)).await.expect("job");
    let done = eventually(Duration::from_secs(5), || async {
        let j = jobs.get("pi").await.ok()?;
        let s = j.status?;
        s.conditions.as_ref()?.iter().any(|c| c.type_ == "Complete" && c.status == "True").then_some(s)
    })
    .await
    .expect("complete");
    assert_eq!((done.succeeded, done.active), (Some(2), None));
    assert!(done.completion_time.is_some() && done.start_time.is_some());
    let pods = pods_of(&client, "batch.kubernetes.io/job-name=pi").await;
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")));
}

#[tokio::test]
async fn an_hpa_moves_replicas_within_its_bounds_from_the_load_a_test_sets() {
    let (_emulator, client) = simulated();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("web", 2, json!({}))).await.expect("create");
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let hpa = json!({"metadata": {"name": "web"}, "spec": {"minReplicas": 1, "maxReplicas": 5,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}});
    hpas.create(&PostParams::default(), &typed(hpa)).await.expect("hpa");
    let no_metric = eventually(Duration::from_secs(5), || async {
        let s = hpas.get("web").await.ok()?.status?;
        s.conditions?.into_iter().find(|c| c.type_ == "ScalingActive")
    })
    .await
    .expect("conditions");
    assert_eq!((no_metric.status.as_str(), no_metric.reason.as_deref()), ("False", Some("FailedGetResourceMetric")));
    let set = |pct: &str| {
        let hpas = hpas.clone();
        let patch = json!({"metadata": {"annotations": {kube_emulator::controllers::LOAD_ANNOTATION: pct}}});
        async move { hpas.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("utilization") }
    };
    let replicas_become = |n: i32| {
        let (api, hpas) = (api.clone(), hpas.clone());
        async move {
            let reached = eventually(Duration::from_secs(5), || async {
                let d = api.get("web").await.ok()?;
                let desired = hpas.get("web").await.ok()?.status?.desired_replicas;
                (d.spec?.replicas == Some(n) && desired == n).then_some(())
            })
            .await;
            if reached.is_none() {
                let d = api.get("web").await.expect("deployment");
                let h = hpas.get("web").await.expect("hpa");
                panic!(
                    "replicas {n}: deployment {:?}, hpa {:?} {:?}",
                    d.spec.and_then(|s| s.replicas),
                    h.metadata.annotations,
                    h.status
                );
            }
        }
    };
    set("200").await; // two pods' worth at 50% each: 2 -> 4, where utilization meets the target
    replicas_become(4).await;
    let metrics = hpas.get("web").await.expect("hpa").status.and_then(|s| s.current_metrics).unwrap_or_default();
    let utilization = metrics.first().and_then(|m| m.resource.as_ref()).and_then(|r| r.current.average_utilization);
    assert_eq!(utilization, Some(50), "the load spread over 4 pods");
    set("1000").await; // far over: capped at maxReplicas
    replicas_become(5).await;
    let limited = hpas.get("web").await.expect("hpa").status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(limited.iter().any(|c| c.type_ == "ScalingLimited" && c.reason.as_deref() == Some("TooManyReplicas")));
    set("5").await; // idle: down to minReplicas
    replicas_become(1).await;
}

#[tokio::test]
async fn a_budget_counts_the_healthy_pods_and_allows_what_exceeds_its_minimum() {
    let (_emulator, client) = simulated();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("web", 3, json!({}))).await.expect("create");
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    let pdb =
        json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}});
    pdbs.create(&PostParams::default(), &typed(pdb)).await.expect("pdb");
    let status = eventually(Duration::from_secs(5), || async {
        let s = pdbs.get("web").await.ok()?.status?;
        (s.current_healthy == 3).then_some(s)
    })
    .await
    .expect("healthy pods counted");
    assert_eq!((status.expected_pods, status.desired_healthy, status.disruptions_allowed), (3, 2, 1));
    assert_eq!(status.observed_generation, Some(1));
    // One eviction spends the disruption; the ReplicaSet brings a pod back and the budget recovers.
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let victim = pods_of(&client, "app=web").await[0].metadata.name.clone().expect("name");
    pods.evict(&victim, &Default::default()).await.expect("evicted");
    let second =
        pods_of(&client, "app=web").await.into_iter().find(pod_ready).and_then(|p| p.metadata.name).expect("pod");
    let err = pods.evict(&second, &Default::default()).await.expect_err("budget spent");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 429), "{err:?}");
    eventually(Duration::from_secs(5), || async {
        let s = pdbs.get("web").await.ok()?.status?;
        (s.current_healthy == 3 && s.disruptions_allowed == 1).then_some(())
    })
    .await
    .expect("budget recovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_follows_rollouts_and_jobs() {
    let emulator = kube_emulator::Emulator::start();
    emulator.instruments.simulation.enable(DELAY);
    let env = common::kubectl::Env::serving(emulator).await;
    env.ok(&["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]).await;
    let out = env.ok(&["rollout", "status", "deployment/web", "--timeout=20s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    env.ok(&["set", "image", "deployment/web", "nginx=nginx:1.28"]).await;
    let out = env.ok(&["rollout", "status", "deployment/web", "--timeout=20s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let out = env.ok(&["get", "rs", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.spec.replicas} {end}"]).await;
    let mut counts: Vec<&str> = out.split_whitespace().collect();
    counts.sort();
    assert_eq!(counts, ["0", "2"]);
    env.ok(&["create", "job", "once", "--image=busybox:1.36", "--", "true"]).await;
    env.ok(&["wait", "--for=condition=complete", "job/once", "--timeout=20s"]).await;
}

#[tokio::test]
async fn a_statefulset_starts_its_pods_in_order_with_their_claims_and_updates_from_the_highest() {
    let (_emulator, client) = simulated();
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &statefulset("db", 3)).await.expect("create");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    // OrderedReady: db-1 is not created before db-0 is ready, nor db-2 before db-1.
    eventually(Duration::from_secs(10), || async {
        let all = pods_of(&client, "app=db").await;
        for p in &all {
            let i: usize = p.metadata.name.as_deref()?.trim_start_matches("db-").parse().ok()?;
            for before in 0..i {
                let earlier = all.iter().find(|q| q.metadata.name.as_deref() == Some(format!("db-{before}").as_str()));
                assert!(earlier.is_some_and(|q| pod_ready(q) || q.metadata.creation_timestamp <= p.metadata.creation_timestamp), "db-{i} before db-{before}");
            }
        }
        (api.get("db").await.ok()?.status?.ready_replicas == Some(3)).then_some(())
    })
    .await
    .expect("three ready");
    let db1 = pods.get("db-1").await.expect("db-1");
    let spec = db1.spec.expect("spec");
    assert_eq!(spec.hostname.as_deref(), Some("db-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("db"));
    let claim =
        spec.volumes.unwrap_or_default().into_iter().find(|v| v.name == "data").and_then(|v| v.persistent_volume_claim);
    assert_eq!(claim.map(|c| c.claim_name).as_deref(), Some("data-db-1"));
    let first_rev = api.get("db").await.expect("db").status.and_then(|s| s.update_revision).expect("revision");
    assert_eq!(db1.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")), Some(&first_rev));

    // A template change replaces db-2 first, then db-1, then db-0; then the revision is current.
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example/db:2"}]}}}});
    api.patch("db", &PatchParams::default(), &Patch::Strategic(&image)).await.expect("patch");
    let order = std::sync::Mutex::new(Vec::<String>::new());
    let s = eventually(Duration::from_secs(15), || async {
        for p in pods_of(&client, "app=db").await {
            let name = p.metadata.name.clone().unwrap_or_default();
            let rev = p.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")).cloned();
            let mut seen = order.lock().expect("order");
            if rev.is_some_and(|r| r != first_rev) && !seen.contains(&name) {
                seen.push(name);
            }
        }
        let s = api.get("db").await.ok()?.status?;
        (s.updated_replicas == Some(3) && s.current_revision == s.update_revision && s.ready_replicas == Some(3))
            .then_some(s)
    })
    .await
    .expect("rolled");
    let order = order.into_inner().expect("order");
    assert_eq!(order, ["db-2", "db-1", "db-0"]);
    assert_ne!(s.current_revision, Some(first_rev));
    // Scaling down removes the highest ordinal.
    api.patch("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.expect("scale");
    eventually(Duration::from_secs(10), || async {
        let names: Vec<String> = pods_of(&client, "app=db").await.into_iter().filter_map(|p| p.metadata.name).collect();
        (names == ["db-0"]).then_some(())
    })
    .await
    .expect("db-0 stays");
}
