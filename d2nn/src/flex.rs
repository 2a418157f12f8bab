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

use crate::ops::{ModulateGrads, OpticsBackward, OpticsOps, SharedPropagator};

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

/// `[Ny, Nx]` of a mask tensor (`what`: "phase" or "amplitude", f32), or a panic naming `op`.
fn mask_dims(op: &str, what: &str, t: &FlexTensor) -> [usize; 2] {
    let shape = t.shape();
    assert!(
        t.dtype() == DType::F32 && shape.num_dims() == 2,
        "{op}: expected an f32 {what} tensor [Ny, Nx], got {:?} {shape}",
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

/// `a·exp(iφ)` for every sample of the masks (`a ≡ 1` when `amp` is `None`).
fn phasors(amp: Option<&FlexTensor>, phi: &FlexTensor) -> Vec<Complex<f32>> {
    with_f32(phi, |p| match amp {
        None => p.par_iter().map(|&p| Complex::from_polar(1.0, p)).collect(),
        Some(amp) => with_f32(amp, |a| {
            p.par_iter()
                .zip(a)
                .map(|(&p, &a)| Complex::from_polar(a, p))
                .collect()
        }),
    })
}

/// Applies `f(sample, mask value)` to every sample of every field (rows of `nx` samples, `ny`
/// rows per field), `mask` being one `ny·nx` plane shared by the batch.
fn for_each_masked<T: Sync>(
    data: &mut [Complex<f32>],
    mask: &[T],
    nx: usize,
    f: impl Fn(&mut Complex<f32>, &T) + Sync + Send,
) {
    let ny = mask.len() / nx;
    data.par_chunks_mut(nx)
        .with_min_len(MIN_ROWS)
        .enumerate()
        .for_each(|(row, line)| {
            let m = &mask[(row % ny) * nx..][..nx];
            line.iter_mut().zip(m).for_each(|(z, e)| f(z, e));
        });
}

/// Forward of both modulations: every field of the batch times `a·exp(iφ)` (`a ≡ 1` when
/// `amp` is `None`).
fn modulate(op: &str, field: FlexTensor, amp: Option<&FlexTensor>, phi: &FlexTensor) -> FlexTensor {
    let [_, ny, nx] = field_dims(op, &field);
    assert_eq!(
        mask_dims(op, "phase", phi),
        [ny, nx],
        "{op}: phase/field shape"
    );
    if let Some(amp) = amp {
        let dims = mask_dims(op, "amplitude", amp);
        assert_eq!(dims, [ny, nx], "{op}: amplitude/field shape");
    }
    let mask = phasors(amp, phi);
    let mut out = exclusive(field);
    for_each_masked(complex_mut(&mut out), &mask, nx, |z, m| *z *= m);
    out
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
        modulate("phase_modulate", field, None, &phi)
    }

    fn amplitude_phase_modulate(field: FlexTensor, amp: FlexTensor, phi: FlexTensor) -> FlexTensor {
        modulate("amplitude_phase_modulate", field, Some(&amp), &phi)
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
    fn modulate_backward(
        field: Option<FlexTensor>,
        amp: Option<FlexTensor>,
        phi: FlexTensor,
        grad: FlexTensor,
        (want_field, want_amp, want_phi): (bool, bool, bool),
    ) -> ModulateGrads<Flex> {
        let [b, ny, nx] = field_dims("modulate backward", &grad);
        // h = e^{−iφ}·g, in the gradient's buffer when it is not shared.
        let mut h = exclusive(grad);
        for_each_masked(complex_mut(&mut h), &phasors(None, &phi), nx, |z, e| {
            *z *= e.conj()
        });
        let plane = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, Shape::new([ny, nx])));
        // s = Σ_b conj(u)·h, one row of the mask per task; g_a = Re s, g_φ = a·Im s.
        let (mut grad_amp, mut grad_phi) = (None, None);
        if want_amp || want_phi {
            let field = field.expect("the input field is kept when a mask is tracked");
            let hs: &[Complex<f32>] = bytemuck::cast_slice(h.storage::<f32>());
            let mut s = vec![Complex::<f32>::default(); ny * nx];
            with_f32(&field, |u| {
                let u: &[Complex<f32>] = bytemuck::cast_slice(u);
                s.par_chunks_mut(nx).enumerate().for_each(|(row, s)| {
                    for k in 0..b {
                        let at = (k * ny + row) * nx;
                        let (u, h) = (&u[at..at + nx], &hs[at..at + nx]);
                        for ((s, u), h) in s.iter_mut().zip(u).zip(h) {
                            *s += u.conj() * h;
                        }
                    }
                });
            });
            grad_amp = want_amp.then(|| plane(s.iter().map(|s| s.re).collect()));
            grad_phi = want_phi.then(|| {
                plane(match &amp {
                    None => s.iter().map(|s| s.im).collect(),
                    Some(amp) => {
                        with_f32(amp, |a| s.iter().zip(a).map(|(s, a)| a * s.im).collect())
                    }
                })
            });
        }
        // g_u = a·h.
        let grad_field = want_field.then(|| {
            if let Some(amp) = &amp {
                with_f32(amp, |a| {
                    for_each_masked(complex_mut(&mut h), a, nx, |z, a| *z *= *a)
                });
            }
            h
        });
        (grad_field, grad_amp, grad_phi)
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
