//! Offline rendering: every object the operator would create for some custom resources, in apply
//! order, with no cluster. The same pure validate and build steps the controllers run.

use std::future::{Future, ready};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject};
use kube::{Resource, ResourceExt};
use prism_api::v1beta1::PrismCluster;
use prism_api::v1beta1::PrismNamespace;
use prism_api::v1beta1::PrismPattern;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::build::{self as cluster_build, Credentials, Inputs, Role, Visit};
use crate::error::Error;
use crate::pattern::build::{self as pattern_build, Autoscaler, Workload};
use crate::projection::Child;
use crate::{backends, cluster, namespace, pattern};

/// Why the resources cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("document {index}: {message}")]
    Document { index: usize, message: String },
    #[error("{kind} {name:?}: {message}")]
    Invalid { kind: &'static str, name: String, message: String },
    #[error(transparent)]
    Serialize(#[from] Error),
}

/// Placeholder for credentials the operator generates at its first reconcile.
const GENERATED: &str = "generated-at-first-reconcile";

/// The objects for `documents` (PrismClusters, PrismNamespaces, PrismPatterns), in apply order.
pub fn render(documents: &[Value]) -> Result<Vec<Value>, RenderError> {
    let (clusters, namespaces, patterns) = parse(documents)?;
    let mut out = Vec::new();
    for c in &clusters {
        render_cluster(c, &namespaces, &patterns, &mut out)?;
    }
    for n in &namespaces {
        let target = n.cluster_ref();
        let c = cluster_of(&clusters, "PrismNamespace", &n.name_any(), target.name, target.namespace)?;
        render_namespace(n, c, &mut out)?;
    }
    for p in &patterns {
        let c =
            cluster_of(&clusters, "PrismPattern", &p.name_any(), &p.spec.cluster, &p.namespace().unwrap_or_default())?;
        render_runner(p, c, &mut out)?;
    }
    Ok(out)
}

type Parsed = (Vec<PrismCluster>, Vec<PrismNamespace>, Vec<PrismPattern>);

fn parse(documents: &[Value]) -> Result<Parsed, RenderError> {
    let (mut clusters, mut namespaces, mut patterns) = (Vec::new(), Vec::new(), Vec::new());
    for (index, doc) in documents.iter().enumerate() {
        let bad = |e: serde_json::Error| RenderError::Document { index, message: e.to_string() };
        match doc["kind"].as_str() {
            Some("PrismCluster") => clusters.push(with_identity(serde_json::from_value(doc.clone()).map_err(bad)?)),
            Some("PrismNamespace") => namespaces.push(with_identity(serde_json::from_value(doc.clone()).map_err(bad)?)),
            Some("PrismPattern") => patterns.push(with_identity(serde_json::from_value(doc.clone()).map_err(bad)?)),
            other => {
                let message = format!("kind {other:?} is not a Prism custom resource");
                return Err(RenderError::Document { index, message });
            }
        }
    }
    Ok((clusters, namespaces, patterns))
}

/// Objects read from a file have no uid or namespace yet: owner references need both.
fn with_identity<K: Resource>(mut object: K) -> K {
    let name = object.meta().name.clone().unwrap_or_default();
    let meta = object.meta_mut();
    meta.namespace.get_or_insert_with(|| "default".into());
    meta.uid.get_or_insert_with(|| format!("uid-of-{name}"));
    object
}

fn cluster_of<'a>(
    clusters: &'a [PrismCluster],
    kind: &'static str,
    name: &str,
    cluster: &str,
    namespace: &str,
) -> Result<&'a PrismCluster, RenderError> {
    let named = |c: &&PrismCluster| c.name_any() == cluster && c.namespace().as_deref() == Some(namespace);
    clusters.iter().find(named).ok_or_else(|| RenderError::Invalid {
        kind,
        name: name.into(),
        message: format!("spec.cluster names PrismCluster {cluster:?}, which is not in the input"),
    })
}

fn owner<K: Resource<DynamicType = ()>>(object: &K) -> OwnerReference {
    object.controller_owner_ref(&()).unwrap_or_default()
}

/// Adds `object` to the output; an object that cannot be serialized is an error, not a gap.
fn push<K: Resource + Serialize>(out: &mut Vec<Value>, object: &K, dt: &K::DynamicType) -> Result<(), RenderError> {
    let name = object.meta().name.as_deref().unwrap_or_default();
    let value = serde_json::to_value(object).map_err(|source| Error::serialize(&K::kind(dt), name, source))?;
    out.push(value);
    Ok(())
}

/// Prints a cluster's objects as [`cluster_build::ClusterObjects::visit`] hands them out.
struct Printer<'a>(&'a mut Vec<Value>);

impl Visit for Printer<'_> {
    type Error = RenderError;

    fn object<K: Child>(&mut self, _: Role, object: K) -> impl Future<Output = Result<(), RenderError>> + Send {
        ready(push(self.0, &object, &()))
    }

    fn dynamic(
        &mut self,
        object: DynamicObject,
        resource: ApiResource,
    ) -> impl Future<Output = Result<(), RenderError>> + Send {
        ready(push(self.0, &object, &resource))
    }
}

fn render_cluster(
    c: &PrismCluster,
    namespaces: &[PrismNamespace],
    patterns: &[PrismPattern],
    out: &mut Vec<Value>,
) -> Result<(), RenderError> {
    let invalid = |message: String| RenderError::Invalid { kind: "PrismCluster", name: c.name_any(), message };
    let valid = cluster::validate::validate(c).map_err(|e| invalid(e.message))?;
    // Offline, no namespace's labels are known: tenants admitted by a selector are not rendered.
    let attached: Vec<PrismNamespace> =
        namespaces.iter().filter(|n| crate::tenancy::attaches_to(n, c)).cloned().collect();
    let routes = cluster::routes::routes(&valid, patterns, &attached, |_| None);
    let credentials = placeholder_credentials(c);
    let inputs = Inputs { owner: owner(c), credentials: &credentials, routes: &routes, service_monitor_api: true };
    let objects = cluster_build::build(&valid, &inputs);
    let (child_patterns, child_namespaces) = (objects.patterns.clone(), objects.namespaces.clone());
    // Nothing in the printer waits: the visit completes at its first poll.
    futures::executor::block_on(objects.visit(&mut Printer(out)))?;
    for child in child_patterns {
        render_runner(&with_identity(child), c, out)?;
    }
    for child in child_namespaces {
        render_namespace(&with_identity(child), c, out)?;
    }
    Ok(())
}

fn placeholder_credentials(c: &PrismCluster) -> Credentials {
    c.spec
        .backends
        .enabled()
        .filter_map(|(kind, _)| {
            let keys = backends::facts(kind)?.secret_keys;
            (!keys.is_empty()).then(|| (kind, keys.iter().map(|k| ((*k).to_string(), GENERATED.to_string())).collect()))
        })
        .collect()
}

fn render_namespace(n: &PrismNamespace, c: &PrismCluster, out: &mut Vec<Value>) -> Result<(), RenderError> {
    let valid = namespace::validate::validate(n, Some(c)).map_err(|e| RenderError::Invalid {
        kind: "PrismNamespace",
        name: n.name_any(),
        message: e.message,
    })?;
    for runner in namespace::build::dedicated_runners(&valid, &owner(n)) {
        push(out, &runner, &())?;
        render_runner(&with_identity(runner), c, out)?;
    }
    if !valid.cluster_own {
        push(out, &namespace::build::connection_config_map(&valid, &owner(n)), &())?;
    }
    Ok(())
}

fn render_runner(p: &PrismPattern, c: &PrismCluster, out: &mut Vec<Value>) -> Result<(), RenderError> {
    let valid = pattern::validate::validate(p, Some(c)).map_err(|e| RenderError::Invalid {
        kind: "PrismPattern",
        name: p.name_any(),
        message: e.message,
    })?;
    let objects = pattern_build::build(&valid, &owner(p), pattern_build::replicas(&valid.spec));
    push(out, &objects.config_map, &())?;
    push(out, &objects.service, &())?;
    match &objects.workload {
        Workload::Deployment(d) => push(out, d, &())?,
        Workload::StatefulSet(s) => push(out, s, &())?,
    }
    match &objects.autoscaler {
        Some(Autoscaler::Hpa(h)) => push(out, h.as_ref(), &()),
        Some(Autoscaler::Keda(k)) => push(out, k.as_ref(), &pattern_build::scaled_object_resource()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<Value> {
        let text =
            std::fs::read_to_string(format!("{}/../samples/{name}", env!("CARGO_MANIFEST_DIR"))).expect("sample");
        vec![serde_saphyr::from_str(&text).expect("yaml")]
    }

    fn kinds_and_names(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| format!("{} {}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?")))
            .collect()
    }

    #[test]
    fn the_sample_renders_every_object_in_apply_order() {
        let rendered = kinds_and_names(&render(&sample("prism-local.yaml")).expect("renders"));
        let position =
            |what: &str| rendered.iter().position(|r| r == what).unwrap_or_else(|| panic!("{what} in {rendered:#?}"));
        assert!(position("Secret prism-local-redis-credentials") < position("StatefulSet prism-local-redis"));
        assert!(position("StatefulSet prism-local-redis") < position("Deployment prism-local-admin"));
        assert!(position("Deployment prism-local-proxy") < position("PrismPattern prism-local-keyvalue"));
        assert!(position("PrismPattern prism-local-keyvalue") < position("Ingress prism-local-proxy"));
        position("StatefulSet prism-local-keyvalue");
        position("Deployment prism-local-consumer");
        position("HorizontalPodAutoscaler prism-local-proxy");
        position("PrismPattern prism-local-orders-keyvalue");
        assert_eq!(rendered.len(), rendered.iter().collect::<std::collections::BTreeSet<_>>().len(), "no duplicates");
    }

    #[test]
    fn a_pattern_without_its_cluster_is_refused_with_a_reason() {
        let error = render(&sample("pattern-tuning.yaml")).unwrap_err();
        assert!(error.to_string().contains("prism-local"), "{error}");
    }
}
