//! Short, stable content hashes for annotations.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The first 16 hex digits of the SHA-256 of the value's JSON form. serde_json writes maps with
/// sorted keys, so equal values hash equally.
pub fn of<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
