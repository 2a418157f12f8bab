//! `photonflow tomography`: optical diffraction tomography — simulate the fields a tomographic
//! microscope records of a refractive-index map, or reconstruct the map from recorded fields.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex;
use photonflow_optics::io::npy::{self, NpyData, NpyDataRef};
use photonflow_optics::propagate::multislice::Volume;
use photonflow_optics::tomography::{Reconstruction, Tomography};
use photonflow_optics::units::format_length;
use photonflow_optics::{Grid, Padding, Propagation, Wave};
use serde_json::json;

use super::{length, positive_length, progress_bar};
use crate::plot::{self, Axes, Colormap, ImagePlot};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The complex fields the microscope records of a refractive-index map (RI.npy,
    /// [Nz, Ny, Nx]) under every illumination: [K, Ny, Nx] complex128.
    Simulate(SimulateArgs),
    /// The refractive-index map from recorded fields ([K, Ny, Nx] complex, one per
    /// illumination), by fitting the multislice model (L-BFGS, total-variation prior).
    Reconstruct(ReconstructArgs),
    /// The complex fields of off-axis holograms ([K, Ny, Nx] intensities): the sideband cut
    /// out and the carrier removed, relative to sample-free holograms if given.
    Fields(FieldsArgs),
}

/// Arguments of `photonflow tomography fields`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct FieldsArgs {
    /// The holograms: [K, Ny, Nx] or [Ny, Nx] intensities (float or unsigned integers, as the
    /// camera wrote them).
    #[arg(long, value_name = "H.npy")]
    holograms: PathBuf,
    /// Holograms of the same illuminations without the sample (one, or one per hologram): the
    /// fields are then relative to them (1 where the sample changes nothing) — for
    /// `reconstruct --relative`.
    #[arg(long, value_name = "B.npy")]
    background: Option<PathBuf>,
    /// Sample pitch on the camera, referred to the sample (camera pixel / magnification).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    pitch: f64,
    /// The sideband: FX,FY,RADIUS in cycles per µm (its centre is minus the reference's
    /// spatial frequency); default: the strongest peak outside the centre, radius a third of
    /// its distance.
    #[arg(long, value_name = "FX,FY,R", allow_hyphen_values = true)]
    sideband: Option<String>,
    /// Conjugate the fields (the other twin: for a reference tilted the other way).
    #[arg(long)]
    conjugate: bool,
    /// Output: the fields, [K, Ny, Nx] complex128.
    #[arg(long, short, value_name = "FIELDS.npy")]
    out: PathBuf,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// The microscope, common to both subcommands.
#[derive(Debug, clap::Args)]
struct Microscope {
    /// Vacuum wavelength, with unit (e.g. 532nm).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    wavelength: f64,
    /// Refractive index of the medium around the sample (e.g. 1.333 for water).
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "N",
        allow_hyphen_values = true
    )]
    index: f64,
    /// Sample pitch of the fields and the map, with unit (e.g. 0.1um).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    pitch: f64,
    /// Slice thickness of the map, with unit (e.g. 0.2um).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    dz: f64,
    /// Illuminations: FILE.csv of `sx,sy` rows (the sines of the plane waves' directions in the
    /// medium), or `+`-joined `axis` and `ring:SINE:COUNT` (e.g. axis+ring:0.3:6+ring:0.5:12).
    #[arg(long, value_name = "FILE.csv|SPEC")]
    illumination: String,
    /// The plane the camera records, relative to the sample's exit face (negative: inside,
    /// e.g. -3um for the middle of a 6 µm map).
    #[arg(long, value_parser = length, allow_hyphen_values = true, value_name = "LENGTH")]
    focus: f64,
    /// Numerical aperture of the objective (at most the medium's index).
    #[arg(long, value_name = "NA", allow_hyphen_values = true)]
    na: f64,
    /// Zero-padding factor of the multislice window (2: light leaving the field of view is
    /// lost; 1: the sample is periodic).
    #[arg(
        long,
        default_value_t = 2.0,
        value_name = "FACTOR",
        allow_hyphen_values = true
    )]
    pad: f64,
}

/// Arguments of `photonflow tomography simulate`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct SimulateArgs {
    /// The refractive-index map: float (n) or complex (n + iκ), [Nz, Ny, Nx].
    #[arg(long, value_name = "RI.npy")]
    volume: PathBuf,
    #[command(flatten)]
    microscope: Microscope,
    /// Output: the recorded fields, [K, Ny, Nx] complex128.
    #[arg(long, short, value_name = "FIELDS.npy")]
    out: PathBuf,
    /// Add complex Gaussian noise of this rms, relative to the fields' rms (e.g. 0.01).
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "RMS",
        allow_hyphen_values = true
    )]
    noise: f64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `photonflow tomography reconstruct`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct ReconstructArgs {
    /// The recorded fields: [K, Ny, Nx] complex (complex64 or complex128), one per
    /// illumination in the order --illumination lists them.
    #[arg(long, value_name = "FIELDS.npy")]
    fields: PathBuf,
    #[command(flatten)]
    microscope: Microscope,
    /// Slices of the reconstructed map.
    #[arg(long, value_name = "NZ")]
    slices: usize,
    /// Most L-BFGS iterations.
    #[arg(long, default_value_t = 100, value_name = "N")]
    iterations: usize,
    /// Weight of the total-variation prior (0: none; larger values smooth more).
    #[arg(
        long,
        default_value_t = 1e-5,
        value_name = "WEIGHT",
        allow_hyphen_values = true
    )]
    tv: f64,
    /// Output: the refractive-index map, [Nz, Ny, Nx] float64.
    #[arg(long, short, value_name = "RI.npy")]
    out: PathBuf,
    /// Also plot the index contrast on the three central planes (xy, xz, yz).
    #[arg(long, value_name = "RI.png")]
    png: Option<PathBuf>,
    /// Start from this map (an earlier reconstruction's RI.npy, [Nz, Ny, Nx]) instead of the
    /// background: to refine it with more iterations or another --tv.
    #[arg(long, value_name = "RI.npy")]
    initial: Option<PathBuf>,
    /// The fields are relative to sample-free recordings (`tomography fields --background`):
    /// they are multiplied by the model's own sample-free fields before the fit.
    #[arg(long)]
    relative: bool,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Simulate(a) => simulate(a),
        Command::Reconstruct(a) => reconstruct(a),
        Command::Fields(a) => fields(a),
    }
}

/// Holograms `[K, Ny, Nx]` (or one `[Ny, Nx]`) as f64 intensities, with `(K, Ny, Nx)`.
fn read_holograms(path: &Path, flag: &str) -> anyhow::Result<((usize, usize, usize), Vec<f64>)> {
    let (shape, values) = super::read_real_npy(
        path,
        flag,
        "holograms are intensities (real); complex fields go straight to `tomography \
         reconstruct --fields`",
    )?;
    let shape = match shape[..] {
        [ny, nx] => (1, ny, nx),
        [k, ny, nx] => (k, ny, nx),
        _ => bail!(
            "{flag} {}: shape {:?}; holograms are [K, Ny, Nx] or [Ny, Nx]",
            path.display(),
            shape
        ),
    };
    Ok((shape, values))
}

fn fields(args: FieldsArgs) -> anyhow::Result<()> {
    use photonflow_optics::offaxis::{Sideband, demodulate, find_sideband, normalise};
    let ((k, ny, nx), holograms) = read_holograms(&args.holograms, "--holograms")?;
    let grid = Grid::new(nx, ny, args.pitch, args.pitch)?;
    let sideband = match &args.sideband {
        Some(text) => {
            let v: Vec<f64> = text
                .split(',')
                .map(|t| t.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    anyhow::anyhow!(
                        "--sideband {text}: give FX,FY,R in cycles per µm, e.g. -1.4,-0.9,0.5"
                    )
                })?;
            let [fx, fy, r] = v[..] else {
                bail!("--sideband {text}: give three numbers FX,FY,R (cycles per µm)");
            };
            Sideband {
                centre: [fx * 1e6, fy * 1e6],
                radius: r * 1e6,
            }
        }
        None => find_sideband(&grid, &holograms, 0.0)
            .context("--holograms: finding the sideband (give it with --sideband FX,FY,R)")?,
    };
    let mut out = demodulate(&grid, &holograms, &sideband).context("--sideband")?;
    let relative = match &args.background {
        Some(path) => {
            let ((kb, nyb, nxb), b) = read_holograms(path, "--background")?;
            if (nyb, nxb) != (ny, nx) || !(kb == 1 || kb == k) {
                bail!(
                    "--background {}: {kb}×{nyb}×{nxb}; give one hologram or one per hologram \
                     ({k}), of {ny}×{nx} samples",
                    path.display()
                );
            }
            let reference = demodulate(&grid, &b, &sideband)?;
            if kb == 1 {
                normalise(&mut out, &reference, 0.05)?;
            } else {
                for (f, r) in out.chunks_mut(ny * nx).zip(reference.chunks(ny * nx)) {
                    normalise(f, r, 0.05)?;
                }
            }
            true
        }
        None => false,
    };
    if args.conjugate {
        out.iter_mut().for_each(|v| *v = v.conj());
    }
    npy::write_npy(&args.out, &[k, ny, nx], NpyDataRef::C128(&out))
        .with_context(|| format!("cannot write --out {}", args.out.display()))?;
    let [fx, fy] = sideband.centre;
    if args.json {
        println!(
            "{}",
            json!({
                "holograms": k,
                "shape": [k, ny, nx],
                "sideband_per_um": [fx * 1e-6, fy * 1e-6, sideband.radius * 1e-6],
                "relative": relative,
                "conjugate": args.conjugate,
                "out": args.out,
            })
        );
    } else {
        println!(
            "{k} holograms → {} ({k}×{ny}×{nx} complex128{}), sideband at ({:.4}, {:.4}) 1/µm, \
             radius {:.4} 1/µm",
            args.out.display(),
            if relative {
                ", relative to the background"
            } else {
                ""
            },
            fx * 1e-6,
            fy * 1e-6,
            sideband.radius * 1e-6
        );
    }
    Ok(())
}

/// The illumination directions of `--illumination`.
fn illuminations(text: &str) -> anyhow::Result<Vec<[f64; 2]>> {
    let flag = |why: String| anyhow::anyhow!("--illumination {text}: {why}");
    let lower = text.to_ascii_lowercase();
    if lower.ends_with(".csv") || lower.ends_with(".txt") {
        let body =
            std::fs::read_to_string(text).map_err(|e| flag(format!("cannot read it: {e}")))?;
        let mut out = Vec::new();
        for (i, line) in body.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            let values: Vec<Result<f64, _>> = line.split(',').map(|v| v.trim().parse()).collect();
            match values.as_slice() {
                [Ok(sx), Ok(sy)] => out.push([*sx, *sy]),
                _ if line.is_empty() || (i == 0 && values.iter().any(Result::is_err)) => {}
                _ => {
                    return Err(flag(format!(
                        "line {}: expected `sx,sy`, got {line:?}",
                        i + 1
                    )));
                }
            }
        }
        if out.is_empty() {
            return Err(flag("no `sx,sy` rows".into()));
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for part in text.split('+') {
        let fields: Vec<&str> = part.trim().split(':').collect();
        match fields.as_slice() {
            ["axis"] => out.push([0.0, 0.0]),
            ["ring", sine, count] => {
                let sine: f64 = sine
                    .parse()
                    .map_err(|_| flag(format!("{part}: the sine {sine:?} is not a number")))?;
                let count: usize = count.parse().map_err(|_| {
                    flag(format!("{part}: the count {count:?} is not a whole number"))
                })?;
                if count == 0 {
                    return Err(flag(format!(
                        "{part}: a ring needs at least one illumination"
                    )));
                }
                for m in 0..count {
                    let phi = std::f64::consts::TAU * m as f64 / count as f64;
                    out.push([sine * phi.cos(), sine * phi.sin()]);
                }
            }
            _ => {
                return Err(flag(format!(
                    "{part:?}: use axis, ring:SINE:COUNT (joined with +), or a .csv of sx,sy rows"
                )));
            }
        }
    }
    Ok(out)
}

/// The microscope of the flags for fields on `grid`, with `nz` slices.
fn microscope(m: &Microscope, grid: Grid, nz: usize) -> anyhow::Result<Tomography> {
    if !(m.pad.is_finite() && (1.0..=64.0).contains(&m.pad)) {
        bail!(
            "--pad {}: the padding factor must be between 1 (periodic) and 64",
            m.pad
        );
    }
    let tomography = Tomography {
        grid,
        wave: Wave::new(m.wavelength, m.index).context("--index")?,
        dz: m.dz,
        nz,
        illuminations: illuminations(&m.illumination)?,
        focus: m.focus,
        na: m.na,
        propagation: Propagation::new(0.0).with_padding(if m.pad == 1.0 {
            Padding::Circular
        } else {
            Padding::Linear(m.pad)
        }),
    };
    tomography
        .check()
        .context("the microscope (--na, --illumination, --dz)")?;
    Ok(tomography)
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let ([nz, ny, nx], index) = super::read_index_map(&args.volume)?;
    let m = &args.microscope;
    let grid = Grid::new(nx, ny, m.pitch, m.pitch)?;
    let tomography = microscope(m, grid, nz)?;
    let volume = Volume::new(grid, m.dz, index)
        .with_context(|| format!("--volume {}", args.volume.display()))?;
    if !(args.noise.is_finite() && args.noise >= 0.0) {
        bail!("--noise {}: the relative rms must be ≥ 0", args.noise);
    }
    let start = Instant::now();
    let mut fields = tomography
        .measure(&volume)
        .context("simulating the microscope")?;
    let rms = (fields.iter().map(|v| v.norm_sqr()).sum::<f64>() / fields.len() as f64).sqrt();
    if args.noise > 0.0 {
        let mut rng = photonflow_optics::rng::Rng::new(args.seed);
        let s = args.noise * rms / 2f64.sqrt();
        for v in &mut fields {
            *v += Complex::new(rng.normal(), rng.normal()) * s;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let k = tomography.illuminations.len();
    npy::write_npy(&args.out, &[k, ny, nx], NpyDataRef::C128(&fields))
        .with_context(|| format!("cannot write --out {}", args.out.display()))?;
    if args.json {
        println!(
            "{}",
            json!({
                "illuminations": k,
                "shape": [k, ny, nx],
                "slices": nz,
                "thickness_m": volume.thickness(),
                "noise": args.noise,
                "seconds": seconds,
                "out": args.out,
            })
        );
    } else {
        println!(
            "{k} illuminations through {nz} slices ({} thick) → {} ({k}×{ny}×{nx} complex128), {:.2} s",
            format_length(volume.thickness()),
            args.out.display(),
            seconds
        );
    }
    Ok(())
}

fn reconstruct(args: ReconstructArgs) -> anyhow::Result<()> {
    let array = npy::read_npy(&args.fields)
        .with_context(|| format!("--fields {}", args.fields.display()))?;
    let [k, ny, nx] = array.shape[..] else {
        bail!(
            "--fields {}: shape {:?}; recorded fields are [K, Ny, Nx], one per illumination",
            args.fields.display(),
            array.shape
        );
    };
    let measured: Vec<Complex<f64>> = match array.data {
        NpyData::C64(v) => v
            .into_iter()
            .map(|z| Complex::new(f64::from(z.re), f64::from(z.im)))
            .collect(),
        NpyData::C128(v) => v,
        _ => bail!(
            "--fields {}: the fields are {}; they must be complex (complex64 or complex128), as a \
             holographic microscope records them",
            args.fields.display(),
            array.dtype_name()
        ),
    };
    if args.slices == 0 {
        bail!("--slices must be at least 1");
    }
    let m = &args.microscope;
    let tomography = microscope(m, Grid::new(nx, ny, m.pitch, m.pitch)?, args.slices)?;
    if tomography.illuminations.len() != k {
        bail!(
            "--fields {} holds {k} fields but --illumination gives {} directions; give one \
             direction per recorded field, in order",
            args.fields.display(),
            tomography.illuminations.len()
        );
    }
    let measured = if args.relative {
        let background = tomography.background()?;
        measured
            .iter()
            .zip(&background)
            .map(|(r, b)| r * b)
            .collect()
    } else {
        measured
    };
    let initial = match &args.initial {
        Some(path) => {
            let ([nz, iy, ix], index) = super::read_index_map(path)?;
            if (nz, iy, ix) != (args.slices, ny, nx) {
                bail!(
                    "--initial {}: {nz}×{iy}×{ix}; the map to start from must be --slices × the \
                     fields' {ny}×{nx}",
                    path.display()
                );
            }
            Some(
                Volume::new(tomography.grid, m.dz, index)
                    .with_context(|| format!("--initial {}", path.display()))?,
            )
        }
        None => None,
    };
    let settings = Reconstruction {
        iterations: args.iterations,
        tv: args.tv,
        initial,
    };
    let bar = progress_bar(
        args.json,
        args.iterations as u64,
        "reconstructing {bar:30} {pos}/{len} iterations, objective {msg} eta {eta}",
    );
    let start = Instant::now();
    let (volume, report) = tomography
        .reconstruct(&measured, &settings, |done, objective| {
            bar.set_position(done as u64);
            bar.set_message(format!("{objective:.3e}"));
        })
        .with_context(|| format!("reconstructing from --fields {}", args.fields.display()))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let n: Vec<f64> = volume.index().iter().map(|v| v.re).collect();
    npy::write_npy(&args.out, &[args.slices, ny, nx], NpyDataRef::F64(&n))
        .with_context(|| format!("cannot write --out {}", args.out.display()))?;
    if let Some(png) = &args.png {
        write_planes(png, &n, &volume, m.index)
            .with_context(|| format!("cannot write --png {}", png.display()))?;
    }
    let (lo, hi) = n
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if args.json {
        println!(
            "{}",
            json!({
                "shape": [args.slices, ny, nx],
                "illuminations": k,
                "iterations": report.iterations,
                "objective_start": report.start,
                "objective_end": report.end,
                "misfit": report.misfit,
                "index_min": lo,
                "index_max": hi,
                "seconds": seconds,
                "out": args.out,
            })
        );
    } else {
        println!(
            "{k} fields → {} ({}×{ny}×{nx} float64): index {lo:.4} … {hi:.4}; misfit {:.3e} \
             (objective {:.3e} → {:.3e} in {} iterations), {:.1} s",
            args.out.display(),
            args.slices,
            report.misfit,
            report.start,
            report.end,
            report.iterations,
            seconds
        );
    }
    Ok(())
}

/// The index contrast on the central xy, xz and yz planes, side by side.
fn write_planes(path: &Path, n: &[f64], volume: &Volume, n0: f64) -> Result<(), plot::PlotError> {
    let g = volume.grid();
    let (nz, ny, nx) = (volume.nz(), g.ny, g.nx);
    let at = |k: usize, j: usize, i: usize| n[(k * ny + j) * nx + i] - n0;
    let xy: Vec<f64> = (0..ny)
        .flat_map(|j| (0..nx).map(move |i| at(nz / 2, j, i)))
        .collect();
    let xz: Vec<f64> = (0..nz)
        .flat_map(|k| (0..nx).map(move |i| at(k, ny / 2, i)))
        .collect();
    let yz: Vec<f64> = (0..nz)
        .flat_map(|k| (0..ny).map(move |j| at(k, j, nx / 2)))
        .collect();
    let top = n.iter().map(|v| (v - n0).abs()).fold(1e-12, f64::max);
    let [x0, x1, y0, y1] = g.edges();
    let depth = volume.thickness();
    let panel = |title, values, cols, rows, extent, (x, y)| ImagePlot {
        title,
        colorbar_label: "n − n₀",
        colormap: Colormap::Diverging,
        range: Some((-top, top)),
        axes: Axes::Lengths { x, y },
        ..ImagePlot::new(values, cols, rows, extent)
    };
    let panels = [
        panel(
            "xy (middle slice)",
            &xy[..],
            nx,
            ny,
            [x0, x1, y0, y1],
            ("x", "y"),
        ),
        panel(
            "xz (middle row)",
            &xz[..],
            nx,
            nz,
            [x0, x1, 0.0, depth],
            ("x", "z"),
        ),
        panel(
            "yz (middle column)",
            &yz[..],
            ny,
            nz,
            [y0, y1, 0.0, depth],
            ("y", "z"),
        ),
    ];
    plot::write_image_grid_png(path, &panels, 3, 420, 380, "reconstructed refractive index")
}
