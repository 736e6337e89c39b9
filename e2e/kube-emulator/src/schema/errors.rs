//! Field errors worded like kube-apiserver's (k8s.io/apimachinery/pkg/util/validation/field).

use std::fmt;

use serde_json::Value;

/// The kind of a field error; decides its wording and its `reason` in a Status cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    TypeInvalid,
    NotSupported,
    Duplicate,
    TooLong,
    TooMany,
    Forbidden,
}

impl FieldErrorKind {
    /// The words the server puts before the detail.
    fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Forbidden => "Forbidden",
        }
    }

    /// The `reason` of the Status cause.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
        }
    }

    /// Whether the server leaves the bad value out of the message.
    fn omits_value(self) -> bool {
        matches!(self, FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong)
    }
}

/// One way an object breaks its schema.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// Path of the field, e.g. `spec.patterns[0].name`.
    pub field: String,
    pub bad_value: Value,
    pub detail: String,
}

impl FieldError {
    pub fn new(kind: FieldErrorKind, field: &str, bad_value: Value, detail: impl Into<String>) -> Self {
        FieldError { kind, field: field.to_string(), bad_value, detail: detail.into() }
    }

    pub fn required(field: &str) -> Self {
        FieldError::new(FieldErrorKind::Required, field, Value::Null, "")
    }

    /// The `reason` of the Status cause, e.g. `FieldValueInvalid`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message without the field path: the `message` of a Status cause.
    pub fn body(&self) -> String {
        let mut body = self.kind.label().to_string();
        if !self.kind.omits_value() {
            body.push_str(": ");
            body.push_str(&go_value(&self.bad_value));
        }
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The server prints an empty path (a rule on the root) as Go's nil.
        let field = if self.field.is_empty() { "<nil>" } else { &self.field };
        write!(f, "{field}: {}", self.body())
    }
}

/// The message of a 422 Invalid Status: `Kind.group "name" is invalid: <errors>`, the errors in
/// brackets when there are several, as the server aggregates them.
pub fn invalid_message(kind_dot_group: &str, name: &str, errors: &[FieldError]) -> String {
    let list = match errors {
        [one] => one.to_string(),
        many => format!("[{}]", many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    };
    format!("{kind_dot_group} \"{name}\" is invalid: {list}")
}

/// A value as Go's `%v`/`%q`/`%#v` print it in field errors.
pub(super) fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "\"null\"".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            format!("[]interface {{}}{{{}}}", items.iter().map(go_value).collect::<Vec<_>>().join(", "))
        }
        Value::Object(map) => format!(
            "map[string]interface {{}}{{{}}}",
            map.iter().map(|(k, v)| format!("{k:?}:{}", go_value(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Numbers as Go prints them: integers plainly, whole floats without a fraction.
pub(super) fn go_number(n: &serde_json::Number) -> String {
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => i.to_string(),
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => n.to_string(),
    }
}
