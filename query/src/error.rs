//! The query error type, split by who has to act.

use datafusion::error::DataFusionError;

use crate::limits::ScanLimitExceeded;

/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is invalid or refers to something that does not exist.
    #[error("invalid query: {0}")]
    InvalidSql(String),

    /// The statement would change state, which SQL in apitrail may not do.
    #[error(
        "apitrail SQL is read-only: {0} statements are rejected; use SELECT, WITH, EXPLAIN or SHOW"
    )]
    ReadOnly(String),

    /// The query hit a memory or time limit.
    #[error("query exceeded a resource limit: {0}")]
    ResourcesExhausted(String),

    /// The query's scans would read more bytes of data files than its limit allows.
    #[error("query exceeded a resource limit: {0}")]
    ScanLimit(ScanLimitExceeded),

    /// The query ran longer than its time limit.
    #[error("query exceeded a resource limit: it ran longer than the {0:?} time limit")]
    TimedOut(std::time::Duration),

    /// The client cancelled the query.
    #[error("query cancelled: {0}")]
    Cancelled(String),

    /// A fault while running the query, such as an unreadable data file.
    #[error("query failed: {0}")]
    Execution(#[source] DataFusionError),
}

impl QueryError {
    /// Classifies a DataFusion error by whether the caller or the server is at fault.
    pub fn from_datafusion(error: DataFusionError) -> Self {
        match error.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => QueryError::InvalidSql(error.strip_backtrace()),
            DataFusionError::ResourcesExhausted(message) => {
                QueryError::ResourcesExhausted(message.clone())
            }
            DataFusionError::External(inner) => match inner.downcast_ref::<ScanLimitExceeded>() {
                Some(exceeded) => QueryError::ScanLimit(exceeded.clone()),
                None => QueryError::Execution(error),
            },
            _ => QueryError::Execution(error),
        }
    }

    /// Returns true when the caller caused the error (HTTP 4xx rather than 5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, QueryError::Execution(_))
    }
}
