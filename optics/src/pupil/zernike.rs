//! Zernike polynomials on the unit disk, in Noll's order and normalisation.
//!
//! Noll (J. Opt. Soc. Am. 66, 207 (1976)): index `j = 1, 2, 3, …` runs through the radial
//! orders `n = 0, 1, 2, …`, and within an order by increasing `|m|`; for `m ≠ 0` an even `j`
//! takes `cos(|m|θ)` and an odd `j` `sin(|m|θ)`. Each polynomial has unit mean square over the
//! disk, `(1/π)∫ Z_j² = 1`, so a coefficient is the RMS of its term: a wavefront
//! `Σ c_j Z_j` (radians) has an RMS of `√(Σ c_j²)` over the pupil once piston is left out.
//!
//! `Z₁ = 1`, `Z₂ = 2ρ cos θ`, `Z₃ = 2ρ sin θ`, `Z₄ = √3 (2ρ² − 1)`, …,
//! `Z₁₁ = √5 (6ρ⁴ − 6ρ² + 1)` (primary spherical).

use crate::error::{Result, invalid};

/// The largest Noll index accepted (radial order 20): beyond it the factorial sums lose
/// precision in `f64` and no pupil measurement resolves them.
pub const MAX_INDEX: usize = 231;

/// Radial order `n` and azimuthal frequency `m` of Noll index `j` (`m < 0` for a sine term).
///
/// ```
/// use photonflow_optics::pupil::zernike::noll_to_nm;
/// assert_eq!(noll_to_nm(4).unwrap(), (2, 0)); // defocus
/// assert_eq!(noll_to_nm(5).unwrap(), (2, -2)); // oblique astigmatism, sin 2θ
/// assert_eq!(noll_to_nm(11).unwrap(), (4, 0)); // primary spherical
/// ```
pub fn noll_to_nm(j: usize) -> Result<(usize, i64)> {
    if j == 0 || j > MAX_INDEX {
        return Err(invalid(
            "Zernike index",
            format!("Noll index {j} is outside 1…{MAX_INDEX}; Noll indices start at 1 (piston)"),
        ));
    }
    // Order n holds indices n(n+1)/2 + 1 … (n+1)(n+2)/2.
    let mut n = 0;
    while (n + 1) * (n + 2) / 2 < j {
        n += 1;
    }
    let k = j - n * (n + 1) / 2 - 1; // position within the order, 0 … n
    // |m| takes the values of n's parity in increasing order, each twice except 0.
    let m_abs = if n.is_multiple_of(2) {
        2 * k.div_ceil(2)
    } else {
        2 * (k / 2) + 1
    };
    let m = if m_abs != 0 && j % 2 == 1 {
        -(m_abs as i64)
    } else {
        m_abs as i64
    };
    Ok((n, m))
}

/// The conventional name of Noll index `j` up to 22, else `Z<j>`.
pub fn name(j: usize) -> String {
    const NAMES: [&str; 22] = [
        "piston",
        "tip (x tilt)",
        "tilt (y tilt)",
        "defocus",
        "oblique astigmatism",
        "vertical astigmatism",
        "vertical coma",
        "horizontal coma",
        "vertical trefoil",
        "oblique trefoil",
        "primary spherical",
        "vertical secondary astigmatism",
        "oblique secondary astigmatism",
        "vertical quadrafoil",
        "oblique quadrafoil",
        "horizontal secondary coma",
        "vertical secondary coma",
        "oblique secondary trefoil",
        "vertical secondary trefoil",
        "oblique pentafoil",
        "vertical pentafoil",
        "secondary spherical",
    ];
    match j {
        1..=22 => NAMES[j - 1].to_string(),
        _ => format!("Z{j}"),
    }
}

/// A Zernike polynomial, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Zernike {
    /// Noll index.
    pub j: usize,
    n: usize,
    m: i64,
    /// Coefficients of `ρ^(n − 2s)`, `s = 0 … (n − |m|)/2`, normalisation included.
    radial: Vec<f64>,
}

impl Zernike {
    /// Noll's `Z_j` (1 ≤ j ≤ [`MAX_INDEX`]).
    pub fn new(j: usize) -> Result<Self> {
        let (n, m) = noll_to_nm(j)?;
        let ma = m.unsigned_abs() as usize;
        let norm = if m == 0 {
            ((n + 1) as f64).sqrt()
        } else {
            (2.0 * (n + 1) as f64).sqrt()
        };
        let fact = |k: usize| (1..=k).fold(1.0f64, |a, i| a * i as f64);
        let radial = (0..=(n - ma) / 2)
            .map(|s| {
                let sign = if s % 2 == 0 { 1.0 } else { -1.0 };
                norm * sign * fact(n - s)
                    / (fact(s) * fact((n + ma) / 2 - s) * fact((n - ma) / 2 - s))
            })
            .collect();
        Ok(Self { j, n, m, radial })
    }

    /// Radial order `n` and azimuthal frequency `m` (negative for a sine term).
    pub fn order(&self) -> (usize, i64) {
        (self.n, self.m)
    }

    /// The value at polar coordinates `(ρ, θ)` on the unit disk (`ρ ≤ 1`; not checked).
    pub fn at(&self, rho: f64, theta: f64) -> f64 {
        // Σ_s c_s ρ^(n − 2s) = ρ^|m| Σ_s c_s (ρ²)^((n − |m|)/2 − s), by Horner in ρ² (s = 0
        // holds the highest power).
        let ma = self.m.unsigned_abs() as usize;
        let r2 = rho * rho;
        let radial = self.radial.iter().fold(0.0, |acc, c| acc * r2 + c) * rho.powi(ma as i32);
        match self.m {
            0 => radial,
            m if m > 0 => radial * (m as f64 * theta).cos(),
            m => radial * ((-m) as f64 * theta).sin(),
        }
    }
}

/// A phase written in Zernike terms, `Σ c_j Z_j` (radians RMS), ready to evaluate.
#[derive(Debug, Clone, Default)]
pub struct Aberration(Vec<(Zernike, f64)>);

impl Aberration {
    /// The phase of `(Noll index, radians RMS)` terms; an index out of range or a coefficient
    /// that is not a finite number is refused.
    pub fn new(terms: &[(usize, f64)]) -> Result<Self> {
        terms
            .iter()
            .map(|&(j, c)| {
                if c.is_finite() {
                    Ok((Zernike::new(j)?, c))
                } else {
                    Err(invalid(
                        "Zernike coefficient",
                        format!("Z{j} = {c} is not a finite number of radians"),
                    ))
                }
            })
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    /// The phase at polar coordinates `(ρ, θ)` on the unit disk, radians.
    pub fn at(&self, rho: f64, theta: f64) -> f64 {
        self.0.iter().map(|(z, c)| c * z.at(rho, theta)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn noll_order_matches_the_table() {
        let want = [
            (1, (0, 0)),
            (2, (1, 1)),
            (3, (1, -1)),
            (4, (2, 0)),
            (5, (2, -2)),
            (6, (2, 2)),
            (7, (3, -1)),
            (8, (3, 1)),
            (9, (3, -3)),
            (10, (3, 3)),
            (11, (4, 0)),
            (12, (4, 2)),
            (13, (4, -2)),
            (14, (4, 4)),
            (15, (4, -4)),
            (16, (5, 1)),
            (17, (5, -1)),
            (22, (6, 0)),
            (37, (8, 0)),
        ];
        for (j, nm) in want {
            assert_eq!(noll_to_nm(j).unwrap(), nm, "j = {j}");
        }
        assert!(noll_to_nm(0).is_err());
        assert!(noll_to_nm(MAX_INDEX + 1).is_err());
    }

    #[test]
    fn closed_forms() {
        for &(rho, th) in &[(0.0, 0.0), (0.3, 1.0), (0.77, -2.2), (1.0, 0.4)] {
            let z = |j| Zernike::new(j).unwrap().at(rho, th);
            let r2: f64 = rho * rho;
            assert!((z(1) - 1.0).abs() < 1e-12);
            assert!((z(2) - 2.0 * rho * th.cos()).abs() < 1e-12);
            assert!((z(4) - 3f64.sqrt() * (2.0 * r2 - 1.0)).abs() < 1e-12);
            assert!((z(5) - 6f64.sqrt() * r2 * (2.0 * th).sin()).abs() < 1e-12);
            assert!((z(7) - 8f64.sqrt() * (3.0 * r2 - 2.0) * rho * th.sin()).abs() < 1e-12);
            assert!((z(11) - 5f64.sqrt() * (6.0 * r2 * r2 - 6.0 * r2 + 1.0)).abs() < 1e-12);
            let z22 = 7f64.sqrt() * (20.0 * r2.powi(3) - 30.0 * r2 * r2 + 12.0 * r2 - 1.0);
            assert!((z(22) - z22).abs() < 1e-11);
        }
    }

    /// `(1/π)∫ Z_i Z_j = δ_ij` over the disk, by a fine polar quadrature (Gauss–Legendre in ρ
    /// would be exact; a midpoint rule with 400 × 400 points is good to 10⁻⁴).
    #[test]
    fn orthonormal_over_the_disk() {
        let zs: Vec<Zernike> = (1..=28).map(|j| Zernike::new(j).unwrap()).collect();
        let (nr, nt) = (400, 400);
        let mut gram = vec![0.0; zs.len() * zs.len()];
        for ir in 0..nr {
            let rho = (ir as f64 + 0.5) / nr as f64;
            for it in 0..nt {
                let th = 2.0 * PI * it as f64 / nt as f64;
                let w = rho / nr as f64 * (2.0 * PI / nt as f64) / PI;
                let v: Vec<f64> = zs.iter().map(|z| z.at(rho, th)).collect();
                for a in 0..zs.len() {
                    for b in 0..zs.len() {
                        gram[a * zs.len() + b] += w * v[a] * v[b];
                    }
                }
            }
        }
        for a in 0..zs.len() {
            for b in 0..zs.len() {
                let want = if a == b { 1.0 } else { 0.0 };
                let got = gram[a * zs.len() + b];
                assert!(
                    (got - want).abs() < 2e-4,
                    "<Z{}, Z{}> = {got}",
                    a + 1,
                    b + 1
                );
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(name(4), "defocus");
        assert_eq!(name(11), "primary spherical");
        assert_eq!(name(22), "secondary spherical");
        assert_eq!(name(30), "Z30");
    }
}
