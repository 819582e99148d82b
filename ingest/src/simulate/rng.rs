//! Random numbers that give the same sequence on every platform.
//!
//! The generator is xoshiro256** seeded through SplitMix64, both written
//! here so that no dependency upgrade can change a simulation. Every draw
//! uses only integer operations and the IEEE 754 operations that are
//! correctly rounded everywhere (`+`, `-`, `*`, `/`, `sqrt`, `round`).
//! The logarithm and the exponential come from the polynomials in this
//! file, not from the platform's math library, whose last bit may differ
//! between systems and would change which branch a comparison takes.

/// Golden-ratio increment of SplitMix64.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective mix of all 64 bits.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a seed and a list of integers into one 64-bit value.
///
/// Streams derived from different lists are independent for simulation
/// purposes, so the traffic of one app in one hour does not depend on
/// how many draws any other app or hour made.
pub(crate) fn hash_parts(seed: u64, parts: &[u64]) -> u64 {
    let mut hash = mix64(seed ^ 0x5EED_5EED_5EED_5EED);
    for &part in parts {
        hash = mix64(hash.wrapping_add(GOLDEN_GAMMA).wrapping_add(mix64(part)));
    }
    hash
}

/// A xoshiro256** generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// Creates a generator whose state SplitMix64 expands from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut counter = seed;
        let mut next = || {
            counter = counter.wrapping_add(GOLDEN_GAMMA);
            mix64(counter)
        };
        let mut state = [next(), next(), next(), next()];
        // An all-zero state would output zeros forever.
        if state == [0; 4] {
            state[0] = GOLDEN_GAMMA;
        }
        Rng { state }
    }

    /// Creates the generator of one named stream of a simulation.
    pub fn stream(seed: u64, parts: &[u64]) -> Self {
        Rng::new(hash_parts(seed, parts))
    }

    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// Returns a uniform value in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Returns a uniform integer in `[0, n)`, or 0 when `n` is 0.
    ///
    /// The multiply-high method has a bias below `n / 2^64`, far under
    /// anything a simulation can show.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Returns a uniform index into a collection of `len` items, or 0 when it is empty.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Returns a uniform integer in `[low, high]`, or `low` when `high < low`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = high.wrapping_sub(low) as u64;
        low.wrapping_add(self.below(span.saturating_add(1)) as i64)
    }

    /// Returns true with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Returns a uniform value in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Returns a standard normal deviate, by Marsaglia's polar method.
    pub fn normal(&mut self) -> f64 {
        for _ in 0..64 {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * ln(s) / s).sqrt();
            }
        }
        // About 21% of pairs fall outside the unit disc, so 64 misses in a
        // row has a probability near 1e-43.
        0.0
    }

    /// Returns a log-normal value with the given median and shape `sigma`.
    pub fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * exp(sigma * self.normal())
    }

    /// Returns a Poisson count with mean `lambda`.
    ///
    /// Below a mean of 30 it multiplies uniforms (Knuth's method). Above,
    /// it rounds a normal with the same mean and variance, which is within
    /// a few percent of the Poisson shape there.
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let limit = exp(-lambda);
            let mut product = 1.0;
            for count in 0..1_000 {
                product *= self.unit();
                if product <= limit {
                    return count;
                }
            }
            return 1_000;
        }
        let value = lambda + lambda.sqrt() * self.normal();
        value.round().max(0.0) as u64
    }

    /// Returns an index drawn with probability proportional to its weight.
    ///
    /// Negative and NaN weights count as 0. When every weight is 0 it returns 0.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().map(|w| positive(*w)).sum();
        if total <= 0.0 {
            return 0;
        }
        let mut target = self.unit() * total;
        for (index, weight) in weights.iter().enumerate() {
            target -= positive(*weight);
            if target < 0.0 {
                return index;
            }
        }
        weights.len().saturating_sub(1)
    }

    /// Returns one item of a non-empty slice, or `None` for an empty one.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.index(items.len()))
    }

    /// Shuffles a slice in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

fn positive(weight: f64) -> f64 {
    if weight > 0.0 { weight } else { 0.0 }
}

const LN_2: f64 = std::f64::consts::LN_2;
/// ln 2 split so that `k * LN_2_HIGH` is exact for the `k` that `exp` uses:
/// the high part has 32 significant bits, and the low part is the rest.
const LN_2_HIGH: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN_2_LOW: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);

/// Natural logarithm of `x`, for `x > 0`; `-inf` for 0 and below, NaN for NaN.
///
/// Splits `x` into `m * 2^e` with `m` in `[1/sqrt 2, sqrt 2)`, and sums the
/// series of `ln m = 2 atanh((m - 1) / (m + 1))` to its 23rd power, whose
/// remainder is below 1e-18 on that interval.
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let bits = x.to_bits();
    let biased_exponent = ((bits >> 52) & 0x7ff) as i64;
    if biased_exponent == 0 {
        // Subnormal: scale into the normal range first.
        return ln(x * (1u64 << 54) as f64) - 54.0 * LN_2;
    }
    let mut exponent = biased_exponent - 1023;
    let mut mantissa = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if mantissa > std::f64::consts::SQRT_2 {
        mantissa *= 0.5;
        exponent += 1;
    }
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let mut series = 0.0;
    for k in (0..12).rev() {
        series = series * s2 + 1.0 / f64::from(2 * k + 1);
    }
    exponent as f64 * LN_2 + 2.0 * s * series
}

/// `e` to the power `x`, with `x` clamped to `[-700, 700]`.
///
/// Reduces `x` to `r + k ln 2` with `|r| <= ln 2 / 2` and sums the Taylor
/// series of `e^r` to its 13th power, whose remainder is below 1e-16.
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let x = x.clamp(-700.0, 700.0);
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = (x - k * LN_2_HIGH) - k * LN_2_LOW;
    let mut sum = 1.0;
    for n in (1..=13).rev() {
        sum = 1.0 + r * sum / f64::from(n);
    }
    // k is within [-1010, 1010], so 2^k is a normal double built from its bits.
    let power = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    sum * power
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        let mut c = Rng::new(8);
        assert_ne!(first[0], c.next_u64());
    }

    #[test]
    fn splitmix_reference_outputs() {
        // The first outputs of SplitMix64 from state 0, as published with
        // the reference implementation.
        let outputs: Vec<u64> = (1..=3u64)
            .map(|step| mix64(GOLDEN_GAMMA.wrapping_mul(step)))
            .collect();
        assert_eq!(
            outputs,
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
    }

    #[test]
    fn rng_outputs_pinned() {
        // Pins the generator: a change here changes every simulation.
        let mut rng = Rng::new(0);
        let outputs = [rng.next_u64(), rng.next_u64(), rng.next_u64()];
        assert_eq!(
            outputs,
            [
                0x99EC_5F36_CB75_F2B4,
                0xBF6E_1F78_4956_452A,
                0x1A5F_849D_4933_E6E0
            ]
        );
    }

    #[test]
    fn ln_and_exp_match_std() {
        for &x in &[
            1e-300, 1e-10, 0.001, 0.5, 1.0, 1.5, 2.0, 10.0, 12345.678, 1e300,
        ] {
            let ours = ln(x);
            let reference = x.ln();
            assert!(
                (ours - reference).abs() <= 4.0 * f64::EPSILON * reference.abs().max(1.0),
                "ln({x}) = {ours}, std gives {reference}"
            );
        }
        for &x in &[-50.0, -1.0, -0.1, 0.0, 0.3, 1.0, 5.5, 40.0, 300.0] {
            let ours = exp(x);
            let reference = x.exp();
            assert!(
                ((ours - reference) / reference).abs() <= 8.0 * f64::EPSILON,
                "exp({x}) = {ours}, std gives {reference}"
            );
        }
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(-1.0), f64::NEG_INFINITY);
        assert!(exp(1e9).is_finite(), "clamped, not infinite");
    }

    #[test]
    fn poisson_mean_close_to_lambda() {
        let mut rng = Rng::new(42);
        for lambda in [0.5, 4.0, 25.0, 80.0, 1000.0] {
            let draws = 20_000;
            let total: u64 = (0..draws).map(|_| rng.poisson(lambda)).sum();
            let mean = total as f64 / f64::from(draws);
            assert!(
                (mean - lambda).abs() < 0.05 * lambda + 0.05,
                "mean {mean} for lambda {lambda}"
            );
        }
        assert_eq!(rng.poisson(0.0), 0);
        assert_eq!(rng.poisson(f64::NAN), 0);
        assert_eq!(rng.poisson(-3.0), 0);
    }

    #[test]
    fn below_and_between_stay_in_range() {
        let mut rng = Rng::new(3);
        assert_eq!(rng.below(0), 0);
        for _ in 0..1000 {
            assert!(rng.below(7) < 7);
            let value = rng.between(-3, 3);
            assert!((-3..=3).contains(&value));
        }
        assert_eq!(rng.between(5, 5), 5);
        assert_eq!(rng.between(9, 2), 9);
        let full = rng.between(i64::MIN, i64::MAX);
        let _ = full;
    }

    #[test]
    fn weighted_ignores_zero_weights() {
        let mut rng = Rng::new(11);
        for _ in 0..1000 {
            assert_eq!(rng.weighted(&[0.0, 2.0, 0.0, f64::NAN, -1.0]), 1);
        }
        assert_eq!(rng.weighted(&[]), 0);
        assert_eq!(rng.weighted(&[0.0, 0.0]), 0);
    }
}
