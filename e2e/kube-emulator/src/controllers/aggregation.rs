//! ClusterRole aggregation, as kube-controller-manager's clusterrole-aggregation controller does
//! it: a ClusterRole with an `aggregationRule` holds the rules of every other ClusterRole its
//! `clusterRoleSelectors` match (in name order, each rule once), kept up to date as they change.

use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::meta::meta_str;
use crate::ops::{Cluster, PatchKind, WriteOptions};
use crate::selectors::LabelSelector;
use crate::store::Change;

const CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
/// The field manager of the controller's writes.
pub const MANAGER: &str = "clusterrole-aggregation-controller";

/// The controller's task: runs until the cluster is dropped.
pub(super) async fn run(cluster: Weak<Cluster>, progress: watch::Sender<u64>) {
    let Some(mut rx) = start(&cluster, &progress) else { return };
    loop {
        match rx.recv().await {
            Ok(change) => {
                let mut last = change.rv;
                let mut roles_changed = change.storage == CLUSTER_ROLES;
                while let Ok(change) = rx.try_recv() {
                    last = change.rv;
                    roles_changed |= change.storage == CLUSTER_ROLES;
                }
                if roles_changed {
                    let Some(c) = cluster.upgrade() else { return };
                    aggregate(&c);
                }
                progress.send_replace(last);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let Some(fresh) = start(&cluster, &progress) else { return };
                rx = fresh;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Subscribes, aggregates what is stored now and reports progress up to it.
fn start(cluster: &Weak<Cluster>, progress: &watch::Sender<u64>) -> Option<broadcast::Receiver<Arc<Change>>> {
    let c = cluster.upgrade()?;
    let (rx, rv) = {
        let st = c.store.lock();
        (c.store.subscribe(), st.rv)
    };
    aggregate(&c);
    progress.send_replace(rv);
    Some(rx)
}

/// Writes the rules of every aggregated ClusterRole that are not what its selectors gather.
fn aggregate(cluster: &Cluster) {
    let roles = cluster.store.lock().list(CLUSTER_ROLES, None, None);
    for role in &roles {
        let Some(rules) = aggregated_rules(role, &roles) else { continue };
        if role.get("rules") == Some(&rules) {
            continue;
        }
        let name = meta_str(role, "name");
        let written = cluster.target("rbac.authorization.k8s.io", "v1", "clusterroles", "", name).and_then(|t| {
            cluster.patch(&t, PatchKind::Merge, &json!({"rules": rules}), &WriteOptions::manager(MANAGER))
        });
        if let Err(e) = written {
            tracing::debug!(error = %e, role = name, "aggregating a ClusterRole");
        }
    }
}

/// The rules `role` gathers from `all`, or None if it has no aggregation rule.
fn aggregated_rules(role: &Value, all: &[Arc<Value>]) -> Option<Value> {
    let selectors: Vec<LabelSelector> = role
        .pointer("/aggregationRule/clusterRoleSelectors")?
        .as_array()?
        .iter()
        .filter_map(|s| LabelSelector::from_object(s).ok())
        .collect();
    let mut rules: Vec<Value> = Vec::new();
    let name = meta_str(role, "name");
    for other in all.iter().filter(|o| meta_str(o, "name") != name) {
        if !selectors.iter().any(|s| s.matches(other)) {
            continue;
        }
        for rule in other.get("rules").and_then(Value::as_array).into_iter().flatten() {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
    }
    Some(Value::Array(rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregated_role_gathers_the_rules_of_the_roles_its_selectors_match() {
        let role = |name: &str, labels: Value, rules: Value| {
            Arc::new(json!({"metadata": {"name": name, "labels": labels}, "rules": rules}))
        };
        let get = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]});
        let list = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]});
        let all = vec![
            role("a", json!({"agg": "view"}), json!([get])),
            role("b", json!({"agg": "view"}), json!([get, list])),
            role("c", json!({"agg": "edit"}), json!([{"verbs": ["delete"]}])),
        ];
        let view = json!({"metadata": {"name": "view"},
                          "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "view"}}]}});
        assert_eq!(aggregated_rules(&view, &all), Some(json!([get, list])));
        assert_eq!(aggregated_rules(&all[0], &all), None);
    }
}
