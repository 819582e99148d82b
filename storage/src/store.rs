//! The store: WAL, write buffer and events table behind one handle.
//!
//! Write path: [`Store::append`] encodes a batch, appends it to the WAL
//! (resolving after the group-commit fsync), then adds it to the write
//! buffer and its view partials to the pending partials, where queries see
//! both at once. A background flusher commits the buffer when it exceeds a
//! size or age, in five steps:
//!
//! 1. take the buffered batches from the committed LSN up to the highest LSN
//!    `n` with no gap before it, and rotate the WAL. Concurrent appends reach
//!    the buffer out of order, and a commit must not name an LSN above a
//!    record it lacks;
//! 2. write them as Parquet and commit to `events` with the application
//!    transaction `(app_id, n)`;
//! 3. swap, under one lock, the table snapshot that queries read and the
//!    buffer without those batches, so no query sees a row twice or misses it;
//! 4. merge the pending partials up to `n`, commit them to `views` with the
//!    same transaction `(app_id, n)`, and drop them from memory in the same
//!    swap as the views snapshot;
//! 5. delete the WAL segments whose records are all at or below the lower of
//!    the two committed LSNs.
//!
//! When step 2 fails (the object store is down or rejects writes), the run
//! goes to a local staging file instead, with its view partials. Later
//! flushes commit the staged files in LSN order before anything newer (see
//! [`crate::staging`]). Staged files count as durable for step 5.
//!
//! A crash before step 2 commits loses nothing (the WAL still has the
//! records); after it, recovery reads `n` back from each table and replays
//! later records: into the buffer above the events LSN, and into pending
//! partials above the views LSN. A crash between steps 2 and 4 therefore
//! leaves partials that the next flush commits, since Delta has no
//! transaction across two tables. Crash points between the steps are named
//! in [`crate::failpoint`] calls.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use tokio::sync::{Mutex, Notify};
use url::Url;

use crate::batches::{BatchLedger, BatchProgress};
use crate::buffer::{BufferedBatch, WriteBuffer};
use crate::clock::{Clock, SystemClock};
use crate::codec::{decode_record, encode_batch_with_note};
use crate::error::{Result, StorageError};
use crate::failpoint;
use crate::lifecycle::LifecycleConfig;
use crate::lock::DirLock;
use crate::rejects::RejectsFile;
use crate::staging::{RETIRE_AFTER, StagedFile, StagedKind, StagingArea, write_staged};
use crate::table::{AppendTable, TableSpec, TableWriter};
use crate::views::{DedupeConfig, SightingIndex, ViewPartials};
use crate::wal::{Lsn, Wal, WalConfig, WalRecord};

mod refresh;
pub use refresh::RefreshOutcome;

/// Settings of a store. Sizes are in bytes, durations as given.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Local directory for the WAL, the rejects file, keys and the lock.
    pub data_dir: PathBuf,
    /// Object store URL of the events table (`file:///...`, `s3://...`, `gs://...`, `az://...`).
    pub table_url: Url,
    /// Object store URL of the views table.
    pub views_url: Url,
    /// When two sensors' sightings count as one call in the views.
    pub dedupe: DedupeConfig,
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
    /// Merge the views table into one row per key once it has this many data files.
    pub views_compact_files: usize,
    /// Disk budget of the local staging files that hold flushes while the
    /// object store cannot take them; beyond it new events are rejected.
    pub staging_max_bytes: u64,
    /// Maximum wait for one commit to the object store. A commit that takes
    /// longer counts as failed and its flush is staged, so a store that
    /// hangs delays staging by this much, not by the object store client's
    /// own retries, which can last minutes.
    pub commit_timeout: Duration,
    /// Compaction, retention and vacuum of the tables.
    pub lifecycle: LifecycleConfig,
    /// Time source of the life cycle: retention cutoffs and the grace period.
    pub clock: Arc<dyn Clock>,
}

impl StoreConfig {
    /// Defaults for a data directory, with the table in `<data_dir>/table`.
    pub fn for_data_dir(data_dir: PathBuf) -> Result<Self> {
        let directory_url = |name: &str| {
            let dir = absolute(&data_dir)?.join(name);
            Url::from_directory_path(&dir).map_err(|()| {
                StorageError::Config(format!("cannot make a URL of {}", dir.display()))
            })
        };
        Ok(StoreConfig {
            table_url: directory_url("table")?,
            views_url: directory_url("views")?,
            dedupe: DedupeConfig::default(),
            data_dir,
            storage_options: HashMap::new(),
            flush_max_rows: 1_000_000,
            flush_max_bytes: 256 * 1024 * 1024,
            flush_max_age: Duration::from_secs(30),
            wal_segment_max_bytes: 64 * 1024 * 1024,
            views_compact_files: 64,
            staging_max_bytes: 10 * 1024 * 1024 * 1024,
            commit_timeout: Duration::from_secs(60),
            lifecycle: LifecycleConfig::default(),
            clock: Arc::new(SystemClock),
        })
    }
}

fn absolute(path: &std::path::Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| StorageError::io("resolving path", path, e))
}

/// Data that one query reads: table versions plus the rows in memory above them.
#[derive(Debug, Clone)]
pub struct StoreSnapshot {
    /// The events table at a committed version, `None` when a read-only open found no table.
    pub table: Option<DeltaTable>,
    pub buffered: Vec<BufferedBatch>,
    /// The views table at a committed version, `None` when a read-only open found no table.
    pub views: Option<DeltaTable>,
    /// View partials of acknowledged events that the views table does not have yet.
    pub pending_partials: Vec<Arc<ViewPartials>>,
    /// Events in local staging files, not committed to the table yet.
    pub staged: Vec<Arc<StagedFile>>,
}

/// Counts of one flush.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Rows committed to the events table, from the buffer or from staging.
    pub rows: usize,
    pub through_lsn: Lsn,
    pub table_version: Option<u64>,
    /// Rows written to local staging because the table could not take them.
    pub staged_rows: usize,
    /// The reason the table could not take them, when it could not.
    pub commit_error: Option<String>,
}

struct State {
    table: Option<AppendTable>,
    committed_lsn: Lsn,
    buffer: WriteBuffer,
    views: Option<AppendTable>,
    views_lsn: Lsn,
    /// Partials by WAL LSN, for every record above `views_lsn`. A staged
    /// views file is one entry, under its last LSN.
    pending: BTreeMap<Lsn, Arc<ViewPartials>>,
    staging: StagingArea,
}

impl State {
    /// Highest LSN whose events are committed or staged.
    fn events_durable_lsn(&self) -> Lsn {
        let staged = self.staging.events().last().map_or(0, |f| f.through_lsn);
        self.committed_lsn.max(staged)
    }

    /// Highest LSN whose view partials are committed or staged.
    fn views_durable_lsn(&self) -> Lsn {
        let staged = self.staging.views().last().map_or(0, |f| f.through_lsn);
        self.views_lsn.max(staged)
    }
}

/// Paths that vacuum deleted, by table name.
pub(crate) type VacuumedPaths = HashMap<&'static str, std::collections::HashSet<String>>;

/// The time after which a commit may be tried again following failed ones.
///
/// While the object store is failing, flushes go straight to staging until
/// the back-off has passed, so a store that responds only after long
/// timeouts does not delay every flush by as long.
#[derive(Debug, Default)]
struct CommitRetry {
    failures: u32,
    next_attempt: Option<Instant>,
}

impl CommitRetry {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);

    fn allowed(&self, now: Instant) -> bool {
        self.next_attempt.is_none_or(|at| now >= at)
    }

    fn failed(&mut self, now: Instant) {
        let backoff = Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        self.next_attempt = Some(now + backoff);
    }

    fn succeeded(&mut self) {
        *self = CommitRetry::default();
    }
}

/// WAL, write buffer and table of one data directory.
pub struct Store {
    config: StoreConfig,
    app_id: String,
    wal: Option<Wal>,
    state: RwLock<State>,
    flush_lock: Mutex<()>,
    flush_needed: Notify,
    commit_retry: std::sync::Mutex<CommitRetry>,
    rejects: RejectsFile,
    batches: BatchLedger,
    /// Shared with imports, so sightings in different files deduplicate too.
    sightings: Arc<std::sync::Mutex<SightingIndex>>,
    /// Imports that have written files they have not committed yet.
    imports_in_progress: Arc<AtomicUsize>,
    /// Paths that vacuum deleted, by table, so a run whose only candidates
    /// are files already gone commits nothing (see [`crate::lifecycle`]).
    pub(crate) vacuumed: std::sync::Mutex<VacuumedPaths>,
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
        config.lifecycle.validate()?;
        let lock = DirLock::acquire(&config.data_dir)?;
        let app_id = format!("apitrail-wal-{}", node_id(&config.data_dir)?);
        let options = &config.storage_options;
        let table =
            AppendTable::open_or_create(&config.table_url, options.clone(), TableSpec::events())
                .await?;
        let views =
            AppendTable::open_or_create(&config.views_url, options.clone(), TableSpec::views())
                .await?;
        let views_lsn = committed_lsn(&views, &app_id).await?;
        let committed_lsn = committed_lsn(&table, &app_id).await?;
        let (staging, staged_partials) = open_staging(&config, committed_lsn, views_lsn, true)?;
        let events_durable =
            committed_lsn.max(staging.events().last().map_or(0, |f| f.through_lsn));
        let views_durable = views_lsn.max(staging.views().last().map_or(0, |f| f.through_lsn));

        let wal_config = WalConfig {
            segment_max_bytes: config.wal_segment_max_bytes,
            min_next_lsn: events_durable.max(views_durable) + 1,
            ..WalConfig::new(config.data_dir.join("wal"))
        };
        let (wal, records, report) = Wal::open(wal_config)?;
        let mut sightings = SightingIndex::new(config.dedupe.clone());
        let batches = BatchLedger::load(&config.data_dir)?;
        let mut replayed = replay(
            records,
            events_durable,
            views_durable,
            &mut sightings,
            &batches,
        )?;
        replayed.pending.extend(staged_partials);
        tracing::info!(
            data_dir = %config.data_dir.display(),
            table = table.location(),
            table_version = ?table.version(),
            committed_lsn,
            views_version = ?views.version(),
            views_lsn,
            wal_records = report.records,
            replayed_rows = replayed.buffer.rows(),
            pending_partials = replayed.pending.len(),
            staged_files = staging.events().len() + staging.views().len(),
            staged_bytes = staging.bytes(),
            corrupt_tails = report.corrupt_tails,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );
        wal.truncate_through(events_durable.min(views_durable))
            .await?;

        Ok(Arc::new(Store {
            rejects: RejectsFile::new(&config.data_dir),
            batches,
            config,
            app_id,
            wal: Some(wal),
            state: RwLock::new(State {
                table: Some(table),
                committed_lsn,
                buffer: replayed.buffer,
                views: Some(views),
                views_lsn,
                pending: replayed.pending,
                staging,
            }),
            flush_lock: Mutex::new(()),
            flush_needed: Notify::new(),
            commit_retry: std::sync::Mutex::new(CommitRetry::default()),
            sightings: Arc::new(std::sync::Mutex::new(sightings)),
            imports_in_progress: Arc::default(),
            vacuumed: std::sync::Mutex::default(),
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
        let options = &config.storage_options;
        let table =
            AppendTable::open_existing(&config.table_url, options.clone(), TableSpec::events())
                .await?;
        let views =
            AppendTable::open_existing(&config.views_url, options.clone(), TableSpec::views())
                .await?;
        let lsn_of = async |table: &Option<AppendTable>| match table {
            Some(table) if !app_id.is_empty() => committed_lsn(table, &app_id).await,
            _ => Ok(0),
        };
        let committed_lsn = lsn_of(&table).await?;
        let views_lsn = lsn_of(&views).await?;
        let (staging, staged_partials) = open_staging(&config, committed_lsn, views_lsn, false)?;
        let events_durable =
            committed_lsn.max(staging.events().last().map_or(0, |f| f.through_lsn));
        let views_durable = views_lsn.max(staging.views().last().map_or(0, |f| f.through_lsn));
        let wal_dir = config.data_dir.join("wal");
        let mut sightings = SightingIndex::new(config.dedupe.clone());
        let batches = BatchLedger::load_read_only(&config.data_dir)?;
        let mut replayed = if wal_dir.exists() {
            let (records, _report) = Wal::read_only(&wal_dir)?;
            replay(
                records,
                events_durable,
                views_durable,
                &mut sightings,
                &batches,
            )?
        } else {
            Replayed::default()
        };
        replayed.pending.extend(staged_partials);
        Ok(Arc::new(Store {
            rejects: RejectsFile::new(&config.data_dir),
            batches,
            config,
            app_id,
            wal: None,
            state: RwLock::new(State {
                table,
                committed_lsn,
                buffer: replayed.buffer,
                views,
                views_lsn,
                pending: replayed.pending,
                staging,
            }),
            flush_lock: Mutex::new(()),
            flush_needed: Notify::new(),
            commit_retry: std::sync::Mutex::new(CommitRetry::default()),
            sightings: Arc::new(std::sync::Mutex::new(sightings)),
            imports_in_progress: Arc::default(),
            vacuumed: std::sync::Mutex::default(),
            _lock: None,
        }))
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn rejects(&self) -> &RejectsFile {
        &self.rejects
    }

    /// Returns the ledger of client batches (see [`crate::batches`]).
    pub fn batches(&self) -> &BatchLedger {
        &self.batches
    }

    /// Makes `batch` durable in the WAL and visible to queries; returns its LSN.
    ///
    /// While the object store cannot take commits, flushes stage the buffer
    /// on local disk; once staging fills its budget, this rejects new
    /// events with [`StorageError::StagingFull`].
    pub async fn append(&self, batch: RecordBatch) -> Result<Lsn> {
        self.append_with_progress(batch, None).await
    }

    /// Like [`Store::append`], with the progress of the client batch the
    /// events belong to made durable in the same WAL record.
    pub async fn append_with_progress(
        &self,
        batch: RecordBatch,
        progress: Option<BatchProgress>,
    ) -> Result<Lsn> {
        let wal = self.wal.as_ref().ok_or(StorageError::ShuttingDown)?;
        {
            let state = self.state.read().expect("store state lock poisoned");
            if state.staging.is_full() {
                metrics::counter!("apitrail_staging_rejections_total").increment(1);
                return Err(StorageError::StagingFull {
                    used: state.staging.uncommitted_bytes(),
                    budget: state.staging.max_bytes(),
                });
            }
        }
        let note = progress
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::Config(format!("cannot encode batch progress: {e}")))?;
        let payload = encode_batch_with_note(&batch, note.as_deref())?;
        let lsn = wal.append(payload).await?;
        if let Some(progress) = progress {
            self.batches.record(progress);
        }
        // Sightings are marked only once the batch is durable, so a failed
        // append that the client retries is not taken for a duplicate.
        let partials = Arc::new(self.partials_of(&batch));

        let needs_flush = {
            let mut state = self.state.write().expect("store state lock poisoned");
            state.buffer.push(BufferedBatch::new(lsn, batch));
            state.pending.insert(lsn, partials);
            state.buffer.rows() >= self.config.flush_max_rows
                || state.buffer.bytes() >= self.config.flush_max_bytes
        };
        metrics::gauge!("apitrail_buffer_rows").set(self.buffered_rows() as f64);
        if needs_flush {
            self.flush_needed.notify_one();
        }
        Ok(lsn)
    }

    fn partials_of(&self, batch: &RecordBatch) -> ViewPartials {
        let duplicate = self
            .sightings
            .lock()
            .expect("sighting index lock poisoned")
            .mark(batch);
        ViewPartials::from_events(batch, &duplicate)
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
            views: state.views.as_ref().map(|t| t.delta().clone()),
            pending_partials: state.pending.values().cloned().collect(),
            staged: state.staging.events().to_vec(),
        }
    }

    /// Bytes of the local staging files, and their budget.
    pub fn staged_bytes(&self) -> (u64, u64) {
        let state = self.state.read().expect("store state lock poisoned");
        (state.staging.bytes(), state.staging.max_bytes())
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
        let mut outcome = FlushOutcome::default();
        let mut views_version = None;

        let attempt = self
            .commit_retry
            .lock()
            .expect("commit retry lock poisoned")
            .allowed(started);
        let mut commit_error = None;
        if attempt {
            match self.commit_all(wal, &mut outcome).await {
                Ok(version) => views_version = version,
                Err(e) => commit_error = Some(e),
            }
            if let Some(e) = &commit_error {
                tracing::warn!(error = %e, "committing to the tables failed; the flush is staged and the commit retried after a back-off");
            }
            let mut retry = self
                .commit_retry
                .lock()
                .expect("commit retry lock poisoned");
            match &commit_error {
                None => retry.succeeded(),
                Some(_) => retry.failed(Instant::now()),
            }
        }
        if !attempt || commit_error.is_some() {
            // The table cannot take the buffer now: stage it, so memory does
            // not grow for as long as the store is away.
            outcome.staged_rows = self.stage_buffer(wal).await?;
            outcome.commit_error = Some(match &commit_error {
                Some(e) => format!("{e:#}"),
                None => "waiting to retry after failed commits".to_string(),
            });
        }

        let (events_durable, views_durable) = {
            let mut state = self.state.write().expect("store state lock poisoned");
            state.staging.delete_retired(Instant::now(), RETIRE_AFTER);
            (state.events_durable_lsn(), state.views_durable_lsn())
        };
        failpoint::hit("flush_before_truncate");
        // The WAL records about to go carry batch progress: save it first.
        self.batches.save(chrono::Utc::now().timestamp())?;
        let removed = wal
            .truncate_through(events_durable.min(views_durable))
            .await?;

        if outcome.rows == 0 && outcome.staged_rows == 0 && views_version.is_none() {
            return Ok(outcome);
        }
        metrics::counter!("apitrail_flushes_total").increment(1);
        metrics::counter!("apitrail_flushed_rows_total").increment(outcome.rows as u64);
        metrics::counter!("apitrail_staged_rows_total").increment(outcome.staged_rows as u64);
        metrics::histogram!("apitrail_flush_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("apitrail_buffer_rows").set(self.buffered_rows() as f64);
        tracing::info!(
            rows = outcome.rows,
            staged_rows = outcome.staged_rows,
            through_lsn = outcome.through_lsn,
            table_version = ?outcome.table_version,
            views_version = ?views_version,
            wal_segments_removed = removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "{}",
            if outcome.staged_rows > 0 {
                "flushed the buffer to local staging"
            } else {
                "flushed buffer to table"
            }
        );
        Ok(outcome)
    }

    /// Commits the staged files, then the buffer, then the view partials;
    /// stops at the first failure. Returns the views table version, if a
    /// commit made one.
    async fn commit_all(&self, wal: &Wal, outcome: &mut FlushOutcome) -> Result<Option<u64>> {
        if let Some((rows, through_lsn, version)) = self.commit_staged().await? {
            outcome.rows += rows;
            outcome.through_lsn = through_lsn;
            outcome.table_version = Some(version);
        }
        if let Some((rows, through_lsn, version)) = self.flush_events(wal).await? {
            outcome.rows += rows;
            outcome.through_lsn = through_lsn;
            outcome.table_version = Some(version);
        }
        self.flush_views().await
    }

    /// Runs `operation` on a table of the object store, or fails with
    /// [`StorageError::CommitTimeout`] after [`StoreConfig::commit_timeout`].
    ///
    /// A commit cut off by the timeout may still land; the next attempt
    /// reads the table back first and finds it by its transaction.
    async fn within_commit_timeout<T>(
        &self,
        table: &'static str,
        operation: impl std::future::Future<Output = T>,
    ) -> Result<T> {
        let limit = self.config.commit_timeout;
        tokio::time::timeout(limit, operation)
            .await
            .map_err(|_| StorageError::CommitTimeout {
                table,
                secs: limit.as_secs_f64(),
            })
    }

    /// Commits the staged events files in LSN order.
    ///
    /// Before each, the table is read back: a commit whose request failed
    /// may have landed, and is then only acknowledged. Returns rows, last
    /// LSN and table version of what it committed.
    async fn commit_staged(&self) -> Result<Option<(usize, Lsn, u64)>> {
        let mut committed: Option<(usize, Lsn, u64)> = None;
        loop {
            let (file, mut table) = {
                let state = self.state.read().expect("store state lock poisoned");
                let Some(file) = state.staging.events().first().cloned() else {
                    return Ok(committed);
                };
                let table = state
                    .table
                    .clone()
                    .expect("a writable store always has a table");
                (file, table)
            };
            self.within_commit_timeout("events", table.refresh())
                .await??;
            let landed = committed_lsn(&table, &self.app_id).await?;
            if landed >= file.through_lsn {
                tracing::info!(path = %file.path.display(), committed_lsn = landed, "a staged file was committed by an earlier attempt");
                let mut state = self.state.write().expect("store state lock poisoned");
                state.table = Some(table);
                state.committed_lsn = state.committed_lsn.max(landed);
                state.buffer.release_through(landed);
                state
                    .staging
                    .retire_through(StagedKind::Events, landed, Instant::now());
                continue;
            }
            if file.from_lsn > landed + 1 {
                return Err(StorageError::Staging {
                    path: file.path.clone(),
                    reason: format!(
                        "the table is committed through WAL record {landed} but the file starts at {}, so records in between are missing; the file is kept",
                        file.from_lsn
                    ),
                });
            }
            let reader = Arc::clone(&file);
            let batches = tokio::task::spawn_blocking(move || reader.read())
                .await
                .map_err(|e| StorageError::Staging {
                    path: file.path.clone(),
                    reason: format!("the reading task failed: {e}"),
                })??;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let txn = Transaction::new(&self.app_id, file.through_lsn as i64);
            let committing = self.within_commit_timeout("events", table.append(batches, txn));
            let version = match committing.await.and_then(|result| result) {
                Ok(version) => version,
                Err(e) => {
                    metrics::counter!("apitrail_flush_errors_total").increment(1);
                    tracing::warn!(error = %e, path = %file.path.display(), "committing a staged file failed; it stays staged and the commit is retried");
                    return Err(e);
                }
            };
            tracing::info!(
                path = %file.path.display(),
                rows,
                through_lsn = file.through_lsn,
                table_version = version,
                "committed a staged file"
            );
            let mut state = self.state.write().expect("store state lock poisoned");
            state.table = Some(table);
            state.committed_lsn = file.through_lsn;
            state
                .staging
                .retire_through(StagedKind::Events, file.through_lsn, Instant::now());
            let total = committed.map_or(0, |c| c.0) + rows;
            committed = Some((total, file.through_lsn, version));
        }
    }

    /// Writes the gap-free run of buffered batches above everything durable
    /// to a staging file, with the view partials of the same records, and
    /// drops the batches from memory. Returns the rows staged.
    async fn stage_buffer(&self, wal: &Wal) -> Result<usize> {
        let (batches, from_lsn, through_lsn, time_range, partials, views_from) = {
            let state = self.state.read().expect("store state lock poisoned");
            let base = state.events_durable_lsn();
            let Some(through_lsn) = state.buffer.contiguous_through(base) else {
                return Ok(0);
            };
            if state.staging.is_full() {
                return Err(StorageError::StagingFull {
                    used: state.staging.uncommitted_bytes(),
                    budget: state.staging.max_bytes(),
                });
            }
            let run: Vec<&BufferedBatch> = state
                .buffer
                .batches()
                .iter()
                .filter(|b| b.lsn > base && b.lsn <= through_lsn)
                .collect();
            let time_range = run
                .iter()
                .filter_map(|b| b.time_range)
                .reduce(|(lo, hi), (min, max)| (lo.min(min), hi.max(max)));
            let batches: Vec<RecordBatch> = run.iter().map(|b| b.batch.clone()).collect();
            let views_from = state.views_durable_lsn() + 1;
            let mut partials = ViewPartials::default();
            for (_, part) in state.pending.range(views_from..=through_lsn) {
                partials.merge(part);
            }
            (
                batches,
                base + 1,
                through_lsn,
                time_range,
                partials,
                views_from,
            )
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        wal.rotate().await?;

        let (events_path, views_path) = {
            let state = self.state.read().expect("store state lock poisoned");
            (
                state
                    .staging
                    .path_for(StagedKind::Events, from_lsn, through_lsn),
                state
                    .staging
                    .path_for(StagedKind::Views, views_from, through_lsn),
            )
        };
        let staged =
            tokio::task::spawn_blocking(move || -> Result<(StagedFile, Option<StagedFile>)> {
                let events = write_staged(
                    &events_path,
                    StagedKind::Events,
                    from_lsn,
                    through_lsn,
                    &batches,
                    time_range,
                )?;
                let views = if views_from <= through_lsn {
                    Some(write_staged(
                        &views_path,
                        StagedKind::Views,
                        views_from,
                        through_lsn,
                        &[partials.to_record_batch()],
                        None,
                    )?)
                } else {
                    None
                };
                Ok((events, views))
            })
            .await
            .map_err(|e| StorageError::Staging {
                path: self.config.data_dir.join("staging"),
                reason: format!("the staging task failed: {e}"),
            })?;
        let (events, views) = match staged {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = %e, rows, "staging a flush failed; the events stay in the WAL and in memory");
                return Err(e);
            }
        };
        tracing::warn!(
            rows,
            from_lsn,
            through_lsn,
            bytes = events.bytes + views.as_ref().map_or(0, |v| v.bytes),
            "the events table cannot take a flush; staged it on local disk"
        );
        let mut state = self.state.write().expect("store state lock poisoned");
        state.staging.add(events);
        if let Some(views) = views {
            state.staging.add(views);
        }
        state.buffer.release_through(through_lsn);
        Ok(rows)
    }

    /// Commits the gap-free run of buffered batches to `events`.
    ///
    /// Returns rows, LSN and table version, or `None` when nothing was buffered.
    async fn flush_events(&self, wal: &Wal) -> Result<Option<(usize, Lsn, u64)>> {
        let (batches, through_lsn, mut table) = {
            let state = self.state.read().expect("store state lock poisoned");
            let Some(through_lsn) = state.buffer.contiguous_through(state.committed_lsn) else {
                return Ok(None);
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
        let committing = self.within_commit_timeout("events", table.append(batches, txn));
        let version = match committing.await.and_then(|result| result) {
            Ok(version) => version,
            Err(e) => {
                metrics::counter!("apitrail_flush_errors_total").increment(1);
                tracing::warn!(error = %e, rows, through_lsn, "flush failed; the events stay in the WAL and buffer and the flush is retried");
                let reconciling = self.reconcile(table, Committed::Events);
                let _ = self.within_commit_timeout("events", reconciling).await;
                return Err(e);
            }
        };

        let mut state = self.state.write().expect("store state lock poisoned");
        state.table = Some(table);
        state.committed_lsn = through_lsn;
        state.buffer.release_through(through_lsn);
        Ok(Some((rows, through_lsn, version)))
    }

    /// Commits the pending partials up to the events' committed LSN to `views`.
    ///
    /// Returns the views table version, or `None` when `views` was already
    /// level with `events`.
    async fn flush_views(&self) -> Result<Option<u64>> {
        let (partials, through_lsn, mut views) = {
            let state = self.state.read().expect("store state lock poisoned");
            if state.views_lsn >= state.committed_lsn {
                return Ok(None);
            }
            let mut merged = ViewPartials::default();
            for (_, partials) in state.pending.range(..=state.committed_lsn) {
                merged.merge(partials);
            }
            let views = state
                .views
                .clone()
                .expect("a writable store always has a views table");
            (merged, state.committed_lsn, views)
        };
        failpoint::hit("flush_before_views");

        let txn = Transaction::new(&self.app_id, through_lsn as i64);
        let committing = self
            .within_commit_timeout("views", views.append(vec![partials.to_record_batch()], txn));
        let version = match committing.await.and_then(|result| result) {
            Ok(version) => version,
            Err(e) => {
                metrics::counter!("apitrail_flush_errors_total").increment(1);
                tracing::warn!(error = %e, through_lsn, "committing view partials failed; they stay in memory and the WAL and the commit is retried");
                let reconciling = self.reconcile(views, Committed::Views);
                let _ = self.within_commit_timeout("views", reconciling).await;
                return Err(e);
            }
        };

        let mut state = self.state.write().expect("store state lock poisoned");
        state.views = Some(views);
        state.views_lsn = through_lsn;
        state.pending = state.pending.split_off(&(through_lsn + 1));
        state
            .staging
            .retire_through(StagedKind::Views, through_lsn, Instant::now());
        Ok(Some(version))
    }

    /// Catches up with a commit that landed although the flush reported an error.
    ///
    /// An object store can apply a write and still fail the request (a
    /// timeout after the put). Reading the committed LSN back from the table
    /// keeps the buffer from committing those rows a second time.
    async fn reconcile(&self, mut table: AppendTable, which: Committed) {
        let committed = match table.refresh().await {
            Ok(()) => committed_lsn(&table, &self.app_id).await,
            Err(e) => Err(e),
        };
        let committed = match committed {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!(error = %e, table = table.spec().name, "cannot read the table back after a failed flush; the next flush retries");
                return;
            }
        };
        let mut state = self.state.write().expect("store state lock poisoned");
        let current = match which {
            Committed::Events => state.committed_lsn,
            Committed::Views => state.views_lsn,
        };
        if committed <= current {
            return;
        }
        tracing::info!(
            committed_lsn = committed,
            table = table.spec().name,
            "a flush reported as failed was committed; memory catches up"
        );
        match which {
            Committed::Events => {
                state.table = Some(table);
                state.committed_lsn = committed;
                state.buffer.release_through(committed);
            }
            Committed::Views => {
                state.views = Some(table);
                state.views_lsn = committed;
                state.pending = state.pending.split_off(&(committed + 1));
            }
        }
    }

    /// Merges the views table into one row per key when it has reached
    /// [`StoreConfig::views_compact_files`] files; returns the new version, if any.
    ///
    /// Every flush adds a file of partials per grain, so without this a
    /// view would read a number of rows that grows with the flushes. The
    /// rewrite is one overwrite commit, so a query reads either the old files
    /// or the merged ones. It runs under the flush lock, so no flush commits
    /// partials in between.
    pub async fn compact_views(&self) -> Result<Option<u64>> {
        self.rewrite_views(false).await
    }

    /// Merges the views table like [`Store::compact_views`], and drops hour
    /// rows past the views' retention; `force` rewrites it whatever its file count.
    pub(crate) async fn rewrite_views(&self, force: bool) -> Result<Option<u64>> {
        let _guard = self.flush_lock.lock().await;
        let Some(mut views) = self
            .state
            .read()
            .expect("store state lock poisoned")
            .views
            .clone()
        else {
            return Ok(None);
        };
        // Another node may have compacted since this snapshot was loaded, and
        // an overwrite of stale files conflicts with that compaction.
        views.refresh().await?;
        let files = views.file_count()?;
        if !force && files < self.config.views_compact_files.max(2) {
            return Ok(None);
        }
        let started = Instant::now();
        let mut merged = ViewPartials::default();
        let mut rows_before = 0;
        for batch in views.read_all().await? {
            rows_before += batch.num_rows();
            let partials = ViewPartials::from_record_batch(&batch).map_err(|e| {
                StorageError::Config(format!("the views table contains invalid partials: {e}"))
            })?;
            merged.merge(&partials);
        }
        let expired_rows = match self.views_first_kept_day() {
            Some(day) => merged.drop_buckets_before(crate::retention::day_start_micros(day)),
            None => 0,
        };
        let rows_after = merged.len();
        let version = views.overwrite(vec![merged.to_record_batch()]).await?;
        self.state.write().expect("store state lock poisoned").views = Some(views);
        metrics::counter!("apitrail_view_compactions_total").increment(1);
        tracing::info!(
            files_before = files,
            rows_before,
            rows_after,
            expired_rows,
            views_version = version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compacted the views table"
        );
        Ok(Some(version))
    }

    /// Returns the events table as queries read it now; `None` when closed or read-only without a table.
    pub(crate) fn events_table(&self) -> Option<AppendTable> {
        self.state
            .read()
            .expect("store state lock poisoned")
            .table
            .clone()
    }

    /// Returns the views table as queries read it now.
    pub(crate) fn views_table(&self) -> Option<AppendTable> {
        self.state
            .read()
            .expect("store state lock poisoned")
            .views
            .clone()
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.wal.is_some()
    }

    pub(crate) fn imports_in_progress(&self) -> usize {
        self.imports_in_progress.load(Ordering::SeqCst)
    }

    /// Takes the lock that every commit of this store holds, so a flush
    /// never swaps in a table version older than another commit's.
    pub(crate) async fn lock_commits(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.flush_lock.lock().await
    }

    /// Makes `table`, loaded after a life cycle commit, the version queries read.
    ///
    /// Call with [`Store::lock_commits`] held. When the table contains WAL
    /// records that memory still buffers (a flush reported as failed that
    /// was committed), the buffer catches up as in a reconciliation.
    pub(crate) async fn install_events_table(&self, table: AppendTable) -> Result<()> {
        let committed = committed_lsn(&table, &self.app_id).await?;
        let mut state = self.state.write().expect("store state lock poisoned");
        if committed > state.committed_lsn {
            state.committed_lsn = committed;
            state.buffer.release_through(committed);
        }
        state.table = Some(table);
        Ok(())
    }

    /// Makes `views`, loaded after a life cycle commit, the version queries read.
    ///
    /// Call with [`Store::lock_commits`] held. Vacuum's commits add no rows,
    /// so the views' committed LSN stays as it is.
    pub(crate) fn install_views_table(&self, views: AppendTable) {
        self.state.write().expect("store state lock poisoned").views = Some(views);
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
                    Ok(outcome) => {
                        backoff = Duration::from_millis(500);
                        if outcome.commit_error.is_some() {
                            continue;
                        }
                        if let Err(e) = store.compact_views().await {
                            metrics::counter!("apitrail_view_compaction_errors_total").increment(1);
                            tracing::warn!(error = %e, "compacting the views table failed; the next flush retries");
                        }
                    }
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
        let staged = !state.staging.events().is_empty() || !state.staging.views().is_empty();
        if staged
            && self
                .commit_retry
                .lock()
                .expect("commit retry lock poisoned")
                .allowed(Instant::now())
        {
            return true;
        }
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
        if let Some(error) = &outcome.commit_error {
            tracing::warn!(staged_rows = outcome.staged_rows, error = %error, "the events table could not take the last flush; it is staged and committed at the next start");
        }
        tracing::info!(rows = outcome.rows, "store shut down cleanly");
        Ok(())
    }

    /// Starts writing the events of one imported file; `None` if `import_id`
    /// was already committed, so a file imported twice adds nothing.
    ///
    /// When a crash cut an import between its events commit and its views
    /// commit, the writer computes the views only.
    pub async fn begin_import(&self, import_id: &str) -> Result<Option<ImportWriter>> {
        self.begin_import_version(import_id, 1).await
    }

    /// Starts writing one import of a sequence that shares the application
    /// id `app_id`, such as the batches of one followed file.
    ///
    /// Returns `None` if a commit of `app_id` at `version` or later exists,
    /// because the import is then done. Versions must grow from one import
    /// of the sequence to the next.
    pub async fn begin_import_version(
        &self,
        app_id: &str,
        version: i64,
    ) -> Result<Option<ImportWriter>> {
        let (table, views) = self.writable_tables()?;
        let done = |committed: Option<i64>| committed.is_some_and(|v| v >= version);
        let events_done = done(table.transaction_version(app_id).await?);
        let views_done = done(views.transaction_version(app_id).await?);
        if events_done && views_done {
            return Ok(None);
        }
        let events = if events_done {
            None
        } else {
            Some(table.writer()?)
        };
        Ok(Some(ImportWriter {
            events,
            partials: ViewPartials::default(),
            sightings: Arc::clone(&self.sightings),
            _in_progress: ImportInProgress::new(&self.imports_in_progress),
        }))
    }

    /// Commits an import's files and view partials under `import_id`; returns the events table version.
    pub async fn commit_import(&self, import_id: &str, writer: ImportWriter) -> Result<u64> {
        self.commit_import_version(import_id, 1, writer).await
    }

    /// Commits one import of the sequence `app_id` at `version` (see
    /// [`Store::begin_import_version`]); returns the events table version.
    pub async fn commit_import_version(
        &self,
        app_id: &str,
        version: i64,
        writer: ImportWriter,
    ) -> Result<u64> {
        let _guard = self.flush_lock.lock().await;
        let (mut table, mut views) = self.writable_tables()?;
        let txn = || Transaction::new(app_id, version);
        if let Some(events) = writer.events {
            let actions = events.finish().await?;
            table.commit(actions, txn()).await?;
            self.state.write().expect("store state lock poisoned").table = Some(table.clone());
        }
        failpoint::hit("import_before_views");
        views
            .append(vec![writer.partials.to_record_batch()], txn())
            .await?;
        self.state.write().expect("store state lock poisoned").views = Some(views);
        Ok(table.version().unwrap_or_default())
    }

    fn writable_tables(&self) -> Result<(AppendTable, AppendTable)> {
        let state = self.state.read().expect("store state lock poisoned");
        match (&state.table, &state.views) {
            (Some(table), Some(views)) => Ok((table.clone(), views.clone())),
            _ => Err(StorageError::ShuttingDown),
        }
    }

    /// Checks whether a commit with this import id exists in both tables.
    pub async fn is_imported(&self, import_id: &str) -> Result<bool> {
        let (table, views) = {
            let state = self.state.read().expect("store state lock poisoned");
            (state.table.clone(), state.views.clone())
        };
        let (Some(table), Some(views)) = (table, views) else {
            return Ok(false);
        };
        Ok(table.transaction_version(import_id).await?.is_some()
            && views.transaction_version(import_id).await?.is_some())
    }
}

/// Table that a reconciliation reads back.
#[derive(Debug, Clone, Copy)]
enum Committed {
    Events,
    Views,
}

/// Events of one imported file on their way to the tables, with their view partials.
pub struct ImportWriter {
    /// `None` when the events were committed before and only the views are missing.
    events: Option<TableWriter>,
    partials: ViewPartials,
    /// NOTE: sightings are remembered as they are written, so a file whose
    /// import then fails still counts as seen: another sensor's file of the
    /// same calls imported before the failed one is retried loses those
    /// calls from the views until the retry.
    sightings: Arc<std::sync::Mutex<SightingIndex>>,
    _in_progress: ImportInProgress,
}

/// Counts an import as in progress from its first write until it is committed or dropped.
struct ImportInProgress(Arc<AtomicUsize>);

impl ImportInProgress {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        ImportInProgress(Arc::clone(count))
    }
}

impl Drop for ImportInProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ImportWriter {
    /// Writes one batch of events and folds it into the import's view partials.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let duplicate = self
            .sightings
            .lock()
            .expect("sighting index lock poisoned")
            .mark(&batch);
        self.partials
            .merge(&ViewPartials::from_events(&batch, &duplicate));
        if let Some(events) = &mut self.events {
            events.write(batch).await?;
        }
        Ok(())
    }
}

async fn committed_lsn(table: &AppendTable, app_id: &str) -> Result<Lsn> {
    Ok(table.transaction_version(app_id).await?.unwrap_or(0).max(0) as Lsn)
}

/// Buffer and pending partials rebuilt from the WAL.
#[derive(Default)]
struct Replayed {
    buffer: WriteBuffer,
    pending: BTreeMap<Lsn, Arc<ViewPartials>>,
}

/// Lists the staging directory of a store whose tables are committed through
/// `committed_lsn` (events) and `views_lsn` (views).
///
/// Files that a commit already covers (a crash came after the commit and
/// before the file's deletion) are deleted when `writable`, ignored
/// otherwise. The partials of the other views files are returned by last
/// LSN, for the pending partials.
fn open_staging(
    config: &StoreConfig,
    committed_lsn: Lsn,
    views_lsn: Lsn,
    writable: bool,
) -> Result<(StagingArea, BTreeMap<Lsn, Arc<ViewPartials>>)> {
    let mut staging = StagingArea::open(
        config.data_dir.join("staging"),
        config.staging_max_bytes,
        writable,
    )?;
    let now = Instant::now();
    staging.retire_through(StagedKind::Events, committed_lsn, now);
    staging.retire_through(StagedKind::Views, views_lsn, now);
    if writable {
        staging.delete_retired(now, Duration::ZERO);
    }
    let mut partials = BTreeMap::new();
    for file in staging.views() {
        let mut merged = ViewPartials::default();
        for batch in file.read()? {
            let part =
                ViewPartials::from_record_batch(&batch).map_err(|e| StorageError::Staging {
                    path: file.path.clone(),
                    reason: format!("it does not hold valid view partials: {e}"),
                })?;
            merged.merge(&part);
        }
        partials.insert(file.through_lsn, Arc::new(merged));
    }
    Ok((staging, partials))
}

/// Rebuilds the buffer from WAL records above the events' committed LSN,
/// and the pending partials from records above the views' committed LSN.
fn replay(
    records: Vec<WalRecord>,
    committed_lsn: Lsn,
    views_lsn: Lsn,
    sightings: &mut SightingIndex,
    batches: &BatchLedger,
) -> Result<Replayed> {
    let mut replayed = Replayed::default();
    for record in records {
        let (decoded, note) = decode_record(record.lsn, &record.payload)?;
        // Progress is rebuilt from every record left in the WAL, flushed or
        // not, since the ledger file may be older than the record.
        if let Some(progress) = note.and_then(|n| serde_json::from_str::<BatchProgress>(&n).ok()) {
            batches.record(progress);
        }
        if record.lsn <= committed_lsn && record.lsn <= views_lsn {
            continue;
        }
        let mut partials = ViewPartials::default();
        for batch in decoded {
            if record.lsn > views_lsn {
                let duplicate = sightings.mark(&batch);
                partials.merge(&ViewPartials::from_events(&batch, &duplicate));
            }
            if record.lsn > committed_lsn {
                replayed.buffer.push(BufferedBatch::new(record.lsn, batch));
            }
        }
        if record.lsn > views_lsn {
            replayed.pending.insert(record.lsn, Arc::new(partials));
        }
    }
    Ok(replayed)
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
