//! An untrained network as the prior of an in-line hologram's reconstruction: PhysenNet (Wang
//! et al., Light Sci. Appl. 9, 77 (2020)), a deep image prior (Ulyanov et al., CVPR 2018)
//! with the physics of [`photonflow_optics::inline`] as its forward model.
//!
//! A U-Net (Ronneberger et al. 2015) with random weights takes the first hologram and puts
//! out the object's phase on [`Inline::grid`]; the phase lights a plane wave
//! ([`phase_modulate`]), each hologram's plan propagates it ([`propagate`], the optics
//! kernels), and Adam adjusts the weights — no training data, only the holograms — so that
//! `Σ(|A_z t| − √I)² / Σ I` over the camera falls. What the network can draw easily (smooth,
//! piecewise-regular images) it draws before it fits noise; that is the prior.
//!
//! The network's own layers are Burn's: 3×3 convolutions (`same` padding) with leaky ReLUs,
//! two per level, max-pooling down, nearest-neighbour upsampling and skip connections up,
//! and a 1×1 convolution out. Its input is padded to a multiple of `2^(levels − 1)` and its
//! output cropped back.

use std::time::Instant;

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use photonflow_optics::OpticsError;
use photonflow_optics::inline::{Inline, propagation};
use photonflow_optics::propagate::{Plan, Planner};

use crate::error::{D2nnError, Result};
use crate::ops::{intensity, phase_modulate, propagate};

/// Slope of the leaky ReLUs.
const LEAK: f64 = 0.01;

/// Two 3×3 convolutions with leaky ReLUs.
#[derive(Module, Debug)]
struct Block {
    first: Conv2d,
    second: Conv2d,
}

impl Block {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Self {
            first: conv(input, output),
            second: conv(output, output),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = leaky_relu(self.first.forward(x), LEAK);
        leaky_relu(self.second.forward(x), LEAK)
    }
}

/// A U-Net: one input channel, one output channel, `channels[k]` features at level `k`.
#[derive(Module, Debug)]
pub struct UNet {
    down: Vec<Block>,
    up: Vec<Block>,
    out: Conv2d,
    pool: MaxPool2d,
}

impl UNet {
    /// A U-Net of `channels.len()` levels with random weights (Burn's initialisers, seeded
    /// by the device).
    pub fn new(channels: &[usize], device: &Device) -> Self {
        let mut down = Vec::with_capacity(channels.len());
        let mut previous = 1;
        for &c in channels {
            down.push(Block::new(previous, c, device));
            previous = c;
        }
        let up = (0..channels.len().saturating_sub(1))
            .rev()
            .map(|k| Block::new(channels[k + 1] + channels[k], channels[k], device))
            .collect();
        Self {
            down,
            up,
            out: Conv2dConfig::new([channels[0], 1], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    /// `[B, 1, H, W]` → `[B, 1, H, W]`; `H` and `W` multiples of `2^(levels − 1)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut x = x;
        for (k, block) in self.down.iter().enumerate() {
            if k > 0 {
                x = self.pool.forward(x);
            }
            x = block.forward(x);
            skips.push(x.clone());
        }
        skips.pop();
        for block in &self.up {
            let skip = skips.pop().expect("one skip a level");
            let [_, _, h, w] = skip.dims();
            let options =
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]);
            x = block.forward(Tensor::cat(vec![interpolate(x, options), skip], 1));
        }
        self.out.forward(x)
    }
}

/// Options of [`reconstruct`].
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkOptions {
    /// Adam steps.
    pub iterations: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Features at each level of the U-Net (its depth is their count).
    pub channels: Vec<usize>,
    /// Seed of the network's random weights.
    pub seed: u64,
}

impl NetworkOptions {
    /// Refuses options no network can run with ([`OpticsError::InvalidParameter`] naming
    /// `iterations`, `learning rate` or `channels`).
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |name, problem| D2nnError::Optics(OpticsError::InvalidParameter { name, problem });
        if self.iterations == 0 {
            return Err(invalid("iterations", "0; give at least 1".into()));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(invalid(
                "learning rate",
                format!("{}: give a positive rate, e.g. 0.001", self.learning_rate),
            ));
        }
        if self.channels.is_empty() || self.channels.len() > 6 || self.channels.contains(&0) {
            return Err(invalid(
                "channels",
                format!(
                    "{:?}: give 1 to 6 levels of at least 1 feature, e.g. 16,32,64,128",
                    self.channels
                ),
            ));
        }
        Ok(())
    }
}

impl Default for NetworkOptions {
    fn default() -> Self {
        Self {
            iterations: 500,
            learning_rate: 1e-3,
            channels: vec![16, 32, 64, 128],
            seed: 1,
        }
    }
}

/// What [`reconstruct`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkReconstruction {
    /// The object's phase over the camera's pixels, radians (row-major `[ny, nx]`).
    pub phase: Vec<f64>,
    /// The relative amplitude misfit `Σ(|A_z t| − √I)² / Σ I` at the end.
    pub misfit: f64,
    /// The misfit at each step (before it).
    pub history: Vec<f64>,
    /// Seconds of the steps.
    pub seconds: f64,
}

/// Reconstructs a phase object from its holograms (`[hologram, ny, nx]` over `inline`'s
/// camera, relative to the illumination) with an untrained U-Net as the prior, on the Flex
/// CPU backend. `progress(done, total)` after each step.
pub fn reconstruct(
    inline: &Inline,
    intensity_data: &[f64],
    options: &NetworkOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<NetworkReconstruction> {
    let (camera, grid) = (inline.camera(), inline.grid());
    let (cy, cx) = (camera.ny, camera.nx);
    let planes = inline.distances().len();
    inline.check_holograms(intensity_data)?;
    options.validate()?;
    let (my, mx) = (grid.ny, grid.nx);
    let (oy, ox) = inline.margin();
    // The network's canvas: the object's grid, padded to a multiple of 2^(levels − 1).
    let unit = 1 << (options.channels.len() - 1);
    let (py, px) = (my.div_ceil(unit) * unit, mx.div_ceil(unit) * unit);
    // What autodiff keeps: about eight f32 maps a feature of a level (two convolutions, their
    // activations, the skip, and their gradients), a level a quarter of the one above.
    let features: f64 = (options.channels.iter().enumerate())
        .map(|(k, &c)| c as f64 * 2.0 * 0.25f64.powi(k as i32))
        .sum();
    let bytes = (py * px) as f64 * 4.0 * 8.0 * features;
    photonflow_optics::memory::check_fits(
        bytes as u64,
        || {
            format!(
                "a U-Net of {:?} features on a {px}×{py} canvas",
                options.channels
            )
        },
        "use fewer --channels or crop the holograms",
    )?;
    let device = Device::flex().autodiff();
    device.seed(options.seed);
    // Its input: the first hologram's amplitude less 1, on the camera's pixels of the canvas.
    let mut input = vec![0f32; py * px];
    for (k, &i) in intensity_data[..cy * cx].iter().enumerate() {
        input[(k / cx + oy) * px + k % cx + ox] = (i.max(0.0).sqrt() - 1.0) as f32;
    }
    let input = Tensor::<4>::from_data(TensorData::new(input, [1, 1, py, px]), &device);
    // The data: each hologram's amplitude on the object's grid, and where the camera is.
    let window: Vec<usize> = inline.window().collect();
    let mut target = vec![0f32; planes * my * mx];
    let mut mask = vec![0f32; my * mx];
    let mut power = 0.0;
    for (k, hologram) in intensity_data.chunks_exact(cy * cx).enumerate() {
        for (&w, &i) in window.iter().zip(hologram) {
            target[k * my * mx + w] = i.max(0.0).sqrt() as f32;
            mask[w] = 1.0;
            power += i.max(0.0);
        }
    }
    let power = power.max(f64::MIN_POSITIVE);
    let target = Tensor::<3>::from_data(TensorData::new(target, [planes, my, mx]), &device);
    let mask = Tensor::<3>::from_data(TensorData::new(mask, [1, my, mx]), &device);
    let planner = Planner::<f32>::new();
    let plans: Vec<Plan<f32>> = inline
        .distances()
        .iter()
        .map(|&z| planner.plan(&grid, inline.wave(), &propagation(z)))
        .collect::<std::result::Result<_, _>>()?;
    let mut plane = vec![0f32; my * mx * 2];
    for pair in plane.chunks_exact_mut(2) {
        pair[0] = 1.0;
    }
    let light = Tensor::<4>::from_data(TensorData::new(plane, [1, my, mx, 2]), &device);
    let phase_of = |net: &UNet| -> Tensor<2> {
        net.forward(input.clone())
            .slice([0..1, 0..1, 0..my, 0..mx])
            .reshape([my, mx])
    };
    let misfit_of = |phase: Tensor<2>| -> Tensor<1> {
        let field = phase_modulate(light.clone(), phase);
        let amplitudes: Vec<Tensor<3>> = plans
            .iter()
            .map(|plan| (intensity(propagate(field.clone(), plan)) + 1e-12).sqrt())
            .collect();
        let residual = (Tensor::cat(amplitudes, 0) - target.clone()) * mask.clone();
        residual.square().sum() / power
    };
    let mut net = UNet::new(&options.channels, &device);
    let mut optim = AdamConfig::new().init();
    let mut history = Vec::with_capacity(options.iterations);
    let start = Instant::now();
    for step in 0..options.iterations {
        let loss = misfit_of(phase_of(&net));
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(D2nnError::Config {
                origin: String::new(),
                problem: format!(
                    "the misfit diverged at step {} ({value}); lower the learning rate",
                    step + 1
                ),
            });
        }
        history.push(value);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(options.learning_rate, net, grads);
        progress(step + 1, options.iterations);
    }
    let seconds = start.elapsed().as_secs_f64();
    let phase = phase_of(&net);
    let misfit = f64::from(misfit_of(phase.clone()).into_scalar::<f32>());
    let phase = phase.into_data().try_into_vec::<f32>().expect("f32 phase");
    let phase = window.iter().map(|&w| f64::from(phase[w])).collect();
    Ok(NetworkReconstruction {
        phase,
        misfit,
        history,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use num_complex::Complex;
    use photonflow_optics::inline::phase_quality;
    use photonflow_optics::{Grid, Wave};

    use super::*;

    /// A smooth phase bump and a dip on `grid` (camera `n`² inside a margin `m`).
    fn object(grid: &Grid) -> Vec<Complex<f64>> {
        let (nx, ny) = (grid.nx as f64, grid.ny as f64);
        (0..grid.nx * grid.ny)
            .map(|k| {
                let (x, y) = (
                    (k % grid.nx) as f64 / nx - 0.45,
                    (k / grid.nx) as f64 / ny - 0.5,
                );
                let (x2, y2) = (x - 0.2, y + 0.15);
                let phi = 1.5 * (-(x * x + y * y) / 0.02).exp()
                    - 0.7 * (-(x2 * x2 + y2 * y2) / 0.005).exp();
                Complex::from_polar(1.0, phi)
            })
            .collect()
    }

    #[test]
    fn the_untrained_network_draws_the_phase() {
        let inline = Inline::new(
            Grid::square(32, 2e-6).unwrap(),
            Wave::vacuum(532e-9).unwrap(),
            &[2e-3, 2.5e-3],
            (4, 4),
        )
        .unwrap();
        let truth = object(&inline.grid());
        let holograms = inline.hologram(&truth).unwrap();
        let options = NetworkOptions {
            iterations: 150,
            learning_rate: 1e-2,
            channels: vec![8, 16],
            seed: 3,
        };
        let mut steps = 0;
        let r = reconstruct(&inline, &holograms, &options, |done, total| {
            assert_eq!(total, 150);
            steps = done;
        })
        .unwrap();
        assert_eq!((steps, r.history.len()), (150, 150));
        let true_phase: Vec<f64> = (0..32 * 32)
            .map(|k| truth[(k / 32 + 4) * 40 + k % 32 + 4].arg())
            .collect();
        let q = phase_quality(&r.phase, &true_phase, 32, 32).unwrap();
        eprintln!(
            "misfit {} -> {}, {q:?}, {} s",
            r.history[0], r.misfit, r.seconds
        );
        assert!(
            r.misfit < 0.05 * r.history[0],
            "{} -> {}",
            r.history[0],
            r.misfit
        );
        assert!(q.rms < 0.2, "{q:?}");
        // Bad options are refused.
        for bad in [
            NetworkOptions {
                iterations: 0,
                ..options.clone()
            },
            NetworkOptions {
                learning_rate: 0.0,
                ..options.clone()
            },
            NetworkOptions {
                channels: vec![],
                ..options.clone()
            },
            NetworkOptions {
                channels: vec![8, 0],
                ..options.clone()
            },
        ] {
            assert!(
                reconstruct(&inline, &holograms, &bad, |_, _| {}).is_err(),
                "{bad:?}"
            );
        }
        assert!(reconstruct(&inline, &holograms[1..], &options, |_, _| {}).is_err());
    }
}
