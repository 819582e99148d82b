//! PostgreSQL functions that client catalog queries call and that neither
//! DataFusion nor datafusion-pg-catalog provides.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TypeSignature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;

use crate::pg::compat::SCALAR_SUBQUERY_VALUE;

/// Registers `json_build_object()`, `pg_collation_is_visible()`,
/// `col_description()` and the
/// aggregate that [`crate::pg::compat`] wraps scalar subqueries in.
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject::new()));
    // SQLAlchemy 2.1's get_columns() calls it for a column's collation.
    // Every collation in the static pg_collation table is in pg_catalog,
    // which is always on the search path, so each one is visible.
    ctx.register_udf(create_udf(
        "pg_collation_is_visible",
        vec![DataType::Int32],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            Ok(match &args[0] {
                ColumnarValue::Scalar(oid) => {
                    ColumnarValue::Scalar(ScalarValue::Boolean((!oid.is_null()).then_some(true)))
                }
                ColumnarValue::Array(oids) => {
                    let visible: datafusion::arrow::array::BooleanArray = (0..oids.len())
                        .map(|index| (!oids.is_null(index)).then_some(true))
                        .collect();
                    ColumnarValue::Array(Arc::new(visible))
                }
            })
        }),
    ));
    // psql's `\d+` calls col_description(table oid, column number) for the
    // Description column. apitrail columns have no comments (there is no
    // COMMENT ON), so it returns NULL, as PostgreSQL does for a column
    // without one.
    ctx.register_udf(create_udf(
        "col_description",
        vec![DataType::Int32, DataType::Int32],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    ));
    ctx.register_udaf(AggregateUDF::new_from_impl(ScalarSubqueryValue::new()));
}

/// `json_build_object(key, value, ...)`: a JSON object as text, formatted
/// as PostgreSQL 16 formats it (`{"a" : 1, "b" : "x"}`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        JsonBuildObject {
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Stable,
            ),
        }
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return exec_err!(
                "json_build_object: argument list must have an even number of elements, got {}",
                args.args.len()
            );
        }
        let arrays = args
            .args
            .iter()
            .map(|arg| arg.to_array(args.number_rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let mut objects = StringBuilder::new();
        for row in 0..args.number_rows {
            let mut members = Vec::with_capacity(arrays.len() / 2);
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                if key.is_null() {
                    return exec_err!("json_build_object: null value not allowed for object key");
                }
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                members.push(format!(
                    "{} : {}",
                    json_string(&scalar_text(&key)),
                    json_value(&value)
                ));
            }
            objects.append_value(format!("{{{}}}", members.join(", ")));
        }
        Ok(ColumnarValue::Array(Arc::new(objects.finish())))
    }
}

/// Text of a scalar as a PostgreSQL text cast would print it.
fn scalar_text(value: &ScalarValue) -> String {
    match value {
        ScalarValue::Utf8(Some(text))
        | ScalarValue::LargeUtf8(Some(text))
        | ScalarValue::Utf8View(Some(text)) => text.clone(),
        other => other.to_string(),
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// JSON text of a value: numbers and booleans as they are, NULL as `null`,
/// everything else as a JSON string of its text.
fn json_value(value: &ScalarValue) -> String {
    if value.is_null() {
        return "null".to_owned();
    }
    match value {
        ScalarValue::Boolean(_)
        | ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_)
        | ScalarValue::Decimal128(..) => value.to_string(),
        ScalarValue::Float32(Some(number)) if number.is_finite() => value.to_string(),
        ScalarValue::Float64(Some(number)) if number.is_finite() => value.to_string(),
        other => json_string(&scalar_text(other)),
    }
}

/// `scalar_subquery_value(x)`: the value of the only input row, NULL when
/// there is no row, and an error for more than one row. This is how
/// PostgreSQL evaluates a scalar subquery, and DataFusion plans correlated
/// scalar subqueries only when they aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ScalarSubqueryValue {
    signature: Signature,
}

impl ScalarSubqueryValue {
    fn new() -> Self {
        ScalarSubqueryValue {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for ScalarSubqueryValue {
    fn name(&self) -> &str {
        SCALAR_SUBQUERY_VALUE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SingleRowAccumulator {
            rows: 0,
            value: ScalarValue::try_from(args.return_field.data_type())?,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("rows", DataType::UInt64, false)),
            Arc::new(Field::new("value", args.return_type().clone(), true)),
        ])
    }
}

#[derive(Debug)]
struct SingleRowAccumulator {
    rows: u64,
    value: ScalarValue,
}

impl SingleRowAccumulator {
    fn check_rows(&self) -> Result<()> {
        if self.rows > 1 {
            return exec_err!("more than one row returned by a subquery used as an expression");
        }
        Ok(())
    }
}

impl Accumulator for SingleRowAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = &values[0];
        if values.is_empty() {
            return Ok(());
        }
        self.rows += values.len() as u64;
        self.check_rows()?;
        self.value = ScalarValue::try_from_array(values, 0)?;
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() - std::mem::size_of_val(&self.value)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::UInt64(Some(self.rows)),
            self.value.clone(),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states[0].as_primitive::<UInt64Type>();
        for index in 0..rows.len() {
            let count = rows.value(index);
            if count == 0 {
                continue;
            }
            self.rows += count;
            self.check_rows()?;
            self.value = ScalarValue::try_from_array(&states[1], index)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn query_text(sql: &str) -> Result<Vec<String>> {
        let ctx = SessionContext::new();
        register_functions(&ctx);
        let batches = ctx.sql(sql).await?.collect().await?;
        let mut values = Vec::new();
        for batch in batches {
            let column = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
            let column = column.as_string::<i32>();
            for index in 0..column.len() {
                values.push(if column.is_null(index) {
                    "NULL".to_owned()
                } else {
                    column.value(index).to_owned()
                });
            }
        }
        Ok(values)
    }

    #[tokio::test]
    async fn json_build_object_formats_like_postgresql() {
        let values = query_text(
            "SELECT json_build_object('always', true, 'start', 1, 'name', 'a\"b', 'none', NULL)",
        )
        .await
        .expect("json_build_object runs");
        assert_eq!(
            values,
            vec![r#"{"always" : true, "start" : 1, "name" : "a\"b", "none" : null}"#]
        );
        let empty = query_text("SELECT json_build_object()")
            .await
            .expect("json_build_object() runs");
        assert_eq!(empty, vec!["{}"]);
    }

    #[tokio::test]
    async fn json_build_object_rejects_odd_arguments() {
        let error = query_text("SELECT json_build_object('a')")
            .await
            .expect_err("an odd argument count must fail");
        assert!(error.to_string().contains("even number"), "error: {error}");
    }

    #[tokio::test]
    async fn scalar_subquery_value_returns_the_only_row() {
        let one = query_text("SELECT scalar_subquery_value(x) FROM (VALUES (7)) AS t(x)")
            .await
            .expect("one row");
        assert_eq!(one, vec!["7"]);
        let none =
            query_text("SELECT scalar_subquery_value(x) FROM (VALUES (7)) AS t(x) WHERE x > 10")
                .await
                .expect("no row");
        assert_eq!(none, vec!["NULL"]);
        let error = query_text("SELECT scalar_subquery_value(x) FROM (VALUES (1), (2)) AS t(x)")
            .await
            .expect_err("two rows must fail");
        assert!(
            error.to_string().contains("more than one row"),
            "error: {error}"
        );
    }

    #[tokio::test]
    async fn correlated_subquery_plans_when_wrapped() {
        let values = query_text(
            "SELECT CASE WHEN o.k > 0 THEN \
             (SELECT scalar_subquery_value(i.v) FROM (VALUES (1, 'one'), (2, 'two')) AS i(k, v) \
              WHERE i.k = o.k) END \
             FROM (VALUES (1), (2), (3)) AS o(k) ORDER BY o.k",
        )
        .await
        .expect("the wrapped correlated subquery plans and runs");
        assert_eq!(values, vec!["one", "two", "NULL"]);
    }
}
