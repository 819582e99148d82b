//! Real access logs, ingested over HTTP and checked through SQL.
//!
//! Every sample must account for each non-blank line as accepted, rejected
//! or skipped. Exact values are asserted only where they were read from the
//! file by hand (or counted with awk for the 10,000-line sample).

use apitrail_tests::{ServerOptions, TestServer, non_blank_lines, realdata};
use serde_json::{Value, json};

/// Posts a sample with `source=<file name>` and checks the line accounting.
fn ingest_sample(server: &TestServer, relative: &str) -> Value {
    let path = realdata(relative);
    let body = std::fs::read(&path).expect("reading a real log sample");
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let (status, report) = server
        .api()
        .ingest_request(&[("source", &name)], None, body);
    assert_eq!(status, 200, "ingest of {relative} failed: {report}");

    let lines = non_blank_lines(&path);
    let counted: u64 = ["accepted", "rejected", "skipped"]
        .iter()
        .map(|key| {
            report[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} missing in {report}"))
        })
        .sum();
    assert_eq!(
        counted, lines,
        "{relative} has {lines} non-blank lines, but the report counts {counted}: {report}"
    );
    let skipped_by_reason: u64 = report["skipped_reasons"]
        .as_object()
        .map(|reasons| reasons.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert_eq!(
        Some(skipped_by_reason),
        report["skipped"].as_u64(),
        "skip reasons must add up: {report}"
    );
    assert_eq!(
        report["error_count"], report["rejected"],
        "every rejected line needs an error: {report}"
    );

    let accepted = report["accepted"].as_i64().expect("accepted is a number");
    assert_eq!(server.count(""), accepted, "rows stored for {relative}");
    report
}

fn one_row(server: &TestServer, sql: &str) -> Value {
    let mut rows = server.query(sql);
    assert_eq!(rows.len(), 1, "expected one row from {sql:?}: {rows:?}");
    rows.remove(0)
}

#[test]
fn nginx_sample() {
    let server = TestServer::start(ServerOptions::no_flush());
    let report = ingest_sample(&server, "nginx/beats_nginx_access.log");
    assert_eq!(
        report["format"], "clf",
        "detected format of the nginx sample: {report}"
    );
    assert_eq!(
        report["accepted"], 13,
        "every line is a valid combined log line: {report}"
    );

    let row = one_row(
        &server,
        "SELECT status, response_bytes FROM events WHERE time = '2016-12-07T10:04:58Z'",
    );
    assert_eq!(
        row,
        json!({"status": 304, "response_bytes": 0}),
        "the 304 line with 0 bytes"
    );
}

#[test]
fn apache_darwin_sample() {
    let server = TestServer::start(ServerOptions::no_flush());
    let report = ingest_sample(&server, "apache/beats_apache_darwin_2.4.23_common.log");
    assert_eq!(
        report["format"], "clf",
        "detected format of the Apache sample: {report}"
    );
    assert_eq!(
        report["accepted"], 6,
        "the 408 line with request `-` keeps its row: {report}"
    );

    let row = one_row(
        &server,
        "SELECT client_ip, method, path, response_bytes, malformed FROM events WHERE status = 408",
    );
    let expected = json!({"client_ip": "::1", "method": null, "path": null, "response_bytes": null, "malformed": true});
    assert_eq!(row, expected, "the `\"-\" 408 -` line");
    assert_eq!(server.count("client_ip = '::1'"), 3, "lines from ::1");
}

#[test]
fn alb_beats_sample() {
    let server = TestServer::start(ServerOptions::no_flush());
    let report = ingest_sample(&server, "alb/beats_application-lb-http.log");
    assert_eq!(
        report["format"], "aws_alb",
        "detected format of the ALB sample: {report}"
    );
    assert_eq!(
        report["accepted"], 10,
        "every line of the ALB sample is an HTTP request: {report}"
    );

    let statuses = server.query(
        "SELECT status, count(*) AS n, count(upstream_status) AS with_upstream, count(duration_ms) AS timed \
         FROM events GROUP BY status ORDER BY status",
    );
    let expected = json!([
        {"status": 200, "n": 3, "with_upstream": 3, "timed": 3},
        {"status": 460, "n": 1, "with_upstream": 0, "timed": 0},
        {"status": 504, "n": 6, "with_upstream": 0, "timed": 0},
    ]);
    assert_eq!(
        Value::Array(statuses),
        expected,
        "statuses; `-` target status and -1 timings are NULL"
    );

    let first = one_row(
        &server,
        "SELECT time, client_ip, client_port, status, user_agent, upstream, request_bytes, response_bytes, host \
         FROM events WHERE trace_id = 'Root=1-5da09932-2c342a443bfb96249aa50ed7'",
    );
    let expected_first = json!({
        "time": "2019-10-11T15:01:12.376735Z",
        "client_ip": "77.227.156.41",
        "client_port": 56398,
        "status": 460,
        "user_agent": "curl/7.58.0",
        "upstream": "10.0.0.192:80",
        "request_bytes": 125,
        "response_bytes": 0,
        "host": "filebeat-aws-elb-test-12030537.eu-central-1.elb.amazonaws.com",
    });
    assert_eq!(first, expected_first, "the first line of the sample");

    // 0.001 + 0.001 + 0.000 seconds of request, target and response processing.
    let timed = one_row(
        &server,
        "SELECT duration_ms FROM events WHERE trace_id = 'Root=1-5da0a5df-7d64cabe9955b4df9acc800a'",
    );
    let duration = timed["duration_ms"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (duration - 2.0).abs() < 1e-6,
        "duration_ms of the 0.001/0.001/0.000 line is {duration}, expected 2"
    );
}

#[test]
fn alb_mixed_sample() {
    let server = TestServer::start(ServerOptions::no_flush());
    let report = ingest_sample(&server, "alb/elastic_integrations_test-alb.log");
    assert_eq!(
        report["format"], "aws_alb",
        "detected format of the mixed ALB sample: {report}"
    );
    // Three lines are HTTP requests. The four NLB TLS records and three
    // connection-log records are not requests, so they are skipped.
    assert_eq!(
        report["accepted"], 3,
        "HTTP requests in the mixed ALB sample: {report}"
    );
    assert_eq!(
        report["rejected"], 0,
        "no line of the mixed ALB sample is invalid: {report}"
    );
    let expected_reasons = json!({"nlb_tls_record": 4, "alb_connection_log_record": 3});
    assert_eq!(
        report["skipped_reasons"], expected_reasons,
        "skip reasons of the mixed ALB sample: {report}"
    );

    let attack = one_row(
        &server,
        "SELECT client_ip, client_port, status, user_agent, malformed, upstream FROM events \
         WHERE trace_id = 'Root=1-627cac19-4c6df30820daa80e3fd72ced'",
    );
    let expected = json!({
        "client_ip": "67.43.156.20",
        "client_port": 41542,
        "status": 301,
        "user_agent": "Hello, world",
        "malformed": true,
        "upstream": null,
    });
    assert_eq!(attack, expected, "the request with a space inside its URI");

    let broken = one_row(
        &server,
        "SELECT client_ip, status, response_bytes, malformed FROM events WHERE time = '2025-05-01T11:24:32.748149Z'",
    );
    let expected =
        json!({"client_ip": "127.0.0.1", "status": 200, "response_bytes": 272, "malformed": true});
    assert_eq!(
        broken, expected,
        "the line with the request `- http://...:80-/ `"
    );
}

#[test]
fn apigateway_rest_sample() {
    let server = TestServer::start(ServerOptions::no_flush());
    let report = ingest_sample(&server, "apigateway/elastic_rest_api_gateway_full.log");
    assert_eq!(
        report["format"], "aws_apigateway",
        "detected format of the API Gateway sample: {report}"
    );
    assert_eq!(
        report["accepted"], 4,
        "every API Gateway record must be accepted: {report}"
    );

    let row = one_row(
        &server,
        "SELECT time, method, path, status, response_bytes, client_ip, host FROM events \
         WHERE request_id = 'cc9eaefb-0c97-45db-840c-6f206dce8c5b'",
    );
    // requestTimeEpoch 1663964129948 is in milliseconds.
    let expected = json!({
        "time": "2022-09-23T20:15:29.948000Z",
        "method": "GET",
        "path": "/test/pets/1",
        "status": 200,
        "response_bytes": 49,
        "client_ip": "81.2.69.142",
        "host": "pv9kv75899.execute-api.us-east-2.amazonaws.com",
    });
    assert_eq!(row, expected, "the first record of the sample");

    let denied = one_row(
        &server,
        "SELECT status, response_bytes FROM events WHERE request_id = '87d150e1-a797-40f1-a35f-ccfc8f73b0a2'",
    );
    assert_eq!(
        denied,
        json!({"status": 403, "response_bytes": 23}),
        "the 403 record"
    );
    assert_eq!(
        server.count("request_id IS NULL"),
        0,
        "every record has a requestId"
    );
}

/// Totals of the 10,000-line sample, counted independently with awk.
#[test]
fn throughput_10k_sample() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let report = ingest_sample(&server, "throughput/elastic_examples_apache_logs_10k.log");
    assert_eq!(
        report["format"], "clf",
        "detected format of the 10k sample: {report}"
    );
    server.api().wait_for_empty_buffer();

    let statuses =
        server.query("SELECT status, count(*) AS n FROM events GROUP BY status ORDER BY status");
    let expected = json!([
        {"status": 200, "n": 9126},
        {"status": 206, "n": 45},
        {"status": 301, "n": 164},
        {"status": 304, "n": 445},
        {"status": 403, "n": 2},
        {"status": 404, "n": 213},
        {"status": 416, "n": 2},
        {"status": 500, "n": 3},
    ]);
    assert_eq!(
        Value::Array(statuses),
        expected,
        "status counts of the 10k sample"
    );

    let methods =
        server.query("SELECT method, count(*) AS n FROM events GROUP BY method ORDER BY method");
    let expected = json!([
        {"method": "GET", "n": 9952},
        {"method": "HEAD", "n": 42},
        {"method": "OPTIONS", "n": 1},
        {"method": "POST", "n": 5},
    ]);
    assert_eq!(
        Value::Array(methods),
        expected,
        "method counts of the 10k sample"
    );

    let totals = one_row(
        &server,
        "SELECT min(time) AS first, max(time) AS last, sum(response_bytes) AS bytes, \
         count(response_bytes) AS with_bytes, count(DISTINCT client_ip) AS clients FROM events",
    );
    let expected = json!({
        "first": "2015-05-17T10:05:00.000000Z",
        "last": "2015-05-20T21:05:59.000000Z",
        "bytes": 2_747_282_740_i64,
        "with_bytes": 10_000 - 669,
        "clients": 1753,
    });
    assert_eq!(
        totals, expected,
        "totals of the 10k sample (669 lines log `-` bytes)"
    );
}
