//! `photonflow hologram`: the phase an SLM must show to form spots or an image (computer-
//! generated holography), as a bitmap for the SLM with the simulated result.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use photonflow_compiler::export::SlmSettings;
use photonflow_compiler::export::slm::{self, SlmPanel};
use photonflow_d2nn::data::load_image;
use photonflow_optics::holography::{
    Algorithm, Beam, Design, Geometry, Initial, Options, Quality, Setup, Spot, Step, Target,
    design, evaluate,
};
use photonflow_optics::io::npy::{NpyData, NpyDataRef, read_npy, write_npy};
use photonflow_optics::lut::{GrayMap, Lut};
use photonflow_optics::units::{format_length, parse_array};
use photonflow_optics::{Grid, Planner, Wave};
use serde_json::json;

use super::{length, point, positive_length, progress_bar};
use crate::plot::{
    Colormap, ImagePlot, LinePlot, Rect, Scale, Series, write_image_grid_png, write_line_png,
};

/// Arguments of `photonflow hologram`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image to form (PNG, JPEG or .npy; its gray values are taken as intensities).
    /// Give it, --spots or --spot.
    image: Option<PathBuf>,
    /// A grid of spots, COLSxROWS@PITCH (e.g. 5x5@200um), centred at --centre.
    #[arg(long, value_name = "CxR@PITCH")]
    spots: Option<String>,
    /// One spot X,Y[,Z][,INTENSITY] (e.g. 1mm,-0.5mm,2 or 1mm,0,200um): Z, beyond the target
    /// plane, for Fourier holograms (3-D arrays); repeat for more.
    #[arg(long, value_name = "X,Y[,Z][,I]", allow_hyphen_values = true)]
    spot: Vec<String>,
    /// Vacuum wavelength, e.g. 532nm.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    wavelength: f64,
    /// The SLM panel, WIDTHxHEIGHT@PITCH (e.g. 1920x1080@8um).
    #[arg(long, value_name = "WxH@PITCH")]
    slm: String,
    /// Fourier hologram: focal length of the lens between the SLM and the target plane.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    focal: Option<f64>,
    /// Fresnel hologram: distance from the SLM to the target plane (no lens).
    #[arg(long, value_parser = length, value_name = "LENGTH", allow_hyphen_values = true)]
    distance: Option<f64>,
    /// Fresnel hologram: propagation method (see `photonflow propagate --help`).
    #[arg(long, value_name = "METHOD", default_value = "bl-asm")]
    method: String,
    /// Fresnel hologram: sample the target plane at this pitch instead of the SLM's (e.g. a
    /// projection screen larger than the SLM; the window's samples spread over it). Use with
    /// --method auto or sas far from the SLM.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    target_pitch: Option<f64>,
    /// Computational window, times the panel per axis (1 … 16): 2 samples the target plane of
    /// a Fourier hologram twice as finely as the SLM resolves.
    #[arg(long, value_name = "FACTOR", default_value_t = 2.0)]
    pad: f64,
    /// 1/e² intensity radius of a Gaussian beam on the SLM (default: uniform illumination).
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    beam_waist: Option<f64>,
    /// The beam's intensity measured on the SLM: a .npy [height, width] (float or uint8/16),
    /// row 0 at the most negative y, any scale.
    #[arg(long, value_name = "FILE.npy")]
    beam: Option<PathBuf>,
    /// Fourier holograms: the SLM pixels' fill factor (their share of the panel's area, e.g.
    /// 0.93): the square pixels' diffraction envelope and the zero order of the gaps between
    /// them are simulated and designed for (1: the envelope alone). Default: pixels as points.
    #[arg(long, value_name = "F")]
    fill_factor: Option<f64>,
    /// Side of the image in the target plane (its longer side), e.g. 3mm; default: half the
    /// target plane's shorter side.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    size: Option<f64>,
    /// Centre of the image or spot grid, X,Y (e.g. 2mm,0); off-axis keeps it clear of a real
    /// SLM's zero order.
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true)]
    centre: Option<String>,
    /// gs, wgs, mraf or gd (default: wgs for spots, mraf for images).
    #[arg(long, value_name = "NAME")]
    algorithm: Option<String>,
    /// Iterations with a continuous phase.
    #[arg(long, default_value_t = 100, value_name = "N")]
    iterations: usize,
    /// wgs: freeze the target plane's phase after N iterations (Kim et al. 2019); default: half
    /// the iterations (a value of --iterations or more never fixes it).
    #[arg(long, value_name = "N")]
    fix_phase_after: Option<usize>,
    /// mraf: share of the target in the signal region (0 … 1).
    #[arg(long, default_value_t = 0.4, value_name = "M")]
    mix: f64,
    /// gd: Adam's step, radians.
    #[arg(long, default_value_t = 0.1, value_name = "RAD")]
    learning_rate: f64,
    /// Initial phase: auto (a tilt and lens for images, random for spots), random or guess.
    #[arg(long, default_value = "auto", value_name = "KIND")]
    initial: String,
    /// Seed of a random initial phase.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seed: u64,
    /// Measured SLM lookup table, CSV gray,phase[,amplitude] (phase in radians).
    #[arg(long, value_name = "FILE")]
    lut: Option<PathBuf>,
    /// Bits per SLM gray level: 8, 10, 12 or 16.
    #[arg(long, default_value_t = 8, value_name = "B")]
    bits: u32,
    /// Gray level of one full 2π on a linear SLM (default 2^bits); a small value makes a
    /// multi-level element (4: four phase levels).
    #[arg(long, value_name = "G")]
    two_pi_gray: Option<u32>,
    /// The SLM's correction pattern (a maker's, or a wavefront calibration's): a .npy of
    /// phases in radians, [height, width], row 0 at the most negative y; or a PNG/BMP of the
    /// SLM's own gray levels (image row 0 at the top, read through --bits, --two-pi-gray or
    /// --lut). Added to the hologram before it is shown.
    #[arg(long, value_name = "FILE")]
    correction: Option<PathBuf>,
    /// Iterations through the SLM's gray levels after the continuous ones.
    #[arg(long, default_value_t = 10, value_name = "N")]
    quantised_iterations: usize,
    /// SLM bitmap format: png or bmp (8-bit only).
    #[arg(long, value_name = "FORMAT", default_value = "png")]
    slm_format: String,
    /// Simulate this SLM bitmap (PNG or BMP of gray levels, from photonflow or any other tool)
    /// instead of designing one: the same geometry, target, gray levels and correction; writes
    /// reconstruction.npy, hologram.json and --png.
    #[arg(long, value_name = "BITMAP")]
    evaluate: Option<PathBuf>,
    /// Output folder: hologram_slm.png (or .bmp), hologram_phase.npy, reconstruction.npy,
    /// hologram.json.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Also hologram.png (the phase, the simulated and the wanted intensity) and
    /// convergence.png.
    #[arg(long)]
    png: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `--spot X,Y[,Z][,I]`: a third value with a unit is Z, a bare number the intensity.
fn spot(text: &str) -> anyhow::Result<Spot> {
    let fix = "give X,Y[,Z][,INTENSITY], e.g. 1mm,-0.5mm or 1mm,0,200um,2";
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let intensity = |i: &str| {
        i.parse::<f64>().map_err(|_| {
            anyhow::anyhow!(
                "--spot {text}: '{i}' is neither a length (Z) nor a number (intensity); {fix}"
            )
        })
    };
    let z = |v: &str| length(v).map_err(|e| anyhow::anyhow!("--spot {text}: Z {e}; {fix}"));
    let (z, intensity) = match parts[..] {
        [_, _] => (0.0, 1.0),
        [_, _, v] => match length(v) {
            Ok(z) => (z, 1.0),
            Err(_) => (0.0, intensity(v)?),
        },
        [_, _, v, i] => (z(v)?, intensity(i)?),
        _ => bail!("--spot {text}: {fix}"),
    };
    let (x, y) = point("--spot", &format!("{},{}", parts[0], parts[1]))?;
    Ok(Spot { x, y, z, intensity })
}

/// Every spot as placed (snapped to a target pixel) with its target share and the peak
/// intensity the displayed hologram gives it (W/m² per W), relative to the mean of the spots'.
fn spot_report(target: &Target, intensity: &[f64], tg: &Grid) -> Vec<serde_json::Value> {
    let placed = target.placed_spots();
    let peaks: Vec<f64> = target
        .signal()
        .iter()
        .zip(&placed)
        .map(|(&k, p)| {
            let plane = target.planes().partition_point(|&z| z < p.2);
            intensity[plane * tg.len() + k]
        })
        .collect();
    let rel: Vec<f64> = peaks.iter().zip(&placed).map(|(i, p)| i / p.3).collect();
    let mean = rel.iter().sum::<f64>() / rel.len().max(1) as f64;
    placed
        .iter()
        .zip(peaks.iter().zip(&rel))
        .map(|(p, (peak, r))| {
            json!({
                "x_m": p.0, "y_m": p.1, "z_m": p.2, "share": p.3,
                "peak": peak, "relative": r / mean,
            })
        })
        .collect()
}

/// A .npy of one real value per panel pixel, `[height, width]`, row 0 at the most negative y,
/// as f64: float32 or float64, and also uint8 or uint16 where `integers` (a camera's picture).
fn panel_values(
    flag: &str,
    path: &Path,
    panel: &SlmPanel,
    integers: bool,
) -> anyhow::Result<Vec<f64>> {
    let a = read_npy(path).with_context(|| format!("{flag} {}", path.display()))?;
    anyhow::ensure!(
        a.shape == [panel.height, panel.width],
        "{flag} {}: the array is {:?}, but the panel (--slm) is {}×{}; give one value per SLM \
         pixel, [height, width]",
        path.display(),
        a.shape,
        panel.width,
        panel.height
    );
    Ok(match (a.data, integers) {
        (NpyData::F32(v), _) => v.into_iter().map(f64::from).collect(),
        (NpyData::F64(v), _) => v,
        (NpyData::U8(v), true) => v.into_iter().map(f64::from).collect(),
        (NpyData::U16(v), true) => v.into_iter().map(f64::from).collect(),
        _ => bail!(
            "{flag} {}: give {} values",
            path.display(),
            if integers {
                "float32, float64, uint8 or uint16"
            } else {
                "float32 or float64"
            }
        ),
    })
}

/// `--correction FILE`: one phase per panel pixel, row 0 at the most negative y.
fn correction(path: &Path, panel: &SlmPanel, map: &GrayMap) -> anyhow::Result<Vec<f64>> {
    // A .npy by its magic bytes, else a bitmap.
    let mut magic = [0u8; 6];
    let is_npy = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"\x93NUMPY";
    if is_npy {
        let phase = panel_values("--correction", path, panel, false)?;
        anyhow::ensure!(
            phase.iter().all(|p| p.is_finite()),
            "--correction {}: holds NaN or infinite phases",
            path.display()
        );
        return Ok(phase);
    }
    let gray = slm::read_panel(path, panel).map_err(|e| anyhow::anyhow!("--correction: {e}"))?;
    gray.iter()
        .map(|&g| {
            map.shows(g).map(|(p, _)| p).with_context(|| {
                format!(
                    "--correction {}: gray level {g} is not one this SLM shows (--bits, \
                     --two-pi-gray, --lut)",
                    path.display()
                )
            })
        })
        .collect()
}

/// `--spots COLSxROWS@PITCH` centred at `centre`.
fn spot_grid(text: &str, centre: (f64, f64)) -> anyhow::Result<Vec<Spot>> {
    let (cols, rows, pitch) = parse_array(text).map_err(|e| anyhow::anyhow!("--spots {e}"))?;
    anyhow::ensure!(
        cols * rows <= 100_000,
        "--spots {text}: {} spots; at most 100000",
        cols * rows
    );
    let off = |k: usize, n: usize| (k as f64 - (n as f64 - 1.0) / 2.0) * pitch;
    Ok((0..rows * cols)
        .map(|k| {
            Spot::new(
                centre.0 + off(k % cols, cols),
                centre.1 + off(k / cols, rows),
            )
        })
        .collect())
}

/// Runs `photonflow hologram`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let panel: SlmPanel = args.slm.parse()?;
    let geometry = match (args.focal, args.distance) {
        (Some(focal), None) => Geometry::Fourier { focal },
        (None, Some(distance)) => Geometry::Fresnel {
            distance,
            method: args
                .method
                .parse()
                .map_err(|e| anyhow::anyhow!("--method: {e}"))?,
            target_pitch: args.target_pitch,
        },
        _ => bail!(
            "give --focal (a lens between the SLM and the target: Fourier hologram) or \
             --distance (no lens: Fresnel hologram), one of them"
        ),
    };
    if args.focal.is_some() && args.method != "bl-asm" {
        bail!("--method applies to Fresnel holograms (--distance); a Fourier hologram is one FFT");
    }
    if args.focal.is_some() && args.target_pitch.is_some() {
        bail!(
            "--target-pitch applies to Fresnel holograms (--distance); a Fourier hologram's \
             target pitch is λf/(pad·N·p): change --pad"
        );
    }
    let targets = usize::from(args.image.is_some())
        + usize::from(args.spots.is_some())
        + usize::from(!args.spot.is_empty());
    if targets != 1 {
        bail!("give one target: an IMAGE, --spots COLSxROWS@PITCH, or --spot X,Y[,I] (repeatable)");
    }
    if args.image.is_none() && args.size.is_some() {
        bail!("--size is the size of an image target; spots are placed by --spots or --spot");
    }
    let slm_settings = SlmSettings {
        panel: Some(panel),
        bits: args.bits,
        two_pi_gray: args.two_pi_gray,
        lut: match &args.lut {
            Some(path) => Some((Lut::read_csv(path)?, path.display().to_string())),
            None => None,
        },
        format: args.slm_format.parse()?,
        ..SlmSettings::default()
    };
    let map = slm::gray_map(&slm_settings)?;
    let centre = match &args.centre {
        Some(text) => point("--centre", text)?,
        None => (0.0, 0.0),
    };
    let beam = match (args.beam_waist, &args.beam) {
        (Some(waist), None) => Beam::Gaussian { waist },
        (None, None) => Beam::Uniform,
        (None, Some(path)) => Beam::Measured(panel_values("--beam", path, &panel, true)?.into()),
        (Some(_), Some(_)) => {
            bail!("give --beam-waist (a Gaussian beam) or --beam (a measured one), not both")
        }
    };
    let wave = Wave::vacuum(args.wavelength)?;
    let grid = Grid::new(panel.width, panel.height, panel.pitch_m, panel.pitch_m)?;
    let planner = Planner::<f32>::new();
    let mut setup = Setup::new(&planner, grid, wave, geometry, args.pad, beam.clone())
        .map_err(|e| anyhow::anyhow!("--slm/--pad/--focal/--distance: {e}"))?;
    if let Some(fill) = args.fill_factor {
        setup = setup
            .with_fill_factor(fill)
            .map_err(|e| anyhow::anyhow!("--fill-factor {fill}: {e}"))?;
    }
    let tg = setup.target_grid();

    // The target.
    let mut wanted: Option<(Vec<f64>, usize, usize)> = None;
    let target = if let Some(path) = &args.image {
        let image = load_image(path)
            .with_context(|| format!("cannot read the image {}", path.display()))?;
        let (tw, th) = tg.extent();
        let side = args.size.unwrap_or(0.5 * tw.min(th));
        // Pixels of the longer side, the other in proportion.
        let long = image.cols.max(image.rows) as f64;
        let px = |n: usize, d: f64| ((n as f64 / long * side / d).round() as usize).max(1);
        let (cols, rows) = (px(image.cols, tg.dx), px(image.rows, tg.dy));
        anyhow::ensure!(
            cols <= tg.nx && rows <= tg.ny,
            "--size {}: the image would be {cols}×{rows} target pixels of {}, larger than the \
             {}×{} target plane; give a smaller --size or a larger --pad",
            format_length(side),
            format_length(tg.dx),
            tg.nx,
            tg.ny
        );
        let resized = image.resized(rows, cols);
        // Image row 0 is the top (most positive y); the target's row 0 is the most negative y.
        let intensity: Vec<f64> = resized
            .pixels
            .chunks_exact(cols)
            .rev()
            .flatten()
            .map(|&v| f64::from(v))
            .collect();
        let t = Target::image(&setup, &intensity, rows, cols, centre)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        wanted = Some((intensity, rows, cols));
        t
    } else {
        let spots = match &args.spots {
            Some(text) => spot_grid(text, centre)?,
            None => {
                anyhow::ensure!(
                    args.centre.is_none(),
                    "--centre places an image or a --spots grid; each --spot has its own position"
                );
                args.spot
                    .iter()
                    .map(|s| spot(s))
                    .collect::<anyhow::Result<_>>()?
            }
        };
        Target::spots(&setup, &spots).map_err(|e| anyhow::anyhow!("--spots/--spot: {e}"))?
    };

    // The algorithm.
    let algorithm = match &args.algorithm {
        Some(name) => name
            .parse::<Algorithm>()
            .map_err(|e| anyhow::anyhow!("--algorithm: {e}"))?,
        None if target.is_spots() => Algorithm::Wgs,
        None => Algorithm::Mraf,
    };
    let initial = match args.initial.as_str() {
        "auto" => Initial::Auto,
        "random" => Initial::Random,
        "guess" => Initial::Guess,
        other => bail!("--initial {other}: use auto, random or guess"),
    };
    let options = Options {
        algorithm,
        iterations: args.iterations,
        initial,
        seed: args.seed,
        fix_phase_after: match algorithm {
            Algorithm::Wgs => Some(args.fix_phase_after.unwrap_or(args.iterations / 2)),
            _ => None,
        },
        mix: args.mix,
        learning_rate: args.learning_rate,
        correction: match &args.correction {
            Some(path) => Some(correction(path, &panel, &map)?),
            None => None,
        },
        quantise: Some(map),
        quantised_iterations: args.quantised_iterations,
    };
    if args.fix_phase_after.is_some() && algorithm != Algorithm::Wgs {
        bail!("--fix-phase-after applies to --algorithm wgs");
    }

    let total = args.iterations + args.quantised_iterations;
    let bar = progress_bar(
        args.json,
        total as u64,
        "{spinner} {msg} [{bar:30}] {pos}/{len} iterations, {elapsed} (ETA {eta})",
    );
    bar.set_message(format!("{algorithm} on {}×{}", panel.width, panel.height));
    let start = Instant::now();
    let hologram = match &args.evaluate {
        Some(path) => {
            let gray =
                slm::read_panel(path, &panel).map_err(|e| anyhow::anyhow!("--evaluate: {e}"))?;
            evaluate(&setup, &target, &options, &gray)
                .map_err(|e| anyhow::anyhow!("--evaluate {}: {e}", path.display()))?
        }
        None => design(&setup, &target, &options, |_: &Step| bar.inc(1))
            .map_err(|e| anyhow::anyhow!("--iterations/--mix/--learning-rate: {e}"))?,
    };
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();

    // Files.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    let ext = if args.slm_format == "bmp" {
        "bmp"
    } else {
        "png"
    };
    let bitmap = args.out.join(format!("hologram_slm.{ext}"));
    let gray = hologram
        .gray
        .as_ref()
        .expect("the options carry the SLM's gray levels");
    let (mut max_err, mut rms_err) = (None, None);
    if args.evaluate.is_none() {
        // What the bitmap must show: the design plus the correction.
        let shown: Vec<f64> = match &options.correction {
            Some(c) => hologram.phase.iter().zip(c).map(|(p, c)| p + c).collect(),
            None => hologram.phase.clone(),
        };
        let (max, rms) = slm::write_panel(&bitmap, &panel, gray, &shown, &slm_settings)?;
        (max_err, rms_err) = (Some(max), Some(rms));
        let phase32: Vec<f32> = hologram.phase.iter().map(|&p| p as f32).collect();
        write_npy(
            &args.out.join("hologram_phase.npy"),
            &[panel.height, panel.width],
            NpyDataRef::F32(&phase32),
        )?;
    }
    let intensity32: Vec<f32> = hologram.intensity.iter().map(|&v| v as f32).collect();
    let planes = target.planes();
    let shape = if planes.len() == 1 {
        vec![tg.ny, tg.nx]
    } else {
        vec![planes.len(), tg.ny, tg.nx]
    };
    write_npy(
        &args.out.join("reconstruction.npy"),
        &shape,
        NpyDataRef::F32(&intensity32),
    )?;
    if args.png {
        pictures(&args.out, &setup, &target, &hologram, wanted.as_ref())?;
    }
    let quality = |q: &Quality| {
        json!({
            "efficiency": q.efficiency,
            "uniformity": q.uniformity,
            "error": q.error,
            "psnr_db": q.psnr,
            "ssim": q.ssim,
        })
    };
    let (cx, cy) = setup.resolution_cell();
    let report = json!({
        "wavelength_m": args.wavelength,
        "slm": { "width": panel.width, "height": panel.height, "pitch_m": panel.pitch_m },
        "geometry": match geometry {
            Geometry::Fourier { focal } => json!({ "kind": "fourier", "focal_m": focal }),
            Geometry::Fresnel { distance, .. } => json!({
                "kind": "fresnel",
                "distance_m": distance,
                "method": setup.method().name(),
                "target_pitch_m": setup.target_grid().dx,
            }),
        },
        "beam": match beam {
            Beam::Uniform => json!({ "kind": "uniform" }),
            Beam::Gaussian { waist } => json!({ "kind": "gaussian", "waist_m": waist }),
            Beam::Measured(_) => json!({
                "kind": "measured",
                "file": args.beam.as_ref().map(|p| p.display().to_string()),
            }),
        },
        "pad": args.pad,
        "correction": args.correction.as_ref().map(|p| p.display().to_string()),
        "fill_factor": setup.fill_factor(),
        "target_plane": { "nx": tg.nx, "ny": tg.ny, "pitch_x_m": tg.dx, "pitch_y_m": tg.dy },
        "resolution_cell_px": [cx, cy],
        "target": match target.block() {
            Some((rows, cols, r0, c0)) => json!({
                "kind": "image",
                "file": args.image.as_ref().map(|p| p.display().to_string()),
                "rows": rows, "cols": cols, "first_row": r0, "first_col": c0,
            }),
            None => json!({
                "kind": "spots",
                "count": target.signal().len(),
                "planes_m": target.planes(),
            }),
        },
        "spots": spot_report(&target, &hologram.intensity, &tg),
        "algorithm": algorithm.name(),
        "iterations": args.iterations,
        "quantised_iterations": args.quantised_iterations,
        "seconds": seconds,
        "quality": quality(&hologram.quality),
        "continuous_quality": quality(&hologram.continuous),
        "bitmap": {
            "file": match &args.evaluate {
                Some(path) => Some(path.display().to_string()),
                None => bitmap.file_name().map(|f| f.to_string_lossy().to_string()),
            },
            "evaluated": args.evaluate.is_some(),
            "bits": args.bits,
            "max_phase_error_rad": max_err,
            "rms_phase_error_rad": rms_err,
        },
        "history": hologram.history.iter().map(|s| json!({
            "iteration": s.iteration, "quantised": s.quantised,
            "efficiency": s.efficiency, "error": s.error,
        })).collect::<Vec<_>>(),
    });
    photonflow_optics::io::write_atomic(&args.out.join("hologram.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &report)?;
        Ok(())
    })
    .with_context(|| format!("cannot write {}", args.out.join("hologram.json").display()))?;

    if args.json {
        let mut short = report.clone();
        short.as_object_mut().map(|o| o.remove("history"));
        println!("{short}");
        return Ok(());
    }
    let q = &hologram.quality;
    let what = match &args.evaluate {
        Some(path) => format!("{} simulated", path.display()),
        None => format!(
            "{algorithm}, {} + {} quantised iterations",
            args.iterations, args.quantised_iterations
        ),
    };
    println!(
        "{what} on {}×{} SLM pixels in {seconds:.1} s; target plane {}×{} pixels of {} (one \
         resolution cell = {cx:.1} pixels)",
        panel.width,
        panel.height,
        tg.nx,
        tg.ny,
        format_length(tg.dx)
    );
    let line = |name: &str, q: &Quality| match (q.uniformity, q.psnr) {
        (Some(u), _) => format!(
            "{name}: efficiency {:.1} %, uniformity {:.4}, spot intensities ±{:.3} % (std/mean)",
            100.0 * q.efficiency,
            u,
            100.0 * q.error
        ),
        (None, psnr) => format!(
            "{name}: efficiency {:.1} %, intensity error {:.2} %, PSNR {:.1} dB{}",
            100.0 * q.efficiency,
            100.0 * q.error,
            psnr.unwrap_or(f64::NAN),
            q.ssim.map_or(String::new(), |s| format!(", SSIM {s:.4}"))
        ),
    };
    let levels = match (&args.lut, args.two_pi_gray) {
        (Some(path), _) => format!("through {}", path.display()),
        (None, Some(g)) => format!("{g} levels"),
        (None, None) => format!("{} levels", 1u32 << args.bits),
    };
    println!("{}", line(&format!("as displayed ({levels})"), q));
    let written = match max_err {
        Some(max_err) => {
            println!("{}", line("continuous phase", &hologram.continuous));
            format!(
                "{} (read back: phase within {max_err:.4} rad), hologram_phase.npy, ",
                bitmap
                    .file_name()
                    .map_or(String::new(), |f| f.to_string_lossy().to_string())
            )
        }
        None => String::new(),
    };
    println!(
        "wrote {written}reconstruction.npy, hologram.json{} in {}",
        match (args.png, args.evaluate.is_some()) {
            (true, false) => ", hologram.png, convergence.png",
            (true, true) => ", hologram.png",
            (false, _) => "",
        },
        args.out.display()
    );
    Ok(())
}

/// hologram.png (phase, simulated intensity with the signal region, wanted image) and
/// convergence.png.
fn pictures(
    out: &Path,
    setup: &Setup<f32>,
    target: &Target,
    hologram: &Design,
    wanted: Option<&(Vec<f64>, usize, usize)>,
) -> anyhow::Result<()> {
    let slm = setup.slm();
    let tg = setup.target_grid();
    let extent = |g: &Grid| {
        let e = g.edges();
        [e[0], e[1], e[2], e[3]]
    };
    let wrapped: Vec<f64> = hologram
        .phase
        .iter()
        .map(|p| {
            (p + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI
        })
        .collect();
    let at = |r: usize, c: usize| {
        (
            (c as f64 - (tg.nx / 2) as f64 - 0.5) * tg.dx,
            (r as f64 - (tg.ny / 2) as f64 - 0.5) * tg.dy,
        )
    };
    let rects: Vec<Rect> = match target.block() {
        Some((rows, cols, r0, c0)) => {
            let (x0, y0) = at(r0, c0);
            let (x1, y1) = at(r0 + rows, c0 + cols);
            vec![Rect::new(x0, x1, y0, y1)]
        }
        None => Vec::new(),
    };
    // The target plane, or each plane of a 3-D array (the first eight).
    let len = tg.len();
    let titles: Vec<String> = target
        .planes()
        .iter()
        .take(8)
        .map(|&z| {
            if z == 0.0 {
                "target plane, as displayed".to_string()
            } else {
                format!("z = {} from the target plane", format_length(z))
            }
        })
        .collect();
    let mut panels = vec![ImagePlot {
        title: "SLM phase",
        colorbar_label: "phase (rad)",
        colormap: Colormap::Twilight,
        range: Some((-std::f64::consts::PI, std::f64::consts::PI)),
        ..ImagePlot::new(&wrapped, slm.nx, slm.ny, extent(&slm))
    }];
    for (p, title) in titles.iter().enumerate() {
        panels.push(ImagePlot {
            title,
            colorbar_label: "intensity (W/m² per W)",
            colormap: Colormap::Inferno,
            scale: Scale::Log { decades: 3.0 },
            rects: &rects,
            ..ImagePlot::new(
                &hologram.intensity[p * len..(p + 1) * len],
                tg.nx,
                tg.ny,
                extent(&tg),
            )
        });
    }
    // The image region simulated and wanted, side by side, linear.
    let crop: Vec<f64>;
    let region;
    if let (Some((wanted, rows, cols)), Some((_, _, r0, c0))) = (wanted, target.block()) {
        crop = (0..*rows)
            .flat_map(|r| (0..*cols).map(move |c| (r0 + r) * tg.nx + c0 + c))
            .map(|i| hologram.intensity[i])
            .collect();
        let (x0, y0) = at(r0, c0);
        let (x1, y1) = at(r0 + rows, c0 + cols);
        region = [x0, x1, y0, y1];
        panels.push(ImagePlot {
            title: "image region, as displayed",
            colorbar_label: "intensity",
            colormap: Colormap::Gray,
            ..ImagePlot::new(&crop, *cols, *rows, region)
        });
        panels.push(ImagePlot {
            title: "wanted",
            colorbar_label: "intensity",
            colormap: Colormap::Gray,
            ..ImagePlot::new(wanted, *cols, *rows, region)
        });
    }
    write_image_grid_png(&out.join("hologram.png"), &panels, 2, 480, 420, "hologram")?;
    if hologram.history.is_empty() {
        return Ok(());
    }
    let error: Vec<(f64, f64)> = hologram
        .history
        .iter()
        .map(|s| (s.iteration as f64, s.error))
        .collect();
    let efficiency: Vec<(f64, f64)> = hologram
        .history
        .iter()
        .map(|s| (s.iteration as f64, 1.0 - s.efficiency))
        .collect();
    let plot = LinePlot {
        title: "convergence (quantised iterations at the end)",
        x_label: "iteration",
        y_label: "error, 1 − efficiency",
        series: vec![
            Series {
                name: if target.is_spots() {
                    "spot std/mean"
                } else {
                    "intensity error"
                },
                points: &error,
            },
            Series {
                name: "1 − efficiency",
                points: &efficiency,
            },
        ],
        log_y: true,
    };
    write_line_png(&out.join("convergence.png"), &plot, 640, 420)?;
    Ok(())
}
