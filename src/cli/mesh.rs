//! `photonflow mesh`: matrices compiled into meshes of Mach–Zehnder interferometers, and the
//! matrix a mesh implements.

use std::f64::consts::{PI, TAU};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex64;
use photonflow_compiler::error::CompileError;
use photonflow_compiler::mesh::chip::{
    Chip, CorrectionReport, Imperfections, MAX_GLOBAL_MODES, MAX_ITERATIONS, compare, implemented,
};
use photonflow_compiler::mesh::layout::{Heaters, Layout};
use photonflow_compiler::mesh::trials::{self, Spread, Trial, Trials};
use photonflow_compiler::mesh::{
    CMatrix, Convention, Mesh, Method, SvdInfo, bridge, decompose, decompose_svd, svd, text,
};
use photonflow_optics::OpticalSystem;
use photonflow_optics::io::npy::{NpyData, NpyDataRef, read_npy, write_npy};
use photonflow_optics::memory;
use photonflow_optics::system::system_folder;
use serde_json::json;

use crate::plot::{
    Axes, Colormap, ImagePlot, LinePlot, Series, write_image_grid_png, write_line_png,
};

/// Arguments of `photonflow mesh`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Compile a matrix (.npy or a .csv/.tsv/.txt table) into the phases of a Clements or Reck
    /// mesh (unitary matrices) or an SVD mesh (any matrix).
    Decompose(DecomposeArgs),
    /// The matrix a layout implements, ideal or on a chip with imperfections (and their
    /// correction), as complex128 .npy or a .csv/.tsv/.txt table.
    Simulate(SimulateArgs),
    /// The mesh as a GDSII layout: MZI cells on the grid, waveguides, heaters, labelled ports.
    Layout(LayoutArgs),
}

/// Arguments of `photonflow mesh decompose`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct DecomposeArgs {
    /// The matrix: N×N complex128/complex64 (or real float64/float32) .npy, or a text table
    /// (.csv, .tsv, .txt: one row per line, entries like 0.5, -1e-3, 0.5+0.25j or 0.5-0.25i).
    #[arg(
        long,
        value_name = "M.npy",
        required_unless_present = "system",
        conflicts_with = "system"
    )]
    matrix: Option<PathBuf>,
    /// Instead of --matrix: a small trained diffractive system (RUN/ or a folder with
    /// system.json, at most 32×32 pixels), compiled as its input→detector field transfer matrix
    /// and checked against the system itself on random input fields.
    #[arg(long, value_name = "RUN")]
    system: Option<PathBuf>,
    /// Mesh: clements (rectangular, depth N), reck (triangular, depth 2N−3) — for unitary
    /// matrices — svd (any M×N matrix: two Clements meshes and a column of attenuators,
    /// normalised by the largest singular value) or embed (any matrix, scaled to a contraction
    /// if needed, as a block of a unitary of twice its size: one Clements mesh).
    #[arg(long, default_value = "clements", value_name = "METHOD")]
    method: String,
    /// Largest deviation from unitarity accepted.
    #[arg(
        long,
        default_value_t = 1e-9,
        value_name = "TOL",
        allow_hyphen_values = true
    )]
    tolerance: f64,
    /// Volts for a π shift of the thermal phase shifters (φ = π·(V/Vπ)²): the phase table gets
    /// heater voltages.
    #[arg(long, value_name = "VOLTS", allow_hyphen_values = true)]
    vpi: Option<f64>,
    /// Power of a thermal phase shifter for a π shift (P = Pπ·φ/π), with a unit (25mW): the
    /// phase table gets every heater's power, and the report the total.
    #[arg(long, value_name = "POWER", value_parser = super::positive_power, allow_hyphen_values = true)]
    ppi: Option<f64>,
    /// Compile for this chip (TOML, as `mesh simulate --imperfections`): the layout records it
    /// and its error is the chip's.
    #[arg(long, value_name = "FILE.toml")]
    imperfections: Option<PathBuf>,
    /// With --imperfections: write phases corrected for the chip's splitter errors (MZI by
    /// MZI, then re-optimised globally on meshes of up to 128 modes), and record the fidelity
    /// before and after.
    #[arg(long, requires = "imperfections")]
    correct: bool,
    /// With --correct: the most iterations of the global re-optimisation (0: the MZI-by-MZI
    /// correction alone); more keep lowering the error, slowly, at O(N³) each.
    #[arg(long, value_name = "N", default_value_t = MAX_ITERATIONS, requires = "correct", allow_negative_numbers = true)]
    iterations: usize,
    /// The MZI convention of the written phases: photonflow-mzi-v1 (the device as built; the
    /// only one heater voltages and chips apply to) or clements2016 (Clements et al. 2016, as
    /// Strawberry Fields writes them); the matrix is the same, converted exactly.
    #[arg(long, default_value = "photonflow-mzi-v1", value_name = "NAME")]
    convention: String,
    /// Output folder: layout.json and phases.csv.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Also write a PNG of the phases on the mesh (θ, and φ with the output phases, over
    /// columns and modes, as the device is programmed).
    #[arg(long, value_name = "PHASES.png")]
    png: Option<PathBuf>,
    /// Print one JSON object on the last line: n, mzis, depth, error, seconds, method.
    #[arg(long)]
    json: bool,
}

/// Arguments of `photonflow mesh simulate`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct SimulateArgs {
    /// A layout written by `photonflow mesh decompose`.
    #[arg(long, value_name = "layout.json")]
    layout: PathBuf,
    /// Where to write the implemented matrix: complex128 .npy, or a text table by the
    /// extension (.csv, .tsv, .txt; entries a+bj, every digit kept).
    #[arg(long, short, value_name = "M_chip.npy")]
    out: PathBuf,
    /// Compare with this matrix (.npy or a text table, as --matrix) and report the normalised
    /// Frobenius error, the fidelity |Tr(U†·U_chip)|/N (SVD meshes: normalised by
    /// ‖U‖_F·‖U_chip‖_F), the fidelity normalised for a common loss, and the transmission.
    #[arg(long, value_name = "M.npy")]
    reference: Option<PathBuf>,
    /// The chip's imperfections (TOML: loss_db, loss_error, splitter_error, phase_error,
    /// dac_bits, vpi, v_max, crosstalk, seed; every key optional; default: the chip the layout
    /// was compiled for, else the ideal one).
    #[arg(long, value_name = "FILE.toml")]
    imperfections: Option<PathBuf>,
    /// Re-program the phases to compensate the chip's (known) splitter errors (MZI by MZI,
    /// then re-optimised globally on meshes of up to 128 modes), and report the fidelity before
    /// and after (needs --reference).
    #[arg(long)]
    correct: bool,
    /// With --correct: the most iterations of the global re-optimisation (0: the MZI-by-MZI
    /// correction alone); more keep lowering the error, slowly, at O(N³) each.
    #[arg(long, value_name = "N", default_value_t = MAX_ITERATIONS, requires = "correct", allow_negative_numbers = true)]
    iterations: usize,
    /// Also write a PNG of the implemented matrix's moduli (with --reference, beside the
    /// reference's and the moduli of their difference).
    #[arg(long, value_name = "MATRIX.png")]
    png: Option<PathBuf>,
    /// Monte Carlo: run the mesh on N chips of the --imperfections model (seeds seed, seed+1,
    /// …; --out is the first; at most 100 000) and report the spread of their fidelity,
    /// transmission and error against --reference, else against the ideal mesh (with
    /// --correct, also after correction).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    trials: Option<usize>,
    /// With --trials: a PNG of every chip's infidelity 1 − F, sorted (the fraction of chips at
    /// or below each value; with --correct, before and after).
    #[arg(long, value_name = "TRIALS.png", requires = "trials")]
    trials_png: Option<PathBuf>,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow mesh`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Decompose(a) => run_decompose(a),
        Command::Simulate(a) => run_simulate(a),
        Command::Layout(a) => run_layout(a),
    }
}

/// How precisely a matrix file wrote its numbers, when less than an `f64` holds: the
/// significant digits, and the numbers in words for messages.
#[derive(Debug, Clone)]
struct Precision {
    digits: u32,
    what: String,
}

/// Reads a 2-D complex (or real) matrix from `.npy`, or from a text table (`.csv`, `.tsv`,
/// `.txt`, `.dat`); also says how precisely its numbers were written, if less than an `f64`.
fn read_matrix(path: &Path, flag: &str) -> anyhow::Result<(CMatrix, Option<Precision>)> {
    if text::is_text_path(path) {
        let t = text::read(path).with_context(|| format!("{flag} {}", path.display()))?;
        let precision = (t.digits < 16).then(|| Precision {
            digits: t.digits,
            what: format!(
                "numbers written with at most {} significant digit{}",
                t.digits,
                if t.digits == 1 { "" } else { "s" }
            ),
        });
        return Ok((t.matrix, precision));
    }
    let arr = read_npy(path).with_context(|| {
        format!(
            "{flag} {}: give a .npy file, or a text table named .csv, .tsv or .txt",
            path.display()
        )
    })?;
    let [rows, cols] = arr.shape[..] else {
        bail!(
            "{flag} {}: shape {:?}; a matrix is 2-D (rows, columns)",
            path.display(),
            arr.shape
        );
    };
    let precision = matches!(arr.data, NpyData::C64(_) | NpyData::F32(_)).then(|| Precision {
        digits: 7,
        what: "single-precision numbers (about 7 significant digits)".into(),
    });
    let data: Vec<Complex64> = match arr.data {
        NpyData::C128(v) => v,
        NpyData::C64(v) => v
            .iter()
            .map(|c| Complex64::new(c.re.into(), c.im.into()))
            .collect(),
        NpyData::F64(v) => v.iter().map(|&x| Complex64::new(x, 0.0)).collect(),
        NpyData::F32(v) => v.iter().map(|&x| Complex64::new(x.into(), 0.0)).collect(),
        other => bail!(
            "{flag} {}: dtype {}; give complex128, complex64, float64 or float32",
            path.display(),
            other.dtype_name()
        ),
    };
    Ok((CMatrix { rows, cols, data }, precision))
}

/// What `--method` builds.
#[derive(Debug, Clone, Copy)]
enum Architecture {
    /// One mesh of a unitary.
    Unitary(Method),
    /// Two Clements meshes and attenuators.
    Svd,
    /// One Clements mesh of a unitary twice the size.
    Embed,
}

fn run_decompose(args: DecomposeArgs) -> anyhow::Result<()> {
    let architecture = match args.method.as_str() {
        "clements" => Architecture::Unitary(Method::Clements),
        "reck" => Architecture::Unitary(Method::Reck),
        "svd" => Architecture::Svd,
        "embed" => Architecture::Embed,
        other => bail!("--method {other}: use clements, reck, svd or embed"),
    };
    if !(args.tolerance > 0.0 && args.tolerance.is_finite()) {
        bail!("--tolerance {}: give a positive number", args.tolerance);
    }
    if let Some(v) = args.vpi
        && !(v > 0.0 && v.is_finite())
    {
        bail!("--vpi {v}: give the positive voltage of a π shift");
    }
    let convention: Convention = args
        .convention
        .parse()
        .map_err(|e| anyhow::anyhow!("--convention {e}"))?;
    if convention != Convention::Photonflow
        && (args.vpi.is_some() || args.ppi.is_some() || args.imperfections.is_some())
    {
        bail!(
            "--convention {}: heater voltages and powers (--vpi, --ppi) and chips \
             (--imperfections) are for the device's own convention; leave --convention at \
             photonflow-mzi-v1 for them",
            convention.name()
        );
    }
    let ((u, precision), source, system) = match (&args.matrix, &args.system) {
        (Some(path), _) => (read_matrix(path, "--matrix")?, path.clone(), None),
        (None, Some(run)) => {
            let folder = system_folder(run);
            let system = OpticalSystem::load(&folder)
                .with_context(|| format!("--system {}", run.display()))?;
            let m = bridge::system_matrix(&system)
                .with_context(|| format!("--system {}", run.display()))?;
            ((m, None), folder, Some(system))
        }
        (None, None) => bail!("give --matrix M.npy or --system RUN"),
    };
    let started = Instant::now();
    let context = || format!("--matrix {}", source.display());
    let (mut mesh, info) = match architecture {
        Architecture::Unitary(method) => {
            let mesh = decompose(&u, method, args.tolerance).map_err(|e| {
                let hint = match (&e, &precision) {
                    // A deviation that the digits written can explain.
                    (CompileError::NotUnitary { deviation, .. }, Some(p))
                        if *deviation < 10f64.powi(3 - p.digits as i32) =>
                    {
                        // A power of ten above the deviation, with a margin.
                        let tolerance = 10f64.powf((deviation * 10.0).max(1e-15).log10().ceil());
                        let pass = if tolerance <= 1e-2 {
                            format!("pass --tolerance {tolerance:e}, or ")
                        } else {
                            // Too coarse to call it unitary: the mesh would be another matrix.
                            String::new()
                        };
                        format!(
                            ": it holds {}, so a unitary saved in it deviates at this level; \
                             {pass}save the matrix with every digit (complex128 .npy, or a table \
                             as numpy.savetxt writes it by default)",
                            p.what
                        )
                    }
                    _ => String::new(),
                };
                anyhow::Error::new(e).context(format!("{}{hint}", context()))
            })?;
            (mesh, None)
        }
        Architecture::Svd => {
            let (mesh, info) = decompose_svd(&u, Method::Clements).with_context(context)?;
            (mesh, Some(info))
        }
        Architecture::Embed => {
            let (w, info) = svd::embed(&u).with_context(context)?;
            (decompose(&w, Method::Clements, 1e-8)?, Some(info))
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    // For a chip: its matrix with these phases, or with phases corrected for its splitters.
    let (error, imperfections, correction) = match &args.imperfections {
        Some(path) => {
            let imperfections = Imperfections::load(path).context("--imperfections")?;
            let chip = Chip::new(&mesh, &imperfections).context("--imperfections")?;
            let correction = if args.correct {
                Some(
                    correct(
                        &chip,
                        &mut mesh,
                        &u,
                        info.as_ref(),
                        args.iterations,
                        args.json,
                    )
                    .context("--correct")?,
                )
            } else {
                None
            };
            let error = match correction {
                Some(c) => c.error_after,
                None => compare(&u, &chip.matrix(&mesh), info.as_ref())?.error,
            };
            (error, Some(imperfections), correction)
        }
        None => {
            let ideal = implemented(&mesh.matrix(), info.as_ref());
            (ideal.relative_error(&u), None, None)
        }
    };
    let mut layout = Layout::new(
        &mesh,
        convention,
        &args.method,
        error,
        seconds,
        &source.display().to_string(),
    );
    layout.svd = info;
    layout.imperfections = imperfections;
    layout.correction = correction;
    // The chip against the diffractive system itself, on random input fields.
    let system_check = match &system {
        Some(system) => Some(compare_with_system(system, &layout)?),
        None => None,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create it", args.out.display()))?;
    layout.save(&args.out.join("layout.json"))?;
    let csv = layout.csv(Heaters {
        vpi: args.vpi,
        ppi: args.ppi,
    });
    let heater_power = args.ppi.map(|ppi| layout.heater_power(ppi));
    let csv_path = args.out.join("phases.csv");
    photonflow_optics::io::write_atomic(&csv_path, |w| {
        std::io::Write::write_all(w, csv.as_bytes())
    })
    .with_context(|| format!("writing {}", csv_path.display()))?;
    if let Some(png) = &args.png {
        phases_png(png, &mesh).with_context(|| format!("--png {}", png.display()))?;
    }
    if args.json {
        println!(
            "{}",
            json!({
                "n": layout.n,
                "mzis": layout.mzi_count,
                "depth": layout.depth,
                "error": error,
                "seconds": seconds,
                "method": layout.method,
                "convention": convention.name(),
                "scale": layout.svd.as_ref().map(|s| s.scale),
                "correction": layout.correction,
                "system_error": system_check,
                "heater_power_w": heater_power,
                "layout": args.out.join("layout.json"),
            })
        );
    } else {
        println!(
            "{} mesh of {} modes: {} MZIs in {} columns, reconstruction error {:.2e} \
             (‖U − U_mesh‖_F/‖U‖_F), {:.3} s; layout.json and phases.csv in {}",
            layout.method,
            layout.n,
            layout.mzi_count,
            layout.depth,
            error,
            seconds,
            args.out.display()
        );
        if let (Some(total), Some(ppi)) = (heater_power, args.ppi) {
            println!(
                "heaters at Pπ = {:.4} mW: {:.6} W in all, {:.4} mW per MZI on average (θ, φ \
                 and their share of the output phases)",
                ppi * 1e3,
                total,
                total * 1e3 / layout.mzi_count.max(1) as f64
            );
        }
        if let Some(e) = system_check {
            println!(
                "the chip against the diffractive system on 4 random input fields: largest \
                 relative difference of the detector-plane fields {e:.2e}"
            );
        }
    }
    Ok(())
}

/// The largest relative difference, over 4 random input fields, between the detector-plane
/// fields of `system` and of the chip that `layout` describes.
fn compare_with_system(system: &OpticalSystem, layout: &Layout) -> anyhow::Result<f64> {
    let m = implemented(&layout.mesh().matrix(), layout.svd.as_ref());
    let (k, batch) = (m.cols, 4);
    let inputs = CMatrix::random(batch, k, &mut photonflow_optics::rng::Rng::new(1)).data;
    let optical = bridge::forward(system, inputs.clone())?;
    let mut worst = 0.0f64;
    for (x, y) in inputs.chunks_exact(k).zip(optical.chunks_exact(k)) {
        let (mut diff, mut norm) = (0.0, 0.0);
        for (i, yi) in y.iter().enumerate() {
            let mx: Complex64 = (0..k).map(|j| m.at(i, j) * x[j]).sum();
            diff += (mx - yi).norm_sqr();
            norm += yi.norm_sqr();
        }
        worst = worst.max((diff / norm).sqrt());
    }
    Ok(worst)
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let layout = Layout::load(&args.layout).context("--layout")?;
    // The chip's matrix and the block written out, complex128 each.
    let n = layout.n;
    memory::check_fits(
        memory::bytes(&[n, n, 2 * 16]),
        || {
            format!(
                "simulating the {n}-mode mesh of --layout {}",
                args.layout.display()
            )
        },
        "check `n` in the layout, or simulate on a machine with more memory",
    )?;
    if args.correct && args.reference.is_none() {
        bail!("--correct needs --reference M.npy: the matrix the fidelity is measured against");
    }
    // A long Monte Carlo run must not end on a figure it cannot write.
    if let Some(png) = &args.trials_png {
        let folder = png.parent().filter(|p| !p.as_os_str().is_empty());
        if folder.is_some_and(|f| !f.is_dir()) {
            bail!(
                "--trials-png {}: its folder does not exist; create it or choose another path",
                png.display()
            );
        }
    }
    // The chip given, else the one the layout was compiled for, else the ideal one.
    let imperfections = match &args.imperfections {
        Some(path) => Imperfections::load(path).context("--imperfections")?,
        None => layout.imperfections.clone().unwrap_or_default(),
    };
    let reference = match &args.reference {
        Some(path) => Some((read_matrix(path, "--reference")?.0, path)),
        None => None,
    };
    let svd = layout.svd.as_ref();
    // The mesh as designed; the one programmed may be corrected.
    let designed = layout.mesh();
    let mut mesh = designed.clone();
    let chip = Chip::new(&mesh, &imperfections).context("--imperfections")?;
    let correction = match &reference {
        Some((r, path)) if args.correct => Some(
            correct(&chip, &mut mesh, r, svd, args.iterations, args.json)
                .with_context(|| format!("--correct --reference {}", path.display()))?,
        ),
        _ => None,
    };
    let full = chip.matrix(&mesh);
    let m = implemented(&full, svd);
    if text::is_text_path(&args.out) {
        text::write(&args.out, &m).with_context(|| format!("--out {}", args.out.display()))?;
    } else {
        write_npy(&args.out, &[m.rows, m.cols], NpyDataRef::C128(&m.data))
            .with_context(|| format!("--out {}", args.out.display()))?;
    }
    let comparison = match &reference {
        Some((r, path)) => Some(
            compare(r, &full, svd).with_context(|| format!("--reference {}", path.display()))?,
        ),
        None => None,
    };
    if let Some(png) = &args.png {
        let reference = reference.as_ref().map(|(r, _)| r);
        matrix_png(png, &m, reference).with_context(|| format!("--png {}", png.display()))?;
    }
    let trials = match args.trials {
        Some(count) => {
            let design;
            let against = match &reference {
                Some((r, _)) => r,
                None => {
                    design = implemented(&designed.matrix(), svd);
                    &design
                }
            };
            let iterations = args.correct.then_some(args.iterations);
            let bar = super::progress_bar(
                args.json,
                count as u64,
                "chips {bar:30} {pos}/{len} eta {eta}",
            );
            let t = trials::run(
                &designed,
                &imperfections,
                against,
                svd,
                count,
                iterations,
                || bar.inc(1),
            );
            bar.finish_and_clear();
            let t = t?;
            if let Some(png) = &args.trials_png {
                trials_png(png, &t).with_context(|| format!("--trials-png {}", png.display()))?;
            }
            Some(t)
        }
        None => None,
    };
    if args.json {
        let mut j = json!({
            "n": layout.n,
            "mzis": layout.mzi_count,
            "depth": layout.depth,
            "out": args.out,
            "error": comparison.map(|c| c.error),
            "fidelity": comparison.map(|c| c.fidelity),
            "fidelity_normalized": comparison.map(|c| c.fidelity_normalized),
            "transmission": comparison.map(|c| c.transmission),
        });
        if let Some(c) = correction {
            j["fidelity_before"] = json!(c.fidelity_before);
            j["fidelity_after"] = json!(c.fidelity_after);
            j["error_before"] = json!(c.error_before);
            j["error_after"] = json!(c.error_after);
            j["global"] = json!(c.global);
            j["iterations"] = json!(c.iterations);
        }
        if let Some(t) = &trials {
            j["trials"] = json!(t);
            j["trials_against"] = json!(if reference.is_some() {
                "reference"
            } else {
                "ideal mesh"
            });
        }
        println!("{j}");
    } else {
        print!(
            "{} modes, {} MZIs in {} columns → {}",
            layout.n,
            layout.mzi_count,
            layout.depth,
            args.out.display()
        );
        match comparison {
            Some(c) => println!(
                "; error {:.3e}, fidelity {:.12} (normalised for a common loss {:.12}; \
                 transmission {:.4}, {:.3} dB)",
                c.error,
                c.fidelity,
                c.fidelity_normalized,
                c.transmission,
                -10.0 * c.transmission.log10()
            ),
            None => println!(),
        }
        if let Some(c) = correction {
            let how = match (c.global, layout.n > MAX_GLOBAL_MODES) {
                (true, _) => format!("local, then {} global iterations", c.iterations),
                (false, true) => {
                    format!("local; no global re-optimisation above {MAX_GLOBAL_MODES} modes")
                }
                (false, false) => "local alone, --iterations 0".into(),
            };
            println!(
                "correction of the splitter errors ({how}): fidelity {:.12} → {:.12}, \
                 error {:.3e} → {:.3e}",
                c.fidelity_before, c.fidelity_after, c.error_before, c.error_after
            );
        }
        if let Some(t) = &trials {
            let (first, last) = (t.trials[0].seed, t.trials[t.trials.len() - 1].seed);
            let against = if reference.is_some() {
                "the reference"
            } else {
                "the ideal mesh"
            };
            println!(
                "{} chips (seeds {first}…{last}) against {against}:",
                t.trials.len()
            );
            let line = |what: &str, s: &Spread, digits: usize| {
                println!(
                    "  {what:<20} mean {:.digits$} ± {:.digits$}, median {:.digits$}, \
                     5–95 % {:.digits$} … {:.digits$}, range {:.digits$} … {:.digits$}",
                    s.mean, s.std, s.median, s.p5, s.p95, s.min, s.max
                )
            };
            line("fidelity", &t.fidelity, 6);
            line("fidelity normalised", &t.fidelity_normalized, 6);
            line("transmission", &t.transmission, 4);
            line("error", &t.error, 4);
            if let (Some(f), Some(e)) = (&t.fidelity_corrected, &t.error_corrected) {
                line("fidelity corrected", f, 6);
                line("error corrected", e, 4);
            }
        }
    }
    Ok(())
}

/// Every chip's infidelity `1 − F`, sorted, over the fraction of chips (with correction,
/// before and after), log scale.
fn trials_png(path: &Path, t: &Trials) -> anyhow::Result<()> {
    let sorted = |f: &dyn Fn(&Trial) -> Option<f64>| -> Option<Vec<(f64, f64)>> {
        let fidelities: Vec<f64> = t.trials.iter().map(f).collect::<Option<_>>()?;
        let mut loss: Vec<f64> = fidelities.iter().map(|f| (1.0 - f).max(1e-16)).collect();
        loss.sort_by(f64::total_cmp);
        let n = loss.len() as f64;
        Some(
            (loss.iter().enumerate())
                .map(|(i, &l)| ((i + 1) as f64 / n, l))
                .collect(),
        )
    };
    let before = sorted(&|t| Some(t.fidelity)).expect("every trial has a fidelity");
    let after = sorted(&|t| t.fidelity_corrected);
    let mut series = vec![Series {
        name: if after.is_some() { "as programmed" } else { "" },
        points: &before,
    }];
    if let Some(after) = &after {
        series.push(Series {
            name: "corrected",
            points: after,
        });
    }
    let title = format!("{} chips, seeds {}…", t.trials.len(), t.trials[0].seed);
    let plot = LinePlot {
        title: &title,
        x_label: "fraction of chips at or below",
        y_label: "infidelity 1 − F",
        series,
        log_y: true,
    };
    write_line_png(path, &plot, 720, 480)?;
    Ok(())
}

/// Panel size of the mesh figures, px.
const PANEL: (u32, u32) = (520, 440);

/// The phases of `mesh` (photonflow's convention) over its columns and modes: `θ` (and the
/// attenuators' `θ`) in one panel, `φ` and, in the column after the last, the output phases in
/// the other; grey where a column has no MZI on a mode.
fn phases_png(path: &Path, mesh: &Mesh) -> anyhow::Result<()> {
    let (cols, n) = (mesh.depth() + 1, mesh.n);
    let (mut theta, mut phi) = (vec![f64::NAN; cols * n], vec![f64::NAN; cols * n]);
    for z in &mesh.mzis {
        theta[z.mode * cols + z.column] = z.theta;
        phi[z.mode * cols + z.column] = z.phi;
    }
    for a in &mesh.attenuators {
        theta[a.mode * cols + a.column] = a.theta;
    }
    for (m, &p) in mesh.output_phases.iter().enumerate() {
        phi[m * cols + cols - 1] = p;
    }
    let extent = [-0.5, cols as f64 - 0.5, -0.5, n as f64 - 0.5];
    let axes = Axes::Index {
        x: "column (the last: output phases)",
        y: "mode m (MZIs on m, m + 1)",
    };
    let panels = [
        ImagePlot {
            title: "θ, internal",
            colorbar_label: "θ (rad)",
            range: Some((0.0, PI)),
            axes,
            ..ImagePlot::new(&theta, cols, n, extent)
        },
        ImagePlot {
            title: "φ, external; output phases",
            colorbar_label: "φ (rad)",
            colormap: Colormap::Twilight,
            range: Some((0.0, TAU)),
            axes,
            ..ImagePlot::new(&phi, cols, n, extent)
        },
    ];
    let title = format!(
        "{} MZIs on {n} modes, {} columns",
        mesh.mzis.len(),
        cols - 1
    );
    write_image_grid_png(path, &panels, 2, PANEL.0, PANEL.1, &title)?;
    Ok(())
}

/// The moduli of `m` (rows: outputs, columns: inputs), and with `reference` also the
/// reference's and those of `m − reference`.
fn matrix_png(path: &Path, m: &CMatrix, reference: Option<&CMatrix>) -> anyhow::Result<()> {
    let moduli = |c: &CMatrix| c.data.iter().map(|z| z.norm()).collect::<Vec<f64>>();
    let chip = moduli(m);
    let extent = [-0.5, m.cols as f64 - 0.5, -0.5, m.rows as f64 - 0.5];
    let axes = Axes::Index {
        x: "input",
        y: "output",
    };
    let panel = |values, title, range| ImagePlot {
        title,
        colorbar_label: "|element|",
        range,
        axes,
        ..ImagePlot::new(values, m.cols, m.rows, extent)
    };
    let (wanted, difference) = match reference {
        Some(r) => {
            let diff: Vec<f64> = m
                .data
                .iter()
                .zip(&r.data)
                .map(|(a, b)| (a - b).norm())
                .collect();
            (moduli(r), diff)
        }
        None => (Vec::new(), Vec::new()),
    };
    let panels = match reference {
        Some(_) => {
            let top = chip.iter().chain(&wanted).copied().fold(0.0, f64::max);
            let range = Some((0.0, top.max(f64::MIN_POSITIVE)));
            vec![
                panel(&wanted, "reference", range),
                panel(&chip, "implemented", range),
                ImagePlot {
                    colormap: Colormap::Inferno,
                    ..panel(&difference, "|implemented − reference|", None)
                },
            ]
        }
        None => vec![panel(&chip, "implemented", None)],
    };
    let title = format!("the {}×{} matrix of the chip", m.rows, m.cols);
    write_image_grid_png(path, &panels, 3, PANEL.0, PANEL.1, &title)?;
    Ok(())
}

/// Arguments of `photonflow mesh layout`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct LayoutArgs {
    /// A layout written by `photonflow mesh decompose`.
    #[arg(long, value_name = "layout.json")]
    layout: PathBuf,
    /// Technology TOML: waveguide_width, bend_radius, coupler_length, coupler_gap,
    /// heater_length, heater_width, mode_pitch, column_pitch (lengths with units, "0.5um") and
    /// waveguide_layer, heater_layer, label_layer; absent keys (or no file) take the built-in
    /// silicon-photonics defaults.
    #[arg(long, value_name = "TECH.toml")]
    tech: Option<PathBuf>,
    /// The layout file to write: GDSII (`.gds`) or OASIS (`.oas`, several times smaller),
    /// told by its extension; database unit 1 nm (user unit 1 µm in GDSII).
    #[arg(long, short, value_name = "mesh.gds|mesh.oas")]
    out: PathBuf,
    /// Print one JSON object on the last line: mzis, attenuators, depth, modes, width_um,
    /// height_um, bytes, seconds.
    #[arg(long)]
    json: bool,
}

fn run_layout(args: LayoutArgs) -> anyhow::Result<()> {
    use photonflow_compiler::export::gds::LayoutFormat;
    use photonflow_compiler::mesh::gds::{Tech, check_mesh_gds, write_mesh_gds};
    let Some(format) = LayoutFormat::of_path(&args.out) else {
        anyhow::bail!(
            "--out {}: name the file .gds (GDSII) or .oas (OASIS); the extension chooses the \
             format",
            args.out.display()
        );
    };
    let layout = Layout::load(&args.layout).context("--layout")?;
    let tech = match &args.tech {
        Some(path) => Tech::load(path).context("--tech")?,
        None => Tech::default(),
    };
    let started = Instant::now();
    let mut gds = Vec::new();
    let stats = write_mesh_gds(&layout, &tech, format, &mut gds)
        .with_context(|| format!("--layout {}", args.layout.display()))?;
    photonflow_optics::io::write_atomic(&args.out, |w| std::io::Write::write_all(w, &gds))
        .with_context(|| format!("--out {}: cannot write it", args.out.display()))?;
    // Read the file back: every MZI referenced once, at its grid position.
    let written = std::fs::read(&args.out)
        .with_context(|| format!("--out {}: cannot read it back", args.out.display()))?;
    let check = check_mesh_gds(&written, &layout, &tech)
        .with_context(|| format!("--out {}: read back", args.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "mzis": check.mzis,
                "attenuators": check.attenuators,
                "depth": stats.columns,
                "modes": stats.modes,
                "width_um": stats.width_um,
                "height_um": stats.height_um,
                "cell_length_um": stats.cell_length_um,
                "bytes": stats.bytes,
                "format": format.name(),
                "seconds": seconds,
                "out": args.out,
            })
        );
    } else {
        let attenuators = match check.attenuators {
            0 => String::new(),
            a => format!(" and {a} attenuators"),
        };
        println!(
            "{} modes: {} MZIs{attenuators} in {} columns (optical depth), {:.1} × {:.1} µm, \
             MZI cell {:.3} µm long; {} bytes of {} → {} (read back: every cell referenced once at \
             its grid position), {:.3} s",
            stats.modes,
            check.mzis,
            stats.columns,
            stats.width_um,
            stats.height_um,
            stats.cell_length_um,
            stats.bytes,
            format.name(),
            args.out.display(),
            seconds
        );
    }
    Ok(())
}

/// [`Chip::correct`] with a progress bar over the global re-optimisation's iterations (on a
/// terminal, without `--json`; seconds at 64 modes and more, up to ≈ 15 s at 128).
fn correct(
    chip: &Chip,
    mesh: &mut Mesh,
    reference: &CMatrix,
    svd: Option<&SvdInfo>,
    iterations: usize,
    json: bool,
) -> photonflow_compiler::Result<CorrectionReport> {
    let bar = super::progress_bar(
        json,
        0,
        "correcting the phases {bar:30} {pos}/{len} iterations eta {eta}",
    );
    let report = chip.correct_with(mesh, reference, svd, iterations, |done, most| {
        bar.set_length(most as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    report
}
