//! The review protocols, as pure functions from a request body to a response body:
//! ConversionReview (apiextensions.k8s.io/v1) and AdmissionReview (admission.k8s.io/v1). Input
//! that is not a review of a supported version is answered with a message that says so, never a
//! panic; a review whose objects cannot be converted gets a Failure naming the object and why.

use serde_json::{Value, json};

use super::admission::{Operation, Request, Verdict};

const CONVERSION_API_VERSION: &str = "apiextensions.k8s.io/v1";
const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// A body that is not a review this webhook answers (HTTP 400 with the message).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BadReview {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error(
        "expected a {expected} ConversionReview or AdmissionReview with a request, got apiVersion {got:?} kind {kind:?}"
    )]
    NotAReview { expected: &'static str, got: String, kind: String },
    #[error("the review has no request.uid")]
    NoUid,
}

fn parse(body: &[u8], api_version: &'static str, kind: &str) -> Result<(Value, String), BadReview> {
    let review: Value = serde_json::from_slice(body).map_err(|e| BadReview::NotJson(e.to_string()))?;
    if review["apiVersion"] != api_version || review["kind"] != kind || !review["request"].is_object() {
        return Err(BadReview::NotAReview {
            expected: api_version,
            got: review["apiVersion"].as_str().unwrap_or_default().to_string(),
            kind: review["kind"].as_str().unwrap_or_default().to_string(),
        });
    }
    let uid = review["request"]["uid"].as_str().ok_or(BadReview::NoUid)?.to_string();
    Ok((review, uid))
}

/// Answers a ConversionReview: every object converted, or a Failure for the first that cannot be.
pub fn convert(body: &[u8]) -> Result<Value, BadReview> {
    let (review, uid) = parse(body, CONVERSION_API_VERSION, "ConversionReview")?;
    let request = &review["request"];
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let converted: Result<Vec<Value>, String> = request["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|object| {
            prism_api::conversion::convert(object, desired).map_err(|e| {
                let (namespace, name) = (&object["metadata"]["namespace"], &object["metadata"]["name"]);
                format!(
                    "converting {} {}/{} to {desired}: {e}",
                    object["kind"].as_str().unwrap_or("object"),
                    namespace.as_str().unwrap_or_default(),
                    name.as_str().unwrap_or_default()
                )
            })
        })
        .collect();
    let response = match converted {
        Ok(objects) => json!({"uid": uid, "convertedObjects": objects, "result": {"status": "Success"}}),
        Err(message) => {
            json!({"uid": uid, "convertedObjects": [], "result": {"status": "Failure", "message": message}})
        }
    };
    Ok(json!({"apiVersion": CONVERSION_API_VERSION, "kind": "ConversionReview", "response": response}))
}

/// Reads an AdmissionReview's request.
pub fn admission_request(body: &[u8]) -> Result<(Request, String), BadReview> {
    let (review, uid) = parse(body, ADMISSION_API_VERSION, "AdmissionReview")?;
    let r = &review["request"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let operation = match r["operation"].as_str() {
        Some("CREATE") => Operation::Create,
        Some("UPDATE") => Operation::Update,
        Some("DELETE") => Operation::Delete,
        _ => Operation::Connect,
    };
    let object = |key: &str| Some(r[key].clone()).filter(|v| v.is_object());
    let request = Request {
        operation,
        kind: text(&r["kind"]["kind"]),
        request_version: text(&r["requestKind"]["version"]),
        subresource: r["subResource"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
        namespace: text(&r["namespace"]),
        name: text(&r["name"]),
        field_manager: r["options"]["fieldManager"].as_str().map(str::to_string),
        object: object("object"),
        old_object: object("oldObject"),
    };
    // A scale request's kind is Scale: the resource says whose.
    let request = if r["resource"]["resource"] == "prismpatterns" && request.subresource.is_some() {
        Request { kind: "PrismPattern".into(), ..request }
    } else {
        request
    };
    Ok((request, uid))
}

/// The AdmissionReview answering request `uid` with `verdict`.
pub fn admission_response(uid: &str, verdict: &Verdict) -> Value {
    let mut response = json!({"uid": uid, "allowed": verdict.refusal.is_none()});
    if let Some(message) = &verdict.refusal {
        response["status"] = json!({"code": 422, "reason": "Invalid", "message": message});
    }
    if !verdict.warnings.is_empty() {
        response["warnings"] = json!(verdict.warnings);
    }
    json!({"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversion_review(objects: Value, desired: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "u1", "desiredAPIVersion": desired, "objects": objects}}))
        .unwrap()
    }

    #[test]
    fn a_conversion_review_gets_every_object_converted() {
        let pattern = json!({"apiVersion": "prism.io/v1alpha1", "kind": "PrismPattern",
                             "metadata": {"name": "p", "namespace": "n"}, "spec": {"pattern": "keyvalue", "backend": "redis"}});
        let answer = convert(&conversion_review(json!([pattern]), "prism.io/v1beta1")).unwrap();
        assert_eq!(answer["response"]["uid"], "u1");
        assert_eq!(answer["response"]["result"]["status"], "Success");
        assert_eq!(answer["response"]["convertedObjects"][0]["spec"]["backends"], json!([{"name": "redis"}]));
    }

    #[test]
    fn an_object_that_cannot_convert_fails_the_review_naming_it() {
        let bad = json!({"apiVersion": "prism.io/v1alpha1", "kind": "PrismPattern",
                         "metadata": {"name": "p", "namespace": "n"}, "spec": {"pattern": "teleport"}});
        let answer = convert(&conversion_review(json!([bad]), "prism.io/v1beta1")).unwrap();
        assert_eq!(answer["response"]["result"]["status"], "Failure");
        let message = answer["response"]["result"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "converting PrismPattern n/p to prism.io/v1beta1: prism.io/v1alpha1 PrismPattern \"p\" is not valid"
            ),
            "{message}"
        );
        let unknown = convert(&conversion_review(json!([bad]), "prism.io/v9")).unwrap();
        assert!(unknown["response"]["result"]["message"].as_str().unwrap().contains("not served at prism.io/v9"));
    }

    #[test]
    fn what_is_not_a_review_is_refused_with_what_was_expected() {
        assert!(matches!(convert(b"{not json"), Err(BadReview::NotJson(_))));
        let v1beta1 =
            br#"{"apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "ConversionReview", "request": {"uid": "x"}}"#;
        assert_eq!(
            convert(v1beta1).unwrap_err().to_string(),
            "expected a apiextensions.k8s.io/v1 ConversionReview or AdmissionReview with a request, got apiVersion \"apiextensions.k8s.io/v1beta1\" kind \"ConversionReview\""
        );
        let no_uid = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}"#;
        assert_eq!(admission_request(no_uid).unwrap_err(), BadReview::NoUid);
    }

    #[test]
    fn an_admission_review_is_read_and_answered_with_its_uid() {
        let body =
            serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u2", "kind": {"group": "prism.io", "version": "v1beta1", "kind": "PrismCluster"},
            "requestKind": {"group": "prism.io", "version": "v1alpha1", "kind": "PrismCluster"},
            "resource": {"group": "prism.io", "version": "v1beta1", "resource": "prismclusters"},
            "operation": "CREATE", "namespace": "n", "name": "c", "options": {"fieldManager": "kubectl"},
            "object": {"metadata": {"name": "c"}}}}))
            .unwrap();
        let (request, uid) = admission_request(&body).unwrap();
        assert_eq!(
            (uid.as_str(), request.operation, request.request_version.as_str()),
            ("u2", Operation::Create, "v1alpha1")
        );
        let verdict = Verdict { refusal: Some("no".into()), warnings: vec!["careful".into()] };
        let answer = admission_response(&uid, &verdict);
        assert_eq!(
            answer["response"],
            json!({"uid": "u2", "allowed": false, "warnings": ["careful"],
                                              "status": {"code": 422, "reason": "Invalid", "message": "no"}})
        );
    }
}
