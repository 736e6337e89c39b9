//! The end-to-end harness: the operator binary as a separate process, kubectl with its own HOME,
//! and an API server — the emulator (with simulated workloads and fault injection) or, when
//! `PRISM_E2E_KUBECONFIG` names a kubeconfig, a real cluster. Each scenario gets its own
//! namespace, so scenarios run in parallel and leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use kube_emulator::{Emulator, Server};
use serde_json::json;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::operator_log;

/// The webhook's Service, as the operator's flag defaults name it.
pub const WEBHOOK_SERVICE: &str = "prism-operator-webhook";

/// Names a kubeconfig of a real cluster to run the scenarios against instead of the emulator.
pub const REAL_CLUSTER_ENV: &str = "PRISM_E2E_KUBECONFIG";

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// One scenario's world.
pub struct Env {
    /// The scenario's own namespace.
    pub namespace: String,
    pub kubeconfig: PathBuf,
    /// The in-process emulator's server, unless running against a real cluster.
    pub server: Option<Server>,
    pub client: Client,
    home: TempDir,
    operators: Vec<Operator>,
    /// Operators started from now on watch every namespace (not only the scenario's).
    pub watch_all_namespaces: bool,
    /// Where the operators' webhook Service and certificate Secret live (a chart's release
    /// namespace), apart from the Prism resources.
    pub operator_namespace: String,
    /// Whether the API server reaches the operators' webhook (false: as with the operator down,
    /// so that admission steps aside and the conditions report problems instead).
    pub webhook_reachable: bool,
    /// Short lease timings (3 s lease, 2 s renew deadline) for the scenarios that kill leaders and
    /// time the takeover. The others get the chart's defaults: a loaded machine can starve a
    /// process for two seconds, and a leader that cannot renew in time exits by design.
    pub fast_failover: bool,
}

/// A running `prism-operator run` process.
pub struct Operator {
    pub child: Child,
    pub identity: String,
    pub log: PathBuf,
}

impl Env {
    /// A fresh world for scenario `name`: API server, CRDs installed, the scenario's namespace.
    pub async fn new(name: &str) -> Env {
        Env::with_crds(name, prism_api::crds()).await
    }

    /// A fresh world with `crds` installed (e.g. those of an earlier release).
    pub async fn with_crds(name: &str, crds: Vec<CustomResourceDefinition>) -> Env {
        let namespace = format!("e2e-{name}-{}-{}", std::process::id(), SEQUENCE.fetch_add(1, Ordering::Relaxed));
        Env::with_crds_in(namespace, crds).await
    }

    /// An environment whose scenario runs in `namespace`, named by the caller: for objects
    /// restored from a fixture, whose contents name their namespace. Emulated scenarios only
    /// (each has its own emulator); on a real cluster, names must not collide.
    pub async fn with_crds_in(namespace: String, crds: Vec<CustomResourceDefinition>) -> Env {
        // Under the build's own temporary directory, not /tmp: kubectl's cache and the operators'
        // logs stay with the checkout that ran them.
        let home = tempfile::Builder::new().prefix("e2e-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp HOME");
        let (server, kubeconfig) = match std::env::var_os(REAL_CLUSTER_ENV) {
            Some(path) => (None, PathBuf::from(path)),
            None => {
                let emulator = Emulator::start();
                emulator.instruments.simulation.enable(Duration::from_millis(100));
                let server = emulator.serve("127.0.0.1:0").await.expect("emulator");
                let path = home.path().join("kubeconfig");
                server.write_kubeconfig(&path).expect("kubeconfig");
                (Some(server), path)
            }
        };
        let client = client_for(&kubeconfig).await;
        let env = Env {
            operator_namespace: format!("{namespace}-operator"),
            namespace,
            kubeconfig,
            server,
            client,
            home,
            operators: Vec::new(),
            watch_all_namespaces: false,
            webhook_reachable: true,
            fast_failover: false,
        };
        env.install_crds(crds).await;
        env.create_namespace().await;
        env
    }

    /// Ends the scenario as dropping it does, and returns once its emulator is freed (see
    /// [`Server::stop`]): a benchmark measures on a fresh one next.
    #[allow(dead_code)] // The benchmark's; a scenario's world ends with the scenario.
    pub async fn shut_down(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Whether the scenario runs against the emulator (fault injection and simulated readiness).
    pub fn emulated(&self) -> bool {
        self.server.is_some()
    }

    /// Whether scenarios run against the emulator, known before an environment is made: a
    /// scenario that would change what a real cluster shares (its CRDs) asks first.
    pub fn will_emulate() -> bool {
        std::env::var_os(REAL_CLUSTER_ENV).is_none()
    }

    /// The emulator, for fault injection and request accounting.
    pub fn emulator(&self) -> &Emulator {
        &self.server.as_ref().expect("this scenario needs the emulator").emulator
    }

    /// Installs (or upgrades) `crds` with server-side apply, as the README's install does.
    pub async fn install_crds(&self, list: Vec<CustomResourceDefinition>) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let params = PatchParams::apply("prism-e2e").force();
        for crd in list {
            let name = crd.metadata.name.clone().expect("name");
            crds.patch(&name, &params, &Patch::Apply(&crd)).await.expect("CRD installed");
        }
    }

    async fn create_namespace(&self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for name in [&self.namespace, &self.operator_namespace()] {
            let ns = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
            namespaces.create(&PostParams::default(), &ns).await.expect("namespace created");
        }
    }

    pub fn operator_namespace(&self) -> String {
        self.operator_namespace.clone()
    }

    /// An Api in the scenario's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Runs kubectl against the scenario's API server and namespace, with the scenario's own HOME
    /// (kubectl caches discovery there) and this build's kubectl-prism on the PATH (so that
    /// `kubectl prism ...` runs the plugin as users run it).
    pub async fn kubectl(&self, args: &[&str]) -> Kubectl {
        self.kubectl_with_input(args, None).await
    }

    /// kubectl with `input` on its standard input (for `-f -`).
    pub async fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Kubectl {
        self.kubectl_in(&self.namespace, args, input).await
    }

    /// kubectl in namespace `namespace` (another team's, with `--as` its user).
    pub async fn kubectl_in(&self, namespace: &str, args: &[&str], input: Option<&str>) -> Kubectl {
        let mut command = Command::new("kubectl");
        command
            .args(args)
            .arg("--namespace")
            .arg(namespace)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .env("PATH", path_with_plugin())
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("kubectl runs");
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(input.as_bytes()).await.expect("stdin");
        }
        let output = child.wait_with_output().await.expect("kubectl finishes");
        Kubectl {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Applies a manifest with kubectl (server-side), failing the scenario if kubectl does.
    pub async fn apply(&self, manifest: &str) {
        let out = self.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(manifest)).await;
        assert!(out.success, "kubectl apply failed: {}", out.stderr);
    }

    /// Starts an operator process watching the scenario's namespace, holding the lease there,
    /// serving its webhook (the emulator reaches the webhook Service at the operator started
    /// last, as a Service reaches a ready pod).
    pub fn start_operator(&mut self, identity: &str, extra: &[&str]) -> &mut Operator {
        let operator = self.spawn_operator(identity, extra);
        self.operators.push(operator);
        self.operators.last_mut().expect("just pushed")
    }

    /// Starts an operator process as [`Env::start_operator`] does, but hands it to the caller
    /// (which kills and restarts processes itself) instead of keeping it. Each process of an
    /// identity logs to a file of its own: a restarted one does not overwrite what its
    /// predecessor logged.
    pub fn spawn_operator(&self, identity: &str, extra: &[&str]) -> Operator {
        let log = (0..)
            .map(|n| match n {
                0 => self.home.path().join(format!("operator-{identity}.log")),
                n => self.home.path().join(format!("operator-{identity}.{n}.log")),
            })
            .find(|path| !path.exists())
            .expect("a free log file name");
        let log_file = std::fs::File::create(&log).expect("log file");
        if let Some(server) = self.server.as_ref().filter(|_| self.webhook_reachable) {
            let route = operator_log::route_to(log.clone(), "the webhook");
            server.emulator.services.route(&self.operator_namespace(), WEBHOOK_SERVICE, route);
        }
        let child = Command::new(env!("CARGO_BIN_EXE_prism-operator"))
            .args(["run", "--lease-namespace", &self.namespace])
            .args(if self.watch_all_namespaces { vec![] } else { vec!["--namespace", &self.namespace] })
            .args(["--webhook-addr", "127.0.0.1:0", "--webhook-namespace", &self.operator_namespace()])
            .args(["--webhook-configuration", &format!("prism-operator-{}", self.namespace)])
            .args(["--identity", identity, "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"])
            .args(if self.fast_failover {
                ["--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms"]
            } else {
                ["--lease-duration", "15s", "--renew-deadline", "10s", "--retry-period", "500ms"]
            })
            .args(["--log-format", "json"])
            .args(extra)
            .env("KUBECONFIG", &self.kubeconfig)
            // PRISM_E2E_OPERATOR_LOG sets the operators' log filter when a scenario needs debugging.
            .env("RUST_LOG", std::env::var("PRISM_E2E_OPERATOR_LOG").unwrap_or_else(|_| "info".to_string()))
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("operator starts");
        Operator { child, identity: identity.to_string(), log }
    }

    /// Waits until an operator has pointed the API server at its webhook (the CRDs convert
    /// through it, the validating configuration exists), as a ready pod would have.
    pub async fn webhook_installed(&self) {
        use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
        let configurations: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let name = format!("prism-operator-{}", self.namespace);
        eventually("the webhook installed", Duration::from_secs(60), || async {
            configurations.get_opt(&name).await.ok().flatten()?;
            let crd = crds.get_opt("prismpatterns.prism.io").await.ok().flatten()?;
            (crd.spec.conversion?.strategy == "Webhook").then_some(())
        })
        .await;
    }

    pub fn operators(&mut self) -> &mut Vec<Operator> {
        &mut self.operators
    }

    /// What the operators logged, for a failing scenario's message.
    pub fn operator_logs(&self) -> String {
        self.operators
            .iter()
            .map(|o| format!("--- {} ---\n{}", o.identity, std::fs::read_to_string(&o.log).unwrap_or_default()))
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for operator in &mut self.operators {
            let _ = operator.child.start_kill();
        }
        if !Env::will_emulate() {
            // On a real cluster, leave nothing behind: the namespace takes everything with it.
            let client = self.client.clone();
            let namespace = self.namespace.clone();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(runtime) = runtime {
                    let namespaces: Api<Namespace> = Api::all(client);
                    let _ = runtime.block_on(namespaces.delete(&namespace, &DeleteParams::background()));
                }
            })
            .join();
        }
    }
}

impl Operator {
    /// Kills the process at once (SIGKILL): no graceful shutdown, no lease release.
    pub async fn kill_hard(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// What kubectl printed.
#[derive(Debug)]
pub struct Kubectl {
    pub success: bool,
    /// The exit code, unless a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// $PATH with the directory of this build's kubectl-prism first.
pub fn path_with_plugin() -> std::ffi::OsString {
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-prism")).parent().map(Path::to_path_buf);
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(plugin_dir.into_iter().chain(std::env::split_paths(&rest))).unwrap_or(rest)
}

async fn client_for(kubeconfig: &Path) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config =
        Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

/// Waits until `check` returns `Some`, up to `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sample manifest `name` (from samples/), with its namespace replaced by the scenario's.
pub fn sample(name: &str, namespace: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name);
    let text = std::fs::read_to_string(path).expect("sample");
    text.replace("namespace: prism", &format!("namespace: {namespace}"))
}

/// Telling the operators apart in the emulator's request accounting and fault rules, which key
/// clients by User-Agent: every operator process sends the same `prism-operator/<version>`.
impl Env {
    /// Serves the same emulator on another loopback port that stamps `User-Agent: {agent}/e2e`
    /// on every request, and writes a kubeconfig for it. An operator started with
    /// `--kubeconfig <that file>` is counted as `agent` (`snapshot().requests_by(agent)`) and can be
    /// faulted alone (`FaultRule::user_agent(agent)`). The port serves until the scenario ends.
    pub async fn tagged_kubeconfig(&self, agent: &str) -> PathBuf {
        use axum::extract::Request;
        use axum::http::{HeaderValue, header::USER_AGENT};
        use kube_emulator::emulator::{Credentials, kubeconfig_yaml};
        let value = HeaderValue::from_str(&format!("{agent}/e2e")).expect("a valid user agent");
        let stamp = move |mut request: Request| {
            let value = value.clone();
            async move {
                request.headers_mut().insert(USER_AGENT, value);
                request
            }
        };
        let app = self.emulator().router().layer(axum::middleware::map_request(stamp));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("loopback port");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let path = self.home.path().join(format!("kubeconfig-{agent}"));
        // No credentials: this port serves the in-process router, whose callers are the admin.
        let kubeconfig = kubeconfig_yaml(&format!("http://{addr}"), None, Credentials::None);
        std::fs::write(&path, kubeconfig).expect("kubeconfig");
        path
    }
}

impl Operator {
    /// Whether the process is still running (it has not exited or been killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
