//! Transmitted-light images of a thin specimen under Köhler illumination (brightfield,
//! darkfield, partially coherent), by Abbe's method.
//!
//! The condenser fills a disc (or an annulus) of directions with mutually incoherent plane
//! waves ([`Condenser`]). A plane wave of transverse frequency `f_s` through a thin specimen of
//! transmission `t(x, y)` leaves the spectrum `T̃(f − f_s)`; the objective passes
//! `P(f)·exp(i kz z)` of it; the camera adds the intensities of all the source's directions:
//!
//! `I(x, y; z) = ⟨ |F⁻¹[P(f) · exp(i kz(f) z) · T̃(f − f_s)]|² ⟩_s`
//!
//! (Abbe 1873; the same sum as Hopkins' transmission cross-coefficients, without forming
//! them). The source's directions are the grid's own frequencies `f_s` inside the condenser's
//! `NA_c/λ`, so every shift is exact and the specimen is treated as periodic over the grid (pad
//! it when it is not). `z` is the specimen's distance beyond the focal plane, as for
//! [`super::Pupil::psf`]: a weak phase object is invisible in focus and shows with defocus.
//!
//! `NA_c = 0` is coherent illumination; `NA_c ≥ NA` makes a weak object's image incoherent
//! (its transfer function becomes the pupil's autocorrelation, the incoherent OTF; tested);
//! an annulus outside the objective's NA is darkfield. A blank specimen images to 1 in
//! brightfield with an ideal pupil.
//!
//! Cost: one inverse FFT of the grid per source direction and plane, plus one forward FFT of
//! the specimen; the directions are `π (NA_c/λ)² · (N·pitch)²` in number.

use num_complex::Complex;
use rayon::prelude::*;

use super::Pupil;
use crate::error::{OpticsError, Result, invalid};
use crate::grid::fft_frequencies;

/// Köhler illumination: a uniformly filled condenser aperture, the directions whose
/// numerical aperture lies in `[inner_na, na]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condenser {
    /// The condenser's numerical aperture (0: coherent, one plane wave along the axis).
    pub na: f64,
    /// An annular aperture's inner NA (0 for a full disc; above the objective's NA, darkfield).
    pub inner_na: f64,
    /// Take every `stride`-th of the grid's frequencies along each axis as a source direction
    /// (1, the default: all of them, the exact image of the periodic specimen). A coarser
    /// sampling of the source costs `stride²` times less and converges to it.
    pub stride: usize,
}

impl Condenser {
    /// A full condenser aperture of numerical aperture `na`, every direction of the grid.
    pub fn new(na: f64) -> Self {
        Self {
            na,
            inner_na: 0.0,
            stride: 1,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.stride == 0 {
            return Err(invalid(
                "source stride",
                "give 1 (every direction of the grid) or more",
            ));
        }
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(self.na) && ok(self.inner_na) && self.inner_na <= self.na) {
            return Err(invalid(
                "condenser NA",
                format!(
                    "an aperture from NA {} to {} is not one: give 0 ≤ inner NA ≤ NA (0 for \
                     coherent light)",
                    self.inner_na, self.na
                ),
            ));
        }
        Ok(())
    }
}

/// Differential interference contrast (Nomarski DIC), as Preza et al. (J. Opt. Soc. Am. A 16,
/// 2185 (1999)) model it: the specimen is seen as the difference of two copies sheared by
/// `shear` with the bias retardation `bias` between them,
///
/// `t_DIC(r) = ½ [t(r − s/2) e^{iβ/2} − t(r + s/2) e^{−iβ/2}]`,
///
/// applied to the specimen's spectrum as `−i sin(π s·g − β/2)` (sub-pixel shears are exact),
/// and then imaged as any specimen ([`Pupil::image`]). A clear field images to `sin²(β/2)`,
/// and a phase gradient `∇φ` to `sin²((s·∇φ − β)/2)`: relief shading along the shear.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dic {
    /// The shear between the two beams in sample space, `(x, y)` metres.
    pub shear: (f64, f64),
    /// The bias retardation between them, radians (π/2: a quarter wave, the background at
    /// half the light and the response linear).
    pub bias: f64,
}

impl Dic {
    /// The DIC specimen `t_DIC` of `specimen` on `pupil`'s grid.
    pub fn specimen(&self, pupil: &Pupil, specimen: &[Complex<f64>]) -> Result<Vec<Complex<f64>>> {
        let grid = pupil.grid;
        check_specimen(&grid, specimen)?;
        if !(self.shear.0.is_finite() && self.shear.1.is_finite() && self.bias.is_finite()) {
            return Err(invalid(
                "DIC",
                format!(
                    "shear ({}, {}) m and bias {} rad: give finite numbers",
                    self.shear.0, self.shear.1, self.bias
                ),
            ));
        }
        let fx = fft_frequencies(grid.nx, grid.dx);
        let fy = fft_frequencies(grid.ny, grid.dy);
        let mut out = specimen.to_vec();
        pupil.coords.fft.forward(&mut out);
        let inv_n = 1.0 / grid.len() as f64;
        let pi = std::f64::consts::PI;
        for (row, &gy) in out.chunks_mut(grid.nx).zip(&fy) {
            for (v, &gx) in row.iter_mut().zip(&fx) {
                let arg = pi * (self.shear.0 * gx + self.shear.1 * gy) - 0.5 * self.bias;
                *v *= Complex::new(0.0, -arg.sin() * inv_n);
            }
        }
        pupil.coords.fft.inverse(&mut out);
        Ok(out)
    }
}

/// A specimen must fill the grid with finite values.
fn check_specimen(grid: &crate::grid::Grid, specimen: &[Complex<f64>]) -> Result<()> {
    if specimen.len() != grid.len() {
        return Err(OpticsError::Shape(format!(
            "a specimen of {} values on a {}×{} grid",
            specimen.len(),
            grid.ny,
            grid.nx
        )));
    }
    crate::field::check_finite(specimen)
}

impl Pupil {
    /// Puts a phase ring into the pupil (Zernike phase contrast): the samples whose NA lies in
    /// `[inner_na, na]` (the condenser annulus's image, for [`Condenser`]'s of the same NAs)
    /// are multiplied by `√transmission · exp(i·phase)`. The light the specimen does not
    /// scatter crosses the pupil inside the ring, so a weak phase `φ` images, in focus, to
    /// about `T + 2√T sin(phase)·φ` (tested): a quarter-wave ring (`phase = π/2`) makes phase
    /// visible, and `T < 1` raises the contrast.
    pub fn phase_ring(
        &mut self,
        inner_na: f64,
        na: f64,
        phase: f64,
        transmission: f64,
    ) -> Result<()> {
        if !(inner_na.is_finite() && na.is_finite() && 0.0 <= inner_na && inner_na < na) {
            return Err(invalid(
                "phase ring",
                format!("a ring from NA {inner_na} to {na}: give 0 ≤ inner NA < outer NA"),
            ));
        }
        if !(phase.is_finite() && transmission.is_finite() && transmission > 0.0) {
            return Err(invalid(
                "phase ring",
                format!(
                    "phase {phase} rad, transmission {transmission}: give a finite phase and a                      transmission above 0 (0.25 is common)"
                ),
            ));
        }
        let factor = Complex::from_polar(transmission.sqrt(), phase);
        let (lo, hi) = (inner_na / self.objective.na, na / self.objective.na);
        let c = &self.coords;
        for (i, v) in self.values.iter_mut().enumerate() {
            let rho = c.ux[i].hypot(c.uy[i]);
            if rho >= lo * (1.0 - 1e-12) && rho <= hi * (1.0 + 1e-12) {
                *v *= factor;
            }
        }
        Ok(())
    }

    /// The image of the thin specimen `specimen` (complex transmission on the pupil's grid,
    /// row-major, the same pixel layout out) under `condenser`, on the planes `z` (metres of
    /// the specimen beyond focus): `[z.len(), ny, nx]`, averaged over the source's directions
    /// so that a blank specimen gives `|P|²` averaged over the condenser's directions (1 in
    /// brightfield with an ideal pupil).
    ///
    /// Refused when the specimen's spectrum would wrap around the grid, i.e. unless the pitch
    /// is at most `λ/(2 (NA + NA_c))` along each axis; and when the condenser's aperture holds
    /// no frequency of the grid (an annulus thinner than the grid's frequency step).
    ///
    /// `observer` sees the number of source directions done (over all planes) and the total.
    pub fn image(
        &self,
        specimen: &[Complex<f64>],
        condenser: &Condenser,
        z: &[f64],
        mut observer: impl FnMut(usize, usize),
    ) -> Result<Vec<f64>> {
        condenser.validate()?;
        let grid = self.grid;
        let n = grid.len();
        check_specimen(&grid, specimen)?;
        let lambda = self.objective.wave.wavelength;
        let limit = lambda / (2.0 * (self.objective.na + condenser.na));
        for (axis, d) in [("x", grid.dx), ("y", grid.dy)] {
            if d > limit * (1.0 + 1e-12) {
                return Err(invalid(
                    "pitch",
                    format!(
                        "the {axis} pitch {:.4} µm is too coarse for an objective of NA {} \
                         under a condenser of NA {}: the light it passes reaches the specimen's \
                         spatial frequency (NA + NA_c)/λ, which needs a pitch of at most \
                         λ/(2 (NA + NA_c)) = {:.4} µm (resample the specimen)",
                        d * 1e6,
                        self.objective.na,
                        condenser.na,
                        limit * 1e6
                    ),
                ));
            }
        }
        // The source's directions: grid frequencies inside the condenser's aperture, as
        // index offsets (sy, sx) in FFT order.
        let fx = fft_frequencies(grid.nx, grid.dx);
        let fy = fft_frequencies(grid.ny, grid.dy);
        let (lo, hi) = (condenser.inner_na / lambda, condenser.na / lambda);
        // A frequency's signed index on its axis, for the stride.
        let on_stride = |i: usize, n: usize| {
            let k = if i < n.div_ceil(2) { i } else { n - i };
            k % condenser.stride == 0
        };
        let mut sources = Vec::new();
        for (sy, &y) in fy.iter().enumerate() {
            for (sx, &x) in fx.iter().enumerate() {
                let f = x.hypot(y);
                if f <= hi * (1.0 + 1e-12)
                    && f >= lo * (1.0 - 1e-12)
                    && on_stride(sy, grid.ny)
                    && on_stride(sx, grid.nx)
                {
                    sources.push((sy, sx));
                }
            }
        }
        if sources.is_empty() {
            return Err(invalid(
                "condenser NA",
                format!(
                    "the aperture from NA {} to {} holds none of the grid's frequencies (their \
                     step is λ/(N·pitch) = NA {:.4}): widen it, or use a larger grid",
                    condenser.inner_na,
                    condenser.na,
                    lambda / (grid.nx as f64 * grid.dx).max(grid.ny as f64 * grid.dy)
                ),
            ));
        }
        // The specimen's spectrum, scaled so that its DC term is the mean transmission.
        let mut spectrum = specimen.to_vec();
        self.coords.fft.forward(&mut spectrum);
        let inv_n = 1.0 / n as f64;
        spectrum.iter_mut().for_each(|v| *v *= inv_n);
        let c = &self.coords;
        let (nx, ny) = (grid.nx, grid.ny);
        let weight = 1.0 / sources.len() as f64;
        // Sources are transformed in batches: the FFT engine spreads a batch over the cores.
        // A batch holds at most 256 MiB of fields (and at least one).
        let budget = (256usize << 20) / (16 * n);
        let batch = (4 * rayon::current_num_threads())
            .min(budget)
            .clamp(1, sources.len());
        crate::memory::check_fits(
            crate::memory::bytes(&[z.len() + 2 * batch + 2, n, 16]),
            || format!("{} image planes of {}×{}", z.len(), grid.ny, grid.nx),
            "use fewer planes or a smaller specimen",
        )?;
        let mut buffer = vec![Complex::<f64>::default(); batch * n];
        let mut out = vec![0.0; z.len() * n];
        let total = sources.len() * z.len();
        let mut done = 0;
        for (plane, &zk) in out.chunks_mut(n).zip(z) {
            let pass: Vec<Complex<f64>> = self
                .values
                .iter()
                .zip(&c.kz)
                .map(|(p, kz)| p * Complex::from_polar(1.0, kz * zk))
                .collect();
            for chunk in sources.chunks(batch) {
                let fields = &mut buffer[..chunk.len() * n];
                fields
                    .par_chunks_mut(n)
                    .zip(chunk)
                    .for_each(|(field, &(sy, sx))| {
                        field.fill(Complex::default());
                        for (&idx, p) in c.index.iter().zip(&pass) {
                            let (iy, ix) = (idx / nx, idx % nx);
                            let from = ((iy + ny - sy) % ny) * nx + (ix + nx - sx) % nx;
                            field[idx] = p * spectrum[from];
                        }
                    });
                c.fft.inverse(fields);
                plane.par_iter_mut().enumerate().for_each(|(j, v)| {
                    *v += weight
                        * (0..chunk.len())
                            .map(|s| fields[s * n + j].norm_sqr())
                            .sum::<f64>();
                });
                done += chunk.len();
                observer(done, total);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Grid;
    use crate::pupil::Objective;
    use std::f64::consts::{PI, TAU};

    fn objective() -> Objective {
        Objective::new(500e-9, 0.5, 1.0).unwrap()
    }

    /// A grating along x of `cycles` periods over the grid: `1 + a·cos(2π cycles x/n)`.
    fn grating(n: usize, cycles: usize, a: Complex<f64>) -> Vec<Complex<f64>> {
        (0..n * n)
            .map(|i| {
                let x = (i % n) as f64;
                1.0 + a * (TAU * cycles as f64 * x / n as f64).cos()
            })
            .collect()
    }

    /// A phase grating along x of `cycles` periods over the grid: `exp(iφ cos(2π cycles x/n))`.
    fn phase_grating(n: usize, cycles: usize, phi: f64) -> Vec<Complex<f64>> {
        (0..n * n)
            .map(|i| {
                let x = (i % n) as f64;
                Complex::from_polar(1.0, phi * (TAU * cycles as f64 * x / n as f64).cos())
            })
            .collect()
    }

    /// Every frequency `(fx, fy)` of an `n × n` grid of frequency step `step`.
    fn frequencies(n: usize, step: f64) -> Vec<(f64, f64)> {
        let r = (-(n as i64) / 2..(n as i64) / 2).map(|k| k as f64 * step);
        r.clone()
            .flat_map(|y| r.clone().map(move |x| (x, y)))
            .collect()
    }

    /// The image's cosine coefficient at `cycles` periods over the grid, on the first row.
    fn cosine(image: &[f64], n: usize, cycles: usize) -> f64 {
        2.0 / n as f64
            * (0..n)
                .map(|x| image[x] * (TAU * (cycles * x) as f64 / n as f64).cos())
                .sum::<f64>()
    }

    #[test]
    fn blank_specimen_is_bright_in_brightfield_and_dark_in_darkfield() {
        let n = 64;
        let pupil = Pupil::new(objective(), Grid::square(n, 200e-9).unwrap()).unwrap();
        let blank = vec![Complex::new(1.0, 0.0); n * n];
        for na in [0.0, 0.2, 0.5] {
            let image = pupil
                .image(&blank, &Condenser::new(na), &[0.0, 1e-6], |_, _| {})
                .unwrap();
            assert!(image.iter().all(|v| (v - 1.0).abs() < 1e-12), "NA_c {na}");
        }
        let dark = Condenser {
            inner_na: 0.55,
            ..Condenser::new(0.7)
        };
        let image = pupil.image(&blank, &dark, &[0.0], |_, _| {}).unwrap();
        assert!(image.iter().all(|v| v.abs() < 1e-20));
        // A weak phase object in darkfield: its image is second order in the phase.
        let bump = |phi: f64| -> Vec<Complex<f64>> {
            (0..n * n)
                .map(|i| {
                    let (y, x) = ((i / n) as f64 - 32.0, (i % n) as f64 - 32.0);
                    Complex::from_polar(1.0, phi * (-(x * x + y * y) / 8.0).exp())
                })
                .collect()
        };
        let total = |phi| {
            pupil
                .image(&bump(phi), &dark, &[0.0], |_, _| {})
                .unwrap()
                .iter()
                .sum::<f64>()
        };
        let ratio = total(0.02) / total(0.01);
        assert!((ratio - 4.0).abs() < 0.01, "{ratio}");
    }

    /// For a weak amplitude grating `1 + m cos`, the image's cosine coefficient is exactly
    /// `m/S · Σ_s P(s)[P(s + f₀) + P(s − f₀)]` over the `S` source directions (Hopkins' weak-
    /// object transfer), here counted on the grid; with the condenser filling the pupil it is
    /// `2m` times the incoherent OTF `(2/π)(acos ν − ν√(1 − ν²))`, `ν = f₀λ/(2 NA)`.
    #[test]
    fn weak_amplitude_gratings_follow_the_partially_coherent_transfer() {
        let n = 128;
        let d = 125e-9;
        let obj = objective();
        let pupil = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
        let fc = obj.cutoff();
        let step = 1.0 / (n as f64 * d);
        let m = 0.01;
        for sigma in [0.3, 0.7, 1.0] {
            let condenser = Condenser::new(sigma * obj.na);
            let inside = |x: f64, y: f64, lim: f64| x.hypot(y) <= lim * (1.0 + 1e-12);
            let source: Vec<(f64, f64)> = frequencies(n, step)
                .into_iter()
                .filter(|&(x, y)| inside(x, y, condenser.na / obj.wave.wavelength))
                .collect();
            for cycles in [2, 5, 9, 13, 20, 27, 31] {
                let f0 = step * cycles as f64;
                let spec = grating(n, cycles, Complex::new(m, 0.0));
                let image = pupil.image(&spec, &condenser, &[0.0], |_, _| {}).unwrap();
                let got = cosine(&image, n, cycles);
                let count: f64 = source
                    .iter()
                    .map(|&(x, y)| {
                        let p = |dx: f64| f64::from(u8::from(inside(x + dx, y, fc)));
                        p(0.0) * (p(f0) + p(-f0))
                    })
                    .sum();
                let want = m * count / source.len() as f64;
                assert!(
                    (got - want).abs() < 1e-12,
                    "σ {sigma}, {cycles} cycles: {got} vs {want}"
                );
                if sigma == 1.0 {
                    let nu = f0 / (2.0 * fc);
                    let otf = if nu < 1.0 {
                        2.0 / PI * (nu.acos() - nu * (1.0 - nu * nu).sqrt())
                    } else {
                        0.0
                    };
                    assert!(
                        (got - 2.0 * m * otf).abs() < 0.03 * 2.0 * m,
                        "{nu}: {got} {otf}"
                    );
                }
            }
        }
    }

    /// A weak phase grating `exp(iφ cos 2πf₀x)` under coherent light: invisible in focus, and
    /// with defocus `z` the contrast `2φ sin((k − kz(f₀)) z)` (exact angular spectrum; the
    /// part odd in `φ`, so second order drops out). A partially coherent condenser washes the
    /// defocus contrast out.
    #[test]
    fn weak_phase_gratings_show_with_defocus() {
        let n = 128;
        let d = 125e-9;
        let obj = objective();
        let pupil = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
        let cycles = 16;
        let f0 = cycles as f64 / (n as f64 * d);
        let phi = 0.01;
        let z = [0.0, 1e-6, 2.5e-6];
        let phase = |p: f64| phase_grating(n, cycles, p);
        let k = obj.wave.k();
        let kz = (k * k - (TAU * f0).powi(2)).sqrt();
        let coherent = Condenser::new(0.0);
        let plus = pupil.image(&phase(phi), &coherent, &z, |_, _| {}).unwrap();
        let minus = pupil.image(&phase(-phi), &coherent, &z, |_, _| {}).unwrap();
        for (p, &zk) in z.iter().enumerate() {
            let odd: Vec<f64> = (0..n)
                .map(|x| 0.5 * (plus[p * n * n + x] - minus[p * n * n + x]))
                .collect();
            let got = cosine(&odd, n, cycles);
            let want = 2.0 * phi * ((k - kz) * zk).sin();
            assert!((got - want).abs() < 1e-6, "z {zk}: {got} vs {want}");
        }
        let partial = pupil
            .image(&phase(phi), &Condenser::new(0.4), &z, |_, _| {})
            .unwrap();
        let c = |img: &[f64], p: usize| cosine(&img[p * n * n..p * n * n + n], n, cycles).abs();
        assert!(
            c(&partial, 2) < 0.8 * c(&plus, 2),
            "{} {}",
            c(&partial, 2),
            c(&plus, 2)
        );
        // A coarser sampling of the source (a quarter of the directions) stays close.
        let coarse = Condenser {
            stride: 2,
            ..Condenser::new(0.4)
        };
        let sparse = pupil.image(&phase(phi), &coarse, &z, |_, _| {}).unwrap();
        let err = (c(&sparse, 2) - c(&partial, 2)).abs() / c(&partial, 2);
        assert!(err < 0.05, "{err}");
    }

    /// Zernike phase contrast: an annular condenser and a quarter-wave ring of transmission
    /// `T` over its image. A weak phase grating's image coefficient (its part odd in `φ`) is
    /// `φ/S · Σ_s Re[i(conj P(s) P(s + f₀) − P(s) conj P(s − f₀))]`, counted here with the
    /// ring's complex pupil. The mean is `T`; brightfield shows the grating hardly at all.
    #[test]
    fn phase_rings_make_weak_phase_visible_in_focus() {
        let n = 128;
        let d = 125e-9;
        let obj = objective();
        let (inner, outer, psi, t) = (0.3, 0.35, PI / 2.0, 0.25);
        let condenser = Condenser {
            inner_na: inner,
            ..Condenser::new(outer)
        };
        let mut pupil = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
        let plain = pupil.clone();
        pupil.phase_ring(inner, outer, psi, t).unwrap();
        let phi = 0.01;
        let lambda = obj.wave.wavelength;
        let step = 1.0 / (n as f64 * d);
        let in_na = |x: f64, y: f64, lo: f64, hi: f64| {
            let na = x.hypot(y) * lambda;
            na >= lo * (1.0 - 1e-12) && na <= hi * (1.0 + 1e-12)
        };
        let p = |x: f64, y: f64| -> Complex<f64> {
            if !in_na(x, y, 0.0, obj.na) {
                Complex::default()
            } else if in_na(x, y, inner, outer) {
                Complex::from_polar(t.sqrt(), psi)
            } else {
                Complex::new(1.0, 0.0)
            }
        };
        let sources: Vec<(f64, f64)> = frequencies(n, step)
            .into_iter()
            .filter(|&(x, y)| in_na(x, y, inner, outer))
            .collect();
        let odd = |pupil: &Pupil, cycles: usize| -> f64 {
            let a = pupil
                .image(
                    &phase_grating(n, cycles, phi),
                    &condenser,
                    &[0.0],
                    |_, _| {},
                )
                .unwrap();
            let b = pupil
                .image(
                    &phase_grating(n, cycles, -phi),
                    &condenser,
                    &[0.0],
                    |_, _| {},
                )
                .unwrap();
            let row: Vec<f64> = (0..n).map(|x| 0.5 * (a[x] - b[x])).collect();
            cosine(&row, n, cycles)
        };
        for cycles in [1, 3, 8, 20] {
            let f0 = step * cycles as f64;
            let want = phi / sources.len() as f64
                * sources
                    .iter()
                    .map(|&(x, y)| {
                        let (a, b, c) = (p(x, y), p(x + f0, y), p(x - f0, y));
                        (Complex::<f64>::i() * (a.conj() * b - a * c.conj())).re
                    })
                    .sum::<f64>();
            let got = odd(&pupil, cycles);
            // The part odd in φ is exact to O(φ³).
            assert!(
                (got - want).abs() < 1e-3 * phi,
                "{cycles} cycles: {got} vs {want}"
            );
        }
        let mean = pupil
            .image(
                &vec![Complex::new(1.0, 0.0); n * n],
                &condenser,
                &[0.0],
                |_, _| {},
            )
            .unwrap()[0];
        assert!((mean - t).abs() < 1e-12, "{mean}");
        // At 3 cycles the grating shows with 81 % of the ideal `2√T sin ψ φ`; brightfield under
        // the same annulus, with a real pupil, shows nothing of a weak phase in focus.
        let ideal = 2.0 * t.sqrt() * psi.sin() * phi;
        assert!(odd(&pupil, 3) > 0.7 * ideal && odd(&plain, 3).abs() < 1e-12);
        assert!(pupil.phase_ring(0.4, 0.3, psi, t).is_err());
        assert!(pupil.phase_ring(0.1, 0.3, psi, 0.0).is_err());
    }

    /// DIC of a phase ramp `exp(2πi g x)` (a uniform gradient): the image is uniform at
    /// `sin²(π s g − β/2)`, for shears of a fraction of a pixel too; a clear field at
    /// `sin²(β/2)`.
    #[test]
    fn dic_images_a_phase_gradient_as_the_sine_of_its_shear() {
        let n = 64;
        let d = 200e-9;
        let pupil = Pupil::new(objective(), Grid::square(n, d).unwrap()).unwrap();
        let coherent = Condenser::new(0.0);
        for (cycles, shear, bias) in [
            (0, 130e-9, PI / 2.0),
            (3, 130e-9, PI / 2.0),
            (-5, 77e-9, 0.6),
            (9, 250e-9, -1.0),
        ] {
            let g = cycles as f64 / (n as f64 * d);
            let ramp: Vec<Complex<f64>> = (0..n * n)
                .map(|i| Complex::from_polar(1.0, TAU * g * (i % n) as f64 * d))
                .collect();
            let dic = Dic {
                shear: (shear, 0.0),
                bias,
            };
            let spec = dic.specimen(&pupil, &ramp).unwrap();
            let image = pupil.image(&spec, &coherent, &[0.0], |_, _| {}).unwrap();
            let want = (PI * shear * g - 0.5 * bias).sin().powi(2);
            assert!(
                image.iter().all(|v| (v - want).abs() < 1e-12),
                "{cycles} cycles: {} vs {want}",
                image[0]
            );
        }
        let bad = Dic {
            shear: (f64::NAN, 0.0),
            bias: 0.0,
        };
        assert!(
            bad.specimen(&pupil, &vec![Complex::new(1.0, 0.0); n * n])
                .is_err()
        );
    }

    #[test]
    fn bad_specimens_and_condensers_are_refused() {
        let n = 32;
        let pupil = Pupil::new(objective(), Grid::square(n, 200e-9).unwrap()).unwrap();
        let blank = vec![Complex::new(1.0, 0.0); n * n];
        let e = |s: &[Complex<f64>], c: Condenser| {
            pupil
                .image(s, &c, &[0.0], |_, _| {})
                .unwrap_err()
                .to_string()
        };
        assert!(e(&blank[1..], Condenser::new(0.1)).contains("32×32"));
        let mut nan = blank.clone();
        nan[3] = Complex::new(f64::NAN, 0.0);
        assert!(e(&nan, Condenser::new(0.1)).contains("non-finite"));
        assert!(e(&blank, Condenser::new(0.9)).contains("λ/(2 (NA + NA_c))"));
        let inverted = Condenser {
            inner_na: 0.3,
            ..Condenser::new(0.2)
        };
        assert!(e(&blank, inverted).contains("inner NA"));
        let thin = Condenser {
            inner_na: 0.2005,
            ..Condenser::new(0.201)
        };
        assert!(e(&blank, thin).contains("larger grid"));
        let none = Condenser {
            stride: 0,
            ..Condenser::new(0.2)
        };
        assert!(e(&blank, none).contains("stride"));
    }
}
