//! Per-query limits as clients of each protocol see them: results cut at the
//! row limit, queries over the memory limit or the scan limit rejected with
//! the documented codes, while other queries and ingest keep working.
//!
//! HTTP goes through reqwest and curl, Flight SQL through pyarrow.flight and
//! ADBC (`tests/clients/flight_sql.py`), PostgreSQL through psql and psycopg
//! (`tests/clients/pg_psycopg.py`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use apitrail_tests::{ServerOptions, TestServer, clf_line, run_python};
use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use tempfile::TempDir;

/// Row limit of the servers of the row tests.
const ROW_LIMIT: u64 = 1000;
/// A query with ten times [`ROW_LIMIT`] rows, numbered from 1.
const LONG_SQL: &str = "SELECT value FROM generate_series(1, 10000) AS t(value)";
/// Per-query memory limit of the memory tests: 32 MiB.
const QUERY_MEMORY: u64 = 32 * 1024 * 1024;
/// A hash join whose build side contains 5 million 64-bit integers, about
/// 40 MB before the hash table. A hash join cannot spill, so it fails at
/// [`QUERY_MEMORY`].
const MEMORY_HUNGRY_SQL: &str = "SELECT count(*) AS n FROM generate_series(1, 5000000) AS a(v) \
     JOIN generate_series(1, 5000000) AS b(v) ON a.v = b.v";

/// Starts a server with `toml` as its configuration file. The directory of
/// the file is returned with the server and must outlive it.
fn start_with_config(toml: &str, options: ServerOptions) -> (TestServer, TempDir) {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let path = dir.path().join("apitrail.toml");
    std::fs::write(&path, toml).expect("writing the configuration file");
    let mut options = options;
    options
        .extra_args
        .extend(["--config".to_string(), path.display().to_string()]);
    (TestServer::start(options), dir)
}

/// Sends a query with extra URL parameters and headers, and returns the response unread.
fn send(server: &TestServer, sql: &str, params: &[(&str, &str)]) -> reqwest::blocking::Response {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("the HTTP client builds")
        .post(format!("{}/api/v1/query", server.url()))
        .query(params)
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .unwrap_or_else(|e| panic!("query {sql:?} could not be sent: {e}"))
}

/// Returns the value of the `apitrail-row-limit` header, if there is one.
fn row_limit_header(response: &reqwest::blocking::Response) -> Option<String> {
    response
        .headers()
        .get("apitrail-row-limit")
        .map(|v| v.to_str().expect("the header is text").to_string())
}

/// Runs a JSON query that must return 200 and returns the row-limit header and the body.
fn json_query(server: &TestServer, sql: &str, params: &[(&str, &str)]) -> (Option<String>, Value) {
    let response = send(server, sql, params);
    let status = response.status().as_u16();
    let header = row_limit_header(&response);
    let text = response.text().expect("reading the body");
    assert_eq!(status, 200, "query {sql:?} {params:?} failed: {text}");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the JSON body of {sql:?} does not parse ({e}): {text}"));
    (header, value)
}

fn metric_value(server: &TestServer, key: &str) -> f64 {
    server.api().metric(key).unwrap_or(0.0)
}

#[test]
fn http_json_cut_at_row_limit() {
    let (server, _config) = start_with_config(
        &format!("query_max_rows = {ROW_LIMIT}\n"),
        ServerOptions::no_flush(),
    );

    let (header, body) = json_query(&server, LONG_SQL, &[]);
    assert_eq!(header.as_deref(), Some("1000"), "apitrail-row-limit header");
    let rows = body["rows"]
        .as_array()
        .expect("a limited JSON result has rows");
    assert_eq!(rows.len(), 1000, "rows of a cut result");
    assert_eq!(
        rows[999]["value"], 1000,
        "the rows before the cut, in order"
    );
    assert_eq!(
        body["truncated"], true,
        "the marker of a cut result: {}",
        body["truncated"]
    );
    assert_eq!(body["row_limit"], 1000, "the limit in the body");

    let exact = "SELECT value FROM generate_series(1, 1000) AS t(value)";
    let (_, body) = json_query(&server, exact, &[]);
    assert_eq!(
        body["rows"].as_array().map(Vec::len),
        Some(1000),
        "rows at the limit"
    );
    assert_eq!(
        body["truncated"], false,
        "a result of exactly the limit is whole"
    );

    let truncations = metric_value(
        &server,
        "apitrail_query_truncations_total{protocol=\"http\"}",
    );
    assert_eq!(truncations, 1.0, "one cut counted for HTTP");
}

#[test]
fn http_max_rows_lowers_never_raises() {
    let (server, _config) = start_with_config(
        &format!("query_max_rows = {ROW_LIMIT}\n"),
        ServerOptions::no_flush(),
    );

    let (header, body) = json_query(&server, LONG_SQL, &[("max_rows", "10")]);
    assert_eq!(
        header.as_deref(),
        Some("10"),
        "max_rows=10 lowers the limit"
    );
    assert_eq!(
        body["rows"].as_array().map(Vec::len),
        Some(10),
        "rows with max_rows=10"
    );
    assert_eq!(body["truncated"], true, "cut at 10 rows");

    let (header, body) = json_query(&server, LONG_SQL, &[("max_rows", "5000")]);
    assert_eq!(
        header.as_deref(),
        Some("1000"),
        "max_rows=5000 does not raise the limit"
    );
    assert_eq!(
        body["rows"].as_array().map(Vec::len),
        Some(1000),
        "rows with max_rows=5000"
    );

    let response = send(&server, LONG_SQL, &[("max_rows", "0")]);
    assert_eq!(response.status().as_u16(), 400, "max_rows=0 is invalid");
}

#[test]
fn http_without_limit_keeps_array() {
    let server = TestServer::start(ServerOptions::no_flush());
    let response = send(&server, LONG_SQL, &[]);
    assert_eq!(row_limit_header(&response), None, "no row limit by default");
    let body: Value = response.json().expect("a JSON body");
    assert_eq!(
        body.as_array().map(Vec::len),
        Some(10_000),
        "a whole JSON array"
    );

    let (header, body) = json_query(&server, LONG_SQL, &[("max_rows", "7")]);
    assert_eq!(
        header.as_deref(),
        Some("7"),
        "max_rows applies without a server limit"
    );
    assert_eq!(
        body["rows"].as_array().map(Vec::len),
        Some(7),
        "rows with max_rows=7"
    );
    assert_eq!(body["truncated"], true, "cut at 7 rows");
}

#[test]
fn http_every_format_cut() {
    let (server, _config) = start_with_config(
        &format!("query_max_rows = {ROW_LIMIT}\n"),
        ServerOptions::no_flush(),
    );
    for output in ["jsonl", "csv", "arrow", "parquet"] {
        let response = send(&server, LONG_SQL, &[("output", output)]);
        assert_eq!(response.status().as_u16(), 200, "{output} status");
        assert_eq!(
            row_limit_header(&response).as_deref(),
            Some("1000"),
            "{output} apitrail-row-limit header"
        );
        let trailer = response
            .headers()
            .get(reqwest::header::TRAILER)
            .map(|v| v.to_str().expect("text").to_string());
        assert_eq!(
            trailer.as_deref(),
            Some("apitrail-error, apitrail-truncated"),
            "{output} declares both trailers"
        );
        let body = response.bytes().expect("reading the body").to_vec();
        let rows = match output {
            "jsonl" => String::from_utf8(body).expect("UTF-8").lines().count(),
            "csv" => String::from_utf8(body).expect("UTF-8").lines().count() - 1,
            "arrow" => arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
                .expect("an Arrow stream")
                .map(|batch| batch.expect("every batch decodes").num_rows())
                .sum(),
            _ => parquet_rows_and_footer(body),
        };
        assert_eq!(rows, 1000, "{output} rows of a cut result");
    }
}

/// Reads a Parquet body, checks that its footer records the cut, and returns its row count.
fn parquet_rows_and_footer(body: Vec<u8>) -> usize {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(body))
        .expect("a cut result is a whole Parquet file");
    let metadata = Arc::clone(builder.metadata());
    let pairs: BTreeMap<String, Option<String>> = metadata
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        pairs
            .get("apitrail.truncated")
            .cloned()
            .flatten()
            .as_deref(),
        Some("true"),
        "footer key apitrail.truncated in {pairs:?}"
    );
    assert_eq!(
        pairs
            .get("apitrail.row_limit")
            .cloned()
            .flatten()
            .as_deref(),
        Some("1000"),
        "footer key apitrail.row_limit in {pairs:?}"
    );
    builder
        .build()
        .expect("the Parquet reader builds")
        .map(|batch: Result<RecordBatch, _>| batch.expect("every row group decodes").num_rows())
        .sum()
}

/// curl, as a user runs it: with `TE: trailers` a cut result ends with the
/// last chunk and the `apitrail-truncated` trailer.
#[test]
fn curl_sees_truncated_trailer() {
    let (server, _config) = start_with_config(
        &format!("query_max_rows = {ROW_LIMIT}\n"),
        ServerOptions::no_flush(),
    );
    let request = serde_json::json!({ "sql": LONG_SQL }).to_string();
    let output = Command::new("curl")
        .args(["-sS", "--raw", "-D", "-", "-H", "TE: trailers"])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(&request)
        .arg(format!("{}/api/v1/query?output=csv", server.url()))
        .output()
        .expect("curl runs; install it to run this test");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "curl failed: {text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.starts_with("http/1.1 200"),
        "a cut result is not an error: {}",
        &text[..text.len().min(200)]
    );
    assert!(
        lower.contains("\r\napitrail-row-limit: 1000\r\n"),
        "the row limit header:\n{}",
        &text[..text.len().min(500)]
    );
    let tail = &text[text.len().saturating_sub(200)..];
    assert!(
        tail.ends_with("\r\n0\r\napitrail-truncated: true\r\n\r\n"),
        "the last chunk is followed by the truncated trailer: {tail:?}"
    );
}

#[test]
fn flight_cut_ends_with_metadata() {
    let (server, _config) = start_with_config(
        &format!("query_max_rows = {ROW_LIMIT}\n"),
        ServerOptions::no_flush(),
    );
    let stdout = run_python(
        "flight_sql.py",
        &["truncated", server.flight_url(), &ROW_LIMIT.to_string()],
    );
    let result: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("flight_sql.py truncated printed no JSON ({e}):\n{stdout}"));

    let long = &result["long"];
    assert_eq!(long["rows"], 1000, "rows of a cut Flight result: {long}");
    assert_eq!(long["last"], 1000, "the last row before the cut: {long}");
    assert_eq!(
        long["marker_chunks"], 1,
        "read_chunk() returns one chunk of no rows with the metadata: {long}"
    );
    assert_eq!(
        long["metadata"],
        serde_json::json!([{"truncated": true, "row_limit": 1000}]),
        "the app_metadata of the last message: {long}"
    );
    let exact = &result["exact"];
    assert_eq!(
        exact["rows"], 1000,
        "rows of a result at the limit: {exact}"
    );
    assert_eq!(
        exact["metadata"],
        serde_json::json!([]),
        "a whole result has no marker: {exact}"
    );
    assert_eq!(
        result["read_all_rows"], 1000,
        "read_all() of a cut result: {result}"
    );
    assert_eq!(
        result["adbc"]["rows"], 1000,
        "ADBC reads a cut result: {}",
        result["adbc"]
    );
    let truncations = metric_value(
        &server,
        "apitrail_query_truncations_total{protocol=\"flight\"}",
    );
    assert!(
        truncations >= 3.0,
        "three cut Flight results counted, got {truncations}"
    );
}

#[test]
fn postgres_cut_sends_warning() {
    let (server, _config) = start_with_config(
        &format!("query_max_rows = {ROW_LIMIT}\n"),
        ServerOptions::no_flush(),
    );
    let stdout = run_python(
        "pg_psycopg.py",
        &["truncated", server.pg_addr(), &ROW_LIMIT.to_string()],
    );
    let json_line = stdout
        .lines()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("pg_psycopg.py truncated printed no JSON:\n{stdout}"));
    let result: Value = serde_json::from_str(json_line).expect("the scenario prints JSON");

    for protocol in ["extended", "simple"] {
        let entry = &result[protocol];
        assert_eq!(entry["rows"], 1000, "{protocol} rows: {entry}");
        assert_eq!(entry["last"], 1000, "{protocol} last row: {entry}");
        assert_eq!(
            entry["status"], "SELECT 1000",
            "{protocol} CommandComplete: {entry}"
        );
        let notices = entry["notices"].as_array().expect("notices is a list");
        assert_eq!(notices.len(), 1, "{protocol} notices: {entry}");
        assert_eq!(
            notices[0]["severity"], "WARNING",
            "{protocol} notice severity"
        );
        assert_eq!(
            notices[0]["sqlstate"], "01000",
            "{protocol} notice SQLSTATE"
        );
        let message = notices[0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("1000 rows") && message.contains("query_max_rows"),
            "{protocol} notice names the limit and the setting: {message}"
        );
    }
    assert_eq!(result["exact"]["rows"], 1000, "rows at the limit: {result}");
    assert_eq!(
        result["exact"]["notices"],
        serde_json::json!([]),
        "a whole result sends no warning"
    );
    assert_eq!(result["after"], 42, "the connection works after a cut");

    let (host, port) = server.pg_addr().rsplit_once(':').expect("host:port");
    let output = Command::new("psql")
        .args([
            "-X", "-w", "-h", host, "-p", port, "-U", "apitrail", "-d", "apitrail",
        ])
        .args(["-At", "-v", "ON_ERROR_STOP=1", "-c", LONG_SQL])
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null())
        .output()
        .expect("running psql; install it with tests/setup.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "psql failed: {stderr}");
    assert_eq!(
        stdout.lines().count(),
        1000,
        "psql prints the rows up to the limit"
    );
    assert!(
        stderr.contains("WARNING:") && stderr.contains("truncated to 1000 rows"),
        "psql prints the warning on stderr: {stderr}"
    );
}

/// Parquet bytes of the committed `events` files, by the `day=` folder they sit in.
fn table_bytes_by_day(data_dir: &Path, files: &[std::path::PathBuf]) -> BTreeMap<String, u64> {
    let table = data_dir.join("table");
    let mut days = BTreeMap::new();
    for file in files {
        let Ok(relative) = file.strip_prefix(&table) else {
            continue;
        };
        let Some(day) = relative
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .find(|c| c.starts_with("day="))
        else {
            continue;
        };
        if file.extension().is_some_and(|ext| ext == "parquet") {
            let size = std::fs::metadata(file).expect("a data file").len();
            *days.entry(day.to_string()).or_insert(0) += size;
        }
    }
    days
}

/// Ingests 300 calls on each of 1 and 2 March 2024, waits for the flush,
/// stops the server and restarts it with `query_max_scan_bytes` between the
/// size of one day's files and that of both. Returns the server, the
/// configuration directory, the bytes of both days and the limit.
fn server_with_two_days() -> (TestServer, TempDir, u64, u64) {
    let mut server = TestServer::start(ServerOptions::quick_flush());
    let mut body = String::new();
    for day in ["01", "02"] {
        for i in 0..300 {
            let time = format!("{day}/Mar/2024:12:{:02}:{:02} +0000", i / 60, i % 60);
            body.push_str(&clf_line(&time, &format!("/v1/orders/{i}"), 200));
        }
    }
    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(status, 200, "ingest failed: {report}");
    server.api().wait_for_flushed_rows(600);
    server.api().wait_for_empty_buffer();
    server.stop();

    let days = table_bytes_by_day(server.data_dir(), &server.data_files());
    assert_eq!(days.len(), 2, "one partition per day: {days:?}");
    let total: u64 = days.values().sum();
    let largest = days.values().copied().max().unwrap_or_default();
    let limit = largest + 1;
    assert!(
        limit < total,
        "the limit {limit} sits between one day and both ({total})"
    );

    let config = tempfile::tempdir().expect("creating a temporary directory");
    let path = config.path().join("apitrail.toml");
    std::fs::write(&path, format!("query_max_scan_bytes = {limit}\n")).expect("writing the config");
    let mut options = ServerOptions::quick_flush();
    options
        .extra_args
        .extend(["--config".to_string(), path.display().to_string()]);
    server.restart_with(options);
    (server, config, total, limit)
}

/// Scans both days: `status > 0` keeps the scan in the plan, where a bare
/// `count(*)` could be computed from file statistics.
const BOTH_DAYS_SQL: &str = "SELECT count(*) AS n FROM events WHERE status > 0";
const ONE_DAY_SQL: &str =
    "SELECT count(*) AS n FROM events WHERE status > 0 AND time >= '2024-03-02T00:00:00Z'";

#[test]
fn scan_limit_rejects_on_every_protocol() {
    let (server, _config, total, limit) = server_with_two_days();

    let (status, body) = server.query_status(BOTH_DAYS_SQL);
    assert_eq!(status, 422, "HTTP status of a scan over the limit: {body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("{total} bytes")) && message.contains(&format!("{limit} bytes")),
        "the message states the scan size {total} and the limit {limit}: {message}"
    );
    assert!(
        message.contains("time range"),
        "the message suggests narrowing the time range: {message}"
    );
    let rows = server.query(ONE_DAY_SQL);
    assert_eq!(rows[0]["n"], 300, "one day is under the limit: {rows:?}");

    let explain = server.query(&format!("EXPLAIN VERBOSE {BOTH_DAYS_SQL}"));
    let rejection = explain
        .iter()
        .find(|row| {
            row["plan_type"]
                .as_str()
                .is_some_and(|kind| kind.contains("apitrail_scan_bytes_limit"))
        })
        .unwrap_or_else(|| panic!("EXPLAIN VERBOSE shows the rule's rejection: {explain:?}"));
    assert!(
        rejection["plan"]
            .as_str()
            .unwrap_or_default()
            .contains("would scan"),
        "the EXPLAIN VERBOSE row carries the message: {rejection}"
    );

    let stdout = run_python(
        "flight_sql.py",
        &["failures", server.flight_url(), BOTH_DAYS_SQL, ONE_DAY_SQL],
    );
    let flight: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("flight_sql.py failures printed no JSON ({e}):\n{stdout}"));
    let rejected = &flight[BOTH_DAYS_SQL];
    let flight_message = rejected["message"].as_str().unwrap_or_default();
    assert!(
        flight_message.contains("would scan") && flight_message.contains(&format!("{total} bytes")),
        "Flight SQL reports the scan limit: {rejected}"
    );
    assert!(
        flight_message.contains("RESOURCE_EXHAUSTED") || flight_message.contains("grpc_status:8"),
        "Flight SQL reports RESOURCE_EXHAUSTED: {rejected}"
    );
    assert_eq!(
        flight[ONE_DAY_SQL],
        Value::Null,
        "one day over Flight SQL: {flight}"
    );

    let stdout = run_python(
        "pg_psycopg.py",
        &["errors", server.pg_addr(), BOTH_DAYS_SQL, ONE_DAY_SQL],
    );
    let pg: Value = stdout
        .lines()
        .find(|line| line.starts_with('{'))
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("pg_psycopg.py errors printed no JSON:\n{stdout}"));
    assert_eq!(
        pg[BOTH_DAYS_SQL]["sqlstate"], "54000",
        "SQLSTATE program_limit_exceeded: {}",
        pg[BOTH_DAYS_SQL]
    );
    assert_eq!(
        pg[ONE_DAY_SQL],
        Value::Null,
        "one day over PostgreSQL: {pg}"
    );
    assert_eq!(pg["after"], 42, "the connection works after the rejection");
}

#[test]
fn memory_limit_fails_one_query_only() {
    let (server, _config) = start_with_config(
        &format!("query_max_memory_bytes = {QUERY_MEMORY}\n"),
        ServerOptions::quick_flush(),
    );
    let api = server.api().clone();
    let hungry = std::thread::spawn(move || api.query_status(MEMORY_HUNGRY_SQL));

    // Run while the hungry query builds its hash table, or just after it failed.
    let small = server.query("SELECT count(*) AS n FROM generate_series(1, 100000) AS t(v)");
    assert_eq!(small[0]["n"], 100_000, "a small query succeeds: {small:?}");
    let line = clf_line("01/Mar/2024:12:00:00 +0000", "/v1/orders/1", 200);
    let (status, report) = server.ingest(Some("clf"), line);
    assert_eq!(status, 200, "ingest succeeds: {report}");

    let (status, body) = hungry.join().expect("the query thread does not panic");
    assert_eq!(
        status, 422,
        "HTTP status of a query over its memory limit: {body}"
    );
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("query_max_memory_bytes") && message.contains(&QUERY_MEMORY.to_string()),
        "the message names the setting and its value: {message}"
    );
    assert_eq!(server.count(""), 1, "the ingested call is queryable");

    let stdout = run_python(
        "flight_sql.py",
        &["failures", server.flight_url(), MEMORY_HUNGRY_SQL],
    );
    let flight: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("flight_sql.py failures printed no JSON ({e}):\n{stdout}"));
    let flight_message = flight[MEMORY_HUNGRY_SQL]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        flight_message.contains("query_max_memory_bytes"),
        "Flight SQL reports the memory limit: {flight}"
    );
    assert!(
        flight_message.contains("RESOURCE_EXHAUSTED") || flight_message.contains("grpc_status:8"),
        "Flight SQL reports RESOURCE_EXHAUSTED: {flight}"
    );

    let stdout = run_python(
        "pg_psycopg.py",
        &["errors", server.pg_addr(), MEMORY_HUNGRY_SQL],
    );
    let pg: Value = stdout
        .lines()
        .find(|line| line.starts_with('{'))
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("pg_psycopg.py errors printed no JSON:\n{stdout}"));
    let entry = &pg[MEMORY_HUNGRY_SQL];
    assert_eq!(
        entry["sqlstate"], "53200",
        "SQLSTATE out_of_memory: {entry}"
    );
    assert!(
        entry["message"]
            .as_str()
            .unwrap_or_default()
            .contains("query_max_memory_bytes"),
        "PostgreSQL reports the memory limit: {entry}"
    );
    assert_eq!(pg["after"], 42, "the connection works after the failure");
}
