//! A diffractive network as Burn computes it: the fixed optics ([`Optics`]: grid, planned
//! propagations, detector, encoding, readout), the trainable parameters ([`Layers`]) and how the
//! parameters become physical masks ([`Parameterisation`]).
//!
//! Forward pass, for a batch of images:
//!
//! 1. encode every image on the input plane ([`Optics::encode`]): resampled onto the central
//!    `input.nx × input.ny` pixels ([`crate::data::GrayImage::resized`]), amplitude `v` or phase `exp(iπv)`;
//! 2. propagate to layer 0; for every layer, multiply by `a·exp(iφ)` and propagate to the next
//!    plane ([`Optics::energies`]);
//! 3. integrate `|u|²` over the detector regions and turn the energies into class scores
//!    ([`Optics::scores`]): the fraction of the detected energy in each class region, with
//!    differential detection `(E⁺ − E⁻)/(E⁺ + E⁻)` per class, or, in a hybrid
//!    optical–electronic network, a fully connected layer ([`Dense`]) of every region's energy;
//! 4. confidences are `softmax(score / T)`.
//!
//! The same [`Optics`] runs training (on an autodiff device, masks from [`Layers`]) and
//! evaluation of an exported [`OpticalSystem`] (masks read from its files): one forward pass.

use std::f64::consts::TAU;

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use num_complex::Complex;
use photonflow_optics::coherence::{Coherence, Decomposition, Line, stack_path_difference};
use photonflow_optics::memory;
use photonflow_optics::propagate::Plan;
use photonflow_optics::system::{
    DetectorSpec, Encoding, Input, Layer, LayerFiles, LinearHead, Material, Modulation,
    OpticalSystem, PropagationSpec, RegionSpec, ReliefScale,
};
use photonflow_optics::{Detector, Grid, Planner, Wave};
use rayon::prelude::*;

use crate::config::{Config, Estimator, Head, PhaseParam, Size};
use crate::detector_weights;
use crate::error::{D2nnError, Result};
use crate::eval::ImageRef;
use crate::lut::Lut;
use crate::ops::{amplitude_phase_modulate, intensity, phase_modulate, propagate, region_energies};
use crate::rng::Rng;

/// Added to denominators of the scores so that a dark detector plane gives 0, not NaN.
const EPS: f32 = 1e-12;

/// The fixed part of a network: everything but the masks.
#[derive(Debug)]
pub struct Optics {
    /// The description the optics were built from (its layers' masks are not used here).
    pub system: OpticalSystem,
    /// Sampling of every plane.
    pub grid: Grid,
    /// The light at the design wavelength.
    pub wave: Wave,
    /// The network at every line of its source's spectrum (one band, at the design
    /// wavelength, for a laser; [`OpticalSystem::source`]).
    pub bands: Vec<Band>,
    /// The detector regions.
    pub detector: Detector,
    /// The electronic layer of a hybrid network, as the system gives it (see
    /// [`Optics::load_head`]).
    pub head: Option<Dense>,
    planner: Planner<f32>,
    weights: Tensor<3>,
    device: Device,
}

/// The network at one line of its source's spectrum: the gaps planned at that wavelength, and
/// the source's directions there. The intensities of the bands (and of each band's directions)
/// add on the detector: light of different frequencies, and the directions of an incoherent
/// source, do not interfere.
#[derive(Debug, Clone)]
pub struct Band {
    /// Wavelength, and the share of the detected intensity this band carries.
    pub line: Line,
    /// `λ₀/λ`: a phase plate's or SLM's phase at this line is its design phase (in `[0, 2π)`)
    /// times this.
    pub scale: f64,
    /// How each relief's design phase becomes its phase at this line, its material's
    /// dispersion included ([`Layer::relief_at`]); `None` for the other layers.
    pub reliefs: Vec<Option<ReliefScale>>,
    /// Input → layer 0, layer k → layer k+1, …, last layer → detector, planned at this
    /// wavelength.
    pub plans: Vec<Plan<f32>>,
    /// The source's directions at this wavelength; `None`: one plane wave along z.
    modes: Option<Directions>,
}

/// The directions of a source at one line, and those a band propagates.
#[derive(Debug, Clone)]
struct Directions {
    /// Every direction, with its weight.
    all: Arc<Decomposition>,
    /// Those propagated: index into `all`, and share of the band's power.
    picked: Vec<(usize, f64)>,
}

impl Band {
    /// Fields propagated per image: the source's directions taken at this line (1 for a plane
    /// wave).
    pub fn fields(&self) -> usize {
        self.modes.as_ref().map_or(1, |d| d.picked.len())
    }

    /// The layers `masks` (designed at `λ₀`) at this band's line: a relief's phase and
    /// absorption follow its optical path and its material's dispersion (with its
    /// [`ReliefScale`] `r`: `φ·r.phase`, `a^r.path·exp(−r.absorption·φ)`, as
    /// [`Layer::transmission_at`] does for arrays); any other layer (a phase plate one wave
    /// deep, an SLM) shows its phase in `[0, 2π)` times `λ₀/λ`, the wrap passing gradients as
    /// if it were not there — as [`photonflow_optics::coherence::at_wavelength`] does for one
    /// pixel. At the design wavelength, the masks as they are.
    pub fn masks_at(&self, masks: &[Mask]) -> Vec<Mask> {
        if self.scale == 1.0 {
            return masks.to_vec();
        }
        masks
            .iter()
            .zip(&self.reliefs)
            .map(|(mask, relief)| {
                let phase = mask.phase.clone();
                match relief {
                    Some(r) => {
                        let mut amplitude = mask.amplitude.clone().map(|a| a.powf_scalar(r.path));
                        if r.absorption != 0.0 {
                            let extra = (phase.clone() * (-r.absorption)).exp();
                            amplitude = Some(amplitude.map_or(extra.clone(), |a| a * extra));
                        }
                        Mask {
                            phase: phase * r.phase,
                            amplitude,
                        }
                    }
                    None => {
                        let wrapped = phase.clone() - (phase / TAU).floor().detach() * TAU;
                        Mask {
                            phase: wrapped * self.scale,
                            amplitude: mask.amplitude.clone(),
                        }
                    }
                }
            })
            .collect()
    }

    /// `count` (line, direction) pairs drawn at random from the light of `bands` (a network's
    /// [`Optics::bands`]), each a band of one field carrying `1/count` of the intensity: an
    /// unbiased estimate of the detector intensity of all of them at the cost of `count`
    /// propagations. The lines are stratified over their cumulative power (one from each of
    /// `count` equal shares), the directions drawn in proportion to their power. A laser's one
    /// band comes back as it is.
    pub fn draw(bands: &[Band], rng: &mut Rng, count: usize) -> Vec<Band> {
        if bands.iter().map(Band::fields).sum::<usize>() == 1 || count == 0 {
            return bands.to_vec();
        }
        let pick = |weights: &mut dyn Iterator<Item = f64>, u: f64| -> usize {
            let mut acc = 0.0;
            let mut last = 0;
            for (i, w) in weights.enumerate() {
                acc += w;
                last = i;
                if u < acc {
                    return i;
                }
            }
            last
        };
        let total: f64 = bands.iter().map(|b| b.line.weight).sum();
        (0..count)
            .map(|k| {
                let u = (k as f64 + rng.uniform()) / count as f64 * total;
                let band = &bands[pick(&mut bands.iter().map(|b| b.line.weight), u)];
                let modes = band.modes.as_ref().map(|d| {
                    let sum: f64 = d.picked.iter().map(|p| p.1).sum();
                    let j = pick(&mut d.picked.iter().map(|p| p.1), rng.uniform() * sum);
                    Directions {
                        all: d.all.clone(),
                        picked: vec![(d.picked[j].0, 1.0)],
                    }
                });
                Band {
                    line: Line {
                        wavelength: band.line.wavelength,
                        weight: 1.0 / count as f64,
                    },
                    modes,
                    ..band.clone()
                }
            })
            .collect()
    }
}

/// The masks of one layer as tensors `[Ny, Nx]`: phase (radians) and amplitude (`None`: 1).
#[derive(Debug, Clone)]
pub struct Mask {
    /// Amplitude transmission, or `None` for a phase-only layer.
    pub amplitude: Option<Tensor<2>>,
    /// Phase, radians.
    pub phase: Tensor<2>,
}

impl Optics {
    /// Plans the propagations and places the detector of `system` on `device`. Planning checks
    /// each gap's sampling criterion and fails with the fix when it does not hold.
    ///
    /// Under broadband or partially coherent light ([`OpticalSystem::source`]), the spectrum is
    /// sampled finely enough for the path differences the network spans
    /// ([`stack_path_difference`]), every gap is planned at every line, and the source's cone
    /// is decomposed into plane waves at each; errors: a method that changes the sampling with
    /// the wavelength, and bands that do not fit in memory.
    pub fn new(system: &OpticalSystem, device: &Device) -> Result<Self> {
        let grid = system.grid()?;
        let wave = system.wave()?;
        let gaps = system.propagations()?;
        let laser = Line {
            wavelength: system.wavelength_m,
            weight: 1.0,
        };
        let (lines, coherence) = match &system.source {
            Some(source) if !source.is_laser() => {
                let illumination = source.illumination(system.wavelength_m);
                let spread = stack_path_difference(
                    &grid,
                    gaps.iter().map(|g| g.distance),
                    system.medium_index,
                    &illumination.coherence,
                );
                let spectrum = illumination.spectrum_for(spread, 1e-3)?;
                (spectrum.lines().to_vec(), illumination.coherence)
            }
            _ => (vec![laser], Coherence::Full),
        };
        let method = system.propagation.parse()?.0;
        if lines.len() > 1 && method.changes_sampling() {
            return Err(D2nnError::Config {
                origin: String::new(),
                problem: format!(
                    "method {method} samples every plane at a pitch that changes with the \
                     wavelength, so the lines of a broadband source cannot share the layers; use \
                     bl-asm, asm or rs"
                ),
            });
        }
        // Room for every line's gaps, and for the displaced plans of axial-misalignment
        // training (see `displaced`).
        let planner = Planner::with_capacity(64.max(2 * lines.len() * gaps.len()));
        let input = &system.input;
        let extent = (input.nx as f64 * grid.dx).hypot(input.ny as f64 * grid.dy);
        // every line keeps a transfer function per gap (one line: the planner's own check)
        let padded = |n: usize| gaps[0].padding.padded_len(n);
        if lines.len() > 1 {
            memory::check_fits(
                memory::bytes(&[lines.len(), gaps.len(), padded(grid.nx), padded(grid.ny), 8]),
                || format!("the propagations of {} spectral lines", lines.len()),
                "give fewer [source] lines (--lines) or a narrower spectrum",
            )?;
        }
        let mut bands = Vec::with_capacity(lines.len());
        for line in lines {
            let at = Wave::new(line.wavelength, system.medium_index)?;
            let plans = gaps
                .iter()
                .map(|p| planner.plan(&grid, at, p))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let modes = match coherence {
                Coherence::Full => None,
                _ => {
                    let d = coherence.decompose(&grid, at, extent, 1e-3)?;
                    Some(Directions {
                        picked: d.weights().iter().copied().enumerate().collect(),
                        all: Arc::new(d),
                    })
                }
            };
            let reliefs = system
                .layers
                .iter()
                .map(|l| l.relief_at(system.wavelength_m, line.wavelength, system.medium_index))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            bands.push(Band {
                line,
                scale: system.wavelength_m / line.wavelength,
                reliefs,
                plans,
                modes,
            });
        }
        let detector = system.detector()?;
        let weights = detector_weights(&detector, device);
        let mut system = system.clone();
        for l in &mut system.layers {
            (l.phase, l.amplitude, l.height) = (Vec::new(), None, None);
        }
        let head = Dense::of(&system.detector, device);
        Ok(Self {
            system,
            grid,
            wave,
            bands,
            detector,
            head,
            planner,
            weights,
            device: device.clone(),
        })
    }

    /// The device the tensors of this network live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.system.detector.classes.len()
    }

    /// Fields propagated per image: the directions of every band (training keeps them all
    /// for the backward pass).
    pub fn fields_per_image(&self) -> usize {
        self.bands.iter().map(Band::fields).sum()
    }

    /// Encodes images as input fields `[B, Ny, Nx, 2]` at the design wavelength, in a plane
    /// wave of unit amplitude; see [`Input::encode_into`]. Each image is resampled onto the
    /// input area with [`ImageRef::resized`]. Runs on the CPU over the batch with rayon.
    pub fn encode(&self, images: &[ImageRef]) -> Tensor<4> {
        self.encode_at(
            &self.resized(images),
            &Band {
                line: Line {
                    wavelength: self.system.wavelength_m,
                    weight: 1.0,
                },
                scale: 1.0,
                reliefs: Vec::new(),
                plans: Vec::new(),
                modes: None,
            },
        )
    }

    /// Every image resampled onto the input area ([`ImageRef::resized`]), on the CPU with rayon.
    fn resized(&self, images: &[ImageRef]) -> Vec<Vec<f32>> {
        let input = &self.system.input;
        images
            .par_iter()
            .map(|image| image.resized(input.ny, input.nx))
            .collect()
    }

    /// Encodes images resampled onto the input area ([`Optics::resized`]) as the input fields
    /// of a band, `[B·M, Ny, Nx, 2]`: a phase encoding's phase times the band's scale
    /// (`λ₀/λ`), each image lit by each of the band's `M` directions in turn (or a plane wave
    /// along z), every field scaled by the square root of its share of the intensity.
    fn encode_at(&self, images: &[Vec<f32>], band: &Band) -> Tensor<4> {
        let input = &self.system.input;
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        let n = nx * ny;
        let scale = band.scale as f32;
        // the fields lighting each image, scaled by the square roots of their shares of the
        // intensity; none: a plane wave along z of amplitude √weight
        let amplitude = band.line.weight.sqrt() as f32;
        let light: Vec<Complex<f32>> = match &band.modes {
            None => Vec::new(),
            Some(Directions { all, picked }) => {
                let mut light = vec![Complex::new(0.0, 0.0); picked.len() * n];
                light
                    .par_chunks_mut(n)
                    .zip(picked)
                    .for_each(|(f, &(j, w))| {
                        all.fill(j, f);
                        let a = amplitude * w.sqrt() as f32;
                        f.iter_mut().for_each(|z| *z *= a);
                    });
                light
            }
        };
        let m = band.fields();
        let mut data = vec![0f32; images.len() * m * n * 2];
        data.par_chunks_mut(m * n * 2)
            .zip(images)
            .for_each(|(fields, image)| {
                let fields: &mut [Complex<f32>] = bytemuck::cast_slice_mut(fields);
                let (first, rest) = fields.split_at_mut(n);
                if scale != 1.0 && input.encoding == Encoding::Phase {
                    let v: Vec<f32> = image.iter().map(|x| x * scale).collect();
                    input.encode_into(&v, nx, ny, first);
                } else {
                    input.encode_into(image, nx, ny, first);
                }
                for f in rest.chunks_exact_mut(n) {
                    f.copy_from_slice(first);
                }
                for (f, e) in fields.chunks_exact_mut(n).zip(light.chunks_exact(n)) {
                    f.iter_mut().zip(e).for_each(|(u, e)| *u *= e);
                }
                if light.is_empty() && amplitude != 1.0 {
                    fields.iter_mut().for_each(|u| *u *= amplitude);
                }
            });
        Tensor::from_data(
            TensorData::new(data, [images.len() * m, ny, nx, 2]),
            &self.device,
        )
    }

    /// Time-averaged intensity on the detector plane, `[B, Ny, Nx]`, of `images` through the
    /// layers `masks` (at the design wavelength): at every band of `bands` (this network's own
    /// [`Optics::bands`], or displaced ones from [`Optics::displaced`]) each image is encoded,
    /// lit by the band's modes, carried through the layers at that wavelength
    /// ([`Band::masks_at`]) and recorded as `|u|²`; the bands' and modes' intensities add,
    /// weighted by their share of the source's power. A laser gives `|u|²` of one coherent
    /// field.
    ///
    /// # Panics
    /// If `masks` does not hold one mask per layer and every band one plan per gap.
    pub fn detector_intensity(
        &self,
        images: &[ImageRef],
        masks: &[Mask],
        bands: &[Band],
    ) -> Tensor<3> {
        let (b, nx, ny) = (images.len(), self.grid.nx, self.grid.ny);
        // resampled once, encoded at every band
        let values = self.resized(images);
        let mut total: Option<Tensor<3>> = None;
        for band in bands {
            assert_eq!(masks.len() + 1, band.plans.len(), "one mask per layer");
            let input = self.encode_at(&values, band);
            let masks = band.masks_at(masks);
            let mut u = propagate(input, &band.plans[0]);
            for (mask, plan) in masks.iter().zip(&band.plans[1..]) {
                u = match &mask.amplitude {
                    None => phase_modulate(u, mask.phase.clone()),
                    Some(a) => amplitude_phase_modulate(u, a.clone(), mask.phase.clone()),
                };
                u = propagate(u, plan);
            }
            let mut i = intensity(u);
            let m = band.fields();
            if m > 1 {
                i = i.reshape([b, m, ny, nx]).sum_dim(1).reshape([b, ny, nx]);
            }
            total = Some(match total {
                None => i,
                Some(t) => t + i,
            });
        }
        total.expect("a network has at least one band")
    }

    /// `bands` (this network's, or some drawn from them) with every layer moved along z:
    /// layer `k` by `dz[k]` metres (the gap before it grows by `dz[k]`, the gap after it
    /// shrinks by as much), replanned at every line. Plans are cached, so displacements drawn
    /// from a few values cost nothing after their first use.
    pub fn displaced(&self, bands: &[Band], dz: &[f64]) -> Result<Vec<Band>> {
        let gaps = self.system.propagations()?;
        assert_eq!(dz.len() + 1, gaps.len(), "one displacement per layer");
        bands
            .iter()
            .map(|band| {
                let wave = Wave::new(band.line.wavelength, self.system.medium_index)?;
                let plans = gaps
                    .iter()
                    .enumerate()
                    .map(|(g, p)| {
                        let before = if g > 0 { dz[g - 1] } else { 0.0 };
                        let after = dz.get(g).copied().unwrap_or(0.0);
                        let mut p = p.clone();
                        p.distance += after - before;
                        Ok(self.planner.plan(&self.grid, wave, &p)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Band {
                    plans,
                    ..band.clone()
                })
            })
            .collect()
    }

    /// Energies collected by the detector regions, `[B, R]`: sums of the detector plane's
    /// intensity weighted by pixel coverage (multiply by the cell area for field units² × m²).
    pub fn energies(&self, images: &[ImageRef], masks: &[Mask]) -> Tensor<2> {
        self.energies_with(images, masks, &self.bands)
    }

    /// [`Optics::energies`] with other bands (see [`Optics::detector_intensity`]).
    pub fn energies_with(&self, images: &[ImageRef], masks: &[Mask], bands: &[Band]) -> Tensor<2> {
        region_energies(
            self.detector_intensity(images, masks, bands),
            self.weights.clone(),
        )
    }

    /// Class scores `[B, C]` from region energies `[B, R]`: the fraction of the detected energy
    /// in each class region, `(E⁺ − E⁻)/(E⁺ + E⁻)` per class for differential detection, or the
    /// output of the network's electronic layer ([`Optics::head`]).
    pub fn scores(&self, energies: Tensor<2>) -> Tensor<2> {
        self.scores_with(energies, self.head.as_ref())
    }

    /// [`Optics::scores`] with another electronic layer (training's), or none.
    pub fn scores_with(&self, energies: Tensor<2>, head: Option<&Dense>) -> Tensor<2> {
        let [b, r] = energies.dims();
        if let Some(head) = head {
            head.forward(Dense::input(energies))
        } else if self.system.detector.differential {
            let pairs = energies.reshape([b, r / 2, 2]);
            let plus = pairs.clone().narrow(2, 0, 1);
            let minus = pairs.narrow(2, 1, 1);
            ((plus.clone() - minus.clone()) / (plus + minus + EPS)).reshape([b, r / 2])
        } else {
            let total = energies.clone().sum_dim(1);
            energies / (total + EPS)
        }
    }

    /// Log-confidences `log softmax(score / T)`, `[B, C]`: the logarithms of the confidences,
    /// and minus the cross-entropy loss of each class (training minimises that of the true
    /// class).
    pub fn log_confidences(&self, scores: Tensor<2>) -> Tensor<2> {
        log_softmax(scores / self.system.detector.temperature, 1)
    }

    /// Confidences `softmax(score / T)`, `[B, C]`.
    pub fn confidences(&self, scores: Tensor<2>) -> Tensor<2> {
        self.log_confidences(scores).exp()
    }

    /// Takes the electronic layer of `system` (a trained export of this network): what
    /// [`Optics::scores`] applies from now on.
    pub fn load_head(&mut self, system: &OpticalSystem) {
        self.system.detector.head.clone_from(&system.detector.head);
        self.head = Dense::of(&system.detector, &self.device);
    }

    /// The masks of an exported system's layers as tensors on this network's device.
    pub fn masks_of(&self, system: &OpticalSystem) -> Vec<Mask> {
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        let plane =
            |v: &[f32]| Tensor::from_data(TensorData::new(v.to_vec(), [ny, nx]), &self.device);
        system
            .layers
            .iter()
            .map(|l| Mask {
                amplitude: l.amplitude.as_deref().map(plane),
                phase: if self.bands.iter().any(|b| b.scale != 1.0) {
                    // a relief's phase unwrapped, so that other lines scale its optical path
                    plane(&l.path_phase(system.wavelength_m, system.medium_index))
                } else {
                    plane(&l.phase)
                },
            })
            .collect()
    }
}

/// How raw parameters become masks: the modulation kind, the phase parameterisation, the
/// material of height layers and the quantisation used during training.
#[derive(Debug, Clone)]
pub struct Parameterisation {
    /// What the layers modulate.
    pub kind: Modulation,
    /// Phase parameterisation of phase and amplitude-phase layers.
    pub phase: PhaseParam,
    /// Upper end of a bounded phase, radians.
    pub phase_max: f64,
    /// Material of height layers.
    pub material: Option<Material>,
    /// Tallest relief of height layers, metres.
    pub max_height: f64,
    /// Vacuum wavelength, metres.
    pub wavelength: f64,
    /// Refractive index of the medium.
    pub medium_index: f64,
    /// Phase (or height) levels to quantise to, if any.
    pub levels: Option<u32>,
    /// A measured lookup table every pixel is set through, if any.
    pub lut: Option<Lut>,
    /// Gumbel-softmax temperature, when the levels are learnt as categorical choices
    /// (Jang et al., ICLR 2017) instead of through the straight-through estimator.
    pub gumbel: Option<f64>,
}

/// The discrete states a pixel can take (uniform levels or a lookup table's rows): phase,
/// amplitude and, for height layers, height of every state.
#[derive(Debug, Clone)]
struct States {
    phase: Vec<f64>,
    amplitude: Option<Vec<f64>>,
    height: Option<Vec<f64>>,
}

/// The trainable parameters: one raw plane `[Ny, Nx]` per layer (the phase, or the height
/// parameter), and for amplitude-phase layers one raw amplitude plane per layer. With the
/// Gumbel-softmax estimator, `raw` holds the logits of the `L` states of every pixel, stacked
/// as `[L·Ny, Nx]`. A hybrid network adds its electronic layer.
#[derive(Module, Debug)]
pub struct Layers {
    /// Raw phase (or height) parameter of every layer.
    pub raw: Vec<Param<Tensor<2>>>,
    /// Raw amplitude parameter of every layer (amplitude-phase only; empty otherwise).
    pub raw_amplitude: Vec<Param<Tensor<2>>>,
    /// The electronic layer of a hybrid optical–electronic network.
    pub head: Option<Dense>,
}

/// A fully connected layer from the detector's `R` region energies to `C` class scores, the
/// electronic half of a hybrid network: `s = W x + b` with `x_r = R·E_r/ΣE` (see
/// [`LinearHead`], which it is exported as and read from).
#[derive(Module, Debug)]
pub struct Dense {
    /// Weights `W`, `[C, R]`.
    pub weights: Param<Tensor<2>>,
    /// Bias `b`, `[C]`.
    pub bias: Param<Tensor<1>>,
}

impl Dense {
    /// Glorot-uniform weights (`±√(6/(R + C))`, Glorot & Bengio 2010) from `seed`, zero bias.
    pub fn init(classes: usize, regions: usize, seed: u64, device: &Device) -> Self {
        let mut rng = Rng::stream(seed, &[INIT_STREAM, HEAD_KEY]);
        let a = (6.0 / (classes + regions) as f64).sqrt();
        let w: Vec<f32> = (0..classes * regions)
            .map(|_| rng.range(-a, a) as f32)
            .collect();
        Self {
            weights: Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [classes, regions]),
                device,
            )),
            bias: Param::from_tensor(Tensor::zeros([classes], device)),
        }
    }

    /// The electronic layer a detector carries (its [`LinearHead`] over its regions), if any.
    pub fn of(detector: &DetectorSpec, device: &Device) -> Option<Self> {
        let head = detector.head.as_ref()?;
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        let (classes, regions) = (head.bias.len(), detector.regions.len());
        Some(Self {
            weights: Param::from_tensor(Tensor::from_data(
                TensorData::new(f32s(&head.weights), [classes, regions]),
                device,
            )),
            bias: Param::from_tensor(Tensor::from_data(
                TensorData::new(f32s(&head.bias), [classes]),
                device,
            )),
        })
    }

    /// The layer as the system file stores it.
    pub fn to_head(&self) -> LinearHead {
        let f64s = |t: burn::tensor::TensorData| -> Vec<f64> {
            t.convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 weights")
                .into_iter()
                .map(f64::from)
                .collect()
        };
        LinearHead {
            weights: f64s(self.weights.val().into_data()),
            bias: f64s(self.bias.val().into_data()),
        }
    }

    /// The layer's input `[B, R]`: every region's energy over the mean region energy,
    /// `R·E_r/ΣE` (0 for a dark detector).
    pub fn input(energies: Tensor<2>) -> Tensor<2> {
        let [_, r] = energies.dims();
        // exact for any scale of energies above f32's smallest normal numbers
        let total = energies.clone().sum_dim(1).clamp_min(1e-37);
        energies * r as f64 / total
    }

    /// Class scores `[B, C]` of the input `x` `[B, R]`: `x Wᵀ + b`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weights.val().transpose()) + self.bias.val().unsqueeze::<2>()
    }
}

impl Parameterisation {
    /// The parameterisation a config describes.
    pub fn from_config(config: &Config) -> Result<Self> {
        let material = config.material()?;
        let wavelength = config.optics.wavelength.m();
        let medium_index = config.optics.medium_index;
        let max_height = match (config.modulation.max_height, &material) {
            (Some(h), _) => h.m(),
            (None, Some(m)) => wavelength / (m.n - medium_index),
            (None, None) => 0.0,
        };
        Ok(Self {
            kind: config.modulation.kind,
            phase: config.modulation.phase,
            phase_max: config.modulation.phase_max,
            material,
            max_height,
            wavelength,
            medium_index,
            levels: config.fabrication.levels,
            lut: config.lut()?,
            gumbel: (config.fabrication.estimator == Estimator::GumbelSoftmax)
                .then_some(config.fabrication.gumbel_temperature),
        })
    }

    /// The discrete states of a pixel, when there are any (levels or a lookup table).
    fn states(&self) -> Option<States> {
        if let Some(lut) = &self.lut {
            return Some(States {
                phase: lut.phase.clone(),
                amplitude: lut.amplitude.clone(),
                height: None,
            });
        }
        let l = self.levels?;
        let top = f64::from(l - 1);
        let k = (0..l).map(f64::from);
        Some(match (self.kind, self.phase) {
            (Modulation::Height, _) => {
                let m = self
                    .material
                    .as_ref()
                    .expect("height layers have a material");
                let h: Vec<f64> = k.map(|k| k / top * self.max_height).collect();
                States {
                    phase: h
                        .iter()
                        .map(|&h| m.phase(h, self.wavelength, self.medium_index))
                        .collect(),
                    amplitude: Some(h.iter().map(|&h| m.amplitude(h, self.wavelength)).collect()),
                    height: Some(h),
                }
            }
            (_, PhaseParam::Wrapped) => States {
                phase: k.map(|k| k * TAU / f64::from(l)).collect(),
                amplitude: None,
                height: None,
            },
            (_, PhaseParam::Bounded) => States {
                phase: k.map(|k| k / top * self.phase_max).collect(),
                amplitude: None,
                height: None,
            },
        })
    }

    /// Random initial parameters for `layers` layers of `nx × ny`, on `device`, from `seed`:
    /// raw phases uniform in `[−init, init]` (`init` radians for wrapped phases; the same
    /// range of the sigmoid's argument otherwise), raw amplitudes uniform in `[2, 3]`
    /// (transmission 0.88…0.95).
    pub fn init(
        &self,
        layers: usize,
        (nx, ny): (usize, usize),
        init: f64,
        seed: u64,
        device: &Device,
    ) -> Layers {
        let states = self.gumbel.and(self.states()).map_or(1, |s| s.phase.len());
        let plane = |key: u64, lo: f64, hi: f64| {
            let mut rng = Rng::stream(seed, &[INIT_STREAM, key]);
            let v: Vec<f32> = (0..states * nx * ny)
                .map(|_| rng.range(lo, hi) as f32)
                .collect();
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [states * ny, nx]),
                device,
            ))
        };
        Layers {
            head: None,
            raw: (0..layers).map(|l| plane(l as u64, -init, init)).collect(),
            raw_amplitude: if self.kind == Modulation::AmplitudePhase {
                let plane = |key: u64| {
                    let mut rng = Rng::stream(seed, &[INIT_STREAM, key]);
                    let v: Vec<f32> = (0..nx * ny).map(|_| rng.range(2.0, 3.0) as f32).collect();
                    Param::from_tensor(Tensor::from_data(TensorData::new(v, [ny, nx]), device))
                };
                (0..layers).map(|l| plane(1000 + l as u64)).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The masks of every layer (differentiable in the parameters). With `levels`, the phase
    /// (or height) is quantised in the forward pass and the gradient passes straight through;
    /// with a lookup table, every pixel takes one of its rows. With the Gumbel-softmax
    /// estimator, `noise` draws the Gumbel noise of a training step; without it every pixel
    /// takes its most likely state (what is exported and fabricated).
    pub fn masks(&self, layers: &Layers, mut noise: Option<&mut Rng>) -> Vec<Mask> {
        (0..layers.raw.len())
            .map(|l| self.layer(layers, l, noise.as_deref_mut()).0)
            .collect()
    }

    /// Mask of layer `l`, and its height map (height layers).
    fn layer(
        &self,
        layers: &Layers,
        l: usize,
        noise: Option<&mut Rng>,
    ) -> (Mask, Option<Tensor<2>>) {
        let raw = layers.raw[l].val();
        let amplitude = layers
            .raw_amplitude
            .get(l)
            .map(|a| burn::tensor::activation::sigmoid(a.val()));
        if let (Some(tau), Some(states)) = (self.gumbel, self.states()) {
            let (mut mask, height) = gumbel_mask(&states, raw, noise.map(|r| (r, tau)));
            if let Some(a) = amplitude {
                mask.amplitude = Some(mask.amplitude.map_or(a.clone(), |m| m * a));
            }
            return (mask, height);
        }
        if let Some(lut) = &self.lut {
            return (lut_mask(lut, raw), None);
        }
        match self.kind {
            Modulation::Phase | Modulation::AmplitudePhase => (
                Mask {
                    phase: self.phase_of(raw),
                    amplitude,
                },
                None,
            ),
            Modulation::Height => {
                let h = self.height_of(raw);
                let m = self
                    .material
                    .as_ref()
                    .expect("height layers have a material");
                let k = TAU / self.wavelength;
                let mask = Mask {
                    phase: h.clone() * (k * (m.n - self.medium_index)),
                    amplitude: Some((h.clone() * (-k * m.kappa)).exp()),
                };
                (mask, Some(h))
            }
        }
    }

    /// Phase of a phase or amplitude-phase layer from its raw parameter.
    fn phase_of(&self, raw: Tensor<2>) -> Tensor<2> {
        match self.phase {
            PhaseParam::Wrapped => match self.levels {
                None => raw,
                Some(l) => {
                    // Wrap into [0, 2π) (the wrap has derivative 1), then quantise.
                    let wrapped = raw.clone() - (raw / TAU).floor().detach() * TAU;
                    straight_through(wrapped, TAU / f64::from(l), f64::from(l - 1))
                }
            },
            PhaseParam::Bounded => {
                let phi = burn::tensor::activation::sigmoid(raw) * self.phase_max;
                match self.levels {
                    None => phi,
                    Some(l) => {
                        straight_through(phi, self.phase_max / f64::from(l - 1), f64::from(l - 1))
                    }
                }
            }
        }
    }

    /// Height (metres) of a height layer from its raw parameter.
    fn height_of(&self, raw: Tensor<2>) -> Tensor<2> {
        let h = burn::tensor::activation::sigmoid(raw) * self.max_height;
        match self.levels {
            None => h,
            Some(l) => straight_through(h, self.max_height / f64::from(l - 1), f64::from(l - 1)),
        }
    }

    /// The physical layers (phase wrapped later by [`OpticalSystem::save`], amplitude, height)
    /// of the trained parameters, for export into `template` (a system from
    /// [`system_template`]): what the forward pass of training uses, read back from the masks.
    pub fn export(&self, layers: &Layers, template: &OpticalSystem) -> OpticalSystem {
        let mut system = template.clone();
        let read = |t: Tensor<2>| -> Vec<f32> {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("masks are f32")
        };
        for (l, layer) in system.layers.iter_mut().enumerate() {
            let (mask, height) = self.layer(layers, l, None);
            layer.phase = read(mask.phase);
            layer.amplitude = mask.amplitude.map(read);
            layer.height = height.map(read);
        }
        system.detector.head = layers.head.as_ref().map(Dense::to_head);
        system
    }
}

/// The mask of a pixel set through a lookup table: the raw parameter is the gray index
/// `g = (L − 1)·sigmoid(w)`; the forward pass takes the table's values at the nearest level,
/// the gradient is that of the table's piecewise-linear interpolation at `g`
/// (straight-through).
fn lut_mask(lut: &Lut, raw: Tensor<2>) -> Mask {
    let [ny, nx] = raw.dims();
    let device = raw.device();
    let top = (lut.len() - 1) as f64;
    let g = (burn::tensor::activation::sigmoid(raw) * top).reshape([ny * nx]);
    let lower = g.clone().floor().clamp(0.0, top - 1.0).detach();
    let frac = g.clone() - lower.clone();
    let (i0, nearest) = (lower.int(), g.round().detach().int());
    let table = |v: Vec<f64>| -> Tensor<2> {
        let t = Tensor::<1>::from_data(
            TensorData::new(v.iter().map(|&x| x as f32).collect(), [v.len()]),
            &device,
        );
        let (v0, v1) = (
            t.clone().gather(0, i0.clone()),
            t.clone().gather(0, i0.clone() + 1),
        );
        let smooth = v0.clone() + (v1 - v0) * frac.clone();
        let exact = t.gather(0, nearest.clone());
        (smooth.clone() + (exact - smooth).detach()).reshape([ny, nx])
    };
    Mask {
        phase: table(lut.phase.clone()),
        amplitude: lut.amplitude.clone().map(table),
    }
}

/// A pixel as a categorical choice among `states`, relaxed with Gumbel-softmax (Jang, Gu &
/// Poole, ICLR 2017): `raw` holds the logits `[L·Ny, Nx]`. With `noise = (rng, τ)` (training),
/// the weights are `softmax((logits + G)/τ)` over the states, `G` Gumbel noise, made one-hot in
/// the forward pass with the soft weights' gradient (straight-through Gumbel); without noise,
/// the most likely state. The transmission is `Σ_k w_k a_k e^{iφ_k}` (a complex combination, so
/// the forward pass is exactly one state's), returned as amplitude (`None` when every state has
/// amplitude 1) and phase, with the height `Σ_k w_k h_k` for height states.
fn gumbel_mask(
    states: &States,
    raw: Tensor<2>,
    noise: Option<(&mut Rng, f64)>,
) -> (Mask, Option<Tensor<2>>) {
    let device = raw.device();
    let l = states.phase.len();
    let [rows, nx] = raw.dims();
    let ny = rows / l;
    let logits = raw.reshape([l, ny, nx]);
    let weights = match noise {
        Some((rng, tau)) => {
            let g: Vec<f32> = (0..l * ny * nx)
                .map(|_| -(-(rng.uniform().max(1e-300)).ln()).ln() as f32)
                .collect();
            let g = Tensor::<3>::from_data(TensorData::new(g, [l, ny, nx]), &device);
            let soft = softmax((logits + g) / tau, 0);
            let hard = soft
                .clone()
                .greater_equal(soft.clone().max_dim(0))
                .float()
                .detach();
            hard + soft.clone() - soft.detach()
        }
        None => logits.clone().greater_equal(logits.max_dim(0)).float(),
    };
    let column = |v: Vec<f64>| {
        Tensor::<1>::from_data(
            TensorData::new(v.into_iter().map(|x| x as f32).collect(), [l]),
            &device,
        )
        .reshape([l, 1, 1])
    };
    let amp = |k: usize| states.amplitude.as_ref().map_or(1.0, |a| a[k]);
    let re = column((0..l).map(|k| amp(k) * states.phase[k].cos()).collect());
    let im = column((0..l).map(|k| amp(k) * states.phase[k].sin()).collect());
    let sum = |c: Tensor<3>| (weights.clone() * c).sum_dim(0).reshape([ny, nx]);
    let (re, im) = (sum(re), sum(im));
    let height = states.height.clone().map(|h| sum(column(h)));
    let mask = Mask {
        amplitude: states
            .amplitude
            .is_some()
            .then(|| (re.clone().square() + im.clone().square() + 1e-12).sqrt()),
        phase: im.atan2(re),
    };
    (mask, height)
}

/// Stream key of the initial masks (see [`Rng::stream`]).
const INIT_STREAM: u64 = 1;
/// Key of the electronic layer's initial weights in [`INIT_STREAM`] (the masks use the layer
/// index, amplitudes 1000 + it).
const HEAD_KEY: u64 = 1 << 32;

/// `x` quantised to multiples of `step` in `0..=max_level·step` in the forward pass, with the
/// identity's gradient (straight-through estimator, Bengio et al. 2013). Values rounding to
/// `max_level + 1` steps (for wrapped phases: 2π) go to level 0 when that is a full period
/// (`max_level + 1 = period/step`), otherwise are clamped.
fn straight_through(x: Tensor<2>, step: f64, max_level: f64) -> Tensor<2> {
    let levels = (x.clone() / step).round().detach();
    // Level max_level + 1 only occurs for wrapped phases (2π ≡ 0); bounded ranges never exceed
    // max_level after rounding because x ≤ max_level·step.
    let wrapped = levels.clone() - levels.greater_elem(max_level).float() * (max_level + 1.0);
    let q = wrapped * step;
    x.clone() + (q - x).detach()
}

/// The optical system a config describes, without masks: geometry, propagation, input,
/// detector regions (auto-arranged unless given), readout (with a hybrid network's initial
/// electronic layer), and one layer entry per layer.
/// `classes` names the classes (from the dataset).
pub fn system_template(config: &Config, classes: &[String]) -> Result<OpticalSystem> {
    let o = &config.optics;
    let (nx, ny) = o.neurons.xy();
    let mut system = OpticalSystem::new(&config.name, o.wavelength.m(), nx, ny, o.pitch.m())?;
    system.medium_index = o.medium_index;
    system.source = config.source()?;
    let (method, padding) = config.propagation()?;
    system.propagation = PropagationSpec::new(method, padding);
    let (ix, iy) = config.input_size();
    system.input = Input {
        encoding: config.input.encoding,
        nx: ix,
        ny: iy,
        distance_m: o.input_distance.m(),
    };
    let distances = config
        .gaps()?
        .into_iter()
        .chain(std::iter::once(o.detector_distance.m()));
    let material = config.material()?;
    let lut = config.lut()?;
    system.layers = distances
        .enumerate()
        .map(|(l, d)| Layer {
            name: format!("layer{l}"),
            modulation: match &lut {
                Some(l) if l.amplitude.is_some() => Modulation::AmplitudePhase,
                Some(_) => Modulation::Phase,
                None => config.modulation.kind,
            },
            distance_m: d,
            material: (config.modulation.kind == Modulation::Height)
                .then(|| material.clone())
                .flatten(),
            levels: config
                .fabrication
                .levels
                .or(lut.as_ref().map(|l| l.len() as u32)),
            files: LayerFiles::default(),
            phase: Vec::new(),
            amplitude: None,
            height: None,
        })
        .collect();
    let differential = config.detector.differential;
    let grid = system.grid()?;
    let array = config.detector.array.map(Size::xy);
    let labels: Vec<String> = if let Some((ax, ay)) = array {
        (0..ay)
            .flat_map(|r| (0..ax).map(move |c| format!("r{r}c{c}")))
            .collect()
    } else if let (Head::Linear, Some(given)) = (config.readout.head, &config.detector.regions) {
        // an electronic layer reads any number of regions
        (0..given.len()).map(|i| format!("d{i}")).collect()
    } else if differential {
        classes
            .iter()
            .flat_map(|c| [format!("{c}+"), format!("{c}-")])
            .collect()
    } else {
        classes.to_vec()
    };
    let regions: Vec<RegionSpec> = match &config.detector.regions {
        Some(given) => {
            if given.len() != labels.len() {
                return Err(crate::error::D2nnError::Config {
                    origin: String::new(),
                    problem: format!(
                        "[detector] regions lists {} regions but {} classes need {}{}",
                        given.len(),
                        classes.len(),
                        labels.len(),
                        if differential {
                            " (a +, − pair per class)"
                        } else {
                            ""
                        }
                    ),
                });
            }
            given
                .iter()
                .zip(&labels)
                .map(|(r, label)| {
                    let w = r.width.m();
                    let h = r.height.map_or(w, |h| h.m());
                    RegionSpec::new(label, (r.x.m(), r.y.m()), w, h)
                })
                .collect()
        }
        None => {
            let layout = match array {
                Some((ax, ay)) => {
                    let (w, h) = Detector::centred_extent(&grid);
                    let size = config
                        .detector
                        .size
                        .map_or(w.min(h) / ax.max(ay) as f64, |s| s.m());
                    let gap = config.detector.gap.map_or(0.0, |g| g.m());
                    Detector::array_layout(grid, (ax, ay), size, gap)?
                }
                None => {
                    let side = grid.extent().0.min(grid.extent().1);
                    let size = config.detector.size.map_or(side / 10.0, |s| s.m());
                    let gap = config.detector.gap.map_or(size / 2.0, |g| g.m());
                    Detector::grid_layout(grid, labels.len(), size, gap)?
                }
            };
            layout
                .regions()
                .iter()
                .zip(&labels)
                .map(|(r, label)| RegionSpec::new(label, r.centre, r.width, r.height))
                .collect()
        }
    };
    let head = (config.readout.head == Head::Linear).then(|| {
        Dense::init(
            classes.len(),
            regions.len(),
            config.training.seed,
            &Device::flex(),
        )
        .to_head()
    });
    system.detector = DetectorSpec {
        regions,
        classes: classes.to_vec(),
        differential,
        temperature: config.readout.temperature(),
        head,
    };
    Ok(system)
}

/// Rolls a mask by whole pixels `(dx, dy)` (a lateral misalignment of its layer; cyclic at
/// the window's edge, where a D2NN's masks see no light).
pub fn shift_mask(mask: Mask, dx: i64, dy: i64) -> Mask {
    let roll = |t: Tensor<2>| {
        if dx == 0 && dy == 0 {
            t
        } else {
            t.roll(&[dy, dx], &[0, 1])
        }
    };
    Mask {
        amplitude: mask.amplitude.map(roll),
        phase: roll(mask.phase),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Pixels;
    use photonflow_optics::system::Encoding;

    fn classes(n: usize) -> Vec<String> {
        (0..n).map(|c| c.to_string()).collect()
    }

    #[test]
    fn lin2018_presets_plan_and_place_their_detectors() {
        let device = Device::flex();
        for (name, regions) in [("lin2018", 10), ("lin2018-differential", 20)] {
            let config = Config::preset(name).unwrap();
            let system = system_template(&config, &classes(10)).unwrap();
            let optics = Optics::new(&system, &device).unwrap();
            assert_eq!(optics.bands.len(), 1, "{name}: a laser");
            assert_eq!(optics.bands[0].plans.len(), 6, "{name}");
            assert_eq!(optics.detector.len(), regions, "{name}");
            assert_eq!(optics.bands[0].plans[0].padded_shape(), (400, 400));
            assert_eq!(
                system.detector.regions[1].label,
                if regions == 20 { "0-" } else { "1" }
            );
        }
    }

    #[test]
    fn encoding_places_the_image_in_the_centre() {
        let mut config = Config::preset("lin2018").unwrap();
        config.optics.neurons = crate::config::Size::Square(8);
        config.input.size = Some(crate::config::Size::Rect([4, 2]));
        config.optics.layers = 1;
        config.detector.size = Some(crate::config::Length(0.4e-3));
        config.detector.gap = Some(crate::config::Length(0.0));
        config.optics.input_distance = crate::config::Length(1e-3);
        config.optics.detector_distance = crate::config::Length(1e-3);
        let device = Device::flex();
        let system = system_template(&config, &classes(2)).unwrap();
        let optics = Optics::new(&system, &device).unwrap();
        let image = [0u8, 51, 102, 153, 204, 255, 0, 255];
        let img = ImageRef {
            pixels: Pixels::U8(&image),
            rows: 2,
            cols: 4,
        };
        let v = optics
            .encode(&[img])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Rows 3 and 4, columns 2..6 hold the image as amplitude; everything else is dark.
        for y in 0..8 {
            for x in 0..8 {
                let (re, im) = (v[(y * 8 + x) * 2], v[(y * 8 + x) * 2 + 1]);
                let want = if (3..5).contains(&y) && (2..6).contains(&x) {
                    f32::from(image[(y - 3) * 4 + x - 2]) / 255.0
                } else {
                    0.0
                };
                assert!(
                    (re - want).abs() < 1e-6 && im == 0.0,
                    "({x}, {y}): {re} {im}"
                );
            }
        }
        let mut phase = system.clone();
        phase.input.encoding = Encoding::Phase;
        let optics = Optics::new(&phase, &device).unwrap();
        let v = optics
            .encode(&[img])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let at = (4 * 8 + 4) * 2; // image pixel (row 1, column 2) = 0 → exp(0)
        assert!((v[at] - 1.0).abs() < 1e-6 && v[at + 1].abs() < 1e-6);
        let at = (3 * 8 + 3) * 2; // image pixel (row 0, column 1) = 0.2 → exp(0.2iπ)
        let (s, c) = (0.2 * std::f32::consts::PI).sin_cos();
        assert!((v[at] - c).abs() < 1e-6 && (v[at + 1] - s).abs() < 1e-6);
    }

    #[test]
    fn quantisation_is_straight_through() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_floats([[0.1, 0.9, 1.6, 6.2]], &device).require_grad();
        let q = straight_through(x.clone(), TAU / 4.0, 3.0);
        let v = q.clone().into_data().try_to_vec::<f32>().unwrap();
        let step = (TAU / 4.0) as f32;
        assert_eq!(v, vec![0.0, step, step, 0.0]);
        let g = (q * Tensor::from_floats([[1.0, 2.0, 3.0, 4.0]], &device))
            .sum()
            .backward();
        let g = x.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(g, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn height_layers_follow_the_material() {
        let mut config = Config::preset("lin2018").unwrap();
        config.modulation.kind = Modulation::Height;
        config.modulation.material = Some(crate::config::MaterialSpec::Preset("thz-resin".into()));
        config.optics.layers = 1;
        let param = Parameterisation::from_config(&config).unwrap();
        // Default relief: one 2π of phase.
        assert!((param.max_height - 0.75e-3 / 0.72).abs() < 1e-12);
        let device = Device::flex();
        let layers = param.init(1, (3, 2), 2.0, 5, &device);
        let system = system_template(&config, &classes(10)).unwrap();
        let exported = param.export(&layers, &system);
        let l = &exported.layers[0];
        let m = config.material().unwrap().unwrap();
        for ((&h, &p), &a) in l
            .height
            .as_ref()
            .unwrap()
            .iter()
            .zip(&l.phase)
            .zip(l.amplitude.as_ref().unwrap())
        {
            assert!(h > 0.0 && f64::from(h) < param.max_height);
            let want_p = m.phase(f64::from(h), 0.75e-3, 1.0);
            let want_a = m.amplitude(f64::from(h), 0.75e-3);
            assert!(
                (f64::from(p) - want_p).abs() < 1e-5 * want_p.max(1.0),
                "{p} {want_p}"
            );
            assert!((f64::from(a) - want_a).abs() < 1e-6, "{a} {want_a}");
        }
    }

    #[test]
    fn displaced_layers_lengthen_one_gap_and_shorten_the_next() {
        let mut config = Config::preset("lin2018").unwrap();
        config.optics.neurons = crate::config::Size::Square(16);
        config.optics.layers = 2;
        config.optics.spacing = Some(crate::config::Spacing::Uniform(crate::config::Length(2e-3)));
        config.optics.input_distance = crate::config::Length(1e-3);
        config.optics.detector_distance = crate::config::Length(3e-3);
        config.input.size = None;
        config.detector.size = Some(crate::config::Length(0.4e-3));
        config.detector.gap = Some(crate::config::Length(0.4e-3));
        let system = system_template(&config, &classes(2)).unwrap();
        let optics = Optics::new(&system, &Device::flex()).unwrap();
        let bands = optics
            .displaced(&optics.bands, &[0.5e-3, -0.25e-3])
            .unwrap();
        let plans = &bands[0].plans;
        let planner = Planner::<f32>::new();
        let field: Vec<num_complex::Complex<f32>> = (0..256)
            .map(|i| num_complex::Complex::new((i % 7) as f32, (i % 5) as f32))
            .collect();
        for (plan, d) in plans.iter().zip([1.5e-3, 1.25e-3, 3.25e-3]) {
            let want = planner
                .plan(
                    &optics.grid,
                    optics.wave,
                    &photonflow_optics::Propagation::new(d)
                        .with_padding(photonflow_optics::Padding::Linear(2.0)),
                )
                .unwrap();
            let (mut a, mut b) = (field.clone(), field.clone());
            plan.propagate_in_place(&mut a).unwrap();
            want.propagate_in_place(&mut b).unwrap();
            assert_eq!(a, b, "gap of {d} m");
        }
    }

    #[test]
    fn lookup_tables_set_levels_with_the_interpolated_gradient() {
        let lut = Lut::parse("0,0,1\n1,1,0.5\n2,3,0.5\n").unwrap();
        let device = Device::flex().autodiff();
        // g = 2·sigmoid(w) = 0.7 and 1.6: nearest levels 1 and 2.
        let s = [0.35f64, 0.8];
        let w: Vec<f32> = s.iter().map(|s| (s / (1.0 - s)).ln() as f32).collect();
        let raw = Tensor::<2>::from_data(TensorData::new(w, [1, 2]), &device).require_grad();
        let mask = lut_mask(&lut, raw.clone());
        let phase = mask.phase.clone().into_data().try_to_vec::<f32>().unwrap();
        let amp = mask
            .amplitude
            .clone()
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(phase, vec![1.0, 3.0]);
        assert_eq!(amp, vec![0.5, 0.5]);
        let grads = mask.phase.sum().backward();
        let g = raw
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // dφ/dw = slope of the table at g × 2 × sigmoid'(w): slopes 1 (0 → 1) and 2 (1 → 3).
        for ((g, s), slope) in g.iter().zip(s).zip([1.0, 2.0]) {
            let want = slope * 2.0 * s * (1.0 - s);
            assert!((f64::from(*g) - want).abs() < 1e-5, "{g} vs {want}");
        }
    }

    #[test]
    fn scores_are_energy_shares_or_differential_contrasts() {
        let mut config = Config::preset("lin2018-differential").unwrap();
        config.optics.neurons = crate::config::Size::Square(64);
        config.optics.layers = 1;
        config.input.size = None;
        config.optics.input_distance = crate::config::Length(1e-3);
        config.optics.detector_distance = crate::config::Length(1e-3);
        config.detector.size = Some(crate::config::Length(0.8e-3));
        config.detector.gap = Some(crate::config::Length(0.4e-3));
        let device = Device::flex();
        let system = system_template(&config, &classes(2)).unwrap();
        let labels: Vec<&str> = system
            .detector
            .regions
            .iter()
            .map(|r| r.label.as_str())
            .collect();
        assert_eq!(labels, ["0+", "0-", "1+", "1-"]);
        let optics = Optics::new(&system, &device).unwrap();
        let e = Tensor::<2>::from_floats([[3.0, 1.0, 1.0, 1.0], [0.0, 2.0, 5.0, 0.0]], &device);
        let s = optics.scores(e).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(s, vec![0.5, 0.0, -1.0, 1.0]);
        config.detector.differential = false;
        let system = system_template(&config, &classes(4)).unwrap();
        let optics = Optics::new(&system, &device).unwrap();
        let e = Tensor::<2>::from_floats([[3.0, 1.0, 0.0, 4.0]], &device);
        let s = optics.scores(e).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(s, vec![0.375, 0.125, 0.0, 0.5]);
        let c = optics.confidences(Tensor::from_floats([[0.375, 0.125, 0.0, 0.5]], &device));
        let c = c.into_data().try_to_vec::<f32>().unwrap();
        let z: f32 = [3.75f32, 1.25, 0.0, 5.0].iter().map(|v| v.exp()).sum();
        assert!((c[3] - 5.0f32.exp() / z).abs() < 1e-6, "{c:?}");
    }
}
