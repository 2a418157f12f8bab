//! Calibrating a rig's camera: where its pixels lie on the detector plane.
//!
//! A real camera has its own pitch, window, offset and rotation, and the layers of a trained
//! network stand between the SLM and it, so the plane cannot be imaged directly. [`calibrate`]
//! uses the model itself: it displays patterns (test images), and for each compares the
//! centroid of the light the model predicts on the plane with the centroid of the light in the
//! camera's frames. The centroid moves with any affine map exactly, so three or more patterns
//! whose light lands in different places fix the camera's [`Affine`] map by least squares.
//! The plane's centroids are then taken again over the part of the plane the camera sees, and
//! the map refitted (three rounds), so that light beyond the camera's edge does not bias it.
//! That map, and the camera centred on the axis at its stated pitch (for patterns whose
//! centroids lie on one line), each start a Levenberg–Marquardt fit of every pixel; the better
//! fit is kept: the six numbers of the map, a
//! gain and an offset are chosen so that the model's light, [`resample`]d onto the camera by
//! the map, matches the frames in the least-squares sense.
//!
//! The result ([`Calibration`]) is a small JSON file that `photonflow infer` and `eval` read
//! with `--calibration`.

use std::io::Write;
use std::path::Path;

use photonflow_optics::Grid;
use photonflow_optics::io::write_atomic;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{HardwareError, Result, invalid};
use crate::geometry::{Affine, resample};
use crate::rig::Rig;

/// The value of [`Calibration::format`].
pub const FORMAT: &str = "photonflow-camera-calibration";

/// A measured placement of a camera on the detector plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Plane `(x, y)`, metres → camera `(col, row)`, pixels.
    pub map: Affine,
    /// Root mean square difference between the frames and the model's light placed by the map
    /// (with the best gain and offset), relative to the frames' root mean square.
    pub residual: f64,
    /// Patterns the map was fitted to.
    pub patterns: usize,
    /// The camera's pixel rows.
    pub camera_rows: usize,
    /// The camera's pixel columns.
    pub camera_cols: usize,
}

impl Calibration {
    /// Writes the calibration as JSON (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a calibration is plain JSON");
        write_atomic(path, |w| w.write_all(text.as_bytes())).map_err(|source| HardwareError::Io {
            action: format!("writing {}", path.display()),
            source,
        })
    }

    /// Reads a calibration and checks it.
    pub fn load(path: &Path) -> Result<Self> {
        let what = || format!("calibration {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|source| HardwareError::Io {
            action: format!("reading the calibration {}", path.display()),
            source,
        })?;
        let c: Self = serde_json::from_str(&text).map_err(|e| invalid(what(), e.to_string()))?;
        if c.format != FORMAT || c.version != 1 {
            return Err(invalid(
                what(),
                format!(
                    "not a camera calibration (format '{}', version {})",
                    c.format, c.version
                ),
            ));
        }
        if !c.map.0.iter().flatten().all(|v| v.is_finite()) || c.map.inverse().is_err() {
            return Err(invalid(what(), "the map is not finite and invertible"));
        }
        Ok(c)
    }

    /// The camera's pitch on the plane, metres (the square root of a pixel's area), and its
    /// rotation, degrees: for reports.
    pub fn pitch_and_rotation(&self) -> (f64, f64) {
        let [[a, _, _], [c, _, _]] = self.map.0;
        (self.map.pixel_area().sqrt(), (-c).atan2(a).to_degrees())
    }
}

/// The centroid `(x, y)` of `weights` at the points `at(k)`, or `None` without weight.
fn centroid(
    weights: impl Iterator<Item = (usize, f64)>,
    at: impl Fn(usize) -> (f64, f64),
) -> Option<(f64, f64)> {
    let (mut s, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (k, w) in weights {
        let (x, y) = at(k);
        s += w;
        sx += w * x;
        sy += w * y;
    }
    (s > 0.0).then(|| (sx / s, sy / s))
}

/// Fits the camera map of `rig` from `displays` (SLM levels) and the model's detector-plane
/// intensities of the same patterns, `plane[k]` on `grid`; `frames` frames of each are
/// averaged, `black` (ADU) subtracted first. See the [module docs](self).
///
/// Errors: fewer than three patterns with light on the camera.
pub fn calibrate(
    rig: &mut dyn Rig,
    displays: &[Vec<u16>],
    plane: &[Vec<f32>],
    grid: &Grid,
    black: f64,
    frames: usize,
) -> Result<Calibration> {
    let description = rig.describe()?;
    let (rows, cols) = (description.camera.rows, description.camera.cols);
    let captured = rig.run(displays, frames.max(1))?;
    // Mean frames, black level removed.
    let means: Vec<Vec<f64>> = captured
        .iter()
        .map(|fs| {
            let mut mean = vec![0.0f64; rows * cols];
            for f in fs {
                for (m, &v) in mean.iter_mut().zip(&f.pixels) {
                    *m += f64::from(v) - black;
                }
            }
            mean.iter_mut().for_each(|m| *m /= fs.len().max(1) as f64);
            mean
        })
        .collect();
    let camera_points: Vec<Option<(f64, f64)>> = means
        .iter()
        .map(|mean| {
            let light = mean.iter().map(|&m| m.max(0.0)).enumerate();
            centroid(light, |k| ((k % cols) as f64, (k / cols) as f64))
        })
        .collect();
    let (nx, ny) = (grid.nx, grid.ny);
    let to_plane = Affine::grid(nx, ny, grid.dx).inverse()?;
    let plane_xy = |k: usize| to_plane.apply(((k % nx) as f64, (k / nx) as f64));
    let lit = camera_points.iter().filter(|p| p.is_some()).count();
    if lit < 3 {
        return Err(invalid(
            "calibration",
            format!(
                "{lit} of {} patterns gave light on the camera; at least 3 are needed (check \
                 the exposure and the black level)",
                displays.len()
            ),
        ));
    }
    // Starts: the centroids' map, when they fix one, and the camera centred on the axis at its
    // stated pitch (or the model's), unturned.
    let mut starts = Vec::new();
    let mut seen: Option<Affine> = None;
    for _round in 0..3 {
        let mut pairs = (Vec::new(), Vec::new());
        for (intensity, camera) in plane.iter().zip(&camera_points) {
            let Some(q) = camera else { continue };
            let inside = |k: usize| {
                seen.is_none_or(|m| {
                    let (c, r) = m.apply(plane_xy(k));
                    (-0.5..cols as f64 - 0.5).contains(&c) && (-0.5..rows as f64 - 0.5).contains(&r)
                })
            };
            let weights = intensity
                .iter()
                .enumerate()
                .filter(|&(k, _)| inside(k))
                .map(|(k, &v)| (k, f64::from(v)));
            if let Some(p) = centroid(weights, plane_xy) {
                pairs.0.push(p);
                pairs.1.push(*q);
            }
        }
        match Affine::fit(&pairs.0, &pairs.1) {
            Ok((map, _)) => seen = Some(map),
            Err(_) => break,
        }
    }
    starts.extend(seen);
    let pitch = description.camera.pitch_m.unwrap_or(grid.dx);
    starts.push(Affine::camera(cols, rows, pitch, 0.0, (0.0, 0.0)));
    // Pixels that saturated in some frame do not measure the light: the fit leaves them out.
    let top = description.camera.max_level();
    let keep: Vec<usize> = captured
        .iter()
        .flat_map(|fs| (0..rows * cols).map(move |i| fs.iter().all(|f| f.pixels[i] < top)))
        .enumerate()
        .filter_map(|(k, ok)| ok.then_some(k))
        .collect();
    let (map, residual) = starts
        .into_iter()
        .map(|start| refine(&means, &keep, plane, grid, start, cols, rows))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("one start at least");
    let patterns = lit;
    Ok(Calibration {
        format: FORMAT.to_string(),
        version: 1,
        map,
        residual,
        patterns,
        camera_rows: rows,
        camera_cols: cols,
    })
}

/// The map (started at `start`) that makes the model's plane intensities, resampled onto the
/// camera and scaled by one gain and offset, best match the mean frames at the pixels `keep`
/// (indices into all the frames' pixels, one frame after another) (Levenberg–Marquardt
/// over the map's six numbers, gain and offset; central differences for the map), and the
/// relative residual. Keeps `start` if no step improves on it.
fn refine(
    frames: &[Vec<f64>],
    keep: &[usize],
    plane: &[Vec<f32>],
    grid: &Grid,
    start: Affine,
    cols: usize,
    rows: usize,
) -> (Affine, f64) {
    // Parameters: the map's linear terms in units of 1/pitch, its offsets in pixels.
    let unit = 1.0 / grid.dx;
    let to_map = |p: &[f64; 6]| {
        Affine([
            [p[0] * unit, p[1] * unit, p[2]],
            [p[3] * unit, p[4] * unit, p[5]],
        ])
    };
    let model = |p: &[f64; 6]| -> Option<Vec<f64>> {
        let map = to_map(p);
        map.inverse().ok()?;
        let all: Vec<f64> = plane
            .par_iter()
            .flat_map_iter(|i| resample(i, grid, &map, cols, rows))
            .collect();
        Some(keep.iter().map(|&k| all[k]).collect())
    };
    let all: Vec<f64> = frames.iter().flatten().copied().collect();
    let measured: Vec<f64> = keep.iter().map(|&k| all[k]).collect();
    let n = measured.len().max(1) as f64;
    let scale = (measured.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
    // The sum of squares left by a model image with its best gain and offset, and those.
    let fit_linear = |m: &[f64]| -> (f64, f64, f64) {
        let (sm, sf) = (m.iter().sum::<f64>(), measured.iter().sum::<f64>());
        let smm = m.iter().map(|v| v * v).sum::<f64>();
        let smf = m.iter().zip(&measured).map(|(a, b)| a * b).sum::<f64>();
        let det = n * smm - sm * sm;
        let (g, o) = if det.abs() > 0.0 {
            ((n * smf - sm * sf) / det, (smm * sf - sm * smf) / det)
        } else {
            (0.0, sf / n)
        };
        let sse = m
            .iter()
            .zip(&measured)
            .map(|(a, b)| (b - g * a - o).powi(2))
            .sum::<f64>();
        (sse, g, o)
    };
    let mut p = [
        start.0[0][0] / unit,
        start.0[0][1] / unit,
        start.0[0][2],
        start.0[1][0] / unit,
        start.0[1][1] / unit,
        start.0[1][2],
    ];
    let Some(mut current) = model(&p).filter(|_| scale > 0.0) else {
        return (start, f64::NAN);
    };
    let (mut sse, mut gain, mut offset) = fit_linear(&current);
    let relative = |sse: f64| (sse / n).sqrt() / scale;
    let mut lambda = 1e-3;
    for _ in 0..30 {
        // Jacobian columns: ∂(g·m + o)/∂pₖ by central differences, then m and 1.
        let steps = [1e-4, 1e-4, 1e-3, 1e-4, 1e-4, 1e-3];
        let mut columns: Vec<Vec<f64>> = Vec::with_capacity(8);
        for (k, h) in steps.iter().enumerate() {
            let (mut up, mut down) = (p, p);
            up[k] += h;
            down[k] -= h;
            let (Some(a), Some(b)) = (model(&up), model(&down)) else {
                return (to_map(&p), relative(sse));
            };
            columns.push(
                a.iter()
                    .zip(&b)
                    .map(|(a, b)| gain * (a - b) / (2.0 * h))
                    .collect(),
            );
        }
        columns.push(current.clone());
        columns.push(vec![1.0; current.len()]);
        let residual: Vec<f64> = measured
            .iter()
            .zip(&current)
            .map(|(f, m)| f - gain * m - offset)
            .collect();
        let mut jtj = [[0.0f64; 8]; 8];
        let mut jtr = [0.0f64; 8];
        for a in 0..8 {
            jtr[a] = columns[a].iter().zip(&residual).map(|(j, r)| j * r).sum();
            for b in a..8 {
                let v: f64 = columns[a].iter().zip(&columns[b]).map(|(x, y)| x * y).sum();
                jtj[a][b] = v;
                jtj[b][a] = v;
            }
        }
        let mut improved = false;
        for _ in 0..8 {
            let mut m = jtj;
            for (a, row) in m.iter_mut().enumerate() {
                row[a] += lambda * jtj[a][a].max(1e-300);
            }
            let Some(delta) = solve8(m, jtr) else { break };
            let mut trial = p;
            for (t, d) in trial.iter_mut().zip(&delta) {
                *t += d;
            }
            if let Some(next) = model(&trial) {
                let (s2, g2, o2) = fit_linear(&next);
                if s2 < sse {
                    improved = (sse - s2) > 1e-12 * sse;
                    (p, current, sse, gain, offset) = (trial, next, s2, g2, o2);
                    lambda = (lambda / 3.0).max(1e-9);
                    break;
                }
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    (to_map(&p), relative(sse))
}

/// Solves the 8 × 8 system `m·x = b` by Gaussian elimination with partial pivoting; `None` if
/// it is singular.
fn solve8(mut m: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        let size = m[pivot][col].abs();
        if size.is_nan() || size <= 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..8 {
            let (upper, lower) = m.split_at_mut(row);
            let f = lower[0][col] / upper[col][col];
            for (x, y) in lower[0][col..].iter_mut().zip(&upper[col][col..]) {
                *x -= f * y;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| m[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / m[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve8_solves_and_refuses_singular_systems() {
        let mut rng = photonflow_optics::rng::Rng::new(3);
        let mut m = [[0.0; 8]; 8];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = rng.range(-1.0, 1.0) + if i == j { 0.1 } else { 0.0 };
            }
        }
        let x: [f64; 8] = std::array::from_fn(|i| i as f64 - 3.5);
        let b: [f64; 8] = std::array::from_fn(|i| (0..8).map(|j| m[i][j] * x[j]).sum());
        let got = solve8(m, b).unwrap();
        for (g, w) in got.iter().zip(&x) {
            assert!((g - w).abs() < 1e-10, "{got:?}");
        }
        m[7] = m[6];
        assert!(solve8(m, b).is_none() || solve8(m, b).unwrap().iter().any(|v| v.abs() > 1e6));
    }
}
