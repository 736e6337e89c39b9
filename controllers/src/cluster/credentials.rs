//! The backends' credentials: generated once, then only ever read back from their Secrets (a
//! regenerated password would cut the runners off from their data). A credentials Secret carries
//! a protection finalizer, so that one deleted by hand lingers, data intact, until the operator
//! has read it back and recreated it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::json;

use super::build::Credentials;
use super::validate::ValidatedCluster;
use crate::backends;
use crate::error::{Error, Result};
use crate::writer::Writer;

/// Fixed user names: predictable, and nothing secret about them.
const USERNAME: &str = "prism";

/// `existing` with every missing key of a backend's secret generated: 32 random alphanumerics
/// from the operating system's generator.
pub fn complete(cluster: &ValidatedCluster, mut existing: Credentials) -> Credentials {
    for (kind, _) in cluster.spec.backends.enabled() {
        let Some(facts) = backends::facts(kind) else { continue };
        if facts.secret_keys.is_empty() {
            continue;
        }
        let values = existing.entry(kind).or_default();
        for key in facts.secret_keys {
            values.entry((*key).to_string()).or_insert_with(|| match *key {
                "username" => USERNAME.to_string(),
                _ => Alphanumeric.sample_string(&mut rand::rng(), 32),
            });
        }
    }
    existing
}

/// The credentials in the backends' Secrets, and the Secrets someone deleted that linger on their
/// protection finalizer (to release once their data is recreated).
pub async fn read(valid: &ValidatedCluster, w: &Writer<'_>) -> Result<(Credentials, Vec<Secret>)> {
    let mut credentials = Credentials::new();
    let mut lingering = Vec::new();
    // Only backends with credentials have a Secret (NATS has none: no need to look for it).
    let with_secrets = valid
        .spec
        .backends
        .enabled()
        .filter(|(kind, _)| backends::facts(*kind).is_some_and(|facts| !facts.secret_keys.is_empty()));
    for (kind, _) in with_secrets {
        let name = crate::naming::backend_secret(&valid.name, kind);
        let labels = crate::meta::component_labels(&valid.name, kind.as_str());
        let Some(secret) = w.live_child::<Secret>(&name, &labels).await? else { continue };
        let data = values(&secret);
        if !data.is_empty() {
            credentials.insert(kind, data);
        }
        if secret.metadata.deletion_timestamp.is_some() {
            lingering.push(secret);
        }
    }
    Ok((credentials, lingering))
}

/// With the Delete policy the sweep deletes a removed backend's credentials Secret, and nothing
/// reads it back (only enabled backends' are read): its protection goes with its backend, or it
/// would stay Terminating for as long as the cluster lives. (With Retain the Secret has no owner,
/// the sweep leaves it, and it serves the backend again when it is enabled again.)
pub async fn release_removed(valid: &ValidatedCluster, w: &Writer<'_>) -> Result<()> {
    let enabled: Vec<_> = valid.spec.backends.enabled().map(|(kind, _)| kind).collect();
    let removed = backends::all().filter(|f| !f.secret_keys.is_empty() && !enabled.contains(&f.kind));
    for facts in removed {
        let name = crate::naming::backend_secret(&valid.name, facts.kind);
        let labels = crate::meta::component_labels(&valid.name, facts.kind.as_str());
        if let Some(secret) = w.live_child::<Secret>(&name, &labels).await?
            && secret.metadata.deletion_timestamp.is_some()
        {
            release(w, &secret).await?;
        }
    }
    Ok(())
}

/// Under the Retain policy the credentials outlive their cluster, unprotected. One deleted by hand
/// while the cluster wrote nothing (paused, or a spec it cannot realise) still lingers on its
/// protection; released, its deletion would complete, and the next cluster of the name would
/// generate new credentials for the data the retained volumes hold. So it is recreated, as a live
/// cluster recreates it: the same data, without protection or owner. (Another finalizer still
/// holding it keeps it, data intact: only the protection goes.)
pub async fn retain(w: &Writer<'_>, secret: &Secret) -> Result<()> {
    let ours = prism_api::names::finalizers::CREDENTIALS;
    let finalizers = secret.metadata.finalizers.as_deref().unwrap_or_default();
    let held_by_us_alone = !finalizers.is_empty() && finalizers.iter().all(|f| f == ours);
    let deleted_by_hand = secret.metadata.deletion_timestamp.is_some();
    release(w, secret).await?;
    if !(deleted_by_hand && held_by_us_alone) {
        return Ok(());
    }
    let name = secret.name_any();
    let kept = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: secret.metadata.namespace.clone(),
            labels: secret.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        data: secret.data.clone(),
        type_: secret.type_.clone(),
        ..Secret::default()
    };
    w.api::<Secret>()
        .create(&PostParams::default(), &kept)
        .await
        .map_err(|source| Error::api("recreate", "Secret", &name, source))?;
    let note = format!("Secret {name} was deleted: recreated with the same credentials, which the cluster retains");
    w.announce(EventType::Warning, "CredentialsRecreated", &note);
    Ok(())
}

fn values(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| String::from_utf8(v.0.clone()).ok().map(|v| (k.clone(), v)))
        .collect()
}

/// Removes the credentials protection finalizer (and only it) from `secret`.
pub async fn release(w: &Writer<'_>, secret: &Secret) -> Result<()> {
    let ours = prism_api::names::finalizers::CREDENTIALS;
    let finalizers = secret.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == ours) {
        return Ok(());
    }
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != ours).collect();
    let name = secret.name_any();
    // The resourceVersion makes it a compare-and-swap: another finalizer added meanwhile is kept.
    let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": secret.resource_version()}});
    w.api::<Secret>()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::api("release", "Secret", &name, source))?;
    Ok(())
}
