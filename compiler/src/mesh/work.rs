//! The matrix a decomposition works on, laid out and updated for speed.
//!
//! * **Panels**: rows in groups of four; panel `p`, column `c` holds the real parts of rows
//!   `4p … 4p+3`, then their imaginary parts (eight `f64`, one 64-byte cache line), so one column
//!   operation on a panel is four-wide arithmetic on contiguous memory.
//! * **Deferred phases**: an MZI is `T = g·R·P` with `g = i·e^{iθ/2}`, `R = [[s, c], [c, −s]]`
//!   real (`s = sin θ/2`, `c = cos θ/2`) and `P = diag(e^{iφ}, 1)`. The stored matrix `S` is
//!   kept such that the true one is `W = diag(ρ)·S·diag(α)`; an MZI then changes `S` by one
//!   complex scaling of one row (or column) and the real rotation `R`, and folds `g` into `ρ`
//!   (or `α`): 6 multiplications and 6 fused multiply-adds per pair of elements instead of 16
//!   multiplications and 12 additions for a general 2×2.
//! * **Deferred column operations**: applied row by row, a row just before it is read or mixed,
//!   every row when the list fills (so the matrix streams through memory once per batch).
//!   Column and row operations commute, so only each row's own order matters.

use num_complex::Complex64 as C;

use super::matrix::CMatrix;
use super::mzi::{Nulling, null_from_left, null_from_right};

/// A structured 2×2 update of two adjacent stored lines (columns or rows) `(x, y)`:
/// `x ← s·ψ·x + c·y`, `y ← c·ψ·x − s·y`.
#[derive(Clone, Copy)]
struct Rotation {
    psi: C,
    s: f64,
    c: f64,
}

impl Rotation {
    #[inline(always)]
    fn apply(&self, (xr, xi): (f64, f64), (yr, yi): (f64, f64)) -> [f64; 4] {
        let (pr, pi) = (self.psi.re, self.psi.im);
        let ur = xr * pr - xi * pi;
        let ui = xr * pi + xi * pr;
        [
            self.s * ur + self.c * yr,
            self.s * ui + self.c * yi,
            self.c * ur - self.s * yr,
            self.c * ui - self.s * yi,
        ]
    }
}

/// A deferred column operation on columns `(k, k+1)`; rows below `last` are zero in both
/// columns when it is made, so panels wholly below it skip it.
#[derive(Clone, Copy)]
struct ColumnOp {
    k: usize,
    last: usize,
    rot: Rotation,
}

/// The working matrix (module doc).
pub(super) struct Work {
    n: usize,
    /// Panels of four rows; `data[(p·n + c)·8 + lane]` real, `+ 4` imaginary.
    data: Vec<f64>,
    rho: Vec<C>,
    alpha: Vec<C>,
    pending: Vec<ColumnOp>,
    /// How many pending operations each panel has had.
    applied: Vec<usize>,
    capacity: usize,
    /// The CPU has AVX2 and FMA.
    fma: bool,
}

impl Work {
    /// A copy of the square matrix `u`.
    pub(super) fn new(u: &CMatrix) -> Self {
        let n = u.rows;
        let panels = n.div_ceil(4);
        let mut data = vec![0.0; panels * n * 8];
        for r in 0..n {
            for c in 0..n {
                let v = u.at(r, c);
                let at = ((r / 4) * n + c) * 8 + r % 4;
                data[at] = v.re;
                data[at + 4] = v.im;
            }
        }
        Self {
            n,
            data,
            rho: vec![C::new(1.0, 0.0); n],
            alpha: vec![C::new(1.0, 0.0); n],
            // Enough operations to batch many passes while the list stays in the L2 cache.
            pending: Vec::with_capacity(8192.max(2 * n)),
            applied: vec![0; panels],
            capacity: 8192.max(2 * n),
            fma: has_fma(),
        }
    }

    /// The same, updated without AVX2/FMA (to test that path where the CPU has them).
    #[cfg(test)]
    pub(super) fn portable(mut self) -> Self {
        self.fma = false;
        self
    }

    fn index(&self, r: usize, c: usize) -> usize {
        ((r / 4) * self.n + c) * 8 + r % 4
    }

    /// The stored element `S[r][c]` (row `r` must be up to date).
    fn stored(&self, r: usize, c: usize) -> C {
        let i = self.index(r, c);
        C::new(self.data[i], self.data[i + 4])
    }

    fn zero(&mut self, r: usize, c: usize) {
        let i = self.index(r, c);
        self.data[i] = 0.0;
        self.data[i + 4] = 0.0;
    }

    /// Brings the group of [`GROUP`] panels holding row `r` up to date: each panel first level
    /// with the one furthest ahead, then the rest of the list on all of them at once (their
    /// updates are independent chains, which keeps the arithmetic units busy).
    fn touch(&mut self, r: usize) {
        let g0 = r / 4 / GROUP * GROUP;
        let g1 = (g0 + GROUP).min(self.applied.len());
        let level = *self.applied[g0..g1].iter().max().expect("a panel");
        let chunk = self.n * 8;
        for p in g0..g1 {
            let ops = &self.pending[self.applied[p]..level];
            run(
                self.fma,
                &mut self.data[p * chunk..(p + 1) * chunk],
                ops,
                4 * p,
                1,
            );
        }
        let ops = &self.pending[level..];
        let d = &mut self.data[g0 * chunk..g1 * chunk];
        run(self.fma, d, ops, 4 * g0, g1 - g0);
        self.applied[g0..g1].fill(self.pending.len());
    }

    /// Nulls `W[r][k]` with the inverse of an MZI on columns `(k, k+1)` applied to rows
    /// `0 ..= r` (deferred); returns the MZI.
    pub(super) fn null_right(&mut self, r: usize, k: usize) -> Nulling {
        if self.pending.len() == self.capacity {
            self.flush();
        }
        self.touch(r);
        let (a, b) = (self.alpha[k], self.alpha[k + 1]);
        let z = null_from_right(self.stored(r, k) * a, self.stored(r, k + 1) * b);
        // W·T† = ρ·S·diag(α)·P†·R·g*: the stored columns take ψ = α_k e^{−iφ}/α_{k+1} and R;
        // both column phases become g*·α_{k+1}.
        let psi = a * z.e.conj() / b;
        let rot = Rotation {
            psi,
            s: z.s,
            c: z.c,
        };
        self.pending.push(ColumnOp { k, last: r, rot });
        self.alpha[k] = z.g().conj() * b;
        self.alpha[k + 1] = self.alpha[k];
        self.touch(r);
        self.zero(r, k);
        z
    }

    /// Nulls `W[k+1][c]` with an MZI on rows `(k, k+1)` applied at once to columns `c ..`
    /// (the columns before `c` are zero in both rows); returns the MZI.
    pub(super) fn null_left(&mut self, k: usize, c: usize) -> Nulling {
        self.touch(k);
        self.touch(k + 1);
        let (a, b) = (self.rho[k], self.rho[k + 1]);
        let z = null_from_left(a * self.stored(k, c), b * self.stored(k + 1, c));
        // T·W = g·R·P·diag(ρ)·S·…: the stored rows take ψ = e^{iφ}ρ_k/ρ_{k+1} and R; both row
        // phases become g·ρ_{k+1}.
        let rot = Rotation {
            psi: z.e * a / b,
            s: z.s,
            c: z.c,
        };
        self.rho[k] = z.g() * b;
        self.rho[k + 1] = self.rho[k];
        let n = self.n;
        rotate_rows(self.fma, &mut self.data, n, k, c, &rot);
        self.zero(k + 1, c);
        z
    }

    /// Brings every row up to date and empties the list.
    fn flush(&mut self) {
        for p in (0..self.applied.len()).step_by(GROUP) {
            self.touch(4 * p);
        }
        self.applied.fill(0);
        self.pending.clear();
    }

    /// Flushes and returns the largest deviation of the final matrix from a unit-modulus
    /// diagonal (the nulling is unitary, so a unitary input ends exactly so), and the diagonal
    /// of the true matrix.
    pub(super) fn finish(mut self) -> (f64, Vec<C>) {
        self.flush();
        let n = self.n;
        // Squared moduli off the diagonal (no square root per element).
        let mut off = 0.0f64;
        let mut diagonal = 0.0f64;
        for r in 0..n {
            for c in 0..n {
                let v = self.stored(r, c).norm_sqr();
                if r == c {
                    diagonal = diagonal.max((v.sqrt() - 1.0).abs());
                } else {
                    off = off.max(v);
                }
            }
        }
        let worst = diagonal.max(off.sqrt());
        let d = (0..n)
            .map(|i| self.rho[i] * self.stored(i, i) * self.alpha[i])
            .collect();
        (worst, d)
    }
}

fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    #[allow(unreachable_code)]
    false
}

/// Panels updated together.
const GROUP: usize = 4;

/// Runs `ops` on the `panels` consecutive panels in `d`, the first holding rows `first ..`
/// (a panel wholly below an operation's `last` row skips it); with fused multiply-adds where
/// `fma` says the CPU has them.
fn run(fma: bool, d: &mut [f64], ops: &[ColumnOp], first: usize, panels: usize) {
    if ops.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if fma {
        // SAFETY: `fma` is only true where the CPU has AVX2 and FMA (`has_fma`).
        unsafe { run_avx2(d, ops, first, panels) };
        return;
    }
    let _ = fma;
    run_with::<false>(d, ops, first, panels);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(d: &mut [f64], ops: &[ColumnOp], first: usize, panels: usize) {
    run_with::<true>(d, ops, first, panels);
}

#[inline(always)]
fn run_with<const FMA: bool>(d: &mut [f64], ops: &[ColumnOp], first: usize, panels: usize) {
    let chunk = d.len() / panels;
    for op in ops {
        for (g, panel) in d.chunks_exact_mut(chunk).enumerate() {
            if op.last >= first + 4 * g {
                let cell: &mut [f64; 16] = (&mut panel[op.k * 8..op.k * 8 + 16])
                    .try_into()
                    .expect("two columns");
                rotate4::<FMA>(cell, &op.rot);
            }
        }
    }
}

/// Rows `(k, k+1)` of panel data `d` (`n` columns) take `rot` on columns `c ..`; with fused
/// multiply-adds where `fma` says the CPU has them.
fn rotate_rows(fma: bool, d: &mut [f64], n: usize, k: usize, c: usize, rot: &Rotation) {
    #[cfg(target_arch = "x86_64")]
    if fma {
        // SAFETY: `fma` is only true where the CPU has AVX2 and FMA (`has_fma`).
        unsafe { rotate_rows_avx2(d, n, k, c, rot) };
        return;
    }
    let _ = fma;
    rotate_rows_with::<false>(d, n, k, c, rot);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rotate_rows_avx2(d: &mut [f64], n: usize, k: usize, c: usize, rot: &Rotation) {
    rotate_rows_with::<true>(d, n, k, c, rot);
}

#[inline(always)]
fn rotate_rows_with<const FMA: bool>(d: &mut [f64], n: usize, k: usize, c: usize, r: &Rotation) {
    let p = k / 4;
    let co = Coefficients::new(r);
    let end = (p + 2).min(d.len() / (n * 8)) * n * 8;
    let cells = &mut d[p * n * 8..end];
    match k % 4 {
        0 => in_panel::<FMA, 0>(&mut cells[c * 8..n * 8], &co, r),
        1 => in_panel::<FMA, 1>(&mut cells[c * 8..n * 8], &co, r),
        2 => in_panel::<FMA, 2>(&mut cells[c * 8..n * 8], &co, r),
        _ => {
            // Lane 3 of panel p and lane 0 of panel p + 1.
            let (top, bottom) = cells.split_at_mut(n * 8);
            let (top, bottom) = (&mut top[c * 8..], &mut bottom[c * 8..n * 8]);
            let mut pairs = top.chunks_exact_mut(16).zip(bottom.chunks_exact_mut(16));
            for (x, y) in &mut pairs {
                let re = [x[3], y[0], x[11], y[8]];
                let im = [x[7], y[4], x[15], y[12]];
                let (re, im) = co.apply::<FMA>(re, im);
                [x[3], y[0], x[11], y[8]] = re;
                [x[7], y[4], x[15], y[12]] = im;
            }
            if (n - c) % 2 == 1 {
                let (x, y) = (&mut top[(n - c - 1) * 8..], &mut bottom[(n - c - 1) * 8..]);
                [x[3], x[7], y[0], y[4]] = r.apply((x[3], x[7]), (y[0], y[4]));
            }
        }
    }
}

/// Lanes `L` (row k) and `L + 1` (row k+1) of every cell in `cells`, two cells at a time.
#[inline(always)]
fn in_panel<const FMA: bool, const L: usize>(cells: &mut [f64], co: &Coefficients, r: &Rotation) {
    let mut pairs = cells.chunks_exact_mut(16);
    for v in &mut pairs {
        let re = [v[L], v[L + 1], v[8 + L], v[9 + L]];
        let im = [v[4 + L], v[5 + L], v[12 + L], v[13 + L]];
        let (re, im) = co.apply::<FMA>(re, im);
        [v[L], v[L + 1], v[8 + L], v[9 + L]] = re;
        [v[4 + L], v[5 + L], v[12 + L], v[13 + L]] = im;
    }
    let v = pairs.into_remainder();
    if !v.is_empty() {
        [v[L], v[4 + L], v[L + 1], v[5 + L]] = r.apply((v[L], v[4 + L]), (v[L + 1], v[5 + L]));
    }
}

/// A row rotation as four-lane arithmetic on `(x, y, x', y')` (the two rows in two columns):
/// lane `j` becomes `A_j·v_j + B_j·v_{j^1}` with `A = (sψ, −s, sψ, −s)` and
/// `B = (c, cψ, c, cψ)`.
struct Coefficients {
    ar: [f64; 4],
    ai: [f64; 4],
    br: [f64; 4],
    bi: [f64; 4],
}

impl Coefficients {
    fn new(r: &Rotation) -> Self {
        let (s, c, p) = (r.s, r.c, r.psi);
        Self {
            ar: [s * p.re, -s, s * p.re, -s],
            ai: [s * p.im, 0.0, s * p.im, 0.0],
            br: [c, c * p.re, c, c * p.re],
            bi: [0.0, c * p.im, 0.0, c * p.im],
        }
    }

    #[inline(always)]
    fn apply<const FMA: bool>(&self, re: [f64; 4], im: [f64; 4]) -> ([f64; 4], [f64; 4]) {
        let (ar, ai, br, bi) = (&self.ar, &self.ai, &self.br, &self.bi);
        let rp = [re[1], re[0], re[3], re[2]];
        let ip = [im[1], im[0], im[3], im[2]];
        let mut out = ([0.0; 4], [0.0; 4]);
        for j in 0..4 {
            let nr = fma::<FMA>(ar[j], re[j], fma::<FMA>(br[j], rp[j], -(ai[j] * im[j])));
            out.0[j] = fma::<FMA>(-bi[j], ip[j], nr);
            let ni = fma::<FMA>(ar[j], im[j], fma::<FMA>(ai[j], re[j], br[j] * ip[j]));
            out.1[j] = fma::<FMA>(bi[j], rp[j], ni);
        }
        out
    }
}

#[inline(always)]
fn fma<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// One column operation on the two columns of a panel: `cell` = real parts of column k (four
/// rows), imaginary parts, then the same for column k+1.
#[inline(always)]
fn rotate4<const FMA: bool>(cell: &mut [f64; 16], rot: &Rotation) {
    let (pr, pi, s, c) = (rot.psi.re, rot.psi.im, rot.s, rot.c);
    let mut out = [0.0; 16];
    for l in 0..4 {
        let (xr, xi, yr, yi) = (cell[l], cell[4 + l], cell[8 + l], cell[12 + l]);
        let ur = fma::<FMA>(xr, pr, -(xi * pi));
        let ui = fma::<FMA>(xr, pi, xi * pr);
        out[l] = fma::<FMA>(s, ur, c * yr);
        out[4 + l] = fma::<FMA>(s, ui, c * yi);
        out[8 + l] = fma::<FMA>(c, ur, -(s * yr));
        out[12 + l] = fma::<FMA>(c, ui, -(s * yi));
    }
    *cell = out;
}
