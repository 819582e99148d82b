//! The `events` table over a real store: buffer and table merged, pruned by time.

use std::sync::Arc;

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_query::{Inventory, QueryEngine, QueryLimits, ViewOptions};
use apitrail_storage::{Store, StoreConfig};
use arrow::array::{Array, Int64Array};
use arrow::record_batch::RecordBatch;
use datafusion::physical_plan::displayable;
use futures::TryStreamExt;

const DAY_MICROS: i64 = 86_400_000_000;
/// 2024-01-01T00:00:00Z in microseconds.
const JAN_1: i64 = 1_704_067_200_000_000;

fn batch(day_start: i64, count: i64, path_prefix: &str) -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for i in 0..count {
        let mut event = Event::new("clf", day_start + i * 1_000_000);
        event.path = Some(format!("{path_prefix}/{i}"));
        event.status = Some(200);
        builder.push(&event);
    }
    builder.finish()
}

async fn open_store(dir: &std::path::Path) -> Arc<Store> {
    let config = StoreConfig::for_data_dir(dir.to_path_buf()).unwrap();
    Store::open(config).await.unwrap()
}

async fn engine_for(store: Arc<Store>) -> QueryEngine {
    QueryEngine::new(
        store,
        &QueryLimits::default(),
        &Arc::new(Inventory::default()),
        &ViewOptions::default(),
    )
    .await
    .unwrap()
}

async fn count(engine: &QueryEngine, sql: &str) -> i64 {
    let batches: Vec<RecordBatch> = engine
        .execute(sql)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let column = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(column.len(), 1, "a count query returns one row");
    column.value(0)
}

async fn physical_plan(engine: &QueryEngine, sql: &str) -> String {
    let plan = engine.plan(sql).await.unwrap();
    let frame = engine.context().execute_logical_plan(plan).await.unwrap();
    let physical = frame.create_physical_plan().await.unwrap();
    displayable(physical.as_ref()).indent(true).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_and_table_merge_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let engine = engine_for(Arc::clone(&store)).await;

    store.append(batch(JAN_1, 10, "/a")).await.unwrap();
    assert_eq!(
        count(&engine, "SELECT count(*) FROM events").await,
        10,
        "buffered rows are visible"
    );

    store.flush().await.unwrap();
    store
        .append(batch(JAN_1 + DAY_MICROS, 5, "/b"))
        .await
        .unwrap();
    assert_eq!(
        count(&engine, "SELECT count(*) FROM events").await,
        15,
        "committed and buffered rows are each counted once"
    );
    assert_eq!(
        count(&engine, "SELECT count(DISTINCT path) FROM events").await,
        15,
        "no row is duplicated across the flush"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_filter_prunes_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let engine = engine_for(Arc::clone(&store)).await;

    store.append(batch(JAN_1, 10, "/jan1")).await.unwrap();
    store.flush().await.unwrap();
    store
        .append(batch(JAN_1 + DAY_MICROS, 10, "/jan2"))
        .await
        .unwrap();
    store.flush().await.unwrap();
    store
        .append(batch(JAN_1 + 2 * DAY_MICROS, 10, "/jan3"))
        .await
        .unwrap();

    let sql = "SELECT count(*) FROM events WHERE time >= TIMESTAMP '2024-01-02T00:00:00Z' \
               AND time < TIMESTAMP '2024-01-03T00:00:00Z'";
    assert_eq!(count(&engine, sql).await, 10, "only 2024-01-02 matches");

    let plan = physical_plan(&engine, sql).await;
    assert!(
        plan.contains("day=2024-01-02"),
        "the 2024-01-02 file must be scanned:\n{plan}"
    );
    assert!(
        !plan.contains("day=2024-01-01"),
        "the 2024-01-01 file must be pruned:\n{plan}"
    );
    assert!(
        !plan.contains("MemoryExec") && !plan.contains("partitions=1, partition_sizes"),
        "the buffered 2024-01-03 batch must be pruned:\n{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let engine = engine_for(store).await;
    for sql in [
        "INSERT INTO events (source, time, day) VALUES ('x', now(), current_date())",
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/apitrail-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE events",
    ] {
        let error = engine
            .plan(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} was accepted"));
        assert!(
            error.to_string().contains("read-only"),
            "{sql} must be rejected as a write, got: {error}"
        );
    }
}
