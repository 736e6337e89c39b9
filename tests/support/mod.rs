//! Helpers shared by the chart tests (tests/chart.rs, tests/rbac.rs); operator_log by others too.
#![allow(dead_code)]

pub mod operator_log;
pub mod rbac;
