//! Reading OpenAPI 3.0, OpenAPI 3.1 and Swagger 2.0 documents into operations.
//!
//! Only the fields that locate an operation are read: the version field,
//! `info.title` and `info.version`, the servers (`servers`, or `host`,
//! `basePath` and `schemes`), and under `paths` the operations with their
//! `deprecated` flag and `x-deprecated` extension. Every other field is
//! ignored whatever it contains, while a field that is read must have the
//! type the specification gives it.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::document::read_document;
use super::error::{SpecError, child_pointer, invalid, kind_of, wrong_type};
use super::path::{Template, comparison_key, join_base_path};
use super::server::{ServerBase, read_servers, read_swagger_server};

/// Operation fields of a path item, with the method name they stand for.
///
/// `trace` is an OpenAPI 3 field. It is read in Swagger 2.0 documents too,
/// where it would otherwise be ignored as unknown.
const METHODS: [(&str, &str); 8] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("trace", "TRACE"),
];

/// Maximum number of `$ref` hops followed from one path item.
const MAX_REFERENCE_HOPS: usize = 16;

/// The operations of one API description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSpec {
    /// Version of the specification the document declares: `3.0.3`, `3.1.0` or `2.0`.
    pub openapi_version: String,
    /// `info.title`.
    pub title: Option<String>,
    /// `info.version`, the version of the API itself.
    pub version: Option<String>,
    pub operations: Vec<SpecOperation>,
}

/// One method on one path template, as served on one host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SpecOperation {
    /// Lowercase host with a port when the server names a non-default one
    /// (`api.example.com`, `api.example.com:8443`, `[::1]:8080`), or `None`
    /// when the server URL is relative and the operation is served on any host.
    pub host: Option<String>,
    /// Uppercase method name, such as `GET`.
    pub method: String,
    /// Path template with the server's base path prefixed, repeated slashes
    /// collapsed, a trailing slash kept as written and the documented parameter
    /// names kept: `/svc-a/users/{userId}`.
    pub path: String,
    /// `deprecated: true`, or a truthy `x-deprecated` on the operation or its path item.
    pub deprecated: bool,
}

/// Bounds on the documents [`parse_spec_with_limits`] accepts.
///
/// They bound the memory and time that parsing one document takes. The
/// defaults are estimates meant to admit large generated descriptions.
/// Callers with larger documents raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecLimits {
    /// Maximum size of the document in bytes.
    pub max_document_bytes: usize,
    /// Maximum number of entries under `paths`, not counting `x-` extensions.
    pub max_paths: usize,
    /// Maximum number of operations after every server is applied, since an
    /// operation served on three servers counts three times.
    pub max_operations: usize,
}

impl Default for SpecLimits {
    fn default() -> Self {
        SpecLimits {
            max_document_bytes: 32 * 1024 * 1024,
            max_paths: 20_000,
            max_operations: 200_000,
        }
    }
}

/// Parses an OpenAPI 3.0, OpenAPI 3.1 or Swagger 2.0 document, in JSON or
/// YAML, with the default [`SpecLimits`].
pub fn parse_spec(bytes: &[u8]) -> Result<ApiSpec, SpecError> {
    parse_spec_with_limits(bytes, &SpecLimits::default())
}

/// Parses an OpenAPI 3.0, OpenAPI 3.1 or Swagger 2.0 document, in JSON or YAML.
///
/// The kind of document comes from its `openapi` or `swagger` field. Each
/// operation is produced once per server it is served on, and operations that
/// end up with the same host, method and template (apart from parameter
/// names) are kept once, deprecated only if every copy is.
///
/// A `$ref` on a path item is followed within the document. A reference to
/// another file is an error, because this parser does no I/O.
pub fn parse_spec_with_limits(bytes: &[u8], limits: &SpecLimits) -> Result<ApiSpec, SpecError> {
    let document = read_document(bytes, limits.max_document_bytes)?;
    let Value::Object(root) = &document else {
        return Err(SpecError::RootNotObject {
            found: kind_of(&document),
        });
    };

    let (dialect, openapi_version) = read_dialect(root)?;
    let (title, version) = read_info(root)?;
    let root_servers = match dialect {
        Dialect::Swagger2 => vec![read_swagger_server(root)?],
        Dialect::OpenApi3 { .. } => match root.get("servers") {
            None | Some(Value::Null) => Vec::new(),
            Some(servers) => read_servers(servers, "/servers")?,
        },
    };
    let root_servers = non_empty_or_root(root_servers);

    let mut reader = OperationReader {
        document: &document,
        dialect,
        limits,
        operations: Vec::new(),
        positions: BTreeMap::new(),
    };
    if let Some(paths) = read_paths_object(root, dialect)? {
        count_paths(paths, limits)?;
        for (key, item) in paths {
            if key.starts_with("x-") {
                continue;
            }
            reader.read_path_item(key, item, &root_servers)?;
        }
    }

    Ok(ApiSpec {
        openapi_version,
        title,
        version,
        operations: reader.operations,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Swagger2,
    OpenApi3 { minor: u8 },
}

fn read_dialect(root: &Map<String, Value>) -> Result<(Dialect, String), SpecError> {
    match (root.get("openapi"), root.get("swagger")) {
        (Some(_), Some(_)) => Err(invalid(
            "/swagger",
            "the document has both `openapi` and `swagger`; keep only the one for its format",
        )),
        (Some(value), None) => {
            let version = version_text(value, "/openapi")?;
            match openapi_minor(&version) {
                Some(minor) => Ok((Dialect::OpenApi3 { minor }, version)),
                None => Err(SpecError::UnsupportedVersion {
                    pointer: "/openapi".to_string(),
                    version,
                }),
            }
        }
        (None, Some(value)) => {
            let version = version_text(value, "/swagger")?;
            if version == "2.0" {
                Ok((Dialect::Swagger2, version))
            } else {
                Err(SpecError::UnsupportedVersion {
                    pointer: "/swagger".to_string(),
                    version,
                })
            }
        }
        (None, None) => Err(SpecError::MissingVersion),
    }
}

/// Returns the text of a version field. YAML reads an unquoted `3.0` or `2.0`
/// as a number, whose text is still the version the author wrote.
fn version_text(value: &Value, pointer: &str) -> Result<String, SpecError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(wrong_type(
            pointer,
            "a version string such as \"3.1.0\"",
            other,
        )),
    }
}

/// Returns the minor version of `3.0`, `3.0.N`, `3.1` or `3.1.N`, with an
/// optional pre-release suffix such as `3.1.0-rc1`.
///
/// NOTE: OpenAPI 3.2 (the `query` method and `additionalOperations`) is not
/// read yet, so its documents are rejected as unsupported.
fn openapi_minor(version: &str) -> Option<u8> {
    let core = version.split_once('-').map_or(version, |(core, _)| core);
    let mut parts = core.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let patch_valid = match parts.next() {
        None => true,
        Some(patch) => !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()),
    };
    if major != "3" || parts.next().is_some() || !patch_valid {
        return None;
    }
    match minor {
        "0" => Some(0),
        "1" => Some(1),
        _ => None,
    }
}

fn read_info(root: &Map<String, Value>) -> Result<(Option<String>, Option<String>), SpecError> {
    let info = match root.get("info") {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(Value::Object(info)) => info,
        Some(other) => return Err(wrong_type("/info", "an object", other)),
    };
    let text = |field: &str| match info.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        // YAML reads `version: 1.2` as a number.
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(wrong_type(
            &child_pointer("/info", field),
            "a string",
            other,
        )),
    };
    Ok((text("title")?, text("version")?))
}

fn read_paths_object(
    root: &Map<String, Value>,
    dialect: Dialect,
) -> Result<Option<&Map<String, Value>>, SpecError> {
    match root.get("paths") {
        Some(Value::Object(paths)) => Ok(Some(paths)),
        Some(other) => Err(wrong_type("/paths", "an object", other)),
        // OpenAPI 3.1 made `paths` optional for documents that only describe webhooks.
        None if dialect == (Dialect::OpenApi3 { minor: 1 }) => Ok(None),
        None => Err(invalid(
            "/paths",
            "missing required field `paths`; only OpenAPI 3.1 documents may omit it",
        )),
    }
}

fn count_paths(paths: &Map<String, Value>, limits: &SpecLimits) -> Result<(), SpecError> {
    let count = paths.keys().filter(|key| !key.starts_with("x-")).count();
    if count > limits.max_paths {
        return Err(SpecError::TooManyPaths {
            count,
            limit: limits.max_paths,
        });
    }
    Ok(())
}

fn non_empty_or_root(servers: Vec<ServerBase>) -> Vec<ServerBase> {
    if servers.is_empty() {
        vec![ServerBase::root()]
    } else {
        servers
    }
}

/// Collects operations, keeping one per host, method and template.
struct OperationReader<'a> {
    document: &'a Value,
    dialect: Dialect,
    limits: &'a SpecLimits,
    operations: Vec<SpecOperation>,
    /// Position in `operations` of each host, method and comparison key.
    positions: BTreeMap<(Option<String>, String, String), usize>,
}

impl<'a> OperationReader<'a> {
    fn read_path_item(
        &mut self,
        key: &str,
        item: &'a Value,
        root_servers: &[ServerBase],
    ) -> Result<(), SpecError> {
        let pointer = child_pointer("/paths", key);
        if !key.starts_with('/') {
            return Err(invalid(
                &pointer,
                format!("path {key:?} must start with '/'"),
            ));
        }
        // A query string is not part of a path template, but some generators
        // add one to tell overloaded operations apart.
        let path = key.split('?').next().unwrap_or_default();
        Template::parse(path).map_err(|message| invalid(&pointer, message))?;

        let item = PathItem::resolve(self.document, item, &pointer)?;
        let item_servers = self.override_servers(item.get("servers"), root_servers)?;
        let item_deprecated = item
            .get("x-deprecated")
            .is_some_and(|(value, _)| truthy(value));

        for (field, method) in METHODS {
            let Some((operation, operation_pointer)) = item.get(field) else {
                continue;
            };
            let Value::Object(operation) = operation else {
                return Err(wrong_type(
                    &operation_pointer,
                    "an operation object",
                    operation,
                ));
            };

            let deprecated = item_deprecated || read_deprecated(operation, &operation_pointer)?;
            let servers = operation
                .get("servers")
                .map(|servers| (servers, child_pointer(&operation_pointer, "servers")));
            let servers = self.override_servers(servers, &item_servers)?;
            for server in &servers {
                let full_path = join_base_path(&server.base_path, path);
                Template::parse(&full_path).map_err(|message| invalid(&pointer, message))?;
                self.push(SpecOperation {
                    host: server.host.clone(),
                    method: method.to_string(),
                    path: full_path,
                    deprecated,
                })?;
            }
        }
        Ok(())
    }

    /// Returns the servers of a path item or operation, or the inherited ones
    /// when the field is missing, empty, or the document is Swagger 2.0.
    fn override_servers(
        &self,
        servers: Option<(&Value, String)>,
        inherited: &[ServerBase],
    ) -> Result<Vec<ServerBase>, SpecError> {
        let own = match (self.dialect, servers) {
            (Dialect::OpenApi3 { .. }, Some((value, pointer))) if !value.is_null() => {
                read_servers(value, &pointer)?
            }
            _ => Vec::new(),
        };
        Ok(if own.is_empty() {
            inherited.to_vec()
        } else {
            own
        })
    }

    fn push(&mut self, operation: SpecOperation) -> Result<(), SpecError> {
        let key = (
            operation.host.clone(),
            operation.method.clone(),
            comparison_key(&operation.path),
        );
        if let Some(&position) = self.positions.get(&key) {
            let existing = &mut self.operations[position];
            existing.deprecated &= operation.deprecated;
            return Ok(());
        }

        if self.operations.len() >= self.limits.max_operations {
            return Err(SpecError::TooManyOperations {
                limit: self.limits.max_operations,
            });
        }
        self.positions.insert(key, self.operations.len());
        self.operations.push(operation);
        Ok(())
    }
}

/// A path item with the items its `$ref` chain leads to, nearest first.
///
/// A field is looked up in the item itself, then along the chain, so fields
/// written next to `$ref` win over the referenced ones, and each value keeps
/// the pointer of the place it was written.
struct PathItem<'a> {
    layers: Vec<(&'a Map<String, Value>, String)>,
}

impl<'a> PathItem<'a> {
    fn resolve(document: &'a Value, item: &'a Value, pointer: &str) -> Result<Self, SpecError> {
        let mut layers = Vec::new();
        let mut current = item;
        let mut current_pointer = pointer.to_string();
        loop {
            let Value::Object(object) = current else {
                return Err(wrong_type(&current_pointer, "a path item object", current));
            };
            layers.push((object, current_pointer.clone()));

            let Some(reference) = object.get("$ref") else {
                return Ok(PathItem { layers });
            };
            if layers.len() > MAX_REFERENCE_HOPS {
                return Err(invalid(
                    pointer,
                    format!(
                        "the $ref chain is longer than {MAX_REFERENCE_HOPS} references; check for a reference cycle"
                    ),
                ));
            }
            let reference_pointer = child_pointer(&current_pointer, "$ref");
            let Value::String(reference) = reference else {
                return Err(wrong_type(&reference_pointer, "a string", reference));
            };
            let target = local_reference(reference)
                .map_err(|message| invalid(&reference_pointer, message))?;
            current = document.pointer(&target).ok_or_else(|| {
                invalid(
                    &reference_pointer,
                    format!("reference {reference:?} points to nothing in this document"),
                )
            })?;
            current_pointer = target;
        }
    }

    fn get(&self, field: &str) -> Option<(&'a Value, String)> {
        self.layers.iter().find_map(|(object, pointer)| {
            object
                .get(field)
                .map(|value| (value, child_pointer(pointer, field)))
        })
    }
}

/// Returns the JSON pointer of a reference within the document (`#/components/pathItems/Orders`).
fn local_reference(reference: &str) -> Result<String, String> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(format!(
            "reference {reference:?} points into another document, which is not supported; bundle the description into one document first"
        ));
    };
    let fragment = percent_decode_str(fragment)
        .decode_utf8()
        .map_err(|_| format!("reference {reference:?} is not valid UTF-8 once percent-decoded"))?;
    if !fragment.is_empty() && !fragment.starts_with('/') {
        return Err(format!(
            "reference {reference:?} is not a JSON pointer such as \"#/components/pathItems/Orders\""
        ));
    }
    Ok(fragment.into_owned())
}

fn read_deprecated(operation: &Map<String, Value>, pointer: &str) -> Result<bool, SpecError> {
    let deprecated = match operation.get("deprecated") {
        None => false,
        Some(Value::Bool(deprecated)) => *deprecated,
        Some(other) => {
            return Err(wrong_type(
                &child_pointer(pointer, "deprecated"),
                "a boolean",
                other,
            ));
        }
    };
    let extension = operation.get("x-deprecated").is_some_and(truthy);
    Ok(deprecated || extension)
}

/// Reads an `x-deprecated` extension, whose form differs between tools:
/// `true`, a message string, an object with details, or a non-zero number
/// mark the operation deprecated. `false`, null, an empty string, the string
/// `"false"`, zero and an empty array do not.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64() != Some(0.0),
        Value::String(text) => {
            let text = text.trim();
            !text.is_empty() && !text.eq_ignore_ascii_case("false")
        }
        Value::Array(items) => !items.is_empty(),
        Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse_json(document: &Value) -> Result<ApiSpec, SpecError> {
        parse_spec(document.to_string().as_bytes())
    }

    fn operations(document: &Value) -> Vec<(Option<String>, String, String, bool)> {
        let spec = parse_json(document).unwrap_or_else(|error| panic!("{error}"));
        spec.operations
            .into_iter()
            .map(|operation| {
                (
                    operation.host,
                    operation.method,
                    operation.path,
                    operation.deprecated,
                )
            })
            .collect()
    }

    fn operation(
        host: Option<&str>,
        method: &str,
        path: &str,
        deprecated: bool,
    ) -> (Option<String>, String, String, bool) {
        (
            host.map(str::to_string),
            method.to_string(),
            path.to_string(),
            deprecated,
        )
    }

    fn expect_error(document: &Value, pointer: Option<&str>, message: &str) {
        let error = parse_json(document).expect_err(&document.to_string());
        assert_eq!(error.pointer(), pointer, "pointer of {error}");
        assert!(
            error.to_string().contains(message),
            "error is {error}, expected it to contain {message:?}"
        );
    }

    #[test]
    fn dialect_from_version_field() {
        let cases = [
            (json!({"openapi": "3.0.3", "paths": {}}), "3.0.3"),
            (json!({"openapi": "3.1.0", "paths": {}}), "3.1.0"),
            (json!({"openapi": "3.1.1-rc1", "paths": {}}), "3.1.1-rc1"),
            (json!({"openapi": 3.0, "paths": {}}), "3.0"),
            (json!({"swagger": "2.0", "paths": {}}), "2.0"),
            (json!({"swagger": 2.0, "paths": {}}), "2.0"),
        ];
        for (document, expected) in cases {
            let spec = parse_json(&document).unwrap_or_else(|error| panic!("{document}: {error}"));
            assert_eq!(spec.openapi_version, expected, "document {document}");
        }
    }

    #[test]
    fn unsupported_versions_are_rejected() {
        for version in ["4.0.0", "3.2.0", "3", "3.0.x", "2.0.0", "1.2", "3.0.1.4"] {
            let error = parse_json(&json!({"openapi": version, "paths": {}})).expect_err(version);
            assert_eq!(
                error,
                SpecError::UnsupportedVersion {
                    pointer: "/openapi".into(),
                    version: version.into()
                },
                "openapi {version}"
            );
        }
        let error = parse_json(&json!({"swagger": "1.2", "paths": {}})).expect_err("swagger 1.2");
        assert_eq!(
            error.to_string(),
            "unsupported version \"1.2\" at /swagger; supported are OpenAPI 3.0.x and 3.1.x (field `openapi`) and Swagger 2.0 (field `swagger`)"
        );
    }

    #[test]
    fn version_field_errors() {
        let error = parse_json(&json!({"info": {"title": "x"}, "paths": {}})).expect_err("none");
        assert_eq!(error, SpecError::MissingVersion);
        expect_error(
            &json!({"openapi": true, "paths": {}}),
            Some("/openapi"),
            "expected a version string such as \"3.1.0\", found a boolean",
        );
        expect_error(
            &json!({"openapi": "3.1.0", "swagger": "2.0", "paths": {}}),
            Some("/swagger"),
            "has both `openapi` and `swagger`",
        );
        let error = parse_spec(b"[1, 2]").expect_err("array root");
        assert_eq!(error, SpecError::RootNotObject { found: "an array" });
    }

    #[test]
    fn info_fields_are_read() {
        let spec = parse_json(&json!({
            "openapi": "3.0.0",
            "info": {"title": "Orders", "version": 2, "x-logo": {}},
            "paths": {}
        }))
        .expect("valid");
        assert_eq!(spec.title.as_deref(), Some("Orders"), "title");
        assert_eq!(
            spec.version.as_deref(),
            Some("2"),
            "numeric version as text"
        );
        expect_error(
            &json!({"openapi": "3.0.0", "info": {"title": ["x"]}, "paths": {}}),
            Some("/info/title"),
            "expected a string, found an array",
        );
        expect_error(
            &json!({"openapi": "3.0.0", "info": "Orders", "paths": {}}),
            Some("/info"),
            "expected an object, found a string",
        );
    }

    #[test]
    fn paths_field_rules() {
        expect_error(
            &json!({"openapi": "3.0.3"}),
            Some("/paths"),
            "missing required field `paths`",
        );
        expect_error(
            &json!({"swagger": "2.0"}),
            Some("/paths"),
            "missing required field `paths`",
        );
        expect_error(
            &json!({"openapi": "3.1.0", "paths": []}),
            Some("/paths"),
            "expected an object, found an array",
        );
        let spec =
            parse_json(&json!({"openapi": "3.1.0", "webhooks": {}})).expect("3.1 without paths");
        assert!(spec.operations.is_empty(), "no operations without paths");
    }

    #[test]
    fn every_method_is_read() {
        let item: Map<String, Value> = METHODS
            .iter()
            .map(|(field, _)| (field.to_string(), json!({})))
            .chain([
                ("parameters".to_string(), json!([])),
                ("summary".to_string(), json!("x")),
            ])
            .collect();
        let document = json!({"openapi": "3.0.3", "paths": {"/a": item}});
        let methods: Vec<String> = operations(&document)
            .into_iter()
            .map(|(_, method, _, _)| method)
            .collect();
        assert_eq!(
            methods,
            [
                "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"
            ],
            "one operation per method field, other fields ignored"
        );
    }

    #[test]
    fn deprecation_sources() {
        let document = json!({
            "openapi": "3.0.3",
            "paths": {
                "/a": {
                    "get": {"deprecated": true},
                    "put": {"deprecated": false},
                    "post": {"x-deprecated": true},
                    "patch": {"x-deprecated": "use PUT /b"},
                    "delete": {"x-deprecated": false}
                },
                "/b": {"x-deprecated": {"since": "2024-01-01"}, "get": {}}
            }
        });
        let expected = vec![
            operation(None, "GET", "/a", true),
            operation(None, "PUT", "/a", false),
            operation(None, "POST", "/a", true),
            operation(None, "DELETE", "/a", false),
            operation(None, "PATCH", "/a", true),
            operation(None, "GET", "/b", true),
        ];
        assert_eq!(operations(&document), expected);
    }

    #[test]
    fn truthy_forms() {
        let cases = [
            (json!(null), false),
            (json!(true), true),
            (json!(false), false),
            (json!(1), true),
            (json!(0), false),
            (json!("since v2"), true),
            (json!(""), false),
            (json!(" FALSE "), false),
            (json!([]), false),
            (json!(["v2"]), true),
            (json!({}), true),
        ];
        for (value, expected) in cases {
            assert_eq!(truthy(&value), expected, "x-deprecated {value}");
        }
    }

    #[test]
    fn servers_override_by_level() {
        let document = json!({
            "openapi": "3.0.3",
            "servers": [{"url": "https://api.example.com/v1"}],
            "paths": {
                "/root": {"get": {}},
                "/item": {
                    "servers": [{"url": "https://items.example.com"}],
                    "get": {},
                    "put": {"servers": [{"url": "/upload"}, {"url": "https://up.example.com:8443/u"}]},
                    "delete": {"servers": []}
                }
            }
        });
        let expected = vec![
            operation(Some("items.example.com"), "GET", "/item", false),
            operation(None, "PUT", "/upload/item", false),
            operation(Some("up.example.com:8443"), "PUT", "/u/item", false),
            operation(Some("items.example.com"), "DELETE", "/item", false),
            operation(Some("api.example.com"), "GET", "/v1/root", false),
        ];
        assert_eq!(operations(&document), expected);
    }

    #[test]
    fn swagger_ignores_oas3_servers() {
        let document = json!({
            "swagger": "2.0",
            "host": "billing.example.com",
            "basePath": "/svc-b/",
            "servers": [{"url": "https://ignored.example.com"}],
            "paths": {"/invoices/": {"servers": [{"url": "/x"}], "get": {}}}
        });
        let expected = vec![operation(
            Some("billing.example.com"),
            "GET",
            "/svc-b/invoices/",
            false,
        )];
        assert_eq!(operations(&document), expected);
    }

    #[test]
    fn missing_servers_mean_any_host() {
        let document = json!({"openapi": "3.1.0", "servers": [], "paths": {"/a": {"get": {}}}});
        assert_eq!(
            operations(&document),
            vec![operation(None, "GET", "/a", false)]
        );
        let document = json!({"swagger": "2.0", "paths": {"/a": {"get": {}}}});
        assert_eq!(
            operations(&document),
            vec![operation(None, "GET", "/a", false)]
        );
    }

    #[test]
    fn duplicate_operations_are_merged() {
        let document = json!({
            "openapi": "3.0.3",
            "servers": [{"url": "/v1"}, {"url": "/v1/"}],
            "paths": {
                "/a//b": {"get": {"deprecated": true}},
                "/a/b": {"get": {}},
                "/c/{id}": {"get": {"deprecated": true}},
                "/c/{cId}": {"get": {"deprecated": true}},
                "/search?kind=user": {"get": {}},
                "/search?kind=group": {"get": {}}
            }
        });
        let expected = vec![
            operation(None, "GET", "/v1/a/b", false),
            operation(None, "GET", "/v1/c/{cId}", true),
            operation(None, "GET", "/v1/search", false),
        ];
        assert_eq!(operations(&document), expected);
    }

    #[test]
    fn path_item_references_are_followed() {
        let document = json!({
            "openapi": "3.1.0",
            "paths": {
                "/sessions/{sessionId}": {"$ref": "#/components/pathItems/Session"},
                "/tokens/{id}": {"$ref": "#/components/pathItems/Session", "get": {"deprecated": true}},
                "/a~b/{x}": {"$ref": "#/components/pathItems/Alias"}
            },
            "components": {
                "pathItems": {
                    "Session": {"get": {}, "delete": {}},
                    "Alias": {"$ref": "#/components/pathItems/Session%20Copy"},
                    "Session Copy": {"head": {}}
                }
            }
        });
        let expected = vec![
            operation(None, "HEAD", "/a~b/{x}", false),
            operation(None, "GET", "/sessions/{sessionId}", false),
            operation(None, "DELETE", "/sessions/{sessionId}", false),
            operation(None, "GET", "/tokens/{id}", true),
            operation(None, "DELETE", "/tokens/{id}", false),
        ];
        assert_eq!(operations(&document), expected);
    }

    #[test]
    fn reference_errors() {
        expect_error(
            &json!({"openapi": "3.1.0", "paths": {"/a": {"$ref": "common.yaml#/Users"}}}),
            Some("/paths/~1a/$ref"),
            "points into another document, which is not supported; bundle the description into one document first",
        );
        expect_error(
            &json!({"openapi": "3.1.0", "paths": {"/a": {"$ref": "#/components/pathItems/Nope"}}}),
            Some("/paths/~1a/$ref"),
            "points to nothing in this document",
        );
        expect_error(
            &json!({"openapi": "3.1.0", "paths": {"/a": {"$ref": "#components"}}}),
            Some("/paths/~1a/$ref"),
            "is not a JSON pointer",
        );
        expect_error(
            &json!({"openapi": "3.1.0", "paths": {"/a": {"$ref": 3}}}),
            Some("/paths/~1a/$ref"),
            "expected a string, found a number",
        );
        expect_error(
            &json!({
                "openapi": "3.1.0",
                "paths": {"/a": {"$ref": "#/x-loop/one"}},
                "x-loop": {"one": {"$ref": "#/x-loop/two"}, "two": {"$ref": "#/x-loop/one"}}
            }),
            Some("/paths/~1a"),
            "check for a reference cycle",
        );
        expect_error(
            &json!({
                "openapi": "3.1.0",
                "paths": {"/a": {"$ref": "#/x-items/a"}},
                "x-items": {"a": {"get": "not an operation"}}
            }),
            Some("/x-items/a/get"),
            "expected an operation object, found a string",
        );
    }

    #[test]
    fn malformed_paths_entries() {
        expect_error(
            &json!({"openapi": "3.0.3", "paths": {"/users": {"get": "list users"}}}),
            Some("/paths/~1users/get"),
            "expected an operation object, found a string",
        );
        expect_error(
            &json!({"openapi": "3.0.3", "paths": {"/users": ["get"]}}),
            Some("/paths/~1users"),
            "expected a path item object, found an array",
        );
        expect_error(
            &json!({"openapi": "3.0.3", "paths": {"users": {"get": {}}}}),
            Some("/paths/users"),
            "path \"users\" must start with '/'",
        );
        expect_error(
            &json!({"openapi": "3.0.3", "paths": {"/users/{id": {"get": {}}}}),
            Some("/paths/~1users~1{id"),
            "has a '{' without a closing '}'",
        );
        expect_error(
            &json!({"openapi": "3.0.3", "paths": {"/users": {"get": {"deprecated": "yes"}}}}),
            Some("/paths/~1users/get/deprecated"),
            "expected a boolean, found a string",
        );
        expect_error(
            &json!({"openapi": "3.0.3", "paths": {"/u": {"get": {"servers": {"url": "/x"}}}}}),
            Some("/paths/~1u/get/servers"),
            "expected an array of server objects",
        );
        expect_error(
            &json!({"openapi": "3.0.3", "paths": {"/u": {"servers": [{"url": "https://:8/"}], "get": {}}}}),
            Some("/paths/~1u/servers/0/url"),
            "has an empty host",
        );
    }

    #[test]
    fn extension_keys_are_skipped() {
        let document = json!({
            "openapi": "3.0.3",
            "paths": {"x-internal": "anything", "/a": {"get": {}, "x-codegen": 1}}
        });
        assert_eq!(
            operations(&document),
            vec![operation(None, "GET", "/a", false)]
        );
    }

    #[test]
    fn path_limit_applies() {
        let paths: Map<String, Value> = (0..11)
            .map(|index| (format!("/p{index}"), json!({"get": {}})))
            .chain([("x-not-counted".to_string(), json!({}))])
            .collect();
        let document = json!({"openapi": "3.0.3", "paths": paths}).to_string();
        let limits = SpecLimits {
            max_paths: 10,
            ..SpecLimits::default()
        };
        let error = parse_spec_with_limits(document.as_bytes(), &limits).expect_err("11 paths");
        assert_eq!(
            error,
            SpecError::TooManyPaths {
                count: 11,
                limit: 10
            }
        );
        assert_eq!(
            error.to_string(),
            "the document has 11 paths, more than the limit of 10; raise SpecLimits::max_paths to load it"
        );
    }

    #[test]
    fn operation_limit_applies() {
        let document = json!({
            "openapi": "3.0.3",
            "servers": [{"url": "/a"}, {"url": "/b"}, {"url": "/c"}],
            "paths": {"/x": {"get": {}, "put": {}}}
        })
        .to_string();
        let limits = SpecLimits {
            max_operations: 5,
            ..SpecLimits::default()
        };
        let error = parse_spec_with_limits(document.as_bytes(), &limits).expect_err("6 operations");
        assert_eq!(error, SpecError::TooManyOperations { limit: 5 });
    }

    fn json_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("openapi".to_string()),
            Just("swagger".to_string()),
            Just("paths".to_string()),
            Just("servers".to_string()),
            Just("url".to_string()),
            Just("variables".to_string()),
            Just("default".to_string()),
            Just("host".to_string()),
            Just("basePath".to_string()),
            Just("schemes".to_string()),
            Just("info".to_string()),
            Just("version".to_string()),
            Just("get".to_string()),
            Just("trace".to_string()),
            Just("deprecated".to_string()),
            Just("x-deprecated".to_string()),
            Just("$ref".to_string()),
            "/[a-z{}/]{0,8}",
            "[a-z-]{1,6}",
        ]
    }

    fn json_string() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("3.0.3".to_string()),
            Just("3.1.0".to_string()),
            Just("2.0".to_string()),
            Just("#/paths".to_string()),
            Just("#/x".to_string()),
            Just("https://{h}.example.com:{p}/b".to_string()),
            "[a-z/{}:.#~0-9]{0,12}",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            json_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(json_key(), inner, 0..6)
                    .prop_map(|object| Value::Object(object.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_spec(&bytes);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[\\[\\]{}:,\"'&*!|>#\n -~]{0,200}") {
            let _ = parse_spec(text.as_bytes());
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let _ = parse_spec(value.to_string().as_bytes());
        }

        #[test]
        fn arbitrary_parts_never_panic(
            paths in json_value(),
            servers in json_value(),
            item in json_value(),
            swagger in any::<bool>(),
        ) {
            let mut document = if swagger {
                json!({"swagger": "2.0", "host": "a.example.com"})
            } else {
                json!({"openapi": "3.1.0", "servers": servers})
            };
            document["paths"] = paths;
            let _ = parse_json(&document);
            document["paths"] = json!({"/a/{b}": item, "/c": {"$ref": "#/paths/~1a~1{b}"}});
            let _ = parse_json(&document);
        }
    }
}
