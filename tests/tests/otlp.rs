//! The OpenTelemetry receivers: OTLP/gRPC and OTLP/HTTP exports from the
//! OpenTelemetry Python SDK's exporters, raw gRPC calls with grpcio, and
//! OTLP/JSON and malformed bodies posted with curl.
//!
//! Needs `tests/setup.sh` (the OpenTelemetry packages in tests/.venv, curl
//! and openssl).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use apitrail_tests::{
    ServerOptions, TestServer, TlsFiles, create_token, gzip, poll_until, run_python,
};
use serde_json::{Value, json};

/// What curl saw: the status, the response headers (lowercase names) and the body.
struct CurlResponse {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl CurlResponse {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// Posts `body` to `url` with curl and the extra `args` (headers, `--cacert`).
fn curl_post(server: &TestServer, url: &str, body: &[u8], args: &[&str]) -> CurlResponse {
    let dir = server.scratch_dir();
    let body_file = dir.join("curl-request.bin");
    let headers_file = dir.join("curl-headers.txt");
    let out_file = dir.join("curl-response.bin");
    std::fs::write(&body_file, body).expect("writing the request body");
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "%{http_code}"])
        .arg("--data-binary")
        .arg(format!("@{}", body_file.display()))
        .arg("-D")
        .arg(&headers_file)
        .arg("-o")
        .arg(&out_file)
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    assert!(
        output.status.success(),
        "curl {url} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("curl printed the status code");
    CurlResponse {
        status,
        headers: std::fs::read_to_string(&headers_file).unwrap_or_default(),
        body: std::fs::read(&out_file).unwrap_or_default(),
    }
}

/// Posts OTLP/JSON to `path` (such as `/v1/traces?sensor=edge`) on the OTLP/HTTP listener.
fn post_json(server: &TestServer, path: &str, body: &[u8], args: &[&str]) -> CurlResponse {
    let url = format!("{}{path}", server.otlp_http_url());
    let mut all = vec!["-H", "Content-Type: application/json"];
    all.extend_from_slice(args);
    curl_post(server, &url, body, &all)
}

/// Runs a command of `tests/clients/otlp_export.py` and parses its JSON line.
fn otlp_client(args: &[&str]) -> Value {
    let stdout = run_python("otlp_export.py", args);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("otlp_export.py {args:?} printed {stdout:?}: {e}"))
}

/// Exports the SDK's test spans and returns the events they must become.
fn export_spans(server: &TestServer, transport: &str, run: &str, extra: &[&str]) -> Vec<Value> {
    let endpoint = match transport {
        "grpc" => server.otlp_grpc_url(),
        _ => server.otlp_http_url(),
    };
    let mut args = vec![
        "spans",
        "--transport",
        transport,
        "--endpoint",
        endpoint,
        "--run",
        run,
    ];
    args.extend_from_slice(extra);
    let output = otlp_client(&args);
    assert_eq!(output["result"], "SUCCESS", "{output}");
    assert_eq!(output["spans"], 5, "the SDK created five spans: {output}");
    output["expected"]
        .as_array()
        .expect("the client lists the expected events")
        .clone()
}

/// Selects the stored columns that the checks compare, for paths under `prefix`.
fn stored_rows(server: &TestServer, prefix: &str) -> Vec<Value> {
    server.query(&format!(
        "SELECT method, path, query, scheme, host, status, http_version, duration_ms, \
         trace_id, attributes['span_id'] AS span_id, client_ip, client_port, forwarded_for, \
         user_agent, sensor, source, CAST(time AS BIGINT) AS time_us \
         FROM events WHERE path LIKE '{prefix}%' ORDER BY time"
    ))
}

/// Waits until `count` rows have a path under `prefix`.
fn wait_for_rows(server: &TestServer, prefix: &str, count: i64) {
    poll_until(
        Duration::from_secs(20),
        &format!("{count} events under {prefix}"),
        || (server.count(&format!("path LIKE '{prefix}%'")) >= count).then_some(()),
    );
}

/// Checks that exactly the two SERVER spans with HTTP attributes became events.
fn check_span_events(server: &TestServer, run: &str, expected: &[Value]) {
    let prefix = format!("/api/{run}/");
    wait_for_rows(server, &prefix, 2);
    let rows = stored_rows(server, &prefix);
    assert_eq!(
        rows.len(),
        2,
        "only the two HTTP server spans are stored, not the client, internal or gRPC ones: {rows:#?}"
    );
    for (row, expected) in rows.iter().zip(expected) {
        for key in [
            "method",
            "path",
            "query",
            "scheme",
            "host",
            "status",
            "http_version",
            "trace_id",
            "span_id",
            "client_ip",
            "client_port",
            "forwarded_for",
            "user_agent",
            "time_us",
            "sensor",
        ] {
            assert_eq!(
                row.get(key).unwrap_or(&Value::Null),
                &expected[key],
                "column {key} of {row:#}"
            );
        }
        let duration = row["duration_ms"]
            .as_f64()
            .expect("duration_ms is a number");
        let expected_duration = expected["duration_ms"].as_f64().expect("a duration");
        assert!(
            (duration - expected_duration).abs() < 1e-6,
            "duration_ms {duration} != {expected_duration}"
        );
        assert_eq!(row["source"], "otlp", "{row:#}");
    }
}

#[test]
fn sdk_grpc_export_stores_server_spans() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let expected = export_spans(&server, "grpc", "grpc-gz", &["--gzip"]);
    check_span_events(&server, "grpc-gz", &expected);

    let plain = export_spans(&server, "grpc", "grpc-plain", &[]);
    check_span_events(&server, "grpc-plain", &plain);

    let metrics = metric_lines(&server);
    assert_eq!(
        metric(&metrics, "traces", "grpc", "received"),
        10.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "traces", "grpc", "accepted"), 4.0);
    assert_eq!(metric(&metrics, "traces", "grpc", "skipped"), 6.0);
    assert_eq!(metric(&metrics, "traces", "grpc", "rejected"), 0.0);
}

#[test]
fn sdk_http_export_stores_server_spans() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let expected = export_spans(&server, "http", "http-plain", &[]);
    check_span_events(&server, "http-plain", &expected);

    let gzipped = export_spans(&server, "http", "http-gz", &["--gzip"]);
    check_span_events(&server, "http-gz", &gzipped);
    let metrics = metric_lines(&server);
    assert_eq!(
        metric(&metrics, "traces", "http", "accepted"),
        4.0,
        "{metrics}"
    );
}

#[test]
fn sdk_log_exporters_store_http_records() {
    let server = TestServer::start(ServerOptions::quick_flush());
    for transport in ["grpc", "http"] {
        let run = format!("logs-{transport}");
        let endpoint = match transport {
            "grpc" => server.otlp_grpc_url(),
            _ => server.otlp_http_url(),
        };
        let output = otlp_client(&[
            "logs",
            "--transport",
            transport,
            "--endpoint",
            endpoint,
            "--run",
            &run,
        ]);
        assert_eq!(output["result"], "SUCCESS", "{output}");
        assert_eq!(output["records"], 2, "{output}");
        let expected = &output["expected"];

        let prefix = format!("/v1/{run}/");
        wait_for_rows(&server, &prefix, 1);
        let rows = server.query(&format!(
            "SELECT method, path, status, client_ip, user_agent, sensor, source, \
             CAST(time AS BIGINT) AS time_us, attributes['body'] AS body, \
             attributes['severity_text'] AS severity \
             FROM events WHERE sensor = 'edge-{run}'"
        ));
        assert_eq!(rows.len(), 1, "only the HTTP record is stored: {rows:#?}");
        let row = &rows[0];
        for key in [
            "method",
            "path",
            "status",
            "client_ip",
            "user_agent",
            "time_us",
            "sensor",
            "body",
        ] {
            assert_eq!(
                row[key], expected[key],
                "{transport}: column {key} of {row:#}"
            );
        }
        assert_eq!(row["severity"], "INFO", "{row:#}");
        assert_eq!(row["source"], "otlp", "{row:#}");
    }
}

/// Builds an OTLP/JSON trace export of `spans`, in the protobuf JSON form
/// that OTLP/HTTP clients send.
fn json_export(spans: &[Value]) -> Vec<u8> {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "curl-service"}}
            ]},
            "scopeSpans": [{"scope": {"name": "curl"}, "spans": spans}]
        }]
    })
    .to_string()
    .into_bytes()
}

fn json_span(path: &str, trace_id: &str) -> Value {
    json!({
        "traceId": trace_id,
        "spanId": "EEE19B7EC3C1B174",
        "name": "GET",
        "kind": 2,
        "startTimeUnixNano": "1720000000000000000",
        "endTimeUnixNano": "1720000000042000000",
        "attributes": [
            {"key": "http.request.method", "value": {"stringValue": "GET"}},
            {"key": "url.path", "value": {"stringValue": path}},
            {"key": "http.response.status_code", "value": {"intValue": "204"}},
            {"key": "client.address", "value": {"stringValue": "192.0.2.77"}}
        ]
    })
}

const TRACE_ID: &str = "5B8EFFF798038103D269B633813FC60C";

#[test]
fn curl_json_export_plain_and_gzip() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let plain = json_export(&[json_span("/json/plain", TRACE_ID)]);
    let response = post_json(&server, "/v1/traces?sensor=curl-edge", &plain, &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        response.json(),
        json!({}),
        "full success leaves partialSuccess unset"
    );

    let gzipped = gzip(&json_export(&[json_span("/json/gzip", TRACE_ID)]));
    let response = post_json(
        &server,
        "/v1/traces",
        &gzipped,
        &["-H", "Content-Encoding: gzip"],
    );
    assert_eq!(response.status, 200, "{}", response.text());

    wait_for_rows(&server, "/json/", 2);
    let rows = server.query(
        "SELECT path, status, duration_ms, trace_id, client_ip, sensor, \
         CAST(time AS BIGINT) AS time_us FROM events WHERE path LIKE '/json/%' ORDER BY path",
    );
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[0]["path"], "/json/gzip");
    assert_eq!(
        rows[0]["sensor"], "curl-service",
        "without ?sensor= the sensor is service.name"
    );
    let plain = &rows[1];
    assert_eq!(plain["path"], "/json/plain");
    assert_eq!(
        plain["sensor"], "curl-edge",
        "?sensor= wins over service.name"
    );
    assert_eq!(plain["status"], 204);
    assert_eq!(plain["duration_ms"], 42.0);
    assert_eq!(plain["trace_id"], TRACE_ID.to_lowercase());
    assert_eq!(plain["client_ip"], "192.0.2.77");
    assert_eq!(plain["time_us"], 1_720_000_000_000_000_i64);
}

#[test]
fn partial_success_is_reported() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let body = json_export(&[
        json_span("/partial/good", TRACE_ID),
        json_span("/partial/bad", "xyz"),
    ]);
    let response = post_json(&server, "/v1/traces", &body, &[]);
    assert_eq!(
        response.status,
        200,
        "partial success is a 200: {}",
        response.text()
    );
    let partial = &response.json()["partialSuccess"];
    assert_eq!(partial["rejectedSpans"], "1", "{partial}");
    let message = partial["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("resourceSpans[0].scopeSpans[0].spans[1]: invalid traceId \"xyz\""),
        "the message names the span and the reason: {message}"
    );

    let grpc = otlp_client(&[
        "grpc-call",
        "--endpoint",
        server.otlp_grpc_url(),
        "--case",
        "bad-id",
    ]);
    assert_eq!(grpc["code"], "OK", "{grpc}");
    assert_eq!(grpc["has_partial_success"], true, "{grpc}");
    assert_eq!(grpc["rejected"], 1, "{grpc}");
    let message = grpc["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("invalid traceId 010203: expected 16 bytes, found 3"),
        "{message}"
    );
    let full = otlp_client(&[
        "grpc-call",
        "--endpoint",
        server.otlp_grpc_url(),
        "--case",
        "good",
    ]);
    assert_eq!(full["has_partial_success"], false, "{full}");

    wait_for_rows(&server, "/partial/", 1);
    wait_for_rows(&server, "/raw/", 2);
    assert_eq!(
        server.count("path LIKE '/partial/%'"),
        1,
        "the valid span is stored"
    );
    assert_eq!(server.count("path = '/raw/bad-id'"), 1);

    let rejects = read_rejects(server.data_dir());
    assert_eq!(rejects.len(), 2, "{rejects:#?}");
    let http_reject = rejects
        .iter()
        .find(|reject| {
            reject["source"]
                .as_str()
                .unwrap_or("")
                .starts_with("otlp-http:")
        })
        .expect("the OTLP/HTTP reject is in the rejects file");
    assert_eq!(http_reject["format"], "otlp");
    assert_eq!(http_reject["line"], 2, "the second span of the request");
    let text = http_reject["text"].as_str().expect("the reject has a text");
    let export: Value = serde_json::from_str(text).expect("the reject text is OTLP/JSON");
    assert_eq!(
        export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"], "xyz",
        "the rejects file keeps the rejected span: {text}"
    );
    let metrics = metric_lines(&server);
    assert_eq!(
        metric(&metrics, "traces", "http", "rejected"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "traces", "grpc", "rejected"),
        1.0,
        "{metrics}"
    );
}

/// Reads every record of the rejects files under `data_dir`.
fn read_rejects(data_dir: &Path) -> Vec<Value> {
    let dir = data_dir.join("rejects");
    let mut records = Vec::new();
    for entry in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
    {
        let path = entry.expect("a rejects directory entry").path();
        let text = std::fs::read_to_string(&path).expect("reading a rejects file");
        records.extend(
            text.lines()
                .map(|line| serde_json::from_str::<Value>(line).expect("a rejects line is JSON")),
        );
    }
    records
}

#[test]
fn malformed_bodies_are_rejected() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let traces = format!("{}/v1/traces", server.otlp_http_url());

    let garbage = curl_post(
        &server,
        &traces,
        b"\xff\xff\xff\xff not protobuf",
        &["-H", "Content-Type: application/x-protobuf"],
    );
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    assert_eq!(
        garbage.header("content-type").as_deref(),
        Some("application/x-protobuf"),
        "the Status body is in the request's encoding"
    );
    assert!(
        garbage
            .text()
            .contains("the body is not a protobuf ExportTraceServiceRequest"),
        "{}",
        garbage.text()
    );

    let bad_json = post_json(&server, "/v1/traces", b"{\"resourceSpans\": [", &[]);
    assert_eq!(bad_json.status, 400, "{}", bad_json.text());
    let status = bad_json.json();
    assert_eq!(status["code"], 3, "INVALID_ARGUMENT: {status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid JSON"),
        "{status}"
    );

    let wrong_signal = post_json(&server, "/v1/logs", &json_export(&[]), &[]);
    assert_eq!(wrong_signal.status, 400, "{}", wrong_signal.text());

    let not_gzip = post_json(
        &server,
        "/v1/traces",
        b"{}",
        &["-H", "Content-Encoding: gzip"],
    );
    assert_eq!(not_gzip.status, 400, "{}", not_gzip.text());

    let text = curl_post(&server, &traces, b"{}", &["-H", "Content-Type: text/plain"]);
    assert_eq!(text.status, 415, "{}", text.text());

    let brotli = post_json(
        &server,
        "/v1/traces",
        b"{}",
        &["-H", "Content-Encoding: br"],
    );
    assert_eq!(brotli.status, 415, "{}", brotli.text());

    let metrics_path = post_json(&server, "/v1/metrics", b"{}", &[]);
    assert_eq!(metrics_path.status, 404, "{}", metrics_path.text());

    let over_limit = vec![b' '; 20 * 1024 * 1024 + 1];
    let too_large = post_json(&server, "/v1/traces", &over_limit, &[]);
    assert_eq!(too_large.status, 413, "{}", too_large.text());
    let bomb = post_json(
        &server,
        "/v1/traces",
        &gzip(&over_limit),
        &["-H", "Content-Encoding: gzip"],
    );
    assert_eq!(
        bomb.status,
        413,
        "the limit also applies after decompression: {}",
        bomb.text()
    );
    let oversize = otlp_client(&[
        "grpc-call",
        "--endpoint",
        server.otlp_grpc_url(),
        "--case",
        "oversize",
    ]);
    assert_eq!(
        oversize["code"], "RESOURCE_EXHAUSTED",
        "OTLP clients do not retry this code: {oversize}"
    );

    let empty = post_json(&server, "/v1/traces", b"{}", &[]);
    assert_eq!(
        empty.status,
        200,
        "an empty export succeeds: {}",
        empty.text()
    );

    assert_eq!(server.count(""), 0, "nothing was stored");
}

#[test]
fn tokens_on_both_receivers() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let shipper = create_token(server.data_dir(), "otel-collector", &["ingest"]);
    let reader = create_token(server.data_dir(), "grafana", &["read"]);
    let bearer = |secret: &str| format!("Authorization: Bearer {secret}");
    let body = json_export(&[json_span("/auth/http", TRACE_ID)]);

    let anonymous = post_json(&server, "/v1/traces", &body, &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let challenge = anonymous.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(anonymous.json()["code"], 16, "UNAUTHENTICATED");

    let read_only = post_json(
        &server,
        "/v1/traces",
        &body,
        &["-H", &bearer(&reader.secret)],
    );
    assert_eq!(read_only.status, 403, "{}", read_only.text());
    assert!(
        read_only.text().contains("lacks the ingest role"),
        "{}",
        read_only.text()
    );

    let accepted = post_json(
        &server,
        "/v1/traces",
        &body,
        &["-H", &bearer(&shipper.secret)],
    );
    assert_eq!(accepted.status, 200, "{}", accepted.text());

    let grpc = |token: Option<&str>| {
        let mut args = vec!["grpc-call", "--endpoint", server.otlp_grpc_url()];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        otlp_client(&args)
    };
    assert_eq!(grpc(None)["code"], "UNAUTHENTICATED");
    assert_eq!(grpc(Some(&reader.secret))["code"], "PERMISSION_DENIED");
    assert_eq!(grpc(Some(&shipper.secret))["code"], "OK");

    for transport in ["grpc", "http"] {
        let endpoint = match transport {
            "grpc" => server.otlp_grpc_url(),
            _ => server.otlp_http_url(),
        };
        let run = format!("auth-{transport}");
        let without = otlp_client(&[
            "spans",
            "--transport",
            transport,
            "--endpoint",
            endpoint,
            "--run",
            &run,
        ]);
        assert_eq!(without["result"], "FAILURE", "{transport}: {without}");
        let with = otlp_client(&[
            "spans",
            "--transport",
            transport,
            "--endpoint",
            endpoint,
            "--run",
            &run,
            "--token",
            &shipper.secret,
        ]);
        assert_eq!(with["result"], "SUCCESS", "{transport}: {with}");
    }

    let stored_paths = || {
        let query = curl_post(
            &server,
            &format!("{}/api/v1/query", server.url()),
            br#"{"sql": "SELECT path FROM events WHERE path LIKE '/auth/%' OR path LIKE '/raw/%' OR path LIKE '/api/auth-%' ORDER BY path"}"#,
            &["-H", &bearer(&reader.secret), "-H", "Content-Type: application/json"],
        );
        assert_eq!(query.status, 200, "{}", query.text());
        query
            .json()
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| row["path"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<String>>()
    };
    let paths = poll_until(Duration::from_secs(20), "six stored events", || {
        let paths = stored_paths();
        (paths.len() >= 6).then_some(paths)
    });
    assert_eq!(
        paths,
        [
            "/api/auth-grpc/orders/42",
            "/api/auth-grpc/payments",
            "/api/auth-http/orders/42",
            "/api/auth-http/payments",
            "/auth/http",
            "/raw/good",
        ],
        "only the exports with the ingest token were stored"
    );
}

/// Makes a self-signed certificate for `localhost` and 127.0.0.1 with openssl.
fn self_signed(dir: &Path) -> TlsFiles {
    let cert = dir.join("otlp.crt");
    let key = dir.join("otlp.key");
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // rustls rejects a CA certificate as a server's, and `req -x509` makes one by default.
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
        "openssl req failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    TlsFiles { cert, key }
}

#[test]
fn tls_on_both_receivers() {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let files = self_signed(dir.path());
    let ca: PathBuf = files.cert.clone();
    let server = TestServer::start(ServerOptions::quick_flush().with_tls(files));
    assert!(server.tls_enabled(), "every listener announces TLS");
    assert!(server.otlp_grpc_url().starts_with("https://"));

    let ca = ca.to_str().expect("the certificate path is UTF-8");
    for transport in ["grpc", "http"] {
        let run = format!("tls-{transport}");
        let expected = export_spans(&server, transport, &run, &["--ca", ca]);
        check_span_events(&server, &run, &expected);
    }

    let plain_url = server.otlp_http_url().replacen("https://", "http://", 1);
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{}",
        ])
        .arg(format!("{plain_url}/v1/traces"))
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    assert!(
        !output.status.success() || String::from_utf8_lossy(&output.stdout) != "200",
        "plain HTTP to the TLS port must fail"
    );
}

/// Returns the `apitrail_otlp_items_total` lines of `/metrics`.
fn metric_lines(server: &TestServer) -> String {
    let (status, text) = server.api().get("/metrics");
    assert_eq!(status, 200, "GET /metrics failed: {text}");
    text.lines()
        .filter(|line| line.starts_with("apitrail_otlp_items_total{"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads one `apitrail_otlp_items_total` series from `lines`, 0 when absent.
fn metric(lines: &str, signal: &str, transport: &str, outcome: &str) -> f64 {
    let labels = [
        format!("signal=\"{signal}\""),
        format!("transport=\"{transport}\""),
        format!("outcome=\"{outcome}\""),
    ];
    lines
        .lines()
        .find(|line| labels.iter().all(|label| line.contains(label.as_str())))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().expect("a metric value"))
}
