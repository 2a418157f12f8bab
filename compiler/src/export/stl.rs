//! Height map → watertight, 2-manifold binary STL solid, plus STL reading and mesh checks.
//!
//! Conventions (lengths in metres unless a function says "file units"):
//! * A [`Relief`] is one layer of a diffractive element: `nx × ny` pixels of pitch `dx × dy`,
//!   heights `h ≥ 0`, row-major `heights[r * nx + c]`. Pixel (r, c) covers
//!   x ∈ [c·dx, (c+1)·dx] − nx·dx/2 and y ∈ [r·dy, (r+1)·dy] − ny·dy/2, i.e. the layer is centred
//!   on the origin in x and y (row index grows along +y, column index along +x).
//! * The solid is the union of the pixel columns [x-range] × [y-range] × [0, base + h]: its bottom
//!   is the plane z = 0, a base plate of thickness `base` covers the whole layer and pixel (r, c)'s
//!   top is at z = base + h. Heights are compared exactly (f64 `==` on `base + h`) for merging.
//! * Meshes are indexed; every triangle is counter-clockwise seen from outside, so the right-hand
//!   rule gives the outward normal and [`Mesh::volume`] is positive.
//! * Facets are merged: equal-height runs of a row that repeat unchanged in the next rows form one
//!   top rectangle; side walls between the same ordered pair of heights along a grid line form one
//!   wall rectangle; the bottom is one rectangle. Every vertex lying on a rectangle's boundary
//!   (T-junction) is inserted into it, and the rectangle (with n boundary vertices) is cut into
//!   n − 2 non-degenerate triangles without new vertices, so edges always pair up.
//! * Saddle nodes: where both pixels of one diagonal are higher than both of the other (e.g. a
//!   checkerboard), the union of pixel columns touches itself along a vertical segment, which
//!   would be shared by four walls. The mesh makes it a 2-manifold with a *bridge*: a right
//!   triangle with legs ε ([`Relief::bridge_leg`], 10⁻³ pitch or 10⁻⁵ of the layer's extent) in
//!   the corner of the higher of the two low pixels, filled from that pixel's top up to the lower
//!   of the two high tops. It joins the two high columns, adds ε²/2 per unit height spanned
//!   ([`Bridges::volume`]) and lies far below any fabrication resolution; the bridge's corner
//!   points (off the pixel grid) are inserted into every facet side through them.
//! * STL files are binary, little-endian f32, coordinates in file units = metres / `unit`
//!   (`unit = 1e-3`: millimetres, what 3D-printer software expects).

use std::collections::HashMap;
use std::io::{Read, Seek, Write};

/// Errors of relief meshing, STL I/O and mesh checks; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StlError {
    #[error("relief is {nx}×{ny} pixels: nx and ny must both be ≥ 1")]
    EmptyRelief { nx: usize, ny: usize },
    #[error(
        "heights has {got} values but nx·ny = {expected}: give one height per pixel, row-major"
    )]
    HeightCount { expected: usize, got: usize },
    #[error("pixel pitch dx = {dx} m, dy = {dy} m: both must be finite and > 0")]
    Pitch { dx: f64, dy: f64 },
    #[error("base thickness {0} m: it must be finite and ≥ 0")]
    Base(f64),
    #[error("height {value} m at pixel (row {row}, col {col}): heights must be finite and ≥ 0")]
    Height { row: usize, col: usize, value: f64 },
    #[error(
        "pixel (row {row}, col {col}) has height 0 on base 0: zero-thickness material is not a \
         valid solid; use base > 0 or make every height > 0"
    )]
    ZeroThickness { row: usize, col: usize },
    #[error("mesh too large ({0} vertices or triangles) for u32 indices / STL: split the layer")]
    TooLarge(usize),
    #[error("unit {0} m: it must be finite and > 0 (1e-3 writes millimetres)")]
    Unit(f64),
    #[error(
        "triangle {triangle} collapses in f32 file units (unit {unit} m): heights or pitches \
         differ by less than f32 resolution; use another unit or coarser levels"
    )]
    Precision { triangle: usize, unit: f64 },
    #[error("triangle {triangle} uses vertex {vertex} but the mesh has only {count} vertices")]
    BadIndex {
        triangle: usize,
        vertex: u32,
        count: usize,
    },
    #[error("triangle {triangle} (vertices {vertices:?}) has zero area: remove or fix it")]
    Degenerate { triangle: usize, vertices: [u32; 3] },
    #[error(
        "edge {a}→{b} ({pa:?} → {pb:?}) is used {forward}× as {a}→{b} but {backward}× as \
         {b}→{a}: a hole (missing triangle), a flipped triangle or an unsplit T-junction"
    )]
    OpenEdge {
        a: u32,
        b: u32,
        pa: [f64; 3],
        pb: [f64; 3],
        forward: usize,
        backward: usize,
    },
    #[error(
        "edge {a}–{b} ({pa:?} – {pb:?}) is shared by {uses} triangles: a 2-manifold shares each \
         edge between exactly two (two solids touch along it)"
    )]
    NonManifoldEdge {
        a: u32,
        b: u32,
        pa: [f64; 3],
        pb: [f64; 3],
        uses: usize,
    },
    #[error(
        "vertex {vertex} ({p:?}) is where separate surface sheets touch: its {triangles} \
         triangles form more than one fan (the first has {fan})"
    )]
    PinchedVertex {
        vertex: u32,
        p: [f64; 3],
        triangles: usize,
        fan: usize,
    },
    #[error("STL I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A pixelated relief (see the module doc for axes and units): `nx × ny` pixels of pitch `dx`,
/// `dy` (metres), heights (metres, finite, ≥ 0) row-major `heights[r * nx + c]`, on a base plate of
/// thickness `base` (metres, ≥ 0). Rule for zero thickness: `base > 0`, or else every height must
/// be > 0, so the solid is always one connected slab; otherwise [`StlError::ZeroThickness`].
#[derive(Clone, Copy, Debug)]
pub struct Relief<'a> {
    pub nx: usize,
    pub ny: usize,
    pub dx: f64,
    pub dy: f64,
    pub heights: &'a [f64],
    pub base: f64,
}

/// An indexed triangle mesh: `vertices` in metres (or file units after [`read_stl`]), triangles
/// counter-clockwise seen from outside (outward normals by the right-hand rule).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub vertices: Vec<[f64; 3]>,
    pub triangles: Vec<[u32; 3]>,
}

/// What [`write_stl`] wrote: triangle count, file size in bytes (84 + 50 per triangle) and the
/// bounding box of the written f32 coordinates, in file units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StlStats {
    pub triangles: usize,
    pub bytes: u64,
    pub bbox_min: [f64; 3],
    pub bbox_max: [f64; 3],
}

/// Result of a successful [`Mesh::check_watertight`]: numbers of (undirected) edges and of
/// vertices, each edge shared by exactly two triangles and each vertex the apex of one fan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeReport {
    pub edges: usize,
    pub vertices: usize,
}

impl Relief<'_> {
    fn validate(&self) -> Result<(), StlError> {
        let (nx, ny) = (self.nx, self.ny);
        if nx == 0 || ny == 0 {
            return Err(StlError::EmptyRelief { nx, ny });
        }
        let expected = nx.checked_mul(ny).ok_or(StlError::TooLarge(usize::MAX))?;
        if self.heights.len() != expected {
            let got = self.heights.len();
            return Err(StlError::HeightCount { expected, got });
        }
        let (dx, dy) = (self.dx, self.dy);
        if !(dx.is_finite() && dx > 0.0 && dy.is_finite() && dy > 0.0) {
            return Err(StlError::Pitch { dx, dy });
        }
        if !(self.base.is_finite() && self.base >= 0.0) {
            return Err(StlError::Base(self.base));
        }
        for (k, &value) in self.heights.iter().enumerate() {
            let (row, col) = (k / nx, k % nx);
            if !(value >= 0.0 && (self.base + value).is_finite()) {
                return Err(StlError::Height { row, col, value });
            }
            if self.base + value == 0.0 {
                return Err(StlError::ZeroThickness { row, col });
            }
        }
        // At most 4 distinct top levels meet at a grid node, so at most 4 vertices per node, and
        // a saddle node adds two bridge points of 3 vertices each.
        let nodes = (nx + 1).saturating_mul(ny + 1).saturating_mul(10);
        if nodes > u32::MAX as usize {
            return Err(StlError::TooLarge(nodes));
        }
        Ok(())
    }

    /// Leg ε of the saddle bridges (metres): 10⁻³ of the smaller pitch, but at least 10⁻⁵ of the
    /// layer's extent, so that it stays hundreds of f32 steps wide in any file unit, and at most
    /// a quarter pitch.
    pub fn bridge_leg(&self) -> f64 {
        let pitch = self.dx.min(self.dy);
        let extent = (self.nx as f64 * self.dx).max(self.ny as f64 * self.dy);
        (1e-3 * pitch).max(1e-5 * extent).min(0.25 * pitch)
    }
}

// Per-pixel flags of the top-rectangle decomposition (a rectangle = identical runs stacked).
const RUN_START: u8 = 1; // first column of its row run
const RUN_END: u8 = 2; // last column of its row run
const RECT_FIRST: u8 = 4; // its run starts a rectangle (differs from the run below)
const RECT_LAST: u8 = 8; // its run ends a rectangle (differs from the run above)

/// The saddle bridges of a relief's mesh (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bridges {
    /// Number of saddle nodes, each joined by one bridge.
    pub count: usize,
    /// Leg ε of the right-triangle bridges, metres.
    pub leg: f64,
    /// Material the bridges add, m³: Σ ε²/2 · (height each spans).
    pub volume: f64,
}

/// Builds the merged, watertight, 2-manifold, outward-oriented mesh of `relief` (vertices in
/// metres), and says what its saddle bridges add.
pub fn relief_mesh(relief: &Relief) -> Result<(Mesh, Bridges), StlError> {
    relief.validate()?;
    let (nx, ny, pw, w) = (relief.nx, relief.ny, relief.nx + 2, relief.nx + 1);
    // Tops z = base + h padded with one ring of 0 (outside); pixel (r, c) is at [(r+1)·pw + c+1],
    // so the 4 pixels around grid node (i, j) are at rows j, j+1 and columns i, i+1.
    let mut zp = vec![0.0; pw * (ny + 2)];
    for (r, row) in relief.heights.chunks_exact(nx).enumerate() {
        for (c, h) in row.iter().enumerate() {
            zp[(r + 1) * pw + c + 1] = relief.base + h;
        }
    }
    let fl = rect_flags(nx, ny, &zp);
    let saddles = saddles(relief);
    let leg = relief.bridge_leg();
    let grid = w * (ny + 1);
    let mut saddle_at = vec![u32::MAX; grid];
    for (k, s) in saddles.iter().enumerate() {
        saddle_at[s.node] = k as u32;
    }
    let (offsets, vertices) = node_vertices(relief, &zp, &fl, &saddles, &saddle_at, leg);
    let mut b = Builder {
        w,
        grid,
        offsets: &offsets,
        verts: &vertices,
        saddles: &saddles,
        saddle_at: &saddle_at,
        tris: Vec::new(),
        poly: Vec::new(),
        corners: Vec::new(),
    };
    // Top rectangles: `first[a]` is the first padded row of the open rectangle at column a.
    let mut first = vec![0; pw];
    for r in 1..=ny {
        let mut a = 1;
        while a <= nx {
            let mut e = a;
            while fl[r * pw + e] & RUN_END == 0 {
                e += 1;
            }
            let f = fl[r * pw + a];
            if f & RECT_FIRST != 0 {
                first[a] = r;
            }
            if f & RECT_LAST != 0 {
                let corner = (first[a] - 1) * w + a - 1;
                b.rect(corner, e + 1 - a, r + 1 - first[a], zp[r * pw + a], false);
            }
            a = e + 1;
        }
    }
    // Walls on the vertical grid lines x = i: (left, right) tops of each row.
    for i in 0..=nx {
        let pair = |r: usize| (zp[(r + 1) * pw + i], zp[(r + 1) * pw + i + 1]);
        for_runs(ny, pair, |r0, len, (l, rt)| {
            b.wall(r0 * w + i, w as isize, len, l.min(rt), l.max(rt), rt > l);
        });
    }
    // Walls on the horizontal grid lines y = j: (below, above) tops of each column.
    for j in 0..=ny {
        let pair = |c: usize| (zp[j * pw + c + 1], zp[(j + 1) * pw + c + 1]);
        for_runs(nx, pair, |c0, len, (d, u)| {
            b.wall(j * w + c0, 1, len, d.min(u), d.max(u), d > u);
        });
    }
    for k in 0..saddles.len() {
        b.bridge(k);
    }
    b.rect(0, nx, ny, 0.0, true);
    let triangles = b.tris;
    let volume = saddles
        .iter()
        .map(|s| leg * leg / 2.0 * (s.top() - s.lh))
        .sum();
    let bridges = Bridges {
        count: saddles.len(),
        leg,
        volume,
    };
    let mesh = Mesh {
        vertices,
        triangles,
    };
    Ok((mesh, bridges))
}

/// A saddle node and its bridge (module doc). Around the node, "Lh" is the higher of the two low
/// pixels (ties: the south one), "Ll" the other; the bridge fills the right triangle with legs ε
/// along Lh's two edges at the node, from Lh's top up to [`Saddle::top`].
#[derive(Clone, Copy, Debug)]
struct Saddle {
    /// Grid node index j·(nx+1) + i.
    node: usize,
    /// Grid steps from the node along Lh's edges: `u` along x (±1), `v` along y (±(nx+1)).
    u: isize,
    v: isize,
    /// Tops (base + h) of Ll, Lh, the high pixel across Lh's `u` edge and the one across its `v`
    /// edge.
    ll: f64,
    lh: f64,
    hu: f64,
    hv: f64,
}

impl Saddle {
    /// The bridge's top: the lower of the two high pixels.
    fn top(&self) -> f64 {
        self.hu.min(self.hv)
    }
}

/// The saddle nodes of a valid relief, in node order. Only interior nodes can be saddles: outside
/// the layer the "top" is 0, lower than every pixel.
fn saddles(relief: &Relief) -> Vec<Saddle> {
    let (nx, ny) = (relief.nx, relief.ny);
    let top = |r: usize, c: usize| relief.base + relief.heights[r * nx + c];
    let mut out = Vec::new();
    for j in 1..ny {
        for i in 1..nx {
            // Quadrant q: bit 0 = east, bit 1 = north ([SW, SE, NW, NE]).
            let z = [top(j - 1, i - 1), top(j - 1, i), top(j, i - 1), top(j, i)];
            let low = if z[0].min(z[3]) > z[1].max(z[2]) {
                [1, 2]
            } else if z[1].min(z[2]) > z[0].max(z[3]) {
                [0, 3]
            } else {
                continue;
            };
            let q = if z[low[1]] > z[low[0]] {
                low[1]
            } else {
                low[0]
            };
            let sx = if q & 1 == 1 { 1 } else { -1 };
            let sy = if q & 2 == 2 { 1 } else { -1 };
            out.push(Saddle {
                node: j * (nx + 1) + i,
                u: sx,
                v: sy * (nx as isize + 1),
                ll: z[q ^ 3],
                lh: z[q],
                hu: z[q ^ 2],
                hv: z[q ^ 1],
            });
        }
    }
    out
}

/// Flags (see `RUN_START`…) of every padded pixel; padding pixels get 0.
fn rect_flags(nx: usize, ny: usize, zp: &[f64]) -> Vec<u8> {
    let pw = nx + 2;
    // Does padded row `row` hold exactly the run [a, b) of height z?
    let same_run = |row: usize, a: usize, b: usize, z: f64| {
        let s = &zp[row * pw..(row + 1) * pw];
        s[a - 1] != z && s[b] != z && s[a..b].iter().all(|&v| v == z)
    };
    let mut fl = vec![0u8; zp.len()];
    for r in 1..=ny {
        let mut a = 1;
        while a <= nx {
            let z = zp[r * pw + a];
            let mut b = a + 1;
            while b <= nx && zp[r * pw + b] == z {
                b += 1;
            }
            let mut f = 0;
            if !same_run(r - 1, a, b, z) {
                f |= RECT_FIRST;
            }
            if !same_run(r + 1, a, b, z) {
                f |= RECT_LAST;
            }
            fl[r * pw + a..r * pw + b].fill(f);
            fl[r * pw + a] |= RUN_START;
            fl[r * pw + b - 1] |= RUN_END;
            a = b;
        }
    }
    fl
}

/// The mesh vertices, grouped by node and sorted by z within a node:
/// `offsets[node]..offsets[node + 1]`. Nodes are the grid nodes (i, j) (index j·(nx+1) + i),
/// then two per saddle k: its bridge points, `leg` from the node along `u` (grid + 2k) and along
/// `v` (grid + 2k + 1).
/// A vertex is made exactly where some facet has a corner: a top-rectangle corner, the end of a
/// wall run (at its lower and upper z), a bridge corner.
fn node_vertices(
    relief: &Relief,
    zp: &[f64],
    fl: &[u8],
    saddles: &[Saddle],
    saddle_at: &[u32],
    leg: f64,
) -> (Vec<u32>, Vec<[f64; 3]>) {
    let (nx, ny, pw) = (relief.nx, relief.ny, relief.nx + 2);
    let at = |i: usize, j: usize| {
        let x = (i as f64 - nx as f64 / 2.0) * relief.dx;
        (x, (j as f64 - ny as f64 / 2.0) * relief.dy)
    };
    let mut offsets = Vec::with_capacity((nx + 1) * (ny + 1) + 2 * saddles.len() + 1);
    let mut verts = Vec::with_capacity((nx + 1) * (ny + 1) * 2);
    let mut push = |(x, y): (f64, f64), cand: &mut [f64], verts: &mut Vec<[f64; 3]>| {
        offsets.push(verts.len() as u32);
        cand.sort_unstable_by(f64::total_cmp);
        for (k, &zv) in cand.iter().enumerate() {
            if k == 0 || zv != cand[k - 1] {
                verts.push([x, y, zv]);
            }
        }
    };
    for j in 0..=ny {
        for i in 0..=nx {
            let saddle = saddle_at[j * (nx + 1) + i];
            if saddle != u32::MAX {
                // Ll's corner, and the high pixels' wall ends and corners (Lh's corner is cut).
                let s = &saddles[saddle as usize];
                push(at(i, j), &mut [s.ll, s.hu, s.hv], &mut verts);
                continue;
            }
            let px = [
                j * pw + i,
                j * pw + i + 1,
                (j + 1) * pw + i,
                (j + 1) * pw + i + 1,
            ];
            let z = px.map(|p| zp[p]); // [south-west, south-east, north-west, north-east]
            let mut cand = [0.0; 12];
            let mut n = 0;
            // Vertical line: (SW, SE) vs (NW, NE); horizontal line: (SW, NW) vs (SE, NE).
            for [p, q, s, t] in [[0, 1, 2, 3], [0, 2, 1, 3]] {
                let (lo, hi) = ((z[p], z[q]), (z[s], z[t]));
                if lo != hi {
                    for (u, v) in [lo, hi] {
                        if u != v {
                            cand[n..n + 2].copy_from_slice(&[u, v]);
                            n += 2;
                        }
                    }
                }
            }
            // The node is the (TR, TL, BR, BL) corner of the SW, SE, NW, NE pixel's rectangle?
            let need = [
                RUN_END | RECT_LAST,
                RUN_START | RECT_LAST,
                RUN_END | RECT_FIRST,
                RUN_START | RECT_FIRST,
            ];
            for (k, p) in px.into_iter().enumerate() {
                if fl[p] & need[k] == need[k] {
                    cand[n] = z[k];
                    n += 1;
                }
            }
            push(at(i, j), &mut cand[..n], &mut verts);
        }
    }
    for s in saddles {
        let (x, y) = at(s.node % (nx + 1), s.node / (nx + 1));
        let (ex, ey) = (leg * s.u as f64, leg * s.v.signum() as f64);
        push((x + ex, y), &mut [s.lh, s.top(), s.hu], &mut verts);
        push((x, y + ey), &mut [s.lh, s.top(), s.hv], &mut verts);
    }
    offsets.push(verts.len() as u32);
    (offsets, verts)
}

/// Calls `emit(start, len, pair)` for each maximal run of equal `pair(k)`, k in 0..n, whose two
/// heights differ (a wall).
fn for_runs(
    n: usize,
    pair: impl Fn(usize) -> (f64, f64),
    mut emit: impl FnMut(usize, usize, (f64, f64)),
) {
    let mut k0 = 0;
    for k in 1..=n {
        if k == n || pair(k) != pair(k0) {
            let p = pair(k0);
            if p.0 != p.1 {
                emit(k0, k - k0, p);
            }
            k0 = k;
        }
    }
}

/// Assembles the facets: boundary polygon with all T-junction vertices, then triangles.
struct Builder<'a> {
    w: usize,
    /// Number of grid nodes; bridge points are the nodes after them.
    grid: usize,
    offsets: &'a [u32],
    verts: &'a [[f64; 3]],
    saddles: &'a [Saddle],
    saddle_at: &'a [u32],
    tris: Vec<[u32; 3]>,
    poly: Vec<u32>,
    corners: Vec<usize>,
}

impl Builder<'_> {
    fn find(&self, node: usize, z: f64) -> Option<u32> {
        (self.offsets[node]..self.offsets[node + 1]).find(|&v| self.verts[v as usize][2] == z)
    }

    fn push(&mut self, node: usize, z: f64) {
        let v = self.find(node, z).expect("every facet corner is a vertex");
        self.poly.push(v);
    }

    /// Pushes the vertex at (node, z) if there is one (a T-junction on a facet's side).
    fn push_if(&mut self, node: usize, z: f64) {
        if let Some(v) = self.find(node, z) {
            self.poly.push(v);
        }
    }

    /// Starts a new corner of the polygon at (node, z).
    fn corner(&mut self, node: usize, z: f64) {
        self.corners.push(self.poly.len());
        self.push(node, z);
    }

    /// The bridge point next to grid node `node` in direction `step`, and its saddle.
    fn bridge_point(&self, node: usize, step: isize) -> Option<(usize, Saddle)> {
        let k = *self.saddle_at.get(node)? as usize;
        let s = *self.saddles.get(k)?;
        let first = self.grid + 2 * k;
        (step == s.u)
            .then_some((first, s))
            .or((step == s.v).then_some((first + 1, s)))
    }

    /// The vertices at height z on the grid nodes node + k·step, k = 1 … len − 1.
    fn inside(&mut self, node: usize, step: isize, len: usize, z: f64) {
        for k in 1..len {
            self.push_if(node.wrapping_add_signed(step * k as isize), z);
        }
    }

    /// A side of a horizontal facet at height z from grid node `node` along `step` for `len`
    /// pixels: its corner, every vertex on it, and the bridge points near its ends. Where the
    /// facet is a bridged saddle's Lh top, the bridge cuts the corner away and its point on this
    /// side takes the corner's place.
    fn side(&mut self, node: usize, step: isize, len: usize, z: f64) {
        match self.bridge_point(node, step) {
            Some((x, s)) if z == s.lh => self.corner(x, z),
            near => {
                self.corner(node, z);
                if let Some((x, _)) = near {
                    self.push_if(x, z);
                }
            }
        }
        self.inside(node, step, len, z);
        let end = node.wrapping_add_signed(step * len as isize);
        if let Some((x, _)) = self.bridge_point(end, -step) {
            self.push_if(x, z);
        }
    }

    /// Corner (node, from), then the vertices of the node strictly between `from` and `to`.
    fn riser(&mut self, node: usize, from: f64, to: f64) {
        self.corner(node, from);
        let range = self.offsets[node]..self.offsets[node + 1];
        let inside =
            |v: &u32| (self.verts[*v as usize][2] - from) * (self.verts[*v as usize][2] - to) < 0.0;
        if from < to {
            self.poly.extend(range.filter(inside));
        } else {
            self.poly.extend(range.rev().filter(inside));
        }
    }

    /// Horizontal rectangle with corner node `a`, `nw × nh` pixels, at height z; normal +z
    /// (−z if `flip`).
    fn rect(&mut self, a: usize, nw: usize, nh: usize, z: f64, flip: bool) {
        let w = self.w as isize;
        self.side(a, 1, nw, z);
        self.side(a + nw, w, nh, z);
        self.side(a + nw + nh * self.w, -1, nw, z);
        self.side(a + nh * self.w, -w, nh, z);
        self.finish(flip);
    }

    /// Vertical rectangle from node `a` along `step` (±1: along x, ±(nx+1): along y) for `len`
    /// pixels, z ∈ [lo, hi]; normal = step direction × ẑ (−ŷ for +x, +x̂ for +y), negated if `flip`.
    /// An end at a bridged saddle, where this wall is between Lh and a high pixel, moves to the
    /// bridge point; if the bridge is lower than `hi`, the strip between node and bridge point
    /// above the bridge stays wall (a second rectangle).
    fn wall(&mut self, a: usize, step: isize, len: usize, lo: f64, hi: f64, flip: bool) {
        let e = a.wrapping_add_signed(step * len as isize);
        let (near_a, near_e) = (self.bridge_point(a, step), self.bridge_point(e, -step));
        let (ca, ce) = (near_a.map_or(a, |b| b.0), near_e.map_or(e, |b| b.0));
        self.corner(ca, lo);
        self.inside(a, step, len, lo);
        self.riser(ce, lo, hi);
        self.corner(ce, hi);
        self.inside(e, -step, len, hi);
        self.riser(ca, hi, lo);
        self.finish(flip);
        for (from, to, near) in [(a, ca, near_a), (ce, e, near_e)] {
            if let Some((_, s)) = near
                && s.top() < hi
            {
                self.quad([(from, s.top()), (to, s.top()), (to, hi), (from, hi)], flip);
            }
        }
    }

    /// Saddle k's bridge: its top triangle (normal +z) and its diagonal wall (normal along
    /// u + v, away from the node).
    fn bridge(&mut self, k: usize) {
        let s = self.saddles[k];
        let (a, c) = (self.grid + 2 * k, self.grid + 2 * k + 1);
        let (p, q) = if (s.u > 0) == (s.v > 0) {
            (a, c)
        } else {
            (c, a)
        };
        let top = s.top();
        let v = |n| self.find(n, top).expect("bridge corners are vertices");
        self.tris.push([v(s.node), v(p), v(q)]);
        self.quad([(p, s.lh), (q, s.lh), (q, top), (p, top)], false);
    }

    /// The quadrilateral with these (node, z) corners, counter-clockwise seen from outside
    /// (clockwise if `flip`); the nodes have no other vertex on its sides.
    fn quad(&mut self, corners: [(usize, f64); 4], flip: bool) {
        for (n, z) in corners {
            self.corner(n, z);
        }
        self.finish(flip);
    }

    /// Triangulates the convex polygon `poly` (counter-clockwise, 4 corners, other vertices on
    /// its sides) into n − 2 non-degenerate triangles: the diagonal corner0–corner2 splits it
    /// into two chains, each zipped between its two legs.
    fn finish(&mut self, flip: bool) {
        let n = self.poly.len();
        let [_, k1, k2, k3] = self.corners[..] else {
            unreachable!("a rectangle has four corners")
        };
        self.poly.push(self.poly[0]);
        zip(&self.poly[..=k2], k1, flip, &mut self.tris);
        zip(&self.poly[k2..=n], k3 - k2, flip, &mut self.tris);
        self.poly.clear();
        self.corners.clear();
    }
}

/// `chain` runs counter-clockwise along a convex polygon from one end of a diagonal to the corner
/// `chain[apex]` (the first leg), then on to the other end of the diagonal (the second leg). Each
/// leg is straight, except that a bridge point may bend it next to a corner; no point of one leg
/// lies on the line of a segment of the other. Zipping the two legs then never makes a triangle
/// of three collinear points.
fn zip(chain: &[u32], apex: usize, flip: bool, out: &mut Vec<[u32; 3]>) {
    let mut emit = |a, b, c| out.push(if flip { [a, c, b] } else { [a, b, c] });
    let last = chain.len() - 1;
    let (sa, sb) = (apex - 1, last - apex - 1);
    let (mut i, mut j) = (0, last);
    while i + 1 < apex || j > apex + 1 {
        let (pa, pb) = (i, last - j);
        if j == apex + 1 || (i + 1 < apex && (2 * pa + 1) * sb <= (2 * pb + 1) * sa) {
            emit(chain[i], chain[i + 1], chain[j]);
            i += 1;
        } else {
            emit(chain[i], chain[j - 1], chain[j]);
            j -= 1;
        }
    }
    emit(chain[i], chain[apex], chain[j]);
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl Mesh {
    /// A closed, consistently oriented 2-manifold: indices in range, no zero-area triangle
    /// (|e1 × e2| ≤ 1e-12·|e1|·|e2|), every edge a→b used exactly once and b→a exactly once, and
    /// the triangles around every used vertex one single fan (no two cones touching at a point).
    /// Errors name the failing triangle, edge or vertex.
    pub fn check_watertight(&self) -> Result<EdgeReport, StlError> {
        self.check_indices()?;
        let count = self.vertices.len();
        for (triangle, tri) in self.triangles.iter().enumerate() {
            let [a, b, c] = tri.map(|v| self.vertices[v as usize]);
            let (e1, e2) = (sub(b, a), sub(c, a));
            let n = cross(e1, e2);
            if dot(n, n) <= 1e-24 * dot(e1, e1) * dot(e2, e2) {
                return Err(StlError::Degenerate {
                    triangle,
                    vertices: *tri,
                });
            }
        }
        // Per vertex (CSR), the link edges of its triangles: for triangle (a, b, c), b→c at a,
        // c→a at b and a→b at c.
        let links = || {
            self.triangles
                .iter()
                .flat_map(|&[a, b, c]| [(a, b, c), (b, c, a), (c, a, b)])
        };
        let mut start = vec![0usize; count + 1];
        for (v, _, _) in links() {
            start[v as usize + 1] += 1;
        }
        for k in 0..count {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut link = vec![(0u32, 0u32); 3 * self.triangles.len()];
        for (v, p, q) in links() {
            link[fill[v as usize]] = (p, q);
            fill[v as usize] += 1;
        }
        let mut report = EdgeReport::default();
        let mut targets = Vec::new();
        for v in 0..count {
            let fan = &mut link[start[v]..start[v + 1]];
            if fan.is_empty() {
                continue;
            }
            report.vertices += 1;
            // Edge v→p is used once per link edge leaving p; v←q... once per link edge into q.
            fan.sort_unstable();
            targets.clear();
            targets.extend(fan.iter().map(|l| l.1));
            targets.sort_unstable();
            let out_uses =
                |p: u32| fan.partition_point(|l| l.0 < p)..fan.partition_point(|l| l.0 <= p);
            let in_uses =
                |q: u32| targets.partition_point(|&t| t < q)..targets.partition_point(|&t| t <= q);
            for (k, &(p, _)) in fan.iter().enumerate() {
                if k > 0 && fan[k - 1].0 == p {
                    continue;
                }
                // v→p is in the triangles whose link at v leaves p; p→v in those entering p.
                let (forward, backward) = (out_uses(p).len(), in_uses(p).len());
                if forward != 1 || backward != 1 {
                    return Err(self.edge_error(v as u32, p, forward, backward));
                }
                report.edges += usize::from(v < p as usize);
            }
            for &t in targets.iter() {
                if out_uses(t).is_empty() {
                    return Err(self.edge_error(v as u32, t, 0, in_uses(t).len()));
                }
            }
            // Every link node has one successor: walk the cycle from the first.
            let mut at = fan[0].0;
            let mut steps = 0;
            loop {
                at = fan[out_uses(at).start].1;
                steps += 1;
                if at == fan[0].0 {
                    break;
                }
            }
            if steps != fan.len() {
                return Err(StlError::PinchedVertex {
                    vertex: v as u32,
                    p: self.vertices[v],
                    triangles: fan.len(),
                    fan: steps,
                });
            }
        }
        Ok(report)
    }

    /// The error for edge a–b used `forward` times as a→b and `backward` times as b→a.
    fn edge_error(&self, a: u32, b: u32, forward: usize, backward: usize) -> StlError {
        let (pa, pb) = (self.vertices[a as usize], self.vertices[b as usize]);
        if forward == backward {
            StlError::NonManifoldEdge {
                a,
                b,
                pa,
                pb,
                uses: forward + backward,
            }
        } else {
            StlError::OpenEdge {
                a,
                b,
                pa,
                pb,
                forward,
                backward,
            }
        }
    }

    fn check_indices(&self) -> Result<(), StlError> {
        let count = self.vertices.len();
        for (triangle, tri) in self.triangles.iter().enumerate() {
            if let Some(&vertex) = tri.iter().find(|&&v| v as usize >= count) {
                return Err(StlError::BadIndex {
                    triangle,
                    vertex,
                    count,
                });
            }
        }
        Ok(())
    }

    /// Enclosed volume by the divergence theorem, Σ v0·(v1 × v2) / 6, in cubed vertex units;
    /// positive when the triangles are oriented outward.
    pub fn volume(&self) -> f64 {
        let v = |k: u32| self.vertices[k as usize];
        let s: f64 = self
            .triangles
            .iter()
            .map(|t| dot(v(t[0]), cross(v(t[1]), v(t[2]))))
            .sum();
        s / 6.0
    }

    /// Axis-aligned bounding box (min, max) of all vertices; (+∞, −∞) for an empty mesh.
    pub fn bbox(&self) -> ([f64; 3], [f64; 3]) {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in &self.vertices {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        (lo, hi)
    }
}

/// Writes `mesh` (vertices in metres) as binary STL with coordinates divided by `unit` metres
/// (`unit = 1e-3`: millimetres, the 3D-printer convention) and rounded to f32; facet normals are
/// the unit right-hand-rule normals. Fails if a triangle collapses in f32.
pub fn write_stl(w: &mut impl Write, mesh: &Mesh, unit: f64) -> Result<StlStats, StlError> {
    if !(unit.is_finite() && unit > 0.0) {
        return Err(StlError::Unit(unit));
    }
    let n = mesh.triangles.len();
    if n > u32::MAX as usize {
        return Err(StlError::TooLarge(n));
    }
    let pts: Vec<[f32; 3]> = mesh
        .vertices
        .iter()
        .map(|p| p.map(|c| (c / unit) as f32))
        .collect();
    mesh.check_indices()?;
    // Facet normal from the f32 coordinates actually written; zero means the triangle collapsed.
    let facet = |t: &[u32; 3]| {
        let v = t.map(|k| pts[k as usize]);
        let f = v.map(|p| p.map(f64::from));
        let n = cross(sub(f[1], f[0]), sub(f[2], f[0]));
        (v, n.map(|c| c / dot(n, n).sqrt()))
    };
    let mut bbox_min = [f64::INFINITY; 3];
    let mut bbox_max = [f64::NEG_INFINITY; 3];
    for (triangle, t) in mesh.triangles.iter().enumerate() {
        let (v, n) = facet(t);
        if !n.iter().all(|c| c.is_finite()) {
            return Err(StlError::Precision { triangle, unit });
        }
        for p in v {
            for k in 0..3 {
                bbox_min[k] = bbox_min[k].min(f64::from(p[k]));
                bbox_max[k] = bbox_max[k].max(f64::from(p[k]));
            }
        }
    }
    let facets = mesh.triangles.iter().map(|t| {
        let (v, n) = facet(t);
        let (normal, vertices) = (
            stl_io::Normal::new(n.map(|c| c as f32)),
            v.map(stl_io::Vertex::new),
        );
        stl_io::Triangle { normal, vertices }
    });
    stl_io::write_stl(w, facets)?;
    let bytes = 84 + 50 * n as u64;
    Ok(StlStats {
        triangles: n,
        bytes,
        bbox_min,
        bbox_max,
    })
}

/// Reads an STL (binary; ASCII also works, via stl_io) into a [`Mesh`] in file units, welding
/// vertices with identical coordinates (−0.0 counts as 0.0) into one vertex. Facet normals in the
/// file are ignored: orientation comes from the vertex order.
pub fn read_stl(r: &mut (impl Read + Seek)) -> Result<Mesh, StlError> {
    let m = stl_io::read_stl(r)?;
    if m.vertices.len() > u32::MAX as usize {
        return Err(StlError::TooLarge(m.vertices.len()));
    }
    let mut index: HashMap<[u32; 3], u32> = HashMap::with_capacity(m.vertices.len());
    let mut vertices = Vec::with_capacity(m.vertices.len());
    let mut remap = Vec::with_capacity(m.vertices.len());
    for v in &m.vertices {
        let p = v.0.map(|c| c + 0.0); // −0.0 + 0.0 = +0.0
        let k = *index.entry(p.map(f32::to_bits)).or_insert_with(|| {
            vertices.push(p.map(f64::from));
            (vertices.len() - 1) as u32
        });
        remap.push(k);
    }
    let triangles = m
        .faces
        .iter()
        .map(|f| f.vertices.map(|k| remap[k]))
        .collect();
    Ok(Mesh {
        vertices,
        triangles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// `$e` is an `Err` matching `$p`.
    macro_rules! fails {
        ($e:expr, $p:pat $(if $g:expr)?) => {{
            let e = $e.unwrap_err();
            assert!(matches!(e, $p $(if $g)?), "unexpected error: {e}");
        }};
    }

    /// `n` deterministic xorshift levels in 0..levels, times `step`, plus `offset` (metres).
    fn levels(n: usize, levels: u64, mut seed: u64, step: f64, offset: f64) -> Vec<f64> {
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % levels
        };
        (0..n).map(|_| next() as f64 * step + offset).collect()
    }

    fn relief(nx: usize, ny: usize, heights: &[f64], base: f64) -> Relief<'_> {
        let (dx, dy) = (8e-6, 8e-6);
        Relief {
            nx,
            ny,
            dx,
            dy,
            heights,
            base,
        }
    }

    fn close(a: f64, b: f64, tol: f64, what: &str) {
        assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
    }

    /// Mesh checks, STL round trip in millimetres; returns the mesh.
    fn check(r: &Relief) -> Mesh {
        let (m, bridges) = relief_mesh(r).unwrap();
        m.check_watertight().unwrap();
        let vol: f64 = r
            .heights
            .iter()
            .map(|h| (r.base + h) * r.dx * r.dy)
            .sum::<f64>()
            + bridges.volume;
        close(m.volume(), vol, 1e-9 * vol, "volume");
        let top = r.base + r.heights.iter().fold(0.0, |a: f64, &b| a.max(b));
        let (hx, hy) = (r.nx as f64 * r.dx / 2.0, r.ny as f64 * r.dy / 2.0);
        let want = [-hx, -hy, 0.0, hx, hy, top];
        let (lo, hi) = m.bbox();
        for (got, want) in lo.iter().chain(&hi).zip(want) {
            close(*got, want, 1e-12 * (hx + hy + top), "bbox");
        }
        let mut buf = Vec::new();
        let stats = write_stl(&mut buf, &m, 1e-3).unwrap();
        assert_eq!(
            (stats.triangles, stats.bytes),
            (m.triangles.len(), buf.len() as u64)
        );
        let back = read_stl(&mut Cursor::new(&buf)).unwrap();
        back.check_watertight().unwrap();
        assert_eq!(back.triangles.len(), m.triangles.len());
        assert_eq!(back.vertices.len(), m.vertices.len(), "welding");
        close(back.volume(), vol * 1e9, 1e-5 * vol * 1e9, "volume in mm³");
        let (blo, bhi) = back.bbox();
        let in_file = stats.bbox_min.iter().chain(&stats.bbox_max);
        for ((got, file), want) in blo.iter().chain(&bhi).zip(in_file).zip(want) {
            assert_eq!(got, file);
            close(*got, want * 1e3, 1e-6 * (hx + hy + top) * 1e3, "bbox in mm");
        }
        m
    }

    #[test]
    fn single_pixel_and_flat_map_are_boxes() {
        assert_eq!(check(&relief(1, 1, &[3e-7], 1e-5)).triangles.len(), 12);
        let m = check(&relief(5, 4, &[2e-7; 20], 1e-5));
        assert_eq!(m.triangles.len(), 12);
        let report = m.check_watertight().unwrap();
        assert_eq!((report.edges, report.vertices), (18, 8));
    }

    #[test]
    fn two_by_two_distinct() {
        check(&relief(2, 2, &[1e-7, 2e-7, 3e-7, 4e-7], 5e-6));
    }

    #[test]
    fn checkerboard_saddles_are_bridged() {
        let h: Vec<f64> = (0..42)
            .map(|k| ((k % 7 + k / 7) % 2) as f64 * 5e-7)
            .collect();
        let r = relief(7, 6, &h, 2e-6);
        check(&r);
        // 6·5 interior saddle nodes, each bridged over the 0.5 µm between the two levels.
        let (_, bridges) = relief_mesh(&r).unwrap();
        let leg = 1e-3 * 8e-6_f64.max(1e-2 * 7.0 * 8e-6);
        assert_eq!(bridges.count, 30);
        close(bridges.leg, leg, 1e-20, "leg");
        close(
            bridges.volume,
            30.0 * leg * leg / 2.0 * 5e-7,
            1e-30,
            "bridge volume",
        );
    }

    #[test]
    fn saddles_of_every_shape() {
        // Around one node: [SW, SE, NW, NE] with the high pair equal or not, the low pair equal
        // or not, and each diagonal high; bridges then span different heights.
        let tops = [
            [5.0, 1.0, 2.0, 5.0],
            [5.0, 2.0, 1.0, 4.0],
            [3.0, 1.0, 1.0, 6.0],
            [1.0, 4.0, 6.0, 2.0],
            [2.0, 6.0, 4.0, 2.0],
            [1.0, 3.0, 3.0, 1.0],
        ];
        for z in tops {
            let h = z.map(|t| t * 1e-7);
            let r = relief(2, 2, &h, 0.0);
            let m = check(&r);
            let (_, bridges) = relief_mesh(&r).unwrap();
            assert_eq!(bridges.count, 1, "{z:?}");
            let (lo, hi) = (
                [z[1].max(z[2]), z[0].max(z[3])],
                [z[0].min(z[3]), z[1].min(z[2])],
            );
            let span = if hi[0] > lo[0] {
                hi[0] - lo[0]
            } else {
                hi[1] - lo[1]
            };
            let leg = bridges.leg;
            close(
                bridges.volume,
                leg * leg / 2.0 * span * 1e-7,
                1e-30,
                "bridge volume",
            );
            // Some vertex lies off the pixel grid, one leg from the centre node.
            let off = m
                .vertices
                .iter()
                .filter(|p| {
                    (p[0].abs() - leg).abs() < 1e-12 * leg || (p[1].abs() - leg).abs() < 1e-12 * leg
                })
                .count();
            assert!(off >= 4, "{z:?}: {off} bridge vertices");
        }
    }

    #[test]
    fn random_levels_non_square() {
        let h = levels(37 * 23, 8, 7, 1.5e-7, 0.0);
        let r = Relief {
            dy: 5e-6,
            ..relief(37, 23, &h, 2e-5)
        };
        check(&r);
        // Few levels: large irregular regions, many T-junctions.
        for (lv, seed) in [(2, 11), (3, 12)] {
            check(&Relief {
                nx: 41,
                ny: 29,
                heights: &levels(41 * 29, lv, seed, 1e-6, 0.0),
                ..r
            });
        }
        // Millimetre-scale (terahertz) element on base 0, all heights > 0.
        let h = levels(37 * 23, 8, 9, 1e-4, 1e-4);
        check(&Relief {
            nx: 37,
            ny: 23,
            dx: 5e-4,
            dy: 7e-4,
            heights: &h,
            base: 0.0,
        });
    }

    #[test]
    fn base_zero_needs_positive_heights() {
        check(&relief(3, 2, &[1e-6, 2e-6, 1e-6, 3e-6, 3e-6, 1e-6], 0.0));
        let h = [1e-6, 0.0, 1e-6, 1e-6];
        fails!(
            relief_mesh(&relief(2, 2, &h, 0.0)),
            StlError::ZeroThickness { row: 0, col: 1 }
        );
        check(&relief(2, 2, &h, 1e-6)); // fine on a base
    }

    #[test]
    fn axes_follow_pixel_convention() {
        // Only pixel (r = 1, c = 2) is tall: it spans x ∈ [0.5, 1.5]·dx, y ∈ [0, 1]·dy.
        let h = [1.0, 1.0, 1.0, 1.0, 1.0, 5.0];
        let r = Relief {
            nx: 3,
            ny: 2,
            dx: 2.0,
            dy: 3.0,
            heights: &h,
            base: 1.0,
        };
        let (m, _) = relief_mesh(&r).unwrap();
        let tall: Vec<_> = m.vertices.iter().filter(|p| p[2] == 6.0).collect();
        assert_eq!(tall.len(), 4);
        assert!(
            tall.iter()
                .all(|p| [1.0, 3.0].contains(&p[0]) && [0.0, 3.0].contains(&p[1]))
        );
    }

    #[test]
    fn merging_keeps_files_small() {
        let (n, naive) = (200, 4 * 200 * 200);
        let block = levels(400, 8, 3, 1e-7, 0.0);
        let h: Vec<f64> = (0..n * n)
            .map(|k| block[(k / n / 10) * 20 + k % n / 10])
            .collect();
        let m = check(&relief(n, n, &h, 1e-5));
        println!("200×200, 10×10 blocks: {} triangles", m.triangles.len());
        assert!(
            m.triangles.len() * 20 < naive,
            "{} triangles",
            m.triangles.len()
        );
        let h = levels(n * n, 8, 5, 1e-7, 0.0);
        let r = relief(n, n, &h, 1e-5);
        let (m, bridges) = (check(&r), relief_mesh(&r).unwrap().1);
        let t = m.triangles.len();
        let b = bridges.count;
        println!(
            "200×200 random: {t} triangles, {} bytes, {b} bridges",
            84 + 50 * t
        );
        // A bridge costs at most 9 triangles: its own 3, two strips and 4 bridge points.
        assert!(t < 2 * naive + 9 * b, "{t} triangles, {b} bridges");
    }

    #[test]
    fn watertight_check_catches_defects() {
        let (m, _) = relief_mesh(&relief(2, 2, &[1e-7, 2e-7, 3e-7, 4e-7], 5e-6)).unwrap();
        let uses = |m: &Mesh| match m.check_watertight() {
            Err(StlError::OpenEdge {
                forward: f,
                backward: b,
                ..
            }) => (f.min(b), f.max(b)),
            other => panic!("expected an open edge, got {other:?}"),
        };
        let mut holed = m.clone();
        holed.triangles.remove(5);
        assert_eq!(uses(&holed), (0, 1));
        let mut flipped = m.clone();
        flipped.triangles[7].swap(0, 1);
        assert_eq!(uses(&flipped), (0, 2));
        let (mut degenerate, n) = (m.clone(), m.triangles.len());
        let [a, b, _] = m.triangles[0];
        degenerate.triangles.push([a, b, a]);
        let err = degenerate.check_watertight();
        fails!(err, StlError::Degenerate { triangle, .. } if triangle == n);
        let mut bad = m;
        bad.triangles[0][2] = 999;
        fails!(
            bad.check_watertight(),
            StlError::BadIndex {
                triangle: 0,
                vertex: 999,
                ..
            }
        );
        fails!(
            write_stl(&mut Vec::new(), &bad, 1e-3),
            StlError::BadIndex { .. }
        );
        // Two closed tetrahedra that share an edge, and two that share only a vertex: each is
        // closed and oriented, but not a 2-manifold.
        let mut vertices = vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        vertices.extend([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]);
        let tet = [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]];
        let mut edge = Mesh {
            vertices: vertices.clone(),
            triangles: tet.to_vec(),
        };
        edge.triangles
            .extend([[0, 5, 4], [0, 4, 3], [0, 3, 5], [4, 5, 3]]);
        close(edge.volume(), 2.0 / 6.0, 1e-12, "edge-sharing tetrahedra");
        fails!(
            edge.check_watertight(),
            StlError::NonManifoldEdge {
                a: 0,
                b: 3,
                uses: 4,
                ..
            }
        );
        let mut pinched = Mesh {
            vertices,
            triangles: tet.to_vec(),
        };
        pinched
            .triangles
            .extend([[0, 4, 5], [0, 6, 4], [0, 5, 6], [4, 6, 5]]);
        close(
            pinched.volume(),
            2.0 / 6.0,
            1e-12,
            "vertex-sharing tetrahedra",
        );
        fails!(
            pinched.check_watertight(),
            StlError::PinchedVertex {
                vertex: 0,
                triangles: 6,
                fan: 3,
                ..
            }
        );
    }

    #[test]
    fn read_welds_and_fails_cleanly() {
        // Tetrahedron whose origin vertex appears as +0.0 and −0.0.
        let vertices = vec![
            [0.0; 3],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [-0.0, 0.0, 0.0],
        ];
        let m = Mesh {
            vertices,
            triangles: vec![[0, 2, 1], [4, 1, 3], [0, 3, 2], [1, 2, 3]],
        };
        let mut buf = Vec::new();
        write_stl(&mut buf, &m, 1.0).unwrap();
        let back = read_stl(&mut Cursor::new(&buf)).unwrap();
        assert_eq!(back.vertices.len(), 4);
        back.check_watertight().unwrap();
        close(back.volume(), 1.0 / 6.0, 1e-12, "tetrahedron");
        fails!(read_stl(&mut Cursor::new(&buf[..100])), StlError::Io(_));
    }

    #[test]
    fn bad_input_is_named() {
        let h = [1e-6; 4];
        let r = relief(2, 2, &h, 0.0);
        fails!(
            relief_mesh(&relief(3, 2, &h, 0.0)),
            StlError::HeightCount {
                expected: 6,
                got: 4
            }
        );
        fails!(
            relief_mesh(&relief(0, 4, &h, 0.0)),
            StlError::EmptyRelief { nx: 0, ny: 4 }
        );
        let neg = [1e-6, -1e-9, 0.0, 0.0];
        fails!(
            relief_mesh(&relief(2, 2, &neg, 1.0)),
            StlError::Height { row: 0, col: 1, .. }
        );
        let nan = [1e-6, 0.0, f64::NAN, 0.0];
        fails!(
            relief_mesh(&relief(2, 2, &nan, 1.0)),
            StlError::Height { row: 1, col: 0, .. }
        );
        fails!(relief_mesh(&relief(2, 2, &h, -1.0)), StlError::Base(_));
        for (dx, dy) in [
            (0.0, 1e-6),
            (1e-6, -1e-6),
            (f64::INFINITY, 1e-6),
            (1e-6, f64::NAN),
        ] {
            fails!(relief_mesh(&Relief { dx, dy, ..r }), StlError::Pitch { .. });
        }
        let (m, _) = relief_mesh(&r).unwrap();
        fails!(write_stl(&mut Vec::new(), &m, 0.0), StlError::Unit(_));
        // Heights 1 nm apart on a 1 km base collapse in f32 millimetres.
        let (m, _) = relief_mesh(&relief(2, 1, &[0.0, 1e-9], 1e3)).unwrap();
        fails!(
            write_stl(&mut Vec::new(), &m, 1e-3),
            StlError::Precision { .. }
        );
    }
}
