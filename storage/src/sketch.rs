//! Mergeable sketches stored in the view tables: distinct counts and quantiles.
//!
//! Both sketches are built per flush and per view key, stored as Parquet
//! binary values, and merged at query time, so merging must give the same
//! sketch as building from all the values at once. Both serialise to a
//! versioned byte format; decoding checks every length and returns an error,
//! never panics, on bytes that are not a sketch.
//!
//! # `DistinctSketch`
//!
//! A HyperLogLog of precision 12 (4,096 registers) over 64-bit XXH3 hashes
//! of the values, with an exact sparse mode: up to [`SPARSE_LIMIT`] distinct
//! hashes are kept as a sorted list and counted exactly, so small sets (the
//! client IPs of one consumer in one hour) cost a few bytes and no error.
//! Beyond that the dense registers give a standard error of about 1.6 %
//! (1.04 / sqrt(4096)), estimated with Ertl's improved raw estimator
//! ("New cardinality estimation algorithms for HyperLogLog sketches", 2017),
//! which needs no bias tables and is unbiased from small to large counts.
//!
//! Byte format, version 1: `0x01`, then a mode byte. Mode `0` (sparse):
//! a varint count, then that many hashes as varint deltas from the previous
//! hash in ascending order. Mode `1` (dense): 4,096 register bytes.
//!
//! # `QuantileSketch`
//!
//! A DDSketch-style log-bucket histogram with 1 % relative accuracy: a value
//! `x > 0` falls into bucket `ceil(log_gamma(x))` with `gamma = 1.01 / 0.99`,
//! and a quantile is answered with the bucket's midpoint in relative terms,
//! within 1 % of the true value of that rank. Values at or below
//! [`MIN_POSITIVE`] count in a zero bucket and negative values in a mirrored
//! store. Count, sum, minimum and maximum are kept exactly. Buckets merge by
//! adding counts, so merging is exact.
//!
//! Byte format, version 1: `0x01`, varint count, f64 sum, f64 min, f64 max
//! (little endian), varint zero count, then the positive and the negative
//! store, each as a varint bucket count followed by (zigzag varint index
//! delta, varint count) pairs in ascending index order.

use std::collections::BTreeMap;
use std::fmt;

use twox_hash::XxHash3_64;

/// Hashes beyond which a distinct sketch switches from exact to registers.
pub const SPARSE_LIMIT: usize = 128;

const PRECISION: u32 = 12;
const REGISTERS: usize = 1 << PRECISION;
/// Bits of the hash left after the register index.
const Q: u32 = 64 - PRECISION;

const FORMAT_VERSION: u8 = 1;
const MODE_SPARSE: u8 = 0;
const MODE_DENSE: u8 = 1;

/// Relative accuracy of quantile results.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this count in the zero bucket of a quantile sketch.
pub const MIN_POSITIVE: f64 = 1e-9;

/// Bytes that could not be decoded as a sketch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} sketch: {reason}")]
pub struct SketchError {
    kind: &'static str,
    reason: String,
}

impl SketchError {
    fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        SketchError {
            kind,
            reason: reason.into(),
        }
    }
}

/// Hashes a value for a [`DistinctSketch`]; stable across releases and machines.
pub fn hash_value(value: &[u8]) -> u64 {
    XxHash3_64::oneshot(value)
}

/// Approximate count of distinct values, exact up to [`SPARSE_LIMIT`].
#[derive(Clone, PartialEq, Eq)]
pub enum DistinctSketch {
    /// Sorted, deduplicated hashes.
    Sparse(Vec<u64>),
    /// HyperLogLog registers, each the rank of the first set bit (1-based).
    Dense(Box<[u8; REGISTERS]>),
}

impl Default for DistinctSketch {
    fn default() -> Self {
        DistinctSketch::Sparse(Vec::new())
    }
}

impl fmt::Debug for DistinctSketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistinctSketch::Sparse(hashes) => write!(f, "DistinctSketch::Sparse({})", hashes.len()),
            DistinctSketch::Dense(_) => write!(f, "DistinctSketch::Dense(~{})", self.estimate()),
        }
    }
}

impl DistinctSketch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value by its bytes.
    pub fn insert(&mut self, value: &[u8]) {
        self.insert_hash(hash_value(value));
    }

    /// Adds a value already hashed with [`hash_value`].
    pub fn insert_hash(&mut self, hash: u64) {
        match self {
            DistinctSketch::Sparse(hashes) => {
                if let Err(position) = hashes.binary_search(&hash) {
                    hashes.insert(position, hash);
                    if hashes.len() > SPARSE_LIMIT {
                        self.densify();
                    }
                }
            }
            DistinctSketch::Dense(registers) => update_register(registers, hash),
        }
    }

    fn densify(&mut self) {
        if let DistinctSketch::Sparse(hashes) = self {
            let mut registers = Box::new([0u8; REGISTERS]);
            for &hash in hashes.iter() {
                update_register(&mut registers, hash);
            }
            *self = DistinctSketch::Dense(registers);
        }
    }

    /// Adds every value of `other` to this sketch.
    pub fn merge(&mut self, other: &DistinctSketch) {
        match other {
            DistinctSketch::Sparse(hashes) => {
                for &hash in hashes {
                    self.insert_hash(hash);
                }
            }
            DistinctSketch::Dense(theirs) => {
                self.densify();
                if let DistinctSketch::Dense(ours) = self {
                    for (mine, their) in ours.iter_mut().zip(theirs.iter()) {
                        *mine = (*mine).max(*their);
                    }
                }
            }
        }
    }

    /// Estimated number of distinct values; exact in sparse mode.
    pub fn estimate(&self) -> u64 {
        match self {
            DistinctSketch::Sparse(hashes) => hashes.len() as u64,
            DistinctSketch::Dense(registers) => ertl_estimate(registers).round() as u64,
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, DistinctSketch::Sparse(_))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            DistinctSketch::Sparse(hashes) => {
                let mut out = Vec::with_capacity(4 + hashes.len() * 9);
                out.push(FORMAT_VERSION);
                out.push(MODE_SPARSE);
                put_varint(&mut out, hashes.len() as u64);
                let mut previous = 0u64;
                for &hash in hashes {
                    put_varint(&mut out, hash - previous);
                    previous = hash;
                }
                out
            }
            DistinctSketch::Dense(registers) => {
                let mut out = Vec::with_capacity(2 + REGISTERS);
                out.push(FORMAT_VERSION);
                out.push(MODE_DENSE);
                out.extend_from_slice(registers.as_slice());
                out
            }
        }
    }

    /// Adds the sketch that `bytes` encodes, as `merge(&from_bytes(bytes)?)`
    /// would, without copying a dense sketch's registers first.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        match bytes {
            [FORMAT_VERSION, MODE_DENSE, registers @ ..] if registers.len() == REGISTERS => {
                if registers.iter().any(|&r| u32::from(r) > Q + 1) {
                    return Err(SketchError::new("distinct", "register value out of range"));
                }
                self.densify();
                if let DistinctSketch::Dense(ours) = self {
                    for (mine, &their) in ours.iter_mut().zip(registers) {
                        *mine = (*mine).max(their);
                    }
                }
                Ok(())
            }
            _ => {
                self.merge(&DistinctSketch::from_bytes(bytes)?);
                Ok(())
            }
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let error = |reason: &str| SketchError::new("distinct", reason);
        let mut reader = Reader::new(bytes, "distinct");
        let version = reader.byte()?;
        if version != FORMAT_VERSION {
            return Err(error(&format!("unknown format version {version}")));
        }
        match reader.byte()? {
            MODE_SPARSE => {
                let count = reader.varint()?;
                if count > SPARSE_LIMIT as u64 {
                    return Err(error(&format!(
                        "sparse mode with {count} hashes, more than {SPARSE_LIMIT}"
                    )));
                }
                let mut hashes = Vec::with_capacity(count as usize);
                let mut previous = 0u64;
                for index in 0..count {
                    let delta = reader.varint()?;
                    if index > 0 && delta == 0 {
                        return Err(error("repeated hash in sparse mode"));
                    }
                    previous = previous
                        .checked_add(delta)
                        .ok_or_else(|| error("hash delta overflows"))?;
                    hashes.push(previous);
                }
                reader.finish()?;
                Ok(DistinctSketch::Sparse(hashes))
            }
            MODE_DENSE => {
                let body = reader.take(REGISTERS)?;
                reader.finish()?;
                let mut registers = Box::new([0u8; REGISTERS]);
                registers.copy_from_slice(body);
                if registers.iter().any(|&r| u32::from(r) > Q + 1) {
                    return Err(error("register value out of range"));
                }
                Ok(DistinctSketch::Dense(registers))
            }
            mode => Err(error(&format!("unknown mode {mode}"))),
        }
    }
}

fn update_register(registers: &mut [u8; REGISTERS], hash: u64) {
    let index = (hash >> Q) as usize;
    let rest = hash << PRECISION;
    // Rank of the first set bit among the Q remaining bits, Q + 1 if none is set.
    let rank = (rest.leading_zeros().min(Q) + 1) as u8;
    if registers[index] < rank {
        registers[index] = rank;
    }
}

/// Ertl's improved raw estimator over the register histogram.
fn ertl_estimate(registers: &[u8; REGISTERS]) -> f64 {
    let m = REGISTERS as f64;
    let mut histogram = [0u32; (Q + 2) as usize];
    for &register in registers.iter() {
        histogram[register as usize] += 1;
    }
    let q = Q as usize;
    let mut z = m * tau(1.0 - f64::from(histogram[q + 1]) / m);
    for k in (1..=q).rev() {
        z = 0.5 * (z + f64::from(histogram[k]));
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    let alpha_infinity = 1.0 / (2.0 * std::f64::consts::LN_2);
    alpha_infinity * m * m / z
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == previous {
            return z / 3.0;
        }
    }
}

/// Quantiles within [`RELATIVE_ACCURACY`], with exact count, sum, minimum and maximum.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSketch {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    zero_count: u64,
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        QuantileSketch {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zero_count: 0,
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
        }
    }
}

fn ln_gamma() -> f64 {
    let gamma = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
    gamma.ln()
}

fn bucket_of(magnitude: f64) -> i32 {
    (magnitude.ln() / ln_gamma()).ceil() as i32
}

/// Representative value of a bucket: within the relative accuracy of every value in it.
fn bucket_value(index: i32) -> f64 {
    let gamma = ln_gamma().exp();
    2.0 * gamma.powi(index) / (gamma + 1.0)
}

impl QuantileSketch {
    /// Number of non-empty buckets, which sizes the sketch in memory.
    pub fn bucket_count(&self) -> usize {
        self.positive.len() + self.negative.len()
    }

    /// Adds the sketch that `bytes` encodes, as `merge(&from_bytes(bytes)?)`
    /// would, without building its bucket maps first.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        let other = DecodedQuantiles::read(bytes)?;
        if other.count == 0 {
            return Ok(());
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero_count += other.zero_count;
        for (store, buckets) in [
            (&mut self.positive, &other.positive),
            (&mut self.negative, &other.negative),
        ] {
            for &(index, count) in buckets {
                *store.entry(index).or_default() += count;
            }
        }
        Ok(())
    }

    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value; NaN and infinities are ignored.
    pub fn insert(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value > MIN_POSITIVE {
            *self.positive.entry(bucket_of(value)).or_default() += 1;
        } else if value < -MIN_POSITIVE {
            *self.negative.entry(bucket_of(-value)).or_default() += 1;
        } else {
            self.zero_count += 1;
        }
    }

    pub fn merge(&mut self, other: &QuantileSketch) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero_count += other.zero_count;
        for (&index, &count) in &other.positive {
            *self.positive.entry(index).or_default() += count;
        }
        for (&index, &count) in &other.negative {
            *self.negative.entry(index).or_default() += count;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Value at quantile `q` (0 to 1, clamped); `None` for an empty sketch or a NaN `q`.
    ///
    /// The rank is `floor(q * (count - 1))`, the lower of the two middle
    /// values for a median of an even count. The first and last ranks return
    /// the exact minimum and maximum, and other results are clamped to them.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).floor() as u64;
        if rank == 0 {
            return Some(self.min);
        }
        if rank == self.count - 1 {
            return Some(self.max);
        }
        let mut seen = 0u64;
        // Negative values in ascending order: the largest magnitude first.
        for (&index, &count) in self.negative.iter().rev() {
            seen += count;
            if seen > rank {
                return Some(self.clamp(-bucket_value(index)));
            }
        }
        seen += self.zero_count;
        if seen > rank {
            return Some(self.clamp(0.0));
        }
        for (&index, &count) in &self.positive {
            seen += count;
            if seen > rank {
                return Some(self.clamp(bucket_value(index)));
            }
        }
        Some(self.max)
    }

    fn clamp(&self, value: f64) -> f64 {
        value.clamp(self.min, self.max)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + (self.positive.len() + self.negative.len()) * 4);
        out.push(FORMAT_VERSION);
        put_varint(&mut out, self.count);
        out.extend_from_slice(&self.sum.to_le_bytes());
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        put_varint(&mut out, self.zero_count);
        for store in [&self.positive, &self.negative] {
            put_varint(&mut out, store.len() as u64);
            let mut previous = 0i64;
            for (&index, &count) in store {
                put_varint(&mut out, zigzag(i64::from(index) - previous));
                put_varint(&mut out, count);
                previous = i64::from(index);
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let decoded = DecodedQuantiles::read(bytes)?;
        Ok(QuantileSketch {
            count: decoded.count,
            sum: decoded.sum,
            min: decoded.min,
            max: decoded.max,
            zero_count: decoded.zero_count,
            positive: decoded.positive.into_iter().collect(),
            negative: decoded.negative.into_iter().collect(),
        })
    }
}

/// An encoded [`QuantileSketch`], checked, with its buckets in index order.
struct DecodedQuantiles {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    zero_count: u64,
    positive: Vec<(i32, u64)>,
    negative: Vec<(i32, u64)>,
}

impl DecodedQuantiles {
    fn read(bytes: &[u8]) -> Result<Self, SketchError> {
        let error = |reason: &str| SketchError::new("quantile", reason);
        let mut reader = Reader::new(bytes, "quantile");
        let version = reader.byte()?;
        if version != FORMAT_VERSION {
            return Err(error(&format!("unknown format version {version}")));
        }
        let count = reader.varint()?;
        let sum = reader.f64()?;
        let min = reader.f64()?;
        let max = reader.f64()?;
        let zero_count = reader.varint()?;
        let mut stores: [Vec<(i32, u64)>; 2] = [Vec::new(), Vec::new()];
        let mut total = zero_count;
        for store in &mut stores {
            let buckets = reader.varint()?;
            if buckets > reader.remaining() as u64 {
                return Err(error("bucket count exceeds the data"));
            }
            store.reserve(buckets as usize);
            let mut index = 0i64;
            for position in 0..buckets {
                let delta = unzigzag(reader.varint()?);
                if position > 0 && delta <= 0 {
                    return Err(error("bucket indexes are not ascending"));
                }
                index = index
                    .checked_add(delta)
                    .filter(|i| i32::try_from(*i).is_ok())
                    .ok_or_else(|| error("bucket index out of range"))?;
                let bucket_count = reader.varint()?;
                total = total
                    .checked_add(bucket_count)
                    .ok_or_else(|| error("counts overflow"))?;
                store.push((index as i32, bucket_count));
            }
        }
        reader.finish()?;
        if total != count {
            return Err(error(&format!(
                "bucket counts add up to {total}, the header says {count}"
            )));
        }
        if count > 0 && min.partial_cmp(&max).is_none_or(|order| order.is_gt()) {
            return Err(error("minimum above maximum"));
        }
        let [positive, negative] = stores;
        Ok(DecodedQuantiles {
            count,
            sum,
            min,
            max,
            zero_count,
            positive,
            negative,
        })
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bounds-checked reads over sketch bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    kind: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], kind: &'static str) -> Self {
        Reader {
            bytes,
            position: 0,
            kind,
        }
    }

    fn truncated(&self) -> SketchError {
        SketchError::new(
            self.kind,
            format!(
                "truncated at byte {} of {}",
                self.position,
                self.bytes.len()
            ),
        )
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn byte(&mut self) -> Result<u8, SketchError> {
        let byte = *self
            .bytes
            .get(self.position)
            .ok_or_else(|| self.truncated())?;
        self.position += 1;
        Ok(byte)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], SketchError> {
        if self.remaining() < len {
            return Err(self.truncated());
        }
        let slice = &self.bytes[self.position..self.position + len];
        self.position += len;
        Ok(slice)
    }

    fn f64(&mut self) -> Result<f64, SketchError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(array))
    }

    fn varint(&mut self) -> Result<u64, SketchError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(SketchError::new(self.kind, "varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SketchError::new(self.kind, "varint longer than 10 bytes"))
    }

    fn finish(&self) -> Result<(), SketchError> {
        if self.position == self.bytes.len() {
            Ok(())
        } else {
            Err(SketchError::new(
                self.kind,
                format!(
                    "{} trailing bytes after the sketch",
                    self.bytes.len() - self.position
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn distinct_of(range: std::ops::Range<u64>) -> DistinctSketch {
        let mut sketch = DistinctSketch::new();
        for value in range {
            sketch.insert(&value.to_le_bytes());
        }
        sketch
    }

    #[test]
    fn distinct_exact_while_sparse() {
        let mut sketch = distinct_of(0..100);
        sketch.insert(&5u64.to_le_bytes());
        assert!(sketch.is_exact(), "100 values stay below the sparse limit");
        assert_eq!(sketch.estimate(), 100);
    }

    #[test]
    fn distinct_error_within_bounds() {
        // Three standard errors (3 x 1.6 %) bound the relative error with high probability.
        for n in [200u64, 1_000, 5_000, 20_000, 100_000, 1_000_000] {
            let estimate = distinct_of(0..n).estimate() as f64;
            let error = (estimate - n as f64).abs() / n as f64;
            assert!(
                error < 0.05,
                "estimate {estimate} for {n} distinct values is off by {:.2} %",
                error * 100.0
            );
        }
    }

    #[test]
    fn distinct_merge_equals_union() {
        let mut left = distinct_of(0..3_000);
        let right = distinct_of(2_000..6_000);
        left.merge(&right);
        assert_eq!(
            left,
            distinct_of(0..6_000),
            "merged registers differ from the union's"
        );

        let mut small = distinct_of(0..50);
        small.merge(&distinct_of(25..75));
        assert_eq!(small.estimate(), 75, "sparse merge stays exact");
    }

    #[test]
    fn distinct_merge_sparse_into_dense() {
        let mut dense = distinct_of(0..1_000);
        dense.merge(&distinct_of(900..1_100));
        assert_eq!(dense, distinct_of(0..1_100));

        let mut sparse = distinct_of(900..1_000);
        sparse.merge(&distinct_of(0..1_000));
        assert_eq!(
            sparse,
            distinct_of(0..1_000),
            "a dense operand densifies the target"
        );
    }

    #[test]
    fn distinct_bytes_round_trip() {
        for sketch in [
            DistinctSketch::new(),
            distinct_of(0..60),
            distinct_of(0..10_000),
        ] {
            let decoded = DistinctSketch::from_bytes(&sketch.to_bytes()).expect("decodes");
            assert_eq!(decoded, sketch);
        }
    }

    #[test]
    fn distinct_sparse_bytes_small() {
        let bytes = distinct_of(0..3).to_bytes();
        assert!(
            bytes.len() <= 2 + 1 + 3 * 10,
            "3 hashes took {} bytes",
            bytes.len()
        );
    }

    #[test]
    fn distinct_rejects_bad_bytes() {
        let cases: [(&[u8], &str); 5] = [
            (&[], "truncated"),
            (&[2, 0, 0], "unknown format version 2"),
            (&[1, 7], "unknown mode 7"),
            (&[1, 0, 2, 5, 0], "repeated hash"),
            (&[1, 0, 0, 9], "trailing bytes"),
        ];
        for (bytes, expected) in cases {
            let error = DistinctSketch::from_bytes(bytes).expect_err("must not decode");
            assert!(
                error.to_string().contains(expected),
                "{bytes:?}: error {error} does not mention {expected:?}"
            );
        }
        let mut dense = distinct_of(0..1_000).to_bytes();
        dense[10] = 200;
        assert!(
            DistinctSketch::from_bytes(&dense).is_err(),
            "register 200 is impossible"
        );
    }

    fn quantiles_of(values: &[f64]) -> QuantileSketch {
        let mut sketch = QuantileSketch::new();
        for &value in values {
            sketch.insert(value);
        }
        sketch
    }

    fn exact_quantile(values: &[f64], q: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn quantile_within_relative_accuracy() {
        let values: Vec<f64> = (1..=10_000).map(|i| (i as f64).powf(1.7) / 100.0).collect();
        let sketch = quantiles_of(&values);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = exact_quantile(&values, q);
            let estimate = sketch.quantile(q).expect("not empty");
            let error = (estimate - exact).abs() / exact;
            assert!(
                error <= RELATIVE_ACCURACY + 1e-9,
                "q={q}: estimate {estimate}, exact {exact}, error {error}"
            );
        }
    }

    #[test]
    fn quantile_exact_totals() {
        let sketch = quantiles_of(&[3.0, 0.0, 120.5, 7.25]);
        assert_eq!(sketch.count(), 4);
        assert_eq!(sketch.sum(), 130.75);
        assert_eq!(sketch.min(), Some(0.0));
        assert_eq!(sketch.max(), Some(120.5));
        assert_eq!(sketch.quantile(0.0), Some(0.0), "the minimum is exact");
        assert_eq!(sketch.quantile(1.0), Some(120.5), "the maximum is exact");
    }

    #[test]
    fn quantile_empty_and_nan() {
        let mut sketch = QuantileSketch::new();
        sketch.insert(f64::NAN);
        sketch.insert(f64::INFINITY);
        assert_eq!(sketch.count(), 0, "non-finite values are ignored");
        assert_eq!(sketch.quantile(0.5), None);
        assert_eq!(sketch.min(), None);
        assert_eq!(quantiles_of(&[1.0]).quantile(f64::NAN), None);
    }

    #[test]
    fn quantile_negative_values_ordered() {
        let sketch = quantiles_of(&[-100.0, -1.0, 0.0, 1.0, 100.0]);
        let answers: Vec<f64> = [0.0, 0.25, 0.5, 0.75, 1.0]
            .iter()
            .map(|&q| sketch.quantile(q).expect("not empty"))
            .collect();
        for (answer, expected) in answers.iter().zip([-100.0f64, -1.0, 0.0, 1.0, 100.0]) {
            let tolerance = expected.abs() * RELATIVE_ACCURACY;
            assert!(
                (answer - expected).abs() <= tolerance,
                "got {answers:?}, expected about [-100, -1, 0, 1, 100]"
            );
        }
    }

    #[test]
    fn quantile_merge_equals_all() {
        let values: Vec<f64> = (0..5_000).map(|i| f64::from(i % 977) * 0.37).collect();
        let (left, right) = values.split_at(1_234);
        let mut merged = quantiles_of(left);
        merged.merge(&quantiles_of(right));
        let all = quantiles_of(&values);
        assert_eq!(merged.to_bytes().len(), all.to_bytes().len());
        for q in [0.1, 0.5, 0.99] {
            assert_eq!(merged.quantile(q), all.quantile(q), "q={q}");
        }
        assert_eq!(merged.count(), all.count());
    }

    #[test]
    fn quantile_bytes_round_trip() {
        for sketch in [
            QuantileSketch::new(),
            quantiles_of(&[0.0]),
            quantiles_of(&[-3.5, 0.0, 12.0, 12.0, 9_999.0]),
        ] {
            let decoded = QuantileSketch::from_bytes(&sketch.to_bytes()).expect("decodes");
            assert_eq!(decoded.to_bytes(), sketch.to_bytes());
            assert_eq!(decoded.count(), sketch.count());
        }
    }

    #[test]
    fn quantile_rejects_inconsistent_counts() {
        let mut bytes = quantiles_of(&[1.0, 2.0]).to_bytes();
        bytes[1] = 3;
        let error = QuantileSketch::from_bytes(&bytes).expect_err("count 3 with 2 values");
        assert!(error.to_string().contains("add up to 2"), "{error}");
    }

    #[test]
    fn merge_bytes_like_merge() {
        for (ours, theirs) in [(0..50, 40..90), (0..50, 0..5_000), (0..5_000, 100..150)] {
            let mut expected = distinct_of(ours.clone());
            expected.merge(&distinct_of(theirs.clone()));
            let mut merged = distinct_of(ours);
            merged
                .merge_bytes(&distinct_of(theirs).to_bytes())
                .expect("a valid sketch");
            assert_eq!(merged, expected, "distinct merge_bytes differs from merge");
        }

        let mut expected = quantiles_of(&[1.0, 2.5, -3.0, 0.0]);
        let other = quantiles_of(&[2.5, 700.0, -0.5, 0.0]);
        let mut merged = expected.clone();
        expected.merge(&other);
        merged
            .merge_bytes(&other.to_bytes())
            .expect("a valid sketch");
        assert_eq!(merged, expected, "quantile merge_bytes differs from merge");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = DistinctSketch::from_bytes(&bytes);
            let _ = QuantileSketch::from_bytes(&bytes);
            let _ = DistinctSketch::new().merge_bytes(&bytes);
            let _ = QuantileSketch::new().merge_bytes(&bytes);
        }

        #[test]
        fn merge_bytes_invalid_input(mut bytes in proptest::collection::vec(any::<u8>(), 0..80), dense in any::<bool>()) {
            if dense {
                bytes = [vec![FORMAT_VERSION, MODE_DENSE], vec![Q as u8 + 2; REGISTERS]].concat();
            }
            prop_assert_eq!(
                DistinctSketch::new().merge_bytes(&bytes).is_ok(),
                DistinctSketch::from_bytes(&bytes).is_ok()
            );
            prop_assert_eq!(
                QuantileSketch::new().merge_bytes(&bytes).is_ok(),
                QuantileSketch::from_bytes(&bytes).is_ok()
            );
        }

        #[test]
        fn quantile_round_trip_any_values(values in proptest::collection::vec(-1e9f64..1e9, 0..200)) {
            let sketch = quantiles_of(&values);
            let decoded = QuantileSketch::from_bytes(&sketch.to_bytes()).expect("decodes");
            prop_assert_eq!(decoded.count(), values.len() as u64);
            prop_assert_eq!(decoded.quantile(0.5), sketch.quantile(0.5));
        }
    }
}
