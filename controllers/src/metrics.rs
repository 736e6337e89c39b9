//! Prometheus metrics of the controllers (implementation in progress by the runtime work).

/// The operator's metrics registry and families.
#[derive(Debug, Default)]
pub struct Metrics {}
