//! The chip model: the matrix a fabricated mesh implements, its imperfections, how far it is
//! from the target, and the correction of its beam-splitter errors.
//!
//! Every MZI of the chip is `a · B(ε₂)·diag(e^{iθ'},1)·B(ε₁)·diag(e^{iφ'},1)`
//! ([`super::mzi::with_errors`]): `a = 10^(−L/20)` its amplitude transmission (`L` its
//! insertion loss in dB: `loss_db`, spread by a Gaussian of σ `loss_error` and kept ≥ 0),
//! `ε₁`, `ε₂` its couplers' splitting-angle errors (radians, `B(ε) = [[cos(π/4+ε),
//! i·sin(π/4+ε)], [i·sin, cos]]`), and `θ'`, `φ'` the phases its heaters really apply when `θ`,
//! `φ` are programmed:
//!
//! ```text
//! h(x)  = the heater's phase for the programmed x: x wrapped into [0, 2π), then, with a DAC of
//!         `dac_bits`, the drive V = Vπ·√(h/π) clipped to [0, v_max] and rounded to one of
//!         2^bits evenly spaced levels, h = π·(V/Vπ)²
//! θ'    = h(θ) + crosstalk · Σ h(θ_n) + δθ      (n: the MZIs of the same column on modes m ± 2)
//! φ'    = h(φ) + crosstalk · Σ h(φ_n) + δφ
//! ```
//!
//! `ε₁`, `ε₂`, `δθ`, `δφ` are static: Gaussian, drawn once per MZI from `seed`; the losses from
//! a stream of their own, so a chip's other draws do not depend on `loss_error`. Attenuators
//! and output phases are ideal.
//!
//! Metrics ([`compare`]): the normalised Frobenius error `‖U_chip − U‖_F / ‖U‖_F` and the
//! fidelity `|Tr(U†·U_chip)| / N` (1 for a perfect chip; loss lowers it). For an SVD mesh the
//! chip's `m × n` block times its scale is compared, and the trace is normalised by
//! `‖U‖_F·‖U_chip‖_F` instead (the scale is supplied off-chip, so only the shape counts). For
//! every mesh also the *normalised* fidelity `|Tr(U†·U_chip)| / (‖U‖_F·‖U_chip‖_F)`, which a
//! loss common to every path leaves at 1, so that it measures what loss does to the shape of
//! the matrix (Clements et al. 2016 use its square), and the transmission
//! `‖U_chip‖_F² / ‖U‖_F²`, the mean power through the chip relative to the reference.
//!
//! Correction ([`Chip::correct`]): with the splitter errors known (calibrated), the phases are
//! re-programmed so that the imperfect mesh reproduces the designed one. First locally, MZI by
//! MZI in light order (Bandyopadhyay et al., Optica 8, 1247 (2021)): `θ` is chosen so the MZI
//! splits power as the ideal one does, `φ` absorbs the remaining input phase, and the output
//! phase differences are pushed forward onto the next MZIs' `φ` and finally the output phase
//! screen. Where an error makes the ideal splitting unreachable the nearest one is taken, and a
//! global re-optimisation of all phases (L-BFGS on `‖U_design − U_chip‖_F²` with analytic
//! gradients, `O(N³)` per iteration, at most [`MAX_ITERATIONS`]; meshes of up to
//! [`MAX_GLOBAL_MODES`] modes; larger ones keep the local step alone, `O(N²)`) lets the rest
//! of the mesh compensate. With `σ = 0.05` on
//! Haar-random 8×8 Clements meshes most chips are corrected to rounding by the local step;
//! in the others (1 in 6) the error falls 5 to 30 times.

use std::collections::{BTreeMap, HashMap};
use std::f64::consts::{PI, SQRT_2};
use std::path::Path;

use num_complex::Complex64 as C;
use serde::{Deserialize, Serialize};

use super::decompose::Mesh;
use super::matrix::{CMatrix, row_products};
use super::mzi::{cis, coupler, with_errors, wrap};
use super::svd::SvdInfo;
use crate::error::{CompileError, Result, read_text};
use photonflow_optics::minimise::lbfgs;
use photonflow_optics::rng::Rng;

/// The largest mesh whose phases [`Chip::correct`] re-optimises globally after the local
/// correction: `O(N³)` per iteration, up to [`MAX_ITERATIONS`] of them (at 128 modes about
/// 15 s on one thread, 10 s on two; 1.2–1.8 s at 64). Larger meshes get the local correction
/// alone (`O(N²)`).
pub const MAX_GLOBAL_MODES: usize = 128;

/// What one block of columns contributes to [`Sweep::objective`]: its part of the value, of
/// every MZI's `H` and of the output phases' gradient.
struct Share {
    f: f64,
    h: Vec<[[C; 2]; 2]>,
    g_out: Vec<f64>,
}

/// The key of the random stream of the MZIs' losses ([`Rng::stream`]).
const LOSS_STREAM: u64 = 0x04c0_55e5;

/// Columns of the identity one task of the global re-optimisation's gradient carries.
const GRADIENT_BLOCK: usize = 32;

/// The most iterations of the global re-optimisation by default ([`Chip::correct`]; the
/// value keeps falling slowly after it: σ = 0.05 at 64 modes, error 0.041 after 1000, 0.028
/// after 4000).
pub const MAX_ITERATIONS: usize = 1000;

/// The imperfections of a chip, as in its TOML file. Every key is optional and defaults to
/// the ideal device:
///
/// ```toml
/// loss_db = 0.2          # insertion loss of every MZI, dB (default 0)
/// loss_error = 0.05      # σ of every MZI's insertion loss around loss_db, dB (default 0)
/// splitter_error = 0.05  # σ of every coupler's splitting-angle error ε, radians (default 0)
/// phase_error = 0.01     # σ of a static error on every θ and φ, radians (default 0)
/// dac_bits = 12          # heater drive quantised to 2^bits levels (default: continuous)
/// vpi = 4.36             # volts for a π shift, φ = π·(V/Vπ)² (only with dac_bits)
/// v_max = 6.17           # largest drive, volts (only with dac_bits; default Vπ·√2: 2π)
/// crosstalk = 0.02       # fraction of a heater's phase on its column neighbours (default 0)
/// seed = 1               # seed of the random draws (default 0)
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Imperfections {
    /// Insertion loss of every MZI, dB, `≥ 0` (default 0).
    pub loss_db: f64,
    /// Standard deviation of every MZI's insertion loss around `loss_db`, dB, Gaussian, the
    /// loss kept `≥ 0` (a passive MZI has no gain; default 0).
    pub loss_error: f64,
    /// Standard deviation of the splitting-angle error `ε` of every coupler (two per MZI),
    /// radians, Gaussian (default 0: 50:50).
    pub splitter_error: f64,
    /// Standard deviation of a static Gaussian error added to every `θ` and `φ`, radians
    /// (default 0).
    pub phase_error: f64,
    /// Bits of the heater drive: the voltage is rounded to one of `2^bits` levels on
    /// `[0, v_max]`, `1 ..= 24` (default: continuous).
    pub dac_bits: Option<u32>,
    /// Volts for a π shift of a heater, `φ = π·(V/Vπ)²` (only with `dac_bits`; without
    /// `v_max` its value does not matter).
    pub vpi: Option<f64>,
    /// The largest drive, volts (only with `dac_bits` and `vpi`; default `Vπ·√2`, which
    /// reaches 2π). Larger phases are clipped to `π·(v_max/Vπ)²`.
    pub v_max: Option<f64>,
    /// Fraction of every heater's phase that also shifts the heaters of the same kind (`θ` or
    /// `φ`) of the MZIs of its column on modes `m ± 2`, `[0, 1]` (default 0).
    pub crosstalk: f64,
    /// Seed of the random draws (`splitter_error`, `phase_error`): one seed, one chip.
    pub seed: u64,
}

impl Imperfections {
    /// Reads and checks a TOML file of imperfections; unknown keys are refused.
    pub fn load(path: &Path) -> Result<Self> {
        let at = |problem: String| CompileError::file(path, problem);
        let text = read_text(path)?;
        let imperfections: Self = toml::from_str(&text).map_err(|e| at(e.to_string()))?;
        imperfections.validate().map_err(|e| at(e.to_string()))?;
        Ok(imperfections)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, value: &dyn std::fmt::Display, problem: &str| {
            Err(CompileError::Design(format!("{key} = {value}: {problem}")))
        };
        for (key, value, unit) in [
            ("loss_db", self.loss_db, "dB"),
            ("loss_error", self.loss_error, "dB"),
            ("splitter_error", self.splitter_error, "radians"),
            ("phase_error", self.phase_error, "radians"),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return bad(key, &value, &format!("give a finite number ≥ 0 ({unit})"));
            }
        }
        if !(0.0..=1.0).contains(&self.crosstalk) {
            return bad(
                "crosstalk",
                &self.crosstalk,
                "give the fraction of a heater's phase on its neighbours, in [0, 1]",
            );
        }
        for (key, value) in [("vpi", self.vpi), ("v_max", self.v_max)] {
            let Some(v) = value else { continue };
            if !(v > 0.0 && v.is_finite()) {
                return bad(key, &v, "give a positive voltage");
            }
            if self.dac_bits.is_none() {
                return bad(key, &v, "it describes the DAC: set dac_bits too");
            }
        }
        if let Some(v) = self.v_max
            && self.vpi.is_none()
        {
            return bad(
                "v_max",
                &v,
                "the reachable phase π·(v_max/Vπ)² needs vpi too",
            );
        }
        if let Some(b) = self.dac_bits
            && !(1..=24).contains(&b)
        {
            return bad("dac_bits", &b, "give 1 to 24 bits");
        }
        Ok(())
    }
}

/// The static errors of one MZI.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MziErrors {
    /// Splitting-angle error of the first coupler, radians.
    eps1: f64,
    /// Of the second.
    eps2: f64,
    /// Phase error on `θ`, radians.
    theta: f64,
    /// On `φ`.
    phi: f64,
    /// Amplitude transmission, `10^(−loss/20)`.
    amplitude: f64,
}

/// The heater DAC: drive in units of `Vπ`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dac {
    /// Largest drive, `v_max / Vπ`.
    v_max: f64,
    /// The drive's step, `v_max / Vπ / (2^bits − 1)`.
    step: f64,
}

/// A fabricated mesh: its imperfections and the static errors drawn for each of its MZIs.
#[derive(Debug, Clone, PartialEq)]
pub struct Chip {
    crosstalk: f64,
    dac: Option<Dac>,
    /// Per MZI, in the mesh's (light) order.
    errors: Vec<MziErrors>,
    /// Per MZI, the indices of the MZIs of its column on modes `m ± 2`.
    neighbours: Vec<Vec<usize>>,
}

impl Chip {
    /// The chip that fabricates `mesh` with `imperfections` (checked): draws every MZI's
    /// errors, four Gaussians per MZI in light order (so one `σ` does not change another's
    /// draws).
    pub fn new(mesh: &Mesh, imperfections: &Imperfections) -> Result<Self> {
        imperfections.validate()?;
        let i = imperfections;
        let mut rng = Rng::new(i.seed);
        let mut losses = Rng::stream(i.seed, &[LOSS_STREAM]);
        let errors = mesh
            .mzis
            .iter()
            .map(|_| {
                let loss = if i.loss_error > 0.0 {
                    (i.loss_db + i.loss_error * losses.normal()).max(0.0)
                } else {
                    i.loss_db
                };
                MziErrors {
                    eps1: i.splitter_error * rng.normal(),
                    eps2: i.splitter_error * rng.normal(),
                    theta: i.phase_error * rng.normal(),
                    phi: i.phase_error * rng.normal(),
                    amplitude: 10f64.powf(-loss / 20.0),
                }
            })
            .collect();
        let at: HashMap<(usize, usize), usize> = mesh
            .mzis
            .iter()
            .enumerate()
            .map(|(k, z)| ((z.column, z.mode), k))
            .collect();
        let neighbours = mesh
            .mzis
            .iter()
            .map(|z| {
                [z.mode.checked_sub(2), Some(z.mode + 2)]
                    .into_iter()
                    .flatten()
                    .filter_map(|m| at.get(&(z.column, m)).copied())
                    .collect()
            })
            .collect();
        let dac = i.dac_bits.map(|bits| {
            let v_max = match (i.v_max, i.vpi) {
                (Some(v), Some(vpi)) => v / vpi,
                _ => SQRT_2,
            };
            Dac {
                v_max,
                step: v_max / ((1u64 << bits) - 1) as f64,
            }
        });
        Ok(Self {
            crosstalk: i.crosstalk,
            dac,
            errors,
            neighbours,
        })
    }

    /// The phase a heater applies when `x` (radians) is programmed: wrapped into `[0, 2π)`,
    /// then quantised by the DAC.
    fn heater(&self, x: f64) -> f64 {
        let h = wrap(x);
        match self.dac {
            None => h,
            Some(dac) => {
                let v = (h / PI).sqrt().min(dac.v_max);
                let q = (v / dac.step).round() * dac.step;
                PI * q * q
            }
        }
    }

    /// The phases `(θ', φ')` every MZI applies when `mesh`'s are programmed.
    fn applied_phases(&self, mesh: &Mesh) -> Vec<(f64, f64)> {
        assert_eq!(
            mesh.mzis.len(),
            self.errors.len(),
            "a chip runs the mesh it was made for (or one with its phases re-programmed)"
        );
        let heat: Vec<(f64, f64)> = mesh
            .mzis
            .iter()
            .map(|z| (self.heater(z.theta), self.heater(z.phi)))
            .collect();
        heat.iter()
            .zip(&self.errors)
            .zip(&self.neighbours)
            .map(|((&(t, p), e), near)| {
                let (lt, lp) = near
                    .iter()
                    .fold((0.0, 0.0), |(a, b), &j| (a + heat[j].0, b + heat[j].1));
                (
                    t + self.crosstalk * lt + e.theta,
                    p + self.crosstalk * lp + e.phi,
                )
            })
            .collect()
    }

    /// MZI `k`'s 2×2 when it applies the phases `θ`, `φ`.
    fn mzi(&self, k: usize, theta: f64, phi: f64) -> [[C; 2]; 2] {
        let e = &self.errors[k];
        with_errors(theta, phi, e.eps1, e.eps2).map(|row| row.map(|v| v * e.amplitude))
    }

    /// The `N × N` matrix the chip implements when `mesh`'s phases are programmed (`mesh` is
    /// the one the chip was made for, or the same MZIs with other phases).
    pub fn matrix(&self, mesh: &Mesh) -> CMatrix {
        let mut applied = self.applied_phases(mesh).into_iter().enumerate();
        mesh.matrix_with(|_| {
            let (k, (t, p)) = applied.next().expect("matrix_with visits every MZI once");
            self.mzi(k, t, p)
        })
    }

    /// Re-programs `mesh`'s designed phases (`θ`, `φ` wrapped into `[0, 2π)`, output phases)
    /// so that the chip, its splitter errors known, implements the matrix the ideal `mesh`
    /// does (see the module docs); the other imperfections stay as they are. Reports the chip
    /// against `reference` (as [`compare`]) before and after. The local correction runs at
    /// every size; the global re-optimisation after it on meshes of up to
    /// [`MAX_GLOBAL_MODES`] modes.
    pub fn correct(
        &self,
        mesh: &mut Mesh,
        reference: &CMatrix,
        svd: Option<&SvdInfo>,
    ) -> Result<CorrectionReport> {
        self.correct_with(mesh, reference, svd, MAX_ITERATIONS, |_, _| {})
    }

    /// [`Chip::correct`] with at most `iterations` of the global re-optimisation (0: the
    /// local correction alone), reporting its progress as `(iterations done, iterations)`
    /// after each iteration.
    pub fn correct_with(
        &self,
        mesh: &mut Mesh,
        reference: &CMatrix,
        svd: Option<&SvdInfo>,
        iterations: usize,
        progress: impl FnMut(usize, usize),
    ) -> Result<CorrectionReport> {
        let before = compare(reference, &self.matrix(mesh), svd)?;
        let (global, iterations) = self.reprogram(mesh, iterations, progress);
        let after = compare(reference, &self.matrix(mesh), svd)?;
        Ok(CorrectionReport {
            fidelity_before: before.fidelity,
            fidelity_after: after.fidelity,
            error_before: before.error,
            error_after: after.error,
            global,
            iterations,
        })
    }

    /// The correction itself, without the comparisons [`Chip::correct_with`] reports: the
    /// local step, then on meshes of up to [`MAX_GLOBAL_MODES`] modes at most `iterations` of
    /// the global one. Returns whether the global step ran, and its iterations.
    pub fn reprogram(
        &self,
        mesh: &mut Mesh,
        iterations: usize,
        progress: impl FnMut(usize, usize),
    ) -> (bool, usize) {
        let global = mesh.n <= MAX_GLOBAL_MODES && iterations > 0;
        let design = global.then(|| mesh.matrix());
        self.correct_locally(mesh);
        let iterations = match design {
            Some(design) => Sweep::new(self, mesh).refine(mesh, &design, iterations, progress),
            None => 0,
        };
        (global, iterations)
    }

    /// The local correction: MZI by MZI in light order, the phases that make the imperfect MZI
    /// equal the ideal one up to phases on its outputs, which are carried forward (`ψ`, one
    /// per mode: the chip so far is `diag(e^{iψ})` times the ideal mesh so far) and removed
    /// by the output phase screen.
    fn correct_locally(&self, mesh: &mut Mesh) {
        let mut psi = vec![0.0; mesh.n];
        for (z, e) in mesh.mzis.iter_mut().zip(&self.errors) {
            let m = z.mode;
            let theta = reachable_theta(z.theta, e.eps1, e.eps2);
            // with_errors(θ', 0) = diag(e^{ia₀}, e^{ia₁}) · T(θ, 0) · diag(e^{ic}, 1); the
            // chip's MZI sees the input phases ψ, so φ' = φ − c − ψ_m + ψ_{m+1} makes it
            // diag(e^{i(a₀+ψ_{m+1})}, e^{i(a₁+ψ_{m+1})}) · T(θ, φ).
            let (a0, a1, c) = phase_match(
                &with_errors(theta, 0.0, e.eps1, e.eps2),
                &with_errors(z.theta, 0.0, 0.0, 0.0),
            );
            z.phi = wrap(z.phi - c - psi[m] + psi[m + 1]);
            z.theta = theta;
            let common = psi[m + 1];
            psi[m] = a0 + common;
            psi[m + 1] = a1 + common;
        }
        for (o, p) in mesh.output_phases.iter_mut().zip(&psi) {
            *o = wrap(*o - p);
        }
    }
}

/// The internal phase that makes an MZI with coupler errors `ε₁`, `ε₂` split power as the
/// ideal MZI at `θ` does, `|T₀₀|² = sin²(θ/2)`: with errors `|T₀₀|² = c₁²c₂² + s₁²s₂² −
/// 2c₁c₂s₁s₂·cos θ'` (`cᵢ, sᵢ = cos, sin(π/4 + εᵢ)`), which spans `[sin²(ε₁+ε₂),
/// cos²(ε₁−ε₂)]`; a splitting outside is replaced by the nearest end. `θ' ∈ [0, π]`.
fn reachable_theta(theta: f64, eps1: f64, eps2: f64) -> f64 {
    let (s1, c1) = (PI / 4.0 + eps1).sin_cos();
    let (s2, c2) = (PI / 4.0 + eps2).sin_cos();
    let q = 2.0 * c1 * c2 * s1 * s2;
    if q.abs() < 1e-12 {
        // The splitting does not depend on θ.
        return theta;
    }
    let target = (theta / 2.0).sin().powi(2);
    ((c1 * c1 * c2 * c2 + s1 * s1 * s2 * s2 - target) / q)
        .clamp(-1.0, 1.0)
        .acos()
}

/// `(a₀, a₁, c)` with `chip ≈ diag(e^{ia₀}, e^{ia₁}) · ideal · diag(e^{ic}, 1)`, exact when the
/// two have equal moduli: with `z = chip ⊙ conj(ideal)`, `c = arg(z₀₀·z̄₀₁ + z₁₀·z̄₁₁)` and
/// `a_r = arg(z_r0·e^{−ic} + z_r1)` (the least-squares phases otherwise).
fn phase_match(chip: &[[C; 2]; 2], ideal: &[[C; 2]; 2]) -> (f64, f64, f64) {
    let z = |r: usize, s: usize| chip[r][s] * ideal[r][s].conj();
    let c = (z(0, 0) * z(0, 1).conj() + z(1, 0) * z(1, 1).conj()).arg();
    let a = |r: usize| (z(r, 0) * cis(-c) + z(r, 1)).arg();
    (a(0), a(1), c)
}

/// What a correction achieved: the chip against the reference before and after.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CorrectionReport {
    /// Fidelity of the uncorrected chip ([`compare`]).
    pub fidelity_before: f64,
    /// Fidelity of the corrected chip.
    pub fidelity_after: f64,
    /// Normalised Frobenius error of the uncorrected chip.
    pub error_before: f64,
    /// Of the corrected chip.
    pub error_after: f64,
    /// Whether the global re-optimisation followed the local correction (meshes of up to
    /// [`MAX_GLOBAL_MODES`] modes, given at least one iteration).
    #[serde(default)]
    pub global: bool,
    /// Iterations of the global re-optimisation (0 without it).
    pub iterations: usize,
}

/// How a chip reproduces its reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// `‖U_chip − U‖_F / ‖U‖_F`.
    pub error: f64,
    /// `|Tr(U†·U_chip)| / N`, or `/ (‖U‖_F·‖U_chip‖_F)` for an SVD mesh.
    pub fidelity: f64,
    /// `|Tr(U†·U_chip)| / (‖U‖_F·‖U_chip‖_F)`: 1 for a chip that is the reference times any
    /// number (a loss common to every path).
    pub fidelity_normalized: f64,
    /// `‖U_chip‖_F² / ‖U‖_F²`: the mean power transmission relative to the reference.
    pub transmission: f64,
}

/// The matrix a mesh carries, from its `N × N` transfer matrix `full`: `full` itself, or for
/// an SVD mesh its `m × n` block times the scale ([`SvdInfo::implemented`]).
pub fn implemented(full: &CMatrix, svd: Option<&SvdInfo>) -> CMatrix {
    svd.map_or_else(|| full.clone(), |info| info.implemented(full))
}

/// Compares the matrix a mesh carries (from its transfer matrix `full`, see [`implemented`])
/// with `reference` (see the module docs for the metrics). Refuses a reference of another
/// shape.
pub fn compare(reference: &CMatrix, full: &CMatrix, svd: Option<&SvdInfo>) -> Result<Comparison> {
    let chip = implemented(full, svd);
    if (reference.rows, reference.cols) != (chip.rows, chip.cols) {
        return Err(CompileError::Design(format!(
            "the reference is {}×{}, but the mesh implements {}×{}",
            reference.rows, reference.cols, chip.rows, chip.cols
        )));
    }
    let overlap: C = reference
        .data
        .iter()
        .zip(&chip.data)
        .map(|(u, v)| u.conj() * v)
        .sum();
    let norm = |x: &CMatrix| x.data.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
    let (n_ref, n_chip) = (norm(reference), norm(&chip));
    let ratio = |scale: f64| {
        if scale > 0.0 {
            overlap.norm() / scale
        } else {
            0.0
        }
    };
    let normalized = ratio(n_ref * n_chip);
    Ok(Comparison {
        error: chip.relative_error(reference),
        fidelity: match svd {
            None => ratio(reference.rows as f64),
            Some(_) => normalized,
        },
        fidelity_normalized: normalized,
        transmission: if n_ref > 0.0 {
            (n_chip / n_ref).powi(2)
        } else {
            0.0
        },
    })
}

/// The chip with ideal heaters as a function of all its phases, swept column by column for
/// the value and gradient of `‖U_design − U_chip‖_F²`. Parameters: `θ_k, φ_k` of every MZI
/// (interleaved, light order), then the output phases.
struct Sweep<'a> {
    chip: &'a Chip,
    /// The columns in light order (those with MZIs or attenuators): number, MZIs.
    columns: Vec<(usize, Vec<usize>)>,
}

impl<'a> Sweep<'a> {
    fn new(chip: &'a Chip, mesh: &Mesh) -> Self {
        let mut columns: BTreeMap<usize, Vec<usize>> = mesh
            .attenuators
            .iter()
            .map(|a| (a.column, Vec::new()))
            .collect();
        for (k, z) in mesh.mzis.iter().enumerate() {
            columns.entry(z.column).or_default().push(k);
        }
        Self {
            chip,
            columns: columns.into_iter().collect(),
        }
    }

    /// Minimises from `mesh`'s phases, at most `most` iterations, and writes the result back;
    /// returns the iterations.
    fn refine(
        &self,
        mesh: &mut Mesh,
        design: &CMatrix,
        most: usize,
        mut progress: impl FnMut(usize, usize),
    ) -> usize {
        let mut x: Vec<f64> = mesh
            .mzis
            .iter()
            .flat_map(|z| [z.theta, z.phi])
            .chain(mesh.output_phases.iter().copied())
            .collect();
        let iterations = lbfgs(
            &mut x,
            most,
            |x, g| self.objective(mesh, design, x, g),
            |done| progress(done, most),
        );
        let k = mesh.mzis.len();
        for (z, p) in mesh.mzis.iter_mut().zip(x.chunks_exact(2)) {
            z.theta = wrap(p[0]);
            z.phi = wrap(p[1]);
        }
        for (o, &p) in mesh.output_phases.iter_mut().zip(&x[2 * k..]) {
            *o = wrap(p);
        }
        iterations
    }

    /// `‖design − U(x)‖_F²`, its gradient into `grad`. `U = D_out·A_{L−1} ⋯ A_0` by columns;
    /// with `R_c = A_{c−1} ⋯ A_0` kept from the forward sweep and `Y_c = (D_out·A_{L−1} ⋯
    /// A_{c+1})†·E`, `E = design − U`, the derivative along a parameter of an MZI of column
    /// `c` on modes `(m, m+1)` is `−2·Re Σ conj(H)·∂A` over the 2×2 block `H` of `Y_c·R_c†`
    /// (a column's attenuators, after its MZIs, count among what follows them).
    fn objective(&self, mesh: &Mesh, design: &CMatrix, x: &[f64], grad: &mut [f64]) -> f64 {
        use rayon::prelude::*;
        let n = mesh.n;
        let k_total = mesh.mzis.len();
        let blocks: Vec<[[C; 2]; 2]> = (0..k_total)
            .map(|k| self.chip.mzi(k, x[2 * k], x[2 * k + 1]))
            .collect();
        let d_out: Vec<C> = x[2 * k_total..].iter().map(|&p| cis(p)).collect();
        // The columns of U are independent: each block of them gives its share of the value,
        // of every MZI's H and of the output phases' gradient, in parallel; the shares are
        // added in block order, so the result does not depend on the threads.
        let starts: Vec<usize> = (0..n).step_by(GRADIENT_BLOCK).collect();
        let shares: Vec<Share> = (starts.par_iter())
            .map(|&c0| {
                let w = GRADIENT_BLOCK.min(n - c0);
                let mut r = CMatrix::identity_columns(n, c0, w);
                // R before each column, one after the other in one buffer.
                let mut before = Vec::with_capacity(self.columns.len() * n * w);
                for (c, column) in &self.columns {
                    before.extend_from_slice(&r.data);
                    for &k in column {
                        r.rows_apply(mesh.mzis[k].mode, &blocks[k], 0..w);
                    }
                    attenuate(mesh, *c, &mut r);
                }
                // U = D_out·R; Y = D_out†·E.
                let mut y = CMatrix::zeros(n, w);
                let (mut f, mut g_out) = (0.0, vec![0.0; n]);
                for (row, &d) in d_out.iter().enumerate() {
                    for j in 0..w {
                        let u = d * r.at(row, j);
                        let e = design.at(row, c0 + j) - u;
                        f += e.norm_sqr();
                        // ∂U[row, j]/∂out_row = i·U[row, j].
                        g_out[row] += -2.0 * (e.conj() * C::i() * u).re;
                        y.data[row * w + j] = d.conj() * e;
                    }
                }
                let mut h = vec![[[C::new(0.0, 0.0); 2]; 2]; k_total];
                for ((c, column), r) in self.columns.iter().zip(before.chunks_exact(n * w)).rev() {
                    attenuate(mesh, *c, &mut y);
                    for &k in column {
                        let m = mesh.mzis[k].mode;
                        let (lo, mid, hi) = (m * w, (m + 1) * w, (m + 2) * w);
                        h[k] = row_products(
                            [&y.data[lo..mid], &y.data[mid..hi]],
                            [&r[lo..mid], &r[mid..hi]],
                        );
                        let a = &blocks[k];
                        let adjoint = [
                            [a[0][0].conj(), a[1][0].conj()],
                            [a[0][1].conj(), a[1][1].conj()],
                        ];
                        y.rows_apply(m, &adjoint, 0..w);
                    }
                }
                Share { f, h, g_out }
            })
            .collect();
        let mut f = 0.0;
        let mut h = vec![[[C::new(0.0, 0.0); 2]; 2]; k_total];
        grad[2 * k_total..].iter_mut().for_each(|g| *g = 0.0);
        for share in &shares {
            f += share.f;
            for (sum, part) in h.iter_mut().zip(&share.h) {
                for (a, b) in sum.iter_mut().flatten().zip(part.iter().flatten()) {
                    *a += b;
                }
            }
            for (g, part) in grad[2 * k_total..].iter_mut().zip(&share.g_out) {
                *g += part;
            }
        }
        for (k, h) in h.iter().enumerate() {
            let (d_theta, d_phi) = self.derivatives(k, x[2 * k], x[2 * k + 1], &blocks[k]);
            let along = |d: &[[C; 2]; 2]| {
                -2.0 * (0..2)
                    .flat_map(|a| (0..2).map(move |b| (a, b)))
                    .map(|(a, b)| (h[a][b].conj() * d[a][b]).re)
                    .sum::<f64>()
            };
            grad[2 * k] = along(&d_theta);
            grad[2 * k + 1] = along(&d_phi);
        }
        f
    }

    /// `∂A/∂θ` and `∂A/∂φ` of MZI `k`'s 2×2 `a` (at `θ`, `φ`): `A = amp·B₂·diag(e^{iθ},1)·
    /// B₁·diag(e^{iφ},1)`, so `∂A/∂φ` is `A` with its first column times `i`, and `∂A/∂θ =
    /// amp·(B₂ column 0)·i·e^{iθ}·(row 0 of B₁·diag(e^{iφ},1))`.
    fn derivatives(
        &self,
        k: usize,
        theta: f64,
        phi: f64,
        a: &[[C; 2]; 2],
    ) -> ([[C; 2]; 2], [[C; 2]; 2]) {
        let e = &self.chip.errors[k];
        let (b1, b2) = (coupler(e.eps1), coupler(e.eps2));
        let g = C::i() * cis(theta) * e.amplitude;
        let row = [b1[0][0] * cis(phi), b1[0][1]];
        let d_theta = [
            [g * b2[0][0] * row[0], g * b2[0][0] * row[1]],
            [g * b2[1][0] * row[0], g * b2[1][0] * row[1]],
        ];
        let d_phi = [
            [a[0][0] * C::i(), C::new(0.0, 0.0)],
            [a[1][0] * C::i(), C::new(0.0, 0.0)],
        ];
        (d_theta, d_phi)
    }
}

/// Applies the attenuators of column `c` (real diagonal: its own adjoint) to `m`'s rows.
fn attenuate(mesh: &Mesh, c: usize, m: &mut CMatrix) {
    let n = m.cols;
    for a in mesh.attenuators.iter().filter(|a| a.column == c) {
        for v in &mut m.data[a.mode * n..(a.mode + 1) * n] {
            *v *= a.transmission;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{Method, decompose, decompose_svd, haar_unitary};

    fn haar(n: usize, seed: u64) -> CMatrix {
        haar_unitary(n, &mut Rng::new(seed))
    }

    fn clements(u: &CMatrix) -> Mesh {
        decompose(u, Method::Clements, 1e-9).unwrap()
    }

    /// The chip of `mesh` with splitter errors of standard deviation `sigma` (radians) alone.
    fn splitters(mesh: &Mesh, sigma: f64, seed: u64) -> Chip {
        let imperfections = Imperfections {
            splitter_error: sigma,
            seed,
            ..Default::default()
        };
        Chip::new(mesh, &imperfections).unwrap()
    }

    fn chip_matrix(mesh: &Mesh, imperfections: &Imperfections) -> CMatrix {
        Chip::new(mesh, imperfections).unwrap().matrix(mesh)
    }

    fn fidelity(u: &CMatrix, chip: &CMatrix) -> f64 {
        compare(u, chip, None).unwrap().fidelity
    }

    #[test]
    fn the_ideal_chip_is_the_mesh() {
        let u = haar(6, 1);
        let mut rng = Rng::new(2);
        let w = CMatrix::random(3, 5, &mut rng);
        let meshes = [
            clements(&u),
            decompose(&u, Method::Reck, 1e-9).unwrap(),
            decompose_svd(&w, Method::Clements).unwrap().0,
        ];
        for mesh in meshes {
            let chip = chip_matrix(&mesh, &Imperfections::default());
            let err = chip.relative_error(&mesh.matrix());
            assert!(err < 1e-14, "{err}");
        }
        let c = compare(
            &u,
            &chip_matrix(&clements(&u), &Imperfections::default()),
            None,
        )
        .unwrap();
        assert!(c.error < 1e-13 && (c.fidelity - 1.0).abs() < 1e-13, "{c:?}");
    }

    /// A common loss leaves the normalised fidelity at 1; the transmission is its power.
    #[test]
    fn the_normalised_fidelity_ignores_a_common_loss() {
        let u = haar(6, 8);
        let mut half = u.clone();
        half.data.iter_mut().for_each(|v| *v *= 0.5);
        let c = compare(&u, &half, None).unwrap();
        assert!((c.fidelity - 0.5).abs() < 1e-14, "{c:?}");
        assert!((c.fidelity_normalized - 1.0).abs() < 1e-14, "{c:?}");
        assert!((c.transmission - 0.25).abs() < 1e-14, "{c:?}");
        // A chip that is not the reference's shape is not 1.
        let other = haar(6, 9);
        assert!(compare(&u, &other, None).unwrap().fidelity_normalized < 0.9);
    }

    /// A spread of the MZIs' losses: each MZI its own loss around `loss_db`, the other draws
    /// the same chip's; the rectangle's shape then suffers too.
    #[test]
    fn a_spread_of_losses_varies_each_mzi_and_nothing_else() {
        let u = haar(16, 3);
        let mesh = clements(&u);
        let model = |loss_error| Imperfections {
            loss_db: 0.5,
            loss_error,
            splitter_error: 0.01,
            seed: 4,
            ..Default::default()
        };
        let (even, spread) = (
            Chip::new(&mesh, &model(0.0)).unwrap(),
            Chip::new(&mesh, &model(0.2)).unwrap(),
        );
        let amplitudes = |c: &Chip| c.errors.iter().map(|e| e.amplitude).collect::<Vec<_>>();
        let a = amplitudes(&spread);
        assert!(
            amplitudes(&even)
                .iter()
                .all(|&x| x == 10f64.powf(-0.5 / 20.0))
        );
        let db: Vec<f64> = a.iter().map(|x| -20.0 * x.log10()).collect();
        let mean = db.iter().sum::<f64>() / db.len() as f64;
        let sd = (db.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / db.len() as f64).sqrt();
        assert!(
            (mean - 0.5).abs() < 0.05 && (sd - 0.2).abs() < 0.03,
            "{mean} {sd}"
        );
        for (x, y) in even.errors.iter().zip(&spread.errors) {
            assert_eq!(
                (x.eps1, x.eps2, x.theta, x.phi),
                (y.eps1, y.eps2, y.theta, y.phi)
            );
        }
        let shape = |c: &Chip| {
            compare(&u, &c.matrix(&mesh), None)
                .unwrap()
                .fidelity_normalized
        };
        assert!(
            shape(&spread) < shape(&even) - 1e-3,
            "{} {}",
            shape(&spread),
            shape(&even)
        );
        // No gain: a loss drawn below 0 is 0.
        let wide = Chip::new(
            &mesh,
            &Imperfections {
                loss_error: 5.0,
                ..model(0.0)
            },
        )
        .unwrap();
        assert!(wide.errors.iter().all(|e| e.amplitude <= 1.0));
        assert!(wide.errors.iter().any(|e| e.amplitude == 1.0));
    }

    /// Clements et al. (2016), Fig. 4: with the same loss in every MZI, the rectangular mesh's
    /// paths meet nearly the same number of MZIs, so the loss is nearly a common factor; the
    /// triangle's paths meet from 1 to 2N − 3, and the matrix is distorted.
    #[test]
    fn the_rectangle_is_robust_to_a_uniform_loss_and_the_triangle_is_not() {
        let loss = Imperfections {
            loss_db: 0.5,
            ..Default::default()
        };
        let u = haar(16, 3);
        let normalized = |method| {
            let mesh = decompose(&u, method, 1e-9).unwrap();
            compare(&u, &chip_matrix(&mesh, &loss), None)
                .unwrap()
                .fidelity_normalized
        };
        let (rectangle, triangle) = (normalized(Method::Clements), normalized(Method::Reck));
        assert!(
            rectangle > 0.995 && triangle < 0.97,
            "{rectangle} {triangle}"
        );
    }

    #[test]
    fn loss_scales_every_path_by_the_mzis_it_meets() {
        let loss = Imperfections {
            loss_db: 0.5,
            ..Default::default()
        };
        // Two modes: one MZI on every path.
        let u = haar(2, 3);
        let mesh = clements(&u);
        let mut scaled = u.clone();
        scaled
            .data
            .iter_mut()
            .for_each(|v| *v *= 10f64.powf(-0.5 / 20.0));
        let err = chip_matrix(&mesh, &loss).relative_error(&scaled);
        assert!(err < 1e-14, "{err}");
        // N modes: every path meets between 1 and `depth` MZIs.
        let u = haar(8, 4);
        let mesh = clements(&u);
        let power: f64 = chip_matrix(&mesh, &loss)
            .data
            .iter()
            .map(|v| v.norm_sqr())
            .sum();
        let per_mzi = 10f64.powf(-0.5 / 10.0);
        assert!(power <= per_mzi * 8.0 * (1.0 + 1e-12), "{power}");
        assert!(power >= per_mzi.powi(mesh.depth() as i32) * 8.0, "{power}");
        let f = fidelity(&u, &chip_matrix(&mesh, &loss));
        // |Tr(U†·U_chip)| ≤ ‖U‖_F·‖U_chip‖_F.
        assert!(
            f <= (8.0 * power).sqrt() / 8.0 + 1e-12 && f < per_mzi.sqrt(),
            "{f}"
        );
    }

    #[test]
    fn finer_dacs_and_less_crosstalk_come_closer() {
        let u = haar(8, 5);
        let mesh = clements(&u);
        let at = |i: Imperfections| fidelity(&u, &chip_matrix(&mesh, &i));
        let bits = |b| {
            at(Imperfections {
                dac_bits: Some(b),
                ..Default::default()
            })
        };
        let (f4, f8, f12) = (bits(4), bits(8), bits(12));
        assert!(f4 < f8 && f8 < f12 && f12 < 1.0, "{f4} {f8} {f12}");
        assert!(1.0 - f12 < 1e-4, "{f12}");
        // A drive clipped below 2π loses the phases above it.
        let clipped = at(Imperfections {
            dac_bits: Some(12),
            vpi: Some(4.0),
            v_max: Some(4.0),
            ..Default::default()
        });
        assert!(clipped < f12, "{clipped}");
        let crosstalk = |x| {
            at(Imperfections {
                crosstalk: x,
                ..Default::default()
            })
        };
        let (f0, f5) = (crosstalk(0.0), crosstalk(0.05));
        assert!((f0 - 1.0).abs() < 1e-13 && f5 < 0.999, "{f0} {f5}");
    }

    #[test]
    fn one_seed_one_chip() {
        let mesh = clements(&haar(6, 6));
        let noisy = |seed| {
            chip_matrix(
                &mesh,
                &Imperfections {
                    splitter_error: 0.05,
                    phase_error: 0.02,
                    seed,
                    ..Default::default()
                },
            )
        };
        assert_eq!(noisy(7), noisy(7));
        assert!(noisy(7).relative_error(&noisy(8)) > 1e-3);
        // Phase errors alone lower the fidelity too.
        let u = mesh.matrix();
        let f = fidelity(
            &u,
            &chip_matrix(
                &mesh,
                &Imperfections {
                    phase_error: 0.02,
                    ..Default::default()
                },
            ),
        );
        assert!(f < 0.9999, "{f}");
    }

    #[test]
    fn the_local_correction_is_exact_where_the_splitting_is_reachable() {
        // Every θ well inside (0, π): every splitting reachable with errors of 0.03.
        let mesh = Mesh {
            n: 4,
            mzis: [
                (0, 0, 1.0, 2.0),
                (0, 2, 2.0, 0.5),
                (1, 1, 1.5, 4.0),
                (2, 0, 0.7, 1.0),
                (2, 2, 2.5, 3.0),
            ]
            .iter()
            .map(|&(column, mode, theta, phi)| crate::mesh::Mzi {
                column,
                mode,
                theta,
                phi,
            })
            .collect(),
            attenuators: Vec::new(),
            output_phases: vec![0.1, 0.2, 0.3, 0.4],
        };
        let chip = splitters(&mesh, 0.03, 3);
        let design = mesh.matrix();
        assert!(chip.matrix(&mesh).relative_error(&design) > 1e-2);
        let mut corrected = mesh.clone();
        chip.correct_locally(&mut corrected);
        let err = chip.matrix(&corrected).relative_error(&design);
        assert!(err < 1e-13, "{err}");
    }

    #[test]
    fn the_gradient_is_the_derivative() {
        let mut rng = Rng::new(9);
        let w = CMatrix::random(4, 3, &mut rng);
        let (mesh, _) = decompose_svd(&w, Method::Clements).unwrap();
        let chip = Chip::new(
            &mesh,
            &Imperfections {
                splitter_error: 0.1,
                loss_db: 0.3,
                ..Default::default()
            },
        )
        .unwrap();
        let sweep = Sweep::new(&chip, &mesh);
        let design = haar(4, 10);
        let x: Vec<f64> = (0..2 * mesh.mzis.len() + 4)
            .map(|_| 2.0 * PI * rng.uniform())
            .collect();
        let mut g = vec![0.0; x.len()];
        let f = sweep.objective(&mesh, &design, &x, &mut g);
        // The value is the chip's own matrix.
        let mut programmed = mesh.clone();
        for (z, p) in programmed.mzis.iter_mut().zip(x.chunks_exact(2)) {
            (z.theta, z.phi) = (p[0], p[1]);
        }
        programmed
            .output_phases
            .copy_from_slice(&x[2 * mesh.mzis.len()..]);
        let m = chip.matrix(&programmed);
        let direct: f64 = m
            .data
            .iter()
            .zip(&design.data)
            .map(|(a, b)| (a - b).norm_sqr())
            .sum();
        assert!((f - direct).abs() < 1e-12 * f, "{f} {direct}");
        let mut scratch = vec![0.0; x.len()];
        for i in 0..x.len() {
            let h = 1e-6;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (sweep.objective(&mesh, &design, &up, &mut scratch)
                - sweep.objective(&mesh, &design, &down, &mut scratch))
                / (2.0 * h);
            assert!((numeric - g[i]).abs() < 1e-7, "{i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn the_correction_undoes_splitter_errors() {
        for (n, seed) in [(8, 11), (8, 12), (16, 13)] {
            let u = haar(n, seed);
            let mut mesh = clements(&u);
            let chip = Chip::new(
                &mesh,
                &Imperfections {
                    splitter_error: 0.05,
                    seed,
                    ..Default::default()
                },
            )
            .unwrap();
            let r = chip.correct(&mut mesh, &u, None).unwrap();
            eprintln!("{n} {seed}: {r:?}");
            assert!(r.fidelity_before < 0.999, "{r:?}");
            assert!(r.fidelity_after > r.fidelity_before, "{r:?}");
            assert!(r.error_after < r.error_before / 2.0, "{r:?}");
            // The corrected phases are the chip's matrix that the report measured.
            let c = compare(&u, &chip.matrix(&mesh), None).unwrap();
            assert_eq!(c.error, r.error_after);
        }
    }

    #[test]
    fn the_correction_of_an_svd_mesh_and_its_limits() {
        let mut rng = Rng::new(14);
        let w = CMatrix::random(5, 4, &mut rng);
        let (mut mesh, info) = decompose_svd(&w, Method::Clements).unwrap();
        let chip = splitters(&mesh, 0.05, 15);
        let r = chip.correct(&mut mesh, &w, Some(&info)).unwrap();
        eprintln!("svd: {r:?}");
        assert!(r.error_after < r.error_before / 2.0, "{r:?}");
        assert!(r.fidelity_after > r.fidelity_before, "{r:?}");
        let e = chip
            .correct(&mut mesh, &CMatrix::zeros(4, 4), Some(&info))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reference is 4×4") && e.contains("5×4"), "{e}");
    }

    #[test]
    fn a_mesh_too_large_to_re_optimise_is_corrected_locally() {
        let n = MAX_GLOBAL_MODES + 32;
        let u = haar(n, 16);
        let mut mesh = clements(&u);
        let chip = splitters(&mesh, 0.05, 17);
        let r = chip.correct(&mut mesh, &u, None).unwrap();
        eprintln!("{n}: {r:?}");
        assert!(!r.global && r.iterations == 0, "{r:?}");
        assert!(r.fidelity_after > r.fidelity_before, "{r:?}");
        assert!(r.error_after < r.error_before / 2.0, "{r:?}");
        assert_eq!(
            compare(&u, &chip.matrix(&mesh), None).unwrap().error,
            r.error_after
        );
        // Up to the limit, the global re-optimisation follows (none needed where the local
        // correction is exact, as here).
        let small = haar(MAX_GLOBAL_MODES / 8, 18);
        let mut mesh = clements(&small);
        let chip = splitters(&mesh, 0.05, 19);
        let r = chip.correct(&mut mesh, &small, None).unwrap();
        assert!(r.global, "{r:?}");
        // The progress of the global step: every iteration reported, in order, out of the most.
        let u = haar(MAX_GLOBAL_MODES / 8, 20);
        let mut mesh = clements(&u);
        let mut seen = Vec::new();
        let chip = splitters(&mesh, 0.05, 21);
        let designed = mesh.clone();
        let r = chip
            .correct_with(&mut mesh, &u, None, 7, |done, most| seen.push((done, most)))
            .unwrap();
        assert!(r.global && r.iterations == 7, "{r:?}");
        assert_eq!(seen, (1..=7).map(|i| (i, 7)).collect::<Vec<_>>());
        // A larger budget goes on lowering the error; none is the local correction alone.
        let budget = |iterations: usize| {
            let mut mesh = designed.clone();
            let r = chip.correct_with(&mut mesh, &u, None, iterations, |_, _| {});
            r.unwrap()
        };
        let (none, some, more) = (budget(0), budget(7), budget(70));
        assert!(!none.global && none.iterations == 0, "{none:?}");
        assert!(some.error_after < none.error_after, "{some:?} {none:?}");
        assert!(more.error_after < some.error_after, "{more:?} {some:?}");
        // Two blocks of columns, on one thread and on two: the same phases to the last bit.
        let u = haar(GRADIENT_BLOCK + 5, 22);
        let corrected = |threads: usize| {
            let mut mesh = clements(&u);
            let chip = splitters(&mesh, 0.05, 23);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let r = pool.install(|| chip.correct(&mut mesh, &u, None)).unwrap();
            assert!(r.global && r.iterations > 0, "{r:?}");
            mesh
        };
        assert_eq!(corrected(1), corrected(2));
    }

    #[test]
    fn bad_files_and_values_are_refused_naming_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chip.toml");
        for (text, needles) in [
            (
                "loss_db = 0.2\nsplitter_eror = 0.1\n",
                &["splitter_eror"][..],
            ),
            ("loss_db = -1\n", &["loss_db = -1", "≥ 0"]),
            ("loss_error = -0.1\n", &["loss_error = -0.1", "dB"]),
            ("phase_error = nan\n", &["phase_error = NaN"]),
            ("crosstalk = 1.5\n", &["crosstalk = 1.5"]),
            ("dac_bits = 0\n", &["dac_bits = 0", "1 to 24"]),
            ("dac_bits = 30\n", &["dac_bits = 30"]),
            ("dac_bits = -3\n", &["dac_bits"]),
            ("vpi = 4.0\n", &["vpi = 4", "dac_bits"]),
            ("dac_bits = 8\nv_max = 5.0\n", &["v_max = 5", "vpi"]),
            ("dac_bits = 8\nvpi = 0\n", &["vpi = 0", "positive"]),
            ("seed = \"one\"\n", &["seed"]),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = Imperfections::load(&file).unwrap_err().to_string();
            assert!(e.contains("chip.toml"), "{text}: {e}");
            for needle in needles {
                assert!(e.contains(needle), "{text}: {e}");
            }
        }
        std::fs::write(
            &file,
            "loss_db = 0.1\nsplitter_error = 0.02\nphase_error = 0.01\ndac_bits = 10\n\
             vpi = 4.36\nv_max = 6.5\ncrosstalk = 0.01\nseed = 3\n",
        )
        .unwrap();
        let i = Imperfections::load(&file).unwrap();
        assert_eq!((i.dac_bits, i.seed, i.v_max), (Some(10), 3, Some(6.5)));
        let e = Imperfections::load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.toml") && e.contains("cannot read"),
            "{e}"
        );
        // Library users get the same checks.
        let mesh = clements(&haar(2, 1));
        let e = Chip::new(
            &mesh,
            &Imperfections {
                splitter_error: -0.1,
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("splitter_error = -0.1"), "{e}");
    }
}
