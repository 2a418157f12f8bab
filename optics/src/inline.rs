//! In-line (Gabor) holography and propagation-based phase imaging: the thin object
//! `t(x, y) = a·exp(iφ)` lit by a plane wave of unit intensity casts `I = |A_z t|²` on a camera
//! at distance `z` (`A_z`: the band-limited angular spectrum, [`Method::BandLimitedAsm`]), and
//! [`Inline::reconstruct`] finds `t` from `I` alone — from one hologram, or from several at
//! different distances (multi-height phase retrieval), which pin down more.
//!
//! One intensity does not fix a complex field; what makes the problem solvable is what is
//! known of the object (Gabor 1948; Fienup, Appl. Opt. 21, 2758 (1982)):
//!
//! * [`ObjectModel::Phase`]: a transparent object, `|t| = 1` (cells, phase plates);
//! * [`ObjectModel::Absorbing`]: `t = exp(α + iφ)`, amplitude and phase both free (the
//!   gradient solver) or `|t| ≤ 1` (the projection solver).
//!
//! Two solvers:
//!
//! * [`Solver::Gs`]: alternating projections (Gerchberg–Saxton error reduction): propagate,
//!   put in the measured amplitude, propagate back (`A_zᴴ`), impose the object model. Two FFTs
//!   an iteration; it stalls on the twin image of strong objects.
//! * [`Solver::Lbfgs`]: the amplitude misfit `Σ(g|A_z t| − √I)² / Σ I` plus `τ` times the
//!   object's mean total variation `⟨√(|∇φ|² + ε²)⟩` (and of `α`), minimised by L-BFGS
//!   ([`crate::minimise`]) with the exact gradient `Aᴴ` gives (the physics-driven
//!   reconstruction of PhysenNet, Wang et al., Light Sci. Appl. 9, 77 (2020), with a TV prior
//!   in place of its untrained network, which `photonflow_d2nn::untrained` provides).
//!
//! With [`ReconstructOptions::fit_gain`] each hologram has its gain `g`, the best for the
//! current object (`Σ|y|√I / Σ|y|²`; 1 otherwise): the illumination's brightness, which a
//! hologram divided by its mean knows only to a few per cent, and which a phase object could
//! otherwise explain only by scattering light away.
//!
//! The object lives on a grid wider than the camera by `margin` pixels each side, since light
//! from outside the field of view reaches it; only the camera's pixels are compared with the
//! data (the masked model, as in [`crate::deconvolve`]).
//!
//! The distance, often known to a millimetre at best, can be fitted with the object
//! ([`ReconstructOptions::fit_distance`]; the self-calibration of Huang et al., Chin. Opt.
//! Lett. 23, 071105 (2025)): it joins L-BFGS's variables, within the range given, its
//! derivative by a central difference. It moves where the data pin the object down (several
//! heights, or a prior): there only the true distance lets an object of the model explain
//! them. One hologram may hardly fix it.
//!
//! When the distance is not known to better than the range a fit can search,
//! [`Inline::autofocus`] finds it from the holograms alone (the sharpest back-propagation).
//!
//! Units: SI (metres, radians); intensities relative to the illumination (1 where the object
//! is clear: divide a hologram by a flat field, or by its mean).

use std::str::FromStr;

use num_complex::Complex;

use crate::error::{OpticsError, Result, invalid};
use crate::grid::{Grid, Wave};
use crate::memory;
use crate::metrics::{psnr, ssim};
use crate::minimise::lbfgs;
use crate::propagate::{Method, Plan, Planner, Propagation};

mod autofocus;

pub use autofocus::Focus;

type C64 = Complex<f64>;

/// Smoothing of the total variation, radians (or nepers for `α`): `√(|∇φ|² + ε²)` is smooth
/// for L-BFGS and within `ε` of `|∇φ|`.
pub const TV_EPSILON: f64 = 0.01;

/// The most holograms one reconstruction takes.
pub const MAX_HOLOGRAMS: usize = 64;

/// What is known of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObjectModel {
    /// Transparent: `|t| = 1`, the phase alone is sought.
    #[default]
    Phase,
    /// Absorbing: amplitude and phase.
    Absorbing,
}

impl ObjectModel {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ObjectModel::Phase => "phase",
            ObjectModel::Absorbing => "absorbing",
        }
    }
}

impl FromStr for ObjectModel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "phase" => Ok(ObjectModel::Phase),
            "absorbing" => Ok(ObjectModel::Absorbing),
            _ => Err(format!(
                "unknown object model {s:?}; use phase or absorbing"
            )),
        }
    }
}

/// How the object is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Solver {
    /// Alternating projections (Gerchberg–Saxton error reduction).
    Gs,
    /// L-BFGS on the amplitude misfit plus total variation.
    #[default]
    Lbfgs,
}

impl Solver {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Solver::Gs => "gs",
            Solver::Lbfgs => "lbfgs",
        }
    }
}

impl FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "gs" => Ok(Solver::Gs),
            "lbfgs" => Ok(Solver::Lbfgs),
            _ => Err(format!("unknown solver {s:?}; use lbfgs or gs")),
        }
    }
}

/// Options of [`Inline::reconstruct`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconstructOptions {
    /// What is known of the object.
    pub model: ObjectModel,
    /// The solver.
    pub solver: Solver,
    /// Iterations (L-BFGS iterations, or projection cycles).
    pub iterations: usize,
    /// Weight `τ` of the total variation (L-BFGS only; 0: none).
    pub tv: f64,
    /// Fit the distances' common shift within this range (metres; `None`: keep them).
    pub fit_distance: Option<f64>,
    /// Fit each hologram's gain (for holograms divided by their mean rather than by a flat
    /// field; it costs some accuracy where the intensity is known, since the gain and a
    /// smooth phase can trade off).
    pub fit_gain: bool,
}

impl Default for ReconstructOptions {
    fn default() -> Self {
        Self {
            model: ObjectModel::Phase,
            solver: Solver::Lbfgs,
            iterations: 100,
            tv: 0.0,
            fit_distance: None,
            fit_gain: false,
        }
    }
}

/// What [`Inline::reconstruct`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// The object's phase over the camera's pixels, radians (row-major `[ny, nx]`); wrapped
    /// into `(−π, π]` by the projection solver, continuous as L-BFGS found it otherwise.
    pub phase: Vec<f64>,
    /// Its amplitude over the camera's pixels (1 for a phase object).
    pub amplitude: Vec<f64>,
    /// The distances used at the end (fitted, when fitted), metres, one a hologram.
    pub distances: Vec<f64>,
    /// The relative amplitude misfit `Σ(g|A_z t| − √I)² / Σ I` (over every hologram, each with
    /// its gain `g`) at the end.
    pub misfit: f64,
    /// The misfit before the first iteration (the holograms propagated back, under the
    /// model) and after each iteration.
    pub history: Vec<f64>,
    /// The distances' common shift after each iteration, metres (empty unless fitted).
    pub shifts: Vec<f64>,
}

/// Quality of a reconstructed phase against the true one (see [`phase_quality`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseQuality {
    /// PSNR, dB, over the true phase's span.
    pub psnr: f64,
    /// SSIM over the true phase's span.
    pub ssim: f64,
    /// RMS of the wrapped difference, radians.
    pub rms: f64,
    /// The constant phase removed (the reconstruction's is arbitrary), radians.
    pub offset: f64,
}

/// The forward model of in-line holograms, planned: the camera, the light, the distances (one
/// a hologram) and the object's margin.
pub struct Inline {
    camera: Grid,
    grid: Grid,
    margin: (usize, usize),
    wave: Wave,
    distances: Vec<f64>,
    planner: Planner<f64>,
    plans: Vec<Plan<f64>>,
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline")
            .field("camera", &self.camera)
            .field("margin", &self.margin)
            .field("wave", &self.wave)
            .field("distances", &self.distances)
            .finish()
    }
}

impl Inline {
    /// Holograms of an object on `camera`'s pitch, `margin = (my, mx)` pixels wider each side
    /// than the camera, lit by `wave`, at each of `distances` (metres, not 0; several heights
    /// pin down what one hologram leaves open, as in multi-height lensless microscopy).
    pub fn new(
        camera: Grid,
        wave: Wave,
        distances: &[f64],
        margin: (usize, usize),
    ) -> Result<Self> {
        let (my, mx) = margin;
        if my > 4 * camera.ny || mx > 4 * camera.nx {
            return Err(invalid(
                "margin",
                format!(
                    "{mx}×{my} pixels around a {}×{} camera; at most 4 times the camera",
                    camera.nx, camera.ny
                ),
            ));
        }
        let grid = Grid::new(camera.nx + 2 * mx, camera.ny + 2 * my, camera.dx, camera.dy)?;
        // Few plans beyond the holograms' kept: a fitted distance makes new ones every
        // iteration.
        let planner = Planner::with_capacity(3 * distances.len() + 1);
        let mut model = Self {
            camera,
            grid,
            margin,
            wave,
            distances: Vec::new(),
            planner,
            plans: Vec::new(),
        };
        model.set_distances(distances)?;
        Ok(model)
    }

    /// The object's grid: the camera's, `margin` wider each side.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// The camera's grid.
    pub fn camera(&self) -> Grid {
        self.camera
    }

    /// The object's margin beyond the camera, `(my, mx)` pixels each side.
    pub fn margin(&self) -> (usize, usize) {
        self.margin
    }

    /// The light.
    pub fn wave(&self) -> Wave {
        self.wave
    }

    /// The distance of each hologram, metres.
    pub fn distances(&self) -> &[f64] {
        &self.distances
    }

    /// Plans the model anew for other distances.
    pub fn set_distances(&mut self, distances: &[f64]) -> Result<()> {
        if distances.is_empty() || distances.len() > MAX_HOLOGRAMS {
            return Err(invalid(
                "distance",
                format!(
                    "{} distances; give one for each hologram, 1 to {MAX_HOLOGRAMS}",
                    distances.len()
                ),
            ));
        }
        if let Some(z) = distances.iter().find(|z| !(z.is_finite() && **z != 0.0)) {
            return Err(invalid(
                "distance",
                format!("{z} m; give the object-to-camera distance, e.g. 0.005"),
            ));
        }
        self.plans = distances
            .iter()
            .map(|&z| self.plan_for(z))
            .collect::<Result<_>>()?;
        self.distances = distances.to_vec();
        Ok(())
    }

    /// A plan of this model's grid and light at `distance` (from the planner's cache).
    fn plan_for(&self, distance: f64) -> Result<Plan<f64>> {
        self.planner
            .plan(&self.grid, self.wave, &propagation(distance))
    }

    /// The index in the object's grid ([`Inline::grid`]) of every camera pixel, row-major.
    pub fn window(&self) -> impl Iterator<Item = usize> + '_ {
        let (my, mx) = self.margin;
        let nx = self.grid.nx;
        (0..self.camera.ny)
            .flat_map(move |r| (0..self.camera.nx).map(move |c| (r + my) * nx + c + mx))
    }

    /// The holograms `|A_z t|²` of an object on [`Inline::grid`], over the camera's pixels,
    /// `[hologram, ny, nx]`.
    pub fn hologram(&self, object: &[C64]) -> Result<Vec<f64>> {
        let n = self.grid.nx * self.grid.ny;
        if object.len() != n {
            return Err(OpticsError::Shape(format!(
                "an object of {} samples for a {}×{} grid (the camera and its margin)",
                object.len(),
                self.grid.nx,
                self.grid.ny
            )));
        }
        let mut out = Vec::with_capacity(self.plans.len() * self.camera.nx * self.camera.ny);
        let mut field = vec![C64::default(); n];
        for plan in &self.plans {
            field.copy_from_slice(object);
            plan.propagate_in_place(&mut field)?;
            out.extend(self.window().map(|i| field[i].norm_sqr()));
        }
        Ok(out)
    }

    /// Checks holograms for this model: `[hologram, ny, nx]` over the camera, finite.
    pub fn check_holograms(&self, intensity: &[f64]) -> Result<()> {
        let (ny, nx, planes) = (self.camera.ny, self.camera.nx, self.plans.len());
        if intensity.len() != planes * nx * ny {
            return Err(OpticsError::Shape(format!(
                "{} hologram values for {planes} hologram(s) on a {nx}×{ny} camera",
                intensity.len()
            )));
        }
        if intensity.iter().any(|v| !v.is_finite()) {
            return Err(invalid("hologram", "holds NaN or infinite values"));
        }
        Ok(())
    }

    /// Reconstructs the object from its holograms `intensity` (`[hologram, ny, nx]`, relative
    /// to the illumination; negative values, from a subtracted background, count as 0).
    /// `progress(done, total)` after each iteration.
    pub fn reconstruct(
        &mut self,
        intensity: &[f64],
        options: &ReconstructOptions,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Reconstruction> {
        self.check_holograms(intensity)?;
        if options.iterations == 0 {
            return Err(invalid("iterations", "0; give at least 1"));
        }
        if !(options.tv.is_finite() && options.tv >= 0.0) {
            return Err(invalid(
                "tv",
                format!("{}; give a weight ≥ 0, e.g. 0.0001", options.tv),
            ));
        }
        if options.fit_distance.is_some() && options.solver == Solver::Gs {
            return Err(invalid(
                "distance range",
                "fitting the distance needs the lbfgs solver (its gradient moves the distance \
                 with the object)",
            ));
        }
        let nearest = self.distances.iter().fold(f64::MAX, |m, z| m.min(z.abs()));
        if let Some(r) = options.fit_distance
            && !(r.is_finite() && r > 0.0 && r < nearest)
        {
            return Err(invalid(
                "distance range",
                format!("{r} m; give a positive range below the distance {nearest} m"),
            ));
        }
        let m = self.grid.nx * self.grid.ny;
        let unknowns = match options.model {
            ObjectModel::Phase => 1,
            ObjectModel::Absorbing => 2,
        };
        // The object, four fields, the L-BFGS vectors (10 pairs, and four more).
        let bytes = (m as u64) * (16 * 5 + 8 * unknowns as u64 * 24);
        memory::check_fits(
            bytes,
            || format!("reconstructing a {}×{} object", self.grid.nx, self.grid.ny),
            "crop the hologram or lower the margin",
        )?;
        let data = Data::new(self, intensity, options.fit_gain);
        let object = self.start(&data, options.model)?;
        let mut state = State {
            object,
            phase: None,
            history: Vec::with_capacity(options.iterations + 1),
            shifts: Vec::new(),
        };
        let mut scratch = vec![C64::default(); m];
        state
            .history
            .push(data.misfit(&self.plans, &state.object, &mut scratch)?);
        match options.solver {
            Solver::Gs => {
                self.project(&data, &mut state, options.model, options.iterations, |d| {
                    progress(d, options.iterations)
                })?
            }
            Solver::Lbfgs => self.descend(&data, &mut state, options, |d| {
                progress(d, options.iterations)
            })?,
        }
        let misfit = data.misfit(&self.plans, &state.object, &mut scratch)?;
        let phase = state.unwrapped_phase();
        let phase = self.window().map(|i| phase[i]).collect();
        let amplitude = self.window().map(|i| state.object[i].norm()).collect();
        Ok(Reconstruction {
            phase,
            amplitude,
            distances: self.distances.clone(),
            misfit,
            history: state.history,
            shifts: state.shifts,
        })
    }

    /// The starting object: every hologram's amplitude propagated back (Gabor's
    /// reconstruction, twin image and all), averaged, under the model.
    fn start(&self, data: &Data, model: ObjectModel) -> Result<Vec<C64>> {
        let m = self.grid.nx * self.grid.ny;
        let mut sum = vec![C64::default(); m];
        let mut field = vec![C64::default(); m];
        for (plan, amplitude) in self.plans.iter().zip(data.planes()) {
            field.fill(C64::new(1.0, 0.0));
            for (&i, &b) in data.window.iter().zip(amplitude) {
                field[i] = C64::new(b, 0.0);
            }
            plan.adjoint_in_place(&mut field)?;
            sum.iter_mut().zip(&field).for_each(|(s, f)| *s += f);
        }
        Ok(sum.into_iter().map(|t| project(t, model)).collect())
    }

    /// `cycles` cycles of error reduction, each through every hologram in turn (with several,
    /// the single-beam multiple-intensity reconstruction of Pedrini et al., Opt. Lett. 30,
    /// 833 (2005)).
    fn project(
        &self,
        data: &Data,
        state: &mut State,
        model: ObjectModel,
        cycles: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<()> {
        let mut field = state.object.clone();
        for cycle in 0..cycles {
            let mut misfit = 0.0;
            for (plan, amplitude) in self.plans.iter().zip(data.planes()) {
                field.copy_from_slice(&state.object);
                plan.propagate_in_place(&mut field)?;
                let gain = data.gain(&field, amplitude);
                for (&i, &b) in data.window.iter().zip(amplitude) {
                    let a = field[i].norm();
                    misfit += (gain * a - b) * (gain * a - b);
                    field[i] = if a > 0.0 {
                        field[i] * (b / (gain * a))
                    } else {
                        C64::new(b / gain, 0.0)
                    };
                }
                plan.adjoint_in_place(&mut field)?;
                for (t, f) in state.object.iter_mut().zip(&field) {
                    *t = project(*f, model);
                }
            }
            state.history.push(misfit / data.power);
            progress(cycle + 1);
        }
        Ok(())
    }

    /// L-BFGS on `x = [φ; α; s]` (`α` for an absorbing object, `s` the distances' shift
    /// when it is fitted); stops early when it converges.
    fn descend(
        &mut self,
        data: &Data,
        state: &mut State,
        options: &ReconstructOptions,
        mut progress: impl FnMut(usize),
    ) -> Result<()> {
        let m = state.object.len();
        let absorbing = options.model == ObjectModel::Absorbing;
        let mut x: Vec<f64> = state.unwrapped_phase();
        if absorbing {
            x.extend(state.object.iter().map(|t| t.norm().max(1e-12).ln()));
        }
        let fit = match options.fit_distance {
            Some(range) => {
                x.push(0.0);
                Some(self.scale_shift(data, &state.object, range)?)
            }
            None => None,
        };
        let mut buffers = Buffers {
            object: vec![C64::default(); m],
            field: vec![C64::default(); m],
            residual: vec![C64::default(); m],
            gradient: vec![C64::default(); m],
        };
        let mut error = None;
        // The data misfit and shift of the point evaluated last: the one an iteration
        // accepts, since its line search ends on it.
        let last = std::cell::Cell::new((f64::NAN, 0.0));
        let history = &mut state.history;
        let shifts = &mut state.shifts;
        let model: &Self = self;
        lbfgs(
            &mut x,
            options.iterations,
            |x, g| match model.objective(data, options, fit.as_ref(), x, g, &mut buffers) {
                Ok((value, misfit, shift)) => {
                    last.set((misfit, shift));
                    value
                }
                Err(e) => {
                    error.get_or_insert(e);
                    f64::NAN
                }
            },
            |done| {
                let (misfit, shift) = last.get();
                history.push(misfit);
                if fit.is_some() {
                    shifts.push(shift);
                }
                progress(done);
            },
        );
        if let Some(e) = error {
            return Err(e);
        }
        if let Some(f) = &fit {
            let shift = f.shift(x[x.len() - 1]);
            let moved: Vec<f64> = self.distances.iter().map(|z| z + shift).collect();
            self.set_distances(&moved)?;
        }
        let (phase, alpha) = x.split_at(m);
        for (k, t) in state.object.iter_mut().enumerate() {
            let a = if absorbing { alpha[k].exp() } else { 1.0 };
            *t = C64::from_polar(a, phase[k]);
        }
        state.phase = Some(phase.to_vec());
        Ok(())
    }

    /// The plans of the distances shifted by `shift`.
    fn shifted(&self, shift: f64) -> Result<Vec<Plan<f64>>> {
        self.distances
            .iter()
            .map(|z| self.plan_for(z + shift))
            .collect()
    }

    /// The shift's variable for L-BFGS: scaled so that the misfit's curvature along it
    /// matches that along one pixel's phase (`2/pixels`, measured along the shift by central
    /// differences at a fifth of the range), since L-BFGS starts from one scale for every
    /// variable.
    fn scale_shift(&self, data: &Data, object: &[C64], range: f64) -> Result<Fit> {
        let d = range / 5.0;
        let mut scratch = vec![C64::default(); object.len()];
        let mut at = |shift: f64| -> Result<f64> {
            data.misfit(&self.shifted(shift)?, object, &mut scratch)
        };
        let (lo, mid, hi) = (at(-d)?, at(0.0)?, at(d)?);
        let curvature = (hi - 2.0 * mid + lo) / (d * d);
        let pixel = 2.0 / data.amplitude.len() as f64;
        let sigma = if curvature > 0.0 {
            (pixel / curvature).sqrt().min(range)
        } else {
            range / 10.0
        };
        let dx = self.grid.dx.min(self.grid.dy);
        Ok(Fit {
            range,
            sigma,
            h: 1e-3 * dx * dx / self.wave.wavelength,
        })
    }

    /// The objective of L-BFGS at `x` and its gradient into `g`; also the data misfit alone
    /// and the distances' shift.
    fn objective(
        &self,
        data: &Data,
        options: &ReconstructOptions,
        fit: Option<&Fit>,
        x: &[f64],
        g: &mut [f64],
        buffers: &mut Buffers,
    ) -> Result<(f64, f64, f64)> {
        let Buffers {
            object,
            field,
            residual,
            gradient,
        } = buffers;
        let m = object.len();
        let absorbing = options.model == ObjectModel::Absorbing;
        let (shift, shifted) = match fit {
            Some(f) => {
                let shift = f.shift(x[x.len() - 1]);
                (shift, Some(self.shifted(shift)?))
            }
            None => (0.0, None),
        };
        let plans = shifted.as_deref().unwrap_or(&self.plans);
        for (k, t) in object.iter_mut().enumerate() {
            let alpha = if absorbing { x[m + k] } else { 0.0 };
            *t = C64::from_polar(alpha.exp(), x[k]);
        }
        let mut value = 0.0;
        gradient.fill(C64::default());
        for (plan, amplitude) in plans.iter().zip(data.planes()) {
            field.copy_from_slice(object);
            plan.propagate_in_place(field)?;
            // The misfit's gradient with respect to the field: nothing outside the camera.
            // The gain is the best for this field, so its own derivative is 0 (the envelope
            // theorem) and only the field's remains.
            residual.fill(C64::default());
            let gain = data.gain(field, amplitude);
            for (&i, &b) in data.window.iter().zip(amplitude) {
                let a = field[i].norm();
                let r = gain * a - b;
                value += r * r;
                if a > 0.0 {
                    residual[i] = field[i] * (2.0 * r * gain / (a * data.power));
                }
            }
            plan.adjoint_in_place(residual)?;
            gradient
                .iter_mut()
                .zip(residual.iter())
                .for_each(|(g, r)| *g += r);
        }
        value /= data.power;
        let misfit = value;
        if let Some(f) = fit {
            // `residual` is free again: the scratch of the two misfits.
            let above = data.misfit(&self.shifted(shift + f.h)?, object, residual)?;
            let below = data.misfit(&self.shifted(shift - f.h)?, object, residual)?;
            g[x.len() - 1] = (above - below) / (2.0 * f.h) * f.slope(x[x.len() - 1]);
        }
        for k in 0..m {
            let p = gradient[k].conj() * object[k];
            g[k] = -p.im;
            if absorbing {
                g[m + k] = p.re;
            }
        }
        if options.tv > 0.0 {
            let (nx, ny) = (self.grid.nx, self.grid.ny);
            value += total_variation(&x[..m], nx, ny, options.tv, &mut g[..m]);
            if absorbing {
                value += total_variation(&x[m..2 * m], nx, ny, options.tv, &mut g[m..2 * m]);
            }
        }
        Ok((value, misfit, shift))
    }
}

/// Work buffers of the L-BFGS objective: the object `t`, a propagated field, the misfit's
/// gradient with respect to it, and that with respect to `t`.
struct Buffers {
    object: Vec<C64>,
    field: Vec<C64>,
    residual: Vec<C64>,
    gradient: Vec<C64>,
}

/// The distances' common shift as a variable of L-BFGS: `range·tanh(s·σ/range)`, within the
/// range, and `≈ s·σ` near 0.
struct Fit {
    range: f64,
    sigma: f64,
    /// Step of the central difference along `z`, metres: a thousandth of the depth over which
    /// a pixel-sized detail diffracts (`dx²/λ`), so the difference is exact to ~10⁻⁶.
    h: f64,
}

impl Fit {
    fn shift(&self, s: f64) -> f64 {
        self.range * (s * self.sigma / self.range).tanh()
    }

    /// `d shift / ds`.
    fn slope(&self, s: f64) -> f64 {
        let t = (s * self.sigma / self.range).tanh();
        self.sigma * (1.0 - t * t)
    }
}

/// The measured amplitudes and where they lie in the object's grid.
struct Data {
    window: Vec<usize>,
    /// `√I`, `[hologram, ny, nx]`.
    amplitude: Vec<f64>,
    /// `Σ I`: the misfit's scale.
    power: f64,
    /// Whether each hologram's gain is fitted ([`ReconstructOptions::fit_gain`]).
    fit_gain: bool,
}

impl Data {
    fn new(model: &Inline, intensity: &[f64], fit_gain: bool) -> Self {
        let amplitude: Vec<f64> = intensity.iter().map(|v| v.max(0.0).sqrt()).collect();
        let power = amplitude
            .iter()
            .map(|b| b * b)
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        Self {
            window: model.window().collect(),
            amplitude,
            power,
            fit_gain,
        }
    }

    /// The amplitude gain that fits the field `|y|` on the camera best to a hologram's
    /// amplitudes `b`: `Σ|y|b / Σ|y|²` (1 when the field is dark). It absorbs the illumination's
    /// brightness, which a hologram divided by its mean knows only roughly.
    fn gain(&self, field: &[C64], amplitude: &[f64]) -> f64 {
        if !self.fit_gain {
            return 1.0;
        }
        let (mut yb, mut yy) = (0.0, 0.0);
        for (&i, &b) in self.window.iter().zip(amplitude) {
            let a = field[i].norm();
            yb += a * b;
            yy += a * a;
        }
        if yy > 0.0 && yb > 0.0 { yb / yy } else { 1.0 }
    }

    /// Each hologram's amplitudes.
    fn planes(&self) -> std::slice::ChunksExact<'_, f64> {
        self.amplitude.chunks_exact(self.window.len())
    }

    /// The relative amplitude misfit of the object `t` under `plans` (one a hologram).
    fn misfit(&self, plans: &[Plan<f64>], object: &[C64], field: &mut [C64]) -> Result<f64> {
        let mut sum = 0.0;
        for (plan, amplitude) in plans.iter().zip(self.planes()) {
            field.copy_from_slice(object);
            plan.propagate_in_place(field)?;
            let gain = self.gain(field, amplitude);
            sum += self
                .window
                .iter()
                .zip(amplitude)
                .map(|(&i, &b)| (gain * field[i].norm() - b).powi(2))
                .sum::<f64>();
        }
        Ok(sum / self.power)
    }
}

/// The object as it is being reconstructed.
struct State {
    /// The transmission `t`.
    object: Vec<C64>,
    /// Its phase as L-BFGS found it, continuous (`None`: `t`'s argument).
    phase: Option<Vec<f64>>,
    history: Vec<f64>,
    shifts: Vec<f64>,
}

impl State {
    fn unwrapped_phase(&self) -> Vec<f64> {
        self.phase
            .clone()
            .unwrap_or_else(|| self.object.iter().map(|t| t.arg()).collect())
    }
}

/// `t` on the object model: unit modulus, or at most 1.
fn project(t: C64, model: ObjectModel) -> C64 {
    let a = t.norm();
    match model {
        ObjectModel::Phase if a > 0.0 => t / a,
        ObjectModel::Phase => C64::new(1.0, 0.0),
        ObjectModel::Absorbing if a > 1.0 => t / a,
        ObjectModel::Absorbing => t,
    }
}

/// `τ` times the mean smoothed total variation of `v` (`[ny, nx]`, forward differences,
/// none across the far edges), its gradient added to `g`.
fn total_variation(v: &[f64], nx: usize, ny: usize, tau: f64, g: &mut [f64]) -> f64 {
    let w = tau / (nx * ny) as f64;
    let mut sum = 0.0;
    for r in 0..ny {
        for c in 0..nx {
            let k = r * nx + c;
            let dx = if c + 1 < nx { v[k + 1] - v[k] } else { 0.0 };
            let dy = if r + 1 < ny { v[k + nx] - v[k] } else { 0.0 };
            let s = (dx * dx + dy * dy + TV_EPSILON * TV_EPSILON).sqrt();
            sum += s;
            if c + 1 < nx {
                g[k + 1] += w * dx / s;
                g[k] -= w * dx / s;
            }
            if r + 1 < ny {
                g[k + nx] += w * dy / s;
                g[k] -= w * dy / s;
            }
        }
    }
    w * sum
}

/// The propagation of the model over `distance`: the band-limited angular spectrum, 2×
/// padding. The band limit removes what would leave the padded window (and so never reach the
/// camera); at long distances that is most of the spectrum, which the default check refuses
/// for a propagation but is the physics of a finite camera here.
pub fn propagation(distance: f64) -> Propagation {
    Propagation::new(distance)
        .with_method(Method::BandLimitedAsm)
        .with_check(false)
}

/// Compares a reconstructed phase with the true one (both row-major `[rows, cols]`,
/// radians): the constant offset a reconstruction cannot know is removed (the circular mean
/// of the difference), the difference wrapped into `(−π, π]`, and PSNR and SSIM
/// ([`crate::metrics`]) taken over the true phase's span.
pub fn phase_quality(
    estimate: &[f64],
    truth: &[f64],
    rows: usize,
    cols: usize,
) -> Result<PhaseQuality> {
    if estimate.len() != rows * cols || truth.len() != rows * cols {
        return Err(OpticsError::Shape(format!(
            "phases of {} and {} values do not have the shape {rows}×{cols}",
            estimate.len(),
            truth.len()
        )));
    }
    let (lo, hi) = truth
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return Err(invalid(
            "true phase",
            "is flat (or not finite); there is no span to measure the error against",
        ));
    }
    let offset = estimate
        .iter()
        .zip(truth)
        .map(|(e, t)| C64::from_polar(1.0, e - t))
        .sum::<C64>()
        .arg();
    let wrap = |d: f64| d - std::f64::consts::TAU * (d / std::f64::consts::TAU).round();
    let aligned: Vec<f64> = estimate
        .iter()
        .zip(truth)
        .map(|(e, t)| t + wrap(e - t - offset))
        .collect();
    let rms = (aligned
        .iter()
        .zip(truth)
        .map(|(a, t)| (a - t) * (a - t))
        .sum::<f64>()
        / truth.len() as f64)
        .sqrt();
    Ok(PhaseQuality {
        psnr: psnr(&aligned, truth, rows, cols, hi - lo)?,
        ssim: ssim(&aligned, truth, rows, cols, hi - lo)?,
        rms,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera of `n`² pixels of 2 µm, 532 nm light, 5 mm: a few Fresnel zones per feature.
    pub(super) fn setup(n: usize, margin: usize, distances: &[f64]) -> Inline {
        Inline::new(
            Grid::square(n, 2e-6).unwrap(),
            Wave::vacuum(532e-9).unwrap(),
            distances,
            (margin, margin),
        )
        .unwrap()
    }

    /// A smooth phase object of a few blobs (peak `peak` radians) on `grid`, and, when
    /// `absorbing`, an amplitude dip under one of them.
    fn phantom(grid: &Grid, peak: f64, absorbing: bool) -> Vec<C64> {
        let (nx, ny) = (grid.nx as f64, grid.ny as f64);
        let blobs = [
            (0.35, 0.4, 0.08, 1.0),
            (0.6, 0.55, 0.12, 0.7),
            (0.45, 0.7, 0.05, -0.6),
        ];
        (0..grid.nx * grid.ny)
            .map(|k| {
                let (x, y) = ((k % grid.nx) as f64 / nx, (k / grid.nx) as f64 / ny);
                let mut phi = 0.0;
                for (cx, cy, w, a) in blobs {
                    phi += a * (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * w * w)).exp();
                }
                let amp = if absorbing {
                    1.0 - 0.3 * (-((x - 0.6).powi(2) + (y - 0.55).powi(2)) / 0.01).exp()
                } else {
                    1.0
                };
                C64::from_polar(amp, peak * phi)
            })
            .collect()
    }

    fn window_of(model: &Inline, v: &[C64]) -> Vec<C64> {
        model.window().map(|i| v[i]).collect()
    }

    fn quality(model: &Inline, r: &Reconstruction, truth: &[C64]) -> PhaseQuality {
        let true_phase: Vec<f64> = window_of(model, truth).iter().map(|t| t.arg()).collect();
        let c = model.camera();
        phase_quality(&r.phase, &true_phase, c.ny, c.nx).unwrap()
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let model = setup(20, 4, &[5e-3, 6e-3]);
        let truth = phantom(&model.grid(), 1.5, true);
        let holo = model.hologram(&truth).unwrap();
        let data = Data::new(&model, &holo, true);
        let options = ReconstructOptions {
            model: ObjectModel::Absorbing,
            tv: 1e-2,
            fit_distance: Some(1e-3),
            ..Default::default()
        };
        let m = model.grid().nx * model.grid().ny;
        let fit = Fit {
            range: 1e-3,
            sigma: 2e-4,
            h: 1e-3 * 4e-12 / 532e-9,
        };
        let mut rng = crate::rng::Rng::new(5);
        let x: Vec<f64> = (0..2 * m + 1).map(|_| 0.3 * rng.normal()).collect();
        let mut buffers = Buffers {
            object: vec![C64::default(); m],
            field: vec![C64::default(); m],
            residual: vec![C64::default(); m],
            gradient: vec![C64::default(); m],
        };
        let mut g = vec![0.0; x.len()];
        let mut scratch = g.clone();
        model
            .objective(&data, &options, Some(&fit), &x, &mut g, &mut buffers)
            .unwrap();
        for k in [0, 37, m / 2, m + 3, m + m / 2 + 5, 2 * m - 1, 2 * m] {
            let h = 1e-6;
            let mut at = |v: f64| {
                let mut y = x.clone();
                y[k] = v;
                let mut b = Buffers {
                    object: vec![C64::default(); m],
                    field: vec![C64::default(); m],
                    residual: vec![C64::default(); m],
                    gradient: vec![C64::default(); m],
                };
                model
                    .objective(&data, &options, Some(&fit), &y, &mut scratch, &mut b)
                    .unwrap()
                    .0
            };
            let fd = (at(x[k] + h) - at(x[k] - h)) / (2.0 * h);
            let scale = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert!(
                (fd - g[k]).abs() <= 1e-5 * scale,
                "variable {k}: analytic {} against {fd}",
                g[k]
            );
        }
    }

    #[test]
    fn lbfgs_recovers_a_phase_object_where_projections_stall() {
        let mut model = setup(96, 16, &[5e-3]);
        let truth = phantom(&model.grid(), 2.0, false);
        let holo = model.hologram(&truth).unwrap();
        let mut run = |solver| {
            let options = ReconstructOptions {
                solver,
                iterations: 200,
                ..Default::default()
            };
            let r = model.reconstruct(&holo, &options, |_, _| {}).unwrap();
            assert_eq!(r.history.len(), 201);
            assert!(r.misfit < r.history[0]);
            r
        };
        let (lbfgs, gs) = (run(Solver::Lbfgs), run(Solver::Gs));
        let (q, q_gs) = (
            quality(&model, &lbfgs, &truth),
            quality(&model, &gs, &truth),
        );
        // Measured: misfit 2.5e-7, 35.7 dB, 0.049 rad RMS; projections 13.2 dB, 0.66 rad.
        assert!(lbfgs.misfit < 1e-6, "misfit {}", lbfgs.misfit);
        assert!(q.psnr > 32.0 && q.rms < 0.07, "{q:?}");
        assert!(q_gs.psnr < q.psnr - 10.0, "{q_gs:?} against {q:?}");
        assert!(lbfgs.amplitude.iter().all(|a| (a - 1.0).abs() < 1e-12));
    }

    #[test]
    fn several_heights_resolve_an_absorbing_object() {
        let run = |distances: &[f64]| {
            let mut model = setup(96, 16, distances);
            let truth = phantom(&model.grid(), 2.0, true);
            let holo = model.hologram(&truth).unwrap();
            let options = ReconstructOptions {
                model: ObjectModel::Absorbing,
                iterations: 300,
                ..Default::default()
            };
            let r = model.reconstruct(&holo, &options, |_, _| {}).unwrap();
            let q = quality(&model, &r, &truth);
            let amplitude = window_of(&model, &truth);
            let rms = (r
                .amplitude
                .iter()
                .zip(&amplitude)
                .map(|(a, t)| (a - t.norm()).powi(2))
                .sum::<f64>()
                / amplitude.len() as f64)
                .sqrt();
            (q, rms)
        };
        // Measured: one hologram 21.6 dB; three 34.1 dB.
        let (one, one_amplitude) = run(&[5e-3]);
        let (three, three_amplitude) = run(&[5e-3, 5.5e-3, 6e-3]);
        assert!(three.psnr > one.psnr + 8.0, "{three:?} against {one:?}");
        assert!(three.rms < 0.08, "{three:?}");
        assert!(
            three_amplitude < 0.5 * one_amplitude,
            "amplitude RMS error {three_amplitude} against {one_amplitude}"
        );
    }

    #[test]
    fn the_distance_is_fitted() {
        let distances = [5e-3, 5.5e-3, 6e-3];
        let mut model = setup(96, 16, &distances);
        let truth = phantom(&model.grid(), 2.0, false);
        let holo = model.hologram(&truth).unwrap();
        let off: Vec<f64> = distances.iter().map(|z| z + 0.25e-3).collect();
        model.set_distances(&off).unwrap();
        let options = ReconstructOptions {
            iterations: 200,
            fit_distance: Some(1e-3),
            ..Default::default()
        };
        let fitted = model.reconstruct(&holo, &options, |_, _| {}).unwrap();
        let error = fitted.distances[0] - 5e-3;
        assert!(error.abs() < 25e-6, "{:?}", fitted.distances);
        assert!((fitted.distances[2] - fitted.distances[0] - 1e-3).abs() < 1e-12);
        assert_eq!(fitted.shifts.len(), fitted.history.len() - 1);
        assert_eq!(model.distances(), &fitted.distances[..]);
        // Without the fit, the wrong distance leaves the object wrong.
        model.set_distances(&off).unwrap();
        let fixed = model
            .reconstruct(
                &holo,
                &ReconstructOptions {
                    iterations: 200,
                    ..Default::default()
                },
                |_, _| {},
            )
            .unwrap();
        let (q, q_fixed) = (
            quality(&model, &fitted, &truth),
            quality(&model, &fixed, &truth),
        );
        assert!(q.psnr > q_fixed.psnr + 6.0, "{q:?} against {q_fixed:?}");
    }

    #[test]
    fn phase_quality_ignores_offsets_and_wraps() {
        let (rows, cols) = (24, 20);
        let truth: Vec<f64> = (0..rows * cols)
            .map(|k| (k as f64 * 0.37).sin() * 2.0)
            .collect();
        let estimate: Vec<f64> = truth
            .iter()
            .enumerate()
            .map(|(k, t)| {
                t + 1.3
                    + if k % 3 == 0 {
                        std::f64::consts::TAU
                    } else {
                        0.0
                    }
            })
            .collect();
        let q = phase_quality(&estimate, &truth, rows, cols).unwrap();
        assert!(q.rms < 1e-12 && (q.offset - 1.3).abs() < 1e-12, "{q:?}");
        assert!(q.psnr > 200.0 && (q.ssim - 1.0).abs() < 1e-12, "{q:?}");
        let noisy: Vec<f64> = truth.iter().map(|t| t + 0.1).collect::<Vec<_>>();
        let mut rng = crate::rng::Rng::new(1);
        let noisy: Vec<f64> = noisy.iter().map(|t| t + 0.2 * rng.normal()).collect();
        let q = phase_quality(&noisy, &truth, rows, cols).unwrap();
        // PSNR of an RMS error e over the span 4: 20·log10(4/e).
        assert!((q.psnr - 20.0 * (4.0f64 * 0.999).log10() + 20.0 * q.rms.log10()).abs() < 0.1);
        assert!(phase_quality(&truth, &vec![0.5; rows * cols], rows, cols).is_err());
        assert!(phase_quality(&truth, &truth[1..], rows, cols).is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        let grid = Grid::square(16, 2e-6).unwrap();
        let wave = Wave::vacuum(532e-9).unwrap();
        for distances in [&[][..], &[0.0], &[f64::NAN], &[1e-3, f64::INFINITY]] {
            assert!(
                Inline::new(grid, wave, distances, (0, 0)).is_err(),
                "{distances:?}"
            );
        }
        assert!(Inline::new(grid, wave, &[1e-3], (65, 0)).is_err());
        let mut model = Inline::new(grid, wave, &[1e-3], (2, 2)).unwrap();
        let ok = vec![1.0; 256];
        let run = |model: &mut Inline, data: &[f64], options: ReconstructOptions| {
            model.reconstruct(data, &options, |_, _| {}).map(|_| ())
        };
        let base = ReconstructOptions::default();
        assert!(run(&mut model, &ok[1..], base).is_err());
        let mut nan = ok.clone();
        nan[3] = f64::NAN;
        assert!(run(&mut model, &nan, base).is_err());
        for options in [
            ReconstructOptions {
                iterations: 0,
                ..base
            },
            ReconstructOptions { tv: -1.0, ..base },
            ReconstructOptions {
                fit_distance: Some(2e-3),
                ..base
            },
            ReconstructOptions {
                fit_distance: Some(0.0),
                ..base
            },
            ReconstructOptions {
                solver: Solver::Gs,
                fit_distance: Some(1e-4),
                ..base
            },
        ] {
            assert!(run(&mut model, &ok, options).is_err(), "{options:?}");
        }
        assert!(model.hologram(&[C64::default(); 3]).is_err());
        assert!("amplitude".parse::<ObjectModel>().is_err());
        assert!("gd".parse::<Solver>().is_err());
        for s in ["phase", "absorbing"] {
            assert_eq!(s.parse::<ObjectModel>().unwrap().name(), s);
        }
        for s in ["gs", "lbfgs"] {
            assert_eq!(s.parse::<Solver>().unwrap().name(), s);
        }
    }
}
