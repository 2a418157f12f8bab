//! The custom operations: forward results against the optics kernels, exact adjoints, and
//! gradients against central finite differences (loss `Σ w·out²` summed in f64) in f32 and in
//! f64, for every propagation method.

mod common;

use burn::tensor::{Device, Tensor};
use common::{Draws, Rng, check_gradients, rel_diff, tensor_as, tensor1, values, values64};
use num_complex::Complex;
use photonflow_d2nn::{
    Precision, amplitude_phase_modulate, composite, field_to_tensor, intensity, phase_modulate,
    propagate, propagate_adjoint, region_energies, tensor_to_field,
};
use photonflow_optics::propagate::Plan;
use photonflow_optics::{Field, Grid, Method, Padding, Planner, Propagation, Wave};

const B: usize = 2;
/// Non-square, not a power of two, different pitches along x and y.
const NX: usize = 15;
const NY: usize = 12;

fn grid() -> Grid {
    Grid::new(NX, NY, 4e-6, 5e-6).unwrap()
}

fn wave() -> Wave {
    Wave::vacuum(632.8e-9).unwrap()
}

/// The plans under test: every method, band-limited ASM with 2× linear padding and circular,
/// the single-FFT methods (output pitch ≠ input pitch). Sampling checks are off: the operator is
/// what is tested, not its accuracy as optics.
fn plans<T: Precision>(planner: &Planner<T>) -> Vec<(String, Plan<T>)> {
    let p = |prop: Propagation| {
        planner
            .plan(&grid(), wave(), &prop.with_check(false))
            .unwrap()
    };
    let mut plans = vec![(
        "bl-asm circular".to_string(),
        p(Propagation::new(60e-6).with_padding(Padding::Circular)),
    )];
    for method in Method::ALL
        .into_iter()
        .filter(|&m| m != Method::Auto && !m.window_only())
    {
        let z = if method.changes_sampling() {
            1e-3
        } else {
            60e-6
        };
        plans.push((
            format!("{method} linear"),
            p(Propagation::new(z).with_method(method)),
        ));
    }
    plans
}

/// Runs `check::<T>(eps, tol)` in f32 (finite-difference step 1e-2, tolerance 1e-2) and in f64
/// (step 1e-4, tolerance 1e-6).
macro_rules! in_both_precisions {
    ($check:ident) => {
        $check::<f32>(1e-2, 1e-2);
        $check::<f64>(1e-4, 1e-6);
    };
}

fn field_shape() -> [usize; 4] {
    [B, NY, NX, 2]
}

fn field_len() -> usize {
    B * NY * NX * 2
}

fn assert_within(name: &str, reports: Vec<common::GradReport>, tol: f64) {
    for r in reports {
        assert!(r.elements <= tol && r.direction <= tol, "{name}: {r:?}");
    }
}

/// `v` as f64.
fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A field tensor of `T` holding `data` (interleaved re, im).
fn field_of<T: Precision>(data: &[f32], device: &Device) -> Tensor<4> {
    tensor_as(&f64s(data), T::DTYPE, device).reshape(field_shape())
}

/// The fused op equals the optics kernel it wraps (relative `tol`), on both devices, without
/// writing into a shared input.
fn forward_vs_kernel<T: Precision>(tol: f64) {
    let mut rng = Rng::new(1);
    for (name, plan) in plans(&Planner::<T>::new()) {
        let data = rng.normals(field_len());
        let mut reference: Vec<Complex<T>> = data
            .chunks(2)
            .map(|z| Complex::new(T::of(z[0] as f64), T::of(z[1] as f64)))
            .collect();
        plan.propagate_in_place(&mut reference).unwrap();
        let reference: Vec<f64> = reference
            .iter()
            .flat_map(|z| [z.re.f64(), z.im.f64()])
            .collect();
        for device in [Device::flex(), Device::flex().autodiff()] {
            let u = field_of::<T>(&data, &device);
            let kept = u.clone(); // shared input: the op must not write into it
            let out = values64(propagate(u, &plan));
            let err = rel_diff(&out, &reference);
            println!(
                "{name} {:?} on {device:?}: forward vs kernel {err:.1e}",
                T::DTYPE
            );
            assert!(err <= tol, "{name}: {err}");
            assert_eq!(
                values64(kept),
                f64s(&data),
                "{name}: the input was modified"
            );
        }
    }
}

#[test]
fn forward_equals_the_optics_kernel() {
    forward_vs_kernel::<f32>(1e-5);
    forward_vs_kernel::<f64>(1e-13);
}

/// The burn op takes an `optics::Field` through `field_to_tensor` and back.
#[test]
fn forward_through_fields() {
    let planner = Planner::<f32>::new();
    let plan = planner
        .plan(&grid(), wave(), &Propagation::new(60e-6))
        .unwrap();
    let data = Rng::new(14).normals(field_len());
    let input = Field::from_vec(bytemuck::cast_slice(&data).to_vec(), grid(), 1e-6).unwrap();
    let mut reference = Field::from_vec(input.data().to_vec(), grid(), wave().wavelength).unwrap();
    plan.propagate(&mut reference).unwrap();
    let out = propagate(field_to_tensor(&input, &Device::flex()), &plan);
    let out = tensor_to_field(out, plan.output_grid(), wave().wavelength).unwrap();
    assert_eq!(out.grid(), reference.grid());
    let (a, b): (&[f32], &[f32]) = (
        bytemuck::cast_slice(out.data()),
        bytemuck::cast_slice(reference.data()),
    );
    assert!(rel_diff(&f64s(a), &f64s(b)) <= 1e-5);
}

/// `⟨A x, y⟩ = ⟨x, Aᴴ y⟩` for the op and the adjoint op (relative `tol`).
fn adjoint_identity<T: Precision>(tol: f64) {
    let mut rng = Rng::new(2);
    let device = Device::flex();
    let dot = |a: &[f64], b: &[f64]| -> Complex<f64> {
        a.chunks(2)
            .zip(b.chunks(2))
            .map(|(x, y)| Complex::new(x[0], x[1]).conj() * Complex::new(y[0], y[1]))
            .sum()
    };
    for (name, plan) in plans(&Planner::<T>::new()) {
        let x = rng.normals(field_len());
        let y = rng.normals(field_len());
        let ax = values64(propagate(field_of::<T>(&x, &device), &plan));
        let ahy = values64(propagate_adjoint(field_of::<T>(&y, &device), &plan));
        let (lhs, rhs) = (dot(&ax, &f64s(&y)), dot(&f64s(&x), &ahy));
        let err = (lhs - rhs).norm() / lhs.norm();
        println!(
            "{name} {:?}: <Ax,y> = {lhs:.6}, <x,A^H y> = {rhs:.6}, rel {err:.1e}",
            T::DTYPE
        );
        assert!(err < tol, "{name}: {err}");
    }
}

#[test]
fn adjoint_op_is_the_adjoint() {
    adjoint_identity::<f32>(1e-5);
    adjoint_identity::<f64>(1e-13);
}

fn propagate_gradients_in<T: Precision>(eps: f64, tol: f64) {
    let mut rng = Rng::new(3);
    for (name, plan) in plans(&Planner::<T>::new()) {
        let op = |x: Vec<Tensor<1>>| {
            let u = x[0].clone().reshape(field_shape());
            propagate(u, &plan).reshape([field_len()])
        };
        let adjoint = |x: Vec<Tensor<1>>| {
            let u = x[0].clone().reshape(field_shape());
            propagate_adjoint(u, &plan).reshape([field_len()])
        };
        let input = vec![rng.normals(field_len())];
        for (label, f) in [("propagate", &op as common::Op), ("adjoint", &adjoint)] {
            let name = format!("{label} {name}");
            let reports = check_gradients(&name, f, &input, T::DTYPE, eps, 8, &mut rng);
            assert_within(&name, reports, tol);
        }
    }
}

#[test]
fn propagate_gradients() {
    in_both_precisions!(propagate_gradients_in);
}

fn phase_modulate_gradients_in<T: Precision>(eps: f64, tol: f64) {
    let mut rng = Rng::new(4);
    let op = |x: Vec<Tensor<1>>| {
        let u = x[0].clone().reshape(field_shape());
        let phi = x[1].clone().reshape([NY, NX]);
        phase_modulate(u, phi).reshape([field_len()])
    };
    let inputs = vec![
        rng.normals(field_len()),
        rng.uniforms(NY * NX, -std::f64::consts::PI, std::f64::consts::PI),
    ];
    let reports = check_gradients("phase_modulate", &op, &inputs, T::DTYPE, eps, 8, &mut rng);
    assert_within("phase_modulate", reports, tol);
}

#[test]
fn phase_modulate_gradients() {
    in_both_precisions!(phase_modulate_gradients_in);
}

/// Gradients of `u·a·e^{iφ}` for the field, the amplitude (of both signs, away from zero and
/// through it) and the phase.
fn amplitude_phase_modulate_gradients_in<T: Precision>(eps: f64, tol: f64) {
    let mut rng = Rng::new(11);
    let op = |x: Vec<Tensor<1>>| {
        let u = x[0].clone().reshape(field_shape());
        let a = x[1].clone().reshape([NY, NX]);
        let phi = x[2].clone().reshape([NY, NX]);
        amplitude_phase_modulate(u, a, phi).reshape([field_len()])
    };
    let inputs = vec![
        rng.normals(field_len()),
        rng.uniforms(NY * NX, -1.5, 1.5),
        rng.uniforms(NY * NX, -std::f64::consts::PI, std::f64::consts::PI),
    ];
    let name = "amplitude_phase_modulate";
    let reports = check_gradients(name, &op, &inputs, T::DTYPE, eps, 8, &mut rng);
    assert_eq!(reports.len(), 3);
    assert_within(name, reports, tol);
}

#[test]
fn amplitude_phase_modulate_gradients() {
    in_both_precisions!(amplitude_phase_modulate_gradients_in);
}

fn intensity_gradients_in<T: Precision>(eps: f64, tol: f64) {
    let mut rng = Rng::new(5);
    let op =
        |x: Vec<Tensor<1>>| intensity(x[0].clone().reshape(field_shape())).reshape([B * NY * NX]);
    let inputs = vec![rng.normals(field_len())];
    let reports = check_gradients("intensity", &op, &inputs, T::DTYPE, eps, 8, &mut rng);
    assert_within("intensity", reports, tol);
}

#[test]
fn intensity_gradients() {
    in_both_precisions!(intensity_gradients_in);
}

fn region_energies_gradients_in<T: Precision>(eps: f64, tol: f64) {
    let mut rng = Rng::new(15);
    const R: usize = 3;
    let op = |x: Vec<Tensor<1>>| {
        let i = x[0].clone().reshape([B, NY, NX]);
        let w = x[1].clone().reshape([R, NY, NX]);
        region_energies(i, w).reshape([B * R])
    };
    let inputs = vec![
        rng.uniforms(B * NY * NX, 0.0, 2.0),
        rng.uniforms(R * NY * NX, 0.0, 1.0),
    ];
    let reports = check_gradients("region_energies", &op, &inputs, T::DTYPE, eps, 8, &mut rng);
    assert_within("region_energies", reports, tol);
}

#[test]
fn region_energies_gradients() {
    in_both_precisions!(region_energies_gradients_in);
}

/// The whole chain of one diffractive layer and a detector, for every plan: gradients for the
/// input field, the phase mask and the detector weights.
fn layer_and_detector_gradients_in<T: Precision>(eps: f64, tol: f64) {
    let mut rng = Rng::new(6);
    const R: usize = 3;
    for (name, plan) in plans(&Planner::<T>::new()) {
        let op = |x: Vec<Tensor<1>>| {
            let u = x[0].clone().reshape(field_shape());
            let phi = x[1].clone().reshape([NY, NX]);
            let w = x[2].clone().reshape([R, NY, NX]);
            let i = intensity(propagate(phase_modulate(u, phi), &plan));
            region_energies(i, w).reshape([B * R])
        };
        let inputs = vec![
            rng.normals(field_len()),
            rng.uniforms(NY * NX, -3.0, 3.0),
            rng.uniforms(R * NY * NX, 0.0, 1.0),
        ];
        let name = format!("layer {name}");
        let reports = check_gradients(&name, &op, &inputs, T::DTYPE, eps, 8, &mut rng);
        assert_within(&name, reports, tol);
    }
}

#[test]
fn layer_and_detector_gradients() {
    in_both_precisions!(layer_and_detector_gradients_in);
}

/// A field of one precision does not meet a plan of the other.
#[test]
#[should_panic(expected = "propagate: the field tensor holds F64 where F32 is expected")]
fn precision_mismatch_panics() {
    let plan = Planner::<f32>::new()
        .plan(&grid(), wave(), &Propagation::new(60e-6))
        .unwrap();
    let u = field_of::<f64>(&Rng::new(16).normals(field_len()), &Device::flex());
    propagate(u, &plan);
}

/// A mask of another precision than the field's is refused.
#[test]
#[should_panic(expected = "phase_modulate: the phase tensor holds F32 where F64 is expected")]
fn mask_precision_mismatch_panics() {
    let device = Device::flex();
    let u = field_of::<f64>(&Rng::new(17).normals(field_len()), &device);
    phase_modulate(u, Tensor::zeros([NY, NX], &device));
}

/// The forward pass equals `u·a·e^{iφ}` computed on the host, on both devices, without writing
/// into a shared input; with `a ≡ 1` it equals [`phase_modulate`].
#[test]
fn amplitude_phase_modulate_forward() {
    let mut rng = Rng::new(12);
    let u = rng.normals(field_len());
    let a = rng.uniforms(NY * NX, -1.5, 1.5);
    let phi = rng.uniforms(NY * NX, -3.0, 3.0);
    let expect: Vec<f32> = {
        let z: &[Complex<f32>] = bytemuck::cast_slice(&u);
        let y: Vec<Complex<f32>> = z
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let p = i % (NY * NX);
                let m = Complex::from_polar(a[p] as f64, phi[p] as f64);
                let y = Complex::new(z.re as f64, z.im as f64) * m;
                Complex::new(y.re as f32, y.im as f32)
            })
            .collect();
        bytemuck::cast_slice(&y).to_vec()
    };
    for device in [Device::flex(), Device::flex().autodiff()] {
        let field = tensor1(&u, &device).reshape(field_shape());
        let amp = tensor1(&a, &device).reshape([NY, NX]);
        let phase = tensor1(&phi, &device).reshape([NY, NX]);
        let kept = field.clone(); // shared input: the op must not write into it
        let out = values(amplitude_phase_modulate(field.clone(), amp, phase.clone()));
        let err = rel_diff(&f64s(&out), &f64s(&expect));
        println!("amplitude_phase_modulate on {device:?}: forward vs host {err:.1e}");
        assert!(err <= 1e-6, "{err}");
        assert_eq!(values(kept), u, "the input was modified");
        let ones = Tensor::<2>::ones([NY, NX], &device);
        let with_ones = values(amplitude_phase_modulate(field.clone(), ones, phase.clone()));
        assert_eq!(with_ones, values(phase_modulate(field, phase)));
    }
}

#[test]
fn region_energies_match_the_detector() {
    use photonflow_d2nn::detector_weights;
    use photonflow_optics::detect::{Detector, Region};
    let g = Grid::square(20, 2e-6).unwrap();
    let det = Detector::new(
        g,
        vec![
            Region::square((0.0, 0.0), 7e-6),
            Region::new((-9e-6, 5e-6), 10e-6, 6e-6),
        ],
    )
    .unwrap();
    let mut rng = Rng::new(7);
    let data = rng.normals(3 * g.len() * 2);
    let field = Field::from_vec(bytemuck::cast_slice(&data).to_vec(), g, 1e-6).unwrap();
    let device = Device::flex();
    let e = region_energies(
        intensity(field_to_tensor(&field, &device)),
        detector_weights(&det, &device),
    );
    assert_eq!(e.dims(), [3, 2]);
    let expect = det.energies(&field).unwrap();
    let got: Vec<f64> = values64(e).iter().map(|v| v * g.cell_area()).collect();
    for (a, b) in got.iter().zip(&expect) {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "{a} vs {b}");
    }
}

#[test]
fn field_tensor_round_trip() {
    let mut rng = Rng::new(8);
    let data = rng.normals(field_len());
    let field = Field::from_vec(bytemuck::cast_slice(&data).to_vec(), grid(), 1e-6).unwrap();
    let t = field_to_tensor(&field, &Device::flex());
    assert_eq!(t.dims(), field_shape());
    assert_eq!(tensor_to_field(t.clone(), grid(), 1e-6).unwrap(), field);
    assert!(tensor_to_field(t, Grid::square(NX, 1e-6).unwrap(), 1e-6).is_err());
}

/// Strided inputs (a view of a wider tensor) and inputs held elsewhere are read, never written.
#[test]
fn views_and_shared_inputs_are_left_alone() {
    let planner = Planner::<f32>::new();
    let plan = planner
        .plan(&grid(), wave(), &Propagation::new(60e-6))
        .unwrap();
    let device = Device::flex();
    let mut rng = Rng::new(9);
    let wide = tensor1(&rng.normals(B * NY * NX * 4), &device).reshape([B, NY, NX, 4]);
    let view = wide.clone().narrow(3, 1, 2);
    let dense = tensor1(&values(view.clone()), &device).reshape(field_shape());
    let phi = tensor1(&rng.uniforms(NY * NX, -3.0, 3.0), &device).reshape([NY, NX]);
    let before = values(wide.clone());
    let pairs = [
        (
            propagate(view.clone(), &plan),
            propagate(dense.clone(), &plan),
        ),
        (
            phase_modulate(view.clone(), phi.clone()),
            phase_modulate(dense.clone(), phi.clone()),
        ),
        (
            amplitude_phase_modulate(view.clone(), phi.clone().cos(), phi.clone()),
            amplitude_phase_modulate(dense.clone(), phi.clone().cos(), phi),
        ),
    ];
    for (a, b) in pairs {
        assert_eq!(values(a), values(b));
    }
    assert_eq!(values(intensity(view)), values(intensity(dense)));
    assert_eq!(values(wide), before);
}

/// The field gradient of a phase modulation is the same whether or not the phase is tracked
/// (the op keeps the input field only when the phase needs a gradient).
#[test]
fn field_gradient_with_a_constant_phase() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(10);
    let u = rng.normals(field_len());
    let phi = rng.uniforms(NY * NX, -3.0, 3.0);
    let w = tensor1(&rng.normals(field_len()), &device).reshape(field_shape());
    let field_grad = |track_phi: bool| {
        let x = tensor1(&u, &device).reshape(field_shape()).require_grad();
        let mut p = tensor1(&phi, &device).reshape([NY, NX]);
        if track_phi {
            p = p.require_grad();
        }
        let grads = (phase_modulate(x.clone(), p) * w.clone()).sum().backward();
        values(x.grad(&grads).unwrap())
    };
    assert_eq!(field_grad(false), field_grad(true));
}

/// Each gradient of an amplitude and phase modulation is the same whatever else is tracked (the
/// op keeps the field and the amplitude only when a gradient needs them).
#[test]
fn amplitude_phase_gradients_with_partial_tracking() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(13);
    let data = [
        rng.normals(field_len()),
        rng.uniforms(NY * NX, -1.5, 1.5),
        rng.uniforms(NY * NX, -3.0, 3.0),
    ];
    let w = tensor1(&rng.normals(field_len()), &device).reshape(field_shape());
    let grads = |track: [bool; 3]| -> Vec<Option<Vec<f32>>> {
        let leaves: Vec<Tensor<1>> = data
            .iter()
            .zip(track)
            .map(|(v, t)| {
                let x = tensor1(v, &device);
                if t { x.require_grad() } else { x }
            })
            .collect();
        let out = amplitude_phase_modulate(
            leaves[0].clone().reshape(field_shape()),
            leaves[1].clone().reshape([NY, NX]),
            leaves[2].clone().reshape([NY, NX]),
        );
        let g = (out * w.clone()).sum().backward();
        leaves.iter().map(|x| x.grad(&g).map(values)).collect()
    };
    let all = grads([true; 3]);
    for k in 0..3 {
        let mut only = [false; 3];
        only[k] = true;
        let some = grads(only);
        for (j, g) in some.iter().enumerate() {
            assert_eq!(g.is_some(), j == k, "tracked {k}: gradient {j}");
        }
        assert_eq!(some[k], all[k], "input {k} alone");
    }
}

/// Which implementation of the operations a test runs.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// The fused kernels (the crate-root wrappers on Flex).
    Fused,
    /// The burn-operation composition of [`composite`] (what GPU backends run).
    Composite,
}

/// Two layers and a detector through `path`: `u → e^{iφ₁} → A → a·e^{iφ₂} → Aᴴ → |·|² → E`.
fn two_layers<T: Precision>(
    path: Path,
    plan: &Plan<T>,
    [u, a, phi1, phi2, w]: [Tensor<1>; 5],
) -> Tensor<2> {
    let u = u.reshape(field_shape());
    let (a, phi1, phi2) = (
        a.reshape([NY, NX]),
        phi1.reshape([NY, NX]),
        phi2.reshape([NY, NX]),
    );
    let w = w.reshape([3, NY, NX]);
    let i = match path {
        Path::Fused => intensity(propagate_adjoint(
            amplitude_phase_modulate(propagate(phase_modulate(u, phi1), plan), a, phi2),
            plan,
        )),
        Path::Composite => composite::intensity(composite::propagate_adjoint(
            composite::amplitude_phase_modulate(
                composite::propagate(composite::phase_modulate(u, phi1), plan),
                a,
                phi2,
            ),
            plan,
        )),
    };
    region_energies(i, w)
}

/// The composite path equals the fused one, forward (each propagation, relative `fwd`) and
/// backward (gradients of a scalar loss of [`two_layers`] for the field and all three masks,
/// relative `bwd`), for every plan.
fn composite_matches_fused<T: Precision>(fwd: f64, bwd: f64) {
    let mut rng = Rng::new(18);
    for (name, plan) in plans(&Planner::<T>::new()) {
        let device = Device::flex();
        let u = field_of::<T>(&rng.normals(field_len()), &device);
        for adjoint in [false, true] {
            let run = |path| {
                values64(match (path, adjoint) {
                    (Path::Fused, false) => propagate(u.clone(), &plan),
                    (Path::Fused, true) => propagate_adjoint(u.clone(), &plan),
                    (Path::Composite, false) => composite::propagate(u.clone(), &plan),
                    (Path::Composite, true) => composite::propagate_adjoint(u.clone(), &plan),
                })
            };
            let err = rel_diff(&run(Path::Composite), &run(Path::Fused));
            println!(
                "{name} {:?} adjoint {adjoint}: composite vs fused {err:.1e}",
                T::DTYPE
            );
            assert!(err <= fwd, "{name} adjoint {adjoint}: {err}");
        }
        let inputs = [
            rng.normals(field_len()),
            rng.uniforms(NY * NX, 0.2, 1.5),
            rng.uniforms(NY * NX, -3.0, 3.0),
            rng.uniforms(NY * NX, -3.0, 3.0),
            rng.uniforms(3 * NY * NX, 0.0, 1.0),
        ];
        let autodiff = Device::flex().autodiff();
        let grads = |path| -> Vec<Vec<f64>> {
            let leaves = inputs
                .clone()
                .map(|v| tensor_as(&f64s(&v), T::DTYPE, &autodiff).require_grad());
            let loss = two_layers(path, &plan, leaves.clone()).sum();
            let g = loss.backward();
            leaves[..4]
                .iter()
                .map(|x| values64(x.grad(&g).expect("tracked")))
                .collect()
        };
        let (fused, comp) = (grads(Path::Fused), grads(Path::Composite));
        for (k, (f, c)) in fused.iter().zip(&comp).enumerate() {
            let err = rel_diff(c, f);
            println!(
                "{name} {:?}: gradient {k} composite vs fused {err:.1e}",
                T::DTYPE
            );
            assert!(err <= bwd, "{name}: gradient {k}: {err}");
        }
    }
}

#[test]
fn composite_path_matches_the_fused_path() {
    composite_matches_fused::<f32>(1e-5, 1e-4);
    composite_matches_fused::<f64>(1e-12, 1e-11);
}
