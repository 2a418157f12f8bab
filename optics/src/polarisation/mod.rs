//! Polarised light: Jones calculus on sampled fields.
//!
//! - [`JonesVector`], [`JonesMatrix`] (polarisers, diattenuators, retarders, waveplates,
//!   rotators, birefringent pixels; products, Mueller matrices), [`Stokes`] (degree and angle
//!   of polarisation, ellipticity; partially polarised light as two incoherent coherent modes).
//! - [`VectorField`]: `E_x` and `E_y` of a batch of fields, propagated by any scalar plan —
//!   exact in a homogeneous isotropic medium, where the transverse components of the vector
//!   angular spectrum propagate independently — with Stokes images, analysers and the
//!   longitudinal component `E_z` from `∇·E = 0`.
//! - [`JonesMask`]: spatially varying Jones matrices — q-plates, geometric-phase
//!   (Pancharatnam–Berry) metasurfaces, birefringent meta-atom arrays, micro-polariser arrays.
//! - [`PolarisationCamera`]: a division-of-focal-plane polarimeter and its Stokes images.
//!
//! # Conventions
//!
//! Time dependence `exp(−iωt)` (as everywhere in photonflow), light travelling towards `+z`,
//! angles from x towards y. Handedness is Born & Wolf's, seen by an observer facing the
//! source: **right circular** `(1, −i)/√2` turns clockwise (negative helicity), **left
//! circular** `(1, i)/√2` anticlockwise (positive helicity; the pupil module's
//! `Polarisation::CIRCULAR`). Stokes parameters: `S₀ = |E_x|² + |E_y|²`,
//! `S₁ = |E_x|² − |E_y|²`, `S₂ = 2 Re(E_x E_y*)`, `S₃ = 2 Im(E_x E_y*)`, so `S₃ = +1` is right
//! circular (as in Goldstein's *Polarized Light* and Collett's *Field Guide to Polarization*).
//! A retarder delays its slow axis: `diag(1, e^{iδ})` along (fast, slow).
//!
//! ```
//! use photonflow_optics::polarisation::{JonesMatrix, JonesVector};
//! use std::f64::consts::FRAC_PI_4;
//!
//! // linear light at 0° through a quarter-wave plate at 45°: circular (S₃ = ±1)
//! let out = JonesMatrix::quarter_wave(FRAC_PI_4).apply(&JonesVector::X);
//! assert!((out.stokes().0[3].abs() - 1.0).abs() < 1e-12);
//! // Malus: an analyser at 60° passes cos² 60° = 1/4
//! let through = JonesMatrix::polariser(60f64.to_radians()).apply(&JonesVector::X);
//! assert!((through.intensity() - 0.25).abs() < 1e-12);
//! ```

mod camera;
mod field;
mod jones;
mod mask;
#[cfg(test)]
mod tests;

pub use camera::PolarisationCamera;
pub use field::{Polarisation, Polarised, VectorField};
pub use jones::{JonesMatrix, JonesVector, Stokes, parse_complex};
pub use mask::{JonesElement, JonesMask};
