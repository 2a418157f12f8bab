//! Holographic autofocus: the distance of an in-line hologram from its own back-propagations.
//!
//! The hologram's amplitude `√I` is propagated back over trial distances `z`; where `z` is the
//! object's distance the field is the object, whose edges are sharp, and elsewhere they are
//! blurred by defocus and the twin image. The **Tamura coefficient of the gradient** (ToG),
//! `√(σ/μ)` of `|∇U|`, measures that sparsity of edges: it peaks at focus for phase and
//! amplitude objects alike (Zhang, Wang, Wu, Rivenson & Ozcan, "Edge sparsity criterion for
//! robust holographic autofocusing", Opt. Lett. 42, 3824 (2017)), where the amplitude's own
//! variance has its extremum of opposite sign for the two.
//!
//! Only the hologram's **contrast** `√I − ⟨√I⟩` is propagated: the illumination's plane wave
//! propagates to itself and has no gradient, so it cannot change the metric — and left in, it
//! would end at the padded grid's edge, whose diffraction reaches the camera at the distances
//! scanned and swamps the object's. The contrast is tapered to zero over the camera's outer
//! eighth (a cosine, so the hologram's cut fringes do not diffract as a hard edge), and the
//! metric is taken over the camera inside that border.
//!
//! With several holograms at known spacing (a stage's steps), every hologram is propagated
//! back by its own trial distance and their metrics averaged: a peak the object makes is
//! there in each, at one shift, where the spurious peaks of a smooth object fall at
//! different shifts and fade.
//!
//! [`Inline::autofocus`] scans the range on an even grid of trial distances and refines the
//! best by golden-section search between its neighbours: `steps + ~15` back-propagations of
//! each hologram. The distance it returns starts a reconstruction ([`Inline::set_distances`]),
//! which the joint distance fit ([`super::ReconstructOptions::fit_distance`]) may then refine.
//!
//! It needs an object with edges (cells, beads, fibres, a resolution target) whose diffraction
//! the camera holds: a smooth object has no focus to find, and an object whose fringes spread
//! beyond the camera (`λz/d` against its width, for features of size `d`) leaves too little of
//! itself in the hologram.

use num_complex::Complex;

use super::{Inline, propagation};
use crate::error::{Result, invalid};

type C64 = Complex<f64>;

/// The smallest camera side autofocus accepts, pixels (its border is an eighth of it).
const MIN_SIDE: usize = 16;

/// The result of [`Inline::autofocus`].
#[derive(Debug, Clone, PartialEq)]
pub struct Focus {
    /// The distance where the focus metric peaks, metres.
    pub distance: f64,
    /// The Tamura coefficient of the gradient there.
    pub metric: f64,
    /// The even scan, `(distance in metres, metric)`, before the refinement.
    pub scan: Vec<(f64, f64)>,
}

impl Focus {
    /// A range of trial distances as [`Inline::autofocus`] takes it, `(low, high)`: two
    /// different finite distances of one sign, in either order.
    pub fn check_range(range: (f64, f64)) -> Result<(f64, f64)> {
        let (lo, hi) = (range.0.min(range.1), range.0.max(range.1));
        if !(lo.is_finite() && hi.is_finite()) || lo == hi {
            return Err(invalid(
                "autofocus range",
                format!(
                    "{} … {} m: give two different distances (e.g. 0.5mm:2mm)",
                    range.0, range.1
                ),
            ));
        }
        if lo <= 0.0 && hi >= 0.0 {
            return Err(invalid(
                "autofocus range",
                format!(
                    "{} … {} m is spanning 0: give distances of one sign (e.g. 0.5mm:2mm)",
                    range.0, range.1
                ),
            ));
        }
        Ok((lo, hi))
    }
}

impl Inline {
    /// The distance in `range` (metres; both ends of one sign, not spanning 0) of the first
    /// hologram (`intensity` as for [`Inline::reconstruct`]) at which the holograms
    /// back-propagate to the sharpest object: the peak of the Tamura coefficient of the
    /// gradient, averaged over the holograms (each at its distance beyond the first's, as
    /// [`Inline::distances`] space them), over `steps` (3 to 10 000) even trial distances,
    /// refined between the peak's neighbours to 10⁻³ of the step. The step must be finer than
    /// the peak (about `d²/λ` for the smallest features `d`): 41 steps over a few millimetres
    /// suit micron-sized features. `progress(done, steps)` after each trial of the scan.
    ///
    /// Cost: one band-limited angular-spectrum propagation of the model's grid per trial and
    /// hologram.
    pub fn autofocus(
        &self,
        intensity: &[f64],
        range: (f64, f64),
        steps: usize,
        progress: &dyn Fn(usize, usize),
    ) -> Result<Focus> {
        self.check_holograms(intensity)?;
        let (lo, hi) = Focus::check_range(range)?;
        if !(3..=10_000).contains(&steps) {
            return Err(invalid(
                "autofocus steps",
                format!("{steps}: scan 3 to 10000 distances (e.g. 41)"),
            ));
        }
        let planes = self.distances.len();
        let (cy, cx) = (self.camera.ny, self.camera.nx);
        if cy.min(cx) < MIN_SIDE {
            return Err(invalid(
                "hologram",
                format!("{cx}×{cy} pixels: autofocus needs at least {MIN_SIDE} a side"),
            ));
        }
        let m = cx * cy;
        let border = cy.min(cx) / 8;
        let taper = |k: usize, n: usize| -> f64 {
            let d = k.min(n - 1 - k);
            if d >= border {
                1.0
            } else {
                0.5 - 0.5 * (std::f64::consts::PI * (d as f64 + 0.5) / border as f64).cos()
            }
        };
        // each hologram's contrast, and its distance beyond the first's
        let starts: Vec<(f64, Vec<C64>)> = (0..planes)
            .map(|h| {
                let amplitude: Vec<f64> = intensity[h * m..(h + 1) * m]
                    .iter()
                    .map(|v| v.max(0.0).sqrt())
                    .collect();
                let mean = amplitude.iter().sum::<f64>() / m as f64;
                let mut start = vec![C64::default(); self.grid.nx * self.grid.ny];
                for (k, (i, a)) in self.window().zip(&amplitude).enumerate() {
                    let w = taper(k / cx, cy) * taper(k % cx, cx);
                    start[i] = C64::new(w * (a - mean), 0.0);
                }
                (self.distances[h] - self.distances[0], start)
            })
            .collect();
        let step = (hi - lo) / (steps - 1) as f64;
        let mut field = starts[0].1.clone();
        let mut metric = |z: f64| -> Result<f64> {
            let mut total = 0.0;
            for (offset, start) in &starts {
                field.copy_from_slice(start);
                self.planner
                    .plan(&self.grid, self.wave, &propagation(-(z + offset)))?
                    .propagate_in_place(&mut field)?;
                total += self.tamura_of_gradient(&field, border);
            }
            Ok(total / starts.len() as f64)
        };
        let mut scan = Vec::with_capacity(steps);
        for k in 0..steps {
            let z = lo + k as f64 * step;
            scan.push((z, metric(z)?));
            progress(k + 1, steps);
        }
        let best = (0..steps)
            .max_by(|&a, &b| scan[a].1.total_cmp(&scan[b].1))
            .unwrap_or(0);
        // golden-section search between the best sample's neighbours
        let (mut a, mut b) = (
            scan[best.saturating_sub(1)].0,
            scan[(best + 1).min(steps - 1)].0,
        );
        let r = 0.5 * (5f64.sqrt() - 1.0);
        let (mut c, mut d) = (b - r * (b - a), a + r * (b - a));
        let (mut fc, mut fd) = (metric(c)?, metric(d)?);
        while b - a > 1e-3 * step {
            if fc > fd {
                (b, d, fd) = (d, c, fc);
                c = b - r * (b - a);
                fc = metric(c)?;
            } else {
                (a, c, fc) = (c, d, fd);
                d = a + r * (b - a);
                fd = metric(d)?;
            }
        }
        let refined = if fc > fd { (c, fc) } else { (d, fd) };
        let (distance, metric) = if refined.1 >= scan[best].1 {
            refined
        } else {
            scan[best]
        };
        Ok(Focus {
            distance,
            metric,
            scan,
        })
    }

    /// `√(σ/μ)` of the gradient magnitude `|∇U|` (forward differences) over the camera
    /// inside a border of `border` pixels; 0 for a field without gradient.
    fn tamura_of_gradient(&self, field: &[C64], border: usize) -> f64 {
        let (nx, (my, mx)) = (self.grid.nx, self.margin);
        let (cy, cx) = (self.camera.ny, self.camera.nx);
        let (mut sum, mut sum2, mut count) = (0.0, 0.0, 0.0);
        for r in border..cy - border - 1 {
            let row = (r + my) * nx + mx;
            for k in row + border..row + cx - border - 1 {
                let g = ((field[k + 1] - field[k]).norm_sqr()
                    + (field[k + nx] - field[k]).norm_sqr())
                .sqrt();
                sum += g;
                sum2 += g * g;
                count += 1.0;
            }
        }
        if sum <= 0.0 {
            return 0.0;
        }
        let mean = sum / count;
        let sigma = (sum2 / count - mean * mean).max(0.0).sqrt();
        (sigma / mean).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::setup;
    use super::*;
    use crate::rng::Rng;

    /// Beads (2–5 px radius, ~1 per 1100 px²) of phase 1 rad or, when `absorbing`, of
    /// amplitude 0.5, on clear glass over `model`'s grid.
    fn beads(model: &Inline, absorbing: bool, seed: u64) -> Vec<C64> {
        let g = model.grid();
        let mut rng = Rng::new(seed);
        let count = g.nx * g.ny / 1100;
        let beads: Vec<(f64, f64, f64)> = (0..count)
            .map(|_| {
                (
                    rng.range(8.0, g.nx as f64 - 8.0),
                    rng.range(8.0, g.ny as f64 - 8.0),
                    rng.range(2.0, 5.0),
                )
            })
            .collect();
        (0..g.nx * g.ny)
            .map(|k| {
                let (x, y) = ((k % g.nx) as f64, (k / g.nx) as f64);
                if !beads.iter().any(|(cx, cy, r)| (x - cx).hypot(y - cy) < *r) {
                    C64::new(1.0, 0.0)
                } else if absorbing {
                    C64::new(0.5, 0.0)
                } else {
                    C64::from_polar(1.0, 1.0)
                }
            })
            .collect()
    }

    #[test]
    fn autofocus_finds_the_distance_of_phase_and_amplitude_objects() {
        // 128² pixels of 2 µm, 532 nm; the truth off the scan's grid (step 40 µm)
        let truth = 0.737e-3;
        let model = setup(128, 16, &[truth]);
        for (absorbing, photons) in [(false, None), (true, None), (false, Some(300.0))] {
            let mut holo = model.hologram(&beads(&model, absorbing, 5)).unwrap();
            if let Some(n) = photons {
                let mut rng = Rng::new(3);
                for v in holo.iter_mut() {
                    *v = rng.poisson(*v * n) as f64 / n;
                }
            }
            let calls = std::cell::Cell::new(0);
            let focus = model
                .autofocus(&holo, (0.2e-3, 1.8e-3), 41, &|done, total| {
                    assert_eq!((done, total), (calls.get() + 1, 41));
                    calls.set(done);
                })
                .unwrap();
            let err = (focus.distance - truth).abs();
            assert!(
                err < 2e-6,
                "absorbing {absorbing}, photons {photons:?}: {} mm",
                focus.distance * 1e3
            );
            assert_eq!((calls.get(), focus.scan.len()), (41, 41));
            assert!(focus.scan.iter().all(|(_, m)| *m <= focus.metric));
            // the scan's peak is the focus's sample, standing clear of the far field
            let far = focus
                .scan
                .iter()
                .filter(|(z, _)| (z - truth).abs() > 0.3e-3)
                .map(|p| p.1)
                .fold(0.0, f64::max);
            assert!(focus.metric > far * 1.05, "{} against {far}", focus.metric);
        }
    }

    #[test]
    fn autofocus_of_two_heights_and_behind_the_camera() {
        // two heights 0.4 mm apart, the model told 0.1 mm too far: both holograms move together
        // and the first lands on its distance
        let mut model = setup(128, 16, &[0.5e-3, 0.9e-3]);
        let holo = model.hologram(&beads(&model, false, 8)).unwrap();
        model.set_distances(&[0.6e-3, 1.0e-3]).unwrap();
        let none = &|_: usize, _: usize| {};
        let focus = model.autofocus(&holo, (0.2e-3, 0.9e-3), 31, none).unwrap();
        assert!((focus.distance - 0.5e-3).abs() < 5e-6, "{}", focus.distance);
        // the second hologram alone has its own focus
        let second = setup(128, 16, &[0.9e-3]);
        let alone = second
            .autofocus(&holo[128 * 128..], (0.6e-3, 1.2e-3), 31, none)
            .unwrap();
        assert!((alone.distance - 0.9e-3).abs() < 2e-6, "{}", alone.distance);
        // a hologram propagated the other way (a virtual object behind the camera) is found
        // at the negative distance
        let model = setup(128, 16, &[-0.6e-3]);
        let holo = model.hologram(&beads(&model, true, 8)).unwrap();
        let focus = model.autofocus(&holo, (-1e-3, -0.2e-3), 41, none).unwrap();
        assert!((focus.distance + 0.6e-3).abs() < 5e-6, "{}", focus.distance);
    }

    #[test]
    fn a_flat_hologram_has_no_gradient_and_no_focus_metric() {
        let model = setup(32, 4, &[1e-3]);
        let focus = model
            .autofocus(&vec![1.0; 1024], (0.5e-3, 1.5e-3), 5, &|_, _| {})
            .unwrap();
        assert!(focus.scan.iter().all(|(_, m)| *m == 0.0));
    }

    #[test]
    fn bad_autofocus_requests_are_refused() {
        let model = setup(16, 4, &[5e-3]);
        let holo = vec![1.0; 256];
        let none = &|_: usize, _: usize| {};
        let text = |r: Result<Focus>| r.unwrap_err().to_string();
        assert!(text(model.autofocus(&holo, (-1e-3, 1e-3), 11, none)).contains("spanning 0"));
        assert!(text(model.autofocus(&holo, (0.0, 1e-3), 11, none)).contains("spanning 0"));
        assert!(text(model.autofocus(&holo, (1e-3, 1e-3), 11, none)).contains("different"));
        assert!(text(model.autofocus(&holo, (1e-3, f64::NAN), 11, none)).contains("different"));
        assert!(text(model.autofocus(&holo, (1e-3, 2e-3), 2, none)).contains("3 to 10000"));
        assert!(text(model.autofocus(&holo[..10], (1e-3, 2e-3), 5, none)).contains("hologram"));
        let small = setup(12, 2, &[1e-3]);
        assert!(text(small.autofocus(&[1.0; 144], (1e-3, 2e-3), 5, none)).contains("at least"));
        // a range given high to low is the same range
        assert!(model.autofocus(&holo, (2e-3, 1e-3), 5, none).is_ok());
    }
}
