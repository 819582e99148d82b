//! Helpers shared by the benches: a seeded generator, number formatting and
//! one-value queries.

#![allow(dead_code, reason = "each bench uses a different part of this module")]

use anyhow::Context;

/// SplitMix64, a small PRNG whose output depends only on the seed.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`. The modulo bias is negligible for bounds far below 2^64.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Returns a number in `low..=high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// Returns a float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub(crate) fn uuid(&mut self) -> String {
        let high = self.next_u64();
        let low = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0x0fff,
            0x8000 | ((low >> 48) & 0x3fff),
            low & 0xffff_ffff_ffff
        )
    }
}

/// Formats a count with thousands separators: `1234567` becomes `1,234,567`.
pub(crate) fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Runs `sql` and returns its first batch.
async fn first_batch(
    engine: &apitrail_query::QueryEngine,
    sql: &str,
) -> anyhow::Result<arrow::record_batch::RecordBatch> {
    let stream = engine.execute(sql).await?;
    let batches: Vec<arrow::record_batch::RecordBatch> =
        futures::TryStreamExt::try_collect(stream).await?;
    batches
        .into_iter()
        .next()
        .with_context(|| format!("the query returned no batch: {sql}"))
}

pub(crate) async fn query_count(
    engine: &apitrail_query::QueryEngine,
    sql: &str,
) -> anyhow::Result<u64> {
    let batch = first_batch(engine, sql).await?;
    let column = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .context("count(*) is a BIGINT")?;
    Ok(column.value(0) as u64)
}

pub(crate) async fn first_text(
    engine: &apitrail_query::QueryEngine,
    sql: &str,
) -> anyhow::Result<String> {
    let batch = first_batch(engine, sql).await?;
    let column = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .context("the first column is text")?;
    Ok(column.value(0).to_string())
}
