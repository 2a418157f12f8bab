//! photonflow: co-design optical computers. This facade re-exports the member crates.
pub use photonflow_optics as optics;
