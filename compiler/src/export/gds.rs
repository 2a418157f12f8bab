//! GDSII and OASIS export of multilevel lithography masks for diffractive elements.
//!
//! A diffractive element is described by one [`LevelMap`] per optical layer.
//! [`write_gds`] turns the maps into a layout library (one cell per optical
//! layer) written as GDSII or OASIS ([`GdsOptions::format`]), [`read_gds`]
//! reads either back and [`rasterise`] turns a cell back into a level map, so
//! a test can prove that a file holds exactly the designed pixels. The GDSII
//! stream is encoded and decoded by `gds21`, OASIS by [`super::oasis`]; both
//! carry the same cells, layers and rectangles.
//!
//! # Conventions
//!
//! * **Level map.** `nx × ny` pixels stored row-major: pixel `(r, c)` is
//!   `levels[r * nx + c]`, with `0 ≤ level < count` (`count` = L ≥ 2 levels;
//!   `u16` allows up to 65 535). Pixel pitches `dx`, `dy` are in metres.
//! * **Geometry.** In the mask's own frame pixel `(r, c)` covers
//!   `x ∈ [c·dx, (c+1)·dx)`, `y ∈ [r·dy, (r+1)·dy)`: columns run along +x,
//!   rows along +y (row 0 is at the bottom, as seen in a layout viewer).
//! * **Units.** All coordinates are integers in *database units* (DBU);
//!   [`GdsOptions::db_unit_m`] (default 1 nm) is the DBU in metres and
//!   [`GdsOptions::user_unit_m`] (default 1 µm) the user unit shown by layout
//!   viewers. Both are written to the `UNITS` record and read back exactly.
//!   Each pitch must be a whole number of DBU (`dx_db = dx / db_unit_m`),
//!   otherwise [`GdsError::BadPitch`] suggests a DBU that would work.
//! * **Placement.** The mask is centred on the origin as far as the database
//!   grid allows: its lower-left corner is at
//!   `(−floor(nx·dx_db / 2), −floor(ny·dy_db / 2))` DBU, so it spans
//!   `x ∈ [−floor(W/2), ceil(W/2)]` with `W = nx·dx_db` (likewise in y). The
//!   centre is exactly at the origin when `W` is even, ½ DBU off otherwise.
//!   Every coordinate, alignment marks included, must fit in `i32`.
//! * **Cells.** One GDSII structure per level map, named [`LevelMap::name`]
//!   (1–32 characters from `[A-Za-z0-9_?$]`, unique in the library; the
//!   library name obeys the same rule).
//! * **Layers** ([`GdsMode`]), always datatype 0:
//!   * `Levels`: the pixels of level `k ∈ 1..L` go on GDS layer `k`; level 0
//!     is left empty. Needs `L ≤ 32 768` (GDS layers are 16-bit signed).
//!   * `BinaryMasks`: for a process of `B = ceil(log2 L)` binary etch steps,
//!     mask `b ∈ 0..B` holds the pixels whose level has bit `b` set and goes
//!     on GDS layer `b + 1`. Mask `b` etches `2^b` times one level's depth,
//!     so a pixel of level `k` ends up `k` level depths deep.
//! * **Polygons.** Pixels are merged into rectangles: each row is cut into
//!   runs of equal value, and a run identical (same columns, same value) to
//!   an open rectangle of the previous row extends it. Every polygon is a
//!   closed 5-point rectangle, far below the GDSII limit of 8 191 points.
//! * **Alignment marks** (optional, [`GdsOptions::alignment_marks`] = GDS
//!   layer): with `p = max(dx_db, dy_db)`, each cell gets in each corner a
//!   cross of two overlapping `20p × 2p` rectangles centred `20p` outside the
//!   mask corner along both axes, so the nearest mark edge is `10p` away
//!   from the mask.
//! * **OASIS** ([`LayoutFormat::Oasis`]): the same cells and rectangles as
//!   `RECTANGLE` records, positions relative to the previous one, compressed
//!   (see [`super::oasis`]); the unit is the database unit, the user unit,
//!   library name and dates are not stored.
//! * **Dates.** The library and cells carry a modification date:
//!   [`GdsOptions::timestamp`], else `$SOURCE_DATE_EPOCH` (seconds since
//!   1970, UTC), else the current time; fix it for reproducible files.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufWriter, Write};
use std::path::Path;

use gds21::{GdsBoundary, GdsDateTime, GdsElement, GdsLibrary, GdsPoint, GdsStruct, GdsUnits};

/// One optical layer as a map of etch levels (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct LevelMap<'a> {
    /// Cell name: 1–32 characters from `[A-Za-z0-9_?$]`, e.g. `"layer0"`.
    pub name: &'a str,
    /// Pixels along x (columns).
    pub nx: usize,
    /// Pixels along y (rows).
    pub ny: usize,
    /// Pixel pitch along x, metres; a whole number of database units.
    pub dx: f64,
    /// Pixel pitch along y, metres; a whole number of database units.
    pub dy: f64,
    /// Row-major levels, `levels[r * nx + c]`, each `< count`.
    pub levels: &'a [u16],
    /// Number of levels L (≥ 2).
    pub count: u16,
}

/// How levels are mapped to GDS layers (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GdsMode {
    /// Level `k ≥ 1` on GDS layer `k`; level 0 empty.
    Levels,
    /// Bit `b` of the level on GDS layer `b + 1` (one binary etch mask each).
    BinaryMasks,
}

/// The stream format of a layout file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutFormat {
    /// GDSII stream (`.gds`).
    Gds,
    /// OASIS, SEMI P39 (`.oas`): the same library, typically 5–20× smaller.
    Oasis,
}

impl LayoutFormat {
    /// The format a file name asks for by its extension (any case): `gds`, `gds2`, `gdsii` →
    /// GDSII; `oas`, `oasis` → OASIS; else `None`.
    pub fn of_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "gds" | "gds2" | "gdsii" => Some(Self::Gds),
            "oas" | "oasis" => Some(Self::Oasis),
            _ => None,
        }
    }

    /// The format of a file's bytes: OASIS if they begin with its magic string, else GDSII.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        if super::oasis::is_oasis(bytes) {
            Self::Oasis
        } else {
            Self::Gds
        }
    }

    /// `"GDSII"` or `"OASIS"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gds => "GDSII",
            Self::Oasis => "OASIS",
        }
    }

    /// The usual file extension, `"gds"` or `"oas"`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Gds => "gds",
            Self::Oasis => "oas",
        }
    }
}

/// Options of [`write_gds`].
#[derive(Debug, Clone, PartialEq)]
pub struct GdsOptions {
    /// Library name (same character rules as cell names).
    pub library: String,
    /// Database unit in metres; all coordinates are integers in this unit.
    pub db_unit_m: f64,
    /// User unit in metres (display unit of layout viewers).
    pub user_unit_m: f64,
    /// Level-to-layer mapping.
    pub mode: GdsMode,
    /// GDS layer of the alignment marks, `None` for no marks. Must be
    /// `≤ 32 767` and must not be one of the mask layers.
    pub alignment_marks: Option<u16>,
    /// Modification/access date stamped on the library and every cell, as
    /// `[year, month, day, hour, minute, second]` (UTC, year ≥ 1900);
    /// `None` stamps `$SOURCE_DATE_EPOCH`'s date if set, else the current time. A fixed date
    /// makes the output
    /// byte-for-byte reproducible (same maps and options → same bytes).
    pub timestamp: Option<[u16; 6]>,
    /// The file format: GDSII or OASIS.
    pub format: LayoutFormat,
}

impl Default for GdsOptions {
    /// Library `"PHOTONFLOW"`, DBU 1 nm, user unit 1 µm, `Levels`, no marks,
    /// current time, GDSII.
    fn default() -> Self {
        Self {
            library: "PHOTONFLOW".into(),
            db_unit_m: 1e-9,
            user_unit_m: 1e-6,
            mode: GdsMode::Levels,
            alignment_marks: None,
            timestamp: None,
            format: LayoutFormat::Gds,
        }
    }
}

/// What [`write_gds`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdsStats {
    /// Number of cells (= level maps).
    pub cells: usize,
    /// Number of polygons over all cells, alignment marks included.
    pub polygons: usize,
    /// `(GDS layer, polygons on it over all cells)`, ascending by layer;
    /// only layers holding at least one polygon are listed.
    pub polygons_per_layer: Vec<(u16, usize)>,
    /// Bytes written.
    pub bytes: u64,
}

/// A GDSII library (or OASIS file) as read by [`read_gds`].
#[derive(Debug, Clone, PartialEq)]
pub struct GdsLayout {
    /// Database unit in metres.
    pub db_unit_m: f64,
    /// User unit in metres.
    pub user_unit_m: f64,
    /// Cells in file order.
    pub cells: Vec<GdsCell>,
}

/// One GDSII structure.
#[derive(Debug, Clone, PartialEq)]
pub struct GdsCell {
    /// Structure name.
    pub name: String,
    /// Its BOUNDARY elements, in file order.
    pub polygons: Vec<Polygon>,
}

/// One GDSII BOUNDARY element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polygon {
    /// GDS layer.
    pub layer: u16,
    /// GDS datatype.
    pub datatype: u16,
    /// Vertices in database units, as stored in the file: closed, i.e. the
    /// last point repeats the first.
    pub points: Vec<(i32, i32)>,
}

/// Errors of this module; each message says what is wrong and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum GdsError {
    /// Invalid input to [`write_gds`]: no maps, a bad or duplicate name, bad
    /// units, level count, map shape or level, or an unusable mark layer.
    #[error("{subject}: {problem}")]
    Input {
        /// What is wrong, e.g. `map "layer0"` or `cell name "a b"`.
        subject: String,
        /// Why, and what is allowed.
        problem: String,
    },
    /// A pitch is not a positive whole number of database units.
    #[error(
        "map {name:?}: pitch {axis} = {pitch_m:e} m is {ratio} database units of {db_unit_m:e} m, not a positive whole number; {hint}"
    )]
    BadPitch {
        /// Map (or cell) name.
        name: String,
        /// `"dx"` or `"dy"`.
        axis: &'static str,
        /// Pitch given, metres.
        pitch_m: f64,
        /// Database unit, metres.
        db_unit_m: f64,
        /// `pitch_m / db_unit_m`.
        ratio: f64,
        /// A database unit that would work, or advice.
        hint: String,
    },
    /// Some coordinate would not fit in the 32-bit GDSII range.
    #[error(
        "map {name:?}: coordinates reach {extent_db} database units, beyond the GDSII i32 range; use a larger database unit or a smaller mask"
    )]
    CoordinateOverflow {
        /// Map (or cell) name.
        name: String,
        /// Largest absolute coordinate needed, database units.
        extent_db: i128,
    },
    /// [`read_gds`] met an element other than a BOUNDARY, or a negative
    /// layer or datatype.
    #[error("cell {cell:?}: {problem}")]
    Unsupported {
        /// Cell name.
        cell: String,
        /// What was found.
        problem: String,
    },
    /// [`rasterise`] met a polygon it cannot map onto the pixel grid: not a
    /// rectangle, off the grid, outside the mask, not a mask layer or
    /// datatype, or covering a pixel that is already covered.
    #[error("cell {cell:?}: polygon #{index} on layer {layer}: {problem}")]
    BadPolygon {
        /// Cell name.
        cell: String,
        /// Index in [`GdsCell::polygons`].
        index: usize,
        /// Its layer.
        layer: u16,
        /// What is wrong.
        problem: String,
    },
    /// A library read back does not hold what was written (see
    /// [`crate::mesh::gds::check_mesh_gds`]).
    #[error("cell {cell:?} read back: {problem}")]
    ReadBack {
        /// Cell name.
        cell: String,
        /// What differs.
        problem: String,
    },
    /// Encoding or decoding by `gds21` failed (corrupt or unsupported file).
    #[error("GDSII {0}")]
    Codec(String),
    /// Writing to the destination failed.
    #[error("writing the GDSII stream failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for an [`GdsError::Input`].
pub(crate) fn input(subject: impl Into<String>, problem: impl Into<String>) -> GdsError {
    GdsError::Input {
        subject: subject.into(),
        problem: problem.into(),
    }
}

/// Highest GDS layer usable here (GDSII layers are 16-bit signed).
pub(crate) const MAX_LAYER: u16 = i16::MAX as u16;

/// Number of binary etch masks `ceil(log2 count)` for `count ≥ 2` levels.
fn mask_bits(count: u16) -> u16 {
    (16 - count.saturating_sub(1).leading_zeros()) as u16
}

/// Highest GDS layer the masks of a `count`-level map use.
fn max_mask_layer(count: u16, mode: GdsMode) -> u16 {
    match mode {
        GdsMode::Levels => count.saturating_sub(1),
        GdsMode::BinaryMasks => mask_bits(count),
    }
}

/// What is wrong with alignment marks on GDS layer `marks` beside the masks of `maps`
/// written in `mode` (layers `1 ..=` the highest any of them uses), if anything.
pub(crate) fn marks_problem(
    marks: Option<u16>,
    maps: &[LevelMap],
    mode: GdsMode,
) -> Option<String> {
    let layer = marks?;
    let max_layer = (maps.iter().map(|m| max_mask_layer(m.count, mode)))
        .max()
        .unwrap_or(0);
    (layer > MAX_LAYER || (1..=max_layer).contains(&layer)).then(|| {
        format!(
            "layer {layer}: give a GDS layer ≤ {MAX_LAYER} that is not one of the mask layers \
             1 … {max_layer}"
        )
    })
}

fn check_name(what: &'static str, name: &str) -> Result<(), GdsError> {
    let problem = if name.is_empty() {
        "it is empty"
    } else if name.len() > 32 {
        "it is longer than 32 characters"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_?$".contains(c))
    {
        "only the characters A-Z a-z 0-9 _ ? $ are allowed"
    } else {
        return Ok(());
    };
    Err(input(format!("{what} name {name:?}"), problem))
}

/// `pitch_m / unit_m` if it is a whole number (to 1e-6), else `None`.
fn whole_units(pitch_m: f64, unit_m: f64) -> Option<i64> {
    let q = pitch_m / unit_m;
    let n = q.round();
    (q.is_finite() && (1.0..1e15).contains(&n) && (q - n).abs() <= 1e-6).then_some(n as i64)
}

/// Pixel grid of a mask in database units, with the placement convention.
struct Grid {
    nx: usize,
    ny: usize,
    dx: i64,
    dy: i64,
    /// Lower-left corner of the mask.
    ox: i64,
    oy: i64,
}

impl Grid {
    /// Grid of `nx × ny` pixels of pitch `dx_m × dy_m` (metres). Checks the
    /// pitches and that the mask plus `margin · max(dx, dy)` around it fits
    /// in `i32`.
    fn new(
        name: &str,
        (nx, ny): (usize, usize),
        (dx_m, dy_m): (f64, f64),
        db_unit_m: f64,
        margin: i64,
    ) -> Result<Self, GdsError> {
        let pitch = |axis, pitch_m: f64| {
            whole_units(pitch_m, db_unit_m).ok_or_else(|| {
                let start = db_unit_m.log10().floor() as i32;
                let hint = (-15..=start)
                    .rev()
                    .map(|k| 10f64.powi(k))
                    .find(|&u| whole_units(dx_m, u).is_some() && whole_units(dy_m, u).is_some())
                    .map_or_else(
                        || "choose a pitch that is a multiple of the database unit".to_string(),
                        |u| {
                            format!("a database unit of {u:e} m would work (GdsOptions::db_unit_m)")
                        },
                    );
                GdsError::BadPitch {
                    name: name.into(),
                    axis,
                    pitch_m,
                    db_unit_m,
                    ratio: pitch_m / db_unit_m,
                    hint,
                }
            })
        };
        let (dx, dy) = (pitch("dx", dx_m)?, pitch("dy", dy_m)?);
        let (w, h) = (nx as i128 * dx as i128, ny as i128 * dy as i128);
        let m = margin as i128 * dx.max(dy) as i128;
        let extent_db = (w - w / 2 + m).max(h - h / 2 + m);
        if extent_db > i32::MAX as i128 {
            return Err(GdsError::CoordinateOverflow {
                name: name.into(),
                extent_db,
            });
        }
        let (ox, oy) = (-(w / 2) as i64, -(h / 2) as i64);
        Ok(Self {
            nx,
            ny,
            dx,
            dy,
            ox,
            oy,
        })
    }

    /// Closed rectangle `[x0, x1] × [y0, y1]` (DBU) as a GDS boundary.
    fn boundary(layer: u16, x0: i64, y0: i64, x1: i64, y1: i64) -> GdsElement {
        // In range: `Grid::new` checked the extent.
        let [x0, y0, x1, y1] = [x0, y0, x1, y1].map(|v| v as i32);
        boundary(layer, &[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    }

    /// Pixel rectangle (columns `c0..c1`, rows `r0..r1`) as a GDS boundary.
    fn pixels(&self, layer: u16, r: &Rect) -> GdsElement {
        let x = |c: usize| self.ox + c as i64 * self.dx;
        let y = |r: usize| self.oy + r as i64 * self.dy;
        Self::boundary(layer, x(r.c0), y(r.r0), x(r.c1), y(r.r1))
    }

    /// The four alignment crosses (eight rectangles), see the module docs.
    fn marks(&self, layer: u16) -> impl Iterator<Item = GdsElement> {
        let p = self.dx.max(self.dy);
        let (x1, y1) = (
            self.ox + self.nx as i64 * self.dx,
            self.oy + self.ny as i64 * self.dy,
        );
        let corners = [
            (self.ox - 20 * p, self.oy - 20 * p),
            (x1 + 20 * p, self.oy - 20 * p),
        ];
        let corners = corners
            .into_iter()
            .chain([(self.ox - 20 * p, y1 + 20 * p), (x1 + 20 * p, y1 + 20 * p)]);
        corners.flat_map(move |(cx, cy)| {
            [
                Self::boundary(layer, cx - 10 * p, cy - p, cx + 10 * p, cy + p),
                Self::boundary(layer, cx - p, cy - 10 * p, cx + p, cy + 10 * p),
            ]
        })
    }

    /// Pixel span `i0..i1` of the DBU interval `[lo, hi]` on an axis with
    /// origin `o`, pitch `d` and `n` pixels.
    fn span(lo: i64, hi: i64, o: i64, d: i64, n: usize) -> Result<(usize, usize), String> {
        if (lo - o) % d != 0 || (hi - o) % d != 0 {
            return Err(format!(
                "edge at {lo} or {hi} DBU is not on the pixel grid (origin {o}, pitch {d} DBU)"
            ));
        }
        let (i0, i1) = ((lo - o) / d, (hi - o) / d);
        if i0 < 0 || i1 > n as i64 {
            return Err(format!("pixels {i0}..{i1} reach outside the mask's 0..{n}"));
        }
        Ok((i0 as usize, i1 as usize))
    }
}

/// A BOUNDARY on GDS `layer` (≤ [`MAX_LAYER`]), datatype 0, through `points` (DBU), closed
/// by repeating the first point.
pub(crate) fn boundary(layer: u16, points: &[(i32, i32)]) -> GdsElement {
    GdsElement::GdsBoundary(GdsBoundary {
        layer: layer as i16,
        datatype: 0,
        xy: points
            .iter()
            .chain(points.first())
            .map(|&(x, y)| GdsPoint::new(x, y))
            .collect(),
        ..Default::default()
    })
}

/// The `UNITS` record of a database unit `db_unit_m` and a user unit `user_unit_m` (metres):
/// `(DBU in user units, DBU in metres)`.
pub(crate) fn gds_units(db_unit_m: f64, user_unit_m: f64) -> GdsUnits {
    GdsUnits::new(db_unit_m / user_unit_m, db_unit_m)
}

/// `(database unit, user unit)` in metres of a `UNITS` record. Not `GdsUnits::user_unit`,
/// which in gds21 3.0.0-pre.2 returns the reciprocal of the user unit.
pub(crate) fn units_m(units: &GdsUnits) -> (f64, f64) {
    let GdsUnits(db_in_user, db_unit_m) = *units;
    (db_unit_m, db_unit_m / db_in_user)
}

/// The date of `$SOURCE_DATE_EPOCH` (seconds since 1970, UTC), the reproducible-builds
/// convention: with it set, the same design gives the same GDS bytes.
fn source_date() -> Option<[u16; 6]> {
    let secs: i64 = std::env::var("SOURCE_DATE_EPOCH")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fields = [year, month, day, rest / 3600, rest % 3600 / 60, rest % 60];
    let mut out = [0u16; 6];
    for (o, f) in out.iter_mut().zip(fields) {
        *o = u16::try_from(f).ok()?;
    }
    Some(out)
}

/// The GDS date of `timestamp` (`[year ≥ 1900, month, day, hour, minute, second]`, UTC), or
/// for `None` that of `$SOURCE_DATE_EPOCH`, else the current time.
pub(crate) fn gds_date(timestamp: Option<[u16; 6]>) -> Result<GdsDateTime, GdsError> {
    match timestamp.or_else(source_date) {
        None => Ok(GdsDateTime::now()),
        Some([y, mo, d, h, mi, s])
            if (1900..=1900 + i16::MAX as u16).contains(&y)
                && (1..=12).contains(&mo)
                && (1..=31).contains(&d)
                && h < 24
                && mi < 60
                && s < 60 =>
        {
            let [month, day, hour, minute, second] = [mo, d, h, mi, s].map(|v| v as i16);
            let year = (y - 1900) as i16;
            Ok(GdsDateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
            })
        }
        Some(t) => {
            let why =
                "expected [year ≥ 1900, month 1-12, day 1-31, hour 0-23, minute 0-59, second 0-59]";
            Err(input(format!("timestamp {t:?}"), why))
        }
    }
}

/// Encodes `lib` to `w` as `format` (buffered; flushed on success) and returns the bytes
/// written.
pub(crate) fn encode(
    lib: &GdsLibrary,
    format: LayoutFormat,
    w: &mut impl Write,
) -> Result<u64, GdsError> {
    if format == LayoutFormat::Oasis {
        return super::oasis::encode(lib, w);
    }
    let mut out = Counting {
        inner: BufWriter::new(w),
        bytes: 0,
    };
    lib.write(&mut out)
        .map_err(|e| GdsError::Codec(format!("encoding failed: {e}")))?;
    out.flush()?;
    Ok(out.bytes)
}

/// Decodes a GDSII stream or an OASIS file (told apart by OASIS's magic string).
pub(crate) fn decode(bytes: &[u8]) -> Result<GdsLibrary, GdsError> {
    if LayoutFormat::of_bytes(bytes) == LayoutFormat::Oasis {
        return super::oasis::decode(bytes);
    }
    GdsLibrary::from_bytes(bytes).map_err(|e| GdsError::Codec(format!("decoding failed: {e}")))
}

/// Pixel rectangle: columns `c0..c1`, rows `r0..r1` (half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    c0: usize,
    c1: usize,
    r0: usize,
    r1: usize,
}

/// Merges the pixels of an `nx`-wide row-major map into rectangles of equal
/// `key(level)`, skipping key 0, and calls `emit(key, rect)` for each.
fn merge_rects(
    nx: usize,
    levels: &[u16],
    key: impl Fn(u16) -> u16,
    mut emit: impl FnMut(u16, Rect),
) {
    // Open rectangles from the previous row: (c0, c1, key, r0), sorted by c0.
    let mut open: Vec<(usize, usize, u16, usize)> = Vec::new();
    let mut next = Vec::new();
    let mut close =
        |(c0, c1, k, r0): (usize, usize, u16, usize), r1| emit(k, Rect { c0, c1, r0, r1 });
    for (r, row) in levels.chunks_exact(nx).enumerate() {
        let mut i = 0;
        let mut c0 = 0;
        while c0 < nx {
            let k = key(row[c0]);
            let c1 = c0 + row[c0..].iter().take_while(|&&v| key(v) == k).count();
            if k != 0 {
                let mut r0 = r;
                while i < open.len() && open[i].0 <= c0 {
                    let o = open[i];
                    i += 1;
                    if o == (c0, c1, k, o.3) {
                        r0 = o.3;
                        break;
                    }
                    close(o, r);
                }
                next.push((c0, c1, k, r0));
            }
            c0 = c1;
        }
        open[i..].iter().for_each(|&o| close(o, r));
        std::mem::swap(&mut open, &mut next);
        next.clear();
    }
    let ny = levels.len() / nx;
    open.into_iter().for_each(|o| close(o, ny));
}

fn check_map(m: &LevelMap, mode: GdsMode) -> Result<(), GdsError> {
    check_name("cell", m.name)?;
    let subject = format!("map {:?}", m.name);
    let bad_count = |why| {
        input(
            &subject,
            format!("level count {} is invalid: {why}", m.count),
        )
    };
    if m.count < 2 {
        return Err(bad_count("at least 2 levels are needed"));
    }
    if mode == GdsMode::Levels && m.count - 1 > MAX_LAYER {
        return Err(bad_count(
            "Levels mode puts level k on GDS layer k ≤ 32767; use BinaryMasks",
        ));
    }
    if m.nx == 0 || m.ny == 0 || m.nx.checked_mul(m.ny) != Some(m.levels.len()) {
        let (len, nx, ny) = (m.levels.len(), m.nx, m.ny);
        let why = format!(
            "levels has {len} entries for nx × ny = {nx} × {ny}; nx, ny must be ≥ 1 and levels.len() = nx·ny"
        );
        return Err(input(subject, why));
    }
    match m.levels.iter().position(|&l| l >= m.count) {
        Some(i) => Err(input(
            subject,
            format!(
                "pixel (row {}, col {}) has level {}, but levels must be < count = {}",
                i / m.nx,
                i % m.nx,
                m.levels[i],
                m.count
            ),
        )),
        None => Ok(()),
    }
}

/// `io::Write` adaptor counting the bytes passed through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `maps` as a GDSII library or OASIS file ([`GdsOptions::format`]) to
/// `w` (buffered internally; flushed on success), one cell per map, following
/// the module conventions. All input is validated before anything is written.
pub fn write_gds(
    w: &mut impl Write,
    maps: &[LevelMap],
    opts: &GdsOptions,
) -> Result<GdsStats, GdsError> {
    let (db, user) = (opts.db_unit_m, opts.user_unit_m);
    if !(db.is_finite() && db > 0.0 && user.is_finite() && user > 0.0) {
        let why = format!(
            "db_unit_m = {db:e}, user_unit_m = {user:e}; both must be positive finite lengths in metres"
        );
        return Err(input("GDS units", why));
    }
    check_name("library", &opts.library)?;
    if maps.is_empty() {
        return Err(input(
            "level maps",
            "none given; a GDS library needs at least one cell",
        ));
    }
    let mut names = HashSet::new();
    let mut grids = Vec::with_capacity(maps.len());
    let margin = if opts.alignment_marks.is_some() {
        30
    } else {
        0
    };
    for m in maps {
        check_map(m, opts.mode)?;
        if !names.insert(m.name) {
            let why = "used twice; cell names must be unique in a library";
            return Err(input(format!("cell name {:?}", m.name), why));
        }
        grids.push(Grid::new(m.name, (m.nx, m.ny), (m.dx, m.dy), db, margin)?);
    }
    if let Some(problem) = marks_problem(opts.alignment_marks, maps, opts.mode) {
        return Err(input("alignment marks", problem));
    }

    let date = gds_date(opts.timestamp)?;
    let mut lib = GdsLibrary::new(opts.library.as_str());
    lib.units = gds_units(db, user);
    let mut per_layer = BTreeMap::new();
    for (m, g) in maps.iter().zip(&grids) {
        let mut cell = GdsStruct::new(m.name);
        let mut push = |layer: u16, r: Rect| {
            cell.elems.push(g.pixels(layer, &r));
            *per_layer.entry(layer).or_insert(0) += 1;
        };
        match opts.mode {
            GdsMode::Levels => merge_rects(m.nx, m.levels, |l| l, &mut push),
            GdsMode::BinaryMasks => {
                for b in 0..mask_bits(m.count) {
                    merge_rects(m.nx, m.levels, |l| (l >> b) & 1, |_, r| push(b + 1, r));
                }
            }
        }
        if let Some(layer) = opts.alignment_marks {
            cell.elems.extend(g.marks(layer));
            *per_layer.entry(layer).or_insert(0) += 8;
        }
        lib.structs.push(cell);
    }
    lib.set_all_dates(date);
    let bytes = encode(&lib, opts.format, w)?;
    Ok(GdsStats {
        cells: maps.len(),
        polygons: per_layer.values().sum(),
        polygons_per_layer: per_layer.into_iter().collect(),
        bytes,
    })
}

/// Reads a GDSII library or an OASIS file (told apart by OASIS's magic string).
/// Only BOUNDARY elements (OASIS rectangles and polygons) with non-negative
/// layer and datatype are accepted; anything else is [`GdsError::Unsupported`].
pub fn read_gds(bytes: &[u8]) -> Result<GdsLayout, GdsError> {
    let lib = decode(bytes)?;
    let cells = lib
        .structs
        .into_iter()
        .map(|s| {
            let polygons = s
                .elems
                .into_iter()
                .map(|e| {
                    let unsupported = |kind| GdsError::Unsupported {
                        cell: s.name.clone(),
                        problem: format!(
                            "{kind} element; only BOUNDARY (polygon) elements are supported"
                        ),
                    };
                    let b = match e {
                        GdsElement::GdsBoundary(b) => b,
                        GdsElement::GdsPath(_) => return Err(unsupported("PATH")),
                        GdsElement::GdsStructRef(_) => return Err(unsupported("SREF")),
                        GdsElement::GdsArrayRef(_) => return Err(unsupported("AREF")),
                        GdsElement::GdsTextElem(_) => return Err(unsupported("TEXT")),
                        GdsElement::GdsNode(_) => return Err(unsupported("NODE")),
                        GdsElement::GdsBox(_) => return Err(unsupported("BOX")),
                    };
                    let negative = || GdsError::Unsupported {
                        cell: s.name.clone(),
                        problem: format!(
                            "BOUNDARY on layer {}, datatype {}; negative numbers are not supported",
                            b.layer, b.datatype
                        ),
                    };
                    Ok(Polygon {
                        layer: u16::try_from(b.layer).map_err(|_| negative())?,
                        datatype: u16::try_from(b.datatype).map_err(|_| negative())?,
                        points: b.xy.iter().map(|p| (p.x, p.y)).collect(),
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(GdsCell {
                name: s.name,
                polygons,
            })
        })
        .collect::<Result<_, GdsError>>()?;
    let (db_unit_m, user_unit_m) = units_m(&lib.units);
    Ok(GdsLayout {
        db_unit_m,
        user_unit_m,
        cells,
    })
}

/// `(x0, y0, x1, y1)` if `points` is an axis-aligned, non-degenerate
/// rectangle (4 corners, optionally closed by repeating the first).
fn as_rectangle(points: &[(i32, i32)]) -> Option<(i64, i64, i64, i64)> {
    let p = match points {
        [a, .., z] if points.len() == 5 && a == z => &points[..4],
        _ if points.len() == 4 => points,
        _ => return None,
    };
    let axis_aligned = (0..4).all(|i| {
        let (a, b) = (p[i], p[(i + 1) % 4]);
        (a.0 == b.0) != (a.1 == b.1)
    });
    let x0 = p.iter().map(|q| q.0).min()?;
    let y0 = p.iter().map(|q| q.1).min()?;
    let x1 = p.iter().map(|q| q.0).max()?;
    let y1 = p.iter().map(|q| q.1).max()?;
    axis_aligned.then_some((x0 as i64, y0 as i64, x1 as i64, y1 as i64))
}

/// Rasterises `cell` back to a row-major level map of `nx × ny` pixels of
/// pitch `dx`, `dy` (metres), using the placement convention of the module
/// docs and the database unit of `layout`. In `Levels` mode a pixel under a
/// layer-`k` polygon gets level `k`; in `BinaryMasks` mode layer `b + 1` sets
/// bit `b`. Uncovered pixels are level 0.
///
/// Every polygon must be a datatype-0 rectangle on a mask layer (`≥ 1`;
/// `≤ 16` for `BinaryMasks`), aligned to the pixel grid and inside the mask;
/// no pixel may be covered twice by one layer, nor (in `Levels` mode) by two
/// layers. Alignment marks are not part of the mask: remove them first, e.g.
/// `cell.polygons.retain(|p| p.layer != mark_layer)`.
pub fn rasterise(
    cell: &GdsCell,
    layout: &GdsLayout,
    nx: usize,
    ny: usize,
    dx: f64,
    dy: f64,
    mode: GdsMode,
) -> Result<Vec<u16>, GdsError> {
    let g = Grid::new(&cell.name, (nx, ny), (dx, dy), layout.db_unit_m, 0)?;
    let mut out = vec![0u16; nx * ny];
    for (index, p) in cell.polygons.iter().enumerate() {
        let bad = |problem: String| GdsError::BadPolygon {
            cell: cell.name.clone(),
            index,
            layer: p.layer,
            problem,
        };
        if p.datatype != 0 {
            return Err(bad(format!(
                "datatype {} where mask polygons use 0",
                p.datatype
            )));
        }
        let value = match mode {
            GdsMode::Levels if p.layer >= 1 => p.layer,
            GdsMode::BinaryMasks if (1..=16).contains(&p.layer) => 1 << (p.layer - 1),
            _ => {
                return Err(bad(format!(
                    "layer {} is not a mask layer in {mode:?} mode",
                    p.layer
                )));
            }
        };
        let (x0, y0, x1, y1) = as_rectangle(&p.points)
            .ok_or_else(|| bad(format!("not an axis-aligned rectangle: {:?}", p.points)))?;
        let (c0, c1) = Grid::span(x0, x1, g.ox, g.dx, g.nx).map_err(bad)?;
        let (r0, r1) = Grid::span(y0, y1, g.oy, g.dy, g.ny).map_err(bad)?;
        for r in r0..r1 {
            for (c, px) in out[r * nx + c0..r * nx + c1].iter_mut().enumerate() {
                let by = match mode {
                    GdsMode::Levels if *px == value => " by the same layer",
                    GdsMode::Levels if *px != 0 => " by another level's layer",
                    GdsMode::BinaryMasks if *px & value != 0 => " by the same layer",
                    _ => {
                        *px |= value;
                        continue;
                    }
                };
                let col = c0 + c;
                return Err(bad(format!(
                    "covers pixel (row {r}, col {col}) already covered{by}"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use photonflow_optics::rng::Rng;

    /// `n` levels uniform in `0 … count−1`.
    fn levels(rng: &mut Rng, n: usize, count: u16) -> Vec<u16> {
        (0..n)
            .map(|_| (rng.next_u64() % count as u64) as u16)
            .collect()
    }

    fn map<'a>(name: &'a str, nx: usize, ny: usize, levels: &'a [u16], count: u16) -> LevelMap<'a> {
        LevelMap {
            name,
            nx,
            ny,
            dx: 1e-6,
            dy: 1e-6,
            levels,
            count,
        }
    }

    fn write(maps: &[LevelMap], opts: &GdsOptions) -> Result<(Vec<u8>, GdsStats), GdsError> {
        let mut buf = Vec::new();
        let stats = write_gds(&mut buf, maps, opts)?;
        Ok((buf, stats))
    }

    fn roundtrip(maps: &[LevelMap], opts: &GdsOptions) -> GdsLayout {
        let (buf, stats) = write(maps, opts).unwrap();
        assert_eq!(stats.bytes, buf.len() as u64);
        let layout = read_gds(&buf).unwrap();
        assert_eq!(LayoutFormat::of_bytes(&buf), opts.format);
        match opts.format {
            LayoutFormat::Gds => {
                assert_eq!(layout.db_unit_m, opts.db_unit_m);
                assert_eq!(
                    layout.user_unit_m, opts.user_unit_m,
                    "db {:e}",
                    layout.db_unit_m
                );
            }
            // OASIS stores grid steps per micron; its user unit is the micron.
            LayoutFormat::Oasis => {
                assert!((layout.db_unit_m / opts.db_unit_m - 1.0).abs() < 1e-12);
                assert_eq!(layout.user_unit_m, 1e-6);
            }
        }
        let names: Vec<_> = layout.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, maps.iter().map(|m| m.name).collect::<Vec<_>>());
        assert_eq!(
            stats.polygons,
            layout.cells.iter().map(|c| c.polygons.len()).sum::<usize>()
        );
        for (m, cell) in maps.iter().zip(&layout.cells) {
            let mut cell = cell.clone();
            if let Some(l) = opts.alignment_marks {
                cell.polygons.retain(|p| p.layer != l);
            }
            let back = rasterise(&cell, &layout, m.nx, m.ny, m.dx, m.dy, opts.mode).unwrap();
            assert!(
                back == m.levels,
                "cell {} differs after the round trip",
                m.name
            );
        }
        layout
    }

    #[test]
    fn roundtrip_random_maps_is_exact_in_both_modes() {
        let mut rng = Rng::new(7);
        // (count, nx, ny, dx, dy): odd, non-square, unequal pitches, odd widths in DBU.
        let shapes = [
            (2, 37, 23, 1e-6, 2.5e-6),
            (4, 23, 37, 0.8e-6, 0.4e-6),
            (8, 1, 9, 333e-9, 1e-6),
            (16, 41, 5, 1.001e-6, 7e-9),
        ];
        let data: Vec<_> = shapes
            .iter()
            .map(|s| levels(&mut rng, s.1 * s.2, s.0))
            .collect();
        let names = ["layer0", "layer1", "L2_$?", "x"];
        let maps: Vec<_> = shapes
            .iter()
            .zip(&data)
            .zip(names)
            .map(|((&(count, nx, ny, dx, dy), levels), name)| LevelMap {
                name,
                nx,
                ny,
                dx,
                dy,
                levels,
                count,
            })
            .collect();
        for (mode, format) in [GdsMode::Levels, GdsMode::BinaryMasks]
            .into_iter()
            .flat_map(|m| [(m, LayoutFormat::Gds), (m, LayoutFormat::Oasis)])
        {
            roundtrip(
                &maps,
                &GdsOptions {
                    mode,
                    format,
                    ..Default::default()
                },
            );
            let opts = GdsOptions {
                mode,
                db_unit_m: 1e-10,
                user_unit_m: 1e-3,
                library: "LIB2".into(),
                alignment_marks: Some(200),
                timestamp: Some([1999, 12, 31, 23, 59, 59]),
                format,
            };
            roundtrip(&maps, &opts);
        }
    }

    #[test]
    fn uniform_maps_give_one_polygon_per_layer_and_level_zero_none() {
        let three = vec![3u16; 30 * 20];
        let (_, s) = write(&[map("a", 30, 20, &three, 4)], &GdsOptions::default()).unwrap();
        assert_eq!((s.polygons, s.polygons_per_layer), (1, vec![(3, 1)]));
        let opts = GdsOptions {
            mode: GdsMode::BinaryMasks,
            ..Default::default()
        };
        let (_, s) = write(&[map("a", 30, 20, &three, 4)], &opts).unwrap();
        assert_eq!(s.polygons_per_layer, vec![(1, 1), (2, 1)]);
        let zero = vec![0u16; 30 * 20];
        for opts in [GdsOptions::default(), opts] {
            let (buf, s) = write(&[map("a", 30, 20, &zero, 4)], &opts).unwrap();
            assert_eq!((s.polygons, s.polygons_per_layer.len()), (0, 0));
            assert_eq!(read_gds(&buf).unwrap().cells[0].polygons, vec![]);
        }
    }

    #[test]
    fn blocks_merge_to_at_most_one_rectangle_per_block() {
        let mut rng = Rng::new(3);
        let blocks = levels(&mut rng, 400, 8);
        let levels: Vec<u16> = (0..200 * 200)
            .map(|i| blocks[(i / 200 / 10) * 20 + (i % 200) / 10])
            .collect();
        let maps = [map("blocks", 200, 200, &levels, 8)];
        let (_, s) = write(&maps, &GdsOptions::default()).unwrap();
        assert!(s.polygons <= 400, "{} polygons for 400 blocks", s.polygons);
        let binary = GdsOptions {
            mode: GdsMode::BinaryMasks,
            ..Default::default()
        };
        let (_, sb) = write(&maps, &binary).unwrap();
        assert!(
            s.polygons_per_layer.len() == 7 && sb.polygons_per_layer.iter().all(|&(_, n)| n <= 400)
        );
        roundtrip(&maps, &GdsOptions::default());
        roundtrip(&maps, &binary);
    }

    #[test]
    fn checkerboard_is_the_worst_case_one_polygon_per_set_pixel() {
        let levels: Vec<u16> = (0..21 * 20)
            .map(|i| ((i / 21 + i % 21) % 2) as u16)
            .collect();
        let maps = [map("chk", 21, 20, &levels, 2)];
        let (_, s) = write(&maps, &GdsOptions::default()).unwrap();
        assert_eq!(s.polygons, 210);
        let layout = roundtrip(&maps, &GdsOptions::default());
        for p in &layout.cells[0].polygons {
            let (x0, y0, x1, y1) = as_rectangle(&p.points).unwrap();
            assert_eq!((x1 - x0, y1 - y0), (1000, 1000));
        }
    }

    #[test]
    fn merging_rectangles_are_disjoint_and_cover_exactly() {
        // An L-shape and a notch: greedy merging must not merge across different runs.
        #[rustfmt::skip]
        let levels = [
            1, 1, 1, 0,
            1, 0, 1, 1,
            1, 1, 1, 1,
        ];
        let mut rects = Vec::new();
        merge_rects(4, &levels, |l| l, |k, r| rects.push((k, r)));
        let mut cover = [0u16; 12];
        for (k, r) in &rects {
            for row in r.r0..r.r1 {
                for c in r.c0..r.c1 {
                    cover[row * 4 + c] += k;
                }
            }
        }
        assert_eq!(cover, levels);
        assert_eq!(rects.len(), 4);
    }

    #[test]
    fn layer_k_holds_exactly_the_pixels_of_level_k() {
        let levels = levels(&mut Rng::new(11), 19 * 13, 6);
        let maps = [map("m", 19, 13, &levels, 6)];
        let layout = roundtrip(&maps, &GdsOptions::default());
        let cell = &layout.cells[0];
        assert!(
            cell.polygons
                .iter()
                .all(|p| (1..6).contains(&p.layer) && p.datatype == 0)
        );
        for k in 1..6 {
            let only = GdsCell {
                name: "m".into(),
                polygons: cell
                    .polygons
                    .iter()
                    .filter(|p| p.layer == k)
                    .cloned()
                    .collect(),
            };
            let back = rasterise(&only, &layout, 19, 13, 1e-6, 1e-6, GdsMode::Levels).unwrap();
            let want: Vec<u16> = levels.iter().map(|&l| if l == k { k } else { 0 }).collect();
            assert_eq!(back, want, "layer {k}");
        }
    }

    #[test]
    fn alignment_marks_are_on_their_layer_outside_the_mask() {
        let levels = levels(&mut Rng::new(5), 37 * 23, 4);
        let mut maps = [map("m", 37, 23, &levels, 4)];
        maps[0].dy = 2e-6;
        let opts = GdsOptions {
            alignment_marks: Some(100),
            ..Default::default()
        };
        let layout = roundtrip(&maps, &opts);
        // Mask spans x ∈ [-18500, 18500], y ∈ [-23000, 23000] DBU.
        let marks: Vec<_> = layout.cells[0]
            .polygons
            .iter()
            .filter(|p| p.layer == 100)
            .collect();
        assert_eq!(marks.len(), 8);
        let mut quadrants = [0; 4];
        for p in marks {
            let (x0, y0, x1, y1) = as_rectangle(&p.points).unwrap();
            assert!(x1 < -18500 || x0 > 18500, "mark overlaps the mask in x");
            assert!(y1 < -23000 || y0 > 23000, "mark overlaps the mask in y");
            quadrants[usize::from(x0 > 0) + 2 * usize::from(y0 > 0)] += 1;
        }
        assert_eq!(quadrants, [2, 2, 2, 2]);
        let clash = GdsOptions {
            alignment_marks: Some(3),
            ..Default::default()
        };
        assert!(
            err(&maps, &clash).contains("mask layers 1 … 3"),
            "{}",
            err(&maps, &clash)
        );
    }

    #[test]
    fn centre_placement_follows_the_documented_floor_rule() {
        let levels = [1u16; 3];
        let mut maps = [map("m", 3, 1, &levels, 2)];
        maps[0].dx = 5e-9; // W = 15 DBU → x ∈ [-7, 8]
        let layout = roundtrip(&maps, &GdsOptions::default());
        assert_eq!(
            as_rectangle(&layout.cells[0].polygons[0].points),
            Some((-7, -500, 8, 500))
        );
    }

    #[test]
    fn fixed_timestamp_is_stamped_everywhere_and_reproducible() {
        let lv = levels(&mut Rng::new(9), 64, 4);
        let maps = [map("a", 8, 8, &lv, 4), map("b", 8, 8, &lv, 4)];
        let t = Some([2024, 2, 29, 23, 59, 58]);
        let opts = GdsOptions {
            timestamp: t,
            ..Default::default()
        };
        let bytes = write(&maps, &opts).unwrap().0;
        assert_eq!(bytes, write(&maps, &opts).unwrap().0);
        // BGNLIB and each BGNSTR hold (modified, accessed), years since 1900.
        let stamp: Vec<u8> = [124u16, 2, 29, 23, 59, 58]
            .repeat(2)
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(bytes.windows(24).filter(|w| *w == stamp).count(), 3);
        let bad = GdsOptions {
            timestamp: Some([2024, 13, 1, 0, 0, 0]),
            ..Default::default()
        };
        assert!(err(&maps, &bad).contains("month 1-12"));
    }

    fn err(maps: &[LevelMap], opts: &GdsOptions) -> String {
        write(maps, opts).unwrap_err().to_string()
    }

    #[test]
    fn bad_input_is_rejected_with_a_message_naming_the_problem() {
        let d = GdsOptions::default();
        let lv = [0u16, 1, 2, 5];
        assert!(err(&[map("a", 2, 2, &lv, 4)], &d).contains("(row 1, col 1) has level 5"));
        assert!(err(&[map("a", 2, 2, &lv[..3], 8)], &d).contains("levels has 3 entries"));
        assert!(err(&[map("a", 0, 0, &[], 8)], &d).contains("nx, ny must be ≥ 1"));
        assert!(err(&[map("a", 2, 2, &[0; 4], 1)], &d).contains("at least 2 levels"));
        let many = [0u16; 4];
        assert!(err(&[map("a", 2, 2, &many, 40000)], &d).contains("use BinaryMasks"));
        let bin = GdsOptions {
            mode: GdsMode::BinaryMasks,
            ..Default::default()
        };
        assert!(write(&[map("a", 2, 2, &many, 40000)], &bin).is_ok());
        let mut m = map("a", 2, 2, &many, 2);
        m.dx = 1.5e-9;
        let e = err(&[m], &d);
        assert!(
            e.contains("pitch dx") && e.contains("1e-10 m would work"),
            "{e}"
        );
        m.dx = -1e-6;
        assert!(err(&[m], &d).contains("not a positive whole number"));
        for (name, why) in [
            ("", "empty"),
            ("a b", "allowed"),
            ("é", "allowed"),
            (&"x".repeat(33), "32"),
        ] {
            assert!(
                err(&[map(name, 2, 2, &many, 2)], &d).contains(why),
                "{name:?}"
            );
        }
        let lib = GdsOptions {
            library: "my lib".into(),
            ..Default::default()
        };
        assert!(err(&[map("a", 2, 2, &many, 2)], &lib).contains("library name"));
        let dup = [map("a", 2, 2, &many, 2), map("a", 2, 2, &many, 2)];
        assert!(err(&dup, &d).contains("used twice"));
        assert!(err(&[], &d).contains("at least one cell"));
        let units = GdsOptions {
            db_unit_m: 0.0,
            ..Default::default()
        };
        assert!(err(&[map("a", 2, 2, &many, 2)], &units).contains("db_unit_m = 0e0"));
        // 4 300 × 1 mm = 4.3 m = 4.3e9 nm: beyond i32 (±2.1e9 around the centre).
        let wide = vec![0u16; 4300];
        let mut m = map("wide", 4300, 1, &wide, 2);
        m.dx = 1e-3;
        assert!(err(&[m], &d).contains("beyond the GDSII i32 range"));
        // 4 280 × 1 mm fits (±2.14e9 nm), but not with alignment marks 30 mm beyond it.
        let mut m = map("wide", 4280, 1, &wide[..4280], 2);
        m.dx = 1e-3;
        assert!(write(&[m], &d).is_ok());
        let marks = GdsOptions {
            alignment_marks: Some(100),
            ..Default::default()
        };
        assert!(matches!(
            write(&[m], &marks),
            Err(GdsError::CoordinateOverflow { .. })
        ));
        assert!(
            read_gds(b"not a gds file")
                .unwrap_err()
                .to_string()
                .contains("decoding failed")
        );
    }

    #[test]
    fn rasterise_rejects_misaligned_overlapping_and_foreign_polygons() {
        let layout = GdsLayout {
            db_unit_m: 1e-9,
            user_unit_m: 1e-6,
            cells: vec![],
        };
        let rect = |layer, x0, y0, x1, y1| Polygon {
            layer,
            datatype: 0,
            points: vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)],
        };
        let run = |polygons: Vec<Polygon>, mode| {
            let cell = GdsCell {
                name: "c".into(),
                polygons,
            };
            rasterise(&cell, &layout, 4, 4, 1e-6, 1e-6, mode).map_err(|e| e.to_string())
        };
        let ok = run(
            vec![rect(1, -2000, -2000, 0, 0), rect(2, 0, 0, 2000, 1000)],
            GdsMode::Levels,
        )
        .unwrap();
        assert_eq!(ok, [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]);
        let e = |p, mode| run(p, mode).unwrap_err();
        assert!(
            e(vec![rect(1, -2000, -2000, 0, 1)], GdsMode::Levels).contains("not on the pixel grid")
        );
        assert!(
            e(vec![rect(1, -2000, -2000, 0, 3000)], GdsMode::Levels).contains("outside the mask")
        );
        let two = vec![
            rect(1, -2000, -2000, 0, 0),
            rect(1, -1000, -1000, 1000, 1000),
        ];
        assert!(e(two.clone(), GdsMode::Levels).contains("by the same layer"));
        assert!(e(two, GdsMode::BinaryMasks).contains("(row 1, col 1) already covered"));
        let cross = vec![
            rect(1, -2000, -2000, 0, 0),
            rect(2, -1000, -1000, 1000, 1000),
        ];
        assert!(e(cross.clone(), GdsMode::Levels).contains("another level's layer"));
        assert!(run(cross, GdsMode::BinaryMasks).is_ok());
        assert!(
            e(vec![rect(0, 0, 0, 1000, 1000)], GdsMode::Levels)
                .contains("layer 0 is not a mask layer")
        );
        assert!(
            e(vec![rect(17, 0, 0, 1000, 1000)], GdsMode::BinaryMasks).contains("not a mask layer")
        );
        let mut dt = rect(1, 0, 0, 1000, 1000);
        dt.datatype = 2;
        assert!(e(vec![dt], GdsMode::Levels).contains("datatype 2"));
        let tri = Polygon {
            layer: 1,
            datatype: 0,
            points: vec![(0, 0), (1000, 0), (0, 1000), (0, 0)],
        };
        assert!(e(vec![tri], GdsMode::Levels).contains("not an axis-aligned rectangle"));
        let bow = Polygon {
            layer: 1,
            datatype: 0,
            points: vec![(0, 0), (1000, 1000), (1000, 0), (0, 1000), (0, 0)],
        };
        assert!(e(vec![bow], GdsMode::Levels).contains("not an axis-aligned rectangle"));
    }
}
