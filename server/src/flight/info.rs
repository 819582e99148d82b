//! Server metadata that Flight SQL clients read before they query:
//! `GetSqlInfo`, `GetXdbcTypeInfo`, and the schemas of the key commands.
//!
//! JDBC and ODBC bridges read `GetSqlInfo` to fill `DatabaseMetaData`: the
//! server's name and version, that it is read-only, how identifiers are
//! quoted and folded, and which functions exist. The function lists come from
//! the session's own registry, so they name exactly what a query may call.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity, SqlSupportedTransaction, SqlSupportedUnions, SupportedSqlGrammar,
    XdbcDataType, XdbcDatetimeSubcode,
};
use datafusion::prelude::SessionContext;

/// Words with a meaning in apitrail's SQL beyond SQL-92, which JDBC's
/// `getSQLKeywords` lists.
const KEYWORDS: &[&str] = &[
    "ANALYZE", "ARRAY", "EXPLAIN", "FILTER", "ILIKE", "LIMIT", "OFFSET", "QUALIFY", "RANGE",
    "SHOW", "STRUCT", "UNNEST", "WINDOW",
];

/// Builds the `GetSqlInfo` entries, with function lists from the functions registered in `ctx`.
pub fn sql_info(ctx: &SessionContext) -> anyhow::Result<SqlInfoData> {
    let functions = FunctionNames::of(ctx);
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "apitrail");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    builder.append(SqlInfo::FlightSqlServerCancel, true);
    builder.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    builder.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    builder.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // DataFusion sorts NULL last in ascending order, as if it were the largest value.
    builder.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    builder.append(SqlInfo::SqlKeywords, KEYWORDS);
    builder.append(SqlInfo::SqlNumericFunctions, functions.numeric);
    builder.append(SqlInfo::SqlStringFunctions, functions.string);
    builder.append(SqlInfo::SqlSystemFunctions, functions.system);
    builder.append(SqlInfo::SqlDatetimeFunctions, functions.datetime);
    builder.append(SqlInfo::SqlSearchStringEscape, "\\");
    builder.append(SqlInfo::SqlExtraNameCharacters, "");
    builder.append(SqlInfo::SqlSupportsColumnAliasing, true);
    builder.append(SqlInfo::SqlNullPlusNullIsNull, true);
    builder.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    builder.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    builder.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    builder.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    builder.append(SqlInfo::SqlSupportedGroupBy, 0b11_i32);
    builder.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    builder.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    builder.append(
        SqlInfo::SqlSupportedGrammar,
        (1 << SupportedSqlGrammar::SqlCoreGrammar as i32)
            | (1 << SupportedSqlGrammar::SqlMinimumGrammar as i32),
    );
    // Bits of SupportedAnsi92SqlGrammarLevel, which the crate does not
    // export: entry (0) and intermediate (1) SQL-92.
    builder.append(SqlInfo::SqlAnsi92SupportedLevel, 0b11_i32);
    builder.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    builder.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    builder.append(SqlInfo::SqlSchemaTerm, "schema");
    builder.append(SqlInfo::SqlProcedureTerm, "procedure");
    builder.append(SqlInfo::SqlCatalogTerm, "catalog");
    builder.append(SqlInfo::SqlCatalogAtStart, true);
    builder.append(SqlInfo::SqlSchemasSupportedActions, 0_i32);
    builder.append(SqlInfo::SqlCatalogsSupportedActions, 0_i32);
    builder.append(SqlInfo::SqlSupportedPositionedCommands, 0_i32);
    builder.append(SqlInfo::SqlSelectForUpdateSupported, false);
    builder.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Subqueries in comparisons, EXISTS, IN and quantified comparisons.
    builder.append(SqlInfo::SqlSupportedSubqueries, 0b1111_i32);
    builder.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    builder.append(
        SqlInfo::SqlSupportedUnions,
        (1 << SqlSupportedUnions::SqlUnion as i32) | (1 << SqlSupportedUnions::SqlUnionAll as i32),
    );
    // Zero means no limit, or an unknown one, in JDBC's DatabaseMetaData.
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        builder.append(limit, 0_i64);
    }
    builder.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    builder.append(SqlInfo::SqlDefaultTransactionIsolation, 0_i64);
    builder.append(SqlInfo::SqlTransactionsSupported, false);
    builder.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0_i32);
    builder.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    builder.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    // Forward-only result sets, bit 1 of SqlSupportedResultSetType.
    builder.append(SqlInfo::SqlSupportedResultSetTypes, 0b10_i32);
    builder.append(SqlInfo::SqlBatchUpdatesSupported, false);
    builder.append(SqlInfo::SqlSavepointsSupported, false);
    builder.append(SqlInfo::SqlNamedParametersSupported, false);
    builder.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    builder.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    Ok(builder.build()?)
}

/// Names of the session's scalar functions, by the section of their documentation.
struct FunctionNames {
    numeric: Vec<String>,
    string: Vec<String>,
    datetime: Vec<String>,
    system: Vec<String>,
}

impl FunctionNames {
    fn of(ctx: &SessionContext) -> Self {
        let state = ctx.state();
        let mut numeric = BTreeSet::new();
        let mut string = BTreeSet::new();
        let mut datetime = BTreeSet::new();
        let mut system = BTreeSet::new();
        for (name, udf) in state.scalar_functions() {
            let section = udf.documentation().map(|d| d.doc_section.label);
            let set = match section {
                Some("Math Functions") => &mut numeric,
                Some("String Functions") | Some("Binary String Functions") => &mut string,
                Some("Time and Date Functions") => &mut datetime,
                Some("Other Functions") | Some("Conditional Functions") => &mut system,
                _ => continue,
            };
            set.insert(name.to_ascii_uppercase());
        }
        FunctionNames {
            numeric: numeric.into_iter().collect(),
            string: string.into_iter().collect(),
            datetime: datetime.into_iter().collect(),
            system: system.into_iter().collect(),
        }
    }
}

/// Builds the `GetXdbcTypeInfo` result: the SQL types the event and view
/// tables use, with the Arrow type each maps to in the result.
pub fn xdbc_type_info() -> anyhow::Result<XdbcTypeInfoData> {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    let types: [(&str, XdbcDataType, Option<i32>, Option<XdbcDatetimeSubcode>); 12] = [
        ("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None),
        ("TINYINT", XdbcDataType::XdbcTinyint, Some(3), None),
        ("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), None),
        ("INTEGER", XdbcDataType::XdbcInteger, Some(10), None),
        ("BIGINT", XdbcDataType::XdbcBigint, Some(19), None),
        ("REAL", XdbcDataType::XdbcReal, Some(7), None),
        ("DOUBLE", XdbcDataType::XdbcDouble, Some(15), None),
        ("VARCHAR", XdbcDataType::XdbcVarchar, None, None),
        ("BYTEA", XdbcDataType::XdbcVarbinary, None, None),
        (
            "DATE",
            XdbcDataType::XdbcDate,
            Some(10),
            Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
        ),
        (
            "TIME",
            XdbcDataType::XdbcTime,
            Some(15),
            Some(XdbcDatetimeSubcode::XdbcSubcodeTime),
        ),
        (
            "TIMESTAMP",
            XdbcDataType::XdbcTimestamp,
            Some(26),
            Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
        ),
    ];
    for (name, data_type, column_size, datetime_subcode) in types {
        let numeric = matches!(
            data_type,
            XdbcDataType::XdbcTinyint
                | XdbcDataType::XdbcSmallint
                | XdbcDataType::XdbcInteger
                | XdbcDataType::XdbcBigint
                | XdbcDataType::XdbcReal
                | XdbcDataType::XdbcDouble
        );
        let quoted = matches!(
            data_type,
            XdbcDataType::XdbcVarchar
                | XdbcDataType::XdbcDate
                | XdbcDataType::XdbcTime
                | XdbcDataType::XdbcTimestamp
        );
        builder.append(XdbcTypeInfo {
            type_name: name.to_string(),
            data_type,
            column_size,
            literal_prefix: quoted.then(|| "'".to_string()),
            literal_suffix: quoted.then(|| "'".to_string()),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: data_type == XdbcDataType::XdbcVarchar,
            searchable: Searchable::Full,
            unsigned_attribute: numeric.then_some(false),
            fixed_prec_scale: false,
            auto_increment: numeric.then_some(false),
            local_type_name: Some(name.to_string()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode,
            num_prec_radix: numeric.then_some(10),
            interval_precision: None,
        });
    }
    Ok(builder.build()?)
}

/// Schema of `GetPrimaryKeys`, as the Flight SQL protocol defines it.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// Schema of `GetExportedKeys`, `GetImportedKeys` and `GetCrossReference`.
pub fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_lists_come_from_the_session() {
        let ctx = SessionContext::new();
        let names = FunctionNames::of(&ctx);
        assert!(
            names.numeric.iter().any(|n| n == "ABS"),
            "{:?}",
            names.numeric
        );
        assert!(
            names.string.iter().any(|n| n == "LOWER"),
            "{:?}",
            names.string
        );
        assert!(
            names.datetime.iter().any(|n| n == "DATE_TRUNC"),
            "{:?}",
            names.datetime
        );
    }

    #[test]
    fn static_metadata_encodes() {
        let info = sql_info(&SessionContext::new()).expect("sql info builds");
        let batch = info
            .record_batch([SqlInfo::FlightSqlServerReadOnly as u32])
            .expect("one entry selects");
        assert_eq!(batch.num_rows(), 1);
        let types = xdbc_type_info().expect("type info builds");
        assert_eq!(types.record_batch(None).expect("all types").num_rows(), 12);
    }
}
