//! One mapping from query errors to the codes of every protocol.
//!
//! HTTP, Flight SQL and the PostgreSQL wire protocol report the same failure
//! with the same meaning: the client's fault (bad SQL, a write attempt), a
//! limit the query hit, a cancellation, or a fault of the server.

use apitrail_query::QueryError;
use axum::http::StatusCode;

/// The codes one query error is reported with on each protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodes {
    /// HTTP status of `/api/v1/query`.
    pub http: StatusCode,
    /// gRPC status code of Flight SQL.
    pub grpc: tonic::Code,
    /// SQLSTATE of the PostgreSQL wire protocol.
    pub sqlstate: &'static str,
}

/// Returns the codes that report `error`.
pub fn error_codes(error: &QueryError) -> ErrorCodes {
    match error {
        QueryError::InvalidSql(message) => ErrorCodes {
            http: StatusCode::BAD_REQUEST,
            grpc: tonic::Code::InvalidArgument,
            sqlstate: invalid_sql_state(message),
        },
        QueryError::ReadOnly(_) => ErrorCodes {
            http: StatusCode::BAD_REQUEST,
            grpc: tonic::Code::InvalidArgument,
            // read_only_sql_transaction
            sqlstate: "25006",
        },
        QueryError::ResourcesExhausted(_) => ErrorCodes {
            http: StatusCode::UNPROCESSABLE_ENTITY,
            grpc: tonic::Code::ResourceExhausted,
            // out_of_memory: DataFusion reports a full memory pool this way.
            sqlstate: "53200",
        },
        QueryError::ScanLimit(_) => ErrorCodes {
            http: StatusCode::UNPROCESSABLE_ENTITY,
            grpc: tonic::Code::ResourceExhausted,
            // program_limit_exceeded
            sqlstate: "54000",
        },
        QueryError::TimedOut(_) => ErrorCodes {
            http: StatusCode::UNPROCESSABLE_ENTITY,
            grpc: tonic::Code::DeadlineExceeded,
            // query_canceled, which PostgreSQL also reports for statement_timeout
            sqlstate: "57014",
        },
        QueryError::Cancelled(_) => ErrorCodes {
            // 499 is the de facto status of a request the client gave up on.
            http: StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            grpc: tonic::Code::Cancelled,
            sqlstate: "57014",
        },
        QueryError::Execution(_) => ErrorCodes {
            http: StatusCode::INTERNAL_SERVER_ERROR,
            grpc: tonic::Code::Internal,
            // internal_error
            sqlstate: "XX000",
        },
    }
}

/// Tells an unknown table or column apart from other invalid SQL, by the
/// wording of DataFusion's planner errors.
fn invalid_sql_state(message: &str) -> &'static str {
    if message.contains("table '") && message.contains("not found") {
        // undefined_table
        "42P01"
    } else if message.contains("No field named") || message.contains("column '") {
        // undefined_column
        "42703"
    } else if message.contains("Invalid function") || message.contains("function '") {
        // undefined_function
        "42883"
    } else if message.starts_with("SQL error") || message.contains("ParserError") {
        // syntax_error
        "42601"
    } else {
        // syntax_error_or_access_rule_violation
        "42000"
    }
}

/// Converts a query error to the gRPC status that Flight SQL returns.
pub fn grpc_status(error: &QueryError) -> tonic::Status {
    tonic::Status::new(error_codes(error).grpc, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_is_a_client_error_everywhere() {
        let codes = error_codes(&QueryError::ReadOnly("CREATE TABLE".into()));
        assert_eq!(codes.http, StatusCode::BAD_REQUEST);
        assert_eq!(codes.grpc, tonic::Code::InvalidArgument);
        assert_eq!(codes.sqlstate, "25006");
    }

    #[test]
    fn unknown_table_and_column_have_their_own_sqlstate() {
        let table = QueryError::InvalidSql(
            "Error during planning: table 'apitrail.public.nope' not found".into(),
        );
        assert_eq!(error_codes(&table).sqlstate, "42P01");
        let column = QueryError::InvalidSql(
            "Schema error: No field named nope. Valid fields are events.time.".into(),
        );
        assert_eq!(error_codes(&column).sqlstate, "42703");
    }

    #[test]
    fn limit_and_cancel_codes() {
        let timeout = error_codes(&QueryError::TimedOut(std::time::Duration::from_secs(1)));
        assert_eq!(timeout.grpc, tonic::Code::DeadlineExceeded);
        assert_eq!(timeout.sqlstate, "57014");
        let cancelled = error_codes(&QueryError::Cancelled("by the client".into()));
        assert_eq!(cancelled.grpc, tonic::Code::Cancelled);
        assert_eq!(cancelled.http.as_u16(), 499);
        let memory = error_codes(&QueryError::ResourcesExhausted("memory".into()));
        assert_eq!(memory.http, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(memory.grpc, tonic::Code::ResourceExhausted);
    }

    #[test]
    fn scan_limit_codes() {
        let error = QueryError::ScanLimit(apitrail_query::ScanLimitExceeded {
            scan_bytes: 2000,
            max_bytes: 1000,
        });
        let codes = error_codes(&error);
        assert_eq!(codes.http, StatusCode::UNPROCESSABLE_ENTITY, "HTTP status");
        assert_eq!(codes.grpc, tonic::Code::ResourceExhausted, "gRPC code");
        assert_eq!(codes.sqlstate, "54000", "SQLSTATE");
    }
}
