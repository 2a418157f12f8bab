//! `--spectrum`, `--lines`, `--source-na` and `--laser`: the light `eval` and `infer` run a
//! model under, and how a model's light is reported.

use anyhow::{Context, bail};
use photonflow_d2nn::model::Model;
use photonflow_d2nn::network::Optics;
use photonflow_optics::coherence::Profile;
use photonflow_optics::system::SourceSpec;
use photonflow_optics::units::format_length;
use serde_json::json;

/// The light a model runs under (default: what it was trained under, from its system.json).
#[derive(Debug, clap::Args)]
pub struct LightArgs {
    /// Run the model under broadband light: gaussian:CENTRE:FWHM (e.g. gaussian:0.75mm:75um),
    /// flat:MIN:MAX, lines:λ=w,λ=w, or a file of wavelength, power rows. Phase layers scale
    /// with λ₀/λ (fixed optical path); reliefs follow their material's index at each line.
    #[arg(long, value_name = "SPECTRUM", conflicts_with = "laser")]
    spectrum: Option<String>,
    /// Spectral lines to sample the spectrum with (default: the fewest that resolve the
    /// network's path differences to 10⁻³).
    #[arg(long, value_name = "N", conflicts_with = "laser")]
    lines: Option<usize>,
    /// Light from a spatially incoherent source (an LED or a lamp behind a condenser): the
    /// numerical aperture of its cone of directions, e.g. 0.01.
    #[arg(
        long,
        value_name = "NA",
        allow_hyphen_values = true,
        conflicts_with = "laser"
    )]
    source_na: Option<f64>,
    /// Run the model in the coherent light of one laser at its design wavelength, whatever
    /// light it was trained under.
    #[arg(long)]
    laser: bool,
}

impl LightArgs {
    /// Whether any flag was given.
    pub fn given(&self) -> bool {
        self.laser || self.spectrum.is_some() || self.lines.is_some() || self.source_na.is_some()
    }

    /// `model` under the light the flags ask for: each flag replaces its part of the model's
    /// own light (`--spectrum` also its line count, unless `--lines` is given), `--laser`
    /// all of it.
    pub fn apply(&self, model: Model) -> anyhow::Result<Model> {
        if !self.given() {
            return Ok(model);
        }
        if self.laser {
            return Ok(model.with_source(None)?);
        }
        let mut spec = model.system.source.clone().unwrap_or(SourceSpec {
            spectrum: None,
            lines: None,
            na: 0.0,
        });
        if let Some(text) = &self.spectrum {
            spec.spectrum =
                Some(Profile::parse(text).map_err(|e| anyhow::anyhow!("--spectrum {e}"))?);
            spec.lines = None;
        }
        if let Some(n) = self.lines {
            if n == 0 {
                bail!("--lines 0: give at least one line");
            }
            if spec.spectrum.is_none() {
                bail!(
                    "--lines {n} samples a spectrum, and the model has none: give --spectrum too"
                );
            }
            spec.lines = Some(n);
        }
        if let Some(na) = self.source_na {
            spec.na = na;
        }
        let flags = [
            self.spectrum.as_ref().map(|s| format!("--spectrum {s}")),
            self.lines.map(|n| format!("--lines {n}")),
            self.source_na.map(|na| format!("--source-na {na}")),
        ];
        let flags: Vec<String> = flags.into_iter().flatten().collect();
        model
            .with_source(Some(spec))
            .with_context(|| flags.join(" "))
    }
}

/// One line saying what light `optics` run under, or `None` for a laser at the design
/// wavelength.
pub fn describe(optics: &Optics) -> Option<String> {
    let source = optics.system.source.as_ref().filter(|s| !s.is_laser())?;
    let bands = &optics.bands;
    let (lo, hi) = bands.iter().fold((f64::MAX, 0.0f64), |(lo, hi), b| {
        (lo.min(b.line.wavelength), hi.max(b.line.wavelength))
    });
    let fields = optics.fields_per_image();
    Some(format!(
        "light: {} line{} from {} to {}{}; {fields} propagation{} per image",
        bands.len(),
        if bands.len() == 1 { "" } else { "s" },
        format_length(lo),
        format_length(hi),
        if source.na > 0.0 {
            format!(", a source cone of NA {}", source.na)
        } else {
            String::new()
        },
        if fields == 1 { "" } else { "s" },
    ))
}

/// The light of `optics` as JSON: the source (`null` for a laser), and every line with its
/// weight and the directions propagated.
pub fn json(optics: &Optics) -> serde_json::Value {
    json!({
        "source": optics.system.source,
        "lines": optics.bands.iter().map(|b| json!({
            "wavelength_m": b.line.wavelength,
            "weight": b.line.weight,
            "directions": b.fields(),
        })).collect::<Vec<_>>(),
        "propagations_per_image": optics.fields_per_image(),
    })
}
