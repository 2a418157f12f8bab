//! The `stl` target: one watertight binary STL solid per layer, in millimetres, read back and
//! checked before the export is accepted.

use std::io::{BufReader, Write};
use std::path::Path;

use photonflow_optics::OpticalSystem;
use photonflow_optics::io::write_atomic;
use serde_json::json;

use super::Staging;
use super::stl::{Relief as Solid, read_stl, relief_mesh, write_stl};
use crate::error::{CompileError, Result};
use crate::fabricate::Fabrication;

/// STL coordinates are millimetres, what 3D-printing software expects.
const UNIT_M: f64 = 1e-3;

/// Writes `NAME.stl` for every layer: the relief on its base plate, centred on the optical axis
/// in x and y, z from 0 (the bottom of the base) up; then reads each file back and checks that
/// it is closed and holds the designed volume.
pub fn write_stl_target(
    system: &OpticalSystem,
    fabrication: &Fabrication,
    staging: &mut Staging,
) -> Result<serde_json::Value> {
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
        let mesh = relief_mesh(&solid).map_err(|e| CompileError::Design(e.to_string()))?;
        let designed_mm3 = (relief.heights_m.iter().sum::<f64>()
            + base * relief.heights_m.len() as f64)
            * pitch
            * pitch
            / UNIT_M.powi(3);
        let name = format!("{}.stl", relief.name);
        let mut stats = None;
        let mut check = None;
        staging.file(&name, Some(k), "stl", |path| {
            write_atomic(path, |w| {
                let s = write_stl(w, &mesh, UNIT_M).map_err(std::io::Error::other)?;
                stats = Some(s);
                w.flush()
            })
            .map_err(|e| file_error(path, format!("cannot write it: {e}")))?;
            check = Some(read_back(path, designed_mm3)?);
            Ok(())
        })?;
        let (stats, (edges, nonmanifold)) =
            (stats.expect("written above"), check.expect("checked above"));
        layers.push(json!({
            "layer": k,
            "file": name,
            "triangles": stats.triangles,
            "bytes": stats.bytes,
            "bbox_min_mm": stats.bbox_min,
            "bbox_max_mm": stats.bbox_max,
            "volume_mm3": designed_mm3,
            "edges": edges,
            "saddle_edges": nonmanifold,
        }));
    }
    Ok(json!({
        "unit": "mm",
        "frame": "x, y centred on the optical axis (x from −nx·pitch/2), row 0 at the most \
                  negative y; z = 0 at the bottom of the base plate, pixel tops at base + h; \
                  light travels along +z",
        "checked": "every file read back: closed (every edge used as often in each direction), \
                    no zero-area triangle, volume equal to the design's",
        "saddle_edges": "edges where two pixel columns touch only along a vertical line (both \
                         pixels of one diagonal higher than both of the other); they are shared \
                         by four triangles",
        "layers": layers,
    }))
}

/// Reads an STL back: closed, and of the designed volume (relative 1e-5, f32 coordinates).
/// Returns its edge count and saddle-edge count.
fn read_back(path: &Path, designed_mm3: f64) -> Result<(usize, usize)> {
    let file = std::fs::File::open(path)
        .map_err(|e| file_error(path, format!("cannot read it back: {e}")))?;
    let mesh = read_stl(&mut BufReader::new(file))
        .map_err(|e| file_error(path, format!("does not read back: {e}")))?;
    let report = mesh
        .check_watertight()
        .map_err(|e| file_error(path, format!("is not a closed solid: {e}")))?;
    let volume = mesh.volume();
    if (volume - designed_mm3).abs() > 1e-5 * designed_mm3 {
        return Err(file_error(
            path,
            format!("holds {volume} mm³ but the design has {designed_mm3} mm³"),
        ));
    }
    Ok((report.edges, report.nonmanifold_edges))
}

fn file_error(path: &Path, problem: String) -> CompileError {
    CompileError::File {
        path: path.to_path_buf(),
        problem,
    }
}
