//! The test instruments of an emulator, kept out of the API's semantics: fault rules, request
//! accounting and the workload simulation switch.
//!
//! [`middleware`] layers faults and accounting over the API router (so the in-process client and
//! the loopback server see the same faults and are counted alike), [`admin`] serves them over
//! HTTP under `/emulator/`, and the control plane (`controllers`) reads the simulation switch.
//!
//! From a test (`emulator` is an `Emulator`):
//!
//! ```text
//! // fail the next 2 creates of ConfigMaps with 503; 429 carries Retry-After
//! emulator.instruments.faults.add(FaultRule::error(503).verb("create").resource("configmaps").times(2));
//! emulator.instruments.faults.add(FaultRule::too_many_requests(1).verb("patch").field_manager("prism"));
//! emulator.instruments.faults.add(FaultRule::new(FaultAction::WatchExpired { after_events: 3 }).verb("watch"));
//! emulator.instruments.faults.server_down(Duration::from_secs(2), DownMode::Unavailable);
//! faults::compact(&emulator.cluster);
//! // what the client did
//! let snap = emulator.instruments.requests.snapshot();
//! assert_eq!(snap.writes_by("prism"), 3);
//! let rbac = snap.permissions(Some("prism"));
//! // workloads become ready 200 ms after each new generation
//! emulator.instruments.simulation.enable(Duration::from_millis(200));
//! emulator.settle().await; // GC and simulation caught up
//! ```

pub mod accounting;
pub mod admin;
pub mod faults;
pub mod middleware;
pub mod simulation;

use std::sync::Arc;

use accounting::Accounting;
use faults::Faults;
use simulation::Simulation;

/// The instruments of one emulator, reachable as `emulator.instruments`.
#[derive(Debug, Default)]
pub struct Instruments {
    /// Fault rules and server-down state.
    pub faults: Faults,
    /// Request counts; `emulator.instruments.requests.snapshot()`.
    pub requests: Accounting,
    /// Workload simulation switch and default readiness delay (shared with the control plane).
    pub simulation: Arc<Simulation>,
}
