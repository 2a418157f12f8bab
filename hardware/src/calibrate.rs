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

use std::path::Path;

use photonflow_optics::Grid;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::file;
use crate::fit::{Measured, levenberg_marquardt, mean_frames};
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
        file::save(self, path)
    }

    /// Reads a calibration and checks it.
    pub fn load(path: &Path) -> Result<Self> {
        let what = || format!("calibration {}", path.display());
        let c: Self = file::load(path, "camera calibration", FORMAT, |c: &Self| {
            (c.format.as_str(), c.version)
        })?;
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
    // Mean frames, black level removed; pixels that saturated in some frame do not measure
    // the light: the fit leaves them out.
    let (means, keep) = mean_frames(&captured, black, description.camera.max_level());
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
    let to_map = |p: &[f64]| {
        Affine([
            [p[0] * unit, p[1] * unit, p[2]],
            [p[3] * unit, p[4] * unit, p[5]],
        ])
    };
    let model = |p: &[f64]| -> Option<Vec<f64>> {
        let map = to_map(p);
        map.inverse().ok()?;
        let all: Vec<f64> = plane
            .par_iter()
            .flat_map_iter(|i| resample(i, grid, &map, cols, rows))
            .collect();
        Some(keep.iter().map(|&k| all[k]).collect())
    };
    let all: Vec<f64> = frames.iter().flatten().copied().collect();
    let measured = Measured::new(keep.iter().map(|&k| all[k]).collect());
    let start = [
        start.0[0][0] / unit,
        start.0[0][1] / unit,
        start.0[0][2],
        start.0[1][0] / unit,
        start.0[1][1] / unit,
        start.0[1][2],
    ];
    let steps = [1e-4, 1e-4, 1e-3, 1e-4, 1e-4, 1e-3];
    match levenberg_marquardt(&measured, &start, &steps, 30, model) {
        Some(fit) => (to_map(&fit.params), measured.relative(fit.linear.sse)),
        None => (to_map(&start), f64::NAN),
    }
}
