//! Detection and parsing of real HAR, Zeek, Suricata and OTLP samples, with
//! counts and field values read by hand from the files.
//!
//! Zeek's test baselines mask their timestamps as `XXXXXXXXXX.XXXXXX`. The
//! tests check that those records are rejected as they are, then replace the
//! masks in memory with a made-up time to check how the rest of each record
//! is read.

mod common;

use apitrail_ingest::framing::records;
use apitrail_ingest::text::decode_line;
use apitrail_ingest::{
    Format, FrameState, LineOutcome, ParseContext, ParsedChunk, Redactor, detect_format,
    new_parser, parse_chunk,
};
use common::*;

/// What the masked timestamps of Zeek's test baselines are replaced with: 2024-05-01T10:00:00.5Z.
const MADE_UP_TS: &str = "1714557600.500000";

const MASKED_TS: &str = "XXXXXXXXXX.XXXXXX";

const MASKED_REASON: &str = "field ts holds the masked time XXXXXXXXXX.XXXXXX of a Zeek test baseline, not a time; only logs with real timestamps can be imported";

/// Parses `data` as `format` with a fresh context.
fn parse(data: &[u8], format: Format) -> ParsedChunk {
    let redactor = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext::new(&redactor);
    parse_chunk(format, data, 1, &ctx)
}

/// Reads a Zeek baseline with its masked timestamps replaced by [`MADE_UP_TS`].
fn unmasked_sample(name: &str) -> Vec<u8> {
    let data = read_sample(name).expect("sample");
    String::from_utf8_lossy(&data)
        .replace(MASKED_TS, MADE_UP_TS)
        .into_bytes()
}

/// Checks detection on the start of `data`, then parses it as `format`.
fn detect_and_parse_bytes(data: &[u8], format: Format) -> ParsedChunk {
    let sample = &data[..data.len().min(DETECTION_SAMPLE_BYTES)];
    assert_eq!(detect_format(sample), Some(format));
    parse(data, format)
}

fn made_up_time() -> i64 {
    utc((2024, 5, 1), (10, 0, 0), 500_000)
}

#[test]
fn har_chrome_petstore() {
    let Some(chunk) = detect_and_parse("har/optic_petstore.swagger.io_chrome.har", Format::Har)
    else {
        return;
    };
    // One pretty-printed document of 4029 lines with 9 entries.
    assert_counts(&chunk, 9, 0, 0);
    let batch = &chunk.batch;

    // Entry 0: the page itself.
    assert_eq!(time(batch, 0), utc((2022, 5, 11), (11, 46, 52), 286_000));
    assert_eq!(text(batch, "source", 0), some("har"));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "scheme", 0), some("https"));
    assert_eq!(text(batch, "host", 0), some("petstore.swagger.io"));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(text(batch, "http_version", 0), some("http/2.0"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(duration_ms(batch, 0), Some(87.15100004337728));
    assert_eq!(
        int64(batch, "response_bytes", 0),
        Some(734),
        "content.size, since Chrome logs bodySize -1"
    );
    assert_eq!(int64(batch, "request_bytes", 0), Some(0));
    assert!(
        text(batch, "user_agent", 0).is_some_and(|agent| agent.contains("Chrome/101.0.4951.54"))
    );
    assert_eq!(attribute(batch, 0, "serverIPAddress"), some("52.70.147.42"));
    assert_eq!(attribute(batch, 0, "connection"), some("418"));
    assert_eq!(attribute(batch, 0, "_resourceType"), some("document"));
    assert_eq!(attribute(batch, 0, "timings.dns"), None);
    assert_eq!(attribute(batch, 0, "request.headers.:path"), None);

    // Entry 3: a query string.
    assert_eq!(text(batch, "path", 3), some("/v2/pet/findByStatus"));
    assert_eq!(text(batch, "query", 3), some("status=available"));
    assert_eq!(int64(batch, "response_bytes", 3), Some(74285));
    assert_eq!(
        text(batch, "referer", 3),
        some("https://petstore.swagger.io/")
    );

    // Entry 6: an id beyond i64 stays text, and gets templated.
    assert_eq!(text(batch, "path", 6), some("/v2/pet/9223372036854017000"));
    assert_eq!(int32(batch, "status", 6), Some(404));
    assert_eq!(text(batch, "endpoint", 6), some("/v2/pet/{id}"));

    // Entry 7: a POST with a JSON body, which is not stored.
    assert_eq!(text(batch, "method", 7), some("POST"));
    assert_eq!(int64(batch, "request_bytes", 7), Some(128));
    assert_eq!(
        attribute(batch, 7, "request.postData.mimeType"),
        some("application/json")
    );
    assert_eq!(attribute(batch, 7, "request.postData.text"), None);
}

#[test]
fn har_akto_single_line() {
    let Some(chunk) = detect_and_parse("har/akto_restapi_81.har", Format::Har) else {
        return;
    };
    // The whole 157 KB capture is one line without a newline.
    assert_counts(&chunk, 81, 0, 0);
    let batch = &chunk.batch;

    // Entry 0: startedDateTime 2022-02-04T09:34:35.225+0530.
    assert_eq!(time(batch, 0), utc((2022, 2, 4), (4, 4, 35), 225_000));
    assert_eq!(text(batch, "method", 0), some("POST"));
    assert_eq!(text(batch, "scheme", 0), some("http"));
    assert_eq!(text(batch, "host", 0), some("localhost"));
    assert_eq!(attribute(batch, 0, "port"), some("8000"));
    assert_eq!(text(batch, "path", 0), some("/api/cars"));
    assert_eq!(text(batch, "query", 0), some("p=1&q=2"));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(int32(batch, "status", 0), Some(201));
    assert_eq!(duration_ms(batch, 0), Some(46.0));
    assert_eq!(int64(batch, "request_bytes", 0), Some(2));
    assert_eq!(int64(batch, "response_bytes", 0), Some(1));
    assert_eq!(attribute(batch, 0, "request.headersSize"), some("763"));
    assert_eq!(
        attribute(batch, 0, "request.origin"),
        some("chrome-extension://daoelfolbcclnmhbieoemeepbadlcjgm")
    );
    assert_eq!(
        attribute(batch, 0, "request.headers.content-type"),
        some("application/json")
    );
    assert_eq!(attribute(batch, 0, "response.statusText"), some("Created"));
    assert_eq!(attribute(batch, 0, "timings.wait"), some("46"));

    // Entry 80: the last one.
    assert_eq!(time(batch, 80), utc((2022, 2, 4), (4, 4, 35), 752_000));
    assert_eq!(text(batch, "method", 80), some("GET"));
    assert_eq!(text(batch, "path", 80), some("/api/books"));
    assert_eq!(text(batch, "query", 80), some("p=3&q=2"));
}

#[test]
fn zeek_json_real_timestamps() {
    let Some(chunk) = detect_and_parse("zeek/elastic_zeek_http_json_realts.log", Format::ZeekHttp)
    else {
        return;
    };
    // Lines 1-7 are Zeek records, line 8 a Splunk search result wrapping one.
    assert_counts(&chunk, 7, 1, 0);
    assert_eq!(chunk.report.errors[0].line, 8);
    assert_eq!(
        chunk.report.errors[0].reason,
        "not a Zeek log record: expected the keys ts and uid"
    );
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), 1_547_687_130_172_944);
    assert_eq!(text(batch, "client_ip", 0), some("10.178.98.102"));
    assert_eq!(int32(batch, "client_port", 0), Some(62995));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "host", 0), some("ocsp.apple.com"));
    assert!(
        text(batch, "path", 0).is_some_and(|path| path.starts_with("/ocsp04-aaica02/ME4wTKAD"))
    );
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(text(batch, "user_agent", 0), some("com.apple.trustd/2.0"));
    assert_eq!(int64(batch, "request_bytes", 0), Some(0));
    assert_eq!(int64(batch, "response_bytes", 0), Some(3735));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(attribute(batch, 0, "username"), some("user"));
    assert_eq!(attribute(batch, 0, "uid"), some("CCNp8v1SNzY7v9d1Ih"));
    assert_eq!(attribute(batch, 0, "id.resp_h"), some("17.253.5.203"));

    // Line 2.
    assert_eq!(text(batch, "host", 1), some("httpbin.org"));
    assert_eq!(text(batch, "path", 1), some("/ip"));

    // Lines 3-7: Zeek saw only the responses.
    for row in 2..7 {
        assert_eq!(text(batch, "method", row), None, "row {row}");
        assert_eq!(text(batch, "path", row), None, "row {row}");
        assert!(int32(batch, "status", row).is_some(), "row {row}");
    }
    assert_eq!(time(batch, 3), 1_617_081_355_599_548);
    assert_eq!(int32(batch, "status", 3), Some(301));
    assert_eq!(int64(batch, "response_bytes", 3), Some(191));
    assert_eq!(text(batch, "http_version", 2), some("HTTP/1.0"));
}

#[test]
fn zeek_masked_baselines_are_rejected() {
    // (file, data records, header lines, first data line)
    let files = [
        ("zeek/zeek_http_nonutf8_url_escape.log", 1, 9, 10),
        ("zeek/zeek_http_methods_malformed.log", 49, 9, 10),
        ("zeek/zeek_http_pipelining.log", 5, 9, 10),
        ("zeek/zeek_http_header_names_wikipedia.log", 14, 9, 10),
        ("zeek/zeek_http_json_nonprintable.json", 4, 0, 2),
    ];
    for (name, data_records, headers, first_data_line) in files {
        let Some(data) = read_sample(name) else {
            return;
        };
        let chunk = parse(&data, Format::ZeekHttp);
        // Line 1 of every baseline is a `### BTest ...` comment, which Zeek does not write.
        assert_counts(&chunk, 0, data_records + 1, headers);
        let errors = &chunk.report.errors;
        assert!(
            errors[0]
                .reason
                .starts_with("unknown Zeek header line \"###\""),
            "{name}: {:?}",
            errors[0]
        );
        assert_eq!(errors[1].line, first_data_line, "{name}");
        assert!(
            errors[1..]
                .iter()
                .all(|error| error.reason == MASKED_REASON),
            "{name}: {errors:?}"
        );
    }
}

#[test]
fn zeek_non_utf8_uri_escape() {
    let data = unmasked_sample("zeek/zeek_http_nonutf8_url_escape.log");
    let chunk = detect_and_parse_bytes(&data, Format::ZeekHttp);
    // Line 1 is the baseline comment; lines 2-9 and 11 are header lines.
    assert_counts(&chunk, 1, 1, 9);
    let batch = &chunk.batch;

    assert_eq!(time(batch, 0), made_up_time());
    assert_eq!(text(batch, "client_ip", 0), some("10.0.1.104"));
    assert_eq!(text(batch, "host", 0), some("lepo.it.da.ut.ee"));
    // The byte 0xFC (ü in Latin-1) is not UTF-8: it stays percent-encoded
    // in the path that templating reads, with no replacement character.
    let path = text(batch, "path", 0).expect("path");
    assert_eq!(
        path,
        "/~cect/teoreetilised seminarid_2010/arheoloogia_uurimisr%FChma_seminar/Joyce et al - The Languages of Archaeology ~ Dialogue, Narrative and Writing.pdf"
    );
    assert!(!path.contains('\u{fffd}'));
    assert!(
        text(batch, "endpoint", 0).is_some_and(|endpoint| endpoint.contains("r%FChma_seminar"))
    );
    assert!(malformed(batch, 0), "the URI contains spaces");
    assert!(
        attribute(batch, 0, "uri").is_some_and(|uri| uri.contains("uurimisr\\xfchma")),
        "the logged URI is kept"
    );
    assert_eq!(int32(batch, "status", 0), Some(404));
    assert_eq!(
        text(batch, "user_agent", 0),
        some("Wget/1.12 (darwin10.8.0)")
    );
    assert_eq!(attribute(batch, 0, "resp_mime_types"), some("text/html"));
}

#[test]
fn zeek_odd_methods_and_uris() {
    let data = unmasked_sample("zeek/zeek_http_methods_malformed.log");
    let chunk = detect_and_parse_bytes(&data, Format::ZeekHttp);
    assert_counts(&chunk, 49, 1, 9);
    let batch = &chunk.batch;

    // Line 10: OPTIONS *.
    assert_eq!(text(batch, "method", 0), some("OPTIONS"));
    assert_eq!(text(batch, "path", 0), some("*"));
    assert_eq!(int32(batch, "status", 0), Some(405));
    assert!(!malformed(batch, 0));

    // Line 11: OPTIONS with an empty URI.
    assert_eq!(text(batch, "method", 1), some("OPTIONS"));
    assert_eq!(text(batch, "path", 1), None);
    assert!(malformed(batch, 1));
    assert_eq!(int32(batch, "status", 1), Some(400));

    // Line 12: no method, host or URI, only the 400 response.
    assert_eq!(text(batch, "method", 2), None);
    assert_eq!(text(batch, "host", 2), None);
    assert_eq!(int32(batch, "status", 2), Some(400));
    assert_eq!(attribute(batch, 2, "status_msg"), some("Bad Request"));

    // Line 16: HTTP/0.9 with status 0.
    assert_eq!(text(batch, "path", 6), some("/HTTP/1.1"));
    assert_eq!(text(batch, "http_version", 6), some("HTTP/0.9"));
    assert_eq!(int32(batch, "status", 6), None);
    assert_eq!(attribute(batch, 6, "status_msg"), some("<empty>"));

    // Line 25: a method Zeek does not know.
    assert_eq!(text(batch, "method", 15), some("CCM_POST"));
}

#[test]
fn zeek_pipelined_requests() {
    let data = unmasked_sample("zeek/zeek_http_pipelining.log");
    let chunk = detect_and_parse_bytes(&data, Format::ZeekHttp);
    assert_counts(&chunk, 5, 1, 9);
    let batch = &chunk.batch;
    for row in 0..5 {
        assert_eq!(attribute(batch, row, "uid"), some("CHhAvVGS1DHFjwGM9"));
        assert_eq!(
            attribute(batch, row, "trans_depth"),
            Some((row + 1).to_string())
        );
        assert_eq!(text(batch, "host", row), some("www.mozilla.org"));
    }
    assert_eq!(text(batch, "path", 1), some("/script/urchin.js"));
    assert_eq!(
        text(batch, "referer", 0),
        some("http://www.mozilla.org/projects/calendar/")
    );
}

#[test]
fn zeek_extra_header_name_columns() {
    let data = unmasked_sample("zeek/zeek_http_header_names_wikipedia.log");
    let chunk = detect_and_parse_bytes(&data, Format::ZeekHttp);
    assert_counts(&chunk, 14, 1, 9);
    let batch = &chunk.batch;
    assert_eq!(text(batch, "host", 0), some("bits.wikimedia.org"));
    assert_eq!(int32(batch, "status", 0), Some(304));
    assert!(
        attribute(batch, 0, "client_header_names")
            .is_some_and(|names| names.starts_with("HOST,USER-AGENT,"))
    );
    assert!(
        attribute(batch, 0, "server_header_names")
            .is_some_and(|names| names.starts_with("DATE,VIA,"))
    );
}

#[test]
fn zeek_json_non_printable_escapes() {
    let Some(data) = read_sample("zeek/zeek_http_json_nonprintable.json") else {
        return;
    };
    let data = String::from_utf8_lossy(&data)
        .replace(
            &format!("\"ts\":{MASKED_TS}"),
            &format!("\"ts\":{MADE_UP_TS}"),
        )
        .into_bytes();
    let chunk = detect_and_parse_bytes(&data, Format::ZeekHttp);
    assert_counts(&chunk, 4, 1, 0);
    let batch = &chunk.batch;
    assert_eq!(time(batch, 0), made_up_time());
    assert_eq!(text(batch, "path", 0), some("/regular_file.html"));
    assert_eq!(text(batch, "path", 1), some("/printable_😄"));
    // `\x07` is the BEL byte, which is valid UTF-8, so the driver decodes it.
    assert_eq!(text(batch, "path", 2), some("/non_printable_\u{7}"));
    assert_eq!(attribute(batch, 2, "uri"), some("/non_printable_\\x07"));
    assert_eq!(text(batch, "path", 3), some("/non_printable_literal_\u{7}"));
}

#[test]
fn suricata_mixed_event_types() {
    let Some(chunk) = detect_and_parse("suricata/beats_eve_small_mixed.json", Format::SuricataEve)
    else {
        return;
    };
    // Line 3 is the only http record; ssh, alert, fileinfo, dns, stats, tls
    // and flow records are skipped.
    assert_counts(&chunk, 1, 0, 7);
    assert_eq!(chunk.report.skipped_reasons["not_http"], 7);
    let batch = &chunk.batch;
    assert_eq!(time(batch, 0), utc((2018, 7, 5), (19, 43, 47), 690_014));
    assert_eq!(text(batch, "client_ip", 0), some("192.168.86.85"));
    assert_eq!(int32(batch, "client_port", 0), Some(56119));
    assert_eq!(text(batch, "host", 0), some("192.168.86.28"));
    assert_eq!(text(batch, "path", 0), some("/dd.xml"));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "response_bytes", 0), Some(1155));
    assert!(
        text(batch, "user_agent", 0).is_some_and(|agent| agent.contains("Chrome/67.0.3396.99"))
    );
    assert_eq!(attribute(batch, 0, "flow_id"), some("2115002772430095"));
    assert_eq!(attribute(batch, 0, "dest_port"), some("63963"));
    assert_eq!(attribute(batch, 0, "tx_id"), some("0"));
    assert_eq!(
        attribute(batch, 0, "http.http_content_type"),
        some("text/xml")
    );
}

#[test]
fn suricata_lab_http_records() {
    let Some(chunk) =
        detect_and_parse("suricata/eve_http_ips_lab_2lines.json", Format::SuricataEve)
    else {
        return;
    };
    assert_counts(&chunk, 2, 0, 0);
    let batch = &chunk.batch;

    // Line 1: a server on port 9999, timestamp with +0800.
    assert_eq!(time(batch, 0), utc((2020, 6, 15), (2, 16, 53), 52_013));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(attribute(batch, 0, "http.http_port"), some("9999"));
    assert_eq!(int32(batch, "status", 0), Some(200));

    // Line 2: an absolute URI through a proxy, without a status.
    assert_eq!(text(batch, "scheme", 1), some("http"));
    assert_eq!(text(batch, "host", 1), some("www.baidu.com"));
    assert_eq!(text(batch, "path", 1), some("/"));
    assert_eq!(int32(batch, "status", 1), None);
    assert_eq!(int64(batch, "response_bytes", 1), Some(0));
    assert_eq!(text(batch, "user_agent", 1), some("Wget"));
}

#[test]
fn otlp_java_agent_logging_line() {
    let Some(chunk) =
        detect_and_parse("otlp/java_agent_logging_otlp_stdout_line.log", Format::Otlp)
    else {
        return;
    };
    // One SERVER span; the CLIENT and INTERNAL spans are not events.
    assert_counts(&chunk, 1, 0, 0);
    let batch = &chunk.batch;
    assert_eq!(time(batch, 0), 1_688_381_984_505_297);
    assert_eq!(duration_ms(batch, 0), Some(484.77175));
    assert_eq!(
        text(batch, "trace_id", 0),
        some("c9815fed398a628696d0c2fed056db03")
    );
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "path", 0), some("/customer"));
    assert_eq!(text(batch, "scheme", 0), some("http"));
    assert_eq!(text(batch, "host", 0), some("localhost"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(text(batch, "client_ip", 0), some("::1"));
    assert_eq!(int32(batch, "client_port", 0), Some(56021));
    assert_eq!(int64(batch, "response_bytes", 0), Some(13));
    assert!(text(batch, "user_agent", 0).is_some_and(|agent| agent.contains("Chrome/114.0.0.0")));
    assert_eq!(attribute(batch, 0, "http.route"), some("/customer"));
    assert_eq!(attribute(batch, 0, "net.host.port"), some("8080"));
    assert_eq!(attribute(batch, 0, "span_id"), some("4b2aeee6ae0f16f8"));
    assert_eq!(attribute(batch, 0, "span_name"), some("GET /customer"));
    assert_eq!(
        attribute(batch, 0, "otel.scope.name"),
        some("io.opentelemetry.tomcat-10.0")
    );
    assert_eq!(attribute(batch, 0, "service.name"), some("ms-one"));
    assert_eq!(attribute(batch, 0, "process.pid"), some("9780"));
}

#[test]
fn otlp_server_spans_with_routes() {
    let Some(chunk) = detect_and_parse(
        "otlp/openobserve_traces_seed_http_server_spans.json",
        Format::Otlp,
    ) else {
        return;
    };
    assert_counts(&chunk, 5, 0, 0);
    let batch = &chunk.batch;
    let expected = [
        ("GET", "/api/orders", 200, 150.0),
        ("POST", "/api/checkout", 200, 420.0),
        ("GET", "/api/products", 200, 80.0),
        ("DELETE", "/api/session", 204, 20.0),
        ("GET", "/api/health", 200, 5.0),
    ];
    for (row, (method, route, status, duration)) in expected.into_iter().enumerate() {
        assert_eq!(text(batch, "method", row), some(method), "row {row}");
        assert_eq!(
            attribute(batch, row, "http.route"),
            some(route),
            "row {row}"
        );
        assert_eq!(int32(batch, "status", row), Some(status), "row {row}");
        assert_eq!(duration_ms(batch, row), Some(duration), "row {row}");
        assert_eq!(
            text(batch, "path", row),
            None,
            "row {row}: a route is no path"
        );
        assert_eq!(attribute(batch, row, "service.name"), some("frontend"));
    }
    assert_eq!(time(batch, 0), 1_720_000_000_000_000);
    assert_eq!(attribute(batch, 0, "otel.status_code"), some("OK"));
    assert_eq!(attribute(batch, 4, "otel.status_code"), some("ERROR"));
    assert_eq!(
        attribute(batch, 4, "otel.status_description"),
        some("upstream slow")
    );
}

#[test]
fn otlp_example_without_http_attributes() {
    let Some(chunk) = detect_and_parse("otlp/otel_proto_examples_trace.json", Format::Otlp) else {
        return;
    };
    // Its one server span has no HTTP attribute, so it names no request.
    assert_counts(&chunk, 0, 0, 1);
    assert_eq!(chunk.report.skipped_reasons["no_http_server_spans"], 1);
}

/// Real files of formats that look alike: JSON lines, JSON documents and
/// `#` header lines.
const LOOKALIKE_FILES: [&str; 22] = [
    "akamai_datastream2/greptimedb_bench_akamai_ds2_1000.ndjson",
    "apiclarity_telemetry/apiclarity_httpbin_post_anything.json",
    "apigateway/elastic_http_api_gateway_full.log",
    "apigateway/elastic_apigateway_websocket.log",
    "azure/msdocs_appgw_access_v2_v1_examples.ndjson",
    "azure/elastic_azure_frontdoor_access.log",
    "caddy/caddy_v2_access_real_2lines.json",
    "cloudflare/elastic_logpush_http_requests_excerpt_lines1_3_4.ndjson",
    "cloudfront/elastic_test-cloudfront.log",
    "envoy/elastic_istio_envoy_json.log",
    "gcp_lb/elastic_gcp_http_lb_requests.log",
    "kong/kong_2.2.1_enterprise_http_log_record.json",
    "nginx/nginx_json_escape_json_4lines_blogpost.json",
    "traefik/elastic_traefik_json_v1_v2.log",
    "alb/elastic_integrations_test-alb.log",
    "har/optic_petstore.swagger.io_chrome.har",
    "zeek/elastic_zeek_http_json_realts.log",
    "zeek/zeek_http_nonutf8_url_escape.log",
    "suricata/beats_eve_small_mixed.json",
    "otlp/java_agent_logging_otlp_stdout_line.log",
    "otlp/openobserve_traces_seed_http_server_spans.json",
    "otlp/otel_proto_examples_trace.json",
];

/// Returns the format a look-alike file belongs to, if it is one of these four.
fn own_format(name: &str) -> Option<Format> {
    match name.split('/').next() {
        Some("har") => Some(Format::Har),
        Some("zeek") => Some(Format::ZeekHttp),
        Some("suricata") => Some(Format::SuricataEve),
        Some("otlp") => Some(Format::Otlp),
        _ => None,
    }
}

#[test]
fn other_formats_are_rejected() {
    let redactor = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext::new(&redactor);
    for name in LOOKALIKE_FILES {
        let Some(data) = read_sample(name) else {
            return;
        };
        for format in [
            Format::Har,
            Format::ZeekHttp,
            Format::SuricataEve,
            Format::Otlp,
        ] {
            if own_format(name) == Some(format) {
                continue;
            }
            let mut parser = new_parser(format);
            for record in records(&data, 1, FrameState::default()) {
                let text = decode_line(record.bytes);
                let outcome = parser.parse(&text, &ctx);
                assert!(
                    matches!(outcome, LineOutcome::Rejected(_)),
                    "{format} accepted line {} of {name}: {outcome:?}",
                    record.line
                );
            }
        }
    }
}
