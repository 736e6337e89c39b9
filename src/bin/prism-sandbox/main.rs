//! prism-sandbox: the operator's main job on an embedded default, with nothing to install.
//!
//! Starts the Kubernetes API emulator on loopback (workloads are SIMULATED: no container runs),
//! installs the CRDs, runs the operator against it, applies samples/prism-local.yaml, prints the
//! tree of objects as it converges (drawn as `kubectl prism tree` draws it), and keeps serving so
//! that kubectl can look and edit live.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_emulator::Emulator;
use prism_operator::args::LogFormat;
use prism_operator::cli::{Cli, Command};
use prism_operator::inspect::fetch::{Scope, Snapshot};
use prism_operator::inspect::node::Health;
use prism_operator::inspect::text::{self, Look};
use prism_operator::inspect::tree;
use prism_operator::runtime;

/// The embedded default: the design record's local deployment.
const SAMPLE: &str = include_str!("../../../samples/prism-local.yaml");
const NAMESPACE: &str = "prism";

/// Run the Prism operator against an embedded, simulated Kubernetes API.
#[derive(Parser, Debug)]
#[command(name = "prism-sandbox", version)]
struct Args {
    /// Address of the embedded API server.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Where to write the kubeconfig for kubectl.
    #[arg(long, default_value = "prism-sandbox.kubeconfig")]
    kubeconfig_out: PathBuf,
    /// How long simulated workloads take to become ready.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    ready_after: Duration,
    /// Exit once the sample has converged instead of serving (for scripts and CI).
    #[arg(long)]
    exit_when_converged: bool,
}

#[derive(Debug, thiserror::Error)]
enum SandboxError {
    #[error("cannot start the embedded API server: {0}")]
    Emulator(#[from] kube_emulator::emulator::ServeError),
    #[error("cannot talk to the embedded API server: {0}")]
    Api(#[from] kube::Error),
    #[error("the sample is not valid YAML: {0}")]
    Sample(#[from] serde_saphyr::Error),
    #[error("cannot set up logging: {0}")]
    Telemetry(#[from] prism_operator::telemetry::TelemetryError),
    #[error("the operator stopped: {0}")]
    Operator(String),
    #[error(transparent)]
    Listen(#[from] prism_operator::http::BindError),
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), SandboxError> {
    prism_operator::telemetry::init(LogFormat::Text, Some("warn"))?;
    let emulator = Emulator::start();
    emulator.instruments.simulation.enable(args.ready_after);
    let server = emulator.serve(&args.listen).await?;
    server.write_kubeconfig(&args.kubeconfig_out)?;
    let kubeconfig = std::fs::canonicalize(&args.kubeconfig_out).unwrap_or(args.kubeconfig_out.clone());
    let client = Client::new(server.emulator.router(), "default");
    println!(
        "Prism sandbox: an embedded Kubernetes API at {} (workloads are SIMULATED: no container runs)",
        server.url()
    );
    install(&client).await?;
    let operator = tokio::spawn(start_operator(&kubeconfig, &server.emulator).await?);
    apply_sample(&client).await?;
    println!("Applied samples/prism-local.yaml; the operator is reconciling it:\n");
    let converged = watch_tree(&client, args.exit_when_converged).await;
    if let Some(elapsed) = converged {
        println!("\nConverged in {:.1} s.", elapsed.as_secs_f64());
    }
    if args.exit_when_converged {
        operator.abort();
        return if converged.is_some() { Ok(()) } else { Err(SandboxError::Operator("did not converge".into())) };
    }
    print_hints(&kubeconfig);
    tokio::select! {
        result = operator => result.map_err(|e| SandboxError::Operator(e.to_string()))?,
        _ = follow_tree(&client) => Ok(()),
    }?;
    println!("Stopped.");
    server.stop().await;
    Ok(())
}

async fn install(client: &Client) -> Result<(), SandboxError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in prism_api::crds() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}}))
        .map_err(|e| SandboxError::Operator(e.to_string()))?;
    namespaces.create(&PostParams::default(), &namespace).await?;
    Ok(())
}

async fn apply_sample(client: &Client) -> Result<(), SandboxError> {
    let cluster: prism_api::v1beta1::PrismCluster = serde_saphyr::from_str(SAMPLE)?;
    let api: Api<prism_api::v1beta1::PrismCluster> = Api::namespaced(client.clone(), NAMESPACE);
    let name = cluster.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply("prism-sandbox"), &Patch::Apply(&cluster)).await?;
    Ok(())
}

/// The operator, in this process, exactly as `prism-operator run` runs it (it stops on Ctrl-C),
/// its endpoints bound and its webhook's Service pointed at them before it starts.
async fn start_operator(
    kubeconfig: &std::path::Path,
    emulator: &Emulator,
) -> Result<impl Future<Output = Result<(), SandboxError>> + use<>, SandboxError> {
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let argv = [
        "prism-operator",
        "run",
        "--kubeconfig",
        &kubeconfig,
        "--metrics-addr",
        "127.0.0.1:0",
        "--health-addr",
        "127.0.0.1:0",
        "--lease-namespace",
        NAMESPACE,
        "--identity",
        "sandbox",
        "--webhook-addr",
        "127.0.0.1:0",
        "--webhook-namespace",
        NAMESPACE,
        // A local API server: no need to ration requests.
        "--qps",
        "500",
        "--burst",
        "1000",
    ];
    let cli = Cli::try_parse_from(argv).map_err(|e| SandboxError::Operator(e.to_string()))?;
    let Command::Run(run_args) = cli.command else { return Err(SandboxError::Operator("not a run command".into())) };
    let listeners = runtime::Listeners::bind(&run_args).await?;
    // The webhook, reached through its Service as in a cluster.
    if let Some(webhook) = listeners.webhook_addr() {
        emulator.services.register(NAMESPACE, "prism-operator-webhook", webhook);
    }
    Ok(async move { runtime::run_on(*run_args, listeners).await.map_err(|e| SandboxError::Operator(e.to_string())) })
}

/// Prints the tree whenever it changes, until the cluster is Running (returns how long that took)
/// or two minutes passed.
async fn watch_tree(client: &Client, quiet_after: bool) -> Option<Duration> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(120) {
        if let Some((rendered, converged)) = draw_tree(client).await {
            if rendered != last {
                println!("[{:>5.1}s]\n{rendered}", started.elapsed().as_secs_f64());
                last = rendered;
            }
            if converged {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(if quiet_after { 200 } else { 500 })).await;
    }
    None
}

/// After convergence: prints the tree again whenever a live edit changes it.
async fn follow_tree(client: &Client) {
    let mut last = draw_tree(client).await.map(|(rendered, _)| rendered).unwrap_or_default();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some((rendered, _)) = draw_tree(client).await
            && rendered != last
        {
            println!("\n{rendered}");
            last = rendered;
        }
    }
}

/// The tree as `kubectl prism tree` draws it (without ages, which would change every second),
/// and whether every PrismCluster is Running.
async fn draw_tree(client: &Client) -> Option<(String, bool)> {
    let snapshot = Snapshot::fetch(client, &Scope::Namespace(NAMESPACE.into())).await.ok()?;
    let forest = tree::build(snapshot.nodes());
    let clusters: Vec<_> = forest.items.iter().filter(|t| t.node.kind == "PrismCluster").collect();
    let converged = !clusters.is_empty() && clusters.iter().all(|t| t.node.health == Health::Ready);
    let look =
        Look { colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(), ..Look::default() };
    Some((text::render(&forest, &look), converged))
}

fn print_hints(kubeconfig: &std::path::Path) {
    let k = format!("kubectl --kubeconfig {}", kubeconfig.display());
    println!(
        "\nThe API keeps serving; in another terminal:\n  \
         {k} get prism -n {NAMESPACE}\n  \
         {k} describe prismcluster prism-local -n {NAMESPACE}\n  \
         {k} prism status prism-local -n {NAMESPACE}   (kubectl-prism on the PATH: cargo install --path . --bin kubectl-prism)\n  \
         {k} patch prismcluster prism-local -n {NAMESPACE} --type merge -p '{{\"spec\":{{\"backends\":{{\"kafka\":{{\"enabled\":true,\"version\":\"4.0.0\"}}}}}}}}'\n\
         (the patch adds a Kafka backend: watch its StatefulSet appear below; workloads are simulated,\n\
         they turn ready after a delay and nothing runs). Ctrl-C stops the sandbox."
    );
}
