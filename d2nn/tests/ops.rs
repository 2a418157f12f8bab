//! The custom operations: forward results against the optics kernels, exact adjoints, and
//! gradients against central finite differences (f32, loss `Σ w·out²` summed in f64).

mod common;

use burn::tensor::{Device, Tensor};
use common::{Rng, check_gradients, tensor1, values};
use num_complex::Complex;
use photonflow_d2nn::{
    amplitude_phase_modulate, field_to_tensor, intensity, phase_modulate, propagate,
    propagate_adjoint, region_energies, tensor_to_field,
};
use photonflow_optics::propagate::Plan;
use photonflow_optics::{Field, Grid, Method, Padding, Planner, Propagation, Wave};

const B: usize = 2;
/// Non-square, not a power of two, different pitches along x and y.
const NX: usize = 15;
const NY: usize = 12;
/// Relative error allowed between autodiff and finite differences.
const TOL: f64 = 1e-2;

fn grid() -> Grid {
    Grid::new(NX, NY, 4e-6, 5e-6).unwrap()
}

fn wave() -> Wave {
    Wave::vacuum(632.8e-9).unwrap()
}

/// The plans under test: band-limited ASM with 2× linear padding and circular, and single-FFT
/// Fresnel (output pitch ≠ input pitch).
fn plans(planner: &Planner<f32>) -> Vec<(&'static str, Plan<f32>)> {
    let p = |prop: Propagation| planner.plan(&grid(), wave(), &prop).unwrap();
    vec![
        ("bl-asm linear", p(Propagation::new(60e-6))),
        (
            "bl-asm circular",
            p(Propagation::new(60e-6).with_padding(Padding::Circular)),
        ),
        (
            "fresnel-sfft",
            p(Propagation::new(1e-3).with_method(Method::FresnelSingleFft)),
        ),
    ]
}

fn field_shape() -> [usize; 4] {
    [B, NY, NX, 2]
}

fn field_len() -> usize {
    B * NY * NX * 2
}

/// max |a − b| / max |b|.
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x - y).abs() as f64)
        .fold(0.0, f64::max);
    let den = b.iter().map(|&y| y.abs() as f64).fold(0.0, f64::max);
    num / den
}

#[test]
fn forward_equals_the_optics_kernel() {
    let planner = Planner::new();
    let mut rng = Rng::new(1);
    for (name, plan) in plans(&planner) {
        let data = rng.normals(field_len());
        let samples: Vec<Complex<f32>> = bytemuck::cast_slice(&data).to_vec();
        let mut reference = Field::from_vec(samples, grid(), wave().wavelength).unwrap();
        let input = reference.clone();
        plan.propagate(&mut reference).unwrap();
        for device in [Device::flex(), Device::flex().autodiff()] {
            let u = field_to_tensor(&input, &device);
            let kept = u.clone(); // shared input: the op must not write into it
            let out = propagate(u, &plan);
            let out = tensor_to_field(out, plan.output_grid(), wave().wavelength).unwrap();
            assert_eq!(out.grid(), reference.grid());
            let (a, b): (&[f32], &[f32]) = (
                bytemuck::cast_slice(out.data()),
                bytemuck::cast_slice(reference.data()),
            );
            let err = rel_diff(a, b);
            println!("{name} on {device:?}: forward vs kernel {err:.1e}");
            assert!(err <= 1e-5, "{name}: {err}");
            assert_eq!(values(kept), data, "{name}: the input was modified");
        }
    }
}

#[test]
fn adjoint_op_is_the_adjoint() {
    let planner = Planner::new();
    let mut rng = Rng::new(2);
    let device = Device::flex();
    let dot = |a: &[f32], b: &[f32]| -> Complex<f64> {
        let (a, b): (&[Complex<f32>], &[Complex<f32>]) =
            (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
        a.iter()
            .zip(b)
            .map(|(x, y)| {
                Complex::new(x.re as f64, x.im as f64).conj()
                    * Complex::new(y.re as f64, y.im as f64)
            })
            .sum()
    };
    for (name, plan) in plans(&planner) {
        let x = rng.normals(field_len());
        let y = rng.normals(field_len());
        let t = |v: &[f32]| tensor1(v, &device).reshape(field_shape());
        let ax = values(propagate(t(&x), &plan));
        let ahy = values(propagate_adjoint(t(&y), &plan));
        let (lhs, rhs) = (dot(&ax, &y), dot(&x, &ahy));
        let err = (lhs - rhs).norm() / lhs.norm();
        println!("{name}: <Ax,y> = {lhs:.6}, <x,A^H y> = {rhs:.6}, rel {err:.1e}");
        assert!(err < 1e-5, "{name}: {err}");
    }
}

#[test]
fn propagate_gradients() {
    let planner = Planner::new();
    let mut rng = Rng::new(3);
    for (name, plan) in plans(&planner) {
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
            for r in check_gradients(&format!("{label} {name}"), f, &input, 1e-2, 8, &mut rng) {
                assert!(
                    r.elements <= TOL && r.direction <= TOL,
                    "{label} {name}: {r:?}"
                );
            }
        }
    }
}

#[test]
fn phase_modulate_gradients() {
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
    for r in check_gradients("phase_modulate", &op, &inputs, 1e-2, 8, &mut rng) {
        assert!(r.elements <= TOL && r.direction <= TOL, "{r:?}");
    }
}

/// Gradients of `u·a·e^{iφ}` for the field, the amplitude (of both signs, away from zero and
/// through it) and the phase.
#[test]
fn amplitude_phase_modulate_gradients() {
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
    let reports = check_gradients("amplitude_phase_modulate", &op, &inputs, 1e-2, 8, &mut rng);
    assert_eq!(reports.len(), 3);
    for r in reports {
        assert!(r.elements <= TOL && r.direction <= TOL, "{r:?}");
    }
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
        let err = rel_diff(&out, &expect);
        println!("amplitude_phase_modulate on {device:?}: forward vs host {err:.1e}");
        assert!(err <= 1e-6, "{err}");
        assert_eq!(values(kept), u, "the input was modified");
        let ones = Tensor::<2>::ones([NY, NX], &device);
        let with_ones = values(amplitude_phase_modulate(field.clone(), ones, phase.clone()));
        assert_eq!(with_ones, values(phase_modulate(field, phase)));
    }
}

#[test]
fn intensity_gradients() {
    let mut rng = Rng::new(5);
    let op =
        |x: Vec<Tensor<1>>| intensity(x[0].clone().reshape(field_shape())).reshape([B * NY * NX]);
    let inputs = vec![rng.normals(field_len())];
    for r in check_gradients("intensity", &op, &inputs, 1e-2, 8, &mut rng) {
        assert!(r.elements <= TOL && r.direction <= TOL, "{r:?}");
    }
}

/// The whole chain of one diffractive layer and a detector, for every plan: gradients for the
/// input field, the phase mask and the detector weights.
#[test]
fn layer_and_detector_gradients() {
    let planner = Planner::new();
    let mut rng = Rng::new(6);
    const R: usize = 3;
    for (name, plan) in plans(&planner) {
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
        for r in check_gradients(&format!("layer {name}"), &op, &inputs, 1e-2, 8, &mut rng) {
            assert!(r.elements <= TOL && r.direction <= TOL, "{name}: {r:?}");
        }
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
    let got: Vec<f64> = values(e)
        .iter()
        .map(|&v| v as f64 * g.cell_area())
        .collect();
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
    let planner = Planner::new();
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
