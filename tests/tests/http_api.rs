//! The HTTP API as a client sees it: health, ingest, query and result encodings.

use apitrail_tests::{ServerOptions, TestServer, clf_line, gzip, non_blank_lines, realdata};
use serde_json::Value;

const NGINX: &str = "nginx/beats_nginx_access.log";
const APACHE: &str = "apache/beats_apache_darwin_2.4.23_common.log";

fn read_sample(relative: &str) -> Vec<u8> {
    std::fs::read(realdata(relative)).expect("reading a real log sample")
}

/// `count` unique CLF lines with paths `/{prefix}/0`, `/{prefix}/1`, ...,
/// one second apart from `10/Oct/2023:13:00:00 +0000`.
fn numbered_lines(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| {
            let time = format!("10/Oct/2023:13:{:02}:{:02} +0000", i / 60, i % 60);
            clf_line(&time, &format!("/{prefix}/{i}"), 200)
        })
        .collect()
}

fn duplicate_paths(server: &TestServer) -> Vec<Value> {
    server.query("SELECT path, count(*) AS n FROM events GROUP BY path HAVING count(*) > 1")
}

#[test]
fn health_ok() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (status, body) = server.api().get("/health");
    assert_eq!(status, 200, "GET /health returned {status}: {body}");
    let value: Value = serde_json::from_str(&body).expect("health body is JSON");
    assert_eq!(
        value,
        serde_json::json!({"status": "ok"}),
        "unexpected health body"
    );
}

#[test]
fn metrics_count_ingest() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (status, report) = server.ingest(Some("clf"), read_sample(APACHE));
    assert_eq!(status, 200, "ingest failed: {report}");

    let (status, text) = server.api().get("/metrics");
    assert_eq!(status, 200, "GET /metrics returned {status}: {text}");
    let accepted_line = r#"apitrail_ingest_lines_total{format="clf",outcome="accepted"} 6"#;
    assert!(
        text.lines().any(|line| line == accepted_line),
        "metrics lack `{accepted_line}`:\n{text}"
    );
}

#[test]
fn nginx_round_trip() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (status, report) = server.ingest(Some("clf"), read_sample(NGINX));
    assert_eq!(status, 200, "ingest failed: {report}");
    assert_eq!(
        report["format"], "clf",
        "format of the nginx sample: {report}"
    );
    assert_eq!(
        report["accepted"], 13,
        "every nginx line must be accepted: {report}"
    );
    assert_eq!(
        report["rejected"], 0,
        "no nginx line may be rejected: {report}"
    );
    assert_eq!(
        report["skipped"], 0,
        "no nginx line may be skipped: {report}"
    );
    assert_eq!(
        report["error_count"], 0,
        "no nginx line may have an error: {report}"
    );
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "the error list must be empty: {report}"
    );

    assert_eq!(server.count(""), 13, "row count after ingest");

    let first = server.query("SELECT * FROM events ORDER BY time LIMIT 1");
    let row = &first[0];
    // 25/Oct/2016:14:49:33 +0200 is 12:49:33 UTC.
    assert_eq!(
        row["time"], "2016-10-25T12:49:33.000000Z",
        "time of the first row, converted to UTC: {row}"
    );
    assert_eq!(row["day"], "2016-10-25", "day of the first row: {row}");
    assert_eq!(row["method"], "GET", "method of the first row: {row}");
    assert_eq!(row["path"], "/", "path of the first row: {row}");
    assert_eq!(row["status"], 200, "status of the first row: {row}");
    assert_eq!(
        row["response_bytes"], 612,
        "response bytes of the first row: {row}"
    );
    assert_eq!(
        row["client_ip"], "77.179.66.156",
        "client IP of the first row: {row}"
    );
    assert_eq!(
        row["http_version"], "HTTP/1.1",
        "HTTP version of the first row: {row}"
    );
    assert_eq!(
        row["user_agent"],
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/54.0.2840.59 Safari/537.36",
        "user agent of the first row: {row}"
    );
    assert!(
        row["referer"].is_null(),
        "a `-` referer must be NULL: {row}"
    );
    assert!(
        row["query"].is_null(),
        "a path without `?` has a NULL query: {row}"
    );
    assert_eq!(
        row["malformed"], false,
        "the first row is well formed: {row}"
    );
    assert!(
        row.get("sensor").is_some_and(Value::is_null),
        "NULLs must be explicit: {row}"
    );

    let statuses =
        server.query("SELECT status, count(*) AS n FROM events GROUP BY status ORDER BY status");
    let expected = serde_json::json!([
        {"status": 200, "n": 2},
        {"status": 206, "n": 1},
        {"status": 304, "n": 2},
        {"status": 404, "n": 8},
    ]);
    assert_eq!(
        Value::Array(statuses),
        expected,
        "status counts of the nginx sample"
    );

    let last = server
        .query("SELECT time, host, client_ip, status, path FROM events ORDER BY time DESC LIMIT 1");
    let expected_last = serde_json::json!({
        "time": "2020-06-09T19:10:39.000000Z",
        "host": "lessons.example.com",
        "client_ip": "192.168.0.1",
        "status": 206,
        "path": "/A Beka G1 Howe/029_AND_30/15 reading elephants.mp4",
    });
    assert_eq!(last[0], expected_last, "the vhost-prefixed last line");
}

#[test]
fn format_detected() {
    let server = TestServer::start(ServerOptions::no_flush());
    let cases = [
        (APACHE, "clf"),
        ("alb/beats_application-lb-http.log", "aws_alb"),
        (
            "apigateway/elastic_rest_api_gateway_full.log",
            "aws_apigateway",
        ),
    ];
    for (sample, format) in cases {
        let lines = non_blank_lines(&realdata(sample));
        let (status, report) = server.ingest(None, read_sample(sample));
        assert_eq!(
            status, 200,
            "ingest of {sample} without format= failed: {report}"
        );
        assert_eq!(
            report["format"], format,
            "detected format of {sample}: {report}"
        );
        assert_eq!(
            report["accepted"], lines,
            "accepted lines of {sample}: {report}"
        );
    }
}

#[test]
fn gzip_content_encoding() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = gzip(&read_sample(APACHE));
    let (status, report) = server.api().ingest_request(&[], Some("gzip"), body);
    assert_eq!(
        status, 200,
        "gzip body with Content-Encoding failed: {report}"
    );
    assert_eq!(
        report["accepted"], 6,
        "accepted lines of the gzip body: {report}"
    );
    assert_eq!(server.count(""), 6, "rows after the gzip ingest");
}

#[test]
fn gzip_raw_bytes() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = gzip(&read_sample(APACHE));
    let (status, report) = server
        .api()
        .ingest_request(&[("format", "clf")], None, body);
    assert_eq!(
        status, 200,
        "gzip body without Content-Encoding failed: {report}"
    );
    assert_eq!(
        report["accepted"], 6,
        "accepted lines of the gzip body: {report}"
    );
    assert_eq!(server.count(""), 6, "rows after the gzip ingest");
}

#[test]
fn body_over_limit_413() {
    let server = TestServer::start(ServerOptions::no_flush().with_max_body_bytes(1000));
    let body = numbered_lines("big", 30);
    assert!(body.len() > 1000, "the test body must exceed the limit");

    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(
        status, 413,
        "a body over --max-body-bytes must get 413: {report}"
    );
    let message = report["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("1000"),
        "the error should name the limit: {report}"
    );
    assert_eq!(
        server.count(""),
        0,
        "nothing of a rejected body may be stored"
    );

    let (status, report) = server.ingest(Some("clf"), numbered_lines("small", 3));
    assert_eq!(
        status, 200,
        "a body under the limit must still be accepted: {report}"
    );
}

/// `--max-body-bytes` limits the body as sent, so a small gzip body that
/// expands past the limit is accepted, with or without `Content-Encoding`.
#[test]
fn gzip_limit_counts_sent_bytes() {
    let server = TestServer::start(ServerOptions::no_flush().with_max_body_bytes(1000));
    let plain = clf_line("10/Oct/2023:13:55:36 +0000", "/same", 200).repeat(50);
    let body = gzip(plain.as_bytes());
    assert!(
        body.len() < 1000 && plain.len() > 1000,
        "the gzip body ({} bytes) must be under the limit and the plain text ({} bytes) over it",
        body.len(),
        plain.len()
    );

    let (status, report) = server
        .api()
        .ingest_request(&[("format", "clf")], None, body.clone());
    assert_eq!(
        status, 200,
        "raw gzip bytes under the limit were refused: {report}"
    );

    let (status, report) = server
        .api()
        .ingest_request(&[("format", "clf")], Some("gzip"), body);
    assert_eq!(
        status,
        200,
        "the same {}-byte gzip body with Content-Encoding: gzip was refused against a 1000-byte limit: {report}",
        plain.len()
    );
}

#[test]
fn unknown_format_400() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (status, report) = server.ingest(Some("bogus"), read_sample(APACHE));
    assert_eq!(status, 400, "unknown format name must get 400: {report}");
    let message = report["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("bogus"),
        "the error should name the format: {report}"
    );
    assert_eq!(server.count(""), 0, "nothing may be stored");
}

#[test]
fn junk_input_400() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (status, report) = server.ingest(None, "hello world\nthis is not a log\n");
    assert_eq!(status, 400, "undetectable input must get 400: {report}");
    let message = report["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("format"),
        "the error should say the format is unknown: {report}"
    );
    assert_eq!(server.count(""), 0, "nothing may be stored");
}

#[test]
fn rejected_lines_reported() {
    let server = TestServer::start(ServerOptions::no_flush());
    let mut body = clf_line("10/Oct/2023:13:55:36 +0000", "/ok/1", 200);
    body.push_str("not a log line at all\n");
    body.push_str(&clf_line("10/Oct/2023:13:55:37 +0000", "/ok/2", 200));
    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(status, 200, "ingest failed: {report}");
    assert_eq!(
        report["accepted"], 2,
        "two valid lines must be accepted: {report}"
    );
    assert_eq!(
        report["rejected"], 1,
        "the junk line must be rejected: {report}"
    );
    assert_eq!(
        report["error_count"], 1,
        "the rejected line needs an error: {report}"
    );
    assert_eq!(
        report["errors"][0]["line"], 2,
        "the error must name line 2: {report}"
    );
    assert!(
        report["errors"][0]["reason"].is_string(),
        "the error needs a reason: {report}"
    );
}

#[test]
fn bad_sql_400() {
    let server = TestServer::start(ServerOptions::no_flush());
    for sql in [
        "SELEC 1",
        "SELECT nope FROM events",
        "SELECT * FROM missing_table",
    ] {
        let (status, body) = server.query_status(sql);
        assert_eq!(status, 400, "{sql:?} must get 400: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{sql:?} must come with an error message: {body}"
        );
    }
    let (_, body) = server.query_status("SELECT nope FROM events");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("nope"),
        "the error should name the unknown column: {body}"
    );
}

#[test]
fn writes_rejected() {
    let server = TestServer::start(ServerOptions::no_flush());
    let target = server.scratch_dir().join("copy-out.csv");
    let statements = [
        "INSERT INTO events (status) VALUES (200)".to_string(),
        "CREATE TABLE t AS SELECT 1 AS a".to_string(),
        "CREATE TABLE t (a INT)".to_string(),
        "CREATE VIEW v AS SELECT 1 AS a".to_string(),
        format!("COPY (SELECT 1 AS a) TO '{}'", target.display()),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
            target.display()
        ),
        "SET datafusion.execution.batch_size = 10".to_string(),
        "DROP TABLE events".to_string(),
        "DELETE FROM events".to_string(),
        "UPDATE events SET status = 1".to_string(),
    ];
    for sql in &statements {
        let (status, body) = server.query_status(sql);
        assert_eq!(status, 400, "write statement {sql:?} must get 400: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("read-only"),
            "the error for {sql:?} should say SQL is read-only: {body}"
        );
    }
    assert!(!target.exists(), "COPY wrote {}", target.display());
    let (status, body) = server.query_status("SELECT count(*) AS n FROM events");
    assert_eq!(status, 200, "the events table must still work: {body}");
}

#[test]
fn csv_output() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    let sql = "SELECT time, status, path FROM events ORDER BY time LIMIT 2";
    let (status, content_type, body) = server.api().query_output(sql, Some("csv"));
    let text = String::from_utf8(body).expect("CSV is UTF-8");
    assert_eq!(status, 200, "CSV query failed: {text}");
    assert!(
        content_type.starts_with("text/csv"),
        "content type of CSV: {content_type:?}"
    );
    let expected = "time,status,path\n2016-10-25T12:49:33.000000Z,200,/\n2016-10-25T12:49:34.000000Z,404,/favicon.ico\n";
    assert_eq!(text, expected, "CSV body");
}

/// `SELECT *` includes the `attributes` map, so CSV must either encode it or
/// reject the query with a 4xx, never return 200 with a cut-off body.
#[test]
fn csv_select_star() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    let sql = "SELECT * FROM events ORDER BY time LIMIT 2";
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/query?output=csv", server.url()))
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .expect("sending the query");
    let status = response.status().as_u16();
    let body = response.text();
    match status {
        200 => {
            let text =
                body.unwrap_or_else(|e| panic!("the 200 CSV body of {sql:?} was cut off: {e}"));
            assert_eq!(
                text.lines().count(),
                3,
                "expected a header and 2 rows:\n{text}"
            );
        }
        400..=499 => {
            let text = body.expect("reading the error body");
            assert!(
                text.contains("attributes"),
                "the error should name the column CSV cannot hold: {text}"
            );
        }
        other => panic!("CSV of {sql:?} returned {other}: {body:?}"),
    }
}

#[test]
fn jsonl_output() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    let sql = "SELECT time, status, referer FROM events ORDER BY time LIMIT 3";
    let (status, content_type, body) = server.api().query_output(sql, Some("jsonl"));
    let text = String::from_utf8(body).expect("JSON lines are UTF-8");
    assert_eq!(status, 200, "JSON lines query failed: {text}");
    assert_eq!(
        content_type, "application/x-ndjson",
        "content type of JSON lines"
    );

    let rows: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {line:?} is not JSON: {e}"))
        })
        .collect();
    assert_eq!(rows.len(), 3, "expected one line per row:\n{text}");
    assert_eq!(
        rows[0]["time"], "2016-10-25T12:49:33.000000Z",
        "first line: {}",
        rows[0]
    );
    assert_eq!(rows[1]["status"], 404, "second line: {}", rows[1]);
    assert_eq!(
        rows[1]["referer"], "http://localhost:8080/",
        "second line: {}",
        rows[1]
    );
    assert!(
        rows[0].get("referer").is_some_and(Value::is_null),
        "NULL must be explicit: {}",
        rows[0]
    );
}

#[test]
fn arrow_output() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    let sql = "SELECT * FROM events ORDER BY time";
    let (status, content_type, body) = server.api().query_output(sql, Some("arrow"));
    assert_eq!(
        status,
        200,
        "Arrow query failed: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        content_type, "application/vnd.apache.arrow.stream",
        "content type of Arrow"
    );

    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
        .expect("the body is an Arrow IPC stream");
    let schema = reader.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let expected_names = [
        "time",
        "day",
        "source",
        "sensor",
        "request_id",
        "trace_id",
        "method",
        "scheme",
        "host",
        "http_version",
        "path",
        "query",
        "endpoint",
        "status",
        "duration_ms",
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
        "malformed",
        "attributes",
    ];
    assert_eq!(names, expected_names, "columns of the events table");
    let batches: Vec<_> = reader
        .collect::<Result<_, _>>()
        .expect("every Arrow batch decodes");
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 13, "rows in the Arrow stream");
}

#[test]
fn unknown_output_400() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (status, _, body) = server.api().query_output("SELECT 1", Some("xml"));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "unknown output must get 400: {text}");
    assert!(
        text.contains("xml"),
        "the error should name the output: {text}"
    );
}

/// Rows are visible as soon as the ingest returns, and stay visible exactly
/// once when a flush moves them from the buffer to the table.
#[test]
fn buffer_then_flush() {
    let options = ServerOptions {
        flush_max_age_secs: Some(3600.0),
        flush_max_rows: Some(40),
        ..ServerOptions::default()
    };
    let server = TestServer::start(options);
    let (status, report) = server.ingest(Some("clf"), numbered_lines("buffer", 30));
    assert_eq!(status, 200, "first ingest failed: {report}");

    assert_eq!(
        server.count(""),
        30,
        "rows must be visible before any flush"
    );
    let flushed = server
        .api()
        .metric("apitrail_flushed_rows_total")
        .unwrap_or(0.0);
    assert_eq!(flushed, 0.0, "no flush may have run yet");
    let range = "time >= '2023-10-10T13:00:10Z' AND time < '2023-10-10T13:00:20Z'";
    assert_eq!(server.count(range), 10, "time range over the buffer");

    let (status, report) = server.ingest(Some("clf"), numbered_lines("second", 10));
    assert_eq!(status, 200, "second ingest failed: {report}");
    server.api().wait_for_flushed_rows(40);

    assert_eq!(server.count(""), 40, "row count after the flush");
    let duplicates = duplicate_paths(&server);
    assert!(
        duplicates.is_empty(),
        "rows repeated across the flush: {duplicates:?}"
    );
    // The second batch reuses the times 13:00:00..13:00:09.
    assert_eq!(server.count(range), 10, "time range over the table");
    assert_eq!(
        server.count("time < TIMESTAMP '2023-10-10T13:00:10Z'"),
        20,
        "time range that spans both ingests"
    );
}

/// A flush by age runs while queries keep counting, and no query may see a row
/// twice or miss one.
#[test]
fn age_flush_exact_once() {
    let server = TestServer::start(ServerOptions {
        flush_max_age_secs: Some(0.5),
        ..ServerOptions::default()
    });
    let (status, report) = server.ingest(Some("clf"), numbered_lines("age", 25));
    assert_eq!(status, 200, "ingest failed: {report}");

    let api = server.api();
    apitrail_tests::poll_until(std::time::Duration::from_secs(30), "the age flush", || {
        let count = api.count("");
        assert_eq!(
            count, 25,
            "a query during the flush window saw {count} rows"
        );
        let flushed = api.metric("apitrail_flushed_rows_total").unwrap_or(0.0);
        (flushed >= 25.0).then_some(())
    });
    assert_eq!(server.count(""), 25, "row count after the flush");
    let duplicates = duplicate_paths(&server);
    assert!(
        duplicates.is_empty(),
        "rows repeated across the flush: {duplicates:?}"
    );
}

#[test]
fn time_range_buffer_and_table() {
    let mut server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    // The 07/Dec/2016 lines are +0100: five fall in 09:xx UTC and four in 10:xx UTC.
    let ranges = [
        (
            "time >= '2016-12-07T09:00:00Z' AND time < '2016-12-07T10:00:00Z'",
            5,
        ),
        (
            "time >= TIMESTAMP '2016-12-07T10:00:00Z' AND time < TIMESTAMP '2016-12-07T11:00:00Z'",
            4,
        ),
        ("day = '2016-12-07'", 9),
        ("time < '2016-11-01T00:00:00Z'", 3),
    ];
    for (filter, expected) in ranges {
        assert_eq!(server.count(filter), expected, "buffer rows where {filter}");
    }

    server.stop();
    server.restart();
    let wal_bytes = server.wal_record_bytes();
    assert_eq!(
        wal_bytes, 0,
        "a clean stop must flush everything and empty the WAL"
    );
    for (filter, expected) in ranges {
        assert_eq!(server.count(filter), expected, "table rows where {filter}");
    }
    assert_eq!(server.count(""), 13, "row count after the restart");
}

/// SIGTERM right after the listening line must still stop the server cleanly
/// with exit code 0. The process is driven directly here, without the harness
/// threads, so the signal follows the line as closely as a supervisor's would.
#[test]
fn sigterm_after_listening() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;

    for attempt in 1..=10 {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let mut child = apitrail_tests::serve_command(&dir.path().join("data"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting the server");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
        // The Flight SQL, PostgreSQL and OTLP lines come first; the HTTP line is last.
        let mut line = String::new();
        loop {
            line.clear();
            stdout
                .read_line(&mut line)
                .expect("reading the listening lines");
            if line.starts_with("apitrail listening on ") {
                break;
            }
            assert!(
                line.starts_with("apitrail flight sql listening on ")
                    || line.starts_with("apitrail postgres listening on ")
                    || line.starts_with("apitrail otlp grpc listening on ")
                    || line.starts_with("apitrail otlp http listening on "),
                "unexpected line before the HTTP listening line: {line:?}"
            );
        }

        apitrail_tests::send_signal(child.id(), libc::SIGTERM);
        let status = child.wait().expect("waiting for the server");
        assert!(
            status.success(),
            "attempt {attempt}: SIGTERM sent just after the listening line ended the server with {} (signal {:?}), expected exit code 0",
            apitrail_tests::describe_exit(status),
            status.signal()
        );
    }
}

/// Settings from `--config` apply, and `--store` puts the table outside the data directory.
#[test]
fn config_file_and_store() {
    let scratch = tempfile::tempdir().expect("creating a temporary directory");
    let config = scratch.path().join("apitrail.toml");
    std::fs::write(
        &config,
        "flush_max_age_secs = 3600\nmax_body_bytes = 1000\n",
    )
    .expect("writing the config file");
    let store = scratch.path().join("events-table");
    let options = ServerOptions {
        extra_args: vec![
            "--config".to_string(),
            config.display().to_string(),
            "--store".to_string(),
            format!("file://{}", store.display()),
        ],
        ..ServerOptions::default()
    };
    let mut server = TestServer::start(options);

    let (status, report) = server.ingest(Some("clf"), read_sample(NGINX));
    assert_eq!(
        status, 413,
        "the 2.7 kB nginx sample is over the 1000-byte limit of the config file: {report}"
    );
    let (status, report) = server.ingest(Some("clf"), read_sample(APACHE));
    assert_eq!(
        status, 200,
        "the 407-byte Apache sample is under the limit: {report}"
    );
    let flushed = server
        .api()
        .metric("apitrail_flushed_rows_total")
        .unwrap_or(0.0);
    assert_eq!(
        flushed, 0.0,
        "flush_max_age_secs = 3600 from the config file must hold the rows in the buffer"
    );

    server.stop();
    assert!(
        store.join("_delta_log").is_dir(),
        "no Delta log under the --store path {}",
        store.display()
    );
    assert!(
        !server.data_dir().join("table").exists(),
        "with --store the data directory must not get a table"
    );
    server.restart();
    assert_eq!(server.count(""), 6, "rows read back from the --store table");
}
