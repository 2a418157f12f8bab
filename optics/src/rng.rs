//! A small, portable random number generator for everything random in photonflow: training
//! (initial masks, shuffling, misalignment, noise), chip imperfections, Haar samples, tests.
//!
//! SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): 64 bits of state, passes BigCrush, and gives
//! the same numbers on every platform and backend, so a run is reproduced exactly from its seed.
//! Independent streams come from [`Rng::stream`], keyed by what they are for (e.g. the epoch), so
//! resuming at an epoch needs no saved generator state.

use std::f64::consts::TAU;

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// An independent generator for stream `key` of seed `seed` (e.g. `key = [SHUFFLE, epoch]`).
    pub fn stream(seed: u64, key: &[u64]) -> Self {
        let mut r = Self::new(seed);
        for &k in key {
            let s = r.next_u64() ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03);
            r = Self::new(s);
        }
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform(); // (0, 1]
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
    }

    /// Two independent standard normals from one Box–Muller transform (half the logarithms and
    /// square roots of two [`Rng::normal`] calls); the first is what [`Rng::normal`] gives.
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let u = 1.0 - self.uniform(); // (0, 1]
        let v = self.uniform();
        let r = (-2.0 * u.ln()).sqrt();
        let (s, c) = (TAU * v).sin_cos();
        (r * c, r * s)
    }

    /// Uniform in `0..n` (Lemire's multiply-and-reject method, unbiased).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if m as u64 >= threshold {
                return (m >> 64) as usize;
            }
        }
    }

    /// A Poisson-distributed count of mean `mean` (≥ 0; photon and electron counts). Exact for
    /// every mean: multiplication of uniforms (Knuth) below a mean of 10, and Hörmann's
    /// transformed rejection with squeeze (PTRS; "The transformed rejection method for
    /// generating Poisson random variables", Insurance: Mathematics and Economics 12, 39 (1993))
    /// from 10 on, in O(1) expected time. A mean that is not finite or below zero gives 0.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean.is_nan() || mean <= 0.0 || mean.is_infinite() {
            return 0;
        }
        if mean < 10.0 {
            let limit = (-mean).exp();
            let (mut k, mut p) = (0u64, self.uniform());
            while p > limit {
                k += 1;
                p *= self.uniform();
            }
            return k;
        }
        let (sq, log_mean) = (mean.sqrt(), mean.ln());
        let b = 0.931 + 2.53 * sq;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
            if us >= 0.07 && v <= v_r {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let accept = v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln();
            if accept <= -mean + k * log_mean - ln_factorial(k) {
                return k as u64;
            }
        }
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// `ln k!` for a whole `k ≥ 0`: a table below 10, Stirling's series with five terms beyond
/// (relative error below 10⁻¹³ from `k = 10`).
fn ln_factorial(k: f64) -> f64 {
    const SMALL: [f64; 10] = [
        0.0,
        0.0,
        std::f64::consts::LN_2,
        1.791_759_469_228_055,
        3.178_053_830_347_146,
        4.787_491_742_782_046,
        6.579_251_212_010_101,
        8.525_161_361_065_415,
        10.604_602_902_745_25,
        12.801_827_480_081_469,
    ];
    if k < 10.0 {
        return SMALL[k as usize];
    }
    let n = k + 1.0; // ln k! = ln Γ(k + 1)
    let r = 1.0 / (n * n);
    let series =
        (1.0 / 12.0 - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r * (1.0 / 1680.0 - r / 1188.0)))) / n;
    (n - 0.5) * n.ln() - n + 0.5 * (TAU).ln() + series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values_and_streams() {
        // SplitMix64 reference outputs for seed 1234567 (computed with an independent Python transcription of Vigna's C code).
        let mut r = Rng::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, &[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::stream(7, &[1, 2]).next_u64(),
            Rng::stream(7, &[1, 3]).next_u64()
        );
    }

    #[test]
    fn distributions() {
        let mut r = Rng::new(3);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let x = r.normal();
            s += x;
            s2 += x * x;
        }
        let mean = s / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((s2 / n as f64 - 1.0).abs() < 0.02);
        // Pairs: both standard, uncorrelated; the first is `normal`'s number.
        let (mut a, mut b, mut ab, mut bb) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..n {
            let (x, y) = r.normal_pair();
            (a, b, ab, bb) = (a + x, b + y, ab + x * y, bb + y * y);
        }
        let n_f = n as f64;
        assert!((a / n_f).abs() < 0.01 && (b / n_f).abs() < 0.01);
        assert!((bb / n_f - 1.0).abs() < 0.02 && (ab / n_f).abs() < 0.01);
        let (mut p, mut q) = (Rng::new(8), Rng::new(8));
        assert_eq!(p.normal_pair().0, q.normal());
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.below(7)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (c as f64 - 10_000.0).abs() < 400.0),
            "{counts:?}"
        );
        let mut v: Vec<usize> = (0..100).collect();
        r.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn ln_factorial_matches_the_product() {
        let mut exact = 0.0f64;
        for k in 1..200u32 {
            exact += f64::from(k).ln();
            let got = ln_factorial(f64::from(k));
            assert!(
                (got - exact).abs() <= 1e-12 * exact.max(1.0),
                "k = {k}: {got} vs {exact}"
            );
        }
        assert_eq!(ln_factorial(0.0), 0.0);
    }

    #[test]
    fn poisson_counts_have_the_poisson_moments() {
        // Mean and variance both equal the mean; P(0) = e^−λ. Tolerances are 5 standard errors
        // of the estimates over n draws (the variance estimate's error is √(2λ² + λ)/√n).
        for mean in [0.3f64, 4.0, 9.99, 10.0, 37.5, 1234.0, 2.5e6] {
            let mut r = Rng::stream(11, &[mean.to_bits()]);
            let n = 200_000;
            let draws: Vec<f64> = (0..n).map(|_| r.poisson(mean) as f64).collect();
            let m = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|d| (d - m) * (d - m)).sum::<f64>() / (n - 1) as f64;
            let se_mean = (mean / n as f64).sqrt();
            let se_var = ((2.0 * mean * mean + mean) / n as f64).sqrt();
            assert!((m - mean).abs() < 5.0 * se_mean, "λ = {mean}: mean {m}");
            assert!(
                (var - mean).abs() < 5.0 * se_var,
                "λ = {mean}: variance {var}"
            );
            let zeros = draws.iter().filter(|&&d| d == 0.0).count() as f64 / n as f64;
            let p0 = (-mean).exp();
            assert!((zeros - p0).abs() < 5.0 * (p0 * (1.0 - p0) / n as f64).sqrt() + 1e-9);
        }
        let mut r = Rng::new(3);
        assert_eq!(r.poisson(0.0), 0);
        assert_eq!(r.poisson(-1.0), 0);
        assert_eq!(r.poisson(f64::NAN), 0);
    }
}
