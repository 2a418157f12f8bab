//! `photonflow export`: fabrication files of a trained (or hand-written) optical system, with a
//! manifest, and optionally the accuracy of the system as built.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use photonflow_compiler::export::{Source, Target, export};
use photonflow_compiler::manifest::sha256_file;
use photonflow_compiler::{MaterialSpec, Process, fabricate};
use photonflow_d2nn::data::{self, FolderOptions};
use photonflow_d2nn::eval::evaluate;
use photonflow_d2nn::model::Model;
use photonflow_d2nn::network::Optics;
use photonflow_optics::system::FILE_NAME;
use serde_json::json;

/// Arguments of `photonflow export`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// The model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// What to write: npy (level and height maps) or height (height maps as .npy and 16-bit
    /// PNG).
    #[arg(long, value_name = "TARGET")]
    target: String,
    /// Relief material: a built-in name (thz-resin, fused-silica, pmma), FILE.toml or
    /// FILE.toml:NAME (default: the layers' own material, else thz-resin).
    #[arg(long, value_name = "NAME|FILE")]
    material: Option<String>,
    /// Quantise to L levels (default: the levels the model was trained with, else a continuous
    /// relief).
    #[arg(long, value_name = "L")]
    levels: Option<u32>,
    /// Base plate under every layer (e.g. 1mm).
    #[arg(long, value_name = "T", value_parser = super::length, allow_hyphen_values = true, default_value = "0m")]
    base: f64,
    /// Output folder (must be new, empty, or an earlier export, which is replaced).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Also simulate the design and the system as built on the test set and report both
    /// accuracies.
    #[arg(long)]
    simulate: bool,
    /// Dataset folder for --simulate (see `photonflow train --help`).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Dataset name for --simulate (default: the one the run was trained on, else mnist).
    #[arg(long, value_name = "NAME")]
    dataset: Option<String>,
    /// --simulate on the first N test samples only.
    #[arg(long, value_name = "N")]
    test_limit: Option<usize>,
    /// Print the manifest as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let target: Target = args.target.parse()?;
    let model = Model::load(&args.model)?;
    let system = &model.system;
    let spec = match &args.material {
        Some(m) => MaterialSpec::resolve(m).context("--material")?,
        None => {
            let own = system.layers.iter().find_map(|l| l.material.clone());
            match own {
                Some(material) => MaterialSpec {
                    material,
                    wavelength_m: system.wavelength_m,
                    source: "the model's own layers".into(),
                },
                None => MaterialSpec::resolve("thz-resin")?,
            }
        }
    };
    let material = spec
        .for_design(system.wavelength_m, system.medium_index)
        .context("--material")?;
    let process = Process {
        material,
        levels: args.levels,
        base_m: args.base,
    };
    let fabrication = fabricate(system, &process)?;

    let simulation = if args.simulate {
        Some(simulate(&args, &model, &fabrication.as_built(system))?)
    } else {
        None
    };
    let source = Source {
        model: &model.path,
        sha256: sha256_file(&model.path.join(FILE_NAME))?,
        simulation,
    };
    let manifest = export(system, &fabrication, target, &args.out, &source)?;
    if args.json {
        println!("{}", serde_json::to_string(&manifest)?);
        return Ok(());
    }
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "{}: {} files ({:.1} kB) for {} layers of {}×{} in {}; material {} (n = {}, κ = {}), {}, \
         one 2π of relief = {:.4} mm",
        target,
        manifest.files.len(),
        bytes as f64 / 1e3,
        manifest.layers.len(),
        manifest.nx,
        manifest.ny,
        args.out.display(),
        manifest.material.name,
        manifest.material.n,
        manifest.material.kappa,
        manifest
            .levels
            .map_or("continuous relief".to_string(), |l| format!("{l} levels")),
        manifest.full_wave_m * 1e3
    );
    if let Some(s) = &manifest.simulation {
        println!(
            "simulated on {} test samples of {}: designed {:.2} %, as built {:.2} % (mean power \
             on the detectors {:.2} % → {:.2} %)",
            s["samples"],
            s["dataset"].as_str().unwrap_or("?"),
            100.0 * s["designed_accuracy"].as_f64().unwrap_or(f64::NAN),
            100.0 * s["as_built_accuracy"].as_f64().unwrap_or(f64::NAN),
            100.0 * s["designed_detected_fraction"].as_f64().unwrap_or(f64::NAN),
            100.0 * s["as_built_detected_fraction"].as_f64().unwrap_or(f64::NAN),
        );
    }
    println!("manifest: {}", args.out.join("manifest.json").display());
    Ok(())
}

/// Accuracy of the design and of the system as built on the test set.
fn simulate(
    args: &Args,
    model: &Model,
    built: &photonflow_optics::OpticalSystem,
) -> anyhow::Result<serde_json::Value> {
    let name = args
        .dataset
        .clone()
        .or_else(|| model.dataset.clone())
        .unwrap_or_else(|| "mnist".into());
    let splits = data::load(&name, args.data.as_deref(), &FolderOptions::default())
        .context("--simulate needs the test set")?;
    let mut test = splits.test;
    if let Some(n) = args.test_limit {
        anyhow::ensure!(n > 0, "--test-limit must be at least 1");
        test = test.take(n);
    }
    let built_optics = Optics::new(built, model.optics.device())?;
    let built_masks = built_optics.masks_of(built);
    let bar = bar(args.json, 2 * test.len());
    let designed = evaluate(&model.optics, &model.masks, &test, 64, |d, _| {
        bar.set_position(d as u64)
    })?;
    let as_built = evaluate(&built_optics, &built_masks, &test, 64, |d, n| {
        bar.set_position((n + d) as u64)
    })?;
    bar.finish_and_clear();
    Ok(json!({
        "dataset": name,
        "samples": test.len(),
        "designed_accuracy": designed.accuracy,
        "as_built_accuracy": as_built.accuracy,
        "designed_detected_fraction": designed.detected_fraction,
        "as_built_detected_fraction": as_built.detected_fraction,
    }))
}

fn bar(hidden: bool, len: usize) -> ProgressBar {
    let bar = if hidden {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("simulating {bar:30} {pos}/{len} samples eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
