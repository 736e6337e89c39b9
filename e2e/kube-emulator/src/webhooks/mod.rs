//! Webhooks the API server calls: admission (Validating and Mutating webhook configurations)
//! and CRD conversion. `admission` and `conversion` decide (pure), `client` calls over HTTPS.

pub mod admission;
pub mod client;
pub mod conversion;

pub use client::{CallError, Services, call};
