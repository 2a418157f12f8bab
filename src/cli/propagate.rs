//! `photonflow propagate`: read a field from .npy, propagate it, write it back.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex;
use photonflow_optics::io::npy::{self, NpyData, NpyDataRef};
use photonflow_optics::propagate::{Criterion, Evanescent, Plan, Window};
use photonflow_optics::units::{format_length, parse_array};
use photonflow_optics::{
    Field, Grid, Method, OpticsError, Padding, Planner, Propagation, Real, Wave,
};
use serde_json::json;

use super::{length, point, positive_length};
use crate::plot;

/// Arguments of `photonflow propagate`. A flag given twice takes its last value.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// Input field: .npy of complex64/complex128 (or float32/float64, taken as a real
    /// amplitude), shape [Ny, Nx] or [B, Ny, Nx].
    #[arg(long, short, value_name = "IN.npy")]
    input: PathBuf,
    /// Output .npy: same shape, complex64 for single-precision input, complex128 for double.
    #[arg(long, short, value_name = "OUT.npy")]
    output: PathBuf,
    /// Vacuum wavelength, with unit (e.g. 632.8nm, 0.75mm).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    wavelength: f64,
    /// Sample pitch along x (and y unless --pitch-y is given), with unit (e.g. 8um).
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    pitch: f64,
    /// Sample pitch along y, if different from x.
    #[arg(long, value_parser = positive_length, allow_hyphen_values = true, value_name = "LENGTH")]
    pitch_y: Option<f64>,
    /// Propagation distance with unit; negative propagates backwards (e.g. 5cm, -2mm).
    #[arg(long, value_parser = length, allow_hyphen_values = true, value_name = "LENGTH")]
    distance: f64,
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
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EvanescentArg {
    Decay,
    Drop,
}

/// Complex precisions that map to an .npy dtype.
trait NpyComplex: Real {
    fn npy(data: &[Complex<Self>]) -> NpyDataRef<'_>;
}

impl NpyComplex for f32 {
    fn npy(data: &[Complex<f32>]) -> NpyDataRef<'_> {
        NpyDataRef::C64(data)
    }
}

impl NpyComplex for f64 {
    fn npy(data: &[Complex<f64>]) -> NpyDataRef<'_> {
        NpyDataRef::C128(data)
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
    let (batch, ny, nx, keep_rank2) = match array.shape.as_slice() {
        [ny, nx] => (1, *ny, *nx, true),
        [b, ny, nx] => (*b, *ny, *nx, false),
        other => bail!(
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
    let grid = Grid::new(nx, ny, args.pitch, args.pitch_y.unwrap_or(args.pitch))?;
    let wave = Wave::new(args.wavelength, args.index)?;
    match array.data {
        NpyData::C64(v) => go::<f32>(&args, v, grid, wave, batch, keep_rank2, dtype),
        NpyData::F32(v) => go::<f32>(&args, real(v), grid, wave, batch, keep_rank2, dtype),
        NpyData::C128(v) => go::<f64>(&args, v, grid, wave, batch, keep_rank2, dtype),
        NpyData::F64(v) => go::<f64>(&args, real(v), grid, wave, batch, keep_rank2, dtype),
        NpyData::U8(_) | NpyData::U16(_) => bail!(
            "--input {}: the array is {dtype}; a field must be complex64/complex128, or \
             float32/float64 for a real amplitude (convert it with a.astype(np.float32))",
            args.input.display()
        ),
    }
}

fn real<T: Real>(v: Vec<T>) -> Vec<Complex<T>> {
    v.into_iter()
        .map(|re| Complex::new(re, T::zero()))
        .collect()
}

fn go<T: NpyComplex>(
    args: &Args,
    data: Vec<Complex<T>>,
    grid: Grid,
    wave: Wave,
    batch: usize,
    keep_rank2: bool,
    dtype: &str,
) -> anyhow::Result<()> {
    let mut field = Field::from_vec(data, grid, wave.wavelength)?;
    field
        .check_finite()
        .with_context(|| format!("--input {} is not a usable field", args.input.display()))?;
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
    if matches!(
        args.method,
        Method::Auto | Method::FresnelSingleFft | Method::Fraunhofer | Method::Sas
    ) {
        propagation = propagation.with_support(field.support(1e-6));
    }
    let planner = Planner::<T>::new();
    let power_in: f64 = field.power().iter().sum();
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
    let run = |seconds: f64,
               method: Method,
               criterion: &Criterion,
               considered: &[Criterion],
               padded,
               centre| Run {
        seconds,
        method,
        criterion: criterion.clone(),
        considered: considered.to_vec(),
        padded,
        centre,
    };
    let (field, run) = match &window {
        None => {
            let plan: Plan<T> = planner.plan(&grid, wave, &propagation).map_err(describe)?;
            let start = Instant::now();
            plan.propagate(&mut field)?;
            let seconds = start.elapsed().as_secs_f64();
            let r = run(
                seconds,
                plan.method(),
                &plan.criterion,
                &plan.considered,
                plan.padded_shape(),
                (0.0, 0.0),
            );
            (field, r)
        }
        Some(window) => {
            let plan = planner
                .plan_window(&grid, wave, &propagation, window)
                .map_err(describe)?;
            let start = Instant::now();
            let out = plan.apply(&field)?;
            let seconds = start.elapsed().as_secs_f64();
            let r = run(
                seconds,
                plan.method(),
                &plan.criterion,
                &plan.considered,
                plan.padded_shape(),
                window.centre,
            );
            (out, r)
        }
    };
    let seconds = run.seconds;
    let power_out: f64 = field.power().iter().sum();
    let out = *field.grid();
    let shape: Vec<usize> = if keep_rank2 {
        vec![out.ny, out.nx]
    } else {
        vec![batch, out.ny, out.nx]
    };
    npy::write_npy(&args.output, &shape, T::npy(field.data()))
        .with_context(|| format!("cannot write --output {}", args.output.display()))?;
    if let Some(png) = &args.png {
        write_png(png, &field, run.centre, run.method, args.distance)
            .with_context(|| format!("cannot write --png {}", png.display()))?;
    }
    let (my, mx) = run.padded;
    if args.json {
        let considered: Vec<_> = run
            .considered
            .iter()
            .map(|c| json!({"method": c.method.name(), "valid": c.holds, "limit": c.limit}))
            .collect();
        let report = json!({
            "input": args.input,
            "output": args.output,
            "dtype": dtype,
            "shape": shape,
            "method": run.method.name(),
            "requested_method": args.method.name(),
            "criterion": {
                "valid": run.criterion.holds,
                "rule": run.criterion.rule,
                "limit": run.criterion.limit,
                "min_distance_m": finite_or_null(run.criterion.min_distance),
                "max_distance_m": finite_or_null(run.criterion.max_distance),
            },
            "considered": considered,
            "wavelength_m": wave.wavelength,
            "index": wave.index,
            "distance_m": args.distance,
            "input_pitch_m": grid.dx,
            "input_pitch_y_m": grid.dy,
            "output_pitch_m": out.dx,
            "output_pitch_y_m": out.dy,
            "output_centre_m": [run.centre.0, run.centre.1],
            "window": window.is_some(),
            "padding": padding.factor(),
            "padded_shape": [my, mx],
            "convolution": if padding == Padding::Circular { "circular" } else { "linear" },
            "power_in": power_in,
            "power_out": power_out,
            "seconds": seconds,
        });
        println!("{report}");
    } else {
        println!(
            "{} → {}: {batch}×{}×{} {dtype}, {} over {} ({}, padded to {my}×{mx})",
            args.input.display(),
            args.output.display(),
            grid.ny,
            grid.nx,
            run.method,
            format_length(args.distance),
            if padding == Padding::Circular {
                "circular"
            } else {
                "linear"
            },
        );
        if args.method == Method::Auto {
            println!("auto: picked {} — {}", run.method, run.criterion.limit);
        }
        if let Some(w) = &window {
            println!(
                "output window {}×{} at {} × {} (input {} × {}), centred at ({}, {})",
                out.ny,
                out.nx,
                format_length(out.dx),
                format_length(out.dy),
                format_length(grid.dx),
                format_length(grid.dy),
                format_length(w.centre.0),
                format_length(w.centre.1)
            );
        } else if run.method.changes_sampling() {
            println!(
                "output pitch {} × {} (input {} × {})",
                format_length(out.dx),
                format_length(out.dy),
                format_length(grid.dx),
                format_length(grid.dy)
            );
        }
        println!(
            "power out/in = {:.6}, propagation took {:.3} ms",
            power_out / power_in.max(f64::MIN_POSITIVE),
            seconds * 1e3
        );
    }
    Ok(())
}

/// What a propagation did, for the report.
struct Run {
    seconds: f64,
    method: Method,
    criterion: Criterion,
    considered: Vec<Criterion>,
    padded: (usize, usize),
    centre: (f64, f64),
}

/// The output window `--out-grid` / `--out-centre` ask for, if any. `--method sas` always
/// runs onto one: without `--out-grid`, the input's samples at sas's natural pitch
/// `λ|z|/(M·d)` (M the padded samples).
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
        None if args.method.window_only() => {
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

fn write_png<T: Real>(
    path: &Path,
    field: &Field<T>,
    centre: (f64, f64),
    method: Method,
    distance: f64,
) -> Result<(), plot::PlotError> {
    let g = field.grid();
    let [x0, x1, y0, y1] = g.edges();
    let edges = [x0 + centre.0, x1 + centre.0, y0 + centre.1, y1 + centre.1];
    let values: Vec<f64> = field.sample(0).iter().map(|z| z.norm_sqr().f64()).collect();
    let title = format!("|E|² after {} ({method})", format_length(distance));
    plot::write_image_png(
        path,
        &plot::ImagePlot {
            title: &title,
            colorbar_label: "intensity (a.u.)",
            colormap: plot::Colormap::Inferno,
            ..plot::ImagePlot::new(&values, g.nx, g.ny, edges)
        },
        900,
        760,
    )
}
