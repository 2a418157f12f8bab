//! # photonflow-d2nn
//!
//! Differentiable diffractive optics on [burn](https://burn.dev): complex fields as one `f32`
//! tensor of shape `[B, Ny, Nx, 2]` (interleaved real and imaginary parts, so a contiguous
//! buffer of that shape *is* a `[Complex<f32>]` buffer), and custom operations whose kernels are
//! the ones of [`photonflow_optics`] — this crate implements no propagation physics of its own.
//!
//! * [`propagate`] / [`propagate_adjoint`]: free-space propagation by a planned
//!   [`Propagator`](photonflow_optics::Propagator); the backward pass is the exact adjoint.
//! * [`phase_modulate`]: `u·exp(iφ)` with gradients for the field and the (shared) phase mask.
//! * [`amplitude_phase_modulate`]: `u·a·exp(iφ)` with gradients for the field and both masks.
//! * [`intensity`] gives `|u|²`.
//! * [`region_energies`]: energies collected by detector regions (plain burn ops).
//!
//! Gradient convention: burn differentiates real tensors, so the gradient of a field tensor is
//! `(∂L/∂Re u, ∂L/∂Im u)`, read as the complex number `g = ∂L/∂Re + i·∂L/∂Im`. For a complex-linear
//! map `y = A u` this gives `g_u = Aᴴ g_y`, which is why the backward pass of a propagation is
//! [`Propagator::adjoint_in_place`](photonflow_optics::Propagator::adjoint_in_place).
//!
//! Backends: the operations run on burn's CPU backend Flex, with or without autodiff
//! (`Device::flex()` or `Device::flex().autodiff()`); other backends panic.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use photonflow_d2nn::{field_to_tensor, intensity, phase_modulate, propagate};
//! use photonflow_optics::{Field, Grid, Planner, Propagation, Wave};
//!
//! let grid = Grid::square(32, 8e-6)?;
//! let wave = Wave::vacuum(632.8e-9)?;
//! let plan = Planner::<f32>::new().plan(&grid, wave, &Propagation::new(1e-3))?;
//! let device = Device::flex().autodiff();
//! let input = Field::<f32>::from_fn(grid, wave.wavelength, |_, _| 1.0.into())?;
//! let u = field_to_tensor(&input, &device);
//! let phi = Tensor::<2>::zeros([32, 32], &device).require_grad();
//! let loss = intensity(propagate(phase_modulate(u, phi.clone()), &plan)).sum();
//! let grads = loss.backward();
//! assert_eq!(phi.grad(&grads).unwrap().dims(), [32, 32]);
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

pub mod composite;
pub mod config;
mod convert;
pub mod data;
pub mod error;
pub mod eval;
mod flex;
pub use photonflow_optics::lut;
pub mod model;
pub mod network;
pub mod ops;
mod precision;
pub use photonflow_optics::rng;
pub mod train;
pub mod untrained;

pub use convert::{detector_weights, field_to_tensor, tensor_to_field};
pub use ops::{
    amplitude_phase_modulate, intensity, phase_modulate, propagate, propagate_adjoint,
    propagate_window, propagate_window_adjoint, region_energies,
};
pub use precision::{Precision, SharedPropagator, SharedWindow};
