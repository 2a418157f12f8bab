//! `photonflow mesh`: matrices compiled into meshes of Mach–Zehnder interferometers, and the
//! matrix a mesh implements.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex64;
use photonflow_compiler::mesh::layout::Layout;
use photonflow_compiler::mesh::{CMatrix, Method, decompose, decompose_svd};
use photonflow_optics::io::npy::{NpyData, NpyDataRef, read_npy, write_npy};
use serde_json::json;

/// Arguments of `photonflow mesh`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Compile a matrix (.npy) into the phases of a Clements or Reck mesh (unitary matrices)
    /// or an SVD mesh (any matrix).
    Decompose(DecomposeArgs),
    /// The matrix a layout implements, as complex128 .npy.
    Simulate(SimulateArgs),
}

/// Arguments of `photonflow mesh decompose`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct DecomposeArgs {
    /// The matrix: N×N complex128/complex64 (or real float64/float32) .npy.
    #[arg(long, value_name = "M.npy")]
    matrix: PathBuf,
    /// Mesh: clements (rectangular, depth N), reck (triangular, depth 2N−3) — for unitary
    /// matrices — or svd (any M×N matrix: two Clements meshes and a column of attenuators,
    /// normalised by the largest singular value).
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
    /// Output folder: layout.json and phases.csv.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
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
    /// Where to write the implemented matrix (complex128 .npy).
    #[arg(long, short, value_name = "M_chip.npy")]
    out: PathBuf,
    /// Compare with this matrix and report the normalised Frobenius error and the fidelity.
    #[arg(long, value_name = "M.npy")]
    reference: Option<PathBuf>,
    /// Print one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow mesh`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Decompose(a) => run_decompose(a),
        Command::Simulate(a) => run_simulate(a),
    }
}

/// Reads a 2-D complex (or real) matrix.
fn read_matrix(path: &Path, flag: &str) -> anyhow::Result<CMatrix> {
    let arr = read_npy(path).with_context(|| format!("{flag} {}", path.display()))?;
    let [rows, cols] = arr.shape[..] else {
        bail!(
            "{flag} {}: shape {:?}; a matrix is 2-D (rows, columns)",
            path.display(),
            arr.shape
        );
    };
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
    Ok(CMatrix { rows, cols, data })
}

fn run_decompose(args: DecomposeArgs) -> anyhow::Result<()> {
    let (method, svd) = match args.method.as_str() {
        "clements" => (Method::Clements, false),
        "reck" => (Method::Reck, false),
        "svd" => (Method::Clements, true),
        other => bail!("--method {other}: use clements, reck or svd"),
    };
    if !(args.tolerance > 0.0 && args.tolerance.is_finite()) {
        bail!("--tolerance {}: give a positive number", args.tolerance);
    }
    if let Some(v) = args.vpi
        && !(v > 0.0 && v.is_finite())
    {
        bail!("--vpi {v}: give the positive voltage of a π shift");
    }
    let u = read_matrix(&args.matrix, "--matrix")?;
    let started = Instant::now();
    let (mesh, info) = if svd {
        let (mesh, info) = decompose_svd(&u, method)
            .with_context(|| format!("--matrix {}", args.matrix.display()))?;
        (mesh, Some(info))
    } else {
        let mesh = decompose(&u, method, args.tolerance)
            .with_context(|| format!("--matrix {}", args.matrix.display()))?;
        (mesh, None)
    };
    let seconds = started.elapsed().as_secs_f64();
    let chip = mesh.matrix();
    let error = match &info {
        Some(info) => info.implemented(&chip).relative_error(&u),
        None => chip.relative_error(&u),
    };
    let mut layout = Layout::new(
        &mesh,
        &args.method,
        error,
        seconds,
        &args.matrix.display().to_string(),
    );
    layout.svd = info;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create it", args.out.display()))?;
    layout.save(&args.out.join("layout.json"))?;
    let csv = layout.csv(args.vpi);
    let csv_path = args.out.join("phases.csv");
    photonflow_optics::io::write_atomic(&csv_path, |w| {
        std::io::Write::write_all(w, csv.as_bytes())
    })
    .with_context(|| format!("writing {}", csv_path.display()))?;
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
                "scale": layout.svd.as_ref().map(|s| s.scale),
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
    }
    Ok(())
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let layout = Layout::load(&args.layout)?;
    let chip = layout.mesh().matrix();
    let m = match &layout.svd {
        Some(info) => info.implemented(&chip),
        None => chip,
    };
    write_npy(&args.out, &[m.rows, m.cols], NpyDataRef::C128(&m.data))
        .with_context(|| format!("--out {}", args.out.display()))?;
    let comparison = match &args.reference {
        Some(path) => {
            let r = read_matrix(path, "--reference")?;
            if (r.rows, r.cols) != (m.rows, m.cols) {
                bail!(
                    "--reference {}: {}×{}, but the mesh implements {}×{}",
                    path.display(),
                    r.rows,
                    r.cols,
                    m.rows,
                    m.cols
                );
            }
            // |Tr(U†·U_chip)| / (‖U‖_F·‖U_chip‖_F): 1 for a perfect chip, |Tr(U†U_chip)|/N
            // for unitaries.
            let trace: Complex64 = r.data.iter().zip(&m.data).map(|(a, b)| a.conj() * b).sum();
            let norm = |x: &CMatrix| x.data.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
            Some((m.relative_error(&r), trace.norm() / (norm(&r) * norm(&m))))
        }
        None => None,
    };
    if args.json {
        println!(
            "{}",
            json!({
                "n": layout.n,
                "mzis": layout.mzi_count,
                "depth": layout.depth,
                "out": args.out,
                "error": comparison.map(|c| c.0),
                "fidelity": comparison.map(|c| c.1),
            })
        );
    } else {
        print!(
            "{} modes, {} MZIs in {} columns → {}",
            layout.n,
            layout.mzi_count,
            layout.depth,
            args.out.display()
        );
        match comparison {
            Some((e, f)) => println!("; error {e:.3e}, fidelity |Tr(U†U_chip)|/N = {f:.12}"),
            None => println!(),
        }
    }
    Ok(())
}
