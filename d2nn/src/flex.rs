//! [`OpticsOps`] and [`OpticsBackward`] for burn's CPU backend Flex.
//!
//! Flex tensors are reference-counted byte buffers. An operation whose output has the shape of
//! an input writes into that input's buffer when the buffer is contiguous and not shared (burn's
//! own Flex kernels do the same), and into a fresh copy otherwise — never into data someone else
//! can see. Propagation is [`Propagator::propagate_in_place`] /
//! [`Propagator::adjoint_in_place`](photonflow_optics::Propagator::adjoint_in_place) on that
//! buffer, reinterpreted as `[Complex<f32>]` without copying (`num_complex::Complex` is
//! `repr(C)` and `bytemuck::Pod`).

use burn::backend::flex::FlexTensor;
use burn::backend::{DType, Flex, Shape, TensorData, TensorMetadata};
use num_complex::Complex;
use rayon::prelude::*;

use crate::ops::{OpticsBackward, OpticsOps, SharedPropagator};

/// Rows per rayon task: enough work per task to amortise scheduling.
const MIN_ROWS: usize = 16;

/// `[B, Ny, Nx]` of a field tensor `[B, Ny, Nx, 2]` (f32), or a panic naming `op`.
fn field_dims(op: &str, t: &FlexTensor) -> [usize; 3] {
    let shape = t.shape();
    assert!(
        t.dtype() == DType::F32 && shape.num_dims() == 4 && shape[3] == 2,
        "{op}: expected an f32 field tensor [B, Ny, Nx, 2], got {:?} {shape}",
        t.dtype()
    );
    [shape[0], shape[1], shape[2]]
}

/// `[Ny, Nx]` of a phase tensor (f32), or a panic.
fn phase_dims(t: &FlexTensor) -> [usize; 2] {
    let shape = t.shape();
    assert!(
        t.dtype() == DType::F32 && shape.num_dims() == 2,
        "phase_modulate: expected an f32 phase tensor [Ny, Nx], got {:?} {shape}",
        t.dtype()
    );
    [shape[0], shape[1]]
}

/// The samples of `t` as a contiguous f32 slice, copying only if `t` is a strided view.
fn with_f32<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    match t.as_slice::<f32>() {
        Some(s) => f(s),
        None => f(t.to_contiguous().as_slice::<f32>().expect("contiguous")),
    }
}

/// `t` as a tensor that owns its contiguous buffer exclusively: `t` itself when it already does
/// (no copy), otherwise a parallel copy.
fn exclusive(t: FlexTensor) -> FlexTensor {
    let n = t.layout().num_elements();
    if t.is_unique()
        && t.layout().contiguous_offsets() == Some((0, n))
        && t.bytes().len() == n * size_of::<f32>()
    {
        return t;
    }
    let mut out = vec![0f32; n];
    with_f32(&t, |src| {
        out.par_chunks_mut(1 << 14)
            .zip(src.par_chunks(1 << 14))
            .for_each(|(d, s)| d.copy_from_slice(s));
    });
    FlexTensor::from_data(TensorData::new(out, t.shape()))
}

/// The buffer of an exclusively owned f32 tensor (see [`exclusive`]) as complex samples.
fn complex_mut(t: &mut FlexTensor) -> &mut [Complex<f32>] {
    bytemuck::cast_slice_mut(t.storage_mut::<f32>())
}

/// `exp(iφ)` for every sample of the phase mask.
fn phasors(phi: &FlexTensor) -> Vec<Complex<f32>> {
    with_f32(phi, |p| {
        p.par_iter().map(|&a| Complex::from_polar(1.0, a)).collect()
    })
}

/// Multiplies every field (rows of `nx` samples, `ny` rows per field) by `mask` (`ny·nx`),
/// conjugated when `conj`.
fn apply_mask(data: &mut [Complex<f32>], mask: &[Complex<f32>], nx: usize, conj: bool) {
    let ny = mask.len() / nx;
    data.par_chunks_mut(nx)
        .with_min_len(MIN_ROWS)
        .enumerate()
        .for_each(|(row, line)| {
            let m = &mask[(row % ny) * nx..][..nx];
            if conj {
                line.iter_mut().zip(m).for_each(|(z, e)| *z *= e.conj());
            } else {
                line.iter_mut().zip(m).for_each(|(z, e)| *z *= e);
            }
        });
}

impl OpticsOps for Flex {
    fn propagate(field: FlexTensor, plan: SharedPropagator, adjoint: bool) -> FlexTensor {
        let [_, ny, nx] = field_dims("propagate", &field);
        let grid = if adjoint {
            plan.output_grid()
        } else {
            plan.input_grid()
        };
        assert!(
            (ny, nx) == (grid.ny, grid.nx),
            "propagate: fields are {ny}×{nx} but the plan's {} grid is {}×{}",
            if adjoint { "output" } else { "input" },
            grid.ny,
            grid.nx
        );
        let mut out = exclusive(field);
        let data = complex_mut(&mut out);
        let done = if adjoint {
            plan.adjoint_in_place(data)
        } else {
            plan.propagate_in_place(data)
        };
        done.unwrap_or_else(|e| panic!("propagate: {e}"));
        out
    }

    fn phase_modulate(field: FlexTensor, phi: FlexTensor) -> FlexTensor {
        let [_, ny, nx] = field_dims("phase_modulate", &field);
        assert_eq!(
            phase_dims(&phi),
            [ny, nx],
            "phase_modulate: mask/field shape"
        );
        let mask = phasors(&phi);
        let mut out = exclusive(field);
        apply_mask(complex_mut(&mut out), &mask, nx, false);
        out
    }

    fn intensity(field: FlexTensor) -> FlexTensor {
        let [b, ny, nx] = field_dims("intensity", &field);
        let mut out = vec![0f32; b * ny * nx];
        with_f32(&field, |u| {
            let u: &[Complex<f32>] = bytemuck::cast_slice(u);
            out.par_chunks_mut(nx)
                .with_min_len(MIN_ROWS)
                .zip(u.par_chunks(nx))
                .for_each(|(o, z)| o.iter_mut().zip(z).for_each(|(o, z)| *o = z.norm_sqr()));
        });
        FlexTensor::from_data(TensorData::new(out, Shape::new([b, ny, nx])))
    }
}

impl OpticsBackward for Flex {
    fn phase_modulate_backward(
        field: Option<FlexTensor>,
        phi: FlexTensor,
        grad: FlexTensor,
        (want_field, want_phi): (bool, bool),
    ) -> (Option<FlexTensor>, Option<FlexTensor>) {
        let [b, ny, nx] = field_dims("phase_modulate backward", &grad);
        let mask = phasors(&phi);
        // g_u = e^{−iφ}·g, in the gradient's buffer when it is not shared.
        let mut grad_field = exclusive(grad);
        apply_mask(complex_mut(&mut grad_field), &mask, nx, true);
        // g_φ = Σ_b Im(conj(u)·g_u), one row of the mask per task.
        let grad_phi = want_phi.then(|| {
            let field = field.expect("the input field is kept when the phase is tracked");
            let gu: &[Complex<f32>] = bytemuck::cast_slice(grad_field.storage::<f32>());
            let mut out = vec![0f32; ny * nx];
            with_f32(&field, |u| {
                let u: &[Complex<f32>] = bytemuck::cast_slice(u);
                out.par_chunks_mut(nx).enumerate().for_each(|(row, o)| {
                    for k in 0..b {
                        let at = (k * ny + row) * nx;
                        let (u, g) = (&u[at..at + nx], &gu[at..at + nx]);
                        for ((o, u), g) in o.iter_mut().zip(u).zip(g) {
                            *o += u.re * g.im - u.im * g.re;
                        }
                    }
                });
            });
            FlexTensor::from_data(TensorData::new(out, Shape::new([ny, nx])))
        });
        (want_field.then_some(grad_field), grad_phi)
    }

    fn intensity_backward(field: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let [b, ny, nx] = field_dims("intensity backward", &field);
        assert_eq!(grad.shape().as_slice(), [b, ny, nx], "intensity backward");
        let mut out = exclusive(field);
        with_f32(&grad, |g| {
            complex_mut(&mut out)
                .par_chunks_mut(nx)
                .with_min_len(MIN_ROWS)
                .zip(g.par_chunks(nx))
                .for_each(|(z, g)| z.iter_mut().zip(g).for_each(|(z, &g)| *z *= 2.0 * g));
        });
        out
    }
}
