//! The apitrail query hook: runs before the hooks of `datafusion-postgres`
//! on every statement, enforces the read-only rule of
//! [`apitrail_query::check_read_only`], and handles the session statements
//! whose default handling would change the shared DataFusion session.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Set, Statement, Value, ValueWithSpan, visit_expressions_mut,
};
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::{
    DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::response::TransactionStatus;
use datafusion_postgres::pgwire::types::format::FormatOptions;

use crate::pg::settings::fixed_setting;
use crate::pg::{compat, errors};

/// Settings that the `datafusion-postgres` SET hook keeps per connection.
/// Any other `SET` would change the shared DataFusion session there, so
/// [`ApitrailHook`] handles those itself.
const CONNECTION_SETTINGS: &[&str] = &[
    "statement_timeout",
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
];

/// Statements that later hooks handle without planning: transactions,
/// cursors, `SET` and `SHOW`.
fn is_handled_by_library(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Declare { .. }
            | Statement::Fetch { .. }
            | Statement::Close { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowCatalogs { .. }
    )
}

#[derive(Debug)]
pub struct ApitrailHook;

impl ApitrailHook {
    /// Responds to session statements that need no plan: `SET` (other than the
    /// connection settings the library keeps), `SHOW` of a known setting,
    /// `DISCARD` and `DEALLOCATE`. Returns `None` for every other statement.
    fn answer_session_statement(
        statement: &Statement,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match statement {
            Statement::Set(set) => answer_set(set, client),
            Statement::ShowVariable { variable } => {
                let parts: Vec<String> = variable
                    .iter()
                    .map(|ident| ident.value.to_ascii_lowercase())
                    .collect();
                let name = match parts.join(" ").as_str() {
                    "time zone" => "timezone".to_owned(),
                    "transaction isolation level" => "transaction_isolation".to_owned(),
                    _ => parts.join("."),
                };
                let value = client
                    .metadata()
                    .get(&name)
                    .cloned()
                    .or_else(|| fixed_setting(&name).map(str::to_owned))?;
                Some(show_response(&name, &value).map(Response::Query))
            }
            // NOTE: DISCARD ALL keeps SET values; prepared statements of the
            // extended protocol are closed by the client with Close messages.
            Statement::Discard { object_type } => Some(Ok(Response::Execution(Tag::new(
                &format!("DISCARD {object_type}"),
            )))),
            // NOTE: SQL-level PREPARE is not supported, so there is nothing
            // to deallocate. The tag is still sent, because connection pools
            // send DEALLOCATE ALL when they reset a connection.
            Statement::Deallocate { .. } => Some(Ok(Response::Execution(Tag::new("DEALLOCATE")))),
            // Savepoints have nothing to undo, because every statement is read-only.
            Statement::Savepoint { .. } => Some(Ok(Response::Execution(Tag::new("SAVEPOINT")))),
            Statement::ReleaseSavepoint { .. } => {
                Some(Ok(Response::Execution(Tag::new("RELEASE"))))
            }
            Statement::Rollback {
                savepoint: Some(_), ..
            } => Some(Ok(Response::Execution(Tag::new("ROLLBACK")))),
            _ => None,
        }
    }
}

/// Responds to `SET` forms the library would send to the shared DataFusion
/// session; returns `None` for the ones it keeps per connection.
fn answer_set(set: &Set, client: &mut dyn HookClient) -> Option<PgWireResult<Response>> {
    match set {
        Set::SingleAssignment {
            scope: None,
            variable,
            ..
        } if CONNECTION_SETTINGS.contains(&variable.to_string().to_ascii_lowercase().as_str()) => {
            None
        }
        Set::SetTimeZone { local: false, .. } => None,
        Set::SingleAssignment {
            variable, values, ..
        } => {
            // Stored per connection so that SHOW returns it.
            // NOTE: such settings (including `datafusion.*` options) do not
            // change query execution; `SET LOCAL` lasts for the connection,
            // not only the transaction.
            let name = variable.to_string().to_ascii_lowercase();
            let value = values
                .iter()
                .map(|value| value.to_string().trim_matches('\'').to_owned())
                .collect::<Vec<_>>()
                .join(", ");
            client.metadata_mut().insert(name, value);
            Some(Ok(Response::Execution(Tag::new("SET"))))
        }
        _ => Some(Ok(Response::Execution(Tag::new("SET")))),
    }
}

/// Rejects writes that DataFusion cannot plan from the PostgreSQL syntax
/// tree, such as `COPY`, with the read-only error instead of "not
/// implemented", so that the client learns why.
fn reject_unplannable_write(statement: &Statement) -> Option<PgWireError> {
    let kind = match statement {
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } => "COPY",
        Statement::Truncate { .. } => "TRUNCATE",
        Statement::Merge { .. } => "MERGE",
        Statement::Grant { .. } | Statement::Revoke { .. } => "GRANT/REVOKE",
        _ => return None,
    };
    let error = apitrail_query::QueryError::ReadOnly(kind.to_owned());
    Some(errors::from_query_error(&error))
}

/// Replaces a syntax error on SQL whose first keyword writes (CREATE,
/// INSERT, COPY, ...) with the read-only error: such statements are
/// rejected whether or not the PostgreSQL parser accepts their syntax,
/// as with DataFusion's `CREATE EXTERNAL TABLE`.
pub fn read_only_parse_error(sql: &str, error: PgWireError) -> PgWireError {
    let kind = statement_kind(sql);
    if !matches!(kind, "write" | "ddl") {
        return error;
    }
    let mut mapped = error;
    errors::to_user_error(&mut mapped);
    match &mapped {
        PgWireError::UserError(info) if info.code == errors::SYNTAX_ERROR => {
            let keyword = sql
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            errors::from_query_error(&apitrail_query::QueryError::ReadOnly(keyword))
        }
        _ => mapped,
    }
}

/// One-row, one-column text result, as PostgreSQL sends for `SHOW name`.
fn show_response(name: &str, value: &str) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(vec![FieldInfo::new(
        name.to_owned(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(Arc::clone(&fields));
    encoder.encode_field(&Some(value))?;
    let row = encoder.take_row();
    Ok(QueryResponse::new(
        fields,
        futures::stream::once(async move { Ok(row) }),
    ))
}

/// Rewrites `LIKE ... ESCAPE 'c'` with a literal pattern into the same
/// pattern escaped with a backslash, DataFusion's only escape character.
/// SQLAlchemy sends `nspname NOT LIKE 'pg/_%' ESCAPE '/'` on schema sync.
/// Returns whether anything changed.
fn rewrite_like_escapes(statement: &mut Statement) -> bool {
    let mut changed = false;
    let _ = visit_expressions_mut(statement, |expr| {
        let (Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        }) = expr
        else {
            return ControlFlow::<()>::Continue(());
        };
        let escape = match escape_char.as_ref().map(|value| &value.value) {
            Some(Value::SingleQuotedString(text)) if text.chars().count() == 1 && text != "\\" => {
                text.chars().next().unwrap_or('\\')
            }
            _ => return ControlFlow::Continue(()),
        };
        let Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(text),
            ..
        }) = pattern.as_mut()
        else {
            // A bound pattern (SQLAlchemy binds it) is translated by the query.
            if let Some(translated) = translate_pattern_expr(pattern, escape) {
                **pattern = translated;
                *escape_char = None;
                changed = true;
            }
            return ControlFlow::Continue(());
        };
        let mut rewritten = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(ch) = chars.next() {
            if ch == escape {
                rewritten.push('\\');
                if let Some(next) = chars.next() {
                    rewritten.push(next);
                }
            } else if ch == '\\' {
                rewritten.push_str("\\\\");
            } else {
                rewritten.push(ch);
            }
        }
        *text = rewritten;
        *escape_char = None;
        changed = true;
        ControlFlow::Continue(())
    });
    changed
}

/// Builds an expression that turns a LIKE pattern escaped with `escape`
/// into one escaped with a backslash, using nested `replace` calls.
/// U+E000 (private use) stands for an escaped `escape` while the others are
/// replaced.
fn translate_pattern_expr(pattern: &Expr, escape: char) -> Option<Expr> {
    let quoted = escape.to_string().replace('\'', "''");
    let sql = format!(
        "replace(replace(replace(replace(replace({pattern}, '\\', '\\\\'), \
         '{quoted}{quoted}', '\u{e000}'), '{quoted}_', '\\_'), '{quoted}%', '\\%'), \
         '\u{e000}', '{quoted}')"
    );
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(&sql)
        .and_then(|mut parser| parser.parse_expr())
        .ok()
}

/// Applies the statement rewrites DataFusion needs: LIKE escapes and the
/// client catalog syntax of [`compat`]. Returns whether anything changed.
fn rewrite_statement(statement: &mut Statement, session_context: &SessionContext) -> bool {
    let state = session_context.state();
    let is_aggregate = |name: &str| {
        state.aggregate_functions().contains_key(name)
            || state.window_functions().contains_key(name)
    };
    let mut changed = rewrite_like_escapes(statement);
    changed |= compat::rewrite_catalog_syntax(statement, &is_aggregate);
    changed
}

/// Plans `statement` on the PostgreSQL session, after [`rewrite_statement`],
/// and applies the read-only rule. Returns the plan and whether the
/// statement was rewritten.
async fn plan_read_only(
    statement: &Statement,
    session_context: &SessionContext,
) -> PgWireResult<(LogicalPlan, bool)> {
    let mut statement = statement.clone();
    let rewritten = rewrite_statement(&mut statement, session_context);
    let plan = session_context
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(|error| errors::from_datafusion(&error))?;
    apitrail_query::check_read_only(&plan).map_err(|error| errors::from_query_error(&error))?;
    Ok((plan, rewritten))
}

/// Runs `plan` and encodes its rows as text, as the simple query protocol sends them.
async fn run_plan(
    plan: LogicalPlan,
    session_context: &SessionContext,
    client: &dyn HookClient,
) -> PgWireResult<Response> {
    let frame = session_context
        .execute_logical_plan(plan)
        .await
        .map_err(|error| errors::from_datafusion(&error))?;
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    let response = encode_dataframe(frame, &Format::UnifiedText, Some(options)).await?;
    Ok(Response::Query(response))
}

fn empty_plan() -> LogicalPlan {
    LogicalPlan::EmptyRelation(EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(DFSchema::empty()),
    })
}

#[async_trait]
impl QueryHook for ApitrailHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if client.transaction_status() == TransactionStatus::Error
            && !matches!(
                statement,
                Statement::Commit { .. } | Statement::Rollback { .. }
            )
        {
            return Some(Err(errors::user_error(
                errors::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            )));
        }
        if let Some(error) = reject_unplannable_write(statement) {
            return Some(Err(error));
        }
        if let Some(response) = Self::answer_session_statement(statement, client) {
            return Some(response);
        }
        if is_handled_by_library(statement)
            || matches!(
                statement,
                Statement::Set(_) | Statement::ShowVariable { .. }
            )
        {
            return None;
        }
        let (plan, rewritten) = match plan_read_only(statement, session_context).await {
            Ok(planned) => planned,
            Err(error) => return Some(Err(error)),
        };
        if !rewritten {
            // The library runs the original statement after this check passes.
            return None;
        }
        // The library would run the original text, so the rewritten plan runs here.
        Some(run_plan(plan, session_context, client).await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        if let Some(error) = reject_unplannable_write(statement) {
            return Some(Err(error));
        }
        match statement {
            Statement::Discard { .. }
            | Statement::Deallocate { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Rollback {
                savepoint: Some(_), ..
            } => Some(Ok(empty_plan())),
            Statement::Set(_) | Statement::ShowVariable { .. } => None,
            _ if is_handled_by_library(statement) => None,
            _ => Some(
                plan_read_only(statement, session_context)
                    .await
                    .map(|(plan, _)| plan),
            ),
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::answer_session_statement(statement, client)
    }
}

/// Kind of statement for logs and metrics: its first keyword, lower case,
/// from a fixed list so that metric labels stay bounded.
pub fn statement_kind(sql: &str) -> &'static str {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match first.as_str() {
        "" => "empty",
        "select" => "select",
        "with" => "with",
        "values" => "values",
        "explain" => "explain",
        "show" => "show",
        "set" => "set",
        "reset" => "reset",
        "begin" | "start" => "begin",
        "commit" | "end" => "commit",
        "rollback" | "abort" => "rollback",
        "discard" => "discard",
        "deallocate" => "deallocate",
        "declare" | "fetch" | "close" => "cursor",
        "insert" | "update" | "delete" | "merge" | "copy" | "truncate" => "write",
        "create" | "drop" | "alter" => "ddl",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_kinds_are_bounded() {
        let cases = [
            ("SELECT 1", "select"),
            ("  with x as (select 1) select * from x", "with"),
            ("BEGIN", "begin"),
            ("insert into t values (1)", "write"),
            ("CREATE TABLE t (a int)", "ddl"),
            ("VACUUM", "other"),
            ("", "empty"),
        ];
        for (sql, expected) in cases {
            assert_eq!(statement_kind(sql), expected, "kind of `{sql}`");
        }
    }

    #[test]
    fn like_escape_becomes_backslash() {
        let parser =
            datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
        let mut statement = parser
            .parse("SELECT 1 WHERE 'pg_x' NOT LIKE 'pg/_%' ESCAPE '/'")
            .expect("parsing a LIKE with ESCAPE")
            .remove(0);
        assert!(
            rewrite_like_escapes(&mut statement),
            "the LIKE was not rewritten"
        );
        let text = statement.to_string();
        assert!(
            text.contains("NOT LIKE 'pg\\_%'") && !text.contains("ESCAPE"),
            "rewritten statement: {text}"
        );
    }
}
