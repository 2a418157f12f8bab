//! Propagation onto an output window: a detector of any size and pitch, anywhere in the output
//! plane (off axis too), instead of the input's own grid.
//!
//! A [`Window`] is a [`Grid`] (samples and pitch) and the position of its centre in the input's
//! coordinates. [`Planner::plan_window`] plans one of four methods, each a chain of separable
//! zoom DFTs (chirp-z transforms, `propagate::zoom`) and pointwise factors, so any output pitch
//! and offset costs a few FFTs per row and column:
//!
//! | method | what | valid when (per axis; `d` input pitch, `D`, `K` output pitch and samples, `c` window centre) |
//! |---|---|---|
//! | `bl-asm` | exact angular spectrum: the spectrum of the field zero-padded to `M` samples, the transfer function band-limited to the frequencies that land in the window (shifted band limit, after Matsushima, Opt. Express 18, 18453 (2010)), and the inverse transform evaluated on the window's points | always; `M·d` must span the source and the window, `M ≥ (n·d + K·D)/d`, so far-off or large windows cost more |
//! | `sas` | scalable angular spectrum (Heintzmann, Loetgering & Wechsler, Optica 10, 1407 (2023)): a band-limited precompensation `H_AS/H_Fresnel` on the padded grid, then the single-transform Fresnel integral onto the window | `|z| ≥ M·d²/λ'` (Fresnel chirp sampled), `|z| ≥ 2d(|c| + K·D/2)/λ'` (no replica in the window), and the precompensation band keeps every frequency that reaches the window |
//! | `fresnel-sfft` | the Fresnel integral as one scaled transform | `|z| ≥ 2·a·d/λ'` (input chirp sampled over the source half-width `a`) and no replica in the window |
//! | `fraunhofer` | the far field | `|z| ≥ 2·D_s²/λ'` and no replica in the window |
//!
//! Conventions are those of [`crate::propagate`]: `exp(−iωt)`, negative distances propagate
//! backwards; every plan has an exact adjoint ([`WindowPlan::adjoint`]) mapping fields on the
//! window back to the input grid, which is what gradients and phase retrieval flow through.
//! Windows always use a linear convolution.

use std::f64::consts::{PI, TAU};

use num_complex::Complex;
use rayon::prelude::*;

use super::check::Criterion;
use super::zoom::{Points, Zoom};
use super::{Evanescent, Method, Planner, Propagation};
use crate::error::{OpticsError, Result, invalid};
use crate::fft::{FftCache, Pool};
use crate::field::{Field, Real, cplx};
use crate::grid::{Grid, Wave, next_fast_len};
use crate::memory;
use crate::units::format_length;

type C64 = Complex<f64>;

/// Where the output plane is sampled: a grid (samples and pitch, metres) whose centre sample
/// (index `⌊n/2⌋` along each axis, as in [`Grid::x`]) sits at `centre = (x, y)` metres in the
/// input plane's coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Samples and pitch of the output plane.
    pub grid: Grid,
    /// Position of the window's centre sample, metres.
    pub centre: (f64, f64),
}

impl Window {
    /// A window of `grid` centred at `centre` (metres).
    pub fn new(grid: Grid, centre: (f64, f64)) -> Result<Self> {
        if !(centre.0.is_finite() && centre.1.is_finite()) {
            return Err(invalid(
                "window centre",
                format!("({}, {}) is not a finite position", centre.0, centre.1),
            ));
        }
        Ok(Self { grid, centre })
    }

    /// A window of `grid` on the optical axis.
    pub fn on_axis(grid: Grid) -> Self {
        Self {
            grid,
            centre: (0.0, 0.0),
        }
    }

    /// x positions of the window's columns, metres.
    pub fn x(&self) -> Vec<f64> {
        self.grid.x().iter().map(|x| x + self.centre.0).collect()
    }

    /// y positions of the window's rows, metres.
    pub fn y(&self) -> Vec<f64> {
        self.grid.y().iter().map(|y| y + self.centre.1).collect()
    }

    fn points(&self) -> (Points, Points) {
        (
            Points::centred(self.grid.nx, self.grid.dx, self.centre.0),
            Points::centred(self.grid.ny, self.grid.dy, self.centre.1),
        )
    }
}

/// One step of a row operation.
enum Step<T: Real> {
    /// A zoom DFT along the row.
    Zoom(Zoom<T>),
    /// Multiply by the same factors on every row.
    Scale(Vec<Complex<T>>),
    /// Multiply row `r` by `table[r·width..(r + 1)·width]` (the transfer function).
    Table(Vec<Complex<T>>),
}

/// A linear map applied to every row of an array: `n_in` values in, `n_out` out.
struct Chain<T: Real> {
    n_in: usize,
    steps: Vec<Step<T>>,
}

impl<T: Real> Chain<T> {
    fn new(n_in: usize, steps: Vec<Step<T>>) -> Self {
        Self { n_in, steps }
    }

    fn n_out(&self) -> usize {
        out_len(&self.steps, self.n_in)
    }

    /// The adjoint chain: the steps reversed, each replaced by its adjoint.
    fn adjoint(&self, cache: &FftCache<T>) -> Self {
        let conj = |v: &[Complex<T>]| v.iter().map(|z| z.conj()).collect();
        Self {
            n_in: self.n_out(),
            steps: self
                .steps
                .iter()
                .rev()
                .map(|s| match s {
                    Step::Zoom(z) => Step::Zoom(z.adjoint(cache)),
                    Step::Scale(v) => Step::Scale(conj(v)),
                    Step::Table(v) => Step::Table(conj(v)),
                })
                .collect(),
        }
    }
}

/// Length of a row of `n_in` values after `steps`.
fn out_len<T: Real>(steps: &[Step<T>], n_in: usize) -> usize {
    steps
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::Zoom(z) => Some(z.output_len()),
            _ => None,
        })
        .unwrap_or(n_in)
}

/// Longest row inside `steps` (from rows of `n_in`) and longest zoom work buffer.
fn sizes<T: Real>(steps: &[Step<T>], n_in: usize) -> (usize, usize) {
    steps.iter().fold((n_in, 0), |(len, work), s| match s {
        Step::Zoom(z) => (len.max(z.output_len()), work.max(z.work_len())),
        _ => (len, work),
    })
}

/// Applies `steps` to row `row` of an array (`row` picks the row of a [`Step::Table`]).
fn apply_steps<T: Real>(
    steps: &[Step<T>],
    row: usize,
    input: &[Complex<T>],
    output: &mut [Complex<T>],
    s: &mut Scratch<T>,
) {
    let Scratch { a, b, work } = s;
    let mut len = input.len();
    a[..len].copy_from_slice(input);
    for step in steps {
        match step {
            Step::Zoom(z) => {
                z.apply(&a[..len], &mut b[..z.output_len()], work);
                len = z.output_len();
                std::mem::swap(a, b);
            }
            Step::Scale(v) => a[..len].iter_mut().zip(v).for_each(|(x, w)| *x = *x * w),
            Step::Table(t) => a[..len]
                .iter_mut()
                .zip(&t[row * len..(row + 1) * len])
                .for_each(|(x, w)| *x = *x * w),
        }
    }
    output.copy_from_slice(&a[..len]);
}

/// Per-task buffers of the row passes.
struct Scratch<T> {
    a: Vec<Complex<T>>,
    b: Vec<Complex<T>>,
    work: Vec<Complex<T>>,
}

impl<T: Real> Scratch<T> {
    /// Buffers for rows of up to `len` values and zooms of up to `work` work values.
    fn new((len, work): (usize, usize)) -> Self {
        let zero = Complex::<T>::default();
        Self {
            a: vec![zero; len],
            b: vec![zero; len],
            work: vec![zero; work],
        }
    }
}

/// Per-field intermediate arrays.
struct Buffers<T> {
    rows: Vec<Complex<T>>,
    columns: Vec<Complex<T>>,
    out_columns: Vec<Complex<T>>,
    out_rows: Vec<Complex<T>>,
}

/// A separable operator `rows_in × cols_in → rows_out × cols_out`: the `x1` chain on every row,
/// a transpose, the `y` chain on every column (which may multiply by a per-column table), a
/// transpose and the `x2` chain on every row.
struct Pipeline<T: Real> {
    rows_in: usize,
    x1: Chain<T>,
    y: Chain<T>,
    x2: Chain<T>,
    scratch: Pool<Scratch<T>>,
    buffers: Pool<Buffers<T>>,
}

impl<T: Real> Pipeline<T> {
    fn new(rows_in: usize, x1: Chain<T>, y: Chain<T>, x2: Chain<T>) -> Self {
        let (mut len, mut work) = (0, 0);
        for c in [&x1, &y, &x2] {
            let (l, w) = sizes(&c.steps, c.n_in);
            len = len.max(l);
            work = work.max(w);
        }
        let zero = Complex::<T>::default();
        let (mid, rows_out) = (x1.n_out(), y.n_out());
        Self {
            rows_in,
            scratch: Pool::new(move || Scratch::new((len, work))),
            buffers: Pool::new(move || Buffers {
                rows: vec![zero; rows_in * mid],
                columns: vec![zero; rows_in * mid],
                out_columns: vec![zero; mid * rows_out],
                out_rows: vec![zero; rows_out * mid],
            }),
            x1,
            y,
            x2,
        }
    }

    fn adjoint(&self, cache: &FftCache<T>) -> Self {
        Self::new(
            self.y.n_out(),
            self.x2.adjoint(cache),
            self.y.adjoint(cache),
            self.x1.adjoint(cache),
        )
    }

    fn len_in(&self) -> usize {
        self.rows_in * self.x1.n_in
    }

    fn len_out(&self) -> usize {
        self.y.n_out() * self.x2.n_out()
    }

    /// Applies `chain` to every row of `src` (rows of `chain.n_in`) into `dst`.
    fn pass(&self, chain: &Chain<T>, src: &[Complex<T>], dst: &mut [Complex<T>]) {
        let (n_in, n_out) = (chain.n_in, chain.n_out());
        let rows = src.len() / n_in;
        let threads = rayon::current_num_threads();
        let per_task = rows.div_ceil(4 * threads).max(1);
        // As many scratch sets as workers can use at once, so that no later call allocates.
        self.scratch.reserve(threads);
        dst.par_chunks_mut(per_task * n_out)
            .enumerate()
            .for_each(|(t, chunk)| {
                let mut s = self.scratch.take();
                for (i, out) in chunk.chunks_exact_mut(n_out).enumerate() {
                    let r = t * per_task + i;
                    apply_steps(&chain.steps, r, &src[r * n_in..(r + 1) * n_in], out, &mut s);
                }
            });
    }

    /// One field through the pipeline.
    fn run(&self, input: &[Complex<T>], output: &mut [Complex<T>]) {
        self.buffers.reserve(1);
        let mut buf = self.buffers.take();
        let Buffers {
            rows,
            columns,
            out_columns,
            out_rows,
        } = &mut *buf;
        let (mid, rows_out) = (self.x1.n_out(), self.y.n_out());
        self.pass(&self.x1, input, rows);
        transpose(rows, columns, self.rows_in, mid);
        self.pass(&self.y, columns, out_columns);
        transpose(out_columns, out_rows, mid, rows_out);
        self.pass(&self.x2, out_rows, output);
    }
}

/// `dst[c][r] = src[r][c]` for an `rows × cols` array, in cache-sized tiles.
fn transpose<T: Copy + Send + Sync>(src: &[T], dst: &mut [T], rows: usize, cols: usize) {
    const TILE: usize = 32;
    dst.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(t, block)| {
            let c0 = t * TILE;
            let width = block.len() / rows;
            for r0 in (0..rows).step_by(TILE) {
                for r in r0..(r0 + TILE).min(rows) {
                    let line = &src[r * cols + c0..r * cols + c0 + width];
                    for (c, v) in line.iter().enumerate() {
                        block[c * rows + r] = *v;
                    }
                }
            }
        });
}

/// A planned propagation from the input grid onto a [`Window`]; see the module docs.
pub struct WindowPlan<T: Real> {
    method: Method,
    input: Grid,
    window: Window,
    wave: Wave,
    distance: f64,
    padded: (usize, usize),
    /// The sampling criterion of the chosen method, evaluated for this geometry.
    pub criterion: Criterion,
    /// For [`Method::Auto`]: the criteria evaluated in order until one held.
    pub considered: Vec<Criterion>,
    forward: Pipeline<T>,
    backward: Pipeline<T>,
}

impl<T: Real> std::fmt::Debug for WindowPlan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowPlan")
            .field("method", &self.method)
            .field("input", &self.input)
            .field("window", &self.window)
            .field("distance", &self.distance)
            .field("padded", &self.padded)
            .finish_non_exhaustive()
    }
}

impl<T: Real> WindowPlan<T> {
    /// The method this plan runs (never `Auto`).
    pub fn method(&self) -> Method {
        self.method
    }

    /// Sampling of the input plane.
    pub fn input_grid(&self) -> Grid {
        self.input
    }

    /// The output window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The light this plan was made for.
    pub fn wave(&self) -> Wave {
        self.wave
    }

    /// The distance, metres.
    pub fn distance(&self) -> f64 {
        self.distance
    }

    /// `(my, mx)`: samples of the padded input plane the spectrum is taken over (the input's
    /// own size for the single-transform methods).
    pub fn padded_shape(&self) -> (usize, usize) {
        self.padded
    }

    /// Propagates every field of `input` (`[B, ny, nx]` on the input grid) into `output`
    /// (`[B, Ky, Kx]` on the window).
    pub fn propagate(&self, input: &[Complex<T>], output: &mut [Complex<T>]) -> Result<()> {
        run_batch(&self.forward, input, output, "input", "window")
    }

    /// The adjoint: every field of `output` (`[B, Ky, Kx]` on the window) back onto the input
    /// grid, `input = Aᴴ output`, so that `⟨A u, v⟩ = ⟨u, Aᴴ v⟩`.
    pub fn adjoint(&self, output: &[Complex<T>], input: &mut [Complex<T>]) -> Result<()> {
        run_batch(&self.backward, output, input, "window", "input")
    }

    /// The operator (`adjoint = false`) or its adjoint as dense [`Matrices`].
    pub fn matrices(&self, adjoint: bool) -> Matrices<T> {
        if adjoint {
            self.backward.matrices()
        } else {
            self.forward.matrices()
        }
    }

    /// Propagates a [`Field`] on the input grid, returning the field on the window's grid.
    pub fn apply(&self, field: &Field<T>) -> Result<Field<T>> {
        super::check_field(field, self.input, self.wave)?;
        let w = self.wave.wavelength;
        let mut out = Field::zeros(self.window.grid, w, field.batch())?;
        self.propagate(field.data(), out.data_mut())?;
        Ok(out)
    }
}

fn run_batch<T: Real>(
    p: &Pipeline<T>,
    src: &[Complex<T>],
    dst: &mut [Complex<T>],
    from: &str,
    to: &str,
) -> Result<()> {
    let (n_in, n_out) = (p.len_in(), p.len_out());
    if src.is_empty() || !src.len().is_multiple_of(n_in) || dst.len() != src.len() / n_in * n_out {
        return Err(OpticsError::Shape(format!(
            "{} values do not make whole fields of {n_in} samples on the {from} grid with {} \
             values of {n_out} samples on the {to} grid",
            src.len(),
            dst.len()
        )));
    }
    for (s, d) in src.chunks_exact(n_in).zip(dst.chunks_exact_mut(n_out)) {
        p.run(s, d);
    }
    Ok(())
}

/// A window plan (or its adjoint) as dense matrices, for code that cannot call the kernels
/// (a GPU backend composing the operator from matrix products): per field `u` (`[ny, nx]`),
///
/// `out = rows_out · (table ⊙ (rows_in · u · cols_in)) · cols_out`,
///
/// every matrix row-major with the shape given, `table` absent (all ones) for the
/// single-transform methods. They are the plan's own zoom DFTs and factors applied to unit
/// vectors, so they cannot drift from the kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrices<T> {
    /// `(ny, nx)` of the fields in, `(p, q)` inside, `(ky, kx)` out.
    pub shapes: [(usize, usize); 3],
    /// `[p, ny]`.
    pub rows_in: Vec<Complex<T>>,
    /// `[nx, q]`.
    pub cols_in: Vec<Complex<T>>,
    /// `[p, q]`, or `None` for ones.
    pub table: Option<Vec<Complex<T>>>,
    /// `[ky, p]`.
    pub rows_out: Vec<Complex<T>>,
    /// `[q, kx]`.
    pub cols_out: Vec<Complex<T>>,
}

/// The matrix `[n_out, n_in]` of `steps` (zooms and scales, no table) applied to a row of
/// `n_in` values; `transpose` returns `[n_in, n_out]` instead.
fn dense<T: Real>(steps: &[Step<T>], n_in: usize, transpose: bool) -> (usize, Vec<Complex<T>>) {
    debug_assert!(!steps.iter().any(|s| matches!(s, Step::Table(_))));
    let n_out = out_len(steps, n_in);
    let mut s = Scratch::new(sizes(steps, n_in));
    let mut m = vec![Complex::<T>::default(); n_out * n_in];
    let mut unit = vec![Complex::<T>::default(); n_in];
    let mut column = vec![Complex::<T>::default(); n_out];
    for j in 0..n_in {
        unit.fill(Complex::default());
        unit[j] = Complex::new(T::one(), T::zero());
        apply_steps(steps, 0, &unit, &mut column, &mut s);
        for (i, &x) in column.iter().enumerate() {
            if transpose {
                m[j * n_out + i] = x;
            } else {
                m[i * n_in + j] = x;
            }
        }
    }
    (n_out, m)
}

impl<T: Real> Pipeline<T> {
    fn matrices(&self) -> Matrices<T> {
        let (ny, nx) = (self.rows_in, self.x1.n_in);
        let (q, cols_in) = dense(&self.x1.steps, nx, true);
        let at = self
            .y
            .steps
            .iter()
            .position(|s| matches!(s, Step::Table(_)));
        let (before, table, after) = match at {
            Some(i) => (
                &self.y.steps[..i],
                match &self.y.steps[i] {
                    Step::Table(t) => Some(t),
                    _ => None,
                },
                &self.y.steps[i + 1..],
            ),
            None => (&self.y.steps[..], None, &self.y.steps[..0]),
        };
        let (p, rows_in) = dense(before, ny, false);
        let (ky, rows_out) = dense(after, p, false);
        let (kx, cols_out) = dense(&self.x2.steps, q, true);
        // The pipeline's table is laid out [q][p] (its rows are the x1 outputs).
        let table = table.map(|t| {
            (0..p * q)
                .map(|i| t[(i % q) * p + i / q])
                .collect::<Vec<_>>()
        });
        Matrices {
            shapes: [(ny, nx), (p, q), (ky, kx)],
            rows_in,
            cols_in,
            table,
            rows_out,
            cols_out,
        }
    }
}

/// One axis of a geometry: input samples, window samples, padded length.
#[derive(Clone, Copy)]
struct Axis {
    input: Points,
    output: Points,
    m: usize,
}

impl Axis {
    /// Input samples.
    fn n(&self) -> usize {
        self.input.n
    }

    /// Input pitch, metres.
    fn d(&self) -> f64 {
        self.input.step
    }

    /// Range `[lo, hi]` of the offsets `X − x` between window and source points.
    fn offsets(&self) -> (f64, f64) {
        (
            self.output.start - self.input.end(),
            self.output.end() - self.input.start,
        )
    }

    /// Farthest the window reaches from the axis, plus the source's half-width: the largest
    /// lateral offset light must travel to reach it.
    fn reach(&self) -> f64 {
        let (lo, hi) = self.offsets();
        lo.abs().max(hi.abs())
    }

    /// How far the window reaches from the axis, `|c| + K·D/2`: the alias-free half-width
    /// `λ'|z|/(2d)` of the single-transform methods must cover it.
    fn window_edge(&self) -> f64 {
        self.output.start.abs().max(self.output.end().abs()) + 0.5 * self.output.step.abs()
    }

    /// Centred frequencies of the `m`-sample padded transform.
    fn frequencies(&self) -> Points {
        Points::centred(self.m, 1.0 / (self.m as f64 * self.d()), 0.0)
    }
}

/// Padded length of the angular-spectrum window method: the padding asked for, and at least
/// what makes `M·d` span every offset between window and source.
fn asm_padded(n: usize, d: f64, out: Points, padding: super::Padding) -> usize {
    let span = (n - 1) as f64 * d + (out.n - 1) as f64 * out.step;
    let need = (span / d).ceil() as usize + 1;
    next_fast_len(padding.padded_len(n).max(need).max(n))
}

fn axes(method: Method, input: &Grid, window: &Window, p: &Propagation) -> [Axis; 2] {
    let (ox, oy) = window.points();
    let axis = |n: usize, d: f64, output: Points| {
        let m = match method {
            Method::BandLimitedAsm => asm_padded(n, d, output, p.padding),
            Method::Sas => p.padding.padded_len(n).max(n),
            _ => n,
        };
        Axis {
            input: Points::centred(n, d, 0.0),
            output,
            m,
        }
    };
    [axis(input.nx, input.dx, ox), axis(input.ny, input.dy, oy)]
}

/// How far the bl-asm window method may grow its transform before `Auto` prefers the cheaper
/// far-field methods: this many times the default padded length per axis.
const AUTO_ASM_GROWTH: usize = 4;

/// The order in which `Auto` tries the window methods.
const WINDOW_ORDER: [Method; 4] = [
    Method::BandLimitedAsm,
    Method::Sas,
    Method::FresnelSingleFft,
    Method::Fraunhofer,
];

/// The frequency-domain shift `|z|·λ'f·(1/√(1 − λ'²f²) − 1)` of the SAS precompensation at
/// `f`: how far it moves light with that frequency (the angular spectrum's landing offset
/// minus the Fresnel one).
fn sas_shift(z: f64, lam: f64, f: f64) -> f64 {
    let s = (lam * f).min(1.0 - 1e-12);
    z.abs() * s * (1.0 / (1.0 - s * s).sqrt() - 1.0)
}

/// The criterion of `method` for propagating fields on `input` over `p.distance` onto
/// `window`. `auto` marks the evaluation `Auto` makes, which also asks bl-asm to be cheap.
fn evaluate(
    method: Method,
    input: &Grid,
    window: &Window,
    wave: Wave,
    p: &Propagation,
    auto: bool,
) -> Criterion {
    let z = p.distance.abs();
    let lam = wave.lambda();
    let axes = axes(method, input, window, p);
    let zt = format_length(z);
    let mut lo = 0.0f64;
    let mut notes = Vec::new();
    let mut fixes = Vec::new();
    let mut holds = true;
    let rule;
    match method {
        Method::BandLimitedAsm => {
            rule = "the padded window M·d must span the source and the output window; the band \
                    limit keeps the frequencies that land in the window"
                .to_string();
            let grow: Vec<usize> = axes
                .iter()
                .map(|a| {
                    a.m.div_ceil(super::Padding::default().padded_len(a.n()).max(1))
                })
                .collect();
            notes.push(format!(
                "padded to {}×{} samples ({}× and {}× the default)",
                axes[1].m, axes[0].m, grow[1], grow[0]
            ));
            if auto && grow.iter().any(|&g| g > AUTO_ASM_GROWTH) {
                holds = false;
                fixes.push(format!(
                    "the window reaches too far for a cheap angular spectrum (over {AUTO_ASM_GROWTH}× \
                     the default padding); request bl-asm to run it anyway"
                ));
            }
        }
        Method::Sas | Method::FresnelSingleFft | Method::Fraunhofer => {
            let (ax, ay) = p.support.unwrap_or((
                input.nx as f64 * input.dx / 2.0,
                input.ny as f64 * input.dy / 2.0,
            ));
            rule = match method {
                Method::Sas => "the Fresnel chirp must be sampled over the padded window \
                                (z ≥ M·d²/λ), no replica may fall in the window (z ≥ 2d·(|c| + W/2)/λ), \
                                and the precompensation band must keep every frequency that reaches the window",
                Method::FresnelSingleFft => "the input chirp must be sampled over the source \
                                             (z ≥ 2·a·d/λ) and no replica may fall in the window \
                                             (z ≥ 2d·(|c| + W/2)/λ)",
                _ => "the plane must be in the far field of the source (z ≥ 2·D²/λ) and no replica \
                      may fall in the window (z ≥ 2d·(|c| + W/2)/λ)",
            }
            .to_string();
            for (a, half) in axes.iter().zip([ax, ay]) {
                let chirp = match method {
                    Method::Sas => a.m as f64 * a.d() * a.d() / lam,
                    Method::FresnelSingleFft => 2.0 * half * a.d() / lam,
                    _ => 0.0,
                };
                let replica = 2.0 * a.d() * a.window_edge() / lam;
                lo = lo.max(chirp).max(replica);
            }
            if method == Method::Fraunhofer {
                let ds = 2.0 * (ax * ax + ay * ay).sqrt();
                lo = lo.max(2.0 * ds * ds / lam);
            }
            if z < lo || z == 0.0 {
                holds = false;
                fixes.push(format!("lengthen the distance to ≥ {}", format_length(lo)));
            }
            if method == Method::Sas && z > 0.0 {
                for (a, name) in axes.iter().zip(["x", "y"]) {
                    let reach = a.reach();
                    let f_land = reach / (lam * (reach * reach + z * z).sqrt());
                    let f = f_land.min(0.5 / a.d());
                    let shift = sas_shift(z, lam, f);
                    let room = 0.5 * (a.m - a.n()) as f64 * a.d();
                    if shift > room {
                        holds = false;
                        notes.push(format!(
                            "the precompensation moves light by {} along {name} but the padding \
                             leaves {}",
                            format_length(shift),
                            format_length(room)
                        ));
                        fixes.push("pad more (--pad 3 or 4) or use bl-asm".into());
                    }
                }
            }
        }
        _ => unreachable!("{method} has no window plan"),
    }
    let mut limit = if lo > 0.0 {
        format!("|z| = {zt} must be ≥ {}", format_length(lo))
    } else {
        format!("|z| = {zt}")
    };
    for n in notes {
        limit.push_str("; ");
        limit.push_str(&n);
    }
    if !holds {
        match method {
            Method::BandLimitedAsm => {}
            Method::Sas | Method::FresnelSingleFft => fixes.push(
                "or bl-asm, valid at any distance (it pads as far as the window needs)".into(),
            ),
            _ => fixes.push("or sas / bl-asm, valid closer to the source".into()),
        }
        fixes.push("or --method auto to pick a valid method".into());
    }
    fixes.dedup();
    Criterion {
        method,
        holds,
        rule,
        limit,
        fix: if holds {
            String::new()
        } else {
            fixes.join("; ")
        },
        min_distance: lo,
        max_distance: f64::INFINITY,
    }
}

impl<T: Real> Planner<T> {
    /// Plans a propagation of fields on `grid` onto `window` (see [`crate::propagate::window`]).
    ///
    /// `propagation` gives the distance, the method (`Auto`, `BandLimitedAsm`, `Sas`,
    /// `FresnelSingleFft` or `Fraunhofer`), the least padding, the evanescent-wave treatment
    /// (bl-asm) and whether criteria are checked. `Auto` tries bl-asm while its transform stays
    /// within 4× the default padding, then sas, fresnel-sfft and fraunhofer, and falls back to
    /// bl-asm, which is valid at any distance. Window plans are not cached: keep the plan.
    ///
    /// Errors: invalid parameters, a method without a window plan, a failed criterion (unless
    /// `propagation.check` is false), or not enough memory ([`OpticsError::Memory`]).
    pub fn plan_window(
        &self,
        grid: &Grid,
        wave: Wave,
        propagation: &Propagation,
        window: &Window,
    ) -> Result<WindowPlan<T>> {
        let z = propagation.distance;
        if !z.is_finite() {
            return Err(invalid("distance", format!("{z} is not a finite length")));
        }
        Window::new(window.grid, window.centre)?;
        propagation.padding.validate()?;
        let requested = propagation.method;
        let (method, criterion, considered) = if requested == Method::Auto {
            let mut considered = Vec::new();
            let mut chosen = None;
            for m in WINDOW_ORDER {
                let c = evaluate(m, grid, window, wave, propagation, true);
                considered.push(c.clone());
                if c.holds {
                    chosen = Some((m, c));
                    break;
                }
            }
            match chosen {
                Some((m, c)) => (m, c, considered),
                None => {
                    let c = evaluate(
                        Method::BandLimitedAsm,
                        grid,
                        window,
                        wave,
                        propagation,
                        false,
                    );
                    (Method::BandLimitedAsm, c, considered)
                }
            }
        } else if WINDOW_ORDER.contains(&requested) {
            let c = evaluate(requested, grid, window, wave, propagation, false);
            if propagation.check && !c.holds {
                return Err(c.into_error());
            }
            (requested, c, Vec::new())
        } else {
            return Err(invalid(
                "method",
                format!(
                    "{requested} cannot propagate onto an output window; use bl-asm, sas, \
                     fresnel-sfft, fraunhofer or auto"
                ),
            ));
        };
        if z == 0.0 && method != Method::BandLimitedAsm {
            return Err(invalid(
                "distance",
                format!("{method} needs a non-zero distance; use bl-asm for z = 0"),
            ));
        }
        let [ax, ay] = axes(method, grid, window, propagation);
        let c = std::mem::size_of::<Complex<T>>();
        let table = match method {
            Method::BandLimitedAsm | Method::Sas => memory::bytes(&[ax.m, ay.m, 16 + c]),
            _ => 0,
        };
        let mid = if table > 0 { ax.m } else { window.grid.nx };
        let rows = grid.ny.max(window.grid.ny).max(ay.m);
        let buffers = memory::bytes(&[4, mid, rows, c]);
        memory::check_fits(
            table.saturating_add(buffers.saturating_mul(2)),
            || {
                format!(
                    "propagating a {}×{} field onto a {}×{} window with {method} (a {}×{} transform)",
                    grid.ny, grid.nx, window.grid.ny, window.grid.nx, ay.m, ax.m
                )
            },
            "use a smaller or nearer window, fewer samples, or sas / fresnel-sfft for far windows",
        )?;
        let forward = pipeline(&self.ffts, method, ax, ay, wave, z, propagation.evanescent);
        let backward = forward.adjoint(&self.ffts);
        Ok(WindowPlan {
            method,
            input: *grid,
            window: *window,
            wave,
            distance: z,
            padded: (ay.m, ax.m),
            criterion,
            considered,
            forward,
            backward,
        })
    }
}

/// `exp(iπu²/(λz))` at each point.
fn chirp(points: Points, lam: f64, z: f64) -> Vec<C64> {
    (0..points.n)
        .map(|j| {
            let u = points.at(j);
            C64::from_polar(1.0, PI * u * u / (lam * z))
        })
        .collect()
}

fn cast<T: Real>(v: Vec<C64>) -> Vec<Complex<T>> {
    v.into_iter().map(cplx::<T>).collect()
}

/// The transfer-function table `[fx][fy]` (rows along the padded x frequencies), divided by
/// `mx·my` for the unnormalised transforms around it.
fn table<T: Real>(ax: &Axis, ay: &Axis, h: impl Fn(f64, f64) -> C64 + Sync) -> Vec<Complex<T>> {
    let (fx, fy) = (ax.frequencies(), ay.frequencies());
    let norm = 1.0 / (ax.m * ay.m) as f64;
    (0..ax.m)
        .into_par_iter()
        .flat_map_iter(|i| {
            let u = fx.at(i);
            (0..ay.m).map(move |j| (u, fy.at(j)))
        })
        .map(|(u, v)| cplx::<T>(h(u, v) * norm))
        .collect()
}

fn pipeline<T: Real>(
    cache: &FftCache<T>,
    method: Method,
    ax: Axis,
    ay: Axis,
    wave: Wave,
    z: f64,
    evanescent: Evanescent,
) -> Pipeline<T> {
    let lam = wave.lambda();
    let k = wave.k();
    // The spectrum of the zero-padded field at the padded transform's centred frequencies,
    // and the inverse transform onto `to`.
    let spectrum = |a: &Axis| Zoom::new(cache, a.input, a.frequencies(), -TAU);
    let inverse = |a: &Axis, to: Points| Zoom::new(cache, a.frequencies(), to, TAU);
    // The single-transform Fresnel integral from `from` to the window along one axis:
    // input chirp (Fresnel), the zoom with β = −2π/(λz), output chirp times `factor`.
    let fresnel = |from: Points, a: &Axis, input_chirp: bool, factor: C64| -> Vec<Step<T>> {
        let mut steps = Vec::new();
        if input_chirp {
            steps.push(Step::Scale(cast(chirp(from, lam, z))));
        }
        steps.push(Step::Zoom(Zoom::new(
            cache,
            from,
            a.output,
            -TAU / (lam * z),
        )));
        let q2 = chirp(a.output, lam, z).into_iter().map(|q| q * factor);
        steps.push(Step::Scale(cast(q2.collect())));
        steps
    };
    let one = C64::new(1.0, 0.0);
    let constant = |d: f64, e: f64| C64::from_polar(1.0, k * z) / C64::new(0.0, lam * z) * d * e;
    match method {
        Method::BandLimitedAsm => {
            let (rx, ry) = (ax.m as f64 * ax.d() / 2.0, ay.m as f64 * ay.d() / 2.0);
            let centre = |a: &Axis| {
                let (lo, hi) = a.offsets();
                0.5 * (lo + hi)
            };
            let (cx, cy) = (centre(&ax), centre(&ay));
            let h = table::<T>(&ax, &ay, |u, v| {
                let s2 = lam * lam * (u * u + v * v);
                if s2 < 1.0 {
                    let root = (1.0 - s2).sqrt();
                    // Where this plane wave lands after z, relative to where it started.
                    let (sx, sy) = (z * lam * u / root, z * lam * v / root);
                    if (sx - cx).abs() <= rx && (sy - cy).abs() <= ry {
                        C64::from_polar(1.0, k * z * root)
                    } else {
                        C64::default()
                    }
                } else {
                    match evanescent {
                        Evanescent::Decay => C64::from((-k * z.abs() * (s2 - 1.0).sqrt()).exp()),
                        Evanescent::Drop => C64::default(),
                    }
                }
            });
            Pipeline::new(
                ay.n(),
                Chain::new(ax.n(), vec![Step::Zoom(spectrum(&ax))]),
                Chain::new(
                    ay.n(),
                    vec![
                        Step::Zoom(spectrum(&ay)),
                        Step::Table(h),
                        Step::Zoom(inverse(&ay, ay.output)),
                    ],
                ),
                Chain::new(ax.m, vec![Step::Zoom(inverse(&ax, ax.output))]),
            )
        }
        Method::Sas => {
            let (rx, ry) = (
                0.5 * (ax.m - ax.n()) as f64 * ax.d(),
                0.5 * (ay.m - ay.n()) as f64 * ay.d(),
            );
            let h = table::<T>(&ax, &ay, |u, v| {
                let s2 = lam * lam * (u * u + v * v);
                if s2 >= 1.0 {
                    return C64::default();
                }
                let root = (1.0 - s2).sqrt();
                let excess = 1.0 / root - 1.0;
                let (sx, sy) = (z * lam * u * excess, z * lam * v * excess);
                if sx.abs() <= rx && sy.abs() <= ry {
                    C64::from_polar(1.0, k * z * (root - 1.0 + 0.5 * s2))
                } else {
                    C64::default()
                }
            });
            let padded = |a: &Axis| Points::centred(a.m, a.d(), 0.0);
            let mut y = vec![
                Step::Zoom(spectrum(&ay)),
                Step::Table(h),
                Step::Zoom(inverse(&ay, padded(&ay))),
            ];
            y.extend(fresnel(padded(&ay), &ay, true, constant(ax.d(), ay.d())));
            let mut x2 = vec![Step::Zoom(inverse(&ax, padded(&ax)))];
            x2.extend(fresnel(padded(&ax), &ax, true, one));
            Pipeline::new(
                ay.n(),
                Chain::new(ax.n(), vec![Step::Zoom(spectrum(&ax))]),
                Chain::new(ay.n(), y),
                Chain::new(ax.m, x2),
            )
        }
        Method::FresnelSingleFft | Method::Fraunhofer => {
            let chirped = method == Method::FresnelSingleFft;
            let x1 = fresnel(ax.input, &ax, chirped, one);
            let y = fresnel(ay.input, &ay, chirped, constant(ax.d(), ay.d()));
            Pipeline::new(
                ay.n(),
                Chain::new(ax.n(), x1),
                Chain::new(ay.n(), y),
                Chain::new(ax.output.n, Vec::new()),
            )
        }
        _ => unreachable!("{method} has no window plan"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagate::rs_direct_window;

    fn rel(a: &[C64], b: &[C64]) -> f64 {
        let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).norm_sqr()).sum();
        let den: f64 = b.iter().map(|y| y.norm_sqr()).sum();
        (num / den).sqrt()
    }

    /// A Gaussian of waist `w0` (1/e² intensity radius) travelling at `sin θ = s` along x.
    fn tilted_gaussian(grid: Grid, wave: Wave, w0: f64, s: f64) -> Field<f64> {
        Field::from_fn(grid, wave.wavelength, |x, y| {
            C64::from_polar(
                (-(x * x + y * y) / (w0 * w0)).exp(),
                TAU * s * x / wave.lambda(),
            )
        })
        .unwrap()
    }

    fn plan(
        grid: &Grid,
        wave: Wave,
        z: f64,
        method: Method,
        window: &Window,
    ) -> Result<WindowPlan<f64>> {
        Planner::new().plan_window(grid, wave, &Propagation::new(z).with_method(method), window)
    }

    /// On the input's own grid the window method is the band-limited angular spectrum.
    #[test]
    fn window_on_the_input_grid_is_the_angular_spectrum() {
        let grid = Grid::new(64, 48, 2e-6, 2.5e-6).unwrap();
        let wave = Wave::vacuum(633e-9).unwrap();
        let u = tilted_gaussian(grid, wave, 15e-6, 0.05);
        let z = 300e-6;
        let mut reference = u.clone();
        Planner::new()
            .plan(&grid, wave, &Propagation::new(z))
            .unwrap()
            .propagate(&mut reference)
            .unwrap();
        let p = plan(
            &grid,
            wave,
            z,
            Method::BandLimitedAsm,
            &Window::on_axis(grid),
        )
        .unwrap();
        assert_eq!(p.padded_shape(), (96, 128));
        let out = p.apply(&u).unwrap();
        let e = rel(out.data(), reference.data());
        assert!(e < 1e-9, "window vs plain bl-asm: {e:e}");
    }

    /// A finer grid, off axis where a tilted beam lands, agrees with the Rayleigh–Sommerfeld
    /// integral summed directly at the window's points.
    #[test]
    fn off_axis_zoomed_window_matches_the_rayleigh_sommerfeld_integral() {
        let wave = Wave::vacuum(1e-6).unwrap();
        let grid = Grid::square(40, 0.5e-6).unwrap();
        let (s, z) = (0.3, 15e-6);
        let u = tilted_gaussian(grid, wave, 2.5e-6, s);
        let landing = z * s / (1.0 - s * s).sqrt();
        let window = Window::new(
            Grid::new(24, 20, 0.35e-6, 0.4e-6).unwrap(),
            (landing, -1e-6),
        )
        .unwrap();
        let direct = rs_direct_window(&u, wave, z, &window).unwrap();
        let out = plan(&grid, wave, z, Method::BandLimitedAsm, &window)
            .unwrap()
            .apply(&u)
            .unwrap();
        let e = rel(out.data(), direct.data());
        assert!(e < 1e-6, "window ASM vs direct RS: {e:e}");
        // The beam is in the window: its peak is well inside, not at an edge.
        let (i, _) = out
            .data()
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.norm().total_cmp(&b.1.norm()))
            .unwrap();
        let (r, c) = (i / 24, i % 24);
        assert!(
            (4..16).contains(&r) && (4..20).contains(&c),
            "peak at ({r}, {c})"
        );
        // Too close for the far-field methods: sas says what to change.
        let e = plan(&grid, wave, z, Method::Sas, &window)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lengthen the distance") && e.contains("bl-asm"),
            "{e}"
        );
    }

    /// Far from the source, at 20° off axis: the scalable angular spectrum agrees with the
    /// exact (band-limited) angular spectrum, the paraxial Fresnel integral does not, and the
    /// window holding the beam holds its power.
    #[test]
    fn sas_is_the_angular_spectrum_far_away_and_fresnel_is_not() {
        let wave = Wave::vacuum(0.5e-6).unwrap();
        let grid = Grid::square(128, 1e-6).unwrap();
        let (s, z) = (0.2, 3e-3);
        let u = tilted_gaussian(grid, wave, 10e-6, s);
        let landing = z * s / (1.0 - s * s).sqrt();
        let window = Window::new(Grid::square(160, 1.5e-6).unwrap(), (landing, 0.0)).unwrap();
        let exact = plan(&grid, wave, z, Method::BandLimitedAsm, &window).unwrap();
        let sas = plan(&grid, wave, z, Method::Sas, &window).unwrap();
        assert!(sas.criterion.holds, "{}", sas.criterion);
        assert_eq!(sas.padded_shape(), (256, 256));
        let fresnel = plan(&grid, wave, z, Method::FresnelSingleFft, &window).unwrap();
        let want = exact.apply(&u).unwrap();
        let got = sas.apply(&u).unwrap();
        let paraxial = fresnel.apply(&u).unwrap();
        let (e_sas, e_fresnel) = (
            rel(got.data(), want.data()),
            rel(paraxial.data(), want.data()),
        );
        assert!(e_sas < 1e-4, "sas vs bl-asm: {e_sas:e}");
        assert!(e_fresnel > 0.5, "fresnel vs bl-asm: {e_fresnel:e}");
        let power = |f: &Field<f64>| f.power()[0];
        let ratio = power(&got) / power(&u);
        assert!((ratio - 1.0).abs() < 1e-4, "power out/in {ratio}");
        // Single precision follows double.
        let sas32 = Planner::<f32>::new()
            .plan_window(
                &grid,
                wave,
                &Propagation::new(z).with_method(Method::Sas),
                &window,
            )
            .unwrap();
        let u32: Vec<Complex<f32>> = u.data().iter().map(|&z| cplx::<f32>(z)).collect();
        let mut out32 = vec![Complex::<f32>::default(); window.grid.len()];
        sas32.propagate(&u32, &mut out32).unwrap();
        let out32: Vec<C64> = out32
            .iter()
            .map(|z| C64::new(z.re as f64, z.im as f64))
            .collect();
        let e32 = rel(&out32, got.data());
        assert!(e32 < 1e-5, "f32 vs f64: {e32:e}");
    }

    /// `⟨A u, v⟩ = ⟨u, Aᴴ v⟩` for every window method, forwards and backwards, for batches.
    #[test]
    fn every_window_plan_has_its_exact_adjoint() {
        let wave = Wave::new(633e-9, 1.33).unwrap();
        let grid = Grid::new(12, 9, 3e-6, 2e-6).unwrap();
        let window = Window::new(Grid::new(7, 10, 4.1e-6, 1.7e-6).unwrap(), (5e-6, -3e-6)).unwrap();
        let planner = Planner::<f64>::new();
        let noise = |n: usize, a: f64| -> Vec<C64> {
            (0..n)
                .map(|i| C64::new((i as f64 * a).sin(), (i as f64 * 0.77 * a).cos()))
                .collect()
        };
        let mut checked = 0;
        for method in WINDOW_ORDER {
            for z in [4e-4, -4e-4] {
                let p = planner
                    .plan_window(
                        &grid,
                        wave,
                        &Propagation::new(z).with_method(method).with_check(false),
                        &window,
                    )
                    .unwrap();
                let (u, v) = (
                    noise(2 * grid.len(), 0.31),
                    noise(2 * window.grid.len(), 0.57),
                );
                let mut au = vec![C64::default(); v.len()];
                let mut ahv = vec![C64::default(); u.len()];
                p.propagate(&u, &mut au).unwrap();
                p.adjoint(&v, &mut ahv).unwrap();
                let lhs: C64 = au.iter().zip(&v).map(|(a, b)| a * b.conj()).sum();
                let rhs: C64 = u.iter().zip(&ahv).map(|(a, b)| a * b.conj()).sum();
                assert!(
                    (lhs - rhs).norm() < 1e-10 * lhs.norm(),
                    "{method} z = {z}: {lhs} vs {rhs}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 8);
    }

    /// `[r, k] · [k, c]` row-major.
    fn matmul(a: &[C64], b: &[C64], r: usize, k: usize, c: usize) -> Vec<C64> {
        (0..r * c)
            .map(|i| (0..k).map(|j| a[(i / c) * k + j] * b[j * c + i % c]).sum())
            .collect()
    }

    /// The dense matrices are the kernels' operator, forwards and backwards, for every method.
    #[test]
    fn matrices_are_the_kernels_operator() {
        let wave = Wave::vacuum(633e-9).unwrap();
        let grid = Grid::new(10, 7, 3e-6, 2e-6).unwrap();
        let window = Window::new(Grid::new(6, 8, 4.1e-6, 1.7e-6).unwrap(), (5e-6, -3e-6)).unwrap();
        let planner = Planner::<f64>::new();
        for method in WINDOW_ORDER {
            let p = planner
                .plan_window(
                    &grid,
                    wave,
                    &Propagation::new(4e-4).with_method(method).with_check(false),
                    &window,
                )
                .unwrap();
            for adjoint in [false, true] {
                let m = p.matrices(adjoint);
                let [(ny, nx), (pp, q), (ky, kx)] = m.shapes;
                let u: Vec<C64> = (0..ny * nx)
                    .map(|i| C64::new((i as f64 * 0.3).sin(), (i as f64 * 0.7).cos()))
                    .collect();
                let mut kernel = vec![C64::default(); ky * kx];
                if adjoint {
                    p.adjoint(&u, &mut kernel).unwrap();
                } else {
                    p.propagate(&u, &mut kernel).unwrap();
                }
                let mut inner = matmul(&matmul(&m.rows_in, &u, pp, ny, nx), &m.cols_in, pp, nx, q);
                if let Some(t) = &m.table {
                    inner.iter_mut().zip(t).for_each(|(a, b)| *a *= b);
                }
                let dense = matmul(
                    &matmul(&m.rows_out, &inner, ky, pp, q),
                    &m.cols_out,
                    ky,
                    q,
                    kx,
                );
                let e = rel(&dense, &kernel);
                assert!(e < 1e-12, "{method} adjoint {adjoint}: {e:e}");
                assert_eq!(
                    m.table.is_some(),
                    matches!(method, Method::BandLimitedAsm | Method::Sas)
                );
            }
        }
    }

    #[test]
    fn auto_picks_by_distance_and_bad_requests_say_what_to_do() {
        let wave = Wave::vacuum(0.5e-6).unwrap();
        let grid = Grid::square(64, 1e-6).unwrap();
        let planner = Planner::<f32>::new();
        let auto = |z: f64, window: &Window| {
            planner
                .plan_window(
                    &grid,
                    wave,
                    &Propagation::new(z).with_method(Method::Auto),
                    window,
                )
                .unwrap()
        };
        // Near: the exact angular spectrum.
        let near = Window::on_axis(grid);
        assert_eq!(auto(50e-6, &near).method(), Method::BandLimitedAsm);
        // A camera far away, 40× the source: the angular spectrum would need a huge
        // transform; sas does it on 2× padding.
        let far = Window::on_axis(Grid::square(64, 40e-6).unwrap());
        let p = auto(0.1, &far);
        assert_eq!(p.method(), Method::Sas, "{:?}", p.considered);
        assert!(!p.considered[0].holds);
        // Methods without a window plan, and window-only methods on plain plans.
        let e = planner
            .plan_window(
                &grid,
                wave,
                &Propagation::new(1e-3).with_method(Method::RayleighSommerfeld),
                &near,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot propagate onto an output window"), "{e}");
        let e = planner
            .plan(
                &grid,
                wave,
                &Propagation::new(1e-3).with_method(Method::Sas),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("plan_window"), "{e}");
        let e = planner
            .plan_window(
                &grid,
                wave,
                &Propagation::new(0.0)
                    .with_method(Method::Sas)
                    .with_check(false),
                &far,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-zero distance"), "{e}");
        assert!(Window::new(grid, (f64::NAN, 0.0)).is_err());
        // Shapes that do not make whole fields.
        let p = auto(50e-6, &near);
        let mut out = vec![Complex::<f32>::default(); grid.len()];
        let e = p
            .propagate(&vec![Complex::default(); grid.len() - 1], &mut out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole fields"), "{e}");
    }
}
