//! The zoom DFT: a one-dimensional Fourier sum evaluated on any equally spaced points, the
//! building block of propagation onto an output window ([`super::window`]).
//!
//! For samples `v_j` at `x_j = x₀ + j·dx` (`j < n`) it computes
//! `w_k = Σ_j v_j·exp(iβ·x_j·X_k)` at `X_k = X₀ + k·dX` (`k < K`). Expanding the product,
//! `x_j·X_k = x₀X_k + j·dx·X₀ + γ·jk/β` with `γ = β·dx·dX`, so
//! `w_k = post_k · Σ_j (pre_j·v_j)·exp(iγ·jk)`, and the remaining sum is either
//!
//! - a plain DFT of length `L = 2π/|γ|` when that is an integer `≥ n, K` (the spectrum of a
//!   zero-padded field, or its inverse on the same pitch): one FFT of length `L`; or
//! - a chirp-z transform (Bluestein's algorithm, `jk = (j² + k² − (k − j)²)/2`): the chirps
//!   `exp(iγj²/2)`, `exp(iγk²/2)` join `pre` and `post`, and the sum becomes a convolution with
//!   `exp(−iγm²/2)`, done by FFTs of length `L ≥ n + K − 1`.
//!
//! Both cost `O(L log L)`; the factors are computed once, in f64. The adjoint of a zoom (the
//! conjugate transpose of the `K × n` matrix `exp(iβ·x_j·X_k)`) is the zoom from the `X` points
//! back to the `x` points with `−β` ([`Zoom::adjoint`]).

use std::f64::consts::TAU;
use std::sync::Arc;

use num_complex::Complex;
use rustfft::{Fft, FftDirection};

use crate::fft::FftCache;
use crate::field::{Real, cplx};

type C64 = Complex<f64>;

/// Equally spaced sample positions: `n` points `start + j·step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Points {
    /// Number of points.
    pub n: usize,
    /// Position of the first point.
    pub start: f64,
    /// Spacing (non-zero).
    pub step: f64,
}

impl Points {
    /// `n` points at spacing `step`, centred the way [`crate::grid::centred`] centres samples
    /// (point `⌊n/2⌋` at `centre`).
    pub(crate) fn centred(n: usize, step: f64, centre: f64) -> Self {
        Self {
            n,
            start: centre - (n / 2) as f64 * step,
            step,
        }
    }

    /// Position of point `j`.
    pub(crate) fn at(&self, j: usize) -> f64 {
        self.start + j as f64 * self.step
    }

    /// Position of the last point.
    pub(crate) fn end(&self) -> f64 {
        self.at(self.n.saturating_sub(1))
    }
}

enum Algorithm<T> {
    /// One FFT of length `len` in `direction`.
    Dft { fft: Arc<dyn Fft<T>>, len: usize },
    /// Bluestein: FFT, multiply by the transformed chirp `kernel` (already divided by `len`),
    /// inverse FFT.
    Chirp {
        forward: Arc<dyn Fft<T>>,
        inverse: Arc<dyn Fft<T>>,
        len: usize,
        kernel: Vec<Complex<T>>,
    },
}

/// A planned zoom DFT from `from` points to `to` points with exponent factor `beta`.
pub(crate) struct Zoom<T: Real> {
    from: Points,
    to: Points,
    beta: f64,
    pre: Vec<Complex<T>>,
    post: Vec<Complex<T>>,
    algorithm: Algorithm<T>,
    work: usize,
}

impl<T: Real> std::fmt::Debug for Zoom<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.algorithm {
            Algorithm::Dft { len, .. } => format!("DFT of {len}"),
            Algorithm::Chirp { len, .. } => format!("chirp-z via FFTs of {len}"),
        };
        write!(f, "Zoom({} → {} points, {kind})", self.from.n, self.to.n)
    }
}

/// `exp(iφ)` for a phase given in f64.
fn cis(phase: f64) -> C64 {
    C64::from_polar(1.0, phase)
}

impl<T: Real> Zoom<T> {
    /// Plans `w_k = Σ_j v_j·exp(iβ·x_j·X_k)` from the points `from` (`x_j`) to `to` (`X_k`).
    pub(crate) fn new(cache: &FftCache<T>, from: Points, to: Points, beta: f64) -> Self {
        let (n, k) = (from.n, to.n);
        let gamma = beta * from.step * to.step;
        let period = TAU / gamma.abs();
        let whole = period.round();
        let exact = gamma != 0.0
            && (period - whole).abs() <= 1e-9 * period
            && whole >= n.max(k) as f64
            && whole <= (4 * (n + k)) as f64;
        let ramp_in = |j: usize| beta * j as f64 * from.step * to.start;
        let ramp_out = |q: usize| beta * from.start * to.at(q);
        let (pre, post, algorithm): (Vec<C64>, Vec<C64>, Algorithm<T>) = if exact {
            let len = whole as usize;
            let direction = if gamma > 0.0 {
                FftDirection::Inverse
            } else {
                FftDirection::Forward
            };
            (
                (0..n).map(|j| cis(ramp_in(j))).collect(),
                (0..k).map(|q| cis(ramp_out(q))).collect(),
                Algorithm::Dft {
                    fft: cache.plan(len, direction),
                    len,
                },
            )
        } else {
            let len = crate::grid::next_fast_len(n + k - 1);
            // exp(iγm²/2), its phase computed in f64 from the exact integer m².
            let chirp = |m: i64| cis(0.5 * gamma * (m * m) as f64);
            let mut b = vec![C64::default(); len];
            for m in 0..k as i64 {
                b[m as usize] = chirp(m).conj();
            }
            for m in 1..n as i64 {
                b[len - m as usize] = chirp(m).conj();
            }
            let forward = cache.plan(len, FftDirection::Forward);
            let inverse = cache.plan(len, FftDirection::Inverse);
            let mut kernel: Vec<Complex<T>> = b.iter().map(|&z| cplx::<T>(z)).collect();
            let mut scratch = vec![Complex::<T>::default(); forward.get_inplace_scratch_len()];
            forward.process_with_scratch(&mut kernel, &mut scratch);
            let norm = T::of(1.0 / len as f64);
            kernel.iter_mut().for_each(|z| *z = *z * norm);
            (
                (0..n).map(|j| cis(ramp_in(j)) * chirp(j as i64)).collect(),
                (0..k).map(|q| cis(ramp_out(q)) * chirp(q as i64)).collect(),
                Algorithm::Chirp {
                    forward,
                    inverse,
                    len,
                    kernel,
                },
            )
        };
        let work = match &algorithm {
            Algorithm::Dft { fft, len } => len + fft.get_inplace_scratch_len(),
            Algorithm::Chirp {
                forward,
                inverse,
                len,
                ..
            } => {
                len + forward
                    .get_inplace_scratch_len()
                    .max(inverse.get_inplace_scratch_len())
            }
        };
        let cast = |v: Vec<C64>| v.into_iter().map(cplx::<T>).collect::<Vec<_>>();
        Self {
            from,
            to,
            beta,
            pre: cast(pre),
            post: cast(post),
            algorithm,
            work,
        }
    }

    /// The adjoint zoom: from the `to` points back to the `from` points with `−β`.
    pub(crate) fn adjoint(&self, cache: &FftCache<T>) -> Self {
        Self::new(cache, self.to, self.from, -self.beta)
    }

    /// Number of output samples.
    pub(crate) fn output_len(&self) -> usize {
        self.to.n
    }

    /// Length of the work buffer [`Zoom::apply`] needs.
    pub(crate) fn work_len(&self) -> usize {
        self.work
    }

    /// `output = Zoom(input)`; `work` must hold at least [`Zoom::work_len`] values.
    pub(crate) fn apply(
        &self,
        input: &[Complex<T>],
        output: &mut [Complex<T>],
        work: &mut [Complex<T>],
    ) {
        debug_assert_eq!(input.len(), self.from.n);
        debug_assert_eq!(output.len(), self.to.n);
        let len = match &self.algorithm {
            Algorithm::Dft { len, .. } | Algorithm::Chirp { len, .. } => *len,
        };
        let (buf, scratch) = work[..self.work].split_at_mut(len);
        for ((b, v), p) in buf.iter_mut().zip(input).zip(&self.pre) {
            *b = *v * p;
        }
        buf[input.len()..].fill(Complex::default());
        match &self.algorithm {
            Algorithm::Dft { fft, .. } => fft.process_with_scratch(buf, scratch),
            Algorithm::Chirp {
                forward,
                inverse,
                kernel,
                ..
            } => {
                forward.process_with_scratch(buf, scratch);
                buf.iter_mut().zip(kernel).for_each(|(b, h)| *b = *b * h);
                inverse.process_with_scratch(buf, scratch);
            }
        }
        for ((o, b), p) in output.iter_mut().zip(buf.iter()).zip(&self.post) {
            *o = *b * p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum by definition.
    fn direct(v: &[C64], from: Points, to: Points, beta: f64) -> Vec<C64> {
        (0..to.n)
            .map(|k| {
                v.iter()
                    .enumerate()
                    .map(|(j, z)| z * cis(beta * from.at(j) * to.at(k)))
                    .sum()
            })
            .collect()
    }

    fn check(from: Points, to: Points, beta: f64, want_dft: bool) {
        let cache = FftCache::<f64>::default();
        let zoom = Zoom::new(&cache, from, to, beta);
        assert_eq!(
            matches!(zoom.algorithm, Algorithm::Dft { .. }),
            want_dft,
            "{zoom:?}"
        );
        let v: Vec<C64> = (0..from.n)
            .map(|j| C64::new((j as f64 * 0.7).sin(), (j as f64 * 0.3).cos() - 0.2))
            .collect();
        let mut out = vec![C64::default(); to.n];
        let mut work = vec![C64::default(); zoom.work_len()];
        zoom.apply(&v, &mut out, &mut work);
        let want = direct(&v, from, to, beta);
        let scale = want.iter().map(|z| z.norm()).fold(0.0, f64::max);
        let err = out
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(err < 1e-11 * scale, "{zoom:?}: {err:e} of {scale:e}");
        // ⟨Z v, w⟩ = ⟨v, Zᴴ w⟩
        let adj = zoom.adjoint(&cache);
        let w: Vec<C64> = (0..to.n)
            .map(|k| C64::new((k as f64 * 1.3).cos(), (k as f64 * 0.9).sin()))
            .collect();
        let mut back = vec![C64::default(); from.n];
        let mut work = vec![C64::default(); adj.work_len()];
        adj.apply(&w, &mut back, &mut work);
        let lhs: C64 = out.iter().zip(&w).map(|(a, b)| a * b.conj()).sum();
        let rhs: C64 = v.iter().zip(&back).map(|(a, b)| a * b.conj()).sum();
        assert!(
            (lhs - rhs).norm() < 1e-10 * lhs.norm().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn zoom_is_the_fourier_sum_on_any_points() {
        // A zero-padded spectrum: 40 samples at 5 µm onto 96 frequencies 1/(96·5 µm) apart.
        let dx = 5e-6;
        let df = 1.0 / (96.0 * dx);
        check(
            Points::centred(40, dx, 0.0),
            Points::centred(96, df, 0.0),
            -TAU,
            true,
        );
        // Its inverse onto a finer, shifted window: a chirp-z transform.
        check(
            Points::centred(96, df, 0.0),
            Points::centred(33, 0.37 * dx, 41e-6),
            TAU,
            false,
        );
        // A Fresnel-type kernel (β = −2π/(λz)) onto more points than it has inputs.
        check(
            Points::centred(25, 8e-6, 0.0),
            Points::centred(70, 3.3e-6, -20e-6),
            -TAU / (633e-9 * 0.01),
            false,
        );
        // One point in, one point out.
        check(
            Points::centred(1, 1e-6, 2e-6),
            Points::centred(1, 1e-6, 3e-6),
            1e5,
            false,
        );
    }
}
