//! What a PSF is of: the scalar field of [`super`]'s model, or the **vectorial** field of an
//! aplanatic objective with the light's polarisation (Richards & Wolf, Proc. R. Soc. A 253,
//! 358 (1959)); and a sample whose index differs from the immersion's, the point source at a
//! depth beneath the interface (Török et al., J. Opt. Soc. Am. A 12, 325 (1995); the scalar
//! form is Gibson & Lanni's aberration).
//!
//! **Vectorial model.** A plane-wave component leaving the pupil at `(fx, fy)` travels at
//! `sin θ = λ f/n` (the immersion's index `n`), azimuth `φ`. The aplanatic objective turns the
//! pupil's radial (p) component of the polarisation into `p̂ = (cos θ cos φ, cos θ sin φ,
//! −sin θ)` and leaves the azimuthal (s) one `ŝ = (−sin φ, cos φ, 0)`; the sine condition
//! gives the amplitude `√cos θ`, and the angular spectrum's Jacobian `1/cos θ`. So the field
//! near focus is three of the scalar model's integrals, with the pupil `P(fx, fy)` times
//!
//! `w(fx, fy) = (e_p p̂ + e_s ŝ) / √cos θ`,  `e_p = e·(cos φ, sin φ)`, `e_s = e·(−sin φ, cos φ)`
//!
//! for the pupil's Jones vector `e`. With `e = x̂` these are Richards & Wolf's `I₀ + I₂ cos 2φ`,
//! `I₂ sin 2φ` and `−2i I₁ cos φ` (tested). The PSF is `Σ |E_j|²`.
//!
//! A **fluorescence** image is the same field by reciprocity: a dipole `μ` at `r` puts
//! `μ · E⁽ᵖ⁾(r)` into the camera's polarisation `p`, where `E⁽ᵖ⁾` is the focus of a
//! `p`-polarised pupil. A freely rotating (isotropic) emitter imaged without an analyser is
//! therefore `Σ_{p = x, y} |E⁽ᵖ⁾|²` ([`Polarisation::Unpolarised`]), and a fixed dipole
//! `Σ_p |μ · E⁽ᵖ⁾|²` ([`Polarisation::Dipole`]).
//!
//! **Index mismatch.** With the source at depth `d` beneath a planar interface into a sample
//! of index `n_s` (the coverslip's index being the immersion's, as objectives are designed),
//! and `z` the nominal defocus (the stage's movement from the focus an index-matched sample
//! would have), every plane wave carries `exp(i (kz_s − kz) d)` beside the defocus
//! `exp(i kz z)`, `kz_s = 2π √((n_s/λ)² − f²)`. Beyond `f = n_s/λ` (an NA above the sample's
//! index) `kz_s` is imaginary: those waves reach the pupil only through the evanescent field,
//! which decays as `exp(−|kz_s| d)` (supercritical-angle fluorescence). The vectorial model
//! also takes the interface's Fresnel transmission `t_s`, `t_p` (complex beyond the critical
//! angle) and the sample's angle `θ_s` in `p̂`. In the paraxial limit the PSF's peak moves to
//! the nominal focus `d·n/n_s` (tested).
//!
//! ```
//! use photonflow_optics::pupil::{Objective, Polarisation, PsfModel, Pupil, Sample};
//! use photonflow_optics::Grid;
//! // NA 1.4 oil, an x-polarised focus 5 µm into water, two planes of 128 × 128
//! let pupil = Pupil::new(Objective::new(520e-9, 1.4, 1.518)?, Grid::square(128, 40e-9)?)?;
//! let model = PsfModel {
//!     vectorial: Some(Polarisation::X),
//!     sample: Some(Sample { index: 1.333, depth: 5e-6 }),
//! };
//! let psf = pupil.psf_with(&[-1e-6, 0.0], &model)?;
//! assert!((psf[..128 * 128].iter().sum::<f64>() - 1.0).abs() < 1e-9);
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

use std::str::FromStr;

use num_complex::Complex;

use crate::error::{Result, invalid};
use crate::polarisation::JonesVector;

use super::{Coords, Objective};

/// The polarisation of a vectorial PSF.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Polarisation {
    /// Unpolarised focus, or a freely rotating (isotropic) fluorescent emitter imaged without
    /// an analyser: the sum of the x- and y-polarised PSFs.
    Unpolarised,
    /// The same Jones vector `(e_x, e_y)` across the pupil (normalised when used).
    /// `(1, 0)`: x; `(1, i)/√2`: left circular (with `exp(−iωt)`, turning from x to y: positive
    /// helicity; see [`crate::polarisation`] for the conventions).
    Jones(JonesVector),
    /// Radial polarisation (the p component only): a strong longitudinal field on the axis.
    Radial,
    /// Azimuthal polarisation (the s component only): dark on the axis.
    Azimuthal,
    /// A fixed dipole emitter along `(x, y, z)` (normalised when used), imaged without an
    /// analyser.
    Dipole([f64; 3]),
}

impl Polarisation {
    /// The Jones vector of linear polarisation along x.
    pub const X: Self = Self::Jones(JonesVector::X);
    /// The Jones vector of linear polarisation along y.
    pub const Y: Self = Self::Jones(JonesVector::Y);
    /// The Jones vector of left circular polarisation `(1, i)/√2`.
    pub const CIRCULAR: Self = Self::Jones(JonesVector::LEFT);

    /// A dipole at polar angle `theta` from the optical axis and azimuth `phi` from x
    /// (radians).
    pub fn dipole(theta: f64, phi: f64) -> Self {
        Self::Dipole([
            theta.sin() * phi.cos(),
            theta.sin() * phi.sin(),
            theta.cos(),
        ])
    }

    /// The same polarisation with its Jones vector or dipole of unit length (checked non-zero
    /// by [`PsfModel::validate`]).
    fn normalised(self) -> Self {
        match self {
            Self::Jones(e) => Self::Jones(e.normalised()),
            Self::Dipole(m) => {
                let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt();
                Self::Dipole(m.map(|v| v / norm))
            }
            other => other,
        }
    }
}

impl FromStr for Polarisation {
    type Err = crate::OpticsError;

    /// `unpolarised` (or `isotropic`), `circular` (left circular), `radial`, `azimuthal`,
    /// `dipole:THETA,PHI` (degrees: from the optical axis, and azimuth from x), or any Jones
    /// vector [`JonesVector`] reads (`x`, `y`, `d`, `a`, `rcp`, `lcp`, `linear:ANGLE`,
    /// `jones:EX,EY`).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "unpolarised" | "unpolarized" | "isotropic" => Self::Unpolarised,
            "circular" => Self::CIRCULAR,
            "radial" => Self::Radial,
            "azimuthal" => Self::Azimuthal,
            _ if !t.starts_with("dipole:") => match t.parse::<JonesVector>() {
                Ok(e) => Self::Jones(e),
                Err(crate::OpticsError::Parse(_)) => {
                    return Err(invalid(
                        "polarisation",
                        format!(
                            "'{s}' is not a polarisation: give unpolarised (an isotropic \
                             emitter), x, y, d, a, rcp, lcp (or circular), linear:ANGLE, \
                             jones:EX,EY, radial, azimuthal or dipole:THETA,PHI (degrees from \
                             the axis and from x, e.g. dipole:90,0 for a dipole along x)"
                        ),
                    ));
                }
                Err(e) => return Err(e),
            },
            _ => {
                let angles = t.strip_prefix("dipole:").map(|a| {
                    a.split(',')
                        .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
                        .collect::<Option<Vec<f64>>>()
                });
                match angles {
                    Some(Some(a)) if a.len() == 2 => {
                        Self::dipole(a[0].to_radians(), a[1].to_radians())
                    }
                    _ => {
                        return Err(invalid(
                            "polarisation",
                            format!(
                                "'{s}' is not a polarisation: give unpolarised (an isotropic \
                                 emitter), x, y, circular, radial, azimuthal or \
                                 dipole:THETA,PHI (degrees from the axis and from x, e.g. \
                                 dipole:90,0 for a dipole along x)"
                            ),
                        ));
                    }
                }
            }
        })
    }
}

/// A sample whose refractive index differs from the immersion's, the point source `depth`
/// metres beneath its planar interface with the coverslip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Refractive index of the sample (1.333 for water, 1.38–1.45 for cells and tissue).
    pub index: f64,
    /// The source's depth beneath the interface, metres (≥ 0).
    pub depth: f64,
}

/// Which PSF [`super::Pupil::psf_with`] computes: scalar or vectorial, in an index-matched
/// sample or not. The default is the scalar, index-matched model of [`super::Pupil::psf`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsfModel {
    /// `Some`: the vectorial model with this polarisation; `None`: scalar.
    pub vectorial: Option<Polarisation>,
    /// `Some`: an index-mismatched sample; `None`: the sample is the immersion medium.
    pub sample: Option<Sample>,
}

impl PsfModel {
    /// A one-line description, e.g. `vectorial (unpolarised), sample n = 1.333 at 10 µm`.
    pub fn describe(&self) -> String {
        let mut s = match self.vectorial {
            None => "scalar".to_string(),
            Some(p) => format!("vectorial ({})", polarisation_name(&p)),
        };
        if let Some(sample) = self.sample {
            s.push_str(&format!(
                ", sample n = {} at {}",
                sample.index,
                crate::units::format_length(sample.depth)
            ));
        }
        s
    }

    /// Checks the sample (an index ≥ 1, a depth ≥ 0) and that a Jones vector or dipole is
    /// not zero.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = self.sample {
            if !(s.index.is_finite() && s.index >= 1.0) {
                return Err(invalid(
                    "sample index",
                    format!("{} is not a refractive index ≥ 1 (water: 1.333)", s.index),
                ));
            }
            if !(s.depth.is_finite() && s.depth >= 0.0) {
                return Err(invalid(
                    "depth",
                    format!(
                        "{} is not a depth beneath the coverslip (give 0 or more, e.g. 10um)",
                        crate::units::format_length(s.depth)
                    ),
                ));
            }
        }
        let usable = |norm2: f64| norm2.is_finite() && norm2 > 0.0;
        let zero = match self.vectorial {
            Some(Polarisation::Jones(e)) => !usable(e.intensity()),
            Some(Polarisation::Dipole(m)) => !usable(m.iter().map(|v| v * v).sum()),
            _ => false,
        };
        if zero {
            return Err(invalid(
                "polarisation",
                "the Jones vector or dipole is zero (or not finite); give a direction",
            ));
        }
        Ok(())
    }

    /// The model's channels: for each, a complex weight per pupil sample (the order of
    /// `coords`), so that the PSF is `Σ_c |F⁻¹[P · w_c · exp(i kz z)]|²`. The scalar,
    /// index-matched model is one channel of ones.
    pub(super) fn weights(
        &self,
        objective: &Objective,
        coords: &Coords,
    ) -> Result<Vec<Vec<Complex<f64>>>> {
        self.validate()?;
        let n_i = objective.wave.index;
        let n_s = self.sample.map_or(n_i, |s| s.index);
        let depth = self.sample.map_or(0.0, |s| s.depth);
        let k0 = std::f64::consts::TAU / objective.wave.wavelength;
        let channels = match self.vectorial {
            None => 1,
            Some(Polarisation::Unpolarised) => 6,
            Some(Polarisation::Dipole(_)) => 2,
            Some(_) => 3,
        };
        let pol = self.vectorial.map(Polarisation::normalised);
        let mut out = vec![Vec::with_capacity(coords.ux.len()); channels];
        for i in 0..coords.ux.len() {
            let (ux, uy) = (coords.ux[i], coords.uy[i]);
            let rho = ux.hypot(uy);
            // n sin θ is the same on both sides of the interface (Snell).
            let nsin = rho * objective.na;
            let cos_i = (1.0 - (nsin / n_i).powi(2)).sqrt();
            let cos_s = Complex::new(1.0 - (nsin / n_s).powi(2), 0.0).sqrt();
            // Sample minus immersion axial wavenumber, over the source's depth.
            let mismatch = Complex::i() * k0 * (n_s * cos_s - n_i * cos_i) * depth;
            let common = mismatch.exp();
            let Some(pol) = pol else {
                out[0].push(common);
                continue;
            };
            let (c, s) = if rho > 0.0 {
                (ux / rho, uy / rho)
            } else {
                (1.0, 0.0)
            };
            let (t_s, t_p) = fresnel_t(n_i, cos_i, n_s, cos_s);
            let amp = common / cos_i.sqrt();
            let sin_s = nsin / n_s;
            let p_hat = [cos_s * c, cos_s * s, Complex::new(-sin_s, 0.0)];
            let s_hat = [-s, c, 0.0];
            let focus = |ep: Complex<f64>, es: Complex<f64>| -> [Complex<f64>; 3] {
                std::array::from_fn(|j| amp * (t_p * ep * p_hat[j] + t_s * es * s_hat[j]))
            };
            // The focus of an x- and a y-polarised pupil.
            let ex = || focus(Complex::new(c, 0.0), Complex::new(-s, 0.0));
            let ey = || focus(Complex::new(s, 0.0), Complex::new(c, 0.0));
            // This sample's weight in each channel (the first `channels` of them).
            let mut w = [Complex::default(); 6];
            match pol {
                Polarisation::Unpolarised => {
                    for (w, v) in w.iter_mut().zip(ex().into_iter().chain(ey())) {
                        *w = v;
                    }
                }
                Polarisation::Jones(JonesVector([ax, ay])) => {
                    w[..3].copy_from_slice(&focus(ax * c + ay * s, -ax * s + ay * c));
                }
                Polarisation::Radial | Polarisation::Azimuthal => {
                    // Undefined on the axis, where the beam is dark.
                    let on = Complex::new(if rho > 0.0 { 1.0 } else { 0.0 }, 0.0);
                    let zero = Complex::default();
                    let (ep, es) = if pol == Polarisation::Radial {
                        (on, zero)
                    } else {
                        (zero, on)
                    };
                    w[..3].copy_from_slice(&focus(ep, es));
                }
                Polarisation::Dipole(m) => {
                    let dot = |e: [Complex<f64>; 3]| -> Complex<f64> {
                        e.iter().zip(m).map(|(e, m)| e * m).sum()
                    };
                    w[0] = dot(ex());
                    w[1] = dot(ey());
                }
            }
            for (o, w) in out.iter_mut().zip(w) {
                o.push(w);
            }
        }
        Ok(out)
    }
}

/// The Fresnel transmission coefficients `(t_s, t_p)` of the field from a medium of index
/// `n1` at `cos θ₁` into one of `n2` at `cos θ₂` (complex beyond the critical angle, where
/// `cos θ₂` is `+i·√(sin²θ₂ − 1)`).
fn fresnel_t(n1: f64, cos1: f64, n2: f64, cos2: Complex<f64>) -> (Complex<f64>, Complex<f64>) {
    let a = n1 * cos1;
    (2.0 * a / (a + n2 * cos2), 2.0 * a / (n2 * cos1 + n1 * cos2))
}

/// The name `Polarisation::from_str` reads back (a general Jones vector as `jones:EX,EY`, to
/// six decimals).
pub fn polarisation_name(p: &Polarisation) -> String {
    match p.normalised() {
        Polarisation::Unpolarised => "unpolarised".into(),
        Polarisation::Radial => "radial".into(),
        Polarisation::Azimuthal => "azimuthal".into(),
        Polarisation::Jones(JonesVector([a, b])) => {
            let near = |p: Polarisation| match p {
                Polarisation::Jones(JonesVector([u, v])) => {
                    (u - a).norm() < 1e-12 && (v - b).norm() < 1e-12
                }
                _ => false,
            };
            if near(Polarisation::X) {
                "x".into()
            } else if near(Polarisation::Y) {
                "y".into()
            } else if near(Polarisation::CIRCULAR) {
                "circular".into()
            } else {
                let c = |z: Complex<f64>| format!("{}{:+}i", round6(z.re), round6(z.im));
                format!("jones:{},{}", c(a), c(b))
            }
        }
        Polarisation::Dipole(m) => {
            let theta = m[2].clamp(-1.0, 1.0).acos().to_degrees();
            let phi = m[1].atan2(m[0]).to_degrees();
            format!("dipole:{},{}", round6(theta), round6(phi))
        }
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Grid;
    use crate::pupil::{Pupil, fwhm};
    use crate::testing::bessel_j;

    fn oil() -> Objective {
        Objective::new(520e-9, 1.4, 1.518).unwrap()
    }

    /// Simpson's rule of `f` over `[a, b]` with `n` (even) intervals.
    fn simpson<T>(a: f64, b: f64, n: usize, f: impl Fn(f64) -> T) -> T
    where
        T: std::ops::Add<Output = T> + std::ops::Mul<f64, Output = T>,
    {
        let h = (b - a) / n as f64;
        let mut sum = f(a) + f(b);
        for i in 1..n {
            sum = sum + f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        sum * (h / 3.0)
    }

    /// The in-focus plane on a grid of `n` (odd) samples of pitch `d`, and the intensity at
    /// `(x, y)` samples from the centre.
    fn focus(obj: Objective, n: usize, d: f64, pol: Polarisation) -> (Vec<f64>, usize) {
        let pupil = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
        let model = PsfModel {
            vectorial: Some(pol),
            sample: None,
        };
        (pupil.psf_with(&[0.0], &model).unwrap(), n)
    }

    fn at((psf, n): &(Vec<f64>, usize), x: i64, y: i64) -> f64 {
        let c = (n / 2) as i64;
        psf[((c + y) as usize) * n + (c + x) as usize]
    }

    /// Richards & Wolf: an x-polarised pupil focuses to `|I₀ + I₂ cos 2φ|² + |I₂ sin 2φ|² +
    /// 4|I₁|² cos²φ`, the `I_m` integrals of `√cos θ sin θ (…) J_m(k r sin θ)` over the
    /// aperture, here by Simpson's rule and the Bessel functions' series. At NA 1.4 the spot
    /// is wider along the polarisation than across it, which the scalar model cannot give.
    #[test]
    fn x_polarised_focus_is_richards_and_wolf() {
        let obj = oil();
        let d = 520e-9 / (8.0 * 1.4);
        let got = focus(obj, 513, d, Polarisation::X);
        let k = obj.wave.k();
        let alpha = (obj.na / obj.wave.index).asin();
        let want = |x: f64, y: f64| -> f64 {
            let (r, phi) = (x.hypot(y), y.atan2(x));
            let i = |m: i64, g: &dyn Fn(f64, f64) -> f64| {
                simpson(0.0, alpha, 2000, |t: f64| {
                    let (s, c) = t.sin_cos();
                    c.sqrt() * s * g(s, c) * bessel_j(m, k * r * s)
                })
            };
            let i0 = i(0, &|_, c| 1.0 + c);
            let i1 = i(1, &|s, _| s);
            let i2 = i(2, &|_, c| 1.0 - c);
            (i0 + i2 * (2.0 * phi).cos()).powi(2)
                + (i2 * (2.0 * phi).sin()).powi(2)
                + 4.0 * (i1 * phi.cos()).powi(2)
        };
        let (g0, w0) = (at(&got, 0, 0), want(0.0, 0.0));
        let mut worst: f64 = 0.0;
        for j in 0..=20i64 {
            for (dx, dy) in [(1, 0), (0, 1), (1, 1)] {
                let (x, y) = (j * dx, j * dy);
                let g = at(&got, x, y) / g0;
                let w = want(x as f64 * d, y as f64 * d) / w0;
                worst = worst.max((g - w).abs());
            }
        }
        assert!(worst < 2e-3, "worst deviation from Richards & Wolf {worst}");
        let [fx, fy, _] = fwhm(&got.0, [1, 513, 513]);
        let ratio = fx.unwrap() / fy.unwrap();
        assert!(ratio > 1.2, "FWHM x / y = {ratio}");
        // Each plane sums to 1, as the scalar model's.
        assert!((got.0.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    /// Youngworth & Brown (Opt. Express 7, 77 (2000)): radial polarisation focuses to
    /// `|∫√cos θ sin θ cos θ J₁|² + |∫√cos θ sin²θ J₀|²` (a longitudinal field on the axis),
    /// azimuthal to `|∫√cos θ sin θ J₁|²` (dark on the axis).
    #[test]
    fn radial_and_azimuthal_foci_are_youngworth_and_brown() {
        let obj = oil();
        let d = 520e-9 / (8.0 * 1.4);
        let k = obj.wave.k();
        let alpha = (obj.na / obj.wave.index).asin();
        let int = |m: i64, r: f64, g: &dyn Fn(f64, f64) -> f64| {
            simpson(0.0, alpha, 2000, |t: f64| {
                let (s, c) = t.sin_cos();
                c.sqrt() * s * g(s, c) * bessel_j(m, k * r * s)
            })
        };
        let radial = |r: f64| int(1, r, &|_, c| c).powi(2) + int(0, r, &|s, _| s).powi(2);
        let azimuthal = |r: f64| int(1, r, &|_, _| 1.0).powi(2);
        for (pol, want) in [
            (Polarisation::Radial, &radial as &dyn Fn(f64) -> f64),
            (Polarisation::Azimuthal, &azimuthal),
        ] {
            let got = focus(obj, 513, d, pol);
            let g: Vec<f64> = (0..=20).map(|j| at(&got, j, 0)).collect();
            let w: Vec<f64> = (0..=20).map(|j| want(j as f64 * d)).collect();
            let (gm, wm) = (
                g.iter().copied().fold(0.0, f64::max),
                w.iter().copied().fold(0.0, f64::max),
            );
            let worst = g
                .iter()
                .zip(&w)
                .map(|(g, w)| (g / gm - w / wm).abs())
                .fold(0.0, f64::max);
            assert!(worst < 3e-3, "{pol:?}: worst deviation {worst}");
            // Rotationally symmetric: along y as along x.
            for j in 1..=20 {
                assert!((at(&got, 0, j) - at(&got, j, 0)).abs() < 1e-9 * gm);
            }
        }
        // The longitudinal field makes radial polarisation peak on the axis; azimuthal is dark
        // there.
        let az = focus(obj, 513, d, Polarisation::Azimuthal);
        assert!(at(&az, 0, 0) < 1e-6 * (0..20).map(|j| at(&az, j, 0)).fold(0.0, f64::max));
    }

    /// The isotropic emitter is the mean of the x- and y-polarised PSFs, rotationally
    /// symmetric (x-polarised turned by 90° is y-polarised), with every plane summing to 1;
    /// at low NA it is the scalar PSF.
    #[test]
    fn unpolarised_psf_is_symmetric_and_scalar_at_low_na() {
        let obj = oil();
        let n = 65;
        let pupil = Pupil::new(obj, Grid::square(n, 60e-9).unwrap()).unwrap();
        let z = [-0.4e-6, 0.0, 0.3e-6];
        let model = |p| PsfModel {
            vectorial: Some(p),
            sample: None,
        };
        let un = pupil
            .psf_with(&z, &model(Polarisation::Unpolarised))
            .unwrap();
        let x = pupil.psf_with(&z, &model(Polarisation::X)).unwrap();
        let y = pupil.psf_with(&z, &model(Polarisation::Y)).unwrap();
        for i in 0..un.len() {
            assert!((un[i] - 0.5 * (x[i] + y[i])).abs() < 1e-12);
            let (p, r, c) = (i / (n * n), (i / n) % n, i % n);
            // (x, y) → (−y, x): row r, column c of y is row c, column n−1−r of x.
            let rotated = x[p * n * n + c * n + (n - 1 - r)];
            assert!((y[i] - rotated).abs() < 1e-12, "{i}");
        }
        for plane in un.chunks(n * n) {
            assert!((plane.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        // The difference from the scalar PSF falls as NA² (the apodisation `1 − cos θ` and
        // the longitudinal field's `sin²θ`): about 1 % of the peak at NA 0.2, a quarter of it
        // at NA 0.1; at NA 1.4 it is far larger.
        let differ = |obj: Objective, d: f64| {
            let p = Pupil::new(obj, Grid::square(n, d).unwrap()).unwrap();
            let s = p.psf(&[0.0]);
            let v = p
                .psf_with(&[0.0], &model(Polarisation::Unpolarised))
                .unwrap();
            let peak = s.iter().copied().fold(0.0, f64::max);
            s.iter()
                .zip(&v)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                / peak
        };
        let air = |na| Objective::new(520e-9, na, 1.0).unwrap();
        let (tiny, small) = (differ(air(0.1), 0.6e-6), differ(air(0.2), 0.3e-6));
        let large = differ(obj, 60e-9);
        assert!(
            small < 0.012 && (3.5..4.5).contains(&(small / tiny)) && large > 0.2,
            "{tiny} {small} {large}"
        );
    }

    /// The Fresnel coefficients conserve energy: `|r|² + (n₂ cos θ₂)/(n₁ cos θ₁)|t|² = 1`
    /// below the critical angle (with `r_s = t_s − 1`, `r_p = t_p n₂/n₁ − 1`), and total
    /// reflection `|r| = 1` beyond it.
    #[test]
    fn fresnel_transmission_conserves_energy() {
        for (n1, n2) in [(1.518, 1.333), (1.333, 1.518), (1.0, 1.5)] {
            for k in 0..50 {
                let s1 = k as f64 / 50.0;
                let cos1 = (1.0 - s1 * s1).sqrt();
                let cos2 = Complex::new(1.0 - (n1 * s1 / n2).powi(2), 0.0).sqrt();
                let (ts, tp) = fresnel_t(n1, cos1, n2, cos2);
                let (rs, rp) = (ts - 1.0, tp * (n2 / n1) - 1.0);
                if cos2.im == 0.0 {
                    let ratio = n2 * cos2.re / (n1 * cos1);
                    assert!((rs.norm_sqr() + ratio * ts.norm_sqr() - 1.0).abs() < 1e-12);
                    assert!((rp.norm_sqr() + ratio * tp.norm_sqr() - 1.0).abs() < 1e-12);
                } else {
                    assert!((rs.norm() - 1.0).abs() < 1e-12 && (rp.norm() - 1.0).abs() < 1e-12);
                }
            }
        }
    }

    /// On the axis, the PSF of a source at depth `d` in water under an oil objective is the
    /// one-dimensional integral `|∫ w(f) exp(i[(kz_s − kz) d + kz z]) f df|²`, where `w` is
    /// 1 (scalar) or `(t_p cos θ_s + t_s)/(2√cos θ)` (vectorial, x-polarised: the azimuthal
    /// mean of its x component). Part of the pupil (NA 1.4 > 1.333) is evanescent in the
    /// sample. Index-matched, the model is the plain one.
    #[test]
    fn index_mismatch_axial_intensity_is_exact() {
        let obj = oil();
        let (ns, depth) = (1.333, 2e-6);
        let n = 256;
        let pupil = Pupil::new(obj, Grid::square(n, 0.1e-6).unwrap()).unwrap();
        let z: Vec<f64> = (-30..=10).map(|k| k as f64 * 0.1e-6).collect();
        let lambda = obj.wave.wavelength;
        let ni = obj.wave.index;
        let k0 = std::f64::consts::TAU / lambda;
        for vectorial in [None, Some(Polarisation::X)] {
            let model = PsfModel {
                vectorial,
                sample: Some(Sample { index: ns, depth }),
            };
            let psf = pupil.psf_with(&z, &model).unwrap();
            let axis: Vec<f64> = (0..z.len())
                .map(|p| psf[p * n * n + (n / 2) * n + n / 2])
                .collect();
            let want: Vec<f64> = z
                .iter()
                .map(|&zk| {
                    simpson(0.0, obj.na, 4000, |nsin: f64| {
                        let cos_i = (1.0 - (nsin / ni).powi(2)).sqrt();
                        let cos_s = Complex::new(1.0 - (nsin / ns).powi(2), 0.0).sqrt();
                        let phase = Complex::i()
                            * k0
                            * ((ns * cos_s - ni * cos_i) * depth + ni * cos_i * zk);
                        let w = if vectorial.is_some() {
                            let (ts, tp) = fresnel_t(ni, cos_i, ns, cos_s);
                            (tp * cos_s + ts) / (2.0 * cos_i.sqrt())
                        } else {
                            Complex::new(1.0, 0.0)
                        };
                        w * phase.exp() * nsin
                    })
                    .norm_sqr()
                })
                .collect();
            let (gm, wm) = (
                axis.iter().copied().fold(0.0, f64::max),
                want.iter().copied().fold(0.0, f64::max),
            );
            for (i, (g, w)) in axis.iter().zip(&want).enumerate() {
                assert!(
                    (g / gm - w / wm).abs() < 0.02,
                    "{vectorial:?} z = {}: {} vs {}",
                    z[i],
                    g / gm,
                    w / wm
                );
            }
            // The mismatch moves the focus towards the objective (z < 0) and dims it.
            let imax = axis
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            assert!(z[imax] < -0.1e-6, "{vectorial:?}: peak at {}", z[imax]);
            // Index-matched, the model is the plain one.
            let matched = PsfModel {
                vectorial,
                sample: Some(Sample { index: ni, depth }),
            };
            let plain = PsfModel {
                vectorial,
                sample: None,
            };
            let a = pupil.psf_with(&z[..2], &matched).unwrap();
            let b = pupil.psf_with(&z[..2], &plain).unwrap();
            assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-12));
        }
    }

    /// Paraxially, a source at depth `d` in a sample of index `n_s` is in focus when the
    /// stage has moved by `d·n/n_s` (`z = d(1 − n/n_s)`). The peak approaches it as NA²:
    /// to 0.3 % at NA 0.1 and 1.1 % at NA 0.2, in both models.
    #[test]
    fn paraxial_focal_shift_is_the_index_ratio() {
        for (na, pitch, tol) in [(0.1, 0.8e-6, 0.003), (0.2, 0.4e-6, 0.012)] {
            focal_shift(na, pitch, tol);
        }
    }

    fn focal_shift(na: f64, pitch: f64, tol: f64) {
        let obj = Objective::new(520e-9, na, 1.518).unwrap();
        let (ns, depth) = (1.333, 30e-6);
        let want = depth * (1.0 - 1.518 / ns);
        let pupil = Pupil::new(obj, Grid::square(128, pitch).unwrap()).unwrap();
        let z: Vec<f64> = (-40..=40).map(|k| want + k as f64 * 0.1e-6).collect();
        for vectorial in [None, Some(Polarisation::Unpolarised)] {
            let model = PsfModel {
                vectorial,
                sample: Some(Sample { index: ns, depth }),
            };
            let psf = pupil.psf_with(&z, &model).unwrap();
            let axis: Vec<f64> = (0..z.len())
                .map(|p| psf[p * 128 * 128 + 64 * 128 + 64])
                .collect();
            let i = axis
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            assert!(i > 0 && i < z.len() - 1);
            // Parabola through the three samples around the maximum.
            let (a, b, c) = (axis[i - 1], axis[i], axis[i + 1]);
            let peak = z[i] + 0.5 * 0.1e-6 * (a - c) / (a - 2.0 * b + c);
            assert!(
                (peak - want).abs() < tol * want.abs(),
                "NA {na} {vectorial:?}: peak at {peak} vs {want}"
            );
        }
    }

    #[test]
    fn polarisations_parse_and_bad_ones_are_refused() {
        for name in [
            "unpolarised",
            "x",
            "y",
            "circular",
            "radial",
            "azimuthal",
            "dipole:90,0",
            "rcp",
            "linear:30deg",
            "jones:1,0.5-0.25i",
        ] {
            let p: Polarisation = name.parse().unwrap();
            let back = polarisation_name(&p);
            let again: Polarisation = back.parse().unwrap();
            assert_eq!(polarisation_name(&again), back, "{name}");
        }
        assert_eq!(
            polarisation_name(&"isotropic".parse().unwrap()),
            "unpolarised"
        );
        assert_eq!(
            polarisation_name(&"Dipole:90,0".parse().unwrap()),
            "dipole:90,0"
        );
        let Polarisation::Dipole(m) = "dipole:90,0".parse().unwrap() else {
            panic!()
        };
        assert!((m[0] - 1.0).abs() < 1e-15 && m[1].abs() < 1e-15 && m[2].abs() < 1e-15);
        assert_eq!(polarisation_name(&"lcp".parse().unwrap()), "circular");
        assert!(polarisation_name(&"rcp".parse().unwrap()).starts_with("jones:0.707107+0i,"));
        assert!(crate::error::err_text("jones:0,0".parse::<Polarisation>()).contains("zero"));
        for bad in ["", "z", "dipole:90", "dipole:a,b", "dipole:nan,0"] {
            let e = bad.parse::<Polarisation>().unwrap_err().to_string();
            assert!(e.contains("dipole:THETA,PHI"), "{e}");
        }
        let pupil = Pupil::new(oil(), Grid::square(32, 0.1e-6).unwrap()).unwrap();
        let bad = |m: PsfModel| pupil.psf_with(&[0.0], &m).unwrap_err().to_string();
        let sample = |index, depth| PsfModel {
            vectorial: None,
            sample: Some(Sample { index, depth }),
        };
        assert!(bad(sample(0.5, 1e-6)).contains("water"));
        assert!(bad(sample(1.33, -1e-6)).contains("depth"));
        assert!(bad(sample(f64::NAN, 0.0)).contains("index"));
        let zero = PsfModel {
            vectorial: Some(Polarisation::Dipole([0.0; 3])),
            sample: None,
        };
        assert!(bad(zero).contains("zero"));
    }

    /// A dipole along the optical axis images as a ring (its field on the axis cancels); one
    /// across it as a spot. Their sum over three orientations is the isotropic emitter.
    #[test]
    fn dipoles_add_up_to_the_isotropic_emitter() {
        let obj = oil();
        let n = 65;
        let pupil = Pupil::new(obj, Grid::square(n, 60e-9).unwrap()).unwrap();
        let psf = |p| {
            let m = PsfModel {
                vectorial: Some(p),
                sample: None,
            };
            pupil.psf_with(&[0.0, 0.2e-6], &m).unwrap()
        };
        let w = |p| {
            let m = PsfModel {
                vectorial: Some(p),
                sample: None,
            };
            m.weights(&obj, &pupil.coords)
                .unwrap()
                .iter()
                .flatten()
                .map(|v| v.norm_sqr())
                .sum::<f64>()
        };
        let dirs = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let iso = psf(Polarisation::Unpolarised);
        let total: f64 = dirs.iter().map(|&m| w(Polarisation::Dipole(m))).sum();
        let mut sum = vec![0.0; iso.len()];
        for m in dirs {
            let share = w(Polarisation::Dipole(m)) / total;
            for (s, v) in sum.iter_mut().zip(psf(Polarisation::Dipole(m))) {
                *s += share * v;
            }
        }
        assert!(iso.iter().zip(&sum).all(|(a, b)| (a - b).abs() < 1e-12));
        let axial = psf(Polarisation::Dipole([0.0, 0.0, 1.0]));
        let c = (n / 2) * n + n / 2;
        let ring = axial[..n * n].iter().copied().fold(0.0, f64::max);
        assert!(axial[c] < 1e-6 * ring, "{} vs {ring}", axial[c]);
    }
}
