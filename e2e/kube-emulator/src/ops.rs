//! The write pipeline and reads: decode -> patch -> status/generation rules -> schema ->
//! managed fields -> no-op check -> commit. A write is computed outside the store's lock and
//! committed under it only if its object is still the one it was computed from (else computed
//! again), so a read-modify-write is atomic, writes to different objects are computed in
//! parallel, and the RV order equals the commit order. Deletions run under the lock.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::adapters;
use crate::crd;
use crate::errors::{ApiError, ApiResult, Cause, success_status};
use crate::meta::{self, finalizers, is_deleting, meta_mut, meta_str, resource_version};
use crate::registry::{GenerationRule, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{State, Store};
use crate::validation;

/// The cluster's API semantics: store + registry, the write pipeline and reads; shared by the
/// HTTP layer and in-process controllers. Test instruments and the control plane are the
/// `Emulator`'s, not the cluster's.
#[derive(Debug, Default)]
pub struct Cluster {
    pub store: Store,
    /// Milliseconds between watch bookmarks (0 = the default of 15 s).
    bookmark_ms: std::sync::atomic::AtomicU64,
}

/// Whether a write still has to be recorded in managedFields (applies record themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Managed {
    Record,
    Applied,
}

/// A subresource of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Status,
    Scale,
    Finalize,
    /// pods/eviction (`crate::pods`).
    Eviction,
    /// pods/resize (`crate::pods`).
    Resize,
}

impl Sub {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Scale => "scale",
            Self::Finalize => "finalize",
            Self::Eviction => "eviction",
            Self::Resize => "resize",
        }
    }
}

/// What a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: Arc<ResourceType>,
    pub version: String,
    /// "" for cluster-scoped types and cluster-wide lists.
    pub namespace: String,
    pub name: String,
    pub sub: Option<Sub>,
}

impl Target {
    fn subject(&self) -> crate::errors::Subject<'_> {
        self.rt.subject(&self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    Warn,
    #[default]
    Strict,
}

/// Options shared by all writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub field_manager: Option<String>,
    pub dry_run: bool,
    pub force: bool,
    /// None: the server default (Warn for unknown fields is what the real server does).
    pub field_validation: Option<FieldValidation>,
    /// The stored object as the request's version shows it, when a conversion webhook converted
    /// it (None: the stored object with its apiVersion rewritten, i.e. conversion `None`).
    pub seen: Option<Arc<Value>>,
}

/// A create, update or patch, as a request asks for it.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Create(Value),
    Replace(Value),
    Patch(PatchKind, Value),
}

impl WriteOp {
    /// Whether the request itself names the resourceVersion it expects (a conflict is then its
    /// own, not one to retry).
    pub fn names_resource_version(&self) -> bool {
        let body = match self {
            WriteOp::Create(b) | WriteOp::Replace(b) | WriteOp::Patch(_, b) => b,
        };
        body.pointer("/metadata/resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty())
            || body.as_array().is_some_and(|ops| ops.iter().any(|op| op["path"] == "/metadata/resourceVersion"))
    }
}

impl WriteOptions {
    pub fn manager(name: &str) -> Self {
        Self { field_manager: Some(name.to_string()), ..Self::default() }
    }
}

/// The result of a write: the object as the client asked for it, plus warnings.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

/// Query of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub label_selector: String,
    pub field_selector: String,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// Parsed selectors plus namespace: decides which stored objects a list or watch sees.
#[derive(Debug, Clone)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn new(t: &Target, label_selector: &str, field_selector: &str) -> ApiResult<Self> {
        let supported = supported_fields(&t.rt, &t.version);
        Ok(Self {
            namespace: (!t.namespace.is_empty()).then(|| t.namespace.clone()),
            labels: LabelSelector::parse(label_selector)?,
            fields: FieldSelector::parse(field_selector, &supported, &t.rt.kind)?,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|n| meta_str(obj, "namespace") == n)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

/// Field selector names a type supports besides metadata.name/namespace.
fn supported_fields(rt: &ResourceType, version: &str) -> Vec<String> {
    let fixed: &[&str] = match (rt.group.as_str(), rt.plural.as_str()) {
        (_, "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        _ => &[],
    };
    let mut out: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
    if let Some(v) = rt.version_info.get(version) {
        out.extend(v.selectable_fields.iter().cloned());
    }
    out
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// The namespaces that exist in every cluster.
pub const BOOT_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

impl Cluster {
    /// A cluster with the four boot namespaces.
    pub fn new() -> Arc<Self> {
        Self::with_history(crate::store::DEFAULT_HISTORY)
    }

    pub fn with_history(history: usize) -> Arc<Self> {
        let cluster = Arc::new(Self { store: Store::new(history), bookmark_ms: Default::default() });
        for ns in BOOT_NAMESPACES {
            // Cannot fail on an empty store.
            let _ = cluster.create_builtin("", "v1", "namespaces", "", json!({"metadata": {"name": ns}}));
        }
        cluster
    }

    /// How often watches send a BOOKMARK.
    pub fn bookmark_interval(&self) -> std::time::Duration {
        match self.bookmark_ms.load(std::sync::atomic::Ordering::Relaxed) {
            0 => std::time::Duration::from_secs(15),
            ms => std::time::Duration::from_millis(ms),
        }
    }

    pub fn set_bookmark_interval(&self, every: std::time::Duration) {
        self.bookmark_ms.store(every.as_millis().max(1) as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Creates a built-in object from in-process code (boot, controllers).
    pub fn create_builtin(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        body: Value,
    ) -> ApiResult<Written> {
        let t = self.target(group, version, plural, namespace, "")?;
        self.create(&t, body, &WriteOptions::default())
    }

    /// Resolves a type; 404 when nothing serves it.
    pub fn target(&self, group: &str, version: &str, plural: &str, namespace: &str, name: &str) -> ApiResult<Target> {
        let rt = self.store.lock().registry.lookup(group, version, plural).ok_or_else(ApiError::no_route)?;
        Ok(Target {
            rt,
            version: version.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            sub: None,
        })
    }

    // ---------------------------------------------------------------- reads

    pub fn get(&self, t: &Target) -> ApiResult<Value> {
        let st = self.store.lock();
        let live = st.get(t.rt.key(), &t.namespace, &t.name).ok_or_else(|| ApiError::not_found(t.subject()))?;
        match t.sub {
            Some(Sub::Scale) => scale_view(&t.rt, &t.version, &live),
            Some(Sub::Status) if !t.rt.has_status(&t.version) => Err(ApiError::no_route()),
            Some(Sub::Eviction) => {
                Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"))
            }
            _ => Ok(present(&t.rt, &t.version, &live)),
        }
    }

    pub fn list(&self, t: &Target, q: &ListQuery) -> ApiResult<ListPage> {
        let filter = Filter::new(t, &q.label_selector, &q.field_selector)?;
        let st = self.store.lock();
        let (snapshot, after) = match &q.continue_token {
            Some(tok) if !tok.is_empty() => decode_continue(tok, st.compacted)?,
            _ => (st.rv, None),
        };
        let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
        let limit = q.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let (kept, more) = st.page(t.rt.key(), ns, after.as_ref(), |o| filter.matches(o), limit);
        let page: Vec<Value> = kept.iter().map(|o| present(&t.rt, &t.version, o)).collect();
        let continue_token = if more {
            page.last().map(|o| encode_continue(snapshot, meta_str(o, "namespace"), meta_str(o, "name")))
        } else {
            None
        };
        let unfiltered = filter.labels.is_empty() && filter.fields.is_empty();
        Ok(ListPage {
            remaining: (more && unfiltered).then(|| {
                let last = kept.last().map(|o| (meta_str(o, "namespace").to_string(), meta_str(o, "name").to_string()));
                st.count_after(t.rt.key(), ns, last.as_ref())
            }),
            items: page,
            resource_version: snapshot,
            continue_token,
        })
    }

    /// The stored object a target addresses (at the storage version).
    pub fn stored(&self, t: &Target) -> Option<Arc<Value>> {
        self.store.lock().get(t.rt.key(), &t.namespace, &t.name)
    }

    // ---------------------------------------------------------------- writes
    //
    // A write is computed without the store's lock, against the stored object as it was when the
    // write began (its base), and stored only if the base is still what is stored: the
    // compare-and-swap of the real server's GuaranteedUpdate. A write that lost the race is
    // computed again from the new state, as the real server's is. The lock guards only the
    // compare and the commit, so writes to different objects are computed in parallel.

    /// Runs a create, update or patch.
    pub fn write(&self, t: &Target, op: &WriteOp, o: &WriteOptions) -> ApiResult<Written> {
        for _ in 0..COMMIT_ATTEMPTS {
            let draft = self.draft(t, op, o)?;
            if o.dry_run {
                return draft.written(t);
            }
            if let Some(written) = self.commit(t, draft)? {
                return Ok(written);
            }
        }
        Err(ApiError::stale(t.subject()))
    }

    /// Computes a write without storing it: what a dry run answers, and what admission sees.
    pub fn draft(&self, t: &Target, op: &WriteOp, o: &WriteOptions) -> ApiResult<Draft> {
        match op {
            WriteOp::Create(body) => self.draft_create(t, body.clone(), o, Managed::Record, Base::Absent),
            WriteOp::Replace(body) => {
                check_replace_names_rv(t, body)?;
                self.draft_change(t, o, Managed::Record, |_| Ok(body.clone()))
            }
            WriteOp::Patch(PatchKind::Apply, applied) => self.draft_apply(t, applied, o),
            WriteOp::Patch(kind, patch) => {
                if *kind == PatchKind::Strategic && t.rt.custom && t.sub != Some(Sub::Scale) {
                    return Err(ApiError::unsupported_patch_type());
                }
                let (group, k) = (t.rt.group.as_str(), t.rt.kind.as_str());
                self.draft_change(t, o, Managed::Record, |live| match kind {
                    PatchKind::Json => adapters::json_patch(live, patch),
                    PatchKind::Merge => adapters::checked_merge_patch(live, patch),
                    PatchKind::Strategic => adapters::strategic_merge_patch(live, patch, group, k),
                    PatchKind::Apply => unreachable_apply(),
                })
            }
        }
    }

    /// Computes `object` (a draft admission changed, or converted to the storage version when `t`
    /// is there) as the write of `draft`: the pipeline's rules run again against the same base;
    /// managedFields stay as they are.
    pub fn redraft(&self, t: &Target, object: Value, draft: &Draft, o: &WriteOptions) -> ApiResult<Draft> {
        match &draft.base {
            Base::Stored(base) if t.sub == Some(Sub::Scale) => self.draft_scale(t, o, base.clone(), |_| Ok(object)),
            Base::Stored(base) => self.draft_update(t, o, Managed::Applied, base.clone(), |_| Ok(object)),
            absent => self.draft_create(t, object, o, Managed::Applied, absent.clone()),
        }
    }

    /// Stores a draft if its base is still what is stored; None when it is not (the write must
    /// be computed again).
    pub fn commit(&self, t: &Target, draft: Draft) -> ApiResult<Option<Written>> {
        if !draft.changed {
            return draft.written(t).map(Some);
        }
        let stored = {
            let mut st = self.store.lock();
            self.commit_locked(&mut st, t, &draft.base, draft.object)?
        };
        let Some(stored) = stored else {
            return Ok(None);
        };
        Ok(Some(Written { object: answer(t, &stored)?, created: draft.created, warnings: draft.warnings }))
    }

    /// Stores `objects` as a backup of etcd holds them: each keeps its uid, creation time,
    /// generation, managedFields, owners and status; only its resourceVersion is new. Nothing is
    /// defaulted, validated or admitted: what an earlier server accepted is put back as it was,
    /// which is how an upgrade test starts from the objects an earlier release of a controller
    /// wrote. All at once, under one lock, as a restored etcd is whole when the controllers
    /// start: the garbage collector never sees a dependent before its owner.
    pub fn restore(&self, objects: Vec<(Target, Value)>) -> ApiResult<()> {
        let mut stored = Vec::with_capacity(objects.len());
        for (t, object) in objects {
            let mut obj = to_storage(&t.rt, &t.version, object)?;
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            let (namespace, name) = (meta_str(&obj, "namespace").to_string(), meta_str(&obj, "name").to_string());
            if name.is_empty() {
                return Err(ApiError::bad_request("a restored object needs metadata.name"));
            }
            stored.push((t.rt.key().to_string(), namespace, name, obj));
        }
        let mut st = self.store.lock();
        for (key, namespace, name, obj) in stored {
            st.put(&key, &namespace, &name, obj);
        }
        Ok(())
    }

    pub fn create(&self, t: &Target, body: Value, o: &WriteOptions) -> ApiResult<Written> {
        self.write(t, &WriteOp::Create(body), o)
    }

    /// PUT.
    pub fn replace(&self, t: &Target, body: Value, o: &WriteOptions) -> ApiResult<Written> {
        self.write(t, &WriteOp::Replace(body), o)
    }

    /// PUT under a lock already held (e.g. the eviction's update of a budget).
    pub(crate) fn replace_locked(
        &self,
        st: &mut State,
        t: &Target,
        body: Value,
        o: &WriteOptions,
    ) -> ApiResult<Written> {
        let base = st.get(t.rt.key(), &t.namespace, &t.name).ok_or_else(|| ApiError::not_found(t.subject()))?;
        let draft = self.draft_update(t, o, Managed::Record, base, |_| Ok(body))?;
        if !draft.changed {
            return draft.written(t);
        }
        let stored =
            self.commit_locked(st, t, &draft.base, draft.object)?.ok_or_else(|| ApiError::stale(t.subject()))?;
        Ok(Written { object: answer(t, &stored)?, created: false, warnings: draft.warnings })
    }

    pub fn patch(&self, t: &Target, kind: PatchKind, patch: &Value, o: &WriteOptions) -> ApiResult<Written> {
        self.write(t, &WriteOp::Patch(kind, patch.clone()), o)
    }

    /// Under the lock: the compare and the store. A create finds no object of its name (an
    /// apply's create that lost the race is computed again, as an update); an update finds its
    /// base still stored.
    fn commit_locked(
        &self,
        st: &mut State,
        t: &Target,
        base: &Base,
        change: Arc<Value>,
    ) -> ApiResult<Option<Arc<Value>>> {
        // A draft's object is its own until stored: taking it out of its Arc copies nothing.
        let change = Arc::unwrap_or_clone(change);
        match base {
            Base::Stored(base) => {
                let current = st.get(t.rt.key(), &t.namespace, &t.name);
                if !current.is_some_and(|c| Arc::ptr_eq(&c, base)) {
                    return Ok(None);
                }
                self.store_update(st, t, change).map(Some)
            }
            Base::Absent | Base::AbsentForApply => {
                let (namespace, name) =
                    (meta_str(&change, "namespace").to_string(), meta_str(&change, "name").to_string());
                if matches!(base, Base::AbsentForApply) && st.get(t.rt.key(), &namespace, &name).is_some() {
                    return Ok(None);
                }
                check_create(st, &t.rt, &namespace, &name, base)?;
                if t.rt.group == "apiextensions.k8s.io" {
                    crd::register(st, &change)?;
                }
                Ok(Some(st.put(t.rt.key(), &namespace, &name, change)))
            }
        }
    }

    fn draft_create(
        &self,
        t: &Target,
        body: Value,
        o: &WriteOptions,
        managed: Managed,
        base: Base,
    ) -> ApiResult<Draft> {
        if t.sub.is_some() {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        let mut obj = to_storage(&t.rt, &t.version, body)?;
        decodable(&t.rt, &t.version, &obj)?;
        if managed == Managed::Record && resource_version(&obj).is_some() {
            // The real storage layer refuses this with a plain error, i.e. a 500.
            return Err(ApiError::internal(
                "Internal error occurred: resourceVersion should not be set on objects to be created",
            ));
        }
        check_namespace(&t.rt, &t.namespace, &mut obj)?;
        let name = assign_name(&t.rt, &mut obj)?;
        let namespace = meta_str(&obj, "namespace").to_string();
        // Checked now for the error a client sees first, and again at the commit.
        check_create(&self.store.lock(), &t.rt, &namespace, &name, &base)?;
        init_metadata(&t.rt, &mut obj);
        crate::defaults::apply(&t.rt, &mut obj);
        crate::defaults::generate_job_selector(&t.rt, &mut obj);
        let mut causes = validation::name(&t.rt, &name);
        causes.extend(validation::labels_and_annotations(&obj));
        causes.extend(validation::workload_spec(&t.rt, &obj));
        causes.extend(validation::job_generated_selector(&t.rt, &obj));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&t.rt.kind_group(), &name, causes));
        }
        init_status(&t.rt, &t.version, &mut obj);
        crate::defaults::status_zero_values(&t.rt, &mut obj);
        let mut warnings = Vec::new();
        if t.rt.group == "apiextensions.k8s.io" {
            crd::prepare(&mut obj)?;
            add_finalizer(&mut obj, crd::CLEANUP_FINALIZER);
        } else if t.rt.custom {
            warnings = apply_schema(&t.rt, &t.version, &mut obj, None, o)?;
            if t.version != t.rt.storage_version {
                coerce_at(&t.rt, &t.rt.storage_version, &mut obj);
            }
        }
        if managed == Managed::Record {
            let manager = o.field_manager.as_deref().unwrap_or("unknown");
            obj = adapters::record_update(None, obj, manager, None, &t.rt, &t.version);
        }
        Ok(Draft { object: Arc::new(obj), changed: true, created: true, warnings, base })
    }

    fn draft_apply(&self, t: &Target, applied: &Value, o: &WriteOptions) -> ApiResult<Draft> {
        let manager = o.field_manager.clone().filter(|m| !m.is_empty()).ok_or_else(|| {
            // The real server words this as a PatchOptions validation error.
            ApiError::invalid(
                "PatchOptions.meta.k8s.io",
                "",
                vec![Cause::new("FieldValueRequired", "fieldManager", "Required value: is required for apply patch")],
            )
        })?;
        let sub = t.sub.map(Sub::as_str);
        let Some(base) = self.stored(t) else {
            if t.sub.is_some() {
                return Err(ApiError::not_found(t.subject()));
            }
            let mut obj = adapters::server_side_apply(None, applied, &manager, sub, o.force, &t.rt, &t.version)?;
            meta_mut(&mut obj).entry("name").or_insert_with(|| Value::String(t.name.clone()));
            let o = WriteOptions { field_manager: Some(manager), ..o.clone() };
            return self.draft_create(t, obj, &o, Managed::Applied, Base::AbsentForApply);
        };
        self.draft_update(t, o, Managed::Applied, base, |live| {
            adapters::server_side_apply(Some(live), applied, &manager, sub, o.force, &t.rt, &t.version)
        })
    }

    /// An update or a non-apply patch of the stored object: of its scale, or of itself.
    fn draft_change(
        &self,
        t: &Target,
        o: &WriteOptions,
        managed: Managed,
        make: impl FnOnce(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Draft> {
        let base = self.stored(t).ok_or_else(|| ApiError::not_found(t.subject()))?;
        if t.sub == Some(Sub::Scale) {
            return self.draft_scale(t, o, base, make);
        }
        self.draft_update(t, o, managed, base, make)
    }

    /// The write of one object: `make` turns the object (as the client sees it) into the
    /// desired one; the rules of the subresource, generation, deletion and no-op apply.
    fn draft_update(
        &self,
        t: &Target,
        o: &WriteOptions,
        managed: Managed,
        base: Arc<Value>,
        make: impl FnOnce(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Draft> {
        if t.sub == Some(Sub::Status) && !t.rt.has_status(&t.version) {
            return Err(ApiError::no_route());
        }
        // The rules below compare the old and the new object at the request's version (both
        // labelled with the storage version's apiVersion, as stored objects are).
        let live = match &o.seen {
            Some(seen) if resource_version(seen) != resource_version(&base) => {
                return Err(ApiError::stale(t.subject()));
            }
            Some(seen) => Arc::new(to_storage(&t.rt, &t.version, (**seen).clone())?),
            None => base.clone(),
        };
        let desired = make(&presented(&t.rt, &t.version, &live))?;
        let mut new = to_storage(&t.rt, &t.version, desired)?;
        decodable(&t.rt, &t.version, &new)?;
        check_identity(t, &new)?;
        if let Some(rv) = resource_version(&new)
            && Some(rv) != resource_version(&live)
        {
            return Err(ApiError::stale(t.subject()));
        }
        keep_allocated_service_ips(&t.rt, &live, &mut new);
        crate::defaults::apply(&t.rt, &mut new);
        self.apply_update_rules(t, &live, &mut new)?;
        crate::defaults::status_zero_values(&t.rt, &mut new);
        let mut causes = validation::labels_and_annotations(&new);
        causes.extend(validation::workload_spec(&t.rt, &new));
        causes.extend(validation::immutable_data(&t.rt, &live, &new));
        causes.extend(validation::immutable_spec(&t.rt, &live, &new));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&t.rt.kind_group(), &t.name, causes));
        }
        let mut warnings = Vec::new();
        if t.rt.group == "apiextensions.k8s.io" {
            crd::prepare(&mut new)?;
        } else if t.rt.custom && t.sub != Some(Sub::Finalize) {
            warnings = apply_schema(&t.rt, &t.version, &mut new, Some(&live), o)?;
            if t.version != t.rt.storage_version {
                coerce_at(&t.rt, &t.rt.storage_version, &mut new);
            }
        }
        let manager = o.field_manager.as_deref().unwrap_or("unknown");
        let mut new = match managed {
            Managed::Record => {
                adapters::record_update(Some(&live), new, manager, t.sub.map(Sub::as_str), &t.rt, &t.version)
            }
            Managed::Applied => new,
        };
        copy_rv(&live, &mut new);
        // A write that changes nothing is not a write: no RV bump, no watch event.
        let (object, changed) = if new == *live { (live, false) } else { (Arc::new(new), true) };
        Ok(Draft { object, changed, created: false, warnings, base: Base::Stored(base) })
    }

    /// Status separation, server-owned metadata, finalizer and generation rules.
    fn apply_update_rules(&self, t: &Target, live: &Value, new: &mut Value) -> ApiResult<()> {
        let has_status = t.rt.has_status(&t.version);
        match t.sub {
            Some(Sub::Status) => {
                // /status writes only status (and managedFields).
                let status = new.get("status").cloned();
                let managed = new.pointer("/metadata/managedFields").cloned();
                *new = live.clone();
                set_or_remove(new, "status", status);
                if let Some(m) = managed {
                    meta_mut(new).insert("managedFields".into(), m);
                }
            }
            Some(Sub::Finalize) => {
                // /finalize writes only spec.finalizers of a namespace.
                let fins = new.pointer("/spec/finalizers").cloned();
                *new = live.clone();
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    match fins {
                        Some(f) => spec.insert("finalizers".into(), f),
                        None => spec.remove("finalizers"),
                    };
                }
            }
            Some(Sub::Resize) => {
                let managed = new.pointer("/metadata/managedFields").cloned();
                *new = crate::pod_rules::resized(live, new)
                    .map_err(|causes| ApiError::invalid(&t.rt.kind_group(), &t.name, causes))?;
                if let Some(m) = managed {
                    meta_mut(new).insert("managedFields".into(), m);
                }
            }
            _ if has_status => set_or_remove(new, "status", live.get("status").cloned()),
            _ => {}
        }
        preserve_server_metadata(live, new);
        if is_deleting(live) {
            let old: Vec<String> = finalizers(live);
            let added: Vec<String> = finalizers(new).into_iter().filter(|f| !old.contains(f)).collect();
            if !added.is_empty() {
                let cause = Cause::new(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        added.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ")
                    ),
                );
                return Err(ApiError::invalid(&t.rt.kind_group(), &t.name, vec![cause]));
            }
        }
        if generation_changed(t.rt.generation, has_status, live, new) {
            let g = live.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            meta_mut(new).insert("generation".into(), json!(g + 1));
        }
        Ok(())
    }

    /// Stores an updated object, or removes it when its deletion is complete.
    fn store_update(&self, st: &mut State, t: &Target, new: Value) -> ApiResult<Arc<Value>> {
        let (ns, name) = (t.namespace.as_str(), t.name.as_str());
        if t.rt.group == "apiextensions.k8s.io" {
            crd::register(st, &new)?;
        }
        if is_deleting(&new) && finalizers(&new).is_empty() && !namespace_holds(&t.rt, &new) {
            let gone = self.remove_locked(st, &t.rt, ns, name);
            return gone.ok_or_else(|| ApiError::not_found(t.subject()));
        }
        Ok(st.put(t.rt.key(), ns, name, new))
    }

    /// Removes an object for good, with the side effects of its kind.
    fn remove_locked(&self, st: &mut State, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let gone = st.remove(rt.key(), ns, name)?;
        if rt.group == "apiextensions.k8s.io" {
            crd::unregister(st, &gone);
        }
        if rt.custom {
            self.maybe_finish_crd(st, &format!("{}.{}", rt.plural, rt.group));
        }
        if !ns.is_empty() {
            self.maybe_finish_namespace(st, ns);
        }
        Some(gone)
    }

    // ---------------------------------------------------------------- deletes

    /// DELETE of one object. Answers the object (still present or last state) or a Status.
    pub fn delete(&self, t: &Target, opts: &Value, o: &WriteOptions) -> ApiResult<Value> {
        let mut st = self.store.lock();
        self.delete_locked(&mut st, t, opts, o)
    }

    pub(crate) fn delete_locked(&self, st: &mut State, t: &Target, opts: &Value, o: &WriteOptions) -> ApiResult<Value> {
        if t.sub.is_some() {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        let live = st.get(t.rt.key(), &t.namespace, &t.name).ok_or_else(|| ApiError::not_found(t.subject()))?;
        check_preconditions(t, &live, opts)?;
        let mut new = (*live).clone();
        match opts.get("propagationPolicy").and_then(Value::as_str) {
            Some("Foreground") => add_finalizer(&mut new, "foregroundDeletion"),
            Some("Orphan") => add_finalizer(&mut new, "orphan"),
            _ => {}
        }
        let is_ns = t.rt.group.is_empty() && t.rt.plural == "namespaces";
        if finalizers(&new).is_empty() && !is_ns {
            if o.dry_run {
                return Ok(present(&t.rt, &t.version, &live));
            }
            let gone =
                self.remove_locked(st, &t.rt, &t.namespace, &t.name).ok_or_else(|| ApiError::not_found(t.subject()))?;
            return Ok(deleted_answer(t, &gone));
        }
        if !is_deleting(&new) {
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if let Some(g) = m.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
                m.insert("generation".into(), json!(g + 1));
            }
            if is_ns {
                new["status"]["phase"] = json!("Terminating");
            }
        }
        if new == *live || o.dry_run {
            return Ok(present(&t.rt, &t.version, &new));
        }
        let stored = st.put(t.rt.key(), &t.namespace, &t.name, new);
        if t.rt.group == "apiextensions.k8s.io" && !is_deleting(&live) {
            self.terminate_crd(st, &stored);
            let now = st.get(t.rt.key(), "", &t.name).unwrap_or(stored);
            return Ok(present(&t.rt, &t.version, &now));
        }
        if is_ns {
            self.terminate_namespace(st, &t.name);
            let now = st.get(t.rt.key(), "", &t.name).unwrap_or(stored);
            return Ok(present(&t.rt, &t.version, &now));
        }
        Ok(present(&t.rt, &t.version, &stored))
    }

    /// DELETE of a collection: each matching object as a single delete.
    pub fn delete_collection(&self, t: &Target, q: &ListQuery, opts: &Value, o: &WriteOptions) -> ApiResult<Value> {
        let filter = Filter::new(t, &q.label_selector, &q.field_selector)?;
        let mut st = self.store.lock();
        let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
        let victims: Vec<Arc<Value>> =
            st.list(t.rt.key(), ns, None).into_iter().filter(|o| filter.matches(o)).collect();
        let mut items = Vec::new();
        for v in victims {
            let one = Target {
                namespace: meta_str(&v, "namespace").to_string(),
                name: meta_str(&v, "name").to_string(),
                ..t.clone()
            };
            self.delete_locked(&mut st, &one, opts, o)?;
            items.push(present(&t.rt, &t.version, &v));
        }
        Ok(json!({
            "kind": t.rt.list_kind, "apiVersion": t.rt.api_version(&t.version),
            "metadata": {"resourceVersion": st.rv.to_string()}, "items": items,
        }))
    }

    // ---------------------------------------------------------------- namespaces

    /// The namespace controller's job, done at once: delete everything in a terminating
    /// namespace (objects with finalizers stay until those are removed).
    fn terminate_namespace(&self, st: &mut State, ns: &str) {
        for (storage, name) in st.keys_in_namespace(ns) {
            let Some(rt) = st.registry.by_storage(&storage) else { continue };
            let t = Target { version: rt.storage_version.clone(), rt, namespace: ns.to_string(), name, sub: None };
            let _ = self.delete_locked(st, &t, &json!({"propagationPolicy": "Background"}), &WriteOptions::default());
        }
        self.maybe_finish_namespace(st, ns);
    }

    /// Removes a terminating namespace once it is empty.
    fn maybe_finish_namespace(&self, st: &mut State, ns: &str) {
        let Some(obj) = st.get("/namespaces", "", ns) else { return };
        if !is_deleting(&obj) || st.count_in_namespace(ns) > 0 {
            return;
        }
        // The namespace controller's own finalizer goes once the namespace is empty; others
        // (spec.finalizers via /finalize, metadata.finalizers) still hold it.
        let mut new = (*obj).clone();
        if let Some(f) = new.pointer_mut("/spec/finalizers").and_then(Value::as_array_mut) {
            f.retain(|x| x != "kubernetes");
        }
        let spec_done = new.pointer("/spec/finalizers").and_then(Value::as_array).is_none_or(|a| a.is_empty());
        if spec_done && finalizers(&new).is_empty() {
            st.remove("/namespaces", "", ns);
        } else if new != *obj {
            st.put("/namespaces", "", ns, new);
        }
    }

    // ---------------------------------------------------------------- CRDs

    /// The apiextensions finalizer's job, done at once: mark the CRD Terminating and delete its
    /// objects (those with finalizers stay until released); the CRD goes when none remain.
    fn terminate_crd(&self, st: &mut State, crd_obj: &Value) {
        let mut marked = crd_obj.clone();
        crd::mark_terminating(&mut marked);
        let name = meta_str(&marked, "name").to_string();
        st.put("apiextensions.k8s.io/customresourcedefinitions", "", &name, marked);
        if let Some(rt) =
            crate::registry::from_crd(crd_obj).and_then(|t| st.registry.lookup(&t.group, &t.storage_version, &t.plural))
        {
            for obj in st.list(rt.key(), None, None) {
                let t = Target {
                    rt: rt.clone(),
                    version: rt.storage_version.clone(),
                    namespace: meta_str(&obj, "namespace").to_string(),
                    name: meta_str(&obj, "name").to_string(),
                    sub: None,
                };
                let _ = self.delete_locked(st, &t, &json!({}), &WriteOptions::default());
            }
        }
        self.maybe_finish_crd(st, &name);
    }

    /// Removes a terminating CRD once its objects are gone.
    fn maybe_finish_crd(&self, st: &mut State, crd_name: &str) {
        const KEY: &str = "apiextensions.k8s.io/customresourcedefinitions";
        let Some(obj) = st.get(KEY, "", crd_name) else { return };
        if !is_deleting(&obj) {
            return;
        }
        if let Some(rt) = crate::registry::from_crd(&obj)
            && !st.list(rt.key(), None, None).is_empty()
        {
            return;
        }
        let mut new = (*obj).clone();
        if let Some(f) = new.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
            f.retain(|x| x != crd::CLEANUP_FINALIZER);
        }
        if finalizers(&new).is_empty() {
            if let Some(rt) = st.registry.by_storage(KEY) {
                self.remove_locked(st, &rt, "", crd_name);
            }
        } else if new != *obj {
            st.put(KEY, "", crd_name, new);
        }
    }

    // ---------------------------------------------------------------- scale

    /// A write of an object's scale: `make` turns the Scale into the desired one, whose replicas
    /// the object takes.
    fn draft_scale(
        &self,
        t: &Target,
        o: &WriteOptions,
        base: Arc<Value>,
        make: impl FnOnce(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Draft> {
        let scale = make(&scale_view(&t.rt, &t.version, &base)?)?;
        let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
        let path = scale_paths(&t.rt, &t.version).ok_or_else(ApiError::no_route)?.0;
        let main = Target { sub: None, ..t.clone() };
        let draft = self.draft_update(&main, o, Managed::Record, base, |obj| {
            let mut obj = obj.clone();
            set_path(&mut obj, &path, replicas);
            Ok(obj)
        })?;
        Ok(Draft { warnings: Vec::new(), ..draft })
    }
}

/// What a draft was computed from, for the compare at its commit.
#[derive(Debug, Clone)]
enum Base {
    /// A create: it fails with AlreadyExists if the name is taken meanwhile.
    Absent,
    /// An apply's create: if the name is taken meanwhile, the apply is computed again as an update.
    AbsentForApply,
    /// An update of this stored object.
    Stored(Arc<Value>),
}

/// A write computed but not stored (see the writes section of [`Cluster`]).
#[derive(Debug, Clone)]
pub struct Draft {
    /// The object after the write, at the storage version: what to store if `changed`, else the
    /// object as it is.
    object: Arc<Value>,
    changed: bool,
    pub created: bool,
    pub warnings: Vec<String>,
    base: Base,
}

impl Draft {
    /// What the client is answered if the draft is stored as it is (a dry run's answer).
    pub fn written(&self, t: &Target) -> ApiResult<Written> {
        let object = answer(t, &self.object)?;
        Ok(Written { object, created: self.created, warnings: self.warnings.clone() })
    }
}

/// How many times a write is computed again after losing the race for its object.
const COMMIT_ATTEMPTS: usize = 100;

/// The object as the client asked for it: its version, or the Scale it addressed.
fn answer(t: &Target, obj: &Value) -> ApiResult<Value> {
    match t.sub {
        Some(Sub::Scale) => scale_view(&t.rt, &t.version, obj),
        _ => Ok(present(&t.rt, &t.version, obj)),
    }
}

/// A PUT of a custom resource names the resourceVersion it replaces.
fn check_replace_names_rv(t: &Target, body: &Value) -> ApiResult<()> {
    let named = body.pointer("/metadata/resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty());
    if named || !t.rt.custom || t.sub.is_some() {
        return Ok(());
    }
    let cause = Cause::new(
        "FieldValueInvalid",
        "metadata.resourceVersion",
        "Invalid value: 0x0: must be specified for an update",
    );
    Err(ApiError::invalid(&t.rt.kind_group(), &t.name, vec![cause]))
}

/// A create may proceed: its namespace is open, its name free (unless it is an apply's, which
/// becomes an update if the name is taken), its CRD not being deleted.
fn check_create(st: &State, rt: &ResourceType, namespace: &str, name: &str, base: &Base) -> ApiResult<()> {
    if rt.namespaced {
        check_namespace_open(st, namespace, rt, name)?;
    }
    if matches!(base, Base::Absent) && st.get(rt.key(), namespace, name).is_some() {
        return Err(ApiError::already_exists(rt.subject(name)));
    }
    if rt.custom {
        crd::check_not_terminating(st, rt)?;
    }
    Ok(())
}

fn unreachable_apply() -> ApiResult<Value> {
    Err(ApiError::internal("apply patches take the apply path"))
}

/// (spec replicas path, status replicas path, selector path) of a scalable type.
fn scale_paths(rt: &ResourceType, version: &str) -> Option<(String, String, Option<String>)> {
    if let Some(s) = rt.scale(version) {
        return Some((s.spec_replicas.clone(), s.status_replicas.clone(), s.label_selector.clone()));
    }
    (rt.group == "apps").then(|| (".spec.replicas".into(), ".status.replicas".into(), None))
}

/// The autoscaling/v1 Scale of an object.
fn scale_view(rt: &ResourceType, version: &str, obj: &Value) -> ApiResult<Value> {
    let (spec, status, selector) = scale_paths(rt, version).ok_or_else(ApiError::no_route)?;
    let selector = match selector {
        Some(p) => get_path(obj, &p).cloned().unwrap_or(json!("")),
        None => json!(selector_string(obj.pointer("/spec/selector/matchLabels"))),
    };
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    Ok(json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": get_path(obj, &spec).cloned().unwrap_or(json!(0))},
        "status": {"replicas": get_path(obj, &status).cloned().unwrap_or(json!(0)), "selector": selector},
    }))
}

fn selector_string(labels: Option<&Value>) -> String {
    labels
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn get_path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.trim_start_matches('.').split('.').try_fold(obj, |cur, k| cur.get(k))
}

fn set_path(obj: &mut Value, dotted: &str, v: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = dotted.trim_start_matches('.').split('.').collect();
    for (i, k) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else { return };
        if i == parts.len() - 1 {
            map.insert((*k).to_string(), v);
            return;
        }
        cur = map.entry(*k).or_insert_with(|| json!({}));
    }
}

fn set_or_remove(obj: &mut Value, key: &str, v: Option<Value>) {
    if let Some(map) = obj.as_object_mut() {
        match v {
            Some(v) => map.insert(key.to_string(), v),
            None => map.remove(key),
        };
    }
}

/// Namespaces stay while `spec.finalizers` (the namespace controller's) is non-empty.
fn namespace_holds(rt: &ResourceType, obj: &Value) -> bool {
    rt.group.is_empty()
        && rt.plural == "namespaces"
        && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

fn add_finalizer(obj: &mut Value, f: &str) {
    if finalizers(obj).iter().any(|x| x == f) {
        return;
    }
    let m = meta_mut(obj);
    let list = m.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(a) = list.as_array_mut() {
        a.push(json!(f));
    }
}

/// What a completed DELETE answers: the object for custom resources and pods, else a Status.
fn deleted_answer(t: &Target, gone: &Value) -> Value {
    if t.rt.custom || (t.rt.group.is_empty() && t.rt.plural == "pods") {
        present(&t.rt, &t.version, gone)
    } else {
        success_status(t.subject(), meta_str(gone, "uid"))
    }
}

fn check_preconditions(t: &Target, live: &Value, opts: &Value) -> ApiResult<()> {
    let Some(pre) = opts.get("preconditions") else { return Ok(()) };
    if let Some(uid) = pre.get("uid").and_then(Value::as_str)
        && uid != meta_str(live, "uid")
    {
        let why =
            format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta_str(live, "uid"));
        return Err(ApiError::conflict(t.subject(), &why));
    }
    if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str)
        && Some(rv) != resource_version(live)
    {
        let why = format!(
            "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
            resource_version(live).unwrap_or("")
        );
        return Err(ApiError::conflict(t.subject(), &why));
    }
    Ok(())
}

/// The body's apiVersion/kind must be the target's; the stored form carries the storage version.
fn to_storage(rt: &ResourceType, version: &str, mut obj: Value) -> ApiResult<Value> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body of the request was not a JSON object"));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && !av.is_empty()
        && av != rt.api_version(version)
        && rt.custom
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version(version)
        )));
    }
    if rt.group == "events.k8s.io" {
        obj = crate::events::to_core(obj);
    }
    let map = obj.as_object_mut().ok_or_else(|| ApiError::bad_request("not an object"))?;
    let api_version = if rt.storage == "/events" { "v1".to_string() } else { rt.api_version(&rt.storage_version) };
    map.insert("apiVersion".into(), json!(api_version));
    map.insert("kind".into(), json!(rt.kind));
    meta_mut(&mut obj);
    Ok(obj)
}

/// The stored object as the client asked for it (version, and the events.k8s.io shape).
/// A custom resource read at another version than its storage version is pruned and defaulted
/// against the schema of the version it is read at.
pub fn present(rt: &ResourceType, version: &str, obj: &Value) -> Value {
    let mut out = if rt.group == "events.k8s.io" { crate::events::from_core(obj.clone()) } else { obj.clone() };
    if let Some(map) = out.as_object_mut() {
        // An object stored at another version of a kind converted by a webhook (stored before
        // the storage version changed) keeps its version: the webhook converts it on the way
        // out, as the real server decodes each object from the version it was stored at.
        if stored_elsewhere(rt, map.get("apiVersion")) {
            return out;
        }
        map.insert("apiVersion".into(), json!(rt.api_version(version)));
        map.insert("kind".into(), json!(rt.kind));
    }
    if version != rt.storage_version {
        coerce_at(rt, version, &mut out);
    }
    out
}

/// [`present`] without a copy when the stored object already is what the client asked for.
pub fn presented<'a>(rt: &ResourceType, version: &str, obj: &'a Value) -> Cow<'a, Value> {
    let text = |key: &str| obj.get(key).and_then(Value::as_str);
    let as_stored = rt.group != "events.k8s.io"
        && version == rt.storage_version
        && text("kind") == Some(rt.kind.as_str())
        && text("apiVersion") == Some(rt.api_version(version).as_str());
    if as_stored { Cow::Borrowed(obj) } else { Cow::Owned(present(rt, version, obj)) }
}

/// The schema coercion of a conversion without a webhook (`strategy: None`): the object, its
/// apiVersion rewritten, is pruned and defaulted against the target version's structural schema
/// (apiextensions-apiserver `schemaCoercingConverter`), so a field only the other version
/// declares does not survive. Writes at another version are coerced to the storage version's
/// schema too, so the stored object holds only what that version declares.
fn coerce_at(rt: &ResourceType, version: &str, obj: &mut Value) {
    if !rt.custom || rt.conversion_webhook.is_some() {
        return;
    }
    if let Some(schema) = rt.version_info.get(version).and_then(|v| v.compiled.as_ref()) {
        adapters::prune(schema, obj);
        schema.apply_defaults(obj);
    }
}

/// What the real server cannot decode into the kind's Go type is a 400 before any validation
/// (apiserver handlers `transformDecodeError`); a Secret's data that is not base64 is the case
/// clients meet.
fn decodable(rt: &ResourceType, version: &str, obj: &Value) -> ApiResult<()> {
    match validation::secret_data(rt, obj) {
        Some(why) => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}",
            kind = rt.kind
        ))),
        None => Ok(()),
    }
}

/// Whether `api_version` names a served version of `rt` other than its storage version, for a
/// kind whose versions a webhook converts.
pub fn stored_elsewhere(rt: &ResourceType, api_version: Option<&Value>) -> bool {
    let Some(api_version) = api_version.and_then(Value::as_str) else { return false };
    rt.conversion_webhook.is_some()
        && api_version != rt.api_version(&rt.storage_version)
        && rt.version_info.keys().any(|v| rt.api_version(v) == api_version)
}

fn check_namespace(rt: &ResourceType, path_ns: &str, obj: &mut Value) -> ApiResult<()> {
    let body_ns = meta_str(obj, "namespace").to_string();
    let m = meta_mut(obj);
    if !rt.namespaced {
        m.remove("namespace");
        return Ok(());
    }
    if !body_ns.is_empty() && body_ns != path_ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    m.insert("namespace".into(), json!(path_ns));
    Ok(())
}

fn assign_name(rt: &ResourceType, obj: &mut Value) -> ApiResult<String> {
    let name = meta_str(obj, "name").to_string();
    if !name.is_empty() {
        return Ok(name);
    }
    let generate = meta_str(obj, "generateName").to_string();
    if generate.is_empty() {
        let cause =
            Cause::new("FieldValueRequired", "metadata.name", "Required value: name or generateName is required");
        return Err(ApiError::invalid(&rt.kind_group(), "", vec![cause]));
    }
    let name = format!("{generate}{}", meta::random_suffix());
    meta_mut(obj).insert("name".into(), json!(name));
    Ok(name)
}

fn check_namespace_open(st: &State, ns: &str, rt: &ResourceType, name: &str) -> ApiResult<()> {
    let Some(obj) = st.get("/namespaces", "", ns) else {
        return Err(ApiError::not_found(crate::errors::Subject { group: "", plural: "namespaces", name: ns }));
    };
    if is_deleting(&obj) {
        return Err(ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            rt.subject(name).qualified()
        ))
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": [{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {ns} is being terminated"),
            "field": "metadata.namespace"}]})));
    }
    Ok(())
}

/// uid, creationTimestamp, generation; clients cannot set deletion fields or the RV.
fn init_metadata(rt: &ResourceType, obj: &mut Value) {
    let m = meta_mut(obj);
    m.insert("uid".into(), json!(meta::new_uid()));
    m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
    for k in ["deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "generation", "selfLink"] {
        m.remove(k);
    }
    if rt.generation != GenerationRule::None {
        m.insert("generation".into(), json!(1));
    }
}

/// Status is not writable on create where a status subresource exists; some kinds start with one.
fn init_status(rt: &ResourceType, version: &str, obj: &mut Value) {
    if !rt.has_status(version) || rt.group == "apiextensions.k8s.io" {
        return;
    }
    let initial = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => {
            // The namespace controller's finalizer joins any the client set.
            let mut fins: Vec<Value> =
                obj.pointer("/spec/finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
            if !fins.contains(&json!("kubernetes")) {
                fins.push(json!("kubernetes"));
            }
            obj["spec"]["finalizers"] = Value::Array(fins);
            Some(json!({"phase": "Active"}))
        }
        ("", "pods") => Some(json!({"phase": "Pending", "qosClass": crate::pod_rules::qos_class(obj.get("spec"))})),
        ("", "persistentvolumeclaims") => Some(json!({"phase": "Pending"})),
        // pkg/registry/core/persistentvolume/strategy.go PrepareForCreate.
        ("", "persistentvolumes") => Some(json!({"phase": "Pending", "lastPhaseTransitionTime": meta::now_rfc3339()})),
        ("", "services") => Some(json!({"loadBalancer": {}})),
        _ if rt.custom => None,
        _ => Some(json!({})),
    };
    set_or_remove(obj, "status", initial);
}

/// Server-owned metadata is copied from the live object.
fn preserve_server_metadata(live: &Value, new: &mut Value) {
    let lm = live.get("metadata").cloned().unwrap_or(json!({}));
    let m = meta_mut(new);
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "name",
        "namespace",
    ] {
        match lm.get(k) {
            Some(v) => m.insert(k.to_string(), v.clone()),
            None => m.remove(k),
        };
    }
    m.remove("selfLink");
}

fn copy_rv(live: &Value, new: &mut Value) {
    if let Some(rv) = live.pointer("/metadata/resourceVersion") {
        meta_mut(new).insert("resourceVersion".into(), rv.clone());
    }
}

/// Body name/namespace must match the URL.
fn check_identity(t: &Target, new: &Value) -> ApiResult<()> {
    let name = meta_str(new, "name");
    if !name.is_empty() && name != t.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            t.name
        )));
    }
    let ns = meta_str(new, "namespace");
    if t.rt.namespaced && !ns.is_empty() && ns != t.namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn generation_changed(rule: GenerationRule, has_status: bool, live: &Value, new: &Value) -> bool {
    match rule {
        GenerationRule::None => false,
        GenerationRule::Spec => live.get("spec") != new.get("spec"),
        GenerationRule::SpecAndAnnotations => {
            live.get("spec") != new.get("spec")
                || live.pointer("/metadata/annotations") != new.pointer("/metadata/annotations")
        }
        GenerationRule::AllButMetadata => {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("metadata");
                    m.remove("apiVersion");
                    if has_status {
                        m.remove("status");
                    }
                }
                v
            };
            strip(live) != strip(new)
        }
    }
}

/// Pruning, defaulting and validation of a custom resource against its version's schema.
fn apply_schema(
    rt: &ResourceType,
    version: &str,
    obj: &mut Value,
    old: Option<&Value>,
    o: &WriteOptions,
) -> ApiResult<Vec<String>> {
    let Some(schema) = rt.version_info.get(version).and_then(|v| v.compiled.as_ref()) else {
        return Ok(Vec::new());
    };
    let unknown: Vec<String> = adapters::prune(schema, obj).iter().map(|u| format!("unknown field \"{u}\"")).collect();
    let mut warnings = Vec::new();
    match o.field_validation.unwrap_or(FieldValidation::Warn) {
        FieldValidation::Strict if !unknown.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                unknown.join(", "),
                kind = rt.kind
            )));
        }
        FieldValidation::Ignore => {}
        _ => warnings = unknown,
    }
    schema.apply_defaults(obj);
    let name = meta_str(obj, "name").to_string();
    let kg = rt.kind_group();
    if let Some((message, causes)) = adapters::validate(schema, &kg, &name, obj, old) {
        return Err(ApiError::invalid_with_message(&kg, &name, message, causes));
    }
    Ok(warnings)
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine;
    let raw = json!({"rv": rv, "ns": ns, "name": name}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(tok: &str, compacted: u64) -> ApiResult<(u64, Option<(String, String)>)> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid: illegal base64 data at input byte 0");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tok).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    if rv < compacted {
        return Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        ));
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok((rv, Some((s("ns"), s("name")))))
}

/// An update that omits a Service's allocated cluster IPs keeps them (as the real server does).
fn keep_allocated_service_ips(rt: &ResourceType, live: &Value, new: &mut Value) {
    if !(rt.group.is_empty() && rt.plural == "services") {
        return;
    }
    for key in ["clusterIP", "clusterIPs"] {
        if let (Some(v), Some(spec)) =
            (live.pointer(&format!("/spec/{key}")), new.get_mut("spec").and_then(Value::as_object_mut))
        {
            spec.entry(key).or_insert_with(|| v.clone());
        }
    }
}
