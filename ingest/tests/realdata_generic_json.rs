//! The generic `json` format on real JSON logs of other sources, each read
//! through a field mapping as an operator would write it.

mod common;

use apitrail_ingest::{Format, JsonMapping, ParseContext, ParsedChunk, Redactor, parse_chunk};
use common::{
    assert_counts, attribute, duration_ms, int32, int64, read_sample, some, text, time, utc,
};

/// Parses a whole sample file as `json` with the mapping in `toml`.
fn parse_with_mapping(name: &str, toml: &str) -> ParsedChunk {
    let mapping: JsonMapping = toml::from_str(toml).expect("a valid mapping");
    let data = read_sample(name).expect("the sample file");
    let redactor = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext {
        json_mapping: Some(&mapping),
        ..ParseContext::new(&redactor)
    };
    parse_chunk(Format::Json, &data, 1, &ctx)
}

const NGINX_JSON_FILE: &str = "nginx/nginx_json_escape_json_4lines_blogpost.json";

const NGINX_MAPPING: &str = r#"
name = "nginx"
[fields]
time = { path = "time_ms", format = "epoch_s" }
client_ip = "ip"
client_port = "remote_port"
status = "status"
method = "method"
scheme = "scheme"
host = "host"
path = "path"
query = "query"
referer = "referrer_uri"
user_agent = "user_agent"
http_version = "server_protocol"
duration_ms = { path = "nginx_time", unit = "s" }
"#;

#[test]
fn nginx_json_lines() {
    let chunk = parse_with_mapping(NGINX_JSON_FILE, NGINX_MAPPING);
    assert_counts(&chunk, 4, 0, 0);
    let batch = &chunk.batch;

    // time_ms is nginx's $msec: seconds with a millisecond fraction.
    assert_eq!(time(batch, 0), utc((2018, 8, 28), (16, 18, 51), 906_000));
    assert_eq!(text(batch, "source", 0), some("json"));
    assert_eq!(text(batch, "client_ip", 0), None, "ip is -");
    assert_eq!(int32(batch, "client_port", 0), Some(59720));
    assert_eq!(int32(batch, "status", 2), Some(302));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "scheme", 0), some("http"));
    assert_eq!(text(batch, "host", 0), some("local.application.com"));
    assert_eq!(
        text(batch, "path", 0),
        some("/themes/classic/images/fugue/stamp.png")
    );
    assert_eq!(text(batch, "query", 0), None, "query is -");
    assert_eq!(text(batch, "query", 2), None, "query is empty");
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(duration_ms(batch, 3), Some(146.0));
    assert_eq!(
        attribute(batch, 2, "upstream_response_time"),
        some("0.000, 0.110"),
        "an unmapped field is an attribute"
    );
    assert_eq!(attribute(batch, 0, "nginx_version"), some("1.15.2"));
    assert_eq!(
        attribute(batch, 0, "time_iso8601"),
        some("2018-08-28T19:18:51+03:00")
    );
}

#[test]
fn nginx_seconds_read_as_milliseconds_are_rejected() {
    let mapping = NGINX_MAPPING.replace("epoch_s", "epoch_ms");
    let chunk = parse_with_mapping(NGINX_JSON_FILE, &mapping);
    assert_counts(&chunk, 0, 4, 0);
    let reason = &chunk.rejects[0].reason;
    assert!(
        reason.contains("as epoch_ms it is 1970-01-18T18:31:13.131906Z")
            && reason.contains("looks like epoch_s (seconds), not milliseconds"),
        "{reason}"
    );
}

const ZEEK_JSON_FILE: &str = "zeek/elastic_zeek_http_json_realts.log";

#[test]
fn zeek_json_keys_with_dots() {
    let chunk = parse_with_mapping(
        ZEEK_JSON_FILE,
        r#"
        name = "zeek"
        [fields]
        time = { path = "ts", format = "epoch_s" }
        client_ip = "id.orig_h"
        client_port = "id.orig_p"
        method = "method"
        host = "host"
        path = "uri"
        http_version = "version"
        user_agent = "user_agent"
        status = "status_code"
        request_bytes = "request_body_len"
        response_bytes = "response_body_len"
        request_id = "uid"
        "#,
    );
    // The last line is a Splunk search result that wraps a Zeek record in a string.
    assert_counts(&chunk, 7, 1, 0);
    assert_eq!(chunk.rejects[0].line, 8);
    assert_eq!(
        chunk.rejects[0].reason,
        "missing the request time: the record has no value at ts (json mapping \"zeek\")"
    );

    let batch = &chunk.batch;
    assert_eq!(time(batch, 1), utc((2019, 1, 17), (6, 36, 59), 757_479));
    assert_eq!(text(batch, "client_ip", 1), some("10.20.8.197"));
    assert_eq!(int32(batch, "client_port", 1), Some(35684));
    assert_eq!(text(batch, "host", 1), some("httpbin.org"));
    assert_eq!(text(batch, "path", 1), some("/ip"));
    assert_eq!(text(batch, "http_version", 1), some("HTTP/1.1"));
    assert_eq!(int32(batch, "status", 1), Some(200));
    assert_eq!(int64(batch, "response_bytes", 1), Some(32));
    assert_eq!(attribute(batch, 1, "id.resp_h"), some("34.206.130.40"));
    assert_eq!(
        attribute(batch, 1, "resp_mime_types"),
        some(r#"["text/json"]"#)
    );

    // Records of responses without a request have no method or path.
    assert_eq!(text(batch, "method", 2), None);
    assert_eq!(text(batch, "path", 2), None);
    assert_eq!(int32(batch, "status", 3), Some(301));
}

const CLOUDFLARE_FILE: &str = "cloudflare/elastic_logpull_mock_iter0_3records.ndjson";

const CLOUDFLARE_MAPPING: &str = r#"
name = "cloudflare"
[fields]
time = { path = "EdgeStartTimestamp", format = "epoch_ns" }
client_ip = "ClientIP"
client_port = "ClientSrcPort"
method = "ClientRequestMethod"
host = "ClientRequestHost"
path = "ClientRequestURI"
http_version = "ClientRequestProtocol"
status = "EdgeResponseStatus"
request_bytes = "ClientRequestBytes"
response_bytes = "EdgeResponseBytes"
user_agent = "ClientRequestUserAgent"
referer = "ClientRequestReferer"
request_id = "RayID"
"#;

#[test]
fn cloudflare_nanoseconds_and_a_string_time() {
    let chunk = parse_with_mapping(CLOUDFLARE_FILE, CLOUDFLARE_MAPPING);
    // The first record writes its time as RFC 3339 text, the others as nanoseconds.
    assert_counts(&chunk, 2, 1, 0);
    assert_eq!(chunk.rejects[0].line, 1);
    assert_eq!(
        chunk.rejects[0].reason,
        r#"invalid time "2019-08-02T15:29:08Z" in field EdgeStartTimestamp: expected a number of nanoseconds"#
    );

    let batch = &chunk.batch;
    assert_eq!(time(batch, 0), utc((2021, 7, 8), (14, 2, 38), 812_000));
    assert_eq!(text(batch, "client_ip", 0), some("222.97.65.242"));
    assert_eq!(text(batch, "host", 0), some("eqlplayground.io"));
    assert_eq!(int32(batch, "status", 1), Some(403));
    assert_eq!(text(batch, "request_id", 1), some("66b9f9da396e4c01"));

    let as_text = parse_with_mapping(
        CLOUDFLARE_FILE,
        &CLOUDFLARE_MAPPING.replace("epoch_ns", "rfc3339"),
    );
    assert_counts(&as_text, 1, 2, 0);
    assert_eq!(
        as_text.rejects[0].reason,
        "expected a time string in field EdgeStartTimestamp, found a number"
    );
    let batch = &as_text.batch;
    assert_eq!(time(batch, 0), utc((2019, 8, 2), (15, 29, 8), 0));
    assert_eq!(text(batch, "path", 0), some("/wp-cron.php"));
    assert_eq!(
        text(batch, "query", 0),
        some("doing_wp_cron=1564759748.3962020874023437500000")
    );
}
