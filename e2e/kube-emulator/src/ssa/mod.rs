//! Server-side apply and field ownership (`metadata.managedFields`), following kube-apiserver's field
//! manager over sigs.k8s.io/structured-merge-diff.
//!
//! The write pipeline calls [`apply`] for `application/apply-patch+yaml` patches and [`record_update`]
//! for every other write (create, update, patch). Both are pure: the caller handles resourceVersion,
//! uid, generation, timestamps, and the no-op check (an [`apply`] that changes nothing returns the live
//! object unchanged, `managedFields` and their times included).
//!
//! Differences from the apiserver, on purpose or for want of the Go types:
//! - a built-in object's create records `.` markers for structs the Go types would have had as zero
//!   values (the apiserver compares with a zero-valued object, the emulator with nothing);
//! - no cap of ten `Update` managers, no `last-applied-configuration` upgrade;
//! - a brand-new `Apply` entry whose apply changed nothing gets a time (the apiserver writes none).

mod fieldpath;
mod managed;
mod structure;
mod typed;

use serde_json::{Value, json};

pub use fieldpath::{FieldSet, Path, PathElement};
pub use structure::{ListType, MapType, Structure};

use managed::{APPLY, Entry, UPDATE};
use structure::{Node, Scope};

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as the apiserver prints it: `"kubectl"`, `"kubectl" using apps/v1`,
    /// `"ctrl" with subresource "status" using v1`.
    pub manager: String,
    /// The field path as smd prints it: `.spec.replicas`, `.spec.containers[name="app"].image`.
    pub field: String,
}

/// The 409 Conflict of an apply without force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ApplyConflicts {
    pub conflicts: Vec<Conflict>,
}

impl ApplyConflicts {
    /// The Status message, worded as the apiserver's `getConflictMessage`.
    pub fn message(&self) -> String {
        if let [only] = self.conflicts.as_slice() {
            return format!("Apply failed with 1 conflict: conflict with {}: {}", only.manager, only.field);
        }
        let mut managers: Vec<&str> = self.conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort_unstable();
        managers.dedup();
        let mut lines = Vec::new();
        for manager in managers {
            lines.push(format!("conflicts with {manager}:"));
            lines.extend(self.conflicts.iter().filter(|c| c.manager == manager).map(|c| format!("- {}", c.field)));
        }
        format!("Apply failed with {} conflicts: {}", self.conflicts.len(), lines.join("\n"))
    }

    /// `details.causes`: one `FieldManagerConflict` per field.
    pub fn causes(&self) -> Vec<Value> {
        self.conflicts
            .iter()
            .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field}))
            .collect()
    }
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change: 409 Conflict.
    #[error(transparent)]
    Conflicts(#[from] ApplyConflicts),
    /// The configuration is not an apply configuration (e.g. it sets managedFields): 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// The configuration or the live object cannot be typed (duplicate or missing list-map keys). The
    /// apiserver passes this through unconverted: 500 with an empty reason.
    #[error("{0}")]
    Untypable(String),
}

impl ApplyError {
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::BadRequest(_) => 400,
            ApplyError::Untypable(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::Conflicts(_) => "Conflict",
            ApplyError::BadRequest(_) => "BadRequest",
            ApplyError::Untypable(_) => "",
        }
    }

    /// `details.causes` of the Status body.
    pub fn causes(&self) -> Vec<Value> {
        match self {
            ApplyError::Conflicts(c) => c.causes(),
            _ => Vec::new(),
        }
    }
}

/// Server-side apply of `applied` (the decoded apply configuration) by `manager` onto `live` (None for a
/// create). Returns the new object with its `managedFields`.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
    structure: &Structure,
    now: &str,
) -> Result<Value, ApplyError> {
    if applied.pointer("/metadata/managedFields").is_some_and(|v| !v.is_null()) {
        return Err(ApplyError::BadRequest("metadata.managedFields must be nil".to_string()));
    }
    let root = structure.root();
    let scope = structure.scope(subresource);
    let api_version = api_version_of(applied);
    let live_object = live.map(managed::without_managed_fields).unwrap_or_else(|| json!({}));
    let untypable = |e: typed::TypeError| ApplyError::Untypable(typed_error(applied, "patch", &e.0));
    let applied_set = filter(scope, typed::field_set(applied, root).map_err(untypable)?);
    let mut entries = live.map(|l| entries_before_apply(l, &live_object, &api_version, root)).unwrap_or_default();

    let merged = typed::merge(Some(&live_object), applied, root, &Path::default()).map_err(untypable)?;
    let merged = reset_out_of_scope(scope, merged, &live_object);
    let mine = match entries.iter().position(|e| e.is(manager, APPLY, &api_version, subresource)) {
        Some(i) => i,
        None => {
            entries.push(Entry::new(manager, APPLY, &api_version, subresource));
            entries.len() - 1
        }
    };
    let previous = entries[mine].clone();
    entries[mine].set = applied_set;
    entries[mine].api_version = api_version;
    let merged = prune(merged, &previous.set, &entries, root);

    let comparison = typed::compare(Some(&live_object), Some(&merged), root);
    let changed = filter(scope, comparison.modified.union(&comparison.added));
    let removed = filter(scope, comparison.removed);
    let conflicts = conflicts_with_others(&entries, mine, &changed);
    if !force && !conflicts.is_empty() {
        return Err(ApplyConflicts { conflicts }.into());
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        if i != mine {
            entry.set = entry.set.difference(&changed).difference(&removed);
        }
    }
    let content_changed = merged != live_object;
    let mine_entry = &mut entries[mine];
    mine_entry.time = if content_changed || previous.set.is_empty() { Some(now.to_string()) } else { previous.time };
    Ok(finish(merged, entries))
}

/// Records a non-apply write (create when `old` is None, update, patch) by `manager`: it gets an `Update`
/// entry owning what it changed, and other managers lose what changed or went away. Never fails: an
/// object that cannot be typed loses its `managedFields`, as in the apiserver.
pub fn record_update(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: Option<&str>,
    structure: &Structure,
    now: &str,
) -> Value {
    let root = structure.root();
    let old_object = old.map(managed::without_managed_fields);
    let new_object = managed::without_managed_fields(new);
    let typable = |v: &Value| typed::typable(v, root);
    if !typable(&new_object) || old_object.as_ref().is_some_and(|o| !typable(o)) {
        return new_object;
    }
    let mut entries = entries_before_update(old, new, subresource);
    // The apiserver stops tracking an existing object whose managers were all removed.
    if entries.is_empty() && old.is_some_and(|o| o.pointer("/metadata/uid").is_some()) {
        return new_object;
    }
    let scope = structure.scope(subresource);
    let comparison = typed::compare(old_object.as_ref(), Some(&new_object), root);
    let changed = filter(scope, comparison.modified.union(&comparison.added));
    let removed = filter(scope, comparison.removed);
    for entry in &mut entries {
        entry.set = entry.set.difference(&changed).difference(&removed);
    }
    let taken = changed.difference(&managed::server_owned());
    if !taken.is_empty() {
        take_update_ownership(&mut entries, manager, &api_version_of(new), subresource, taken, now);
    }
    finish(new_object, entries)
}

fn take_update_ownership(
    entries: &mut Vec<Entry>,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    taken: FieldSet,
    now: &str,
) {
    let entry = match entries.iter().position(|e| e.is(manager, UPDATE, api_version, subresource)) {
        Some(i) => &mut entries[i],
        None => {
            entries.push(Entry::new(manager, UPDATE, api_version, subresource));
            let last = entries.len() - 1;
            &mut entries[last]
        }
    };
    entry.set = entry.set.union(&taken);
    entry.time = Some(now.to_string());
}

fn api_version_of(object: &Value) -> String {
    object.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Live entries for an apply. An object that has none gets one `before-first-apply` Update entry owning
/// everything, so the first applier conflicts with what was there (the apiserver does the same).
fn entries_before_apply(live: &Value, live_object: &Value, api_version: &str, root: Node<'_>) -> Vec<Entry> {
    match managed::decode(live) {
        Some(entries) if !entries.is_empty() => entries,
        _ => {
            let mut entry = Entry::new("before-first-apply", UPDATE, api_version, None);
            entry.set = typed::field_set(live_object, root).unwrap_or_default();
            vec![entry]
        }
    }
}

/// The apiserver's `decodeLiveOrNew`: a subresource write keeps the live entries; otherwise the request's
/// entries win when it sends some (`[]` or `[{}]` clearing them), else the live ones.
fn entries_before_update(old: Option<&Value>, new: &Value, subresource: Option<&str>) -> Vec<Entry> {
    let live = || old.and_then(managed::decode).unwrap_or_default();
    if subresource.is_some() {
        return live();
    }
    if managed::is_reset(new) {
        return Vec::new();
    }
    match managed::decode(new) {
        Some(entries) if !entries.is_empty() => entries,
        _ => live(),
    }
}

/// Restricts a field set to what the write's endpoint may own.
fn filter(scope: Scope, set: FieldSet) -> FieldSet {
    let status = PathElement::Field("status".to_string());
    match scope {
        Scope::Everything => set,
        Scope::AllButStatus => {
            let mut exclude = FieldSet::new();
            exclude.insert(&Path(vec![status]));
            set.without_prefixes(&exclude)
        }
        Scope::StatusOnly => set.only_under(&status),
    }
}

/// Puts back from the live object what the endpoint may not change (status on the main endpoint,
/// everything but status on /status), as the apiserver's strategies do.
fn reset_out_of_scope(scope: Scope, merged: Value, live: &Value) -> Value {
    let status_of = |v: &Value| v.get("status").cloned();
    let (mut base, status) = match scope {
        Scope::Everything => return merged,
        Scope::AllButStatus => (merged, status_of(live)),
        Scope::StatusOnly => (live.clone(), status_of(&merged)),
    };
    if let Some(map) = base.as_object_mut() {
        match status {
            Some(s) => map.insert("status".to_string(), s),
            None => map.remove("status"),
        };
    }
    base
}

/// Removes what the applier owned last time, no longer applies, and nobody else owns (smd `prune`).
fn prune(mut merged: Value, last_applied: &FieldSet, entries: &[Entry], root: Node<'_>) -> Value {
    if last_applied.is_empty() {
        return merged;
    }
    let owned = entries.iter().fold(FieldSet::new(), |acc, e| acc.union(&e.set)).with_fields_as_members();
    let to_remove = last_applied.with_fields_as_members().difference(&owned).difference(&managed::server_owned());
    typed::remove_paths(&mut merged, &to_remove, root, &Path::default());
    merged
}

fn conflicts_with_others(entries: &[Entry], mine: usize, changed: &FieldSet) -> Vec<Conflict> {
    let mut others: Vec<&Entry> = entries.iter().enumerate().filter(|(i, _)| *i != mine).map(|(_, e)| e).collect();
    others.sort_by_key(|e| e.printable());
    others
        .into_iter()
        .flat_map(|e| {
            let manager = e.printable();
            e.set
                .intersection(changed)
                .paths()
                .into_iter()
                .map(move |p| Conflict { manager: manager.clone(), field: p.to_string() })
        })
        .collect()
}

/// Strips server-owned paths, drops empty entries and writes `managedFields`.
fn finish(mut object: Value, mut entries: Vec<Entry>) -> Value {
    let server_owned = managed::server_owned();
    for entry in &mut entries {
        entry.set = entry.set.difference(&server_owned);
    }
    entries.retain(|e| !e.set.is_empty());
    managed::write(&mut object, &entries);
    object
}

/// The apiserver's "failed to create typed patch object (ns/name; group/version, Kind=K): ..." message.
fn typed_error(object: &Value, what: &str, detail: &str) -> String {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let api_version = text("/apiVersion");
    let group_version = if api_version.contains('/') { api_version.to_string() } else { format!("/{api_version}") };
    format!(
        "failed to create typed {what} object ({}/{}; {group_version}, Kind={}): {detail}",
        text("/metadata/namespace"),
        text("/metadata/name"),
        text("/kind")
    )
}

#[cfg(test)]
mod tests;
