//! SQL functions registered in every apitrail session.
//!
//! - [`sketch`]: building, merging and reading the views' sketches.
//! - [`inventory`]: helpers the inventory views use, such as
//!   `auth_scheme_names`.
//! - [`scoring`]: `zscore` and `robust_zscore`, which score a value against
//!   a baseline.
//! - [`network`]: `is_private_ip` and `ip_network` over text addresses.
//! - [`aggregates`]: `mad`, `entropy` and `sequential_ratio`, aggregates
//!   that describe a group of calls.
//! - [`window`]: `ewma`, an exponentially weighted moving average.
//!
//! docs/functions.md describes every function for analysts, with examples.

pub mod aggregates;
pub mod inventory;
pub mod network;
pub mod scoring;
pub mod sketch;
pub mod window;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use datafusion::common::types::{NativeType, logical_float64, logical_string};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{Coercion, ColumnarValue, TypeSignatureClass};
use datafusion::prelude::SessionContext;

/// Registers every apitrail function in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    let (sketch_scalars, sketch_aggregates) = sketch::sketch_functions();
    let scalars = sketch_scalars
        .into_iter()
        .chain(inventory::inventory_functions())
        .chain(scoring::scoring_functions())
        .chain(network::network_functions());
    for function in scalars {
        ctx.register_udf(function);
    }
    let aggregates = sketch_aggregates
        .into_iter()
        .chain(aggregates::aggregate_functions());
    for function in aggregates {
        ctx.register_udaf(function);
    }
    for function in window::window_functions() {
        ctx.register_udwf(function);
    }
}

/// Argument coercion for a number: any integer, float or decimal becomes `DOUBLE`.
fn float64_argument() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_float64()),
        vec![TypeSignatureClass::Numeric],
        NativeType::Float64,
    )
}

/// Argument coercion for text: `Utf8`, `LargeUtf8` and `Utf8View` pass unchanged.
fn text_argument() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
}

/// Returns the values of a text array of any of the three string layouts.
///
/// A `Null` array, the type of a bare `NULL` argument, gives `None` for every row.
fn text_values(array: &ArrayRef) -> Result<Box<dyn Iterator<Item = Option<&str>> + '_>> {
    Ok(match array.data_type() {
        DataType::Utf8 => Box::new(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => Box::new(array.as_string::<i64>().iter()),
        DataType::Utf8View => Box::new(array.as_string_view().iter()),
        DataType::Null => Box::new(std::iter::repeat_n(None, array.len())),
        other => return exec_err!("expected a text argument, got {other}"),
    })
}

/// Wraps the result of a scalar function: a scalar when every argument was one.
///
/// `result` has one row per input row, as [`ColumnarValue::values_to_arrays`]
/// returns the arguments, so scalar arguments give a one-row result.
fn scalar_result(args: &[ColumnarValue], result: ArrayRef) -> Result<ColumnarValue> {
    let all_scalar = args
        .iter()
        .all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
    if all_scalar && result.len() == 1 {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &result, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(result))
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers that run SQL on a session with every apitrail function.

    use arrow::array::{Array, AsArray, RecordBatch};
    use arrow::datatypes::{DataType, Float64Type};
    use datafusion::prelude::SessionContext;

    use super::register_all;

    /// A session with every apitrail function registered.
    pub(crate) fn session() -> SessionContext {
        let ctx = SessionContext::new();
        register_all(&ctx);
        ctx
    }

    /// Runs `sql` and returns its batches, panicking with the error on failure.
    pub(crate) async fn run(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
        match ctx.sql(sql).await {
            Ok(frame) => match frame.collect().await {
                Ok(batches) => batches,
                Err(error) => panic!("running {sql} failed: {error}"),
            },
            Err(error) => panic!("planning {sql} failed: {error}"),
        }
    }

    /// Runs `sql` and returns the first column as numbers, in row order.
    pub(crate) async fn floats(ctx: &SessionContext, sql: &str) -> Vec<Option<f64>> {
        let mut values = Vec::new();
        for batch in run(ctx, sql).await {
            let column = batch.column(0);
            assert_eq!(
                column.data_type(),
                &DataType::Float64,
                "{sql} returns DOUBLE"
            );
            values.extend(column.as_primitive::<Float64Type>().iter());
        }
        values
    }

    /// Runs `sql`, which returns one number, and returns it.
    pub(crate) async fn float(ctx: &SessionContext, sql: &str) -> Option<f64> {
        let values = floats(ctx, sql).await;
        assert_eq!(values.len(), 1, "{sql} returns one row");
        values[0]
    }

    /// Runs `sql` and returns the first column as text, in row order.
    pub(crate) async fn texts(ctx: &SessionContext, sql: &str) -> Vec<Option<String>> {
        let mut values = Vec::new();
        for batch in run(ctx, sql).await {
            let column = arrow::compute::cast(batch.column(0), &DataType::Utf8)
                .unwrap_or_else(|error| panic!("{sql}: the first column is not text: {error}"));
            values.extend(
                column
                    .as_string::<i32>()
                    .iter()
                    .map(|value| value.map(str::to_string)),
            );
        }
        values
    }

    /// Plans and runs `sql`, which must fail, and returns the error message.
    pub(crate) async fn error(ctx: &SessionContext, sql: &str) -> String {
        let result = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => panic!("{sql} should fail"),
            Err(error) => error.strip_backtrace(),
        }
    }

    /// Asserts that `actual` is within 1e-9 of `expected`, or both are NULL.
    pub(crate) fn assert_close(actual: Option<f64>, expected: Option<f64>, what: &str) {
        match (actual, expected) {
            (Some(actual), Some(expected)) => assert!(
                (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{what}: expected {expected}, got {actual}"
            ),
            _ => assert_eq!(actual, expected, "{what}"),
        }
    }
}
