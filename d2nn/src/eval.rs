//! Evaluation of a network on a labelled dataset, and inference on single images.

use std::f64::consts::TAU;
use std::time::Instant;

use burn::tensor::Tensor;
use photonflow_optics::memory;
use serde::Serialize;

use crate::data::{Dataset, GrayImage};
use crate::error::Result;
use crate::network::{Band, Mask, Optics, shift_mask};
use crate::ops::intensity;
use crate::rng::Rng;

/// A grayscale image for the network's input: `rows × cols` pixels, row-major, in `[0, 1]`
/// (`U8`: 0…255 mapped to `v/255`).
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    /// The pixels.
    pub pixels: Pixels<'a>,
    /// Rows.
    pub rows: usize,
    /// Pixels per row.
    pub cols: usize,
}

/// Pixel values of an [`ImageRef`].
#[derive(Debug, Clone, Copy)]
pub enum Pixels<'a> {
    /// 0…255.
    U8(&'a [u8]),
    /// 0…1.
    F32(&'a [f32]),
}

impl ImageRef<'_> {
    /// The pixels as `f32` in `[0, 1]`.
    pub fn to_f32(&self) -> Vec<f32> {
        match self.pixels {
            Pixels::U8(v) => v.iter().map(|&p| f32::from(p) / 255.0).collect(),
            Pixels::F32(v) => v.to_vec(),
        }
    }

    /// The image resampled to `rows × cols` ([`GrayImage::resized`]), as `f32` in `[0, 1]`:
    /// what goes onto a model's input area.
    pub fn resized(&self, rows: usize, cols: usize) -> Vec<f32> {
        let image = GrayImage {
            rows: self.rows,
            cols: self.cols,
            pixels: self.to_f32(),
        };
        image.resized(rows, cols).pixels
    }

    /// The pixels as `f32` in `[0, 1]`, translated by `dx` pixels to the right (columns) and
    /// `dy` down (rows); what moves in is 0 and what moves out is dropped.
    pub fn translated(&self, dx: i64, dy: i64) -> Vec<f32> {
        let source = self.to_f32();
        let mut out = vec![0f32; source.len()];
        let (rows, cols) = (self.rows as i64, self.cols as i64);
        // Destination columns c with 0 ≤ c − dx < cols; rows likewise.
        let (c0, c1) = (dx.clamp(0, cols), (cols + dx).clamp(0, cols));
        let (r0, r1) = (dy.clamp(0, rows), (rows + dy).clamp(0, rows));
        for r in r0..r1 {
            let (dst, src) = ((r * cols) as usize, ((r - dy) * cols) as usize);
            out[dst + c0 as usize..dst + c1 as usize]
                .copy_from_slice(&source[src + (c0 - dx) as usize..src + (c1 - dx) as usize]);
        }
        out
    }
}

impl Dataset {
    /// Sample `i` as an image reference.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image_ref(&self, i: usize) -> ImageRef<'_> {
        ImageRef {
            pixels: Pixels::U8(self.image(i)),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// The scores of a batch: what [`Optics`] and a set of masks make of the images.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// Region energies, `[B][R]`.
    pub energies: Vec<Vec<f32>>,
    /// Class scores, `[B][C]`.
    pub scores: Vec<Vec<f32>>,
    /// Confidences `softmax(score/T)`, `[B][C]`.
    pub confidences: Vec<Vec<f32>>,
    /// Their logarithms, `[B][C]` (minus the cross-entropy of each class).
    pub log_confidences: Vec<Vec<f32>>,
    /// Power of each encoded input field (same units as the energies), `[B]`.
    pub input_power: Vec<f32>,
}

/// Runs a batch of images through the network.
pub fn run_batch(optics: &Optics, masks: &[Mask], images: &[ImageRef]) -> Outputs {
    run_batch_with(optics, masks, &optics.bands, images)
}

/// [`run_batch`] with other bands (displaced layers, see [`Optics::displaced`]).
pub fn run_batch_with(
    optics: &Optics,
    masks: &[Mask],
    bands: &[Band],
    images: &[ImageRef],
) -> Outputs {
    let b = images.len();
    // the source's power is that of a unit plane wave, whatever its spectrum and directions
    let input_power: Tensor<1> = intensity(optics.encode(images))
        .sum_dim(1)
        .sum_dim(2)
        .reshape([b]);
    let energies = optics.energies_with(images, masks, bands);
    let scores = optics.scores(energies.clone());
    let log_confidences = optics.log_confidences(scores.clone());
    let rows = |t: Tensor<2>| -> Vec<Vec<f32>> {
        let [_, n] = t.dims();
        let v = t.into_data().try_into_vec::<f32>().expect("f32 outputs");
        v.chunks(n.max(1)).map(<[f32]>::to_vec).collect()
    };
    Outputs {
        energies: rows(energies),
        scores: rows(scores),
        confidences: rows(log_confidences.clone().exp()),
        log_confidences: rows(log_confidences),
        input_power: input_power
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 outputs"),
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}

/// Accuracy, per-class accuracy and confusion matrix on a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Fraction of samples classified correctly.
    pub accuracy: f64,
    /// For each class, the fraction of its samples classified correctly (NaN-free: a class
    /// without samples gets 0).
    pub per_class_accuracy: Vec<f64>,
    /// `confusion_matrix[true][predicted]` sample counts.
    pub confusion_matrix: Vec<Vec<u64>>,
    /// Mean softmax cross-entropy of the scores.
    pub loss: f64,
    /// Samples evaluated.
    pub samples: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Samples per second.
    pub samples_per_s: f64,
    /// Mean fraction of the input power that reached the detector regions.
    pub detected_fraction: f64,
    /// Class names.
    pub classes: Vec<String>,
}

/// Imperfections of a built network, applied at test time to measure how robust a model is
/// (Mengu et al., "Misalignment resilient diffractive optical networks", Nanophotonics 9, 4207
/// (2020)). The default is the ideal network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Perturbation {
    /// Every layer is shifted by a whole number of pixels drawn uniformly from
    /// `−lateral_px..=lateral_px`, independently along x and y, per layer and per batch.
    pub lateral_px: u32,
    /// Every layer is displaced along z by a distance drawn uniformly from
    /// `[−axial_m, axial_m]` (metres), per layer and per batch.
    pub axial_m: f64,
    /// Phases quantised to this many uniform levels `k·2π/L` (what an `L`-level fabrication
    /// process or SLM makes of a continuous mask).
    pub levels: Option<u32>,
    /// Seed of the random draws.
    pub seed: u64,
}

impl Perturbation {
    /// Whether this is the ideal network.
    pub fn is_none(&self) -> bool {
        self.lateral_px == 0 && self.axial_m == 0.0 && self.levels.is_none()
    }
}

/// Random stream key of the test-time perturbations (see [`Rng::stream`]).
const PERTURB_STREAM: u64 = 7;

/// The phase of `mask` quantised to `levels` uniform levels `k·2π/L` (nearest level, wrapped).
pub fn quantise_phase(mask: &Mask, levels: u32) -> Mask {
    let step = TAU / f64::from(levels.max(1));
    let k = (mask.phase.clone() / step).round();
    let k = k.clone() - (k / f64::from(levels.max(1))).floor() * f64::from(levels.max(1));
    Mask {
        amplitude: mask.amplitude.clone(),
        phase: k * step,
    }
}

/// Evaluates the network on every sample of `data`, `batch` at a time; `progress(done, total)`
/// is called after every batch.
pub fn evaluate(
    optics: &Optics,
    masks: &[Mask],
    data: &Dataset,
    batch: usize,
    progress: impl FnMut(usize, usize),
) -> Result<Evaluation> {
    evaluate_perturbed(
        optics,
        masks,
        data,
        batch,
        &Perturbation::default(),
        progress,
    )
}

/// [`evaluate`] with the network perturbed by `perturbation`: quantised once, misaligned anew
/// for every batch (so smaller batches average over more misalignments).
///
/// Errors: an axial displacement that breaks a gap's sampling criterion.
pub fn evaluate_perturbed(
    optics: &Optics,
    masks: &[Mask],
    data: &Dataset,
    batch: usize,
    perturbation: &Perturbation,
    mut progress: impl FnMut(usize, usize),
) -> Result<Evaluation> {
    // About two complex f32 fields per sample at the peak (measured: 1.4, 7.1 MB a sample of
    // 800² neurons, beside the plans); a batch holds at most the whole dataset.
    // Under a source's cone, every direction's field of a band is in flight at once.
    let (nx, ny) = (optics.grid.nx, optics.grid.ny);
    let batch = batch.clamp(1, data.len().max(1));
    let modes = optics.bands.iter().map(Band::fields).max().unwrap_or(1);
    memory::check_fits(
        memory::bytes(&[batch, nx, ny, 16, modes]),
        || format!("evaluating batches of {batch} on {nx}×{ny} neurons, {modes} field(s) each"),
        "use a smaller batch (eval --batch)",
    )?;
    let clock = Instant::now();
    let quantised: Vec<Mask>;
    let masks = match perturbation.levels {
        Some(l) => {
            quantised = masks.iter().map(|m| quantise_phase(m, l)).collect();
            &quantised
        }
        None => masks,
    };
    let n = data.len();
    let mut outcomes = Vec::with_capacity(n);
    for start in (0..n).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
        let images: Vec<ImageRef> = idx.iter().map(|&i| data.image_ref(i)).collect();
        let mut rng = Rng::stream(perturbation.seed, &[PERTURB_STREAM, start as u64]);
        let shifted: Vec<Mask>;
        let batch_masks = if perturbation.lateral_px > 0 {
            let p = i64::from(perturbation.lateral_px);
            let mut draw = || rng.below(2 * p as usize + 1) as i64 - p;
            shifted = masks
                .iter()
                .map(|m| {
                    let (dx, dy) = (draw(), draw());
                    shift_mask(m.clone(), dx, dy)
                })
                .collect();
            &shifted
        } else {
            masks
        };
        let displaced;
        let bands = if perturbation.axial_m > 0.0 {
            let a = perturbation.axial_m;
            let dz: Vec<f64> = (0..masks.len()).map(|_| rng.range(-a, a)).collect();
            displaced = optics.displaced(&optics.bands, &dz)?;
            &displaced
        } else {
            &optics.bands
        };
        let out = run_batch_with(optics, batch_masks, bands, &images);
        for (k, &i) in idx.iter().enumerate() {
            let label = usize::from(data.labels[i]);
            let e: f32 = out.energies[k].iter().sum();
            outcomes.push(Outcome {
                label,
                predicted: argmax(&out.scores[k]),
                log_confidence: f64::from(out.log_confidences[k][label]),
                detected: Some(if out.input_power[k] > 0.0 {
                    f64::from(e / out.input_power[k])
                } else {
                    0.0
                }),
            });
        }
        progress(idx.last().map_or(0, |l| l + 1), n);
    }
    Ok(Evaluation::tally(
        optics.system.detector.classes.clone(),
        &outcomes,
        clock.elapsed().as_secs_f64(),
    ))
}

/// What became of one test sample, for [`Evaluation::tally`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Its true class.
    pub label: usize,
    /// The class the network chose.
    pub predicted: usize,
    /// `ln` of the confidence in the true class (minus its cross-entropy).
    pub log_confidence: f64,
    /// The fraction of the input power that reached the detector regions, when known.
    pub detected: Option<f64>,
}

impl Evaluation {
    /// Accuracy, per-class accuracy, confusion matrix and loss of `outcomes` over `classes`,
    /// which took `seconds`. The one tally of the model's evaluation and of a rig's.
    /// `detected_fraction` is the mean over the outcomes that know it (NaN if none does).
    ///
    /// # Panics
    /// If an outcome's label or prediction is not a class index.
    pub fn tally(classes: Vec<String>, outcomes: &[Outcome], seconds: f64) -> Self {
        let c = classes.len();
        let n = outcomes.len();
        let mut confusion = vec![vec![0u64; c]; c];
        let (mut loss, mut detected, mut known) = (0.0f64, 0.0f64, 0usize);
        for o in outcomes {
            confusion[o.label][o.predicted] += 1;
            loss -= o.log_confidence;
            if let Some(d) = o.detected {
                detected += d;
                known += 1;
            }
        }
        let correct: u64 = (0..c).map(|i| confusion[i][i]).sum();
        Evaluation {
            accuracy: correct as f64 / n.max(1) as f64,
            per_class_accuracy: confusion
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let total: u64 = row.iter().sum();
                    if total == 0 {
                        0.0
                    } else {
                        row[i] as f64 / total as f64
                    }
                })
                .collect(),
            confusion_matrix: confusion,
            loss: loss / n.max(1) as f64,
            samples: n,
            seconds,
            samples_per_s: n as f64 / seconds.max(1e-9),
            detected_fraction: if known > 0 {
                detected / known as f64
            } else {
                f64::NAN
            },
            classes,
        }
    }
}

/// What the network says about one image.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// Index of the predicted class.
    pub class: usize,
    /// Its name.
    pub label: String,
    /// Confidence of every class, `softmax(score/T)`.
    pub confidences: Vec<f32>,
    /// Each region's share of the detected energy (sums to 1 unless nothing was detected).
    pub energy_fractions: Vec<f32>,
    /// Fraction of the input power that reached the detector regions.
    pub detected_fraction: f32,
}

/// Predictions for images (any sizes; each is resampled onto the input area), run
/// [`INFER_BATCH`] at a time.
pub fn infer(optics: &Optics, masks: &[Mask], images: &[ImageRef]) -> Vec<Prediction> {
    images
        .chunks(INFER_BATCH)
        .flat_map(|batch| predictions(optics, masks, batch))
        .collect()
}

/// Images [`infer`] runs at a time: its memory is that of one such batch however many images
/// it is given. An image's answer depends on its batch only through `f32` rounding (measured:
/// confidences within 4.5·10⁻⁷ between one batch of 150 images and batches of 64).
pub const INFER_BATCH: usize = 64;

fn predictions(optics: &Optics, masks: &[Mask], images: &[ImageRef]) -> Vec<Prediction> {
    let out = run_batch(optics, masks, images);
    (0..images.len())
        .map(|k| {
            let class = argmax(&out.scores[k]);
            let total: f32 = out.energies[k].iter().sum();
            Prediction {
                class,
                label: optics.system.detector.classes[class].clone(),
                confidences: out.confidences[k].clone(),
                energy_fractions: out.energies[k]
                    .iter()
                    .map(|e| if total > 0.0 { e / total } else { 0.0 })
                    .collect(),
                detected_fraction: if out.input_power[k] > 0.0 {
                    total / out.input_power[k]
                } else {
                    0.0
                },
            }
        })
        .collect()
}

/// Detector-plane intensity `|u|²` (`[Ny, Nx]` row-major, one per image) of images run
/// through the network: what a camera at the detector plane would see.
pub fn detector_planes(optics: &Optics, masks: &[Mask], images: &[ImageRef]) -> Vec<Vec<f32>> {
    let i = optics.detector_intensity(images, masks, &optics.bands);
    let [_, ny, nx] = i.dims();
    let v = i
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 intensities");
    v.chunks(ny * nx).map(<[f32]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_moves_pixels_and_fills_with_zeros() {
        // 3 rows × 4 columns, pixel (r, c) = 10r + c + 1.
        let v: Vec<u8> = (0..12).map(|i| (10 * (i / 4) + i % 4 + 1) as u8).collect();
        let image = ImageRef {
            pixels: Pixels::U8(&v),
            rows: 3,
            cols: 4,
        };
        let at = |p: &[f32], r: usize, c: usize| (p[r * 4 + c] * 255.0).round() as u8;
        assert_eq!(image.translated(0, 0), image.to_f32());
        for (dx, dy) in [(1, 0), (-2, 1), (3, -2), (0, -1), (-1, 2)] {
            let p = image.translated(dx, dy);
            for r in 0..3i64 {
                for c in 0..4i64 {
                    let (sr, sc) = (r - dy, c - dx);
                    let want = if (0..3).contains(&sr) && (0..4).contains(&sc) {
                        v[(sr * 4 + sc) as usize]
                    } else {
                        0
                    };
                    assert_eq!(
                        at(&p, r as usize, c as usize),
                        want,
                        "({dx}, {dy}) at ({r}, {c})"
                    );
                }
            }
        }
        // Shifted right then left again: only the column that left is lost.
        let f = ImageRef {
            pixels: Pixels::F32(&image.translated(1, 0)),
            rows: 3,
            cols: 4,
        }
        .translated(-1, 0);
        for r in 0..3 {
            assert_eq!(at(&f, r, 3), 0);
            for c in 0..3 {
                assert_eq!(at(&f, r, c), v[r * 4 + c]);
            }
        }
        for (dx, dy) in [(4, 0), (0, -3), (-9, 9)] {
            assert!(
                image.translated(dx, dy).iter().all(|&p| p == 0.0),
                "({dx}, {dy})"
            );
        }
    }
}
