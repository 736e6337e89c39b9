//! Points the API server at the webhook: the three CRDs' conversion (strategy Webhook, the
//! Service, the CA bundle) and the ValidatingWebhookConfiguration, both built by pure functions
//! and written with server-side apply under the webhook's own field manager, so that
//! re-applying the CRDs (which do not set `spec.conversion`) never conflicts with it.

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

/// The field manager of what the webhook installs.
pub const FIELD_MANAGER: &str = "prism-operator/webhook";

/// Where the API server reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub service: String,
    pub namespace: String,
    /// The Service's port (443 in the chart), not the pod's.
    pub port: i32,
}

impl Endpoint {
    fn client_config(&self, path: &str, ca_pem: &str) -> Value {
        json!({
            "service": {"name": self.service, "namespace": self.namespace, "path": path, "port": self.port},
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        })
    }
}

/// The apply body that switches CRD `name` to the conversion webhook.
pub fn crd_conversion(name: &str, endpoint: &Endpoint, ca_pem: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
        "spec": {"conversion": {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"], "clientConfig": endpoint.client_config("/convert", ca_pem)}}}
    })
}

/// The names of the webhooks in the configuration.
pub const REFERENCES_WEBHOOK: &str = "references.prism.io";
pub const DATA_SAFETY_WEBHOOK: &str = "data-safety.prism.io";

/// The ValidatingWebhookConfiguration `name`, every webhook with failurePolicy Ignore: an
/// operator outage never blocks kubectl (the SpecValid conditions still report the same
/// problems). The data-safety check is a webhook of its own so that a cluster administrator
/// may make it fail closed; it is not by default, because it sees every update of a
/// PrismCluster, the operator's own (finalizers) included: failing closed, an unreachable
/// webhook would stop the operator too. (Scoping it to Delete-policy clusters takes
/// matchConditions, which this configuration leaves out until the test API server has them.)
pub fn validating_configuration(name: &str, endpoint: &Endpoint, ca_pem: &str) -> Value {
    let rule = |resources: &[&str], operations: &[&str]| {
        json!({"apiGroups": [prism_api::names::GROUP], "apiVersions": [prism_api::STORAGE_VERSION],
               "resources": resources, "operations": operations, "scope": "Namespaced"})
    };
    let webhook = |name: &str, rules: Vec<Value>, failure_policy: &str| {
        json!({
            "name": name, "rules": rules, "failurePolicy": failure_policy, "matchPolicy": "Equivalent",
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
            "clientConfig": endpoint.client_config("/validate", ca_pem),
        })
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {
            prism_api::names::labels::MANAGED_BY: prism_api::names::labels::MANAGED_BY_VALUE}},
        "webhooks": [
            webhook(REFERENCES_WEBHOOK, vec![
                rule(&["prismclusters", "prismnamespaces", "prismpatterns", "prismpatterns/scale"], &["CREATE", "UPDATE"]),
            ], "Ignore"),
            webhook(DATA_SAFETY_WEBHOOK, vec![rule(&["prismclusters"], &["UPDATE", "DELETE"])], "Ignore"),
        ]
    })
}

#[derive(Debug, thiserror::Error)]
#[error("pointing {what} at the webhook: {source}")]
pub struct InstallError {
    what: String,
    source: kube::Error,
}

/// Writes the conversion of every installed Prism CRD and the validating configuration.
pub async fn install(
    client: &kube::Client,
    configuration: &str,
    endpoint: &Endpoint,
    ca_pem: &str,
) -> Result<(), InstallError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in prism_api::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        let installed = crds
            .get_opt(&name)
            .await
            .map_err(|source| InstallError { what: format!("CustomResourceDefinition {name}"), source })?;
        if installed.is_none() {
            // Not installed yet: an apply would create half a CRD. The next refresh points it.
            tracing::info!(crd = %name, "not installed: its conversion is set once it is");
            continue;
        }
        let body = crd_conversion(&name, endpoint, ca_pem);
        crds.patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| InstallError { what: format!("CustomResourceDefinition {name}"), source })?;
    }
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let body = validating_configuration(configuration, endpoint, ca_pem);
    configurations
        .patch(configuration, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| InstallError { what: format!("ValidatingWebhookConfiguration {configuration}"), source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_a_valid_object_whose_webhooks_never_block_kubectl() {
        let endpoint =
            Endpoint { service: "prism-operator-webhook".into(), namespace: "prism-system".into(), port: 443 };
        let body = validating_configuration("prism-operator", &endpoint, "PEM");
        let typed: ValidatingWebhookConfiguration = serde_json::from_value(body.clone()).expect("a valid object");
        let policies: Vec<(String, Option<String>)> =
            typed.webhooks.unwrap_or_default().into_iter().map(|w| (w.name, w.failure_policy)).collect();
        assert_eq!(
            policies,
            vec![
                (REFERENCES_WEBHOOK.to_string(), Some("Ignore".to_string())),
                (DATA_SAFETY_WEBHOOK.to_string(), Some("Ignore".to_string())),
            ]
        );
        assert_eq!(body["webhooks"][0]["clientConfig"]["caBundle"], "UEVN");
        let crd: CustomResourceDefinition = serde_json::from_value(
            json!({"spec": {"group": "g", "names": {"kind": "K", "plural": "ks"}, "scope": "Namespaced",
                "versions": []}}),
        )
        .expect("crd");
        assert_eq!(crd.spec.conversion, None);
        let conversion = crd_conversion("prismclusters.prism.io", &endpoint, "PEM");
        assert_eq!(conversion["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["path"], "/convert");
    }
}
