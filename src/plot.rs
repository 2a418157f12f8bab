//! PNG figures of simulation results: heat maps with a colorbar and overlays, and line plots.
//!
//! Rendering uses `plotters` with the bundled DejaVu Sans font (registered once per process;
//! no system fonts are used). Files are written atomically: the PNG is rendered to a temporary
//! `.png` file in the target's directory and renamed onto the target, so readers never see a
//! partial file, and the temporary file is removed on error.

use std::error::Error;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

/// Errors from writing a plot. Every message names the target file.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The plot description is invalid (sizes, non-finite coordinates, empty data, ...).
    #[error("cannot plot {}: {msg}", .path.display())]
    Invalid {
        /// Target file.
        path: PathBuf,
        /// What is wrong with the input.
        msg: String,
    },
    /// Rendering or PNG encoding failed.
    #[error("drawing {} failed: {msg}", .path.display())]
    Draw {
        /// Target file.
        path: PathBuf,
        /// Error reported by the drawing backend.
        msg: String,
    },
    /// Moving the finished PNG into place failed.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// Target file.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Colour scale of a heat map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Colours are linear in the value.
    Linear,
    /// Colours show `10·log10(I / I_max)` in dB, clipped at `-10·decades` dB; the colorbar is
    /// in dB. `I_max` is the data maximum, or the upper end of [`ImagePlot::range`] if given.
    Log {
        /// Dynamic range shown, in decades (must be positive).
        decades: f64,
    },
}

/// Colour map of a heat map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Perceptually uniform blue-green-yellow (plotters' `ViridisRGB`).
    Viridis,
    /// Perceptually uniform black-purple-orange-yellow (matplotlib's inferno, 33-point table).
    Inferno,
    /// Cyclic light → blue → dark → red → light map for phase; values wrap around the range.
    /// Computed analytically in OKLab (a smooth periodic palette in the style of matplotlib's
    /// twilight, not a copy of it).
    Twilight,
    /// Black to white.
    Gray,
    /// Blue (low) through near-white (the middle) to red (high), for signed values such as
    /// weights: give a range symmetric about 0. Interpolated in OKLab.
    Diverging,
}

/// An axis-aligned rectangle overlaid on a heat map (e.g. a detector region), in metres.
#[derive(Clone, Debug, PartialEq)]
pub struct Rect {
    /// Left edge (m).
    pub x0: f64,
    /// Right edge (m).
    pub x1: f64,
    /// Bottom edge (m).
    pub y0: f64,
    /// Top edge (m).
    pub y1: f64,
    /// Optional text drawn at the rectangle's top-left corner.
    pub label: Option<String>,
    /// Draw outline and label in a bright highlight colour (cyan) with a thicker line instead
    /// of white, e.g. for the detector of the correct class.
    pub highlight: bool,
}

impl Rect {
    /// A rectangle with edges in metres, without label or highlight.
    pub fn new(x0: f64, x1: f64, y0: f64, y1: f64) -> Self {
        Self {
            x0,
            x1,
            y0,
            y1,
            label: None,
            highlight: false,
        }
    }
}

/// What the axes of a heat map show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axes<'a> {
    /// Lengths: the extent in metres, labelled `x`/`y` in µm, mm or cm (chosen from the extent).
    Length,
    /// Lengths as [`Axes::Length`], on axes of other names (e.g. `x` and `z` for a section
    /// along the optical axis).
    Lengths {
        /// Name of the horizontal axis.
        x: &'a str,
        /// Name of the vertical axis.
        y: &'a str,
    },
    /// Plain numbers (e.g. the columns and modes of an MZI mesh, or matrix indices), the extent
    /// in those numbers, each axis with its own label.
    Index {
        /// Label of the horizontal axis.
        x: &'a str,
        /// Label of the vertical axis.
        y: &'a str,
    },
}

/// A 2-D field drawn as a heat map with axes in µm, mm or cm (chosen from the extent) or in
/// plain numbers ([`Axes`]), square data pixels (the aspect ratio of the extent is kept) and a
/// colorbar. NaN values are drawn grey.
#[derive(Clone, Copy, Debug)]
pub struct ImagePlot<'a> {
    /// Row-major `[ny, nx]` samples, x fastest; row 0 is the most negative y (drawn at the bottom).
    pub values: &'a [f64],
    /// Samples per row.
    pub nx: usize,
    /// Number of rows.
    pub ny: usize,
    /// `[x_min, x_max, y_min, y_max]` in metres: the outer edges of the pixel area.
    pub extent: [f64; 4],
    /// Title above the plot (may be empty).
    pub title: &'a str,
    /// Colorbar label, e.g. `"intensity (a.u.)"`. With [`Scale::Log`] a trailing `(unit)` is
    /// replaced by `(dB)` unless the label already mentions dB.
    pub colorbar_label: &'a str,
    /// Colour map.
    pub colormap: Colormap,
    /// Linear or logarithmic colour scale.
    pub scale: Scale,
    /// Fixed colour range `(lo, hi)`; `None` uses the finite min..max of the data.
    pub range: Option<(f64, f64)>,
    /// Rectangles outlined on top of the image (clipped to the extent).
    pub rects: &'a [Rect],
    /// Lengths (the default) or plain numbers on the axes.
    pub axes: Axes<'a>,
}

impl<'a> ImagePlot<'a> {
    /// A plot of `values` without title or labels: Viridis, linear scale, auto range, no
    /// overlays, lengths on the axes.
    pub fn new(values: &'a [f64], nx: usize, ny: usize, extent: [f64; 4]) -> Self {
        Self {
            values,
            nx,
            ny,
            extent,
            title: "",
            colorbar_label: "",
            colormap: Colormap::Viridis,
            scale: Scale::Linear,
            range: None,
            rects: &[],
            axes: Axes::Length,
        }
    }
}

/// One named curve of a [`LinePlot`].
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// Legend entry (a legend is drawn when any series has a non-empty name).
    pub name: &'a str,
    /// `(x, y)` points in drawing order; non-finite points (and `y <= 0` on a log axis) break
    /// the line.
    pub points: &'a [(f64, f64)],
}

/// A line plot of one or more series, coloured in order from the tab10 palette.
#[derive(Clone, Debug)]
pub struct LinePlot<'a> {
    /// Title above the plot (may be empty).
    pub title: &'a str,
    /// x-axis label including its unit.
    pub x_label: &'a str,
    /// y-axis label including its unit.
    pub y_label: &'a str,
    /// Curves to draw (at least one, each with at least one point).
    pub series: Vec<Series<'a>>,
    /// Logarithmic y axis.
    pub log_y: bool,
}

/// Writes `plot` as a `width_px × height_px` PNG heat map to `path`, atomically.
///
/// The figure must be at least 200×150 px and at most 16384 px per side.
pub fn write_image_png(
    path: &Path,
    plot: &ImagePlot,
    width_px: u32,
    height_px: u32,
) -> Result<(), PlotError> {
    write_figure(
        path,
        (width_px, height_px),
        || layout_image(plot, width_px, height_px),
        |root, layout| draw_image(root, plot, layout),
    )
}

/// Writes `plot` as a `width_px × height_px` PNG line plot to `path`, atomically.
///
/// The figure must be at least 200×150 px and at most 16384 px per side.
pub fn write_line_png(
    path: &Path,
    plot: &LinePlot,
    width_px: u32,
    height_px: u32,
) -> Result<(), PlotError> {
    write_figure(
        path,
        (width_px, height_px),
        || line_ranges(plot),
        |root, (xr, yr)| {
            if plot.log_y {
                draw_lines(root, plot, xr.clone(), yr.clone().log_scale())
            } else {
                draw_lines(root, plot, xr.clone(), yr.clone())
            }
        },
    )
}

/// Writes several heat maps as one PNG grid to `path`, atomically: `columns` panels per row
/// (fewer if there are fewer panels), filled row by row, each `panel_w_px × panel_h_px` and
/// drawn exactly as [`write_image_png`] draws it (own title, axes, colorbar and overlays), under
/// an overall `title` (may be empty).
///
/// Used for the phase masks of a network's layers and for one output plane per class with its
/// detector regions. Each panel must be at least 200×150 px, the figure at most 16384 px per
/// side.
pub fn write_image_grid_png(
    path: &Path,
    panels: &[ImagePlot],
    columns: usize,
    panel_w_px: u32,
    panel_h_px: u32,
    title: &str,
) -> Result<(), PlotError> {
    let invalid = |msg| invalid(path, msg);
    if panels.is_empty() || columns == 0 {
        return Err(invalid(format!(
            "an image grid needs panels and columns, got {} panels in {columns} columns",
            panels.len()
        )));
    }
    check_size("panel", panel_w_px, panel_h_px).map_err(invalid)?;
    let cols = columns.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let m = Metrics::new(panel_w_px, panel_h_px);
    let band = if title.is_empty() {
        0
    } else {
        m.pad + m.title_h(title)
    };
    let side = |n: usize, px: u32, extra: i32| {
        u32::try_from(n as u64 * u64::from(px) + extra as u64).unwrap_or(u32::MAX)
    };
    let size = (side(cols, panel_w_px, 0), side(rows, panel_h_px, band));
    let layouts = || {
        let layout = |(i, p)| {
            layout_image(p, panel_w_px, panel_h_px).map_err(|e| format!("panels[{i}]: {e}"))
        };
        panels.iter().enumerate().map(layout).collect()
    };
    write_figure(path, size, layouts, |root, layouts: &Vec<_>| {
        draw_title(root, title, &m, size.0 as i32 / 2, band - m.gap)?;
        let cells = root.margin(band, 0, 0, 0).split_evenly((rows, cols));
        for ((cell, p), l) in cells.iter().zip(panels).zip(layouts) {
            draw_image(cell, p, l)?;
        }
        Ok(())
    })
}

/// Writes a confusion matrix as a `width_px × height_px` PNG to `path`, atomically.
///
/// `matrix[t][p]` counts the samples of true class `t` predicted as class `p`; `classes` names
/// the classes in the same order. Rows (true class, top to bottom) and columns (predicted, left
/// to right) are coloured by the fraction of the row's samples (Viridis, 0..1; grey for a class
/// without samples) and each cell shows its count. Long class names are set vertically under
/// the matrix, or abbreviated with "…" if they are very long. The overall accuracy is appended
/// to `title`. The figure must be at least 200×150 px and at most 16384 px per side.
pub fn write_confusion_png(
    path: &Path,
    matrix: &[Vec<u64>],
    classes: &[String],
    title: &str,
    width_px: u32,
    height_px: u32,
) -> Result<(), PlotError> {
    write_figure(
        path,
        (width_px, height_px),
        || layout_confusion(matrix, classes, title, width_px, height_px),
        |root, c| draw_confusion(root, matrix, c),
    )
}

/// Writes the training history as a `width_px × height_px` PNG to `path`, atomically: the mean
/// training loss per epoch on the left, the training and test accuracy in % on the right.
///
/// `epochs`, `loss`, `train_accuracy` and `test_accuracy` are parallel; accuracies are
/// fractions in 0..1. A single epoch is drawn as points. Each of the two panels must be at
/// least 200×150 px, the figure at most 16384 px per side.
pub fn write_training_png(
    path: &Path,
    epochs: &[f64],
    loss: &[f64],
    train_accuracy: &[f64],
    test_accuracy: &[f64],
    width_px: u32,
    height_px: u32,
) -> Result<(), PlotError> {
    let invalid = |msg| invalid(path, msg);
    check_size("panel", width_px / 2, height_px).map_err(invalid)?;
    let lens = [loss.len(), train_accuracy.len(), test_accuracy.len()];
    if epochs.is_empty() || lens.iter().any(|&n| n != epochs.len()) {
        return Err(invalid(format!(
            "need at least one epoch and one value of each curve per epoch, got {} epochs, \
             {} loss, {} train and {} test accuracy values",
            epochs.len(),
            lens[0],
            lens[1],
            lens[2]
        )));
    }
    let points = |ys: &[f64], scale: f64| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .zip(ys)
            .map(|(&e, &y)| (e, scale * y))
            .collect()
    };
    let (loss, train, test) = (
        points(loss, 1.0),
        points(train_accuracy, 100.0),
        points(test_accuracy, 100.0),
    );
    let panel = |title, y_label, series| LinePlot {
        title,
        x_label: "epoch",
        y_label,
        series,
        log_y: false,
    };
    let panels = [
        panel(
            "loss",
            "training loss",
            vec![Series {
                name: "",
                points: &loss,
            }],
        ),
        panel(
            "accuracy",
            "accuracy (%)",
            vec![
                Series {
                    name: "train",
                    points: &train,
                },
                Series {
                    name: "test",
                    points: &test,
                },
            ],
        ),
    ];
    let ranges = || {
        let range = |p: &LinePlot| line_ranges(p).map_err(|e| format!("{} panel: {e}", p.title));
        panels.iter().map(range).collect()
    };
    write_figure(
        path,
        (width_px, height_px),
        ranges,
        |root, ranges: &Vec<_>| {
            let (left, right) = root.split_horizontally(width_px / 2);
            for ((area, p), (xr, yr)) in [left, right].iter().zip(&panels).zip(ranges) {
                draw_lines(area, p, xr.clone(), yr.clone())?;
            }
            Ok(())
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Files, fonts, text

type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;

const MIN_SIZE: (u32, u32) = (200, 150);
const MAX_SIDE: u32 = 16384;
const NAN_GREY: [u8; 3] = [128, 128, 128];
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/fonts/DejaVuSans.ttf"
));

fn invalid(path: &Path, msg: String) -> PlotError {
    PlotError::Invalid {
        path: path.to_path_buf(),
        msg,
    }
}

/// Checks the size of a figure or of one `what` panel of it.
fn check_size(what: &str, w: u32, h: u32) -> Result<(), String> {
    if w < MIN_SIZE.0 || h < MIN_SIZE.1 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!(
            "{what} size {w}×{h} px is out of bounds (minimum {}×{}, maximum {MAX_SIDE} per side)",
            MIN_SIZE.0, MIN_SIZE.1
        ));
    }
    Ok(())
}

/// Registers the bundled font with plotters once per process (needed before any text layout).
fn ensure_font(path: &Path) -> Result<(), PlotError> {
    static OK: OnceLock<bool> = OnceLock::new();
    if *OK.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()) {
        return Ok(());
    }
    Err(PlotError::Draw {
        path: path.to_path_buf(),
        msg: "the bundled DejaVu Sans font could not be loaded".into(),
    })
}

/// Writes a `w × h` figure to `path`: checks its size, registers the font, lays it out with
/// `layout` (an error there is invalid input; no file is touched) and draws it atomically with
/// `draw`.
fn write_figure<L>(
    path: &Path,
    (w, h): (u32, u32),
    layout: impl FnOnce() -> Result<L, String>,
    draw: impl FnOnce(&Root, &L) -> DrawResult,
) -> Result<(), PlotError> {
    check_size("figure", w, h).map_err(|msg| invalid(path, msg))?;
    ensure_font(path)?;
    let layout = layout().map_err(|msg| invalid(path, msg))?;
    write_atomic(path, (w, h), |root| draw(root, &layout))
}

/// Renders into a temporary PNG next to `path`, then renames it onto `path`.
fn write_atomic<F>(path: &Path, size: (u32, u32), draw: F) -> Result<(), PlotError>
where
    F: FnOnce(&Root) -> DrawResult,
{
    if path.file_name().is_none() {
        return Err(invalid(path, "the path has no file name".into()));
    }
    let tmp = photonflow_optics::io::temp_path_for(path);
    let rendered = (|| -> DrawResult {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    let result = match rendered {
        Ok(()) => fs::rename(&tmp, path).map_err(|source| PlotError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) => Err(PlotError::Draw {
            path: path.to_path_buf(),
            msg: e.to_string(),
        }),
    };
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Sizes in px, scaled with the figure so that text stays readable at any resolution.
#[derive(Clone, Copy, Debug)]
struct Metrics {
    s: f64,
    tick_font: f64,
    label_font: f64,
    title_font: f64,
    /// Tick mark length.
    tick: i32,
    /// Outer margin.
    pad: i32,
    /// Small gap between text elements.
    gap: i32,
    /// Height reserved for an axis description.
    desc_h: i32,
}

impl Metrics {
    fn new(w: u32, h: u32) -> Self {
        let s = (f64::from(w.min(h)) / 480.0).clamp(0.85, 4.0);
        let px = |v: f64| (v * s).round() as i32;
        Self {
            s,
            tick_font: 13.0 * s,
            label_font: 15.0 * s,
            title_font: 17.0 * s,
            tick: px(5.0),
            pad: px(10.0),
            gap: px(6.0),
            desc_h: px(1.25 * 15.0),
        }
    }
    fn px(&self, v: f64) -> i32 {
        (v * self.s).round() as i32
    }
    /// Size across an axis of its label area: tick mark, `labels` px of tick labels, gap and
    /// the axis description `desc` (none if empty).
    fn label_area(&self, labels: i32, desc: &str) -> i32 {
        2 * self.tick + labels + self.gap + if desc.is_empty() { 0 } else { self.desc_h }
    }
    /// Tick count of a heat-map axis `len_px` long.
    fn axis_ticks(&self, len_px: i32) -> usize {
        tick_count(len_px, 70.0 * self.s)
    }
    /// Height of a title line plus gap, or 0 without a title.
    fn title_h(&self, title: &str) -> i32 {
        if title.is_empty() {
            0
        } else {
            self.px(17.0 * 1.2) + self.gap
        }
    }
}

fn text_style(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK)
}

/// Width in px of `text` at font `size` (from the font's advances).
fn text_width(text: &str, size: f64) -> i32 {
    (FONT, size)
        .into_font()
        .box_size(text)
        .map_or(0, |(w, _)| w as i32)
}

/// Ticks of a linear axis over `lo..hi` (at most `n`, as plotters places them) and a label
/// formatter using a common number of decimals (or a common exponent for very large or small
/// values) and a true minus sign.
fn tick_format(lo: f64, hi: f64, n: usize) -> (Vec<f64>, impl Fn(&f64) -> String) {
    let pts = RangedCoordf64::from(lo..hi).key_points(n);
    let step = pts
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let step = if step.is_finite() && step > 0.0 {
        step
    } else {
        (hi - lo).abs()
    };
    let mag = lo.abs().max(hi.abs());
    let exp = if mag >= 1e5 || (mag > 0.0 && mag < 1e-3) {
        mag.log10().floor() as i32
    } else {
        0
    };
    let unit = 10f64.powi(exp);
    let decimals = (0..=9)
        .find(|&d| {
            let q = step / unit * 10f64.powi(d);
            (q - q.round()).abs() < 1e-6 * q.max(1.0)
        })
        .unwrap_or(9);
    let fmt = move |v: &f64| {
        let m = v / unit;
        let m = if m.abs() < 0.5 * 10f64.powi(-decimals) {
            0.0
        } else {
            m
        }; // no "-0.0"
        let d = decimals as usize;
        let s = if exp == 0 || m == 0.0 {
            format!("{m:.d$}")
        } else {
            format!("{m:.d$}e{exp}")
        };
        s.replace('-', "\u{2212}")
    };
    (pts, fmt)
}

/// Number of ticks for an axis `len_px` long with ticks about `spacing` px apart.
fn tick_count(len_px: i32, spacing: f64) -> usize {
    ((f64::from(len_px) / spacing) as usize).clamp(3, 10)
}

/// Draws `title` centred at `x` with its bottom at `y`, shrinking the font to fit the figure.
fn draw_title(root: &Root, title: &str, m: &Metrics, x: i32, y: i32) -> DrawResult {
    if title.is_empty() {
        return Ok(());
    }
    let fig_w = root.dim_in_pixel().0 as i32;
    let avail = f64::from(fig_w - 2 * m.pad);
    let w = f64::from(text_width(title, m.title_font).max(1));
    let size = if w > avail {
        m.title_font * avail / w
    } else {
        m.title_font
    };
    let half = text_width(title, size) / 2;
    let x = x.clamp(m.pad + half, (fig_w - m.pad - half).max(m.pad + half));
    root.draw_text(
        title,
        &text_style(size).pos(Pos::new(HPos::Center, VPos::Bottom)),
        (x, y),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Heat maps

/// Pixel layout of a heat map (an image or a confusion matrix): the data area, the colorbar
/// beside it and the label areas around both, computed before any file is touched.
#[derive(Debug)]
struct HeatLayout {
    m: Metrics,
    /// Data area `(x, y, w, h)` in px; the colorbar shares its y range.
    area: (i32, i32, i32, i32),
    /// Colorbar `(x, w)` in px.
    bar: (i32, i32),
    /// Label areas: left of and below the data area, right of the colorbar.
    left_w: i32,
    bottom_h: i32,
    bar_right_w: i32,
    /// Colorbar tick count.
    bar_ticks: usize,
    /// Colour range (in dB for a log scale).
    lo: f64,
    hi: f64,
    bar_label: String,
}

/// A validated [`ImagePlot`] and its layout.
#[derive(Debug)]
struct ImageLayout {
    heat: HeatLayout,
    /// Axis length unit: metres per unit and its symbol.
    unit: (f64, &'static str),
    /// `I_max` of a log scale.
    log_ref: Option<f64>,
}

/// Display unit for lengths in `extent` (metres): µm below 1 mm, mm below 10 cm, else cm.
fn length_unit(extent: &[f64; 4]) -> (f64, &'static str) {
    let m = extent.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if m < 1e-3 {
        (1e-6, "µm")
    } else if m < 0.1 {
        (1e-3, "mm")
    } else {
        (1e-2, "cm")
    }
}

/// Colorbar label for a log scale: `"intensity (a.u.)"` → `"intensity (dB)"`.
fn db_label(label: &str) -> String {
    if label.contains("dB") {
        return label.to_string();
    }
    let base = label
        .trim_end()
        .strip_suffix(')')
        .and_then(|s| s.rfind('(').map(|i| &s[..i]))
        .unwrap_or(label)
        .trim();
    if base.is_empty() {
        "dB".into()
    } else {
        format!("{base} (dB)")
    }
}

/// Validates `p` and lays out a `w × h` figure.
fn layout_image(p: &ImagePlot, w: u32, h: u32) -> Result<ImageLayout, String> {
    if p.nx == 0 || p.ny == 0 {
        return Err(format!(
            "image has zero size (nx = {}, ny = {})",
            p.nx, p.ny
        ));
    }
    if p.nx.checked_mul(p.ny) != Some(p.values.len()) {
        return Err(format!(
            "values has {} elements but nx × ny = {} × {} = {}",
            p.values.len(),
            p.nx,
            p.ny,
            p.nx as u128 * p.ny as u128
        ));
    }
    let [x0, x1, y0, y1] = p.extent;
    if !p.extent.iter().all(|v| v.is_finite()) || x1 <= x0 || y1 <= y0 {
        return Err(format!(
            "extent {:?} must be finite with x_max > x_min and y_max > y_min",
            p.extent
        ));
    }
    if let Some((lo, hi)) = p.range
        && !(lo.is_finite() && hi.is_finite() && hi > lo)
    {
        return Err(format!(
            "colour range ({lo}, {hi}) must be finite with hi > lo"
        ));
    }
    if let Some(r) = p
        .rects
        .iter()
        .find(|r| ![r.x0, r.x1, r.y0, r.y1].iter().all(|v| v.is_finite()))
    {
        return Err(format!(
            "overlay rectangle {r:?} has non-finite coordinates"
        ));
    }
    let finite = || p.values.iter().copied().filter(|v| v.is_finite());
    let (mut lo, mut hi, log_ref, bar_label) = match p.scale {
        Scale::Linear => {
            let (lo, hi) = p.range.unwrap_or_else(|| {
                finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
            });
            (lo, hi, None, p.colorbar_label.to_string())
        }
        Scale::Log { decades } => {
            if !(decades.is_finite() && decades > 0.0) {
                return Err(format!("log scale needs finite decades > 0, got {decades}"));
            }
            let max = p
                .range
                .map_or_else(|| finite().fold(f64::NEG_INFINITY, f64::max), |r| r.1);
            (-10.0 * decades, 0.0, Some(max), db_label(p.colorbar_label))
        }
    };
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (0.0, 1.0); // no finite data: everything is drawn NaN-grey
    } else if hi <= lo {
        let d = if lo == 0.0 { 1.0 } else { 0.5 * lo.abs() };
        (lo, hi) = (lo - d, hi + d);
    }

    let unit = match p.axes {
        Axes::Length | Axes::Lengths { .. } => length_unit(&p.extent),
        Axes::Index { .. } => (1.0, ""),
    };
    let heat = layout_heat(
        (w, h),
        p.title,
        (x1 - x0) / (y1 - y0),
        (lo, hi),
        bar_label,
        |m, _, ph| {
            let ylab = widest_tick_label(y0 / unit.0, y1 / unit.0, m.axis_ticks(ph), m);
            (m.label_area(ylab, "y"), m.label_area(m.px(13.0), "x"))
        },
    )?;
    Ok(ImageLayout {
        heat,
        unit,
        log_ref,
    })
}

/// Width in px of the widest tick label of a linear axis over `lo..hi` with `n` ticks.
fn widest_tick_label(lo: f64, hi: f64, n: usize, m: &Metrics) -> i32 {
    let (pts, f) = tick_format(lo, hi, n);
    pts.iter()
        .map(|v| text_width(&f(v), m.tick_font))
        .max()
        .unwrap_or(0)
}

/// Lays out a `w × h` heat map whose data area has the width/height ratio `aspect` and whose
/// colorbar spans `lo..hi`. `labels(m, pw, ph)` gives the label areas (left width, bottom
/// height) that a `pw × ph` data area needs; since they shrink the data area, the layout is
/// iterated until they fit.
fn layout_heat(
    (w, h): (u32, u32),
    title: &str,
    aspect: f64,
    (lo, hi): (f64, f64),
    bar_label: String,
    labels: impl Fn(&Metrics, i32, i32) -> (i32, i32),
) -> Result<HeatLayout, String> {
    let m = Metrics::new(w, h);
    let title_h = m.title_h(title);
    let (bar_w, bar_gap) = (m.px(18.0), m.px(16.0));
    let (mut left_w, mut bottom_h, mut bar_lab_w) = (0, 0, 0);
    for pass in 0..4 {
        let bar_right_w = m.label_area(bar_lab_w, &bar_label);
        let aw = w as i32 - 2 * m.pad - left_w - bar_gap - bar_w - bar_right_w;
        let ah = h as i32 - 2 * m.pad - title_h - bottom_h;
        if aw < 32 || ah < 32 {
            return Err(format!(
                "figure size {w}×{h} px leaves no room for the plot area"
            ));
        }
        // Keep the physical aspect ratio: square data pixels for square sampling.
        let (pw, ph) = if f64::from(aw) / f64::from(ah) > aspect {
            (((f64::from(ah) * aspect).round() as i32).max(1), ah)
        } else {
            (aw, ((f64::from(aw) / aspect).round() as i32).max(1))
        };
        let bar_ticks = tick_count(ph, 45.0 * m.s);
        let (need_left, need_bottom) = labels(&m, pw, ph);
        let need_bar = widest_tick_label(lo, hi, bar_ticks, &m);
        if (need_left <= left_w && need_bottom <= bottom_h && need_bar <= bar_lab_w) || pass == 3 {
            let (px, py) = (
                m.pad + left_w + (aw - pw) / 2,
                m.pad + title_h + (ah - ph) / 2,
            );
            return Ok(HeatLayout {
                m,
                area: (px, py, pw, ph),
                bar: (px + pw + bar_gap, bar_w),
                left_w,
                bottom_h,
                bar_right_w,
                bar_ticks,
                lo,
                hi,
                bar_label,
            });
        }
        left_w = left_w.max(need_left);
        bottom_h = bottom_h.max(need_bottom);
        bar_lab_w = bar_lab_w.max(need_bar);
    }
    Err("the figure layout did not converge".into()) // unreachable: pass 3 always returns
}

/// Source index range `[a, b)` shown by output pixel `i` of `n_out`: a box when shrinking
/// (and `average`), otherwise the nearest sample.
fn src_span(i: usize, n_in: usize, n_out: usize, average: bool) -> (usize, usize) {
    if average && n_in >= n_out {
        (i * n_in / n_out, (i + 1) * n_in / n_out)
    } else {
        let c = ((2 * i + 1) * n_in / (2 * n_out)).min(n_in - 1);
        (c, c + 1)
    }
}

/// Resamples the data to `pw × ph` output pixels (top row first). Shrinking box-averages the
/// non-NaN samples, except for cyclic maps, which (like enlarging) use the nearest sample.
fn resample(p: &ImagePlot, pw: usize, ph: usize) -> Vec<f64> {
    let average = p.colormap != Colormap::Twilight;
    let cols: Vec<_> = (0..pw).map(|i| src_span(i, p.nx, pw, average)).collect();
    let mut out = Vec::with_capacity(pw * ph);
    for r in 0..ph {
        let (a, b) = src_span(r, p.ny, ph, average);
        let rows = (p.ny - b)..(p.ny - a); // output row 0 is the top, data row 0 the bottom
        for &(c0, c1) in &cols {
            let (mut sum, mut n) = (0.0, 0u32);
            for row in rows.clone() {
                for &v in p.values[row * p.nx + c0..row * p.nx + c1]
                    .iter()
                    .filter(|v| !v.is_nan())
                {
                    sum += v;
                    n += 1;
                }
            }
            out.push(if n == 0 { f64::NAN } else { sum / f64::from(n) });
        }
    }
    out
}

/// Maps values (dB values for a log scale) to colours through a 256-entry table.
struct ColorScale {
    lut: Vec<[u8; 3]>,
    cyclic: bool,
    lo: f64,
    hi: f64,
}

impl ColorScale {
    fn new(map: Colormap, lo: f64, hi: f64) -> Self {
        let lut = (0..256)
            .map(|i| colormap_rgb(map, f64::from(i) / 255.0))
            .collect();
        Self {
            lut,
            cyclic: map == Colormap::Twilight,
            lo,
            hi,
        }
    }

    fn rgb(&self, v: f64) -> [u8; 3] {
        let t = (v - self.lo) / (self.hi - self.lo);
        let t = if self.cyclic {
            t.rem_euclid(1.0)
        } else {
            t.clamp(0.0, 1.0)
        };
        if t.is_nan() {
            NAN_GREY
        } else {
            self.lut[(t * 255.0).round() as usize]
        }
    }
}

/// `10·log10(v / reference)` clipped below at `floor`; NaN stays NaN.
fn to_db(v: f64, reference: f64, floor: f64) -> f64 {
    if v.is_nan() {
        v
    } else if v > 0.0 && reference > 0.0 && reference.is_finite() {
        (10.0 * (v / reference).log10()).max(floor)
    } else {
        floor
    }
}

/// Bright cyan outline of a highlighted [`Rect`].
const HIGHLIGHT: RGBColor = RGBColor(0, 230, 255);

fn draw_image(root: &Root, p: &ImagePlot, l: &ImageLayout) -> DrawResult {
    let q = &l.heat;
    let m = &q.m;
    let (px, py, pw, ph) = q.area;
    let tick_style = text_style(m.tick_font);
    let [x0, x1, y0, y1] = p.extent;
    let (u, sym) = l.unit;
    let (x_desc, y_desc) = match p.axes {
        Axes::Length => (format!("x ({sym})"), format!("y ({sym})")),
        Axes::Lengths { x, y } => (format!("{x} ({sym})"), format!("{y} ({sym})")),
        Axes::Index { x, y } => (x.to_string(), y.to_string()),
    };

    // Axes, then the data, colorbar and title.
    let area = root
        .clone()
        .shrink((px - q.left_w, py), (pw + q.left_w, ph + q.bottom_h));
    let mut chart = ChartBuilder::on(&area)
        .set_label_area_size(LabelAreaPosition::Left, q.left_w)
        .set_label_area_size(LabelAreaPosition::Bottom, q.bottom_h)
        .build_cartesian_2d(x0 / u..x1 / u, y0 / u..y1 / u)?;
    let (nx, ny) = (m.axis_ticks(pw), m.axis_ticks(ph));
    let (_, fx) = tick_format(x0 / u, x1 / u, nx);
    let (_, fy) = tick_format(y0 / u, y1 / u, ny);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(nx)
        .y_labels(ny)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style(tick_style.clone())
        .axis_desc_style(text_style(m.label_font))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .set_all_tick_mark_size(m.tick)
        .draw()?;
    let values = resample(p, pw as usize, ph as usize)
        .into_iter()
        .map(|v| l.log_ref.map_or(v, |r| to_db(v, r, q.lo)));
    draw_heat(
        root,
        q,
        &ColorScale::new(p.colormap, q.lo, q.hi),
        values,
        p.title,
    )?;

    // Overlays, clipped to the extent: outlines with a dark halo, labels likewise.
    let to_px = |x: f64, y: f64| {
        let cx = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0) * f64::from(pw);
        let cy = ((y1 - y) / (y1 - y0)).clamp(0.0, 1.0) * f64::from(ph);
        (px + cx.round() as i32, py + cy.round() as i32)
    };
    for r in p.rects {
        let (rx0, rx1) = (r.x0.min(r.x1), r.x0.max(r.x1));
        let (ry0, ry1) = (r.y0.min(r.y1), r.y0.max(r.y1));
        if rx1 < x0 || rx0 > x1 || ry1 < y0 || ry0 > y1 {
            continue;
        }
        let (color, half) = if r.highlight {
            (HIGHLIGHT, m.px(1.5))
        } else {
            (WHITE, m.px(0.6))
        };
        let (a, b) = (to_px(rx0, ry1), to_px(rx1, ry0));
        outline(root, a, b, half + 1, BLACK.mix(0.6))?;
        outline(root, a, b, half, color.to_rgba())?;
        if let Some(text) = r.label.as_deref().filter(|t| !t.is_empty()) {
            let (tw, th) = (text_width(text, m.tick_font), m.px(13.0));
            let x = (a.0 + m.px(3.0))
                .min(px + pw - tw - m.px(2.0))
                .max(px + m.px(2.0));
            let above = a.1 - half - th - m.px(4.0);
            let y = if above >= py {
                above
            } else {
                a.1 + half + m.px(5.0)
            };
            let anchor = Pos::new(HPos::Left, VPos::Top);
            let shadow = BLACK.mix(0.8);
            let shadow = tick_style.color(&shadow).pos(anchor);
            for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)] {
                root.draw_text(text, &shadow, (x + dx, y + dy))?;
            }
            root.draw_text(text, &tick_style.color(&color).pos(anchor), (x, y))?;
        }
    }
    Ok(())
}

/// Draws the data of a heat map laid out as `q` (`values` on the colour scale `cs`, one per
/// pixel of the data area, top row first), its colorbar and its `title`.
fn draw_heat(
    root: &Root,
    q: &HeatLayout,
    cs: &ColorScale,
    values: impl Iterator<Item = f64>,
    title: &str,
) -> DrawResult {
    let m = &q.m;
    let (px, py, pw, ph) = q.area;
    let (bx, bw) = q.bar;
    blit(
        root,
        (px, py),
        (pw, ph),
        values.flat_map(|v| cs.rgb(v)).collect(),
    )?;

    // Colorbar: top row is `hi`.
    let bar_area = root.clone().shrink((bx, py), (bw + q.bar_right_w, ph));
    let mut bar_chart = ChartBuilder::on(&bar_area)
        .set_label_area_size(LabelAreaPosition::Right, q.bar_right_w)
        .build_cartesian_2d(0.0..1.0, q.lo..q.hi)?;
    let (_, fb) = tick_format(q.lo, q.hi, q.bar_ticks);
    bar_chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(q.bar_ticks)
        .y_label_formatter(&fb)
        .label_style(text_style(m.tick_font))
        .axis_desc_style(text_style(m.label_font))
        .y_desc(q.bar_label.as_str())
        .set_all_tick_mark_size(m.tick)
        .draw()?;
    let bar = (0..ph)
        .flat_map(|r| {
            let v = q.hi - (f64::from(r) + 0.5) / f64::from(ph) * (q.hi - q.lo);
            cs.rgb(v).repeat(bw as usize)
        })
        .collect();
    blit(root, (bx, py), (bw, ph), bar)?;

    draw_title(root, title, m, (px + bx + bw) / 2, py - m.px(8.0))
}

/// Copies an RGB raster to `pos` and frames it with a 1 px black line.
fn blit(root: &Root, pos: (i32, i32), (w, h): (i32, i32), rgb: Vec<u8>) -> DrawResult {
    let img = BitMapElement::with_owned_buffer(pos, (w as u32, h as u32), rgb)
        .ok_or("raster buffer does not match its size")?;
    root.draw(&img)?;
    let frame = [(pos.0 - 1, pos.1 - 1), (pos.0 + w, pos.1 + h)];
    root.draw(&Rectangle::new(frame, BLACK.stroke_width(1)))?;
    Ok(())
}

/// Draws the outline of the rectangle with corners `a` (top-left) and `b` as four
/// non-overlapping filled bars reaching `h` px to either side of the edges.
fn outline(root: &Root, a: (i32, i32), b: (i32, i32), h: i32, color: RGBAColor) -> DrawResult {
    // Filled rectangles exclude their bottom-right corner.
    let bars = [
        [(a.0 - h, a.1 - h), (b.0 + h + 1, a.1 + h + 1)],
        [(a.0 - h, b.1 - h), (b.0 + h + 1, b.1 + h + 1)],
        [(a.0 - h, a.1 + h + 1), (a.0 + h + 1, b.1 - h)],
        [(b.0 - h, a.1 + h + 1), (b.0 + h + 1, b.1 - h)],
    ];
    for bar in bars.into_iter().filter(|[p, q]| p.0 < q.0 && p.1 < q.1) {
        root.draw(&Rectangle::new(bar, color.filled()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Confusion matrices

/// A validated confusion matrix and its layout.
#[derive(Debug)]
struct ConfusionLayout {
    heat: HeatLayout,
    /// Fraction of each row's samples per cell, row-major (NaN in a row without samples).
    fractions: Vec<f64>,
    /// Tick labels: the class names, abbreviated to fit.
    names: Vec<String>,
    /// Width in px of the widest tick label.
    names_w: i32,
    /// Title with the overall accuracy.
    title: String,
}

/// Whether `n` column labels up to `names_w` px wide are set vertically below a `pw` px wide
/// matrix (they do not fit across their columns).
fn vertical_names(names_w: i32, n: usize, m: &Metrics, pw: i32) -> bool {
    names_w > pw / n as i32 - m.gap
}

/// `text`, shortened with "…" to at most `max_w` px at font `size`.
fn abbreviate(text: &str, max_w: i32, size: f64) -> String {
    if text_width(text, size) <= max_w {
        return text.into();
    }
    let chars: Vec<char> = text.chars().collect();
    (1..chars.len())
        .rev()
        .map(|k| format!("{}…", chars[..k].iter().collect::<String>().trim_end()))
        .find(|s| text_width(s, size) <= max_w)
        .unwrap_or_else(|| "…".into())
}

/// Validates a confusion matrix and lays out a `w × h` figure of it.
fn layout_confusion(
    matrix: &[Vec<u64>],
    classes: &[String],
    title: &str,
    w: u32,
    h: u32,
) -> Result<ConfusionLayout, String> {
    let n = matrix.len();
    if n == 0 {
        return Err("confusion matrix is empty".into());
    }
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(format!(
            "confusion matrix is not square: row {i} has {} entries, expected {n}",
            row.len()
        ));
    }
    if classes.len() != n {
        return Err(format!(
            "{} class names for a {n}×{n} confusion matrix",
            classes.len()
        ));
    }
    let fractions = matrix
        .iter()
        .flat_map(|row| {
            let total = row.iter().sum::<u64>() as f64;
            row.iter().map(move |&c| c as f64 / total)
        })
        .collect();
    let total: u64 = matrix.iter().flatten().sum();
    let correct: u64 = (0..n).map(|i| matrix[i][i]).sum();
    let title = match (title.is_empty(), total) {
        (_, 0) => title.to_string(),
        (true, _) => format!("accuracy {:.2} %", 100.0 * correct as f64 / total as f64),
        (false, _) => format!(
            "{title} — accuracy {:.2} %",
            100.0 * correct as f64 / total as f64
        ),
    };
    let font = Metrics::new(w, h).tick_font;
    let names: Vec<_> = classes
        .iter()
        .map(|c| abbreviate(c, w as i32 / 5, font))
        .collect();
    let names_w = names.iter().map(|c| text_width(c, font)).max().unwrap_or(0);
    let heat = layout_heat(
        (w, h),
        &title,
        1.0,
        (0.0, 1.0),
        "fraction of true class".into(),
        |m, pw, _| {
            let below = if vertical_names(names_w, n, m, pw) {
                names_w
            } else {
                m.px(13.0)
            };
            (
                m.label_area(names_w, "true"),
                m.label_area(below, "predicted"),
            )
        },
    )?;
    Ok(ConfusionLayout {
        heat,
        fractions,
        names,
        names_w,
        title,
    })
}

fn draw_confusion(root: &Root, matrix: &[Vec<u64>], c: &ConfusionLayout) -> DrawResult {
    let q = &c.heat;
    let m = &q.m;
    let (px, py, pw, ph) = q.area;
    let n = matrix.len();
    let cs = ColorScale::new(Colormap::Viridis, 0.0, 1.0);
    // Pixel `i` of a side `len` px long shows cell `i·n/len`; cell `k` is centred at
    // `(2k+1)·len/(2n)`.
    let cell = |i: i32, len: i32| i as usize * n / len as usize;
    let centre = |k: usize, len: i32| ((2 * k + 1) * len as usize / (2 * n)) as i32;
    let values =
        (0..ph).flat_map(|y| (0..pw).map(move |x| c.fractions[cell(y, ph) * n + cell(x, pw)]));
    draw_heat(root, q, &cs, values, &c.title)?;

    // Class names at tick marks on the cell centres, axis descriptions.
    let tick = text_style(m.tick_font);
    let left = tick.pos(Pos::new(HPos::Right, VPos::Center));
    let below = if vertical_names(c.names_w, n, m, pw) {
        let up = tick.transform(FontTransform::Rotate270);
        up.pos(Pos::new(HPos::Right, VPos::Center))
    } else {
        tick.pos(Pos::new(HPos::Center, VPos::Top))
    };
    for (k, name) in c.names.iter().enumerate() {
        let (x, y) = (px + centre(k, pw), py + centre(k, ph));
        root.draw(&PathElement::new(
            [(px - 1 - m.tick, y), (px - 1, y)],
            BLACK,
        ))?;
        root.draw(&PathElement::new(
            [(x, py + ph), (x, py + ph + m.tick)],
            BLACK,
        ))?;
        root.draw_text(name, &left, (px - 2 * m.tick, y))?;
        root.draw_text(name, &below, (x, py + ph + 2 * m.tick))?;
    }
    let desc = text_style(m.label_font);
    let bottom = desc.pos(Pos::new(HPos::Center, VPos::Bottom));
    root.draw_text("predicted", &bottom, (px + pw / 2, py + ph + q.bottom_h))?;
    let side = desc.transform(FontTransform::Rotate270);
    let side = side.pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text("true", &side, (px - q.left_w, py + ph / 2))?;

    // Counts, black or white for contrast with the cell, small enough to fit the cells.
    let widest = matrix
        .iter()
        .flatten()
        .map(|v| text_width(&v.to_string(), m.tick_font))
        .max()
        .unwrap_or(1)
        .max(1);
    let cell_w = f64::from(pw) / n as f64;
    let size = (m.tick_font * (0.8 * cell_w / f64::from(widest)).min(1.0))
        .min(0.45 * f64::from(ph) / n as f64);
    let anchor = Pos::new(HPos::Center, VPos::Center);
    for (t, row) in matrix.iter().enumerate() {
        for (p, v) in row.iter().enumerate() {
            let [r, g, b] = cs.rgb(c.fractions[t * n + p]);
            let luma = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
            let color = if luma > 128.0 { BLACK } else { WHITE };
            let style = text_style(size).color(&color).pos(anchor);
            let at = (px + centre(p, pw), py + centre(t, ph));
            root.draw_text(&v.to_string(), &style, at)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Colour maps

/// Colour of `map` at `t ∈ [0, 1]`.
fn colormap_rgb(map: Colormap, t: f64) -> [u8; 3] {
    match map {
        Colormap::Viridis => {
            let c = ViridisRGB::get_color(t);
            [c.0, c.1, c.2]
        }
        Colormap::Inferno => {
            let x = t.clamp(0.0, 1.0) * (INFERNO.len() - 1) as f64;
            let i = (x as usize).min(INFERNO.len() - 2);
            let f = x - i as f64;
            std::array::from_fn(|k| {
                let (a, b) = (f64::from(INFERNO[i][k]), f64::from(INFERNO[i + 1][k]));
                (a + f * (b - a)).round() as u8
            })
        }
        Colormap::Twilight => twilight(t),
        Colormap::Gray => [(t.clamp(0.0, 1.0) * 255.0).round() as u8; 3],
        Colormap::Diverging => diverging(t),
    }
}

/// [`Colormap::Diverging`]: lightness falls linearly from 0.97 in the middle to 0.45 at both
/// ends while the chroma grows towards blue (`t = 0`) or red (`t = 1`).
fn diverging(t: f64) -> [u8; 3] {
    let u = 2.0 * t.clamp(0.0, 1.0) - 1.0;
    let (a, b) = if u < 0.0 {
        (-0.04, -0.16)
    } else {
        (0.17, 0.07)
    };
    let m = u.abs();
    oklab_to_srgb(0.97 - 0.52 * m, a * m, b * m)
}

/// matplotlib's inferno (CC0; S. van der Walt, N. Smith) sampled at 33 evenly spaced points;
/// linear interpolation reproduces the 256-entry original within 1.5/255.
#[rustfmt::skip]
const INFERNO: [[u8; 3]; 33] = [
    [0, 0, 4], [4, 3, 18], [11, 7, 36], [21, 11, 55], [33, 12, 74], [46, 10, 90],
    [60, 9, 101], [74, 12, 107], [87, 16, 109], [99, 20, 110], [112, 25, 110],
    [125, 30, 109], [137, 34, 106], [150, 39, 102], [163, 43, 97], [175, 49, 92],
    [187, 55, 85], [198, 62, 77], [209, 70, 68], [219, 79, 59], [227, 89, 50],
    [235, 101, 40], [241, 113, 30], [246, 127, 20], [249, 141, 10], [251, 156, 6],
    [252, 171, 15], [251, 186, 31], [249, 202, 50], [245, 217, 73], [242, 232, 101],
    [243, 245, 134], [252, 255, 164],
];

/// Cyclic colour map computed in OKLab with θ = 2πt: lightness `L = 0.60 + 0.32·cos θ` (light
/// at t = 0 and 1, dark at t = ½) and chroma `u·sin θ + v·sin² θ` (blue at t = ¼, red at
/// t = ¾, grey at the light and dark points) plus a slight purple tint towards the dark point.
/// Every term is periodic in θ, so the map is smooth and cyclic.
fn twilight(t: f64) -> [u8; 3] {
    let (s, c) = (std::f64::consts::TAU * t).sin_cos();
    let (blue, red) = ([-0.02, -0.13], [0.13, 0.045]);
    let chroma = |k: usize| 0.5 * (blue[k] - red[k]) * s + 0.5 * (blue[k] + red[k]) * s * s;
    let dark = 0.5 * (1.0 - c);
    oklab_to_srgb(
        0.60 + 0.32 * c,
        chroma(0) + 0.03 * dark,
        chroma(1) - 0.04 * dark,
    )
}

/// OKLab (B. Ottosson, 2020) to 8-bit sRGB, clipping out-of-gamut colours.
fn oklab_to_srgb(l: f64, a: f64, b: f64) -> [u8; 3] {
    let l_ = (l + 0.396_337_777_4 * a + 0.215_803_757_3 * b).powi(3);
    let m_ = (l - 0.105_561_345_8 * a - 0.063_854_172_8 * b).powi(3);
    let s_ = (l - 0.089_484_177_5 * a - 1.291_485_548 * b).powi(3);
    let linear = [
        4.076_741_662_1 * l_ - 3.307_711_591_3 * m_ + 0.230_969_929_2 * s_,
        -1.268_438_004_6 * l_ + 2.609_757_401_1 * m_ - 0.341_319_396_5 * s_,
        -0.004_196_086_3 * l_ - 0.703_418_614_7 * m_ + 1.707_614_701 * s_,
    ];
    linear.map(|c| {
        let c = c.clamp(0.0, 1.0);
        let g = if c <= 0.003_130_8 {
            12.92 * c
        } else {
            1.055 * c.powf(1.0 / 2.4) - 0.055
        };
        (g * 255.0).round() as u8
    })
}

// ---------------------------------------------------------------------------------------------
// Line plots

/// The tab10 palette.
#[rustfmt::skip]
const SERIES_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40),
    RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194),
    RGBColor(127, 127, 127), RGBColor(188, 189, 34), RGBColor(23, 190, 207),
];

/// Whether a point can be drawn.
fn drawable(log_y: bool) -> impl Fn(&(f64, f64)) -> bool {
    move |&(x, y)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0)
}

/// Validates `p` and returns its data ranges, padded by 5 % in y.
fn line_ranges(p: &LinePlot) -> Result<(Range<f64>, Range<f64>), String> {
    if p.series.is_empty() {
        return Err("line plot has no series".into());
    }
    if let Some(s) = p.series.iter().find(|s| s.points.is_empty()) {
        return Err(format!("series {:?} has no points", s.name));
    }
    let inf = f64::INFINITY;
    let (mut xl, mut xh, mut yl, mut yh) = (inf, -inf, inf, -inf);
    for &(x, y) in p
        .series
        .iter()
        .flat_map(|s| s.points)
        .filter(|q| drawable(p.log_y)(q))
    {
        (xl, xh, yl, yh) = (xl.min(x), xh.max(x), yl.min(y), yh.max(y));
    }
    if xl > xh {
        let extra = if p.log_y {
            " with y > 0 (log y axis)"
        } else {
            ""
        };
        return Err(format!("no series has finite points{extra}"));
    }
    let pad = |lo: f64, hi: f64, frac: f64| {
        let d = if hi > lo {
            frac * (hi - lo)
        } else if lo == 0.0 {
            1.0
        } else {
            0.1 * lo.abs()
        };
        (lo - d, hi + d)
    };
    let (xl, xh) = pad(xl, xh, 0.0);
    let (yl, yh) = if p.log_y {
        let f = if yh > yl { (yh / yl).powf(0.05) } else { 2.0 };
        (yl / f, yh * f)
    } else {
        pad(yl, yh, 0.05)
    };
    Ok((xl..xh, yl..yh))
}

/// Compact label for a value on a log axis (`100`, `0.01`, `2e−7`).
fn fmt_log(v: &f64) -> String {
    let v: f64 = format!("{v:.5e}").parse().unwrap_or(*v); // drop float noise
    let s = if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    };
    s.replace('-', "\u{2212}")
}

/// The plot corner with the fewest data points, for the legend (upper right on ties).
fn legend_corner(p: &LinePlot, xr: &Range<f64>, yr: &Range<f64>) -> SeriesLabelPosition {
    let f = |v: f64| if p.log_y { v.ln() } else { v };
    let mut count = [0usize; 4]; // UR, UL, LR, LL
    for &(x, y) in p
        .series
        .iter()
        .flat_map(|s| s.points)
        .filter(|q| drawable(p.log_y)(q))
    {
        let u = (x - xr.start) / (xr.end - xr.start);
        let v = (f(y) - f(yr.start)) / (f(yr.end) - f(yr.start));
        let (right, left, top, bottom) = (u > 0.6, u < 0.4, v > 0.7, v < 0.3);
        let hits = [right && top, left && top, right && bottom, left && bottom];
        for (c, hit) in count.iter_mut().zip(hits) {
            *c += usize::from(hit);
        }
    }
    match (0..4).min_by_key(|&i| count[i]) {
        Some(1) => SeriesLabelPosition::UpperLeft,
        Some(2) => SeriesLabelPosition::LowerRight,
        Some(3) => SeriesLabelPosition::LowerLeft,
        _ => SeriesLabelPosition::UpperRight,
    }
}

fn draw_lines<Y>(root: &Root, p: &LinePlot, xr: Range<f64>, yr: Y) -> DrawResult
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64> + Ranged<ValueType = f64>,
{
    let (w, h) = root.dim_in_pixel();
    let m = Metrics::new(w, h);
    let (tick_style, desc_style) = (text_style(m.tick_font), text_style(m.label_font));
    let title_h = m.title_h(p.title);
    let area = root.margin(m.pad + title_h, m.pad, m.pad, m.pad + m.px(8.0));
    let y_coord: Y::CoordDescType = yr.into();
    let y_range = y_coord.range();
    let plot_h = h as i32 - m.px(90.0) - title_h;
    let (nx, ny) = (
        tick_count(w as i32 - m.px(110.0), 90.0 * m.s),
        tick_count(plot_h, 55.0 * m.s),
    );
    let (_, fx) = tick_format(xr.start, xr.end, nx);
    let (_, fy_linear) = tick_format(y_range.start, y_range.end, ny);
    let fy = |v: &f64| if p.log_y { fmt_log(v) } else { fy_linear(v) };
    let ylab_w = y_coord
        .key_points(ny)
        .iter()
        .map(|v| text_width(&fy(v), m.tick_font))
        .max();
    let left_w = m.label_area(ylab_w.unwrap_or(0), p.y_label);
    let bottom_h = m.label_area(m.px(13.0), p.x_label);
    let mut chart = ChartBuilder::on(&area)
        .set_label_area_size(LabelAreaPosition::Left, left_w)
        .set_label_area_size(LabelAreaPosition::Bottom, bottom_h)
        .build_cartesian_2d(xr, y_coord)?;
    chart
        .configure_mesh()
        .x_labels(nx)
        .y_labels(ny)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style(tick_style.clone())
        .axis_desc_style(desc_style)
        .x_desc(p.x_label)
        .y_desc(p.y_label)
        .set_all_tick_mark_size(m.tick)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(if p.log_y { 0.05 } else { 0.0 }))
        .draw()?;
    let ok = drawable(p.log_y);
    let xr_legend = chart.x_range();
    let width = m.px(2.0).max(1) as u32;
    for (i, s) in p.series.iter().enumerate() {
        let style = SERIES_COLORS[i % SERIES_COLORS.len()].stroke_width(width);
        for (k, seg) in s
            .points
            .split(|q| !ok(q))
            .filter(|seg| !seg.is_empty())
            .enumerate()
        {
            let anno = if seg.len() == 1 {
                chart.draw_series([Circle::new(seg[0], width * 2, style.filled())])?
            } else {
                chart.draw_series(LineSeries::new(seg.iter().copied(), style))?
            };
            if k == 0 && !s.name.is_empty() {
                let len = m.px(22.0);
                anno.label(s.name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + len, y)], style));
            }
        }
    }
    if p.series.iter().any(|s| !s.name.is_empty()) {
        chart
            .configure_series_labels()
            .position(legend_corner(p, &xr_legend, &y_range))
            .margin(m.px(8.0))
            .legend_area_size(m.px(30.0))
            .label_font(tick_style)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let (x0, y0) = root.get_base_pixel(); // the ranges are in figure pixels
    let (xs, ys) = (xs.start - x0..xs.end - x0, ys.start - y0..ys.end - y0);
    let frame = [(xs.start - 1, ys.start), (xs.end - 1, ys.end)]; // joins the axis lines
    root.draw(&Rectangle::new(frame, BLACK.stroke_width(1)))?;
    draw_title(
        root,
        p.title,
        &m,
        (xs.start + xs.end) / 2,
        m.pad + title_h - m.gap,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// Decodes an RGB PNG into (width, height, pixels).
    fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
        let mut reader = png::Decoder::new(fs::File::open(path).unwrap())
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let px = buf[..info.buffer_size()]
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        (info.width, info.height, px)
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// `n × n` samples of `f(x, y)` over `[-half, half]²` (pixel centres), row 0 at the bottom.
    fn field(n: usize, half: f64, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
        let c = |i: usize| -half + (i as f64 + 0.5) * 2.0 * half / n as f64;
        (0..n * n).map(|k| f(c(k % n), c(k / n))).collect()
    }

    fn gaussian(n: usize, half: f64, w: f64) -> Vec<f64> {
        field(n, half, |x, y| (-(x * x + y * y) / (w * w)).exp())
    }

    /// Pixel of the figure showing the point `(x, y)` (m) of a plot laid out as `l`.
    fn at(l: &ImageLayout, extent: [f64; 4], x: f64, y: f64) -> (usize, usize) {
        let (px, py, pw, ph) = l.heat.area;
        let fx = (x - extent[0]) / (extent[1] - extent[0]);
        let fy = (extent[3] - y) / (extent[3] - extent[2]);
        let cx = (f64::from(px) + fx * f64::from(pw)).min(f64::from(px + pw - 1));
        let cy = (f64::from(py) + fy * f64::from(ph)).min(f64::from(py + ph - 1));
        (cx as usize, cy as usize)
    }

    fn pixel(img: &(u32, u32, Vec<[u8; 3]>), (x, y): (usize, usize)) -> [u8; 3] {
        img.2[y * img.0 as usize + x]
    }

    #[test]
    fn gaussian_heat_map_with_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gauss.png");
        let (n, half) = (256, 1e-3);
        let values = gaussian(n, half, 0.3e-3);
        let rects = [Rect {
            label: Some("det".into()),
            ..Rect::new(0.2e-3, 0.6e-3, -0.7e-3, -0.3e-3)
        }];
        let extent = [-half, half, -half, half];
        let plot = ImagePlot {
            title: "Gaussian",
            colorbar_label: "intensity (a.u.)",
            rects: &rects,
            ..ImagePlot::new(&values, n, n, extent)
        };
        write_image_png(&path, &plot, 640, 480).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (640, 480));
        let l = layout_image(&plot, 640, 480).unwrap();
        let (_, _, pw, ph) = l.heat.area;
        assert!(
            (pw - ph).abs() <= 1,
            "square extent must give a square plot area"
        );
        let [r, g, b] = pixel(&img, at(&l, extent, 0.0, 0.0));
        assert!(
            r > 200 && g > 200 && b < 100,
            "centre should be bright yellow: {r} {g} {b}"
        );
        let d = 0.98 * half;
        for (x, y) in [(-d, -d), (-d, d), (d, -d), (d, d)] {
            let [r, g, b] = pixel(&img, at(&l, extent, x, y));
            assert!(
                r < 90 && g < 30 && b > 60,
                "corner should be dark purple: {r} {g} {b}"
            );
        }
        let edge = pixel(&img, at(&l, extent, 0.4e-3, -0.3e-3));
        assert!(
            edge.iter().all(|&c| c > 240),
            "overlay outline should be white: {edge:?}"
        );
        assert_eq!(files_in(dir.path()), ["gauss.png"]);
    }

    #[test]
    fn log_scale_uses_db_and_clips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.png");
        let (n, half, w) = (200, 50e-6, 10e-6);
        let values = gaussian(n, half, w);
        let extent = [-half, half, -half, half];
        let plot = ImagePlot {
            colormap: Colormap::Inferno,
            scale: Scale::Log { decades: 3.0 },
            colorbar_label: "intensity (a.u.)",
            ..ImagePlot::new(&values, n, n, extent)
        };
        write_image_png(&path, &plot, 500, 400).unwrap();
        let l = layout_image(&plot, 500, 400).unwrap();
        assert_eq!((l.heat.lo, l.heat.hi), (-30.0, 0.0));
        assert_eq!(l.heat.bar_label, "intensity (dB)");
        assert_eq!(l.unit.1, "µm");
        let img = decode(&path);
        let top = colormap_rgb(Colormap::Inferno, 1.0);
        let close = |a: [u8; 3], b: [u8; 3], tol: i32| {
            a.iter()
                .zip(b)
                .all(|(&x, y)| (i32::from(x) - i32::from(y)).abs() <= tol)
        };
        assert!(close(pixel(&img, at(&l, extent, 0.0, 0.0)), top, 12));
        // -15 dB (mid colour) at r = w·sqrt(1.5·ln 10); clipped black at the corners.
        let r15 = w * (1.5 * 10f64.ln()).sqrt();
        let mid = colormap_rgb(Colormap::Inferno, 0.5);
        assert!(close(pixel(&img, at(&l, extent, r15, 0.0)), mid, 30));
        assert!(close(
            pixel(&img, at(&l, extent, -0.97 * half, 0.97 * half)),
            [0, 0, 4],
            4
        ));
    }

    #[test]
    fn phase_with_twilight_and_nan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phase.png");
        let (n, half) = (128, 2e-3);
        let mut values = field(n, half, |x, y| y.atan2(x));
        values[..n * 8].fill(f64::NAN); // bottom rows masked
        let extent = [-half, half, -half, half];
        let plot = ImagePlot {
            colormap: Colormap::Twilight,
            range: Some((-PI, PI)),
            colorbar_label: "phase (rad)",
            ..ImagePlot::new(&values, n, n, extent)
        };
        write_image_png(&path, &plot, 520, 420).unwrap();
        let l = layout_image(&plot, 520, 420).unwrap();
        let img = decode(&path);
        let left = pixel(&img, at(&l, extent, -0.8 * half, 0.01 * half)); // phase ≈ ±π: light
        let right = pixel(&img, at(&l, extent, 0.8 * half, 0.01 * half)); // phase ≈ 0: dark
        let up = pixel(&img, at(&l, extent, 0.0, 0.8 * half)); // +π/2: red
        let down = pixel(&img, at(&l, extent, 0.0, -0.5 * half)); // -π/2: blue
        assert!(left.iter().all(|&c| c > 180), "{left:?}");
        assert!(right.iter().all(|&c| c < 90), "{right:?}");
        assert!(up[0] > up[2] + 40, "{up:?}");
        assert!(down[2] > down[0] + 40, "{down:?}");
        assert_eq!(pixel(&img, at(&l, extent, 0.0, -0.98 * half)), NAN_GREY);
    }

    #[test]
    fn diverging_is_white_in_the_middle_and_monotone_in_lightness() {
        let mid = diverging(0.5);
        assert!(mid.iter().all(|&c| c >= 240), "{mid:?}");
        let (blue, red) = (diverging(0.0), diverging(1.0));
        assert!(blue[2] > blue[0] + 60, "{blue:?}");
        assert!(red[0] > red[2] + 60, "{red:?}");
        let sum = |c: [u8; 3]| c.iter().map(|&v| u32::from(v)).sum::<u32>();
        for i in 0..50 {
            let (t0, t1) = (f64::from(i) / 100.0, f64::from(i + 1) / 100.0);
            assert!(sum(diverging(t0)) <= sum(diverging(t1)) + 2, "{t0}");
            assert!(
                sum(diverging(1.0 - t0)) <= sum(diverging(1.0 - t1)) + 2,
                "{t0}"
            );
        }
    }

    #[test]
    fn twilight_is_cyclic_and_smooth() {
        assert_eq!(twilight(0.0), twilight(1.0));
        let lut: Vec<_> = (0..=512).map(|i| twilight(f64::from(i) / 512.0)).collect();
        for w in lut.windows(2) {
            let step = w[0]
                .iter()
                .zip(w[1])
                .map(|(&a, b)| (i32::from(a) - i32::from(b)).abs());
            assert!(step.max().unwrap() <= 6, "{:?} -> {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn resample_flips_rows_and_box_averages() {
        // 4×2 data, row 0 (bottom) = 0..4, row 1 (top) = 10..14; shrink to 2×1 and keep 4×2.
        let v = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        let p = ImagePlot::new(&v, 4, 2, [0.0, 1.0, 0.0, 1.0]);
        assert_eq!(resample(&p, 2, 1), [5.5, 7.5]);
        assert_eq!(
            resample(&p, 4, 2),
            [10.0, 11.0, 12.0, 13.0, 0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(resample(&p, 8, 2)[..4], [10.0, 10.0, 11.0, 11.0]);
        let nan = [f64::NAN, 1.0, f64::NAN, f64::NAN];
        assert_eq!(
            resample(&ImagePlot::new(&nan, 2, 2, [0.0, 1.0, 0.0, 1.0]), 1, 1),
            [1.0]
        );
    }

    #[test]
    fn large_image_renders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.png");
        let n = 2048;
        let values = gaussian(n, 1e-3, 0.2e-3);
        let plot = ImagePlot::new(&values, n, n, [-1e-3, 1e-3, -1e-3, 1e-3]);
        let t = std::time::Instant::now();
        write_image_png(&path, &plot, 1000, 900).unwrap();
        eprintln!("2048² heat map: {:?}", t.elapsed());
        assert_eq!(decode(&path).0, 1000);
    }

    #[test]
    fn line_plot_two_series_linear_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<_> = (0..100)
            .map(|i| (f64::from(i), (f64::from(i) * 0.1).sin() + 1.5))
            .collect();
        let b: Vec<_> = (0..100)
            .map(|i| (f64::from(i), (-f64::from(i) * 0.05).exp()))
            .collect();
        let mut plot = LinePlot {
            title: "loss",
            x_label: "epoch",
            y_label: "loss",
            series: vec![
                Series {
                    name: "train",
                    points: &a,
                },
                Series {
                    name: "test",
                    points: &b,
                },
            ],
            log_y: false,
        };
        for log_y in [false, true] {
            plot.log_y = log_y;
            let path = dir.path().join(format!("lines-{log_y}.png"));
            write_line_png(&path, &plot, 600, 400).unwrap();
            let img = decode(&path);
            assert_eq!((img.0, img.1), (600, 400));
            for c in &SERIES_COLORS[..2] {
                assert!(img.2.iter().filter(|p| **p == [c.0, c.1, c.2]).count() > 100);
            }
        }
        assert_eq!(files_in(dir.path()), ["lines-false.png", "lines-true.png"]);
    }

    #[test]
    fn invalid_input_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let v = [1.0; 6];
        let e = [0.0, 1.0, 0.0, 1.0];
        let image_err =
            |p: ImagePlot, w: u32| write_image_png(&path, &p, w, 300).unwrap_err().to_string();
        let cases = [
            (
                image_err(ImagePlot::new(&v, 4, 2, e), 400),
                "values has 6 elements",
            ),
            (image_err(ImagePlot::new(&[], 0, 2, e), 400), "zero size"),
            (
                image_err(ImagePlot::new(&v, 3, 2, [0.0, f64::NAN, 0.0, 1.0]), 400),
                "extent",
            ),
            (
                image_err(ImagePlot::new(&v, 3, 2, [1.0, 0.0, 0.0, 1.0]), 400),
                "x_max > x_min",
            ),
            (
                image_err(ImagePlot::new(&v, 3, 2, e), 0),
                "figure size 0×300",
            ),
            (
                image_err(
                    ImagePlot {
                        range: Some((1.0, 1.0)),
                        ..ImagePlot::new(&v, 3, 2, e)
                    },
                    400,
                ),
                "colour range",
            ),
            (
                image_err(
                    ImagePlot {
                        scale: Scale::Log { decades: 0.0 },
                        ..ImagePlot::new(&v, 3, 2, e)
                    },
                    400,
                ),
                "decades",
            ),
        ];
        for (msg, want) in cases {
            assert!(
                msg.contains(want) && msg.contains("bad.png"),
                "{msg:?} lacks {want:?}"
            );
        }
        let pts = [(0.0, f64::NAN), (1.0, -1.0)];
        let line_err = |series: Vec<Series>, log_y: bool| {
            let p = LinePlot {
                title: "",
                x_label: "",
                y_label: "",
                series,
                log_y,
            };
            write_line_png(&path, &p, 400, 300).unwrap_err().to_string()
        };
        assert!(line_err(vec![], false).contains("no series"));
        assert!(
            line_err(
                vec![Series {
                    name: "a",
                    points: &[]
                }],
                false
            )
            .contains("\"a\" has no points")
        );
        assert!(
            line_err(
                vec![Series {
                    name: "a",
                    points: &pts
                }],
                true
            )
            .contains("log y axis")
        );
        assert!(files_in(dir.path()).is_empty());
    }

    #[test]
    fn writes_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let v = gaussian(16, 1.0, 0.5);
        let plot = ImagePlot::new(&v, 16, 16, [-1.0, 1.0, -1.0, 1.0]);
        let path = dir.path().join("out.png");
        fs::write(&path, b"old").unwrap();
        write_image_png(&path, &plot, 300, 200).unwrap();
        assert_eq!(decode(&path).0, 300);
        assert_eq!(files_in(dir.path()), ["out.png"]);
        // Renaming onto a directory fails after rendering: the temporary file must be removed.
        let blocked = dir.path().join("blocked.png");
        fs::create_dir(&blocked).unwrap();
        let err = write_image_png(&blocked, &plot, 300, 200).unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }) && err.to_string().contains("blocked.png"));
        // A missing directory fails while writing the temporary file.
        let err = write_image_png(&dir.path().join("missing/x.png"), &plot, 300, 200).unwrap_err();
        assert!(err.to_string().contains("x.png"), "{err}");
        assert_eq!(files_in(dir.path()), ["blocked.png", "out.png"]);
    }

    /// The pixel at fractions `(fx, fy)` of the data area of a heat map laid out as `q`, in a
    /// panel whose top-left corner is at `offset`.
    fn in_area(q: &HeatLayout, offset: (usize, usize), fx: f64, fy: f64) -> (usize, usize) {
        let (px, py, pw, ph) = q.area;
        let x = f64::from(px) + fx * f64::from(pw);
        let y = f64::from(py) + fy * f64::from(ph);
        (offset.0 + x as usize, offset.1 + y as usize)
    }

    fn rgb(c: RGBColor) -> [u8; 3] {
        [c.0, c.1, c.2]
    }

    #[test]
    fn image_grid_of_phase_masks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phases.png");
        let (n, half) = (64, 0.5e-3);
        let phases = [0.0, 0.5 * PI, PI, 1.5 * PI, 1.9 * PI];
        let masks: Vec<_> = phases.iter().map(|&v| vec![v; n * n]).collect();
        let titles: Vec<_> = (1..=phases.len()).map(|i| format!("layer {i}")).collect();
        let panels: Vec<_> = masks
            .iter()
            .zip(&titles)
            .map(|(m, t)| ImagePlot {
                title: t,
                colorbar_label: "phase (rad)",
                colormap: Colormap::Twilight,
                range: Some((0.0, 2.0 * PI)),
                ..ImagePlot::new(m, n, n, [-half, half, -half, half])
            })
            .collect();
        let (pw, ph) = (360, 300);
        write_image_grid_png(&path, &panels, 3, pw, ph, "phase masks").unwrap();
        let img = decode(&path);
        let band = img.1 as usize - 2 * ph as usize;
        assert_eq!(img.0, 3 * pw);
        assert!(band > 10 && band < 60, "title band {band} px");
        let cs = ColorScale::new(Colormap::Twilight, 0.0, 2.0 * PI);
        for (i, (p, &v)) in panels.iter().zip(&phases).enumerate() {
            let l = layout_image(p, pw, ph).unwrap();
            let offset = ((i % 3) * pw as usize, band + (i / 3) * ph as usize);
            assert_eq!(
                pixel(&img, in_area(&l.heat, offset, 0.5, 0.5)),
                cs.rgb(v),
                "{i}"
            );
        }
        // The sixth cell of the 3×2 grid is empty.
        let empty = (
            2 * pw as usize + pw as usize / 2,
            band + 3 * ph as usize / 2,
        );
        assert_eq!(pixel(&img, empty), [255; 3]);
        assert_eq!(files_in(dir.path()), ["phases.png"]);
    }

    #[test]
    fn image_grid_highlights_the_correct_detector() {
        // Ten detectors in rows of 4, 4 and 2; panel k has its spot on detector k.
        let (n, half, side) = (96, 1e-3, 0.3e-3);
        let centre = |k: usize| {
            (
                ((k % 4) as f64 - 1.5) * 0.45e-3,
                (1.0 - (k / 4) as f64) * 0.6e-3,
            )
        };
        let rects = |class: usize| -> Vec<Rect> {
            (0..10)
                .map(|k| {
                    let (x, y) = centre(k);
                    Rect {
                        label: Some(k.to_string()),
                        highlight: k == class,
                        ..Rect::new(
                            x - side / 2.0,
                            x + side / 2.0,
                            y - side / 2.0,
                            y + side / 2.0,
                        )
                    }
                })
                .collect()
        };
        let all_rects: Vec<_> = (0..10).map(rects).collect();
        let fields: Vec<_> = (0..10)
            .map(|k| {
                let (cx, cy) = centre(k);
                field(n, half, |x, y| {
                    (-((x - cx).powi(2) + (y - cy).powi(2)) / 1e-8).exp()
                })
            })
            .collect();
        let extent = [-half, half, -half, half];
        let panels: Vec<_> = (0..10)
            .map(|k| ImagePlot {
                colormap: Colormap::Inferno,
                rects: &all_rects[k],
                ..ImagePlot::new(&fields[k], n, n, extent)
            })
            .collect();
        let (pw, ph) = (320, 280);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outputs.png");
        write_image_grid_png(&path, &panels, 5, pw, ph, "").unwrap();
        let img = decode(&path);
        assert_eq!(
            (img.0, img.1),
            (5 * pw, 2 * ph),
            "no title band without a title"
        );
        for (k, p) in panels.iter().enumerate() {
            let l = layout_image(p, pw, ph).unwrap();
            let offset = ((k % 5) * pw as usize, (k / 5) * ph as usize);
            let top_edge = |j: usize| {
                let (x, y) = centre(j);
                let (px, py) = at(&l, extent, x, y + side / 2.0);
                pixel(&img, (px + offset.0, py + offset.1))
            };
            assert_eq!(top_edge(k), rgb(HIGHLIGHT), "panel {k}");
            assert_eq!(top_edge((k + 1) % 10), [255; 3], "panel {k}");
        }
        let highlighted = img.2.iter().filter(|&&c| c == rgb(HIGHLIGHT)).count();
        assert!(highlighted > 10 * 100, "{highlighted} highlight pixels");
    }

    fn fashion_classes() -> Vec<String> {
        photonflow_d2nn::data::idx::FASHION_MNIST_CLASSES
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn confusion_matrix_colours_counts_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion.png");
        let n = 10;
        let mut matrix: Vec<_> = (0..n)
            .map(|t| {
                (0..n)
                    .map(|p| if t == p { 100 } else { 0 })
                    .collect::<Vec<u64>>()
            })
            .collect();
        (matrix[3][3], matrix[3][6]) = (80, 20);
        matrix[9][9] = 0; // a class without samples
        let classes = fashion_classes();
        let (w, h) = (640, 560);
        write_confusion_png(&path, &matrix, &classes, "Fashion-MNIST", w, h).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (w, h));
        let c = layout_confusion(&matrix, &classes, "Fashion-MNIST", w, h).unwrap();
        assert_eq!(c.title, "Fashion-MNIST — accuracy 97.78 %");
        assert_eq!(c.names, classes, "names this short need no abbreviation");
        assert!(vertical_names(c.names_w, n, &c.heat.m, c.heat.area.2));
        let (pw, ph) = (c.heat.area.2, c.heat.area.3);
        assert!((pw - ph).abs() <= 1, "square cells");
        // A point near the top-left corner of cell (true t, predicted p), clear of the count.
        let corner = |t: usize, p: usize| {
            let f = |k: usize| (k as f64 + 0.15) / n as f64;
            pixel(&img, in_area(&c.heat, (0, 0), f(p), f(t)))
        };
        let cs = ColorScale::new(Colormap::Viridis, 0.0, 1.0);
        let (top, bottom) = (cs.rgb(1.0), cs.rgb(0.0));
        for k in 0..9 {
            if k != 3 {
                assert_eq!(corner(k, k), top, "diagonal cell {k}");
            }
            assert_eq!(
                corner(k, (k + 1) % n),
                bottom,
                "off-diagonal cell of row {k}"
            );
        }
        assert_eq!(corner(3, 3), cs.rgb(0.8));
        assert_eq!(corner(3, 6), cs.rgb(0.2));
        assert_eq!(corner(9, 9), NAN_GREY);
        // Counts: black text on the light diagonal, white text on dark cells.
        let cell_pixels = |t: usize, p: usize| {
            let f = |k: usize| (k as f64 + 0.5) / n as f64;
            let (x, y) = in_area(&c.heat, (0, 0), f(p), f(t));
            let r = (pw as usize / n / 3) as isize;
            (-r..=r).flat_map(move |dy| {
                (-r..=r).map(move |dx| ((x as isize + dx) as usize, (y as isize + dy) as usize))
            })
        };
        let dark = cell_pixels(0, 0).filter(|&q| pixel(&img, q).iter().all(|&v| v < 80));
        assert!(dark.count() > 10, "black count on the top colour");
        let light = cell_pixels(0, 1).filter(|&q| pixel(&img, q).iter().all(|&v| v > 180));
        assert!(light.count() > 5, "white count on the bottom colour");
        // The colorbar's top row has the top colour.
        let (bx, bw) = c.heat.bar;
        let bar_top = ((bx + bw / 2) as usize, c.heat.area.1 as usize);
        assert_eq!(pixel(&img, bar_top), top);
    }

    #[test]
    fn long_class_names_are_abbreviated() {
        let font = Metrics::new(400, 300).tick_font;
        let long = "a very long class name indeed, longer than any axis";
        let short = abbreviate(long, 80, font);
        assert!(
            short.ends_with('…') && text_width(&short, font) <= 80,
            "{short}"
        );
        assert_eq!(abbreviate("Bag", 80, font), "Bag");
        let matrix = vec![vec![5, 1], vec![0, 7]];
        let classes = [long.to_string(), "b".into()];
        let c = layout_confusion(&matrix, &classes, "", 400, 300).unwrap();
        assert_eq!(c.title, "accuracy 92.31 %");
        assert!(
            c.names[0].ends_with('…') && c.names_w <= 80,
            "{:?}",
            c.names
        );
    }

    #[test]
    fn training_curves_two_panels() {
        let dir = tempfile::tempdir().unwrap();
        let (blue, orange) = (rgb(SERIES_COLORS[0]), rgb(SERIES_COLORS[1]));
        for epochs in [20, 1] {
            let path = dir.path().join(format!("training-{epochs}.png"));
            let e: Vec<_> = (1..=epochs).map(f64::from).collect();
            let loss: Vec<_> = e.iter().map(|x| 2.0 / x).collect();
            let train: Vec<_> = e.iter().map(|x| 1.0 - 0.5 / x).collect();
            let test: Vec<_> = e.iter().map(|x| 0.95 - 0.5 / x).collect();
            write_training_png(&path, &e, &loss, &train, &test, 900, 360).unwrap();
            let img = decode(&path);
            assert_eq!((img.0, img.1), (900, 360));
            let count = |c: [u8; 3], right: bool| {
                (0..img.2.len())
                    .filter(|&i| (i % 900 >= 450) == right && img.2[i] == c)
                    .count()
            };
            let least = if epochs == 1 { 20 } else { 300 };
            assert!(count(blue, false) > least, "loss curve, {epochs} epochs");
            assert!(count(blue, true) > least, "train accuracy, {epochs} epochs");
            assert!(
                count(orange, true) > least,
                "test accuracy, {epochs} epochs"
            );
            assert_eq!(count(orange, false), 0, "the loss panel has one curve");
        }
    }

    #[test]
    fn invalid_figures_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let check = |r: Result<(), PlotError>, want: &str| {
            let e = r.unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, PlotError::Invalid { .. }) && msg.contains(want),
                "{msg:?} lacks {want:?}"
            );
            assert!(msg.contains("bad.png"), "{msg}");
        };
        let classes = fashion_classes();
        let confusion =
            |m: &[Vec<u64>], c: &[String]| write_confusion_png(&path, m, c, "", 500, 400);
        check(confusion(&[], &[]), "empty");
        check(
            confusion(&[vec![1, 2], vec![3]], &classes[..2]),
            "not square",
        );
        check(
            confusion(&[vec![1, 2], vec![3, 4]], &classes),
            "10 class names for a 2×2",
        );
        let v = [0.0; 4];
        let good = ImagePlot::new(&v, 2, 2, [0.0, 1.0, 0.0, 1.0]);
        let bad = ImagePlot::new(&v, 3, 2, [0.0, 1.0, 0.0, 1.0]);
        let grid = |p: &[ImagePlot], cols, w| write_image_grid_png(&path, p, cols, w, 300, "t");
        check(grid(&[], 2, 300), "0 panels");
        check(grid(&[good], 0, 300), "0 columns");
        check(
            grid(&[good, bad], 2, 300),
            "panels[1]: values has 4 elements",
        );
        check(grid(&[good], 1, 100), "panel size 100×300");
        check(grid(&[good; 60], 60, 300), "figure size 18000×");
        let e = [1.0, 2.0];
        let training = |l: &[f64], w| write_training_png(&path, &e, l, &e, &e, w, 300);
        check(training(&[1.0], 800), "got 2 epochs, 1 loss");
        check(training(&e, 300), "panel size 150×300");
        check(
            write_training_png(&path, &[], &[], &[], &[], 800, 300),
            "at least one epoch",
        );
        check(
            training(&[f64::NAN; 2], 800),
            "loss panel: no series has finite points",
        );
        assert!(files_in(dir.path()).is_empty());
    }

    /// Plain-number axes: no length unit, and each sample where its index says (a mesh of 4
    /// columns and 3 modes, with an empty, grey cell).
    #[test]
    fn index_axes_put_samples_at_their_indices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.png");
        let mut values: Vec<f64> = (0..12).map(f64::from).collect();
        values[5] = f64::NAN; // column 1, mode 1
        let extent = [-0.5, 3.5, -0.5, 2.5];
        let plot = ImagePlot {
            axes: Axes::Index {
                x: "column",
                y: "mode",
            },
            ..ImagePlot::new(&values, 4, 3, extent)
        };
        let l = layout_image(&plot, 400, 300).unwrap();
        assert_eq!(l.unit, (1.0, ""));
        let metres = layout_image(&ImagePlot::new(&values, 4, 3, extent), 400, 300).unwrap();
        assert_eq!(metres.unit.1, "cm");
        write_image_png(&path, &plot, 400, 300).unwrap();
        let img = decode(&path);
        let grey = pixel(&img, at(&l, extent, 1.0, 1.0));
        assert!(
            grey[0] == grey[1] && grey[1] == grey[2],
            "NaN cell: {grey:?}"
        );
        let [low, high] = [(0.0, 0.0), (3.0, 2.0)].map(|(x, y)| pixel(&img, at(&l, extent, x, y)));
        assert!(
            low[2] > low[1] && high[1] > high[2],
            "viridis ends: {low:?} {high:?}"
        );
    }

    #[test]
    fn labels_and_units() {
        assert_eq!(length_unit(&[-5e-4, 5e-4, 0.0, 1e-4]).1, "µm");
        assert_eq!(length_unit(&[-2e-3, 2e-3, -2e-3, 2e-3]).1, "mm");
        assert_eq!(length_unit(&[0.0, 0.3, 0.0, 0.3]).1, "cm");
        assert_eq!(db_label("intensity (a.u.)"), "intensity (dB)");
        assert_eq!(db_label("power [dB]"), "power [dB]");
        assert_eq!(db_label(""), "dB");
        let (pts, f) = tick_format(-1.0, 1.0, 5);
        let labels: Vec<_> = pts.iter().map(&f).collect();
        assert_eq!(labels, ["\u{2212}1.0", "\u{2212}0.5", "0.0", "0.5", "1.0"]);
        let (pts, f) = tick_format(0.0, 3e-9, 4);
        assert_eq!(f(&pts[1]), "1e\u{2212}9");
        assert_eq!(fmt_log(&1e-7), "1e\u{2212}7");
        assert_eq!(fmt_log(&0.01), "0.01");
    }
}
