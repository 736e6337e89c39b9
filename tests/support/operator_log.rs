//! What a test reads from an operator process's log (`--log-format json`: one object per line).
//!
//! An operator started with port 0 for an endpoint logs the address it bound. A port picked
//! free beforehand and passed on can be taken by another process (any outgoing connection's
//! local port) before the operator binds it, and the operator then exits; port 0 cannot race.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The operator binds its endpoints before anything else, so their lines are near the top.
const HEAD: u64 = 64 * 1024;

/// The address the operator logging to `log` listens on for `purpose` ("metrics", "health
/// probes", "the webhook"), once it has logged it.
pub fn listening_addr(log: &Path, purpose: &str) -> Option<SocketAddr> {
    let mut head = Vec::new();
    std::fs::File::open(log).ok()?.take(HEAD).read_to_end(&mut head).ok()?;
    String::from_utf8_lossy(&head)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "listening" && line["purpose"] == purpose)
        .find_map(|line| line["addr"].as_str()?.parse().ok())
}

/// [`listening_addr`] for an emulator Service's route: read until found, then remembered (a
/// process binds once).
pub fn route_to(log: PathBuf, purpose: &'static str) -> impl Fn() -> Option<SocketAddr> + Send + Sync + 'static {
    let found = OnceLock::new();
    move || {
        if let Some(addr) = found.get() {
            return Some(*addr);
        }
        let addr = listening_addr(&log, purpose)?;
        Some(*found.get_or_init(|| addr))
    }
}
