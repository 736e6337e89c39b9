//! The invariants checked all along: from the emulator's request log (one writer at a time,
//! bounded request rate), from the API as the soak's own client sees it (no orphan, credentials
//! kept, volumes kept) and from the fleet (no crash, no panic).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::{Resource, ResourceExt};
use kube_emulator::instruments::accounting::RequestRecord;
use kube_emulator::request_info::WRITE_VERBS;
use prism_api::names::labels;
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;

use crate::Soak;
use crate::fleet::{AGENT_PREFIX, BURST, End, Ended, QPS};
use crate::record::Invariant;
use crate::world::{Policy, policy_of};

/// Requests one process may send in a second: what its two rate-limited clients (controllers and
/// Events, each `--qps` with bursts of `--burst`) allow, plus the unlimited lease client's
/// renewals and polls. A hot loop in a limited client cannot exceed it; one in the lease client
/// can.
pub const RATE_BOUND: u64 = 2 * (QPS + BURST) + 10;
/// How long an object may stay without a live owner before it is an orphan (garbage collection
/// and the operator's finalizers take a moment, longer while the API is faulted).
const ORPHAN_GRACE: Duration = Duration::from_secs(30);

/// The operator identity a request came from, if it came from one (`soak-operator-a/e2e`: `a`).
fn identity_of(record: &RequestRecord) -> Option<&str> {
    record.info.user_agent.strip_prefix(AGENT_PREFIX)?.split('/').next()
}

/// One process's writes as leader: from its first to its last.
#[derive(Clone, Debug)]
struct Term {
    first: Instant,
    last: Instant,
    writes: u64,
    first_write: String,
    last_write: String,
}

impl Term {
    /// Whether two processes wrote in one period: one wrote between two writes of the other.
    fn overlaps(&self, other: &Term) -> bool {
        self.first < other.last && other.first < self.last
    }
}

/// The operators' traffic, read from the emulator's request log as it grows.
pub struct Traffic {
    last_seq: u64,
    origin: Instant,
    /// (identity, second since the origin) -> requests.
    per_second: BTreeMap<(String, u64), u64>,
    /// (identity, start of its process) -> its writes (Lease renewals aside).
    terms: BTreeMap<(String, Instant), Term>,
    reported_overlaps: BTreeSet<((String, Instant), (String, Instant))>,
    /// How many terms the last check compared.
    terms_compared: u64,
}

/// How many pairs `n` things make.
fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

impl Traffic {
    pub fn new(origin: Instant) -> Traffic {
        Traffic {
            last_seq: 0,
            origin,
            per_second: BTreeMap::new(),
            terms: BTreeMap::new(),
            reported_overlaps: BTreeSet::new(),
            terms_compared: 0,
        }
    }

    /// Reads the requests logged since the last call, then checks invariants 5 and 6.
    pub fn check(&mut self, soak: &Soak) {
        let records = soak.env.emulator().instruments.requests.log_after(self.last_seq);
        if let (Some(first), true) = (records.first(), self.last_seq > 0) {
            assert_eq!(first.seq, self.last_seq + 1, "the request log dropped requests before they were read");
        }
        let mut busy = BTreeSet::new();
        for record in &records {
            self.last_seq = record.seq;
            let Some(identity) = identity_of(record) else { continue };
            let second = record.at.saturating_duration_since(self.origin).as_secs();
            *self.per_second.entry((identity.to_string(), second)).or_default() += 1;
            busy.insert((identity.to_string(), second));
            if WRITE_VERBS.contains(&record.info.verb.as_str()) && record.info.resource != "leases" {
                // A write belongs to the process that sent it, alive when it arrived: its answer
                // may come seconds later (an admission webhook served by a process that just
                // died), after a new process of the same identity started.
                let sent = record.received;
                let started = soak.fleet.process_at(identity, sent).unwrap_or(self.origin);
                let what = format!("{} {} ({})", record.info.verb, record.uri, record.code);
                let term = self.terms.entry((identity.to_string(), started)).or_insert_with(|| Term {
                    first: sent,
                    last: sent,
                    writes: 0,
                    first_write: what.clone(),
                    last_write: String::new(),
                });
                term.last = sent;
                term.writes += 1;
                term.last_write = what;
            }
        }
        // Every pair of terms is compared at every check; a pair counts as a case once.
        let terms = self.terms.len() as u64;
        soak.violations.checked(Invariant::OneWriter, pairs(terms) - pairs(self.terms_compared));
        self.terms_compared = terms;
        self.check_overlaps(soak);
        soak.violations.checked(Invariant::BoundedRate, busy.len() as u64);
        for key in busy {
            let count = self.per_second[&key];
            if count > RATE_BOUND {
                let what = format!(
                    "process {} sent {count} requests in second {} (bound {RATE_BOUND}); most: {}",
                    key.0,
                    key.1,
                    busiest(&records, self.origin, &key)
                );
                soak.violations.found(&soak.journal, Invariant::BoundedRate, what, vec![super::fleet::agent(&key.0)]);
            }
        }
    }
}

/// The commonest requests (verb, resource, answer) of `records` that `key`'s process sent in
/// `key`'s second, for a message.
fn busiest(records: &[RequestRecord], origin: Instant, key: &(String, u64)) -> String {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| identity_of(r) == Some(key.0.as_str()) && r.at.saturating_duration_since(origin).as_secs() == key.1)
    {
        *by.entry(format!("{} {} ({})", r.info.verb, r.info.resource, r.code)).or_default() += 1;
    }
    let mut counts: Vec<(u64, String)> = by.into_iter().map(|(what, n)| (n, what)).collect();
    counts.sort_by(|a, b| b.cmp(a));
    counts.iter().take(5).map(|(n, what)| format!("{n} x {what}")).collect::<Vec<_>>().join(", ")
}

impl Traffic {
    /// Two processes wrote in one period when their terms (first to last write) overlap.
    fn check_overlaps(&mut self, soak: &Soak) {
        let terms: Vec<_> = self.terms.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        for (i, (a_key, a)) in terms.iter().enumerate() {
            for (b_key, b) in &terms[i + 1..] {
                if !a.overlaps(b) || !self.reported_overlaps.insert((a_key.clone(), b_key.clone())) {
                    continue;
                }
                let describe = |key: &(String, Instant), t: &Term| {
                    format!(
                        "process {} (started {}) wrote {} times from {} ({}) to {} ({})",
                        key.0,
                        soak.journal.clock(key.1),
                        t.writes,
                        soak.journal.clock(t.first),
                        t.first_write,
                        soak.journal.clock(t.last),
                        t.last_write
                    )
                };
                let what = format!("two writers at once: {}; {}", describe(a_key, a), describe(b_key, b));
                soak.violations.found(
                    &soak.journal,
                    Invariant::OneWriter,
                    what,
                    vec![a_key.0.clone(), b_key.0.clone()],
                );
            }
        }
    }

    /// The busiest second: (requests, identity, second since the origin).
    pub fn peak(&self) -> Option<(u64, String, u64)> {
        self.per_second.iter().map(|((who, second), n)| (*n, who.clone(), *second)).max()
    }

    /// How many terms (processes that wrote) there were.
    pub fn writers(&self) -> usize {
        self.terms.len()
    }
}

/// Credentials seen per (cluster, Secret name): the data, and how often it changed. A cluster
/// is its uid under the Delete policy; under Retain it is its name, since its data (volumes and
/// credentials) outlives it and serves the next cluster of that name.
#[derive(Default)]
pub struct Credentials {
    seen: BTreeMap<(String, String), Seen>,
}

/// A Secret's data as last seen, and how often it changed.
struct Seen {
    data: BTreeMap<String, Vec<u8>>,
    changes: u32,
}

impl Credentials {
    /// Invariant 3: a live cluster's credentials Secrets keep their data. With the Delete policy
    /// a backend the schedule disabled loses its Secret, and may come back with new credentials,
    /// once per time it was disabled.
    pub async fn check(&mut self, soak: &Soak) {
        let clusters = soak.env.api::<PrismCluster>().list(&ListParams::default()).await;
        let params = ListParams::default().labels(labels::BACKEND);
        let secrets = soak.env.api::<Secret>().list(&params).await;
        let (Ok(clusters), Ok(secrets)) = (clusters, secrets) else { return };
        let live: BTreeMap<String, String> = clusters
            .items
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .map(|c| (c.name_any(), c.uid().unwrap_or_default()))
            .collect();
        let mut compared = 0;
        for secret in secrets.items {
            let Some(cluster) = secret.labels().get(labels::CLUSTER).cloned() else { continue };
            let Some(live_uid) = live.get(&cluster) else { continue };
            let policy = policy_of(&cluster);
            let owner = match policy {
                // Only a Secret of the live cluster counts (not one its predecessor's teardown is
                // still deleting).
                Policy::Delete if secret.owner_references().iter().any(|o| &o.uid == live_uid) => live_uid.clone(),
                Policy::Delete => continue,
                Policy::Retain => cluster.clone(),
            };
            let data: BTreeMap<String, Vec<u8>> =
                secret.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
            if data.is_empty() {
                continue;
            }
            let name = secret.name_any();
            let key = (owner, name.clone());
            let Some(seen) = self.seen.get_mut(&key) else {
                self.seen.insert(key, Seen { data, changes: 0 });
                continue;
            };
            compared += 1;
            if seen.data == data {
                continue;
            }
            seen.changes += 1;
            let changed: Vec<String> = data.keys().filter(|k| seen.data.get(*k) != data.get(*k)).cloned().collect();
            seen.data = data;
            let backend = secret.labels().get(labels::BACKEND).cloned().unwrap_or_default();
            let allowed = match policy {
                Policy::Delete => soak.tallies.disables(&cluster, &backend),
                Policy::Retain => 0,
            };
            if seen.changes > allowed {
                let what = format!(
                    "Secret {name} of live cluster {cluster} (uid {live_uid}, policy {policy:?}) changed keys \
                     {changed:?}: change #{}, {allowed} allowed ({backend} disabled {allowed} times by the schedule)",
                    seen.changes
                );
                soak.violations.found(&soak.journal, Invariant::CredentialsKept, what, vec![format!("secret/{name}")]);
            }
        }
        soak.violations.checked(Invariant::CredentialsKept, compared);
    }
}

/// Volumes of clusters with the Retain policy, by uid: each must stay.
#[derive(Default)]
pub struct Volumes {
    retained: BTreeMap<String, String>,
}

impl Volumes {
    /// Invariant 4.
    pub async fn check(&mut self, soak: &Soak) {
        let Ok(list) = soak.env.api::<PersistentVolumeClaim>().list_metadata(&ListParams::default()).await else {
            return;
        };
        let known = self.retained.len() as u64;
        let mut present = BTreeSet::new();
        for pvc in &list.items {
            let uid = pvc.uid().unwrap_or_default();
            let cluster = pvc.labels().get(labels::INSTANCE).cloned().unwrap_or_default();
            if policy_of(&cluster) != Policy::Retain {
                continue;
            }
            self.retained.insert(uid.clone(), pvc.name_any());
            if pvc.metadata.deletion_timestamp.is_none() {
                present.insert(uid);
            }
        }
        for (uid, name) in &self.retained {
            if !present.contains(uid) {
                let what =
                    format!("PersistentVolumeClaim {name} (uid {uid}) of a Retain cluster is being deleted or gone");
                soak.violations.found(&soak.journal, Invariant::VolumesKept, what, vec![format!("pvc/{name}")]);
            }
        }
        soak.violations.checked(Invariant::VolumesKept, known);
    }
}

/// An object with the operator's labels, as the orphan and convergence checks see it.
#[derive(Debug)]
pub struct Child {
    pub uid: String,
    /// `Kind/name`.
    pub name: String,
    /// The cluster it belongs to (its instance label).
    pub cluster: String,
    pub terminating: bool,
    /// Why it is an orphan, if it is one.
    pub orphaned: Option<String>,
}

/// Objects seen orphaned, by uid, with when first seen so.
#[derive(Default)]
pub struct Orphans {
    since: BTreeMap<String, Instant>,
}

impl Orphans {
    /// Invariant 2, with a grace period for garbage collection and finalizers at work: an orphan
    /// that is not terminating and lasts longer than the grace is a violation. (After quiet,
    /// none may be left at all.)
    pub async fn check(&mut self, soak: &Soak) {
        let Ok(children) = children(&soak.env.client, &soak.env.namespace).await else { return };
        soak.violations.checked(Invariant::NoOrphan, children.len() as u64);
        let now = Instant::now();
        let orphans: Vec<(&Child, &String)> = children.iter().filter_map(|c| Some((c, c.orphaned.as_ref()?))).collect();
        self.since.retain(|uid, _| orphans.iter().any(|(c, _)| &c.uid == uid));
        for (child, why) in orphans.into_iter().filter(|(c, _)| !c.terminating) {
            let since = *self.since.entry(child.uid.clone()).or_insert(now);
            if now.duration_since(since) > ORPHAN_GRACE {
                let what = format!("{why} for more than {ORPHAN_GRACE:?}");
                soak.violations.found(&soak.journal, Invariant::NoOrphan, what, vec![child.name.clone()]);
            }
        }
    }
}

/// What may own the operator's objects: the uids of the live objects of the owning kinds, and
/// the names of the clusters that exist.
#[derive(Debug, Default)]
struct Owners {
    uids: BTreeSet<String>,
    clusters: BTreeSet<String>,
}

/// Every object with the operator's labels (`app.kubernetes.io/name=prism`), each judged: an
/// orphan has no live controller owner and is not retained data (the volumes and credentials of
/// clusters with the Retain policy; volumes a StatefulSet made, unowned, while their cluster is
/// there).
pub async fn children(client: &kube::Client, namespace: &str) -> Result<Vec<Child>, kube::Error> {
    let selector = format!("{}=prism", labels::NAME);
    let mut owners = Owners::default();
    let clusters = metas::<PrismCluster>(client, namespace, None).await?;
    owners.clusters.extend(clusters.iter().map(|c| c.name_any()));
    owners.uids.extend(uids(&clusters));
    owners.uids.extend(uids(&metas::<PrismNamespace>(client, namespace, None).await?));
    owners.uids.extend(uids(&metas::<PrismPattern>(client, namespace, None).await?));
    owners.uids.extend(uids(&metas::<StatefulSet>(client, namespace, None).await?));
    owners.uids.extend(uids(&metas::<Deployment>(client, namespace, None).await?));
    let mut found = Vec::new();
    let s = Some(selector.as_str());
    judge_owners(&metas::<Secret>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<ConfigMap>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<Service>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<StatefulSet>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<Deployment>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<PodDisruptionBudget>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<HorizontalPodAutoscaler>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<Ingress>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<PersistentVolumeClaim>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<PrismPattern>(client, namespace, s).await?, &owners, &mut found);
    judge_owners(&metas::<PrismNamespace>(client, namespace, s).await?, &owners, &mut found);
    Ok(found)
}

async fn metas<K>(
    client: &kube::Client,
    namespace: &str,
    selector: Option<&str>,
) -> Result<Vec<PartialObjectMeta<K>>, kube::Error>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let params = selector.map_or_else(ListParams::default, |s| ListParams::default().labels(s));
    Ok(Api::<K>::namespaced(client.clone(), namespace).list_metadata(&params).await?.items)
}

fn uids<K>(objects: &[PartialObjectMeta<K>]) -> impl Iterator<Item = String> + '_ {
    objects.iter().filter_map(|o| o.metadata.uid.clone())
}

fn judge_owners<K: Resource<DynamicType = ()>>(
    objects: &[PartialObjectMeta<K>],
    owners: &Owners,
    found: &mut Vec<Child>,
) {
    for object in objects {
        found.push(Child {
            uid: object.uid().unwrap_or_default(),
            name: format!("{}/{}", K::kind(&()), object.name_any()),
            cluster: object.labels().get(labels::INSTANCE).cloned().unwrap_or_default(),
            terminating: object.metadata.deletion_timestamp.is_some(),
            orphaned: orphaned(object, owners),
        });
    }
}

/// Why `object` is an orphan, if it is one: its controller owner is not among the live `owners`
/// (uids), or it has none and is not retained data.
fn orphaned<K: Resource<DynamicType = ()>>(object: &PartialObjectMeta<K>, owners: &Owners) -> Option<String> {
    let kind = K::kind(&());
    let name = object.name_any();
    match object.owner_references().iter().find(|o| o.controller == Some(true)) {
        Some(owner) if owners.uids.contains(&owner.uid) => None,
        Some(owner) => {
            Some(format!("{kind}/{name}: its owner {}/{} (uid {}) is gone", owner.kind, owner.name, owner.uid))
        }
        None if retained_data(&kind, object, &owners.clusters) => None,
        None => Some(format!("{kind}/{name}: no controller owner")),
    }
}

/// Data that may stand without a controller owner: the volumes and credentials of a cluster
/// with the Retain policy (they outlive it by design), and volumes whose cluster exists (a
/// StatefulSet's volume claims are not owned). With the Delete policy, what is left of a cluster
/// that is gone is an orphan.
fn retained_data<K>(kind: &str, object: &PartialObjectMeta<K>, clusters: &BTreeSet<String>) -> bool {
    let tags = object.metadata.labels.clone().unwrap_or_default();
    let cluster = tags.get(labels::CLUSTER).or_else(|| tags.get(labels::INSTANCE)).cloned().unwrap_or_default();
    let retained = policy_of(&cluster) == Policy::Retain;
    match kind {
        "PersistentVolumeClaim" => retained || clusters.contains(&cluster),
        "Secret" => tags.contains_key(labels::BACKEND) && retained,
        _ => false,
    }
}

/// Invariant 7 for processes that ended: only the schedule's kills and lost leases (by design)
/// end a process; any other exit is a crash.
pub fn judge_exits(soak: &Soak, ended: &[Ended]) {
    for e in ended {
        soak.violations.checked(Invariant::NoCrash, 1);
        if let End::Crashed(code) = e.end {
            let log = std::fs::read_to_string(&e.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let what = format!(
                "operator {} (started {}) exited by itself with code {code:?}, not after losing its lease; last lines: {}",
                e.identity,
                soak.journal.clock(e.started),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
            soak.violations.found(&soak.journal, Invariant::NoCrash, what, vec![e.log.display().to_string()]);
        }
    }
}

/// Invariant 7 over every log: no process panicked.
pub fn judge_panics(soak: &Soak) {
    for log in soak.fleet.logs() {
        soak.violations.checked(Invariant::NoCrash, 1);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("panicked")) {
            let what = format!("a panic in {}: {line}", log.display());
            soak.violations.found(&soak.journal, Invariant::NoCrash, what, vec![log.display().to_string()]);
        }
    }
}

/// How many processes ended each way, for the table.
pub fn ends(ended: &[Ended]) -> BTreeMap<&'static str, u64> {
    let mut by = BTreeMap::new();
    for e in ended {
        let key = match e.end {
            End::Killed => "killed by the schedule (kill -9)",
            End::Terminated(_) => "SIGTERMed by the schedule",
            End::LostLease => "exited after losing the lease",
            End::Crashed(_) => "crashed",
        };
        *by.entry(key).or_default() += 1;
    }
    by
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use kube::api::TypeMeta;

    use super::*;

    fn term(first_ms: u64, last_ms: u64, origin: Instant) -> Term {
        let at = |ms| origin + Duration::from_millis(ms);
        Term {
            first: at(first_ms),
            last: at(last_ms),
            writes: 2,
            first_write: String::new(),
            last_write: String::new(),
        }
    }

    #[test]
    fn writers_overlap_only_when_one_writes_within_the_others_period() {
        let origin = Instant::now();
        let (a, b) = (term(0, 1000, origin), term(500, 2000, origin));
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(term(0, 3000, origin).overlaps(&term(1000, 1200, origin)), "one inside the other");
        assert!(!term(0, 1000, origin).overlaps(&term(1001, 2000, origin)), "a hand-over");
        assert!(!term(0, 1000, origin).overlaps(&term(1000, 2000, origin)), "back to back");
    }

    fn meta<K>(name: &str, labels: &[(&str, &str)], owner: Option<&str>) -> PartialObjectMeta<K> {
        PartialObjectMeta {
            types: Some(TypeMeta::default()),
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        uid: uid.into(),
                        kind: "PrismCluster".into(),
                        name: "alpha".into(),
                        controller: Some(true),
                        ..OwnerReference::default()
                    }]
                }),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    #[test]
    fn an_orphan_has_no_live_controller_owner_unless_it_is_retained_data() {
        let live = Owners { uids: BTreeSet::from(["uid-1".to_string()]), clusters: BTreeSet::from(["gamma".into()]) };
        assert_eq!(orphaned(&meta::<ConfigMap>("alpha-proxy-config", &[], Some("uid-1")), &live), None);
        let gone = orphaned(&meta::<ConfigMap>("alpha-proxy-config", &[], Some("uid-0")), &live);
        assert!(gone.is_some_and(|w| w.contains("uid-0") && w.contains("is gone")));
        assert!(orphaned(&meta::<Service>("stray", &[], None), &live).is_some(), "no owner at all");
        let volume = |cluster| [(labels::INSTANCE, cluster)];
        let alpha_volume = meta::<PersistentVolumeClaim>("data-alpha-redis-0", &volume("alpha"), None);
        assert_eq!(orphaned(&alpha_volume, &live), None, "alpha (gone) retains its volumes");
        let gamma_volume = meta::<PersistentVolumeClaim>("data-gamma-keyvalue-0", &volume("gamma"), None);
        assert_eq!(orphaned(&gamma_volume, &live), None, "a StatefulSet's volume while gamma is there");
        let no_gamma = Owners { clusters: BTreeSet::new(), ..live };
        assert!(orphaned(&gamma_volume, &no_gamma).is_some(), "gamma's policy is Delete: its volumes go with it");
        let live = no_gamma;
        let credentials = |cluster| [(labels::CLUSTER, cluster), (labels::BACKEND, "redis")];
        let retained = meta::<Secret>("alpha-redis-credentials", &credentials("alpha"), None);
        assert_eq!(orphaned(&retained, &live), None, "alpha retains its data");
        let deleted = meta::<Secret>("gamma-redis-credentials", &credentials("gamma"), None);
        assert!(orphaned(&deleted, &live).is_some(), "gamma's policy is Delete: its credentials go with it");
    }

    #[test]
    fn requests_are_told_apart_by_their_user_agent() {
        let record = |agent: &str| RequestRecord {
            seq: 1,
            method: "GET".into(),
            uri: "/".into(),
            info: kube_emulator::request_info::RequestInfo { user_agent: agent.into(), ..Default::default() },
            code: 200,
            fault: None,
            user: "admin".into(),
            at: Instant::now(),
            received: Instant::now(),
        };
        assert_eq!(identity_of(&record("soak-operator-b/e2e")), Some("b"));
        assert_eq!(identity_of(&record("kubectl/v1.32.0 (linux/amd64)")), None);
    }
}
