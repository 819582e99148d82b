//! The ways events come in besides a plain log body: retried batches
//! (`batch_id`), the NDJSON that log shippers post, and the Elasticsearch
//! bulk API.
//!
//! Vector and Fluent Bit cannot be installed here (neither is published on
//! crates.io, PyPI, npm or Debian), so their tests post the bodies those
//! shippers send, as their documentation describes them. The bulk API is
//! driven by a real client, opensearch-py's `helpers.bulk`, and by curl.
//!
//! Needs `tests/setup.sh` (curl and the Python clients in tests/.venv).

use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use apitrail_tests::{
    ServerOptions, TestServer, clf_line, create_token, describe_exit, run_python,
};

/// CLF lines with distinct paths `/b/<tag>/<n>`, one per call.
fn numbered_body(tag: &str, lines: usize) -> String {
    (0..lines)
        .map(|n| clf_line("10/Oct/2024:13:55:36 +0000", &format!("/b/{tag}/{n}"), 200) + "\n")
        .collect()
}

/// Posts a body with `batch_id`; returns the status, the report, and whether
/// the response replays an earlier attempt.
fn post_batch(server: &TestServer, batch_id: &str, body: &str) -> (u16, Value, bool) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/ingest", server.url()))
        .query(&[("format", "clf"), ("batch_id", batch_id)])
        .body(body.to_string())
        .timeout(std::time::Duration::from_secs(120))
        .send()
        .unwrap_or_else(|e| panic!("posting batch {batch_id} failed: {e}"));
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("apitrail-batch-replayed")
        .is_some_and(|v| v == "true");
    let text = response.text().expect("reading the ingest answer");
    let report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("ingest answered {status} with non-JSON ({e}): {text}"));
    (status, report, replayed)
}

fn count_tag(server: &TestServer, tag: &str) -> i64 {
    server.count(&format!("path LIKE '/b/{tag}/%'"))
}

#[test]
fn batch_retry_replays_first_report() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = numbered_body("retry", 40);
    let (status, first, replayed) = post_batch(&server, "shipper-1:0001", &body);
    assert_eq!(status, 200, "{first}");
    assert!(!replayed, "a first attempt is not a replay");
    assert_eq!(first["accepted"], 40, "{first}");

    let (status, second, replayed) = post_batch(&server, "shipper-1:0001", &body);
    assert_eq!(status, 200, "{second}");
    assert!(replayed, "the retry must be marked as a replay");
    assert_eq!(second, first, "a retry is answered with the first report");
    assert_eq!(
        count_tag(&server, "retry"),
        40,
        "the retry must add no rows"
    );

    // Another id with the same body is another batch.
    let (_, third, replayed) = post_batch(&server, "shipper-1:0002", &body);
    assert!(!replayed);
    assert_eq!(third["accepted"], 40);
    assert_eq!(count_tag(&server, "retry"), 80);
}

/// A replay is answered before the body is parsed. The client may still be
/// sending a large body then; the answer must reach it all the same, and the
/// connection must stay usable for the next request.
#[test]
fn replay_of_large_streamed_body_is_answered() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = numbered_body("large", 40_000);
    assert!(
        body.len() > 2_000_000,
        "the body must outsize socket buffers"
    );
    let (status, first, _) = post_batch(&server, "large-1", &body);
    assert_eq!(status, 200, "{first}");

    let client = reqwest::blocking::Client::new();
    for attempt in 1..=5 {
        // A reader body is sent with chunked encoding, a piece at a time.
        let reader = std::io::Cursor::new(body.clone().into_bytes());
        let response = client
            .post(format!("{}/api/v1/ingest", server.url()))
            .query(&[("format", "clf"), ("batch_id", "large-1")])
            .body(reqwest::blocking::Body::new(reader))
            .timeout(std::time::Duration::from_secs(120))
            .send()
            .unwrap_or_else(|e| panic!("replay attempt {attempt} got no answer: {e:?}"));
        assert_eq!(response.status().as_u16(), 200, "replay attempt {attempt}");
        let replayed = response
            .headers()
            .get("apitrail-batch-replayed")
            .is_some_and(|v| v == "true");
        assert!(replayed, "attempt {attempt} must be marked as a replay");
        let report: Value = response.json().expect("a JSON report");
        assert_eq!(
            report, first,
            "attempt {attempt} answers with the first report"
        );
    }
    assert_eq!(count_tag(&server, "large"), 40_000, "replays add no rows");
}

#[test]
fn batch_id_survives_flush_and_restart() {
    let mut server = TestServer::start(ServerOptions::quick_flush());
    let body = numbered_body("restart", 25);
    let (_, first, _) = post_batch(&server, "b-restart", &body);
    assert_eq!(first["accepted"], 25, "{first}");
    server.api().wait_for_flushed_rows(25);
    server.stop();
    server.restart();

    let (status, again, replayed) = post_batch(&server, "b-restart", &body);
    assert_eq!(status, 200, "{again}");
    assert!(
        replayed,
        "after a flush emptied the WAL and a restart, the ledger file must still know the batch"
    );
    assert_eq!(again, first);
    assert_eq!(count_tag(&server, "restart"), 25);
}

#[test]
fn batch_crash_resumes_after_stored_lines() {
    // More than one 4 MiB chunk, so the crash falls between two chunks.
    const LINES: usize = 70_000;
    let body = numbered_body("crash", LINES);
    assert!(
        body.len() > 5 * 1024 * 1024,
        "the body must span several chunks"
    );

    let mut server =
        TestServer::start(ServerOptions::no_flush().with_failpoint("ingest_after_chunk"));
    let result = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/ingest", server.url()))
        .query(&[("format", "clf"), ("batch_id", "b-crash")])
        .body(body.clone())
        .timeout(std::time::Duration::from_secs(120))
        .send();
    assert!(
        result.is_err() || !result.as_ref().unwrap().status().is_success(),
        "the server should crash before it answers"
    );
    let exit = server.wait_for_exit(std::time::Duration::from_secs(30));
    assert!(
        !exit.success(),
        "the server must abort at the failpoint, but ended with {}",
        describe_exit(exit)
    );

    server.restart_with(ServerOptions::no_flush());
    let stored = count_tag(&server, "crash");
    assert!(
        stored > 0 && stored < LINES as i64,
        "the crash should leave part of the batch stored, found {stored} rows"
    );
    let (status, report, replayed) = post_batch(&server, "b-crash", &body);
    assert_eq!(status, 200, "{report}");
    assert!(!replayed, "an incomplete batch is resumed, not replayed");
    assert_eq!(
        report["accepted"], LINES,
        "the report covers the whole batch, both attempts: {report}"
    );
    assert_eq!(
        count_tag(&server, "crash"),
        LINES as i64,
        "every line exactly once"
    );
    let distinct =
        server.query("SELECT count(DISTINCT path) AS n FROM events WHERE path LIKE '/b/crash/%'");
    assert_eq!(distinct[0]["n"], LINES, "no line may be stored twice");
}

#[test]
fn batch_concurrent_retries_store_once() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = numbered_body("together", 2_000);
    let answers: Vec<(u16, Value, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| post_batch(&server, "b-together", &body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|(status, _, _)| *status == 200),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|(_, _, replayed)| !replayed).count(),
        1,
        "exactly one request stores the batch, the others replay it"
    );
    assert_eq!(count_tag(&server, "together"), 2_000);
}

#[test]
fn batch_id_invalid_rejected() {
    let server = TestServer::start(ServerOptions::no_flush());
    let long = "x".repeat(257);
    for id in ["", long.as_str(), "tab\there"] {
        let (status, report, _) = post_batch(&server, id, "");
        assert_eq!(status, 400, "batch id {id:?}: {report}");
        assert!(
            report["error"].as_str().unwrap_or("").contains("batch_id"),
            "{report}"
        );
    }
}

/// Builds the body of a Vector `http` sink with `encoding.codec = "json"`
/// and newline framing: one object per event, the line under `message`.
fn vector_body(lines: &[String]) -> String {
    lines
        .iter()
        .map(|line| {
            json!({
                "file": "/var/log/nginx/access.log",
                "host": "web-1",
                "message": line,
                "source_type": "file",
                "timestamp": "2024-10-10T13:55:36.123Z"
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// Fluent Bit's `http` output: `json_lines` posts one object per record,
/// `json` one array of them; the tail input puts the line under `log`.
fn fluent_bit_bodies(lines: &[String]) -> (String, String) {
    let records: Vec<Value> = lines
        .iter()
        .map(|line| json!({ "date": 1728568536.123, "log": line }))
        .collect();
    let json_lines = records.iter().map(|r| r.to_string() + "\n").collect();
    (json_lines, Value::Array(records).to_string())
}

#[test]
fn shipper_bodies_parse_wrapped_lines() {
    let server = TestServer::start(ServerOptions::no_flush());
    let lines = |tag: &str| -> Vec<String> {
        (0..5)
            .map(|n| clf_line("10/Oct/2024:13:55:36 +0000", &format!("/b/{tag}/{n}"), 200))
            .collect()
    };

    let (status, report) = server.ingest(None, vector_body(&lines("vector")));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["format"].as_str(), report["accepted"].as_u64()),
        (Some("clf"), Some(5)),
        "the format is detected from the wrapped lines: {report}"
    );
    let rows = server.query(
        "SELECT attributes['shipper.file'] AS file, attributes['shipper.host'] AS host \
         FROM events WHERE path = '/b/vector/0'",
    );
    assert_eq!(rows[0]["file"], "/var/log/nginx/access.log", "{rows:?}");
    assert_eq!(rows[0]["host"], "web-1", "{rows:?}");

    let (json_lines, array) = fluent_bit_bodies(&lines("fluentbit"));
    for body in [json_lines, array] {
        let (status, report) = server.ingest(Some("clf"), body);
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], 5, "{report}");
    }
    assert_eq!(count_tag(&server, "fluentbit"), 10);
}

/// Runs curl against `path` with `args` and returns status and body.
fn curl(server: &TestServer, path: &str, args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("{}{path}", server.url()))
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    assert!(
        output.status.success(),
        "curl {path} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').expect("curl printed the status");
    (
        status.trim().parse().expect("a numeric status"),
        body.to_string(),
    )
}

/// Counts the events whose path is LIKE `pattern`, querying with a token,
/// for servers where tokens exist.
fn count_as(server: &TestServer, secret: &str, pattern: &str) -> i64 {
    let sql =
        json!({ "sql": format!("SELECT count(*) AS n FROM events WHERE path LIKE '{pattern}'") });
    let (status, text) = curl(
        server,
        "/api/v1/query",
        &[
            "-H",
            &format!("Authorization: Bearer {secret}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &sql.to_string(),
        ],
    );
    assert_eq!(status, 200, "counting {pattern}: {text}");
    let rows: Value = serde_json::from_str(&text).expect("a JSON result");
    rows[0]["n"]
        .as_i64()
        .unwrap_or_else(|| panic!("no count in {rows}"))
}

/// Builds a bulk body: one `create` action into `index` per line, the line inside
/// a Filebeat-style document, then one document that is not a log line.
fn bulk_body(index: &str, lines: &[String]) -> String {
    let mut body = String::new();
    for line in lines {
        body.push_str(&json!({ "create": { "_index": index } }).to_string());
        body.push('\n');
        body.push_str(
            &json!({ "@timestamp": "2024-10-10T13:55:36Z", "message": line }).to_string(),
        );
        body.push('\n');
    }
    body
}

#[test]
fn bulk_api_takes_documents_and_answers_per_item() {
    let server = TestServer::start(ServerOptions::no_flush());
    let lines: Vec<String> = (0..3)
        .map(|n| clf_line("10/Oct/2024:13:55:36 +0000", &format!("/b/bulk/{n}"), 200))
        .collect();
    let mut body = bulk_body("clf-2024.10.10", &lines);
    body.push_str("{\"index\":{\"_index\":\"clf\"}}\n{\"message\":\"not an access log line\"}\n");
    body.push_str("{\"delete\":{\"_index\":\"clf\",\"_id\":\"1\"}}\n");

    let (status, text) = curl(
        &server,
        "/api/v1/es/_bulk",
        &[
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            &body,
        ],
    );
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("a JSON answer");
    assert_eq!(answer["errors"], true, "{answer}");
    let items = answer["items"].as_array().expect("items");
    assert_eq!(items.len(), 5, "one item per action: {answer}");
    for item in &items[..3] {
        assert_eq!(item["create"]["status"], 201, "{item}");
    }
    assert_eq!(items[3]["index"]["status"], 400, "{answer}");
    assert!(
        items[3]["index"]["error"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("envelope"),
        "the reason names the problem inside the document: {answer}"
    );
    assert_eq!(items[4]["delete"]["status"], 400, "{answer}");
    assert_eq!(count_tag(&server, "bulk"), 3);

    let (status, info) = curl(&server, "/api/v1/es", &[]);
    assert_eq!(status, 200, "{info}");
    assert!(info.contains("\"number\""), "{info}");
}

#[test]
fn bulk_api_takes_shipper_credentials() {
    let server = TestServer::start(ServerOptions::no_flush());
    let token = create_token(server.data_dir(), "shipper", &["ingest"]);
    let reader = create_token(server.data_dir(), "analyst", &["read"]);
    let line = clf_line("10/Oct/2024:13:55:36 +0000", "/b/auth/0", 200);
    let body = bulk_body("clf", std::slice::from_ref(&line));
    let post = |extra: &[&str]| {
        let mut args = vec![
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            &body,
        ];
        args.extend_from_slice(extra);
        curl(&server, "/api/v1/es/_bulk", &args)
    };

    let (status, text) = post(&[]);
    assert_eq!(
        status, 401,
        "tokens exist, so a request without one is refused: {text}"
    );

    let basic = format!("{}:{}", token.name, token.secret);
    let api_key = format!(
        "ApiKey {}",
        STANDARD.encode(format!("{}:{}", token.name, token.secret))
    );
    let bearer = format!("Bearer {}", token.secret);
    for extra in [
        vec!["-u", basic.as_str()],
        vec!["-H", &format!("Authorization: {api_key}")],
        vec!["-H", &format!("Authorization: {bearer}")],
    ] {
        let extra: Vec<&str> = extra.iter().map(|s| s.as_ref()).collect();
        let (status, text) = post(&extra);
        assert_eq!(status, 200, "credentials {extra:?}: {text}");
    }
    let (status, text) = post(&["-H", &format!("Authorization: Bearer {}", reader.secret)]);
    assert_eq!(status, 403, "a read-only token cannot ingest: {text}");

    assert_eq!(
        count_as(&server, &reader.secret, "/b/auth/0"),
        3,
        "one row per accepted request"
    );
}

#[test]
fn bulk_api_works_with_the_opensearch_python_client() {
    let server = TestServer::start(ServerOptions::no_flush());
    let token = create_token(server.data_dir(), "bulk-client", &["ingest"]);
    let output = run_python(
        "es_bulk_client.py",
        &[server.url(), &token.name, &token.secret],
    );
    let result: Value = serde_json::from_str(output.trim())
        .unwrap_or_else(|e| panic!("the client printed {output:?}: {e}"));
    assert_eq!(result["ok"], 50, "{result}");
    assert_eq!(result["errors"], json!([]), "{result}");
    let reader = create_token(server.data_dir(), "analyst", &["read"]);
    assert_eq!(count_as(&server, &reader.secret, "/b/opensearch/%"), 50);
}
