//! `photonflow export`: fabrication files of a trained (or hand-written) optical system, with a
//! manifest, and optionally the accuracy of the system as built.

use std::path::PathBuf;

use anyhow::{Context, bail};
use photonflow_compiler::export::gds::GdsMode;
use photonflow_compiler::export::slm::{self, SlmPanel};
use photonflow_compiler::export::{GdsSettings, SlmSettings, Source, Target, export};
use photonflow_compiler::manifest::sha256_file;
use photonflow_compiler::{Process, fabricate, material};
use photonflow_d2nn::data::Dataset;
use photonflow_d2nn::eval::{Evaluation, evaluate};
use photonflow_d2nn::model::Model;
use photonflow_d2nn::network::Optics;
use photonflow_optics::OpticalSystem;
use photonflow_optics::lut::Lut;
use photonflow_optics::material::MaterialEntry;
use photonflow_optics::system::FILE_NAME;
use serde_json::json;

/// Arguments of `photonflow export`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// The model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// What to write: npy (level and height maps), height (height maps as .npy and 16-bit
    /// PNG), stl (one solid per layer, mm), gds (multilevel lithography masks), oasis (the
    /// same masks as one OASIS file, several times smaller), hdf5 (one
    /// design.h5: phase, height and level maps with the physical parameters as attributes;
    /// needs a build with `--features hdf5`) or slm (gray bitmaps for a phase-only spatial
    /// light modulator).
    #[arg(long, value_name = "TARGET")]
    target: String,
    /// Relief material: a built-in name (`photonflow materials` lists them), FILE.toml or
    /// FILE.toml:NAME, or measured n and k in FILE.csv (default: the layers' own material,
    /// else thz-resin).
    #[arg(long, value_name = "NAME|FILE")]
    material: Option<String>,
    /// Quantise to L levels (default: the levels the model was trained with, else a continuous
    /// relief).
    #[arg(long, value_name = "L", allow_negative_numbers = true)]
    levels: Option<u32>,
    /// Unwrap each layer's phase into a relief without 2π steps (a refractive surface instead
    /// of a Fresnel one), for the npy, height, stl and hdf5 targets.
    #[arg(long)]
    unwrap: bool,
    /// Base plate under every layer (e.g. 1mm).
    #[arg(long, value_name = "T", value_parser = super::length, allow_hyphen_values = true, default_value = "0m")]
    base: f64,
    /// Mask layers (gds, oasis): `levels` (level k on layer k) or `binary` (one layer per
    /// binary etch step, layer b+1 etching 2^b levels).
    #[arg(long, value_name = "MODE", default_value = "levels")]
    gds_mode: String,
    /// Length unit of the STL coordinates: mm (what slicers assume), um, cm, m or in.
    #[arg(long, value_name = "UNIT", default_value = "mm")]
    stl_unit: String,
    /// Add alignment marks (a cross in each corner) to every mask cell (gds, oasis), on this
    /// layer (0 … 32767, not one of the mask layers).
    #[arg(long, value_name = "LAYER", value_parser = clap::value_parser!(u16).range(0..=32767), allow_negative_numbers = true)]
    marks: Option<u16>,
    /// The SLM panel, WIDTHxHEIGHT@PITCH (e.g. 1920x1080@8um); default: the design's pixels.
    #[arg(long, value_name = "WxH@PITCH")]
    slm: Option<String>,
    /// Measured SLM lookup table, CSV gray,phase[,amplitude] (phase in radians).
    #[arg(long, value_name = "FILE")]
    lut: Option<PathBuf>,
    /// Bits per SLM gray level: 8, 10, 12 or 16.
    #[arg(
        long,
        value_name = "B",
        default_value_t = 8,
        allow_negative_numbers = true
    )]
    bits: u32,
    /// Gray level of one full 2π on a linear SLM (default 2^bits).
    #[arg(long, value_name = "G", allow_negative_numbers = true)]
    two_pi_gray: Option<u32>,
    /// Resampling onto the SLM's pixels: nearest or bilinear (of exp(iφ)).
    #[arg(long, value_name = "METHOD", default_value = "nearest")]
    resample: String,
    /// SLM bitmap format: png or bmp (8-bit only).
    #[arg(long, value_name = "FORMAT", default_value = "png")]
    slm_format: String,
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
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    test_limit: Option<usize>,
    /// Print the manifest as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let target: Target = args.target.parse()?;
    target.check_available()?;
    check_flags(&args, target)?;
    let gds = GdsSettings {
        mode: match args.gds_mode.as_str() {
            "levels" => GdsMode::Levels,
            "binary" => GdsMode::BinaryMasks,
            other => bail!("--gds-mode {other}: use levels or binary"),
        },
        alignment_marks: args.marks,
    };
    let slm = slm_settings(&args)?;
    let model = Model::load(&args.model)?;
    let system = &model.system;
    let fabrication = if target.needs_fabrication() {
        Some(fabricate(system, &process(&args, system)?)?)
    } else {
        None
    };
    let simulation = if args.simulate {
        let built = match &fabrication {
            Some(f) => f.as_built(system),
            None => slm::displayed(system, &slm)?,
        };
        Some(simulate(&args, &model, &built)?)
    } else {
        None
    };
    let source = Source {
        model: &model.path,
        sha256: sha256_file(&model.path.join(FILE_NAME))?,
        simulation,
        gds,
        slm,
        stl_unit: args.stl_unit.parse()?,
    };
    let manifest = export(system, fabrication.as_ref(), target, &args.out, &source)?;
    if args.json {
        println!("{}", serde_json::to_string(&manifest)?);
        return Ok(());
    }
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let levels = manifest
        .levels
        .map_or("continuous relief".to_string(), |l| format!("{l} levels"));
    let made_as = match (&manifest.material, manifest.full_wave_m) {
        (Some(m), Some(full)) => format!(
            "material {} (n = {}, κ = {}), {levels}, one 2π of relief = {:.4} mm",
            m.name,
            m.n,
            m.kappa,
            full * 1e3
        ),
        _ => {
            let t = &manifest.target_settings;
            format!(
                "{}-bit {} on {}×{} SLM pixels, phase error ≤ {:.4} rad",
                t["bits"],
                t["mapping"]["kind"].as_str().unwrap_or("?"),
                t["panel"]["width"],
                t["panel"]["height"],
                t["phase_error_bound_rad"].as_f64().unwrap_or(f64::NAN)
            )
        }
    };
    println!(
        "{}: {} files ({:.1} kB) for {} layers of {}×{} in {}; {made_as}",
        target,
        manifest.files.len(),
        bytes as f64 / 1e3,
        manifest.layers.len(),
        manifest.nx,
        manifest.ny,
        args.out.display(),
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

/// Flags that belong to other targets are refused by name, so no setting is silently ignored.
fn check_flags(args: &Args, target: Target) -> anyhow::Result<()> {
    let slm_flags = [
        ("--slm", args.slm.is_some()),
        ("--lut", args.lut.is_some()),
        ("--bits", args.bits != 8),
        ("--two-pi-gray", args.two_pi_gray.is_some()),
        ("--resample", args.resample != "nearest"),
        ("--slm-format", args.slm_format != "png"),
    ];
    let relief_flags = [
        ("--material", args.material.is_some()),
        ("--base", args.base != 0.0),
    ];
    let gds_flags = [
        ("--gds-mode", args.gds_mode != "levels"),
        ("--marks", args.marks.is_some()),
    ];
    let continuous_flags = [("--unwrap", args.unwrap)];
    let stl_flags = [("--stl-unit", args.stl_unit != "mm")];
    let misplaced = |flags: &[(&'static str, bool)], applies: bool| {
        flags
            .iter()
            .find(|(_, given)| *given && !applies)
            .map(|f| f.0)
    };
    if let Some(flag) = misplaced(&slm_flags, target == Target::Slm)
        .or_else(|| misplaced(&relief_flags, target.needs_fabrication()))
        .or_else(|| misplaced(&gds_flags, target.is_mask()))
        .or_else(|| misplaced(&stl_flags, target == Target::Stl))
        .or_else(|| {
            misplaced(
                &continuous_flags,
                target.needs_fabrication() && !target.is_mask(),
            )
        })
    {
        bail!(
            "{flag} does not apply to --target {target}; drop it or choose the target it belongs to"
        );
    }
    Ok(())
}

/// The `slm` target's settings from the flags.
fn slm_settings(args: &Args) -> anyhow::Result<SlmSettings> {
    let lut = match &args.lut {
        Some(path) => Some((Lut::read_csv(path)?, path.display().to_string())),
        None => None,
    };
    Ok(SlmSettings {
        panel: args
            .slm
            .as_deref()
            .map(str::parse::<SlmPanel>)
            .transpose()?,
        bits: args.bits,
        two_pi_gray: args.two_pi_gray,
        lut,
        resample: args.resample.parse()?,
        format: args.slm_format.parse()?,
        levels: args.levels,
    })
}

/// The relief process from the flags: the material (given, the layers' own, else thz-resin),
/// the levels and the base plate.
fn process(args: &Args, system: &OpticalSystem) -> anyhow::Result<Process> {
    let entry = match &args.material {
        Some(m) => material::resolve(m).context("--material")?,
        None => match system.layers.iter().find_map(|l| l.material.as_ref()) {
            Some(own) => MaterialEntry::of(own, system.wavelength_m, "the model's own layers"),
            None => material::resolve("thz-resin")?,
        },
    };
    let material = material::for_design(&entry, system.wavelength_m, system.medium_index)
        .context("--material")?;
    Ok(Process {
        material,
        levels: args.levels,
        base_m: args.base,
        unwrap: args.unwrap,
    })
}

/// Evaluates `system` — `model`'s design as built or as displayed — on `test`, with `model`'s
/// device.
pub(super) fn evaluate_system(
    model: &Model,
    system: &OpticalSystem,
    test: &Dataset,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<Evaluation> {
    let optics = Optics::new(system, model.optics.device())?;
    let masks = optics.masks_of(system);
    Ok(evaluate(&optics, &masks, test, 64, progress)?)
}

/// Accuracy of the design and of the system as built on the test set.
fn simulate(
    args: &Args,
    model: &Model,
    built: &OpticalSystem,
) -> anyhow::Result<serde_json::Value> {
    let (name, mut test) =
        super::data::test_set(model, args.data.as_deref(), args.dataset.as_deref())
            .context("--simulate needs the test set")?;
    if let Some(n) = args.test_limit {
        anyhow::ensure!(n > 0, "--test-limit must be at least 1");
        test = test.take(n);
    }
    let bar = super::progress_bar(
        args.json,
        2 * test.len() as u64,
        "simulating {bar:30} {pos}/{len} samples eta {eta}",
    );
    let designed = evaluate(&model.optics, &model.masks, &test, 64, |d, _| {
        bar.set_position(d as u64)
    })?;
    let as_built = evaluate_system(model, built, &test, |d, n| bar.set_position((n + d) as u64))?;
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
