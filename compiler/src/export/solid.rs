//! The `stl` target: one watertight binary STL solid per layer, in millimetres, read back and
//! checked before the export is accepted.

use std::io::{BufReader, Write};
use std::path::Path;

use photonflow_optics::OpticalSystem;
use photonflow_optics::io::write_atomic;
use serde_json::json;

use super::Staging;
use super::stl::{EdgeReport, Relief as Solid, read_stl, relief_mesh, write_stl};
use crate::error::{CompileError, Result};
use crate::fabricate::Fabrication;

/// The length unit of STL coordinates (STL files carry none: the reader must be told).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StlUnit {
    /// Micrometres.
    Um,
    /// Millimetres, what 3D-printing software assumes (the default).
    #[default]
    Mm,
    /// Centimetres.
    Cm,
    /// Metres.
    M,
    /// Inches (25.4 mm).
    In,
}

impl StlUnit {
    /// Every unit, by name.
    pub const ALL: [StlUnit; 5] = [Self::Um, Self::Mm, Self::Cm, Self::M, Self::In];

    /// The name on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Self::Um => "um",
            Self::Mm => "mm",
            Self::Cm => "cm",
            Self::M => "m",
            Self::In => "in",
        }
    }

    /// One unit in metres.
    pub fn metres(self) -> f64 {
        match self {
            Self::Um => 1e-6,
            Self::Mm => 1e-3,
            Self::Cm => 1e-2,
            Self::M => 1.0,
            Self::In => 25.4e-3,
        }
    }
}

impl std::str::FromStr for StlUnit {
    type Err = CompileError;

    fn from_str(s: &str) -> Result<Self> {
        let s = if s == "µm" { "um" } else { s };
        Self::ALL
            .into_iter()
            .find(|u| u.name() == s)
            .ok_or_else(|| CompileError::Option {
                option: "--stl-unit",
                problem: format!("'{s}'; use one of {}", Self::ALL.map(Self::name).join(", ")),
            })
    }
}

/// Writes `NAME.stl` for every layer in `unit`: the relief on its base plate, centred on the
/// optical axis in x and y, z from 0 (the bottom of the base) up; then reads each file back and
/// checks that it is closed and holds the designed volume.
pub fn write_stl_target(
    system: &OpticalSystem,
    fabrication: &Fabrication,
    unit: StlUnit,
    staging: &mut Staging,
) -> Result<serde_json::Value> {
    let unit_m = unit.metres();
    let base = fabrication.process.base_m;
    if base == 0.0
        && fabrication
            .layers
            .iter()
            .any(|l| l.heights_m.contains(&0.0))
    {
        return Err(CompileError::Option {
            option: "--base",
            problem: "the STL target needs a base plate (e.g. --base 0.5mm): pixels of level 0 \
                      have no material, and a solid cannot have zero thickness there"
                .into(),
        });
    }
    let pitch = system.pitch_m;
    let mut layers = Vec::new();
    for (k, relief) in fabrication.layers.iter().enumerate() {
        let solid = Solid {
            nx: system.nx,
            ny: system.ny,
            dx: pitch,
            dy: pitch,
            heights: &relief.heights_m,
            base,
        };
        let (mesh, bridges) =
            relief_mesh(&solid).map_err(|e| CompileError::Design(e.to_string()))?;
        let designed = ((relief.heights_m.iter().sum::<f64>()
            + base * relief.heights_m.len() as f64)
            * pitch
            * pitch
            + bridges.volume)
            / unit_m.powi(3);
        let name = format!("{}.stl", relief.name);
        let mut stats = None;
        let mut check = None;
        staging.file(&name, Some(k), "stl", |path| {
            write_atomic(path, |w| {
                let s = write_stl(w, &mesh, unit_m).map_err(std::io::Error::other)?;
                stats = Some(s);
                w.flush()
            })
            .map_err(|e| CompileError::file(path, format!("cannot write it: {e}")))?;
            check = Some(read_back(path, designed, unit)?);
            Ok(())
        })?;
        let (stats, report) = (stats.expect("written above"), check.expect("checked above"));
        layers.push(json!({
            "layer": k,
            "file": name,
            "triangles": stats.triangles,
            "bytes": stats.bytes,
            "bbox_min": stats.bbox_min,
            "bbox_max": stats.bbox_max,
            "volume": designed,
            "edges": report.edges,
            "vertices": report.vertices,
            "saddle_bridges": bridges.count,
            "bridge_leg_m": bridges.leg,
            "bridge_volume": bridges.volume / unit_m.powi(3),
        }));
    }
    Ok(json!({
        "unit": unit.name(),
        "unit_m": unit_m,
        "frame": "x, y centred on the optical axis (x from −nx·pitch/2), row 0 at the most \
                  negative y; z = 0 at the bottom of the base plate, pixel tops at base + h; \
                  light travels along +z",
        "checked": "every file read back: a closed, oriented 2-manifold (every edge in exactly \
                    two triangles, once each way; one fan of triangles around every vertex), no \
                    zero-area triangle, volume equal to the design's (with its bridges)",
        "saddle_bridges": "where two pixel columns would touch only along a vertical line (both \
                           pixels of one diagonal higher than both of the other), a right \
                           triangle of material with legs bridge_leg_m in the corner of the \
                           higher low pixel joins them, from that pixel's top up to the lower \
                           high top; bridge_volume is what they add, in unit³",
        "layers": layers,
    }))
}

/// Reads an STL back: closed, and of the designed volume (in `unit`³; relative 1e-5, f32
/// coordinates). Returns its edge and vertex counts.
fn read_back(path: &Path, designed: f64, unit: StlUnit) -> Result<EdgeReport> {
    let file = std::fs::File::open(path)
        .map_err(|e| CompileError::file(path, format!("cannot read it back: {e}")))?;
    let mesh = read_stl(&mut BufReader::new(file))
        .map_err(|e| CompileError::file(path, format!("does not read back: {e}")))?;
    let report = mesh
        .check_watertight()
        .map_err(|e| CompileError::file(path, format!("is not a closed 2-manifold solid: {e}")))?;
    let volume = mesh.volume();
    if (volume - designed).abs() > 1e-5 * designed {
        let u = unit.name();
        return Err(CompileError::file(
            path,
            format!("holds {volume} {u}³ but the design has {designed} {u}³"),
        ));
    }
    Ok(report)
}
