//! Monte Carlo over fabricated chips: the same mesh on many chips drawn from one
//! [`Imperfections`] model, and how their fidelity, transmission and error spread (with and
//! without the correction of their splitter errors).
//!
//! A chip's random imperfections (`splitter_error`, `phase_error`, `loss_error`) are static
//! draws fixed by its `seed`; trial `t` is the chip of seed `seed + t`, so trial 0 is the chip a single
//! simulation with the same file gives, and every trial can be reproduced alone. The trials
//! run in parallel (rayon) and are reported in seed order, whatever the threads.
//!
//! Each trial costs one chip matrix (`O(N³)`, blocks of columns in parallel), and with
//! correction the correction too ([`Chip::reprogram`]: `O(N²)` for the local step, `O(N³)`
//! per iteration of the global one on meshes of up to
//! [`MAX_GLOBAL_MODES`](super::chip::MAX_GLOBAL_MODES) modes).

use rayon::prelude::*;
use serde::Serialize;

use super::chip::{Chip, Imperfections, compare};
use super::decompose::Mesh;
use super::matrix::CMatrix;
use super::svd::SvdInfo;
use crate::error::{CompileError, Result};

/// The most chips one run takes: every chip is kept for the report (at 100 000, a few MB, and
/// about a minute of 64-mode chips on one thread).
pub const MAX_TRIALS: usize = 100_000;

/// One chip of a Monte Carlo run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trial {
    /// The chip's seed.
    pub seed: u64,
    /// Fidelity of the chip as programmed ([`compare`]).
    pub fidelity: f64,
    /// Its normalised Frobenius error.
    pub error: f64,
    /// Its fidelity normalised for a common loss ([`Comparison`](super::chip::Comparison)).
    pub fidelity_normalized: f64,
    /// Its mean power transmission relative to the reference.
    pub transmission: f64,
    /// With correction: the fidelity after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fidelity_corrected: Option<f64>,
    /// With correction: the error after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_corrected: Option<f64>,
}

/// How one metric spreads over the trials. Percentiles interpolate linearly between the
/// sorted values (NumPy's default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`n − 1`; 0 for one trial).
    pub std: f64,
    /// Smallest.
    pub min: f64,
    /// 5th percentile.
    pub p5: f64,
    /// Median.
    pub median: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (at least one, all finite).
    pub fn of(values: &[f64]) -> Self {
        assert!(!values.is_empty(), "a spread of no values");
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Self {
            mean,
            std: var.sqrt(),
            min: sorted[0],
            p5: percentile(&sorted, 5.0),
            median: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// The `q`-th percentile of sorted values, linearly interpolated.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let at = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// What [`run`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trials {
    /// Every chip, in seed order.
    pub trials: Vec<Trial>,
    /// Fidelity over the chips as programmed.
    pub fidelity: Spread,
    /// Error over the chips as programmed.
    pub error: Spread,
    /// Normalised fidelity over the chips as programmed.
    pub fidelity_normalized: Spread,
    /// Transmission over the chips.
    pub transmission: Spread,
    /// With correction: fidelity after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fidelity_corrected: Option<Spread>,
    /// With correction: error after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_corrected: Option<Spread>,
}

/// Runs `mesh` on `count` chips of `imperfections` (seeds `seed`, `seed + 1`, …; module doc)
/// and compares each with `reference` (as [`compare`]; for an SVD mesh, `svd`). With
/// `correct = Some(iterations)`, each chip's phases are also corrected for its splitter errors
/// ([`Chip::reprogram`]) and the chip compared again. `done` is called once per finished
/// trial, from any thread.
///
/// Errors: `count` is 0 or above [`MAX_TRIALS`]; the imperfections have no random part (every
/// chip would be the same); an invalid imperfection; a reference of another shape.
pub fn run(
    mesh: &Mesh,
    imperfections: &Imperfections,
    reference: &CMatrix,
    svd: Option<&SvdInfo>,
    count: usize,
    correct: Option<usize>,
    done: impl Fn() + Sync,
) -> Result<Trials> {
    if !(1..=MAX_TRIALS).contains(&count) {
        return Err(CompileError::Option {
            option: "--trials",
            problem: format!("{count} chips: give 1 to {MAX_TRIALS}"),
        });
    }
    let i = imperfections;
    if count > 1 && i.splitter_error == 0.0 && i.phase_error == 0.0 && i.loss_error == 0.0 {
        return Err(CompileError::Option {
            option: "--trials",
            problem: "every chip would be the same: the imperfections have no random part; set \
                      splitter_error or phase_error (σ, radians) or loss_error (σ, dB) in the \
                      chip file"
                .into(),
        });
    }
    let trials = (0..count as u64)
        .into_par_iter()
        .map(|t| {
            let chip_of = Imperfections {
                seed: imperfections.seed.wrapping_add(t),
                ..imperfections.clone()
            };
            let chip = Chip::new(mesh, &chip_of)?;
            let c = compare(reference, &chip.matrix(mesh), svd)?;
            // With correction, the same chip re-programmed (its comparison before is `c`).
            let corrected = match correct {
                None => None,
                Some(iterations) => {
                    let mut programmed = mesh.clone();
                    chip.reprogram(&mut programmed, iterations, |_, _| {});
                    Some(compare(reference, &chip.matrix(&programmed), svd)?)
                }
            };
            let trial = Trial {
                seed: chip_of.seed,
                fidelity: c.fidelity,
                error: c.error,
                fidelity_normalized: c.fidelity_normalized,
                transmission: c.transmission,
                fidelity_corrected: corrected.map(|r| r.fidelity),
                error_corrected: corrected.map(|r| r.error),
            };
            done();
            Ok(trial)
        })
        .collect::<Result<Vec<Trial>>>()?;
    let spread = |f: fn(&Trial) -> Option<f64>| {
        let v: Option<Vec<f64>> = trials.iter().map(f).collect();
        v.map(|v| Spread::of(&v))
    };
    let every = "every trial has it";
    Ok(Trials {
        fidelity: spread(|t| Some(t.fidelity)).expect(every),
        error: spread(|t| Some(t.error)).expect(every),
        fidelity_normalized: spread(|t| Some(t.fidelity_normalized)).expect(every),
        transmission: spread(|t| Some(t.transmission)).expect(every),
        fidelity_corrected: spread(|t| t.fidelity_corrected),
        error_corrected: spread(|t| t.error_corrected),
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{Method, decompose, haar_unitary};
    use photonflow_optics::rng::Rng;

    fn chip(splitter_error: f64, phase_error: f64, seed: u64) -> Imperfections {
        Imperfections {
            splitter_error,
            phase_error,
            seed,
            ..Imperfections::default()
        }
    }

    #[test]
    fn trial_zero_is_the_single_chip_and_the_rest_are_others() {
        let u = haar_unitary(10, &mut Rng::new(5));
        let mesh = decompose(&u, Method::Clements, 1e-9).unwrap();
        let imperfections = chip(0.04, 0.01, 17);
        let t = run(&mesh, &imperfections, &u, None, 6, None, || {}).unwrap();
        let single = Chip::new(&mesh, &imperfections).unwrap();
        let c = compare(&u, &single.matrix(&mesh), None).unwrap();
        assert_eq!(
            (t.trials[0].fidelity, t.trials[0].error),
            (c.fidelity, c.error)
        );
        let seeds: Vec<u64> = t.trials.iter().map(|t| t.seed).collect();
        assert_eq!(seeds, [17, 18, 19, 20, 21, 22]);
        // Each trial is the chip of its seed, and they differ.
        let fifth = Chip::new(&mesh, &chip(0.04, 0.01, 21)).unwrap();
        let c5 = compare(&u, &fifth.matrix(&mesh), None).unwrap();
        assert_eq!(t.trials[4].fidelity, c5.fidelity);
        assert!(t.trials.windows(2).all(|w| w[0].fidelity != w[1].fidelity));
        assert!(t.fidelity_corrected.is_none());
    }

    #[test]
    fn the_spread_is_that_of_the_values() {
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!((s.mean, s.min, s.median, s.max), (3.0, 1.0, 3.0, 5.0));
        assert!((s.std - 2.5f64.sqrt()).abs() < 1e-15);
        // NumPy: np.percentile([1, 2, 3, 4, 5], [5, 95]) = [1.2, 4.8].
        assert!(
            (s.p5 - 1.2).abs() < 1e-12 && (s.p95 - 4.8).abs() < 1e-12,
            "{s:?}"
        );
        let one = Spread::of(&[0.5]);
        assert_eq!((one.std, one.p5, one.p95), (0.0, 0.5, 0.5));
    }

    /// For small errors the infidelity grows as σ²: doubling σ quadruples `1 − F` on average.
    #[test]
    fn infidelity_grows_as_the_square_of_the_errors() {
        let u = haar_unitary(12, &mut Rng::new(9));
        let mesh = decompose(&u, Method::Clements, 1e-9).unwrap();
        let mean_loss = |sigma: f64| {
            let t = run(&mesh, &chip(sigma, sigma, 1), &u, None, 64, None, || {}).unwrap();
            1.0 - t.fidelity.mean
        };
        let (a, b) = (mean_loss(0.005), mean_loss(0.01));
        let ratio = b / a;
        assert!((3.9..4.1).contains(&ratio), "{a:e} {b:e} ratio {ratio}");
    }

    #[test]
    fn correction_lifts_every_chip_and_counts_are_checked() {
        let u = haar_unitary(8, &mut Rng::new(2));
        let mesh = decompose(&u, Method::Clements, 1e-9).unwrap();
        let t = run(&mesh, &chip(0.05, 0.0, 3), &u, None, 5, Some(50), || {}).unwrap();
        let after = t.fidelity_corrected.unwrap();
        assert!(after.mean > t.fidelity.mean && after.min > 0.99, "{t:?}");
        for trial in &t.trials {
            assert!(trial.error_corrected.unwrap() < trial.error, "{trial:?}");
        }
        let calls = std::sync::atomic::AtomicUsize::new(0);
        run(&mesh, &chip(0.05, 0.0, 3), &u, None, 5, None, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(calls.into_inner(), 5);
        for (imperfections, count, needle) in [
            (chip(0.05, 0.0, 0), 0, "0 chips: give 1 to 100000"),
            (chip(0.05, 0.0, 0), MAX_TRIALS + 1, "give 1 to 100000"),
            (chip(0.0, 0.0, 0), 2, "no random part"),
            (chip(-0.1, 0.0, 0), 2, "splitter_error"),
        ] {
            let e = run(&mesh, &imperfections, &u, None, count, None, || {})
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
        // One chip of an ideal model is allowed (it is the ideal mesh).
        let ideal = run(&mesh, &chip(0.0, 0.0, 0), &u, None, 1, None, || {}).unwrap();
        assert!(ideal.error.max < 1e-12);
    }
}
