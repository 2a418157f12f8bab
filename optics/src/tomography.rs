//! Optical diffraction tomography: the 3-D refractive index of a sample from the complex fields
//! it transmits under tilted plane waves, as a holographic tomographic microscope records them.
//!
//! The forward model of every illumination `k` is the multislice propagation
//! ([`crate::propagate::multislice`]) of the plane wave `exp(i k₀ n₀ (sₓ x + s_y y))` through
//! the sample, then the microscope: the exit field refocused by `focus` (the plane the camera
//! sees, relative to the exit face; negative inside the sample) and cut to the objective's
//! numerical aperture, `M = F⁻¹ · exp(i k_z focus)·[|f| ≤ NA/λ] · F` on the periodic grid.
//! [`Tomography::reconstruct`] finds the index contrast `Δn = n − n₀` of every voxel that
//! minimises
//!
//! ```text
//! Σ_k ‖M A_k(Δn) − y_k‖² / Σ_k ‖y_k‖²  +  τ · Σ_voxels √(|∇Δn|² + ε²)
//! ```
//!
//! — the misfit of the fields and a smoothed total variation (forward differences in voxels,
//! the axial ones weighted by `dx/dz`; `ε = 10⁻⁴`) — by L-BFGS ([`crate::minimise::lbfgs`]) on
//! the exact gradient of the multislice model (the adjoint sweep of
//! [`Multislice::gradient`]). This is "learning tomography" (Kamilov et al., Optica 2, 517
//! (2015)) with a quasi-Newton solver: multiple scattering is in the model, so strong and thick
//! samples do not bias the index as the Born and Rytov inversions do. Absorption is not
//! reconstructed (κ = 0).

use num_complex::Complex;
use rayon::prelude::*;

use crate::error::{OpticsError, Result, invalid, positive};
use crate::fft::{Fft2, FftCache};
use crate::grid::{Grid, Wave, fft_frequencies};
use crate::propagate::multislice::{Multislice, Volume};
use crate::propagate::{Planner, Propagation};

type C64 = Complex<f64>;

/// The smoothing of the total variation, in index units.
const TV_EPSILON: f64 = 1e-4;

/// A tomographic microscope: the sample's sampling, the illuminations and the imaging.
#[derive(Debug, Clone)]
pub struct Tomography {
    /// Transverse sampling of the sample and of the recorded fields.
    pub grid: Grid,
    /// The light and the medium around the sample (`index` = `n₀`).
    pub wave: Wave,
    /// Slice thickness of the model, metres.
    pub dz: f64,
    /// Number of slices.
    pub nz: usize,
    /// Illumination directions `(sₓ, s_y)`: the sines of the plane waves' angles in the medium
    /// (`sₓ² + s_y² < 1`).
    pub illuminations: Vec<[f64; 2]>,
    /// Plane the camera records, relative to the exit face, metres (negative: inside).
    pub focus: f64,
    /// Numerical aperture of the objective (`≤ n₀`).
    pub na: f64,
    /// Propagation settings of the multislice sweep (its padding, evanescent waves, check).
    pub propagation: Propagation,
}

/// Settings of [`Tomography::reconstruct`].
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// Most L-BFGS iterations.
    pub iterations: usize,
    /// Weight `τ` of the total variation (0: none).
    pub tv: f64,
    /// The map to start from (its real index; the same grid, slices and thickness), e.g. an
    /// earlier reconstruction to refine; `None`: the background.
    pub initial: Option<Volume>,
}

/// What [`Tomography::reconstruct`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The objective at the starting map (the background, `Δn = 0`, unless
    /// [`Reconstruction::initial`] gives one).
    pub start: f64,
    /// The objective at the result.
    pub end: f64,
    /// The normalised misfit of the fields at the result, `Σ‖M A − y‖² / Σ‖y‖²`.
    pub misfit: f64,
    /// L-BFGS iterations taken.
    pub iterations: usize,
}

impl Tomography {
    /// Checks the microscope: a positive slice thickness and count, at least one illumination,
    /// every direction inside the medium's cone, `0 < NA ≤ n₀`, a finite focus.
    pub fn check(&self) -> Result<()> {
        positive("slice thickness dz", self.dz)?;
        if self.nz == 0 {
            return Err(invalid("slices", "the model needs at least one slice"));
        }
        if self.illuminations.is_empty() {
            return Err(invalid(
                "illuminations",
                "give at least one illumination direction",
            ));
        }
        if let Some(s) = self
            .illuminations
            .iter()
            .find(|s| !(s[0].is_finite() && s[1].is_finite() && s[0].hypot(s[1]) < 1.0))
        {
            return Err(invalid(
                "illumination",
                format!(
                    "direction ({}, {}): the sines must be finite with sₓ² + s_y² < 1",
                    s[0], s[1]
                ),
            ));
        }
        if !(self.na > 0.0 && self.na <= self.wave.index) {
            return Err(invalid(
                "numerical aperture",
                format!("{}: it must lie in (0, n₀ = {}]", self.na, self.wave.index),
            ));
        }
        if !self.focus.is_finite() {
            return Err(invalid(
                "focus",
                format!("{} is not a distance", self.focus),
            ));
        }
        Ok(())
    }

    /// The incident plane waves `[K, Ny, Nx]`.
    fn incident(&self) -> Vec<C64> {
        let k = self.wave.k();
        let (xs, ys) = (self.grid.x(), self.grid.y());
        let mut out = Vec::with_capacity(self.illuminations.len() * self.grid.len());
        for s in &self.illuminations {
            for &y in &ys {
                out.extend(
                    xs.iter()
                        .map(|&x| C64::from_polar(1.0, k * (s[0] * x + s[1] * y))),
                );
            }
        }
        out
    }

    /// The microscope's transfer function on the grid (FFT order), divided by the transform's
    /// size: refocus by `focus`, cut at `NA/λ`.
    fn transfer(&self) -> Vec<C64> {
        let (fx, fy) = (
            fft_frequencies(self.grid.nx, self.grid.dx),
            fft_frequencies(self.grid.ny, self.grid.dy),
        );
        let cut = self.na / self.wave.wavelength;
        let k = self.wave.k();
        let lam = self.wave.lambda();
        let scale = 1.0 / self.grid.len() as f64;
        fy.iter()
            .flat_map(|&v| {
                fx.iter().map(move |&u| {
                    if u.hypot(v) > cut {
                        return C64::default();
                    }
                    let s2 = (lam * u).powi(2) + (lam * v).powi(2);
                    C64::from_polar(scale, k * self.focus * (1.0 - s2).max(0.0).sqrt())
                })
            })
            .collect()
    }

    /// Applies the microscope `M` (or its adjoint) to every field of `data`.
    fn image(&self, fft: &Fft2<f64>, h: &[C64], data: &mut [C64], adjoint: bool) {
        fft.forward(data);
        data.par_chunks_mut(h.len()).for_each(|field| {
            for (v, h) in field.iter_mut().zip(h) {
                *v *= if adjoint { h.conj() } else { *h };
            }
        });
        fft.inverse(data);
    }

    fn volume(&self, delta: &[f64]) -> Result<Volume> {
        let n0 = self.wave.index;
        Volume::new(
            self.grid,
            self.dz,
            delta.iter().map(|d| C64::from(n0 + d)).collect(),
        )
    }

    /// The fields the camera records without a sample, `[K, Ny, Nx]`: what fields measured
    /// relative to a sample-free recording ([`crate::offaxis::normalise`]) are multiplied by
    /// to become the recorded fields of this model.
    pub fn background(&self) -> Result<Vec<C64>> {
        self.measure(&self.volume(&vec![0.0; self.nz * self.grid.len()])?)
    }

    /// The fields the camera records of `volume` under every illumination, `[K, Ny, Nx]`.
    pub fn measure(&self, volume: &Volume) -> Result<Vec<C64>> {
        self.check()?;
        let planner = Planner::new();
        let plan = Multislice::new(&planner, volume, self.wave, &self.propagation)?;
        let mut fields = self.incident();
        plan.propagate_in_place(&mut fields)?;
        let fft = Fft2::new(&FftCache::default(), self.grid.ny, self.grid.nx);
        self.image(&fft, &self.transfer(), &mut fields, false);
        Ok(fields)
    }

    /// Reconstructs the sample from the recorded fields `measured` (`[K, Ny, Nx]`, one per
    /// illumination, in order), starting from the background or [`Reconstruction::initial`];
    /// `progress(done, objective)`
    /// after every iteration. Returns the sample (`n₀ + Δn`, κ = 0) and a [`Report`].
    pub fn reconstruct(
        &self,
        measured: &[C64],
        settings: &Reconstruction,
        mut progress: impl FnMut(usize, f64),
    ) -> Result<(Volume, Report)> {
        self.check()?;
        let plane = self.grid.len();
        let want = self.illuminations.len() * plane;
        if measured.len() != want {
            return Err(OpticsError::Shape(format!(
                "{} recorded samples for {} illuminations of {}×{}: expected {want}",
                measured.len(),
                self.illuminations.len(),
                self.grid.ny,
                self.grid.nx
            )));
        }
        crate::field::check_finite(measured)?;
        if !(settings.tv.is_finite() && settings.tv >= 0.0) {
            return Err(invalid(
                "tv",
                format!("{}: the weight must be ≥ 0", settings.tv),
            ));
        }
        let norm: f64 = measured.iter().map(|v| v.norm_sqr()).sum();
        if norm == 0.0 {
            return Err(invalid("measured fields", "they are all zero"));
        }
        let planner = Planner::new();
        let fft = Fft2::new(&FftCache::default(), self.grid.ny, self.grid.nx);
        let h = self.transfer();
        let incident = self.incident();
        let weights = [1.0, 1.0, self.grid.dx / self.dz];
        let shape = [self.nz, self.grid.ny, self.grid.nx];
        // The first error of a model evaluation (L-BFGS sees NaN and stops), and the last value.
        let failure = std::cell::RefCell::new(None);
        let last = std::cell::Cell::new(f64::NAN);
        let objective = |delta: &[f64], grad: &mut [f64]| -> f64 {
            let result = (|| -> Result<f64> {
                let volume = self.volume(delta)?;
                let plan = Multislice::new(&planner, &volume, self.wave, &self.propagation)?;
                let mut data = 0.0;
                let g = plan.gradient(&incident, |exit| {
                    let mut r = exit.to_vec();
                    self.image(&fft, &h, &mut r, false);
                    r.iter_mut().zip(measured).for_each(|(r, y)| *r -= y);
                    data = r.iter().map(|v| v.norm_sqr()).sum::<f64>() / norm;
                    self.image(&fft, &h, &mut r, true);
                    r.iter_mut().for_each(|v| *v /= norm);
                    r
                })?;
                grad.copy_from_slice(&g.index.n);
                let tv = total_variation(delta, shape, weights, settings.tv, grad);
                Ok(data + tv)
            })();
            match result {
                Ok(v) => {
                    last.set(v);
                    v
                }
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    f64::NAN
                }
            }
        };
        let mut delta = match &settings.initial {
            None => vec![0.0; self.nz * plane],
            Some(v) => {
                if v.grid() != self.grid || v.nz() != self.nz || v.dz() != self.dz {
                    return Err(invalid(
                        "initial map",
                        format!(
                            "{} slices of {} m on {}×{} samples of {} m; the reconstruction has \
                             {} slices of {} m on {}×{} of {} m",
                            v.nz(),
                            v.dz(),
                            v.grid().ny,
                            v.grid().nx,
                            v.grid().dx,
                            self.nz,
                            self.dz,
                            self.grid.ny,
                            self.grid.nx,
                            self.grid.dx
                        ),
                    ));
                }
                v.index().iter().map(|n| n.re - self.wave.index).collect()
            }
        };
        let start = objective(&delta, &mut vec![0.0; delta.len()]);
        if let Some(e) = failure.take() {
            return Err(e);
        }
        let iterations =
            crate::minimise::lbfgs(&mut delta, settings.iterations, objective, |done| {
                progress(done, last.get())
            });
        if let Some(e) = failure.take() {
            return Err(e);
        }
        // The misfit alone at the result.
        let volume = self.volume(&delta)?;
        let recorded = self.measure(&volume)?;
        let misfit_end = recorded
            .iter()
            .zip(measured)
            .map(|(a, b)| (a - b).norm_sqr())
            .sum::<f64>()
            / norm;
        let mut g = vec![0.0; delta.len()];
        let end = misfit_end + total_variation(&delta, shape, weights, settings.tv, &mut g);
        Ok((
            volume,
            Report {
                start,
                end,
                misfit: misfit_end,
                iterations,
            },
        ))
    }
}

/// The smoothed total variation `τ·Σ √(|∇x|² + ε²)` of the volume `x` (`[nz, ny, nx]`;
/// forward differences, none beyond the last voxel of an axis; axis `a` weighted by
/// `weights[a]`, in `[x, y, z]` order); adds its gradient to `grad`.
fn total_variation(
    x: &[f64],
    [nz, ny, nx]: [usize; 3],
    weights: [f64; 3],
    tau: f64,
    grad: &mut [f64],
) -> f64 {
    if tau == 0.0 {
        return 0.0;
    }
    let strides = [1, nx, nx * ny];
    let sizes = [nx, ny, nz];
    let mut value = 0.0;
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let at = [i, j, k];
                let v = k * nx * ny + j * nx + i;
                let mut d = [0.0; 3];
                for a in 0..3 {
                    if at[a] + 1 < sizes[a] {
                        d[a] = weights[a] * (x[v + strides[a]] - x[v]);
                    }
                }
                let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + TV_EPSILON * TV_EPSILON).sqrt();
                value += r;
                for a in 0..3 {
                    if at[a] + 1 < sizes[a] {
                        let g = tau * weights[a] * d[a] / r;
                        grad[v + strides[a]] += g;
                        grad[v] -= g;
                    }
                }
            }
        }
    }
    tau * value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn microscope(illuminations: Vec<[f64; 2]>, dz: f64, nz: usize) -> Tomography {
        Tomography {
            grid: Grid::square(32, 0.25e-6).unwrap(),
            wave: Wave::new(532e-9, 1.333).unwrap(),
            dz,
            nz,
            illuminations,
            focus: -2e-6,
            na: 1.2,
            propagation: Propagation::new(0.0),
        }
    }

    /// The smoothed total variation's gradient matches central differences.
    #[test]
    fn the_total_variation_gradient_is_its_derivative() {
        let mut rng = Rng::new(9);
        let shape = [3, 4, 5];
        let x: Vec<f64> = (0..60).map(|_| 0.01 * rng.normal()).collect();
        let weights = [1.0, 1.0, 0.5];
        let mut g = vec![0.0; 60];
        total_variation(&x, shape, weights, 0.7, &mut g);
        for i in [0, 17, 33, 59] {
            let at = |s: f64| {
                let mut y = x.clone();
                y[i] += s;
                total_variation(&y, shape, weights, 0.7, &mut vec![0.0; 60])
            };
            let numeric = (at(1e-7) - at(-1e-7)) / 2e-7;
            assert!(
                (numeric - g[i]).abs() < 1e-6 * g[i].abs().max(1.0),
                "{i}: {numeric} vs {}",
                g[i]
            );
        }
    }

    /// A bead of Δn = 0.02 (1.6 µm across, 2 µm deep in a 4 µm slab), recorded in 13
    /// illuminations (on axis and on rings of sines 0.3 and 0.5) with a finer model than the
    /// reconstruction's (slices of 0.125 µm, not 0.25 µm) and 1 % noise: the reconstruction
    /// fits the fields down to the noise and finds the bead — its mean contrast within 10 %,
    /// the rms error of the index under 40 % of the background's (what is left is mostly the
    /// axial blur of the missing cone of angles).
    #[test]
    fn a_bead_is_reconstructed_from_its_fields() {
        let mut ring = vec![[0.0, 0.0]];
        for (s, count) in [(0.3, 6), (0.5, 6)] {
            for m in 0..count {
                let phi = std::f64::consts::TAU * (m as f64 + 0.5 * (s > 0.4) as u8 as f64)
                    / count as f64;
                ring.push([s * phi.cos(), s * phi.sin()]);
            }
        }
        let thickness = 4e-6;
        let bead = |x: f64, y: f64, z: f64| {
            let r2 = x * x + y * y + (z - thickness / 2.0).powi(2);
            C64::from(if r2 < (0.8e-6f64).powi(2) {
                1.353
            } else {
                1.333
            })
        };
        let fine = microscope(ring.clone(), 0.125e-6, 32);
        let truth_fine = Volume::from_fn(fine.grid, fine.dz, fine.nz, bead).unwrap();
        let mut measured = fine.measure(&truth_fine).unwrap();
        let mut rng = Rng::new(3);
        let rms =
            (measured.iter().map(|v| v.norm_sqr()).sum::<f64>() / measured.len() as f64).sqrt();
        for v in &mut measured {
            *v += C64::new(rng.normal(), rng.normal()) * (0.01 * rms / 2f64.sqrt());
        }
        let tomo = microscope(ring, 0.25e-6, 16);
        let settings = Reconstruction {
            iterations: 100,
            tv: 1e-5,
            initial: None,
        };
        let mut calls = 0;
        let (found, report) = tomo
            .reconstruct(&measured, &settings, |_, _| calls += 1)
            .unwrap();
        assert!(calls > 0 && report.iterations > 5, "{report:?}");
        assert!(report.end < 0.1 * report.start, "{report:?}");
        // The fields fit down to the noise (1 % rms: a misfit of 10⁻⁴), not into it.
        assert!(report.misfit < 2e-4, "{report:?}");
        let truth = Volume::from_fn(tomo.grid, tomo.dz, tomo.nz, bead).unwrap();
        let error = |v: &[C64]| {
            let d: f64 = v
                .iter()
                .zip(truth.index())
                .map(|(a, b)| (a - b).norm_sqr())
                .sum();
            (d / v.len() as f64).sqrt()
        };
        let background = vec![C64::from(1.333); truth.index().len()];
        let (e, e0) = (error(found.index()), error(&background));
        let inside: Vec<f64> = found
            .index()
            .iter()
            .zip(truth.index())
            .filter(|(_, t)| t.re > 1.34)
            .map(|(f, _)| f.re - 1.333)
            .collect();
        let contrast = inside.iter().sum::<f64>() / inside.len() as f64;
        assert!(e < 0.4 * e0, "rms error {e:e}, background's {e0:e}");
        // Refining from the result starts where it ended and goes no higher.
        let refine = Reconstruction {
            iterations: 5,
            initial: Some(found.clone()),
            ..settings.clone()
        };
        let (_, again) = tomo.reconstruct(&measured, &refine, |_, _| {}).unwrap();
        assert!(
            (again.start / report.end - 1.0).abs() < 1e-9,
            "{again:?} after {report:?}"
        );
        assert!(again.end <= again.start, "{again:?}");
        let other = Volume::from_fn(tomo.grid, tomo.dz, 8, bead).unwrap();
        let wrong = Reconstruction {
            initial: Some(other),
            ..settings.clone()
        };
        let e = tomo.reconstruct(&measured, &wrong, |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("8 slices"), "{e}");
        assert!(
            (contrast / 0.02 - 1.0).abs() < 0.1,
            "mean Δn in the bead {contrast}"
        );
    }

    #[test]
    fn a_bad_microscope_is_refused() {
        let mut t = microscope(vec![[0.0, 0.0]], 0.25e-6, 4);
        t.na = 1.5;
        assert!(
            t.check()
                .unwrap_err()
                .to_string()
                .contains("numerical aperture")
        );
        let t = microscope(vec![[0.8, 0.8]], 0.25e-6, 4);
        assert!(
            t.check()
                .unwrap_err()
                .to_string()
                .contains("sₓ² + s_y² < 1")
        );
        let t = microscope(vec![[0.0, 0.0]], 0.25e-6, 4);
        let settings = Reconstruction {
            iterations: 1,
            tv: 0.0,
            initial: None,
        };
        let e = t
            .reconstruct(&[C64::from(1.0); 7], &settings, |_, _| {})
            .unwrap_err();
        assert!(e.to_string().contains("expected 1024"), "{e}");
    }
}
