//! Container images: the operator's default per component, with the user's overrides on top.

use k8s_openapi::api::core::v1::LocalObjectReference;
use prism_api::common::{ImageSpec, PullPolicy};

/// Registry of Prism's own images.
pub const PRISM_REGISTRY: &str = "ghcr.io";
/// Tag of Prism's own images when none is given. Fixed per operator release: changing it rolls
/// every runner, so it moves only with a Prism release, never with an operator patch.
pub const PRISM_VERSION: &str = "0.1.0";
/// Registry of the backing services' upstream images.
pub const BACKEND_REGISTRY: &str = "docker.io";

/// An image reference and how to pull it.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub reference: String,
    pub pull_policy: Option<String>,
    pub pull_secrets: Vec<LocalObjectReference>,
}

/// The image of a component: `default_registry/default_repository:default_tag` with every part
/// the user set in `spec` replacing the default.
pub fn resolve(default_registry: &str, default_repository: &str, default_tag: &str, spec: Option<&ImageSpec>) -> Image {
    let spec = spec.cloned().unwrap_or_default();
    let registry = spec.registry.as_deref().unwrap_or(default_registry);
    let repository = spec.repository.as_deref().unwrap_or(default_repository);
    let tag = spec.tag.as_deref().unwrap_or(default_tag);
    Image {
        reference: format!("{registry}/{repository}:{tag}"),
        pull_policy: spec.pull_policy.map(|p| pull_policy_name(p).to_string()),
        pull_secrets: spec.image_pull_secrets,
    }
}

fn pull_policy_name(policy: PullPolicy) -> &'static str {
    match policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let spec = ImageSpec { registry: Some("registry.example.com".into()), ..ImageSpec::default() };
        let image = resolve(PRISM_REGISTRY, "prism/keyvalue-runner", PRISM_VERSION, Some(&spec));
        assert_eq!(image.reference, "registry.example.com/prism/keyvalue-runner:0.1.0");
        assert_eq!(resolve("docker.io", "redis", "7-alpine", None).reference, "docker.io/redis:7-alpine");
    }
}
