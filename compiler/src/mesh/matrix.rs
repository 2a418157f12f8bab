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
    /// way, `pairs_in`), else in portable arithmetic (the same to rounding).
    pub fn rows_apply(&mut self, k: usize, t: &[[C; 2]; 2], cols: std::ops::Range<usize>) {
        self.rows_apply_with(Simd::detect(), k, t, cols);
    }

    /// [`CMatrix::rows_apply`] with the arithmetic `simd` (at most what the CPU has).
    fn rows_apply_with(
        &mut self,
        simd: Simd,
        k: usize,
        t: &[[C; 2]; 2],
        cols: std::ops::Range<usize>,
    ) {
        let n = self.cols;
        let (top, bottom) = self.data[k * n..(k + 2) * n].split_at_mut(n);
        let (x, y) = (&mut top[cols.clone()], &mut bottom[cols]);
        // SAFETY: `simd` is never above what the CPU has (`Simd::detect`).
        #[cfg(target_arch = "x86_64")]
        match simd {
            Simd::Avx512 => return unsafe { pairs_avx512(x, y, t) },
            Simd::Avx2 => return unsafe { pairs_avx2(x, y, t) },
            Simd::Portable => {}
        }
        let _ = simd;
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

/// `H[a][b] = Σ_j x_a[j]·conj(y_b[j])` for the rows `x = [x₀, x₁]` and `y = [y₀, y₁]` (all of one
/// length): the four inner products of two adjacent rows of one matrix with two of another
/// (the 2×2 block of `X·Y†` on those rows). In 512-bit or 256-bit registers with fused
/// multiply-adds where the CPU has them (the same bits either way, `products_in`), else
/// portable (the same to rounding).
pub fn row_products(x: [&[C]; 2], y: [&[C]; 2]) -> [[C; 2]; 2] {
    row_products_with(Simd::detect(), x, y)
}

fn row_products_with(simd: Simd, x: [&[C]; 2], y: [&[C]; 2]) -> [[C; 2]; 2] {
    let len = x[0].len();
    assert!(
        x.iter().chain(&y).all(|r| r.len() == len),
        "rows of one length"
    );
    // SAFETY: `simd` is never above what the CPU has (`Simd::detect`).
    #[cfg(target_arch = "x86_64")]
    match simd {
        Simd::Avx512 => return unsafe { products_avx512(x, y) },
        Simd::Avx2 => return unsafe { products_avx2(x, y) },
        Simd::Portable => {}
    }
    let _ = simd;
    let mut h = [[C::new(0.0, 0.0); 2]; 2];
    for (a, row) in h.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            *v = x[a].iter().zip(y[b]).map(|(p, q)| p * q.conj()).sum();
        }
    }
    h
}

/// The vector arithmetic the mesh compiler's kernels may use: the widest the CPU has
/// ([`CMatrix::rows_apply`], [`row_products`], and the decomposition's kernels, which need
/// [`Simd::fma`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Simd {
    Portable,
    /// AVX2 and FMA: two columns per 256-bit register.
    Avx2,
    /// AVX-512F (with AVX2 and FMA): four columns per 512-bit register.
    Avx512,
}

impl Simd {
    /// What this CPU has (detected at run time).
    pub(super) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return match is_x86_feature_detected!("avx512f") {
                true => Self::Avx512,
                false => Self::Avx2,
            };
        }
        Self::Portable
    }

    /// AVX2 and fused multiply-adds, at least.
    pub(super) fn fma(self) -> bool {
        self >= Self::Avx2
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m256d, __m512d};

/// Complex numbers as a row stores them (real and imaginary parts interleaved) in a vector
/// register: the arithmetic [`pairs_in`] and [`products_in`] are written in, once for both
/// widths.
#[cfg(target_arch = "x86_64")]
trait Complexes: Copy {
    /// Complex numbers per register.
    const COLUMNS: usize;
    /// # Safety
    /// `p` points to `2·COLUMNS` readable `f64`s.
    unsafe fn load(p: *const f64) -> Self;
    /// # Safety
    /// `p` points to `2·COLUMNS` writable `f64`s.
    unsafe fn store(self, p: *mut f64);
    fn splat(v: f64) -> Self;
    /// `[n, p, n, p, …]`: a factor for the real parts and one for the imaginary parts.
    fn alternate(n: f64, p: f64) -> Self;
    /// Real and imaginary parts exchanged.
    fn swap(self) -> Self;
    fn mul(self, b: Self) -> Self;
    /// `self·b + c`, fused.
    fn mul_add(self, b: Self, c: Self) -> Self;
}

// SAFETY (every `unsafe` in these impls): they are only reached, inlined, from functions
// compiled with `target_feature(enable = "avx2,fma")` (and `avx512f` for `__m512d`), which run
// only where `Simd::detect` found those features; loads and stores as their callers promise.
#[cfg(target_arch = "x86_64")]
impl Complexes for __m256d {
    const COLUMNS: usize = 2;
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        unsafe { std::arch::x86_64::_mm256_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        unsafe { std::arch::x86_64::_mm256_storeu_pd(p, self) }
    }
    #[inline(always)]
    fn splat(v: f64) -> Self {
        unsafe { std::arch::x86_64::_mm256_set1_pd(v) }
    }
    #[inline(always)]
    fn alternate(n: f64, p: f64) -> Self {
        unsafe { std::arch::x86_64::_mm256_setr_pd(n, p, n, p) }
    }
    #[inline(always)]
    fn swap(self) -> Self {
        unsafe { std::arch::x86_64::_mm256_permute_pd::<0b0101>(self) }
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        unsafe { std::arch::x86_64::_mm256_mul_pd(self, b) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        unsafe { std::arch::x86_64::_mm256_fmadd_pd(self, b, c) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Complexes for __m512d {
    const COLUMNS: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        unsafe { std::arch::x86_64::_mm512_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        unsafe { std::arch::x86_64::_mm512_storeu_pd(p, self) }
    }
    #[inline(always)]
    fn splat(v: f64) -> Self {
        unsafe { std::arch::x86_64::_mm512_set1_pd(v) }
    }
    #[inline(always)]
    fn alternate(n: f64, p: f64) -> Self {
        unsafe { std::arch::x86_64::_mm512_setr_pd(n, p, n, p, n, p, n, p) }
    }
    #[inline(always)]
    fn swap(self) -> Self {
        unsafe { std::arch::x86_64::_mm512_permute_pd::<0b0101_0101>(self) }
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        unsafe { std::arch::x86_64::_mm512_mul_pd(self, b) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        unsafe { std::arch::x86_64::_mm512_fmadd_pd(self, b, c) }
    }
}

/// [`pairs_in`] in 256-bit registers.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pairs_avx2(x: &mut [C], y: &mut [C], t: &[[C; 2]; 2]) {
    pairs_in::<__m256d>(x, y, t);
}

/// [`pairs_in`] in 512-bit registers.
///
/// # Safety
/// The CPU has AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pairs_avx512(x: &mut [C], y: &mut [C], t: &[[C; 2]; 2]) {
    pairs_in::<__m512d>(x, y, t);
}

/// [`CMatrix::rows_apply`]'s update of the rows `x`, `y` (equal lengths): every output element
/// computed one way — for `x' = a·x + b·y`, `x'r = ((ar·xr − ai·xi) + br·yr) − bi·yi` and
/// `x'i = ((ar·xi + ai·xr) + br·yi) + bi·yr`, one multiplication then three fused
/// multiply-adds — `V::COLUMNS` columns at a time, the last few one at a time: the same bits at
/// either width.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pairs_in<V: Complexes>(x: &mut [C], y: &mut [C], t: &[[C; 2]; 2]) {
    assert_eq!(x.len(), y.len());
    let (re, im) = (|c: C| V::splat(c.re), |c: C| V::alternate(-c.im, c.im));
    let [[a, b], [c, d]] = *t;
    let (ar, ai, br, bi) = (re(a), im(a), re(b), im(b));
    let (cr, ci, dr, di) = (re(c), im(c), re(d), im(d));
    let full = x.len() / V::COLUMNS * V::COLUMNS;
    let (px, py) = (x.as_mut_ptr().cast::<f64>(), y.as_mut_ptr().cast::<f64>());
    for j in (0..full).step_by(V::COLUMNS) {
        // SAFETY: columns `j .. j + V::COLUMNS` of both rows (`full ≤ len`).
        unsafe {
            let (xv, yv) = (V::load(px.add(2 * j)), V::load(py.add(2 * j)));
            let (xs, ys) = (xv.swap(), yv.swap());
            ys.mul_add(bi, yv.mul_add(br, xs.mul_add(ai, xv.mul(ar))))
                .store(px.add(2 * j));
            ys.mul_add(di, yv.mul_add(dr, xs.mul_add(ci, xv.mul(cr))))
                .store(py.add(2 * j));
        }
    }
    for (x, y) in x[full..].iter_mut().zip(&mut y[full..]) {
        let out = |a: C, b: C| {
            let re = (-a.im).mul_add(x.im, a.re * x.re);
            let re = (-b.im).mul_add(y.im, b.re.mul_add(y.re, re));
            let im = a.im.mul_add(x.re, a.re * x.im);
            let im = b.im.mul_add(y.re, b.re.mul_add(y.im, im));
            C::new(re, im)
        };
        (*x, *y) = (out(a, b), out(c, d));
    }
}

/// [`products_in`] in 256-bit registers.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn products_avx2(x: [&[C]; 2], y: [&[C]; 2]) -> [[C; 2]; 2] {
    products_in::<__m256d>(x, y)
}

/// [`products_in`] in 512-bit registers.
///
/// # Safety
/// The CPU has AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn products_avx512(x: [&[C]; 2], y: [&[C]; 2]) -> [[C; 2]; 2] {
    products_in::<__m512d>(x, y)
}

/// [`row_products`] in vector registers: for every four columns, `Σ p⊙q` and `Σ p⊙swap(q)`
/// lane by lane (`p`, `q` as stored), so that lane pairs give `Re(p·q̄) = pr·qr + pi·qi` and
/// `Im(p·q̄) = pi·qr − pr·qi`; 256-bit registers keep the eight lanes of four columns in two
/// halves, so both widths hold the same partial sums, which are added in one fixed order, then
/// the last columns one at a time: the same bits at either width.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn products_in<V: Complexes>(x: [&[C]; 2], y: [&[C]; 2]) -> [[C; 2]; 2] {
    let len = x[0].len();
    assert!(
        x.iter().chain(&y).all(|r| r.len() == len),
        "rows of one length"
    );
    let (full, halves) = (len / 4 * 4, 4 / V::COLUMNS);
    // Per (a, b): Σ p⊙q, then Σ p⊙swap(q), each in `halves` registers.
    let mut sums = [[[[V::splat(0.0); 2]; 2]; 2]; 2];
    // SAFETY: columns `j .. j + V::COLUMNS` of a row of `full` columns or more.
    let at = |r: &[C], j: usize| unsafe { V::load(r.as_ptr().cast::<f64>().add(2 * j)) };
    for j in (0..full).step_by(4) {
        for half in 0..halves {
            let c = j + half * V::COLUMNS;
            let (p, q) = ([at(x[0], c), at(x[1], c)], [at(y[0], c), at(y[1], c)]);
            let qs = q.map(V::swap);
            for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let s = &mut sums[a][b];
                s[0][half] = p[a].mul_add(q[b], s[0][half]);
                s[1][half] = p[a].mul_add(qs[b], s[1][half]);
            }
        }
    }
    let mut h = [[C::new(0.0, 0.0); 2]; 2];
    for (a, row) in h.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            let mut lanes = [[0.0; 8]; 2];
            for (lanes, sum) in lanes.iter_mut().zip(&sums[a][b]) {
                for (half, v) in sum.iter().take(halves).enumerate() {
                    // SAFETY: `2·V::COLUMNS` of the eight lanes, from `half·2·V::COLUMNS`.
                    unsafe { v.store(lanes.as_mut_ptr().add(half * 2 * V::COLUMNS)) };
                }
            }
            let [same, swapped] = lanes;
            let (mut re, mut im) = (0.0, 0.0);
            for c in 0..4 {
                re += same[2 * c] + same[2 * c + 1];
                im += swapped[2 * c + 1] - swapped[2 * c];
            }
            for j in full..len {
                let (p, q) = (x[a][j], y[b][j]);
                re = p.re.mul_add(q.re, p.im.mul_add(q.im, re));
                im = p.im.mul_add(q.re, (-p.re).mul_add(q.im, im));
            }
            *v = C::new(re, im);
        }
    }
    h
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
        let best = Simd::detect();
        for simd in [Simd::Portable, Simd::Avx2, Simd::Avx512] {
            if simd > best {
                eprintln!("note: no {simd:?} here");
                continue;
            }
            for (seed, (lo, hi)) in RANGES.into_iter().enumerate() {
                let (m, t) = case(seed as u64);
                let mut out = m.clone();
                out.rows_apply_with(simd, 1, &t, lo..hi);
                for c in 0..m.cols {
                    let (x, y) = (m.at(1, c), m.at(2, c));
                    let inside = (lo..hi).contains(&c);
                    let want = match inside {
                        true => [t[0][0] * x + t[0][1] * y, t[1][0] * x + t[1][1] * y],
                        false => [x, y],
                    };
                    for (got, want) in [out.at(1, c), out.at(2, c)].into_iter().zip(want) {
                        assert!((got - want).norm() <= 1e-15, "{simd:?} {lo}..{hi} {c}");
                    }
                    // Row 0 is not touched.
                    assert_eq!(out.at(0, c), m.at(0, c));
                }
            }
        }
    }

    #[test]
    fn row_products_are_the_inner_products_at_every_width() {
        let best = Simd::detect();
        for len in [0, 1, 3, 4, 7, 32, 45] {
            let (m, _) = case(200 + len as u64);
            let (n, _) = case(300 + len as u64);
            let want: Vec<C> = (0..4)
                .map(|i| {
                    let (a, b) = (1 + i / 2, 1 + i % 2);
                    (0..len).map(|j| m.at(a, j) * n.at(b, j).conj()).sum()
                })
                .collect();
            for simd in [Simd::Portable, Simd::Avx2, Simd::Avx512] {
                if simd > best {
                    continue;
                }
                let h = row_products_with(simd, two_rows(&m, 1, 0..len), two_rows(&n, 1, 0..len));
                for (got, want) in h.iter().flatten().zip(&want) {
                    assert!((got - want).norm() <= 1e-14, "{simd:?} {len}: {got} {want}");
                }
            }
        }
    }

    /// Rows `first` and `first + 1` of `x`, columns `cols`.
    fn two_rows(x: &CMatrix, first: usize, cols: std::ops::Range<usize>) -> [&[C]; 2] {
        [first, first + 1].map(|r| &x.data[r * x.cols + cols.start..r * x.cols + cols.end])
    }

    /// The same bits, compared through their bit patterns (so that signed zeros count).
    fn same_bits<'a>(
        a: impl IntoIterator<Item = &'a C>,
        b: impl IntoIterator<Item = &'a C>,
    ) -> bool {
        a.into_iter()
            .zip(b)
            .all(|(a, b)| a.re.to_bits() == b.re.to_bits() && a.im.to_bits() == b.im.to_bits())
    }

    #[test]
    fn every_vector_width_gives_the_same_bits() {
        if Simd::detect() < Simd::Avx512 {
            eprintln!("note: no AVX-512 here; nothing to compare");
            return;
        }
        for (seed, (lo, hi)) in RANGES.into_iter().enumerate() {
            let (m, t) = case(100 + seed as u64);
            let (mut narrow, mut wide) = (m.clone(), m.clone());
            narrow.rows_apply_with(Simd::Avx2, 0, &t, lo..hi);
            wide.rows_apply_with(Simd::Avx512, 0, &t, lo..hi);
            assert!(same_bits(&narrow.data, &wide.data), "{lo}..{hi}");
            // The inner products of the rows, over those columns.
            let (x, y) = (two_rows(&m, 0, lo..hi), two_rows(&wide, 0, lo..hi));
            let narrow = row_products_with(Simd::Avx2, x, y);
            let wide = row_products_with(Simd::Avx512, x, y);
            assert!(
                same_bits(narrow.iter().flatten(), wide.iter().flatten()),
                "{lo}..{hi}"
            );
        }
    }
}
