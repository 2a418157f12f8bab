//! `photonflow eval`: accuracy, per-class accuracy and confusion matrix of a trained model.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use photonflow_d2nn::data::{self, FolderOptions};
use photonflow_d2nn::eval::evaluate;
use photonflow_d2nn::model::Model;

use super::figures;

/// Arguments of `photonflow eval`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// The trained model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// Dataset folder (see `photonflow train --help`).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Dataset name; default: the one the run was trained on, else mnist.
    #[arg(long, value_name = "NAME")]
    dataset: Option<String>,
    /// Evaluate the first N test samples only.
    #[arg(long, value_name = "N")]
    test_limit: Option<usize>,
    /// Samples per batch.
    #[arg(long, default_value_t = 64, value_name = "N")]
    batch: usize,
    /// Also draw the confusion matrix into this PNG.
    #[arg(long, value_name = "OUT.png")]
    confusion_png: Option<PathBuf>,
    /// Print one JSON object with every number.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let model = Model::load(&args.model)?;
    let name = args
        .dataset
        .clone()
        .or_else(|| model.dataset.clone())
        .unwrap_or_else(|| "mnist".into());
    let splits = data::load(&name, args.data.as_deref(), &FolderOptions::default())?;
    let mut test = splits.test;
    if let Some(n) = args.test_limit {
        anyhow::ensure!(n > 0, "--test-limit must be at least 1");
        test = test.take(n);
    }
    anyhow::ensure!(
        test.class_names.len() == model.optics.classes(),
        "{name} has {} classes but the model reads out {}; pass the dataset it was trained on \
         (--dataset)",
        test.class_names.len(),
        model.optics.classes()
    );
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(test.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("evaluating {bar:30} {pos}/{len} samples {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let e = evaluate(&model.optics, &model.masks, &test, args.batch, |d, _| {
        bar.set_position(d as u64)
    });
    bar.finish_and_clear();
    if let Some(png) = &args.confusion_png {
        figures::confusion(png, &e)
            .with_context(|| format!("--confusion-png {}", png.display()))?;
    }
    if args.json {
        let mut v = serde_json::to_value(&e)?;
        v["dataset"] = name.into();
        v["model"] = model.path.display().to_string().into();
        println!("{v}");
        return Ok(());
    }
    println!(
        "{} on {name} ({} test samples): accuracy {:.2} %  ({:.0} samples/s)",
        model.system.name,
        e.samples,
        100.0 * e.accuracy,
        e.samples_per_s
    );
    println!(
        "mean fraction of the input power on the detectors: {:.3}",
        e.detected_fraction
    );
    let width = e
        .classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(1)
        .max(5);
    println!("\nper class:");
    for (c, a) in e.classes.iter().zip(&e.per_class_accuracy) {
        println!("  {c:>width$}  {:6.2} %", 100.0 * a);
    }
    println!("\nconfusion matrix (rows: true class, columns: predicted):");
    for (c, row) in e.classes.iter().zip(&e.confusion_matrix) {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>5}")).collect();
        println!("  {c:>width$} {}", cells.join(""));
    }
    Ok(())
}
