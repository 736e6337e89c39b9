//! prism-operator, the binary's crate: the command line and the runtime every controller shares
//! (client, leader election, HTTP endpoints, the webhook, storage migration, logs, shutdown), and the kubectl plugin
//! (`plugin`, over the views of `inspect`). A library so that tests reach it.

pub mod args;
pub mod cli;
pub mod client;
pub mod health;
pub mod http;
pub mod inspect;
pub mod leader;
pub mod migration;
pub mod plugin;
pub mod rate_limit;
pub mod request_metrics;
pub mod runtime;
pub mod shutdown;
pub mod telemetry;
pub mod webhook;
