//! SQL functions over the mergeable sketches of the views.
//!
//! | function | kind | result |
//! |---|---|---|
//! | `distinct_sketch(x)`, alias `approx_distinct_sketch(x)` | aggregate | binary distinct-count sketch of the values of `x` |
//! | `distinct_merge(sketch)`, alias `approx_distinct_merge(sketch)` | aggregate | the union of distinct sketches, itself a distinct sketch |
//! | `distinct_count(sketch)` | scalar | the estimate of a distinct sketch, `BIGINT` |
//! | `quantile_sketch(x)` | aggregate | binary quantile sketch of the numbers `x` |
//! | `quantile_merge(sketch)` | aggregate | the quantile sketch merge: one quantile sketch of all the values of the input sketches |
//! | `sketch_quantile(sketch, q)` | scalar | the value at quantile `q` (0 to 1), `DOUBLE` |
//!
//! The sketches are those of [`apitrail_storage::sketch`]: distinct counts
//! are exact up to 128 values and within about 1.6 % beyond, quantiles
//! within 1 % of the true value. NULL inputs are skipped; a sketch argument
//! that is not a sketch fails the query with the reason.

use std::sync::Arc;

use apitrail_storage::sketch::{DistinctSketch, QuantileSketch, SketchError};
use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// Every sketch function, for registration in a session.
pub fn sketch_functions() -> (Vec<ScalarUDF>, Vec<AggregateUDF>) {
    let scalars = vec![
        ScalarUDF::new_from_impl(DistinctCount::new()),
        ScalarUDF::new_from_impl(SketchQuantile::new()),
    ];
    // The `approx_` aliases name the distinct sketches the way analysts
    // search for approximate distinct counts.
    let aggregates = [
        (
            "distinct_sketch",
            Some("approx_distinct_sketch"),
            SketchKind::Distinct,
            Input::Values,
        ),
        (
            "distinct_merge",
            Some("approx_distinct_merge"),
            SketchKind::Distinct,
            Input::Sketches,
        ),
        ("quantile_sketch", None, SketchKind::Quantile, Input::Values),
        (
            "quantile_merge",
            None,
            SketchKind::Quantile,
            Input::Sketches,
        ),
    ]
    .into_iter()
    .map(|(name, alias, kind, input)| {
        let function = AggregateUDF::new_from_impl(SketchAggregate::new(name, kind, input));
        match alias {
            Some(alias) => function.with_aliases([alias]),
            None => function,
        }
    })
    .collect();
    (scalars, aggregates)
}

fn sketch_error(error: SketchError) -> DataFusionError {
    DataFusionError::Execution(error.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SketchKind {
    Distinct,
    Quantile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Input {
    /// Raw values to sketch.
    Values,
    /// Sketches to merge.
    Sketches,
}

/// One of the four sketch-building aggregates.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchAggregate {
    name: &'static str,
    kind: SketchKind,
    input: Input,
    signature: Signature,
}

impl SketchAggregate {
    fn new(name: &'static str, kind: SketchKind, input: Input) -> Self {
        let signature = match (kind, input) {
            (_, Input::Sketches) => Signature::exact(vec![DataType::Binary], Volatility::Immutable),
            (SketchKind::Quantile, Input::Values) => {
                Signature::exact(vec![DataType::Float64], Volatility::Immutable)
            }
            (SketchKind::Distinct, Input::Values) => Signature::any(1, Volatility::Immutable),
        };
        SketchAggregate {
            name,
            kind,
            input,
            signature,
        }
    }
}

impl AggregateUDFImpl for SketchAggregate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[sketch]", args.name),
            DataType::Binary,
            true,
        ))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(match self.kind {
            SketchKind::Distinct => Box::new(DistinctAccumulator {
                sketch: DistinctSketch::new(),
                input: self.input,
            }),
            SketchKind::Quantile => Box::new(QuantileAccumulator {
                sketch: QuantileSketch::new(),
                input: self.input,
            }),
        })
    }
}

#[derive(Debug)]
struct DistinctAccumulator {
    sketch: DistinctSketch,
    input: Input,
}

impl DistinctAccumulator {
    fn merge_sketches(&mut self, sketches: &ArrayRef) -> Result<()> {
        let sketches = sketches.as_binary::<i32>();
        for bytes in sketches.iter().flatten() {
            self.sketch.merge_bytes(bytes).map_err(sketch_error)?;
        }
        Ok(())
    }
}

impl Accumulator for DistinctAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if self.input == Input::Sketches {
            return self.merge_sketches(&values[0]);
        }
        let values = &values[0];
        match values.data_type() {
            DataType::Binary => {
                for bytes in values.as_binary::<i32>().iter().flatten() {
                    self.sketch.insert(bytes);
                }
            }
            _ => {
                // Every other type is hashed by its text form, so `42` and
                // `'42'` count as one value, as they do in object ids.
                let text = cast(values, &DataType::Utf8)?;
                for value in text.as_string::<i32>().iter().flatten() {
                    self.sketch.insert(value.as_bytes());
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(self.sketch.to_bytes())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + match &self.sketch {
                DistinctSketch::Sparse(hashes) => hashes.capacity() * 8,
                DistinctSketch::Dense(_) => 4096,
            }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.merge_sketches(&states[0])
    }
}

#[derive(Debug)]
struct QuantileAccumulator {
    sketch: QuantileSketch,
    input: Input,
}

impl QuantileAccumulator {
    fn merge_sketches(&mut self, sketches: &ArrayRef) -> Result<()> {
        for bytes in sketches.as_binary::<i32>().iter().flatten() {
            self.sketch.merge_bytes(bytes).map_err(sketch_error)?;
        }
        Ok(())
    }
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if self.input == Input::Sketches {
            return self.merge_sketches(&values[0]);
        }
        for value in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.sketch.insert(value);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(self.sketch.to_bytes())))
    }

    fn size(&self) -> usize {
        // Each bucket is a B-tree entry of a 4-byte index and an 8-byte
        // count, about 24 bytes with the node overhead. DataFusion calls
        // `size` after every batch of every group, so it counts buckets
        // rather than encoding the sketch.
        std::mem::size_of_val(self) + self.sketch.bucket_count() * 24
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.merge_sketches(&states[0])
    }
}

/// `distinct_count(sketch)`: the estimate of a distinct sketch.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DistinctCount {
    signature: Signature,
}

impl DistinctCount {
    fn new() -> Self {
        DistinctCount {
            signature: Signature::exact(vec![DataType::Binary], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DistinctCount {
    fn name(&self) -> &str {
        "distinct_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let sketches = args.args[0].to_array(args.number_rows)?;
        let sketches: &BinaryArray = sketches.as_binary();
        let estimates = sketches
            .iter()
            .map(|bytes| {
                bytes
                    .map(|bytes| {
                        DistinctSketch::from_bytes(bytes)
                            .map(|sketch| sketch.estimate() as i64)
                            .map_err(sketch_error)
                    })
                    .transpose()
            })
            .collect::<Result<Int64Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(estimates)))
    }
}

/// `sketch_quantile(sketch, q)`: the value at quantile `q` of a quantile sketch.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchQuantile {
    signature: Signature,
}

impl SketchQuantile {
    fn new() -> Self {
        SketchQuantile {
            signature: Signature::one_of(
                vec![TypeSignature::Exact(vec![
                    DataType::Binary,
                    DataType::Float64,
                ])],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for SketchQuantile {
    fn name(&self) -> &str {
        "sketch_quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let sketches = args.args[0].to_array(args.number_rows)?;
        let quantiles = args.args[1].to_array(args.number_rows)?;
        let sketches: &BinaryArray = sketches.as_binary();
        let quantiles: &Float64Array = quantiles.as_primitive();
        let mut values = Vec::with_capacity(sketches.len());
        for (bytes, q) in sketches.iter().zip(quantiles.iter()) {
            let (Some(bytes), Some(q)) = (bytes, q) else {
                values.push(None);
                continue;
            };
            if !(0.0..=1.0).contains(&q) {
                // A plan error, because the query is at fault, not the data.
                return plan_err!("sketch_quantile: quantile {q} is outside 0 to 1");
            }
            let sketch = QuantileSketch::from_bytes(bytes).map_err(sketch_error)?;
            values.push(sketch.quantile(q));
        }
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(values))))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    use crate::functions::test_support::{floats, run, session};

    #[tokio::test]
    async fn approx_aliases_match_names() {
        let ctx = session();
        let sql = "SELECT approx_distinct_sketch(x) = distinct_sketch(x) \
                   FROM (VALUES (1), (2), (2), (3)) t(x)";
        let batches = run(&ctx, sql).await;
        assert!(
            batches[0].column(0).as_boolean().value(0),
            "the alias builds the same sketch"
        );

        let sql = "SELECT distinct_count(approx_distinct_merge(sketch)) FROM ( \
                   SELECT g, approx_distinct_sketch(x) AS sketch \
                   FROM (VALUES (1, 'a'), (1, 'b'), (2, 'b'), (2, 'c')) t(g, x) GROUP BY g)";
        let batches = run(&ctx, sql).await;
        assert_eq!(
            batches[0].column(0).as_primitive::<Int64Type>().value(0),
            3,
            "a, b and c across the two sketches"
        );
    }

    #[tokio::test]
    async fn quantile_merge_of_sketches() {
        let ctx = session();
        let sql = "SELECT sketch_quantile(quantile_merge(sketch), 1.0) FROM ( \
                   SELECT g, quantile_sketch(x) AS sketch \
                   FROM (VALUES (1, 2.0), (1, 4.0), (2, 8.0)) t(g, x) GROUP BY g)";
        assert_eq!(
            floats(&ctx, sql).await,
            vec![Some(8.0)],
            "the maximum over both sketches is exact"
        );
    }
}
