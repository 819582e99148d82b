//! Reading API Gateway "JSON" records that are not valid JSON.
//!
//! API Gateway writes an access log line by replacing each `$context`
//! variable of the operator's template with its value, without escaping. A
//! value with a `"` or a `\` (a user agent, an error message, a path) then
//! breaks the JSON. Such a line still has the template's shape,
//! `{"key":"value", "key2":"value2", ...}`, so this module finds the members by
//! their keys instead of parsing the JSON.
//!
//! A member starts where `"key":` follows the opening `{` or a `,`. After a
//! `,`, a key that API Gateway's templates use (such as `requestId`, `ip` or
//! `userAgent`) always starts a member. Any other key starts a member only when
//! the text before the `,` ends like a JSON value (a closing quote, a digit, a
//! closing brace, or the end of `true`, `false` or `null`). Everything between
//! one member's colon and the next member is its value, outer quotes removed,
//! so a value keeps the quotes and commas inside it. Values are kept as logged,
//! since API Gateway never escapes them. Nested objects give dotted keys, as in
//! valid records.
//!
//! NOTE: a value that itself contains `", "name":` splits into two members,
//! and the second one is read with the wrong key. Templates rarely log such values.

use std::borrow::Cow;

use super::{INVALID_JSON_ATTRIBUTE, Record, is_api_gateway_key};
use crate::event::Event;

/// Maximum length of a key this scanner recognises, in bytes.
const MAX_KEY_BYTES: usize = 128;

/// Keys of API Gateway's log format templates that always start a member.
const TEMPLATE_KEYS: [&str; 24] = [
    "ip",
    "sourceIp",
    "caller",
    "user",
    "userArn",
    "userAgent",
    "accountId",
    "apiKeyId",
    "principalId",
    "status",
    "protocol",
    "path",
    "identity",
    "authorizer",
    "integration",
    "error",
    "message",
    "messageString",
    "responseType",
    "errorMessage",
    "integrationErrorMessage",
    "authorizerError",
    "awsEndpointRequestId",
    "wafResponseCode",
];

/// Builds the event of a line that failed to parse as JSON, or returns
/// `None` when the line has no API Gateway key to read it by.
pub(super) fn build_event(line: &str) -> Option<Result<Event, String>> {
    let members = read_members(line)?;
    if !members.iter().any(|(key, _)| is_api_gateway_key(key)) {
        return None;
    }
    let mut record = Record::default();
    for (key, value) in members {
        if let Err(reason) = record.apply(&key, Cow::Borrowed(value)) {
            return Some(Err(reason));
        }
    }
    record
        .event
        .attributes
        .push((INVALID_JSON_ATTRIBUTE.to_string(), "true".to_string()));
    Some(record.finish())
}

/// Start position of one member in the line.
#[derive(Debug, Clone, Copy)]
struct MemberStart {
    /// Offset of the `{` or `,` before the key.
    separator: usize,
    key_start: usize,
    key_end: usize,
    /// Offset just past the `:`.
    value_start: usize,
}

/// Returns the members of an object written on one line, as flattened keys
/// and values, or `None` when the line is not `{...}` or has no member.
///
/// A `null` value is left out, and other unquoted values are kept as text.
fn read_members(line: &str) -> Option<Vec<(String, &str)>> {
    let body = line.trim();
    if body.len() < 2 || !body.starts_with('{') || !body.ends_with('}') {
        return None;
    }
    let closing_brace = body.len() - 1;
    let starts = member_starts(body, closing_brace);
    if starts.is_empty() {
        return None;
    }

    let mut members = Vec::with_capacity(starts.len());
    let mut prefixes: Vec<&str> = Vec::new();
    for (index, start) in starts.iter().enumerate() {
        let key = &body[start.key_start..start.key_end];
        let next = starts.get(index + 1);
        let value_end = next.map_or(closing_brace, |next| next.separator);
        let mut value = body[start.value_start..value_end].trim();
        if value.is_empty() && next.is_some_and(|next| body.as_bytes()[next.separator] == b'{') {
            prefixes.push(key);
            continue;
        }

        let full_key = if prefixes.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", prefixes.join("."))
        };
        while !prefixes.is_empty() && value.ends_with('}') {
            value = value[..value.len() - 1].trim_end();
            prefixes.pop();
        }
        if let Some(value) = scalar_text(value) {
            members.push((full_key, value));
        }
    }
    Some(members)
}

/// Finds the start of every member between the opening brace and `closing_brace`.
fn member_starts(body: &str, closing_brace: usize) -> Vec<MemberStart> {
    let bytes = body.as_bytes();
    let mut starts: Vec<MemberStart> = Vec::new();
    for quote in memchr::memchr_iter(b'"', &bytes[..closing_brace]) {
        let Some(separator) = last_non_space(bytes, quote) else {
            continue;
        };
        if !matches!(bytes[separator], b'{' | b',') {
            continue;
        }
        let Some(start) = member_at(body, separator, quote, closing_brace) else {
            continue;
        };
        if starts
            .last()
            .is_some_and(|last| start.separator < last.value_start)
        {
            continue;
        }
        let key = &body[start.key_start..start.key_end];
        let accepted = match bytes[separator] {
            b'{' => {
                separator == 0
                    || last_non_space(bytes, separator).is_some_and(|at| bytes[at] == b':')
            }
            _ => {
                TEMPLATE_KEYS.contains(&key)
                    || is_api_gateway_key(key)
                    || ends_like_value(bytes, separator)
            }
        };
        if accepted {
            starts.push(start);
        }
    }
    starts
}

/// Reads `"key"` and the `:` after it, for a quote at `quote`.
fn member_at(
    body: &str,
    separator: usize,
    quote: usize,
    closing_brace: usize,
) -> Option<MemberStart> {
    let bytes = body.as_bytes();
    let key_start = quote + 1;
    let key_end = key_start + memchr::memchr(b'"', bytes.get(key_start..closing_brace)?)?;
    let key = &bytes[key_start..key_end];
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains(&b'\\') {
        return None;
    }
    let colon = next_non_space(bytes, key_end + 1)?;
    (bytes[colon] == b':').then_some(MemberStart {
        separator,
        key_start,
        key_end,
        value_start: colon + 1,
    })
}

/// Returns whether the text before the `,` at `comma` ends like a complete JSON value.
fn ends_like_value(bytes: &[u8], comma: usize) -> bool {
    let Some(last) = last_non_space(bytes, comma) else {
        return false;
    };
    match bytes[last] {
        b'"' | b'}' | b']' | b'0'..=b'9' => true,
        b'e' | b'l' => {
            let before = &bytes[..=last];
            before.ends_with(b"true") || before.ends_with(b"false") || before.ends_with(b"null")
        }
        _ => false,
    }
}

/// Offset of the last byte before `end` that is not JSON whitespace.
fn last_non_space(bytes: &[u8], end: usize) -> Option<usize> {
    bytes[..end]
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
}

/// Offset of the first byte from `start` that is not JSON whitespace.
fn next_non_space(bytes: &[u8], start: usize) -> Option<usize> {
    let offset = bytes
        .get(start..)?
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())?;
    Some(start + offset)
}

/// Returns a member's value as text: without its outer quotes, and `None` for `null`.
fn scalar_text(value: &str) -> Option<&str> {
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        return Some(&value[1..value.len() - 1]);
    }
    (value != "null").then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(line: &str) -> Vec<(String, String)> {
        read_members(line)
            .expect("an object")
            .into_iter()
            .map(|(key, value)| (key, value.to_string()))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn quotes_inside_values() {
        assert_eq!(
            members(r#"{"requestId":"r1", "userAgent":"Mozilla "quoted", x", "status":"200"}"#),
            pairs(&[
                ("requestId", "r1"),
                ("userAgent", r#"Mozilla "quoted", x"#),
                ("status", "200"),
            ])
        );
    }

    #[test]
    fn backslashes_stay_as_logged() {
        assert_eq!(
            members(r#"{"path":"/a\b\"c","ip":"1.2.3.4"}"#),
            pairs(&[("path", r#"/a\b\"c"#), ("ip", "1.2.3.4")])
        );
    }

    #[test]
    fn unknown_keys_after_complete_values() {
        assert_eq!(
            members(
                r#"{"requestId":"r1","custom":"a","n":5,"flag":true,"gone":null,"status":200}"#
            ),
            pairs(&[
                ("requestId", "r1"),
                ("custom", "a"),
                ("n", "5"),
                ("flag", "true"),
                ("status", "200"),
            ])
        );
    }

    #[test]
    fn unknown_key_inside_broken_value_is_not_split() {
        assert_eq!(
            members(r#"{"errorMessage":"bad "x,"y":1 seen","status":"403"}"#),
            pairs(&[("errorMessage", r#"bad "x,"y":1 seen"#), ("status", "403")])
        );
    }

    #[test]
    fn nested_objects_give_dotted_keys() {
        assert_eq!(
            members(concat!(
                r#"{"requestId":"r1","identity":{"sourceIp":"1.2.3.4","userAgent":"a "b""},"#,
                r#""authorizer":{"claims":{"sub":"u1"}},"status":"200"}"#
            )),
            pairs(&[
                ("requestId", "r1"),
                ("identity.sourceIp", "1.2.3.4"),
                ("identity.userAgent", r#"a "b""#),
                ("authorizer.claims.sub", "u1"),
                ("status", "200"),
            ])
        );
    }

    #[test]
    fn spaces_around_separators() {
        assert_eq!(
            members(r#"{ "requestId" : "r1" ,  "status" : "200" }"#),
            pairs(&[("requestId", "r1"), ("status", "200")])
        );
    }

    #[test]
    fn non_objects_give_none() {
        for line in ["", "{", "}", "[1]", r#"{"a":1"#, "{}", "plain text"] {
            assert!(
                read_members(line).is_none_or(|members| members.is_empty()),
                "{line:?}"
            );
        }
    }

    #[test]
    fn odd_input_does_not_panic() {
        for line in [
            r#"{""}"#,
            r#"{"":}"#,
            r#"{"a":}"#,
            r#"{"a":{}"#,
            r#"{"a":{"b":}}}}}"#,
            r#"{,"a"  :  "ü"}"#,
            "{\"ü\":\"ü\",\"ü\":{\"ü\":\"ü\"}}",
            r#"{"a""#,
        ] {
            let _ = read_members(line);
            let _ = build_event(line);
        }
    }
}
