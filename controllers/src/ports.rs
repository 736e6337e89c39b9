//! The default ports of a pattern runner (the pattern launcher's), in one place: the runner's
//! builder opens them and the proxy's routes address them. Each is overridable in the spec.
//! And the proxy's client port, which the proxy's builder opens and app teams' connection
//! details name.

/// The runner's gRPC port.
pub const RUNNER_GRPC: i32 = 8982;
/// The runner's Prometheus metrics port.
pub const RUNNER_METRICS: i32 = 9092;
/// The runner's health port: /health (liveness) and /ready (readiness).
pub const RUNNER_HEALTH: i32 = 9093;
/// The proxy's gRPC port, where clients connect.
pub const PROXY_GRPC: i32 = 8980;
