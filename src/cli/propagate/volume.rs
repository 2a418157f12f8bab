//! `photonflow propagate --volume RI.npy --dz LENGTH`: through a thick sample by the multislice
//! method before the free propagation over `--distance`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use photonflow_optics::io::npy::{self, NpyDataRef};
use photonflow_optics::propagate::multislice::{Multislice, Volume};
use photonflow_optics::units::format_length;
use photonflow_optics::{Field, Grid, Method, OpticsError, Planner, Propagation, Real};
use serde_json::json;

use super::Args;

/// The sample of `--volume` on the input's `grid`, slices `--dz` thick; `None` without it.
pub(super) fn load(args: &Args, grid: Grid) -> anyhow::Result<Option<Volume>> {
    let Some(path) = &args.volume else {
        if args.dz.is_some() || args.xz.is_some() {
            bail!("--dz and --xz describe a thick sample; give it with --volume RI.npy");
        }
        return Ok(None);
    };
    let flag = |what: &str| format!("--volume {}: {what}", path.display());
    let Some(dz) = args.dz else {
        bail!(
            "{}",
            flag("give the thickness of its slices with --dz (e.g. --dz 0.5um)")
        );
    };
    let conflicting = [
        ("--spectrum", args.spectrum.is_some()),
        ("--source-na", args.source_na.is_some()),
        ("--gaussian-schell", args.gaussian_schell.is_some()),
        ("--design-wavelength", args.design_wavelength.is_some()),
        ("--polarisation", args.polarisation.is_some()),
        ("--vector", args.vector),
    ];
    if let Some((name, _)) = conflicting.iter().find(|c| c.1) {
        bail!(
            "{name} does not go with --volume: a thick sample is propagated with coherent, \
             scalar light of one --wavelength"
        );
    }
    if args.method != Method::Auto && args.distance == 0.0 {
        bail!(
            "--method {}: it chooses the propagation beyond the sample's exit face, and with \
             --distance 0m there is none (the slices are always stepped by the angular \
             spectrum); drop --method or give a --distance",
            args.method
        );
    }
    let ([_, ny, nx], index) = super::super::read_index_map(path)?;
    if (ny, nx) != (grid.ny, grid.nx) {
        bail!(
            "{}",
            flag(&format!(
                "its slices are {ny} × {nx} samples but the input field is {} × {}; sample both \
                 on the same grid (--pitch)",
                grid.ny, grid.nx
            ))
        );
    }
    Volume::new(grid, dz, index)
        .map(Some)
        .map_err(|e| anyhow::Error::new(e).context(flag("not a usable sample")))
}

/// Carries `field` from the entrance to the exit face of `volume`, writes `--xz`, and returns
/// what the JSON report says of it.
pub(super) fn run<T: Real>(
    args: &Args,
    volume: &Volume,
    field: &mut Field<T>,
    planner: &Planner<T>,
    propagation: &Propagation,
) -> anyhow::Result<serde_json::Value> {
    let wave = photonflow_optics::Wave::new(field.wavelength(), args.index)?;
    let plan = Multislice::new(planner, volume, wave, propagation).map_err(|e| {
        let context = match e {
            OpticsError::Memory { .. } => {
                "--pad: the sample does not fit with this padding on this machine".to_string()
            }
            _ => format!(
                "cannot step through --volume ({} thick) in this window (pad more with --pad, \
                 widen the window, or pass --no-check to accept the error)",
                format_length(volume.thickness())
            ),
        };
        anyhow::Error::new(e).context(context)
    })?;
    let grid = volume.grid();
    let (row, nx) = (grid.ny / 2, grid.nx);
    let mut xz = Vec::with_capacity(if args.xz.is_some() {
        volume.nz() * nx
    } else {
        0
    });
    let power_in: f64 = field.power().iter().sum();
    let start = Instant::now();
    plan.propagate_visiting(field.data_mut(), |_, data| {
        if args.xz.is_some() {
            xz.extend(
                data[row * nx..(row + 1) * nx]
                    .iter()
                    .map(|z| z.norm_sqr().f64()),
            );
        }
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let power_exit: f64 = field.power().iter().sum();
    if let Some(path) = &args.xz {
        write_xz(path, &xz, volume)?;
    }
    let n = volume.index();
    let (lo, hi) = n.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v.re), hi.max(v.re))
    });
    Ok(json!({
        "slices": volume.nz(),
        "dz_m": volume.dz(),
        "thickness_m": volume.thickness(),
        "index_min": lo,
        "index_max": hi,
        "kappa_max": n.iter().map(|v| v.im).fold(0.0, f64::max),
        "steps": if propagation.padding == photonflow_optics::Padding::Circular {
            "exact angular spectrum, periodic window"
        } else {
            "angular spectrum band-limited to the light that stays in the padded window over the \
             thickness"
        },
        "padded_shape": plan.padded_shape(),
        "power_in": power_in,
        "power_exit": power_exit,
        "seconds": seconds,
        "xz": args.xz,
    }))
}

/// `--xz`: the intensity inside the sample, `[Nz, Nx]`, as .npy, or plotted (a `.png`) with z
/// up from the entrance face.
fn write_xz(path: &Path, xz: &[f64], volume: &Volume) -> anyhow::Result<()> {
    let (nz, g) = (volume.nz(), volume.grid());
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if png {
        let [x0, x1, _, _] = g.edges();
        let plot = crate::plot::ImagePlot {
            title: "|E|² inside the sample (the xz plane through the middle row)",
            colorbar_label: "intensity (a.u.)",
            colormap: crate::plot::Colormap::Inferno,
            axes: crate::plot::Axes::Lengths { x: "x", y: "z" },
            ..crate::plot::ImagePlot::new(xz, g.nx, nz, [x0, x1, 0.0, volume.thickness()])
        };
        crate::plot::write_image_png(path, &plot, 900, 760)
            .with_context(|| format!("cannot write --xz {}", path.display()))
    } else {
        npy::write_npy(path, &[nz, g.nx], NpyDataRef::F64(xz))
            .with_context(|| format!("cannot write --xz {}", path.display()))
    }
}

/// The line the summary prints for a volume.
pub(super) fn summary(volume: &Volume, report: &serde_json::Value) -> String {
    format!(
        "through --volume: {} slices of {} ({} thick), n {:.4} … {:.4}, power exit/in = {:.6}, \
         {:.3} ms",
        volume.nz(),
        format_length(volume.dz()),
        format_length(volume.thickness()),
        report["index_min"].as_f64().unwrap_or(f64::NAN),
        report["index_max"].as_f64().unwrap_or(f64::NAN),
        report["power_exit"].as_f64().unwrap_or(f64::NAN)
            / report["power_in"].as_f64().unwrap_or(f64::NAN),
        report["seconds"].as_f64().unwrap_or(f64::NAN) * 1e3,
    )
}
