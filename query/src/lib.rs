//! SQL over the stored API call events, through Apache DataFusion.
//!
//! Data comes in from `apitrail-storage` as a store snapshot; results go out
//! as Arrow record batch streams to the server's protocols.
//!
//! - [`engine`]: the [`QueryEngine`], a DataFusion session with the apitrail
//!   tables, that rejects every statement that would change state.
//! - [`events_table`]: the `events` table provider, which merges committed
//!   Parquet files with the write buffer and prunes both by time.
//! - [`views`]: `view_partials` and the continuous views over it
//!   (`endpoints`, `consumers`, `consumer_activity`).
//! - [`anomalies`]: the table functions `anomalies()` and
//!   `consumer_profile()`, which score each consumer against its own past.
//! - [`baselines`]: `consumer_baselines`, each consumer's normal behaviour
//!   by hour of week over a trailing window.
//! - [`inventory`]: templater, specs and consumer map shared with ingest,
//!   and the SQL functions that read them.
//! - [`functions`]: the SQL functions registered in every session.
//! - [`limits`]: the per-query memory pool and the rule that caps the bytes
//!   of data files one query may scan.
//! - [`error`]: query errors, classified as the caller's or the server's fault.

pub mod anomalies;
pub mod baselines;
pub mod engine;
pub mod error;
pub mod events_table;
pub mod functions;
pub mod inventory;
pub mod limits;
pub mod views;

pub use engine::{QueryEngine, QueryLimits, check_read_only};
pub use error::QueryError;
pub use events_table::EventsTable;
pub use inventory::Inventory;
pub use limits::ScanLimitExceeded;
pub use views::ViewOptions;
