//! The `[lifecycle]` settings through a running server: events of days past
//! retention are reported as skipped at ingest, the background task compacts
//! a closed day, and a views retention shorter than the events' stops the
//! server from starting.
//!
//! The same life cycle runs on an S3 store (moto on 127.0.0.1): compaction
//! leaves one object per closed day, and a retention added later removes an
//! expired day's objects from the bucket.
//!
//! Compaction, vacuum and the retention cutoffs themselves are tested with a
//! fixed clock in `storage/tests/lifecycle.rs`; a server reads the system clock.

use tempfile::TempDir;

use std::time::Duration;

use apitrail_tests::s3::S3Server;
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

/// Counts the Parquet objects of one day partition of the events table on `s3`.
fn parquet_objects(s3: &S3Server, day: &str) -> usize {
    s3.list("apitrail", &format!("prod/events/day={day}/"))
        .iter()
        .filter(|key| key.ends_with(".parquet"))
        .count()
}

#[test]
fn s3_store_compacts_and_expires_days() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&dir.path().join("moto.log"));
    s3.create_bucket("apitrail");
    let config_path = dir.path().join("apitrail.toml");
    let config = |retention: &str| {
        format!(
            "store = \"s3://apitrail/prod/events/\"\n\n{}\n[lifecycle]\ncompaction_target_bytes = 1048576\ncompaction_min_files = 2\ninterval_secs = 1\ngrace_period_secs = 1\n{retention}",
            s3.storage_options_toml()
        )
    };
    std::fs::write(&config_path, config("")).unwrap();
    let mut options = ServerOptions::quick_flush();
    options
        .extra_args
        .extend(["--config".to_string(), config_path.display().to_string()]);
    let mut server = TestServer::start(options);

    let now = chrono::Utc::now();
    let old = now - chrono::Duration::days(10);
    let recent = now - chrono::Duration::days(3);
    let clf = |moment: chrono::DateTime<chrono::Utc>| {
        moment.format("%d/%b/%Y:%H:%M:%S +0000").to_string()
    };
    let old_day = old.format("%Y-%m-%d").to_string();
    let recent_day = recent.format("%Y-%m-%d").to_string();

    // Two flushes make two small files of each closed day.
    for flush in 0..2 {
        let mut body = String::new();
        for n in 0..5 {
            body.push_str(&clf_line(&clf(old), &format!("/old/{flush}/{n}"), 200));
            body.push_str(&clf_line(
                &clf(recent),
                &format!("/recent/{flush}/{n}"),
                200,
            ));
        }
        let (status, report) = server.ingest(Some("clf"), body);
        assert_eq!(status, 200, "{report}");
        server.api().wait_for_flushed_rows(10 * (flush + 1));
    }

    poll_until(
        Duration::from_secs(60),
        "compaction and vacuum to leave one object per day in the bucket",
        || {
            let objects = (
                parquet_objects(&s3, &old_day),
                parquet_objects(&s3, &recent_day),
            );
            (objects == (1, 1)).then_some(())
        },
    );
    assert_eq!(
        server
            .api()
            .metric("apitrail_compaction_files_before_total"),
        Some(4.0),
        "two small files of each day were compacted"
    );
    assert_eq!(server.count("path LIKE '/old/%'"), 10);
    assert_eq!(server.count("path LIKE '/recent/%'"), 10);

    server.stop();
    std::fs::write(&config_path, config("retention_days = 7\n")).unwrap();
    server.restart();
    poll_until(
        Duration::from_secs(60),
        "retention and vacuum to delete the expired day's objects",
        || (parquet_objects(&s3, &old_day) == 0).then_some(()),
    );
    assert_eq!(
        server.count("path LIKE '/old/%'"),
        0,
        "the expired day is gone"
    );
    assert_eq!(
        server.count("path LIKE '/recent/%'"),
        10,
        "the day within the retention stays"
    );
    assert_eq!(parquet_objects(&s3, &recent_day), 1);
    assert_eq!(
        server.api().metric("apitrail_retention_days_removed_total"),
        Some(1.0)
    );
}
