//! The events table's life cycle through a real store: compaction, vacuum after the grace period, retention.

use std::sync::Arc;
use std::time::Duration;

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_storage::table::{AppendTable, TableSpec};
use apitrail_storage::views::ViewPartials;
use apitrail_storage::{LifecycleConfig, ManualClock, Store, StoreConfig};
use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid test time")
        .with_timezone(&Utc)
}

fn micros_of(day: &str) -> i64 {
    at(&format!("{day}T00:00:00Z")).timestamp_micros()
}

/// `count` events on `day`, one a minute from `first_minute`, in descending
/// time order so that a file is only sorted if the writer sorted it.
fn events(day: &str, first_minute: i64, count: i64) -> RecordBatch {
    let start = micros_of(day);
    let mut builder = EventBatchBuilder::new();
    for i in (first_minute..first_minute + count).rev() {
        let mut event = Event::new("clf", start + (i % 1440) * 60_000_000);
        event.consumer = Some(format!("partner-{}", i % 3));
        event.method = Some("GET".to_string());
        event.path = Some(format!("/v1/orders/{day}/{i}"));
        event.endpoint = Some("/v1/orders/{id}".to_string());
        event.status = Some(200);
        builder.push(&event);
    }
    builder.finish()
}

fn config(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
    lifecycle: LifecycleConfig,
) -> StoreConfig {
    StoreConfig {
        lifecycle,
        clock: Arc::clone(clock) as _,
        ..StoreConfig::for_data_dir(dir.to_path_buf()).expect("test config")
    }
}

fn compacting() -> LifecycleConfig {
    LifecycleConfig {
        compaction_target_bytes: 1024 * 1024,
        compaction_min_files: 3,
        ..LifecycleConfig::default()
    }
}

/// Appends each batch and flushes it, so each becomes its own data file.
async fn flush_each(store: &Arc<Store>, batches: &[RecordBatch]) {
    for batch in batches {
        store.append(batch.clone()).await.expect("append");
        store.flush().await.expect("flush");
    }
}

/// `(time, path)` of every row, sorted, as the comparable content of a table.
fn rows(batches: &[RecordBatch]) -> Vec<(i64, String)> {
    let mut rows = Vec::new();
    for batch in batches {
        let time = arrow::compute::cast(
            batch.column_by_name("time").expect("time column"),
            &DataType::Int64,
        )
        .expect("cast time");
        let path = arrow::compute::cast(
            batch.column_by_name("path").expect("path column"),
            &DataType::Utf8,
        )
        .expect("cast path");
        let time = time.as_primitive::<Int64Type>();
        let path = path.as_string::<i32>();
        for i in 0..batch.num_rows() {
            rows.push((time.value(i), path.value(i).to_string()));
        }
    }
    rows.sort();
    rows
}

async fn events_table(config: &StoreConfig) -> AppendTable {
    AppendTable::open_existing(
        &config.table_url,
        config.storage_options.clone(),
        TableSpec::events(),
    )
    .await
    .expect("open events table")
    .expect("events table exists")
}

/// Data files of the events table's directory for `day`, as stored on disk.
fn files_on_disk(config: &StoreConfig, day: &str) -> Vec<String> {
    let dir = config
        .table_url
        .to_file_path()
        .expect("local table")
        .join(format!("day={day}"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|name| name.ends_with(".parquet"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Actions of the latest commit in the events table's log.
fn last_commit_actions(config: &StoreConfig, version: u64) -> Vec<serde_json::Value> {
    let path = config
        .table_url
        .to_file_path()
        .expect("local table")
        .join(format!("_delta_log/{version:020}.json"));
    std::fs::read_to_string(&path)
        .expect("commit file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("commit line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_closed_day() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T12:00:00Z"));
    let config = config(dir.path(), &clock, compacting());
    let store = Store::open(config.clone()).await.unwrap();
    let mut batches: Vec<RecordBatch> = (0..5).map(|i| events("2026-03-06", i * 40, 40)).collect();
    batches.extend((0..4).map(|i| events("2026-03-08", i * 40, 40)));
    flush_each(&store, &batches).await;
    let before = events_table(&config).await;
    let rows_before = rows(&before.read_all().await.unwrap());
    let lsn_before = before.transaction_version(&app_id(&config)).await.unwrap();
    let views_version = store.snapshot().views.unwrap().version();

    let outcome = store.compact_events().await.unwrap();

    assert_eq!(outcome.partitions, 1, "only the closed day is compacted");
    assert_eq!(outcome.files_before, 5);
    assert_eq!(outcome.files_after, 1);
    assert_eq!(outcome.rows, 200);
    assert_eq!(
        files_on_disk(&config, "2026-03-06").len(),
        6,
        "inputs stay until vacuum"
    );
    let after = events_table(&config).await;
    assert_eq!(after.file_count().unwrap(), 1 + 4);
    assert_eq!(rows(&after.read_all().await.unwrap()), rows_before);
    assert_eq!(
        after.transaction_version(&app_id(&config)).await.unwrap(),
        lsn_before,
        "the WAL transaction is untouched"
    );
    assert_eq!(store.snapshot().views.unwrap().version(), views_version);
    let snapshot_table = store.snapshot().table.unwrap();
    assert_eq!(
        snapshot_table.version(),
        after.version(),
        "queries read the compacted version"
    );

    let actions = last_commit_actions(&config, after.version().unwrap());
    let mut adds = 0;
    let mut removes = 0;
    for action in &actions {
        for kind in ["add", "remove"] {
            if let Some(file) = action.get(kind) {
                assert_eq!(file["dataChange"], false, "{kind} {file}");
                assert!(
                    file["path"]
                        .as_str()
                        .unwrap()
                        .starts_with("day=2026-03-06/")
                );
                if kind == "add" {
                    adds += 1;
                } else {
                    removes += 1;
                }
            }
        }
    }
    assert_eq!((adds, removes), (1, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_of_several_days_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T12:00:00Z"));
    let config = config(dir.path(), &clock, compacting());
    let store = Store::open(config.clone()).await.unwrap();
    for day in ["2026-03-04", "2026-03-05", "2026-03-06"] {
        let batches: Vec<RecordBatch> = (0..3).map(|i| events(day, i * 10, 10)).collect();
        flush_each(&store, &batches).await;
    }

    let outcome = store.compact_events().await.unwrap();

    assert_eq!(outcome.partitions, 3, "{outcome:?}");
    assert_eq!(outcome.failed, 0, "{outcome:?}");
    assert_eq!(events_table(&config).await.file_count().unwrap(), 3);
    assert_eq!(
        rows(&events_table(&config).await.read_all().await.unwrap()).len(),
        90
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_file_sorted_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T12:00:00Z"));
    let config = config(dir.path(), &clock, compacting());
    let store = Store::open(config.clone()).await.unwrap();
    // Interleaved minutes, so no input file covers a range of its own.
    let batches: Vec<RecordBatch> = (0..4).map(|i| events("2026-03-06", i, 100)).collect();
    flush_each(&store, &batches).await;
    store.compact_events().await.unwrap();

    let table = events_table(&config).await;
    assert_eq!(table.file_count().unwrap(), 1);
    let mut times = Vec::new();
    for batch in table.read_all().await.unwrap() {
        let time =
            arrow::compute::cast(batch.column_by_name("time").unwrap(), &DataType::Int64).unwrap();
        times.extend(time.as_primitive::<Int64Type>().values().iter().copied());
    }
    assert_eq!(times.len(), 400);
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "rows are not sorted by time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_waits_for_min_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T12:00:00Z"));
    let config = config(dir.path(), &clock, compacting());
    let store = Store::open(config.clone()).await.unwrap();
    flush_each(
        &store,
        &[events("2026-03-06", 0, 10), events("2026-03-06", 10, 10)],
    )
    .await;
    let outcome = store.compact_events().await.unwrap();
    assert_eq!(outcome.partitions, 0);
    assert_eq!(events_table(&config).await.file_count().unwrap(), 2);
}

/// A query planned before compaction reads the old files to its end, and
/// after the grace period vacuum deletes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_query_across_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T12:00:00Z"));
    let config = config(dir.path(), &clock, compacting());
    let store = Store::open(config.clone()).await.unwrap();
    let batches: Vec<RecordBatch> = (0..6).map(|i| events("2026-03-06", i * 50, 50)).collect();
    flush_each(&store, &batches).await;
    let old_files = files_on_disk(&config, "2026-03-06");
    assert_eq!(old_files.len(), 6);
    let expected = rows(&events_table(&config).await.read_all().await.unwrap());

    // One partition and small batches: the scan opens the files one after another.
    let old = store.snapshot().table.unwrap();
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(16),
    );
    old.update_datafusion_session(&ctx.state()).unwrap();
    let provider = old.table_provider().await.unwrap();
    let mut stream = ctx
        .read_table(provider)
        .unwrap()
        .execute_stream()
        .await
        .unwrap();
    let mut read = vec![stream.try_next().await.unwrap().expect("a first batch")];

    let compaction = store.compact_events().await.unwrap();
    assert_eq!(compaction.partitions, 1);
    let deleted = store.vacuum_events().await.unwrap();
    assert_eq!(deleted, 0, "the grace period has not passed");
    read.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    assert_eq!(rows(&read), expected, "the slow query's answer changed");

    clock.advance(chrono::Duration::minutes(61));
    let deleted = store.vacuum_events().await.unwrap();
    assert_eq!(
        deleted, 6,
        "the six compacted inputs are deleted after the grace period"
    );
    let left = files_on_disk(&config, "2026-03-06");
    assert_eq!(left.len(), 1);
    assert!(old_files.iter().all(|f| !left.contains(f)));

    // The tombstones stay in the log, but a vacuum with nothing left to
    // delete commits nothing.
    let version = events_table(&config).await.version();
    clock.advance(chrono::Duration::minutes(5));
    assert_eq!(
        store.vacuum_events().await.unwrap(),
        0,
        "nothing left to delete"
    );
    assert_eq!(
        events_table(&config).await.version(),
        version,
        "an idle vacuum adds no commit"
    );
    let table = events_table(&config).await;
    assert_eq!(table.file_count().unwrap(), 1);
    assert_eq!(rows(&table.read_all().await.unwrap()), expected);
    // The store's own snapshot returns the same rows after vacuum.
    let current = store.snapshot().table.unwrap();
    let ctx = SessionContext::new();
    current.update_datafusion_session(&ctx.state()).unwrap();
    let provider = current.table_provider().await.unwrap();
    let answer = ctx.read_table(provider).unwrap().collect().await.unwrap();
    assert_eq!(rows(&answer), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_deletes_old_orphans_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let config = config(dir.path(), &clock, LifecycleConfig::default());
    let store = Store::open(config.clone()).await.unwrap();
    flush_each(&store, &[events("2026-03-06", 0, 10)]).await;
    let committed = files_on_disk(&config, "2026-03-06");
    let orphan = config
        .table_url
        .to_file_path()
        .unwrap()
        .join("day=2026-03-06/part-00000-orphan-c000.zstd.parquet");
    std::fs::copy(
        config
            .table_url
            .to_file_path()
            .unwrap()
            .join("day=2026-03-06")
            .join(&committed[0]),
        &orphan,
    )
    .unwrap();

    assert_eq!(
        store.vacuum_events().await.unwrap(),
        0,
        "a fresh orphan may be a write in progress"
    );
    assert!(orphan.exists());

    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(store.vacuum_events().await.unwrap(), 1);
    assert!(!orphan.exists());
    assert_eq!(files_on_disk(&config, "2026-03-06"), committed);
    assert_eq!(
        rows(&events_table(&config).await.read_all().await.unwrap()).len(),
        10
    );
}

fn retaining(days: u32, views_days: Option<u32>) -> LifecycleConfig {
    LifecycleConfig {
        retention_days: Some(days),
        views_retention_days: views_days,
        ..LifecycleConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_cutoff_at_midnight() {
    let dir = tempfile::tempdir().unwrap();
    // 7 days before 2026-03-08T00:00:00Z is 2026-03-01T00:00:00Z exactly.
    let clock = ManualClock::new(at("2026-03-08T00:00:00Z"));
    let config = config(dir.path(), &clock, retaining(7, None));
    let store = Store::open(config.clone()).await.unwrap();
    // Appended while the clock was earlier, so ingest still accepted them.
    clock.set(at("2026-02-28T12:00:00Z"));
    flush_each(
        &store,
        &[
            events("2026-02-27", 0, 5),
            events("2026-02-28", 0, 6),
            events("2026-03-01", 0, 7),
        ],
    )
    .await;
    clock.set(at("2026-03-08T00:00:00Z"));

    let outcome = store.expire_events().await.unwrap();

    let day = |text| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    assert_eq!(outcome.days, vec![day("2026-02-27"), day("2026-02-28")]);
    assert_eq!(outcome.files, 2);
    let kept = rows(&events_table(&config).await.read_all().await.unwrap());
    assert_eq!(kept.len(), 7);
    assert!(
        kept.iter()
            .all(|(time, _)| *time >= micros_of("2026-03-01"))
    );
    assert_eq!(
        files_on_disk(&config, "2026-02-28").len(),
        1,
        "files wait for vacuum"
    );

    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(store.vacuum_events().await.unwrap(), 2);
    assert!(files_on_disk(&config, "2026-02-28").is_empty());
    assert_eq!(files_on_disk(&config, "2026-03-01").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_straddling_day() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T00:00:00Z"));
    let config = config(dir.path(), &clock, retaining(7, None));
    let store = Store::open(config.clone()).await.unwrap();
    flush_each(&store, &[events("2026-03-01", 0, 5)]).await;
    // The cutoff, 2026-03-01T23:59:59Z, is inside the day: the day is not over before it.
    clock.set(at("2026-03-08T23:59:59Z"));
    let outcome = store.expire_events().await.unwrap();
    assert!(outcome.days.is_empty());
    assert_eq!(events_table(&config).await.file_count().unwrap(), 1);
    // One second later the whole day is older than the cutoff.
    clock.set(at("2026-03-09T00:00:00Z"));
    let outcome = store.expire_events().await.unwrap();
    assert_eq!(outcome.days.len(), 1);
    assert_eq!(events_table(&config).await.file_count().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_drops_expired_days() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T00:00:00Z"));
    let config = config(dir.path(), &clock, retaining(7, None));
    let store = Store::open(config.clone()).await.unwrap();
    let mut builder = EventBatchBuilder::new();
    for day in ["2026-02-28", "2026-03-01", "2026-02-28"] {
        builder.push(&Event::new("clf", micros_of(day) + MICROS_PER_DAY - 1));
    }
    let (kept, dropped) = store.drop_expired_events(builder.finish()).unwrap();
    assert_eq!(dropped, 2);
    assert_eq!(kept.num_rows(), 1);
}

/// Hour buckets of the committed views table, with the number of `all` grain rows.
async fn view_buckets(config: &StoreConfig) -> (Vec<i64>, usize) {
    let table = AppendTable::open_existing(
        &config.views_url,
        config.storage_options.clone(),
        TableSpec::views(),
    )
    .await
    .unwrap()
    .expect("views table exists");
    let mut partials = ViewPartials::default();
    for batch in table.read_all().await.unwrap() {
        partials.merge(&ViewPartials::from_record_batch(&batch).unwrap());
    }
    let mut buckets: Vec<i64> = partials.rows().filter_map(|(key, _)| key.bucket).collect();
    buckets.sort();
    buckets.dedup();
    let all = partials
        .rows()
        .filter(|(key, _)| key.bucket.is_none())
        .count();
    (buckets, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_outlive_events() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-02-20T12:00:00Z"));
    let config = config(dir.path(), &clock, retaining(7, Some(30)));
    let store = Store::open(config.clone()).await.unwrap();
    flush_each(
        &store,
        &[events("2026-02-20", 0, 3), events("2026-03-05", 0, 3)],
    )
    .await;
    let (buckets, all_rows) = view_buckets(&config).await;
    assert_eq!(buckets.len(), 2, "one hour bucket a day");
    assert!(all_rows > 0);

    clock.set(at("2026-03-08T00:00:00Z"));
    store.maintain().await.unwrap();
    let kept = rows(&events_table(&config).await.read_all().await.unwrap());
    assert_eq!(
        kept.len(),
        3,
        "the events of 2026-02-20 are past their 7 days"
    );
    assert_eq!(
        view_buckets(&config).await.0,
        buckets,
        "the views keep 30 days"
    );

    // 30 days after 2026-03-23 is 2026-02-21: the views drop 2026-02-20's hours.
    clock.set(at("2026-03-23T00:00:00Z"));
    let version = store.expire_views().await.unwrap();
    assert!(version.is_some(), "the views table was rewritten");
    let (after, all_after) = view_buckets(&config).await;
    assert_eq!(after, vec![micros_of("2026-03-05")]);
    assert_eq!(all_after, all_rows, "the all-grain totals stay");
    assert_eq!(
        store.expire_views().await.unwrap(),
        None,
        "nothing left to drop"
    );
}

fn app_id(config: &StoreConfig) -> String {
    let id = std::fs::read_to_string(config.data_dir.join("node.id")).expect("node id");
    format!("apitrail-wal-{}", id.trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_rejects_short_views_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T00:00:00Z"));
    let config = config(dir.path(), &clock, retaining(30, Some(7)));
    let error = Store::open(config).await.expect_err("rejected");
    assert!(error.to_string().contains("views retention"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_task_runs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T12:00:00Z"));
    let lifecycle = LifecycleConfig {
        interval: Duration::from_millis(50),
        ..compacting()
    };
    let config = config(dir.path(), &clock, lifecycle);
    let store = Store::open(config.clone()).await.unwrap();
    let batches: Vec<RecordBatch> = (0..3).map(|i| events("2026-03-06", i * 10, 10)).collect();
    flush_each(&store, &batches).await;

    let task = store.spawn_maintenance();
    let mut files = 3;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        files = events_table(&config).await.file_count().unwrap();
        if files == 1 {
            break;
        }
    }
    task.abort();

    assert_eq!(files, 1, "the background task compacted the day");
    assert_eq!(
        store
            .snapshot()
            .table
            .unwrap()
            .snapshot()
            .unwrap()
            .log_data()
            .num_files(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_store_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-08T12:00:00Z"));
    let config = config(dir.path(), &clock, compacting());
    let store = Store::open(config.clone()).await.unwrap();
    let batches: Vec<RecordBatch> = (0..3).map(|i| events("2026-03-06", i * 10, 10)).collect();
    flush_each(&store, &batches).await;

    let reader = Store::open_read_only(config.clone()).await.unwrap();
    let outcome = reader.maintain().await.unwrap();

    assert_eq!(outcome.compaction.partitions, 0);
    assert_eq!(events_table(&config).await.file_count().unwrap(), 3);
    assert_eq!(
        store.compact_events().await.unwrap().partitions,
        1,
        "the writer compacts"
    );
}
