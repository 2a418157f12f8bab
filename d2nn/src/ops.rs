//! The custom burn operations on complex fields and their tensor-level wrappers.
//!
//! A field is an `f32` or `f64` tensor `[B, Ny, Nx, 2]` (last axis: real, imaginary part). The
//! operations form the extension trait [`OpticsOps`], implemented for the Flex backend (kernels
//! in this crate's `flex` module, propagation by [`photonflow_optics`]) and for
//! `Autodiff<B, C>` (hand-written backward passes). Backward passes call the non-differentiable
//! kernels of [`OpticsBackward`]. The wrappers ([`propagate`], …) run these fused operations on
//! Flex and the [`composite`] operations on every other backend.
//!
//! Gradients (burn's real-pair convention, `g = ∂L/∂Re + i·∂L/∂Im`, see the crate docs):
//!
//! | operation | output | gradient of the inputs |
//! |---|---|---|
//! | propagate | `y = A u` | `g_u = Aᴴ g` |
//! | phase modulate | `y = u·e^{iφ}` | `g_u = e^{−iφ} g`, `g_φ = Σ_b Im(conj(y)·g) = Σ_b Im(conj(u)·g_u)` |
//! | amplitude and phase modulate | `y = u·a·e^{iφ}` | `g_u = a·e^{−iφ} g`, `g_a = Σ_b Re(conj(u·e^{iφ})·g)`, `g_φ = Σ_b Im(conj(y)·g) = Σ_b Im(conj(u)·g_u)` |
//! | intensity | `I = Re² + Im²` | `g_u = 2·(Re u, Im u)·g_I` |

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Tensor};
use std::marker::PhantomData;
use std::sync::Arc;

use photonflow_optics::propagate::{Plan, WindowPlan};

use crate::composite;
use crate::precision::{Precision, expect_dtype};
pub use crate::precision::{SharedPropagator, SharedWindow};

/// Differentiable operations on complex fields `[B, Ny, Nx, 2]` (`f32` or `f64`).
///
/// Implemented for Flex and for `Autodiff<B, C>`; call them through the wrappers of this module
/// ([`propagate`], [`phase_modulate`], [`intensity`]), which dispatch on the tensor's device.
#[backend_extension(Flex, Autodiff)]
pub trait OpticsOps: Backend {
    /// Propagates every field of the batch with `plan` (`adjoint = false`: fields on the plan's
    /// input grid), or applies the plan's adjoint (`adjoint = true`: fields on its output grid).
    fn propagate(
        field: FloatTensor<Self>,
        plan: SharedPropagator,
        adjoint: bool,
    ) -> FloatTensor<Self>;

    /// Propagates every field of the batch onto `plan`'s output window (`adjoint = false`:
    /// fields on the plan's input grid, `[B, Ky, Kx, 2]` out), or applies the plan's adjoint
    /// (`adjoint = true`: fields on the window, back onto the input grid).
    fn propagate_window(
        field: FloatTensor<Self>,
        plan: SharedWindow,
        adjoint: bool,
    ) -> FloatTensor<Self>;

    /// Multiplies every field of the batch by `exp(iφ)`, `phi` being `[Ny, Nx]` radians.
    fn phase_modulate(field: FloatTensor<Self>, phi: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Multiplies every field of the batch by `a·exp(iφ)`, `amp` and `phi` being `[Ny, Nx]`
    /// (amplitude, radians).
    fn amplitude_phase_modulate(
        field: FloatTensor<Self>,
        amp: FloatTensor<Self>,
        phi: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The intensity `Re² + Im²` of every sample: `[B, Ny, Nx, 2]` → `[B, Ny, Nx]`.
    fn intensity(field: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Gradients of a modulation for the field, the amplitude and the phase, each when asked for.
pub type ModulateGrads<B> = (
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
);

/// Kernels of the backward passes of [`OpticsOps`] (not differentiable themselves).
pub trait OpticsBackward: Backend {
    /// Gradients of `y = u·a·exp(iφ)` (`a ≡ 1` when `amp` is `None`: a phase modulation) from
    /// the output gradient `grad` (`[B, Ny, Nx, 2]`). With `h = e^{−iφ}·grad`, they are
    /// `(a·h, Σ_b Re(conj(u)·h), a·Σ_b Im(conj(u)·h))` for the field, the amplitude and the
    /// phase, each only when asked for (`want`). `field` is needed only for the amplitude and
    /// phase gradients, `amp` (when there is one) only for the field and phase gradients.
    fn modulate_backward(
        field: Option<FloatTensor<Self>>,
        amp: Option<FloatTensor<Self>>,
        phi: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        want: (bool, bool, bool),
    ) -> ModulateGrads<Self>;

    /// Gradient of `I = |u|²` from the output gradient `grad` (`[B, Ny, Nx]`): `2·u·grad`.
    fn intensity_backward(field: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl<B: OpticsOps + OpticsBackward, C: CheckpointStrategy> OpticsOps for Autodiff<B, C> {
    fn propagate(
        field: FloatTensor<Self>,
        plan: SharedPropagator,
        adjoint: bool,
    ) -> FloatTensor<Self> {
        directed::<B, C, _>(field, plan, adjoint)
    }

    fn propagate_window(
        field: FloatTensor<Self>,
        plan: SharedWindow,
        adjoint: bool,
    ) -> FloatTensor<Self> {
        directed::<B, C, _>(field, plan, adjoint)
    }

    fn phase_modulate(field: FloatTensor<Self>, phi: FloatTensor<Self>) -> FloatTensor<Self> {
        modulate::<B, C, 2>(field, None, phi)
    }

    fn amplitude_phase_modulate(
        field: FloatTensor<Self>,
        amp: FloatTensor<Self>,
        phi: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        modulate::<B, C, 3>(field, Some(amp), phi)
    }

    fn intensity(field: FloatTensor<Self>) -> FloatTensor<Self> {
        /// Backward of `|u|²`; state: the input field.
        #[derive(Debug)]
        struct IntensityBackward;

        impl<B: OpticsBackward> Backward<B, 1> for IntensityBackward {
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let field = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| {
                    B::intensity_backward(field, g)
                });
            }
        }

        let (u, node) = field.into_parts();
        match IntensityBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(u.clone(), B::intensity(u)),
            OpsKind::UnTracked(prep) => prep.finish(B::intensity(u)),
        }
    }
}

/// A linear plan that runs forwards or as its adjoint: the backward pass of either direction is
/// the other ([`SharedPropagator`], [`SharedWindow`]).
trait Directed: Clone + Send + std::fmt::Debug + 'static {
    /// `B`'s kernel of this plan in direction `adjoint`.
    fn run<B: OpticsOps>(self, field: FloatTensor<B>, adjoint: bool) -> FloatTensor<B>;
}

impl Directed for SharedPropagator {
    fn run<B: OpticsOps>(self, field: FloatTensor<B>, adjoint: bool) -> FloatTensor<B> {
        B::propagate(field, self, adjoint)
    }
}

impl Directed for SharedWindow {
    fn run<B: OpticsOps>(self, field: FloatTensor<B>, adjoint: bool) -> FloatTensor<B> {
        B::propagate_window(field, self, adjoint)
    }
}

/// Backward of a [`Directed`] plan: the other direction of the same plan.
#[derive(Debug)]
struct ReverseBackward<P>(PhantomData<P>);

impl<B: OpticsOps, P: Directed> Backward<B, 1> for ReverseBackward<P> {
    type State = (P, bool);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (plan, adjoint) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| plan.run::<B>(g, !adjoint));
    }
}

/// `plan` in direction `adjoint` on an autodiff tensor, its backward pass the other direction.
fn directed<B: OpticsOps, C: CheckpointStrategy, P: Directed>(
    field: FloatTensor<Autodiff<B, C>>,
    plan: P,
    adjoint: bool,
) -> FloatTensor<Autodiff<B, C>> {
    let (u, node) = field.into_parts();
    match ReverseBackward::<P>(PhantomData)
        .prepare::<C>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((plan.clone(), adjoint), plan.run::<B>(u, adjoint)),
        OpsKind::UnTracked(prep) => prep.finish(plan.run::<B>(u, adjoint)),
    }
}

/// Backward of a modulation `u·a·e^{iφ}`, with `N = 2` parents (field, phase: `a ≡ 1`) or
/// `N = 3` (field, amplitude, phase). State: the input field (kept only when a mask needs a
/// gradient), the amplitude (kept only when the field or the phase needs one) and the phase.
#[derive(Debug)]
struct ModulateBackward<const N: usize>;

impl<B: OpticsBackward, const N: usize> Backward<B, N> for ModulateBackward<N> {
    type State = (
        Option<FloatTensor<B>>,
        Option<FloatTensor<B>>,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (field, amp, phi) = ops.state;
        let mut parents = ops.parents.into_iter();
        let field_node = parents.next().flatten();
        let amp_node = if N == 3 {
            parents.next().flatten()
        } else {
            None
        };
        let phi_node = parents.next().flatten();
        let grad = grads.consume::<B>(&ops.node);
        let want = (field_node.is_some(), amp_node.is_some(), phi_node.is_some());
        let (gu, ga, gp) = B::modulate_backward(field, amp, phi, grad, want);
        for (node, g) in [(field_node, gu), (amp_node, ga), (phi_node, gp)] {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

/// Both modulations on `Autodiff<B, C>`: `N = 2` without an amplitude, `N = 3` with one.
fn modulate<B: OpticsOps + OpticsBackward, C: CheckpointStrategy, const N: usize>(
    field: FloatTensor<Autodiff<B, C>>,
    amp: Option<FloatTensor<Autodiff<B, C>>>,
    phi: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    assert_eq!(N, 2 + usize::from(amp.is_some()), "modulate: parents");
    let field_tracked = field.is_tracked();
    let amp_tracked = amp.as_ref().is_some_and(|a| a.is_tracked());
    let phi_tracked = phi.is_tracked();
    let (u, u_node) = field.into_parts();
    let (amp, amp_node) = amp.map(|a| a.into_parts()).unzip();
    let (phi, phi_node) = phi.into_parts();
    let nodes: [_; N] = [Some(u_node), amp_node, Some(phi_node)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| unreachable!("N is the number of inputs"));
    let forward = |u, amp: Option<FloatTensor<B>>, phi| match amp {
        None => B::phase_modulate(u, phi),
        Some(amp) => B::amplitude_phase_modulate(u, amp, phi),
    };
    match ModulateBackward::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = (
                (amp_tracked || phi_tracked).then(|| u.clone()),
                amp.clone().filter(|_| field_tracked || phi_tracked),
                phi.clone(),
            );
            prep.finish(state, forward(u, amp, phi))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(u, amp, phi)),
    }
}

/// Checks that `field` is a batch of `ny × nx` complex fields; returns the batch size.
pub(crate) fn check_field(op: &str, field: &Tensor<4>, ny: usize, nx: usize) -> usize {
    let [b, fy, fx, two] = field.dims();
    assert!(
        two == 2 && (fy, fx) == (ny, nx),
        "{op}: expected fields [B, {ny}, {nx}, 2], got [{b}, {fy}, {fx}, {two}]"
    );
    b
}

/// Checks the masks of a modulation against the field: shape `[Ny, Nx]` and the field's dtype.
pub(crate) fn check_masks(op: &str, field: &Tensor<4>, amp: Option<&Tensor<2>>, phi: &Tensor<2>) {
    let [ny, nx] = phi.dims();
    check_field(op, field, ny, nx);
    expect_dtype(op, "phase", phi.dtype(), field.dtype());
    if let Some(amp) = amp {
        assert_eq!(
            amp.dims(),
            [ny, nx],
            "{op}: amplitude and phase masks differ in shape"
        );
        expect_dtype(op, "amplitude", amp.dtype(), field.dtype());
    }
}

/// Checks a field against a plan's grid (`adjoint`: the output grid) and precision.
pub(crate) fn check_plan<T: Precision>(op: &str, field: &Tensor<4>, plan: &Plan<T>, adjoint: bool) {
    let g = if adjoint {
        plan.output_grid()
    } else {
        plan.input_grid()
    };
    check_field(op, field, g.ny, g.nx);
    expect_dtype(op, "field", field.dtype(), T::DTYPE);
}

/// Panics unless `field` holds fields on `plan`'s input grid (or, `adjoint`, its window) in the
/// plan's precision.
pub(crate) fn check_window<T: Precision>(
    op: &str,
    field: &Tensor<4>,
    plan: &WindowPlan<T>,
    adjoint: bool,
) {
    let g = if adjoint {
        plan.window().grid
    } else {
        plan.input_grid()
    };
    check_field(op, field, g.ny, g.nx);
    expect_dtype(op, "field", field.dtype(), T::DTYPE);
}

/// Whether `t` lives on Flex (with or without autodiff), where the fused kernels run.
fn fused<const D: usize>(t: &Tensor<D>) -> bool {
    t.device() == Device::flex()
}

/// Propagates a batch of fields `[B, Ny, Nx, 2]` sampled on `plan`'s input grid; the result is
/// sampled on its output grid (another pitch for the single-FFT methods). Differentiable; the
/// backward pass is the plan's exact adjoint. Fields of `f32` take a `Plan<f32>`, fields of
/// `f64` a `Plan<f64>`. On Flex this runs the optics crate's fused kernel; on any other backend
/// the same operator composed of burn operations ([`composite::propagate`]).
///
/// # Panics
/// If the fields are not `[B, Ny, Nx, 2]` with the plan's `Ny × Nx`, or their dtype is not the
/// plan's precision.
pub fn propagate<T: Precision>(field: Tensor<4>, plan: &Plan<T>) -> Tensor<4> {
    if !fused(&field) {
        return composite::propagate(field, plan);
    }
    check_plan("propagate", &field, plan, false);
    Tensor::from_dispatch(<Dispatch as OpticsOps>::propagate(
        field.into_dispatch(),
        T::share(plan),
        false,
    ))
}

/// Applies the adjoint of `plan` to fields sampled on its output grid (back-propagation of a
/// field, e.g. for time-reversal designs). Differentiable; its backward pass is [`propagate`].
///
/// # Panics
/// As [`propagate`], with the plan's output grid.
pub fn propagate_adjoint<T: Precision>(field: Tensor<4>, plan: &Plan<T>) -> Tensor<4> {
    if !fused(&field) {
        return composite::propagate_adjoint(field, plan);
    }
    check_plan("propagate_adjoint", &field, plan, true);
    Tensor::from_dispatch(<Dispatch as OpticsOps>::propagate(
        field.into_dispatch(),
        T::share(plan),
        true,
    ))
}

/// Propagates a batch of fields `[B, Ny, Nx, 2]` sampled on `plan`'s input grid onto its
/// output window (`[B, Ky, Kx, 2]`: a camera of another pitch, off axis; see
/// `photonflow_optics::propagate::window`). Differentiable; the backward pass is the plan's
/// exact adjoint. On Flex this runs the plan's zoom-DFT kernels; on any other backend the
/// plan's dense matrices composed of burn operations ([`composite::propagate_window`]).
///
/// # Panics
/// If the fields are not `[B, Ny, Nx, 2]` with the plan's input `Ny × Nx`, or their dtype is
/// not the plan's precision.
pub fn propagate_window<T: Precision>(field: Tensor<4>, plan: &Arc<WindowPlan<T>>) -> Tensor<4> {
    if !fused(&field) {
        return composite::propagate_window(field, plan);
    }
    check_window("propagate_window", &field, plan, false);
    Tensor::from_dispatch(<Dispatch as OpticsOps>::propagate_window(
        field.into_dispatch(),
        T::share_window(plan),
        false,
    ))
}

/// Applies the adjoint of a window plan to fields on its window, returning fields on its input
/// grid. Differentiable; its backward pass is [`propagate_window`].
///
/// # Panics
/// As [`propagate_window`], with the window's shape.
pub fn propagate_window_adjoint<T: Precision>(
    field: Tensor<4>,
    plan: &Arc<WindowPlan<T>>,
) -> Tensor<4> {
    if !fused(&field) {
        return composite::propagate_window_adjoint(field, plan);
    }
    check_window("propagate_window_adjoint", &field, plan, true);
    Tensor::from_dispatch(<Dispatch as OpticsOps>::propagate_window(
        field.into_dispatch(),
        T::share_window(plan),
        true,
    ))
}

/// Multiplies every field of a batch `[B, Ny, Nx, 2]` by the phase mask `exp(iφ)`, `phi` being
/// `[Ny, Nx]` radians. Differentiable in both arguments (the phase gradient is summed over the
/// batch).
///
/// # Panics
/// If the shapes disagree or the mask's dtype is not the field's.
pub fn phase_modulate(field: Tensor<4>, phi: Tensor<2>) -> Tensor<4> {
    if !fused(&field) {
        return composite::phase_modulate(field, phi);
    }
    check_masks("phase_modulate", &field, None, &phi);
    Tensor::from_dispatch(<Dispatch as OpticsOps>::phase_modulate(
        field.into_dispatch(),
        phi.into_dispatch(),
    ))
}

/// Multiplies every field of a batch `[B, Ny, Nx, 2]` by the complex mask `a·exp(iφ)`, `amp`
/// and `phi` being `[Ny, Nx]` (amplitude, radians): [`phase_modulate`] with an amplitude mask
/// (an absorbing or amplifying layer). Differentiable in all three arguments (the mask
/// gradients are summed over the batch).
///
/// # Panics
/// If the shapes disagree or a mask's dtype is not the field's.
pub fn amplitude_phase_modulate(field: Tensor<4>, amp: Tensor<2>, phi: Tensor<2>) -> Tensor<4> {
    if !fused(&field) {
        return composite::amplitude_phase_modulate(field, amp, phi);
    }
    check_masks("amplitude_phase_modulate", &field, Some(&amp), &phi);
    Tensor::from_dispatch(<Dispatch as OpticsOps>::amplitude_phase_modulate(
        field.into_dispatch(),
        amp.into_dispatch(),
        phi.into_dispatch(),
    ))
}

/// Intensity `|u|²` of a batch of fields: `[B, Ny, Nx, 2]` → `[B, Ny, Nx]`. Differentiable.
///
/// # Panics
/// If the last axis is not 2.
pub fn intensity(field: Tensor<4>) -> Tensor<3> {
    if !fused(&field) {
        return composite::intensity(field);
    }
    let [_, ny, nx, _] = field.dims();
    check_field("intensity", &field, ny, nx);
    Tensor::from_dispatch(<Dispatch as OpticsOps>::intensity(field.into_dispatch()))
}

/// Energies collected by detector regions: `E[b, r] = Σ_{y,x} weights[r, y, x]·I[b, y, x]`
/// for intensities `[B, Ny, Nx]` and weights `[R, Ny, Nx]` (e.g. [`crate::detector_weights`]),
/// as one matrix product. Differentiable (plain burn operations).
///
/// # Panics
/// If the planes of the two tensors differ.
pub fn region_energies(intensity: Tensor<3>, weights: Tensor<3>) -> Tensor<2> {
    let [b, ny, nx] = intensity.dims();
    let [r, wy, wx] = weights.dims();
    assert!(
        (wy, wx) == (ny, nx),
        "region_energies: intensities are {ny}×{nx} but the weights are {wy}×{wx}"
    );
    intensity
        .reshape([b, ny * nx])
        .matmul(weights.reshape([r, ny * nx]).transpose())
}
