//! End-to-end scenarios: the operator binary as it will run, kubectl as users run it, against the
//! API emulator (or a real cluster: set PRISM_E2E_KUBECONFIG; scenarios that need the emulator's
//! fault injection or simulated readiness say so and are skipped there).

#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/sample.rs"]
mod sample;
