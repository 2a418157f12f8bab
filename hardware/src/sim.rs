//! The simulated rig: a trained system's own optics, built as a bench would build it.
//!
//! [`SimRig`] runs the model's propagations (the same plans as training and inference, from
//! [`photonflow_optics::Planner`]) between an input SLM and a camera, with the imperfections
//! of [`RigConfig`]:
//!
//! * **SLM**: gray levels of `slm.bits` bits (so the input is quantised), a measured
//!   gray → phase (and amplitude) table of phase SLMs, pixel crosstalk (a Gaussian blur of the
//!   displayed values), finite contrast of amplitude SLMs;
//! * **layers**: a fixed lateral offset per layer, drawn in whole pixels (the mask rolled, as
//!   `photonflow eval --misalign` does) or given as measured (`layers.offsets`, fractions of a
//!   pixel box-sampled by [`photonflow_optics::shift`]), a fixed axial offset per layer (the
//!   gaps before and after it change), a fixed fabrication phase error per pixel, and a power
//!   transmittance;
//! * **camera**: photon shot noise, dark current, read noise, gain, bit depth, black level, full
//!   well and converter saturation ([`Camera::expose`](crate::config::Camera::expose));
//! * **source**: a laser at the system's wavelength, or broadband light (`source.spectrum`:
//!   each line of it planned at its wavelength, the SLM's phases and the layers' optical paths
//!   giving the phase `φ·λ₀/λ` there, phase-only layers' taken in `[0, 2π)` as a one-wave
//!   element or an SLM shows them) and partially coherent light (`source.na`: an incoherent
//!   source's cone, as plane waves over it), the camera adding up the intensities of every line
//!   and mode ([`photonflow_optics::coherence`]).
//!
//! The fixed draws are made once from the seed when the rig is built, as a real rig is built
//! once; every frame then draws its own noise. Displays are run as batches in parallel (rayon)
//! through [`Rig::run`].

use std::f64::consts::PI;

use num_complex::Complex;
use photonflow_optics::coherence::{
    Coherence, Decomposition, DiscSource, Illumination, Line, Profile, stack_path_difference,
};
use photonflow_optics::lut::GrayMap;
use photonflow_optics::propagate::Plan;
use photonflow_optics::rng::Rng;
use photonflow_optics::shift::shift;
use photonflow_optics::system::{Encoding, Input, OpticalSystem};
use photonflow_optics::units::Length;
use photonflow_optics::{Grid, Planner, Propagation, Wave, memory};
use rayon::prelude::*;

use crate::config::{Layers, Offset, RigConfig};
use crate::error::{Result, invalid};
use crate::geometry::{Affine, resample};
use crate::readout::phase_map;
use crate::rig::{CameraNoise, Description, Device, Frame, Rig, value_of};

/// Random stream keys of the rig (see [`Rng::stream`]).
const PLACEMENT_STREAM: u64 = 1;
const FABRICATION_STREAM: u64 = 2;
const NOISE_STREAM: u64 = 3;

/// Displays simulated at a time by [`Rig::run`]: memory stays that of one such batch.
const SIM_BATCH: usize = 32;

/// Where a layer sits on a bench, relative to its place in the design.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Placement {
    /// Lateral offset along x, pixels (positive: towards larger x).
    pub dx_px: f64,
    /// Lateral offset along y, pixels.
    pub dy_px: f64,
    /// Axial offset, metres (positive: further from the input).
    pub dz_m: f64,
}

impl Placement {
    /// The placements of `config` for `system`'s layers: its measured `layers.offsets`, or else
    /// draws from its seed (whole pixels uniform in `±lateral`, distances uniform in
    /// `±axial`). Errors when the offsets are not one per layer.
    pub fn of(system: &OpticalSystem, config: &RigConfig) -> Result<Vec<Self>> {
        let layers = &config.layers;
        let pitch = system.pitch_m;
        if let Some(m) = layers.mounted
            && m > system.layers.len()
        {
            return Err(invalid(
                "layers.mounted",
                format!(
                    "{m} layers mounted, but the system has {}",
                    system.layers.len()
                ),
            ));
        }
        if !layers.offsets.is_empty() {
            if layers.offsets.len() != system.layers.len() {
                return Err(invalid(
                    "layers.offsets",
                    format!(
                        "{} offsets given for a system of {} layers; give one per layer",
                        layers.offsets.len(),
                        system.layers.len()
                    ),
                ));
            }
            return Ok(layers
                .offsets
                .iter()
                .map(|o| Self {
                    dx_px: o.x.m() / pitch,
                    dy_px: o.y.m() / pitch,
                    dz_m: o.z.m(),
                })
                .collect());
        }
        let mut placement = Rng::stream(config.seed, &[PLACEMENT_STREAM]);
        let max_px = (layers.lateral.m() / pitch).round() as i64;
        Ok(system
            .layers
            .iter()
            .map(|_| {
                let mut pixels = || {
                    if max_px == 0 {
                        0.0
                    } else {
                        (placement.below(2 * max_px as usize + 1) as i64 - max_px) as f64
                    }
                };
                let (dx_px, dy_px) = (pixels(), pixels());
                let a = layers.axial.m();
                let dz_m = if a > 0.0 { placement.range(-a, a) } else { 0.0 };
                Self { dx_px, dy_px, dz_m }
            })
            .collect())
    }

    /// The offset as lengths on a grid of `pitch` metres.
    pub fn offset(&self, pitch: f64) -> Offset {
        Offset {
            x: Length(self.dx_px * pitch),
            y: Length(self.dy_px * pitch),
            z: Length(self.dz_m),
        }
    }
}

/// The bench at one line of the source's spectrum.
struct Band {
    /// Fraction of the source's power.
    weight: f32,
    /// `λ₀/λ`: a phase `φ` of the design wavelength is `φ·λ₀/λ` at this line (thin elements
    /// of fixed optical path; a relief's material's dispersion is in `layers`).
    scale: f32,
    /// The gaps, planned at this wavelength.
    plans: Vec<Plan<f32>>,
    /// Each layer's transmittance at this wavelength, as mounted.
    layers: Vec<Vec<Complex<f32>>>,
    /// The source's modes at this wavelength; `None`: one coherent plane wave along z.
    modes: Option<Decomposition>,
}

/// What every band of a bench is built from.
struct Bench<'a> {
    system: &'a OpticalSystem,
    config: &'a RigConfig,
    placements: &'a [Placement],
    gaps: &'a [Propagation],
    /// Each layer's fabrication phase error per pixel at the design wavelength, radians.
    errors: &'a [Vec<f64>],
    planner: &'a Planner<f32>,
}

impl Bench<'_> {
    /// The band of `line`, lit by `source`'s modes (`None`: a coherent plane wave).
    fn band(&self, line: Line, source: Option<&Coherence>) -> Result<Band> {
        let system = self.system;
        let grid = system.grid()?;
        let wave = Wave::new(line.wavelength, system.medium_index)?;
        let scale = system.wavelength_m / line.wavelength;
        let plans = self
            .gaps
            .iter()
            .map(|p| Ok(self.planner.plan(&grid, wave, p)?))
            .collect::<Result<Vec<_>>>()?;
        let amplitude = self.config.layers.transmittance.sqrt() as f32;
        let mounted = self.config.layers.mounted.unwrap_or(usize::MAX);
        let layers = system
            .layers
            .iter()
            .zip(self.placements)
            .zip(self.errors)
            .enumerate()
            .map(|(l, ((layer, place), errors))| {
                if l >= mounted {
                    // Not mounted yet: its plane is free space.
                    return Ok(vec![Complex::new(1.0, 0.0); grid.len()]);
                }
                let (design, medium) = (system.wavelength_m, system.medium_index);
                let mut t = layer.transmission_at(design, line.wavelength, medium)?;
                // a fabrication error is one of height: it scales as the layer's phase does
                let factor = layer
                    .relief_at(design, line.wavelength, medium)?
                    .map_or(scale, |r| r.phase);
                for (z, e) in t.iter_mut().zip(errors) {
                    *z *= Complex::from_polar(amplitude, (e * factor) as f32);
                }
                Ok(shift(&t, grid.nx, grid.ny, place.dx_px, place.dy_px))
            })
            .collect::<Result<Vec<_>>>()?;
        let input = &system.input;
        let extent = (input.nx as f64 * grid.dx).hypot(input.ny as f64 * grid.dy);
        let modes = source
            .map(|c| c.decompose(&grid, wave, extent, 1e-3))
            .transpose()
            .map_err(|e| invalid("source.na", e.to_string()))?;
        Ok(Band {
            weight: line.weight as f32,
            scale: scale as f32,
            plans,
            layers,
            modes,
        })
    }
}

/// A simulated bench for a trained system; see the [module docs](self).
pub struct SimRig {
    config: RigConfig,
    input: Input,
    grid: Grid,
    /// The bench at each line of the source's spectrum (one for a laser).
    bands: Vec<Band>,
    placements: Vec<Placement>,
    shown: Vec<u16>,
    frames_taken: u64,
    /// The SLM's measured response, when it has one.
    table: Option<GrayMap>,
    /// Plane → camera pixels, and the camera's size `(cols, rows)`.
    camera: (Affine, usize, usize),
}

impl std::fmt::Debug for SimRig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRig")
            .field("config", &self.config)
            .field("grid", &self.grid)
            .field("placements", &self.placements)
            .finish_non_exhaustive()
    }
}

impl SimRig {
    /// Builds the bench for `system` (with its masks, as [`OpticalSystem::load`] reads them).
    ///
    /// Errors: an invalid system or configuration; an axial offset that closes a gap or breaks
    /// its sampling criterion.
    pub fn new(system: &OpticalSystem, config: RigConfig) -> Result<Self> {
        system.validate()?;
        config.validate()?;
        let placements = Placement::of(system, &config)?;
        Self::placed(system, config, placements, &Planner::new())
    }

    /// The bench for `system` with its layers at `placements` (one per layer; the
    /// configuration's own offsets and ranges are not used), its propagations planned by
    /// `planner` (so that many benches share its cached plans). `system` and `config` must be
    /// valid.
    pub(crate) fn placed(
        system: &OpticalSystem,
        config: RigConfig,
        placements: Vec<Placement>,
        planner: &Planner<f32>,
    ) -> Result<Self> {
        let grid = system.grid()?;
        let wave = system.wave()?;
        let gaps: Vec<Propagation> = system
            .propagations()?
            .into_iter()
            .enumerate()
            .map(|(g, p)| {
                let before = if g > 0 { placements[g - 1].dz_m } else { 0.0 };
                let after = placements.get(g).map_or(0.0, |p| p.dz_m);
                let distance = p.distance + after - before;
                if distance.is_nan() || distance <= 0.0 {
                    return Err(invalid(
                        "layers",
                        format!(
                            "the layers' axial offsets close gap {g} ({distance:.3e} m); give \
                             smaller ones (axial, or the z of offsets)"
                        ),
                    ));
                }
                Ok(Propagation { distance, ..p })
            })
            .collect::<Result<Vec<_>>>()?;
        // the fabrication errors, drawn once per layer as the bench is built
        let errors: Vec<Vec<f64>> = (0..system.layers.len())
            .map(|l| {
                let mut rng = Rng::stream(config.seed, &[FABRICATION_STREAM, l as u64]);
                (0..grid.len())
                    .map(|_| {
                        if config.layers.phase_error > 0.0 {
                            config.layers.phase_error * rng.normal()
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let bench = Bench {
            system,
            config: &config,
            placements: &placements,
            gaps: &gaps,
            errors: &errors,
            planner,
        };
        let design = Line {
            wavelength: wave.wavelength,
            weight: 1.0,
        };
        let bands = match config.source.profile()? {
            _ if config.source.is_laser() => vec![bench.band(design, None)?],
            profile => {
                let illumination = Illumination {
                    spectrum: profile.unwrap_or(Profile::Lines(vec![design])),
                    lines: config.source.lines,
                    coherence: Coherence::Disc(DiscSource::new(config.source.na)),
                };
                let spread = stack_path_difference(
                    &grid,
                    gaps.iter().map(|g| g.distance),
                    system.medium_index,
                    &illumination.coherence,
                );
                let spectrum = illumination
                    .spectrum_for(spread, 1e-3)
                    .map_err(|e| invalid("source.spectrum", e.to_string()))?;
                // every line keeps a transfer function per gap
                let lines = spectrum.lines().len();
                let padded = |n: usize| gaps[0].padding.padded_len(n);
                memory::check_fits(
                    memory::bytes(&[lines, gaps.len(), padded(grid.nx), padded(grid.ny), 8]),
                    || format!("the propagations of {lines} spectral lines"),
                    "give fewer source.lines or a narrower source.spectrum",
                )?;
                spectrum
                    .lines()
                    .iter()
                    .map(|line| bench.band(*line, Some(&illumination.coherence)))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let table = phase_map(
            config.slm.table.as_ref(),
            system.input.encoding,
            config.slm.bits,
            "slm.lut",
        )?;
        let shown = vec![0; system.input.nx * system.input.ny];
        let c = &config.camera;
        let camera = (
            Affine::camera(
                c.cols.unwrap_or(grid.nx),
                c.rows.unwrap_or(grid.ny),
                c.pitch.map_or(grid.dx, |p| p.m()),
                c.rotation.to_radians(),
                (c.x.m(), c.y.m()),
            ),
            c.cols.unwrap_or(grid.nx),
            c.rows.unwrap_or(grid.ny),
        );
        Ok(Self {
            config,
            input: system.input.clone(),
            grid,
            bands,
            placements,
            shown,
            frames_taken: 0,
            table,
            camera,
        })
    }

    /// The bench's digital twin: `system` with its layers at `placements` (one per layer) and
    /// what is known of the bench — `known`'s SLM and how many layers are mounted — but no
    /// fabrication error or loss (a measurement does not see those; a fitted gain takes the
    /// loss up). Plans come from `planner`.
    pub(crate) fn twin(
        system: &OpticalSystem,
        known: &RigConfig,
        placements: Vec<Placement>,
        planner: &Planner<f32>,
    ) -> Result<Self> {
        let config = RigConfig {
            layers: Layers {
                mounted: known.layers.mounted,
                ..Layers::default()
            },
            ..known.clone()
        };
        Self::placed(system, config, placements, planner)
    }

    /// Where the camera's pixels lie: the map from the detector plane (metres) to its pixel
    /// coordinates (what a calibration measures).
    pub fn camera_map(&self) -> Affine {
        self.camera.0
    }

    /// The same bench with a camera of `cols × rows` pixels at `map` (plane metres → pixels):
    /// one that a calibration has placed, rather than the configuration's.
    pub fn with_camera(mut self, map: Affine, cols: usize, rows: usize) -> Self {
        self.camera = (map, cols, rows);
        self
    }

    /// The light each camera pixel collects from each of `displays` (SLM levels), noiseless, in
    /// the plane's units of `|u|²` per plane pixel: what a frame is, before the photon budget,
    /// the camera's gain and its noise.
    pub fn expected(&self, displays: &[&[u16]]) -> Result<Vec<Vec<f64>>> {
        Ok(self
            .intensities(displays)?
            .par_iter()
            .map(|i| self.on_camera(i))
            .collect())
    }

    /// Errors unless `levels` holds one level per SLM pixel.
    fn check_size(&self, levels: &[u16]) -> Result<()> {
        let (nx, ny) = (self.input.nx, self.input.ny);
        if levels.len() == nx * ny {
            return Ok(());
        }
        Err(invalid(
            "SLM display",
            format!(
                "{} levels given; the SLM has {ny} × {nx} = {} pixels",
                levels.len(),
                nx * ny
            ),
        ))
    }

    /// Where each layer was placed.
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }

    /// The configuration the rig was built with (with the exposure last set).
    pub fn config(&self) -> &RigConfig {
        &self.config
    }

    /// The noiseless detector-plane intensities `|u|²` (`[ny, nx]`, field units) of `displays`
    /// (SLM levels), in parallel over the displays (and the source's modes): summed over the
    /// lines of the source's spectrum and its modes with their weights.
    pub fn intensities(&self, displays: &[&[u16]]) -> Result<Vec<Vec<f32>>> {
        let n = self.grid.len();
        for d in displays {
            self.check_size(d)?;
        }
        memory::check_fits(
            memory::bytes(&[displays.len(), n, 16]),
            || format!("simulating {} displays on {} pixels", displays.len(), n),
            "run fewer images at a time",
        )?;
        let values: Vec<_> = displays.iter().map(|l| self.slm_values(l)).collect();
        let mut out = vec![vec![0f32; n]; displays.len()];
        // modes of a partially coherent source run a few at a time beside the displays
        let group = (SIM_BATCH / displays.len().max(1)).max(1);
        let mut data = Vec::new();
        let mut modes = Vec::new();
        for band in &self.bands {
            let count = band.modes.as_ref().map_or(1, Decomposition::len);
            for first in (0..count).step_by(group) {
                let g = group.min(count - first);
                if let Some(d) = &band.modes {
                    modes.resize(g * n, Complex::new(0f32, 0.0));
                    modes
                        .par_chunks_mut(n)
                        .enumerate()
                        .for_each(|(j, m)| d.fill(first + j, m));
                }
                data.resize(displays.len() * g * n, Complex::new(0f32, 0.0));
                data.par_chunks_mut(n).enumerate().for_each(|(k, field)| {
                    let (v, amplitude) = &values[k / g];
                    self.input_field(v, amplitude.as_deref(), band.scale, field);
                    if band.modes.is_some() {
                        let m = &modes[(k % g) * n..][..n];
                        field.iter_mut().zip(m).for_each(|(u, e)| *u *= e);
                    }
                });
                self.through_band(band, &mut data)?;
                let weights: Vec<f32> = (first..first + g)
                    .map(|j| {
                        band.weight * band.modes.as_ref().map_or(1.0, |d| d.weights()[j] as f32)
                    })
                    .collect();
                out.par_iter_mut().enumerate().for_each(|(k, o)| {
                    for (j, w) in weights.iter().enumerate() {
                        let f = &data[(k * g + j) * n..][..n];
                        o.iter_mut()
                            .zip(f)
                            .for_each(|(o, z)| *o += w * z.norm_sqr());
                    }
                });
            }
        }
        Ok(out)
    }

    /// The input field of SLM values `v` (and a table's `amplitude`s) at a line where phases
    /// are `scale` times the design's.
    fn input_field(
        &self,
        v: &[f32],
        amplitude: Option<&[f32]>,
        scale: f32,
        field: &mut [Complex<f32>],
    ) {
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        if scale != 1.0 && self.input.encoding == Encoding::Phase {
            let scaled: Vec<f32> = v.iter().map(|x| x * scale).collect();
            self.input.encode_into(&scaled, nx, ny, field);
        } else {
            self.input.encode_into(v, nx, ny, field);
        }
        if let Some(a) = amplitude {
            let (ix, iy) = (self.input.nx, self.input.ny);
            let (x0, y0) = ((nx - ix) / 2, (ny - iy) / 2);
            for (r, row) in a.chunks_exact(ix).enumerate() {
                let line = &mut field[(y0 + r) * nx + x0..][..ix];
                line.iter_mut().zip(row).for_each(|(z, &a)| *z *= a);
            }
        }
    }

    /// Carries input-plane fields (a batch of `[ny, nx]` fields of the grid, field units)
    /// through the bench's layers to the detector plane, in place, in the coherent light of
    /// the design wavelength (a laser bench's only band; what interferometric measurements
    /// model).
    pub(crate) fn through(&self, data: &mut [Complex<f32>]) -> Result<()> {
        self.through_band(&self.bands[0], data)
    }

    /// [`SimRig::through`] at one band.
    fn through_band(&self, band: &Band, data: &mut [Complex<f32>]) -> Result<()> {
        let n = self.grid.len();
        band.plans[0].propagator.propagate_in_place(data)?;
        for (layer, plan) in band.layers.iter().zip(&band.plans[1..]) {
            data.par_chunks_mut(n).for_each(|field| {
                field.iter_mut().zip(layer).for_each(|(u, t)| *u *= t);
            });
            plan.propagator.propagate_in_place(data)?;
        }
        Ok(())
    }

    /// The input values the SLM makes of `levels` (quantised by the levels themselves, through
    /// a measured table if it has one, blurred by crosstalk, lifted by finite contrast), and
    /// the amplitudes a table gives its levels (`None`: 1).
    fn slm_values(&self, levels: &[u16]) -> (Vec<f32>, Option<Vec<f32>>) {
        let slm = &self.config.slm;
        let encoding = self.input.encoding;
        let (mut v, amplitude): (Vec<f32>, Option<Vec<f32>>) = match &self.table {
            // A phase φ shown is the input value φ/π of the phase encoding.
            Some(map) => {
                let shown: Vec<(f64, f64)> = levels
                    .iter()
                    .map(|&l| map.shows(l).unwrap_or((0.0, 0.0)))
                    .collect();
                let v = shown.iter().map(|&(p, _)| (p / PI) as f32).collect();
                let a = map
                    .modulates_amplitude()
                    .then(|| shown.iter().map(|&(_, a)| a as f32).collect());
                (v, a)
            }
            None => (
                levels
                    .iter()
                    .map(|&l| value_of(l, encoding, slm.bits))
                    .collect(),
                None,
            ),
        };
        if slm.crosstalk > 0.0 {
            v = blur(&v, self.input.nx, self.input.ny, slm.crosstalk);
        }
        if let (Encoding::Amplitude, Some(c)) = (encoding, slm.contrast) {
            let floor = (1.0 / c).sqrt() as f32;
            v.iter_mut().for_each(|a| *a = floor + (1.0 - floor) * *a);
        }
        (v, amplitude)
    }

    /// Photons per unit of `|u|²` in one exposure: a full-amplitude input (every input pixel
    /// at 1, `|u|²` summing to the input's pixel count) carries `photons_per_s · exposure`.
    fn photons_per_unit(&self) -> f64 {
        self.config.source.photons_per_s * self.config.camera.exposure
            / (self.input.nx * self.input.ny) as f64
    }

    /// The expected `|u|²` (plane units, per plane pixel area) each camera pixel collects from
    /// a detector-plane intensity: the plane itself when the camera samples the model's grid,
    /// otherwise [`resample`]d onto the camera.
    pub(crate) fn on_camera(&self, intensity: &[f32]) -> Vec<f64> {
        let (map, cols, rows) = self.camera;
        let (nx, ny, dx) = (self.grid.nx, self.grid.ny, self.grid.dx);
        if (cols, rows) == (nx, ny) && map == Affine::grid(nx, ny, dx) {
            return intensity.iter().map(|&v| f64::from(v)).collect();
        }
        resample(intensity, &self.grid, &map, cols, rows)
    }

    /// `count` noisy frames of each intensity.
    fn frames(&mut self, intensities: &[Vec<f32>], count: usize) -> Vec<Vec<Frame>> {
        let scale = self.photons_per_unit();
        let first = self.frames_taken;
        self.frames_taken += (intensities.len() * count) as u64;
        let (_, cols, rows) = self.camera;
        let this = &*self;
        let (camera, seed) = (&this.config.camera, this.config.seed);
        intensities
            .par_iter()
            .enumerate()
            .map(|(k, i)| {
                let collected = this.on_camera(i);
                (0..count)
                    .map(|f| {
                        let index = first + (k * count + f) as u64;
                        let mut rng = Rng::stream(seed, &[NOISE_STREAM, index]);
                        let photons = collected.iter().map(|&v| v * scale);
                        Frame {
                            rows,
                            cols,
                            bits: camera.bits,
                            pixels: camera.expose(photons, &mut rng),
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

impl Rig for SimRig {
    fn describe(&mut self) -> Result<Description> {
        let pitch = Some(self.grid.dx);
        Ok(Description {
            name: "simulated".to_string(),
            slm: Device {
                rows: self.input.ny,
                cols: self.input.nx,
                bits: self.config.slm.bits,
                pitch_m: pitch,
            },
            camera: Device {
                rows: self.camera.2,
                cols: self.camera.1,
                bits: self.config.camera.bits,
                pitch_m: Some(self.config.camera.pitch.map_or(self.grid.dx, |p| p.m())),
            },
            exposure_s: self.config.camera.exposure,
            black_level: Some(f64::from(self.config.camera.black_level)),
            noise: Some(CameraNoise {
                gain: self.config.camera.gain(),
                read_noise: self.config.camera.read_noise,
                shot_noise: self.config.camera.shot_noise,
            }),
        })
    }

    fn display(&mut self, levels: &[u16]) -> Result<()> {
        let top = crate::rig::max_level(self.config.slm.bits);
        self.check_size(levels)?;
        if let Some(l) = levels.iter().find(|&&l| l > top) {
            return Err(invalid(
                "SLM display",
                format!(
                    "level {l} is beyond the {}-bit SLM's 0 to {top}",
                    self.config.slm.bits
                ),
            ));
        }
        self.shown.copy_from_slice(levels);
        Ok(())
    }

    fn capture(&mut self, count: usize) -> Result<Vec<Frame>> {
        let shown = self.shown.clone();
        Ok(self.run(&[shown], count)?.pop().unwrap_or_default())
    }

    fn set_exposure(&mut self, seconds: f64) -> Result<()> {
        let mut config = self.config.clone();
        config.camera.exposure = seconds;
        config.validate()?;
        self.config = config;
        Ok(())
    }

    fn run(&mut self, displays: &[Vec<u16>], count: usize) -> Result<Vec<Vec<Frame>>> {
        let (_, cols, rows) = self.camera;
        memory::check_fits(
            memory::bytes(&[displays.len(), count, rows, cols, 2]),
            || {
                format!(
                    "{count} frames of {cols} × {rows} pixels for each of {} displays",
                    displays.len()
                )
            },
            "take fewer frames or run fewer displays at a time",
        )?;
        let mut out = Vec::with_capacity(displays.len());
        for batch in displays.chunks(SIM_BATCH) {
            for d in batch {
                self.display(d)?;
            }
            let views: Vec<&[u16]> = batch.iter().map(Vec::as_slice).collect();
            let intensities = self.intensities(&views)?;
            out.extend(self.frames(&intensities, count));
        }
        Ok(out)
    }
}

/// `v` (`[ny, nx]`) blurred by a normalised Gaussian of standard deviation `sigma` pixels,
/// separably, the edge pixels repeated beyond the edges (values stay in their range).
fn blur(v: &[f32], nx: usize, ny: usize, sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let kernel: Vec<f32> = {
        let k: Vec<f64> = (-radius..=radius)
            .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp())
            .collect();
        let sum: f64 = k.iter().sum();
        k.iter().map(|w| (w / sum) as f32).collect()
    };
    let pass = |src: &[f32], len: usize, stride: usize, lines: usize, step: usize| {
        let mut out = vec![0f32; src.len()];
        for line in 0..lines {
            for i in 0..len {
                out[line * step + i * stride] = kernel
                    .iter()
                    .enumerate()
                    .map(|(j, w)| {
                        let s = (i as i64 + j as i64 - radius).clamp(0, len as i64 - 1) as usize;
                        w * src[line * step + s * stride]
                    })
                    .sum();
            }
        }
        out
    };
    let rows = pass(v, nx, 1, ny, nx);
    pass(&rows, ny, nx, nx, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_the_sum_and_the_range_and_spreads_a_point() {
        let (nx, ny) = (21, 17);
        let mut v = vec![0f32; nx * ny];
        v[8 * nx + 10] = 1.0;
        let b = blur(&v, nx, ny, 1.5);
        let sum: f32 = b.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        // Variance of the spread point: σ² along each axis (the kernel is sampled finely
        // enough at σ = 1.5 for 1 %).
        let var_x: f32 = (0..nx)
            .map(|c| (c as f32 - 10.0).powi(2) * (0..ny).map(|r| b[r * nx + c]).sum::<f32>())
            .sum();
        assert!((var_x / 2.25 - 1.0).abs() < 0.01, "{var_x}");
        let ones = blur(&vec![1.0; nx * ny], nx, ny, 2.0);
        assert!(ones.iter().all(|&x| (x - 1.0).abs() < 1e-6));
    }
}
