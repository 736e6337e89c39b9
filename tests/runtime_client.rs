//! The first contact with the API server: retried while it is down, reported clearly when it
//! stays unreachable.

use std::time::Duration;

use backon::ExponentialBuilder;
use kube::Client;
use kube_emulator::Emulator;
use kube_emulator::instruments::faults::DownMode;
use prism_operator::client::{ClientError, build_client, wait_for_api};
use prism_operator::rate_limit::RateLimitLayer;

fn quick_backoff(times: usize) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_millis(400))
        .with_max_times(times)
}

/// An emulator served over HTTPS, and the configuration of its admin (a client certificate).
async fn served() -> (kube_emulator::Server, kube::Config) {
    let server = Emulator::start().serve("127.0.0.1:0").await.expect("emulator");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).expect("kubeconfig");
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.expect("config");
    (server, config)
}

#[tokio::test]
async fn an_unreachable_api_is_reported_with_its_address() {
    // Nothing listens on port 1 of the loopback interface.
    let config = kube::Config::new("http://127.0.0.1:1".parse().expect("uri"));
    let client = build_client(config, RateLimitLayer::from_qps(20.0, 30), None).expect("client");
    let err = wait_for_api(&client, "http://127.0.0.1:1/", quick_backoff(2)).await.expect_err("unreachable");
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot reach the Kubernetes API at http://127.0.0.1:1/: "), "{err}");
}

#[tokio::test]
async fn the_first_contact_is_retried_while_the_api_server_is_down() {
    let emulator = Emulator::start();
    emulator.instruments.faults.server_down(Duration::from_millis(500), DownMode::Unavailable);
    let client = Client::new(emulator.router(), "default");
    let info = wait_for_api(&client, "emulator", quick_backoff(6)).await.expect("reached after the outage");
    assert!(!info.git_version.is_empty());
}

#[tokio::test]
async fn an_https_client_has_a_crypto_provider() {
    // kube's rustls-tls without a provider feature fails every https request; with ring the
    // failure is the connection's, not the TLS setup's.
    let config = kube::Config::new("https://127.0.0.1:1".parse().expect("uri"));
    let client = build_client(config, None, None).expect("client");
    let err = wait_for_api(&client, "https://127.0.0.1:1/", quick_backoff(0)).await.expect_err("unreachable");
    let chain = format!("{:?}", err);
    assert!(!chain.to_lowercase().contains("cryptoprovider"), "{chain}");
}

#[tokio::test]
async fn every_request_names_the_operator_and_its_version() {
    let (server, config) = served().await;
    let client = build_client(config, None, None).expect("client");
    wait_for_api(&client, "emulator", quick_backoff(0)).await.expect("reached");
    let snapshot = server.emulator.instruments.requests.snapshot();
    let agents: Vec<&str> = snapshot.log.iter().map(|r| r.info.user_agent.as_str()).collect();
    let expected = format!("prism-operator/{} (", env!("CARGO_PKG_VERSION"));
    assert!(!agents.is_empty() && agents.iter().all(|a| a.starts_with(&expected)), "{agents:?}");
}

/// Found by the soak (seed 7978499892207751753): while the API answered 503, one operator process
/// sent 129 requests in a second, past what `--qps 20 --burst 30` on its two clients allow: kube
/// retries 429, 503 and 504 below the layers the operator adds, from 5 ms on, so the retries
/// took no token (and the request metrics counted none of them). Each attempt now waits for a
/// token and is counted with its answer.
#[tokio::test]
async fn retries_of_refused_requests_wait_for_tokens_and_are_counted() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, ListParams};
    use kube_emulator::instruments::faults::FaultRule;

    let (server, config) = served().await;
    let metrics = std::sync::Arc::new(prism_controllers::metrics::Metrics::new());
    let (qps, burst) = (5.0, 2);
    let client = build_client(config, RateLimitLayer::from_qps(qps, burst), Some(metrics.clone())).expect("client");
    let instruments = &server.emulator.instruments;
    let refusal = instruments.faults.add(FaultRule::error(503).verb("list").resource("configmaps"));

    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let lists: Vec<_> = (0..4)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.list(&ListParams::default()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    instruments.faults.remove(refusal);
    for list in lists {
        list.await.expect("joined").expect("listed once the API answers again");
    }

    let log = instruments.requests.snapshot().log;
    let sent: Vec<_> = log.iter().filter(|r| r.info.resource == "configmaps").collect();
    let first = sent.first().expect("requests").at;
    let in_first_second = sent.iter().filter(|r| r.at.duration_since(first) < Duration::from_secs(1)).count();
    assert!(in_first_second <= burst as usize + qps as usize, "{in_first_second} requests in the first second");
    let refused = sent.iter().filter(|r| r.code == 503).count();
    assert!(refused >= 4, "every list was refused at least once: {refused}");
    let counted = metrics.encode();
    let line = format!("prism_operator_kube_requests_total{{verb=\"list\",code=\"503\"}} {refused}\n");
    assert!(counted.contains(&line), "each refused attempt is counted: {line}in\n{counted}");
}

/// The client caps each connection's read buffer (64 KiB): a larger response is read in pieces,
/// whole, over HTTPS with a client certificate, as a list page of big objects is.
#[tokio::test]
async fn a_response_larger_than_the_read_buffer_is_read_whole() {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, ListParams, ObjectMeta, PostParams};

    let (_server, config) = served().await;
    let api: Api<ConfigMap> = Api::namespaced(build_client(config, None, None).expect("client"), "default");
    let big = "x".repeat(300 * 1024);
    for name in ["big-1", "big-2"] {
        let meta = ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() };
        let data = BTreeMap::from([("payload".to_string(), big.clone())]);
        let map = ConfigMap { metadata: meta, data: Some(data), ..ConfigMap::default() };
        api.create(&PostParams::default(), &map).await.expect("created");
    }

    let read = api.get("big-1").await.expect("read back");
    assert_eq!(read.data.and_then(|d| d.get("payload").map(String::len)), Some(big.len()));
    let listed = api.list(&ListParams::default()).await.expect("listed");
    let sizes: Vec<usize> = listed.items.iter().filter_map(|m| Some(m.data.as_ref()?.get("payload")?.len())).collect();
    assert_eq!(sizes, [big.len(), big.len()]);
}
