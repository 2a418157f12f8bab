//! Quantities as text: lengths (`632.8nm`, `0.75mm`, `3cm`, `8um` or `8µm`, `1.5m`, `-5cm`)
//! and powers (`25mW`, `0.5W`, `300uW`).
//!
//! Everything inside photonflow is SI (metres, watts); text with units is what users type on
//! the command line and in TOML files. [`parse_length`] and [`parse_power`] read it,
//! [`format_length`] writes a length back with the largest unit that keeps the number ≥ 1.

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
    if !value.is_finite() {
        return Err(OpticsError::Parse(format!(
            "'{text}' is not a finite {kind}"
        )));
    }
    // Sub-metre units divide by an exact power of ten (1e3, 1e6, …), which rounds once:
    // "0.4mm" gives the same double as "400um" and as 0.0004.
    Ok(if scale < 1.0 {
        value / (1.0 / scale).round()
    } else {
        value * scale
    })
}

/// Formats metres with a readable unit: `6.328e-7` → `"632.8nm"`, `0.05` → `"5cm"`.
pub fn format_length(metres: f64) -> String {
    let a = metres.abs();
    let (name, scale) = if a == 0.0 || !a.is_finite() || a >= 1.0 {
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
    };
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
    }
}
