//! Secrets in logged requests never reach the disk or a query result.
//!
//! Credentials in query strings, headers and rejected lines are replaced by a
//! keyed hash `h1:<32 hex digits>` before anything is written. These tests
//! send lines that carry known secret strings and then search every file of
//! the data directory for them: the WAL before the flush, and the Parquet
//! files, the Delta log and the rejects file after it.

use std::os::unix::fs::PermissionsExt;

use apitrail_tests::{ServerOptions, TestServer, read_file};
use serde_json::Value;

const SECRETS: [&str; 6] = [
    "SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5", "SECRET6",
];

fn clf_body() -> String {
    [
        r#"10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /v1/items?api_key=SECRET1&x=1 HTTP/1.1" 200 12 "-" "curl/8.0""#,
        r#"10.0.0.1 - - [10/Oct/2023:13:55:37 +0000] "GET /v1/feed?token=SECRET2 HTTP/1.1" 200 12 "-" "curl/8.0""#,
        r#"10.0.0.1 - - [10/Oct/2023:13:55:38 +0000] "POST /v1/login?user=bob&password=SECRET4 HTTP/1.1" 302 0 "-" "curl/8.0""#,
        "junk line with api_key=SECRET6 and Authorization: Bearer SECRET5",
        "",
    ]
    .join("\n")
}

fn alb_body() -> String {
    concat!(
        r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 "#,
        r#"0.000 0.001 0.000 200 200 34 366 "#,
        r#""GET http://www.example.com:80/download?X-Amz-Signature=SECRET3&X-Amz-Expires=300 HTTP/1.1" "curl/7.46.0" - - "#,
        r#"arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "#,
        r#""Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-""#,
        "\n"
    )
    .to_string()
}

/// Lists `(file, secret)` for every secret whose bytes appear in a file of the data directory.
fn secrets_in_files(server: &TestServer, secrets: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for path in server.data_files() {
        let bytes = read_file(&path);
        for secret in secrets {
            if contains(&bytes, secret.as_bytes()) {
                found.push((path.display().to_string(), secret.to_string()));
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn assert_hashed(value: &str, parameter: &str) {
    let prefix = format!("{parameter}=h1:");
    let start = value
        .find(&prefix)
        .unwrap_or_else(|| panic!("{value:?} lacks `{prefix}`"))
        + prefix.len();
    let digest: String = value[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(
        digest.len(),
        32,
        "the hash of {parameter} in {value:?} must be 32 hex digits"
    );
}

fn query_text(server: &TestServer, path: &str) -> String {
    let rows = server.query(&format!("SELECT query FROM events WHERE path = '{path}'"));
    assert_eq!(rows.len(), 1, "expected one row with path {path}: {rows:?}");
    rows[0]["query"]
        .as_str()
        .unwrap_or_else(|| panic!("the query column of {path} is not a string: {rows:?}"))
        .to_string()
}

#[test]
fn secrets_never_stored() {
    let mut server = TestServer::start(ServerOptions::no_flush());
    let (status, report) = server.api().ingest_request(
        &[("format", "clf"), ("source", "secrets-test.log")],
        None,
        clf_body().into_bytes(),
    );
    assert_eq!(status, 200, "CLF ingest failed: {report}");
    assert_eq!(
        report["accepted"], 3,
        "the three CLF requests must be accepted: {report}"
    );
    assert_eq!(
        report["rejected"], 1,
        "the junk line must be rejected: {report}"
    );
    let report_text = report.to_string();
    for secret in SECRETS {
        assert!(
            !report_text.contains(secret),
            "the ingest report repeats {secret}: {report_text}"
        );
    }
    let (status, report) = server.ingest(Some("aws_alb"), alb_body());
    assert_eq!(status, 200, "ALB ingest failed: {report}");
    assert_eq!(
        report["accepted"], 1,
        "the ALB request must be accepted: {report}"
    );

    // Before any flush the events are only in the WAL, the buffer and the rejects file.
    let found = secrets_in_files(&server, &SECRETS);
    assert!(
        found.is_empty(),
        "secrets on disk before the flush: {found:?}"
    );

    server.stop();
    let parquet_files: Vec<_> = server
        .data_files()
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .collect();
    assert!(
        !parquet_files.is_empty(),
        "the stop must flush the events to Parquet"
    );
    let found = secrets_in_files(&server, &SECRETS);
    assert!(
        found.is_empty(),
        "secrets on disk after the flush: {found:?}"
    );

    // Parquet pages are compressed, so the raw search above can miss a
    // secret. Every column is read back through SQL as well.
    server.restart();
    let rows = server.query("SELECT * FROM events");
    assert_eq!(rows.len(), 4, "rows after the restart: {rows:?}");
    let all_text = Value::Array(rows).to_string();
    for secret in SECRETS {
        assert!(
            !all_text.contains(secret),
            "a query result contains {secret}: {all_text}"
        );
    }

    let items = query_text(&server, "/v1/items");
    assert_hashed(&items, "api_key");
    assert!(
        items.ends_with("&x=1"),
        "other parameters must stay readable: {items:?}"
    );
    assert_hashed(&query_text(&server, "/v1/feed"), "token");
    let login = query_text(&server, "/v1/login");
    assert_hashed(&login, "password");
    assert!(
        login.starts_with("user=bob&"),
        "other parameters must stay readable: {login:?}"
    );
    assert_hashed(&query_text(&server, "/download"), "X-Amz-Signature");

    let stderr = server.stderr();
    for secret in SECRETS {
        assert!(!stderr.contains(secret), "the server log contains {secret}");
    }
}

#[test]
fn rejects_file_scrubbed() {
    let mut server = TestServer::start(ServerOptions::no_flush());
    let (status, report) = server.api().ingest_request(
        &[("format", "clf"), ("source", "secrets-test.log")],
        None,
        clf_body().into_bytes(),
    );
    assert_eq!(status, 200, "ingest failed: {report}");
    assert_eq!(
        report["errors"][0]["line"], 4,
        "the junk line is line 4: {report}"
    );
    server.stop();

    let rejects_dir = server.data_dir().join("rejects");
    let files: Vec<_> = std::fs::read_dir(&rejects_dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", rejects_dir.display()))
        .map(|entry| entry.expect("reading the rejects directory").path())
        .collect();
    assert_eq!(files.len(), 1, "expected one rejects file: {files:?}");
    let name = files[0]
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("rejects-")
            && name.ends_with(".jsonl")
            && name.len() == "rejects-YYYY-MM-DD.jsonl".len(),
        "rejects file name {name:?} is not rejects-YYYY-MM-DD.jsonl"
    );

    let text = String::from_utf8(read_file(&files[0])).expect("the rejects file is UTF-8");
    let records: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("rejects line {line:?} is not JSON: {e}"))
        })
        .collect();
    assert_eq!(records.len(), 1, "one rejected line expected:\n{text}");
    let record = &records[0];
    assert_eq!(
        record["line"], 4,
        "line number in the rejects record: {record}"
    );
    assert_eq!(
        record["source"], "secrets-test.log",
        "source in the rejects record: {record}"
    );
    assert_eq!(
        record["format"], "clf",
        "format in the rejects record: {record}"
    );
    assert!(
        record["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "reason missing: {record}"
    );
    assert!(
        record["received_at"].is_string(),
        "received_at missing: {record}"
    );
    let line = record["text"].as_str().unwrap_or_default();
    assert!(
        line.starts_with("junk line with "),
        "the text must keep the line's readable parts: {record}"
    );
    for secret in ["SECRET5", "SECRET6"] {
        assert!(
            !line.contains(secret),
            "the rejected line keeps {secret}: {line:?}"
        );
    }
    assert_hashed(line, "api_key");
}

/// A credential in the Referer URL is hashed like one in the request's own query.
#[test]
fn referer_secret_hashed() {
    let mut server = TestServer::start(ServerOptions::no_flush());
    let line = r#"10.0.0.1 - - [10/Oct/2023:13:55:37 +0000] "GET /v1/page HTTP/1.1" 200 12 "https://example.com/p?token=SECRET2&lang=en" "curl/8.0""#;
    let (status, report) = server.ingest(Some("clf"), format!("{line}\n"));
    assert_eq!(status, 200, "ingest failed: {report}");

    let rows = server.query("SELECT referer FROM events");
    let referer = rows[0]["referer"].as_str().unwrap_or_default().to_string();
    assert!(
        !referer.contains("SECRET2"),
        "the referer column keeps the token: {referer:?}"
    );
    assert_hashed(&referer, "token");

    server.stop();
    let found = secrets_in_files(&server, &["SECRET2"]);
    assert!(found.is_empty(), "the referer token is on disk: {found:?}");
}

#[test]
fn secret_key_mode_0600() {
    let server = TestServer::start(ServerOptions::no_flush());
    let path = server.data_dir().join("secret.key");
    let mode = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "{} has mode {:o}",
        path.display(),
        mode & 0o777
    );
    assert!(path.is_file(), "{} must be a regular file", path.display());
}

/// The same secret hashes to the same value after a restart, so a consumer
/// keeps one id, and the key file is not rewritten.
#[test]
fn hash_stable_across_restart() {
    let mut server = TestServer::start(ServerOptions::no_flush());
    let line = |path: &str| {
        format!(
            r#"10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET {path}?api_key=SECRET1 HTTP/1.1" 200 12 "-" "curl/8.0""#
        ) + "\n"
    };
    server.ingest(Some("clf"), line("/before"));
    let key_before = read_file(&server.data_dir().join("secret.key"));
    server.stop();
    server.restart();
    server.ingest(Some("clf"), line("/after"));
    let key_after = read_file(&server.data_dir().join("secret.key"));
    assert_eq!(key_before, key_after, "secret.key changed across a restart");

    let before = query_text(&server, "/before");
    let after = query_text(&server, "/after");
    assert_hashed(&before, "api_key");
    assert_eq!(
        before, after,
        "the same api_key must hash to the same value after a restart"
    );
}

/// A JWT is a bearer credential wherever it appears in a request, not only
/// under a credential parameter name such as `jwt=` or `id_token=`.
#[test]
fn jwt_anywhere_hashed() {
    let server = TestServer::start(ServerOptions::no_flush());
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let body = format!(
        "10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] \"GET /callback?state={jwt}&next=/home HTTP/1.1\" 302 0 \"-\" \"curl/8.0\"\n\
         10.0.0.1 - - [10/Oct/2023:13:55:37 +0000] \"GET /verify/{jwt} HTTP/1.1\" 200 12 \"-\" \"curl/8.0\"\n"
    );
    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(status, 200, "ingest failed: {report}");
    assert_eq!(
        report["accepted"], 2,
        "both lines must be accepted: {report}"
    );

    let rows = server.query("SELECT path, query, endpoint FROM events ORDER BY time");
    let callback_query = rows[0]["query"].as_str().unwrap_or_default();
    assert!(
        !callback_query.contains(jwt),
        "the JWT in `state=` is stored in the query column: {callback_query:?}"
    );
    for column in ["path", "endpoint"] {
        let value = rows[1][column].as_str().unwrap_or_default();
        assert!(
            !value.contains(jwt),
            "the JWT path segment is stored in the {column} column: {value:?}"
        );
    }
}
