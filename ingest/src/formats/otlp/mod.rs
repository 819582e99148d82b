//! OpenTelemetry HTTP server spans and HTTP log records (`otlp`), in OTLP/JSON.
//!
//! # Records
//!
//! A record is one of:
//!
//! - an `ExportTraceServiceRequest` (`{"resourceSpans": [...]}`), as the
//!   collector's file exporter and OTLP/HTTP JSON clients write it, with
//!   `scopeSpans` or the older `instrumentationLibrarySpans`;
//! - a bare `ResourceSpans` object (`{"resource": ..., "scopeSpans": [...]}`);
//! - a line of the OpenTelemetry Java agent's `logging-otlp` exporter, where a
//!   log prefix (`[otel.javaagent ...] ... OtlpJsonLoggingSpanExporter - `)
//!   comes before a `ResourceSpans` object;
//! - an `ExportLogsServiceRequest` (`{"resourceLogs": [...]}`) or a bare
//!   `ResourceLogs` object, whose log records describe HTTP requests, such
//!   as access-log lines that a collector parsed into attributes.
//!
//! One record gives the events of all its HTTP server spans or HTTP log
//! records. Only spans of kind SERVER (`2` or `"SPAN_KIND_SERVER"`) that have
//! at least one `http.*` or `url.*` attribute become events. Client and
//! internal spans repeat a request that the server span already describes.
//! A server span without HTTP attributes served something else (gRPC) or
//! names no request. Likewise only log records with an `http.*` or
//! `url.*` attribute become events. A record without any is skipped with the
//! tag `no_http_server_spans` or `no_http_log_records`, and a metrics export
//! with `otlp_metrics`. One invalid span or log record rejects the whole
//! record, with a reason that names its position
//! (`resourceSpans[0].scopeSpans[1].spans[2]`). The OTLP receivers of the
//! server instead map each item on its own ([`map_json_request`],
//! [`ExportMapping`]) and reject only the invalid ones.
//!
//! # Mapping
//!
//! Attributes follow the HTTP semantic conventions, stable names (1.23 and
//! later) first, then the older names of version 1.20 and earlier:
//!
//! | attributes | column |
//! |---|---|
//! | `startTimeUnixNano` of a span | `time` (the START of the request) |
//! | `endTimeUnixNano` minus `startTimeUnixNano` | `duration_ms` |
//! | `timeUnixNano`, else `observedTimeUnixNano`, of a log record | `time` (when the record was written, usually the END) |
//! | `traceId` | `trace_id` (lowercase hex) |
//! | `http.request.method` (`http.request.method_original` when it is `_OTHER`), `http.method` | `method` |
//! | `url.path` and `url.query`, else `http.target`, else `url.full` or `http.url` | `path` and `query` |
//! | `url.scheme`, `http.scheme`, else the full URL's | `scheme` |
//! | `server.address`, `http.host`, `net.host.name`, else the full URL's | `host` |
//! | `http.response.status_code`, `http.status_code` | `status` |
//! | `network.protocol.version`, `http.flavor`, `net.protocol.version` (`1.1`) | `http_version` (`HTTP/1.1`) |
//! | `user_agent.original`, `http.user_agent` | `user_agent` |
//! | `network.peer.address`, `net.sock.peer.addr`, `net.peer.ip`, else `client.address`, `http.client_ip` | `client_ip` |
//! | the port that goes with that address (`network.peer.port`, ..., `client.port`) | `client_port` |
//! | `http.request.body.size`, `http.request_content_length` | `request_bytes` |
//! | `http.response.body.size`, `http.response_content_length` | `response_bytes` |
//! | `http.request.header.x-forwarded-for` | `forwarded_for` |
//! | `http.request.header.referer` | `referer` |
//! | `enduser.id` | `consumer` (kind `gateway`) |
//!
//! `client_ip` is the peer that connected to the server; when both are
//! logged, `client.address` (the client that a proxy named) stays an
//! attribute. Every attribute that filled no column stays an attribute under
//! its own name, `http.route` included, with lists of strings (request
//! headers) joined. `http.request.header.authorization` and
//! `http.request.header.cookie` are hashed by the redactor, and the identity
//! rules read `http.request.header.x-api-key`. The span's id, parent id,
//! name and trace state go to `span_id`, `parent_span_id`, `span_name` and
//! `trace_state`, its status to `otel.status_code` and
//! `otel.status_description`, and its scope to `otel.scope.name` and
//! `otel.scope.version`. Scope and resource attributes (`service.name`, ...)
//! follow, except where the span has an attribute of the same key. Log
//! records add `severity_text`, `event_name` and `body`.
//!
//! Trace and span ids are accepted as hex in either case, as OTLP/JSON
//! specifies, and as base64, as exporters that use protobuf's generic JSON
//! mapping write them. All-zero ids count as absent.
//!
//! # Other encodings
//!
//! The mapping works on the encoding-neutral types of [`model`]:
//! [`span_to_event`] and [`log_record_to_event`] take a [`SpanView`] or
//! [`LogRecordView`] with its resource attributes and [`Scope`]. The JSON
//! decoder here is one producer of those types. The server's OTLP/gRPC and
//! OTLP/HTTP-protobuf receivers are another: they build the views from the
//! decoded protobuf messages, borrowing their strings, call the same
//! functions and collect the outcomes in an [`ExportMapping`].

pub mod model;
pub mod semconv;

mod export;
mod from_json;

pub use export::{ExportMapping, RejectedItem, Signal};
pub use from_json::map_json_request;
pub use model::{AnyValue, KeyValue, LogRecordView, Scope, SpanKind, SpanView, StatusCode};
pub use semconv::{has_http_attribute, log_record_to_event, span_to_event};

use crate::parse::{LineOutcome, ParseContext};

/// Parses one OTLP/JSON record.
pub fn parse_line(record: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    from_json::parse_record(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::formats::capture::driver;
    use crate::formats::otlp::from_json::parse_record;
    use crate::formats::test_support::expect_rejection;

    fn events(record: &str) -> Vec<Event> {
        match parse_record(record) {
            LineOutcome::Events(events) => events,
            other => panic!("expected events for {record:?}, got {other:?}"),
        }
    }

    fn rejection(record: &str) -> String {
        expect_rejection(record, parse_record(record))
    }

    fn skip_tag(record: &str) -> &'static str {
        match parse_record(record) {
            LineOutcome::Skipped(tag) => tag,
            other => panic!("expected a skip for {record:?}, got {other:?}"),
        }
    }

    const SERVER_SPAN: &str = r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"GET /api/orders","kind":2,"startTimeUnixNano":"1720000000000000000","endTimeUnixNano":1720000000150000000,"attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":"url.path","value":{"stringValue":"/api/orders"}},{"key":"http.response.status_code","value":{"intValue":"200"}},{"key":"http.route","value":{"stringValue":"/api/orders"}}],"status":{"code":1}}"#;

    fn export(spans: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"frontend"}}}}]}},"scopeSpans":[{{"scope":{{"name":"test-scope","version":"1.0"}},"spans":[{spans}]}}]}}]}}"#
        )
    }

    #[test]
    fn trace_export() {
        let events = events(&export(SERVER_SPAN));
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.time, 1_720_000_000_000_000);
        assert_eq!(event.duration_ms, Some(150.0));
        assert_eq!(
            event.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/api/orders"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.attribute("span_id"), Some("eee19b7ec3c1b174"));
        assert_eq!(event.attribute("otel.status_code"), Some("OK"));
        assert_eq!(event.attribute("otel.scope.name"), Some("test-scope"));
        assert_eq!(event.attribute("service.name"), Some("frontend"));
    }

    #[test]
    fn driver_hashes_credentials() {
        let span = SERVER_SPAN.replace(
            r#"{"key":"http.route""#,
            r#"{"key":"http.request.header.authorization","value":{"arrayValue":{"values":[{"stringValue":"Bearer t0ken-value-1"}]}}},{"key":"http.route""#,
        );
        let rows = driver::stored_attributes(crate::format::Format::Otlp, &export(&span));
        assert_eq!(
            driver::value(&rows[0], "http.request.header.authorization"),
            Some(format!("Bearer {}", driver::redactor().hash("t0ken-value-1")).as_str())
        );
    }

    #[test]
    fn only_http_server_spans() {
        let client = SERVER_SPAN.replace(r#""kind":2"#, r#""kind":3"#);
        let internal = SERVER_SPAN.replace(r#""kind":2"#, r#""kind":"SPAN_KIND_INTERNAL""#);
        let named_server = SERVER_SPAN.replace(r#""kind":2"#, r#""kind":"SPAN_KIND_SERVER""#);
        let record = export(&[client.as_str(), &internal, &named_server, SERVER_SPAN].join(","));
        assert_eq!(events(&record).len(), 2);

        assert_eq!(skip_tag(&export(&client)), "no_http_server_spans");
        let bare_server = r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"I'm a server span","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","kind":2,"attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}]}"#;
        assert_eq!(skip_tag(&export(bare_server)), "no_http_server_spans");
    }

    #[test]
    fn pretty_printed_export() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&export(SERVER_SPAN)).unwrap(),
        )
        .unwrap();
        assert_eq!(events(&pretty).len(), 1);
    }

    #[test]
    fn bare_resource_spans_and_java_agent_line() {
        let bare = format!(
            r#"{{"resource":{{"attributes":[]}},"scopeSpans":[{{"scope":{{"name":"io.opentelemetry.tomcat-10.0"}},"spans":[{SERVER_SPAN}]}}],"schemaUrl":"https://opentelemetry.io/schemas/1.19.0"}}"#
        );
        assert_eq!(events(&bare).len(), 1);
        let line = format!(
            "[otel.javaagent 2023-07-03 16:29:47:222 +0530] [BatchSpanProcessor_WorkerThread-1] INFO io.opentelemetry.exporter.logging.otlp.OtlpJsonLoggingSpanExporter - {bare}"
        );
        let from_line = events(&line);
        assert_eq!(from_line.len(), 1);
        assert_eq!(
            from_line[0].attribute("otel.scope.name"),
            Some("io.opentelemetry.tomcat-10.0")
        );
    }

    #[test]
    fn older_and_snake_case_field_names() {
        let record = r#"{"resource_spans":[{"instrumentation_library_spans":[{"instrumentation_library":{"name":"old-lib"},"spans":[{"trace_id":"W47/95gDgQPSabYzgT/GDA==","span_id":"7uGbfsPBsXQ=","kind":"SPAN_KIND_SERVER","start_time_unix_nano":1720000000000000000,"attributes":[{"key":"http.method","value":{"string_value":"POST"}},{"key":"http.target","value":{"string_value":"/v1/x?y=1"}},{"key":"http.status_code","value":{"int_value":500}}],"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#;
        let events = events(record);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(
            event.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c"),
            "base64 ids decode to the same hex"
        );
        assert_eq!(event.attribute("span_id"), Some("eee19b7ec3c1b174"));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.path.as_deref(), Some("/v1/x"));
        assert_eq!(event.query.as_deref(), Some("y=1"));
        assert_eq!(event.status, Some(500));
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.attribute("otel.status_code"), Some("ERROR"));
        assert_eq!(event.attribute("otel.scope.name"), Some("old-lib"));
    }

    #[test]
    fn attribute_value_kinds() {
        let span = r#"{"kind":2,"startTimeUnixNano":"1","attributes":[
            {"key":"http.request.method","value":{"stringValue":"GET"}},
            {"key":"b","value":{"boolValue":true}},
            {"key":"d","value":{"doubleValue":1.5}},
            {"key":"n","value":{"doubleValue":"NaN"}},
            {"key":"raw","value":{"bytesValue":"AP8="}},
            {"key":"list","value":{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}},
            {"key":"map","value":{"kvlistValue":{"values":[{"key":"k","value":{"intValue":"3"}}]}}},
            {"key":"empty","value":{}}]}"#;
        let events = events(&export(span));
        let event = &events[0];
        assert_eq!(event.time, 0);
        assert_eq!(event.attribute("b"), Some("true"));
        assert_eq!(event.attribute("d"), Some("1.5"));
        assert_eq!(event.attribute("n"), Some("NaN"));
        assert_eq!(event.attribute("raw"), Some("AP8="));
        assert_eq!(event.attribute("list"), Some("a, b"));
        assert_eq!(event.attribute("map"), Some(r#"{"k":3}"#));
        assert_eq!(event.attribute("empty"), None);
    }

    #[test]
    fn log_export() {
        let record = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"edge"}}]},"scopeLogs":[{"scope":{},"logRecords":[
            {"timeUnixNano":"1700000000250000000","severityText":"INFO","body":{"stringValue":"GET /v1/items 200"},"attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":"url.path","value":{"stringValue":"/v1/items"}},{"key":"http.response.status_code","value":{"intValue":200}}],"traceId":"","spanId":""},
            {"timeUnixNano":"1700000000260000000","body":{"stringValue":"cache warmed"}}]}]}]}"#;
        let events = events(record);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.time, 1_700_000_000_250_000);
        assert_eq!(event.path.as_deref(), Some("/v1/items"));
        assert_eq!(event.trace_id, None);
        assert_eq!(event.attribute("body"), Some("GET /v1/items 200"));
        assert_eq!(event.attribute("service.name"), Some("edge"));

        let no_http = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","body":{"stringValue":"x"}}]}]}]}"#;
        assert_eq!(skip_tag(no_http), "no_http_log_records");
    }

    #[test]
    fn metrics_are_skipped() {
        assert_eq!(
            skip_tag(r#"{"resourceMetrics":[{"scopeMetrics":[]}]}"#),
            "otlp_metrics"
        );
    }

    #[test]
    fn invalid_spans_reject_the_record() {
        let bad_id = SERVER_SPAN.replace("5B8EFFF798038103D269B633813FC60C", "xyz");
        assert_eq!(
            rejection(&export(&[SERVER_SPAN, bad_id.as_str()].join(","))),
            r#"resourceSpans[0].scopeSpans[0].spans[1]: invalid traceId "xyz": expected 32 hex digits or the base64 of 16 bytes"#
        );
        let bad_time = SERVER_SPAN.replace(r#""1720000000000000000""#, r#""soon""#);
        assert_eq!(
            rejection(&export(&bad_time)),
            r#"resourceSpans[0].scopeSpans[0].spans[0]: invalid startTimeUnixNano "soon""#
        );
        let no_time = SERVER_SPAN.replace(r#""startTimeUnixNano":"1720000000000000000","#, "");
        assert_eq!(
            rejection(&export(&no_time)),
            "resourceSpans[0].scopeSpans[0].spans[0]: missing startTimeUnixNano"
        );
        let bad_int = SERVER_SPAN.replace(r#"{"intValue":"200"}"#, r#"{"intValue":"two"}"#);
        assert_eq!(
            rejection(&export(&bad_int)),
            r#"resourceSpans[0].scopeSpans[0].spans[0]: attribute http.response.status_code: invalid intValue "two""#
        );
    }

    #[test]
    fn request_rejects_items_one_by_one() {
        let bad_id = SERVER_SPAN.replace("5B8EFFF798038103D269B633813FC60C", "xyz");
        let client = SERVER_SPAN.replace(r#""kind":2"#, r#""kind":3"#);
        let body = export(&[SERVER_SPAN, bad_id.as_str(), &client].join(","));
        let mapping = map_json_request(&body, Signal::Traces, None).unwrap();
        assert_eq!(mapping.items, 3, "items");
        assert_eq!(mapping.events.len(), 1, "events");
        assert_eq!(mapping.skipped, 1, "skipped");
        assert_eq!(mapping.rejected.len(), 1, "rejected");
        let rejected = &mapping.rejected[0];
        assert_eq!(
            rejected.message(),
            r#"resourceSpans[0].scopeSpans[0].spans[1]: invalid traceId "xyz": expected 32 hex digits or the base64 of 16 bytes"#
        );
        assert_eq!(
            rejection(&rejected.text),
            r#"resourceSpans[0].scopeSpans[0].spans[0]: invalid traceId "xyz": expected 32 hex digits or the base64 of 16 bytes"#,
            "the rejected item's text is a one-item export that keeps the span"
        );
        assert!(
            rejected.text.contains(r#""service.name""#),
            "the one-item export keeps the resource: {}",
            rejected.text
        );
    }

    #[test]
    fn request_resource_errors_reject_http_spans() {
        let client = SERVER_SPAN.replace(r#""kind":2"#, r#""kind":3"#);
        let body = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"n","value":{{"intValue":"many"}}}}]}},"scopeSpans":[{{"spans":[{SERVER_SPAN},{client}]}}]}}]}}"#
        );
        let mapping = map_json_request(&body, Signal::Traces, None).unwrap();
        assert_eq!((mapping.skipped, mapping.rejected.len()), (1, 1));
        assert_eq!(
            mapping.rejected[0].message(),
            r#"resourceSpans[0].scopeSpans[0].spans[0]: resource: attribute n: invalid intValue "many""#
        );
    }

    #[test]
    fn request_future_events_are_rejected() {
        let tolerance = crate::parse::FutureTolerance::new(
            1_720_000_000_000_000 - 1,
            std::time::Duration::ZERO,
        );
        let mapping =
            map_json_request(&export(SERVER_SPAN), Signal::Traces, Some(tolerance)).unwrap();
        assert_eq!(mapping.events.len(), 0, "events");
        assert_eq!(mapping.rejected.len(), 1, "rejected");
        assert!(
            mapping.rejected[0].reason.contains("is later than"),
            "{:?}",
            mapping.rejected[0]
        );
    }

    #[test]
    fn request_empty_and_wrong_signal() {
        let empty = map_json_request("{}", Signal::Logs, None).unwrap();
        assert_eq!((empty.items, empty.events.len()), (0, 0));
        let no_spans = map_json_request(r#"{"resourceSpans":[]}"#, Signal::Traces, None).unwrap();
        assert_eq!(no_spans.items, 0);
        assert_eq!(
            map_json_request(&export(SERVER_SPAN), Signal::Logs, None).unwrap_err(),
            "the body is an export of resourceSpans, not of log records; post it to the /v1/traces path"
        );
        assert!(
            map_json_request("[1]", Signal::Traces, None)
                .unwrap_err()
                .starts_with("expected a JSON object")
        );
        assert!(
            map_json_request("{", Signal::Traces, None)
                .unwrap_err()
                .starts_with("invalid JSON: ")
        );
        assert_eq!(
            map_json_request(r#"{"resourceLogs":{}}"#, Signal::Logs, None).unwrap_err(),
            "resourceLogs should be an array, found an object"
        );
    }

    #[test]
    fn request_log_records() {
        let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"timeUnixNano":"1700000000250000000","attributes":[{"key":"url.path","value":{"stringValue":"/a"}}]},
            {"timeUnixNano":"1","body":{"stringValue":"no http"}},
            {"attributes":[{"key":"url.path","value":{"stringValue":"/b"}}]}]}]}]}"#;
        let mapping = map_json_request(body, Signal::Logs, None).unwrap();
        assert_eq!(mapping.items, 3, "items");
        assert_eq!(mapping.events.len(), 1, "events");
        assert_eq!(mapping.skipped, 1, "skipped");
        assert_eq!(
            mapping.rejected[0].message(),
            "resourceLogs[0].scopeLogs[0].logRecords[2]: missing timeUnixNano and observedTimeUnixNano"
        );
    }

    #[test]
    fn all_zero_ids_are_absent() {
        let span = SERVER_SPAN.replace("5B8EFFF798038103D269B633813FC60C", &"0".repeat(32));
        let events = events(&export(&span));
        assert_eq!(events[0].trace_id, None);
    }

    #[test]
    fn rejects_other_records() {
        for record in [
            r#"{"log":{"entries":[]}}"#,
            r#"{"ts":1.5,"uid":"C1","method":"GET"}"#,
            r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
            r#"{"scopeSpansCount":1}"#,
        ] {
            assert_eq!(rejection(record), from_json_not_otlp(), "{record}");
        }
        assert!(rejection(r#"{"resourceSpans":[{"#).starts_with("invalid JSON: "));
        assert_eq!(
            rejection(r#"{"resourceSpans":{}}"#),
            "resourceSpans should be an array, found an object"
        );
    }

    fn from_json_not_otlp() -> String {
        "not OTLP JSON: expected an object with resourceSpans or resourceLogs, or a \
         ResourceSpans or ResourceLogs object"
            .to_string()
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in [
            "",
            "OtlpJsonLogging - {",
            "x OtlpJsonLogging",
            r#"{"resourceSpans":[1,{"scopeSpans":[null]},{"scopeSpans":[{"spans":[{"kind":2,"attributes":[1,{"key":1,"value":[]}]}]}]}]}"#,
            r#"{"scopeLogs":[{"logRecords":[{"body":{"arrayValue":{"values":[1,{"kvlistValue":{"values":[{}]}}]}}}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"2","traceId":"5B8EFFF798038103D269B633813FC6ZZ","startTimeUnixNano":-1}]}]}]}"#,
        ] {
            let _ = parse_record(sample);
        }
    }
}
