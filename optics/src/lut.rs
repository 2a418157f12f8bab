//! Measured lookup tables of spatial light modulators: gray level → phase (and amplitude).
//!
//! A CSV file with one row per gray level, in increasing order: `gray,phase[,amplitude]`,
//! phase in radians, amplitude a transmission factor (1 when the column is absent). A first
//! line that is not numeric is a header; blank lines and lines starting with `#` are skipped;
//! fields may be separated by commas, semicolons, tabs or spaces.
//!
//! ```text
//! gray,phase,amplitude
//! 0,0.000,0.98
//! 1,0.025,0.98
//! …
//! ```

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

use crate::error::{OpticsError, Result};

/// A gray-level lookup table.
#[derive(Debug, Clone, PartialEq)]
pub struct Lut {
    /// Gray levels, strictly increasing.
    pub gray: Vec<u32>,
    /// Phase of each level, radians.
    pub phase: Vec<f64>,
    /// Amplitude transmission of each level (`None`: 1).
    pub amplitude: Option<Vec<f64>>,
}

impl Lut {
    /// Reads a CSV lookup table (see the module docs).
    pub fn read_csv(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(path, format!("cannot read it ({e})")))?;
        Self::parse(&text).map_err(|problem| bad(path, problem))
    }

    /// Parses CSV text; errors name the line.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let (mut gray, mut phase, mut amplitude) = (Vec::new(), Vec::new(), Vec::new());
        let mut columns = None;
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line
                .split([',', ';', '\t', ' '])
                .filter(|f| !f.is_empty())
                .collect();
            let numbers: std::result::Result<Vec<f64>, _> =
                fields.iter().map(|f| f.parse::<f64>()).collect();
            let Ok(numbers) = numbers else {
                if columns.is_none() && gray.is_empty() {
                    continue; // header
                }
                return Err(format!("line {}: '{line}' is not numbers", no + 1));
            };
            let n = *columns.get_or_insert(numbers.len());
            if !(2..=3).contains(&n) || numbers.len() != n {
                return Err(format!(
                    "line {}: expected gray,phase[,amplitude] ({} columns like the first row), \
                     got {} values",
                    no + 1,
                    if (2..=3).contains(&n) { n } else { 2 },
                    numbers.len()
                ));
            }
            let g = numbers[0];
            if !(g >= 0.0 && g.fract() == 0.0 && g <= f64::from(u32::MAX)) {
                return Err(format!(
                    "line {}: gray level {g} is not a whole number ≥ 0",
                    no + 1
                ));
            }
            if gray.last().is_some_and(|&last| f64::from(last) >= g) {
                return Err(format!(
                    "line {}: gray level {g} does not increase; list the levels in increasing order",
                    no + 1
                ));
            }
            if !numbers[1].is_finite() {
                return Err(format!(
                    "line {}: phase {} is not finite",
                    no + 1,
                    numbers[1]
                ));
            }
            gray.push(g as u32);
            phase.push(numbers[1]);
            if n == 3 {
                if !(numbers[2].is_finite() && numbers[2] >= 0.0) {
                    return Err(format!(
                        "line {}: amplitude {} must be finite and ≥ 0",
                        no + 1,
                        numbers[2]
                    ));
                }
                amplitude.push(numbers[2]);
            }
        }
        if gray.len() < 2 {
            return Err(format!(
                "{} gray level(s): a lookup table needs at least 2 rows gray,phase[,amplitude]",
                gray.len()
            ));
        }
        Ok(Self {
            gray,
            phase,
            amplitude: (!amplitude.is_empty()).then_some(amplitude),
        })
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.gray.len()
    }

    /// Whether the table is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.gray.is_empty()
    }
}

fn bad(path: &Path, problem: String) -> OpticsError {
    OpticsError::File {
        path: PathBuf::from(path),
        problem: format!("lookup table: {problem}"),
    }
}

/// Phase ↔ gray level of one SLM: linear (a number of levels per 2π) or a measured [`Lut`]
/// (the nearest phase around the circle).
#[derive(Debug, Clone)]
pub struct GrayMap {
    kind: MapKind,
    /// Largest phase error of [`GrayMap::gray`], radians.
    bound: f64,
}

#[derive(Debug, Clone)]
enum MapKind {
    Linear {
        two_pi: u32,
    },
    Table {
        lut: Lut,
        /// `(phase mod 2π, row)`, sorted by phase.
        circle: Vec<(f64, usize)>,
    },
}

impl GrayMap {
    /// A linear SLM: gray level `g` shows phase `2π·g/two_pi` (`two_pi ≥ 2`), amplitude 1.
    ///
    /// # Panics
    /// If `two_pi` is below 2.
    pub fn linear(two_pi: u32) -> Self {
        assert!(two_pi >= 2, "a linear SLM needs two levels or more per 2π");
        Self {
            kind: MapKind::Linear { two_pi },
            bound: TAU / f64::from(two_pi) / 2.0,
        }
    }

    /// A measured table on `bits`-bit levels. Errors (with the fix) if a level does not fit
    /// in the bits, the phase is not monotone in the level, or the table leaves a gap around
    /// the circle wider than its largest step.
    pub fn table(lut: &Lut, bits: u32) -> std::result::Result<Self, String> {
        if let Some(&g) = lut.gray.iter().find(|&&g| g >= 1 << bits) {
            return Err(format!(
                "gray level {g} does not fit in {bits} bits; give --bits to match the SLM"
            ));
        }
        let steps: Vec<f64> = lut.phase.windows(2).map(|w| w[1] - w[0]).collect();
        let rising = steps.iter().all(|&d| d >= 0.0);
        let falling = steps.iter().all(|&d| d <= 0.0);
        if !(rising || falling) {
            let sign = steps
                .iter()
                .find(|d| **d != 0.0)
                .map_or(1.0, |d| d.signum());
            let i = steps
                .iter()
                .position(|&d| d * sign < 0.0)
                .expect("not monotone");
            return Err(format!(
                "not monotone: the phase {} from gray {} ({:.4} rad) to gray {} ({:.4} rad); a \
                 measured table's phase must only rise (or only fall) with the gray level — \
                 smooth or refit the measurement",
                if sign > 0.0 { "falls" } else { "rises" },
                lut.gray[i],
                lut.phase[i],
                lut.gray[i + 1],
                lut.phase[i + 1]
            ));
        }
        let span = (lut.phase[lut.len() - 1] - lut.phase[0]).abs();
        let widest = steps.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        if span + widest < TAU - 1e-9 {
            return Err(format!(
                "spans {span:.4} rad, which leaves a gap of {:.4} rad around the circle, wider \
                 than its largest step ({widest:.4} rad); a table must cover 2π — measure the \
                 SLM over a wider gray range",
                TAU - span
            ));
        }
        let mut circle: Vec<(f64, usize)> = lut
            .phase
            .iter()
            .enumerate()
            .map(|(i, p)| (p.rem_euclid(TAU), i))
            .collect();
        circle.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let gap = circle
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .chain(std::iter::once(
                circle[0].0 + TAU - circle[circle.len() - 1].0,
            ))
            .fold(0.0f64, f64::max);
        Ok(Self {
            kind: MapKind::Table {
                lut: lut.clone(),
                circle,
            },
            bound: gap / 2.0,
        })
    }

    /// The largest phase error of [`GrayMap::gray`], radians.
    pub fn bound(&self) -> f64 {
        self.bound
    }

    /// The gray level that shows the phase nearest to `phase` (radians, any value).
    pub fn gray(&self, phase: f64) -> u16 {
        let t = phase.rem_euclid(TAU);
        match &self.kind {
            MapKind::Linear { two_pi } => {
                ((t / TAU * f64::from(*two_pi)).round() as u32 % two_pi) as u16
            }
            MapKind::Table { lut, circle } => {
                let n = circle.len();
                let i = circle.partition_point(|(p, _)| *p < t);
                let (below, above) = (circle[(i + n - 1) % n], circle[i % n]);
                let d = |p: f64| {
                    let d = (t - p).rem_euclid(TAU);
                    d.min(TAU - d)
                };
                let row = if d(above.0) < d(below.0) {
                    above.1
                } else {
                    below.1
                };
                lut.gray[row] as u16
            }
        }
    }

    /// The phase (radians) and amplitude that gray level `gray` shows, or `None` for a gray
    /// level the table does not list.
    pub fn shows(&self, gray: u16) -> Option<(f64, f64)> {
        match &self.kind {
            MapKind::Linear { two_pi } => (u32::from(gray) < *two_pi)
                .then(|| (TAU * f64::from(gray) / f64::from(*two_pi), 1.0)),
            MapKind::Table { lut, .. } => {
                let row = lut.gray.binary_search(&u32::from(gray)).ok()?;
                let a = lut.amplitude.as_ref().map_or(1.0, |a| a[row]);
                Some((lut.phase[row], a))
            }
        }
    }

    /// Whether the SLM also changes the amplitude (a table with an amplitude column).
    pub fn modulates_amplitude(&self) -> bool {
        matches!(&self.kind, MapKind::Table { lut, .. } if lut.amplitude.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_separators_and_optional_amplitude() {
        let lut = Lut::parse("gray,phase,amplitude\n# measured\n0,0.0,1\n1;0.5;0.9\n3\t1.0\t0.8\n")
            .unwrap();
        assert_eq!(lut.gray, vec![0, 1, 3]);
        assert_eq!(lut.phase, vec![0.0, 0.5, 1.0]);
        assert_eq!(lut.amplitude, Some(vec![1.0, 0.9, 0.8]));
        let lut = Lut::parse("0 0\n255 6.2\n").unwrap();
        assert_eq!(lut.amplitude, None);
        assert_eq!(lut.len(), 2);
    }

    #[test]
    fn bad_tables_name_the_line() {
        for (text, needle) in [
            ("0,0\n0,1\n", "line 2: gray level 0 does not increase"),
            ("0,0\n1\n", "line 2: expected gray,phase"),
            ("0,0\n1,x\n", "line 2: '1,x' is not numbers"),
            ("0,0\n1.5,1\n", "not a whole number"),
            ("0,0,1\n1,1,-1\n", "amplitude -1"),
            ("0,0\n", "at least 2 rows"),
            ("0,inf\n1,0\n", "not finite"),
        ] {
            let e = Lut::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
