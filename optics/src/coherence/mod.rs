//! Broadband and partially coherent light: what a camera sees when the light is not one laser
//! line — a superluminescent diode, an LED, a lamp behind a filter, a condenser's cone of
//! directions, a Gaussian Schell-model beam.
//!
//! Light of different frequencies, and the coherent modes of a partially coherent source, do
//! not interfere on a detector that integrates over time: the intensity is the weighted sum of
//! the intensities of coherent propagations, one per spectral line and per mode,
//!
//! ```text
//! I(r) = Σ_λ s(λ) Σ_m w_m(λ) · |P_λ[t · E_m,λ](r)|²
//! ```
//!
//! with `t` a thin object's transmittance, `E_m,λ` the illumination's modes ([`Coherence`]),
//! `P_λ` the propagation planned at each wavelength and `s(λ)` the spectrum's lines
//! ([`Profile`], [`Spectrum`]). [`Exposure`] runs it: one plan per line (propagators that
//! change the sampling with the wavelength land on a common [`Window`]), the modes generated
//! and propagated a batch at a time, the lines and modes chosen from the geometry so that the
//! sum converges to a tolerance.
//!
//! ```
//! use photonflow_optics::coherence::{Coherence, DiscSource, Exposure, Illumination, Profile};
//! use photonflow_optics::{Grid, Method, Planner, Propagation};
//! use num_complex::Complex;
//!
//! // a 40 µm slit lit by an LED (530 nm, 30 nm wide) through a condenser of NA 0.01,
//! // seen 2 mm behind it
//! let grid = Grid::square(128, 1e-6)?;
//! let slit: Vec<Complex<f64>> = grid.y().iter()
//!     .flat_map(|_| grid.x().into_iter().map(|x| Complex::from(f64::from(x.abs() < 20e-6))))
//!     .collect();
//! let led = Illumination {
//!     spectrum: Profile::Gaussian { centre: 530e-9, fwhm: 30e-9 },
//!     lines: None,
//!     coherence: Coherence::Disc(DiscSource::new(0.01)),
//! };
//! let exposure = Exposure::new(led, Propagation::new(2e-3).with_method(Method::Auto));
//! let image = exposure.run(&Planner::new(), &slit, grid, &|_, _| {})?;
//! assert_eq!(image.data.len(), 128 * 128);
//! println!("{} lines, {} modes each", image.lines.len(), image.lines[0].modes);
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

mod modes;
mod quadrature;
mod spectrum;

pub use modes::{Coherence, Decomposition, DiscSource, GaussianSchell, MAX_MODES, Modes};
pub use spectrum::{Line, MAX_LINES, Profile, SPEED_OF_LIGHT, Spectrum};
pub(crate) use spectrum::{header_unit, table_lines};

use num_complex::Complex;
use rayon::prelude::*;

use crate::error::{OpticsError, Result, invalid};
use crate::field::{Real, check_finite, support_of};
use crate::grid::{Grid, Wave};
use crate::propagate::{Criterion, Method, Planner, Propagation, Window};

/// A thin element's transmittance `a·e^{iφ}` designed at `λ₀`, at a wavelength with
/// `scale = λ₀/λ`: `a·e^{iφ'·scale}` with `φ'` the phase in `[0, 2π)` — a one-wave-deep
/// element of fixed optical path (an SLM pixel, a plate whose material is not known; a
/// relief of a known material: [`crate::system::Layer::transmission_at`]).
pub fn at_wavelength<T: Real>(z: Complex<T>, scale: f64) -> Complex<T> {
    let (a, phi) = (
        z.norm().f64(),
        z.arg().f64().rem_euclid(std::f64::consts::TAU),
    );
    let (s, c) = (phi * scale).sin_cos();
    Complex::new(T::of(a * c), T::of(a * s))
}

/// What illuminates the object: a spectrum and a spatial coherence.
#[derive(Debug, Clone, PartialEq)]
pub struct Illumination {
    /// The source's spectrum.
    pub spectrum: Profile,
    /// Lines to sample it with; `None` picks the fewest that reach the [`Exposure`]'s
    /// tolerance over the geometry's path differences ([`Profile::sample_for`]).
    pub lines: Option<usize>,
    /// The spatial coherence.
    pub coherence: Coherence,
}

impl Illumination {
    /// A coherent, monochromatic plane wave of unit intensity along `z`.
    pub fn coherent(wavelength: f64) -> Self {
        Self {
            spectrum: Profile::Lines(vec![Line {
                wavelength,
                weight: 1.0,
            }]),
            lines: None,
            coherence: Coherence::Full,
        }
    }

    /// The lines to propagate when the geometry spans optical path differences up to
    /// `max_path` (m): [`Illumination::lines`] of them when fixed ([`Profile::sample`]),
    /// otherwise the fewest whose coherence function is within `tolerance` of the profile's
    /// ([`Profile::sample_for`]).
    pub fn spectrum_for(&self, max_path: f64, tolerance: f64) -> Result<Spectrum> {
        match self.lines {
            Some(lines) => self.spectrum.sample(lines, max_path),
            None => self.spectrum.sample_for(max_path, tolerance),
        }
    }
}

/// The largest optical path difference (m) light spans through a stack of free-space gaps of
/// lengths `distances` in a medium of index `index` on `grid`: every gap's spread between a ray
/// along the axis and one across the grid's diagonal, plus what the steepest of the
/// illumination's directions ([`Coherence::max_tilt`]) adds across the diagonal. What a
/// multi-plane system (a diffractive network, a bench) needs its spectrum to resolve.
pub fn stack_path_difference(
    grid: &Grid,
    distances: impl IntoIterator<Item = f64>,
    index: f64,
    coherence: &Coherence,
) -> f64 {
    let diagonal = (grid.nx as f64 * grid.dx).hypot(grid.ny as f64 * grid.dy);
    let spread: f64 = distances
        .into_iter()
        .map(|d| d.abs().hypot(diagonal) - d.abs())
        .sum();
    spread * index + coherence.max_tilt() * diagonal
}

/// A time-integrated exposure: a thin object under an [`Illumination`], propagated to an output
/// plane (or an output [`Window`]) and recorded as intensity.
#[derive(Debug, Clone)]
pub struct Exposure {
    /// The light.
    pub illumination: Illumination,
    /// The propagation from the object to the detector (method, padding, distance…); its
    /// method is planned per line.
    pub propagation: Propagation,
    /// Refractive index of the medium.
    pub index: f64,
    /// Where the output plane is sampled; `None`: the object's grid (methods that change the
    /// sampling with the wavelength then need one unless the light has a single line).
    pub window: Option<Window>,
    /// Accuracy of the spectral and modal sums: the spectrum's coherence function over the
    /// geometry's path differences, and the power a Gaussian Schell-model's dropped modes carry.
    pub tolerance: f64,
    /// The wavelength the object was designed for, when it is a thin element of fixed optical
    /// path (a surface relief, a printed mask): its phase, taken in `[0, 2π)` as a one-wave
    /// deep element's, is `φ·λ₀/λ` at each line (the material's dispersion neglected). `None`:
    /// the object transmits the same at every wavelength.
    pub design_wavelength: Option<f64>,
}

/// One line of an exposure: what was run at that wavelength.
#[derive(Debug, Clone)]
pub struct LineRun {
    /// Wavelength and weight.
    pub line: Line,
    /// The propagation method used.
    pub method: Method,
    /// Its sampling criterion.
    pub criterion: Criterion,
    /// How many modes were propagated.
    pub modes: usize,
}

/// The intensity an exposure recorded.
#[derive(Debug, Clone)]
pub struct Intensity {
    /// The output plane's sampling.
    pub grid: Grid,
    /// The output plane's centre, metres (off axis for an off-axis window).
    pub centre: (f64, f64),
    /// Objects in the batch.
    pub batch: usize,
    /// `[batch, ny, nx]` intensities (`Σ` weights × `|E|²`; a coherent unit plane wave
    /// through an empty aperture gives 1).
    pub data: Vec<f64>,
    /// Every line that was propagated.
    pub lines: Vec<LineRun>,
    /// The largest optical path difference the geometry spans (m): what the lines resolve.
    pub max_path_difference: f64,
}

impl Exposure {
    /// An exposure through `propagation` in vacuum, onto the object's grid, with tolerance
    /// `10⁻³`.
    pub fn new(illumination: Illumination, propagation: Propagation) -> Self {
        Self {
            illumination,
            propagation,
            index: 1.0,
            window: None,
            tolerance: 1e-3,
            design_wavelength: None,
        }
    }

    /// The same exposure of an object designed for `wavelength` (see
    /// [`Exposure::design_wavelength`]).
    pub fn with_design_wavelength(mut self, wavelength: f64) -> Self {
        self.design_wavelength = Some(wavelength);
        self
    }

    /// The same exposure recorded on an output window.
    pub fn with_window(mut self, window: Window) -> Self {
        self.window = Some(window);
        self
    }

    /// The largest optical path difference between two rays from the object's support (half
    /// widths `ax`, `ay`) to any point of the output region, plus what the illumination's tilts
    /// add across the object: the range of path differences the spectrum must resolve.
    fn max_path_difference(&self, grid: &Grid, (ax, ay): (f64, f64)) -> f64 {
        let z = self.propagation.distance.abs();
        let (out, (cx, cy)) = match &self.window {
            Some(w) => (w.grid, w.centre),
            None => (*grid, (0.0, 0.0)),
        };
        let (hx, hy) = (0.5 * out.nx as f64 * out.dx, 0.5 * out.ny as f64 * out.dy);
        let mut points = vec![
            (cx, cy),
            (
                cx.clamp(-ax, ax).clamp(cx - hx, cx + hx),
                cy.clamp(-ay, ay).clamp(cy - hy, cy + hy),
            ),
        ];
        for sx in [-1.0, 1.0] {
            for sy in [-1.0, 1.0] {
                points.push((cx + sx * hx, cy + sy * hy));
            }
        }
        let r = |dx: f64, dy: f64| (dx * dx + dy * dy + z * z).sqrt();
        let spread = points
            .iter()
            .map(|&(px, py)| {
                let near = r(px - px.clamp(-ax, ax), py - py.clamp(-ay, ay));
                let far = r(px.abs() + ax, py.abs() + ay);
                far - near
            })
            .fold(0.0, f64::max);
        self.index * spread + self.illumination.coherence.max_tilt() * 2.0 * ax.hypot(ay)
    }

    /// Records the intensity behind the objects `object` (`[B, Ny, Nx]` transmittances on
    /// `grid`) under the illumination. `progress(done, total)` is called as modes finish
    /// (`total` = lines × modes × objects). The modes of each line run through one plan in
    /// batches (rayon across the batch); no mode sits in memory longer than its batch.
    pub fn run<T: Real>(
        &self,
        planner: &Planner<T>,
        object: &[Complex<T>],
        grid: Grid,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Intensity> {
        let n = grid.len();
        if object.is_empty() || !object.len().is_multiple_of(n) {
            return Err(OpticsError::Shape(format!(
                "the object has {} values, not a whole number of {}×{} fields",
                object.len(),
                grid.ny,
                grid.nx
            )));
        }
        check_finite(object)?;
        if !(self.index.is_finite() && self.index > 0.0) {
            return Err(invalid(
                "index",
                format!("{}: the refractive index must be positive", self.index),
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0 && self.tolerance < 1.0) {
            return Err(invalid(
                "tolerance",
                format!("{} must lie strictly between 0 and 1", self.tolerance),
            ));
        }
        if let Some(w) = self.design_wavelength
            && !(w.is_finite() && w > 0.0)
        {
            return Err(invalid(
                "design wavelength",
                format!("{w} m: a wavelength must be positive and finite"),
            ));
        }
        let batch = object.len() / n;
        let support = support_of(object, grid, 1e-6);
        let max_path = self.max_path_difference(&grid, support);
        let spectrum = self.illumination.spectrum_for(max_path, self.tolerance)?;
        let extent = 2.0 * support.0.hypot(support.1);
        let mut propagation = self.propagation.clone();
        propagation.support.get_or_insert(support);
        let mut plans = Vec::with_capacity(spectrum.lines().len());
        for line in spectrum.lines() {
            let wave = Wave::new(line.wavelength, self.index)?;
            let plan = planner.plan_onto(&grid, wave, &propagation, self.window.as_ref())?;
            if self.window.is_none()
                && plan.method().changes_sampling()
                && spectrum.lines().len() > 1
            {
                return Err(invalid(
                    "window",
                    format!(
                        "{} samples the output at a pitch that changes with the wavelength; give an output window (a camera grid) so that every line lands on the same samples",
                        plan.method()
                    ),
                ));
            }
            let modes =
                self.illumination
                    .coherence
                    .decompose(&grid, wave, extent, self.tolerance)?;
            plans.push((*line, plan, modes));
        }
        let out_grid = plans[0].1.output_grid();
        let m = out_grid.len();
        let total: usize = plans.iter().map(|p| p.2.len()).sum::<usize>() * batch;
        // a batch of modes: up to 64, and at most ≈ 256 MB of fields in and out
        let bytes = (n + m) * std::mem::size_of::<Complex<T>>();
        let chunk = (256usize << 20).div_ceil(bytes).clamp(1, 64);
        let mut data = vec![0.0f64; batch * m];
        let mut buffer = vec![Complex::new(T::zero(), T::zero()); chunk * n];
        let mut output = vec![Complex::new(T::zero(), T::zero()); chunk * m];
        let mut done = 0;
        let mut runs = Vec::with_capacity(plans.len());
        let mut scaled = Vec::new();
        for (line, plan, modes) in &plans {
            for (b, image) in data.chunks_exact_mut(m).enumerate() {
                let mut t = &object[b * n..(b + 1) * n];
                if let Some(design) = self.design_wavelength {
                    scaled.clear();
                    scaled.extend(
                        t.iter()
                            .map(|z| at_wavelength(*z, design / line.wavelength)),
                    );
                    t = &scaled;
                }
                let mut first = 0;
                while first < modes.len() {
                    let count = chunk.min(modes.len() - first);
                    let fields = &mut buffer[..count * n];
                    fields
                        .par_chunks_exact_mut(n)
                        .enumerate()
                        .for_each(|(j, f)| {
                            modes.fill(first + j, f);
                            for (e, t) in f.iter_mut().zip(t) {
                                *e = *e * *t;
                            }
                        });
                    let result = &mut output[..count * m];
                    plan.propagate(fields, result)?;
                    let weights: Vec<f64> = modes.weights()[first..first + count]
                        .iter()
                        .map(|w| w * line.weight)
                        .collect();
                    image
                        .par_chunks_mut(out_grid.nx)
                        .enumerate()
                        .for_each(|(row, pixels)| {
                            let start = row * out_grid.nx;
                            for (j, w) in weights.iter().enumerate() {
                                let e = &result[j * m + start..j * m + start + pixels.len()];
                                for (p, e) in pixels.iter_mut().zip(e) {
                                    *p += w * e.norm_sqr().f64();
                                }
                            }
                        });
                    first += count;
                    done += count;
                    progress(done, total);
                }
            }
            runs.push(LineRun {
                line: *line,
                method: plan.method(),
                criterion: plan.criterion().clone(),
                modes: modes.len(),
            });
        }
        Ok(Intensity {
            grid: out_grid,
            centre: self.window.map_or((0.0, 0.0), |w| w.centre),
            batch,
            data,
            lines: runs,
            max_path_difference: max_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bad requests are errors that say what to change.
    #[test]
    fn bad_exposures_are_refused_with_the_fix() {
        let grid = Grid::square(32, 2e-6).unwrap();
        let object = vec![Complex::new(1.0f64, 0.0); grid.len()];
        let planner = Planner::new();
        let broadband = Illumination {
            spectrum: Profile::Flat {
                min: 500e-9,
                max: 600e-9,
            },
            lines: Some(3),
            coherence: Coherence::Full,
        };
        let far = Propagation::new(1.0).with_method(Method::Fraunhofer);
        let e = Exposure::new(broadband.clone(), far.clone())
            .run(&planner, &object, grid, &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("window"), "{e}");
        // with a window every line lands on it
        let camera = Window::on_axis(Grid::square(16, 1e-3).unwrap());
        let ok = Exposure::new(broadband.clone(), far)
            .with_window(camera)
            .run(&planner, &object, grid, &|_, _| {})
            .unwrap();
        assert_eq!((ok.lines.len(), ok.grid), (3, camera.grid));
        let near = Exposure::new(broadband, Propagation::new(1e-4));
        let e = near
            .run(&planner, &object[1..], grid, &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole number"), "{e}");
        let mut bad = near.clone();
        bad.tolerance = 0.0;
        assert!(bad.run(&planner, &object, grid, &|_, _| {}).is_err());
        let e = near
            .clone()
            .with_design_wavelength(-1.0)
            .run(&planner, &object, grid, &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("design wavelength"), "{e}");
        let mut nan = object.clone();
        nan[3].re = f64::NAN;
        assert!(near.run(&planner, &nan, grid, &|_, _| {}).is_err());
    }
}
