//! `photonflow microscope`: the transmitted-light image of a thin specimen (its phase and
//! amplitude from image files) through an objective under Köhler illumination: brightfield,
//! darkfield, Zernike phase contrast, DIC.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex;
use photonflow_d2nn::data::load_image;
use photonflow_optics::Grid;
use photonflow_optics::io::tiff::{read_stack, write_stack};
use photonflow_optics::pupil::{Condenser, Dic, Pupil};
use photonflow_optics::units::format_length;
use serde_json::json;

use super::psf::{ObjectiveArgs, stack_of, zernike_terms};
use super::{length, positive_length, progress_bar};
use crate::plot::{Colormap, ImagePlot, write_image_grid_png};

/// A thin specimen's phase and amplitude images (`photonflow microscope`, `fpm simulate`).
#[derive(Debug, clap::Args)]
pub(super) struct Specimen {
    /// The specimen's phase: a TIFF in radians, or any image (TIFF, PNG, JPEG, .npy) with
    /// --phase-range.
    #[arg(long, value_name = "FILE")]
    phase: Option<PathBuf>,
    /// Map the --phase file's values linearly so that its minimum is 0 and its maximum this
    /// many radians (for an 8-bit phase image).
    #[arg(long, value_name = "RAD")]
    phase_range: Option<f64>,
    /// The specimen's amplitude transmission (an image; divided by its maximum). Default:
    /// clear (1).
    #[arg(long, value_name = "FILE")]
    amplitude: Option<PathBuf>,
}

/// Arguments of `photonflow microscope`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    specimen: Specimen,
    #[command(flatten)]
    objective: ObjectiveArgs,
    /// Pixel pitch of the specimen's images in sample space, e.g. 107nm.
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    pitch: f64,
    /// The condenser's numerical aperture (0: coherent light).
    #[arg(long, default_value_t = 0.0, value_name = "NA")]
    condenser_na: f64,
    /// An annular condenser's inner NA (above the objective's NA: darkfield).
    #[arg(long, default_value_t = 0.0, value_name = "NA")]
    condenser_inner_na: f64,
    /// Zernike phase contrast: a phase ring of this many degrees (90: a quarter wave) in the
    /// objective's pupil over the image of the condenser's annulus (--condenser-inner-na to
    /// --condenser-na).
    #[arg(long, value_name = "DEG", allow_negative_numbers = true)]
    phase_ring: Option<f64>,
    /// The phase ring's intensity transmission (0.25: the light not scattered by the specimen
    /// is dimmed to a quarter, which raises the contrast).
    #[arg(long, default_value_t = 0.25, value_name = "T")]
    ring_transmission: f64,
    /// Differential interference contrast: the shear between the two beams in sample space,
    /// e.g. 100nm (usually below the resolution).
    #[arg(long, value_parser = positive_length, value_name = "LENGTH")]
    dic_shear: Option<f64>,
    /// The DIC shear's direction, degrees from x.
    #[arg(
        long,
        default_value_t = 45.0,
        value_name = "DEG",
        allow_negative_numbers = true,
        requires = "dic_shear"
    )]
    dic_angle: f64,
    /// The DIC bias retardation, degrees (90: a quarter wave; the background at half the
    /// light).
    #[arg(
        long,
        default_value_t = 90.0,
        value_name = "DEG",
        allow_negative_numbers = true,
        requires = "dic_shear"
    )]
    dic_bias: f64,
    /// Sample the condenser's directions on every K-th frequency of the grid (1: all, the
    /// exact image; K² times faster with K > 1).
    #[arg(long, default_value_t = 1, value_name = "K")]
    source_stride: usize,
    /// Distances of the specimen beyond focus, e.g. -2um,0um,2um (a weak phase object shows
    /// only out of focus).
    #[arg(long, value_parser = length, value_delimiter = ',', allow_negative_numbers = true,
          default_value = "0m", value_name = "LENGTH,…")]
    defocus: Vec<f64>,
    /// Aberrations of the objective as Noll index = radians RMS, e.g. 11=0.5.
    #[arg(long, value_name = "J=RAD,…", value_delimiter = ',')]
    zernike: Vec<String>,
    /// The image stack to write (float32 TIFF, one plane per --defocus; a blank specimen in
    /// brightfield gives 1).
    #[arg(long, value_name = "IMAGE.tif")]
    out: PathBuf,
    /// Also a PNG of the specimen's phase and the images.
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow microscope`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let objective = args.objective.objective(None)?;
    let (ny, nx, specimen) = args.specimen.read()?;
    if nx.max(ny) > 4096 {
        bail!("the specimen is {nx}×{ny} pixels: at most 4096 per side");
    }
    let grid = Grid::new(nx, ny, args.pitch, args.pitch)?;
    let mut pupil = Pupil::new(objective, grid).map_err(|e| anyhow::anyhow!("--pitch: {e}"))?;
    pupil
        .aberrate(&zernike_terms(&args.zernike)?)
        .map_err(|e| anyhow::anyhow!("--zernike: {e}"))?;
    if let Some(deg) = args.phase_ring {
        if args.condenser_inner_na <= 0.0 || args.condenser_na > objective.na {
            bail!(
                "--phase-ring needs an annular condenser inside the objective's NA {}: give \
                 --condenser-inner-na and --condenser-na (e.g. 0.2 and 0.25 for NA 0.5)",
                objective.na
            );
        }
        pupil
            .phase_ring(
                args.condenser_inner_na,
                args.condenser_na,
                deg.to_radians(),
                args.ring_transmission,
            )
            .map_err(|e| {
                anyhow::anyhow!("--phase-ring/--ring-transmission: {}", e.into_problem())
            })?;
    }
    let dic = args.dic_shear.map(|shear| {
        let angle = args.dic_angle.to_radians();
        Dic {
            shear: (shear * angle.cos(), shear * angle.sin()),
            bias: args.dic_bias.to_radians(),
        }
    });
    // What the camera sees of the specimen: itself, or DIC's sheared difference.
    let seen = match &dic {
        Some(d) => d.specimen(&pupil, &specimen).map_err(|e| {
            anyhow::anyhow!("--dic-shear/--dic-angle/--dic-bias: {}", e.into_problem())
        })?,
        None => specimen.clone(),
    };
    let condenser = Condenser {
        na: args.condenser_na,
        inner_na: args.condenser_inner_na,
        stride: args.source_stride,
    };
    let bar = progress_bar(
        args.json,
        0,
        "imaging {bar:30} {pos}/{len} source directions × planes {eta}",
    );
    let start = Instant::now();
    let mut directions = 0;
    let image = pupil
        .image(&seen, &condenser, &args.defocus, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            directions = total / args.defocus.len().max(1);
        })
        .map_err(|e| {
            let flag = match &e {
                photonflow_optics::OpticsError::InvalidParameter { name: "pitch", .. } => "--pitch",
                photonflow_optics::OpticsError::InvalidParameter {
                    name: "source stride",
                    ..
                } => "--source-stride",
                _ => "--condenser-na/--condenser-inner-na",
            };
            anyhow::anyhow!("{flag}: {}", e.into_problem())
        })?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let planes = args.defocus.len();
    let shape = [planes, ny, nx];
    let dz = if planes > 1 {
        args.defocus[1] - args.defocus[0]
    } else {
        0.0
    };
    let uniform_steps = args
        .defocus
        .windows(2)
        .all(|w| ((w[1] - w[0]) - dz).abs() <= 1e-9 * dz.abs().max(1e-12));
    let stack = stack_of(
        &image,
        shape,
        args.pitch,
        dz,
        planes > 1 && uniform_steps && dz > 0.0,
    )?;
    write_stack(&args.out, &stack).with_context(|| format!("--out {}", args.out.display()))?;
    // Each plane's mean, and its contrast: the standard deviation over the mean.
    let (means, contrast): (Vec<f64>, Vec<f64>) = image
        .chunks(nx * ny)
        .map(|p| {
            let mean = p.iter().sum::<f64>() / p.len() as f64;
            let var = p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / p.len() as f64;
            (mean, if mean > 0.0 { var.sqrt() / mean } else { 0.0 })
        })
        .unzip();
    if let Some(png) = &args.png {
        write_png(png, &specimen, &image, [ny, nx], args.pitch, &args.defocus)?;
    }
    let report = json!({
        "out": args.out.display().to_string(),
        "shape": shape,
        "pitch_m": args.pitch,
        "defocus_m": args.defocus,
        "condenser": {"na": condenser.na, "inner_na": condenser.inner_na, "stride": condenser.stride},
        "sigma": condenser.na / objective.na,
        "dic": args.dic_shear.map(|shear| json!({"shear_m": shear, "angle_deg": args.dic_angle, "bias_deg": args.dic_bias})),
        "phase_ring": args.phase_ring.map(|deg| json!({"degrees": deg, "transmission": args.ring_transmission})),
        "directions": directions,
        "mean": means,
        "contrast": contrast,
        "seconds": seconds,
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{}×{} specimen through NA {} at {} under a condenser of NA {}{} ({} directions), \
         written to {} in {seconds:.2} s",
        nx,
        ny,
        objective.na,
        format_length(objective.wave.wavelength),
        condenser.na,
        if condenser.inner_na > 0.0 {
            format!(" (annulus from {})", condenser.inner_na)
        } else {
            String::new()
        },
        directions,
        args.out.display()
    );
    for ((z, m), c) in args.defocus.iter().zip(&means).zip(&contrast) {
        println!(
            "  defocus {:>10}: mean {m:.4}, contrast (std/mean) {c:.4}",
            format_length(*z)
        );
    }
    Ok(())
}

/// Whether `path` starts as a TIFF does (a file too short or unreadable is left to the image
/// reader's message).
pub(super) fn is_tiff(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head == b"II*\0" || &head == b"MM\0*")
}

impl Specimen {
    /// The specimen's transmittance `a·exp(iφ)` from `--phase` (with `--phase-range`) and/or
    /// `--amplitude` (divided by its maximum; clear without), as `(rows, cols, values)`.
    pub(super) fn read(&self) -> anyhow::Result<(usize, usize, Vec<Complex<f64>>)> {
        let (phase, range, amplitude) = (
            self.phase.as_deref(),
            self.phase_range,
            self.amplitude.as_deref(),
        );
        if phase.is_none() && amplitude.is_none() {
            bail!("give the specimen: --phase FILE and/or --amplitude FILE");
        }
        if let Some(r) = range
            && !(r.is_finite() && r > 0.0)
        {
            bail!("--phase-range {r}: give a positive number of radians, e.g. 3.14");
        }
        let phase = phase.map(|p| read_phase(p, "--phase", range)).transpose()?;
        let amplitude = amplitude
            .map(|p| read_plane(p, "--amplitude", false))
            .transpose()?;
        let (ny, nx) = match (&phase, &amplitude) {
            (Some(p), Some(a)) if (p.0, p.1) != (a.0, a.1) => bail!(
                "--phase is {}×{} pixels and --amplitude {}×{}: give images of one size",
                p.1,
                p.0,
                a.1,
                a.0
            ),
            (Some(p), _) | (None, Some(p)) => (p.0, p.1),
            (None, None) => unreachable!("checked above"),
        };
        let phase = phase.map(|(_, _, v)| v);
        let amplitude = match amplitude {
            Some((_, _, v)) => {
                let max = v.iter().copied().fold(0.0, f64::max);
                if max <= 0.0 {
                    bail!("--amplitude: the image is black everywhere (no light passes)");
                }
                Some(v.iter().map(|a| a.max(0.0) / max).collect::<Vec<f64>>())
            }
            None => None,
        };
        let specimen = (0..nx * ny)
            .map(|i| {
                let a = amplitude.as_ref().map_or(1.0, |a| a[i]);
                let p = phase.as_ref().map_or(0.0, |p| p[i]);
                Complex::from_polar(a, p)
            })
            .collect();
        Ok((ny, nx, specimen))
    }
}

/// A phase image in radians: a TIFF as it is, or any image mapped onto `0…range`.
pub(super) fn read_phase(
    path: &Path,
    flag: &str,
    range: Option<f64>,
) -> anyhow::Result<(usize, usize, Vec<f64>)> {
    let (ny, nx, v) = read_plane(path, flag, range.is_none())?;
    let v = match range {
        Some(range) => {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
            let span = if hi > lo { hi - lo } else { 1.0 };
            v.iter().map(|x| (x - lo) / span * range).collect()
        }
        None => v,
    };
    Ok((ny, nx, v))
}

/// One plane of `path` as `(rows, cols, values)`: a TIFF's values as they are, or an image's
/// in `[0, 1]`; `radians` demands a TIFF (other images need a scale).
pub(super) fn read_plane(
    path: &Path,
    flag: &str,
    radians: bool,
) -> anyhow::Result<(usize, usize, Vec<f64>)> {
    // The format from the first bytes; each reader then reads the file itself.
    std::fs::File::open(path).with_context(|| format!("{flag} {}", path.display()))?;
    if is_tiff(path) {
        let s = read_stack(path).with_context(|| format!("{flag} {}", path.display()))?;
        let [nz, ny, nx] = s.shape;
        if nz != 1 {
            bail!("{flag} {}: {nz} planes; give one image", path.display());
        }
        return Ok((ny, nx, s.data.iter().map(|&v| f64::from(v)).collect()));
    }
    if radians {
        bail!(
            "{flag} {}: not a TIFF of radians; give --phase-range (the radians its values span, \
             e.g. 3.14)",
            path.display()
        );
    }
    let img = load_image(path).with_context(|| format!("{flag} {}", path.display()))?;
    Ok((
        img.rows,
        img.cols,
        img.pixels.iter().map(|&v| f64::from(v)).collect(),
    ))
}

/// The specimen's phase and each plane's image, row 0 at the top as in the input files.
fn write_png(
    path: &Path,
    specimen: &[Complex<f64>],
    image: &[f64],
    [ny, nx]: [usize; 2],
    pitch: f64,
    defocus: &[f64],
) -> anyhow::Result<()> {
    let flip = |v: &[f64]| -> Vec<f64> { v.chunks(nx).rev().flatten().copied().collect() };
    let extent = [0.0, nx as f64 * pitch, 0.0, ny as f64 * pitch];
    let phase = flip(&specimen.iter().map(|v| v.arg()).collect::<Vec<_>>());
    let planes: Vec<Vec<f64>> = image.chunks(nx * ny).map(flip).collect();
    let titles: Vec<String> = defocus
        .iter()
        .map(|z| format!("image, defocus {}", format_length(*z)))
        .collect();
    let mut panels = vec![ImagePlot {
        title: "specimen phase",
        colorbar_label: "phase (rad)",
        colormap: Colormap::Twilight,
        ..ImagePlot::new(&phase, nx, ny, extent)
    }];
    for (p, t) in planes.iter().zip(&titles) {
        panels.push(ImagePlot {
            title: t,
            colorbar_label: "intensity",
            colormap: Colormap::Gray,
            ..ImagePlot::new(p, nx, ny, extent)
        });
    }
    let columns = panels.len().min(3);
    write_image_grid_png(path, &panels, columns, 420, 380, "microscope image")?;
    Ok(())
}
