//! A loopback emulator of the Kubernetes API server.
//!
//! kube-rs clients and kubectl run against it unchanged, so that the operator can be tested as it
//! will run without a real kube-apiserver (none can be installed on the project's machines).

pub mod patch;
pub mod schema;
pub mod ssa;
