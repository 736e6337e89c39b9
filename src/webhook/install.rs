//! Points the API server at the webhook: the three CRDs' conversion (strategy Webhook, the
//! Service, the CA bundle) and the ValidatingWebhookConfiguration, both built by pure functions
//! and written with server-side apply under the webhook's own field manager. The CRDs as shipped
//! name the default Service without a CA (fail-closed, see `prism_api::crds`): re-applying them
//! shares the fields both set alike and leaves the CA alone; only an install in another
//! namespace than the default conflicts, over the Service's namespace, which this apply takes by
//! force. What is already installed as desired is not written again.

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use prism_controllers::writer::contains;
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
    let conversion = prism_api::webhook_conversion(&endpoint.service, &endpoint.namespace, endpoint.port, Some(ca_pem));
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
        "spec": {"conversion": conversion}
    })
}

/// The label every namespace carries with its own name (set by the API server).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

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
///
/// An operator that watches one namespace (`scope`) validates that namespace's objects only: its
/// webhooks select it by the label every namespace carries with its name, so that the installs
/// of several namespaces each check their own.
pub fn validating_configuration(name: &str, endpoint: &Endpoint, ca_pem: &str, scope: Option<&str>) -> Value {
    let rule = |resources: &[&str], operations: &[&str]| {
        json!({"apiGroups": [prism_api::names::GROUP], "apiVersions": [prism_api::STORAGE_VERSION],
               "resources": resources, "operations": operations, "scope": "Namespaced"})
    };
    let webhook = |name: &str, rules: Vec<Value>, failure_policy: &str| {
        let mut webhook = json!({
            "name": name, "rules": rules, "failurePolicy": failure_policy, "matchPolicy": "Equivalent",
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
            "clientConfig": endpoint.client_config("/validate", ca_pem),
        });
        if let Some(namespace) = scope {
            webhook["namespaceSelector"] = json!({"matchExpressions": [
                {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": [namespace]}]});
        }
        webhook
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

/// Writes the conversion of every installed Prism CRD and the validating configuration, each
/// only where it differs from what is installed.
pub async fn install(
    client: &kube::Client,
    configuration: &str,
    endpoint: &Endpoint,
    ca_pem: &str,
    scope: Option<&str>,
) -> Result<(), InstallError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in prism_api::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        let what = || format!("CustomResourceDefinition {name}");
        let installed = crds.get_opt(&name).await.map_err(|source| InstallError { what: what(), source })?;
        let Some(installed) = installed else {
            // Not installed yet: an apply would create half a CRD. The next refresh points it.
            tracing::info!(crd = %name, "not installed: its conversion is set once it is");
            continue;
        };
        apply_if_changed(&crds, &name, Some(&installed), &crd_conversion(&name, endpoint, ca_pem))
            .await
            .map_err(|source| InstallError { what: what(), source })?;
    }
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let what = || format!("ValidatingWebhookConfiguration {configuration}");
    let installed =
        configurations.get_opt(configuration).await.map_err(|source| InstallError { what: what(), source })?;
    let desired = validating_configuration(configuration, endpoint, ca_pem, scope);
    apply_if_changed(&configurations, configuration, installed.as_ref(), &desired)
        .await
        .map_err(|source| InstallError { what: what(), source })
}

/// Applies `desired` to object `name` unless `installed` already holds all of it.
async fn apply_if_changed<K>(
    api: &Api<K>,
    name: &str,
    installed: Option<&K>,
    desired: &Value,
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let live = installed.and_then(|object| serde_json::to_value(object).ok());
    // What the API server defaults or others set besides is not compared.
    if live.as_ref().is_some_and(|live| contains(live, desired)) {
        return Ok(());
    }
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(desired)).await?;
    tracing::info!(name, "pointed at the webhook");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_a_valid_object_whose_webhooks_never_block_kubectl() {
        let endpoint =
            Endpoint { service: "prism-operator-webhook".into(), namespace: "prism-system".into(), port: 443 };
        let body = validating_configuration("prism-operator", &endpoint, "PEM", None);
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
        assert_eq!(typed_selector(&body), [None, None], "cluster-wide: every namespace");
        let scoped = validating_configuration("prism-operator", &endpoint, "PEM", Some("prism"));
        let selects_prism = Some(vec!["prism".to_string()]);
        assert_eq!(typed_selector(&scoped), [selects_prism.clone(), selects_prism], "one namespace: that one");
        let crd: CustomResourceDefinition = serde_json::from_value(
            json!({"spec": {"group": "g", "names": {"kind": "K", "plural": "ks"}, "scope": "Namespaced",
                "versions": []}}),
        )
        .expect("crd");
        assert_eq!(crd.spec.conversion, None);
        let conversion = crd_conversion("prismclusters.prism.io", &endpoint, "PEM");
        assert_eq!(conversion["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["path"], "/convert");
        assert_eq!(
            conversion["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"], "UEVN",
            "base64 of the PEM"
        );
        assert_eq!(conversion["spec"]["conversion"]["webhook"]["clientConfig"].get("url"), None);
    }

    /// The namespaces each webhook's selector names by their name label (None: no selector).
    fn typed_selector(body: &Value) -> Vec<Option<Vec<String>>> {
        let typed: ValidatingWebhookConfiguration = serde_json::from_value(body.clone()).expect("a valid object");
        let names = |w: &k8s_openapi::api::admissionregistration::v1::ValidatingWebhook| {
            let expressions = w.namespace_selector.as_ref()?.match_expressions.clone()?;
            let by_name = expressions.into_iter().find(|e| e.key == NAMESPACE_NAME_LABEL && e.operator == "In")?;
            by_name.values
        };
        typed.webhooks.unwrap_or_default().iter().map(names).collect()
    }

    #[test]
    fn an_installed_object_holds_the_desired_one_whatever_the_server_added() {
        let endpoint = Endpoint { service: "w".into(), namespace: "ns".into(), port: 443 };
        let desired = validating_configuration("prism-operator", &endpoint, "PEM", None);
        let mut live = desired.clone();
        live["metadata"]["resourceVersion"] = json!("7");
        live["webhooks"][0]["namespaceSelector"] = json!({});
        live["webhooks"][1]["timeoutSeconds"] = json!(5);
        assert!(contains(&live, &desired), "server defaults and metadata are not differences");
        let mut renewed = live.clone();
        renewed["webhooks"][1]["clientConfig"]["caBundle"] = json!("T1RIRVI=");
        assert!(!contains(&renewed, &desired), "another CA bundle is");
        let mut fewer = live.clone();
        fewer["webhooks"].as_array_mut().map(Vec::pop);
        assert!(!contains(&fewer, &desired), "a missing webhook is");
    }
}
