//! The export targets and the folder they write.
//!
//! An export is written into a staging folder beside `--out` and renamed into place only when
//! every file and the manifest are complete, so a failed export leaves nothing half-written.
//! `--out` must not exist, be empty, or hold an earlier export (a `manifest.json`), which is
//! replaced.
//!
//! | target | files per layer `NAME` | kind |
//! |---|---|---|
//! | `npy` | `NAME_levels.npy` (uint8, or uint16 above 256 levels; quantised layers), `NAME_height.npy` (float64, metres above the base) | `levels`, `height` |
//! | `height` | `NAME_height.npy`, `NAME_height.png` (16-bit gray, 0 = no relief, 65 535 = one full 2π of relief, `full_wave_m`) | `height`, `height-png` |
//! | `stl` | `NAME.stl`: binary STL in millimetres (or `--stl-unit`), the relief on its base plate, read back and checked (closed, designed volume) | `stl` |
//! | `gds` | one `mask.gds` for all layers: a cell per layer, level k on GDS layer k (or one layer per binary etch step), read back and rasterised to the design | `gds` |
//! | `oasis` | one `mask.oas`: the library of `gds` as OASIS ([`oasis`]), several times smaller, read back and rasterised the same way | `oasis` |
//! | `hdf5` | one `design.h5` for all layers: `/layers/NAME/phase` (float64, radians, wrapped into `[0, 2π)`), `/layers/NAME/height` (float64, metres above the base), `/layers/NAME/levels` (uint16; quantised layers), the physical parameters as attributes (SI units), read back and checked; only in builds with the cargo feature `hdf5` | `hdf5` |
//! | `slm` | `NAME_slm.png` (8- or 16-bit gray) or `NAME_slm.bmp`: the phase as the SLM's gray levels, linear or through a measured lookup table, resampled to the panel ([`slm`]) | `bitmap` |
//!
//! Every target but `slm` writes a relief of a material and needs a [`Fabrication`]; `slm`
//! needs none (its manifest has no material).

pub mod arrays;
mod bmp;
pub mod gds;
#[cfg(feature = "hdf5")]
pub mod hdf5;
mod mask;
pub mod oasis;
pub mod slm;
mod solid;
pub mod stl;

pub use mask::GdsSettings;
pub use slm::SlmSettings;
pub use solid::StlUnit;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use photonflow_optics::OpticalSystem;

use crate::error::{CompileError, Result};
use crate::fabricate::Fabrication;
use crate::manifest::{self, FileEntry, LayerEntry, Manifest, sha256_file};
use gds::LayoutFormat;

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Level maps and height maps as NumPy arrays.
    Npy,
    /// Height maps for 3D printing and grayscale lithography: `.npy` in metres and 16-bit PNG.
    Height,
    /// One binary STL solid per layer (millimetres), for 3D printing.
    Stl,
    /// A GDSII library of multilevel lithography masks, one cell per layer.
    Gds,
    /// The `gds` target's library as one OASIS file.
    Oasis,
    /// One HDF5 file with every layer's phase, height and level map and the physical
    /// parameters as attributes; needs a build with the cargo feature `hdf5`.
    Hdf5,
    /// Gray-level bitmaps for a phase-only spatial light modulator.
    Slm,
}

impl Target {
    /// Every target, by name.
    pub const ALL: [Target; 7] = [
        Target::Npy,
        Target::Height,
        Target::Stl,
        Target::Gds,
        Target::Oasis,
        Target::Hdf5,
        Target::Slm,
    ];

    /// The name on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Target::Npy => "npy",
            Target::Height => "height",
            Target::Stl => "stl",
            Target::Gds => "gds",
            Target::Oasis => "oasis",
            Target::Hdf5 => "hdf5",
            Target::Slm => "slm",
        }
    }

    /// Whether this build can write the target: `hdf5` needs the cargo feature `hdf5`.
    pub fn check_available(self) -> Result<()> {
        if self == Target::Hdf5 && !cfg!(feature = "hdf5") {
            return Err(CompileError::Option {
                option: "--target",
                problem: "photonflow was built without HDF5 support; rebuild with `cargo \
                          install --path . --features hdf5` (needs the HDF5 C library: `apt \
                          install libhdf5-dev`), or use --target npy"
                    .into(),
            });
        }
        Ok(())
    }

    /// Whether the target is a lithography mask library (`gds`, `oasis`), which takes the
    /// mask settings ([`GdsSettings`]).
    pub fn is_mask(self) -> bool {
        matches!(self, Target::Gds | Target::Oasis)
    }

    /// Whether the target writes a relief of a material (every target but `slm`).
    pub fn needs_fabrication(self) -> bool {
        self != Target::Slm
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = CompileError;

    fn from_str(s: &str) -> Result<Self> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| CompileError::Option {
                option: "--target",
                problem: format!(
                    "'{s}' is not a target; use one of {}",
                    Target::ALL.map(Target::name).join(", ")
                ),
            })
    }
}

/// A folder being filled: files are written into it and recorded for the manifest.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    /// The folder it becomes: errors name its files, not the temporary ones.
    out: PathBuf,
    files: Vec<FileEntry>,
}

impl Staging {
    /// Writes `name` (relative to the folder) with `write`, which gets the full path, and
    /// records it with its sha256.
    pub fn file(
        &mut self,
        name: &str,
        layer: Option<usize>,
        kind: &str,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let path = self.dir.join(name);
        write(&path).map_err(|e| match e {
            CompileError::File { path, problem } => CompileError::File {
                path: match path.strip_prefix(&self.dir) {
                    Ok(inside) => self.out.join(inside),
                    Err(_) => path,
                },
                problem,
            },
            other => other,
        })?;
        let bytes = std::fs::metadata(&path)
            .map_err(|e| CompileError::File {
                path: path.clone(),
                problem: format!("was not written: {e}"),
            })?
            .len();
        self.files.push(FileEntry {
            path: name.to_string(),
            sha256: sha256_file(&path)?,
            bytes,
            layer,
            kind: kind.to_string(),
        });
        Ok(())
    }
}

/// What to record about the source of an export.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The model folder.
    pub model: &'a Path,
    /// sha256 of its `system.json`.
    pub sha256: String,
    /// What simulating the design and the as-built system gave, if it was done.
    pub simulation: Option<serde_json::Value>,
    /// Settings of the `gds` and `oasis` targets.
    pub gds: GdsSettings,
    /// Settings of the `slm` target.
    pub slm: SlmSettings,
    /// The length unit of the `stl` target's coordinates.
    pub stl_unit: StlUnit,
}

/// Writes `target`'s files for `fabrication` of `system` into `out` (see the module docs), with
/// the manifest; returns the manifest. `fabrication` may be `None` for the `slm` target only.
pub fn export(
    system: &OpticalSystem,
    fabrication: Option<&Fabrication>,
    target: Target,
    out: &Path,
    source: &Source,
) -> Result<Manifest> {
    check_out(out)?;
    let staging_dir = staging_path(out);
    if staging_dir.exists() {
        std::fs::remove_dir_all(&staging_dir).ok();
    }
    std::fs::create_dir_all(&staging_dir).map_err(|e| CompileError::File {
        path: out.to_path_buf(),
        problem: format!("cannot create files beside it ({e}); choose a writable --out"),
    })?;
    let result = fill(system, fabrication, target, &staging_dir, out, source)
        .and_then(|manifest| publish(&staging_dir, out).map(|()| manifest));
    if result.is_err() {
        std::fs::remove_dir_all(&staging_dir).ok();
    }
    result
}

fn fill(
    system: &OpticalSystem,
    fabrication: Option<&Fabrication>,
    target: Target,
    dir: &Path,
    out: &Path,
    source: &Source,
) -> Result<Manifest> {
    let mut staging = Staging {
        dir: dir.to_path_buf(),
        out: out.to_path_buf(),
        files: Vec::new(),
    };
    let relief = || {
        fabrication.ok_or_else(|| CompileError::Option {
            option: "--material",
            problem: format!("the {target} target makes a relief and needs a material"),
        })
    };
    target.check_available()?;
    let settings = match target {
        Target::Npy => arrays::write_npy_target(system, relief()?, &mut staging)?,
        Target::Height => arrays::write_height_target(system, relief()?, &mut staging)?,
        Target::Stl => solid::write_stl_target(system, relief()?, source.stl_unit, &mut staging)?,
        Target::Gds => mask::write_mask_target(
            system,
            relief()?,
            &source.gds,
            LayoutFormat::Gds,
            &mut staging,
        )?,
        Target::Oasis => mask::write_mask_target(
            system,
            relief()?,
            &source.gds,
            LayoutFormat::Oasis,
            &mut staging,
        )?,
        #[cfg(feature = "hdf5")]
        Target::Hdf5 => hdf5::write_hdf5_target(system, relief()?, &mut staging)?,
        #[cfg(not(feature = "hdf5"))]
        Target::Hdf5 => unreachable!("check_available refused it"),
        Target::Slm => slm::write_slm_target(system, &source.slm, &mut staging)?,
    };
    let fabrication = fabrication.filter(|_| target.needs_fabrication());
    // Every layer's levels: the process's, or (slm) the ones it is shown with.
    let layer_levels: Vec<Option<u32>> = match fabrication {
        Some(f) => f.layers.iter().map(|r| r.level_count).collect(),
        None => system
            .layers
            .iter()
            .map(|l| source.slm.levels_of(l))
            .collect(),
    };
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        photonflow_version: env!("CARGO_PKG_VERSION").into(),
        target: target.name().into(),
        source_model: source.model.display().to_string(),
        source_sha256: source.sha256.clone(),
        wavelength_m: system.wavelength_m,
        pitch_m: system.pitch_m,
        nx: system.nx,
        ny: system.ny,
        medium_index: system.medium_index,
        levels: layer_levels.first().copied().flatten(),
        material: fabrication.map(|f| f.process.material.clone()),
        base_m: fabrication.map(|f| f.process.base_m),
        unwrapped: fabrication.is_some_and(|f| f.process.unwrap),
        full_wave_m: fabrication.map(|f| f.full_wave_m),
        layers: system
            .layers
            .iter()
            .enumerate()
            .map(|(index, l)| LayerEntry {
                index,
                name: l.name.clone(),
                distance_m: l.distance_m,
                levels: layer_levels[index],
            })
            .collect(),
        files: staging.files,
        target_settings: settings,
        simulation: source.simulation.clone(),
    };
    let path = dir.join(manifest::FILE_NAME);
    let json = serde_json::to_string_pretty(&manifest).expect("manifests serialise");
    photonflow_optics::io::write_atomic(&path, |w| std::io::Write::write_all(w, json.as_bytes()))
        .map_err(|e| CompileError::File {
        path: out.join(manifest::FILE_NAME),
        problem: format!("cannot write it: {e}"),
    })?;
    Ok(manifest)
}

/// `--out` may be absent, empty, or an earlier export.
fn check_out(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let bad = |problem: &str| CompileError::File {
        path: out.to_path_buf(),
        problem: problem.to_string(),
    };
    if !out.is_dir() {
        return Err(bad("is a file; --out must be a folder"));
    }
    let empty = std::fs::read_dir(out)
        .map_err(|e| bad(&format!("cannot list it: {e}")))?
        .next()
        .is_none();
    if empty || out.join(manifest::FILE_NAME).is_file() {
        Ok(())
    } else {
        Err(bad(
            "holds files that are not a photonflow export (no manifest.json); choose a new or \
             empty --out folder",
        ))
    }
}

fn staging_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Moves the complete staging folder to `out`, replacing an earlier export.
fn publish(staging: &Path, out: &Path) -> Result<()> {
    let err = |e: std::io::Error| CompileError::File {
        path: out.to_path_buf(),
        problem: format!("cannot move the finished export into place: {e}"),
    };
    if out.exists() {
        let old = out.with_file_name(format!(
            ".{}.old-{}",
            out.file_name()
                .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned()),
            std::process::id()
        ));
        std::fs::rename(out, &old).map_err(err)?;
        std::fs::rename(staging, out).map_err(err)?;
        std::fs::remove_dir_all(&old).ok();
    } else {
        std::fs::rename(staging, out).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_staged_files_name_the_file_in_the_output_folder() {
        let root = tempfile::tempdir().unwrap();
        let (dir, out) = (root.path().join(".fab.partial-1"), root.path().join("fab"));
        let mut staging = Staging {
            dir: dir.clone(),
            out: out.clone(),
            files: Vec::new(),
        };
        let e = staging
            .file("sub/mask.gds", None, "gds", |path| {
                assert_eq!(path, dir.join("sub/mask.gds"));
                Err(CompileError::file(path, "cannot write it: full"))
            })
            .unwrap_err();
        match e {
            CompileError::File { path, problem } => {
                assert_eq!(path, out.join("sub/mask.gds"));
                assert_eq!(problem, "cannot write it: full");
            }
            other => panic!("{other}"),
        }
        // Other errors, and files elsewhere, pass unchanged.
        let elsewhere = root.path().join("lut.csv");
        let e = staging.file("a.npy", None, "npy", |_| {
            Err(CompileError::file(&elsewhere, "bad"))
        });
        assert!(matches!(e, Err(CompileError::File { path, .. }) if path == elsewhere));
        assert!(staging.files.is_empty());
    }

    #[test]
    fn every_target_parses_by_its_name() {
        for t in Target::ALL {
            assert_eq!(t.name().parse::<Target>().unwrap(), t);
        }
        assert!(Target::Hdf5.needs_fabrication());
        let e = "h5".parse::<Target>().unwrap_err().to_string();
        assert!(e.contains("npy, height, stl, gds, oasis, hdf5, slm"), "{e}");
    }

    #[cfg(not(feature = "hdf5"))]
    #[test]
    fn without_the_feature_the_hdf5_target_says_how_to_get_it() {
        let system = OpticalSystem::new("t", 1e-6, 2, 2, 1e-6).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let source = Source {
            model: Path::new("model"),
            sha256: String::new(),
            simulation: None,
            gds: GdsSettings::default(),
            slm: SlmSettings::default(),
            stl_unit: StlUnit::default(),
        };
        let e = export(
            &system,
            None,
            Target::Hdf5,
            &dir.path().join("out"),
            &source,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--target: ")
                && e.contains("--features hdf5")
                && e.contains("libhdf5-dev")
                && e.contains("--target npy"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left"
        );
    }
}
