//! TLS on the three listeners, as real clients see it: curl over HTTPS with
//! HTTP/1.1 and HTTP/2, psql and psycopg with `sslmode=verify-full`, and the
//! ADBC Flight SQL driver and pyarrow.flight over `grpc+tls://`.
//!
//! Each test makes its own self-signed certificate for `localhost` and
//! `127.0.0.1` with the `openssl` command. Needs `tests/setup.sh` (openssl,
//! psql, and the Python drivers in tests/.venv).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use apitrail_tests::{
    ServerOptions, TestServer, TlsFiles, clf_line, create_token, poll_until, run_cli, run_python,
};
use serde_json::Value;
use tempfile::TempDir;

/// Events the TLS servers hold, so that each client checks a real count.
const EVENTS: i64 = 3;
/// A query whose result starts, then fails with a division by zero at row 290000.
const FAILING_SQL: &str =
    "SELECT value, 1 / (value - 290000) AS ratio FROM generate_series(1, 300000)";
/// curl's exit code when it cannot verify the server's certificate.
const CURL_PEER_FAILED_VERIFICATION: i32 = 60;

/// A self-signed certificate and its key in a temporary directory.
struct Certificate {
    files: TlsFiles,
    // Dropped last, so the files outlive every use.
    _dir: TempDir,
}

impl Certificate {
    fn cert(&self) -> &Path {
        &self.files.cert
    }

    fn cert_str(&self) -> &str {
        self.cert().to_str().expect("temporary paths are UTF-8")
    }
}

/// Makes a self-signed P-256 server certificate for `localhost` and
/// `127.0.0.1`, valid for two days.
fn self_signed() -> Certificate {
    let dir = tempfile::Builder::new()
        .prefix("apitrail-tls-")
        .tempdir()
        .expect("creating a temporary directory");
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // `req -x509` marks the certificate as a CA by default, and rustls
        // (the harness's reqwest client) rejects a CA certificate as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl; install it with tests/setup.sh");
    assert!(
        output.status.success(),
        "openssl req failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Certificate {
        files: TlsFiles { cert, key },
        _dir: dir,
    }
}

/// Starts a server with TLS on and ingests [`EVENTS`] events over HTTPS.
fn tls_server(certificate: &Certificate) -> TestServer {
    let server =
        TestServer::start(ServerOptions::quick_flush().with_tls(certificate.files.clone()));
    assert!(server.tls_enabled(), "the start-up lines show TLS");
    let body: String = (0..EVENTS)
        .map(|i| {
            clf_line(
                &format!("01/Mar/2024:12:00:0{i} +0000"),
                "/v1/orders/1",
                200,
            )
        })
        .collect();
    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(status, 200, "ingest over HTTPS failed: {report}");
    assert_eq!(server.count(""), EVENTS, "the HTTPS query sees every event");
    server
}

/// Runs curl with a 30 second limit.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs; install it to run this test")
}

/// Asserts that curl succeeded and returns its stdout.
fn curl_ok(args: &[&str]) -> String {
    let output = curl(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "curl {args:?} failed ({}): {}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Splits curl output written with `-w '\n%{http_version}'` into body and version.
fn body_and_version(stdout: &str) -> (&str, &str) {
    stdout
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("curl printed no HTTP version: {stdout:?}"))
}

/// Reads the value of a counter with labels from `/metrics`, 0 when absent.
fn labelled_metric(server: &TestServer, series: &str) -> f64 {
    let (status, text) = server.api().get("/metrics");
    assert_eq!(status, 200, "GET /metrics failed with {status}: {text}");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn https_query_http1_and_http2() {
    let certificate = self_signed();
    let mut server = tls_server(&certificate);
    assert_eq!(server.http_scheme(), "https");
    let url = server.url().to_string();
    let health = format!("{url}/health");
    let query = format!("{url}/api/v1/query");

    for (flag, expected_version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let stdout = curl_ok(&[
            flag,
            "--cacert",
            certificate.cert_str(),
            "-w",
            "\n%{http_version}",
            &health,
        ]);
        let (body, version) = body_and_version(&stdout);
        assert_eq!(version, expected_version, "{flag}: negotiated HTTP version");
        let health: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{flag}: /health is not JSON ({e}): {body}"));
        assert_eq!(health["status"], "ok", "{flag}: /health body");

        let stdout = curl_ok(&[
            flag,
            "--cacert",
            certificate.cert_str(),
            "-w",
            "\n%{http_version}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"sql": "SELECT count(*) AS n FROM events"}"#,
            &query,
        ]);
        let (body, version) = body_and_version(&stdout);
        assert_eq!(version, expected_version, "{flag}: query HTTP version");
        let rows: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{flag}: the query result is not JSON ({e}): {body}"));
        assert_eq!(rows, serde_json::json!([{ "n": EVENTS }]), "{flag}: count");
    }

    server.stop();
}

/// The `apitrail-error` trailer of a failed result reaches HTTP/1.1 and
/// HTTP/2 clients over TLS, as it does over plain HTTP.
#[test]
fn https_error_trailer_http1_and_http2() {
    let certificate = self_signed();
    let server = tls_server(&certificate);
    let request = serde_json::json!({ "sql": FAILING_SQL }).to_string();
    let query = format!("{}/api/v1/query?output=jsonl", server.url());

    for (flag, status_line) in [("--http1.1", "http/1.1 200"), ("--http2", "http/2 200")] {
        let headers_file = server.scratch_dir().join("headers.txt");
        let headers_arg = headers_file.to_str().expect("temporary paths are UTF-8");
        let body = curl_ok(&[
            flag,
            "--cacert",
            certificate.cert_str(),
            "-D",
            headers_arg,
            "-H",
            "TE: trailers",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &request,
            &query,
        ]);
        let headers = std::fs::read_to_string(&headers_file)
            .unwrap_or_else(|e| panic!("reading {headers_arg}: {e}"))
            .to_ascii_lowercase();
        assert!(
            headers.starts_with(status_line),
            "{flag}: the result starts with 200:\n{headers}"
        );
        assert!(
            headers.contains("\napitrail-error: "),
            "{flag}: curl saw the error trailer:\n{headers}"
        );
        assert!(
            headers.contains("divide by zero"),
            "{flag}: the trailer carries the message:\n{headers}"
        );
        let last_line = body.rsplit('\n').next().unwrap_or_default();
        assert!(
            last_line.starts_with("{\"error\":"),
            "{flag}: the body ends with the error line: {last_line:?}"
        );
    }
}

#[test]
fn https_rejects_untrusted_and_plain() {
    let certificate = self_signed();
    let server = tls_server(&certificate);
    let health = format!("{}/health", server.url());

    let untrusted = curl(&[&health]);
    assert_eq!(
        untrusted.status.code(),
        Some(CURL_PEER_FAILED_VERIFICATION),
        "curl without --cacert must fail to verify the self-signed certificate: {}",
        String::from_utf8_lossy(&untrusted.stderr)
    );

    let plain_url = health.replacen("https://", "http://", 1);
    let plain = curl(&[&plain_url]);
    assert!(
        !plain.status.success(),
        "plain HTTP to the TLS port must fail, got: {}",
        String::from_utf8_lossy(&plain.stdout)
    );
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("\"ok\""),
        "plain HTTP must not reach a handler"
    );

    // The listener keeps serving after failed handshakes, and counts them.
    let (status, body) = server.api().get("/health");
    assert_eq!(status, 200, "HTTPS after failed handshakes: {body}");
    poll_until(
        Duration::from_secs(10),
        "two failed HTTP handshakes in /metrics",
        || {
            let failures = labelled_metric(
                &server,
                "apitrail_tls_handshake_failures_total{protocol=\"http\"}",
            );
            (failures >= 2.0).then_some(())
        },
    );
}

/// The `[tls]` section of the configuration file turns TLS on like the flags.
#[test]
fn tls_from_config_file() {
    let certificate = self_signed();
    let config_dir = tempfile::tempdir().expect("creating a temporary directory");
    let config_path = config_dir.path().join("apitrail.toml");
    let toml = format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        certificate.files.cert, certificate.files.key
    );
    std::fs::write(&config_path, toml).expect("writing the configuration file");

    let options = ServerOptions {
        extra_args: vec!["--config".to_string(), config_path.display().to_string()],
        ..ServerOptions::default()
    };
    let mut server = TestServer::start(options);
    assert!(server.tls_enabled(), "the start-up lines show TLS");
    assert!(
        server.flight_url().starts_with("grpc+tls://127.0.0.1:"),
        "Flight SQL URL: {}",
        server.flight_url()
    );

    let body = curl_ok(&[
        "--cacert",
        certificate.cert_str(),
        &format!("{}/health", server.url()),
    ]);
    assert!(body.contains("\"ok\""), "/health over HTTPS: {body}");

    assert!(
        server
            .stderr()
            .contains(&certificate.files.cert.display().to_string()),
        "the start-up log names the certificate file"
    );
    server.stop();
}

/// Runs psql with a full connection string and the commands in `commands`.
fn psql(conninfo: &str, commands: &[&str]) -> Output {
    let mut command = Command::new("psql");
    command.args(["-X", "-w", "-v", "ON_ERROR_STOP=1", "-d", conninfo]);
    for sql in commands {
        command.args(["-c", sql]);
    }
    command
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .stdin(Stdio::null())
        .output()
        .expect("running psql; install it with tests/setup.sh")
}

fn pg_conninfo(server: &TestServer, ssl: &str) -> String {
    let (host, port) = server
        .pg_addr()
        .rsplit_once(':')
        .expect("the PostgreSQL address has a port");
    format!("host={host} port={port} user=apitrail dbname=apitrail {ssl}")
}

fn psql_ok(server: &TestServer, conninfo: &str, commands: &[&str]) -> String {
    let output = psql(conninfo, commands);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "psql {conninfo:?} failed with {}\n--- stdout:\n{stdout}\n--- stderr:\n{}\n--- server stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    stdout
}

#[test]
fn psql_verify_full_and_plain() {
    let certificate = self_signed();
    let server = tls_server(&certificate);
    let count = "SELECT count(*) AS n FROM events";

    // verify-full checks the chain and, for 127.0.0.1, the IP address SAN.
    let verified = pg_conninfo(
        &server,
        &format!("sslmode=verify-full sslrootcert={}", certificate.cert_str()),
    );
    let stdout = psql_ok(&server, &verified, &[count, "\\conninfo"]);
    assert!(
        stdout.contains(&format!(" {EVENTS}\n")),
        "count over TLS: {stdout}"
    );
    assert!(
        stdout.contains("SSL connection (protocol: TLSv1."),
        "psql reports a TLS connection: {stdout}"
    );

    // Plain connections stay allowed, as in PostgreSQL.
    let plain = pg_conninfo(&server, "sslmode=disable");
    let stdout = psql_ok(&server, &plain, &[count, "\\conninfo"]);
    assert!(
        stdout.contains(&format!(" {EVENTS}\n")),
        "count in plain text: {stdout}"
    );
    assert!(
        !stdout.contains("SSL connection"),
        "sslmode=disable stays plain: {stdout}"
    );

    // Another self-signed certificate is not a root of this one.
    let other = self_signed();
    let wrong_root = pg_conninfo(
        &server,
        &format!("sslmode=verify-full sslrootcert={}", other.cert_str()),
    );
    let output = psql(&wrong_root, &[count]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a wrong root must fail: {stderr}");
    assert!(
        stderr.contains("certificate verify failed"),
        "psql explains the failure: {stderr}"
    );
}

/// Without `[tls]`, the server still replies 'N' to SSLRequest.
#[test]
fn pg_without_tls_declines_ssl() {
    let server = TestServer::start(ServerOptions::no_flush());
    assert!(!server.tls_enabled(), "the start-up lines show no TLS");
    assert_eq!(server.http_scheme(), "http");
    let output = psql(&pg_conninfo(&server, "sslmode=require"), &["SELECT 1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "sslmode=require must fail: {stderr}"
    );
    assert!(
        stderr.contains("server does not support SSL"),
        "psql explains the failure: {stderr}"
    );
    psql_ok(
        &server,
        &pg_conninfo(&server, "sslmode=prefer"),
        &["SELECT 1"],
    );
}

#[test]
fn psycopg_verify_full_query() {
    let certificate = self_signed();
    let server = tls_server(&certificate);
    let stdout = run_python(
        "tls_clients.py",
        &["psycopg", server.pg_addr(), certificate.cert_str()],
    );
    let result: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("tls_clients.py psycopg printed no JSON ({e}):\n{stdout}"));
    assert_eq!(result["tls_in_use"], true, "{result}");
    assert_eq!(result["count_tls"], EVENTS, "{result}");
    assert_eq!(result["param"], 42, "{result}");
    assert_eq!(result["direct_tls_in_use"], true, "{result}");
    assert_eq!(result["count_direct"], EVENTS, "{result}");
    assert_eq!(result["plain_tls_in_use"], false, "{result}");
    assert_eq!(result["count_plain"], EVENTS, "{result}");
    assert!(
        result["untrusted"]
            .as_str()
            .is_some_and(|e| e.contains("certificate verify failed")),
        "the system roots do not trust a self-signed certificate: {result}"
    );
}

#[test]
fn flight_sql_over_tls() {
    let certificate = self_signed();
    let server = tls_server(&certificate);
    let url = server.flight_url();
    assert!(
        url.starts_with("grpc+tls://127.0.0.1:"),
        "Flight SQL URL: {url}"
    );
    let stdout = run_python("tls_clients.py", &["flight", url, certificate.cert_str()]);
    let result: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("tls_clients.py flight printed no JSON ({e}):\n{stdout}"));
    assert_eq!(result["adbc_count"], EVENTS, "{result}");
    assert_eq!(result["adbc_param"], 42, "{result}");
    assert_eq!(result["pyarrow_count"], EVENTS, "{result}");
    let untrusted = result["adbc_untrusted"].as_str().unwrap_or_default();
    assert!(
        !untrusted.is_empty() && untrusted != "connected",
        "ADBC without the root certificate must fail: {result}"
    );
    let plain = result["adbc_plain"].as_str().unwrap_or_default();
    assert!(
        !plain.is_empty() && plain != "connected",
        "plain grpc:// to the TLS port must fail: {result}"
    );
}

/// Runs `apitrail serve` on ephemeral ports with `tls_args`, expecting it
/// to exit at once, and returns its stderr.
fn failed_start(tls_args: &[&Path]) -> String {
    let data_dir = tempfile::tempdir().expect("creating a temporary directory");
    let mut args: Vec<PathBuf> = ["serve", "--data-dir"].iter().map(PathBuf::from).collect();
    args.push(data_dir.path().to_path_buf());
    for flag in [
        "--http-addr",
        "--flight-addr",
        "--pg-addr",
        "--otlp-grpc-addr",
        "--otlp-http-addr",
    ] {
        args.push(PathBuf::from(flag));
        args.push(PathBuf::from("127.0.0.1:0"));
    }
    args.extend(tls_args.iter().map(|arg| arg.to_path_buf()));
    let output = run_cli(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "apitrail serve {tls_args:?} must fail to start; stdout:\n{stdout}"
    );
    assert!(
        !stdout.contains("listening on"),
        "no listener is announced: {stdout}"
    );
    stderr
}

#[test]
fn missing_key_file_fails_start() {
    let certificate = self_signed();
    let missing = certificate.files.cert.with_file_name("missing.key");
    let stderr = failed_start(&[
        Path::new("--tls-cert"),
        certificate.cert(),
        Path::new("--tls-key"),
        missing.as_path(),
    ]);
    assert!(
        stderr.contains(&format!("reading the TLS key file {}", missing.display())),
        "the error names the key file: {stderr}"
    );
}

#[test]
fn cert_without_key_fails_start() {
    let certificate = self_signed();
    let stderr = failed_start(&[Path::new("--tls-cert"), certificate.cert()]);
    assert!(
        stderr.contains(&certificate.files.cert.display().to_string()),
        "the error names the certificate file: {stderr}"
    );
    assert!(
        stderr.contains("--tls-key"),
        "the error says which flag is missing: {stderr}"
    );
}

#[test]
fn invalid_cert_file_fails_start() {
    let certificate = self_signed();
    // A key file contains no CERTIFICATE item.
    let key = certificate.files.key.as_path();
    let stderr = failed_start(&[Path::new("--tls-cert"), key, Path::new("--tls-key"), key]);
    assert!(
        stderr.contains(&format!(
            "invalid TLS certificate file {}",
            certificate.files.key.display()
        )),
        "the error names the certificate file: {stderr}"
    );
}

#[test]
fn postgres_cleartext_password_only_over_tls() {
    let certificate = self_signed();
    let config_dir = tempfile::tempdir().expect("creating a temporary directory");
    let config = config_dir.path().join("apitrail.toml");
    std::fs::write(&config, "[auth]\npg_password_method = \"password\"\n")
        .expect("writing the configuration file");
    let mut options = ServerOptions::quick_flush().with_tls(certificate.files.clone());
    options
        .extra_args
        .extend(["--config".to_string(), config.display().to_string()]);
    let server = TestServer::start(options);
    let token = create_token(server.data_dir(), "legacy-client", &["read"]);
    let (name, secret) = (token.name, token.secret);

    let pg = server.pg_addr();
    run_python(
        "auth_clients.py",
        &[
            "pg_cleartext_over_tls",
            pg,
            &name,
            &secret,
            certificate.cert_str(),
        ],
    );
    run_python(
        "auth_clients.py",
        &["pg_scram_without_tls", pg, &name, &secret],
    );
}

#[test]
fn cli_queries_https_with_ca_cert() {
    let certificate = self_signed();
    let server = tls_server(&certificate);
    let output = run_cli([
        "query",
        "--server",
        server.url(),
        "--ca-cert",
        certificate.cert_str(),
        "SELECT count(*) AS n FROM events",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "apitrail query over https failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&EVENTS.to_string()),
        "query output: {stdout}"
    );

    let untrusted = run_cli(["query", "--server", server.url(), "SELECT 1"]);
    assert!(
        !untrusted.status.success(),
        "apitrail query trusted a self-signed certificate without --ca-cert"
    );
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        stderr.contains("--ca-cert") && !stderr.contains("is `apitrail serve` running"),
        "the error should point at the certificate, not at a stopped server: {stderr}"
    );
}
