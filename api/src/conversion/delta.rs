//! A delta between two JSON documents as a set of JSON-pointer writes: what the lossless
//! annotations hold. Unlike a JSON merge patch it can say "this value is null"; arrays are
//! replaced whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Values to set and paths to remove, by JSON pointer (RFC 6901), applied in pointer order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

impl Delta {
    /// The writes that turn `from` into `to`.
    pub fn between(from: &Value, to: &Value) -> Delta {
        let mut delta = Delta::default();
        diff_into(&mut delta, "", Some(from), to);
        delta
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.unset.is_empty()
    }

    /// The delta split by the member of the document's first two levels it writes (e.g.
    /// `/spec/image`), so that parts can be taken or left together.
    pub fn groups(&self) -> Vec<Delta> {
        let mut groups: BTreeMap<String, Delta> = BTreeMap::new();
        for (path, value) in &self.set {
            groups.entry(group_of(path)).or_default().set.insert(path.clone(), value.clone());
        }
        for path in &self.unset {
            groups.entry(group_of(path)).or_default().unset.push(path.clone());
        }
        groups.into_values().collect()
    }

    /// Every single write as a delta of its own.
    pub fn singles(&self) -> Vec<Delta> {
        let sets = self.set.iter().map(|(p, v)| Delta { set: BTreeMap::from([(p.clone(), v.clone())]), unset: vec![] });
        let unsets = self.unset.iter().map(|p| Delta { set: BTreeMap::new(), unset: vec![p.clone()] });
        sets.chain(unsets).collect()
    }

    /// Applies the writes to `doc`, creating objects on the way to a path where missing.
    pub fn apply(&self, doc: &mut Value) {
        for path in &self.unset {
            remove(doc, path);
        }
        for (path, value) in &self.set {
            set(doc, path, value.clone());
        }
    }
}

fn group_of(path: &str) -> String {
    path.split('/').take(3).collect::<Vec<_>>().join("/")
}

fn diff_into(delta: &mut Delta, path: &str, from: Option<&Value>, to: &Value) {
    match (from, to) {
        (Some(from), to) if from == to => {}
        (Some(Value::Object(from)), Value::Object(to)) => {
            for (key, value) in to {
                diff_into(delta, &format!("{path}/{}", escape(key)), from.get(key), value);
            }
            for key in from.keys().filter(|k| !to.contains_key(*k)) {
                delta.unset.push(format!("{path}/{}", escape(key)));
            }
        }
        (_, to) => {
            delta.set.insert(path.to_string(), to.clone());
        }
    }
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(path: &str) -> Vec<String> {
    path.split('/').skip(1).map(unescape).collect()
}

fn set(doc: &mut Value, path: &str, value: Value) {
    let tokens = tokens(path);
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return;
    };
    let mut node = doc;
    for token in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        node = map.entry(token.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        map.insert(last.clone(), value);
    }
}

fn remove(doc: &mut Value, path: &str) {
    let tokens = tokens(path);
    let Some((last, parents)) = tokens.split_last() else { return };
    let mut node = doc;
    for token in parents {
        match node.get_mut(token.as_str()) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Value::Object(map) = node {
        map.remove(last.as_str());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn applying_the_delta_between_two_documents_gives_the_second() {
        let from = json!({"spec": {"a": 1, "gone": true, "nested": {"keep": 1, "change": [1]}}});
        let to = json!({"spec": {"a": 1, "nested": {"keep": 1, "change": [2], "null": null}, "new/key~": "x"}});
        let delta = Delta::between(&from, &to);
        assert_eq!(delta.unset, vec!["/spec/gone".to_string()]);
        assert_eq!(delta.set.get("/spec/new~1key~0"), Some(&json!("x")));
        let mut doc = from.clone();
        delta.apply(&mut doc);
        assert_eq!(doc, to);
    }

    #[test]
    fn groups_split_by_the_second_level_member() {
        let delta = Delta::between(
            &json!({"spec": {"image": {"a": 1}}}),
            &json!({"spec": {"image": {"a": 2, "b": 3}, "x": 1}, "status": {"s": 1}}),
        );
        let groups: Vec<Vec<String>> = delta.groups().iter().map(|g| g.set.keys().cloned().collect()).collect();
        assert_eq!(
            groups,
            vec![
                vec!["/spec/image/a".to_string(), "/spec/image/b".to_string()],
                vec!["/spec/x".to_string()],
                vec!["/status".to_string()]
            ]
        );
        assert_eq!(delta.singles().len(), 4);
    }
}
