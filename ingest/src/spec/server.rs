//! Servers of a description: the host and base path that operations are served under.
//!
//! OpenAPI 3 lists server URLs (`servers`) at the root, on path items and on
//! operations, each level replacing the one above. Swagger 2.0 has one `host`,
//! `basePath` and `schemes` for the whole document. Both are reduced to a
//! [`ServerBase`]: an optional host (lowercase, with a port only when it is not
//! the default port of the scheme) and a base path.

use serde_json::{Map, Value};

use super::error::{SpecError, child_pointer, invalid, wrong_type};

/// Host and base path that an operation's path is appended to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ServerBase {
    /// `name` or `name:port`. IPv6 addresses are written in brackets (`[::1]:8080`).
    pub(super) host: Option<String>,
    /// Empty or starting with `/`.
    pub(super) base_path: String,
}

impl ServerBase {
    /// Returns the server OpenAPI 3 assumes when `servers` is missing or empty: `/`.
    pub(super) fn root() -> ServerBase {
        ServerBase {
            host: None,
            base_path: String::new(),
        }
    }
}

/// Reads an OpenAPI 3 `servers` array at `pointer`.
///
/// Returns an empty list for an empty array, which the caller treats like a
/// missing field. Variables in the URL are replaced by their `default`.
/// Servers that resolve to the same host and base path are kept once.
pub(super) fn read_servers(value: &Value, pointer: &str) -> Result<Vec<ServerBase>, SpecError> {
    let Value::Array(servers) = value else {
        return Err(wrong_type(pointer, "an array of server objects", value));
    };

    let mut bases: Vec<ServerBase> = Vec::with_capacity(servers.len());
    for (index, server) in servers.iter().enumerate() {
        let server_pointer = child_pointer(pointer, &index.to_string());
        let Value::Object(server) = server else {
            return Err(wrong_type(&server_pointer, "a server object", server));
        };
        let base = read_server(server, &server_pointer)?;
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    Ok(bases)
}

fn read_server(server: &Map<String, Value>, pointer: &str) -> Result<ServerBase, SpecError> {
    let url_pointer = child_pointer(pointer, "url");
    let url = match server.get("url") {
        Some(Value::String(url)) => url,
        Some(other) => return Err(wrong_type(&url_pointer, "a string", other)),
        None => return Err(invalid(pointer, "missing required field `url`")),
    };

    let variables = read_variables(server, pointer)?;
    let url =
        substitute_variables(url, &variables).map_err(|message| invalid(&url_pointer, message))?;
    resolve_url(&url).map_err(|message| invalid(&url_pointer, message))
}

/// Reads the `default` of every server variable.
fn read_variables(
    server: &Map<String, Value>,
    pointer: &str,
) -> Result<Vec<(String, String)>, SpecError> {
    let variables_pointer = child_pointer(pointer, "variables");
    let variables = match server.get("variables") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(variables)) => variables,
        Some(other) => return Err(wrong_type(&variables_pointer, "an object", other)),
    };

    let mut defaults = Vec::with_capacity(variables.len());
    for (name, variable) in variables {
        let variable_pointer = child_pointer(&variables_pointer, name);
        let Value::Object(variable) = variable else {
            return Err(wrong_type(
                &variable_pointer,
                "a server variable object",
                variable,
            ));
        };
        let default = match variable.get("default") {
            Some(Value::String(text)) => text.clone(),
            // YAML reads `default: 8443` as a number, whose text is what the author meant.
            Some(Value::Number(number)) => number.to_string(),
            Some(other) => {
                return Err(wrong_type(
                    &child_pointer(&variable_pointer, "default"),
                    "a string",
                    other,
                ));
            }
            None => {
                return Err(invalid(
                    &variable_pointer,
                    "missing required field `default`",
                ));
            }
        };
        defaults.push((name.clone(), default));
    }
    Ok(defaults)
}

/// Replaces each `{name}` in a server URL with the default of that variable.
///
/// NOTE: only the default is used, so requests to a host or base path built
/// from another `enum` value of a variable (region `us` when the default is
/// `eu`) match no operation of this server and count as shadows.
fn substitute_variables(url: &str, variables: &[(String, String)]) -> Result<String, String> {
    let mut substituted = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        substituted.push_str(&rest[..open]);
        let after_open = &rest[open + 1..];
        let close = after_open
            .find('}')
            .ok_or_else(|| format!("server URL {url:?} has a '{{' without a closing '}}'"))?;
        let name = &after_open[..close];
        let value = variables
            .iter()
            .find(|(variable, _)| variable == name)
            .map(|(_, value)| value)
            .ok_or_else(|| {
                format!(
                    "server URL {url:?} uses variable {{{name}}}, which `variables` does not define; add it with a `default`"
                )
            })?;
        substituted.push_str(value);
        rest = &after_open[close + 1..];
    }
    substituted.push_str(rest);
    Ok(substituted)
}

/// Resolves a server URL with its variables substituted.
///
/// An absolute URL (`https://api.example.com:8443/v1`) or a scheme-relative
/// one (`//api.example.com/v1`) gives a host and a base path. A relative URL
/// (`/v1`, `v1`, `./v1`) gives only a base path. OpenAPI resolves it against
/// the location of the document, which a parser of bytes does not know, so it
/// is read as if the document were served from the root of any host. A query
/// or fragment in the URL is ignored.
pub(super) fn resolve_url(url: &str) -> Result<ServerBase, String> {
    let without_fragment = url.split('#').next().unwrap_or_default();
    let without_query = without_fragment.split('?').next().unwrap_or_default();

    let (scheme, after_scheme) = match without_query.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), Some(rest)),
        _ => (None, without_query.strip_prefix("//")),
    };

    let Some(after_scheme) = after_scheme else {
        return Ok(ServerBase {
            host: None,
            base_path: relative_base_path(without_query),
        });
    };

    let authority_end = after_scheme.find('/').unwrap_or(after_scheme.len());
    let (authority, path) = after_scheme.split_at(authority_end);
    let host = normalise_authority(authority, scheme.as_slice())
        .map_err(|reason| format!("server URL {url:?} {reason}"))?;
    Ok(ServerBase {
        host: Some(host),
        base_path: path.to_string(),
    })
}

fn relative_base_path(path: &str) -> String {
    let path = path.trim_start_matches("./");
    if path == "." || path.is_empty() {
        String::new()
    } else if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// Returns whether `text` is a URI scheme (RFC 3986, section 3.1).
fn is_scheme(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Normalises `[userinfo@]host[:port]` to a lowercase host, with the port
/// kept only when it differs from the default port of every scheme given.
///
/// The error completes a sentence about the URL or field.
pub(super) fn normalise_authority(authority: &str, schemes: &[&str]) -> Result<String, String> {
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (name, port, bracketed) = split_host_port(host_port)?;

    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err("has an empty host".to_string());
    }
    if name
        .bytes()
        .any(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'{' | b'}' | b'\\'))
    {
        return Err(format!("has an invalid host {name:?}"));
    }

    let is_default_port = |port: u16| {
        !schemes.is_empty()
            && schemes
                .iter()
                .all(|scheme| default_port(scheme) == Some(port))
    };
    let name = if bracketed { format!("[{name}]") } else { name };
    Ok(match port {
        Some(port) if !is_default_port(port) => format!("{name}:{port}"),
        _ => name,
    })
}

/// Splits `host[:port]` or `[v6][:port]`. The flag is true when the host was in brackets.
pub(super) fn split_host_port(text: &str) -> Result<(&str, Option<u16>, bool), String> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (name, rest) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("has an IPv6 host {text:?} without a closing ']'"))?;
        let port = match rest {
            "" => None,
            _ => Some(parse_port(rest.strip_prefix(':').unwrap_or(rest), text)?),
        };
        return Ok((name, port, true));
    }
    if text.matches(':').count() > 1 {
        return Err(format!(
            "has an IPv6 host {text:?} without brackets; write it as [address] or [address]:port"
        ));
    }
    match text.rsplit_once(':') {
        Some((name, port)) => Ok((name, Some(parse_port(port, text)?), false)),
        None => Ok((text, None, false)),
    }
}

fn parse_port(port: &str, authority: &str) -> Result<u16, String> {
    let valid = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| port.parse::<u16>().ok())
        .flatten()
        .ok_or_else(|| {
            format!("has an invalid port in {authority:?}; expected a number from 0 to 65535")
        })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Reads the Swagger 2.0 `host`, `basePath` and `schemes` of the document root.
pub(super) fn read_swagger_server(root: &Map<String, Value>) -> Result<ServerBase, SpecError> {
    let schemes = read_schemes(root)?;

    let host = match root.get("host") {
        None | Some(Value::Null) => None,
        Some(Value::String(host)) => {
            if host.contains('/') {
                return Err(invalid(
                    "/host",
                    format!(
                        "`host` must be a host name with an optional port, without scheme or path, found {host:?}"
                    ),
                ));
            }
            let host = normalise_authority(host, &schemes)
                .map_err(|reason| invalid("/host", format!("`host` {host:?} {reason}")))?;
            Some(host)
        }
        Some(other) => return Err(wrong_type("/host", "a string", other)),
    };

    let base_path = match root.get("basePath") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(path)) => relative_base_path(path),
        Some(other) => return Err(wrong_type("/basePath", "a string", other)),
    };
    Ok(ServerBase { host, base_path })
}

fn read_schemes(root: &Map<String, Value>) -> Result<Vec<&str>, SpecError> {
    let schemes = match root.get("schemes") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(schemes)) => schemes,
        Some(other) => return Err(wrong_type("/schemes", "an array of strings", other)),
    };
    schemes
        .iter()
        .enumerate()
        .map(|(index, scheme)| match scheme {
            Value::String(scheme) => Ok(scheme.as_str()),
            other => Err(wrong_type(
                &child_pointer("/schemes", &index.to_string()),
                "a string",
                other,
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(host: Option<&str>, base_path: &str) -> ServerBase {
        ServerBase {
            host: host.map(str::to_string),
            base_path: base_path.to_string(),
        }
    }

    #[test]
    fn resolve_url_cases() {
        let cases = [
            (
                "https://api.example.com/v1",
                base(Some("api.example.com"), "/v1"),
            ),
            (
                "https://API.Example.COM:443/",
                base(Some("api.example.com"), "/"),
            ),
            (
                "http://api.example.com:8080",
                base(Some("api.example.com:8080"), ""),
            ),
            (
                "http://api.example.com:443",
                base(Some("api.example.com:443"), ""),
            ),
            (
                "https://user:secret@api.example.com/v1?x=1#top",
                base(Some("api.example.com"), "/v1"),
            ),
            (
                "//cdn.example.com/assets",
                base(Some("cdn.example.com"), "/assets"),
            ),
            (
                "https://[2001:db8::1]:8443/api",
                base(Some("[2001:db8::1]:8443"), "/api"),
            ),
            ("https://[::1]/api", base(Some("[::1]"), "/api")),
            (
                "https://api.example.com./v1",
                base(Some("api.example.com"), "/v1"),
            ),
            ("/v1", base(None, "/v1")),
            ("v1/orders", base(None, "/v1/orders")),
            ("./v1", base(None, "/v1")),
            (".", base(None, "")),
            ("", base(None, "")),
            ("/", base(None, "/")),
        ];
        for (url, expected) in cases {
            assert_eq!(resolve_url(url), Ok(expected), "url {url:?}");
        }
    }

    #[test]
    fn resolve_url_rejects_bad_authority() {
        let cases = [
            ("https:///v1", "has an empty host"),
            ("https://api.example.com:http/v1", "invalid port"),
            ("https://api.example.com:70000", "invalid port"),
            ("https://[::1/v1", "without a closing ']'"),
            ("https://::1/v1", "without brackets"),
        ];
        for (url, expected) in cases {
            let error = resolve_url(url).expect_err(url);
            assert!(
                error.contains(expected),
                "error for {url:?} is {error:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn servers_substitute_defaults() {
        let servers = json!([
            {
                "url": "https://{region}.api.example.com:{port}/{basePath}",
                "variables": {
                    "region": {"default": "eu", "enum": ["eu", "us"]},
                    "port": {"default": 8443},
                    "basePath": {"default": "v2"}
                }
            },
            {"url": "https://eu.api.example.com:8443/v2"},
            {"url": "/internal"}
        ]);
        let bases = read_servers(&servers, "/servers").expect("valid servers");
        assert_eq!(
            bases,
            vec![
                base(Some("eu.api.example.com:8443"), "/v2"),
                base(None, "/internal")
            ],
            "defaults are substituted and the duplicate is kept once"
        );
    }

    #[test]
    fn servers_errors_name_the_field() {
        let cases = [
            (
                json!({"url": "x"}),
                "/servers",
                "expected an array of server objects, found an object",
            ),
            (
                json!(["https://a"]),
                "/servers/0",
                "expected a server object, found a string",
            ),
            (
                json!([{"description": "x"}]),
                "/servers/0",
                "missing required field `url`",
            ),
            (
                json!([{"url": 7}]),
                "/servers/0/url",
                "expected a string, found a number",
            ),
            (
                json!([{"url": "https://{env}.example.com"}]),
                "/servers/0/url",
                "uses variable {env}, which `variables` does not define",
            ),
            (
                json!([{"url": "https://{env.example.com"}]),
                "/servers/0/url",
                "without a closing '}'",
            ),
            (
                json!([{"url": "https://{env}.example.com", "variables": {"env": {"enum": ["a"]}}}]),
                "/servers/0/variables/env",
                "missing required field `default`",
            ),
            (
                json!([{"url": "https://{env}.example.com", "variables": {"env": {"default": true}}}]),
                "/servers/0/variables/env/default",
                "expected a string, found a boolean",
            ),
            (
                json!([{"url": "https://a.example.com", "variables": []}]),
                "/servers/0/variables",
                "expected an object, found an array",
            ),
        ];
        for (servers, pointer, message) in cases {
            let error = read_servers(&servers, "/servers").expect_err(&servers.to_string());
            assert_eq!(error.pointer(), Some(pointer), "pointer for {servers}");
            assert!(
                error.to_string().contains(message),
                "error for {servers} is {error}, expected {message:?}"
            );
        }
    }

    #[test]
    fn swagger_server_fields() {
        let root =
            json!({"host": "Billing.Example.com:443", "basePath": "/svc-b", "schemes": ["https"]});
        let server = read_swagger_server(root.as_object().expect("object")).expect("valid");
        assert_eq!(server, base(Some("billing.example.com"), "/svc-b"));

        let root = json!({"host": "billing.example.com:443", "schemes": ["https", "http"]});
        let server = read_swagger_server(root.as_object().expect("object")).expect("valid");
        assert_eq!(
            server.host.as_deref(),
            Some("billing.example.com:443"),
            "443 is not the default of every scheme"
        );

        let root = json!({"basePath": "v1"});
        let server = read_swagger_server(root.as_object().expect("object")).expect("valid");
        assert_eq!(server, base(None, "/v1"), "basePath without a slash");
    }

    #[test]
    fn swagger_server_errors() {
        let cases = [
            (
                json!({"host": "https://billing.example.com"}),
                "/host",
                "without scheme or path",
            ),
            (
                json!({"host": "billing.example.com:x"}),
                "/host",
                "invalid port",
            ),
            (json!({"host": 42}), "/host", "expected a string"),
            (
                json!({"basePath": ["/v1"]}),
                "/basePath",
                "expected a string",
            ),
            (
                json!({"schemes": "https"}),
                "/schemes",
                "expected an array of strings",
            ),
            (
                json!({"schemes": ["https", 1]}),
                "/schemes/1",
                "expected a string",
            ),
        ];
        for (root, pointer, message) in cases {
            let error = read_swagger_server(root.as_object().expect("object"))
                .expect_err(&root.to_string());
            assert_eq!(error.pointer(), Some(pointer), "pointer for {root}");
            assert!(
                error.to_string().contains(message),
                "error for {root} is {error}, expected {message:?}"
            );
        }
    }
}
