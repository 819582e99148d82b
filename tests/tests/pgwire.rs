//! The PostgreSQL port as real clients see it: psql, psycopg 3, SQLAlchemy,
//! pgJDBC, and the catalog queries BI tools send on connect.
//!
//! Needs `tests/setup.sh` (psql, Java with the PostgreSQL JDBC driver, and
//! the Python drivers in tests/.venv).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use apitrail_tests::{ServerOptions, TestServer, clf_line, poll_until, run_python};
use serde_json::Value;

/// Events with status 200, at paths `/ok/0` ... `/ok/19`.
const OK_EVENTS: usize = 20;
/// Events with status 404, at paths `/missing/0` ... `/missing/9`.
const MISSING_EVENTS: usize = 10;
const TOTAL_EVENTS: usize = OK_EVENTS + MISSING_EVENTS;
/// Rows the prepared statement tests fetch and compare with the HTTP API.
const PREPARED_ROWS: usize = 5;

/// Starts a server and ingests the test events, one second apart.
fn server_with_events() -> TestServer {
    let server = TestServer::start(ServerOptions::quick_flush());
    let mut body = String::new();
    for i in 0..TOTAL_EVENTS {
        let time = format!("10/Oct/2023:13:00:{i:02} +0000");
        let line = if i < OK_EVENTS {
            clf_line(&time, &format!("/ok/{i}"), 200)
        } else {
            clf_line(&time, &format!("/missing/{}", i - OK_EVENTS), 404)
        };
        body.push_str(&line);
    }
    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(status, 200, "ingest failed: {report}");
    assert_eq!(
        server.count(""),
        TOTAL_EVENTS as i64,
        "the HTTP API does not see every ingested event"
    );
    server
}

/// Returns `min(time)` in microseconds since the Unix epoch, from the HTTP API.
fn first_time_micros(server: &TestServer) -> i64 {
    let rows = server.query("SELECT CAST(min(time) AS BIGINT) AS us FROM events");
    rows[0]["us"]
        .as_i64()
        .unwrap_or_else(|| panic!("min(time) as microseconds is not an integer: {rows:?}"))
}

/// Returns the first status-200 rows as `(path, microseconds)`, from the HTTP API.
fn expected_rows(server: &TestServer) -> Vec<(String, i64)> {
    let sql = format!(
        "SELECT path, CAST(time AS BIGINT) AS us FROM events WHERE status = 200 \
         ORDER BY time, path LIMIT {PREPARED_ROWS}"
    );
    let rows = server.query(&sql);
    assert_eq!(rows.len(), PREPARED_ROWS, "HTTP API rows: {rows:?}");
    rows.iter()
        .map(|row| {
            let path = row["path"].as_str().expect("path is text").to_owned();
            let micros = row["us"]
                .as_i64()
                .expect("time as microseconds is an integer");
            (path, micros)
        })
        .collect()
}

fn psql(server: &TestServer, command: &str) -> Output {
    let (host, port) = server
        .pg_addr()
        .rsplit_once(':')
        .expect("the PostgreSQL address has a port");
    Command::new("psql")
        .args([
            "-X", "-w", "-h", host, "-p", port, "-U", "apitrail", "-d", "apitrail",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-c", command])
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null())
        .output()
        .expect("running psql; install it with tests/setup.sh")
}

/// Runs a psql command that must succeed and returns its stdout.
fn psql_ok(server: &TestServer, command: &str) -> String {
    let output = psql(server, command);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "psql -c {command:?} failed with {}\n--- stdout:\n{stdout}\n--- stderr:\n{}\n--- server stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    stdout
}

/// Returns the line of `output` that describes column `name` in a `\d` table.
fn column_line<'a>(output: &'a str, name: &str) -> &'a str {
    output
        .lines()
        .find(|line| line.split('|').next().map(str::trim) == Some(name))
        .unwrap_or_else(|| panic!("no column {name} in:\n{output}"))
}

#[test]
fn psql_dt_lists_tables() {
    let server = server_with_events();
    let tables = psql_ok(&server, "\\dt");
    for table in ["events", "consumer_baselines"] {
        assert!(
            tables
                .lines()
                .any(|line| line.contains(&format!(" {table} "))),
            "\\dt does not list {table}:\n{tables}"
        );
    }
    let views = psql_ok(&server, "\\dv");
    for view in ["endpoints", "consumers", "consumer_activity"] {
        assert!(
            views
                .lines()
                .any(|line| line.contains(&format!(" {view} "))),
            "\\dv does not list {view}:\n{views}"
        );
    }
}

#[test]
fn psql_describe_events() {
    let server = server_with_events();
    let output = psql_ok(&server, "\\d events");
    assert!(
        output.contains("public.events"),
        "\\d events header:\n{output}"
    );
    let cases = [
        ("time", "timestamp with time zone"),
        ("day", "date"),
        ("path", "text"),
        ("status", "integer"),
        ("duration_ms", "double precision"),
        ("request_bytes", "bigint"),
        ("malformed", "boolean"),
    ];
    for (column, type_name) in cases {
        let line = column_line(&output, column);
        assert!(
            line.contains(type_name),
            "\\d events shows {column} as `{line}`, expected {type_name}"
        );
    }
    assert!(
        column_line(&output, "time").contains("not null"),
        "events.time should be NOT NULL:\n{output}"
    );
}

// psql 15's `\d+` header query uses `array(SELECT ... FROM
// pg_catalog.unnest(tc.reloptions))` and `c.reloptions`, and its column
// query calls `col_description()`.
#[test]
fn psql_describe_plus_events() {
    let server = server_with_events();
    let verbose = psql_ok(&server, "\\d+ events");
    assert!(
        verbose.contains("Table \"public.events\""),
        "\\d+ events header:\n{verbose}"
    );
    let header = verbose
        .lines()
        .find(|line| line.trim_start().starts_with("Column"))
        .unwrap_or_else(|| panic!("\\d+ events has no column header:\n{verbose}"));
    for title in ["Type", "Nullable", "Storage", "Description"] {
        assert!(
            header.contains(title),
            "\\d+ events lacks the {title} column: {header}"
        );
    }
    let cases = [
        ("time", "timestamp with time zone", "plain"),
        ("day", "date", "plain"),
        ("path", "text", "extended"),
        ("status", "integer", "plain"),
        ("duration_ms", "double precision", "plain"),
        ("request_bytes", "bigint", "plain"),
        ("malformed", "boolean", "plain"),
    ];
    for (column, type_name, storage) in cases {
        let cells: Vec<&str> = column_line(&verbose, column)
            .split('|')
            .map(str::trim)
            .collect();
        assert_eq!(
            cells.get(1).copied(),
            Some(type_name),
            "\\d+ events type of {column}:\n{verbose}"
        );
        assert!(
            cells.contains(&storage),
            "\\d+ events storage of {column} is not {storage}: {cells:?}"
        );
        assert_eq!(
            cells.last().copied(),
            Some(""),
            "\\d+ events description of {column} should be empty: {cells:?}"
        );
    }
    assert!(
        column_line(&verbose, "time").contains("not null"),
        "events.time should be NOT NULL in \\d+:\n{verbose}"
    );
}

#[test]
fn psql_lists_schemas_and_databases() {
    let server = server_with_events();
    let schemas = psql_ok(&server, "\\dn");
    assert!(
        schemas
            .lines()
            .any(|line| line.trim_start().starts_with("public")),
        "\\dn does not list public:\n{schemas}"
    );
    let databases = psql_ok(&server, "\\l");
    assert!(
        databases
            .lines()
            .any(|line| line.trim_start().starts_with("apitrail")),
        "\\l does not list apitrail:\n{databases}"
    );
}

#[test]
fn psql_counts_match_ingest() {
    let server = server_with_events();
    let output = psql_ok(
        &server,
        "SELECT count(*) AS total, count(*) FILTER (WHERE status = 404) AS missing FROM events",
    );
    let row = output
        .lines()
        .find(|line| line.contains('|'))
        .and_then(|_| output.lines().nth(2))
        .unwrap_or_else(|| panic!("no result row in:\n{output}"));
    let values: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(
        values,
        vec![TOTAL_EVENTS.to_string(), MISSING_EVENTS.to_string()],
        "psql count row in:\n{output}"
    );
}

#[test]
fn psql_rejects_writes() {
    let server = server_with_events();
    let statements = [
        "CREATE TABLE t (a int)",
        "INSERT INTO events (path) VALUES ('/x')",
        "COPY events TO '/tmp/apitrail-pg-copy.csv'",
    ];
    for statement in statements {
        let output = psql(&server, statement);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "psql accepted {statement:?}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            stderr.contains("read-only"),
            "{statement:?} failed without saying the server is read-only: {stderr}"
        );
    }
    assert!(
        !Path::new("/tmp/apitrail-pg-copy.csv").exists(),
        "COPY wrote a file although it was rejected"
    );
    assert_eq!(
        server.count(""),
        TOTAL_EVENTS as i64,
        "a rejected write changed the events table"
    );
}

#[test]
fn psycopg_simple_query() {
    let server = server_with_events();
    let output = run_python(
        "pg_psycopg.py",
        &[
            "simple",
            server.pg_addr(),
            &TOTAL_EVENTS.to_string(),
            &OK_EVENTS.to_string(),
        ],
    );
    assert!(output.contains("ok simple"), "{output}");
}

#[test]
fn psycopg_parameters() {
    let server = server_with_events();
    let first = first_time_micros(&server);
    let output = run_python(
        "pg_psycopg.py",
        &[
            "params",
            server.pg_addr(),
            &OK_EVENTS.to_string(),
            &first.to_string(),
        ],
    );
    assert!(output.contains("ok params"), "{output}");
}

#[test]
fn psycopg_binary_results() {
    let server = server_with_events();
    let first = first_time_micros(&server);
    let output = run_python(
        "pg_psycopg.py",
        &[
            "binary",
            server.pg_addr(),
            &TOTAL_EVENTS.to_string(),
            &first.to_string(),
        ],
    );
    assert!(output.contains("ok binary"), "{output}");
}

#[test]
fn psycopg_prepared_ten_times() {
    let server = server_with_events();
    let expected: Vec<Value> = expected_rows(&server)
        .into_iter()
        .map(|(path, micros)| serde_json::json!([path, micros]))
        .collect();
    let expected = serde_json::to_string(&expected).expect("serialising the expected rows");
    let output = run_python("pg_psycopg.py", &["prepared", server.pg_addr(), &expected]);
    assert!(output.contains("ok prepared"), "{output}");
}

#[test]
fn psycopg_session_statements() {
    let server = server_with_events();
    let output = run_python("pg_psycopg.py", &["session", server.pg_addr()]);
    assert!(output.contains("ok session"), "{output}");
}

#[test]
fn psycopg_version_and_settings() {
    let server = server_with_events();
    let output = run_python("pg_psycopg.py", &["version", server.pg_addr()]);
    assert!(output.contains("ok version"), "{output}");
}

#[test]
fn psycopg_rejects_writes() {
    let server = server_with_events();
    let output = run_python("pg_psycopg.py", &["readonly", server.pg_addr()]);
    assert!(output.contains("ok readonly"), "{output}");
    assert_eq!(
        server.count(""),
        TOTAL_EVENTS as i64,
        "a rejected write changed events"
    );
}

#[test]
fn psycopg_cancel_stops_query() {
    let server = server_with_events();
    let output = run_python("pg_psycopg.py", &["cancel", server.pg_addr()]);
    assert!(output.contains("ok cancel"), "{output}");
    let metrics = pg_metric_lines(&server);
    assert!(
        metrics
            .iter()
            .any(|line| line.contains("outcome=\"cancelled\"")),
        "no cancelled statement in the metrics: {metrics:?}"
    );
}

#[test]
fn disconnect_cancels_query() {
    let server = server_with_events();
    let script = workspace_root().join("tests/clients/pg_psycopg.py");
    let mut child = Command::new(apitrail_tests::python())
        .arg(&script)
        .args(["slow", server.pg_addr()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the slow query client");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("reading the client's first line");
    assert_eq!(
        line.trim(),
        "started",
        "the slow query client did not connect"
    );
    // Let the query start running before the client goes away.
    std::thread::sleep(Duration::from_secs(1));
    child.kill().expect("killing the client");
    child.wait().expect("reaping the client");

    poll_until(
        Duration::from_secs(15),
        "the server to record the disconnected query",
        || {
            pg_metric_lines(&server)
                .iter()
                .any(|line| line.contains("outcome=\"disconnected\""))
                .then_some(())
        },
    );
}

#[test]
fn sqlalchemy_lists_tables_and_queries() {
    let server = server_with_events();
    let output = run_python(
        "pg_sqlalchemy.py",
        &["tables", server.pg_addr(), &TOTAL_EVENTS.to_string()],
    );
    assert!(output.contains("ok sqlalchemy"), "{output}");
}

// SQLAlchemy's get_columns(), which Superset runs on every table, binds
// parameters inside a correlated subquery over pg_sequence.
#[test]
fn sqlalchemy_reflects_columns() {
    let server = server_with_events();
    let output = run_python(
        "pg_sqlalchemy.py",
        &["columns", server.pg_addr(), &TOTAL_EVENTS.to_string()],
    );
    assert!(output.contains("ok sqlalchemy"), "{output}");
}

#[test]
fn jdbc_metadata_and_prepared() {
    let server = server_with_events();
    let expected = expected_rows(&server)
        .into_iter()
        .map(|(path, micros)| format!("{path}={micros}"))
        .collect::<Vec<_>>()
        .join(",");
    let program = workspace_root().join("tests/clients/PgJdbc.java");
    let output = Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(&program)
        .args([server.pg_addr(), &TOTAL_EVENTS.to_string(), &expected])
        .stdin(Stdio::null())
        .output()
        .expect("running java; install Java and the JDBC driver with tests/setup.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ok jdbc"),
        "PgJdbc.java failed with {}\n--- stdout:\n{stdout}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn bi_tool_catalog_queries() {
    let server = server_with_events();
    let dir = workspace_root().join("tests/fixtures/pg_catalog_queries");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the fixture queries in {}",
        dir.display()
    );
    let paths: Vec<String> = files
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    let mut args = vec!["fixtures", server.pg_addr()];
    args.extend(paths.iter().map(String::as_str));
    let output = run_python("pg_psycopg.py", &args);
    assert!(output.contains("ok fixtures"), "{output}");
}

#[test]
fn metrics_count_statements() {
    let server = server_with_events();
    psql_ok(&server, "SELECT 1");
    let lines = pg_metric_lines(&server);
    assert!(
        lines.iter().any(|line| line.contains("protocol=\"simple\"")
            && line.contains("kind=\"select\"")
            && line.contains("outcome=\"ok\"")),
        "no successful simple SELECT in the metrics: {lines:?}"
    );
}

fn pg_metric_lines(server: &TestServer) -> Vec<String> {
    let (status, text) = server.api().get("/metrics");
    assert_eq!(status, 200, "GET /metrics failed: {text}");
    text.lines()
        .filter(|line| line.starts_with("apitrail_pg_queries_total{"))
        .map(str::to_owned)
        .collect()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits inside the workspace")
        .to_path_buf()
}
