//! Phase retrieval of a microscope's pupil from a z-stack of one bead (Hanser et al., J.
//! Microsc. 216, 32 (2004); the algorithm of pyotf and of most PSF tools).
//!
//! A sub-resolution bead imaged through focus is the PSF. Each plane gives the magnitude of
//! the field `|u_k| = √I_k`, and the planes differ only by the known defocus `exp(i kz z_k)`,
//! so the pupil is the one complex function consistent with all of them. Starting from the
//! ideal pupil, every iteration
//!
//! 1. computes the field of each plane, `u_k = F⁻¹[P · exp(i kz z_k)]`;
//! 2. keeps its phase and puts in the measured magnitude, `u'_k = √I_k · u_k/|u_k|`;
//! 3. takes each back to the pupil, `P_k = F[u'_k] · exp(−i kz z_k)`;
//! 4. averages them, `P = ⟨P_k⟩`, and sets it to zero beyond the cutoff `NA/λ`.
//!
//! The measured planes are first freed of their background (given, or the median of the
//! stack's outer frame of pixels), clipped at zero, and centred laterally on the bead (its
//! brightest voxel after a 3 × 3 × 3 box mean); the bead's brightest plane is taken as
//! `z = 0`. Each measured plane is scaled to the power of the modelled one, since a
//! plane's total light varies with bleaching (and, on a light-sheet microscope, with the
//! sheet) while the model keeps it constant. What is left of the bead's position (a fraction
//! of a pixel, of a plane) is in the pupil's phase, and [`Pupil::fit`] reports it as such.

use num_complex::Complex;
use rayon::prelude::*;

use super::{Objective, PsfModel, Pupil, PupilFit, brightest, fft_index, frame_median};
use crate::error::{OpticsError, Result, invalid, positive};
use crate::grid::Grid;

/// Settings of [`retrieve()`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetrieveOptions {
    /// Most iterations (100 by default).
    pub iterations: usize,
    /// Stop when the misfit changes by less than this fraction from one iteration to the next
    /// (10⁻⁴ by default).
    pub tolerance: f64,
    /// The stack's background (camera offset and stray light), in its own units; `None`
    /// estimates it as the median of the outer frame (2 pixels wide) of every plane.
    pub background: Option<f64>,
    /// Fit Zernike terms up to this Noll index (22, secondary spherical, by default).
    pub zernike: usize,
    /// Use only the planes where the bead's peak (a 3 × 3 mean at its brightest pixel) is at
    /// least this fraction of its brightest plane's (0.02 by default; 0 takes every plane).
    /// Planes where the bead is lost in the noise only add noise; on a light-sheet
    /// microscope the bead is not even lit far from the sheet.
    pub min_signal: f64,
    /// The forward model (scalar by default). With the vectorial model, or a bead in an
    /// index-mismatched sample, the retrieved pupil is what remains beyond the model: the
    /// objective's own aberrations.
    pub model: PsfModel,
}

impl Default for RetrieveOptions {
    fn default() -> Self {
        Self {
            iterations: 100,
            tolerance: 1e-4,
            background: None,
            zernike: 22,
            min_signal: 0.02,
            model: PsfModel::default(),
        }
    }
}

/// What [`retrieve()`] measured.
#[derive(Debug, Clone)]
pub struct Retrieval {
    /// The retrieved pupil (magnitude and phase; the bead's residual offset included), scaled
    /// to a mean `|P|²` of 1 over the cutoff.
    pub pupil: Pupil,
    /// Its fit: the bead's position, Zernike terms, Strehl ratio.
    pub fit: PupilFit,
    /// The background that was subtracted.
    pub background: f64,
    /// The voxel `[z, y, x]` of the bead's brightest point, which became the origin.
    pub peak: [usize; 3],
    /// The planes used (see [`RetrieveOptions::min_signal`]).
    pub planes: Vec<usize>,
    /// The misfit after each iteration: `Σ (|u_k| − √I_k)² / Σ I_k` over all planes, with
    /// each measured plane scaled to the modelled plane's power.
    pub misfit: Vec<f64>,
    /// The same misfit of the ideal pupil (uniform, flat) at the fitted position: how much of
    /// the measurement aberrations explain.
    pub ideal_misfit: f64,
}

/// Retrieves the pupil of `objective` from `stack`, a bead's z-stack `[nz, ny, nx]` (row
/// major, x fastest) sampled on `grid` laterally (sample space; `grid.nx`, `grid.ny` must be
/// the stack's) and every `dz` metres along z. `observer` sees each iteration's number and
/// misfit.
///
/// Cost per iteration: one inverse and one forward 2-D FFT of `ny × nx` per plane, in
/// parallel; memory `2·nz·ny·nx` complex `f64`.
pub fn retrieve(
    stack: &[f32],
    shape: [usize; 3],
    grid: Grid,
    dz: f64,
    objective: Objective,
    options: &RetrieveOptions,
    mut observer: impl FnMut(usize, f64),
) -> Result<Retrieval> {
    let [nz, ny, nx] = shape;
    if stack.len() != nz * ny * nx || grid.nx != nx || grid.ny != ny {
        return Err(OpticsError::Shape(format!(
            "a bead stack of {} values does not have the shape {nz}×{ny}×{nx} on a {}×{} grid",
            stack.len(),
            grid.ny,
            grid.nx
        )));
    }
    if nz < 3 {
        return Err(invalid(
            "z-stack",
            format!(
                "{nz} plane(s): phase retrieval needs the bead through focus, at least 3 planes \
                 (typically 30–60 over a few µm)"
            ),
        ));
    }
    positive("z step", dz)?;
    if let Some((count, first)) = crate::field::non_finite(stack) {
        return Err(OpticsError::NonFinite { count, first });
    }
    if options.tolerance.is_nan() || options.tolerance < 0.0 {
        return Err(invalid("tolerance", "give a fraction ≥ 0"));
    }
    if !(0.0..1.0).contains(&options.min_signal) {
        return Err(invalid(
            "minimum signal",
            format!("{} is not a fraction in [0, 1)", options.min_signal),
        ));
    }
    let background = match options.background {
        Some(b) if b.is_finite() => b,
        Some(b) => return Err(invalid("background", format!("{b} is not a finite number"))),
        None => frame_median(stack, shape),
    };
    let clean: Vec<f64> = stack
        .iter()
        .map(|&v| (f64::from(v) - background).max(0.0))
        .collect();
    let peak = brightest(&clean, shape);
    if clean.iter().all(|&v| v == 0.0) {
        return Err(invalid(
            "background",
            format!(
                "nothing is left of the bead above the background {background}; give a lower --background"
            ),
        ));
    }
    let mut pupil = Pupil::new(objective, grid)?;
    let n = nx * ny;
    // The planes where the bead is seen: its 3 × 3 mean at least `min_signal` of the best.
    let spot = |k: usize| -> f64 {
        let mut s = 0.0;
        for y in peak[1].saturating_sub(1)..(peak[1] + 2).min(ny) {
            for x in peak[2].saturating_sub(1)..(peak[2] + 2).min(nx) {
                s += clean[k * n + y * nx + x];
            }
        }
        s
    };
    let best = spot(peak[0]);
    let planes: Vec<usize> = (0..nz)
        .filter(|&k| spot(k) >= options.min_signal * best)
        .collect();
    if planes.len() < 3 {
        return Err(invalid(
            "z-stack",
            format!(
                "the bead is seen in only {} plane(s) above {} of its brightest; phase \
                 retrieval needs it through focus (lower the minimum signal, or take a stack \
                 with a finer z step)",
                planes.len(),
                options.min_signal
            ),
        ));
    }
    let z: Vec<f64> = planes
        .iter()
        .map(|&k| (k as f64 - peak[0] as f64) * dz)
        .collect();
    // Measured magnitudes in FFT order, the bead's brightest point at the origin.
    let mut target = vec![0.0f64; planes.len() * n];
    target
        .par_chunks_mut(n)
        .zip(&planes)
        .for_each(|(plane, &k)| {
            for j in 0..n {
                let (jy, jx) = (j / nx, j % nx);
                // Centred index of the voxel that lands on the centre after the shift.
                let sy = (jy + ny + peak[1] - ny / 2) % ny;
                let sx = (jx + nx + peak[2] - nx / 2) % nx;
                plane[fft_index(j, nx, ny)] = clean[k * n + sy * nx + sx].sqrt();
            }
        });
    let nz = planes.len();
    let coords = pupil.coords.clone();
    let weights = options.model.weights(&objective, &coords)?;
    let channels = weights.len();
    crate::memory::check_fits(
        crate::memory::bytes(&[nz, channels, n, 16]),
        || {
            format!(
                "the retrieval's fields ({nz} planes × {channels} field components of {ny}×{nx})"
            )
        },
        "crop the stack around the bead, or use fewer planes",
    )?;
    // Each sample's Σ_c |w_c|², and the floor below which a sample carries no light (a part
    // of the pupil the model does not reach: evanescent deep in a sample, the axis of radial
    // polarisation); there the pupil is left near zero rather than made of noise.
    let reach: Vec<f64> = (0..coords.index.len())
        .map(|i| weights.iter().map(|w| w[i].norm_sqr()).sum())
        .collect();
    let floor = 1e-3 * reach.iter().copied().fold(0.0, f64::max);
    let mut fields = vec![Complex::<f64>::default(); nz * channels * n];
    let mut misfit = Vec::new();
    for it in 0..options.iterations {
        pupil.fields(&z, &weights, &mut fields);
        let e = impose(&mut fields, &target, channels, n);
        misfit.push(e);
        observer(it + 1, e);
        coords.fft.forward(&mut fields);
        // Each plane's and channel's pupil estimate, `conj(w_c)`-weighted: the least-squares
        // pupil of all of them.
        let mut sum = vec![Complex::<f64>::default(); coords.index.len()];
        for (k, planes) in fields.chunks(n * channels).enumerate() {
            for (plane, w) in planes.chunks(n).zip(&weights) {
                for (i, s) in sum.iter_mut().enumerate() {
                    *s += plane[coords.index[i]]
                        * w[i].conj()
                        * Complex::from_polar(1.0, -coords.kz[i] * z[k]);
                }
            }
        }
        // The forward FFT of an inverse one multiplies by n; the mean over planes by 1/nz.
        let scale = 1.0 / (n as f64 * nz as f64);
        pupil.set_values(
            sum.into_iter()
                .zip(&reach)
                .map(|(s, r)| s * (scale / r.max(floor)))
                .collect(),
        )?;
        if it > 0 {
            let prev = misfit[it - 1];
            if (prev - e).abs() <= options.tolerance * prev {
                break;
            }
        }
    }
    // A measured pupil's scale is arbitrary (the bead's brightness): make its mean |P|² over
    // the cutoff (weighted by the model's reach) 1, so that its PSF's planes sum to 1 as an
    // ideal pupil's do.
    let power = pupil
        .values()
        .iter()
        .zip(&reach)
        .map(|(v, r)| v.norm_sqr() * r)
        .sum::<f64>()
        / reach.iter().sum::<f64>();
    if power > 0.0 {
        let s = power.sqrt().recip();
        pupil.set_values(pupil.values().iter().map(|v| v * s).collect())?;
    }
    let fit = pupil.fit(options.zernike)?;
    let mut ideal = Pupil::new(objective, grid)?;
    let mean_mag =
        pupil.values().iter().map(|v| v.norm()).sum::<f64>() / pupil.values().len() as f64;
    ideal.set_values(vec![Complex::new(mean_mag, 0.0); pupil.values().len()])?;
    ideal.displace(fit.position[0], fit.position[1], fit.position[2]);
    ideal.fields(&z, &weights, &mut fields);
    let ideal_misfit = impose(&mut fields, &target, channels, n);
    Ok(Retrieval {
        pupil,
        fit,
        background,
        peak,
        planes,
        misfit,
        ideal_misfit,
    })
}

/// Puts the measured magnitudes `target` (`[nz, ny·nx]`) into `fields` (`[nz, channels,
/// ny·nx]`; each plane's target scaled to the field's power): every channel of a pixel is
/// scaled by the same factor, so that `√Σ_c |u_c|²` becomes the target. Returns the misfit
/// `Σ (|u| − t)² / Σ t²` before the change.
fn impose(fields: &mut [Complex<f64>], target: &[f64], channels: usize, n: usize) -> f64 {
    let (num, den) = fields
        .par_chunks_mut(n * channels)
        .zip(target.par_chunks(n))
        .map(|(planes, t)| {
            let power: f64 = planes.iter().map(|u| u.norm_sqr()).sum();
            let measured: f64 = t.iter().map(|v| v * v).sum();
            if measured == 0.0 {
                return (0.0, 0.0);
            }
            let s = (power / measured).sqrt();
            let mut num = 0.0;
            for (j, &tv) in t.iter().enumerate() {
                let a = (0..channels)
                    .map(|c| planes[c * n + j].norm_sqr())
                    .sum::<f64>()
                    .sqrt();
                num += (a - s * tv).powi(2);
                if a > 0.0 {
                    for c in 0..channels {
                        planes[c * n + j] *= s * tv / a;
                    }
                } else {
                    planes[j] = Complex::new(s * tv, 0.0);
                }
            }
            (num, power)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    if den > 0.0 { num / den } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A synthetic bead: aberrated pupil, offset by a fraction of a pixel and of a plane,
    /// imaged with Poisson noise on a background; the retrieval finds the aberrations and
    /// the position.
    #[test]
    fn retrieves_known_aberrations_from_a_noisy_bead() {
        let obj = Objective::new(520e-9, 1.1, 1.333).unwrap();
        let d = 0.1e-6;
        let dz = 0.2e-6;
        let (nz, n) = (21, 64);
        let grid = Grid::square(n, d).unwrap();
        let terms = [(5, 0.3), (6, -0.2), (8, 0.25), (11, 0.4), (12, 0.1)];
        let mut truth = Pupil::new(obj, grid).unwrap();
        truth.aberrate(&terms).unwrap();
        let (x0, y0, z0) = (0.3 * d, -0.2 * d, 0.25 * dz);
        truth.displace(x0, y0, z0);
        let z: Vec<f64> = (0..nz).map(|k| (k as f64 - 10.0) * dz).collect();
        let psf = truth.psf(&z);
        let peak_photons = 5000.0 / psf.iter().fold(0.0f64, |a, &b| a.max(b));
        let mut rng = Rng::new(7);
        let bg = 100.0;
        let stack: Vec<f32> = psf
            .iter()
            .map(|&p| rng.poisson(p * peak_photons + bg) as f32)
            .collect();
        let r = retrieve(
            &stack,
            [nz, n, n],
            grid,
            dz,
            obj,
            &RetrieveOptions::default(),
            |_, _| {},
        )
        .unwrap();
        let plane: f64 = r.pupil.psf(&[0.0]).iter().sum();
        assert!(
            (plane - 1.0).abs() < 1e-9,
            "retrieved PSF plane sums to {plane}"
        );
        assert!(
            (r.background - bg).abs() < 2.0,
            "background {}",
            r.background
        );
        assert_eq!(r.peak, [10, n / 2, n / 2]);
        for (j, c) in &r.fit.zernike {
            let want = terms.iter().find(|t| t.0 == *j).map_or(0.0, |t| t.1);
            assert!((c - want).abs() < 0.04, "Z{j}: {c:.3} vs {want}");
        }
        let pos = r.fit.position;
        assert!(
            (pos[0] - x0).abs() < 5e-9 && (pos[1] - y0).abs() < 5e-9,
            "{pos:?}"
        );
        assert!((pos[2] - z0).abs() < 15e-9, "{pos:?}");
        // With noise the misfit has a floor (the noise's amplitude); the aberrations still
        // explain a good part of what the ideal pupil misses.
        let last = *r.misfit.last().unwrap();
        println!(
            "noisy: misfit {last:.4} (ideal {:.4}), {} iterations",
            r.ideal_misfit,
            r.misfit.len()
        );
        assert!(
            last < 0.7 * r.ideal_misfit,
            "{last} vs ideal {}",
            r.ideal_misfit
        );
        // Without noise it converges to the measurement: the misfit falls to almost nothing.
        let exact: Vec<f32> = psf.iter().map(|&p| (p * peak_photons) as f32).collect();
        let opts = RetrieveOptions {
            background: Some(0.0),
            iterations: 200,
            tolerance: 0.0,
            ..RetrieveOptions::default()
        };
        let r = retrieve(&exact, [nz, n, n], grid, dz, obj, &opts, |_, _| {}).unwrap();
        let last = *r.misfit.last().unwrap();
        println!(
            "noise-free: misfit {last:.2e} (ideal {:.2e}, first {:.2e})",
            r.ideal_misfit, r.misfit[0]
        );
        assert!(
            last < 1e-3 && last < 0.01 * r.ideal_misfit,
            "{last} vs ideal {}",
            r.ideal_misfit
        );
        for (j, c) in &r.fit.zernike {
            let want = terms.iter().find(|t| t.0 == *j).map_or(0.0, |t| t.1);
            assert!((c - want).abs() < 0.01, "noise-free Z{j}: {c:.4} vs {want}");
        }
    }

    /// At NA 1.4 the scalar retrieval of an isotropic emitter's bead puts the vectorial
    /// widening into the pupil; the vectorial retrieval finds the aberrations put in. Under
    /// an oil objective a bead 3 µm into water carries a large spherical aberration; with the
    /// sample in the model, what is retrieved is the objective's own.
    #[test]
    fn vectorial_and_mismatched_beads_are_retrieved_with_their_model() {
        use crate::pupil::{Polarisation, Sample};
        let obj = Objective::new(520e-9, 1.4, 1.518).unwrap();
        let (d, dz, nz, n) = (0.08e-6, 0.15e-6, 31, 64);
        let grid = Grid::square(n, d).unwrap();
        let terms = [(5, 0.2), (7, -0.15), (11, 0.25)];
        let z: Vec<f64> = (0..nz).map(|k| (k as f64 - 15.0) * dz).collect();
        let iso = PsfModel {
            vectorial: Some(Polarisation::Unpolarised),
            sample: None,
        };
        let deep = PsfModel {
            vectorial: Some(Polarisation::Unpolarised),
            sample: Some(Sample {
                index: 1.333,
                depth: 3e-6,
            }),
        };
        let worst = |r: &Retrieval| -> f64 {
            r.fit
                .zernike
                .iter()
                .map(|(j, c)| {
                    let want = terms.iter().find(|t| t.0 == *j).map_or(0.0, |t| t.1);
                    (c - want).abs()
                })
                .fold(0.0, f64::max)
        };
        for (truth_model, centre) in [(iso, 0.0), (deep, -0.6e-6)] {
            let mut truth = Pupil::new(obj, grid).unwrap();
            truth.aberrate(&terms).unwrap();
            // The mismatched bead is brightest with the stage moved towards the objective:
            // centre the stack there.
            let planes: Vec<f64> = z.iter().map(|v| v + centre).collect();
            let psf = truth.psf_with(&planes, &truth_model).unwrap();
            let stack: Vec<f32> = psf.iter().map(|&p| (p * 1e6) as f32).collect();
            let run = |model: PsfModel| {
                let opts = RetrieveOptions {
                    background: Some(0.0),
                    iterations: 200,
                    tolerance: 0.0,
                    model,
                    ..RetrieveOptions::default()
                };
                retrieve(&stack, [nz, n, n], grid, dz, obj, &opts, |_, _| {}).unwrap()
            };
            let right = run(truth_model);
            let scalar = run(PsfModel::default());
            let (good, bad) = (worst(&right), worst(&scalar));
            println!(
                "{}: Zernike error {good:.4} rad (misfit {:.1e}); scalar {bad:.4} rad ({:.1e})",
                truth_model.describe(),
                right.misfit.last().unwrap(),
                scalar.misfit.last().unwrap()
            );
            let (fit, unfit) = (
                *right.misfit.last().unwrap(),
                *scalar.misfit.last().unwrap(),
            );
            assert!(good < 2e-3 && bad > 0.01, "{good} {bad}");
            assert!(fit < 1e-6 && unfit > 1e-3, "{fit} {unfit}");
            let sums: f64 = right
                .pupil
                .psf_with(&[0.0], &truth_model)
                .unwrap()
                .iter()
                .sum();
            assert!((sums - 1.0).abs() < 1e-9, "{sums}");
        }
    }

    #[test]
    fn bad_stacks_are_refused() {
        let obj = Objective::new(520e-9, 1.1, 1.333).unwrap();
        let grid = Grid::square(32, 0.1e-6).unwrap();
        let opts = RetrieveOptions::default();
        let ok = vec![1.0f32; 5 * 32 * 32];
        let e = |s: &[f32], shape, g, dz, o: &RetrieveOptions| {
            retrieve(s, shape, g, dz, obj, o, |_, _| {})
                .unwrap_err()
                .to_string()
        };
        assert!(e(&ok, [4, 32, 32], grid, 1e-7, &opts).contains("shape"));
        assert!(e(&ok[..2 * 1024], [2, 32, 32], grid, 1e-7, &opts).contains("3 planes"));
        assert!(e(&ok, [5, 32, 32], grid, 0.0, &opts).contains("z step"));
        let mut nan = ok.clone();
        nan[7] = f32::NAN;
        assert!(e(&nan, [5, 32, 32], grid, 1e-7, &opts).contains("non-finite"));
        // A bead seen in one plane only (1 % of it in the planes beside).
        let mut spot = vec![0.0f32; 5 * 32 * 32];
        for (k, v) in [(1, 1.0), (2, 100.0), (3, 1.0)] {
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                spot[k * 1024 + (16 + dy) * 32 + 16 + dx] = v;
            }
        }
        let o = RetrieveOptions {
            background: Some(0.0),
            ..opts.clone()
        };
        let msg = e(&spot, [5, 32, 32], grid, 1e-7, &o);
        assert!(
            msg.contains("only 1 plane(s)") && !msg.contains("  "),
            "{msg}"
        );
        // A flat stack is all background.
        assert!(e(&ok, [5, 32, 32], grid, 1e-7, &opts).contains("background"));
    }
}
