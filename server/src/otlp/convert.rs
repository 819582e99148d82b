//! Maps decoded OTLP protobuf exports to events, item by item.
//!
//! Each span or log record becomes a view of `apitrail_ingest`'s OTLP model
//! that borrows the message's strings and bytes, and goes through the same
//! `span_to_event` or `log_record_to_event` as OTLP/JSON. A protobuf message
//! that decoded is well-formed, so an item is rejected only for what its
//! fields hold: a trace or span id of the wrong length, a missing time, or
//! an event time beyond the future tolerance.
//!
//! A rejected item is written as a one-item OTLP/JSON export with its
//! resource and scope, which the `otlp` format of `apitrail import` reads.

use std::borrow::Cow;

use apitrail_ingest::FutureTolerance;
use apitrail_ingest::formats::otlp::{
    AnyValue, ExportMapping, KeyValue, LogRecordView, Scope, Signal, SpanKind, SpanView,
    StatusCode, log_record_to_event, span_to_event,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    self as common, InstrumentationScope, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value as JsonValue, json};

/// Maps the spans of a trace export. Only HTTP server spans become events.
pub fn map_traces(
    request: &ExportTraceServiceRequest,
    future_tolerance: Option<FutureTolerance>,
) -> ExportMapping {
    let mut mapping = ExportMapping::new(future_tolerance);
    for (resource_index, resource_spans) in request.resource_spans.iter().enumerate() {
        let resource = resource_spans.resource.as_ref();
        let resource_attributes = resource.map_or_else(Vec::new, |r| key_values(&r.attributes));
        for (scope_index, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            let scope = scope_view(scope_spans.scope.as_ref());
            for (span_index, span) in scope_spans.spans.iter().enumerate() {
                if SpanKind::from_number(i64::from(span.kind)) != SpanKind::Server {
                    mapping.skip();
                    continue;
                }
                let outcome = span_view(span)
                    .and_then(|view| span_to_event(&view, &resource_attributes, &scope));
                mapping.record(
                    outcome,
                    || {
                        format!(
                            "resourceSpans[{resource_index}].scopeSpans[{scope_index}].spans[{span_index}]"
                        )
                    },
                    || {
                        one_item_export(
                            Signal::Traces,
                            resource,
                            scope_spans.scope.as_ref(),
                            span_json(span),
                        )
                    },
                );
            }
        }
    }
    mapping
}

/// Maps the log records of a log export. Only HTTP log records become events.
pub fn map_logs(
    request: &ExportLogsServiceRequest,
    future_tolerance: Option<FutureTolerance>,
) -> ExportMapping {
    let mut mapping = ExportMapping::new(future_tolerance);
    for (resource_index, resource_logs) in request.resource_logs.iter().enumerate() {
        let resource = resource_logs.resource.as_ref();
        let resource_attributes = resource.map_or_else(Vec::new, |r| key_values(&r.attributes));
        for (scope_index, scope_logs) in resource_logs.scope_logs.iter().enumerate() {
            let scope = scope_view(scope_logs.scope.as_ref());
            for (record_index, record) in scope_logs.log_records.iter().enumerate() {
                let outcome = log_record_view(record)
                    .and_then(|view| log_record_to_event(&view, &resource_attributes, &scope));
                mapping.record(
                    outcome,
                    || {
                        format!(
                            "resourceLogs[{resource_index}].scopeLogs[{scope_index}].logRecords[{record_index}]"
                        )
                    },
                    || {
                        one_item_export(
                            Signal::Logs,
                            resource,
                            scope_logs.scope.as_ref(),
                            log_record_json(record),
                        )
                    },
                );
            }
        }
    }
    mapping
}

fn span_view(span: &Span) -> Result<SpanView<'_>, String> {
    let (status_code, status_message) = match &span.status {
        Some(status) => (
            StatusCode::from_number(i64::from(status.code)),
            Cow::Borrowed(status.message.as_str()),
        ),
        None => (StatusCode::Unset, Cow::Borrowed("")),
    };
    Ok(SpanView {
        trace_id: id(&span.trace_id, "traceId")?,
        span_id: id(&span.span_id, "spanId")?,
        parent_span_id: id(&span.parent_span_id, "parentSpanId")?,
        trace_state: Cow::Borrowed(&span.trace_state),
        name: Cow::Borrowed(&span.name),
        kind: SpanKind::from_number(i64::from(span.kind)),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: key_values(&span.attributes),
        status_code,
        status_message,
    })
}

fn log_record_view(record: &LogRecord) -> Result<LogRecordView<'_>, String> {
    Ok(LogRecordView {
        time_unix_nano: record.time_unix_nano,
        observed_time_unix_nano: record.observed_time_unix_nano,
        severity_number: record.severity_number,
        severity_text: Cow::Borrowed(&record.severity_text),
        body: record.body.as_ref().map(any_value),
        attributes: key_values(&record.attributes),
        trace_id: id(&record.trace_id, "traceId")?,
        span_id: id(&record.span_id, "spanId")?,
        event_name: Cow::Borrowed(&record.event_name),
    })
}

fn scope_view(scope: Option<&InstrumentationScope>) -> Scope<'_> {
    match scope {
        Some(scope) => Scope {
            name: Cow::Borrowed(&scope.name),
            version: Cow::Borrowed(&scope.version),
            attributes: key_values(&scope.attributes),
        },
        None => Scope::default(),
    }
}

/// Reads a trace or span id of `N` bytes. Empty and all-zero ids are
/// `None`, because OTLP treats them as absent.
fn id<const N: usize>(bytes: &[u8], name: &str) -> Result<Option<[u8; N]>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let id: [u8; N] = bytes.try_into().map_err(|_| {
        format!(
            "invalid {name} {}: expected {N} bytes, found {}",
            hex::encode(bytes.get(..32).unwrap_or(bytes)),
            bytes.len()
        )
    })?;
    Ok(id.iter().any(|&byte| byte != 0).then_some(id))
}

fn key_values(attributes: &[common::KeyValue]) -> Vec<KeyValue<'_>> {
    attributes
        .iter()
        .map(|attribute| KeyValue {
            key: Cow::Borrowed(&attribute.key),
            value: attribute.value.as_ref().map_or(AnyValue::Empty, any_value),
        })
        .collect()
}

fn any_value(value: &common::AnyValue) -> AnyValue<'_> {
    match &value.value {
        Some(Value::StringValue(text)) => AnyValue::String(Cow::Borrowed(text)),
        Some(Value::BoolValue(flag)) => AnyValue::Bool(*flag),
        Some(Value::IntValue(number)) => AnyValue::Int(*number),
        Some(Value::DoubleValue(number)) => AnyValue::Double(*number),
        Some(Value::BytesValue(bytes)) => AnyValue::Bytes(Cow::Borrowed(bytes)),
        Some(Value::ArrayValue(array)) => {
            AnyValue::Array(array.values.iter().map(any_value).collect())
        }
        Some(Value::KvlistValue(list)) => AnyValue::KeyValueList(key_values(&list.values)),
        // A reference into the string table of a profile, which no trace or
        // log export has. The OTLP definition has receivers of other signals
        // treat it as absent.
        Some(Value::StringValueStrindex(_)) | None => AnyValue::Empty,
    }
}

/// Writes `{"resourceSpans":[{"resource":...,"scopeSpans":[{"scope":...,"spans":[item]}]}]}`,
/// or the `resourceLogs` form.
fn one_item_export(
    signal: Signal,
    resource: Option<&Resource>,
    scope: Option<&InstrumentationScope>,
    item: JsonValue,
) -> String {
    let (resource_key, scope_key, items_key) = match signal {
        Signal::Traces => ("resourceSpans", "scopeSpans", "spans"),
        Signal::Logs => ("resourceLogs", "scopeLogs", "logRecords"),
    };
    let resource = resource.map(|r| json!({ "attributes": attributes_json(&r.attributes) }));
    let scope = scope.map(|s| {
        json!({
            "name": s.name,
            "version": s.version,
            "attributes": attributes_json(&s.attributes),
        })
    });
    json!({
        resource_key: [{
            "resource": resource,
            scope_key: [{ "scope": scope, items_key: [item] }],
        }]
    })
    .to_string()
}

/// Writes a span in OTLP/JSON: hex ids, 64-bit integers as strings.
fn span_json(span: &Span) -> JsonValue {
    let mut object = json!({
        "traceId": hex::encode(&span.trace_id),
        "spanId": hex::encode(&span.span_id),
        "parentSpanId": hex::encode(&span.parent_span_id),
        "traceState": span.trace_state,
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": span.start_time_unix_nano.to_string(),
        "endTimeUnixNano": span.end_time_unix_nano.to_string(),
        "attributes": attributes_json(&span.attributes),
    });
    if let Some(status) = &span.status {
        object["status"] = json!({ "code": status.code, "message": status.message });
    }
    object
}

/// Writes a log record in OTLP/JSON.
fn log_record_json(record: &LogRecord) -> JsonValue {
    json!({
        "timeUnixNano": record.time_unix_nano.to_string(),
        "observedTimeUnixNano": record.observed_time_unix_nano.to_string(),
        "severityNumber": record.severity_number,
        "severityText": record.severity_text,
        "body": record.body.as_ref().map_or(json!({}), any_value_json),
        "attributes": attributes_json(&record.attributes),
        "traceId": hex::encode(&record.trace_id),
        "spanId": hex::encode(&record.span_id),
        "eventName": record.event_name,
    })
}

fn attributes_json(attributes: &[common::KeyValue]) -> JsonValue {
    attributes
        .iter()
        .map(|attribute| {
            json!({
                "key": attribute.key,
                "value": attribute.value.as_ref().map_or(json!({}), any_value_json),
            })
        })
        .collect()
}

fn any_value_json(value: &common::AnyValue) -> JsonValue {
    match &value.value {
        Some(Value::StringValue(text)) => json!({ "stringValue": text }),
        Some(Value::BoolValue(flag)) => json!({ "boolValue": flag }),
        Some(Value::IntValue(number)) => json!({ "intValue": number.to_string() }),
        // JSON has no NaN or infinity; protobuf's JSON mapping writes them as strings.
        Some(Value::DoubleValue(number)) if number.is_finite() => {
            json!({ "doubleValue": number })
        }
        Some(Value::DoubleValue(number)) => json!({ "doubleValue": special_double(*number) }),
        Some(Value::BytesValue(bytes)) => json!({ "bytesValue": STANDARD.encode(bytes) }),
        Some(Value::ArrayValue(array)) => {
            let values: Vec<JsonValue> = array.values.iter().map(any_value_json).collect();
            json!({ "arrayValue": { "values": values } })
        }
        Some(Value::KvlistValue(list)) => {
            json!({ "kvlistValue": { "values": attributes_json(&list.values) } })
        }
        Some(Value::StringValueStrindex(_)) | None => json!({}),
    }
}

fn special_double(number: f64) -> &'static str {
    if number.is_nan() {
        "NaN"
    } else if number > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

#[cfg(test)]
mod tests {
    use apitrail_ingest::formats::otlp::map_json_request;
    use opentelemetry_proto::tonic::common::v1::{AnyValue as ProtoValue, ArrayValue};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    use super::*;

    fn string(key: &str, value: &str) -> common::KeyValue {
        common::KeyValue {
            key: key.to_owned(),
            value: Some(ProtoValue {
                value: Some(Value::StringValue(value.to_owned())),
            }),
            ..Default::default()
        }
    }

    fn int(key: &str, value: i64) -> common::KeyValue {
        common::KeyValue {
            key: key.to_owned(),
            value: Some(ProtoValue {
                value: Some(Value::IntValue(value)),
            }),
            ..Default::default()
        }
    }

    fn server_span() -> Span {
        Span {
            trace_id: vec![0x5b; 16],
            span_id: vec![0xee; 8],
            name: "GET /api/orders/{id}".to_owned(),
            kind: 2,
            start_time_unix_nano: 1_720_000_000_000_000_000,
            end_time_unix_nano: 1_720_000_000_150_000_000,
            attributes: vec![
                string("http.request.method", "GET"),
                string("url.path", "/api/orders/7"),
                int("http.response.status_code", 200),
                string("http.route", "/api/orders/{id}"),
            ],
            status: Some(Status {
                message: String::new(),
                code: 1,
            }),
            ..Default::default()
        }
    }

    fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", "checkout")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "test-scope".to_owned(),
                        version: "1.0".to_owned(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn server_span_becomes_event() {
        let client = Span {
            kind: 3,
            ..server_span()
        };
        let internal = Span {
            kind: 1,
            ..server_span()
        };
        let mapping = map_traces(&traces(vec![server_span(), client, internal]), None);
        assert_eq!(mapping.items, 3, "items");
        assert_eq!(mapping.skipped, 2, "client and internal spans");
        assert_eq!(mapping.events.len(), 1, "events");
        let event = &mapping.events[0];
        assert_eq!(event.time, 1_720_000_000_000_000);
        assert_eq!(event.duration_ms, Some(150.0));
        assert_eq!(event.trace_id.as_deref(), Some(&*"5b".repeat(16)));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/api/orders/7"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.attribute("span_id"), Some(&*"ee".repeat(8)));
        assert_eq!(event.attribute("service.name"), Some("checkout"));
        assert_eq!(event.attribute("otel.scope.name"), Some("test-scope"));
        assert_eq!(event.attribute("otel.status_code"), Some("OK"));
    }

    #[test]
    fn protobuf_and_json_map_alike() {
        let request = traces(vec![server_span()]);
        let from_protobuf = map_traces(&request, None);
        let json = one_item_export(
            Signal::Traces,
            request.resource_spans[0].resource.as_ref(),
            request.resource_spans[0].scope_spans[0].scope.as_ref(),
            span_json(&server_span()),
        );
        let from_json = map_json_request(&json, Signal::Traces, None).unwrap();
        assert_eq!(from_json.events, from_protobuf.events);
    }

    #[test]
    fn invalid_spans_are_rejected_alone() {
        let short_id = Span {
            trace_id: vec![1, 2, 3],
            ..server_span()
        };
        let no_start = Span {
            start_time_unix_nano: 0,
            ..server_span()
        };
        let mapping = map_traces(&traces(vec![server_span(), short_id, no_start]), None);
        assert_eq!(mapping.events.len(), 1, "events");
        assert_eq!(mapping.rejected.len(), 2, "rejected");
        assert_eq!(
            mapping.rejected[0].message(),
            "resourceSpans[0].scopeSpans[0].spans[1]: invalid traceId 010203: expected 16 \
             bytes, found 3"
        );
        assert_eq!(
            mapping.rejected[1].message(),
            "resourceSpans[0].scopeSpans[0].spans[2]: missing startTimeUnixNano"
        );
        let again = map_json_request(&mapping.rejected[1].text, Signal::Traces, None).unwrap();
        assert_eq!(
            again.rejected[0].message(),
            "resourceSpans[0].scopeSpans[0].spans[0]: missing startTimeUnixNano",
            "the one-item export fails the same way: {}",
            mapping.rejected[1].text
        );
    }

    #[test]
    fn all_zero_ids_are_absent() {
        let span = Span {
            trace_id: vec![0; 16],
            ..server_span()
        };
        let mapping = map_traces(&traces(vec![span]), None);
        assert_eq!(mapping.events[0].trace_id, None);
    }

    #[test]
    fn log_records() {
        let http = LogRecord {
            time_unix_nano: 1_700_000_000_250_000_000,
            severity_text: "INFO".to_owned(),
            body: Some(ProtoValue {
                value: Some(Value::StringValue("GET /v1/items 200".to_owned())),
            }),
            attributes: vec![
                string("http.request.method", "GET"),
                string("url.path", "/v1/items"),
                int("http.response.status_code", 200),
                common::KeyValue {
                    key: "list".to_owned(),
                    value: Some(ProtoValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![
                                ProtoValue {
                                    value: Some(Value::StringValue("a".to_owned())),
                                },
                                ProtoValue { value: None },
                            ],
                        })),
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let plain = LogRecord {
            time_unix_nano: 1,
            ..Default::default()
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![http, plain],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let mapping = map_logs(&request, None);
        assert_eq!((mapping.items, mapping.skipped), (2, 1));
        let event = &mapping.events[0];
        assert_eq!(event.time, 1_700_000_000_250_000);
        assert_eq!(event.path.as_deref(), Some("/v1/items"));
        assert_eq!(event.attribute("body"), Some("GET /v1/items 200"));
        assert_eq!(event.attribute("severity_text"), Some("INFO"));
        assert_eq!(
            event.attribute("list"),
            Some(r#"["a",null]"#),
            "a list that is not all strings is written as JSON"
        );
    }

    #[test]
    fn special_doubles_are_strings() {
        let value = ProtoValue {
            value: Some(Value::DoubleValue(f64::NAN)),
        };
        assert_eq!(any_value_json(&value), json!({ "doubleValue": "NaN" }));
        let value = ProtoValue {
            value: Some(Value::DoubleValue(f64::NEG_INFINITY)),
        };
        assert_eq!(
            any_value_json(&value),
            json!({ "doubleValue": "-Infinity" })
        );
    }
}
