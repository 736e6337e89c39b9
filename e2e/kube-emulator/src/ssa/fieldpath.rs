//! Field paths and field sets as structured-merge-diff (sigs.k8s.io/structured-merge-diff/v4 `fieldpath`)
//! models them, with the FieldsV1 wire encoding kube-apiserver writes into `managedFields`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path. The variant order is smd's ordering (fields, then keys, then values, then indices),
/// which is also the byte order of their FieldsV1 prefixes `f:`, `k:`, `v:`, `i:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// An object member: `f:<name>`.
    Field(String),
    /// A `listType=map` item, by its key fields as canonical JSON (`{"name":"x"}`, keys sorted): `k:<json>`.
    Key(String),
    /// A `listType=set` item, by its value as canonical JSON: `v:<json>`.
    Value(String),
    /// A list index: `i:<n>` (only ever decoded; atomic lists are owned whole).
    Index(usize),
}

impl PathElement {
    fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(json) => format!("k:{json}"),
            PathElement::Value(json) => format!("v:{json}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(text: &str) -> Option<PathElement> {
        let (prefix, rest) = text.split_at_checked(2)?;
        match prefix {
            "f:" => Some(PathElement::Field(rest.to_string())),
            "k:" => serde_json::from_str::<Value>(rest).ok().map(|v| PathElement::Key(canonical_json(&v))),
            "v:" => serde_json::from_str::<Value>(rest).ok().map(|v| PathElement::Value(canonical_json(&v))),
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }
}

/// smd's `PathElement.String()`: `.name`, `[name="x",port=80]`, `[="v"]`, `[3]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(json) => {
                let parsed: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                let parts: Vec<String> = parsed
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={}", go_value_string(v))).collect())
                    .unwrap_or_default();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(json) => {
                let parsed: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                write!(f, "[={}]", go_value_string(&parsed))
            }
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// smd's `value.ToString`: strings Go-quoted, other scalars as Go prints them.
fn go_value_string(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_value_string).collect::<Vec<_>>().join(",")),
        Value::Object(map) => {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", go_value_string(v))).collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// JSON with object keys sorted and no spaces, as Go's encoding/json writes smd keys.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            let members: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap_or_default(), canonical_json(v)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// A path from the object root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    pub fn field(names: &[&str]) -> Path {
        Path(names.iter().map(|n| PathElement::Field((*n).to_string())).collect())
    }

    pub fn child(&self, pe: PathElement) -> Path {
        let mut out = self.clone();
        out.0.push(pe);
        out
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|pe| write!(f, "{pe}"))
    }
}

/// A set of paths as a tree: `members` are paths ending here, `children` continue deeper.
/// A path can be both a member and have children (FieldsV1's `.` marker).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub fn insert(&mut self, path: &Path) {
        let Some((last, parents)) = path.0.split_last() else { return };
        let mut node = self;
        for pe in parents {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.members.insert(last.clone());
    }

    pub fn has(&self, path: &Path) -> bool {
        let Some((last, parents)) = path.0.split_last() else { return false };
        let mut node = self;
        for pe in parents {
            match node.children.get(pe) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// The members of the subtree under `pe` (for walking a value alongside a set).
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Members of `self` that are not members of `other` (smd `Difference`: exact paths only).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.iter().filter(|pe| !other.members.contains(pe)).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, child)| match other.children.get(pe) {
                Some(theirs) => (pe.clone(), child.difference(theirs)),
                None => (pe.clone(), child.clone()),
            })
            .filter(|(_, child)| !child.is_empty())
            .collect();
        FieldSet { members, children }
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| other.children.get(pe).map(|theirs| (pe.clone(), child.intersection(theirs))))
            .filter(|(_, child)| !child.is_empty())
            .collect();
        FieldSet { members, children }
    }

    /// Removes every path at or under the paths of `prefixes` (smd `RecursiveDifference` of an exclude set).
    pub fn without_prefixes(&self, prefixes: &FieldSet) -> FieldSet {
        let members = self.members.iter().filter(|pe| !prefixes.members.contains(pe)).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !prefixes.members.contains(pe))
            .map(|(pe, child)| match prefixes.children.get(pe) {
                Some(deeper) => (pe.clone(), child.without_prefixes(deeper)),
                None => (pe.clone(), child.clone()),
            })
            .filter(|(_, child)| !child.is_empty())
            .collect();
        FieldSet { members, children }
    }

    /// Only the paths at or under `prefix`.
    pub fn only_under(&self, prefix: &PathElement) -> FieldSet {
        let mut out = FieldSet::new();
        if self.members.contains(prefix) {
            out.members.insert(prefix.clone());
        }
        if let Some(child) = self.children.get(prefix) {
            out.children.insert(prefix.clone(), child.clone());
        }
        out
    }

    /// Makes every field that has children a member too (smd `EnsureNamedFieldsAreMembers`), so that a
    /// struct whose owned members all went away can itself be pruned.
    pub fn with_fields_as_members(&self) -> FieldSet {
        let mut out = self.clone();
        for (pe, child) in &self.children {
            if matches!(pe, PathElement::Field(_)) {
                out.members.insert(pe.clone());
            }
            out.children.insert(pe.clone(), child.with_fields_as_members());
        }
        out
    }

    /// Every member path, members of a node before its children, in order (smd `Set.Iterate`).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&Path::default(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &Path, out: &mut Vec<Path>) {
        out.extend(self.members.iter().map(|pe| prefix.child(pe.clone())));
        for (pe, child) in &self.children {
            child.collect_paths(&prefix.child(pe.clone()), out);
        }
    }

    /// FieldsV1 encoding: `{"f:spec":{"f:replicas":{}}}`, `.` marking a member that also has children.
    pub fn to_fields_v1(&self) -> Value {
        let mut entries: BTreeMap<&PathElement, Value> = BTreeMap::new();
        for pe in &self.members {
            entries.insert(pe, Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            let mut encoded = match child.to_fields_v1() {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            if self.members.contains(pe) {
                // `.` sorts before every `x:` key; rebuild so insertion order is sorted order too.
                let mut with_self = Map::new();
                with_self.insert(".".to_string(), Value::Object(Map::new()));
                with_self.append(&mut encoded);
                encoded = with_self;
            }
            entries.insert(pe, Value::Object(encoded));
        }
        Value::Object(entries.into_iter().map(|(pe, v)| (pe.encode(), v)).collect())
    }

    /// Decodes FieldsV1; None if it is not a valid encoding.
    pub fn from_fields_v1(value: &Value) -> Option<FieldSet> {
        let mut out = FieldSet::new();
        for (key, child) in value.as_object()? {
            if key == "." {
                continue;
            }
            let pe = PathElement::decode(key)?;
            let child_map = child.as_object()?;
            if child_map.is_empty() || child_map.contains_key(".") {
                out.members.insert(pe.clone());
            }
            let decoded = FieldSet::from_fields_v1(child)?;
            if !decoded.is_empty() {
                out.children.insert(pe, decoded);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(json: &str) -> PathElement {
        PathElement::Key(json.to_string())
    }

    #[test]
    fn fields_v1_round_trips_with_dot_markers() {
        let encoded = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}},
                       "f:finalizers": {"v:\"a\"": {}}}
        });
        let set = FieldSet::from_fields_v1(&encoded).unwrap();
        assert!(set.has(&Path::field(&["metadata", "labels"])));
        assert!(set.has(&Path::field(&["spec", "containers"]).child(key("{\"name\":\"app\"}"))));
        assert!(!set.has(&Path::field(&["spec"])));
        assert_eq!(set.to_fields_v1(), encoded);
    }

    #[test]
    fn paths_print_like_structured_merge_diff() {
        let path = Path::field(&["spec", "ports"])
            .child(key("{\"port\":80,\"protocol\":\"TCP\"}"))
            .child(PathElement::Field("name".into()));
        assert_eq!(path.to_string(), ".spec.ports[port=80,protocol=\"TCP\"].name");
        let set_item = Path::field(&["metadata", "finalizers"]).child(PathElement::Value("\"a\"".into()));
        assert_eq!(set_item.to_string(), ".metadata.finalizers[=\"a\"]");
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&Path::field(&["spec", "a"]));
        a.insert(&Path::field(&["spec", "b"]));
        let mut b = FieldSet::new();
        b.insert(&Path::field(&["spec", "b"]));
        b.insert(&Path::field(&["status"]));
        assert_eq!(a.difference(&b).paths(), vec![Path::field(&["spec", "a"])]);
        assert_eq!(a.intersection(&b).paths(), vec![Path::field(&["spec", "b"])]);
        assert_eq!(a.union(&b).paths().len(), 3);
        let mut status = FieldSet::new();
        status.insert(&Path::field(&["spec"]));
        assert_eq!(a.union(&b).without_prefixes(&status).paths(), vec![Path::field(&["status"])]);
        assert!(a.with_fields_as_members().has(&Path::field(&["spec"])));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        assert_eq!(
            canonical_json(&json!({"protocol": "TCP", "containerPort": 80})),
            "{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
    }
}
