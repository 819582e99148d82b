//! Maps query errors to PostgreSQL SQLSTATE codes, in one place.
//!
//! Every error a PostgreSQL client sees passes through [`to_user_error`],
//! called from the connection's error handler, so the codes in
//! `docs/protocols.md` are the ones listed here.

use apitrail_query::QueryError;
use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};

pub const SYNTAX_ERROR: &str = "42601";
pub const UNDEFINED_TABLE: &str = "42P01";
pub const UNDEFINED_COLUMN: &str = "42703";
pub const AMBIGUOUS_COLUMN: &str = "42702";
pub const UNDEFINED_FUNCTION: &str = "42883";
pub const UNDEFINED_OBJECT: &str = "42704";
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
#[cfg(test)]
pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
pub const OUT_OF_MEMORY: &str = "53200";
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
pub const QUERY_CANCELED: &str = "57014";
pub const DIVISION_BY_ZERO: &str = "22012";
pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
pub const INTERNAL_ERROR: &str = "XX000";

/// Builds an `ERROR` severity message with `code`.
pub fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// Converts an apitrail query error into a PostgreSQL error.
pub fn from_query_error(error: &QueryError) -> PgWireError {
    // A failure while running keeps the precise state of its DataFusion
    // cause, such as 22012 for a division by zero. The other errors follow
    // the mapping that HTTP and Flight SQL share.
    let code = match error {
        QueryError::Execution(source) => sqlstate_of(source),
        other => crate::errors::error_codes(other).sqlstate,
    };
    user_error(code, error.to_string())
}

/// Converts a DataFusion error into a PostgreSQL error with a fitting SQLSTATE.
pub fn from_datafusion(error: &DataFusionError) -> PgWireError {
    user_error(sqlstate_of(error), error.strip_backtrace())
}

/// Replaces errors that carry no SQLSTATE of their own (DataFusion and SQL
/// parser errors wrapped by the protocol library) with one that does.
/// Errors that already have a code, and I/O or protocol errors, stay as they are.
pub fn to_user_error(error: &mut PgWireError) {
    let PgWireError::ApiError(source) = error else {
        return;
    };
    let mapped = if let Some(df) = source.downcast_ref::<DataFusionError>() {
        from_datafusion(df)
    } else if let Some(query) = source.downcast_ref::<QueryError>() {
        from_query_error(query)
    } else if let Some(parser) = source.downcast_ref::<ParserError>() {
        user_error(SYNTAX_ERROR, parser.to_string())
    } else {
        user_error(INTERNAL_ERROR, source.to_string())
    };
    *error = mapped;
}

/// Returns the SQLSTATE for a DataFusion error, judged by its root cause.
pub fn sqlstate_of(error: &DataFusionError) -> &'static str {
    match error.find_root() {
        DataFusionError::SQL(..) => SYNTAX_ERROR,
        DataFusionError::SchemaError(schema, _) => match schema.as_ref() {
            SchemaError::FieldNotFound { .. } => UNDEFINED_COLUMN,
            SchemaError::AmbiguousReference { .. } => AMBIGUOUS_COLUMN,
            _ => SYNTAX_ERROR,
        },
        DataFusionError::Plan(message) => sqlstate_of_plan_message(message),
        DataFusionError::NotImplemented(_) => FEATURE_NOT_SUPPORTED,
        DataFusionError::ResourcesExhausted(_) => OUT_OF_MEMORY,
        DataFusionError::External(inner) if inner.is::<apitrail_query::ScanLimitExceeded>() => {
            PROGRAM_LIMIT_EXCEEDED
        }
        DataFusionError::Execution(message)
            if message.contains("unrecognized configuration parameter") =>
        {
            UNDEFINED_OBJECT
        }
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::DivideByZero => DIVISION_BY_ZERO,
            ArrowError::CastError(_) | ArrowError::ParseError(_) => INVALID_TEXT_REPRESENTATION,
            _ => INTERNAL_ERROR,
        },
        _ => INTERNAL_ERROR,
    }
}

/// DataFusion reports unknown tables and functions as plan errors with a
/// message only, so the message decides between them.
fn sqlstate_of_plan_message(message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if lower.contains("table") && lower.contains("not found") {
        UNDEFINED_TABLE
    } else if lower.contains("invalid function")
        || lower.contains("function") && lower.contains("not found")
    {
        UNDEFINED_FUNCTION
    } else if lower.contains("no field named") {
        UNDEFINED_COLUMN
    } else {
        SYNTAX_ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(error: PgWireError) -> String {
        match error {
            PgWireError::UserError(info) => info.code.clone(),
            other => panic!("expected a user error, got {other:?}"),
        }
    }

    #[test]
    fn plan_messages_map_to_codes() {
        let cases = [
            ("table 'apitrail.public.nope' not found", UNDEFINED_TABLE),
            ("Invalid function 'nope'", UNDEFINED_FUNCTION),
            ("something else is wrong", SYNTAX_ERROR),
        ];
        for (message, expected) in cases {
            let error = DataFusionError::Plan(message.to_owned());
            assert_eq!(sqlstate_of(&error), expected, "plan error `{message}`");
        }
    }

    #[test]
    fn read_only_maps_to_25006() {
        let error = QueryError::ReadOnly("CreateMemoryTable".to_owned());
        assert_eq!(code_of(from_query_error(&error)), READ_ONLY_SQL_TRANSACTION);
    }

    #[test]
    fn resources_map_to_53200() {
        let error = DataFusionError::ResourcesExhausted("memory".to_owned());
        assert_eq!(code_of(from_datafusion(&error)), OUT_OF_MEMORY);
    }

    #[test]
    fn scan_limit_maps_to_54000() {
        let exceeded = apitrail_query::ScanLimitExceeded {
            scan_bytes: 2000,
            max_bytes: 1000,
        };
        let error = DataFusionError::Context(
            "apitrail_scan_bytes_limit".to_owned(),
            Box::new(DataFusionError::External(Box::new(exceeded))),
        );
        assert_eq!(
            code_of(from_datafusion(&error)),
            PROGRAM_LIMIT_EXCEEDED,
            "a scan over the limit, wrapped as the physical planner wraps it"
        );
    }

    #[test]
    fn wrapped_api_errors_get_codes() {
        let mut error =
            PgWireError::ApiError(Box::new(DataFusionError::Execution("disk gone".to_owned())));
        to_user_error(&mut error);
        assert_eq!(code_of(error), INTERNAL_ERROR);
    }
}
