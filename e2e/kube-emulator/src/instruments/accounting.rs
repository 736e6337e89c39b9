//! Request accounting: every API request counted by verb, group, resource, subresource,
//! namespace, field manager and user agent, plus a bounded log in arrival order.
//!
//! The operator's API cost is measured through this, and the Helm chart's RBAC is proven from the
//! (verb, group, resource, subresource, namespace) tuples it records.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::request_info::RequestInfo;

/// How many requests the log keeps (counts are never dropped).
const LOG_LIMIT: usize = 50_000;

/// The dimensions requests are counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestKey {
    pub verb: String,
    /// False for discovery, /version, /openapi, /healthz (counted under their path).
    pub is_resource: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub field_manager: String,
    pub user_agent: String,
}

impl RequestKey {
    fn of(info: &RequestInfo) -> Self {
        Self {
            verb: info.verb.clone(),
            is_resource: info.is_resource,
            group: info.group.clone(),
            // Non-resource requests are counted under their path (RBAC nonResourceURLs).
            resource: if info.is_resource { info.resource.clone() } else { info.path.clone() },
            subresource: info.subresource.clone(),
            namespace: info.namespace.clone(),
            field_manager: info.field_manager.clone().unwrap_or_default(),
            user_agent: info.user_agent.clone(),
        }
    }

    pub fn is_write(&self) -> bool {
        self.is_resource && crate::request_info::WRITE_VERBS.contains(&self.verb.as_str())
    }

    /// Whether `who` is this request's field manager, its user agent, or the user agent's
    /// product name (`who/1.2.3 ...`).
    pub fn is_by(&self, who: &str) -> bool {
        self.field_manager == who
            || self.user_agent == who
            || self.user_agent.strip_prefix(who).is_some_and(|rest| rest.starts_with('/') || rest.starts_with(' '))
    }
}

/// One request as logged.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Arrival order since the last reset.
    pub seq: u64,
    pub method: String,
    /// Path and query.
    pub uri: String,
    #[serde(flatten)]
    pub info: RequestInfo,
    /// The HTTP status answered (0: the connection was dropped).
    pub code: u16,
    /// The fault that answered or altered the request, if any.
    pub fault: Option<String>,
    /// The user who sent it, as authenticated (e.g. `system:serviceaccount:ns:name`).
    pub user: String,
    /// When the answer was ready (a write is committed by then), for tests that ask what
    /// happened in which period: which client wrote, how many requests in a second.
    #[serde(skip)]
    pub at: Instant,
    /// When the request arrived: its sender was alive then, though the answer may come seconds
    /// later (an admission webhook that does not answer) and find the sender gone.
    #[serde(skip)]
    pub received: Instant,
}

/// How a request was answered, and to whom.
#[derive(Debug, Clone, Default)]
pub struct Answered {
    pub code: u16,
    pub fault: Option<String>,
    pub user: String,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    counts: HashMap<RequestKey, u64>,
    log: VecDeque<RequestRecord>,
}

/// The live counters (in `Instruments`); read them with [`Accounting::snapshot`].
#[derive(Debug, Default)]
pub struct Accounting {
    inner: Mutex<Inner>,
}

impl Accounting {
    /// Counts a request and logs it.
    pub fn record(&self, method: &str, uri: &str, info: &RequestInfo, answered: Answered, received: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.seq += 1;
        let seq = inner.seq;
        *inner.counts.entry(RequestKey::of(info)).or_default() += 1;
        if inner.log.len() >= LOG_LIMIT {
            inner.log.pop_front();
        }
        let Answered { code, fault, user } = answered;
        let record = RequestRecord {
            seq,
            method: method.to_string(),
            uri: uri.to_string(),
            info: info.clone(),
            code,
            fault,
            user,
            at: Instant::now(),
            received,
        };
        inner.log.push_back(record);
    }

    /// Forgets all counts and the log.
    pub fn reset(&self) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = Inner::default();
    }

    /// The logged requests after `seq` (all with `0`), oldest first: a test that follows the log
    /// reads each request once, without copying the whole log every time. Requests the bounded
    /// log has already dropped are missing (the first record's `seq` then jumps).
    pub fn log_after(&self, seq: u64) -> Vec<RequestRecord> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let start = inner.log.partition_point(|r| r.seq <= seq);
        inner.log.range(start..).cloned().collect()
    }

    /// A copy of the counts and the log, for assertions.
    pub fn snapshot(&self) -> RequestSnapshot {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts: Vec<(RequestKey, u64)> = inner.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        counts.sort();
        RequestSnapshot { counts, log: inner.log.iter().cloned().collect() }
    }
}

/// Request counts at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct RequestSnapshot {
    /// Count per distinct key, sorted.
    pub counts: Vec<(RequestKey, u64)>,
    /// The most recent requests (up to 50,000), oldest first.
    pub log: Vec<RequestRecord>,
}

/// An RBAC-style permission a request needed: (verb, group, resource[/subresource], namespace).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Permission {
    pub verb: String,
    pub group: String,
    pub resource: String,
    /// "" for cluster-scoped requests and cluster-wide lists/watches.
    pub namespace: String,
}

impl RequestSnapshot {
    /// Requests matching `pred`.
    pub fn count_where(&self, pred: impl Fn(&RequestKey) -> bool) -> u64 {
        self.counts.iter().filter(|(k, _)| pred(k)).map(|(_, n)| n).sum()
    }

    pub fn total(&self) -> u64 {
        self.count_where(|_| true)
    }

    /// Requests with this verb (`get`, `list`, `watch`, `create`, ...).
    pub fn verb(&self, verb: &str) -> u64 {
        self.count_where(|k| k.verb == verb)
    }

    /// Requests with this verb on this resource (plural), any subresource.
    pub fn verb_on(&self, verb: &str, resource: &str) -> u64 {
        self.count_where(|k| k.verb == verb && k.resource == resource)
    }

    /// All writes (create, update, patch, delete, deletecollection).
    pub fn writes(&self) -> u64 {
        self.count_where(RequestKey::is_write)
    }

    /// Writes by a field manager or user agent (see [`RequestKey::is_by`]).
    pub fn writes_by(&self, who: &str) -> u64 {
        self.count_where(|k| k.is_write() && k.is_by(who))
    }

    /// All requests by a field manager or user agent.
    pub fn requests_by(&self, who: &str) -> u64 {
        self.count_where(|k| k.is_by(who))
    }

    /// Counts per verb.
    pub fn by_verb(&self) -> BTreeMap<String, u64> {
        self.group_by(|k| k.verb.clone())
    }

    /// Counts per `resource[/subresource]`.
    pub fn by_resource(&self) -> BTreeMap<String, u64> {
        self.group_by(|k| {
            if k.subresource.is_empty() { k.resource.clone() } else { format!("{}/{}", k.resource, k.subresource) }
        })
    }

    /// Counts per field manager of writes ("" when none was given).
    pub fn by_field_manager(&self) -> BTreeMap<String, u64> {
        self.group_by(|k| k.field_manager.clone())
    }

    pub fn by_user_agent(&self) -> BTreeMap<String, u64> {
        self.group_by(|k| k.user_agent.clone())
    }

    fn group_by(&self, key: impl Fn(&RequestKey) -> String) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (k, n) in &self.counts {
            *out.entry(key(k)).or_default() += n;
        }
        out
    }

    /// The permissions resource requests by `who` needed (all requests when `who` is None):
    /// what a Role/ClusterRole must grant.
    pub fn permissions(&self, who: Option<&str>) -> BTreeSet<Permission> {
        self.counts
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.is_resource && who.is_none_or(|w| k.is_by(w)))
            .map(|k| Permission {
                verb: k.verb.clone(),
                group: k.group.clone(),
                resource: if k.subresource.is_empty() {
                    k.resource.clone()
                } else {
                    format!("{}/{}", k.resource, k.subresource)
                },
                namespace: k.namespace.clone(),
            })
            .collect()
    }
}
