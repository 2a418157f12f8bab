//! Jones vectors, Jones matrices, Stokes vectors and Mueller matrices of fully and partially
//! polarised light (the conventions are in the [module docs](super)).

use std::f64::consts::FRAC_1_SQRT_2;
use std::str::FromStr;

use num_complex::Complex;

use crate::error::{OpticsError, Result, invalid};
use crate::units::parse_angle;

type C = Complex<f64>;

const ZERO: C = Complex::new(0.0, 0.0);
const ONE: C = Complex::new(1.0, 0.0);
const I: C = Complex::new(0.0, 1.0);

/// The polarisation of a coherent field: its transverse components `(E_x, E_y)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JonesVector(pub [C; 2]);

impl JonesVector {
    /// Linear along x (horizontal).
    pub const X: Self = Self([ONE, ZERO]);
    /// Linear along y (vertical).
    pub const Y: Self = Self([ZERO, ONE]);

    /// Right circular polarisation `(1, −i)/√2`: clockwise to an observer facing the source
    /// (Born & Wolf), negative helicity, `S₃ = +1`.
    pub const RIGHT: Self = Self([
        Complex::new(FRAC_1_SQRT_2, 0.0),
        Complex::new(0.0, -FRAC_1_SQRT_2),
    ]);
    /// Left circular polarisation `(1, i)/√2`: anticlockwise to an observer facing the source,
    /// positive helicity, `S₃ = −1`.
    pub const LEFT: Self = Self([
        Complex::new(FRAC_1_SQRT_2, 0.0),
        Complex::new(0.0, FRAC_1_SQRT_2),
    ]);

    /// A Jones vector from its components; refused when zero or not finite.
    pub fn new(ex: C, ey: C) -> Result<Self> {
        let v = Self([ex, ey]);
        let norm = v.intensity();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(invalid(
                "Jones vector",
                format!(
                    "({ex}, {ey}) is zero or not finite; give two finite components, not both zero"
                ),
            ));
        }
        Ok(v)
    }

    /// Linear polarisation at `angle` (radians) from x towards y.
    pub fn linear(angle: f64) -> Self {
        Self([C::new(angle.cos(), 0.0), C::new(angle.sin(), 0.0)])
    }

    /// The unit-intensity state whose normalised Stokes vector points along `(s1, s2, s3)` on
    /// the Poincaré sphere (the vector is normalised; refused when zero): azimuth
    /// `ψ = ½ atan2(s2, s1)`, ellipticity angle `χ = ½ asin(s3)`.
    pub fn from_stokes_direction(s1: f64, s2: f64, s3: f64) -> Result<Self> {
        let p = (s1 * s1 + s2 * s2 + s3 * s3).sqrt();
        if !(p.is_finite() && p > 0.0) {
            return Err(invalid(
                "Stokes vector",
                "the polarised part (S1, S2, S3) is zero or not finite: it has no direction",
            ));
        }
        let (psi, chi) = (0.5 * s2.atan2(s1), 0.5 * (s3 / p).clamp(-1.0, 1.0).asin());
        let (cp, sp, cc, sc) = (psi.cos(), psi.sin(), chi.cos(), chi.sin());
        // R(ψ)·(cos χ, −i sin χ): S₃ = −2 Im(E_x* E_y) = sin 2χ
        Ok(Self([C::new(cp * cc, sp * sc), C::new(sp * cc, -cp * sc)]))
    }

    /// `|E_x|² + |E_y|²`.
    pub fn intensity(&self) -> f64 {
        self.0[0].norm_sqr() + self.0[1].norm_sqr()
    }

    /// The same state with unit intensity (a zero vector stays zero).
    pub fn normalised(self) -> Self {
        let n = self.intensity().sqrt();
        if n > 0.0 {
            Self(self.0.map(|v| v / n))
        } else {
            self
        }
    }

    /// The inner product `⟨self, other⟩ = self† · other`.
    pub fn dot(&self, other: &Self) -> C {
        self.0[0].conj() * other.0[0] + self.0[1].conj() * other.0[1]
    }

    /// The orthogonal state of the same intensity (`(−E_y*, E_x*)`): the opposite point of the
    /// Poincaré sphere.
    pub fn orthogonal(&self) -> Self {
        Self([-self.0[1].conj(), self.0[0].conj()])
    }

    /// Its Stokes vector.
    pub fn stokes(&self) -> Stokes {
        Stokes::of(self.0[0], self.0[1])
    }
}

impl FromStr for JonesVector {
    type Err = OpticsError;

    /// `x` (or `h`), `y` (`v`), `d` (+45°), `a` (−45°), `rcp`, `lcp`, `linear:ANGLE` (e.g.
    /// `linear:30deg`), or `jones:EX,EY` with complex components written `1`, `0.5-0.5i`, `i`.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let fortyfive = std::f64::consts::FRAC_PI_4;
        Ok(match t.as_str() {
            "x" | "h" => Self::X,
            "y" | "v" => Self::Y,
            "d" | "+45" => Self::linear(fortyfive),
            "a" | "-45" => Self::linear(-fortyfive),
            "rcp" | "right" => Self::RIGHT,
            "lcp" | "left" => Self::LEFT,
            _ => {
                if let Some(angle) = t.strip_prefix("linear:") {
                    Self::linear(parse_angle(angle)?)
                } else if let Some(parts) = t.strip_prefix("jones:") {
                    let c: Vec<&str> = parts.split(',').collect();
                    if c.len() != 2 {
                        return Err(OpticsError::Parse(format!(
                            "'{s}': write jones:EX,EY with two complex components, e.g. jones:1,i"
                        )));
                    }
                    Self::new(parse_complex(c[0])?, parse_complex(c[1])?)?
                } else {
                    return Err(OpticsError::Parse(format!(
                        "unknown polarisation '{s}'; use x, y, d (+45°), a (−45°), rcp, lcp, \
                         linear:ANGLE (e.g. linear:30deg) or jones:EX,EY (e.g. jones:1,0.5i)"
                    )));
                }
            }
        })
    }
}

/// A complex number as text: `1`, `-0.5`, `i`, `-2i`, `0.5+0.5i`, `1e-3-2i`.
pub fn parse_complex(text: &str) -> Result<C> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bad = || {
        OpticsError::Parse(format!(
            "'{text}' is not a complex number; write e.g. 1, -0.5, i, 0.5-0.5i"
        ))
    };
    let imaginary = |p: &str| -> Result<f64> {
        match p {
            "" | "+" => Ok(1.0),
            "-" => Ok(-1.0),
            p => p.parse().map_err(|_| bad()),
        }
    };
    let z = match t.strip_suffix(['i', 'j']) {
        None => C::new(t.parse().map_err(|_| bad())?, 0.0),
        Some(head) => {
            // the split between the real and imaginary parts: the last sign not after an 'e'
            let b = head.as_bytes();
            let split = (1..b.len())
                .rev()
                .find(|&k| (b[k] == b'+' || b[k] == b'-') && !matches!(b[k - 1], b'e' | b'E'));
            match split {
                Some(k) => C::new(
                    head[..k].parse().map_err(|_| bad())?,
                    imaginary(&head[k..])?,
                ),
                None => C::new(0.0, imaginary(head)?),
            }
        }
    };
    if z.re.is_finite() && z.im.is_finite() {
        Ok(z)
    } else {
        Err(bad())
    }
}

/// A 2 × 2 Jones matrix `[[J_xx, J_xy], [J_yx, J_yy]]`, acting on `(E_x, E_y)`.
///
/// Elements at an angle are rotated copies `R(θ)·J₀·R(−θ)` of their form along x, with
/// `R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]` and `θ` from x towards y.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JonesMatrix(pub [[C; 2]; 2]);

impl JonesMatrix {
    /// The identity (free space, an isotropic element).
    pub const IDENTITY: Self = Self([[ONE, ZERO], [ZERO, ONE]]);

    /// `diag(a, b)`.
    pub fn diagonal(a: C, b: C) -> Self {
        Self([[a, ZERO], [ZERO, b]])
    }

    /// `R(θ)·self·R(−θ)`: the element turned by `angle` (radians) from x towards y.
    pub fn rotated(self, angle: f64) -> Self {
        let (c, s) = (C::new(angle.cos(), 0.0), C::new(angle.sin(), 0.0));
        let r = Self([[c, -s], [s, c]]);
        let rt = Self([[c, s], [-s, c]]);
        r * self * rt
    }

    /// A rotator (optical activity, a Faraday rotator seen in one direction) turning the
    /// polarisation by `angle` from x towards y.
    pub fn rotator(angle: f64) -> Self {
        let (c, s) = (C::new(angle.cos(), 0.0), C::new(angle.sin(), 0.0));
        Self([[c, -s], [s, c]])
    }

    /// An ideal linear polariser transmitting along `angle`.
    pub fn polariser(angle: f64) -> Self {
        Self::diattenuator(1.0, 0.0, angle)
    }

    /// A linear diattenuator (a real polariser): amplitude transmissions `pass` along `angle`
    /// and `block` across it (intensity extinction ratio `pass²/block²`).
    pub fn diattenuator(pass: f64, block: f64, angle: f64) -> Self {
        Self::diagonal(C::new(pass, 0.0), C::new(block, 0.0)).rotated(angle)
    }

    /// A linear retarder (waveplate, birefringent pixel) with its fast axis at `fast_axis` and
    /// the slow axis delayed by `retardance` (radians): `R(θ)·diag(1, e^{iδ})·R(−θ)` (with
    /// `exp(−iωt)`, a delay is a positive phase).
    pub fn retarder(retardance: f64, fast_axis: f64) -> Self {
        Self::birefringent(0.0, retardance, fast_axis)
    }

    /// A birefringent element (a meta-atom, a liquid-crystal pixel): phases `fast` and `slow`
    /// (radians) along its two axes, the first at `angle`: `R(θ)·diag(e^{iφ₁}, e^{iφ₂})·R(−θ)`.
    pub fn birefringent(fast: f64, slow: f64, angle: f64) -> Self {
        Self::diagonal(C::from_polar(1.0, fast), C::from_polar(1.0, slow)).rotated(angle)
    }

    /// A half-wave plate with its fast axis at `angle`: linear light at `α` leaves at `2θ − α`;
    /// circular light leaves with the other handedness and the geometric phase `±2θ`.
    pub fn half_wave(angle: f64) -> Self {
        Self::retarder(std::f64::consts::PI, angle)
    }

    /// A quarter-wave plate with its fast axis at `angle` (at ±45° to linear light it makes it
    /// circular).
    pub fn quarter_wave(angle: f64) -> Self {
        Self::retarder(std::f64::consts::FRAC_PI_2, angle)
    }

    /// The matrix applied to a Jones vector.
    pub fn apply(&self, v: &JonesVector) -> JonesVector {
        let [[a, b], [c, d]] = self.0;
        JonesVector([a * v.0[0] + b * v.0[1], c * v.0[0] + d * v.0[1]])
    }

    /// The conjugate transpose (the element passed backwards through a reciprocal system is
    /// its transpose; this is the adjoint of the linear map).
    pub fn adjoint(&self) -> Self {
        let [[a, b], [c, d]] = self.0;
        Self([[a.conj(), c.conj()], [b.conj(), d.conj()]])
    }

    /// `‖J†J − I‖_F`: zero for a lossless element (retarders, rotators).
    pub fn unitarity_error(&self) -> f64 {
        let p = self.adjoint() * *self;
        let d = [p.0[0][0] - ONE, p.0[0][1], p.0[1][0], p.0[1][1] - ONE];
        d.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt()
    }

    /// The 4 × 4 Mueller matrix of this element, `M_ij = ½ Tr(σ_i J σ_j J†)` with the Pauli
    /// matrices of this module's Stokes convention, so that `stokes(J·e) = M·stokes(e)` and
    /// partially polarised light transforms by `M`.
    pub fn mueller(&self) -> [[f64; 4]; 4] {
        let s = pauli();
        let mut m = [[0.0; 4]; 4];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let p = s[i] * *self * s[j] * self.adjoint();
                *v = 0.5 * (p.0[0][0] + p.0[1][1]).re;
            }
        }
        m
    }

    /// Every entry finite.
    pub fn is_finite(&self) -> bool {
        self.0
            .iter()
            .flatten()
            .all(|z| z.re.is_finite() && z.im.is_finite())
    }
}

impl std::ops::Mul for JonesMatrix {
    type Output = Self;

    /// `self · rhs`: `rhs` acts first.
    fn mul(self, rhs: Self) -> Self {
        let (a, b) = (self.0, rhs.0);
        let e = |i: usize, j: usize| a[i][0] * b[0][j] + a[i][1] * b[1][j];
        Self([[e(0, 0), e(0, 1)], [e(1, 0), e(1, 1)]])
    }
}

/// `σ₀ = I`, `σ₁ = diag(1, −1)`, `σ₂ = [[0, 1], [1, 0]]`, `σ₃ = [[0, i], [−i, 0]]`: `S_k = e†σ_k e`
/// in this module's convention (`S₃ = 2 Im(E_x E_y*)`, `+1` for right circular light).
fn pauli() -> [JonesMatrix; 4] {
    [
        JonesMatrix::IDENTITY,
        JonesMatrix::diagonal(ONE, -ONE),
        JonesMatrix([[ZERO, ONE], [ONE, ZERO]]),
        JonesMatrix([[ZERO, I], [-I, ZERO]]),
    ]
}

/// A Stokes vector `(S₀, S₁, S₂, S₃)`: intensity, horizontal − vertical, +45° − −45°, right −
/// left circular.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stokes(pub [f64; 4]);

impl Stokes {
    /// The Stokes vector of the coherent field `(E_x, E_y)`.
    pub fn of<T: Into<f64> + Copy>(ex: Complex<T>, ey: Complex<T>) -> Self {
        let (ex, ey) = (
            C::new(ex.re.into(), ex.im.into()),
            C::new(ey.re.into(), ey.im.into()),
        );
        let (xx, yy, xy) = (ex.norm_sqr(), ey.norm_sqr(), ex * ey.conj());
        Self([xx + yy, xx - yy, 2.0 * xy.re, 2.0 * xy.im])
    }

    /// Unpolarised light of intensity `s0`.
    pub fn unpolarised(s0: f64) -> Self {
        Self([s0, 0.0, 0.0, 0.0])
    }

    /// A physical Stokes vector: finite, `S₀ > 0` and `S₁² + S₂² + S₃² ≤ S₀²` (to 10⁻⁹).
    pub fn new(s: [f64; 4]) -> Result<Self> {
        let v = Self(s);
        if !(s.iter().all(|x| x.is_finite()) && s[0] > 0.0 && v.polarised() <= s[0] * (1.0 + 1e-9))
        {
            return Err(invalid(
                "Stokes vector",
                format!(
                    "({}, {}, {}, {}) is not physical: S0 must be positive and √(S1² + S2² + S3²) ≤ S0",
                    s[0], s[1], s[2], s[3]
                ),
            ));
        }
        Ok(v)
    }

    /// The intensity of the polarised part, `√(S₁² + S₂² + S₃²)`.
    pub fn polarised(&self) -> f64 {
        let [_, a, b, c] = self.0;
        (a * a + b * b + c * c).sqrt()
    }

    /// The degree of polarisation `√(S₁² + S₂² + S₃²)/S₀` (0 for no light).
    pub fn dop(&self) -> f64 {
        ratio(self.polarised(), self.0[0])
    }

    /// The degree of linear polarisation `√(S₁² + S₂²)/S₀`.
    pub fn dolp(&self) -> f64 {
        ratio(self.0[1].hypot(self.0[2]), self.0[0])
    }

    /// The angle of linear polarisation (the ellipse's azimuth) `½ atan2(S₂, S₁)`, in
    /// `(−π/2, π/2]`.
    pub fn aolp(&self) -> f64 {
        0.5 * self.0[2].atan2(self.0[1])
    }

    /// The ellipticity angle `χ = ½ asin(S₃/P)`: `+π/4` right circular, `−π/4` left, 0 linear.
    pub fn ellipticity(&self) -> f64 {
        0.5 * ratio(self.0[3], self.polarised()).clamp(-1.0, 1.0).asin()
    }

    /// This light transformed by a Mueller matrix.
    pub fn transform(&self, m: &[[f64; 4]; 4]) -> Self {
        Self(std::array::from_fn(|i| {
            (0..4).map(|j| m[i][j] * self.0[j]).sum()
        }))
    }

    /// Two mutually incoherent, orthogonal, fully polarised states whose intensities sum to
    /// this light: the eigen-decomposition of its coherency matrix, `(½(S₀ + P), e)` and
    /// `(½(S₀ − P), e⊥)` with unit-intensity Jones vectors. Unpolarised light is x and y at half
    /// intensity each. Propagate both and add their intensities (or Stokes images).
    pub fn coherent_modes(&self) -> Result<[(f64, JonesVector); 2]> {
        let s = Self::new(self.0)?;
        let p = s.polarised().min(s.0[0]);
        let e = if p > 1e-12 * s.0[0] {
            JonesVector::from_stokes_direction(s.0[1], s.0[2], s.0[3])?
        } else {
            JonesVector::X
        };
        Ok([
            (0.5 * (s.0[0] + p), e),
            (0.5 * (s.0[0] - p), e.orthogonal()),
        ])
    }
}

impl std::ops::Add for Stokes {
    type Output = Self;

    /// Incoherent superposition.
    fn add(self, rhs: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i] + rhs.0[i]))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl FromStr for Stokes {
    type Err = OpticsError;

    /// `S0,S1,S2,S3` (four numbers), checked physical.
    fn from_str(s: &str) -> Result<Self> {
        let v: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                OpticsError::Parse(format!(
                    "'{s}': write a Stokes vector as four numbers S0,S1,S2,S3, e.g. 1,0.5,0,0"
                ))
            })?;
        match v.as_slice() {
            [a, b, c, d] => Self::new([*a, *b, *c, *d]),
            _ => Err(OpticsError::Parse(format!(
                "'{s}' has {} numbers; a Stokes vector has four, S0,S1,S2,S3",
                v.len()
            ))),
        }
    }
}
