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

use photonflow_optics::Detector;
use photonflow_optics::system::{DetectorSpec, Encoding, OpticalSystem};
use serde::Serialize;

use crate::error::{Result, invalid};
use crate::rig::{Description, Device, Frame, level_of};

/// The model's side of a rig; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Readout {
    spec: DetectorSpec,
    detector: Detector,
    encoding: Encoding,
    input: (usize, usize),
    slm: Device,
    camera: Device,
    black: f64,
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
}

impl Readout {
    /// The readout of `system` on a rig described by `rig`; `black_level` (ADU) overrides the
    /// rig's own (a remote rig does not know it: 0 then).
    ///
    /// Errors: a camera that does not sample the model's detector plane, an SLM smaller than
    /// the model's input area.
    pub fn new(
        system: &OpticalSystem,
        rig: &Description,
        black_level: Option<f64>,
    ) -> Result<Self> {
        let (nx, ny) = (system.nx, system.ny);
        if (rig.camera.rows, rig.camera.cols) != (ny, nx) {
            return Err(invalid(
                "camera",
                format!(
                    "the rig's frames are {} × {} pixels; the model's detector plane is {ny} × \
                     {nx} (rows × columns): set the camera's window and binning so that its \
                     pixels are the plane's",
                    rig.camera.rows, rig.camera.cols
                ),
            ));
        }
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
        let black = black_level.or(rig.black_level).unwrap_or(0.0);
        if !(black.is_finite() && black >= 0.0) {
            return Err(invalid(
                "black level",
                format!("{black} ADU must be a finite number ≥ 0"),
            ));
        }
        Ok(Self {
            spec: system.detector.clone(),
            detector: system.detector()?,
            encoding: system.input.encoding,
            input: (ix, iy),
            slm: rig.slm,
            camera: rig.camera,
            black,
        })
    }

    /// The model's input area, `(nx, ny)` pixels: images are resampled to it first.
    pub fn input_size(&self) -> (usize, usize) {
        self.input
    }

    /// The SLM levels that display `image` (`ny × nx` of the input area, values in `[0, 1]`):
    /// the image at the centre of the SLM, level 0 around it.
    ///
    /// # Panics
    /// If `image` does not hold one value per input pixel.
    pub fn display(&self, image: &[f32]) -> Vec<u16> {
        let (ix, iy) = self.input;
        assert_eq!(image.len(), ix * iy, "one value per input pixel");
        let (cols, rows) = (self.slm.cols, self.slm.rows);
        let (x0, y0) = ((cols - ix) / 2, (rows - iy) / 2);
        let mut levels = vec![0u16; rows * cols];
        for (r, row) in image.chunks_exact(ix).enumerate() {
            let line = &mut levels[(y0 + r) * cols + x0..][..ix];
            for (l, &v) in line.iter_mut().zip(row) {
                *l = level_of(v, self.encoding, self.slm.bits);
            }
        }
        levels
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
        let mut energies = vec![0.0f64; regions];
        let top = self.camera.max_level();
        let mut saturated = vec![false; n];
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
            for (r, e) in energies.iter_mut().enumerate() {
                let w = self.detector.region_weights(r);
                *e += w
                    .iter()
                    .zip(&f.pixels)
                    .filter(|(w, _)| **w > 0.0)
                    .map(|(&w, &v)| f64::from(w) * (f64::from(v) - self.black))
                    .sum::<f64>();
            }
            for (s, &v) in saturated.iter_mut().zip(&f.pixels) {
                *s |= v >= top;
            }
        }
        energies.iter_mut().for_each(|e| *e /= frames.len() as f64);
        let in_regions = |i: usize| (0..regions).any(|r| self.detector.region_weights(r)[i] > 0.0);
        let saturated_pixels = (0..n).filter(|&i| saturated[i] && in_regions(i)).count();
        let scores = self.spec.scores(&energies);
        let confidences = self.spec.confidences(&scores);
        let class = confidences
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &c)| {
                if c > bv { (i, c) } else { (bi, bv) }
            })
            .0;
        Ok(RigPrediction {
            class,
            label: self.spec.classes[class].clone(),
            confidences,
            scores,
            energies,
            frames: frames.len(),
            saturated_pixels,
        })
    }
}
