//! # photonflow-optics
//!
//! The physics core of photonflow: sampling grids, complex fields, exact and fast scalar
//! propagators (angular spectrum, band-limited angular spectrum, Fresnel, Fraunhofer,
//! Rayleigh–Sommerfeld), optical elements, sources and detectors.
//!
//! Conventions, everywhere: SI units (metres, radians); time dependence `exp(−iωt)`, so a wave
//! travelling towards `+z` is `exp(+ikz)`; fields are `[B, Ny, Nx]` row-major with x fastest;
//! sample `j` of an axis of `n` samples sits at `(j − ⌊n/2⌋)·pitch`.
//!
//! Kernels work on plain contiguous buffers (`&mut [Complex<T>]`), so the CLI, the simulated
//! rig and the trainable (Burn) operations all run the same code.

pub mod coherence;
pub mod deconvolve;
pub mod detect;
pub mod elements;
pub mod error;
pub mod fft;
pub mod field;
pub mod fpm;
pub mod grid;
pub mod holography;
pub mod inline;
pub mod io;
pub mod linalg;
pub mod lut;
pub mod material;
pub mod memory;
pub mod metrics;
pub mod minimise;
pub mod offaxis;
pub mod polarisation;
pub mod propagate;
pub mod pupil;
pub mod rng;
pub mod shift;
pub mod sources;
pub mod system;
#[cfg(test)]
mod testing;
pub mod tomography;
pub mod units;

pub use detect::{Detector, Region};
pub use elements::{Element, ElementExt};
pub use error::{OpticsError, Result};
pub use field::{Field, Real};
pub use grid::{Grid, Wave};
pub use propagate::{Method, Padding, Planner, Propagation, Propagator};
pub use sources::{GaussianBeam, plane_wave};
pub use system::OpticalSystem;
