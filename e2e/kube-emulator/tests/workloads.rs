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
    assert_eq!(s.updated_replicas, None, "the new generation is not rolled out yet");
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
