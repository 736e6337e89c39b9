//! What a soak records as it goes: the outcome of every step (the journal), the violations (each
//! printed at once with the seed and the schedule up to it, to replay), and the counts the table
//! at the end shows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::schedule::Step;

/// The invariants of issue 17, plus one for the edits themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    Converged,
    NoOrphan,
    CredentialsKept,
    VolumesKept,
    OneWriter,
    BoundedRate,
    NoCrash,
    NoLeak,
    /// Valid edits are accepted and invalid ones refused.
    EditsJudged,
}

impl Invariant {
    pub const ALL: [Invariant; 9] = [
        Invariant::Converged,
        Invariant::NoOrphan,
        Invariant::CredentialsKept,
        Invariant::VolumesKept,
        Invariant::OneWriter,
        Invariant::BoundedRate,
        Invariant::NoCrash,
        Invariant::NoLeak,
        Invariant::EditsJudged,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Invariant::Converged => "1 converged after quiet (generation observed, implied phase)",
            Invariant::NoOrphan => "2 no orphan (a live controller owner, or retained data)",
            Invariant::CredentialsKept => "3 credentials of a live cluster never change (Retain: its name's)",
            Invariant::VolumesKept => "4 no volume deleted under Retain",
            Invariant::OneWriter => "5 never two processes writing in one period",
            Invariant::BoundedRate => "6 request rate bounded every second; idle after quiet",
            Invariant::NoCrash => "7 no panic, no crash but the schedule's kills",
            Invariant::NoLeak => "8 memory at the end <= 1.2 x after first convergence",
            Invariant::EditsJudged => "R valid edits accepted, invalid ones refused",
        }
    }

    /// What one case of the invariant is: a check that examined no case proved nothing, and an
    /// invariant without a single case in a whole soak was asserted vacuously (a violation).
    pub fn case(self) -> &'static str {
        match self {
            Invariant::Converged => "Prism objects judged at a convergence",
            Invariant::NoOrphan => "labelled objects judged for an owner",
            Invariant::CredentialsKept => "credentials Secrets of live clusters compared with an earlier read",
            Invariant::VolumesKept => "volumes of Retain clusters looked for again",
            Invariant::OneWriter => "pairs of processes that wrote, compared",
            Invariant::BoundedRate => "process-seconds of requests counted, and idle windows",
            Invariant::NoCrash => "process exits judged and logs read",
            Invariant::NoLeak => "memory measurements compared",
            Invariant::EditsJudged => "edits judged",
        }
    }
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    /// The API refused it (what it said).
    Refused(String),
    /// Its object did not exist.
    Absent,
    /// It did not apply to the world as it was (e.g. the cluster of a child was gone).
    Skipped(String),
    /// Transient failures until its patience ran out.
    GaveUp(String),
}

impl Outcome {
    fn column(&self) -> usize {
        match self {
            Outcome::Done(_) => 0,
            Outcome::Refused(_) => 1,
            Outcome::Absent => 2,
            Outcome::Skipped(_) => 3,
            Outcome::GaveUp(_) => 4,
        }
    }

    fn brief(&self) -> String {
        let text = match self {
            Outcome::Done(s) => format!("done {s}"),
            Outcome::Refused(s) => format!("refused: {s}"),
            Outcome::Absent => "absent".into(),
            Outcome::Skipped(s) => format!("skipped: {s}"),
            Outcome::GaveUp(s) => format!("gave up: {s}"),
        };
        let line = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ");
        line.chars().take(160).collect()
    }
}

/// What was done, or why nothing was.
impl From<Result<String, String>> for Outcome {
    fn from(result: Result<String, String>) -> Outcome {
        result.map_or_else(Outcome::Skipped, Outcome::Done)
    }
}

/// The schedule with what became of each step.
pub struct Journal {
    pub seed: u64,
    pub length: Duration,
    pub steps: Vec<Step>,
    /// When the schedule's clock started (set once the world first converged).
    start: Mutex<Option<Instant>>,
    outcomes: Mutex<BTreeMap<usize, (Duration, Option<Outcome>)>>,
}

impl Journal {
    pub fn new(seed: u64, length: Duration, steps: Vec<Step>) -> Journal {
        Journal { seed, length, steps, start: Mutex::default(), outcomes: Mutex::default() }
    }

    pub fn start_clock(&self) -> Instant {
        *self.start.lock().expect("journal").get_or_insert_with(Instant::now)
    }

    /// Time on the schedule's clock (0 before it starts).
    pub fn now(&self) -> Duration {
        self.start.lock().expect("journal").map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// `at` on the schedule's clock, for messages (`-` before it started).
    pub fn clock(&self, at: Instant) -> String {
        match *self.start.lock().expect("journal") {
            Some(start) if at >= start => format!("+{:.1}s", (at - start).as_secs_f64()),
            Some(start) => format!("-{:.1}s", (start - at).as_secs_f64()),
            None => "setup".into(),
        }
    }

    pub fn started(&self, index: usize) {
        self.outcomes.lock().expect("journal").insert(index, (self.now(), None));
    }

    pub fn finished(&self, index: usize, outcome: Outcome) {
        let now = self.now();
        self.outcomes.lock().expect("journal").entry(index).or_insert((now, None)).1 = Some(outcome);
    }

    /// The replay command.
    pub fn replay(&self) -> String {
        format!(
            "PRISM_SOAK_SEED={} PRISM_SOAK_SECONDS={} cargo test --release --test soak -- --nocapture",
            self.seed,
            self.length.as_secs()
        )
    }

    /// The schedule up to `until` on the clock, with outcomes where known.
    pub fn up_to(&self, until: Duration) -> String {
        let outcomes = self.outcomes.lock().expect("journal");
        let mut lines = Vec::new();
        for step in self.steps.iter().filter(|s| s.at <= until) {
            let outcome = match outcomes.get(&step.index) {
                Some((_, Some(outcome))) => outcome.brief(),
                Some((started, None)) => format!("in progress since +{:.1}s", started.as_secs_f64()),
                None => "not started".into(),
            };
            lines.push(format!("  #{:<4} +{:>6.1}s  {}  -> {outcome}", step.index, step.at.as_secs_f64(), step.op));
        }
        lines.join("\n")
    }

    /// Per kind of operation: how many ended in each outcome.
    pub fn tally(&self) -> BTreeMap<String, [u64; 6]> {
        let outcomes = self.outcomes.lock().expect("journal");
        let mut rows: BTreeMap<String, [u64; 6]> = BTreeMap::new();
        for step in &self.steps {
            let row = rows.entry(step.op.kind()).or_default();
            row[0] += 1;
            if let Some((_, Some(outcome))) = outcomes.get(&step.index) {
                row[1 + outcome.column()] += 1;
            }
        }
        rows
    }
}

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: Invariant,
    pub at: Duration,
    pub what: String,
    pub objects: Vec<String>,
}

/// The violations so far, and how many checks ran per invariant.
#[derive(Default)]
pub struct Violations {
    found: Mutex<Vec<Violation>>,
    /// Invariant and message of each violation printed, so that a lasting one prints once.
    printed: Mutex<BTreeSet<(Invariant, String)>>,
    /// Per invariant: checks run, and cases they examined.
    checks: Mutex<BTreeMap<Invariant, Checked>>,
}

/// How often an invariant was checked, and how many cases the checks examined.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checked {
    pub checks: u64,
    pub cases: u64,
}

impl Violations {
    /// Notes one check of `invariant` that examined `cases` cases (see [`Invariant::case`]).
    pub fn checked(&self, invariant: Invariant, cases: u64) {
        let mut checks = self.checks.lock().expect("checks");
        let checked = checks.entry(invariant).or_default();
        checked.checks += 1;
        checked.cases += cases;
    }

    /// Records a violation for each invariant no check examined a case of: asserted vacuously.
    pub fn judge_vacuous(&self, journal: &Journal) {
        for invariant in Invariant::ALL {
            if self.checks().get(&invariant).is_none_or(|c| c.cases == 0) {
                let what = format!("never exercised: no {} in the whole soak", invariant.case());
                self.found(journal, invariant, what, Vec::new());
            }
        }
    }

    /// Records a violation and prints it with what it takes to replay it (once per message).
    pub fn found(&self, journal: &Journal, invariant: Invariant, what: String, objects: Vec<String>) {
        if !self.printed.lock().expect("printed").insert((invariant, what.clone())) {
            return;
        }
        let at = journal.now();
        println!(
            "\n!!! VIOLATION of invariant {} at +{:.1}s: {what}\n  objects: {}\n  seed {}; replay: {}\n  schedule up to it:\n{}\n",
            invariant.label(),
            at.as_secs_f64(),
            if objects.is_empty() { "-".into() } else { objects.join(", ") },
            journal.seed,
            journal.replay(),
            journal.up_to(at)
        );
        self.found.lock().expect("violations").push(Violation { invariant, at, what, objects });
    }

    pub fn all(&self) -> Vec<Violation> {
        self.found.lock().expect("violations").clone()
    }

    pub fn checks(&self) -> BTreeMap<Invariant, Checked> {
        self.checks.lock().expect("checks").clone()
    }
}

/// Per fault: bursts, seconds in all, and how often the emulator applied it.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultTally {
    pub bursts: u64,
    pub seconds: f64,
    pub fired: u64,
}

/// Counts the steps leave behind, beside their outcomes.
#[derive(Default)]
pub struct Tallies {
    faults: Mutex<BTreeMap<&'static str, FaultTally>>,
    /// (cluster, backend) -> how often the schedule disabled that backend: with the Delete policy
    /// each may regenerate its credentials once.
    disabled: Mutex<BTreeMap<(String, String), u32>>,
}

impl Tallies {
    pub fn fault(&self, name: &'static str, lasted: Duration, fired: u64) {
        let mut faults = self.faults.lock().expect("faults");
        let tally = faults.entry(name).or_default();
        tally.bursts += 1;
        tally.seconds += lasted.as_secs_f64();
        tally.fired += fired;
    }

    pub fn faults(&self) -> BTreeMap<&'static str, FaultTally> {
        self.faults.lock().expect("faults").clone()
    }

    pub fn disabled(&self, cluster: &str, backend: &str) {
        *self.disabled.lock().expect("disabled").entry((cluster.into(), backend.into())).or_default() += 1;
    }

    pub fn disables(&self, cluster: &str, backend: &str) -> u32 {
        self.disabled.lock().expect("disabled").get(&(cluster.to_string(), backend.to_string())).copied().unwrap_or(0)
    }
}
