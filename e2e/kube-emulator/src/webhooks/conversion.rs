//! CRD conversion webhooks as the real server uses them, as pure functions: the ConversionReview
//! v1 sent for a batch of objects, and the converted objects read back from the answer, checked
//! as the real server checks them (uid, count, apiVersion, kind; of the metadata only labels and
//! annotations may change).

use serde_json::{Value, json};

use crate::meta::meta_str;

/// The ConversionReview v1 asking for `objects` at `desired` (`group/version`).
pub fn review(uid: &str, desired: &str, objects: &[Value]) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
           "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects}})
}

/// Why an answer was not taken; `Count` is worded apart by the real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Invalid(String),
    Count { got: usize, expected: usize },
}

/// The converted objects of an answer to `review(uid, desired, originals)`.
pub fn converted(uid: &str, desired: &str, answer: &Value, originals: &[Value]) -> Result<Vec<Value>, Refusal> {
    let invalid = |m: String| Refusal::Invalid(m);
    let (api_version, kind) = (text(answer, "apiVersion"), text(answer, "kind"));
    if (api_version, kind) != ("apiextensions.k8s.io/v1", "ConversionReview") {
        return Err(invalid(format!(
            "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {api_version}, Kind={kind}"
        )));
    }
    let response = answer.get("response").ok_or_else(|| invalid("no response provided".into()))?;
    let answered = text(response, "uid");
    if answered != uid {
        return Err(invalid(format!("expected response.uid={uid:?}, got {answered:?}")));
    }
    let result = response.get("result").cloned().unwrap_or(json!({}));
    if text(&result, "status") != "Success" {
        let message = text(&result, "message");
        return Err(invalid(if message.is_empty() {
            format!("response.result.status was '{}', not 'Success'", text(&result, "status"))
        } else {
            message.to_string()
        }));
    }
    let objects = response.get("convertedObjects").and_then(Value::as_array).cloned().unwrap_or_default();
    if objects.len() != originals.len() {
        return Err(Refusal::Count { got: objects.len(), expected: originals.len() });
    }
    objects.into_iter().zip(originals).map(|(c, o)| checked(c, o, desired).map_err(invalid)).collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A converted object at `desired`, its metadata the original's but for labels and annotations.
fn checked(mut converted: Value, original: &Value, desired: &str) -> Result<Value, String> {
    if text(&converted, "apiVersion") != desired {
        return Err(format!(
            "invalid converted object: apiVersion {:?}, expected {desired:?}",
            text(&converted, "apiVersion")
        ));
    }
    if text(&converted, "kind") != text(original, "kind") {
        return Err(format!(
            "invalid converted object: kind {:?}, expected {:?}",
            text(&converted, "kind"),
            text(original, "kind")
        ));
    }
    for key in ["name", "namespace", "uid"] {
        if meta_str(&converted, key) != meta_str(original, key) {
            return Err(format!("invalid metadata of converted object: must not change metadata.{key}"));
        }
    }
    let mut metadata = original.get("metadata").cloned().unwrap_or(json!({}));
    for key in ["labels", "annotations"] {
        match converted.pointer(&format!("/metadata/{key}")) {
            Some(v) => metadata[key] = v.clone(),
            None => {
                if let Some(m) = metadata.as_object_mut() {
                    m.remove(key);
                }
            }
        }
    }
    converted["metadata"] = metadata;
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(uid: &str, objects: Value) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
               "response": {"uid": uid, "result": {"status": "Success"}, "convertedObjects": objects}})
    }

    #[test]
    fn converted_objects_keep_the_original_metadata_but_labels_and_annotations() {
        let original = json!({"apiVersion": "x.io/v1", "kind": "W", "metadata": {"name": "a", "uid": "1", "resourceVersion": "7"}, "spec": {"old": 1}});
        let back = json!({"apiVersion": "x.io/v2", "kind": "W", "metadata": {"name": "a", "uid": "1", "labels": {"l": "v"}}, "spec": {"new": 1}});
        let out =
            converted("u", "x.io/v2", &answer("u", json!([back])), std::slice::from_ref(&original)).expect("converted");
        assert_eq!(out[0]["metadata"], json!({"name": "a", "uid": "1", "resourceVersion": "7", "labels": {"l": "v"}}));
        assert_eq!(out[0]["spec"], json!({"new": 1}));
    }

    #[test]
    fn bad_answers_are_refused() {
        let original = json!({"apiVersion": "x.io/v1", "kind": "W", "metadata": {"name": "a"}});
        let originals = std::slice::from_ref(&original);
        let wrong_version = json!([{"apiVersion": "x.io/v1", "kind": "W", "metadata": {"name": "a"}}]);
        assert!(matches!(converted("u", "x.io/v2", &answer("u", wrong_version), originals), Err(Refusal::Invalid(_))));
        assert_eq!(
            converted("u", "x.io/v2", &answer("u", json!([])), originals),
            Err(Refusal::Count { got: 0, expected: 1 })
        );
        let failure = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                             "response": {"uid": "u", "result": {"status": "Failure", "message": "no way"}}});
        assert_eq!(converted("u", "x.io/v2", &failure, originals), Err(Refusal::Invalid("no way".into())));
    }
}
