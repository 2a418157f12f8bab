//! Measuring a rig's camera: its black level, gain and read noise, by the photon transfer
//! method (EMVA 1288).
//!
//! A lab camera behind slmsuite's protocol says nothing of its noise, so a single frame's
//! answer could not say how sure it is ([`crate::RigPrediction::certainty`]). [`photon_transfer`]
//! measures it through the rig itself, with the light of one steady pattern:
//!
//! * at each of several exposures, two frames of the same light are taken; every pixel gives a
//!   mean `μ = (a + b)/2` and a variance `σ² = (a − b)²/2` in which the pattern, the optics and
//!   any fixed pattern of the sensor cancel;
//! * the pixels, binned by their mean, trace the **photon transfer curve**
//!   `σ² = (μ − black)/K + σ_r²/K² + 1/12` (shot noise, read noise, the converter's rounding):
//!   its slope is `1/K`, the gain `K` in electrons per ADU;
//! * the mean of the frames grows linearly with the exposure, `μ̄(t) = black + r·t`; its
//!   intercept is the **black level**;
//! * the curve's intercept then gives the **read noise** `σ_r` in electrons.
//!
//! Pixels that reach the top of the converter's range or 0 in either frame are left out
//! (their variance is clipped), and so are pixels above 70 % of the range, where the well
//! begins to fill and the curve to bend (EMVA 1288 fits the same linear range). The result ([`CameraMeasurement`]) is a small JSON file that
//! `infer`, `eval` and the other rig commands read with `--camera`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::file;
use crate::fit::solve;
use crate::rig::{CameraNoise, Rig};

/// The value of [`CameraMeasurement::format`].
pub const FORMAT: &str = "photonflow-camera-measurement";

/// Pixels per bin of the transfer curve, at least.
const MIN_BIN: usize = 64;

/// A camera as [`photon_transfer`] measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraMeasurement {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The value for no light, ADU.
    pub black_level: f64,
    /// Electrons per ADU.
    pub gain: f64,
    /// Read noise, electrons rms.
    pub read_noise: f64,
    /// The exposures measured at, seconds.
    pub exposures_s: Vec<f64>,
    /// Points (bins of pixels) on the transfer curve.
    pub points: usize,
    /// Root mean square of the transfer curve's residual, relative to the variances' root mean
    /// square.
    pub residual: f64,
    /// The camera's pixel rows.
    pub camera_rows: usize,
    /// The camera's pixel columns.
    pub camera_cols: usize,
}

impl CameraMeasurement {
    /// The noise model of the camera measured (shot noise on).
    pub fn noise(&self) -> CameraNoise {
        CameraNoise {
            gain: self.gain,
            read_noise: self.read_noise,
            shot_noise: true,
        }
    }

    /// Writes the measurement as JSON (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        file::save(self, path)
    }

    /// Reads a measurement and checks it.
    pub fn load(path: &Path) -> Result<Self> {
        let what = || format!("camera measurement {}", path.display());
        let m: Self = file::load(path, "camera measurement", FORMAT, |m: &Self| {
            (m.format.as_str(), m.version)
        })?;
        let ok = m.black_level.is_finite()
            && m.black_level >= 0.0
            && m.gain.is_finite()
            && m.gain > 0.0
            && m.read_noise.is_finite()
            && m.read_noise >= 0.0;
        if !ok {
            return Err(invalid(
                what(),
                "black_level and read_noise must be finite and ≥ 0, gain finite and > 0",
            ));
        }
        Ok(m)
    }
}

/// Measures the camera of `rig` (see the [module docs](self)) with `display` (SLM levels)
/// shown, two frames at each of `exposures` (seconds, at least two different ones). The rig's
/// exposure is set back to what it was.
///
/// Errors: fewer than two exposures; too few unclipped pixels, or too little spread in their
/// means, for a transfer curve; a rig error.
pub fn photon_transfer(
    rig: &mut dyn Rig,
    display: &[u16],
    exposures: &[f64],
) -> Result<CameraMeasurement> {
    let mut distinct = exposures.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < 2 || distinct.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(invalid(
            "exposures",
            "give at least two different positive exposures",
        ));
    }
    let description = rig.describe()?;
    let (rows, cols) = (description.camera.rows, description.camera.cols);
    let top = description.camera.max_level();
    let was = description.exposure_s;
    rig.display(display)?;
    // (mean, variance) of every unclipped pixel at each exposure, and every pixel's mean at
    // each exposure with whether it was clipped at any.
    let n = rows * cols;
    let mut pixels: Vec<(f64, f64)> = Vec::new();
    let mut means: Vec<Vec<f64>> = Vec::new();
    let mut clipped = vec![false; n];
    let mut measure = || -> Result<()> {
        for &t in &distinct {
            rig.set_exposure(t)?;
            let frames = rig.capture(2)?;
            let [a, b] = frames.as_slice() else {
                return Err(invalid("camera", "the rig did not give two frames"));
            };
            let mut mean = vec![0.0; n];
            for i in 0..n {
                let (x, y) = (a.pixels[i], b.pixels[i]);
                let (fx, fy) = (f64::from(x), f64::from(y));
                mean[i] = (fx + fy) / 2.0;
                if x == 0 || y == 0 || x >= top || y >= top {
                    clipped[i] = true;
                    continue;
                }
                pixels.push((mean[i], (fx - fy).powi(2) / 2.0));
            }
            means.push(mean);
        }
        Ok(())
    };
    let measured = measure();
    rig.set_exposure(was)?;
    measured?;

    // The black level: the intercept of the mean level (of the pixels unclipped, and within
    // the linear range, at every exposure) against the exposure.
    let linear = 0.7 * f64::from(top);
    for mean in &means {
        for (c, &m) in clipped.iter_mut().zip(mean) {
            *c |= m > linear;
        }
    }
    let kept = clipped.iter().filter(|c| !**c).count();
    if kept == 0 {
        return Err(invalid(
            "camera",
            "every pixel was dark or saturated at some exposure (check the exposures)",
        ));
    }
    let levels: Vec<(f64, f64)> = distinct
        .iter()
        .zip(&means)
        .map(|(&t, mean)| {
            let sum: f64 = mean
                .iter()
                .zip(&clipped)
                .filter(|(_, c)| !**c)
                .map(|(m, _)| m)
                .sum();
            (t, sum / kept as f64)
        })
        .collect();
    let (slope, black) = line(&levels, |_| 1.0).ok_or_else(|| {
        invalid(
            "camera",
            "the exposures do not fix a line of the mean level",
        )
    })?;
    if !slope.is_finite() {
        return Err(invalid("camera", "the mean level is not finite"));
    }
    // The transfer curve: the pixels within the linear range binned by mean, at least MIN_BIN
    // a bin.
    let linear = black + 0.7 * (f64::from(top) - black);
    pixels.retain(|p| p.0 <= linear);
    pixels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bins = (pixels.len() / MIN_BIN).min(64);
    if bins < 4 {
        return Err(invalid(
            "camera",
            format!(
                "{} unclipped pixels; at least {} are needed (check the exposures: none \
                 saturated, none dark)",
                pixels.len(),
                4 * MIN_BIN
            ),
        ));
    }
    let per = pixels.len() / bins;
    let points: Vec<(f64, f64)> = pixels
        .chunks(per)
        .filter(|c| c.len() == per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect();
    let spread = points.last().map_or(0.0, |p| p.0) - points.first().map_or(0.0, |p| p.0);
    if spread < 10.0 {
        return Err(invalid(
            "camera",
            format!(
                "the pixels' means span {spread:.1} ADU; a transfer curve needs more (show a \
                 pattern with bright and dim parts, or widen the exposures)"
            ),
        ));
    }
    // Each point's variance is known to about √(2/n) of itself: weighted by 1/σ⁴, with σ² from
    // the line fitted before (weights from the noisy points themselves would favour the points
    // that came out low, and bias the slope).
    let no_line = || invalid("camera", "the transfer curve does not fix a line");
    let (mut inverse_gain, mut intercept) = line(&points, |_| 1.0).ok_or_else(no_line)?;
    for _ in 0..3 {
        let (a, b) = (inverse_gain, intercept);
        (inverse_gain, intercept) =
            line(&points, |x| 1.0 / (a * x + b).max(1e-9).powi(2)).ok_or_else(no_line)?;
    }
    if !(inverse_gain.is_finite() && inverse_gain > 0.0) {
        return Err(invalid(
            "camera",
            format!(
                "the variance does not grow with the signal (slope {inverse_gain:.3e}): not \
                 a camera with shot noise, or too little light"
            ),
        ));
    }
    let gain = 1.0 / inverse_gain;
    let read_variance = (intercept - 1.0 / 12.0 + black * inverse_gain) * gain * gain;
    let rms = |v: &mut dyn Iterator<Item = f64>| {
        let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x * x, n + 1));
        (s / n.max(1) as f64).sqrt()
    };
    let residual = rms(&mut points
        .iter()
        .map(|&(m, v)| v - intercept - inverse_gain * m))
        / rms(&mut points.iter().map(|p| p.1));
    Ok(CameraMeasurement {
        format: FORMAT.to_string(),
        version: 1,
        black_level: black.max(0.0),
        gain,
        read_noise: read_variance.max(0.0).sqrt(),
        exposures_s: distinct,
        points: points.len(),
        residual,
        camera_rows: rows,
        camera_cols: cols,
    })
}

/// Exposures for [`photon_transfer`] with `display` shown: the longest brings the brightest
/// pixels (the 99.9th percentile of a frame at the rig's exposure, above the frame's 1st
/// percentile as a stand-in for the black level) to about 60 % of the converter's range, and
/// the others are 1/2, 1/4 and 1/8 of it. At most 1000 times the rig's exposure and 60 s.
pub fn auto_exposures(rig: &mut dyn Rig, display: &[u16]) -> Result<Vec<f64>> {
    let description = rig.describe()?;
    let t = description.exposure_s;
    if !(t.is_finite() && t > 0.0) {
        return Err(invalid(
            "camera",
            format!("the rig's exposure is {t} s; give --exposures"),
        ));
    }
    rig.display(display)?;
    let frame = rig
        .capture(1)?
        .pop()
        .ok_or_else(|| invalid("camera", "no frame"))?;
    let mut values: Vec<u16> = frame.pixels;
    values.sort_unstable();
    let at = |q: f64| f64::from(values[((values.len() - 1) as f64 * q) as usize]);
    let (low, high) = (at(0.01), at(0.999));
    let top = f64::from(description.camera.max_level());
    let longest = if high > low {
        (t * 0.6 * (top - low) / (high - low)).clamp(t / 8.0, (1000.0 * t).min(60.0))
    } else {
        (1000.0 * t).min(60.0)
    };
    Ok([8.0, 4.0, 2.0, 1.0].iter().map(|f| longest / f).collect())
}

/// The weighted least-squares line `y = slope·x + intercept` through `points` (weights
/// `weight(x)`), as `(slope, intercept)`; `None` when the points do not fix one.
fn line(points: &[(f64, f64)], weight: impl Fn(f64) -> f64) -> Option<(f64, f64)> {
    let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, y) in points {
        let w = weight(x);
        sw += w;
        sx += w * x;
        sy += w * y;
        sxx += w * x * x;
        sxy += w * x * y;
    }
    let s = solve(vec![vec![sxx, sx], vec![sx, sw]], vec![sxy, sy])?;
    Some((s[0], s[1]))
}
