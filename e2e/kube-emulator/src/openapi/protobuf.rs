//! The protobuf encoding of the OpenAPI v2 document (gnostic's `openapi.v2.Document`), which
//! client-go asks for first (`kubectl explain --output=plaintext-openapiv2`). Only what the JSON
//! document holds is written: the info, and the definitions with their schemas; a vendor
//! extension's or a default's value is carried as YAML, which JSON text is.

use serde_json::{Map, Value};

/// The media type the real server answers with (clients ask for `...spec.v2@v1.0+protobuf`, which
/// Go's media type parser would not read back).
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Message) {
        self.bytes(field, &m.0);
    }

    fn int(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }

    fn boolean(&mut self, field: u32, v: bool) {
        if v {
            self.int(field, 1);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

/// `openapi.v2.Document` of a Swagger 2.0 JSON document.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    m.string(1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Message::default();
    info.string(1, doc["info"]["title"].as_str().unwrap_or(""));
    info.string(2, doc["info"]["version"].as_str().unwrap_or(""));
    m.message(2, info);
    m.message(8, Message::default());
    if let Some(definitions) = doc["definitions"].as_object() {
        m.message(9, named_schemas(definitions));
    }
    m.0
}

/// `Definitions` or `Properties`: repeated NamedSchema{name = 1, value = 2} in field 1.
fn named_schemas(map: &Map<String, Value>) -> Message {
    let mut m = Message::default();
    for (name, schema) in map {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, schema_message(schema));
        m.message(1, named);
    }
    m
}

/// `Any{yaml = 2}`: a value as YAML (its JSON text).
fn any(v: &Value) -> Message {
    let mut m = Message::default();
    m.string(2, &v.to_string());
    m
}

fn schema_message(s: &Value) -> Message {
    let mut m = Message::default();
    let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("");
    m.string(1, text("$ref"));
    m.string(2, text("format"));
    m.string(3, text("title"));
    m.string(4, text("description"));
    if let Some(default) = s.get("default") {
        m.message(5, any(default));
    }
    for (field, key) in [(6, "multipleOf"), (7, "maximum"), (9, "minimum")] {
        if let Some(v) = s.get(key).and_then(Value::as_f64) {
            m.double(field, v);
        }
    }
    m.boolean(8, s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true));
    m.boolean(10, s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true));
    for (field, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        if let Some(v) = s.get(key).and_then(Value::as_i64) {
            m.int(field, v);
        }
    }
    m.string(13, text("pattern"));
    m.boolean(16, s.get("uniqueItems").and_then(Value::as_bool) == Some(true));
    for required in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        m.string(19, required);
    }
    for value in s.get("enum").and_then(Value::as_array).into_iter().flatten() {
        m.message(20, any(value));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            m.message(21, item);
        }
        Some(schema @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema_message(schema));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(kind) = s.get("type").and_then(Value::as_str) {
        let mut types = Message::default();
        types.string(1, kind);
        m.message(22, types);
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        let mut list = Message::default();
        list.message(1, schema_message(items));
        m.message(23, list);
    }
    for part in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        m.message(24, schema_message(part));
    }
    if let Some(properties) = s.get("properties").and_then(Value::as_object) {
        m.message(25, named_schemas(properties));
    }
    for (name, value) in s.as_object().into_iter().flatten().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, any(value));
        m.message(31, named);
    }
    m
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_written_with_their_numbers_and_wire_types() {
        let doc = json!({"swagger": "2.0", "info": {"title": "T", "version": "v"},
                         "definitions": {"a.B": {"type": "object", "x-e": [1]}}});
        let bytes = encode(&doc);
        // swagger = 1 (string "2.0"), info = 2 { title = 1 "T", version = 2 "v" }, paths = 8 {}.
        assert_eq!(&bytes[..15], &[0x0a, 3, b'2', b'.', b'0', 0x12, 6, 0x0a, 1, b'T', 0x12, 1, b'v', 0x42, 0]);
        // definitions = 9 { NamedSchema = 1 { name = 1 "a.B", value = 2 { type = 22 {"object"}, x-e = 31 } } }
        assert_eq!(bytes[15], 0x4a);
        let schema = schema_message(&json!({"type": "object"}));
        assert_eq!(schema.0, [0xb2, 0x01, 8, 0x0a, 6, b'o', b'b', b'j', b'e', b'c', b't']);
        let maximum = schema_message(&json!({"maximum": 1.5}));
        assert_eq!(maximum.0[0], (7 << 3) | 1);
    }
}
