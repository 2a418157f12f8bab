//! Free-space propagation of scalar fields: angular spectrum (exact and band-limited), Fresnel
//! (transfer function, impulse response, single FFT), Fraunhofer and Rayleigh–Sommerfeld; and
//! through thick, inhomogeneous samples by the multislice method ([`multislice`]).
//!
//! Like rustfft, propagation is planned once and run many times: a [`Planner`] checks the
//! sampling criterion of the method, builds the transfer function and FFT plans, caches them per
//! (grid, wavelength, index, distance, method, padding), and hands out an `Arc<dyn Propagator>`.
//! Running a plan allocates nothing in steady state.
//!
//! ```
//! use photonflow_optics::{Field, Grid, Wave, propagate::{Planner, Propagation, Method}};
//! use num_complex::Complex;
//!
//! let grid = Grid::square(128, 8e-6)?;                     // 128×128 samples, 8 µm pitch
//! let wave = Wave::vacuum(632.8e-9)?;                      // HeNe in air
//! let mut field = Field::<f32>::from_fn(grid, wave.wavelength, |x, y| {
//!     Complex::from((-(x * x + y * y) / (100e-6f64).powi(2)).exp())
//! })?;
//! let planner = Planner::new();
//! let plan = planner.plan(&grid, wave, &Propagation::new(5e-3))?; // band-limited ASM, 2× padding
//! assert_eq!(plan.method(), Method::BandLimitedAsm);
//! let before = field.power()[0];
//! plan.propagate(&mut field)?;
//! assert!((field.power()[0] - before).abs() < 1e-3 * before);     // energy is conserved
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```
//!
//! Conventions: time dependence `exp(−iωt)`, so propagation by `+z` multiplies plane waves by
//! `exp(+i k_z z)`; negative distances propagate backwards and are the adjoint of the forward
//! propagation (`H(−z) = conj H(z)`). Distances and pitches are metres; the wavelength in
//! [`Wave`] is the vacuum wavelength and `index` the medium's refractive index.

mod check;
mod conv;
mod kernels;
pub mod multislice;
mod planned;
mod single_fft;
mod stages;
pub mod window;
mod zoom;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use num_complex::Complex;

pub use check::Criterion;
pub use kernels::{rs_direct, rs_direct_window, rs_kernel};
pub use planned::Planned;
pub use stages::{Spectral, Stages};
pub use window::{Matrices, Window, WindowPlan};

use crate::error::{OpticsError, Result, invalid};
use crate::fft::{Engine, FftCache};
use crate::field::{Field, Real};
use crate::grid::{Grid, Wave, next_fast_len};
use crate::memory;

/// A propagation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Pick the cheapest method whose sampling criterion holds (see [`Planner::plan`]).
    Auto,
    /// Angular spectrum with the exact transfer function `exp(i z √(k² − 4π²(fx² + fy²)))`;
    /// evanescent components handled by [`Evanescent`]. Goodman, *Introduction to Fourier
    /// Optics*, 3rd ed., §3.10.
    Asm,
    /// Band-limited angular spectrum: the exact transfer function with the frequencies that
    /// would alias (and leave the padded window) removed. Matsushima & Shimobaba, Opt. Express
    /// 17, 19662 (2009). The default.
    BandLimitedAsm,
    /// Fresnel transfer function `exp(ikz) exp(−iπλz(fx² + fy²))`. Voelz, *Computational
    /// Fourier Optics* (SPIE, 2011), §5.1.
    FresnelTf,
    /// Fresnel impulse response `exp(ikz)/(iλz) exp(iπ(x² + y²)/(λz))`, FFT-convolved.
    /// Voelz (2011), §5.1.
    FresnelIr,
    /// Single-FFT Fresnel: input chirp, one scaled FFT, output chirp. The output pitch becomes
    /// `λz/(M·dx)`. Goodman §4.2; Schmidt, *Numerical Simulation of Optical Wave Propagation*
    /// (SPIE, 2010), ch. 6.
    FresnelSingleFft,
    /// Fraunhofer (far field): one scaled FFT, output pitch `λz/(M·dx)`. Goodman §4.3.
    Fraunhofer,
    /// Rayleigh–Sommerfeld diffraction integral of the first kind, FFT-convolved with the
    /// sampled impulse response `z/(2πr²)·(1/r − ik)·exp(ikr)`. Shen & Wang, Appl. Opt. 45,
    /// 1102 (2006); Goodman §3.5. [`rs_direct`] is the slow direct sum used as a reference.
    RayleighSommerfeld,
    /// Scalable angular spectrum: a band-limited precompensation `H_AS/H_Fresnel`, then the
    /// single-transform Fresnel integral — angular-spectrum accuracy far from the source, on an
    /// output window of any pitch. Heintzmann, Loetgering & Wechsler, Optica 10, 1407 (2023).
    /// Runs only through [`Planner::plan_window`] ([`window`]).
    Sas,
}

impl Method {
    /// Every method, in the order `Auto` tries them after its first choice.
    pub const ALL: [Method; 9] = [
        Method::Auto,
        Method::Asm,
        Method::BandLimitedAsm,
        Method::FresnelTf,
        Method::FresnelIr,
        Method::FresnelSingleFft,
        Method::Fraunhofer,
        Method::RayleighSommerfeld,
        Method::Sas,
    ];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Asm => "asm",
            Method::BandLimitedAsm => "bl-asm",
            Method::FresnelTf => "fresnel-tf",
            Method::FresnelIr => "fresnel-ir",
            Method::FresnelSingleFft => "fresnel-sfft",
            Method::Fraunhofer => "fraunhofer",
            Method::RayleighSommerfeld => "rs",
            Method::Sas => "sas",
        }
    }

    /// True for the single-FFT methods, whose output plane has another pitch than the input.
    pub fn changes_sampling(self) -> bool {
        matches!(
            self,
            Method::FresnelSingleFft | Method::Fraunhofer | Method::Sas
        )
    }

    /// True for the methods that run only onto an output window ([`Planner::plan_window`]).
    pub fn window_only(self) -> bool {
        self == Method::Sas
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = OpticsError;
    fn from_str(s: &str) -> Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
                OpticsError::Parse(format!(
                    "unknown propagation method '{s}'; use one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// How the convolution meets the edge of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Padding {
    /// Zero-pad each axis to `factor·n` samples (rounded up to a size with prime factors
    /// 2, 3, 5, 7): a linear convolution when `factor ≥ 2`. The default is 2.
    Linear(f64),
    /// No padding: a circular (periodic) convolution, as if the window tiled the plane.
    Circular,
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Linear(2.0)
    }
}

impl Padding {
    /// Transform length for an axis of `n` samples.
    pub fn padded_len(self, n: usize) -> usize {
        match self {
            Padding::Circular => n,
            Padding::Linear(f) => next_fast_len(((f * n as f64).ceil() as usize).max(n)),
        }
    }

    /// The factor as a number (1 for circular).
    pub fn factor(self) -> f64 {
        match self {
            Padding::Circular => 1.0,
            Padding::Linear(f) => f,
        }
    }

    fn validate(self) -> Result<()> {
        match self {
            Padding::Linear(f) if !(f.is_finite() && (1.0..=64.0).contains(&f)) => Err(invalid(
                "padding",
                format!("factor {f} is outside 1..=64; 2 gives a linear convolution"),
            )),
            _ => Ok(()),
        }
    }
}

/// What the angular-spectrum methods do with evanescent components (`fx² + fy² > (n/λ)²`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Evanescent {
    /// Attenuate by `exp(−|z|·√(4π²f² − k²))` in either direction (stable: back-propagation
    /// does not amplify them, so `H(−z) = conj H(z)` holds exactly). The default.
    #[default]
    Decay,
    /// Remove them.
    Drop,
}

/// What to propagate: distance, method, padding and checks. Built with [`Propagation::new`]
/// and the `with_*` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Propagation {
    /// Distance along z, metres; negative propagates backwards.
    pub distance: f64,
    /// The method; [`Method::BandLimitedAsm`] by default.
    pub method: Method,
    /// Padding of the convolution; 2× linear by default.
    pub padding: Padding,
    /// Treatment of evanescent waves by the angular-spectrum methods.
    pub evanescent: Evanescent,
    /// Refuse plans whose sampling criterion fails (default true).
    pub check: bool,
    /// Half-widths `(ax, ay)` (metres) of the region that holds the source's power, used by the
    /// criteria of the single-FFT methods; the whole window when `None`. See [`Field::support`].
    pub support: Option<(f64, f64)>,
    /// For [`Method::BandLimitedAsm`]: the distance (metres) whose band limit to apply, in
    /// place of `distance`'s. Steps along one path through the same window (the multislice
    /// method) each apply the limit of the whole path, so that together they remove what one
    /// propagation over it would, and no more for being many. `None`: `distance`'s.
    pub band_limit: Option<f64>,
}

impl Propagation {
    /// Band-limited ASM over `distance` metres with 2× linear padding and checks on.
    pub fn new(distance: f64) -> Self {
        Self {
            distance,
            method: Method::BandLimitedAsm,
            padding: Padding::default(),
            evanescent: Evanescent::default(),
            check: true,
            support: None,
            band_limit: None,
        }
    }

    /// Sets the method.
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets the padding.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the treatment of evanescent waves.
    pub fn with_evanescent(mut self, evanescent: Evanescent) -> Self {
        self.evanescent = evanescent;
        self
    }

    /// Turns the sampling check on or off (off: you accept aliasing errors).
    pub fn with_check(mut self, check: bool) -> Self {
        self.check = check;
        self
    }

    /// Sets the distance whose band limit [`Method::BandLimitedAsm`] applies.
    pub fn with_band_limit(mut self, distance: f64) -> Self {
        self.band_limit = Some(distance);
        self
    }

    /// Sets the source support used by the single-FFT criteria.
    pub fn with_support(mut self, support: (f64, f64)) -> Self {
        self.support = Some(support);
        self
    }
}

/// A planned propagation from one plane to another: `[B, Ny, Nx]` in, `[B, Ny, Nx]` out.
///
/// Implementations are linear operators `A`; [`Propagator::adjoint_in_place`] applies `Aᴴ`
/// (so that `⟨A x, y⟩ = ⟨x, Aᴴ y⟩`), which is what gradients flow through.
pub trait Propagator<T: Real>: Send + Sync + fmt::Debug {
    /// The method this plan runs (never `Auto`).
    fn method(&self) -> Method;
    /// Sampling of the input plane.
    fn input_grid(&self) -> Grid;
    /// Sampling of the output plane (the input's, except for single-FFT methods).
    fn output_grid(&self) -> Grid;
    /// The light this plan was made for.
    fn wave(&self) -> Wave;
    /// Transform size `(my, mx)` after padding.
    fn padded_shape(&self) -> (usize, usize);
    /// Propagates every field of a `[B, Ny, Nx]` buffer in place.
    fn propagate_in_place(&self, data: &mut [Complex<T>]) -> Result<()>;
    /// Applies the adjoint `Aᴴ` in place (input: fields on the output grid).
    fn adjoint_in_place(&self, data: &mut [Complex<T>]) -> Result<()>;
    /// The operator (`adjoint = false`) or its adjoint as linear [`Stages`], built from the
    /// arrays the kernels run with: what a backend without the kernels composes instead.
    fn stages(&self, adjoint: bool) -> Stages<T>;

    /// Propagates a [`Field`], checking its grid and wavelength and updating its grid.
    fn propagate(&self, field: &mut Field<T>) -> Result<()> {
        self.check_field(field, self.input_grid())?;
        self.propagate_in_place(field.data_mut())?;
        field.set_grid(self.output_grid())
    }

    /// Applies the adjoint to a [`Field`] on the output grid, returning it to the input grid.
    fn adjoint(&self, field: &mut Field<T>) -> Result<()> {
        self.check_field(field, self.output_grid())?;
        self.adjoint_in_place(field.data_mut())?;
        field.set_grid(self.input_grid())
    }

    #[doc(hidden)]
    fn check_field(&self, field: &Field<T>, grid: Grid) -> Result<()> {
        check_field(field, grid, self.wave())
    }
}

/// Checks that `field` is sampled on `grid` at the wavelength of `wave`, the plan's.
pub(crate) fn check_field<T: Real>(field: &Field<T>, grid: Grid, wave: Wave) -> Result<()> {
    if *field.grid() != grid {
        return Err(OpticsError::Shape(format!(
            "the field is sampled on {:?} but this plan expects {:?}",
            field.grid(),
            grid
        )));
    }
    let w = wave.wavelength;
    if (field.wavelength() - w).abs() > 1e-12 * w {
        return Err(invalid(
            "wavelength",
            format!(
                "the field is at {} m but the plan was made for {} m; plan again",
                field.wavelength(),
                w
            ),
        ));
    }
    Ok(())
}

/// A plan as handed out by [`Planner::plan`]: the propagator, the criterion it was checked
/// against, and, for [`Method::Auto`], every criterion that was considered.
#[derive(Debug, Clone)]
pub struct Plan<T: Real> {
    /// The propagator (shared with the planner's cache).
    pub propagator: Arc<dyn Propagator<T>>,
    /// The sampling criterion of the chosen method, evaluated for this geometry.
    pub criterion: Criterion,
    /// For `Auto`: the criteria evaluated in order until one held. Empty otherwise.
    pub considered: Vec<Criterion>,
}

impl<T: Real> std::ops::Deref for Plan<T> {
    type Target = dyn Propagator<T>;
    fn deref(&self) -> &Self::Target {
        &*self.propagator
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PlanKey {
    nx: usize,
    ny: usize,
    dx: u64,
    dy: u64,
    wavelength: u64,
    index: u64,
    distance: u64,
    band_limit: Option<u64>,
    method: Method,
    my: usize,
    mx: usize,
    evanescent: Evanescent,
}

/// Plans propagations and caches everything that can be reused: FFT plans, padded-transform
/// engines (with their buffer pools) and transfer functions.
///
/// The plan cache keeps the [`Planner::DEFAULT_CAPACITY`] most recently built plans (a
/// transfer function is `M²` complex numbers, so a scan over many distances must not keep them
/// all); an evicted plan stays valid for whoever holds it. Thread-safe: plan from many threads,
/// run plans from many threads.
pub struct Planner<T: Real> {
    ffts: FftCache<T>,
    engines: Mutex<HashMap<[usize; 4], Arc<Engine<T>>>>,
    plans: Mutex<PlanCache<T>>,
}

/// Plans by key, with their insertion order for eviction.
struct PlanCache<T: Real> {
    capacity: usize,
    map: HashMap<PlanKey, Arc<dyn Propagator<T>>>,
    order: std::collections::VecDeque<PlanKey>,
}

impl<T: Real> PlanCache<T> {
    fn insert(&mut self, key: PlanKey, plan: Arc<dyn Propagator<T>>) {
        if self.map.insert(key, plan).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

impl<T: Real> fmt::Debug for Planner<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Planner")
            .field("cached_plans", &self.cached_plans())
            .finish_non_exhaustive()
    }
}

impl<T: Real> Default for Planner<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The order in which [`Method::Auto`] tries methods: exact and sampling-preserving first
/// (all convolution methods cost the same two padded FFT passes), single-FFT methods (one
/// pass, but a new output pitch) only when no convolution method is valid.
pub const AUTO_ORDER: [Method; 5] = [
    Method::BandLimitedAsm,
    Method::RayleighSommerfeld,
    Method::FresnelIr,
    Method::FresnelSingleFft,
    Method::Fraunhofer,
];

impl<T: Real> Planner<T> {
    /// How many plans a planner keeps by default.
    pub const DEFAULT_CAPACITY: usize = 16;

    /// An empty planner keeping [`Self::DEFAULT_CAPACITY`] plans.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An empty planner keeping at most `capacity` plans (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            ffts: FftCache::default(),
            engines: Mutex::new(HashMap::new()),
            plans: Mutex::new(PlanCache {
                capacity: capacity.max(1),
                map: HashMap::new(),
                order: Default::default(),
            }),
        }
    }

    /// Number of plans currently cached.
    pub fn cached_plans(&self) -> usize {
        self.lock_plans().map.len()
    }

    /// The FFT plan cache (shared with [`crate::fft::Fft2`] users such as benchmarks).
    pub fn fft_cache(&self) -> &FftCache<T> {
        &self.ffts
    }

    /// Evaluates the sampling criterion of `method` (not `Auto`) for this geometry.
    pub fn criterion(
        &self,
        grid: &Grid,
        wave: Wave,
        propagation: &Propagation,
        method: Method,
    ) -> Criterion {
        check::evaluate(method, grid, wave, propagation)
    }

    /// Plans a propagation of fields on `grid` of light `wave`.
    ///
    /// Errors when a parameter is invalid, or — unless `propagation.check` is false — when the
    /// method's sampling criterion fails (the error states the limit and the fix). With
    /// [`Method::Auto`] the methods of [`AUTO_ORDER`] are tried in turn and the first valid one
    /// is used; [`Plan::considered`] says why. A new plan that would need more memory than the
    /// machine has left is refused with [`OpticsError::Memory`] before it is built
    /// ([`crate::memory`]).
    pub fn plan(&self, grid: &Grid, wave: Wave, propagation: &Propagation) -> Result<Plan<T>> {
        let z = propagation.distance;
        if !z.is_finite() {
            return Err(invalid("distance", format!("{z} is not a finite length")));
        }
        propagation.padding.validate()?;
        let band_limit = match propagation.band_limit {
            Some(b) if !(b.is_finite() && b >= z.abs()) => {
                return Err(invalid(
                    "band limit",
                    format!(
                        "distance {b}: the band limit of a path must be that of a finite \
                         distance at least the step's |z| = {}",
                        z.abs()
                    ),
                ));
            }
            Some(b) if propagation.method == Method::BandLimitedAsm => Some(b),
            _ => None,
        };
        if propagation.method.window_only() {
            return Err(invalid(
                "method",
                format!(
                    "{} propagates onto an output window of its own pitch; plan it with \
                     Planner::plan_window (photonflow propagate --method {} does)",
                    propagation.method, propagation.method
                ),
            ));
        }
        let (method, criterion, considered) = if propagation.method == Method::Auto {
            let mut considered = Vec::new();
            let mut chosen = None;
            for m in AUTO_ORDER {
                let c = check::evaluate(m, grid, wave, propagation);
                let holds = c.holds;
                considered.push(c.clone());
                if holds {
                    chosen = Some((m, c));
                    break;
                }
            }
            match chosen {
                Some((m, c)) => (m, c, considered),
                None => {
                    let text: Vec<String> = considered.iter().map(|c| format!("  {c}")).collect();
                    return Err(OpticsError::NoValidMethod(text.join("\n")));
                }
            }
        } else {
            let c = check::evaluate(propagation.method, grid, wave, propagation);
            if propagation.check && !c.holds {
                return Err(c.into_error());
            }
            (propagation.method, c, Vec::new())
        };
        let (my, mx) = (
            propagation.padding.padded_len(grid.ny),
            propagation.padding.padded_len(grid.nx),
        );
        let key = PlanKey {
            nx: grid.nx,
            ny: grid.ny,
            dx: grid.dx.to_bits(),
            dy: grid.dy.to_bits(),
            wavelength: wave.wavelength.to_bits(),
            index: wave.index.to_bits(),
            distance: z.to_bits(),
            band_limit: band_limit.map(f64::to_bits),
            method,
            my,
            mx,
            evanescent: propagation.evanescent,
        };
        if let Some(p) = self.lock_plans().map.get(&key) {
            return Ok(Plan {
                propagator: p.clone(),
                criterion,
                considered,
            });
        }
        // What a new plan takes: its transfer function (built in f64, kept in T) over the padded
        // grid, and a slab of the grid's rows, padded, per worker thread.
        let c = std::mem::size_of::<Complex<T>>();
        let transfer = memory::bytes(&[my, mx, 16 + c]);
        let slabs = memory::bytes(&[grid.ny, mx, c, rayon::current_num_threads()]);
        memory::check_fits(
            transfer.saturating_add(slabs),
            || {
                format!(
                    "propagating a {}×{} field through a {my}×{mx} zero-padded transform",
                    grid.ny, grid.nx
                )
            },
            "use less zero padding (2 gives a linear convolution), or fewer samples",
        )?;
        let engine = self.engine(grid.ny, grid.nx, my, mx);
        let propagator: Arc<dyn Propagator<T>> = if method.changes_sampling() {
            Arc::new(single_fft::SingleFft::new(method, *grid, wave, z, engine)?)
        } else {
            Arc::new(conv::Convolution::new(
                method,
                *grid,
                wave,
                (z, band_limit),
                propagation.evanescent,
                engine,
            )?)
        };
        self.lock_plans().insert(key, propagator.clone());
        Ok(Plan {
            propagator,
            criterion,
            considered,
        })
    }

    /// Drops every cached plan (engines and FFT plans stay).
    pub fn clear(&self) {
        let mut cache = self.lock_plans();
        cache.map.clear();
        cache.order.clear();
    }

    fn lock_plans(&self) -> std::sync::MutexGuard<'_, PlanCache<T>> {
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn engine(&self, ny: usize, nx: usize, my: usize, mx: usize) -> Arc<Engine<T>> {
        self.engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry([ny, nx, my, mx])
            .or_insert_with(|| Arc::new(Engine::new(&self.ffts, ny, nx, my, mx)))
            .clone()
    }
}

/// Checks that `data` is a whole batch of fields on `grid` and returns the batch size.
pub(crate) fn batch_of<T>(data: &[Complex<T>], grid: &Grid) -> Result<usize> {
    crate::grid::check_len(data.len(), grid)
}
