//! End-to-end scenarios: the operator binary as it will run, kubectl as users run it, against the
//! API emulator (or a real cluster: set PRISM_E2E_KUBECONFIG; scenarios that need the emulator's
//! fault injection or simulated readiness say so and are skipped there).

#[path = "e2e/api_faults.rs"]
mod api_faults;
#[path = "e2e/app_teams.rs"]
mod app_teams;
#[path = "e2e/bad_input.rs"]
mod bad_input;
#[path = "e2e/clusters.rs"]
mod clusters;
#[path = "e2e/crash_consistency.rs"]
mod crash_consistency;
#[path = "e2e/deletion.rs"]
mod deletion;
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/leader_election.rs"]
mod leader_election;
#[path = "e2e/observability.rs"]
mod observability;
#[path = "support/operator_log.rs"]
mod operator_log;
#[path = "e2e/ordering.rs"]
mod ordering;
#[path = "e2e/pause.rs"]
mod pause;
#[path = "e2e/plugin.rs"]
mod plugin;
#[path = "e2e/runtime_changes.rs"]
mod runtime_changes;
#[path = "e2e/sample.rs"]
mod sample;
#[path = "e2e/self_healing.rs"]
mod self_healing;
#[path = "e2e/tenancy.rs"]
mod tenancy;
#[path = "e2e/versions.rs"]
mod versions;
