//! Field helpers shared by the capture and telemetry formats: HAR, Zeek,
//! Suricata and OTLP.
//!
//! These formats carry request headers by name, HTTP versions as bare
//! numbers, and JSON values whose numbers may arrive as strings, so the
//! conversions live here once.

use std::borrow::Cow;

use crate::event::Event;
use crate::formats::json::Json;
use crate::text::split_target;

/// Returns the value of the first member named `key`.
pub(crate) fn member<'v, 'a>(
    members: &'v [(Cow<'a, str>, Json<'a>)],
    key: &str,
) -> Option<&'v Json<'a>> {
    members
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

/// Returns whether a value is one that attributes leave out: empty, `-`, or an empty list.
pub(crate) fn is_blank(text: &str) -> bool {
    text.is_empty() || text == "-" || text == "[]"
}

/// Appends an attribute unless its value is blank.
pub(crate) fn push_attribute(event: &mut Event, key: &str, value: &str) {
    if !is_blank(value) {
        event.attributes.push((key.to_string(), value.to_string()));
    }
}

/// Appends a JSON value as an attribute: strings as they are, other values as
/// JSON text, with null and blank values left out.
pub(crate) fn push_json_attribute(event: &mut Event, key: &str, value: &Json<'_>) {
    if let Some(text) = value.as_text() {
        push_attribute(event, key, &text);
    }
}

/// Reads an integer from a JSON number or a numeric string.
pub(crate) fn json_i64(value: &Json<'_>) -> Option<i64> {
    match value {
        Json::Number(number) => number.as_i64(),
        Json::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a finite number from a JSON number or a numeric string.
pub(crate) fn json_f64(value: &Json<'_>) -> Option<f64> {
    let number = match value {
        Json::Number(number) => number.as_f64(),
        Json::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    number.filter(|number| number.is_finite())
}

/// Writes a bare protocol version such as `1.1` or `2` as `HTTP/1.1` or
/// `HTTP/2`, the form that request lines use. Other text is kept as it is.
pub(crate) fn prefix_http_version(text: &str) -> String {
    let bare_number = !text.is_empty()
        && text.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if bare_number {
        format!("HTTP/{text}")
    } else {
        text.to_string()
    }
}

/// Appends a header as the attribute `{prefix}{lowercased name}`, joining
/// repeated headers into one value.
///
/// Headers already appended from `block_start` on are searched for the same
/// name. `Cookie` and `Set-Cookie` values are joined with `; `, which keeps
/// each cookie a `name=value` pair for the redactor. Other headers are joined
/// with `, `, as HTTP joins list-valued fields.
pub(crate) fn push_header(
    event: &mut Event,
    block_start: usize,
    prefix: &str,
    name: &str,
    value: &str,
) {
    if value.is_empty() {
        return;
    }
    let mut key = String::with_capacity(prefix.len() + name.len());
    key.push_str(prefix);
    key.extend(name.chars().map(|c| c.to_ascii_lowercase()));
    let separator = if key.ends_with("cookie") { "; " } else { ", " };
    let block_start = block_start.min(event.attributes.len());
    match event.attributes[block_start..]
        .iter_mut()
        .find(|(existing, _)| *existing == key)
    {
        Some((_, joined)) => {
            joined.push_str(separator);
            joined.push_str(value);
        }
        None => event.attributes.push((key, value.to_string())),
    }
}

/// Fills scheme, host, path and query from an absolute URL or an origin-form
/// target, and returns `false` when the text has neither form.
///
/// A fragment is dropped, and the port of an absolute URL goes to attribute `port`.
pub(crate) fn set_url(event: &mut Event, method: &str, url: &str) -> bool {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let Some(parts) = split_target(method, url) else {
        return false;
    };
    if let Some(scheme) = parts.scheme {
        event.scheme = Some(scheme.to_string());
    }
    if let Some(host) = parts.host {
        event.host = Some(host.to_string());
    }
    event.path = parts.path.map(str::to_string);
    event.query = parts.query.map(str::to_string);
    if let Some(port) = parts.port {
        event
            .attributes
            .push(("port".to_string(), port.to_string()));
    }
    true
}

/// Runs records through the whole driver, for tests that check what is stored.
#[cfg(test)]
pub(crate) mod driver {
    use arrow::array::{Array, AsArray};

    use crate::format::Format;
    use crate::parse::{ParseContext, parse_chunk};
    use crate::redact::Redactor;

    /// The stored attributes of each row after parsing `data` as `format`
    /// with the redactor that [`redactor`] returns.
    pub(crate) fn stored_attributes(format: Format, data: &str) -> Vec<Vec<(String, String)>> {
        let redactor = redactor();
        let chunk = parse_chunk(format, data.as_bytes(), 1, &ParseContext::new(&redactor));
        assert_eq!(chunk.report.rejected, 0, "{:?}", chunk.report.errors);
        let maps = chunk
            .batch
            .column_by_name("attributes")
            .expect("attributes column")
            .as_map();
        (0..maps.len())
            .map(|row| {
                let entries = maps.value(row);
                let keys = entries.column(0).as_string::<i32>();
                let values = entries.column(1).as_string::<i32>();
                (0..entries.len())
                    .map(|index| {
                        (
                            keys.value(index).to_string(),
                            values.value(index).to_string(),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    pub(crate) fn redactor() -> Redactor {
        Redactor::new(b"driver-test".to_vec(), 1)
    }

    /// Returns the value of attribute `key` in one row of [`stored_attributes`].
    pub(crate) fn value<'a>(row: &'a [(String, String)], key: &str) -> Option<&'a str> {
        row.iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_versions_get_http_prefix() {
        assert_eq!(prefix_http_version("1.1"), "HTTP/1.1");
        assert_eq!(prefix_http_version("2"), "HTTP/2");
        assert_eq!(prefix_http_version("HTTP/1.0"), "HTTP/1.0");
        assert_eq!(prefix_http_version("h2"), "h2");
        assert_eq!(prefix_http_version("QUIC"), "QUIC");
        assert_eq!(prefix_http_version(""), "");
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut event = Event::new("har", 0);
        event.attributes.push(("before".into(), "x".into()));
        let start = event.attributes.len();
        push_header(&mut event, start, "h.", "Accept", "a");
        push_header(&mut event, start, "h.", "cookie", "a=1");
        push_header(&mut event, start, "h.", "accept", "b");
        push_header(&mut event, start, "h.", "Cookie", "b=2");
        push_header(&mut event, start, "h.", "X-Empty", "");
        assert_eq!(
            event.attributes,
            vec![
                ("before".to_string(), "x".to_string()),
                ("h.accept".to_string(), "a, b".to_string()),
                ("h.cookie".to_string(), "a=1; b=2".to_string()),
            ]
        );
    }

    #[test]
    fn numbers_from_strings_and_numbers() {
        let text: Json<'_> = serde_json::from_str(r#"["42", 42, " 7 ", "x", 1.5, null]"#).unwrap();
        let Json::Array(items) = text else {
            panic!("expected an array");
        };
        let integers: Vec<Option<i64>> = items.iter().map(json_i64).collect();
        assert_eq!(integers, [Some(42), Some(42), Some(7), None, None, None]);
        let floats: Vec<Option<f64>> = items.iter().map(json_f64).collect();
        assert_eq!(
            floats,
            [Some(42.0), Some(42.0), Some(7.0), None, Some(1.5), None]
        );
    }

    #[test]
    fn url_forms() {
        let mut event = Event::new("har", 0);
        assert!(set_url(
            &mut event,
            "GET",
            "https://api.example.com:8443/v1/a?b=1#frag"
        ));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/a"));
        assert_eq!(event.query.as_deref(), Some("b=1"));
        assert_eq!(event.attribute("port"), Some("8443"));

        let mut event = Event::new("har", 0);
        assert!(!set_url(&mut event, "GET", "data:text/plain,hello"));
        assert_eq!(event.path, None);
    }
}
