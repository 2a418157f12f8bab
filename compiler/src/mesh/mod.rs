//! Photonic matrix processors: any matrix compiled into the phases of a mesh of
//! Mach–Zehnder interferometers (MZIs).
//!
//! * [`mzi`]: the MZI and its convention (the one every file names).
//! * [`decompose`](mod@decompose): unitaries into Clements (rectangular) and Reck (triangular) meshes.
//! * [`layout`]: `layout.json` and the CSV phase table.
//! * [`gds`]: the mesh as a GDSII layout (MZI cells on the grid, waveguides, heaters, ports).
//! * [`svd`]: any matrix as `U·Σ·V†` (two meshes and a column of attenuators), or embedded
//!   in a unitary of twice its size.
//! * [`matrix`]: the dense complex matrix of inputs and results; `work`: the layout and
//!   deferred updates the decompositions run on.
//! * [`text`]: matrices as text tables (`.csv`, `.tsv`, `.txt`) in and out.
//! * [`bridge`]: a small diffractive system as the matrix a chip implements.
//! * [`chip`]: the chip model (loss, splitter and phase errors, DAC, crosstalk), its
//!   fidelity, and the correction of its splitter errors.
//! * [`trials`]: Monte Carlo over chips, the spread of their fidelity and error.

pub mod bridge;
pub mod chip;
pub mod decompose;
pub mod gds;
pub mod layout;
pub mod matrix;
pub mod mzi;
pub mod svd;
pub mod text;
pub mod trials;
mod work;

pub use decompose::{Attenuator, Mesh, Method, Mzi, decompose, haar_unitary};
pub use matrix::CMatrix;
pub use mzi::Convention;
pub use svd::{SvdInfo, decompose_svd};
