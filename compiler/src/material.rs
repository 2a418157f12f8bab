//! Materials of fabricated reliefs: the built-in ones
//! ([`photonflow_optics::system::MATERIAL_PRESETS`]) and user tables in TOML.
//!
//! A material's index `n` and extinction `κ` hold at one wavelength, so every entry states it,
//! and a material is only used for a design at that wavelength (within 1 %):
//!
//! ```toml
//! [[material]]
//! name = "my-resin"
//! n = 1.65
//! kappa = 0.02
//! wavelength = "0.75mm"
//! source = "THz-TDS of a printed slab, 2026"   # optional
//! ```
//!
//! `--material NAME` names a built-in material, `--material FILE.toml` the single entry of a
//! table (or `FILE.toml:NAME` one of several).

use std::path::Path;

use photonflow_optics::system::{MATERIAL_PRESETS, Material, MaterialPreset};
use photonflow_optics::units::{format_length, parse_length};
use serde::Deserialize;

use crate::error::{CompileError, Result, read_text};

/// Largest relative difference between a material's wavelength and the design's.
const WAVELENGTH_TOLERANCE: f64 = 0.01;

/// One entry of a material table, as in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    n: f64,
    #[serde(default)]
    kappa: f64,
    wavelength: String,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    material: Vec<Entry>,
}

/// A material with the wavelength its values hold at and where they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct MaterialSpec {
    /// Name, index and extinction.
    pub material: Material,
    /// Vacuum wavelength of `n` and `κ`, metres.
    pub wavelength_m: f64,
    /// Where the values come from.
    pub source: String,
}

impl From<&MaterialPreset> for MaterialSpec {
    fn from(p: &MaterialPreset) -> Self {
        Self {
            material: p.material(),
            wavelength_m: p.wavelength_m,
            source: p.source.to_string(),
        }
    }
}

impl MaterialSpec {
    /// A built-in material's name, `FILE.toml` or `FILE.toml:NAME` (see the module docs).
    pub fn resolve(spec: &str) -> Result<Self> {
        if let Some(p) = MaterialPreset::find(spec) {
            return Ok(p.into());
        }
        let (file, name) = match spec.rsplit_once(':') {
            Some((f, n)) if f.ends_with(".toml") => (f, Some(n)),
            _ => (spec, None),
        };
        let path = Path::new(file);
        if !path.is_file() {
            return Err(CompileError::Material(format!(
                "'{spec}' is neither a built-in material ({}) nor a material table file",
                preset_names()
            )));
        }
        Self::from_file(path, name)
    }

    /// The entry `name` of the TOML table in `path` (the only entry when `name` is `None`).
    pub fn from_file(path: &Path, name: Option<&str>) -> Result<Self> {
        let at = |problem: String| CompileError::file(path, problem);
        let text = read_text(path)?;
        let table: Table = toml::from_str(&text).map_err(|e| at(e.to_string()))?;
        let names: Vec<String> = table
            .material
            .iter()
            .map(|e| format!("'{}'", e.name))
            .collect();
        let entry = match name {
            Some(n) => table.material.iter().find(|e| e.name == n).ok_or_else(|| {
                at(format!(
                    "has no material '{n}'; it has {}",
                    names.join(", ")
                ))
            })?,
            None => match table.material.as_slice() {
                [one] => one,
                [] => return Err(at("holds no [[material]] entry".into())),
                _ => {
                    return Err(at(format!(
                        "holds {} materials ({}); name one as {}:NAME",
                        names.len(),
                        names.join(", "),
                        path.display()
                    )));
                }
            },
        };
        let wavelength_m = parse_length(&entry.wavelength)
            .map_err(|e| at(format!("material '{}': wavelength: {e}", entry.name)))?;
        let spec = Self {
            material: Material {
                name: entry.name.clone(),
                n: entry.n,
                kappa: entry.kappa,
            },
            wavelength_m,
            source: entry
                .source
                .clone()
                .unwrap_or_else(|| path.display().to_string()),
        };
        spec.check_values().map_err(|e| at(e.to_string()))?;
        Ok(spec)
    }

    fn check_values(&self) -> Result<()> {
        let m = &self.material;
        if !(m.n.is_finite() && m.kappa.is_finite() && m.kappa >= 0.0) {
            return Err(CompileError::Material(format!(
                "material '{}' has n = {}, κ = {}: both must be finite and κ ≥ 0",
                m.name, m.n, m.kappa
            )));
        }
        if !(self.wavelength_m.is_finite() && self.wavelength_m > 0.0) {
            return Err(CompileError::Material(format!(
                "material '{}' has wavelength {}; give a positive length",
                m.name, self.wavelength_m
            )));
        }
        Ok(())
    }

    /// The material for a design at `wavelength_m` in a medium of index `medium`: refused when
    /// its values hold at another wavelength, or when `n ≤ medium` (a relief would not delay the
    /// wave).
    pub fn for_design(&self, wavelength_m: f64, medium: f64) -> Result<Material> {
        self.check_values()?;
        let m = &self.material;
        if (self.wavelength_m - wavelength_m).abs() > WAVELENGTH_TOLERANCE * wavelength_m {
            return Err(CompileError::Material(format!(
                "material '{}' has n = {} at λ = {}, but the design is at λ = {}; give the \
                 material at the design wavelength in a table (--material FILE.toml)",
                m.name,
                m.n,
                format_length(self.wavelength_m),
                format_length(wavelength_m)
            )));
        }
        if m.n <= medium {
            return Err(CompileError::Material(format!(
                "material '{}' has n = {} ≤ the medium's index {medium}: a relief of it cannot \
                 delay the wave; choose a denser material",
                m.name, m.n
            )));
        }
        Ok(m.clone())
    }
}

fn preset_names() -> String {
    MATERIAL_PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_tables_resolve_and_check_the_wavelength() {
        let resin = MaterialSpec::resolve("thz-resin").unwrap();
        let m = resin.for_design(0.75e-3, 1.0).unwrap();
        assert_eq!((m.n, m.kappa), (1.72, 0.03));
        let e = resin.for_design(632.8e-9, 1.0).unwrap_err().to_string();
        assert!(e.contains("632.8nm") && e.contains("FILE.toml"), "{e}");
        let e = MaterialSpec::resolve("unobtainium")
            .unwrap_err()
            .to_string();
        assert!(e.contains("thz-resin, fused-silica, pmma"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(
            &file,
            "[[material]]\nname = \"a\"\nn = 1.5\nwavelength = \"1um\"\n\n[[material]]\nname = \
             \"b\"\nn = 0.9\nkappa = 0.1\nwavelength = \"1um\"\n",
        )
        .unwrap();
        let f = file.to_string_lossy().to_string();
        let e = MaterialSpec::resolve(&f).unwrap_err().to_string();
        assert!(e.contains("'a', 'b'") && e.contains(":NAME"), "{e}");
        let a = MaterialSpec::resolve(&format!("{f}:a")).unwrap();
        assert_eq!(a.for_design(1.005e-6, 1.0).unwrap().n, 1.5);
        let b = MaterialSpec::resolve(&format!("{f}:b")).unwrap();
        let e = b.for_design(1e-6, 1.0).unwrap_err().to_string();
        assert!(e.contains("≤ the medium"), "{e}");
        let e = MaterialSpec::resolve(&format!("{f}:c"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no material 'c'; it has 'a', 'b'"), "{e}");
        std::fs::write(
            &file,
            "[[material]]\nname = \"a\"\nn = 1.5\nwavelength = 1\n",
        )
        .unwrap();
        assert!(MaterialSpec::resolve(&f).is_err());
        std::fs::write(
            &file,
            "[[material]]\nname = \"a\"\nn = 1.5\nkappa = -1\nwavelength = \"1um\"\n",
        )
        .unwrap();
        let e = MaterialSpec::resolve(&f).unwrap_err().to_string();
        assert!(e.contains("κ ≥ 0") && e.contains("m.toml"), "{e}");
    }
}
