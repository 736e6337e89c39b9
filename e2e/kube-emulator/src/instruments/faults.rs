//! Fault injection: rules that make matching requests fail, slow down, lose their connection or
//! see their watch end; compaction of the event history; the whole server down for a while.
//!
//! Rules are evaluated by the instruments middleware (see `instruments`) before a request
//! reaches the API, in the order they were added. Latency, compaction and touches combine with
//! the first rule that answers the request (error, reset, server down) or alters its watch.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::errors::{ApiError, Subject};
use crate::request_info::RequestInfo;

/// What a matching request suffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultAction {
    /// Answer with a canned Status error: 409 Conflict, 429 TooManyRequests (with
    /// Retry-After), 500 InternalError, 503 ServiceUnavailable, 504 Timeout (others: generic).
    #[serde(rename_all = "camelCase")]
    Error {
        code: u16,
        #[serde(default)]
        message: Option<String>,
        /// For 429 (default 1) and 503; sets `details.retryAfterSeconds` and `Retry-After`.
        #[serde(default)]
        retry_after_seconds: Option<u64>,
    },
    /// Delay the request, then serve it.
    Latency { ms: u64 },
    /// Abort the connection without an answer.
    Reset,
    /// End a watch stream (clean EOF) after this many events (bookmarks not counted).
    #[serde(rename_all = "camelCase")]
    WatchEnd { after_events: usize },
    /// Send an in-stream ERROR 410 "too old resource version" after this many events, then end.
    #[serde(rename_all = "camelCase")]
    WatchExpired { after_events: usize },
    /// Stop delivering anything (events and bookmarks) after this many events; keep the stream open.
    #[serde(rename_all = "camelCase")]
    WatchStall { after_events: usize },
    /// Forget the event history before serving the request, so that resumes from older
    /// resourceVersions get 410.
    Compact,
    /// Modify the addressed object (an annotation) just before serving the request, so that an
    /// update carrying the resourceVersion the client read fails with a real 409.
    Touch,
    /// Take the whole server down for `ms`, starting with this request.
    ServerDown { ms: u64, mode: DownMode },
}

impl FaultAction {
    /// Whether the action answers or alters the request by itself (only one such rule applies).
    pub fn is_watch_fault(&self) -> bool {
        matches!(self, Self::WatchEnd { .. } | Self::WatchExpired { .. } | Self::WatchStall { .. })
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Latency { .. } | Self::Compact | Self::Touch)
    }
}

/// How a downed server treats requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum DownMode {
    /// 503 ServiceUnavailable Status answers.
    #[default]
    Unavailable,
    /// Connections are dropped without an answer.
    Drop,
}

/// Which requests a rule applies to (unset fields match anything), and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; empty: all.
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// The resource (plural), e.g. `configmaps`.
    #[serde(default)]
    pub resource: Option<String>,
    /// `status`, `scale`, ...; `""` matches only requests without a subresource.
    #[serde(default)]
    pub subresource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub field_manager: Option<String>,
    /// Matches user agents starting with this.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Let this many matching requests through first (the nth call: `after = n - 1`, `times = 1`).
    #[serde(default)]
    pub after: u64,
    /// Fire at most this many times (unset: always).
    #[serde(default)]
    pub times: Option<u64>,
    /// Fire with this probability (0..=1; unset: always).
    #[serde(default)]
    pub probability: Option<f64>,
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule that applies `action` to every request; narrow it with the builder methods.
    pub fn new(action: FaultAction) -> Self {
        Self {
            verbs: Vec::new(),
            group: None,
            resource: None,
            subresource: None,
            namespace: None,
            name: None,
            field_manager: None,
            user_agent: None,
            after: 0,
            times: None,
            probability: None,
            action,
        }
    }

    /// A canned Status error with the real reason and message for `code`.
    pub fn error(code: u16) -> Self {
        Self::new(FaultAction::Error { code, message: None, retry_after_seconds: None })
    }

    /// 429 TooManyRequests with `Retry-After: secs`.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self::new(FaultAction::Error { code: 429, message: None, retry_after_seconds: Some(retry_after_seconds) })
    }

    pub fn verb(mut self, verb: &str) -> Self {
        self.verbs.push(verb.to_string());
        self
    }

    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }

    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(subresource.to_string());
        self
    }

    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub fn field_manager(mut self, manager: &str) -> Self {
        self.field_manager = Some(manager.to_string());
        self
    }

    pub fn user_agent(mut self, prefix: &str) -> Self {
        self.user_agent = Some(prefix.to_string());
        self
    }

    pub fn after(mut self, n: u64) -> Self {
        self.after = n;
        self
    }

    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    fn matches(&self, r: &RequestInfo) -> bool {
        let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        r.is_resource
            && (self.verbs.is_empty() || self.verbs.contains(&r.verb))
            && eq(&self.group, &r.group)
            && eq(&self.resource, &r.resource)
            && eq(&self.subresource, &r.subresource)
            && eq(&self.namespace, &r.namespace)
            && eq(&self.name, &r.name)
            && eq(&self.field_manager, r.field_manager.as_deref().unwrap_or(""))
            && self.user_agent.as_deref().is_none_or(|ua| r.user_agent.starts_with(ua))
            && (r.verb == "watch" || !self.action.is_watch_fault())
    }
}

/// Identifies an added rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultId(pub u64);

/// A rule with its counters, as listed by `GET /emulator/faults`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleState {
    pub id: FaultId,
    pub rule: FaultRule,
    /// Matching requests seen.
    pub matched: u64,
    /// Times the action was applied.
    pub fired: u64,
}

/// How a watch response is altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFault {
    End(usize),
    Expired(usize),
    Stall(usize),
}

/// What the middleware does with one request.
#[derive(Debug, Default)]
pub struct Decision {
    pub latency: Duration,
    pub compact: bool,
    pub touch: bool,
    /// Answer at once instead of serving.
    pub answer: Option<Answer>,
    pub watch: Option<WatchFault>,
    /// Rule ids that fired, for the request log.
    pub fired: Vec<FaultId>,
}

/// A terminal answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Status(ApiError),
    Reset,
}

/// The fault rules and the server-down state of one cluster.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<RuleState>>,
    next_id: AtomicU64,
    down: Mutex<Option<(Instant, DownMode)>>,
    /// Bumped when the server goes down, so that open watch streams end.
    down_epoch: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rules: Mutex::default(),
            next_id: AtomicU64::new(1),
            down: Mutex::default(),
            down_epoch: watch::channel(0).0,
        }
    }
}

impl Faults {
    /// Adds a rule (evaluated after the ones added before).
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let id = FaultId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.lock_rules().push(RuleState { id, rule, matched: 0, fired: 0 });
        id
    }

    pub fn remove(&self, id: FaultId) -> bool {
        let mut rules = self.lock_rules();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// Removes every rule and brings the server back up.
    pub fn clear(&self) {
        self.lock_rules().clear();
        self.server_up();
    }

    /// Rules with their counters.
    pub fn rules(&self) -> Vec<RuleState> {
        self.lock_rules().clone()
    }

    /// How often a rule fired (0 when it is gone).
    pub fn fired(&self, id: FaultId) -> u64 {
        self.lock_rules().iter().find(|r| r.id == id).map_or(0, |r| r.fired)
    }

    /// Refuses (or drops) every API request for `duration`; open watches end.
    pub fn server_down(&self, duration: Duration, mode: DownMode) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now() + duration, mode));
        self.down_epoch.send_modify(|e| *e += 1);
    }

    pub fn server_up(&self) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether the server is down now, and how.
    pub fn down_mode(&self) -> Option<DownMode> {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match *down {
            Some((until, mode)) if Instant::now() < until => Some(mode),
            Some(_) => {
                *down = None;
                None
            }
            None => None,
        }
    }

    /// Changes when the server goes down (watch streams subscribe to end themselves).
    pub fn down_signal(&self) -> watch::Receiver<u64> {
        self.down_epoch.subscribe()
    }

    /// Applies the rules to one request.
    pub fn decide(&self, r: &RequestInfo) -> Decision {
        let mut d = Decision::default();
        let mut went_down = None;
        {
            let mut rules = self.lock_rules();
            for state in rules.iter_mut().filter(|s| s.rule.matches(r)) {
                // A rule shadowed by an earlier answer keeps its turn for a later request.
                let answered = d.answer.is_some() || d.watch.is_some() || went_down.is_some();
                if (answered && state.rule.action.is_terminal()) || !fires(state) {
                    continue;
                }
                d.fired.push(state.id);
                apply(&state.rule.action, r, &mut d, &mut went_down);
            }
        }
        if let Some((ms, mode)) = went_down {
            self.server_down(Duration::from_millis(ms), mode);
        }
        if d.answer.is_none()
            && let Some(mode) = self.down_mode()
        {
            d.answer = Some(down_answer(mode));
        }
        d
    }

    fn lock_rules(&self) -> std::sync::MutexGuard<'_, Vec<RuleState>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets the event history now: watches and continue tokens from older resourceVersions get
/// 410 Expired. Returns the resourceVersion compacted up to.
pub fn compact(cluster: &crate::ops::Cluster) -> u64 {
    let mut st = cluster.store.lock();
    st.compact();
    st.compacted
}

/// Counts a match and says whether the rule fires for it.
fn fires(state: &mut RuleState) -> bool {
    state.matched += 1;
    let rule = &state.rule;
    if state.matched <= rule.after || rule.times.is_some_and(|t| state.fired >= t) {
        return false;
    }
    if rule.probability.is_some_and(|p| rand::random::<f64>() >= p) {
        return false;
    }
    state.fired += 1;
    true
}

fn apply(action: &FaultAction, r: &RequestInfo, d: &mut Decision, went_down: &mut Option<(u64, DownMode)>) {
    let terminal_free = d.answer.is_none() && d.watch.is_none();
    match action {
        FaultAction::Latency { ms } => d.latency += Duration::from_millis(*ms),
        FaultAction::Compact => d.compact = true,
        FaultAction::Touch => d.touch = true,
        FaultAction::Error { code, message, retry_after_seconds } if terminal_free => {
            d.answer = Some(Answer::Status(status_error(*code, message.as_deref(), *retry_after_seconds, r)));
        }
        FaultAction::Reset if terminal_free => d.answer = Some(Answer::Reset),
        FaultAction::ServerDown { ms, mode } if terminal_free => *went_down = Some((*ms, *mode)),
        FaultAction::WatchEnd { after_events } if terminal_free && r.verb == "watch" => {
            d.watch = Some(WatchFault::End(*after_events));
        }
        FaultAction::WatchExpired { after_events } if terminal_free && r.verb == "watch" => {
            d.watch = Some(WatchFault::Expired(*after_events));
        }
        FaultAction::WatchStall { after_events } if terminal_free && r.verb == "watch" => {
            d.watch = Some(WatchFault::Stall(*after_events));
        }
        _ => {}
    }
}

fn down_answer(mode: DownMode) -> Answer {
    match mode {
        DownMode::Unavailable => Answer::Status(unavailable(None, None)),
        DownMode::Drop => Answer::Reset,
    }
}

fn unavailable(message: Option<&str>, retry_after: Option<u64>) -> ApiError {
    let e = ApiError::new(
        503,
        "ServiceUnavailable",
        message.unwrap_or("the server is currently unable to handle the request"),
    );
    match retry_after {
        Some(s) => e.with_details(json!({"retryAfterSeconds": s})),
        None => e,
    }
}

/// The Status the real server sends for `code`, about the requested object.
pub fn status_error(code: u16, message: Option<&str>, retry_after: Option<u64>, r: &RequestInfo) -> ApiError {
    let subject = Subject { group: &r.group, plural: &r.resource, name: &r.name };
    match code {
        409 => match message {
            Some(m) => ApiError::conflict(subject, m),
            None => ApiError::stale(subject),
        },
        429 => ApiError::new(429, "TooManyRequests", message.unwrap_or("Too many requests, please try again later."))
            .with_details(json!({"retryAfterSeconds": retry_after.unwrap_or(1)})),
        500 => {
            let m = message.unwrap_or("injected fault");
            ApiError::new(500, "InternalError", format!("Internal error occurred: {m}"))
                .with_details(json!({"causes": [{"message": m}]}))
        }
        503 => unavailable(message, retry_after),
        504 => ApiError::new(
            504,
            "Timeout",
            message.unwrap_or("Timeout: request did not complete within requested timeout - context deadline exceeded"),
        ),
        404 => ApiError::not_found(subject),
        _ => ApiError::new(code, reason_for(code), message.unwrap_or("injected fault")),
    }
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        405 => "MethodNotAllowed",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        _ => "InternalError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str, resource: &str) -> RequestInfo {
        RequestInfo { verb: verb.into(), resource: resource.into(), is_resource: true, ..Default::default() }
    }

    #[test]
    fn after_and_times_select_the_nth_call() {
        let f = Faults::default();
        let id = f.add(FaultRule::error(500).verb("get").after(1).times(2));
        let hits: Vec<bool> = (0..5).map(|_| f.decide(&req("get", "pods")).answer.is_some()).collect();
        assert_eq!(hits, [false, true, true, false, false]);
        assert_eq!(f.fired(id), 2);
        assert!(f.decide(&req("list", "pods")).answer.is_none());
    }

    #[test]
    fn canned_errors_carry_real_reasons() {
        let r = RequestInfo { name: "x".into(), ..req("update", "configmaps") };
        let e = status_error(409, None, None, &r);
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(status_error(429, None, Some(2), &r).to_status()["details"]["retryAfterSeconds"], 2);
        assert_eq!(status_error(504, None, None, &r).reason, "Timeout");
        assert_eq!(status_error(503, None, None, &r).reason, "ServiceUnavailable");
    }

    #[test]
    fn server_down_answers_everything_until_it_expires() {
        let f = Faults::default();
        f.server_down(Duration::from_millis(30), DownMode::Unavailable);
        assert!(matches!(f.decide(&req("get", "pods")).answer, Some(Answer::Status(ref e)) if e.code == 503));
        std::thread::sleep(Duration::from_millis(40));
        assert!(f.decide(&req("get", "pods")).answer.is_none());
    }

    #[test]
    fn rules_parse_from_admin_json() {
        let rule: FaultRule = serde_json::from_value(json!({
            "verbs": ["watch"], "resource": "configmaps", "times": 1,
            "action": {"type": "watchExpired", "afterEvents": 2}
        }))
        .expect("rule");
        assert_eq!(rule.action, FaultAction::WatchExpired { after_events: 2 });
        let down: FaultAction =
            serde_json::from_value(json!({"type": "serverDown", "ms": 5, "mode": "drop"})).expect("down");
        assert_eq!(down, FaultAction::ServerDown { ms: 5, mode: DownMode::Drop });
    }
}
