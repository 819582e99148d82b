//! Statement rewrites that let DataFusion plan the catalog queries of
//! PostgreSQL clients. Each rewrite keeps PostgreSQL's result for the
//! statements it matches and leaves every other statement unchanged.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, GroupByExpr, Ident, LambdaFunction, LambdaFunctionParameter, LambdaSyntax,
    ObjectName, OneOrManyWithParens, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    TableFunctionArgs, Value, Visit, VisitMut, Visitor, VisitorMut, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Name of the aggregate that returns the only row of a scalar subquery;
/// [`crate::pg::functions`] registers it.
pub const SCALAR_SUBQUERY_VALUE: &str = "scalar_subquery_value";

/// Applies every rewrite of this module to `statement`. `is_aggregate`
/// returns whether a function name is an aggregate or window function of the
/// session. Returns whether anything changed.
pub fn rewrite_catalog_syntax(
    statement: &mut Statement,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> bool {
    let mut changed = rewrite_unnest_table_functions(statement);
    changed |= rewrite_array_subqueries(statement);
    changed |= aggregate_scalar_subqueries(statement, is_aggregate);
    changed
}

/// Turns `pg_catalog.unnest(array) alias` in FROM, which DataFusion looks up
/// as a table function and does not find, into its `UNNEST(array)` table
/// factor. psql 15 sends it in the `\d+` header query. Both forms return
/// one row per array element.
fn rewrite_unnest_table_functions(statement: &mut Statement) -> bool {
    struct UnnestVisitor {
        changed: bool,
    }

    impl VisitorMut for UnnestVisitor {
        type Break = ();

        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let Some(unnest) = unnest_factor(factor) {
                *factor = unnest;
                self.changed = true;
            }
            ControlFlow::Continue(())
        }
    }

    let mut visitor = UnnestVisitor { changed: false };
    let _ = statement.visit(&mut visitor);
    visitor.changed
}

/// Returns the `UNNEST` table factor for a table function call named
/// `unnest` or `pg_catalog.unnest` with plain arguments.
fn unnest_factor(factor: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        alias,
        args: Some(TableFunctionArgs {
            args,
            settings: None,
        }),
        ..
    } = factor
    else {
        return None;
    };
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| part.to_string().to_ascii_lowercase())
        .collect();
    let is_unnest = matches!(
        parts.iter().map(String::as_str).collect::<Vec<_>>()[..],
        ["unnest"] | ["pg_catalog", "unnest"]
    );
    if !is_unnest {
        return None;
    }
    let array_exprs = args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr.clone()),
            _ => None,
        })
        .collect::<Option<Vec<Expr>>>()?;
    Some(TableFactor::UNNEST {
        alias: alias.clone(),
        array_exprs,
        with_offset: false,
        with_offset_alias: None,
        with_ordinality: false,
    })
}

/// Rewrites the `ARRAY(subquery)` constructor, which DataFusion lacks.
///
/// `ARRAY(SELECT f(x) FROM unnest(a) x [WHERE p(x)])`, as psql 15's `\d+`
/// header sends it, becomes
/// `coalesce(array_transform(array_filter(a, x -> p(x)), x -> f(x)), make_array())`,
/// because DataFusion cannot unnest a column of the outer query inside a
/// subquery. Any other single-column subquery becomes
/// `coalesce((SELECT array_agg(f ORDER BY ...) FROM ...), make_array())`.
/// In both forms `coalesce` turns the NULL of an empty input into the empty
/// array, which is what PostgreSQL returns when the subquery has no rows.
fn rewrite_array_subqueries(statement: &mut Statement) -> bool {
    let mut changed = false;
    let _ = visit_expressions_mut(statement, |expr| {
        let Expr::Function(function) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let is_array =
            function.name.0.len() == 1 && function.name.to_string().eq_ignore_ascii_case("array");
        let FunctionArguments::Subquery(query) = &function.args else {
            return ControlFlow::Continue(());
        };
        if !is_array {
            return ControlFlow::Continue(());
        }
        let rewritten = array_over_unnest(query).or_else(|| array_from_aggregate(query));
        if let Some(rewritten) = rewritten {
            *expr = rewritten;
            changed = true;
        }
        ControlFlow::Continue(())
    });
    changed
}

/// Returns the only item of a plain `SELECT` (no set operation, CTE,
/// `LIMIT`, `DISTINCT`, `GROUP BY` or `HAVING`), with its query.
fn single_item_select(query: &Query) -> Option<(&Select, &Expr)> {
    if query.with.is_some() || query.limit_clause.is_some() || query.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let has_group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) => !exprs.is_empty() || !modifiers.is_empty(),
        GroupByExpr::All(_) => true,
    };
    if select.distinct.is_some() || has_group_by || select.having.is_some() {
        return None;
    }
    let [item] = select.projection.as_slice() else {
        return None;
    };
    let expr = match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => expr,
        _ => return None,
    };
    Some((select, expr))
}

/// Builds the `array_transform` form of `ARRAY(SELECT f(x) FROM unnest(a) x ...)`.
fn array_over_unnest(query: &Query) -> Option<Expr> {
    if query.order_by.is_some() {
        return None;
    }
    let (select, item) = single_item_select(query)?;
    let [from] = select.from.as_slice() else {
        return None;
    };
    if !from.joins.is_empty() {
        return None;
    }
    let factor = unnest_factor(&from.relation).unwrap_or_else(|| from.relation.clone());
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = factor
    else {
        return None;
    };
    let [array] = array_exprs.as_slice() else {
        return None;
    };
    // PostgreSQL names the element column after the alias unless a column
    // alias is given.
    let element = match alias.columns.as_slice() {
        [] => alias.name.clone(),
        [column] => column.name.clone(),
        _ => return None,
    };
    let mut source = array.clone();
    if let Some(predicate) = &select.selection {
        source = call(
            "array_filter",
            vec![source, lambda(&element, predicate.clone())],
        );
    }
    let transformed = call(
        "array_transform",
        vec![source, lambda(&element, item.clone())],
    );
    Some(call(
        "coalesce",
        vec![transformed, call("make_array", vec![])],
    ))
}

/// Builds `coalesce((SELECT array_agg(item ORDER BY ...) FROM ...), make_array())`.
fn array_from_aggregate(query: &Query) -> Option<Expr> {
    let (_, item) = single_item_select(query)?;
    let order = match &query.order_by {
        Some(order_by) => format!(" {order_by}"),
        None => String::new(),
    };
    let aggregate = parse_expr(&format!("array_agg({item}{order})"))?;
    let mut rewritten = query.clone();
    rewritten.order_by = None;
    let SetExpr::Select(select) = rewritten.body.as_mut() else {
        return None;
    };
    select.projection = vec![SelectItem::UnnamedExpr(aggregate)];
    let subquery = Expr::Subquery(Box::new(rewritten));
    Some(call("coalesce", vec![subquery, call("make_array", vec![])]))
}

/// Wraps the item of a scalar subquery that does not aggregate in
/// [`SCALAR_SUBQUERY_VALUE`], because DataFusion plans a correlated scalar
/// subquery only when it aggregates. The aggregate returns NULL for no row,
/// the value for one row, and fails on more rows, as PostgreSQL does.
/// SQLAlchemy 2.1's `get_columns()` (`(SELECT typcollation FROM pg_type
/// WHERE oid = atttypid)`) and Npgsql's type-loading query (`(SELECT
/// rngtypid FROM pg_range WHERE rngmultitypid = typ.oid)`) send such
/// subqueries. Subqueries without FROM, with `LIMIT`, `ORDER BY`,
/// `DISTINCT` or `GROUP BY`, or whose item calls an aggregate or window
/// function are left as they are.
fn aggregate_scalar_subqueries(
    statement: &mut Statement,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> bool {
    let mut changed = false;
    let _ = visit_expressions_mut(statement, |expr| {
        let Expr::Subquery(query) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        if query.order_by.is_some() {
            return ControlFlow::Continue(());
        }
        let Some((select, item)) = single_item_select(query) else {
            return ControlFlow::Continue(());
        };
        if select.from.is_empty() || calls_aggregate(item, is_aggregate) {
            return ControlFlow::Continue(());
        }
        let wrapped = call(SCALAR_SUBQUERY_VALUE, vec![item.clone()]);
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        select.projection = vec![SelectItem::UnnamedExpr(wrapped)];
        changed = true;
        // DataFusion cannot decorrelate a subquery whose WHERE has a
        // condition on outer columns only, such as SQLAlchemy's
        // `pg_attribute.atthasdef AND adrelid = attrelid`. Such conditions
        // move to `CASE WHEN condition THEN (subquery) END`: when they are
        // false or NULL the subquery has no row, so both forms are NULL.
        let Some(selection) = select.selection.take() else {
            return ControlFlow::Continue(());
        };
        let inner_names = relation_names(select);
        let (outer, inner): (Vec<Expr>, Vec<Expr>) = conjuncts(selection)
            .into_iter()
            .partition(|conjunct| references_only_outer(conjunct, &inner_names));
        select.selection = inner.into_iter().reduce(and);
        if let Some(condition) = outer.into_iter().reduce(and) {
            let subquery = std::mem::replace(expr, Expr::Value(Value::Null.into()));
            *expr = Expr::Case {
                case_token: AttachedToken::empty(),
                end_token: AttachedToken::empty(),
                operand: None,
                conditions: vec![CaseWhen {
                    condition,
                    result: subquery,
                }],
                else_result: None,
            };
        }
        ControlFlow::Continue(())
    });
    changed
}

/// Columns of `pg_catalog.pg_sequence`, which is always empty here: the
/// events table has no sequences or identity columns.
const PG_SEQUENCE_COLUMNS: &[&str] = &[
    "seqrelid",
    "seqtypid",
    "seqstart",
    "seqincrement",
    "seqmax",
    "seqmin",
    "seqcache",
    "seqcycle",
];

/// Replaces each scalar subquery that reads only `pg_sequence` with
/// `CASE WHEN false AND <conditions> THEN <item> END`, keeping every
/// parameter placeholder of the subquery in place. Returns the new SQL text,
/// or `None` when `sql` has no such subquery or does not parse.
///
/// SQLAlchemy's column reflection reads identity options from `pg_sequence`
/// in a correlated subquery with eight bound parameters. The compatibility
/// parser of `datafusion-postgres` replaces that subquery with `NULL`,
/// which drops its placeholders from the statement, so the client's
/// parameters, bound by position, no longer line up with their types.
/// Over an empty table the subquery is `NULL` on every row, and so is the
/// `CASE` without an `ELSE`. The rewrite runs before that parser reads the
/// text.
pub fn fold_pg_sequence_subqueries(sql: &str) -> Option<String> {
    if !sql.to_ascii_lowercase().contains("pg_sequence") {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut changed = false;
    for statement in &mut statements {
        let _ = visit_expressions_mut(statement, |expr| {
            if let Some(folded) = fold_pg_sequence_subquery(expr) {
                *expr = folded;
                changed = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    changed.then(|| {
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn fold_pg_sequence_subquery(expr: &Expr) -> Option<Expr> {
    let Expr::Subquery(query) = expr else {
        return None;
    };
    let (select, item) = single_item_select(query)?;
    let [from] = select.from.as_slice() else {
        return None;
    };
    let TableFactor::Table { name, .. } = &from.relation else {
        return None;
    };
    let table = name.0.last()?.to_string().to_ascii_lowercase();
    if table != "pg_sequence" || !from.joins.is_empty() {
        return None;
    }
    // Over no rows `count` gives 0, not NULL: a subquery that counts, or
    // calls a window function, is left as it is.
    if calls_aggregate(item, &|name| name.starts_with("count")) {
        return None;
    }

    let inner_names = relation_names(select);
    let mut result = item.clone();
    null_sequence_columns(&mut result, &inner_names);
    // `false` decides the result, so the conditions are kept only for their
    // placeholders.
    let mut condition = Expr::Value(Value::Boolean(false).into());
    for mut conjunct in select.selection.clone().map(conjuncts).unwrap_or_default() {
        if has_placeholder(&conjunct) {
            null_sequence_columns(&mut conjunct, &inner_names);
            condition = and(condition, Expr::Nested(Box::new(conjunct)));
        }
    }

    Some(Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen { condition, result }],
        else_result: None,
    })
}

/// Replaces the `pg_sequence` columns in `expr`, qualified by one of
/// `inner_names` or bare, with `NULL`.
fn null_sequence_columns(expr: &mut Expr, inner_names: &[String]) {
    let _ = visit_expressions_mut(expr, |expr| {
        let column = match expr {
            Expr::Identifier(ident) => Some(ident.value.to_ascii_lowercase()),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let qualifier = parts[..parts.len() - 1]
                    .iter()
                    .map(|part| part.value.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(".");
                let last_qualifier = parts[parts.len() - 2].value.to_ascii_lowercase();
                (inner_names.contains(&qualifier) || inner_names.contains(&last_qualifier))
                    .then(|| parts[parts.len() - 1].value.to_ascii_lowercase())
            }
            _ => None,
        };
        if column.is_some_and(|column| PG_SEQUENCE_COLUMNS.contains(&column.as_str())) {
            *expr = Expr::Value(Value::Null.into());
        }
        ControlFlow::<()>::Continue(())
    });
}

fn has_placeholder(expr: &Expr) -> bool {
    struct PlaceholderFinder;

    impl Visitor for PlaceholderFinder {
        type Break = ();

        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Value(value) if matches!(value.value, Value::Placeholder(_)) => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }

    expr.visit(&mut PlaceholderFinder).is_break()
}

fn and(left: Expr, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    }
}

/// Splits `a AND b AND ...` into its conjuncts.
fn conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut parts = conjuncts(*left);
            parts.extend(conjuncts(*right));
            parts
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

/// Names by which the FROM clause of `select` can qualify a column, lower
/// case: each alias, or each table's full and last name.
fn relation_names(select: &Select) -> Vec<String> {
    let mut names = Vec::new();
    for from in &select.from {
        let factors =
            std::iter::once(&from.relation).chain(from.joins.iter().map(|join| &join.relation));
        for factor in factors {
            match factor {
                TableFactor::Table {
                    alias: Some(alias), ..
                }
                | TableFactor::Derived {
                    alias: Some(alias), ..
                }
                | TableFactor::UNNEST {
                    alias: Some(alias), ..
                } => {
                    names.push(alias.name.value.to_ascii_lowercase());
                }
                TableFactor::Table {
                    name, alias: None, ..
                } => {
                    names.push(name.to_string().to_ascii_lowercase());
                    if let Some(last) = name.0.last() {
                        names.push(last.to_string().to_ascii_lowercase());
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// Tells whether `expr` reads columns, each qualified by a name that is
/// not in `inner_names`, and contains no subquery or unqualified column.
fn references_only_outer(expr: &Expr, inner_names: &[String]) -> bool {
    struct OuterCheck<'a> {
        inner_names: &'a [String],
        columns: usize,
    }

    impl Visitor for OuterCheck<'_> {
        type Break = ();

        fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
            ControlFlow::Break(())
        }

        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(_) => ControlFlow::Break(()),
                Expr::CompoundIdentifier(parts) => {
                    let qualifier = parts[..parts.len() - 1]
                        .iter()
                        .map(|part| part.value.to_ascii_lowercase())
                        .collect::<Vec<_>>()
                        .join(".");
                    let last = parts[parts.len() - 2].value.to_ascii_lowercase();
                    if self.inner_names.contains(&qualifier) || self.inner_names.contains(&last) {
                        return ControlFlow::Break(());
                    }
                    self.columns += 1;
                    ControlFlow::Continue(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }

    let mut check = OuterCheck {
        inner_names,
        columns: 0,
    };
    expr.visit(&mut check).is_continue() && check.columns > 0
}

/// Tells whether `expr` calls an aggregate or window function outside a
/// nested subquery.
fn calls_aggregate(expr: &Expr, is_aggregate: &dyn Fn(&str) -> bool) -> bool {
    struct AggregateFinder<'a> {
        is_aggregate: &'a dyn Fn(&str) -> bool,
        /// Depth of nested subqueries; their items belong to them.
        depth: usize,
    }

    impl Visitor for AggregateFinder<'_> {
        type Break = ();

        fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }

        fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }

        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            let Expr::Function(function) = expr else {
                return ControlFlow::Continue(());
            };
            let name = function
                .name
                .0
                .last()
                .map(|part| part.to_string().to_ascii_lowercase())
                .unwrap_or_default();
            if self.depth == 0 && (function.over.is_some() || (self.is_aggregate)(&name)) {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }

    let mut finder = AggregateFinder {
        is_aggregate,
        depth: 0,
    };
    expr.visit(&mut finder).is_break()
}

/// Builds the call `name(args)` as a syntax tree, because a lambda
/// argument prints as `x -> ...`, which the PostgreSQL parser reads as a
/// JSON operator.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|arg| FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn lambda(parameter: &Ident, body: Expr) -> Expr {
    Expr::Lambda(LambdaFunction {
        params: OneOrManyWithParens::One(LambdaFunctionParameter {
            name: parameter.clone(),
            data_type: None,
        }),
        body: Box::new(body),
        syntax: LambdaSyntax::Arrow,
    })
}

fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Statement {
        datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser::new()
            .parse(sql)
            .unwrap_or_else(|error| panic!("parsing {sql}: {error}"))
            .remove(0)
    }

    fn is_aggregate(name: &str) -> bool {
        matches!(name, "count" | "max" | "array_agg")
    }

    fn rewritten(sql: &str) -> (bool, String) {
        let mut statement = parse(sql);
        let changed = rewrite_catalog_syntax(&mut statement, &is_aggregate);
        (changed, statement.to_string())
    }

    /// Collects the placeholders of `sql`, sorted, because the fold moves
    /// conditions after the item they guard.
    fn placeholders(sql: &str) -> Vec<String> {
        let mut found = Vec::new();
        for statement in Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap() {
            let _ = statement.visit(&mut PlaceholderCollector(&mut found));
        }
        found.sort();
        found
    }

    struct PlaceholderCollector<'a>(&'a mut Vec<String>);

    impl Visitor for PlaceholderCollector<'_> {
        type Break = ();

        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Value(value) = expr
                && let Value::Placeholder(name) = &value.value
            {
                self.0.push(name.clone());
            }
            ControlFlow::Continue(())
        }
    }

    #[test]
    fn pg_sequence_subquery_folds_and_keeps_its_placeholders() {
        let sql = "SELECT a.attname, CASE WHEN (a.attidentity != $1::VARCHAR) THEN \
                   (SELECT json_build_object($2::VARCHAR, a.attidentity = $3::VARCHAR, \
                   $4::VARCHAR, pg_catalog.pg_sequence.seqstart) AS j \
                   FROM pg_catalog.pg_sequence \
                   WHERE a.attidentity != $5::VARCHAR \
                   AND pg_catalog.pg_sequence.seqrelid = CAST(a.attrelid AS OID)) \
                   ELSE NULL END AS identity_options \
                   FROM pg_catalog.pg_attribute a WHERE a.attnum > $6::SMALLINT";
        let folded = fold_pg_sequence_subqueries(sql).expect("the subquery was not folded");
        assert!(!folded.contains("pg_sequence"), "{folded}");
        assert!(folded.contains("CASE WHEN false AND"), "{folded}");
        assert_eq!(placeholders(&folded), placeholders(sql), "{folded}");
        // The compatibility parser keeps every placeholder of the folded text.
        assert_eq!(
            placeholders(&parse(&folded).to_string()),
            placeholders(sql),
            "{folded}"
        );
    }

    #[test]
    fn other_subqueries_are_not_folded() {
        for sql in [
            "SELECT (SELECT count(*) FROM pg_catalog.pg_sequence) AS n",
            "SELECT (SELECT typname FROM pg_catalog.pg_type WHERE oid = $1) AS t",
            "SELECT (SELECT s.seqstart FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid)",
            "SELECT 1",
        ] {
            assert_eq!(fold_pg_sequence_subqueries(sql), None, "{sql}");
        }
    }

    #[test]
    fn pg_catalog_unnest_becomes_unnest_factor() {
        let (changed, text) = rewritten("SELECT x FROM pg_catalog.unnest(make_array(1, 2)) x");
        assert!(changed, "the table function was not rewritten: {text}");
        assert!(text.contains("FROM UNNEST(make_array(1, 2)) x"), "{text}");
    }

    #[test]
    fn array_over_unnest_becomes_array_transform() {
        let (changed, text) = rewritten(
            "SELECT array_to_string(c.reloptions || array(select 'toast.' || x \
             from pg_catalog.unnest(tc.reloptions) x), ', ') FROM pg_class c, pg_class tc",
        );
        assert!(changed, "ARRAY(subquery) was not rewritten: {text}");
        assert!(
            text.contains(
                "coalesce(array_transform(tc.reloptions, x -> 'toast.' || x), make_array())"
            ),
            "{text}"
        );
    }

    #[test]
    fn array_over_unnest_keeps_its_filter() {
        let (_, text) =
            rewritten("SELECT ARRAY(SELECT x * 2 FROM unnest(t.a) AS x WHERE x > 1) FROM t");
        assert!(
            text.contains(
                "coalesce(array_transform(array_filter(t.a, x -> x > 1), x -> x * 2), make_array())"
            ),
            "{text}"
        );
    }

    #[test]
    fn array_subquery_becomes_array_agg() {
        let (changed, text) =
            rewritten("SELECT ARRAY(SELECT name FROM t WHERE t.k = o.k ORDER BY name) FROM o");
        assert!(changed, "ARRAY(subquery) was not rewritten: {text}");
        assert!(
            text.contains(
                "coalesce((SELECT array_agg(name ORDER BY name) FROM t WHERE t.k = o.k), make_array())"
            ),
            "{text}"
        );
    }

    #[test]
    fn plain_scalar_subquery_is_wrapped() {
        let (changed, text) = rewritten(
            "SELECT CASE WHEN true THEN (SELECT rngtypid FROM pg_range WHERE rngmultitypid = typ.oid) END \
             FROM pg_type typ",
        );
        assert!(changed, "the scalar subquery was not wrapped: {text}");
        assert!(
            text.contains("(SELECT scalar_subquery_value(rngtypid) FROM pg_catalog.pg_range"),
            "{text}"
        );
    }

    #[test]
    fn outer_only_condition_moves_out_of_subquery() {
        let (_, text) = rewritten(
            "SELECT coalesce((SELECT d.adbin FROM pg_attrdef d \
             WHERE a.atthasdef AND d.adrelid = a.attrelid), '') FROM pg_attribute a",
        );
        assert!(
            text.contains("CASE WHEN a.atthasdef THEN (SELECT scalar_subquery_value(d.adbin)"),
            "{text}"
        );
        assert!(text.contains("WHERE d.adrelid = a.attrelid) END"), "{text}");
    }

    #[test]
    fn aggregated_or_limited_subqueries_stay() {
        let cases = [
            "SELECT 1 + (SELECT max(a) FROM t WHERE t.k = o.k) FROM o",
            "SELECT 1 + (SELECT a FROM t ORDER BY a LIMIT 1) FROM o",
            "SELECT 1 + (SELECT a FROM t GROUP BY a) FROM o",
            "SELECT 1 + (SELECT 2) FROM o",
            "SELECT a FROM t WHERE EXISTS (SELECT b FROM u WHERE u.k = t.k)",
        ];
        for sql in cases {
            let (changed, text) = rewritten(sql);
            assert!(!changed, "{sql} was rewritten to {text}");
        }
    }

    #[tokio::test]
    async fn rewritten_array_over_unnest_plans_and_keeps_empty_arrays() {
        let ctx = datafusion::prelude::SessionContext::new();
        let mut statement = parse(
            "SELECT array_to_string(ARRAY(SELECT 'toast.' || x FROM unnest(t.a) x), ',') AS joined, \
             cardinality(ARRAY(SELECT 'toast.' || x FROM unnest(t.a) x)) AS n \
             FROM (VALUES (make_array('a', 'b')), (CAST(NULL AS VARCHAR[]))) AS t(a)",
        );
        let state = ctx.state();
        let is_aggregate = |name: &str| state.aggregate_functions().contains_key(name);
        assert!(rewrite_catalog_syntax(&mut statement, &is_aggregate));
        let plan = state
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                statement,
            )))
            .await
            .expect("the rewritten ARRAY(subquery) plans");
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .expect("executing")
            .collect()
            .await
            .expect("collecting");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .expect("formatting")
            .to_string();
        assert!(text.contains("toast.a,toast.b"), "{text}");
        // unnest(NULL) has no rows, so ARRAY() is the empty array, not NULL.
        assert!(text.contains("| 0 "), "{text}");
    }
}
