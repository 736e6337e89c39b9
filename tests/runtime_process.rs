//! The operator binary as separate processes against the emulator over loopback: failover after
//! kill -9, hand-over on SIGTERM, exit on a lost lease, flags from the environment.

#[path = "support/operator_log.rs"]
#[allow(dead_code)] // Shared; this test reads addresses but routes no Service.
mod operator_log;

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};
use kube_emulator::{Emulator, Server};
use tokio::time::{Instant, sleep};

const LEASE_DURATION: Duration = Duration::from_secs(3);
const RETRY_PERIOD: Duration = Duration::from_millis(300);
/// Process start-up and scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(2);

struct Operator {
    identity: String,
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn start(kubeconfig: &std::path::Path, identity: &str) -> Operator {
        let log = scratch(&format!("{identity}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_prism-operator"))
            .arg("run")
            // Port 0 everywhere: the bound addresses are read from the log (see operator_log).
            .args(["--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--webhook-addr=127.0.0.1:0"])
            .arg("--lease-namespace=default")
            .args(["--lease-duration=3s", "--renew-deadline=2s", "--retry-period=300ms"])
            .arg(format!("--identity={identity}"))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--log-format=json")
            .env("PRISM_OPERATOR_LOG_LEVEL", "info,prism_controllers=warn,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("the operator starts");
        Operator { identity: identity.to_string(), child, log }
    }

    /// The status line and body of GET `path` on the endpoint for `purpose` ("metrics",
    /// "health probes"); "unreachable" until the operator has bound it.
    fn get(&self, purpose: &str, path: &str) -> (String, String) {
        use std::io::{Read, Write};
        let addr = operator_log::listening_addr(&self.log, purpose);
        let Some(mut stream) = addr.and_then(|addr| std::net::TcpStream::connect(addr).ok()) else {
            return ("unreachable".into(), String::new());
        };
        let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (head.lines().next().unwrap_or_default().to_string(), body.to_string())
    }

    fn ready(&self) -> bool {
        self.get("health probes", "/readyz").0.contains(" 200 ")
    }

    fn leader_gauge(&self) -> Option<String> {
        let (_, body) = self.get("metrics", "/metrics");
        body.lines().find(|l| l.starts_with("prism_operator_leader ")).map(str::to_string)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(status.expect("kill runs").success());
    }

    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} still runs; log:\n{}", self.identity, self.log());
            sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// A file of this test run in the temporary directory: `prism-runtime-<pid>-<name>`. Only these
/// exact files are ever removed (by `Operator` and `ScratchFile` on drop), never a directory.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("prism-runtime-{}-{name}", std::process::id()))
}

/// Removes one scratch file when the test ends.
struct ScratchFile(PathBuf);

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The emulator on a loopback port, with the CRDs installed, and its kubeconfig.
async fn emulator(test: &str) -> (Server, ScratchFile, Api<Lease>) {
    let emulator = Emulator::start();
    let client = Client::new(emulator.router(), "default");
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    for crd in prism_api::crds() {
        crds.create(&PostParams::default(), &crd).await.expect("CRD created");
    }
    serve(emulator, test).await
}

/// The emulator on a loopback port as it is, and its kubeconfig.
async fn serve(emulator: Emulator, test: &str) -> (Server, ScratchFile, Api<Lease>) {
    let server = emulator.serve("127.0.0.1:0").await.expect("emulator");
    let kubeconfig = scratch(&format!("{test}.kubeconfig"));
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let leases = Api::namespaced(Client::new(server.emulator.router(), "default"), "default");
    (server, ScratchFile(kubeconfig), leases)
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    let lease = api.get_opt("prism-operator-leader").await.expect("read lease")?;
    lease.spec.and_then(|s| s.holder_identity)
}

/// Waits until the lease is held by one of `candidates`; returns which.
async fn wait_for_holder(api: &Api<Lease>, candidates: &[&str], limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(h) = holder(api).await.filter(|h| candidates.contains(&h.as_str())) {
            return Some(h);
        }
        sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_after_kill_9_and_a_sigterm_hands_the_lease_over() {
    let (_emulator, kubeconfig, api) = emulator("failover").await;
    let mut operators = vec![Operator::start(&kubeconfig.0, "op-a"), Operator::start(&kubeconfig.0, "op-b")];
    let first = wait_for_holder(&api, &["op-a", "op-b"], Duration::from_secs(20)).await;
    let first = first.unwrap_or_else(|| panic!("nobody leads; logs:\n{}\n{}", operators[0].log(), operators[1].log()));
    let leader = operators.iter().position(|o| o.identity == first).expect("a known identity");
    let mut dead = operators.remove(leader);
    let mut standby = operators.remove(0);
    // Both are ready: one leads, the other is a healthy standby; only the leader says so.
    assert!(eventually(SLACK, || dead.ready() && standby.ready()).await, "not ready");
    assert_eq!(dead.leader_gauge().as_deref(), Some("prism_operator_leader 1"));
    assert_eq!(standby.leader_gauge().as_deref(), Some("prism_operator_leader 0"));

    dead.signal("KILL");
    let killed = Instant::now();
    dead.exit_within(SLACK).await;
    let took_over = wait_for_holder(&api, &[standby.identity.as_str()], LEASE_DURATION + RETRY_PERIOD + SLACK).await;
    assert!(took_over.is_some(), "no takeover after {:?}; standby log:\n{}", killed.elapsed(), standby.log());
    let takeover = killed.elapsed();
    assert!(takeover <= LEASE_DURATION + RETRY_PERIOD + SLACK, "took {takeover:?}");
    println!("takeover after kill -9: {takeover:?} (lease duration {LEASE_DURATION:?})");
    assert!(eventually(SLACK, || standby.leader_gauge().as_deref() == Some("prism_operator_leader 1")).await);

    // SIGTERM: the controllers stop, the lease is released (no holder), the process exits 0.
    // First let the controllers' caches fill, so that the SIGTERM drains running controllers
    // (one that has not listed yet stops at once, with nothing to drain).
    sleep(Duration::from_millis(1500)).await;
    standby.signal("TERM");
    let terminated = Instant::now();
    let status = standby.exit_within(Duration::from_secs(25)).await;
    println!("exited {:?} after SIGTERM", terminated.elapsed());
    assert!(status.success(), "{status:?}; log:\n{}", standby.log());
    assert_eq!(holder(&api).await, None, "the lease was not released; log:\n{}", standby.log());
    assert!(standby.log().contains("released the leader lease"), "{}", standby.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lease_exits_non_zero_at_once() {
    let (_emulator, kubeconfig, api) = emulator("lost").await;
    let mut operator = Operator::start(&kubeconfig.0, "op-lost");
    let leading = wait_for_holder(&api, &["op-lost"], Duration::from_secs(20)).await;
    assert!(leading.is_some(), "never led; log:\n{}", operator.log());

    let mut lease = api.get("prism-operator-leader").await.expect("lease");
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
    }
    api.replace("prism-operator-leader", &PostParams::default(), &lease).await.expect("taken over");
    let taken = Instant::now();

    let status = operator.exit_within(RETRY_PERIOD + SLACK).await;
    assert!(!status.success(), "{status:?}");
    println!("exited {:?} after the lease was taken", taken.elapsed());
    let log = operator.log();
    assert!(log.contains("lost the leader lease"), "{log}");
    assert!(log.contains("intruder"), "{log}");
    assert!(!log.contains("panicked"), "it exits without a panic on the way out: {log}");
}

/// Without the CRDs the controllers never list their objects; a SIGTERM must still stop the
/// operator at once (kube-runtime's runner waited for that first list until the drain timeout,
/// 20 s; the work queue's loop stops at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_stops_at_once_even_before_the_first_list() {
    let (_emulator, kubeconfig, api) = serve(Emulator::start(), "no-crds").await;
    let mut operator = Operator::start(&kubeconfig.0, "op-no-crds");
    let leading = wait_for_holder(&api, &["op-no-crds"], Duration::from_secs(20)).await;
    assert!(leading.is_some(), "never led; log:\n{}", operator.log());
    sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    operator.signal("TERM");
    let status = operator.exit_within(Duration::from_secs(5)).await;
    println!("exited {:?} after SIGTERM", asked.elapsed());
    assert!(status.success(), "{status:?}; log:\n{}", operator.log());
}

#[test]
fn flags_come_from_prism_operator_variables_too() {
    let output = Command::new(env!("CARGO_BIN_EXE_prism-operator"))
        .arg("run")
        .env("PRISM_OPERATOR_QPS", "-1")
        .output()
        .expect("the operator runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--qps must be a finite number >= 0"), "{stderr}");
}

#[test]
fn an_unreadable_kubeconfig_is_reported_with_its_path() {
    let output = Command::new(env!("CARGO_BIN_EXE_prism-operator"))
        .args([
            "run",
            "--kubeconfig=/nonexistent/kubeconfig",
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--webhook-addr=127.0.0.1:0",
        ])
        .output()
        .expect("the operator runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the kubeconfig /nonexistent/kubeconfig"), "{stderr}");
}
