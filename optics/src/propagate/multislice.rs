//! Propagation through a thick, inhomogeneous sample: the multislice (split-step) method.
//!
//! A [`Volume`] holds the complex refractive index `n + iκ` of a sample on a stack of `nz`
//! slices, each `dz` thick, on the transverse [`Grid`] of the field; outside it, and as the
//! reference inside it, is the background medium of the [`Wave`] (index `n₀`). A
//! [`Multislice`] plan carries a field from the entrance face `z = 0` to the exit face
//! `z = nz·dz`: free propagation through the background by the exact angular spectrum, and at
//! the centre of every slice a phase screen of the slice's index contrast,
//!
//! ```text
//! u(L) = P(dz/2) · S(nz−1) · P(dz) · … · P(dz) · S(0) · P(dz/2) · u(0),
//! S(j) = exp(i k₀ (n − n₀ + iκ)(x, y, z_j) dz),    z_j = (j + ½) dz,    k₀ = 2π/λ
//! ```
//!
//! (symmetric Strang splitting, second order in `dz`: halving the slices quarters the error).
//! `P` is the angular spectrum of the background, so light crossing the background at any angle
//! is exact, and in a sample without contrast the plan is free propagation over `L` (tested to
//! 10⁻¹²). The approximation is the phase screen: it delays light by the contrast as if it
//! crossed each slice straight, at whatever angle `θ` it travels, so light at `θ` gathers a
//! phase error of about `k₀ (n − n₀) sin²θ / 2` per metre (on a waveguide mode the tests measure
//! exactly this, `δn_eff ≈ Γ (κₓ/k₀)²/2 · (1/n₁ − 1/n₀)`): the method holds while
//! `L·|n − n₀|·sin²θ` stays well below `λ/π` — cells and beads under a microscope objective,
//! weakly guiding fibres and waveguides. The slices need only resolve the sample (the error in
//! `dz` is second order); in guiding structures, slices of several wavelengths also couple
//! guided light into radiation. Absorption (`κ > 0`) attenuates as `exp(−k₀ κ dz)` per slice
//! (intensity `exp(−4πκL/λ)` over `L`).
//!
//! The plan is a linear operator of the field, with its adjoint ([`Multislice::adjoint_in_place`],
//! `⟨A x, y⟩ = ⟨x, Aᴴ y⟩`) and the gradient of a real loss with respect to the index of every
//! voxel and to the input field ([`Multislice::gradient`]) — what optical diffraction tomography
//! and the design of volume elements optimise.
//!
//! ```
//! use photonflow_optics::{Field, Grid, Padding, Wave};
//! use photonflow_optics::propagate::{Planner, Propagation, multislice::{Multislice, Volume}};
//! use num_complex::Complex;
//!
//! // Glass beads (n = 1.46, 6 µm across) in water, 19.2 µm apart (a periodic window), in 16
//! // slices of 0.5 µm, lit by a plane wave; every plane wave the grid holds propagates.
//! let grid = Grid::square(64, 0.3e-6)?;
//! let wave = Wave::new(532e-9, 1.33)?;
//! let volume = Volume::from_fn(grid, 0.5e-6, 16, |x, y, z| {
//!     let r2 = x * x + y * y + (z - 4e-6).powi(2);
//!     Complex::from(if r2 < 3e-6f64.powi(2) { 1.46 } else { 1.33 })
//! })?;
//! let periodic = Propagation::new(0.0).with_padding(Padding::Circular);
//! let plan = Multislice::<f64>::new(&Planner::new(), &volume, wave, &periodic)?;
//! let mut field = Field::<f64>::from_fn(grid, wave.wavelength, |_, _| Complex::from(1.0))?;
//! let before = field.power()[0];
//! plan.propagate(&mut field)?;
//! assert!((field.power()[0] / before - 1.0).abs() < 1e-12); // lossless: the power stays
//! let centre = field.data()[32 * 64 + 32].norm_sqr();
//! assert!(centre > 1.3); // each bead, a ball lens, gathers light onto the axis behind it
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

use num_complex::Complex;
use rayon::prelude::*;

use super::{Method, Padding, Plan, Planner, Propagation, check_field};
use crate::error::{OpticsError, Result, invalid, positive};
use crate::field::{Field, Real, cplx};
use crate::grid::{Grid, Wave, check_len};

/// The complex refractive index `n + iκ` of a thick sample on `nz` slices of thickness `dz`.
///
/// `index[(j·ny + r)·nx + c]` is the index of slice `j` (centred at `z = (j + ½)·dz`) at row
/// `r`, column `c` of the grid (x fastest, as a [`Field`]). `κ ≥ 0` absorbs.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    grid: Grid,
    dz: f64,
    nz: usize,
    index: Vec<Complex<f64>>,
}

impl Volume {
    /// A volume of `index` values (`[nz, ny, nx]`, `nz = index.len() / grid.len()`), slices
    /// `dz` metres thick. Refuses a length that is not a whole number of slices, a
    /// non-positive `dz`, non-finite values, `n ≤ 0` and `κ < 0`.
    pub fn new(grid: Grid, dz: f64, index: Vec<Complex<f64>>) -> Result<Self> {
        positive("slice thickness dz", dz)?;
        let plane = grid.len();
        if index.is_empty() || !index.len().is_multiple_of(plane) {
            return Err(OpticsError::Shape(format!(
                "a volume on a {}×{} grid needs a whole number of {plane}-sample slices; got {} \
                 values",
                grid.ny,
                grid.nx,
                index.len()
            )));
        }
        if let Some(i) = index
            .iter()
            .position(|n| !(n.re.is_finite() && n.im.is_finite() && n.re > 0.0 && n.im >= 0.0))
        {
            let (j, r, c) = (i / plane, i % plane / grid.nx, i % grid.nx);
            return Err(invalid(
                "refractive index",
                format!(
                    "{} at slice {j}, row {r}, column {c}: the index must be finite with n > 0 \
                     and κ ≥ 0 (absorbing)",
                    index[i]
                ),
            ));
        }
        Ok(Self {
            grid,
            dz,
            nz: index.len() / plane,
            index,
        })
    }

    /// A volume of `nz` slices whose index at `(x, y, z)` (metres; `x, y` the grid's sample
    /// positions, `z` the slice's centre `(j + ½)·dz` from the entrance face) is `f(x, y, z)`.
    pub fn from_fn(
        grid: Grid,
        dz: f64,
        nz: usize,
        f: impl Fn(f64, f64, f64) -> Complex<f64>,
    ) -> Result<Self> {
        let (xs, ys) = (grid.x(), grid.y());
        let mut index = Vec::with_capacity(nz * grid.len());
        for j in 0..nz {
            let z = (j as f64 + 0.5) * dz;
            for &y in &ys {
                index.extend(xs.iter().map(|&x| f(x, y, z)));
            }
        }
        Self::new(grid, dz, index)
    }

    /// Transverse sampling.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// Slice thickness, metres.
    pub fn dz(&self) -> f64 {
        self.dz
    }

    /// Number of slices.
    pub fn nz(&self) -> usize {
        self.nz
    }

    /// Thickness `nz · dz`, metres.
    pub fn thickness(&self) -> f64 {
        self.nz as f64 * self.dz
    }

    /// The index values, `[nz, ny, nx]`.
    pub fn index(&self) -> &[Complex<f64>] {
        &self.index
    }
}

/// The gradient of a real loss with respect to a [`Volume`]'s index, `[nz, ny, nx]` each.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexGradient {
    /// `∂L/∂n` per voxel.
    pub n: Vec<f64>,
    /// `∂L/∂κ` per voxel.
    pub kappa: Vec<f64>,
}

/// What [`Multislice::gradient`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients<T> {
    /// The exit fields, `[B, Ny, Nx]`.
    pub exit: Vec<Complex<T>>,
    /// `∂L/∂n` and `∂L/∂κ` of every voxel, summed over the batch.
    pub index: IndexGradient,
    /// `∂L/∂ū` at the entrance face, `[B, Ny, Nx]`.
    pub input: Vec<Complex<T>>,
}

/// A planned multislice propagation through a [`Volume`] (see the module docs): fields
/// `[B, Ny, Nx]` on the volume's grid, from its entrance face to its exit face.
#[derive(Debug)]
pub struct Multislice<T: Real> {
    step: Plan<T>,
    half: Plan<T>,
    /// `exp(i k₀ (n − n₀ + iκ) dz)` per voxel, `[nz, ny, nx]`.
    screens: Vec<Complex<T>>,
    grid: Grid,
    wave: Wave,
    nz: usize,
    /// The computation window `(my, mx)` (the grid with its padding) and the offset of the
    /// grid in it.
    padded: (usize, usize),
    offset: (usize, usize),
    /// `k₀ dz`: the derivative of a screen's phase by the index.
    k0_dz: f64,
}

impl<T: Real> Multislice<T> {
    /// Plans the propagation of light `wave` (its index the background's) through `volume`.
    /// Of `propagation` the padding, the treatment of evanescent waves and `check` are used
    /// (its method and distance are not):
    ///
    /// * Padded (2× by default): the sample sits in a window of background medium, the padded
    ///   one, in which the whole propagation runs before the exit face is cut out of it — in
    ///   a sample without contrast exactly one band-limited propagation over the thickness.
    ///   The steps are the angular spectrum band-limited (Matsushima & Shimobaba 2009) to the
    ///   light that stays in the padded window over the **whole thickness**, the same band at
    ///   every step (per-step limits, or cutting back to the grid after every step, would
    ///   each remove a little more light the more slices there are, and make the method first
    ///   order). With `check`, a sample too thick for its window (the band would cut into the
    ///   field's own) is refused with the fix.
    /// * `Padding::Circular`: the sample is periodic; the steps are the exact angular spectrum.
    pub fn new(
        planner: &Planner<T>,
        volume: &Volume,
        wave: Wave,
        propagation: &Propagation,
    ) -> Result<Self> {
        let grid = volume.grid;
        propagation.padding.validate()?;
        let (my, mx) = (
            propagation.padding.padded_len(grid.ny),
            propagation.padding.padded_len(grid.nx),
        );
        let window = Grid::new(mx, my, grid.dx, grid.dy)?;
        let thickness = volume.thickness();
        let method = match propagation.padding {
            Padding::Circular => Method::Asm,
            Padding::Linear(_) => Method::BandLimitedAsm,
        };
        if method == Method::BandLimitedAsm && propagation.check {
            let whole = Propagation {
                distance: thickness,
                method,
                ..propagation.clone()
            };
            let c = planner.criterion(&grid, wave, &whole, method);
            if !c.holds {
                return Err(c.into_error());
            }
        }
        // Steps on the whole window, periodic in it (the band limit keeps light from wrapping).
        let step = |dz: f64| {
            let p = Propagation {
                distance: dz,
                method,
                padding: Padding::Circular,
                check: false,
                support: None,
                band_limit: Some(thickness),
                ..propagation.clone()
            };
            planner.plan(&window, wave, &p)
        };
        let dz = volume.dz;
        let k0 = std::f64::consts::TAU / wave.wavelength;
        let screens = volume
            .index
            .par_iter()
            .map(|n| cplx((Complex::i() * k0 * (n - wave.index) * dz).exp()))
            .collect();
        Ok(Self {
            step: step(dz)?,
            half: step(dz / 2.0)?,
            screens,
            grid,
            wave,
            nz: volume.nz,
            padded: (my, mx),
            offset: ((my - grid.ny) / 2, (mx - grid.nx) / 2),
            k0_dz: k0 * dz,
        })
    }

    /// The transverse grid (input and output).
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// The light the plan was made for.
    pub fn wave(&self) -> Wave {
        self.wave
    }

    /// Number of slices.
    pub fn nz(&self) -> usize {
        self.nz
    }

    /// The computation window `(my, mx)`: the grid with its padding.
    pub fn padded_shape(&self) -> (usize, usize) {
        self.padded
    }

    /// The grid's rows inside the window: `(row of the window, row of the grid)` pairs per
    /// field, as slices of `window` and `fields`.
    fn rows<'a>(
        &self,
        window: &'a mut [Complex<T>],
        fields: &'a mut [Complex<T>],
    ) -> impl Iterator<Item = (&'a mut [Complex<T>], &'a mut [Complex<T>])> {
        let (my, mx) = self.padded;
        let (oy, ox) = self.offset;
        let (ny, nx) = (self.grid.ny, self.grid.nx);
        window
            .chunks_exact_mut(my * mx)
            .zip(fields.chunks_exact_mut(ny * nx))
            .flat_map(move |(w, f)| {
                w[oy * mx..(oy + ny) * mx]
                    .chunks_exact_mut(mx)
                    .zip(f.chunks_exact_mut(nx))
                    .map(move |(w, f)| (&mut w[ox..ox + nx], f))
            })
    }

    /// `fields` placed in a window of zeros.
    fn pad(&self, fields: &mut [Complex<T>]) -> Vec<Complex<T>> {
        let batch = fields.len() / self.grid.len();
        let mut window = vec![Complex::default(); batch * self.padded.0 * self.padded.1];
        for (w, f) in self.rows(&mut window, fields) {
            w.copy_from_slice(f);
        }
        window
    }

    /// The grid cut out of `window` into `fields`.
    fn crop(&self, window: &mut [Complex<T>], fields: &mut [Complex<T>]) {
        for (w, f) in self.rows(window, fields) {
            f.copy_from_slice(w);
        }
    }

    /// Multiplies the grid's part of every field of `window` by screen `j` (or its conjugate).
    fn screen(&self, j: usize, window: &mut [Complex<T>], conjugate: bool) {
        let (my, mx) = self.padded;
        let (oy, ox) = self.offset;
        let (ny, nx) = (self.grid.ny, self.grid.nx);
        let s = &self.screens[j * ny * nx..(j + 1) * ny * nx];
        window
            .par_chunks_mut(mx)
            .enumerate()
            .for_each(|(row, out)| {
                let r = row % my;
                if r < oy || r >= oy + ny {
                    return;
                }
                let s = &s[(r - oy) * nx..(r - oy + 1) * nx];
                for (o, s) in out[ox..ox + nx].iter_mut().zip(s) {
                    *o = *o * if conjugate { s.conj() } else { *s };
                }
            });
    }

    /// The forward sweep on a window: half step, screens and steps, half step; `visit(j, w)`
    /// after screen `j`.
    fn sweep(
        &self,
        window: &mut [Complex<T>],
        mut visit: impl FnMut(usize, &mut [Complex<T>]),
    ) -> Result<()> {
        self.half.propagate_in_place(window)?;
        for j in 0..self.nz {
            self.screen(j, window, false);
            visit(j, window);
            if j + 1 < self.nz {
                self.step.propagate_in_place(window)?;
            }
        }
        self.half.propagate_in_place(window)
    }

    /// Propagates every field of a `[B, Ny, Nx]` buffer from the entrance to the exit face,
    /// calling `visit(j, fields)` right after slice `j`'s screen with the fields on the grid at
    /// `z = (j + ½)·dz` as the next step starts from them: a record of the light inside the
    /// sample.
    pub fn propagate_visiting(
        &self,
        data: &mut [Complex<T>],
        mut visit: impl FnMut(usize, &[Complex<T>]),
    ) -> Result<()> {
        check_len(data.len(), &self.grid)?;
        let mut window = self.pad(data);
        let mut inside = vec![Complex::default(); data.len()];
        self.sweep(&mut window, |j, w| {
            self.crop(w, &mut inside);
            visit(j, &inside);
        })?;
        self.crop(&mut window, data);
        Ok(())
    }

    /// Propagates every field of a `[B, Ny, Nx]` buffer from the entrance to the exit face.
    pub fn propagate_in_place(&self, data: &mut [Complex<T>]) -> Result<()> {
        check_len(data.len(), &self.grid)?;
        let mut window = self.pad(data);
        self.sweep(&mut window, |_, _| {})?;
        self.crop(&mut window, data);
        Ok(())
    }

    /// The adjoint sweep on a window: from the exit face back to the entrance through the
    /// conjugate screens; `visit(j, w)` before screen `j` is undone.
    fn sweep_back(
        &self,
        window: &mut [Complex<T>],
        mut visit: impl FnMut(usize, &mut [Complex<T>]),
    ) -> Result<()> {
        self.half.adjoint_in_place(window)?;
        for j in (0..self.nz).rev() {
            visit(j, window);
            self.screen(j, window, true);
            if j > 0 {
                self.step.adjoint_in_place(window)?;
            }
        }
        self.half.adjoint_in_place(window)
    }

    /// Applies the adjoint `Aᴴ` in place (for a lossless sample without evanescent light or
    /// light lost from the window, the inverse).
    pub fn adjoint_in_place(&self, data: &mut [Complex<T>]) -> Result<()> {
        check_len(data.len(), &self.grid)?;
        let mut window = self.pad(data);
        self.sweep_back(&mut window, |_, _| {})?;
        self.crop(&mut window, data);
        Ok(())
    }

    /// Propagates a [`Field`] on the volume's grid at the plan's wavelength.
    pub fn propagate(&self, field: &mut Field<T>) -> Result<()> {
        check_field(field, self.grid, self.wave)?;
        self.propagate_in_place(field.data_mut())
    }

    /// The exit fields of `input` (`[B, Ny, Nx]`) and the gradient of a real loss `L` of them:
    /// `grad` receives the exit fields and returns `∂L/∂ū` there (for `L = Σ|u − t|²`,
    /// `u − t`); returns the exit fields, `∂L/∂n` and `∂L/∂κ` of every voxel (summed over the
    /// batch), and `∂L/∂ū` at the entrance face (to chain to what lit the sample). With
    /// `∂L/∂ū` defined so, `dL = 2 Re Σ ∂L/∂ū · du` (Wirtinger).
    ///
    /// Keeps the light of every slice (`nz · B · Ny · Nx` complex values); refused with
    /// [`OpticsError::Memory`] before anything is allocated when that does not fit.
    pub fn gradient(
        &self,
        input: &[Complex<T>],
        grad: impl FnOnce(&[Complex<T>]) -> Vec<Complex<T>>,
    ) -> Result<Gradients<T>> {
        let batch = check_len(input.len(), &self.grid)?;
        let plane = self.grid.len();
        // The light of every slice, the padded windows of the sweeps, and the index gradients.
        let (my, mx) = self.padded;
        let c = std::mem::size_of::<Complex<T>>();
        crate::memory::check_fits(
            crate::memory::bytes(&[self.nz + 4, batch, plane, c])
                .saturating_add(crate::memory::bytes(&[2, batch, my, mx, c]))
                .saturating_add(crate::memory::bytes(&[2, self.nz, plane, 8])),
            || {
                format!(
                    "the gradient through {} slices of {}×{} for {batch} fields",
                    self.nz, self.grid.ny, self.grid.nx
                )
            },
            "use fewer fields at a time, fewer slices or a smaller grid",
        )?;
        let mut fields = input.to_vec();
        let mut after = Vec::with_capacity(self.nz * fields.len());
        self.propagate_visiting(&mut fields, |_, v| after.extend_from_slice(v))?;
        let mut lambda = grad(&fields);
        if lambda.len() != fields.len() {
            return Err(OpticsError::Shape(format!(
                "the loss gradient has {} values for {} exit samples",
                lambda.len(),
                fields.len()
            )));
        }
        let mut g = IndexGradient {
            n: vec![0.0; self.nz * plane],
            kappa: vec![0.0; self.nz * plane],
        };
        let scale = 2.0 * self.k0_dz;
        let mut here = vec![Complex::default(); fields.len()];
        let mut window = self.pad(&mut lambda);
        self.sweep_back(&mut window, |j, w| {
            // v = S u with S = exp(i k₀ dz (Δn + iκ)): ∂v/∂n = i k₀ dz v, ∂v/∂κ = −k₀ dz v,
            // and ∂L/∂p = 2 Re(λ̄ · ∂v/∂p) with λ = ∂L/∂v̄, the adjoint light before S is undone.
            self.crop(w, &mut here);
            let v = &after[j * batch * plane..(j + 1) * batch * plane];
            let (gn, gk) = (
                &mut g.n[j * plane..(j + 1) * plane],
                &mut g.kappa[j * plane..(j + 1) * plane],
            );
            gn.par_iter_mut()
                .zip(gk.par_iter_mut())
                .enumerate()
                .for_each(|(i, (gn, gk))| {
                    for b in 0..batch {
                        let w = here[b * plane + i].conj() * v[b * plane + i];
                        *gn -= scale * w.im.f64();
                        *gk -= scale * w.re.f64();
                    }
                });
        })?;
        self.crop(&mut window, &mut lambda);
        Ok(Gradients {
            exit: fields,
            index: g,
            input: lambda,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::f64::consts::{PI, TAU};

    type C = Complex<f64>;

    fn periodic() -> Propagation {
        Propagation::new(0.0).with_padding(Padding::Circular)
    }

    fn random_field(rng: &mut Rng, len: usize) -> Vec<C> {
        (0..len)
            .map(|_| C::new(rng.normal(), rng.normal()))
            .collect()
    }

    fn random_volume(rng: &mut Rng, grid: Grid, dz: f64, nz: usize, kappa: f64) -> Volume {
        let index = (0..nz * grid.len())
            .map(|_| C::new(1.33 + 0.05 * rng.uniform(), kappa * rng.uniform()))
            .collect();
        Volume::new(grid, dz, index).unwrap()
    }

    fn dot(a: &[C], b: &[C]) -> C {
        a.iter().zip(b).map(|(a, b)| a.conj() * b).sum()
    }

    /// Without contrast the plan is free propagation over the thickness: periodic, the exact
    /// angular spectrum over it; in a padded window, one band-limited propagation over it (the
    /// steps share the thickness's band, and the sweep runs in the window).
    #[test]
    fn a_sample_without_contrast_is_free_space() {
        let grid = Grid::new(40, 36, 0.2e-6, 0.25e-6).unwrap();
        let wave = Wave::new(532e-9, 1.33).unwrap();
        let volume = Volume::from_fn(grid, 0.5e-6, 24, |_, _, _| C::from(1.33)).unwrap();
        let planner = Planner::new();
        let mut rng = Rng::new(1);
        let input = random_field(&mut rng, 2 * grid.len());
        let l = volume.thickness();
        // Periodic: exact on the DFT's frequencies, so the sampling check does not apply.
        let periodic_free = Propagation {
            distance: l,
            method: Method::Asm,
            check: false,
            ..periodic()
        };
        for (steps, free, padded) in [
            (periodic(), periodic_free, (36, 40)),
            (Propagation::new(0.0), Propagation::new(l), (72, 80)),
        ] {
            let plan = Multislice::new(&planner, &volume, wave, &steps).unwrap();
            assert_eq!(plan.padded_shape(), padded);
            let mut through = input.clone();
            plan.propagate_in_place(&mut through).unwrap();
            let mut direct = input.clone();
            let free = planner.plan(&grid, wave, &free).unwrap();
            free.propagate_in_place(&mut direct).unwrap();
            let err = through
                .iter()
                .zip(&direct)
                .map(|(a, b)| (a - b).norm())
                .fold(0.0, f64::max);
            let largest = direct.iter().map(|v| v.norm()).fold(0.0, f64::max);
            assert!(err < 1e-12 * largest, "{padded:?}: {err} of {largest}");
        }
    }

    /// A uniform slab: a plane wave gains k₀(n − n₀)L of phase and loses exp(−k₀κL) of
    /// amplitude, on top of the background's exp(ik₀n₀L).
    #[test]
    fn a_slab_delays_and_absorbs_a_plane_wave_exactly() {
        let grid = Grid::square(16, 0.5e-6).unwrap();
        let wave = Wave::new(800e-9, 1.0).unwrap();
        let n = C::new(1.52, 2e-3);
        let volume = Volume::from_fn(grid, 0.4e-6, 25, |_, _, _| n).unwrap();
        let plan = Multislice::new(&Planner::new(), &volume, wave, &periodic());
        let mut field = vec![C::from(1.0); grid.len()];
        plan.unwrap().propagate_in_place(&mut field).unwrap();
        let k0 = TAU / wave.wavelength;
        let l = volume.thickness();
        let want = (C::i() * k0 * n * l).exp();
        for u in &field {
            assert!((u - want).norm() < 1e-12, "{u} vs {want}");
        }
        assert!((want.norm() - (-k0 * 2e-3 * l).exp()).abs() < 1e-15);
    }

    /// Lossless contrast in a periodic window without evanescent light keeps the power; κ > 0
    /// removes some.
    #[test]
    fn lossless_samples_conserve_power() {
        let grid = Grid::new(32, 24, 1e-6, 1.2e-6).unwrap();
        let wave = Wave::new(500e-9, 1.33).unwrap(); // 1/(2·dx) < n₀/λ: nothing evanescent
        let mut rng = Rng::new(2);
        let input = random_field(&mut rng, grid.len());
        let power = |u: &[C]| u.iter().map(|v| v.norm_sqr()).sum::<f64>();
        for (kappa, lossless) in [(0.0, true), (1e-3, false)] {
            let volume = random_volume(&mut rng, grid, 1e-6, 12, kappa);
            let plan = Multislice::new(&Planner::new(), &volume, wave, &periodic()).unwrap();
            let mut u = input.clone();
            plan.propagate_in_place(&mut u).unwrap();
            let ratio = power(&u) / power(&input);
            if lossless {
                assert!((ratio - 1.0).abs() < 1e-12, "{ratio}");
            } else {
                assert!(ratio < 0.99, "{ratio}");
            }
        }
    }

    /// ⟨A x, y⟩ = ⟨x, Aᴴ y⟩ for an absorbing sample, zero-padded band-limited steps, a batch.
    #[test]
    fn the_adjoint_is_the_adjoint() {
        let grid = Grid::new(20, 28, 0.2e-6, 0.25e-6).unwrap();
        let wave = Wave::new(532e-9, 1.33).unwrap();
        let mut rng = Rng::new(3);
        let volume = random_volume(&mut rng, grid, 0.3e-6, 7, 0.01);
        let plan =
            Multislice::<f64>::new(&Planner::new(), &volume, wave, &Propagation::new(0.0)).unwrap();
        assert_eq!(plan.padded_shape(), (56, 40));
        let (x, y) = (
            random_field(&mut rng, 2 * grid.len()),
            random_field(&mut rng, 2 * grid.len()),
        );
        let (mut ax, mut ahy) = (x.clone(), y.clone());
        plan.propagate_in_place(&mut ax).unwrap();
        plan.adjoint_in_place(&mut ahy).unwrap();
        let (lhs, rhs) = (dot(&ax, &y), dot(&x, &ahy));
        assert!((lhs - rhs).norm() < 1e-12 * lhs.norm(), "{lhs} vs {rhs}");
    }

    /// The gradient with respect to n, κ and the input field matches central differences of
    /// L = Σ|u − t|².
    #[test]
    fn gradients_match_finite_differences() {
        let grid = Grid::new(12, 10, 0.25e-6, 0.3e-6).unwrap();
        let wave = Wave::new(633e-9, 1.33).unwrap();
        let mut rng = Rng::new(4);
        let volume = random_volume(&mut rng, grid, 0.4e-6, 4, 0.02);
        let input = random_field(&mut rng, 2 * grid.len());
        let target = random_field(&mut rng, 2 * grid.len());
        let planner = Planner::new();
        let loss = |v: &Volume, x: &[C]| {
            let plan = Multislice::new(&planner, v, wave, &Propagation::new(0.0)).unwrap();
            let mut u = x.to_vec();
            plan.propagate_in_place(&mut u).unwrap();
            u.iter()
                .zip(&target)
                .map(|(u, t)| (u - t).norm_sqr())
                .sum::<f64>()
        };
        let plan = Multislice::new(&planner, &volume, wave, &Propagation::new(0.0)).unwrap();
        let Gradients {
            exit,
            index: g,
            input: g_in,
        } = plan
            .gradient(&input, |u| {
                u.iter().zip(&target).map(|(u, t)| u - t).collect()
            })
            .unwrap();
        let mut direct = input.clone();
        plan.propagate_in_place(&mut direct).unwrap();
        assert_eq!(exit, direct);
        let h = 1e-6;
        for voxel in [0, 57, 2 * 120 + 33, 3 * 120 + 119] {
            for (part, analytic) in [(C::from(1.0), g.n[voxel]), (C::i(), g.kappa[voxel])] {
                let shifted = |s: f64| {
                    let mut index = volume.index().to_vec();
                    index[voxel] += part * s;
                    loss(&Volume::new(grid, volume.dz(), index).unwrap(), &input)
                };
                let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
                let largest = g.n.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let scale = analytic.abs().max(1e-3 * largest);
                assert!(
                    (numeric - analytic).abs() < 1e-5 * scale,
                    "voxel {voxel} {part}: {numeric} vs {analytic}"
                );
            }
        }
        // Along a random direction d of the input: dL = 2 Re⟨∂L/∂ū, d⟩.
        let d = random_field(&mut rng, input.len());
        let at = |s: f64| {
            let x: Vec<C> = input.iter().zip(&d).map(|(x, d)| x + d * s).collect();
            loss(&volume, &x)
        };
        let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
        let analytic = 2.0 * dot(&g_in, &d).re;
        assert!(
            (numeric - analytic).abs() < 1e-6 * analytic.abs(),
            "{numeric} vs {analytic}"
        );
    }

    /// A gradient whose record of the light would not fit in memory (here ≈ 69 GB) is refused
    /// before it is allocated, naming what to change.
    #[test]
    fn gradients_that_do_not_fit_are_refused() {
        let grid = Grid::square(64, 0.5e-6).unwrap();
        let wave = Wave::new(633e-9, 1.0).unwrap();
        let volume = Volume::from_fn(grid, 0.05e-6, 1024, |_, _, _| C::from(1.0)).unwrap();
        let plan = Multislice::<f32>::new(&Planner::new(), &volume, wave, &Propagation::new(0.0));
        let input = vec![Complex::<f32>::default(); 2048 * grid.len()];
        match plan.unwrap().gradient(&input, |u| u.to_vec()) {
            Err(OpticsError::Memory { .. }) => {}
            Err(e) => panic!("{e}"),
            Ok(_) => {
                // A machine with that much memory left: nothing to refuse.
                assert!(crate::memory::available_bytes().is_none_or(|b| b > 60 << 30));
            }
        }
    }

    /// The error of the exit field against a fine reference falls as dz² (Strang splitting).
    #[test]
    fn errors_fall_as_the_square_of_the_slice_thickness() {
        let grid = Grid::square(64, 0.2e-6).unwrap();
        let wave = Wave::new(532e-9, 1.33).unwrap();
        let thickness = 8e-6;
        // A smooth blob of Δn = 0.05 (a cell's nucleus), off axis, with some absorption.
        let blob = |x: f64, y: f64, z: f64| {
            let r2 = ((x - 0.6e-6).powi(2) + y * y + (z - 4e-6).powi(2)) / (2.5e-6f64).powi(2);
            C::new(1.33 + 0.05 * (-r2).exp(), 1e-3 * (-r2).exp())
        };
        let input: Vec<C> = {
            let (xs, ys) = (grid.x(), grid.y());
            ys.iter()
                .flat_map(|&y| {
                    let xs = &xs;
                    xs.iter()
                        .map(move |&x| C::from((-(x * x + y * y) / (3e-6f64).powi(2)).exp()))
                })
                .collect()
        };
        let exit = |nz: usize| {
            let v = Volume::from_fn(grid, thickness / nz as f64, nz, blob).unwrap();
            let plan = Multislice::new(&Planner::new(), &v, wave, &Propagation::new(0.0));
            let mut u = input.clone();
            plan.unwrap().propagate_in_place(&mut u).unwrap();
            u
        };
        let reference = exit(256);
        let err = |nz| {
            let u = exit(nz);
            let d: f64 = u
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).norm_sqr())
                .sum();
            (d / reference.iter().map(|v| v.norm_sqr()).sum::<f64>()).sqrt()
        };
        let (e8, e16, e32) = (err(8), err(16), err(32));
        for (coarse, fine) in [(e8, e16), (e16, e32)] {
            let order = (coarse / fine).log2();
            assert!(
                (1.8..2.3).contains(&order),
                "{e8:e} {e16:e} {e32:e}: order {order}"
            );
        }
    }

    /// Launches the even (TE₀) mode of a step-index slab waveguide — a core `2a` wide of index
    /// `n1` in `n0`, at `lambda` — through `length` in slices `dz` on a single row of pitch
    /// `dx` (periodic, 64 µm wide), and returns the overlap with the launched mode, rotated
    /// back by the analytic `exp(iβL)`; `(U, V)` of the eigenvalue equation `U tan U = W`,
    /// `U² + W² = V²`, `U = κₓa` (Snyder & Love, Optical Waveguide Theory, §12-9); and the
    /// fraction of the mode's power in the core.
    fn slab_mode(
        n0: f64,
        n1: f64,
        a: f64,
        lambda: f64,
        length: f64,
        dz: f64,
        dx: f64,
    ) -> (C, f64, f64) {
        let k0 = TAU / lambda;
        let v = k0 * a * (n1 * n1 - n0 * n0).sqrt();
        let (mut lo, mut hi) = (1e-9, PI / 2.0 - 1e-12);
        for _ in 0..200 {
            let u = 0.5 * (lo + hi);
            if u * u.tan() < (v * v - u * u).sqrt() {
                lo = u;
            } else {
                hi = u;
            }
        }
        let (u, w) = (lo, (v * v - lo * lo).sqrt());
        let beta = ((k0 * n1).powi(2) - (u / a).powi(2)).sqrt();
        let mode = |x: f64| {
            if x.abs() <= a {
                (u * x / a).cos()
            } else {
                u.cos() * (-w * (x.abs() - a) / a).exp()
            }
        };
        // One row, periodic in x; the core's edges fall on samples, which carry the mean index
        // (the pixel half in the core).
        let grid = Grid::new((64e-6 / dx).round() as usize, 1, dx, dx).unwrap();
        let wave = Wave::new(lambda, n0).unwrap();
        let input: Vec<C> = grid.x().iter().map(|&x| C::from(mode(x))).collect();
        let nz = (length / dz).round() as usize;
        let volume = Volume::from_fn(grid, dz, nz, |x, _, _| {
            let inside = ((a - (x.abs() - dx / 2.0)) / dx).clamp(0.0, 1.0);
            C::from(n0 + inside * (n1 - n0))
        })
        .unwrap();
        let plan = Multislice::new(&Planner::new(), &volume, wave, &periodic());
        let mut out = input.clone();
        plan.unwrap().propagate_in_place(&mut out).unwrap();
        let c = dot(&input, &out) / dot(&input, &input);
        let core = a * (1.0 + (2.0 * u).sin() / (2.0 * u));
        let clad = u.cos().powi(2) * a / w;
        (
            c * (-C::i() * beta * length).exp(),
            u / a,
            core / (core + clad),
        )
    }

    /// A weakly guiding slab (Δn = 0.002, an 8 µm core, λ = 1 µm): over 0.5 mm in slices of a
    /// wavelength or less its mode keeps its power (overlap > 0.9999) and the analytic
    /// propagation constant, n_eff within 1.5·10⁻⁶ (the screens' angular error predicts
    /// −6·10⁻⁷; slices of 4 µm and more couple the mode into radiation, |c| < 0.996).
    #[test]
    fn a_weakly_guiding_mode_travels_with_its_analytic_constant() {
        let (n0, lambda, length) = (1.45, 1e-6, 500e-6);
        let k0 = TAU / lambda;
        for dz in [1e-6, 0.5e-6] {
            let (c, _, _) = slab_mode(n0, n0 + 0.002, 4e-6, lambda, length, dz, 0.125e-6);
            let n_eff_error = c.arg() / (k0 * length);
            assert!(c.norm() > 0.9999, "dz {dz}: |c| = {}", c.norm());
            assert!(
                n_eff_error.abs() < 1.5e-6,
                "dz {dz}: n_eff off by {n_eff_error:e}"
            );
        }
    }

    /// A strongly guiding slab (Δn = 0.01, 4 µm core): the mode still keeps its power, and
    /// its propagation constant is off by the error of the phase screen the module docs
    /// state — the contrast crossed at the background's angles, δn_eff ≈ Γ·(κₓ/k₀)²/2 ·
    /// (1/n₁ − 1/n₀) for the mode's transverse wavenumber κₓ and core fraction Γ (−1.5·10⁻⁵
    /// here) — to within a fifth, not by a discretisation error.
    #[test]
    fn a_strongly_guiding_mode_shows_the_screens_angular_error() {
        let (n0, n1, lambda, length) = (1.45, 1.46, 1e-6, 200e-6);
        let k0 = TAU / lambda;
        let (c, kx, core) = slab_mode(n0, n1, 2e-6, lambda, length, 0.25e-6, 0.0625e-6);
        let predicted = core * (kx / k0).powi(2) / 2.0 * (1.0 / n1 - 1.0 / n0);
        let n_eff_error = c.arg() / (k0 * length);
        assert!(c.norm() > 0.999, "|c| = {}", c.norm());
        assert!(
            (n_eff_error / predicted - 1.0).abs() < 0.2,
            "n_eff off by {n_eff_error:e}, predicted {predicted:e}"
        );
    }
}
