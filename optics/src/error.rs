//! Typed errors of the optics crate. Every message says what is wrong and how to fix it.

use crate::propagate::Method;

/// Everything that can go wrong in `photonflow-optics`.
#[derive(Debug, thiserror::Error)]
pub enum OpticsError {
    /// A physical or numerical parameter is out of range (non-positive pitch, NaN distance, …).
    #[error("invalid {name}: {problem}")]
    InvalidParameter {
        /// The parameter's name as a user would write it (`wavelength`, `pitch`, `padding`).
        name: &'static str,
        /// What is wrong, with the fix.
        problem: String,
    },
    /// A buffer or array does not have the shape the grid and batch imply.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A value could not be parsed (units, method names).
    #[error("{0}")]
    Parse(String),
    /// A propagation would violate the sampling criterion of its method.
    #[error(
        "{method} cannot propagate this field accurately: {criterion}. {limit}. Fix: {fix} \
         (or disable the sampling check if you accept the error)"
    )]
    Sampling {
        /// The method that was checked.
        method: Method,
        /// The criterion that fails, in words.
        criterion: String,
        /// The value and the limit it exceeds, with units.
        limit: String,
        /// What to change: minimum padding, maximum distance, another method.
        fix: String,
    },
    /// `Method::Auto` found no method whose criterion holds; each failure is listed.
    #[error("no propagation method is valid for this geometry:\n{0}")]
    NoValidMethod(String),
    /// A file could not be read or written, or does not hold what it should.
    #[error("{}: {problem}", .path.display())]
    File {
        /// The file (or folder) concerned.
        path: std::path::PathBuf,
        /// What is wrong, with the fix.
        problem: String,
    },
    /// A computation would need more memory than the machine has left (checked before anything
    /// is allocated for it; see [`crate::memory`]).
    #[error("{what} needs about {needed} of memory, and {available} are available; {fix}")]
    Memory {
        /// The computation, with its size (`a 131072×131072 transform …`).
        what: String,
        /// The estimate, for reading (`550 GB`).
        needed: String,
        /// What is left, for reading.
        available: String,
        /// What to change.
        fix: String,
    },
    /// Input data contain NaN or infinite values.
    #[error(
        "the field contains {count} non-finite value(s) (NaN or Inf), the first at flat index {first}; clean the input"
    )]
    NonFinite {
        /// Number of non-finite complex samples.
        count: usize,
        /// Flat index of the first one.
        first: usize,
    },
}

impl OpticsError {
    /// What is wrong, for a caller that names the parameter itself: an invalid parameter's
    /// problem without the `invalid NAME:` prefix; any other error's whole message.
    pub fn into_problem(self) -> String {
        match self {
            OpticsError::InvalidParameter { problem, .. } => problem,
            e => e.to_string(),
        }
    }
}

/// Result alias of the optics crate.
pub type Result<T, E = OpticsError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, problem: impl Into<String>) -> OpticsError {
    OpticsError::InvalidParameter {
        name,
        problem: problem.into(),
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(
            name,
            format!("{value} is not a finite positive number; give a value > 0"),
        ))
    }
}

/// The message of an expected error (tests only): panics if `r` is `Ok`.
#[cfg(test)]
pub(crate) fn err_text<T>(r: Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}
