//! `apitrail simulate` as a user runs it: into a file, and through a
//! running server, whose stored events must match the file of the same seed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use apitrail_tests::{ServerOptions, TestServer, non_blank_lines, read_file, run_cli};
use serde_json::Value;

/// A small world: three partners for one week at a fifth of the usual volume.
const SMALL: [&str; 8] = [
    "--seed",
    "11",
    "--weeks",
    "1",
    "--partners",
    "3",
    "--scale",
    "0.2",
];

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

fn simulate(extra: &[&str]) -> Output {
    let mut args = vec!["simulate"];
    args.extend(SMALL);
    args.extend(extra);
    run_cli(args)
}

/// Events per consumer in an `aws_apigateway` file, read from `apiKeyId`.
fn consumers_in_file(path: &Path) -> BTreeMap<String, i64> {
    let text = String::from_utf8(read_file(path)).expect("the simulation writes UTF-8");
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let record: Value = serde_json::from_str(line).expect("each line is JSON");
        let key = record["apiKeyId"]
            .as_str()
            .expect("every call has an API key")
            .to_string();
        *counts.entry(key).or_default() += 1;
    }
    counts
}

fn truth_records(path: &Path) -> Vec<Value> {
    let text = String::from_utf8(read_file(path)).expect("the truth is UTF-8");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each truth line is JSON"))
        .collect()
}

fn consumers_in_server(server: &TestServer) -> BTreeMap<String, i64> {
    server
        .query("SELECT consumer, count(*) AS n FROM events GROUP BY consumer")
        .into_iter()
        .map(|row| {
            let consumer = row["consumer"]
                .as_str()
                .expect("every event has a consumer")
                .to_string();
            let count = row["n"].as_i64().expect("a count");
            (consumer, count)
        })
        .collect()
}

#[test]
fn server_matches_file_output() {
    let server = TestServer::start(ServerOptions::no_flush());
    let dir = server.scratch_dir();
    let file = dir.join("events.jsonl");
    let file_truth = dir.join("file-truth.jsonl");
    let server_truth = dir.join("server-truth.jsonl");

    let output = simulate(&[
        "--output",
        file.to_str().expect("a UTF-8 path"),
        "--truth",
        file_truth.to_str().expect("a UTF-8 path"),
    ]);
    assert_success(&output, "simulate --output");
    let lines = non_blank_lines(&file) as i64;
    assert!(lines > 1_000, "the file has {lines} events");

    // Small batches, so the upload takes many requests.
    let output = simulate(&[
        "--server",
        server.url(),
        "--batch-bytes",
        "200000",
        "--truth",
        server_truth.to_str().expect("a UTF-8 path"),
    ]);
    assert_success(&output, "simulate --server");
    assert_eq!(
        server.count(""),
        lines,
        "stored events equal the file's lines"
    );
    assert_eq!(
        read_file(&file_truth),
        read_file(&server_truth),
        "the truth of the same seed is the same"
    );

    let expected = consumers_in_file(&file);
    let stored = consumers_in_server(&server);
    assert_eq!(stored, expected, "events per consumer");
    let truth = truth_records(&server_truth);
    assert_eq!(truth.len(), 9, "every scenario once by default");
    for record in &truth {
        let consumer = record["consumer"].as_str().expect("a consumer");
        let events = record["events"].as_i64().expect("an event count");
        let stored_events = stored.get(consumer).copied().unwrap_or(0);
        assert!(
            events > 0 && stored_events >= events,
            "{consumer} of {} has {stored_events} stored events, the truth counts {events}",
            record["scenario"]
        );
    }

    // The same run again sends the same batch ids, which add nothing.
    let output = simulate(&[
        "--server",
        server.url(),
        "--batch-bytes",
        "200000",
        "--truth",
        server_truth.to_str().expect("a UTF-8 path"),
    ]);
    assert_success(&output, "simulate --server again");
    assert_eq!(server.count(""), lines, "a repeated run adds nothing");
    assert!(
        stderr_text(&output).contains("were stored before"),
        "{}",
        stderr_text(&output)
    );
}

#[test]
fn zero_partners_fails_with_reason() {
    let dir = tempfile_dir();
    let truth = dir.path().join("truth.jsonl");
    let output = run_cli([
        "simulate",
        "--partners",
        "0",
        "--output",
        "-",
        "--truth",
        truth.to_str().expect("a UTF-8 path"),
    ]);
    assert!(!output.status.success(), "zero partners is accepted");
    assert!(
        stderr_text(&output).contains("at least one partner"),
        "{}",
        stderr_text(&output)
    );
}

#[test]
fn stdout_output_and_scenario_list() {
    let dir = tempfile_dir();
    let truth = dir.path().join("truth.jsonl");
    let output = simulate(&[
        "--format",
        "aws_alb",
        "--scenarios",
        "volume_spike:partner=p02,endpoint_probing",
        "--output",
        "-",
        "--truth",
        truth.to_str().expect("a UTF-8 path"),
    ]);
    assert_success(&output, "simulate --output -");
    assert!(
        stdout_text(&output)
            .lines()
            .all(|line| line.starts_with("https "))
    );
    let records = truth_records(&truth);
    let names: Vec<&str> = records
        .iter()
        .filter_map(|r| r["scenario"].as_str())
        .collect();
    assert_eq!(names, ["volume_spike", "endpoint_probing"]);
    assert_eq!(records[0]["partner"], "p02");
    assert_eq!(records[0]["format"], "aws_alb");
}

fn tempfile_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("apitrail-simulate-")
        .tempdir()
        .expect("creating a temporary directory")
}
