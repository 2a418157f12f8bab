//! [`OpticsOps`] and [`OpticsBackward`] for burn's CPU backend Flex, in `f32` and `f64`.
//!
//! Flex tensors are reference-counted byte buffers. An operation whose output has the shape of
//! an input writes into that input's buffer when the buffer is contiguous and not shared (burn's
//! own Flex kernels do the same), and into a fresh copy otherwise — never into data someone else
//! can see. Propagation is [`Propagator::propagate_in_place`] /
//! [`Propagator::adjoint_in_place`] on that buffer, reinterpreted as `[Complex<T>]` without
//! copying (`num_complex::Complex` is `repr(C)` and `bytemuck::Pod`). Every kernel is generic
//! over the element type `T` ([`Precision`]) and chosen by the field tensor's dtype.

use burn::backend::flex::FlexTensor;
use burn::backend::{DType, Flex, Shape, TensorData, TensorMetadata};
use num_complex::Complex;
use photonflow_optics::Propagator;
use photonflow_optics::propagate::WindowPlan;
use rayon::prelude::*;

use crate::ops::{ModulateGrads, OpticsBackward, OpticsOps};
use crate::precision::{Precision, SharedPropagator, SharedWindow, expect_dtype};

/// Calls `$f::<T>($args)` with `T` the element type of the field tensor `$t` (f32 or f64), or
/// panics naming `$op`.
macro_rules! by_dtype {
    ($op:expr, $t:expr, $f:ident($($arg:expr),*)) => {
        match $t.dtype() {
            DType::F32 => $f::<f32>($($arg),*),
            DType::F64 => $f::<f64>($($arg),*),
            other => panic!("{}: fields must hold f32 or f64, not {other:?}", $op),
        }
    };
}

/// Rows per rayon task: enough work per task to amortise scheduling.
const MIN_ROWS: usize = 16;

/// `[B, Ny, Nx]` of a field tensor `[B, Ny, Nx, 2]` of `T`, or a panic naming `op`.
fn field_dims<T: Precision>(op: &str, t: &FlexTensor) -> [usize; 3] {
    let shape = t.shape();
    expect_dtype(op, "field", t.dtype(), T::DTYPE);
    assert!(
        shape.num_dims() == 4 && shape[3] == 2,
        "{op}: expected a field tensor [B, Ny, Nx, 2], got {shape}"
    );
    [shape[0], shape[1], shape[2]]
}

/// `[Ny, Nx]` of a mask tensor of `T` (`what`: "phase" or "amplitude"), or a panic naming `op`.
fn mask_dims<T: Precision>(op: &str, what: &str, t: &FlexTensor) -> [usize; 2] {
    let shape = t.shape();
    expect_dtype(op, what, t.dtype(), T::DTYPE);
    assert!(
        shape.num_dims() == 2,
        "{op}: expected a {what} tensor [Ny, Nx], got {shape}"
    );
    [shape[0], shape[1]]
}

/// The samples of `t` as a contiguous slice, copying only if `t` is a strided view.
fn with_slice<T: Precision, R>(t: &FlexTensor, f: impl FnOnce(&[T]) -> R) -> R {
    match t.as_slice::<T>() {
        Some(s) => f(s),
        None => f(t.to_contiguous().as_slice::<T>().expect("contiguous")),
    }
}

/// `t` as a tensor that owns its contiguous buffer exclusively: `t` itself when it already does
/// (no copy), otherwise a parallel copy.
fn exclusive<T: Precision>(t: FlexTensor) -> FlexTensor {
    let n = t.layout().num_elements();
    if t.is_unique()
        && t.layout().contiguous_offsets() == Some((0, n))
        && t.bytes().len() == n * size_of::<T>()
    {
        return t;
    }
    let mut out = vec![T::zero(); n];
    with_slice(&t, |src: &[T]| {
        out.par_chunks_mut(1 << 14)
            .zip(src.par_chunks(1 << 14))
            .for_each(|(d, s)| d.copy_from_slice(s));
    });
    FlexTensor::from_data(TensorData::new(out, t.shape()))
}

/// The buffer of an exclusively owned tensor of `T` (see [`exclusive`]) as complex samples.
fn complex_mut<T: Precision>(t: &mut FlexTensor) -> &mut [Complex<T>] {
    bytemuck::cast_slice_mut(t.storage_mut::<T>())
}

/// `a·exp(iφ)` for every sample of the masks (`a ≡ 1` when `amp` is `None`).
fn phasors<T: Precision>(amp: Option<&FlexTensor>, phi: &FlexTensor) -> Vec<Complex<T>> {
    with_slice(phi, |p: &[T]| match amp {
        None => p
            .par_iter()
            .map(|&p| Complex::from_polar(T::one(), p))
            .collect(),
        Some(amp) => with_slice(amp, |a: &[T]| {
            p.par_iter()
                .zip(a)
                .map(|(&p, &a)| Complex::from_polar(a, p))
                .collect()
        }),
    })
}

/// Applies `f(sample, mask value)` to every sample of every field (rows of `nx` samples, `ny`
/// rows per field), `mask` being one `ny·nx` plane shared by the batch.
fn for_each_masked<T: Precision, M: Sync>(
    data: &mut [Complex<T>],
    mask: &[M],
    nx: usize,
    f: impl Fn(&mut Complex<T>, &M) + Sync + Send,
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
fn modulate<T: Precision>(
    op: &str,
    field: FlexTensor,
    amp: Option<&FlexTensor>,
    phi: &FlexTensor,
) -> FlexTensor {
    let [_, ny, nx] = field_dims::<T>(op, &field);
    assert_eq!(
        mask_dims::<T>(op, "phase", phi),
        [ny, nx],
        "{op}: phase/field shape"
    );
    if let Some(amp) = amp {
        let dims = mask_dims::<T>(op, "amplitude", amp);
        assert_eq!(dims, [ny, nx], "{op}: amplitude/field shape");
    }
    let mask = phasors::<T>(amp, phi);
    let mut out = exclusive::<T>(field);
    for_each_masked(complex_mut::<T>(&mut out), &mask, nx, |z, m| *z = *z * m);
    out
}

/// Propagation (or its adjoint) of every field of the batch with `plan`.
fn propagate<T: Precision>(
    field: FlexTensor,
    plan: &SharedPropagator,
    adjoint: bool,
) -> FlexTensor {
    let [_, ny, nx] = field_dims::<T>("propagate", &field);
    let plan: &dyn Propagator<T> = T::propagator(plan).unwrap_or_else(|| {
        panic!(
            "propagate: the fields hold {:?} but the plan is for {:?}",
            T::DTYPE,
            plan.dtype()
        )
    });
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
    let mut out = exclusive::<T>(field);
    let data = complex_mut::<T>(&mut out);
    let done = if adjoint {
        plan.adjoint_in_place(data)
    } else {
        plan.propagate_in_place(data)
    };
    done.unwrap_or_else(|e| panic!("propagate: {e}"));
    out
}

/// Propagation of every field of the batch onto a window plan's window (or, `adjoint`, back):
/// a new tensor of the other plane's shape.
fn propagate_window<T: Precision>(
    field: FlexTensor,
    plan: &SharedWindow,
    adjoint: bool,
) -> FlexTensor {
    const OP: &str = "propagate_window";
    let [b, ny, nx] = field_dims::<T>(OP, &field);
    let plan: &WindowPlan<T> = T::window(plan).unwrap_or_else(|| {
        panic!(
            "{OP}: the fields hold {:?} but the plan is for {:?}",
            T::DTYPE,
            plan.dtype()
        )
    });
    let (from, to) = if adjoint {
        (plan.window().grid, plan.input_grid())
    } else {
        (plan.input_grid(), plan.window().grid)
    };
    assert!(
        (ny, nx) == (from.ny, from.nx),
        "{OP}: fields are {ny}×{nx} but the plan's {} is {}×{}",
        if adjoint { "window" } else { "input grid" },
        from.ny,
        from.nx
    );
    let mut out = vec![T::zero(); 2 * b * to.ny * to.nx];
    with_slice(&field, |u: &[T]| {
        let (u, o): (&[Complex<T>], &mut [Complex<T>]) =
            (bytemuck::cast_slice(u), bytemuck::cast_slice_mut(&mut out));
        let done = if adjoint {
            plan.adjoint(u, o)
        } else {
            plan.propagate(u, o)
        };
        done.unwrap_or_else(|e| panic!("{OP}: {e}"));
    });
    FlexTensor::from_data(TensorData::new(out, Shape::new([b, to.ny, to.nx, 2])))
}

/// `|u|²` of every sample: `[B, Ny, Nx, 2]` → `[B, Ny, Nx]`.
fn intensity<T: Precision>(field: FlexTensor) -> FlexTensor {
    let [b, ny, nx] = field_dims::<T>("intensity", &field);
    let mut out = vec![T::zero(); b * ny * nx];
    with_slice(&field, |u: &[T]| {
        let u: &[Complex<T>] = bytemuck::cast_slice(u);
        out.par_chunks_mut(nx)
            .with_min_len(MIN_ROWS)
            .zip(u.par_chunks(nx))
            .for_each(|(o, z)| o.iter_mut().zip(z).for_each(|(o, z)| *o = z.norm_sqr()));
    });
    FlexTensor::from_data(TensorData::new(out, Shape::new([b, ny, nx])))
}

impl OpticsOps for Flex {
    fn propagate(field: FlexTensor, plan: SharedPropagator, adjoint: bool) -> FlexTensor {
        by_dtype!("propagate", field, propagate(field, &plan, adjoint))
    }

    fn propagate_window(field: FlexTensor, plan: SharedWindow, adjoint: bool) -> FlexTensor {
        by_dtype!(
            "propagate_window",
            field,
            propagate_window(field, &plan, adjoint)
        )
    }

    fn phase_modulate(field: FlexTensor, phi: FlexTensor) -> FlexTensor {
        const OP: &str = "phase_modulate";
        by_dtype!(OP, field, modulate(OP, field, None, &phi))
    }

    fn amplitude_phase_modulate(field: FlexTensor, amp: FlexTensor, phi: FlexTensor) -> FlexTensor {
        const OP: &str = "amplitude_phase_modulate";
        by_dtype!(OP, field, modulate(OP, field, Some(&amp), &phi))
    }

    fn intensity(field: FlexTensor) -> FlexTensor {
        by_dtype!("intensity", field, intensity(field))
    }
}

impl OpticsBackward for Flex {
    fn modulate_backward(
        field: Option<FlexTensor>,
        amp: Option<FlexTensor>,
        phi: FlexTensor,
        grad: FlexTensor,
        want: (bool, bool, bool),
    ) -> ModulateGrads<Flex> {
        by_dtype!(
            "modulate backward",
            grad,
            modulate_backward(field, amp, phi, grad, want)
        )
    }

    fn intensity_backward(field: FlexTensor, grad: FlexTensor) -> FlexTensor {
        by_dtype!("intensity backward", field, intensity_backward(field, grad))
    }
}

/// [`OpticsBackward::modulate_backward`] for fields of `T`.
fn modulate_backward<T: Precision>(
    field: Option<FlexTensor>,
    amp: Option<FlexTensor>,
    phi: FlexTensor,
    grad: FlexTensor,
    (want_field, want_amp, want_phi): (bool, bool, bool),
) -> ModulateGrads<Flex> {
    let [b, ny, nx] = field_dims::<T>("modulate backward", &grad);
    // h = e^{−iφ}·g, in the gradient's buffer when it is not shared.
    let mut h = exclusive::<T>(grad);
    for_each_masked(
        complex_mut::<T>(&mut h),
        &phasors::<T>(None, &phi),
        nx,
        |z, e| *z = *z * e.conj(),
    );
    let plane = |v: Vec<T>| FlexTensor::from_data(TensorData::new(v, Shape::new([ny, nx])));
    // s = Σ_b conj(u)·h, one row of the mask per task; g_a = Re s, g_φ = a·Im s.
    let (mut grad_amp, mut grad_phi) = (None, None);
    if want_amp || want_phi {
        let field = field.expect("the input field is kept when a mask is tracked");
        let hs: &[Complex<T>] = bytemuck::cast_slice(h.storage::<T>());
        let mut s = vec![Complex::<T>::default(); ny * nx];
        with_slice(&field, |u: &[T]| {
            let u: &[Complex<T>] = bytemuck::cast_slice(u);
            s.par_chunks_mut(nx).enumerate().for_each(|(row, s)| {
                for k in 0..b {
                    let at = (k * ny + row) * nx;
                    let (u, h) = (&u[at..at + nx], &hs[at..at + nx]);
                    for ((s, u), h) in s.iter_mut().zip(u).zip(h) {
                        *s = *s + u.conj() * h;
                    }
                }
            });
        });
        grad_amp = want_amp.then(|| plane(s.iter().map(|s| s.re).collect()));
        grad_phi = want_phi.then(|| {
            plane(match &amp {
                None => s.iter().map(|s| s.im).collect(),
                Some(amp) => with_slice(amp, |a: &[T]| {
                    s.iter().zip(a).map(|(s, &a)| a * s.im).collect()
                }),
            })
        });
    }
    // g_u = a·h.
    let grad_field = want_field.then(|| {
        if let Some(amp) = &amp {
            with_slice(amp, |a: &[T]| {
                for_each_masked(complex_mut::<T>(&mut h), a, nx, |z, &a| *z = z.scale(a))
            });
        }
        h
    });
    (grad_field, grad_amp, grad_phi)
}

/// [`OpticsBackward::intensity_backward`] for fields of `T`: `2·u·grad`.
fn intensity_backward<T: Precision>(field: FlexTensor, grad: FlexTensor) -> FlexTensor {
    let [b, ny, nx] = field_dims::<T>("intensity backward", &field);
    assert_eq!(grad.shape().as_slice(), [b, ny, nx], "intensity backward");
    let mut out = exclusive::<T>(field);
    let two = T::of(2.0);
    with_slice(&grad, |g: &[T]| {
        complex_mut::<T>(&mut out)
            .par_chunks_mut(nx)
            .with_min_len(MIN_ROWS)
            .zip(g.par_chunks(nx))
            .for_each(|(z, g)| {
                z.iter_mut()
                    .zip(g)
                    .for_each(|(z, &g)| *z = z.scale(two * g))
            });
    });
    out
}
