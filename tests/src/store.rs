//! Helpers of the tests that point servers at one shared store. They write
//! tagged Envoy records and configuration files, hold the query results
//! compared between processes and engines, race two commits to one table
//! version, and run the restart check that every cloud store passes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_storage::AppendTable;
use apitrail_storage::table::TableSpec;
use arrow::record_batch::RecordBatch;
use deltalake::kernel::Transaction;
use serde_json::Value;
use url::Url;

use crate::Api;

/// Days that [`envoy_line`] spreads its records over.
pub const DAYS: [&str; 3] = ["2024-03-04", "2024-03-05", "2024-03-06"];

/// Builds one Envoy JSON record with request id `<tag>-<i>` and path
/// `/t/<tag>/<i>`; day, status, size and method vary with `i`.
pub fn envoy_line(tag: &str, i: usize) -> String {
    let day = DAYS[i % DAYS.len()];
    let status = [200, 201, 302, 404, 500, 429][i % 6];
    let method = ["GET", "POST"][i % 2];
    let bytes = 100 + (i * 37) % 1000;
    let seconds = (i / DAYS.len()) % 86_400;
    let (hour, minute, second) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    format!(
        concat!(
            r#"{{"start_time":"{day}T{hour:02}:{minute:02}:{second:02}.000Z","method":"{method}","#,
            r#""path":"/t/{tag}/{i}","protocol":"HTTP/1.1","response_code":{status},"#,
            r#""bytes_received":10,"bytes_sent":{bytes},"duration":{duration},"#,
            r#""request_id":"{tag}-{i}","authority":"api.example.com","#,
            r#""downstream_remote_address":"192.0.2.{ip}:5000","user_agent":"apitrail-tests/1.0"}}"#,
            "\n"
        ),
        day = day,
        hour = hour,
        minute = minute,
        second = second,
        method = method,
        tag = tag,
        i = i,
        status = status,
        bytes = bytes,
        duration = 1 + i % 50,
        ip = 1 + i % 200,
    )
}

/// Builds the records `range` of `tag`, one per line.
pub fn envoy_lines(tag: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| envoy_line(tag, i)).collect()
}

/// Writes a server configuration with `store` and `extra` TOML lines; returns its path.
pub fn write_config(dir: &Path, name: &str, store: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let path = dir.join(name);
    // Top-level keys come before any section of `extra`.
    let text = format!("store = \"{store}\"\nrefresh_interval_secs = 0.2\n{extra}");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Per-day counts and sums of the events, as the server returns them.
pub const DAY_SUMMARY_SQL: &str = "SELECT CAST(day AS VARCHAR) AS day, count(*) AS events, \
    sum(response_bytes) AS bytes_out, \
    sum(CASE WHEN status >= 200 AND status < 300 THEN 1 ELSE 0 END) AS status_2xx, \
    sum(CASE WHEN status >= 300 AND status < 400 THEN 1 ELSE 0 END) AS status_3xx, \
    sum(CASE WHEN status >= 400 AND status < 500 THEN 1 ELSE 0 END) AS status_4xx, \
    sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END) AS status_5xx \
    FROM events GROUP BY day ORDER BY day";

/// The `endpoints` view's counts, in a fixed order.
pub const ENDPOINTS_SQL: &str = "SELECT host, method, endpoint, calls, status_4xx, status_5xx, bytes_out \
    FROM endpoints ORDER BY host, method, endpoint";

/// Per-day counts and sums, and the `endpoints` rows, of one server.
pub fn store_answers(api: &Api) -> (Vec<Value>, Vec<Value>) {
    (api.query(DAY_SUMMARY_SQL), api.query(ENDPOINTS_SQL))
}

/// Checks that the `endpoints` view adds up to the events, per host and method.
pub fn assert_endpoints_match_events(api: &Api) {
    let from_view = api.query(
        "SELECT host, method, sum(calls) AS calls, sum(bytes_out) AS bytes_out \
         FROM endpoints GROUP BY host, method ORDER BY host, method",
    );
    let from_events = api.query(
        "SELECT host, method, count(*) AS calls, sum(response_bytes) AS bytes_out \
         FROM events GROUP BY host, method ORDER BY host, method",
    );
    assert_eq!(
        from_view, from_events,
        "the endpoints view disagrees with the events"
    );
}

/// Result of [`race_two_commits`].
#[derive(Debug)]
pub struct CommitRace {
    /// Table versions that the commits of writer a and writer b took.
    pub versions: (u64, u64),
    /// Rows in the table after both commits.
    pub rows: usize,
    /// Versions of the application transactions `writer-a` and `writer-b`
    /// that a fresh reader finds in the table.
    pub transactions: (Option<i64>, Option<i64>),
}

/// Creates an events table at `url`, then lets two writers that both
/// loaded version 0 commit to it at the same time: writer a two rows,
/// writer b one. Returns what a fresh reader sees afterwards.
///
/// With put-if-absent commits, one writer takes version 1 and the other is
/// retried at version 2, so both writers' rows are in the table.
pub fn race_two_commits(url: &Url, options: &HashMap<String, String>) -> CommitRace {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    runtime.block_on(async {
        let mut a = AppendTable::open_or_create(url, options.clone(), TableSpec::events())
            .await
            .expect("creating the table");
        let mut b = AppendTable::open_existing(url, options.clone(), TableSpec::events())
            .await
            .expect("opening the table")
            .expect("the table exists after a created it");
        assert_eq!(
            a.version(),
            b.version(),
            "both writers start at one version"
        );

        let mut writer_a = a.writer().expect("a Parquet writer for a");
        writer_a
            .write(race_events(&["/a/1", "/a/2"]))
            .await
            .expect("writing a's rows");
        let actions_a = writer_a.finish().await.expect("finishing a's files");
        let mut writer_b = b.writer().expect("a Parquet writer for b");
        writer_b
            .write(race_events(&["/b/1"]))
            .await
            .expect("writing b's rows");
        let actions_b = writer_b.finish().await.expect("finishing b's files");

        let (va, vb) = tokio::join!(
            a.commit(actions_a, Transaction::new("writer-a", 1)),
            b.commit(actions_b, Transaction::new("writer-b", 1)),
        );
        let versions = (
            va.expect("committing a's files"),
            vb.expect("committing b's files"),
        );

        let reader = AppendTable::open_existing(url, options.clone(), TableSpec::events())
            .await
            .expect("opening the table again")
            .expect("the table exists");
        let rows = reader
            .read_all()
            .await
            .expect("reading the table")
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        let transactions = (
            reader
                .transaction_version("writer-a")
                .await
                .expect("reading a's transaction"),
            reader
                .transaction_version("writer-b")
                .await
                .expect("reading b's transaction"),
        );
        CommitRace {
            versions,
            rows,
            transactions,
        }
    })
}

/// Builds one event per path, a second apart, on 2024-03-04.
fn race_events(paths: &[&str]) -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for (i, path) in paths.iter().enumerate() {
        let mut event = Event::new("clf", 1_709_510_400_000_000 + i as i64 * 1_000_000);
        event.method = Some("GET".to_string());
        event.path = Some(path.to_string());
        event.status = Some(200);
        builder.push(&event);
    }
    builder.finish()
}

/// A cloud bucket or container, with what the restart check needs of it.
pub struct CloudStore<'a> {
    /// URL of the events table, such as `s3://apitrail/prod/events/`.
    pub store_url: &'a str,
    /// The `[storage_options]` lines that reach the emulator.
    pub options_toml: &'a str,
    /// Lists the object keys under a prefix of the bucket or container.
    pub list: &'a dyn Fn(&str) -> Vec<String>,
    /// A credential that the server must never write to its log.
    pub secret: &'a str,
}

/// Runs a server on `store`, ingests 120 rows over three days, and restarts
/// it without its WAL. The counts, the day summaries and the view rows must
/// come back from the store. Its keys must include the Delta log, a Parquet
/// file per day and the views table. `tag` names the rows.
pub fn check_store_survives_restart(store: &CloudStore<'_>, tag: &str) {
    let config_dir = tempfile::tempdir().unwrap();
    let config = write_config(
        config_dir.path(),
        "apitrail.toml",
        store.store_url,
        store.options_toml,
    );
    let options = crate::ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..crate::ServerOptions::quick_flush()
    };
    let mut server = crate::TestServer::start(options);

    for batch in 0..3 {
        let (status, report) = server.ingest(
            Some("envoy_json"),
            envoy_lines(tag, batch * 40..batch * 40 + 40),
        );
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], 40, "{report}");
    }
    server.api().wait_for_flushed_rows(120);
    assert_eq!(server.count(""), 120);
    let before = store_answers(server.api());
    assert_eq!(before.0.len(), 3, "three days: {:?}", before.0);
    assert_endpoints_match_events(server.api());

    server.stop();
    std::fs::remove_dir_all(server.data_dir().join("wal")).unwrap();
    server.restart();
    assert_eq!(server.count(""), 120, "every row comes back from the store");
    assert_eq!(store_answers(server.api()), before);
    assert_endpoints_match_events(server.api());

    let url = Url::parse(store.store_url).unwrap();
    let events_prefix = url.path().trim_start_matches('/').to_string();
    let views_prefix = events_prefix.replace("/events/", "/views/");
    let events = (store.list)(&events_prefix);
    assert!(
        events
            .iter()
            .any(|k| k.starts_with(&format!("{events_prefix}_delta_log/")) && k.ends_with(".json")),
        "{events:?}"
    );
    for day in DAYS {
        assert!(
            events
                .iter()
                .any(|k| k.starts_with(&format!("{events_prefix}day={day}/"))
                    && k.ends_with(".parquet")),
            "no Parquet file of {day}: {events:?}"
        );
    }
    let views = (store.list)(&views_prefix);
    assert!(
        views
            .iter()
            .any(|k| k.starts_with(&format!("{views_prefix}_delta_log/"))),
        "{views:?}"
    );
    assert!(
        views
            .iter()
            .any(|k| k.starts_with(&format!("{views_prefix}grain=all/"))),
        "{views:?}"
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains("opening the store"),
        "the store is logged at start-up"
    );
    assert!(
        !stderr.contains(store.secret),
        "the server logged a credential"
    );
}
