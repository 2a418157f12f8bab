//! `photonflow psf`: a microscope's PSF from its pupil (`model`), and its pupil measured from
//! an image of a bead (`retrieve`).

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use photonflow_optics::io::tiff::{Spacing, Stack, read_stack, write_stack};
use photonflow_optics::io::write_atomic;
use photonflow_optics::pupil::model::polarisation_name;
use photonflow_optics::pupil::zernike::name;
use photonflow_optics::pupil::{
    Objective, Polarisation, PsfModel, Pupil, PupilFit, RetrieveOptions, Sample, fwhm, retrieve,
};
use photonflow_optics::units::format_length;
use photonflow_optics::{Grid, OpticsError};
use serde_json::json;

use super::{length, positive_length, progress_bar};
use crate::plot::{Axes, Colormap, ImagePlot, write_image_grid_png};

/// Arguments of `photonflow psf`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

/// The objective, as every `psf` command takes it.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct ObjectiveArgs {
    /// Vacuum wavelength of the detected light (the emission), e.g. 520nm.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    wavelength: Option<f64>,
    /// Numerical aperture of the objective.
    #[arg(long, value_name = "NA")]
    na: Option<f64>,
    /// Refractive index of the immersion medium (1 air, 1.333 water, 1.518 oil; default 1).
    #[arg(long, value_name = "N")]
    index: Option<f64>,
}

impl ObjectiveArgs {
    /// The objective from the flags, each missing one from `saved` (a retrieval's
    /// `objective`), the index defaulting to 1.
    pub(super) fn objective(&self, saved: Option<&serde_json::Value>) -> anyhow::Result<Objective> {
        let from = |key: &str| saved.and_then(|o| o[key].as_f64());
        let wavelength = self.wavelength.or(from("wavelength_m"));
        let na = self.na.or(from("na"));
        let index = self.index.or(from("index")).unwrap_or(1.0);
        let (Some(wavelength), Some(na)) = (wavelength, na) else {
            bail!("give the objective: --wavelength (e.g. 520nm) and --na (e.g. 1.4)");
        };
        Objective::new(wavelength, na, index)
            .map_err(|e| anyhow::anyhow!("--wavelength/--na/--index: {e}"))
    }
}

/// The PSF model, as `psf model` and `psf retrieve` take it.
#[derive(Debug, Clone, clap::Args)]
struct ModelArgs {
    /// The vectorial model of an aplanatic objective (Richards & Wolf): polarisation and the
    /// longitudinal field, which widen the spot at high NA. Unpolarised (an isotropic
    /// emitter) unless --polarisation says otherwise.
    #[arg(long)]
    vectorial: bool,
    /// The scalar model (the default), where --from's retrieval used the vectorial one.
    #[arg(long, conflicts_with = "vectorial")]
    scalar: bool,
    /// The vectorial model's polarisation: unpolarised (an isotropic emitter), x, y, d, a,
    /// rcp, lcp (or circular), linear:ANGLE, jones:EX,EY, radial, azimuthal, or
    /// dipole:THETA,PHI (a fixed emitter, degrees from the optical axis and from x).
    #[arg(long, requires = "vectorial", value_name = "POL",
          value_parser = |s: &str| s.parse::<Polarisation>())]
    polarisation: Option<Polarisation>,
    /// The sample's refractive index when it is not the immersion's (1.333 for water under
    /// an oil objective): the source lies --depth beneath the coverslip, and --z-step is the
    /// stage's movement.
    #[arg(long, requires = "depth", value_name = "N")]
    sample_index: Option<f64>,
    /// The source's depth beneath the coverslip, in the sample of --sample-index, e.g. 10um.
    #[arg(long, requires = "sample_index", value_parser = length, value_name = "LENGTH")]
    depth: Option<f64>,
}

impl ModelArgs {
    /// The model from the flags; with none of them, `saved` (a retrieval's `model`), else
    /// the scalar one. Checked: a bad value names its flag.
    fn model(&self, saved: Option<&serde_json::Value>) -> anyhow::Result<PsfModel> {
        let given = self.vectorial || self.scalar || self.sample_index.is_some();
        if let Some(m) = saved.filter(|m| !given && m.is_object()) {
            return model_of_json(m).context("the model saved in the --from file");
        }
        let model = PsfModel {
            vectorial: self
                .vectorial
                .then(|| self.polarisation.unwrap_or(Polarisation::Unpolarised)),
            sample: self
                .sample_index
                .zip(self.depth)
                .map(|(index, depth)| Sample { index, depth }),
        };
        model.validate().map_err(|e| {
            let flag = match &e {
                OpticsError::InvalidParameter { name: "depth", .. } => "--depth",
                OpticsError::InvalidParameter {
                    name: "sample index",
                    ..
                } => "--sample-index",
                _ => "--polarisation",
            };
            anyhow::anyhow!("{flag}: {}", e.into_problem())
        })?;
        Ok(model)
    }
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Write the PSF of an objective (ideal, or with Zernike aberrations) as a float32 TIFF
    /// stack, with its lateral and axial widths.
    Model {
        #[command(flatten)]
        objective: ObjectiveArgs,
        /// Pixel pitch in sample space (camera pixel / magnification), e.g. 100nm.
        #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
        pitch: f64,
        /// Pixels per side.
        #[arg(long, default_value_t = 64, value_name = "N")]
        size: usize,
        /// Planes through focus (centred on it); 1 gives the in-focus image.
        #[arg(long, default_value_t = 1, value_name = "N")]
        planes: usize,
        /// Distance between planes, e.g. 200nm (needed with --planes > 1).
        #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
        z_step: Option<f64>,
        /// Aberrations as Noll index = radians RMS, e.g. 11=0.5,5=-0.2 (11: primary
        /// spherical, 5 and 6: astigmatism, 7 and 8: coma); added to those of --from.
        #[arg(long, value_name = "J=RAD,…", value_delimiter = ',')]
        zernike: Vec<String>,
        /// A pupil measured by `psf retrieve --out`: its objective (unless given) and fitted
        /// Zernike terms, for a PSF at any sampling.
        #[arg(long, value_name = "PUPIL.json")]
        from: Option<PathBuf>,
        #[command(flatten)]
        model: ModelArgs,
        /// The TIFF stack to write (normalised: each plane sums to 1).
        #[arg(long, value_name = "PSF.tif")]
        out: PathBuf,
        /// Also a PNG of the in-focus plane and the x–z section.
        #[arg(long, value_name = "OUT.png")]
        png: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Measure the objective's pupil (its aberrations, Strehl ratio) from a z-stack of one
    /// sub-resolution bead, by phase retrieval (Hanser et al. 2004).
    Retrieve {
        /// The bead's z-stack (TIFF; one channel).
        stack: PathBuf,
        #[command(flatten)]
        objective: ObjectiveArgs,
        /// The forward model (--vectorial for very high NA; --sample-index and --depth for a
        /// bead in a sample unlike the immersion); the pupil retrieved is what it leaves.
        #[command(flatten)]
        model: ModelArgs,
        /// Pixel pitch in sample space; default: the file's calibration.
        #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
        pitch: Option<f64>,
        /// Distance between planes; default: the file's calibration.
        #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
        z_step: Option<f64>,
        /// Background level (camera offset) in the stack's units; default: the median of its
        /// outer frame.
        #[arg(long, value_name = "COUNTS", allow_negative_numbers = true)]
        background: Option<f64>,
        /// Most iterations.
        #[arg(long, default_value_t = 100, value_name = "N")]
        iterations: usize,
        /// Fit Zernike terms up to this Noll index.
        #[arg(long, default_value_t = 22, value_name = "J")]
        zernike: usize,
        /// Use the planes where the bead's peak is at least this fraction of its brightest
        /// plane's (0 takes them all).
        #[arg(long, default_value_t = 0.02, value_name = "FRACTION")]
        min_signal: f64,
        /// Write the retrieval as JSON (objective, sampling, fit, pupil magnitude and phase).
        #[arg(long, value_name = "PUPIL.json")]
        out: Option<PathBuf>,
        /// Write the retrieved pupil's PSF on the stack's planes (noise- and background-free,
        /// centred), for deconvolution.
        #[arg(long, value_name = "PSF.tif")]
        psf_out: Option<PathBuf>,
        /// Also a PNG of the pupil's magnitude and phase and of the measured and modelled
        /// x–z sections.
        #[arg(long, value_name = "OUT.png")]
        png: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `photonflow psf`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Sub::Model {
            objective,
            pitch,
            size,
            planes,
            z_step,
            zernike,
            from,
            model,
            out,
            png,
            json,
        } => {
            let saved = from.as_ref().map(|p| read_retrieval(p)).transpose()?;
            let objective = objective.objective(saved.as_ref().map(|v| &v["objective"]))?;
            if !(8..=4096).contains(&size) {
                bail!("--size {size}: give 8 to 4096 pixels per side");
            }
            if planes == 0 || planes > 4096 {
                bail!("--planes {planes}: give 1 to 4096 planes");
            }
            let dz = match (planes, z_step) {
                (1, _) => z_step.unwrap_or(0.0),
                (_, Some(dz)) => dz,
                (_, None) => bail!("--planes {planes} needs --z-step, e.g. --z-step 200nm"),
            };
            let mut terms = zernike_terms(&zernike)?;
            if let (Some(v), Some(p)) = (&saved, &from) {
                terms.extend(saved_terms(v).with_context(|| format!("--from {}", p.display()))?);
            }
            let grid = Grid::square(size, pitch)?;
            let mut pupil =
                Pupil::new(objective, grid).map_err(|e| anyhow::anyhow!("--pitch: {e}"))?;
            pupil
                .aberrate(&terms)
                .map_err(|e| anyhow::anyhow!("--zernike: {e}"))?;
            let z: Vec<f64> = (0..planes)
                .map(|k| (k as f64 - (planes / 2) as f64) * dz)
                .collect();
            let model = model.model(saved.as_ref().map(|v| &v["model"]))?;
            let psf = pupil.psf_with(&z, &model)?;
            let shape = [planes, size, size];
            // The brightest voxel's plane: where the source is in focus (moved by a mismatch).
            let peak_z = z[photonflow_optics::pupil::brightest(&psf, shape)[0]];
            let stack = stack_of(&psf, shape, pitch, dz, planes > 1)?;
            write_stack(&out, &stack).with_context(|| format!("--out {}", out.display()))?;
            if let Some(png) = &png {
                sections_png(png, &[("model", &psf)], shape, Some(pitch), Some(dz), "PSF")?;
            }
            let widths = fwhm(&psf, shape);
            let fit = pupil.fit(22.max(terms.iter().map(|t| t.0).max().unwrap_or(0)))?;
            let report = json!({
                "out": out.display().to_string(),
                "shape": shape,
                "pitch_m": pitch,
                "z_step_m": dz,
                "fwhm_m": widths_json(&widths, pitch, dz),
                "strehl": fit.strehl,
                "rayleigh_m": 0.61 * objective.wave.wavelength / objective.na,
                "model": model_json(&model),
                "peak_z_m": peak_z,
            });
            if json {
                println!("{report}");
            } else {
                println!(
                    "PSF of NA {} at {} (n = {}): {} plane(s) of {size}×{size}, pitch {}, \
                     written to {}",
                    objective.na,
                    format_length(objective.wave.wavelength),
                    objective.wave.index,
                    planes,
                    format_length(pitch),
                    out.display()
                );
                println!("model: {}", model.describe());
                print_widths(&widths, pitch, dz);
                if planes > 1 {
                    println!("brightest plane at z = {}", format_length(peak_z));
                }
                println!(
                    "Strehl ratio {:.3} (of the pupil's aberrations)",
                    fit.strehl
                );
            }
            Ok(())
        }
        Sub::Retrieve {
            stack: path,
            objective,
            pitch,
            z_step,
            background,
            iterations,
            zernike,
            min_signal,
            model: model_args,
            out,
            psf_out,
            png,
            json,
        } => {
            let objective = objective.objective(None)?;
            let psf_model = model_args.model(None)?;
            let stack =
                read_stack(&path).with_context(|| format!("the bead stack {}", path.display()))?;
            let [nz, ny, nx] = stack.shape;
            let pitch_y = pitch.or(stack.spacing.y);
            let pitch = pitch.or(stack.spacing.x).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} does not say its pixel size: give --pitch (in sample space, e.g. 100nm)",
                    path.display()
                )
            })?;
            let dz = z_step.or(stack.spacing.z).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} does not say its z step: give --z-step (e.g. 100nm)",
                    path.display()
                )
            })?;
            let grid = Grid::new(nx, ny, pitch, pitch_y.unwrap_or(pitch))?;
            let options = RetrieveOptions {
                iterations,
                background,
                zernike,
                min_signal,
                model: psf_model,
                ..RetrieveOptions::default()
            };
            let bar = progress_bar(
                json,
                iterations as u64,
                "retrieving the pupil {bar:30} {pos}/{len} iterations, misfit {msg}",
            );
            let r = retrieve(
                &stack.data,
                stack.shape,
                grid,
                dz,
                objective,
                &options,
                |i, e| {
                    bar.set_position(i as u64);
                    bar.set_message(format!("{e:.4}"));
                },
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            bar.finish_and_clear();
            let z: Vec<f64> = (0..nz)
                .map(|k| (k as f64 - r.peak[0] as f64) * dz)
                .collect();
            // The model at the bead's place, for the widths, the sections and --psf-out.
            let model = r.pupil.centred(&r.fit).psf_with(&z, &psf_model)?;
            let measured: Vec<f64> = stack
                .data
                .iter()
                .map(|&v| (f64::from(v) - r.background).max(0.0))
                .collect();
            let widths_measured = fwhm(&measured, stack.shape);
            let widths_model = fwhm(&model, stack.shape);
            let ideal = Pupil::new(objective, grid)?.psf_with(&z, &psf_model)?;
            let widths_ideal = fwhm(&ideal, stack.shape);
            let report = json!({
                "stack": path.display().to_string(),
                "shape": stack.shape,
                "pitch_m": pitch,
                "z_step_m": dz,
                "objective": {"wavelength_m": objective.wave.wavelength, "na": objective.na, "index": objective.wave.index},
                "model": model_json(&psf_model),
                "background": r.background,
                "peak_voxel": r.peak,
                "planes_used": r.planes,
                "iterations": r.misfit.len(),
                "misfit": r.misfit.last(),
                "ideal_misfit": r.ideal_misfit,
                "fit": fit_json(&r.fit),
                "fwhm_m": {
                    "measured": widths_json(&widths_measured, pitch, dz),
                    "retrieved": widths_json(&widths_model, pitch, dz),
                    "ideal": widths_json(&widths_ideal, pitch, dz),
                },
            });
            if let Some(out) = &out {
                let map = r.pupil.map();
                let mut full = report.clone();
                full["pupil"] = json!({
                    "shape": [ny, nx],
                    "frequency_pitch_per_m": [1.0 / (nx as f64 * pitch), 1.0 / (ny as f64 * pitch)],
                    "magnitude": map.iter().map(|v| v.norm()).collect::<Vec<_>>(),
                    "phase_rad": map.iter().map(|v| v.arg()).collect::<Vec<_>>(),
                });
                full["misfit_history"] = json!(r.misfit);
                write_json(out, &full)?;
            }
            if let Some(p) = &psf_out {
                let s = stack_of(&model, stack.shape, pitch, dz, true)?;
                write_stack(p, &s).with_context(|| format!("--psf-out {}", p.display()))?;
            }
            if let Some(png) = &png {
                pupil_png(png, &r.pupil, objective)?;
                let sections = png.with_extension("sections.png");
                sections_png(
                    &sections,
                    &[
                        ("measured", &measured),
                        ("retrieved pupil", &model),
                        ("ideal pupil", &ideal),
                    ],
                    stack.shape,
                    Some(pitch),
                    Some(dz),
                    "bead",
                )?;
            }
            if json {
                println!("{report}");
                return Ok(());
            }
            println!(
                "{}: {nz} planes of {ny}×{nx}, pitch {}, z step {}; background {:.1}, bead at \
                 voxel (z, y, x) = {:?}",
                path.display(),
                format_length(pitch),
                format_length(dz),
                r.background,
                r.peak
            );
            println!(
                "misfit {:.4} after {} iterations on planes {}–{} ({} model; the ideal pupil \
                 at the same place: {:.4})",
                r.misfit.last().copied().unwrap_or(f64::NAN),
                r.misfit.len(),
                r.planes.first().copied().unwrap_or(0),
                r.planes.last().copied().unwrap_or(0),
                psf_model.describe(),
                r.ideal_misfit
            );
            let p = r.fit.position;
            println!(
                "bead offset from that voxel: x {}, y {}, z {}",
                format_length(p[0]),
                format_length(p[1]),
                format_length(p[2])
            );
            println!(
                "Strehl ratio {:.3}; aberrations {:.3} rad RMS ({:.3} waves), {:.3} rad left \
                 unexplained by Z5–Z{zernike}",
                r.fit.strehl,
                r.fit.zernike_rms,
                r.fit.zernike_rms / TAU,
                r.fit.residual_rms
            );
            for (j, c) in &r.fit.zernike {
                if c.abs() >= 0.05 {
                    println!("  Z{j:<3} {:>8.3} rad  {}", c, name(*j));
                }
            }
            println!("(terms below 0.05 rad not shown; --json or --out has them all)");
            println!("widths (FWHM):");
            for (label, w) in [
                ("measured", &widths_measured),
                ("retrieved", &widths_model),
                ("ideal", &widths_ideal),
            ] {
                print!("  {label:<10}");
                print_widths(w, pitch, dz);
            }
            Ok(())
        }
    }
}

/// A retrieval written by `psf retrieve --out`.
fn read_retrieval(path: &Path) -> anyhow::Result<serde_json::Value> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("--from {}: cannot read it", path.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "--from {}: not JSON (give a file from `psf retrieve --out`)",
            path.display()
        )
    })?;
    if !v["fit"]["zernike"].is_array() || !v["objective"].is_object() {
        bail!(
            "--from {}: no fitted pupil in it (give a file from `psf retrieve --out`)",
            path.display()
        );
    }
    Ok(v)
}

/// The fitted Zernike terms of a retrieval.
fn saved_terms(v: &serde_json::Value) -> anyhow::Result<Vec<(usize, f64)>> {
    v["fit"]["zernike"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| match (t["noll"].as_u64(), t["rad"].as_f64()) {
            (Some(j), Some(c)) => Ok((j as usize, c)),
            _ => bail!("a Zernike term without noll and rad: {t}"),
        })
        .collect()
}

/// `J=RAD` terms of `--zernike`.
pub(super) fn zernike_terms(items: &[String]) -> anyhow::Result<Vec<(usize, f64)>> {
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let parse = || -> Option<(usize, f64)> {
                let (j, c) = s.split_once('=')?;
                let c: f64 = c.trim().trim_end_matches("rad").parse().ok()?;
                Some((j.trim().trim_start_matches(['Z', 'z']).parse().ok()?, c))
            };
            parse().filter(|t| t.1.is_finite()).ok_or_else(|| {
                anyhow::anyhow!(
                    "--zernike {s}: give Noll index = radians RMS, e.g. 11=0.5 (primary spherical)"
                )
            })
        })
        .collect()
}

/// A float32 TIFF stack of `values` with its spacing.
pub(super) fn stack_of(
    values: &[f64],
    shape: [usize; 3],
    pitch: f64,
    dz: f64,
    with_z: bool,
) -> anyhow::Result<Stack> {
    let mut s = Stack::new(values.iter().map(|&v| v as f32).collect(), shape)?;
    s.spacing = Spacing {
        x: Some(pitch),
        y: Some(pitch),
        z: with_z.then_some(dz),
    };
    Ok(s)
}

fn widths_json(w: &[Option<f64>; 3], pitch: f64, dz: f64) -> serde_json::Value {
    json!({"x": w[0].map(|v| v * pitch), "y": w[1].map(|v| v * pitch), "z": w[2].map(|v| v * dz)})
}

fn print_widths(w: &[Option<f64>; 3], pitch: f64, dz: f64) {
    let f = |v: Option<f64>, d: f64| v.map_or("—".to_string(), |v| format_length(v * d));
    println!(
        "FWHM x {}, y {}, z {}",
        f(w[0], pitch),
        f(w[1], pitch),
        f(w[2], dz)
    );
}

fn model_json(model: &PsfModel) -> serde_json::Value {
    json!({
        "vectorial": model.vectorial.is_some(),
        "polarisation": model.vectorial.as_ref().map(polarisation_name),
        "sample": model.sample.map(|s| json!({"index": s.index, "depth_m": s.depth})),
    })
}

/// The model [`model_json`] wrote (in a retrieval's file), checked.
fn model_of_json(v: &serde_json::Value) -> anyhow::Result<PsfModel> {
    let vectorial = match (v["vectorial"].as_bool(), v["polarisation"].as_str()) {
        (Some(true), Some(p)) => Some(p.parse::<Polarisation>()?),
        (Some(false), _) => None,
        _ => bail!("'model' needs vectorial (true/false) and, if true, a polarisation: {v}"),
    };
    let sample = match &v["sample"] {
        serde_json::Value::Null => None,
        s => match (s["index"].as_f64(), s["depth_m"].as_f64()) {
            (Some(index), Some(depth)) => Some(Sample { index, depth }),
            _ => bail!("'model.sample' needs index and depth_m: {s}"),
        },
    };
    let model = PsfModel { vectorial, sample };
    model.validate()?;
    Ok(model)
}

fn fit_json(fit: &PupilFit) -> serde_json::Value {
    json!({
        "position_m": fit.position,
        "strehl": fit.strehl,
        "zernike_rms_rad": fit.zernike_rms,
        "residual_rms_rad": fit.residual_rms,
        "zernike": fit.zernike.iter().map(|(j, c)| json!({"noll": j, "name": name(*j), "rad": c})).collect::<Vec<_>>(),
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The pupil's magnitude and phase over its disk (pupil coordinates, NA units).
fn pupil_png(path: &Path, pupil: &Pupil, objective: Objective) -> anyhow::Result<()> {
    let g = pupil.grid();
    let map = pupil.map();
    // The part of the frequency grid that holds the pupil, with a margin.
    let fc = objective.cutoff();
    let (dfx, dfy) = (1.0 / (g.nx as f64 * g.dx), 1.0 / (g.ny as f64 * g.dy));
    let rx = ((fc / dfx).ceil() as usize + 2).min(g.nx / 2);
    let ry = ((fc / dfy).ceil() as usize + 2).min(g.ny / 2);
    let (cx, cy) = (g.nx / 2, g.ny / 2);
    let crop = |f: &dyn Fn(num_complex::Complex<f64>) -> f64| -> Vec<f64> {
        let mut v = Vec::new();
        for y in cy - ry..=cy + ry {
            for x in cx - rx..=cx + rx {
                let p = map[y * g.nx + x];
                v.push(if p.norm() > 0.0 { f(p) } else { f64::NAN });
            }
        }
        v
    };
    let top = map
        .iter()
        .map(|p| p.norm())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mag = crop(&|p| p.norm() / top);
    let phase = crop(&|p| p.arg());
    let (w, h) = (2 * rx + 1, 2 * ry + 1);
    let extent = [
        -(rx as f64 + 0.5) * dfx / fc,
        (rx as f64 + 0.5) * dfx / fc,
        -(ry as f64 + 0.5) * dfy / fc,
        (ry as f64 + 0.5) * dfy / fc,
    ];
    let axes = Axes::Index {
        x: "fx / (NA/λ)",
        y: "fy / (NA/λ)",
    };
    let panels = [
        ImagePlot {
            title: "pupil magnitude",
            colorbar_label: "|P| / max",
            colormap: Colormap::Gray,
            axes,
            ..ImagePlot::new(&mag, w, h, extent)
        },
        ImagePlot {
            title: "pupil phase",
            colorbar_label: "phase (rad)",
            colormap: Colormap::Twilight,
            range: Some((-std::f64::consts::PI, std::f64::consts::PI)),
            axes,
            ..ImagePlot::new(&phase, w, h, extent)
        },
    ];
    write_image_grid_png(path, &panels, 2, 480, 400, "retrieved pupil")?;
    Ok(())
}

/// The in-focus plane (x–y) and the x–z section through the peak of each stack, log scale.
pub(super) fn sections_png(
    path: &Path,
    stacks: &[(&str, &[f64])],
    shape: [usize; 3],
    pitch: Option<f64>,
    dz: Option<f64>,
    title: &str,
) -> anyhow::Result<()> {
    let [nz, ny, nx] = shape;
    /// One panel's data: title, values, width, height, extent, axes.
    struct Section<'a>(String, Vec<f64>, usize, usize, [f64; 4], Axes<'a>);
    let mut owned: Vec<Section> = Vec::new();
    // Micrometres where the sampling is known, else pixels and planes.
    let (sx, lx, ly) = match pitch {
        Some(p) => (p * 1e6, "x (µm)", "y (µm)"),
        None => (1.0, "x (px)", "y (px)"),
    };
    let (sz, lz) = match dz {
        Some(d) => (d * 1e6, "z (µm)"),
        None => (1.0, "z (plane)"),
    };
    let (hx, hy, hz) = (
        nx as f64 / 2.0 * sx,
        ny as f64 / 2.0 * sx,
        nz as f64 / 2.0 * sz,
    );
    let xy_axes = Axes::Index { x: lx, y: ly };
    let xz_axes = Axes::Index { x: lx, y: lz };
    for (label, v) in stacks {
        // Each stack's own brightest voxel is put at the centre, so that a measured bead and
        // a centred model line up.
        let [pz, py, px] = photonflow_optics::pupil::brightest(v, shape);
        let at = |z: usize, y: usize, x: usize| {
            v[(z * ny + (y + py + ny - ny / 2) % ny) * nx + (x + px + nx - nx / 2) % nx]
        };
        let xy: Vec<f64> = (0..ny)
            .flat_map(|y| (0..nx).map(move |x| at(pz, y, x)))
            .collect();
        owned.push(Section(
            format!("{label}: x–y at focus"),
            xy,
            nx,
            ny,
            [-hx, hx, -hy, hy],
            xy_axes,
        ));
        if nz > 1 {
            // Rows are z (top = last plane), columns x.
            let xz: Vec<f64> = (0..nz)
                .rev()
                .flat_map(|z| (0..nx).map(move |x| (z, x)))
                .map(|(z, x)| at(z, ny / 2, x))
                .collect();
            owned.push(Section(
                format!("{label}: x–z"),
                xz,
                nx,
                nz,
                [-hx, hx, -hz, hz],
                xz_axes,
            ));
        }
    }
    let panels: Vec<ImagePlot> = owned
        .iter()
        .map(|Section(t, v, w, h, e, axes)| ImagePlot {
            title: t,
            colorbar_label: "intensity",
            colormap: Colormap::Inferno,
            scale: crate::plot::Scale::Log { decades: 3.0 },
            axes: *axes,
            ..ImagePlot::new(v, *w, *h, *e)
        })
        .collect();
    let columns = if nz > 1 { 2 } else { panels.len().min(3) };
    write_image_grid_png(path, &panels, columns, 420, 380, title)?;
    Ok(())
}
