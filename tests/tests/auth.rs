//! Tokens and roles on every protocol: the `apitrail token` commands, HTTP
//! with curl and the CLI, Flight SQL with the ADBC driver and pyarrow, and
//! PostgreSQL with psql and psycopg (SCRAM-SHA-256).
//!
//! Needs `tests/setup.sh` (psql and the Python drivers in tests/.venv).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use apitrail_tests::{
    ServerOptions, TestServer, Token, binary_path, clf_line, create_token, run_python,
};

fn apitrail(args: &[&str]) -> Output {
    Command::new(binary_path())
        .args(args)
        .env_remove("APITRAIL_CONFIG")
        .env_remove("APITRAIL_DATA_DIR")
        .env_remove("APITRAIL_TOKEN")
        .env_remove("APITRAIL_SERVER")
        .stdin(Stdio::null())
        .output()
        .expect("running the apitrail binary")
}

fn apitrail_ok(args: &[&str]) -> String {
    let output = apitrail(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "apitrail {args:?} failed with {}\n--- stdout:\n{stdout}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn revoke_token(data_dir: &Path, name: &str) {
    let dir = data_dir.to_str().expect("the data directory path is UTF-8");
    apitrail_ok(&["token", "revoke", "--data-dir", dir, name]);
}

/// Runs curl with `args` after the URL and returns the status code and body.
fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "curl {url} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (body, status) = stdout.rsplit_once('\n').expect("curl printed the status");
    (
        status.trim().parse().expect("a numeric status"),
        body.to_owned(),
    )
}

fn query_url(server: &TestServer) -> String {
    format!("{}/api/v1/query", server.url())
}

/// POSTs `SELECT 1` with the extra curl arguments and returns status and body.
fn curl_query(server: &TestServer, args: &[&str]) -> (u16, String) {
    let mut all = vec![
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"sql":"SELECT 1 AS one"}"#,
    ];
    all.extend_from_slice(args);
    curl(&query_url(server), &all)
}

fn curl_ingest(server: &TestServer, args: &[&str]) -> (u16, String) {
    let line = clf_line("10/Oct/2023:13:55:36 +0000", "/v1/items", 200);
    let mut all = vec!["--data-binary", line.as_str()];
    all.extend_from_slice(args);
    curl(&format!("{}/api/v1/ingest?format=clf", server.url()), &all)
}

fn bearer(token: &Token) -> String {
    format!("Authorization: Bearer {}", token.secret)
}

#[test]
fn token_commands_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let token = create_token(dir.path(), "grafana", &["read"]);
    assert!(
        token.secret.starts_with("apt_"),
        "secret {:?}",
        token.secret
    );
    create_token(dir.path(), "vector", &["ingest", "read"]);

    let listed = apitrail_ok(&["token", "list", "--data-dir", data_dir]);
    assert!(listed.contains("grafana"), "list misses grafana:\n{listed}");
    assert!(
        listed.contains("ingest,read") || listed.contains("read,ingest"),
        "{listed}"
    );
    assert!(
        !listed.contains(&token.secret),
        "list shows a secret:\n{listed}"
    );

    let file = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
    assert!(
        !file.contains(&token.secret[4..]),
        "the token file holds a secret"
    );

    let duplicate = apitrail(&[
        "token",
        "create",
        "--data-dir",
        data_dir,
        "--role",
        "read",
        "grafana",
    ]);
    assert!(
        !duplicate.status.success(),
        "a second token named grafana was created"
    );
    let message = String::from_utf8_lossy(&duplicate.stderr);
    assert!(
        message.contains("exists"),
        "duplicate name message: {message}"
    );

    revoke_token(dir.path(), "grafana");
    let listed = apitrail_ok(&["token", "list", "--data-dir", data_dir, "--json"]);
    assert_eq!(
        listed.lines().count(),
        1,
        "after revoking one of two tokens:\n{listed}"
    );
    assert!(
        !listed.contains("grafana"),
        "grafana still listed:\n{listed}"
    );

    let unknown = apitrail(&["token", "revoke", "--data-dir", data_dir, "ghost"]);
    assert!(
        !unknown.status.success(),
        "revoking an unknown token succeeded"
    );
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        message.contains("no token is named"),
        "unknown name message: {message}"
    );

    let no_role = apitrail(&["token", "create", "--data-dir", data_dir, "nobody"]);
    assert!(
        !no_role.status.success(),
        "a token without a role was created"
    );
}

#[test]
fn loopback_without_tokens_allows_read_and_ingest() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let (status, body) = curl_query(&server, &[]);
    assert_eq!(status, 200, "anonymous query on loopback: {body}");
    let (status, body) = curl_ingest(&server, &[]);
    assert_eq!(status, 200, "anonymous ingest on loopback: {body}");

    let (status, body) = curl(
        &format!("{}/api/v1/specs?name=x", server.url()),
        &[
            "--data-binary",
            r#"{"openapi":"3.0.0","info":{"title":"x","version":"1"},"paths":{}}"#,
        ],
    );
    assert_eq!(status, 403, "anonymous admin call: {body}");
    assert!(body.contains("admin role"), "403 body: {body}");
}

#[test]
fn http_requires_token_once_one_exists() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let reader = create_token(server.data_dir(), "reader", &["read"]);

    let (status, body) = curl_query(&server, &[]);
    assert_eq!(status, 401, "query without a token: {body}");
    assert!(body.contains("apitrail token create"), "401 body: {body}");
    let output = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-d",
            "{}",
            &query_url(&server),
        ])
        .output()
        .expect("running curl");
    let headers = String::from_utf8_lossy(&output.stdout).to_ascii_lowercase();
    assert!(
        headers.contains("www-authenticate: bearer"),
        "401 headers:\n{headers}"
    );

    let (status, body) = curl_query(&server, &["-H", &bearer(&reader)]);
    assert_eq!(status, 200, "query with a read token: {body}");
    let (status, body) = curl_query(&server, &["-H", "Authorization: Bearer apt_wrong"]);
    assert_eq!(status, 401, "query with an unknown token: {body}");
    let (status, body) = curl_query(&server, &["-u", &format!("reader:{}", reader.secret)]);
    assert_eq!(
        status, 401,
        "query with Basic credentials, which only ingest takes: {body}"
    );

    let (status, body) = curl(&format!("{}/health", server.url()), &[]);
    assert_eq!(status, 200, "health without a token: {body}");
    let (status, _) = curl(&format!("{}/metrics", server.url()), &[]);
    assert_eq!(status, 401, "metrics without a token");
    let (status, _) = curl(
        &format!("{}/metrics", server.url()),
        &["-H", &bearer(&reader)],
    );
    assert_eq!(status, 200, "metrics with a read token");

    let (status, body) = curl_ingest(&server, &["-H", &bearer(&reader)]);
    assert_eq!(status, 403, "ingest with a read token: {body}");
    assert!(body.contains("lacks the ingest role"), "403 body: {body}");
}

#[test]
fn ingest_takes_shipper_credentials() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let shipper = create_token(server.data_dir(), "vector", &["ingest"]);

    let (status, body) = curl_ingest(&server, &["-u", &format!("vector:{}", shipper.secret)]);
    assert_eq!(status, 200, "ingest with Basic name:secret: {body}");
    let (status, body) = curl_ingest(&server, &["-u", &format!("vector:{}x", shipper.secret)]);
    assert_eq!(status, 401, "ingest with a wrong Basic password: {body}");

    let encoded = STANDARD.encode(format!("vector:{}", shipper.secret));
    let api_key = format!("Authorization: ApiKey {encoded}");
    let (status, body) = curl_ingest(&server, &["-H", &api_key]);
    assert_eq!(
        status, 200,
        "ingest with ApiKey base64(name:secret): {body}"
    );
    let raw_key = format!("Authorization: ApiKey {}", shipper.secret);
    let (status, body) = curl_ingest(&server, &["-H", &raw_key]);
    assert_eq!(status, 200, "ingest with ApiKey SECRET: {body}");
    let (status, body) = curl_ingest(&server, &["-H", &bearer(&shipper)]);
    assert_eq!(status, 200, "ingest with Bearer: {body}");

    let (status, body) = curl_query(&server, &["-H", &bearer(&shipper)]);
    assert_eq!(status, 403, "query with an ingest-only token: {body}");
}

#[test]
fn revoked_token_rejected_while_running() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let reader = create_token(server.data_dir(), "reader", &["read"]);
    let admin = create_token(server.data_dir(), "root", &["admin"]);
    let (status, _) = curl_query(&server, &["-H", &bearer(&reader)]);
    assert_eq!(status, 200, "query before the revocation");

    revoke_token(server.data_dir(), "reader");
    let (status, body) = curl_query(&server, &["-H", &bearer(&reader)]);
    assert_eq!(status, 401, "query with a revoked token: {body}");
    let (status, body) = curl_query(&server, &["-H", &bearer(&admin)]);
    assert_eq!(status, 200, "query with the admin token: {body}");
}

#[test]
fn auth_required_flag_closes_loopback() {
    let server = TestServer::start(ServerOptions {
        extra_args: vec!["--auth-required".into()],
        ..ServerOptions::quick_flush()
    });
    let (status, body) = curl_query(&server, &[]);
    assert_eq!(
        status, 401,
        "query without a token on a server that requires one: {body}"
    );
    let (status, _) = curl(&format!("{}/health", server.url()), &[]);
    assert_eq!(status, 200, "health stays public");
}

#[test]
fn cli_sends_token() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let reader = create_token(server.data_dir(), "cli", &["read"]);
    let output = apitrail(&["query", "--server", server.url(), "SELECT 7 AS seven"]);
    assert!(!output.status.success(), "the CLI queried without a token");
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("authentication required"), "{message}");
    assert!(
        message.contains("--token"),
        "the CLI error does not name --token: {message}"
    );

    let stdout = apitrail_ok(&[
        "query",
        "--server",
        server.url(),
        "--token",
        &reader.secret,
        "SELECT 7 AS seven",
    ]);
    assert!(stdout.contains('7'), "query output: {stdout}");
}

#[test]
fn flight_sql_bearer_and_handshake() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let reader = create_token(server.data_dir(), "bi", &["read"]);
    let shipper = create_token(server.data_dir(), "shipper", &["ingest"]);
    let url = server.flight_url();
    run_python(
        "auth_clients.py",
        &["flight_bearer", url, &reader.name, &reader.secret],
    );
    run_python(
        "auth_clients.py",
        &["flight_password", url, &reader.name, &reader.secret],
    );
    run_python(
        "auth_clients.py",
        &["flight_wrong_password", url, &reader.name, &reader.secret],
    );
    run_python("auth_clients.py", &["flight_anonymous_rejected", url]);
    run_python(
        "auth_clients.py",
        &["flight_forbidden", url, &shipper.name, &shipper.secret],
    );
    run_python(
        "auth_clients.py",
        &["pyarrow_basic_token", url, &reader.name, &reader.secret],
    );
}

fn psql_with_password(server: &TestServer, user: &str, password: &str) -> Output {
    let (host, port) = server.pg_addr().rsplit_once(':').expect("host:port");
    Command::new("psql")
        .args([
            "-X", "-w", "-h", host, "-p", port, "-U", user, "-d", "apitrail",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", "SELECT 40 + 2"])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null())
        .output()
        .expect("running psql; install it with tests/setup.sh")
}

#[test]
fn postgres_scram_login() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let reader = create_token(server.data_dir(), "analyst", &["read"]);
    let shipper = create_token(server.data_dir(), "shipper", &["ingest"]);

    let output = psql_with_password(&server, &reader.name, &reader.secret);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "psql with the token's secret failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "42");

    let output = psql_with_password(&server, &reader.name, "apt_wrong");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "psql logged in with a wrong password"
    );
    assert!(
        stderr.contains("password authentication failed"),
        "psql stderr: {stderr}"
    );

    let output = psql_with_password(&server, "ghost", &reader.secret);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "psql logged in as an unknown user"
    );
    assert!(
        stderr.contains("password authentication failed for user \"ghost\""),
        "an unknown user must look like a wrong password: {stderr}"
    );

    let pg = server.pg_addr();
    run_python(
        "auth_clients.py",
        &["pg_scram", pg, &reader.name, &reader.secret],
    );
    run_python(
        "auth_clients.py",
        &["pg_wrong_password", pg, &reader.name, &reader.secret],
    );
    run_python(
        "auth_clients.py",
        &["pg_forbidden", pg, &shipper.name, &shipper.secret],
    );

    revoke_token(server.data_dir(), &reader.name);
    let output = psql_with_password(&server, &reader.name, &reader.secret);
    assert!(
        !output.status.success(),
        "psql logged in with a revoked token"
    );
}

#[test]
fn postgres_jdbc_scram_login() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let token = create_token(server.data_dir(), "dbeaver", &["read"]);
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/JdbcLogin.java");
    let output = Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(&program)
        .args([server.pg_addr(), &token.name, &token.secret])
        .stdin(Stdio::null())
        .output()
        .expect("running java; install Java and the JDBC driver with tests/setup.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ok jdbc login"),
        "JdbcLogin.java failed with {}\n--- stdout:\n{stdout}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn postgres_loopback_without_tokens_needs_no_password() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let output = psql_with_password(&server, "anyone", "");
    assert!(
        output.status.success(),
        "psql without tokens on loopback failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
