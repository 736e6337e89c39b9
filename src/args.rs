//! Flags of `prism-operator run`; each one can also come from a `PRISM_OPERATOR_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};

/// Where the service account's namespace is mounted in a pod.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[derive(Args, Debug, Clone, PartialEq)]
pub struct RunArgs {
    /// Kubeconfig file [default: $KUBECONFIG, the in-cluster service account, then ~/.kube/config].
    #[arg(long, env = "PRISM_OPERATOR_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Watch only this namespace [default: all namespaces].
    #[arg(long, env = "PRISM_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,

    /// Reconciles running at once, per controller.
    #[arg(long, env = "PRISM_OPERATOR_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Requests per second to the API server, sustained (0: unlimited).
    #[arg(long, env = "PRISM_OPERATOR_QPS", default_value_t = 20.0)]
    pub qps: f64,

    /// Requests sent at once above --qps after an idle period.
    #[arg(long, env = "PRISM_OPERATOR_BURST", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: u32,

    /// Re-reconcile every object this often even without a change (e.g. 10m, 1h).
    #[arg(long, env = "PRISM_OPERATOR_RESYNC", default_value = "10m", value_parser = humantime::parse_duration)]
    pub resync: Duration,

    /// Address of the Prometheus endpoint (/metrics).
    #[arg(long, env = "PRISM_OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Address of the probe endpoints (/healthz, /readyz).
    #[arg(long, env = "PRISM_OPERATOR_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,

    /// Log line format.
    #[arg(long, env = "PRISM_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in RUST_LOG syntax, e.g. `info,prism_controllers=debug` [default: $RUST_LOG, else info].
    #[arg(long, env = "PRISM_OPERATOR_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// The container's memory limit in bytes, for the memory metric and its alert (the chart
    /// passes limits.memory through the Downward API).
    #[arg(long, env = "PRISM_OPERATOR_MEMORY_LIMIT", value_name = "BYTES")]
    pub memory_limit: Option<i64>,

    #[command(flatten)]
    pub leader: LeaderArgs,

    #[command(flatten)]
    pub webhook: WebhookArgs,
}

/// The conversion and validating webhook, served by every replica.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct WebhookArgs {
    /// Serve the webhook and point the CRDs' conversion and the ValidatingWebhookConfiguration at
    /// it (--webhook=false: neither, e.g. an operator outside the cluster that the API server
    /// cannot reach; requests at older API versions then fail, as the CRDs' conversion fails
    /// closed).
    #[arg(id = "webhook", long = "webhook", env = "PRISM_OPERATOR_WEBHOOK", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub enabled: bool,

    /// Address the webhook's HTTPS listens on.
    #[arg(
        id = "webhook-addr",
        long = "webhook-addr",
        env = "PRISM_OPERATOR_WEBHOOK_ADDR",
        default_value = "0.0.0.0:9443"
    )]
    pub addr: SocketAddr,

    /// The Service through which the API server reaches the webhook.
    #[arg(
        id = "webhook-service",
        long = "webhook-service",
        env = "PRISM_OPERATOR_WEBHOOK_SERVICE",
        default_value = prism_api::names::webhook::SERVICE
    )]
    pub service: String,

    /// The port of that Service.
    #[arg(
        id = "webhook-service-port",
        long = "webhook-service-port",
        env = "PRISM_OPERATOR_WEBHOOK_SERVICE_PORT",
        default_value_t = prism_api::names::webhook::PORT
    )]
    pub service_port: u16,

    /// Namespace of the Service and the certificate Secret [default: the pod's namespace, else `default`].
    #[arg(id = "webhook-namespace", long = "webhook-namespace", env = "PRISM_OPERATOR_WEBHOOK_NAMESPACE")]
    pub namespace: Option<String>,

    /// The Secret holding the webhook's certificate (tls.crt, tls.key, ca.crt).
    #[arg(
        long = "webhook-secret",
        env = "PRISM_OPERATOR_WEBHOOK_SECRET",
        default_value = "prism-operator-webhook-cert"
    )]
    pub secret: String,

    /// Name of the ValidatingWebhookConfiguration the operator writes.
    #[arg(
        long = "webhook-configuration",
        env = "PRISM_OPERATOR_WEBHOOK_CONFIGURATION",
        default_value = "prism-operator"
    )]
    pub configuration: String,

    /// Who makes the certificate: the operator itself (`self-signed`: a CA and a serving
    /// certificate in --webhook-secret, renewed before expiry), or another tool such as
    /// cert-manager writing --webhook-secret (`secret`).
    #[arg(id = "webhook-certificates", long = "webhook-certificates", env = "PRISM_OPERATOR_WEBHOOK_CERTIFICATES", value_enum,
          default_value_t = CertificateSource::SelfSigned)]
    pub certificates: CertificateSource,
}

/// Where the webhook's certificate comes from.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateSource {
    SelfSigned,
    Secret,
}

impl WebhookArgs {
    /// The namespace of the Service and the Secret: the flag, else the pod's own namespace.
    pub fn namespace(&self) -> String {
        self.namespace.clone().unwrap_or_else(pod_namespace)
    }
}

/// How log lines are written (to standard error).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct LeaderArgs {
    /// Elect a leader on a Lease so that only one replica reconciles (--leader-elect=false: run at once).
    #[arg(long = "leader-elect", env = "PRISM_OPERATOR_LEADER_ELECT", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub enabled: bool,

    /// Name of the coordination.k8s.io/v1 Lease.
    #[arg(long, env = "PRISM_OPERATOR_LEASE_NAME", default_value = "prism-operator-leader")]
    pub lease_name: String,

    /// Namespace of the Lease [default: the pod's namespace, else `default`].
    #[arg(long, env = "PRISM_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a lease is valid after its last renewal: a standby takes over after this.
    #[arg(long, env = "PRISM_OPERATOR_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// The leader gives up (and exits) when it could not renew for this long.
    #[arg(long, env = "PRISM_OPERATOR_RENEW_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub renew_deadline: Duration,

    /// How often the leader renews and a standby checks the lease.
    #[arg(long, env = "PRISM_OPERATOR_RETRY_PERIOD", default_value = "2s", value_parser = humantime::parse_duration)]
    pub retry_period: Duration,

    /// Holder identity in the Lease [default: $POD_NAME or the host name, plus a random suffix].
    #[arg(long, env = "PRISM_OPERATOR_IDENTITY")]
    pub identity: Option<String>,
}

/// A combination of flags that cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArgsError {
    #[error("--qps must be a finite number >= 0 (0: unlimited), got {0}")]
    Qps(f64),
    #[error("--{0} must be longer than zero")]
    ZeroDuration(&'static str),
    #[error(
        "--renew-deadline ({renew_deadline:?}) must be shorter than --lease-duration ({lease_duration:?}): \
         the leader must give up before a standby may take over"
    )]
    RenewDeadline { renew_deadline: Duration, lease_duration: Duration },
    #[error("--retry-period ({retry_period:?}) must be shorter than --renew-deadline ({renew_deadline:?})")]
    RetryPeriod { retry_period: Duration, renew_deadline: Duration },
    #[error("--lease-duration must be a whole number of seconds (the Lease stores seconds), got {0:?}")]
    LeaseSeconds(Duration),
}

impl RunArgs {
    /// Checks what clap cannot check one flag at a time.
    pub fn validate(&self) -> Result<(), ArgsError> {
        if !self.qps.is_finite() || self.qps < 0.0 {
            return Err(ArgsError::Qps(self.qps));
        }
        if self.resync.is_zero() {
            return Err(ArgsError::ZeroDuration("resync"));
        }
        if self.leader.enabled { self.leader.validate() } else { Ok(()) }
    }
}

impl LeaderArgs {
    fn validate(&self) -> Result<(), ArgsError> {
        for (name, value) in [
            ("lease-duration", self.lease_duration),
            ("renew-deadline", self.renew_deadline),
            ("retry-period", self.retry_period),
        ] {
            if value.is_zero() {
                return Err(ArgsError::ZeroDuration(name));
            }
        }
        if self.lease_duration.subsec_nanos() != 0 {
            return Err(ArgsError::LeaseSeconds(self.lease_duration));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(ArgsError::RenewDeadline {
                renew_deadline: self.renew_deadline,
                lease_duration: self.lease_duration,
            });
        }
        if self.retry_period >= self.renew_deadline {
            return Err(ArgsError::RetryPeriod {
                retry_period: self.retry_period,
                renew_deadline: self.renew_deadline,
            });
        }
        Ok(())
    }

    /// The Lease's namespace: the flag, else the pod's own namespace, else `default`.
    pub fn lease_namespace(&self) -> String {
        self.lease_namespace.clone().unwrap_or_else(pod_namespace)
    }

    /// This instance's holder identity: the flag, else `$POD_NAME` or the host name with a random
    /// suffix (two processes on one host, or a restarted pod, never share an identity).
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| format!("{}-{}", host_name(), random_suffix()))
    }
}

/// The pod's own namespace (from its service account), else `default`.
fn pod_namespace() -> String {
    std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
        .ok()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

fn host_name() -> String {
    let from_env = ["POD_NAME", "HOSTNAME"].into_iter().filter_map(|var| std::env::var(var).ok());
    let from_files = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .into_iter()
        .filter_map(|path| std::fs::read_to_string(path).ok());
    from_env
        .chain(from_files)
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "prism-operator".to_string())
}

/// Six hex digits from the process's random hasher keys (no RNG dependency for a name suffix).
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser, Debug)]
    struct Harness {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        // Parsing reads PRISM_OPERATOR_* variables too; tests never set them.
        Harness::try_parse_from(std::iter::once("run").chain(args.iter().copied())).map(|h| h.run)
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = parse(&[]).expect("no flags needed");
        assert_eq!(args.kubeconfig, None);
        assert_eq!(args.namespace, None);
        assert_eq!(args.concurrency, 4);
        assert_eq!(args.resync, Duration::from_secs(600));
        assert_eq!(args.metrics_addr, "0.0.0.0:8080".parse().expect("addr"));
        assert_eq!(args.health_addr, "0.0.0.0:8081".parse().expect("addr"));
        assert_eq!(args.log_format, LogFormat::Text);
        assert!(args.leader.enabled);
        assert_eq!(args.leader.lease_name, "prism-operator-leader");
        assert_eq!(args.leader.lease_duration, Duration::from_secs(15));
        assert_eq!(args.leader.renew_deadline, Duration::from_secs(10));
        assert_eq!(args.leader.retry_period, Duration::from_secs(2));
        assert_eq!(args.validate(), Ok(()));
    }

    #[test]
    fn every_flag_parses() {
        let args = parse(&[
            "--kubeconfig=/tmp/kc",
            "--namespace=prism",
            "--concurrency=8",
            "--qps=50.5",
            "--burst=100",
            "--resync=1h 30m",
            "--metrics-addr=127.0.0.1:9090",
            "--health-addr=[::1]:9091",
            "--log-format=json",
            "--log-level=debug,kube=warn",
            "--leader-elect=false",
            "--lease-name=other",
            "--lease-namespace=ops",
            "--lease-duration=30s",
            "--renew-deadline=20s",
            "--retry-period=500ms",
            "--identity=me",
        ])
        .expect("valid flags");
        assert_eq!(args.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(args.namespace.as_deref(), Some("prism"));
        assert_eq!((args.concurrency, args.qps, args.burst), (8, 50.5, 100));
        assert_eq!(args.resync, Duration::from_secs(5400));
        assert_eq!(args.health_addr, "[::1]:9091".parse().expect("addr"));
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.log_level.as_deref(), Some("debug,kube=warn"));
        assert!(!args.leader.enabled);
        assert_eq!(args.leader.lease_namespace(), "ops");
        assert_eq!(args.leader.retry_period, Duration::from_millis(500));
        assert_eq!(args.leader.identity(), "me");
    }

    #[test]
    fn leader_elect_accepts_a_bare_flag_and_boolish_values() {
        assert!(parse(&["--leader-elect"]).expect("bare").leader.enabled);
        assert!(!parse(&["--leader-elect", "no"]).expect("no").leader.enabled);
        assert!(!parse(&["--leader-elect=0"]).expect("0").leader.enabled);
    }

    #[test]
    fn malformed_values_are_refused_by_the_parser() {
        for bad in [
            &["--concurrency=0"][..],
            &["--burst=0"],
            &["--resync=soon"],
            &["--metrics-addr=8080"],
            &["--log-format=xml"],
            &["--lease-duration=15"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn inconsistent_timings_are_refused() {
        let check = |flags: &[&str]| parse(flags).expect("parses").validate();
        assert!(matches!(check(&["--renew-deadline=15s"]), Err(ArgsError::RenewDeadline { .. })));
        assert!(matches!(check(&["--retry-period=10s"]), Err(ArgsError::RetryPeriod { .. })));
        assert_eq!(check(&["--lease-duration=15500ms"]), Err(ArgsError::LeaseSeconds(Duration::from_millis(15500))));
        assert_eq!(check(&["--qps=-1"]), Err(ArgsError::Qps(-1.0)));
        assert_eq!(check(&["--resync=0s"]), Err(ArgsError::ZeroDuration("resync")));
        // Timings do not matter when there is no election.
        assert_eq!(check(&["--leader-elect=false", "--renew-deadline=1m"]), Ok(()));
    }

    #[test]
    fn every_flag_has_a_prism_operator_variable() {
        let command = Harness::command();
        for arg in command.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = arg.get_long().unwrap_or_default();
            let expected = format!("PRISM_OPERATOR_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(expected.as_str()), "--{long}");
        }
    }

    #[test]
    fn a_default_identity_is_unique_per_process_start() {
        let leader = parse(&[]).expect("defaults").leader;
        let (a, b) = (leader.identity(), leader.identity());
        assert_ne!(a, b);
        assert!(a.len() > 7, "{a}");
    }
}
