//! A loopback emulator of the Kubernetes API server.
//!
//! kube-rs clients and kubectl run against it unchanged, so that the operator can be tested as it
//! will run without a real kube-apiserver (none can be installed on the project's machines).
//!
//! The layers, from the bottom up; a module uses only the layers below it (and its own):
//!
//! 1. Vocabulary: `errors` (Status errors), `meta`, `selectors`, `request_info` (a request in
//!    RBAC terms).
//! 2. Engines and storage: `store`, `registry`, `schema`, `ssa`, `patch`, and beside them the
//!    pieces of the write pipeline (`adapters`, `crd`, `defaults`, `validation`, `events`).
//! 3. [`Cluster`] (`ops`): the API's semantics, i.e. reads, the write pipeline and deletion.
//! 4. The API over HTTP: `watch`, `table`, `discovery`, `openapi`, `protobuf`; `webhooks`
//!    (admission and conversion) and `requests` (the cluster's operations with conversion and
//!    admission around them); [`http::router`].
//! 5. Test instruments (`instruments`: faults, accounting, the simulation switch) as middleware
//!    and admin endpoints over that router; the control plane (`controllers`: garbage
//!    collection, workload simulation) as tasks writing through the cluster.
//! 6. [`Emulator`]: cluster + instruments + control plane, started explicitly, served
//!    in-process ([`Emulator::router`]) or on a port ([`Server`]).
//!
//! In-process: `let emulator = Emulator::start();` then
//! `kube::Client::new(emulator.router(), "default")`; over TCP:
//! `Emulator::start().serve("127.0.0.1:0").await?`.

pub mod adapters;
pub mod auth;
pub mod controllers;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod emulator;
pub mod errors;
pub mod events;
pub mod http;
pub mod instruments;
pub mod meta;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod pod_rules;
mod pods;
pub mod protobuf;
pub mod registry;
pub mod request_info;
pub mod requests;
pub mod schema;
pub mod selectors;
pub mod ssa;
pub mod store;
pub mod table;
pub mod tls;
pub mod transport;
pub mod validation;
pub mod watch;
pub mod webhooks;

pub use emulator::{Emulator, Server};
pub use errors::ApiError;
pub use ops::{Cluster, Target, WriteOptions};
