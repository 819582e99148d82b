//! Errors of reading an API description, located by JSON pointer.

use std::borrow::Cow;

use serde_json::Value;

/// Error of [`parse_spec`](super::parse_spec): what is wrong, and where.
///
/// Locations are JSON pointers (RFC 6901) into the document, such as
/// `/paths/~1users/get` for the `get` operation of path `/users` (`/` in a
/// key is written `~1`, `~` is written `~0`). YAML documents are located the
/// same way, since their structure is the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "the document is {size} bytes, more than the limit of {limit} bytes; raise SpecLimits::max_document_bytes to load it"
    )]
    DocumentTooLarge { size: usize, limit: usize },

    #[error("the document is not valid JSON: {message}")]
    InvalidJson { message: String },

    #[error("the document is not valid YAML: {message}")]
    InvalidYaml { message: String },

    #[error(
        "the document root is {found}, expected an object with an `openapi` or `swagger` field"
    )]
    RootNotObject { found: &'static str },

    #[error(
        "the document has neither an `openapi` nor a `swagger` field at its root; add `openapi: 3.1.0` (or a 3.0.x version) or `swagger: \"2.0\"`"
    )]
    MissingVersion,

    #[error(
        "unsupported version {version:?} at {pointer}; supported are OpenAPI 3.0.x and 3.1.x (field `openapi`) and Swagger 2.0 (field `swagger`)"
    )]
    UnsupportedVersion { pointer: String, version: String },

    #[error(
        "the document has {count} paths, more than the limit of {limit}; raise SpecLimits::max_paths to load it"
    )]
    TooManyPaths { count: usize, limit: usize },

    #[error(
        "the document describes more than {limit} operations once every server is applied; raise SpecLimits::max_operations to load it"
    )]
    TooManyOperations { limit: usize },

    #[error("invalid value at {pointer}: {message}")]
    Invalid { pointer: String, message: String },
}

impl SpecError {
    /// Returns the JSON pointer of the offending value, when the error has one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            SpecError::UnsupportedVersion { pointer, .. } | SpecError::Invalid { pointer, .. } => {
                Some(pointer)
            }
            _ => None,
        }
    }
}

pub(super) fn invalid(pointer: &str, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/`.
pub(super) fn child_pointer(parent: &str, token: &str) -> String {
    let escaped: Cow<'_, str> = if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    };
    format!("{parent}/{escaped}")
}

/// Names the JSON type of a value for error messages, with its article.
pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds the error for a value of the wrong JSON type.
pub(super) fn wrong_type(pointer: &str, expected: &str, found: &Value) -> SpecError {
    invalid(
        pointer,
        format!("expected {expected}, found {}", kind_of(found)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_pointer_escapes() {
        assert_eq!(
            child_pointer("/paths", "/users/{id}"),
            "/paths/~1users~1{id}"
        );
        assert_eq!(child_pointer("", "a~b"), "/a~0b", "tilde is escaped first");
        assert_eq!(child_pointer("/paths/~1a", "get"), "/paths/~1a/get");
    }
}
