//! `photonflow demo`: the whole loop in a few minutes — find MNIST, train a small diffractive
//! network on it, evaluate it, classify a few test images, and write the plots and a report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use photonflow_compiler::export::{self, Target};
use photonflow_compiler::{Process, fabricate, material};
use photonflow_d2nn::config::Config;
use photonflow_d2nn::data::fetch::{fetch, system_downloader};
use photonflow_d2nn::data::{
    self, DataError, FolderOptions, GrayImage, SearchPaths, Splits, synthetic,
};
use photonflow_d2nn::eval::{Evaluation, ImageRef, Prediction, infer};
use photonflow_d2nn::model::Model;
use photonflow_d2nn::train::{TrainOptions, train};
use photonflow_optics::io::write_atomic;
use serde::Serialize;

use super::train::Progress;

/// Marker file of a demo folder: a later demo may replace what it holds.
const MARKER: &str = "demo.json";

/// Arguments of `photonflow demo`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// Dataset folder holding mnist/ (default: $PHOTONFLOW_DATA_DIR, the user cache,
    /// /usr/share/datasets; MNIST is fetched into the user cache when none is found).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Output folder: the run, the plots, the sample images and report.md (a previous demo
    /// there is replaced).
    #[arg(long, short, default_value = "photonflow-demo", value_name = "DIR")]
    out: PathBuf,
    /// Never download: without MNIST on disk, use the generated digits at once.
    #[arg(long)]
    offline: bool,
    /// Training samples (the first N of the training set; default: all of MNIST's 60 000).
    #[arg(
        long,
        default_value_t = 60_000,
        value_name = "N",
        allow_negative_numbers = true
    )]
    train_limit: usize,
    /// Test samples (the first N of the test set).
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "N",
        allow_negative_numbers = true
    )]
    test_limit: usize,
    /// Epochs (default: the demo preset's).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    epochs: Option<usize>,
    /// Print one JSON object with the results on stdout (no progress bars).
    #[arg(long)]
    json: bool,
}

/// Where the demo's data came from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Source {
    /// MNIST found on disk (or just fetched) in `dir`.
    Mnist { dir: PathBuf, fetched: bool },
    /// No MNIST: the generated digits, and why.
    Synthetic { reason: String },
}

/// Everything the demo measured, as `demo.json` and `--json` hold it.
#[derive(Debug, Serialize)]
struct Summary {
    dataset: String,
    source: Source,
    network: String,
    train_samples: usize,
    epochs: usize,
    train_seconds: f64,
    train_samples_per_s: f64,
    evaluation: Evaluation,
    predictions: Vec<Sample>,
    fabrication: FabricationSummary,
    total_seconds: f64,
    files: Vec<String>,
}

/// The demo model made as a relief: the process, the accuracy as built, the files written.
#[derive(Debug, Serialize)]
struct FabricationSummary {
    material: String,
    n: f64,
    kappa: f64,
    levels: u32,
    base_m: f64,
    full_wave_m: f64,
    as_built: Evaluation,
    exports: Vec<ExportSummary>,
}

/// One `photonflow export` the demo ran.
#[derive(Debug, Serialize)]
struct ExportSummary {
    target: String,
    folder: String,
    files: usize,
    bytes: u64,
    seconds: f64,
}

/// The demo's process: the THz printing resin of the D2NN literature at the demo's 0.75 mm,
/// 8 height levels, on a 1 mm base plate.
const FAB_MATERIAL: &str = "thz-resin";
const FAB_LEVELS: u32 = 8;
const FAB_BASE_M: f64 = 1e-3;

/// Exports the trained model to STL, GDS and SLM bitmaps under `out/fab/`, and evaluates it as
/// built (8 levels of the resin, with its absorption) on `test`.
fn fabricate_demo(
    model: &Model,
    test: &data::Dataset,
    out: &Path,
    say: impl Fn(&str),
) -> anyhow::Result<FabricationSummary> {
    let system = &model.system;
    let material = material::for_design(
        &material::resolve(FAB_MATERIAL)?,
        system.wavelength_m,
        system.medium_index,
    )?;
    let process = Process {
        material,
        levels: Some(FAB_LEVELS),
        base_m: FAB_BASE_M,
        unwrap: false,
    };
    let fabrication = fabricate(system, &process)?;
    let source = export::Source {
        model: &model.path,
        sha256: photonflow_compiler::manifest::sha256_file(
            &model.path.join(photonflow_optics::system::FILE_NAME),
        )?,
        simulation: None,
        gds: export::GdsSettings::default(),
        slm: export::SlmSettings {
            levels: Some(FAB_LEVELS),
            ..export::SlmSettings::default()
        },
        stl_unit: export::StlUnit::Mm,
    };
    let mut exports = Vec::new();
    for target in [Target::Stl, Target::Gds, Target::Slm] {
        let folder = out.join("fab").join(target.name());
        let started = Instant::now();
        let manifest = export::export(system, Some(&fabrication), target, &folder, &source)?;
        exports.push(ExportSummary {
            target: target.name().into(),
            folder: relative(&folder, out),
            files: manifest.files.len(),
            bytes: manifest.files.iter().map(|f| f.bytes).sum(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    say(&format!(
        "fabrication files in {}; simulating the network as built ({FAB_LEVELS} levels of \
         {FAB_MATERIAL} with its absorption) …",
        out.join("fab").display()
    ));
    let as_built =
        super::export::evaluate_system(model, &fabrication.as_built(system), test, |_, _| {})?;
    Ok(FabricationSummary {
        material: process.material.name.clone(),
        n: process.material.n,
        kappa: process.material.kappa,
        levels: FAB_LEVELS,
        base_m: FAB_BASE_M,
        full_wave_m: fabrication.full_wave_m,
        as_built,
        exports,
    })
}

/// One classified test image.
#[derive(Debug, Serialize)]
struct Sample {
    image: String,
    truth: String,
    prediction: Prediction,
}

/// Runs `photonflow demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let clock = Instant::now();
    anyhow::ensure!(args.train_limit > 0, "--train-limit must be at least 1");
    anyhow::ensure!(args.test_limit > 0, "--test-limit must be at least 1");
    prepare_out(&args.out)?;
    let say = |text: &str| {
        if !args.json {
            eprintln!("{text}");
        }
    };

    let (splits, source) = find_data(&args)?;
    let dataset = match &source {
        Source::Mnist { dir, fetched } => {
            say(&format!(
                "data: MNIST in {}{}",
                dir.display(),
                if *fetched { " (just fetched)" } else { "" }
            ));
            "mnist"
        }
        Source::Synthetic { reason } => {
            warn_synthetic(reason);
            synthetic::NAME
        }
    };

    let mut config = Config::preset("demo")?;
    if let Some(e) = args.epochs {
        anyhow::ensure!(e > 0, "--epochs must be at least 1");
        config.training.epochs = e;
    }
    config.dataset = Some(dataset.to_string());
    let (nx, ny) = config.optics.neurons.xy();
    let gap = config.gaps()?.first().copied().unwrap_or(0.0);
    let network = format!(
        "{} phase-only layers of {nx}×{ny} neurons, {} pitch, λ = {}, {} apart",
        config.optics.layers,
        config.optics.pitch,
        config.optics.wavelength,
        photonflow_d2nn::config::Length(gap)
    );
    let train_samples = args.train_limit.min(splits.train.len());
    say(&format!(
        "training {network} on {train_samples} {dataset} images, {} epochs …",
        config.training.epochs
    ));
    let run_dir = args.out.join("run");
    let options = TrainOptions {
        resume: false,
        train_limit: Some(args.train_limit),
        test_limit: Some(args.test_limit),
    };
    let mut observer = Progress::new(
        args.json,
        Some(run_dir.join("plots")),
        &config,
        &splits.test,
    );
    let started = Instant::now();
    let trained = train(&run_dir, &config, &splits, &options, &mut observer)?;
    observer.finish();
    let train_seconds = started.elapsed().as_secs_f64();
    let evaluation = trained
        .evaluation
        .context("the demo trains at least one epoch")?;
    let samples_per_s = trained.history.iter().map(|m| m.samples_per_s).sum::<f64>()
        / trained.history.len().max(1) as f64;

    // Classify one test image of each class from files, as a user would.
    let model = Model::load(&run_dir)?;
    let samples_dir = args.out.join("samples");
    std::fs::create_dir_all(&samples_dir)
        .with_context(|| format!("creating {}", samples_dir.display()))?;
    let test = &splits.test;
    let picks: Vec<usize> = (0..test.classes())
        .filter_map(|c| (0..test.len()).find(|&i| usize::from(test.labels[i]) == c))
        .collect();
    let mut paths = Vec::new();
    let mut images = Vec::new();
    for &i in &picks {
        let image = GrayImage {
            rows: test.rows,
            cols: test.cols,
            pixels: test.image_ref(i).to_f32(),
        };
        let path = samples_dir.join(format!(
            "test-{i:05}-{}.png",
            test.class_names[usize::from(test.labels[i])]
        ));
        image.save_png(&path)?;
        paths.push(path);
        images.push(data::load_image(paths.last().expect("just pushed"))?);
    }
    let refs: Vec<ImageRef> = images
        .iter()
        .map(|i| ImageRef {
            pixels: photonflow_d2nn::eval::Pixels::F32(&i.pixels),
            rows: i.rows,
            cols: i.cols,
        })
        .collect();
    let predictions: Vec<Sample> = infer(&model.optics, &model.masks, &refs)
        .into_iter()
        .zip(&picks)
        .zip(&paths)
        .map(|((prediction, &i), path)| Sample {
            image: relative(path, &args.out),
            truth: test.class_names[usize::from(test.labels[i])].clone(),
            prediction,
        })
        .collect();

    let fabrication = fabricate_demo(&model, &test.clone().take(args.test_limit), &args.out, say)?;

    let files = [
        "report.md",
        "fab/stl/",
        "fab/gds/mask.gds",
        "fab/slm/",
        "run/plots/layers.png",
        "run/plots/outputs.png",
        "run/plots/confusion.png",
        "run/plots/training.png",
        "run/model/system.json",
        "run/metrics.jsonl",
        "samples/",
    ]
    .map(String::from)
    .to_vec();
    let summary = Summary {
        dataset: dataset.to_string(),
        source,
        network,
        train_samples,
        epochs: config.training.epochs,
        train_seconds,
        train_samples_per_s: samples_per_s,
        evaluation,
        predictions,
        fabrication,
        total_seconds: clock.elapsed().as_secs_f64(),
        files,
    };
    let report = report(&summary, &args.out);
    write_file(&args.out.join("report.md"), report.as_bytes())?;
    let json = serde_json::to_string_pretty(&summary)?;
    write_file(&args.out.join(MARKER), json.as_bytes())?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!();
        print!("{}", console_summary(&summary, &args.out));
        if let Source::Synthetic { reason } = &summary.source {
            warn_synthetic(reason);
        }
    }
    Ok(())
}

/// Makes sure `out` can take a demo: absent, empty, or holding an earlier demo (whose results
/// are removed). Anything else is refused, so that the demo never deletes a user's files.
fn prepare_out(out: &Path) -> anyhow::Result<()> {
    if !out.exists() {
        return std::fs::create_dir_all(out)
            .with_context(|| format!("--out {}: cannot create it", out.display()));
    }
    if !out.is_dir() {
        bail!("--out {} is a file; give a folder", out.display());
    }
    let empty = std::fs::read_dir(out)
        .with_context(|| format!("--out {}: cannot list it", out.display()))?
        .next()
        .is_none();
    if empty {
        return Ok(());
    }
    if !out.join(MARKER).is_file() {
        bail!(
            "--out {} already holds files that are not a photonflow demo; choose a new or \
             empty folder",
            out.display()
        );
    }
    for old in ["run", "samples", "fab"] {
        let p = out.join(old);
        if p.exists() {
            std::fs::remove_dir_all(&p)
                .with_context(|| format!("removing the previous demo's {}", p.display()))?;
        }
    }
    Ok(())
}

/// MNIST from the usual places, else fetched into the user cache, else the generated digits.
/// Corrupt MNIST files are an error, not a reason to fall back: they need fixing.
fn find_data(args: &Args) -> anyhow::Result<(Splits, Source)> {
    let paths = SearchPaths::from_env(args.data.as_deref());
    let not_found = match paths.locate("mnist") {
        Ok(found) => {
            let dir = found.dir().to_path_buf();
            let splits = found.load(&FolderOptions::default())?;
            return Ok((
                splits,
                Source::Mnist {
                    dir,
                    fetched: false,
                },
            ));
        }
        Err(e @ DataError::NotFound { .. }) => e,
        Err(e) => return Err(e.into()),
    };
    let reason = if args.offline {
        format!("{not_found}\n(--offline: no download attempted)")
    } else if args.data.is_some() {
        format!("{not_found}\n(--data given: nothing is downloaded elsewhere)")
    } else if let Some(cache) = &paths.cache_dir {
        let dir = cache.join("mnist");
        if !args.json {
            eprintln!(
                "MNIST not found on this machine; fetching it into {} …",
                dir.display()
            );
        }
        match fetch("mnist", &dir, &system_downloader) {
            Ok(dir) => {
                let splits = data::load("mnist", Some(&dir), &FolderOptions::default())?;
                return Ok((splits, Source::Mnist { dir, fetched: true }));
            }
            Err(e) => format!("{not_found}\nand the download failed: {e}"),
        }
    } else {
        format!("{not_found}\n(no user cache folder: $HOME is not set)")
    };
    Ok((
        synthetic::digits(12_000, 2_000, 1),
        Source::Synthetic { reason },
    ))
}

fn warn_synthetic(reason: &str) {
    let rule = "!".repeat(78);
    eprintln!("{rule}");
    eprintln!("!! NO MNIST FOUND: this demo runs on GENERATED digits (a stroke font with random");
    eprintln!("!! distortions), not on MNIST. Its accuracy says nothing about real digits.");
    eprintln!("!! To use MNIST: `photonflow data fetch mnist`, or pass --data DIR holding");
    eprintln!("!! mnist/ (the four IDX files), or set $PHOTONFLOW_DATA_DIR.");
    eprintln!("{rule}");
    eprintln!("why: {reason}");
    eprintln!("{rule}");
}

/// `path` relative to `base` when it lies inside it.
fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, |w| std::io::Write::write_all(w, bytes))
        .with_context(|| format!("writing {}", path.display()))
}

/// The few lines printed at the end.
fn console_summary(s: &Summary, out: &Path) -> String {
    let e = &s.evaluation;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{}: test accuracy {:.2} % on {} images after {} epochs on {} images ({:.0} s of \
         training, {:.0} samples/s)",
        s.dataset,
        100.0 * e.accuracy,
        e.samples,
        s.epochs,
        s.train_samples,
        s.train_seconds,
        s.train_samples_per_s
    );
    for p in &s.predictions {
        let c = &p.prediction;
        let _ = writeln!(
            t,
            "  {:<28} true {}  →  {} ({:.1} % confident){}",
            p.image,
            p.truth,
            c.label,
            100.0 * c.confidences[c.class],
            if c.label == p.truth { "" } else { "  ✗" }
        );
    }
    let f = &s.fabrication;
    let _ = writeln!(
        t,
        "as built ({} levels of {}, κ = {}): test accuracy {:.2} % (designed {:.2} %); STL, \
         GDS and SLM files in {}",
        f.levels,
        f.material,
        f.kappa,
        100.0 * f.as_built.accuracy,
        100.0 * e.accuracy,
        out.join("fab").display()
    );
    let _ = writeln!(
        t,
        "report: {}   plots: {}   model: {}",
        out.join("report.md").display(),
        out.join("run/plots").display(),
        out.join("run/model").display()
    );
    t
}

/// `report.md`: what ran, what it measured, what to look at and what to try next.
fn report(s: &Summary, out: &Path) -> String {
    let e = &s.evaluation;
    let mut t = String::new();
    let _ = writeln!(t, "# photonflow demo\n");
    match &s.source {
        Source::Mnist { dir, fetched } => {
            let _ = writeln!(
                t,
                "Data: **MNIST** from `{}`{}.\n",
                dir.display(),
                if *fetched {
                    " (fetched by this demo)"
                } else {
                    ""
                }
            );
        }
        Source::Synthetic { reason } => {
            let _ = writeln!(
                t,
                "> **Warning: no MNIST was found, so this demo ran on generated digits** (a \
                 stroke font with random distortions), not on MNIST. Its accuracy says nothing \
                 about real handwritten digits. Get MNIST with `photonflow data fetch mnist` or \
                 pass `--data DIR`.\n>\n> Why: {}\n",
                reason.replace('\n', " ")
            );
        }
    }
    let _ = writeln!(
        t,
        "Network: {} (the `demo` preset: `photonflow train --preset demo --print-config --out x` \
         prints it). Trained on the first {} training images for {} epochs in {:.0} s \
         ({:.0} samples/s), Adam with a cosine learning-rate schedule.\n",
        s.network, s.train_samples, s.epochs, s.train_seconds, s.train_samples_per_s
    );
    let _ = writeln!(
        t,
        "## Result\n\nTest accuracy **{:.2} %** on {} test images ({:.0} samples/s); on \
         average {:.2} % of the input power reaches the detector regions.\n",
        100.0 * e.accuracy,
        e.samples,
        e.samples_per_s,
        100.0 * e.detected_fraction
    );
    let _ = writeln!(t, "| class | accuracy |\n|---|---:|");
    for (c, a) in e.classes.iter().zip(&e.per_class_accuracy) {
        let _ = writeln!(t, "| {c} | {:.1} % |", 100.0 * a);
    }
    let _ = writeln!(
        t,
        "\n## Inference on single images\n\n`photonflow infer --model {} {}/samples/*.png` \
         gives:\n",
        out.join("run").display(),
        out.display()
    );
    let _ = writeln!(
        t,
        "| image | true | predicted | confidence | on detectors |\n|---|---|---|---:|---:|"
    );
    for p in &s.predictions {
        let c = &p.prediction;
        let _ = writeln!(
            t,
            "| `{}` | {} | {} | {:.1} % | {:.2} % |",
            p.image,
            p.truth,
            c.label,
            100.0 * c.confidences[c.class],
            100.0 * c.detected_fraction
        );
    }
    let f = &s.fabrication;
    let _ = writeln!(
        t,
        "\n## Fabrication\n\nThe model as a 3D-printed relief of {} (n = {}, κ = {}): {} \
         height levels (one 2π of relief = {:.4} mm, one level {:.4} mm) on a {} mm base plate. \
         Simulated as built — quantised heights, with the material's absorption — it classifies \
         **{:.2} %** of the test images (designed: {:.2} %); {:.2} % of the input power reaches \
         the detectors (designed: {:.2} %).\n",
        f.material,
        f.n,
        f.kappa,
        f.levels,
        f.full_wave_m * 1e3,
        f.full_wave_m * 1e3 / f64::from(f.levels),
        f.base_m * 1e3,
        100.0 * f.as_built.accuracy,
        100.0 * e.accuracy,
        100.0 * f.as_built.detected_fraction,
        100.0 * e.detected_fraction
    );
    let _ = writeln!(
        t,
        "| target | folder | files | size | time |\n|---|---|---:|---:|---:|"
    );
    for x in &f.exports {
        let _ = writeln!(
            t,
            "| {} | `{}` | {} | {:.1} kB | {:.2} s |",
            x.target,
            x.folder,
            x.files,
            x.bytes as f64 / 1e3,
            x.seconds
        );
    }
    let _ = writeln!(
        t,
        "\nEvery folder has a `manifest.json` with the sha256 of each file; each file was read \
         back and checked before it was kept (the STL closed and of the designed volume, the GDS \
         rasterised back to the level map, the bitmaps mapped back to phase). \
         `photonflow export --model {} --target stl|gds|slm|height|npy …` writes them with other \
         settings.",
        out.join("run").display()
    );
    let _ = writeln!(
        t,
        "\n## Figures\n\n- `run/plots/layers.png`: the phase mask of every layer\n- \
         `run/plots/outputs.png`: the detector plane for one test image of each class, detector \
         regions outlined\n- `run/plots/confusion.png`: confusion matrix\n- \
         `run/plots/training.png`: loss and accuracy per epoch\n"
    );
    let _ = writeln!(
        t,
        "## Next\n\n- `photonflow eval --model {run} --json` — accuracy, per-class accuracy and \
         confusion matrix\n- `photonflow train --preset lin2018 --out lin2018-run` — the \
         5-layer network of Lin et al. (2018) on the full training set (about an hour on two \
         cores)\n- `{run}/model/` is the trained optical system (system.json and one .npy mask \
         per layer) that the export commands read\n\nTotal time of this demo: {:.0} s.",
        s.total_seconds,
        run = out.join("run").display()
    );
    t
}
