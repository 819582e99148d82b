//! Durable storage of API call events: WAL, write buffer and a Delta table.
//!
//! Data flows in from `apitrail-ingest` as Arrow batches and out to
//! `apitrail-query` as a [`StoreSnapshot`].
//!
//! - [`store`]: the [`Store`] handle that ties the pieces together, with the
//!   flush protocol and its crash-recovery rule.
//! - [`wal`]: the write-ahead log with group commit and torn-tail recovery.
//! - [`codec`]: how event batches are encoded inside WAL records.
//! - [`buffer`]: acknowledged events waiting for a flush, queryable meanwhile.
//! - [`table`]: the Delta Lake events table on an object store.
//! - [`rejects`]: the file of input lines that could not be parsed.
//! - [`secret_key`]: the key of the keyed hash that replaces secrets.
//! - [`lock`]: exclusive ownership of a data directory.
//! - [`failpoint`]: named crash points for recovery tests.

pub mod buffer;
pub mod codec;
pub mod error;
pub mod failpoint;
pub mod lock;
pub mod rejects;
pub mod secret_key;
pub mod store;
pub mod table;
pub mod wal;

pub use error::{Result, StorageError};
pub use store::{FlushOutcome, Store, StoreConfig, StoreSnapshot};
pub use table::EventTable;
