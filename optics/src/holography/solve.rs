//! The hologram design algorithms: each iteration propagates the SLM's light to the target
//! plane, imposes the target there, and carries the result back with the exact adjoint.

use std::f64::consts::TAU;
use std::fmt;
use std::str::FromStr;

use num_complex::Complex;
use rayon::prelude::*;

use super::{Geometry, Quality, Setup, Target};
use crate::error::{OpticsError, Result, invalid};
use crate::field::Real;
use crate::lut::GrayMap;
use crate::rng::Rng;
use crate::system::wrap_phase;

/// A hologram design algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Gerchberg–Saxton (Gerchberg & Saxton, Optik 35, 237 (1972)): keep the target plane's
    /// phase, impose the target amplitude (zero outside the signal), keep the SLM plane's phase.
    Gs,
    /// Weighted Gerchberg–Saxton (Di Leonardo, Ianni & Ruocco, Opt. Express 15, 1913 (2007)):
    /// GS whose target amplitudes are reweighted every iteration by `mean(r)/r`, `r` each
    /// signal pixel's amplitude over its target — the standard for uniform spot arrays. With
    /// [`Options::fix_phase_after`] the target plane's phase stops changing after that many
    /// iterations while the weights go on (Kim et al., Opt. Lett. 44, 3178 (2019)).
    Wgs,
    /// Mixed-region amplitude freedom (Pasienski & DeMarco, Opt. Express 16, 2176 (2008)): the
    /// target amplitude (scaled to the light's power) times [`Options::mix`] in the signal
    /// region, the light as it is times `1 − mix` outside, so the noise goes outside the image.
    Mraf,
    /// Gradient descent: Adam ([`Options::learning_rate`] rad) on the SLM phase, minimising
    /// `Σ (|u| − a)²·dA` over the signal region, `a` the target amplitude carrying all the
    /// incident power — GS's objective, restricted to the signal region as in MRAF, so light
    /// outside it costs nothing but efficiency. The gradient is exact (Wirtinger calculus
    /// through the plan's adjoint).
    Gd,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Gs,
        Algorithm::Wgs,
        Algorithm::Mraf,
        Algorithm::Gd,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gs => "gs",
            Algorithm::Wgs => "wgs",
            Algorithm::Mraf => "mraf",
            Algorithm::Gd => "gd",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = OpticsError;
    fn from_str(s: &str) -> Result<Self> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                OpticsError::Parse(format!(
                    "unknown hologram algorithm '{s}'; use one of gs, wgs, mraf, gd"
                ))
            })
    }
}

/// Where the iterations start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Initial {
    /// [`Initial::Guess`] for images, [`Initial::Random`] for spots.
    #[default]
    Auto,
    /// Uniformly random phases (seeded).
    Random,
    /// A tilt that sends the beam to the target's centroid and a lens that spreads it over the
    /// target's extent: a smooth start without the optical vortices a random one leaves in an
    /// image, which GS-type iterations cannot remove (Pasienski & DeMarco 2008).
    Guess,
}

/// Settings of [`design`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Iterations with a continuous phase.
    pub iterations: usize,
    /// The initial phase.
    pub initial: Initial,
    /// Seed of the random initial phase.
    pub seed: u64,
    /// WGS: freeze the target plane's phase after this many iterations (`None`: never).
    pub fix_phase_after: Option<usize>,
    /// MRAF: the share `m` of the target in the signal region (0 < m < 1).
    pub mix: f64,
    /// GD: Adam's step size, radians.
    pub learning_rate: f64,
    /// The SLM's gray levels: the design is quantised to them, and the last
    /// [`Options::quantised_iterations`] iterations run through them.
    pub quantise: Option<GrayMap>,
    /// Iterations run with the quantised phase after the continuous ones (GD: the forward pass
    /// shows the quantised phase and the gradient updates the continuous one).
    pub quantised_iterations: usize,
    /// The SLM's correction pattern (radians per pixel, row-major, row 0 at the most negative
    /// y), as makers ship them and wavefront calibrations measure them: added to the phase
    /// before it becomes gray levels, the panel's own aberration taken to be its negative, so
    /// the light sees the design. Needs [`Options::quantise`].
    pub correction: Option<Vec<f64>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Wgs,
            iterations: 100,
            initial: Initial::Auto,
            seed: 1,
            fix_phase_after: None,
            mix: 0.4,
            learning_rate: 0.1,
            quantise: None,
            quantised_iterations: 10,
            correction: None,
        }
    }
}

/// What one iteration measured (of the phase it started from).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Iteration, from 0.
    pub iteration: usize,
    /// Whether the phase was quantised.
    pub quantised: bool,
    /// [`Quality::efficiency`].
    pub efficiency: f64,
    /// [`Quality::error`].
    pub error: f64,
}

/// A designed hologram.
#[derive(Debug, Clone)]
pub struct Design {
    /// The continuous phase, radians in `[0, 2π)`, one per SLM pixel (row-major, row 0 at the
    /// most negative y).
    pub phase: Vec<f64>,
    /// The gray levels to display, when the options gave an SLM's gray levels (the correction
    /// pattern, if any, added).
    pub gray: Option<Vec<u16>>,
    /// Quality of what is displayed (the gray levels, or the continuous phase).
    pub quality: Quality,
    /// Quality of the continuous phase.
    pub continuous: Quality,
    /// Target-plane intensity of what is displayed, unit incident power: every one of the
    /// target's [`planes`](Target::planes), one after another.
    pub intensity: Vec<f64>,
    /// Every iteration's measurement.
    pub history: Vec<Step>,
}

fn zero<T: Real>() -> Complex<T> {
    Complex::new(T::zero(), T::zero())
}

fn unit<T: Real>(z: Complex<T>) -> Complex<T> {
    let n = z.norm();
    if n > T::zero() {
        z / n
    } else {
        Complex::new(T::one(), T::zero())
    }
}

/// The SLM's states: the transmission each gray level shows, and the correction pattern added
/// to every pixel's phase (whose negative the light sees as the panel's own aberration).
struct States {
    map: GrayMap,
    shows: Vec<Complex<f64>>,
    /// Per pixel: the correction `c` and `exp(−ic)`.
    correction: Option<Vec<(f64, Complex<f64>)>>,
}

impl States {
    fn new(map: &GrayMap, correction: Option<&[f64]>) -> Self {
        // Every gray level the map can return (at most 16 bits); unlisted ones show nothing.
        let shows = (0..=u16::MAX)
            .map(|g| {
                map.shows(g)
                    .map_or(Complex::new(0.0, 0.0), |(p, a)| Complex::from_polar(a, p))
            })
            .collect();
        Self {
            map: map.clone(),
            shows,
            correction: correction.map(|c| {
                c.iter()
                    .map(|&c| (c, Complex::from_polar(1.0, -c)))
                    .collect()
            }),
        }
    }

    /// The gray level pixel `j` shows for the design phase `phase`, and the transmission the
    /// light then sees.
    fn transmission(&self, j: usize, phase: f64) -> (u16, Complex<f64>) {
        match &self.correction {
            None => {
                let g = self.map.gray(phase);
                (g, self.shows[g as usize])
            }
            Some(c) => {
                let g = self.map.gray(phase + c[j].0);
                (g, self.shows[g as usize] * c[j].1)
            }
        }
    }

    /// The transmission the light sees where pixel `j` shows gray level `g`.
    fn shown(&self, j: usize, g: u16) -> Complex<f64> {
        let t = self.shows[g as usize];
        self.correction.as_ref().map_or(t, |c| t * c[j].1)
    }
}

/// The state of one run: the field in every target plane, and back on the SLM.
struct Run<'a, T: Real> {
    setup: &'a Setup<T>,
    target: &'a Target,
    /// The window, one per target plane.
    bufs: Vec<Vec<Complex<T>>>,
    /// Per target plane: its defocus factor on every SLM pixel (`None` for the focal plane).
    defocus: Vec<Option<Vec<Complex<T>>>>,
    /// The field carried back onto the SLM pixels, summed over the planes.
    slm: Vec<Complex<T>>,
    /// Window index of every SLM pixel.
    pixels: Vec<usize>,
    /// Target amplitude on every signal pixel, as T.
    amplitude: Vec<T>,
}

impl<'a, T: Real> Run<'a, T> {
    fn new(setup: &'a Setup<T>, target: &'a Target) -> Result<Self> {
        let defocus = target
            .planes
            .iter()
            .map(|&dz| (dz != 0.0).then(|| setup.defocus(dz)).transpose())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            setup,
            target,
            bufs: vec![vec![zero(); setup.window.len()]; target.planes.len()],
            defocus,
            slm: vec![zero(); setup.slm.len()],
            pixels: setup.slm_pixels().collect(),
            amplitude: target.amplitude.iter().map(|&a| T::of(a)).collect(),
        })
    }

    /// Propagates `transmission` to every target plane and measures the light there.
    fn forward(&mut self, transmission: &[Complex<f64>]) -> Result<(f64, f64)> {
        for (buf, q) in self.bufs.iter_mut().zip(&self.defocus) {
            match q {
                None => self
                    .setup
                    .load(buf, |j| crate::field::cplx(transmission[j])),
                Some(q) => self
                    .setup
                    .load(buf, |j| crate::field::cplx::<T>(transmission[j]) * q[j]),
            }
            self.setup.forward(buf)?;
        }
        Ok(self.measure())
    }

    /// Efficiency and error of the fields in `bufs`.
    fn measure(&self) -> (f64, f64) {
        let q = self
            .target
            .measure(|p, k| self.bufs[p][k].norm_sqr().f64(), false);
        q.map_or((0.0, 1.0), |q| (q.efficiency, q.error))
    }

    /// The field on signal pixel `j`.
    fn signal(&self, j: usize) -> Complex<T> {
        self.bufs[self.target.plane_of[j]][self.target.signal[j]]
    }

    /// Sets signal pixel `j`.
    fn set_signal(&mut self, j: usize, v: Complex<T>) {
        self.bufs[self.target.plane_of[j]][self.target.signal[j]] = v;
    }

    /// Carries every plane back to the SLM and sums them there (each through its defocus).
    fn back(&mut self) -> Result<()> {
        for buf in &mut self.bufs {
            self.setup.adjoint(buf)?;
        }
        let (bufs, defocus, pixels) = (&self.bufs, &self.defocus, &self.pixels);
        self.slm.par_iter_mut().enumerate().for_each(|(j, s)| {
            *s = bufs
                .iter()
                .zip(defocus)
                .map(|(b, q)| match q {
                    None => b[pixels[j]],
                    Some(q) => b[pixels[j]] * q[j].conj(),
                })
                .fold(zero(), |a, b| a + b);
        });
        Ok(())
    }

    /// The field on SLM pixel `j` (after [`Run::back`]).
    fn at_slm(&self, j: usize) -> Complex<T> {
        self.slm[j]
    }

    /// The GS-type SLM constraint: every pixel takes the phase of the field carried back onto
    /// it (after [`Run::back`]), in `[0, 2π)`; a pixel no light came back to keeps its own.
    fn take_phases(&self, phase: &mut [f64]) {
        phase.par_iter_mut().enumerate().for_each(|(j, p)| {
            let w = self.at_slm(j);
            if w.norm_sqr() > T::zero() {
                *p = wrap_phase(w.im.f64().atan2(w.re.f64()));
            }
        });
    }
}

/// Designs a hologram of `target` for `setup` (see the [module docs](super)); `observer` sees
/// every iteration's [`Step`].
///
/// Errors: options out of range (no iterations, `mix` outside (0, 1), a non-positive learning
/// rate), and a target made for another setup.
pub fn design<T: Real>(
    setup: &Setup<T>,
    target: &Target,
    options: &Options,
    mut observer: impl FnMut(&Step),
) -> Result<Design> {
    if target.grid != setup.target_grid() {
        return Err(OpticsError::Shape(
            "the target was made for another setup; build it from this one".into(),
        ));
    }
    if options.iterations + options.quantised_iterations == 0 {
        return Err(invalid("iterations", "0; give at least one iteration"));
    }
    if !(options.mix > 0.0 && options.mix < 1.0) {
        return Err(invalid(
            "mix",
            format!("{}; give a share between 0 and 1, e.g. 0.4", options.mix),
        ));
    }
    if !(options.learning_rate.is_finite() && options.learning_rate > 0.0) {
        return Err(invalid(
            "learning rate",
            format!(
                "{}; give a positive step in radians, e.g. 0.1",
                options.learning_rate
            ),
        ));
    }
    let n = setup.slm.len();
    if let Some(c) = &options.correction {
        if c.len() != n || c.iter().any(|v| !v.is_finite()) {
            return Err(invalid(
                "correction",
                format!(
                    "{} values for an SLM of {} pixels; give one finite phase (radians) per pixel",
                    c.len(),
                    n
                ),
            ));
        }
        if options.quantise.is_none() {
            return Err(invalid(
                "correction",
                "is added to the gray levels shown; give the SLM's gray levels (quantise)",
            ));
        }
    }
    let mut phase = initial_phase(setup, target, options);
    let states = options
        .quantise
        .as_ref()
        .map(|m| States::new(m, options.correction.as_deref()));
    let mut run = Run::new(setup, target)?;
    let total = options.iterations
        + if states.is_some() {
            options.quantised_iterations
        } else {
            0
        };
    let mut history = Vec::with_capacity(total);
    // WGS: weights and (once fixed) target-plane phases of the signal pixels.
    let mut weights = vec![1.0f64; target.signal.len()];
    let mut fixed: Option<Vec<Complex<T>>> = None;
    // GD: Adam's moments.
    let (mut m1, mut m2) = (vec![0.0f64; n], vec![0.0f64; n]);
    let mut transmission = vec![Complex::new(0.0, 0.0); n];
    for it in 0..total {
        let quantised = it >= options.iterations;
        match (&states, quantised) {
            (Some(s), true) => transmission
                .par_iter_mut()
                .zip(&phase)
                .enumerate()
                .for_each(|(j, (t, &p))| *t = s.transmission(j, p).1),
            _ => transmission
                .par_iter_mut()
                .zip(&phase)
                .for_each(|(t, &p)| *t = Complex::from_polar(1.0, p)),
        }
        let (efficiency, error) = run.forward(&transmission)?;
        let step = Step {
            iteration: it,
            quantised,
            efficiency,
            error,
        };
        observer(&step);
        history.push(step);
        match options.algorithm {
            Algorithm::Gd => {
                gradient_into(&mut run);
                run.back()?;
                let beam = setup.beam();
                let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-12);
                let t = (it + 1) as i32;
                let lr = options.learning_rate * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
                let run = &run;
                let transmission = &transmission;
                phase
                    .par_iter_mut()
                    .zip(m1.par_iter_mut().zip(m2.par_iter_mut()))
                    .enumerate()
                    .for_each(|(j, (p, (m1, m2)))| {
                        let g = phase_gradient(transmission[j], beam[j], run.at_slm(j));
                        *m1 = b1 * *m1 + (1.0 - b1) * g;
                        *m2 = b2 * *m2 + (1.0 - b2) * g * g;
                        *p -= lr * *m1 / (m2.sqrt() + eps);
                    });
            }
            algorithm => {
                constrain(&mut run, algorithm, options, it, &mut weights, &mut fixed);
                run.back()?;
                run.take_phases(&mut phase);
            }
        }
    }
    for p in &mut phase {
        *p = wrap_phase(*p);
    }
    let continuous: Vec<Complex<f64>> =
        phase.iter().map(|&p| Complex::from_polar(1.0, p)).collect();
    let (cq, ci) = simulate(setup, target, &continuous)?;
    let (gray, quality, intensity) = match &states {
        None => (None, cq, ci),
        Some(s) => {
            let (g, t): (Vec<u16>, Vec<Complex<f64>>) = phase
                .iter()
                .enumerate()
                .map(|(j, &p)| s.transmission(j, p))
                .unzip();
            let (q, i) = simulate(setup, target, &t)?;
            (Some(g), q, i)
        }
    };
    Ok(Design {
        phase,
        gray,
        quality,
        continuous: cq,
        intensity,
        history,
    })
}

/// The quality and the intensity in every target plane of the SLM transmission `t`.
fn simulate<T: Real>(
    setup: &Setup<T>,
    target: &Target,
    t: &[Complex<f64>],
) -> Result<(Quality, Vec<f64>)> {
    let tr: Vec<Complex<T>> = t.iter().map(|&z| crate::field::cplx(z)).collect();
    let mut intensity = Vec::with_capacity(target.planes.len() * target.grid.len());
    for &dz in &target.planes {
        let u = setup.field_at(&tr, dz)?;
        intensity.extend(u.iter().map(|z| z.norm_sqr().f64()));
    }
    Ok((target.quality(&intensity)?, intensity))
}

/// Simulates gray levels already made (by photonflow or any other tool) on `setup`, through
/// the SLM's gray levels and correction of `options`, against `target`: a [`Design`] whose
/// `phase` is the phase each pixel shows, whose two qualities are equal and whose history is
/// empty.
///
/// Errors: options without gray levels, a wrong number of gray levels, and gray levels the
/// SLM does not show.
pub fn evaluate<T: Real>(
    setup: &Setup<T>,
    target: &Target,
    options: &Options,
    gray: &[u16],
) -> Result<Design> {
    let Some(map) = &options.quantise else {
        return Err(invalid(
            "options",
            "give the SLM's gray levels (options.quantise) to show gray levels",
        ));
    };
    if gray.len() != setup.slm.len() {
        return Err(OpticsError::Shape(format!(
            "{} gray levels for an SLM of {} pixels",
            gray.len(),
            setup.slm.len()
        )));
    }
    if let Some(g) = gray.iter().find(|&&g| map.shows(g).is_none()) {
        return Err(invalid(
            "gray levels",
            format!("{g} is not a level this SLM shows; check its bits and table"),
        ));
    }
    let states = States::new(map, options.correction.as_deref());
    let t: Vec<Complex<f64>> = gray
        .iter()
        .enumerate()
        .map(|(j, &g)| states.shown(j, g))
        .collect();
    let (quality, intensity) = simulate(setup, target, &t)?;
    Ok(Design {
        phase: gray
            .iter()
            .map(|&g| map.shows(g).map_or(0.0, |(p, _)| wrap_phase(p)))
            .collect(),
        gray: Some(gray.to_vec()),
        quality,
        continuous: quality,
        intensity,
        history: Vec::new(),
    })
}

/// The phase the iterations start from (see [`Initial`]).
fn initial_phase<T: Real>(setup: &Setup<T>, target: &Target, options: &Options) -> Vec<f64> {
    let guess = match options.initial {
        Initial::Auto => !target.is_spots(),
        Initial::Random => false,
        Initial::Guess => true,
    };
    if !guess {
        let mut rng = Rng::new(options.seed);
        return (0..setup.slm.len()).map(|_| rng.uniform() * TAU).collect();
    }
    // The target's centroid and radius (metres), weighted by its intensity.
    let g = target.grid;
    let at = |i: usize| {
        (
            (i % g.nx) as f64 - (g.nx / 2) as f64,
            (i / g.nx) as f64 - (g.ny / 2) as f64,
        )
    };
    let (mut cx, mut cy) = (0.0, 0.0);
    for (&i, a) in target.signal.iter().zip(&target.amplitude) {
        let (x, y) = at(i);
        cx += a * a * x * g.dx;
        cy += a * a * y * g.dy;
    }
    let radius = match target.block() {
        Some((rows, cols, _, _)) => 0.5 * (rows as f64 * g.dy).max(cols as f64 * g.dx),
        None => target
            .signal
            .iter()
            .map(|&i| {
                let (x, y) = at(i);
                (x * g.dx - cx).hypot(y * g.dy - cy)
            })
            .fold(0.0, f64::max),
    };
    let beam = setup.beam_radius;
    // Direction sines towards the centroid, and the lens's curvature 1/F.
    let (z, curvature) = match setup.geometry {
        Geometry::Fourier { focal } => (focal, radius / (beam * focal)),
        Geometry::Fresnel { distance, .. } => (distance, (1.0 - radius / beam) / distance),
    };
    let k = setup.carrier.wave().k();
    let (sx, sy) = (cx / z, cy / z);
    let (xs, ys) = (setup.slm.x(), setup.slm.y());
    ys.iter()
        .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
        .map(|(x, y)| wrap_phase(k * (sx * x + sy * y) - 0.5 * k * curvature * (x * x + y * y)))
        .collect()
}

/// Imposes the target on the target-plane fields in `run.bufs` for the GS family.
fn constrain<T: Real>(
    run: &mut Run<'_, T>,
    algorithm: Algorithm,
    options: &Options,
    it: usize,
    weights: &mut [f64],
    fixed: &mut Option<Vec<Complex<T>>>,
) {
    let signal = &run.target.signal;
    let setup = run.setup;
    // The light on the signal pixels; then the windows hold only what the pixels modulate
    // (with finite pixels, the zero order of the gaps is taken out: the target is met by the
    // whole field on the signal, and the zero order is left alone elsewhere).
    let u: Vec<Complex<T>> = (0..signal.len()).map(|j| run.signal(j)).collect();
    setup.remove_zero_order(&mut run.bufs[0]);
    match algorithm {
        Algorithm::Gs | Algorithm::Wgs => {
            if algorithm == Algorithm::Wgs {
                // r = |u|/a, weights ×= mean(r)/r.
                // Pixels whose target is dark keep amplitude 0 and take no part.
                let r: Vec<Option<f64>> = u
                    .iter()
                    .zip(&run.amplitude)
                    .map(|(u, a)| (*a > T::zero()).then(|| u.norm().f64() / a.f64()))
                    .collect();
                let lit = r.iter().flatten().count().max(1);
                let mean = r.iter().flatten().sum::<f64>() / lit as f64;
                for (w, r) in weights.iter_mut().zip(&r) {
                    if let Some(r) = r.filter(|r| *r > 0.0) {
                        *w *= mean / r;
                    }
                }
                if options.fix_phase_after == Some(it) {
                    *fixed = Some(u.iter().map(|&z| unit(z)).collect());
                }
            }
            // The target carries the light's power: only the phase of the back-projection
            // counts, but the zero order of finite pixels is subtracted on that scale.
            let power: f64 = run
                .bufs
                .iter()
                .map(|b| b.par_iter().map(|z| z.norm_sqr().f64()).sum::<f64>())
                .sum();
            let wanted: f64 = run
                .amplitude
                .iter()
                .zip(weights.iter())
                .map(|(a, w)| (a.f64() * w).powi(2))
                .sum();
            let scale = if wanted > 0.0 {
                (power / wanted).sqrt()
            } else {
                0.0
            };
            for b in &mut run.bufs {
                b.par_iter_mut().for_each(|z| *z = zero());
            }
            for (j, &k) in signal.iter().enumerate() {
                let dir = match fixed {
                    Some(f) => f[j],
                    None => unit(u[j]),
                };
                let v =
                    dir * (run.amplitude[j] * T::of(weights[j] * scale)) - setup.zero_order_at(k);
                run.set_signal(j, v);
            }
        }
        Algorithm::Mraf => {
            // Images lie in one plane. Target scaled to the light's whole power, mixed in the
            // signal region.
            let buf = &mut run.bufs[0];
            let power: f64 = buf.par_iter().map(|z| z.norm_sqr().f64()).sum();
            let m = options.mix;
            let scale = T::of(m * power.sqrt());
            let keep = T::of(1.0 - m);
            // Outside the signal the light as it is (the signal pixels are set below).
            buf.par_iter_mut().for_each(|z| *z = *z * keep);
            for (j, &k) in signal.iter().enumerate() {
                buf[k] = unit(u[j]) * (run.amplitude[j] * scale) - setup.zero_order_at(k);
            }
        }
        Algorithm::Gd => unreachable!("gradient descent has no target-plane constraint"),
    }
}

/// `∂L/∂φ` of an SLM pixel showing `transmission` under the beam amplitude `beam`, given
/// `w = Aᴴ ∂L/∂u*` there: the light leaving it is `x = beam·transmission`, `dx = i·x·dφ`, so
/// `dL = 2 Re(w̄ · i·x)·dφ = −2 Im(x·w̄)·dφ`.
fn phase_gradient<T: Real>(transmission: Complex<f64>, beam: T, w: Complex<T>) -> f64 {
    let x = transmission * beam.f64();
    -2.0 * (x * Complex::new(w.re.f64(), -w.im.f64())).im
}

/// Replaces the target-plane fields in `run.bufs` by `∂L/∂u*` of the GD loss (see
/// [`Algorithm::Gd`]); zero outside the signal region.
fn gradient_into<T: Real>(run: &mut Run<'_, T>) {
    let da = run.target.grid.cell_area();
    let scale = da.sqrt().recip();
    let u: Vec<Complex<f64>> = (0..run.target.signal.len())
        .map(|j| {
            let v = run.signal(j);
            Complex::new(v.re.f64(), v.im.f64())
        })
        .collect();
    for b in &mut run.bufs {
        b.par_iter_mut().for_each(|z| *z = zero());
    }
    let amplitude = &run.target.amplitude;
    for (j, (u, t)) in u.iter().zip(amplitude).enumerate() {
        // L = Σ (|u| − a)²·dA with a = t/√dA: ∂L/∂u* = (|u| − a)·u/|u|·dA.
        let m = u.norm();
        let g = if m > 0.0 {
            u * ((m - t * scale) / m * da)
        } else {
            Complex::new(-t * scale * da, 0.0)
        };
        run.set_signal(j, crate::field::cplx(g));
    }
}

/// The GD loss and its gradient with respect to every SLM pixel's phase, for gradient checks.
#[cfg(test)]
pub(super) fn loss_and_gradient<T: Real>(
    setup: &Setup<T>,
    target: &Target,
    phase: &[f64],
) -> (f64, Vec<f64>) {
    let mut run = Run::new(setup, target).unwrap();
    let t: Vec<Complex<f64>> = phase.iter().map(|&p| Complex::from_polar(1.0, p)).collect();
    run.forward(&t).unwrap();
    let da = target.grid.cell_area();
    let loss = (0..target.signal.len())
        .map(|j| (run.signal(j).norm().f64() - target.amplitude[j] / da.sqrt()).powi(2) * da)
        .sum();
    gradient_into(&mut run);
    run.back().unwrap();
    let grad = (0..phase.len())
        .map(|j| phase_gradient(t[j], setup.beam()[j], run.at_slm(j)))
        .collect();
    (loss, grad)
}

/// One round of camera-in-the-loop refinement ([`refine`]): what the camera saw of the
/// hologram shown in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    /// Round, from 0 (the starting design).
    pub round: usize,
    /// Measured uniformity of the spots (see [`Quality::uniformity`]).
    pub uniformity: f64,
    /// Measured std/mean of the spots' intensities relative to their targets.
    pub error: f64,
}

/// A hologram refined on a rig.
#[derive(Debug, Clone)]
pub struct Feedback {
    /// The SLM phase of the last round, radians in `[0, 2π)`.
    pub phase: Vec<f64>,
    /// Its gray levels.
    pub gray: Vec<u16>,
    /// What every round measured; the last is the returned hologram's.
    pub rounds: Vec<Round>,
}

/// Camera-in-the-loop refinement of a spot hologram: the weights of weighted GS come from
/// what a camera measures instead of from the model (Di Leonardo et al. 2007's feedback, as
/// slmsuite's experimental WGS does it), so spot powers come out even on a real SLM whose
/// response, aberrations and illumination the model does not know.
///
/// From `start` (a design of `target` with `options.quantise` set, whose gray levels are shown
/// first), each of `rounds` rounds shows the current gray levels, takes the spots' peak
/// intensities from `measure` (one per spot, in the target's order, in any unit: a camera's
/// pixel values at the spots, background subtracted), multiplies each spot's weight by
/// `√(mean(r)/r)` (`r` its intensity relative to its target) and computes the next hologram
/// through the model with the target-plane phase fixed at the start design's. The last
/// hologram is measured too: `rounds + 1` measurements in all.
///
/// Errors: an image target, options without gray levels, a start from another setup, and
/// measurements that are not one finite, non-negative number per spot (or all zero).
pub fn refine<T: Real>(
    setup: &Setup<T>,
    target: &Target,
    options: &Options,
    start: &Design,
    rounds: usize,
    mut measure: impl FnMut(&[u16]) -> Result<Vec<f64>>,
    mut observer: impl FnMut(&Round),
) -> Result<Feedback> {
    if !target.is_spots() {
        return Err(invalid(
            "target",
            "camera feedback evens out spots; give a spot target",
        ));
    }
    let Some(map) = &options.quantise else {
        return Err(invalid(
            "options",
            "camera feedback shows gray levels; give the SLM's (options.quantise)",
        ));
    };
    let (Some(gray), true) = (&start.gray, start.phase.len() == setup.slm.len()) else {
        return Err(invalid(
            "start",
            "give a design of this setup made with the SLM's gray levels",
        ));
    };
    let states = States::new(map, options.correction.as_deref());
    let mut run = Run::new(setup, target)?;
    let mut gray = gray.clone();
    let mut phase = start.phase.clone();
    let show = |gray: &[u16]| -> Vec<Complex<f64>> {
        gray.iter()
            .enumerate()
            .map(|(j, &g)| states.shown(j, g))
            .collect()
    };
    // The target-plane phases, fixed: those of the start design in the model.
    run.forward(&show(&gray))?;
    let mut fixed = Some(
        (0..target.signal.len())
            .map(|j| unit(run.signal(j)))
            .collect::<Vec<_>>(),
    );
    let mut weights = vec![1.0f64; target.signal.len()];
    let mut history = Vec::with_capacity(rounds + 1);
    for round in 0..=rounds {
        let peaks = measure(&gray)?;
        if peaks.len() != target.signal.len()
            || peaks.iter().any(|p| !(p.is_finite() && *p >= 0.0))
            || peaks.iter().all(|&p| p == 0.0)
        {
            return Err(invalid(
                "measurement",
                format!(
                    "{} values for {} spots; give one finite intensity ≥ 0 per spot, not all 0",
                    peaks.len(),
                    target.signal.len()
                ),
            ));
        }
        let (uniformity, error) = target.spread(&peaks);
        let r = Round {
            round,
            uniformity,
            error,
        };
        observer(&r);
        history.push(r);
        if round == rounds {
            break;
        }
        // Weights from the camera: amplitude ratios to the mean.
        let rel: Vec<f64> = peaks
            .iter()
            .zip(&target.amplitude)
            .map(|(p, a)| p / (a * a))
            .collect();
        let mean = rel.iter().sum::<f64>() / rel.len() as f64;
        for (w, r) in weights.iter_mut().zip(&rel) {
            if *r > 0.0 {
                *w *= (mean / r).sqrt();
            }
        }
        // The next hologram: one back-projection through the model with the phases fixed.
        run.forward(&show(&gray))?;
        constrain(
            &mut run,
            Algorithm::Gs,
            options,
            0,
            &mut weights,
            &mut fixed,
        );
        run.back()?;
        run.take_phases(&mut phase);
        gray = phase
            .iter()
            .enumerate()
            .map(|(j, &p)| states.transmission(j, p).0)
            .collect();
    }
    Ok(Feedback {
        phase,
        gray,
        rounds: history,
    })
}
