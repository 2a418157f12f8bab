//! Quantities as text: lengths (`632.8nm`, `0.75mm`, `3cm`, `8um` or `8µm`, `1.5m`, `-5cm`),
//! powers (`25mW`, `0.5W`, `300uW`) and angles (`45deg`, `45°`, `0.5rad`, `20mrad`).
//!
//! Everything inside photonflow is SI (metres, watts); text with units is what users type on
//! the command line and in TOML files. [`parse_length`] and [`parse_power`] read it;
//! [`format_length`] writes a length for reading (six significant digits, the largest unit that
//! keeps the number ≥ 1), [`format_length_exact`] for files (the shortest text that
//! [`parse_length`] reads back as the same `f64`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{OpticsError, Result};

/// Length units accepted in text, with their size in metres.
pub const LENGTH_UNITS: &[(&str, f64)] = &[
    ("km", 1e3),
    ("m", 1.0),
    ("cm", 1e-2),
    ("mm", 1e-3),
    ("um", 1e-6),
    ("µm", 1e-6),
    ("μm", 1e-6),
    ("nm", 1e-9),
    ("pm", 1e-12),
];

/// Power units accepted in text, with their size in watts.
pub const POWER_UNITS: &[(&str, f64)] = &[
    ("kW", 1e3),
    ("W", 1.0),
    ("mW", 1e-3),
    ("uW", 1e-6),
    ("µW", 1e-6),
    ("μW", 1e-6),
    ("nW", 1e-9),
];

/// Parses a power with a unit (`"25mW"`, `"0.5 W"`, `"300uW"`) into watts; a bare number is
/// rejected, as for [`parse_length`].
///
/// ```
/// use photonflow_optics::units::parse_power;
/// assert_eq!(parse_power("25mW").unwrap(), 0.025);
/// assert!(parse_power("25").is_err());
/// ```
pub fn parse_power(text: &str) -> Result<f64> {
    parse_quantity(
        text,
        POWER_UNITS,
        "power",
        "25mW, 0.5W or 300uW",
        "25mW or 2.5e-2W",
    )
}

/// Parses a length with a unit (`"632.8nm"`, `"0.4 mm"`, `"-5cm"`, `"1e-3m"`) into metres.
///
/// A bare number without unit is rejected: a silent default unit is how beams end up a million
/// times too wide.
///
/// ```
/// use photonflow_optics::units::parse_length;
/// assert!((parse_length("632.8nm").unwrap() - 632.8e-9).abs() < 1e-18);
/// assert!((parse_length("-5 cm").unwrap() + 0.05).abs() < 1e-15);
/// assert!(parse_length("5").is_err());
/// assert_eq!(parse_length("0.4mm").unwrap(), 0.0004);
/// assert_eq!(parse_length("0.4mm").unwrap(), parse_length("400um").unwrap());
/// ```
pub fn parse_length(text: &str) -> Result<f64> {
    parse_quantity(
        text,
        LENGTH_UNITS,
        "length",
        "632.8nm, 8um, 0.75mm, 3cm or 1m",
        "632.8nm or 1.5e-3m",
    )
}

/// Angle units accepted in text, with their size in radians.
pub const ANGLE_UNITS: &[(&str, f64)] = &[
    ("deg", std::f64::consts::PI / 180.0),
    ("rad", 1.0),
    ("mrad", 1e-3),
    ("urad", 1e-6),
    ("µrad", 1e-6),
];

/// Parses an angle with a unit (`"45deg"`, `"45°"`, `"-30 deg"`, `"0.5rad"`, `"20mrad"`) into
/// radians; a bare number is rejected, as for [`parse_length`] (is `45` degrees or radians?).
///
/// ```
/// use photonflow_optics::units::parse_angle;
/// assert!((parse_angle("45deg").unwrap() - std::f64::consts::FRAC_PI_4).abs() < 1e-15);
/// assert_eq!(parse_angle("45°").unwrap(), parse_angle("45deg").unwrap());
/// assert_eq!(parse_angle("20mrad").unwrap(), 0.02);
/// assert!(parse_angle("45").is_err());
/// ```
pub fn parse_angle(text: &str) -> Result<f64> {
    let t = text.trim();
    let t = match t.strip_suffix('°') {
        Some(number) => format!("{}deg", number.trim()),
        None => t.to_string(),
    };
    parse_quantity(
        &t,
        ANGLE_UNITS,
        "angle",
        "45deg, 45°, 0.5rad or 20mrad",
        "45deg or 0.785rad",
    )
    .map_err(|e| match e {
        OpticsError::Parse(m) => OpticsError::Parse(m.replace(&t, text.trim())),
        e => e,
    })
}

/// A rectangular array of samples with its pitch, `COLSxROWS@PITCH` (e.g. `1920x1080@8um`,
/// `640X480@5.86um`, `64×64@2um`): `(cols, rows, pitch in metres)`. Counts are 1 … 32768 and
/// the pitch a positive length.
///
/// ```
/// use photonflow_optics::units::parse_array;
/// assert_eq!(parse_array("640x480@5um").unwrap(), (640, 480, 5e-6));
/// assert!(parse_array("640x480").is_err());
/// assert!(parse_array("0x4@1um").is_err());
/// ```
pub fn parse_array(text: &str) -> Result<(usize, usize, f64)> {
    let usage = "give COLSxROWS@PITCH, e.g. 1920x1080@8um";
    let bad = |problem: String| OpticsError::Parse(format!("'{text}': {problem}; {usage}"));
    let (size, pitch) = text
        .split_once('@')
        .ok_or_else(|| bad("there is no '@PITCH'".into()))?;
    let (c, r) = size
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| bad(format!("'{size}' is not COLSxROWS")))?;
    let count = |t: &str| {
        t.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=1 << 15).contains(&n))
            .ok_or_else(|| bad(format!("'{t}' is not a count 1 … 32768")))
    };
    let pitch_m = parse_length(pitch).map_err(|e| bad(format!("pitch: {e}")))?;
    if !(pitch_m > 0.0 && pitch_m.is_finite()) {
        return Err(bad(format!("the pitch {pitch} must be positive")));
    }
    Ok((count(c)?, count(r)?, pitch_m))
}

/// A number and one of `units` (name, size in SI) into SI; `kind` names the quantity in
/// messages, `examples` with units and `forms` of the number.
fn parse_quantity(
    text: &str,
    units: &[(&str, f64)],
    kind: &str,
    examples: &str,
    forms: &str,
) -> Result<f64> {
    let t = text.trim();
    let split = t
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphabetic())
        .last()
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let names: Vec<&str> = units.iter().map(|(n, _)| *n).collect();
    if unit.is_empty() {
        return Err(OpticsError::Parse(format!(
            "'{text}' has no unit; write a {kind} with a unit such as {examples} (units: {})",
            names.join(", ")
        )));
    }
    let scale = units
        .iter()
        .find(|(n, _)| *n == unit)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            OpticsError::Parse(format!(
                "unknown {kind} unit '{unit}' in '{text}'; use one of {}",
                names.join(", ")
            ))
        })?;
    let value: f64 = number.parse().map_err(|_| {
        OpticsError::Parse(format!(
            "'{number}' in '{text}' is not a number; write e.g. {forms}"
        ))
    })?;
    // The unit's power of ten goes into the number's decimal exponent, so that the text is
    // rounded to a double once: "0.4mm" reads as 0.4e-3, the same double as "400um" and as
    // 0.0004, and every double has a text in every unit that reads back as itself.
    // (a unit that is not a power of ten, such as a degree, is one multiplication)
    let power = scale.log10().round() as i64;
    let scaled = if (scale.log10() - power as f64).abs() < 1e-9 {
        scaled_decimal(number, power).unwrap_or(value * scale)
    } else {
        value * scale
    };
    if !value.is_finite() || !scaled.is_finite() {
        return Err(OpticsError::Parse(format!(
            "'{text}' is not a finite {kind}"
        )));
    }
    Ok(scaled)
}

/// `number` (a decimal, as `f64::from_str` takes it) times `10^power`, rounded once; `None`
/// where the exponent does not fit an `i64`.
fn scaled_decimal(number: &str, power: i64) -> Option<f64> {
    let (mantissa, exponent) = match number.find(['e', 'E']) {
        Some(i) => (&number[..i], number[i + 1..].parse::<i64>().ok()?),
        None => (number, 0),
    };
    format!("{mantissa}e{}", exponent.checked_add(power)?)
        .parse()
        .ok()
}

/// The unit [`format_length`] and [`format_length_exact`] write `metres` in (name, size): the
/// largest of m, cm, mm, um, nm, pm that keeps the number ≥ 1; metres for 0, for non-finite
/// values and from 1 m up.
fn length_unit(metres: f64) -> (&'static str, f64) {
    let a = metres.abs();
    if a == 0.0 || !a.is_finite() || a >= 1.0 {
        ("m", 1.0)
    } else if a >= 1e-2 {
        ("cm", 1e-2)
    } else if a >= 1e-3 {
        ("mm", 1e-3)
    } else if a >= 1e-6 {
        ("um", 1e-6)
    } else if a >= 1e-9 {
        ("nm", 1e-9)
    } else {
        ("pm", 1e-12)
    }
}

/// Lengths from this size up, and below a picometre, are written in metres with an exponent.
const LENGTH_EXP_FROM_M: f64 = 1e6;

/// Formats metres for reading, with six significant digits and a readable unit: `6.328e-7` →
/// `"632.8nm"`, `0.05` → `"5cm"`, `1.5e15` → `"1.5e15m"`. Lossy: for text that must read back
/// as the same number (files, configs), use [`format_length_exact`].
pub fn format_length(metres: f64) -> String {
    let a = metres.abs();
    if a.is_finite() && (a >= LENGTH_EXP_FROM_M || (a > 0.0 && a < 1e-12)) {
        let s = format!("{metres:.5e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}m");
    }
    let (name, scale) = length_unit(metres);
    let v = metres / scale;
    // Up to 6 significant digits, trailing zeros removed.
    let mut s = format!(
        "{:.*}",
        6usize.saturating_sub(v.abs().log10().floor().max(0.0) as usize + 1),
        v
    );
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{name}")
}

/// Formats metres as the shortest text with a unit that [`parse_length`] reads back as the same
/// `f64`, bit for bit: `6.328e-7` → `"632.8nm"`, `7.501234567e-4` → `"750.1234567um"` (the
/// digits of Rust's shortest round-trip form, in [`format_length`]'s unit). Lengths below 1 pm
/// and from 10⁶ m up are written in metres with an exponent (`"1e-20m"`). Non-finite lengths
/// have no text [`parse_length`] accepts; they come out as `"NaNm"` or `"infm"`.
///
/// ```
/// use photonflow_optics::units::{format_length_exact, parse_length};
/// let m = 7.501234567e-4;
/// assert_eq!(format_length_exact(m), "750.1234567um");
/// assert_eq!(parse_length(&format_length_exact(m)).unwrap(), m);
/// ```
pub fn format_length_exact(metres: f64) -> String {
    let a = metres.abs();
    if !a.is_finite() || a >= LENGTH_EXP_FROM_M || (a > 0.0 && a < 1e-12) {
        return format!("{metres:e}m");
    }
    let (name, scale) = length_unit(metres);
    // The shortest digits that read back as `metres`, with the decimal point moved by the
    // unit's power of ten (which parse_length moves back in the decimal text).
    let shortest = format!("{a:e}");
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exponent.parse::<i64>().unwrap_or(0) - scale.log10().round() as i64 + 1;
    let body = match usize::try_from(point) {
        Err(_) | Ok(0) => format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
        Ok(p) if p >= digits.len() => format!("{digits}{}", "0".repeat(p - digits.len())),
        Ok(p) => format!("{}.{}", &digits[..p], &digits[p..]),
    };
    let sign = if metres.is_sign_negative() { "-" } else { "" };
    format!("{sign}{body}{name}")
}

/// A length in metres, written with a unit in TOML (`"3cm"`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Length(pub f64);

impl Length {
    /// Metres.
    pub fn m(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_length(self.0))
    }
}

impl Serialize for Length {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format_length_exact(self.0))
    }
}

impl<'de> Deserialize<'de> for Length {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Length;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a length with a unit, e.g. \"0.75mm\" or \"3cm\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Length, E> {
                parse_length(v).map(Length).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Length, E> {
                Err(E::custom(format!(
                    "{v} has no unit; write a length as text with a unit, e.g. \"{v}mm\""
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Length, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Length, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        for (text, metres) in [
            ("632.8nm", 632.8e-9),
            ("0.75mm", 0.75e-3),
            ("3cm", 0.03),
            ("8um", 8e-6),
            ("8µm", 8e-6),
            ("1.5m", 1.5),
            ("-5cm", -0.05),
            ("2e-3 m", 2e-3),
            (" 10 pm ", 10e-12),
        ] {
            let v = parse_length(text).unwrap();
            assert!(
                (v - metres).abs() <= 1e-12 * metres.abs(),
                "{text}: {v} vs {metres}"
            );
        }
    }

    #[test]
    fn powers_parse_with_their_units() {
        for (text, watts) in [
            ("25mW", 0.025),
            ("0.5 W", 0.5),
            ("300uW", 3e-4),
            ("2kW", 2e3),
        ] {
            let v = parse_power(text).unwrap();
            assert!((v - watts).abs() <= 1e-15 * watts, "{text}: {v}");
        }
        for (text, needle) in [
            ("25", "no unit"),
            ("25mm", "unknown power unit 'mm'"),
            ("1.2.3mW", "not a number"),
            ("1e999mW", "not a finite power"),
        ] {
            let e = parse_power(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn rejects_bad_text_with_a_useful_message() {
        let e = parse_length("5").unwrap_err().to_string();
        assert!(e.contains("no unit"), "{e}");
        let e = parse_length("5furlong").unwrap_err().to_string();
        assert!(e.contains("unknown length unit 'furlong'"), "{e}");
        assert!(parse_length("abcmm").is_err());
        assert!(parse_length("nanm").is_err());
        assert!(parse_length("").is_err());
    }

    #[test]
    fn format_round_trips() {
        for m in [632.8e-9, 0.75e-3, 0.03, 8e-6, 1.5, -0.05, 400e-6] {
            let s = format_length(m);
            let back = parse_length(&s).unwrap();
            assert!((back - m).abs() <= 1e-6 * m.abs(), "{m} -> {s} -> {back}");
        }
        assert_eq!(format_length(632.8e-9), "632.8nm");
        assert_eq!(format_length(0.05), "5cm");
        assert_eq!(format_length(1.5e15), "1.5e15m");
        assert_eq!(format_length(-1e-20), "-1e-20m");
        assert_eq!(format_length(0.0), "0m");
        // Rounded for reading: seven digits become six.
        assert_eq!(format_length(7.501234567e-4), "750.123um");
    }

    #[test]
    fn exact_format_reads_back_bit_for_bit() {
        assert_eq!(format_length_exact(632.8e-9), "632.8nm");
        assert_eq!(format_length_exact(0.05), "5cm");
        assert_eq!(format_length_exact(0.0004), "400um");
        assert_eq!(format_length_exact(1.5), "1.5m");
        assert_eq!(format_length_exact(7.501234567e-4), "750.1234567um");
        assert_eq!(format_length_exact(1e-20), "1e-20m");
        assert_eq!(format_length_exact(-1.5e15), "-1.5e15m");
        // Every decade from 10⁻¹⁵ to 10⁸ m, with all 17 digits: a pseudo-random mantissa in
        // [1, 10) (xorshift, so that the test needs nothing else), both signs.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for decade in -15..=8 {
            for _ in 0..2000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mantissa = 1.0 + 9.0 * (state >> 11) as f64 / (1u64 << 53) as f64;
                for m in [
                    mantissa * 10f64.powi(decade),
                    -mantissa * 10f64.powi(decade),
                ] {
                    let s = format_length_exact(m);
                    assert_eq!(
                        parse_length(&s).unwrap().to_bits(),
                        m.to_bits(),
                        "{m:e} -> {s}"
                    );
                    // In the units' range the number is plain, in [1, 1000) (below a metre)
                    // or [1, 10⁶) (metres).
                    if (1e-12..1e6).contains(&m.abs()) {
                        assert!(!s.contains('e'), "{m:e} -> {s}");
                        let number = s
                            .trim_start_matches('-')
                            .trim_end_matches(char::is_alphabetic);
                        let integer = number.split('.').next().unwrap();
                        assert!(
                            !integer.starts_with('0') && integer.len() <= 6,
                            "{m:e} -> {s}"
                        );
                    }
                }
            }
        }
        assert_eq!(format_length_exact(0.0), "0m");
        assert_eq!(
            parse_length(&format_length_exact(-0.0)).unwrap().to_bits(),
            (-0.0f64).to_bits()
        );
        // Text as users type it keeps its digits (in the unit that suits its size).
        for (text, exact) in [
            ("632.8nm", "632.8nm"),
            ("0.75mm", "750um"),
            ("3cm", "3cm"),
            ("8µm", "8um"),
            ("1.55um", "1.55um"),
            ("750.1234567um", "750.1234567um"),
            ("12.3456789mm", "1.23456789cm"),
            ("2.5km", "2500m"),
        ] {
            assert_eq!(format_length_exact(parse_length(text).unwrap()), exact);
        }
    }
}
