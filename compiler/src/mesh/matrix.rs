//! A dense complex matrix, row-major, for the mesh compiler's `O(N³)` loops: MZIs act on two
//! adjacent rows (contiguous); operations on columns are applied row by row.

use num_complex::Complex64 as C;
use photonflow_optics::rng::Rng;

/// A dense `rows × cols` complex matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CMatrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `data[r * cols + c]`.
    pub data: Vec<C>,
}

impl CMatrix {
    /// The zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![C::new(0.0, 0.0); rows * cols],
        }
    }

    /// A matrix of independent entries with real and imaginary parts uniform in `[−½, ½)`,
    /// drawn row by row (real part first) from `rng`.
    pub fn random(rows: usize, cols: usize, rng: &mut Rng) -> Self {
        let data = (0..rows * cols)
            .map(|_| {
                let re = rng.uniform() - 0.5;
                C::new(re, rng.uniform() - 0.5)
            })
            .collect();
        Self { rows, cols, data }
    }

    /// The identity.
    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = C::new(1.0, 0.0);
        }
        m
    }

    /// Columns `c0 .. c0 + w` of the `n × n` identity, as an `n × w` matrix (a block of
    /// columns to carry through a mesh).
    pub fn identity_columns(n: usize, c0: usize, w: usize) -> Self {
        let mut m = Self::zeros(n, w);
        for j in 0..w {
            m.data[(c0 + j) * w + j] = C::new(1.0, 0.0);
        }
        m
    }

    /// Element `(r, c)`.
    pub fn at(&self, r: usize, c: usize) -> C {
        self.data[r * self.cols + c]
    }

    /// Applies the 2×2 `t` from the left to rows `(k, k+1)`: `M ← T_k · M`, on the columns
    /// `cols` only (the others must be zero in both rows). In 512-bit or 256-bit registers with
    /// fused multiply-adds where the CPU has them (detected at run time; the same bits either
    /// way, [`Pairs`]), else in portable arithmetic (the same to rounding).
    pub fn rows_apply(&mut self, k: usize, t: &[[C; 2]; 2], cols: std::ops::Range<usize>) {
        self.rows_apply_with(Pairs::detect(), k, t, cols);
    }

    /// [`CMatrix::rows_apply`] with the arithmetic `pairs` (at most what the CPU has).
    fn rows_apply_with(
        &mut self,
        pairs: Pairs,
        k: usize,
        t: &[[C; 2]; 2],
        cols: std::ops::Range<usize>,
    ) {
        let n = self.cols;
        let (top, bottom) = self.data[k * n..(k + 2) * n].split_at_mut(n);
        let (x, y) = (&mut top[cols.clone()], &mut bottom[cols]);
        // SAFETY: `pairs` is never above what the CPU has (`Pairs::detect`).
        #[cfg(target_arch = "x86_64")]
        match pairs {
            Pairs::Avx512 => return unsafe { pairs_avx512(x, y, t) },
            Pairs::Avx2 => return unsafe { pairs_avx2(x, y, t) },
            Pairs::Portable => {}
        }
        let _ = pairs;
        for (a, b) in x.iter_mut().zip(y) {
            let (x, y) = (*a, *b);
            *a = t[0][0] * x + t[0][1] * y;
            *b = t[1][0] * x + t[1][1] * y;
        }
    }

    /// The conjugate transpose.
    pub fn adjoint(&self) -> Self {
        let mut m = Self::zeros(self.cols, self.rows);
        for r in 0..self.rows {
            for c in 0..self.cols {
                m.data[c * self.rows + r] = self.at(r, c).conj();
            }
        }
        m
    }

    /// `‖A − B‖_F / ‖B‖_F` (`‖A‖_F` when `B` is zero).
    pub fn relative_error(&self, reference: &Self) -> f64 {
        assert_eq!((self.rows, self.cols), (reference.rows, reference.cols));
        let diff: f64 = self
            .data
            .iter()
            .zip(&reference.data)
            .map(|(a, b)| (a - b).norm_sqr())
            .sum();
        let norm: f64 = reference.data.iter().map(|b| b.norm_sqr()).sum();
        if norm == 0.0 {
            diff.sqrt()
        } else {
            (diff / norm).sqrt()
        }
    }

    /// `A · B`.
    pub fn matmul(&self, b: &Self) -> Self {
        assert_eq!(self.cols, b.rows, "inner dimensions");
        let mut out = Self::zeros(self.rows, b.cols);
        for r in 0..self.rows {
            let row = &mut out.data[r * b.cols..(r + 1) * b.cols];
            for k in 0..self.cols {
                let a = self.at(r, k);
                if a == C::new(0.0, 0.0) {
                    continue;
                }
                for (o, &x) in row.iter_mut().zip(&b.data[k * b.cols..(k + 1) * b.cols]) {
                    *o += a * x;
                }
            }
        }
        out
    }
}

/// The arithmetic of [`CMatrix::rows_apply`]: the widest the CPU has. The vector kernels
/// compute every output element the same way — for `x' = a·x + b·y`, with `(x, y)` complex,
/// `x'r = ((ar·xr − ai·xi) + br·yr) − bi·yi` and `x'i = ((ar·xi + ai·xr) + br·yi) + bi·yr`, one
/// multiplication then three fused multiply-adds — two or four columns at a time (a register
/// holds them as stored, real and imaginary parts interleaved), and the last columns one at a
/// time: the same bits at any width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pairs {
    Portable,
    /// AVX2 and FMA: two columns per 256-bit register.
    Avx2,
    /// AVX-512F (with AVX2 and FMA): four columns per 512-bit register.
    Avx512,
}

impl Pairs {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return match is_x86_feature_detected!("avx512f") {
                true => Self::Avx512,
                false => Self::Avx2,
            };
        }
        Self::Portable
    }
}

/// One column of [`pairs_avx2`] and [`pairs_avx512`], in the same order of operations.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pair_fma(x: &mut C, y: &mut C, t: &[[C; 2]; 2]) {
    let out = |a: C, b: C| {
        let re = (-a.im).mul_add(x.im, a.re * x.re);
        let re = (-b.im).mul_add(y.im, b.re.mul_add(y.re, re));
        let im = a.im.mul_add(x.re, a.re * x.im);
        let im = b.im.mul_add(y.re, b.re.mul_add(y.im, im));
        C::new(re, im)
    };
    (*x, *y) = (out(t[0][0], t[0][1]), out(t[1][0], t[1][1]));
}

/// [`CMatrix::rows_apply`]'s update of the rows `x`, `y` (equal lengths) in 256-bit registers.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pairs_avx2(x: &mut [C], y: &mut [C], t: &[[C; 2]; 2]) {
    use std::arch::x86_64::{
        _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_mul_pd, _mm256_permute_pd, _mm256_set1_pd,
        _mm256_setr_pd, _mm256_storeu_pd,
    };
    assert_eq!(x.len(), y.len());
    let re = |c: C| _mm256_set1_pd(c.re);
    let im = |c: C| _mm256_setr_pd(-c.im, c.im, -c.im, c.im);
    let [[a, b], [c, d]] = *t;
    let (ar, ai, br, bi) = (re(a), im(a), re(b), im(b));
    let (cr, ci, dr, di) = (re(c), im(c), re(d), im(d));
    let full = x.len() / 2 * 2;
    let (px, py) = (x.as_mut_ptr().cast::<f64>(), y.as_mut_ptr().cast::<f64>());
    for j in (0..full).step_by(2) {
        // SAFETY: columns `j`, `j + 1` of both rows (`full ≤ len`); AVX2 and FMA are enabled.
        unsafe {
            let (xv, yv) = (
                _mm256_loadu_pd(px.add(2 * j)),
                _mm256_loadu_pd(py.add(2 * j)),
            );
            // The real and imaginary parts swapped.
            let (xs, ys) = (
                _mm256_permute_pd::<0b0101>(xv),
                _mm256_permute_pd::<0b0101>(yv),
            );
            let xo = _mm256_fmadd_pd(
                ys,
                bi,
                _mm256_fmadd_pd(yv, br, _mm256_fmadd_pd(xs, ai, _mm256_mul_pd(xv, ar))),
            );
            let yo = _mm256_fmadd_pd(
                ys,
                di,
                _mm256_fmadd_pd(yv, dr, _mm256_fmadd_pd(xs, ci, _mm256_mul_pd(xv, cr))),
            );
            _mm256_storeu_pd(px.add(2 * j), xo);
            _mm256_storeu_pd(py.add(2 * j), yo);
        }
    }
    for (x, y) in x[full..].iter_mut().zip(&mut y[full..]) {
        pair_fma(x, y, t);
    }
}

/// [`pairs_avx2`] in 512-bit registers, four columns at a time (the last few by
/// [`pairs_avx2`]).
///
/// # Safety
/// The CPU has AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pairs_avx512(x: &mut [C], y: &mut [C], t: &[[C; 2]; 2]) {
    use std::arch::x86_64::{
        _mm512_fmadd_pd, _mm512_loadu_pd, _mm512_mul_pd, _mm512_permute_pd, _mm512_set1_pd,
        _mm512_setr_pd, _mm512_storeu_pd,
    };
    assert_eq!(x.len(), y.len());
    let re = |c: C| _mm512_set1_pd(c.re);
    let im = |c: C| {
        let (n, p) = (-c.im, c.im);
        _mm512_setr_pd(n, p, n, p, n, p, n, p)
    };
    let [[a, b], [c, d]] = *t;
    let (ar, ai, br, bi) = (re(a), im(a), re(b), im(b));
    let (cr, ci, dr, di) = (re(c), im(c), re(d), im(d));
    let full = x.len() / 4 * 4;
    let (px, py) = (x.as_mut_ptr().cast::<f64>(), y.as_mut_ptr().cast::<f64>());
    for j in (0..full).step_by(4) {
        // SAFETY: columns `j .. j + 4` of both rows (`full ≤ len`); AVX-512F is enabled.
        unsafe {
            let (xv, yv) = (
                _mm512_loadu_pd(px.add(2 * j)),
                _mm512_loadu_pd(py.add(2 * j)),
            );
            let (xs, ys) = (
                _mm512_permute_pd::<0b0101_0101>(xv),
                _mm512_permute_pd::<0b0101_0101>(yv),
            );
            let xo = _mm512_fmadd_pd(
                ys,
                bi,
                _mm512_fmadd_pd(yv, br, _mm512_fmadd_pd(xs, ai, _mm512_mul_pd(xv, ar))),
            );
            let yo = _mm512_fmadd_pd(
                ys,
                di,
                _mm512_fmadd_pd(yv, dr, _mm512_fmadd_pd(xs, ci, _mm512_mul_pd(xv, cr))),
            );
            _mm512_storeu_pd(px.add(2 * j), xo);
            _mm512_storeu_pd(py.add(2 * j), yo);
        }
    }
    // SAFETY: the caller's contract covers AVX2 and FMA.
    unsafe { pairs_avx2(&mut x[full..], &mut y[full..], t) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×47 matrix and a 2×2 of random complex entries.
    fn case(seed: u64) -> (CMatrix, [[C; 2]; 2]) {
        let mut rng = Rng::new(seed);
        let m = CMatrix::random(3, 47, &mut rng);
        let t = CMatrix::random(2, 2, &mut rng);
        (m, [[t.at(0, 0), t.at(0, 1)], [t.at(1, 0), t.at(1, 1)]])
    }

    /// Column ranges of every length modulo four, at even and odd starts.
    const RANGES: [(usize, usize); 8] = [
        (0, 0),
        (0, 1),
        (1, 3),
        (2, 5),
        (3, 10),
        (5, 36),
        (0, 47),
        (4, 44),
    ];

    #[test]
    fn rows_apply_multiplies_two_rows_by_the_two_by_two_at_every_width() {
        let best = Pairs::detect();
        for pairs in [Pairs::Portable, Pairs::Avx2, Pairs::Avx512] {
            if pairs > best {
                eprintln!("note: no {pairs:?} here");
                continue;
            }
            for (seed, (lo, hi)) in RANGES.into_iter().enumerate() {
                let (m, t) = case(seed as u64);
                let mut out = m.clone();
                out.rows_apply_with(pairs, 1, &t, lo..hi);
                for c in 0..m.cols {
                    let (x, y) = (m.at(1, c), m.at(2, c));
                    let inside = (lo..hi).contains(&c);
                    let want = match inside {
                        true => [t[0][0] * x + t[0][1] * y, t[1][0] * x + t[1][1] * y],
                        false => [x, y],
                    };
                    for (got, want) in [out.at(1, c), out.at(2, c)].into_iter().zip(want) {
                        assert!((got - want).norm() <= 1e-15, "{pairs:?} {lo}..{hi} {c}");
                    }
                    // Row 0 is not touched.
                    assert_eq!(out.at(0, c), m.at(0, c));
                }
            }
        }
    }

    #[test]
    fn every_vector_width_gives_the_same_bits() {
        if Pairs::detect() < Pairs::Avx512 {
            eprintln!("note: no AVX-512 here; nothing to compare");
            return;
        }
        for (seed, (lo, hi)) in RANGES.into_iter().enumerate() {
            let (m, t) = case(100 + seed as u64);
            let (mut narrow, mut wide) = (m.clone(), m.clone());
            narrow.rows_apply_with(Pairs::Avx2, 0, &t, lo..hi);
            wide.rows_apply_with(Pairs::Avx512, 0, &t, lo..hi);
            assert!(
                (narrow.data.iter().zip(&wide.data))
                    .all(|(a, b)| a.re.to_bits() == b.re.to_bits()
                        && a.im.to_bits() == b.im.to_bits()),
                "{lo}..{hi}"
            );
        }
    }
}
