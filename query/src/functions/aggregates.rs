//! Aggregate functions that describe the calls of a group, for anomaly scoring.
//!
//! | function | kind | result |
//! |---|---|---|
//! | `mad(x)` | aggregate | median absolute deviation of the numbers `x`, unscaled, `DOUBLE` |
//! | `entropy(x)` | aggregate | normalised Shannon entropy of the values of `x`, 0 to 1, `DOUBLE` |
//! | `sequential_ratio(id)` | aggregate | share of consecutive integers among the distinct ids, 0 to 1, `DOUBLE` |
//!
//! All three skip NULL inputs and return NULL when nothing is left to
//! describe. DataFusion aggregates in two phases: partial accumulators per
//! input partition send their state to final accumulators, which merge it.
//! Each state here is exact, so the result does not depend on how the rows
//! were split:
//!
//! - `mad` keeps every number. Its memory grows with the rows of the group,
//!   like `median`.
//! - `entropy` keeps a count per distinct value, keyed by the value's Arrow
//!   row encoding. Values are distinct when their encodings differ, so for
//!   floats `0.0` and `-0.0` are two values.
//! - `sequential_ratio` keeps the set of distinct ids.
//!
//! `mad` follows the definition of `consumer_baselines`: the median of the
//! absolute deviations from the median, where the median of an even count is
//! the mean of the middle two values, and no 1.4826 scale factor is applied.
//! NaN inputs are skipped, since no deviation can be measured from them.
//!
//! `entropy` is `H / ln(k)` for `k` distinct values with `H = -Σ p ln p`
//! over their shares `p`: 1 when every value is equally common, near 0 when
//! one value dominates, and 0 for a single value. With `DISTINCT`, every
//! value counts once, so the result is 1 for two or more values.
//!
//! `sequential_ratio` sorts the distinct ids and divides the adjacent pairs
//! that differ by exactly 1 by the number of pairs. A partner that walks
//! order ids 10001, 10002, 10003 scores near 1, and ids drawn at random from a
//! wide range score near 0. Integer columns are read as they are, and text is
//! read as an optionally signed decimal integer of at most 38 significant
//! digits. Other text, such as a UUID or a slug, is skipped, so the function
//! can be given every object id taken from a path.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Decimal128Array, Float64Array, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Float64Type, UInt64Type};
use arrow::row::{RowConverter, SortField};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{DataFusionError, Result, ScalarValue, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Coercion, Signature, TypeSignature,
    TypeSignatureClass, Volatility,
};

use super::{float64_argument, text_argument, text_values};
use crate::baselines::median_in_place;

/// Precision of the `Decimal128` ids in the state of `sequential_ratio`, its maximum.
const ID_PRECISION: u8 = 38;

/// Returns the aggregate functions of this module, for registration.
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(Mad::new()),
        AggregateUDF::new_from_impl(Entropy::new()),
        AggregateUDF::new_from_impl(SequentialRatio::new()),
    ]
}

/// Builds a state field that contains a list of `item_type` values.
fn list_state_field(args: &StateFieldsArgs, part: &str, item_type: DataType) -> FieldRef {
    Arc::new(Field::new(
        format!("{}[{part}]", args.name),
        DataType::List(Arc::new(Field::new_list_field(item_type, true))),
        true,
    ))
}

/// Wraps `values` as the one-row list that a list state field holds.
fn list_state(values: ArrayRef) -> ScalarValue {
    SingleRowListArrayBuilder::new(values).build_list_scalar()
}

/// `mad(x)`: the median absolute deviation.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mad {
    signature: Signature,
}

impl Mad {
    fn new() -> Self {
        Mad {
            signature: Signature::coercible(vec![float64_argument()], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Mad {
    fn name(&self) -> &str {
        "mad"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![list_state_field(&args, "values", DataType::Float64)])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MadAccumulator {
            values: Vec::new(),
            distinct: args.is_distinct,
        }))
    }
}

#[derive(Debug)]
struct MadAccumulator {
    values: Vec<f64>,
    /// `mad(DISTINCT x)`: duplicates are removed before the median is taken.
    distinct: bool,
}

impl Accumulator for MadAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let numbers = cast(&values[0], &DataType::Float64)?;
        let numbers = numbers.as_primitive::<Float64Type>();
        self.values
            .extend(numbers.iter().flatten().filter(|value| !value.is_nan()));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            let numbers = list.as_primitive::<Float64Type>();
            self.values.extend(numbers.iter().flatten());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = Float64Array::from(self.values.clone());
        Ok(vec![list_state(Arc::new(values))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.distinct {
            self.values.sort_by(f64::total_cmp);
            self.values.dedup_by(|a, b| a.total_cmp(b).is_eq());
        }
        Ok(ScalarValue::Float64(mad_of(&mut self.values)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f64>()
    }
}

/// Returns the median absolute deviation of `values`, reordering them, or `None` when empty.
fn mad_of(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let median = median_in_place(values);
    let mut deviations: Vec<f64> = values.iter().map(|value| (value - median).abs()).collect();
    Some(median_in_place(&mut deviations))
}

/// `entropy(x)`: the normalised Shannon entropy of the values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Entropy {
    signature: Signature,
}

impl Entropy {
    fn new() -> Self {
        Entropy {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Entropy {
    fn name(&self) -> &str {
        "entropy"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            list_state_field(&args, "values", DataType::Binary),
            list_state_field(&args, "counts", DataType::UInt64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(field) = args.expr_fields.first() else {
            return internal_err!("entropy takes one argument");
        };
        let data_type = field.data_type().clone();
        let converter = RowConverter::new(vec![SortField::new(data_type.clone())]).map_err(|_| {
            DataFusionError::Plan(format!(
                "entropy: values of type {data_type} cannot be compared; cast them to text first"
            ))
        })?;
        Ok(Box::new(EntropyAccumulator {
            data_type,
            converter,
            counts: HashMap::new(),
            key_bytes: 0,
            distinct: args.is_distinct,
        }))
    }
}

#[derive(Debug)]
struct EntropyAccumulator {
    /// Type of the input column, the one `converter` encodes.
    data_type: DataType,
    converter: RowConverter,
    /// Calls per distinct value, keyed by the value's row encoding.
    counts: HashMap<Box<[u8]>, u64>,
    /// Bytes of all keys of `counts`, for [`Accumulator::size`].
    key_bytes: usize,
    /// `entropy(DISTINCT x)`: every value counts once.
    distinct: bool,
}

impl EntropyAccumulator {
    fn add(&mut self, key: &[u8], count: u64) {
        match self.counts.get_mut(key) {
            Some(total) => *total += count,
            None => {
                self.key_bytes += key.len();
                self.counts.insert(key.into(), count);
            }
        }
    }
}

impl Accumulator for EntropyAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = &values[0];
        if array.data_type() == &DataType::Null {
            return Ok(());
        }
        if array.data_type() != &self.data_type {
            return internal_err!(
                "entropy expected values of type {}, got {}",
                self.data_type,
                array.data_type()
            );
        }
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(array))?;
        let nulls = array.logical_nulls();
        for index in 0..array.len() {
            if nulls.as_ref().is_some_and(|nulls| nulls.is_null(index)) {
                continue;
            }
            self.add(rows.row(index).as_ref(), 1);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let keys = states[0].as_list::<i32>();
        let counts = states[1].as_list::<i32>();
        for (keys, counts) in keys.iter().zip(counts.iter()) {
            let (Some(keys), Some(counts)) = (keys, counts) else {
                continue;
            };
            let keys = keys.as_binary::<i32>();
            let counts = counts.as_primitive::<UInt64Type>();
            if keys.len() != counts.len() {
                return internal_err!(
                    "entropy state has {} values but {} counts",
                    keys.len(),
                    counts.len()
                );
            }
            for (key, count) in keys.iter().zip(counts.iter()) {
                if let (Some(key), Some(count)) = (key, count) {
                    self.add(key, count);
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let keys: BinaryArray = self.counts.keys().map(|key| Some(key.as_ref())).collect();
        let counts: UInt64Array = self.counts.values().map(|&count| Some(count)).collect();
        Ok(vec![
            list_state(Arc::new(keys)),
            list_state(Arc::new(counts)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let counts: Vec<u64> = if self.distinct {
            vec![1; self.counts.len()]
        } else {
            self.counts.values().copied().collect()
        };
        Ok(ScalarValue::Float64(normalised_entropy(&counts)))
    }

    fn size(&self) -> usize {
        let entry = std::mem::size_of::<(Box<[u8]>, u64)>() + 1;
        std::mem::size_of_val(self)
            + self.converter.size()
            + self.key_bytes
            + self.counts.capacity() * entry
    }
}

/// Returns `H / ln(k)` of the counts of `k` distinct values, 0 when `k` is 1, `None` when 0.
fn normalised_entropy(counts: &[u64]) -> Option<f64> {
    match counts.len() {
        0 => return None,
        1 => return Some(0.0),
        _ => {}
    }
    // Equal counts have an entropy of exactly ln(k), which the sum below
    // can miss by a rounding error, so an even spread returns exactly 1.
    if counts.iter().all(|&count| count == counts[0]) {
        return Some(1.0);
    }

    let total = counts.iter().map(|&count| count as f64).sum::<f64>();
    let entropy = counts
        .iter()
        .map(|&count| {
            let share = count as f64 / total;
            -share * share.ln()
        })
        .sum::<f64>();
    let maximum = (counts.len() as f64).ln();
    // Rounding can put a nearly even spread a hair above 1.
    Some((entropy / maximum).min(1.0))
}

/// `sequential_ratio(id)`: the share of consecutive ids.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SequentialRatio {
    signature: Signature,
}

impl SequentialRatio {
    fn new() -> Self {
        let integer = Coercion::new_exact(TypeSignatureClass::Integer);
        SequentialRatio {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![integer]),
                    TypeSignature::Coercible(vec![text_argument()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for SequentialRatio {
    fn name(&self) -> &str {
        "sequential_ratio"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![list_state_field(
            &args,
            "ids",
            DataType::Decimal128(ID_PRECISION, 0),
        )])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SequentialRatioAccumulator {
            ids: HashSet::new(),
        }))
    }
}

#[derive(Debug)]
struct SequentialRatioAccumulator {
    /// Distinct ids, each within 38 decimal digits.
    ids: HashSet<i128>,
}

impl Accumulator for SequentialRatioAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = &values[0];
        match array.data_type() {
            DataType::Null => {}
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                self.ids
                    .extend(text_values(array)?.flatten().filter_map(parse_decimal_id));
            }
            data_type if data_type.is_integer() => {
                // Every integer type up to 64 bits fits in 38 decimal digits.
                let ids = cast(array, &DataType::Decimal128(ID_PRECISION, 0))?;
                self.ids
                    .extend(ids.as_primitive::<Decimal128Type>().iter().flatten());
            }
            other => {
                return internal_err!("sequential_ratio takes integers or text, got {other}");
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            let ids = list.as_primitive::<Decimal128Type>();
            self.ids.extend(ids.iter().flatten());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let ids = Decimal128Array::from_iter_values(self.ids.iter().copied())
            .with_precision_and_scale(ID_PRECISION, 0)?;
        Ok(vec![list_state(Arc::new(ids))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut ids: Vec<i128> = self.ids.iter().copied().collect();
        ids.sort_unstable();
        Ok(ScalarValue::Float64(sequential_ratio_of_sorted(&ids)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.ids.capacity() * (std::mem::size_of::<i128>() + 1)
    }
}

/// Returns the share of adjacent pairs that differ by 1 in sorted distinct `ids`.
fn sequential_ratio_of_sorted(ids: &[i128]) -> Option<f64> {
    if ids.len() < 2 {
        return None;
    }
    let consecutive = ids
        .windows(2)
        .filter(|pair| pair[0].checked_add(1) == Some(pair[1]))
        .count();
    Some(consecutive as f64 / (ids.len() - 1) as f64)
}

/// Parses an optionally signed decimal integer of at most 38 significant digits.
fn parse_decimal_id(text: &str) -> Option<i128> {
    let digits = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if digits.trim_start_matches('0').len() > usize::from(ID_PRECISION) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray, UInt64Array};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    use super::*;
    use crate::functions::register_all;
    use crate::functions::test_support::{assert_close, error, float, floats, run, session};

    /// Median by the definition, sorting a copy: the mean of the middle two for an even count.
    fn naive_median(values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }
    }

    fn naive_mad(values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let median = naive_median(values);
        let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        Some(naive_median(&deviations))
    }

    fn naive_entropy(values: &[i64]) -> Option<f64> {
        let mut counts: std::collections::BTreeMap<i64, f64> = Default::default();
        for value in values {
            *counts.entry(*value).or_default() += 1.0;
        }
        let k = counts.len();
        if k == 0 {
            return None;
        }
        if k == 1 {
            return Some(0.0);
        }
        let n = values.len() as f64;
        let h: f64 = counts.values().map(|c| -(c / n) * (c / n).ln()).sum();
        Some(h / (k as f64).ln())
    }

    fn naive_sequential_ratio(ids: &[i64]) -> Option<f64> {
        let distinct: Vec<i64> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if distinct.len() < 2 {
            return None;
        }
        let mut consecutive = 0;
        for i in 1..distinct.len() {
            if i128::from(distinct[i]) - i128::from(distinct[i - 1]) == 1 {
                consecutive += 1;
            }
        }
        Some(consecutive as f64 / (distinct.len() - 1) as f64)
    }

    /// Registers `name(x)` from `values`, NULL where `None`.
    fn register_numbers(ctx: &SessionContext, name: &str, values: Vec<Option<f64>>) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Float64Array::from(values))],
        )
        .expect("column matches the schema");
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("one partition");
        ctx.register_table(name, Arc::new(table))
            .expect("a new table name");
    }

    #[tokio::test]
    async fn mad_known_values() {
        let ctx = session();
        register_numbers(&ctx, "odd", [0.0, 0.0, 1.0, 3.0, 6.0].map(Some).to_vec());
        assert_eq!(
            float(&ctx, "SELECT mad(x) FROM odd").await,
            Some(1.0),
            "median 1, deviations 1, 1, 0, 2, 5"
        );
        register_numbers(&ctx, "even", [4.0, 1.0, 3.0, 2.0].map(Some).to_vec());
        assert_eq!(
            float(&ctx, "SELECT mad(x) FROM even").await,
            Some(1.0),
            "median 2.5, deviations 1.5, 0.5, 0.5, 1.5"
        );
        register_numbers(&ctx, "constant", vec![Some(7.0); 5]);
        assert_eq!(float(&ctx, "SELECT mad(x) FROM constant").await, Some(0.0));
        register_numbers(&ctx, "single", vec![Some(-3.5)]);
        assert_eq!(float(&ctx, "SELECT mad(x) FROM single").await, Some(0.0));
    }

    #[tokio::test]
    async fn mad_matches_baselines_definition() {
        // The hourly calls of a partner: quiet hours and one burst.
        let calls = [12.0, 0.0, 15.0, 11.0, 0.0, 14.0, 240.0, 13.0];
        let ctx = session();
        register_numbers(&ctx, "hours", calls.map(Some).to_vec());
        let mut copy = calls.to_vec();
        let expected = mad_of(&mut copy);
        assert_eq!(expected, naive_mad(&calls), "the two definitions agree");
        assert_eq!(float(&ctx, "SELECT mad(x) FROM hours").await, expected);
    }

    #[tokio::test]
    async fn mad_skips_nulls_and_nan() {
        let ctx = session();
        register_numbers(
            &ctx,
            "gaps",
            vec![Some(1.0), None, Some(2.0), Some(f64::NAN), Some(4.0), None],
        );
        assert_eq!(
            float(&ctx, "SELECT mad(x) FROM gaps").await,
            naive_mad(&[1.0, 2.0, 4.0])
        );
        register_numbers(&ctx, "nothing", vec![None, None]);
        assert_eq!(float(&ctx, "SELECT mad(x) FROM nothing").await, None);
        assert_eq!(
            float(&ctx, "SELECT mad(x) FROM nothing WHERE x > 0").await,
            None,
            "no rows at all"
        );
        assert_eq!(float(&ctx, "SELECT mad(NULL)").await, None, "NULL literal");
    }

    #[tokio::test]
    async fn mad_distinct_and_types() {
        let ctx = session();
        register_numbers(
            &ctx,
            "repeats",
            [1.0, 1.0, 1.0, 2.0, 10.0].map(Some).to_vec(),
        );
        assert_eq!(
            float(&ctx, "SELECT mad(x) FROM repeats").await,
            Some(0.0),
            "median 1, deviations 0, 0, 0, 1, 9"
        );
        assert_eq!(
            float(&ctx, "SELECT mad(DISTINCT x) FROM repeats").await,
            naive_mad(&[1.0, 2.0, 10.0]),
            "1, 2 and 10 once each"
        );
        assert_eq!(
            float(&ctx, "SELECT mad(CAST(x AS INT)) FROM repeats").await,
            Some(0.0),
            "integers"
        );
        assert_eq!(
            float(
                &ctx,
                "SELECT mad(CAST(x AS DECIMAL(10, 2))) FROM repeats WHERE x > 1"
            )
            .await,
            Some(4.0),
            "decimals 2 and 10"
        );
        let message = error(&ctx, "SELECT mad('a')").await;
        assert!(message.contains("mad"), "names the function: {message}");
    }

    #[tokio::test]
    async fn entropy_known_values() {
        let ctx = session();
        let single_value = float(
            &ctx,
            "SELECT entropy(x) FROM (VALUES ('a'), ('a'), ('a')) t(x)",
        )
        .await;
        assert_eq!(single_value, Some(0.0), "a single value");
        let uniform = float(
            &ctx,
            "SELECT entropy(x) FROM (VALUES ('a'), ('b'), ('c'), ('a'), ('b'), ('c')) t(x)",
        )
        .await;
        assert_eq!(uniform, Some(1.0), "uniform over three values");
        let skewed = float(
            &ctx,
            "SELECT entropy(x) FROM (VALUES (1), (1), (1), (2)) t(x)",
        )
        .await;
        let expected = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln()) / 2f64.ln();
        assert_close(skewed, Some(expected), "three to one");
        let distinct = float(
            &ctx,
            "SELECT entropy(DISTINCT x) FROM (VALUES (1), (1), (1), (2)) t(x)",
        )
        .await;
        assert_eq!(distinct, Some(1.0), "DISTINCT counts each value once");
    }

    #[tokio::test]
    async fn entropy_nulls_and_types() {
        let ctx = session();

        let with_nulls = float(
            &ctx,
            "SELECT entropy(x) FROM (VALUES ('a'), (NULL), ('b'), (NULL)) t(x)",
        )
        .await;
        assert_eq!(with_nulls, Some(1.0), "NULLs are not a value");

        let only_nulls = float(
            &ctx,
            "SELECT entropy(x) FROM (VALUES (CAST(NULL AS VARCHAR)), (NULL)) t(x)",
        )
        .await;
        assert_eq!(only_nulls, None, "no values");
        assert_eq!(
            float(&ctx, "SELECT entropy(NULL)").await,
            None,
            "NULL literal"
        );

        let fractions = float(
            &ctx,
            "SELECT entropy(x) FROM (VALUES (0.5), (1.5), (0.5), (1.5)) t(x)",
        )
        .await;
        assert_eq!(fractions, Some(1.0), "floats");

        let timestamps = float(
            &ctx,
            "SELECT entropy(x) FROM (VALUES (TIMESTAMP '2024-06-03 10:00:00'), \
             (TIMESTAMP '2024-06-03 11:00:00')) t(x)",
        )
        .await;
        assert_eq!(timestamps, Some(1.0), "timestamps");

        let dictionary = float(
            &ctx,
            "SELECT entropy(arrow_cast(x, 'Dictionary(Int32, Utf8)')) \
             FROM (VALUES ('a'), ('b'), ('a'), ('b')) t(x)",
        )
        .await;
        assert_eq!(dictionary, Some(1.0), "dictionary-encoded text");
    }

    #[tokio::test]
    async fn sequential_ratio_known_values() {
        let ctx = session();
        let walk = float(
            &ctx,
            "SELECT sequential_ratio(x) FROM (VALUES (10003), (10001), (10002), (10004), (10002)) t(x)",
        )
        .await;
        assert_eq!(
            walk,
            Some(1.0),
            "ids 10001 to 10004 in any order, with a repeat"
        );
        let gaps = float(
            &ctx,
            "SELECT sequential_ratio(x) FROM (VALUES (1), (2), (3), (10), (20)) t(x)",
        )
        .await;
        assert_eq!(gaps, Some(0.5), "two of four pairs are consecutive");
        let none = float(
            &ctx,
            "SELECT sequential_ratio(x) FROM (VALUES (5), (50), (500)) t(x)",
        )
        .await;
        assert_eq!(none, Some(0.0));
        let negative = float(
            &ctx,
            "SELECT sequential_ratio(x) FROM (VALUES (-1), (0), (1)) t(x)",
        )
        .await;
        assert_eq!(negative, Some(1.0), "negative ids count too");
    }

    #[tokio::test]
    async fn sequential_ratio_fewer_than_two() {
        let ctx = session();
        for sql in [
            "SELECT sequential_ratio(x) FROM (VALUES (7), (7), (7)) t(x)",
            "SELECT sequential_ratio(x) FROM (VALUES (CAST(NULL AS BIGINT)), (NULL)) t(x)",
            "SELECT sequential_ratio(x) FROM (VALUES ('abc'), ('42')) t(x)",
            "SELECT sequential_ratio(NULL)",
        ] {
            assert_eq!(float(&ctx, sql).await, None, "{sql}");
        }
    }

    #[tokio::test]
    async fn sequential_ratio_text_ids() {
        let ctx = session();

        let from_paths = float(
            &ctx,
            "SELECT sequential_ratio(regexp_replace(path, '^.*/', '')) FROM (VALUES \
             ('/v1/orders/10001'), ('/v1/orders/10002'), ('/v1/orders/me'), \
             ('/v1/orders/10003'), ('/v1/orders/550e8400-e29b-41d4-a716-446655440000'), \
             ('/v1/orders/10005')) t(path)",
        )
        .await;
        assert_eq!(
            from_paths,
            Some(2.0 / 3.0),
            "10001, 10002, 10003 and 10005; words and UUIDs are skipped"
        );

        let signs_and_zeros = float(
            &ctx,
            "SELECT sequential_ratio(x) FROM (VALUES ('007'), ('+8'), ('-1'), ('0'), ('1.5'), (' 9'), ('')) t(x)",
        )
        .await;
        assert_eq!(
            signs_and_zeros,
            Some(2.0 / 3.0),
            "-1, 0, 7 and 8: two of three pairs"
        );

        let view = float(
            &ctx,
            "SELECT sequential_ratio(arrow_cast(x, 'Utf8View')) FROM (VALUES ('1'), ('2')) t(x)",
        )
        .await;
        assert_eq!(view, Some(1.0), "Utf8View");

        let large = float(
            &ctx,
            "SELECT sequential_ratio(arrow_cast(x, 'LargeUtf8')) FROM (VALUES ('1'), ('3')) t(x)",
        )
        .await;
        assert_eq!(large, Some(0.0), "LargeUtf8");
    }

    #[tokio::test]
    async fn sequential_ratio_integer_types() {
        let ctx = session();
        let unsigned = float(
            &ctx,
            "SELECT sequential_ratio(arrow_cast(x, 'UInt64')) FROM (VALUES \
             ('18446744073709551614'), ('18446744073709551615')) t(x)",
        )
        .await;
        assert_eq!(unsigned, Some(1.0), "the top of the UInt64 range");
        let small = float(
            &ctx,
            "SELECT sequential_ratio(arrow_cast(x, 'Int8')) FROM (VALUES (1), (2), (4)) t(x)",
        )
        .await;
        assert_eq!(small, Some(0.5), "Int8");
        let message = error(&ctx, "SELECT sequential_ratio(1.5)").await;
        assert!(
            message.contains("sequential_ratio"),
            "floats are rejected with the function name: {message}"
        );
    }

    #[test]
    fn decimal_ids_parse() {
        assert_eq!(parse_decimal_id("10001"), Some(10001));
        assert_eq!(parse_decimal_id("-42"), Some(-42));
        assert_eq!(parse_decimal_id("+42"), Some(42));
        assert_eq!(parse_decimal_id("0042"), Some(42));
        assert_eq!(parse_decimal_id(&"9".repeat(38)), Some(10i128.pow(38) - 1));
        assert_eq!(
            parse_decimal_id(&format!("000{}", "9".repeat(38))),
            Some(10i128.pow(38) - 1)
        );
        assert_eq!(parse_decimal_id(&"9".repeat(39)), None, "39 digits");
        for junk in ["", "-", "+", "1e3", "0x10", "12a", " 1", "1 ", "--1", "١٢"] {
            assert_eq!(parse_decimal_id(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn sequential_ratio_extremes_do_not_overflow() {
        let top = 10i128.pow(38) - 1;
        assert_eq!(sequential_ratio_of_sorted(&[-top, top]), Some(0.0));
        assert_eq!(sequential_ratio_of_sorted(&[top - 1, top]), Some(1.0));
    }

    /// Several partitions of several batches each, so that partial
    /// accumulators merge their state in the final aggregation.
    fn partitioned_calls(rows: &[(i32, i64, String)], partitions: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("grp", DataType::Int32, false),
            Field::new("value", DataType::Int64, true),
            Field::new("id", DataType::Utf8, true),
        ]));
        let mut batches_by_partition = vec![Vec::new(); partitions];
        for (index, chunk) in rows.chunks(7).enumerate() {
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int32Array::from_iter_values(chunk.iter().map(|r| r.0))),
                    Arc::new(Int64Array::from_iter(chunk.iter().map(|r| {
                        // Every eleventh value is NULL.
                        (r.1 % 11 != 0).then_some(r.1)
                    }))),
                    Arc::new(StringArray::from_iter_values(
                        chunk.iter().map(|r| r.2.as_str()),
                    )),
                ],
            )
            .expect("columns match the schema");
            batches_by_partition[index % partitions].push(batch);
        }
        MemTable::try_new(schema, batches_by_partition).expect("partitions share the schema")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aggregates_merge_across_partitions() {
        let config = SessionConfig::new()
            .with_target_partitions(4)
            .with_batch_size(16);
        let ctx = SessionContext::new_with_config(config);
        register_all(&ctx);

        // Group 0 walks ids in sequence, group 1 jumps, group 2 mixes text.
        let mut rows = Vec::new();
        for i in 0..300i64 {
            let group = (i % 3) as i32;
            let value = (i * 37) % 101;
            let id = match group {
                0 => (5000 + i / 3).to_string(),
                1 => (i * i * 13 % 100_003).to_string(),
                _ if i % 2 == 0 => format!("slug-{i}"),
                _ => (i / 2).to_string(),
            };
            rows.push((group, value, id));
        }
        ctx.register_table("calls", Arc::new(partitioned_calls(&rows, 4)))
            .expect("a new table name");

        let sql = "SELECT grp, mad(value), entropy(value), sequential_ratio(id) \
                   FROM calls GROUP BY grp ORDER BY grp";
        let plan = run(&ctx, &format!("EXPLAIN {sql}")).await;
        let plan = arrow::util::pretty::pretty_format_batches(&plan)
            .expect("a printable plan")
            .to_string();
        assert!(
            plan.contains("mode=Partial"),
            "the plan aggregates in two phases:\n{plan}"
        );

        let batches = run(&ctx, sql).await;
        let mut seen = 0;
        for batch in &batches {
            let groups = batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int32Type>();
            for row in 0..batch.num_rows() {
                let group = groups.value(row);
                let in_group: Vec<&(i32, i64, String)> =
                    rows.iter().filter(|r| r.0 == group).collect();
                let values: Vec<i64> = in_group
                    .iter()
                    .map(|r| r.1)
                    .filter(|v| v % 11 != 0)
                    .collect();
                let as_floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
                let ids: Vec<i64> = in_group.iter().filter_map(|r| r.2.parse().ok()).collect();

                let result = |column: usize| {
                    let numbers = batch.column(column).as_primitive::<Float64Type>();
                    numbers.is_valid(row).then(|| numbers.value(row))
                };
                assert_close(
                    result(1),
                    naive_mad(&as_floats),
                    &format!("mad of group {group}"),
                );
                assert_close(
                    result(2),
                    naive_entropy(&values),
                    &format!("entropy of group {group}"),
                );
                assert_close(
                    result(3),
                    naive_sequential_ratio(&ids),
                    &format!("sequential_ratio of group {group}"),
                );
                seen += 1;
            }
        }
        assert_eq!(seen, 3, "one row per group");
        let walk = floats(&ctx, "SELECT sequential_ratio(id) FROM calls WHERE grp = 0").await;
        assert_eq!(walk, vec![Some(1.0)], "group 0 walks ids one by one");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aggregates_empty_groups() {
        let config = SessionConfig::new().with_target_partitions(4);
        let ctx = SessionContext::new_with_config(config);
        register_all(&ctx);
        ctx.register_table("calls", Arc::new(partitioned_calls(&[], 4)))
            .expect("a new table name");
        let batches = run(
            &ctx,
            "SELECT mad(value), entropy(value), sequential_ratio(id) FROM calls",
        )
        .await;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 1, "an aggregate without GROUP BY returns one row");
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            for column in batch.columns() {
                assert!(column.is_null(0), "no values give NULL");
            }
        }
        let grouped = run(&ctx, "SELECT grp, mad(value) FROM calls GROUP BY grp").await;
        let rows: usize = grouped.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 0, "no groups");
    }

    /// Runs an accumulator over `chunks` the way two-phase aggregation does:
    /// one partial accumulator per chunk, their states merged into a final one.
    fn two_phase(
        make: impl Fn() -> Box<dyn Accumulator>,
        chunks: &[ArrayRef],
    ) -> Result<ScalarValue> {
        let mut last = make();
        for chunk in chunks {
            let mut partial = make();
            partial.update_batch(std::slice::from_ref(chunk))?;
            let state = partial.state()?;
            let arrays = state
                .iter()
                .map(ScalarValue::to_array)
                .collect::<Result<Vec<_>>>()?;
            last.merge_batch(&arrays)?;
        }
        last.evaluate()
    }

    fn split<T: Clone>(values: &[T], cuts: &[usize]) -> Vec<Vec<T>> {
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (values.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts {
            chunks.push(values[start..cut.max(start)].to_vec());
            start = cut.max(start);
        }
        chunks.push(values[start..].to_vec());
        chunks
    }

    proptest! {
        #[test]
        fn mad_two_phase_matches_naive(
            values in prop::collection::vec(prop_oneof![
                (-50i32..50).prop_map(f64::from),
                -1e6f64..1e6,
            ], 0..200),
            cuts in prop::collection::vec(0usize..200, 0..5),
        ) {
            let chunks: Vec<ArrayRef> = split(&values, &cuts)
                .into_iter()
                .map(|chunk| Arc::new(Float64Array::from(chunk)) as ArrayRef)
                .collect();
            let make = || -> Box<dyn Accumulator> {
                Box::new(MadAccumulator { values: Vec::new(), distinct: false })
            };
            let result = two_phase(make, &chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(result, ScalarValue::Float64(naive_mad(&values)));
        }

        #[test]
        fn sequential_ratio_two_phase_matches_naive(
            ids in prop::collection::vec(prop_oneof![
                0i64..40,
                any::<i64>(),
            ], 0..200),
            cuts in prop::collection::vec(0usize..200, 0..5),
            as_text in any::<bool>(),
        ) {
            let chunks: Vec<ArrayRef> = split(&ids, &cuts)
                .into_iter()
                .map(|chunk| {
                    if as_text {
                        Arc::new(StringArray::from_iter_values(chunk.iter().map(i64::to_string)))
                            as ArrayRef
                    } else {
                        Arc::new(Int64Array::from(chunk)) as ArrayRef
                    }
                })
                .collect();
            let make = || -> Box<dyn Accumulator> {
                Box::new(SequentialRatioAccumulator { ids: HashSet::new() })
            };
            let result = two_phase(make, &chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let expected = naive_sequential_ratio(&ids);
            match (result, expected) {
                (ScalarValue::Float64(Some(actual)), Some(expected)) => {
                    prop_assert!((actual - expected).abs() < 1e-12, "{} != {}", actual, expected);
                }
                (result, expected) => prop_assert_eq!(result, ScalarValue::Float64(expected)),
            }
        }

        #[test]
        fn entropy_two_phase_matches_naive(
            values in prop::collection::vec(0i64..12, 0..200),
            cuts in prop::collection::vec(0usize..200, 0..5),
        ) {
            let chunks: Vec<ArrayRef> = split(&values, &cuts)
                .into_iter()
                .map(|chunk| Arc::new(Int64Array::from(chunk)) as ArrayRef)
                .collect();
            let make = || -> Box<dyn Accumulator> {
                Box::new(EntropyAccumulator {
                    data_type: DataType::Int64,
                    converter: RowConverter::new(vec![SortField::new(DataType::Int64)])
                        .expect("Int64 has a row format"),
                    counts: HashMap::new(),
                    key_bytes: 0,
                    distinct: false,
                })
            };
            let result = two_phase(make, &chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let expected = naive_entropy(&values);
            match (result, expected) {
                (ScalarValue::Float64(Some(actual)), Some(expected)) => {
                    prop_assert!((actual - expected).abs() < 1e-12, "{} != {}", actual, expected);
                }
                (result, expected) => prop_assert_eq!(result, ScalarValue::Float64(expected)),
            }
        }
    }

    #[test]
    fn sequential_ratio_unsigned_state() {
        let ids: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX, u64::MAX - 1, 3]));
        let make = || -> Box<dyn Accumulator> {
            Box::new(SequentialRatioAccumulator {
                ids: HashSet::new(),
            })
        };
        let result = two_phase(make, &[ids]).expect("integers are accepted");
        assert_eq!(result, ScalarValue::Float64(Some(0.5)));
    }
}
