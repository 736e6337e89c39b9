//! Requests as the API server handles them around the [`Cluster`]: conversion webhooks between a
//! request's version and the storage version (reads, lists, watches and writes), and on writes
//! admission (mutating webhooks, then RBAC escalation checks, the schema and validating
//! webhooks) before the object is stored.
//!
//! Webhooks are called outside the store's lock. A write meeting one is computed as a dry run,
//! admitted, then stored only if the object did not change meanwhile (its resourceVersion), and
//! computed again if it did, as the real server's optimistic updates do. A write that meets no
//! webhook configuration, no conversion and no escalation check runs in one step, as before.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::auth::UserInfo;
use crate::auth::escalation;
use crate::errors::{ApiError, ApiResult};
use crate::meta::{meta_str, resource_version};
use crate::ops::{Cluster, Draft, Filter, ListPage, ListQuery, Sub, Target, WriteOp, WriteOptions, Written, present};
use crate::registry::ResourceType;
use crate::watch::{self, Shape, WatchParams};
use crate::webhooks::admission::{self, Verdict, Webhook};
use crate::webhooks::conversion::{self, Refusal};
use crate::webhooks::{Services, call};

const MUTATING: &str = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
const VALIDATING: &str = "admissionregistration.k8s.io/validatingwebhookconfigurations";
/// Conversion webhooks have no timeout of their own: the real server allows 30 s.
const CONVERSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How often a write is computed again when the object changed while webhooks were called.
const ATTEMPTS: usize = 5;

/// What requests are handled with.
#[derive(Debug, Clone)]
pub struct Context {
    pub cluster: Arc<Cluster>,
    /// Where the Services webhooks name are served.
    pub services: Arc<Services>,
}

// ---------------------------------------------------------------- conversion

/// Whether objects of `t` come from a conversion webhook (stored at another version: the one
/// asked for is not the storage version, or objects stored before the storage version changed
/// may still be at an older one).
fn converts(t: &Target) -> bool {
    t.rt.conversion_webhook.is_some() && t.sub != Some(Sub::Scale)
}

/// The same target at the storage version.
fn at_storage(t: &Target) -> Target {
    Target { version: t.rt.storage_version.clone(), ..t.clone() }
}

impl Context {
    /// `objects` at `version` of `rt`: converted by its webhook (one ConversionReview for all
    /// those at another version) or by their apiVersion, then pruned and defaulted by the
    /// schema of `version`, as the real server's converter does.
    pub async fn convert(&self, rt: &ResourceType, objects: Vec<Value>, version: &str) -> ApiResult<Vec<Value>> {
        let desired = rt.api_version(version);
        let Some(client_config) = &rt.conversion_webhook else {
            return Ok(objects.iter().map(|o| present(rt, version, o)).collect());
        };
        let todo: Vec<usize> = (0..objects.len())
            .filter(|i| objects[*i].get("apiVersion").and_then(Value::as_str) != Some(&desired))
            .collect();
        if todo.is_empty() {
            return Ok(objects);
        }
        let originals: Vec<Value> = todo.iter().map(|i| objects[*i].clone()).collect();
        let from = originals[0].get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let failed = |why: String| conversion_failed(&format!("conversion webhook for {from}, Kind={} {why}", rt.kind));
        let uid = crate::meta::new_uid();
        let review = conversion::review(&uid, &desired, &originals);
        let answer = call(&self.services, client_config, &review, CONVERSION_TIMEOUT)
            .await
            .map_err(|e| failed(format!("failed: {e}")))?;
        let converted = conversion::converted(&uid, &desired, &answer, &originals).map_err(|r| match r {
            Refusal::Invalid(why) => failed(format!("failed: {why}")),
            Refusal::Count { got, expected } => failed(format!("returned {got} objects, expected {expected}")),
        })?;
        let mut objects = objects;
        for (i, mut object) in todo.into_iter().zip(converted) {
            coerce(rt, version, &mut object);
            objects[i] = object;
        }
        Ok(objects)
    }

    async fn convert_one(&self, rt: &ResourceType, object: Value, version: &str) -> ApiResult<Value> {
        let mut converted = self.convert(rt, vec![object], version).await?;
        converted.pop().ok_or_else(|| ApiError::internal("the conversion returned nothing"))
    }
}

/// Pruning and defaulting by the schema of `version`, as for any object read or written there.
fn coerce(rt: &ResourceType, version: &str, object: &mut Value) {
    if let Some(schema) = rt.version_info.get(version).and_then(|v| v.compiled.as_ref()) {
        schema.prune(object);
        schema.apply_defaults(object);
    }
}

/// The real server's answer to a failed conversion: a 500 whose reason is unknown.
fn conversion_failed(message: &str) -> ApiError {
    ApiError::new(500, "", message)
}

// ---------------------------------------------------------------- reads

impl Context {
    pub async fn get(&self, t: &Target) -> ApiResult<Value> {
        if !converts(t) {
            return self.cluster.get(t);
        }
        let stored = self.cluster.get(&at_storage(t))?;
        Box::pin(self.convert_one(&t.rt, stored, &t.version)).await
    }

    pub async fn list(&self, t: &Target, q: &ListQuery) -> ApiResult<ListPage> {
        if !converts(t) {
            return self.cluster.list(t, q);
        }
        let mut page = self.cluster.list(&at_storage(t), q)?;
        page.items = Box::pin(self.convert(&t.rt, page.items, &t.version)).await?;
        Ok(page)
    }

    /// A watch; its events' objects converted one by one, the watch ending with an ERROR event
    /// when a conversion fails.
    pub fn watch(&self, t: Target, filter: Filter, params: WatchParams) -> ApiResult<mpsc::Receiver<Bytes>> {
        if !converts(&t) {
            return watch::start(&self.cluster, t, filter, params);
        }
        let shape = params.shape;
        let stored = watch::start(&self.cluster, at_storage(&t), filter, WatchParams { shape: Shape::Full, ..params })?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(self.clone().convert_events(t, shape, stored, tx));
        Ok(rx)
    }

    async fn convert_events(self, t: Target, shape: Shape, mut stored: mpsc::Receiver<Bytes>, tx: mpsc::Sender<Bytes>) {
        let mut first = true;
        while let Some(line) = stored.recv().await {
            let Ok(event) = serde_json::from_slice::<Value>(&line) else { continue };
            let kind = event["type"].as_str().unwrap_or("").to_string();
            let mut object = event["object"].clone();
            let out = match kind.as_str() {
                "ADDED" | "MODIFIED" | "DELETED" => match self.convert_one(&t.rt, object, &t.version).await {
                    Ok(converted) => {
                        let rendered = watch::render(shape, &t.rt, &t.version, converted, first);
                        first = false;
                        watch::encode(&kind, &rendered)
                    }
                    Err(e) => {
                        let _ = tx.send(watch::encode("ERROR", &e.to_status())).await;
                        return;
                    }
                },
                "BOOKMARK" => {
                    if shape != Shape::Metadata {
                        object["apiVersion"] = json!(t.rt.api_version(&t.version));
                    }
                    watch::encode("BOOKMARK", &object)
                }
                _ => line,
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------- writes

/// The admission attributes of one write.
struct Admission<'a> {
    t: &'a Target,
    user: &'a UserInfo,
    operation: &'static str,
    name: String,
    object: Option<Value>,
    old: Option<Value>,
    dry_run: bool,
    options: Value,
}

impl Context {
    /// A create, update or patch by `user`, with conversion and admission.
    pub async fn write(&self, t: &Target, op: WriteOp, o: WriteOptions, user: &UserInfo) -> ApiResult<Written> {
        if !converts(t) && !escalation::applies(t, user) && !self.has_webhooks() {
            return self.cluster.write(t, &op, &o);
        }
        let stale = ApiError::stale(t.rt.subject(&t.name));
        for _ in 0..ATTEMPTS {
            // Boxed: the webhook calls make a large future, which the one-step path should not
            // carry on the stack of every request.
            match Box::pin(self.write_once(t, &op, &o, user)).await {
                Ok(Some(written)) => return Ok(written),
                // The object changed since the draft; unless the request named the version it
                // expected, the write is computed again, from the new state.
                Ok(None) => {}
                Err(e) if e == stale && !op.names_resource_version() => {}
                Err(e) => return Err(e),
            }
        }
        Err(stale)
    }

    fn has_webhooks(&self) -> bool {
        let st = self.cluster.store.lock();
        !st.list(MUTATING, None, None).is_empty() || !st.list(VALIDATING, None, None).is_empty()
    }

    /// One attempt: draft, admit, store. None when the object changed meanwhile.
    async fn write_once(
        &self,
        t: &Target,
        op: &WriteOp,
        o: &WriteOptions,
        user: &UserInfo,
    ) -> ApiResult<Option<Written>> {
        let (admitted, warnings) = self.admitted_draft(t, op, o, user).await?;
        if o.dry_run {
            return Ok(Some(Written { warnings, ..admitted.written(t)? }));
        }
        let stored = self.store(t, admitted, o).await?;
        Ok(stored.map(|w| Written { warnings, ..w }))
    }

    /// The write computed as a draft (at the request's version), through the mutating
    /// webhooks, the escalation check, the schema again if a webhook changed it, and the
    /// validating webhooks; with the warnings gathered.
    async fn admitted_draft(
        &self,
        t: &Target,
        op: &WriteOp,
        o: &WriteOptions,
        user: &UserInfo,
    ) -> ApiResult<(Draft, Vec<String>)> {
        let stored = self.cluster.stored(t);
        let seen = match &stored {
            Some(s) if converts(t) => Some(Arc::new(self.convert_one(&t.rt, (**s).clone(), &t.version).await?)),
            _ => None,
        };
        let old = seen.as_deref().cloned().or_else(|| stored.as_ref().map(|s| present(&t.rt, &t.version, s)));
        let draft_options = WriteOptions { seen, ..o.clone() };
        let draft = self.cluster.draft(t, op, &draft_options)?;
        let drafted = draft.written(t)?;
        let mut admission = Admission {
            t,
            user,
            operation: if draft.created { "CREATE" } else { "UPDATE" },
            name: meta_str(&drafted.object, "name").to_string(),
            object: Some(drafted.object),
            old: if draft.created { None } else { old },
            dry_run: o.dry_run,
            options: options(op, o),
        };
        let mut warnings = draft.warnings.clone();
        let (checked, object) = if self.admit(&mut admission, true, &mut warnings).await? {
            let mutated = admission.object.clone().unwrap_or(json!({}));
            let checked = self.cluster.redraft(t, mutated, &draft, &draft_options)?;
            let object = checked.written(t)?.object;
            (checked, object)
        } else {
            (draft, admission.object.take().unwrap_or(json!({})))
        };
        if escalation::applies(t, user) {
            escalation::check(&self.cluster, user, t, &object, admission.old.as_ref())?;
        }
        admission.object = Some(object);
        self.admit(&mut admission, false, &mut warnings).await?;
        Ok((checked, warnings))
    }

    /// Stores an admitted draft (converted to the storage version if it must be) and answers at
    /// the request's version; None when the object changed since the draft.
    async fn store(&self, t: &Target, admitted: Draft, o: &WriteOptions) -> ApiResult<Option<Written>> {
        if !converts(t) {
            return self.cluster.commit(t, admitted);
        }
        let storage = at_storage(t);
        let stored_form = self.convert_one(&t.rt, admitted.written(t)?.object, &t.rt.storage_version).await?;
        let draft = self.cluster.redraft(&storage, stored_form, &admitted, o)?;
        let Some(written) = self.cluster.commit(&storage, draft)? else {
            return Ok(None);
        };
        let object = self.convert_one(&t.rt, written.object, &t.version).await?;
        Ok(Some(Written { object, ..written }))
    }

    /// DELETE of one object by `user`, with admission: the deletion happens only if the object
    /// is still the one the webhooks saw.
    pub async fn delete(&self, t: &Target, opts: &Value, o: &WriteOptions, user: &UserInfo) -> ApiResult<Value> {
        if !converts(t) && !self.has_webhooks() {
            return self.cluster.delete(t, opts, o);
        }
        Box::pin(self.delete_admitted(t, opts, o, user)).await
    }

    async fn delete_admitted(&self, t: &Target, opts: &Value, o: &WriteOptions, user: &UserInfo) -> ApiResult<Value> {
        let own_precondition = opts.get("preconditions").is_some();
        for _ in 0..ATTEMPTS {
            let stored = self.cluster.stored(t).ok_or_else(|| ApiError::not_found(t.rt.subject(&t.name)))?;
            let old = self.convert_one(&t.rt, present(&t.rt, &t.rt.storage_version, &stored), &t.version).await?;
            let mut admission = Admission {
                t,
                user,
                operation: "DELETE",
                name: t.name.clone(),
                object: None,
                old: Some(old),
                dry_run: o.dry_run,
                options: with_kind(opts, "DeleteOptions", o.dry_run),
            };
            let mut warnings = Vec::new();
            self.admit(&mut admission, true, &mut warnings).await?;
            self.admit(&mut admission, false, &mut warnings).await?;
            let mut opts = opts.clone();
            if !own_precondition {
                opts["preconditions"] = json!({"resourceVersion": resource_version(&stored)});
            }
            // Deleted at the storage version: an object answered is converted like a read.
            match self.cluster.delete(&at_storage(t), &opts, o) {
                Err(e) if e.code == 409 && !own_precondition => continue,
                Err(e) => return Err(e),
                Ok(answer) if answer["kind"] == t.rt.kind.as_str() => {
                    return self.convert_one(&t.rt, answer, &t.version).await;
                }
                Ok(answer) => return Ok(answer),
            }
        }
        Err(ApiError::stale(t.rt.subject(&t.name)))
    }

    /// DELETE of a collection: with admission or conversion, each object as a single delete.
    pub async fn delete_collection(
        &self,
        t: &Target,
        q: &ListQuery,
        opts: &Value,
        o: &WriteOptions,
        user: &UserInfo,
    ) -> ApiResult<Value> {
        if !converts(t) && !self.has_webhooks() {
            return self.cluster.delete_collection(t, q, opts, o);
        }
        // Each object as a single delete; boxed, as its future is large.
        Box::pin(async {
            let victims = self.list(t, &ListQuery { limit: None, continue_token: None, ..q.clone() }).await?;
            let mut items = Vec::new();
            for victim in victims.items {
                let one = Target {
                    namespace: meta_str(&victim, "namespace").to_string(),
                    name: meta_str(&victim, "name").to_string(),
                    ..t.clone()
                };
                self.delete(&one, opts, o, user).await?;
                items.push(victim);
            }
            Ok(json!({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version(&t.version),
                      "metadata": {"resourceVersion": self.cluster.store.lock().rv.to_string()}, "items": items}))
        })
        .await
    }
}

/// The options object of a write, as the review carries it.
fn options(op: &WriteOp, o: &WriteOptions) -> Value {
    let kind = match op {
        WriteOp::Create(_) => "CreateOptions",
        WriteOp::Replace(_) => "UpdateOptions",
        WriteOp::Patch(..) => "PatchOptions",
    };
    let mut options = with_kind(&json!({}), kind, o.dry_run);
    if let Some(manager) = &o.field_manager {
        options["fieldManager"] = json!(manager);
    }
    if matches!(op, WriteOp::Patch(..)) && o.force {
        options["force"] = json!(true);
    }
    options
}

fn with_kind(options: &Value, kind: &str, dry_run: bool) -> Value {
    let mut options = if options.is_object() { options.clone() } else { json!({}) };
    options["kind"] = json!(kind);
    options["apiVersion"] = json!("meta.k8s.io/v1");
    if dry_run {
        options["dryRun"] = json!(["All"]);
    }
    options
}

// ---------------------------------------------------------------- admission

impl Context {
    /// Calls the mutating (or validating) webhooks that apply, in the order of their
    /// configurations' names; mutations change `a.object`. Returns whether one did.
    async fn admit(&self, a: &mut Admission<'_>, mutating: bool, warnings: &mut Vec<String>) -> ApiResult<bool> {
        let storage = if mutating { MUTATING } else { VALIDATING };
        let configurations = self.cluster.store.lock().list(storage, None, None);
        let hooks: Vec<Webhook> = configurations.iter().flat_map(|c| admission::webhooks(c)).collect();
        let mut mutated_after: Option<usize> = None;
        let mut called = Vec::new();
        for (i, hook) in hooks.iter().enumerate() {
            if self.call(a, hook, mutating, warnings).await? {
                mutated_after = Some(i);
            }
            called.push(i);
        }
        // reinvocationPolicy IfNeeded: called again, once, if a later webhook changed the object.
        if let Some(last) = mutated_after {
            for i in called.into_iter().filter(|i| *i < last && hooks[*i].reinvoke) {
                self.call(a, &hooks[i], mutating, warnings).await?;
            }
        }
        Ok(mutated_after.is_some())
    }

    /// One webhook, if it applies; whether it changed the object.
    async fn call(
        &self,
        a: &mut Admission<'_>,
        hook: &Webhook,
        mutating: bool,
        warnings: &mut Vec<String>,
    ) -> ApiResult<bool> {
        let t = a.t;
        let request = admission::Request {
            operation: a.operation,
            group: t.rt.group.clone(),
            version: t.version.clone(),
            resource: t.rt.plural.clone(),
            subresource: t.sub.map(|s| s.as_str().to_string()).unwrap_or_default(),
            namespace: t.namespace.clone(),
        };
        let Some(version) = admission::version_for(hook, &request, &t.rt.versions) else { return Ok(false) };
        let namespace = self.namespace_labels(&request, a);
        if !admission::selected(hook, &request, namespace.as_ref(), a.object.as_ref(), a.old.as_ref()) {
            return Ok(false);
        }
        if a.dry_run && !hook.dry_run_safe {
            return Err(admission::dry_run_unsupported(&hook.name));
        }
        let object = self.at_version(t, a.object.clone(), &version).await?;
        let old = self.at_version(t, a.old.clone(), &version).await?;
        let kind = if t.sub == Some(Sub::Scale) { "Scale" } else { t.rt.kind.as_str() };
        let uid = crate::meta::new_uid();
        let review = admission::review(&admission::Review {
            uid: &uid,
            request: &request,
            version: &version,
            kind,
            request_kind: (&t.rt.group, &t.version, kind),
            name: &a.name,
            user: a.user,
            object: object.as_ref(),
            old_object: old.as_ref(),
            dry_run: a.dry_run,
            options: a.options.clone(),
        });
        let verdict = match call(&self.services, &hook.client_config, &review, hook.timeout).await {
            Ok(answer) => admission::verdict(&hook.name, &uid, &answer)
                .map_err(|why| format!("received invalid webhook response: {why}")),
            Err(e) => Err(format!("failed to call webhook: {e}")),
        };
        let (patch, more) = match verdict {
            Ok(Verdict::Allowed { patch, warnings }) => (patch, warnings),
            Ok(Verdict::Denied(e)) => return Err(e),
            Err(why) if hook.fail_closed => return Err(admission::call_failed(&hook.name, &why)),
            Err(why) => {
                tracing::warn!(webhook = %hook.name, %why, "failed calling webhook, failing open");
                return Ok(false);
            }
        };
        warnings.extend(more);
        let (Some(patch), true, Some(object)) = (patch, mutating, object) else { return Ok(false) };
        let patched = crate::adapters::json_patch(&object, &patch)
            .map_err(|e| ApiError::internal(format!("Internal error occurred: {}", e.message)))?;
        if patched == object {
            return Ok(false);
        }
        a.object = self.at_version(t, Some(patched), &t.version).await?;
        Ok(true)
    }

    /// An object at `version` of the target's resource (converted when it is not).
    async fn at_version(&self, t: &Target, object: Option<Value>, version: &str) -> ApiResult<Option<Value>> {
        match object {
            Some(o) if version != t.version && t.sub.is_none() => Ok(Some(self.convert_one(&t.rt, o, version).await?)),
            other => Ok(other),
        }
    }

    /// What a namespaceSelector is matched against: the namespace's labels, or the labels of
    /// the namespace being written.
    fn namespace_labels(&self, r: &admission::Request, a: &Admission<'_>) -> Option<Value> {
        if r.group.is_empty() && r.resource == "namespaces" {
            return a.object.clone().or_else(|| a.old.clone());
        }
        if r.namespace.is_empty() {
            return None;
        }
        self.cluster.store.lock().get("/namespaces", "", &r.namespace).map(|ns| (*ns).clone())
    }
}
