//! The storage error type, split by who has to act.

use std::path::PathBuf;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The write-ahead log failed; acknowledged data is safe, new writes are refused.
    #[error("write-ahead log: {0}")]
    Wal(#[from] crate::wal::WalError),

    /// The table on the object store could not be read or committed to.
    #[error("table at {location}: {action} failed")]
    Table {
        location: String,
        action: &'static str,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },

    /// A shared document on the object store could not be read or written.
    #[error("document {location}: reading or writing failed")]
    Document {
        location: String,
        #[source]
        source: Box<object_store::Error>,
    },

    /// A local file of the data directory could not be read or written.
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Events could not be encoded or decoded as Arrow IPC.
    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    /// Configuration that cannot work, such as an unparsable store URL.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Another process has locked the data directory.
    #[error(
        "data directory {path} is in use by another apitrail process (lock file {lock}); stop that process, or send the work through the running server with --server"
    )]
    Locked { path: PathBuf, lock: PathBuf },

    /// A commit or read-back of a table took longer than the commit timeout.
    #[error("the {table} table did not answer within the commit timeout of {secs} s")]
    CommitTimeout { table: &'static str, secs: f64 },

    /// A flush could not be written to the local staging directory.
    #[error("staged file {path}: {reason}")]
    Staging { path: PathBuf, reason: String },

    /// The object store has been unreachable long enough that local staging
    /// reached its disk budget. New events are rejected, acknowledged ones are safe.
    #[error(
        "the object store cannot take writes and local staging is full ({used} bytes of its {budget}-byte budget, staging_max_bytes); new events are rejected until the store is reachable again and the staged files are committed"
    )]
    StagingFull { used: u64, budget: u64 },

    /// The store is shutting down and takes no more writes.
    #[error("the store is shutting down")]
    ShuttingDown,
}

impl StorageError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StorageError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
