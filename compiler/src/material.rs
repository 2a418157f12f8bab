//! Materials of fabricated reliefs: the built-in ones
//! ([`photonflow_optics::material::MATERIAL_PRESETS`]) and user tables in TOML.
//!
//! A material is given by its index `n` and extinction `κ` at the wavelength they were measured
//! at (and then only used for a design within 1 % of it), or by a dispersion model that gives
//! them over a band ([`photonflow_optics::material`]):
//!
//! ```toml
//! [[material]]
//! name = "my-resin"
//! n = 1.65
//! kappa = 0.02
//! wavelength = "0.75mm"
//! source = "THz-TDS of a printed slab, 2026"   # optional
//!
//! [[material]]
//! name = "my-resist"
//! dispersion = { cauchy = { a = 1.52, b_um2 = 0.0065, range_um = [0.4, 1.6] } }
//! source = "ellipsometry of a spun film, 2026"
//! ```
//!
//! `--material NAME` names a built-in material, `--material FILE.toml` the single entry of a
//! table (or `FILE.toml:NAME` one of several), `--material FILE.csv` measured `n` and `k`
//! ([`MaterialEntry::read_nk`]: a refractiveindex.info export, or columns `wavelength_nm, n, k`).

use std::path::Path;

use photonflow_optics::material::MaterialEntry;
use photonflow_optics::system::Material;
use serde::Deserialize;

use crate::error::{CompileError, Result, read_text};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    material: Vec<MaterialEntry>,
}

/// A material by a built-in name, `FILE.toml` or `FILE.toml:NAME` (see the module docs).
pub fn resolve(spec: &str) -> Result<MaterialEntry> {
    if let Some(p) = MaterialEntry::preset(spec) {
        return Ok(p.clone());
    }
    let (file, name) = match spec.rsplit_once(':') {
        Some((f, n)) if f.ends_with(".toml") => (f, Some(n)),
        _ => (spec, None),
    };
    let path = Path::new(file);
    if !path.is_file() {
        return Err(CompileError::Material(format!(
            "'{spec}' is neither a built-in material ({}) nor a material table (FILE.toml) or \
             measured n, k file (FILE.csv)",
            MaterialEntry::preset_names()
        )));
    }
    if path.extension().is_some_and(|e| e == "csv") {
        return Ok(MaterialEntry::read_nk(path)?);
    }
    from_file(path, name)
}

/// The entry `name` of the TOML table in `path` (the only entry when `name` is `None`),
/// checked; its `source` is the file when it names none.
pub fn from_file(path: &Path, name: Option<&str>) -> Result<MaterialEntry> {
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
    entry.validate().map_err(|e| at(e.into_problem()))?;
    let mut entry = entry.clone();
    entry
        .source
        .get_or_insert_with(|| path.display().to_string());
    Ok(entry)
}

/// The material of `entry` for a relief designed at `wavelength_m` in a medium of index
/// `medium` ([`MaterialEntry::for_relief`]): refused when its values hold at another wavelength
/// (with the fix), outside its dispersion's range, or when `n ≤ medium`.
pub fn for_design(entry: &MaterialEntry, wavelength_m: f64, medium: f64) -> Result<Material> {
    entry
        .for_relief(wavelength_m, medium)
        .map_err(|e| CompileError::Material(e.into_problem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_tables_resolve_and_check_the_wavelength() {
        let resin = resolve("thz-resin").unwrap();
        let m = for_design(&resin, 0.75e-3, 1.0).unwrap();
        assert_eq!((m.n, m.kappa), (1.72, 0.03));
        let e = for_design(&resin, 632.8e-9, 1.0).unwrap_err().to_string();
        assert!(
            e.contains("632.8nm") && e.contains("or with a dispersion"),
            "{e}"
        );
        let e = resolve("unobtainium").unwrap_err().to_string();
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
        let e = resolve(&f).unwrap_err().to_string();
        assert!(e.contains("'a', 'b'") && e.contains(":NAME"), "{e}");
        let a = resolve(&format!("{f}:a")).unwrap();
        assert_eq!(for_design(&a, 1.005e-6, 1.0).unwrap().n, 1.5);
        let b = resolve(&format!("{f}:b")).unwrap();
        let e = for_design(&b, 1e-6, 1.0).unwrap_err().to_string();
        assert!(e.contains("≤ the medium"), "{e}");
        let e = resolve(&format!("{f}:c")).unwrap_err().to_string();
        assert!(e.contains("no material 'c'; it has 'a', 'b'"), "{e}");
        std::fs::write(
            &file,
            "[[material]]\nname = \"a\"\nn = 1.5\nwavelength = 1\n",
        )
        .unwrap();
        assert!(resolve(&f).is_err());
        std::fs::write(
            &file,
            "[[material]]\nname = \"a\"\nn = 1.5\nkappa = -1\nwavelength = \"1um\"\n",
        )
        .unwrap();
        let e = resolve(&f).unwrap_err().to_string();
        assert!(e.contains("κ ≥ 0") && e.contains("m.toml"), "{e}");

        // A dispersive entry holds across its range, and names it beyond.
        std::fs::write(
            &file,
            "[[material]]\nname = \"r\"\ndispersion = { cauchy = { a = 1.52, b_um2 = 0.0065, \
             range_um = [0.4, 1.6] } }\n",
        )
        .unwrap();
        let r = resolve(&f).unwrap();
        assert_eq!(r.source.as_deref(), Some(f.as_str()));
        let blue = for_design(&r, 450e-9, 1.0).unwrap();
        let red = for_design(&r, 650e-9, 1.0).unwrap();
        assert!((blue.n - (1.52 + 0.0065 / 0.2025)).abs() < 1e-12);
        assert!(blue.n > red.n && red.dispersion.is_some());
        let e = for_design(&r, 2e-6, 1.0).unwrap_err().to_string();
        assert!(e.contains("400nm to 1.6um") && e.contains("2um"), "{e}");
        std::fs::write(
            &file,
            "[[material]]\nname = \"r\"\nn = 1.5\ndispersion = { cauchy = { a = 1.52 } }\n",
        )
        .unwrap();
        let e = resolve(&f).unwrap_err().to_string();
        assert!(
            e.contains("both n and a dispersion") && e.contains("m.toml"),
            "{e}"
        );

        // Measured n and k, as refractiveindex.info exports them: named after the file.
        let csv = dir.path().join("resin.csv");
        std::fs::write(
            &csv,
            "wl,n\n500,1.70\n1000,1.74\nwl,k\n500,0.02\n1000,0.04\n",
        )
        .unwrap();
        let r = resolve(&csv.to_string_lossy()).unwrap();
        assert_eq!(r.name, "resin");
        let m = for_design(&r, 0.75e-3, 1.0).unwrap();
        assert!((m.n - 1.72).abs() < 1e-12 && (m.kappa - 0.03).abs() < 1e-12);
        std::fs::write(&csv, "wl,n\n").unwrap();
        let e = resolve(&csv.to_string_lossy()).unwrap_err().to_string();
        assert!(e.contains("resin.csv") && e.contains("no n values"), "{e}");
    }
}
