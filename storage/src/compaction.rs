//! Compaction of the events table: small files of a closed day merged into large ones.
//!
//! Every flush adds one small Parquet file per day it touches, so a day of
//! frequent flushes ends with hundreds of files and a query pays one open and
//! one footer read per file. Compaction rewrites them, per `day` partition:
//!
//! 1. plan on one loaded table version. A partition qualifies when its day
//!    is over by the clock, because the current UTC day still receives most
//!    appends. Retention must also keep the day, and the day must have at
//!    least [`LifecycleConfig::compaction_min_files`] files smaller than half
//!    of [`LifecycleConfig::compaction_target_bytes`];
//! 2. read those files with a DataFusion scan of that version, sort the rows
//!    by `time` (spilling to local disk beyond [`SORT_MEMORY_BYTES`]) and
//!    write them with the table's writer, so the new files have the same
//!    Parquet settings as flushed ones and roll over at the target size;
//! 3. check that the rows written equal the rows the inputs' statistics count;
//! 4. commit, under the store's flush lock, one `OPTIMIZE` version that
//!    removes the inputs and adds the outputs, all with `dataChange=false`.
//!
//! The commit is read from the planned version, so Delta's conflict check
//! compares it with every commit since. Blind appends to the same day (a
//! flush, an import, another writer) do not conflict: their files were not
//! inputs and stay in the table. A commit that removed an input with
//! `dataChange=true` (retention) or another lifecycle commit (which carries
//! the application id [`LIFECYCLE_APP_ID`]) makes the commit fail; the
//! partition is then tried again on the next run, and the files written for
//! the failed attempt are orphans that vacuum deletes after the grace period.
//!
//! A query reads the files of one table version, so it sees either the
//! inputs or the outputs. The inputs stay on the object store until vacuum
//! deletes them after the grace period (see [`crate::lifecycle`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use deltalake::DeltaTableError;
use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext, col};
use deltalake::kernel::{Action, Remove, Transaction};
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt;

use crate::error::{Result, StorageError};
use crate::lifecycle::{LIFECYCLE_APP_ID, LifecycleConfig};
use crate::retention::first_kept_day;
use crate::store::Store;
use crate::table::{AppendTable, PARTITION_COLUMN};

/// Memory that sorting one partition's rows may use before it spills to local disk.
pub const SORT_MEMORY_BYTES: usize = 256 * 1024 * 1024;

/// Input of one compaction is at most this many target sizes; a larger day
/// is compacted over several runs.
const MAX_INPUT_TARGETS: u64 = 8;

/// One data file of the loaded table version.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    pub(crate) path: String,
    pub(crate) bytes: u64,
    pub(crate) rows: Option<u64>,
    remove: Remove,
}

impl DataFile {
    /// Builds the remove action of this file, stamped with the clock's time.
    ///
    /// Vacuum's grace period counts from this deletion timestamp.
    pub(crate) fn remove_action(&self, data_change: bool, now_millis: i64) -> Action {
        let mut remove = self.remove.clone();
        remove.data_change = data_change;
        remove.deletion_timestamp = Some(now_millis);
        Action::Remove(remove)
    }
}

/// Lists the data files of the loaded version by `day` partition.
///
/// Files whose partition value is not a date are left out with a warning:
/// the events table writes only dates there.
pub(crate) fn files_by_day(table: &AppendTable) -> Result<BTreeMap<NaiveDate, Vec<DataFile>>> {
    let snapshot = table.delta().snapshot().map_err(|e| StorageError::Table {
        location: table.location().to_string(),
        action: "reading snapshot",
        source: Box::new(e),
    })?;
    let mut days: BTreeMap<NaiveDate, Vec<DataFile>> = BTreeMap::new();
    for file in snapshot.log_data().iter() {
        let value = file
            .partition_values_map()
            .get(PARTITION_COLUMN)
            .cloned()
            .flatten();
        let Some(day) = value
            .as_deref()
            .and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        else {
            tracing::warn!(path = %file.path(), partition = ?value, "data file without a date partition; the life cycle leaves it alone");
            continue;
        };
        days.entry(day).or_default().push(DataFile {
            path: file.path().to_string(),
            bytes: file.size().max(0) as u64,
            rows: file.num_records().map(|n| n as u64),
            remove: file.remove_action(false),
        });
    }
    Ok(days)
}

/// Counts of one compaction run over all partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Partitions whose rewrite was committed.
    pub partitions: usize,
    /// Partitions whose commit conflicted or failed; they are retried on the next run.
    pub failed: usize,
    pub files_before: usize,
    pub bytes_before: u64,
    pub files_after: usize,
    pub bytes_after: u64,
    pub rows: u64,
}

/// The files of one partition that a compaction rewrites.
#[derive(Debug)]
struct PartitionPlan {
    day: NaiveDate,
    inputs: Vec<DataFile>,
}

/// Chooses the partitions worth compacting and their input files.
fn plan(
    days: BTreeMap<NaiveDate, Vec<DataFile>>,
    config: &LifecycleConfig,
    today: NaiveDate,
    first_kept: Option<NaiveDate>,
) -> Vec<PartitionPlan> {
    let small_below = config.compaction_target_bytes / 2;
    let max_input = config
        .compaction_target_bytes
        .saturating_mul(MAX_INPUT_TARGETS);
    let mut plans = Vec::new();
    for (day, files) in days {
        if day >= today || first_kept.is_some_and(|kept| day < kept) {
            continue;
        }
        let mut small: Vec<DataFile> = files
            .into_iter()
            .filter(|f| f.bytes < small_below)
            .collect();
        if small.len() < config.compaction_min_files.max(2) {
            continue;
        }
        small.sort_by(|a, b| a.path.cmp(&b.path));
        let mut total = 0u64;
        let inputs: Vec<DataFile> = small
            .into_iter()
            .take_while(|f| {
                total = total.saturating_add(f.bytes);
                total <= max_input
            })
            .collect();
        if inputs.len() >= 2 {
            plans.push(PartitionPlan { day, inputs });
        }
    }
    plans
}

impl Store {
    /// Merges the small files of each closed day into files of the target size.
    ///
    /// A partition whose rewrite fails is logged, counted and left for the
    /// next run; the other partitions still go ahead.
    pub async fn compact_events(&self) -> Result<CompactionOutcome> {
        let mut outcome = CompactionOutcome::default();
        let Some(table) = self.events_table().filter(|_| self.is_writable()) else {
            return Ok(outcome);
        };
        let lifecycle = &self.config().lifecycle;
        let now = self.config().clock.now();
        let first_kept = lifecycle.retention_days.map(|d| first_kept_day(now, d));
        let plans = plan(
            files_by_day(&table)?,
            lifecycle,
            now.date_naive(),
            first_kept,
        );

        for partition in plans {
            let started = Instant::now();
            let files_before = partition.inputs.len();
            let bytes_before: u64 = partition.inputs.iter().map(|f| f.bytes).sum();
            // Each partition reads the version the previous one committed:
            // from the planned version, the previous commit's lifecycle
            // transaction would be a conflict.
            let Some(latest) = self.events_table() else {
                break;
            };
            match self.compact_partition(latest, &partition).await {
                Ok(rewrite) => {
                    outcome.partitions += 1;
                    outcome.files_before += files_before;
                    outcome.bytes_before += bytes_before;
                    outcome.files_after += rewrite.files;
                    outcome.bytes_after += rewrite.bytes;
                    outcome.rows += rewrite.rows;
                    metrics::counter!("apitrail_compactions_total").increment(1);
                    metrics::counter!("apitrail_compaction_files_before_total")
                        .increment(files_before as u64);
                    metrics::counter!("apitrail_compaction_bytes_before_total")
                        .increment(bytes_before);
                    metrics::counter!("apitrail_compaction_files_after_total")
                        .increment(rewrite.files as u64);
                    metrics::counter!("apitrail_compaction_bytes_after_total")
                        .increment(rewrite.bytes);
                    tracing::info!(
                        day = %partition.day,
                        files_before,
                        bytes_before,
                        files_after = rewrite.files,
                        bytes_after = rewrite.bytes,
                        rows = rewrite.rows,
                        table_version = rewrite.version,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "compacted an events partition"
                    );
                }
                Err(e) => {
                    outcome.failed += 1;
                    metrics::counter!("apitrail_compaction_errors_total").increment(1);
                    tracing::warn!(
                        day = %partition.day,
                        files_before,
                        error = %e,
                        error_source = ?std::error::Error::source(&e),
                        "compacting an events partition failed; the next run tries again"
                    );
                }
            }
        }
        Ok(outcome)
    }

    /// Rewrites one partition and commits the result; returns the output's counts.
    async fn compact_partition(
        &self,
        mut table: AppendTable,
        partition: &PartitionPlan,
    ) -> Result<Rewrite> {
        // Delta checks conflicts only from `table`'s version on, so the
        // inputs must still be in it.
        let active: std::collections::HashSet<String> = files_by_day(&table)?
            .remove(&partition.day)
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.path)
            .collect();
        if let Some(gone) = partition.inputs.iter().find(|f| !active.contains(&f.path)) {
            return Err(StorageError::Config(format!(
                "input file {} of day {} was removed after compaction planned it; nothing was committed",
                gone.path, partition.day
            )));
        }

        let (adds, rows) = rewrite_sorted(&table, &partition.inputs).await?;
        let expected: Option<u64> = partition.inputs.iter().map(|f| f.rows).sum();
        if let Some(expected) = expected
            && expected != rows
        {
            return Err(StorageError::Config(format!(
                "compacting day {} wrote {rows} rows but its {} input files hold {expected}; nothing was committed",
                partition.day,
                partition.inputs.len()
            )));
        }

        let now_millis = self.config().clock.now().timestamp_millis();
        let mut actions: Vec<Action> = partition
            .inputs
            .iter()
            .map(|f| f.remove_action(false, now_millis))
            .collect();
        let mut files = 0;
        let mut bytes = 0u64;
        for action in adds {
            if let Action::Add(mut add) = action {
                add.data_change = false;
                files += 1;
                bytes += add.size.max(0) as u64;
                actions.push(Action::Add(add));
            }
        }
        let operation = DeltaOperation::Optimize {
            predicate: Some(format!("{PARTITION_COLUMN} = '{}'", partition.day)),
            target_size: self.config().lifecycle.compaction_target_bytes as i64,
        };
        let txn = Transaction::new(LIFECYCLE_APP_ID, now_millis);

        let _guard = self.lock_commits().await;
        let version = table
            .commit_operation(actions, operation, Some(txn))
            .await?;
        self.install_events_table(table).await?;
        Ok(Rewrite {
            files,
            bytes,
            rows,
            version,
        })
    }
}

/// Counts of one committed partition rewrite.
#[derive(Debug)]
struct Rewrite {
    files: usize,
    bytes: u64,
    rows: u64,
    version: u64,
}

/// Reads `inputs` of the loaded version sorted by `time` and writes them as
/// new data files; returns their add actions and the rows written.
async fn rewrite_sorted(table: &AppendTable, inputs: &[DataFile]) -> Result<(Vec<Action>, u64)> {
    let error = |action: &'static str, source: DeltaTableError| StorageError::Table {
        location: table.location().to_string(),
        action,
        source: Box::new(source),
    };
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(SORT_MEMORY_BYTES, 1.0)
        .build_arc()
        .map_err(|e| error("preparing the compaction sort", e.into()))?;
    // One partition keeps the scan and sort to one core and one stream.
    let session = SessionConfig::new().with_target_partitions(1);
    let ctx = SessionContext::new_with_config_rt(session, runtime);
    table
        .delta()
        .update_datafusion_session(&ctx.state())
        .map_err(|e| error("registering the object store", e))?;
    let provider = table
        .delta()
        .table_provider()
        .with_file_paths(inputs.iter().map(|f| f.path.clone()))
        .await
        .map_err(|e| error("planning the compaction scan", e.into()))?;
    let sort_columns = table
        .spec()
        .sort_columns
        .iter()
        .map(|name| col(*name).sort(true, false))
        .collect();
    let mut stream = ctx
        .read_table(provider)
        .and_then(|frame| frame.sort(sort_columns))
        .map_err(|e| error("planning the compaction scan", e.into()))?
        .execute_stream()
        .await
        .map_err(|e| error("reading files to compact", e.into()))?;

    let schema = Arc::clone(&table.spec().schema);
    let mut writer = table.writer()?;
    let mut rows = 0u64;
    while let Some(batch) = stream
        .try_next()
        .await
        .map_err(|e| error("reading files to compact", e.into()))?
    {
        rows += batch.num_rows() as u64;
        writer.write(conform(&batch, &schema)?).await?;
    }
    Ok((writer.finish().await?, rows))
}

/// Puts a scanned batch in the table's column order and types.
///
/// The Delta scan returns the partition column last and may return strings
/// as view types, which the writer would store as another Parquet type.
fn conform(batch: &RecordBatch, schema: &arrow::datatypes::SchemaRef) -> Result<RecordBatch> {
    let arrow_error = |context: String, source| StorageError::Arrow { context, source };
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                StorageError::Config(format!(
                    "a compaction scan returned no column {}",
                    field.name()
                ))
            })?;
            if column.data_type() == field.data_type() {
                return Ok(Arc::clone(column));
            }
            arrow::compute::cast(column, field.data_type())
                .map_err(|e| arrow_error(format!("casting column {}", field.name()), e))
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| arrow_error("assembling a compacted batch".to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(day: NaiveDate, name: &str, bytes: u64) -> DataFile {
        DataFile {
            path: format!("day={day}/{name}"),
            bytes,
            rows: Some(1),
            remove: Remove {
                path: name.to_string(),
                data_change: false,
                deletion_timestamp: None,
                extended_file_metadata: None,
                partition_values: None,
                size: None,
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            },
        }
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("valid test date")
    }

    fn config() -> LifecycleConfig {
        LifecycleConfig {
            compaction_target_bytes: 1000,
            compaction_min_files: 3,
            ..LifecycleConfig::default()
        }
    }

    #[test]
    fn plan_skips_current_day_and_large_files() {
        let mut days = BTreeMap::new();
        let closed = date("2026-03-06");
        let today = date("2026-03-07");
        days.insert(
            closed,
            vec![
                file(closed, "a", 10),
                file(closed, "b", 10),
                file(closed, "c", 10),
                file(closed, "big", 900),
            ],
        );
        days.insert(
            today,
            (0..10).map(|i| file(today, &format!("t{i}"), 10)).collect(),
        );
        let plans = plan(days, &config(), today, None);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].day, closed);
        let names: Vec<&str> = plans[0].inputs.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            ["day=2026-03-06/a", "day=2026-03-06/b", "day=2026-03-06/c"]
        );
    }

    #[test]
    fn plan_needs_min_small_files() {
        let mut days = BTreeMap::new();
        let closed = date("2026-03-06");
        days.insert(closed, vec![file(closed, "a", 10), file(closed, "b", 10)]);
        assert!(plan(days, &config(), date("2026-03-07"), None).is_empty());
    }

    #[test]
    fn plan_skips_days_retention_removes() {
        let mut days = BTreeMap::new();
        let old = date("2026-02-27");
        days.insert(
            old,
            (0..5).map(|i| file(old, &format!("o{i}"), 10)).collect(),
        );
        let plans = plan(
            days,
            &config(),
            date("2026-03-07"),
            Some(date("2026-02-28")),
        );
        assert!(plans.is_empty());
    }

    /// Builds `count` events on `day`, one a minute from `first_minute`.
    fn events(day: &str, first_minute: i64, count: i64) -> RecordBatch {
        let start = chrono::DateTime::parse_from_rfc3339(&format!("{day}T00:00:00Z"))
            .expect("valid test day")
            .timestamp_micros();
        let mut builder = apitrail_ingest::EventBatchBuilder::new();
        for i in first_minute..first_minute + count {
            let mut event = apitrail_ingest::Event::new("clf", start + i * 60_000_000);
            event.path = Some(format!("/v1/items/{i}"));
            builder.push(&event);
        }
        builder.finish()
    }

    async fn store_at(
        dir: &std::path::Path,
        now: &str,
        retention_days: Option<u32>,
    ) -> (Arc<Store>, Arc<crate::clock::ManualClock>) {
        let clock = crate::clock::ManualClock::new(
            chrono::DateTime::parse_from_rfc3339(now)
                .expect("valid test time")
                .with_timezone(&chrono::Utc),
        );
        let config = crate::StoreConfig {
            lifecycle: LifecycleConfig {
                compaction_target_bytes: 1024 * 1024,
                compaction_min_files: 3,
                retention_days,
                ..LifecycleConfig::default()
            },
            clock: Arc::clone(&clock) as Arc<dyn crate::clock::Clock>,
            ..crate::StoreConfig::for_data_dir(dir.to_path_buf()).expect("test config")
        };
        (Store::open(config).await.expect("open store"), clock)
    }

    async fn flush(store: &Arc<Store>, batch: RecordBatch) {
        store.append(batch).await.expect("append");
        store.flush().await.expect("flush");
    }

    async fn row_count(store: &Store) -> usize {
        let table = store.events_table().expect("events table");
        table
            .read_all()
            .await
            .expect("read")
            .iter()
            .map(RecordBatch::num_rows)
            .sum()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_during_compaction_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _clock) = store_at(dir.path(), "2026-03-08T12:00:00Z", None).await;
        for i in 0..3 {
            flush(&store, events("2026-03-06", i * 10, 10)).await;
        }
        let planned = store.events_table().expect("events table");
        let plans = plan(
            files_by_day(&planned).expect("files"),
            &store.config().lifecycle,
            date("2026-03-08"),
            None,
        );
        assert_eq!(plans.len(), 1);
        // A blind append to the same day lands between planning and commit.
        flush(&store, events("2026-03-06", 100, 10)).await;

        store
            .compact_partition(planned, &plans[0])
            .await
            .expect("no conflict with a blind append");

        assert_eq!(row_count(&store).await, 40);
        let table = store.events_table().expect("events table");
        assert_eq!(
            table.file_count().expect("files"),
            2,
            "output and the appended file"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removed_input_fails_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, clock) = store_at(dir.path(), "2026-02-21T12:00:00Z", Some(7)).await;
        for i in 0..3 {
            flush(&store, events("2026-02-20", i * 10, 10)).await;
        }
        let planned = store.events_table().expect("events table");
        let plans = plan(
            files_by_day(&planned).expect("files"),
            &store.config().lifecycle,
            date("2026-02-21"),
            None,
        );
        assert_eq!(plans.len(), 1);
        // Retention removes the day before the compaction commits.
        clock.set(
            chrono::DateTime::parse_from_rfc3339("2026-03-08T00:00:00Z")
                .expect("valid test time")
                .with_timezone(&chrono::Utc),
        );
        assert_eq!(store.expire_events().await.expect("retention").files, 3);

        let result = store.compact_partition(planned, &plans[0]).await;

        assert!(result.is_err(), "a commit over removed inputs must fail");
        assert_eq!(row_count(&store).await, 0, "the removed day stays removed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inputs_removed_before_read_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, clock) = store_at(dir.path(), "2026-02-21T12:00:00Z", Some(7)).await;
        for i in 0..3 {
            flush(&store, events("2026-02-20", i * 10, 10)).await;
        }
        let plans = plan(
            files_by_day(&store.events_table().expect("events table")).expect("files"),
            &store.config().lifecycle,
            date("2026-02-21"),
            None,
        );
        clock.set(
            chrono::DateTime::parse_from_rfc3339("2026-03-08T00:00:00Z")
                .expect("valid test time")
                .with_timezone(&chrono::Utc),
        );
        store.expire_events().await.expect("retention");
        let latest = store.events_table().expect("events table");

        let error = store
            .compact_partition(latest, &plans[0])
            .await
            .expect_err("the inputs are gone from the version read");

        assert!(
            error
                .to_string()
                .contains("was removed after compaction planned it"),
            "{error}"
        );
        assert_eq!(row_count(&store).await, 0, "the removed day stays removed");
    }

    #[test]
    fn plan_caps_input_bytes() {
        let mut days = BTreeMap::new();
        let closed = date("2026-03-06");
        days.insert(
            closed,
            (0..40)
                .map(|i| file(closed, &format!("f{i:02}"), 400))
                .collect(),
        );
        let plans = plan(days, &config(), date("2026-03-07"), None);
        let total: u64 = plans[0].inputs.iter().map(|f| f.bytes).sum();
        assert!(total <= 1000 * MAX_INPUT_TARGETS, "input {total} bytes");
        assert_eq!(plans[0].inputs.len(), 20);
    }
}
