//! Partially coherent light as a sum of mutually incoherent coherent fields ("modes"): the
//! cross-spectral density `W(r₁, r₂) = Σₘ wₘ·Eₘ*(r₁)·Eₘ(r₂)` and the intensity `Σₘ wₘ|Eₘ|²`.
//!
//! Every linear optical system acts on each mode on its own, so partially coherent light
//! propagates as a batch of coherent fields through the same plans as coherent light, and the
//! time-averaged intensity behind the system is the weighted sum of the modes' intensities.
//!
//! Two sources come with their decomposition ([`Coherence`]):
//! - [`DiscSource`]: a uniform, spatially incoherent source at infinity seen under a cone of
//!   numerical aperture `na` — a lamp or LED behind a condenser (Köhler illumination), a star,
//!   a diffuser — as tilted plane waves over the disc of directions, sampled by a polar Gauss
//!   rule fine enough for the field's extent. Its degree of coherence is the van Cittert–Zernike
//!   `2J₁(v)/v`, `v = 2π·na·|r₂ − r₁|/λ`.
//! - [`GaussianSchell`]: a Gaussian Schell-model beam (rms width `σ_S`, coherence width `σ_g`),
//!   by its exact Hermite–Gaussian coherent modes (Gori, Opt. Commun. 34, 301 (1980); Starikov &
//!   Wolf, JOSA 72, 923 (1982)).
//!
//! [`Modes`] holds any set of fields and weights in memory, and finds the coherent modes of any
//! such set ([`Modes::orthogonalise`], the eigenvectors of its cross-spectral density).

use std::f64::consts::{PI, TAU};

use nalgebra::{DMatrix, SymmetricEigen};
use num_complex::Complex;

use super::quadrature::gauss_legendre;
use crate::error::{OpticsError, Result, invalid};
use crate::field::{Field, Real, cplx};
use crate::grid::{Grid, Wave};
use crate::propagate::{Propagator, WindowPlan};

/// The most modes a decomposition may have.
pub const MAX_MODES: usize = 1 << 16;

/// A uniform, spatially incoherent source at infinity (or a uniformly filled condenser pupil):
/// plane waves of equal power from every direction whose direction cosines `(sx, sy)` (times
/// the medium's index) lie in the disc of radius `na` about `centre`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiscSource {
    /// Numerical aperture of the illuminating cone, `n·sin θ`.
    pub na: f64,
    /// Direction of the cone's axis, `(n·sin θx, n·sin θy)`; `(0, 0)` along `z`.
    pub centre: (f64, f64),
    /// Rings of the polar rule (`None`: enough for the field's extent, see [`DiscSource::rule`]).
    pub rings: Option<usize>,
}

/// A Gaussian Schell-model beam at its waist: intensity `P/(2πσ_S²)·exp(−ρ²/(2σ_S²))`, degree
/// of coherence `exp(−|r₂ − r₁|²/(2σ_g²))`. Metres and watts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianSchell {
    /// rms width of the intensity, `σ_S` (m).
    pub rms_width: f64,
    /// rms width of the degree of coherence, `σ_g` (m); `∞`-like values approach a coherent
    /// Gaussian beam of waist `2σ_S`.
    pub coherence_width: f64,
    /// Centre of the beam (m).
    pub centre: (f64, f64),
    /// Total power (W).
    pub power: f64,
}

/// The spatial coherence of an illumination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coherence {
    /// Fully coherent: one plane wave of unit intensity along `z`.
    Full,
    /// A spatially incoherent disc of directions (Köhler illumination).
    Disc(DiscSource),
    /// A Gaussian Schell-model beam.
    GaussianSchell(GaussianSchell),
}

/// The modes of a [`Coherence`] on a grid at one wavelength, generated one at a time (so that
/// thousands of them never sit in memory at once): their weights, and
/// [`Decomposition::fill`] to sample mode `j`.
#[derive(Debug, Clone)]
pub struct Decomposition {
    grid: Grid,
    wave: Wave,
    weights: Vec<f64>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Full,
    /// Plane waves with direction cosines (times index) `(sx, sy)`.
    Plane(Vec<(f64, f64)>),
    /// Hermite–Gaussian modes `φₘ(x)·φₙ(y)` of a Gaussian Schell-model beam.
    Hermite {
        c: f64,
        centre: (f64, f64),
        orders: Vec<(usize, usize)>,
    },
}

impl DiscSource {
    /// A disc of directions of numerical aperture `na` about the axis.
    pub fn new(na: f64) -> Self {
        Self {
            na,
            centre: (0.0, 0.0),
            rings: None,
        }
    }

    /// The polar rule: `(sx, sy, weight)` for every direction, weights summing to 1. Rings at
    /// the Gauss–Legendre nodes of `ρ²` (the disc's area measure), each with enough equally
    /// spaced directions for the trapezoidal rule to be exact to ≈ 10⁻⁶ in angle over a field
    /// of diameter `extent`. Without a ring count the rule resolves the degree of coherence over
    /// `extent`: `v = k·na·extent`, rings `⌈v/4 + 6⌉`.
    pub fn rule(&self, wave: Wave, extent: f64) -> Result<Vec<(f64, f64, f64)>> {
        if !(self.na.is_finite() && self.na >= 0.0 && self.na <= wave.index) {
            return Err(invalid(
                "source NA",
                format!(
                    "{}: the numerical aperture of the illumination must lie in 0 … {} (the medium's index)",
                    self.na, wave.index
                ),
            ));
        }
        if !(self.centre.0.is_finite() && self.centre.1.is_finite())
            || self.centre.0.hypot(self.centre.1) + self.na > wave.index
        {
            return Err(invalid(
                "source direction",
                format!(
                    "the cone about ({}, {}) with NA {} reaches beyond grazing incidence",
                    self.centre.0, self.centre.1, self.na
                ),
            ));
        }
        if self.na == 0.0 {
            return Ok(vec![(self.centre.0, self.centre.1, 1.0)]);
        }
        let k0 = TAU / wave.wavelength;
        let v = k0 * self.na * extent.max(0.0);
        let rings = self.rings.unwrap_or((v / 4.0 + 6.0).ceil() as usize).max(1);
        let rule = gauss_legendre(rings);
        let mut out = Vec::new();
        for (ring, (x, w)) in rule.nodes.iter().zip(&rule.weights).enumerate() {
            let rho = self.na * (0.5 * (1.0 + x)).sqrt();
            let count = (1.1 * k0 * rho * extent + 12.0).ceil() as usize;
            // stagger successive rings so that no direction repeats along an axis
            let offset = if ring % 2 == 0 { 0.0 } else { 0.5 };
            for j in 0..count {
                let phi = TAU * (j as f64 + offset) / count as f64;
                out.push((
                    self.centre.0 + rho * phi.cos(),
                    self.centre.1 + rho * phi.sin(),
                    0.5 * w / count as f64,
                ));
            }
            if out.len() > MAX_MODES {
                return Err(too_many(out.len(), "narrow the source NA or the field"));
            }
        }
        Ok(out)
    }
}

impl GaussianSchell {
    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("beam rms width", self.rms_width),
            ("coherence width", self.coherence_width),
            ("beam power", self.power),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(name, format!("{v} must be positive and finite")));
            }
        }
        Ok(())
    }

    /// `(q, c)` of the 1-D decomposition: eigenvalues `∝ qⁿ`, modes `φₙ(x) ∝ Hₙ(x√(2c))·e^(−cx²)`,
    /// with `a = 1/(4σ_S²)`, `b = 1/(2σ_g²)`, `c = √(a² + 2ab)`, `q = b/(a + b + c)`.
    fn parameters(&self) -> (f64, f64) {
        let a = 1.0 / (4.0 * self.rms_width * self.rms_width);
        let b = 1.0 / (2.0 * self.coherence_width * self.coherence_width);
        let c = (a * a + 2.0 * a * b).sqrt();
        (b / (a + b + c), c)
    }

    /// The beam's expansion `Δ(z) = √(1 + (z/(kσ_Sδ))²)`, `1/δ² = 1/(4σ_S²) + 1/σ_g²`: after
    /// `z` its rms width is `σ_S·Δ` and its degree of coherence `exp(−ρ²/(2(σ_gΔ)²))` (Mandel
    /// & Wolf, *Optical Coherence and Quantum Optics*, §5.6.4).
    pub fn expansion(&self, z: f64, wave: Wave) -> f64 {
        let s = self.rms_width;
        let inv_delta2 = 1.0 / (4.0 * s * s) + 1.0 / (self.coherence_width * self.coherence_width);
        let t = z * inv_delta2.sqrt() / (wave.k() * s);
        (1.0 + t * t).sqrt()
    }
}

impl Coherence {
    /// The sine (times the index) of the steepest direction among the modes, `|centre| + na`
    /// for a [`DiscSource`], 0 otherwise: what its tilts add to the path differences across a
    /// field.
    pub fn max_tilt(&self) -> f64 {
        match self {
            Coherence::Disc(d) => d.centre.0.hypot(d.centre.1) + d.na,
            _ => 0.0,
        }
    }

    /// The modes on `grid` at `wave`, resolving a field of diameter `extent` (m; used by
    /// [`DiscSource`]) and keeping all but `tolerance` of the power of a Gaussian Schell-model
    /// beam (whose mode weights fall geometrically).
    pub fn decompose(
        &self,
        grid: &Grid,
        wave: Wave,
        extent: f64,
        tolerance: f64,
    ) -> Result<Decomposition> {
        let (weights, kind) = match self {
            Coherence::Full => (vec![1.0], Kind::Full),
            Coherence::Disc(disc) => {
                let rule = disc.rule(wave, extent)?;
                (
                    rule.iter().map(|p| p.2).collect(),
                    Kind::Plane(rule.iter().map(|p| (p.0, p.1)).collect()),
                )
            }
            Coherence::GaussianSchell(g) => {
                g.check()?;
                if !(tolerance.is_finite() && tolerance > 0.0 && tolerance < 1.0) {
                    return Err(invalid(
                        "mode tolerance",
                        format!("{tolerance} must lie strictly between 0 and 1"),
                    ));
                }
                let (q, c) = g.parameters();
                // orders m + n ≤ K, with K the smallest that keeps 1 − tolerance of the power
                let mut orders = Vec::new();
                let mut weights = Vec::new();
                let mut kept = 0.0;
                let mut s = 0usize;
                while kept < 1.0 - tolerance {
                    let w = (1.0 - q) * (1.0 - q) * q.powi(s as i32);
                    for m in 0..=s {
                        orders.push((m, s - m));
                        weights.push(g.power * w);
                    }
                    kept += (s + 1) as f64 * w;
                    s += 1;
                    if orders.len() > MAX_MODES {
                        return Err(too_many(
                            orders.len(),
                            "a coherence width this small against the beam needs that many modes; raise the tolerance or the coherence width",
                        ));
                    }
                }
                (
                    weights,
                    Kind::Hermite {
                        c,
                        centre: g.centre,
                        orders,
                    },
                )
            }
        };
        Ok(Decomposition {
            grid: *grid,
            wave,
            weights,
            kind,
        })
    }
}

fn too_many(count: usize, fix: &str) -> OpticsError {
    invalid(
        "illumination",
        format!("its decomposition needs more than {MAX_MODES} modes ({count} so far); {fix}"),
    )
}

impl Decomposition {
    /// The number of modes.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are none (never, for a decomposition that was made).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The modes' weights (their powers; the intensity is `Σ wₘ|Eₘ|²`).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Samples mode `j` on the grid into `out` (`grid.len()` values).
    pub fn fill<T: Real>(&self, j: usize, out: &mut [Complex<T>]) {
        let g = self.grid;
        debug_assert_eq!(out.len(), g.len());
        let (xs, ys) = (g.x(), g.y());
        match &self.kind {
            Kind::Full => out.fill(Complex::new(T::one(), T::zero())),
            Kind::Plane(dirs) => {
                let k0 = TAU / self.wave.wavelength;
                let (sx, sy) = dirs[j];
                let px: Vec<Complex<f64>> = xs.iter().map(|x| Complex::cis(k0 * sx * x)).collect();
                for (row, y) in out.chunks_exact_mut(g.nx).zip(&ys) {
                    let py = Complex::cis(k0 * sy * y);
                    for (o, p) in row.iter_mut().zip(&px) {
                        *o = cplx(p * py);
                    }
                }
            }
            Kind::Hermite { c, centre, orders } => {
                let (m, n) = orders[j];
                let fx: Vec<f64> = xs
                    .iter()
                    .map(|x| hermite_function(m, *c, x - centre.0))
                    .collect();
                for (row, y) in out.chunks_exact_mut(g.nx).zip(&ys) {
                    let fy = hermite_function(n, *c, y - centre.1);
                    for (o, f) in row.iter_mut().zip(&fx) {
                        *o = cplx(Complex::new(f * fy, 0.0));
                    }
                }
            }
        }
    }

    /// Every mode in memory, as a [`Modes`] batch.
    pub fn modes<T: Real>(&self) -> Result<Modes<T>> {
        let mut fields = Field::zeros(self.grid, self.wave.wavelength, self.len())?;
        let n = self.grid.len();
        for (j, chunk) in fields.data_mut().chunks_exact_mut(n).enumerate() {
            self.fill(j, chunk);
        }
        Modes::new(fields, self.weights.clone())
    }
}

/// The normalised Hermite function `φₙ(x) = (2c)^¼·ψₙ(x√(2c))` (`∫φₙ² dx = 1`), with `ψₙ` by
/// its stable three-term recurrence.
fn hermite_function(n: usize, c: f64, x: f64) -> f64 {
    let xi = x * (2.0 * c).sqrt();
    let mut prev = 0.0;
    let mut cur = PI.powf(-0.25) * (-0.5 * xi * xi).exp();
    for k in 0..n {
        let next =
            (2.0 / (k + 1) as f64).sqrt() * xi * cur - (k as f64 / (k + 1) as f64).sqrt() * prev;
        prev = cur;
        cur = next;
    }
    (2.0 * c).powf(0.25) * cur
}

/// Mutually incoherent fields with weights: a batch `[M, Ny, Nx]` of modes `Eₘ` and their
/// weights `wₘ ≥ 0`. The intensity is `Σ wₘ|Eₘ|²`, the cross-spectral density
/// `W(r₁, r₂) = Σ wₘ·Eₘ*(r₁)·Eₘ(r₂)`.
#[derive(Debug, Clone)]
pub struct Modes<T: Real> {
    fields: Field<T>,
    weights: Vec<f64>,
}

impl<T: Real> Modes<T> {
    /// Modes from fields and their weights (one per field of the batch, finite and ≥ 0).
    pub fn new(fields: Field<T>, weights: Vec<f64>) -> Result<Self> {
        if weights.len() != fields.batch() {
            return Err(OpticsError::Shape(format!(
                "{} weights for {} modes",
                weights.len(),
                fields.batch()
            )));
        }
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return Err(invalid(
                "mode weights",
                format!("{w}: weights must be finite and ≥ 0"),
            ));
        }
        Ok(Self { fields, weights })
    }

    /// The fields, one per mode.
    pub fn fields(&self) -> &Field<T> {
        &self.fields
    }

    /// The weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The number of modes.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are no modes.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Propagates every mode through a plan (same grid in and out, or the plan's output grid).
    pub fn propagate(&mut self, plan: &dyn Propagator<T>) -> Result<()> {
        plan.propagate(&mut self.fields)
    }

    /// Every mode propagated onto an output window.
    pub fn apply_window(&self, plan: &WindowPlan<T>) -> Result<Modes<T>> {
        Ok(Modes {
            fields: plan.apply(&self.fields)?,
            weights: self.weights.clone(),
        })
    }

    /// Multiplies every mode by a thin object's transmittance `t` (`Ny·Nx` values).
    pub fn transmit(&mut self, t: &[Complex<T>]) -> Result<()> {
        let n = self.fields.grid().len();
        if t.len() != n {
            return Err(OpticsError::Shape(format!(
                "the transmittance has {} values for a grid of {n}",
                t.len()
            )));
        }
        for chunk in self.fields.data_mut().chunks_exact_mut(n) {
            for (e, t) in chunk.iter_mut().zip(t) {
                *e = *e * *t;
            }
        }
        Ok(())
    }

    /// The intensity `Σ wₘ|Eₘ|²` on the grid (`Ny·Nx` values).
    pub fn intensity(&self) -> Vec<f64> {
        let n = self.fields.grid().len();
        let mut out = vec![0.0; n];
        for (chunk, w) in self.fields.data().chunks_exact(n).zip(&self.weights) {
            for (o, e) in out.iter_mut().zip(chunk) {
                *o += w * e.norm_sqr().f64();
            }
        }
        out
    }

    /// The power `Σ wₘ·Σ|Eₘ|²·dA` (W for fields in √(W/m²)).
    pub fn power(&self) -> f64 {
        self.intensity().iter().sum::<f64>() * self.fields.grid().cell_area()
    }

    /// The cross-spectral density `W(r₁, r₂) = Σ wₘ·Eₘ*(r₁)·Eₘ(r₂)` between samples `a` and `b`
    /// (flat indices `row·Nx + col`).
    pub fn mutual_intensity(&self, a: usize, b: usize) -> Complex<f64> {
        let n = self.fields.grid().len();
        self.fields
            .data()
            .chunks_exact(n)
            .zip(&self.weights)
            .map(|(e, w)| {
                let (ea, eb) = (e[a], e[b]);
                Complex::new(ea.re.f64(), -ea.im.f64()) * Complex::new(eb.re.f64(), eb.im.f64()) * w
            })
            .sum()
    }

    /// The complex degree of coherence `μ = W(r₁, r₂)/√(I(r₁)·I(r₂))` (0 where either is dark).
    pub fn degree_of_coherence(&self, a: usize, b: usize) -> Complex<f64> {
        let ia = self.mutual_intensity(a, a).re;
        let ib = self.mutual_intensity(b, b).re;
        if ia <= 0.0 || ib <= 0.0 {
            return Complex::new(0.0, 0.0);
        }
        self.mutual_intensity(a, b) / (ia * ib).sqrt()
    }

    /// The coherent modes of this light: the eigenvectors of its cross-spectral density, found
    /// from the `M × M` Gram matrix of the weighted fields (`O(M²·N)`), largest first, until all
    /// but `tolerance` of the power is kept. The modes are orthonormal on the grid
    /// (`Σ |Eₘ|²·dA = 1`), their weights the eigenvalues; the intensity and the cross-spectral
    /// density are those of `self` up to the dropped power. The number kept, against `M`, is
    /// how coherent the light is.
    pub fn orthogonalise(&self, tolerance: f64) -> Result<Modes<T>> {
        if !(tolerance.is_finite() && (0.0..1.0).contains(&tolerance)) {
            return Err(invalid(
                "mode tolerance",
                format!("{tolerance} must lie in 0 … 1"),
            ));
        }
        let m = self.len();
        let n = self.fields.grid().len();
        let da = self.fields.grid().cell_area();
        let a: Vec<Vec<Complex<f64>>> = self
            .fields
            .data()
            .chunks_exact(n)
            .zip(&self.weights)
            .map(|(e, w)| {
                let s = (w * da).sqrt();
                e.iter()
                    .map(|z| Complex::new(z.re.f64(), z.im.f64()) * s)
                    .collect()
            })
            .collect();
        let mut gram = DMatrix::<Complex<f64>>::zeros(m, m);
        for i in 0..m {
            for j in i..m {
                let g: Complex<f64> = a[i].iter().zip(&a[j]).map(|(x, y)| x.conj() * y).sum();
                gram[(i, j)] = g;
                gram[(j, i)] = g.conj();
            }
        }
        let eigen = SymmetricEigen::new(gram);
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&i, &j| eigen.eigenvalues[j].total_cmp(&eigen.eigenvalues[i]));
        let total: f64 = eigen.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        let mut kept = 0.0;
        let mut fields = Vec::new();
        let mut weights = Vec::new();
        for &k in &order {
            let lambda = eigen.eigenvalues[k];
            if lambda <= 0.0 || (kept >= (1.0 - tolerance) * total && !weights.is_empty()) {
                break;
            }
            kept += lambda;
            // u = A·v/√λ, scaled to Σ|u|²·dA = 1
            let scale = 1.0 / (lambda * da).sqrt();
            let mut u = vec![Complex::<f64>::new(0.0, 0.0); n];
            for (i, ai) in a.iter().enumerate() {
                let v = eigen.eigenvectors[(i, k)] * scale;
                for (o, x) in u.iter_mut().zip(ai) {
                    *o += x * v;
                }
            }
            fields.extend(u.into_iter().map(cplx::<T>));
            weights.push(lambda);
        }
        let grid = *self.fields.grid();
        let fields = Field::from_vec(fields, grid, self.fields.wavelength())?;
        Modes::new(fields, weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Hermite functions are orthonormal, and the Gaussian Schell-model modes rebuild its
    /// cross-spectral density `√(I₁I₂)·exp(−Δ²/(2σ_g²))` and its power.
    #[test]
    fn gaussian_schell_modes_rebuild_the_cross_spectral_density() {
        let c = 2.3e10;
        let dx = 2e-7;
        let xs: Vec<f64> = (-400..=400).map(|i| i as f64 * dx).collect();
        for m in 0..6 {
            for n in 0..6 {
                let s: f64 = xs
                    .iter()
                    .map(|x| hermite_function(m, c, *x) * hermite_function(n, c, *x))
                    .sum::<f64>()
                    * dx;
                assert!((s - f64::from(m == n)).abs() < 1e-10, "{m} {n} {s}");
            }
        }
        let gsm = GaussianSchell {
            rms_width: 20e-6,
            coherence_width: 15e-6,
            centre: (3e-6, -2e-6),
            power: 2e-3,
        };
        let grid = Grid::square(128, 2e-6).unwrap();
        let wave = Wave::vacuum(633e-9).unwrap();
        let d = Coherence::GaussianSchell(gsm)
            .decompose(&grid, wave, 0.0, 1e-6)
            .unwrap();
        let kept: f64 = d.weights().iter().sum();
        assert!(kept <= gsm.power && kept >= gsm.power * (1.0 - 1e-6));
        let modes = d.modes::<f64>().unwrap();
        assert!((modes.power() / gsm.power - 1.0).abs() < 2e-6);
        let (xs, ys) = (grid.x(), grid.y());
        let at = |i: usize| (xs[i % 128] - gsm.centre.0, ys[i / 128] - gsm.centre.1);
        let intensity = |(x, y): (f64, f64)| {
            let s2 = gsm.rms_width * gsm.rms_width;
            gsm.power / (TAU * s2) * (-(x * x + y * y) / (2.0 * s2)).exp()
        };
        let peak = intensity((0.0, 0.0));
        for (a, b) in [
            (64 * 128 + 64, 64 * 128 + 76),
            (56 * 128 + 66, 71 * 128 + 54),
            (10, 10),
        ] {
            let (pa, pb) = (at(a), at(b));
            let d2 = (pa.0 - pb.0).powi(2) + (pa.1 - pb.1).powi(2);
            let w = (intensity(pa) * intensity(pb)).sqrt()
                * (-d2 / (2.0 * gsm.coherence_width.powi(2))).exp();
            let got = modes.mutual_intensity(a, b);
            assert!((got - w).norm() < 1e-5 * peak, "{a} {b}: {got} vs {w}");
        }
    }

    /// A disc source's degree of coherence is `2J₁(v)/v` (van Cittert–Zernike) across the
    /// field's extent, and orthogonalising its plane waves keeps the intensity.
    #[test]
    fn disc_source_modes_orthogonalise() {
        let grid = Grid::square(24, 1e-6).unwrap();
        let wave = Wave::vacuum(500e-9).unwrap();
        let disc = Coherence::Disc(DiscSource::new(0.05));
        let d = disc
            .decompose(&grid, wave, 24e-6 * 2f64.sqrt(), 0.0)
            .unwrap();
        assert!((d.weights().iter().sum::<f64>() - 1.0).abs() < 1e-13);
        let modes = d.modes::<f64>().unwrap();
        let i = modes.intensity();
        assert!(i.iter().all(|v| (v - 1.0).abs() < 1e-12));
        let ortho = modes.orthogonalise(1e-9).unwrap();
        assert!(
            ortho.len() < modes.len() / 2,
            "{} of {}",
            ortho.len(),
            modes.len()
        );
        let j = ortho.intensity();
        assert!(i.iter().zip(&j).all(|(a, b)| (a - b).abs() < 1e-8));
        let w = ortho.mutual_intensity(0, 575);
        assert!((w - modes.mutual_intensity(0, 575)).norm() < 1e-8);
        // orthonormal
        let n = grid.len();
        let f = ortho.fields().data();
        let dot: Complex<f64> = f[..n]
            .iter()
            .zip(&f[n..2 * n])
            .map(|(a, b)| a.conj() * b)
            .sum();
        assert!(dot.norm() * grid.cell_area() < 1e-10);
        let norm: f64 = f[..n].iter().map(|a| a.norm_sqr()).sum::<f64>() * grid.cell_area();
        assert!((norm - 1.0).abs() < 1e-10);
    }
}
