//! Computer-generated holography: the phase a spatial light modulator (SLM) must show so that
//! the light it reflects forms a chosen intensity — an array of spots (optical tweezers, atom
//! arrays, parallel laser writing) or an image — in a target plane.
//!
//! **Geometry** ([`Geometry`]). A phase-only SLM of `nx × ny` pixels of pitch `p`, lit by a
//! [`Beam`], sits in a computational window of `M ≥ N` samples per axis (`pad = M/N`, the SLM
//! centred, zero outside it). The window is carried to the target plane by one planned
//! propagation of the optics crate, so every algorithm runs the same kernels as the rest of
//! photonflow, forward and exactly adjoint:
//!
//! * [`Geometry::Fourier`]: the SLM in the front focal plane of a lens of focal length `f`, the
//!   target in its back focal plane. The target field is the Fraunhofer transform of the window
//!   (one FFT, periodic window), sampled at `λf/(M·p)`: `pad = 2` halves the target pitch and
//!   shows the speckle between the SLM's resolution cells, which a single-FFT design hides. The
//!   Fraunhofer plan's output chirp is the one a lens at distance `f` from its back focal plane
//!   leaves off; it does not change any intensity.
//! * [`Geometry::Fresnel`]: no lens, the target at `distance` from the SLM, carried there by any
//!   propagation method (band-limited angular spectrum by default, sampling checked) on the SLM's
//!   pitch; `pad` enlarges the window around the SLM so light can land outside its footprint.
//!   With a `target_pitch` the target plane has a pitch of its own (an output window, e.g. a
//!   projection screen many times the SLM's size, through the scalable angular spectrum).
//!
//! **Target** ([`Target`]). Spots (each snapped to the nearest target pixel, with a relative
//! intensity) or an image placed on a block of target pixels. The *signal region* is the spot
//! pixels or the image's block. Quality ([`Quality`]) is measured as holography papers do:
//! efficiency (signal power over incident power), uniformity of the spots, and for images the
//! relative RMS error of the intensity after the best scale, PSNR and SSIM ([`crate::metrics`]).
//!
//! **Algorithms** ([`Algorithm`], [`design`]): Gerchberg–Saxton, weighted GS (Di Leonardo et al.
//! 2007, with Kim et al. 2019's phase fixing), MRAF (Pasienski & DeMarco 2008), and gradient
//! descent (Adam on the exact Wirtinger gradient, through the plan's adjoint). An SLM's gray
//! levels (linear or a measured lookup table, [`GrayMap`](crate::lut::GrayMap)) are taken into
//! account in the last iterations, so the design that is displayed is the one optimised.
//!
//! ```
//! use photonflow_optics::holography::*;
//! use photonflow_optics::{Grid, Planner, Wave};
//! let slm = Grid::square(64, 8e-6)?;
//! let setup = Setup::<f32>::new(&Planner::new(), slm, Wave::vacuum(532e-9)?,
//!                               Geometry::Fourier { focal: 0.1 }, 2.0, Beam::Uniform)?;
//! let g = setup.target_grid();                       // pitch λf/(M·p) = 52 µm
//! let spots: Vec<Spot> = (0..9).map(|k| Spot::new(((k % 3) as f64 - 1.0) * 8.0 * g.dx,
//!                                                  ((k / 3) as f64 - 1.0) * 8.0 * g.dy)).collect();
//! let target = Target::spots(&setup, &spots)?;
//! let options = Options { algorithm: Algorithm::Wgs, iterations: 30, ..Options::default() };
//! let hologram = design(&setup, &target, &options, |_| {})?;
//! assert!(hologram.quality.uniformity.unwrap() > 0.95);
//! assert!(hologram.quality.efficiency > 0.6);
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

mod solve;

pub use solve::{
    Algorithm, Design, Feedback, Initial, Options, Round, Step, design, evaluate, refine,
};

use std::f64::consts::PI;
use std::sync::Mutex;

use num_complex::Complex;
use rayon::prelude::*;

use crate::error::{OpticsError, Result, invalid, positive};
use crate::field::Real;
use crate::grid::{Grid, Wave, next_fast_len};
use crate::memory;
use crate::metrics;
use crate::propagate::{Method, Padding, Planned, Planner, Propagation, Window};

/// Where the target plane is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// Target in the back focal plane of a lens of focal length `focal` (metres) whose front
    /// focal plane holds the SLM.
    Fourier {
        /// Focal length, metres.
        focal: f64,
    },
    /// Target at `distance` (metres) behind the SLM, no lens, propagated with `method`.
    Fresnel {
        /// Distance from the SLM, metres.
        distance: f64,
        /// Propagation method ([`Method::Auto`] picks a valid one).
        method: Method,
        /// Sample the target plane at this pitch (metres) instead of the SLM's: the window's
        /// samples spread over a screen larger (or smaller) than the SLM, through an output
        /// window ([`crate::propagate::window`]; methods bl-asm, sas, fresnel-sfft, auto).
        /// `None`: the SLM's pitch (or the single-FFT methods' own).
        target_pitch: Option<f64>,
    },
}

/// The light that falls on the SLM (flat phase; the SLM adds its own).
#[derive(Debug, Clone, PartialEq)]
pub enum Beam {
    /// Uniform illumination of the whole panel.
    Uniform,
    /// A Gaussian beam centred on the panel, amplitude `exp(−r²/w²)`, `waist` = `w` (the 1/e²
    /// intensity radius), metres.
    Gaussian {
        /// 1/e² intensity radius, metres.
        waist: f64,
    },
    /// A measured intensity on every SLM pixel (row-major, row 0 at the most negative y, any
    /// scale), e.g. from a camera in the SLM's plane; its square root is the amplitude.
    Measured(std::sync::Arc<[f64]>),
}

/// An SLM, its illumination and the planned propagation to the target plane.
#[derive(Debug)]
pub struct Setup<T: Real> {
    slm: Grid,
    window: Grid,
    /// Window row and column of SLM pixel (0, 0).
    origin: (usize, usize),
    carrier: Carrier<T>,
    /// Incident amplitude on every SLM pixel, scaled to unit power (`Σ a²·dA = 1`).
    beam: Vec<T>,
    /// The beam's radius, metres: `√(2⟨r²⟩)` of its intensity (a Gaussian's waist), at most
    /// half the panel's shorter side.
    beam_radius: f64,
    geometry: Geometry,
    /// The SLM's pixels, when they are not ideal (Fourier holograms).
    pixels: Option<Pixels<T>>,
}

/// The planned propagation from the window to the target plane: in place, the target plane
/// sampled like the window (or at a single-FFT method's pitch), or onto a target plane of its
/// own pitch (as many samples as the window) through a copy.
#[derive(Debug)]
struct Carrier<T: Real> {
    plan: Planned<T>,
    scratch: Mutex<Vec<Complex<T>>>,
}

impl<T: Real> Carrier<T> {
    fn new(plan: Planned<T>) -> Self {
        Self {
            plan,
            scratch: Mutex::new(Vec::new()),
        }
    }

    fn wave(&self) -> Wave {
        self.plan.wave()
    }

    fn output_grid(&self) -> Grid {
        self.plan.output_grid()
    }

    fn method(&self) -> Method {
        self.plan.method()
    }

    fn run(&self, buf: &mut [Complex<T>], adjoint: bool) -> Result<()> {
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.plan.run_in_place(buf, adjoint, &mut scratch)
    }
}

/// What finite SLM pixels do to a Fourier hologram (see [`Setup::with_fill_factor`]).
#[derive(Debug)]
struct Pixels<T> {
    fill: f64,
    /// `F·sinc(aX/λf)·sinc(aY/λf)` on every target pixel.
    envelope: Vec<T>,
    /// The light the gaps between pixels reflect unmodulated: `(1 − F·envelope)·A(beam)`.
    zero_order: Vec<Complex<T>>,
}

impl<T: Real> Setup<T> {
    /// Plans the hologram of an SLM sampled on `slm` lit at `wave` by `beam`, with a window
    /// `pad` times the panel (1 … 16) and the target plane of `geometry`.
    ///
    /// Errors: non-positive or non-finite lengths, `pad` out of range, a window that does not fit
    /// in memory, and (Fresnel) a propagation whose sampling criterion fails — its message says
    /// which distance, padding or method would hold.
    pub fn new(
        planner: &Planner<T>,
        slm: Grid,
        wave: Wave,
        geometry: Geometry,
        pad: f64,
        beam: Beam,
    ) -> Result<Self> {
        if !(pad.is_finite() && (1.0..=16.0).contains(&pad)) {
            return Err(invalid(
                "pad",
                format!("{pad} is outside 1 … 16; 2 samples the target twice as finely"),
            ));
        }
        let size = |n: usize| next_fast_len((pad * n as f64).ceil() as usize);
        let (mx, my) = (size(slm.nx), size(slm.ny));
        // The window and the propagation's own buffers: a few complex f64-sized copies.
        memory::check_fits(
            memory::bytes(&[mx, my, 8, std::mem::size_of::<Complex<T>>()]),
            || format!("a {mx}×{my} hologram window"),
            "use a smaller SLM or a smaller pad",
        )?;
        let window = Grid::new(mx, my, slm.dx, slm.dy)?;
        let carrier = match geometry {
            Geometry::Fourier { focal } => {
                positive("focal length", focal)?;
                let p = Propagation::new(focal)
                    .with_method(Method::Fraunhofer)
                    .with_padding(Padding::Circular)
                    .with_check(false);
                Carrier::new(planner.plan_onto(&window, wave, &p, None)?)
            }
            Geometry::Fresnel {
                distance,
                method,
                target_pitch,
            } => {
                if !(distance.is_finite() && distance != 0.0) {
                    return Err(invalid(
                        "distance",
                        format!("{distance}; give the SLM–target distance (non-zero)"),
                    ));
                }
                let p = Propagation::new(distance).with_method(method);
                let target = match target_pitch {
                    None => None,
                    Some(pitch) => {
                        let pitch = positive("target pitch", pitch)?;
                        Some(Window::on_axis(Grid::new(mx, my, pitch, pitch)?))
                    }
                };
                Carrier::new(planner.plan_onto(&window, wave, &p, target.as_ref())?)
            }
        };
        let (xs, ys) = (slm.x(), slm.y());
        let at = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
            ys.iter()
                .flat_map(|&y| xs.iter().map(move |&x| f(x, y)))
                .collect()
        };
        let raw: Vec<f64> = match &beam {
            Beam::Uniform => vec![1.0; slm.len()],
            Beam::Gaussian { waist } => {
                let w = positive("beam waist", *waist)?;
                at(&|x, y| (-(x * x + y * y) / (w * w)).exp())
            }
            Beam::Measured(intensity) => {
                if intensity.len() != slm.len() {
                    return Err(OpticsError::Shape(format!(
                        "a measured beam of {} values for an SLM of {}×{} pixels",
                        intensity.len(),
                        slm.nx,
                        slm.ny
                    )));
                }
                if let Some(v) = intensity.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                    return Err(invalid(
                        "beam",
                        format!("the measured intensity holds {v}; give finite values ≥ 0"),
                    ));
                }
                intensity.iter().map(|v| v.sqrt()).collect()
            }
        };
        let power: f64 = raw.iter().map(|a| a * a).sum::<f64>() * slm.cell_area();
        if !(power > 0.0 && power.is_finite()) {
            return Err(invalid(
                "beam",
                "the beam puts no light on the SLM; give a waist of at least a few pixels, or a \
                 measured intensity that is not all 0",
            ));
        }
        let r2 = at(&|x, y| x * x + y * y);
        let mean_r2 =
            raw.iter().zip(&r2).map(|(a, r)| a * a * r).sum::<f64>() * slm.cell_area() / power;
        let (w, h) = slm.extent();
        let beam_radius = (2.0 * mean_r2).sqrt().min(0.5 * w.min(h));
        let scale = power.sqrt().recip();
        Ok(Self {
            slm,
            window,
            origin: ((my / 2) - slm.ny / 2, (mx / 2) - slm.nx / 2),
            carrier,
            beam: raw.iter().map(|a| T::of(a * scale)).collect(),
            beam_radius,
            geometry,
            pixels: None,
        })
    }

    /// Models the SLM's pixels as square mirrors covering the fraction `fill` (0 < F ≤ 1, the
    /// datasheet's fill factor) of their cells, the gaps between them reflecting the beam
    /// unmodulated (Fourier holograms only). The target field becomes
    ///
    /// `u = F·E ⊙ A(beam·t) + (1 − F·E) ⊙ A(beam)`,  `E(X, Y) = sinc(aX/λf)·sinc(aY/λf)`,
    ///
    /// with `a = p·√F` the mirror's side and `A` the window's Fraunhofer transform: the pixels'
    /// diffraction envelope `E` dims spots far from the axis, and the gaps put `(1 − F)²` of
    /// the power into a zero-order spot on the axis (the rest of the light goes to the higher
    /// diffraction orders of the pixel grid, outside the target plane). Every algorithm then
    /// designs through this model (GS-type ones meet the target with the whole field on the signal
    /// and leave the zero order alone elsewhere, back-propagating through the envelope), so
    /// weighted GS evens out the envelope.
    pub fn with_fill_factor(mut self, fill: f64) -> Result<Self> {
        if !(fill.is_finite() && fill > 0.0 && fill <= 1.0) {
            return Err(invalid(
                "fill factor",
                format!(
                    "{fill}; give the pixels' share of the panel's area, 0 < F ≤ 1 (e.g. 0.93)"
                ),
            ));
        }
        let Geometry::Fourier { focal } = self.geometry else {
            return Err(invalid(
                "fill factor",
                "is modelled for Fourier holograms (--focal) only",
            ));
        };
        let lam = self.carrier.wave().lambda();
        let g = self.target_grid();
        let side = |d: f64| d * fill.sqrt();
        let sinc = |t: f64| {
            if t.abs() < 1e-12 {
                1.0
            } else {
                (PI * t).sin() / (PI * t)
            }
        };
        let ex: Vec<f64> = g
            .x()
            .iter()
            .map(|&x| sinc(side(self.slm.dx) * x / (lam * focal)))
            .collect();
        let ey: Vec<f64> = g
            .y()
            .iter()
            .map(|&y| sinc(side(self.slm.dy) * y / (lam * focal)))
            .collect();
        let envelope: Vec<f64> = ey
            .iter()
            .flat_map(|&y| ex.iter().map(move |&x| fill * x * y))
            .collect();
        let mut zero = vec![Complex::new(T::zero(), T::zero()); self.window.len()];
        self.load(&mut zero, |_| Complex::new(T::one(), T::zero()));
        self.carrier.run(&mut zero, false)?;
        for (z, e) in zero.iter_mut().zip(&envelope) {
            *z = *z * T::of(1.0 - e);
        }
        self.pixels = Some(Pixels {
            fill,
            envelope: envelope.iter().map(|&e| T::of(e)).collect(),
            zero_order: zero,
        });
        Ok(self)
    }

    /// The fill factor of [`Setup::with_fill_factor`] (1 for ideal pixels).
    pub fn fill_factor(&self) -> f64 {
        self.pixels.as_ref().map_or(1.0, |p| p.fill)
    }

    /// Carries the light leaving the SLM (the window in `buf`) to the target plane.
    fn forward(&self, buf: &mut [Complex<T>]) -> Result<()> {
        self.carrier.run(buf, false)?;
        if let Some(p) = &self.pixels {
            buf.par_iter_mut()
                .zip(p.envelope.par_iter().zip(p.zero_order.par_iter()))
                .for_each(|(u, (&e, &z))| *u = *u * e + z);
        }
        Ok(())
    }

    /// The adjoint of [`Setup::forward`]'s linear part, in place.
    fn adjoint(&self, buf: &mut [Complex<T>]) -> Result<()> {
        if let Some(p) = &self.pixels {
            buf.par_iter_mut()
                .zip(p.envelope.par_iter())
                .for_each(|(u, &e)| *u = *u * e);
        }
        self.carrier.run(buf, true)
    }

    /// The zero order's field on target pixel `k` (0 for ideal pixels).
    fn zero_order_at(&self, k: usize) -> Complex<T> {
        self.pixels
            .as_ref()
            .map_or(Complex::new(T::zero(), T::zero()), |p| p.zero_order[k])
    }

    /// Subtracts the zero order from a target-plane field (before a GS-type back-projection).
    fn remove_zero_order(&self, buf: &mut [Complex<T>]) {
        if let Some(p) = &self.pixels {
            for (u, &z) in buf.iter_mut().zip(&p.zero_order) {
                *u = *u - z;
            }
        }
    }

    /// The SLM's sampling.
    pub fn slm(&self) -> Grid {
        self.slm
    }

    /// The computational window (the SLM centred in it).
    pub fn window(&self) -> Grid {
        self.window
    }

    /// The target plane's sampling.
    pub fn target_grid(&self) -> Grid {
        self.carrier.output_grid()
    }

    /// The propagation method from the window to the target plane.
    pub fn method(&self) -> Method {
        self.carrier.method()
    }

    /// The geometry it was planned for.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Incident amplitude on every SLM pixel (row-major, row 0 at the most negative y), scaled
    /// so that the incident power `Σ a²·dA` is 1.
    pub fn beam(&self) -> &[T] {
        &self.beam
    }

    /// The size of a diffraction-limited spot in target pixels along x and y: `λ·f/(N·p)`
    /// divided by the target pitch (`pad` for a Fourier hologram), with `f` the distance for a
    /// Fresnel hologram.
    pub fn resolution_cell(&self) -> (f64, f64) {
        let lam = self.carrier.wave().lambda();
        let z = match self.geometry {
            Geometry::Fourier { focal } => focal,
            Geometry::Fresnel { distance, .. } => distance.abs(),
        };
        let g = self.target_grid();
        let (sx, sy) = self.slm.extent();
        (
            (lam * z / sx / g.dx).max(1.0),
            (lam * z / sy / g.dy).max(1.0),
        )
    }

    /// Fills the window `buf` with the light leaving the SLM: the beam times `transmission(j)`
    /// on SLM pixel `j`, zero elsewhere (rows in parallel).
    fn load(&self, buf: &mut [Complex<T>], transmission: impl Fn(usize) -> Complex<T> + Sync) {
        let (nx, ny, mx) = (self.slm.nx, self.slm.ny, self.window.nx);
        let (r0, c0) = self.origin;
        buf.par_chunks_mut(mx).enumerate().for_each(|(row, line)| {
            line.fill(Complex::new(T::zero(), T::zero()));
            if (r0..r0 + ny).contains(&row) {
                let r = row - r0;
                let beam = &self.beam[r * nx..(r + 1) * nx];
                for (c, (out, &a)) in line[c0..c0 + nx].iter_mut().zip(beam).enumerate() {
                    *out = transmission(r * nx + c) * a;
                }
            }
        });
    }

    /// Window index of every SLM pixel, in SLM order.
    fn slm_pixels(&self) -> impl Iterator<Item = usize> + '_ {
        let (nx, mx) = (self.slm.nx, self.window.nx);
        (0..self.slm.ny).flat_map(move |r| {
            let row = (self.origin.0 + r) * mx + self.origin.1;
            row..row + nx
        })
    }

    /// The field in the target plane for the SLM transmission `transmission` (one complex
    /// value per SLM pixel, row-major).
    pub fn field(&self, transmission: &[Complex<T>]) -> Result<Vec<Complex<T>>> {
        self.field_at(transmission, 0.0)
    }

    /// [`Setup::field`] in the plane `dz` (metres) beyond the target plane (Fourier holograms;
    /// see [`Setup::defocus`]).
    pub fn field_at(&self, transmission: &[Complex<T>], dz: f64) -> Result<Vec<Complex<T>>> {
        if transmission.len() != self.slm.len() {
            return Err(OpticsError::Shape(format!(
                "{} transmission values for an SLM of {}×{} pixels",
                transmission.len(),
                self.slm.nx,
                self.slm.ny
            )));
        }
        let mut buf = vec![Complex::new(T::zero(), T::zero()); self.window.len()];
        if dz == 0.0 {
            self.load(&mut buf, |j| transmission[j]);
        } else {
            let q = self.defocus(dz)?;
            self.load(&mut buf, |j| transmission[j] * q[j]);
        }
        self.forward(&mut buf)?;
        Ok(buf)
    }

    /// The factor on every SLM pixel that carries a Fourier hologram's target plane `dz` metres
    /// further from the lens: `exp(−i·k·r²·dz/(2f²))`, the Fresnel propagation of the focal
    /// plane by `dz` expressed on the SLM, whose pixel `r` sends light to spatial frequency
    /// `r/(λf)` there (paraxial). A hologram that shows its conjugate, `exp(+ik r² dz/(2f²))`
    /// (a weak diverging lens of focal length `−f²/dz`), focuses at `dz`.
    ///
    /// Errors: a Fresnel hologram (plan its other distances instead), a non-finite `dz`.
    pub fn defocus(&self, dz: f64) -> Result<Vec<Complex<T>>> {
        let Geometry::Fourier { focal } = self.geometry else {
            return Err(invalid(
                "spot z",
                "spots off the target plane need a Fourier hologram (a lens, --focal)",
            ));
        };
        if !dz.is_finite() {
            return Err(invalid("spot z", format!("{dz}; give a finite offset")));
        }
        let c = -self.carrier.wave().k() * dz / (2.0 * focal * focal);
        let (xs, ys) = (self.slm.x(), self.slm.y());
        Ok(ys
            .iter()
            .flat_map(|&y| {
                xs.iter().map(move |&x| {
                    crate::field::cplx(Complex::from_polar(1.0, c * (x * x + y * y)))
                })
            })
            .collect())
    }
}

/// One spot of a spot-array target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spot {
    /// Position in the target plane, metres (x).
    pub x: f64,
    /// Position in the target plane, metres (y).
    pub y: f64,
    /// Distance beyond the target plane, metres (0: in it; Fourier holograms only otherwise).
    pub z: f64,
    /// Relative intensity (> 0).
    pub intensity: f64,
}

impl Spot {
    /// A spot of intensity 1 at `(x, y)` in the target plane.
    pub fn new(x: f64, y: f64) -> Self {
        Self::at(x, y, 0.0)
    }

    /// A spot of intensity 1 at `(x, y)`, `z` beyond the target plane.
    pub fn at(x: f64, y: f64, z: f64) -> Self {
        Self {
            x,
            y,
            z,
            intensity: 1.0,
        }
    }
}

/// What kind of target, with what its quality is measured on.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Spots at target pixels, with the box (half-widths in pixels) their power is summed over.
    Spots { box_half: (usize, usize) },
    /// An image on a block of `rows × cols` target pixels from `(row0, col0)`.
    Image {
        rows: usize,
        cols: usize,
        origin: (usize, usize),
    },
}

/// The intensity to form in the target plane, and the signal region it is measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    grid: Grid,
    /// The planes it lies in, metres beyond the target plane, ascending (images: `[0]`).
    planes: Vec<f64>,
    /// The plane (index into `planes`) of every signal pixel.
    plane_of: Vec<usize>,
    /// Target amplitude on the signal pixels (`Σ a² = 1`).
    amplitude: Vec<f64>,
    /// Target-plane indices of the signal pixels.
    signal: Vec<usize>,
    kind: Kind,
}

impl Target {
    /// Spots, each on the target pixel nearest to it. Spots must lie inside the target plane,
    /// have a finite positive intensity and be at least one [`Setup::resolution_cell`] apart
    /// (their powers are summed over one cell around each).
    pub fn spots<T: Real>(setup: &Setup<T>, spots: &[Spot]) -> Result<Self> {
        let grid = setup.target_grid();
        if spots.is_empty() {
            return Err(invalid("spots", "give at least one spot"));
        }
        let (cx, cy) = setup.resolution_cell();
        let box_half = ((cx / 2.0).round() as usize, (cy / 2.0).round() as usize);
        // The planes, ascending; each spot's.
        let mut planes: Vec<f64> = spots.iter().map(|s| s.z).collect();
        if let Some(s) = spots.iter().find(|s| !s.z.is_finite()) {
            return Err(invalid(
                "spots",
                format!("a spot has z = {}; give a finite offset", s.z),
            ));
        }
        planes.sort_by(f64::total_cmp);
        planes.dedup();
        if planes.len() > 64 {
            return Err(invalid(
                "spots",
                format!(
                    "{} planes; at most 64 (each is a propagation per iteration)",
                    planes.len()
                ),
            ));
        }
        if planes != [0.0] {
            if setup.pixels.is_some() {
                return Err(invalid(
                    "spots",
                    "spots off the target plane with finite pixels (a fill factor) are not \
                     modelled; drop the fill factor or keep z = 0",
                ));
            }
            if !matches!(setup.geometry, Geometry::Fourier { .. }) {
                return Err(invalid(
                    "spots",
                    "spots off the target plane (z ≠ 0) need a Fourier hologram (a lens, --focal)",
                ));
            }
        }
        let plane_of: Vec<usize> = spots
            .iter()
            .map(|s| planes.partition_point(|&z| z < s.z))
            .collect();
        let mut pixels: Vec<(usize, usize)> = Vec::with_capacity(spots.len());
        for (k, s) in spots.iter().enumerate() {
            if !(s.intensity.is_finite() && s.intensity > 0.0) {
                return Err(invalid(
                    "spots",
                    format!(
                        "spot {k} has intensity {}; give a positive number",
                        s.intensity
                    ),
                ));
            }
            let pixel = |v: f64, d: f64, n: usize| -> Option<usize> {
                let j = (v / d).round() + (n / 2) as f64;
                (v.is_finite() && j >= 0.0 && j < n as f64).then_some(j as usize)
            };
            let (Some(c), Some(r)) = (pixel(s.x, grid.dx, grid.nx), pixel(s.y, grid.dy, grid.ny))
            else {
                let (w, h) = grid.extent();
                return Err(invalid(
                    "spots",
                    format!(
                        "spot {k} at ({:.4e}, {:.4e}) m is outside the target plane \
                         (±{:.4e} × ±{:.4e} m); move it inwards or use a larger pad",
                        s.x,
                        s.y,
                        w / 2.0,
                        h / 2.0
                    ),
                ));
            };
            if let Some(j) = pixels.iter().enumerate().position(|(j, &(pr, pc))| {
                plane_of[j] == plane_of[k]
                    && pr.abs_diff(r) < (cy.round() as usize).max(1)
                    && pc.abs_diff(c) < (cx.round() as usize).max(1)
            }) {
                return Err(invalid(
                    "spots",
                    format!(
                        "spots {j} and {k} are closer than the SLM's resolution cell \
                         ({cx:.1}×{cy:.1} target pixels of {:.4e} m): it cannot form them \
                         apart; space them further",
                        grid.dx
                    ),
                ));
            }
            pixels.push((r, c));
        }
        let total: f64 = spots.iter().map(|s| s.intensity).sum();
        Ok(Self {
            grid,
            planes,
            plane_of,
            amplitude: spots.iter().map(|s| (s.intensity / total).sqrt()).collect(),
            signal: pixels.iter().map(|&(r, c)| r * grid.nx + c).collect(),
            kind: Kind::Spots { box_half },
        })
    }

    /// An image of `rows × cols` intensities (row-major, row 0 at the most negative y, values
    /// ≥ 0, not all 0) on as many target pixels, centred on the pixel nearest to `centre`
    /// (metres). The whole block is the signal region.
    pub fn image<T: Real>(
        setup: &Setup<T>,
        intensity: &[f64],
        rows: usize,
        cols: usize,
        centre: (f64, f64),
    ) -> Result<Self> {
        let grid = setup.target_grid();
        if rows == 0 || cols == 0 || intensity.len() != rows * cols {
            return Err(OpticsError::Shape(format!(
                "{} intensities for an image of {rows}×{cols} pixels",
                intensity.len()
            )));
        }
        if let Some(v) = intensity.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(invalid(
                "target image",
                format!("holds {v}; intensities must be finite and ≥ 0"),
            ));
        }
        let total: f64 = intensity.iter().sum();
        if total <= 0.0 {
            return Err(invalid(
                "target image",
                "is black; there is nothing to form",
            ));
        }
        let first = |c: f64, d: f64, n: usize, len: usize| -> Option<usize> {
            let j = (c / d).round() + (n / 2) as f64 - (len / 2) as f64;
            (c.is_finite() && j >= 0.0 && j + len as f64 <= n as f64).then_some(j as usize)
        };
        let (Some(c0), Some(r0)) = (
            first(centre.0, grid.dx, grid.nx, cols),
            first(centre.1, grid.dy, grid.ny, rows),
        ) else {
            return Err(invalid(
                "target image",
                format!(
                    "{cols}×{rows} pixels centred at ({:.4e}, {:.4e}) m do not fit in the \
                     {}×{} target plane; make the image smaller, move it inwards or use a \
                     larger pad",
                    centre.0, centre.1, grid.nx, grid.ny
                ),
            ));
        };
        Ok(Self {
            grid,
            planes: vec![0.0],
            plane_of: vec![0; rows * cols],
            amplitude: intensity.iter().map(|v| (v / total).sqrt()).collect(),
            signal: (0..rows)
                .flat_map(|r| (0..cols).map(move |c| (r0 + r) * grid.nx + c0 + c))
                .collect(),
            kind: Kind::Image {
                rows,
                cols,
                origin: (r0, c0),
            },
        })
    }

    /// Target-plane indices of the signal pixels (spots, or the image block row by row).
    pub fn signal(&self) -> &[usize] {
        &self.signal
    }

    /// The image block `(rows, cols, first row, first column)`, for image targets.
    pub fn block(&self) -> Option<(usize, usize, usize, usize)> {
        match self.kind {
            Kind::Image { rows, cols, origin } => Some((rows, cols, origin.0, origin.1)),
            Kind::Spots { .. } => None,
        }
    }

    /// Whether it is a spot array.
    pub fn is_spots(&self) -> bool {
        matches!(self.kind, Kind::Spots { .. })
    }

    /// Uniformity `1 − (max − min)/(max + min)` and std/mean of the spots' `peaks`
    /// (intensities, target order) relative to their targets.
    pub(crate) fn spread(&self, peaks: &[f64]) -> (f64, f64) {
        let rel: Vec<f64> = peaks
            .iter()
            .zip(&self.amplitude)
            .map(|(m, a)| m / (a * a))
            .collect();
        let (min, max) = rel.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        let mean = rel.iter().sum::<f64>() / rel.len() as f64;
        let var = rel.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rel.len() as f64;
        (
            if max > 0.0 {
                1.0 - (max - min) / (max + min)
            } else {
                0.0
            },
            if mean > 0.0 { var.sqrt() / mean } else { 1.0 },
        )
    }

    /// Where the spots of a spot target were placed: `(x, y, z, share)` per spot, metres on the
    /// target pixel each snapped to, and its share of the total target intensity (empty for
    /// an image).
    pub fn placed_spots(&self) -> Vec<(f64, f64, f64, f64)> {
        if !self.is_spots() {
            return Vec::new();
        }
        let g = self.grid;
        self.signal
            .iter()
            .zip(&self.plane_of)
            .zip(&self.amplitude)
            .map(|((&k, &p), a)| {
                (
                    ((k % g.nx) as f64 - (g.nx / 2) as f64) * g.dx,
                    ((k / g.nx) as f64 - (g.ny / 2) as f64) * g.dy,
                    self.planes[p],
                    a * a,
                )
            })
            .collect()
    }

    /// The planes the target lies in, metres beyond the target plane, ascending (`[0]` unless
    /// spots were placed off it).
    pub fn planes(&self) -> &[f64] {
        &self.planes
    }

    /// Measures `intensity` (`|u|²` with the setup's unit incident power: the target plane, or
    /// every one of [`Target::planes`] one after another) against the target.
    pub fn quality(&self, intensity: &[f64]) -> Result<Quality> {
        let g = self.grid;
        let len = g.len();
        if intensity.len() != len * self.planes.len() {
            return Err(OpticsError::Shape(format!(
                "{} intensities for {} target plane(s) of {}×{}",
                intensity.len(),
                self.planes.len(),
                g.nx,
                g.ny
            )));
        }
        self.measure(|p, i| intensity[p * len + i], true)
    }

    /// [`Target::quality`] of the intensity `at(p, i)` of pixel `i` of plane `p`; PSNR and SSIM
    /// only when `full` (the iterations skip them).
    pub(crate) fn measure(&self, at: impl Fn(usize, usize) -> f64, full: bool) -> Result<Quality> {
        let g = self.grid;
        let da = g.cell_area();
        let wanted: Vec<f64> = self.amplitude.iter().map(|a| a * a).collect();
        let measured: Vec<f64> = self
            .signal
            .iter()
            .zip(&self.plane_of)
            .map(|(&i, &p)| at(p, i))
            .collect();
        match self.kind {
            Kind::Spots { box_half: (hx, hy) } => {
                // Power: over one resolution cell around each spot.
                let power: f64 = self
                    .signal
                    .iter()
                    .zip(&self.plane_of)
                    .map(|(&i, &p)| {
                        let (r, c) = (i / g.nx, i % g.nx);
                        let rows = r.saturating_sub(hy)..(r + hy + 1).min(g.ny);
                        rows.map(|rr| {
                            let cols = c.saturating_sub(hx)..(c + hx + 1).min(g.nx);
                            cols.map(|cc| at(p, rr * g.nx + cc)).sum::<f64>()
                        })
                        .sum::<f64>()
                    })
                    .sum::<f64>()
                    * da;
                // Uniformity: of the peak intensities relative to their targets.
                let (uniformity, error) = self.spread(&measured);
                Ok(Quality {
                    efficiency: power,
                    uniformity: Some(uniformity),
                    error,
                    psnr: None,
                    ssim: None,
                })
            }
            Kind::Image { rows, cols, .. } => {
                let efficiency = measured.iter().sum::<f64>() * da;
                // The best scale s (least squares) of the target, then everything relative to
                // the scaled target's peak.
                let tt: f64 = wanted.iter().map(|t| t * t).sum();
                let s = measured
                    .iter()
                    .zip(&wanted)
                    .map(|(m, t)| m * t)
                    .sum::<f64>()
                    / tt;
                if s.is_nan() || s <= 0.0 {
                    return Ok(Quality {
                        efficiency,
                        uniformity: None,
                        error: 1.0,
                        psnr: full.then_some(0.0),
                        ssim: None,
                    });
                }
                let err = measured
                    .iter()
                    .zip(&wanted)
                    .map(|(m, t)| (m - s * t).powi(2))
                    .sum::<f64>()
                    .sqrt()
                    / (s * tt.sqrt());
                if !full {
                    return Ok(Quality {
                        efficiency,
                        uniformity: None,
                        error: err,
                        psnr: None,
                        ssim: None,
                    });
                }
                let peak = wanted.iter().copied().fold(0.0, f64::max);
                let (x, y): (Vec<f64>, Vec<f64>) = measured
                    .iter()
                    .zip(&wanted)
                    .map(|(m, t)| (m / (s * peak), t / peak))
                    .unzip();
                let ssim = (rows >= metrics::SSIM_WINDOW && cols >= metrics::SSIM_WINDOW)
                    .then(|| metrics::ssim(&x, &y, rows, cols, 1.0))
                    .transpose()?;
                Ok(Quality {
                    efficiency,
                    uniformity: None,
                    error: err,
                    psnr: Some(metrics::psnr(&x, &y, rows, cols, 1.0)?),
                    ssim,
                })
            }
        }
    }
}

/// How well an intensity matches a [`Target`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Power in the signal region over the incident power (spots: summed over one resolution
    /// cell around each).
    pub efficiency: f64,
    /// Spots: `1 − (max − min)/(max + min)` of the spots' peak intensities relative to their
    /// targets (what weighted GS equalises, and what Di Leonardo et al. report).
    pub uniformity: Option<f64>,
    /// Spots: standard deviation over mean of the relative peak intensities. Images: `‖I − sT‖/‖sT‖` on
    /// the signal region, with `s` the least-squares scale of the target intensity `T`.
    pub error: f64,
    /// Images: PSNR (dB) of `I/s` against `T`, both relative to `T`'s peak.
    pub psnr: Option<f64>,
    /// Images of at least 11×11 pixels: SSIM of the same pair.
    pub ssim: Option<f64>,
}

#[cfg(test)]
mod tests;
