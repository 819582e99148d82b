//! The store: WAL, write buffer and events table behind one handle.
//!
//! Write path: [`Store::append`] encodes a batch, appends it to the WAL
//! (resolving after the group-commit fsync), then adds it to the write
//! buffer, where queries see it at once. A background flusher commits the
//! buffer to the table when it exceeds a size or age, in four steps:
//!
//! 1. take the buffered batches from the committed LSN up to the highest LSN
//!    `n` with no gap before it, and rotate the WAL. Concurrent appends reach
//!    the buffer out of order, and a commit must not name an LSN above a
//!    record it lacks;
//! 2. write them as Parquet and commit with the application transaction
//!    `(app_id, n)`;
//! 3. swap, under one lock, the table snapshot that queries read and the
//!    buffer without those batches, so no query sees a row twice or misses it;
//! 4. delete the WAL segments whose records are all at or below `n`.
//!
//! A crash before step 2 commits loses nothing (the WAL still has the
//! records); after it, recovery reads `n` back from the table and replays
//! only later records. Crash points between the steps are named in
//! [`crate::failpoint`] calls.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use tokio::sync::{Mutex, Notify};
use url::Url;

use crate::buffer::{BufferedBatch, WriteBuffer};
use crate::codec::{decode_batches, encode_batch};
use crate::error::{Result, StorageError};
use crate::failpoint;
use crate::lock::DirLock;
use crate::rejects::RejectsFile;
use crate::table::{EventTable, TableWriter};
use crate::wal::{Lsn, Wal, WalConfig, WalRecord};

/// Settings of a store. Sizes are in bytes, durations as given.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Local directory for the WAL, the rejects file, keys and the lock.
    pub data_dir: PathBuf,
    /// Object store URL of the events table (`file:///...`, later `s3://...`).
    pub table_url: Url,
    /// Options passed to the object store, such as credentials.
    pub storage_options: HashMap<String, String>,
    /// Flush when this many rows are buffered.
    pub flush_max_rows: usize,
    /// Flush when the buffer's Arrow arrays reach this many bytes.
    pub flush_max_bytes: usize,
    /// Flush when the oldest buffered event has waited this long.
    pub flush_max_age: Duration,
    /// Roll to a new WAL segment beyond this size.
    pub wal_segment_max_bytes: u64,
}

impl StoreConfig {
    /// Defaults for a data directory, with the table in `<data_dir>/table`.
    pub fn for_data_dir(data_dir: PathBuf) -> Result<Self> {
        let table_dir = absolute(&data_dir)?.join("table");
        let table_url = Url::from_directory_path(&table_dir).map_err(|()| {
            StorageError::Config(format!("cannot make a URL of {}", table_dir.display()))
        })?;
        Ok(StoreConfig {
            data_dir,
            table_url,
            storage_options: HashMap::new(),
            flush_max_rows: 1_000_000,
            flush_max_bytes: 256 * 1024 * 1024,
            flush_max_age: Duration::from_secs(30),
            wal_segment_max_bytes: 64 * 1024 * 1024,
        })
    }
}

fn absolute(path: &std::path::Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| StorageError::io("resolving path", path, e))
}

/// Data that one query reads: a table version plus the buffered batches above it.
#[derive(Debug, Clone)]
pub struct StoreSnapshot {
    /// The table at a committed version, `None` when a read-only open found no table.
    pub table: Option<DeltaTable>,
    pub buffered: Vec<BufferedBatch>,
}

/// Counts of one flush.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    pub rows: usize,
    pub through_lsn: Lsn,
    pub table_version: Option<u64>,
}

struct State {
    table: Option<EventTable>,
    committed_lsn: Lsn,
    buffer: WriteBuffer,
}

/// WAL, write buffer and table of one data directory.
pub struct Store {
    config: StoreConfig,
    app_id: String,
    wal: Option<Wal>,
    state: RwLock<State>,
    flush_lock: Mutex<()>,
    flush_needed: Notify,
    rejects: RejectsFile,
    _lock: Option<DirLock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.config.data_dir)
            .field("app_id", &self.app_id)
            .finish()
    }
}

impl Store {
    /// Opens a data directory for writing: takes its lock, opens or creates the
    /// table, and replays the WAL records the table does not cover yet.
    pub async fn open(config: StoreConfig) -> Result<Arc<Self>> {
        let started = Instant::now();
        let lock = DirLock::acquire(&config.data_dir)?;
        let app_id = format!("apitrail-wal-{}", node_id(&config.data_dir)?);
        let table =
            EventTable::open_or_create(&config.table_url, config.storage_options.clone()).await?;
        let committed_lsn = committed_lsn(&table, &app_id).await?;

        let wal_config = WalConfig {
            segment_max_bytes: config.wal_segment_max_bytes,
            min_next_lsn: committed_lsn + 1,
            ..WalConfig::new(config.data_dir.join("wal"))
        };
        let (wal, records, report) = Wal::open(wal_config)?;
        let buffer = replay(records, committed_lsn)?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            table = table.location(),
            table_version = ?table.version(),
            committed_lsn,
            wal_records = report.records,
            replayed_rows = buffer.rows(),
            corrupt_tails = report.corrupt_tails,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );
        wal.truncate_through(committed_lsn).await?;

        Ok(Arc::new(Store {
            rejects: RejectsFile::new(&config.data_dir),
            config,
            app_id,
            wal: Some(wal),
            state: RwLock::new(State {
                table: Some(table),
                committed_lsn,
                buffer,
            }),
            flush_lock: Mutex::new(()),
            flush_needed: Notify::new(),
            _lock: Some(lock),
        }))
    }

    /// Opens a data directory for queries only, beside a server that may be writing to it.
    ///
    /// Reads the table and every WAL record it does not cover, changing nothing on disk.
    pub async fn open_read_only(config: StoreConfig) -> Result<Arc<Self>> {
        let app_id = match read_node_id(&config.data_dir)? {
            Some(id) => format!("apitrail-wal-{id}"),
            None => String::new(),
        };
        let table =
            EventTable::open_existing(&config.table_url, config.storage_options.clone()).await?;
        let committed_lsn = match &table {
            Some(table) if !app_id.is_empty() => committed_lsn(table, &app_id).await?,
            _ => 0,
        };
        let wal_dir = config.data_dir.join("wal");
        let buffer = if wal_dir.exists() {
            let (records, _report) = Wal::read_only(&wal_dir)?;
            replay(records, committed_lsn)?
        } else {
            WriteBuffer::default()
        };
        Ok(Arc::new(Store {
            rejects: RejectsFile::new(&config.data_dir),
            config,
            app_id,
            wal: None,
            state: RwLock::new(State {
                table,
                committed_lsn,
                buffer,
            }),
            flush_lock: Mutex::new(()),
            flush_needed: Notify::new(),
            _lock: None,
        }))
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn rejects(&self) -> &RejectsFile {
        &self.rejects
    }

    /// Makes `batch` durable in the WAL and visible to queries; returns its LSN.
    ///
    /// NOTE: while flushes keep failing (the table's store is unreachable),
    /// the buffer grows without a limit; ingest is not yet slowed or refused.
    pub async fn append(&self, batch: RecordBatch) -> Result<Lsn> {
        let wal = self.wal.as_ref().ok_or(StorageError::ShuttingDown)?;
        let payload = encode_batch(&batch)?;
        let lsn = wal.append(payload).await?;

        let needs_flush = {
            let mut state = self.state.write().expect("store state lock poisoned");
            state.buffer.push(BufferedBatch::new(lsn, batch));
            state.buffer.rows() >= self.config.flush_max_rows
                || state.buffer.bytes() >= self.config.flush_max_bytes
        };
        metrics::gauge!("apitrail_buffer_rows").set(self.buffered_rows() as f64);
        if needs_flush {
            self.flush_needed.notify_one();
        }
        Ok(lsn)
    }

    pub fn buffered_rows(&self) -> usize {
        self.state
            .read()
            .expect("store state lock poisoned")
            .buffer
            .rows()
    }

    /// The table version and buffered batches that a query reads, taken atomically.
    pub fn snapshot(&self) -> StoreSnapshot {
        let state = self.state.read().expect("store state lock poisoned");
        StoreSnapshot {
            table: state.table.as_ref().map(|t| t.delta().clone()),
            buffered: state.buffer.batches().to_vec(),
        }
    }

    /// Commits every buffered batch to the table. Concurrent calls run one after the other.
    ///
    /// The flush runs in its own task, so it finishes even when the caller is
    /// cancelled: stopping between the commit and the buffer swap would leave
    /// the buffer holding rows that the table already has.
    pub async fn flush(self: &Arc<Self>) -> Result<FlushOutcome> {
        let store = Arc::clone(self);
        tokio::spawn(async move { store.flush_now().await })
            .await
            .expect("the flush task does not panic")
    }

    async fn flush_now(&self) -> Result<FlushOutcome> {
        let _guard = self.flush_lock.lock().await;
        let Some(wal) = &self.wal else {
            return Ok(FlushOutcome::default());
        };
        let started = Instant::now();

        let (batches, through_lsn, mut table) = {
            let state = self.state.read().expect("store state lock poisoned");
            let Some(through_lsn) = state.buffer.contiguous_through(state.committed_lsn) else {
                return Ok(FlushOutcome::default());
            };
            let batches: Vec<RecordBatch> = state
                .buffer
                .batches()
                .iter()
                .take_while(|b| b.lsn <= through_lsn)
                .map(|b| b.batch.clone())
                .collect();
            let table = state
                .table
                .clone()
                .expect("a writable store always has a table");
            (batches, through_lsn, table)
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        wal.rotate().await?;
        failpoint::hit("flush_before_write");

        let txn = Transaction::new(&self.app_id, through_lsn as i64);
        let version = match table.append(batches, txn).await {
            Ok(version) => version,
            Err(e) => {
                metrics::counter!("apitrail_flush_errors_total").increment(1);
                tracing::warn!(error = %e, rows, through_lsn, "flush failed; the events stay in the WAL and buffer and the flush is retried");
                self.reconcile(table).await;
                return Err(e);
            }
        };

        {
            let mut state = self.state.write().expect("store state lock poisoned");
            state.table = Some(table);
            state.committed_lsn = through_lsn;
            state.buffer.release_through(through_lsn);
        }
        failpoint::hit("flush_before_truncate");
        let removed = wal.truncate_through(through_lsn).await?;

        metrics::counter!("apitrail_flushes_total").increment(1);
        metrics::counter!("apitrail_flushed_rows_total").increment(rows as u64);
        metrics::histogram!("apitrail_flush_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("apitrail_buffer_rows").set(self.buffered_rows() as f64);
        tracing::info!(
            rows,
            through_lsn,
            table_version = version,
            wal_segments_removed = removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed buffer to table"
        );
        Ok(FlushOutcome {
            rows,
            through_lsn,
            table_version: Some(version),
        })
    }

    /// Catches up with a commit that landed although the flush reported an error.
    ///
    /// An object store can apply a write and still fail the request (a
    /// timeout after the put). Reading the committed LSN back from the table
    /// keeps the buffer from committing those rows a second time.
    async fn reconcile(&self, mut table: EventTable) {
        let committed = match table.refresh().await {
            Ok(()) => committed_lsn(&table, &self.app_id).await,
            Err(e) => Err(e),
        };
        let committed = match committed {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the table back after a failed flush; the next flush retries");
                return;
            }
        };
        let mut state = self.state.write().expect("store state lock poisoned");
        if committed > state.committed_lsn {
            tracing::info!(
                committed_lsn = committed,
                "a flush reported as failed was committed; the buffer catches up"
            );
            state.table = Some(table);
            state.committed_lsn = committed;
            state.buffer.release_through(committed);
        }
    }

    /// Runs flushes by size and age until the returned task is aborted.
    ///
    /// Aborting never cuts a flush in half, because each flush runs in its own task.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let tick = (store.config.flush_max_age / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(1));
            let mut backoff = Duration::from_millis(500);
            loop {
                tokio::select! {
                    () = store.flush_needed.notified() => {}
                    () = tokio::time::sleep(tick) => {}
                }
                if !store.flush_due() {
                    continue;
                }
                match store.flush().await {
                    Ok(_) => backoff = Duration::from_millis(500),
                    Err(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        })
    }

    fn flush_due(&self) -> bool {
        let state = self.state.read().expect("store state lock poisoned");
        let buffer = &state.buffer;
        buffer.rows() >= self.config.flush_max_rows
            || buffer.bytes() >= self.config.flush_max_bytes
            || buffer
                .oldest()
                .is_some_and(|oldest| oldest.elapsed() >= self.config.flush_max_age)
    }

    /// Flushes everything and stops the WAL writer, for a clean exit.
    pub async fn shutdown(self: &Arc<Self>) -> Result<()> {
        let outcome = self.flush().await?;
        if let Some(wal) = &self.wal {
            wal.close().await?;
        }
        tracing::info!(rows = outcome.rows, "store shut down cleanly");
        Ok(())
    }

    /// Starts writing the events of one imported file; `None` if `import_id`
    /// was already committed, so a file imported twice adds nothing.
    pub async fn begin_import(&self, import_id: &str) -> Result<Option<TableWriter>> {
        let table = self.writable_table()?;
        if table.transaction_version(import_id).await?.is_some() {
            return Ok(None);
        }
        Ok(Some(table.writer()?))
    }

    /// Commits an import's files under `import_id`; returns the table version.
    pub async fn commit_import(&self, import_id: &str, writer: TableWriter) -> Result<u64> {
        let _guard = self.flush_lock.lock().await;
        let actions = writer.finish().await?;
        let mut table = self.writable_table()?;
        let version = table
            .commit(actions, Transaction::new(import_id, 1))
            .await?;
        self.state.write().expect("store state lock poisoned").table = Some(table);
        Ok(version)
    }

    fn writable_table(&self) -> Result<EventTable> {
        let state = self.state.read().expect("store state lock poisoned");
        state.table.clone().ok_or(StorageError::ShuttingDown)
    }

    /// Checks whether a commit with this import id exists.
    pub async fn is_imported(&self, import_id: &str) -> Result<bool> {
        let table = {
            let state = self.state.read().expect("store state lock poisoned");
            state.table.clone()
        };
        match table {
            Some(table) => Ok(table.transaction_version(import_id).await?.is_some()),
            None => Ok(false),
        }
    }
}

async fn committed_lsn(table: &EventTable, app_id: &str) -> Result<Lsn> {
    Ok(table.transaction_version(app_id).await?.unwrap_or(0).max(0) as Lsn)
}

/// Rebuilds the buffer from WAL records above the committed LSN.
fn replay(records: Vec<WalRecord>, committed_lsn: Lsn) -> Result<WriteBuffer> {
    let mut buffer = WriteBuffer::default();
    for record in records {
        if record.lsn <= committed_lsn {
            continue;
        }
        for batch in decode_batches(record.lsn, &record.payload)? {
            buffer.push(BufferedBatch::new(record.lsn, batch));
        }
    }
    Ok(buffer)
}

/// Reads this data directory's writer id, creating it on first start.
///
/// It names the WAL's application transaction in the table, so several
/// writers with their own data directories can share one table.
fn node_id(data_dir: &std::path::Path) -> Result<String> {
    if let Some(id) = read_node_id(data_dir)? {
        return Ok(id);
    }
    let path = data_dir.join("node.id");
    let id = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(&path, format!("{id}\n"))
        .and_then(|()| std::fs::File::open(&path)?.sync_all())
        .map_err(|e| StorageError::io("writing node id", &path, e))?;
    Ok(id)
}

fn read_node_id(data_dir: &std::path::Path) -> Result<Option<String>> {
    let path = data_dir.join("node.id");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io("reading node id", &path, e)),
    }
}
