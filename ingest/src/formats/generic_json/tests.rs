use arrow::array::{Array, AsArray};
use proptest::prelude::*;

use super::*;
use crate::formats::test_support::{expect_event, expect_rejection};
use crate::parse::{FutureTolerance, parse_chunk};
use crate::redact::Redactor;

fn mapping(toml: &str) -> JsonMapping {
    toml::from_str(toml).unwrap_or_else(|error| panic!("invalid test mapping: {error}"))
}

fn parse_with(mapping: &JsonMapping, sensor: Option<&str>, record: &str) -> LineOutcome {
    let redactor = Redactor::new(b"k".to_vec(), 1);
    let ctx = ParseContext {
        sensor,
        json_mapping: Some(mapping),
        ..ParseContext::new(&redactor)
    };
    parse_line(record, &ctx)
}

fn event(mapping: &JsonMapping, record: &str) -> Event {
    expect_event(record, parse_with(mapping, None, record))
}

fn rejection(mapping: &JsonMapping, record: &str) -> String {
    expect_rejection(record, parse_with(mapping, None, record))
}

fn attributes(event: &Event) -> Vec<(&str, &str)> {
    event
        .attributes
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

/// Builds a mapping with only an RFC 3339 `time` in field `ts`, plus `extra` lines.
fn with_time(extra: &str) -> JsonMapping {
    mapping(&format!(
        "name = \"test\"\n[fields]\ntime = \"ts\"\n{extra}"
    ))
}

/// 2024-03-05T10:15:30Z in microseconds.
const T: i64 = 1_709_633_730_000_000;

#[test]
fn without_mapping_every_record_is_rejected() {
    let redactor = Redactor::new(b"k".to_vec(), 1);
    let ctx = ParseContext::new(&redactor);
    let record = r#"{"ts":"2024-03-05T10:15:30Z"}"#;
    assert_eq!(
        expect_rejection(record, parse_line(record, &ctx)),
        "the json format needs a field mapping: name one of the [[ingest.json_mappings]] of the server configuration with mapping=NAME"
    );
}

#[test]
fn only_time_is_required() {
    let event = event(&with_time(""), r#"{"ts":"2024-03-05T10:15:30Z"}"#);
    assert_eq!(event.time, T);
    assert_eq!(event.source, "json");
    assert_eq!(event.method, None);
    assert_eq!(event.status, None);
    assert!(event.attributes.is_empty());
}

#[test]
fn missing_or_empty_time_rejects() {
    let mapping =
        mapping("name = \"gw\"\n[fields]\ntime = [\"ts\", \"timestamp\"]\nstatus = \"status\"");
    for record in [
        r#"{"status":200}"#,
        r#"{"ts":null,"status":200}"#,
        r#"{"ts":"-","timestamp":""}"#,
    ] {
        assert_eq!(
            rejection(&mapping, record),
            "missing the request time: the record has no value at ts or timestamp (json mapping \"gw\")",
            "{record}"
        );
    }
}

#[test]
fn nested_paths_and_keys_with_dots() {
    let mapping = with_time(
        r#"
        method = "http.request.method"
        client_ip = "id.orig_h"
        client_port = "id.orig_p"
        host = 'kubernetes.labels["app.kubernetes.io/name"]'
        user_agent = "a.b.c"
        "#,
    );
    let event = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","http":{"request":{"method":"PUT"}},"id.orig_h":"10.0.0.1","id.orig_p":4242,"kubernetes":{"labels":{"app.kubernetes.io/name":"orders"}},"a.b":{"c":"ua/1"}}"#,
    );
    assert_eq!(event.method.as_deref(), Some("PUT"));
    assert_eq!(event.client_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(event.client_port, Some(4242));
    assert_eq!(event.host.as_deref(), Some("orders"));
    assert_eq!(event.user_agent.as_deref(), Some("ua/1"));
    assert!(event.attributes.is_empty(), "{:?}", event.attributes);
}

#[test]
fn array_index_paths() {
    let mapping = with_time(
        r#"
        forwarded_for = "headers.x-forwarded-for[0]"
        status = "tries[1].status"
        upstream = "tries[1].target.host"
        user_agent = "headers.user-agent"
        referer = "matrix[0][1]"
        "#,
    );
    let event = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","headers":{"x-forwarded-for":["198.51.100.1, 10.0.0.2","10.0.0.3"],"user-agent":["curl/8","extra"]},"tries":[{"status":502},{"status":200,"target":{"host":"10.1.1.1:80"}}],"matrix":[["a","b"]]}"#,
    );
    assert_eq!(
        event.forwarded_for.as_deref(),
        Some("198.51.100.1, 10.0.0.2")
    );
    assert_eq!(event.status, Some(200));
    assert_eq!(event.upstream.as_deref(), Some("10.1.1.1:80"));
    assert_eq!(
        event.user_agent.as_deref(),
        Some("curl/8, extra"),
        "an array of strings is joined"
    );
    assert_eq!(event.referer.as_deref(), Some("b"));
    assert!(event.attributes.is_empty(), "{:?}", event.attributes);
}

#[test]
fn path_to_an_object_finds_nothing() {
    let mapping = with_time("response_bytes = \"out\"");
    let event = event(&mapping, r#"{"ts":"2024-03-05T10:15:30Z","out":{"n":1}}"#);
    assert_eq!(event.response_bytes, None);
    assert_eq!(attributes(&event), [("out.n", "1")]);
}

#[test]
fn index_out_of_range_is_missing() {
    let mapping = with_time("status = \"codes[3]\"");
    let event = event(&mapping, r#"{"ts":"2024-03-05T10:15:30Z","codes":[200]}"#);
    assert_eq!(event.status, None);
}

#[test]
fn first_present_path_wins() {
    let mapping = with_time("request_id = [\"requestId\", \"extendedRequestId\", \"id\"]");
    let cases = [
        (r#""requestId":"r1","extendedRequestId":"r2""#, "r1"),
        (r#""extendedRequestId":"r2","requestId":"r1""#, "r1"),
        (r#""requestId":"-","extendedRequestId":"r2""#, "r2"),
        (r#""requestId":null,"id":7"#, "7"),
    ];
    for (members, expected) in cases {
        let record = format!(r#"{{"ts":"2024-03-05T10:15:30Z",{members}}}"#);
        let event = event(&mapping, &record);
        assert_eq!(event.request_id.as_deref(), Some(expected), "{record}");
        assert!(
            event.attributes.is_empty(),
            "every listed path is consumed: {:?}",
            event.attributes
        );
    }
}

#[test]
fn strings_and_numbers() {
    let mapping = with_time(
        r#"
        status = "status"
        request_bytes = "in"
        response_bytes = "out"
        upstream_status = "up"
        request_id = "id"
        duration_ms = "took"
        "#,
    );
    let as_numbers = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","status":200,"in":12,"out":512,"up":200.0,"id":12345,"took":4.5}"#,
    );
    let as_strings = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","status":"200","in":"12","out":" 512 ","up":"200.0","id":"12345","took":"4.5"}"#,
    );
    for event in [as_numbers, as_strings] {
        assert_eq!(event.status, Some(200));
        assert_eq!(event.request_bytes, Some(12));
        assert_eq!(event.response_bytes, Some(512));
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(event.request_id.as_deref(), Some("12345"));
        assert_eq!(event.duration_ms, Some(4.5));
    }
}

#[test]
fn negative_sizes_and_durations_are_unknown() {
    let mapping = with_time("response_bytes = \"out\"\nduration_ms = \"took\"");
    let event = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","out":-1,"took":"-1"}"#,
    );
    assert_eq!(event.response_bytes, None);
    assert_eq!(event.duration_ms, None);
}

#[test]
fn invalid_values_reject_with_field_and_value() {
    let mapping = with_time(
        r#"
        status = "status"
        client_port = "port"
        url = "url"
        duration_ms = { path = "took", unit = "s" }
        response_bytes = "out"
        "#,
    );
    let cases = [
        (
            r#""status":"OK""#,
            r#"invalid number "OK" in field status (column status)"#,
        ),
        (
            r#""status":true"#,
            "expected a number in field status (column status), found a boolean",
        ),
        (
            r#""status":2.5"#,
            r#"invalid number "2.5" in field status (column status)"#,
        ),
        (
            r#""status":3000000000"#,
            "number 3000000000 in field status is out of range for column status",
        ),
        (
            r#""port":70000"#,
            "invalid port 70000 in field port: ports range from 0 to 65535",
        ),
        (
            r#""url":"orders/42""#,
            r#"invalid URL "orders/42" in field url: expected an absolute URL such as https://api.example.com/v1/x or a path starting with /"#,
        ),
        (
            r#""took":"fast""#,
            r#"invalid duration "fast" in field took: expected a number of seconds"#,
        ),
        (
            r#""out":[1]"#,
            "expected a number in field out (column response_bytes), found an array",
        ),
    ];
    for (members, expected) in cases {
        let record = format!(r#"{{"ts":"2024-03-05T10:15:30Z",{members}}}"#);
        assert_eq!(rejection(&mapping, &record), expected, "{record}");
    }
}

#[test]
fn epoch_in_wrong_unit_is_rejected() {
    let mapping =
        mapping("name = \"m\"\n[fields]\ntime = { path = \"ts\", format = \"epoch_ms\" }");
    let reason = rejection(&mapping, r#"{"ts":1709633730}"#);
    assert!(
        reason.contains("in field ts: as epoch_ms it is 1970-01-20T18:53:53.730Z")
            && reason.contains("looks like epoch_s (seconds), not milliseconds"),
        "{reason}"
    );
    assert_eq!(event(&mapping, r#"{"ts":"1709633730000"}"#).time, T);
}

#[test]
fn url_is_split() {
    let mapping = with_time("url = \"url\"");
    let event_of = |url: &str| {
        event(
            &mapping,
            &format!(r#"{{"ts":"2024-03-05T10:15:30Z","url":"{url}"}}"#),
        )
    };

    let absolute = event_of("https://user:pw@api.example.com:8443/v1/orders?id=7#token=x");
    assert_eq!(absolute.scheme.as_deref(), Some("https"));
    assert_eq!(absolute.host.as_deref(), Some("api.example.com"));
    assert_eq!(absolute.path.as_deref(), Some("/v1/orders"));
    assert_eq!(
        absolute.query.as_deref(),
        Some("id=7"),
        "the fragment is dropped"
    );
    assert_eq!(attributes(&absolute), [("port", "8443")]);

    let origin = event_of("/v1/orders/42?expand=items");
    assert_eq!(origin.scheme, None);
    assert_eq!(origin.host, None);
    assert_eq!(origin.path.as_deref(), Some("/v1/orders/42"));
    assert_eq!(origin.query.as_deref(), Some("expand=items"));

    let bare_host = event_of("http://api.example.com");
    assert_eq!(bare_host.path.as_deref(), Some("/"));
    assert_eq!(bare_host.query, None);
}

#[test]
fn column_entries_replace_url_parts() {
    let mapping = with_time("url = \"url\"\nhost = \"vhost\"\nquery = \"args\"");
    let event = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","url":"http://10.0.0.5/a?x=1","vhost":"api.example.com","args":"?y=2"}"#,
    );
    assert_eq!(event.host.as_deref(), Some("api.example.com"));
    assert_eq!(event.path.as_deref(), Some("/a"));
    assert_eq!(
        event.query.as_deref(),
        Some("y=2"),
        "a leading ? is removed"
    );
}

#[test]
fn request_line_is_split() {
    let mapping = with_time("request = \"req\"");
    let event_of = |request: &str| {
        event(
            &mapping,
            &format!(r#"{{"ts":"2024-03-05T10:15:30Z","req":"{request}"}}"#),
        )
    };

    let valid = event_of("POST /v1/orders?dry=1 HTTP/1.1");
    assert_eq!(valid.method.as_deref(), Some("POST"));
    assert_eq!(valid.path.as_deref(), Some("/v1/orders"));
    assert_eq!(valid.query.as_deref(), Some("dry=1"));
    assert_eq!(valid.http_version.as_deref(), Some("HTTP/1.1"));
    assert!(!valid.malformed);

    let proxy = event_of("GET http://example.com:8080/x HTTP/1.0");
    assert_eq!(proxy.host.as_deref(), Some("example.com"));
    assert_eq!(attributes(&proxy), [("port", "8080")]);

    let junk = event_of("\\u0016\\u0003\\u0001");
    assert!(junk.malformed);
    assert_eq!(junk.method, None);
    assert_eq!(attributes(&junk), [("request", "\u{16}\u{3}\u{1}")]);
}

#[test]
fn path_with_query_splits_unless_query_is_mapped() {
    let path_only = with_time("path = \"uri\"");
    let event_a = event(
        &path_only,
        r#"{"ts":"2024-03-05T10:15:30Z","uri":"/search?q=a%20b"}"#,
    );
    assert_eq!(event_a.path.as_deref(), Some("/search"));
    assert_eq!(event_a.query.as_deref(), Some("q=a%20b"));

    let both = with_time("path = \"uri\"\nquery = \"args\"");
    let event_b = event(
        &both,
        r#"{"ts":"2024-03-05T10:15:30Z","uri":"/search?q=a","args":"q=b"}"#,
    );
    assert_eq!(event_b.path.as_deref(), Some("/search"));
    assert_eq!(event_b.query.as_deref(), Some("q=b"));
}

#[test]
fn http_version_gets_prefix_when_bare() {
    let mapping = with_time("http_version = \"v\"");
    let cases = [
        (r#""1.1""#, "HTTP/1.1"),
        ("2", "HTTP/2"),
        (r#""HTTP/2.0""#, "HTTP/2.0"),
        (r#""h2""#, "h2"),
    ];
    for (value, expected) in cases {
        let record = format!(r#"{{"ts":"2024-03-05T10:15:30Z","v":{value}}}"#);
        assert_eq!(
            event(&mapping, &record).http_version.as_deref(),
            Some(expected),
            "{record}"
        );
    }
}

#[test]
fn client_address_forms() {
    let mapping = with_time("client_ip = \"ip\"");
    let event_of = |ip: &str| {
        event(
            &mapping,
            &format!(r#"{{"ts":"2024-03-05T10:15:30Z","ip":"{ip}"}}"#),
        )
    };
    let with_port = event_of("203.0.113.9:5123");
    assert_eq!(with_port.client_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(with_port.client_port, Some(5123));
    assert_eq!(
        event_of("2001:0db8::0001").client_ip.as_deref(),
        Some("2001:db8::1")
    );
    let name = event_of("lb.internal");
    assert_eq!(name.client_ip, None);
    assert_eq!(attributes(&name), [("remote_host", "lb.internal")]);
}

#[test]
fn consumer_kind_and_auth_scheme() {
    let mapping =
        with_time("consumer = \"user\"\nconsumer_kind = \"kind\"\nauth_scheme = \"auth\"");
    let gateway = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","user":"acct_42"}"#,
    );
    assert_eq!(gateway.consumer.as_deref(), Some("acct_42"));
    assert_eq!(gateway.consumer_kind.as_deref(), Some("gateway"));
    assert_eq!(gateway.auth_scheme, None);

    let known = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","user":"key-hash","kind":"API_KEY","auth":"Bearer"}"#,
    );
    assert_eq!(known.consumer_kind.as_deref(), Some("api_key"));
    assert_eq!(known.auth_scheme.as_deref(), Some("bearer"));

    let unknown = event(
        &mapping,
        r#"{"ts":"2024-03-05T10:15:30Z","user":"u","kind":"oauth","auth":"negotiate"}"#,
    );
    assert_eq!(unknown.consumer_kind.as_deref(), Some("gateway"));
    assert_eq!(unknown.auth_scheme, None);
    assert_eq!(
        attributes(&unknown),
        [("kind", "oauth"), ("auth", "negotiate")]
    );
}

#[test]
fn sensor_precedence() {
    let mapping =
        mapping("name = \"m\"\nsensor = \"static\"\n[fields]\ntime = \"ts\"\nsensor = \"node\"");
    let from_record = r#"{"ts":"2024-03-05T10:15:30Z","node":"edge-7"}"#;
    let without = r#"{"ts":"2024-03-05T10:15:30Z"}"#;
    let sensor_of = |sensor: Option<&str>, record: &str| {
        expect_event(record, parse_with(&mapping, sensor, record)).sensor
    };
    assert_eq!(
        sensor_of(Some("input"), from_record).as_deref(),
        Some("edge-7")
    );
    assert_eq!(
        sensor_of(Some("input"), without),
        None,
        "the driver sets the input's sensor"
    );
    assert_eq!(sensor_of(None, without).as_deref(), Some("static"));
}

#[test]
fn attributes_all_in_record_order() {
    let event = event(
        &with_time("status = \"status\""),
        r#"{"z":"last?","ts":"2024-03-05T10:15:30Z","status":200,"nested":{"b":true,"a":1.5,"n":null,"dash":"-","empty":""},"list":[1,"x"],"obj":{}}"#,
    );
    assert_eq!(
        attributes(&event),
        [
            ("z", "last?"),
            ("nested.b", "true"),
            ("nested.a", "1.5"),
            ("list", r#"[1,"x"]"#),
        ]
    );
}

#[test]
fn attributes_none_or_selected() {
    let record = r#"{"ts":"2024-03-05T10:15:30Z","service":"orders","http":{"headers":{"accept":"*/*"},"version":"1.1"},"env":"prod"}"#;
    let none = mapping("name = \"m\"\nattributes = \"none\"\nfields.time = \"ts\"");
    assert!(event(&none, record).attributes.is_empty());

    let selected =
        mapping("name = \"m\"\nattributes = [\"service\", \"http.headers\"]\nfields.time = \"ts\"");
    assert_eq!(
        attributes(&event(&selected, record)),
        [("service", "orders"), ("http.headers.accept", "*/*")]
    );
}

#[test]
fn strip_prefix_shortens_attribute_names() {
    let mapping = mapping(
        "name = \"m\"\nstrip_prefix = \"data.\"\n[fields]\ntime = \"data.ts\"\nconsumer_kind = \"data.kind\"",
    );
    let event = event(
        &mapping,
        r#"{"data":{"ts":"2024-03-05T10:15:30Z","service":"orders","kind":"robot"},"data.":"keep","other":"x"}"#,
    );
    assert_eq!(
        attributes(&event),
        [
            ("service", "orders"),
            ("data.", "keep"),
            ("other", "x"),
            ("kind", "robot"),
        ]
    );
}

#[test]
fn rejects_non_objects_and_other_formats() {
    let mapping = with_time("");
    assert_eq!(
        rejection(&mapping, "[1,2]"),
        "expected a JSON object, found an array"
    );
    assert_eq!(
        rejection(&mapping, "42"),
        "expected a JSON object, found a number"
    );
    for line in [
        r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
        r#"{"ts":"2024-03-05T10:15:30Z""#,
        "",
    ] {
        let reason = rejection(&mapping, line);
        assert!(reason.starts_with("invalid JSON: "), "{line:?}: {reason}");
    }
    assert_eq!(
        event(&mapping, "\u{feff}{\"ts\":\"2024-03-05T10:15:30Z\"}  ").time,
        T,
        "a byte order mark and trailing spaces are ignored"
    );
}

#[test]
fn message_field_keeps_record_reason() {
    let mapping = with_time("status = \"status\"");
    let redactor = Redactor::new(b"k".to_vec(), 1);
    let ctx = ParseContext {
        json_mapping: Some(&mapping),
        ..ParseContext::new(&redactor)
    };
    let data = concat!(
        r#"{"ts":"2024-03-05T10:15:30Z","status":"OK","message":"GET /x 200"}"#,
        "\n",
        r#"{"log":"{\"ts\":\"2024-03-05T10:15:30Z\",\"status\":201}\n","stream":"stdout"}"#,
        "\n",
    );
    let chunk = parse_chunk(Format::Json, data.as_bytes(), 1, &ctx);
    assert_eq!(chunk.report.accepted, 1, "{:?}", chunk.report.errors);
    assert_eq!(chunk.report.rejected, 1);
    let reason = &chunk.rejects[0].reason;
    assert!(
        reason.starts_with(r#"invalid number "OK" in field status (column status) (and as a shipper's envelope: invalid JSON: "#),
        "{reason}"
    );

    let status = chunk.batch.column_by_name("status").unwrap();
    let status = status.as_primitive::<arrow::datatypes::Int32Type>();
    assert_eq!(
        status.value(0),
        201,
        "a Docker envelope of a JSON line is unwrapped"
    );
    assert!(status.is_valid(0));
}

/// A made-up record in the shape of a Datadog log search export.
const DATADOG_RECORD: &str = r#"{"id":"AgAAAY4WZx1","type":"log","content":{"timestamp":"2024-03-05T10:15:30.123Z","host":"i-0abc123","service":"checkout-api","tags":["env:prod","team:payments"],"attributes":{"http":{"method":"POST","status_code":201,"url":"https://api.example.com:8443/v1/orders?expand=items","useragent":"okhttp/4.12.0","request_id":"c0ffee","referer":"-"},"network":{"client":{"ip":"203.0.113.7","port":52311},"bytes_written":2048},"duration":48210000,"usr":{"id":"acct_42"},"level":"info"}}}"#;

const DATADOG_MAPPING: &str = r#"
name = "datadog"
strip_prefix = "content.attributes."

[fields]
time = { path = "content.timestamp", format = "rfc3339" }
sensor = "content.host"
url = "content.attributes.http.url"
method = "content.attributes.http.method"
status = "content.attributes.http.status_code"
user_agent = "content.attributes.http.useragent"
referer = "content.attributes.http.referer"
request_id = ["content.attributes.http.request_id", "id"]
client_ip = "content.attributes.network.client.ip"
client_port = "content.attributes.network.client.port"
response_bytes = "content.attributes.network.bytes_written"
duration_ms = { path = "content.attributes.duration", unit = "ns" }
consumer = "content.attributes.usr.id"
"#;

#[test]
fn datadog_style_export() {
    let event = event(&mapping(DATADOG_MAPPING), DATADOG_RECORD);
    assert_eq!(event.time, T + 123_000);
    assert_eq!(event.sensor.as_deref(), Some("i-0abc123"));
    assert_eq!(event.method.as_deref(), Some("POST"));
    assert_eq!(event.scheme.as_deref(), Some("https"));
    assert_eq!(event.host.as_deref(), Some("api.example.com"));
    assert_eq!(event.path.as_deref(), Some("/v1/orders"));
    assert_eq!(event.query.as_deref(), Some("expand=items"));
    assert_eq!(event.status, Some(201));
    assert_eq!(event.user_agent.as_deref(), Some("okhttp/4.12.0"));
    assert_eq!(event.referer, None);
    assert_eq!(event.request_id.as_deref(), Some("c0ffee"));
    assert_eq!(event.client_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(event.client_port, Some(52311));
    assert_eq!(event.response_bytes, Some(2048));
    assert_eq!(event.duration_ms, Some(48.21));
    assert_eq!(event.consumer.as_deref(), Some("acct_42"));
    assert_eq!(event.consumer_kind.as_deref(), Some("gateway"));
    assert_eq!(
        attributes(&event),
        [
            ("type", "log"),
            ("content.service", "checkout-api"),
            ("content.tags", r#"["env:prod","team:payments"]"#),
            ("level", "info"),
            ("port", "8443"),
        ]
    );
}

/// A made-up record in the shape of a Splunk search export (`output_mode=json`).
const SPLUNK_RECORD: &str = r#"{"preview":false,"offset":0,"result":{"_time":"2024-03-05 10:15:30.250 UTC","clientip":"198.51.100.23","method":"GET","uri_path":"/api/v2/items/42","uri_query":"fields=name","status":"404","bytes":"153","req_time":"0.0042","useragent":"curl/8.5.0","host":"web-03","_sourcetype":"access_combined"}}"#;

const SPLUNK_MAPPING: &str = r#"
name = "splunk"
attributes = ["result"]
strip_prefix = "result."

[fields]
time = { path = "result._time", format = "%Y-%m-%d %H:%M:%S%.3f UTC" }
sensor = "result.host"
client_ip = "result.clientip"
method = "result.method"
path = "result.uri_path"
query = "result.uri_query"
status = "result.status"
response_bytes = "result.bytes"
duration_ms = { path = "result.req_time", unit = "s" }
user_agent = "result.useragent"
"#;

#[test]
fn splunk_style_export() {
    let event = event(&mapping(SPLUNK_MAPPING), SPLUNK_RECORD);
    assert_eq!(event.time, T + 250_000);
    assert_eq!(event.sensor.as_deref(), Some("web-03"));
    assert_eq!(event.client_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(event.method.as_deref(), Some("GET"));
    assert_eq!(event.path.as_deref(), Some("/api/v2/items/42"));
    assert_eq!(event.query.as_deref(), Some("fields=name"));
    assert_eq!(event.status, Some(404));
    assert_eq!(event.response_bytes, Some(153));
    assert_eq!(event.duration_ms, Some(4.2));
    assert_eq!(event.user_agent.as_deref(), Some("curl/8.5.0"));
    assert_eq!(attributes(&event), [("_sourcetype", "access_combined")]);
}

#[test]
fn driver_normalises_and_applies_future_tolerance() {
    let mapping = mapping(
        "name = \"m\"\n[fields]\ntime = { path = \"t\", format = \"epoch_s\" }\nurl = \"u\"",
    );
    let redactor = Redactor::new(b"k".to_vec(), 1);
    let ctx = ParseContext {
        json_mapping: Some(&mapping),
        future_tolerance: Some(FutureTolerance::new(T, std::time::Duration::from_secs(60))),
        ..ParseContext::new(&redactor)
    };
    let data = concat!(
        r#"{"t":1709633730,"u":"/caf%C3%A9/42?api_key=secret"}"#,
        "\n",
        r#"{"t":1709633791,"u":"/late"}"#,
        "\n",
        r#"{"t":1709633730000,"u":"/ms"}"#,
        "\n",
    );
    let chunk = parse_chunk(Format::Json, data.as_bytes(), 1, &ctx);
    assert_eq!(chunk.report.accepted, 1, "{:?}", chunk.report.errors);
    assert_eq!(chunk.report.rejected, 2);
    assert!(
        chunk.rejects[0]
            .reason
            .starts_with("the event time 2024-03-05T10:16:31Z is later than 2024-03-05T10:16:30Z"),
        "{}",
        chunk.rejects[0].reason
    );
    assert!(
        chunk.rejects[1].reason.contains("looks like epoch_ms"),
        "{}",
        chunk.rejects[1].reason
    );

    let batch = &chunk.batch;
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_string()
    };
    assert_eq!(column("source"), "json");
    assert_eq!(column("path"), "/café/42");
    assert_eq!(column("endpoint"), "/café/{id}");
    assert!(
        column("query").starts_with("api_key=h1:"),
        "the query is redacted: {}",
        column("query")
    );
}

proptest! {
    #[test]
    fn random_records_never_panic(
        members in prop::collection::vec(
            (
                prop::sample::select(vec!["a", "b", "c", "a.b", "x"]),
                prop_oneof![
                    Just("null".to_string()),
                    any::<bool>().prop_map(|b| b.to_string()),
                    any::<i64>().prop_map(|n| n.to_string()),
                    (-1e20f64..1e20).prop_map(|f| f.to_string()),
                    "[ -~]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                    Just("[1,\"x\",[2]]".to_string()),
                    Just("{\"b\":[\"2024-03-05T10:15:30Z\"]}".to_string()),
                ],
            ),
            0..8,
        ),
    ) {
        let body: Vec<String> = members
            .iter()
            .map(|(key, value)| format!("{key:?}:{value}"))
            .collect();
        let record = format!("{{{}}}", body.join(","));
        for format in ["rfc3339", "clf", "epoch_s", "epoch_ns", "%d.%m.%Y %H:%M"] {
            let mapping = every_column_mapping(format);
            let _ = parse_with(&mapping, None, &record);
        }
    }

    #[test]
    fn random_text_never_panics(text in "[{}\\[\\]\":,.0-9a-z\\- ]{0,60}") {
        let _ = parse_with(&every_column_mapping("epoch_ms"), None, &text);
    }
}

/// Builds a mapping that reads every column from a few keys, for the no-panic property tests.
fn every_column_mapping(time_format: &str) -> JsonMapping {
    let zone = if time_format.starts_with("epoch") {
        ""
    } else {
        ", time_zone = \"Europe/Berlin\""
    };
    let mut toml = format!(
        "name = \"fuzz\"\nstrip_prefix = \"a\"\n[fields]\n\
         time = {{ path = [\"a\", \"b\", \"c\", \"a.b[0]\"], format = \"{time_format}\"{zone} }}\n\
         duration_ms = {{ path = [\"b\", \"c\"], unit = \"ns\" }}\n"
    );
    let columns = [
        "request",
        "url",
        "sensor",
        "request_id",
        "trace_id",
        "method",
        "scheme",
        "host",
        "http_version",
        "path",
        "query",
        "status",
        "request_bytes",
        "response_bytes",
        "client_ip",
        "client_port",
        "forwarded_for",
        "user_agent",
        "referer",
        "consumer",
        "consumer_kind",
        "auth_scheme",
        "upstream",
        "upstream_status",
    ];
    for column in columns {
        toml.push_str(&format!("{column} = [\"x\", \"a.b[0]\", \"c\", \"b\"]\n"));
    }
    mapping(&toml)
}
