//! `photonflow fpm`: Fourier ptychographic microscopy — simulate the images an LED-array
//! microscope records of a thin specimen, or reconstruct the specimen's high-resolution
//! amplitude and phase (and the objective's aberrations) from recorded images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex;
use photonflow_optics::Grid;
use photonflow_optics::fpm::{Fpm, Leds, Recovery};
use photonflow_optics::io::npy::{self, NpyData, NpyDataRef};
use photonflow_optics::io::tiff::read_stack;
use photonflow_optics::pupil::zernike::name;
use photonflow_optics::units::format_length;
use serde_json::json;

use super::microscope::{Specimen, is_tiff, read_plane};
use super::psf::zernike_terms;
use super::{point, positive_length, progress_bar};
use crate::plot::{Axes, Colormap, ImagePlot, write_image_grid_png};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The images an LED-array microscope records of a thin specimen (amplitude and phase
    /// images), one per LED: [K, Ny, Nx] float64 intensities.
    Simulate(SimulateArgs),
    /// The specimen's amplitude and phase at the synthetic aperture's resolution from the
    /// images (amplitude misfit, L-BFGS), and the objective's aberrations if asked.
    Reconstruct(ReconstructArgs),
}

/// The microscope, common to both subcommands.
#[derive(Debug, clap::Args)]
struct Microscope {
    /// Vacuum wavelength of the LEDs, with unit (e.g. 630nm).
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    wavelength: f64,
    /// Numerical aperture of the objective (e.g. 0.1 for a 4× objective).
    #[arg(long, value_name = "NA")]
    na: f64,
    /// The camera's pixel in sample space (pixel pitch / magnification), with unit; at most
    /// λ/(2·NA).
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    pitch: f64,
    /// The LEDs: ROWSxCOLS of a regular array centred under the field (with --led-pitch), or a
    /// FILE.csv of `x,y` rows (lengths with units, e.g. 4mm,-2mm), one per image, in order.
    #[arg(long, value_name = "ROWSxCOLS|FILE.csv")]
    leds: String,
    /// Distance between neighbouring LEDs of a ROWSxCOLS array, with unit.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    led_pitch: Option<f64>,
    /// Height of the LED plane below the sample, with unit (e.g. 90mm).
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    led_height: f64,
    /// Turn the LED positions by this many degrees (from x towards y) about the point below
    /// the field, to match the array's orientation to the camera's.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "DEG",
        allow_hyphen_values = true
    )]
    led_rotation: f64,
    /// Mirror the LED positions: x, y or xy (after --led-rotation), to match the camera's
    /// orientation (image rows are y, columns x).
    #[arg(long, value_name = "x|y|xy")]
    led_flip: Option<String>,
    /// The field of view's centre in the sample plane relative to the point above the array's
    /// centre, X,Y with units (for a tile off the axis).
    #[arg(
        long,
        value_name = "X,Y",
        allow_hyphen_values = true,
        default_value = "0,0"
    )]
    centre: String,
    /// The LEDs' falloff in brightness with angle, cos^P θ: 4 for flat (Lambertian) LEDs, 3 for
    /// isotropic point sources; 0: all equally bright.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    led_falloff: f64,
    /// Multiplexed illumination: a FILE.csv with one line per image listing the LEDs lit at
    /// once (numbers from 0 in the order of --leds, separated by commas or spaces).
    #[arg(long, value_name = "FILE.csv")]
    patterns: Option<PathBuf>,
    /// Known aberrations of the objective as Noll index = radians RMS, e.g. 4=0.5,5=-0.2.
    #[arg(long, value_name = "J=RAD,…", value_delimiter = ',')]
    zernike: Vec<String>,
}

/// Arguments of `photonflow fpm simulate`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct SimulateArgs {
    #[command(flatten)]
    specimen: Specimen,
    #[command(flatten)]
    microscope: Microscope,
    /// How much finer the specimen is sampled than the camera: the specimen's images are
    /// sampled at --pitch / --upsample, and their size must be a multiple of it.
    #[arg(long, default_value_t = 4, value_name = "N")]
    upsample: usize,
    /// Shot noise: mean photons per pixel at the intensity of a clear bright-field image
    /// (0: none).
    #[arg(long, default_value_t = 0.0, value_name = "N")]
    photons: f64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output: the images, [K, Ny, Nx] float64 (1: a clear bright-field image).
    #[arg(long, short, value_name = "IMAGES.npy")]
    out: PathBuf,
    /// Also plot the specimen and the images of the LED closest to the axis and of the
    /// farthest.
    #[arg(long, value_name = "FILE.png")]
    png: Option<PathBuf>,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `photonflow fpm reconstruct`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct ReconstructArgs {
    /// The images: [K, Ny, Nx] intensities (.npy of float or unsigned integers, or a
    /// multi-page TIFF), or a folder of one image per LED (PNG, 8/16-bit, or TIFF) taken in
    /// the natural order of their names; one per LED in the order of --leds, a dark frame
    /// already subtracted.
    #[arg(long, value_name = "IMAGES.npy|.tif|DIR")]
    images: PathBuf,
    #[command(flatten)]
    microscope: Microscope,
    /// How much finer the reconstruction is sampled than the camera (default: the least
    /// that holds the synthetic aperture).
    #[arg(long, value_name = "N")]
    upsample: Option<usize>,
    /// Most L-BFGS iterations (it stops earlier once the misfit no longer falls).
    #[arg(long, default_value_t = 300, value_name = "N")]
    iterations: usize,
    /// Recover the objective's aberrations Z4 … Z<J> (Noll) with the specimen (0: the pupil
    /// is --zernike, or ideal).
    #[arg(long, default_value_t = 0, value_name = "J")]
    pupil: usize,
    /// Start from this object (an earlier result's OBJECT.npy) instead of the upsampled
    /// image of the LED closest to the axis.
    #[arg(long, value_name = "OBJECT.npy")]
    initial: Option<PathBuf>,
    /// Output: the object's complex transmittance, [Ny·upsample, Nx·upsample] complex128.
    #[arg(long, short, value_name = "OBJECT.npy")]
    out: PathBuf,
    /// Also plot the amplitude, the phase, the image of the LED closest to the axis (what
    /// the objective alone resolves) and the recovered pupil's phase.
    #[arg(long, value_name = "FILE.png")]
    png: Option<PathBuf>,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Simulate(a) => simulate(a),
        Command::Reconstruct(a) => reconstruct(a),
    }
}

/// The LEDs lit for each image by `--patterns` (empty without).
fn patterns(m: &Microscope) -> anyhow::Result<Vec<Vec<usize>>> {
    let Some(path) = &m.patterns else {
        return Ok(Vec::new());
    };
    let flag = || format!("--patterns {}", path.display());
    let body = std::fs::read_to_string(path).with_context(flag)?;
    let mut out = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let leds = line
            .split([',', ' ', '\t'])
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<usize>())
            .collect::<Result<Vec<_>, _>>();
        match leds {
            Ok(leds) => out.push(leds),
            // A header line.
            Err(_) if i == 0 && out.is_empty() => {}
            Err(_) => bail!(
                "{}: line {}: {line:?} is not a list of LED numbers (from 0, e.g. 0,5,12)",
                flag(),
                i + 1
            ),
        }
    }
    if out.is_empty() {
        bail!(
            "{}: no patterns (one line of LED numbers per image)",
            flag()
        );
    }
    Ok(out)
}

/// The LEDs of `--leds` (with `--led-height`), turned by `--led-rotation` and mirrored by
/// `--led-flip`.
fn leds(m: &Microscope) -> anyhow::Result<Leds> {
    let mut leds = led_positions(m)?;
    if !m.led_rotation.is_finite() {
        bail!("--led-rotation {}: give degrees, e.g. 90", m.led_rotation);
    }
    let (sin, cos) = m.led_rotation.to_radians().sin_cos();
    let (fx, fy) = match m
        .led_flip
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => (1.0, 1.0),
        Some("x") => (-1.0, 1.0),
        Some("y") => (1.0, -1.0),
        Some("xy" | "yx") => (-1.0, -1.0),
        Some(other) => bail!("--led-flip {other}: give x, y or xy"),
    };
    for p in &mut leds.positions {
        let [x, y] = *p;
        *p = [fx * (cos * x - sin * y), fy * (sin * x + cos * y)];
    }
    Ok(leds)
}

/// The LED positions of `--leds` as written.
fn led_positions(m: &Microscope) -> anyhow::Result<Leds> {
    let text = m.leds.trim();
    let lower = text.to_ascii_lowercase();
    if lower.ends_with(".csv") || lower.ends_with(".txt") {
        if m.led_pitch.is_some() {
            bail!("--led-pitch is for a ROWSxCOLS array; --leds {text} gives every position");
        }
        let body = std::fs::read_to_string(text)
            .with_context(|| format!("--leds {text}: cannot read it"))?;
        let mut out = Vec::new();
        for (i, line) in body.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match point("--leds", line) {
                Ok((x, y)) => out.push([x, y]),
                // A header line.
                Err(_) if i == 0 && !line.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
                }
                Err(e) => bail!("--leds {text}: line {}: {e}", i + 1),
            }
        }
        if out.is_empty() {
            bail!("--leds {text}: no `x,y` rows (lengths with units, e.g. 4mm,-2mm)");
        }
        return Ok(Leds {
            positions: out,
            height: m.led_height,
        });
    }
    let parsed = lower
        .split_once('x')
        .and_then(|(r, c)| {
            Some((
                r.trim().parse::<usize>().ok()?,
                c.trim().parse::<usize>().ok()?,
            ))
        })
        .filter(|&(r, c)| r > 0 && c > 0 && r * c <= 100_000);
    let Some((rows, cols)) = parsed else {
        bail!(
            "--leds {text}: give ROWSxCOLS (e.g. 15x15, with --led-pitch) or a .csv of LED \
             positions"
        );
    };
    let Some(pitch) = m.led_pitch else {
        bail!("--leds {text}: give the array's --led-pitch (e.g. 4mm)");
    };
    Ok(Leds::array(rows, cols, pitch, m.led_height))
}

/// The microscope of the flags for `camera`, upsampled by `upsample` (`None`: the least that
/// holds the synthetic aperture).
fn microscope(m: &Microscope, camera: Grid, upsample: Option<usize>) -> anyhow::Result<Fpm> {
    if !(m.na.is_finite() && m.na > 0.0 && m.na < 1.6) {
        bail!(
            "--na {}: give the objective's numerical aperture, e.g. 0.1",
            m.na
        );
    }
    let (cx, cy) = point("--centre", &m.centre)?;
    let leds = leds(m)?;
    let mut fpm = Fpm {
        camera,
        wavelength: m.wavelength,
        na: m.na,
        upsample: 1,
        illuminations: leds.directions([cx, cy]).context("--leds, --led-height")?,
        aberrations: zernike_terms(&m.zernike)?,
        patterns: patterns(m)?,
        brightness: if m.led_falloff == 0.0 {
            Vec::new()
        } else {
            leds.falloff([cx, cy], m.led_falloff)
                .map_err(|e| anyhow::anyhow!("--led-falloff: {e}"))?
        },
    };
    fpm.upsample = match upsample {
        Some(0) => bail!("--upsample must be at least 1"),
        Some(u) => u,
        None => fpm.least_upsample().map_err(named)?,
    };
    fpm.check().map_err(named)?;
    Ok(fpm)
}

/// A microscope's error, prefixed with the flag that sets what it names.
fn named(e: photonflow_optics::OpticsError) -> anyhow::Error {
    let flag = match &e {
        photonflow_optics::OpticsError::InvalidParameter { name, .. } => match *name {
            "camera pitch" => "--pitch",
            "pattern" => "--patterns",
            "brightness" => "--led-falloff",
            "upsample" => "--upsample",
            "wavelength" => "--wavelength",
            "numerical aperture" => "--na",
            "Zernike coefficient" | "Zernike index" => "--zernike",
            _ => "the microscope (--leds, --led-height, --centre)",
        },
        _ => "the microscope",
    };
    anyhow::anyhow!("{flag}: {e}")
}

/// Summary numbers of a microscope, for text and JSON.
struct Summary {
    synthetic_na: f64,
    resolution: f64,
    bright: usize,
    overlap: Option<f64>,
}

fn summary(fpm: &Fpm) -> Summary {
    let synthetic_na = fpm.synthetic_na();
    Summary {
        synthetic_na,
        resolution: fpm.wavelength / synthetic_na,
        bright: fpm.bright_field(),
        overlap: fpm.overlap(),
    }
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    if !(args.photons.is_finite() && args.photons >= 0.0) {
        bail!(
            "--photons {}: give a mean photon count ≥ 0 (0: no noise)",
            args.photons
        );
    }
    let (ny, nx, object) = args.specimen.read()?;
    let u = args.upsample;
    if u == 0 || nx % u != 0 || ny % u != 0 {
        bail!(
            "--upsample {u}: the specimen's {nx}×{ny} pixels must be a whole number of camera \
             pixels of --upsample specimen pixels each (crop it, or choose another --upsample)"
        );
    }
    let m = &args.microscope;
    let camera = Grid::new(nx / u, ny / u, m.pitch, m.pitch)?;
    let fpm = microscope(m, camera, Some(u))?;
    let start = Instant::now();
    let mut images = fpm.images(&object).context("simulating the images")?;
    if args.photons > 0.0 {
        let mut rng = photonflow_optics::rng::Rng::new(args.seed);
        for v in &mut images {
            *v = rng.poisson(*v * args.photons) as f64 / args.photons;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let k = fpm.image_count();
    let (cy, cx) = (ny / u, nx / u);
    npy::write_npy(&args.out, &[k, cy, cx], NpyDataRef::F64(&images))
        .with_context(|| format!("cannot write --out {}", args.out.display()))?;
    if let Some(png) = &args.png {
        let (near, far) = extremes(&fpm);
        let plane = cy * cx;
        let amp: Vec<f64> = object.iter().map(|v| v.norm()).collect();
        let ph: Vec<f64> = object.iter().map(|v| v.arg()).collect();
        let panels = [
            Panel::new(
                "specimen amplitude",
                &amp,
                [ny, nx],
                "amplitude",
                Colormap::Gray,
            ),
            Panel::new(
                "specimen phase",
                &ph,
                [ny, nx],
                "phase (rad)",
                Colormap::Twilight,
            ),
            Panel::new(
                "image, LED nearest the axis",
                &images[near * plane..][..plane],
                [cy, cx],
                "intensity",
                Colormap::Gray,
            ),
            Panel::new(
                "image, farthest LED",
                &images[far * plane..][..plane],
                [cy, cx],
                "intensity",
                Colormap::Gray,
            ),
        ];
        write_panels(
            png,
            &panels,
            &fpm,
            "Fourier ptychography: specimen and images",
        )
        .with_context(|| format!("cannot write --png {}", png.display()))?;
    }
    let s = summary(&fpm);
    if args.json {
        println!(
            "{}",
            json!({
                "images": k,
                "shape": [k, cy, cx],
                "bright_field": s.bright,
                "synthetic_na": s.synthetic_na,
                "resolution_m": s.resolution,
                "overlap": s.overlap,
                "photons": args.photons,
                "seconds": seconds,
                "out": args.out,
            })
        );
    } else {
        println!(
            "{k} images ({} bright field) of {cx}×{cy} pixels → {}: synthetic NA {:.3} \
             (objective {}), resolution {} (objective {}), {:.2} s",
            s.bright,
            args.out.display(),
            s.synthetic_na,
            fpm.na,
            format_length(s.resolution),
            format_length(fpm.wavelength / fpm.na),
            seconds
        );
    }
    Ok(())
}

/// The images of `--images` as f64 intensities, `(K, Ny, Nx)`.
fn read_images(path: &Path) -> anyhow::Result<([usize; 3], Vec<f64>)> {
    let flag = || format!("--images {}", path.display());
    if path.is_dir() {
        return read_folder(path);
    }
    if is_tiff(path) {
        let s = read_stack(path).with_context(flag)?;
        return Ok((s.shape, s.data.iter().map(|&v| f64::from(v)).collect()));
    }
    let (shape, values) = super::read_real_npy(
        path,
        "--images",
        "complex values; the images are the camera's intensities (real)",
    )?;
    let [k, ny, nx] = shape[..] else {
        bail!(
            "{}: shape {:?}; the images are [K, Ny, Nx], one per LED",
            flag(),
            shape
        );
    };
    Ok(([k, ny, nx], values))
}

/// A folder of one image per LED (PNG, 8- or 16-bit, or single-page TIFF), in the natural
/// order of their names (`img2` before `img10`).
fn read_folder(dir: &Path) -> anyhow::Result<([usize; 3], Vec<f64>)> {
    let flag = || format!("--images {}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(flag)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| {
                    matches!(
                        e.to_ascii_lowercase().to_str(),
                        Some("png" | "tif" | "tiff")
                    )
                })
        })
        .collect();
    if files.is_empty() {
        bail!("{}: no .png, .tif or .tiff images in the folder", flag());
    }
    files.sort_by(|a, b| natural_order(&a.to_string_lossy(), &b.to_string_lossy()));
    let mut shape = None;
    let mut values = Vec::new();
    for file in &files {
        let (ny, nx, v) = read_plane(file, "--images", false)?;
        match shape {
            None => shape = Some((ny, nx)),
            Some(s) if s != (ny, nx) => bail!(
                "{}: {} is {nx}×{ny} pixels, the first image {}×{}; give images of one size",
                flag(),
                file.display(),
                s.1,
                s.0
            ),
            Some(_) => {}
        }
        values.extend(v);
    }
    let (ny, nx) = shape.unwrap_or_default();
    Ok(([files.len(), ny, nx], values))
}

/// Orders names with their runs of digits compared as numbers (`img2` < `img10`).
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, run)) if *d == digit => run.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    }
    let (ra, rb) = (runs(a), runs(b));
    for (x, y) in ra.iter().zip(&rb) {
        let order = match (x, y) {
            ((true, p), (true, q)) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then_with(|| p.cmp(q))
            }
            _ => x.1.cmp(&y.1),
        };
        if order.is_ne() {
            return order;
        }
    }
    ra.len().cmp(&rb.len()).then_with(|| a.cmp(b))
}

fn reconstruct(args: ReconstructArgs) -> anyhow::Result<()> {
    let ([k, ny, nx], images) = read_images(&args.images)?;
    let m = &args.microscope;
    let fpm = microscope(m, Grid::new(nx, ny, m.pitch, m.pitch)?, args.upsample)?;
    if fpm.image_count() != k {
        bail!(
            "--images {} holds {k} images but {} {}; give one LED (or one --patterns line) per \
             image, in order",
            args.images.display(),
            if fpm.patterns.is_empty() {
                "--leds gives"
            } else {
                "--patterns gives"
            },
            if fpm.patterns.is_empty() {
                format!("{} LEDs", fpm.illuminations.len())
            } else {
                format!("{} patterns", fpm.patterns.len())
            }
        );
    }
    let grid = fpm.object_grid()?;
    let initial = match &args.initial {
        Some(path) => {
            let flag = || format!("--initial {}", path.display());
            let array = npy::read_npy(path).with_context(flag)?;
            if array.shape[..] != [grid.ny, grid.nx] {
                bail!(
                    "{}: shape {:?}; the object to start from is [{}, {}] (the images × \
                     --upsample {})",
                    flag(),
                    array.shape,
                    grid.ny,
                    grid.nx,
                    fpm.upsample
                );
            }
            Some(match array.data {
                NpyData::C128(v) => v,
                NpyData::C64(v) => v
                    .into_iter()
                    .map(|z| Complex::new(f64::from(z.re), f64::from(z.im)))
                    .collect(),
                _ => bail!(
                    "{}: give a complex object (an earlier reconstruction's --out)",
                    flag()
                ),
            })
        }
        None => None,
    };
    let settings = Recovery {
        iterations: args.iterations,
        pupil: args.pupil,
        initial,
    };
    let bar = progress_bar(
        args.json,
        args.iterations as u64,
        "reconstructing {bar:30} {pos}/{len} iterations, misfit {msg} eta {eta}",
    );
    let start = Instant::now();
    let out = fpm
        .reconstruct(&images, &settings, |done, misfit| {
            bar.set_position(done as u64);
            bar.set_message(format!("{misfit:.3e}"));
        })
        .map_err(|e| {
            let flag = match &e {
                photonflow_optics::OpticsError::InvalidParameter { name: "pupil", .. } => {
                    "--pupil".to_string()
                }
                _ => format!("reconstructing from --images {}", args.images.display()),
            };
            anyhow::anyhow!("{flag}: {e}")
        })?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    npy::write_npy(
        &args.out,
        &[grid.ny, grid.nx],
        NpyDataRef::C128(&out.object),
    )
    .with_context(|| format!("cannot write --out {}", args.out.display()))?;
    if let Some(png) = &args.png {
        let (near, _) = extremes(&fpm);
        let plane = nx * ny;
        let amp: Vec<f64> = out.object.iter().map(|v| v.norm()).collect();
        let ph: Vec<f64> = out.object.iter().map(|v| v.arg()).collect();
        let raw: Vec<f64> = images[near * plane..][..plane].to_vec();
        let pupil = pupil_phase(&out.aberrations)?;
        let panels = [
            Panel::new(
                "amplitude",
                &amp,
                [grid.ny, grid.nx],
                "amplitude",
                Colormap::Gray,
            ),
            Panel::new(
                "phase",
                &ph,
                [grid.ny, grid.nx],
                "phase (rad)",
                Colormap::Twilight,
            ),
            Panel::new(
                "image, LED nearest the axis",
                &raw,
                [ny, nx],
                "intensity",
                Colormap::Gray,
            ),
            Panel {
                pupil: true,
                ..Panel::new(
                    "pupil phase",
                    &pupil,
                    [PUPIL, PUPIL],
                    "phase (rad)",
                    Colormap::Diverging,
                )
            },
        ];
        write_panels(png, &panels, &fpm, "Fourier ptychographic reconstruction")
            .with_context(|| format!("cannot write --png {}", png.display()))?;
    }
    let s = summary(&fpm);
    let terms: Vec<_> = out
        .aberrations
        .iter()
        .map(|&(j, c)| json!({"noll": j, "name": name(j), "rad": c}))
        .collect();
    if args.json {
        println!(
            "{}",
            json!({
                "images": k,
                "shape": [grid.ny, grid.nx],
                "upsample": fpm.upsample,
                "pitch_m": grid.dx,
                "bright_field": s.bright,
                "synthetic_na": s.synthetic_na,
                "resolution_m": s.resolution,
                "overlap": s.overlap,
                "iterations": out.iterations,
                "misfit_start": out.start,
                "misfit": out.misfit,
                "zernike": terms,
                "seconds": seconds,
                "out": args.out,
            })
        );
    } else {
        println!(
            "{k} images ({} bright field) → {} ({}×{} complex128, {} pixels, ×{}): synthetic \
             NA {:.3}, resolution {} (objective alone {}); misfit {:.3e} → {:.3e} in {} \
             iterations, {:.1} s",
            s.bright,
            args.out.display(),
            grid.nx,
            grid.ny,
            format_length(grid.dx),
            fpm.upsample,
            s.synthetic_na,
            format_length(s.resolution),
            format_length(fpm.wavelength / fpm.na),
            out.start,
            out.misfit,
            out.iterations,
            seconds
        );
        if let Some(o) = s.overlap
            && o < 0.4
        {
            println!(
                "note: neighbouring LEDs' pupils overlap by only {:.0} % (40 % or more is advised: \
                 LEDs closer together or farther below)",
                o * 100.0
            );
        }
        if args.pupil >= 4 {
            let text: Vec<String> = out
                .aberrations
                .iter()
                .map(|&(j, c)| format!("Z{j} {c:+.3}"))
                .collect();
            println!("pupil (rad RMS): {}", text.join(", "));
        }
    }
    Ok(())
}

/// The images lit closest to the axis and farthest from it (by their LED nearest the axis).
fn extremes(fpm: &Fpm) -> (usize, usize) {
    let r = |i: usize| fpm.illuminations[i][0].hypot(fpm.illuminations[i][1]);
    let r: Vec<f64> = if fpm.patterns.is_empty() {
        (0..fpm.illuminations.len()).map(r).collect()
    } else {
        fpm.patterns
            .iter()
            .map(|p| p.iter().map(|&i| r(i)).fold(f64::INFINITY, f64::min))
            .collect()
    };
    let by = |better: fn(f64, f64) -> bool| {
        (0..r.len()).fold(0, |b, i| if better(r[i], r[b]) { i } else { b })
    };
    (by(|a, b| a < b), by(|a, b| a > b))
}

/// Samples across the plotted pupil.
const PUPIL: usize = 129;

/// The pupil's phase `Σ c_j Z_j` on a `PUPIL × PUPIL` map of the unit disc (NaN outside).
fn pupil_phase(terms: &[(usize, f64)]) -> anyhow::Result<Vec<f64>> {
    let aberration = photonflow_optics::pupil::zernike::Aberration::new(terms)?;
    let half = (PUPIL / 2) as f64;
    Ok((0..PUPIL * PUPIL)
        .map(|i| {
            let (x, y) = (
                ((i % PUPIL) as f64 - half) / half,
                ((i / PUPIL) as f64 - half) / half,
            );
            let rho = x.hypot(y);
            if rho > 1.0 {
                return f64::NAN;
            }
            aberration.at(rho, y.atan2(x))
        })
        .collect())
}

/// One panel of a figure: values in file order (row 0 at the top).
struct Panel<'a> {
    title: &'a str,
    values: &'a [f64],
    shape: [usize; 2],
    label: &'a str,
    colormap: Colormap,
    /// A pupil map (axes in units of NA/λ) rather than an image of the sample.
    pupil: bool,
}

impl<'a> Panel<'a> {
    fn new(
        title: &'a str,
        values: &'a [f64],
        shape: [usize; 2],
        label: &'a str,
        colormap: Colormap,
    ) -> Self {
        Self {
            title,
            values,
            shape,
            label,
            colormap,
            pupil: false,
        }
    }
}

/// The panels side by side, images over the field of view (row 0 at the top).
fn write_panels(path: &Path, panels: &[Panel], fpm: &Fpm, title: &str) -> anyhow::Result<()> {
    let (w, h) = (
        fpm.camera.nx as f64 * fpm.camera.dx,
        fpm.camera.ny as f64 * fpm.camera.dy,
    );
    let flipped: Vec<Vec<f64>> = panels
        .iter()
        .map(|p| {
            p.values
                .chunks(p.shape[1])
                .rev()
                .flatten()
                .copied()
                .collect()
        })
        .collect();
    let plots: Vec<ImagePlot> = panels
        .iter()
        .zip(&flipped)
        .map(|(p, v)| {
            let extent = if p.pupil {
                [-1.0, 1.0, -1.0, 1.0]
            } else {
                [0.0, w, 0.0, h]
            };
            let mut plot = ImagePlot {
                title: p.title,
                colorbar_label: p.label,
                colormap: p.colormap,
                ..ImagePlot::new(v, p.shape[1], p.shape[0], extent)
            };
            if p.pupil {
                plot.axes = Axes::Index {
                    x: "fx / (NA/λ)",
                    y: "fy / (NA/λ)",
                };
                let top = v
                    .iter()
                    .filter(|x| x.is_finite())
                    .fold(1e-3f64, |t, x| t.max(x.abs()));
                plot.range = Some((-top, top));
            }
            plot
        })
        .collect();
    write_image_grid_png(path, &plots, 2, 420, 380, title)?;
    Ok(())
}
