//! Propagation onto output windows as burn operations: the fused op against the optics
//! kernel, the exact adjoint, gradients against central finite differences in f32 and f64,
//! and the composite path (the plan's dense matrices, what GPU backends run) against the fused
//! one, for every window method.

// The helpers are shared with ops.rs; this file needs only some of them.
#[allow(dead_code)]
mod common;

use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use common::{Draws, Rng, check_gradients, rel_diff, tensor_as, values64};
use num_complex::Complex;
use photonflow_d2nn::{
    Precision, composite, intensity, propagate_window, propagate_window_adjoint,
};
use photonflow_optics::propagate::{Window, WindowPlan};
use photonflow_optics::{Grid, Method, Planner, Propagation, Wave};

const B: usize = 2;
/// Input 15×12 samples; window 9×11 samples at other pitches, off axis.
const NX: usize = 15;
const NY: usize = 12;
const KX: usize = 9;
const KY: usize = 11;

/// One plan per window method (checks off: the operator is what is tested).
fn plans<T: Precision>() -> Vec<(Method, Arc<WindowPlan<T>>)> {
    let grid = Grid::new(NX, NY, 4e-6, 5e-6).unwrap();
    let window = Window::new(Grid::new(KX, KY, 6.5e-6, 3e-6).unwrap(), (7e-6, -4e-6)).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let planner = Planner::<T>::new();
    [
        Method::BandLimitedAsm,
        Method::Sas,
        Method::FresnelSingleFft,
        Method::Fraunhofer,
    ]
    .into_iter()
    .map(|m| {
        let p = Propagation::new(300e-6).with_method(m).with_check(false);
        (
            m,
            Arc::new(planner.plan_window(&grid, wave, &p, &window).unwrap()),
        )
    })
    .collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn fields<T: Precision>(data: &[f32], [ny, nx]: [usize; 2], device: &Device) -> Tensor<4> {
    tensor_as(&f64s(data), T::DTYPE, device).reshape([B, ny, nx, 2])
}

/// The op is the kernel; `⟨A x, y⟩ = ⟨x, Aᴴ y⟩` through the ops.
fn forward_and_adjoint<T: Precision>(tol: f64) {
    let mut rng = Rng::new(31);
    let dot = |a: &[f64], b: &[f64]| -> Complex<f64> {
        a.chunks(2)
            .zip(b.chunks(2))
            .map(|(x, y)| Complex::new(x[0], x[1]).conj() * Complex::new(y[0], y[1]))
            .sum()
    };
    for (method, plan) in plans::<T>() {
        let x = rng.normals(2 * B * NY * NX);
        let y = rng.normals(2 * B * KY * KX);
        let input: Vec<Complex<T>> = x
            .chunks(2)
            .map(|z| Complex::new(T::of(z[0] as f64), T::of(z[1] as f64)))
            .collect();
        let mut kernel = vec![Complex::<T>::default(); B * KY * KX];
        plan.propagate(&input, &mut kernel).unwrap();
        let kernel: Vec<f64> = kernel
            .iter()
            .flat_map(|z| [z.re.f64(), z.im.f64()])
            .collect();
        for device in [Device::flex(), Device::flex().autodiff()] {
            let u = fields::<T>(&x, [NY, NX], &device);
            let kept = u.clone();
            let out = propagate_window(u, &plan);
            assert_eq!(out.dims(), [B, KY, KX, 2]);
            let ax = values64(out);
            let err = rel_diff(&ax, &kernel);
            assert!(
                err <= tol,
                "{method} on {device:?}: forward vs kernel {err:e}"
            );
            assert_eq!(values64(kept), f64s(&x), "{method}: the input was modified");
            let ahy = values64(propagate_window_adjoint(
                fields::<T>(&y, [KY, KX], &device),
                &plan,
            ));
            assert_eq!(ahy.len(), 2 * B * NY * NX);
            let (lhs, rhs) = (dot(&ax, &f64s(&y)), dot(&f64s(&x), &ahy));
            let err = (lhs - rhs).norm() / lhs.norm();
            assert!(err < tol, "{method}: adjoint identity {err:e}");
        }
    }
}

#[test]
fn window_op_is_the_kernel_and_its_adjoint() {
    forward_and_adjoint::<f32>(1e-5);
    forward_and_adjoint::<f64>(1e-13);
}

fn gradients_in<T: Precision>(eps: f64, tol: f64) {
    let mut rng = Rng::new(32);
    for (method, plan) in plans::<T>() {
        let forward = |x: Vec<Tensor<1>>| {
            let u = x[0].clone().reshape([B, NY, NX, 2]);
            propagate_window(u, &plan).reshape([2 * B * KY * KX])
        };
        let backward = |x: Vec<Tensor<1>>| {
            let u = x[0].clone().reshape([B, KY, KX, 2]);
            propagate_window_adjoint(u, &plan).reshape([2 * B * NY * NX])
        };
        for (label, f, n) in [
            ("window", &forward as common::Op, 2 * B * NY * NX),
            ("window adjoint", &backward, 2 * B * KY * KX),
        ] {
            let name = format!("{label} {method} {:?}", T::DTYPE);
            let input = vec![rng.normals(n)];
            for r in check_gradients(&name, f, &input, T::DTYPE, eps, 8, &mut rng) {
                assert!(r.elements <= tol && r.direction <= tol, "{name}: {r:?}");
            }
        }
    }
}

#[test]
fn window_gradients_match_finite_differences() {
    gradients_in::<f32>(1e-2, 1e-2);
    gradients_in::<f64>(1e-4, 1e-6);
}

/// The composite path (dense matrices in burn operations) equals the fused kernels, forward
/// and in the gradient of a camera-intensity loss.
fn composite_matches_fused<T: Precision>(fwd: f64, bwd: f64) {
    let mut rng = Rng::new(33);
    for (method, plan) in plans::<T>() {
        let x = rng.normals(2 * B * NY * NX);
        let device = Device::flex();
        let u = fields::<T>(&x, [NY, NX], &device);
        let err = rel_diff(
            &values64(composite::propagate_window(u.clone(), &plan)),
            &values64(propagate_window(u.clone(), &plan)),
        );
        assert!(err <= fwd, "{method}: composite vs fused forward {err:e}");
        let v = fields::<T>(&rng.normals(2 * B * KY * KX), [KY, KX], &device);
        let err = rel_diff(
            &values64(composite::propagate_window_adjoint(v.clone(), &plan)),
            &values64(propagate_window_adjoint(v, &plan)),
        );
        assert!(err <= fwd, "{method}: composite vs fused adjoint {err:e}");
        let w = tensor_as(
            &f64s(&rng.uniforms(B * KY * KX, 0.0, 1.0)),
            T::DTYPE,
            &Device::flex().autodiff(),
        )
        .reshape([B, KY, KX]);
        let grad = |fused: bool| {
            let leaf = fields::<T>(&x, [NY, NX], &Device::flex().autodiff()).require_grad();
            let out = if fused {
                intensity(propagate_window(leaf.clone(), &plan))
            } else {
                composite::intensity(composite::propagate_window(leaf.clone(), &plan))
            };
            let g = (out * w.clone()).sum().backward();
            values64(leaf.grad(&g).expect("tracked"))
        };
        let err = rel_diff(&grad(false), &grad(true));
        assert!(err <= bwd, "{method}: composite vs fused gradient {err:e}");
    }
}

#[test]
fn composite_window_matches_the_fused_window() {
    composite_matches_fused::<f32>(1e-5, 1e-4);
    composite_matches_fused::<f64>(1e-12, 1e-11);
}
