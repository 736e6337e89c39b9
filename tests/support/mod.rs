//! Helpers shared by the chart tests (tests/chart.rs, tests/rbac.rs).
#![allow(dead_code)]

pub mod rbac;
