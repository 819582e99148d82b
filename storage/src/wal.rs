//! Write-ahead log (WAL) for ingested events.
//!
//! The server responds to an ingest request only after its events are durable
//! here, so the WAL contains every acknowledged event until the caller has
//! flushed it elsewhere and calls [`Wal::truncate_through`]. Payloads are
//! opaque bytes to the WAL, and the ingest path stores one Arrow IPC stream per
//! record.
//!
//! # Segment layout
//!
//! The WAL directory contains segment files named by the LSN (log sequence
//! number) of their first record as 20 zero-padded decimal digits, for example
//! `00000000000000000001.wal`. LSNs start at 1 and grow by 1 per record across
//! segments. All integers are little-endian.
//!
//! Each segment starts with a 28-byte header:
//!
//! | offset | size | field                                            |
//! |--------|------|--------------------------------------------------|
//! | 0      | 8    | magic `APTWAL\0\0`                               |
//! | 8      | 4    | format version, currently 1                      |
//! | 12     | 4    | flags, written as 0 and ignored on read          |
//! | 16     | 8    | first LSN, equal to the number in the file name  |
//! | 24     | 4    | CRC-32 of bytes 0..24                            |
//!
//! Records follow back to back, each a 16-byte record header and the payload:
//!
//! | offset | size   | field                                          |
//! |--------|--------|------------------------------------------------|
//! | 0      | 4      | payload length in bytes                        |
//! | 4      | 4      | CRC-32 of the 8 LSN bytes followed by the payload |
//! | 8      | 8      | LSN                                            |
//! | 16     | length | payload                                        |
//!
//! The checksums are CRC-32 (IEEE polynomial, as computed by `crc32fast`). The
//! length field is not covered by the record CRC, but a wrong length moves the
//! payload boundaries, so the CRC over the wrong range fails.
//!
//! Before a record that would take the active segment past
//! [`WalConfig::segment_max_bytes`], the writer starts a new segment, so a
//! segment exceeds the limit only when it contains a single record larger
//! than the limit. [`Wal::rotate`] starts a new segment on request. One segment
//! is always active, possibly containing only its header. Because that header
//! stores the next LSN durably, LSNs continue after a restart even when
//! [`Wal::truncate_through`] removed every closed segment.
//!
//! # Writes and group commit
//!
//! A writer thread owns the files and receives commands over a channel. Each
//! time it wakes, it takes every queued command, writes the records of the
//! queued appends, calls `fdatasync` (or `fsync` with [`SyncMode::All`]) once
//! per segment it wrote to, and only then returns the results to the callers.
//! Appends that arrive during an fsync wait for the next one, so concurrent
//! appends share fsyncs. The directory is fsynced after a segment is created
//! or deleted.
//!
//! # What is atomic and what is not
//!
//! - A record is durable once [`Wal::append`] returns its LSN. Before that, a
//!   crash may keep or lose it.
//! - Writes to a file are not atomic. A crash can leave a partial record, a
//!   partial segment header or an empty segment file. Replay detects each of
//!   these with the length and CRC checks and sets it aside.
//! - After a failed write or fsync, the WAL rejects every later append until it
//!   is opened again, so no record is ever written after one that may be lost.
//!   A record whose append returned an error may still be replayed after a
//!   restart if its bytes reached the disk before the failure.
//! - Removing a segment is one `unlink`. After a crash, a segment is either
//!   present or gone, and replaying a present one repeats records that the
//!   caller had already flushed, so callers must skip LSNs at or below their
//!   own checkpoint.
//!
//! # Recovery rule
//!
//! [`Wal::open`] replays segments in LSN order. It checks each segment header
//! (magic, CRC, a first LSN that matches the file name and continues the LSN
//! sequence) and each record (the record header and payload fit in the file,
//! the CRC matches, the LSN is the next one). At the first failed check, it
//! sets aside the rest of that segment and every later segment in
//! `<dir>/corrupt/`:
//!
//! - Bytes from the failed offset to the end of the segment are copied to
//!   `<segment file name>.<offset>.tail`, and the segment is truncated to its
//!   last good record and fsynced.
//! - A segment whose header is bad, and every later segment, is moved whole to
//!   `<segment file name>.0.tail`. Later segments are set aside even when they
//!   are valid, because replaying them would skip LSNs.
//!
//! If a name in `corrupt/` is taken, a numeric suffix (`.1`, `.2`, ...) is
//! added. Damaged data never stops [`Wal::open`]. It fails only on an invalid
//! config, on I/O errors, on a lock held by another open WAL, and on a segment
//! with a valid header of another format version, which it leaves untouched.
//! Appends continue at the LSN after the last good record, in a new segment,
//! or in the last segment if that contains only its header.
//!
//! NOTE: after data is set aside, LSNs after the last good record are assigned
//! again to new records. A caller that stored a checkpoint above
//! [`Wal::last_lsn`] must not treat new records as covered by that checkpoint.
//!
//! [`Wal::read_only`] applies the same checks and stops at the first failure,
//! but never modifies the directory, so it can read a WAL that a running server
//! is writing.

mod error;
mod format;
mod replay;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

pub use error::WalError;
pub use format::MAX_PAYLOAD_BYTES;

use replay::ReplayMode;
use writer::{Command, Shared, Writer};

/// Log sequence number of a record. The first record of a new WAL has LSN 1.
pub type Lsn = u64;

/// Default [`WalConfig::segment_max_bytes`]: 64 MiB.
pub const DEFAULT_SEGMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Default [`WalConfig::max_batch_bytes`]: 4 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Name of the lock file that keeps two writers out of one WAL directory.
const LOCK_FILE_NAME: &str = "wal.lock";

/// Maximum number of commands waiting for the writer thread before `append` waits.
const COMMAND_QUEUE_CAPACITY: usize = 1024;

/// Settings of a WAL opened with [`Wal::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Directory of the segment files. It is created if missing.
    pub dir: PathBuf,
    /// Size limit of a segment in bytes. The writer starts a new segment before
    /// a record that would exceed it, unless the active segment is empty.
    pub segment_max_bytes: u64,
    /// Size in bytes of encoded records that the writer collects before one `write` call.
    pub max_batch_bytes: usize,
    /// System call that makes written records durable.
    pub sync_mode: SyncMode,
    /// Lowest LSN the next append may get. When the log on disk ends below
    /// it, every existing segment is known to be covered, so the segments are
    /// deleted and numbering resumes here. The store sets it to one above the
    /// LSN its table already committed, so a lost or set-aside tail can never
    /// make new records reuse an LSN the table treats as covered.
    pub min_next_lsn: Lsn,
}

impl WalConfig {
    /// Creates a config for `dir` with the default limits and [`SyncMode::Data`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            segment_max_bytes: DEFAULT_SEGMENT_MAX_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            sync_mode: SyncMode::default(),
            min_next_lsn: 1,
        }
    }

    fn validate(&self) -> Result<(), WalError> {
        if self.dir.as_os_str().is_empty() {
            return Err(WalError::InvalidConfig {
                reason: "dir is empty; set it to the WAL directory".to_owned(),
            });
        }
        let min_segment_bytes = format::min_segment_bytes();
        if self.segment_max_bytes < min_segment_bytes {
            return Err(WalError::InvalidConfig {
                reason: format!(
                    "segment_max_bytes is {}, but a segment needs at least {min_segment_bytes} bytes for its header and one empty record; set it to at least that",
                    self.segment_max_bytes
                ),
            });
        }
        if self.max_batch_bytes == 0 {
            return Err(WalError::InvalidConfig {
                reason: "max_batch_bytes is 0; set it to at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

/// The default limits, [`SyncMode::Data`] and an empty `dir`, which [`Wal::open`]
/// rejects, so that callers can write `WalConfig { dir, ..WalConfig::default() }`.
impl Default for WalConfig {
    fn default() -> Self {
        WalConfig::new(PathBuf::new())
    }
}

/// System call that makes written records durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `fdatasync` (`File::sync_data`): flushes the data and the file size.
    #[default]
    Data,
    /// `fsync` (`File::sync_all`): also flushes metadata such as modification times.
    All,
}

/// One record read back from the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub lsn: Lsn,
    pub payload: Bytes,
}

/// Summary of a replay by [`Wal::open`] or [`Wal::read_only`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Valid records replayed.
    pub records: u64,
    /// Segment files whose records were replayed, including header-only ones.
    pub segments: u64,
    /// Segments in which replay found damage: 0 or 1, because replay stops at the first damage.
    pub corrupt_tails: u64,
    /// Bytes after the damage, including whole later segments. [`Wal::open`]
    /// moves them to `corrupt/`, and [`Wal::read_only`] only skips them.
    pub bytes_set_aside: u64,
    /// Files created in `<dir>/corrupt/`. Always empty for [`Wal::read_only`].
    pub set_aside_files: Vec<PathBuf>,
    /// LSN of the last valid record. Without records, one less than the first
    /// LSN in the name of the first segment file, or 0 if there is none.
    pub last_lsn: Lsn,
}

/// Handle to an open WAL. Clones share one writer thread.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<WalInner>,
}

struct WalInner {
    dir: PathBuf,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .field("last_lsn", &self.last_lsn())
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the WAL in `config.dir`, creating the directory if needed.
    ///
    /// Replays every valid record, sets a torn or corrupt tail aside as the
    /// module documentation describes, and starts the writer thread. Returns
    /// the handle, the replayed records in LSN order and a report.
    pub fn open(config: WalConfig) -> Result<(Wal, Vec<WalRecord>, ReplayReport), WalError> {
        let started = Instant::now();
        config.validate()?;
        create_dir(&config.dir)?;
        let lock = lock_dir(&config.dir)?;

        let replay = replay::replay(&config.dir, ReplayMode::Repair)?;
        writer::describe_metrics();
        metrics::counter!("apitrail_wal_replay_corrupt_tails_total")
            .increment(replay.report.corrupt_tails);

        let last_lsn = replay
            .report
            .last_lsn
            .max(config.min_next_lsn.saturating_sub(1));
        let shared = Arc::new(Shared::new(last_lsn));
        let writer = Writer::start(&config, &replay, Arc::clone(&shared), lock)?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
        spawn_writer(&config.dir, writer, receiver)?;

        let report = replay.report;
        info!(
            dir = %config.dir.display(),
            records = report.records,
            segments = report.segments,
            corrupt_tails = report.corrupt_tails,
            last_lsn = report.last_lsn,
            duration_ms = started.elapsed().as_millis() as u64,
            "opened WAL"
        );
        let wal = Wal {
            inner: Arc::new(WalInner {
                dir: config.dir,
                commands,
                shared,
            }),
        };
        Ok((wal, replay.records, report))
    }

    /// Reads every valid record in `dir` without modifying anything.
    ///
    /// Meant for read-only tools that open a data directory while a server may
    /// be writing to it. Reading stops at the first damaged or torn record, as
    /// in [`Wal::open`], but nothing is truncated or moved.
    pub fn read_only(dir: &Path) -> Result<(Vec<WalRecord>, ReplayReport), WalError> {
        let replay = replay::replay(dir, ReplayMode::ReadOnly)?;
        Ok((replay.records, replay.report))
    }

    /// Appends one payload and returns its LSN once the record is fsynced.
    ///
    /// Concurrent appends share one fsync. If the future is dropped after it
    /// was first polled, the record may still be written. After any write or
    /// fsync failure, this and every later append return an error.
    pub async fn append(&self, payload: Bytes) -> Result<Lsn, WalError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(WalError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append { payload, reply }).await?;
        answer.await.map_err(|_| self.closed_error())?
    }

    /// Closes the active segment and starts a new one.
    ///
    /// Returns the last LSN of the closed segment. When the active segment
    /// contains no record, nothing changes and the result is 0.
    pub async fn rotate(&self) -> Result<Lsn, WalError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Rotate { reply }).await?;
        answer.await.map_err(|_| self.closed_error())?
    }

    /// Deletes every closed segment whose records all have an LSN at or below
    /// `lsn`, and returns how many it deleted. Never deletes the active segment.
    pub async fn truncate_through(&self, lsn: Lsn) -> Result<usize, WalError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::TruncateThrough { lsn, reply }).await?;
        answer.await.map_err(|_| self.closed_error())?
    }

    /// Returns the LSN of the last durable record, or 0 if there is none.
    pub fn last_lsn(&self) -> Lsn {
        self.inner.shared.last_lsn.load(Ordering::Acquire)
    }

    /// Returns how many fsyncs the writer made on segment files since open,
    /// counting the header fsync of each new segment.
    pub fn sync_count(&self) -> u64 {
        self.inner.shared.sync_count.load(Ordering::Acquire)
    }

    /// Returns the WAL directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Stops the writer after every append queued before this call is synced,
    /// and releases the directory lock. Closing an already closed WAL succeeds.
    pub async fn close(&self) -> Result<(), WalError> {
        let (reply, answer) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Close { reply })
            .await
            .is_err()
        {
            return Ok(());
        }
        // A dropped reply means another close stopped the writer first.
        answer.await.unwrap_or(Ok(()))
    }

    async fn send(&self, command: Command) -> Result<(), WalError> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| self.closed_error())
    }

    fn closed_error(&self) -> WalError {
        WalError::Closed {
            dir: self.inner.dir.clone(),
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), WalError> {
    fs::create_dir_all(dir).map_err(|error| WalError::Io {
        action: "create WAL directory",
        path: dir.to_path_buf(),
        error,
    })
}

/// Takes an exclusive `flock` on `<dir>/wal.lock`, held until the writer thread stops.
fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| WalError::Io {
            action: "open WAL lock file",
            path: path.clone(),
            error,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(WalError::Locked { path }),
        Err(TryLockError::Error(error)) => Err(WalError::Io {
            action: "lock WAL lock file",
            path,
            error,
        }),
    }
}

fn spawn_writer(
    dir: &Path,
    writer: Writer,
    receiver: mpsc::Receiver<Command>,
) -> Result<(), WalError> {
    thread::Builder::new()
        .name("apitrail-wal".to_owned())
        .spawn(move || writer.run(receiver))
        .map(drop)
        .map_err(|error| WalError::Io {
            action: "start the WAL writer thread for",
            path: dir.to_path_buf(),
            error,
        })
}
