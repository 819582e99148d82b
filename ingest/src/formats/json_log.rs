//! Helpers shared by the parsers of JSON access logs: reading a record as
//! an object, turning values into text and numbers, parsing the time forms
//! these logs use, and filling URL columns.
//!
//! The conventions are the same for every JSON format. A value that is
//! `null`, `-`, empty, or an empty array or object is unknown and is left
//! out. A negative size or timing is unknown too, because gateways write
//! `-1` when they did not measure it. A status of 0 means no response was
//! sent, so it is unknown as well.

use std::borrow::Cow;

use crate::event::Event;
use crate::formats::json::{Json, flatten};
use crate::text::{parse_clf_time, parse_iso8601, quote_excerpt, split_host_port, split_target};

/// One member of a JSON object, as the borrowed parser returns it.
pub(crate) type Member<'a> = (Cow<'a, str>, Json<'a>);

/// One scalar or array value of a flattened object, with its dotted key.
pub(crate) type Leaf<'v> = (Cow<'v, str>, &'v Json<'v>);

/// Epoch values at or above these are milliseconds, microseconds and
/// nanoseconds. As seconds, 1e11 is the year 5138, while as milliseconds
/// it is March 1973, before any of these logs existed.
const EPOCH_MILLIS_FROM: u128 = 100_000_000_000;
const EPOCH_MICROS_FROM: u128 = 100_000_000_000_000;
const EPOCH_NANOS_FROM: u128 = 100_000_000_000_000_000;

/// Parses a record that must be one JSON object, returning its members in order.
///
/// A byte order mark and surrounding whitespace are ignored. Text that does
/// not start with `{` is rejected before the JSON parser runs, so format
/// detection passes over text lines cheaply.
pub(crate) fn parse_object(record: &str) -> Result<Vec<Member<'_>>, String> {
    let text = record.strip_prefix('\u{feff}').unwrap_or(record).trim();
    if !text.starts_with('{') {
        return Err(format!(
            "expected a JSON object, found {}",
            quote_excerpt(text)
        ));
    }
    let value: Json<'_> =
        serde_json::from_str(text).map_err(|error| format!("invalid JSON: {error}"))?;
    match value {
        Json::Object(members) => Ok(members),
        other => Err(format!("expected a JSON object, found {}", other.kind())),
    }
}

/// Returns the scalar and array values of `members` and of the objects nested in them, with dotted keys.
pub(crate) fn flatten_object<'v>(members: &'v [Member<'v>]) -> Vec<Leaf<'v>> {
    let mut leaves = Vec::with_capacity(members.len() + 8);
    flatten(None, members, &mut leaves);
    leaves
}

/// Returns the value of the first member named `key`.
pub(crate) fn member<'v>(members: &'v [Member<'v>], key: &str) -> Option<&'v Json<'v>> {
    members
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

/// Returns the value of the member named `key` when it is a string.
pub(crate) fn member_str<'v>(members: &'v [Member<'v>], key: &str) -> Option<&'v str> {
    match member(members, key)? {
        Json::String(text) => Some(text),
        _ => None,
    }
}

/// Returns how many of `keys` name a member.
pub(crate) fn count_present(members: &[Member<'_>], keys: &[&str]) -> usize {
    keys.iter()
        .filter(|key| member(members, key).is_some())
        .count()
}

/// Returns a value as text, or `None` when it is unknown: `null`, `-`, empty,
/// or an empty array or object. Arrays and objects become JSON text.
pub(crate) fn value_text<'v>(value: &'v Json<'v>) -> Option<Cow<'v, str>> {
    match value {
        Json::String(text) if text.is_empty() || text == "-" => None,
        Json::Array(items) if items.is_empty() => None,
        Json::Object(members) if members.is_empty() => None,
        _ => value.as_text(),
    }
}

/// Returns a header value as text, joining the values of a repeated header.
///
/// Cookie headers are joined with `; `, the separator of the `Cookie` header,
/// so that redaction finds every cookie value, and other headers with `, `.
pub(crate) fn header_text<'v>(name: &str, value: &'v Json<'v>) -> Option<Cow<'v, str>> {
    let Json::Array(items) = value else {
        return value_text(value);
    };
    let mut texts = items.iter().filter_map(value_text);
    let first = texts.next()?;
    let Some(second) = texts.next() else {
        return Some(first);
    };
    let separator = if ends_with_ignore_case(name, "cookie") {
        "; "
    } else {
        ", "
    };
    let mut joined = format!("{first}{separator}{second}");
    for text in texts {
        joined.push_str(separator);
        joined.push_str(&text);
    }
    Some(Cow::Owned(joined))
}

pub(crate) fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

pub(crate) fn push_attribute(event: &mut Event, key: &str, value: Cow<'_, str>) {
    event.attributes.push((key.to_string(), value.into_owned()));
}

/// Parses an integer, rejecting the record with the key and value when it is not one.
pub(crate) fn parse_integer<T: std::str::FromStr>(key: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid number {} in key {key}", quote_excerpt(text)))
}

/// Parses a finite number, rejecting the record with the key and value when it is not one.
pub(crate) fn parse_number(key: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| format!("invalid number {} in key {key}", quote_excerpt(text)))
}

/// Parses an HTTP status; 0, which means no response was sent, is unknown.
pub(crate) fn parse_status(key: &str, text: &str) -> Result<Option<i32>, String> {
    let status: i32 = parse_integer(key, text)?;
    Ok((status > 0).then_some(status))
}

/// Parses a size in bytes; a negative size is unknown.
pub(crate) fn parse_size(key: &str, text: &str) -> Result<Option<i64>, String> {
    let size: i64 = parse_integer(key, text)?;
    Ok((size >= 0).then_some(size))
}

/// Parses a port; 0 and values outside 1 to 65535 are unknown.
pub(crate) fn parse_port(key: &str, text: &str) -> Result<Option<i32>, String> {
    let port: i64 = parse_integer(key, text)?;
    Ok((1..=65535).contains(&port).then_some(port as i32))
}

/// Parses a timing in milliseconds; a negative timing is unknown.
pub(crate) fn parse_millis(key: &str, text: &str) -> Result<Option<f64>, String> {
    let millis = parse_number(key, text)?;
    Ok((millis >= 0.0).then_some(millis))
}

/// Parses a timing in seconds, such as `0.384`, into milliseconds; a negative timing is unknown.
///
/// Plain decimals are converted exactly to nanoseconds first, so `0.384`
/// gives 384.0 and not 384.00000000000006.
pub(crate) fn parse_seconds_as_millis(key: &str, text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if let Some(nanos) = decimal_nanos(text) {
        return Ok(Some(nanos as f64 / 1e6));
    }
    let seconds = parse_number(key, text)?;
    Ok((seconds >= 0.0).then_some(seconds * 1e3))
}

/// Converts a non-negative decimal number of seconds into nanoseconds,
/// truncating digits beyond nanoseconds, or returns `None` for anything else.
fn decimal_nanos(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 9 || !is_digits(whole) || !is_digits(fraction) {
        return None;
    }
    let mut nanos: i64 = whole.parse::<i64>().ok()? * 1_000_000_000;
    let mut scale = 100_000_000;
    for digit in fraction.bytes().take(9) {
        nanos += i64::from(digit - b'0') * scale;
        scale /= 10;
    }
    Some(nanos)
}

fn is_digits(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_digit())
}

/// A time read from an epoch number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochTime {
    /// Microseconds since the epoch.
    pub micros: i64,
    /// Whether the value had a resolution finer than one second.
    pub subsecond: bool,
}

/// Parses an epoch time whose unit follows from its size: seconds below
/// 1e11, then milliseconds below 1e14, microseconds below 1e17, and
/// nanoseconds above. A fraction is kept down to the microsecond.
///
/// Returns `None` for a negative value or anything that is not a number.
pub(crate) fn parse_epoch(text: &str) -> Option<EpochTime> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 20 || !is_digits(whole) || !is_digits(fraction) {
        return parse_epoch_float(text);
    }
    let value: u128 = whole.parse().ok()?;
    let fraction_digits = |count: usize| -> u128 {
        let mut scaled = 0;
        for index in 0..count {
            let digit = fraction.as_bytes().get(index).map_or(0, |byte| byte - b'0');
            scaled = scaled * 10 + u128::from(digit);
        }
        scaled
    };
    let has_fraction = fraction.bytes().any(|byte| byte != b'0');
    let (micros, subsecond) = if value < EPOCH_MILLIS_FROM {
        (value * 1_000_000 + fraction_digits(6), has_fraction)
    } else if value < EPOCH_MICROS_FROM {
        (value * 1_000 + fraction_digits(3), true)
    } else if value < EPOCH_NANOS_FROM {
        (value, true)
    } else {
        (value / 1_000, true)
    };
    Some(EpochTime {
        micros: i64::try_from(micros).ok()?,
        subsecond,
    })
}

/// [`parse_epoch`] for numbers in exponent form, such as `1.6e9`.
fn parse_epoch_float(text: &str) -> Option<EpochTime> {
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let micros = if value < EPOCH_MILLIS_FROM as f64 {
        value * 1e6
    } else if value < EPOCH_MICROS_FROM as f64 {
        value * 1e3
    } else if value < EPOCH_NANOS_FROM as f64 {
        value
    } else {
        value / 1e3
    };
    // Times past the year 294,000 do not fit in i64 microseconds.
    if micros >= i64::MAX as f64 {
        return None;
    }
    Some(EpochTime {
        micros: micros.round() as i64,
        subsecond: value.fract() != 0.0 || value >= EPOCH_MILLIS_FROM as f64,
    })
}

/// Parses a timestamp written as ISO 8601, as a CLF time
/// (`10/Oct/2000:13:55:36 -0700`) or as an epoch number (see [`parse_epoch`]).
pub(crate) fn parse_timestamp(key: &str, text: &str) -> Result<i64, String> {
    parse_iso8601(text)
        .or_else(|| parse_clf_time(text))
        .or_else(|| parse_epoch(text).map(|time| time.micros))
        .ok_or_else(|| invalid_timestamp(key, text))
}

pub(crate) fn invalid_timestamp(key: &str, text: &str) -> String {
    format!("invalid timestamp {} in key {key}", quote_excerpt(text))
}

/// Returns the last item of a list such as `10.0.0.1:80, 10.0.0.2:80`, which
/// nginx and Kong log for a request that was retried on another upstream.
///
/// nginx separates the upstreams of one group with `, ` and the groups of an
/// internal redirect with ` : `, so the last item is the upstream that sent the response.
pub(crate) fn last_list_item(text: &str) -> &str {
    let after_comma = text.rsplit(',').next().unwrap_or(text);
    let after_group = after_comma.rsplit(" : ").next().unwrap_or(after_comma);
    after_group.trim()
}

/// Returns whether `text` lists several values (see [`last_list_item`]).
pub(crate) fn is_list(text: &str) -> bool {
    text.contains(',') || text.contains(" : ")
}

/// Fills scheme, host, path and query from a request target logged under `key`.
///
/// The target may be in origin form (`/p?q`) or absolute form
/// (`https://host:443/p?q`), and for CONNECT in authority form; an explicit
/// port goes to attribute `port`. A target of another form is kept as
/// attribute `key` and sets `malformed`.
pub(crate) fn set_target(event: &mut Event, key: &str, target: &str) {
    let method = event.method.as_deref().unwrap_or("GET");
    let Some(parts) = split_target(method, target) else {
        event.malformed = true;
        push_attribute(event, key, Cow::Borrowed(target));
        return;
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
        push_attribute(event, "port", Cow::Owned(port.to_string()));
    }
}

/// Fills `host` from a `Host` header or authority, without its port; an
/// explicit port goes to attribute `port`.
pub(crate) fn set_authority(event: &mut Event, authority: &str) {
    let (host, port) = split_host_port(authority);
    if host.is_empty() {
        return;
    }
    event.host = Some(host.to_string());
    if let Some(port) = port {
        push_attribute(event, "port", Cow::Owned(port.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_unit_follows_magnitude() {
        let micros = |text: &str| parse_epoch(text).map(|time| time.micros);
        assert_eq!(micros("1535473131.906"), Some(1_535_473_131_906_000));
        assert_eq!(micros("1646861401.5241024"), Some(1_646_861_401_524_102));
        assert_eq!(micros("1614232668342"), Some(1_614_232_668_342_000));
        assert_eq!(micros("1614232668342123"), Some(1_614_232_668_342_123));
        assert_eq!(micros("1625752958875000000"), Some(1_625_752_958_875_000));
        assert_eq!(micros("1.6e9"), Some(1_600_000_000_000_000));
        assert_eq!(micros("-5"), None);
        assert_eq!(micros("soon"), None);
        assert_eq!(micros("99999999999999999999999"), None);
    }

    #[test]
    fn epoch_subsecond_resolution() {
        let subsecond = |text: &str| parse_epoch(text).map(|time| time.subsecond);
        assert_eq!(subsecond("1653485126"), Some(false));
        assert_eq!(subsecond("1653485126.000"), Some(false));
        assert_eq!(subsecond("1653485126.5"), Some(true));
        assert_eq!(subsecond("1653485126000000000"), Some(true));
    }

    #[test]
    fn seconds_convert_exactly() {
        assert_eq!(parse_seconds_as_millis("k", "0.384"), Ok(Some(384.0)));
        assert_eq!(
            parse_seconds_as_millis("k", "0.000929675"),
            Ok(Some(0.929675))
        );
        assert_eq!(parse_seconds_as_millis("k", "12"), Ok(Some(12_000.0)));
        assert_eq!(parse_seconds_as_millis("k", "-1"), Ok(None));
        assert_eq!(
            parse_seconds_as_millis("k", "fast"),
            Err(r#"invalid number "fast" in key k"#.to_string())
        );
    }

    #[test]
    fn timestamp_forms() {
        assert_eq!(
            parse_timestamp("t", "2018-08-28T19:18:51+03:00"),
            Ok(1_535_473_131_000_000)
        );
        assert_eq!(
            parse_timestamp("t", "28/Aug/2018:19:18:51 +0300"),
            Ok(1_535_473_131_000_000)
        );
        assert_eq!(
            parse_timestamp("t", "1535473131"),
            Ok(1_535_473_131_000_000)
        );
        assert!(parse_timestamp("t", "yesterday").is_err());
    }

    #[test]
    fn last_item_of_upstream_lists() {
        assert_eq!(last_list_item("10.0.0.1:80"), "10.0.0.1:80");
        assert_eq!(last_list_item("0.000, 0.110"), "0.110");
        assert_eq!(last_list_item("502, 504 : 200"), "200");
        assert_eq!(
            last_list_item("[::1]:80, unix:/tmp/app.sock"),
            "unix:/tmp/app.sock"
        );
        assert!(is_list("a, b"));
        assert!(is_list("a : b"));
        assert!(!is_list("[::1]:80"));
    }

    #[test]
    fn unknown_values_are_none() {
        for text in ["null", r#""""#, r#""-""#, "[]", "{}"] {
            let value: Json<'_> = serde_json::from_str(text).unwrap();
            assert_eq!(value_text(&value), None, "value {text}");
        }
        let value: Json<'_> = serde_json::from_str("0").unwrap();
        assert_eq!(value_text(&value).as_deref(), Some("0"));
    }

    #[test]
    fn repeated_headers_are_joined() {
        let value: Json<'_> = serde_json::from_str(r#"["a=1","-","b=2"]"#).unwrap();
        assert_eq!(header_text("Cookie", &value).as_deref(), Some("a=1; b=2"));
        assert_eq!(header_text("Accept", &value).as_deref(), Some("a=1, b=2"));
        let single: Json<'_> = serde_json::from_str(r#"["curl/8.0"]"#).unwrap();
        assert!(matches!(
            header_text("User-Agent", &single),
            Some(Cow::Borrowed("curl/8.0"))
        ));
    }

    #[test]
    fn object_parsing_errors() {
        assert_eq!(
            parse_object("GET / HTTP/1.1").unwrap_err(),
            r#"expected a JSON object, found "GET / HTTP/1.1""#
        );
        assert!(
            parse_object("{\"a\":")
                .unwrap_err()
                .starts_with("invalid JSON: ")
        );
        assert_eq!(parse_object("\u{feff} {\"a\":1} ").map(|m| m.len()), Ok(1));
    }
}
