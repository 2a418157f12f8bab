//! The wire format of slmsuite's remote hardware (`slmsuite.hardware.remote`, version 0.5),
//! so that photonflow drives a lab's existing slmsuite server and slmsuite's clients drive a
//! photonflow rig.
//!
//! * TCP, one request per connection: the client connects, sends one line, reads one line.
//! * A line is `quote_plus(json) + "\n"`: the JSON text percent-encoded as Python's
//!   `urllib.parse.quote_plus` does (letters, digits and `_.-~` kept, space as `+`), so the only
//!   raw newline is the terminator.
//! * A request is `{"name": device, "command": c, "args": [...], "kwargs": {...}}`; a reply is
//!   `[ok, value]`, with an error message as the value when `ok` is false.
//! * Arrays travel as `{"__zlib__": base64(zlib(C-order bytes)), "__shape__": [...],
//!   "__dtype__": "uint16"}` (little-endian; NumPy's dtype names).
//!
//! Lines are limited in size ([`MAX_LINE`]) and every read and write has a timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::{Value, json};

/// The longest line read (256 MiB: a 16-bit 8192² frame, compressed or not, fits).
pub const MAX_LINE: usize = 256 << 20;

/// slmsuite's default port ("commonly used for instrument control").
pub const DEFAULT_PORT: u16 = 5025;

/// `text` percent-encoded as Python's `urllib.parse.quote_plus(text)` (safe characters none
/// beyond the unreserved ones).
pub fn quote_plus(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// The inverse of [`quote_plus`] (`urllib.parse.unquote_plus`): `+` is a space, `%XY` a byte.
/// Errors on a truncated or non-hexadecimal escape, or bytes that are not UTF-8.
pub fn unquote_plus(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("a bad percent escape at byte {i}"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the message is not UTF-8".to_string())
}

/// An array of the wire: its shape and its values, widened to `u16` (the types SLMs and
/// cameras use: `uint8` and `uint16`).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// C-order shape.
    pub shape: Vec<usize>,
    /// The values.
    pub values: Vec<u16>,
}

/// `values` of `shape` as a wire array, `uint8` when `narrow` (every value below 256) and
/// `uint16` otherwise.
pub fn encode_array(shape: &[usize], values: &[u16], narrow: bool) -> Value {
    let bytes: Vec<u8> = if narrow {
        values.iter().map(|&v| v.min(255) as u8).collect()
    } else {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    };
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&bytes).expect("compressing to memory");
    let compressed = z.finish().expect("compressing to memory");
    json!({
        "__zlib__": STANDARD.encode(compressed),
        "__shape__": shape,
        "__dtype__": if narrow { "uint8" } else { "uint16" },
    })
}

/// Reads a wire array of unsigned 8- or 16-bit integers. Errors name what is wrong.
pub fn decode_array(value: &Value) -> Result<Array, String> {
    if value.get("__zlib__").and_then(Value::as_str).is_none() {
        return Err("expected an array ({\"__zlib__\": …}); got something else".into());
    }
    let dtype = dtype_of(value)?;
    let width = match dtype {
        "uint8" | "u1" | "|u1" => 1,
        "uint16" | "u2" | "<u2" => 2,
        other => {
            return Err(format!(
                "arrays of {other} are not taken; SLM levels and camera frames are uint8 or \
                 uint16"
            ));
        }
    };
    let bytes = inflate(value, width)?;
    let values = if width == 1 {
        bytes.iter().map(|&b| u16::from(b)).collect()
    } else {
        bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect()
    };
    Ok(Array {
        shape: shape_of(value)?,
        values,
    })
}

/// Reads a wire array of `float64` or `float32` values (NumPy's metadata arrays, such as
/// slmsuite's `pitch_um`), little-endian. Errors name what is wrong.
pub fn decode_floats(value: &Value) -> Result<Vec<f64>, String> {
    let dtype = dtype_of(value)?;
    let width = match dtype {
        "float64" | "f8" | "<f8" => 8,
        "float32" | "f4" | "<f4" => 4,
        other => return Err(format!("expected a float array; got {other}")),
    };
    let bytes = inflate(value, width)?;
    Ok(if width == 8 {
        bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect()
    } else {
        bytes
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
            .collect()
    })
}

/// The data of a wire array of `width`-byte values, checked against its shape.
fn inflate(value: &Value, width: usize) -> Result<Vec<u8>, String> {
    let text = value
        .get("__zlib__")
        .and_then(Value::as_str)
        .ok_or("expected an array ({\"__zlib__\": …}); got something else")?;
    let count = shape_of(value)?
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_LINE)
        .ok_or("the array's shape is too large")?;
    let compressed = STANDARD
        .decode(text.as_bytes())
        .map_err(|e| format!("the array's data is not base64: {e}"))?;
    let mut bytes = Vec::with_capacity(count * width);
    ZlibDecoder::new(&compressed[..])
        .take((count * width + 1) as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the array's data is not zlib: {e}"))?;
    if bytes.len() != count * width {
        return Err(format!(
            "the array's data holds {} bytes; its shape {:?} needs {}",
            bytes.len(),
            shape_of(value)?,
            count * width
        ));
    }
    Ok(bytes)
}

/// The `__dtype__` of a wire array (NumPy's name).
fn dtype_of(value: &Value) -> Result<&str, String> {
    value
        .get("__dtype__")
        .and_then(Value::as_str)
        .ok_or_else(|| "the array has no __dtype__".to_string())
}

/// The `__shape__` of a wire array.
fn shape_of(value: &Value) -> Result<Vec<usize>, String> {
    value
        .get("__shape__")
        .and_then(Value::as_array)
        .ok_or("the array has no __shape__")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| "the array's __shape__ is not a list of sizes".to_string())
}

/// Writes one message.
pub fn send(stream: &mut TcpStream, message: &Value) -> std::io::Result<()> {
    let mut line = quote_plus(&message.to_string());
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    stream.flush()
}

/// Reads one message, waiting at most `timeout` for each piece of it.
pub fn receive(stream: &TcpStream, timeout: Duration) -> Result<Value, String> {
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut reader = BufReader::new(stream).take(MAX_LINE as u64 + 1);
    reader.read_until(b'\n', &mut line).map_err(|e| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            format!(
                "no complete message within {:.1} s ({} bytes came)",
                timeout.as_secs_f64(),
                line.len()
            )
        } else {
            e.to_string()
        }
    })?;
    if line.len() > MAX_LINE {
        return Err(format!("a message longer than {} MiB", MAX_LINE >> 20));
    }
    if line.last() != Some(&b'\n') {
        return Err(format!(
            "the connection closed after {} bytes, before the end of the message",
            line.len()
        ));
    }
    line.pop();
    let text = std::str::from_utf8(&line).map_err(|_| "the message is not UTF-8".to_string())?;
    let json = unquote_plus(text)?;
    serde_json::from_str(&json).map_err(|e| format!("the message is not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_python_and_round_trips() {
        // Python: urllib.parse.quote_plus('{"name": "slm", "x": [1, 2]}/+~\n')
        assert_eq!(
            quote_plus("{\"name\": \"slm\", \"x\": [1, 2]}/+~\n"),
            "%7B%22name%22%3A+%22slm%22%2C+%22x%22%3A+%5B1%2C+2%5D%7D%2F%2B~%0A"
        );
        assert_eq!(quote_plus("é"), "%C3%A9");
        for s in ["", "a b+c%d", "{\"k\": \"v\\n\"}", "ünï ✓"] {
            assert_eq!(unquote_plus(&quote_plus(s)).unwrap(), s);
        }
        assert!(unquote_plus("%4").is_err());
        assert!(unquote_plus("%zz").is_err());
        assert!(unquote_plus("%FF").is_err());
    }

    #[test]
    fn arrays_round_trip_and_bad_ones_are_named() {
        let values: Vec<u16> = (0..600).map(|i| (i * 97 % 4096) as u16).collect();
        let wire = encode_array(&[20, 30], &values, false);
        assert_eq!(wire["__dtype__"], "uint16");
        // zlib's header, base64: what slmsuite's Python writes starts the same way.
        assert!(wire["__zlib__"].as_str().unwrap().starts_with("eJ"));
        let back = decode_array(&wire).unwrap();
        assert_eq!(
            (back.shape.as_slice(), back.values.as_slice()),
            (&[20, 30][..], &values[..])
        );
        let small: Vec<u16> = (0..10).collect();
        let wire = encode_array(&[10], &small, true);
        assert_eq!(decode_array(&wire).unwrap().values, small);
        let mut wrong = wire.clone();
        wrong["__shape__"] = json!([11]);
        assert!(decode_array(&wrong).unwrap_err().contains("needs 11"));
        wrong["__dtype__"] = json!("float64");
        assert!(decode_array(&wrong).unwrap_err().contains("float64"));
        wrong["__zlib__"] = json!("***");
        wrong["__dtype__"] = json!("uint8");
        assert!(decode_array(&wrong).unwrap_err().contains("base64"));
        assert!(decode_array(&json!(3)).is_err());
        // slmsuite's pitch_um: float64 (x, y).
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&[8.0f64.to_le_bytes(), 9.2f64.to_le_bytes()].concat())
            .unwrap();
        let data = STANDARD.encode(z.finish().unwrap());
        let pitch = json!({"__zlib__": data, "__shape__": [2], "__dtype__": "float64"});
        assert_eq!(decode_floats(&pitch).unwrap(), vec![8.0, 9.2]);
        assert!(decode_array(&pitch).unwrap_err().contains("float64"));
        assert!(decode_floats(&wire).unwrap_err().contains("float"));
        let huge =
            json!({"__zlib__": "", "__shape__": [1u64 << 40, 1u64 << 40], "__dtype__": "uint8"});
        assert!(decode_array(&huge).unwrap_err().contains("too large"));
    }
}
