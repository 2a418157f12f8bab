//! Detectors: energy collected in rectangular regions of the output plane.
//!
//! The intensity of every sample is [`Field::intensity`]; this module integrates it over
//! [`Region`]s. A [`Detector`] precomputes, for each region, the fraction of every pixel inside it
//! (exact rectangle–pixel overlap, [`rect_coverage`] — the same coverage geometry as the
//! apertures of [`crate::elements`]) and returns energies `Σ coverage·|E|²·dx·dy` accumulated in
//! f64 (units: field units² × m², i.e. W for a field in √W/m).
//!
//! Regions may overlap: each region integrates independently, so light in an overlap counts
//! towards every region that contains it (the energies then sum to more than the power).
//! [`Detector::grid_layout`] arranges N equal, disjoint squares in centred rows (3-4-3 for the
//! ten classes of Lin et al., *Science* 361, 1004 (2018)).
//!
//! ```
//! use photonflow_optics::detect::Detector;
//! use photonflow_optics::field::Field;
//! use photonflow_optics::grid::Grid;
//! use num_complex::Complex;
//!
//! let grid = Grid::square(200, 4e-6)?;
//! let det = Detector::grid_layout(grid, 10, 80e-6, 40e-6)?;          // 10 squares of 80 µm
//! let field = Field::<f32>::from_fn(grid, 532e-9, |_, _| Complex::from(1.0))?;
//! let e = det.energies(&field)?;                                      // [B = 1, R = 10]
//! assert!(e.iter().all(|&e| (e - 80e-6 * 80e-6).abs() < 1e-6 * 80e-6 * 80e-6));
//! # Ok::<(), photonflow_optics::error::OpticsError>(())
//! ```

use std::ops::Range;

use rayon::prelude::*;

use crate::elements::{check_grid, describe_grid, rect_coverage, window};
use crate::error::{Result, invalid};
use crate::field::{Field, Real};
use crate::grid::Grid;
use crate::units::format_length;

/// An axis-aligned rectangle of the detector plane, metres.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Centre `(x, y)`, metres.
    pub centre: (f64, f64),
    /// Full width along x, metres.
    pub width: f64,
    /// Full height along y, metres.
    pub height: f64,
    /// Optional name (a class label), used in error messages and reports.
    pub label: Option<String>,
}

impl Region {
    /// A `width × height` (m) rectangle centred at `centre` (m), unlabelled.
    pub fn new(centre: (f64, f64), width: f64, height: f64) -> Self {
        Self {
            centre,
            width,
            height,
            label: None,
        }
    }

    /// A square of side `size` (m) centred at `centre` (m), unlabelled.
    pub fn square(centre: (f64, f64), size: f64) -> Self {
        Self::new(centre, size, size)
    }

    /// The same region with a label.
    pub fn with_label(self, label: impl Into<String>) -> Self {
        Self {
            label: Some(label.into()),
            ..self
        }
    }

    /// Area `width·height`, m².
    pub fn area(&self) -> f64 {
        self.width * self.height
    }

    /// Edges `((x_min, x_max), (y_min, y_max))`, metres.
    pub fn bounds(&self) -> ((f64, f64), (f64, f64)) {
        let (cx, cy) = self.centre;
        (
            (cx - 0.5 * self.width, cx + 0.5 * self.width),
            (cy - 0.5 * self.height, cy + 0.5 * self.height),
        )
    }

    /// True when the interiors of the two rectangles intersect (touching edges do not overlap).
    pub fn overlaps(&self, other: &Region) -> bool {
        let ((a0, a1), (b0, b1)) = self.bounds();
        let ((c0, c1), (d0, d1)) = other.bounds();
        a0 < c1 && c0 < a1 && b0 < d1 && d0 < b1
    }

    fn name(&self, index: usize) -> String {
        match &self.label {
            Some(l) => format!("region {index} ('{l}')"),
            None => format!("region {index}"),
        }
    }
}

/// Rectangular detector regions on one grid, with their precomputed pixel weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    grid: Grid,
    regions: Vec<Region>,
    /// `[R, ny, nx]` fraction of each pixel inside each region.
    weights: Vec<f32>,
    /// Rows and columns where each region's weights are non-zero.
    boxes: Vec<(Range<usize>, Range<usize>)>,
}

impl Detector {
    /// A detector of `regions` on `grid`.
    ///
    /// Errors: no region; a non-finite centre; a width or height that is not positive (zero
    /// area); a region reaching outside the window (the pixels' outer edges). Overlapping regions
    /// are allowed: each integrates independently, so shared light counts for both.
    pub fn new(grid: Grid, regions: Vec<Region>) -> Result<Self> {
        if regions.is_empty() {
            return Err(invalid(
                "detector regions",
                "a detector needs at least one region",
            ));
        }
        let ((wx0, wx1), (wy0, wy1)) = window(&grid);
        let tol = 1e-9 * grid.dx.max(grid.dy);
        for (i, r) in regions.iter().enumerate() {
            let name = r.name(i);
            if !(r.centre.0.is_finite() && r.centre.1.is_finite()) {
                return Err(invalid(
                    "detector region",
                    format!("{name} has a non-finite centre {:?}", r.centre),
                ));
            }
            if !(r.width.is_finite() && r.width > 0.0 && r.height.is_finite() && r.height > 0.0) {
                return Err(invalid(
                    "detector region",
                    format!(
                        "{name} is {} × {}: a region needs a finite positive width and height \
                         (non-zero area)",
                        r.width, r.height
                    ),
                ));
            }
            let ((x0, x1), (y0, y1)) = r.bounds();
            if x0 < wx0 - tol || x1 > wx1 + tol || y0 < wy0 - tol || y1 > wy1 + tol {
                return Err(invalid(
                    "detector region",
                    format!(
                        "{name} spans x ∈ [{}, {}], y ∈ [{}, {}] but the window of {} covers \
                         x ∈ [{}, {}], y ∈ [{}, {}]; move or shrink the region or enlarge the grid",
                        format_length(x0),
                        format_length(x1),
                        format_length(y0),
                        format_length(y1),
                        describe_grid(&grid),
                        format_length(wx0),
                        format_length(wx1),
                        format_length(wy0),
                        format_length(wy1)
                    ),
                ));
            }
        }
        let n = grid.len();
        let mut weights = Vec::with_capacity(regions.len() * n);
        let mut boxes = Vec::with_capacity(regions.len());
        for r in &regions {
            let c = rect_coverage(&grid, r.centre, r.width, r.height);
            let rows: Vec<usize> = (0..grid.ny)
                .filter(|&i| c[i * grid.nx..(i + 1) * grid.nx].iter().any(|&w| w > 0.0))
                .collect();
            let cols: Vec<usize> = (0..grid.nx)
                .filter(|&j| (0..grid.ny).any(|i| c[i * grid.nx + j] > 0.0))
                .collect();
            let span = |v: &[usize]| match (v.first(), v.last()) {
                (Some(&a), Some(&b)) => a..b + 1,
                _ => 0..0,
            };
            boxes.push((span(&rows), span(&cols)));
            weights.extend(c.into_iter().map(|w| w as f32));
        }
        Ok(Self {
            grid,
            regions,
            weights,
            boxes,
        })
    }

    /// How [`grid_layout`](Self::grid_layout) splits `n_regions` into rows, top (smallest y)
    /// first: `round(√N)` rows of `⌊N/rows⌋` regions, the remainder spread symmetrically from
    /// the middle outwards (an odd remainder with an odd row count puts one in the middle row
    /// first; then pairs of rows mirror each other, nearest the middle first; a last odd one
    /// goes to the upper row of the next pair). 10 → `[3, 4, 3]`, 9 → `[3, 3, 3]`,
    /// 8 → `[3, 2, 3]`, 5 → `[3, 2]`, 4 → `[2, 2]`, 2 → `[2]`.
    pub fn layout_rows(n_regions: usize) -> Vec<usize> {
        if n_regions == 0 {
            return Vec::new();
        }
        let rows = ((n_regions as f64).sqrt().round() as usize).max(1);
        let mut counts = vec![n_regions / rows; rows];
        let mut extra = n_regions % rows;
        if rows % 2 == 1 && extra % 2 == 1 {
            counts[rows / 2] += 1;
            extra -= 1;
        }
        // Mirror pairs (upper, lower), nearest the middle first.
        let pairs: Vec<(usize, usize)> = (0..rows / 2).rev().map(|i| (i, rows - 1 - i)).collect();
        let mut pairs = pairs.into_iter();
        while extra > 0 {
            let (a, b) = pairs.next().expect("fewer extras than rows");
            counts[a] += 1;
            extra -= 1;
            if extra > 0 {
                counts[b] += 1;
                extra -= 1;
            }
        }
        counts
    }

    /// `n_regions` equal squares of side `size` (m) in centred rows, with edge-to-edge `gap` (m)
    /// between neighbours in a row and between rows.
    ///
    /// Arrangement: rows as in [`layout_rows`](Self::layout_rows) (10 → 3-4-3), each row centred
    /// on `x = 0` with centre-to-centre spacing `size + gap`, the rows centred on `y = 0` with the
    /// same spacing — the block is centred on the optical axis (sample `⌊n/2⌋`). Regions are
    /// numbered row by row from the smallest `y` (row 0 of the arrays), left to right (increasing
    /// `x`), and labelled `"0"`, `"1"`, …. With `gap > 0` the regions are disjoint; the error
    /// for a layout that does not fit gives the window it needs.
    pub fn grid_layout(grid: Grid, n_regions: usize, size: f64, gap: f64) -> Result<Self> {
        if n_regions == 0 {
            return Err(invalid("detector regions", "ask for at least one region"));
        }
        Self::rows_layout(grid, &Self::layout_rows(n_regions), size, gap)
    }

    /// A camera-like array of `nx × ny` equal squares of side `size` (m), `gap` (m) apart edge to
    /// edge, centred on the optical axis: the layout of [`grid_layout`](Self::grid_layout) with
    /// `ny` rows of `nx`, numbered row by row from the smallest `y`, left to right.
    pub fn array_layout(grid: Grid, (nx, ny): (usize, usize), size: f64, gap: f64) -> Result<Self> {
        if nx == 0 || ny == 0 {
            return Err(invalid(
                "detector array",
                format!("{nx} × {ny}: ask for at least one region per axis"),
            ));
        }
        Self::rows_layout(grid, &vec![nx; ny], size, gap)
    }

    /// Width and height (m) of the largest block centred on the optical axis that fits in the
    /// grid's window (an even grid's window reaches half a sample less on the positive side).
    pub fn centred_extent(grid: &Grid) -> (f64, f64) {
        let ((wx0, wx1), (wy0, wy1)) = window(grid);
        (2.0 * wx1.min(-wx0), 2.0 * wy1.min(-wy0))
    }

    /// Squares in centred rows of `rows[r]` each (see [`grid_layout`](Self::grid_layout)).
    fn rows_layout(grid: Grid, rows: &[usize], size: f64, gap: f64) -> Result<Self> {
        let n_regions: usize = rows.iter().sum();
        crate::error::positive("detector region size", size)?;
        if !(gap.is_finite() && gap >= 0.0) {
            return Err(invalid(
                "detector gap",
                format!("{gap} is not a finite length ≥ 0"),
            ));
        }
        let pitch = size + gap;
        let widest = *rows.iter().max().expect("at least one row");
        let need_w = widest as f64 * size + (widest - 1) as f64 * gap;
        let need_h = rows.len() as f64 * size + (rows.len() - 1) as f64 * gap;
        // The block is centred on 0, so it must fit in the narrower half of the window.
        let (w, h) = Self::centred_extent(&grid);
        let (half_w, half_h) = (w / 2.0, h / 2.0);
        if need_w > 2.0 * half_w * (1.0 + 1e-12) || need_h > 2.0 * half_h * (1.0 + 1e-12) {
            return Err(invalid(
                "detector layout",
                format!(
                    "{n_regions} squares of {} with gaps of {} in rows {rows:?} need a {} × {} \
                     block centred on the axis, but the window of {} only allows {} × {}; use \
                     smaller squares or gaps, or a larger grid",
                    format_length(size),
                    format_length(gap),
                    format_length(need_w),
                    format_length(need_h),
                    describe_grid(&grid),
                    format_length(2.0 * half_w),
                    format_length(2.0 * half_h)
                ),
            ));
        }
        let mut regions = Vec::with_capacity(n_regions);
        let y_first = -0.5 * (rows.len() - 1) as f64 * pitch;
        for (r, &count) in rows.iter().enumerate() {
            let y = y_first + r as f64 * pitch;
            let x_first = -0.5 * (count - 1) as f64 * pitch;
            for c in 0..count {
                let x = x_first + c as f64 * pitch;
                let i = regions.len();
                regions.push(Region::square((x, y), size).with_label(i.to_string()));
            }
        }
        Self::new(grid, regions)
    }

    /// Energy in every region for every field of the batch, `[B, R]` row-major:
    /// `Σ weight·|E|²·dx·dy`, accumulated in f64 (field units² × m²). Errors if the field is on
    /// another grid. Uses rayon over the batch when it holds more than one field.
    pub fn energies<T: Real>(&self, field: &Field<T>) -> Result<Vec<f64>> {
        check_grid("detector", &self.grid, field.grid())?;
        let (n, nx, nr) = (self.grid.len(), self.grid.nx, self.regions.len());
        let area = self.grid.cell_area();
        let mut out = vec![0.0; field.batch() * nr];
        let one = |e: &mut [f64], s: &[num_complex::Complex<T>]| {
            for (r, (rows, cols)) in self.boxes.iter().enumerate() {
                let w = &self.weights[r * n..(r + 1) * n];
                let mut sum = 0.0f64;
                for i in rows.clone() {
                    let (wr, sr) = (&w[i * nx..(i + 1) * nx], &s[i * nx..(i + 1) * nx]);
                    for (&w, z) in wr[cols.clone()].iter().zip(&sr[cols.clone()]) {
                        sum += w as f64 * z.norm_sqr().f64();
                    }
                }
                e[r] = sum * area;
            }
        };
        if field.batch() > 1 {
            out.par_chunks_mut(nr)
                .zip(field.data().par_chunks(n))
                .for_each(|(e, s)| one(e, s));
        } else {
            one(&mut out, field.data());
        }
        Ok(out)
    }

    /// Pixel weights `[R, ny, nx]` row-major: the fraction of each pixel inside each region, in
    /// `[0, 1]` (exact rectangle overlap, rounded to f32).
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The weights of region `r`, `[ny, nx]`.
    pub fn region_weights(&self, r: usize) -> &[f32] {
        let n = self.grid.len();
        &self.weights[r * n..(r + 1) * n]
    }

    /// The regions, in output order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Number of regions `R`.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// Always false: a detector has at least one region.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The grid the detector is sampled on.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_complex::Complex;

    const UM: f64 = 1e-6;

    use crate::error::err_text as err;

    #[test]
    fn uniform_field_energy_is_intensity_times_area() {
        let grid = Grid::new(100, 80, UM, 1.25 * UM).unwrap();
        let regions = vec![
            Region::new((3.3 * UM, -7.1 * UM), 10.7 * UM, 6.35 * UM).with_label("a"),
            Region::square((-20.05 * UM, 30.6 * UM), 12.345 * UM),
            // Overlaps the first one: allowed, the shared light counts for both.
            Region::new((8.0 * UM, -7.0 * UM), 10.0 * UM, 10.0 * UM),
        ];
        let det = Detector::new(grid, regions.clone()).unwrap();
        // A batch of two uniform fields of intensities 4 and 0.25, in f32 and f64.
        let n = grid.len();
        let data: Vec<Complex<f32>> = (0..2 * n)
            .map(|i| {
                if i < n {
                    Complex::new(0.0, 2.0)
                } else {
                    Complex::new(0.3, 0.4)
                }
            })
            .collect();
        let f32_field = Field::from_vec(data, grid, 0.5 * UM).unwrap();
        for e in [
            det.energies(&f32_field).unwrap(),
            det.energies(&f32_field.cast::<f64>()).unwrap(),
        ] {
            assert_eq!(e.len(), 6);
            for (b, intensity) in [4.0, 0.25].into_iter().enumerate() {
                for (r, region) in regions.iter().enumerate() {
                    let expect = intensity * region.area();
                    let got = e[b * 3 + r];
                    assert!(
                        (got - expect).abs() < 1e-6 * expect,
                        "b {b} r {r}: {got} vs {expect}"
                    );
                }
            }
        }
        assert!(regions[0].overlaps(&regions[2]) && !regions[0].overlaps(&regions[1]));
        // Weights are [R, ny, nx] fractions whose sums are the areas in pixels.
        assert_eq!(det.weights().len(), 3 * n);
        for (r, region) in regions.iter().enumerate() {
            let s: f64 = det.region_weights(r).iter().map(|&w| w as f64).sum();
            assert!((s * grid.cell_area() - region.area()).abs() < 1e-6 * region.area());
        }
    }

    #[test]
    fn energy_lands_in_the_right_region() {
        let grid = Grid::square(64, UM).unwrap();
        let det = Detector::new(
            grid,
            vec![
                Region::square((-10.0 * UM, 0.0), 8.0 * UM),
                Region::square((10.0 * UM, 0.0), 8.0 * UM),
            ],
        )
        .unwrap();
        let f = Field::<f64>::from_fn(grid, UM, |x, y| {
            Complex::from(if (x - 10.0 * UM).abs() < 1.5 * UM && y.abs() < 1.5 * UM {
                1.0
            } else {
                0.0
            })
        })
        .unwrap();
        let e = det.energies(&f).unwrap();
        assert_eq!(e[0], 0.0);
        assert!((e[1] - f.power()[0]).abs() < 1e-12 * e[1]);
    }

    #[test]
    fn ten_classes_are_laid_out_three_four_three() {
        assert_eq!(Detector::layout_rows(10), vec![3, 4, 3]);
        assert_eq!(Detector::layout_rows(9), vec![3, 3, 3]);
        assert_eq!(Detector::layout_rows(8), vec![3, 2, 3]);
        assert_eq!(Detector::layout_rows(7), vec![2, 3, 2]);
        assert_eq!(Detector::layout_rows(5), vec![3, 2]);
        assert_eq!(Detector::layout_rows(4), vec![2, 2]);
        assert_eq!(Detector::layout_rows(2), vec![2]);
        assert_eq!(Detector::layout_rows(1), vec![1]);
        for n in 1..40 {
            let rows = Detector::layout_rows(n);
            assert_eq!(rows.iter().sum::<usize>(), n);
            assert!(rows.iter().max().unwrap() - rows.iter().min().unwrap() <= 1);
        }
        let grid = Grid::square(200, 4.0 * UM).unwrap();
        let (size, gap) = (80.0 * UM, 40.0 * UM);
        let det = Detector::grid_layout(grid, 10, size, gap).unwrap();
        let regions = det.regions();
        assert_eq!(regions.len(), 10);
        let ((wx0, wx1), (wy0, wy1)) = window(&grid);
        for (i, a) in regions.iter().enumerate() {
            let ((x0, x1), (y0, y1)) = a.bounds();
            assert!(
                x0 >= wx0 && x1 <= wx1 && y0 >= wy0 && y1 <= wy1,
                "region {i} outside"
            );
            assert_eq!(a.label.as_deref(), Some(i.to_string().as_str()));
            for b in &regions[i + 1..] {
                assert!(!a.overlaps(b));
            }
        }
        // Rows of 3, 4, 3 from the smallest y, centred on the axis, left to right.
        let ys: Vec<f64> = regions.iter().map(|r| r.centre.1).collect();
        assert!(ys[..3].iter().all(|&y| (y + 120.0 * UM).abs() < 1e-12));
        assert!(ys[3..7].iter().all(|&y| y.abs() < 1e-12));
        assert!(ys[7..].iter().all(|&y| (y - 120.0 * UM).abs() < 1e-12));
        let xs: Vec<f64> = regions[3..7].iter().map(|r| r.centre.0 / UM).collect();
        assert!(
            xs.iter()
                .zip([-180.0, -60.0, 60.0, 180.0])
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{xs:?}"
        );
        // Disjoint: the weights of all regions sum to at most 1 per pixel.
        let n = grid.len();
        for p in 0..n {
            let s: f32 = (0..10).map(|r| det.weights()[r * n + p]).sum();
            assert!(s <= 1.0 + 1e-6);
        }
        // Too large a layout says what it needs.
        let e = err(Detector::grid_layout(grid, 10, 200.0 * UM, 40.0 * UM));
        assert!(
            e.contains("920um × 680um") && e.contains("796um × 796um"),
            "{e}"
        );
    }

    #[test]
    fn detector_errors() {
        let grid = Grid::square(64, UM).unwrap();
        let e = err(Detector::new(
            grid,
            vec![Region::square((30.0 * UM, 0.0), 8.0 * UM).with_label("cat")],
        ));
        assert!(
            e.contains("region 0 ('cat') spans") && e.contains("window"),
            "{e}"
        );
        assert!(
            err(Detector::new(
                grid,
                vec![Region::new((0.0, 0.0), 0.0, 1.0 * UM)]
            ))
            .contains("non-zero area")
        );
        assert!(err(Detector::new(grid, vec![])).contains("at least one region"));
        assert!(Detector::new(grid, vec![Region::square((f64::NAN, 0.0), UM)]).is_err());
        // A region touching the window edge is fine.
        assert!(
            Detector::new(
                grid,
                vec![Region::new((-27.5 * UM, 0.0), 9.0 * UM, 2.0 * UM)]
            )
            .is_ok()
        );
        let det = Detector::new(grid, vec![Region::square((0.0, 0.0), 8.0 * UM)]).unwrap();
        let other = Field::<f32>::zeros(Grid::square(32, UM).unwrap(), UM, 1).unwrap();
        let e = err(det.energies(&other));
        assert!(
            e.contains("64×64 samples at 1um pitch") && e.contains("32×32"),
            "{e}"
        );
        assert!(Detector::grid_layout(grid, 0, 8.0 * UM, 1.0 * UM).is_err());
        assert!(Detector::grid_layout(grid, 3, 8.0 * UM, -UM).is_err());
    }
}
