//! Array targets: level maps and height maps as `.npy`, height maps as 16-bit PNG.

use std::path::Path;

use photonflow_optics::OpticalSystem;
use photonflow_optics::io::npy::{NpyDataRef, write_npy};
use photonflow_optics::io::write_atomic;
use serde_json::json;

use super::Staging;
use crate::error::{CompileError, Result};
use crate::fabricate::{Fabrication, Relief};

/// Full scale of the 16-bit height PNGs.
const PNG_MAX: f64 = 65_535.0;

/// How every array target lays out a layer's pixels (for the manifest's `target_settings`).
pub(super) const ARRAY_LAYOUT: &str = "[ny, nx] row-major, row 0 at the most negative y";
/// What a height value means.
pub(super) const HEIGHT_UNIT: &str = "m, above the base plate";
/// What a level value means.
pub(super) const LEVEL_MEANING: &str = "level k has height k·full_wave_m/L";

fn npy(path: &Path, shape: &[usize], data: NpyDataRef) -> Result<()> {
    write_npy(path, shape, data).map_err(|e| CompileError::file(path, e.to_string()))
}

fn write_levels(staging: &mut Staging, shape: [usize; 2], k: usize, r: &Relief) -> Result<()> {
    let Some(levels) = &r.levels else {
        return Ok(());
    };
    let name = format!("{}_levels.npy", r.name);
    staging.file(&name, Some(k), "levels", |p| {
        if r.level_count.is_some_and(|l| l <= 256) {
            let bytes: Vec<u8> = levels.iter().map(|&v| v as u8).collect();
            npy(p, &shape, NpyDataRef::U8(&bytes))
        } else {
            npy(p, &shape, NpyDataRef::U16(levels))
        }
    })
}

fn write_height(staging: &mut Staging, shape: [usize; 2], k: usize, r: &Relief) -> Result<()> {
    let name = format!("{}_height.npy", r.name);
    staging.file(&name, Some(k), "height", |p| {
        npy(p, &shape, NpyDataRef::F64(&r.heights_m))
    })
}

/// `npy`: per layer the level map (quantised layers) and the height map in metres; for a
/// hybrid network also its electronic layer, for the computer that reads the detector:
/// `head_weights.npy` `[C, R]` and `head_bias.npy` `[C]` (f64).
pub fn write_npy_target(
    system: &OpticalSystem,
    fabrication: &Fabrication,
    staging: &mut Staging,
) -> Result<serde_json::Value> {
    let shape = [system.ny, system.nx];
    for (k, r) in fabrication.layers.iter().enumerate() {
        write_levels(staging, shape, k, r)?;
        write_height(staging, shape, k, r)?;
    }
    let mut settings = json!({
        "arrays": ARRAY_LAYOUT,
        "height_unit": HEIGHT_UNIT,
        "levels": LEVEL_MEANING,
    });
    if let Some(head) = &system.detector.head {
        let (c, r) = (head.bias.len(), system.detector.regions.len());
        staging.file("head_weights.npy", None, "head-weights", |p| {
            npy(p, &[c, r], NpyDataRef::F64(&head.weights))
        })?;
        staging.file("head_bias.npy", None, "head-bias", |p| {
            npy(p, &[c], NpyDataRef::F64(&head.bias))
        })?;
        settings["head"] = json!(
            "class scores W x + b, W = head_weights [C, R], b = head_bias [C], x_r = R·E_r/ΣE \
             of the energies of system.json's detector regions in their order"
        );
    }
    Ok(settings)
}

/// `height`: per layer the height map in metres (`.npy`) and as a 16-bit grayscale PNG whose
/// full scale is one 2π of relief.
pub fn write_height_target(
    system: &OpticalSystem,
    fabrication: &Fabrication,
    staging: &mut Staging,
) -> Result<serde_json::Value> {
    let shape = [system.ny, system.nx];
    let full = fabrication.full_wave_m;
    for (k, r) in fabrication.layers.iter().enumerate() {
        write_height(staging, shape, k, r)?;
        let name = format!("{}_height.png", r.name);
        staging.file(&name, Some(k), "height-png", |p| {
            write_png16(p, system.nx, system.ny, &r.heights_m, full)
        })?;
    }
    Ok(json!({
        "png": "16-bit grayscale; gray g means a relief of g/65535·full_wave_m above the base; \
                image row 0 is the most positive y (the layer seen from the input side, y up)",
        "png_full_scale_m": full,
        "height_unit": HEIGHT_UNIT,
    }))
}

/// Writes heights (metres, row 0 at the most negative y) as a 16-bit grayscale PNG with
/// `full_scale` metres at gray 65 535, rows flipped so the image shows y upwards.
fn write_png16(path: &Path, nx: usize, ny: usize, heights: &[f64], full_scale: f64) -> Result<()> {
    let mut bytes = Vec::with_capacity(nx * ny * 2);
    for row in heights.chunks_exact(nx).rev() {
        for &h in row {
            let g = (h / full_scale * PNG_MAX).round().clamp(0.0, PNG_MAX) as u16;
            bytes.extend_from_slice(&g.to_be_bytes());
        }
    }
    write_atomic(path, |w| {
        let mut e = png::Encoder::new(w, nx as u32, ny as u32);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Sixteen);
        e.write_header()
            .and_then(|mut writer| writer.write_image_data(&bytes))
            .map_err(std::io::Error::other)
    })
    .map_err(|e| CompileError::file(path, format!("cannot write it: {e}")))
}
