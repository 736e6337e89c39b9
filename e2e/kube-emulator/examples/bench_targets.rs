//! Emulator figures against the targets of issue 3 (not a timed test):
//! `cargo run --release -p kube-emulator --example bench_targets`.
//!
//! Prints, next to the targets for a 2-core machine: writes/s over HTTP with 16 concurrent
//! clients, list latency at 10,000 objects (full list and kube-runtime's first page of 500),
//! watch delivery latency p50/p99 with 20 watchers (from the write request to receipt), and the
//! process RSS once the cluster holds 100,000 more small objects. The instruments middleware
//! (request accounting, fault rules) and the controllers (GC, workload simulation) run
//! throughout, as in tests.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, Config};
use kube_emulator::emulator::Transport;
use kube_emulator::{Cluster, Emulator, Server};
use serde_json::json;

const WRITERS: usize = 16;
const WRITES_PER_WRITER: usize = 500;
const LIST_OBJECTS: usize = 10_000;
const LIST_ROUNDS: usize = 20;
const WATCHERS: usize = 20;
const WATCH_EVENTS: usize = 1_000;
const WATCH_RATE_PER_SEC: u64 = 500;
const RSS_OBJECTS: usize = 100_000;
const SENT_AT: &str = "bench.kube-emulator.io/sent-at-ns";

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> BenchResult<()> {
    // Plain HTTP, as the figures in the README were measured (the admin's requests skip RBAC).
    let em = Emulator::start().serve_with("127.0.0.1:0", Transport::Http).await?;
    for ns in ["writes", "lists", "watches", "rss"] {
        create_namespace(&em.emulator.cluster, ns)?;
    }
    let writes = writes_per_second(&em).await?;
    let (list_p50, list_p99, page_p50) = list_latency(&em).await?;
    let (watch_p50, watch_p99) = watch_latency(&em).await?;
    let rss = rss_at(&em.emulator.cluster)?;

    println!("{:<44} {:>14} {:>14}", "measure", "result", "target");
    println!("{:<44} {:>14.0} {:>14}", "writes/s over HTTP (16 clients)", writes, ">= 2000");
    println!("{:<44} {:>11.1} ms {:>14}", "list 10,000 objects, p50", list_p50, "-");
    println!("{:<44} {:>11.1} ms {:>14}", "list 10,000 objects, p99", list_p99, "-");
    println!("{:<44} {:>11.1} ms {:>14}", "list first page of 500 of 10,000, p50", page_p50, "-");
    println!("{:<44} {:>11.2} ms {:>14}", "watch delivery p50 (20 watchers)", watch_p50, "-");
    println!("{:<44} {:>11.2} ms {:>14}", "watch delivery p99 (20 watchers)", watch_p99, "< 50 ms");
    println!("{:<44} {:>10.0} MiB {:>14}", "RSS holding 100,000 small objects", rss, "< 1024 MiB");
    let ok = writes >= 2000.0 && watch_p99 < 50.0 && rss < 1024.0;
    println!("targets met: {ok}");
    Ok(())
}

fn client_for(em: &Server) -> BenchResult<Client> {
    let mut config = Config::new(em.url().parse()?);
    config.default_namespace = "default".into();
    config.auth_info.token = Some(em.emulator.authenticator.admin_token().to_string().into());
    Ok(Client::try_from(config)?)
}

fn create_namespace(cluster: &Cluster, name: &str) -> BenchResult<()> {
    cluster.create_builtin("", "v1", "namespaces", "", json!({"metadata": {"name": name}}))?;
    Ok(())
}

fn small_cm(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name}, "data": {"key": "value"}})
}

/// 16 clients (own connection pools) creating ConfigMaps as fast as they can.
async fn writes_per_second(em: &Server) -> BenchResult<f64> {
    let mut apis = Vec::new();
    for _ in 0..WRITERS {
        apis.push(Api::<ConfigMap>::namespaced(client_for(em)?, "writes"));
    }
    let started = Instant::now();
    let tasks: Vec<_> = apis
        .into_iter()
        .enumerate()
        .map(|(w, api)| {
            tokio::spawn(async move {
                for i in 0..WRITES_PER_WRITER {
                    let cm: ConfigMap = serde_json::from_value(small_cm(&format!("w{w}-{i}")))?;
                    api.create(&PostParams::default(), &cm).await?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((WRITERS * WRITES_PER_WRITER) as f64 / started.elapsed().as_secs_f64())
}

/// Full lists and first pages (kube-runtime's limit=500) of 10,000 ConfigMaps, in ms.
async fn list_latency(em: &Server) -> BenchResult<(f64, f64, f64)> {
    let t = em.emulator.cluster.target("", "v1", "configmaps", "lists", "")?;
    for i in 0..LIST_OBJECTS {
        em.emulator.cluster.create(&t, small_cm(&format!("l{i}")), &kube_emulator::WriteOptions::default())?;
    }
    let api: Api<ConfigMap> = Api::namespaced(client_for(em)?, "lists");
    let mut full = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..LIST_ROUNDS {
        let started = Instant::now();
        let list = api.list(&ListParams::default()).await?;
        full.push(started.elapsed().as_secs_f64() * 1000.0);
        if list.items.len() != LIST_OBJECTS {
            return Err(format!("listed {} objects, expected {LIST_OBJECTS}", list.items.len()).into());
        }
        let started = Instant::now();
        api.list(&ListParams::default().limit(500)).await?;
        pages.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((percentile(&mut full, 0.5), percentile(&mut full, 0.99), percentile(&mut pages, 0.5)))
}

/// 20 watchers; a writer creates ConfigMaps stamped with their send time; each watcher measures
/// the time to receive each ADDED event. Returns p50 and p99 in ms.
async fn watch_latency(em: &Server) -> BenchResult<(f64, f64)> {
    let rv = em.emulator.cluster.store.lock().rv.to_string();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let api: Api<ConfigMap> = Api::namespaced(client_for(em)?, "watches");
        let stream = api.watch(&WatchParams::default().timeout(290), &rv).await?.boxed();
        watchers.push(tokio::spawn(collect_latencies(stream)));
    }
    let writer: Api<ConfigMap> = Api::namespaced(client_for(em)?, "watches");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / WATCH_RATE_PER_SEC));
    for i in 0..WATCH_EVENTS {
        tick.tick().await;
        let mut cm = small_cm(&format!("e{i}"));
        cm["metadata"]["annotations"] = json!({SENT_AT: now_ns().to_string()});
        writer.create(&PostParams::default(), &serde_json::from_value(cm)?).await?;
    }
    let mut all = Vec::new();
    for w in watchers {
        all.extend(w.await??);
    }
    Ok((percentile(&mut all, 0.5), percentile(&mut all, 0.99)))
}

async fn collect_latencies(
    mut stream: futures::stream::BoxStream<'static, kube::Result<WatchEvent<ConfigMap>>>,
) -> BenchResult<Vec<f64>> {
    let mut out = Vec::with_capacity(WATCH_EVENTS);
    while out.len() < WATCH_EVENTS {
        let Some(event) = stream.try_next().await? else { break };
        if let WatchEvent::Added(cm) = event {
            let sent: u128 =
                cm.metadata.annotations.as_ref().and_then(|a| a.get(SENT_AT)).and_then(|s| s.parse().ok()).unwrap_or(0);
            out.push(now_ns().saturating_sub(sent) as f64 / 1e6);
        }
    }
    Ok(out)
}

/// Process RSS in MiB after storing 100,000 more small ConfigMaps (in-process writes).
fn rss_at(cluster: &Arc<Cluster>) -> BenchResult<f64> {
    let t = cluster.target("", "v1", "configmaps", "rss", "")?;
    for i in 0..RSS_OBJECTS {
        cluster.create(&t, small_cm(&format!("r{i}")), &kube_emulator::WriteOptions::default())?;
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS in /proc/self/status")?;
    Ok(kib / 1024.0)
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx]
}
