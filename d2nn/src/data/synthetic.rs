//! A procedurally generated stand-in for MNIST: handwritten-looking digits drawn from a small
//! stroke font, each sample with its own random affine distortion, stroke width and jitter.
//!
//! It exists so that `photonflow demo` still runs where no real dataset can be found. It is
//! *not* MNIST: it is easier (ten fixed glyphs, distorted), so accuracies on it say nothing
//! about a network's accuracy on real digits. Every caller must say so when it uses it.
//!
//! Images are 28×28, white (255) strokes on black (0), the digit's box about 20×20 pixels and
//! centred, as in MNIST. Sample `i` of a split depends only on `(seed, split, i)`, so the
//! dataset is identical on every machine and thread count.

use std::f64::consts::PI;

use rayon::prelude::*;

use super::{Dataset, Splits};
use crate::rng::Rng;

/// Name of the generated dataset.
pub const NAME: &str = "synthetic-digits";

/// Image side, pixels.
const SIDE: usize = 28;

/// Side of the digit's box in the image, pixels.
const BOX: f64 = 20.0;

/// Polylines of a glyph in its unit box (x right, y down, both in `[0, 1]`).
type Glyph = Vec<Vec<(f64, f64)>>;

/// Points on an ellipse arc centred at `(cx, cy)` with radii `(rx, ry)`, from angle `a0` to `a1`
/// (degrees; y points down, so angles turn clockwise on screen).
fn arc(cx: f64, cy: f64, rx: f64, ry: f64, a0: f64, a1: f64) -> Vec<(f64, f64)> {
    let n = ((a1 - a0).abs() / 12.0).ceil().max(2.0) as usize;
    (0..=n)
        .map(|k| {
            let a = (a0 + (a1 - a0) * k as f64 / n as f64) * PI / 180.0;
            (cx + rx * a.cos(), cy + ry * a.sin())
        })
        .collect()
}

/// The stroke font: glyph of digit `d`.
fn glyph(d: u8) -> Glyph {
    match d {
        0 => vec![arc(0.5, 0.5, 0.3, 0.46, 0.0, 360.0)],
        1 => vec![vec![(0.32, 0.22), (0.55, 0.04), (0.55, 0.96)]],
        2 => {
            let mut s = arc(0.5, 0.3, 0.26, 0.25, 190.0, 385.0);
            s.extend([(0.2, 0.95), (0.82, 0.95)]);
            vec![s]
        }
        3 => {
            let mut s = arc(0.48, 0.27, 0.25, 0.22, 200.0, 450.0);
            s.extend(arc(0.48, 0.71, 0.29, 0.24, 270.0, 515.0));
            vec![s]
        }
        4 => vec![
            vec![(0.6, 0.04), (0.15, 0.66), (0.85, 0.66)],
            vec![(0.66, 0.3), (0.66, 0.96)],
        ],
        5 => {
            let mut s = vec![(0.78, 0.05), (0.3, 0.05), (0.25, 0.45)];
            s.extend(arc(0.48, 0.67, 0.3, 0.28, 232.0, 500.0));
            vec![s]
        }
        6 => vec![
            vec![(0.7, 0.06), (0.46, 0.2), (0.3, 0.42), (0.23, 0.68)],
            arc(0.5, 0.71, 0.27, 0.24, 0.0, 360.0),
        ],
        7 => vec![vec![(0.18, 0.05), (0.82, 0.05), (0.42, 0.96)]],
        8 => vec![
            arc(0.5, 0.27, 0.23, 0.22, 0.0, 360.0),
            arc(0.5, 0.73, 0.28, 0.23, 0.0, 360.0),
        ],
        _ => vec![
            arc(0.5, 0.3, 0.26, 0.24, 0.0, 360.0),
            vec![(0.76, 0.3), (0.7, 0.62), (0.55, 0.96)],
        ],
    }
}

/// Distance from `p` to the segment `a–b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (qx * qx + qy * qy).sqrt()
}

/// Draws one sample of digit `d` with the randomness of `rng` into `out` (`SIDE²` bytes).
fn draw(d: u8, rng: &mut Rng, out: &mut [u8]) {
    // Random affine map of the unit box onto the image: scale, aspect, rotation, shear, shift.
    let scale = BOX * rng.range(0.8, 1.08);
    let aspect = rng.range(0.8, 1.15);
    let angle = rng.range(-14.0, 14.0) * PI / 180.0;
    let shear = rng.range(-0.25, 0.25);
    let (s, c) = angle.sin_cos();
    let centre = (
        SIDE as f64 / 2.0 + rng.range(-1.5, 1.5),
        SIDE as f64 / 2.0 + rng.range(-1.5, 1.5),
    );
    let jitter = 0.025;
    let map = |(x, y): (f64, f64), rng: &mut Rng| {
        let (x, y) = (
            (x - 0.5 + rng.range(-jitter, jitter)) * aspect,
            y - 0.5 + rng.range(-jitter, jitter),
        );
        let x = x - shear * y;
        (
            centre.0 + scale * (c * x - s * y),
            centre.1 + scale * (s * x + c * y),
        )
    };
    let strokes: Vec<Vec<(f64, f64)>> = glyph(d)
        .into_iter()
        .map(|line| line.into_iter().map(|p| map(p, rng)).collect())
        .collect();
    let half = rng.range(0.9, 1.6);
    for (r, row) in out.chunks_exact_mut(SIDE).enumerate() {
        for (col, v) in row.iter_mut().enumerate() {
            let p = (col as f64 + 0.5, r as f64 + 0.5);
            let dist = strokes
                .iter()
                .flat_map(|l| l.windows(2).map(move |w| segment_distance(p, w[0], w[1])))
                .fold(f64::INFINITY, f64::min);
            // Anti-aliased stroke edge one pixel wide.
            let coverage = (half + 0.5 - dist).clamp(0.0, 1.0);
            *v = (255.0 * coverage).round() as u8;
        }
    }
}

/// `n` samples of split `split` (0 train, 1 test): labels cycle through 0–9 in a shuffled order.
fn split(name: &str, n: usize, seed: u64, split: u64) -> Dataset {
    let labels: Vec<u8> = (0..n)
        .map(|i| {
            let mut rng = Rng::stream(seed, &[split, i as u64, 0]);
            rng.below(10) as u8
        })
        .collect();
    let mut images = vec![0u8; n * SIDE * SIDE];
    images
        .par_chunks_mut(SIDE * SIDE)
        .zip(&labels)
        .enumerate()
        .for_each(|(i, (out, &d))| draw(d, &mut Rng::stream(seed, &[split, i as u64, 1]), out));
    Dataset {
        name: name.to_string(),
        rows: SIDE,
        cols: SIDE,
        images,
        labels,
        class_names: (0..10).map(|c| c.to_string()).collect(),
    }
}

/// The generated digits: `train` training and `test` test samples from `seed` (the two splits
/// are drawn from different streams, so no test sample is a training sample).
pub fn digits(train: usize, test: usize, seed: u64) -> Splits {
    Splits {
        train: split(NAME, train, seed, 0),
        test: split(NAME, test, seed, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean image of each class.
    fn means(d: &Dataset) -> Vec<Vec<f64>> {
        let mut sum = vec![vec![0.0; SIDE * SIDE]; 10];
        let counts = d.class_counts();
        for i in 0..d.len() {
            for (s, &p) in sum[usize::from(d.labels[i])].iter_mut().zip(d.image(i)) {
                *s += f64::from(p) / counts[usize::from(d.labels[i])] as f64;
            }
        }
        sum
    }

    #[test]
    fn samples_are_deterministic_distinct_and_look_like_digits() {
        let a = digits(400, 100, 7);
        let b = digits(400, 100, 7);
        assert_eq!(a, b, "same seed, same data");
        assert_ne!(digits(400, 100, 8).train.images, a.train.images);
        assert!(a.train.class_counts().iter().all(|&c| c > 20));
        // Every image has ink, and the ink sits in the middle like MNIST's.
        for i in 0..a.train.len() {
            let img = a.train.image(i);
            let ink: u32 = img.iter().map(|&p| u32::from(p)).sum();
            assert!(ink > 255 * 20, "sample {i} is nearly empty");
            let border: u32 = (0..SIDE)
                .flat_map(|k| [k, SIDE * (SIDE - 1) + k, k * SIDE, k * SIDE + SIDE - 1])
                .map(|j| u32::from(img[j]))
                .sum();
            assert!(border < ink / 20, "sample {i} touches the border");
        }
        // No two samples are identical.
        let mut seen = std::collections::HashSet::new();
        for i in 0..a.train.len() {
            assert!(seen.insert(a.train.image(i).to_vec()));
        }
    }

    #[test]
    fn nearest_class_mean_separates_the_classes() {
        // The classes are distinct glyphs: even a nearest-mean classifier on the raw pixels
        // gets most test samples right (it would get 10 % on noise), yet not all (the
        // distortions matter).
        let d = digits(2000, 500, 3);
        let m = means(&d.train);
        let correct = (0..d.test.len())
            .filter(|&i| {
                let img = d.test.image(i);
                let dist = |c: usize| -> f64 {
                    m[c].iter()
                        .zip(img)
                        .map(|(a, &p)| (a - f64::from(p)).powi(2))
                        .sum()
                };
                let best = (0..10)
                    .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
                    .unwrap();
                best == usize::from(d.test.labels[i])
            })
            .count();
        let accuracy = correct as f64 / d.test.len() as f64;
        assert!((0.6..0.99).contains(&accuracy), "nearest mean: {accuracy}");
    }
}
