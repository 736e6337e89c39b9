//! A loopback emulator of the Kubernetes API server.
//!
//! kube-rs clients and kubectl run against it unchanged, so that the operator can be tested as it
//! will run without a real kube-apiserver (none can be installed on the project's machines).
//!
//! Entry points: [`Cluster`] (the in-memory API: store, registry, write pipeline; controllers
//! subscribe to `cluster.store.subscribe()` and write through its methods), [`http::router`]
//! (an axum router; a `kube::Client` can be built directly over it for in-process tests) and
//! [`Emulator`] (serves on a loopback port and writes a kubeconfig).

pub mod accounting;
pub mod adapters;
pub mod admin;
pub mod controllers;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod errors;
pub mod events;
pub mod faults;
pub mod http;
pub mod instruments;
pub mod meta;
pub mod ops;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod request_info;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod ssa;
pub mod store;
pub mod table;
pub mod validation;
pub mod watch;

pub use errors::ApiError;
pub use ops::{Cluster, Target, WriteOptions};
pub use server::Emulator;
