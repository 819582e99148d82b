//! Decodes OTLP/JSON records into the model of [`super::model`].
//!
//! Field names are read in lowerCamelCase, as OTLP/JSON requires, and in
//! the protobuf field names (`resource_spans`, `start_time_unix_nano`) that
//! protobuf JSON parsers also accept. Enum fields may be numbers or names.
//! 64-bit integers may be JSON numbers or strings.

use std::borrow::Cow;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::export::{ExportMapping, Signal};
use super::model::{AnyValue, KeyValue, LogRecordView, Scope, SpanKind, SpanView, StatusCode};
use super::semconv::{has_http_attribute, log_record_to_event, span_to_event};
use crate::event::Event;
use crate::formats::json::Json;
use crate::parse::{FutureTolerance, LineOutcome};
use crate::text::quote_excerpt;

/// Standard base64 with or without padding, as protobuf JSON writes `bytes`.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Name of the OpenTelemetry Java agent's logging exporters, which print
/// OTLP/JSON after a log prefix.
const LOGGING_EXPORTER_MARK: &[u8] = b"OtlpJsonLogging";

/// Key endings of which an OTLP/JSON record contains at least one.
const MARKER_KEY_ENDINGS: [&[u8]; 6] = [
    b"Spans\"",
    b"_spans\"",
    b"Logs\"",
    b"_logs\"",
    b"Metrics\"",
    b"_metrics\"",
];

type Members<'v, 'a> = &'v [(Cow<'a, str>, Json<'a>)];

/// Parses one OTLP/JSON record into the events of its HTTP server spans or
/// HTTP log records.
///
/// One invalid span or log record rejects the whole record, with the reason
/// of the first, so a file's rejects keep every item of the record together.
pub(crate) fn parse_record(record: &str) -> LineOutcome {
    let record = record.strip_prefix('\u{feff}').unwrap_or(record).trim();
    let Some(json) = json_part(record) else {
        return LineOutcome::Rejected(not_otlp());
    };
    if !MARKER_KEY_ENDINGS
        .iter()
        .any(|ending| memchr::memmem::find(json.as_bytes(), ending).is_some())
    {
        return LineOutcome::Rejected(not_otlp());
    }
    let document: Json<'_> = match serde_json::from_str(json) {
        Ok(document) => document,
        Err(error) => return LineOutcome::Rejected(format!("invalid JSON: {error}")),
    };
    let Json::Object(members) = &document else {
        return LineOutcome::Rejected(format!("expected a JSON object, found {}", document.kind()));
    };
    match decode_document(members) {
        Ok(Decoded::Events(events)) => LineOutcome::Events(events),
        Ok(Decoded::Skipped(tag)) => LineOutcome::Skipped(tag),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Maps the body of an OTLP/HTTP JSON request, span by span or log record
/// by log record.
///
/// The body must be a JSON object. A body without `resourceSpans`
/// (`resourceLogs` for logs) is an empty export, which succeeds in OTLP. An invalid item is rejected on its own, with the item as a
/// one-item export in [`super::RejectedItem::text`].
///
/// # Errors
///
/// A body that is not a JSON object, one of the other signal, or whose
/// lists are not lists of objects. Such a request cannot be decoded, so
/// none of its items is mapped.
pub fn map_json_request(
    body: &str,
    signal: Signal,
    future_tolerance: Option<FutureTolerance>,
) -> Result<ExportMapping, String> {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let document: Json<'_> =
        serde_json::from_str(body).map_err(|error| format!("invalid JSON: {error}"))?;
    let Json::Object(members) = &document else {
        return Err(format!("expected a JSON object, found {}", document.kind()));
    };
    let mut mapping = ExportMapping::new(future_tolerance);
    let (key, other) = match signal {
        Signal::Traces => (("resourceSpans", "resource_spans"), "resourceLogs"),
        Signal::Logs => (("resourceLogs", "resource_logs"), "resourceSpans"),
    };
    let Some(list) = field(members, key.0, key.1) else {
        if member(members, other).is_some() {
            return Err(format!(
                "the body is an export of {other}, not of {}; post it to the {} path",
                signal.items(),
                if signal == Signal::Traces {
                    "/v1/logs"
                } else {
                    "/v1/traces"
                }
            ));
        }
        return Ok(mapping);
    };
    let resources = objects(list, key.0)?;
    match signal {
        Signal::Traces => span_events(&resources, true, &mut mapping)?,
        Signal::Logs => log_events(&resources, true, &mut mapping)?,
    }
    Ok(mapping)
}

fn not_otlp() -> String {
    "not OTLP JSON: expected an object with resourceSpans or resourceLogs, or a \
     ResourceSpans or ResourceLogs object"
        .to_string()
}

/// Returns the JSON of a record: the record itself, or what follows the log prefix
/// of the Java agent's logging exporter (`... OtlpJsonLoggingSpanExporter - {...}`).
fn json_part(record: &str) -> Option<&str> {
    if record.starts_with('{') {
        return Some(record);
    }
    let mark = memchr::memmem::find(record.as_bytes(), LOGGING_EXPORTER_MARK)?;
    let after_mark = &record[mark..];
    let start = after_mark.find(" - {")? + " - ".len();
    Some(&after_mark[start..])
}

enum Decoded {
    Events(Vec<Event>),
    Skipped(&'static str),
}

fn decode_document(members: Members<'_, '_>) -> Result<Decoded, String> {
    if let Some(list) = field(members, "resourceSpans", "resource_spans") {
        let resources = objects(list, "resourceSpans")?;
        return spans_result(&resources, true);
    }
    if scope_spans(members).is_some() {
        return spans_result(&[members], false);
    }
    if let Some(list) = field(members, "resourceLogs", "resource_logs") {
        let resources = objects(list, "resourceLogs")?;
        return logs_result(&resources, true);
    }
    if scope_logs(members).is_some() {
        return logs_result(&[members], false);
    }
    let metrics = [
        "resourceMetrics",
        "resource_metrics",
        "scopeMetrics",
        "scope_metrics",
    ];
    if metrics.iter().any(|key| member(members, key).is_some()) {
        return Ok(Decoded::Skipped("otlp_metrics"));
    }
    Err(not_otlp())
}

fn spans_result(resources: &[Members<'_, '_>], in_list: bool) -> Result<Decoded, String> {
    let mut mapping = ExportMapping::default();
    span_events(resources, in_list, &mut mapping)?;
    whole_record(mapping, "no_http_server_spans")
}

fn logs_result(resources: &[Members<'_, '_>], in_list: bool) -> Result<Decoded, String> {
    let mut mapping = ExportMapping::default();
    log_events(resources, in_list, &mut mapping)?;
    whole_record(mapping, "no_http_log_records")
}

/// Turns the items of a file record into its one outcome: rejected when any
/// item is, skipped when no item became an event.
fn whole_record(mapping: ExportMapping, skip_tag: &'static str) -> Result<Decoded, String> {
    if let Some(first) = mapping.rejected.first() {
        return Err(first.message());
    }
    Ok(if mapping.events.is_empty() {
        Decoded::Skipped(skip_tag)
    } else {
        Decoded::Events(mapping.events)
    })
}

/// The part of a record around one item: its resource and scope, as JSON,
/// to rebuild a one-item export of a rejected item.
struct Envelope<'v, 'a> {
    resource: Option<&'v Json<'a>>,
    scope: Option<&'v Json<'a>>,
}

impl Envelope<'_, '_> {
    /// Writes `{"resourceSpans":[{"resource":...,"scopeSpans":[{"scope":...,"spans":[item]}]}]}`,
    /// or the `resourceLogs` form.
    fn one_item_export(&self, signal: Signal, item: Members<'_, '_>) -> String {
        let item = serde_json::to_value(Json::Object(item.to_vec())).unwrap_or_default();
        let (resource_key, scope_key, items_key) = match signal {
            Signal::Traces => ("resourceSpans", "scopeSpans", "spans"),
            Signal::Logs => ("resourceLogs", "scopeLogs", "logRecords"),
        };
        serde_json::json!({
            resource_key: [{
                "resource": self.resource,
                scope_key: [{ "scope": self.scope, items_key: [item] }],
            }]
        })
        .to_string()
    }
}

/// Maps the server spans of each `ResourceSpans` into `mapping`, naming the
/// position of each span that fails.
///
/// A span that is not an HTTP server span is skipped whatever else is wrong
/// with it. Invalid resource or scope attributes reject the HTTP server
/// spans beneath them.
fn span_events(
    resources: &[Members<'_, '_>],
    in_list: bool,
    mapping: &mut ExportMapping,
) -> Result<(), String> {
    for (resource_index, resource_spans) in resources.iter().enumerate() {
        let resource_attributes = resource_attributes(resource_spans);
        let prefix = if in_list {
            format!("resourceSpans[{resource_index}].")
        } else {
            String::new()
        };
        let Some((scope_key, scope_list)) = scope_spans(resource_spans) else {
            continue;
        };
        for (scope_index, scope_spans) in objects(scope_list, scope_key)?.iter().enumerate() {
            let position = format!("{prefix}{scope_key}[{scope_index}]");
            let scope = decode_scope(scope_spans);
            let envelope = Envelope {
                resource: field(resource_spans, "resource", "resource"),
                scope: field(scope_spans, "scope", "scope"),
            };
            let Some(spans) = field(scope_spans, "spans", "spans") else {
                continue;
            };
            for (span_index, span) in objects(spans, "spans")?.iter().enumerate() {
                let outcome = map_span(span, &resource_attributes, &scope);
                if let Ok(None) = outcome {
                    mapping.skip();
                    continue;
                }
                mapping.record(
                    outcome,
                    || format!("{position}.spans[{span_index}]"),
                    || envelope.one_item_export(Signal::Traces, span),
                );
            }
        }
    }
    Ok(())
}

/// Maps one span, with the resource and scope it sits under.
fn map_span(
    span: Members<'_, '_>,
    resource_attributes: &Result<Vec<KeyValue<'_>>, String>,
    scope: &Result<Scope<'_>, String>,
) -> Result<Option<Event>, String> {
    if decode_span_kind(span)? != SpanKind::Server {
        return Ok(None);
    }
    let view = decode_span(span)?;
    if !has_http_attribute(&view.attributes) {
        return Ok(None);
    }
    let resource_attributes = resource_attributes.as_ref().map_err(Clone::clone)?;
    let scope = scope.as_ref().map_err(Clone::clone)?;
    span_to_event(&view, resource_attributes, scope)
}

/// Maps the HTTP log records of each `ResourceLogs` into `mapping`, naming
/// the position of each record that fails.
///
/// Invalid resource or scope attributes reject the HTTP log records beneath them.
fn log_events(
    resources: &[Members<'_, '_>],
    in_list: bool,
    mapping: &mut ExportMapping,
) -> Result<(), String> {
    for (resource_index, resource_logs) in resources.iter().enumerate() {
        let resource_attributes = resource_attributes(resource_logs);
        let prefix = if in_list {
            format!("resourceLogs[{resource_index}].")
        } else {
            String::new()
        };
        let Some((scope_key, scope_list)) = scope_logs(resource_logs) else {
            continue;
        };
        for (scope_index, scope_logs) in objects(scope_list, scope_key)?.iter().enumerate() {
            let position = format!("{prefix}{scope_key}[{scope_index}]");
            let scope = decode_scope(scope_logs);
            let envelope = Envelope {
                resource: field(resource_logs, "resource", "resource"),
                scope: field(scope_logs, "scope", "scope"),
            };
            let Some(records) = field(scope_logs, "logRecords", "log_records") else {
                continue;
            };
            for (record_index, record) in objects(records, "logRecords")?.iter().enumerate() {
                let outcome = map_log_record(record, &resource_attributes, &scope);
                if let Ok(None) = outcome {
                    mapping.skip();
                    continue;
                }
                mapping.record(
                    outcome,
                    || format!("{position}.logRecords[{record_index}]"),
                    || envelope.one_item_export(Signal::Logs, record),
                );
            }
        }
    }
    Ok(())
}

/// Maps one log record, with the resource and scope it sits under.
fn map_log_record(
    record: Members<'_, '_>,
    resource_attributes: &Result<Vec<KeyValue<'_>>, String>,
    scope: &Result<Scope<'_>, String>,
) -> Result<Option<Event>, String> {
    let view = decode_log_record(record)?;
    if !has_http_attribute(&view.attributes) {
        return Ok(None);
    }
    let resource_attributes = resource_attributes.as_ref().map_err(Clone::clone)?;
    let scope = scope.as_ref().map_err(Clone::clone)?;
    log_record_to_event(&view, resource_attributes, scope)
}

fn scope_spans<'v, 'a>(members: Members<'v, 'a>) -> Option<(&'static str, &'v Json<'a>)> {
    [
        ("scopeSpans", "scope_spans"),
        (
            "instrumentationLibrarySpans",
            "instrumentation_library_spans",
        ),
    ]
    .into_iter()
    .find_map(|(camel, snake)| field(members, camel, snake).map(|list| (camel, list)))
}

fn scope_logs<'v, 'a>(members: Members<'v, 'a>) -> Option<(&'static str, &'v Json<'a>)> {
    [
        ("scopeLogs", "scope_logs"),
        ("instrumentationLibraryLogs", "instrumentation_library_logs"),
    ]
    .into_iter()
    .find_map(|(camel, snake)| field(members, camel, snake).map(|list| (camel, list)))
}

fn resource_attributes<'a>(members: Members<'_, 'a>) -> Result<Vec<KeyValue<'a>>, String> {
    match field(members, "resource", "resource") {
        Some(Json::Object(resource)) => {
            attributes(resource).map_err(|error| format!("resource: {error}"))
        }
        _ => Ok(Vec::new()),
    }
}

/// Decodes `scope`, or the older `instrumentationLibrary`.
fn decode_scope<'a>(members: Members<'_, 'a>) -> Result<Scope<'a>, String> {
    let scope = field(members, "scope", "scope")
        .or_else(|| field(members, "instrumentationLibrary", "instrumentation_library"));
    let Some(Json::Object(scope)) = scope else {
        return Ok(Scope::default());
    };
    Ok(Scope {
        name: text(scope, "name", "name"),
        version: text(scope, "version", "version"),
        attributes: attributes(scope).map_err(|error| format!("scope: {error}"))?,
    })
}

fn decode_span_kind(members: Members<'_, '_>) -> Result<SpanKind, String> {
    Ok(match field(members, "kind", "kind") {
        None | Some(Json::Null) => SpanKind::Unspecified,
        Some(Json::String(name)) if !is_integer(name) => SpanKind::from_name(name),
        Some(value) => SpanKind::from_number(integer(value, "kind")?),
    })
}

fn decode_span<'a>(members: Members<'_, 'a>) -> Result<SpanView<'a>, String> {
    let status = match field(members, "status", "status") {
        Some(Json::Object(status)) => Some(status),
        _ => None,
    };
    let status_code = match status.and_then(|status| field(status, "code", "code")) {
        None | Some(Json::Null) => StatusCode::Unset,
        Some(Json::String(name)) if !is_integer(name) => StatusCode::from_name(name),
        Some(value) => StatusCode::from_number(integer(value, "status.code")?),
    };
    Ok(SpanView {
        trace_id: id(members, "traceId", "trace_id")?,
        span_id: id(members, "spanId", "span_id")?,
        parent_span_id: id(members, "parentSpanId", "parent_span_id")?,
        trace_state: text(members, "traceState", "trace_state"),
        name: text(members, "name", "name"),
        kind: decode_span_kind(members)?,
        start_time_unix_nano: nanos(members, "startTimeUnixNano", "start_time_unix_nano")?,
        end_time_unix_nano: nanos(members, "endTimeUnixNano", "end_time_unix_nano")?,
        attributes: attributes(members)?,
        status_code,
        status_message: status.map_or(Cow::Borrowed(""), |status| {
            text(status, "message", "message")
        }),
    })
}

fn decode_log_record<'a>(members: Members<'_, 'a>) -> Result<LogRecordView<'a>, String> {
    let severity_number = match field(members, "severityNumber", "severity_number") {
        None | Some(Json::Null) | Some(Json::String(_)) => 0,
        Some(value) => i32::try_from(integer(value, "severityNumber")?).unwrap_or(0),
    };
    let body = match field(members, "body", "body") {
        Some(Json::Object(value)) => Some(any_value(value)?),
        _ => None,
    };
    Ok(LogRecordView {
        time_unix_nano: nanos(members, "timeUnixNano", "time_unix_nano")?,
        observed_time_unix_nano: nanos(members, "observedTimeUnixNano", "observed_time_unix_nano")?,
        severity_number,
        severity_text: text(members, "severityText", "severity_text"),
        body,
        attributes: attributes(members)?,
        trace_id: id(members, "traceId", "trace_id")?,
        span_id: id(members, "spanId", "span_id")?,
        event_name: text(members, "eventName", "event_name"),
    })
}

/// Decodes the `attributes` list of an object.
fn attributes<'a>(members: Members<'_, 'a>) -> Result<Vec<KeyValue<'a>>, String> {
    let Some(list) = field(members, "attributes", "attributes") else {
        return Ok(Vec::new());
    };
    key_values(list, "attributes")
}

fn key_values<'a>(list: &Json<'a>, name: &str) -> Result<Vec<KeyValue<'a>>, String> {
    let items = objects(list, name)?;
    let mut pairs = Vec::with_capacity(items.len());
    for item in items {
        let key = text(item, "key", "key");
        let value = match field(item, "value", "value") {
            Some(Json::Object(value)) => {
                any_value(value).map_err(|error| format!("attribute {key}: {error}"))?
            }
            _ => AnyValue::Empty,
        };
        pairs.push(KeyValue { key, value });
    }
    Ok(pairs)
}

/// Decodes an `AnyValue` object such as `{"stringValue": "x"}` or `{"intValue": "3"}`.
fn any_value<'a>(members: Members<'_, 'a>) -> Result<AnyValue<'a>, String> {
    let Some((key, value)) = members.first() else {
        return Ok(AnyValue::Empty);
    };
    Ok(match key.as_ref() {
        "stringValue" | "string_value" => match value {
            Json::String(text) => AnyValue::String(text.clone()),
            other => AnyValue::String(Cow::Owned(other.as_text().unwrap_or_default().into_owned())),
        },
        "boolValue" | "bool_value" => AnyValue::Bool(matches!(value, Json::Bool(true))),
        "intValue" | "int_value" => AnyValue::Int(integer(value, "intValue")?),
        "doubleValue" | "double_value" => AnyValue::Double(double(value)?),
        "bytesValue" | "bytes_value" => match value {
            Json::String(text) => AnyValue::Bytes(Cow::Owned(
                BASE64
                    .decode(text.as_bytes())
                    .map_err(|_| format!("invalid bytesValue {}", quote_excerpt(text)))?,
            )),
            _ => AnyValue::Empty,
        },
        "arrayValue" | "array_value" => match value {
            Json::Object(array) => match field(array, "values", "values") {
                Some(Json::Array(items)) => {
                    let mut values = Vec::with_capacity(items.len());
                    for item in items {
                        values.push(match item {
                            Json::Object(inner) => any_value(inner)?,
                            _ => AnyValue::Empty,
                        });
                    }
                    AnyValue::Array(values)
                }
                _ => AnyValue::Array(Vec::new()),
            },
            _ => AnyValue::Empty,
        },
        "kvlistValue" | "kvlist_value" => match value {
            Json::Object(list) => match field(list, "values", "values") {
                Some(values) => AnyValue::KeyValueList(key_values(values, "kvlistValue")?),
                None => AnyValue::KeyValueList(Vec::new()),
            },
            _ => AnyValue::Empty,
        },
        _ => AnyValue::Empty,
    })
}

/// Reads a trace or span id: hex (in either case), or base64 as some
/// exporters write protobuf `bytes`. Absent, empty and all-zero ids are `None`.
fn id<const N: usize>(
    members: Members<'_, '_>,
    camel: &str,
    snake: &str,
) -> Result<Option<[u8; N]>, String> {
    let text = match field(members, camel, snake) {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::String(text)) => text,
        Some(other) => {
            return Err(format!(
                "{camel} should be a string, found {}",
                other.kind()
            ));
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    let mut bytes = [0u8; N];
    let decoded = if text.len() == 2 * N {
        hex::decode_to_slice(text.as_bytes(), &mut bytes).is_ok()
    } else {
        BASE64
            .decode(text.as_bytes())
            .ok()
            .filter(|decoded| decoded.len() == N)
            .map(|decoded| bytes.copy_from_slice(&decoded))
            .is_some()
    };
    if !decoded {
        return Err(format!(
            "invalid {camel} {}: expected {} hex digits or the base64 of {N} bytes",
            quote_excerpt(text),
            2 * N
        ));
    }
    Ok(bytes.iter().any(|&byte| byte != 0).then_some(bytes))
}

/// Reads a time in nanoseconds from a number or a decimal string, or 0 when absent.
fn nanos(members: Members<'_, '_>, camel: &str, snake: &str) -> Result<u64, String> {
    let invalid = |value: &Json<'_>| {
        let text = value.as_text().unwrap_or_default();
        format!("invalid {camel} {}", quote_excerpt(&text))
    };
    match field(members, camel, snake) {
        None | Some(Json::Null) => Ok(0),
        Some(Json::Number(number)) => number
            .as_u64()
            .ok_or_else(|| invalid(&Json::Number(number.clone()))),
        Some(value @ Json::String(text)) => text.parse().map_err(|_| invalid(value)),
        Some(value) => Err(invalid(value)),
    }
}

fn integer(value: &Json<'_>, name: &str) -> Result<i64, String> {
    let parsed = match value {
        Json::Number(number) => number.as_i64(),
        Json::String(text) => text.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        let text = value.as_text().unwrap_or_default();
        format!("invalid {name} {}", quote_excerpt(&text))
    })
}

fn is_integer(text: &str) -> bool {
    text.parse::<i64>().is_ok()
}

/// Reads a `doubleValue`: a number, or a string such as `"NaN"` or `"Infinity"`.
fn double(value: &Json<'_>) -> Result<f64, String> {
    let parsed = match value {
        Json::Number(number) => number.as_f64(),
        Json::String(text) => text.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        let text = value.as_text().unwrap_or_default();
        format!("invalid doubleValue {}", quote_excerpt(&text))
    })
}

/// Returns the items of a list that must hold objects. Other items are an error.
fn objects<'v, 'a>(list: &'v Json<'a>, name: &str) -> Result<Vec<Members<'v, 'a>>, String> {
    let Json::Array(items) = list else {
        return Err(format!("{name} should be an array, found {}", list.kind()));
    };
    items
        .iter()
        .map(|item| match item {
            Json::Object(members) => Ok(members.as_slice()),
            other => Err(format!(
                "{name} should hold objects, found {}",
                other.kind()
            )),
        })
        .collect()
}

/// Returns a string field, borrowed when the record allows, or an empty
/// string when the field is absent or not a string.
fn text<'a>(members: Members<'_, 'a>, camel: &str, snake: &str) -> Cow<'a, str> {
    match field(members, camel, snake) {
        Some(Json::String(text)) => text.clone(),
        _ => Cow::Borrowed(""),
    }
}

fn field<'v, 'a>(members: Members<'v, 'a>, camel: &str, snake: &str) -> Option<&'v Json<'a>> {
    member(members, camel).or_else(|| {
        if snake == camel {
            None
        } else {
            member(members, snake)
        }
    })
}

fn member<'v, 'a>(members: Members<'v, 'a>, key: &str) -> Option<&'v Json<'a>> {
    crate::formats::capture::member(members, key)
}
