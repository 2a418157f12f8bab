//! `manifest.json`: what an export wrote, so that a fabrication file can be traced back to the
//! design — every file with its sha256, the physical parameters, the photonflow version and the
//! source model.

use std::io::Read;
use std::path::Path;

use photonflow_optics::system::Material;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CompileError, Result, read_text};

/// The value of [`Manifest::format`].
pub const FORMAT: &str = "photonflow-fabrication-manifest";
/// The manifest format version.
pub const VERSION: u32 = 1;
/// File name of the manifest in an export folder.
pub const FILE_NAME: &str = "manifest.json";

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the manifest, `/`-separated.
    pub path: String,
    /// sha256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Size, bytes.
    pub bytes: u64,
    /// Optical layer it belongs to (index from 0, input side first), if any.
    pub layer: Option<usize>,
    /// What it holds: `height`, `levels`, `phase`, `height-png`, `stl`, `gds`, `hdf5`, `bitmap`, …
    pub kind: String,
}

/// One optical layer of the exported system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEntry {
    /// Index from 0, input side first.
    pub index: usize,
    /// Name in the system.
    pub name: String,
    /// Distance to the next plane, metres.
    pub distance_m: f64,
    /// Levels it was quantised to, if any.
    pub levels: Option<u32>,
}

/// The manifest of one export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// Version of photonflow that wrote the files.
    pub photonflow_version: String,
    /// The target (`npy`, `height`, `stl`, `gds`, `hdf5`, `slm`).
    pub target: String,
    /// The model folder the design was read from.
    pub source_model: String,
    /// sha256 of the model's `system.json`.
    pub source_sha256: String,
    /// Vacuum wavelength, metres.
    pub wavelength_m: f64,
    /// Pixel pitch of the design, metres.
    pub pitch_m: f64,
    /// Pixels per row and rows of every layer.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Index of the medium between the layers.
    pub medium_index: f64,
    /// Levels of the process (the first layer's, when layers differ), if quantised.
    pub levels: Option<u32>,
    /// The relief material (`null` for the `slm` target, which makes no relief).
    pub material: Option<Material>,
    /// Base plate thickness, metres (`null` for `slm`).
    pub base_m: Option<f64>,
    /// Whether the reliefs are unwrapped (no 2π steps, taller than one 2π; `--unwrap`).
    #[serde(default)]
    pub unwrapped: bool,
    /// Relief of one 2π of phase, metres (`null` for `slm`).
    pub full_wave_m: Option<f64>,
    /// The optical layers.
    pub layers: Vec<LayerEntry>,
    /// Every file written, the manifest excepted.
    pub files: Vec<FileEntry>,
    /// Target-specific settings (units, resampling, GDS conventions, …).
    pub target_settings: serde_json::Value,
    /// The design and the as-built system simulated on a test set (`export --simulate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<serde_json::Value>,
}

/// sha256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| CompileError::file(path, format!("cannot read it back: {e}")))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| CompileError::file(path, format!("cannot read it back: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let at = |problem: String| CompileError::file(&path, problem);
        let text = read_text(&path)?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| at(e.to_string()))?;
        if m.format != FORMAT || m.version > VERSION {
            return Err(at(format!(
                "is format {} version {}; this photonflow reads {FORMAT} up to version {VERSION}",
                m.format, m.version
            )));
        }
        Ok(m)
    }

    /// Checks every listed file against its size and sha256; returns the paths that differ or
    /// are missing.
    pub fn verify(&self, dir: &Path) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| {
                let p = dir.join(&f.path);
                !matches!(sha256_file(&p), Ok(h) if h == f.sha256)
            })
            .map(|f| f.path.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vector() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
