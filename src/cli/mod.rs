//! Command-line interface: argument definitions and dispatch. Every subcommand lives in its
//! own module and holds no physics.

mod data;
mod deconvolve;
mod demo;
mod eval;
mod export;
mod figures;
mod fpm;
mod hologram;
mod infer;
mod info;
mod light;
mod materials;
mod mesh;
mod microscope;
mod propagate;
mod psf;
mod reconstruct;
mod rig;
mod tomography;
mod train;

use clap::{Parser, Subcommand};
use photonflow_optics::units::parse_length;

/// photonflow — co-design optical computers.
#[derive(Debug, Parser)]
#[command(name = "photonflow", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads (default: all cores, or $RAYON_NUM_THREADS).
    #[arg(long, global = true, value_name = "N", allow_negative_numbers = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a small diffractive network on MNIST, evaluate it, classify a few test images,
    /// and write plots and a report — the whole loop in a few minutes.
    Demo(demo::Args),
    /// Propagate a field stored as .npy through free space.
    Propagate(propagate::Args),
    /// Train a diffractive network on MNIST, Fashion-MNIST or your own images.
    Train(train::Args),
    /// Accuracy, per-class accuracy and confusion matrix of a trained network.
    Eval(eval::Args),
    /// Fabrication files of a trained optical system (height maps, STL, GDSII, SLM bitmaps,
    /// arrays), with a manifest and, with --simulate, the accuracy as built.
    Export(export::Args),
    /// The relief materials photonflow knows, or one from a table: index and extinction at
    /// chosen wavelengths, dispersion model, range and source.
    Materials(materials::Args),
    /// Compile a matrix into the phases of a mesh of Mach–Zehnder interferometers (a
    /// photonic chip), and simulate a mesh.
    Mesh(mesh::Args),
    /// Classify images with a trained network, with confidences: on the ideal model, on a
    /// simulated rig with the imperfections of real parts, or on a lab rig over the network.
    Infer(infer::Args),
    /// Richardson–Lucy deconvolution of an image or z-stack (TIFF) with a PSF.
    Deconvolve(deconvolve::Args),
    /// Computer-generated holograms: the phase an SLM must show to form spots or an image,
    /// as a bitmap for the SLM, with the simulated result.
    Hologram(hologram::Args),
    /// Microscope PSFs: model one from an objective and its aberrations, or measure an
    /// objective's pupil from a z-stack of a bead.
    Psf(psf::Args),
    /// The transmitted-light image of a thin specimen (phase and amplitude images) through an
    /// objective under Köhler illumination: brightfield, darkfield, phase contrast, DIC.
    Microscope(microscope::Args),
    /// A thin object's phase (and amplitude) from its in-line holograms, recorded or simulated
    /// from a phase image: lensless holographic microscopy.
    Reconstruct(reconstruct::Args),
    /// Optical diffraction tomography: the fields a tomographic microscope records of a
    /// refractive-index map, or the map from recorded fields (multislice model, L-BFGS).
    Tomography(tomography::Args),
    /// Fourier ptychographic microscopy: the images an LED-array microscope records of a thin
    /// specimen, or the specimen's amplitude and phase beyond the objective's resolution (and
    /// the objective's aberrations) from recorded images.
    Fpm(fpm::Args),
    /// Rigs: serve a simulated one over slmsuite's network protocol, print a rig file to edit,
    /// or measure a rig's camera placement, camera noise, layer placements and SLM response.
    Rig(rig::Args),
    /// Check a dataset against its published checksums, or fetch MNIST / Fashion-MNIST.
    Data(data::Args),
    /// Print the version, compiled features and thread count.
    Info(info::Args),
}

/// The most worker threads photonflow starts: each takes a stack and kernel resources, and
/// tens of thousands fail to start (a panic inside the thread library, not an error).
const MAX_THREADS: usize = 1024;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let from_env = || {
        let n = std::env::var("RAYON_NUM_THREADS")
            .ok()?
            .trim()
            .parse::<usize>()
            .ok()?;
        Some(("$RAYON_NUM_THREADS", n))
    };
    if let Some((source, n)) = cli.threads.map(|n| ("--threads", n)).or_else(from_env) {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        anyhow::ensure!(
            n <= MAX_THREADS,
            "{source} {n}: at most {MAX_THREADS} worker threads (this machine has {cores} cores; \
             more threads than cores only slow the work down)"
        );
    }
    if let Some(n) = cli.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("--threads {n}: {e}"))?;
    }
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Propagate(args) => propagate::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Materials(args) => materials::run(args),
        Command::Mesh(args) => mesh::run(args),
        Command::Infer(args) => infer::run(args),
        Command::Deconvolve(args) => deconvolve::run(args),
        Command::Hologram(args) => hologram::run(args),
        Command::Psf(args) => psf::run(args),
        Command::Microscope(args) => microscope::run(args),
        Command::Reconstruct(args) => reconstruct::run(args),
        Command::Tomography(args) => tomography::run(args),
        Command::Fpm(args) => fpm::run(args),
        Command::Rig(args) => rig::run(args),
        Command::Data(args) => data::run(args),
        Command::Info(args) => info::run(args),
    }
}

/// clap value parser for lengths with units (`632.8nm`, `8um`, `-5cm`).
pub(crate) fn length(text: &str) -> Result<f64, String> {
    parse_length(text).map_err(|e| e.to_string())
}

/// Two lengths `X,Y`.
pub(crate) fn point(flag: &str, text: &str) -> anyhow::Result<(f64, f64)> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [x, y] = parts[..] else {
        anyhow::bail!("{flag} {text}: give two lengths X,Y, e.g. 1mm,-0.5mm");
    };
    // A bare 0 needs no unit.
    let l = |v: &str| match v {
        "0" => Ok(0.0),
        v => length(v).map_err(|e| anyhow::anyhow!("{flag} {text}: {e}")),
    };
    Ok((l(x)?, l(y)?))
}

/// A progress bar of `len` steps drawn with `template` on the terminal, or a hidden one
/// (`hidden`: for `--json`, whose output is for scripts).
pub(crate) fn progress_bar(hidden: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = if hidden {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Whole pixels of a flag's value: `3px`, or a length that is a whole number of pixels of
/// `pitch` metres.
pub(crate) fn whole_pixels(flag: &str, text: &str, pitch: f64) -> anyhow::Result<u32> {
    let text = text.trim();
    if let Some(n) = text.strip_suffix("px") {
        return n.trim().parse::<u32>().map_err(|_| {
            anyhow::anyhow!("{flag} {text}: give a whole number of pixels, e.g. 1px")
        });
    }
    let m = length(text).map_err(|e| anyhow::anyhow!("{flag} {text}: {e}"))?;
    let px = m / pitch;
    anyhow::ensure!(
        m >= 0.0 && (px - px.round()).abs() <= 1e-6 && px <= f64::from(u32::MAX),
        "{flag} {text}: give whole pixels of this model ({:.4} mm), e.g. 1px or {:.4}mm",
        pitch * 1e3,
        pitch * 1e3
    );
    Ok(px.round() as u32)
}

/// clap value parser for strictly positive powers (`25mW`).
pub(crate) fn positive_power(text: &str) -> Result<f64, String> {
    let v = photonflow_optics::units::parse_power(text).map_err(|e| e.to_string())?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("'{text}': give a positive power, e.g. 25mW"))
    }
}

/// The refractive-index map of `--volume PATH`: `[Nz, Ny, Nx]` float (`n`) or complex
/// (`n + iκ`) in a `.npy`, with its shape.
pub(crate) fn read_index_map(
    path: &std::path::Path,
) -> anyhow::Result<([usize; 3], Vec<num_complex::Complex<f64>>)> {
    use num_complex::Complex;
    use photonflow_optics::io::npy::{self, NpyData};
    let flag = |what: String| anyhow::anyhow!("--volume {}: {what}", path.display());
    let array = npy::read_npy(path).map_err(|e| flag(format!("cannot read it: {e}")))?;
    let [nz, ny, nx] = array.shape[..] else {
        return Err(flag(format!(
            "the array has shape {:?}; a refractive-index map is [Nz, Ny, Nx]",
            array.shape
        )));
    };
    let index = match array.data {
        NpyData::F32(v) => v.into_iter().map(|n| Complex::from(f64::from(n))).collect(),
        NpyData::F64(v) => v.into_iter().map(Complex::from).collect(),
        NpyData::C64(v) => v
            .into_iter()
            .map(|n| Complex::new(f64::from(n.re), f64::from(n.im)))
            .collect(),
        NpyData::C128(v) => v,
        NpyData::U8(_) | NpyData::U16(_) => {
            return Err(flag(
                "it holds integers; give the refractive index as float (n) or complex (n + iκ)"
                    .into(),
            ));
        }
    };
    Ok(([nz, ny, nx], index))
}

/// A `.npy` of real values (float, or 8/16-bit unsigned) as f64, with its shape; a complex
/// array is refused as `{flag} PATH: {complex}` (`complex`: what to do instead).
pub(crate) fn read_real_npy(
    path: &std::path::Path,
    flag: &str,
    complex: &str,
) -> anyhow::Result<(Vec<usize>, Vec<f64>)> {
    use anyhow::Context;
    use photonflow_optics::io::npy::{self, NpyData};
    let array = npy::read_npy(path).with_context(|| format!("{flag} {}", path.display()))?;
    let values = match array.data {
        NpyData::F32(v) => v.into_iter().map(f64::from).collect(),
        NpyData::F64(v) => v,
        NpyData::U8(v) => v.into_iter().map(f64::from).collect(),
        NpyData::U16(v) => v.into_iter().map(f64::from).collect(),
        NpyData::C64(_) | NpyData::C128(_) => {
            anyhow::bail!("{flag} {}: {complex}", path.display())
        }
    };
    Ok((array.shape, values))
}

/// clap value parser for strictly positive lengths.
pub(crate) fn positive_length(text: &str) -> Result<f64, String> {
    let v = length(text)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{text} must be positive"))
    }
}

#[cfg(test)]
mod tests {
    use super::whole_pixels;

    #[test]
    fn whole_pixels_take_pixels_or_whole_pixel_lengths() {
        assert_eq!(whole_pixels("--misalign", "1px", 0.4e-3).unwrap(), 1);
        assert_eq!(whole_pixels("--misalign", "0.8mm", 0.4e-3).unwrap(), 2);
        assert_eq!(whole_pixels("--misalign", "0px", 0.4e-3).unwrap(), 0);
        assert_eq!(whole_pixels("--misalign", "0mm", 0.4e-3).unwrap(), 0);
        for bad in ["0.5mm", "-1px", "1.5px", "-0.4mm", "abc"] {
            let e = whole_pixels("--search", bad, 0.4e-3)
                .unwrap_err()
                .to_string();
            assert!(e.contains("--search"), "{bad}: {e}");
        }
    }
}
