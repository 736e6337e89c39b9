//! What server-side apply needs to know about an object's shape: per list its `listType`, per map
//! whether it is atomic, and per object member whether it is a declared field (a struct field) or a map
//! element. Built-in kinds read the shared table in [`crate::patch::merge_keys`]; custom resources read
//! their CRD's OpenAPI v3 schema.

use serde_json::Value;

use crate::patch::merge_keys::{self, Shape};

/// `x-kubernetes-list-type` (`+listType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Owned and replaced whole (the default for lists without a marker).
    Atomic,
    /// Scalars owned one by one (`v:<value>`).
    Set,
    /// Objects owned one by one, identified by these key fields (`k:{...}`).
    Map(Vec<String>),
}

/// `x-kubernetes-map-type` (`+mapType`, `+structType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// Members owned one by one (the default).
    Granular,
    /// Owned and replaced whole.
    Atomic,
}

/// Which part of an object a write may touch, and so which fields it can own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The whole object (no status subresource).
    Everything,
    /// The main endpoint of a kind with a status subresource: everything but `status`.
    AllButStatus,
    /// The `status` subresource: `status` only.
    StatusOnly,
}

/// The shape of one kind's objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    source: Source,
    status_subresource: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    BuiltIn(Option<&'static str>),
    Crd(Value),
}

impl Structure {
    /// A built-in kind (`group` is "" for core). Kinds the table does not know get the defaults: objects
    /// granular, lists atomic. Built-in kinds with a `status` serve it as a subresource.
    pub fn built_in(group: &str, kind: &str) -> Structure {
        Structure { source: Source::BuiltIn(merge_keys::root_type(group, kind)), status_subresource: true }
    }

    /// A custom resource from its version's `schema.openAPIV3Schema`; lists are atomic unless marked.
    pub fn from_crd_schema(open_api_v3_schema: &Value, status_subresource: bool) -> Structure {
        Structure { source: Source::Crd(open_api_v3_schema.clone()), status_subresource }
    }

    pub(crate) fn root(&self) -> Node<'_> {
        match &self.source {
            Source::BuiltIn(root) => Node::Table { ty: *root, shape: Some(Shape::Object) },
            Source::Crd(schema) => Node::Schema { schema: Some(schema), root: true },
        }
    }

    pub(crate) fn scope(&self, subresource: Option<&str>) -> Scope {
        match (subresource, self.status_subresource) {
            (Some("status"), _) => Scope::StatusOnly,
            (_, true) => Scope::AllButStatus,
            (_, false) => Scope::Everything,
        }
    }

    /// The list type of the list at `path` (field names; list items are stepped through implicitly,
    /// so `["spec", "template", "spec", "containers", "ports"]` names every container's ports).
    pub fn list_type_at(&self, path: &[&str]) -> ListType {
        self.node_at(path).list_type()
    }

    /// Whether the object at `path` is owned whole or member by member.
    pub fn map_type_at(&self, path: &[&str]) -> MapType {
        self.node_at(path).map_type()
    }

    fn node_at(&self, path: &[&str]) -> Node<'_> {
        path.iter().fold(self.root(), |node, name| {
            let node = if node.is_list() { node.item() } else { node };
            node.field(name)
        })
    }
}

/// A position in a [`Structure`]. `None` inside means "unknown here": defaults apply below it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node<'a> {
    Table { ty: Option<&'static str>, shape: Option<Shape> },
    Schema { schema: Option<&'a Value>, root: bool },
}

impl<'a> Node<'a> {
    const UNKNOWN_TABLE: Node<'static> = Node::Table { ty: None, shape: None };

    /// The node of member `name` of this object.
    pub(crate) fn field(&self, name: &str) -> Node<'a> {
        match *self {
            Node::Table { ty: Some(ty), .. } => match merge_keys::lookup(ty, name) {
                Some(row) => Node::Table { ty: Some(row.ty), shape: Some(row.shape) },
                None => Node::UNKNOWN_TABLE,
            },
            Node::Table { ty: None, .. } => Node::UNKNOWN_TABLE,
            // A custom resource's metadata is an ObjectMeta whatever its schema says.
            Node::Schema { root: true, .. } if name == "metadata" => {
                Node::Table { ty: Some("ObjectMeta"), shape: Some(Shape::Object) }
            }
            Node::Schema { schema, .. } => {
                Node::Schema { schema: schema.and_then(|s| schema_member(s, name)), root: false }
            }
        }
    }

    /// The node of this list's items.
    pub(crate) fn item(&self) -> Node<'a> {
        match *self {
            Node::Table { ty, shape: Some(Shape::KeyedList { .. } | Shape::AtomicList | Shape::SetList) } => {
                Node::Table { ty, shape: Some(Shape::Object) }
            }
            Node::Table { .. } => Node::UNKNOWN_TABLE,
            Node::Schema { schema, .. } => Node::Schema { schema: schema.and_then(|s| s.get("items")), root: false },
        }
    }

    fn is_list(&self) -> bool {
        match self {
            Node::Table { shape, .. } => {
                matches!(shape, Some(Shape::KeyedList { .. } | Shape::AtomicList | Shape::SetList))
            }
            Node::Schema { schema, .. } => schema.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("array"),
        }
    }

    pub(crate) fn list_type(&self) -> ListType {
        match self {
            Node::Table { shape: Some(Shape::KeyedList { ssa_keys: Some(keys), .. }), .. } => {
                ListType::Map(keys.iter().map(|(k, _)| (*k).to_string()).collect())
            }
            Node::Table { shape: Some(Shape::SetList), .. } => ListType::Set,
            Node::Table { .. } => ListType::Atomic,
            Node::Schema { schema, .. } => schema.map(crd_list_type).unwrap_or(ListType::Atomic),
        }
    }

    /// The default of a list-map key field an item may omit: `protocol: TCP` of built-in ports, or the
    /// `default` of the item property in a CRD schema (smd uses schema defaults for missing keys).
    pub(crate) fn key_default(&self, key: &str) -> Option<Value> {
        match self {
            Node::Table { shape: Some(Shape::KeyedList { ssa_keys: Some(keys), .. }), .. } => keys
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, default)| *default)
                .map(|d| Value::String(d.to_string())),
            Node::Table { .. } => None,
            Node::Schema { schema: Some(schema), .. } => {
                schema.get("items")?.get("properties")?.get(key)?.get("default").cloned()
            }
            Node::Schema { .. } => None,
        }
    }

    pub(crate) fn map_type(&self) -> MapType {
        match self {
            Node::Table { shape: Some(Shape::AtomicObject), .. } => MapType::Atomic,
            Node::Table { ty: Some(ty), .. } if merge_keys::ATOMIC_TYPES.contains(ty) => MapType::Atomic,
            Node::Table { .. } => MapType::Granular,
            Node::Schema { schema, .. } => {
                let marker = schema.and_then(|s| s.get("x-kubernetes-map-type")).and_then(Value::as_str);
                if marker == Some("atomic") { MapType::Atomic } else { MapType::Granular }
            }
        }
    }

    /// Whether `name` is a declared field of this object (a struct field), as opposed to an element of a
    /// map. smd records a map element even when it has children, a struct field only when it is a leaf.
    pub(crate) fn declares(&self, name: &str) -> bool {
        match self {
            Node::Table { ty: Some("map"), .. } => false,
            Node::Table { .. } => true,
            Node::Schema { root: true, .. } => true,
            Node::Schema { schema, .. } => schema.and_then(|s| s.get("properties")).and_then(|p| p.get(name)).is_some(),
        }
    }
}

/// The schema of member `name`: a declared property, else `additionalProperties`.
fn schema_member<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(prop) = schema.get("properties").and_then(|p| p.get(name)) {
        return Some(prop);
    }
    schema.get("additionalProperties").filter(|a| a.is_object())
}

fn crd_list_type(schema: &Value) -> ListType {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => {
            let keys = schema.get("x-kubernetes-list-map-keys").and_then(Value::as_array);
            let keys = keys.map(|k| k.iter().filter_map(Value::as_str).map(str::to_string).collect());
            ListType::Map(keys.unwrap_or_default())
        }
        _ => ListType::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn built_in_lists_follow_the_shared_table() {
        let deploy = Structure::built_in("apps", "Deployment");
        let containers = ["spec", "template", "spec", "containers"];
        assert_eq!(deploy.list_type_at(&containers), ListType::Map(vec!["name".into()]));
        let ports = ["spec", "template", "spec", "containers", "ports"];
        assert_eq!(deploy.list_type_at(&ports), ListType::Map(vec!["containerPort".into(), "protocol".into()]));
        assert_eq!(deploy.list_type_at(&["spec", "template", "spec", "containers", "args"]), ListType::Atomic);
        assert_eq!(deploy.list_type_at(&["spec", "template", "spec", "tolerations"]), ListType::Atomic);
        assert_eq!(deploy.list_type_at(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(deploy.list_type_at(&["metadata", "ownerReferences"]), ListType::Map(vec!["uid".into()]));
        assert_eq!(deploy.map_type_at(&["spec", "selector"]), MapType::Atomic);
        assert_eq!(deploy.map_type_at(&["metadata", "labels"]), MapType::Granular);
    }

    #[test]
    fn crd_lists_are_atomic_unless_marked() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "plain": {"type": "array", "items": {"type": "string"}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "backends": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                             "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "ref": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "extra": {"type": "object", "additionalProperties": {"type": "string"}}
            }}
        }});
        let crd = Structure::from_crd_schema(&schema, true);
        assert_eq!(crd.list_type_at(&["spec", "plain"]), ListType::Atomic);
        assert_eq!(crd.list_type_at(&["spec", "tags"]), ListType::Set);
        assert_eq!(crd.list_type_at(&["spec", "backends"]), ListType::Map(vec!["name".into()]));
        assert_eq!(crd.map_type_at(&["spec", "ref"]), MapType::Atomic);
        assert_eq!(crd.map_type_at(&["spec", "extra"]), MapType::Granular);
        assert_eq!(crd.list_type_at(&["metadata", "finalizers"]), ListType::Set);
        assert!(!crd.root().field("spec").field("extra").declares("anything"));
        assert!(crd.root().field("spec").declares("tags"));
    }
}
