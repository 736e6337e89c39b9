//! `kubectl prism`: the tree of a Prism deployment, a cluster's status, why an object is not
//! Ready, and the operator's offline commands (render, crds), as a kubectl plugin.
//!
//! Exit codes, for scripts: 0 done (and Ready, for `status` and `why`); 1 not Ready (or still
//! not Ready when `--wait` timed out); 2 bad usage; 3 the question could not be answered
//! (no such object, no CRDs, no permission, no API).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Serialize;

use crate::cli::{self, CliError};
use crate::inspect::fetch::{FetchError, Scope, Snapshot};
use crate::inspect::text::{self, Look};
use crate::inspect::{status, tree, why};

/// The objects of a Prism deployment as a tree, a cluster's status, and why an object is not
/// Ready.
#[derive(Parser, Debug)]
#[command(name = "kubectl-prism", bin_name = "kubectl prism", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 done (and Ready, for status and why); 1 not Ready; 2 bad usage; \
                        3 the question could not be answered (no such object, no CRDs, no permission, no API).")]
pub struct Plugin {
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// kubectl's own flags, where they apply.
#[derive(Args, Debug, Clone, Default)]
pub struct KubeFlags {
    /// Path to the kubeconfig file [default: $KUBECONFIG, then ~/.kube/config].
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace [default: the context's namespace, else default].
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Every namespace (tree only).
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// Output format for scripts (tree, status, why); text for people by default.
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<Output>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// PrismClusters -> PrismNamespaces -> PrismPatterns -> workloads, Services, ConfigMaps,
    /// Secrets (names only), autoscalers and volume claims, with readiness, status and age;
    /// what waits says on what; orphans (the operator's labels, owner gone) at the end.
    Tree {
        /// Only this PrismCluster's tree.
        cluster: Option<String>,
    },
    /// A PrismCluster's components, conditions in plain words and what is not ready below it,
    /// each with what to do. Exits 0 when Ready, 1 when not.
    Status {
        cluster: String,
        /// Wait until the cluster is Ready (exit 0) or --timeout passed (exit 1).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 90s, 5m.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Follows conditions, children and dependencies from an object that is not Ready to the
    /// first cause, e.g. `why prismnamespace/orders`. Exits 0 when Ready, 1 when not.
    Why {
        /// KIND/NAME, with kubectl's names for kinds (prismcluster, pcl, deploy, sts, pvc, ...).
        object: String,
    },
    /// Prints, offline, every object the operator would create for the resources in FILE.
    Render {
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: PathBuf,
    },
    /// Prints the CustomResourceDefinitions (kubectl prism crds | kubectl apply --server-side -f -).
    Crds,
}

/// Why a command could not answer (exit code 3), in one line.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read the kubeconfig {path}: {source}")]
    ReadKubeconfig { path: PathBuf, source: kube::config::KubeconfigError },
    #[error("cannot load the kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("cannot find a Kubernetes configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{kind} {name:?} not found in {scope}")]
    NotFound { kind: String, name: String, scope: String },
    #[error("{0:?} is not KIND/NAME of a kind kubectl prism knows (e.g. prismcluster/prism-local, deploy/x, sts/y)")]
    BadObject(String),
    #[error("{0} takes one namespace: drop --all-namespaces")]
    OneNamespace(&'static str),
    #[error("cannot format the output: {0}")]
    Format(String),
    #[error(transparent)]
    Offline(#[from] CliError),
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
}

/// How a command ended, when it answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    NotReady,
}

impl Verdict {
    fn of(ready: bool) -> Verdict {
        if ready { Verdict::Ready } else { Verdict::NotReady }
    }
}

/// The exit code of a finished command.
pub fn exit_code(result: &Result<Verdict, PluginError>) -> ExitCode {
    match result {
        Ok(Verdict::Ready) => ExitCode::SUCCESS,
        Ok(Verdict::NotReady) => ExitCode::from(1),
        Err(_) => ExitCode::from(3),
    }
}

/// One line: the error and its causes, joined.
pub fn one_line(error: &PluginError) -> String {
    let mut line = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

impl Plugin {
    pub async fn run(self, out: &mut impl Write) -> Result<Verdict, PluginError> {
        let look = Look {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            now: Some(k8s_openapi::jiff::Timestamp::now()),
            namespaces: self.kube.all_namespaces,
        };
        match self.command {
            PluginCommand::Render { file } => cli::render(&file, out).map(|()| Verdict::Ready).map_err(Into::into),
            PluginCommand::Crds => cli::print_crds(out).map(|()| Verdict::Ready).map_err(Into::into),
            PluginCommand::Tree { cluster } => {
                let session = Session::open(&self.kube).await?;
                session.tree(cluster.as_deref(), &look, out).await
            }
            PluginCommand::Status { cluster, wait, timeout } => {
                let session = Session::open(&self.kube).await?.one_namespace("status")?;
                let deadline = wait.then(|| Instant::now() + timeout);
                session.status(&cluster, deadline, &look, out).await
            }
            PluginCommand::Why { object } => {
                let session = Session::open(&self.kube).await?.one_namespace("why")?;
                session.why(&object, &look, out).await
            }
        }
    }
}

/// A client, the scope of the command and its output format.
struct Session {
    client: Client,
    namespace: String,
    scope: Scope,
    output: Option<Output>,
}

impl Session {
    async fn open(flags: &KubeFlags) -> Result<Session, PluginError> {
        let mut config = load_config(flags).await?;
        // An unreachable API is reported soon, not after the default 30 s.
        config.connect_timeout = Some(Duration::from_secs(10));
        let namespace = flags.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(PluginError::Client)?;
        let scope = if flags.all_namespaces { Scope::All } else { Scope::Namespace(namespace.clone()) };
        Ok(Session { client, namespace, scope, output: flags.output })
    }

    fn one_namespace(self, command: &'static str) -> Result<Session, PluginError> {
        if self.scope == Scope::All {
            return Err(PluginError::OneNamespace(command));
        }
        Ok(self)
    }

    async fn tree(&self, cluster: Option<&str>, look: &Look, out: &mut impl Write) -> Result<Verdict, PluginError> {
        let snapshot = Snapshot::fetch(&self.client, &self.scope).await?;
        let mut forest = tree::build(snapshot.nodes());
        if let Some(name) = cluster {
            let found = match &self.scope {
                Scope::Namespace(ns) => forest.of_cluster(ns, name),
                Scope::All => of_cluster_anywhere(forest, name),
            };
            forest = found.ok_or_else(|| self.not_found("PrismCluster", name))?;
        }
        self.print(&forest, || text::render(&forest, look), out)?;
        Ok(Verdict::Ready)
    }

    async fn status(
        &self,
        cluster: &str,
        deadline: Option<Instant>,
        look: &Look,
        out: &mut impl Write,
    ) -> Result<Verdict, PluginError> {
        loop {
            let snapshot = Snapshot::fetch(&self.client, &self.scope).await?;
            let found =
                snapshot.cluster(&self.namespace, cluster).ok_or_else(|| self.not_found("PrismCluster", cluster))?;
            let report = status::report(found, &tree::build(snapshot.nodes()), &snapshot);
            let waiting = deadline.is_some_and(|d| Instant::now() < d);
            if report.ready() || !waiting {
                self.print(&report, || status::render(&report, look), out)?;
                return Ok(Verdict::of(report.ready()));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn why(&self, object: &str, look: &Look, out: &mut impl Write) -> Result<Verdict, PluginError> {
        let (kind, name) = parse_object(object).ok_or_else(|| PluginError::BadObject(object.to_string()))?;
        let snapshot = Snapshot::fetch(&self.client, &self.scope).await?;
        let forest = tree::build(snapshot.nodes());
        let start = forest
            .walk()
            .into_iter()
            .find(|n| n.kind == kind && n.name == name && n.namespace == self.namespace)
            .ok_or_else(|| self.not_found(kind, name))?;
        let chain = why::explain(start, &forest, &snapshot);
        self.print(&chain, || why::render(&chain, look), out)?;
        Ok(Verdict::of(chain.ready()))
    }

    fn not_found(&self, kind: &str, name: &str) -> PluginError {
        PluginError::NotFound { kind: kind.to_string(), name: name.to_string(), scope: self.scope.describe() }
    }

    /// `value` as JSON or YAML when asked, else the text `human` makes.
    fn print<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
        out: &mut impl Write,
    ) -> Result<(), PluginError> {
        let text = match self.output {
            Some(Output::Json) => {
                let mut json = serde_json::to_string_pretty(value).map_err(|e| PluginError::Format(e.to_string()))?;
                json.push('\n');
                json
            }
            Some(Output::Yaml) => serde_saphyr::to_string(value).map_err(|e| PluginError::Format(e.to_string()))?,
            None => human(),
        };
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}

/// The tree of the first PrismCluster named `name` in any namespace.
fn of_cluster_anywhere(forest: tree::Forest, name: &str) -> Option<tree::Forest> {
    let namespace =
        forest.items.iter().find(|t| t.node.kind == "PrismCluster" && t.node.name == name)?.node.namespace.clone();
    forest.of_cluster(&namespace, name)
}

/// The configuration of `--kubeconfig` and `--context`, as kubectl reads it; the in-cluster
/// service account when there is no kubeconfig and no context is asked for.
async fn load_config(flags: &KubeFlags) -> Result<Config, PluginError> {
    let options = KubeConfigOptions { context: flags.context.clone(), cluster: None, user: None };
    match (&flags.kubeconfig, &flags.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|source| PluginError::ReadKubeconfig { path: path.clone(), source })?;
            Ok(Config::from_custom_kubeconfig(file, &options).await?)
        }
        (None, Some(_)) => Ok(Config::from_kubeconfig(&options).await?),
        (None, None) => Ok(Config::infer().await?),
    }
}

/// `KIND/NAME` with kubectl's names for kinds: plural, singular, short, any case, with or
/// without the group.
pub fn parse_object(text: &str) -> Option<(&'static str, &str)> {
    let (kind, name) = text.split_once('/')?;
    let kind = kind.split('.').next()?.to_ascii_lowercase();
    let canonical = KIND_NAMES.iter().find(|(_, names)| names.contains(&kind.as_str()))?.0;
    (!name.is_empty()).then_some((canonical, name))
}

const KIND_NAMES: [(&str, &[&str]); 14] = [
    ("PrismCluster", &["prismcluster", "prismclusters", "pcl"]),
    ("PrismNamespace", &["prismnamespace", "prismnamespaces", "pns"]),
    ("PrismPattern", &["prismpattern", "prismpatterns", "ppat"]),
    ("Deployment", &["deployment", "deployments", "deploy"]),
    ("StatefulSet", &["statefulset", "statefulsets", "sts"]),
    ("Service", &["service", "services", "svc"]),
    ("ConfigMap", &["configmap", "configmaps", "cm"]),
    ("Secret", &["secret", "secrets"]),
    ("HorizontalPodAutoscaler", &["horizontalpodautoscaler", "horizontalpodautoscalers", "hpa"]),
    ("ScaledObject", &["scaledobject", "scaledobjects", "so"]),
    ("PersistentVolumeClaim", &["persistentvolumeclaim", "persistentvolumeclaims", "pvc"]),
    ("PodDisruptionBudget", &["poddisruptionbudget", "poddisruptionbudgets", "pdb"]),
    ("Ingress", &["ingress", "ingresses", "ing"]),
    ("ServiceMonitor", &["servicemonitor", "servicemonitors", "smon"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_named_as_kubectl_names_them() {
        assert_eq!(parse_object("prismnamespace/orders"), Some(("PrismNamespace", "orders")));
        assert_eq!(parse_object("PrismCluster.prism.io/local"), Some(("PrismCluster", "local")));
        assert_eq!(parse_object("sts/local-redis"), Some(("StatefulSet", "local-redis")));
        assert_eq!(parse_object("pods/x"), None);
        assert_eq!(parse_object("deploy/"), None);
        assert_eq!(parse_object("orders"), None);
    }

    #[test]
    fn every_command_parses_with_kubectl_flags() {
        let plugin =
            Plugin::try_parse_from(["kubectl-prism", "-n", "prism", "status", "local", "--wait", "--timeout", "90s"])
                .expect("parses");
        assert_eq!(plugin.kube.namespace.as_deref(), Some("prism"));
        assert!(
            matches!(plugin.command, PluginCommand::Status { wait: true, timeout, .. } if timeout == Duration::from_secs(90))
        );
        let plugin =
            Plugin::try_parse_from(["kubectl-prism", "tree", "-A", "-o", "json", "--context", "kind"]).expect("parses");
        assert!(plugin.kube.all_namespaces);
        assert_eq!(plugin.kube.output, Some(Output::Json));
    }
}
