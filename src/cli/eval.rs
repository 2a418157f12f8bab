//! `photonflow eval`: accuracy, per-class accuracy and confusion matrix of a trained model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use photonflow_d2nn::eval::{Evaluation, Outcome, Perturbation, evaluate_perturbed};
use photonflow_d2nn::model::Model;
use photonflow_optics::units::format_length;

use super::figures;

/// Arguments of `photonflow eval`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// The trained model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    #[command(flatten)]
    test: super::data::TestData,
    /// Evaluate the first N test samples only.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    test_limit: Option<usize>,
    /// Samples per batch.
    #[arg(
        long,
        default_value_t = 64,
        value_name = "N",
        allow_negative_numbers = true
    )]
    batch: usize,
    /// Test-time lateral misalignment: every layer shifted by a random whole number of pixels
    /// in −M…M along x and along y, drawn anew per layer and per batch (`1px`, or a length
    /// that is a whole number of pixels, e.g. `0.4mm`).
    #[arg(long, value_name = "M")]
    misalign: Option<String>,
    /// Test-time axial misalignment: every layer moved along z by a random distance in
    /// −DZ…DZ, per layer and per batch (e.g. `1mm`).
    #[arg(long, value_name = "DZ", value_parser = super::length, allow_hyphen_values = true)]
    axial: Option<f64>,
    /// Quantise every phase mask to L uniform levels first (what an L-level fabrication process
    /// or SLM makes of it).
    #[arg(long, value_name = "L", allow_negative_numbers = true)]
    levels: Option<u32>,
    /// Seed of the random misalignments.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        allow_negative_numbers = true
    )]
    seed: u64,
    /// Also draw the confusion matrix into this PNG.
    #[arg(long, value_name = "OUT.png")]
    confusion_png: Option<PathBuf>,
    /// Print one JSON object with every number.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    light: super::light::LightArgs,
    #[command(flatten)]
    rig: super::rig::RigArgs,
}

/// Runs `photonflow eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let model = Model::load(&args.model)?;
    anyhow::ensure!(
        args.rig.rig.is_none() || !args.light.given(),
        "--spectrum, --lines, --source-na and --laser set the light of the simulation; a rig's \
         light is its own (for a simulated one, [source] in --rig-config)"
    );
    let model = args.light.apply(model)?;
    let (name, mut test) = args.test.load(&model)?;
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
    let bar = super::progress_bar(
        args.json,
        test.len() as u64,
        "evaluating {bar:30} {pos}/{len} samples {per_sec} eta {eta}",
    );
    if args.rig.rig.is_some() {
        anyhow::ensure!(
            args.misalign.is_none() && args.axial.is_none() && args.levels.is_none(),
            "--misalign, --axial and --levels perturb the model; a rig's imperfections are its \
             own (for a simulated one, the layers section of --rig-config)"
        );
        let mut rig = super::rig::open(&args.rig, &model.system)?;
        let description = super::rig::described(rig.as_mut(), &args.rig)?;
        let readout = super::rig::readout(&args.rig, &model.system, &description)?;
        let (ix, iy) = readout.input_size();
        let clock = Instant::now();
        let mut outcomes = Vec::with_capacity(test.len());
        let mut certainties = Vec::new();
        for start in (0..test.len()).step_by(args.batch) {
            let end = (start + args.batch).min(test.len());
            let images: Vec<Vec<f32>> = (start..end)
                .map(|i| test.image_ref(i).resized(iy, ix))
                .collect();
            let predictions = readout.classify(rig.as_mut(), &images, args.rig.frames)?;
            for (i, p) in (start..end).zip(predictions) {
                certainties.extend(p.certainty);
                let label = usize::from(test.labels[i]);
                outcomes.push(Outcome {
                    label,
                    predicted: p.class,
                    log_confidence: p.confidences[label].ln(),
                    detected: None,
                });
            }
            bar.set_position(end as u64);
        }
        bar.finish_and_clear();
        let e = Evaluation::tally(
            model.system.detector.classes.clone(),
            &outcomes,
            clock.elapsed().as_secs_f64(),
        );
        let certainty = (!certainties.is_empty())
            .then(|| certainties.iter().sum::<f64>() / certainties.len() as f64);
        let extra = serde_json::json!({
            "rig": description,
            "frames": args.rig.frames,
            "mean_certainty": certainty,
        });
        let note = format!(
            "on the rig {}, {} frame(s) a sample{}",
            description.name,
            args.rig.frames,
            certainty.map_or(String::new(), |c| format!(
                "; mean measurement certainty {:.1} %",
                100.0 * c
            ))
        );
        return report(&args, &model, &name, &e, extra, Some(note));
    }
    let perturbation = Perturbation {
        lateral_px: match &args.misalign {
            Some(m) => super::whole_pixels("--misalign", m, model.optics.grid.dx)?,
            None => 0,
        },
        axial_m: match args.axial {
            Some(a) if a < 0.0 => bail!("--axial must be ≥ 0 (it is the largest displacement)"),
            Some(a) => a,
            None => 0.0,
        },
        levels: match args.levels {
            Some(l) if l < 2 => bail!("--levels must be at least 2"),
            l => l,
        },
        seed: args.seed,
    };
    let e = evaluate_perturbed(
        &model.optics,
        &model.masks,
        &test,
        args.batch,
        &perturbation,
        |d, _| bar.set_position(d as u64),
    )
    .with_context(|| match args.axial {
        Some(a) => format!("evaluating with --axial {}", format_length(a)),
        None => "evaluating".to_string(),
    })?;
    bar.finish_and_clear();
    let extra = serde_json::json!({
        "light": super::light::json(&model.optics),
        "perturbation": {
            "lateral_px": perturbation.lateral_px,
            "axial_m": perturbation.axial_m,
            "levels": perturbation.levels,
            "seed": perturbation.seed,
        }
    });
    let note = (!perturbation.is_none()).then(|| {
        format!(
            "perturbed: layers shifted by up to ±{} px, moved by up to ±{:.3} mm along z, \
             phases {} (seed {}; new misalignments every {} samples)",
            perturbation.lateral_px,
            perturbation.axial_m * 1e3,
            perturbation
                .levels
                .map_or("continuous".to_string(), |l| format!("on {l} levels")),
            perturbation.seed,
            args.batch
        )
    });
    report(&args, &model, &name, &e, extra, note)
}

/// Prints an evaluation (`--json`: one object, with `extra`'s keys added), draws
/// `--confusion-png`; `note` says how it was perturbed or where it ran.
fn report(
    args: &Args,
    model: &Model,
    name: &str,
    e: &Evaluation,
    extra: serde_json::Value,
    note: Option<String>,
) -> anyhow::Result<()> {
    if let Some(png) = &args.confusion_png {
        figures::confusion(png, e).with_context(|| format!("--confusion-png {}", png.display()))?;
    }
    if args.json {
        let mut v = serde_json::to_value(e)?;
        v["dataset"] = name.into();
        v["model"] = model.path.display().to_string().into();
        if let Some(extra) = extra.as_object() {
            for (k, x) in extra {
                v[k] = x.clone();
            }
        }
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
    if let Some(note) = note {
        println!("{note}");
    }
    if args.rig.rig.is_none()
        && let Some(light) = super::light::describe(&model.optics)
    {
        println!("{light}");
    }
    if e.detected_fraction.is_finite() {
        println!(
            "mean fraction of the input power on the detectors: {:.3}",
            e.detected_fraction
        );
    }
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
