//! `photonflow propagate`: read a field from .npy, propagate it, write it back.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex;
use photonflow_optics::coherence::{
    Coherence, DiscSource, Exposure, GaussianSchell, Illumination, Line, Profile,
};
use photonflow_optics::io::npy::{self, NpyData, NpyDataRef};
use photonflow_optics::propagate::{Criterion, Evanescent, Planned, Window};
use photonflow_optics::units::{format_length, parse_array};
use photonflow_optics::{
    Field, Grid, Method, OpticsError, Padding, Planner, Propagation, Real, Wave,
};
use serde_json::json;

use super::{length, point, positive_length, progress_bar};
use crate::plot;

mod polarised;
mod volume;

/// Arguments of `photonflow propagate`. A flag given twice takes its last value.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// Input field: .npy of complex64/complex128 (or float32/float64, taken as a real
    /// amplitude), shape [Ny, Nx] or [B, Ny, Nx].
    #[arg(long, short, value_name = "IN.npy")]
    input: PathBuf,
    /// Output .npy: same shape, complex64 for single-precision input, complex128 for double;
    /// with --spectrum, --source-na or --gaussian-schell the intensity, float32 or float64.
    #[arg(long, short, value_name = "OUT.npy")]
    output: PathBuf,
    /// Vacuum wavelength, with unit (e.g. 632.8nm, 0.75mm).
    #[arg(
        long,
        value_parser = positive_length,
        allow_hyphen_values = true,
        value_name = "LENGTH",
        required_unless_present = "spectrum"
    )]
    wavelength: Option<f64>,
    /// Broadband light, whose intensity is written: gaussian:CENTRE:FWHM (Gaussian in
    /// frequency, e.g. gaussian:830nm:20nm), flat:MIN:MAX (e.g. flat:500nm:550nm),
    /// lines:λ=w,λ=w (e.g. lines:532nm=1,633nm=0.5), or a file of wavelength, power rows.
    #[arg(long, value_name = "SPECTRUM", conflicts_with = "wavelength")]
    spectrum: Option<String>,
    /// Spectral lines to propagate (default: the fewest that resolve the geometry's path
    /// differences to --tolerance).
    #[arg(long, value_name = "N")]
    lines: Option<usize>,
    /// Partially coherent light from an incoherent disc source (a lamp or LED behind a
    /// condenser): the numerical aperture of its cone (e.g. 0.05). The input is the object's
    /// transmittance; the intensity is written.
    #[arg(long, value_name = "NA", allow_hyphen_values = true)]
    source_na: Option<f64>,
    /// Partially coherent light from a Gaussian Schell-model beam: its rms width and the rms
    /// width of its degree of coherence, e.g. 100um,20um. The intensity is written.
    #[arg(long, value_name = "RMS,COHERENCE", allow_hyphen_values = true)]
    gaussian_schell: Option<String>,
    /// The input is a thin element designed for this wavelength (a surface relief, a printed
    /// mask): at every other wavelength its phase, taken in [0, 2π), is φ·λ₀/λ. The intensity
    /// is written.
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    design_wavelength: Option<f64>,
    /// Accuracy of the sums over lines and modes (broadband and partially coherent light).
    #[arg(
        long,
        default_value_t = 1e-3,
        value_name = "TOL",
        allow_hyphen_values = true
    )]
    tolerance: f64,
    /// Sample pitch along x (and y unless --pitch-y is given), with unit (e.g. 8um).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    pitch: f64,
    /// Sample pitch along y, if different from x.
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    pitch_y: Option<f64>,
    /// Propagation distance with unit; negative propagates backwards (e.g. 5cm, -2mm). With
    /// --volume, the distance beyond the sample's exit face (0 for the exit face itself).
    #[arg(long, value_parser = length, allow_hyphen_values = true, value_name = "LENGTH")]
    distance: f64,
    /// A thick sample in front of the free propagation: its refractive index, float (n) or
    /// complex (n + iκ, κ absorbing), shape [Nz, Ny, Nx] on the input's grid, slices --dz
    /// thick; --index is the medium around it. Propagated by the multislice method: the input
    /// is at the entrance face, and the light leaves the exit face nz·dz later.
    #[arg(long, value_name = "RI.npy")]
    volume: Option<PathBuf>,
    /// Thickness of the slices of --volume, with unit (e.g. 0.5um).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    dz: Option<f64>,
    /// With --volume, also write the intensity inside the sample on the xz plane through the
    /// middle row, one row per slice (at its centre): [Nz, Nx] float64, or a plot (XZ.png).
    #[arg(long, value_name = "XZ.npy|XZ.png")]
    xz: Option<PathBuf>,
    /// Method: auto, asm, bl-asm, fresnel-tf, fresnel-ir, fresnel-sfft, fraunhofer, rs, or
    /// sas (scalable angular spectrum, onto an output window; far from the source).
    #[arg(long, default_value = "auto", value_name = "METHOD")]
    method: Method,
    /// Sample the output plane on a window of its own: COLSxROWS@PITCH (e.g. a camera,
    /// 640x480@5.86um). Methods: auto, bl-asm, sas, fresnel-sfft, fraunhofer.
    #[arg(long, value_name = "COLSxROWS@PITCH")]
    out_grid: Option<String>,
    /// Centre of the output window X,Y in the input's coordinates (e.g. 1mm,-0.5mm), for a
    /// window off axis; the default is on axis. Without --out-grid the window has the input's
    /// samples and pitch.
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true)]
    out_centre: Option<String>,
    /// Zero-padding factor per axis (2 = linear convolution; 1 = none, i.e. circular).
    #[arg(
        long,
        default_value_t = 2.0,
        value_name = "FACTOR",
        allow_hyphen_values = true
    )]
    pad: f64,
    /// Refractive index of the medium between the planes.
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "N",
        allow_hyphen_values = true
    )]
    index: f64,
    /// Evanescent waves in the angular-spectrum methods: decay (default) or drop.
    #[arg(long, value_enum, default_value_t = EvanescentArg::Decay)]
    evanescent: EvanescentArg,
    /// Skip the sampling check (you accept aliasing errors).
    #[arg(long)]
    no_check: bool,
    /// Also write a PNG plot of the output intensity (first field of the batch).
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Polarised light: x, y, d (+45°), a (−45°), rcp, lcp, linear:ANGLE, jones:EX,EY,
    /// radial, azimuthal, unpolarised or stokes:S0,S1,S2,S3. OUT.npy then holds E_x and E_y
    /// ([2, Ny, Nx] or [B, 2, Ny, Nx]), or for partially polarised light the Stokes images.
    #[arg(long, value_name = "STATE", conflicts_with = "vector")]
    polarisation: Option<String>,
    /// The input holds E_x and E_y: shape [2, Ny, Nx] or [B, 2, Ny, Nx].
    #[arg(long)]
    vector: bool,
    /// A Jones element at the input plane (repeat for several, applied in order):
    /// polariser:ANGLE[,EXTINCTION], hwp:ANGLE, qwp:ANGLE, retarder:DELAY,ANGLE, rotator:ANGLE,
    /// qplate:Q[,ALPHA[,DELAY]], or a .npy of [Ny, Nx, 2, 2] complex Jones matrices.
    #[arg(long, value_name = "ELEMENT", action = clap::ArgAction::Append)]
    jones: Vec<String>,
    /// A Jones element at the output plane (an analyser), as for --jones.
    #[arg(long, value_name = "ELEMENT")]
    analyser: Option<String>,
    /// Also write the longitudinal component E_z (from ∇·E = 0): OUT.npy holds E_x, E_y, E_z.
    #[arg(long)]
    ez: bool,
    /// Also write the Stokes images S0 … S3 ([4, Ny, Nx] or [B, 4, Ny, Nx], float).
    #[arg(long, value_name = "STOKES.npy")]
    stokes: Option<PathBuf>,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EvanescentArg {
    Decay,
    Drop,
}

/// Precisions that map to .npy dtypes: complex fields and real intensities.
trait NpyComplex: Real {
    fn npy(data: &[Complex<Self>]) -> NpyDataRef<'_>;
    fn npy_real(data: &[Self]) -> NpyDataRef<'_>;
}

impl NpyComplex for f32 {
    fn npy(data: &[Complex<f32>]) -> NpyDataRef<'_> {
        NpyDataRef::C64(data)
    }
    fn npy_real(data: &[f32]) -> NpyDataRef<'_> {
        NpyDataRef::F32(data)
    }
}

impl NpyComplex for f64 {
    fn npy(data: &[Complex<f64>]) -> NpyDataRef<'_> {
        NpyDataRef::C128(data)
    }
    fn npy_real(data: &[f64]) -> NpyDataRef<'_> {
        NpyDataRef::F64(data)
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if !(args.pad.is_finite() && (1.0..=64.0).contains(&args.pad)) {
        bail!(
            "--pad {}: the padding factor must be between 1 (circular convolution) and 64; 2 gives a linear convolution",
            args.pad
        );
    }
    if !(args.index.is_finite() && args.index > 0.0) {
        bail!(
            "--index {}: the refractive index must be a positive number",
            args.index
        );
    }
    let array = npy::read_npy(&args.input).with_context(|| {
        format!(
            "cannot read the input field --input {}",
            args.input.display()
        )
    })?;
    // `batch` counts scalar fields: E_x and E_y of each sample with --vector
    let (batch, ny, nx, keep_rank2) = match (args.vector, array.shape.as_slice()) {
        (false, [ny, nx]) => (1, *ny, *nx, true),
        (false, [b, ny, nx]) => (*b, *ny, *nx, false),
        (true, [2, ny, nx]) => (2, *ny, *nx, true),
        (true, [b, 2, ny, nx]) => (2 * b, *ny, *nx, false),
        (true, other) => bail!(
            "--input {}: the array has shape {other:?}; with --vector it holds E_x and E_y, shape \
             [2, Ny, Nx] or [B, 2, Ny, Nx] (stack them with numpy, e.g. np.stack([ex, ey]))",
            args.input.display()
        ),
        (false, other) => bail!(
            "--input {}: the array has shape {other:?}; propagate takes [Ny, Nx] or [B, Ny, Nx] \
             (reshape it with numpy, e.g. a.reshape(-1, ny, nx))",
            args.input.display()
        ),
    };
    if batch == 0 || ny == 0 || nx == 0 {
        bail!(
            "--input {}: the array is empty (shape {:?})",
            args.input.display(),
            array.shape
        );
    }
    let dtype = array.dtype_name();
    let input = Input {
        grid: Grid::new(nx, ny, args.pitch, args.pitch_y.unwrap_or(args.pitch))?,
        polarised: polarised::options(&args)?,
        light: illumination(&args)?,
        batch,
        keep_rank2,
        dtype,
    };
    match array.data {
        NpyData::C64(v) => go::<f32>(&args, v, input),
        NpyData::F32(v) => go::<f32>(&args, real(v), input),
        NpyData::C128(v) => go::<f64>(&args, v, input),
        NpyData::F64(v) => go::<f64>(&args, real(v), input),
        NpyData::U8(_) | NpyData::U16(_) => bail!(
            "--input {}: the array is {dtype}; a field must be complex64/complex128, or \
             float32/float64 for a real amplitude (convert it with a.astype(np.float32))",
            args.input.display()
        ),
    }
}

/// What the input file and the flags say, whatever the precision.
struct Input {
    grid: Grid,
    /// Broadband or partially coherent light; `None` for one coherent line.
    light: Option<Illumination>,
    /// The polarisation flags; `None` for scalar light.
    polarised: Option<polarised::Options>,
    /// Scalar fields in the file (E_x and E_y of each sample with `--vector`).
    batch: usize,
    /// The file had no batch axis.
    keep_rank2: bool,
    dtype: &'static str,
}

fn real<T: Real>(v: Vec<T>) -> Vec<Complex<T>> {
    v.into_iter()
        .map(|re| Complex::new(re, T::zero()))
        .collect()
}

fn go<T: NpyComplex>(args: &Args, data: Vec<Complex<T>>, input: Input) -> anyhow::Result<()> {
    let Input {
        grid,
        light,
        polarised,
        batch,
        keep_rank2,
        dtype,
    } = input;
    // the reference wavelength of broadband light: its power-weighted mean frequency
    let wavelength = match (args.wavelength, &light) {
        (Some(w), _) => w,
        (None, Some(light)) => light
            .spectrum
            .sample(1, 0.0)
            .map_err(|e| anyhow::anyhow!("--spectrum {e}"))?
            .mean_wavelength(),
        (None, None) => bail!("{NO_WAVELENGTH}"),
    };
    let wave = Wave::new(wavelength, args.index)?;
    let mut field = Field::from_vec(data, grid, wave.wavelength)?;
    field
        .check_finite()
        .with_context(|| format!("--input {} is not a usable field", args.input.display()))?;
    let volume = volume::load(args, grid)?;
    let padding = if args.pad == 1.0 {
        Padding::Circular
    } else {
        Padding::Linear(args.pad)
    };
    let mut propagation = Propagation::new(args.distance)
        .with_method(args.method)
        .with_padding(padding)
        .with_evanescent(match args.evanescent {
            EvanescentArg::Decay => Evanescent::Decay,
            EvanescentArg::Drop => Evanescent::Drop,
        })
        .with_check(!args.no_check);
    let planner = Planner::<T>::new();
    let power_in: f64 = field.power().iter().sum();
    let through = match &volume {
        Some(v) => Some(volume::run(args, v, &mut field, &planner, &propagation)?),
        None => None,
    };
    if matches!(
        args.method,
        Method::Auto | Method::FresnelSingleFft | Method::Fraunhofer | Method::Sas
    ) {
        propagation = propagation.with_support(field.support(1e-6));
    }
    let window = output_window(args, &grid, wave, padding)?;
    let describe = |e: OpticsError| {
        let context = match e {
            OpticsError::Memory { .. } => format!(
                "--pad {}: cannot propagate {} with this padding on this machine",
                args.pad,
                args.input.display()
            ),
            _ => format!(
                "cannot propagate {} over {} with --method {} (change --distance, --pad, --out-grid or --method as suggested, or pass --no-check to accept the aliasing error)",
                args.input.display(),
                format_length(args.distance),
                args.method
            ),
        };
        anyhow::Error::new(e).context(context)
    };
    let shape = |out: &Grid| -> Vec<usize> {
        if keep_rank2 {
            vec![out.ny, out.nx]
        } else {
            vec![batch, out.ny, out.nx]
        }
    };
    let mut report = json!({
        "input": args.input,
        "output": args.output,
        "dtype": dtype,
        "requested_method": args.method.name(),
        "index": wave.index,
        "distance_m": args.distance,
        "input_pitch_m": grid.dx,
        "input_pitch_y_m": grid.dy,
        "window": window.is_some(),
        "padding": padding.factor(),
        "convolution": if padding == Padding::Circular { "circular" } else { "linear" },
        "power_in": power_in,
    });
    if let Some(options) = polarised {
        return polarised::run(
            args,
            options,
            field,
            &planner,
            propagation,
            window,
            &describe,
            keep_rank2,
            report,
        );
    }
    if let Some(illumination) = light {
        return expose(
            args,
            &field,
            illumination,
            propagation,
            window,
            &planner,
            &describe,
            shape,
            report,
        );
    }
    // Through a thick sample to its exit face, and no further: nothing left to plan.
    let free = through.is_none() || args.distance != 0.0 || window.is_some();
    let plan = if free {
        let plan = planner
            .plan_onto(&grid, wave, &propagation, window.as_ref())
            .map_err(describe)?;
        Some(plan)
    } else {
        None
    };
    let start = Instant::now();
    let field = match &plan {
        Some(plan) => plan.apply(&field)?,
        None => field,
    };
    let seconds = start.elapsed().as_secs_f64();
    let power_out: f64 = field.power().iter().sum();
    let out = *field.grid();
    let shape = shape(&out);
    npy::write_npy(&args.output, &shape, T::npy(field.data()))
        .with_context(|| format!("cannot write --output {}", args.output.display()))?;
    if let Some(png) = &args.png {
        let values: Vec<f64> = field.sample(0).iter().map(|z| z.norm_sqr().f64()).collect();
        let (title, centre) = match (&plan, &volume) {
            (Some(plan), None) => (
                format!(
                    "|E|² after {} ({})",
                    format_length(args.distance),
                    plan.method()
                ),
                plan.centre(),
            ),
            (Some(plan), Some(v)) => (
                format!(
                    "|E|² {} behind a {} sample ({})",
                    format_length(args.distance),
                    format_length(v.thickness()),
                    plan.method()
                ),
                plan.centre(),
            ),
            (None, _) => ("|E|² at the sample's exit face".to_string(), (0.0, 0.0)),
        };
        write_png(png, &values, out, centre, &title)
            .with_context(|| format!("cannot write --png {}", png.display()))?;
    }
    if let Some(plan) = &plan {
        describe_plan(&mut report, plan);
    }
    let extra = json!({
        "shape": shape,
        "wavelength_m": wave.wavelength,
        "power_out": power_out,
        "seconds": seconds,
        "volume": through,
    });
    merge(&mut report, extra);
    if args.json {
        println!("{report}");
    } else {
        if let (Some(v), Some(r)) = (&volume, &through) {
            println!("{}", volume::summary(v, r));
        }
        if let Some(plan) = &plan {
            summary(args, plan, &grid, batch, dtype);
        }
        println!(
            "power out/in = {:.6}, propagation took {:.3} ms",
            power_out / power_in.max(f64::MIN_POSITIVE),
            seconds * 1e3
        );
    }
    Ok(())
}

const NO_WAVELENGTH: &str = "give --wavelength (one line) or --spectrum (broadband light)";

/// The illumination `--spectrum`, `--source-na` and `--gaussian-schell` ask for; `None` for
/// coherent monochromatic light (a field in, a field out).
fn illumination(args: &Args) -> anyhow::Result<Option<Illumination>> {
    if args.spectrum.is_none()
        && args.source_na.is_none()
        && args.gaussian_schell.is_none()
        && args.lines.is_none()
        && args.design_wavelength.is_none()
    {
        return Ok(None);
    }
    let spectrum = match (&args.spectrum, args.wavelength) {
        (Some(text), _) => Profile::parse(text).map_err(|e| anyhow::anyhow!("--spectrum {e}"))?,
        (None, Some(w)) => Profile::Lines(vec![Line {
            wavelength: w,
            weight: 1.0,
        }]),
        (None, None) => bail!("{NO_WAVELENGTH}"),
    };
    let coherence = match (args.source_na, &args.gaussian_schell) {
        (Some(_), Some(_)) => {
            bail!("--source-na and --gaussian-schell describe two different sources; give one")
        }
        (Some(na), None) => {
            if !(na.is_finite() && na >= 0.0 && na <= args.index) {
                bail!(
                    "--source-na {na}: the illumination's numerical aperture must lie in 0 … {} (the medium's index)",
                    args.index
                );
            }
            Coherence::Disc(DiscSource::new(na))
        }
        (None, Some(text)) => {
            let (rms, coherence) = point("--gaussian-schell", text)?;
            if !(rms > 0.0 && coherence > 0.0) {
                bail!(
                    "--gaussian-schell {text}: give the beam's rms width and its coherence width, both positive, e.g. 100um,20um"
                );
            }
            Coherence::GaussianSchell(GaussianSchell {
                rms_width: rms,
                coherence_width: coherence,
                centre: (0.0, 0.0),
                power: 1.0,
            })
        }
        (None, None) => Coherence::Full,
    };
    if let Some(0) = args.lines {
        bail!("--lines 0: give at least one line");
    }
    Ok(Some(Illumination {
        spectrum,
        lines: args.lines,
        coherence,
    }))
}

/// Broadband or partially coherent light: the time-averaged intensity behind the input
/// (taken as the object's transmittance), written as float32/float64.
#[allow(clippy::too_many_arguments)]
fn expose<T: NpyComplex>(
    args: &Args,
    object: &Field<T>,
    illumination: Illumination,
    propagation: Propagation,
    window: Option<Window>,
    planner: &Planner<T>,
    describe: &dyn Fn(OpticsError) -> anyhow::Error,
    shape: impl Fn(&Grid) -> Vec<usize>,
    mut report: serde_json::Value,
) -> anyhow::Result<()> {
    if !(args.tolerance.is_finite() && args.tolerance > 0.0 && args.tolerance < 1.0) {
        bail!(
            "--tolerance {}: give a number between 0 and 1 (e.g. 1e-3)",
            args.tolerance
        );
    }
    let exposure = Exposure {
        illumination: illumination.clone(),
        propagation,
        index: args.index,
        window,
        tolerance: args.tolerance,
        design_wavelength: args.design_wavelength,
    };
    let bar = progress_bar(
        args.json,
        0,
        "{spinner} propagating modes {bar:30} {pos}/{len} ({eta} left)",
    );
    let start = Instant::now();
    let image = exposure
        .run(planner, object.data(), *object.grid(), &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .map_err(describe)?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let out = image.grid;
    let values: Vec<T> = image.data.iter().map(|v| T::of(*v)).collect();
    let shape = shape(&out);
    npy::write_npy(&args.output, &shape, T::npy_real(&values))
        .with_context(|| format!("cannot write --output {}", args.output.display()))?;
    let first = &image.lines[0];
    if let Some(png) = &args.png {
        let title = format!(
            "intensity after {} ({}, {} line{} × {} mode{})",
            format_length(args.distance),
            first.method,
            image.lines.len(),
            if image.lines.len() == 1 { "" } else { "s" },
            first.modes,
            if first.modes == 1 { "" } else { "s" },
        );
        let m = out.len();
        write_png(png, &image.data[..m], out, image.centre, &title)
            .with_context(|| format!("cannot write --png {}", png.display()))?;
    }
    let power_out = image.data.iter().sum::<f64>() * out.cell_area();
    let modes: usize = image.lines.iter().map(|l| l.modes).sum();
    let lines: Vec<_> = image
        .lines
        .iter()
        .map(|l| {
            json!({
                "wavelength_m": l.line.wavelength,
                "weight": l.line.weight,
                "method": l.method.name(),
                "modes": l.modes,
            })
        })
        .collect();
    let extra = json!({
        "shape": shape,
        "intensity": true,
        "method": first.method.name(),
        "criterion": criterion_json(&first.criterion),
        "spectrum": args.spectrum,
        "source_na": args.source_na,
        "gaussian_schell": args.gaussian_schell,
        "design_wavelength_m": args.design_wavelength,
        "tolerance": args.tolerance,
        "lines": lines,
        "propagations": modes * image.batch,
        "max_path_difference_m": image.max_path_difference,
        "output_pitch_m": out.dx,
        "output_pitch_y_m": out.dy,
        "output_centre_m": [image.centre.0, image.centre.1],
        "power_out": power_out,
        "seconds": seconds,
    });
    merge(&mut report, extra);
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} → {}: intensity of {}×{}×{} behind the input, {} over {}",
            args.input.display(),
            args.output.display(),
            image.batch,
            out.ny,
            out.nx,
            first.method,
            format_length(args.distance),
        );
        let (lo, hi) = image.lines.iter().fold((f64::MAX, 0.0f64), |(lo, hi), l| {
            (lo.min(l.line.wavelength), hi.max(l.line.wavelength))
        });
        println!(
            "{} line{} ({} … {}) × {} mode{} each = {} propagations; path differences up to {} resolved to {}",
            image.lines.len(),
            if image.lines.len() == 1 { "" } else { "s" },
            format_length(lo),
            format_length(hi),
            first.modes,
            if first.modes == 1 { "" } else { "s" },
            modes * image.batch,
            format_length(image.max_path_difference),
            args.tolerance
        );
        println!(
            "output {}×{} at {} × {}, centred at ({}, {}); power out = {:.6e}, took {:.3} s",
            out.ny,
            out.nx,
            format_length(out.dx),
            format_length(out.dy),
            format_length(image.centre.0),
            format_length(image.centre.1),
            power_out,
            seconds
        );
    }
    Ok(())
}

/// Adds `extra`'s fields to the report.
fn merge(report: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(r), serde_json::Value::Object(e)) = (report.as_object_mut(), extra) {
        r.extend(e);
    }
}

fn criterion_json(c: &Criterion) -> serde_json::Value {
    json!({
        "valid": c.holds,
        "rule": c.rule,
        "limit": c.limit,
        "min_distance_m": finite_or_null(c.min_distance),
        "max_distance_m": finite_or_null(c.max_distance),
    })
}

/// The plan's part of the JSON report.
fn describe_plan<T: Real>(report: &mut serde_json::Value, plan: &Planned<T>) {
    let considered: Vec<_> = plan
        .considered()
        .iter()
        .map(|c| json!({"method": c.method.name(), "valid": c.holds, "limit": c.limit}))
        .collect();
    let out = plan.output_grid();
    let (my, mx) = plan.padded_shape();
    let centre = plan.centre();
    merge(
        report,
        json!({
            "method": plan.method().name(),
            "criterion": criterion_json(plan.criterion()),
            "considered": considered,
            "output_pitch_m": out.dx,
            "output_pitch_y_m": out.dy,
            "output_centre_m": [centre.0, centre.1],
            "padded_shape": [my, mx],
        }),
    );
}

/// The human-readable lines about a coherent propagation.
fn summary<T: Real>(args: &Args, plan: &Planned<T>, grid: &Grid, batch: usize, dtype: &str) {
    let (my, mx) = plan.padded_shape();
    let out = plan.output_grid();
    println!(
        "{} → {}: {batch}×{}×{} {dtype}, {} over {} ({}, padded to {my}×{mx})",
        args.input.display(),
        args.output.display(),
        grid.ny,
        grid.nx,
        plan.method(),
        format_length(args.distance),
        if args.pad == 1.0 {
            "circular"
        } else {
            "linear"
        },
    );
    if args.method == Method::Auto {
        println!(
            "auto: picked {} — {}",
            plan.method(),
            plan.criterion().limit
        );
    }
    if let Planned::Window(w) = plan {
        let c = w.window().centre;
        println!(
            "output window {}×{} at {} × {} (input {} × {}), centred at ({}, {})",
            out.ny,
            out.nx,
            format_length(out.dx),
            format_length(out.dy),
            format_length(grid.dx),
            format_length(grid.dy),
            format_length(c.0),
            format_length(c.1)
        );
    } else if plan.method().changes_sampling() {
        println!(
            "output pitch {} × {} (input {} × {})",
            format_length(out.dx),
            format_length(out.dy),
            format_length(grid.dx),
            format_length(grid.dy)
        );
    }
}

/// The output window `--out-grid` / `--out-centre` ask for, if any. `--method sas` always
/// runs onto one, and so does broadband light through `fresnel-sfft` or `fraunhofer`: without
/// `--out-grid`, the input's samples at the natural pitch `λ|z|/(M·d)` (M the padded samples,
/// λ the mean wavelength).
fn output_window(
    args: &Args,
    grid: &Grid,
    wave: Wave,
    padding: Padding,
) -> anyhow::Result<Option<Window>> {
    let centre = match &args.out_centre {
        Some(text) => point("--out-centre", text)?,
        None => (0.0, 0.0),
    };
    let out = match &args.out_grid {
        Some(text) => {
            let (nx, ny, pitch) =
                parse_array(text).map_err(|e| anyhow::anyhow!("--out-grid {e}"))?;
            Grid::new(nx, ny, pitch, pitch)?
        }
        // sas always runs onto a window; broadband light through a single-FFT method lands
        // on the grid its mean wavelength would have, so that every line shares it
        None if args.method.window_only()
            || (args.spectrum.is_some() && args.method.changes_sampling()) =>
        {
            if args.distance == 0.0 {
                bail!("--method {} needs a non-zero --distance", args.method);
            }
            let natural = |n: usize, d: f64| {
                wave.lambda() * args.distance.abs() / (padding.padded_len(n) as f64 * d)
            };
            Grid::new(
                grid.nx,
                grid.ny,
                natural(grid.nx, grid.dx),
                natural(grid.ny, grid.dy),
            )?
        }
        None if args.out_centre.is_some() => *grid,
        None => return Ok(None),
    };
    Ok(Some(Window::new(out, centre)?))
}

fn finite_or_null(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        serde_json::Value::Null
    }
}

fn write_png(
    path: &Path,
    values: &[f64],
    g: Grid,
    centre: (f64, f64),
    title: &str,
) -> Result<(), plot::PlotError> {
    let [x0, x1, y0, y1] = g.edges();
    let edges = [x0 + centre.0, x1 + centre.0, y0 + centre.1, y1 + centre.1];
    plot::write_image_png(
        path,
        &plot::ImagePlot {
            title,
            colorbar_label: "intensity (a.u.)",
            colormap: plot::Colormap::Inferno,
            ..plot::ImagePlot::new(values, g.nx, g.ny, edges)
        },
        900,
        760,
    )
}
