//! OASIS (SEMI P39) encoding of a layout library: the same cells, polygons, references and
//! labels as a GDSII stream in a file many times smaller — integers of one to a few bytes,
//! each position relative to the previous element's, layers and sizes carried over from
//! element to element, and every cell's records compressed with DEFLATE. Mask shops and
//! layout tools (KLayout, Calibre, gdstk) read it; for pixel masks of millions of rectangles
//! it is the format to send.
//!
//! [`encode`] writes a [`GdsLibrary`] — the one in-memory library both photonflow's mask
//! export and its MZI-mesh layout build — and [`decode`] reads an OASIS file back into one, so
//! every check made on a GDSII library (rasterising a mask back to its level map, finding each
//! MZI at its grid position) runs unchanged on the OASIS file.
//!
//! # What is written
//!
//! * The magic string, then `START`: version `1.0`, the unit as grid steps per micron
//!   (1 µm / database unit: `1000` for 1 nm, an exact integer whenever it is one), table
//!   offsets in `END`.
//! * Per structure, in library order: `CELL` by reference number, `XYRELATIVE`, then its
//!   elements, compressed in `CBLOCK`s (raw DEFLATE, at most [`BLOCK_BYTES`] of records
//!   each). Element order is kept.
//!   * A BOUNDARY whose five points are `(x0,y0) (x1,y0) (x1,y1) (x0,y1) (x0,y0)` with
//!     `x0 < x1`, `y0 < y1` (how photonflow draws rectangles) becomes a `RECTANGLE` (a
//!     square with the `S` flag); any other BOUNDARY a `POLYGON` whose first point is the
//!     position and whose point list (type 4, g-deltas) holds the others in order, the
//!     closing point implicit.
//!   * An SREF becomes a `PLACEMENT`: record 17 for a rotation by a multiple of 90° at unit
//!     magnification (with or without reflection), else record 18 with the magnification and
//!     angle (degrees) as reals. Reflection about x before rotation, as in GDSII.
//!   * A TEXT becomes a `TEXT` with its string inline (printable ASCII).
//!   * Layer, datatype, width, height, text layer and type, the placed cell, the text string
//!     and a polygon's point list are omitted when equal to the previous element's (the
//!     modal variables of the standard).
//! * The `CELLNAME` table (implicit reference numbers, in library order) after the cells.
//! * `END`, exactly 256 bytes: the table offsets (the cell-name table strict; no other
//!   tables), padding, and a CRC-32 validation signature over the whole file up to and
//!   including the validation-scheme byte (least significant byte first).
//!
//! GDSII's library name, dates and user unit have no place in OASIS; a decoded library is
//! named `OASIS` with a user unit of 1 µm. PATH, AREF, BOX and NODE elements, text
//! presentation, width or transforms, element flags, plex numbers and properties are refused
//! with [`GdsError::Unsupported`] rather than dropped.
//!
//! # What is read
//!
//! [`decode`] reads the records above in any of their forms — cells by name or number,
//! absolute or relative positions, point lists of types 0–5, reals of types 0–7, names and
//! text strings inline or by reference, compressed or not — and checks the validation
//! signature (CRC-32 or checksum). Repetitions, paths, trapezoids, circles, properties and
//! extension records are refused by name ([`GdsError::Unsupported`]); a truncated or corrupt
//! file is a [`GdsError::Codec`] naming the byte where reading stopped.

use std::collections::HashMap;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::write::DeflateEncoder;
use gds21::{
    GdsBoundary, GdsElement, GdsLibrary, GdsPoint, GdsStrans, GdsStruct, GdsStructRef, GdsTextElem,
    GdsUnits,
};

use super::gds::GdsError;

/// The magic string every OASIS file begins with.
pub const MAGIC: &[u8] = b"%SEMI-OASIS\r\n";

/// Most bytes of uncompressed records in one `CBLOCK` (1 MiB).
pub const BLOCK_BYTES: usize = 1 << 20;

/// Most bytes one `CBLOCK` may inflate to when reading (256 MiB): a limit against corrupt or
/// hostile files; this writer stays far below it.
const MAX_BLOCK: u64 = 1 << 28;

/// Length of the `END` record.
const END_BYTES: usize = 256;

/// Record ids of SEMI P39 that this module writes or reads.
mod id {
    pub const PAD: u8 = 0;
    pub const START: u8 = 1;
    pub const END: u8 = 2;
    pub const CELLNAME: u8 = 3;
    pub const CELLNAME_REF: u8 = 4;
    pub const TEXTSTRING: u8 = 5;
    pub const TEXTSTRING_REF: u8 = 6;
    pub const CELL_REF: u8 = 13;
    pub const CELL_NAME: u8 = 14;
    pub const XYABSOLUTE: u8 = 15;
    pub const XYRELATIVE: u8 = 16;
    pub const PLACEMENT: u8 = 17;
    pub const PLACEMENT_TRANSFORM: u8 = 18;
    pub const TEXT: u8 = 19;
    pub const RECTANGLE: u8 = 20;
    pub const POLYGON: u8 = 21;
    pub const CBLOCK: u8 = 34;
}

/// Name of a record this module does not read, for error messages.
fn record_name(record: u8) -> &'static str {
    match record {
        7 | 8 => "PROPNAME",
        9 | 10 => "PROPSTRING",
        11 | 12 => "LAYERNAME",
        22 => "PATH",
        23..=25 => "TRAPEZOID",
        26 => "CTRAPEZOID",
        27 => "CIRCLE",
        28 | 29 => "PROPERTY",
        30 | 31 => "XNAME",
        32 => "XELEMENT",
        33 => "XGEOMETRY",
        _ => "unknown",
    }
}

/// Is `bytes` an OASIS file (does it begin with the magic string)?
pub fn is_oasis(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

// ------------------------------------------------------------------------------------------
// Primitive encodings (SEMI P39 §7)

/// Unsigned integer: 7 bits per byte, least significant first, high bit = more follow.
fn uint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

/// Signed integer: the magnitude shifted left by one, the sign in bit 0.
fn sint(b: &mut Vec<u8>, v: i64) {
    uint(b, (v.unsigned_abs() << 1) | u64::from(v < 0));
}

/// A string: its length, then its bytes.
fn string(b: &mut Vec<u8>, s: &[u8]) {
    uint(b, s.len() as u64);
    b.extend_from_slice(s);
}

/// A real: an exact integer (types 0/1) or reciprocal of one (2/3) where `v` is one, else an
/// IEEE double (type 7, least significant byte first).
fn real(b: &mut Vec<u8>, v: f64) {
    let exact = |x: f64| x.is_finite() && x.fract() == 0.0 && x < 9.0e15;
    let (a, negative) = (v.abs(), u8::from(v < 0.0));
    if exact(a) {
        b.push(negative);
        uint(b, a as u64);
    } else if a > 0.0 && exact(1.0 / a) && 1.0 / (1.0 / a) == a {
        b.push(2 + negative);
        uint(b, (1.0 / a) as u64);
    } else {
        b.push(7);
        b.extend_from_slice(&v.to_le_bytes());
    }
}

/// A g-delta: form 1 (one integer: magnitude, one of eight directions) along an axis or a
/// diagonal, else form 2 (|dx| with its sign, then dy as a signed integer).
fn gdelta(b: &mut Vec<u8>, dx: i64, dy: i64) {
    let (ax, ay) = (dx.unsigned_abs(), dy.unsigned_abs());
    let direction = match (dx.signum(), dy.signum()) {
        (_, 0) if dx >= 0 => Some((0, ax)),
        (0, 1) => Some((1, ay)),
        (-1, 0) => Some((2, ax)),
        (0, -1) => Some((3, ay)),
        (1, 1) if ax == ay => Some((4, ax)),
        (-1, 1) if ax == ay => Some((5, ax)),
        (-1, -1) if ax == ay => Some((6, ax)),
        (1, -1) if ax == ay => Some((7, ax)),
        _ => None,
    };
    match direction {
        Some((d, magnitude)) => uint(b, (magnitude << 4) | (d << 1)),
        None => {
            uint(b, (ax << 2) | (u64::from(dx < 0) << 1) | 1);
            sint(b, dy);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Writing

/// `io::Write` sink counting bytes and computing the CRC-32 of everything passed through.
struct Sink<W> {
    inner: W,
    crc: flate2::Crc,
    bytes: u64,
}

impl<W: Write> Sink<W> {
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.crc.update(data);
        self.bytes += data.len() as u64;
        self.inner.write_all(data)
    }
}

/// The modal variables of the standard, as the writer (and reader) keep them within a cell.
#[derive(Default)]
struct Modal {
    layer: Option<u64>,
    datatype: Option<u64>,
    width: Option<u64>,
    height: Option<u64>,
    text_layer: Option<u64>,
    text_type: Option<u64>,
    /// Geometry, placement and text positions: `[x, y]`.
    geometry: [i64; 2],
    placement: [i64; 2],
    text: [i64; 2],
    placed: Option<u64>,
    text_string: Option<Vec<u8>>,
    points: Option<Vec<u8>>,
}

/// Sets `bit` in `info` and returns `Some(value)` when `value` differs from the modal `slot`
/// (updating it), else `None`.
fn modal<T: PartialEq + Clone>(
    slot: &mut Option<T>,
    value: T,
    info: &mut u8,
    bit: u8,
) -> Option<T> {
    if slot.as_ref() == Some(&value) {
        return None;
    }
    *info |= bit;
    *slot = Some(value.clone());
    Some(value)
}

/// Sets `bits` (x, y) in `info` for the coordinates of `p` that moved from `at`, and returns
/// the deltas to write (relative mode), updating `at`.
fn moved(at: &mut [i64; 2], p: [i64; 2], info: &mut u8, bits: [u8; 2]) -> [Option<i64>; 2] {
    let mut out = [None; 2];
    for k in 0..2 {
        if p[k] != at[k] {
            *info |= bits[k];
            out[k] = Some(p[k] - at[k]);
            at[k] = p[k];
        }
    }
    out
}

/// `[x0, y0, x1, y1]` if `xy` is `(x0,y0) (x1,y0) (x1,y1) (x0,y1) (x0,y0)` with `x0 < x1` and
/// `y0 < y1`: the rectangles photonflow draws, which read back as exactly these points.
fn canonical_rectangle(xy: &[GdsPoint]) -> Option<[i64; 4]> {
    let [a, b, c, d, e] = xy else { return None };
    let [x0, y0, x1, y1] = [a.x, a.y, c.x, c.y].map(i64::from);
    let ok = x0 < x1
        && y0 < y1
        && (b.x, b.y) == (c.x, a.y)
        && (d.x, d.y) == (a.x, c.y)
        && (e.x, e.y) == (a.x, a.y);
    ok.then_some([x0, y0, x1, y1])
}

fn unsupported(cell: &str, problem: impl Into<String>) -> GdsError {
    GdsError::Unsupported {
        cell: cell.into(),
        problem: problem.into(),
    }
}

/// A GDS layer or datatype (i16) as an OASIS number, refusing negative ones.
fn number(cell: &str, what: &str, v: i16) -> Result<u64, GdsError> {
    u64::try_from(v).map_err(|_| unsupported(cell, format!("{what} {v}; OASIS numbers are ≥ 0")))
}

/// Appends the records of one element of `cell` to `b`.
fn element(
    b: &mut Vec<u8>,
    m: &mut Modal,
    cell: &str,
    e: &GdsElement,
    refs: &HashMap<&str, u64>,
) -> Result<(), GdsError> {
    let extras = |flags: bool, plex: bool, properties: bool, what: &str| {
        let found = [
            (flags, "element flags"),
            (plex, "a plex number"),
            (properties, "properties"),
        ];
        match found.iter().find(|f| f.0) {
            Some((_, which)) => Err(unsupported(
                cell,
                format!("{what} with {which}, which this OASIS writer would drop"),
            )),
            None => Ok(()),
        }
    };
    match e {
        GdsElement::GdsBoundary(p) => {
            extras(
                p.elflags.is_some(),
                p.plex.is_some(),
                !p.properties.is_empty(),
                "BOUNDARY",
            )?;
            let layer = number(cell, "layer", p.layer)?;
            let datatype = number(cell, "datatype", p.datatype)?;
            let mut info = 0u8;
            let mut fields = Vec::new();
            if let Some(l) = modal(&mut m.layer, layer, &mut info, 0x01) {
                uint(&mut fields, l);
            }
            if let Some(d) = modal(&mut m.datatype, datatype, &mut info, 0x02) {
                uint(&mut fields, d);
            }
            if let Some([x0, y0, x1, y1]) = canonical_rectangle(&p.xy) {
                let (w, h) = ((x1 - x0) as u64, (y1 - y0) as u64);
                if w == h {
                    info |= 0x80;
                    if let Some(w) = modal(&mut m.width, w, &mut info, 0x40) {
                        uint(&mut fields, w);
                    }
                    m.height = Some(w);
                } else {
                    if let Some(w) = modal(&mut m.width, w, &mut info, 0x40) {
                        uint(&mut fields, w);
                    }
                    if let Some(h) = modal(&mut m.height, h, &mut info, 0x20) {
                        uint(&mut fields, h);
                    }
                }
                for d in moved(&mut m.geometry, [x0, y0], &mut info, [0x10, 0x08])
                    .into_iter()
                    .flatten()
                {
                    sint(&mut fields, d);
                }
                b.extend([id::RECTANGLE, info]);
            } else {
                let pts: Vec<[i64; 2]> =
                    p.xy.iter()
                        .map(|q| [i64::from(q.x), i64::from(q.y)])
                        .collect();
                let closed = pts.len() >= 4 && pts.first() == pts.last();
                if !closed {
                    let why = format!(
                        "a BOUNDARY of {} points that is not closed (at least 4 points, the \
                         last repeating the first)",
                        pts.len()
                    );
                    return Err(unsupported(cell, why));
                }
                let corners = &pts[..pts.len() - 1];
                let mut list = vec![4u8];
                uint(&mut list, corners.len() as u64 - 1);
                for w in corners.windows(2) {
                    gdelta(&mut list, w[1][0] - w[0][0], w[1][1] - w[0][1]);
                }
                if let Some(list) = modal(&mut m.points, list, &mut info, 0x20) {
                    fields.extend(list);
                }
                for d in moved(&mut m.geometry, corners[0], &mut info, [0x10, 0x08])
                    .into_iter()
                    .flatten()
                {
                    sint(&mut fields, d);
                }
                b.extend([id::POLYGON, info]);
            }
            b.extend(fields);
        }
        GdsElement::GdsStructRef(r) => {
            extras(
                r.elflags.is_some(),
                r.plex.is_some(),
                !r.properties.is_empty(),
                "SREF",
            )?;
            let &number = refs.get(r.name.as_str()).ok_or_else(|| {
                let why = format!(
                    "an SREF to {:?}, which is not a cell of the library",
                    r.name
                );
                unsupported(cell, why)
            })?;
            let (mut flip, mut magnification, mut angle) = (false, 1.0, 0.0);
            if let Some(s) = &r.strans {
                if s.abs_mag || s.abs_angle {
                    let why = "an SREF with absolute magnification or angle, which OASIS lacks";
                    return Err(unsupported(cell, why));
                }
                (flip, magnification, angle) =
                    (s.reflected, s.mag.unwrap_or(1.0), s.angle.unwrap_or(0.0));
            }
            if !(magnification.is_finite() && magnification > 0.0 && angle.is_finite()) {
                let why = format!("an SREF with magnification {magnification} and angle {angle}°");
                return Err(unsupported(cell, why));
            }
            let quarter = (angle / 90.0).round();
            let manhattan = magnification == 1.0 && angle == quarter * 90.0;
            let mut info = u8::from(flip);
            let mut fields = Vec::new();
            if let Some(n) = modal(&mut m.placed, number, &mut info, 0xc0) {
                uint(&mut fields, n);
            }
            if manhattan {
                info |= ((quarter.rem_euclid(4.0) as u8) & 3) << 1;
            } else {
                if magnification != 1.0 {
                    info |= 0x04;
                    real(&mut fields, magnification);
                }
                if angle != 0.0 {
                    info |= 0x02;
                    real(&mut fields, angle);
                }
            }
            let at = [i64::from(r.xy.x), i64::from(r.xy.y)];
            for d in moved(&mut m.placement, at, &mut info, [0x20, 0x10])
                .into_iter()
                .flatten()
            {
                sint(&mut fields, d);
            }
            let record = if manhattan {
                id::PLACEMENT
            } else {
                id::PLACEMENT_TRANSFORM
            };
            b.extend([record, info]);
            b.extend(fields);
        }
        GdsElement::GdsTextElem(t) => {
            extras(
                t.elflags.is_some(),
                t.plex.is_some(),
                !t.properties.is_empty(),
                "TEXT",
            )?;
            if t.presentation.is_some()
                || t.path_type.is_some()
                || t.width.is_some()
                || t.strans.is_some()
            {
                let why = "a TEXT with presentation, path type, width or a transform, which \
                           OASIS text lacks";
                return Err(unsupported(cell, why));
            }
            if !t.string.bytes().all(|c| (0x20..0x7f).contains(&c)) {
                let why = format!("a TEXT {:?}; OASIS text is printable ASCII", t.string);
                return Err(unsupported(cell, why));
            }
            let mut info = 0u8;
            let mut fields = Vec::new();
            if let Some(s) = modal(
                &mut m.text_string,
                t.string.as_bytes().to_vec(),
                &mut info,
                0x40,
            ) {
                string(&mut fields, &s);
            }
            if let Some(l) = modal(
                &mut m.text_layer,
                number(cell, "text layer", t.layer)?,
                &mut info,
                0x01,
            ) {
                uint(&mut fields, l);
            }
            if let Some(k) = modal(
                &mut m.text_type,
                number(cell, "text type", t.texttype)?,
                &mut info,
                0x02,
            ) {
                uint(&mut fields, k);
            }
            let at = [i64::from(t.xy.x), i64::from(t.xy.y)];
            for d in moved(&mut m.text, at, &mut info, [0x10, 0x08])
                .into_iter()
                .flatten()
            {
                sint(&mut fields, d);
            }
            b.extend([id::TEXT, info]);
            b.extend(fields);
        }
        GdsElement::GdsPath(_) => return Err(unsupported(cell, "a PATH element")),
        GdsElement::GdsArrayRef(_) => return Err(unsupported(cell, "an AREF element")),
        GdsElement::GdsBox(_) => return Err(unsupported(cell, "a BOX element")),
        GdsElement::GdsNode(_) => return Err(unsupported(cell, "a NODE element")),
    }
    Ok(())
}

/// Writes `records` as one `CBLOCK` (raw DEFLATE), or as they are when `compress` is false.
fn flush_block<W: Write>(
    sink: &mut Sink<W>,
    records: &mut Vec<u8>,
    compress: bool,
) -> Result<(), GdsError> {
    if records.is_empty() {
        return Ok(());
    }
    if compress {
        let mut z = DeflateEncoder::new(Vec::new(), Compression::default());
        z.write_all(records)?;
        let packed = z.finish()?;
        let mut head = vec![id::CBLOCK, 0];
        uint(&mut head, records.len() as u64);
        uint(&mut head, packed.len() as u64);
        sink.put(&head)?;
        sink.put(&packed)?;
    } else {
        sink.put(records)?;
    }
    records.clear();
    Ok(())
}

/// Writes `lib` as an OASIS file to `w` (see the module docs) and returns the bytes written.
/// Everything is checked while writing; on an error part of the file may have been written,
/// so write to a temporary file (as the CLI does) and rename it on success.
pub fn encode(lib: &GdsLibrary, w: &mut impl Write) -> Result<u64, GdsError> {
    encode_blocks(lib, w, Some(BLOCK_BYTES))
}

/// [`encode`] with at most `block` bytes of records per `CBLOCK`, or none compressed (`None`).
pub(crate) fn encode_blocks(
    lib: &GdsLibrary,
    w: &mut impl Write,
    block: Option<usize>,
) -> Result<u64, GdsError> {
    let db_unit_m = lib.units.1;
    if !(db_unit_m.is_finite() && db_unit_m > 0.0) {
        let why = format!("database unit {db_unit_m:e} m; it must be a positive length");
        return Err(unsupported("(library)", why));
    }
    let mut refs = HashMap::new();
    for (i, s) in lib.structs.iter().enumerate() {
        let printable = !s.name.is_empty() && s.name.bytes().all(|c| (0x21..0x7f).contains(&c));
        if !printable {
            let why = "a cell name must be printable ASCII without spaces";
            return Err(unsupported(&s.name, why));
        }
        if refs.insert(s.name.as_str(), i as u64).is_some() {
            return Err(unsupported(&s.name, "a second cell of this name"));
        }
    }
    let mut sink = Sink {
        inner: std::io::BufWriter::new(w),
        crc: flate2::Crc::new(),
        bytes: 0,
    };
    let mut head = MAGIC.to_vec();
    head.push(id::START);
    string(&mut head, b"1.0");
    let steps_per_um = 1e-6 / db_unit_m;
    let rounded = steps_per_um.round();
    real(
        &mut head,
        if (steps_per_um - rounded).abs() <= 1e-9 * rounded {
            rounded
        } else {
            steps_per_um
        },
    );
    uint(&mut head, 1); // table offsets in END
    sink.put(&head)?;

    let compress = block.is_some();
    let limit = block.unwrap_or(usize::MAX);
    let mut records = Vec::new();
    for (i, s) in lib.structs.iter().enumerate() {
        let mut cell = vec![id::CELL_REF];
        uint(&mut cell, i as u64);
        sink.put(&cell)?;
        records.push(id::XYRELATIVE);
        let mut m = Modal::default();
        for e in &s.elems {
            element(&mut records, &mut m, &s.name, e, &refs)?;
            if records.len() >= limit {
                flush_block(&mut sink, &mut records, compress)?;
            }
        }
        flush_block(&mut sink, &mut records, compress)?;
    }
    let names_at = sink.bytes;
    for s in &lib.structs {
        let mut name = vec![id::CELLNAME];
        string(&mut name, s.name.as_bytes());
        sink.put(&name)?;
    }

    let mut end = vec![id::END];
    for offset in [names_at, 0, 0, 0, 0, 0] {
        uint(&mut end, 1); // strict: no records of the table elsewhere
        uint(&mut end, offset);
    }
    // END = id, table offsets, padding string (2-byte length), scheme byte, 4-byte signature.
    let pad = END_BYTES - end.len() - 2 - 1 - 4;
    debug_assert!((128..16384).contains(&pad));
    string(&mut end, &vec![0; pad]);
    end.push(1); // CRC-32
    sink.put(&end)?;
    let signature = sink.crc.sum().to_le_bytes();
    sink.inner.write_all(&signature)?;
    sink.inner.flush()?;
    Ok(sink.bytes + 4)
}

// ------------------------------------------------------------------------------------------
// Reading

/// A cursor over bytes of the file or of an inflated `CBLOCK`.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// `" in a CBLOCK"` or `""`, for error messages.
    place: &'static str,
}

impl<'a> Cursor<'a> {
    fn fail(&self, what: impl std::fmt::Display) -> GdsError {
        GdsError::Codec(format!("OASIS: {what} at byte {}{}", self.pos, self.place))
    }

    fn byte(&mut self) -> Result<u8, GdsError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.fail("the file ends"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], GdsError> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.fail(format!("a field of {n} bytes runs past the end")))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self) -> Result<u64, GdsError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.fail("an integer beyond 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.fail("an integer beyond 64 bits"))
    }

    /// An unsigned integer whose low `bits` bits are flags: `(value >> bits, flags)`.
    fn flagged(&mut self, bits: u32) -> Result<(i64, u64), GdsError> {
        let v = self.uint()?;
        let magnitude =
            i64::try_from(v >> bits).map_err(|_| self.fail("a coordinate beyond 63 bits"))?;
        Ok((magnitude, v & ((1 << bits) - 1)))
    }

    fn sint(&mut self) -> Result<i64, GdsError> {
        let (m, sign) = self.flagged(1)?;
        Ok(if sign == 1 { -m } else { m })
    }

    fn string(&mut self) -> Result<&'a [u8], GdsError> {
        let n = self.uint()?;
        self.take(n)
    }

    fn text(&mut self) -> Result<String, GdsError> {
        let s = self.string()?;
        String::from_utf8(s.to_vec()).map_err(|_| self.fail("a name or text that is not ASCII"))
    }

    fn real(&mut self) -> Result<f64, GdsError> {
        let kind = self.uint()?;
        let v = match kind {
            0..=3 => {
                let n = self.uint()? as f64;
                let v = if kind >= 2 { 1.0 / n } else { n };
                if kind % 2 == 1 { -v } else { v }
            }
            4 | 5 => {
                let (n, d) = (self.uint()? as f64, self.uint()? as f64);
                if kind == 5 { -n / d } else { n / d }
            }
            6 => f64::from(f32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            7 => f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")),
            _ => return Err(self.fail(format!("a real of type {kind} (0–7 exist)"))),
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.fail("a real that is not finite"))
        }
    }

    /// A direction-and-magnitude delta of `bits` direction bits (2: E N W S; 3: and NE NW
    /// SW SE).
    fn direction_delta(&mut self, bits: u32) -> Result<[i64; 2], GdsError> {
        let (m, d) = self.flagged(bits)?;
        Ok(direction(m, d))
    }

    fn gdelta(&mut self) -> Result<[i64; 2], GdsError> {
        let first = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.fail("the file ends"))?;
        if first & 1 == 0 {
            let (m, d) = self.flagged(4)?;
            Ok(direction(m, d >> 1))
        } else {
            let (ax, flags) = self.flagged(2)?;
            let x = if flags & 2 != 0 { -ax } else { ax };
            Ok([x, self.sint()?])
        }
    }

    /// A polygon's point list: its vertices after the first, relative to the first. Manhattan
    /// lists (types 0 and 1) get their implicit last vertex, which closes the outline.
    fn point_list(&mut self) -> Result<Vec<[i64; 2]>, GdsError> {
        let kind = self.byte()?;
        let count = self.uint()?;
        if count > (self.data.len() - self.pos) as u64 {
            return Err(self.fail(format!("a point list of {count} points in a shorter file")));
        }
        let mut at = [0i64; 2];
        let mut step = [0i64; 2];
        let mut out = Vec::with_capacity(count as usize + 1);
        for i in 0..count {
            let d = match kind {
                0 | 1 => {
                    let v = self.sint()?;
                    if (i % 2 == 0) == (kind == 0) {
                        [v, 0]
                    } else {
                        [0, v]
                    }
                }
                2 => self.direction_delta(2)?,
                3 => self.direction_delta(3)?,
                4 => self.gdelta()?,
                5 => {
                    let g = self.gdelta()?;
                    step = [step[0] + g[0], step[1] + g[1]];
                    step
                }
                _ => return Err(self.fail(format!("a point list of type {kind} (0–5 exist)"))),
            };
            at = [at[0] + d[0], at[1] + d[1]];
            out.push(at);
        }
        if kind <= 1 {
            // The implicit last vertex closes the Manhattan outline back to the first point.
            let horizontal_next = (count % 2 == 0) == (kind == 0);
            out.push(if horizontal_next {
                [0, at[1]]
            } else {
                [at[0], 0]
            });
        }
        Ok(out)
    }
}

/// The delta of magnitude `m` in direction `d`: 0–3 east, north, west, south; 4–7 north-east,
/// north-west, south-west, south-east.
fn direction(m: i64, d: u64) -> [i64; 2] {
    match d {
        0 => [m, 0],
        1 => [0, m],
        2 => [-m, 0],
        3 => [0, -m],
        4 => [m, m],
        5 => [-m, m],
        6 => [-m, -m],
        _ => [m, -m],
    }
}

/// A name or text string given inline or by reference number.
#[derive(Clone, PartialEq)]
enum Name {
    Inline(String),
    Ref(u64),
}

/// An element as read, with names still to resolve.
enum Item {
    Element(GdsElement),
    Placement(Name, GdsStructRef),
    Text(Name, GdsTextElem),
}

/// Reading state across the records of the file and its `CBLOCK`s.
#[derive(Default)]
struct Reader {
    cell_names: HashMap<u64, String>,
    next_cell_name: u64,
    text_strings: HashMap<u64, String>,
    next_text_string: u64,
    cells: Vec<(Name, Vec<Item>)>,
    modal: Modal,
    placed: Option<Name>,
    text_string: Option<Name>,
    polygon: Option<Vec<[i64; 2]>>,
    relative: bool,
    /// Whether the START record put the table offsets in END.
    offsets_at_end: bool,
}

fn coordinate(c: &Cursor, v: i64) -> Result<i32, GdsError> {
    i32::try_from(v).map_err(|_| c.fail(format!("coordinate {v} beyond the 32-bit range")))
}

fn gds_number(c: &Cursor, what: &str, v: u64) -> Result<i16, GdsError> {
    i16::try_from(v).map_err(|_| c.fail(format!("{what} {v} beyond GDSII's 0 … 32767")))
}

impl Reader {
    /// The new position along one axis: `given` read (relative or absolute), else the modal.
    fn position(&self, at: &mut [i64; 2], given: [Option<i64>; 2]) -> [i64; 2] {
        for k in 0..2 {
            if let Some(v) = given[k] {
                at[k] = if self.relative { at[k] + v } else { v };
            }
        }
        *at
    }

    fn cell(&mut self, c: &Cursor, record: &str) -> Result<&mut Vec<Item>, GdsError> {
        match self.cells.last_mut() {
            Some((_, items)) => Ok(items),
            None => Err(c.fail(format!("a {record} record outside any cell"))),
        }
    }

    fn required<T: Clone>(c: &Cursor, v: &Option<T>, what: &str) -> Result<T, GdsError> {
        v.clone().ok_or_else(|| {
            c.fail(format!(
                "{what} taken from a previous element, but none set it"
            ))
        })
    }

    fn xy(c: &mut Cursor, info: u8, bits: [u8; 2]) -> Result<[Option<i64>; 2], GdsError> {
        let x = if info & bits[0] != 0 {
            Some(c.sint()?)
        } else {
            None
        };
        let y = if info & bits[1] != 0 {
            Some(c.sint()?)
        } else {
            None
        };
        Ok([x, y])
    }

    fn no_repetition(c: &Cursor, info: u8, bit: u8, record: &str) -> Result<(), GdsError> {
        if info & bit != 0 {
            let why = format!(
                "a {record} with a repetition at byte {}{}; repetitions are not read by \
                 photonflow (files it writes have none)",
                c.pos, c.place
            );
            return Err(GdsError::Unsupported {
                cell: "(OASIS)".into(),
                problem: why,
            });
        }
        Ok(())
    }

    /// Reads records from `c` until it ends (a `CBLOCK`) or `END` (the file; returns true).
    fn records(&mut self, c: &mut Cursor, file: &[u8]) -> Result<bool, GdsError> {
        while c.pos < c.data.len() {
            let record = c.byte()?;
            match record {
                id::PAD => {}
                id::START => return Err(c.fail("a second START record")),
                id::END => {
                    if !c.place.is_empty() {
                        return Err(c.fail("an END record inside a CBLOCK"));
                    }
                    self.end(c, file)?;
                    return Ok(true);
                }
                id::CELLNAME | id::CELLNAME_REF | id::TEXTSTRING | id::TEXTSTRING_REF => {
                    let name = c.text()?;
                    let (table, next) = if record <= id::CELLNAME_REF {
                        (&mut self.cell_names, &mut self.next_cell_name)
                    } else {
                        (&mut self.text_strings, &mut self.next_text_string)
                    };
                    let number = if record % 2 == 1 {
                        *next += 1;
                        *next - 1
                    } else {
                        c.uint()?
                    };
                    if table.insert(number, name).is_some() {
                        return Err(c.fail(format!("reference number {number} given twice")));
                    }
                }
                id::CELL_REF | id::CELL_NAME => {
                    let name = if record == id::CELL_REF {
                        Name::Ref(c.uint()?)
                    } else {
                        Name::Inline(c.text()?)
                    };
                    self.cells.push((name, Vec::new()));
                    self.modal = Modal::default();
                    (self.placed, self.text_string, self.polygon) = (None, None, None);
                    self.relative = false;
                }
                id::XYABSOLUTE => self.relative = false,
                id::XYRELATIVE => self.relative = true,
                id::PLACEMENT | id::PLACEMENT_TRANSFORM => {
                    let info = c.byte()?;
                    if info & 0x80 != 0 {
                        self.placed = Some(if info & 0x40 != 0 {
                            Name::Ref(c.uint()?)
                        } else {
                            Name::Inline(c.text()?)
                        });
                    }
                    let name = Self::required(c, &self.placed, "the placed cell")?;
                    let (mut magnification, mut angle) = (1.0, 0.0);
                    let xy_bits = [0x20, 0x10];
                    if record == id::PLACEMENT {
                        angle = f64::from((info >> 1) & 3) * 90.0;
                    } else {
                        if info & 0x04 != 0 {
                            magnification = c.real()?;
                        }
                        if info & 0x02 != 0 {
                            angle = c.real()?;
                        }
                    }
                    let given = Self::xy(c, info, xy_bits)?;
                    Self::no_repetition(c, info, 0x08, "PLACEMENT")?;
                    let mut at = self.modal.placement;
                    let [x, y] = self.position(&mut at, given);
                    self.modal.placement = at;
                    let flip = info & 0x01 != 0;
                    let strans =
                        (flip || magnification != 1.0 || angle != 0.0).then(|| GdsStrans {
                            reflected: flip,
                            abs_mag: false,
                            abs_angle: false,
                            mag: (magnification != 1.0).then_some(magnification),
                            angle: (angle != 0.0).then_some(angle),
                        });
                    let r = GdsStructRef {
                        name: String::new(),
                        xy: GdsPoint::new(coordinate(c, x)?, coordinate(c, y)?),
                        strans,
                        ..Default::default()
                    };
                    self.cell(c, "PLACEMENT")?.push(Item::Placement(name, r));
                }
                id::TEXT => {
                    let info = c.byte()?;
                    if info & 0x40 != 0 {
                        self.text_string = Some(if info & 0x20 != 0 {
                            Name::Ref(c.uint()?)
                        } else {
                            Name::Inline(c.text()?)
                        });
                    }
                    let name = Self::required(c, &self.text_string, "the text string")?;
                    if info & 0x01 != 0 {
                        self.modal.text_layer = Some(c.uint()?);
                    }
                    if info & 0x02 != 0 {
                        self.modal.text_type = Some(c.uint()?);
                    }
                    let layer = Self::required(c, &self.modal.text_layer, "the text layer")?;
                    let texttype = Self::required(c, &self.modal.text_type, "the text type")?;
                    let given = Self::xy(c, info, [0x10, 0x08])?;
                    Self::no_repetition(c, info, 0x04, "TEXT")?;
                    let mut at = self.modal.text;
                    let [x, y] = self.position(&mut at, given);
                    self.modal.text = at;
                    let t = GdsTextElem {
                        string: String::new(),
                        layer: gds_number(c, "text layer", layer)?,
                        texttype: gds_number(c, "text type", texttype)?,
                        xy: GdsPoint::new(coordinate(c, x)?, coordinate(c, y)?),
                        ..Default::default()
                    };
                    self.cell(c, "TEXT")?.push(Item::Text(name, t));
                }
                id::RECTANGLE | id::POLYGON => {
                    let info = c.byte()?;
                    if info & 0x01 != 0 {
                        self.modal.layer = Some(c.uint()?);
                    }
                    if info & 0x02 != 0 {
                        self.modal.datatype = Some(c.uint()?);
                    }
                    let layer = Self::required(c, &self.modal.layer, "the layer")?;
                    let datatype = Self::required(c, &self.modal.datatype, "the datatype")?;
                    let outline: Vec<[i64; 2]> = if record == id::RECTANGLE {
                        if info & 0x40 != 0 {
                            self.modal.width = Some(c.uint()?);
                        }
                        let w = Self::required(c, &self.modal.width, "the width")?;
                        if info & 0x80 != 0 {
                            if info & 0x20 != 0 {
                                return Err(c.fail("a square RECTANGLE with a height"));
                            }
                            self.modal.height = Some(w);
                        } else if info & 0x20 != 0 {
                            self.modal.height = Some(c.uint()?);
                        }
                        let h = Self::required(c, &self.modal.height, "the height")?;
                        let (w, h) = (i64::try_from(w), i64::try_from(h));
                        let (Ok(w), Ok(h)) = (w, h) else {
                            return Err(c.fail("a rectangle beyond 63 bits"));
                        };
                        vec![[w, 0], [w, h], [0, h]]
                    } else {
                        if info & 0x20 != 0 {
                            self.polygon = Some(c.point_list()?);
                        }
                        Self::required(c, &self.polygon, "the point list")?
                    };
                    let given = Self::xy(c, info, [0x10, 0x08])?;
                    Self::no_repetition(c, info, 0x04, "RECTANGLE or POLYGON")?;
                    let mut at = self.modal.geometry;
                    let [x, y] = self.position(&mut at, given);
                    self.modal.geometry = at;
                    let mut xy = Vec::with_capacity(outline.len() + 2);
                    for p in [[0, 0]].iter().chain(&outline).chain([[0, 0]].iter()) {
                        let (px, py) = (x.checked_add(p[0]), y.checked_add(p[1]));
                        let (Some(px), Some(py)) = (px, py) else {
                            return Err(c.fail("a vertex beyond 64 bits"));
                        };
                        xy.push(GdsPoint::new(coordinate(c, px)?, coordinate(c, py)?));
                    }
                    let b = GdsBoundary {
                        layer: gds_number(c, "layer", layer)?,
                        datatype: gds_number(c, "datatype", datatype)?,
                        xy,
                        ..Default::default()
                    };
                    self.cell(c, "geometry")?
                        .push(Item::Element(GdsElement::GdsBoundary(b)));
                }
                id::CBLOCK => {
                    if !c.place.is_empty() {
                        return Err(c.fail("a CBLOCK inside a CBLOCK"));
                    }
                    let method = c.uint()?;
                    if method != 0 {
                        return Err(c.fail(format!(
                            "a CBLOCK of compression type {method} (0, DEFLATE, exists)"
                        )));
                    }
                    let (size, packed) = (c.uint()?, c.uint()?);
                    if size > MAX_BLOCK {
                        return Err(c.fail(format!(
                            "a CBLOCK of {size} bytes (at most {MAX_BLOCK} are read)"
                        )));
                    }
                    let packed = c.take(packed)?;
                    let mut data = Vec::with_capacity(size as usize);
                    flate2::read::DeflateDecoder::new(packed)
                        .take(size + 1)
                        .read_to_end(&mut data)
                        .map_err(|e| c.fail(format!("a CBLOCK that does not inflate ({e})")))?;
                    if data.len() as u64 != size {
                        return Err(c.fail(format!(
                            "a CBLOCK of {} bytes where its header says {size}",
                            data.len()
                        )));
                    }
                    let mut inner = Cursor {
                        data: &data,
                        pos: 0,
                        place: " in a CBLOCK",
                    };
                    self.records(&mut inner, file)?;
                }
                other => {
                    let why = format!(
                        "a {} record (id {other}) at byte {}{}; photonflow reads cells, \
                         rectangles, polygons, placements and texts",
                        record_name(other),
                        c.pos - 1,
                        c.place
                    );
                    return Err(GdsError::Unsupported {
                        cell: "(OASIS)".into(),
                        problem: why,
                    });
                }
            }
        }
        if c.place.is_empty() {
            return Err(c.fail("the file ends without an END record"));
        }
        Ok(false)
    }

    /// The END record: it must be the last 256 bytes; checks the validation signature.
    fn end(&mut self, c: &mut Cursor, file: &[u8]) -> Result<(), GdsError> {
        let start = c.pos - 1;
        if file.len() - start != END_BYTES {
            return Err(c.fail(format!(
                "an END record of {} bytes (the standard makes it 256, the file's last)",
                file.len() - start
            )));
        }
        if self.offsets_at_end {
            for _ in 0..12 {
                c.uint()?;
            }
        }
        c.string()?;
        let scheme = c.uint()?;
        let signed = &file[..c.pos];
        let stored = match scheme {
            0 => None,
            1 | 2 => Some(u32::from_le_bytes(c.take(4)?.try_into().expect("4 bytes"))),
            _ => return Err(c.fail(format!("validation scheme {scheme} (0, 1, 2 exist)"))),
        };
        if c.pos != file.len() {
            return Err(c.fail("bytes after the END record's signature"));
        }
        if let Some(stored) = stored {
            let computed = if scheme == 1 {
                let mut crc = flate2::Crc::new();
                crc.update(signed);
                crc.sum()
            } else {
                signed
                    .iter()
                    .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)))
            };
            if computed != stored {
                let kind = if scheme == 1 { "CRC-32" } else { "checksum" };
                return Err(GdsError::Codec(format!(
                    "OASIS: the {kind} of the file is {computed:#010x}, its END record says \
                     {stored:#010x}: the file is corrupt or truncated"
                )));
            }
        }
        Ok(())
    }
}

/// Reads an OASIS file into a library (see the module docs for what is read).
pub fn decode(bytes: &[u8]) -> Result<GdsLibrary, GdsError> {
    if !is_oasis(bytes) {
        return Err(GdsError::Codec(
            "OASIS: the file does not begin with %SEMI-OASIS".into(),
        ));
    }
    let mut c = Cursor {
        data: bytes,
        pos: MAGIC.len(),
        place: "",
    };
    if c.byte()? != id::START {
        return Err(c.fail("no START record after the magic string"));
    }
    let version = c.text()?;
    if version != "1.0" {
        return Err(c.fail(format!("version {version:?} (1.0 is read)")));
    }
    let unit = c.real()?;
    if unit <= 0.0 {
        return Err(c.fail(format!("a unit of {unit} grid steps per micron")));
    }
    let offsets_at_end = match c.uint()? {
        0 => {
            for _ in 0..12 {
                c.uint()?;
            }
            false
        }
        1 => true,
        f => return Err(c.fail(format!("offset flag {f} (0 or 1)"))),
    };
    let mut r = Reader {
        offsets_at_end,
        ..Reader::default()
    };
    r.records(&mut c, bytes)?;

    let resolve = |name: &Name, table: &HashMap<u64, String>, what: &str| match name {
        Name::Inline(s) => Ok(s.clone()),
        Name::Ref(n) => table.get(n).cloned().ok_or_else(|| {
            GdsError::Codec(format!(
                "OASIS: {what} reference number {n} has no name record"
            ))
        }),
    };
    let db_unit_m = 1e-6 / unit;
    let mut lib = GdsLibrary::new("OASIS");
    lib.units = GdsUnits::new(db_unit_m / 1e-6, db_unit_m);
    for (name, items) in r.cells {
        let mut s = GdsStruct::new(resolve(&name, &r.cell_names, "cell")?);
        for item in items {
            s.elems.push(match item {
                Item::Element(e) => e,
                Item::Placement(n, mut p) => {
                    p.name = resolve(&n, &r.cell_names, "cell")?;
                    GdsElement::GdsStructRef(p)
                }
                Item::Text(n, mut t) => {
                    t.string = resolve(&n, &r.text_strings, "text string")?;
                    GdsElement::GdsTextElem(t)
                }
            });
        }
        lib.structs.push(s);
    }
    Ok(lib)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = Vec::new();
        f(&mut b);
        b
    }

    fn cursor(data: &[u8]) -> Cursor<'_> {
        Cursor {
            data,
            pos: 0,
            place: "",
        }
    }

    /// Integers, g-deltas and reals as SEMI P39 spells them, and read back.
    #[test]
    fn primitives_match_the_standard() {
        for (v, want) in [
            (0u64, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16383, vec![0xff, 0x7f]),
            (16384, vec![0x80, 0x80, 0x01]),
        ] {
            assert_eq!(bytes(|b| uint(b, v)), want, "{v}");
            assert_eq!(cursor(&want).uint().unwrap(), v);
        }
        for (v, want) in [
            (0i64, vec![0x00]),
            (1, vec![0x02]),
            (-1, vec![0x03]),
            (63, vec![0x7e]),
            (-64, vec![0x81, 0x01]),
        ] {
            assert_eq!(bytes(|b| sint(b, v)), want, "{v}");
            assert_eq!(cursor(&want).sint().unwrap(), v);
        }
        // Form 1: magnitude << 4 | direction << 1; form 2: |dx| << 2 | sign << 1 | 1, dy.
        for ((dx, dy), want) in [
            ((5i64, 0i64), vec![0x50]),
            ((0, -3), vec![0x36]),
            ((-2, 2), vec![0x2a]),
            ((7, -7), vec![0x7e]),
            ((3, -1), vec![0x0d, 0x03]),
            ((-3, 4), vec![0x0f, 0x08]),
        ] {
            assert_eq!(bytes(|b| gdelta(b, dx, dy)), want, "{dx} {dy}");
            assert_eq!(cursor(&want).gdelta().unwrap(), [dx, dy]);
        }
        let mut double = vec![7];
        double.extend(1.5f64.to_le_bytes());
        for (v, want) in [
            (1000.0, vec![0, 0xe8, 0x07]),
            (-3.0, vec![1, 3]),
            (0.5, vec![2, 2]),
            (-0.25, vec![3, 4]),
            (1.5, double),
        ] {
            assert_eq!(bytes(|b| real(b, v)), want, "{v}");
            assert_eq!(cursor(&want).real().unwrap(), v);
        }
        // Ratios and singles, which this writer never uses, read too.
        assert_eq!(cursor(&[5, 3, 4]).real().unwrap(), -0.75);
        let mut single = vec![6];
        single.extend(2.25f32.to_le_bytes());
        assert_eq!(cursor(&single).real().unwrap(), 2.25);
        // Every g-delta round-trips, signs and diagonals included.
        for dx in -40..=40i64 {
            for dy in [-1_000_003, -40, -7, -1, 0, 1, 7, 40, 1 << 40] {
                let b = bytes(|b| gdelta(b, dx * 3, dy));
                assert_eq!(cursor(&b).gdelta().unwrap(), [dx * 3, dy]);
            }
        }
        let e = cursor(&[0xff; 11]).uint().unwrap_err().to_string();
        assert!(e.contains("beyond 64 bits"), "{e}");
    }

    fn rect(layer: i16, x0: i32, y0: i32, x1: i32, y1: i32) -> GdsElement {
        let xy = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
        poly(layer, &xy)
    }

    fn poly(layer: i16, xy: &[(i32, i32)]) -> GdsElement {
        GdsElement::GdsBoundary(GdsBoundary {
            layer,
            datatype: 0,
            xy: xy.iter().map(|&(x, y)| GdsPoint::new(x, y)).collect(),
            ..Default::default()
        })
    }

    fn text(s: &str, layer: i16, x: i32, y: i32) -> GdsElement {
        GdsElement::GdsTextElem(GdsTextElem {
            string: s.into(),
            layer,
            texttype: 0,
            xy: GdsPoint::new(x, y),
            ..Default::default()
        })
    }

    fn sref(name: &str, x: i32, y: i32, strans: Option<(bool, f64, f64)>) -> GdsElement {
        GdsElement::GdsStructRef(GdsStructRef {
            name: name.into(),
            xy: GdsPoint::new(x, y),
            strans: strans.map(|(reflected, mag, angle)| GdsStrans {
                reflected,
                abs_mag: false,
                abs_angle: false,
                mag: (mag != 1.0).then_some(mag),
                angle: (angle != 0.0).then_some(angle),
            }),
            ..Default::default()
        })
    }

    /// A library with every kind of element the writer handles.
    fn library() -> GdsLibrary {
        let mut cell = GdsStruct::new("CELL_A");
        cell.elems = vec![
            rect(1, -500, -500, 500, 500),                // a square
            rect(1, 600, -500, 1600, 500),                // the same square: modal width
            rect(2, -2_000_000_000, 7, 2_000_000_000, 9), // a wide one
            rect(2, 0, 0, 3, 1_000_000),
            // A rectangle drawn clockwise: a POLYGON, kept point for point.
            poly(3, &[(0, 0), (0, 10), (10, 10), (10, 0), (0, 0)]),
            poly(3, &[(0, 0), (40, 3), (-7, 90), (0, 0)]),
            poly(3, &[(0, 0), (40, 3), (-7, 90), (0, 0)]), // same list: modal
            text("hello world", 10, 5, -5),
            text("hello world", 11, 5, -5),
            text("second", 11, -100, 2),
        ];
        // An arm-like polygon of many points.
        let arc: Vec<(i32, i32)> = (0..=200)
            .map(|k| {
                let t = k as f64 / 200.0 * 3.0;
                ((50_000.0 * t.cos()) as i32, (50_000.0 * t.sin()) as i32)
            })
            .chain([(0, 0), (50_000, 0)])
            .collect();
        cell.elems.push(poly(4, &arc));
        let mut top = GdsStruct::new("TOP");
        top.elems = vec![
            sref("CELL_A", 0, 0, None),
            sref("CELL_A", 10_000, 0, None),
            sref("CELL_A", 10_000, -20_000, Some((false, 1.0, 90.0))),
            sref("CELL_A", -3, 4, Some((true, 1.0, 270.0))),
            sref("CELL_A", 5, 6, Some((true, 1.0, 0.0))),
            sref("CELL_A", 7, 8, Some((false, 2.5, 30.0))),
            sref("CELL_A", 9, 10, Some((false, 0.001, -45.5))),
            sref("EMPTY", 1, 1, None),
            text("top", 10, 0, 0),
        ];
        let mut lib = GdsLibrary::new("LIB");
        lib.units = GdsUnits::new(1e-3, 1e-9);
        lib.structs = vec![cell, top, GdsStruct::new("EMPTY")];
        lib
    }

    fn same_cells(a: &GdsLibrary, b: &GdsLibrary) {
        assert_eq!(a.structs.len(), b.structs.len());
        for (x, y) in a.structs.iter().zip(&b.structs) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.elems, y.elems, "cell {}", x.name);
        }
    }

    /// Written and read back: the same cells and elements in the same order, whether
    /// compressed in one block, in many small ones, or not at all.
    #[test]
    fn libraries_round_trip() {
        let lib = library();
        let mut sizes = Vec::new();
        for block in [Some(BLOCK_BYTES), Some(16), None] {
            let mut buf = Vec::new();
            let n = encode_blocks(&lib, &mut buf, block).unwrap();
            assert_eq!(n, buf.len() as u64);
            assert!(buf.starts_with(MAGIC));
            let back = decode(&buf).unwrap();
            same_cells(&lib, &back);
            let (db, user) = (back.units.1, back.units.1 / back.units.0);
            assert!((db / 1e-9 - 1.0).abs() < 1e-12 && (user / 1e-6 - 1.0).abs() < 1e-12);
            // The END record is the last 256 bytes and begins with its id.
            assert_eq!(buf[buf.len() - END_BYTES], id::END);
            sizes.push(buf.len());
        }
        // Many small blocks cost more than one; no compression more than either.
        assert!(sizes[0] < sizes[1] && sizes[0] < sizes[2], "{sizes:?}");
        // A unit that is not a whole number of grid steps per micron survives as a double.
        let mut odd = library();
        odd.units = GdsUnits::new(0.3e-3, 0.3e-9);
        let mut buf = Vec::new();
        encode(&odd, &mut buf).unwrap();
        let back = decode(&buf).unwrap();
        assert!(
            (back.units.1 / 0.3e-9 - 1.0).abs() < 1e-12,
            "{:?}",
            back.units
        );
    }

    /// Rectangles cost a few bytes each: a checkerboard of 10 000 squares.
    #[test]
    fn rectangles_are_compact() {
        let mut cell = GdsStruct::new("BOARD");
        for r in 0..100 {
            for c in (r % 2..100).step_by(2) {
                let (x, y) = (c * 1000, r * 1000);
                cell.elems
                    .push(rect(1 + (c % 3) as i16, x, y, x + 1000, y + 1000));
            }
        }
        let mut lib = GdsLibrary::new("LIB");
        lib.structs.push(cell);
        let (mut oas, mut plain, mut gds) = (Vec::new(), Vec::new(), Vec::new());
        encode(&lib, &mut oas).unwrap();
        encode_blocks(&lib, &mut plain, None).unwrap();
        lib.write(&mut gds).unwrap();
        let count = lib.structs[0].elems.len();
        assert_eq!(count, 5000);
        // GDSII: 64 bytes per rectangle; OASIS records: ≤ 6 (id, info, layer, x or y step).
        assert!(gds.len() > 60 * count, "{}", gds.len());
        assert!(plain.len() < 6 * count + 400, "{}", plain.len());
        assert!(oas.len() * 40 < gds.len(), "{} vs {}", oas.len(), gds.len());
        same_cells(&lib, &decode(&oas).unwrap());
    }

    /// One flipped byte anywhere fails the CRC; truncation and junk are named errors.
    #[test]
    fn corruption_is_detected() {
        let mut buf = Vec::new();
        encode(&library(), &mut buf).unwrap();
        for at in [20, buf.len() / 2, buf.len() - 100] {
            let mut bad = buf.clone();
            bad[at] ^= 0x10;
            let e = decode(&bad).unwrap_err().to_string();
            assert!(
                e.contains("OASIS") && (e.contains("CRC-32") || e.contains("byte")),
                "{at}: {e}"
            );
        }
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 1] ^= 1; // the signature itself
        assert!(decode(&bad).unwrap_err().to_string().contains("CRC-32"));
        for cut in [MAGIC.len() + 3, buf.len() / 2, buf.len() - 1] {
            let e = decode(&buf[..cut]).unwrap_err().to_string();
            assert!(e.contains("OASIS"), "{cut}: {e}");
        }
        assert!(
            decode(b"HEADER")
                .unwrap_err()
                .to_string()
                .contains("%SEMI-OASIS")
        );
    }

    /// What OASIS cannot hold, or this writer would drop, is refused by name.
    #[test]
    fn refusals_name_the_element() {
        let cases: Vec<(GdsElement, &str)> = vec![
            (
                GdsElement::GdsPath(gds21::GdsPath {
                    layer: 1,
                    datatype: 0,
                    xy: vec![GdsPoint::new(0, 0), GdsPoint::new(1, 0)],
                    ..Default::default()
                }),
                "PATH",
            ),
            (sref("NOWHERE", 0, 0, None), "NOWHERE"),
            (rect(-1, 0, 0, 1, 1), "layer -1"),
            (poly(1, &[(0, 0), (1, 0), (1, 1)]), "not closed"),
            (text("tab\there", 1, 0, 0), "printable ASCII"),
        ];
        for (e, needle) in cases {
            let mut lib = GdsLibrary::new("LIB");
            let mut cell = GdsStruct::new("C");
            cell.elems.push(e);
            lib.structs.push(cell);
            let msg = encode(&lib, &mut Vec::new()).unwrap_err().to_string();
            assert!(msg.contains(needle) && msg.contains("\"C\""), "{msg}");
        }
        let mut lib = GdsLibrary::new("LIB");
        lib.structs = vec![GdsStruct::new("A"), GdsStruct::new("A")];
        let msg = encode(&lib, &mut Vec::new()).unwrap_err().to_string();
        assert!(msg.contains("second cell"), "{msg}");
    }

    /// A file in forms this writer does not use — cells by name, absolute positions, name
    /// tables with explicit numbers, text by reference, Manhattan and octangular point lists,
    /// a checksum signature — reads as the standard defines it; a repetition is refused.
    #[test]
    fn reads_other_forms() {
        let file = |body: &[u8], scheme: u8| -> Vec<u8> {
            let mut f = MAGIC.to_vec();
            f.push(id::START);
            string(&mut f, b"1.0");
            real(&mut f, 1000.0);
            uint(&mut f, 0);
            for _ in 0..6 {
                uint(&mut f, 0);
                uint(&mut f, 0);
            }
            f.extend_from_slice(body);
            let start = f.len();
            f.push(id::END);
            let pad = END_BYTES - 1 - 2 - 1 - if scheme == 0 { 0 } else { 4 };
            string(&mut f, &vec![0; pad]);
            f.push(scheme);
            if scheme == 2 {
                let sum = f.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
                f.extend(sum.to_le_bytes());
            }
            assert_eq!(f.len() - start, END_BYTES);
            f
        };
        let mut body = vec![id::CELLNAME_REF];
        string(&mut body, b"SUB");
        uint(&mut body, 7);
        body.push(id::TEXTSTRING_REF);
        string(&mut body, b"label");
        uint(&mut body, 3);
        body.push(id::CELL_NAME);
        string(&mut body, b"TOP");
        // Manhattan, horizontal first: (0,0) → (10,0) → (10,5) → (4,5); after three deltas the
        // next edge is vertical, so the implicit vertex is (4, 0).
        body.extend([id::POLYGON, 0x3b]); // P X Y D L
        uint(&mut body, 1); // layer
        uint(&mut body, 2); // datatype
        body.push(0);
        uint(&mut body, 3);
        for d in [10, 5, -6] {
            sint(&mut body, d);
        }
        sint(&mut body, 100);
        sint(&mut body, 200);
        // Octangular: a right triangle with a diagonal.
        body.extend([id::POLYGON, 0x20]); // P; position and layer modal
        body.push(3);
        uint(&mut body, 2);
        uint(&mut body, 4 << 3); // east 4 (direction 0)
        uint(&mut body, (4 << 3) | 5); // north-west 4
        // A rectangle in absolute mode, height and width given.
        body.extend([id::RECTANGLE, 0x78]); // W H X Y
        uint(&mut body, 30);
        uint(&mut body, 20);
        sint(&mut body, -5);
        sint(&mut body, -6);
        // A placement by explicit number with its name in the table, and a text by reference.
        body.extend([id::PLACEMENT, 0xf0 | 0x02]); // C N X Y, rotated 90°
        uint(&mut body, 7);
        sint(&mut body, 11);
        sint(&mut body, 12);
        body.extend([id::TEXT, 0x7b]); // C N X Y T L
        uint(&mut body, 3);
        uint(&mut body, 9);
        uint(&mut body, 0);
        sint(&mut body, 1);
        sint(&mut body, 2);
        body.push(id::CELL_NAME);
        string(&mut body, b"SUB");
        for scheme in [0, 2] {
            let lib = decode(&file(&body, scheme)).unwrap();
            let names: Vec<&str> = lib.structs.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["TOP", "SUB"]);
            let top = &lib.structs[0].elems;
            let pts = |e: &GdsElement| match e {
                GdsElement::GdsBoundary(b) => (
                    b.layer,
                    b.datatype,
                    b.xy.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>(),
                ),
                e => panic!("{e:?}"),
            };
            assert_eq!(
                pts(&top[0]),
                (
                    1,
                    2,
                    vec![
                        (100, 200),
                        (110, 200),
                        (110, 205),
                        (104, 205),
                        (104, 200),
                        (100, 200)
                    ]
                )
            );
            assert_eq!(
                pts(&top[1]),
                (1, 2, vec![(100, 200), (104, 200), (100, 204), (100, 200)])
            );
            assert_eq!(
                pts(&top[2]),
                (1, 2, vec![(-5, -6), (25, -6), (25, 14), (-5, 14), (-5, -6)])
            );
            match &top[3] {
                GdsElement::GdsStructRef(r) => {
                    assert_eq!((r.name.as_str(), r.xy.x, r.xy.y), ("SUB", 11, 12));
                    assert_eq!(r.strans.as_ref().and_then(|s| s.angle), Some(90.0));
                }
                e => panic!("{e:?}"),
            }
            match &top[4] {
                GdsElement::GdsTextElem(t) => {
                    assert_eq!(
                        (t.string.as_str(), t.layer, t.xy.x, t.xy.y),
                        ("label", 9, 1, 2)
                    );
                }
                e => panic!("{e:?}"),
            }
        }
        // A checksum that does not match.
        let mut bad = file(&body, 2);
        let n = bad.len();
        bad[n - 2] ^= 1;
        assert!(decode(&bad).unwrap_err().to_string().contains("checksum"));
        // A repetition (R bit) on a rectangle is refused by name.
        let mut rep = vec![id::CELL_NAME];
        string(&mut rep, b"R");
        rep.extend([id::RECTANGLE, 0xc7]); // S W R D L
        uint(&mut rep, 1);
        uint(&mut rep, 0);
        uint(&mut rep, 5);
        rep.extend([2]);
        uint(&mut rep, 0);
        uint(&mut rep, 10);
        let e = decode(&file(&rep, 0)).unwrap_err().to_string();
        assert!(e.contains("repetition"), "{e}");
        // A record this reader does not know of is refused by name.
        let mut circle = vec![id::CELL_NAME];
        string(&mut circle, b"C");
        circle.extend([27, 0]);
        let e = decode(&file(&circle, 0)).unwrap_err().to_string();
        assert!(e.contains("CIRCLE"), "{e}");
    }
}
