//! Watches shared by the controllers.

use kube::Resource;
use kube::core::{NamespaceResourceScope, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};

use crate::context::scoped_api;

/// Changes of `K` objects as metadata only: the smallest watch that can wake an owner.
pub fn metadata_changes<K>(
    client: &kube::Client,
    ns: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    // Each watch backs off on its own: kube-runtime's controller would otherwise hold every
    // trigger behind one shared backoff after any watch error (a dropped watch, a 410).
    watcher(scoped_api::<PartialObjectMeta<K>>(client, ns), config).default_backoff().touched_objects()
}

/// Whether an API group version serves `plural`.
pub async fn api_served(client: &kube::Client, group_version: &str, plural: &str) -> bool {
    client
        .list_api_group_resources(group_version)
        .await
        .is_ok_and(|list| list.resources.iter().any(|r| r.name == plural))
}
