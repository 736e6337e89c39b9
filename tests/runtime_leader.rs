//! Leader election against the Kubernetes API emulator (in-process): two electors on one Lease.
//!
//! Short timings (lease 2 s, renew deadline 1 s, retry 200 ms) keep the tests quick; the
//! behaviour scales with the flags.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use kube::{Api, Client};
use kube_emulator::Emulator;
use kube_emulator::instruments::faults::FaultRule;
use prism_operator::leader::{LeaderElector, LostLease, Timings};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

const LEASE: &str = "prism-operator-leader";
const TIMINGS: Timings = Timings {
    lease_duration: Duration::from_secs(2),
    renew_deadline: Duration::from_secs(1),
    retry_period: Duration::from_millis(200),
};
/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(800);

fn leases(emulator: &Emulator) -> Api<Lease> {
    Api::namespaced(Client::new(emulator.router(), "default"), "default")
}

fn elector(api: &Api<Lease>, identity: &str) -> LeaderElector {
    LeaderElector::new(api.clone(), LEASE, identity, TIMINGS)
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    api.get(LEASE).await.expect("lease exists").spec.and_then(|s| s.holder_identity)
}

/// Renews in the background until told to stop; gives the elector back with what ended it
/// (`None`: stopped by us).
fn renew_until_stopped(
    mut elector: LeaderElector,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<(LeaderElector, Option<LostLease>)>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let lost = tokio::select! {
            lost = elector.keep() => Some(lost),
            _ = stopped => None,
        };
        (elector, lost)
    });
    (stop, task)
}

#[tokio::test]
async fn one_leads_and_the_standby_takes_over_within_a_lease_duration_after_it_stops_renewing() {
    let emulator = Emulator::start();
    let api = leases(&emulator);
    let mut a = elector(&api, "a");
    timeout(SLACK, a.acquire()).await.expect("a takes the missing lease at once");
    assert_eq!(holder(&api).await.as_deref(), Some("a"));

    let (stop_a, a_task) = renew_until_stopped(a);
    let mut b = elector(&api, "b");
    let b_task = tokio::spawn(async move {
        b.acquire().await;
        b
    });
    // Three lease durations: b never takes a lease that a keeps renewing.
    tokio::time::sleep(TIMINGS.lease_duration * 3).await;
    assert!(!b_task.is_finished(), "b took a valid lease held by a");
    assert_eq!(holder(&api).await.as_deref(), Some("a"));

    // a dies (stops renewing, releases nothing): b leads within one lease duration.
    stop_a.send(()).expect("a is renewing");
    let (mut a, lost) = a_task.await.expect("a's task");
    assert_eq!(lost, None);
    let died = Instant::now();
    let _b = timeout(TIMINGS.lease_duration + TIMINGS.retry_period + SLACK, b_task)
        .await
        .expect("b takes over within a lease duration")
        .expect("b's task");
    let took = died.elapsed();
    assert!(took <= TIMINGS.lease_duration + TIMINGS.retry_period + SLACK, "took {took:?}");
    let spec = api.get(LEASE).await.expect("lease").spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));

    // a comes back (e.g. after a long pause): it finds it lost the lease and says so.
    let lost = timeout(TIMINGS.renew_deadline + SLACK, a.keep()).await.expect("a notices at once");
    assert!(
        matches!(lost, LostLease::TakenBy(ref h) if h == "b") || matches!(lost, LostLease::RenewDeadline { .. }),
        "{lost:?}"
    );
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_within_a_retry_period() {
    let emulator = Emulator::start();
    let api = leases(&emulator);
    let mut a = elector(&api, "a");
    a.acquire().await;
    let (_stop_a, a_task) = renew_until_stopped(a);
    tokio::time::sleep(TIMINGS.retry_period * 2).await;

    // Another writer takes the lease (e.g. an instance with a skewed configuration).
    let mut lease = api.get(LEASE).await.expect("lease");
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
    }
    api.replace(LEASE, &PostParams::default(), &lease).await.expect("taken");
    let taken = Instant::now();

    let (_, lost) = timeout(TIMINGS.retry_period + SLACK, a_task).await.expect("a stops at once").expect("a's task");
    assert_eq!(lost, Some(LostLease::TakenBy("intruder".into())));
    assert!(taken.elapsed() <= TIMINGS.retry_period + SLACK);
}

#[tokio::test]
async fn a_leader_that_cannot_renew_gives_up_at_the_renew_deadline_before_the_lease_expires() {
    let emulator = Emulator::start();
    let api = leases(&emulator);
    let mut a = elector(&api, "a");
    a.acquire().await;
    let last_renewal = Instant::now();
    // The API server fails every lease read from now on.
    emulator.instruments.faults.add(FaultRule::error(503).resource("leases"));
    let (_stop_a, a_task) = renew_until_stopped(a);

    let (_, lost) = timeout(TIMINGS.lease_duration, a_task).await.expect("a gives up in time").expect("a's task");
    let gave_up = last_renewal.elapsed();
    assert!(matches!(lost, Some(LostLease::RenewDeadline { .. })), "{lost:?}");
    assert!(gave_up >= TIMINGS.renew_deadline - TIMINGS.retry_period, "gave up early: {gave_up:?}");
    assert!(gave_up < TIMINGS.lease_duration, "a standby could already have taken over: {gave_up:?}");
}

#[tokio::test]
async fn a_released_lease_is_taken_by_the_standby_at_once() {
    let emulator = Emulator::start();
    let api = leases(&emulator);
    let mut a = elector(&api, "a");
    a.acquire().await;
    let mut b = elector(&api, "b");
    let b_task = tokio::spawn(async move {
        b.acquire().await;
        b
    });
    tokio::time::sleep(TIMINGS.retry_period * 2).await;
    assert!(!b_task.is_finished());

    assert!(a.release().await.expect("release"), "a held the lease");
    let released = Instant::now();
    timeout(TIMINGS.retry_period + SLACK, b_task).await.expect("b takes the released lease").expect("b's task");
    assert!(released.elapsed() < TIMINGS.lease_duration, "b waited for expiry instead");
    assert_eq!(holder(&api).await.as_deref(), Some("b"));
    // Releasing a lease one no longer holds changes nothing.
    assert!(!a.release().await.expect("release"));
    assert_eq!(holder(&api).await.as_deref(), Some("b"));
}

#[tokio::test]
async fn two_electors_starting_together_elect_exactly_one() {
    let emulator = Emulator::start();
    let api = leases(&emulator);
    let (mut a, mut b) = (elector(&api, "a"), elector(&api, "b"));
    let winner = tokio::select! {
        () = a.acquire() => "a",
        () = b.acquire() => "b",
    };
    assert_eq!(holder(&api).await.as_deref(), Some(winner));
    let (mut loser, loser_name) = if winner == "a" { (b, "b") } else { (a, "a") };
    // The loser keeps standing by while the lease is valid (nobody renews: it is still valid
    // for a lease duration from when the loser saw it).
    let waited = timeout(TIMINGS.lease_duration / 2, loser.acquire()).await;
    assert!(waited.is_err(), "{loser_name} took a valid lease");
}
