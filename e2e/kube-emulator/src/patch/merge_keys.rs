//! The one table of list and map semantics of built-in kinds, shared by the strategic merge patch
//! (`patchStrategy`/`patchMergeKey` struct tags) and server-side apply (`+listType`, `+listMapKey`,
//! `+mapType`/`+structType` markers, which the apiserver publishes as `x-kubernetes-*` OpenAPI extensions).
//!
//! Source: the Go types of k8s.io/api v0.33 (core/v1, apps/v1, batch/v1, policy/v1, autoscaling/v2) and
//! k8s.io/apimachinery meta/v1. Only fields that are not "plain" are listed: an unlisted object field is a
//! struct/granular map (SMP merges it, SSA owns its members separately) and an unlisted list is atomic
//! (SMP replaces it, SSA owns it whole). Types are named after their Go types; a kind's root type is its
//! kind name, whose `metadata` is always `ObjectMeta`.

/// How a field's value merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A struct or map whose members merge one by one; its members are looked up under the row's `ty`.
    Object,
    /// `+structType=atomic` / `+mapType=atomic`: SSA owns and replaces it whole (SMP still merges it:
    /// those markers carry no patch strategy).
    AtomicObject,
    /// A list of objects of type `ty`: SMP merges items by `smp_key`; SSA treats it as
    /// `listType=map` with `ssa_keys` (key name and the default used when an item omits it), or as an
    /// atomic list when `ssa_keys` is None (kinds whose `+listType=atomic` contradicts the patch tags).
    KeyedList { smp_key: &'static str, ssa_keys: Option<&'static [(&'static str, Option<&'static str>)]> },
    /// `patchStrategy:"merge"` on a list of scalars, `+listType=set`: a set of values.
    SetList,
    /// A list of objects of type `ty` that is atomic for both (listed only to document the choice).
    AtomicList,
}

/// One field of one Go type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRow {
    /// The Go type holding the field (a kind name for a root object).
    pub owner: &'static str,
    /// The JSON field name.
    pub field: &'static str,
    /// The Go type of the value, or of the items of a list.
    pub ty: &'static str,
    pub shape: Shape,
}

const fn row(owner: &'static str, field: &'static str, ty: &'static str, shape: Shape) -> FieldRow {
    FieldRow { owner, field, ty, shape }
}

const NAME: &[(&str, Option<&str>)] = &[("name", None)];
const TYPE: &[(&str, Option<&str>)] = &[("type", None)];
const IP: &[(&str, Option<&str>)] = &[("ip", None)];
const UID: &[(&str, Option<&str>)] = &[("uid", None)];

/// Merged by name for both SMP and SSA.
const BY_NAME: Shape = Shape::KeyedList { smp_key: "name", ssa_keys: Some(NAME) };
/// Conditions: merged by type for both SMP and SSA.
const BY_TYPE: Shape = Shape::KeyedList { smp_key: "type", ssa_keys: Some(TYPE) };
/// Job and Node conditions-like lists: SMP merges by type, but SSA lists them `+listType=atomic`.
const BY_TYPE_SMP_ONLY: Shape = Shape::KeyedList { smp_key: "type", ssa_keys: None };
const BY_IP: Shape = Shape::KeyedList { smp_key: "ip", ssa_keys: Some(IP) };

/// The kinds whose structure is known: (API group, kind). The root type is the kind name.
pub const ROOT_KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "Service"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolumeClaim"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "Endpoints"),
    ("", "Event"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("coordination.k8s.io", "Lease"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("events.k8s.io", "Event"),
];

/// Go types marked `+structType=atomic`: SSA owns and replaces them whole wherever they appear (e.g. the
/// items of `imagePullSecrets`).
pub const ATOMIC_TYPES: &[&str] = &[
    "LabelSelector",
    "LocalObjectReference",
    "ObjectReference",
    "TypedLocalObjectReference",
    "ConfigMapKeySelector",
    "SecretKeySelector",
    "ObjectFieldSelector",
    "ResourceFieldSelector",
    "NodeSelector",
];

/// The table. Order does not matter; (owner, field) is unique.
pub const FIELDS: &[FieldRow] = &[
    // meta/v1 ObjectMeta
    row("ObjectMeta", "finalizers", "string", Shape::SetList),
    row("ObjectMeta", "ownerReferences", "OwnerReference", Shape::KeyedList { smp_key: "uid", ssa_keys: Some(UID) }),
    row("ObjectMeta", "labels", "map", Shape::Object),
    row("ObjectMeta", "annotations", "map", Shape::Object),
    row("LabelSelector", "matchExpressions", "LabelSelectorRequirement", Shape::AtomicList),
    // core/v1 roots
    row("Pod", "spec", "PodSpec", Shape::Object),
    row("Pod", "status", "PodStatus", Shape::Object),
    row("PodTemplate", "template", "PodTemplateSpec", Shape::Object),
    row("ReplicationController", "spec", "ReplicationControllerSpec", Shape::Object),
    row("ReplicationController", "status", "ReplicationControllerStatus", Shape::Object),
    row("Service", "spec", "ServiceSpec", Shape::Object),
    row("Service", "status", "ServiceStatus", Shape::Object),
    row("Namespace", "status", "NamespaceStatus", Shape::Object),
    row("Node", "spec", "NodeSpec", Shape::Object),
    row("Node", "status", "NodeStatus", Shape::Object),
    row("PersistentVolumeClaim", "status", "PersistentVolumeClaimStatus", Shape::Object),
    row("ServiceAccount", "secrets", "ObjectReference", Shape::KeyedList { smp_key: "name", ssa_keys: None }),
    // core/v1 pod template and pod spec
    row("PodTemplateSpec", "metadata", "ObjectMeta", Shape::Object),
    row("PodTemplateSpec", "spec", "PodSpec", Shape::Object),
    row("PodSpec", "volumes", "Volume", BY_NAME),
    row("PodSpec", "initContainers", "Container", BY_NAME),
    row("PodSpec", "containers", "Container", BY_NAME),
    row("PodSpec", "ephemeralContainers", "Container", BY_NAME),
    row("PodSpec", "imagePullSecrets", "LocalObjectReference", BY_NAME),
    row("PodSpec", "hostAliases", "HostAlias", BY_IP),
    row(
        "PodSpec",
        "topologySpreadConstraints",
        "TopologySpreadConstraint",
        Shape::KeyedList {
            smp_key: "topologyKey",
            ssa_keys: Some(&[("topologyKey", None), ("whenUnsatisfiable", None)]),
        },
    ),
    row("PodSpec", "schedulingGates", "PodSchedulingGate", BY_NAME),
    row("PodSpec", "resourceClaims", "PodResourceClaim", BY_NAME),
    row("PodSpec", "tolerations", "Toleration", Shape::AtomicList),
    row("PodSpec", "readinessGates", "PodReadinessGate", Shape::AtomicList),
    row("PodSpec", "nodeSelector", "map", Shape::AtomicObject),
    row(
        "Container",
        "ports",
        "ContainerPort",
        Shape::KeyedList {
            smp_key: "containerPort",
            ssa_keys: Some(&[("containerPort", None), ("protocol", Some("TCP"))]),
        },
    ),
    row("Container", "env", "EnvVar", BY_NAME),
    row("Container", "envFrom", "EnvFromSource", Shape::AtomicList),
    row(
        "Container",
        "volumeMounts",
        "VolumeMount",
        Shape::KeyedList { smp_key: "mountPath", ssa_keys: Some(&[("mountPath", None)]) },
    ),
    row(
        "Container",
        "volumeDevices",
        "VolumeDevice",
        Shape::KeyedList { smp_key: "devicePath", ssa_keys: Some(&[("devicePath", None)]) },
    ),
    row("Container", "resizePolicy", "ContainerResizePolicy", Shape::AtomicList),
    row("Container", "resources", "ResourceRequirements", Shape::Object),
    row("ResourceRequirements", "claims", "ResourceClaim", Shape::KeyedList { smp_key: "name", ssa_keys: Some(NAME) }),
    row("EnvVar", "valueFrom", "EnvVarSource", Shape::Object),
    row("EnvVarSource", "configMapKeyRef", "ConfigMapKeySelector", Shape::AtomicObject),
    row("EnvVarSource", "secretKeyRef", "SecretKeySelector", Shape::AtomicObject),
    row("EnvVarSource", "fieldRef", "ObjectFieldSelector", Shape::AtomicObject),
    row("EnvVarSource", "resourceFieldRef", "ResourceFieldSelector", Shape::AtomicObject),
    // core/v1 statuses and other specs
    row("PodStatus", "conditions", "PodCondition", BY_TYPE),
    row("PodStatus", "podIPs", "PodIP", BY_IP),
    row("PodStatus", "hostIPs", "HostIP", BY_IP),
    row("PodStatus", "resourceClaimStatuses", "PodResourceClaimStatus", BY_NAME),
    row("ReplicationControllerSpec", "template", "PodTemplateSpec", Shape::Object),
    row("ReplicationControllerSpec", "selector", "map", Shape::AtomicObject),
    row("ReplicationControllerStatus", "conditions", "ReplicationControllerCondition", BY_TYPE),
    row(
        "ServiceSpec",
        "ports",
        "ServicePort",
        Shape::KeyedList { smp_key: "port", ssa_keys: Some(&[("port", None), ("protocol", Some("TCP"))]) },
    ),
    row("ServiceSpec", "selector", "map", Shape::AtomicObject),
    row("ServiceStatus", "conditions", "Condition", BY_TYPE),
    row("NamespaceStatus", "conditions", "NamespaceCondition", BY_TYPE),
    row("NodeSpec", "podCIDRs", "string", Shape::SetList),
    row("NodeStatus", "conditions", "NodeCondition", BY_TYPE),
    row("NodeStatus", "addresses", "NodeAddress", BY_TYPE_SMP_ONLY),
    row("PersistentVolumeClaimStatus", "conditions", "PersistentVolumeClaimCondition", BY_TYPE),
    // apps/v1
    row("Deployment", "spec", "DeploymentSpec", Shape::Object),
    row("Deployment", "status", "DeploymentStatus", Shape::Object),
    row("DeploymentSpec", "selector", "LabelSelector", Shape::AtomicObject),
    row("DeploymentSpec", "template", "PodTemplateSpec", Shape::Object),
    row("DeploymentStatus", "conditions", "DeploymentCondition", BY_TYPE),
    row("StatefulSet", "spec", "StatefulSetSpec", Shape::Object),
    row("StatefulSet", "status", "StatefulSetStatus", Shape::Object),
    row("StatefulSetSpec", "selector", "LabelSelector", Shape::AtomicObject),
    row("StatefulSetSpec", "template", "PodTemplateSpec", Shape::Object),
    row("StatefulSetSpec", "volumeClaimTemplates", "PersistentVolumeClaim", Shape::AtomicList),
    row("StatefulSetStatus", "conditions", "StatefulSetCondition", BY_TYPE),
    row("DaemonSet", "spec", "DaemonSetSpec", Shape::Object),
    row("DaemonSet", "status", "DaemonSetStatus", Shape::Object),
    row("DaemonSetSpec", "selector", "LabelSelector", Shape::AtomicObject),
    row("DaemonSetSpec", "template", "PodTemplateSpec", Shape::Object),
    row("DaemonSetStatus", "conditions", "DaemonSetCondition", BY_TYPE),
    row("ReplicaSet", "spec", "ReplicaSetSpec", Shape::Object),
    row("ReplicaSet", "status", "ReplicaSetStatus", Shape::Object),
    row("ReplicaSetSpec", "selector", "LabelSelector", Shape::AtomicObject),
    row("ReplicaSetSpec", "template", "PodTemplateSpec", Shape::Object),
    row("ReplicaSetStatus", "conditions", "ReplicaSetCondition", BY_TYPE),
    // batch/v1
    row("Job", "spec", "JobSpec", Shape::Object),
    row("Job", "status", "JobStatus", Shape::Object),
    row("JobSpec", "selector", "LabelSelector", Shape::AtomicObject),
    row("JobSpec", "template", "PodTemplateSpec", Shape::Object),
    row("JobStatus", "conditions", "JobCondition", BY_TYPE_SMP_ONLY),
    row("CronJob", "spec", "CronJobSpec", Shape::Object),
    row("CronJobSpec", "jobTemplate", "JobTemplateSpec", Shape::Object),
    row("JobTemplateSpec", "metadata", "ObjectMeta", Shape::Object),
    row("JobTemplateSpec", "spec", "JobSpec", Shape::Object),
    // policy/v1, autoscaling/v2
    row("PodDisruptionBudget", "spec", "PodDisruptionBudgetSpec", Shape::Object),
    row("PodDisruptionBudget", "status", "PodDisruptionBudgetStatus", Shape::Object),
    row("PodDisruptionBudgetSpec", "selector", "LabelSelector", Shape::AtomicObject),
    row("PodDisruptionBudgetStatus", "conditions", "Condition", BY_TYPE),
    row("HorizontalPodAutoscaler", "status", "HorizontalPodAutoscalerStatus", Shape::Object),
    row("HorizontalPodAutoscalerStatus", "conditions", "HorizontalPodAutoscalerCondition", BY_TYPE),
    // networking.k8s.io/v1
    row("NetworkPolicy", "spec", "NetworkPolicySpec", Shape::Object),
    row("NetworkPolicySpec", "podSelector", "LabelSelector", Shape::AtomicObject),
];

/// The root type name of a built-in kind, if the table knows it.
pub fn root_type(group: &str, kind: &str) -> Option<&'static str> {
    ROOT_KINDS.iter().find(|(g, k)| *g == group && *k == kind).map(|(_, k)| *k)
}

/// The row for `field` of type `owner`; a root kind's `metadata` is `ObjectMeta`.
pub fn lookup(owner: &str, field: &str) -> Option<FieldRow> {
    if let Some(found) = FIELDS.iter().find(|r| r.owner == owner && r.field == field) {
        return Some(*found);
    }
    let is_root = ROOT_KINDS.iter().any(|(_, k)| *k == owner);
    (is_root && field == "metadata").then_some(row("root", "metadata", "ObjectMeta", Shape::Object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_field_pairs_are_unique() {
        for (i, a) in FIELDS.iter().enumerate() {
            assert!(
                FIELDS[i + 1..].iter().all(|b| (a.owner, a.field) != (b.owner, b.field)),
                "duplicate row {}.{}",
                a.owner,
                a.field
            );
        }
    }

    #[test]
    fn every_root_kind_reaches_object_meta() {
        for (group, kind) in ROOT_KINDS {
            let root = root_type(group, kind).unwrap();
            assert_eq!(lookup(root, "metadata").unwrap().ty, "ObjectMeta");
        }
    }

    #[test]
    fn pod_containers_merge_by_name() {
        let row = lookup("PodSpec", "containers").unwrap();
        assert_eq!(row.ty, "Container");
        assert!(matches!(row.shape, Shape::KeyedList { smp_key: "name", .. }));
    }
}
