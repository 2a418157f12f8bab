//! The compiler's error type: every message says what is wrong and how to fix it.

use std::path::{Path, PathBuf};

/// Everything that can go wrong compiling a system into fabrication files.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A file that cannot be read, parsed or written.
    #[error("{}: {problem}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// An unusable material.
    #[error("{0}")]
    Material(String),
    /// An invalid process or target option (not tied to a file).
    #[error("{option}: {problem}")]
    Option {
        /// The option, as the CLI names it (`--levels`).
        option: &'static str,
        /// What is wrong and the valid range.
        problem: String,
    },
    /// A design that the chosen process cannot make.
    #[error("{0}")]
    Design(String),
    /// A matrix given as unitary that is not, within the tolerance.
    #[error(
        "the matrix is not unitary: it deviates by {deviation:.3e} (largest entry of the \
         triangularised U; U†U − I is of the same order) beyond the tolerance {tolerance:e}; use \
         --method svd for a non-unitary matrix, or --tolerance if it is unitary to a coarser \
         precision"
    )]
    NotUnitary {
        /// The measured deviation (NaN for a non-finite result).
        deviation: f64,
        /// The tolerance it exceeds.
        tolerance: f64,
    },
    /// The optics crate refused the system.
    #[error(transparent)]
    Optics(#[from] photonflow_optics::OpticsError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = CompileError> = std::result::Result<T, E>;

impl CompileError {
    /// `problem` (what is wrong and what to do) with the file `path`.
    pub fn file(path: &Path, problem: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

/// The text of the file `path`; the error names it.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| CompileError::file(path, format!("cannot read it: {e}")))
}
