//! The TOML description of a diffractive network and its training: [`Config`].
//!
//! Lengths are text with a unit (`"0.75mm"`, `"3cm"`, `"632.8nm"`); a bare number is refused.
//! Unknown keys are refused with the list of valid ones. Every section but `[optics]` may be
//! left out (defaults below). [`Config::validate`] checks the physics that parsing cannot
//! (sizes that fit, positive distances, a temperature > 0, …).
//!
//! ```toml
//! name = "my-net"
//! dataset = "fashion-mnist"  # default "mnist"
//!
//! [optics]
//! wavelength = "0.75mm"
//! pitch = "0.4mm"
//! neurons = 200              # or [nx, ny]
//! layers = 5
//! spacing = "3cm"            # between layers; or one per gap: ["3cm", "3cm", "3cm", "3cm"]
//! input_distance = "3cm"     # input plane → first layer
//! detector_distance = "3cm"  # last layer → detector plane
//! method = "bl-asm"          # the default; asm, fresnel-tf, rs, …
//! padding = 2                # zero-padding factor, or "circular"
//!
//! [input]
//! encoding = "amplitude"     # or "phase" (exp(iπv))
//! size = 160                 # pixels of the input plane the image covers; or [nx, ny]
//!
//! [modulation]
//! kind = "phase"             # "amplitude-phase", "height"
//! phase = "wrapped"          # or "bounded": φ = phase_max·sigmoid(w)
//!
//! [detector]
//! size = "4.8mm"             # side of the square class regions (auto-arranged 3-4-3, …)
//! gap = "4mm"
//! differential = false       # true: a (+, −) region pair per class
//! # array = 10               # or a 10×10 detector array read by an electronic layer:
//!
//! [readout]
//! temperature = 0.1          # confidences = softmax(score / temperature)
//! loss = "cross-entropy"     # or "mse"
//! # head = "linear"          # a hybrid network: a fully connected layer after the detector
//! # head_lr = 0.1            # its learning rate, a multiple of [training] lr
//!
//! [training]
//! epochs = 10
//! batch = 32
//! lr = 0.01
//! schedule = "cosine"        # "constant", "step", "exponential"
//! seed = 1
//! augment_shift = 2          # translate training images by up to ±2 of their pixels
//!
//! [fabrication]
//! levels = 16                # train through phase quantisation
//! estimator = "straight-through"   # or "gumbel-softmax" (a categorical choice per pixel)
//! lateral_misalignment = "0.4mm"   # random shift of every layer during training
//! axial_misalignment = "1mm"       # random displacement of every layer along z
//! detector_noise = 0.01      # Gaussian noise on the detector scores (or the head's inputs)
//! # lut = "slm.csv"          # a measured SLM lookup table gray → phase[, amplitude]
//!
//! [source]                   # leave out for a laser at [optics] wavelength
//! spectrum = "gaussian:0.75mm:75um"  # train under broadband light (also flat:MIN:MAX,
//!                            # lines:λ=w,…, or a spectrum file relative to the config)
//! lines = 5                  # spectral lines to sample it with; default: as many as needed
//! na = 0.005                 # an incoherent source's cone (LED, lamp): partially coherent
//! samples = 4                # train on 4 (line, direction) pairs drawn per batch, not all
//! ```

use std::f64::consts::{PI, TAU};
use std::path::{Path, PathBuf};

use photonflow_optics::coherence::Profile;
use photonflow_optics::material::MaterialEntry;
use photonflow_optics::system::{Encoding, Material, Modulation, SourceSpec};
use photonflow_optics::{Method, Padding};
use serde::{Deserialize, Serialize};

use crate::error::{D2nnError, Result};

pub use photonflow_optics::units::Length;

/// A pixel count for both axes (`200`) or per axis (`[nx, ny]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a pixel count (200) or one per axis ([nx, ny])")]
pub enum Size {
    /// The same count along x and y.
    Square(usize),
    /// `[nx, ny]`.
    Rect([usize; 2]),
}

impl Size {
    /// `(nx, ny)`.
    pub fn xy(self) -> (usize, usize) {
        match self {
            Size::Square(n) => (n, n),
            Size::Rect([nx, ny]) => (nx, ny),
        }
    }
}

/// One distance for every gap between layers, or one per gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a length with its unit (\"2cm\") or a list of them, one per gap between \
                 layers ([\"2cm\", \"3cm\"])"
)]
pub enum Spacing {
    /// The same distance between every pair of consecutive layers.
    Uniform(Length),
    /// One distance per gap (`layers − 1` of them), in the order light crosses them.
    PerGap(Vec<Length>),
}

/// Zero-padding factor (`2`) or `"circular"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a zero-padding factor from 1 to 64 (2 for a linear convolution) or \"circular\""
)]
pub enum PaddingSpec {
    /// Zero-pad each axis to `factor·n` (≥ 1; 2 makes the convolution linear).
    Factor(f64),
    /// `"circular"`: no padding, periodic convolution.
    Named(String),
}

impl Default for PaddingSpec {
    fn default() -> Self {
        PaddingSpec::Factor(2.0)
    }
}

/// `[optics]`: the geometry every plane shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpticsConfig {
    /// Vacuum wavelength.
    pub wavelength: Length,
    /// Pixel ("neuron") pitch of every plane.
    pub pitch: Length,
    /// Pixels per plane.
    pub neurons: Size,
    /// Number of modulating layers (≥ 1).
    pub layers: usize,
    /// Distance(s) between consecutive layers (ignored for a single layer).
    #[serde(default)]
    pub spacing: Option<Spacing>,
    /// Input plane → first layer.
    pub input_distance: Length,
    /// Last layer → detector plane.
    pub detector_distance: Length,
    /// Propagation method name (see `photonflow propagate --help`); default `bl-asm`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Zero padding; default 2.
    #[serde(default)]
    pub padding: PaddingSpec,
    /// Refractive index of the medium between the planes; default 1.
    #[serde(default = "one")]
    pub medium_index: f64,
}

/// `[input]`: how an image becomes the input field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// `amplitude` (default) or `phase`.
    #[serde(default = "default_encoding")]
    pub encoding: Encoding,
    /// Pixels of the input plane the image is resampled onto (centred); default: 80 % of the
    /// plane.
    #[serde(default)]
    pub size: Option<Size>,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            encoding: Encoding::Amplitude,
            size: None,
        }
    }
}

/// How a phase parameter maps to the phase of the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseParam {
    /// `φ = w`, unconstrained (the transmission `exp(iφ)` is periodic anyway).
    Wrapped,
    /// `φ = phase_max·sigmoid(w)`: confined to `[0, phase_max]`.
    Bounded,
}

/// A material by preset name or given explicitly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a material's name (\"thz-resin\") or a table { name = \"...\", n = 1.72, \
                 kappa = 0.03 }"
)]
pub enum MaterialSpec {
    /// A built-in material's name ([`MaterialEntry::preset`]).
    Preset(String),
    /// `{ name = "...", n = 1.72, kappa = 0.03 }`, or with a `dispersion` instead of `n`
    /// ([`MaterialEntry`]).
    Explicit(MaterialEntry),
}

/// `[modulation]`: what each layer modulates and how it is parameterised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulationConfig {
    /// `phase` (default), `amplitude-phase` (amplitude `sigmoid(v)` ∈ (0, 1)) or `height`.
    #[serde(default = "default_modulation")]
    pub kind: Modulation,
    /// Phase parameterisation (phase and amplitude-phase layers); default `wrapped`.
    #[serde(default = "default_phase_param")]
    pub phase: PhaseParam,
    /// Upper end of a bounded phase, radians; default 2π.
    #[serde(default = "tau")]
    pub phase_max: f64,
    /// Material of height-based layers.
    #[serde(default)]
    pub material: Option<MaterialSpec>,
    /// Tallest relief of height-based layers (`h = max_height·sigmoid(w)`); default: the
    /// height of one 2π of phase, `λ/(n − n_medium)`.
    #[serde(default)]
    pub max_height: Option<Length>,
}

impl Default for ModulationConfig {
    fn default() -> Self {
        Self {
            kind: Modulation::Phase,
            phase: PhaseParam::Wrapped,
            phase_max: TAU,
            material: None,
            max_height: None,
        }
    }
}

/// An explicitly placed detector region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Centre x.
    pub x: Length,
    /// Centre y.
    pub y: Length,
    /// Width.
    pub width: Length,
    /// Height (default: the width).
    #[serde(default)]
    pub height: Option<Length>,
}

/// `[detector]`: the class regions of the output plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// Side of the auto-arranged square regions; default: a tenth of the plane's smaller side.
    #[serde(default)]
    pub size: Option<Length>,
    /// Gap between auto-arranged regions; default: half their size.
    #[serde(default)]
    pub gap: Option<Length>,
    /// Regions given explicitly (one per class, or a `+, −` pair per class when differential),
    /// instead of the automatic layout.
    #[serde(default)]
    pub regions: Option<Vec<RegionConfig>>,
    /// Differential detection with a `(+, −)` region pair per class.
    #[serde(default)]
    pub differential: bool,
    /// A camera-like array of `nx × ny` equal square regions, `size` wide and `gap` apart
    /// (default: tiling the plane's central square), read by an electronic head (`[readout]
    /// head`) instead of one region per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<Size>,
}

/// The training loss on the class scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Softmax cross-entropy of `score / temperature` (Mengu et al. 2019).
    #[default]
    CrossEntropy,
    /// Mean squared error between `softmax(score / temperature)` and the one-hot label.
    Mse,
}

/// How the region energies become class scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// All-optical: each class region's share of the energy, or the differential contrast of
    /// its pair.
    #[default]
    None,
    /// Hybrid optical–electronic (Mengu et al. 2020): a fully connected layer, trained with the
    /// masks, from every region's energy over the mean to the class scores
    /// ([`photonflow_optics::system::LinearHead`]).
    Linear,
}

/// `[readout]`: from detector energies to class confidences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReadoutConfig {
    /// Softmax temperature; default 0.1 for the all-optical scores (shares and contrasts, which
    /// differ little), 1 with an electronic head (whose scores are free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Default `cross-entropy`.
    #[serde(default = "default_loss")]
    pub loss: Loss,
    /// `none` (default) or `linear`: an electronic layer after the detector.
    #[serde(default)]
    pub head: Head,
    /// The electronic layer's learning rate as a multiple of `[training] lr` (the same
    /// schedule); default 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_lr: Option<f64>,
}

impl ReadoutConfig {
    /// The softmax temperature: the one given, else 0.1 for all-optical scores and 1 behind an
    /// electronic head.
    pub fn temperature(&self) -> f64 {
        self.temperature.unwrap_or(match self.head {
            Head::None => 0.1,
            Head::Linear => 1.0,
        })
    }

    /// The electronic layer's learning rate as a multiple of `[training] lr`: the one given,
    /// else 0.1 — measured on the `demo` optics with a 10×10 array, 3 epochs of MNIST: 97.77 %
    /// at 0.1, 95.71 % at 1.
    pub fn head_lr(&self) -> f64 {
        self.head_lr.unwrap_or(0.1)
    }
}

/// Learning-rate schedule over epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// `lr` throughout.
    Constant,
    /// Cosine from `lr` (first epoch) towards `lr·min_lr_factor` (after the last).
    Cosine,
    /// `lr·gamma^⌊epoch / step_epochs⌋`.
    Step,
    /// `lr·gamma^epoch`.
    Exponential,
}

/// `[training]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Passes over the training set; default 10.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Samples per optimiser step; default 32.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Adam learning rate (radians per step for wrapped phases); default 0.01.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Default `cosine`.
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// Decay factor of the `step` and `exponential` schedules; default 0.5.
    #[serde(default = "half")]
    pub gamma: f64,
    /// Epochs per decay of the `step` schedule; default 5.
    #[serde(default = "five")]
    pub step_epochs: usize,
    /// Final learning rate of the cosine schedule as a fraction of `lr`; default 0.05.
    #[serde(default = "default_min_lr")]
    pub min_lr_factor: f64,
    /// Seed of the initial masks, the shuffling and every random perturbation; default 1.
    #[serde(default = "one_u64")]
    pub seed: u64,
    /// Half-width of the uniform initial phase, radians; default π (uniform over 2π).
    #[serde(default = "pi")]
    pub init_phase: f64,
    /// Data augmentation: every training image is translated by a random whole number of its
    /// own pixels in `−augment_shift…augment_shift` along x and along y (uniform, drawn anew
    /// per sample and epoch, zero fill) before it is resampled onto the input plane; the test
    /// set is never shifted. Default 0 (off). The one setting besides `epochs` that a resumed
    /// run may change, so that a trained network can be fine-tuned with it.
    #[serde(default)]
    pub augment_shift: u32,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            batch: default_batch(),
            lr: default_lr(),
            schedule: default_schedule(),
            gamma: half(),
            step_epochs: five(),
            min_lr_factor: default_min_lr(),
            seed: 1,
            init_phase: PI,
            augment_shift: 0,
        }
    }
}

/// How quantised pixels are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Quantise in the forward pass, pass the gradient through as if the quantiser were the
    /// identity (Bengio et al. 2013).
    #[default]
    StraightThrough,
    /// One categorical choice among the levels per pixel, relaxed with Gumbel-softmax (Jang et
    /// al., ICLR 2017), as LightRidge does for measured SLM levels.
    GumbelSoftmax,
}

/// `[fabrication]`: what real parts do, modelled during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FabricationConfig {
    /// Phase levels `L ≥ 2` over 2π to train through (straight-through estimator: the forward
    /// pass uses the quantised phase, gradients pass as if it were not); none by default.
    #[serde(default)]
    pub levels: Option<u32>,
    /// How quantised pixels (`levels` or `lut`) learn: `straight-through` (default) or
    /// `gumbel-softmax` (a categorical choice per pixel, relaxed with Gumbel noise).
    #[serde(default = "default_estimator")]
    pub estimator: Estimator,
    /// Temperature `τ` of the Gumbel-softmax relaxation; default 1.
    #[serde(default = "one")]
    pub gumbel_temperature: f64,
    /// A measured SLM lookup table (CSV `gray,phase[,amplitude]`, see [`crate::lut`]): every
    /// pixel takes one of its gray levels (straight-through estimator over the table's
    /// piecewise-linear curve), and the layers modulate as the table says.
    #[serde(default)]
    pub lut: Option<PathBuf>,
    /// Standard deviation of a random lateral shift of every layer, drawn per layer and batch
    /// ("vaccination", Mengu et al., Nanophotonics 9, 4207 (2020)); rounded to whole pixels.
    #[serde(default)]
    pub lateral_misalignment: Option<Length>,
    /// Standard deviation of a random displacement of every layer along z, drawn per layer and
    /// batch (rounded to a quarter of the standard deviation, so that a few dozen cached plans
    /// serve a whole run).
    #[serde(default)]
    pub axial_misalignment: Option<Length>,
    /// Standard deviation of Gaussian noise added to the class scores (fractions of the
    /// detected energy) during training.
    #[serde(default)]
    pub detector_noise: f64,
}

/// `[source]`: the light the network is trained under and designed for; left out, a laser at
/// `[optics] wavelength`. Each line of the spectrum, and each direction of the source's cone,
/// is propagated and their intensities add on the detector (see
/// [`photonflow_optics::coherence`]); a training step costs as many propagations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The spectrum as [`Profile::parse`] reads it (`gaussian:CENTRE:FWHM`, `flat:MIN:MAX`,
    /// `lines:λ=w,…`) or a spectrum file (relative to the config); none: the design
    /// wavelength alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum: Option<String>,
    /// Lines to sample the spectrum with; none: the fewest that resolve the network's path
    /// differences to 10⁻³.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<usize>,
    /// Numerical aperture of a spatially incoherent source's cone of directions (0: a plane
    /// wave along z).
    #[serde(default)]
    pub na: f64,
    /// (line, direction) pairs drawn at random for every training batch
    /// ([`crate::network::Band::draw`]): an unbiased estimate of the detector intensity at the
    /// cost of this many propagations, where the exact sum needs one per line and direction
    /// (tens to hundreds for a wide source). None: the exact sum. The test set is always
    /// evaluated with the exact sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
}

impl SourceConfig {
    /// Whether this is the default: a laser at the design wavelength.
    pub fn is_laser(&self) -> bool {
        self.spectrum.is_none() && self.lines.is_none() && self.na == 0.0 && self.samples.is_none()
    }
}

/// A whole network and its training, as read from TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name for reports and file names.
    #[serde(default = "default_name")]
    pub name: String,
    /// Dataset to train on (`mnist`, `fashion-mnist`, an EMNIST split, or a folder name);
    /// `--dataset` overrides it; default `mnist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Geometry.
    pub optics: OpticsConfig,
    /// Input encoding.
    #[serde(default)]
    pub input: InputConfig,
    /// Layer modulation.
    #[serde(default)]
    pub modulation: ModulationConfig,
    /// Detector regions.
    #[serde(default)]
    pub detector: DetectorConfig,
    /// Scores and loss.
    #[serde(default)]
    pub readout: ReadoutConfig,
    /// Optimisation.
    #[serde(default)]
    pub training: TrainingConfig,
    /// Fabrication-aware training.
    #[serde(default)]
    pub fabrication: FabricationConfig,
    /// The light; a laser at `[optics] wavelength` when left out.
    #[serde(default, skip_serializing_if = "SourceConfig::is_laser")]
    pub source: SourceConfig,
}

/// The presets shipped with photonflow: name, description, TOML text.
pub const PRESETS: &[(&str, &str, &str)] = &[
    (
        "lin2018",
        "Lin et al., Science 361, 1004 (2018): 5 phase-only layers of 200×200 neurons, 0.4 mm \
         pitch, λ = 0.75 mm, 3 cm apart, angular spectrum with 2× padding, 28×28 digit on the \
         central 160×160 neurons as amplitude, 10 square detectors",
        include_str!("../presets/lin2018.toml"),
    ),
    (
        "lin2018-differential",
        "lin2018 with class-specific differential detection (Li et al., Adv. Photonics 1, \
         046001 (2019)): a (+, −) detector pair per class",
        include_str!("../presets/lin2018-differential.toml"),
    ),
    (
        "lin2018-hybrid",
        "Mengu et al., IEEE JSTQE 26 (2020): lin2018's optics imaged by a 10×10 detector array \
         (7.96 mm pixels) and read by one fully connected electronic layer (100 → 10), trained \
         with the masks",
        include_str!("../presets/lin2018-hybrid.toml"),
    ),
    (
        "demo",
        "what `photonflow demo` trains: lin2018's physics on a 100×100 grid, 3 layers 2 cm \
         apart — a useful MNIST classifier in a couple of minutes on two cores",
        include_str!("../presets/demo.toml"),
    ),
];

impl Config {
    /// Parses TOML text; `origin` names the source in errors (a file path or `preset NAME`).
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        Self::parse(text, origin)?.validated(origin)
    }

    /// Parses TOML text without checking the values.
    fn parse(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| D2nnError::Config {
            origin: origin.to_string(),
            problem: e.to_string(),
        })
    }

    /// The config, once [`Config::validate`] finds nothing wrong; errors name `origin`.
    fn validated(self, origin: &str) -> Result<Self> {
        self.validate().map_err(|e| match e {
            D2nnError::Config { problem, .. } => D2nnError::Config {
                origin: origin.to_string(),
                problem,
            },
            other => other,
        })?;
        Ok(self)
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| D2nnError::Io {
            path: PathBuf::from(path),
            problem: format!("cannot read the config ({e})"),
        })?;
        let origin = path.display().to_string();
        let mut config = Self::parse(&text, &origin)?;
        // Files named in the config are relative to it; keep them absolute from here on, so
        // a run folder's copy of the config still finds them. A material measured as n and k
        // in a file is read into the config, which then carries its table.
        if let Some(MaterialSpec::Preset(name)) = &config.modulation.material
            && name.ends_with(".csv")
        {
            let file = path.parent().unwrap_or(Path::new(".")).join(name);
            let entry = MaterialEntry::read_nk(&file).map_err(|e| D2nnError::Config {
                origin: origin.clone(),
                problem: format!("[modulation] material: {e}"),
            })?;
            config.modulation.material = Some(MaterialSpec::Explicit(entry));
        }
        if let Some(text) = &config.source.spectrum
            && !text.contains(':')
        {
            let dir = path.parent().unwrap_or(Path::new("."));
            let file = std::path::absolute(dir.join(text)).map_err(|e| D2nnError::Io {
                path: dir.join(text),
                problem: format!("cannot resolve the spectrum file's path ({e})"),
            })?;
            config.source.spectrum = Some(file.to_string_lossy().into_owned());
        }
        if let Some(lut) = &config.fabrication.lut
            && lut.is_relative()
        {
            let dir = path.parent().unwrap_or(Path::new("."));
            config.fabrication.lut =
                Some(
                    std::path::absolute(dir.join(lut)).map_err(|e| D2nnError::Io {
                        path: dir.join(lut),
                        problem: format!("cannot resolve the lookup table's path ({e})"),
                    })?,
                );
        }
        config.validated(&origin)
    }

    /// The light of `[source]` (its spectrum file read), or `None` for a laser at the design
    /// wavelength.
    pub fn source(&self) -> Result<Option<SourceSpec>> {
        let s = &self.source;
        if s.spectrum.is_none() && s.na == 0.0 {
            return Ok(None);
        }
        let spectrum = s
            .spectrum
            .as_deref()
            .map(Profile::parse)
            .transpose()
            .map_err(|e| problem(format!("[source] spectrum: {e}")))?;
        let spec = SourceSpec {
            spectrum,
            lines: s.lines,
            na: s.na,
        };
        spec.validate(self.optics.medium_index)
            .map_err(|e| problem(format!("[source]: {e}")))?;
        Ok(Some(spec))
    }

    /// The lookup table of `[fabrication] lut`, read from its file.
    pub fn lut(&self) -> Result<Option<crate::lut::Lut>> {
        Ok(self
            .fabrication
            .lut
            .as_deref()
            .map(crate::lut::Lut::read_csv)
            .transpose()?)
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self> {
        let (_, _, text) =
            PRESETS
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(|| D2nnError::Config {
                    origin: format!("preset '{name}'"),
                    problem: format!(
                        "no such preset; use one of {}",
                        PRESETS
                            .iter()
                            .map(|(n, _, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
        Self::from_toml(text, &format!("preset '{name}'"))
    }

    /// The config as TOML (what `photonflow train` writes into the run folder).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a Config always serialises")
    }

    /// The propagation method and padding.
    pub fn propagation(&self) -> Result<(Method, Padding)> {
        let method: Method =
            self.optics
                .method
                .parse()
                .map_err(|e: photonflow_optics::OpticsError| {
                    problem(format!("[optics] method: {e}"))
                })?;
        if method.window_only() {
            return Err(problem(format!(
                "[optics] method = \"{method}\": it changes the sampling from plane to plane, \
                 which a network's layers cannot; use bl-asm (the default), asm or rs"
            )));
        }
        let padding = match &self.optics.padding {
            PaddingSpec::Factor(f) if f.is_finite() && (1.0..=64.0).contains(f) => {
                Padding::Linear(*f)
            }
            PaddingSpec::Named(s) if s == "circular" => Padding::Circular,
            other => {
                return Err(problem(format!(
                    "[optics] padding = {}: give a factor between 1 and 64 (2 for a linear \
                     convolution) or \"circular\"",
                    match other {
                        PaddingSpec::Factor(f) => f.to_string(),
                        PaddingSpec::Named(s) => format!("{s:?}"),
                    }
                )));
            }
        };
        Ok((method, padding))
    }

    /// Distances between consecutive layers (`layers − 1` of them), metres.
    pub fn gaps(&self) -> Result<Vec<f64>> {
        let n = self.optics.layers.saturating_sub(1);
        match (&self.optics.spacing, n) {
            (_, 0) => Ok(Vec::new()),
            (None, _) => Err(problem(format!(
                "[optics] spacing is missing: {} layers need the distance between them, e.g. \
                 spacing = \"3cm\"",
                self.optics.layers
            ))),
            (Some(Spacing::Uniform(d)), _) => Ok(vec![d.m(); n]),
            (Some(Spacing::PerGap(v)), _) if v.len() == n => Ok(v.iter().map(|d| d.m()).collect()),
            (Some(Spacing::PerGap(v)), _) => Err(problem(format!(
                "[optics] spacing lists {} distances but {} layers have {n} gaps between them",
                v.len(),
                self.optics.layers
            ))),
        }
    }

    /// The material of height-based layers at the design wavelength (through its dispersion,
    /// if it has one); refused when it does not hold there or cannot delay the wave
    /// ([`MaterialEntry::for_relief`]).
    pub fn material(&self) -> Result<Option<Material>> {
        let entry = match &self.modulation.material {
            None => return Ok(None),
            Some(MaterialSpec::Explicit(m)) => m,
            Some(MaterialSpec::Preset(name)) => MaterialEntry::preset(name).ok_or_else(|| {
                problem(format!(
                    "[modulation] material '{name}' is unknown; use one of {} or give \
                     {{ name = \"...\", n = 1.72, kappa = 0.03 }}",
                    MaterialEntry::preset_names()
                ))
            })?,
        };
        entry
            .for_relief(self.optics.wavelength.m(), self.optics.medium_index)
            .map(Some)
            .map_err(|e| problem(format!("[modulation] {}", e.into_problem())))
    }

    /// Input image size on the input plane, `(nx, ny)` pixels.
    pub fn input_size(&self) -> (usize, usize) {
        let (nx, ny) = self.optics.neurons.xy();
        self.input
            .size
            .map(Size::xy)
            .unwrap_or(((nx * 4).div_ceil(5), (ny * 4).div_ceil(5)))
    }

    /// Checks what TOML parsing cannot: positive sizes and distances, the input inside the
    /// plane, a material for height layers, sensible training and fabrication values.
    pub fn validate(&self) -> Result<()> {
        let o = &self.optics;
        let (nx, ny) = o.neurons.xy();
        if nx < 2 || ny < 2 || nx > 8192 || ny > 8192 {
            return Err(problem(format!(
                "[optics] neurons = {nx}×{ny}: use 2 to 8192 per axis"
            )));
        }
        for (name, v) in [
            ("wavelength", o.wavelength.m()),
            ("pitch", o.pitch.m()),
            ("detector_distance", o.detector_distance.m()),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(problem(format!("[optics] {name} must be > 0, got {v} m")));
            }
        }
        if !(o.input_distance.m().is_finite() && o.input_distance.m() >= 0.0) {
            return Err(problem("[optics] input_distance must be ≥ 0"));
        }
        if o.layers == 0 || o.layers > 64 {
            return Err(problem(format!(
                "[optics] layers = {}: use 1 to 64",
                o.layers
            )));
        }
        if let Some(d) = self.gaps()?.iter().find(|d| !(d.is_finite() && **d > 0.0)) {
            return Err(problem(format!("[optics] spacing {d} m: must be > 0")));
        }
        if !(o.medium_index.is_finite() && o.medium_index > 0.0) {
            return Err(problem("[optics] medium_index must be > 0"));
        }
        self.propagation()?;
        let (ix, iy) = self.input_size();
        if ix == 0 || iy == 0 || ix > nx || iy > ny {
            return Err(problem(format!(
                "[input] size = {ix}×{iy} must fit in the {nx}×{ny} plane"
            )));
        }
        let m = &self.modulation;
        if !(m.phase_max.is_finite() && m.phase_max > 0.0) {
            return Err(problem("[modulation] phase_max must be > 0 (radians)"));
        }
        let material = self.material()?;
        if m.kind == Modulation::Height {
            if material.is_none() {
                return Err(problem(
                    "[modulation] kind = \"height\" needs a material: material = \"thz-resin\" \
                     or { name = \"...\", n = 1.72, kappa = 0.03 }",
                ));
            }
            if let Some(h) = m.max_height
                && !(h.m().is_finite() && h.m() > 0.0)
            {
                return Err(problem("[modulation] max_height must be > 0"));
            }
        }
        if let Some(size) = self.detector.size
            && size.m() <= 0.0
        {
            return Err(problem("[detector] size must be > 0"));
        }
        if let Some(gap) = self.detector.gap
            && gap.m() < 0.0
        {
            return Err(problem("[detector] gap must be ≥ 0"));
        }
        let r = &self.readout;
        if !(r.temperature().is_finite() && r.temperature() > 0.0) {
            return Err(problem(format!(
                "[readout] temperature = {}: must be > 0 (try 0.1)",
                r.temperature()
            )));
        }
        let d = &self.detector;
        if let Some(array) = d.array {
            let (ax, ay) = array.xy();
            if ax == 0 || ay == 0 {
                return Err(problem(
                    "[detector] array must have at least one region per axis",
                ));
            }
            if d.regions.is_some() || d.differential {
                return Err(problem(
                    "[detector] array places the regions itself: leave out regions and \
                     differential",
                ));
            }
            if r.head == Head::None {
                return Err(problem(
                    "[detector] array has no region per class: read it with an electronic \
                     layer, [readout] head = \"linear\"",
                ));
            }
        }
        if let Some(f) = r.head_lr
            && !(f.is_finite() && f > 0.0)
        {
            return Err(problem(format!(
                "[readout] head_lr = {f}: a multiple of [training] lr, must be > 0"
            )));
        }
        if r.head != Head::None && d.differential {
            return Err(problem(
                "[readout] head reads every region's energy itself; it cannot follow \
                 differential detection (set [detector] differential = false, or use array)",
            ));
        }
        let t = &self.training;
        if t.epochs == 0 || t.batch == 0 {
            return Err(problem("[training] epochs and batch must be ≥ 1"));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(problem(format!("[training] lr = {}: must be > 0", t.lr)));
        }
        if !(t.gamma.is_finite() && t.gamma > 0.0 && t.gamma <= 1.0) || t.step_epochs == 0 {
            return Err(problem(
                "[training] gamma must be in (0, 1] and step_epochs ≥ 1",
            ));
        }
        if !(t.min_lr_factor.is_finite() && (0.0..=1.0).contains(&t.min_lr_factor)) {
            return Err(problem("[training] min_lr_factor must be in [0, 1]"));
        }
        if !(t.init_phase.is_finite() && t.init_phase >= 0.0) {
            return Err(problem("[training] init_phase must be ≥ 0 (radians)"));
        }
        let f = &self.fabrication;
        if let Some(l) = f.levels
            && l < 2
        {
            return Err(problem(format!(
                "[fabrication] levels = {l}: use at least 2 phase levels"
            )));
        }
        for (name, v) in [
            ("lateral_misalignment", f.lateral_misalignment),
            ("axial_misalignment", f.axial_misalignment),
        ] {
            if let Some(s) = v
                && s.m() < 0.0
            {
                return Err(problem(format!("[fabrication] {name} must be ≥ 0")));
            }
        }
        if f.lut.is_some() {
            if f.levels.is_some() {
                return Err(problem(
                    "[fabrication] lut and levels exclude each other: the table's gray levels are \
                     the levels",
                ));
            }
            if m.kind != Modulation::Phase {
                return Err(problem(
                    "[fabrication] lut: the table sets phase and amplitude of every pixel; leave \
                     [modulation] kind = \"phase\" (the default)",
                ));
            }
        }
        if f.estimator == Estimator::GumbelSoftmax && f.levels.is_none() && f.lut.is_none() {
            return Err(problem(
                "[fabrication] estimator = \"gumbel-softmax\" chooses among levels: give levels \
                 = L or a lut",
            ));
        }
        if !(f.gumbel_temperature.is_finite() && f.gumbel_temperature > 0.0) {
            return Err(problem("[fabrication] gumbel_temperature must be > 0"));
        }
        if !(f.detector_noise.is_finite() && f.detector_noise >= 0.0) {
            return Err(problem("[fabrication] detector_noise must be ≥ 0"));
        }
        let s = &self.source;
        if let Some(k) = s.samples
            && (!(1..=1024).contains(&k) || (s.spectrum.is_none() && s.na == 0.0))
        {
            return Err(problem(format!(
                "[source] samples = {k}: draw 1 to 1024 (line, direction) pairs per batch from a \
                 broadband or partially coherent source (give spectrum or na), e.g. 4"
            )));
        }
        if s.lines.is_some() && s.spectrum.is_none() {
            return Err(problem(
                "[source] lines samples a spectrum: give spectrum = \"gaussian:CENTRE:FWHM\" \
                 (or flat:, lines:, a file), or leave lines out",
            ));
        }
        // a spectrum file is read when the network is built; everything else is checked here
        if s.spectrum.as_deref().is_none_or(|t| t.contains(':')) {
            self.source()?;
        }
        Ok(())
    }

    /// Learning rate of epoch `epoch` (from 0) under the schedule.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        let t = &self.training;
        match t.schedule {
            Schedule::Constant => t.lr,
            Schedule::Cosine => {
                let progress = epoch as f64 / t.epochs.max(1) as f64;
                let floor = t.lr * t.min_lr_factor;
                floor + 0.5 * (t.lr - floor) * (1.0 + (PI * progress).cos())
            }
            Schedule::Step => t.lr * t.gamma.powi((epoch / t.step_epochs) as i32),
            Schedule::Exponential => t.lr * t.gamma.powi(epoch as i32),
        }
    }
}

fn problem(text: impl Into<String>) -> D2nnError {
    D2nnError::Config {
        origin: String::new(),
        problem: text.into(),
    }
}

fn default_estimator() -> Estimator {
    Estimator::StraightThrough
}
impl Default for FabricationConfig {
    fn default() -> Self {
        Self {
            levels: None,
            estimator: Estimator::StraightThrough,
            gumbel_temperature: 1.0,
            lut: None,
            lateral_misalignment: None,
            axial_misalignment: None,
            detector_noise: 0.0,
        }
    }
}

fn default_method() -> String {
    Method::BandLimitedAsm.name().to_string()
}
fn default_encoding() -> Encoding {
    Encoding::Amplitude
}
fn default_modulation() -> Modulation {
    Modulation::Phase
}
fn default_phase_param() -> PhaseParam {
    PhaseParam::Wrapped
}
fn default_loss() -> Loss {
    Loss::CrossEntropy
}
fn default_schedule() -> Schedule {
    Schedule::Cosine
}
fn default_name() -> String {
    "d2nn".to_string()
}
fn default_epochs() -> usize {
    10
}
fn default_batch() -> usize {
    32
}
fn default_lr() -> f64 {
    0.01
}
fn default_min_lr() -> f64 {
    0.05
}
fn one() -> f64 {
    1.0
}
fn one_u64() -> u64 {
    1
}
fn half() -> f64 {
    0.5
}
fn five() -> usize {
    5
}
fn tau() -> f64 {
    TAU
}
fn pi() -> f64 {
    PI
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
        [optics]
        wavelength = "0.75mm"
        pitch = "0.4mm"
        neurons = 32
        layers = 2
        spacing = "3cm"
        input_distance = "3cm"
        detector_distance = "3cm"
    "#;

    fn err(text: &str) -> String {
        Config::from_toml(text, "test.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn presets_parse_and_match_the_paper() {
        let c = Config::preset("lin2018").unwrap();
        assert_eq!(c.optics.neurons.xy(), (200, 200));
        assert_eq!(c.optics.layers, 5);
        assert!((c.optics.pitch.m() - 0.4e-3).abs() < 1e-15);
        assert!((c.optics.wavelength.m() - 0.75e-3).abs() < 1e-15);
        assert_eq!(c.gaps().unwrap(), vec![0.03; 4]);
        assert_eq!(c.input_size(), (160, 160));
        assert_eq!(
            c.propagation().unwrap(),
            (Method::BandLimitedAsm, Padding::Linear(2.0))
        );
        let d = Config::preset("lin2018-differential").unwrap();
        assert!(d.detector.differential);
        let h = Config::preset("lin2018-hybrid").unwrap();
        assert_eq!(h.detector.array, Some(Size::Square(10)));
        assert_eq!(h.readout.head, Head::Linear);
        assert_eq!((h.readout.temperature(), h.readout.head_lr()), (1.0, 0.1));
        assert_eq!(h.optics, c.optics);
        let digits: Vec<String> = (0..10).map(|k| k.to_string()).collect();
        let t = crate::network::system_template(&h, &digits).unwrap();
        assert_eq!(t.detector.regions.len(), 100);
        // 199 samples × 0.4 mm centred on the axis, in 10 pixels
        assert!((t.detector.regions[0].width_m - 7.96e-3).abs() < 1e-12);
        assert_eq!(t.detector.regions[99].label, "r9c9");
        let head = t.detector.head.unwrap();
        assert_eq!((head.weights.len(), head.bias.len()), (1000, 10));
        let bound = (6.0f64 / 110.0).sqrt();
        assert!(head.weights.iter().all(|w| w.abs() <= bound));
        assert!(head.weights.iter().any(|w| w.abs() > 0.9 * bound));
        let e = Config::preset("lin2019").unwrap_err().to_string();
        assert!(
            e.contains("lin2018, lin2018-differential, lin2018-hybrid, demo"),
            "{e}"
        );
    }

    #[test]
    fn defaults_and_round_trip() {
        let c = Config::from_toml(SMALL, "small").unwrap();
        assert_eq!(c.input_size(), (26, 26));
        assert_eq!(c.training.batch, 32);
        assert_eq!(c.propagation().unwrap().0, Method::BandLimitedAsm);
        let back = Config::from_toml(&c.to_toml(), "round trip").unwrap();
        assert_eq!(back, c);
        // Lengths with more than six digits keep every one (a resumed run reads this text).
        let text = SMALL
            .replace("\"0.75mm\"", "\"750.1234567um\"")
            .replace("\"3cm\"", "\"3.00000000000001cm\"");
        let c = Config::from_toml(&text, "digits").unwrap();
        let toml = c.to_toml();
        assert!(toml.contains("\"750.1234567um\""), "{toml}");
        let back = Config::from_toml(&toml, "round trip").unwrap();
        assert_eq!(
            back.optics.wavelength.m().to_bits(),
            7.501234567e-4f64.to_bits()
        );
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_keys_list_the_valid_ones() {
        let e = err(&format!("{SMALL}\n[training]\nepoch = 3\n"));
        assert!(
            e.contains("test.toml") && e.contains("unknown field `epoch`"),
            "{e}"
        );
        assert!(e.contains("`epochs`") && e.contains("`lr`"), "{e}");
        let e = err(&SMALL.replace("[optics]", "[optic]"));
        assert!(e.contains("unknown field `optic`"), "{e}");
    }

    #[test]
    fn lengths_need_units_and_values_are_checked() {
        let e = err(&SMALL.replace("\"0.4mm\"", "0.4"));
        assert!(e.contains("has no unit") && e.contains("\"0.4mm\""), "{e}");
        let e = err(&SMALL.replace("\"0.4mm\"", "\"0.4 furlong\""));
        assert!(e.contains("unknown length unit"), "{e}");
        let e = err(&SMALL.replace("spacing = \"3cm\"", "spacing = [\"3cm\", \"2cm\"]"));
        assert!(e.contains("2 distances but 2 layers have 1 gaps"), "{e}");
        let e = err(&format!("{SMALL}\n[input]\nsize = 40\n"));
        assert!(e.contains("must fit in the 32×32 plane"), "{e}");
        let e = err(&format!("{SMALL}\n[modulation]\nkind = \"height\"\n"));
        assert!(e.contains("needs a material"), "{e}");
        let e = err(&format!(
            "{SMALL}\n[modulation]\nkind = \"height\"\nmaterial = \"unobtainium\"\n"
        ));
        assert!(e.contains("'unobtainium' is unknown"), "{e}");
        let e = err(&format!("{SMALL}\n[readout]\ntemperature = 0\n"));
        assert!(e.contains("temperature"), "{e}");
        let e = err(&format!("{SMALL}\n[fabrication]\nlevels = 1\n"));
        assert!(e.contains("at least 2"), "{e}");
        let e = err(&SMALL.replace("layers = 2", "layers = 2\nmethod = \"magic\""));
        assert!(e.contains("unknown propagation method 'magic'"), "{e}");
        let e = err(&SMALL.replace("layers = 2", "layers = 2\nmethod = \"sas\""));
        assert!(
            e.contains("method = \"sas\": it changes the sampling"),
            "{e}"
        );
        let e = err(&SMALL.replace("layers = 2", "layers = 2\npadding = \"mirror\""));
        assert!(
            e.contains("padding = \"mirror\"") && e.contains("circular"),
            "{e}"
        );
        let e = err(&SMALL.replace("layers = 2", "layers = 2\npadding = 0.5"));
        assert!(e.contains("padding = 0.5:"), "{e}");
        // Values that fit none of a key's forms say which forms it takes.
        let e = err(&SMALL.replace("spacing = \"3cm\"", "spacing = \"far\""));
        assert!(
            e.contains("a length with its unit (\"2cm\") or a list of them"),
            "{e}"
        );
        let e = err(&format!("{SMALL}\n[input]\nsize = \"big\"\n"));
        assert!(e.contains("a pixel count (200) or one per axis"), "{e}");
        let e = err(&format!(
            "{SMALL}\n[modulation]\nkind = \"height\"\nmaterial = 1.5\n"
        ));
        assert!(e.contains("a material's name"), "{e}");
        // A material is taken at the design wavelength: through its dispersion, refused where
        // that does not reach, or where a constant one was quoted elsewhere.
        let height =
            |m: &str| format!("{SMALL}\n[modulation]\nkind = \"height\"\nmaterial = {m}\n");
        let e = err(&height("\"fused-silica\""));
        assert!(
            e.contains("[modulation] material 'fused-silica' is known from 210nm to 3.71um"),
            "{e}"
        );
        let e = err(&height("{ name = \"r\", n = 1.6, wavelength = \"1mm\" }"));
        assert!(e.contains("no dispersion model"), "{e}");
        let e = err(&height("{ name = \"air\", n = 1.0 }"));
        assert!(e.contains("≤ the medium's index 1"), "{e}");
        let thz = height(
            "{ name = \"r\", dispersion = { table = { wavelength_um = [500.0, 1000.0], n = \
             [1.70, 1.74], kappa = [0.02, 0.04] } } }",
        );
        let m = Config::from_toml(&thz, "t")
            .unwrap()
            .material()
            .unwrap()
            .unwrap();
        assert!((m.n - 1.72).abs() < 1e-12 && (m.kappa - 0.03).abs() < 1e-12);
        // measured n and k in a file beside the config, read into it
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(&config, height("\"resin.csv\"")).unwrap();
        let e = Config::from_file(&config).unwrap_err().to_string();
        assert!(
            e.contains("[modulation] material") && e.contains("resin.csv"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("resin.csv"),
            "wl,n\n500,1.70\n1000,1.74\nwl,k\n500,0.02\n1000,0.04\n",
        )
        .unwrap();
        let c = Config::from_file(&config).unwrap();
        let m = c.material().unwrap().unwrap();
        assert!((m.n - 1.72).abs() < 1e-12 && (m.kappa - 0.03).abs() < 1e-12);
        assert_eq!(m.name, "resin");
        let visible = height("\"n-bk7\"").replace("\"0.75mm\"", "\"532nm\"");
        let m = Config::from_toml(&visible, "t")
            .unwrap()
            .material()
            .unwrap()
            .unwrap();
        assert!(
            (m.n - 1.5195).abs() < 1e-4 && m.dispersion.is_some(),
            "{}",
            m.n
        );
    }

    #[test]
    fn learning_rate_schedules() {
        let mut c = Config::from_toml(SMALL, "small").unwrap();
        c.training.epochs = 10;
        c.training.lr = 0.1;
        assert!((c.learning_rate(0) - 0.1).abs() < 1e-15);
        let last = c.learning_rate(9);
        assert!(last > 0.1 * 0.05 && last < 0.01, "{last}");
        assert!((c.learning_rate(5) - (0.005 + 0.5 * 0.095)).abs() < 1e-12);
        c.training.schedule = Schedule::Step;
        assert!((c.learning_rate(4) - 0.1).abs() < 1e-15);
        assert!((c.learning_rate(5) - 0.05).abs() < 1e-15);
        c.training.schedule = Schedule::Exponential;
        assert!((c.learning_rate(2) - 0.025).abs() < 1e-15);
    }
}
