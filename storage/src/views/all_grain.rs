//! The `all` grain of the committed views table, held in memory and merged by key.
//!
//! `endpoints` and `consumers` read only the `all` grain: one row per
//! consumer, host, method and endpoint. Every flush adds a file to that
//! partition with a row for each key it touched, so between compactions the
//! same key sits in many files, and each query would open every file again
//! and merge the same sketches again. [`AllGrainCache`] keeps the rows of the
//! files it has read, merged into one row per key, and remembers which
//! files those were.
//!
//! Against a newer table version it compares file lists. Files added since
//! are read and merged in, so the cost of keeping up is that of the new
//! files alone. When a file it read is gone (a compaction or a retention
//! rewrite replaced it), the rows of the replacement files cannot be
//! separated from those already merged, so it reads the partition whole again.
//! Both rewrites are rare: a compaction runs once the table has many
//! files.
//!
//! Merged rows that take more than `max_bytes` of memory are not held: the
//! caller then reads the table itself, so the memory held stays bounded.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use deltalake::DeltaTable;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::partial::{GRAIN_ALL, GRAIN_COLUMN, ViewPartials};
use crate::error::{Result, StorageError};

/// Files of the partition read at once when it is read whole.
const READ_CONCURRENCY: usize = 4;

/// Merged `all` rows of the committed views table, kept between queries.
#[derive(Debug)]
pub struct AllGrainCache {
    max_bytes: usize,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    cached: Option<Cached>,
    /// Location of a table whose `all` grain outgrew `max_bytes`. Its keys
    /// never become fewer (retention keeps the `all` rows), so it is not
    /// read again.
    oversized: Option<String>,
}

#[derive(Debug)]
struct Cached {
    /// Location of the table the rows came from.
    location: String,
    /// Paths of the files whose rows are merged in.
    files: HashSet<String>,
    /// The merged rows, as written by [`ViewPartials::to_record_batch`].
    batch: RecordBatch,
}

/// One data file of the `all` partition.
struct DataFile {
    path: String,
}

impl AllGrainCache {
    /// Creates a cache whose merged rows may take up to `max_bytes` of memory.
    pub fn new(max_bytes: usize) -> Self {
        AllGrainCache {
            max_bytes,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Returns the `all` rows of `views` merged by key, in the views schema,
    /// or `None` when they take more than `max_bytes`.
    pub async fn batch(&self, views: &DeltaTable) -> Result<Option<RecordBatch>> {
        let location = views.table_url().to_string();
        let files = all_grain_files(views, &location)?;

        let mut state = self.state.lock().await;
        if state.oversized.as_deref() == Some(location.as_str()) {
            return Ok(None);
        }

        let paths: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        // The merged rows stay valid while every file behind them is still there.
        let reusable = state.cached.as_ref().is_some_and(|cached| {
            cached.location == location
                && cached
                    .files
                    .iter()
                    .all(|path| paths.contains(path.as_str()))
        });
        let (mut partials, mut read) = match state.cached.take() {
            Some(cached) if reusable && cached.files.len() == files.len() => {
                let batch = cached.batch.clone();
                state.cached = Some(cached);
                return Ok(Some(batch));
            }
            Some(cached) if reusable => (
                ViewPartials::from_record_batch(&cached.batch).map_err(|e| {
                    StorageError::Table {
                        location: location.clone(),
                        action: "decoding the merged all grain of the views table",
                        source: Box::new(deltalake::DeltaTableError::Generic(e.to_string())),
                    }
                })?,
                cached.files,
            ),
            _ => (ViewPartials::default(), HashSet::new()),
        };

        let added: Vec<DataFile> = files
            .into_iter()
            .filter(|file| !read.contains(&file.path))
            .collect();
        let rows_before = partials.len();
        let files_read = added.len();
        read_files(views, &location, added, &mut partials, &mut read).await?;

        let batch = partials.to_record_batch();
        let bytes = batch.get_array_memory_size();
        if bytes > self.max_bytes {
            tracing::info!(
                rows = batch.num_rows(),
                bytes,
                max_bytes = self.max_bytes,
                "the all grain of the views table is too large to hold in memory; queries read it from the table"
            );
            state.oversized = Some(location);
            return Ok(None);
        }

        tracing::debug!(
            files_read,
            rows_before,
            rows = batch.num_rows(),
            bytes,
            "merged the all grain of the views table"
        );
        state.cached = Some(Cached {
            location,
            files: read,
            batch: batch.clone(),
        });
        Ok(Some(batch))
    }
}

/// Reads `files` of `views` a few at a time, merging their rows into
/// `partials` and recording each path in `read`.
async fn read_files(
    views: &DeltaTable,
    location: &str,
    files: Vec<DataFile>,
    partials: &mut ViewPartials,
    read: &mut HashSet<String>,
) -> Result<()> {
    let store = views.object_store();
    let mut reads = futures::stream::iter(files.into_iter().map(|file| {
        let store = Arc::clone(&store);
        async move { read_file(store, &file).await.map(|rows| (file.path, rows)) }
    }))
    .buffer_unordered(READ_CONCURRENCY);
    while let Some(result) = reads.next().await {
        let (path, rows) = result.map_err(|source| StorageError::Table {
            location: location.to_string(),
            action: "reading the all grain of the views table",
            source: Box::new(source),
        })?;
        partials.merge(&rows);
        read.insert(path);
    }
    Ok(())
}

/// Lists the data files of the `all` partition in the loaded version.
fn all_grain_files(views: &DeltaTable, location: &str) -> Result<Vec<DataFile>> {
    let snapshot = views.snapshot().map_err(|e| StorageError::Table {
        location: location.to_string(),
        action: "reading snapshot",
        source: Box::new(e),
    })?;
    Ok(snapshot
        .log_data()
        .iter()
        .filter(|file| {
            file.partition_values_map()
                .get(GRAIN_COLUMN)
                .is_some_and(|value| value.as_deref() == Some(GRAIN_ALL))
        })
        .map(|file| DataFile {
            path: file.object_store_path().to_string(),
        })
        .collect())
}

/// Reads one file of the `all` partition as partials.
///
/// The file is fetched whole, in one request: a flush writes the `all`
/// rows of the keys it touched, a small file. Partition values are not
/// stored in the file, so the `grain` column is added back before the rows
/// are decoded.
async fn read_file(
    store: Arc<dyn object_store::ObjectStore>,
    file: &DataFile,
) -> std::result::Result<ViewPartials, deltalake::DeltaTableError> {
    let bytes = store
        .get(&Path::from(file.path.as_str()))
        .await?
        .bytes()
        .await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut partials = ViewPartials::default();
    for batch in reader {
        let batch = batch?;
        let grain: ArrayRef = Arc::new(StringArray::from(vec![GRAIN_ALL; batch.num_rows()]));
        let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(GRAIN_COLUMN, DataType::Utf8, false)));
        let mut columns = batch.columns().to_vec();
        columns.push(grain);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        let rows = ViewPartials::from_record_batch(&batch)
            .map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
        partials.merge(&rows);
    }
    Ok(partials)
}
