//! View partials through a real store: flush, compaction, import and reopen.

use std::sync::Arc;

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_storage::table::{AppendTable, TableSpec};
use apitrail_storage::views::ViewPartials;
use apitrail_storage::{Store, StoreConfig};
use arrow::record_batch::RecordBatch;

/// 2024-01-01T00:00:00Z in microseconds.
const JAN_1: i64 = 1_704_067_200_000_000;

fn batch(first: i64, count: i64) -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for i in first..first + count {
        let mut event = Event::new("clf", JAN_1 + i * 60_000_000);
        event.consumer = Some(format!("partner-{}", i % 3));
        event.consumer_kind = Some("gateway".to_string());
        event.method = Some("GET".to_string());
        event.path = Some(format!("/v1/orders/{i}"));
        event.endpoint = Some("/v1/orders/{id}".to_string());
        event.status = Some(if i % 10 == 0 { 404 } else { 200 });
        event.response_bytes = Some(100 + i);
        event.client_ip = Some(format!("198.51.100.{}", i % 5));
        builder.push(&event);
    }
    builder.finish()
}

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        views_compact_files: 4,
        ..StoreConfig::for_data_dir(dir.to_path_buf()).unwrap()
    }
}

/// Reads the committed views table back as partials.
async fn committed_partials(config: &StoreConfig) -> (ViewPartials, usize) {
    let table = AppendTable::open_existing(
        &config.views_url,
        config.storage_options.clone(),
        TableSpec::views(),
    )
    .await
    .unwrap()
    .expect("the views table exists");
    let mut partials = ViewPartials::default();
    for batch in table.read_all().await.unwrap() {
        partials.merge(&ViewPartials::from_record_batch(&batch).unwrap());
    }
    (partials, table.file_count().unwrap())
}

fn expected(batches: &[RecordBatch]) -> RecordBatch {
    let mut partials = ViewPartials::default();
    for batch in batches {
        partials.merge(&ViewPartials::from_events(
            batch,
            &vec![false; batch.num_rows()],
        ));
    }
    partials.to_record_batch()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_commit_partials() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(config.clone()).await.unwrap();
    let batches: Vec<RecordBatch> = (0..3).map(|i| batch(i * 100, 100)).collect();
    for batch in &batches {
        store.append(batch.clone()).await.unwrap();
        store.flush().await.unwrap();
    }
    assert!(
        store.snapshot().pending_partials.is_empty(),
        "a flush leaves no pending partials"
    );
    let (committed, _) = committed_partials(&config).await;
    assert_eq!(
        committed.to_record_batch(),
        expected(&batches),
        "committed partials differ from the partials of the appended events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(config.clone()).await.unwrap();
    let batches: Vec<RecordBatch> = (0..5).map(|i| batch(i * 50, 50)).collect();
    for batch in &batches {
        store.append(batch.clone()).await.unwrap();
        store.flush().await.unwrap();
    }
    let (before, files_before) = committed_partials(&config).await;
    assert!(files_before >= 5, "{files_before} files after five flushes");

    let version = store.compact_views().await.unwrap();
    assert!(
        version.is_some(),
        "{files_before} files reach the threshold of 4"
    );
    let (after, files_after) = committed_partials(&config).await;
    assert_eq!(files_after, 2, "one file per grain after compaction");
    assert_eq!(after.to_record_batch(), before.to_record_batch());
    assert_eq!(after.to_record_batch(), expected(&batches));
    assert_eq!(
        store.compact_views().await.unwrap(),
        None,
        "two files are below the threshold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_partials_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let batches: Vec<RecordBatch> = (0..2).map(|i| batch(i * 30, 30)).collect();
    {
        let store = Store::open(config.clone()).await.unwrap();
        store.append(batches[0].clone()).await.unwrap();
        store.flush().await.unwrap();
        store.append(batches[1].clone()).await.unwrap();
        // Dropped without a flush: the second batch is only in the WAL.
    }
    let store = Store::open(config.clone()).await.unwrap();
    let snapshot = store.snapshot();
    let mut in_memory = ViewPartials::default();
    for partials in &snapshot.pending_partials {
        in_memory.merge(partials);
    }
    assert_eq!(
        in_memory.to_record_batch(),
        expected(&batches[1..]),
        "replay rebuilds the partials of the unflushed batch"
    );
    store.flush().await.unwrap();
    let (committed, _) = committed_partials(&config).await;
    assert_eq!(committed.to_record_batch(), expected(&batches));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_commits_partials_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store: Arc<Store> = Store::open(config.clone()).await.unwrap();
    let imported = batch(0, 40);

    let mut writer = store
        .begin_import("import-test")
        .await
        .unwrap()
        .expect("new import");
    writer.write(imported.clone()).await.unwrap();
    store.commit_import("import-test", writer).await.unwrap();
    assert!(
        store.begin_import("import-test").await.unwrap().is_none(),
        "a committed import is not started again"
    );
    let (committed, _) = committed_partials(&config).await;
    assert_eq!(committed.to_record_batch(), expected(&[imported]));
}

/// Imports that share an application id are done up to the last committed version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_versions_share_app_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store: Arc<Store> = Store::open(config.clone()).await.unwrap();
    let first = batch(0, 10);
    let second = batch(10, 10);

    let mut writer = store
        .begin_import_version("follow-test", 100)
        .await
        .unwrap()
        .expect("the first version is new");
    writer.write(first.clone()).await.unwrap();
    store
        .commit_import_version("follow-test", 100, writer)
        .await
        .unwrap();
    assert!(
        store
            .begin_import_version("follow-test", 100)
            .await
            .unwrap()
            .is_none(),
        "the committed version is done"
    );
    assert!(
        store
            .begin_import_version("follow-test", 40)
            .await
            .unwrap()
            .is_none(),
        "an earlier version is done too"
    );

    let mut writer = store
        .begin_import_version("follow-test", 250)
        .await
        .unwrap()
        .expect("a later version is new");
    writer.write(second.clone()).await.unwrap();
    store
        .commit_import_version("follow-test", 250, writer)
        .await
        .unwrap();
    let (committed, _) = committed_partials(&config).await;
    assert_eq!(committed.to_record_batch(), expected(&[first, second]));
}

/// The events table writes `time` delta-encoded, without a dictionary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_time_is_delta_encoded() {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store: Arc<Store> = Store::open(config.clone()).await.unwrap();
    let mut writer = store
        .begin_import("import-encoding")
        .await
        .unwrap()
        .expect("new import");
    writer.write(batch(0, 500)).await.unwrap();
    store
        .commit_import("import-encoding", writer)
        .await
        .unwrap();

    let files: Vec<_> = walk(&dir.path().join("table"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .collect();
    assert!(!files.is_empty(), "no Parquet file under {:?}", dir.path());
    for path in files {
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let metadata = reader.metadata();
        let time_index = metadata
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|column| column.name() == "time")
            .expect("the events files have a time column");
        for group in metadata.row_groups() {
            let encodings: Vec<Encoding> = group.column(time_index).encodings().collect();
            assert!(
                encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                "{path:?}: time is written with {encodings:?}, expected DELTA_BINARY_PACKED"
            );
            assert!(
                !encodings.contains(&Encoding::RLE_DICTIONARY)
                    && !encodings.contains(&Encoding::PLAIN_DICTIONARY),
                "{path:?}: time has a dictionary: {encodings:?}"
            );
        }
    }
}

/// Lists every file under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Selects the rows of `batch` (in the views schema) at the `all` grain.
fn all_rows(batch: &RecordBatch) -> RecordBatch {
    let grain = batch.column_by_name("grain").expect("a grain column");
    let keep = arrow::compute::kernels::cmp::eq(
        grain,
        &arrow::array::StringArray::new_scalar(apitrail_storage::views::GRAIN_ALL),
    )
    .unwrap();
    arrow::compute::filter_record_batch(batch, &keep).unwrap()
}

/// Data files of the views table's `all` partition on disk.
fn all_grain_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|path| {
            path.extension().is_some_and(|e| e == "parquet")
                && path.to_string_lossy().contains("grain=all")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_grain_cache_reads_new_files_only() {
    use apitrail_storage::views::AllGrainCache;

    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(config.clone()).await.unwrap();
    let cache = AllGrainCache::new(64 << 20);
    let views = |store: &Store| store.snapshot().views.expect("the views table exists");

    let batches: Vec<RecordBatch> = (0..5).map(|i| batch(i * 40, 40)).collect();
    store.append(batches[0].clone()).await.unwrap();
    store.flush().await.unwrap();
    let first = cache.batch(&views(&store)).await.unwrap().expect("held");
    assert_eq!(first, all_rows(&expected(&batches[..1])));

    // With the first flush's file gone from disk, only a cache that reads
    // nothing but the files added since can return the rows.
    let views_dir = dir.path().join("views");
    let old_files = all_grain_files(&views_dir);
    assert_eq!(old_files.len(), 1, "one all-grain file after one flush");
    let hidden = old_files[0].with_extension("hidden");
    std::fs::rename(&old_files[0], &hidden).unwrap();
    for batch in &batches[1..3] {
        store.append(batch.clone()).await.unwrap();
        store.flush().await.unwrap();
    }
    let merged = cache.batch(&views(&store)).await.unwrap().expect("held");
    assert_eq!(
        merged,
        all_rows(&expected(&batches[..3])),
        "rows of the files added since, merged with the rows held"
    );
    assert_eq!(
        cache.batch(&views(&store)).await.unwrap().expect("held"),
        merged,
        "the same version gives the same rows"
    );
    std::fs::rename(&hidden, &old_files[0]).unwrap();

    // A compaction replaces the files, so the grain is read whole again.
    store.append(batches[3].clone()).await.unwrap();
    store.flush().await.unwrap();
    assert!(
        store.compact_views().await.unwrap().is_some(),
        "4 files reach the threshold"
    );
    let compacted = cache.batch(&views(&store)).await.unwrap().expect("held");
    assert_eq!(compacted, all_rows(&expected(&batches[..4])));
    store.append(batches[4].clone()).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        cache.batch(&views(&store)).await.unwrap().expect("held"),
        all_rows(&expected(&batches)),
        "a flush after the compaction adds its rows"
    );

    let small = AllGrainCache::new(1);
    assert_eq!(
        small.batch(&views(&store)).await.unwrap(),
        None,
        "rows beyond the memory budget are not held"
    );
}
