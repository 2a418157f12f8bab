//! # photonflow-compiler
//!
//! Turns an [`OpticalSystem`](photonflow_optics::OpticalSystem) — a trained or hand-written
//! diffractive system — into the files each fabrication route takes, and into the system *as
//! built*, so that its accuracy can be simulated before anything is made.
//!
//! * [`material`]: materials (index and extinction at a wavelength), built-in or from TOML.
//! * [`fabricate`](mod@fabricate): a process (material, levels, base) applied to a design: the relief and
//!   level map of every layer, and the as-built system.
//! * [`mesh`]: matrices into meshes of Mach–Zehnder interferometers (photonic chips).
//! * [`unwrap`]: two-dimensional phase unwrapping, for reliefs without 2π steps.
//! * [`export`]: the writers (arrays, height maps, …) and the [`manifest`] that lists every
//!   file written with its sha256.

pub mod error;
pub mod export;
pub mod fabricate;
pub mod manifest;
pub mod material;
pub mod mesh;
pub mod unwrap;

pub use error::{CompileError, Result};
pub use fabricate::{Fabrication, Process, fabricate};
