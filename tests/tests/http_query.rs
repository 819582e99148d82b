//! `POST /api/v1/query` as a client sees it: Parquet output, errors after the
//! result started, EXPLAIN, large results in bounded memory, and the OpenAPI
//! document of the whole API.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::Command;
use std::sync::Arc;

use apitrail_tests::{ServerOptions, TestServer, realdata, run_python};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;
use serde_json::Value;

const NGINX: &str = "nginx/beats_nginx_access.log";

/// A query whose first batches succeed and whose batch with `value` 290000
/// raises an integer division by zero. With 8192 rows per batch that is the
/// 36th of 37 batches, so the response has started long before.
const FAILING_SQL: &str =
    "SELECT value, 1 / (value - 290000) AS ratio FROM generate_series(1, 300000)";
/// Values of the batch that fails, none of which may be sent.
const FAILING_BATCH: std::ops::RangeInclusive<i64> = 286_721..=294_912;

/// Text of DataFusion's error for an integer division by zero.
const DIVIDE_BY_ZERO: &str = "Divide by zero";

fn read_sample(relative: &str) -> Vec<u8> {
    std::fs::read(realdata(relative)).expect("reading a real log sample")
}

/// Sends a query and returns the response without reading its body.
fn send_query(
    server: &TestServer,
    sql: &str,
    output: Option<&str>,
    accept: Option<&str>,
) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .expect("the HTTP client builds");
    let mut request = client
        .post(format!("{}/api/v1/query", server.url()))
        .json(&serde_json::json!({ "sql": sql }));
    if let Some(output) = output {
        request = request.query(&[("output", output)]);
    }
    if let Some(accept) = accept {
        request = request.header(reqwest::header::ACCEPT, accept);
    }
    request
        .send()
        .unwrap_or_else(|e| panic!("query {sql:?} could not be sent: {e}"))
}

/// Runs a query that must return 200 and returns the content type and the body.
fn query_ok(server: &TestServer, sql: &str, output: Option<&str>) -> (String, Vec<u8>) {
    let (status, content_type, body) = server.api().query_output(sql, output);
    assert_eq!(
        status,
        200,
        "query {sql:?} (output {output:?}) failed: {}",
        String::from_utf8_lossy(&body)
    );
    (content_type, body)
}

fn read_parquet(body: Vec<u8>) -> (Arc<ParquetMetaData>, Vec<RecordBatch>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(body))
        .expect("the body is a Parquet file with a footer");
    let metadata = Arc::clone(builder.metadata());
    let batches = builder
        .build()
        .expect("the Parquet reader builds")
        .collect::<Result<Vec<_>, _>>()
        .expect("every row group of the Parquet body decodes");
    (metadata, batches)
}

fn read_arrow(body: Vec<u8>) -> Vec<RecordBatch> {
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
        .expect("the body is an Arrow IPC stream")
        .collect::<Result<Vec<_>, _>>()
        .expect("every Arrow batch decodes")
}

/// Reads `VmRSS` of a process from `/proc/<pid>/status`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap_or_else(|| panic!("{path} has no VmRSS line:\n{status}"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("VmRSS line {line:?} has no number"));
    kib * 1024
}

#[test]
fn parquet_output() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    let sql = "SELECT time, status, path, referer, response_bytes FROM events ORDER BY time";

    let (content_type, body) = query_ok(&server, sql, Some("parquet"));
    assert_eq!(
        content_type, "application/vnd.apache.parquet",
        "content type of Parquet"
    );
    assert!(
        body.starts_with(b"PAR1") && body.ends_with(b"PAR1"),
        "a Parquet file starts and ends with PAR1"
    );
    let (metadata, batches) = read_parquet(body);
    let compression = metadata.row_group(0).column(0).compression();
    assert!(
        matches!(compression, parquet::basic::Compression::ZSTD(_)),
        "columns are zstd-compressed, found {compression:?}"
    );

    // The Arrow stream of the same query has the engine's types and values.
    let (_, arrow_body) = query_ok(&server, sql, Some("arrow"));
    let expected = read_arrow(arrow_body);
    let expected = arrow::compute::concat_batches(&expected[0].schema(), &expected)
        .expect("the Arrow batches share a schema");
    let parquet = arrow::compute::concat_batches(&batches[0].schema(), &batches)
        .expect("the Parquet batches share a schema");
    assert_eq!(parquet.num_rows(), 13, "rows of the sample in Parquet");
    for (index, field) in expected.schema().fields().iter().enumerate() {
        let actual = parquet.schema().field(index).clone();
        assert_eq!(
            (actual.name(), actual.data_type()),
            (field.name(), field.data_type()),
            "column {index} in Parquet against Arrow"
        );
        assert_eq!(
            parquet.column(index).to_data(),
            expected.column(index).to_data(),
            "values of column {:?} in Parquet against Arrow",
            field.name()
        );
    }

    assert_eq!(
        parquet.schema().field(0).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "time keeps microseconds and UTC"
    );
    let first_time = parquet
        .column(0)
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
        .value(0);
    assert_eq!(
        first_time, 1_477_399_773_000_000,
        "first time is 2016-10-25T12:49:33Z"
    );
    let paths = parquet.column(2).as_string::<i32>();
    assert_eq!(paths.value(1), "/favicon.ico", "path of the second row");
    assert!(parquet.column(3).is_null(0), "a NULL referer stays NULL");
}

#[test]
fn parquet_by_accept_header() {
    let server = TestServer::start(ServerOptions::no_flush());
    let response = send_query(
        &server,
        "SELECT 42 AS answer",
        None,
        Some("application/vnd.apache.parquet"),
    );
    assert_eq!(response.status().as_u16(), 200, "Accept: parquet");
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "application/vnd.apache.parquet");
    let body = response.bytes().expect("reading the body").to_vec();
    let (_, batches) = read_parquet(body);
    let answer = batches[0].column(0).as_primitive::<Int64Type>().value(0);
    assert_eq!(answer, 42, "the one value of the result");
}

/// A result of 2.5 million rows in Parquet is cut into row groups of at most
/// 1048576 rows, and every row arrives.
#[test]
fn parquet_row_groups() {
    let server = TestServer::start(ServerOptions::no_flush());
    let sql = "SELECT value FROM generate_series(1, 2500000)";
    let (_, body) = query_ok(&server, sql, Some("parquet"));
    let (metadata, batches) = read_parquet(body);

    let row_groups: Vec<i64> = metadata
        .row_groups()
        .iter()
        .map(|group| group.num_rows())
        .collect();
    assert_eq!(
        row_groups,
        vec![1_048_576, 1_048_576, 402_848],
        "rows per row group"
    );
    let mut sum: i64 = 0;
    for batch in &batches {
        let values = batch.column(0).as_primitive::<Int64Type>();
        sum += values
            .iter()
            .map(|v| v.expect("no NULL values"))
            .sum::<i64>();
    }
    assert_eq!(
        sum,
        2_500_000 * 2_500_001 / 2,
        "sum of the values 1..=2500000"
    );
}

/// Checks that the response of [`FAILING_SQL`] started as a 200.
fn failing_query(server: &TestServer, output: &str) -> Vec<u8> {
    let response = send_query(server, FAILING_SQL, Some(output), None);
    assert_eq!(
        response.status().as_u16(),
        200,
        "the {output} response starts before the error"
    );
    let trailer = response
        .headers()
        .get(reqwest::header::TRAILER)
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        trailer.as_deref(),
        Some("apitrail-error"),
        "the {output} response declares its error trailer"
    );
    response
        .bytes()
        .unwrap_or_else(|e| panic!("the {output} body must end cleanly, not break: {e}"))
        .to_vec()
}

/// Splits a text body into its lines, and returns the last one, which must
/// not end with a line feed.
fn unterminated_last_line(body: &[u8], output: &str) -> (Vec<String>, String) {
    let text = String::from_utf8(body.to_vec()).expect("the body is UTF-8");
    assert!(
        !text.ends_with('\n'),
        "a failed {output} result must not end with a line feed; it ends with {:?}",
        &text[text.len().saturating_sub(200)..]
    );
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let last = lines.pop().expect("split returns at least one piece");
    (lines, last)
}

fn assert_error_object(line: &str, output: &str) {
    let value: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("the last {output} line {line:?} is not JSON: {e}"));
    let message = value["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(DIVIDE_BY_ZERO),
        "the last {output} line must carry the error: {line}"
    );
}

#[test]
fn json_error_after_start() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = failing_query(&server, "json");
    assert!(
        serde_json::from_slice::<Value>(&body).is_err(),
        "a failed JSON result must not parse as a whole"
    );
    let (lines, last) = unterminated_last_line(&body, "json");
    assert_error_object(&last, "json");

    let rows_text = format!("{}]", lines.join("\n"));
    let rows: Vec<Value> = serde_json::from_str(&rows_text)
        .expect("the body before the error line is a JSON array once closed");
    assert!(
        !rows.is_empty(),
        "rows before the failing batch arrive in full"
    );
    let sent_from_failing_batch: Vec<i64> = rows
        .iter()
        .filter_map(|row| row["value"].as_i64())
        .filter(|value| FAILING_BATCH.contains(value))
        .collect();
    assert!(
        sent_from_failing_batch.is_empty(),
        "rows of the failing batch were sent: {:?}",
        &sent_from_failing_batch[..sent_from_failing_batch.len().min(5)]
    );
}

#[test]
fn jsonl_error_after_start() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = failing_query(&server, "jsonl");
    let (lines, last) = unterminated_last_line(&body, "jsonl");
    assert_error_object(&last, "jsonl");
    assert!(!lines.is_empty(), "rows before the failing batch arrive");
    for line in &lines {
        let row: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("row line {line:?} is not JSON: {e}"));
        assert!(row["ratio"].is_i64(), "every row line is a row: {line}");
    }
}

#[test]
fn csv_error_after_start() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = failing_query(&server, "csv");
    let (lines, last) = unterminated_last_line(&body, "csv");
    assert_eq!(lines[0], "value,ratio", "the CSV header");
    assert!(lines.len() > 1, "rows before the failing batch arrive");
    assert!(
        last.starts_with("\"apitrail-error: ") && last.ends_with('"'),
        "the last CSV line is one quoted field with the error: {last:?}"
    );
    assert!(
        last.contains(DIVIDE_BY_ZERO),
        "the CSV error line names the error: {last:?}"
    );
}

#[test]
fn arrow_error_after_start() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = failing_query(&server, "arrow");
    let needle = b"apitrail-error: ";
    let at = body
        .windows(needle.len())
        .rposition(|w| w == needle)
        .expect("the Arrow body carries the error text");
    let message = String::from_utf8_lossy(&body[at..]);
    assert!(
        message.contains(DIVIDE_BY_ZERO),
        "the Arrow error text names the error: {message:?}"
    );

    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
        .expect("the stream starts with its schema");
    let mut rows = 0;
    let mut error = None;
    for batch in reader {
        match batch {
            Ok(batch) => rows += batch.num_rows(),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(rows > 0, "batches before the failure decode");
    assert!(
        error.is_some(),
        "an Arrow reader must raise on a failed stream instead of ending after {rows} rows"
    );
}

#[test]
fn parquet_error_after_start() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = failing_query(&server, "parquet");
    assert!(body.starts_with(b"PAR1"), "the Parquet file had started");
    assert!(
        !body.ends_with(b"PAR1"),
        "a failed Parquet result must have no footer"
    );
    let text = String::from_utf8_lossy(&body);
    let last_line = text
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or_default();
    assert!(
        last_line.starts_with("apitrail-error: ") && last_line.contains(DIVIDE_BY_ZERO),
        "the Parquet body ends with the error line: {last_line:?}"
    );
    assert!(
        ParquetRecordBatchReaderBuilder::try_new(Bytes::from(body)).is_err(),
        "a Parquet reader must reject the failed file"
    );
}

/// curl, as a user runs it: with `TE: trailers` the raw chunked body shows the
/// error ending and then the `apitrail-error` trailer after the last chunk.
#[test]
fn curl_sees_error_trailer() {
    let server = TestServer::start(ServerOptions::no_flush());
    let request = serde_json::json!({ "sql": FAILING_SQL }).to_string();
    let output = Command::new("curl")
        .args(["-sS", "--raw", "-D", "-", "-H", "TE: trailers"])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(&request)
        .arg(format!("{}/api/v1/query?output=jsonl", server.url()))
        .output()
        .expect("curl runs; install it to run this test");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "curl failed ({}): {}\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.starts_with("http/1.1 200"),
        "status line: {}",
        &text[..text.len().min(200)]
    );
    assert!(
        lower.contains("\r\ntrailer: apitrail-error\r\n"),
        "the headers declare the trailer:\n{}",
        &text[..text.len().min(500)]
    );
    assert!(
        lower.contains("\r\ntransfer-encoding: chunked\r\n"),
        "the result is sent in chunks"
    );
    let tail = &text[text.len().saturating_sub(400)..];
    let trailer_at = tail
        .find("\r\n0\r\napitrail-error: ")
        .unwrap_or_else(|| panic!("the last chunk is followed by the trailer: {tail:?}"));
    let trailer = &tail[trailer_at..];
    assert!(
        trailer.contains(DIVIDE_BY_ZERO) && trailer.ends_with("\r\n\r\n"),
        "the trailer carries the message and ends the message: {trailer:?}"
    );
    assert!(
        tail[..trailer_at].contains("{\"error\":"),
        "the error line comes in the last data chunk: {tail:?}"
    );
}

/// A successful result ends with the zero-size chunk and no trailer.
#[test]
fn curl_clean_end_has_no_trailer() {
    let server = TestServer::start(ServerOptions::no_flush());
    let output = Command::new("curl")
        .args(["-sS", "--raw", "-H", "TE: trailers"])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(r#"{"sql": "SELECT 1 AS a"}"#)
        .arg(format!("{}/api/v1/query?output=csv", server.url()))
        .output()
        .expect("curl runs; install it to run this test");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "curl failed: {text}");
    assert!(
        text.ends_with("\r\n0\r\n\r\n"),
        "a complete result ends with the last chunk and no trailer: {text:?}"
    );
    assert!(!text.contains("apitrail-error"), "no error: {text:?}");
}

#[test]
fn explain_plan() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    let rows = server.query("EXPLAIN SELECT status, count(*) AS n FROM events GROUP BY status");
    let plan_types: Vec<&str> = rows
        .iter()
        .map(|row| row["plan_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        plan_types,
        ["logical_plan", "physical_plan"],
        "EXPLAIN rows: {rows:?}"
    );
    let logical = rows[0]["plan"].as_str().unwrap_or_default();
    assert!(
        logical.contains("Aggregate") && logical.contains("events"),
        "the logical plan names the aggregate and the table:\n{logical}"
    );

    let (_, body) = query_ok(&server, "EXPLAIN SELECT count(*) FROM events", Some("csv"));
    let text = String::from_utf8(body).expect("CSV is UTF-8");
    assert!(
        text.starts_with("plan_type,plan\n") && text.contains("physical_plan,"),
        "EXPLAIN in CSV has the plan columns:\n{text}"
    );
}

#[test]
fn explain_analyze_metrics() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(Some("clf"), read_sample(NGINX));
    let rows = server.query("EXPLAIN ANALYZE SELECT status, count(*) FROM events GROUP BY status");
    let plan_types: Vec<&str> = rows
        .iter()
        .map(|row| row["plan_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        plan_types,
        ["Plan with Metrics"],
        "EXPLAIN ANALYZE rows: {rows:?}"
    );
    let plan = rows[0]["plan"].as_str().unwrap_or_default();
    assert!(
        plan.contains("output_rows="),
        "EXPLAIN ANALYZE shows the rows each operator produced:\n{plan}"
    );
    assert!(
        plan.contains("elapsed_compute="),
        "EXPLAIN ANALYZE shows compute time:\n{plan}"
    );

    let (_, body) = query_ok(
        &server,
        "EXPLAIN ANALYZE SELECT count(*) FROM events",
        Some("jsonl"),
    );
    let text = String::from_utf8(body).expect("JSON lines are UTF-8");
    let row: Value = serde_json::from_str(text.trim_end()).expect("one JSON line");
    assert!(
        row["plan"]
            .as_str()
            .unwrap_or_default()
            .contains("output_rows="),
        "EXPLAIN ANALYZE in JSON lines: {text}"
    );
}

#[test]
fn explain_of_writes_rejected() {
    let server = TestServer::start(ServerOptions::no_flush());
    let target = server.scratch_dir().join("explain-copy.csv");
    let statements = [
        (
            "EXPLAIN INSERT INTO events (status) VALUES (200)".to_string(),
            "Insert",
        ),
        (
            "EXPLAIN ANALYZE INSERT INTO events (status) VALUES (200)".to_string(),
            "Insert",
        ),
        (
            "EXPLAIN CREATE TABLE t AS SELECT 1 AS a".to_string(),
            "CreateMemoryTable",
        ),
        ("EXPLAIN DELETE FROM events".to_string(), "Delete"),
        (
            format!(
                "EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{}'",
                target.display()
            ),
            "COPY",
        ),
    ];
    for (sql, kind) in &statements {
        let (status, body) = server.query_status(sql);
        assert_eq!(status, 400, "{sql:?} must get 400: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("read-only") && message.contains(kind),
            "the error for {sql:?} should say SQL is read-only and name {kind}: {body}"
        );
    }
    assert!(
        !target.exists(),
        "EXPLAIN ANALYZE COPY wrote {}",
        target.display()
    );
    assert_eq!(server.count(""), 0, "no event was inserted");
}

/// Streams a result of about 400 MiB of CSV and checks that the server's
/// resident memory stays far below the size of the result.
#[test]
fn large_result_bounded_memory() {
    let server = TestServer::start(ServerOptions::no_flush());
    let pid = server.pid();
    let before = resident_bytes(pid);
    let sql = "SELECT value, repeat('x', 200) AS pad FROM generate_series(1, 2000000)";
    let mut response = send_query(&server, sql, Some("csv"), None);
    assert_eq!(response.status().as_u16(), 200, "the large query starts");

    let mut buffer = vec![0u8; 1 << 20];
    let mut received: u64 = 0;
    let mut line_feeds: u64 = 0;
    let mut peak = before;
    let mut next_sample: u64 = 0;
    let mut last_byte = 0u8;
    loop {
        let read = response.read(&mut buffer).expect("reading the CSV body");
        if read == 0 {
            break;
        }
        line_feeds += buffer[..read].iter().filter(|&&b| b == b'\n').count() as u64;
        last_byte = buffer[read - 1];
        received += read as u64;
        if received >= next_sample {
            peak = peak.max(resident_bytes(pid));
            next_sample += 16 << 20;
        }
    }
    let row_bytes = 200 + 2 + 7; // the padding, two separators and a value of up to 7 digits
    assert!(
        received > 2_000_000 * (row_bytes - 6),
        "the whole result arrived: {received} bytes"
    );
    assert_eq!(line_feeds, 2_000_001, "a header and 2 million rows");
    assert_eq!(last_byte, b'\n', "the result ended cleanly");

    // Holding the result would take at least its 400 MiB of text. Streaming
    // keeps a few batches of 8192 rows (about 1.7 MB each) at a time; the
    // 200 MiB allowance covers the allocator keeping freed pages.
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 200 << 20,
        "resident memory grew by {} MiB (from {} MiB to {} MiB) while streaming {} MiB",
        growth >> 20,
        before >> 20,
        peak >> 20,
        received >> 20
    );
}

/// Reads the routes of the server from the list in its 404 body.
fn served_routes(server: &TestServer) -> BTreeSet<String> {
    let (status, body) = server.api().get("/no-such-route");
    assert_eq!(status, 404, "unknown path: {body}");
    let value: Value = serde_json::from_str(&body).expect("the 404 body is JSON");
    value["routes"]
        .as_array()
        .unwrap_or_else(|| panic!("the 404 body lists the routes: {body}"))
        .iter()
        .map(|route| route.as_str().expect("routes are strings").to_string())
        .collect()
}

/// Collects every `$ref` value in a JSON document.
fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => refs.push(target.clone()),
                    _ => collect_refs(item, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[test]
fn openapi_covers_routes() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (status, body) = server.api().get("/api/v1/openapi.json");
    assert_eq!(status, 200, "GET /api/v1/openapi.json: {body}");
    let document: Value = serde_json::from_str(&body).expect("the OpenAPI document is JSON");
    assert_eq!(document["openapi"], "3.1.0", "OpenAPI version");

    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths object") {
        for method in item.as_object().expect("path item object").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let served = served_routes(&server);
    assert_eq!(
        documented, served,
        "the OpenAPI document must list exactly the routes the server serves"
    );

    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty(), "the document uses shared schemas");
    for target in &refs {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target:?}"));
        assert!(
            document["components"]["schemas"].get(name).is_some(),
            "$ref {target:?} names a schema that is not defined"
        );
    }

    // Every documented operation reaches its handler: the router returns
    // neither its 404 nor 405, even for an empty request.
    let client = reqwest::blocking::Client::new();
    for route in &served {
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let response = client
            .request(method, format!("{}{path}", server.url()))
            .send()
            .unwrap_or_else(|e| panic!("{route}: {e}"));
        let status = response.status().as_u16();
        assert!(
            status != 404 && status != 405,
            "{route} is documented but answered {status}"
        );
    }
}

/// The report of an ingest and the health body match their schemas' required fields.
#[test]
fn openapi_schemas_match_bodies() {
    let server = TestServer::start(ServerOptions::no_flush());
    let (_, body) = server.api().get("/api/v1/openapi.json");
    let document: Value = serde_json::from_str(&body).expect("the OpenAPI document is JSON");
    let schemas = &document["components"]["schemas"];

    let (status, report) = server.ingest(Some("clf"), read_sample(NGINX));
    assert_eq!(status, 200, "ingest of the sample: {report}");
    let (status, health) = server.api().get("/health");
    assert_eq!(status, 200, "health");
    let health: Value = serde_json::from_str(&health).expect("health is JSON");
    let (_, specs) = server.api().get("/api/v1/specs");
    let specs: Value = serde_json::from_str(&specs).expect("the spec list is JSON");
    let (_, error) = server.query_status("SELEC 1");

    for (schema, value) in [
        ("IngestReport", &report),
        ("Health", &health),
        ("SpecList", &specs),
        ("Error", &error),
    ] {
        let properties = schemas[schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {schema} has properties"));
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("the {schema} body is an object: {value}"));
        for required in schemas[schema]["required"].as_array().into_iter().flatten() {
            let name = required.as_str().expect("required names are strings");
            assert!(
                object.contains_key(name),
                "the {schema} body lacks required {name:?}: {value}"
            );
        }
        for key in object.keys() {
            assert!(
                properties.contains_key(key),
                "the {schema} body has {key:?}, which the schema does not describe: {value}"
            );
        }
    }
}

/// Validates the served document with the openapi-spec-validator package,
/// installed into tests/.venv by tests/setup.sh.
#[test]
fn openapi_spec_validator() {
    let server = TestServer::start(ServerOptions::no_flush());
    let stdout = run_python("validate_openapi.py", &[server.url()]);
    assert!(
        stdout.starts_with("valid OpenAPI 3.1.0"),
        "validator output: {stdout}"
    );
}
