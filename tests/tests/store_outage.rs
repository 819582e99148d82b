//! A server whose object store fails: ingest goes on into local staging,
//! returns 503 once staging fills its budget, and commits everything when
//! the store works again.
//!
//! The fault is real, on the local disk that serves as the object store: a
//! plain file sits where the table's partition directory for the events'
//! day must go, so writing their Parquet file fails until the test removes it.

use std::time::Duration;

use apitrail_tests::{ServerOptions, TestServer, clf_line, poll_until};

fn lines(tag: &str, count: usize) -> String {
    (0..count)
        .map(|n| clf_line("10/Oct/2024:13:55:36 +0000", &format!("/{tag}/{n}"), 200) + "\n")
        .collect()
}

fn staged_events_files(server: &TestServer) -> usize {
    std::fs::read_dir(server.data_dir().join("staging"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("events-"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn failing_store_stages_then_rejects_when_full() {
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("apitrail.toml");
    // The first staged flush fills this budget.
    std::fs::write(&config, "staging_max_bytes = 1\n").unwrap();
    let mut server = TestServer::start(ServerOptions {
        extra_args: vec!["--config".to_string(), config.display().to_string()],
        ..ServerOptions::quick_flush()
    });
    let blocker = server.data_dir().join("table").join("day=2024-10-10");
    std::fs::write(&blocker, "not a directory\n").unwrap();

    let (status, report) = server.ingest(Some("clf"), lines("first", 5));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 5, "{report}");
    // The gauge changes once the store counts the file against the budget,
    // which is after the file appears on disk.
    poll_until(
        Duration::from_secs(30),
        "the failed flush to be staged",
        || {
            let staged = server.api().metric("apitrail_staged_files").unwrap_or(0.0);
            (staged >= 1.0).then_some(())
        },
    );
    assert!(
        staged_events_files(&server) >= 1,
        "the staged events file is in the data directory"
    );
    assert_eq!(
        server.count("path LIKE '/first/%'"),
        5,
        "staged events are queryable"
    );

    let (status, report) = server.ingest(Some("clf"), lines("rejected", 3));
    assert_eq!(status, 503, "a full staging area rejects events: {report}");
    let message = report["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("staging_max_bytes"),
        "the reason names the setting: {message}"
    );
    let (status, retry_after) = retry_after_of_rejection(&server);
    assert_eq!(status, 503);
    assert_eq!(
        retry_after.as_deref(),
        Some("30"),
        "503 carries Retry-After"
    );

    std::fs::remove_file(&blocker).unwrap();
    poll_until(
        Duration::from_secs(90),
        "the staged flush to be committed once the store works",
        || {
            let staged = server
                .api()
                .metric("apitrail_staged_files")
                .unwrap_or(f64::NAN);
            (staged == 0.0).then_some(())
        },
    );
    let (status, report) = server.ingest(Some("clf"), lines("after", 4));
    assert_eq!(status, 200, "ingest is accepted again: {report}");
    server.api().wait_for_empty_buffer();
    assert_eq!(server.count("path LIKE '/first/%'"), 5, "staged rows once");
    assert_eq!(
        server.count("path LIKE '/rejected/%'"),
        0,
        "rejected rows absent"
    );
    assert_eq!(server.count("path LIKE '/after/%'"), 4);

    server.stop();
    server.restart();
    assert_eq!(server.count(""), 9, "the same after a restart");
    assert_eq!(
        server.query("SELECT CAST(sum(calls) AS BIGINT) AS n FROM endpoints")[0]["n"],
        9,
        "the inventory counts each event once"
    );
}

/// Sends a rejected ingest and returns its status and `Retry-After` header.
fn retry_after_of_rejection(server: &TestServer) -> (u16, Option<String>) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/ingest", server.url()))
        .query(&[("format", "clf")])
        .body(lines("rejected", 1))
        .send()
        .expect("the server answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (response.status().as_u16(), retry_after)
}
