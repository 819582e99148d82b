//! The CLF-style access log formats that the API Gateway console offers.
//!
//! REST APIs:
//!
//! ```text
//! $context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime]
//! "$context.httpMethod $context.resourcePath $context.protocol" $context.status
//! $context.responseLength $context.requestId $context.extendedRequestId
//! ```
//!
//! Older consoles end the REST format at `$context.requestId` and put a space
//! after `]`. HTTP APIs log `- -` for caller and user, `$context.routeKey`
//! (`GET /pets`, or `$default`) in place of the resource path, and end at
//! `$context.requestId`. A request part of the form
//! `"$context.eventType $context.routeKey $context.connectionId"`, as a
//! WebSocket API format written in this style has, is read too.
//!
//! Each position is read as the JSON key of the same variable, so the columns
//! are those of the JSON formats. The resource path and route key are
//! templates, not the requested path, so they go to attributes `resource_path`
//! and `route_key` and `path` stays unknown.
//!
//! Apache and nginx write the same layout up to the byte count. So a line is
//! read as API Gateway's only when a request id follows the byte count. That is
//! a UUID (REST `requestId`, which a client may set, but only to a UUID), or the
//! 16-character id that API Gateway generates (HTTP API `requestId`, REST
//! `extendedRequestId`).

use std::borrow::Cow;

use super::Record;
use crate::event::Event;
use crate::text::quote_excerpt;

/// WebSocket event types, which take the place of the method.
const WEBSOCKET_EVENT_TYPES: [&str; 3] = ["CONNECT", "MESSAGE", "DISCONNECT"];

/// Returns whether the line has the CLF shape: three fields, then `[`.
///
/// A line that starts with `{` or `[` is JSON and returns false.
pub(super) fn looks_like_clf(line: &str) -> bool {
    if line.starts_with(['{', '[']) {
        return false;
    }
    line.find('[')
        .is_some_and(|open| line[..open].split_ascii_whitespace().count() == 3)
}

/// Builds the event of a CLF-style line.
pub(super) fn build_event(line: &str) -> Result<Event, String> {
    let open = line.find('[').ok_or("missing the [requestTime] field")?;
    let mut identity = line[..open].split_ascii_whitespace();
    let (Some(source_ip), Some(caller), Some(user), None) = (
        identity.next(),
        identity.next(),
        identity.next(),
        identity.next(),
    ) else {
        return Err(
            "expected the source IP, caller and user before the [requestTime] field".to_string(),
        );
    };
    let close = open
        + line[open..]
            .find(']')
            .ok_or("missing the ] that ends the [requestTime] field")?;
    let request_time = &line[open + 1..close];

    let after_time = line[close + 1..].trim_start();
    let request_and_rest = after_time.strip_prefix('"').ok_or_else(|| {
        format!(
            "expected a quoted request after the [requestTime] field, found {}",
            quote_excerpt(after_time)
        )
    })?;
    let (request, rest) = request_and_rest
        .split_once('"')
        .ok_or("missing the closing quote of the request")?;
    let trailer = read_trailer(rest)?;

    let mut record = Record::default();
    let mut apply = |key: &str, value: &str| record.apply(key, Cow::Borrowed(value));
    apply("ip", source_ip)?;
    apply("caller", caller)?;
    apply("user", user)?;
    apply("requestTime", request_time)?;
    for (key, value) in request_parts(request) {
        apply(key, value)?;
    }
    apply("status", trailer.status)?;
    if let Some(length) = trailer.response_length {
        apply("responseLength", length)?;
    }
    apply("requestId", trailer.request_id)?;
    if let Some(extended) = trailer.extended_request_id {
        apply("extendedRequestId", extended)?;
    }
    record.finish()
}

/// The fields after the quoted request.
struct Trailer<'a> {
    status: &'a str,
    response_length: Option<&'a str>,
    request_id: &'a str,
    extended_request_id: Option<&'a str>,
}

/// Reads `status [responseLength] requestId [extendedRequestId]`.
fn read_trailer(rest: &str) -> Result<Trailer<'_>, String> {
    let mut fields = rest.split_ascii_whitespace();
    let status = fields
        .next()
        .ok_or("missing the status after the request")?;
    let rest: Vec<&str> = fields.collect();
    let (response_length, ids) = match rest.split_first() {
        Some((first, ids)) if is_byte_count(first) => (Some(*first), ids),
        _ => (None, rest.as_slice()),
    };
    let (request_id, extended_request_id) = match ids {
        [] => {
            return Err(
                "missing the request id after the status and byte count, which API Gateway's CLF format ends with"
                    .to_string(),
            );
        }
        [request_id] => (*request_id, None),
        [request_id, extended] => (*request_id, Some(*extended)),
        _ => {
            return Err(format!(
                "expected at most a request id and an extended request id after the byte count, found {} fields",
                ids.len()
            ));
        }
    };
    for id in [Some(request_id), extended_request_id]
        .into_iter()
        .flatten()
    {
        if !is_request_id(id) {
            return Err(format!(
                "invalid request id {} after the status: expected a UUID or an API Gateway id",
                quote_excerpt(id)
            ));
        }
    }
    Ok(Trailer {
        status,
        response_length,
        request_id,
        extended_request_id,
    })
}

/// Splits the quoted request into the JSON keys of its variables.
///
/// `METHOD target PROTOCOL` gives the method and protocol, and the target is a
/// resource path when it starts with `/`, else a route key, which may hold a
/// space (`GET /pets`). A WebSocket `eventType routeKey connectionId` is read
/// as those keys, and anything else goes to attribute `request`.
fn request_parts(request: &str) -> Vec<(&'static str, &str)> {
    let request = request.trim();
    let words: Vec<&str> = request.split_ascii_whitespace().collect();
    match *words.as_slice() {
        [method, _, .., protocol] if protocol.starts_with("HTTP/") => {
            let target = request
                .strip_prefix(method)
                .and_then(|rest| rest.strip_suffix(protocol))
                .unwrap_or_default()
                .trim();
            let target_key = if target.starts_with('/') {
                "resourcePath"
            } else {
                "routeKey"
            };
            vec![
                ("httpMethod", method),
                (target_key, target),
                ("protocol", protocol),
            ]
        }
        [event_type, route_key, connection_id] if WEBSOCKET_EVENT_TYPES.contains(&event_type) => {
            vec![
                ("eventType", event_type),
                ("routeKey", route_key),
                ("connectionId", connection_id),
            ]
        }
        _ => vec![("request", request)],
    }
}

/// Returns whether a field is a byte count or the `-` of an unknown one.
fn is_byte_count(text: &str) -> bool {
    text == "-" || (!text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
}

/// Returns whether `text` has the form of an API Gateway request id.
///
/// Accepted: a UUID, a UUID followed by `_REPLACED_INVALID_REQUEST_ID` (what
/// API Gateway logs when a client sent an id that is not a UUID), and the
/// 16-character base64 id that API Gateway generates, which ends with `=`.
fn is_request_id(text: &str) -> bool {
    let uuid = text
        .strip_suffix("_REPLACED_INVALID_REQUEST_ID")
        .unwrap_or(text);
    is_uuid(uuid) || is_generated_id(text)
}

fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

fn is_generated_id(text: &str) -> bool {
    let Some(body) = text.strip_suffix('=') else {
        return false;
    };
    body.len() == 15
        && body
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_forms() {
        assert!(is_request_id("48752d0f-c99d-4cfa-a5a7-f3c6834d19e5"));
        assert!(is_request_id(
            "48752d0f-c99d-4cfa-a5a7-f3c6834d19e5_REPLACED_INVALID_REQUEST_ID"
        ));
        assert!(is_request_id("Y1rY6giPiYcEPbQ="));
        assert!(is_request_id("Y7gK7GE_iYcFaVg="));
        assert!(!is_request_id("2326"));
        assert!(!is_request_id("\"-\""));
        assert!(!is_request_id("48752d0f-c99d-4cfa-a5a7-f3c6834d19e"));
        assert!(!is_request_id("48752d0fxc99d-4cfa-a5a7-f3c6834d19e5"));
        assert!(!is_request_id("Y1rY6giPiYcEPbQ"));
        assert!(!is_request_id("Y1rY6giPi.cEPbQ="));
    }

    #[test]
    fn clf_shape() {
        assert!(looks_like_clf(
            r#"1.2.3.4 - - [10/Jun/2023:15:36:28 +0000] "GET / HTTP/1.1" 200 1 r"#
        ));
        assert!(!looks_like_clf(r#"{"requestTime":"[x]"}"#));
        assert!(!looks_like_clf("[1,2]"));
        assert!(!looks_like_clf("a b [x]"));
        assert!(!looks_like_clf("no bracket at all"));
    }

    #[test]
    fn request_part_forms() {
        assert_eq!(
            request_parts("GET /pets/{petId} HTTP/1.1"),
            vec![
                ("httpMethod", "GET"),
                ("resourcePath", "/pets/{petId}"),
                ("protocol", "HTTP/1.1")
            ]
        );
        assert_eq!(
            request_parts("POST POST /orders HTTP/1.1"),
            vec![
                ("httpMethod", "POST"),
                ("routeKey", "POST /orders"),
                ("protocol", "HTTP/1.1")
            ]
        );
        assert_eq!(
            request_parts("GET $default HTTP/2.0"),
            vec![
                ("httpMethod", "GET"),
                ("routeKey", "$default"),
                ("protocol", "HTTP/2.0")
            ]
        );
        assert_eq!(
            request_parts("CONNECT $connect Iq8gj1UmIAMCKpA="),
            vec![
                ("eventType", "CONNECT"),
                ("routeKey", "$connect"),
                ("connectionId", "Iq8gj1UmIAMCKpA=")
            ]
        );
        assert_eq!(request_parts("- - -"), vec![("request", "- - -")]);
    }
}
