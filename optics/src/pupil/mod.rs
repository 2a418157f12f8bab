//! A microscope objective's pupil, the 3-D point spread function (PSF) it makes, and the
//! pupil measured back from an image of a bead ([`retrieve()`]).
//!
//! **Model** (scalar, as in Hanser et al., J. Microsc. 216, 32 (2004)): the field near focus
//! of a point source is the 2-D inverse Fourier transform of the pupil function
//! `P(fx, fy)`, defocused by the angular spectrum:
//!
//! `u(x, y, z) = ∬ P(fx, fy) · exp(i kz z) · exp(2πi (fx x + fy y)) dfx dfy`,
//! `kz = 2π √((n/λ)² − fx² − fy²)`,
//!
//! with `P = 0` beyond the cutoff `f ≤ NA/λ` (`λ` the vacuum wavelength of the detected
//! light, `n` the immersion index). The PSF is `|u|²`. Everything is in **sample space**: a
//! camera pixel divided by the magnification, and `z` the distance of the observed plane
//! beyond the focus. `kz` is exact (not paraxial), so high-NA defocus is right; the pupil's
//! magnitude (apodisation, the objective's transmission) is whatever is put in or retrieved.
//! [`Pupil::psf_with`] adds the vectorial model of an aplanatic objective (polarisation,
//! the longitudinal field of very high NA) and an index-mismatched sample ([`model`]).
//!
//! Aberrations are the pupil's phase, written in Zernike polynomials ([`zernike`], Noll's
//! order, coefficients in radians RMS). A shift of the source by `(x₀, y₀, z₀)` is the phase
//! `−(kx x₀ + ky y₀ + kz z₀)`, so [`Pupil::fit`] reports it as the source's position rather
//! than as tip, tilt and defocus.
//!
//! ```
//! use photonflow_optics::pupil::{Objective, Pupil};
//! use photonflow_optics::Grid;
//! // NA 1.4 oil objective, 520 nm light, 64 nm pixels in sample space
//! let objective = Objective::new(520e-9, 1.4, 1.518)?;
//! let mut pupil = Pupil::new(objective, Grid::square(64, 64e-9)?)?;
//! pupil.aberrate(&[(11, 0.5)])?; // 0.5 rad RMS of primary spherical aberration
//! let psf = pupil.psf(&[-0.5e-6, 0.0, 0.5e-6]); // three planes of 64 × 64
//! assert_eq!(psf.len(), 3 * 64 * 64);
//! let fit = pupil.fit(15)?;
//! assert!((fit.zernike[6].1 - 0.5).abs() < 1e-6); // Z11 is the 7th term after Z5
//! assert!((fit.strehl - (-0.25f64).exp()).abs() < 0.02); // Maréchal: exp(−σ²)
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

pub mod image;
pub mod model;
pub mod retrieve;
pub mod zernike;

pub use image::{Condenser, Dic};
pub use model::{Polarisation, PsfModel, Sample};
pub use retrieve::{Retrieval, RetrieveOptions, retrieve};

use std::sync::Arc;

use num_complex::Complex;
use rayon::prelude::*;

use crate::error::{Result, invalid, positive};
use crate::fft::{Fft2, FftCache};
use crate::grid::{Grid, Wave, fft_frequencies};
use crate::linalg::solve;
use zernike::{Aberration, Zernike};

/// A microscope objective as the pupil model sees it: the detected light's vacuum wavelength,
/// the numerical aperture and the immersion medium's index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// Vacuum wavelength and immersion index.
    pub wave: Wave,
    /// Numerical aperture, `n·sin α`.
    pub na: f64,
}

impl Objective {
    /// An objective of numerical aperture `na` with immersion index `index`, for light of
    /// vacuum wavelength `wavelength` (metres). `na` must be below `index`.
    pub fn new(wavelength: f64, na: f64, index: f64) -> Result<Self> {
        let wave = Wave::new(wavelength, index)?;
        positive("numerical aperture", na)?;
        if na >= index {
            return Err(invalid(
                "numerical aperture",
                format!(
                    "NA {na} is not below the immersion index {index}; NA = n·sin α < n \
                     (give the immersion medium's index, e.g. 1.518 for oil, 1.33 for water)"
                ),
            ));
        }
        Ok(Self { wave, na })
    }

    /// The pupil's radius in spatial frequency, `NA/λ` (cycles per metre).
    pub fn cutoff(&self) -> f64 {
        self.na / self.wave.wavelength
    }

    /// The largest sample-space pitch that samples the pupil, `λ/(2·NA)` (metres). The
    /// PSF's intensity is sampled without aliasing only at half of it, `λ/(4·NA)`.
    pub fn max_pitch(&self) -> f64 {
        0.5 / self.cutoff()
    }
}

/// Where the pupil's samples lie: the frequency samples inside the cutoff, in FFT order; and
/// the grid's FFT, planned once.
struct Coords {
    fft: Fft2<f64>,
    /// Flat FFT-order index of each sample in the `ny × nx` grid.
    index: Vec<usize>,
    /// Pupil coordinates `fx/cutoff`, `fy/cutoff` (the unit disk).
    ux: Vec<f64>,
    uy: Vec<f64>,
    /// Axial wavenumber `kz`, rad/m.
    kz: Vec<f64>,
}

impl std::fmt::Debug for Coords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Coords({} samples inside the cutoff)", self.index.len())
    }
}

/// A pupil function sampled on the frequency grid of a sample-space [`Grid`]: complex
/// values inside the cutoff `NA/λ`, zero outside. Built ideal (uniform, flat) by
/// [`Pupil::new`]; [`Pupil::aberrate`] and [`Pupil::displace`] multiply phases in, and
/// [`retrieve()`] measures one from a bead.
#[derive(Debug, Clone)]
pub struct Pupil {
    objective: Objective,
    grid: Grid,
    coords: Arc<Coords>,
    values: Vec<Complex<f64>>,
}

impl Pupil {
    /// The ideal pupil (magnitude 1, phase 0) of `objective` for PSFs on `grid` (sample
    /// space). Refused when the grid's pitch exceeds `λ/(2·NA)` along an axis (the pupil
    /// would not fit in the grid's frequencies), or when the grid is so small that fewer than
    /// 12 frequency samples fall inside the pupil.
    pub fn new(objective: Objective, grid: Grid) -> Result<Self> {
        let fc = objective.cutoff();
        for (axis, d) in [("x", grid.dx), ("y", grid.dy)] {
            if d > objective.max_pitch() * (1.0 + 1e-12) {
                return Err(invalid(
                    "pitch",
                    format!(
                        "the {axis} pitch {:.4} µm (in sample space: camera pixel / \
                         magnification) does not sample a pupil of NA {} at {:.1} nm; it must \
                         be at most λ/(2·NA) = {:.4} µm (λ/(4·NA) to sample the PSF's \
                         intensity without aliasing)",
                        d * 1e6,
                        objective.na,
                        objective.wave.wavelength * 1e9,
                        objective.max_pitch() * 1e6
                    ),
                ));
            }
        }
        let fx = fft_frequencies(grid.nx, grid.dx);
        let fy = fft_frequencies(grid.ny, grid.dy);
        let n_over_lambda = objective.wave.index / objective.wave.wavelength;
        let tau = std::f64::consts::TAU;
        let mut coords = Coords {
            fft: Fft2::new(&FftCache::default(), grid.ny, grid.nx),
            index: Vec::new(),
            ux: Vec::new(),
            uy: Vec::new(),
            kz: Vec::new(),
        };
        for (iy, &y) in fy.iter().enumerate() {
            for (ix, &x) in fx.iter().enumerate() {
                let f2 = x * x + y * y;
                if f2 <= fc * fc {
                    coords.index.push(iy * grid.nx + ix);
                    coords.ux.push(x / fc);
                    coords.uy.push(y / fc);
                    coords
                        .kz
                        .push(tau * (n_over_lambda * n_over_lambda - f2).sqrt());
                }
            }
        }
        if coords.index.len() < 12 {
            return Err(invalid(
                "grid size",
                format!(
                    "a {}×{} grid puts only {} frequency samples inside the pupil; use a \
                     larger grid (the pupil's radius is NA/λ·n·pitch samples)",
                    grid.ny,
                    grid.nx,
                    coords.index.len()
                ),
            ));
        }
        let values = vec![Complex::new(1.0, 0.0); coords.index.len()];
        Ok(Self {
            objective,
            grid,
            coords: Arc::new(coords),
            values,
        })
    }

    /// The objective.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// The sample-space grid of the PSFs.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The complex samples inside the cutoff (the order of [`Pupil::coordinates`]).
    pub fn values(&self) -> &[Complex<f64>] {
        &self.values
    }

    /// Replaces the samples inside the cutoff (the order of [`Pupil::coordinates`]).
    pub fn set_values(&mut self, values: Vec<Complex<f64>>) -> Result<()> {
        if values.len() != self.values.len() {
            return Err(crate::OpticsError::Shape(format!(
                "{} pupil values given for {} samples inside the cutoff",
                values.len(),
                self.values.len()
            )));
        }
        self.values = values;
        Ok(())
    }

    /// Each sample's pupil coordinates `(fx, fy)/cutoff` on the unit disk, in the order of
    /// [`Pupil::values`].
    pub fn coordinates(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.coords
            .ux
            .iter()
            .copied()
            .zip(self.coords.uy.iter().copied())
    }

    /// Multiplies in the aberration `exp(i Σ c_j Z_j)`: `terms` are `(Noll index, radians
    /// RMS)`.
    pub fn aberrate(&mut self, terms: &[(usize, f64)]) -> Result<()> {
        let aberration = Aberration::new(terms)?;
        let c = &self.coords;
        self.values.par_iter_mut().enumerate().for_each(|(i, v)| {
            let (rho, th) = polar(c.ux[i], c.uy[i]);
            let phase = aberration.at(rho, th);
            *v *= Complex::from_polar(1.0, phase);
        });
        Ok(())
    }

    /// Moves the point source by `(x, y, z)` metres (sample space): the PSF then peaks at
    /// `(x, y)` in the plane `z`.
    pub fn displace(&mut self, x: f64, y: f64, z: f64) {
        let fc = self.objective.cutoff() * std::f64::consts::TAU;
        let c = &self.coords;
        self.values.par_iter_mut().enumerate().for_each(|(i, v)| {
            let phase = -(fc * (c.ux[i] * x + c.uy[i] * y) + c.kz[i] * z);
            *v *= Complex::from_polar(1.0, phase);
        });
    }

    /// A copy with the source moved back onto the axis and into focus by `fit`'s position
    /// (from [`Pupil::fit`] of this pupil): its PSF is centred, as a deconvolution wants it.
    pub fn centred(&self, fit: &PupilFit) -> Pupil {
        let mut p = self.clone();
        let [x, y, z] = fit.position;
        p.displace(-x, -y, -z);
        p
    }

    /// The PSF `|u|²` on the planes `z` (metres beyond focus), `[z.len(), ny, nx]` with the
    /// optical axis at sample `(⌊ny/2⌋, ⌊nx/2⌋)`. Normalised so that each plane's sum is the
    /// pupil's mean `|P|²` over the cutoff: 1 on every plane for an ideal pupil (the light
    /// passing a plane is the same on all of them), less for an absorbing one. A plane far
    /// enough from focus for the defocused spot to reach the grid's edge wraps around.
    ///
    /// Cost: one inverse 2-D FFT of `ny × nx` per plane, in parallel.
    pub fn psf(&self, z: &[f64]) -> Vec<f64> {
        self.psf_of(z, &[self.ones()])
    }

    /// The scalar, index-matched model's one channel of weights.
    fn ones(&self) -> Vec<Complex<f64>> {
        vec![Complex::new(1.0, 0.0); self.values.len()]
    }

    /// The PSF of `model` (vectorial, polarised, in an index-mismatched sample: see
    /// [`model`]) on the planes `z`, laid out and normalised as [`Pupil::psf`]: each plane
    /// sums to the mean of `|P|²` weighted by the model's `Σ_c |w_c|²`, 1 for an ideal pupil.
    /// With an index-mismatched sample, `z` is the nominal defocus (the stage's movement).
    /// `PsfModel::default()` is [`Pupil::psf`].
    ///
    /// Cost: one inverse FFT per plane for the scalar model; three per plane for a
    /// polarised focus, two for a fixed dipole, six for an unpolarised (isotropic) one.
    pub fn psf_with(&self, z: &[f64], model: &PsfModel) -> Result<Vec<f64>> {
        let weights = model.weights(&self.objective, &self.coords)?;
        // One complex field stack and the real PSF.
        crate::memory::check_fits(
            crate::memory::bytes(&[z.len(), self.grid.len(), 24]),
            || {
                format!(
                    "a PSF of {} planes of {}×{}",
                    z.len(),
                    self.grid.ny,
                    self.grid.nx
                )
            },
            "use fewer planes or a smaller grid",
        )?;
        Ok(self.psf_of(z, &weights))
    }

    /// `Σ_c |F⁻¹[P w_c exp(i kz z)]|²` on the planes `z`, centred, normalised by `Σ_c Σ |w_c|²`.
    fn psf_of(&self, z: &[f64], weights: &[Vec<Complex<f64>>]) -> Vec<f64> {
        let n = self.grid.len();
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        let total: f64 = weights.iter().flatten().map(|w| w.norm_sqr()).sum();
        let scale = 1.0 / (n as f64 * total);
        let mut fields = vec![Complex::<f64>::default(); z.len() * n];
        let mut out = vec![0.0; fields.len()];
        // One channel at a time: memory of one field stack whatever the model.
        for c in 0..weights.len() {
            self.fields(z, &weights[c..=c], &mut fields);
            out.par_chunks_mut(n)
                .zip(fields.par_chunks(n))
                .for_each(|(plane, field)| {
                    for (i, u) in field.iter().enumerate() {
                        plane[centred_index(i, nx, ny)] += u.norm_sqr() * scale;
                    }
                });
        }
        out
    }

    /// The fields (unnormalised inverse FFTs, origin at sample 0) of the pupil times each
    /// channel's `weights` on the planes `z`, into `out` (`[z.len(), weights.len(), ny, nx]`,
    /// overwritten).
    fn fields(&self, z: &[f64], weights: &[Vec<Complex<f64>>], out: &mut [Complex<f64>]) {
        let n = self.grid.len();
        let c = &self.coords;
        out.par_chunks_mut(n * weights.len())
            .zip(z)
            .for_each(|(planes, &zk)| {
                for (plane, w) in planes.chunks_mut(n).zip(weights) {
                    plane.fill(Complex::default());
                    for (i, (&idx, v)) in c.index.iter().zip(&self.values).enumerate() {
                        plane[idx] = v * w[i] * Complex::from_polar(1.0, c.kz[i] * zk);
                    }
                }
            });
        c.fft.inverse(out);
    }

    /// The pupil on the whole frequency grid, centred (zero frequency at `(⌊ny/2⌋, ⌊nx/2⌋)`,
    /// `fx` along columns): for maps and files. Zero outside the cutoff.
    pub fn map(&self) -> Vec<Complex<f64>> {
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        let mut out = vec![Complex::default(); self.grid.len()];
        for (&idx, v) in self.coords.index.iter().zip(&self.values) {
            out[centred_index(idx, nx, ny)] = *v;
        }
        out
    }

    /// Fits the pupil's phase, weighted by `|P|²`: the source's position (the phase
    /// `−(kx x₀ + ky y₀ + kz z₀)`), a piston, and Zernike terms `Z₅ … Z_jmax` (`jmax ≥ 5`).
    /// The fit runs on the wrapped phase difference (Gauss–Newton), so it needs no
    /// unwrapping while the aberration between neighbouring samples stays below π.
    pub fn fit(&self, jmax: usize) -> Result<PupilFit> {
        if !(5..=zernike::MAX_INDEX).contains(&jmax) {
            return Err(invalid(
                "Zernike terms",
                format!(
                    "fit up to Z{jmax}: give a Noll index from 5 to {}",
                    zernike::MAX_INDEX
                ),
            ));
        }
        let c = &self.coords;
        let zs = (5..=jmax).map(Zernike::new).collect::<Result<Vec<_>>>()?;
        let kz_mean = c.kz.iter().sum::<f64>() / c.kz.len() as f64;
        let kc = self.objective.cutoff() * std::f64::consts::TAU;
        // Columns: piston, ux, uy, (kz − mean)/kc, Z5 …: all of order one on the disk.
        let basis: Vec<Vec<f64>> = (0..c.index.len())
            .map(|i| {
                let (rho, th) = polar(c.ux[i], c.uy[i]);
                let mut row = vec![1.0, c.ux[i], c.uy[i], (c.kz[i] - kz_mean) / kc];
                row.extend(zs.iter().map(|z| z.at(rho, th)));
                row
            })
            .collect();
        let w: Vec<f64> = self.values.iter().map(|v| v.norm_sqr()).collect();
        let wsum: f64 = w.iter().sum();
        if wsum.is_nan() || wsum <= 0.0 {
            return Err(invalid(
                "pupil",
                "the pupil is zero everywhere; nothing to fit",
            ));
        }
        let p = basis[0].len();
        let mut gram = vec![vec![0.0; p]; p];
        for (row, &wi) in basis.iter().zip(&w) {
            for a in 0..p {
                for b in 0..p {
                    gram[a][b] += wi * row[a] * row[b];
                }
            }
        }
        let residual = |coef: &[f64]| -> Vec<f64> {
            basis
                .iter()
                .zip(&self.values)
                .map(|(row, v)| {
                    let model: f64 = row.iter().zip(coef).map(|(b, k)| b * k).sum();
                    (v * Complex::from_polar(1.0, -model)).arg()
                })
                .collect()
        };
        let mut coef = self.fit_differences(&basis, &w)?;
        // Piston: the weighted mean phase left.
        let r = residual(&coef);
        let (s, cs) = r.iter().zip(&w).fold((0.0, 0.0), |(s, c), (ri, wi)| {
            (s + wi * ri.sin(), c + wi * ri.cos())
        });
        coef[0] += s.atan2(cs);
        for _ in 0..30 {
            let r = residual(&coef);
            let rhs: Vec<f64> = (0..p)
                .map(|a| {
                    basis
                        .iter()
                        .zip(&w)
                        .zip(&r)
                        .map(|((row, wi), ri)| wi * row[a] * ri)
                        .sum()
                })
                .collect();
            let delta =
                solve(gram.clone(), rhs).ok_or_else(|| too_few_samples(c.index.len(), p))?;
            let step = delta.iter().map(|d| d.abs()).fold(0.0, f64::max);
            for (k, d) in coef.iter_mut().zip(&delta) {
                *k += d;
            }
            if step < 1e-10 {
                break;
            }
        }
        let r = residual(&coef);
        let zernike_rms = coef[4..].iter().map(|k| k * k).sum::<f64>().sqrt();
        let residual_rms =
            (r.iter().zip(&w).map(|(ri, wi)| wi * ri * ri).sum::<f64>() / wsum).sqrt();
        // Strehl ratio with the source's position taken out: |Σ|P|e^{iφ}|² / (Σ|P|)².
        let (mut num, mut den) = (Complex::<f64>::default(), 0.0);
        for (i, v) in self.values.iter().enumerate() {
            let position: f64 = basis[i][..4]
                .iter()
                .zip(&coef[..4])
                .map(|(b, k)| b * k)
                .sum();
            num += v * Complex::from_polar(1.0, -position);
            den += v.norm();
        }
        Ok(PupilFit {
            position: [-coef[1] / kc, -coef[2] / kc, -coef[3] / kc],
            zernike: (5..=jmax).zip(coef[4..].iter().copied()).collect(),
            zernike_rms,
            residual_rms,
            strehl: num.norm_sqr() / (den * den),
        })
    }
}

impl Pupil {
    /// The first estimate of [`Pupil::fit`]'s coefficients (piston left at 0), from the
    /// wrapped phase differences of neighbouring samples: those are right wherever the pupil
    /// is sampled (less than π between neighbours), however many waves the phase spans, so
    /// the estimate needs no unwrapping. Weighted least squares, weights `min(|P_a|², |P_b|²)`.
    fn fit_differences(&self, basis: &[Vec<f64>], w: &[f64]) -> Result<Vec<f64>> {
        let c = &self.coords;
        let nx = self.grid.nx;
        let mut at = vec![usize::MAX; self.grid.len()];
        for (i, &idx) in c.index.iter().enumerate() {
            at[idx] = i;
        }
        let p = basis[0].len();
        let mut gram = vec![vec![0.0; p]; p];
        let mut rhs = vec![0.0; p];
        for (a, &idx) in c.index.iter().enumerate() {
            let (iy, ix) = (idx / nx, idx % nx);
            let right = iy * nx + (ix + 1) % nx;
            let up = ((iy + 1) % self.grid.ny) * nx + ix;
            for nb in [right, up] {
                let b = at[nb];
                // A neighbour across the FFT order's wrap is not adjacent in frequency.
                let adjacent = b != usize::MAX
                    && (c.ux[b] - c.ux[a]) >= -1e-12
                    && (c.uy[b] - c.uy[a]) >= -1e-12;
                if !adjacent {
                    continue;
                }
                let wt = w[a].min(w[b]);
                let target = (self.values[b] * self.values[a].conj()).arg();
                let row: Vec<f64> = (1..p).map(|k| basis[b][k] - basis[a][k]).collect();
                for (i, ri) in row.iter().enumerate() {
                    rhs[i + 1] += wt * ri * target;
                    for (j, rj) in row.iter().enumerate() {
                        gram[i + 1][j + 1] += wt * ri * rj;
                    }
                }
            }
        }
        gram[0][0] = 1.0; // piston is not seen by differences
        solve(gram, rhs).ok_or_else(|| too_few_samples(c.index.len(), p))
    }
}

/// What [`Pupil::fit`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct PupilFit {
    /// The source's position `(x₀, y₀, z₀)`, metres in sample space, from the pupil's linear
    /// phase and its `kz` term.
    pub position: [f64; 3],
    /// `(Noll index, radians RMS)` for `Z₅ … Z_jmax`.
    pub zernike: Vec<(usize, f64)>,
    /// RMS of the fitted Zernike terms, `√Σc²` (radians; divide by 2π for waves).
    pub zernike_rms: f64,
    /// RMS (weighted by `|P|²`) of the phase the fit leaves unexplained, radians.
    pub residual_rms: f64,
    /// Strehl ratio: the PSF's peak over that of the same pupil magnitude without
    /// aberrations, `|Σ|P|e^{iφ}|² / (Σ|P|)²` with the position terms taken out.
    pub strehl: f64,
}

/// The voxel `[z, y, x]` of a stack `[nz, ny, nx]` with the largest 3 × 3 × 3 box mean (a
/// hot pixel alone does not win); the first one on ties.
pub fn brightest<T: Copy + Into<f64> + Sync>(v: &[T], [nz, ny, nx]: [usize; 3]) -> [usize; 3] {
    let at = |z: usize, y: usize, x: usize| -> f64 { v[(z * ny + y) * nx + x].into() };
    let best = (0..nz * ny * nx)
        .into_par_iter()
        .map(|i| {
            let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
            let mut s = 0.0;
            for zz in z.saturating_sub(1)..(z + 2).min(nz) {
                for yy in y.saturating_sub(1)..(y + 2).min(ny) {
                    for xx in x.saturating_sub(1)..(x + 2).min(nx) {
                        s += at(zz, yy, xx);
                    }
                }
            }
            (s, i)
        })
        .reduce(
            || (f64::MIN, 0),
            |a, b| {
                if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
                    b
                } else {
                    a
                }
            },
        );
    let i = best.1;
    [i / (ny * nx), (i / nx) % ny, i % nx]
}

/// Full widths at half maximum `[x, y, z]` (in samples) of a PSF or bead stack `[nz, ny, nx]`
/// (background already subtracted), along lines through its [`brightest`] voxel; half maximum
/// is half that voxel's value, and each crossing is interpolated linearly. `None` along an
/// axis where the profile does not fall to half on both sides.
pub fn fwhm<T: Copy + Into<f64> + Sync>(v: &[T], shape: [usize; 3]) -> [Option<f64>; 3] {
    let [nz, ny, nx] = shape;
    let [pz, py, px] = brightest(v, shape);
    let at = |z: usize, y: usize, x: usize| -> f64 { v[(z * ny + y) * nx + x].into() };
    let width = |profile: Vec<f64>, peak: usize| -> Option<f64> {
        let half = profile[peak] / 2.0;
        let cross = |range: &mut dyn Iterator<Item = usize>, step: isize| -> Option<f64> {
            for i in range {
                let j = (i as isize + step) as usize;
                if profile[j] <= half {
                    // Between i (above half) and j (at or below it).
                    let t = (profile[i] - half) / (profile[i] - profile[j]);
                    return Some(i as f64 + t * step as f64);
                }
            }
            None
        };
        let right = cross(&mut (peak..profile.len().saturating_sub(1)), 1)?;
        let left = cross(&mut (1..=peak).rev(), -1)?;
        Some(right - left)
    };
    [
        width((0..nx).map(|x| at(pz, py, x)).collect(), px),
        width((0..ny).map(|y| at(pz, y, px)).collect(), py),
        width((0..nz).map(|z| at(z, py, px)).collect(), pz),
    ]
}

/// The median of the outer frame (2 pixels wide, or the whole plane when it is smaller than
/// 5 × 5) of every plane of a stack `[nz, ny, nx]`: an estimate of its background (camera
/// offset and stray light) when the object stays clear of the edges.
pub fn frame_median(stack: &[f32], [nz, ny, nx]: [usize; 3]) -> f64 {
    let w = 2;
    let mut vals: Vec<f32> = Vec::new();
    for k in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let edge = y < w || x < w || y + w >= ny || x + w >= nx;
                if edge || ny < 5 || nx < 5 {
                    vals.push(stack[(k * ny + y) * nx + x]);
                }
            }
        }
    }
    let mid = vals.len() / 2;
    let (_, m, _) = vals.select_nth_unstable_by(mid, f32::total_cmp);
    f64::from(*m)
}

/// The error of a fit whose `terms` cannot be told apart on `samples` pupil samples.
fn too_few_samples(samples: usize, terms: usize) -> crate::OpticsError {
    invalid(
        "Zernike terms",
        format!(
            "the pupil has too few samples ({samples}) to separate {terms} terms; fit fewer \
             terms or use a larger grid"
        ),
    )
}

/// Polar coordinates `(ρ, θ)` of a point of the unit disk.
fn polar(x: f64, y: f64) -> (f64, f64) {
    (x.hypot(y), y.atan2(x))
}

/// The centred (fftshifted) flat index of FFT-order flat index `i` on an `ny × nx` grid.
fn centred_index(i: usize, nx: usize, ny: usize) -> usize {
    let (iy, ix) = (i / nx, i % nx);
    ((iy + ny / 2) % ny) * nx + (ix + nx / 2) % nx
}

/// The FFT-order flat index of centred flat index `j` (the inverse of [`centred_index`]).
fn fft_index(j: usize, nx: usize, ny: usize) -> usize {
    let (jy, jx) = (j / nx, j % nx);
    ((jy + ny - ny / 2) % ny) * nx + (jx + nx - nx / 2) % nx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn water() -> Objective {
        Objective::new(520e-9, 1.1, 1.333).unwrap()
    }

    #[test]
    fn index_maps_are_inverse() {
        for (nx, ny) in [(4, 4), (5, 3), (7, 8)] {
            for i in 0..nx * ny {
                assert_eq!(fft_index(centred_index(i, nx, ny), nx, ny), i);
            }
            assert_eq!(centred_index(0, nx, ny), (ny / 2) * nx + nx / 2);
        }
    }

    /// In focus, an ideal pupil gives the Airy pattern `[2 J₁(v)/v]²`, `v = 2π NA r/λ`; its
    /// first zero at `0.61 λ/NA`. Compared along x with the Bessel function by its series.
    #[test]
    fn in_focus_psf_is_the_airy_pattern() {
        let obj = Objective::new(500e-9, 0.5, 1.0).unwrap();
        let n = 256;
        let d = 40e-9;
        let pupil = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
        let psf = pupil.psf(&[0.0]);
        let peak = psf[(n / 2) * n + n / 2];
        assert!((psf.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let mut worst: f64 = 0.0;
        for j in 1..25 {
            let r = j as f64 * d;
            let v = std::f64::consts::TAU * 0.5 * r / 500e-9;
            let airy = (2.0 * crate::testing::bessel_j(1, v) / v).powi(2);
            let got = psf[(n / 2) * n + n / 2 + j] / peak;
            worst = worst.max((got - airy).abs());
        }
        // The pupil is sampled on a square grid (its edge is staircased): 1 % of the peak.
        assert!(worst < 0.01, "worst deviation from Airy {worst}");
    }

    /// On axis, an ideal pupil's field is `2π ∫ exp(i kz z) kz dkz` over `kz` from `k cos α`
    /// to `k` (`f df = −kz dkz/(4π²)`), whose closed form gives the exact (non-paraxial) axial
    /// intensity `|(e^{ikz}(1 − ikz) − e^{ik z cos α}(1 − ik z cos α))/z²|²` up to scale.
    #[test]
    fn axial_intensity_is_exact_at_high_na() {
        let obj = water();
        let n = 128;
        let d = 0.1e-6;
        let pupil = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
        let z: Vec<f64> = (-10..=10).map(|k| k as f64 * 0.15e-6).collect();
        let psf = pupil.psf(&z);
        let k = obj.wave.k();
        let cos_a = (1.0 - (obj.na / obj.wave.index).powi(2)).sqrt();
        let exact = |z: f64| -> f64 {
            if z == 0.0 {
                return (k * k * (1.0 - cos_a * cos_a) / 2.0).powi(2);
            }
            let term = |kz: f64| Complex::from_polar(1.0, kz * z) * Complex::new(1.0, -kz * z);
            ((term(k) - term(k * cos_a)) / (z * z)).norm_sqr()
        };
        let centre = (n / 2) * n + n / 2;
        let p0 = psf[10 * n * n + centre];
        for (i, &zi) in z.iter().enumerate() {
            let got = psf[i * n * n + centre] / p0;
            let want = exact(zi) / exact(0.0);
            assert!((got - want).abs() < 0.02, "z = {zi}: {got} vs {want}");
        }
        // Power is the same on every plane (within the grid's wrap-around, none here).
        for plane in psf.chunks(n * n) {
            assert!((plane.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn displacement_moves_the_peak_and_the_fit_finds_it() {
        let obj = water();
        let d = 0.1e-6;
        let mut pupil = Pupil::new(obj, Grid::square(64, d).unwrap()).unwrap();
        pupil.displace(3.0 * d, -2.0 * d, 0.4e-6);
        let psf = pupil.psf(&[0.4e-6]);
        let (imax, _) = psf
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        assert_eq!((imax / 64, imax % 64), (32 - 2, 32 + 3));
        let fit = pupil.fit(22).unwrap();
        for (got, want) in fit.position.iter().zip([3.0 * d, -2.0 * d, 0.4e-6]) {
            assert!((got - want).abs() < 1e-12, "{:?}", fit.position);
        }
        assert!(fit.zernike_rms < 1e-9 && fit.residual_rms < 1e-9);
        assert!((fit.strehl - 1.0).abs() < 1e-12);
    }

    #[test]
    fn aberrations_are_fitted_back_and_strehl_follows_marechal() {
        let obj = Objective::new(600e-9, 1.3, 1.518).unwrap();
        let mut pupil = Pupil::new(obj, Grid::square(96, 80e-9).unwrap()).unwrap();
        let terms = [(5, 0.12), (7, -0.1), (11, 0.15), (14, 0.05)];
        pupil.aberrate(&terms).unwrap();
        pupil.displace(50e-9, 20e-9, -0.2e-6);
        let fit = pupil.fit(15).unwrap();
        for (j, c) in &fit.zernike {
            let want = terms.iter().find(|t| t.0 == *j).map_or(0.0, |t| t.1);
            assert!((c - want).abs() < 1e-9, "Z{j}: {c} vs {want}");
        }
        let sigma2: f64 = terms.iter().map(|t| t.1 * t.1).sum();
        assert!((fit.zernike_rms - sigma2.sqrt()).abs() < 1e-9);
        // Maréchal's approximation S ≈ exp(−σ²) holds to O(σ⁴) for small aberrations.
        assert!(
            (fit.strehl - (-sigma2).exp()).abs() < 2e-3,
            "{}",
            fit.strehl
        );
        // And the Strehl ratio is the in-focus peak over the ideal one (position removed).
        let clean = pupil.centred(&fit);
        let ideal = Pupil::new(obj, *pupil.grid()).unwrap();
        let peak = |p: &Pupil| p.psf(&[0.0]).into_iter().fold(0.0, f64::max);
        assert!((peak(&clean) / peak(&ideal) - fit.strehl).abs() < 1e-9);
    }

    /// The Airy pattern's FWHM is 0.5145 λ/NA; a Gaussian's 2√(2 ln 2) σ.
    #[test]
    fn fwhm_of_airy_and_gaussian() {
        let obj = Objective::new(500e-9, 0.5, 1.0).unwrap();
        let d = 40e-9;
        // A pupil 41 samples in radius (n·d·NA/λ), so that its staircased edge is negligible.
        let n = 1024;
        let pupil = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
        let psf = pupil.psf(&[0.0]);
        let [x, y, z] = fwhm(&psf, [1, n, n]);
        let want = 0.5145 * 500e-9 / 0.5 / d;
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(
            (x - want).abs() < 0.02 * want && (y - want).abs() < 0.02 * want,
            "{x} {y} {want}"
        );
        assert!(z.is_none());
        let s = 3.0;
        let g: Vec<f32> = (0..9 * 21)
            .map(|i| {
                let (z, x) = ((i / 21) as f64 - 4.0, (i % 21) as f64 - 10.0);
                (-(x * x) / (2.0 * s * s) - z * z / 2.0).exp() as f32
            })
            .collect();
        let [x, y, z] = fwhm(&g, [9, 1, 21]);
        assert!((x.unwrap() - 2.3548 * s).abs() < 0.05, "{x:?}");
        assert!(y.is_none()); // one row: no crossing along y
        assert!((z.unwrap() - 2.3548).abs() < 0.1, "{z:?}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(
            Objective::new(520e-9, 1.4, 1.33)
                .unwrap_err()
                .to_string()
                .contains("immersion")
        );
        let coarse = Pupil::new(water(), Grid::square(64, 0.3e-6).unwrap()).unwrap_err();
        assert!(coarse.to_string().contains("λ/(2·NA)"), "{coarse}");
        assert!(Pupil::new(water(), Grid::square(4, 0.1e-6).unwrap()).is_err());
        let mut p = Pupil::new(water(), Grid::square(32, 0.1e-6).unwrap()).unwrap();
        assert!(p.aberrate(&[(0, 0.1)]).is_err());
        assert!(p.aberrate(&[(5, f64::NAN)]).is_err());
        assert!(p.fit(4).is_err());
        assert!(p.set_values(vec![]).is_err());
    }
}
