//! The controllers of the Prism operator, one module per kind, and the pure builders they share.
//!
//! Each reconcile is the same pipeline: read -> validate -> build (pure) -> apply -> prune ->
//! status. The modules are filled in by the runtime and controller work that follows the API.

pub mod cluster;
pub mod namespace;
pub mod pattern;
