//! Where the camera's pixels lie on the detector plane.
//!
//! An [`Affine`] map takes a point `(x, y)` of the detector plane (metres, the model's axes,
//! origin on the optical axis) to camera coordinates `(col, row)` in pixels, pixel `(r, c)`
//! covering `[c − ½, c + ½] × [r − ½, r + ½]`. A camera whose pixels are the model's grid has
//! `col = x/Δ + ⌊nx/2⌋`, `row = y/Δ + ⌊ny/2⌋` ([`Affine::grid`]); a real camera has its own
//! pitch, offset and rotation, measured by calibration ([`crate::calibrate()`]).

use photonflow_optics::Grid;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// `(col, row) = M·(x, y) + t`, stored as the rows `[m₁₁, m₁₂, t₁]` and `[m₂₁, m₂₂, t₂]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine(pub [[f64; 3]; 2]);

impl Affine {
    /// The map of a camera sampling an `nx × ny` grid of pitch `pitch` exactly.
    pub fn grid(nx: usize, ny: usize, pitch: f64) -> Self {
        Self([
            [1.0 / pitch, 0.0, (nx / 2) as f64],
            [0.0, 1.0 / pitch, (ny / 2) as f64],
        ])
    }

    /// A camera of `cols × rows` pixels of pitch `pitch`, turned by `angle` radians
    /// (counter-clockwise from the plane's x axis to the camera's columns) about its centre,
    /// which lies at `centre` (metres) on the plane.
    pub fn camera(cols: usize, rows: usize, pitch: f64, angle: f64, centre: (f64, f64)) -> Self {
        let (s, c) = angle.sin_cos();
        // Camera → plane: p = centre + pitch·R(angle)·(col − c₀, row − r₀); inverted here.
        let (c0, r0) = ((cols / 2) as f64, (rows / 2) as f64);
        let k = 1.0 / pitch;
        // R(−angle)/pitch applied to (p − centre), then + (c₀, r₀).
        let (m11, m12, m21, m22) = (c * k, s * k, -s * k, c * k);
        Self([
            [m11, m12, c0 - m11 * centre.0 - m12 * centre.1],
            [m21, m22, r0 - m21 * centre.0 - m22 * centre.1],
        ])
    }

    /// Camera coordinates `(col, row)` of the plane point `(x, y)`.
    pub fn apply(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let [a, b] = self.0;
        (a[0] * x + a[1] * y + a[2], b[0] * x + b[1] * y + b[2])
    }

    /// The inverse map (camera → plane). Errors if the map is singular.
    pub fn inverse(&self) -> Result<Self> {
        let [[a, b, t1], [c, d, t2]] = self.0;
        let det = a * d - b * c;
        if !det.is_finite() || det.abs() < 1e-300 {
            return Err(invalid("camera geometry", "the map is singular"));
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Ok(Self([
            [ia, ib, -(ia * t1 + ib * t2)],
            [ic, id, -(ic * t1 + id * t2)],
        ]))
    }

    /// The pixel area on the plane of one camera pixel, m² (`1/|det M|`).
    pub fn pixel_area(&self) -> f64 {
        let [[a, b, _], [c, d, _]] = self.0;
        1.0 / (a * d - b * c).abs()
    }

    /// The least-squares map taking each `plane[k]` to `camera[k]`, and the root mean square
    /// of its residuals, camera pixels. Errors with fewer than three points or points on one
    /// line (which do not fix a map).
    pub fn fit(plane: &[(f64, f64)], camera: &[(f64, f64)]) -> Result<(Self, f64)> {
        let n = plane.len().min(camera.len());
        if n < 3 {
            return Err(invalid(
                "calibration",
                format!("{n} point pairs; an affine map needs at least 3"),
            ));
        }
        // Centre and scale the plane points so that the normal equations are well conditioned.
        let mean = |v: &[(f64, f64)]| {
            let (sx, sy) = v[..n]
                .iter()
                .fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
            (sx / n as f64, sy / n as f64)
        };
        let (px, py) = mean(plane);
        let scale = plane[..n]
            .iter()
            .map(|p| (p.0 - px).hypot(p.1 - py))
            .fold(0.0, f64::max);
        if scale == 0.0 || !scale.is_finite() {
            return Err(invalid("calibration", "every point lies at one place"));
        }
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for p in &plane[..n] {
            let (u, v) = ((p.0 - px) / scale, (p.1 - py) / scale);
            sxx += u * u;
            sxy += u * v;
            syy += v * v;
        }
        let det = sxx * syy - sxy * sxy;
        if det <= 1e-12 * (sxx + syy).powi(2) {
            return Err(invalid(
                "calibration",
                "the points lie on one line, which does not fix the camera's geometry; use \
                 patterns that light the plane in more places",
            ));
        }
        let (qx, qy) = mean(camera);
        let mut rows = [[0.0; 3]; 2];
        for (axis, row) in rows.iter_mut().enumerate() {
            let (mut su, mut sv) = (0.0, 0.0);
            for (p, q) in plane[..n].iter().zip(&camera[..n]) {
                let (u, v) = ((p.0 - px) / scale, (p.1 - py) / scale);
                let w = if axis == 0 { q.0 - qx } else { q.1 - qy };
                su += u * w;
                sv += v * w;
            }
            let a = (syy * su - sxy * sv) / det / scale;
            let b = (sxx * sv - sxy * su) / det / scale;
            let mean_q = if axis == 0 { qx } else { qy };
            *row = [a, b, mean_q - a * px - b * py];
        }
        let map = Self(rows);
        let rms = (plane[..n]
            .iter()
            .zip(&camera[..n])
            .map(|(p, q)| {
                let r = map.apply(*p);
                (r.0 - q.0).powi(2) + (r.1 - q.1).powi(2)
            })
            .sum::<f64>()
            / n as f64)
            .sqrt();
        Ok((map, rms))
    }
}

/// What each pixel of a `cols × rows` camera placed by `map` collects of a detector-plane
/// intensity `[ny, nx]` on `grid`, in plane units (`|u|²` per plane pixel area): the intensity,
/// bilinear between plane pixel centres and zero beyond the grid, averaged over `s × s` points
/// of the camera pixel (`s` from 2 to 8, about three per plane pixel across) and scaled by the
/// camera pixel's area in plane pixels. A camera on the grid itself gets the plane back.
///
/// # Panics
/// If `map` is singular or `intensity` is not one value per plane pixel.
pub fn resample(
    intensity: &[f32],
    grid: &Grid,
    map: &Affine,
    cols: usize,
    rows: usize,
) -> Vec<f64> {
    let (nx, ny) = (grid.nx, grid.ny);
    assert_eq!(intensity.len(), nx * ny, "one value per plane pixel");
    let inverse = map.inverse().expect("a camera of positive pitch");
    let area = map.pixel_area() / (grid.dx * grid.dy);
    let s = ((3.0 * area.sqrt()).ceil() as usize).clamp(2, 8);
    let plane = Affine::grid(nx, ny, grid.dx);
    // Camera pixel coordinates → plane pixel coordinates, in one map.
    let [[a, b, _], [c, d, _]] = plane.0;
    let [[ia, ib, it1], [ic, id, it2]] = inverse.0;
    let to_plane = Affine([
        [
            a * ia + b * ic,
            a * ib + b * id,
            a * it1 + b * it2 + plane.0[0][2],
        ],
        [
            c * ia + d * ic,
            c * ib + d * id,
            c * it1 + d * it2 + plane.0[1][2],
        ],
    ]);
    let at = |u: f64, v: f64| -> f64 {
        let (u0, v0) = (u.floor(), v.floor());
        let (fu, fv) = (u - u0, v - v0);
        let pixel = |i: f64, j: f64| {
            if i < 0.0 || j < 0.0 || i >= nx as f64 || j >= ny as f64 {
                0.0
            } else {
                f64::from(intensity[j as usize * nx + i as usize])
            }
        };
        (1.0 - fv) * ((1.0 - fu) * pixel(u0, v0) + fu * pixel(u0 + 1.0, v0))
            + fv * ((1.0 - fu) * pixel(u0, v0 + 1.0) + fu * pixel(u0 + 1.0, v0 + 1.0))
    };
    let norm = area / (s * s) as f64;
    (0..rows * cols)
        .map(|k| {
            let (r, c) = ((k / cols) as f64, (k % cols) as f64);
            let mut sum = 0.0;
            for i in 0..s {
                for j in 0..s {
                    let cc = c - 0.5 + (i as f64 + 0.5) / s as f64;
                    let rr = r - 0.5 + (j as f64 + 0.5) / s as f64;
                    let (u, v) = to_plane.apply((cc, rr));
                    sum += at(u, v);
                }
            }
            sum * norm
        })
        .collect()
}

/// The map (plane metres → camera pixels) of a camera of `cols × rows` pixels: `camera` (a
/// calibration) when given, else the plane's own grid when the camera has its size. Errors,
/// naming `what`, for a camera of another size without a calibration.
pub(crate) fn camera_map(
    camera: Option<&Affine>,
    grid: &Grid,
    cols: usize,
    rows: usize,
    what: &str,
) -> Result<Affine> {
    match camera {
        Some(map) => Ok(*map),
        None if (rows, cols) == (grid.ny, grid.nx) => Ok(Affine::grid(grid.nx, grid.ny, grid.dx)),
        None => Err(invalid(
            what,
            format!(
                "the camera's {rows} × {cols} pixels (rows × columns) are not the detector \
                 plane's {} × {}: calibrate the camera (photonflow rig calibrate) and give the \
                 calibration, or set its window and binning so that its pixels are the plane's",
                grid.ny, grid.nx
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_maps_invert_and_fit_back() {
        let m = Affine::camera(70, 60, 12e-6, 0.1, (16e-6, -8e-6));
        // The camera's centre pixel sees the given centre.
        let (c, r) = m.apply((16e-6, -8e-6));
        assert!((c - 35.0).abs() < 1e-9 && (r - 30.0).abs() < 1e-9);
        let inv = m.inverse().unwrap();
        let p = inv.apply(m.apply((3e-5, -7e-5)));
        assert!((p.0 - 3e-5).abs() < 1e-18 && (p.1 + 7e-5).abs() < 1e-18);
        assert!((m.pixel_area() - 144e-12).abs() < 1e-22);
        let grid = Affine::grid(64, 64, 8e-6);
        assert_eq!(grid.apply((0.0, 0.0)), (32.0, 32.0));
        assert_eq!(grid, Affine::camera(64, 64, 8e-6, 0.0, (0.0, 0.0)));
        // Exact points give the map back; noisy ones a residual of their size.
        let plane: Vec<(f64, f64)> = (0..9)
            .map(|k| ((k % 3) as f64 * 1e-4 - 1e-4, (k / 3) as f64 * 1e-4 - 1e-4))
            .collect();
        let camera: Vec<(f64, f64)> = plane.iter().map(|&p| m.apply(p)).collect();
        let (fit, rms) = Affine::fit(&plane, &camera).unwrap();
        assert!(rms < 1e-9, "{rms}");
        for (a, b) in fit.0.iter().flatten().zip(m.0.iter().flatten()) {
            assert!(
                (a - b).abs() < 1e-9 * b.abs().max(1.0),
                "{fit:?} against {m:?}"
            );
        }
        let noisy: Vec<(f64, f64)> = camera
            .iter()
            .enumerate()
            .map(|(k, c)| (c.0 + if k % 2 == 0 { 0.1 } else { -0.1 }, c.1))
            .collect();
        let (_, rms) = Affine::fit(&plane, &noisy).unwrap();
        assert!(rms > 0.01 && rms < 0.11, "{rms}");
        let line: Vec<(f64, f64)> = (0..5).map(|k| (k as f64, 2.0 * k as f64)).collect();
        assert!(
            Affine::fit(&line, &line)
                .unwrap_err()
                .to_string()
                .contains("one line")
        );
        assert!(Affine::fit(&line[..2], &line[..2]).is_err());
        assert!(
            Affine([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]])
                .inverse()
                .is_err()
        );
    }
}
