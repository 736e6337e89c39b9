//! Custom resources the operator creates for other custom resources: the PrismPattern spec of a
//! cluster's `spec.patterns[]` entry, used for the cluster's shared runners and for a
//! PrismNamespace's dedicated ones alike.

use std::collections::BTreeMap;

use prism_api::v1beta1::ClusterPattern;
use prism_api::v1beta1::{PatternBackend, PrismPatternSpec};

/// The PrismPattern spec of cluster `cluster`'s pattern entry, with `extra_config` added to its
/// configuration. Only the fields the entry sets are set: the rest stay free for kubectl tuning
/// (server-side apply leaves fields this manager never sends to their owners).
pub fn pattern_spec(cluster: &str, entry: &ClusterPattern, extra_config: BTreeMap<String, String>) -> PrismPatternSpec {
    let mut config = entry.runner.config.clone();
    config.extend(extra_config);
    PrismPatternSpec {
        cluster: cluster.to_string(),
        // The schema guarantees a type: explicit, or the entry's name.
        pattern_type: entry.pattern_type().unwrap_or_default(),
        workload: entry.workload,
        replicas: entry.runner.replicas,
        image: entry.runner.image.clone(),
        backends: entry.runner.backends.iter().map(|&name| PatternBackend { name, config: BTreeMap::new() }).collect(),
        config,
        resources: entry.runner.resources.clone(),
        storage: entry.runner.storage.clone(),
        ..PrismPatternSpec::default()
    }
}
