//! Writes computed in parallel and committed with a compare-and-swap, as the real server's
//! GuaranteedUpdate does: racing writers of one object lose nothing, and a create has one winner.

use std::sync::Arc;
use std::thread;

use kube_emulator::ops::{PatchKind, WriteOp};
use kube_emulator::{Cluster, Target, WriteOptions};
use serde_json::{Value, json};

const WRITERS: usize = 4;

fn config_map(cluster: &Cluster, name: &str) -> Target {
    cluster.target("", "v1", "configmaps", "default", name).expect("configmaps are served")
}

/// Runs `write(i)` on `WRITERS` threads at once and gathers what each returned.
fn race<T: Send + 'static>(cluster: &Arc<Cluster>, write: fn(&Cluster, usize) -> T) -> Vec<T> {
    let start = Arc::new(std::sync::Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (cluster, start) = (cluster.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                write(&cluster, i)
            })
        })
        .collect();
    writers.into_iter().map(|w| w.join().expect("a writer panicked")).collect()
}

fn data_keys(cluster: &Cluster, name: &str) -> usize {
    let stored = cluster.stored(&config_map(cluster, name)).expect("stored");
    stored["data"].as_object().map_or(0, |d| d.len())
}

#[test]
fn racing_patches_of_one_object_lose_no_change() {
    let cluster = Cluster::new();
    cluster.create_builtin("", "v1", "configmaps", "default", json!({"metadata": {"name": "shared"}})).expect("create");
    race(&cluster, |cluster, writer| {
        for i in 0..50 {
            let patch = json!({"data": {format!("w{writer}-{i}"): "x"}});
            let op = WriteOp::Patch(PatchKind::Merge, patch);
            cluster.write(&config_map(cluster, "shared"), &op, &WriteOptions::default()).expect("patch");
        }
    });
    assert_eq!(data_keys(&cluster, "shared"), WRITERS * 50);
}

#[test]
fn racing_applies_of_a_new_object_create_it_once_and_each_keeps_its_field() {
    let cluster = Cluster::new();
    race(&cluster, |cluster, writer| {
        let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"},
                             "data": {format!("from-{writer}"): "x"}});
        let o = WriteOptions::manager(&format!("applier-{writer}"));
        cluster.write(&config_map(cluster, "applied"), &WriteOp::Patch(PatchKind::Apply, applied), &o).expect("apply")
    });
    assert_eq!(data_keys(&cluster, "applied"), WRITERS);
    let stored = cluster.stored(&config_map(&cluster, "applied")).expect("stored");
    let managers: Vec<&str> = stored["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(managers.len(), WRITERS, "{managers:?}");
}

#[test]
fn racing_creates_of_one_name_have_one_winner_and_the_others_learn_it_exists() {
    let cluster = Cluster::new();
    let outcomes = race(&cluster, |cluster, writer| {
        let body = json!({"metadata": {"name": "once"}, "data": {"writer": writer.to_string()}});
        cluster.write(&config_map(cluster, ""), &WriteOp::Create(body), &WriteOptions::default()).map(|w| w.object)
    });
    let winners: Vec<&Value> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!((lost.code, lost.reason), (409, "AlreadyExists"), "{lost:?}");
    }
    let stored = cluster.stored(&config_map(&cluster, "once")).expect("stored");
    assert_eq!(stored["data"], winners[0]["data"]);
}

#[test]
fn a_write_that_names_an_old_resource_version_still_conflicts() {
    let cluster = Cluster::new();
    let first = cluster
        .create_builtin("", "v1", "configmaps", "default", json!({"metadata": {"name": "versioned"}}))
        .expect("create")
        .object;
    let t = config_map(&cluster, "versioned");
    let patch = |data: &str| WriteOp::Patch(PatchKind::Merge, json!({"data": {"k": data}}));
    cluster.write(&t, &patch("newer"), &WriteOptions::default()).expect("patch");
    let mut stale = first.clone();
    stale["data"] = json!({"k": "stale"});
    let err = cluster.write(&t, &WriteOp::Replace(stale), &WriteOptions::default()).expect_err("a stale PUT");
    assert_eq!((err.code, err.reason), (409, "Conflict"), "{err:?}");
    assert_eq!(cluster.stored(&t).expect("stored")["data"]["k"], "newer");
}
