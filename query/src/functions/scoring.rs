//! Scalar functions that score a value against a baseline.
//!
//! | function | kind | result |
//! |---|---|---|
//! | `zscore(x, mean, stddev)` | scalar | `(x - mean) / stddev`, `DOUBLE` |
//! | `robust_zscore(x, median, mad)` | scalar | `0.6745 * (x - median) / mad`, `DOUBLE` |
//!
//! Both take any integer, float or decimal arguments, computed as `DOUBLE`,
//! and return NULL when an argument is NULL or the spread (`stddev` or
//! `mad`) is 0, negative or NaN. A spread of 0 comes from a constant
//! baseline, such as a partner that made exactly 12 calls in every Monday
//! 09:00 hour. Such a baseline has no spread to scale a deviation by, and any
//! other value would be infinitely far off, so the score is NULL and the
//! analyst compares the value with the mean or median instead.
//!
//! `robust_zscore` is the modified z-score of Iglewicz and Hoaglin. It takes
//! the MAD unscaled, as `consumer_baselines` stores it and `mad(x)` returns
//! it. The factor 0.6745 is the 0.75 quantile of the standard normal
//! distribution, so for normally distributed data the score is on the scale
//! of an ordinary z-score. Iglewicz and Hoaglin suggest 3.5 in absolute value
//! as the cut-off for outliers. A minority of extreme hours barely moves the
//! median and the MAD, so one burst in the baseline window does not hide the
//! next.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{float64_argument, scalar_result};

/// Factor of the modified z-score: the 0.75 quantile of the standard normal distribution.
const MODIFIED_Z_FACTOR: f64 = 0.6745;

/// Returns the scoring functions, for registration.
pub fn scoring_functions() -> Vec<ScalarUDF> {
    [Score::Standard, Score::Robust]
        .into_iter()
        .map(|score| ScalarUDF::new_from_impl(ScoreFunction::new(score)))
        .collect()
}

/// The score that a [`ScoreFunction`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Score {
    /// `zscore(x, mean, stddev)`.
    Standard,
    /// `robust_zscore(x, median, mad)`.
    Robust,
}

impl Score {
    fn name(self) -> &'static str {
        match self {
            Score::Standard => "zscore",
            Score::Robust => "robust_zscore",
        }
    }

    /// Scores `x` against `center` and `spread`, or returns `None` when the spread is not positive.
    fn compute(self, x: f64, center: f64, spread: f64) -> Option<f64> {
        if spread.is_nan() || spread <= 0.0 {
            return None;
        }
        let deviation = (x - center) / spread;
        Some(match self {
            Score::Standard => deviation,
            Score::Robust => MODIFIED_Z_FACTOR * deviation,
        })
    }
}

/// `zscore` or `robust_zscore`: three numbers in, one `DOUBLE` out.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ScoreFunction {
    score: Score,
    signature: Signature,
}

impl ScoreFunction {
    fn new(score: Score) -> Self {
        ScoreFunction {
            score,
            signature: Signature::coercible(vec![float64_argument(); 3], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ScoreFunction {
    fn name(&self) -> &str {
        self.score.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // A NULL literal arrives as the Null type; the cast makes it a NULL DOUBLE.
        let numbers = arrays
            .iter()
            .map(|array| cast(array, &DataType::Float64))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let [x, center, spread] = [&numbers[0], &numbers[1], &numbers[2]]
            .map(|array| array.as_primitive::<Float64Type>());
        let scores: Float64Array = x
            .iter()
            .zip(center.iter())
            .zip(spread.iter())
            .map(|((x, center), spread)| self.score.compute(x?, center?, spread?))
            .collect();
        scalar_result(&args.args, Arc::new(scores))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, Int64Array, RecordBatch, UInt16Array};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;

    use super::*;
    use crate::functions::test_support::{assert_close, error, float, floats, session};

    #[tokio::test]
    async fn zscore_known_values() {
        let ctx = session();
        assert_eq!(float(&ctx, "SELECT zscore(14, 10, 2)").await, Some(2.0));
        assert_eq!(float(&ctx, "SELECT zscore(7.5, 10, 2.5)").await, Some(-1.0));
        assert_eq!(float(&ctx, "SELECT zscore(10, 10, 3)").await, Some(0.0));
    }

    #[tokio::test]
    async fn zscore_nulls_and_no_spread() {
        let ctx = session();
        for sql in [
            "SELECT zscore(NULL, 10, 2)",
            "SELECT zscore(14, NULL, 2)",
            "SELECT zscore(14, 10, NULL)",
            "SELECT zscore(14, 10, 0)",
            "SELECT zscore(14, 10, -2)",
            "SELECT zscore(14, 10, 'NaN'::double)",
        ] {
            assert_eq!(float(&ctx, sql).await, None, "{sql}");
        }
    }

    #[tokio::test]
    async fn robust_zscore_known_values() {
        let ctx = session();
        assert_close(
            float(&ctx, "SELECT robust_zscore(20, 10, 2)").await,
            Some(0.6745 * 5.0),
            "five MADs above the median",
        );
        assert_close(
            float(&ctx, "SELECT robust_zscore(4, 10, 3)").await,
            Some(-0.6745 * 2.0),
            "two MADs below the median",
        );
    }

    #[tokio::test]
    async fn robust_zscore_nulls_and_no_spread() {
        let ctx = session();
        for sql in [
            "SELECT robust_zscore(NULL, 10, 2)",
            "SELECT robust_zscore(20, NULL, 2)",
            "SELECT robust_zscore(20, 10, NULL)",
            "SELECT robust_zscore(20, 10, 0)",
            "SELECT robust_zscore(20, 10, -1)",
        ] {
            assert_eq!(float(&ctx, sql).await, None, "{sql}");
        }
    }

    #[tokio::test]
    async fn scores_over_columns_of_mixed_types() {
        let ctx = session();
        let schema = Arc::new(Schema::new(vec![
            Field::new("calls", DataType::Int64, true),
            Field::new("mean", DataType::Float32, true),
            Field::new("spread", DataType::UInt16, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![Some(30), None, Some(5), Some(9)])),
                Arc::new(Float32Array::from(vec![
                    Some(10.0),
                    Some(10.0),
                    Some(5.0),
                    Some(1.5),
                ])),
                Arc::new(UInt16Array::from(vec![Some(4), Some(4), Some(0), Some(3)])),
            ],
        )
        .expect("columns match the schema");
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("one partition");
        ctx.register_table("hours", Arc::new(table))
            .expect("a new table name");

        let z = floats(&ctx, "SELECT zscore(calls, mean, spread) FROM hours").await;
        assert_eq!(z, vec![Some(5.0), None, None, Some(2.5)]);
        let robust = floats(&ctx, "SELECT robust_zscore(calls, mean, spread) FROM hours").await;
        assert_close(robust[0], Some(0.6745 * 5.0), "first row");
        assert_eq!(robust[1], None, "NULL calls");
        assert_eq!(robust[2], None, "MAD of 0");
        assert_close(robust[3], Some(0.6745 * 2.5), "fourth row");

        let with_literal = floats(&ctx, "SELECT zscore(calls, 10, 4) FROM hours").await;
        assert_eq!(
            with_literal,
            vec![Some(5.0), None, Some(-1.25), Some(-0.25)],
            "a column mixed with constants"
        );
    }

    #[tokio::test]
    async fn scores_accept_decimals() {
        let ctx = session();
        assert_eq!(
            float(
                &ctx,
                "SELECT zscore(CAST(3.5 AS DECIMAL(5, 2)), CAST(1.5 AS DECIMAL(5, 2)), 1)"
            )
            .await,
            Some(2.0)
        );
    }

    #[tokio::test]
    async fn scores_reject_text_and_arity() {
        let ctx = session();
        let message = error(&ctx, "SELECT zscore('a', 1, 2)").await;
        assert!(message.contains("zscore"), "names the function: {message}");
        let message = error(&ctx, "SELECT robust_zscore(1, 2)").await;
        assert!(
            message.contains("robust_zscore"),
            "names the function: {message}"
        );
    }
}
