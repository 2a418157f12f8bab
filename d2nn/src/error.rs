//! Typed errors of `photonflow-d2nn`. Every message says what is wrong, where, and how to fix it.

use std::path::PathBuf;

use photonflow_optics::OpticsError;

/// Everything that can go wrong building, training, evaluating or loading a network.
#[derive(Debug, thiserror::Error)]
pub enum D2nnError {
    /// The config (a TOML file or preset) is invalid.
    #[error("{}{problem}", if .origin.is_empty() { String::new() } else { format!("{}: ", .origin) })]
    Config {
        /// Where the config came from (a path, `preset 'lin2018'`), or empty.
        origin: String,
        /// What is wrong, with the fix.
        problem: String,
    },
    /// The optics crate refused a parameter (grid, plan, detector layout, …).
    #[error(transparent)]
    Optics(#[from] OpticsError),
    /// A dataset could not be found or read.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A file or folder could not be read or written.
    #[error("{}: {problem}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed, with the fix.
        problem: String,
    },
    /// A run folder or checkpoint does not match what it should continue or evaluate.
    #[error("{}: {problem}", .path.display())]
    Run {
        /// The run folder or file.
        path: PathBuf,
        /// What does not match, with the fix.
        problem: String,
    },
    /// Training diverged (a non-finite loss).
    #[error(
        "training diverged at epoch {epoch}, batch {batch}: the loss is {loss}; lower the learning rate (--lr) or raise [readout] temperature"
    )]
    Diverged {
        /// Epoch (from 1).
        epoch: usize,
        /// Batch within the epoch (from 1).
        batch: usize,
        /// The loss value.
        loss: f32,
    },
}

/// Result alias of the d2nn crate.
pub type Result<T, E = D2nnError> = std::result::Result<T, E>;
