//! The `apitrail import` and `apitrail query` commands, through a server and on a data directory.

use std::path::Path;
use std::process::Output;

use apitrail_tests::{ServerOptions, TestServer, realdata, run_cli};

const NGINX: &str = "nginx/beats_nginx_access.log";
const ALB: &str = "alb/beats_application-lb-http.log";
const APACHE: &str = "apache/beats_apache_darwin_2.4.23_common.log";

fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output, command: &str) {
    assert!(
        output.status.success(),
        "{command} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout_text(output),
        stderr_text(output)
    );
}

/// Rows of an ASCII table printed by `apitrail query`, as trimmed cells, header first.
fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

fn import_data_dir(data_dir: &Path, file: &Path) -> Output {
    run_cli([
        "import".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        file.as_os_str(),
    ])
}

fn query_data_dir(data_dir: &Path, sql: &str) -> Output {
    run_cli([
        "query".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        sql.as_ref(),
    ])
}

#[test]
fn import_via_server() {
    let server = TestServer::start(ServerOptions::no_flush());
    let nginx = realdata(NGINX);
    let alb = realdata(ALB);
    let output = run_cli([
        "import".as_ref(),
        "--server".as_ref(),
        server.url().as_ref(),
        "--sensor".as_ref(),
        "edge-1".as_ref(),
        nginx.as_os_str(),
        alb.as_os_str(),
    ]);
    assert_success(&output, "import --server");

    let stdout = stdout_text(&output);
    let expected_nginx = format!(
        "{}: 13 accepted, 0 rejected, 0 skipped (format clf)",
        nginx.display()
    );
    let expected_alb = format!(
        "{}: 10 accepted, 0 rejected, 0 skipped (format aws_alb)",
        alb.display()
    );
    assert!(
        stdout.lines().any(|l| l == expected_nginx),
        "missing `{expected_nginx}` in:\n{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == expected_alb),
        "missing `{expected_alb}` in:\n{stdout}"
    );

    assert_eq!(
        server.count("source = 'clf'"),
        13,
        "nginx rows through the server"
    );
    assert_eq!(
        server.count("source = 'aws_alb'"),
        10,
        "ALB rows through the server"
    );
    assert_eq!(
        server.count("sensor = 'edge-1'"),
        23,
        "every imported row carries --sensor"
    );
}

#[test]
fn query_via_server() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(
        Some("clf"),
        std::fs::read(realdata(NGINX)).expect("reading the nginx sample"),
    );
    let output = run_cli([
        "query",
        "--server",
        server.url(),
        "SELECT status, count(*) AS n FROM events GROUP BY status ORDER BY status",
    ]);
    assert_success(&output, "query --server");

    let stdout = stdout_text(&output);
    let rows = table_rows(&stdout);
    let expected: Vec<Vec<String>> = [
        ["status", "n"],
        ["200", "2"],
        ["206", "1"],
        ["304", "2"],
        ["404", "8"],
    ]
    .iter()
    .map(|row| row.iter().map(|cell| cell.to_string()).collect())
    .collect();
    assert_eq!(rows, expected, "table printed by query --server:\n{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("(4 rows)"),
        "row count line of:\n{stdout}"
    );
}

#[test]
fn query_bad_sql_fails() {
    let server = TestServer::start(ServerOptions::no_flush());
    let output = run_cli(["query", "--server", server.url(), "SELECT nope FROM events"]);
    assert!(
        !output.status.success(),
        "bad SQL must fail; stdout:\n{}",
        stdout_text(&output)
    );
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains("nope"),
        "the error should name the unknown column:\n{stderr}"
    );
}

/// `import --data-dir` writes into a stopped server's directory, `query
/// --data-dir` reads it, and the restarted server reads the rows.
#[test]
fn import_into_data_dir() {
    let mut server = TestServer::start(ServerOptions::no_flush());
    server.ingest(
        Some("clf"),
        std::fs::read(realdata(NGINX)).expect("reading the nginx sample"),
    );
    server.stop();

    let apache = realdata(APACHE);
    let output = import_data_dir(server.data_dir(), &apache);
    assert_success(&output, "import --data-dir");
    let stdout = stdout_text(&output);
    let expected = format!(
        "{}: 6 accepted, 0 rejected, 0 skipped (format clf)",
        apache.display()
    );
    assert!(
        stdout.lines().any(|l| l == expected),
        "missing `{expected}` in:\n{stdout}"
    );

    let output = query_data_dir(server.data_dir(), "SELECT count(*) AS n FROM events");
    assert_success(&output, "query --data-dir");
    let stdout = stdout_text(&output);
    assert_eq!(
        table_rows(&stdout),
        vec![vec!["n".to_string()], vec!["19".to_string()]],
        "count printed by query --data-dir:\n{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("(1 row)"),
        "row count line of:\n{stdout}"
    );

    server.restart();
    assert_eq!(
        server.count(""),
        19,
        "the restarted server must see the imported rows"
    );
    assert_eq!(
        server.count("client_ip = '::1'"),
        3,
        "the three ::1 lines of the Apache sample"
    );
}

#[test]
fn reimport_adds_nothing() {
    let mut server = TestServer::start(ServerOptions::no_flush());
    server.ingest(
        Some("clf"),
        std::fs::read(realdata(NGINX)).expect("reading the nginx sample"),
    );
    server.stop();
    let apache = realdata(APACHE);
    assert_success(
        &import_data_dir(server.data_dir(), &apache),
        "first import --data-dir",
    );

    let output = import_data_dir(server.data_dir(), &apache);
    assert_success(&output, "second import --data-dir");
    let stdout = stdout_text(&output);
    assert!(
        stdout.contains("already imported"),
        "the second import must say so:\n{stdout}"
    );

    // The same content under another name is the same import.
    let copy = server.scratch_dir().join("renamed-copy.log");
    std::fs::copy(&apache, &copy).expect("copying the sample into the temporary directory");
    let stdout = stdout_text(&import_data_dir(server.data_dir(), &copy));
    assert!(
        stdout.contains("already imported"),
        "a renamed copy must count as imported:\n{stdout}"
    );

    server.restart();
    assert_eq!(server.count(""), 19, "re-imports must add no rows");
}

#[test]
fn import_locked_dir_fails() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(
        Some("clf"),
        std::fs::read(realdata(NGINX)).expect("reading the nginx sample"),
    );

    let output = import_data_dir(server.data_dir(), &realdata(APACHE));
    assert!(
        !output.status.success(),
        "import --data-dir must fail while a server holds the directory; stdout:\n{}",
        stdout_text(&output)
    );
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains("lock"),
        "the error should mention the lock:\n{stderr}"
    );
    assert_eq!(server.count(""), 13, "the failed import must add no rows");
}

/// `query --data-dir` reads a running server's directory, including events
/// that are still only in its WAL.
#[test]
fn query_data_dir_beside_server() {
    let server = TestServer::start(ServerOptions::no_flush());
    server.ingest(
        Some("clf"),
        std::fs::read(realdata(NGINX)).expect("reading the nginx sample"),
    );

    let output = query_data_dir(server.data_dir(), "SELECT count(*) AS n FROM events");
    assert_success(&output, "query --data-dir beside a running server");
    let stdout = stdout_text(&output);
    assert_eq!(
        table_rows(&stdout),
        vec![vec!["n".to_string()], vec!["13".to_string()]],
        "count printed by query --data-dir:\n{stdout}"
    );
    assert_eq!(server.count(""), 13, "the server must be unaffected");
}

/// A mistyped `--data-dir` must fail with an error, not print an empty table.
#[test]
fn query_missing_data_dir_fails() {
    let scratch = tempfile::tempdir().expect("creating a temporary directory");
    let missing = scratch.path().join("no-such-data-dir");
    let output = query_data_dir(&missing, "SELECT count(*) AS n FROM events");
    assert!(
        !output.status.success(),
        "query --data-dir on a missing directory succeeded and printed:\n{}",
        stdout_text(&output)
    );
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains("no-such-data-dir"),
        "the error should name the directory:\n{stderr}"
    );
    assert!(
        !missing.exists(),
        "a query must not create {}",
        missing.display()
    );
}
