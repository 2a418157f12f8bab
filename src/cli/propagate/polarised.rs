//! `photonflow propagate` with polarised light: `--polarisation`, `--vector`, `--jones`,
//! `--analyser`, `--ez`, `--stokes`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use num_complex::Complex;
use photonflow_optics::fft::FftCache;
use photonflow_optics::io::npy::{self, NpyData};
use photonflow_optics::polarisation::{
    JonesElement, JonesMask, JonesMatrix, Polarisation, Polarised, Stokes, VectorField,
};
use photonflow_optics::propagate::{Planned, Window};
use photonflow_optics::units::format_length;
use photonflow_optics::{Field, Grid, OpticsError, Planner, Propagation, Wave};
use serde_json::json;

use super::{Args, NpyComplex, describe_plan, merge, summary};
use crate::plot;

/// What the polarisation flags ask for.
pub(super) struct Options {
    /// The light's polarisation; `None` when the input holds both components (`--vector`).
    light: Option<Polarisation>,
    /// `--jones` elements at the input plane, in order, with their text.
    jones: Vec<(String, Jones)>,
    /// `--analyser` at the output plane.
    analyser: Option<(String, Jones)>,
}

/// A Jones element by name, or a file of one matrix per sample.
enum Jones {
    Element(JonesElement),
    File(PathBuf),
}

impl Jones {
    fn parse(flag: &str, text: &str) -> anyhow::Result<Self> {
        if text.to_ascii_lowercase().ends_with(".npy") {
            return Ok(Self::File(PathBuf::from(text)));
        }
        text.parse().map(Self::Element).map_err(|e| {
            anyhow::anyhow!(
                "{flag} {text}: {e}; or a .npy file of [Ny, Nx, 2, 2] complex Jones matrices"
            )
        })
    }

    /// The element sampled on `grid`.
    fn mask(&self, flag: &str, text: &str, grid: Grid) -> anyhow::Result<JonesMask> {
        match self {
            Self::Element(e) => Ok(e.mask(grid)?),
            Self::File(path) => read_mask(path, grid)
                .with_context(|| format!("{flag} {text}: cannot use this Jones mask")),
        }
    }
}

/// A `[Ny, Nx, 2, 2]` complex .npy of Jones matrices on `grid`.
fn read_mask(path: &Path, grid: Grid) -> anyhow::Result<JonesMask> {
    let array = npy::read_npy(path)?;
    let data: Vec<Complex<f64>> = match array.data {
        NpyData::C128(v) => v,
        NpyData::C64(v) => v
            .into_iter()
            .map(|z| Complex::new(z.re.into(), z.im.into()))
            .collect(),
        NpyData::F64(v) => v.into_iter().map(|x| Complex::new(x, 0.0)).collect(),
        NpyData::F32(v) => v.into_iter().map(|x| Complex::new(x.into(), 0.0)).collect(),
        _ => bail!(
            "the array is {}; give complex64 or complex128 Jones matrices",
            array.dtype_name()
        ),
    };
    if array.shape != [grid.ny, grid.nx, 2, 2] {
        bail!(
            "the array has shape {:?}; a Jones mask for this {}×{} field has shape [{}, {}, 2, 2] \
             (row, column, then the matrix [[Jxx, Jxy], [Jyx, Jyy]])",
            array.shape,
            grid.ny,
            grid.nx,
            grid.ny,
            grid.nx
        );
    }
    let m = data
        .chunks(4)
        .map(|j| JonesMatrix([[j[0], j[1]], [j[2], j[3]]]))
        .collect();
    Ok(JonesMask::new(grid, m)?)
}

/// The polarisation flags, checked; `None` for scalar light.
pub(super) fn options(args: &Args) -> anyhow::Result<Option<Options>> {
    let polarised = args.polarisation.is_some()
        || args.vector
        || !args.jones.is_empty()
        || args.analyser.is_some()
        || args.ez
        || args.stokes.is_some();
    if !polarised {
        return Ok(None);
    }
    if args.polarisation.is_none() && !args.vector {
        bail!(
            "--jones, --analyser, --ez and --stokes need polarised light: give --polarisation STATE \
             (e.g. x, rcp, linear:30deg, radial, unpolarised) or --vector for an input of E_x and E_y"
        );
    }
    if args.spectrum.is_some()
        || args.source_na.is_some()
        || args.gaussian_schell.is_some()
        || args.design_wavelength.is_some()
        || args.lines.is_some()
    {
        bail!(
            "polarised light is propagated at one wavelength, coherently or as two incoherent \
             modes; drop --spectrum, --source-na, --gaussian-schell, --design-wavelength and \
             --lines, or drop the polarisation flags"
        );
    }
    let light = match &args.polarisation {
        Some(text) => Some(
            text.parse::<Polarisation>()
                .map_err(|e| anyhow::anyhow!("--polarisation {text}: {e}"))?,
        ),
        None => None,
    };
    if args.ez && matches!(light, Some(Polarisation::Partial(_))) {
        bail!(
            "--ez: partially polarised light has no single field, so no E_z to write; drop --ez \
             or give a fully polarised --polarisation"
        );
    }
    let jones = args
        .jones
        .iter()
        .map(|t| Ok((t.clone(), Jones::parse("--jones", t)?)))
        .collect::<anyhow::Result<_>>()?;
    let analyser = match &args.analyser {
        Some(t) => Some((t.clone(), Jones::parse("--analyser", t)?)),
        None => None,
    };
    Ok(Some(Options {
        light,
        jones,
        analyser,
    }))
}

/// Propagates polarised light: writes the field's components (and `E_z`), or the Stokes images
/// of partially polarised light.
#[allow(clippy::too_many_arguments)]
pub(super) fn run<T: NpyComplex>(
    args: &Args,
    options: Options,
    input: Field<T>,
    planner: &Planner<T>,
    propagation: Propagation,
    window: Option<Window>,
    describe: &dyn Fn(OpticsError) -> anyhow::Error,
    keep_rank2: bool,
    mut report: serde_json::Value,
) -> anyhow::Result<()> {
    let grid = *input.grid();
    let wave = Wave::new(input.wavelength(), args.index)?;
    // the coherent modes to run: the input as it is (--vector), or the scalar field polarised
    let modes: Vec<(f64, Option<Polarised>)> = match &options.light {
        None => vec![(1.0, None)],
        Some(p) => p
            .modes()
            .map_err(|e| anyhow::anyhow!("--polarisation: {e}"))?
            .into_iter()
            .map(|(w, p)| (w, Some(p)))
            .collect(),
    };
    let input_masks = options
        .jones
        .iter()
        .map(|(text, j)| j.mask("--jones", text, grid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let plan = planner
        .plan_onto(&grid, wave, &propagation, window.as_ref())
        .map_err(describe)?;
    let out_grid = plan.output_grid();
    let analyser = match &options.analyser {
        Some((text, j)) => Some(j.mask("--analyser", text, out_grid)?),
        None => None,
    };
    let power_in: f64 = input.power().iter().sum();
    let start = Instant::now();
    let mut coherent: Option<VectorField<T>> = None;
    let mut stokes: Option<Vec<f64>> = None;
    for (weight, state) in &modes {
        let mut v = match state {
            None => VectorField::new(input.clone())?,
            Some(p) => VectorField::polarise(&input, p)?,
        };
        for mask in &input_masks {
            mask.apply(&mut v)?;
        }
        let mut v = v.propagate(&plan).map_err(describe)?;
        if let Some(a) = &analyser {
            a.apply(&mut v)?;
        }
        if modes.len() == 1 {
            coherent = Some(v);
        } else {
            let s = v.stokes();
            match &mut stokes {
                None => stokes = Some(s.iter().map(|x| weight * x).collect()),
                Some(acc) => acc.iter_mut().zip(&s).for_each(|(a, x)| *a += weight * x),
            }
        }
    }
    let ez = match (&coherent, args.ez) {
        (Some(v), true) => Some(v.longitudinal(args.index, &FftCache::default())?),
        _ => None,
    };
    let seconds = start.elapsed().as_secs_f64();
    let stokes = match (stokes, &coherent) {
        (Some(s), _) => s,
        (None, Some(v)) => v.stokes(),
        (None, None) => unreachable!("at least one mode runs"),
    };
    let (ny, nx) = (out_grid.ny, out_grid.nx);
    let m = out_grid.len();
    let samples = stokes.len() / (4 * m);
    let with_batch = |c: usize| -> Vec<usize> {
        if keep_rank2 {
            vec![c, ny, nx]
        } else {
            vec![samples, c, ny, nx]
        }
    };
    let to_t = |v: &[f64]| -> Vec<T> { v.iter().map(|x| T::of(*x)).collect() };
    // OUT.npy: the coherent field's components (with E_z), or partially polarised light's Stokes
    let out_shape = match &coherent {
        Some(v) => {
            let comps = if ez.is_some() { 3 } else { 2 };
            let mut data = Vec::with_capacity(comps * samples * m);
            for b in 0..samples {
                data.extend_from_slice(v.component(b, 0));
                data.extend_from_slice(v.component(b, 1));
                if let Some(ez) = &ez {
                    data.extend_from_slice(ez.sample(b));
                }
            }
            let shape = with_batch(comps);
            npy::write_npy(&args.output, &shape, T::npy(&data))
                .with_context(|| format!("cannot write --output {}", args.output.display()))?;
            shape
        }
        None => {
            let shape = with_batch(4);
            npy::write_npy(&args.output, &shape, T::npy_real(&to_t(&stokes)))
                .with_context(|| format!("cannot write --output {}", args.output.display()))?;
            shape
        }
    };
    if let Some(path) = &args.stokes {
        npy::write_npy(path, &with_batch(4), T::npy_real(&to_t(&stokes)))
            .with_context(|| format!("cannot write --stokes {}", path.display()))?;
    }
    if let Some(png) = &args.png {
        write_stokes_png(png, &stokes[..4 * m], out_grid, plan.centre(), args, &plan)
            .with_context(|| format!("cannot write --png {}", png.display()))?;
    }
    // the whole plane's Stokes vector: what one large detector behind a polarimeter reads
    let da = out_grid.cell_area();
    let total: [f64; 4] = std::array::from_fn(|c| {
        (0..samples)
            .map(|b| {
                stokes[(4 * b + c) * m..(4 * b + c + 1) * m]
                    .iter()
                    .sum::<f64>()
            })
            .sum::<f64>()
            * da
    });
    let total = Stokes(total);
    let power_out = total.0[0];
    let ez_power = ez.as_ref().map(|f| f.power().iter().sum::<f64>());
    describe_plan(&mut report, &plan);
    merge(
        &mut report,
        json!({
            "shape": out_shape,
            "polarised": true,
            "polarisation": args.polarisation,
            "vector_input": args.vector,
            "jones": options.jones.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            "analyser": options.analyser.as_ref().map(|(t, _)| t),
            "modes": modes.len(),
            "output_holds": if coherent.is_some() { if ez.is_some() { "ex,ey,ez" } else { "ex,ey" } } else { "stokes" },
            "stokes_total": total.0,
            "degree_of_polarisation": total.dop(),
            "aolp_deg": total.aolp().to_degrees(),
            "ellipticity_deg": total.ellipticity().to_degrees(),
            "ez_power": ez_power,
            "wavelength_m": wave.wavelength,
            "power_in": power_in,
            "power_out": power_out,
            "seconds": seconds,
        }),
    );
    if args.json {
        println!("{report}");
    } else {
        summary(args, &plan, &grid, samples, "polarised");
        let s = total.0;
        let n = |v: f64| if s[0] > 0.0 { v / s[0] } else { 0.0 };
        println!(
            "{} mode{}; the plane's Stokes vector (S1, S2, S3)/S0 = ({:.4}, {:.4}, {:.4}), degree of polarisation {:.4}",
            modes.len(),
            if modes.len() == 1 {
                ""
            } else {
                "s (incoherent sum)"
            },
            n(s[1]),
            n(s[2]),
            n(s[3]),
            total.dop()
        );
        if let Some(p) = ez_power {
            println!(
                "E_z carries {:.3e} of the transverse power",
                p / power_out.max(f64::MIN_POSITIVE)
            );
        }
        println!(
            "power out/in = {:.6}, took {:.3} ms; {} holds {}",
            power_out / power_in.max(f64::MIN_POSITIVE),
            seconds * 1e3,
            args.output.display(),
            match (&coherent, &ez) {
                (Some(_), Some(_)) => "the field's components E_x, E_y, E_z",
                (Some(_), None) => "the field's components E_x, E_y",
                (None, _) => "the Stokes images S0 … S3",
            }
        );
    }
    Ok(())
}

/// `S₀` and the normalised `S₁/S₀`, `S₂/S₀`, `S₃/S₀` of the first sample, a 2 × 2 grid (grey
/// where there is less than 10⁻⁶ of the peak intensity).
fn write_stokes_png<T: photonflow_optics::Real>(
    path: &Path,
    s: &[f64],
    g: Grid,
    centre: (f64, f64),
    args: &Args,
    plan: &Planned<T>,
) -> Result<(), plot::PlotError> {
    let m = g.len();
    let peak = s[..m].iter().cloned().fold(0.0, f64::max);
    let normalised: Vec<Vec<f64>> = (1..4)
        .map(|c| {
            (0..m)
                .map(|k| {
                    if s[k] > 1e-6 * peak {
                        s[c * m + k] / s[k]
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        })
        .collect();
    let [x0, x1, y0, y1] = g.edges();
    let edges = [x0 + centre.0, x1 + centre.0, y0 + centre.1, y1 + centre.1];
    let names = [
        "S1/S0 (x − y)",
        "S2/S0 (+45° − −45°)",
        "S3/S0 (right − left)",
    ];
    let mut panels = vec![plot::ImagePlot {
        title: "S0",
        colorbar_label: "intensity (a.u.)",
        colormap: plot::Colormap::Inferno,
        ..plot::ImagePlot::new(&s[..m], g.nx, g.ny, edges)
    }];
    for (values, name) in normalised.iter().zip(names) {
        panels.push(plot::ImagePlot {
            title: name,
            colorbar_label: "normalised Stokes",
            colormap: plot::Colormap::Viridis,
            range: Some((-1.0, 1.0)),
            ..plot::ImagePlot::new(values, g.nx, g.ny, edges)
        });
    }
    let title = format!(
        "Stokes images after {} ({})",
        format_length(args.distance),
        plan.method()
    );
    plot::write_image_grid_png(path, &panels, 2, 640, 540, &title)
}
