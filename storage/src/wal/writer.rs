//! The writer thread: group commit, segment rollover and segment removal.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::format::{self, SEGMENT_HEADER_LEN};
use super::replay::{self, Replay};
use super::{Lsn, SyncMode, WalConfig, WalError};

/// State that the writer thread publishes to every [`Wal`](super::Wal) handle.
#[derive(Debug)]
pub(super) struct Shared {
    /// LSN of the last fsynced record.
    pub(super) last_lsn: AtomicU64,
    /// Fsyncs of segment files since open.
    pub(super) sync_count: AtomicU64,
}

impl Shared {
    pub(super) fn new(last_lsn: Lsn) -> Self {
        Shared {
            last_lsn: AtomicU64::new(last_lsn),
            sync_count: AtomicU64::new(0),
        }
    }
}

/// A request to the writer thread. Each carries the sender for its reply.
pub(super) enum Command {
    Append {
        payload: Bytes,
        reply: oneshot::Sender<Result<Lsn, WalError>>,
    },
    Rotate {
        reply: oneshot::Sender<Result<Lsn, WalError>>,
    },
    TruncateThrough {
        lsn: Lsn,
        reply: oneshot::Sender<Result<usize, WalError>>,
    },
    Close {
        reply: oneshot::Sender<Result<(), WalError>>,
    },
}

struct PendingAppend {
    payload: Bytes,
    reply: oneshot::Sender<Result<Lsn, WalError>>,
}

/// The segment that receives new records.
struct ActiveSegment {
    path: PathBuf,
    file: File,
    first_lsn: Lsn,
    /// Bytes written to the file, including the header.
    written: u64,
    /// Records in the segment, including those still in the write buffer.
    records: u64,
}

/// A segment that receives no more records.
struct ClosedSegment {
    path: PathBuf,
    first_lsn: Lsn,
}

/// The first write failure, kept to reject every later append.
#[derive(Debug, Clone)]
struct Failure {
    action: &'static str,
    path: PathBuf,
    offset: u64,
    error: Arc<io::Error>,
}

impl Failure {
    fn new(action: &'static str, path: &Path, offset: u64, error: io::Error) -> Self {
        Failure {
            action,
            path: path.to_path_buf(),
            offset,
            error: Arc::new(error),
        }
    }

    fn write_error(&self) -> WalError {
        WalError::Write {
            action: self.action,
            path: self.path.clone(),
            offset: self.offset,
            error: Arc::clone(&self.error),
        }
    }

    /// Converts a failure while opening, before any append could be lost.
    fn into_open_error(self) -> WalError {
        let error = Arc::try_unwrap(self.error)
            .unwrap_or_else(|shared| io::Error::new(shared.kind(), shared.to_string()));
        WalError::Io {
            action: self.action,
            path: self.path,
            error,
        }
    }

    fn poisoned_error(&self) -> WalError {
        WalError::Poisoned {
            action: self.action,
            path: self.path.clone(),
            offset: self.offset,
            error: Arc::clone(&self.error),
        }
    }
}

/// Owner of the segment files, run on its own thread by [`Writer::run`].
pub(super) struct Writer {
    dir: PathBuf,
    segment_max_bytes: u64,
    max_batch_bytes: usize,
    sync_mode: SyncMode,
    active: ActiveSegment,
    closed: VecDeque<ClosedSegment>,
    next_lsn: Lsn,
    /// Encoded records not yet written to the active segment.
    buffer: Vec<u8>,
    failure: Option<Failure>,
    shared: Arc<Shared>,
    /// Held for the lifetime of the writer. Dropping it releases the directory lock.
    _lock: File,
}

impl Writer {
    /// Prepares the writer after replay.
    ///
    /// A last segment that contains only its header becomes the active
    /// segment. Otherwise a new segment starting at the next LSN is created.
    pub(super) fn start(
        config: &WalConfig,
        replay: &Replay,
        shared: Arc<Shared>,
        lock: File,
    ) -> Result<Writer, WalError> {
        let mut closed: VecDeque<ClosedSegment> = replay
            .segments
            .iter()
            .map(|segment| ClosedSegment {
                path: segment.path.clone(),
                first_lsn: segment.first_lsn,
            })
            .collect();

        let next_lsn = replay.next_lsn.max(config.min_next_lsn);
        if next_lsn > replay.next_lsn {
            // Every record on disk is below the floor, so it is covered and a
            // gap in numbering would otherwise look like a lost segment.
            for segment in closed.drain(..) {
                std::fs::remove_file(&segment.path).map_err(|error| WalError::Io {
                    action: "removing covered segment",
                    path: segment.path.clone(),
                    error,
                })?;
            }
            replay::sync_dir(&config.dir)?;
            info!(
                dir = %config.dir.display(),
                from_lsn = replay.next_lsn,
                to_lsn = next_lsn,
                "WAL numbering resumes above the table's committed LSN"
            );
        }
        let reusable = replay
            .segments
            .last()
            .filter(|segment| segment.records == 0 && next_lsn == replay.next_lsn);
        let active = match reusable {
            Some(segment) => {
                closed.pop_back();
                reopen_segment(&segment.path, segment.first_lsn, segment.len)?
            }
            None => {
                let segment = create_segment(&config.dir, next_lsn, config.sync_mode)
                    .map_err(Failure::into_open_error)?;
                shared.sync_count.fetch_add(1, Ordering::AcqRel);
                metrics::counter!("apitrail_wal_fsyncs_total").increment(1);
                metrics::counter!("apitrail_wal_bytes_total").increment(SEGMENT_HEADER_LEN as u64);
                segment
            }
        };

        Ok(Writer {
            dir: config.dir.clone(),
            segment_max_bytes: config.segment_max_bytes,
            max_batch_bytes: config.max_batch_bytes,
            sync_mode: config.sync_mode,
            active,
            closed,
            next_lsn,
            buffer: Vec::new(),
            failure: None,
            shared,
            _lock: lock,
        })
    }

    /// Runs until a close command arrives or every handle is dropped.
    pub(super) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut close_reply = None;
        while let Some(first) = commands.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(next) = commands.try_recv() {
                batch.push(next);
            }
            close_reply = self.execute(batch);
            if close_reply.is_some() {
                break;
            }
        }

        // Commands still queued are dropped, and their callers get WalError::Closed.
        drop(commands);
        let dir = mem::take(&mut self.dir);
        drop(self);
        info!(dir = %dir.display(), "closed WAL");
        if let Some(reply) = close_reply {
            let _ = reply.send(Ok(()));
        }
    }

    /// Executes commands in order and commits consecutive appends together.
    /// Returns the reply of a close command, which ends the batch.
    fn execute(&mut self, batch: Vec<Command>) -> Option<oneshot::Sender<Result<(), WalError>>> {
        let mut appends = Vec::new();
        for command in batch {
            match command {
                Command::Append { payload, reply } => {
                    appends.push(PendingAppend { payload, reply });
                }
                Command::Rotate { reply } => {
                    self.commit(mem::take(&mut appends));
                    let _ = reply.send(self.rotate());
                }
                Command::TruncateThrough { lsn, reply } => {
                    self.commit(mem::take(&mut appends));
                    let _ = reply.send(self.truncate_through(lsn));
                }
                Command::Close { reply } => {
                    self.commit(mem::take(&mut appends));
                    return Some(reply);
                }
            }
        }
        self.commit(appends);
        None
    }

    /// Writes and fsyncs the appends, then sends each caller its result.
    fn commit(&mut self, appends: Vec<PendingAppend>) {
        if appends.is_empty() {
            return;
        }
        if let Some(failure) = &self.failure {
            for append in appends {
                let _ = append.reply.send(Err(failure.poisoned_error()));
            }
            return;
        }

        let first_lsn = self.next_lsn;
        let result = self.write_batch(&appends);
        if let Err(failure) = &result {
            self.poison(failure);
        }

        // Records that an fsync covered before a failure are durable and get their LSN.
        let durable_lsn = self.shared.last_lsn.load(Ordering::Acquire);
        for (lsn, append) in (first_lsn..).zip(appends) {
            let answer = match &result {
                Err(failure) if lsn > durable_lsn => Err(failure.write_error()),
                _ => Ok(lsn),
            };
            let _ = append.reply.send(answer);
        }
    }

    fn write_batch(&mut self, appends: &[PendingAppend]) -> Result<(), Failure> {
        for append in appends {
            let record_len = format::record_len(append.payload.len());
            if self.needs_new_segment(record_len) {
                self.flush_buffer()?;
                if self.has_unsynced_records() {
                    self.sync_active()?;
                }
                self.start_next_segment()?;
            }
            format::encode_record(&mut self.buffer, self.next_lsn, &append.payload);
            self.next_lsn += 1;
            self.active.records += 1;
            if self.buffer.len() >= self.max_batch_bytes {
                self.flush_buffer()?;
            }
        }
        self.flush_buffer()?;
        self.sync_active()
    }

    /// Returns whether a record of `record_len` bytes would take a non-empty
    /// active segment past the size limit.
    fn needs_new_segment(&self, record_len: u64) -> bool {
        let size = self.active.written + self.buffer.len() as u64;
        self.active.records > 0 && size + record_len > self.segment_max_bytes
    }

    fn has_unsynced_records(&self) -> bool {
        self.shared.last_lsn.load(Ordering::Acquire) < self.next_lsn - 1
    }

    fn flush_buffer(&mut self) -> Result<(), Failure> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let offset = self.active.written;
        let result = self.active.file.write_all(&self.buffer);
        let written = self.buffer.len() as u64;
        self.buffer.clear();
        // A single large record can grow the buffer far past the batch limit.
        self.buffer.shrink_to(self.max_batch_bytes);
        if let Err(error) = result {
            self.remove_partial_write(offset);
            return Err(Failure::new(
                "write WAL segment",
                &self.active.path,
                offset,
                error,
            ));
        }
        self.active.written += written;
        metrics::counter!("apitrail_wal_bytes_total").increment(written);
        Ok(())
    }

    /// Cuts a partly written batch off the file so that a restart after a
    /// failure such as a full disk finds no torn record.
    fn remove_partial_write(&self, offset: u64) {
        if let Err(error) = self.active.file.set_len(offset) {
            warn!(
                file = %self.active.path.display(),
                offset,
                error = %error,
                "failed to remove a partly written WAL batch; the next open sets it aside"
            );
        }
    }

    /// Fsyncs the active segment and publishes every record written so far as durable.
    fn sync_active(&mut self) -> Result<(), Failure> {
        sync_file(&self.active.file, self.sync_mode).map_err(|error| {
            Failure::new(
                "fsync WAL segment",
                &self.active.path,
                self.active.written,
                error,
            )
        })?;
        self.count_sync();

        let last_lsn = self.next_lsn - 1;
        let previous = self.shared.last_lsn.swap(last_lsn, Ordering::AcqRel);
        metrics::counter!("apitrail_wal_appends_total").increment(last_lsn - previous);
        Ok(())
    }

    fn count_sync(&self) {
        self.shared.sync_count.fetch_add(1, Ordering::AcqRel);
        metrics::counter!("apitrail_wal_fsyncs_total").increment(1);
    }

    /// Makes a new segment starting at the next LSN the active one.
    fn start_next_segment(&mut self) -> Result<(), Failure> {
        let next = create_segment(&self.dir, self.next_lsn, self.sync_mode)?;
        self.count_sync();
        metrics::counter!("apitrail_wal_bytes_total").increment(SEGMENT_HEADER_LEN as u64);

        let previous = mem::replace(&mut self.active, next);
        debug!(
            closed = %previous.path.display(),
            active = %self.active.path.display(),
            "started new WAL segment"
        );
        self.closed.push_back(ClosedSegment {
            path: previous.path,
            first_lsn: previous.first_lsn,
        });
        Ok(())
    }

    fn rotate(&mut self) -> Result<Lsn, WalError> {
        if let Some(failure) = &self.failure {
            return Err(failure.poisoned_error());
        }
        if self.active.records == 0 {
            return Ok(0);
        }
        let last_lsn = self.next_lsn - 1;
        // A failed creation may leave a partial file where the next segment
        // goes, so it poisons the WAL.
        if let Err(failure) = self.start_next_segment() {
            self.poison(&failure);
            return Err(failure.write_error());
        }
        Ok(last_lsn)
    }

    /// Logs the failure and keeps it, so that every later append is rejected.
    fn poison(&mut self, failure: &Failure) {
        error!(
            file = %failure.path.display(),
            offset = failure.offset,
            action = failure.action,
            error = %failure.error,
            "WAL write failed; rejecting further appends"
        );
        self.failure = Some(failure.clone());
    }

    fn truncate_through(&mut self, lsn: Lsn) -> Result<usize, WalError> {
        let mut removed = 0;
        let result = self.remove_covered_segments(lsn, &mut removed);
        if removed > 0 {
            replay::sync_dir(&self.dir)?;
            info!(
                dir = %self.dir.display(),
                removed,
                through_lsn = lsn,
                "removed closed WAL segments"
            );
        }
        result.map(|()| removed)
    }

    /// Removes closed segments, oldest first, while the segment after each
    /// starts at or below `lsn + 1`.
    fn remove_covered_segments(&mut self, lsn: Lsn, removed: &mut usize) -> Result<(), WalError> {
        while let Some(oldest) = self.closed.front() {
            let next_first_lsn = self
                .closed
                .get(1)
                .map_or(self.active.first_lsn, |segment| segment.first_lsn);
            if next_first_lsn - 1 > lsn {
                break;
            }
            match fs::remove_file(&oldest.path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    warn!(file = %oldest.path.display(), "closed WAL segment was already removed");
                }
                Err(error) => {
                    return Err(WalError::Io {
                        action: "remove closed WAL segment",
                        path: oldest.path.clone(),
                        error,
                    });
                }
            }
            self.closed.pop_front();
            *removed += 1;
        }
        Ok(())
    }
}

/// Creates a segment file with its header, fsyncs it and fsyncs the directory.
fn create_segment(
    dir: &Path,
    first_lsn: Lsn,
    sync_mode: SyncMode,
) -> Result<ActiveSegment, Failure> {
    let path = dir.join(format::segment_file_name(first_lsn));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|error| Failure::new("create WAL segment", &path, 0, error))?;
    file.write_all(&format::encode_segment_header(first_lsn))
        .map_err(|error| Failure::new("write the header of WAL segment", &path, 0, error))?;
    sync_file(&file, sync_mode)
        .map_err(|error| Failure::new("fsync WAL segment", &path, 0, error))?;
    File::open(dir)
        .and_then(|dir_file| dir_file.sync_all())
        .map_err(|error| Failure::new("fsync the directory of WAL segment", &path, 0, error))?;
    Ok(ActiveSegment {
        path,
        file,
        first_lsn,
        written: SEGMENT_HEADER_LEN as u64,
        records: 0,
    })
}

/// Opens a replayed segment that contains only its header for appending.
fn reopen_segment(path: &Path, first_lsn: Lsn, len: u64) -> Result<ActiveSegment, WalError> {
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|error| WalError::Io {
            action: "open WAL segment for appending",
            path: path.to_path_buf(),
            error,
        })?;
    Ok(ActiveSegment {
        path: path.to_path_buf(),
        file,
        first_lsn,
        written: len,
        records: 0,
    })
}

fn sync_file(file: &File, sync_mode: SyncMode) -> io::Result<()> {
    match sync_mode {
        SyncMode::Data => file.sync_data(),
        SyncMode::All => file.sync_all(),
    }
}

/// Registers descriptions of the WAL metrics with the installed recorder.
pub(super) fn describe_metrics() {
    metrics::describe_counter!(
        "apitrail_wal_appends_total",
        "Records appended to the WAL and fsynced."
    );
    metrics::describe_counter!(
        "apitrail_wal_fsyncs_total",
        "Fsyncs of WAL segment files, including the header of each new segment."
    );
    metrics::describe_counter!(
        "apitrail_wal_bytes_total",
        metrics::Unit::Bytes,
        "Bytes written to WAL segment files."
    );
    metrics::describe_counter!(
        "apitrail_wal_replay_corrupt_tails_total",
        "Damaged WAL segments found and set aside while opening the WAL."
    );
}
