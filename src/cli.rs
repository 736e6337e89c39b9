//! Command-line interface: one subcommand per job of the binary.

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::args::RunArgs;
use crate::runtime::{self, RunError};

/// Kubernetes operator for Prism: keeps PrismCluster, PrismNamespace and PrismPattern resources true.
#[derive(Parser, Debug)]
#[command(name = "prism-operator", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controllers against the cluster of the current kubeconfig (or in-cluster config).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions of every kind as one multi-document YAML stream.
    ///
    /// Install them with: prism-operator crds | kubectl apply --server-side -f -
    Crds,
    /// Print, offline, every object the operator would create for the custom resources in FILE
    /// (PrismClusters, PrismNamespaces, PrismPatterns), in apply order. No cluster is needed.
    Render {
        /// A YAML file of Prism custom resources (several documents allowed).
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Print the operator's version and the API versions it serves.
    Version,
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot serialize the CRDs as YAML")]
    Yaml(#[from] serde_saphyr::ser::Error),
    #[error("cannot write to standard output")]
    Io(#[from] std::io::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not valid YAML: {source}")]
    Parse { path: String, source: Box<serde_saphyr::Error> },
    #[error(transparent)]
    Render(#[from] prism_controllers::render::RenderError),
}

impl Command {
    pub fn execute(self) -> Result<(), CliError> {
        match self {
            Command::Run(args) => Ok(runtime::run_blocking(*args)?),
            Command::Crds => print_crds(&mut std::io::stdout().lock()),
            Command::Render { file } => render(&file, &mut std::io::stdout().lock()),
            Command::Version => {
                println!("prism-operator {}", env!("CARGO_PKG_VERSION"));
                println!(
                    "serves prism.io/v1beta1 (storage) PrismCluster, PrismNamespace, PrismPattern; also prism.io/v1alpha1 PrismCluster and PrismPattern (upstream shape), prism.io/v1alpha2 PrismNamespace"
                );
                Ok(())
            }
        }
    }
}

/// Writes the objects the operator would create for the resources in `file`, as YAML documents.
pub fn render(file: &std::path::Path, out: &mut impl Write) -> Result<(), CliError> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| CliError::Read { path: path.clone(), source })?;
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .map_err(|source| CliError::Parse { path, source: Box::new(source) })?
        .into_iter()
        .filter(|d: &serde_json::Value| !d.is_null())
        .collect();
    for object in prism_controllers::render::render(&documents)? {
        out.write_all(b"---\n")?;
        out.write_all(serde_saphyr::to_string(&object)?.as_bytes())?;
    }
    Ok(())
}

/// Writes every CRD as a YAML document, separated by `---`.
pub fn print_crds(out: &mut impl Write) -> Result<(), CliError> {
    out.write_all(crds_yaml()?.as_bytes())?;
    Ok(())
}

/// The CRDs as one multi-document YAML stream: the content of crds/prism.io.yaml.
pub fn crds_yaml() -> Result<String, CliError> {
    let mut yaml = String::new();
    for crd in prism_api::crds() {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(yaml)
}
