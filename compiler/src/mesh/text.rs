//! Matrices as text tables (`.csv`, `.tsv`, `.txt`): what MATLAB, Excel, Julia and
//! `numpy.savetxt` write, for users without NumPy's `.npy`.
//!
//! **Reading** ([`parse`], [`read`]): one matrix row per line; lines that are empty or start
//! with `#` or `%` (comments, `numpy.savetxt`'s header) are skipped, as is a leading UTF-8 byte
//! order mark. The delimiter is the first of tab, `;`, `,` found in the file, else runs of
//! whitespace; with `;`, a decimal comma (`0,5`, as Excel writes in many locales) is read as a
//! point. An entry is a real number (`0.5`, `-1e-3`) or a complex one written as Python, NumPy,
//! MATLAB or Julia write it: `0.5+0.25j`, `0.5-0.25i`, `(0.5+0.25j)`, `0.5 + 0.25im`, `-2j`,
//! `j`, or a pair `(0.5,0.25)` as C++, Fortran and Octave write it (a delimiter inside
//! parentheses does not separate entries). Every row must have as many entries as the first,
//! and every entry must be finite; an error names the line and the entry.
//!
//! **Precision.** A text table carries the digits its writer chose: a unitary written with
//! five significant digits (MATLAB's `csvwrite`) is unitary only to about 10⁻⁵. [`TextMatrix`]
//! reports the most significant digits any of its numbers was written with, so that a caller
//! can say why such a unitary fails a tight tolerance.
//!
//! **Writing** ([`format`](fn@format), [`write`](fn@write)): every number as the shortest decimal that reads back
//! as the same `f64` (with an exponent below 10⁻⁵ and from 10¹⁶), complex entries as `a+bj`
//! (the form Python's `complex` and `numpy.loadtxt(..., dtype=complex)` read), real ones alone
//! when every imaginary part is zero; `,` between entries in a `.csv`, a tab in a `.tsv`, a
//! space otherwise. Written atomically: a temporary file renamed into place.

use std::io::Write;
use std::path::Path;

use num_complex::Complex64 as C;
use photonflow_optics::io::write_atomic;

use super::CMatrix;
use crate::error::{CompileError, Result, read_text};

/// A matrix read from a text table.
#[derive(Debug, Clone, PartialEq)]
pub struct TextMatrix {
    /// The matrix.
    pub matrix: CMatrix,
    /// The most significant decimal digits any of its numbers was written with (17 or more:
    /// as exact as an `f64`; 0 for a matrix of zeros).
    pub digits: u32,
}

/// Whether a path names a text table (by its extension: `.csv`, `.tsv`, `.txt`, `.dat`, in any
/// case).
pub fn is_text_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["csv", "tsv", "txt", "dat"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads the text table `path` (module doc); errors name the file, the line and the entry.
pub fn read(path: &Path) -> Result<TextMatrix> {
    parse(&read_text(path)?).map_err(|problem| CompileError::file(path, problem))
}

/// How the entries of a line are separated.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Delimiter {
    Tab,
    /// `;`, with decimal commas allowed.
    Semicolon,
    Comma,
    Whitespace,
}

/// Parses a text table (module doc); the error says what is wrong, where, and what to write.
pub fn parse(text: &str) -> std::result::Result<TextMatrix, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !(l.is_empty() || l.starts_with('#') || l.starts_with('%')))
        .collect();
    let has = |c: char| {
        lines
            .iter()
            .any(|(_, l)| outside_parentheses(l).any(|x| x == c))
    };
    let delimiter = if has('\t') {
        Delimiter::Tab
    } else if has(';') {
        Delimiter::Semicolon
    } else if has(',') {
        Delimiter::Comma
    } else {
        Delimiter::Whitespace
    };
    let (mut data, mut cols, mut digits) = (Vec::new(), 0, 0);
    for (number, line) in &lines {
        let fields = fields(line, delimiter);
        for (k, field) in fields.iter().enumerate() {
            let (value, d) = parse_entry(field, delimiter)
                .map_err(|problem| format!("line {number}, entry {}: {problem}", k + 1))?;
            data.push(value);
            digits = digits.max(d);
        }
        if cols == 0 {
            cols = fields.len();
        } else if fields.len() != cols {
            return Err(format!(
                "line {number} has {} entries, the first row {cols}: every row of a matrix has \
                 as many",
                fields.len()
            ));
        }
    }
    if data.is_empty() {
        return Err(
            "no numbers in it: write one matrix row per line, e.g. `0.6,0.8` and \
                    `-0.8,0.6`"
                .into(),
        );
    }
    Ok(TextMatrix {
        matrix: CMatrix {
            rows: lines.len(),
            cols,
            data,
        },
        digits,
    })
}

/// The entries of one line, trimmed; a trailing delimiter (some writers end every line with
/// one) is not an entry.
fn fields(line: &str, delimiter: Delimiter) -> Vec<String> {
    let mut fields: Vec<String> = match delimiter {
        Delimiter::Tab => split_outside_parentheses(line, '\t'),
        Delimiter::Semicolon => split_outside_parentheses(line, ';'),
        Delimiter::Comma => split_outside_parentheses(line, ','),
        Delimiter::Whitespace => {
            // A lone sign joins its neighbours (Julia's `0.5 + 0.25im`), and so does what
            // follows an open parenthesis (`(0.5, 0.25)`).
            let mut out: Vec<String> = Vec::new();
            let (mut join, mut depth) = (false, 0i32);
            for token in line.split_whitespace() {
                match (token, out.last_mut()) {
                    ("+" | "-", Some(last)) => {
                        last.push_str(token);
                        join = true;
                    }
                    (_, Some(last)) if join || depth > 0 => {
                        last.push_str(token);
                        join = false;
                    }
                    _ => out.push(token.to_owned()),
                }
                depth += token.matches('(').count() as i32 - token.matches(')').count() as i32;
            }
            out
        }
    };
    if fields.len() > 1 && fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    fields
}

/// The characters of `line` outside parentheses.
fn outside_parentheses(line: &str) -> impl Iterator<Item = char> + '_ {
    let mut depth = 0i32;
    line.chars().filter(move |&c| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => return depth <= 0,
        }
        false
    })
}

/// `line` split at every `delimiter` outside parentheses, each part trimmed.
fn split_outside_parentheses(line: &str, delimiter: char) -> Vec<String> {
    let (mut parts, mut part, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in line.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == delimiter && depth <= 0 {
            parts.push(part.trim().to_owned());
            part.clear();
        } else {
            part.push(c);
        }
    }
    parts.push(part.trim().to_owned());
    parts
}

/// One entry (module doc) and the significant digits it was written with.
fn parse_entry(field: &str, delimiter: Delimiter) -> std::result::Result<(C, u32), String> {
    let help = "write real numbers like 0.5 or -1e-3, complex ones like 0.5+0.25j, 0.5-0.25i, \
                (0.5+0.25j) or (0.5,0.25)";
    if field.is_empty() {
        return Err(format!("empty (two delimiters in a row); {help}"));
    }
    let s: String = field.chars().filter(|c| !c.is_whitespace()).collect();
    let inner = s.strip_prefix('(').and_then(|t| t.strip_suffix(')'));
    // A pair `(re,im)`: C++, Fortran, Octave.
    let pair = inner
        .and_then(|t| t.split_once(','))
        .filter(|(_, im)| !im.contains(','));
    let bad = || format!("`{field}` is not a number; {help}");
    // A bare sign (or nothing) before the `j` is a unit: `j`, `-j`, `1+j`.
    let number = |t: &str, imaginary: bool| -> std::result::Result<(f64, u32), String> {
        let v: f64 = match t {
            "" | "+" if imaginary => 1.0,
            "-" if imaginary => -1.0,
            _ => t.parse().map_err(|_| bad())?,
        };
        if !v.is_finite() {
            return Err(format!("`{field}` is not finite; a matrix entry must be"));
        }
        Ok((v, significant_digits(t)))
    };
    if let Some((re, im)) = pair {
        let ((re, d1), (im, d2)) = (number(re, false)?, number(im, false)?);
        return Ok((C::new(re, im), d1.max(d2)));
    }
    let mut s = inner.unwrap_or(&s).to_owned();
    if delimiter == Delimiter::Semicolon && s.contains(',') && !s.contains('.') {
        s = s.replace(',', ".");
    }
    let lower = s.to_ascii_lowercase();
    let imaginary = ["im", "j", "i"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(suffix));
    let (value, digits) = match imaginary {
        None => {
            let (re, d) = number(&lower, false)?;
            (C::new(re, 0.0), d)
        }
        Some(rest) => {
            // The sign that starts the imaginary part: the last + or − not after an exponent's e.
            let bytes = rest.as_bytes();
            let split = (1..bytes.len())
                .rev()
                .find(|&k| matches!(bytes[k], b'+' | b'-') && bytes[k - 1] != b'e');
            let (re, im) = match split {
                Some(k) => (&rest[..k], &rest[k..]),
                None => ("0", rest),
            };
            let ((re, d1), (im, d2)) = (number(re, false)?, number(im, true)?);
            (C::new(re, im), d1.max(d2))
        }
    };
    Ok((value, digits))
}

/// The significant decimal digits of a number as written: those of its mantissa from the first
/// non-zero one, trailing zeros included (`0.500` has three, `1e-3` one, `0` none).
fn significant_digits(number: &str) -> u32 {
    let mantissa = number.split(['e', 'E']).next().unwrap_or("");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let first = digits.iter().position(|&d| d != b'0');
    first.map_or(0, |f| (digits.len() - f) as u32)
}

/// `m` as a text table with entries separated by `delimiter` (module doc).
pub fn format(m: &CMatrix, delimiter: char) -> String {
    let real = m.data.iter().all(|v| v.im == 0.0);
    let mut out = String::with_capacity(m.data.len() * if real { 20 } else { 42 });
    for row in m.data.chunks(m.cols.max(1)) {
        for (k, v) in row.iter().enumerate() {
            if k > 0 {
                out.push(delimiter);
            }
            out.push_str(&decimal(v.re));
            if !real {
                let im = decimal(v.im);
                if !im.starts_with('-') {
                    out.push('+');
                }
                out.push_str(&im);
                out.push('j');
            }
        }
        out.push('\n');
    }
    out
}

/// Writes `m` to `path` atomically (module doc), the delimiter chosen by its extension.
pub fn write(path: &Path, m: &CMatrix) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let delimiter = match ext.to_ascii_lowercase().as_str() {
        "csv" => ',',
        "tsv" => '\t',
        _ => ' ',
    };
    let text = format(m, delimiter);
    write_atomic(path, |w| w.write_all(text.as_bytes()))
        .map_err(|e| CompileError::file(path, format!("cannot write it: {e}")))
}

/// The shortest decimal that reads back as `x`, with an exponent outside `[10⁻⁵, 10¹⁶)`.
fn decimal(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || (1e-5..1e16).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::haar_unitary;
    use photonflow_optics::rng::Rng;

    fn entries(text: &str) -> Vec<C> {
        parse(text).unwrap().matrix.data
    }

    #[test]
    fn reads_what_numpy_matlab_julia_and_excel_write() {
        let want = vec![
            C::new(0.5, 0.25),
            C::new(-1e-3, 0.0),
            C::new(0.0, -2.0),
            C::new(1.5, -0.75),
        ];
        for text in [
            // numpy.savetxt(f, m) of a complex array: "(re+imj)" with spaces between.
            " (5.000000000000000000e-01+2.500000000000000000e-01j) (-1.000000000000000000e-03+0.000000000000000000e+00j)\n (0.000000000000000000e+00-2.000000000000000000e+00j) (1.500000000000000000e+00-7.500000000000000000e-01j)\n",
            // numpy.savetxt(f, m, delimiter=","), with a header.
            "# re,im\n(5e-01+2.5e-01j),(-1e-03+0e+00j)\n(0e+00-2e+00j),(1.5e+00-7.5e-01j)\n",
            // MATLAB writematrix: "a+bi".
            "0.5+0.25i,-0.001+0i\n0-2i,1.5-0.75i\n",
            // Julia writedlm (tabs), with "im".
            "0.5 + 0.25im\t-0.001 + 0.0im\n0.0 - 2.0im\t1.5 - 0.75im\n",
            // Julia's or a hand-written table separated by spaces.
            "0.5 + 0.25im -0.001\n-2im 1.5 - 0.75im\n",
            // Excel in a decimal-comma locale, CRLF, a byte order mark, a trailing delimiter.
            "\u{feff}0,5+0,25i;-0,001;\r\n-2j;1,5-0,75j;\r\n",
            // Python's complex() spelling, blank lines and a MATLAB comment.
            "% U\n\n(0.5+0.25j), -1E-3\n\n-2J, (1.5-0.75j)\n",
            // Pairs, as C++'s std::complex, Fortran and Octave write them.
            "(0.5,0.25) (-0.001,0)\n(0,-2) (1.5,-0.75)\n",
            "(0.5, 0.25) (-1e-3, 0.0)\n( 0.0, -2.0 ) (1.5, -0.75)\n",
            "(0.5,0.25),(-0.001,0)\n(0,-2),(1.5,-0.75)\n",
            "(0.5,0.25);-0,001\n(0,-2);(1.5,-0.75)\n",
        ] {
            assert_eq!(entries(text), want, "{text:?}");
        }
        assert_eq!(
            entries("j -j +j\n"),
            vec![C::new(0.0, 1.0), C::new(0.0, -1.0), C::new(0.0, 1.0)]
        );
        let m = parse("1 2 3\n4 5 6\n").unwrap().matrix;
        assert_eq!((m.rows, m.cols), (2, 3));
        assert_eq!(m.at(1, 0), C::new(4.0, 0.0));
    }

    #[test]
    fn counts_the_digits_numbers_were_written_with() {
        assert_eq!(significant_digits("0.70711"), 5);
        assert_eq!(significant_digits("-0.000123"), 3);
        assert_eq!(significant_digits("1.500e-7"), 4);
        assert_eq!(significant_digits("0"), 0);
        assert_eq!(
            parse("0.70711 -0.70711\n0.70711 0.70711\n").unwrap().digits,
            5
        );
        assert_eq!(parse("1,0\n0,1\n").unwrap().digits, 1);
        assert_eq!(
            parse("(7.071067811865475244e-01+0.000000000000000000e+00j)")
                .unwrap()
                .digits,
            19
        );
    }

    #[test]
    fn refusals_name_the_line_and_entry() {
        for (text, needles) in [
            ("1,2\n3\n", &["line 2 has 1 entries", "the first row 2"][..]),
            (
                "1,2\n3,x\n",
                &["line 2, entry 2", "`x` is not a number", "0.5+0.25j"],
            ),
            ("1,,2\n", &["line 1, entry 2", "empty"]),
            ("1 nan\n", &["line 1, entry 2", "not finite"]),
            ("1 inf\n", &["`inf` is not finite"]),
            ("1 1+infj\n", &["not finite"]),
            ("Var1,Var2\n1,2\n", &["line 1, entry 1", "`Var1`"]),
            ("1+2+3j\n", &["`1+2+3j` is not a number"]),
            ("1 - 2\n", &["`1-2` is not a number"]),
            ("- 2\n", &["line 1, entry 1", "`-` is not a number"]),
            ("++2j ()\n", &["`++2j` is not a number"]),
            ("(1,2,3)\n", &["`(1,2,3)` is not a number", "(0.5,0.25)"]),
            ("(1,x)\n", &["`(1,x)` is not a number"]),
            ("(1,nan)\n", &["not finite"]),
            ("# only a comment\n\n", &["no numbers"]),
            ("", &["no numbers"]),
        ] {
            let e = parse(text).unwrap_err();
            for needle in needles {
                assert!(e.contains(needle), "{text:?}: {e}");
            }
        }
    }

    #[test]
    fn what_it_writes_reads_back_to_the_bit() {
        let mut u = haar_unitary(7, &mut Rng::new(3));
        u.data[0] = C::new(1e-300, -0.0);
        u.data[1] = C::new(-3.5e20, 5e-6);
        u.data[2] = C::new(f64::MIN_POSITIVE / 4.0, f64::MAX);
        for delimiter in [',', '\t', ' '] {
            let text = format(&u, delimiter);
            let back = parse(&text).unwrap();
            assert_eq!(back.matrix.data.len(), u.data.len());
            for (a, b) in back.matrix.data.iter().zip(&u.data) {
                assert_eq!(a.re.to_bits(), b.re.to_bits(), "{text}");
                assert_eq!(a.im.to_bits(), b.im.to_bits(), "{text}");
            }
            assert!(back.digits >= 15, "{}", back.digits);
        }
        // A real matrix is written as real numbers.
        let real = CMatrix {
            rows: 2,
            cols: 2,
            data: vec![
                C::new(0.6, 0.0),
                C::new(0.8, 0.0),
                C::new(-0.8, 0.0),
                C::new(0.6, 0.0),
            ],
        };
        assert_eq!(format(&real, ','), "0.6,0.8\n-0.8,0.6\n");
        assert_eq!(parse(&format(&real, ',')).unwrap().matrix, real);
    }
}
