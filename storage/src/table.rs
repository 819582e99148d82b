//! The append-only Delta Lake tables of a store on an object store.
//!
//! Two tables share this code, each described by a [`TableSpec`]: `events`,
//! partitioned by `day`, and `views`, the partial aggregates of the
//! continuous views, partitioned by `grain`. Layout under a table URL:
//! `_delta_log/` with one JSON commit per flush (and a Parquet checkpoint
//! every 100 commits), and data files under `<partition>=<value>/part-*.parquet`,
//! zstd-compressed and sorted by the first column (`time` or `bucket`).
//!
//! Each commit is atomic: a file written to the object store but not named by
//! a committed log entry is invisible to readers. A crash between writing
//! Parquet and committing leaves such orphans.
//! NOTE: apitrail does not remove orphaned files yet; Delta's vacuum would.
//!
//! A flush commit carries a Delta application transaction `(app_id, version)`
//! where the version is the last WAL LSN the commit covers. After a crash the
//! store replays only WAL records above that version, so a flush is neither
//! lost nor applied twice.

use std::collections::HashMap;

use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

use crate::error::{Result, StorageError};
use crate::failpoint;
pub use crate::object_stores::redact_url;

/// Partition column of the events table.
pub const PARTITION_COLUMN: &str = "day";

/// Description of one of the store's tables: name, schema and partitioning.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: &'static str,
    pub comment: &'static str,
    pub schema: arrow::datatypes::SchemaRef,
    pub partition_column: &'static str,
    /// Columns that rows are sorted by within each written file, so that
    /// Parquet statistics let a filter on them skip row groups.
    pub sort_columns: &'static [&'static str],
    /// Rows per Parquet row group, the unit a filter can skip.
    pub row_group_rows: usize,
    /// Integer or timestamp columns written with delta encoding and no
    /// dictionary. Sorted times, a few milliseconds apart, then take a few
    /// bits a row.
    pub delta_columns: &'static [&'static str],
}

impl TableSpec {
    /// Describes the events table: one row per call, partitioned by day.
    pub fn events() -> Self {
        TableSpec {
            name: "events",
            comment: "API call events written by apitrail",
            schema: apitrail_ingest::event_schema(),
            partition_column: PARTITION_COLUMN,
            sort_columns: &["time"],
            row_group_rows: 128 * 1024,
            delta_columns: &["time"],
        }
    }

    /// Describes the views table: partial aggregates per key, partitioned by grain.
    pub fn views() -> Self {
        TableSpec {
            name: "views",
            comment: "Partial aggregates of apitrail's continuous views",
            schema: crate::views::partials_schema(),
            partition_column: crate::views::GRAIN_COLUMN,
            // One consumer's rows are then together: its baseline and its
            // activity read the row groups that hold it, not the whole file.
            sort_columns: &["consumer", "bucket"],
            row_group_rows: 16 * 1024,
            delta_columns: &[],
        }
    }
}

/// Attempts of one append commit that conflicts with other writers' commits.
const COMMIT_ATTEMPTS: u32 = 5;

/// Target size of one Parquet data file written by a flush.
const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// Handle on one of the store's tables at its latest loaded version.
#[derive(Debug, Clone)]
pub struct AppendTable {
    table: DeltaTable,
    location: String,
    spec: TableSpec,
}

impl AppendTable {
    /// Opens the table at `url`, creating it from `spec` if it does not exist.
    pub async fn open_or_create(
        url: &Url,
        storage_options: HashMap<String, String>,
        spec: TableSpec,
    ) -> Result<Self> {
        crate::object_stores::register_cloud_schemes();
        let location = redact_url(url);
        let table_error = |action, source| StorageError::Table {
            location: location.clone(),
            action,
            source: Box::new(source),
        };
        let mut exists = true;
        if url.scheme() == "file" {
            let dir = url
                .to_file_path()
                .map_err(|()| StorageError::Config(format!("{location} is not a local path")))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| StorageError::io("creating table directory", &dir, e))?;
            exists = dir.join("_delta_log").exists();
        }

        let mut table =
            build_table(url, storage_options.clone()).map_err(|e| table_error("opening", e))?;
        if exists {
            match table.load().await {
                Ok(()) => {}
                Err(DeltaTableError::NotATable(_)) => exists = false,
                Err(e) => return Err(table_error("loading", e)),
            }
        }
        if !exists {
            let created;
            (table, created) = create_or_join(url, storage_options, &spec)
                .await
                .map_err(|e| table_error("creating", e))?;
            if created {
                tracing::info!(location = %location, table = spec.name, "created table");
            }
        }
        Ok(AppendTable {
            table,
            location,
            spec,
        })
    }

    /// Opens the table at `url` if it exists, without creating anything.
    pub async fn open_existing(
        url: &Url,
        storage_options: HashMap<String, String>,
        spec: TableSpec,
    ) -> Result<Option<Self>> {
        crate::object_stores::register_cloud_schemes();
        let location = redact_url(url);
        let table_error = |action, source| StorageError::Table {
            location: location.clone(),
            action,
            source: Box::new(source),
        };
        let mut table = build_table(url, storage_options).map_err(|e| table_error("opening", e))?;
        if url.scheme() == "file" && url.to_file_path().is_ok_and(|dir| !dir.exists()) {
            return Ok(None);
        }
        match table.load().await {
            Ok(()) => Ok(Some(AppendTable {
                table,
                location,
                spec,
            })),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(table_error("loading", e)),
        }
    }

    pub fn delta(&self) -> &DeltaTable {
        &self.table
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// Last version committed under an application id, if any.
    pub async fn transaction_version(&self, app_id: &str) -> Result<Option<i64>> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(|e| self.error("reading snapshot", e))?;
        snapshot
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(|e| self.error("reading application transaction", e))
    }

    /// Reloads the latest committed version.
    pub async fn refresh(&mut self) -> Result<()> {
        self.table
            .update_state()
            .await
            .map_err(|e| self.error("refreshing", e))
    }

    /// Writes `batches` as sorted, zstd-compressed Parquet and commits them with `txn`.
    ///
    /// Returns the committed table version. On error nothing is committed.
    pub async fn append(&mut self, batches: Vec<RecordBatch>, txn: Transaction) -> Result<u64> {
        let mut writer = self.writer()?;
        for batch in batches {
            writer.write(batch).await?;
        }
        let actions = writer.finish().await?;
        failpoint::hit("flush_after_parquet");
        let version = self.commit(actions, txn).await?;
        failpoint::hit("flush_after_commit");
        Ok(version)
    }

    /// Starts writing data files that a later [`AppendTable::commit`] makes visible.
    pub fn writer(&self) -> Result<TableWriter> {
        let inner = RecordBatchWriter::for_table(&self.table)
            .map_err(|e| self.error("preparing write", e))?
            .with_writer_properties(writer_properties(&self.spec))
            .with_target_file_size(TARGET_FILE_BYTES);
        Ok(TableWriter {
            inner,
            location: self.location.clone(),
            sort_columns: self.spec.sort_columns,
        })
    }

    /// Commits files written by a [`TableWriter`] in one atomic table version.
    ///
    /// deltalake retries a commit that lost a race for a version number by
    /// itself, unless the winning commit conflicts with this one. A commit
    /// conflicts when another writer removed files that this handle's
    /// snapshot contains, as a views compaction on another node does. Files
    /// only added here read nothing, so such a commit is retried from a
    /// reloaded snapshot, up to [`COMMIT_ATTEMPTS`] times. Before each retry,
    /// a commit of `txn` that already landed (a write that failed after the
    /// object store applied it) ends the loop, so nothing is committed twice.
    pub async fn commit(&mut self, actions: Vec<Action>, txn: Transaction) -> Result<u64> {
        let mut attempt = 1;
        loop {
            let error = match self.try_commit(actions.clone(), txn.clone()).await {
                Ok(version) => return Ok(version),
                Err(e) => e,
            };
            if attempt >= COMMIT_ATTEMPTS || !is_commit_conflict(&error) {
                return Err(self.error("committing", error));
            }
            tracing::warn!(
                table = self.spec.name,
                location = %self.location,
                attempt,
                error = %error,
                "commit conflicted with another writer's; retrying from the latest version"
            );
            self.refresh().await?;
            let committed = self.transaction_version(&txn.app_id).await?;
            if committed.is_some_and(|version| version >= txn.version) {
                return Ok(self.version().unwrap_or_default());
            }
            attempt += 1;
        }
    }

    async fn try_commit(
        &mut self,
        actions: Vec<Action>,
        txn: Transaction,
    ) -> Result<u64, DeltaTableError> {
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(vec![self.spec.partition_column.to_string()]),
            predicate: None,
        };
        let properties = CommitProperties::default().with_application_transaction(txn);
        let snapshot = self.table.snapshot()?;
        let finalized = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), self.table.log_store(), operation)
            .await?;
        let version = finalized.version();
        self.table.update_state().await?;
        Ok(version)
    }

    /// Number of data files in the loaded version.
    pub fn file_count(&self) -> Result<usize> {
        Ok(self
            .table
            .snapshot()
            .map_err(|e| self.error("reading snapshot", e))?
            .log_data()
            .num_files())
    }

    /// Reads every row of the loaded version.
    pub async fn read_all(&self) -> Result<Vec<RecordBatch>> {
        let (_, stream) = self
            .table
            .scan_table()
            .await
            .map_err(|e| self.error("reading", e))?;
        futures::TryStreamExt::try_collect(stream)
            .await
            .map_err(|e| self.error("reading", DeltaTableError::from(e)))
    }

    /// Replaces every row with `batches` in one commit; returns the new version.
    ///
    /// The replaced files are only marked removed in the log, never deleted,
    /// so queries still reading the older version finish undisturbed.
    /// NOTE: nothing deletes removed files yet; Delta's vacuum would.
    pub async fn overwrite(&mut self, batches: Vec<RecordBatch>) -> Result<u64> {
        let batches = batches
            .iter()
            .map(|batch| sort_by_columns(batch, self.spec.sort_columns))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageError::Arrow {
                context: "sorting rows before writing".to_string(),
                source: e,
            })?;
        let table = self
            .table
            .clone()
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_partition_columns([self.spec.partition_column])
            .with_writer_properties(writer_properties(&self.spec))
            .await
            .map_err(|e| self.error("rewriting", e))?;
        self.table = table;
        Ok(self.table.version().unwrap_or_default())
    }

    fn error(&self, action: &'static str, source: DeltaTableError) -> StorageError {
        StorageError::Table {
            location: self.location.clone(),
            action,
            source: Box::new(source),
        }
    }
}

/// Writes data files of a table, sorted by its sort columns, until finished.
pub struct TableWriter {
    inner: RecordBatchWriter,
    location: String,
    sort_columns: &'static [&'static str],
}

impl TableWriter {
    /// Sorts one batch by the table's sort columns and writes it; files roll over at the target size.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let sorted =
            sort_by_columns(&batch, self.sort_columns).map_err(|e| StorageError::Arrow {
                context: "sorting rows before writing".to_string(),
                source: e,
            })?;
        self.inner
            .write(sorted)
            .await
            .map_err(|e| StorageError::Table {
                location: self.location.clone(),
                action: "writing Parquet",
                source: Box::new(e),
            })
    }

    /// Closes the open files and returns the `add` actions that name them.
    pub async fn finish(mut self) -> Result<Vec<Action>> {
        let adds = self.inner.flush().await.map_err(|e| StorageError::Table {
            location: self.location.clone(),
            action: "writing Parquet",
            source: Box::new(e),
        })?;
        Ok(adds.into_iter().map(Action::Add).collect())
    }
}

/// Checks whether a commit failed because another writer's commit conflicts with it.
fn is_commit_conflict(error: &DeltaTableError) -> bool {
    matches!(
        error,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_),
        }
    )
}

fn build_table(
    url: &Url,
    storage_options: HashMap<String, String>,
) -> Result<DeltaTable, DeltaTableError> {
    DeltaTableBuilder::from_url(url.clone())?
        .with_storage_options(storage_options)
        .build()
}

/// Creates the table; returns it and `true`, or, when another process
/// created it first, the loaded table and `false`.
///
/// Two nodes that start on an empty store both find no table. Version 0 is
/// written with put-if-absent, so only one creation takes it. deltalake
/// 1.1 then commits the other creation's protocol and metadata as version
/// 1: same schema and partitioning, a new table id. If that commit fails
/// instead, this node loads the table the other one made.
async fn create_or_join(
    url: &Url,
    storage_options: HashMap<String, String>,
    spec: &TableSpec,
) -> Result<(DeltaTable, bool), DeltaTableError> {
    let table = build_table(url, storage_options.clone())?;
    let create_error = match create_table(table, storage_options.clone(), spec).await {
        Ok(table) => return Ok((table, true)),
        Err(e) => e,
    };
    let mut table = build_table(url, storage_options)?;
    match table.load().await {
        Ok(()) => Ok((table, false)),
        Err(_) => Err(create_error),
    }
}

async fn create_table(
    table: DeltaTable,
    storage_options: HashMap<String, String>,
    spec: &TableSpec,
) -> Result<DeltaTable, DeltaTableError> {
    let schema: StructType = spec
        .schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| DeltaTableError::Generic(format!("{} schema: {e}", spec.name)))?;
    table
        .create()
        .with_table_name(spec.name)
        .with_comment(spec.comment)
        .with_columns(schema.fields().cloned())
        .with_partition_columns([spec.partition_column])
        .with_storage_options(storage_options)
        .with_save_mode(SaveMode::Ignore)
        .await
}

fn writer_properties(spec: &TableSpec) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(spec.row_group_rows));
    for name in spec.delta_columns {
        let column = ColumnPath::from(*name);
        builder = builder
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
    }
    builder.build()
}

/// Sorts `batch` by the named columns, in order; a name the batch lacks is skipped.
fn sort_by_columns(
    batch: &RecordBatch,
    names: &[&str],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns: Vec<SortColumn> = names
        .iter()
        .filter_map(|name| batch.column_by_name(name))
        .map(|values| SortColumn {
            values: values.clone(),
            options: None,
        })
        .collect();
    if columns.is_empty() || batch.num_rows() < 2 {
        return Ok(batch.clone());
    }
    let indices = lexsort_to_indices(&columns, None)?;
    take_record_batch(batch, &indices)
}
