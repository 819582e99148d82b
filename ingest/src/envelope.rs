//! Log lines inside a shipper's JSON envelope.
//!
//! Log shippers that read files send each line wrapped in a JSON object:
//! Vector's file source puts it under `message`, Fluent Bit's tail input
//! under `log`, Docker's json-file driver under `log` too, and Filebeat under
//! `message`. When a parser rejects such an object, the driver hands it the
//! wrapped line instead, and keeps the envelope's other fields (the file
//! name, the host, Kubernetes labels) as attributes prefixed `shipper.`.

use std::borrow::Cow;

use crate::formats::json::{Json, flatten};

/// Keys under which shippers put the original line, in the order they are tried.
const LINE_KEYS: [&str; 2] = ["message", "log"];

/// Prefix of the attributes that keep an envelope's other fields.
pub const SHIPPER_PREFIX: &str = "shipper.";

/// A line unwrapped from its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrapped {
    pub line: String,
    /// The envelope's other scalar fields, with nested keys joined by `.`.
    pub fields: Vec<(String, String)>,
}

/// Returns the line inside `record` when it is a JSON object with a string
/// `message` or `log` member, or `None` otherwise.
pub fn unwrap(record: &str) -> Option<Unwrapped> {
    let trimmed = record.trim_start_matches('\u{feff}').trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let value: Json<'_> = serde_json::from_str(trimmed).ok()?;
    let Json::Object(members) = &value else {
        return None;
    };
    let (line_key, line) = LINE_KEYS.iter().find_map(|&key| {
        members.iter().find_map(|(name, value)| match value {
            Json::String(text) if name == key => Some((key, text)),
            _ => None,
        })
    })?;
    // Docker and Fluent Bit keep the line's own newline.
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.trim().is_empty() {
        return None;
    }
    let mut leaves = Vec::new();
    flatten(None, members, &mut leaves);
    let fields = leaves
        .into_iter()
        .filter(|(key, _)| key.as_ref() != line_key)
        .filter_map(|(key, value)| {
            let text = value.as_text()?;
            (!text.is_empty()).then(|| (format!("{SHIPPER_PREFIX}{key}"), own(text)))
        })
        .collect();
    Some(Unwrapped { line, fields })
}

fn own(text: Cow<'_, str>) -> String {
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_and_fluent_bit_envelopes() {
        let vector = r#"{"file":"/var/log/nginx/access.log","host":"web-1","message":"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2","source_type":"file","timestamp":"2024-01-01T00:00:00Z"}"#;
        let unwrapped = unwrap(vector).expect("a Vector envelope");
        assert!(unwrapped.line.starts_with("1.2.3.4 - - [10/Oct/2000"));
        assert!(unwrapped.line.contains("\"GET / HTTP/1.0\""));
        assert_eq!(
            unwrapped.fields[..2],
            [
                (
                    "shipper.file".to_string(),
                    "/var/log/nginx/access.log".to_string()
                ),
                ("shipper.host".to_string(), "web-1".to_string()),
            ]
        );

        let fluent_bit =
            r#"{"date":1700000000.5,"log":"line one\n","kubernetes":{"pod_name":"api-0"}}"#;
        let unwrapped = unwrap(fluent_bit).expect("a Fluent Bit envelope");
        assert_eq!(unwrapped.line, "line one");
        assert_eq!(
            unwrapped.fields,
            vec![
                ("shipper.date".to_string(), "1700000000.5".to_string()),
                (
                    "shipper.kubernetes.pod_name".to_string(),
                    "api-0".to_string()
                ),
            ]
        );
    }

    #[test]
    fn other_objects_are_not_envelopes() {
        for record in [
            r#"{"status":200}"#,
            r#"{"message":{"nested":true}}"#,
            r#"{"message":"   "}"#,
            r#"not json"#,
            r#"{"message":"cut"#,
        ] {
            assert_eq!(unwrap(record), None, "{record}");
        }
    }
}
