//! `kube-emulator serve`: a standalone loopback Kubernetes API for kubectl and the operator.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kube_emulator::Emulator;
use kube_emulator::emulator::{ServeError, Transport};
use kube_emulator::instruments::simulation::DEFAULT_READY_DELAY;

#[derive(Parser)]
#[command(name = "kube-emulator", about = "A loopback emulator of the Kubernetes API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until SIGTERM or ctrl-c; prints one JSON line when ready.
    Serve {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Where to write a kubeconfig pointing at the server.
        #[arg(long)]
        kubeconfig_out: PathBuf,
        /// CRD (or any) manifests to create at boot; may repeat.
        #[arg(long)]
        crd: Vec<PathBuf>,
        /// Simulate workload controllers (Deployments/StatefulSets become ready).
        #[arg(long)]
        simulate_workloads: bool,
        /// Serve plain HTTP (the kubeconfig carries the admin's bearer token) instead of HTTPS.
        #[arg(long)]
        plain_http: bool,
    },
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("signal handler: {0}")]
    Signal(#[from] std::io::Error),
}

#[tokio::main]
async fn main() -> Result<(), MainError> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve { listen, kubeconfig_out, crd, simulate_workloads, plain_http } => {
            let transport = if plain_http { Transport::Http } else { Transport::Https };
            serve(listen, kubeconfig_out, crd, simulate_workloads, transport).await
        }
    }
}

async fn serve(
    listen: String,
    kubeconfig: PathBuf,
    crds: Vec<PathBuf>,
    simulate: bool,
    transport: Transport,
) -> Result<(), MainError> {
    let emulator = Emulator::start();
    for path in &crds {
        emulator.load_manifests(path)?;
    }
    if simulate {
        // The delay can be changed at runtime: PUT /emulator/simulation {"enabled":true,"readyDelayMs":N}.
        emulator.instruments.simulation.enable(DEFAULT_READY_DELAY);
    }
    let server = emulator.serve_with(&listen, transport).await?;
    server.write_kubeconfig(&kubeconfig)?;
    // Written by hand to keep the key order of the documented line.
    let url = serde_json::Value::String(server.url());
    let path = serde_json::Value::String(kubeconfig.display().to_string());
    println!("{{\"server\": {url}, \"kubeconfig\": {path}}}");
    wait_for_shutdown().await?;
    server.stop().await;
    Ok(())
}

async fn wait_for_shutdown() -> Result<(), std::io::Error> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}
