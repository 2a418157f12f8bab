//! Off-axis digital holography: the complex field from a hologram recorded with a tilted
//! reference wave, as a holographic (tomographic) microscope records it.
//!
//! With the reference `R = |R|·exp(i 2π f_R·r)` the hologram is
//! `I = |E|² + |R|² + E·R̄ + Ē·R`: the term `E·R̄` is the field's spectrum moved to `−f_R`, clear
//! of the autocorrelation at the centre and of its twin `Ē·R` at `+f_R` when `|f_R|` exceeds
//! three times the field's bandwidth. [`demodulate`] tapers the hologram's borders (a Tukey
//! window over [`TAPER`] of each side, so that a carrier off the frequency grid does not leak
//! across the spectrum), cuts the disc of [`Sideband::radius`] around [`Sideband::centre`]
//! (`= −f_R`) out of the spectrum, transforms it back and removes the carrier in real space:
//! `w·E·|R|`, `w` the window (1 inside). [`find_sideband`] locates the sideband as the strongest
//! peak outside the centre; which twin is the field and which its conjugate depends on the
//! setup, so it takes the one with `fₓ < 0` (else `f_y < 0`), and a sign flip is one
//! conjugation away. Dividing by the field of a hologram recorded without the sample
//! ([`normalise`]) removes `|R|`, the window, the illumination's shape and the optics'
//! aberrations: the sample's field relative to what arrives without it.

use num_complex::Complex;
use rayon::prelude::*;

use crate::error::{OpticsError, Result, invalid};
use crate::fft::{Fft2, FftCache};
use crate::grid::{Grid, check_len, fft_frequencies};

type C64 = Complex<f64>;

/// The fraction of each side of a hologram that [`demodulate`] tapers to zero.
pub const TAPER: f64 = 0.125;

/// Where the field sits in a hologram's spectrum: the disc of `radius` around `centre`
/// (spatial frequencies `(fₓ, f_y)`, cycles per metre).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sideband {
    /// The centre, `−f_R`, cycles per metre.
    pub centre: [f64; 2],
    /// The radius of the disc kept, cycles per metre.
    pub radius: f64,
}

impl Sideband {
    /// Checks that the disc keeps clear of the autocorrelation (which reaches twice the disc's
    /// radius from the centre of the spectrum), `|centre| ≥ 3·radius`, and inside the grid's
    /// Nyquist frequencies.
    pub fn check(&self, grid: &Grid) -> Result<()> {
        let [fx, fy] = self.centre;
        let distance = fx.hypot(fy);
        let (nyx, nyy) = grid.nyquist();
        if !(self.radius > 0.0 && self.radius.is_finite() && distance.is_finite()) {
            return Err(invalid(
                "sideband",
                format!(
                    "radius {} at ({fx}, {fy}) 1/m: give a positive radius",
                    self.radius
                ),
            ));
        }
        if distance < 3.0 * self.radius {
            return Err(invalid(
                "sideband",
                format!(
                    "a disc of radius {:.4} 1/µm at {:.4} 1/µm from the centre overlaps the \
                     autocorrelation (which reaches twice the radius): the carrier must be at \
                     least 3 radii out — shrink the radius or tilt the reference more",
                    self.radius * 1e-6,
                    distance * 1e-6
                ),
            ));
        }
        if fx.abs() + self.radius > nyx || fy.abs() + self.radius > nyy {
            return Err(invalid(
                "sideband",
                format!(
                    "the disc at ({:.4}, {:.4}) 1/µm of radius {:.4} 1/µm reaches past the \
                     grid's Nyquist frequencies ({:.4}, {:.4}) 1/µm",
                    fx * 1e-6,
                    fy * 1e-6,
                    self.radius * 1e-6,
                    nyx * 1e-6,
                    nyy * 1e-6
                ),
            ));
        }
        Ok(())
    }
}

fn check_holograms(grid: &Grid, holograms: &[f64]) -> Result<()> {
    check_len(holograms.len(), grid)?;
    match holograms.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(invalid(
            "hologram",
            format!("sample {i} is {}; a hologram is finite", holograms[i]),
        )),
        None => Ok(()),
    }
}

/// The Tukey window of `n` samples tapering [`TAPER`] of each end.
fn taper(n: usize) -> Vec<f64> {
    let edge = (TAPER * n as f64).max(1.0);
    (0..n)
        .map(|i| {
            let d = (i as f64 + 0.5).min(n as f64 - i as f64 - 0.5);
            if d >= edge {
                1.0
            } else {
                0.5 - 0.5 * (std::f64::consts::PI * d / edge).cos()
            }
        })
        .collect()
}

/// The holograms, tapered, as the complex input of a transform.
fn windowed(grid: &Grid, holograms: &[f64]) -> Vec<C64> {
    let (wx, wy) = (taper(grid.nx), taper(grid.ny));
    let n = grid.len();
    holograms
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let j = i % n;
            C64::from(v * wy[j / grid.nx] * wx[j % grid.nx])
        })
        .collect()
}

/// The sideband of the first hologram of `holograms` (`[B, Ny, Nx]`): the strongest spectral
/// peak farther than `min_distance` (cycles per metre) from the centre, the twin with `fₓ < 0`
/// (or `fₓ = 0`, `f_y < 0`), with a disc of a third of its distance.
pub fn find_sideband(grid: &Grid, holograms: &[f64], min_distance: f64) -> Result<Sideband> {
    check_holograms(grid, holograms)?;
    let mut spectrum = windowed(grid, &holograms[..grid.len()]);
    Fft2::new(&FftCache::default(), grid.ny, grid.nx).forward(&mut spectrum);
    let (fx, fy) = (
        fft_frequencies(grid.nx, grid.dx),
        fft_frequencies(grid.ny, grid.dy),
    );
    let mut best: Option<(f64, [f64; 2])> = None;
    for (r, &v) in fy.iter().enumerate() {
        for (c, &u) in fx.iter().enumerate() {
            let lower = u < 0.0 || (u == 0.0 && v < 0.0);
            if !lower || u.hypot(v) <= min_distance {
                continue;
            }
            let power = spectrum[r * grid.nx + c].norm_sqr();
            if best.is_none_or(|(p, _)| power > p) {
                best = Some((power, [u, v]));
            }
        }
    }
    let Some((_, centre)) = best else {
        return Err(invalid(
            "sideband",
            "no frequency of the grid lies beyond the centre's exclusion; lower it",
        ));
    };
    let sideband = Sideband {
        centre,
        radius: centre[0].hypot(centre[1]) / 3.0,
    };
    sideband.check(grid)?;
    Ok(sideband)
}

/// The fields `w·E·|R|` of `holograms` (`[B, Ny, Nx]`, intensities): tapered, the disc of
/// `sideband` cut out of each spectrum, transformed back, the carrier removed (module docs).
pub fn demodulate(grid: &Grid, holograms: &[f64], sideband: &Sideband) -> Result<Vec<C64>> {
    check_holograms(grid, holograms)?;
    sideband.check(grid)?;
    let n = grid.len();
    let mut data = windowed(grid, holograms);
    let fft = Fft2::new(&FftCache::default(), grid.ny, grid.nx);
    fft.forward(&mut data);
    let (fx, fy) = (
        fft_frequencies(grid.nx, grid.dx),
        fft_frequencies(grid.ny, grid.dy),
    );
    let [cx, cy] = sideband.centre;
    let keep: Vec<bool> = fy
        .iter()
        .flat_map(|&v| {
            fx.iter()
                .map(move |&u| (u - cx).hypot(v - cy) <= sideband.radius)
        })
        .collect();
    data.par_chunks_mut(n).for_each(|h| {
        for (v, &k) in h.iter_mut().zip(&keep) {
            if !k {
                *v = C64::default();
            }
        }
    });
    fft.inverse(&mut data);
    // The carrier at the grid's sample positions (x = (j − n/2)·dx), and the inverse
    // transform's 1/n.
    let (xs, ys) = (grid.x(), grid.y());
    let tau = std::f64::consts::TAU;
    let carrier: Vec<C64> = ys
        .iter()
        .flat_map(|&y| {
            xs.iter()
                .map(move |&x| C64::from_polar(1.0 / n as f64, -tau * (cx * x + cy * y)))
        })
        .collect();
    data.par_chunks_mut(n).for_each(|e| {
        e.iter_mut().zip(&carrier).for_each(|(v, c)| *v *= c);
    });
    Ok(data)
}

/// `fields / background` sample by sample (`background`: one field, or one per field), the
/// sample's field relative to the one recorded without it. Where the background has less than
/// `floor` of its mean amplitude (the window's last samples) the ratio is set to 1.
pub fn normalise(fields: &mut [C64], background: &[C64], floor: f64) -> Result<()> {
    if background.is_empty() || !fields.len().is_multiple_of(background.len()) {
        return Err(OpticsError::Shape(format!(
            "{} field samples cannot be divided by a background of {}",
            fields.len(),
            background.len()
        )));
    }
    let mean = background.iter().map(|v| v.norm()).sum::<f64>() / background.len() as f64;
    let cut = floor * mean;
    fields.par_chunks_mut(background.len()).for_each(|f| {
        for (v, b) in f.iter_mut().zip(background) {
            *v = if b.norm() > cut {
                *v / b
            } else {
                C64::from(1.0)
            };
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    /// A smooth field band-limited well inside the sideband's disc.
    fn field(grid: &Grid) -> Vec<C64> {
        let (xs, ys) = (grid.x(), grid.y());
        ys.iter()
            .flat_map(|&y| {
                xs.iter().map(move |&x| {
                    let r2 = ((x - 1e-6) * (x - 1e-6) + y * y) / (3e-6f64).powi(2);
                    C64::from_polar(0.8 + 0.1 * (-r2).exp(), 1.2 * (-r2).exp() + 0.3)
                })
            })
            .collect()
    }

    /// `|E + R|²` with a reference of amplitude 2 at frequency `f_r`.
    fn hologram(grid: &Grid, e: &[C64], f_r: [f64; 2]) -> Vec<f64> {
        let (xs, ys) = (grid.x(), grid.y());
        let r = ys.iter().flat_map(|&y| {
            xs.iter()
                .map(move |&x| C64::from_polar(2.0, TAU * (f_r[0] * x + f_r[1] * y)))
        });
        e.iter().zip(r).map(|(e, r)| (e + r).norm_sqr()).collect()
    }

    /// The worst error of `v` against `scale·e` inside the window's flat part.
    fn interior(v: &[C64], e: &[C64], scale: f64, n: usize) -> f64 {
        let edge = (TAPER * n as f64).ceil() as usize;
        let mut worst = 0.0f64;
        for r in edge..n - edge {
            for c in edge..n - edge {
                worst = worst.max((v[r * n + c] - scale * e[r * n + c]).norm());
            }
        }
        worst
    }

    /// A field comes back from its hologram: found at the reference's frequency (off the
    /// grid), demodulated to 2E inside the window, and relative to a sample-free hologram E
    /// itself.
    #[test]
    fn the_field_comes_back_from_its_hologram() {
        let n = 128;
        let grid = Grid::square(n, 0.2e-6).unwrap();
        let f_r = [1.47e6, 0.91e6]; // off the grid's 0.039 /µm steps; Nyquist 2.5 /µm
        let e = field(&grid);
        let h = hologram(&grid, &e, f_r);
        let found = find_sideband(&grid, &h, 0.2e6).unwrap();
        let step = 1.0 / (n as f64 * 0.2e-6);
        assert!(
            (found.centre[0] + f_r[0]).abs() <= step && (found.centre[1] + f_r[1]).abs() <= step,
            "{found:?}"
        );
        let exact = Sideband {
            centre: [-f_r[0], -f_r[1]],
            radius: 0.55e6,
        };
        let got = demodulate(&grid, &h, &exact).unwrap();
        let err = interior(&got, &e, 2.0, n);
        assert!(err < 3e-2, "{err}"); // 1.2 % of 2E: the disc cuts the field's tails
        let flat = vec![C64::from(1.0); grid.len()];
        let background = demodulate(&grid, &hologram(&grid, &flat, f_r), &exact).unwrap();
        let mut ratio = got.clone();
        normalise(&mut ratio, &background, 0.1).unwrap();
        let err = interior(&ratio, &e, 1.0, n);
        assert!(err < 3e-3, "{err}");
    }

    #[test]
    fn overlapping_sidebands_and_bad_holograms_are_refused() {
        let grid = Grid::square(32, 0.2e-6).unwrap();
        let near = Sideband {
            centre: [-0.5e6, 0.0],
            radius: 0.3e6,
        };
        assert!(
            near.check(&grid)
                .unwrap_err()
                .to_string()
                .contains("3 radii")
        );
        let far = Sideband {
            centre: [-2.4e6, 0.0],
            radius: 0.5e6,
        };
        assert!(
            far.check(&grid)
                .unwrap_err()
                .to_string()
                .contains("Nyquist")
        );
        let ok = Sideband {
            centre: [-1.2e6, 0.0],
            radius: 0.3e6,
        };
        assert!(demodulate(&grid, &[1.0; 31], &ok).is_err());
        let mut nan = vec![1.0; grid.len()];
        nan[5] = f64::NAN;
        assert!(
            demodulate(&grid, &nan, &ok)
                .unwrap_err()
                .to_string()
                .contains("finite")
        );
    }
}
