//! Walks over JSON values along a [`Structure`](super::Structure): the field set of a value, the merge of
//! an applied configuration into a live object, the comparison of two objects, and removal of paths.
//! Each follows structured-merge-diff's `typed` package.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, Path, PathElement, canonical_json};
use super::structure::{ListType, MapType, Node};

/// An object that cannot be typed (a list-map item without its key, duplicate keys). The message is
/// smd's, prefixed with the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeError(pub String);

type Items<'v> = Vec<(PathElement, &'v Value)>;

/// The path elements of a granular list's items, or None for an atomic list.
fn list_items<'v>(
    items: &'v [Value],
    node: &Node<'_>,
    path: &Path,
    strict: bool,
) -> Result<Option<Items<'v>>, TypeError> {
    let list_type = node.list_type();
    if list_type == ListType::Atomic {
        return Ok(None);
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pe = item_element(item, &list_type, node, path, i)?;
        // Live objects may hold duplicates (updates do not check them); they are kept, as smd keeps them.
        if !seen.insert(pe.clone()) && strict {
            return Err(TypeError(format!("{path}: duplicate entries for key {pe}")));
        }
        out.push((pe, item));
    }
    Ok(Some(out))
}

fn item_element(
    item: &Value,
    list_type: &ListType,
    node: &Node<'_>,
    path: &Path,
    i: usize,
) -> Result<PathElement, TypeError> {
    let ListType::Map(keys) = list_type else {
        return Ok(PathElement::Value(canonical_json(item)));
    };
    let mut key = Map::new();
    for name in keys {
        let value = match item.get(name) {
            Some(v) if !v.is_null() => v.clone(),
            _ => match node.key_default(name) {
                Some(default) => default,
                None => {
                    return Err(TypeError(format!(
                        "{path}: element {i}: associative list with keys has an element that omits key field \"{name}\" (and doesn't have default value)"
                    )));
                }
            },
        };
        key.insert(name.clone(), value);
    }
    Ok(PathElement::Key(canonical_json(&Value::Object(key))))
}

/// The paths a value sets (smd `ToFieldSet`): leaves, list items and map elements; not struct fields
/// that hold objects (not even empty ones).
pub(crate) fn field_set(value: &Value, node: Node<'_>) -> Result<FieldSet, TypeError> {
    let mut set = FieldSet::new();
    collect(value, node, &Path::default(), &mut set)?;
    Ok(set)
}

/// Whether [`field_set`] would succeed, without building the set: an update checks both of its
/// objects, and building their sets only to drop them was a third of the emulator's time.
pub(crate) fn typable(value: &Value, node: Node<'_>) -> bool {
    match value {
        Value::Object(map) if node.map_type() == MapType::Granular => {
            map.iter().all(|(name, child)| typable(child, node.field(name)))
        }
        Value::Array(items) => match list_items(items, &node, &Path::default(), true) {
            Err(_) => false,
            Ok(None) => true,
            Ok(Some(items)) => {
                items.iter().all(|(pe, item)| matches!(pe, PathElement::Value(_)) || typable(item, node.item()))
            }
        },
        _ => true,
    }
}

fn collect(value: &Value, node: Node<'_>, path: &Path, set: &mut FieldSet) -> Result<(), TypeError> {
    match value {
        Value::Object(map) if node.map_type() == MapType::Granular => {
            for (name, child) in map {
                let child_path = path.child(PathElement::Field(name.clone()));
                collect(child, node.field(name), &child_path, set)?;
                if !node.declares(name) {
                    set.insert(&child_path);
                }
            }
        }
        Value::Array(items) => match list_items(items, &node, path, true)? {
            None => set.insert(path),
            Some(items) => {
                for (pe, item) in items {
                    let item_path = path.child(pe);
                    if !matches!(item_path.0.last(), Some(PathElement::Value(_))) {
                        collect(item, node.item(), &item_path, set)?;
                    }
                    set.insert(&item_path);
                }
            }
        },
        _ => set.insert(path),
    }
    Ok(())
}

/// Merges an applied configuration into the live object (smd `Merge`): granular maps merge member by
/// member, granular lists item by item in smd's order, everything else is replaced. A `null` in the
/// configuration removes the member.
pub(crate) fn merge(live: Option<&Value>, applied: &Value, node: Node<'_>, path: &Path) -> Result<Value, TypeError> {
    match (live, applied) {
        (Some(Value::Object(l)), Value::Object(a)) if node.map_type() == MapType::Granular => {
            let mut out = l.clone();
            for (name, child) in a {
                if child.is_null() {
                    out.remove(name);
                    continue;
                }
                let child_path = path.child(PathElement::Field(name.clone()));
                let merged = merge(l.get(name), child, node.field(name), &child_path)?;
                out.insert(name.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Some(Value::Array(l)), Value::Array(a)) => merge_lists(l, a, node, path),
        (_, a) => Ok(strip_nulls(a)),
    }
}

fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn merge_lists(live: &[Value], applied: &[Value], node: Node<'_>, path: &Path) -> Result<Value, TypeError> {
    let Some(rhs) = list_items(applied, &node, path, true)? else {
        return Ok(Value::Array(applied.to_vec()));
    };
    let lhs = list_items(live, &node, path, false)?.unwrap_or_default();
    let merge_item = |l: Option<&Value>, r: &Value, pe: &PathElement| match pe {
        PathElement::Value(_) => Ok(r.clone()),
        _ => merge(l, r, node.item(), &path.child(pe.clone())),
    };
    Ok(Value::Array(ordered_merge(&lhs, &rhs, merge_item)?))
}

/// smd's `visitListItems` order: live items keep their places, items shared with the configuration
/// follow the configuration's order, new items go where the configuration puts them.
fn ordered_merge<F>(lhs: &Items<'_>, rhs: &Items<'_>, merge_item: F) -> Result<Vec<Value>, TypeError>
where
    F: Fn(Option<&Value>, &Value, &PathElement) -> Result<Value, TypeError>,
{
    let observed_lhs: BTreeMap<&PathElement, &Value> = lhs.iter().map(|(pe, v)| (pe, *v)).collect();
    let observed_rhs: BTreeSet<&PathElement> = rhs.iter().map(|(pe, _)| pe).collect();
    let mut shared = rhs.iter().map(|(pe, _)| pe).filter(|pe| observed_lhs.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let (lpe, lval) = &lhs[li];
            let (rpe, rval) = &rhs[ri];
            if lpe == rpe {
                merged_rhs.insert(rpe);
                out.push(merge_item(Some(lval), rval, rpe)?);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if observed_rhs.contains(lpe) && next_shared.is_some_and(|n| n != lpe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let (lpe, lval) = &lhs[li];
            if !observed_rhs.contains(lpe) {
                out.push((*lval).clone());
                li += 1;
                continue;
            }
            if merged_rhs.contains(lpe) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let (rpe, rval) = &rhs[ri];
            merged_rhs.insert(rpe);
            out.push(merge_item(observed_lhs.get(rpe).copied(), rval, rpe)?);
            ri += 1;
            if next_shared == Some(rpe) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

/// What changed between two objects (smd `Compare`): leaves that differ are modified; every node only on
/// one side (leaf or not) is added or removed.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

pub(crate) fn compare(old: Option<&Value>, new: Option<&Value>, node: Node<'_>) -> Comparison {
    let mut out = Comparison::default();
    compare_at(old, new, node, &Path::default(), &mut out);
    out
}

fn compare_at(old: Option<&Value>, new: Option<&Value>, node: Node<'_>, path: &Path, out: &mut Comparison) {
    if old.is_some() && old == new {
        // Nothing below differs (an update mostly changes one subtree, e.g. status).
        return;
    }
    let (old_children, new_children) =
        match (old.map(|v| children(v, &node, path)), new.map(|v| children(v, &node, path))) {
            (None, None) => return,
            (Some(None), _) | (_, Some(None)) => {
                // A leaf on at least one side.
                record_leaf(old, new, path, out);
                return;
            }
            (Some(Some(o)), None) => (o, Vec::new()),
            (None, Some(Some(n))) => (Vec::new(), n),
            (Some(Some(o)), Some(Some(n))) => (o, n),
        };
    if old.is_some_and(Value::is_array) != new.is_some_and(Value::is_array) && old.is_some() && new.is_some() {
        out.modified.insert(path);
        return;
    }
    let old_map: BTreeMap<&PathElement, (&Value, Node<'_>)> =
        old_children.iter().map(|(pe, v, n)| (pe, (*v, *n))).collect();
    let new_map: BTreeMap<&PathElement, (&Value, Node<'_>)> =
        new_children.iter().map(|(pe, v, n)| (pe, (*v, *n))).collect();
    let all: BTreeSet<&PathElement> = old_map.keys().chain(new_map.keys()).copied().collect();
    for pe in all {
        let o = old_map.get(pe);
        let n = new_map.get(pe);
        let child_node = o.or(n).map(|(_, node)| *node).unwrap_or(node);
        compare_at(o.map(|(v, _)| *v), n.map(|(v, _)| *v), child_node, &path.child(pe.clone()), out);
    }
    match (old, new) {
        (None, Some(_)) if !path.0.is_empty() => out.added.insert(path),
        (Some(_), None) if !path.0.is_empty() => out.removed.insert(path),
        _ => {}
    }
}

fn record_leaf(old: Option<&Value>, new: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(o), Some(n)) if o != n => out.modified.insert(path),
        _ => {}
    }
}

type Children<'v, 'n> = Vec<(PathElement, &'v Value, Node<'n>)>;

/// The children of a non-leaf value; None for a leaf (scalar, atomic map or list, list that cannot be
/// keyed).
fn children<'v, 'n>(value: &'v Value, node: &Node<'n>, path: &Path) -> Option<Children<'v, 'n>> {
    match value {
        Value::Object(map) if node.map_type() == MapType::Granular => {
            Some(map.iter().map(|(k, v)| (PathElement::Field(k.clone()), v, node.field(k))).collect())
        }
        Value::Array(items) => {
            let keyed = list_items(items, node, path, false).ok()??;
            Some(keyed.into_iter().map(|(pe, v)| (pe, v, node.item())).collect())
        }
        _ => None,
    }
}

/// Removes the subtree at every member path of `paths` (smd `RemoveItems`).
pub(crate) fn remove_paths(value: &mut Value, paths: &FieldSet, node: Node<'_>, path: &Path) {
    match value {
        Value::Object(map) if node.map_type() == MapType::Granular => {
            map.retain(|name, _| !paths.has_member(&PathElement::Field(name.clone())));
            for (name, child) in map.iter_mut() {
                let pe = PathElement::Field(name.clone());
                if let Some(deeper) = paths.child(&pe) {
                    remove_paths(child, deeper, node.field(name), &path.child(pe));
                }
            }
        }
        Value::Array(items) => {
            let Ok(Some(keyed)) = list_items(items, &node, path, false) else { return };
            let elements: Vec<PathElement> = keyed.into_iter().map(|(pe, _)| pe).collect();
            let mut kept = Vec::with_capacity(items.len());
            for (pe, mut item) in elements.into_iter().zip(std::mem::take(items)) {
                if paths.has_member(&pe) {
                    continue;
                }
                if let Some(deeper) = paths.child(&pe) {
                    remove_paths(&mut item, deeper, node.item(), &path.child(pe));
                }
                kept.push(item);
            }
            *items = kept;
        }
        _ => {}
    }
}
