//! prism.io/v1beta1: PrismPattern, one pattern runner tuned directly with kubectl.

mod pattern;

pub use pattern::*;
