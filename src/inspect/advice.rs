//! What to do about each reason the operator (and Kubernetes' workloads) report, in the words
//! of the object's own fields. One table, read by `status` and `why`.

use prism_api::v1beta1::BackendKind;

use super::fetch::Snapshot;
use super::node::Node;

/// What to do about `reason`, reported by `node`; `None` for a reason that needs nothing (or that
/// is unknown here: its message is then all there is).
pub fn what_to_do(reason: &str, node: &Node, snapshot: &Snapshot) -> Option<String> {
    let (ns, name) = (&node.namespace, &node.name);
    let cluster = node.cluster.as_deref().unwrap_or("?");
    let why = |kind: &str| format!("kubectl prism why {kind}/{name} -n {ns}");
    Some(match reason {
        "BackendNotEnabled" => backend_not_enabled(node, snapshot),
        "BackendNotSupported" => {
            "use only backends its pattern type supports (the message lists them), or change the pattern type".into()
        }
        "UnknownPatternType" => "set spec.patterns[].pattern to a pattern type (keyvalue, consumer, producer, \
                                 mailbox, multicast-registry, claimcheck), or name the entry after one"
            .into(),
        "PatternNotFound" => format!(
            "add the pattern to PrismCluster {cluster}'s spec.patterns, or remove it from this {}'s spec",
            node.kind
        ),
        "ClusterNotFound" => format!("create PrismCluster {cluster} in namespace {ns}, or fix spec.cluster"),
        "InvalidPodOverrides" => {
            "fix the podOverrides field the message names: it must be a valid PodTemplateSpec".into()
        }
        "RunnerNameClash" => "rename this PrismNamespace (or the pattern), or use isolation none or session".into(),
        "NamespaceNotAllowed" => format!(
            "ask the platform team to admit namespace {ns} (label it as PrismCluster {cluster}'s \
             spec.tenancy.namespaces.selector says, or widen the rule)"
        ),
        "PatternNotAllowed" | "TooManyDedicatedRunners" => format!(
            "stay within PrismCluster {cluster}'s spec.tenancy.limits (the message says which), or ask its platform \
             team to raise them"
        ),
        "NameInUse" => "another namespace holds this Prism namespace name (the message says which): rename this \
                        PrismNamespace"
            .into(),
        "ClusterOutOfScope" => "run an operator that watches every namespace (the chart without watchNamespace), or \
                                create the PrismNamespace in the operator's namespace"
            .into(),
        "KedaNotInstalled" => {
            "install KEDA (its keda.sh/v1alpha1 ScaledObject API), or set spec.autoscaling.scaler: hpa".into()
        }
        "ServiceMonitorAPIMissing" => "install the Prometheus Operator's CRDs (monitoring.coreos.com/v1), or set \
                                       spec.observability.prometheus.enabled: false"
            .into(),
        "LokiTargetMissing" => "set spec.observability.loki.url, or set spec.observability.loki.enabled: false".into(),
        "ProgressDeadlineExceeded" => format!(
            "its pods do not become ready: kubectl describe {} {name} -n {ns}, then the pods' events and logs \
             (image, resources, probes)",
            node.kind.to_lowercase()
        ),
        "ReplicasUnavailable" => format!(
            "replicas went away after the rollout: kubectl get pods -n {ns} -l prism.io/pattern={name} (evictions, \
             node failures)"
        ),
        "WaitingForBackends" | "BackendNotReady" => {
            format!("it starts once its backends are ready; to see why they are not: {}", why("prismpattern"))
        }
        "RunnersNotReady" | "RunnerUnavailable" => {
            format!("see why its runners are not ready: {}", why("prismnamespace"))
        }
        "ComponentsNotReady" | "NotReady" => format!("see which component holds it up: {}", why("prismcluster")),
        "RollingOut" if node.kind.starts_with("Prism") => {
            format!("a rollout is under way; if it does not finish: {}", why(&node.kind.to_lowercase()))
        }
        "RollingOut" => format!(
            "a rollout is under way; if it does not finish, look at the pods: kubectl describe {} {name} -n {ns}",
            node.kind.to_lowercase()
        ),
        "Orphaned" => format!(
            "nothing reconciles it any more: delete it if nothing needs it (kubectl delete {} {name} -n {ns}), or recreate its owner",
            node.kind.to_lowercase()
        ),
        "VolumeNotBound" => {
            format!("no volume is bound to it: check its storage class (kubectl describe pvc {name} -n {ns})")
        }
        "SpecPaused" => "the cluster is paused on purpose: set spec.paused: false to resume".into(),
        "ClusterPaused" => format!("PrismCluster {cluster} is paused: set its spec.paused: false to resume"),
        "NotObservedYet" => "the operator has not reconciled the latest change: check that it runs \
                             (kubectl get pods -A -l app.kubernetes.io/name=prism-operator)"
            .into(),
        _ => return None,
    })
}

/// `enable spec.backends.nats or remove nats from pattern consumer`, from the specs when they say
/// which backend of which pattern it is.
fn backend_not_enabled(node: &Node, snapshot: &Snapshot) -> String {
    let generic = "enable the backend in the PrismCluster's spec.backends, or remove it from the pattern".to_string();
    let Some(cluster) = snapshot.cluster(&node.namespace, node.cluster.as_deref().unwrap_or_default()) else {
        return generic;
    };
    let enabled = |b: BackendKind| !b.is_service() || cluster.spec.backends.enabled().any(|(kind, _)| kind == b);
    if node.kind == "PrismCluster" {
        let missing = cluster
            .spec
            .patterns
            .iter()
            .find_map(|p| p.runner.backends.iter().find(|b| !enabled(**b)).map(|b| (p.name.as_str(), b.as_str())));
        return missing
            .map_or(generic, |(pattern, b)| format!("enable spec.backends.{b} or remove {b} from pattern {pattern}"));
    }
    let pattern = snapshot.patterns.iter().find(|p| {
        p.metadata.name.as_deref() == Some(node.name.as_str())
            && p.metadata.namespace.as_deref() == Some(&node.namespace)
    });
    let missing = pattern.and_then(|p| p.spec.backends.iter().map(|b| b.name).find(|b| !enabled(*b)));
    missing.map_or(generic, |b| {
        format!(
            "enable spec.backends.{b} in PrismCluster {}, or remove {b} from this PrismPattern's spec.backends",
            cluster.metadata.name.as_deref().unwrap_or_default(),
            b = b.as_str()
        )
    })
}

#[cfg(test)]
mod tests {
    use prism_api::v1beta1::PrismCluster;

    use super::*;
    use crate::inspect::node;

    #[test]
    fn a_backend_not_enabled_is_named_with_the_pattern_that_uses_it() {
        let cluster: PrismCluster = serde_saphyr::from_str(
            "metadata: {name: local, namespace: prism}\n\
             spec:\n  backends: {redis: {enabled: true, version: '7'}}\n  patterns:\n\
             \x20 - {name: keyvalue, backends: [redis]}\n\x20 - {name: consumer, backends: [nats]}\n",
        )
        .expect("cluster");
        let snapshot = Snapshot { clusters: vec![cluster.clone()], ..Snapshot::default() };
        let advice = what_to_do("BackendNotEnabled", &node::cluster(&cluster), &snapshot);
        assert_eq!(advice.as_deref(), Some("enable spec.backends.nats or remove nats from pattern consumer"));
    }

    #[test]
    fn a_tenant_not_admitted_is_told_whom_to_ask_and_what() {
        let tenant: prism_api::v1beta1::PrismNamespace = serde_saphyr::from_str(
            "metadata: {name: orders, namespace: team-a}\nspec: {cluster: shared, clusterNamespace: platform}\n",
        )
        .expect("namespace");
        let advice =
            what_to_do("NamespaceNotAllowed", &node::namespace(&tenant), &Snapshot::default()).expect("advice");
        assert!(advice.contains("admit namespace team-a") && advice.contains("PrismCluster shared"), "{advice}");
        assert!(what_to_do("NameInUse", &node::namespace(&tenant), &Snapshot::default()).is_some());
    }

    #[test]
    fn unknown_reasons_have_no_advice() {
        let cluster = PrismCluster::new("x", Default::default());
        assert_eq!(what_to_do("SomethingNew", &node::cluster(&cluster), &Snapshot::default()), None);
    }
}
