//! Generic JSON records with a field mapping from the configuration (`json`).
//!
//! Any log-management export (Splunk, Datadog, Elastic, Loki, a company's
//! own gateway) that writes one JSON object per record can be read without
//! code: a [`JsonMapping`] names, for each canonical column, the field that
//! contains it. The parser reads the mapping from
//! [`ParseContext::json_mapping`] and rejects every record when there is
//! none, which is also why format detection never picks this format.
//!
//! # Paths
//!
//! Nested objects are flattened with `.`, so the path `http.request.method`
//! finds `{"http":{"request":{"method":"GET"}}}` and also a key that itself
//! contains dots, such as Zeek's `{"id.orig_h":"10.0.0.1"}`. `[N]` selects
//! element N of an array (`headers.x-forwarded-for[0]`), and `["a[b]"]`
//! quotes a name that contains brackets. An entry may list several paths,
//! and the first one that holds a value wins. Values `null`, `""` and `-`
//! count as absent.
//!
//! # Columns
//!
//! | entry | how the value is read |
//! |---|---|
//! | `time` (required) | with its `format` (see [`time`]); a record without it is rejected |
//! | `status`, `upstream_status`, `client_port` | an integer, or a string holding one |
//! | `request_bytes`, `response_bytes` | an integer, or a string holding one; negative is unknown |
//! | `duration_ms` | a number or numeric string in its `unit`; negative is unknown |
//! | `client_ip` | an IP address, or `ip:port`; a host name goes to attribute `remote_host` |
//! | `http_version` | as logged, with `HTTP/` added to a bare version such as `1.1` |
//! | `path` | as logged; a `?` splits off the query |
//! | `query` | as logged, without a leading `?` |
//! | `url` | an absolute URL or a path with query, split into `scheme`, `host`, `path` and `query`; a port goes to attribute `port` and a `#fragment` is dropped |
//! | `request` | a request line `GET /x HTTP/1.1`, split into `method`, the URL columns and `http_version`; anything else sets `malformed` and goes to attribute `request` |
//! | `consumer` | as logged; `consumer_kind` is `gateway` unless an entry maps it |
//! | `consumer_kind`, `auth_scheme` | one of the schema's values, in any case; another value goes to an attribute under its field name |
//! | every other column | as logged; numbers and booleans as text, an array of strings joined with `, ` |
//!
//! `url` and `request` are applied before the other entries, so an entry for
//! `host`, `path` or another of their columns replaces what they gave. A
//! value of the wrong type or form (`"status": "OK"`) rejects the record
//! with the field and the value in the reason. `time` is what the source
//! logged, start or end of the request depending on the source.
//!
//! `sensor` is the record's `sensor` field when mapped, else the input's
//! sensor, else the mapping's static `sensor` option.
//!
//! # Attributes
//!
//! Every field that no entry's path names becomes an attribute under its
//! flattened name, in record order, unless `attributes` is `"none"` or a
//! list that does not select it. `strip_prefix` is removed from the start
//! of attribute names that have it, so `content.attributes.service`
//! becomes `service` with `strip_prefix = "content.attributes."`. Arrays
//! are kept as JSON text.

mod mapping;
pub mod time;

use std::borrow::Cow;

pub use mapping::{
    AttributeSelection, FieldConfig, JsonMapping, JsonMappingConfig, JsonMappingError,
};

use mapping::{Conversion, Entry, PathUse, Step, Target};

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::{Json, flatten};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{quote_excerpt, set_client_address, split_request_line, split_target};

/// Reject reason for a record parsed without a mapping.
pub const NO_MAPPING: &str = "the json format needs a field mapping: name one of the [[ingest.json_mappings]] of the server configuration with mapping=NAME";

const CONSUMER_KINDS: [&str; 6] = ["gateway", "api_key", "jwt", "mtls", "basic", "ip"];
const AUTH_SCHEMES: [&str; 6] = ["none", "basic", "bearer", "api_key", "mtls", "other"];

/// Parses one record with the mapping of the parse context.
pub fn parse_line(record: &str, ctx: &ParseContext<'_>) -> LineOutcome {
    let Some(mapping) = ctx.json_mapping else {
        return LineOutcome::Rejected(NO_MAPPING.to_string());
    };
    match build_event(record, mapping, ctx) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// A value found for an entry: which of its paths, and the value there.
#[derive(Clone, Copy)]
struct Found<'v, 'a> {
    priority: usize,
    value: &'v Json<'a>,
}

fn build_event(
    record: &str,
    mapping: &JsonMapping,
    ctx: &ParseContext<'_>,
) -> Result<Event, String> {
    let record = record.strip_prefix('\u{feff}').unwrap_or(record).trim();
    let value: Json<'_> =
        serde_json::from_str(record).map_err(|error| format!("invalid JSON: {error}"))?;
    let Json::Object(members) = &value else {
        return Err(format!("expected a JSON object, found {}", value.kind()));
    };
    let mut leaves = Vec::with_capacity(members.len());
    flatten(None, members, &mut leaves);

    let mut event = Event::new(Format::Json.name(), 0);
    let mut found: Vec<Option<Found<'_, '_>>> = vec![None; mapping.entries.len()];
    for (key, value) in &leaves {
        match mapping.lookup.get(key.as_ref()) {
            Some(uses) => collect(mapping, uses, value, &mut found),
            None => push_attribute(&mut event, mapping, key, value),
        }
    }

    let mut time = None;
    for (entry, found) in mapping.entries.iter().zip(&found) {
        let Some(found) = found else {
            continue;
        };
        let field = entry.paths[found.priority].text.as_str();
        if entry.target == Target::Time {
            let Conversion::Time(spec) = &entry.conversion else {
                unreachable!("the time entry is compiled with a time spec");
            };
            time = Some(spec.read(field, found.value)?);
            continue;
        }
        apply(&mut event, mapping, entry, field, found.value)?;
    }
    event.time = time.ok_or_else(|| missing_time(mapping))?;
    finish(&mut event, mapping, ctx);
    Ok(event)
}

/// Records, for each entry that reads `value`'s key, the value its path leads to,
/// keeping the one of the highest-priority path.
fn collect<'v, 'a>(
    mapping: &JsonMapping,
    uses: &[PathUse],
    value: &'v Json<'a>,
    found: &mut [Option<Found<'v, 'a>>],
) {
    for path_use in uses {
        let path = &mapping.entries[path_use.entry].paths[path_use.priority];
        let Some(value) = follow(value, &path.steps) else {
            continue;
        };
        if is_absent(value) {
            continue;
        }
        let slot = &mut found[path_use.entry];
        if slot.is_none_or(|current| path_use.priority < current.priority) {
            *slot = Some(Found {
                priority: path_use.priority,
                value,
            });
        }
    }
}

/// Walks the steps after a path's first array index.
fn follow<'v, 'a>(value: &'v Json<'a>, steps: &[Step]) -> Option<&'v Json<'a>> {
    let mut current = value;
    for step in steps {
        current = match (step, current) {
            (Step::Index(index), Json::Array(items)) => items.get(*index)?,
            (Step::Name(name), Json::Object(members)) => find_member(members, name)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Finds a dotted name in an object, matching nested objects and keys with dots alike.
fn find_member<'v, 'a>(
    members: &'v [(Cow<'a, str>, Json<'a>)],
    name: &str,
) -> Option<&'v Json<'a>> {
    for (key, value) in members {
        if key == name {
            return Some(value);
        }
        let nested = name
            .strip_prefix(key.as_ref())
            .and_then(|rest| rest.strip_prefix('.'));
        if let (Some(rest), Json::Object(inner)) = (nested, value)
            && let Some(found) = find_member(inner, rest)
        {
            return Some(found);
        }
    }
    None
}

/// Returns whether a value means "not logged": null, empty text or `-`.
fn is_absent(value: &Json<'_>) -> bool {
    match value {
        Json::Null => true,
        Json::String(text) => text.is_empty() || text == "-",
        _ => false,
    }
}

/// Keeps a field that no entry names as an attribute, if the mapping selects it.
fn push_attribute(event: &mut Event, mapping: &JsonMapping, key: &str, value: &Json<'_>) {
    let config = mapping.config();
    if !config.attributes.includes(key) {
        return;
    }
    let Some(text) = value.as_text() else {
        return;
    };
    if text.is_empty() || text == "-" {
        return;
    }
    event
        .attributes
        .push((attribute_name(mapping, key).to_string(), text.into_owned()));
}

/// Returns the attribute name of a field: its flattened name without the mapping's `strip_prefix`.
fn attribute_name<'k>(mapping: &JsonMapping, key: &'k str) -> &'k str {
    mapping
        .config()
        .strip_prefix
        .as_deref()
        .and_then(|prefix| key.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(key)
}

/// Stores one entry's value in its columns.
fn apply(
    event: &mut Event,
    mapping: &JsonMapping,
    entry: &Entry,
    field: &str,
    value: &Json<'_>,
) -> Result<(), String> {
    let column = entry.target.name();
    match entry.target {
        Target::Request => set_request_line(event, &text(value)),
        Target::Url => set_url(event, field, &text(value))?,
        Target::Time => {}
        Target::Sensor => event.sensor = Some(text(value)),
        Target::RequestId => event.request_id = Some(text(value)),
        Target::TraceId => event.trace_id = Some(text(value)),
        Target::Method => event.method = Some(text(value)),
        Target::Scheme => event.scheme = Some(text(value)),
        Target::Host => event.host = Some(text(value)),
        Target::HttpVersion => event.http_version = Some(http_version(text(value))),
        Target::Path => set_path(event, text(value)),
        Target::Query => {
            let query = text(value);
            event.query = Some(query.strip_prefix('?').unwrap_or(&query).to_string());
        }
        Target::Status => event.status = Some(read_i32(field, column, value)?),
        Target::UpstreamStatus => event.upstream_status = Some(read_i32(field, column, value)?),
        Target::ClientPort => event.client_port = Some(read_port(field, value)?),
        Target::RequestBytes => event.request_bytes = read_size(field, column, value)?,
        Target::ResponseBytes => event.response_bytes = read_size(field, column, value)?,
        Target::DurationMs => {
            let Conversion::Duration(unit) = entry.conversion else {
                unreachable!("the duration_ms entry is compiled with a unit");
            };
            event.duration_ms = time::read_duration_ms(field, unit, value)?;
        }
        Target::ClientIp => set_client_address(event, &text(value)),
        Target::ForwardedFor => event.forwarded_for = Some(text(value)),
        Target::UserAgent => event.user_agent = Some(text(value)),
        Target::Referer => event.referer = Some(text(value)),
        Target::Consumer => event.consumer = Some(text(value)),
        Target::ConsumerKind => {
            event.consumer_kind = known_value(event, mapping, field, value, &CONSUMER_KINDS);
        }
        Target::AuthScheme => {
            event.auth_scheme = known_value(event, mapping, field, value, &AUTH_SCHEMES);
        }
        Target::Upstream => event.upstream = Some(text(value)),
    }
    Ok(())
}

/// Fills what the record does not carry, after every entry is applied.
fn finish(event: &mut Event, mapping: &JsonMapping, ctx: &ParseContext<'_>) {
    if event.consumer.is_some() && event.consumer_kind.is_none() {
        event.consumer_kind = Some("gateway".to_string());
    }
    if event.sensor.is_none() && ctx.sensor.is_none() {
        event.sensor = mapping.config().sensor.clone();
    }
}

fn missing_time(mapping: &JsonMapping) -> String {
    let entry = mapping
        .entries
        .iter()
        .find(|entry| entry.target == Target::Time)
        .expect("a validated mapping has a time entry");
    let paths: Vec<&str> = entry.paths.iter().map(|path| path.text.as_str()).collect();
    format!(
        "missing the request time: the record has no value at {} (json mapping {:?})",
        paths.join(" or "),
        mapping.name()
    )
}

/// Returns a value as column text: strings as they are, numbers and booleans
/// as written, arrays of scalars joined with `, `, objects as JSON.
fn text(value: &Json<'_>) -> String {
    match value {
        Json::String(text) => text.to_string(),
        Json::Array(items) if items.iter().all(is_scalar) => {
            let parts: Vec<Cow<'_, str>> = items
                .iter()
                .filter(|item| !is_absent(item))
                .filter_map(Json::as_text)
                .collect();
            parts.join(", ")
        }
        other => other.as_text().map(Cow::into_owned).unwrap_or_default(),
    }
}

fn is_scalar(value: &Json<'_>) -> bool {
    !matches!(value, Json::Array(_) | Json::Object(_))
}

/// Adds `HTTP/` to a bare version such as `1.1` or `2`.
fn http_version(version: String) -> String {
    let is_bare = !version.is_empty()
        && version.len() <= 3
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && version.as_bytes()[0].is_ascii_digit();
    if is_bare {
        format!("HTTP/{version}")
    } else {
        version
    }
}

/// Sets `path`, and `query` from what follows a `?`.
fn set_path(event: &mut Event, text: String) {
    match text.split_once('?') {
        Some((path, query)) => {
            event.query = Some(query.to_string());
            event.path = Some(path.to_string());
        }
        None => event.path = Some(text),
    }
}

/// Splits a URL or a path with query into the URL columns.
fn set_url(event: &mut Event, field: &str, url: &str) -> Result<(), String> {
    // A fragment never reaches the server and can carry an OAuth token.
    let without_fragment = url.split_once('#').map_or(url, |(before, _)| before);
    let Some(target) = split_target("GET", without_fragment) else {
        return Err(format!(
            "invalid URL {} in field {field}: expected an absolute URL such as https://api.example.com/v1/x or a path starting with /",
            quote_excerpt(url)
        ));
    };
    if let Some(scheme) = target.scheme {
        event.scheme = Some(scheme.to_string());
    }
    if let Some(host) = target.host {
        event.host = Some(host.to_string());
    }
    if let Some(port) = target.port {
        event
            .attributes
            .push(("port".to_string(), port.to_string()));
    }
    event.path = target.path.map(str::to_string);
    event.query = target.query.map(str::to_string);
    Ok(())
}

/// Splits a request line into method, URL columns and version, or marks the event malformed.
fn set_request_line(event: &mut Event, raw: &str) {
    let parsed = split_request_line(raw)
        .and_then(|line| split_target(line.method, line.target).map(|target| (line, target)));
    let Some((line, target)) = parsed else {
        event.malformed = true;
        event
            .attributes
            .push(("request".to_string(), raw.to_string()));
        return;
    };
    event.method = Some(line.method.to_string());
    event.http_version = line.version.map(str::to_string);
    if let Some(scheme) = target.scheme {
        event.scheme = Some(scheme.to_string());
    }
    if let Some(host) = target.host {
        event.host = Some(host.to_string());
    }
    if let Some(port) = target.port {
        event
            .attributes
            .push(("port".to_string(), port.to_string()));
    }
    event.path = target.path.map(str::to_string);
    event.query = target.query.map(str::to_string);
    if line.target.contains(' ') {
        event.malformed = true;
    }
}

/// Reads an integer from a number or numeric text. `200.0` counts as 200.
fn read_integer(field: &str, column: &str, value: &Json<'_>) -> Result<i64, String> {
    let parsed = match value {
        Json::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().and_then(integral)),
        Json::String(text) => {
            let text = text.trim();
            text.parse::<i64>()
                .ok()
                .or_else(|| text.parse::<f64>().ok().and_then(integral))
        }
        other => {
            return Err(format!(
                "expected a number in field {field} (column {column}), found {}",
                other.kind()
            ));
        }
    };
    parsed.ok_or_else(|| {
        let text = value.as_text().unwrap_or_default();
        format!(
            "invalid number {} in field {field} (column {column})",
            quote_excerpt(&text)
        )
    })
}

/// Returns a float as an integer when it has no fraction and fits.
fn integral(value: f64) -> Option<i64> {
    let in_range = value.is_finite() && value.abs() < 9.0e15;
    (in_range && value.fract() == 0.0).then_some(value as i64)
}

fn read_i32(field: &str, column: &str, value: &Json<'_>) -> Result<i32, String> {
    let number = read_integer(field, column, value)?;
    i32::try_from(number).map_err(|_| {
        format!("number {number} in field {field} is out of range for column {column}")
    })
}

fn read_port(field: &str, value: &Json<'_>) -> Result<i32, String> {
    let port = read_integer(field, "client_port", value)?;
    if (0..=65_535).contains(&port) {
        Ok(port as i32)
    } else {
        Err(format!(
            "invalid port {port} in field {field}: ports range from 0 to 65535"
        ))
    }
}

/// Reads a size in bytes. A negative size, such as `-1`, is unknown.
fn read_size(field: &str, column: &str, value: &Json<'_>) -> Result<Option<i64>, String> {
    let size = read_integer(field, column, value)?;
    Ok((size >= 0).then_some(size))
}

/// Returns the schema's spelling of a value from `allowed`, or keeps an
/// unknown value as an attribute under the record's field name.
fn known_value(
    event: &mut Event,
    mapping: &JsonMapping,
    field: &str,
    value: &Json<'_>,
    allowed: &[&'static str],
) -> Option<String> {
    let text = text(value);
    match allowed
        .iter()
        .find(|known| known.eq_ignore_ascii_case(text.trim()))
    {
        Some(known) => Some((*known).to_string()),
        None => {
            let name = attribute_name(mapping, field).to_string();
            event.attributes.push((name, text));
            None
        }
    }
}

#[cfg(test)]
mod tests;
