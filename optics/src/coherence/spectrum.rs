//! Spectra of broadband light: a continuous [`Profile`] (Gaussian, flat band, measured table or
//! discrete lines) and its sampling into a [`Spectrum`] of [`Line`]s — the wavelengths a
//! simulation propagates, with the fraction of the power each one carries.
//!
//! The lines of a Gaussian profile are equally spaced in optical frequency with Gaussian weights
//! (the trapezoidal rule, spacing and span balanced for the path differences to resolve: its
//! error falls like `exp(−(2π/h − 2πσΔ)²/2)`, three times fewer lines than Gauss–Hermite nodes
//! need once the path differences exceed the coherence length), those of a flat band its
//! Gauss–Legendre nodes in wavelength, those of a measured table the power centroids of bins of
//! equal power: few lines, and the sum over them converges exponentially for the first two.
//! [`Profile::sample_for`] picks the fewest lines for which the spectrum's coherence function —
//! the average of the phase factor `exp(2πiΔ/λ)` an extra path `Δ` brings — is reproduced to a
//! tolerance over the path differences a geometry spans.
//!
//! ```
//! use photonflow_optics::coherence::Profile;
//!
//! // a superluminescent diode: 830 nm, 20 nm full width at half maximum
//! let sld = Profile::Gaussian { centre: 830e-9, fwhm: 20e-9 };
//! // enough lines to get every path difference up to 40 µm right to 1e-4
//! let spectrum = sld.sample_for(40e-6, 1e-4)?;
//! assert!(spectrum.lines().len() < 16);
//! let total: f64 = spectrum.lines().iter().map(|l| l.weight).sum();
//! assert!((total - 1.0).abs() < 1e-12);
//! assert!((spectrum.coherence(25e-6) - sld.coherence(25e-6)).norm() < 1e-4);
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

use std::f64::consts::{LN_2, PI};
use std::path::Path;

use num_complex::Complex;
use serde::{Deserialize, Serialize};

use super::quadrature::gauss_legendre;
use crate::error::{OpticsError, Result, invalid};
use crate::units::parse_length;

/// The speed of light in vacuum, m/s.
pub const SPEED_OF_LIGHT: f64 = 299_792_458.0;

/// The most lines [`Profile::sample_for`] will choose.
pub const MAX_LINES: usize = 256;

/// One spectral line: a vacuum wavelength (m) and the fraction of the power it carries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Vacuum wavelength, metres.
    #[serde(rename = "wavelength_m")]
    pub wavelength: f64,
    /// Fraction of the total power (the weights of a [`Spectrum`] sum to 1).
    pub weight: f64,
}

/// The continuous spectrum of a source (its power spectral density, up to a scale). In JSON
/// (an [`OpticalSystem`](crate::system::OpticalSystem)'s `source`): `{"gaussian": {"centre_m",
/// "fwhm_m"}}`, `{"flat": {"min_m", "max_m"}}`, `{"lines": [{"wavelength_m", "weight"}, …]}` or
/// `{"table": [[wavelength_m, density], …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Profile {
    /// Gaussian in optical frequency (a superluminescent diode, a mode-locked laser): centred at
    /// `ν₀ = c/centre`, with the frequency width at half maximum that spans `centre ± fwhm/2`
    /// in wavelength. Metres.
    Gaussian {
        /// Centre (vacuum) wavelength, m.
        #[serde(rename = "centre_m")]
        centre: f64,
        /// Full width at half maximum in wavelength, m.
        #[serde(rename = "fwhm_m")]
        fwhm: f64,
    },
    /// Flat in wavelength between `min` and `max` (a lamp behind a band-pass filter). Metres.
    Flat {
        /// Shortest wavelength, m.
        #[serde(rename = "min_m")]
        min: f64,
        /// Longest wavelength, m.
        #[serde(rename = "max_m")]
        max: f64,
    },
    /// Discrete lines (lasers, a lamp's emission lines), used as they are; the weights are
    /// normalised.
    Lines(Vec<Line>),
    /// A measured spectrum: `(wavelength m, power density per unit wavelength)` at increasing
    /// wavelengths, linear between samples (a spectrometer's output).
    Table(Vec<(f64, f64)>),
}

/// A sampled spectrum: the lines a simulation propagates, weights summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    lines: Vec<Line>,
}

impl Spectrum {
    /// One wavelength: coherent, monochromatic light.
    pub fn monochromatic(wavelength: f64) -> Result<Self> {
        Profile::Lines(vec![Line {
            wavelength,
            weight: 1.0,
        }])
        .sample(1, 0.0)
    }

    /// The lines, in increasing wavelength.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The power-weighted mean optical frequency, as a wavelength `c/ν̄` (m).
    pub fn mean_wavelength(&self) -> f64 {
        let nu: f64 = self
            .lines
            .iter()
            .map(|l| l.weight / l.wavelength)
            .sum::<f64>();
        1.0 / nu
    }

    /// The coherence function of the sampled lines: `Σ wᵢ·exp(2πiΔ/λᵢ)` for an extra optical
    /// path `Δ` (m); compare with [`Profile::coherence`].
    pub fn coherence(&self, path_difference: f64) -> Complex<f64> {
        self.lines
            .iter()
            .map(|l| Complex::from_polar(l.weight, 2.0 * PI * path_difference / l.wavelength))
            .sum()
    }
}

impl Profile {
    /// Checks the parameters: positive finite wavelengths, a Gaussian narrower than twice its
    /// centre, a non-empty band, non-negative powers with some power.
    pub fn validate(&self) -> Result<()> {
        let wl = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    name,
                    format!("{v} m: a wavelength must be positive and finite"),
                ))
            }
        };
        match self {
            Profile::Gaussian { centre, fwhm } => {
                wl("spectrum centre", *centre)?;
                if !(fwhm.is_finite() && *fwhm > 0.0 && *fwhm < 2.0 * centre) {
                    return Err(invalid(
                        "spectrum width",
                        format!(
                            "the full width {fwhm} m must be positive and below twice the centre wavelength ({} m); give lines for narrower light",
                            2.0 * centre
                        ),
                    ));
                }
            }
            Profile::Flat { min, max } => {
                wl("spectrum band", *min)?;
                wl("spectrum band", *max)?;
                if min >= max {
                    return Err(invalid(
                        "spectrum band",
                        format!(
                            "the band {min} … {max} m is empty; give the shorter wavelength first"
                        ),
                    ));
                }
            }
            Profile::Lines(lines) => {
                if lines.is_empty() {
                    return Err(invalid("spectrum lines", "there are no lines"));
                }
                for l in lines {
                    wl("spectrum lines", l.wavelength)?;
                    if !(l.weight.is_finite() && l.weight >= 0.0) {
                        return Err(invalid(
                            "spectrum lines",
                            format!(
                                "the line at {} m has weight {}; weights must be ≥ 0",
                                l.wavelength, l.weight
                            ),
                        ));
                    }
                }
                if lines.iter().map(|l| l.weight).sum::<f64>() <= 0.0 {
                    return Err(invalid("spectrum lines", "every line has zero weight"));
                }
            }
            Profile::Table(rows) => {
                if rows.len() < 2 {
                    return Err(invalid(
                        "spectrum table",
                        "a measured spectrum needs at least two samples",
                    ));
                }
                for (i, &(w, p)) in rows.iter().enumerate() {
                    wl("spectrum table", w)?;
                    if !(p.is_finite() && p >= 0.0) {
                        return Err(invalid(
                            "spectrum table",
                            format!("sample {} has power {p}; powers must be ≥ 0", i + 1),
                        ));
                    }
                    if i > 0 && w <= rows[i - 1].0 {
                        return Err(invalid(
                            "spectrum table",
                            format!(
                                "sample {} ({w} m) does not follow {} m: wavelengths must increase",
                                i + 1,
                                rows[i - 1].0
                            ),
                        ));
                    }
                }
                if pieces(rows).iter().map(|p| p.1).sum::<f64>() <= 0.0 {
                    return Err(invalid("spectrum table", "every sample has zero power"));
                }
            }
        }
        Ok(())
    }

    /// The profile's coherence function, `∫ s(ν)·exp(2πiνΔ/c) dν / ∫ s(ν) dν` for an extra
    /// optical path `Δ` (m): closed form for a Gaussian (`exp(2πiν₀τ − 2π²σ²τ²)`, `τ = Δ/c`),
    /// exact sums for lines, and composite 8-point Gauss–Legendre with panels short enough that
    /// the phase turns by less than a radian in each for a band or a table (≈ 10⁻¹⁴).
    pub fn coherence(&self, path_difference: f64) -> Complex<f64> {
        let d = path_difference;
        match self {
            Profile::Gaussian { centre, fwhm } => {
                let (nu0, sigma) = gaussian_frequency(*centre, *fwhm);
                let tau = d / SPEED_OF_LIGHT;
                Complex::from_polar(
                    (-2.0 * PI * PI * sigma * sigma * tau * tau).exp(),
                    2.0 * PI * nu0 * tau,
                )
            }
            Profile::Flat { min, max } => {
                band_integral(&[(*min, 1.0), (*max, 1.0)], d) / (max - min)
            }
            Profile::Lines(lines) => {
                let total: f64 = lines.iter().map(|l| l.weight).sum();
                lines
                    .iter()
                    .map(|l| Complex::from_polar(l.weight / total, 2.0 * PI * d / l.wavelength))
                    .sum()
            }
            Profile::Table(rows) => {
                let total: f64 = pieces(rows).iter().map(|p| p.1).sum();
                band_integral(rows, d) / total
            }
        }
    }

    /// Samples the profile with `lines` lines (at most [`MAX_LINES`]; discrete lines are used as
    /// they are), a Gaussian's spaced for path differences up to `max_path_difference` (m; 0
    /// balances spacing and span for the intensity alone). Errors when a Gaussian's outer lines
    /// would fall at negative frequency (a width too large for that span).
    pub fn sample(&self, lines: usize, max_path_difference: f64) -> Result<Spectrum> {
        self.validate()?;
        let n = lines.clamp(1, MAX_LINES);
        let mut out: Vec<Line> = match self {
            Profile::Gaussian { centre, fwhm } => {
                let (nu0, sigma) = gaussian_frequency(*centre, *fwhm);
                // nodes x = h·(j − (n−1)/2) in units of σ, weights ∝ exp(−x²/2): the span
                // X = h(n−1)/2 and the alias 2π/h − a (a = 2πσΔ, the largest phase rate) balanced
                let a = 2.0 * PI * sigma * max_path_difference.abs() / SPEED_OF_LIGHT;
                let h = if n == 1 {
                    0.0
                } else {
                    let m = (n - 1) as f64;
                    (-a + (a * a + 4.0 * PI * m).sqrt()) / m
                };
                let raw: Vec<f64> = (0..n)
                    .map(|j| {
                        let x = h * (j as f64 - 0.5 * (n - 1) as f64);
                        (-0.5 * x * x).exp()
                    })
                    .collect();
                let total: f64 = raw.iter().sum();
                let mut v = Vec::with_capacity(n);
                for (j, w) in raw.iter().enumerate() {
                    let nu = nu0 + sigma * h * (j as f64 - 0.5 * (n - 1) as f64);
                    if nu <= 0.0 {
                        return Err(invalid(
                            "spectrum width",
                            format!(
                                "{n} lines of a Gaussian {fwhm} m wide around {centre} m reach negative frequencies; use fewer lines or a narrower spectrum"
                            ),
                        ));
                    }
                    v.push(Line {
                        wavelength: SPEED_OF_LIGHT / nu,
                        weight: w / total,
                    });
                }
                v
            }
            Profile::Flat { min, max } => {
                let rule = gauss_legendre(n);
                let (mid, half) = (0.5 * (min + max), 0.5 * (max - min));
                rule.nodes
                    .iter()
                    .zip(&rule.weights)
                    .map(|(x, w)| Line {
                        wavelength: mid + half * x,
                        weight: 0.5 * w,
                    })
                    .collect()
            }
            Profile::Lines(lines) => {
                let total: f64 = lines.iter().map(|l| l.weight).sum();
                lines
                    .iter()
                    .filter(|l| l.weight > 0.0)
                    .map(|l| Line {
                        wavelength: l.wavelength,
                        weight: l.weight / total,
                    })
                    .collect()
            }
            Profile::Table(rows) => equal_power_bins(rows, n),
        };
        out.sort_by(|a, b| a.wavelength.total_cmp(&b.wavelength));
        Ok(Spectrum { lines: out })
    }

    /// The fewest lines (at most [`MAX_LINES`]) whose coherence function matches the profile's
    /// to `tolerance` at every path difference in `0 … max_path_difference` (checked at 65
    /// points): what a geometry whose optical paths differ by up to `max_path_difference` needs
    /// for its time-averaged intensity to be right to about that tolerance. Lines are used as
    /// they are. Errors when [`MAX_LINES`] lines do not suffice.
    pub fn sample_for(&self, max_path_difference: f64, tolerance: f64) -> Result<Spectrum> {
        self.validate()?;
        if !(max_path_difference.is_finite() && max_path_difference >= 0.0) {
            return Err(invalid(
                "path difference",
                format!("{max_path_difference} m must be finite and ≥ 0"),
            ));
        }
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return Err(invalid(
                "spectrum tolerance",
                format!("{tolerance} must be positive"),
            ));
        }
        if let Profile::Lines(_) = self {
            return self.sample(1, 0.0);
        }
        let probes: Vec<(f64, Complex<f64>)> = (0..=64)
            .map(|j| {
                let d = max_path_difference * j as f64 / 64.0;
                (d, self.coherence(d))
            })
            .collect();
        for n in 1..=MAX_LINES {
            let spectrum = match self.sample(n, max_path_difference) {
                Ok(s) => s,
                // a wide Gaussian's outer nodes leave the positive frequencies: no more lines
                Err(_) => break,
            };
            if probes
                .iter()
                .all(|(d, g)| (spectrum.coherence(*d) - g).norm() <= tolerance)
            {
                return Ok(spectrum);
            }
        }
        Err(invalid(
            "spectrum",
            format!(
                "{MAX_LINES} lines cannot represent this spectrum to {tolerance} over path differences up to {max_path_difference} m (the light is too broadband for this geometry); narrow the band, shrink the field or window, or give the lines yourself"
            ),
        ))
    }

    /// Reads a measured spectrum: a text file of `wavelength, power` rows (comma, semicolon,
    /// tab or space separated; `#` starts a comment). Each wavelength carries its unit
    /// (`632.8nm`), or the header names one for the column (`wavelength_nm`, `Wavelength
    /// (nm)`, `lambda [um]`).
    pub fn read_table(path: &Path) -> Result<Profile> {
        let file_error = |problem: String| OpticsError::File {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| file_error(format!("cannot read the spectrum: {e}")))?;
        let mut unit: Option<&str> = None;
        let mut rows = Vec::new();
        for (i, line, fields) in table_lines(&text) {
            if fields.len() < 2 {
                return Err(file_error(format!(
                    "line {}: '{line}' is not 'wavelength, power'",
                    i + 1
                )));
            }
            let power: f64 = match fields[1].parse() {
                Ok(p) => p,
                Err(_) if rows.is_empty() && unit.is_none() => {
                    // the first column's name: up to a delimiter, else the first word
                    let column = if line.contains([',', ';', '\t']) {
                        line.split([',', ';', '\t']).next().unwrap_or("").trim()
                    } else {
                        fields[0]
                    };
                    unit = header_unit(column);
                    if unit.is_none() {
                        return Err(file_error(format!(
                            "line {}: the header '{column}' names no wavelength unit; write e.g. wavelength_nm, or give each wavelength with its unit (632.8nm)",
                            i + 1,
                        )));
                    }
                    continue;
                }
                Err(_) => {
                    return Err(file_error(format!(
                        "line {}: the power '{}' is not a number",
                        i + 1,
                        fields[1]
                    )));
                }
            };
            let wavelength = match (fields[0].parse::<f64>(), unit) {
                (Ok(_), Some(u)) => parse_length(&format!("{}{u}", fields[0]))
                    .map_err(|e| file_error(format!("line {}: {e}", i + 1)))?,
                (Ok(_), None) => {
                    return Err(file_error(format!(
                        "line {}: the wavelength '{}' has no unit; write it with one (632.8nm) or name the column's unit in a header (wavelength_nm)",
                        i + 1,
                        fields[0]
                    )));
                }
                (Err(_), _) => parse_length(fields[0])
                    .map_err(|e| file_error(format!("line {}: {e}", i + 1)))?,
            };
            rows.push((wavelength, power));
        }
        let profile = Profile::Table(rows);
        profile.validate().map_err(|e| file_error(format!("{e}")))?;
        Ok(profile)
    }

    /// Parses a spectrum as the command line writes it: `gaussian:CENTRE:FWHM`
    /// (`gaussian:830nm:20nm`), `flat:MIN:MAX` (`flat:500nm:550nm`), `lines:λ=w,λ=w`
    /// (`lines:532nm=1,632.8nm=0.5`; a bare `λ` has weight 1), or a path to a table read by
    /// [`Profile::read_table`].
    pub fn parse(text: &str) -> Result<Profile> {
        let usage = "give gaussian:CENTRE:FWHM, flat:MIN:MAX, lines:λ=w,λ=w or a spectrum file (wavelength, power rows)";
        let bad = |problem: String| OpticsError::Parse(format!("'{text}': {problem}; {usage}"));
        let length = |t: &str| parse_length(t).map_err(|e| bad(e.to_string()));
        let two = |rest: &str, needs: &str| -> Result<(f64, f64)> {
            let (a, b) = rest.split_once(':').ok_or_else(|| bad(needs.into()))?;
            Ok((length(a)?, length(b)?))
        };
        let profile = if let Some(rest) = text.strip_prefix("gaussian:") {
            let (centre, fwhm) = two(rest, "a Gaussian needs CENTRE:FWHM")?;
            Profile::Gaussian { centre, fwhm }
        } else if let Some(rest) = text.strip_prefix("flat:") {
            let (min, max) = two(rest, "a flat band needs MIN:MAX")?;
            Profile::Flat { min, max }
        } else if let Some(rest) = text.strip_prefix("lines:") {
            let mut lines = Vec::new();
            for item in rest.split(',').filter(|s| !s.trim().is_empty()) {
                let (w, p) = match item.split_once('=') {
                    Some((w, p)) => (
                        w,
                        p.trim()
                            .parse::<f64>()
                            .map_err(|_| bad(format!("the weight '{p}' is not a number")))?,
                    ),
                    None => (item, 1.0),
                };
                lines.push(Line {
                    wavelength: length(w)?,
                    weight: p,
                });
            }
            Profile::Lines(lines)
        } else if Path::new(text).is_file() {
            return Profile::read_table(Path::new(text));
        } else {
            return Err(bad("this is neither a spectrum nor an existing file".into()));
        };
        profile.validate().map_err(|e| bad(e.to_string()))?;
        Ok(profile)
    }
}

/// `(ν₀, σ_ν)` of a Gaussian-in-frequency profile given in wavelength.
fn gaussian_frequency(centre: f64, fwhm: f64) -> (f64, f64) {
    let nu0 = SPEED_OF_LIGHT / centre;
    let dnu = SPEED_OF_LIGHT / (centre - 0.5 * fwhm) - SPEED_OF_LIGHT / (centre + 0.5 * fwhm);
    (nu0, dnu / (2.0 * (2.0 * LN_2).sqrt()))
}

/// The lines of a text table that hold something, as `(index from 0, the line without its
/// `#` comment, its fields)`: fields split at commas, semicolons, tabs and spaces.
pub(crate) fn table_lines(text: &str) -> impl Iterator<Item = (usize, &str, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let line = raw.split('#').next().unwrap_or("").trim();
        let fields: Vec<&str> = line
            .split([',', ';', '\t', ' '])
            .filter(|f| !f.is_empty())
            .collect();
        (!fields.is_empty()).then_some((i, line, fields))
    })
}

/// The unit a table header names for its wavelength column (`wavelength_nm`, `λ (µm)`), as
/// [`parse_length`] writes it.
pub(crate) fn header_unit(header: &str) -> Option<&'static str> {
    let h = header.to_lowercase();
    let tail: String = h
        .trim_end_matches([')', ']'])
        .rsplit(['_', '(', '[', ' '])
        .next()?
        .to_string();
    match tail.as_str() {
        "nm" => Some("nm"),
        "um" | "µm" | "μm" | "micron" | "microns" => Some("um"),
        "mm" => Some("mm"),
        "m" => Some("m"),
        _ => None,
    }
}

/// A piecewise-linear density's pieces as `(segment start, power, segment end, density at
/// start, density at end)`, power being the trapezoid (exact for a linear density).
fn pieces(rows: &[(f64, f64)]) -> Vec<(f64, f64, f64, f64, f64)> {
    rows.windows(2)
        .map(|w| {
            let ((a, pa), (b, pb)) = (w[0], w[1]);
            (a, 0.5 * (pa + pb) * (b - a), b, pa, pb)
        })
        .collect()
}

/// The piecewise-linear density's power as quadrature atoms `(λ, power)`: the `points`-point
/// Gauss–Legendre rule on `panels(a, b)` equal panels of each segment `a … b` (exact for the
/// power, whose density is linear).
fn atoms(
    rows: &[(f64, f64)],
    points: usize,
    panels: impl Fn(f64, f64) -> usize,
) -> Vec<(f64, f64)> {
    let rule = gauss_legendre(points);
    let mut out = Vec::new();
    for (a, _, b, pa, pb) in pieces(rows) {
        let count = panels(a, b).max(1);
        let h = (b - a) / count as f64;
        for p in 0..count {
            let (lo, hi) = (a + p as f64 * h, a + (p + 1) as f64 * h);
            for (x, w) in rule.nodes.iter().zip(&rule.weights) {
                let l = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x;
                let density = pa + (pb - pa) * (l - a) / (b - a);
                out.push((l, 0.5 * (hi - lo) * w * density));
            }
        }
    }
    out
}

/// `∫ s(λ)·exp(2πiΔ/λ) dλ` of a piecewise-linear density by composite 8-point Gauss–Legendre,
/// each panel short enough that the phase turns by less than a radian.
fn band_integral(rows: &[(f64, f64)], d: f64) -> Complex<f64> {
    let panels = |a: f64, b: f64| (2.0 * PI * d.abs() * (1.0 / a - 1.0 / b)).ceil() as usize;
    atoms(rows, 8, panels)
        .into_iter()
        .map(|(l, p)| Complex::from_polar(p, 2.0 * PI * d / l))
        .sum()
}

/// `n` lines from a measured table: bins of equal power, each line at its bin's power centroid
/// in frequency (4-point Gauss–Legendre atoms, at least a panel of them per line, split across
/// bin boundaries).
fn equal_power_bins(rows: &[(f64, f64)], n: usize) -> Vec<Line> {
    let panels = n.div_ceil(rows.len() - 1);
    let atoms: Vec<(f64, f64)> = atoms(rows, 4, |_, _| panels)
        .into_iter()
        .filter(|a| a.1 > 0.0)
        .map(|(l, p)| (SPEED_OF_LIGHT / l, p)) // (frequency, power)
        .collect();
    let total: f64 = atoms.iter().map(|a| a.1).sum();
    let n = n.min(atoms.len()).max(1);
    let share = total / n as f64;
    let mut lines = Vec::with_capacity(n);
    let (mut power, mut moment) = (0.0, 0.0);
    for &(nu, mut p) in &atoms {
        while lines.len() + 1 < n && power + p >= share {
            let take = share - power;
            moment += take * nu;
            lines.push(Line {
                wavelength: SPEED_OF_LIGHT * share / moment,
                weight: share / total,
            });
            p -= take;
            power = 0.0;
            moment = 0.0;
        }
        power += p;
        moment += p * nu;
    }
    if power > 0.0 {
        lines.push(Line {
            wavelength: SPEED_OF_LIGHT * power / moment,
            weight: power / total,
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Gaussian's lines reproduce its mean frequency, its variance and its coherence
    /// function; a flat band's and a table's converge to theirs as lines are added.
    #[test]
    fn sampled_spectra_reproduce_their_profiles() {
        let g = Profile::Gaussian {
            centre: 800e-9,
            fwhm: 40e-9,
        };
        let (nu0, sigma) = gaussian_frequency(800e-9, 40e-9);
        let s = g.sample(12, 0.0).unwrap();
        let nu: Vec<f64> = s
            .lines()
            .iter()
            .map(|l| SPEED_OF_LIGHT / l.wavelength)
            .collect();
        let w: Vec<f64> = s.lines().iter().map(|l| l.weight).collect();
        let mean: f64 = nu.iter().zip(&w).map(|(n, w)| n * w).sum();
        let var: f64 = nu.iter().zip(&w).map(|(n, w)| w * (n - nu0).powi(2)).sum();
        assert!((mean / nu0 - 1.0).abs() < 1e-14);
        assert!(
            (var / (sigma * sigma) - 1.0).abs() < 1e-4,
            "{}",
            var / (sigma * sigma) - 1.0
        );
        // half maximum at centre ± fwhm/2 in wavelength
        let at = |l: f64| (-(SPEED_OF_LIGHT / l - nu0).powi(2) / (2.0 * sigma * sigma)).exp();
        assert!((at(780e-9) + at(820e-9) - 1.0).abs() < 1e-3);
        // coherence: the envelope falls by e^-2π²σ²τ² — at 12 µm to 0.14
        let l_c = 12e-6;
        let env = g.coherence(l_c).norm();
        let tau = l_c / SPEED_OF_LIGHT;
        assert!((env - (-2.0 * PI * PI * sigma * sigma * tau * tau).exp()).abs() < 1e-15);
        assert!(env > 0.05 && env < 0.5, "{env}");
        let few = g.sample_for(30e-6, 1e-6).unwrap();
        for d in [0.0, 5e-6, 13e-6, 30e-6] {
            assert!((few.coherence(d) - g.coherence(d)).norm() <= 1e-6);
        }
        // too few lines miss it (the check can fail)
        assert!((g.sample(3, 30e-6).unwrap().coherence(20e-6) - g.coherence(20e-6)).norm() > 1e-3);
        // lines spaced for a short path range alias at long ones
        let short = g.sample(few.lines().len(), 2e-6).unwrap();
        assert!((short.coherence(30e-6) - g.coherence(30e-6)).norm() > 1e-3);

        // flat band: closed form of the coherence function at Δ = 0 and its modulus bound
        let f = Profile::Flat {
            min: 500e-9,
            max: 600e-9,
        };
        assert!((f.coherence(0.0) - 1.0).norm() < 1e-14);
        let exact = f.coherence(8e-6);
        assert!(exact.norm() < 0.5);
        assert!((f.sample_for(8e-6, 1e-9).unwrap().coherence(8e-6) - exact).norm() <= 1e-9);
        // the same band as a measured table (flat density) has the same coherence
        let table = Profile::Table(vec![(500e-9, 2.0), (550e-9, 2.0), (600e-9, 2.0)]);
        assert!((table.coherence(8e-6) - exact).norm() < 1e-12);
        let bins = table.sample(200, 0.0).unwrap();
        assert_eq!(bins.lines().len(), 200);
        assert!((bins.coherence(8e-6) - exact).norm() < 1e-3);
        assert!((bins.lines().iter().map(|l| l.weight).sum::<f64>() - 1.0).abs() < 1e-12);
        // lines: exact, weights normalised, zero-weight lines dropped
        let lines = Profile::Lines(vec![
            Line {
                wavelength: 532e-9,
                weight: 2.0,
            },
            Line {
                wavelength: 633e-9,
                weight: 0.0,
            },
            Line {
                wavelength: 488e-9,
                weight: 2.0,
            },
        ]);
        let s = lines.sample_for(1e-3, 1e-9).unwrap();
        assert_eq!(s.lines().len(), 2);
        assert_eq!(s.lines()[0].wavelength, 488e-9);
        assert!((s.coherence(1e-4) - lines.coherence(1e-4)).norm() < 1e-15);
    }

    #[test]
    fn spectra_parse_and_refuse_nonsense() {
        assert_eq!(
            Profile::parse("gaussian:830nm:20nm").unwrap(),
            Profile::Gaussian {
                centre: 830e-9,
                fwhm: 20e-9
            }
        );
        assert_eq!(
            Profile::parse("flat:500nm:0.55um").unwrap(),
            Profile::Flat {
                min: 500e-9,
                max: 550e-9
            }
        );
        assert_eq!(
            Profile::parse("lines:532nm=1,632.8nm=0.5,488nm").unwrap(),
            Profile::Lines(vec![
                Line {
                    wavelength: 532e-9,
                    weight: 1.0
                },
                Line {
                    wavelength: 632.8e-9,
                    weight: 0.5
                },
                Line {
                    wavelength: 488e-9,
                    weight: 1.0
                },
            ])
        );
        for bad in [
            "gaussian:830nm",
            "gaussian:830nm:2000nm",
            "flat:600nm:500nm",
            "lines:532",
            "lines:532nm=-1",
            "spectrum.csv",
            "gaussian:830:20",
        ] {
            assert!(Profile::parse(bad).is_err(), "{bad}");
        }
        let dir = std::env::temp_dir().join(format!("pf-spectrum-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("ok.csv");
        std::fs::write(
            &ok,
            "# a spectrometer\nWavelength (nm), Intensity\n500, 0\n550, 1\n600, 0\n",
        )
        .unwrap();
        let t = Profile::parse(ok.to_str().unwrap()).unwrap();
        assert_eq!(
            t,
            Profile::Table(vec![(500e-9, 0.0), (550e-9, 1.0), (600e-9, 0.0)])
        );
        let s = t.sample(1, 0.0).unwrap();
        assert!((s.lines()[0].wavelength / 549.1e-9 - 1.0).abs() < 1e-3);
        let units = dir.join("units.csv");
        std::fs::write(&units, "0.5um 1\n0.6um 1\n").unwrap();
        assert!(Profile::read_table(&units).is_ok());
        for (name, body) in [
            ("nounit.csv", "500, 1\n600, 1\n"),
            ("order.csv", "600nm, 1\n500nm, 1\n"),
            ("neg.csv", "500nm, 1\n600nm, -1\n"),
            ("one.csv", "500nm, 1\n"),
            ("dark.csv", "500nm, 0\n600nm, 0\n"),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            let e = Profile::read_table(&p).unwrap_err().to_string();
            assert!(e.contains(name), "{name}: {e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
