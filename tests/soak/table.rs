//! The table at the end of a soak.

use crate::checks::{self, RATE_BOUND};
use crate::record::Invariant;
use crate::{CONVERGENCE_BOUND, Figures, IDLE_WINDOW, LEAK_FACTOR, Soak};

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn seconds(d: Option<std::time::Duration>) -> String {
    d.map_or("not within the bound".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

pub fn print(soak: &Soak, figures: &Figures) {
    let journal = &soak.journal;
    println!(
        "\n===== soak: seed {}, {} s, {} steps (replay: {}) =====",
        journal.seed,
        journal.length.as_secs(),
        journal.steps.len(),
        journal.replay()
    );
    println!(
        "\n{:<44} {:>9} {:>6} {:>8} {:>7} {:>8} {:>8}",
        "operation", "scheduled", "done", "refused", "absent", "skipped", "gave up"
    );
    for (kind, n) in journal.tally() {
        println!("{kind:<44} {:>9} {:>6} {:>8} {:>7} {:>8} {:>8}", n[0], n[1], n[2], n[3], n[4], n[5]);
    }
    println!("\n{:<44} {:>9} {:>9} {:>9}", "fault (operators' requests)", "bursts", "seconds", "fired");
    for (fault, t) in soak.tallies.faults() {
        println!("{fault:<44} {:>9} {:>9.1} {:>9}", t.bursts, t.seconds, t.fired);
    }
    println!("\n{:<44} {:>9}", "operator processes that ended", "count");
    for (how, n) in checks::ends(&soak.fleet.ended()) {
        println!("{how:<44} {n:>9}");
    }
    let checks = soak.violations.checks();
    let violations = soak.violations.all();
    println!("\n{:<62} {:>7} {:>8} {:>10}  a case is", "invariant", "checks", "cases", "violations");
    for invariant in Invariant::ALL {
        let broken = violations.iter().filter(|v| v.invariant == invariant).count();
        let checked = checks.get(&invariant).copied().unwrap_or_default();
        println!(
            "{:<62} {:>7} {:>8} {:>10}  {}",
            invariant.label(),
            checked.checks,
            checked.cases,
            broken,
            invariant.case()
        );
    }
    println!();
    println!("violations: {}", violations.len());
    println!(
        "time to converge: first {}, after quiet {}, the whole catalog restored {} (bound {} s)",
        seconds(figures.first_convergence),
        seconds(figures.quiet_convergence),
        seconds(figures.restored_convergence),
        CONVERGENCE_BOUND.as_secs()
    );
    match &figures.peak {
        Some((n, who, second)) => {
            println!("peak request rate: {n}/s (operator {who}, second {second} of the run; bound {RATE_BOUND}/s)")
        }
        None => println!("peak request rate: no requests seen"),
    }
    println!(
        "idle after quiet: {} requests in {} s (Lease renewals aside; {} watches resumed before it)",
        figures.idle_requests.len(),
        IDLE_WINDOW.as_secs(),
        figures.resumed_watches
    );
    let first = figures.memory_first.as_ref().map_or("-".into(), |(who, b)| format!("{} ({who})", mib(*b)));
    let end = figures
        .memory_end
        .as_ref()
        .map_or("-".into(), |(who, b, age)| format!("{} ({who}, up {:.0} s)", mib(*b), age.as_secs_f64()));
    let ratio = match (&figures.memory_first, &figures.memory_end) {
        (Some((_, first)), Some((_, end, _))) => format!("{:.2}", *end as f64 / *first as f64),
        _ => "-".into(),
    };
    println!(
        "leader memory (RSS): after first convergence {first}; at the end {end}; ratio {ratio} (bound {LEAK_FACTOR})"
    );
    println!("processes that wrote (leadership terms): {}", figures.writers);
    if std::env::var_os("PRISM_SOAK_JOURNAL").is_some() {
        println!("\nthe schedule and what became of each step:\n{}", journal.up_to(journal.length));
    }
}
