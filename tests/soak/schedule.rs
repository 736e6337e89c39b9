//! The schedule: operations at times, drawn from a seeded generator that keeps the desired state
//! of the world as it goes, so that the same seed gives the same schedule (what the system does
//! in response depends on timing; what is done to it does not).

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::expect;
use crate::world::{
    self, APP_NAMESPACES, AppNamespaceSpec, CLUSTERS, ClusterPlan, ClusterSpec, PROXY_TAGS, UNKNOWN_PATTERN, World,
};

/// Time between two operations: uniform in this range (a mean of 1.5 s).
const GAP_MS: std::ops::Range<u64> = 200..2800;

/// An API fault the emulator injects into the operators' requests for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 409 Conflict on writes.
    Conflict,
    /// 429 TooManyRequests with Retry-After: 1 on every request.
    TooManyRequests,
    /// 500 InternalError on writes.
    InternalError,
    /// 503 ServiceUnavailable on every request.
    Unavailable,
    /// Every request answered this many milliseconds late.
    Slow(u64),
    /// Watch connections reset; open watches end.
    WatchReset,
    /// Watches answered with an in-stream 410 Expired; open watches end.
    WatchExpired,
    /// The server drops every connection (every client's, not only the operators').
    ServerDown,
}

impl Fault {
    /// The fault's name in the table (without parameters).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Conflict => "409 Conflict on writes",
            Fault::TooManyRequests => "429 TooManyRequests (Retry-After 1)",
            Fault::InternalError => "500 InternalError on writes",
            Fault::Unavailable => "503 ServiceUnavailable",
            Fault::Slow(_) => "slow responses",
            Fault::WatchReset => "watch connections reset",
            Fault::WatchExpired => "in-stream 410 Expired on watches",
            Fault::ServerDown => "server refuses connections",
        }
    }
}

/// A change made to a PrismPattern with kubectl.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tuning {
    Scale(i32),
    LogLevel(&'static str),
    Autoscaling(bool),
    CpuRequest(&'static str),
}

/// What one step does.
#[derive(Clone, Debug)]
pub enum Op {
    /// Applies a cluster's whole spec (creating it if absent); `edit` says what changed.
    ApplyCluster {
        name: &'static str,
        spec: ClusterSpec,
        edit: String,
        valid: bool,
        disables: Option<&'static str>,
    },
    DeleteCluster {
        name: &'static str,
    },
    /// Waits for the deleted cluster to be gone, then applies the catalog's spec again.
    RecreateCluster {
        name: &'static str,
        spec: ClusterSpec,
    },
    ApplyAppNamespace {
        name: &'static str,
        spec: AppNamespaceSpec,
        edit: &'static str,
        valid: bool,
    },
    DeleteAppNamespace {
        name: &'static str,
    },
    /// A merge patch (JSON) the API must refuse (schema or CEL rule); `target` is `kind/name`.
    Refused {
        target: String,
        what: &'static str,
        patch: &'static str,
    },
    TunePattern {
        pattern: String,
        tuning: Tuning,
    },
    /// Deletes a child of a live cluster by hand; `child` is `kind/name`.
    DeleteChild {
        cluster: &'static str,
        child: String,
    },
    /// kill -9 of the leader; the kubelet starts it again after `restart_after`.
    KillLeader {
        restart_after: Duration,
    },
    /// SIGTERM to the leader (a rolling restart): it hands the lease over and is started again.
    RestartLeader,
    Fault {
        fault: Fault,
        lasting: Duration,
    },
}

impl Op {
    /// The row of the table this operation counts in.
    pub fn kind(&self) -> String {
        match self {
            Op::ApplyCluster { valid: true, .. } => "cluster edit, valid".into(),
            Op::ApplyCluster { valid: false, .. } => "cluster edit, invalid (reported)".into(),
            Op::DeleteCluster { .. } => "cluster deleted".into(),
            Op::RecreateCluster { .. } => "cluster re-created".into(),
            Op::ApplyAppNamespace { valid: true, .. } => "app namespace created or edited".into(),
            Op::ApplyAppNamespace { valid: false, .. } => "app namespace edit, invalid (reported)".into(),
            Op::DeleteAppNamespace { .. } => "app namespace deleted".into(),
            Op::Refused { .. } => "invalid edit (refused)".into(),
            Op::TunePattern { tuning: Tuning::Scale(_), .. } => "kubectl scale prismpattern".into(),
            Op::TunePattern { .. } => "kubectl patch prismpattern".into(),
            Op::DeleteChild { .. } => "child deleted by hand".into(),
            Op::KillLeader { .. } => "kill -9 of the leader".into(),
            Op::RestartLeader => "rolling restart of the leader (SIGTERM)".into(),
            Op::Fault { fault, .. } => format!("fault: {}", fault.name()),
        }
    }

    /// The object whose operations must run one at a time, in schedule order (so that the
    /// generator's desired state is the one the API ends up with), if any.
    pub fn target(&self) -> Option<String> {
        match self {
            Op::ApplyCluster { name, .. }
            | Op::DeleteCluster { name }
            | Op::RecreateCluster { name, .. }
            | Op::DeleteChild { cluster: name, .. } => Some(format!("prismcluster/{name}")),
            Op::ApplyAppNamespace { name, .. } | Op::DeleteAppNamespace { name } => {
                Some(format!("prismnamespace/{name}"))
            }
            Op::Refused { target, .. } => Some(target.clone()),
            Op::TunePattern { pattern, .. } => Some(format!("prismpattern/{pattern}")),
            Op::KillLeader { .. } | Op::RestartLeader | Op::Fault { .. } => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::ApplyCluster { name, edit, valid, .. } => {
                write!(f, "apply prismcluster/{name}: {edit}{}", if *valid { "" } else { " (invalid spec)" })
            }
            Op::DeleteCluster { name } => write!(f, "delete prismcluster/{name}"),
            Op::RecreateCluster { name, .. } => write!(f, "re-create prismcluster/{name} once gone"),
            Op::ApplyAppNamespace { name, edit, valid, .. } => {
                write!(f, "apply prismnamespace/{name}: {edit}{}", if *valid { "" } else { " (invalid spec)" })
            }
            Op::DeleteAppNamespace { name } => write!(f, "delete prismnamespace/{name}"),
            Op::Refused { target, what, .. } => write!(f, "patch {target}: {what} (must be refused)"),
            Op::TunePattern { pattern, tuning } => write!(f, "tune prismpattern/{pattern}: {tuning:?}"),
            Op::DeleteChild { child, .. } => write!(f, "delete {child}"),
            Op::KillLeader { restart_after } => {
                write!(f, "kill -9 the leader (restarted after {:.1} s)", restart_after.as_secs_f64())
            }
            Op::RestartLeader => write!(f, "SIGTERM the leader (rolling restart)"),
            Op::Fault { fault, lasting } => {
                let detail = match fault {
                    Fault::Slow(ms) => format!(" (+{ms} ms)"),
                    _ => String::new(),
                };
                write!(f, "fault for {:.1} s: {}{detail}", lasting.as_secs_f64(), fault.name())
            }
        }
    }
}

/// One step: an operation at a time after the schedule's start.
#[derive(Clone, Debug)]
pub struct Step {
    pub index: usize,
    pub at: Duration,
    pub op: Op,
}

/// The steps of a soak of `length` drawn from `seed`.
pub fn generate(seed: u64, length: Duration) -> Vec<Step> {
    let mut generator = Generator { rng: StdRng::seed_from_u64(seed), world: World::full() };
    let mut steps = Vec::new();
    let mut at = Duration::ZERO;
    loop {
        at += Duration::from_millis(generator.rng.random_range(GAP_MS));
        if at >= length {
            break;
        }
        let op = generator.next_op();
        steps.push(Step { index: steps.len() + 1, at, op });
    }
    generator.hand_overs(&mut steps, length);
    steps
}

/// How often each kind of operation is drawn, relative to the others.
const WEIGHTS: &[(Kind, u32)] = &[
    (Kind::ClusterEdit, 30),
    (Kind::AppNamespace, 8),
    (Kind::DeleteCluster, 3),
    (Kind::RecreateCluster, 5),
    (Kind::Refused, 6),
    (Kind::Tune, 12),
    (Kind::DeleteChild, 12),
    (Kind::KillLeader, 4),
    (Kind::RestartLeader, 2),
    (Kind::Fault, 15),
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    ClusterEdit,
    AppNamespace,
    DeleteCluster,
    RecreateCluster,
    Refused,
    Tune,
    DeleteChild,
    KillLeader,
    RestartLeader,
    Fault,
}

struct Generator {
    rng: StdRng,
    world: World,
}

impl Generator {
    /// Draws kinds until one applies to the world as it is (e.g. no re-create without a deleted
    /// cluster); the ones for the operators and the API always apply.
    fn next_op(&mut self) -> Op {
        loop {
            let kind = self.kind();
            let op = match kind {
                Kind::ClusterEdit => self.cluster_edit(),
                Kind::AppNamespace => self.app_namespace(),
                Kind::DeleteCluster => self.delete_cluster(),
                Kind::RecreateCluster => self.recreate_cluster(),
                Kind::Refused => self.refused(),
                Kind::Tune => self.tune(),
                Kind::DeleteChild => self.delete_child(),
                Kind::KillLeader => {
                    Some(Op::KillLeader { restart_after: Duration::from_millis(self.rng.random_range(500..8000)) })
                }
                Kind::RestartLeader => Some(Op::RestartLeader),
                Kind::Fault => Some(self.fault()),
            };
            if let Some(op) = op {
                return op;
            }
        }
    }

    /// Adds a kill -9 and a SIGTERM of the leader at random times if the draw gave none: every
    /// schedule hands the lease over both ways, so that invariants 5 and 7 are never asserted on
    /// one writer alone. (They change nothing of the desired state the other steps keep.)
    fn hand_overs(&mut self, steps: &mut Vec<Step>, length: Duration) {
        if !steps.iter().any(|s| matches!(s.op, Op::KillLeader { .. })) {
            let restart_after = Duration::from_millis(self.rng.random_range(500..8000));
            let at = Duration::from_millis(self.rng.random_range(0..length.as_millis() as u64));
            steps.push(Step { index: 0, at, op: Op::KillLeader { restart_after } });
        }
        if !steps.iter().any(|s| matches!(s.op, Op::RestartLeader)) {
            let at = Duration::from_millis(self.rng.random_range(0..length.as_millis() as u64));
            steps.push(Step { index: 0, at, op: Op::RestartLeader });
        }
        steps.sort_by_key(|s| s.at);
        for (i, step) in steps.iter_mut().enumerate() {
            step.index = i + 1;
        }
    }

    fn kind(&mut self) -> Kind {
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut draw = self.rng.random_range(0..total);
        for (kind, weight) in WEIGHTS {
            if draw < *weight {
                return *kind;
            }
            draw -= weight;
        }
        Kind::Fault
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.rng.random_range(0..items.len())])
    }

    fn live_clusters(&self) -> Vec<&'static ClusterPlan> {
        CLUSTERS.iter().filter(|c| matches!(self.world.clusters.get(c.name), Some(Some(_)))).collect()
    }

    fn cluster_edit(&mut self) -> Option<Op> {
        let plan = *self.pick(&self.live_clusters())?;
        let before = self.world.clusters.get(plan.name).cloned().flatten()?;
        let mut spec = before.clone();
        let edit = self.edit(plan, &mut spec)?;
        let disables = before.backends.keys().copied().find(|b| !spec.backends.contains_key(b));
        let valid = expect::cluster_problem(&world::cluster_object(plan, &spec).spec).is_none();
        self.world.clusters.insert(plan.name, Some(spec.clone()));
        Some(Op::ApplyCluster { name: plan.name, spec, edit, valid, disables })
    }

    /// Changes one thing of `spec`; says what, or `None` when that change does not apply.
    fn edit(&mut self, plan: &'static ClusterPlan, spec: &mut ClusterSpec) -> Option<String> {
        let cascade = self.rng.random_bool(0.5);
        match self.rng.random_range(0..11) {
            0 => {
                spec.proxy_replicas = 1 + (spec.proxy_replicas + self.rng.random_range(0..2)) % 3;
                Some(format!("proxy replicas {}", spec.proxy_replicas))
            }
            1 => {
                spec.autoscaling = !spec.autoscaling;
                Some(format!("proxy autoscaling {}", on_off(spec.autoscaling)))
            }
            2 => {
                spec.proxy_tag = 1 - spec.proxy_tag;
                Some(format!("proxy image tag {}", PROXY_TAGS[spec.proxy_tag]))
            }
            3 => {
                let backend = *self.pick(&spec.backends.keys().copied().collect::<Vec<_>>())?;
                let version = spec.backends.entry(backend).or_default();
                *version = 1 - *version;
                Some(format!("{backend} image version {}", *version))
            }
            4 => {
                let backend = *self.pick(&spec.backends.keys().copied().collect::<Vec<_>>())?;
                spec.backends.remove(backend);
                if cascade {
                    let users: Vec<&str> =
                        plan.patterns.iter().filter(|p| p.backends.contains(&backend)).map(|p| p.name).collect();
                    remove_patterns(plan, spec, &users);
                }
                Some(format!("backend {backend} off{}", if cascade { " with its patterns" } else { "" }))
            }
            5 => {
                let off: Vec<&str> =
                    plan.backends.iter().map(|b| b.name).filter(|b| !spec.backends.contains_key(b)).collect();
                let backend = *self.pick(&off)?;
                spec.backends.insert(backend, 0);
                Some(format!("backend {backend} on"))
            }
            6 => {
                let pattern = *self.pick(&spec.patterns.keys().copied().collect::<Vec<_>>())?;
                if cascade {
                    remove_patterns(plan, spec, &[pattern]);
                } else {
                    spec.patterns.remove(pattern);
                }
                Some(format!("pattern {pattern} removed{}", if cascade { " with its namespaces" } else { "" }))
            }
            7 => {
                let absent: Vec<&str> =
                    plan.patterns.iter().map(|p| p.name).filter(|p| !spec.patterns.contains_key(p)).collect();
                let pattern = *self.pick(&absent)?;
                spec.patterns.insert(pattern, 1);
                Some(format!("pattern {pattern} added"))
            }
            8 => {
                let pattern = *self.pick(&spec.patterns.keys().copied().collect::<Vec<_>>())?;
                let replicas = self.rng.random_range(1..=3);
                spec.patterns.insert(pattern, replicas);
                Some(format!("pattern {pattern} replicas {replicas}"))
            }
            9 => {
                let namespace = self.pick(plan.namespaces)?.name;
                let added = spec.namespaces.insert(namespace);
                if !added {
                    spec.namespaces.remove(namespace);
                }
                Some(format!("namespace {namespace} {}", if added { "added" } else { "removed" }))
            }
            _ => {
                spec.paused = !spec.paused;
                Some(if spec.paused { "paused" } else { "unpaused" }.into())
            }
        }
    }

    fn app_namespace(&mut self) -> Option<Op> {
        let plan = self.pick(APP_NAMESPACES)?;
        let cluster_live = matches!(self.world.clusters.get(plan.cluster), Some(Some(_)));
        let current = self.world.app_namespaces.get(plan.name).cloned().flatten();
        let (spec, edit) = match current {
            None if !cluster_live => return None,
            None => (AppNamespaceSpec::full(plan), "created"),
            Some(_) if self.rng.random_bool(0.3) => {
                self.world.app_namespaces.insert(plan.name, None);
                return Some(Op::DeleteAppNamespace { name: plan.name });
            }
            Some(mut spec) => {
                let edit = match self.rng.random_range(0..3) {
                    0 => {
                        spec.max_sessions = self.rng.random_range(1..=20) * 100;
                        "quota changed"
                    }
                    1 if !spec.patterns.contains(&UNKNOWN_PATTERN) => {
                        spec.patterns.push(UNKNOWN_PATTERN);
                        "unknown pattern added"
                    }
                    _ => {
                        spec.patterns = plan.patterns[..self.rng.random_range(1..=plan.patterns.len())].to_vec();
                        "patterns changed"
                    }
                };
                (spec, edit)
            }
        };
        let valid = !spec.patterns.contains(&UNKNOWN_PATTERN);
        self.world.app_namespaces.insert(plan.name, Some(spec.clone()));
        Some(Op::ApplyAppNamespace { name: plan.name, spec, edit, valid })
    }

    fn delete_cluster(&mut self) -> Option<Op> {
        let plan = *self.pick(&self.live_clusters())?;
        self.world.clusters.insert(plan.name, None);
        // Its teardown takes the app teams' namespaces on it along.
        for namespace in APP_NAMESPACES.iter().filter(|n| n.cluster == plan.name) {
            self.world.app_namespaces.insert(namespace.name, None);
        }
        Some(Op::DeleteCluster { name: plan.name })
    }

    fn recreate_cluster(&mut self) -> Option<Op> {
        let absent: Vec<&'static ClusterPlan> =
            CLUSTERS.iter().filter(|c| matches!(self.world.clusters.get(c.name), Some(None))).collect();
        let plan = *self.pick(&absent)?;
        let spec = ClusterSpec::full(plan);
        self.world.clusters.insert(plan.name, Some(spec.clone()));
        Some(Op::RecreateCluster { name: plan.name, spec })
    }

    fn refused(&mut self) -> Option<Op> {
        let (target, refusals): (String, &[(&str, &str)]) = match self.rng.random_range(0..3) {
            0 => (format!("prismcluster/{}", self.pick(&self.live_clusters())?.name), CLUSTER_REFUSALS),
            1 => {
                let live: Vec<&str> =
                    APP_NAMESPACES.iter().map(|n| n.name).filter(|n| self.world.app_namespaces[n].is_some()).collect();
                (format!("prismnamespace/{}", self.pick(&live)?), NAMESPACE_REFUSALS)
            }
            _ => (format!("prismpattern/{}", self.pick(&world::tunable_patterns(&self.world))?), PATTERN_REFUSALS),
        };
        let (what, patch) = *self.pick(refusals)?;
        Some(Op::Refused { target, what, patch })
    }

    fn tune(&mut self) -> Option<Op> {
        let pattern = self.pick(&world::tunable_patterns(&self.world))?.clone();
        let tuning = match self.rng.random_range(0..5) {
            0 | 1 => Tuning::Scale(self.rng.random_range(1..=3)),
            2 => Tuning::LogLevel(self.pick(&["debug", "info", "warn"])?),
            3 => Tuning::Autoscaling(self.rng.random_bool(0.5)),
            _ => Tuning::CpuRequest(self.pick(&["100m", "150m", "200m"])?),
        };
        Some(Op::TunePattern { pattern, tuning })
    }

    fn delete_child(&mut self) -> Option<Op> {
        let plan = *self.pick(&self.live_clusters())?;
        let spec = self.world.clusters.get(plan.name).cloned().flatten()?;
        let child = self.pick(&world::deletable_children(plan, &spec))?.clone();
        Some(Op::DeleteChild { cluster: plan.name, child })
    }

    fn fault(&mut self) -> Op {
        let fault = match self.rng.random_range(0..8) {
            0 => Fault::Conflict,
            1 => Fault::TooManyRequests,
            2 => Fault::InternalError,
            3 => Fault::Unavailable,
            4 => Fault::Slow(self.rng.random_range(2..=15) * 100),
            5 => Fault::WatchReset,
            6 => Fault::WatchExpired,
            _ => Fault::ServerDown,
        };
        let lasting = Duration::from_millis(self.rng.random_range(1000..5000));
        Op::Fault { fault, lasting }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Removes `patterns` from `spec`, and the cluster's namespaces that use any of them.
fn remove_patterns(plan: &ClusterPlan, spec: &mut ClusterSpec, patterns: &[&str]) {
    for pattern in patterns {
        spec.patterns.remove(*pattern);
    }
    for namespace in plan.namespaces.iter().filter(|n| n.patterns.iter().any(|p| patterns.contains(p))) {
        spec.namespaces.remove(namespace.name);
    }
}

/// Merge patches the API refuses whatever the object is, with what each tries.
const CLUSTER_REFUSALS: &[(&str, &str)] = &[
    ("negative proxy replicas", r#"{"spec": {"proxy": {"replicas": -1}}}"#),
    ("unknown deletion policy", r#"{"spec": {"deletionPolicy": "Destroy"}}"#),
    ("ingress without a host", r#"{"spec": {"ingress": {"enabled": true}}}"#),
    ("unknown backend", r#"{"spec": {"patterns": [{"name": "keyvalue", "backends": ["mysql"]}]}}"#),
];

const NAMESPACE_REFUSALS: &[(&str, &str)] = &[
    ("unknown isolation", r#"{"spec": {"isolation": "strict"}}"#),
    ("moved to another cluster (immutable)", r#"{"spec": {"cluster": "elsewhere"}}"#),
];

const PATTERN_REFUSALS: &[(&str, &str)] = &[
    ("unknown pattern type", r#"{"spec": {"type": "cache"}}"#),
    ("service port out of range", r#"{"spec": {"service": {"port": 70000}}}"#),
    ("replicas as a word", r#"{"spec": {"replicas": "two"}}"#),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let describe = |steps: Vec<Step>| steps.iter().map(|s| format!("{:?} {}", s.at, s.op)).collect::<Vec<_>>();
        let length = Duration::from_secs(120);
        assert_eq!(describe(generate(7, length)), describe(generate(7, length)));
        assert_ne!(describe(generate(7, length)), describe(generate(8, length)));
    }

    #[test]
    fn every_schedule_kills_and_restarts_the_leader() {
        for seed in 0..50 {
            let steps = generate(seed, Duration::from_secs(10));
            assert!(steps.iter().any(|s| matches!(s.op, Op::KillLeader { .. })), "seed {seed}");
            assert!(steps.iter().any(|s| matches!(s.op, Op::RestartLeader)), "seed {seed}");
            assert!(steps.windows(2).all(|w| w[0].at <= w[1].at && w[0].index + 1 == w[1].index), "seed {seed}");
        }
    }
}
