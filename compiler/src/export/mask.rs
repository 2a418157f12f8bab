//! The `gds` and `oasis` targets: the level maps of every layer as a GDSII library or an OASIS
//! file for multilevel lithography, read back and rasterised to prove it holds exactly the
//! designed pixels.

use std::io::Write;
use std::path::Path;

use photonflow_optics::OpticalSystem;
use photonflow_optics::io::write_atomic;
use serde_json::json;

use super::Staging;
use super::gds::{
    GdsMode, GdsOptions, LayoutFormat, LevelMap, marks_problem, rasterise, read_gds, write_gds,
};
use crate::error::{CompileError, Result};
use crate::fabricate::Fabrication;

/// Mask settings chosen on the command line (the `gds` and `oasis` targets).
#[derive(Debug, Clone, PartialEq)]
pub struct GdsSettings {
    /// One GDS layer per level, or one per binary etch step.
    pub mode: GdsMode,
    /// GDS layer of the alignment marks, if any.
    pub alignment_marks: Option<u16>,
}

impl Default for GdsSettings {
    fn default() -> Self {
        Self {
            mode: GdsMode::Levels,
            alignment_marks: None,
        }
    }
}

/// Writes `mask.gds` or `mask.oas` (`format`): one cell per optical layer named after it
/// (database unit 1 nm, user unit 1 µm in GDSII), then reads it back and rasterises every cell
/// to the level map it must hold.
pub fn write_mask_target(
    system: &OpticalSystem,
    fabrication: &Fabrication,
    settings: &GdsSettings,
    format: LayoutFormat,
    staging: &mut Staging,
) -> Result<serde_json::Value> {
    let mut maps = Vec::new();
    for r in &fabrication.layers {
        let (Some(levels), Some(count)) = (&r.levels, r.level_count) else {
            return Err(CompileError::Option {
                option: "--levels",
                problem: format!(
                    "layer '{}' is a continuous relief; a lithography mask needs levels — give \
                     --levels L (e.g. 8)",
                    r.name
                ),
            });
        };
        let count = u16::try_from(count).map_err(|_| CompileError::Option {
            option: "--levels",
            problem: format!("{count} levels; a mask library holds at most 32 768"),
        })?;
        maps.push(LevelMap {
            name: &r.name,
            nx: system.nx,
            ny: system.ny,
            dx: system.pitch_m,
            dy: system.pitch_m,
            levels,
            count,
        });
    }
    if let Some(problem) = marks_problem(settings.alignment_marks, &maps, settings.mode) {
        return Err(CompileError::Option {
            option: "--marks",
            problem,
        });
    }
    let options = GdsOptions {
        library: "PHOTONFLOW".into(),
        mode: settings.mode,
        alignment_marks: settings.alignment_marks,
        format,
        ..GdsOptions::default()
    };
    let name = format!("mask.{}", format.extension());
    let kind = match format {
        LayoutFormat::Gds => "gds",
        LayoutFormat::Oasis => "oasis",
    };
    let mut stats = None;
    staging.file(&name, None, kind, |path| {
        write_atomic(path, |w| {
            stats = Some(write_gds(w, &maps, &options).map_err(std::io::Error::other)?);
            w.flush()
        })
        .map_err(|e| CompileError::file(path, format!("cannot write it: {e}")))?;
        read_back(path, &maps, settings)
    })?;
    let stats = stats.expect("written above");
    Ok(json!({
        "format": match format {
            LayoutFormat::Gds => "GDSII stream",
            LayoutFormat::Oasis => "OASIS (SEMI P39) 1.0: RECTANGLE records, relative \
                                    positions, each cell DEFLATE-compressed in CBLOCKs, \
                                    CRC-32 signature",
        },
        "database_unit_m": options.db_unit_m,
        "user_unit_m": (format == LayoutFormat::Gds).then_some(options.user_unit_m),
        "cells": "one per optical layer, named after it",
        "layers": match settings.mode {
            GdsMode::Levels => "level k (1 … L−1) on GDS layer k, datatype 0; level 0 empty",
            GdsMode::BinaryMasks => "etch step b (depth 2^b levels) on GDS layer b+1, \
                                     datatype 0: the pixels whose level has bit b set",
        },
        "placement": "pixel (r, c) covers x ∈ [c·p, (c+1)·p), y ∈ [r·p, (r+1)·p) shifted so the \
                      mask is centred on the origin (lower-left corner at −floor(n·p/2) database \
                      units); row 0 is the most negative y",
        "polygons": "pixels of a level merged into rectangles",
        "alignment_marks_layer": settings.alignment_marks,
        "polygon_count": stats.polygons,
        "polygons_per_layer": stats.polygons_per_layer,
        "checked": "read back and every cell rasterised to the designed level map, pixel by pixel",
    }))
}

fn read_back(path: &Path, maps: &[LevelMap], settings: &GdsSettings) -> Result<()> {
    let bytes = std::fs::read(path)
        .map_err(|e| CompileError::file(path, format!("cannot read it back: {e}")))?;
    let layout = read_gds(&bytes)
        .map_err(|e| CompileError::file(path, format!("does not read back: {e}")))?;
    for map in maps {
        let mut cell = layout
            .cells
            .iter()
            .find(|c| c.name == map.name)
            .cloned()
            .ok_or_else(|| {
                CompileError::file(path, format!("lacks the cell of layer '{}'", map.name))
            })?;
        if let Some(marks) = settings.alignment_marks {
            cell.polygons.retain(|p| p.layer != marks);
        }
        let back = rasterise(
            &cell,
            &layout,
            map.nx,
            map.ny,
            map.dx,
            map.dy,
            settings.mode,
        )
        .map_err(|e| CompileError::file(path, format!("does not rasterise back: {e}")))?;
        if back != map.levels {
            let i = back
                .iter()
                .zip(map.levels)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(CompileError::file(
                path,
                format!(
                    "cell '{}' differs from the design at pixel (row {}, col {})",
                    map.name,
                    i / map.nx,
                    i % map.nx
                ),
            ));
        }
    }
    Ok(())
}
