//! From images to SLM levels, and from camera frames to answers with confidences.
//!
//! [`Readout`] is the model's side of a rig: it places an image (already resampled onto the
//! model's input area) at the centre of the SLM as gray levels, and reads a class from frames
//! of the detector plane exactly as the model does from its simulated intensities — region
//! energies (pixel values less the camera's black level, weighted by how much of each pixel
//! lies in the region), scores ([`DetectorSpec::scores`]) and confidences `softmax(score/T)`
//! ([`DetectorSpec::confidences`]). Several frames of one display are averaged first.
//!
//! The camera must sample the detector plane on the model's grid (`ny × nx` pixels at the
//! model's pitch, centred): a lab rig sets its camera's window and binning so.

use std::f64::consts::PI;

use photonflow_optics::lut::{GrayMap, Lut};
use photonflow_optics::rng::Rng;
use photonflow_optics::system::{DetectorSpec, Encoding, OpticalSystem};
use serde::Serialize;

use crate::error::{Result, invalid};
use crate::geometry::{Affine, camera_map};
use crate::rig::{CameraNoise, Description, Device, Frame, Rig, level_of};

/// How a model's input images become SLM levels on a rig: the image at the centre of the SLM,
/// level 0 around it ([`level_of`]).
#[derive(Debug, Clone)]
pub struct SlmInput {
    encoding: Encoding,
    input: (usize, usize),
    slm: Device,
    map: Option<GrayMap>,
}

impl SlmInput {
    /// The input of `system` on the SLM of `rig`, whose response is `lut` (a phase SLM's
    /// measured table; `None`: linear, [`level_of`]). Errors if the SLM is smaller than the
    /// model's input area, or the table does not suit it.
    pub fn new(system: &OpticalSystem, rig: &Description, lut: Option<&Lut>) -> Result<Self> {
        let (ix, iy) = (system.input.nx, system.input.ny);
        if rig.slm.rows < iy || rig.slm.cols < ix {
            return Err(invalid(
                "SLM",
                format!(
                    "the rig's SLM has {} × {} pixels; the model's input area needs {iy} × {ix}",
                    rig.slm.rows, rig.slm.cols
                ),
            ));
        }
        let map = phase_map(lut, system.input.encoding, rig.slm.bits, "SLM lookup table")?;
        Ok(Self {
            encoding: system.input.encoding,
            input: (ix, iy),
            slm: rig.slm,
            map,
        })
    }

    /// The SLM levels that display `image` (`ny × nx` of the input area, values in `[0, 1]`):
    /// the image at the centre of the SLM, level 0 around it.
    ///
    /// # Panics
    /// If `image` does not hold one value per input pixel.
    pub fn display(&self, image: &[f32]) -> Vec<u16> {
        let levels: Vec<u16> = image
            .iter()
            .map(|&v| match &self.map {
                // The phase encoding shows φ = πv.
                Some(map) => map.gray(PI * f64::from(v.clamp(0.0, 1.0))),
                None => level_of(v, self.encoding, self.slm.bits),
            })
            .collect();
        self.place(&levels)
    }

    /// The SLM's levels with `levels` (`ny × nx` of the input area) at its centre, level 0
    /// around them.
    ///
    /// # Panics
    /// If `levels` does not hold one level per input pixel.
    pub fn place(&self, levels: &[u16]) -> Vec<u16> {
        let (ix, iy) = self.input;
        assert_eq!(levels.len(), ix * iy, "one level per input pixel");
        let (cols, rows) = (self.slm.cols, self.slm.rows);
        let (x0, y0) = ((cols - ix) / 2, (rows - iy) / 2);
        let mut all = vec![0u16; rows * cols];
        for (r, row) in levels.chunks_exact(ix).enumerate() {
            all[(y0 + r) * cols + x0..][..ix].copy_from_slice(row);
        }
        all
    }
}

/// The model's side of a rig; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Readout {
    spec: DetectorSpec,
    /// `[R, rows, cols]`: the fraction of each camera pixel inside each region.
    weights: Vec<f32>,
    input: SlmInput,
    camera: Device,
    black: f64,
    noise: Option<CameraNoise>,
}

/// What a rig says about one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RigPrediction {
    /// Index of the predicted class.
    pub class: usize,
    /// Its name.
    pub label: String,
    /// Confidence of every class, `softmax(score/T)`.
    pub confidences: Vec<f64>,
    /// Score of every class.
    pub scores: Vec<f64>,
    /// Signal of every region, ADU summed over its pixels (black level removed), mean over
    /// the frames.
    pub energies: Vec<f64>,
    /// Frames averaged.
    pub frames: usize,
    /// Pixels inside the regions at the camera's largest value in some frame: saturated, so
    /// the energies are too low (shorten the exposure).
    pub saturated_pixels: usize,
    /// Standard errors of `energies`: measured over the frames when there are several, else
    /// from the camera's noise model when the rig gives one ([`Description::noise`]).
    pub energy_errors: Option<Vec<f64>>,
    /// The probability that the noise of the measurement leaves the class as it is: the
    /// fraction of Gaussian draws of the region signals (within `energy_errors`) whose scores
    /// pick the same class. It says how far the measurement can be trusted, where the
    /// confidences say what the model makes of it; `None` without an error estimate (one frame
    /// of a rig that does not describe its noise).
    pub certainty: Option<f64>,
}

/// Draws of [`RigPrediction::certainty`] (its own error is below 0.8 %).
pub const CERTAINTY_DRAWS: usize = 4000;
const CERTAINTY_SEED: u64 = 0x5EED;

/// The index of the largest value (the first on ties).
fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &c)| {
            if c > bv { (i, c) } else { (bi, bv) }
        })
        .0
}

impl Readout {
    /// The readout of `system` on a rig described by `rig`; `black_level` (ADU) overrides the
    /// rig's own (a remote rig does not know it: 0 then). `camera` places the camera's pixels
    /// on the detector plane (a calibration); without it the camera must sample the model's
    /// grid. `lut` is the SLM's measured response ([`SlmInput::new`]).
    ///
    /// Errors: a camera of another size than the plane without a calibration, an SLM smaller
    /// than the model's input area.
    pub fn new(
        system: &OpticalSystem,
        rig: &Description,
        black_level: Option<f64>,
        camera: Option<&Affine>,
        lut: Option<&Lut>,
    ) -> Result<Self> {
        let (cols, rows) = (rig.camera.cols, rig.camera.rows);
        let grid = system.grid()?;
        let map = camera_map(camera, &grid, cols, rows, "camera")?;
        let input = SlmInput::new(system, rig, lut)?;
        let black = rig.black_level_or(black_level)?;
        let detector = system.detector()?;
        let on_grid =
            (rows, cols) == (grid.ny, grid.nx) && map == Affine::grid(grid.nx, grid.ny, grid.dx);
        let weights = if on_grid {
            detector.weights().to_vec()
        } else {
            camera_weights(system, &map, cols, rows)?
        };
        Ok(Self {
            spec: system.detector.clone(),
            weights,
            input,
            camera: rig.camera,
            black,
            noise: rig.noise,
        })
    }

    /// The model's input area, `(nx, ny)` pixels: images are resampled to it first.
    pub fn input_size(&self) -> (usize, usize) {
        self.input.input
    }

    /// The SLM levels that display `image` ([`SlmInput::display`]).
    pub fn display(&self, image: &[f32]) -> Vec<u16> {
        self.input.display(image)
    }

    /// Classifies `images` (each `ny × nx` of the input area, values in `[0, 1]`) on `rig`,
    /// `frames` frames each, in [`Rig::run`]s of as many images as keep their frames within
    /// [`FRAME_BUDGET`] bytes (one batch each on a simulated rig).
    pub fn classify(
        &self,
        rig: &mut dyn Rig,
        images: &[Vec<f32>],
        frames: usize,
    ) -> Result<Vec<RigPrediction>> {
        let frame_bytes = (self.camera.rows * self.camera.cols * 2).max(1);
        let per_run = (FRAME_BUDGET / frame_bytes.saturating_mul(frames.max(1))).max(1);
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(per_run) {
            let displays: Vec<Vec<u16>> = chunk.iter().map(|i| self.display(i)).collect();
            for f in rig.run(&displays, frames)? {
                out.push(self.predict(&f)?);
            }
        }
        Ok(out)
    }

    /// The answer from `frames` of one display (averaged).
    ///
    /// Errors: no frame, or a frame of another size than the camera's.
    pub fn predict(&self, frames: &[Frame]) -> Result<RigPrediction> {
        if frames.is_empty() {
            return Err(invalid("frames", "no frame to read; take at least one"));
        }
        let n = self.camera.rows * self.camera.cols;
        let regions = self.spec.regions.len();
        let top = self.camera.max_level();
        let mut saturated = vec![false; n];
        // Region signals of every frame, `[F][R]`, and the model variance of each (ADU²).
        let mut per_frame = Vec::with_capacity(frames.len());
        let mut model_var = vec![0.0f64; regions];
        for f in frames {
            if f.pixels.len() != n || (f.rows, f.cols) != (self.camera.rows, self.camera.cols) {
                return Err(invalid(
                    "frame",
                    format!(
                        "{} × {} pixels ({} values); the camera gives {} × {}",
                        f.rows,
                        f.cols,
                        f.pixels.len(),
                        self.camera.rows,
                        self.camera.cols
                    ),
                ));
            }
            let mut e = vec![0.0f64; regions];
            for (r, (e, var)) in e.iter_mut().zip(&mut model_var).enumerate() {
                let w = &self.weights[r * n..(r + 1) * n];
                for (&w, &v) in w.iter().zip(&f.pixels).filter(|(w, _)| **w > 0.0) {
                    let (w, signal) = (f64::from(w), f64::from(v) - self.black);
                    *e += w * signal;
                    if let Some(noise) = &self.noise {
                        *var += w * w * noise.variance(signal);
                    }
                }
            }
            per_frame.push(e);
            for (s, &v) in saturated.iter_mut().zip(&f.pixels) {
                *s |= v >= top;
            }
        }
        let count = frames.len() as f64;
        let energies: Vec<f64> = (0..regions)
            .map(|r| per_frame.iter().map(|e| e[r]).sum::<f64>() / count)
            .collect();
        // Standard errors of the means: measured over the frames when there are several,
        // else from the camera's noise model when the rig gave one.
        let errors: Option<Vec<f64>> = if frames.len() >= 2 {
            Some(
                (0..regions)
                    .map(|r| {
                        let ss: f64 = per_frame.iter().map(|e| (e[r] - energies[r]).powi(2)).sum();
                        (ss / (count - 1.0) / count).sqrt()
                    })
                    .collect(),
            )
        } else {
            self.noise.map(|_| {
                model_var
                    .iter()
                    .map(|v| (v / count / count).sqrt())
                    .collect()
            })
        };
        let in_regions = |i: usize| (0..regions).any(|r| self.weights[r * n + i] > 0.0);
        let saturated_pixels = (0..n).filter(|&i| saturated[i] && in_regions(i)).count();
        let scores = self.spec.scores(&energies);
        let confidences = self.spec.confidences(&scores);
        let class = argmax(&confidences);
        let certainty = errors
            .as_ref()
            .map(|sigma| self.certainty(&energies, sigma, class));
        Ok(RigPrediction {
            class,
            label: self.spec.classes[class].clone(),
            confidences,
            scores,
            energies,
            energy_errors: errors,
            certainty,
            frames: frames.len(),
            saturated_pixels,
        })
    }

    /// The fraction of [`CERTAINTY_DRAWS`] draws of the region signals (Gaussian about
    /// `energies` with standard deviations `sigma`, a fixed seed) whose scores pick `class`
    /// alone (ties count against it).
    fn certainty(&self, energies: &[f64], sigma: &[f64], class: usize) -> f64 {
        let mut rng = Rng::new(CERTAINTY_SEED);
        let mut drawn = vec![0.0; energies.len()];
        let same = (0..CERTAINTY_DRAWS)
            .filter(|_| {
                for ((d, e), s) in drawn.iter_mut().zip(energies).zip(sigma) {
                    *d = e + s * rng.normal();
                }
                // Only a strict maximum counts: a tie (a dark frame without noise) is no answer.
                let scores = self.spec.scores(&drawn);
                (0..scores.len()).all(|i| i == class || scores[i] < scores[class])
            })
            .count();
        same as f64 / CERTAINTY_DRAWS as f64
    }
}

/// The bytes of frames [`Readout::classify`] holds at a time (256 MiB): a run of images is cut
/// so that its frames fit.
pub const FRAME_BUDGET: usize = 256 << 20;

/// Points per camera pixel side used to measure how much of it lies in a region.
const COVERAGE_SAMPLES: usize = 8;

/// `[R, rows, cols]`: the fraction of each camera pixel (placed by `map`) inside each of the
/// system's regions, from `8 × 8` points per pixel.
fn camera_weights(
    system: &OpticalSystem,
    map: &Affine,
    cols: usize,
    rows: usize,
) -> Result<Vec<f32>> {
    let inverse = map.inverse()?;
    let n = rows * cols;
    let s = COVERAGE_SAMPLES;
    let mut weights = vec![0f32; system.detector.regions.len() * n];
    for (region, w) in system
        .detector
        .regions
        .iter()
        .zip(weights.chunks_exact_mut(n))
    {
        let (hx, hy) = (region.width_m / 2.0, region.height_m / 2.0);
        let (x0, x1) = (region.x_m - hx, region.x_m + hx);
        let (y0, y1) = (region.y_m - hy, region.y_m + hy);
        // The region's corners on the camera bound the pixels to look at.
        let corners = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)].map(|p| map.apply(p));
        let lo = |f: fn(&(f64, f64)) -> f64| corners.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi =
            |f: fn(&(f64, f64)) -> f64| corners.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        let clampc = |v: f64, n: usize| v.clamp(0.0, n as f64) as usize;
        let (c0, c1) = (
            clampc((lo(|p| p.0) - 1.0).floor(), cols),
            clampc((hi(|p| p.0) + 2.0).ceil(), cols),
        );
        let (r0, r1) = (
            clampc((lo(|p| p.1) - 1.0).floor(), rows),
            clampc((hi(|p| p.1) + 2.0).ceil(), rows),
        );
        for r in r0..r1 {
            for c in c0..c1 {
                let mut inside = 0;
                for a in 0..s {
                    for b in 0..s {
                        let cc = c as f64 - 0.5 + (a as f64 + 0.5) / s as f64;
                        let rr = r as f64 - 0.5 + (b as f64 + 0.5) / s as f64;
                        let (x, y) = inverse.apply((cc, rr));
                        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                            inside += 1;
                        }
                    }
                }
                w[r * cols + c] = inside as f32 / (s * s) as f32;
            }
        }
    }
    if weights.iter().all(|&w| w == 0.0) {
        return Err(invalid(
            "calibration",
            "no detector region falls on the camera; the calibration is of another rig",
        ));
    }
    Ok(weights)
}

/// The phase ↔ gray map of a phase SLM's measured table `lut` on `bits`-bit levels, or `None`
/// without one; `what` names the table in errors. Errors if the input is encoded in amplitude
/// (a table describes a phase SLM) or the table does not suit the bits.
pub(crate) fn phase_map(
    lut: Option<&Lut>,
    encoding: Encoding,
    bits: u32,
    what: &str,
) -> Result<Option<GrayMap>> {
    match lut {
        None => Ok(None),
        Some(_) if encoding == Encoding::Amplitude => Err(invalid(
            what,
            "a lookup table describes a phase SLM; this model encodes its input in amplitude",
        )),
        Some(lut) => GrayMap::table(lut, bits)
            .map(Some)
            .map_err(|e| invalid(what, e)),
    }
}
