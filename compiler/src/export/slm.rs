//! The `slm` target: every phase layer as a bitmap for a phase-only spatial light modulator.
//!
//! **Phase to gray.** Without a lookup table the SLM is taken as linear: gray `g` shows the
//! phase `2π·g/G`, where `G` is the gray level of one full 2π (`--two-pi-gray`, default
//! `2^bits`: every gray level is a distinct phase in `[0, 2π)`), so a phase `φ` becomes
//! `g = round(φ/2π·G) mod G`. With a measured lookup table (CSV `gray,phase[,amplitude]`,
//! [`Lut`]) every pixel takes the table's gray level whose phase is nearest to `φ` modulo 2π.
//! The table must be monotone (its phase only rises, or only falls, with the row) and must
//! cover 2π: its span plus its largest step between rows must reach 2π, so that the gap it
//! leaves around the circle is no wider than its coarsest step. Its gray levels must fit in
//! `bits`.
//!
//! **Sampling.** With `--slm WIDTHxHEIGHT@PITCH` the design is centred on the panel and
//! resampled to the panel's pixels: `nearest` takes for every SLM pixel the design pixel that
//! holds its centre (exact pixel replication when the design pitch is a whole multiple of the
//! SLM's); `bilinear` interpolates the complex transmission `exp(iφ)` between the four nearest
//! design pixels and takes its phase (interpolating the wrapped phase itself would smear every
//! 2π wrap). SLM pixels outside the design show phase 0. A panel smaller than the design is
//! refused. Without `--slm` the bitmap has the design's own pixels.
//!
//! **Files.** `NAME_slm.png`: 8-bit gray for 8 bits, else 16-bit gray holding the gray level
//! itself (`0 … 2^bits − 1`, not scaled to 16 bits); or `NAME_slm.bmp` (8-bit gray palette,
//! 8 bits only). Image row 0 is the most positive y (the panel seen from the side the light
//! comes from, y up), as in the height PNGs. Every file is read back, its gray levels compared
//! with the ones computed, and the phase they show compared with the design: the largest error
//! must stay within the map's bound (half a gray step, or half the table's widest gap).

use std::f64::consts::TAU;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use photonflow_optics::OpticalSystem;
use photonflow_optics::io::write_atomic;
use photonflow_optics::lut::{GrayMap, Lut};
use photonflow_optics::memory;
use photonflow_optics::system::Modulation;
use photonflow_optics::units::{format_length, parse_array};
use serde_json::json;

use super::{Staging, bmp};
use crate::error::{CompileError, Result};
use crate::fabricate::phase_turns;

/// An SLM panel: pixels and pitch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlmPanel {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Pixel pitch, metres (square pixels).
    pub pitch_m: f64,
}

impl FromStr for SlmPanel {
    type Err = CompileError;

    /// Parses `WIDTHxHEIGHT@PITCH`, e.g. `1920x1080@8um` ([`parse_array`]).
    fn from_str(s: &str) -> Result<Self> {
        let (width, height, pitch_m) = parse_array(s).map_err(|e| CompileError::Option {
            option: "--slm",
            problem: e.to_string(),
        })?;
        Ok(Self {
            width,
            height,
            pitch_m,
        })
    }
}

impl fmt::Display for SlmPanel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}@{}",
            self.width,
            self.height,
            format_length(self.pitch_m)
        )
    }
}

/// How the design is resampled onto the panel's pixels (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resample {
    /// The design pixel that holds the SLM pixel's centre.
    #[default]
    Nearest,
    /// Bilinear interpolation of `exp(iφ)`.
    Bilinear,
}

impl FromStr for Resample {
    type Err = CompileError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nearest" => Ok(Self::Nearest),
            "bilinear" => Ok(Self::Bilinear),
            _ => Err(CompileError::Option {
                option: "--resample",
                problem: format!("'{s}'; use nearest or bilinear"),
            }),
        }
    }
}

impl Resample {
    fn name(self) -> &'static str {
        match self {
            Self::Nearest => "nearest",
            Self::Bilinear => "bilinear",
        }
    }
}

/// The bitmap file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitmapFormat {
    /// PNG, 8- or 16-bit gray.
    #[default]
    Png,
    /// BMP, 8-bit gray palette.
    Bmp,
}

impl FromStr for BitmapFormat {
    type Err = CompileError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "png" => Ok(Self::Png),
            "bmp" => Ok(Self::Bmp),
            _ => Err(CompileError::Option {
                option: "--slm-format",
                problem: format!("'{s}'; use png or bmp"),
            }),
        }
    }
}

/// Settings of the `slm` target.
#[derive(Debug, Clone, PartialEq)]
pub struct SlmSettings {
    /// The panel; `None` writes the design's own pixels.
    pub panel: Option<SlmPanel>,
    /// Bits per gray level: 8, 10, 12 or 16.
    pub bits: u32,
    /// Gray level of one full 2π for a linear SLM (`None`: `2^bits`); not with a table.
    pub two_pi_gray: Option<u32>,
    /// A measured lookup table, and the file it came from (for the manifest).
    pub lut: Option<(Lut, String)>,
    /// Resampling onto the panel.
    pub resample: Resample,
    /// File format.
    pub format: BitmapFormat,
    /// Quantise the design's phase to this many levels first (`None`: the levels each layer
    /// was trained with, if any).
    pub levels: Option<u32>,
}

impl SlmSettings {
    /// The levels `layer` is quantised to before it becomes gray levels: `levels`, else the
    /// levels it was trained with.
    pub fn levels_of(&self, layer: &photonflow_optics::system::Layer) -> Option<u32> {
        self.levels.or(layer.levels)
    }
}

impl Default for SlmSettings {
    fn default() -> Self {
        Self {
            panel: None,
            bits: 8,
            two_pi_gray: None,
            lut: None,
            resample: Resample::Nearest,
            format: BitmapFormat::Png,
            levels: None,
        }
    }
}

/// Checks `settings` and builds its phase ↔ gray map ([`GrayMap`]).
pub fn gray_map(settings: &SlmSettings) -> Result<GrayMap> {
    let bits = settings.bits;
    if ![8, 10, 12, 16].contains(&bits) {
        return Err(option("--bits", format!("{bits}; use 8, 10, 12 or 16")));
    }
    if settings.format == BitmapFormat::Bmp && bits != 8 {
        return Err(option(
            "--slm-format",
            format!("bmp holds 8-bit gray only; use png for {bits} bits"),
        ));
    }
    let full = 1u32 << bits;
    match &settings.lut {
        None => {
            let two_pi = settings.two_pi_gray.unwrap_or(full);
            if !(2..=full).contains(&two_pi) {
                return Err(option(
                    "--two-pi-gray",
                    format!("{two_pi}; give a gray level 2 … {full} for {bits} bits"),
                ));
            }
            Ok(GrayMap::linear(two_pi))
        }
        Some((lut, name)) => {
            if settings.two_pi_gray.is_some() {
                return Err(option(
                    "--two-pi-gray",
                    "a lookup table already says which gray shows which phase; give \
                     --lut or --two-pi-gray, not both"
                        .into(),
                ));
            }
            GrayMap::table(lut, bits).map_err(|p| option("--lut", format!("{name}: {p}")))
        }
    }
}

fn option(option: &'static str, problem: String) -> CompileError {
    CompileError::Option { option, problem }
}

/// The panel a design is shown on: the given one, or the design's own pixels.
fn panel_of(system: &OpticalSystem, settings: &SlmSettings) -> Result<SlmPanel> {
    let Some(panel) = settings.panel else {
        return Ok(SlmPanel {
            width: system.nx,
            height: system.ny,
            pitch_m: system.pitch_m,
        });
    };
    let (dw, dh) = (
        system.nx as f64 * system.pitch_m,
        system.ny as f64 * system.pitch_m,
    );
    let (sw, sh) = (
        panel.width as f64 * panel.pitch_m,
        panel.height as f64 * panel.pitch_m,
    );
    let tol = 1e-9 * panel.pitch_m;
    if dw > sw + tol || dh > sh + tol {
        return Err(option(
            "--slm",
            format!(
                "the panel {panel} is {} × {}, smaller than the design ({}×{} pixels of {} = \
                 {} × {}); use a larger SLM, or a design with fewer or smaller pixels",
                format_length(sw),
                format_length(sh),
                system.nx,
                system.ny,
                format_length(system.pitch_m),
                format_length(dw),
                format_length(dh)
            ),
        ));
    }
    Ok(panel)
}

/// The design's phase (radians, `[ny, nx]`, row 0 at the most negative y) on the panel's
/// pixels (same row order), and whether each panel pixel lies on the design.
fn resample(
    phase: &[f64],
    nx: usize,
    ny: usize,
    pitch: f64,
    panel: &SlmPanel,
    method: Resample,
) -> (Vec<f64>, Vec<bool>) {
    let (w, h) = (panel.width, panel.height);
    let mut out = vec![0.0; w * h];
    let mut inside = vec![false; w * h];
    // Panel pixel centre → design coordinate in pixels, 0 at the design's lower-left edge.
    let coord = |i: usize, n_panel: usize, n_design: usize| {
        (i as f64 + 0.5 - n_panel as f64 / 2.0) * panel.pitch_m / pitch + n_design as f64 / 2.0
    };
    // exp(iφ) of every design pixel, for bilinear interpolation only.
    let (cos, sin): (Vec<f64>, Vec<f64>) = match method {
        Resample::Nearest => (Vec::new(), Vec::new()),
        Resample::Bilinear => phase.iter().map(|p| (p.cos(), p.sin())).unzip(),
    };
    for r in 0..h {
        let v = coord(r, h, ny);
        if !(0.0..ny as f64).contains(&v) {
            continue;
        }
        for c in 0..w {
            let u = coord(c, w, nx);
            if !(0.0..nx as f64).contains(&u) {
                continue;
            }
            let k = r * w + c;
            inside[k] = true;
            out[k] = match method {
                Resample::Nearest => phase[v as usize * nx + u as usize],
                Resample::Bilinear => {
                    // Centres of design pixels at integer + 0.5; clamp at the edges.
                    let (x, y) = (
                        (u - 0.5).clamp(0.0, (nx - 1) as f64),
                        (v - 0.5).clamp(0.0, (ny - 1) as f64),
                    );
                    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
                    let (x1, y1) = ((x0 + 1).min(nx - 1), (y0 + 1).min(ny - 1));
                    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
                    let at = |yy: usize, xx: usize| yy * nx + xx;
                    let weights = [
                        (at(y0, x0), (1.0 - fx) * (1.0 - fy)),
                        (at(y0, x1), fx * (1.0 - fy)),
                        (at(y1, x0), (1.0 - fx) * fy),
                        (at(y1, x1), fx * fy),
                    ];
                    let (re, im) = weights.iter().fold((0.0, 0.0), |(re, im), &(i, wgt)| {
                        (re + wgt * cos[i], im + wgt * sin[i])
                    });
                    im.atan2(re)
                }
            };
        }
    }
    (out, inside)
}

/// Writes the bitmap `gray` (`[height, width]`, row 0 at the most negative y) flipped so that
/// image row 0 is the most positive y.
fn write_bitmap(path: &Path, panel: &SlmPanel, gray: &[u16], settings: &SlmSettings) -> Result<()> {
    let (w, h) = (panel.width, panel.height);
    let top_down = || gray.chunks_exact(w).rev().flatten().copied();
    write_atomic(path, |out| {
        match settings.format {
            BitmapFormat::Bmp => {
                let bytes: Vec<u8> = top_down().map(|g| g as u8).collect();
                bmp::write_gray8(out, w, h, &bytes)?;
            }
            BitmapFormat::Png => {
                let mut e = png::Encoder::new(&mut *out, w as u32, h as u32);
                e.set_color(png::ColorType::Grayscale);
                let bytes: Vec<u8> = if settings.bits == 8 {
                    e.set_depth(png::BitDepth::Eight);
                    top_down().map(|g| g as u8).collect()
                } else {
                    e.set_depth(png::BitDepth::Sixteen);
                    top_down().flat_map(u16::to_be_bytes).collect()
                };
                e.write_header()
                    .and_then(|mut writer| writer.write_image_data(&bytes))
                    .map_err(std::io::Error::other)?;
            }
        }
        out.flush()
    })
    .map_err(|e| CompileError::file(path, format!("cannot write it: {e}")))
}

/// Reads a bitmap back: `(width, height, gray)` with row 0 at the top of the image.
pub fn read_bitmap(path: &Path) -> Result<(usize, usize, Vec<u16>)> {
    let bytes = std::fs::read(path)
        .map_err(|e| CompileError::file(path, format!("cannot read it: {e}")))?;
    if bytes.starts_with(b"BM") {
        let (w, h, g) = bmp::read_gray8(&bytes).map_err(|e| CompileError::file(path, e))?;
        return Ok((w, h, g.into_iter().map(u16::from).collect()));
    }
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder
        .read_info()
        .map_err(|e| CompileError::file(path, format!("is not a readable PNG: {e}")))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| CompileError::file(path, format!("is not a readable PNG: {e}")))?;
    if info.color_type != png::ColorType::Grayscale {
        return Err(CompileError::file(
            path,
            format!("is {:?}, not a gray image", info.color_type),
        ));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let gray = match info.bit_depth {
        png::BitDepth::Eight => buf[..w * h].iter().map(|&g| u16::from(g)).collect(),
        png::BitDepth::Sixteen => buf[..2 * w * h]
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect(),
        d => {
            return Err(CompileError::file(
                path,
                format!("has {d:?} bits per pixel"),
            ));
        }
    };
    Ok((w, h, gray))
}

/// Reads a bitmap of a whole `panel` as [`write_panel`] writes it: its gray levels with row 0
/// at the most negative y. Errors: unreadable files and bitmaps of another size.
pub fn read_panel(path: &Path, panel: &SlmPanel) -> Result<Vec<u16>> {
    let (w, h, gray) = read_bitmap(path)?;
    if (w, h) != (panel.width, panel.height) {
        return Err(CompileError::file(
            path,
            format!(
                "the bitmap is {w}×{h}, but the panel is {}×{}",
                panel.width, panel.height
            ),
        ));
    }
    // Image row 0 is the top (most positive y).
    Ok(gray.chunks_exact(w).rev().flatten().copied().collect())
}

/// Writes `NAME_slm.png` (or `.bmp`) for every layer (see the module docs), reads each back and
/// checks it.
pub fn write_slm_target(
    system: &OpticalSystem,
    settings: &SlmSettings,
    staging: &mut Staging,
) -> Result<serde_json::Value> {
    let map = gray_map(settings)?;
    let panel = panel_of(system, settings)?;
    // Per panel pixel, for one layer at a time: its phase (f64), whether the design covers it,
    // its gray level, the bitmap's bytes and their read-back — about 16 bytes.
    memory::check_fits(
        memory::bytes(&[panel.width, panel.height, 16]),
        || format!("writing {}×{} SLM bitmaps", panel.width, panel.height),
        "give a smaller panel (--slm WIDTHxHEIGHT@PITCH)",
    )?;
    let ext = match settings.format {
        BitmapFormat::Png => "png",
        BitmapFormat::Bmp => "bmp",
    };
    let fill = map.gray(0.0);
    let mut layers = Vec::new();
    for (k, layer) in system.layers.iter().enumerate() {
        let (turns, _) = phase_turns(layer, settings.levels_of(layer))?;
        let phase: Vec<f64> = turns.iter().map(|t| t * TAU).collect();
        let (target, inside) = resample(
            &phase,
            system.nx,
            system.ny,
            system.pitch_m,
            &panel,
            settings.resample,
        );
        let gray: Vec<u16> = target
            .iter()
            .zip(&inside)
            .map(|(&p, &i)| if i { map.gray(p) } else { fill })
            .collect();
        let name = format!("{}_slm.{ext}", layer.name);
        let mut errors = (0.0f64, 0.0f64, 0usize);
        staging.file(&name, Some(k), "bitmap", |path| {
            write_bitmap(path, &panel, &gray, settings)?;
            errors = read_back(path, &panel, &gray, &target, &inside, &map)?;
            Ok(())
        })?;
        let (max, sum_sq, n) = errors;
        layers.push(json!({
            "layer": k,
            "file": name,
            "design_pixels": n,
            "max_phase_error_rad": max,
            "rms_phase_error_rad": (sum_sq / n.max(1) as f64).sqrt(),
        }));
    }
    Ok(json!({
        "panel": { "width": panel.width, "height": panel.height, "pitch_m": panel.pitch_m },
        "bits": settings.bits,
        "format": ext,
        "mapping": match &settings.lut {
            Some((lut, file)) => json!({
                "kind": "lookup-table",
                "file": file,
                "rows": lut.len(),
                "rule": "the table's gray level whose phase is nearest modulo 2π",
            }),
            None => json!({
                "kind": "linear",
                "two_pi_gray": settings.two_pi_gray.unwrap_or(1 << settings.bits),
                "rule": "gray = round(φ/2π · two_pi_gray) mod two_pi_gray",
            }),
        },
        "phase_error_bound_rad": map.bound(),
        "resample": settings.resample.name(),
        "fill": "panel pixels outside the design show phase 0",
        "orientation": "image row 0 is the most positive y; the design is centred on the panel",
        "png_16_bit": "values are the gray levels themselves (0 … 2^bits − 1), not scaled",
        "checked": "read back: every gray level as computed, and the phase it shows within the \
                    bound of the design's",
        "layers": layers,
    }))
}

/// Writes the gray levels `gray` of a whole panel (`[height, width]`, row 0 at the most
/// negative y) to `path` in `settings`' format and bits, reads the file back and checks every
/// gray level, and the phase it shows against `phase` (radians, one per pixel) within the map's
/// bound; returns the largest and the RMS phase error, radians. For patterns computed on the
/// panel's own pixels, such as holograms.
pub fn write_panel(
    path: &Path,
    panel: &SlmPanel,
    gray: &[u16],
    phase: &[f64],
    settings: &SlmSettings,
) -> Result<(f64, f64)> {
    let map = gray_map(settings)?;
    let n = panel.width * panel.height;
    if gray.len() != n || phase.len() != n {
        return Err(CompileError::file(
            path,
            format!(
                "{} gray levels and {} phases for a {}×{} panel",
                gray.len(),
                phase.len(),
                panel.width,
                panel.height
            ),
        ));
    }
    write_bitmap(path, panel, gray, settings)?;
    let (max, sum_sq, pixels) = read_back(path, panel, gray, phase, &vec![true; n], &map)?;
    Ok((max, (sum_sq / pixels.max(1) as f64).sqrt()))
}

/// Reads the bitmap back and checks it; returns `(max error, Σ error², pixels)` over the
/// design's pixels.
fn read_back(
    path: &Path,
    panel: &SlmPanel,
    gray: &[u16],
    target: &[f64],
    inside: &[bool],
    map: &GrayMap,
) -> Result<(f64, f64, usize)> {
    let (w, h, back) = read_bitmap(path)?;
    if (w, h) != (panel.width, panel.height) {
        return Err(CompileError::file(
            path,
            format!(
                "reads back as {w}×{h}, not {}×{}",
                panel.width, panel.height
            ),
        ));
    }
    let (mut max, mut sum_sq, mut n) = (0.0f64, 0.0, 0);
    for (r, row) in back.chunks_exact(w).enumerate() {
        let stored = h - 1 - r;
        for (c, &g) in row.iter().enumerate() {
            let k = stored * w + c;
            if g != gray[k] {
                return Err(CompileError::file(
                    path,
                    format!(
                        "pixel (row {r}, col {c}) reads back as {g}, not {}",
                        gray[k]
                    ),
                ));
            }
            if !inside[k] {
                continue;
            }
            let (shown, _) = map.shows(g).ok_or_else(|| {
                CompileError::file(path, format!("gray level {g} is not one the SLM can show"))
            })?;
            let d = (shown - target[k]).rem_euclid(TAU);
            let e = d.min(TAU - d);
            if e > map.bound() + 1e-9 {
                return Err(CompileError::file(
                    path,
                    format!(
                        "pixel (row {r}, col {c}) shows {shown:.4} rad for a design phase of \
                         {:.4} rad, beyond the map's bound of {:.4} rad",
                        target[k],
                        map.bound()
                    ),
                ));
            }
            max = max.max(e);
            sum_sq += e * e;
            n += 1;
        }
    }
    Ok((max, sum_sq, n))
}

/// `system` as the SLM shows it, on the design's own pixels: every layer's phase through the
/// gray map (quantised to `settings.levels` first, as [`write_slm_target`] does), with the
/// table's amplitude where it has one — what `--simulate` evaluates for the `slm` target.
pub fn displayed(system: &OpticalSystem, settings: &SlmSettings) -> Result<OpticalSystem> {
    let map = gray_map(settings)?;
    let mut shown = system.clone();
    for layer in &mut shown.layers {
        let (turns, _) = phase_turns(layer, settings.levels_of(layer))?;
        let states: Vec<(f64, f64)> = turns
            .iter()
            .map(|t| {
                map.shows(map.gray(t * TAU))
                    .expect("gray levels come from the map")
            })
            .collect();
        layer.phase = states.iter().map(|s| s.0.rem_euclid(TAU) as f32).collect();
        if map.modulates_amplitude() {
            layer.modulation = Modulation::AmplitudePhase;
            layer.amplitude = Some(states.iter().map(|s| s.1 as f32).collect());
        } else {
            layer.modulation = Modulation::Phase;
            layer.amplitude = None;
        }
        layer.height = None;
        layer.material = None;
    }
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lut(text: &str) -> Lut {
        Lut::parse(text).unwrap()
    }

    fn with_lut(l: Lut) -> SlmSettings {
        SlmSettings {
            lut: Some((l, "t.csv".into())),
            ..SlmSettings::default()
        }
    }

    #[test]
    fn linear_map_wraps_rounds_and_shows_back_within_half_a_step() {
        let map = gray_map(&SlmSettings::default()).unwrap();
        assert_eq!(map.gray(0.0), 0);
        assert_eq!(map.gray(TAU * 0.5), 128);
        assert_eq!(map.gray(TAU * 255.4 / 256.0), 255);
        assert_eq!(map.gray(TAU * 255.6 / 256.0), 0); // wraps to 2π ≡ 0
        assert_eq!(map.gray(-TAU / 256.0), 255);
        assert!((map.bound() - TAU / 512.0).abs() < 1e-15);
        for i in 0..1000 {
            let p = i as f64 * 0.0137 - 3.0;
            let (shown, a) = map.shows(map.gray(p)).unwrap();
            let d = (shown - p).rem_euclid(TAU);
            assert!(d.min(TAU - d) <= map.bound() + 1e-12 && a == 1.0);
        }
        // An SLM whose 2π is at gray 213 (calibrated at a longer wavelength).
        let s = SlmSettings {
            two_pi_gray: Some(213),
            ..SlmSettings::default()
        };
        let map = gray_map(&s).unwrap();
        assert_eq!(map.gray(TAU * 0.5), 107); // 106.5 rounds up
        assert_eq!(map.shows(213), None);
        let s = SlmSettings {
            bits: 10,
            ..SlmSettings::default()
        };
        assert_eq!(gray_map(&s).unwrap().gray(TAU * 0.25), 256);
    }

    #[test]
    fn table_picks_the_nearest_phase_modulo_two_pi() {
        // A falling, nonlinear table covering 2π with its last step (gap 1.0 rad).
        let map = gray_map(&with_lut(lut(
            "0,6.0,0.9\n10,5.0,0.9\n20,3.5,0.8\n30,2.0,0.8\n40,0.5,0.95\n",
        )))
        .unwrap();
        assert_eq!(map.gray(5.1), 10);
        assert_eq!(map.gray(0.3), 40);
        assert_eq!(map.gray(0.1), 0); // 0.383 from 6.0 through 2π, 0.4 from 0.5
        // 6.2 is 0.2 from 6.0 and 0.583 from 0.5 + 2π... 6.2 − 2π = −0.083 → 0.583 from 0.5.
        assert_eq!(map.gray(6.2), 0);
        assert_eq!(map.shows(20), Some((3.5, 0.8)));
        assert_eq!(map.shows(21), None);
        assert!(map.modulates_amplitude());
        // Widest gap on the circle: 2.0 → 3.5 and 3.5 → 5.0 (1.5 rad).
        assert!((map.bound() - 0.75).abs() < 1e-12);
        for i in 0..2000 {
            let p = i as f64 * TAU / 2000.0;
            let (shown, _) = map.shows(map.gray(p)).unwrap();
            let d = (shown - p).rem_euclid(TAU);
            assert!(d.min(TAU - d) <= map.bound() + 1e-12, "{p}");
        }
    }

    #[test]
    fn bad_tables_and_options_are_refused_with_the_fix() {
        let err = |s: SlmSettings| gray_map(&s).unwrap_err().to_string();
        let e = err(with_lut(lut("0,0\n1,2\n2,1.5\n3,6.3\n")));
        assert!(
            e.contains("--lut") && e.contains("not monotone") && e.contains("gray 1"),
            "{e}"
        );
        let e = err(with_lut(lut("0,0\n1,1\n2,2\n3,3\n")));
        assert!(
            e.contains("must cover 2π") && e.contains("spans 3.0000"),
            "{e}"
        );
        let e = err(with_lut(lut("0,0\n300,6.3\n")));
        assert!(e.contains("gray level 300 does not fit in 8 bits"), "{e}");
        let e = err(SlmSettings {
            bits: 9,
            ..SlmSettings::default()
        });
        assert!(e.contains("--bits") && e.contains("8, 10, 12 or 16"), "{e}");
        let e = err(SlmSettings {
            bits: 10,
            format: BitmapFormat::Bmp,
            ..SlmSettings::default()
        });
        assert!(e.contains("bmp holds 8-bit"), "{e}");
        let e = err(SlmSettings {
            two_pi_gray: Some(300),
            ..SlmSettings::default()
        });
        assert!(e.contains("--two-pi-gray") && e.contains("2 … 256"), "{e}");
        for (text, needle) in [
            ("1920x1080", "no '@PITCH'"),
            ("1920@8um", "not COLSxROWS"),
            ("0x1080@8um", "'0' is not a count"),
            ("1920x1080@8", "pitch"),
        ] {
            let e = text.parse::<SlmPanel>().unwrap_err().to_string();
            assert!(e.starts_with("--slm") && e.contains(needle), "{text}: {e}");
        }
        let p: SlmPanel = "1920×1080@8µm".parse().unwrap();
        assert_eq!((p.width, p.height), (1920, 1080));
        assert!((p.pitch_m - 8e-6).abs() < 1e-18);
    }

    #[test]
    fn nearest_resampling_replicates_pixels_and_centres_the_design() {
        // 2×2 design of 16 µm on a 6×5 panel of 8 µm: each design pixel becomes 2×2 SLM
        // pixels; the odd height leaves the extra row at the top (centre rule).
        let phase = [0.1, 0.2, 0.3, 0.4];
        let panel = SlmPanel {
            width: 6,
            height: 5,
            pitch_m: 8e-6,
        };
        let (out, inside) = resample(&phase, 2, 2, 16e-6, &panel, Resample::Nearest);
        let rows: Vec<Vec<f64>> = out.chunks(6).map(<[f64]>::to_vec).collect();
        assert_eq!(inside.iter().filter(|&&i| i).count(), 16);
        // Row v of the panel: centre at (r + 0.5 − 2.5)·0.5 + 1 design pixels.
        assert_eq!(rows[0], vec![0.0, 0.1, 0.1, 0.2, 0.2, 0.0]);
        assert_eq!(rows[1], vec![0.0, 0.1, 0.1, 0.2, 0.2, 0.0]);
        assert_eq!(rows[2], vec![0.0, 0.3, 0.3, 0.4, 0.4, 0.0]);
        assert_eq!(rows[3], vec![0.0, 0.3, 0.3, 0.4, 0.4, 0.0]);
        assert!(!inside[4 * 6 + 2]);
    }

    #[test]
    fn bilinear_resampling_interpolates_the_complex_transmission_across_wraps() {
        // Two pixels at 6.2 and 0.1 rad (0.183 apart through 2π): the midpoint is near 0,
        // not near 3.15 as interpolating the wrapped phase would give.
        let phase = [6.2, 0.1];
        let panel = SlmPanel {
            width: 4,
            height: 1,
            pitch_m: 1.0,
        };
        let (out, _) = resample(&phase, 2, 1, 2.0, &panel, Resample::Bilinear);
        // Panel centres at design x = 0.25, 0.75, 1.25, 1.75 → clamped/interpolated.
        assert!((out[0] - (6.2 - TAU)).abs() < 1e-12);
        let mid =
            (0.5f64 * ((6.2f64).sin() + 0.1f64.sin())).atan2(0.5 * (6.2f64.cos() + 0.1f64.cos()));
        let expect_1 = {
            let (fx, a, b) = (0.25, 6.2f64, 0.1f64);
            ((1.0 - fx) * a.sin() + fx * b.sin()).atan2((1.0 - fx) * a.cos() + fx * b.cos())
        };
        assert!((out[1] - expect_1).abs() < 1e-12);
        assert!(mid.abs() < 0.1 && out[1].abs() < 0.1);
        assert!((out[3] - 0.1).abs() < 1e-12);
    }
}
