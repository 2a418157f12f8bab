//! # photonflow
//!
//! Co-design optical computers: exact scalar wave optics, trainable diffractive networks and
//! the files that fabs, SLMs and photonic chips take. This facade re-exports the member crates
//! and holds the command-line interface (`photonflow`), which only parses, calls a crate and
//! prints.

pub mod cli;
pub mod plot;

pub use photonflow_compiler as compiler;
pub use photonflow_d2nn as d2nn;
pub use photonflow_hardware as hardware;
pub use photonflow_optics as optics;

/// The README's code blocks, compiled and run as doctests so the examples users copy work.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
