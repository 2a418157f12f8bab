//! Photonic matrix processors: any matrix compiled into the phases of a mesh of
//! Mach–Zehnder interferometers (MZIs).
//!
//! * [`mzi`]: the MZI and its convention (the one every file names).
//! * [`decompose`]: unitaries into Clements (rectangular) and Reck (triangular) meshes.
//! * [`layout`]: `layout.json` and the CSV phase table.
//! * [`svd`]: any matrix as `U·Σ·V†`: two meshes and a column of attenuators.
//! * [`matrix`]: the dense complex matrix the `O(N³)` loops work on.

pub mod decompose;
pub mod layout;
pub mod matrix;
pub mod mzi;
pub mod svd;

pub use decompose::{Attenuator, Mesh, Method, Mzi, decompose, haar_unitary};
pub use matrix::CMatrix;
pub use svd::{SvdInfo, decompose_svd};
