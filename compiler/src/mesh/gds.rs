//! GDSII layout of a mesh: a parameterised MZI cell placed on the Clements/Reck grid, with
//! straight waveguides between and around the cells, the output phase screen and labelled
//! ports. Sizes come from a small technology file ([`Tech`]); [`write_mesh_gds`] writes the
//! library and [`check_mesh_gds`] reads one back and checks it against the layout.
//!
//! # Conventions
//!
//! * **Units.** Database unit 1 nm, user unit 1 µm (as [`crate::export::gds`]); every
//!   length of the technology is rounded to a whole nanometre. Coordinates must fit in `i32`
//!   (±2.1 m).
//! * **Frame.** Light travels along +x; the input ports are at `x = 0`. Mode `m` of `N` runs
//!   at `y_m = (N − 1 − m)·mode_pitch`, so mode 0 is on top and the upper mode `m` of an MZI
//!   on `(m, m+1)` is drawn above mode `m + 1`, as in the MZI convention of [`super::mzi`].
//! * **Cell `MZI`** (origin at its lower input port): two arms, the lower at `y = 0` (mode
//!   `m + 1`), the upper at `y = mode_pitch` (mode `m`). Along x, with `H` = `heater_length`,
//!   `C` = `coupler_length` and `S` the S-bend length: the external phase heater (φ) over the
//!   upper input arm `[0, H]`; S-bends closing the arms to `coupler_gap` (edge to edge) `[H,
//!   H+S]`; the first directional coupler `[H+S, H+S+C]`; S-bends opening the arms to the mode
//!   pitch again; the internal phase heater (θ) over the upper arm, `H` long; S-bends, the
//!   second coupler, S-bends back to the mode pitch. Cell length `L = 2H + 2C + 4S`. Heaters
//!   are `heater_width` wide, centred on the arm, on `heater_layer`; waveguides on
//!   `waveguide_layer`.
//! * **S-bends.** Two circular arcs of equal radius turning opposite ways. `S` is the length
//!   at which arcs of `bend_radius` close the arms, `2R·sin α` with `cos α = 1 − d/2R` (`d`
//!   the lateral offset), rounded up to a whole nanometre; the arcs are then drawn with the
//!   radius that fits `S` exactly, `(d² + S²)/4d ≥ bend_radius`.
//! * **Cell `ATTENUATOR`** (SVD meshes): the same cell with the arms half a mode pitch apart
//!   (rounded down to a whole nanometre), same length. Its upper arm is the attenuated mode;
//!   the idle lower arm lies half-way to the next mode, its two ports left open (a terminator
//!   or monitor goes there). Transmission `sin(θ/2)` on the bar port.
//! * **Placement.** Column `c` of the mesh spans `x ∈ [c·P, c·P + L]` (`P` = `column_pitch`,
//!   by default `L`: the columns abut). An MZI on `(m, m+1)` is a reference (SREF, no
//!   rotation) to `MZI` at `(c·P, y_{m+1})`, an attenuator on `m` one to `ATTENUATOR` at
//!   `(c·P, y_m − ⌊mode_pitch/2⌋)`. Every stretch of a mode that no cell covers — modes
//!   without an MZI in a column, the gaps between columns when `P > L` — is a straight
//!   waveguide in the top cell `MESH`.
//! * **Output phase screen.** After the last column (at `x = (D−1)·P + L` for depth `D`) a
//!   straight section `H` long on every mode with a heater over it; the output ports are at
//!   its end, `x_end`.
//! * **Labels** (TEXT on `label_layer`, in `MESH`): `in{m}` at `(0, y_m)`, `out{m}` at
//!   `(x_end, y_m)`, and `mzi(c,m)` / `att(c,m)` (column, upper mode) at the centre of each
//!   cell.
//! * **Polygons.** Each arm of a cell is one BOUNDARY: its centre line (straights and arcs,
//!   each arc cut into chords that stray at most 1 nm from it, at most 256 per arc) offset by
//!   half the waveguide width on both sides. A cell arm's centre line has at most
//!   `1 + 4 + 8·256 = 2053` points, its BOUNDARY at most 4 107 (closed), well under the GDSII
//!   limit of 8 191 points per element.
//! * **Formats.** GDSII or OASIS ([`LayoutFormat`]): the same library; OASIS stores each
//!   arm as a `POLYGON` and the references as `PLACEMENT`s (see [`crate::export::oasis`]).
//! * **Dates.** The library and cells carry the current time (GDSII only).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use gds21::{GdsElement, GdsLibrary, GdsPoint, GdsStruct, GdsStructRef, GdsTextElem};
use photonflow_optics::units::{format_length, parse_length};
use serde::Deserialize;

use super::layout::Layout;
use crate::error::{CompileError, Result, read_text};
use crate::export::gds::{
    GdsError, LayoutFormat, MAX_LAYER, boundary, decode, encode, gds_date, gds_units, input,
    units_m,
};

/// Database unit, metres.
pub const DB_UNIT_M: f64 = 1e-9;
/// User unit, metres.
pub const USER_UNIT_M: f64 = 1e-6;
/// Name of the MZI cell.
pub const MZI_CELL: &str = "MZI";
/// Name of the attenuator cell (SVD meshes).
pub const ATTENUATOR_CELL: &str = "ATTENUATOR";
/// Name of the top cell.
pub const TOP_CELL: &str = "MESH";
/// Most XY points one GDSII element can hold: `(65 535 − 4) / 8`.
pub const MAX_POINTS: usize = 8191;
/// Largest distance, DBU, between an arc and the chords that draw it.
const ARC_TOLERANCE: f64 = 1.0;
/// Most chords per arc.
const MAX_CHORDS: usize = 256;

/// A technology: waveguide and heater sizes and GDS layers. Lengths in metres.
///
/// As a TOML file ([`Tech::load`]), the default in full:
///
/// ```toml
/// waveguide_width = "0.5um"
/// bend_radius = "20um"
/// coupler_length = "10um"
/// coupler_gap = "0.2um"      # edge to edge
/// heater_length = "100um"
/// heater_width = "2um"
/// mode_pitch = "25um"        # centre to centre
/// # column_pitch = "400um"   # default: the MZI cell's length
/// waveguide_layer = 1
/// heater_layer = 2
/// label_layer = 10
/// ```
///
/// The default ([`Tech::default`]) is silicon-photonics-like: 500 nm wires (220 nm SOI at
/// 1550 nm), 20 µm bends, couplers of two wires 200 nm apart over 10 µm (near 50:50 for such
/// wires, but calibrate for a real process), 100 µm × 2 µm thermal heaters, a 25 µm mode pitch
/// (heaters on neighbouring modes 23 µm apart). With these the S-bends are 28.712 µm long
/// and an MZI cell 334.848 µm.
#[derive(Debug, Clone, PartialEq)]
pub struct Tech {
    /// Waveguide core width.
    pub waveguide_width_m: f64,
    /// Smallest radius of the S-bends.
    pub bend_radius_m: f64,
    /// Length of the straight part of each directional coupler.
    pub coupler_length_m: f64,
    /// Gap between the two waveguides of a coupler, edge to edge.
    pub coupler_gap_m: f64,
    /// Length of every heater (and of the straight under it).
    pub heater_length_m: f64,
    /// Width of every heater.
    pub heater_width_m: f64,
    /// Distance between the centres of adjacent mode waveguides.
    pub mode_pitch_m: f64,
    /// Distance between the starts of adjacent columns; `None`: the MZI cell's length (the
    /// columns abut).
    pub column_pitch_m: Option<f64>,
    /// GDS layer of the waveguides (datatype 0).
    pub waveguide_layer: u16,
    /// GDS layer of the heaters.
    pub heater_layer: u16,
    /// GDS layer of the port and MZI labels.
    pub label_layer: u16,
}

impl Default for Tech {
    /// See the type's docs.
    fn default() -> Self {
        Self {
            waveguide_width_m: 0.5e-6,
            bend_radius_m: 20e-6,
            coupler_length_m: 10e-6,
            coupler_gap_m: 0.2e-6,
            heater_length_m: 100e-6,
            heater_width_m: 2e-6,
            mode_pitch_m: 25e-6,
            column_pitch_m: None,
            waveguide_layer: 1,
            heater_layer: 2,
            label_layer: 10,
        }
    }
}

/// A technology file: every key optional (the default's value when absent), lengths as text
/// with a unit (`"0.5um"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TechFile {
    waveguide_width: Option<String>,
    bend_radius: Option<String>,
    coupler_length: Option<String>,
    coupler_gap: Option<String>,
    heater_length: Option<String>,
    heater_width: Option<String>,
    mode_pitch: Option<String>,
    column_pitch: Option<String>,
    waveguide_layer: Option<u16>,
    heater_layer: Option<u16>,
    label_layer: Option<u16>,
}

/// The technology in database units, checked, with the derived sizes.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    width: i64,
    gap: i64,
    coupler: i64,
    heater: i64,
    heater_width: i64,
    mode_pitch: i64,
    /// S-bend length.
    bend: i64,
    /// MZI (and attenuator) cell length.
    cell: i64,
    column_pitch: i64,
    /// Arm separation of the attenuator cell.
    attenuator_arms: i64,
    waveguide_layer: u16,
    heater_layer: u16,
    label_layer: u16,
}

impl Tech {
    /// Parses a technology TOML (keys as in the fields' names without `_m`: `waveguide_width`,
    /// `bend_radius`, `coupler_length`, `coupler_gap`, `heater_length`, `heater_width`,
    /// `mode_pitch`, `column_pitch`, `waveguide_layer`, `heater_layer`, `label_layer`) and
    /// checks it ([`Tech::check`]). Absent keys keep the default's value.
    pub fn from_toml(text: &str) -> Result<Self, GdsError> {
        let f: TechFile = toml::from_str(text).map_err(|e| input("technology", e.to_string()))?;
        let d = Self::default();
        let parse = |key: &str, text: String| {
            parse_length(&text).map_err(|e| input(format!("technology {key}"), e.to_string()))
        };
        let length = |key: &str, text: Option<String>, default: f64| {
            text.map_or(Ok(default), |t| parse(key, t))
        };
        let tech = Self {
            waveguide_width_m: length("waveguide_width", f.waveguide_width, d.waveguide_width_m)?,
            bend_radius_m: length("bend_radius", f.bend_radius, d.bend_radius_m)?,
            coupler_length_m: length("coupler_length", f.coupler_length, d.coupler_length_m)?,
            coupler_gap_m: length("coupler_gap", f.coupler_gap, d.coupler_gap_m)?,
            heater_length_m: length("heater_length", f.heater_length, d.heater_length_m)?,
            heater_width_m: length("heater_width", f.heater_width, d.heater_width_m)?,
            mode_pitch_m: length("mode_pitch", f.mode_pitch, d.mode_pitch_m)?,
            column_pitch_m: f
                .column_pitch
                .map(|t| parse("column_pitch", t))
                .transpose()?,
            waveguide_layer: f.waveguide_layer.unwrap_or(d.waveguide_layer),
            heater_layer: f.heater_layer.unwrap_or(d.heater_layer),
            label_layer: f.label_layer.unwrap_or(d.label_layer),
        };
        tech.check()?;
        Ok(tech)
    }

    /// Reads and checks a technology file.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |problem: String| CompileError::file(path, problem);
        let text = read_text(path)?;
        Self::from_toml(&text).map_err(|e| bad(e.to_string()))
    }

    /// Checks that the technology can draw the cell; the message names the key at fault.
    /// Every length must be at least 1 nm; `bend_radius ≥ waveguide_width`; `mode_pitch >
    /// 2·(coupler_gap + waveguide_width)` (the attenuator's idle arm fits half-way between
    /// modes); `heater_width ≤ mode_pitch / 2`; `bend_radius` large enough for the S-bend from
    /// the mode pitch to the coupler (offset `d ≤ 2·bend_radius`); `column_pitch` at least the
    /// cell length; layers `≤ 32 767` and distinct.
    pub fn check(&self) -> Result<(), GdsError> {
        self.geometry().map(|_| ())
    }

    /// The MZI cell's length, metres.
    pub fn cell_length_m(&self) -> Result<f64, GdsError> {
        Ok(self.geometry()?.cell as f64 * DB_UNIT_M)
    }

    fn geometry(&self) -> Result<Geometry, GdsError> {
        let bad = |key: &str, metres: f64, why: String| {
            input(format!("technology {key} = {}", format_length(metres)), why)
        };
        let dbu = |key: &str, metres: f64| {
            let v = (metres / DB_UNIT_M).round();
            if (1.0..=i32::MAX as f64).contains(&v) {
                Ok(v as i64)
            } else {
                let why = "give a positive length of at least 1 nm and under 2 m";
                Err(bad(key, metres, why.into()))
            }
        };
        let width = dbu("waveguide_width", self.waveguide_width_m)?;
        let radius = dbu("bend_radius", self.bend_radius_m)?;
        let coupler = dbu("coupler_length", self.coupler_length_m)?;
        let gap = dbu("coupler_gap", self.coupler_gap_m)?;
        let heater = dbu("heater_length", self.heater_length_m)?;
        let heater_width = dbu("heater_width", self.heater_width_m)?;
        let mode_pitch = dbu("mode_pitch", self.mode_pitch_m)?;
        let nm = |v: i64| format_length(v as f64 * DB_UNIT_M);
        if radius < width {
            let why = format!("must be at least the waveguide_width ({})", nm(width));
            return Err(bad("bend_radius", self.bend_radius_m, why));
        }
        if mode_pitch <= 2 * (gap + width) {
            let why = format!(
                "must exceed 2·(coupler_gap + waveguide_width) = {}, so that an attenuator's \
                 idle arm fits half-way between two modes",
                nm(2 * (gap + width))
            );
            return Err(bad("mode_pitch", self.mode_pitch_m, why));
        }
        if 2 * heater_width > mode_pitch {
            let why = format!(
                "must be at most half the mode_pitch ({}), so that heaters on neighbouring \
                 modes stay apart",
                nm(mode_pitch / 2)
            );
            return Err(bad("heater_width", self.heater_width_m, why));
        }
        // The S-bend closes each arm by d = (pitch − gap − width)/2: arcs of radius R turning by
        // α with 2R(1 − cos α) = d, which needs d ≤ 2R.
        let d = (mode_pitch - gap - width) as f64 / 2.0;
        let r = radius as f64;
        if d > 2.0 * r {
            let why = format!(
                "is too small for the S-bend from the mode_pitch ({}) to the coupler_gap ({}): \
                 its offset of {} needs a radius of at least {} (or a smaller mode_pitch)",
                nm(mode_pitch),
                nm(gap),
                format_length(d * DB_UNIT_M),
                format_length(d / 2.0 * DB_UNIT_M)
            );
            return Err(bad("bend_radius", self.bend_radius_m, why));
        }
        let alpha = (1.0 - d / (2.0 * r)).acos();
        let bend = (2.0 * r * alpha.sin() - 1e-6).ceil() as i64;
        let cell = 2 * heater + 2 * coupler + 4 * bend;
        if cell > i32::MAX as i64 {
            let why = format!(
                "the MZI cell would be {} long, beyond the GDSII coordinate range",
                nm(cell)
            );
            return Err(bad("heater_length", self.heater_length_m, why));
        }
        let column_pitch = match self.column_pitch_m {
            None => cell,
            Some(p) => {
                let v = dbu("column_pitch", p)?;
                if v < cell {
                    let why = format!("is shorter than the MZI cell ({})", nm(cell));
                    return Err(bad("column_pitch", p, why));
                }
                v
            }
        };
        let layers = [
            ("waveguide_layer", self.waveguide_layer),
            ("heater_layer", self.heater_layer),
            ("label_layer", self.label_layer),
        ];
        for (i, &(key, layer)) in layers.iter().enumerate() {
            if layer > MAX_LAYER {
                return Err(input(
                    format!("technology {key} = {layer}"),
                    "GDS layers go up to 32767",
                ));
            }
            if let Some((other, _)) = layers[..i].iter().find(|(_, l)| *l == layer) {
                return Err(input(
                    format!("technology {key} = {layer}"),
                    format!("is also the {other}; give each a layer of its own"),
                ));
            }
        }
        Ok(Geometry {
            width,
            gap,
            coupler,
            heater,
            heater_width,
            mode_pitch,
            bend,
            cell,
            column_pitch,
            attenuator_arms: mode_pitch / 2,
            waveguide_layer: self.waveguide_layer,
            heater_layer: self.heater_layer,
            label_layer: self.label_layer,
        })
    }
}

/// A point of a waveguide's centre line: `(x, y, heading)`, DBU and radians.
type Sample = (f64, f64, f64);

/// One stretch of an arm.
#[derive(Debug, Clone, Copy)]
enum Segment {
    /// Straight ahead, this long (DBU).
    Straight(i64),
    /// An S-bend of the cell's bend length moving the arm this far in y (DBU).
    Bend(f64),
}

/// Appends an S-bend from the last sample (heading 0) of `line`: length `length`, offset
/// `dy`, two arcs of the radius that fits both.
fn s_bend(line: &mut Vec<Sample>, length: f64, dy: f64) {
    let (x0, y0, _) = *line.last().expect("a centre line starts with a point");
    if dy == 0.0 {
        line.push((x0 + length, y0, 0.0));
        return;
    }
    // Each arc turns by α and covers (length/2, dy/2): tan(α/2) = |dy|/length.
    let alpha = 2.0 * (dy.abs() / length).atan();
    let radius = length / (2.0 * alpha.sin());
    let step = 2.0 * (1.0 - (ARC_TOLERANCE / radius).min(1.0)).acos();
    let chords = ((alpha / step).ceil() as usize).clamp(1, MAX_CHORDS);
    let sign = dy.signum();
    let arc = |t: f64| (radius * t.sin(), sign * radius * (1.0 - t.cos()));
    for i in 1..=chords {
        let t = alpha * i as f64 / chords as f64;
        let (ax, ay) = arc(t);
        line.push((x0 + ax, y0 + ay, sign * t));
    }
    // The second arc mirrors the first about the S-bend's centre.
    for i in (0..chords).rev() {
        let t = alpha * i as f64 / chords as f64;
        let (ax, ay) = arc(t);
        line.push((x0 + length - ax, y0 + dy - ay, sign * t));
    }
}

/// The centre line of an arm starting at `(0, y0)` heading along +x.
fn centre_line(y0: f64, segments: &[Segment], bend: i64) -> Vec<Sample> {
    let mut line = vec![(0.0, y0, 0.0)];
    for s in segments {
        match *s {
            Segment::Straight(length) => {
                let (x, y, _) = *line.last().expect("starts with a point");
                line.push((x + length as f64, y, 0.0));
            }
            Segment::Bend(dy) => s_bend(&mut line, bend as f64, dy),
        }
    }
    line
}

/// A waveguide of `width` (DBU) along `line` (offset by `x`, `y`) as a BOUNDARY on `layer`:
/// the centre line shifted by `±width/2` along its normal, rounded to the database grid.
fn outline(layer: u16, line: &[Sample], width: i64, (x, y): (i64, i64)) -> GdsElement {
    let h = width as f64 / 2.0;
    let side = |s: f64| {
        line.iter().map(move |&(px, py, a)| {
            let (sin, cos) = a.sin_cos();
            let qx = (px - s * h * sin).round() as i64 + x;
            let qy = (py + s * h * cos).round() as i64 + y;
            // In range: `Tech::geometry` bounds the cells, `MeshPlan::new` the mesh.
            (qx as i32, qy as i32)
        })
    };
    let mut points: Vec<(i32, i32)> = side(1.0).chain(side(-1.0).rev()).collect();
    points.dedup();
    boundary(layer, &points)
}

/// A straight horizontal bar `[x0, x1]` centred on `y`, `width` wide (DBU): a straight
/// waveguide or a heater.
fn bar(layer: u16, x0: i64, x1: i64, y: i64, width: i64) -> GdsElement {
    let line = [(0.0, 0.0, 0.0), ((x1 - x0) as f64, 0.0, 0.0)];
    outline(layer, &line, width, (x0, y))
}

/// An MZI cell whose arms are `arms` apart (see the module docs).
fn mzi_cell(name: &str, g: &Geometry, arms: i64) -> GdsStruct {
    let d = (arms - g.gap - g.width) as f64 / 2.0;
    let arm = |y0: i64, close: f64| {
        use Segment::{Bend, Straight};
        let segments = [
            Straight(g.heater),
            Bend(close),
            Straight(g.coupler),
            Bend(-close),
            Straight(g.heater),
            Bend(close),
            Straight(g.coupler),
            Bend(-close),
        ];
        outline(
            g.waveguide_layer,
            &centre_line(y0 as f64, &segments, g.bend),
            g.width,
            (0, 0),
        )
    };
    let theta = g.heater + 2 * g.bend + g.coupler;
    let mut cell = GdsStruct::new(name);
    cell.elems = vec![
        arm(0, d),
        arm(arms, -d),
        bar(g.heater_layer, 0, g.heater, arms, g.heater_width),
        bar(
            g.heater_layer,
            theta,
            theta + g.heater,
            arms,
            g.heater_width,
        ),
    ];
    cell
}

/// What a reference places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    Mzi,
    Attenuator,
}

impl Element {
    fn cell(self) -> &'static str {
        match self {
            Self::Mzi => MZI_CELL,
            Self::Attenuator => ATTENUATOR_CELL,
        }
    }

    /// Modes it spans from its upper mode down.
    fn modes(self) -> usize {
        match self {
            Self::Mzi => 2,
            Self::Attenuator => 1,
        }
    }

    /// Its name in messages and labels.
    fn tag(self) -> &'static str {
        match self {
            Self::Mzi => "mzi",
            Self::Attenuator => "att",
        }
    }
}

/// Centre-line height of mode `m` of `n`, DBU.
fn mode_y(n: usize, m: usize, g: &Geometry) -> i64 {
    (n - 1 - m) as i64 * g.mode_pitch
}

/// One cell reference of the mesh.
#[derive(Debug, Clone, PartialEq)]
struct Placement {
    element: Element,
    column: usize,
    /// Upper mode.
    mode: usize,
    /// Lower-left port of the cell, DBU.
    x: i64,
    y: i64,
    /// Arm separation, DBU.
    arms: i64,
}

/// The placements and extent of a layout's mesh (see the module docs).
struct MeshPlan {
    n: usize,
    depth: usize,
    placements: Vec<Placement>,
    /// Where the output phase screen starts and the output ports are, DBU.
    screen: i64,
    end: i64,
}

impl MeshPlan {
    fn new(layout: &Layout, g: &Geometry) -> Result<Self, GdsError> {
        let n = layout.n;
        let subject = || format!("layout of {n} modes");
        if n == 0 {
            return Err(input(subject(), "it has no modes"));
        }
        // Every coordinate within i32: the modes (and an idle arm below the last one) …
        let overflow = |extent_db| GdsError::CoordinateOverflow {
            name: TOP_CELL.into(),
            extent_db,
        };
        let height = (n as i128 + 1) * g.mode_pitch as i128;
        if height > i32::MAX as i128 {
            return Err(overflow(height));
        }
        let mut depth = 0;
        let mut taken = HashSet::new();
        let mut placements = Vec::with_capacity(layout.mzis.len() + layout.attenuators.len());
        let mzis = layout.mzis.iter().map(|z| (Element::Mzi, z.column, z.mode));
        let attenuators =
            (layout.attenuators.iter()).map(|a| (Element::Attenuator, a.column, a.mode));
        for (element, column, mode) in mzis.chain(attenuators) {
            let (kind, span) = (element.cell(), element.modes());
            if column >= i32::MAX as usize || mode.checked_add(span).is_none_or(|end| end > n) {
                let why = format!("{kind} in column {column} on mode {mode} does not fit");
                return Err(input(subject(), why));
            }
            if let Some(m) = (mode..mode + span).find(|&m| !taken.insert((column, m))) {
                let why = format!(
                    "{kind} in column {column} on mode {mode} overlaps another element on mode \
                     {m}"
                );
                return Err(input(subject(), why));
            }
            let (y, arms) = match element {
                Element::Mzi => (mode_y(n, mode + 1, g), g.mode_pitch),
                Element::Attenuator => (mode_y(n, mode, g) - g.attenuator_arms, g.attenuator_arms),
            };
            placements.push(Placement {
                element,
                column,
                mode,
                x: column as i64 * g.column_pitch,
                y,
                arms,
            });
            depth = depth.max(column + 1);
        }
        // … and the columns and the output phase screen.
        let screen = match depth {
            0 => 0,
            d => (d as i128 - 1) * g.column_pitch as i128 + g.cell as i128,
        };
        if screen + g.heater as i128 > i32::MAX as i128 {
            return Err(overflow(screen + g.heater as i128));
        }
        let screen = screen as i64;
        Ok(Self {
            n,
            depth,
            placements,
            screen,
            end: screen + g.heater,
        })
    }
}

/// A TEXT element on `layer` at `(x, y)` DBU.
fn label(layer: u16, text: String, x: i64, y: i64) -> GdsElement {
    GdsElement::GdsTextElem(GdsTextElem {
        string: text,
        layer: layer as i16,
        texttype: 0,
        xy: GdsPoint::new(x as i32, y as i32),
        ..Default::default()
    })
}

/// The top cell: references, straight waveguides, the output phase screen and labels.
fn top_cell(plan: &MeshPlan, g: &Geometry) -> GdsStruct {
    let mut cell = GdsStruct::new(TOP_CELL);
    let mut covered = vec![Vec::new(); plan.n];
    for p in &plan.placements {
        cell.elems.push(GdsElement::GdsStructRef(GdsStructRef {
            name: p.element.cell().into(),
            xy: GdsPoint::new(p.x as i32, p.y as i32),
            ..Default::default()
        }));
        for spans in &mut covered[p.mode..p.mode + p.element.modes()] {
            spans.push((p.x, p.x + g.cell));
        }
    }
    for (m, spans) in covered.iter_mut().enumerate() {
        let y = mode_y(plan.n, m, g);
        spans.sort_unstable();
        let mut x = 0;
        for &(x0, x1) in spans.iter().chain([&(plan.end, plan.end)]) {
            if x0 > x {
                cell.elems.push(bar(g.waveguide_layer, x, x0, y, g.width));
            }
            x = x.max(x1);
        }
        cell.elems.push(bar(
            g.heater_layer,
            plan.screen,
            plan.end,
            y,
            g.heater_width,
        ));
        cell.elems
            .push(label(g.label_layer, format!("in{m}"), 0, y));
        cell.elems
            .push(label(g.label_layer, format!("out{m}"), plan.end, y));
    }
    for p in &plan.placements {
        let text = format!("{}({},{})", p.element.tag(), p.column, p.mode);
        cell.elems.push(label(
            g.label_layer,
            text,
            p.x + g.cell / 2,
            p.y + p.arms / 2,
        ));
    }
    cell
}

/// `[x0, y0, x1, y1]` of the BOUNDARY elements of `elems` and of the cells they reference
/// (`cells`: name and box), DBU; `None` when there are none.
fn bounding_box(elems: &[GdsElement], cells: &[(&str, [i64; 4])]) -> Option<[i64; 4]> {
    let mut b: Option<[i64; 4]> = None;
    let mut grow = |[x0, y0, x1, y1]: [i64; 4]| {
        let o = b.get_or_insert([x0, y0, x1, y1]);
        *o = [o[0].min(x0), o[1].min(y0), o[2].max(x1), o[3].max(y1)];
    };
    for e in elems {
        match e {
            GdsElement::GdsBoundary(p) => {
                for q in &p.xy {
                    let (x, y) = (q.x as i64, q.y as i64);
                    grow([x, y, x, y]);
                }
            }
            GdsElement::GdsStructRef(r) => {
                if let Some((_, [x0, y0, x1, y1])) = cells.iter().find(|(n, _)| *n == r.name) {
                    let (x, y) = (r.xy.x as i64, r.xy.y as i64);
                    grow([x0 + x, y0 + y, x1 + x, y1 + y]);
                }
            }
            _ => {}
        }
    }
    b
}

/// What [`write_mesh_gds`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshGdsStats {
    /// References to the `MZI` cell (= MZIs of the layout).
    pub mzis: usize,
    /// References to the `ATTENUATOR` cell.
    pub attenuators: usize,
    /// Optical depth: columns of cells.
    pub columns: usize,
    /// Modes.
    pub modes: usize,
    /// Extent of the drawn waveguides and heaters along x (light), µm.
    pub width_um: f64,
    /// Extent along y, µm.
    pub height_um: f64,
    /// Length of the MZI cell, µm.
    pub cell_length_um: f64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes the layout library of `layout`'s mesh drawn with `tech` to `w` as GDSII or OASIS
/// (`format`; buffered, flushed on success): cells `MZI`, `ATTENUATOR` (SVD meshes only) and
/// the top cell `MESH`, following the module conventions. Technology and layout are checked
/// before anything is written.
pub fn write_mesh_gds(
    layout: &Layout,
    tech: &Tech,
    format: LayoutFormat,
    w: &mut impl Write,
) -> Result<MeshGdsStats, GdsError> {
    let g = tech.geometry()?;
    let plan = MeshPlan::new(layout, &g)?;
    let mut cells = vec![mzi_cell(MZI_CELL, &g, g.mode_pitch)];
    if !layout.attenuators.is_empty() {
        cells.push(mzi_cell(ATTENUATOR_CELL, &g, g.attenuator_arms));
    }
    let boxes: Vec<(&str, [i64; 4])> = cells
        .iter()
        .filter_map(|c| Some((c.name.as_str(), bounding_box(&c.elems, &[])?)))
        .collect();
    let top = top_cell(&plan, &g);
    let [x0, y0, x1, y1] = bounding_box(&top.elems, &boxes).expect("every mode has a heater");
    let mut lib = GdsLibrary::new("PHOTONFLOW");
    lib.units = gds_units(DB_UNIT_M, USER_UNIT_M);
    lib.structs = cells;
    lib.structs.push(top);
    lib.set_all_dates(gds_date(None)?);
    let bytes = encode(&lib, format, w)?;
    let um = DB_UNIT_M / USER_UNIT_M;
    Ok(MeshGdsStats {
        mzis: layout.mzis.len(),
        attenuators: layout.attenuators.len(),
        columns: plan.depth,
        modes: plan.n,
        width_um: (x1 - x0) as f64 * um,
        height_um: (y1 - y0) as f64 * um,
        cell_length_um: g.cell as f64 * um,
        bytes,
    })
}

/// What [`check_mesh_gds`] verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshGdsCheck {
    /// References to `MZI` found, each at its grid position.
    pub mzis: usize,
    /// References to `ATTENUATOR` found, each at its grid position.
    pub attenuators: usize,
    /// Port labels found (`in0 …`, `out0 …`).
    pub ports: usize,
    /// Most points of one BOUNDARY in the library.
    pub max_points: usize,
}

/// Reads a library written by [`write_mesh_gds`] back and checks it against `layout` and
/// `tech`: units 1 nm / 1 µm; the top cell `MESH` references `MZI` exactly `layout.mzi_count`
/// times and `ATTENUATOR` once per attenuator, each at its grid position; every port label
/// is there; no BOUNDARY exceeds [`MAX_POINTS`].
pub fn check_mesh_gds(
    bytes: &[u8],
    layout: &Layout,
    tech: &Tech,
) -> Result<MeshGdsCheck, GdsError> {
    let g = tech.geometry()?;
    let plan = MeshPlan::new(layout, &g)?;
    let lib = decode(bytes)?;
    let fail = |cell: &str, problem: String| GdsError::ReadBack {
        cell: cell.into(),
        problem,
    };
    let (db, user) = units_m(&lib.units);
    if (db / DB_UNIT_M - 1.0).abs() > 1e-9 || (user / USER_UNIT_M - 1.0).abs() > 1e-9 {
        let why = format!("units {db:e} m / {user:e} m; expected 1 nm / 1 µm");
        return Err(fail(TOP_CELL, why));
    }
    let mut max_points = 0;
    for s in &lib.structs {
        for e in &s.elems {
            if let GdsElement::GdsBoundary(b) = e {
                max_points = max_points.max(b.xy.len());
                if b.xy.len() > MAX_POINTS {
                    let why = format!("a BOUNDARY of {} points", b.xy.len());
                    return Err(fail(&s.name, why));
                }
            }
        }
    }
    let top = lib
        .structs
        .iter()
        .find(|s| s.name == TOP_CELL)
        .ok_or_else(|| fail(TOP_CELL, "there is no such cell".into()))?;
    let mut counts = [0; 2];
    for (i, (element, want)) in [
        (Element::Mzi, layout.mzi_count),
        (Element::Attenuator, layout.attenuators.len()),
    ]
    .into_iter()
    .enumerate()
    {
        let name = element.cell();
        let mut found: Vec<(i32, i32)> = top
            .elems
            .iter()
            .filter_map(|e| match e {
                GdsElement::GdsStructRef(r) if r.name == name => Some((r.xy.x, r.xy.y)),
                _ => None,
            })
            .collect();
        if found.len() != want {
            let why = format!(
                "{} references to {name}; the layout has {want} of them",
                found.len(),
            );
            return Err(fail(TOP_CELL, why));
        }
        if want > 0 && !lib.structs.iter().any(|s| s.name == name) {
            return Err(fail(name, "there is no such cell".into()));
        }
        let mut expected: Vec<(i32, i32)> = plan
            .placements
            .iter()
            .filter(|p| p.element == element)
            .map(|p| (p.x as i32, p.y as i32))
            .collect();
        found.sort_unstable();
        expected.sort_unstable();
        if let Some((f, e)) = found.iter().zip(&expected).find(|(f, e)| f != e) {
            let why = format!(
                "a reference to {name} at ({}, {}) nm where the grid has one at ({}, {}) nm",
                f.0, f.1, e.0, e.1
            );
            return Err(fail(TOP_CELL, why));
        }
        counts[i] = found.len();
    }
    let texts: HashSet<&str> = top
        .elems
        .iter()
        .filter_map(|e| match e {
            GdsElement::GdsTextElem(t) => Some(t.string.as_str()),
            _ => None,
        })
        .collect();
    let ports: Vec<String> = (0..plan.n)
        .flat_map(|m| [format!("in{m}"), format!("out{m}")])
        .collect();
    if let Some(p) = ports.iter().find(|p| !texts.contains(p.as_str())) {
        return Err(fail(TOP_CELL, format!("no label {p}")));
    }
    Ok(MeshGdsCheck {
        mzis: counts[0],
        attenuators: counts[1],
        ports: ports.len(),
        max_points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{CMatrix, Convention, Method, decompose, decompose_svd, haar_unitary};
    use photonflow_optics::rng::Rng;

    fn layout(n: usize, method: Method) -> Layout {
        let mesh = decompose(&haar_unitary(n, &mut Rng::new(n as u64)), method, 1e-9).unwrap();
        Layout::new(
            &mesh,
            Convention::Photonflow,
            method.name(),
            0.0,
            0.0,
            "test",
        )
    }

    fn write(layout: &Layout, tech: &Tech) -> (Vec<u8>, MeshGdsStats) {
        let mut buf = Vec::new();
        let stats = write_mesh_gds(layout, tech, LayoutFormat::Gds, &mut buf).unwrap();
        assert_eq!(stats.bytes, buf.len() as u64);
        (buf, stats)
    }

    fn cell<'a>(lib: &'a GdsLibrary, name: &str) -> &'a GdsStruct {
        lib.structs.iter().find(|s| s.name == name).unwrap()
    }

    fn points(e: &GdsElement) -> Vec<(i64, i64)> {
        match e {
            GdsElement::GdsBoundary(b) => b.xy.iter().map(|p| (p.x as i64, p.y as i64)).collect(),
            _ => vec![],
        }
    }

    fn layer(e: &GdsElement) -> i16 {
        match e {
            GdsElement::GdsBoundary(b) => b.layer,
            _ => -1,
        }
    }

    /// `[x0, y0, x1, y1]` of one element's points.
    fn extent(p: &[(i64, i64)]) -> [i64; 4] {
        let xs = p.iter().map(|q| q.0);
        let ys = p.iter().map(|q| q.1);
        [
            xs.clone().min().unwrap(),
            ys.clone().min().unwrap(),
            xs.max().unwrap(),
            ys.max().unwrap(),
        ]
    }

    /// The cell length from the tech by the formula of the module docs (nm).
    fn cell_length(t: &Tech) -> i64 {
        let nm = |m: f64| (m * 1e9).round();
        let (w, g, r, p) = (
            nm(t.waveguide_width_m),
            nm(t.coupler_gap_m),
            nm(t.bend_radius_m),
            nm(t.mode_pitch_m),
        );
        let d = (p - g - w) / 2.0;
        let s = (2.0 * r * (1.0 - d / (2.0 * r)).acos().sin()).ceil();
        (2.0 * nm(t.heater_length_m) + 2.0 * nm(t.coupler_length_m) + 4.0 * s) as i64
    }

    #[test]
    fn clements_and_reck_place_one_mzi_reference_per_mzi_on_the_grid() {
        let tech = Tech::default();
        let (l, p) = (cell_length(&tech), 25_000);
        assert_eq!(l, 334_848);
        assert!((tech.cell_length_m().unwrap() - 334.848e-6).abs() < 1e-12);
        for (method, depth) in [(Method::Clements, 4), (Method::Reck, 5)] {
            let layout = layout(4, method);
            let (buf, stats) = write(&layout, &tech);
            assert_eq!((stats.mzis, stats.attenuators), (6, 0));
            assert_eq!((stats.columns, stats.modes), (depth, 4));
            // Columns, then the output phase screen (100 µm); modes 3 pitches apart plus the
            // 2 µm heaters of the output phase screen.
            let width = ((depth - 1) as i64 * l + l + 100_000) as f64 / 1e3;
            assert!((stats.width_um - width).abs() < 1e-9, "{stats:?}");
            assert!((stats.height_um - (75.0 + 2.0)).abs() < 1e-9, "{stats:?}");
            let check = check_mesh_gds(&buf, &layout, &tech).unwrap();
            assert_eq!((check.mzis, check.attenuators, check.ports), (6, 0, 8));

            // Independently: every reference is to MZI, at (c·L, (N−2−m)·p), one per MZI.
            let lib = decode(&buf).unwrap();
            let names: Vec<&str> = lib.structs.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["MZI", "MESH"]);
            let mut refs: Vec<(i64, i64)> = cell(&lib, "MESH")
                .elems
                .iter()
                .filter_map(|e| match e {
                    GdsElement::GdsStructRef(r) => {
                        assert_eq!(r.name, "MZI");
                        assert!(r.strans.is_none());
                        Some((r.xy.x as i64, r.xy.y as i64))
                    }
                    _ => None,
                })
                .collect();
            let mut want: Vec<(i64, i64)> = layout
                .mzis
                .iter()
                .map(|z| (z.column as i64 * l, (2 - z.mode as i64) * p))
                .collect();
            refs.sort_unstable();
            want.sort_unstable();
            assert_eq!(refs, want, "{method:?}");
        }
    }

    #[test]
    fn the_mzi_cell_has_the_sizes_of_the_tech() {
        let tech = Tech::default();
        let (buf, _) = write(&layout(4, Method::Clements), &tech);
        let lib = decode(&buf).unwrap();
        let mzi = cell(&lib, "MZI");
        let (l, h, c, w, p) = (cell_length(&tech), 100_000, 10_000, 500, 25_000);
        let s = (l - 2 * h - 2 * c) / 4;
        let arms: Vec<_> = mzi.elems.iter().filter(|e| layer(e) == 1).collect();
        let heaters: Vec<_> = mzi.elems.iter().filter(|e| layer(e) == 2).collect();
        assert_eq!((arms.len(), heaters.len(), mzi.elems.len()), (2, 2, 4));
        // Arms: the lower from y = 0, the upper from y = p, both from x = 0 to L.
        let (lower, upper) = (points(arms[0]), points(arms[1]));
        assert_eq!(extent(&lower), [0, -w / 2, l, 12_150 + w / 2]);
        assert_eq!(extent(&upper), [0, p - 12_150 - w / 2, l, p + w / 2]);
        // In both couplers the arms are coupler_gap (200 nm) apart, edge to edge.
        for x0 in [h + s, h + 3 * s + c + h] {
            let inside = |q: &&(i64, i64)| (x0..=x0 + c).contains(&q.0);
            let top_of_lower = lower.iter().filter(inside).map(|q| q.1).max().unwrap();
            let bottom_of_upper = upper.iter().filter(inside).map(|q| q.1).min().unwrap();
            assert_eq!(bottom_of_upper - top_of_lower, 200, "coupler at {x0}");
        }
        // φ heater over the upper input arm, θ heater over the upper arm between the couplers.
        let (phi, theta) = (extent(&points(heaters[0])), extent(&points(heaters[1])));
        assert_eq!(phi, [0, p - 1000, h, p + 1000]);
        let x = h + 2 * s + c;
        assert_eq!(theta, [x, p - 1000, x + h, p + 1000]);
        // Bends are drawn finely: every step between neighbouring vertices is along a straight
        // (horizontal) or shorter than 1 µm.
        assert!(lower.windows(2).chain(upper.windows(2)).all(|v| {
            let (dx, dy) = (v[1].0 - v[0].0, v[1].1 - v[0].1);
            dy == 0 || dx.abs().max(dy.abs()) < 1_000
        }));
    }

    #[test]
    fn every_mode_is_a_continuous_waveguide_from_input_to_output() {
        // A Reck mesh leaves many modes without an MZI in a column; with a column pitch longer
        // than the cell there are also gaps between the columns.
        let tech = Tech {
            column_pitch_m: Some(400e-6),
            ..Tech::default()
        };
        let (n, l, pitch) = (5, cell_length(&tech), 400_000);
        let layout = layout(n, Method::Reck);
        let (buf, stats) = write(&layout, &tech);
        check_mesh_gds(&buf, &layout, &tech).unwrap();
        let lib = decode(&buf).unwrap();
        let top = cell(&lib, "MESH");
        let end = (stats.columns as i64 - 1) * pitch + l + 100_000;
        assert!((stats.width_um - end as f64 / 1e3).abs() < 1e-9);
        for m in 0..n {
            let y = (n - 1 - m) as i64 * 25_000;
            let mut spans: Vec<(i64, i64)> = top
                .elems
                .iter()
                .filter(|e| layer(e) == 1)
                .map(|e| extent(&points(e)))
                .filter(|b| b[1] == y - 250 && b[3] == y + 250)
                .map(|b| (b[0], b[2]))
                .collect();
            spans.extend(
                layout
                    .mzis
                    .iter()
                    .filter(|z| z.mode == m || z.mode + 1 == m)
                    .map(|z| (z.column as i64 * pitch, z.column as i64 * pitch + l)),
            );
            spans.sort_unstable();
            let mut x = 0;
            for (a, b) in spans {
                assert_eq!(a, x, "mode {m}: gap or overlap at {x}");
                x = b;
            }
            assert_eq!(x, end, "mode {m}");
            // The output phase heater sits on the last stretch.
            assert!(
                top.elems.iter().any(|e| layer(e) == 2
                    && extent(&points(e)) == [end - 100_000, y - 1000, end, y + 1000])
            );
        }
    }

    #[test]
    fn svd_meshes_get_an_attenuator_cell_per_mode() {
        let m = CMatrix {
            rows: 3,
            cols: 4,
            data: (0..12)
                .map(|i| num_complex::Complex64::new(i as f64 - 5.0, (i % 3) as f64))
                .collect(),
        };
        let (mesh, _) = decompose_svd(&m, Method::Clements).unwrap();
        let layout = Layout::new(&mesh, Convention::Photonflow, "svd", 0.0, 0.0, "test");
        let tech = Tech::default();
        let (buf, stats) = write(&layout, &tech);
        assert_eq!((stats.mzis, stats.attenuators, stats.modes), (12, 4, 4));
        let check = check_mesh_gds(&buf, &layout, &tech).unwrap();
        assert_eq!((check.mzis, check.attenuators), (12, 4));
        let lib = decode(&buf).unwrap();
        // Same length as the MZI, arms half a pitch apart.
        let att = cell(&lib, "ATTENUATOR");
        let b = extent(&points(&att.elems[1]));
        assert_eq!(b, [0, 12_500 - 5_900 - 250, cell_length(&tech), 12_750]);
        let column = layout.attenuators[0].column as i64 * cell_length(&tech);
        for a in &layout.attenuators {
            let y = (3 - a.mode as i64) * 25_000 - 12_500;
            assert!(cell(&lib, "MESH").elems.iter().any(|e| matches!(e,
                GdsElement::GdsStructRef(r) if r.name == "ATTENUATOR"
                    && (r.xy.x as i64, r.xy.y as i64) == (column, y))));
        }
    }

    #[test]
    fn polygons_stay_far_below_the_gdsii_point_limit() {
        let (buf, _) = write(&layout(4, Method::Clements), &Tech::default());
        let check = check_mesh_gds(&buf, &layout(4, Method::Clements), &Tech::default()).unwrap();
        assert!(check.max_points < 1000, "{check:?}");
        // Huge bends need more chords than allowed: capped at 256 per arc.
        let tech = Tech {
            bend_radius_m: 5e-3,
            mode_pitch_m: 1e-3,
            heater_width_m: 10e-6,
            ..Tech::default()
        };
        let layout = layout(3, Method::Clements);
        let (buf, _) = write(&layout, &tech);
        let check = check_mesh_gds(&buf, &layout, &tech).unwrap();
        assert!(check.max_points <= 4107, "{check:?}");
        assert!(check.max_points < MAX_POINTS / 2);
    }

    #[test]
    fn a_technology_file_is_read_with_units_and_defaults() {
        let tech = Tech::from_toml(
            "waveguide_width = \"450nm\"\nmode_pitch = \"0.03mm\"\ncolumn_pitch = \"500um\"\n\
             heater_layer = 47\n",
        )
        .unwrap();
        assert_eq!(tech.waveguide_width_m, 450e-9);
        assert!((tech.mode_pitch_m - 30e-6).abs() < 1e-18);
        assert_eq!(tech.column_pitch_m, Some(500e-6));
        assert_eq!(tech.heater_layer, 47);
        assert_eq!(tech.bend_radius_m, Tech::default().bend_radius_m);
        assert_eq!(Tech::from_toml("").unwrap(), Tech::default());
    }

    #[test]
    fn a_bad_technology_is_refused_naming_the_key() {
        for (toml, needles) in [
            (
                "bend_radius = \"5um\"",
                &["bend_radius", "too small", "6.075um"][..],
            ),
            (
                "bend_radius = \"0.2um\"",
                &["bend_radius", "waveguide_width"],
            ),
            ("waveguide_width = \"0.5\"", &["waveguide_width", "no unit"]),
            ("coupler_gap = \"0um\"", &["coupler_gap", "at least 1 nm"]),
            ("heater_length = \"-3um\"", &["heater_length", "positive"]),
            ("mode_pitch = \"1um\"", &["mode_pitch", "2·(coupler_gap"]),
            (
                "heater_width = \"20um\"",
                &["heater_width", "half the mode_pitch"],
            ),
            (
                "column_pitch = \"300um\"",
                &["column_pitch", "shorter than the MZI cell"],
            ),
            (
                "heater_length = \"1.5m\"",
                &["heater_length", "coordinate range"],
            ),
            ("label_layer = 2", &["label_layer", "heater_layer"]),
            ("waveguide_layer = 40000", &["waveguide_layer", "32767"]),
            ("waveguide_layer = -1", &["waveguide_layer"]),
            ("pitch = \"25um\"", &["unknown field", "pitch"]),
        ] {
            let e = Tech::from_toml(toml).unwrap_err().to_string();
            for n in needles {
                assert!(e.contains(n), "{toml}: {e}");
            }
        }
    }

    #[test]
    fn layouts_that_do_not_fit_are_refused_without_panicking() {
        let tech = Tech::default();
        let mut bad = layout(4, Method::Clements);
        bad.mzis[0].mode = 3;
        let e = write_mesh_gds(&bad, &tech, LayoutFormat::Gds, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        let mut bad = layout(4, Method::Clements);
        bad.mzis[1].column = bad.mzis[0].column;
        bad.mzis[1].mode = bad.mzis[0].mode + 1;
        let e = write_mesh_gds(&bad, &tech, LayoutFormat::Gds, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
        let mut far = layout(4, Method::Clements);
        far.mzis[0].column = 10_000;
        let e = write_mesh_gds(&far, &tech, LayoutFormat::Gds, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("i32 range"), "{e}");
        for (column, mode) in [(usize::MAX, 0), (0, usize::MAX)] {
            let mut wild = layout(4, Method::Clements);
            (wild.mzis[0].column, wild.mzis[0].mode) = (column, mode);
            let e = write_mesh_gds(&wild, &tech, LayoutFormat::Gds, &mut Vec::new()).unwrap_err();
            assert!(e.to_string().contains("does not fit"), "{e}");
        }
        let mut tall = layout(4, Method::Clements);
        tall.n = 1 << 20;
        let e = write_mesh_gds(&tall, &tech, LayoutFormat::Gds, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("i32 range"), "{e}");
        // A file that does not match the layout is caught on reading back.
        let good = layout(4, Method::Clements);
        let (buf, _) = write(&good, &tech);
        let mut fewer = good.clone();
        fewer.mzi_count = 5;
        let e = check_mesh_gds(&buf, &fewer, &tech).unwrap_err().to_string();
        assert!(e.contains("6 references to MZI; the layout has 5"), "{e}");
        // The last MZI one column further on: still a valid layout, but not this file's.
        let mut moved = good.clone();
        let last = moved.mzis.iter_mut().max_by_key(|z| z.column).unwrap();
        last.column += 1;
        let e = check_mesh_gds(&buf, &moved, &tech).unwrap_err().to_string();
        assert!(e.contains("where the grid has one at"), "{e}");
        assert!(check_mesh_gds(b"junk", &good, &tech).is_err());
    }

    #[test]
    fn a_single_mode_is_a_straight_waveguide_with_its_phase_heater() {
        let mesh = decompose(&haar_unitary(1, &mut Rng::new(1)), Method::Clements, 1e-9).unwrap();
        let layout = Layout::new(&mesh, Convention::Photonflow, "clements", 0.0, 0.0, "test");
        let (buf, stats) = write(&layout, &Tech::default());
        assert_eq!((stats.mzis, stats.columns, stats.width_um), (0, 0, 100.0));
        check_mesh_gds(&buf, &layout, &Tech::default()).unwrap();
    }
}
