//! `photonflow infer`: classify images with a trained model, every answer with a confidence.

use std::path::PathBuf;

use anyhow::Context;
use photonflow_d2nn::data::{GrayImage, load_image};
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
    #[command(flatten)]
    light: super::light::LightArgs,
    #[command(flatten)]
    rig: super::rig::RigArgs,
}

/// Runs `photonflow infer`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let model = Model::load(&args.model)?;
    if args.rig.rig.is_some() {
        anyhow::ensure!(
            !args.light.given(),
            "--spectrum, --lines, --source-na and --laser set the light of the simulation; a \
             rig's light is its own (for a simulated one, [source] in --rig-config)"
        );
        return on_rig(&args, &model);
    }
    let model = args.light.apply(model)?;
    let predictions = in_batches(&args, "classifying", |images| {
        let refs: Vec<ImageRef> = images
            .iter()
            .map(|i| ImageRef {
                pixels: Pixels::F32(&i.pixels),
                rows: i.rows,
                cols: i.cols,
            })
            .collect();
        Ok(infer(&model.optics, &model.masks, &refs))
    })?;
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
            json!({
                "model": model.path.display().to_string(),
                "classes": classes,
                "light": super::light::json(&model.optics),
                "predictions": list,
            })
        );
        return Ok(());
    }
    if let Some(light) = super::light::describe(&model.optics) {
        println!("{light}");
    }
    for (path, p) in args.images.iter().zip(&predictions) {
        let confidences: Vec<f64> = p.confidences.iter().map(|&c| f64::from(c)).collect();
        println!(
            "{}: {}; {:.1} % of the input power reached the detectors",
            path.display(),
            answer(classes, p.class, &confidences),
            100.0 * p.detected_fraction
        );
    }
    Ok(())
}

/// `label (x % confident; next: a y %, b z %)`: the answer and the two runners-up.
fn answer(classes: &[String], class: usize, confidences: &[f64]) -> String {
    let mut ranked: Vec<usize> = (0..confidences.len()).collect();
    ranked.sort_by(|&a, &b| confidences[b].total_cmp(&confidences[a]));
    let runners: Vec<String> = ranked[1..ranked.len().min(3)]
        .iter()
        .map(|&c| format!("{} {:.1} %", classes[c], 100.0 * confidences[c]))
        .collect();
    format!(
        "{} ({:.1} % confident; next: {})",
        classes[class],
        100.0 * confidences[class],
        runners.join(", ")
    )
}

/// `classify` run on the images of `args`, decoded [`INFER_BATCH`] at a time (memory stays
/// that of one batch however many images are given), with a progress bar beyond one batch
/// that says `what` is done.
fn in_batches<P>(
    args: &Args,
    what: &str,
    mut classify: impl FnMut(Vec<GrayImage>) -> anyhow::Result<Vec<P>>,
) -> anyhow::Result<Vec<P>> {
    let bar = super::progress_bar(
        args.json || args.images.len() <= INFER_BATCH,
        args.images.len() as u64,
        &format!("{what} {{bar:30}} {{pos}}/{{len}} images {{per_sec}} eta {{eta}}"),
    );
    let mut predictions = Vec::with_capacity(args.images.len());
    for paths in args.images.chunks(INFER_BATCH) {
        predictions.extend(classify(load_images(paths, args.invert)?)?);
        bar.inc(paths.len() as u64);
    }
    bar.finish_and_clear();
    Ok(predictions)
}

/// Decodes `paths`, inverted if `invert`.
fn load_images(paths: &[PathBuf], invert: bool) -> anyhow::Result<Vec<GrayImage>> {
    let mut images = paths
        .iter()
        .map(|p| load_image(p).with_context(|| format!("reading the image {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if invert {
        for i in &mut images {
            i.pixels.iter_mut().for_each(|v| *v = 1.0 - *v);
        }
    }
    Ok(images)
}

/// `photonflow infer --rig`: every image displayed on the rig's SLM, read from its camera.
fn on_rig(args: &Args, model: &Model) -> anyhow::Result<()> {
    let mut rig = super::rig::open(&args.rig, &model.system)?;
    let description = super::rig::described(rig.as_mut(), &args.rig)?;
    let readout = super::rig::readout(&args.rig, &model.system, &description)?;
    let (ix, iy) = readout.input_size();
    let predictions = in_batches(args, "classifying on the rig", |images| {
        let images: Vec<Vec<f32>> = images.iter().map(|i| i.resized(iy, ix).pixels).collect();
        Ok(readout.classify(rig.as_mut(), &images, args.rig.frames)?)
    })?;
    let classes = &model.system.detector.classes;
    let saturated = predictions
        .iter()
        .filter(|p| p.saturated_pixels > 0)
        .count();
    if args.json {
        let list: Vec<_> = args
            .images
            .iter()
            .zip(&predictions)
            .map(|(path, p)| {
                let total: f64 = p.energies.iter().sum();
                json!({
                    "image": path.display().to_string(),
                    "class": p.class,
                    "label": p.label,
                    "confidence": p.confidences[p.class],
                    "confidences": p.confidences,
                    "scores": p.scores,
                    "energy_fractions": p.energies.iter().map(|e| if total > 0.0 { e / total } else { 0.0 }).collect::<Vec<_>>(),
                    "region_signal_adu": p.energies,
                    "frames": p.frames,
                    "saturated_pixels": p.saturated_pixels,
                    "certainty": p.certainty,
                    "region_signal_errors_adu": p.energy_errors,
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "model": model.path.display().to_string(),
                "classes": classes,
                "rig": description,
                "predictions": list,
            })
        );
        return Ok(());
    }
    println!(
        "on the rig {}: SLM {} × {} ({} bits), camera {} × {} ({} bits), exposure {} s, {} frame(s) per image",
        description.name,
        description.slm.rows,
        description.slm.cols,
        description.slm.bits,
        description.camera.rows,
        description.camera.cols,
        description.camera.bits,
        description.exposure_s,
        args.rig.frames
    );
    for (path, p) in args.images.iter().zip(&predictions) {
        let certainty = p.certainty.map_or(String::new(), |c| {
            format!("; measurement certainty {:.1} %", 100.0 * c)
        });
        println!(
            "{}: {}{certainty}{}",
            path.display(),
            answer(classes, p.class, &p.confidences),
            if p.saturated_pixels > 0 {
                format!("; {} region pixels saturated", p.saturated_pixels)
            } else if p.energies.iter().sum::<f64>() <= 0.0 {
                "; no light above the black level reached the regions".to_string()
            } else {
                String::new()
            }
        );
    }
    if saturated > 0 {
        eprintln!(
            "warning: the camera saturated on {saturated} of {} images, so their region signals \
             are too low; shorten the exposure (camera.exposure in --rig-config)",
            predictions.len()
        );
    }
    Ok(())
}
