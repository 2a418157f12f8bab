//! Thin optical elements — lenses, apertures, masks, gratings — and the pixel-coverage geometry
//! they share with the detectors of [`crate::detect`].
//!
//! Every element here is *thin*: it multiplies the field, sample by sample, by a complex
//! transmission `t(x, y)` sampled on the field's grid. [`Element::transmission`] computes that
//! map in f64 once per call (or borrows it, for masks that store one); [`ElementExt::apply`]
//! multiplies every field of a batch by it, with rayon over the batch when it holds more than one
//! field. To apply the same analytic element to many batches, compute its map once with
//! [`Element::precompute`] and apply the [`Precomputed`] map instead.
//!
//! ```
//! use photonflow_optics::elements::{CircularAperture, Element, ElementExt, ThinLens};
//! use photonflow_optics::field::Field;
//! use photonflow_optics::grid::Grid;
//! use num_complex::Complex;
//!
//! let grid = Grid::square(256, 4e-6)?;
//! let mut field = Field::<f32>::from_fn(grid, 532e-9, |_, _| Complex::from(1.0))?;
//! CircularAperture::new(200e-6).apply(&mut field)?;            // 200 µm radius pinhole
//! ThinLens::new(50e-3).apply(&mut field)?;                      // f = 50 mm, in air
//! let stack = ThinLens::new(50e-3).precompute(&grid, 532e-9)?; // map computed once …
//! stack.apply(&mut field)?;                                     // … applied many times
//! # Ok::<(), photonflow_optics::error::OpticsError>(())
//! ```
//!
//! # Conventions
//!
//! Time dependence `exp(−iωt)`: a wave travelling towards `+z` is `exp(+ikz)`, so a converging
//! (positive) lens is `exp(−ik r²/(2f))` and a phase ramp `exp(+i2πx/Λ)` tilts light towards
//! `+x`. Lengths are metres, phases radians, wavelengths vacuum wavelengths (the field carries
//! its vacuum wavelength; elements whose transmission depends on the medium, like
//! [`ThinLens`], carry the index). Coordinates are those of [`Grid`]: sample `j` sits at
//! `x_j = (j − ⌊n/2⌋)·dx` and covers the pixel `[x_j − dx/2, x_j + dx/2]`.
//!
//! # Pixel coverage
//!
//! Hard-edged elements (apertures, binary gratings) and detector regions are *area weighted*:
//! each sample is the fraction of its pixel that lies inside the shape, not a 0/1 test of the
//! pixel centre. Staircase edges would otherwise move the transmitted power and the diffraction
//! efficiencies by errors of order one pixel per edge. There is one implementation of it:
//!
//! - [`rect_coverage`] for axis-aligned rectangles: exact, by analytic 1-D interval overlaps;
//! - [`coverage`] for any [`Shape`] given by a signed distance: pixels farther than half a
//!   diagonal from the edge are decided at once; an edge pixel takes the shape's closed-form
//!   [`Shape::cell_fraction`] when it has one (the straight lines of binary gratings: exact),
//!   otherwise it is split into `s × s` sub-cells (`s` = [`DEFAULT_SUPERSAMPLE`] = 8 unless
//!   configured), each contributing the exact fraction of it on the inside of the edge
//!   linearised at the sub-cell centre. Straight edges are therefore exact at any angle, curved
//!   ones accurate to second order in the sub-cell size (a circle of radius 20 pixels has its
//!   area right to 3e-6, its worst pixel to 4e-5).

use std::borrow::Cow;
use std::f64::consts::TAU;

use ndarray::ArrayView2;
use num_complex::Complex;
use rayon::prelude::*;

use crate::error::{OpticsError, Result, invalid, positive};
use crate::field::{Field, Real, cplx};
use crate::grid::{Grid, Wave};
use crate::units::format_length;

/// Default number of sub-cells per pixel side used to area-weight curved edges (8 × 8).
pub const DEFAULT_SUPERSAMPLE: usize = 8;

/// Largest accepted supersampling factor (64 × 64 sub-cells per edge pixel).
pub const MAX_SUPERSAMPLE: usize = 64;

// ---------------------------------------------------------------------------------------------
// Geometry: pixel coverage
// ---------------------------------------------------------------------------------------------

/// A 2-D region described by a signed distance, for [`coverage`].
///
/// Contract: [`distance`](Shape::distance) is negative inside, positive outside, and never
/// larger in magnitude than the Euclidean distance to the boundary (it is 1-Lipschitz; an exact
/// signed distance is best). [`gradient`](Shape::gradient) is its gradient (a unit normal
/// pointing outwards for an exact distance). Units: metres.
pub trait Shape: Sync {
    /// Signed distance from `(x, y)` to the boundary, metres (negative inside).
    fn distance(&self, x: f64, y: f64) -> f64;
    /// Gradient of [`distance`](Shape::distance) at `(x, y)` (dimensionless).
    fn gradient(&self, x: f64, y: f64) -> (f64, f64);
    /// The exact fraction of the `a × b` (m) cell centred at `(x, y)` inside the shape, for
    /// shapes that have a closed form; `None` (the default) makes [`coverage`] supersample.
    fn cell_fraction(&self, x: f64, y: f64, a: f64, b: f64) -> Option<f64> {
        let _ = (x, y, a, b);
        None
    }
}

/// A disc of radius `radius` (m) centred at `centre` (m), as a [`Shape`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circle {
    /// Centre `(x, y)`, metres.
    pub centre: (f64, f64),
    /// Radius, metres.
    pub radius: f64,
}

impl Shape for Circle {
    fn distance(&self, x: f64, y: f64) -> f64 {
        (x - self.centre.0).hypot(y - self.centre.1) - self.radius
    }

    fn gradient(&self, x: f64, y: f64) -> (f64, f64) {
        let (u, v) = (x - self.centre.0, y - self.centre.1);
        let r = u.hypot(v);
        if r > 0.0 { (u / r, v / r) } else { (0.0, 0.0) }
    }
}

/// Fraction of every pixel of `grid` that lies inside `shape`, `[ny, nx]` row-major, in `[0, 1]`.
///
/// Pixels whose centre is farther than half a pixel diagonal from the boundary are 0 or 1
/// outright. Edge pixels take [`Shape::cell_fraction`] when the shape has a closed form;
/// otherwise they are split into `supersample × supersample` sub-cells, each adding the exact
/// fraction of the sub-cell on the inside of the boundary linearised (value and
/// [`Shape::gradient`]) at its centre. Straight edges are exact at any orientation; curved edges
/// err at second order in the sub-cell size (worst pixel 4e-5 for a circle of radius 20 pixels
/// at `s = 8`); corners and features thinner than a sub-cell err by at most the area of the
/// sub-cells they touch. `supersample = 0` is treated as 1. Rows are computed in parallel.
pub fn coverage<S: Shape + ?Sized>(grid: &Grid, shape: &S, supersample: usize) -> Vec<f64> {
    let (xs, ys) = (grid.x(), grid.y());
    let (dx, dy) = (grid.dx, grid.dy);
    let s = supersample.max(1);
    let half_diag = 0.5 * dx.hypot(dy);
    let (a, b) = (dx / s as f64, dy / s as f64);
    let sub_half_diag = 0.5 * a.hypot(b);
    // Sub-cell centre offsets within a pixel, the same along every row and column.
    let offs_x: Vec<f64> = (0..s)
        .map(|i| ((i as f64 + 0.5) / s as f64 - 0.5) * dx)
        .collect();
    let offs_y: Vec<f64> = (0..s)
        .map(|i| ((i as f64 + 0.5) / s as f64 - 0.5) * dy)
        .collect();
    let norm = 1.0 / (s * s) as f64;
    let mut out = vec![0.0; grid.len()];
    out.par_chunks_mut(grid.nx)
        .zip(ys.par_iter())
        .for_each(|(row, &y)| {
            for (c, &x) in row.iter_mut().zip(&xs) {
                let d = shape.distance(x, y);
                *c = if d >= half_diag {
                    0.0
                } else if d <= -half_diag {
                    1.0
                } else if let Some(f) = shape.cell_fraction(x, y, dx, dy) {
                    f
                } else {
                    let mut sum = 0.0;
                    for &oy in &offs_y {
                        for &ox in &offs_x {
                            let (u, v) = (x + ox, y + oy);
                            let dd = shape.distance(u, v);
                            sum += if dd >= sub_half_diag {
                                0.0
                            } else if dd <= -sub_half_diag {
                                1.0
                            } else {
                                let (gx, gy) = shape.gradient(u, v);
                                halfplane_fraction(dd, gx.abs() * a, gy.abs() * b)
                            };
                        }
                    }
                    sum * norm
                };
            }
        });
    out
}

/// Fraction of a cell on which the linear function `d + S` is negative, where `S` is the sum of
/// two independent uniform variables of widths `p` and `q` (the ranges of the linearised distance
/// across the cell along x and y). Its CDF is the integral of a trapezoid.
fn halfplane_fraction(d: f64, p: f64, q: f64) -> f64 {
    let (p, q) = if p >= q { (p, q) } else { (q, p) };
    if p == 0.0 {
        return if d < 0.0 {
            1.0
        } else if d > 0.0 {
            0.0
        } else {
            0.5
        };
    }
    let t = -d;
    let hi = 0.5 * (p + q);
    let flat = 0.5 * (p - q);
    if t <= -hi {
        0.0
    } else if t >= hi {
        1.0
    } else if t < -flat {
        (t + hi).powi(2) / (2.0 * p * q)
    } else if t <= flat {
        (t + 0.5 * p) / p
    } else {
        1.0 - (hi - t).powi(2) / (2.0 * p * q)
    }
}

/// Exact fraction of every pixel of `grid` inside the axis-aligned rectangle of size
/// `width × height` (m) centred at `centre` (m), `[ny, nx]` row-major, in `[0, 1]`.
///
/// The overlap of a pixel with a rectangle is the product of 1-D interval overlaps, so this is
/// exact (no supersampling); `Σ coverage · dx·dy` equals the area of the part of the rectangle
/// inside the window to rounding.
pub fn rect_coverage(grid: &Grid, centre: (f64, f64), width: f64, height: f64) -> Vec<f64> {
    let ox = interval_overlaps(&grid.x(), grid.dx, centre.0, width);
    let oy = interval_overlaps(&grid.y(), grid.dy, centre.1, height);
    let mut out = Vec::with_capacity(grid.len());
    for &fy in &oy {
        out.extend(ox.iter().map(|&fx| fx * fy));
    }
    out
}

/// Fraction of each 1-D pixel `[c − d/2, c + d/2]` inside `[centre − width/2, centre + width/2]`.
fn interval_overlaps(centres: &[f64], d: f64, centre: f64, width: f64) -> Vec<f64> {
    let (lo, hi) = (centre - 0.5 * width, centre + 0.5 * width);
    centres
        .iter()
        .map(|&c| ((c + 0.5 * d).min(hi) - (c - 0.5 * d).max(lo)).max(0.0) / d)
        .map(|f| f.min(1.0))
        .collect()
}

/// The window covered by the pixels of `grid`: `((x_min, x_max), (y_min, y_max))`, metres —
/// from the outer edge of the first pixel to the outer edge of the last.
pub(crate) fn window(grid: &Grid) -> ((f64, f64), (f64, f64)) {
    let lo = |n: usize, d: f64| -((n / 2) as f64) * d - 0.5 * d;
    let hi = |n: usize, d: f64| (n - 1 - n / 2) as f64 * d + 0.5 * d;
    (
        (lo(grid.nx, grid.dx), hi(grid.nx, grid.dx)),
        (lo(grid.ny, grid.dy), hi(grid.ny, grid.dy)),
    )
}

/// `"256×256 samples at 8um pitch"`, for error messages.
pub(crate) fn describe_grid(g: &Grid) -> String {
    if g.dx == g.dy {
        format!("{}×{} samples at {} pitch", g.ny, g.nx, format_length(g.dx))
    } else {
        format!(
            "{}×{} samples at {}×{} pitch (x×y)",
            g.ny,
            g.nx,
            format_length(g.dx),
            format_length(g.dy)
        )
    }
}

/// True when both grids have the same size and (to 1e-9 relative) the same pitches.
pub(crate) fn same_grid(a: &Grid, b: &Grid) -> bool {
    let close = |p: f64, q: f64| (p - q).abs() <= 1e-9 * p.abs().max(q.abs());
    a.nx == b.nx && a.ny == b.ny && close(a.dx, b.dx) && close(a.dy, b.dy)
}

/// Errors unless `field` is on the grid `own` that `what` was built for.
pub(crate) fn check_grid(what: &str, own: &Grid, field: &Grid) -> Result<()> {
    if same_grid(own, field) {
        Ok(())
    } else {
        Err(OpticsError::Shape(format!(
            "{what} is sampled on {} but the field is on {}; build the {what} on the field's grid",
            describe_grid(own),
            describe_grid(field)
        )))
    }
}

fn finite(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(invalid(
            name,
            format!("{value} is not finite; give a finite number"),
        ))
    }
}

fn finite_point(name: &'static str, p: (f64, f64)) -> Result<()> {
    finite(name, p.0)?;
    finite(name, p.1)?;
    Ok(())
}

fn check_supersample(s: usize) -> Result<()> {
    if (1..=MAX_SUPERSAMPLE).contains(&s) {
        Ok(())
    } else {
        Err(invalid(
            "supersample",
            format!(
                "{s} sub-cells per pixel side is out of range; give 1 to {MAX_SUPERSAMPLE} \
                 (default {DEFAULT_SUPERSAMPLE})"
            ),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The element trait
// ---------------------------------------------------------------------------------------------

/// A thin element: multiplies the field by a complex transmission `t(x, y)`.
///
/// The trait is object safe (`Box<dyn Element>`, `&dyn Element` work); the generic
/// [`ElementExt::apply`] is provided for every element, boxed or not.
pub trait Element: Send + Sync {
    /// The transmission sampled on `grid` for light of vacuum wavelength `wavelength` (m),
    /// `[ny, nx]` row-major, f64. Masks that store their map borrow it; analytic elements
    /// compute it (and check their sampling criterion) on each call.
    fn transmission(&self, grid: &Grid, wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>>;

    /// Computes the transmission once for this `grid` and `wavelength` (m), to apply it to many
    /// fields without recomputing it.
    fn precompute(&self, grid: &Grid, wavelength: f64) -> Result<Precomputed> {
        positive("wavelength", wavelength)?;
        let t = self.transmission(grid, wavelength)?.into_owned();
        check_map_len(t.len(), grid)?;
        Ok(Precomputed {
            grid: *grid,
            wavelength,
            t,
        })
    }
}

/// Applying elements to fields; implemented for every [`Element`], including `dyn Element`.
pub trait ElementExt: Element {
    /// Multiplies every field of the batch by the element's transmission (computed once per
    /// call, in f64, cast to `T` sample by sample). Uses rayon over the batch when it holds more
    /// than one field, over rows for one large field.
    fn apply<T: Real>(&self, field: &mut Field<T>) -> Result<()> {
        let grid = *field.grid();
        let t = self.transmission(&grid, field.wavelength())?;
        check_map_len(t.len(), &grid)?;
        multiply(field, &t);
        Ok(())
    }
}

impl<E: Element + ?Sized> ElementExt for E {}

fn check_map_len(len: usize, grid: &Grid) -> Result<()> {
    if len == grid.len() {
        Ok(())
    } else {
        Err(OpticsError::Shape(format!(
            "an element returned a transmission of {len} samples for a {}×{} grid",
            grid.ny, grid.nx
        )))
    }
}

/// Multiplies every field of the batch by the `[ny, nx]` map `t`.
pub(crate) fn multiply<T: Real>(field: &mut Field<T>, t: &[Complex<f64>]) {
    let grid = *field.grid();
    let n = grid.len();
    let batch = field.batch();
    let data = field.data_mut();
    let mul = |s: &mut [Complex<T>], t: &[Complex<f64>]| {
        for (z, &w) in s.iter_mut().zip(t) {
            *z = *z * cplx::<T>(w);
        }
    };
    if batch > 1 {
        data.par_chunks_mut(n).for_each(|s| mul(s, t));
    } else if n >= 1 << 16 {
        data.par_chunks_mut(grid.nx)
            .zip(t.par_chunks(grid.nx))
            .for_each(|(s, t)| mul(s, t));
    } else {
        mul(data, t);
    }
}

impl<E: Element + ?Sized> Element for &E {
    fn transmission(&self, grid: &Grid, wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        (**self).transmission(grid, wavelength)
    }
}

impl<E: Element + ?Sized> Element for Box<E> {
    fn transmission(&self, grid: &Grid, wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        (**self).transmission(grid, wavelength)
    }
}

impl<E: Element + ?Sized> Element for std::sync::Arc<E> {
    fn transmission(&self, grid: &Grid, wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        (**self).transmission(grid, wavelength)
    }
}

/// A transmission map computed once by [`Element::precompute`] for one grid and one vacuum
/// wavelength; applying it to a field on another grid or at another wavelength is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Precomputed {
    grid: Grid,
    wavelength: f64,
    t: Vec<Complex<f64>>,
}

impl Precomputed {
    /// The grid the map was computed on.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The vacuum wavelength (m) it was computed for.
    pub fn wavelength(&self) -> f64 {
        self.wavelength
    }

    /// The map, `[ny, nx]` row-major.
    pub fn map(&self) -> &[Complex<f64>] {
        &self.t
    }
}

impl Element for Precomputed {
    fn transmission(&self, grid: &Grid, wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        check_grid("precomputed element", &self.grid, grid)?;
        if (wavelength - self.wavelength).abs() > 1e-9 * self.wavelength {
            return Err(invalid(
                "wavelength",
                format!(
                    "the element was precomputed for {} but the field is at {}; precompute it \
                     for this wavelength",
                    format_length(self.wavelength),
                    format_length(wavelength)
                ),
            ));
        }
        Ok(Cow::Borrowed(&self.t))
    }
}

/// Thin elements in contact, applied as one: the transmissions multiply.
#[derive(Default)]
pub struct Stack(pub Vec<Box<dyn Element>>);

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stack({} elements)", self.0.len())
    }
}

impl Element for Stack {
    fn transmission(&self, grid: &Grid, wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        let mut t = vec![Complex::new(1.0, 0.0); grid.len()];
        for e in &self.0 {
            let m = e.transmission(grid, wavelength)?;
            check_map_len(m.len(), grid)?;
            for (a, b) in t.iter_mut().zip(m.iter()) {
                *a *= b;
            }
        }
        Ok(Cow::Owned(t))
    }
}

// ---------------------------------------------------------------------------------------------
// Thin lens
// ---------------------------------------------------------------------------------------------

/// An ideal thin lens, `t = exp(−i k r²/(2f))` with `r` measured from `centre` and
/// `k = 2π·index/λ` (λ the vacuum wavelength of the field): converging for `f > 0`, diverging
/// for `f < 0` (convention `exp(+ikz)`). An optional circular `aperture` (radius, m) is
/// area-weighted like [`CircularAperture`].
///
/// Sampling: the lens phase has local frequency `(x − c_x)/(λ_n f)` (`λ_n = λ/index`), which must
/// stay below the Nyquist frequency `1/(2dx)` everywhere the lens transmits (the window, or the
/// aperture). [`ThinLens::min_focal_length`] gives the shortest `|f|` a grid supports; shorter
/// ones are an error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThinLens {
    /// Focal length in the medium, metres (> 0 converging, < 0 diverging).
    pub focal_length: f64,
    /// Optical axis of the lens `(x, y)`, metres.
    pub centre: (f64, f64),
    /// Radius of a circular aperture in the lens plane, metres; `None` for an unbounded lens.
    pub aperture: Option<f64>,
    /// Refractive index of the medium the light travels in after the lens (1 for air).
    pub index: f64,
}

impl ThinLens {
    /// A lens of focal length `focal_length` (m) on the axis, in air, without aperture.
    pub fn new(focal_length: f64) -> Self {
        Self {
            focal_length,
            centre: (0.0, 0.0),
            aperture: None,
            index: 1.0,
        }
    }

    /// A lens of focal length `focal_length` (m) for light travelling in the medium of `wave`.
    pub fn for_wave(focal_length: f64, wave: Wave) -> Self {
        Self {
            index: wave.index,
            ..Self::new(focal_length)
        }
    }

    /// The same lens with its axis at `centre` (m).
    pub fn with_centre(self, centre: (f64, f64)) -> Self {
        Self { centre, ..self }
    }

    /// The same lens with a circular aperture of radius `radius` (m).
    pub fn with_aperture(self, radius: f64) -> Self {
        Self {
            aperture: Some(radius),
            ..self
        }
    }

    /// The same lens in a medium of refractive index `index`.
    pub fn in_medium(self, index: f64) -> Self {
        Self { index, ..self }
    }

    /// The shortest `|focal length|` (m) whose phase is sampled without aliasing on `grid` at
    /// vacuum wavelength `wavelength` (m): `max(2dx·ρx, 2dy·ρy)/λ_n`, with `ρx`, `ρy` the largest
    /// distances from the lens axis to a sample inside the window and the aperture.
    pub fn min_focal_length(&self, grid: &Grid, wavelength: f64) -> f64 {
        let lambda = wavelength / self.index;
        let a = self.aperture.unwrap_or(f64::INFINITY);
        let reach = |c: &[f64], c0: f64| {
            let (first, last) = (c[0], c[c.len() - 1]);
            (first - c0).abs().max((last - c0).abs()).min(a)
        };
        let rx = reach(&grid.x(), self.centre.0);
        let ry = reach(&grid.y(), self.centre.1);
        (2.0 * grid.dx * rx).max(2.0 * grid.dy * ry) / lambda
    }

    fn validate(&self) -> Result<()> {
        let f = self.focal_length;
        if !f.is_finite() || f == 0.0 {
            return Err(invalid(
                "focal length",
                format!("{f} is not a finite non-zero length; give f > 0 (converging) or f < 0"),
            ));
        }
        positive("refractive index", self.index)?;
        finite_point("lens centre", self.centre)?;
        if let Some(a) = self.aperture {
            positive("lens aperture radius", a)?;
        }
        Ok(())
    }
}

impl Element for ThinLens {
    fn transmission(&self, grid: &Grid, wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        self.validate()?;
        positive("wavelength", wavelength)?;
        let f = self.focal_length;
        let f_min = self.min_focal_length(grid, wavelength);
        if f.abs() < f_min * (1.0 - 1e-12) {
            return Err(invalid(
                "focal length",
                format!(
                    "|f| = {} is too short for {}: the lens phase exp(−ik r²/2f) aliases at the \
                     edge of the {} (local frequency r/(λf) above the Nyquist frequency 1/(2·pitch)). \
                     The shortest focal length this grid supports at λ = {} (index {}) is {}; use \
                     a longer focal length, a finer pitch or a smaller aperture",
                    format_length(f.abs()),
                    describe_grid(grid),
                    if self.aperture.is_some() {
                        "aperture"
                    } else {
                        "window"
                    },
                    format_length(wavelength),
                    self.index,
                    format_length(f_min)
                ),
            ));
        }
        let k = TAU * self.index / wavelength;
        // The phase is separable: exp(−ik(x−cx)²/2f)·exp(−ik(y−cy)²/2f).
        let chirp = |c: Vec<f64>, c0: f64| -> Vec<Complex<f64>> {
            c.into_iter()
                .map(|x| Complex::from_polar(1.0, -k * (x - c0).powi(2) / (2.0 * f)))
                .collect()
        };
        let px = chirp(grid.x(), self.centre.0);
        let py = chirp(grid.y(), self.centre.1);
        let mut t = Vec::with_capacity(grid.len());
        for &wy in &py {
            t.extend(px.iter().map(|&wx| wx * wy));
        }
        if let Some(radius) = self.aperture {
            let circle = Circle {
                centre: self.centre,
                radius,
            };
            let c = coverage(grid, &circle, DEFAULT_SUPERSAMPLE);
            for (z, c) in t.iter_mut().zip(c) {
                *z *= c;
            }
        }
        Ok(Cow::Owned(t))
    }
}

// ---------------------------------------------------------------------------------------------
// Apertures
// ---------------------------------------------------------------------------------------------

/// A circular hole (or, inverted, a circular stop) in an opaque screen: amplitude transmission
/// 1 inside the circle of radius `radius` (m) around `centre` (m), 0 outside, area-weighted at
/// the edge by [`coverage`] with `supersample × supersample` sub-cells.
///
/// Each edge sample is the pixel average of the transmission, so `Σ t·dx·dy` — the power an
/// intensity detector behind a uniformly lit hole integrates, and the forward (DC) far-field
/// amplitude — equals `π r²` (3e-6 relative at r = 20 pitches, against ~1e-2 for 0/1 samples).
/// The sampled field's own power `Σ |t|²·dx·dy` is lower (1.8 % at r = 20 pitches): edge
/// samples of amplitude `c < 1` carry `c²`, the price of a band-limited representation of a
/// hard edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircularAperture {
    /// Radius, metres.
    pub radius: f64,
    /// Centre `(x, y)`, metres.
    pub centre: (f64, f64),
    /// True for an obstacle: transmission 0 inside, 1 outside.
    pub invert: bool,
    /// Sub-cells per pixel side at the edge (1 ..= [`MAX_SUPERSAMPLE`]).
    pub supersample: usize,
}

impl CircularAperture {
    /// A hole of radius `radius` (m) on the axis, 8 × 8 edge supersampling.
    pub fn new(radius: f64) -> Self {
        Self {
            radius,
            centre: (0.0, 0.0),
            invert: false,
            supersample: DEFAULT_SUPERSAMPLE,
        }
    }

    /// The same aperture centred at `centre` (m).
    pub fn with_centre(self, centre: (f64, f64)) -> Self {
        Self { centre, ..self }
    }

    /// The complementary screen: an opaque disc (a stop, a Poisson-spot obstacle).
    pub fn inverted(self) -> Self {
        Self {
            invert: !self.invert,
            ..self
        }
    }

    /// The same aperture with `s × s` edge sub-cells.
    pub fn with_supersample(self, s: usize) -> Self {
        Self {
            supersample: s,
            ..self
        }
    }
}

impl Element for CircularAperture {
    fn transmission(&self, grid: &Grid, _wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        positive("aperture radius", self.radius)?;
        finite_point("aperture centre", self.centre)?;
        check_supersample(self.supersample)?;
        let circle = Circle {
            centre: self.centre,
            radius: self.radius,
        };
        let c = coverage(grid, &circle, self.supersample);
        Ok(Cow::Owned(real_map(c, self.invert)))
    }
}

/// A rectangular hole (or, inverted, a rectangular stop), axis-aligned: transmission 1 inside
/// `width × height` (m) around `centre` (m), 0 outside, with the exact pixel overlap at the edges
/// ([`rect_coverage`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RectAperture {
    /// Full width along x, metres.
    pub width: f64,
    /// Full height along y, metres.
    pub height: f64,
    /// Centre `(x, y)`, metres.
    pub centre: (f64, f64),
    /// True for an obstacle: transmission 0 inside, 1 outside.
    pub invert: bool,
}

impl RectAperture {
    /// A `width × height` (m) hole on the axis.
    pub fn new(width: f64, height: f64) -> Self {
        Self {
            width,
            height,
            centre: (0.0, 0.0),
            invert: false,
        }
    }

    /// The same aperture centred at `centre` (m).
    pub fn with_centre(self, centre: (f64, f64)) -> Self {
        Self { centre, ..self }
    }

    /// The complementary screen: an opaque rectangle.
    pub fn inverted(self) -> Self {
        Self {
            invert: !self.invert,
            ..self
        }
    }
}

impl Element for RectAperture {
    fn transmission(&self, grid: &Grid, _wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        positive("aperture width", self.width)?;
        positive("aperture height", self.height)?;
        finite_point("aperture centre", self.centre)?;
        let c = rect_coverage(grid, self.centre, self.width, self.height);
        Ok(Cow::Owned(real_map(c, self.invert)))
    }
}

fn real_map(coverage: Vec<f64>, invert: bool) -> Vec<Complex<f64>> {
    coverage
        .into_iter()
        .map(|c| Complex::new(if invert { 1.0 - c } else { c }, 0.0))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Masks
// ---------------------------------------------------------------------------------------------

fn check_mask_values(what: &'static str, grid: &Grid, len: usize, bad: Vec<usize>) -> Result<()> {
    if len != grid.len() {
        return Err(OpticsError::Shape(format!(
            "the {what} has {len} values but its grid is {}×{} = {} samples",
            grid.ny,
            grid.nx,
            grid.len()
        )));
    }
    if let Some(&first) = bad.first() {
        return Err(invalid(
            what,
            format!(
                "{} value(s) are NaN or infinite, the first at row {}, column {}; clean the mask",
                bad.len(),
                first / grid.nx,
                first % grid.nx
            ),
        ));
    }
    Ok(())
}

fn check_dims(what: &str, dim: (usize, usize), grid: &Grid) -> Result<()> {
    if dim != (grid.ny, grid.nx) {
        return Err(OpticsError::Shape(format!(
            "the {what} array is {}×{} but the grid is {}×{} (rows × columns)",
            dim.0, dim.1, grid.ny, grid.nx
        )));
    }
    Ok(())
}

/// What the sampled masks share: their grid, and the transmission computed once from the
/// given values.
#[derive(Debug, Clone, PartialEq)]
struct Sampled {
    what: &'static str,
    grid: Grid,
    t: Vec<Complex<f64>>,
}

impl Sampled {
    /// Checks `values` (one finite value per sample of `grid`) and maps them to the
    /// transmission with `to_t`; `what` names the mask in errors.
    fn new<V: Copy>(
        what: &'static str,
        grid: Grid,
        values: &[V],
        finite: fn(V) -> bool,
        to_t: fn(V) -> Complex<f64>,
    ) -> Result<Self> {
        let bad = non_finite(values.iter().map(|&v| finite(v)));
        check_mask_values(what, &grid, values.len(), bad)?;
        let t = values.iter().map(|&v| to_t(v)).collect();
        Ok(Self { what, grid, t })
    }

    /// The transmission, for a field on `grid` (which must be the mask's).
    fn transmission(&self, grid: &Grid) -> Result<Cow<'_, [Complex<f64>]>> {
        check_grid(self.what, &self.grid, grid)?;
        Ok(Cow::Borrowed(&self.t))
    }
}

/// A pure phase mask sampled on its own grid: `t = exp(iφ)`, `φ` in radians, `[ny, nx]` row-major
/// (x fastest). The phase is what the field receives at any wavelength (a wavelength-dependent
/// relief must be converted to phase by the caller). The map `exp(iφ)` is computed once at
/// construction.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseMask {
    mask: Sampled,
    phase: Vec<f64>,
}

impl PhaseMask {
    /// A mask from `phase` (radians, `[ny, nx]` row-major); errors on a wrong length or a
    /// non-finite value.
    pub fn new(grid: Grid, phase: Vec<f64>) -> Result<Self> {
        let mask = Sampled::new("phase mask", grid, &phase, f64::is_finite, |p| {
            Complex::from_polar(1.0, p)
        })?;
        Ok(Self { mask, phase })
    }

    /// A mask from a `[ny, nx]` array of phases (radians).
    pub fn from_array2(phase: ArrayView2<f64>, grid: Grid) -> Result<Self> {
        check_dims("phase mask", phase.dim(), &grid)?;
        Self::new(grid, phase.iter().copied().collect())
    }

    /// The grid the mask is sampled on.
    pub fn grid(&self) -> &Grid {
        &self.mask.grid
    }

    /// The phase, radians, `[ny, nx]`.
    pub fn phase(&self) -> &[f64] {
        &self.phase
    }
}

impl Element for PhaseMask {
    fn transmission(&self, grid: &Grid, _wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        self.mask.transmission(grid)
    }
}

/// A real amplitude mask sampled on its own grid: `t = a`, `[ny, nx]` row-major. Passive masks
/// have `0 ≤ a ≤ 1`; negative values (a π phase) and gain are accepted as given.
#[derive(Debug, Clone, PartialEq)]
pub struct AmplitudeMask {
    mask: Sampled,
    amplitude: Vec<f64>,
}

impl AmplitudeMask {
    /// A mask from `amplitude` (`[ny, nx]` row-major); errors on a wrong length or a non-finite
    /// value.
    pub fn new(grid: Grid, amplitude: Vec<f64>) -> Result<Self> {
        let mask = Sampled::new("amplitude mask", grid, &amplitude, f64::is_finite, |a| {
            Complex::new(a, 0.0)
        })?;
        Ok(Self { mask, amplitude })
    }

    /// A mask from a `[ny, nx]` array of amplitude transmissions.
    pub fn from_array2(amplitude: ArrayView2<f64>, grid: Grid) -> Result<Self> {
        check_dims("amplitude mask", amplitude.dim(), &grid)?;
        Self::new(grid, amplitude.iter().copied().collect())
    }

    /// The grid the mask is sampled on.
    pub fn grid(&self) -> &Grid {
        &self.mask.grid
    }

    /// The amplitude transmission, `[ny, nx]`.
    pub fn amplitude(&self) -> &[f64] {
        &self.amplitude
    }
}

impl Element for AmplitudeMask {
    fn transmission(&self, grid: &Grid, _wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        self.mask.transmission(grid)
    }
}

/// A complex transmission mask sampled on its own grid, `[ny, nx]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplexMask {
    mask: Sampled,
}

impl ComplexMask {
    /// A mask from `t` (`[ny, nx]` row-major); errors on a wrong length or a non-finite value.
    pub fn new(grid: Grid, t: Vec<Complex<f64>>) -> Result<Self> {
        let finite = |z: Complex<f64>| z.re.is_finite() && z.im.is_finite();
        let mask = Sampled::new("complex mask", grid, &t, finite, |z| z)?;
        Ok(Self { mask })
    }

    /// A mask from a `[ny, nx]` complex array.
    pub fn from_array2(t: ArrayView2<Complex<f64>>, grid: Grid) -> Result<Self> {
        check_dims("complex mask", t.dim(), &grid)?;
        Self::new(grid, t.iter().copied().collect())
    }

    /// The grid the mask is sampled on.
    pub fn grid(&self) -> &Grid {
        &self.mask.grid
    }

    /// The transmission, `[ny, nx]`.
    pub fn map(&self) -> &[Complex<f64>] {
        &self.mask.t
    }
}

impl Element for ComplexMask {
    fn transmission(&self, grid: &Grid, _wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        self.mask.transmission(grid)
    }
}

fn non_finite(ok: impl Iterator<Item = bool>) -> Vec<usize> {
    ok.enumerate()
        .filter(|(_, ok)| !ok)
        .map(|(i, _)| i)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Gratings
// ---------------------------------------------------------------------------------------------

/// The profile of one period of a [`Grating`]. `u` below is the coordinate along the modulation
/// direction minus the grating's offset, `Λ` the period.
///
/// The binary kinds have a "line" of width `duty·Λ` centred on `u = 0 (mod Λ)` and are
/// area-weighted at their edges by [`coverage`] — exactly, as their edges are straight (a phase
/// pixel straddling an edge gets the area average `(1 − c) + c·e^{iφ}`); the other kinds are
/// smooth (up to the blaze reset) and sampled at pixel centres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GratingKind {
    /// Amplitude 1 on the lines (fraction `duty` of each period), 0 between them.
    BinaryAmplitude {
        /// Open fraction of each period, `[0, 1]`.
        duty: f64,
    },
    /// `t = (1 + contrast·cos(2πu/Λ))/2`: zero order 1/2, ±1 orders `contrast/4` in amplitude.
    SinusoidalAmplitude {
        /// Modulation contrast, `[0, 1]`.
        contrast: f64,
    },
    /// Phase `depth` (rad) on the lines (fraction `duty`), 0 between them: `depth = π`,
    /// `duty = 1/2` suppresses the zero order.
    BinaryPhase {
        /// Phase step, radians.
        depth: f64,
        /// Fraction of each period carrying the phase step, `[0, 1]`.
        duty: f64,
    },
    /// `t = exp(i (depth/2) cos(2πu/Λ))`: `depth` is the peak-to-peak phase (rad), and the order
    /// `m` has amplitude `|J_m(depth/2)|` (Jacobi–Anger).
    SinusoidalPhase {
        /// Peak-to-peak phase excursion, radians.
        depth: f64,
    },
    /// Sawtooth phase `t = exp(i·depth·frac(u/Λ))`, rising towards `+u`: `depth = 2π` sends all
    /// the light into the `+1` order (towards `+u`).
    Blazed {
        /// Phase at the top of the ramp, radians (2π for a full blaze).
        depth: f64,
    },
}

/// A 1-D periodic grating (straight lines) of any orientation.
///
/// The modulation runs along the unit vector `(cos θ, sin θ)` with `θ = orientation`: `θ = 0`
/// has lines along y and modulation along x. With `u = x cos θ + y sin θ − offset`, the profile
/// ([`GratingKind`]) is a function of `u mod period`.
///
/// Sampling: the fundamental frequency `(cos θ, sin θ)/Λ` must be below the Nyquist frequency
/// along both axes, i.e. `Λ ≥ max(2dx|cos θ|, 2dy|sin θ|)` ([`Grating::min_period`]); shorter
/// periods are an error. Harmonics of the binary and blazed kinds above Nyquist alias as they
/// would on any pixelated device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grating {
    /// The profile.
    pub kind: GratingKind,
    /// Period along the modulation direction, metres.
    pub period: f64,
    /// Angle of the modulation direction from the x axis, radians (0: lines along y).
    pub orientation: f64,
    /// Shift of the pattern along the modulation direction, metres.
    pub offset: f64,
}

impl Grating {
    /// A grating of period `period` (m), lines along y, no offset.
    pub fn new(kind: GratingKind, period: f64) -> Self {
        Self {
            kind,
            period,
            orientation: 0.0,
            offset: 0.0,
        }
    }

    /// The same grating with its modulation direction at `angle` (rad) from the x axis.
    pub fn rotated(self, angle: f64) -> Self {
        Self {
            orientation: angle,
            ..self
        }
    }

    /// The same grating shifted by `offset` (m) along its modulation direction.
    pub fn shifted(self, offset: f64) -> Self {
        Self { offset, ..self }
    }

    /// The shortest period (m) sampled without aliasing on `grid` at this orientation,
    /// `max(2dx|cos θ|, 2dy|sin θ|)`.
    pub fn min_period(&self, grid: &Grid) -> f64 {
        let (s, c) = self.orientation.sin_cos();
        (2.0 * grid.dx * c.abs()).max(2.0 * grid.dy * s.abs())
    }

    fn validate(&self, grid: &Grid) -> Result<()> {
        positive("grating period", self.period)?;
        finite("grating orientation", self.orientation)?;
        finite("grating offset", self.offset)?;
        let unit = |name: &'static str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(invalid(name, format!("{v} is outside [0, 1]")))
            }
        };
        match self.kind {
            GratingKind::BinaryAmplitude { duty } => unit("grating duty cycle", duty)?,
            GratingKind::SinusoidalAmplitude { contrast } => unit("grating contrast", contrast)?,
            GratingKind::BinaryPhase { depth, duty } => {
                finite("grating phase depth", depth)?;
                unit("grating duty cycle", duty)?;
            }
            GratingKind::SinusoidalPhase { depth } | GratingKind::Blazed { depth } => {
                finite("grating phase depth", depth)?;
            }
        }
        let min = self.min_period(grid);
        if self.period < min * (1.0 - 1e-12) {
            return Err(invalid(
                "grating period",
                format!(
                    "{} aliases on {}: at orientation {:.4} rad a period must span at least 2 \
                     pitches along the modulation direction; the minimum period is {}. Use a \
                     longer period or a finer pitch",
                    format_length(self.period),
                    describe_grid(grid),
                    self.orientation,
                    format_length(min)
                ),
            ));
        }
        Ok(())
    }

    /// Fraction of each pixel on the lines of a binary grating of this geometry.
    fn line_coverage(&self, grid: &Grid, duty: f64) -> Vec<f64> {
        if duty <= 0.0 {
            return vec![0.0; grid.len()];
        }
        if duty >= 1.0 {
            return vec![1.0; grid.len()];
        }
        let (sin, cos) = self.orientation.sin_cos();
        let stripes = Stripes {
            cos,
            sin,
            offset: self.offset,
            period: self.period,
            half: 0.5 * duty * self.period,
        };
        // Stripes have an exact cell fraction: no supersampling.
        coverage(grid, &stripes, 1)
    }
}

/// Lines of half-width `half` centred on `u = 0 (mod period)`, `u = x cos + y sin − offset`.
struct Stripes {
    cos: f64,
    sin: f64,
    offset: f64,
    period: f64,
    half: f64,
}

impl Stripes {
    /// `u` wrapped to `[−Λ/2, Λ/2]`.
    fn wrapped(&self, x: f64, y: f64) -> f64 {
        let u = x * self.cos + y * self.sin - self.offset;
        u - self.period * (u / self.period).round()
    }
}

impl Shape for Stripes {
    fn distance(&self, x: f64, y: f64) -> f64 {
        let w = self.wrapped(x, y).abs();
        if w <= self.half {
            w - self.half
        } else {
            (w - self.half).min(self.period - self.half - w)
        }
    }

    fn gradient(&self, x: f64, y: f64) -> (f64, f64) {
        let w = self.wrapped(x, y);
        let s = if w >= 0.0 { 1.0 } else { -1.0 };
        let a = w.abs();
        // Inside a line, or outside but nearer its own line's edge than the next line's, the
        // distance grows with |w|; otherwise it shrinks.
        let s = if a <= self.half || a - self.half <= self.period - self.half - a {
            s
        } else {
            -s
        };
        (s * self.cos, s * self.sin)
    }

    /// Exact: across the cell, `u` is its centre value plus a trapezoid-distributed variable
    /// (widths `|cos|·a`, `|sin|·b`); sum the probability of landing on each line it can reach.
    fn cell_fraction(&self, x: f64, y: f64, a: f64, b: f64) -> Option<f64> {
        let (p, q) = (self.cos.abs() * a, self.sin.abs() * b);
        let u = x * self.cos + y * self.sin - self.offset;
        let reach = 0.5 * (p + q) + self.half;
        let first = ((u - reach) / self.period).floor() as i64;
        let last = ((u + reach) / self.period).ceil() as i64;
        // P(u + S < t) = P(S < t − u) = halfplane_fraction(u − t, p, q).
        let below = |t: f64| halfplane_fraction(u - t, p, q);
        let f = (first..=last)
            .map(|m| {
                let c = m as f64 * self.period;
                below(c + self.half) - below(c - self.half)
            })
            .sum::<f64>();
        Some(f.clamp(0.0, 1.0))
    }
}

impl Element for Grating {
    fn transmission(&self, grid: &Grid, _wavelength: f64) -> Result<Cow<'_, [Complex<f64>]>> {
        self.validate(grid)?;
        let t = match self.kind {
            GratingKind::BinaryAmplitude { duty } => {
                real_map(self.line_coverage(grid, duty), false)
            }
            GratingKind::BinaryPhase { depth, duty } => {
                let step = Complex::from_polar(1.0, depth);
                self.line_coverage(grid, duty)
                    .into_iter()
                    .map(|c| (1.0 - c) + step * c)
                    .collect()
            }
            GratingKind::SinusoidalAmplitude { contrast } => self.smooth(grid, |p| {
                Complex::new(0.5 * (1.0 + contrast * (TAU * p).cos()), 0.0)
            }),
            GratingKind::SinusoidalPhase { depth } => self.smooth(grid, |p| {
                Complex::from_polar(1.0, 0.5 * depth * (TAU * p).cos())
            }),
            GratingKind::Blazed { depth } => self.smooth(grid, |p| {
                Complex::from_polar(1.0, depth * p.rem_euclid(1.0))
            }),
        };
        Ok(Cow::Owned(t))
    }
}

impl Grating {
    /// Samples `profile(u/Λ)` at the pixel centres.
    fn smooth(
        &self,
        grid: &Grid,
        profile: impl Fn(f64) -> Complex<f64> + Sync,
    ) -> Vec<Complex<f64>> {
        let (sin, cos) = self.orientation.sin_cos();
        let xs = grid.x();
        let ys = grid.y();
        let mut t = vec![Complex::default(); grid.len()];
        t.par_chunks_mut(grid.nx)
            .zip(ys.par_iter())
            .for_each(|(row, &y)| {
                for (z, &x) in row.iter_mut().zip(&xs) {
                    *z = profile((x * cos + y * sin - self.offset) / self.period);
                }
            });
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bessel_j;
    use std::f64::consts::PI;

    const UM: f64 = 1e-6;

    fn ones(grid: Grid, batch: usize) -> Field<f64> {
        let mut f = Field::<f64>::zeros(grid, 0.5 * UM, batch).unwrap();
        f.data_mut()
            .iter_mut()
            .for_each(|z| *z = Complex::new(1.0, 0.0));
        f
    }

    /// Exact area of the unit-less axis-aligned box `[x0,x1]×[y0,y1]` ∩ {a·x + b·y < c}, by
    /// clipping the box polygon against the half-plane (Sutherland–Hodgman) and the shoelace
    /// formula.
    fn clip(poly: &[(f64, f64)], a: f64, b: f64, c: f64) -> Vec<(f64, f64)> {
        let inside = |p: (f64, f64)| a * p.0 + b * p.1 < c;
        let mut out = Vec::new();
        for i in 0..poly.len() {
            let (p, q) = (poly[i], poly[(i + 1) % poly.len()]);
            let (fp, fq) = (a * p.0 + b * p.1 - c, a * q.0 + b * q.1 - c);
            if inside(p) {
                out.push(p);
            }
            if (fp < 0.0) != (fq < 0.0) {
                let s = fp / (fp - fq);
                out.push((p.0 + s * (q.0 - p.0), p.1 + s * (q.1 - p.1)));
            }
        }
        out
    }

    fn area(poly: &[(f64, f64)]) -> f64 {
        let n = poly.len();
        (0..n)
            .map(|i| poly[i].0 * poly[(i + 1) % n].1 - poly[(i + 1) % n].0 * poly[i].1)
            .sum::<f64>()
            .abs()
            / 2.0
    }

    /// Exact area of the disc of radius `r` centred at the origin inside `[x0,x1]×[y0,y1]`, by
    /// composite Gauss–Legendre integration of the chord length over x (split at the kinks).
    fn disc_box_area(r: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
        let chord = |x: f64| {
            let h = (r * r - x * x).max(0.0).sqrt();
            (y1.min(h) - y0.max(-h)).max(0.0)
        };
        // Kinks where ±h(x) crosses y0 or y1, and where the chord vanishes.
        let mut cuts = vec![x0, x1];
        for y in [y0, y1] {
            if y.abs() < r {
                let x = (r * r - y * y).sqrt();
                cuts.extend([x, -x]);
            }
        }
        cuts.extend([r, -r]);
        let mut cuts: Vec<f64> = cuts.into_iter().filter(|&x| x >= x0 && x <= x1).collect();
        cuts.sort_by(f64::total_cmp);
        let (g, w) = (
            [
                -0.906179845938664,
                -0.538469310105683,
                0.0,
                0.538469310105683,
                0.906179845938664,
            ],
            [
                0.236926885056189,
                0.478628670499366,
                0.568888888888889,
                0.478628670499366,
                0.236926885056189,
            ],
        );
        let mut total = 0.0;
        for pair in cuts.windows(2) {
            let m = 400;
            let h = (pair[1] - pair[0]) / m as f64;
            for i in 0..m {
                let mid = pair[0] + (i as f64 + 0.5) * h;
                for (gi, wi) in g.iter().zip(w) {
                    total += wi * 0.5 * h * chord(mid + 0.5 * h * gi);
                }
            }
        }
        total
    }

    #[test]
    fn circle_coverage_matches_exact_pixel_areas() {
        let grid = Grid::square(64, 1.0).unwrap();
        let r = 20.0;
        let c = coverage(
            &grid,
            &Circle {
                centre: (0.0, 0.0),
                radius: r,
            },
            DEFAULT_SUPERSAMPLE,
        );
        let (xs, ys) = (grid.x(), grid.y());
        let mut worst: f64 = 0.0;
        for (i, &y) in ys.iter().enumerate() {
            for (j, &x) in xs.iter().enumerate() {
                let d = x.hypot(y) - r;
                if d.abs() < 1.0 {
                    let exact = disc_box_area(r, x - 0.5, x + 0.5, y - 0.5, y + 0.5);
                    worst = worst.max((c[i * grid.nx + j] - exact).abs());
                }
            }
        }
        // Second order in the sub-cell size: 4e-3 at s = 1, 1e-3 at 2, 2e-4 at 4, 4e-5 at 8.
        assert!(worst < 1e-4, "worst pixel coverage error {worst}");
    }

    #[test]
    fn straight_edges_are_exact_at_any_angle() {
        // Binary gratings at several angles, including lines and gaps narrower than a pixel,
        // against the exact area of each pixel ∩ line polygon.
        let grid = Grid::new(40, 30, 1.0, 1.0).unwrap();
        for (period, duty, theta, offset) in [
            (7.3, 0.4, 0.3f64, 0.77),
            (2.6, 0.08, 1.1, -0.2),
            (3.1, 0.93, -0.7, 0.0),
            (5.0, 0.5, 0.0, 0.25),
        ] {
            let g = Grating::new(GratingKind::BinaryAmplitude { duty }, period)
                .rotated(theta)
                .shifted(offset);
            let t = g.transmission(&grid, 1.0).unwrap();
            let (s, c) = theta.sin_cos();
            let mut worst: f64 = 0.0;
            for (i, &y) in grid.y().iter().enumerate() {
                for (j, &x) in grid.x().iter().enumerate() {
                    let square = [
                        (x - 0.5, y - 0.5),
                        (x + 0.5, y - 0.5),
                        (x + 0.5, y + 0.5),
                        (x - 0.5, y + 0.5),
                    ];
                    let u = x * c + y * s - offset;
                    let m0 = (u / period).round() as i64;
                    let mut exact = 0.0;
                    for m in m0 - 2..=m0 + 2 {
                        let centre = m as f64 * period + offset;
                        let (lo, hi) = (centre - 0.5 * duty * period, centre + 0.5 * duty * period);
                        // lo < x c + y s < hi
                        let p = clip(&square, c, s, hi);
                        let p = clip(&p, -c, -s, -lo);
                        if p.len() >= 3 {
                            exact += area(&p);
                        }
                    }
                    worst = worst.max((t[i * grid.nx + j].re - exact).abs());
                }
            }
            assert!(
                worst < 1e-12,
                "Λ {period}, duty {duty}: worst pixel error {worst}"
            );
        }
    }

    /// Σ t·dA of a circular aperture (the transmitted power under uniform unit illumination
    /// integrated by an intensity detector, and the forward far-field amplitude) against πr², for
    /// area weighting and for a 0/1 test of the pixel centre.
    fn circle_errors(r: f64, centre: (f64, f64)) -> (f64, f64) {
        let grid = Grid::square(64, UM).unwrap();
        let ap = CircularAperture::new(r * UM).with_centre((centre.0 * UM, centre.1 * UM));
        let t = ap.transmission(&grid, 0.5 * UM).unwrap();
        let exact = PI * (r * UM).powi(2);
        let weighted = t.iter().map(|z| z.re).sum::<f64>() * grid.cell_area();
        let circle = Circle {
            centre: ap.centre,
            radius: ap.radius,
        };
        let (xs, ys) = (grid.x(), grid.y());
        let stair = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
            .filter(|&(x, y)| circle.distance(x, y) < 0.0)
            .count() as f64
            * grid.cell_area();
        (
            (weighted - exact).abs() / exact,
            (stair - exact).abs() / exact,
        )
    }

    #[test]
    fn circular_aperture_transmits_pi_r_squared() {
        let (w, _) = circle_errors(20.0, (0.0, 0.0));
        assert!(w < 1e-3, "area-weighted relative error {w}");
        // Over a few radii and centres the staircase is far worse than area weighting.
        let mut worst_w: f64 = 0.0;
        let mut worst_s: f64 = 0.0;
        for (r, c) in [
            (20.0, (0.0, 0.0)),
            (20.3, (0.0, 0.0)),
            (20.0, (0.25, 0.4)),
            (19.7, (0.5, 0.5)),
            (20.45, (0.1, 0.0)),
        ] {
            let (w, s) = circle_errors(r, c);
            worst_w = worst_w.max(w);
            worst_s = worst_s.max(s);
        }
        eprintln!("worst relative area error: weighted {worst_w:.2e}, staircase {worst_s:.2e}");
        assert!(worst_w < 1e-4, "area weighted: {worst_w}");
        assert!(worst_s > 2e-3, "staircase: {worst_s}");
        assert!(
            worst_s > 50.0 * worst_w,
            "staircase {worst_s} vs weighted {worst_w}"
        );
        // The stop is the complement.
        let grid = Grid::square(64, UM).unwrap();
        let hole = CircularAperture::new(20.0 * UM)
            .transmission(&grid, UM)
            .unwrap()
            .into_owned();
        let stop = CircularAperture::new(20.0 * UM)
            .inverted()
            .transmission(&grid, UM)
            .unwrap()
            .into_owned();
        assert!(
            hole.iter()
                .zip(stop.iter())
                .all(|(a, b)| (a.re + b.re - 1.0).abs() < 1e-15)
        );
    }

    #[test]
    fn rect_aperture_area_is_exact() {
        let grid = Grid::new(64, 48, UM, 0.7 * UM).unwrap();
        let (w, h, c) = (13.37 * UM, 7.77 * UM, (1.234 * UM, -2.1 * UM));
        let ap = RectAperture::new(w, h).with_centre(c);
        let mut f = ones(grid, 1);
        ap.apply(&mut f).unwrap();
        let sum: f64 = f.data().iter().map(|z| z.re).sum::<f64>() * grid.cell_area();
        assert!((sum - w * h).abs() < 1e-12 * w * h, "{sum} vs {}", w * h);
        let stop = ap.inverted().transmission(&grid, UM).unwrap().into_owned();
        let (ex, ey) = grid.extent();
        let sum: f64 = stop.iter().map(|z| z.re).sum::<f64>() * grid.cell_area();
        assert!((sum - (ex * ey - w * h)).abs() < 1e-12 * ex * ey);
    }

    /// Phase difference between neighbouring samples along x, per metre.
    fn gradient_x(f: &Field<f64>, row: usize) -> Vec<f64> {
        let g = *f.grid();
        let s = &f.sample(0)[row * g.nx..(row + 1) * g.nx];
        s.windows(2)
            .map(|p| (p[1] * p[0].conj()).arg() / g.dx)
            .collect()
    }

    #[test]
    fn thin_lens_phase_gradient_is_minus_k_x_over_f() {
        let grid = Grid::square(256, 2.0 * UM).unwrap();
        let lambda = 0.5 * UM;
        for (index, f) in [(1.0, 10e-3), (1.33, 10e-3), (1.0, -7e-3)] {
            let mut field = ones(grid, 1);
            ThinLens::new(f).in_medium(index).apply(&mut field).unwrap();
            let k = TAU * index / lambda;
            let xs = grid.x();
            for (j, g) in gradient_x(&field, 17).into_iter().enumerate() {
                let x_mid = 0.5 * (xs[j] + xs[j + 1]);
                let expect = -k * x_mid / f;
                assert!(
                    (g - expect).abs() < 1e-9 * k,
                    "x = {x_mid}: {g} vs {expect}"
                );
            }
        }
        // The same lens built from a Wave in water.
        let water = Wave::new(lambda, 1.33).unwrap();
        let a = ThinLens::for_wave(10e-3, water)
            .transmission(&grid, lambda)
            .unwrap()
            .into_owned();
        let b = ThinLens::new(10e-3)
            .in_medium(1.33)
            .transmission(&grid, lambda)
            .unwrap()
            .into_owned();
        assert_eq!(a, b);
    }

    #[test]
    fn thin_lens_refuses_aliased_focal_lengths() {
        let grid = Grid::square(256, 2.0 * UM).unwrap();
        let lambda = 0.5 * UM;
        // Shortest f: 2·dx·(128·dx)/λ = 2.048 mm.
        let lens = ThinLens::new(1e-3);
        assert!((lens.min_focal_length(&grid, lambda) - 2.048e-3).abs() < 1e-12);
        let e = lens.transmission(&grid, lambda).unwrap_err().to_string();
        assert!(e.contains("2.048mm"), "{e}");
        assert!(ThinLens::new(2.1e-3).transmission(&grid, lambda).is_ok());
        // An aperture of 100 µm radius lowers it to 0.8 mm.
        let small = lens.with_aperture(100.0 * UM);
        assert!((small.min_focal_length(&grid, lambda) - 0.8e-3).abs() < 1e-12);
        let t = small.transmission(&grid, lambda).unwrap();
        let area: f64 = t.iter().map(|z| z.norm()).sum::<f64>() * grid.cell_area();
        assert!((area - PI * 1e-8).abs() < 1e-4 * PI * 1e-8);
        assert!(ThinLens::new(0.0).transmission(&grid, lambda).is_err());
        assert!(ThinLens::new(f64::NAN).transmission(&grid, lambda).is_err());
    }

    /// Fourier coefficient of order m of row 0 of a map whose period is `p` samples.
    fn order(t: &[Complex<f64>], nx: usize, p: usize, m: i64) -> Complex<f64> {
        assert_eq!(nx % p, 0);
        t[..nx]
            .iter()
            .enumerate()
            .map(|(j, z)| z * Complex::from_polar(1.0, -TAU * m as f64 * j as f64 / p as f64))
            .sum::<Complex<f64>>()
            / nx as f64
    }

    #[test]
    fn bessel_reference_values() {
        assert!((bessel_j(0, 1.0) - 0.765_197_686_557_966_6).abs() < 1e-15);
        assert!((bessel_j(1, 1.0) - 0.440_050_585_744_933_5).abs() < 1e-15);
        assert!((bessel_j(2, 2.4) - 0.430_980_040_187_698_7).abs() < 1e-15);
    }

    #[test]
    fn sinusoidal_phase_grating_orders_are_bessel_j_of_half_depth() {
        // exp(i (d/2) cos θ) = Σ i^m J_m(d/2) e^{imθ} (Jacobi–Anger): depth d is peak-to-peak.
        let grid = Grid::new(256, 2, UM, UM).unwrap();
        // 32 samples per period: the aliased orders ±29 carry J_29(2) ≈ 1e-33.
        let depth = 4.0;
        let g = Grating::new(GratingKind::SinusoidalPhase { depth }, 32.0 * UM);
        let t = g.transmission(&grid, UM).unwrap();
        for m in -3..=3 {
            let c = order(&t, 256, 32, m).norm();
            let expect = bessel_j(m, depth / 2.0).abs();
            assert!((c - expect).abs() < 1e-12, "order {m}: {c} vs {expect}");
        }
        // …and not J_m(depth).
        let c1 = order(&t, 256, 32, 1).norm();
        assert!((c1 - bessel_j(1, depth).abs()).abs() > 0.05);
        // The phase excursion is ±depth/2.
        let phases: Vec<f64> = t.iter().map(|z| z.arg()).collect();
        let max = phases.iter().cloned().fold(f64::MIN, f64::max);
        let min = phases.iter().cloned().fold(f64::MAX, f64::min);
        assert!((max - min - depth).abs() < 1e-12);
    }

    #[test]
    fn amplitude_gratings_have_the_right_mean_and_orders() {
        let grid = Grid::new(200, 30, UM, UM).unwrap();
        for duty in [0.37, 0.5, 0.0, 1.0, 0.913] {
            for theta in [0.0, std::f64::consts::FRAC_PI_2] {
                let g = Grating::new(GratingKind::BinaryAmplitude { duty }, 10.0 * UM)
                    .rotated(theta)
                    .shifted(0.31 * UM);
                let grid = if theta == 0.0 {
                    grid
                } else {
                    Grid::new(30, 200, UM, UM).unwrap()
                };
                let t = g.transmission(&grid, UM).unwrap();
                let mean = t.iter().map(|z| z.re).sum::<f64>() / t.len() as f64;
                assert!(
                    (mean - duty).abs() < 1e-12,
                    "duty {duty}, θ {theta}: {mean}"
                );
                assert!(t.iter().all(|z| z.im == 0.0 && (0.0..=1.0).contains(&z.re)));
            }
        }
        let contrast = 0.6;
        let g = Grating::new(GratingKind::SinusoidalAmplitude { contrast }, 20.0 * UM);
        let t = g.transmission(&grid, UM).unwrap();
        assert!((order(&t, 200, 20, 0).norm() - 0.5).abs() < 1e-12);
        assert!((order(&t, 200, 20, 1).norm() - contrast / 4.0).abs() < 1e-12);
        assert!((order(&t, 200, 20, -1).norm() - contrast / 4.0).abs() < 1e-12);
        assert!(order(&t, 200, 20, 2).norm() < 1e-12);
    }

    #[test]
    fn binary_phase_grating_zero_order() {
        let grid = Grid::new(200, 4, UM, UM).unwrap();
        // A π step on half of each period removes the zero order exactly (area weighting keeps
        // the mean exact even with edges inside pixels).
        let g = Grating::new(
            GratingKind::BinaryPhase {
                depth: PI,
                duty: 0.5,
            },
            10.0 * UM,
        )
        .shifted(0.123 * UM);
        let t = g.transmission(&grid, UM).unwrap();
        assert!(order(&t, 200, 10, 0).norm() < 1e-12);
        // In general the zero order is (1 − D) + D e^{iφ}.
        let (depth, duty) = (1.1, 0.3);
        let g = Grating::new(GratingKind::BinaryPhase { depth, duty }, 10.0 * UM).shifted(0.4 * UM);
        let t = g.transmission(&grid, UM).unwrap();
        let expect = (1.0 - duty) + Complex::from_polar(duty, depth);
        assert!((order(&t, 200, 10, 0) - expect).norm() < 1e-12);
    }

    #[test]
    fn full_blaze_is_a_tilt_towards_plus_x() {
        let grid = Grid::new(256, 2, UM, UM).unwrap();
        let period = 16.0 * UM;
        let g = Grating::new(GratingKind::Blazed { depth: TAU }, period);
        let t = g.transmission(&grid, UM).unwrap();
        assert!((order(&t, 256, 16, 1).norm() - 1.0).abs() < 1e-12);
        for m in [-2, -1, 0, 2] {
            assert!(order(&t, 256, 16, m).norm() < 1e-12, "order {m}");
        }
        // Same as a plane wave tilted by sin θ = λ/Λ (exp(+ik sinθ x), towards +x).
        let lambda = 0.5 * UM;
        let wave = Wave::vacuum(lambda).unwrap();
        let p =
            crate::sources::plane_wave::<f64>(&grid, wave, 1.0, ((lambda / period).asin(), 0.0))
                .unwrap();
        let ratio = t[0] / p.data()[0];
        for (a, b) in t.iter().zip(p.data()) {
            assert!((a - b * ratio).norm() < 1e-9);
        }
    }

    #[test]
    fn gratings_refuse_aliased_periods() {
        let grid = Grid::square(64, UM).unwrap();
        let e = Grating::new(GratingKind::SinusoidalPhase { depth: 1.0 }, 1.9 * UM)
            .transmission(&grid, UM)
            .unwrap_err()
            .to_string();
        assert!(e.contains("minimum period is 2um"), "{e}");
        assert!(
            Grating::new(GratingKind::SinusoidalPhase { depth: 1.0 }, 2.0 * UM)
                .transmission(&grid, UM)
                .is_ok()
        );
        // Along the diagonal the period may be 2·cos45° pitches.
        let diag = |p: f64| {
            Grating::new(GratingKind::BinaryAmplitude { duty: 0.5 }, p * UM)
                .rotated(std::f64::consts::FRAC_PI_4)
                .transmission(&grid, UM)
                .map(|t| t.into_owned())
        };
        assert!(diag(1.5).is_ok());
        let e = diag(1.3).unwrap_err().to_string();
        assert!(e.contains("1.41421um"), "{e}");
        assert!(
            Grating::new(GratingKind::BinaryAmplitude { duty: 1.5 }, 4.0 * UM)
                .transmission(&grid, UM)
                .is_err()
        );
        assert!(
            CircularAperture::new(4.0 * UM)
                .with_supersample(0)
                .transmission(&grid, UM)
                .is_err()
        );
    }

    #[test]
    fn masks_check_grids_and_values() {
        let grid = Grid::new(4, 3, UM, UM).unwrap();
        let other = Grid::square(8, 2.0 * UM).unwrap();
        let phase: Vec<f64> = (0..12).map(|i| i as f64 * 0.1).collect();
        let mask = PhaseMask::new(grid, phase.clone()).unwrap();
        let mut f = ones(other, 1);
        let e = mask.apply(&mut f).unwrap_err().to_string();
        assert!(
            e.contains("3×4 samples at 1um pitch") && e.contains("8×8 samples at 2um pitch"),
            "{e}"
        );
        let mut bad = phase.clone();
        bad[6] = f64::NAN;
        let e = PhaseMask::new(grid, bad).unwrap_err().to_string();
        assert!(e.contains("row 1, column 2"), "{e}");
        assert!(AmplitudeMask::new(grid, vec![f64::INFINITY; 12]).is_err());
        assert!(ComplexMask::new(grid, vec![Complex::new(0.0, f64::NAN); 12]).is_err());
        assert!(PhaseMask::new(grid, vec![0.0; 11]).is_err());
        let a = ndarray::Array2::from_shape_vec((3, 4), phase.clone()).unwrap();
        assert_eq!(PhaseMask::from_array2(a.view(), grid).unwrap(), mask);
        assert!(PhaseMask::from_array2(a.t(), grid).is_err());
        // Applying multiplies by exp(iφ), field by field of a batch (rayon path) and in f32.
        let mut f =
            Field::<f32>::from_fn(grid, UM, |x, y| Complex::new(1.0 + x / UM, y / UM)).unwrap();
        let single = f.clone();
        let mut batch = Field::from_vec([f.data(), f.data(), f.data()].concat(), grid, UM).unwrap();
        mask.apply(&mut f).unwrap();
        mask.apply(&mut batch).unwrap();
        for b in 0..3 {
            assert_eq!(batch.sample(b), f.data());
        }
        for ((z, z0), p) in f.data().iter().zip(single.data()).zip(&phase) {
            let expect = z0 * Complex::from_polar(1.0, *p as f32);
            assert!((z - expect).norm() < 1e-5);
        }
        let amp = AmplitudeMask::from_array2(a.view(), grid).unwrap();
        assert_eq!(amp.amplitude(), &phase[..]);
    }

    #[test]
    fn elements_compose_as_trait_objects() {
        let grid = Grid::square(128, 2.0 * UM).unwrap();
        let lambda = 0.5 * UM;
        let parts: Vec<Box<dyn Element>> = vec![
            Box::new(ThinLens::new(20e-3)),
            Box::new(CircularAperture::new(60.0 * UM)),
        ];
        let stack = Stack(parts);
        let lens = ThinLens::new(20e-3).with_aperture(60.0 * UM);
        let a = stack.transmission(&grid, lambda).unwrap().into_owned();
        let b = lens.transmission(&grid, lambda).unwrap().into_owned();
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).norm() < 1e-12));
        // Precomputed maps check grid and wavelength.
        let pre = (&stack as &dyn Element).precompute(&grid, lambda).unwrap();
        let mut f = ones(grid, 2);
        pre.apply(&mut f).unwrap();
        assert!(
            f.sample(1)
                .iter()
                .zip(&b)
                .all(|(z, t)| (z - t).norm() < 1e-12)
        );
        let mut g = Field::<f64>::zeros(grid, 0.6 * UM, 1).unwrap();
        assert!(
            pre.apply(&mut g)
                .unwrap_err()
                .to_string()
                .contains("precomputed")
        );
    }
}
