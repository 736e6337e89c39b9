//! Carrying out one step: kubectl as users run it (retried while the API is unreachable, as a
//! user would), the emulator's fault rules, and the fleet's kills.

use std::time::{Duration, Instant};

use kube_emulator::instruments::faults::{DownMode, FaultAction, FaultRule};
use prism_api::v1beta1::PrismCluster;

use crate::Soak;
use crate::fleet::AGENT_PREFIX;
use crate::record::{Invariant, Outcome};
use crate::schedule::{Fault, Op, Step, Tuning};
use crate::world::{self, ClusterSpec};

/// How long kubectl is retried while the API is unreachable.
const KUBECTL_PATIENCE: Duration = Duration::from_secs(30);
/// How long a re-create waits for the deleted cluster's teardown.
const TEARDOWN_PATIENCE: Duration = Duration::from_secs(90);
/// What kubectl prints when the server answered with a final refusal.
const REFUSALS: &[&str] =
    &["(Invalid)", "(BadRequest)", "(Forbidden)", "(Conflict)", "(AlreadyExists)", "is invalid", "Apply failed with"];

/// Runs `step` (after the steps before it on the same object) and records its outcome.
pub async fn run(soak: &Soak, step: &Step) {
    let lock = step.op.target().map(|target| soak.lock_for(&target));
    let _turn = match &lock {
        Some(lock) => Some(lock.lock().await),
        None => None,
    };
    soak.journal.started(step.index);
    let outcome = perform(soak, &step.op).await;
    judge_edit(soak, step, &outcome);
    soak.journal.finished(step.index, outcome);
}

async fn perform(soak: &Soak, op: &Op) -> Outcome {
    match op {
        Op::ApplyCluster { name, spec, disables, .. } => {
            if let Some(backend) = disables {
                soak.tallies.disabled(name, backend);
            }
            apply_cluster(soak, name, spec).await
        }
        Op::DeleteCluster { name } => {
            kubectl(soak, &["delete", &format!("prismcluster/{name}"), "--wait=false"], None).await
        }
        Op::RecreateCluster { name, spec } => recreate_cluster(soak, name, spec).await,
        Op::ApplyAppNamespace { name, spec, .. } => {
            let plan = world::app_namespace_plan(name);
            let manifest = world::app_namespace_manifest(plan, spec, &soak.env.namespace).to_string();
            kubectl(soak, &["apply", "--server-side", "-f", "-"], Some(&manifest)).await
        }
        Op::DeleteAppNamespace { name } => {
            kubectl(soak, &["delete", &format!("prismnamespace/{name}"), "--wait=false"], None).await
        }
        Op::Refused { target, patch, .. } => {
            kubectl(soak, &["patch", target, "--type", "merge", "-p", patch], None).await
        }
        Op::TunePattern { pattern, tuning } => tune(soak, pattern, tuning).await,
        Op::DeleteChild { cluster, child } => delete_child(soak, cluster, child).await,
        Op::KillLeader { restart_after } => soak.fleet.kill_leader(*restart_after).await.into(),
        Op::RestartLeader => soak.fleet.terminate_leader().await.into(),
        Op::Fault { fault, lasting } => inject(soak, *fault, *lasting).await,
    }
}

/// An edit the soak means as valid must be accepted, one the schema refuses refused.
///
/// A spec valid alone but not with the objects it names (a pattern its cluster lacks, a cluster
/// that is gone) is refused by the admission webhook while the webhook is reachable, and reported
/// in a condition otherwise: either is right (invariant 1 judges the report). Which one the
/// webhook saw cannot be known under the schedule's concurrent edits, so such a refusal is
/// accepted for any apply of a whole spec; a refusal for any other reason is not.
fn judge_edit(soak: &Soak, step: &Step, outcome: &Outcome) {
    let whole_spec = matches!(step.op, Op::ApplyCluster { .. } | Op::ApplyAppNamespace { .. });
    if whole_spec && refused_for_references(outcome) {
        soak.violations.checked(Invariant::EditsJudged, 1);
        return;
    }
    let (expected_refusal, what) = match &step.op {
        Op::ApplyCluster { valid: false, .. } | Op::ApplyAppNamespace { valid: false, .. } => return,
        Op::Refused { .. } => (true, "an invalid edit was accepted"),
        Op::ApplyCluster { .. }
        | Op::RecreateCluster { .. }
        | Op::ApplyAppNamespace { .. }
        | Op::TunePattern { .. } => (false, "a valid edit was refused"),
        _ => return,
    };
    soak.violations.checked(Invariant::EditsJudged, 1);
    let refused = matches!(outcome, Outcome::Refused(_));
    let accepted = matches!(outcome, Outcome::Done(_));
    if (expected_refusal && accepted) || (!expected_refusal && refused) {
        let objects = step.op.target().into_iter().collect();
        let what = format!("{what}: step #{} {} -> {outcome:?}", step.index, step.op);
        soak.violations.found(&soak.journal, Invariant::EditsJudged, what, objects);
    }
}

/// Whether the references webhook refused the edit (see [`judge_edit`]).
fn refused_for_references(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Refused(why) if why.contains("admission webhook \"references.prism.io\" denied"))
}

async fn apply_cluster(soak: &Soak, name: &str, spec: &ClusterSpec) -> Outcome {
    let manifest = world::cluster_manifest(world::cluster_plan(name), spec, &soak.env.namespace).to_string();
    kubectl(soak, &["apply", "--server-side", "-f", "-"], Some(&manifest)).await
}

/// Re-creating a deleted cluster: a user waits for the old one's teardown (applying to a
/// terminating object would only edit it).
async fn recreate_cluster(soak: &Soak, name: &str, spec: &ClusterSpec) -> Outcome {
    let clusters = soak.env.api::<PrismCluster>();
    let deadline = Instant::now() + TEARDOWN_PATIENCE;
    loop {
        match clusters.get_opt(name).await {
            Ok(None) => return apply_cluster(soak, name, spec).await,
            _ if Instant::now() >= deadline => {
                return Outcome::GaveUp(format!("prismcluster/{name} still there after {TEARDOWN_PATIENCE:?}"));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn tune(soak: &Soak, pattern: &str, tuning: &Tuning) -> Outcome {
    let target = format!("prismpattern/{pattern}");
    let patch = match tuning {
        Tuning::Scale(replicas) => {
            return kubectl(soak, &["scale", &target, &format!("--replicas={replicas}")], None).await;
        }
        Tuning::LogLevel(level) => format!(r#"{{"spec": {{"config": {{"logLevel": "{level}"}}}}}}"#),
        Tuning::Autoscaling(true) => r#"{"spec": {"autoscaling": {"enabled": true, "scaler": "hpa", "minReplicas": 1, "maxReplicas": 3, "targetCPU": 70}}}"#.into(),
        Tuning::Autoscaling(false) => r#"{"spec": {"autoscaling": null}}"#.into(),
        Tuning::CpuRequest(cpu) => format!(r#"{{"spec": {{"resources": {{"requests": {{"cpu": "{cpu}"}}}}}}}}"#),
    };
    kubectl(soak, &["patch", &target, "--type", "merge", "-p", &patch], None).await
}

/// A user deletes a child of a live cluster (the children of a deleted one are the teardown's).
async fn delete_child(soak: &Soak, cluster: &str, child: &str) -> Outcome {
    match soak.env.api::<PrismCluster>().get_opt(cluster).await {
        Ok(Some(c)) if c.metadata.deletion_timestamp.is_none() => {
            kubectl(soak, &["delete", child, "--wait=false"], None).await
        }
        Ok(_) => Outcome::Skipped(format!("prismcluster/{cluster} is not live")),
        Err(e) => Outcome::Skipped(format!("cannot read prismcluster/{cluster}: {e}")),
    }
}

/// kubectl, retried while the API answers with transient errors or not at all.
async fn kubectl(soak: &Soak, args: &[&str], input: Option<&str>) -> Outcome {
    let deadline = Instant::now() + KUBECTL_PATIENCE;
    loop {
        let out = soak.env.kubectl_with_input(args, input).await;
        if out.success {
            return Outcome::Done(out.stdout.trim().chars().take(80).collect());
        }
        if out.stderr.contains("(NotFound)") {
            return Outcome::Absent;
        }
        if REFUSALS.iter().any(|r| out.stderr.contains(r)) {
            return Outcome::Refused(out.stderr);
        }
        if Instant::now() >= deadline {
            return Outcome::GaveUp(out.stderr);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The rules of a fault, for the operators' requests only (the server going down hits everyone).
fn rules(fault: Fault) -> Vec<FaultRule> {
    let writes = |rule: FaultRule| ["create", "update", "patch", "delete"].into_iter().fold(rule, FaultRule::verb);
    let rule = match fault {
        Fault::Conflict => writes(FaultRule::error(409)),
        Fault::TooManyRequests => FaultRule::too_many_requests(1),
        Fault::InternalError => writes(FaultRule::error(500)),
        Fault::Unavailable => FaultRule::error(503),
        Fault::Slow(ms) => FaultRule::new(FaultAction::Latency { ms }),
        Fault::WatchReset => FaultRule::new(FaultAction::Reset).verb("watch"),
        Fault::WatchExpired => FaultRule::new(FaultAction::WatchExpired { after_events: 0 }).verb("watch"),
        Fault::ServerDown => return Vec::new(),
    };
    vec![rule.user_agent(AGENT_PREFIX)]
}

/// Injects `fault` for `lasting`, then removes it.
async fn inject(soak: &Soak, fault: Fault, lasting: Duration) -> Outcome {
    let instruments = &soak.env.emulator().instruments;
    let faults = &instruments.faults;
    let from = instruments.requests.snapshot().log.last().map_or(0, |r| r.seq);
    let ids: Vec<_> = rules(fault).into_iter().map(|rule| faults.add(rule)).collect();
    match fault {
        // Open watches end (as on a dropped connection), so that their resumptions meet the rule.
        Fault::WatchReset | Fault::WatchExpired => faults.server_down(Duration::from_millis(1), DownMode::Drop),
        Fault::ServerDown => faults.server_down(lasting, DownMode::Drop),
        _ => {}
    }
    tokio::time::sleep(lasting).await;
    let fired: u64 = match fault {
        // No rule: the operators' requests the server dropped (logged without an answer, code 0).
        Fault::ServerDown => instruments
            .requests
            .log_after(from)
            .iter()
            .filter(|r| r.code == 0 && r.info.user_agent.starts_with(AGENT_PREFIX))
            .count() as u64,
        _ => ids.iter().map(|id| faults.fired(*id)).sum(),
    };
    for id in ids {
        faults.remove(id);
    }
    soak.tallies.fault(fault.name(), lasting, fired);
    Outcome::Done(format!("fired {fired} times"))
}
