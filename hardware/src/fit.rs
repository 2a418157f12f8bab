//! Fitting a model of the light to camera frames: one gain and offset, and
//! Levenberg–Marquardt over a model's parameters.
//!
//! A camera's values are the light times an unknown gain (photons per unit of the model's
//! `|u|²`, quantum efficiency, electrons per ADU, losses) plus an unknown offset (stray light, a
//! black level known only roughly). Both enter linearly, so every fit here takes them as the
//! best ones for the model image at hand ([`Measured::linear`]) and fits the model's own
//! parameters by [`levenberg_marquardt`]. The camera calibration ([`crate::calibrate()`]) and the
//! identification of a bench's layers ([`crate::identify()`]) both use it.

use crate::rig::Frame;
pub(crate) use photonflow_optics::linalg::solve;

/// The mean of each display's frames, `black` (ADU) subtracted, and the pixels that stayed
/// below `top` (saturation) in every frame, as indices into all the means one display after
/// another: a saturated pixel does not measure the light, so fits leave it out.
pub(crate) fn mean_frames(
    captured: &[Vec<Frame>],
    black: f64,
    top: u16,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut keep = Vec::new();
    let mut offset = 0;
    let means = captured
        .iter()
        .map(|fs| {
            let n = fs.first().map_or(0, |f| f.pixels.len());
            let mut mean = vec![0.0f64; n];
            for f in fs {
                for (m, &v) in mean.iter_mut().zip(&f.pixels) {
                    *m += f64::from(v) - black;
                }
            }
            mean.iter_mut().for_each(|m| *m /= fs.len().max(1) as f64);
            keep.extend(
                (0..n)
                    .filter(|&i| fs.iter().all(|f| f.pixels[i] < top))
                    .map(|i| offset + i),
            );
            offset += n;
            mean
        })
        .collect();
    (means, keep)
}

/// Camera values to fit: the mean frames at the pixels kept (unsaturated ones), one frame
/// after another.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    values: Vec<f64>,
    /// Their sum (every fit's linear part needs it).
    sum: f64,
    /// Root mean square of the values.
    scale: f64,
}

/// The best gain and offset of a model image, and the sum of squares they leave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Linear {
    pub sse: f64,
    pub gain: f64,
    pub offset: f64,
}

/// A finished fit.
#[derive(Debug, Clone)]
pub(crate) struct Fit {
    /// The parameters found.
    pub params: Vec<f64>,
    /// Their gain, offset and sum of squares.
    pub linear: Linear,
    /// `JᵀJ` at the parameters found, over the parameters then the gain and the offset (the
    /// inverse times the residual variance is their covariance).
    pub jtj: Vec<Vec<f64>>,
}

impl Measured {
    /// The values to fit.
    pub fn new(values: Vec<f64>) -> Self {
        let n = values.len().max(1) as f64;
        let scale = (values.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
        let sum = values.iter().sum();
        Self { values, sum, scale }
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The root mean square the fit leaves, relative to the values' root mean square
    /// (`NaN` when the values are all 0).
    pub fn relative(&self, sse: f64) -> f64 {
        (sse / self.values.len().max(1) as f64).sqrt() / self.scale
    }

    /// The gain and offset that make `model` (one value per measured value) best match the
    /// values in the least-squares sense, and the sum of squares left.
    pub fn linear(&self, model: &[f64]) -> Linear {
        let n = self.values.len() as f64;
        let (sm, sf) = (model.iter().sum::<f64>(), self.sum);
        let smm = model.iter().map(|v| v * v).sum::<f64>();
        let smf = model
            .iter()
            .zip(&self.values)
            .map(|(a, b)| a * b)
            .sum::<f64>();
        let det = n * smm - sm * sm;
        let (gain, offset) = if det.abs() > 0.0 {
            ((n * smf - sm * sf) / det, (smm * sf - sm * smf) / det)
        } else {
            (0.0, sf / n.max(1.0))
        };
        let sse = model
            .iter()
            .zip(&self.values)
            .map(|(a, b)| (b - gain * a - offset).powi(2))
            .sum::<f64>();
        Linear { sse, gain, offset }
    }
}

/// Levenberg–Marquardt: the parameters near `start` whose model image `model(p)` (one value per
/// measured value; `None` where the parameters make no model) best matches `measured` with its
/// best gain and offset. The Jacobian is taken by central differences of `steps` (one per
/// parameter), with the gain and offset as two more parameters; at most `iterations` steps,
/// ending sooner when a step no longer lowers the sum of squares by a part in 10¹². Returns
/// `None` when `model(start)` is `None`.
pub(crate) fn levenberg_marquardt(
    measured: &Measured,
    start: &[f64],
    steps: &[f64],
    iterations: usize,
    mut model: impl FnMut(&[f64]) -> Option<Vec<f64>>,
) -> Option<Fit> {
    let n = start.len() + 2;
    let mut p = start.to_vec();
    let mut current = model(&p)?;
    let mut linear = measured.linear(&current);
    let mut lambda = 1e-3;
    let mut jtj = vec![vec![0.0; n]; n];
    for iteration in 0..=iterations {
        // Jacobian columns: ∂(g·m + o)/∂pₖ by central differences, then m and 1.
        let mut columns: Vec<Vec<f64>> = Vec::with_capacity(n);
        for (k, h) in steps.iter().enumerate() {
            let (mut up, mut down) = (p.clone(), p.clone());
            up[k] += h;
            down[k] -= h;
            let (Some(a), Some(b)) = (model(&up), model(&down)) else {
                return Some(Fit {
                    params: p,
                    linear,
                    jtj,
                });
            };
            columns.push(
                a.iter()
                    .zip(&b)
                    .map(|(a, b)| linear.gain * (a - b) / (2.0 * h))
                    .collect(),
            );
        }
        columns.push(current.clone());
        columns.push(vec![1.0; current.len()]);
        let residual: Vec<f64> = measured
            .values
            .iter()
            .zip(&current)
            .map(|(f, m)| f - linear.gain * m - linear.offset)
            .collect();
        let mut jtr = vec![0.0f64; n];
        for a in 0..n {
            jtr[a] = columns[a].iter().zip(&residual).map(|(j, r)| j * r).sum();
            for b in a..n {
                let v: f64 = columns[a].iter().zip(&columns[b]).map(|(x, y)| x * y).sum();
                jtj[a][b] = v;
                jtj[b][a] = v;
            }
        }
        if iteration == iterations {
            break;
        }
        let mut improved = false;
        for _ in 0..8 {
            let mut m = jtj.clone();
            for (a, row) in m.iter_mut().enumerate() {
                row[a] += lambda * jtj[a][a].max(1e-300);
            }
            let Some(delta) = solve(m, jtr.clone()) else {
                break;
            };
            let trial: Vec<f64> = p.iter().zip(&delta).map(|(t, d)| t + d).collect();
            if let Some(next) = model(&trial) {
                let l = measured.linear(&next);
                if l.sse < linear.sse {
                    improved = (linear.sse - l.sse) > 1e-12 * linear.sse;
                    (p, current, linear) = (trial, next, l);
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
    Some(Fit {
        params: p,
        linear,
        jtj,
    })
}

/// The diagonal of `m`'s inverse (`None` if `m` is singular): the variances of a least-squares
/// fit's parameters, per unit of residual variance, when `m` is its `JᵀJ`.
pub(crate) fn inverse_diagonal(m: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = m.len();
    (0..n)
        .map(|k| {
            let e: Vec<f64> = (0..n).map(|i| if i == k { 1.0 } else { 0.0 }).collect();
            solve(m.to_vec(), e).map(|x| x[k])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use photonflow_optics::rng::Rng;

    #[test]
    fn a_gaussian_spot_is_found_with_its_gain_offset_and_errors() {
        // A spot at (x0, σ) with gain 3 and offset 0.5, plus noise of σₙ = 0.01: the fit finds
        // it from a start 1.5 units away, and the covariance's standard errors match the
        // spread of fits over noise draws.
        let xs: Vec<f64> = (0..200).map(|i| i as f64 * 0.1 - 10.0).collect();
        let spot = |p: &[f64]| -> Option<Vec<f64>> {
            (p[1] > 0.0).then(|| {
                xs.iter()
                    .map(|x| (-0.5 * ((x - p[0]) / p[1]).powi(2)).exp())
                    .collect()
            })
        };
        let truth = [1.3, 0.8];
        let clean = spot(&truth).unwrap();
        let mut rng = Rng::new(11);
        let mut found = Vec::new();
        let mut predicted = 0.0;
        for _ in 0..40 {
            let values = clean
                .iter()
                .map(|v| 3.0 * v + 0.5 + 0.01 * rng.normal())
                .collect();
            let measured = Measured::new(values);
            let fit =
                levenberg_marquardt(&measured, &[-0.2, 1.0], &[1e-4, 1e-4], 50, spot).unwrap();
            assert!((fit.linear.gain - 3.0).abs() < 0.01, "{:?}", fit.linear);
            assert!((fit.linear.offset - 0.5).abs() < 0.01, "{:?}", fit.linear);
            let dof = (measured.len() - 4) as f64;
            let var = fit.linear.sse / dof;
            predicted = (inverse_diagonal(&fit.jtj).unwrap()[0] * var).sqrt();
            found.push(fit.params[0]);
        }
        let mean = found.iter().sum::<f64>() / found.len() as f64;
        let spread = (found.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
            / (found.len() - 1) as f64)
            .sqrt();
        assert!((mean - truth[0]).abs() < 3.0 * spread, "{mean} ± {spread}");
        assert!(
            (spread / predicted - 1.0).abs() < 0.35,
            "spread {spread:e}, predicted {predicted:e}"
        );
    }
}
