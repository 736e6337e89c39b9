//! Leader election on a coordination.k8s.io/v1 Lease, written with plain get/create/replace:
//! every write carries the resourceVersion it read, so two instances never both win a round.
//!
//! Safety without synchronised clocks: a standby measures a holder's lease from the moment *it*
//! saw the lease record change (its own monotonic clock, as client-go does), crediting at most a
//! small, bounded age from the record's renewTime. The leader gives up once it could not renew
//! for `renew_deadline` (< lease duration), measured from the start of its last successful
//! renewal. So the leader has stopped before any standby considers the lease expired, with a
//! margin of at least (lease duration - renew deadline) / 2.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

/// The timings of an election (see the `--lease-duration`, `--renew-deadline` and
/// `--retry-period` flags; validated so that renew deadline < lease duration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Timings {
    /// The most a standby credits for a record's age by its renewTime (wall clocks can be
    /// skewed): never enough to eat the leader's safety margin.
    fn max_age_credit(&self) -> Duration {
        self.retry_period.min(self.lease_duration.saturating_sub(self.renew_deadline) / 2)
    }
}

/// What to do with the lease, given what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is no lease: create it, held by us.
    Create,
    /// The lease is free (released) or its holder let it expire: take it.
    Acquire,
    /// We hold the lease: renew it.
    Renew,
    /// Another instance holds a valid lease until `expires` (our clock).
    Follow { holder: String, expires: Instant },
}

/// The fields of a lease record that change on each renewal or transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: String,
    renew_time: Option<Timestamp>,
    transitions: i32,
    duration_seconds: Option<i32>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Record {
        Record {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
            duration_seconds: spec.lease_duration_seconds,
        }
    }
}

/// The pure decision logic of one elector: no I/O, the time is passed in.
#[derive(Debug, Clone)]
pub struct Elector {
    identity: String,
    timings: Timings,
    /// Another holder's record as last seen, and when (our clock, age credited) it was new.
    seen: Option<(Record, Instant)>,
}

impl Elector {
    pub fn new(identity: impl Into<String>, timings: Timings) -> Elector {
        Elector { identity: identity.into(), timings, seen: None }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Decides from the lease as read (`None`: it does not exist) at `now` (monotonic) and
    /// `wall` (the wall clock, only used to credit a bounded age to a fresh record).
    pub fn decide(&mut self, lease: Option<&LeaseSpec>, now: Instant, wall: Timestamp) -> Decision {
        let Some(spec) = lease else {
            self.seen = None;
            return Decision::Create;
        };
        let record = Record::of(spec);
        if record.holder.is_empty() {
            return Decision::Acquire;
        }
        if record.holder == self.identity {
            return Decision::Renew;
        }
        let valid_for = record
            .duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(self.timings.lease_duration, Duration::from_secs);
        let holder = record.holder.clone();
        let expires = self.seen_at(record, now, wall) + valid_for;
        if now >= expires { Decision::Acquire } else { Decision::Follow { holder, expires } }
    }

    /// When `record` was first seen, backdated by its age per renewTime, at most the credit.
    fn seen_at(&mut self, record: Record, now: Instant, wall: Timestamp) -> Instant {
        if let Some((seen, at)) = &self.seen
            && *seen == record
        {
            return *at;
        }
        let age = record
            .renew_time
            .and_then(|renewed| Duration::try_from(wall.duration_since(renewed)).ok())
            .unwrap_or_default()
            .min(self.timings.max_age_credit());
        let at = now.checked_sub(age).unwrap_or(now);
        self.seen = Some((record, at));
        at
    }

    /// The spec to write for `decision` (Create, Acquire or Renew), keeping unrelated fields.
    pub fn held_spec(&self, current: Option<&LeaseSpec>, decision: &Decision, wall: Timestamp) -> LeaseSpec {
        let mut spec = current.cloned().unwrap_or_default();
        let now = Some(MicroTime(wall));
        let previous_holder = spec.holder_identity.take().unwrap_or_default();
        if *decision != Decision::Renew || spec.acquire_time.is_none() {
            spec.acquire_time = now.clone();
        }
        if *decision == Decision::Acquire && previous_holder != self.identity {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_transitions.get_or_insert(0);
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(i32::MAX));
        spec.renew_time = now;
        spec
    }

    /// The spec that hands the lease back: no holder, so a standby takes it on its next check.
    pub fn released_spec(&self, current: &LeaseSpec, wall: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            renew_time: Some(MicroTime(wall)),
            ..current.clone()
        }
    }
}

/// What one round against the API server found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// We hold the lease; the round started at `since` (what the renew deadline counts from).
    Leading { since: Instant },
    /// Another instance holds it until `expires`.
    Following { holder: String, expires: Instant },
    /// Someone wrote the lease between our read and our write: try again.
    Raced,
}

/// Why a leader stopped leading; the process exits on it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LostLease {
    #[error("the lease is now held by {0}")]
    TakenBy(String),
    #[error("the lease could not be renewed within the renew deadline ({deadline:?}); last error: {last_error}")]
    RenewDeadline { deadline: Duration, last_error: String },
}

/// An elector talking to the API server.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    elector: Elector,
    timings: Timings,
    /// Start of the last successful renewal (valid while leading).
    renewed_at: Instant,
    last_attempt: Instant,
    /// Called with the time of every successful round (readiness).
    on_contact: Box<dyn Fn(Instant) + Send + Sync>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector").field("name", &self.name).field("elector", &self.elector).finish()
    }
}

impl LeaderElector {
    /// `api` is the namespace of the Lease; use a client that is not rate limited together with
    /// the controllers, so that a busy controller never delays a renewal.
    pub fn new(api: Api<Lease>, name: impl Into<String>, identity: impl Into<String>, timings: Timings) -> Self {
        let now = Instant::now();
        LeaderElector {
            api,
            name: name.into(),
            elector: Elector::new(identity, timings),
            timings,
            renewed_at: now,
            last_attempt: now,
            on_contact: Box::new(|_| {}),
        }
    }

    pub fn on_contact(mut self, callback: impl Fn(Instant) + Send + Sync + 'static) -> Self {
        self.on_contact = Box::new(callback);
        self
    }

    pub fn identity(&self) -> &str {
        self.elector.identity()
    }

    /// Returns once this instance holds the lease; a standby checks every retry period, and
    /// exactly when the holder's lease expires.
    pub async fn acquire(&mut self) {
        let mut following: Option<String> = None;
        loop {
            self.last_attempt = Instant::now();
            let retry_at = self.last_attempt + self.timings.retry_period;
            let next = match timeout(self.timings.renew_deadline, self.round()).await {
                Ok(Ok(Outcome::Leading { since })) => {
                    self.renewed_at = since;
                    tracing::info!(lease = %self.name, identity = %self.identity(), "acquired the leader lease");
                    return;
                }
                Ok(Ok(Outcome::Following { holder, expires })) => {
                    if following.as_ref() != Some(&holder) {
                        tracing::info!(lease = %self.name, %holder, "standing by: another instance leads");
                        following = Some(holder);
                    }
                    expires.min(retry_at)
                }
                Ok(Ok(Outcome::Raced)) => retry_at,
                Ok(Err(err)) => {
                    tracing::warn!(lease = %self.name, error = %err, "cannot read or take the leader lease");
                    retry_at
                }
                Err(_) => {
                    tracing::warn!(lease = %self.name, "reading the leader lease timed out");
                    Instant::now() + self.timings.retry_period
                }
            };
            sleep_until(next).await;
        }
    }

    /// Renews every retry period while leading; returns only when the lease is lost. Safe to
    /// call again after a cancelled call (e.g. to keep renewing while the controllers drain).
    pub async fn keep(&mut self) -> LostLease {
        let mut last_error = String::from("none");
        loop {
            let deadline = self.renewed_at + self.timings.renew_deadline;
            sleep_until((self.last_attempt + self.timings.retry_period).min(deadline)).await;
            self.last_attempt = Instant::now();
            match timeout_at(deadline, self.round()).await {
                Ok(Ok(Outcome::Leading { since })) => self.renewed_at = since,
                Ok(Ok(Outcome::Following { holder, .. })) => return LostLease::TakenBy(holder),
                Ok(Ok(Outcome::Raced)) => last_error = "the lease changed while renewing it".into(),
                Ok(Err(err)) => {
                    tracing::warn!(lease = %self.name, error = %err, "renewing the leader lease failed; retrying");
                    last_error = err.to_string();
                }
                Err(_) => return LostLease::RenewDeadline { deadline: self.timings.renew_deadline, last_error },
            }
            if Instant::now() >= self.renewed_at + self.timings.renew_deadline {
                return LostLease::RenewDeadline { deadline: self.timings.renew_deadline, last_error };
            }
        }
    }

    /// Hands the lease back if we hold it, so that a standby takes over at once. Returns
    /// whether it was released.
    pub async fn release(&mut self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(false) };
        let Some(spec) = lease.spec.as_ref().filter(|s| s.holder_identity.as_deref() == Some(self.identity())) else {
            return Ok(false);
        };
        lease.spec = Some(self.elector.released_spec(spec, Timestamp::now()));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Someone wrote it since our read: it is no longer ours to release.
            Err(err) if is_status(&err, 409) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// One round: read the lease, decide, write if the decision says so.
    pub async fn round(&mut self) -> Result<Outcome, kube::Error> {
        let since = Instant::now();
        let current = self.api.get_opt(&self.name).await?;
        let decision =
            self.elector.decide(current.as_ref().and_then(|l| l.spec.as_ref()), Instant::now(), Timestamp::now());
        let written = match &decision {
            Decision::Follow { holder, expires } => {
                (self.on_contact)(Instant::now());
                return Ok(Outcome::Following { holder: holder.clone(), expires: *expires });
            }
            Decision::Create => self.create(&decision).await,
            Decision::Acquire | Decision::Renew => self.replace(current.unwrap_or_default(), &decision).await,
        };
        match written {
            Ok(()) => {
                (self.on_contact)(Instant::now());
                Ok(Outcome::Leading { since })
            }
            Err(err) if is_status(&err, 409) => Ok(Outcome::Raced),
            Err(err) => Err(err),
        }
    }

    async fn create(&self, decision: &Decision) -> Result<(), kube::Error> {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
            spec: Some(self.elector.held_spec(None, decision, Timestamp::now())),
        };
        self.api.create(&PostParams::default(), &lease).await.map(drop)
    }

    /// Replaces the lease as read: its resourceVersion makes the write fail (409) if anyone
    /// wrote in between.
    async fn replace(&self, mut lease: Lease, decision: &Decision) -> Result<(), kube::Error> {
        lease.spec = Some(self.elector.held_spec(lease.spec.as_ref(), decision, Timestamp::now()));
        self.api.replace(&self.name, &PostParams::default(), &lease).await.map(drop)
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMINGS: Timings = Timings {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn wall(offset: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + offset).expect("valid timestamp")
    }

    fn held_by(holder: &str, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn takes_a_missing_lease_by_creating_it() {
        let mut elector = Elector::new("me", TIMINGS);
        assert_eq!(elector.decide(None, Instant::now(), wall(0)), Decision::Create);
        let spec = elector.held_spec(None, &Decision::Create, wall(0));
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall(0))));
        assert_eq!(spec.renew_time, Some(MicroTime(wall(0))));
    }

    #[test]
    fn takes_an_empty_lease_at_once() {
        let mut elector = Elector::new("me", TIMINGS);
        let released = elector.released_spec(&held_by("other", wall(0)), wall(1));
        assert_eq!(released.holder_identity, None);
        assert_eq!(elector.decide(Some(&released), Instant::now(), wall(1)), Decision::Acquire);
        let spec = elector.held_spec(Some(&released), &Decision::Acquire, wall(1));
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(4), "a new term");
    }

    #[test]
    fn renews_a_lease_it_holds_keeping_the_term() {
        let mut elector = Elector::new("me", TIMINGS);
        let mut mine = held_by("me", wall(0));
        mine.acquire_time = Some(MicroTime(wall(-100)));
        assert_eq!(elector.decide(Some(&mine), Instant::now(), wall(1)), Decision::Renew);
        let spec = elector.held_spec(Some(&mine), &Decision::Renew, wall(2));
        assert_eq!(spec.renew_time, Some(MicroTime(wall(2))));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall(-100))));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn never_takes_a_valid_lease_held_by_another() {
        let mut elector = Elector::new("me", TIMINGS);
        let start = Instant::now();
        let theirs = held_by("other", wall(0));
        for t in 0..15 {
            let decision = elector.decide(Some(&theirs), start + secs(t), wall(0));
            assert!(
                matches!(decision, Decision::Follow { ref holder, .. } if holder == "other"),
                "t={t}: {decision:?}"
            );
        }
    }

    #[test]
    fn takes_a_lease_one_duration_after_its_last_renewal_was_seen() {
        let mut elector = Elector::new("me", TIMINGS);
        let start = Instant::now();
        let theirs = held_by("other", wall(0));
        assert_eq!(
            elector.decide(Some(&theirs), start, wall(0)),
            Decision::Follow { holder: "other".into(), expires: start + secs(15) }
        );
        assert_eq!(elector.decide(Some(&theirs), start + secs(15), wall(15)), Decision::Acquire);
    }

    #[test]
    fn a_renewal_by_the_holder_restarts_the_count() {
        let mut elector = Elector::new("me", TIMINGS);
        let start = Instant::now();
        elector.decide(Some(&held_by("other", wall(0))), start, wall(0));
        let renewed = held_by("other", wall(10));
        let decision = elector.decide(Some(&renewed), start + secs(10), wall(10));
        assert_eq!(decision, Decision::Follow { holder: "other".into(), expires: start + secs(25) });
        assert_eq!(
            elector.decide(Some(&renewed), start + secs(20), wall(20)),
            Decision::Follow { holder: "other".into(), expires: start + secs(25) }
        );
    }

    #[test]
    fn a_stale_record_is_credited_a_bounded_age_only() {
        let mut elector = Elector::new("me", TIMINGS);
        let start = Instant::now() + secs(3600);
        // Renewed an hour ago by the wall clock: it may be skewed, so at most 2 s are credited
        // (min(retry period, (15 - 10) / 2)).
        let stale = held_by("other", wall(-3600));
        assert_eq!(
            elector.decide(Some(&stale), start, wall(0)),
            Decision::Follow { holder: "other".into(), expires: start + secs(13) }
        );
        // A record from the future (clock skew the other way) gets no credit, and no penalty.
        let mut elector = Elector::new("me", TIMINGS);
        let future = held_by("other", wall(60));
        assert_eq!(
            elector.decide(Some(&future), start, wall(0)),
            Decision::Follow { holder: "other".into(), expires: start + secs(15) }
        );
    }

    #[test]
    fn the_holders_advertised_duration_counts() {
        let mut elector = Elector::new("me", TIMINGS);
        let start = Instant::now();
        let mut theirs = held_by("other", wall(0));
        theirs.lease_duration_seconds = Some(60);
        assert_eq!(
            elector.decide(Some(&theirs), start, wall(0)),
            Decision::Follow { holder: "other".into(), expires: start + secs(60) }
        );
    }

    #[test]
    fn the_leader_gives_up_before_any_standby_may_take_over() {
        // Worst case: a standby sees the last renewal the instant it is written, credits the
        // maximum age; the leader counts its deadline from the start of that renewal.
        let credit = TIMINGS.max_age_credit();
        assert!(TIMINGS.renew_deadline < TIMINGS.lease_duration - credit);
        let odd = Timings { lease_duration: secs(15), renew_deadline: secs(14), retry_period: secs(2) };
        assert!(odd.renew_deadline < odd.lease_duration - odd.max_age_credit());
    }
}
