//! Materials of surface reliefs: refractive index `n` and extinction `κ`, at one wavelength or
//! over a band through a dispersion model, and the built-in materials.
//!
//! A relief of height `h` in a medium of index `n_m` delays the wave by `2π(n(λ) − n_m)h/λ` and
//! transmits `exp(−2πκ(λ)h/λ)` of its amplitude. A [`Material`] holds `n` and `κ` at the
//! wavelength it is used at (a system's design wavelength); its optional [`Dispersion`] gives
//! them at every other wavelength, which is what a relief lit by a broadband source, or
//! fabricated for another laser, needs. Without one, `n` and `κ` are taken as constant.
//!
//! The dispersion models take the vacuum wavelength in micrometres, as catalogues print their
//! coefficients (the keys name the units: `c_um2` is in µm²):
//!
//! | model | formula | typical source |
//! |---|---|---|
//! | `sellmeier` | `n² = 1 + Σ Bᵢλ²/(λ² − Cᵢ)` | glass catalogues (Schott, Ohara), crystals |
//! | `schott` | `n² = A₀ + A₁λ² + A₂λ⁻² + A₃λ⁻⁴ + A₄λ⁻⁶ + A₅λ⁻⁸` | older catalogues, polymers |
//! | `cauchy` | `n = A + B/λ² + C/λ⁴` | photoresists, ellipsometry fits |
//! | `table` | `n` (and `κ`) at listed wavelengths, linear between them | measured data (THz-TDS) |
//!
//! A model's `range_um` (a table's first and last wavelength) is where it holds; a wavelength
//! outside it is refused. In TOML (a `[[material]]` table, a network's `[modulation]`):
//!
//! ```toml
//! dispersion = { sellmeier = { b = [1.03961212, 0.231792344, 1.01046945], c_um2 = [0.00600069867, 0.0200179144, 103.560653], range_um = [0.3, 2.5] } }
//! ```
//!
//! ```
//! use photonflow_optics::material::MaterialEntry;
//! let bk7 = MaterialEntry::preset("n-bk7").unwrap().at(532e-9)?; // a design at 532 nm
//! let (n, _) = bk7.index_at(587.6e-9)?; // the helium d line
//! assert!((n - 1.5168).abs() < 1e-4 && bk7.n > n);
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

use std::f64::consts::TAU;
use std::path::Path;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::coherence::{header_unit, table_lines};
use crate::error::{OpticsError, Result, invalid};
use crate::units::{Length, format_length};

/// Largest relative difference between the wavelength a dispersion-free material's values
/// hold at and the wavelength it is used at.
pub const WAVELENGTH_TOLERANCE: f64 = 0.01;

/// How a material's index (and extinction) varies with the vacuum wavelength `λ`, in µm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Dispersion {
    /// `n² = 1 + Σ Bᵢλ²/(λ² − Cᵢ)`; `κ` is the material's, constant.
    Sellmeier {
        /// The `Bᵢ` (dimensionless).
        b: Vec<f64>,
        /// The `Cᵢ`, µm² (the squares of the resonance wavelengths).
        c_um2: Vec<f64>,
        /// Where the fit holds, µm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        range_um: Option<[f64; 2]>,
    },
    /// `n² = A₀ + A₁λ² + A₂λ⁻² + A₃λ⁻⁴ + …` (the Schott, or Laurent, formula: any number of
    /// terms after `A₁`); `κ` is the material's, constant.
    Schott {
        /// `A₀, A₁, A₂, …`, in µm to the matching powers.
        a: Vec<f64>,
        /// Where the fit holds, µm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        range_um: Option<[f64; 2]>,
    },
    /// `n = A + B/λ² + C/λ⁴`; `κ` is the material's, constant.
    Cauchy {
        /// `A` (dimensionless).
        a: f64,
        /// `B`, µm².
        #[serde(default)]
        b_um2: f64,
        /// `C`, µm⁴.
        #[serde(default)]
        c_um4: f64,
        /// Where the fit holds, µm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        range_um: Option<[f64; 2]>,
    },
    /// Measured values at increasing wavelengths, interpolated linearly between them.
    Table {
        /// Wavelengths, µm, increasing.
        wavelength_um: Vec<f64>,
        /// `n` at each.
        n: Vec<f64>,
        /// `κ` at each; absent: the material's, constant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kappa: Option<Vec<f64>>,
    },
}

impl Dispersion {
    /// The model's name, as written in files.
    pub fn name(&self) -> &'static str {
        match self {
            Dispersion::Sellmeier { .. } => "sellmeier",
            Dispersion::Schott { .. } => "schott",
            Dispersion::Cauchy { .. } => "cauchy",
            Dispersion::Table { .. } => "table",
        }
    }

    /// Where the model holds, metres (`None`: no range stated).
    pub fn range_m(&self) -> Option<(f64, f64)> {
        let r = match self {
            Dispersion::Sellmeier { range_um, .. }
            | Dispersion::Schott { range_um, .. }
            | Dispersion::Cauchy { range_um, .. } => *range_um,
            Dispersion::Table { wavelength_um, .. } => {
                Some([wavelength_um[0], wavelength_um[wavelength_um.len() - 1]])
            }
        };
        r.map(|[a, b]| (a * 1e-6, b * 1e-6))
    }

    /// Checks the coefficients: finite, matching lengths, a range that is an interval, a table
    /// of increasing wavelengths with `n > 0` and `κ ≥ 0`. The message says what to fix.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let finite = |what: &str, v: &[f64]| match v.iter().find(|x| !x.is_finite()) {
            Some(x) => Err(format!(
                "{} {what} has {x}; every value must be finite",
                self.name()
            )),
            None => Ok(()),
        };
        let range = |r: &Option<[f64; 2]>| match r {
            Some([a, b]) if !(a.is_finite() && b.is_finite() && 0.0 < *a && a < b) => Err(format!(
                "{} range_um = [{a}, {b}]; give [shortest, longest] in µm, both > 0",
                self.name()
            )),
            _ => Ok(()),
        };
        match self {
            Dispersion::Sellmeier { b, c_um2, range_um } => {
                finite("b", b)?;
                finite("c_um2", c_um2)?;
                if b.is_empty() || b.len() != c_um2.len() {
                    return Err(format!(
                        "sellmeier has {} b and {} c_um2 terms; give one Cᵢ per Bᵢ, at least one",
                        b.len(),
                        c_um2.len()
                    ));
                }
                range(range_um)
            }
            Dispersion::Schott { a, range_um } => {
                finite("a", a)?;
                if a.is_empty() {
                    return Err("schott has no terms; give a = [A₀, A₁, A₂, …]".into());
                }
                range(range_um)
            }
            Dispersion::Cauchy {
                a,
                b_um2,
                c_um4,
                range_um,
            } => {
                finite("coefficients", &[*a, *b_um2, *c_um4])?;
                range(range_um)
            }
            Dispersion::Table {
                wavelength_um,
                n,
                kappa,
            } => {
                finite("wavelength_um", wavelength_um)?;
                finite("n", n)?;
                let k = kappa.as_deref().unwrap_or(&[]);
                finite("kappa", k)?;
                if wavelength_um.is_empty()
                    || n.len() != wavelength_um.len()
                    || kappa.is_some() && k.len() != wavelength_um.len()
                {
                    return Err(format!(
                        "table has {} wavelengths, {} n and {} kappa values; give one n (and κ) \
                         per wavelength, at least one",
                        wavelength_um.len(),
                        n.len(),
                        k.len()
                    ));
                }
                if wavelength_um[0] <= 0.0 || wavelength_um.windows(2).any(|w| w[1] <= w[0]) {
                    return Err("table wavelength_um must be positive and increasing".into());
                }
                if n.iter().any(|&n| n <= 0.0) || k.iter().any(|&k| k < 0.0) {
                    return Err("table needs n > 0 and κ ≥ 0 at every wavelength".into());
                }
                Ok(())
            }
        }
    }

    /// Reads measured `n` (and `k`, the extinction `κ`) into a [`Dispersion::Table`] from a
    /// text table (comma, semicolon, tab or space separated; `#` starts a comment), in either
    /// of two layouts:
    ///
    /// - columns: a header `wavelength_nm, n, k` (the unit named as the spectrum reader takes
    ///   it: `wavelength_um`, `Wavelength (nm)`, …; `k` or `kappa` optional), then rows;
    /// - blocks, as refractiveindex.info exports them: `wl,n` and rows, then `wl,k` and rows
    ///   (`wl` in µm), the `k` rows on a grid of their own, interpolated onto the `n` rows'.
    pub fn read_nk(path: &Path) -> Result<Dispersion> {
        let bad = |problem: String| OpticsError::File {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the n, k table: {e}")))?;
        // µm per unit of the wavelength column (multiplier, divisor), and which quantity each
        // further column holds (n: true, k: false)
        let mut layout: Option<((f64, f64), Vec<bool>)> = None;
        let mut n: Vec<(f64, f64)> = Vec::new();
        let mut k: Vec<(f64, f64)> = Vec::new();
        for (i, line, fields) in table_lines(&text) {
            let Ok(first) = fields[0].parse::<f64>() else {
                // a header: the wavelength column's name (with its unit), then n and/or k
                let mut columns = Vec::new();
                let mut rest = fields.len();
                while rest > 1 {
                    match fields[rest - 1].to_lowercase().as_str() {
                        "n" => columns.push(true),
                        "k" | "kappa" | "κ" => columns.push(false),
                        _ => break,
                    }
                    rest -= 1;
                }
                columns.reverse();
                let name = fields[..rest].join(" ");
                let unit = if name.eq_ignore_ascii_case("wl") {
                    Some("um")
                } else {
                    header_unit(&name)
                };
                let unit = match unit {
                    Some("nm") => (1.0, 1e3),
                    Some("um") => (1.0, 1.0),
                    Some("mm") => (1e3, 1.0),
                    Some(_) => (1e6, 1.0),
                    None if rest > 1 => {
                        return Err(bad(format!(
                            "line {}: column '{}' is neither n nor k",
                            i + 1,
                            fields[rest - 1]
                        )));
                    }
                    None => {
                        return Err(bad(format!(
                            "line {}: the header '{line}' names no wavelength unit; write \
                             e.g. wavelength_nm, n, k (or wl,n as refractiveindex.info does, \
                             in µm)",
                            i + 1
                        )));
                    }
                };
                if columns.is_empty() {
                    return Err(bad(format!(
                        "line {}: the header names no n or k column",
                        i + 1
                    )));
                }
                layout = Some((unit, columns));
                continue;
            };
            let Some((unit, columns)) = &layout else {
                return Err(bad(format!(
                    "line {}: a row before any header; start with e.g. wavelength_nm, n, k",
                    i + 1
                )));
            };
            if fields.len() != columns.len() + 1 {
                return Err(bad(format!(
                    "line {}: {} values where the header has {} columns",
                    i + 1,
                    fields.len(),
                    columns.len() + 1
                )));
            }
            for (f, &is_n) in fields[1..].iter().zip(columns) {
                let v: f64 = f
                    .parse()
                    .map_err(|_| bad(format!("line {}: '{f}' is not a number", i + 1)))?;
                let rows = if is_n { &mut n } else { &mut k };
                rows.push((first * unit.0 / unit.1, v));
            }
        }
        if n.is_empty() {
            return Err(bad(
                "holds no n values (a header with an n column, then rows)".into(),
            ));
        }
        let kappa = if k.is_empty() {
            None
        } else {
            let (lo, hi) = (k[0].0, k[k.len() - 1].0);
            if n[0].0 < lo || n[n.len() - 1].0 > hi {
                return Err(bad(format!(
                    "its k rows ({lo}–{hi} µm) do not cover its n rows ({}–{} µm)",
                    n[0].0,
                    n[n.len() - 1].0
                )));
            }
            let k_table = Dispersion::Table {
                wavelength_um: k.iter().map(|r| r.0).collect(),
                n: vec![1.0; k.len()],
                kappa: Some(k.iter().map(|r| r.1).collect()),
            };
            k_table
                .validate()
                .map_err(|e| bad(format!("k rows: {e}")))?;
            Some(
                n.iter()
                    .map(|r| k_table.eval(r.0 * 1e-6).1.unwrap_or(0.0))
                    .collect(),
            )
        };
        let table = Dispersion::Table {
            wavelength_um: n.iter().map(|r| r.0).collect(),
            n: n.iter().map(|r| r.1).collect(),
            kappa,
        };
        table.validate().map_err(bad)?;
        Ok(table)
    }

    /// `n` at vacuum wavelength `wavelength` (m), and `κ` when the model gives it; no range
    /// check ([`Material::index_at`] makes it).
    fn eval(&self, wavelength: f64) -> (f64, Option<f64>) {
        let l = wavelength * 1e6;
        let l2 = l * l;
        match self {
            Dispersion::Sellmeier { b, c_um2, .. } => {
                let n2 = 1.0
                    + b.iter()
                        .zip(c_um2)
                        .map(|(b, c)| b * l2 / (l2 - c))
                        .sum::<f64>();
                (n2.sqrt(), None)
            }
            Dispersion::Schott { a, .. } => {
                let mut n2 = a[0];
                if let Some(a1) = a.get(1) {
                    n2 += a1 * l2;
                }
                let mut p = 1.0;
                for ai in a.iter().skip(2) {
                    p /= l2;
                    n2 += ai * p;
                }
                (n2.sqrt(), None)
            }
            Dispersion::Cauchy {
                a, b_um2, c_um4, ..
            } => (a + b_um2 / l2 + c_um4 / (l2 * l2), None),
            Dispersion::Table {
                wavelength_um,
                n,
                kappa,
            } => {
                let at = |v: &[f64]| {
                    let i = wavelength_um.partition_point(|&w| w < l);
                    if i == 0 {
                        v[0]
                    } else if i == v.len() {
                        v[v.len() - 1]
                    } else {
                        let t =
                            (l - wavelength_um[i - 1]) / (wavelength_um[i] - wavelength_um[i - 1]);
                        v[i - 1] + t * (v[i] - v[i - 1])
                    }
                };
                (at(n), kappa.as_deref().map(at))
            }
        }
    }
}

/// A relief's material at the wavelength it is used at: index, extinction and, optionally, how
/// both vary with the wavelength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Material {
    /// Name for reports (`vero-white`, `fused-silica`, …).
    pub name: String,
    /// Refractive index `n` at the design wavelength (> 1 for a relief that delays the wave).
    pub n: f64,
    /// Extinction coefficient `κ ≥ 0` at the design wavelength: intensity decays as
    /// `exp(−4πκh/λ)` through `h` of it.
    pub kappa: f64,
    /// `n` and `κ` at other wavelengths; `None`: both constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispersion: Option<Dispersion>,
}

impl Material {
    /// A material of constant `n` and `κ`.
    pub fn constant(name: impl Into<String>, n: f64, kappa: f64) -> Self {
        Self {
            name: name.into(),
            n,
            kappa,
            dispersion: None,
        }
    }

    /// Phase delay (radians) of `height` metres of material relative to the medium of index
    /// `medium`, at the vacuum wavelength `wavelength` its `n` holds at: `2π(n − n_medium)h/λ`.
    pub fn phase(&self, height: f64, wavelength: f64, medium: f64) -> f64 {
        TAU * (self.n - medium) * height / wavelength
    }

    /// Amplitude transmission of `height` metres of material at the wavelength its `κ` holds
    /// at: `exp(−2πκh/λ)`.
    pub fn amplitude(&self, height: f64, wavelength: f64) -> f64 {
        (-TAU * self.kappa * height / wavelength).exp()
    }

    /// `(n, κ)` at the vacuum wavelength `wavelength` (m): from the dispersion model, refused
    /// outside its range; without one, the material's own.
    pub fn index_at(&self, wavelength: f64) -> Result<(f64, f64)> {
        let Some(d) = &self.dispersion else {
            return Ok((self.n, self.kappa));
        };
        if let Some((lo, hi)) = d.range_m()
            && !(lo <= wavelength && wavelength <= hi)
        {
            return Err(invalid(
                "material",
                format!(
                    "material '{}' is known from {} to {} ({} dispersion), not at {}; use a \
                     material measured there",
                    self.name,
                    format_length(lo),
                    format_length(hi),
                    d.name(),
                    format_length(wavelength)
                ),
            ));
        }
        let (n, kappa) = d.eval(wavelength);
        if !(n.is_finite() && n > 0.0) {
            return Err(invalid(
                "material",
                format!(
                    "material '{}': its {} dispersion gives n = {n} at {}; check the \
                     coefficients and their units (λ in µm)",
                    self.name,
                    d.name(),
                    format_length(wavelength)
                ),
            ));
        }
        Ok((n, kappa.unwrap_or(self.kappa)))
    }

    /// The material at `wavelength` (m): `n` and `κ` from [`Material::index_at`], the dispersion
    /// kept.
    pub fn at(&self, wavelength: f64) -> Result<Material> {
        let (n, kappa) = self.index_at(wavelength)?;
        Ok(Material {
            n,
            kappa,
            ..self.clone()
        })
    }

    /// Checks the values, and that `n` and `κ` are the dispersion's at `design` (m), the
    /// wavelength they are meant to hold at (within 10⁻⁶).
    pub fn validate(&self, design: f64) -> Result<()> {
        let bad = |problem: String| Err(invalid("material", problem));
        if !(self.n.is_finite() && self.n > 0.0 && self.kappa.is_finite() && self.kappa >= 0.0) {
            return bad(format!(
                "material '{}' has n = {}, κ = {}; need n > 0 and κ ≥ 0",
                self.name, self.n, self.kappa
            ));
        }
        if let Some(d) = &self.dispersion {
            d.validate()
                .or_else(|e| bad(format!("material '{}': {e}", self.name)))?;
            let (n, kappa) = self.index_at(design)?;
            if (n - self.n).abs() > 1e-6 || (kappa - self.kappa).abs() > 1e-6 {
                return bad(format!(
                    "material '{}' has n = {}, κ = {} but its {} dispersion gives n = {n}, κ = \
                     {kappa} at the design wavelength {}; give the dispersion's values",
                    self.name,
                    self.n,
                    self.kappa,
                    d.name(),
                    format_length(design)
                ));
            }
        }
        Ok(())
    }

    /// How a relief of this material, designed at `design` (m) in a medium of index `medium`,
    /// transmits at `wavelength` (m), in terms of its design phase: see [`ReliefScale`].
    /// Refused where the dispersion does not reach.
    pub fn relief_at(&self, design: f64, wavelength: f64, medium: f64) -> Result<ReliefScale> {
        let s = design / wavelength;
        let (n, kappa) = self.index_at(wavelength)?;
        let delay = self.n - medium;
        Ok(ReliefScale {
            path: s,
            phase: s * (n - medium) / delay,
            absorption: s * (kappa - self.kappa) / delay,
        })
    }
}

/// A relief's transmission at a wavelength `λ` from what it is at its design wavelength `λ₀`:
/// with `φ₀ = 2π(n₀ − n_m)h/λ₀` its design phase and `a₀` its design amplitude,
/// `t(λ) = a₀^path · exp(−absorption·φ₀) · exp(i·phase·φ₀)` — that is
/// `exp(−2πκ(λ)h/λ + 2πi(n(λ) − n_m)h/λ)` for `a₀ = exp(−2πκ₀h/λ₀)`. Without dispersion,
/// `phase = path = λ₀/λ` and `absorption = 0`. (The medium's own dispersion is neglected.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliefScale {
    /// `λ₀/λ`: the power of the design amplitude.
    pub path: f64,
    /// `(λ₀/λ)·(n(λ) − n_m)/(n₀ − n_m)`: the factor on the design phase.
    pub phase: f64,
    /// `(λ₀/λ)·(κ(λ) − κ₀)/(n₀ − n_m)`: the extra extinction per radian of design phase.
    pub absorption: f64,
}

impl ReliefScale {
    /// The identity (the design wavelength).
    pub const DESIGN: ReliefScale = ReliefScale {
        path: 1.0,
        phase: 1.0,
        absorption: 0.0,
    };
}

/// A material as users write it (a `[[material]]` table, a network's `[modulation]`, a built-in
/// one): `n` and `κ` quoted at a wavelength, or a dispersion model. In TOML:
///
/// ```toml
/// name = "my-resin"
/// n = 1.65
/// kappa = 0.02
/// wavelength = "0.75mm"          # where n and κ hold (optional: then wherever it is used)
/// source = "THz-TDS of a printed slab, 2026"   # optional
/// ```
///
/// or, instead of `n` and `wavelength`, a `dispersion` (see the [module docs](self); `kappa`
/// is then the constant extinction of a formula).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialEntry {
    /// Name.
    pub name: String,
    /// Refractive index at `wavelength` (without a dispersion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<f64>,
    /// Extinction coefficient (with a formula dispersion: at every wavelength).
    #[serde(default)]
    pub kappa: f64,
    /// Where `n` and `κ` hold; `None`: wherever the material is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wavelength: Option<Length>,
    /// `n` (and `κ`) at every wavelength.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispersion: Option<Dispersion>,
    /// Where the values come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl MaterialEntry {
    /// The built-in material called `name`, if any.
    pub fn preset(name: &str) -> Option<&'static MaterialEntry> {
        MATERIAL_PRESETS.iter().find(|p| p.name == name)
    }

    /// The names of every built-in material, comma-separated (for error messages).
    pub fn preset_names() -> String {
        MATERIAL_PRESETS
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A material in use (`n` and `κ` at `wavelength`, m) as an entry: its dispersion, or its
    /// values quoted at `wavelength`.
    pub fn of(material: &Material, wavelength: f64, source: impl Into<String>) -> Self {
        let dispersive = material.dispersion.is_some();
        Self {
            name: material.name.clone(),
            n: (!dispersive).then_some(material.n),
            kappa: material.kappa,
            wavelength: (!dispersive).then_some(Length(wavelength)),
            dispersion: material.dispersion.clone(),
            source: Some(source.into()),
        }
    }

    /// A material measured as `n` (and `k`) against the wavelength in the file `path`
    /// ([`Dispersion::read_nk`]), named after the file and known across its rows.
    pub fn read_nk(path: &Path) -> Result<Self> {
        Ok(Self {
            name: path
                .file_stem()
                .map_or("measured".into(), |s| s.to_string_lossy().into_owned()),
            n: None,
            kappa: 0.0,
            wavelength: None,
            dispersion: Some(Dispersion::read_nk(path)?),
            source: Some(path.display().to_string()),
        })
    }

    /// Checks the entry: `n` or a dispersion (not both), finite values, `κ ≥ 0`. The message
    /// says what to fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |problem: String| Err(invalid("material", problem));
        let name = &self.name;
        match (&self.n, &self.dispersion) {
            (Some(_), Some(_)) => {
                return bad(format!(
                    "material '{name}' gives both n and a dispersion; give one (the dispersion \
                     gives n at every wavelength)"
                ));
            }
            (None, None) => {
                return bad(format!(
                    "material '{name}' gives neither n nor a dispersion; give n = 1.5 (with the \
                     wavelength it holds at) or dispersion = {{ sellmeier = {{ … }} }}"
                ));
            }
            (Some(n), None) if !(n.is_finite() && *n > 0.0) => {
                return bad(format!("material '{name}' has n = {n}; need n > 0"));
            }
            (None, Some(d)) => d
                .validate()
                .or_else(|e| bad(format!("material '{name}': {e}")))?,
            _ => {}
        }
        if !(self.kappa.is_finite() && self.kappa >= 0.0) {
            return bad(format!(
                "material '{name}' has κ = {}; need κ ≥ 0",
                self.kappa
            ));
        }
        if let Some(w) = self.wavelength
            && !(w.m().is_finite() && w.m() > 0.0)
        {
            return bad(format!(
                "material '{name}' has wavelength {w}; give a positive length"
            ));
        }
        Ok(())
    }

    /// The material at `wavelength` (m): through its dispersion (refused outside its range), or
    /// its own `n` and `κ` when they hold there (within 1 % of their wavelength, or stated for
    /// none).
    pub fn at(&self, wavelength: f64) -> Result<Material> {
        self.validate()?;
        let material = Material {
            name: self.name.clone(),
            n: self.n.unwrap_or(0.0),
            kappa: self.kappa,
            dispersion: self.dispersion.clone(),
        };
        if material.dispersion.is_some() {
            return material.at(wavelength);
        }
        if let Some(w) = self.wavelength
            && (w.m() - wavelength).abs() > WAVELENGTH_TOLERANCE * wavelength
        {
            return Err(invalid(
                "material",
                format!(
                    "material '{}' has n = {} at λ = {w} and no dispersion model, but the design \
                     is at λ = {}; give the material at the design wavelength, or with a \
                     dispersion",
                    self.name,
                    material.n,
                    format_length(wavelength)
                ),
            ));
        }
        Ok(material)
    }

    /// The material of a relief designed at `wavelength` (m) in a medium of index `medium`:
    /// [`MaterialEntry::at`], refused when `n ≤ medium` (a relief of it would not delay the
    /// wave).
    pub fn for_relief(&self, wavelength: f64, medium: f64) -> Result<Material> {
        let m = self.at(wavelength)?;
        if m.n <= medium {
            return Err(invalid(
                "material",
                format!(
                    "material '{}' has n = {} ≤ the medium's index {medium} at {}: a relief of \
                     it cannot delay the wave; choose a denser material",
                    m.name,
                    m.n,
                    format_length(wavelength)
                ),
            ));
        }
        Ok(m)
    }

    /// Its values in words: `n = 1.72, κ = 0.03 at 0.75mm`, or `sellmeier dispersion, 210nm to
    /// 3.71um`.
    pub fn describe(&self) -> String {
        match (&self.dispersion, self.n, self.wavelength) {
            (Some(d), _, _) => {
                let range = d.range_m().map_or(String::new(), |(a, b)| {
                    format!(", {} to {}", format_length(a), format_length(b))
                });
                format!("{} dispersion{range}", d.name())
            }
            (None, n, w) => format!(
                "n = {}, κ = {}{}",
                n.unwrap_or(f64::NAN),
                self.kappa,
                w.map_or(String::new(), |w| format!(" at {w}"))
            ),
        }
    }
}

/// The built-in materials.
pub static MATERIAL_PRESETS: LazyLock<Vec<MaterialEntry>> = LazyLock::new(|| {
    let preset = |name: &str, dispersion, source: &str| MaterialEntry {
        name: name.to_string(),
        n: None,
        kappa: 0.0,
        wavelength: None,
        dispersion: Some(dispersion),
        source: Some(source.to_string()),
    };
    vec![
        MaterialEntry {
            name: "thz-resin".into(),
            n: Some(1.72),
            kappa: 0.03,
            wavelength: Some(Length(0.75e-3)),
            dispersion: None,
            source: Some(
                "3D-printing resin of Lin et al., Science 361, 1004 (2018), at 0.4 THz, as \
                 commonly quoted"
                    .into(),
            ),
        },
        preset(
            "fused-silica",
            Dispersion::Sellmeier {
                b: vec![0.6961663, 0.4079426, 0.8974794],
                c_um2: [0.0684043f64, 0.1162414, 9.896161]
                    .iter()
                    .map(|r| r * r)
                    .collect(),
                range_um: Some([0.21, 3.71]),
            },
            "Malitson, J. Opt. Soc. Am. 55, 1205 (1965): Sellmeier fit, 0.21–3.71 µm",
        ),
        preset(
            "pmma",
            Dispersion::Schott {
                a: vec![
                    2.399964,
                    -8.308636e-2,
                    -1.919569e-1,
                    8.720608e-2,
                    -1.666411e-2,
                    1.169519e-3,
                ],
                range_um: Some([0.4358, 1.052]),
            },
            "Kasarova et al., Opt. Mater. 29, 1481 (2007): Schott fit, 0.436–1.052 µm, 20 °C",
        ),
        preset(
            "n-bk7",
            Dispersion::Sellmeier {
                b: vec![1.03961212, 0.231792344, 1.01046945],
                c_um2: vec![0.00600069867, 0.0200179144, 103.560653],
                range_um: Some([0.3, 2.5]),
            },
            "Schott N-BK7 datasheet: Sellmeier fit, 0.3–2.5 µm",
        ),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The Fraunhofer d, F and C lines, m.
    const D: f64 = 587.5618e-9;
    const F: f64 = 486.1327e-9;
    const C: f64 = 656.2725e-9;

    fn abbe(m: &Material) -> f64 {
        let n = |l| m.index_at(l).unwrap().0;
        (n(D) - 1.0) / (n(F) - n(C))
    }

    #[test]
    fn presets_reproduce_catalogue_indices_and_abbe_numbers() {
        // n_d and V_d as the catalogues print them, independent of the fits' coefficients.
        for (name, nd, vd) in [
            ("n-bk7", 1.5168, 64.17),
            ("fused-silica", 1.4585, 67.82),
            ("pmma", 1.4914, 52.60),
        ] {
            let m = MaterialEntry::preset(name).unwrap().at(D).unwrap();
            let n = m.index_at(D).unwrap().0;
            assert!((n - nd).abs() < 1e-4, "{name}: n_d {n} vs {nd}");
            assert!(
                (abbe(&m) - vd).abs() < 0.02,
                "{name}: V_d {} vs {vd}",
                abbe(&m)
            );
        }
        let silica = MaterialEntry::preset("fused-silica")
            .unwrap()
            .at(632.8e-9)
            .unwrap();
        assert!((silica.n - 1.4570).abs() < 1e-4);
        assert!((silica.index_at(1064e-9).unwrap().0 - 1.4496).abs() < 1e-4);
        // Normal dispersion: n falls with λ across the range.
        let n: Vec<f64> = (0..20)
            .map(|i| silica.index_at(0.25e-6 + i as f64 * 0.15e-6).unwrap().0)
            .collect();
        assert!(n.windows(2).all(|w| w[1] < w[0]), "{n:?}");
    }

    #[test]
    fn presets_resolve_at_a_design_wavelength() {
        let bk7 = MaterialEntry::preset("n-bk7").unwrap();
        let m = bk7.at(532e-9).unwrap();
        m.validate(532e-9).unwrap();
        assert!(
            m.validate(633e-9)
                .unwrap_err()
                .to_string()
                .contains("gives n =")
        );
        let e = bk7.at(0.75e-3).unwrap_err().to_string();
        assert!(e.contains("300nm to 2.5um") && e.contains("750um"), "{e}");
        let resin = MaterialEntry::preset("thz-resin").unwrap();
        assert_eq!(resin.at(0.755e-3).unwrap().n, 1.72);
        let e = resin.at(632.8e-9).unwrap_err().to_string();
        assert!(e.contains("632.8nm") && e.contains("no dispersion"), "{e}");
        assert_eq!(
            MaterialEntry::preset_names(),
            "thz-resin, fused-silica, pmma, n-bk7"
        );
        assert!(bk7.for_relief(532e-9, 1.51).is_ok());
        let e = bk7.for_relief(532e-9, 1.53).unwrap_err().to_string();
        assert!(e.contains("≤ the medium's index 1.53"), "{e}");
        assert_eq!(resin.describe(), "n = 1.72, κ = 0.03 at 750um");
        assert_eq!(bk7.describe(), "sellmeier dispersion, 300nm to 2.5um");
        // an entry made from a material in use gives that material back
        let m = bk7.at(633e-9).unwrap();
        assert_eq!(MaterialEntry::of(&m, 633e-9, "x").at(633e-9).unwrap(), m);
        let r = resin.at(0.75e-3).unwrap();
        assert_eq!(MaterialEntry::of(&r, 0.75e-3, "x").at(0.75e-3).unwrap(), r);
        // an entry needs n or a dispersion, not both
        let both = MaterialEntry {
            n: Some(1.5),
            ..bk7.clone()
        };
        assert!(
            both.validate()
                .unwrap_err()
                .to_string()
                .contains("both n and a dispersion")
        );
        let neither = MaterialEntry {
            dispersion: None,
            ..bk7.clone()
        };
        assert!(
            neither
                .validate()
                .unwrap_err()
                .to_string()
                .contains("neither n nor")
        );
    }

    #[test]
    fn cauchy_schott_and_tables_evaluate_their_formulas() {
        let cauchy = Material {
            dispersion: Some(Dispersion::Cauchy {
                a: 1.5,
                b_um2: 0.004,
                c_um4: 1e-4,
                range_um: None,
            }),
            ..Material::constant("c", 0.0, 0.0)
        };
        let n = cauchy.index_at(0.5e-6).unwrap().0;
        assert!((n - (1.5 + 0.004 / 0.25 + 1e-4 / 0.0625)).abs() < 1e-14);
        // The Schott form with A₀ and A₂ only is a one-term Cauchy in n².
        let schott = Dispersion::Schott {
            a: vec![2.25, 0.0, 0.01],
            range_um: None,
        };
        assert!((schott.eval(1e-6).0 - 2.26f64.sqrt()).abs() < 1e-14);

        let table = Material {
            dispersion: Some(Dispersion::Table {
                wavelength_um: vec![500.0, 750.0, 1000.0],
                n: vec![1.70, 1.72, 1.73],
                kappa: Some(vec![0.02, 0.03, 0.05]),
            }),
            ..Material::constant("t", 1.72, 0.03)
        };
        table.validate(0.75e-3).unwrap();
        let (n, k) = table.index_at(0.875e-3).unwrap();
        assert!((n - 1.725).abs() < 1e-12 && (k - 0.04).abs() < 1e-12);
        assert_eq!(table.index_at(0.5e-3).unwrap(), (1.70, 0.02));
        let e = table.index_at(1.2e-3).unwrap_err().to_string();
        assert!(e.contains("500um to 1mm") && e.contains("table"), "{e}");
    }

    #[test]
    fn measured_tables_read_in_columns_or_in_blocks() {
        let dir = std::env::temp_dir().join(format!("pf-nk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("nk.csv");
        // refractiveindex.info's layout: n and k in blocks, k on a grid of its own
        std::fs::write(
            &file,
            "wl,n\n0.4,1.60\n0.6,1.55\n0.8,1.53\nwl,k\n0.3,0.0\n0.5,0.002\n0.9,0.0\n",
        )
        .unwrap();
        let d = Dispersion::read_nk(&file).unwrap();
        let m = Material {
            dispersion: Some(d),
            ..Material::constant("m", 0.0, 0.0)
        };
        let (n, k) = m.index_at(0.5e-6).unwrap();
        // k resampled onto the n rows (0.001, 0.0015, 0.0005), then linear between them
        assert!(
            (n - 1.575).abs() < 1e-12 && (k - 0.00125).abs() < 1e-12,
            "{n} {k}"
        );
        let (_, k) = m.index_at(0.8e-6).unwrap();
        assert!((k - 0.0005).abs() < 1e-12, "{k}");
        assert!(m.index_at(0.9e-6).is_err());
        // columns with the unit in the header, comments, spaces
        std::fs::write(
            &file,
            "# resist, ellipsometry\nWavelength (nm)  n  kappa\n500 1.52 0\n700 1.50 0.001\n",
        )
        .unwrap();
        let Dispersion::Table {
            wavelength_um,
            n,
            kappa,
        } = Dispersion::read_nk(&file).unwrap()
        else {
            panic!("a table")
        };
        assert_eq!((wavelength_um, n), (vec![0.5, 0.7], vec![1.52, 1.50]));
        assert_eq!(kappa, Some(vec![0.0, 0.001]));
        for (text, want) in [
            ("lambda,n\n500,1.5\n", "names no wavelength unit"),
            ("wavelength_nm,n,q\n", "neither n nor k"),
            ("500,1.5\n", "a row before any header"),
            (
                "wavelength_nm,n\n500,1.5,3\n",
                "3 values where the header has 2",
            ),
            ("wl,k\n0.5,0\n", "holds no n values"),
            (
                "wl,n\n0.4,1.5\n0.8,1.5\nwl,k\n0.5,0\n0.9,0\n",
                "do not cover",
            ),
            ("wl,n\n0.8,1.5\n0.4,1.5\n", "increasing"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = Dispersion::read_nk(&file).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("nk.csv"), "{text}: {e}");
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_dispersions_are_refused_with_the_fix() {
        let with = |d: Dispersion| Material {
            dispersion: Some(d),
            ..Material::constant("x", 1.5, 0.0)
        };
        for (d, want) in [
            (
                Dispersion::Sellmeier {
                    b: vec![1.0, 0.2],
                    c_um2: vec![0.01],
                    range_um: None,
                },
                "one Cᵢ per Bᵢ",
            ),
            (
                Dispersion::Cauchy {
                    a: f64::NAN,
                    b_um2: 0.0,
                    c_um4: 0.0,
                    range_um: None,
                },
                "must be finite",
            ),
            (
                Dispersion::Cauchy {
                    a: 1.5,
                    b_um2: 0.0,
                    c_um4: 0.0,
                    range_um: Some([2.0, 1.0]),
                },
                "[shortest, longest]",
            ),
            (
                Dispersion::Table {
                    wavelength_um: vec![1.0, 0.5],
                    n: vec![1.5, 1.5],
                    kappa: None,
                },
                "increasing",
            ),
            (
                Dispersion::Table {
                    wavelength_um: vec![0.5, 1.0],
                    n: vec![1.5],
                    kappa: None,
                },
                "one n (and κ) per wavelength",
            ),
        ] {
            let e = with(d).validate(1e-6).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        // A fit used across a resonance gives an index that is not one.
        let wrong = with(Dispersion::Sellmeier {
            b: vec![6.0],
            c_um2: vec![4.0],
            range_um: None,
        });
        let e = wrong.index_at(1e-6).unwrap_err().to_string();
        assert!(e.contains("λ in µm"), "{e}");
    }

    #[test]
    fn relief_scale_is_the_ratio_of_optical_paths() {
        let bk7 = MaterialEntry::preset("n-bk7").unwrap().at(550e-9).unwrap();
        let r = bk7.relief_at(550e-9, 450e-9, 1.0).unwrap();
        let n = bk7.index_at(450e-9).unwrap().0;
        let (h, l0, l) = (1.3e-6, 550e-9, 450e-9);
        let phi0 = bk7.phase(h, l0, 1.0);
        assert!((r.phase * phi0 - TAU * (n - 1.0) * h / l).abs() < 1e-12);
        assert_eq!(r.path, l0 / l);
        assert_eq!(r.absorption, 0.0);
        assert_eq!(bk7.relief_at(l0, l0, 1.0).unwrap(), ReliefScale::DESIGN);
        // A constant material: the phase scales with λ₀/λ alone.
        let plain = Material::constant("p", 1.5, 0.01);
        let r = plain.relief_at(l0, l, 1.0).unwrap();
        assert_eq!((r.phase, r.absorption), (l0 / l, 0.0));
    }
}
