//! Durable storage of API call events: WAL, write buffer and a Delta table.
//!
//! Data flows in from `apitrail-ingest` as Arrow batches and out to
//! `apitrail-query` as a [`StoreSnapshot`].
//!
//! - [`store`]: the [`Store`] handle that ties the pieces together, with the
//!   flush protocol and its crash-recovery rule.
//! - [`batches`]: how far each client batch got, so a retried batch adds nothing.
//! - [`wal`]: the write-ahead log with group commit and torn-tail recovery.
//! - [`codec`]: how event batches are encoded inside WAL records.
//! - [`documents`]: shared JSON documents (templater, specs) beside the tables.
//! - [`staging`]: flushed events kept on local disk while the object store is away.
//! - [`buffer`]: acknowledged events waiting for a flush, queryable meanwhile.
//! - [`table`]: the append-only Delta tables (events and views) on an object store.
//! - [`object_stores`]: `s3://`, `gs://` and `az://` table URLs, their options and redaction.
//! - [`lifecycle`]: the background run of retention, compaction and vacuum,
//!   with its settings; [`retention`] and [`compaction`] hold the two rules.
//! - [`clock`]: the time source of the life cycle, fixed in tests.
//! - [`views`]: partial aggregates of the continuous views, built per batch.
//! - [`rejects`]: the file of input lines that could not be parsed.
//! - [`secret_key`]: the key of the keyed hash that replaces secrets.
//! - [`sketch`]: mergeable distinct-count and quantile sketches of the views.
//! - [`lock`]: exclusive ownership of a data directory.
//! - [`failpoint`]: named crash points for recovery tests.

pub mod batches;
pub mod buffer;
pub mod clock;
pub mod codec;
pub mod compaction;
pub mod documents;
pub mod error;
pub mod failpoint;
pub mod lifecycle;
pub mod lock;
pub mod object_stores;
pub mod rejects;
pub mod retention;
pub mod secret_key;
pub mod sketch;
pub mod staging;
pub mod store;
pub mod table;
pub mod views;
pub mod wal;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Result, StorageError};
pub use lifecycle::LifecycleConfig;
pub use store::{FlushOutcome, ImportWriter, Store, StoreConfig, StoreSnapshot};
pub use table::AppendTable;
