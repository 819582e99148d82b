//! Window functions over ordered series, such as a consumer's hourly calls.
//!
//! | function | kind | result |
//! |---|---|---|
//! | `ewma(x, alpha) OVER (PARTITION BY ... ORDER BY ...)` | window | exponentially weighted moving average of `x`, `DOUBLE` |
//!
//! `ewma` computes `s_1 = x_1` and `s_t = alpha * x_t + (1 - alpha) * s_{t-1}`
//! down each partition in the order of the window's `ORDER BY`. Without
//! `ORDER BY` the rows come in whatever order the plan produces them, so the
//! result is not reproducible. A larger `alpha` follows recent rows more
//! closely, and `alpha` 1 returns the latest non-NULL `x`. A NULL or NaN `x`
//! leaves the average unchanged, so rows before the first number are NULL and
//! a gap does not pull the average toward 0. The window frame is ignored: the
//! average always covers the partition from its first row to the current row.
//!
//! `alpha` must be a constant greater than 0 and at most 1. A column, NULL, or
//! a value outside that range fails the query with the bound.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::expressions::Literal;

use super::float64_argument;

/// Returns the window functions, for registration.
pub fn window_functions() -> Vec<WindowUDF> {
    vec![WindowUDF::new_from_impl(Ewma::new())]
}

/// `ewma(x, alpha)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Ewma {
    signature: Signature,
}

impl Ewma {
    fn new() -> Self {
        Ewma {
            signature: Signature::coercible(vec![float64_argument(); 2], Volatility::Immutable),
        }
    }
}

impl WindowUDFImpl for Ewma {
    fn name(&self) -> &str {
        "ewma"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        // NOTE: alpha is checked here, when a partition is evaluated, so a
        // query whose window receives no rows does not fail on a bad alpha.
        let Some(alpha) = args.input_exprs().get(1) else {
            return plan_err!("ewma takes two arguments, x and alpha");
        };
        // Constant folding turns a constant expression such as `1 / 4` into a literal.
        let Some(alpha) = alpha.downcast_ref::<Literal>() else {
            return plan_err!(
                "ewma: alpha must be a constant, such as 0.3, not {alpha}; \
                 use a number greater than 0 and at most 1"
            );
        };
        Ok(Box::new(EwmaEvaluator {
            alpha: smoothing_factor(alpha.value())?,
        }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }
}

/// Checks that `value` is a usable smoothing factor: a number greater than 0 and at most 1.
fn smoothing_factor(value: &ScalarValue) -> Result<f64> {
    match value.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(alpha)) if alpha > 0.0 && alpha <= 1.0 => Ok(alpha),
        ScalarValue::Float64(Some(alpha)) => plan_err!(
            "ewma: alpha {alpha} is outside the range (0, 1]; use a number greater than 0 and at most 1"
        ),
        _ => plan_err!("ewma: alpha is NULL; use a number greater than 0 and at most 1"),
    }
}

/// Computes the average down one partition, in the order of the window.
#[derive(Debug)]
struct EwmaEvaluator {
    alpha: f64,
}

impl PartitionEvaluator for EwmaEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let Some(x) = values.first() else {
            return plan_err!("ewma takes two arguments, x and alpha");
        };
        let x = cast(x, &DataType::Float64)?;
        let x = x.as_primitive::<Float64Type>();
        let mut average: Option<f64> = None;
        let mut averages = Vec::with_capacity(num_rows);
        for value in x.iter() {
            if let Some(value) = value.filter(|value| !value.is_nan()) {
                average = Some(match average {
                    None => value,
                    Some(previous) => self.alpha * value + (1.0 - self.alpha) * previous,
                });
            }
            averages.push(average);
        }
        Ok(Arc::new(Float64Array::from(averages)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, RecordBatch};
    use arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;
    use crate::functions::register_all;
    use crate::functions::test_support::{assert_close, error, floats, session};

    /// Reference: the recurrence written out over a slice.
    fn naive_ewma(values: &[Option<f64>], alpha: f64) -> Vec<Option<f64>> {
        let mut out = Vec::new();
        let mut state: Option<f64> = None;
        for value in values {
            if let Some(x) = value {
                state = Some(match state {
                    None => *x,
                    Some(s) => alpha * x + (1.0 - alpha) * s,
                });
            }
            out.push(state);
        }
        out
    }

    fn assert_all_close(actual: &[Option<f64>], expected: &[Option<f64>], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: row count");
        for (row, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert_close(*a, *e, &format!("{what}, row {row}"));
        }
    }

    /// Registers `series(consumer, hour, calls)` over `partitions` input partitions, rows shuffled.
    fn register_series(ctx: &SessionContext, rows: &[(&str, i32, Option<i32>)], partitions: usize) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("consumer", DataType::Utf8, false),
            Field::new("hour", DataType::Int32, false),
            Field::new("calls", DataType::Int32, true),
        ]));
        let mut by_partition = vec![Vec::new(); partitions];
        // Reversed and dealt out, so ORDER BY has work to do.
        for (index, row) in rows.iter().rev().enumerate() {
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(arrow::array::StringArray::from(vec![row.0])),
                    Arc::new(Int32Array::from(vec![row.1])),
                    Arc::new(Int32Array::from(vec![row.2])),
                ],
            )
            .expect("columns match the schema");
            by_partition[index % partitions].push(batch);
        }
        let table = MemTable::try_new(schema, by_partition).expect("partitions share the schema");
        ctx.register_table("series", Arc::new(table))
            .expect("a new table name");
    }

    #[tokio::test]
    async fn ewma_known_values() {
        let ctx = session();
        let rows = [
            ("a", 1, Some(10)),
            ("a", 2, Some(20)),
            ("a", 3, Some(20)),
            ("a", 4, Some(0)),
        ];
        register_series(&ctx, &rows, 1);
        let smoothed = floats(
            &ctx,
            "SELECT ewma(calls, 0.5) OVER (ORDER BY hour) FROM series ORDER BY hour",
        )
        .await;
        assert_eq!(
            smoothed,
            vec![Some(10.0), Some(15.0), Some(17.5), Some(8.75)]
        );
        let latest = floats(
            &ctx,
            "SELECT ewma(calls, 1) OVER (ORDER BY hour) FROM series ORDER BY hour",
        )
        .await;
        assert_eq!(
            latest,
            vec![Some(10.0), Some(20.0), Some(20.0), Some(0.0)],
            "alpha 1 follows x"
        );
    }

    #[tokio::test]
    async fn ewma_nulls_keep_previous() {
        let ctx = session();
        let rows = [
            ("a", 1, None),
            ("a", 2, None),
            ("a", 3, Some(8)),
            ("a", 4, None),
            ("a", 5, Some(4)),
        ];
        register_series(&ctx, &rows, 1);
        let smoothed = floats(
            &ctx,
            "SELECT ewma(calls, 0.25) OVER (ORDER BY hour) FROM series ORDER BY hour",
        )
        .await;
        assert_eq!(
            smoothed,
            vec![None, None, Some(8.0), Some(8.0), Some(7.0)],
            "NULL until the first number, then unchanged over gaps"
        );
        let nan = floats(
            &ctx,
            "SELECT ewma(x, 0.5) OVER (ORDER BY t) FROM (VALUES (1, 4.0), (2, 'NaN'::double), (3, 2.0)) v(t, x) ORDER BY t",
        )
        .await;
        assert_eq!(nan, vec![Some(4.0), Some(4.0), Some(3.0)], "NaN is skipped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ewma_partitions_in_order() {
        let config = SessionConfig::new().with_target_partitions(4);
        let ctx = SessionContext::new_with_config(config);
        register_all(&ctx);
        let mut rows = Vec::new();
        for hour in 0..40 {
            rows.push(("acme", hour, Some((hour * 7) % 13)));
            let globex = if hour % 5 == 0 {
                None
            } else {
                Some(100 - hour)
            };
            rows.push(("globex", hour, globex));
        }
        register_series(&ctx, &rows, 4);

        for consumer in ["acme", "globex"] {
            let sql = format!(
                "SELECT ewma(calls, 0.2) OVER (PARTITION BY consumer ORDER BY hour) AS s \
                 FROM series WHERE consumer = '{consumer}' ORDER BY hour"
            );
            let values: Vec<Option<f64>> = rows
                .iter()
                .filter(|r| r.0 == consumer)
                .map(|r| r.2.map(f64::from))
                .collect();
            assert_all_close(
                &floats(&ctx, &sql).await,
                &naive_ewma(&values, 0.2),
                consumer,
            );
        }

        // Both partitions in one query: each starts afresh.
        let both = floats(
            &ctx,
            "SELECT ewma(calls, 0.2) OVER (PARTITION BY consumer ORDER BY hour) \
             FROM series ORDER BY consumer, hour",
        )
        .await;
        let mut expected = Vec::new();
        for consumer in ["acme", "globex"] {
            let values: Vec<Option<f64>> = rows
                .iter()
                .filter(|r| r.0 == consumer)
                .map(|r| r.2.map(f64::from))
                .collect();
            expected.extend(naive_ewma(&values, 0.2));
        }
        assert_all_close(&both, &expected, "two partitions in one query");
    }

    #[tokio::test]
    async fn ewma_constant_expressions_and_types() {
        let ctx = session();
        let rows = [("a", 1, Some(4)), ("a", 2, Some(8))];
        register_series(&ctx, &rows, 1);
        let folded = floats(
            &ctx,
            "SELECT ewma(calls, 1.0 / 4) OVER (ORDER BY hour) FROM series ORDER BY hour",
        )
        .await;
        assert_eq!(folded, vec![Some(4.0), Some(5.0)], "alpha from 1.0 / 4");
        let decimal = floats(
            &ctx,
            "SELECT ewma(CAST(calls AS DECIMAL(10, 1)), CAST(0.5 AS DECIMAL(3, 2))) \
             OVER (ORDER BY hour) FROM series ORDER BY hour",
        )
        .await;
        assert_eq!(decimal, vec![Some(4.0), Some(6.0)], "decimals");
        let empty = floats(
            &ctx,
            "SELECT ewma(calls, 0.5) OVER (ORDER BY hour) FROM series WHERE hour > 10",
        )
        .await;
        assert!(empty.is_empty(), "no rows, no averages");
    }

    #[tokio::test]
    async fn ewma_rejects_bad_alpha() {
        let ctx = session();
        let rows = [("a", 1, Some(4)), ("a", 2, Some(8))];
        register_series(&ctx, &rows, 1);
        for alpha in ["0", "-0.5", "1.5", "'NaN'::double"] {
            let sql = format!("SELECT ewma(calls, {alpha}) OVER (ORDER BY hour) FROM series");
            let message = error(&ctx, &sql).await;
            assert!(
                message.contains("greater than 0 and at most 1"),
                "alpha {alpha}: {message}"
            );
        }
        let message = error(
            &ctx,
            "SELECT ewma(calls, NULL) OVER (ORDER BY hour) FROM series",
        )
        .await;
        assert!(message.contains("NULL"), "NULL alpha: {message}");
        let message = error(
            &ctx,
            "SELECT ewma(calls, hour / 10.0) OVER (ORDER BY hour) FROM series",
        )
        .await;
        assert!(
            message.contains("constant"),
            "alpha from a column: {message}"
        );
        let message = error(&ctx, "SELECT ewma('a', 0.5) OVER () FROM series").await;
        assert!(message.contains("ewma"), "text x: {message}");
    }

    #[test]
    fn alpha_bounds() {
        assert_eq!(
            smoothing_factor(&ScalarValue::Float64(Some(1.0))).ok(),
            Some(1.0)
        );
        assert_eq!(
            smoothing_factor(&ScalarValue::Int64(Some(1))).ok(),
            Some(1.0)
        );
        assert_eq!(
            smoothing_factor(&ScalarValue::Float64(Some(f64::MIN_POSITIVE))).ok(),
            Some(f64::MIN_POSITIVE)
        );
        assert!(smoothing_factor(&ScalarValue::Float64(Some(0.0))).is_err());
        assert!(smoothing_factor(&ScalarValue::Float64(Some(1.0 + f64::EPSILON))).is_err());
        assert!(smoothing_factor(&ScalarValue::Float64(None)).is_err());
        assert!(smoothing_factor(&ScalarValue::Null).is_err());
    }
}
