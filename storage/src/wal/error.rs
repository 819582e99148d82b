//! Errors of the write-ahead log.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors of the write-ahead log.
///
/// Each message names the file, the offset where one applies, and what to do.
/// The underlying `io::Error` is part of the message, so these variants keep it
/// in a field instead of exposing it as `source()`.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A [`WalConfig`](super::WalConfig) value that cannot work.
    #[error("invalid WAL config: {reason}")]
    InvalidConfig { reason: String },

    /// Another open WAL holds the lock file of the directory.
    #[error(
        "WAL lock file {} is locked by another open WAL; close that WAL or stop the process that uses it",
        path.display()
    )]
    Locked { path: PathBuf },

    /// A file-system operation on the directory or a whole file failed.
    #[error(
        "failed to {action} {}: {error}; check that the path exists and that this process may read and write it",
        path.display()
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },

    /// Damaged data could not be copied or moved to `corrupt/`, or the damaged
    /// segment could not be truncated.
    #[error(
        "failed to set aside damaged WAL data of {} from offset {offset} to {}: {error}; check free space and permissions in the WAL directory, then open the WAL again",
        path.display(),
        target.display()
    )]
    SetAside {
        path: PathBuf,
        offset: u64,
        target: PathBuf,
        error: io::Error,
    },

    /// A segment with a valid header of a format version this build cannot read.
    #[error(
        "WAL segment {} has format version {version} at offset 8, but this build reads only version {supported}; open the WAL with the apitrail version that wrote it",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        version: u32,
        supported: u32,
    },

    /// A write, fsync or segment creation of the writer thread failed.
    #[error(
        "failed to {action} {} at offset {offset}: {error}; records that were not yet acknowledged may be lost, so the WAL rejects further appends; fix the disk problem (for example free space) and open the WAL again",
        path.display()
    )]
    Write {
        action: &'static str,
        path: PathBuf,
        offset: u64,
        error: Arc<io::Error>,
    },

    /// An append or rotation after an earlier [`WalError::Write`].
    #[error(
        "the WAL rejects appends since it failed to {action} {} at offset {offset}: {error}; fix the disk problem and open the WAL again",
        path.display()
    )]
    Poisoned {
        action: &'static str,
        path: PathBuf,
        offset: u64,
        error: Arc<io::Error>,
    },

    /// A payload longer than the record length field can store.
    #[error(
        "payload of {len} bytes exceeds the maximum WAL record payload of {max} bytes; split it into smaller appends"
    )]
    PayloadTooLarge { len: usize, max: usize },

    /// The writer thread has stopped because the WAL was closed.
    #[error("the WAL in {} is closed; open it again with Wal::open", dir.display())]
    Closed { dir: PathBuf },
}
