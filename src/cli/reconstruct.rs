//! `photonflow reconstruct`: a thin object's phase (and amplitude) from its in-line holograms,
//! recorded or simulated from a phase image, with PSNR/SSIM against the truth when known.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex;
use photonflow_d2nn::error::D2nnError;
use photonflow_d2nn::untrained::{self, NetworkOptions};
use photonflow_optics::inline::{
    Focus, Inline, ObjectModel, ReconstructOptions, Reconstruction, Solver, phase_quality,
};
use photonflow_optics::io::tiff::{read_stack, write_stack};
use photonflow_optics::rng::Rng;
use photonflow_optics::units::format_length;
use photonflow_optics::{Grid, OpticsError, Wave};
use serde_json::json;

use super::microscope::{is_tiff, read_phase, read_plane};
use super::psf::stack_of;
use super::{length, positive_length, progress_bar};
use crate::plot::{Colormap, ImagePlot, LinePlot, Series, write_image_grid_png, write_line_png};

/// Arguments of `photonflow reconstruct`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The holograms: one TIFF stack with a plane for each --distance, or one image (TIFF,
    /// PNG, JPEG, .npy) for each. Not with --simulate.
    #[arg(value_name = "HOLOGRAM")]
    holograms: Vec<PathBuf>,
    /// Vacuum wavelength of the light, e.g. 532nm.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    wavelength: f64,
    /// The camera's pixel pitch, e.g. 2um (1.12um for a typical CMOS board camera).
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    pitch: f64,
    /// Object-to-camera distance of each hologram, e.g. 5mm or 5mm,5.5mm,6mm. With
    /// --autofocus: their spacing (the first is moved to the focus found); may be left out
    /// for one hologram.
    #[arg(long, value_parser = length, value_delimiter = ',',
          required_unless_present = "autofocus", value_name = "LENGTH,…")]
    distance: Vec<f64>,
    /// Find the (first) hologram's distance within MIN:MAX, e.g. 0.5mm:2mm: the sharpest
    /// back-propagation of the holograms, spaced as --distance spaces them (Tamura
    /// coefficient of the gradient), refined by golden section.
    #[arg(long, value_name = "MIN:MAX")]
    autofocus: Option<String>,
    /// Trial distances of --autofocus's even scan, finer than the focus's peak.
    #[arg(long, default_value_t = 41, value_name = "N", requires = "autofocus")]
    autofocus_steps: usize,
    /// A PNG of --autofocus's focus curve.
    #[arg(long, value_name = "OUT.png", requires = "autofocus")]
    focus_png: Option<PathBuf>,
    /// A flat field (the camera without the object): each hologram is divided by it. Default:
    /// each hologram divided by its mean, and its brightness fitted with the object.
    #[arg(long, value_name = "FILE")]
    flat: Option<PathBuf>,
    /// What is known of the object: phase (transparent, |t| = 1) or absorbing (amplitude and
    /// phase; give several distances).
    #[arg(long, default_value = "phase", value_name = "MODEL")]
    object: String,
    /// lbfgs (the misfit and --tv minimised with exact gradients), gs (alternating
    /// projections, Gerchberg–Saxton) or network (an untrained U-Net as the prior,
    /// PhysenNet; Adam on Burn's CPU backend).
    #[arg(long, default_value = "lbfgs", value_name = "SOLVER")]
    solver: String,
    /// Iterations.
    #[arg(long, default_value_t = 200, value_name = "N")]
    iterations: usize,
    /// Weight of the total-variation prior (lbfgs; 0: none; 1e-4 against shot noise).
    #[arg(long, default_value_t = 0.0, value_name = "WEIGHT")]
    tv: f64,
    /// Fit the distances' common offset within this range, e.g. 0.5mm (lbfgs).
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    fit_distance: Option<f64>,
    /// Pixels of object beyond the camera on each side (light from there reaches it).
    /// Default: an eighth of the camera's side.
    #[arg(long, value_name = "PX")]
    margin: Option<usize>,
    /// Simulate the holograms from this phase image of the object (a TIFF in radians, or
    /// any image with --phase-range) instead of reading them; it is then the truth.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["holograms", "flat"])]
    simulate: Option<PathBuf>,
    /// The true phase, to report PSNR, SSIM and RMS error (a TIFF in radians, or any image
    /// with --phase-range).
    #[arg(long, value_name = "FILE", conflicts_with = "simulate")]
    truth: Option<PathBuf>,
    /// Map a --simulate or --truth image's values linearly onto 0…RAD radians.
    #[arg(long, value_name = "RAD")]
    phase_range: Option<f64>,
    /// Shot noise of the simulated holograms: photons a pixel at the illumination's
    /// intensity (default: none).
    #[arg(long, value_name = "N", requires = "simulate")]
    photons: Option<f64>,
    /// Seed of the simulated shot noise and of the network's random weights.
    #[arg(long, default_value_t = 1, value_name = "SEED")]
    seed: u64,
    /// Adam's learning rate (--solver network).
    #[arg(long, default_value_t = 1e-3, value_name = "RATE")]
    learning_rate: f64,
    /// Features at each level of the U-Net (--solver network; its depth is their count).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "16,32,64,128",
        value_name = "N,…"
    )]
    channels: Vec<usize>,
    /// Also write the simulated holograms (float32 TIFF, one plane a distance).
    #[arg(long, value_name = "FILE.tif", requires = "simulate")]
    save_holograms: Option<PathBuf>,
    /// The reconstruction: float32 TIFF, the phase in radians (and, for an absorbing object,
    /// a second plane with the amplitude).
    #[arg(long, value_name = "PHASE.tif")]
    out: PathBuf,
    /// Also a PNG of the first hologram and the phase (and the amplitude, and the truth).
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow reconstruct`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let model: ObjectModel = args
        .object
        .parse()
        .map_err(|e| anyhow::anyhow!("--object: {e}"))?;
    let method = Method::parse(&args.solver)?;
    if method == Method::Network {
        if model == ObjectModel::Absorbing {
            bail!("--object absorbing: the network draws a phase; use --solver lbfgs");
        }
        if args.fit_distance.is_some() {
            bail!("--fit-distance needs --solver lbfgs");
        }
        if args.tv > 0.0 {
            bail!("--tv is lbfgs's prior; the network is its own (drop --tv)");
        }
    }
    if let Some(r) = args.phase_range
        && !(r.is_finite() && r > 0.0)
    {
        bail!("--phase-range {r}: give a positive number of radians, e.g. 3.14");
    }
    if let Some(p) = args.photons
        && !(p.is_finite() && p > 0.0)
    {
        bail!("--photons {p}: give a positive mean count, e.g. 1000");
    }
    let autofocus = args
        .autofocus
        .as_deref()
        .map(|text| {
            let (lo, hi) = text.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("--autofocus {text}: give MIN:MAX, e.g. 0.5mm:2mm")
            })?;
            let l =
                |v: &str| length(v.trim()).map_err(|e| anyhow::anyhow!("--autofocus {text}: {e}"));
            Focus::check_range((l(lo)?, l(hi)?))
                .map_err(|e| anyhow::anyhow!("--autofocus {text}: {}", e.into_problem()))
        })
        .transpose()?;
    if args.simulate.is_some() && args.distance.is_empty() {
        bail!("--simulate needs --distance: the distance the holograms are simulated at");
    }
    // with --autofocus and no --distance: one hologram, first planned mid-range
    let distances = match autofocus {
        Some((lo, hi)) if args.distance.is_empty() => vec![0.5 * (lo + hi)],
        _ => args.distance.clone(),
    };
    let planes = distances.len();
    let wave = Wave::vacuum(args.wavelength).map_err(|e| anyhow::anyhow!("--wavelength: {e}"))?;
    let (truth, (ny, nx), holograms) = match &args.simulate {
        Some(path) => {
            let (ny, nx, phase) = read_phase(path, "--simulate", args.phase_range)?;
            (Some(phase), (ny, nx), None)
        }
        None => {
            let (shape, data) = read_holograms(&args.holograms, planes)?;
            let truth = args
                .truth
                .as_deref()
                .map(|p| read_phase(p, "--truth", args.phase_range))
                .transpose()?;
            if let Some((ty, tx, _)) = &truth
                && (*ty, *tx) != shape
            {
                bail!(
                    "--truth is {tx}×{ty} pixels and the holograms {}×{}: give images of one \
                     size",
                    shape.1,
                    shape.0
                );
            }
            (truth.map(|t| t.2), shape, Some(data))
        }
    };
    if nx.max(ny) > 4096 || nx.min(ny) < 8 {
        bail!("the holograms are {nx}×{ny} pixels: give 8 to 4096 per side");
    }
    let margin = args.margin.unwrap_or(nx.max(ny) / 8);
    let camera = Grid::new(nx, ny, args.pitch, args.pitch)?;
    let mut inline = Inline::new(camera, wave, &distances, (margin, margin)).map_err(|e| {
        let flag = match &e {
            OpticsError::InvalidParameter { name: "margin", .. } => "--margin",
            _ => "--distance",
        };
        anyhow::anyhow!("{flag}: {}", e.into_problem())
    })?;
    let intensity = match holograms {
        Some(mut data) => {
            normalise(&mut data, args.flat.as_deref(), (ny, nx))?;
            data
        }
        None => {
            let phase = truth.as_ref().expect("simulated from a phase");
            simulate(&inline, phase, args.photons, args.seed)?
        }
    };
    if let Some(path) = &args.save_holograms {
        let stack = stack_of(&intensity, [planes, ny, nx], args.pitch, 0.0, false)?;
        write_stack(path, &stack)
            .with_context(|| format!("--save-holograms {}", path.display()))?;
    }
    let focus = autofocus
        .map(|range| find_focus(&mut inline, &intensity, range, &args))
        .transpose()?;
    let bar = progress_bar(
        args.json,
        args.iterations as u64,
        "reconstructing {bar:30} {pos}/{len} iterations {eta}",
    );
    let start = Instant::now();
    let result = match method {
        Method::Network => {
            if args.flat.is_none() && args.simulate.is_none() && !args.json {
                eprintln!(
                    "warning: the network fits no gain: each hologram's mean stands for the \
                 illumination; give --flat FILE when you have one"
                );
            }
            let net = NetworkOptions {
                iterations: args.iterations,
                learning_rate: args.learning_rate,
                channels: args.channels.clone(),
                seed: args.seed,
            };
            let found = untrained::reconstruct(&inline, &intensity, &net, |done, _| {
                bar.set_position(done as u64)
            })
            .map_err(|e| match e {
                D2nnError::Optics(e) => flag_error(e),
                e => e.into(),
            })?;
            let mut history = found.history;
            history.push(found.misfit);
            Reconstruction {
                amplitude: vec![1.0; found.phase.len()],
                phase: found.phase,
                distances: inline.distances().to_vec(),
                misfit: found.misfit,
                history,
                shifts: Vec::new(),
            }
        }
        Method::Optics(solver) => {
            let options = ReconstructOptions {
                model,
                solver,
                iterations: args.iterations,
                tv: args.tv,
                fit_distance: args.fit_distance,
                // Divided by their mean, the holograms' brightness is known only roughly.
                fit_gain: args.flat.is_none() && args.simulate.is_none(),
            };
            inline
                .reconstruct(&intensity, &options, |done, _| {
                    bar.set_position(done as u64)
                })
                .map_err(flag_error)?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut out = result.phase.clone();
    if model == ObjectModel::Absorbing {
        out.extend(&result.amplitude);
    }
    let layers = out.len() / (nx * ny);
    let stack = stack_of(&out, [layers, ny, nx], args.pitch, 0.0, false)?;
    write_stack(&args.out, &stack).with_context(|| format!("--out {}", args.out.display()))?;
    let quality = truth
        .as_ref()
        .map(|t| phase_quality(&result.phase, t, ny, nx))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--truth: {}", e.into_problem()))?;
    if let Some(png) = &args.png {
        write_png(
            png,
            &intensity,
            &result,
            truth.as_deref(),
            model,
            [ny, nx],
            args.pitch,
        )?;
    }
    let report = json!({
        "out": args.out.display().to_string(),
        "shape": [ny, nx],
        "pitch_m": args.pitch,
        "wavelength_m": args.wavelength,
        "object": model.name(),
        "solver": method.name(),
        "margin": margin,
        "tv": args.tv,
        "distances_m": inline.distances(),
        "autofocus": focus.as_ref().map(|(f, seconds)| json!({
            "distance_m": f.distance,
            "metric": f.metric,
            "steps": f.scan.len(),
            "scan": f.scan,
            "seconds": seconds,
        })),
        "fitted_distances_m": args.fit_distance.map(|_| result.distances.clone()),
        "misfit_start": result.history[0],
        "misfit": result.misfit,
        "iterations": result.history.len() - 1,
        "psnr_db": quality.map(|q| q.psnr),
        "ssim": quality.map(|q| q.ssim),
        "rms_rad": quality.map(|q| q.rms),
        "seconds": seconds,
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{nx}×{ny} camera, {planes} hologram(s) at {}; {} object by {} in {} iterations, {seconds:.2} s",
        inline
            .distances()
            .iter()
            .map(|z| format_length(*z))
            .collect::<Vec<_>>()
            .join(", "),
        model.name(),
        method.name(),
        result.history.len() - 1
    );
    println!(
        "  misfit {:.3e} (propagated back: {:.3e}); written to {}",
        result.misfit,
        result.history[0],
        args.out.display()
    );
    if let Some((f, seconds)) = &focus {
        println!(
            "  autofocus: {} (Tamura coefficient of the gradient {:.4}, {} trials, {seconds:.2} s)",
            format_length(f.distance),
            f.metric,
            f.scan.len()
        );
    }
    if args.fit_distance.is_some() {
        println!(
            "  fitted distances: {}",
            result
                .distances
                .iter()
                .map(|z| format_length(*z))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(q) = quality {
        println!(
            "  against the truth: PSNR {:.2} dB, SSIM {:.4}, RMS {:.4} rad",
            q.psnr, q.ssim, q.rms
        );
    }
    Ok(())
}

/// How the object is found: a solver of the optics crate, or the untrained network (which
/// lives with Burn, in the d2nn crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Optics(Solver),
    Network,
}

impl Method {
    fn parse(text: &str) -> anyhow::Result<Self> {
        if text == "network" {
            return Ok(Method::Network);
        }
        let solver = text.parse().map_err(|e: String| {
            anyhow::anyhow!(
                "--solver: {}",
                e.replace("lbfgs or gs", "lbfgs, gs or network")
            )
        })?;
        Ok(Method::Optics(solver))
    }

    fn name(self) -> &'static str {
        match self {
            Method::Optics(solver) => solver.name(),
            Method::Network => "network",
        }
    }
}

/// A reconstruction's refusal, with the flag that set the refused parameter.
fn flag_error(e: OpticsError) -> anyhow::Error {
    let flag = match &e {
        OpticsError::InvalidParameter { name, .. } => match *name {
            "iterations" => "--iterations",
            "tv" => "--tv",
            "distance range" => "--fit-distance",
            "autofocus range" => "--autofocus",
            "autofocus steps" => "--autofocus-steps",
            "hologram" => "HOLOGRAM",
            "learning rate" => "--learning-rate",
            "channels" => "--channels",
            _ => "--distance",
        },
        OpticsError::Memory { .. } => "--margin",
        _ => "--distance",
    };
    anyhow::anyhow!("{flag}: {}", e.into_problem())
}

/// Finds the first hologram's distance in `range` from all the holograms and moves every
/// distance by the same shift (their spacing is the stage's); the focus and its time.
fn find_focus(
    inline: &mut Inline,
    intensity: &[f64],
    range: (f64, f64),
    args: &Args,
) -> anyhow::Result<(Focus, f64)> {
    let bar = progress_bar(
        args.json,
        args.autofocus_steps as u64,
        "autofocus {bar:30} {pos}/{len} distances {eta}",
    );
    let start = Instant::now();
    let found = inline
        .autofocus(intensity, range, args.autofocus_steps, &|done, _| {
            bar.set_position(done as u64)
        })
        .map_err(flag_error)?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let shift = found.distance - inline.distances()[0];
    let moved: Vec<f64> = inline.distances().iter().map(|z| z + shift).collect();
    inline.set_distances(&moved).map_err(|e| {
        anyhow::anyhow!(
            "--autofocus: the focus {} moves --distance onto 0 or beyond: {}",
            format_length(found.distance),
            e.into_problem()
        )
    })?;
    if let Some(path) = &args.focus_png {
        let points: Vec<(f64, f64)> = found.scan.iter().map(|(z, m)| (z * 1e3, *m)).collect();
        let low = points.iter().map(|p| p.1).fold(found.metric, f64::min);
        let peak = [
            (found.distance * 1e3, low),
            (found.distance * 1e3, found.metric),
        ];
        let plot = LinePlot {
            title: "autofocus",
            x_label: "back-propagation distance (mm)",
            y_label: "Tamura coefficient of the gradient",
            series: vec![
                Series {
                    name: "scan",
                    points: &points,
                },
                Series {
                    name: "focus",
                    points: &peak,
                },
            ],
            log_y: false,
        };
        write_line_png(path, &plot, 640, 420)
            .with_context(|| format!("--focus-png {}", path.display()))?;
    }
    Ok((found, seconds))
}

/// The holograms' shape and values, `[plane, ny, nx]`: one stack of `planes` planes, or one
/// file a plane.
fn read_holograms(paths: &[PathBuf], planes: usize) -> anyhow::Result<((usize, usize), Vec<f64>)> {
    if paths.is_empty() {
        bail!("give the holograms (HOLOGRAM …), or --simulate PHASE to make them");
    }
    let mut shape = None;
    let mut data = Vec::new();
    let mut read = 0;
    for path in paths {
        let (ny, nx, n, values) = if paths.len() == 1 && is_tiff(path) {
            let s = read_stack(path).with_context(|| format!("HOLOGRAM {}", path.display()))?;
            let [nz, ny, nx] = s.shape;
            (ny, nx, nz, s.data.iter().map(|&v| f64::from(v)).collect())
        } else {
            let (ny, nx, v) = read_plane(path, "HOLOGRAM", false)?;
            (ny, nx, 1, v)
        };
        if *shape.get_or_insert((ny, nx)) != (ny, nx) {
            bail!(
                "HOLOGRAM {}: {nx}×{ny} pixels, unlike the first; give holograms of one size",
                path.display()
            );
        }
        read += n;
        data.extend(values);
    }
    if read != planes {
        bail!(
            "{read} hologram plane(s) for {planes} --distance value(s): give one distance a \
             hologram"
        );
    }
    Ok((shape.expect("at least one file"), data))
}

/// Each hologram divided by the flat field, or by its mean.
fn normalise(
    data: &mut [f64],
    flat: Option<&Path>,
    (ny, nx): (usize, usize),
) -> anyhow::Result<()> {
    let flat = flat
        .map(|p| -> anyhow::Result<Vec<f64>> {
            let (fy, fx, v) = read_plane(p, "--flat", false)?;
            if (fy, fx) != (ny, nx) {
                bail!(
                    "--flat {}: {fx}×{fy} pixels, the holograms {nx}×{ny}",
                    p.display()
                );
            }
            if v.iter().any(|x| x.is_nan() || *x <= 0.0) {
                bail!(
                    "--flat {}: has dark pixels (0 or less); a flat field is lit everywhere",
                    p.display()
                );
            }
            Ok(v)
        })
        .transpose()?;
    for (k, plane) in data.chunks_mut(nx * ny).enumerate() {
        match &flat {
            Some(f) => plane.iter_mut().zip(f).for_each(|(v, f)| *v /= f),
            None => {
                let mean = plane.iter().sum::<f64>() / plane.len() as f64;
                if mean.is_nan() || mean <= 0.0 {
                    bail!(
                        "HOLOGRAM plane {}: dark (mean {mean}); no light reached the camera",
                        k + 1
                    );
                }
                plane.iter_mut().for_each(|v| *v /= mean);
            }
        }
    }
    Ok(())
}

/// The holograms of the phase object `phase` (over the camera; clear glass in the margin),
/// with shot noise of `photons` a pixel at unit intensity.
fn simulate(
    inline: &Inline,
    phase: &[f64],
    photons: Option<f64>,
    seed: u64,
) -> anyhow::Result<Vec<f64>> {
    let grid = inline.grid();
    let mut object = vec![Complex::new(1.0, 0.0); grid.nx * grid.ny];
    for (i, &p) in inline.window().zip(phase) {
        object[i] = Complex::from_polar(1.0, p);
    }
    let mut holograms = inline.hologram(&object)?;
    if let Some(n) = photons {
        let mut rng = Rng::new(seed);
        for v in &mut holograms {
            *v = rng.poisson(*v * n) as f64 / n;
        }
    }
    Ok(holograms)
}

/// The first hologram and the phase (the amplitude, the truth).
fn write_png(
    path: &Path,
    intensity: &[f64],
    result: &Reconstruction,
    truth: Option<&[f64]>,
    model: ObjectModel,
    [ny, nx]: [usize; 2],
    pitch: f64,
) -> anyhow::Result<()> {
    let flip = |v: &[f64]| -> Vec<f64> { v.chunks(nx).rev().flatten().copied().collect() };
    let extent = [0.0, nx as f64 * pitch, 0.0, ny as f64 * pitch];
    let hologram = flip(&intensity[..nx * ny]);
    let phase = flip(&result.phase);
    let amplitude = flip(&result.amplitude);
    let truth = truth.map(flip);
    let mut panels = vec![
        ImagePlot {
            title: "hologram (first)",
            colorbar_label: "intensity",
            colormap: Colormap::Gray,
            ..ImagePlot::new(&hologram, nx, ny, extent)
        },
        ImagePlot {
            title: "reconstructed phase",
            colorbar_label: "phase (rad)",
            colormap: Colormap::Viridis,
            ..ImagePlot::new(&phase, nx, ny, extent)
        },
    ];
    if model == ObjectModel::Absorbing {
        panels.push(ImagePlot {
            title: "reconstructed amplitude",
            colorbar_label: "amplitude",
            colormap: Colormap::Gray,
            ..ImagePlot::new(&amplitude, nx, ny, extent)
        });
    }
    if let Some(t) = &truth {
        panels.push(ImagePlot {
            title: "true phase",
            colorbar_label: "phase (rad)",
            colormap: Colormap::Viridis,
            ..ImagePlot::new(t, nx, ny, extent)
        });
    }
    let columns = panels.len().min(3);
    write_image_grid_png(
        path,
        &panels,
        columns,
        420,
        380,
        "in-line hologram reconstruction",
    )?;
    Ok(())
}
