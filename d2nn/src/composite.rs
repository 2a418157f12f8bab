//! The operations composed of burn tensor operations only, for backends without the fused
//! kernels (CUDA, wgpu, …): burn's own autodiff differentiates them. The wrappers of the crate
//! root pick these off Flex; they are public so that tests can compare both paths on Flex.
//!
//! Propagation applies the plan's [`Stages`] (from the optics crate: the very transfer function,
//! chirps and padding the kernels use) with 2-D DFTs written as products with DFT matrices,
//! which works for every size. Zero padding and cropping are folded into the matrices: the
//! forward DFT of a field padded from `n` to `m` samples is an `m × n` block of the DFT matrix,
//! and the inverse DFT followed by the crop an `n × m` block. Per field this costs
//! `O(n·m·(n + m))` multiply-adds instead of the FFT's `O(m² log m)` — slow on a CPU, plain
//! matrix products on a GPU. Complex tensors are split into real and imaginary parts; a
//! complex product is four real ones. The DFT blocks are cached on the host per size; they,
//! the transfer function and the weights are uploaded on each call.

use std::collections::HashMap;
use std::f64::consts::TAU;
use std::sync::{Arc, Mutex, OnceLock};

use burn::tensor::{Device, Tensor, TensorData};
use num_complex::Complex;
use photonflow_optics::fft::Separable;
use photonflow_optics::propagate::{Matrices, Plan, Spectral, Stages, WindowPlan};

use crate::ops::{check_field, check_masks, check_plan, check_window};
use crate::precision::Precision;

/// A complex tensor as its real and imaginary parts.
#[derive(Clone)]
struct Parts<const D: usize> {
    re: Tensor<D>,
    im: Tensor<D>,
}

impl Parts<3> {
    /// A batch of fields `[B, Ny, Nx, 2]` as parts `[B, Ny, Nx]`.
    fn split(field: Tensor<4>) -> Self {
        let [b, ny, nx, _] = field.dims();
        Parts {
            re: field.clone().narrow(3, 0, 1).reshape([b, ny, nx]),
            im: field.narrow(3, 1, 1).reshape([b, ny, nx]),
        }
    }

    /// Back to one tensor `[B, Ny, Nx, 2]`.
    fn pack(self) -> Tensor<4> {
        Tensor::stack(vec![self.re, self.im], 3)
    }

    /// The element-wise product with one `[Ny, Nx]` plane shared by the batch.
    fn mul_plane(self, w: &Parts<2>) -> Self {
        let re = self.re.clone() * w.re.clone().unsqueeze::<3>()
            - self.im.clone() * w.im.clone().unsqueeze::<3>();
        let im = self.re * w.im.clone().unsqueeze::<3>() + self.im * w.re.clone().unsqueeze::<3>();
        Parts { re, im }
    }

    /// `a · x` for each field `x` of the batch (`a`: `[P, Q]`, fields `[B, Q, R]`).
    fn left(self, a: &Parts<2>) -> Self {
        let (ar, ai) = (a.re.clone().unsqueeze::<3>(), a.im.clone().unsqueeze::<3>());
        Parts {
            re: ar.clone().matmul(self.re.clone()) - ai.clone().matmul(self.im.clone()),
            im: ar.matmul(self.im) + ai.matmul(self.re),
        }
    }

    /// `x · a` for each field `x` of the batch (fields `[B, P, Q]`, `a`: `[Q, R]`), as one
    /// `[B·P, Q] × [Q, R]` product.
    fn right(self, a: &Parts<2>) -> Self {
        let [b, p, q] = self.re.dims();
        let r = a.re.dims()[1];
        let flat = |t: Tensor<3>| t.reshape([b * p, q]);
        let (xr, xi) = (flat(self.re), flat(self.im));
        let back = |t: Tensor<2>| t.reshape([b, p, r]);
        Parts {
            re: back(xr.clone().matmul(a.re.clone()) - xi.clone().matmul(a.im.clone())),
            im: back(xr.matmul(a.im.clone()) + xi.matmul(a.re.clone())),
        }
    }
}

/// A complex `[rows, cols]` matrix of `T` on `device` from row-major samples.
fn upload<T: Precision>(
    values: impl Iterator<Item = Complex<f64>>,
    [rows, cols]: [usize; 2],
    device: &Device,
) -> Parts<2> {
    let (re, im): (Vec<T>, Vec<T>) = values.map(|z| (T::of(z.re), T::of(z.im))).unzip();
    let t = |v: Vec<T>| Tensor::from_data(TensorData::new(v, [rows, cols]), (device, T::DTYPE));
    Parts {
        re: t(re),
        im: t(im),
    }
}

/// Which block of which DFT matrix: `exp(s·2πi·(r + r0)(c + c0)/m)` for `r < rows`,
/// `c < cols`, `s = +1` when `inverse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Block {
    m: usize,
    inverse: bool,
    rows: (usize, usize),
    cols: (usize, usize),
}

/// Complex samples, shared.
type Samples = Arc<Vec<Complex<f64>>>;

/// The samples of a DFT block, row-major, computed once per block in f64 (the phase index is
/// reduced modulo `m` exactly, in integers).
fn dft_block(block: Block) -> Samples {
    static CACHE: OnceLock<Mutex<HashMap<Block, Samples>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry(block)
        .or_insert_with(|| {
            let Block {
                m,
                inverse,
                rows: (r0, nr),
                cols: (c0, nc),
            } = block;
            let s = if inverse { 1.0 } else { -1.0 };
            let values = (r0..r0 + nr)
                .flat_map(|r| (c0..c0 + nc).map(move |c| (r * c) % m))
                .map(|k| Complex::from_polar(1.0, s * TAU * k as f64 / m as f64))
                .collect();
            Arc::new(values)
        })
        .clone()
}

/// A DFT block as a tensor of `T` on `device`.
fn dft<T: Precision>(block: Block, device: &Device) -> Parts<2> {
    let values = dft_block(block);
    upload::<T>(values.iter().copied(), [block.rows.1, block.cols.1], device)
}

/// A separable weight as an `[Ny, Nx]` plane.
fn plane<T: Precision>(w: &Separable<T>, device: &Device) -> Parts<2> {
    let (ny, nx) = (w.wy.len(), w.wx.len());
    let at = |i: usize| {
        let z = w.wy[i / nx] * w.wx[i % nx];
        Complex::new(z.re.f64(), z.im.f64())
    };
    upload::<T>((0..ny * nx).map(at), [ny, nx], device)
}

/// Applies the stages to a batch of fields.
fn run<T: Precision>(field: Tensor<4>, st: &Stages<T>) -> Tensor<4> {
    let device = field.device();
    let ((ny, nx), (my, mx), (oy, ox)) = (st.shape, st.padded, st.offset);
    let mut u = Parts::split(field);
    if let Some(w) = &st.load {
        u = u.mul_plane(&plane(w, &device));
    }
    let block = |m, inverse, rows, cols| {
        dft::<T>(
            Block {
                m,
                inverse,
                rows,
                cols,
            },
            &device,
        )
    };
    u = match &st.spectral {
        Spectral::Convolve(h) => {
            // Pad and transform: [my, ny] · u · [nx, mx]; multiply; inverse and crop:
            // [ny, my] · U · [mx, nx].
            let h = upload::<T>(
                h.iter().map(|z| Complex::new(z.re.f64(), z.im.f64())),
                [my, mx],
                &device,
            );
            u.left(&block(my, false, (0, my), (oy, ny)))
                .right(&block(mx, false, (ox, nx), (0, mx)))
                .mul_plane(&h)
                .left(&block(my, true, (oy, ny), (0, my)))
                .right(&block(mx, true, (0, mx), (ox, nx)))
        }
        Spectral::Dft { inverse } => u
            .left(&block(my, *inverse, (oy, ny), (oy, ny)))
            .right(&block(mx, *inverse, (ox, nx), (ox, nx))),
    };
    if let Some(w) = &st.store {
        u = u.mul_plane(&plane(w, &device));
    }
    u.pack()
}

/// [`crate::propagate`] composed of burn operations, on any backend.
///
/// # Panics
/// As [`crate::propagate`].
pub fn propagate<T: Precision>(field: Tensor<4>, plan: &Plan<T>) -> Tensor<4> {
    check_plan("propagate", &field, plan, false);
    run(field, &plan.stages(false))
}

/// [`crate::propagate_adjoint`] composed of burn operations, on any backend.
///
/// # Panics
/// As [`crate::propagate_adjoint`].
pub fn propagate_adjoint<T: Precision>(field: Tensor<4>, plan: &Plan<T>) -> Tensor<4> {
    check_plan("propagate_adjoint", &field, plan, true);
    run(field, &plan.stages(true))
}

/// The window plan's dense matrices applied to a batch of fields.
fn run_window<T: Precision>(field: Tensor<4>, m: &Matrices<T>) -> Tensor<4> {
    let device = field.device();
    let [(ny, nx), (p, q), (ky, kx)] = m.shapes;
    let up = |v: &[Complex<T>], shape: [usize; 2]| {
        upload::<T>(
            v.iter().map(|z| Complex::new(z.re.f64(), z.im.f64())),
            shape,
            &device,
        )
    };
    let mut u = Parts::split(field)
        .left(&up(&m.rows_in, [p, ny]))
        .right(&up(&m.cols_in, [nx, q]));
    if let Some(t) = &m.table {
        u = u.mul_plane(&up(t, [p, q]));
    }
    u.left(&up(&m.rows_out, [ky, p]))
        .right(&up(&m.cols_out, [q, kx]))
        .pack()
}

/// [`crate::propagate_window`] composed of burn operations, on any backend.
///
/// # Panics
/// As [`crate::propagate_window`].
pub fn propagate_window<T: Precision>(field: Tensor<4>, plan: &Arc<WindowPlan<T>>) -> Tensor<4> {
    check_window("propagate_window", &field, plan, false);
    run_window(field, &plan.matrices(false))
}

/// [`crate::propagate_window_adjoint`] composed of burn operations, on any backend.
///
/// # Panics
/// As [`crate::propagate_window_adjoint`].
pub fn propagate_window_adjoint<T: Precision>(
    field: Tensor<4>,
    plan: &Arc<WindowPlan<T>>,
) -> Tensor<4> {
    check_window("propagate_window_adjoint", &field, plan, true);
    run_window(field, &plan.matrices(true))
}

/// [`crate::phase_modulate`] composed of burn operations, on any backend.
///
/// # Panics
/// As [`crate::phase_modulate`].
pub fn phase_modulate(field: Tensor<4>, phi: Tensor<2>) -> Tensor<4> {
    check_masks("phase_modulate", &field, None, &phi);
    let mask = Parts {
        re: phi.clone().cos(),
        im: phi.sin(),
    };
    Parts::split(field).mul_plane(&mask).pack()
}

/// [`crate::amplitude_phase_modulate`] composed of burn operations, on any backend.
///
/// # Panics
/// As [`crate::amplitude_phase_modulate`].
pub fn amplitude_phase_modulate(field: Tensor<4>, amp: Tensor<2>, phi: Tensor<2>) -> Tensor<4> {
    check_masks("amplitude_phase_modulate", &field, Some(&amp), &phi);
    let mask = Parts {
        re: phi.clone().cos() * amp.clone(),
        im: phi.sin() * amp,
    };
    Parts::split(field).mul_plane(&mask).pack()
}

/// [`crate::intensity`] composed of burn operations, on any backend.
///
/// # Panics
/// As [`crate::intensity`].
pub fn intensity(field: Tensor<4>) -> Tensor<3> {
    let [_, ny, nx, _] = field.dims();
    check_field("intensity", &field, ny, nx);
    let u = Parts::split(field);
    u.re.square() + u.im.square()
}
