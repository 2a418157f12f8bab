//! `photonflow deconvolve`: Richardson–Lucy deconvolution of a 2-D or 3-D TIFF with a PSF.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use photonflow_optics::deconvolve::{Options, PsfCentre, RichardsonLucy, centre_psf};
use photonflow_optics::io::tiff::{Spacing, Stack, read_stack, write_stack};
use photonflow_optics::pupil::{frame_median, fwhm};
use photonflow_optics::units::format_length;
use serde_json::json;

use super::progress_bar;
use super::psf::sections_png;

/// Arguments of `photonflow deconvolve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image or z-stack to deconvolve (TIFF, one channel).
    image: PathBuf,
    /// The PSF on the image's sampling (TIFF): a measured bead, or `photonflow psf model` /
    /// `psf retrieve --psf-out`. At most the image's size along each axis (a larger one is
    /// cropped around its centre).
    #[arg(long, value_name = "PSF.tif")]
    psf: PathBuf,
    /// Where to write the result (float32 TIFF, the image's calibration).
    #[arg(long, value_name = "OUT.tif")]
    out: PathBuf,
    /// Richardson–Lucy iterations.
    #[arg(long, default_value_t = 50, value_name = "N")]
    iterations: usize,
    /// The image's background (camera offset, in its units): a number, or `auto` for the
    /// median of its outer frame of pixels.
    #[arg(long, default_value = "auto", value_name = "COUNTS|auto")]
    background: String,
    /// The PSF's background, subtracted before it is normalised: a number, `auto`, or 0 for a
    /// modelled PSF.
    #[arg(long, default_value = "0", value_name = "COUNTS|auto")]
    psf_background: String,
    /// How to find the PSF's centre: centroid, peak, or none (taken as centred, on voxel
    /// ⌊n/2⌋ of each axis, as `psf model` writes it).
    #[arg(long, default_value = "centroid", value_name = "HOW")]
    centre: String,
    /// Biggs–Andrews acceleration: about 3× fewer iterations for the same fit.
    #[arg(long)]
    accelerate: bool,
    /// Also a PNG of the image and the result (in-focus plane, and x–z section of a stack).
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow deconvolve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let image =
        read_stack(&args.image).with_context(|| format!("the image {}", args.image.display()))?;
    let psf = read_stack(&args.psf).with_context(|| format!("--psf {}", args.psf.display()))?;
    check_spacing(&image.spacing, &psf.spacing, &args.psf)?;
    let background = level("--background", &args.background, &image)?;
    let psf_background = level("--psf-background", &args.psf_background, &psf)?;
    let how = match args.centre.as_str() {
        "centroid" => Some(PsfCentre::Centroid),
        "peak" => Some(PsfCentre::Peak),
        "none" => None,
        other => bail!("--centre {other}: give centroid, peak or none"),
    };
    let (kernel, kernel_shape) = crop_to(&psf, image.shape);
    let kernel: Vec<f32> = kernel
        .iter()
        .map(|&v| (f64::from(v) - psf_background).max(0.0) as f32)
        .collect();
    let kernel = match how {
        Some(how) => centre_psf(&kernel, kernel_shape, how),
        None => Ok(kernel),
    }
    .map_err(|e| anyhow::anyhow!("--psf {}: {e}", args.psf.display()))?;
    let started = Instant::now();
    let plan = RichardsonLucy::new(&kernel, kernel_shape, image.shape)
        .map_err(|e| anyhow::anyhow!("--psf {}: {e}", args.psf.display()))?;
    let options = Options {
        iterations: args.iterations,
        background: background.max(0.0),
        accelerate: args.accelerate,
    };
    let bar = progress_bar(
        args.json,
        args.iterations as u64,
        "deconvolving {bar:30} {pos}/{len} iterations, divergence {msg}",
    );
    let mut first = None;
    let result = plan
        .run_with(&image.data, &options, |p| {
            first.get_or_insert(p.divergence);
            bar.set_position(p.iteration as u64);
            bar.set_message(format!("{:.4e}", p.divergence));
        })
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.image.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let mut out = Stack::new(result.image, image.shape)?;
    out.spacing = image.spacing;
    write_stack(&args.out, &out).with_context(|| format!("--out {}", args.out.display()))?;
    let above = |s: &Stack| -> Vec<f64> {
        s.data
            .iter()
            .map(|&v| (f64::from(v) - background).max(0.0))
            .collect()
    };
    let before = above(&image);
    let after: Vec<f64> = out.data.iter().map(|&v| f64::from(v)).collect();
    let (w0, w1) = (fwhm(&before, image.shape), fwhm(&after, image.shape));
    if let Some(png) = &args.png {
        let (dx, dz) = (image.spacing.x, image.spacing.z);
        sections_png(
            png,
            &[("image", &before), ("deconvolved", &after)],
            image.shape,
            dx,
            dz,
            "Richardson–Lucy",
        )?;
    }
    let widths = |w: &[Option<f64>; 3]| json!({"x_px": w[0], "y_px": w[1], "z_planes": w[2]});
    let report = json!({
        "image": args.image.display().to_string(),
        "psf": args.psf.display().to_string(),
        "out": args.out.display().to_string(),
        "shape": image.shape,
        "psf_shape": kernel_shape,
        "padded_shape": plan.padded_shape(),
        "background": background,
        "psf_background": psf_background,
        "iterations": result.iterations,
        "accelerate": args.accelerate,
        "divergence_start": first,
        "divergence": result.divergence,
        "seconds": seconds,
        "brightest_object_fwhm": {"before": widths(&w0), "after": widths(&w1)},
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{}: {:?} (z, y, x), background {background:.1}; PSF {:?} from {}",
        args.image.display(),
        image.shape,
        kernel_shape,
        args.psf.display()
    );
    println!(
        "{} iterations{} in {seconds:.2} s: I-divergence {:.4e} → {:.4e}; written to {}",
        result.iterations,
        if args.accelerate {
            " (accelerated)"
        } else {
            ""
        },
        first.unwrap_or(f64::NAN),
        result.divergence,
        args.out.display()
    );
    let f = |v: Option<f64>, d: Option<f64>, unit: &str| match (v, d) {
        (Some(v), Some(d)) => format_length(v * d),
        (Some(v), None) => format!("{v:.2} {unit}"),
        _ => "—".to_string(),
    };
    for (label, w) in [("before", w0), ("after", w1)] {
        println!(
            "brightest object {label}: FWHM x {}, y {}, z {}",
            f(w[0], image.spacing.x, "px"),
            f(w[1], image.spacing.y, "px"),
            f(w[2], image.spacing.z, "planes")
        );
    }
    Ok(())
}

/// A level flag: a number, or `auto` (the median of the stack's outer frame).
fn level(flag: &str, text: &str, stack: &Stack) -> anyhow::Result<f64> {
    if text.trim() == "auto" {
        return Ok(frame_median(&stack.data, stack.shape));
    }
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => bail!("{flag} {text}: give a number (in the file's units) or auto"),
    }
}

/// The PSF must sample space as the image does, where both files say how.
fn check_spacing(image: &Spacing, psf: &Spacing, path: &Path) -> anyhow::Result<()> {
    for (axis, a, b) in [
        ("x", image.x, psf.x),
        ("y", image.y, psf.y),
        ("z", image.z, psf.z),
    ] {
        if let (Some(a), Some(b)) = (a, b)
            && (a - b).abs() > 0.01 * a
        {
            bail!(
                "--psf {}: its {axis} spacing is {} and the image's {}; a PSF must be sampled \
                 as the image is (make one at the image's spacing with `photonflow psf model`, \
                 or `psf retrieve --psf-out` from a bead imaged like it)",
                path.display(),
                format_length(b),
                format_length(a)
            );
        }
    }
    Ok(())
}

/// The PSF cropped around its centre voxel `⌊p/2⌋` to at most `limit` along each axis.
fn crop_to(psf: &Stack, limit: [usize; 3]) -> (Vec<f32>, [usize; 3]) {
    let s = psf.shape;
    let shape = [s[0].min(limit[0]), s[1].min(limit[1]), s[2].min(limit[2])];
    if shape == s {
        return (psf.data.clone(), s);
    }
    // Keep the centre voxel at the centre: start = ⌊p/2⌋ − ⌊q/2⌋ along each axis.
    let start: Vec<usize> = (0..3).map(|a| s[a] / 2 - shape[a] / 2).collect();
    let mut out = Vec::with_capacity(shape.iter().product());
    for z in 0..shape[0] {
        for y in 0..shape[1] {
            let row = ((z + start[0]) * s[1] + y + start[1]) * s[2] + start[2];
            out.extend_from_slice(&psf.data[row..row + shape[2]]);
        }
    }
    (out, shape)
}
