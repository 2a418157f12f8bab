//! The small JSON files that measurements are kept in (a camera's calibration, its noise):
//! written whole or not at all, and read back with their format checked.

use std::io::Write;
use std::path::Path;

use photonflow_optics::io::write_atomic;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{HardwareError, Result, invalid};

/// Writes `value` as JSON to `path` (a temporary file renamed into place).
pub(crate) fn save<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("a measurement is plain JSON");
    write_atomic(path, |w| w.write_all(text.as_bytes())).map_err(|source| HardwareError::Io {
        action: format!("writing {}", path.display()),
        source,
    })
}

/// Reads the `what` (a name for messages) in `path`, and checks that its format and version,
/// as `header` gives them, are `format` and 1.
pub(crate) fn load<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    format: &str,
    header: impl Fn(&T) -> (&str, u32),
) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| HardwareError::Io {
        action: format!("reading the {what} {}", path.display()),
        source,
    })?;
    let named = || format!("{what} {}", path.display());
    let value: T = serde_json::from_str(&text).map_err(|e| invalid(named(), e.to_string()))?;
    let (f, version) = header(&value);
    if f != format || version != 1 {
        return Err(invalid(
            named(),
            format!("not a {what} (format '{f}', version {version})"),
        ));
    }
    Ok(value)
}
