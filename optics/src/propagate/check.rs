//! Sampling criteria: for each method, the distance range over which its discrete kernel is
//! sampled well enough, evaluated per axis with the padded window `W = M·d`, the pitch `d`, the
//! wavelength in the medium `λ' = λ/n` and `|z|`.
//!
//! | method | criterion | valid for |
//! |---|---|---|
//! | `asm` | the transfer function's chirp is sampled up to the Nyquist frequency `1/(2d)` (its local frequency `λ'|z|f/√(1 − λ'²f²)` ≤ `W/2`) | `|z| ≤ (W/2)·√(1/(λ'/(2d))² − 1)` |
//! | `bl-asm` | the band limit `1/(λ'√((2z/W)² + 1))` keeps at least `f_need = min(N/(2W), 1/(2λ'))`: as many frequency samples as the unpadded field has (up to 30° when the grid resolves finer) | `|z| ≤ (W/2)·√(1/(λ' f_need)² − 1)` |
//! | `fresnel-tf` | the transfer-function chirp `exp(−iπλ'zf²)` is sampled at `Δf = 1/W` up to `1/(2d)` | `|z| ≤ W·d/λ'` |
//! | `fresnel-ir` | the impulse-response chirp `exp(iπx²/(λ'z))` is sampled up to the largest displacement the convolution uses, `D = min(N, M/2)·d` | `|z| ≥ 2·D·d/λ'` |
//! | `rs` | the phase `kr` of the RS kernel is sampled up to `D` (`D/(λ'r) ≤ 1/(2d)`), and the kernel's width `|z|` spans several pixels for the midpoint quadrature | `|z| ≥ max(4d, D·√((2d/λ')² − 1))` |
//! | `fresnel-sfft` | the input chirp `exp(iπx₁²/(λ'z))` is sampled over the source half-width `a` | `|z| ≥ 2·a·d/λ'` |
//! | `fraunhofer` | far field of a source of largest dimension `D_s = 2√(a_x² + a_y²)` (phase error ≤ π/8) | `|z| ≥ 2·D_s²/λ'` |
//!
//! The first two rules follow Matsushima & Shimobaba (2009); the Fresnel ones Voelz (2011),
//! §5.2 (critical sampling `z_c = W·d/λ'`); the Fraunhofer distance is the antenna far-field
//! rule `2D²/λ`.

use std::fmt;

use super::{Method, Propagation};
use crate::error::OpticsError;
use crate::grid::{Grid, Wave};
use crate::units::format_length;

/// The outcome of a method's sampling criterion for one geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The method checked.
    pub method: Method,
    /// Whether the criterion holds.
    pub holds: bool,
    /// The rule, in words.
    pub rule: String,
    /// The distance and the limit it is compared with.
    pub limit: String,
    /// What to change when it fails (empty when it holds).
    pub fix: String,
    /// Shortest valid `|z|` in metres (0 when there is no lower bound).
    pub min_distance: f64,
    /// Longest valid `|z|` in metres (infinite when there is no upper bound).
    pub max_distance: f64,
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.holds { "valid" } else { "invalid" };
        write!(
            f,
            "{}: {verdict} — {}; {}",
            self.method, self.rule, self.limit
        )?;
        if !self.fix.is_empty() {
            write!(f, ". Fix: {}", self.fix)?;
        }
        Ok(())
    }
}

impl Criterion {
    pub(super) fn into_error(self) -> OpticsError {
        OpticsError::Sampling {
            method: self.method,
            criterion: self.rule,
            limit: self.limit,
            fix: self.fix,
        }
    }
}

/// One axis of the geometry.
#[derive(Clone, Copy)]
struct Axis {
    n: usize,
    m: usize,
    d: f64,
}

/// The `[min, max]` range of `|z|` for `method` on one axis, for a source half-width `a`.
fn range(method: Method, ax: Axis, lam: f64, a: f64) -> (f64, f64) {
    let w = ax.m as f64 * ax.d;
    let d = ax.d;
    let disp = ax.n.min(ax.m / 2).max(1) as f64 * d;
    let chirp_max = |f: f64| {
        let s = lam * f;
        if s >= 1.0 {
            0.0
        } else {
            0.5 * w * (1.0 / (s * s) - 1.0).sqrt()
        }
    };
    match method {
        Method::Asm => (0.0, chirp_max(0.5 / d)),
        Method::BandLimitedAsm => (0.0, chirp_max((ax.n as f64 / (2.0 * w)).min(0.5 / lam))),
        Method::FresnelTf => (0.0, w * d / lam),
        Method::FresnelIr => (2.0 * disp * d / lam, f64::INFINITY),
        Method::RayleighSommerfeld => {
            let alias = if 2.0 * d > lam {
                disp * ((2.0 * d / lam).powi(2) - 1.0).sqrt()
            } else {
                0.0
            };
            ((4.0 * d).max(alias), f64::INFINITY)
        }
        Method::FresnelSingleFft => (2.0 * a * d / lam, f64::INFINITY),
        Method::Sas => (ax.m as f64 * d * d / lam, f64::INFINITY),
        Method::Fraunhofer | Method::Auto => (0.0, f64::INFINITY),
    }
}

fn rule(method: Method) -> &'static str {
    match method {
        Method::Asm => {
            "the transfer-function chirp must be sampled up to the grid's Nyquist frequency"
        }
        Method::BandLimitedAsm => {
            "the band limit must keep at least as many frequency samples as the unpadded field has"
        }
        Method::FresnelTf => "the Fresnel transfer-function chirp must be sampled (z ≤ W·d/λ)",
        Method::FresnelIr => {
            "the Fresnel impulse-response chirp must be sampled over the convolution's reach (z ≥ 2·D·d/λ)"
        }
        Method::RayleighSommerfeld => {
            "the Rayleigh–Sommerfeld kernel's phase must be sampled and its width must span several pixels"
        }
        Method::FresnelSingleFft => "the input chirp must be sampled over the source (z ≥ 2·a·d/λ)",
        Method::Fraunhofer => "the plane must be in the far field of the source (z ≥ 2·D²/λ)",
        Method::Sas => {
            "the Fresnel chirp must be sampled over the padded window (z ≥ M·d²/λ); sas runs onto an output window"
        }
        Method::Auto => "",
    }
}

/// The `[min, max]` range of `|z|` over which `method` is valid for fields on `grid`.
fn bounds(method: Method, grid: &Grid, wave: Wave, p: &Propagation) -> (f64, f64) {
    let lam = wave.lambda();
    let (ax, ay) = p.support.unwrap_or((
        grid.nx as f64 * grid.dx / 2.0,
        grid.ny as f64 * grid.dy / 2.0,
    ));
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    for (n, d, a) in [(grid.nx, grid.dx, ax), (grid.ny, grid.dy, ay)] {
        let axis = Axis {
            n,
            m: p.padding.padded_len(n),
            d,
        };
        let (l, h) = range(method, axis, lam, a);
        lo = lo.max(l);
        hi = hi.min(h);
    }
    if method == Method::Fraunhofer {
        let ds = 2.0 * (ax * ax + ay * ay).sqrt();
        lo = 2.0 * ds * ds / lam;
    }
    (lo, hi)
}

fn holds(method: Method, z: f64, (lo, hi): (f64, f64)) -> bool {
    let needs_distance = !matches!(
        method,
        Method::Asm | Method::BandLimitedAsm | Method::FresnelTf
    );
    z >= lo && z <= hi && !(needs_distance && z == 0.0)
}

/// Evaluates the criterion of `method` for fields on `grid`.
pub(super) fn evaluate(method: Method, grid: &Grid, wave: Wave, p: &Propagation) -> Criterion {
    let z = p.distance.abs();
    let (lo, hi) = bounds(method, grid, wave, p);
    let holds = holds(method, z, (lo, hi));
    let zt = format_length(z);
    let limit = match (lo > 0.0, hi.is_finite()) {
        (true, true) => format!(
            "|z| = {zt} must lie in [{}, {}]",
            format_length(lo),
            format_length(hi)
        ),
        (true, false) => format!("|z| = {zt} must be ≥ {}", format_length(lo)),
        (false, true) => format!("|z| = {zt} must be ≤ {}", format_length(hi)),
        (false, false) => format!("|z| = {zt} must be non-zero"),
    };
    let fix = if holds {
        String::new()
    } else {
        fix_for(method, grid, wave, p, z, lo, hi)
    };
    Criterion {
        method,
        holds,
        rule: rule(method).to_string(),
        limit,
        fix,
        min_distance: lo,
        max_distance: hi,
    }
}

/// The smallest padding factor (up to 16) at which `method`'s criterion holds, if any.
fn min_padding(method: Method, grid: &Grid, wave: Wave, p: &Propagation) -> Option<u32> {
    (1..=16).find(|&f| {
        let q = Propagation {
            padding: super::Padding::Linear(f as f64),
            ..p.clone()
        };
        holds(method, p.distance.abs(), bounds(method, grid, wave, &q))
    })
}

fn fix_for(
    method: Method,
    grid: &Grid,
    wave: Wave,
    p: &Propagation,
    z: f64,
    lo: f64,
    hi: f64,
) -> String {
    let mut fixes = Vec::new();
    if z > hi {
        fixes.push(format!("shorten the distance to ≤ {}", format_length(hi)));
        if let Some(f) = min_padding(method, grid, wave, p) {
            fixes.push(format!("pad by {f}× or more (--pad {f})"));
        }
    }
    if z < lo || z == 0.0 {
        fixes.push(format!("lengthen the distance to ≥ {}", format_length(lo)));
    }
    let alternatives: &[&str] = match method {
        Method::Asm => &["use bl-asm (the default), which removes the aliased band"],
        Method::BandLimitedAsm | Method::FresnelTf => &[
            "use rs or fresnel-ir (same sampling, valid far from the source)",
            "or fresnel-sfft / fraunhofer (one FFT; the output pitch becomes λz/(M·d))",
        ],
        Method::FresnelIr | Method::RayleighSommerfeld => {
            &["use bl-asm (valid close to the source)"]
        }
        Method::FresnelSingleFft | Method::Fraunhofer | Method::Sas => {
            &["use bl-asm, rs or fresnel-ir (convolution methods that keep the input sampling)"]
        }
        Method::Auto => &[],
    };
    fixes.extend(alternatives.iter().map(|s| s.to_string()));
    fixes.push("or --method auto to pick a valid method".into());
    fixes.join("; ")
}
