//! The chart's dashboard and alerts read metrics that exist: after a lifecycle against the
//! emulator (a cluster converges, a write fails once, the cluster is deleted), every metric and
//! label their PromQL selects is on the operator's /metrics, every expression parses, and the
//! deleted cluster's series are gone rather than frozen.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::api::DeleteParams;
use kube_emulator::instruments::faults::{FaultAction, FaultRule};
use prism_api::v1beta1::{ClusterPhase, PrismCluster};
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, LabelModifier};
use serde_json::Value;

use crate::harness::{Env, eventually, sample};
use crate::operator_log;

const DASHBOARD: &str = "charts/prism-operator/files/dashboards/prism-operator.json";
const RULES: &str = "charts/prism-operator/files/prometheus-rules.yaml";

/// Labels Prometheus adds to every scraped series (target labels): not on /metrics itself.
const TARGET_LABELS: [&str; 7] = ["namespace", "pod", "job", "instance", "service", "endpoint", "container"];

fn read(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every PromQL expression of the dashboard (Grafana's variables replaced) and of the alerts.
fn expressions() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr").replace("$__rate_interval", "5m");
            out.push((format!("panel {:?}", panel["title"]), expr));
        }
    }
    let rules: Value = serde_saphyr::from_str(&read(RULES)).expect("rules YAML");
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            out.push((format!("alert {}", rule["alert"]), rule["expr"].as_str().expect("expr").to_string()));
        }
    }
    out
}

/// A label matcher: label, operator, value.
type Matcher = (String, MatchOp, String);

/// What an expression reads: each selector (metric, label matchers) and each grouping label with
/// the metrics it groups.
#[derive(Default)]
struct Reads {
    selectors: Vec<(String, Vec<Matcher>)>,
    groupings: Vec<(String, Vec<String>)>,
}

impl Reads {
    fn of(expr: &Expr) -> Reads {
        let mut reads = Reads::default();
        reads.walk(expr);
        reads
    }

    /// Returns the metrics read under `expr`.
    fn walk(&mut self, expr: &Expr) -> Vec<String> {
        match expr {
            Expr::VectorSelector(vs) => self.selector(vs),
            Expr::MatrixSelector(ms) => self.selector(&ms.vs),
            Expr::Aggregate(agg) => {
                let metrics = self.walk(&agg.expr);
                if let Some(LabelModifier::Include(labels)) = &agg.modifier {
                    for label in &labels.labels {
                        self.groupings.push((label.clone(), metrics.clone()));
                    }
                }
                metrics
            }
            Expr::Binary(binary) => {
                let mut metrics = self.walk(&binary.lhs);
                metrics.extend(self.walk(&binary.rhs));
                metrics
            }
            Expr::Unary(unary) => self.walk(&unary.expr),
            Expr::Paren(paren) => self.walk(&paren.expr),
            Expr::Subquery(sub) => self.walk(&sub.expr),
            Expr::Call(call) => call.args.args.iter().flat_map(|a| self.walk(a)).collect(),
            _ => Vec::new(),
        }
    }

    fn selector(&mut self, vs: &promql_parser::parser::VectorSelector) -> Vec<String> {
        let name = vs.name.clone().expect("every selector names its metric");
        let matchers = vs.matchers.matchers.iter().map(|m| (m.name.clone(), m.op.clone(), m.value.clone())).collect();
        self.selectors.push((name.clone(), matchers));
        vec![name]
    }
}

/// The series of a scrape: metric name -> label name -> values.
type Scrape = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn parse_scrape(text: &str) -> Scrape {
    let mut scrape = Scrape::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, _value) = line.rsplit_once(' ').expect("name value");
        let (name, labels) = series.split_once('{').map_or((series, ""), |(n, l)| (n, l.trim_end_matches('}')));
        let entry = scrape.entry(name.to_string()).or_default();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (label, value) = pair.split_once("=\"").expect("label=\"value\"");
            entry.entry(label.to_string()).or_default().insert(value.trim_end_matches('"').to_string());
        }
    }
    scrape
}

/// What of `expr` the scrape lacks.
fn missing(reads: &Reads, scrape: &Scrape) -> Vec<String> {
    let mut missing = Vec::new();
    for (metric, matchers) in &reads.selectors {
        let Some(labels) = scrape.get(metric) else {
            missing.push(format!("metric {metric}"));
            continue;
        };
        for (label, op, value) in matchers {
            match labels.get(label) {
                None if TARGET_LABELS.contains(&label.as_str()) => {}
                None => missing.push(format!("label {label} of {metric}")),
                Some(values) if *op == MatchOp::Equal && !values.contains(value) => {
                    missing.push(format!("{metric}{{{label}=\"{value}\"}}"));
                }
                Some(_) => {}
            }
        }
    }
    for (label, metrics) in &reads.groupings {
        for metric in metrics {
            let has = scrape.get(metric).is_some_and(|l| l.contains_key(label));
            if !has && !TARGET_LABELS.contains(&label.as_str()) {
                missing.push(format!("label {label} of {metric} (grouped by)"));
            }
        }
    }
    missing
}

async fn scrape(address: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("metrics endpoint");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: operator\r\n\r\n").await.expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("response");
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    body.to_string()
}

/// The address the operator logged it serves /metrics on.
async fn metrics_address(env: &mut Env) -> String {
    let log = env.operators()[0].log.clone();
    eventually("the operator serving /metrics", Duration::from_secs(30), || async {
        operator_log::listening_addr(&log, "metrics").map(|addr| addr.to_string())
    })
    .await
}

#[test]
fn every_expression_parses_and_the_dashboard_uses_theme_colours() {
    for (where_, expr) in expressions() {
        parser::parse(&expr).unwrap_or_else(|e| panic!("{where_}: {expr}\n{e}"));
    }
    let text = read(DASHBOARD);
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    // Named colours and palettes follow Grafana's theme; a fixed colour is unreadable on one.
    assert!(!text.contains("\"#") && !text.contains("rgb("), "fixed colours in {DASHBOARD}");
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert!(panel["targets"].as_array().is_some_and(|t| !t.is_empty()), "{} has no query", panel["title"]);
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{} uses the data source variable", panel["title"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alerts_read_metrics_the_operator_serves() {
    let mut env = Env::new("observability").await;
    // One failed write, so that the errors series exist as they would in a real life.
    let once = FaultRule::new(FaultAction::Error { code: 500, message: None, retry_after_seconds: None })
        .resource("configmaps")
        .verb("patch")
        .times(1);
    env.emulator().instruments.faults.add(once);
    env.start_operator("a", &["--memory-limit", "268435456"]);
    let address = metrics_address(&mut env).await;
    env.apply(&sample("prism-local.yaml", &env.namespace)).await;
    let clusters = env.api::<PrismCluster>();
    eventually("prism-local Running", Duration::from_secs(60), || async {
        let phase = clusters.get("prism-local").await.ok()?.status?.phase;
        (phase == Some(ClusterPhase::Running)).then_some(())
    })
    .await;

    let live = parse_scrape(&scrape(&address).await);
    let gaps: Vec<String> = expressions()
        .into_iter()
        .flat_map(|(where_, expr)| {
            let reads = Reads::of(&parser::parse(&expr).expect("parses"));
            missing(&reads, &live).into_iter().map(move |m| format!("{where_}: {m}"))
        })
        .collect();
    assert!(gaps.is_empty(), "read but not served:\n{}\n{}", gaps.join("\n"), env.operator_logs());
    let components = &live["prism_cluster_components_ready"]["component"];
    assert_eq!(components.iter().map(String::as_str).collect::<Vec<_>>(), ["admin", "minio", "nats", "proxy", "redis"]);
    assert_eq!(live["prism_cluster_patterns_ready"]["pattern"].len(), 4, "one series per pattern");

    clusters.delete("prism-local", &DeleteParams::default()).await.expect("deleted");
    eventually("prism-local gone", Duration::from_secs(60), || async {
        clusters.get_opt("prism-local").await.ok().flatten().is_none().then_some(())
    })
    .await;
    let after = scrape(&address).await;
    let frozen: Vec<&str> = after
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && l.contains("prism-local")
                && (l.starts_with("prism_cluster_") || l.contains("PrismCluster"))
        })
        .collect();
    assert!(frozen.is_empty(), "a deleted cluster's series stay:\n{}", frozen.join("\n"));
}
