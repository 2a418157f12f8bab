//! The figures of a diffractive network's run: layer masks, detector-plane intensities per
//! class, confusion matrix and training curves. Plot inputs only; the numbers come from the
//! d2nn crate.

use std::f64::consts::TAU;
use std::path::Path;

use burn::tensor::Device;
use photonflow_d2nn::data::Dataset;
use photonflow_d2nn::eval::{Evaluation, detector_planes};
use photonflow_d2nn::network::Optics;
use photonflow_d2nn::train::EpochMetrics;
use photonflow_optics::OpticalSystem;

use crate::plot::{
    Colormap, ImagePlot, Rect, write_confusion_png, write_image_grid_png, write_training_png,
};

/// Panel size of the grids, px.
const PANEL: (u32, u32) = (420, 360);

/// One panel of the layer figure.
struct Map {
    title: String,
    values: Vec<f64>,
    label: &'static str,
    colormap: Colormap,
    range: Option<(f64, f64)>,
}

/// The phase (and, when there is one, amplitude or height) map of every layer.
pub fn layers(path: &Path, system: &OpticalSystem) -> anyhow::Result<()> {
    let extent = system.grid()?.edges();
    let (nx, ny) = (system.nx, system.ny);
    let wide = |v: &[f32], scale: f64| v.iter().map(|&x| f64::from(x) * scale).collect();
    let maps: Vec<Map> = system
        .layers
        .iter()
        .flat_map(|l| {
            let mut maps = vec![Map {
                title: format!("{} phase", l.name),
                values: wide(&l.phase, 1.0),
                label: "phase (rad)",
                colormap: Colormap::Twilight,
                range: Some((0.0, TAU)),
            }];
            if let Some(h) = &l.height {
                maps.push(Map {
                    title: format!("{} height", l.name),
                    values: wide(h, 1e3),
                    label: "height (mm)",
                    colormap: Colormap::Viridis,
                    range: None,
                });
            } else if let Some(a) = &l.amplitude {
                maps.push(Map {
                    title: format!("{} amplitude", l.name),
                    values: wide(a, 1.0),
                    label: "amplitude",
                    colormap: Colormap::Gray,
                    range: Some((0.0, 1.0)),
                });
            }
            maps
        })
        .collect();
    let panels: Vec<ImagePlot> = maps
        .iter()
        .map(|m| ImagePlot {
            title: &m.title,
            colorbar_label: m.label,
            colormap: m.colormap,
            range: m.range,
            ..ImagePlot::new(&m.values, nx, ny, extent)
        })
        .collect();
    let columns = if maps.len() > system.layers.len() {
        2
    } else {
        3
    };
    write_image_grid_png(
        path,
        &panels,
        columns,
        PANEL.0,
        PANEL.1,
        &format!("{}: {} layers", system.name, system.layers.len()),
    )?;
    Ok(())
}

/// Detector-plane intensity of the first test sample of each class, with the detector regions
/// outlined and the true class's region(s) highlighted (a hybrid network's array is not drawn).
pub fn outputs(path: &Path, system: &OpticalSystem, test: &Dataset) -> anyhow::Result<()> {
    let optics = Optics::new(system, &Device::flex())?;
    let masks = optics.masks_of(system);
    let classes = &system.detector.classes;
    let samples: Vec<usize> = (0..classes.len())
        .filter_map(|c| (0..test.len()).find(|&i| usize::from(test.labels[i]) == c))
        .collect();
    anyhow::ensure!(!samples.is_empty(), "the test set is empty");
    let images: Vec<_> = samples.iter().map(|&i| test.image_ref(i)).collect();
    let planes = detector_planes(&optics, &masks, &images);
    let extent = optics.grid.edges();
    let values: Vec<Vec<f64>> = planes
        .iter()
        .map(|p| p.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let titles: Vec<String> = samples
        .iter()
        .map(|&i| format!("class {}", classes[usize::from(test.labels[i])]))
        .collect();
    let rects: Vec<Vec<Rect>> = samples
        .iter()
        .map(|&i| {
            let truth = &classes[usize::from(test.labels[i])];
            system
                .detector
                .regions
                .iter()
                // behind an electronic layer the regions are a camera's pixels, not classes:
                // outlining them would hide the light
                .filter(|_| system.detector.head.is_none())
                .map(|r| {
                    let (hw, hh) = (r.width_m / 2.0, r.height_m / 2.0);
                    let class = r.label.trim_end_matches(['+', '-']);
                    Rect {
                        label: Some(r.label.clone()),
                        highlight: class == truth,
                        ..Rect::new(r.x_m - hw, r.x_m + hw, r.y_m - hh, r.y_m + hh)
                    }
                })
                .collect()
        })
        .collect();
    let panels: Vec<ImagePlot> = values
        .iter()
        .zip(&titles)
        .zip(&rects)
        .map(|((v, title), rects)| ImagePlot {
            title,
            colorbar_label: "intensity (a.u.)",
            colormap: Colormap::Inferno,
            rects,
            ..ImagePlot::new(v, optics.grid.nx, optics.grid.ny, extent)
        })
        .collect();
    per_class(
        path,
        &panels,
        if system.detector.head.is_some() {
            "detector plane, one test sample per class (read by the electronic layer)"
        } else {
            "detector plane, one test sample per class (true class highlighted)"
        },
    )
}

/// A figure of one panel per class, five to a row.
fn per_class(path: &Path, panels: &[ImagePlot], title: &str) -> anyhow::Result<()> {
    write_image_grid_png(path, panels, 5.min(panels.len()), PANEL.0, PANEL.1, title)?;
    Ok(())
}

/// The weights of a hybrid network's electronic layer, one panel per class: every detector
/// region filled with the weight its energy carries in that class's score (blue negative, red
/// positive; grey where no region lies). Nothing is written for an all-optical network.
pub fn head(path: &Path, system: &OpticalSystem) -> anyhow::Result<()> {
    let Some(head) = &system.detector.head else {
        return Ok(());
    };
    let detector = system.detector()?;
    let (n, r) = (system.nx * system.ny, detector.len());
    // the region each pixel belongs to most (regions of a layout do not overlap)
    let mut owner = vec![None; n];
    let mut cover = vec![0f32; n];
    for (k, w) in detector.weights().chunks_exact(n).enumerate() {
        for (i, &w) in w.iter().enumerate() {
            if w > cover[i] {
                (owner[i], cover[i]) = (Some(k), w);
            }
        }
    }
    let top = head
        .weights
        .iter()
        .fold(0f64, |m, w| m.max(w.abs()))
        .max(1e-12);
    let maps: Vec<Vec<f64>> = head
        .weights
        .chunks_exact(r)
        .map(|row| {
            owner
                .iter()
                .map(|o| o.map_or(f64::NAN, |k| row[k]))
                .collect()
        })
        .collect();
    let titles: Vec<String> = system
        .detector
        .classes
        .iter()
        .map(|c| format!("class {c}"))
        .collect();
    let extent = system.grid()?.edges();
    let panels: Vec<ImagePlot> = maps
        .iter()
        .zip(&titles)
        .map(|(v, title)| ImagePlot {
            title,
            colorbar_label: "weight",
            colormap: Colormap::Diverging,
            range: Some((-top, top)),
            ..ImagePlot::new(v, system.nx, system.ny, extent)
        })
        .collect();
    per_class(
        path,
        &panels,
        &format!(
            "electronic layer: the weight of each of the {r} detector regions in every class's \
             score"
        ),
    )
}

/// The confusion matrix of an evaluation.
pub fn confusion(path: &Path, e: &Evaluation) -> anyhow::Result<()> {
    let side = (200 + 60 * e.classes.len()).clamp(480, 1400) as u32;
    write_confusion_png(
        path,
        &e.confusion_matrix,
        &e.classes,
        &format!("{} test samples", e.samples),
        side,
        side,
    )?;
    Ok(())
}

/// Loss and accuracy per epoch.
pub fn curves(path: &Path, history: &[EpochMetrics]) -> anyhow::Result<()> {
    let col = |f: fn(&EpochMetrics) -> f64| history.iter().map(f).collect::<Vec<f64>>();
    write_training_png(
        path,
        &col(|m| m.epoch as f64),
        &col(|m| m.loss),
        &col(|m| m.train_accuracy),
        &col(|m| m.test_accuracy),
        1000,
        400,
    )?;
    Ok(())
}
