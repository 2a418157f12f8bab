//! Image quality metrics: peak signal-to-noise ratio and structural similarity.
//!
//! Both compare an image `x` with a reference `y` of the same shape (row-major `[rows, cols]`)
//! whose values span `range` (1 for images scaled to `[0, 1]`). They are what holography and
//! imaging papers report, computed as the papers define them, so numbers can be compared:
//!
//! * [`psnr`] = `10·log10(range² / MSE)` decibels; `+∞` for identical images.
//! * [`ssim`] = the mean structural similarity of Wang, Bovik, Sheikh & Simoncelli, IEEE Trans.
//!   Image Process. 13, 600 (2004): local means, variances and covariance under an 11×11
//!   Gaussian window of σ = 1.5 pixels (normalised to sum 1), `C₁ = (0.01·range)²`,
//!   `C₂ = (0.03·range)²`, averaged over every window that lies wholly inside the image (the
//!   interior that scikit-image's `structural_similarity(..., gaussian_weights=True,
//!   use_sample_covariance=False)` averages over). 1 for identical images.

use crate::error::{OpticsError, Result, invalid};

/// Side of the SSIM window, pixels.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM window's Gaussian, pixels.
pub const SSIM_SIGMA: f64 = 1.5;

fn check(x: &[f64], y: &[f64], rows: usize, cols: usize, range: f64) -> Result<()> {
    if x.len() != rows * cols || y.len() != rows * cols {
        return Err(OpticsError::Shape(format!(
            "images of {} and {} values do not have the shape {rows}×{cols}",
            x.len(),
            y.len()
        )));
    }
    if !(range.is_finite() && range > 0.0) {
        return Err(invalid(
            "range",
            format!("{range}; give the reference's value span, e.g. 1"),
        ));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(invalid("image", "holds NaN or infinite values"));
    }
    Ok(())
}

/// Peak signal-to-noise ratio of `x` against `y`, decibels (`+∞` when they are equal).
pub fn psnr(x: &[f64], y: &[f64], rows: usize, cols: usize, range: f64) -> Result<f64> {
    check(x, y, rows, cols, range)?;
    let mse = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / x.len() as f64;
    Ok(10.0 * (range * range / mse).log10())
}

/// Mean structural similarity of `x` and `y` (see the module docs). Images smaller than the
/// 11×11 window are refused.
pub fn ssim(x: &[f64], y: &[f64], rows: usize, cols: usize, range: f64) -> Result<f64> {
    check(x, y, rows, cols, range)?;
    let w = SSIM_WINDOW;
    if rows < w || cols < w {
        return Err(invalid(
            "image",
            format!("{rows}×{cols} is smaller than the {w}×{w} SSIM window"),
        ));
    }
    let half = (w / 2) as f64;
    let g: Vec<f64> = (0..w)
        .map(|i| (-((i as f64 - half).powi(2)) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp())
        .collect();
    let norm: f64 = g.iter().sum();
    let g: Vec<f64> = g.iter().map(|v| v / norm).collect();
    // Separable filtering of the five moments, 'valid' part only: columns first.
    let (oc, or) = (cols - w + 1, rows - w + 1);
    let moments = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        let mut tmp = vec![0.0; rows * oc];
        for r in 0..rows {
            for c in 0..oc {
                tmp[r * oc + c] = (0..w).map(|k| g[k] * f(r * cols + c + k)).sum();
            }
        }
        let mut out = vec![0.0; or * oc];
        for r in 0..or {
            for c in 0..oc {
                out[r * oc + c] = (0..w).map(|k| g[k] * tmp[(r + k) * oc + c]).sum();
            }
        }
        out
    };
    let mx = moments(&|i| x[i]);
    let my = moments(&|i| y[i]);
    let mxx = moments(&|i| x[i] * x[i]);
    let myy = moments(&|i| y[i] * y[i]);
    let mxy = moments(&|i| x[i] * y[i]);
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let sum: f64 = (0..or * oc)
        .map(|i| {
            let (ux, uy) = (mx[i], my[i]);
            let (vx, vy, cxy) = (mxx[i] - ux * ux, myy[i] - uy * uy, mxy[i] - ux * uy);
            ((2.0 * ux * uy + c1) * (2.0 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
        .sum();
    Ok(sum / (or * oc) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut r = Rng::new(seed);
        (0..n).map(|_| r.uniform()).collect()
    }

    #[test]
    fn psnr_of_a_known_error() {
        let y = vec![0.5; 400];
        // A constant error of 0.1: MSE 0.01, PSNR 20 dB for range 1, 40 dB for range 10.
        let x: Vec<f64> = y.iter().map(|v| v + 0.1).collect();
        assert!((psnr(&x, &y, 20, 20, 1.0).unwrap() - 20.0).abs() < 1e-9);
        assert!((psnr(&x, &y, 20, 20, 10.0).unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(psnr(&y, &y, 20, 20, 1.0).unwrap(), f64::INFINITY);
        assert!(psnr(&x, &y, 20, 21, 1.0).is_err());
        assert!(psnr(&x, &y, 20, 20, 0.0).is_err());
    }

    #[test]
    fn ssim_is_one_for_equal_images_and_symmetric() {
        let (r, c) = (24, 30);
        let y = noise(r * c, 1);
        let x: Vec<f64> = y
            .iter()
            .zip(noise(r * c, 2))
            .map(|(a, b)| 0.8 * a + 0.2 * b)
            .collect();
        assert!((ssim(&y, &y, r, c, 1.0).unwrap() - 1.0).abs() < 1e-12);
        let s = ssim(&x, &y, r, c, 1.0).unwrap();
        assert!((s - ssim(&y, &x, r, c, 1.0).unwrap()).abs() < 1e-12);
        assert!(s > 0.5 && s < 0.99, "{s}");
        // Unrelated noise has almost no structure in common.
        assert!(ssim(&noise(r * c, 3), &y, r, c, 1.0).unwrap().abs() < 0.1);
        assert!(ssim(&y[..100], &y[..100], 10, 10, 1.0).is_err());
    }

    #[test]
    fn ssim_of_constant_images_is_the_luminance_term() {
        // Constant images: every variance is 0, so SSIM = (2ab + C₁)/(a² + b² + C₁) exactly.
        let (a, b) = (0.3, 0.6);
        let c1 = 1e-4;
        let expected = (2.0 * a * b + c1) / (a * a + b * b + c1);
        let s = ssim(&vec![a; 15 * 15], &vec![b; 15 * 15], 15, 15, 1.0).unwrap();
        assert!((s - expected).abs() < 1e-12, "{s} vs {expected}");
    }

    #[test]
    fn ssim_of_a_contrast_change_matches_the_closed_form() {
        // x = m + k(y − m) with y a checkerboard of mean m: equal means, σx = kσy, cov = kσy²,
        // so every window gives (2kσ² + C₂)/((1 + k²)σ² + C₂) with σ² its own variance; with
        // C₂ ≪ σ² this is 2k/(1 + k²).
        let (r, c) = (33, 33);
        let y: Vec<f64> = (0..r * c)
            .map(|i| if (i / c + i % c) % 2 == 0 { 1.0 } else { 0.0 })
            .collect();
        let k = 0.5;
        let x: Vec<f64> = y.iter().map(|v| 0.5 + k * (v - 0.5)).collect();
        let s = ssim(&x, &y, r, c, 1.0).unwrap();
        assert!((s - 2.0 * k / (1.0 + k * k)).abs() < 5e-3, "{s}");
    }
}
