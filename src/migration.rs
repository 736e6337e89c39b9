//! Storage migration, run by the leader: after an upgrade, objects stored at an older version are
//! rewritten at v1beta1 (a no-op patch: the API server re-encodes an object at the storage
//! version when it writes it), then each CRD's `status.storedVersions` is trimmed to
//! `[v1beta1]`. As the storage-version migrator does it: idempotent (a trimmed CRD is skipped,
//! a rewritten object rewritten again changes nothing) and resumable (storedVersions is trimmed
//! only after every object of the kind was rewritten, so a crash midway starts that kind again).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// The field manager of the migration's writes (the webhook lets the operator's own writes pass).
pub const FIELD_MANAGER: &str = "prism-operator/storage-migration";
const PAGE: u32 = 100;

#[derive(Debug, thiserror::Error)]
#[error("migrating the storage of {crd}: {source}")]
pub struct MigrationError {
    crd: String,
    source: kube::Error,
}

/// What a migration did, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// CRDs whose storedVersions were trimmed.
    pub trimmed: Vec<String>,
    /// Objects rewritten.
    pub rewritten: usize,
}

/// Whether a CRD still has objects that may be stored at another version than the storage one.
pub fn needs_migration(crd: &CustomResourceDefinition) -> bool {
    let stored = crd.status.as_ref().and_then(|s| s.stored_versions.clone()).unwrap_or_default();
    stored.iter().any(|v| v != prism_api::STORAGE_VERSION)
}

/// Migrates every Prism CRD that needs it, in `namespace` only when the operator watches one.
pub async fn migrate(client: &Client, namespace: Option<&str>) -> Result<Migrated, MigrationError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut migrated = Migrated::default();
    for generated in prism_api::crds() {
        let name = generated.metadata.name.clone().unwrap_or_default();
        let error = |source| MigrationError { crd: name.clone(), source };
        let Some(crd) = crds.get_opt(&name).await.map_err(error)? else { continue };
        if !needs_migration(&crd) {
            continue;
        }
        migrated.rewritten += rewrite_all(client, &generated, namespace).await.map_err(error)?;
        if namespace.is_some() {
            // Objects of other namespaces are not ours to rewrite: leave storedVersions as it is.
            continue;
        }
        let status = json!({"status": {"storedVersions": [prism_api::STORAGE_VERSION]}});
        crds.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.map_err(error)?;
        tracing::info!(crd = %name, "storage migrated to {}", prism_api::STORAGE_VERSION);
        migrated.trimmed.push(name);
    }
    Ok(migrated)
}

async fn rewrite_all(
    client: &Client,
    crd: &CustomResourceDefinition,
    namespace: Option<&str>,
) -> Result<usize, kube::Error> {
    let resource = ApiResource {
        group: crd.spec.group.clone(),
        version: prism_api::STORAGE_VERSION.into(),
        api_version: format!("{}/{}", crd.spec.group, prism_api::STORAGE_VERSION),
        kind: crd.spec.names.kind.clone(),
        plural: crd.spec.names.plural.clone(),
    };
    let all: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    let mut rewritten = 0;
    let mut list = ListParams::default().limit(PAGE);
    loop {
        let page = all.list(&list).await?;
        for object in &page.items {
            let ns = object.namespace().unwrap_or_default();
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
            match api.patch(&object.name_any(), &params, &Patch::Merge(json!({}))).await {
                Ok(_) => rewritten += 1,
                // Deleted meanwhile: nothing left to migrate.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => list = list.continue_token(&token),
            None => return Ok(rewritten),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_crd_with_an_older_stored_version_needs_migration() {
        let crd = |stored: &[&str]| -> CustomResourceDefinition {
            serde_json::from_value(
                json!({"metadata": {"name": "x"}, "spec": {"group": "g", "names": {"kind": "K", "plural": "ks"},
                "scope": "Namespaced", "versions": []}, "status": {"storedVersions": stored}}),
            )
            .unwrap()
        };
        assert!(needs_migration(&crd(&["v1alpha1", "v1beta1"])));
        assert!(needs_migration(&crd(&["v1alpha1"])));
        assert!(!needs_migration(&crd(&["v1beta1"])));
    }
}
