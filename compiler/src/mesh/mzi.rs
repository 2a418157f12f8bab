//! The Mach–Zehnder interferometer and its convention.
//!
//! An MZI on the adjacent modes `(m, m+1)` (`m` the upper) is
//!
//! ```text
//! T(θ, φ) = B · diag(e^{iθ}, 1) · B · diag(e^{iφ}, 1),      B = [[1, i], [i, 1]] / √2
//!         = i·e^{iθ/2} · [[e^{iφ}·sin(θ/2),  cos(θ/2)],
//!                         [e^{iφ}·cos(θ/2), −sin(θ/2)]]
//! ```
//!
//! `φ` is the external phase shifter on the input arm of mode `m`, `θ` the internal one on the
//! arm of mode `m` between the two 50:50 couplers `B`. `θ = 0` is the cross state (all light
//! changes mode), `θ = π` the bar state. The compiler keeps `θ ∈ [0, π]` and `φ ∈ [0, 2π)`;
//! where `φ` has no effect (bar or cross with one input dark) it is set to 0.
//!
//! Every phase table names it ([`CONVENTION`]).

use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

use num_complex::Complex64 as C;

/// `e^{ix}`.
pub fn cis(x: f64) -> C {
    C::from_polar(1.0, x)
}

/// Wraps a phase into `[0, 2π)` ([`photonflow_optics::system::wrap_phase`]).
pub use photonflow_optics::system::wrap_phase as wrap;

/// The 2×2 transfer matrix `T(θ, φ)` (row-major `[[t00, t01], [t10, t11]]`).
pub fn transfer(theta: f64, phi: f64) -> [[C; 2]; 2] {
    let (s, c) = (theta / 2.0).sin_cos();
    let g = C::i() * cis(theta / 2.0);
    let e = cis(phi);
    [[g * e * s, g * c], [g * e * c, -g * s]]
}

/// The 50:50 coupler `B`, or one with a splitting error: `[[cos α, i sin α], [i sin α, cos α]]`
/// with `α = π/4 + ε` (`ε = 0`: 50:50).
pub fn coupler(epsilon: f64) -> [[C; 2]; 2] {
    let (s, c) = (PI / 4.0 + epsilon).sin_cos();
    [
        [C::new(c, 0.0), C::new(0.0, s)],
        [C::new(0.0, s), C::new(c, 0.0)],
    ]
}

/// `T` built from its parts: couplers with errors `ε₁`, `ε₂` (first and second), internal and
/// external phases. `mzi_with_errors(θ, φ, 0, 0) = transfer(θ, φ)` up to rounding.
pub fn with_errors(theta: f64, phi: f64, eps1: f64, eps2: f64) -> [[C; 2]; 2] {
    let (b1, b2) = (coupler(eps1), coupler(eps2));
    let d = |a: [[C; 2]; 2], x: f64| [[a[0][0] * cis(x), a[0][1]], [a[1][0] * cis(x), a[1][1]]];
    // B2 · diag(e^{iθ}, 1) · B1 · diag(e^{iφ}, 1): right-multiplying by a diagonal scales
    // columns; left-multiplying scales rows.
    let inner = d(b1, phi);
    let mid = [
        [inner[0][0] * cis(theta), inner[0][1] * cis(theta)],
        inner[1],
    ];
    mul(&b2, &mid)
}

/// The product of two 2×2 matrices.
pub fn mul(a: &[[C; 2]; 2], b: &[[C; 2]; 2]) -> [[C; 2]; 2] {
    let mut out = [[C::new(0.0, 0.0); 2]; 2];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = a[r][0] * b[0][c] + a[r][1] * b[1][c];
        }
    }
    out
}

/// A nulling MZI: `θ = 2·atan2(p, q)` from two moduli `p`, `q ≥ 0`, `e = e^{iφ}`, and the parts
/// of `T(θ, φ) = g·R·P` that updates use without trigonometry: `s = sin(θ/2)`, `c = cos(θ/2)`
/// (`R = [[s, c], [c, −s]]`), `P = diag(e, 1)` and `g = i·e^{iθ/2} = −s + i·c`. The phases
/// themselves ([`Nulling::theta`], [`Nulling::phi`]) are computed only when asked for, off the
/// chain of dependent updates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nulling {
    pub p: f64,
    pub q: f64,
    pub s: f64,
    pub c: f64,
    pub e: C,
}

impl Nulling {
    /// The global phase `g = i·e^{iθ/2}` of `T`.
    pub fn g(&self) -> C {
        C::new(-self.s, self.c)
    }

    /// Internal phase, `[0, π]`.
    pub fn theta(&self) -> f64 {
        2.0 * atan2(self.p, self.q)
    }

    /// External phase, `[0, 2π)` (0 where a modulus is 0).
    pub fn phi(&self) -> f64 {
        if self.e == C::new(1.0, 0.0) {
            0.0
        } else {
            phase(self.e)
        }
    }

    /// The MZI `T(θ, φ)` as a nulling would give it.
    #[cfg(test)]
    fn with_phases(theta: f64, phi: f64) -> Self {
        let (p, q) = (theta / 2.0).sin_cos();
        Self::from(p, q, Some(cis(phi)))
    }

    fn from(p: f64, q: f64, e: Option<C>) -> Self {
        let h = (p * p + q * q).sqrt();
        let (s, c) = if h > 0.0 { (p / h, q / h) } else { (0.0, 1.0) };
        let e = e.unwrap_or(C::new(1.0, 0.0));
        Self { p, q, s, c, e }
    }
}

/// `atan2(y, x)` in `(−π, π]` (0 for `(0, 0)`), within 1–2 ulp of the correctly rounded value
/// and without the special-case handling that makes the C library's slow: the ratio of the
/// smaller to the larger modulus, reduced to `|r| ≤ 0.66` (with `π/4` added above 0.66), and the
/// rational `r + r·z·P(z)/Q(z)`, `z = r²`, of the Cephes library's `atan` (S. L. Moshier).
/// The decompositions call it twice per MZI.
pub fn atan2(y: f64, x: f64) -> f64 {
    // The low part of π/4 beyond its f64 value (of π/2: twice it; of π: four times).
    const LOW: f64 = 3.061_616_997_868_383e-17;
    let (ay, ax) = (y.abs(), x.abs());
    let (lo, hi) = (ay.min(ax), ay.max(ax));
    if y.is_nan() || x.is_nan() {
        return f64::NAN;
    }
    if hi == 0.0 {
        return 0.0;
    }
    // Both reductions are computed and one selected: the branches would be unpredictable.
    // t = lo/hi, reduced to (t − 1)/(t + 1) above 0.66: one division either way.
    let big = lo > 0.66 * hi;
    let r = select(big, lo - hi, lo) / select(big, lo + hi, hi);
    let z = r * r;
    let p = (((-8.750_608_600_031_904e-1 * z - 1.615_753_718_733_365e1) * z
        - 7.500_855_792_314_705e1)
        * z
        - 1.228_866_684_490_136e2)
        * z
        - 6.485_021_904_942_025e1;
    let q = ((((z + 2.485_846_490_142_306e1) * z + 1.650_270_098_316_988e2) * z
        + 4.328_810_604_912_903e2)
        * z
        + 4.853_903_996_359_137e2)
        * z
        + 1.945_506_571_482_614e2;
    let a = r + r * z * p / q;
    let a = select(big, FRAC_PI_4 + (a + LOW), a);
    let a = select(ay > ax, FRAC_PI_2 + (2.0 * LOW - a), a);
    let a = select(x < 0.0, PI + (4.0 * LOW - a), a);
    select(y < 0.0, -a, a)
}

/// `if c { a } else { b }`, written so that it compiles to a blend rather than a branch.
#[inline(always)]
fn select(c: bool, a: f64, b: f64) -> f64 {
    let mask = 0u64.wrapping_sub(u64::from(c));
    f64::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// The MZI whose inverse, applied from the right on columns `(k, k+1)`, zeroes the element `a`
/// (column `k`) of a row `[…, a, b, …]`: `(a, b)·T(θ, φ)^†` has a zero first entry. `θ = 2·
/// atan2(|b|, |a|)`, `φ = arg a − arg b − π`.
pub fn null_from_right(a: C, b: C) -> Nulling {
    let (na, nb) = (a.norm_sqr().sqrt(), b.norm_sqr().sqrt());
    let e = (na > 0.0 && nb > 0.0).then(|| -(a * b.conj()) / (na * nb));
    Nulling::from(nb, na, e)
}

/// The MZI that, applied from the left on rows `(k, k+1)`, zeroes the element `b` (row `k+1`) of
/// a column `[…, a, b, …]ᵀ`: `T(θ, φ)·(a, b)ᵀ` has a zero second entry. `θ = 2·atan2(|a|, |b|)`,
/// `φ = arg b − arg a`.
pub fn null_from_left(a: C, b: C) -> Nulling {
    let (na, nb) = (a.norm_sqr().sqrt(), b.norm_sqr().sqrt());
    let e = (na > 0.0 && nb > 0.0).then(|| b * a.conj() / (na * nb));
    Nulling::from(na, nb, e)
}

/// Moves an inverse MZI through a diagonal: `T(θ, φ)^† · diag(d₁, d₂) = diag(d₁', d₂') ·
/// T(θ, φ')` with `φ' = arg(d₁/d₂)`, `d₁' = −e^{−i(θ+φ)}·d₂`, `d₂' = −e^{−iθ}·d₂` (derived
/// entry by entry from the closed form of `T`; exact for every `θ`, `φ`). Returns
/// `(d₁·d̄₂, d₁', d₂')`, `φ'` being the [`phase`] of the first (taken apart so that a chain of
/// these, each `d` the last one's output, waits on no `atan2`); `e^{iθ} = (c + i·s)²` and
/// `e^{iφ} = e` come from the MZI's parts.
pub fn commute_inverse(z: &Nulling, d1: C, d2: C) -> (C, C, C) {
    let half = C::new(z.c, z.s);
    let e_theta = half * half;
    (
        d1 * d2.conj(),
        -(e_theta * z.e).conj() * d2,
        -e_theta.conj() * d2,
    )
}

/// The argument of `v`, wrapped into `[0, 2π)` (0 for `v = 0`).
pub fn phase(v: C) -> f64 {
    wrap(atan2(v.im, v.re))
}

/// The name of this convention in every file the compiler writes.
pub const CONVENTION: &str = "photonflow-mzi-v1: T(θ,φ) = B·diag(e^{iθ},1)·B·diag(e^{iφ},1), \
                              B = [[1,i],[i,1]]/√2, on modes (m, m+1), m the upper; θ internal \
                              and φ external, both on the arm of mode m";

/// The convention of Clements et al. (Optica 3, 1460 (2016)) and of Strawberry Fields'
/// `clements` decomposition, as named in files written in it.
pub const CLEMENTS_2016: &str = "clements2016: T(θ,φ) = [[e^{iφ}·cos θ, −sin θ], [e^{iφ}·sin θ, \
                                 cos θ]] on modes (m, m+1), m the upper; θ in [0, π/2], φ in \
                                 [0, 2π) (Clements et al., Optica 3, 1460 (2016))";

/// The MZI conventions phases can be written in. Meshes are computed and simulated in
/// [`Convention::Photonflow`] (the physical device); a mesh converts exactly into another
/// convention ([`super::Mesh::convert`]): the same matrix, with the phase left over by each MZI
/// moved through the rest of the mesh into the output phase screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention {
    /// [`CONVENTION`]: the MZI as built, internal and external heaters.
    #[default]
    Photonflow,
    /// [`CLEMENTS_2016`]: `T(θ, φ) = [[e^{iφ} cos θ, −sin θ], [e^{iφ} sin θ, cos θ]]`.
    Clements2016,
}

impl Convention {
    /// Every convention.
    pub const ALL: [Self; 2] = [Self::Photonflow, Self::Clements2016];

    /// The short name (`--convention`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Photonflow => "photonflow-mzi-v1",
            Self::Clements2016 => "clements2016",
        }
    }

    /// The full statement written into files.
    pub fn statement(self) -> &'static str {
        match self {
            Self::Photonflow => CONVENTION,
            Self::Clements2016 => CLEMENTS_2016,
        }
    }

    /// The convention a file's statement (or short name) names.
    pub fn named(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| text == c.statement() || text == c.name())
    }

    /// The 2×2 transfer matrix of an MZI with phases `(θ, φ)` in this convention.
    pub fn transfer(self, theta: f64, phi: f64) -> [[C; 2]; 2] {
        match self {
            Self::Photonflow => transfer(theta, phi),
            Self::Clements2016 => {
                let (s, c) = theta.sin_cos();
                let e = cis(phi);
                [[e * c, C::new(-s, 0.0)], [e * s, C::new(c, 0.0)]]
            }
        }
    }

    /// The photonflow MZI `T(θ₁, φ₁)` as this convention's: `(θ, φ, γ)` with
    /// `T(θ₁, φ₁) = γ·T_this(θ, φ)` (`γ` a unit complex factor on the MZI's two modes).
    /// Clements 2016: `θ = π/2 − θ₁/2`, `φ = φ₁ + π`, `γ = −i·e^{iθ₁/2}`.
    pub fn from_photonflow(self, theta: f64, phi: f64) -> (f64, f64, C) {
        match self {
            Self::Photonflow => (theta, phi, C::new(1.0, 0.0)),
            Self::Clements2016 => (
                std::f64::consts::FRAC_PI_2 - theta / 2.0,
                wrap(phi + PI),
                -C::i() * cis(theta / 2.0),
            ),
        }
    }

    /// This convention's MZI `T_this(θ, φ)` as photonflow's: `(θ₁, φ₁, γ)` with
    /// `T_this(θ, φ) = γ·T(θ₁, φ₁)` (the inverse of [`Convention::from_photonflow`]).
    pub fn to_photonflow(self, theta: f64, phi: f64) -> (f64, f64, C) {
        match self {
            Self::Photonflow => (theta, phi, C::new(1.0, 0.0)),
            Self::Clements2016 => {
                let theta1 = PI - 2.0 * theta;
                (theta1, wrap(phi - PI), C::i() * cis(-theta1 / 2.0))
            }
        }
    }
}

impl std::str::FromStr for Convention {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::named(s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|c| c.name()).collect();
            format!("'{s}'; use one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    fn close(a: &[[C; 2]; 2], b: &[[C; 2]; 2], tol: f64) -> bool {
        (0..2).all(|r| (0..2).all(|c| (a[r][c] - b[r][c]).norm() < tol))
    }

    fn dagger(a: &[[C; 2]; 2]) -> [[C; 2]; 2] {
        [
            [a[0][0].conj(), a[1][0].conj()],
            [a[0][1].conj(), a[1][1].conj()],
        ]
    }

    #[test]
    fn closed_form_equals_the_product_of_its_parts_and_is_unitary() {
        let b = coupler(0.0);
        let half = std::f64::consts::FRAC_1_SQRT_2;
        assert!((b[0][0].re - half).abs() < 1e-15 && (b[0][1].im - half).abs() < 1e-15);
        for &(t, p) in &[(0.0, 0.0), (PI, 1.0), (0.7, 2.1), (2.9, 5.5), (1.3, 0.0)] {
            let t_ = transfer(t, p);
            assert!(close(&t_, &with_errors(t, p, 0.0, 0.0), 1e-15), "{t} {p}");
            let id = mul(&t_, &dagger(&t_));
            assert!(close(
                &id,
                &[
                    [C::new(1.0, 0.0), C::new(0.0, 0.0)],
                    [C::new(0.0, 0.0), C::new(1.0, 0.0)]
                ],
                1e-15
            ));
        }
        // θ = 0: cross (i·swap); θ = π: bar.
        let cross = transfer(0.0, 0.3);
        assert!(cross[0][0].norm() < 1e-15 && (cross[0][1] - C::i()).norm() < 1e-15);
        let bar = transfer(PI, 0.0);
        assert!(bar[0][1].norm() < 1e-15 && (bar[1][1] - C::new(1.0, 0.0)).norm() < 1e-15);
    }

    #[test]
    fn atan2_agrees_with_the_c_library() {
        let mut rng = photonflow_optics::rng::Rng::new(5);
        let mut worst = 0.0f64;
        for k in 0..200_000 {
            // Every quadrant, ratios from 1e-12 to 1e12, and exact axes and diagonals.
            let scale = 10f64.powf(12.0 * (2.0 * rng.uniform() - 1.0));
            let (mut y, mut x) = (rng.normal() * scale, rng.normal());
            match k % 50 {
                0 => y = 0.0,
                1 => x = 0.0,
                2 => y = x,
                3 => y = -x,
                _ => {}
            }
            let (got, want) = (atan2(y, x), y.atan2(x));
            let err = (got - want).abs() / want.abs().max(1e-300);
            worst = worst.max(err);
            assert!(err <= 4.5e-16, "atan2({y}, {x}) = {got}, not {want}");
        }
        assert_eq!(atan2(0.0, 0.0), 0.0);
        assert_eq!(atan2(0.0, -1.0), PI);
        assert_eq!(atan2(1.0, 0.0), FRAC_PI_2);
        assert!(atan2(f64::NAN, 1.0).is_nan());
        println!("atan2: largest relative error {worst:.2e}");
    }

    #[test]
    fn nulling_zeroes_the_chosen_element() {
        let pairs = [
            (C::new(0.3, -0.4), C::new(-0.1, 0.9)),
            (C::new(0.0, 0.0), C::new(0.5, 0.5)),
            (C::new(0.5, 0.5), C::new(0.0, 0.0)),
            (C::new(-1.0, 0.0), C::new(0.0, 1e-3)),
        ];
        // The parts agree with the phases: g·R·P = T(θ, φ).
        let parts = |z: &Nulling| {
            let (theta, phi) = (z.theta(), z.phi());
            assert!((0.0..=PI).contains(&theta) && (0.0..TAU).contains(&phi));
            assert!((z.e - cis(phi)).norm() < 1e-15, "{z:?}");
            let (s, c) = (theta / 2.0).sin_cos();
            assert!((z.s - s).abs() < 1e-15 && (z.c - c).abs() < 1e-15, "{z:?}");
            let g = z.g();
            let t = [[g * z.e * z.s, g * z.c], [g * z.e * z.c, -g * z.s]];
            assert!(close(&t, &transfer(theta, phi), 1e-15), "{z:?}");
        };
        for (a, b) in pairs {
            let z = null_from_right(a, b);
            parts(&z);
            let d = dagger(&transfer(z.theta(), z.phi()));
            let first = a * d[0][0] + b * d[1][0];
            assert!(first.norm() < 1e-15, "right {a} {b}: {first}");
            let z = null_from_left(a, b);
            parts(&z);
            let m = transfer(z.theta(), z.phi());
            let second = m[1][0] * a + m[1][1] * b;
            assert!(second.norm() < 1e-15, "left {a} {b}: {second}");
        }
    }

    #[test]
    fn conventions_convert_mzi_by_mzi() {
        for &(t, p) in &[(0.7, 2.1), (0.0, 1.0), (PI, 4.0), (2.5, 0.0), (1e-9, 6.2)] {
            for conv in Convention::ALL {
                // T(θ₁, φ₁) = γ·T_conv(θ, φ), and back.
                let (t2, p2, g) = conv.from_photonflow(t, p);
                let scaled = conv.transfer(t2, p2).map(|row| row.map(|v| g * v));
                assert!(close(&transfer(t, p), &scaled, 1e-15), "{conv:?} {t} {p}");
                let (t1, p1, h) = conv.to_photonflow(t2, p2);
                assert!((t1 - t).abs() < 1e-15 && (h * g - 1.0).norm() < 1e-15);
                let dp = (p1 - p).abs();
                assert!(dp.min(TAU - dp) < 1e-14, "{conv:?} {p} {p1}");
                assert_eq!(Convention::named(conv.statement()), Some(conv));
                assert_eq!(conv.name().parse::<Convention>(), Ok(conv));
            }
        }
        let (t, _, _) = Convention::Clements2016.from_photonflow(PI, 0.0);
        assert!(t.abs() < 1e-15, "bar state: θ = 0 in Clements 2016");
        assert!(
            "reck1994"
                .parse::<Convention>()
                .unwrap_err()
                .contains("clements2016")
        );
    }

    #[test]
    fn an_inverse_mzi_moves_through_a_diagonal() {
        for &(t, p, a1, a2) in &[
            (0.7, 2.1, 0.4, -2.0),
            (0.0, 1.0, 3.0, 1.0),
            (PI, 4.0, -1.0, 0.2),
        ] {
            let (d1, d2) = (cis(a1), cis(a2));
            let lhs = mul(
                &dagger(&transfer(t, p)),
                &[[d1, C::new(0.0, 0.0)], [C::new(0.0, 0.0), d2]],
            );
            let (r, e1, e2) = commute_inverse(&Nulling::with_phases(t, p), d1, d2);
            let p2 = phase(r);
            let rhs = mul(
                &[[e1, C::new(0.0, 0.0)], [C::new(0.0, 0.0), e2]],
                &transfer(t, p2),
            );
            assert!(close(&lhs, &rhs, 1e-14), "{t} {p}");
        }
    }
}
