//! Identifying a bench: where its layers really sit, measured through its camera.
//!
//! A network that works in simulation and not on the bench has, most often, a layer off its
//! place: a pixel sideways, or a millimetre along the axis (`photonflow eval --misalign` shows
//! what that costs). The camera sees the consequence, not the cause, and the layers cannot be
//! imaged inside the stack. [`identify()`] finds the cause by fitting the bench's digital twin
//! to its frames, camera-in-the-loop: it displays probe patterns, and then moves the twin's
//! layers — a lateral offset `(dx, dy)` and an axial offset `dz` for each — until the light the
//! twin predicts on the camera (through the camera's calibration) matches the frames, with one
//! gain and offset for the unknown photon budget and stray light.
//!
//! The light is not a smooth function of where a layer sits beyond about a pixel (the masks
//! vary from pixel to pixel), so the fit runs in two stages:
//!
//! 1. **coarse**: every whole-pixel offset of each layer within `±search_px`, its axial offsets
//!    within `±axial_range_m` in steps of `pitch²/λ` (where the phase of the grid's finest
//!    detail changes by about π/4), and runs of layers moved together are tried from where
//!    the layers are best so far, and, when none of those gains, neighbouring pairs moved by a
//!    pixel each; each sweep takes the best move, until none gains (at most [`max_sweeps`]);
//! 2. **fine**: Levenberg–Marquardt over every offset at once, lateral ones continuous (a
//!    fraction of a pixel is box-sampled, [`photonflow_optics::shift`]), from the coarse
//!    stage's best.
//!
//! The result reports each layer's offset with a standard error (from the fit's curvature and
//! the residual; it assumes the residual is independent noise, so it is a lower bound where the
//! twin lacks something the bench has, such as the layers' fabrication errors), the residual
//! with the layers as designed and as found, and can be written as a rig file whose
//! `layers.offsets` reproduce the bench in `photonflow eval --rig sim`.

use photonflow_optics::Planner;
use photonflow_optics::system::OpticalSystem;
use serde::Serialize;

use crate::config::{Layers, RigConfig};
use crate::error::{Result, invalid};
use crate::fit::{Measured, inverse_diagonal, levenberg_marquardt, mean_frames};
use crate::geometry::{Affine, camera_map};
use crate::rig::Rig;
use crate::sim::{Placement, SimRig};

/// The most sweeps of the coarse stage for `layers` layers: enough for a lateral and an axial
/// move of every layer, and a few more.
pub fn max_sweeps(layers: usize) -> usize {
    2 * layers + 4
}

/// How far [`identify()`] looks.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifyOptions {
    /// The coarse stage's whole-pixel search radius for each layer's lateral offset.
    pub search_px: u32,
    /// The coarse stage's range of axial offsets, ± metres (0: none).
    pub axial_range_m: f64,
    /// Whether to fit the axial offsets too (otherwise they stay 0).
    pub axial: bool,
    /// Iterations of the fine stage.
    pub iterations: usize,
    /// Where the search starts: one placement per mounted layer (as an earlier identification
    /// found them), or none for every layer as designed.
    pub start: Vec<Placement>,
}

impl Default for IdentifyOptions {
    fn default() -> Self {
        Self {
            search_px: 2,
            axial_range_m: 0.0,
            axial: true,
            iterations: 30,
            start: Vec::new(),
        }
    }
}

/// Where [`identify()`] is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// `"frames"`, `"coarse"` or `"fine"`.
    pub stage: &'static str,
    /// Twin evaluations made so far in this stage.
    pub done: usize,
    /// The most this stage will make.
    pub total: usize,
    /// The best relative residual so far.
    pub residual: f64,
}

/// One layer as identified.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayerFit {
    /// Where it sits.
    pub placement: Placement,
    /// Standard errors of the placement's three numbers (pixels, pixels, metres).
    pub error: Placement,
}

/// What [`identify()`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identification {
    /// Each mounted layer, in the order light meets them.
    pub layers: Vec<LayerFit>,
    /// The root mean square difference between the frames and the twin with every layer as
    /// designed (with its best gain and offset), relative to the frames' root mean square.
    pub residual_design: f64,
    /// The same with the layers where they were found.
    pub residual: f64,
    /// The fitted gain: camera ADU per unit of the model's `|u|²` per plane pixel.
    pub gain: f64,
    /// The fitted offset, ADU (light the twin does not have, and black level left over).
    pub offset: f64,
    /// Probe patterns displayed.
    pub probes: usize,
    /// Camera pixel values fitted (unsaturated ones).
    pub pixels: usize,
    /// Twin evaluations made.
    pub evaluations: usize,
}

impl Identification {
    /// The placements found, one per layer.
    pub fn placements(&self) -> Vec<Placement> {
        self.layers.iter().map(|l| l.placement).collect()
    }

    /// `base` with the mounted layers where they were found on a grid of `pitch` metres and
    /// the others as designed (`layers.offsets`, one for each of the system's `layers`),
    /// without random offsets or fabrication errors (identification does not see those), and
    /// with `base`'s transmittance and mounted layers: a rig file for the bench as identified.
    pub fn twin_config(&self, base: &RigConfig, pitch: f64, layers: usize) -> RigConfig {
        let mut offsets: Vec<_> = self
            .layers
            .iter()
            .map(|l| l.placement.offset(pitch))
            .collect();
        offsets.resize(
            layers.max(offsets.len()),
            Placement::default().offset(pitch),
        );
        RigConfig {
            layers: Layers {
                offsets,
                transmittance: base.layers.transmittance,
                mounted: base.layers.mounted,
                ..Layers::default()
            },
            ..base.clone()
        }
    }
}

/// Identifies where the layers of `system` sit on `rig`. See the [module docs](self).
///
/// * `twin`: what is known of the bench's SLM (`slm.bits`, its lookup table, crosstalk and
///   contrast) and how many layers are mounted (`layers.mounted`; those are identified); its
///   other layer and camera settings are not used.
/// * `camera`: the camera's calibration (plane metres → pixels); `None` when the camera's
///   pixels are the plane's.
/// * `displays`: the probe patterns (SLM levels), each shown for `frames` frames, which are
///   averaged with `black` (ADU) subtracted.
///
/// Errors: no probes, or no unsaturated light on the camera; a camera that needs a calibration;
/// a rig error.
#[allow(clippy::too_many_arguments)]
pub fn identify(
    rig: &mut dyn Rig,
    system: &OpticalSystem,
    twin: &RigConfig,
    camera: Option<&Affine>,
    displays: &[Vec<u16>],
    black: f64,
    frames: usize,
    options: &IdentifyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Identification> {
    system.validate()?;
    twin.validate()?;
    if displays.is_empty() {
        return Err(invalid("identification", "no probe patterns to display"));
    }
    let description = rig.describe()?;
    let (rows, cols) = (description.camera.rows, description.camera.cols);
    let grid = system.grid()?;
    let map = camera_map(camera, &grid, cols, rows, "identification")?;
    progress(Progress {
        stage: "frames",
        done: 0,
        total: displays.len(),
        residual: f64::NAN,
    });
    let captured = rig.run(displays, frames.max(1))?;
    let (means, keep) = mean_frames(&captured, black, description.camera.max_level());
    let frame = rows * cols;
    let values = keep.iter().map(|&k| means[k / frame][k % frame]).collect();
    let measured = Measured::new(values);
    if measured.len() == 0 || !measured.relative(0.0).is_finite() {
        return Err(invalid(
            "identification",
            "the camera saw no light below saturation (check the exposure and the black level)",
        ));
    }

    let layers = twin.layers.mounted.unwrap_or(system.layers.len());
    if !(1..=system.layers.len()).contains(&layers) {
        return Err(invalid(
            "layers.mounted",
            format!(
                "{layers} layers mounted; the system has {}",
                system.layers.len()
            ),
        ));
    }
    if !options.start.is_empty() && options.start.len() != layers {
        return Err(invalid(
            "identification",
            format!(
                "{} start placements for {layers} mounted layers",
                options.start.len()
            ),
        ));
    }
    let all_layers = system.layers.len();
    let axial = options.axial;
    let per_layer = if axial { 3 } else { 2 };
    // Axial offsets are fitted in units of ζ = pitch²/λ, so that every parameter moves the light
    // about as much per unit.
    let zeta = system.pitch_m.powi(2) / system.wavelength_m;
    // The mounted layers' placements from the parameters; the others as designed.
    let to_placements = |p: &[f64]| -> Vec<Placement> {
        let mut placements: Vec<Placement> = p
            .chunks_exact(per_layer)
            .map(|c| Placement {
                dx_px: c[0],
                dy_px: c[1],
                dz_m: if axial { c[2] * zeta } else { 0.0 },
            })
            .collect();
        placements.resize(all_layers, Placement::default());
        placements
    };
    let planner = Planner::new();
    let probes: Vec<&[u16]> = displays.iter().map(Vec::as_slice).collect();
    let mut evaluations = 0usize;
    let mut model = |p: &[f64]| -> Option<Vec<f64>> {
        evaluations += 1;
        let bench = SimRig::twin(system, twin, to_placements(p), &planner).ok()?;
        let light = bench.with_camera(map, cols, rows).expected(&probes).ok()?;
        Some(keep.iter().map(|&k| light[k / frame][k % frame]).collect())
    };
    let sse = |model: &mut dyn FnMut(&[f64]) -> Option<Vec<f64>>, p: &[f64]| {
        model(p).map_or(f64::INFINITY, |m| measured.linear(&m).sse)
    };

    // The design, then the coarse stage.
    let mut best: Vec<f64> = if options.start.is_empty() {
        vec![0.0; layers * per_layer]
    } else {
        options
            .start
            .iter()
            .flat_map(|p| {
                [p.dx_px, p.dy_px, p.dz_m / zeta]
                    .into_iter()
                    .take(per_layer)
            })
            .collect()
    };
    let design = vec![0.0; layers * per_layer];
    let residual_design = measured.relative(sse(&mut model, &design));
    let mut best_sse = sse(&mut model, &best);
    let axial_steps = if axial && options.axial_range_m > 0.0 {
        (options.axial_range_m / zeta).floor() as u32
    } else {
        0
    };
    // Each sweep tries every move from where the last one left, and takes the best (a move
    // taken at once could be a gain within the noise of one layer at the expense of another,
    // which a single misplaced layer elsewhere hides). The moves of pairs of layers, the most
    // numerous, are tried only in sweeps where the others gain nothing.
    let (single, pairs) = coarse_moves(layers, per_layer, options.search_px, axial_steps);
    let sweeps = max_sweeps(layers);
    let total = (single.len() + pairs.len()) * sweeps;
    let mut done = 0;
    'sweeps: for _sweep in 0..sweeps {
        for moves in [&single, &pairs] {
            let from = best.clone();
            let mut taken = false;
            for (k, m) in moves.iter().enumerate() {
                let mut trial = from.clone();
                for &(i, d) in m {
                    trial[i] += d;
                }
                let s = sse(&mut model, &trial);
                done += 1;
                if s < best_sse {
                    (best, best_sse, taken) = (trial, s, true);
                }
                if k % 16 == 15 {
                    progress(Progress {
                        stage: "coarse",
                        done,
                        total,
                        residual: measured.relative(best_sse),
                    });
                }
            }
            if taken {
                continue 'sweeps;
            }
        }
        break;
    }

    // The fine stage.
    let steps: Vec<f64> = (0..layers * per_layer).map(|_| 0.02).collect();
    let fine_total = (options.iterations + 1) * (2 * steps.len() + 8);
    let mut fine_done = 0;
    let fit = levenberg_marquardt(&measured, &best, &steps, options.iterations, |p| {
        let m = model(p)?;
        best_sse = best_sse.min(measured.linear(&m).sse);
        fine_done += 1;
        progress(Progress {
            stage: "fine",
            done: fine_done,
            total: fine_total,
            residual: measured.relative(best_sse),
        });
        Some(m)
    })
    .ok_or_else(|| invalid("identification", "the twin cannot be evaluated"))?;
    let n = fit.params.len() + 2;
    let dof = measured.len().saturating_sub(n).max(1) as f64;
    let variance = fit.linear.sse / dof;
    let errors: Vec<f64> = inverse_diagonal(&fit.jtj)
        .map(|d| d.iter().map(|v| (v.max(0.0) * variance).sqrt()).collect())
        .unwrap_or_else(|| vec![f64::NAN; n]);
    let layers = to_placements(&fit.params)
        .into_iter()
        .take(layers)
        .zip(errors.chunks_exact(per_layer))
        .map(|(placement, e)| LayerFit {
            placement,
            error: Placement {
                dx_px: e[0],
                dy_px: e[1],
                dz_m: if axial { e[2] * zeta } else { 0.0 },
            },
        })
        .collect();
    Ok(Identification {
        layers,
        residual_design,
        residual: measured.relative(fit.linear.sse),
        gain: fit.linear.gain,
        offset: fit.linear.offset,
        probes: displays.len(),
        pixels: measured.len(),
        evaluations,
    })
}

/// A change of the parameters: `(index, amount)` pairs.
type Move = Vec<(usize, f64)>;

/// The coarse stage's moves for `layers` layers of `per_layer` parameters (`dx`, `dy` in
/// pixels, then `dz` in units of ζ): first each layer's whole-pixel lateral moves within
/// `±search_px`, its axial moves of `±1 … ±axial_steps` ζ, and every run of two or more
/// neighbouring layers moved together by a pixel; second, each pair of neighbouring layers
/// moved by up to a pixel each, independently (the light depends on where layers sit relative to each
/// other, so moving one at a time can stall where moving several gains).
fn coarse_moves(
    layers: usize,
    per_layer: usize,
    search_px: u32,
    axial_steps: u32,
) -> (Vec<Move>, Vec<Move>) {
    let lateral = |r: i64| -> Vec<(f64, f64)> {
        (-r..=r)
            .flat_map(|y| (-r..=r).map(move |x| (x as f64, y as f64)))
            .filter(|&m| m != (0.0, 0.0))
            .collect()
    };
    let (mut moves, mut pairs): (Vec<Move>, Vec<Move>) = (Vec::new(), Vec::new());
    for l in 0..layers {
        let at = l * per_layer;
        for (x, y) in lateral(i64::from(search_px)) {
            moves.push(vec![(at, x), (at + 1, y)]);
        }
        if per_layer == 3 {
            let a = i64::from(axial_steps);
            moves.extend(
                (-a..=a)
                    .filter(|&k| k != 0)
                    .map(|k| vec![(at + 2, k as f64)]),
            );
        }
    }
    if search_px > 0 {
        for l in 1..layers {
            let (a, b) = ((l - 1) * per_layer, l * per_layer);
            for (x1, y1) in lateral(1) {
                // (Both moved alike is a run, among the first moves.)
                for (x2, y2) in lateral(1).into_iter().filter(|&m| m != (x1, y1)) {
                    pairs.push(vec![(a, x1), (a + 1, y1), (b, x2), (b + 1, y2)]);
                }
            }
        }
        for first in 0..layers {
            for last in first + 1..layers {
                for (x, y) in lateral(1) {
                    moves.push(
                        (first..=last)
                            .flat_map(|l| [(l * per_layer, x), (l * per_layer + 1, y)])
                            .collect(),
                    );
                }
            }
        }
    }
    (moves, pairs)
}
