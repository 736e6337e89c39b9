//! What `kubectl prism` (and the sandbox) shows of a Prism deployment: the objects of the three
//! kinds and their children as one tree, a cluster's status in plain words, and the chain from a
//! object that is not Ready to the first cause.
//!
//! [`fetch`] is the only part that talks to the API; everything else is pure functions over the
//! fetched [`fetch::Snapshot`], tested without a cluster.

pub mod advice;
pub mod fetch;
pub mod node;
pub mod status;
pub mod text;
pub mod tree;
pub mod why;
