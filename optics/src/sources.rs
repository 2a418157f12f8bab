//! Light sources: tilted plane waves and Gaussian beams, sampled on a [`Grid`].
//!
//! Conventions: time dependence `exp(−iωt)`, so a wave travelling towards `+z` is `exp(+ikz)`;
//! `k = 2π·n/λ` with `λ` the vacuum wavelength and `n` the index of the medium ([`Wave`]). SI
//! units: metres and radians. Fields are single fields (batch 1) carrying the vacuum wavelength.
//!
//! ```
//! use photonflow_optics::grid::{Grid, Wave};
//! use photonflow_optics::sources::{GaussianBeam, plane_wave};
//!
//! let grid = Grid::square(256, 4e-6)?;
//! let wave = Wave::vacuum(632.8e-9)?;
//! let tilted = plane_wave::<f32>(&grid, wave, 1.0, (0.01, 0.0))?;      // 10 mrad towards +x
//! let beam = GaussianBeam::new(100e-6).with_waist_z(5e-3);             // waist 5 mm downstream
//! let field = beam.field::<f64>(&grid, wave)?;                         // converging at z = 0
//! assert!((field.power()[0] - beam.power()).abs() < 1e-6 * beam.power());
//! # Ok::<(), photonflow_optics::error::OpticsError>(())
//! ```

use std::f64::consts::{PI, TAU};

use num_complex::Complex;

use crate::elements::{describe_grid, window};
use crate::error::{Result, invalid, positive};
use crate::field::{Field, Real, cplx};
use crate::grid::{Grid, Wave};
use crate::units::format_length;

fn check_wave(wave: &Wave) -> Result<()> {
    positive("wavelength", wave.wavelength)?;
    positive("refractive index", wave.index)?;
    Ok(())
}

fn finite(name: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(invalid(
            name,
            format!("{v} is not finite; give a finite number"),
        ))
    }
}

/// The largest tilts `(θx_max, θy_max)` (rad) a plane wave can have on `grid` without aliasing:
/// `asin(λ_n/(2·pitch))`, or π/2 when the pitch is below half a wavelength in the medium.
pub fn max_tilt(grid: &Grid, wave: Wave) -> (f64, f64) {
    let lambda = wave.lambda();
    let m = |d: f64| (lambda / (2.0 * d)).min(1.0).asin();
    (m(grid.dx), m(grid.dy))
}

/// A tilted plane wave `E = A·exp(i k (sin θx · x + sin θy · y))`, `tilt = (θx, θy)` in radians
/// (`θx > 0` travels towards `+x`), phase 0 at the origin, `k = 2π n/λ`.
///
/// Errors: a tilt with `|sin θ| ≥ 1` or `sin²θx + sin²θy ≥ 1` (not a propagating wave), and a tilt
/// whose transverse frequency `sin θ/λ_n` reaches the grid's Nyquist frequency `1/(2·pitch)`
/// (it would alias to another direction); the message gives [`max_tilt`] for this pitch.
pub fn plane_wave<T: Real>(
    grid: &Grid,
    wave: Wave,
    amplitude: f64,
    tilt: (f64, f64),
) -> Result<Field<T>> {
    check_wave(&wave)?;
    finite("amplitude", amplitude)?;
    finite("tilt", tilt.0)?;
    finite("tilt", tilt.1)?;
    let (sx, sy) = (tilt.0.sin(), tilt.1.sin());
    if sx.abs() >= 1.0 || sy.abs() >= 1.0 || sx * sx + sy * sy >= 1.0 {
        return Err(invalid(
            "tilt",
            format!(
                "(θx, θy) = ({}, {}) rad gives direction sines ({sx:.6}, {sy:.6}) whose squares \
                 sum to ≥ 1: not a propagating plane wave; give smaller tilts",
                tilt.0, tilt.1
            ),
        ));
    }
    let lambda = wave.lambda();
    let (max_x, max_y) = max_tilt(grid, wave);
    for (name, s, theta, d, max) in [
        ("x", sx, tilt.0, grid.dx, max_x),
        ("y", sy, tilt.1, grid.dy, max_y),
    ] {
        if s.abs() / lambda >= 0.5 / d * (1.0 - 1e-12) {
            return Err(invalid(
                "tilt",
                format!(
                    "θ{name} = {theta} rad ({:.4}°) has transverse frequency sinθ/λ = {:.4e} \
                     cycles/m, at or above the Nyquist frequency 1/(2d{name}) = {:.4e} of {}: it \
                     would alias. The maximum tilt for a {} pitch at λ/n = {} is {:.6} rad \
                     ({:.4}°); use a smaller tilt or a finer pitch",
                    theta.to_degrees(),
                    s.abs() / lambda,
                    0.5 / d,
                    describe_grid(grid),
                    format_length(d),
                    format_length(lambda),
                    max,
                    max.to_degrees()
                ),
            ));
        }
    }
    let k = TAU / lambda;
    let px: Vec<Complex<f64>> = grid
        .x()
        .into_iter()
        .map(|x| Complex::from_polar(amplitude, k * sx * x))
        .collect();
    let py: Vec<Complex<f64>> = grid
        .y()
        .into_iter()
        .map(|y| Complex::from_polar(1.0, k * sy * y))
        .collect();
    let mut data = Vec::with_capacity(grid.len());
    for &wy in &py {
        data.extend(px.iter().map(|&wx| cplx::<T>(wx * wy)));
    }
    Field::from_vec(data, *grid, wave.wavelength)
}

/// A fundamental (TEM00) Gaussian beam travelling towards `+z`.
///
/// With `z` measured from the waist, `r` from the beam axis at `centre`, `k = 2π n/λ`,
/// `z_R = k w0²/2 = π w0² n/λ` (Rayleigh range), `w(z) = w0 √(1 + (z/z_R)²)`,
/// `R(z) = z (1 + (z_R/z)²)` and Gouy phase `ψ(z) = atan(z/z_R)`:
///
/// `E = A (w0/w) exp(−r²/w²) exp(i (k z + k r²/(2R) − ψ))`,
///
/// the exact solution of the paraxial wave equation `∇⊥²U + 2ik ∂U/∂z = 0` for `E = U exp(ikz)`
/// (time dependence `exp(−iωt)`; `R > 0` beyond the waist, a diverging wavefront). The power
/// `∫|E|² dA = π w0² A²/2` is the same in every plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianBeam {
    /// Waist radius `w0` (1/e² intensity radius at the waist), metres.
    pub waist: f64,
    /// Position of the waist along z relative to the sampled plane, metres: `> 0` means the
    /// waist lies downstream (the beam converges through the plane), `< 0` upstream.
    pub waist_z: f64,
    /// Beam axis `(x, y)`, metres.
    pub centre: (f64, f64),
    /// Peak amplitude `A` at the waist (field units; intensity `A²`).
    pub amplitude: f64,
}

impl GaussianBeam {
    /// A beam of waist radius `waist` (m), waist in the sampled plane, on axis, amplitude 1.
    pub fn new(waist: f64) -> Self {
        Self {
            waist,
            waist_z: 0.0,
            centre: (0.0, 0.0),
            amplitude: 1.0,
        }
    }

    /// The same beam with its waist at `z = waist_z` (m) relative to the sampled plane.
    pub fn with_waist_z(self, waist_z: f64) -> Self {
        Self { waist_z, ..self }
    }

    /// The same beam on the axis `centre` (m).
    pub fn with_centre(self, centre: (f64, f64)) -> Self {
        Self { centre, ..self }
    }

    /// The same beam with peak amplitude `amplitude` at the waist.
    pub fn with_amplitude(self, amplitude: f64) -> Self {
        Self { amplitude, ..self }
    }

    /// Rayleigh range `z_R = π w0² n/λ` (m).
    pub fn rayleigh_range(&self, wave: Wave) -> f64 {
        PI * self.waist * self.waist / wave.lambda()
    }

    /// 1/e² intensity radius `w(z) = w0 √(1 + (z/z_R)²)` (m) at distance `z` (m) from the waist.
    pub fn radius_at(&self, z: f64, wave: Wave) -> f64 {
        let zr = self.rayleigh_range(wave);
        self.waist * (1.0 + (z / zr).powi(2)).sqrt()
    }

    /// Wavefront radius of curvature `R(z) = z (1 + (z_R/z)²)` (m) at distance `z` (m) from the
    /// waist: positive (diverging) for `z > 0`, infinite at the waist.
    pub fn curvature_radius_at(&self, z: f64, wave: Wave) -> f64 {
        if z == 0.0 {
            return f64::INFINITY;
        }
        let zr = self.rayleigh_range(wave);
        z * (1.0 + (zr / z).powi(2))
    }

    /// Gouy phase `ψ(z) = atan(z/z_R)` (rad) at distance `z` (m) from the waist; the field carries
    /// `exp(−iψ)` relative to `exp(ikz)`.
    pub fn gouy_phase_at(&self, z: f64, wave: Wave) -> f64 {
        (z / self.rayleigh_range(wave)).atan()
    }

    /// The beam's power `π w0² A²/2` (W for a field in √(W)/m).
    pub fn power(&self) -> f64 {
        0.5 * PI * self.waist * self.waist * self.amplitude * self.amplitude
    }

    /// The complex field at `(x, y)` (m, lab frame: `r` is measured from [`centre`](Self::centre))
    /// and distance `z` (m) from the waist (see the type docs for the formula). Computed as
    /// `A exp(ikz) · exp(ik r²/(2q)) / (1 + i z/z_R)` with `q = z − i z_R`, which is regular at the
    /// waist.
    pub fn value_at(&self, x: f64, y: f64, z: f64, wave: Wave) -> Complex<f64> {
        let k = wave.k();
        let zr = self.rayleigh_range(wave);
        let r2 = (x - self.centre.0).powi(2) + (y - self.centre.1).powi(2);
        // i k r²/(2q), q = z − i zR: 1/q = (z + i zR)/(z² + zR²).
        let den = z * z + zr * zr;
        let gauss = Complex::new(-k * r2 * zr / (2.0 * den), k * r2 * z / (2.0 * den)).exp();
        let envelope = gauss / Complex::new(1.0, z / zr);
        Complex::from_polar(self.amplitude, k * z) * envelope
    }

    /// The beam sampled on `grid` in the plane `z = 0`, its waist being at `z = waist_z` (the
    /// waist field propagated by `−waist_z`): `E(x, y) = value_at(x, y, −waist_z)`.
    ///
    /// Errors, each saying what to change: a waist below 2 pitches (the beam's angular spectrum
    /// would reach the Nyquist frequency), and a beam whose 1/e² circle at the plane,
    /// `|centre| + w(−waist_z)` along each axis, does not fit inside the window.
    pub fn field<T: Real>(&self, grid: &Grid, wave: Wave) -> Result<Field<T>> {
        check_wave(&wave)?;
        positive("beam waist", self.waist)?;
        finite("waist position", self.waist_z)?;
        finite("beam centre", self.centre.0)?;
        finite("beam centre", self.centre.1)?;
        finite("beam amplitude", self.amplitude)?;
        let pitch = grid.dx.max(grid.dy);
        if self.waist < 2.0 * pitch {
            return Err(invalid(
                "beam waist",
                format!(
                    "w0 = {} is only {:.2} pitches of {}; a Gaussian beam needs a waist of at \
                     least 2 pitches to be resolved: use a pitch ≤ {} or a waist ≥ {}",
                    format_length(self.waist),
                    self.waist / pitch,
                    describe_grid(grid),
                    format_length(self.waist / 2.0),
                    format_length(2.0 * pitch)
                ),
            ));
        }
        let z = -self.waist_z;
        let w = self.radius_at(z, wave);
        let ((x0, x1), (y0, y1)) = window(grid);
        let (cx, cy) = self.centre;
        let fits = cx - w >= x0 && cx + w <= x1 && cy - w >= y0 && cy + w <= y1;
        if !fits {
            let (ex, ey) = grid.extent();
            let need = |c: f64, d: f64| (2.0 * (c.abs() + w) / d).ceil() as usize + 1;
            return Err(invalid(
                "beam size",
                format!(
                    "the beam's 1/e² diameter at the plane is 2w = {} (waist {} at z = {} from \
                     the plane, centre ({}, {})), which does not fit inside the {} × {} window of \
                     {}; use at least {}×{} samples at this pitch, a larger pitch, a smaller \
                     waist distance or a centred beam",
                    format_length(2.0 * w),
                    format_length(self.waist),
                    format_length(self.waist_z),
                    format_length(cx),
                    format_length(cy),
                    format_length(ex),
                    format_length(ey),
                    describe_grid(grid),
                    need(cy, grid.dy),
                    need(cx, grid.dx)
                ),
            ));
        }
        Field::from_fn(*grid, wave.wavelength, |x, y| self.value_at(x, y, z, wave))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UM: f64 = 1e-6;

    use crate::error::err_text as err;

    #[test]
    fn plane_wave_phase_gradient_is_k_sin_theta() {
        let grid = Grid::new(128, 96, UM, 1.5 * UM).unwrap();
        let wave = Wave::new(0.8 * UM, 1.25).unwrap();
        let k = wave.k();
        let (tx, ty) = (0.2, -0.1);
        let f = plane_wave::<f64>(&grid, wave, 2.0, (tx, ty)).unwrap();
        let d = f.data();
        assert!(d.iter().all(|z| (z.norm() - 2.0).abs() < 1e-12));
        for i in [0, 40, 95] {
            for j in [0, 63, 126] {
                let gx = (d[i * 128 + j + 1] * d[i * 128 + j].conj()).arg() / grid.dx;
                assert!((gx - k * tx.sin()).abs() < 1e-9 * k, "{gx}");
            }
        }
        for i in [0, 50, 94] {
            let gy = (d[(i + 1) * 128 + 7] * d[i * 128 + 7].conj()).arg() / grid.dy;
            assert!((gy - k * ty.sin()).abs() < 1e-9 * k, "{gy}");
        }
        // Phase 0 at the origin (sample ⌊n/2⌋), and the f32 field agrees.
        assert!((d[48 * 128 + 64] - Complex::new(2.0, 0.0)).norm() < 1e-12);
        let g = plane_wave::<f32>(&grid, wave, 2.0, (tx, ty)).unwrap();
        assert!(
            g.data()
                .iter()
                .zip(d)
                .all(|(a, b)| (a.re as f64 - b.re).abs() < 1e-5)
        );
    }

    #[test]
    fn plane_wave_refuses_aliasing_and_evanescent_tilts() {
        let grid = Grid::square(64, UM).unwrap();
        let wave = Wave::vacuum(0.5 * UM).unwrap();
        // Nyquist: sin θ < λ/(2 dx) = 0.25 → θ < 0.25268 rad.
        let (mx, _) = max_tilt(&grid, wave);
        assert!((mx - 0.25f64.asin()).abs() < 1e-15);
        let e = err(plane_wave::<f32>(&grid, wave, 1.0, (0.0, 0.3)));
        assert!(e.contains("θy") && e.contains("0.252680 rad"), "{e}");
        assert!(plane_wave::<f32>(&grid, wave, 1.0, (0.25, 0.0)).is_ok());
        let fine = Grid::square(64, 0.1 * UM).unwrap();
        assert_eq!(max_tilt(&fine, wave).0, std::f64::consts::FRAC_PI_2);
        let e = err(plane_wave::<f32>(&fine, wave, 1.0, (1.0, 1.0)));
        assert!(e.contains("not a propagating"), "{e}");
        assert!(plane_wave::<f32>(&fine, wave, 1.0, (std::f64::consts::FRAC_PI_2, 0.0)).is_err());
        assert!(plane_wave::<f32>(&fine, wave, f64::NAN, (0.0, 0.0)).is_err());
    }

    fn second_moment_radius(f: &Field<f64>, cx: f64) -> f64 {
        let g = *f.grid();
        let xs = g.x();
        let (mut m0, mut m2) = (0.0, 0.0);
        for row in f.data().chunks(g.nx) {
            for (z, &x) in row.iter().zip(&xs) {
                m0 += z.norm_sqr();
                m2 += z.norm_sqr() * (x - cx).powi(2);
            }
        }
        // I ∝ exp(−2x²/w²): ⟨x²⟩ = w²/4.
        2.0 * (m2 / m0).sqrt()
    }

    #[test]
    fn gaussian_power_and_radius_match_the_analytic_beam() {
        let grid = Grid::square(256, UM).unwrap();
        let wave = Wave::vacuum(0.5 * UM).unwrap();
        let beam = GaussianBeam::new(20.0 * UM)
            .with_amplitude(3.0)
            .with_centre((5.0 * UM, -7.0 * UM));
        let zr = beam.rayleigh_range(wave);
        assert!((zr - PI * 400e-12 / 0.5e-6).abs() < 1e-15);
        for waist_z in [0.0, 1.5 * zr, -2.0 * zr] {
            let b = beam.with_waist_z(waist_z);
            let f = b.field::<f64>(&grid, wave).unwrap();
            let expect = PI * (20.0 * UM).powi(2) / 2.0 * 9.0;
            assert!((b.power() - expect).abs() < 1e-15 * expect);
            let p = f.power()[0];
            assert!(
                (p - expect).abs() < 1e-6 * expect,
                "z_w = {waist_z}: {p} vs {expect}"
            );
            let w = second_moment_radius(&f, 5.0 * UM);
            let w_expect = b.radius_at(-waist_z, wave);
            assert!((w - w_expect).abs() < 1e-6 * w_expect, "{w} vs {w_expect}");
        }
        assert!((beam.radius_at(zr, wave) - 20.0 * UM * 2f64.sqrt()).abs() < 1e-18);
        assert!((beam.curvature_radius_at(zr, wave) - 2.0 * zr).abs() < 1e-15);
        assert!(beam.curvature_radius_at(0.0, wave).is_infinite());
        assert!((beam.gouy_phase_at(zr, wave) - std::f64::consts::FRAC_PI_4).abs() < 1e-15);
    }

    #[test]
    fn value_at_solves_the_paraxial_wave_equation() {
        // E = U exp(ikz) with ∇⊥²U + 2ik ∂U/∂z = 0 (exp(−iωt) convention).
        let wave = Wave::new(0.6 * UM, 1.5).unwrap();
        let beam = GaussianBeam::new(15.0 * UM)
            .with_centre((2.0 * UM, 1.0 * UM))
            .with_amplitude(0.7);
        let (k, zr, w0) = (wave.k(), beam.rayleigh_range(wave), beam.waist);
        let u = |x: f64, y: f64, z: f64| {
            beam.value_at(x, y, z, wave) * Complex::from_polar(1.0, -k * z)
        };
        let (h, hz) = (w0 * 1e-3, zr * 1e-4);
        for (x, y, z) in [
            (0.0, 0.0, 0.0),
            (12.0 * UM, -3.0 * UM, 0.4 * zr),
            (-20.0 * UM, 9.0 * UM, -1.3 * zr),
            (5.0 * UM, 30.0 * UM, 3.0 * zr),
        ] {
            let c = u(x, y, z);
            let lap = (u(x + h, y, z) + u(x - h, y, z) + u(x, y + h, z) + u(x, y - h, z) - c * 4.0)
                / (h * h);
            let dz = (u(x, y, z + hz) - u(x, y, z - hz)) / (2.0 * hz);
            let residual = lap + Complex::new(0.0, 2.0 * k) * dz;
            let scale = lap.norm() + (2.0 * k * dz).norm();
            assert!(
                residual.norm() < 1e-5 * scale,
                "({x}, {y}, {z}): {} vs {scale}",
                residual.norm()
            );
            // A wrong sign of the curvature or of the Gouy phase would fail it.
            let wrong = lap - Complex::new(0.0, 2.0 * k) * dz;
            assert!(wrong.norm() > 0.1 * scale);
        }
        // On axis the phase relative to exp(ikz) is the Gouy phase −atan(z/zR); |E| = A w0/w.
        for z in [-3.0 * zr, -0.5 * zr, 0.0, 0.2 * zr, zr, 10.0 * zr] {
            let e = beam.value_at(2.0 * UM, 1.0 * UM, z, wave);
            let rel = e * Complex::from_polar(1.0, -k * z);
            assert!((rel.arg() + (z / zr).atan()).abs() < 1e-9, "z = {z}");
            assert!((rel.arg() + beam.gouy_phase_at(z, wave)).abs() < 1e-9);
            assert!((e.norm() - 0.7 * w0 / beam.radius_at(z, wave)).abs() < 1e-12);
        }
    }

    #[test]
    fn a_waist_downstream_means_a_converging_wavefront() {
        // Waist at +d: the plane is at z = −d from the waist, R(−d) < 0, and the phase
        // k r²/(2R) matches a converging lens exp(−ik r²/(2|R|)).
        let grid = Grid::square(128, UM).unwrap();
        let wave = Wave::vacuum(0.5 * UM).unwrap();
        let beam = GaussianBeam::new(10.0 * UM).with_waist_z(1e-3);
        let r = beam.curvature_radius_at(-1e-3, wave);
        assert!(r < 0.0);
        let f = beam.field::<f64>(&grid, wave).unwrap();
        let row = &f.data()[64 * 128..65 * 128];
        let xs = grid.x();
        for j in [70, 80, 90] {
            let dphi = (row[j] * row[64].conj()).arg();
            let expect = wave.k() * xs[j] * xs[j] / (2.0 * r);
            assert!((dphi - expect).abs() < 1e-9, "{dphi} vs {expect}");
        }
    }

    #[test]
    fn gaussian_sampling_errors_say_what_to_change() {
        let grid = Grid::square(64, UM).unwrap();
        let wave = Wave::vacuum(0.5 * UM).unwrap();
        let e = err(GaussianBeam::new(1.5 * UM).field::<f32>(&grid, wave));
        assert!(
            e.contains("at least 2 pitches") && e.contains("pitch ≤ 750nm"),
            "{e}"
        );
        assert!(
            GaussianBeam::new(2.0 * UM)
                .field::<f32>(&grid, wave)
                .is_ok()
        );
        // w0 = 10 µm (zR = 628 µm) fits a 64 µm window at the waist but not 3 mm away (w ≈ 49 µm).
        assert!(
            GaussianBeam::new(10.0 * UM)
                .field::<f32>(&grid, wave)
                .is_ok()
        );
        let e = err(GaussianBeam::new(10.0 * UM)
            .with_waist_z(3e-3)
            .field::<f32>(&grid, wave));
        assert!(e.contains("does not fit"), "{e}");
        let e = err(GaussianBeam::new(10.0 * UM)
            .with_centre((25.0 * UM, 0.0))
            .field::<f32>(&grid, wave));
        assert!(e.contains("does not fit"), "{e}");
        assert!(GaussianBeam::new(-1.0).field::<f32>(&grid, wave).is_err());
    }
}
