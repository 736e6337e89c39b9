//! Prints the emulator's performance figures (not a timed test):
//! `cargo run --release -p kube-emulator --example bench`.
//!
//! Targets on a 2-core machine: >= 2,000 writes/s over HTTP with 16 concurrent clients, watch
//! delivery p99 < 50 ms with 20 watchers, 100,000 small objects in < 1 GiB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube_emulator::{Cluster, Emulator, WriteOptions};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("cm")
}

async fn client_for(em: &Emulator) -> kube::Client {
    let cfg = kube::Config::new(em.url().parse().expect("url"));
    kube::Client::try_from(cfg).expect("client")
}

async fn writes_per_second(em: &Emulator) {
    let clients = 16;
    let per_client = 500;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api: Api<ConfigMap> = Api::default_namespaced(client_for(em).await);
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                api.create(&PostParams::default(), &cm(&format!("w-{c}-{i}"))).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let n = clients * per_client;
    println!("writes/s over HTTP, {clients} clients: {:.0}", n as f64 / start.elapsed().as_secs_f64());
}

async fn list_latency(em: &Emulator) {
    let api: Api<ConfigMap> = Api::namespaced(client_for(em).await, "default");
    let start = Instant::now();
    let rounds = 10;
    let mut count = 0;
    for _ in 0..rounds {
        count = api.list(&ListParams::default()).await.expect("list").items.len();
    }
    println!("list latency at {count} objects: {:?}", start.elapsed() / rounds);
}

async fn watch_latency(em: &Emulator) {
    let api: Api<ConfigMap> = Api::namespaced(client_for(em).await, "kube-public");
    let rv = api.list(&ListParams::default()).await.expect("list").metadata.resource_version.expect("rv");
    let writes = 200;
    let mut watchers = Vec::new();
    for _ in 0..20 {
        let api = api.clone();
        let rv = rv.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = api.watch(&WatchParams::default(), &rv).await.expect("watch").boxed();
            let mut lat = Vec::new();
            while lat.len() < writes {
                if let Some(Ok(WatchEvent::Added(o))) = stream.next().await {
                    let sent: u128 = o.data.and_then(|d| d.get("t").cloned()).and_then(|t| t.parse().ok()).unwrap_or(0);
                    lat.push(now_micros().saturating_sub(sent));
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..writes {
        let mut o = cm(&format!("l-{i}"));
        o.data = Some([("t".to_string(), now_micros().to_string())].into());
        api.create(&PostParams::default(), &o).await.expect("create");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut all: Vec<u128> = Vec::new();
    for w in watchers {
        all.extend(w.await.expect("join"));
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!("watch delivery with 20 watchers: p50 {:.2} ms, p99 {:.2} ms", pct(0.50), pct(0.99));
}

fn now_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn memory_at_100k() {
    let before = rss_mib();
    let cluster: Arc<Cluster> = Cluster::new();
    let t = cluster.target("", "v1", "configmaps", "default", "").expect("target");
    for i in 0..100_000 {
        let body =
            json!({"metadata": {"name": format!("m-{i}"), "labels": {"app": "bench"}}, "data": {"key": "value"}});
        cluster.create(&t, body, &WriteOptions::manager("bench")).expect("create");
    }
    println!("RSS with 100,000 small objects: {:.0} MiB (+{:.0} MiB)", rss_mib(), rss_mib() - before);
}

#[tokio::main]
async fn main() {
    let em = Emulator::start("127.0.0.1:0").await.expect("start");
    writes_per_second(&em).await;
    list_latency(&em).await;
    watch_latency(&em).await;
    em.stop().await;
    memory_at_100k();
}
