//! The `[lifecycle]` settings through a running server: events of days past
//! retention are reported as skipped at ingest, the background task compacts
//! a closed day, and a views retention shorter than the events' stops the
//! server from starting.
//!
//! Compaction, vacuum and the retention cutoffs themselves are tested with a
//! fixed clock in `storage/tests/lifecycle.rs`; a server reads the system clock.

use tempfile::TempDir;

use std::time::Duration;

use apitrail_tests::{ServerOptions, TestServer, clf_line, poll_until, run_cli};

/// Starts a server with `toml` as its configuration file; the file's directory must outlive it.
fn start_with_config(toml: &str) -> (TestServer, TempDir) {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let path = dir.path().join("apitrail.toml");
    std::fs::write(&path, toml).expect("writing the configuration file");
    let mut options = ServerOptions::quick_flush();
    options
        .extra_args
        .extend(["--config".to_string(), path.display().to_string()]);
    (TestServer::start(options), dir)
}

/// Formats the moment `days_ago` days before now as a CLF time.
fn clf_time(days_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days_ago))
        .format("%d/%b/%Y:%H:%M:%S +0000")
        .to_string()
}

#[test]
fn ingest_skips_days_past_retention() {
    let (server, _config) = start_with_config("[lifecycle]\nretention_days = 7\n");
    let mut body = String::new();
    for n in 0..3 {
        body.push_str(&clf_line(&clf_time(30), &format!("/old/{n}"), 200));
    }
    for n in 0..4 {
        body.push_str(&clf_line(&clf_time(1), &format!("/new/{n}"), 200));
    }

    let (status, report) = server.ingest(Some("clf"), body);

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 4, "{report}");
    assert_eq!(report["skipped"], 3, "{report}");
    assert_eq!(
        report["skipped_reasons"]["older_than_retention"], 3,
        "{report}"
    );
    assert_eq!(server.count("path LIKE '/old/%'"), 0);
    assert_eq!(server.count("path LIKE '/new/%'"), 4);
}

#[test]
fn ingest_keeps_old_days_without_retention() {
    let (server, _config) = start_with_config("");
    let body = clf_line(&clf_time(400), "/ancient/1", 200);
    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["skipped"], 0, "{report}");
    assert!(
        report["skipped_reasons"]
            .as_object()
            .is_none_or(|reasons| !reasons.contains_key("older_than_retention")),
        "{report}"
    );
}

#[test]
fn server_compacts_closed_day() {
    let (server, _config) = start_with_config(
        "[lifecycle]\ncompaction_target_bytes = 1048576\ncompaction_min_files = 3\ninterval_secs = 1\n",
    );
    // Three flushes make three small files of the day before yesterday.
    for flush in 0..3 {
        let body: String = (0..5)
            .map(|n| clf_line(&clf_time(2), &format!("/closed/{flush}/{n}"), 200))
            .collect();
        let (status, report) = server.ingest(Some("clf"), body);
        assert_eq!(status, 200, "{report}");
        server.api().wait_for_flushed_rows(5 * (flush + 1));
    }

    let api = server.api();
    poll_until(Duration::from_secs(30), "a compaction", || {
        api.metric("apitrail_compactions_total")
            .filter(|n| *n >= 1.0)
    });

    assert_eq!(
        api.metric("apitrail_compaction_files_before_total"),
        Some(3.0)
    );
    assert_eq!(
        api.metric("apitrail_compaction_files_after_total"),
        Some(1.0)
    );
    assert_eq!(server.count("path LIKE '/closed/%'"), 15);
}

#[test]
fn short_views_retention_fails_start() {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let config = dir.path().join("apitrail.toml");
    std::fs::write(
        &config,
        "[lifecycle]\nretention_days = 30\nviews_retention_days = 7\n",
    )
    .expect("writing the configuration file");
    let data_dir = dir.path().join("data");
    let mut args = vec![
        "serve".to_string(),
        "--config".to_string(),
        config.display().to_string(),
        "--data-dir".to_string(),
        data_dir.display().to_string(),
    ];
    for flag in [
        "--http-addr",
        "--flight-addr",
        "--pg-addr",
        "--otlp-grpc-addr",
        "--otlp-http-addr",
    ] {
        args.push(flag.to_string());
        args.push("127.0.0.1:0".to_string());
    }

    let output = run_cli(&args);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the server must not start: {stderr}"
    );
    assert!(
        stderr.contains("views retention (7 days) is shorter than the events retention (30 days)"),
        "the error names both settings: {stderr}"
    );
}
