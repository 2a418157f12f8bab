//! The error type of the hardware crate.

use photonflow_optics::OpticsError;

/// What can go wrong driving a rig.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// An error of the optics core (a plan that breaks its sampling criterion, memory, …).
    #[error(transparent)]
    Optics(#[from] OpticsError),
    /// A setting or an input that cannot be used; `what` names it, `why` says how to fix it.
    #[error("{what}: {why}")]
    Invalid {
        /// The setting or input.
        what: String,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// A remote rig broke the protocol, refused a command, or could not be reached.
    #[error("rig at {address}: {why}")]
    Remote {
        /// The rig's address (`host:port`).
        address: String,
        /// What happened.
        why: String,
    },
    /// Reading or writing a file or a socket.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The result type of the hardware crate.
pub type Result<T> = std::result::Result<T, HardwareError>;

/// An [`HardwareError::Invalid`].
pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> HardwareError {
    HardwareError::Invalid {
        what: what.into(),
        why: why.into(),
    }
}
