//! Reading the bytes of an API description into a JSON value.
//!
//! A document whose first character after an optional UTF-8 byte order mark
//! and whitespace is `{` or `[` is read as JSON, and anything else as YAML.
//! This way a JSON syntax error is reported as a JSON error, not as a confusing
//! YAML one. YAML is read with `serde_yaml_ng`, which rejects documents with
//! nesting deeper than 128 levels and alias expansions that grow out of
//! proportion to the input. Merge keys (`<<: *anchor`) are applied, tags are
//! dropped, and scalar mapping keys are turned into strings (`200:` becomes
//! `"200"`), so the rest of the parser works on one JSON model.

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as YamlValue;

use super::error::{SpecError, child_pointer};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a JSON or YAML document, after checking its size against `max_bytes`.
pub(super) fn read_document(bytes: &[u8], max_bytes: usize) -> Result<Value, SpecError> {
    if bytes.len() > max_bytes {
        return Err(SpecError::DocumentTooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }

    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    match first {
        None => Err(SpecError::RootNotObject { found: "empty" }),
        Some(b'{' | b'[') => {
            serde_json::from_slice(bytes).map_err(|error| SpecError::InvalidJson {
                message: error.to_string(),
            })
        }
        Some(_) => read_yaml(bytes),
    }
}

fn read_yaml(bytes: &[u8]) -> Result<Value, SpecError> {
    let yaml_error = |error: serde_yaml_ng::Error| SpecError::InvalidYaml {
        message: error.to_string(),
    };
    let mut yaml: YamlValue = serde_yaml_ng::from_slice(bytes).map_err(yaml_error)?;
    yaml.apply_merge().map_err(yaml_error)?;

    yaml_to_json(yaml).map_err(|error| {
        let pointer = error
            .reversed_tokens
            .iter()
            .rev()
            .fold(String::new(), |pointer, token| {
                child_pointer(&pointer, token)
            });
        SpecError::InvalidYaml {
            message: format!(
                "the mapping key at {} is a {}; keys must be strings, numbers, booleans or null",
                if pointer.is_empty() { "/" } else { &pointer },
                error.key_kind
            ),
        }
    })
}

/// A mapping key that cannot become a JSON object key, with the location of
/// its mapping collected while the recursion unwinds.
struct KeyError {
    key_kind: &'static str,
    reversed_tokens: Vec<String>,
}

/// Converts a YAML value into a JSON value. Recursion depth is bounded by the
/// nesting limit that `serde_yaml_ng` enforces while reading.
fn yaml_to_json(yaml: YamlValue) -> Result<Value, KeyError> {
    let json = match yaml {
        YamlValue::Null => Value::Null,
        YamlValue::Bool(value) => Value::Bool(value),
        YamlValue::Number(number) => yaml_number_to_json(&number),
        YamlValue::String(text) => Value::String(text),
        YamlValue::Sequence(items) => {
            let mut array = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let value = yaml_to_json(item).map_err(|mut error| {
                    error.reversed_tokens.push(index.to_string());
                    error
                })?;
                array.push(value);
            }
            Value::Array(array)
        }
        YamlValue::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                let key = yaml_key_to_string(key)?;
                let value = yaml_to_json(value).map_err(|mut error| {
                    error.reversed_tokens.push(key.clone());
                    error
                })?;
                object.insert(key, value);
            }
            Value::Object(object)
        }
        YamlValue::Tagged(tagged) => yaml_to_json(tagged.value)?,
    };
    Ok(json)
}

fn yaml_number_to_json(number: &serde_yaml_ng::Number) -> Value {
    if let Some(value) = number.as_u64() {
        Value::Number(value.into())
    } else if let Some(value) = number.as_i64() {
        Value::Number(value.into())
    } else {
        let value = number.as_f64().unwrap_or(f64::NAN);
        // JSON has no NaN or infinity, so they are kept as their YAML spelling.
        Number::from_f64(value).map_or_else(|| Value::String(number.to_string()), Value::Number)
    }
}

fn yaml_key_to_string(key: YamlValue) -> Result<String, KeyError> {
    match key {
        YamlValue::String(text) => Ok(text),
        YamlValue::Number(number) => Ok(number.to_string()),
        YamlValue::Bool(value) => Ok(value.to_string()),
        YamlValue::Null => Ok("null".to_string()),
        YamlValue::Tagged(tagged) => yaml_key_to_string(tagged.value),
        YamlValue::Sequence(_) => Err(KeyError {
            key_kind: "sequence",
            reversed_tokens: Vec::new(),
        }),
        YamlValue::Mapping(_) => Err(KeyError {
            key_kind: "mapping",
            reversed_tokens: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn yaml_keys_become_strings() {
        let document = "responses:\n  200: {description: OK}\n  true: yes\n  ~: nothing\n";
        let value = read_document(document.as_bytes(), LIMIT).expect("valid YAML");
        assert_eq!(
            value,
            json!({"responses": {"200": {"description": "OK"}, "true": "yes", "null": "nothing"}}),
            "number, boolean and null keys become strings"
        );
    }

    #[test]
    fn yaml_merge_keys_apply() {
        let document =
            "base: &base {get: {}, put: {}}\npath:\n  <<: *base\n  put: {deprecated: true}\n";
        let value = read_document(document.as_bytes(), LIMIT).expect("valid YAML");
        assert_eq!(
            value["path"],
            json!({"get": {}, "put": {"deprecated": true}}),
            "merged fields fill in, own fields win"
        );
    }

    #[test]
    fn yaml_numbers_keep_their_form() {
        let document = "a: 3.0\nb: 2\nc: .inf\nd: -7\n";
        let value = read_document(document.as_bytes(), LIMIT).expect("valid YAML");
        assert_eq!(value["a"].to_string(), "3.0", "float");
        assert_eq!(value["b"].to_string(), "2", "integer");
        assert_eq!(value["c"], json!(".inf"), "infinity becomes text");
        assert_eq!(value["d"].to_string(), "-7", "negative integer");
    }

    #[test]
    fn yaml_tags_are_dropped() {
        let document = "url: !env https://api.example.com\n";
        let value = read_document(document.as_bytes(), LIMIT).expect("valid YAML");
        assert_eq!(value["url"], json!("https://api.example.com"));
    }

    #[test]
    fn yaml_complex_key_is_rejected() {
        let document = "paths:\n  /a:\n    ? [x, y]\n    : 1\n";
        let error = read_document(document.as_bytes(), LIMIT).expect_err("sequence key");
        assert_eq!(
            error.to_string(),
            "the document is not valid YAML: the mapping key at /paths/~1a is a sequence; keys must be strings, numbers, booleans or null"
        );
    }

    #[test]
    fn json_with_bom_is_read() {
        let value = read_document(b"\xEF\xBB\xBF {\"a\": 1}", LIMIT).expect("JSON after a BOM");
        assert_eq!(value, json!({"a": 1}));
    }

    #[test]
    fn json_error_has_position() {
        let error = read_document(b"{\n  \"openapi\": \"3.1.0\",\n  \"paths\": {\n}", LIMIT)
            .expect_err("unclosed object");
        assert_eq!(
            error.to_string(),
            "the document is not valid JSON: EOF while parsing an object at line 4 column 1"
        );
    }

    #[test]
    fn yaml_error_has_position() {
        let error = read_document(b"openapi: 3.0.3\npaths: [unclosed\n", LIMIT)
            .expect_err("unclosed flow sequence");
        let message = error.to_string();
        assert!(
            message.starts_with("the document is not valid YAML: "),
            "message {message:?}"
        );
        assert!(
            message.contains("line 3"),
            "message {message:?} has no line"
        );
    }

    #[test]
    fn size_limit_applies() {
        let error = read_document(b"{\"openapi\": \"3.1.0\"}", 10).expect_err("over the limit");
        assert_eq!(
            error,
            SpecError::DocumentTooLarge {
                size: 20,
                limit: 10
            }
        );
    }

    #[test]
    fn empty_document_is_rejected() {
        let error = read_document(b" \n\t", LIMIT).expect_err("blank");
        assert_eq!(error, SpecError::RootNotObject { found: "empty" });
    }

    #[test]
    fn yaml_alias_bomb_is_rejected() {
        let mut document = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let previous = level - 1;
            document.push_str(&format!(
                "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"
            ));
        }
        let error = read_document(document.as_bytes(), LIMIT).expect_err("10^12 nodes");
        assert!(
            error.to_string().contains("repetition limit exceeded"),
            "error {error}"
        );
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let error = read_document(json.as_bytes(), LIMIT).expect_err("deep JSON");
        assert!(
            matches!(error, SpecError::InvalidJson { .. }),
            "deep JSON gives {error}"
        );
        let yaml = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let error = read_document(yaml.as_bytes(), LIMIT).expect_err("deep YAML");
        assert!(
            matches!(error, SpecError::InvalidYaml { .. }),
            "deep YAML gives {error}"
        );
    }
}
