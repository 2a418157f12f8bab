//! `photonflow infer`: classify images with a trained model, every answer with a confidence.

use std::path::PathBuf;

use anyhow::Context;
use photonflow_d2nn::data::load_image;
use photonflow_d2nn::eval::{INFER_BATCH, ImageRef, Pixels, infer};
use photonflow_d2nn::model::Model;
use serde_json::json;

/// Arguments of `photonflow infer`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// The trained model: a run folder (RUN/) or a folder holding system.json.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// Images to classify: PNG, JPEG or .npy (2-D, values in [0, 1] or uint8); any size (each
    /// is resampled onto the model's input area), colour is converted to gray.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// Invert the images (v → 1 − v) first: for dark strokes on a light background, when the
    /// model was trained on light-on-dark data such as MNIST.
    #[arg(long)]
    invert: bool,
    /// Print one JSON object with every prediction.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow infer`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let model = Model::load(&args.model)?;
    // Decoded and run a batch at a time: memory stays that of one batch however many images
    // are given.
    let bar = super::progress_bar(
        args.json || args.images.len() <= INFER_BATCH,
        args.images.len() as u64,
        "classifying {bar:30} {pos}/{len} images {per_sec} eta {eta}",
    );
    let mut predictions = Vec::with_capacity(args.images.len());
    for paths in args.images.chunks(INFER_BATCH) {
        let mut images = paths
            .iter()
            .map(|p| load_image(p).with_context(|| format!("reading the image {}", p.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if args.invert {
            for i in &mut images {
                i.pixels.iter_mut().for_each(|v| *v = 1.0 - *v);
            }
        }
        let refs: Vec<ImageRef> = images
            .iter()
            .map(|i| ImageRef {
                pixels: Pixels::F32(&i.pixels),
                rows: i.rows,
                cols: i.cols,
            })
            .collect();
        predictions.extend(infer(&model.optics, &model.masks, &refs));
        bar.inc(paths.len() as u64);
    }
    bar.finish_and_clear();
    let classes = &model.system.detector.classes;
    if args.json {
        let list: Vec<_> = args
            .images
            .iter()
            .zip(&predictions)
            .map(|(path, p)| {
                json!({
                    "image": path.display().to_string(),
                    "class": p.class,
                    "label": p.label,
                    "confidence": p.confidences[p.class],
                    "confidences": p.confidences,
                    "energy_fractions": p.energy_fractions,
                    "detected_fraction": p.detected_fraction,
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "model": model.path.display().to_string(), "classes": classes, "predictions": list })
        );
        return Ok(());
    }
    for (path, p) in args.images.iter().zip(&predictions) {
        let mut ranked: Vec<usize> = (0..p.confidences.len()).collect();
        ranked.sort_by(|&a, &b| p.confidences[b].total_cmp(&p.confidences[a]));
        let runners: Vec<String> = ranked[1..ranked.len().min(3)]
            .iter()
            .map(|&c| format!("{} {:.1} %", classes[c], 100.0 * p.confidences[c]))
            .collect();
        println!(
            "{}: {} ({:.1} % confident; next: {}); {:.1} % of the input power reached the detectors",
            path.display(),
            p.label,
            100.0 * p.confidences[p.class],
            runners.join(", "),
            100.0 * p.detected_fraction
        );
    }
    Ok(())
}
