//! The camera model: photons to electrons to ADU, with the noise and the limits of a real
//! sensor (EMVA 1288's linear model).
//!
//! For a pixel receiving `p` photons in an exposure `t`:
//! `e = Poisson(η·p + d·t)` electrons (quantum efficiency `η`, dark current `d`), clipped at
//! the full well; then `value = round((e + σ_r·N(0,1)) / K) + black`, clipped to
//! `0..2ᵇ − 1` (read noise `σ_r`, gain `K` electrons per ADU). Without shot noise `e` is its
//! expectation `η·p + d·t`.

use photonflow_optics::rng::Rng;

use crate::config::Camera;
use crate::rig::max_level;

impl Camera {
    /// One frame of a pixel grid receiving `photons[i]` expected photons per pixel during the
    /// exposure, noise drawn from `rng`.
    pub fn expose(&self, photons: impl Iterator<Item = f64>, rng: &mut Rng) -> Vec<u16> {
        let top = f64::from(max_level(self.bits));
        let dark = self.dark_current * self.exposure;
        let (qe, well, k) = (self.quantum_efficiency, self.full_well, self.gain());
        let black = f64::from(self.black_level);
        // Read noise comes in pairs from one Box–Muller transform; the second waits here.
        let mut spare: Option<f64> = None;
        photons
            .map(|p| {
                let mean = qe * p.max(0.0) + dark;
                let electrons = if self.shot_noise {
                    rng.poisson(mean) as f64
                } else {
                    mean
                }
                .min(well);
                let read = if self.read_noise > 0.0 {
                    let n = spare.take().unwrap_or_else(|| {
                        let (a, b) = rng.normal_pair();
                        spare = Some(b);
                        a
                    });
                    self.read_noise * n
                } else {
                    0.0
                };
                ((electrons + read) / k + black).round().clamp(0.0, top) as u16
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(v: &[u16]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / (n - 1.0);
        (m, var)
    }

    #[test]
    fn mean_and_variance_follow_the_linear_camera_model() {
        // Photon transfer: mean = η·p/K + black, variance = (η·p + d·t + σ_r²)/K² + 1/12 (the
        // converter's rounding). 100 000 pixels: the mean within 5 standard errors.
        let camera = Camera {
            bits: 16,
            full_well: 1e6,
            quantum_efficiency: 0.6,
            read_noise: 3.0,
            dark_current: 200.0,
            black_level: 500,
            exposure: 0.05,
            gain: Some(2.0),
            shot_noise: true,
            ..Camera::default()
        };
        let p = 5000.0;
        let n = 100_000;
        let frame = camera.expose(std::iter::repeat_n(p, n), &mut Rng::new(5));
        let (m, var) = stats(&frame);
        let electrons = 0.6 * p + 200.0 * 0.05;
        let mean = electrons / 2.0 + 500.0;
        let variance = (electrons + 9.0) / 4.0 + 1.0 / 12.0;
        assert!(
            (m - mean).abs() < 5.0 * (variance / n as f64).sqrt(),
            "{m} vs {mean}"
        );
        assert!((var / variance - 1.0).abs() < 0.03, "{var} vs {variance}");
        // Noiseless: exactly the expectation, rounded.
        let quiet = Camera {
            read_noise: 0.0,
            shot_noise: false,
            ..camera.clone()
        };
        let frame = quiet.expose([p, 0.0, -3.0].into_iter(), &mut Rng::new(5));
        assert_eq!(
            frame,
            vec![(electrons / 2.0 + 500.0).round() as u16, 505, 505]
        );
    }

    #[test]
    fn saturation_at_the_well_and_at_the_converter() {
        let camera = Camera {
            bits: 12,
            full_well: 10_000.0,
            black_level: 100,
            read_noise: 0.0,
            shot_noise: false,
            dark_current: 0.0,
            quantum_efficiency: 1.0,
            ..Camera::default()
        };
        // Default gain: full well over 4096 levels; the well clips first at 4096 − 1 + 100 → the
        // converter's 4095.
        let frame = camera.expose([1e9, 10_000.0, 5_000.0, 0.0].into_iter(), &mut Rng::new(1));
        assert_eq!(frame[0], 4095);
        assert_eq!(frame[1], 4095);
        assert_eq!(frame[2], (5_000.0 / camera.gain() + 100.0).round() as u16);
        assert_eq!(frame[3], 100);
    }
}
