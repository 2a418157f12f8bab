//! End to end: a two-layer phase-only diffractive network learns to focus light (a plane wave,
//! or two beams at once) into a small square with Adam.

use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use num_complex::Complex;
use photonflow_d2nn::{field_to_tensor, intensity, phase_modulate, propagate, region_energies};
use photonflow_optics::detect::{Detector, Region};
use photonflow_optics::propagate::Plan;
use photonflow_optics::{Field, Grid, Planner, Propagation, Wave, plane_wave};

/// Phase masks of the layers, `[N, N]` radians each.
#[derive(Module, Debug)]
struct D2nn {
    phases: Vec<Param<Tensor<2>>>,
}

impl D2nn {
    /// Fraction of each field's output-plane energy that lands in the target, `[B]`.
    fn forward(&self, input: Tensor<4>, plan: &Plan<f32>, target: Tensor<3>) -> Tensor<1> {
        let mut u = input;
        for phi in &self.phases {
            u = propagate(phase_modulate(u, phi.val()), plan);
        }
        let i = intensity(u);
        let [b, _, _] = i.dims();
        let total = i.clone().sum_dim(1).sum_dim(2).reshape([b]);
        let inside = region_energies(i, target).reshape([b]);
        inside / total
    }
}

/// Trains two phase masks (Adam, 150 steps) so that the fields of `input` land in the
/// 4×4-pixel square centred at `spot` (m); returns the mean energy fraction there before and
/// after.
fn learn_to_focus(input: &Field<f32>, spot: (f64, f64)) -> (f32, f32) {
    let grid = *input.grid();
    let n = grid.nx;
    let wave = Wave::vacuum(input.wavelength()).unwrap();
    let plan = Planner::new()
        .plan(&grid, wave, &Propagation::new(2e-3))
        .unwrap();
    let target = Detector::new(grid, vec![Region::square(spot, 4.0 * grid.dx)]).unwrap();
    let device = Device::flex().autodiff();
    device.seed(7);
    let input = field_to_tensor(input, &device);
    let target = photonflow_d2nn::detector_weights(&target, &device);
    let mut model = D2nn {
        phases: (0..2)
            .map(|_| {
                Param::from_tensor(Tensor::random(
                    [n, n],
                    burn::tensor::Distribution::Uniform(-0.1, 0.1),
                    &device,
                ))
            })
            .collect(),
    };
    let mut optim = AdamConfig::new().init();
    let fraction = |m: &D2nn| -> f32 {
        m.forward(input.clone(), &plan, target.clone())
            .mean()
            .into_scalar::<f32>()
    };
    let start = fraction(&model);
    let clock = Instant::now();
    let steps = 150;
    for _ in 0..steps {
        let loss = (model.forward(input.clone(), &plan, target.clone()).neg() + 1.0).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    let end = fraction(&model);
    println!(
        "energy fraction in the 4×4-pixel target at {spot:?}: {start:.4} → {end:.4} after {steps} \
         Adam steps ({:.1} ms/step)",
        clock.elapsed().as_secs_f64() * 1e3 / steps as f64
    );
    (start, end)
}

#[test]
fn two_layer_network_focuses_a_plane_wave_into_a_chosen_spot() {
    let grid = Grid::square(40, 8e-6).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let input = plane_wave::<f32>(&grid, wave, 1.0, (0.0, 0.0)).unwrap();
    let (start, end) = learn_to_focus(&input, (40e-6, -24e-6));
    assert!(end > 0.9, "{start} → {end}");
    assert!(start < 0.05, "{start}");
}

#[test]
fn two_layer_network_focuses_two_beams_into_one_spot() {
    let grid = Grid::square(40, 8e-6).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    // Two Gaussian beams (one off-centre), both to be focused into a 4×4-pixel square.
    let beam = |x0: f64| {
        move |x: f64, y: f64| Complex::from((-((x - x0).powi(2) + y * y) / 80e-6f64.powi(2)).exp())
    };
    let a = Field::<f32>::from_fn(grid, wave.wavelength, beam(0.0)).unwrap();
    let b = Field::<f32>::from_fn(grid, wave.wavelength, beam(24e-6)).unwrap();
    let input = Field::from_vec([a.data(), b.data()].concat(), grid, wave.wavelength).unwrap();
    let (start, end) = learn_to_focus(&input, (0.0, 0.0));
    assert!(end > 0.9, "{start} → {end}");
    assert!(end > start);
}
