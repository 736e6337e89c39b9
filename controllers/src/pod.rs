//! One pod template builder for every component: a restricted security context, a writable
//! /tmp, the component's placement, and the user's pod overrides merged on top.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, LocalObjectReference, PodSecurityContext, PodSpec, PodTemplateSpec,
    SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use prism_api::v1beta1::Placement;
use serde_json::Value;

/// The user id components run as when their image does not need another one (nonroot).
pub const NONROOT_UID: i64 = 65532;

/// What differs between components' pods.
#[derive(Clone, Debug, Default)]
pub struct PodParts {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub container: Container,
    pub volumes: Vec<Volume>,
    pub pull_secrets: Vec<LocalObjectReference>,
    pub placement: Option<Placement>,
    /// User id and group of the container; [`NONROOT_UID`] when unset.
    pub run_as_user: Option<i64>,
}

/// The pod template of a component, before overrides.
pub fn template(parts: PodParts) -> PodTemplateSpec {
    let uid = parts.run_as_user.unwrap_or(NONROOT_UID);
    let mut container = parts.container;
    container.security_context = Some(restricted_container_context());
    container.volume_mounts.get_or_insert_with(Vec::new).push(VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    });
    let mut volumes = parts.volumes;
    volumes.push(Volume { name: "tmp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() });
    let placement = parts.placement.unwrap_or_default();
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(parts.labels),
            annotations: (!parts.annotations.is_empty()).then_some(parts.annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            image_pull_secrets: (!parts.pull_secrets.is_empty()).then_some(parts.pull_secrets),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(uid),
                run_as_group: Some(uid),
                fs_group: Some(uid),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
                ..PodSecurityContext::default()
            }),
            node_selector: (!placement.node_selector.is_empty()).then_some(placement.node_selector),
            affinity: placement.affinity,
            tolerations: (!placement.tolerations.is_empty()).then_some(placement.tolerations),
            topology_spread_constraints: (!placement.topology_spread_constraints.is_empty())
                .then_some(placement.topology_spread_constraints),
            priority_class_name: placement.priority_class_name,
            runtime_class_name: placement.runtime_class_name,
            ..PodSpec::default()
        }),
    }
}

fn restricted_container_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
        ..SecurityContext::default()
    }
}

/// Merges the user's pod overrides over a built template: objects merge field by field, lists of
/// named items (containers, env, volumes, ports, ...) merge item by item by `name`, other lists
/// and scalars are replaced.
pub fn with_overrides(template: PodTemplateSpec, overrides: Option<&PodTemplateSpec>) -> PodTemplateSpec {
    let Some(overrides) = overrides else { return template };
    let (Ok(base), Ok(overlay)) = (serde_json::to_value(&template), serde_json::to_value(overrides)) else {
        return template;
    };
    // The merge of two valid templates is a valid template; should it not be, keep the built one.
    serde_json::from_value(merge_by_name(base, overlay)).unwrap_or(template)
}

fn merge_by_name(base: Value, overlay: Value) -> Value {
    match (base, overlay) {
        (Value::Object(mut base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let merged = match base.remove(&key) {
                    Some(existing) => merge_by_name(existing, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Object(base)
        }
        (Value::Array(base), Value::Array(overlay)) if is_named_list(&base) && is_named_list(&overlay) => {
            let mut merged = base;
            for item in overlay {
                match merged.iter().position(|b| b.get("name") == item.get("name")) {
                    Some(i) => merged[i] = merge_by_name(merged[i].take(), item),
                    None => merged.push(item),
                }
            }
            Value::Array(merged)
        }
        (_, overlay) => overlay,
    }
}

fn is_named_list(items: &[Value]) -> bool {
    items.iter().all(|item| item.get("name").is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::EnvVar;

    use super::*;

    fn built() -> PodTemplateSpec {
        template(PodParts {
            container: Container {
                name: "runner".into(),
                image: Some("img".into()),
                env: Some(vec![EnvVar { name: "A".into(), value: Some("1".into()), value_from: None }]),
                ..Container::default()
            },
            ..PodParts::default()
        })
    }

    #[test]
    fn pods_run_restricted() {
        let pod = built().spec.expect("spec");
        let container = &pod.containers[0].security_context.clone().expect("context");
        assert_eq!(container.allow_privilege_escalation, Some(false));
        assert_eq!(container.read_only_root_filesystem, Some(true));
        assert_eq!(
            pod.security_context.and_then(|s| s.seccomp_profile).map(|p| p.type_).as_deref(),
            Some("RuntimeDefault")
        );
    }

    #[test]
    fn overrides_merge_containers_and_env_by_name() {
        let overrides: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"annotations": {"team": "payments"}},
            "spec": {
                "containers": [{"name": "runner", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]},
                               {"name": "sidecar", "image": "proxy"}],
                "hostNetwork": false
            }
        }))
        .expect("template");
        let merged = with_overrides(built(), Some(&overrides));
        let spec = merged.spec.expect("spec");
        assert_eq!(spec.containers.len(), 2);
        assert_eq!(spec.containers[0].image.as_deref(), Some("img"), "untouched fields stay");
        let env = spec.containers[0].env.clone().expect("env");
        let pairs: Vec<(&str, &str)> =
            env.iter().map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default())).collect();
        assert_eq!(pairs, vec![("A", "2"), ("B", "3")]);
        assert_eq!(merged.metadata.and_then(|m| m.annotations).expect("annotations")["team"], "payments");
    }
}
