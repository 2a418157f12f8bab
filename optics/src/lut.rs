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
