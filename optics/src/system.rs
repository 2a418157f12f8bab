//! The [`OpticalSystem`] description: what a trained (or hand-written) diffractive system *is*,
//! independent of how it was trained — the hand-off between training, the compiler and the
//! hardware layer.
//!
//! A system is an input plane, `L` modulating layers and a detector plane, all on one grid of
//! `nx × ny` pixels of pitch `pitch_m`, with free-space gaps between consecutive planes:
//!
//! ```text
//! input ──input.distance_m──▶ layer 0 ──layers[0].distance_m──▶ layer 1 ─ … ─▶ layer L−1 ──layers[L−1].distance_m──▶ detector
//! ```
//!
//! On disk it is a folder holding `system.json` (this struct, SI units, names ending in `_m`
//! are metres, angles are radians) and one `.npy` file per mask, `[ny, nx]` float32 row-major
//! (row 0 is the most negative y, as everywhere in photonflow), named in the JSON relative to
//! the folder. A layer transmits `t = a·exp(iφ)`: `phase` (φ, radians) always, `amplitude`
//! (a ≥ 0) when the modulation is not phase-only, `height` (metres of material) for height-based
//! layers, where `φ = 2π(n − 1)h/λ` and `a = exp(−2πκh/λ)` with the layer's material — the
//! phase and amplitude files then hold exactly those values, so every reader can use `t`
//! without knowing the material.
//!
//! ```
//! use photonflow_optics::system::*;
//! let dir = std::env::temp_dir().join(format!("pf-system-doc-{}", std::process::id()));
//! let mut system = OpticalSystem::new("demo", 632.8e-9, 16, 16, 8e-6)?;
//! system.input = Input { encoding: Encoding::Amplitude, nx: 8, ny: 8, distance_m: 1e-3 };
//! system.layers.push(Layer::phase_only("layer0", vec![0.5; 256], 1e-3));
//! system.detector.regions.push(RegionSpec::new("0", (0.0, 0.0), 32e-6, 32e-6));
//! system.detector.classes = vec!["0".into()];
//! system.save(&dir)?;
//! let back = OpticalSystem::load(&dir)?;
//! assert_eq!(back, system);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), photonflow_optics::OpticsError>(())
//! ```

use std::f64::consts::TAU;
use std::fs;
use std::path::{Path, PathBuf};

use num_complex::Complex;
use serde::{Deserialize, Serialize};

use crate::coherence::{
    Coherence, DiscSource, Illumination, Line, MAX_LINES, Profile, at_wavelength,
};
use crate::detect::{Detector, Region};
use crate::error::{OpticsError, Result, invalid, positive};
use crate::grid::{Grid, Wave};
use crate::io::npy::{NpyData, read_npy, write_npy};
use crate::io::write_atomic;
pub use crate::material::{MATERIAL_PRESETS, Material, MaterialEntry, ReliefScale};
use crate::propagate::{Method, Padding, Propagation};

/// The value of [`OpticalSystem::format`].
pub const FORMAT: &str = "photonflow-optical-system";
/// The format version written by this library (and the newest it reads).
pub const VERSION: u32 = 1;
/// File name of the description inside a system folder.
pub const FILE_NAME: &str = "system.json";

/// The system folder of `path`: `path/model/` for a training run folder that holds one, else
/// `path` itself (a system folder, or the path of a `system.json`, which
/// [`OpticalSystem::load`] also takes).
pub fn system_folder(path: &Path) -> PathBuf {
    let in_run = path.join("model");
    if in_run.join(FILE_NAME).is_file() {
        in_run
    } else {
        path.to_path_buf()
    }
}

/// A diffractive optical system; see the [module docs](self) for the geometry and the files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpticalSystem {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// A name for reports and file names (e.g. the preset it came from).
    pub name: String,
    /// Vacuum wavelength, metres.
    pub wavelength_m: f64,
    /// Refractive index of the medium between the planes.
    pub medium_index: f64,
    /// The light the system was designed for when it is not one coherent plane wave at
    /// `wavelength_m` (absent from the JSON then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSpec>,
    /// Pixels per row of every plane.
    pub nx: usize,
    /// Rows of every plane.
    pub ny: usize,
    /// Pixel pitch of every plane (square pixels), metres.
    pub pitch_m: f64,
    /// How every gap is propagated.
    pub propagation: PropagationSpec,
    /// How an image becomes the input field.
    pub input: Input,
    /// The modulating layers, light meets them in this order.
    pub layers: Vec<Layer>,
    /// The detector plane.
    pub detector: DetectorSpec,
}

/// Broadband or partially coherent light: a spectrum about the design wavelength and the cone
/// of a spatially incoherent source (an LED or a lamp behind a condenser). At another
/// wavelength a layer's phase is its optical path's (`φ·λ₀/λ`, phase-only layers taken in
/// `[0, 2π)`; [`crate::coherence::at_wavelength`]), and the gaps are planned anew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The spectrum; `None`: the design wavelength alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum: Option<Profile>,
    /// Lines to sample the spectrum with; `None`: the fewest that resolve the system's path
    /// differences to 10⁻³ ([`Illumination::spectrum_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<usize>,
    /// Numerical aperture of the source's cone of directions (`n·sin θ`; 0: one plane wave
    /// along z).
    #[serde(default)]
    pub na: f64,
}

impl SourceSpec {
    /// Whether this is a laser: the design wavelength alone, along the axis.
    pub fn is_laser(&self) -> bool {
        self.spectrum.is_none() && self.na == 0.0
    }

    /// Checks the spectrum, the line count (1 … [`MAX_LINES`]) and the NA (`0 ≤ na < index`).
    pub fn validate(&self, index: f64) -> Result<()> {
        if let Some(p) = &self.spectrum {
            p.validate()?;
        }
        if let Some(n) = self.lines
            && !(1..=MAX_LINES).contains(&n)
        {
            return Err(invalid(
                "source lines",
                format!("{n}: give 1 to {MAX_LINES} spectral lines"),
            ));
        }
        if !(self.na.is_finite() && self.na >= 0.0 && self.na < index) {
            return Err(invalid(
                "source NA",
                format!(
                    "{}: the numerical aperture of the source's cone must lie in 0 … {index} \
                     (the medium's index), e.g. 0.01",
                    self.na
                ),
            ));
        }
        Ok(())
    }

    /// The illumination of a system designed for `wavelength` (m): this spectrum (or that
    /// wavelength alone) through a disc of directions of this NA.
    pub fn illumination(&self, wavelength: f64) -> Illumination {
        Illumination {
            spectrum: self.spectrum.clone().unwrap_or(Profile::Lines(vec![Line {
                wavelength,
                weight: 1.0,
            }])),
            lines: self.lines,
            coherence: if self.na > 0.0 {
                Coherence::Disc(DiscSource::new(self.na))
            } else {
                Coherence::Full
            },
        }
    }
}

/// Propagation method and padding used for every gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropagationSpec {
    /// Method name as on the command line (`asm`, `bl-asm`, `rs`, …; see [`Method`]).
    pub method: String,
    /// Zero-padding factor per axis (≥ 1), or 0 for circular (periodic) convolution.
    pub padding: f64,
}

impl PropagationSpec {
    /// The method and padding as optics values.
    pub fn parse(&self) -> Result<(Method, Padding)> {
        let method: Method = self.method.parse()?;
        let padding = if self.padding == 0.0 {
            Padding::Circular
        } else {
            Padding::Linear(self.padding)
        };
        Ok((method, padding))
    }

    /// The description of `method` with `padding`.
    pub fn new(method: Method, padding: Padding) -> Self {
        Self {
            method: method.name().to_string(),
            padding: match padding {
                Padding::Circular => 0.0,
                Padding::Linear(f) => f,
            },
        }
    }
}

/// How an input image is encoded on the input plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Pixel value `v ∈ [0, 1]` → field amplitude `v` (phase 0); zero outside the image.
    Amplitude,
    /// Pixel value `v ∈ [0, 1]` → field `exp(iπv)` (unit amplitude over the image area); zero
    /// outside the image.
    Phase,
}

impl Encoding {
    /// The name used in files.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Amplitude => "amplitude",
            Encoding::Phase => "phase",
        }
    }
}

/// The input plane: an image is resampled (bilinear when enlarging, area average when
/// shrinking) onto the central `nx × ny` pixels of the grid and encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Amplitude or phase encoding.
    pub encoding: Encoding,
    /// Width of the image on the input plane, pixels.
    pub nx: usize,
    /// Height of the image on the input plane, pixels.
    pub ny: usize,
    /// Distance from the input plane to the first layer (or the detector without layers), m.
    pub distance_m: f64,
}

impl Input {
    /// Writes the input field of one image into `field` (`[ny, nx]` of a grid of `nx × ny`
    /// pixels): `image` (`self.ny × self.nx` values in `[0, 1]`, row-major, already resampled
    /// onto the input area) is encoded ([`Encoding`]) onto the central `self.nx × self.ny`
    /// pixels; every other pixel is set to zero. The one encoding used by training, inference
    /// and the simulated rig.
    ///
    /// # Panics
    /// If the sizes disagree or the input area is larger than the grid (a validated system
    /// never has that).
    pub fn encode_into(&self, image: &[f32], nx: usize, ny: usize, field: &mut [Complex<f32>]) {
        let (ix, iy) = (self.nx, self.ny);
        assert!(ix <= nx && iy <= ny, "input area inside the grid");
        assert_eq!(image.len(), ix * iy, "one value per input pixel");
        assert_eq!(field.len(), nx * ny, "one field of the grid");
        field.fill(Complex::new(0.0, 0.0));
        let (x0, y0) = ((nx - ix) / 2, (ny - iy) / 2);
        for (r, row) in image.chunks_exact(ix).enumerate() {
            let line = &mut field[(y0 + r) * nx + x0..][..ix];
            for (z, &v) in line.iter_mut().zip(row) {
                *z = match self.encoding {
                    Encoding::Amplitude => Complex::new(v, 0.0),
                    Encoding::Phase => {
                        let (s, c) = (std::f32::consts::PI * v).sin_cos();
                        Complex::new(c, s)
                    }
                };
            }
        }
    }
}

/// What a layer modulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Modulation {
    /// Phase only (`a ≡ 1`).
    Phase,
    /// Amplitude and phase, independently.
    AmplitudePhase,
    /// A relief of a material: phase and absorption both follow from the height.
    Height,
}

/// One modulating layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Name (used for the mask files: `<name>_phase.npy`, …).
    pub name: String,
    /// What the layer modulates.
    pub modulation: Modulation,
    /// Distance from this layer to the next plane (next layer or detector), metres.
    pub distance_m: f64,
    /// Material of a height-based layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<Material>,
    /// Number of phase levels the masks were quantised to during training, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<u32>,
    /// The mask files, relative to the system folder (set by [`OpticalSystem::save`]).
    #[serde(default)]
    pub files: LayerFiles,
    /// Phase `φ`, radians, `[ny, nx]` (wrapped into `[0, 2π)` when saved).
    #[serde(skip)]
    pub phase: Vec<f32>,
    /// Amplitude `a ≥ 0`, `[ny, nx]`; `None` means 1 everywhere.
    #[serde(skip)]
    pub amplitude: Option<Vec<f32>>,
    /// Height of material, metres, `[ny, nx]` (height-based layers).
    #[serde(skip)]
    pub height: Option<Vec<f32>>,
}

/// Names of a layer's mask files, relative to the system folder.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerFiles {
    /// The phase mask (always present once saved).
    #[serde(default)]
    pub phase: String,
    /// The amplitude mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplitude: Option<String>,
    /// The height map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<String>,
}

impl Layer {
    /// A phase-only layer with phase `phase` (radians, `[ny, nx]`) at `distance_m` before the
    /// next plane.
    pub fn phase_only(name: impl Into<String>, phase: Vec<f32>, distance_m: f64) -> Self {
        Self {
            name: name.into(),
            modulation: Modulation::Phase,
            distance_m,
            material: None,
            levels: None,
            files: LayerFiles::default(),
            phase,
            amplitude: None,
            height: None,
        }
    }

    /// The phase of the layer's optical path at its design wavelength `wavelength` (m), in a
    /// medium of index `medium`, `[ny, nx]` radians, not wrapped: a height map's
    /// `2π(n − n_medium)h/λ` from its heights (its phase file holds that wrapped into
    /// `[0, 2π)`, which is the same transmission at `λ` but not at other wavelengths); any
    /// other layer's phase as it is.
    pub fn path_phase(&self, wavelength: f64, medium: f64) -> Vec<f32> {
        match (&self.height, &self.material) {
            (Some(h), Some(m)) => h
                .iter()
                .map(|&h| m.phase(f64::from(h), wavelength, medium) as f32)
                .collect(),
            _ => self.phase.clone(),
        }
    }

    /// How this layer's design phase becomes its phase at `wavelength` (m), for a design at
    /// `design` in a medium of index `medium`: a relief's [`Material::relief_at`] (its
    /// dispersion included; refused outside the dispersion's range); `None` for any other
    /// layer, whose phase in `[0, 2π)` scales with `λ₀/λ` ([`at_wavelength`]).
    pub fn relief_at(
        &self,
        design: f64,
        wavelength: f64,
        medium: f64,
    ) -> Result<Option<ReliefScale>> {
        match (self.modulation, &self.material) {
            (Modulation::Height, Some(m)) => m.relief_at(design, wavelength, medium).map(Some),
            _ => Ok(None),
        }
    }

    /// The complex transmission at `wavelength` (m) of this layer designed at `design` in a
    /// medium of index `medium`, `[ny, nx]`: a relief's from its heights
    /// ([`Layer::path_phase`], [`Layer::relief_at`]: `a^path·exp(−absorption·φ₀)·exp(i·phase·φ₀)`);
    /// any other layer's phase in `[0, 2π)` times `λ₀/λ` ([`at_wavelength`]). At `design`,
    /// [`Layer::transmission`].
    pub fn transmission_at(
        &self,
        design: f64,
        wavelength: f64,
        medium: f64,
    ) -> Result<Vec<Complex<f32>>> {
        if wavelength == design {
            return Ok(self.transmission());
        }
        let Some(r) = self.relief_at(design, wavelength, medium)? else {
            let scale = design / wavelength;
            return Ok(self
                .transmission()
                .into_iter()
                .map(|z| at_wavelength(z, scale))
                .collect());
        };
        let amplitude = |i: usize| {
            self.amplitude
                .as_ref()
                .map_or(1.0, |a| f64::from(a[i]).powf(r.path))
        };
        Ok(self
            .path_phase(design, medium)
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let p = f64::from(p);
                let a = amplitude(i) * (-r.absorption * p).exp();
                Complex::from_polar(a as f32, (p * r.phase) as f32)
            })
            .collect())
    }

    /// The complex transmission `a·exp(iφ)`, `[ny, nx]`.
    pub fn transmission(&self) -> Vec<Complex<f32>> {
        match &self.amplitude {
            None => self
                .phase
                .iter()
                .map(|&p| Complex::from_polar(1.0, p))
                .collect(),
            Some(a) => self
                .phase
                .iter()
                .zip(a)
                .map(|(&p, &a)| Complex::from_polar(a, p))
                .collect(),
        }
    }
}

/// A detector region in the system file (metres).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Label (the class it reads out; `+`/`−` suffixes for differential pairs).
    pub label: String,
    /// Centre x, metres.
    pub x_m: f64,
    /// Centre y, metres.
    pub y_m: f64,
    /// Width, metres.
    pub width_m: f64,
    /// Height, metres.
    pub height_m: f64,
}

impl RegionSpec {
    /// A region labelled `label`, centred at `centre` (m), `width × height` (m).
    pub fn new(label: impl Into<String>, centre: (f64, f64), width: f64, height: f64) -> Self {
        Self {
            label: label.into(),
            x_m: centre.0,
            y_m: centre.1,
            width_m: width,
            height_m: height,
        }
    }
}

/// The detector plane and how its energies become class scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    /// The regions. Plain readout: one per class, in class order. Differential readout: two
    /// per class, `[c₀⁺, c₀⁻, c₁⁺, c₁⁻, …]`.
    pub regions: Vec<RegionSpec>,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Differential detection (Li et al., Adv. Photonics 1, 046001 (2019)): class score
    /// `(E⁺ − E⁻)/(E⁺ + E⁻)`; otherwise the score is the region's fraction of the detected
    /// energy `E_c / Σ E`.
    #[serde(default)]
    pub differential: bool,
    /// Softmax temperature `T`: confidences are `softmax(score / T)`.
    pub temperature: f64,
    /// The electronic layer of a hybrid optical–electronic network, when the class scores are
    /// computed from the regions' energies by a fully connected layer instead of one region
    /// (or pair) per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<LinearHead>,
}

/// The electronic layer of a hybrid optical–electronic network (Mengu et al., "Analysis of
/// diffractive optical neural networks and their integration with electronic neural networks",
/// IEEE J. Sel. Top. Quantum Electron. 26 (2020)): a fully connected layer from the `R` region
/// energies of the detector (a coarse camera, typically) to the `C` class scores,
///
/// `s = W x + b`, with `x_r = R · E_r / Σ E`,
///
/// the region energies divided by their mean, so that neither the source's power nor a camera's
/// gain changes the answer (`x` is 1 on average; a dark detector gives `x = 0` and `s = b`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearHead {
    /// Weights `W`, `C × R`, row-major: the row of class `c` holds its weight of every region.
    pub weights: Vec<f64>,
    /// Bias `b`, one per class.
    pub bias: Vec<f64>,
}

impl LinearHead {
    /// The head's input: each region's energy over the mean region energy, `R · E_r / Σ E`
    /// (0 for a dark detector).
    pub fn input(energies: &[f64]) -> Vec<f64> {
        let total: f64 = energies.iter().sum();
        let scale = if total > 0.0 {
            energies.len() as f64 / total
        } else {
            0.0
        };
        energies.iter().map(|e| e * scale).collect()
    }

    /// Class scores `W x + b` of the head's input `x` ([`LinearHead::input`]).
    ///
    /// # Panics
    /// If `x` does not hold one value per column of the weights.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(
            self.weights.len(),
            self.bias.len() * x.len(),
            "one input per region"
        );
        self.weights
            .chunks_exact(x.len())
            .zip(&self.bias)
            .map(|(row, b)| b + row.iter().zip(x).map(|(w, x)| w * x).sum::<f64>())
            .collect()
    }
}

/// Added to the denominators of the scores, so that a dark detector gives 0, not NaN.
const DARK: f64 = 1e-12;

impl DetectorSpec {
    /// Class scores from region energies (one per region, in region order, any common unit):
    /// each region's fraction of the detected energy `E_c / Σ E`, `(E⁺ − E⁻)/(E⁺ + E⁻)` per
    /// class for differential detection, or the electronic [`LinearHead`]'s output. A dark
    /// detector gives scores of 0 (the head's bias), not NaN. The plain numbers that the
    /// trainable network's tensors compute; readouts of measured frames use it.
    ///
    /// # Panics
    /// If `energies` does not hold one value per region.
    pub fn scores(&self, energies: &[f64]) -> Vec<f64> {
        assert_eq!(energies.len(), self.regions.len(), "one energy per region");
        if let Some(head) = &self.head {
            head.apply(&LinearHead::input(energies))
        } else if self.differential {
            energies
                .chunks_exact(2)
                .map(|p| (p[0] - p[1]) / (p[0] + p[1] + DARK))
                .collect()
        } else {
            let total: f64 = energies.iter().sum();
            energies.iter().map(|e| e / (total + DARK)).collect()
        }
    }

    /// Confidences `softmax(score / T)` of class scores ([`DetectorSpec::scores`]), computed
    /// stably (the largest score subtracted first); they sum to 1.
    pub fn confidences(&self, scores: &[f64]) -> Vec<f64> {
        let t = self.temperature;
        let top = scores.iter().fold(f64::NEG_INFINITY, |m, &s| m.max(s / t));
        let e: Vec<f64> = scores.iter().map(|&s| (s / t - top).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    }
}

impl OpticalSystem {
    /// An empty system (no layers, no regions) on an `nx × ny` grid of pitch `pitch_m`: vacuum,
    /// band-limited angular spectrum with 2× padding, amplitude input over the whole grid at
    /// zero distance, temperature 1.
    pub fn new(
        name: impl Into<String>,
        wavelength_m: f64,
        nx: usize,
        ny: usize,
        pitch_m: f64,
    ) -> Result<Self> {
        Grid::new(nx, ny, pitch_m, pitch_m)?;
        Wave::vacuum(wavelength_m)?;
        Ok(Self {
            format: FORMAT.to_string(),
            version: VERSION,
            name: name.into(),
            wavelength_m,
            medium_index: 1.0,
            source: None,
            nx,
            ny,
            pitch_m,
            propagation: PropagationSpec::new(Method::BandLimitedAsm, Padding::default()),
            input: Input {
                encoding: Encoding::Amplitude,
                nx,
                ny,
                distance_m: 0.0,
            },
            layers: Vec::new(),
            detector: DetectorSpec {
                regions: Vec::new(),
                classes: Vec::new(),
                differential: false,
                temperature: 1.0,
                head: None,
            },
        })
    }

    /// The grid every plane is sampled on.
    pub fn grid(&self) -> Result<Grid> {
        Grid::new(self.nx, self.ny, self.pitch_m, self.pitch_m)
    }

    /// The light.
    pub fn wave(&self) -> Result<Wave> {
        Wave::new(self.wavelength_m, self.medium_index)
    }

    /// The gaps in the order light crosses them: input → layer 0, layer k → layer k+1, …,
    /// last layer → detector (`L + 1` propagations), each with this system's method and padding.
    pub fn propagations(&self) -> Result<Vec<Propagation>> {
        let (method, padding) = self.propagation.parse()?;
        Ok(std::iter::once(self.input.distance_m)
            .chain(self.layers.iter().map(|l| l.distance_m))
            .map(|d| {
                Propagation::new(d)
                    .with_method(method)
                    .with_padding(padding)
            })
            .collect())
    }

    /// The detector regions on the grid.
    pub fn detector(&self) -> Result<Detector> {
        let regions = self
            .detector
            .regions
            .iter()
            .map(|r| Region::new((r.x_m, r.y_m), r.width_m, r.height_m).with_label(&r.label))
            .collect();
        Detector::new(self.grid()?, regions)
    }

    /// Checks everything a reader relies on: format and version, grid and light, positive
    /// distances, the input inside the grid, mask sizes and values, materials, regions inside
    /// the window and one (two, differential) per class, a positive temperature.
    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT {
            return Err(invalid(
                "optical system",
                format!("format is '{}', expected '{FORMAT}'", self.format),
            ));
        }
        if self.version == 0 || self.version > VERSION {
            return Err(invalid(
                "optical system",
                format!(
                    "format version {} is not supported (this photonflow reads 1 to {VERSION}); \
                     upgrade photonflow",
                    self.version
                ),
            ));
        }
        let grid = self.grid()?;
        self.wave()?;
        self.propagation.parse()?;
        if let Some(source) = &self.source {
            source.validate(self.medium_index)?;
        }
        if !(self.input.distance_m.is_finite() && self.input.distance_m >= 0.0) {
            return Err(invalid(
                "input distance",
                format!("{} m is not a finite distance ≥ 0", self.input.distance_m),
            ));
        }
        if self.input.nx == 0
            || self.input.ny == 0
            || self.input.nx > self.nx
            || self.input.ny > self.ny
        {
            return Err(invalid(
                "input size",
                format!(
                    "the image covers {}×{} pixels of a {}×{} grid; it must be 1…{} × 1…{}",
                    self.input.nx, self.input.ny, self.nx, self.ny, self.nx, self.ny
                ),
            ));
        }
        let n = grid.len();
        for l in &self.layers {
            positive("layer distance", l.distance_m)?;
            let check = |what: &str, v: &[f32], non_negative: bool| -> Result<()> {
                if v.len() != n {
                    return Err(OpticsError::Shape(format!(
                        "layer '{}': the {what} mask has {} values but the grid has {}×{} = {n}",
                        l.name,
                        v.len(),
                        self.nx,
                        self.ny
                    )));
                }
                if let Some(i) = v
                    .iter()
                    .position(|x| !x.is_finite() || (non_negative && *x < 0.0))
                {
                    return Err(invalid(
                        "layer mask",
                        format!(
                            "layer '{}': {what} value {} at flat index {i} is not {}",
                            l.name,
                            v[i],
                            if non_negative {
                                "finite and ≥ 0"
                            } else {
                                "finite"
                            }
                        ),
                    ));
                }
                Ok(())
            };
            check("phase", &l.phase, false)?;
            if let Some(a) = &l.amplitude {
                check("amplitude", a, true)?;
            }
            match (l.modulation, &l.height, &l.material) {
                (Modulation::Height, Some(h), Some(m)) => {
                    check("height", h, true)?;
                    m.validate(self.wavelength_m).map_err(|e| match e {
                        OpticsError::InvalidParameter { name, problem } => {
                            OpticsError::InvalidParameter {
                                name,
                                problem: format!("layer '{}': {problem}", l.name),
                            }
                        }
                        e => e,
                    })?;
                }
                (Modulation::Height, _, _) => {
                    return Err(invalid(
                        "layer",
                        format!(
                            "layer '{}' is height-based but lacks its height map or material",
                            l.name
                        ),
                    ));
                }
                (Modulation::Phase, _, _) if l.amplitude.is_some() => {
                    return Err(invalid(
                        "layer",
                        format!(
                            "layer '{}' is phase-only but has an amplitude mask; make it \
                             amplitude-phase or drop the mask",
                            l.name
                        ),
                    ));
                }
                _ => {}
            }
        }
        let d = &self.detector;
        let per_class = if d.differential { 2 } else { 1 };
        if let Some(head) = &d.head {
            let (c, r) = (d.classes.len(), d.regions.len());
            if d.differential {
                return Err(invalid(
                    "detector",
                    "an electronic head reads the regions' energies itself; it cannot follow \
                     differential detection (set differential to false)",
                ));
            }
            if c == 0 || r == 0 || head.weights.len() != c * r || head.bias.len() != c {
                return Err(invalid(
                    "detector",
                    format!(
                        "the electronic head of {c} classes and {r} regions needs {} weights \
                         and {c} biases but has {} and {}",
                        c * r,
                        head.weights.len(),
                        head.bias.len()
                    ),
                ));
            }
            if !head.weights.iter().chain(&head.bias).all(|v| v.is_finite()) {
                return Err(invalid(
                    "detector",
                    "the electronic head has a weight or bias that is not a finite number",
                ));
            }
        } else if d.classes.is_empty() || d.regions.len() != per_class * d.classes.len() {
            return Err(invalid(
                "detector",
                format!(
                    "{} classes need {} regions ({} per class) but there are {}",
                    self.detector.classes.len(),
                    per_class * self.detector.classes.len(),
                    per_class,
                    self.detector.regions.len()
                ),
            ));
        }
        positive("temperature", self.detector.temperature)?;
        self.detector()?;
        Ok(())
    }

    /// Writes the system into folder `dir` (created if needed): one `.npy` per mask, named
    /// after the layer, then `system.json` last, each atomically — so a folder with a
    /// `system.json` always has all its masks. Phases are wrapped into `[0, 2π)`. Validates
    /// first; fills in [`Layer::files`].
    pub fn save(&mut self, dir: &Path) -> Result<()> {
        self.validate()?;
        fs::create_dir_all(dir).map_err(|e| file_error(dir, format!("cannot create it: {e}")))?;
        let shape = [self.ny, self.nx];
        for l in &mut self.layers {
            for v in &mut l.phase {
                *v = wrap_phase(*v);
            }
            let write = |suffix: &str, v: &[f32]| -> Result<String> {
                let name = format!("{}_{suffix}.npy", l.name);
                write_npy(&dir.join(&name), &shape, v.into())
                    .map_err(|e| file_error(&dir.join(&name), e.to_string()))?;
                Ok(name)
            };
            l.files = LayerFiles {
                phase: write("phase", &l.phase)?,
                amplitude: l
                    .amplitude
                    .as_deref()
                    .map(|a| write("amplitude", a))
                    .transpose()?,
                height: l
                    .height
                    .as_deref()
                    .map(|h| write("height", h))
                    .transpose()?,
            };
        }
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| file_error(dir, format!("cannot serialise the system: {e}")))?;
        let path = dir.join(FILE_NAME);
        write_atomic(&path, |w| {
            use std::io::Write;
            w.write_all(json.as_bytes())?;
            w.write_all(b"\n")
        })
        .map_err(|e| file_error(&path, e.to_string()))
    }

    /// Reads a system from its folder (or from the path of its `system.json`), masks included,
    /// and validates it.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(file_error(
                path,
                "does not exist; give a folder holding system.json (or a training run's folder)",
            ));
        }
        let (dir, file) = if path.is_dir() {
            (path.to_path_buf(), path.join(FILE_NAME))
        } else {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            (dir, path.to_path_buf())
        };
        let text = fs::read_to_string(&file).map_err(|e| {
            file_error(
                &file,
                format!(
                    "cannot read it ({e}); give a folder written by photonflow train or export"
                ),
            )
        })?;
        let mut system: Self = serde_json::from_str(&text)
            .map_err(|e| file_error(&file, format!("is not a valid optical system: {e}")))?;
        let shape = [system.ny, system.nx];
        for l in &mut system.layers {
            let read = |name: &str| -> Result<Vec<f32>> {
                let p = dir.join(name);
                let a = read_npy(&p).map_err(|e| file_error(&p, e.to_string()))?;
                if a.shape != shape {
                    return Err(file_error(
                        &p,
                        format!("has shape {:?}, the system needs {shape:?}", a.shape),
                    ));
                }
                match a.data {
                    NpyData::F32(v) => Ok(v),
                    NpyData::F64(v) => Ok(v.into_iter().map(|x| x as f32).collect()),
                    other => Err(file_error(
                        &p,
                        format!("holds {} values; masks are float32", other.dtype_name()),
                    )),
                }
            };
            if l.files.phase.is_empty() {
                return Err(file_error(
                    &file,
                    format!("layer '{}' names no phase file", l.name),
                ));
            }
            l.phase = read(&l.files.phase)?;
            l.amplitude = l.files.amplitude.as_deref().map(read).transpose()?;
            l.height = l.files.height.as_deref().map(read).transpose()?;
        }
        system
            .validate()
            .map_err(|e| file_error(&file, e.to_string()))?;
        Ok(system)
    }
}

/// `φ` wrapped into `[0, 2π)` (`f32` or `f64`).
pub fn wrap_phase<T: crate::field::Real>(phi: T) -> T {
    let tau = T::of(TAU);
    // `rem_euclid`: the remainder made non-negative.
    let r = phi % tau;
    let w = if r < T::zero() { r + tau } else { r };
    // That can round up to exactly 2π for tiny negative inputs.
    if w >= tau { T::zero() } else { w }
}

fn file_error(path: &Path, problem: impl Into<String>) -> OpticsError {
    OpticsError::File {
        path: PathBuf::from(path),
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> OpticalSystem {
        let mut s = OpticalSystem::new("t", 0.75e-3, 6, 4, 0.4e-3).unwrap();
        s.input = Input {
            encoding: Encoding::Phase,
            nx: 4,
            ny: 2,
            distance_m: 0.03,
        };
        let phase: Vec<f32> = (0..24).map(|i| i as f32 * 0.7 - 3.0).collect();
        s.layers.push(Layer::phase_only("l0", phase.clone(), 0.03));
        let mut l1 = Layer::phase_only("l1", phase, 0.02);
        l1.modulation = Modulation::Height;
        // a dispersive material: its model travels in system.json
        let resin = Material {
            dispersion: Some(crate::material::Dispersion::Table {
                wavelength_um: vec![500.0, 1000.0],
                n: vec![1.69, 1.71],
                kappa: Some(vec![0.02, 0.04]),
            }),
            ..Material::constant("resin", 0.0, 0.0)
        };
        l1.material = Some(resin.at(s.wavelength_m).unwrap());
        l1.height = Some(vec![1e-4; 24]);
        l1.amplitude = Some(vec![0.9; 24]);
        s.layers.push(l1);
        s.detector.classes = vec!["a".into(), "b".into()];
        s.detector.regions = vec![
            RegionSpec::new("a", (-0.4e-3, 0.0), 0.4e-3, 0.4e-3),
            RegionSpec::new("b", (0.4e-3, 0.0), 0.4e-3, 0.4e-3),
        ];
        s.detector.temperature = 0.1;
        s
    }

    #[test]
    fn round_trip_wraps_phases_and_keeps_everything_else() {
        let dir = tempdir();
        let mut s = system();
        let original = s.clone();
        s.save(&dir).unwrap();
        let back = OpticalSystem::load(&dir.join(FILE_NAME)).unwrap();
        assert_eq!(back, s);
        for (a, b) in back.layers[0].phase.iter().zip(&original.layers[0].phase) {
            assert!((0.0..TAU as f32).contains(a));
            let d = (a - b).rem_euclid(TAU as f32);
            assert!(d < 1e-5 || TAU as f32 - d < 1e-5, "{a} vs {b}");
        }
        assert_eq!(
            back.layers[1].files.height.as_deref(),
            Some("l1_height.npy")
        );
        assert_eq!(back.propagations().unwrap().len(), 3);
        assert_eq!(back.detector().unwrap().len(), 2);
        fs::remove_dir_all(dir).ok();
    }

    /// A system's light is written into system.json and read back, whatever its spectrum; a
    /// laser's system.json has no `source`; a relief's optical-path phase comes from its heights.
    #[test]
    fn sources_round_trip_and_reliefs_keep_their_optical_path() {
        let dir = tempdir();
        let mut s = system();
        s.save(&dir).unwrap();
        let text = fs::read_to_string(dir.join(FILE_NAME)).unwrap();
        assert!(!text.contains("source"), "{text}");
        for (spectrum, key) in [
            (
                Profile::Gaussian {
                    centre: 0.75e-3,
                    fwhm: 75e-6,
                },
                "fwhm_m",
            ),
            (
                Profile::Flat {
                    min: 0.7e-3,
                    max: 0.8e-3,
                },
                "min_m",
            ),
            (
                Profile::Lines(vec![Line {
                    wavelength: 0.7e-3,
                    weight: 0.25,
                }]),
                "wavelength_m",
            ),
            (Profile::Table(vec![(0.7e-3, 1.0), (0.8e-3, 2.5)]), "table"),
        ] {
            s.source = Some(SourceSpec {
                spectrum: Some(spectrum),
                lines: Some(4),
                na: 0.01,
            });
            s.save(&dir).unwrap();
            let text = fs::read_to_string(dir.join(FILE_NAME)).unwrap();
            assert!(text.contains(key), "{text}");
            assert_eq!(OpticalSystem::load(&dir).unwrap().source, s.source);
        }
        s.source.as_mut().unwrap().na = 2.0;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("source NA"), "{e}");
        let want = TAU * 0.7 * 1e-4 / 0.75e-3;
        let got = s.layers[1].path_phase(0.75e-3, 1.0);
        assert!(got.iter().all(|&p| (f64::from(p) - want).abs() < 1e-6));
        assert_eq!(s.layers[0].path_phase(0.75e-3, 1.0), s.layers[0].phase);
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_systems_are_refused_with_the_reason() {
        let mut s = system();
        s.detector.regions.pop();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("2 classes need 2 regions")
        );
        let mut s = system();
        s.layers[0].phase.pop();
        assert!(s.validate().unwrap_err().to_string().contains("23 values"));
        let mut s = system();
        s.layers[1].material = None;
        assert!(s.validate().unwrap_err().to_string().contains("lacks"));
        let mut s = system();
        s.input.nx = 7;
        assert!(s.validate().unwrap_err().to_string().contains("input size"));
        let mut s = system();
        s.detector.regions[0].x_m = 5e-3;
        assert!(s.validate().unwrap_err().to_string().contains("window"));
    }

    /// An electronic layer over three regions: its scores are `W x + b` of the energies over
    /// their mean, whatever their scale; it travels in system.json; a layer of the wrong shape,
    /// with a NaN, or behind differential detection is refused.
    #[test]
    fn hybrid_readout_scores_round_trips_and_is_checked() {
        let mut s = system();
        s.detector
            .regions
            .push(RegionSpec::new("d2", (0.0, 0.4e-3), 0.4e-3, 0.4e-3));
        let head = LinearHead {
            weights: vec![1.0, -2.0, 0.5, 0.0, 3.0, -1.0],
            bias: vec![0.25, -0.5],
        };
        s.detector.head = Some(head.clone());
        s.validate().unwrap();
        // E = (1, 2, 5): mean 8/3, x = (3/8, 6/8, 15/8)
        let x = [0.375, 0.75, 1.875];
        let want = [0.25 + 0.375 - 1.5 + 0.9375, -0.5 + 0.0 + 2.25 - 1.875];
        for scale in [1.0, 1e-9, 4e6] {
            let got = s.detector.scores(&[scale, 2.0 * scale, 5.0 * scale]);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{scale}: {got:?} vs {want:?}");
            }
        }
        assert_eq!(LinearHead::input(&[1.0, 2.0, 5.0]), x);
        assert_eq!(s.detector.scores(&[0.0; 3]), head.bias, "dark: the bias");

        let dir = tempdir();
        s.save(&dir).unwrap();
        let back = OpticalSystem::load(&dir).unwrap();
        assert_eq!(back.detector.head, Some(head));
        fs::remove_dir_all(dir).ok();
        let text = serde_json::to_string(&system()).unwrap();
        assert!(
            !text.contains("head"),
            "an all-optical system has none: {text}"
        );

        let refused = |change: fn(&mut OpticalSystem), needs: &str| {
            let mut t = s.clone();
            change(&mut t);
            let e = t.validate().unwrap_err().to_string();
            assert!(e.contains(needs), "{needs}: {e}");
        };
        refused(
            |t| {
                t.detector.head.as_mut().unwrap().weights.pop();
            },
            "needs 6 weights and 2 biases but has 5 and 2",
        );
        refused(
            |t| t.detector.head.as_mut().unwrap().bias[1] = f64::NAN,
            "not a finite number",
        );
        refused(|t| t.detector.differential = true, "differential");
    }

    #[test]
    fn unknown_keys_and_missing_masks_name_the_file() {
        let dir = tempdir();
        let mut s = system();
        s.save(&dir).unwrap();
        let file = dir.join(FILE_NAME);
        let text = fs::read_to_string(&file).unwrap();
        fs::write(&file, text.replacen("\"name\"", "\"nmae\"", 1)).unwrap();
        let e = OpticalSystem::load(&dir).unwrap_err().to_string();
        assert!(e.contains("system.json") && e.contains("nmae"), "{e}");
        s.save(&dir).unwrap();
        fs::remove_file(dir.join("l1_height.npy")).unwrap();
        let e = OpticalSystem::load(&dir).unwrap_err().to_string();
        assert!(e.contains("l1_height.npy"), "{e}");
        fs::remove_dir_all(dir).ok();
    }

    /// At another wavelength a relief keeps its optical path (1 µm of n = 2.5 is 3π at 1 µm,
    /// stored wrapped as π; at half the design frequency it is 1.5π, and its power
    /// transmittance 0.81 becomes 0.9), while an SLM or one-wave layer shows 3π as π and
    /// scales that; a dispersive relief's phase follows its index at each wavelength.
    #[test]
    fn layers_at_another_wavelength_follow_their_optical_path() {
        use std::f32::consts::PI;
        let mut relief = Layer::phase_only("relief", vec![PI; 4], 1e-3);
        relief.modulation = Modulation::Height;
        relief.height = Some(vec![1e-6; 4]);
        relief.amplitude = Some(vec![0.81; 4]);
        relief.material = Some(Material::constant("glass", 2.5, 0.0));
        let t = relief.transmission_at(1e-6, 2e-6, 1.0).unwrap();
        assert!((t[0].norm() - 0.9).abs() < 1e-6);
        assert!((t[0].arg() + 0.5 * PI).abs() < 1e-5, "{}", t[0].arg());
        let slm = Layer::phase_only("slm", vec![3.0 * PI; 4], 1e-3);
        let t = slm.transmission_at(1e-6, 2e-6, 1.0).unwrap();
        assert!((t[0].norm() - 1.0).abs() < 1e-6);
        assert!((t[0].arg() - 0.5 * PI).abs() < 1e-5, "{}", t[0].arg());
        assert_eq!(
            slm.transmission_at(1e-6, 1e-6, 1.0).unwrap(),
            slm.transmission()
        );

        // BK7, 5 µm tall, designed at 550 nm, at 450 nm: 2π(n(450) − 1)h/λ; absorbing more
        // there (a table's κ) it transmits exp(−2πκh/λ).
        let bk7 = MaterialEntry::preset("n-bk7").unwrap().at(550e-9).unwrap();
        let n450 = bk7.index_at(450e-9).unwrap().0;
        relief.material = Some(bk7.clone());
        relief.height = Some(vec![5e-6; 4]);
        relief.amplitude = None;
        let t = relief.transmission_at(550e-9, 450e-9, 1.0).unwrap();
        let want = (TAU * (n450 - 1.0) * 5e-6 / 450e-9).rem_euclid(TAU);
        let got = f64::from(t[0].arg()).rem_euclid(TAU);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let dispersion_neglected = (TAU * (bk7.n - 1.0) * 5e-6 / 450e-9).rem_euclid(TAU);
        assert!((got - dispersion_neglected).abs() > 0.05);
        let lossy = Material {
            dispersion: Some(crate::material::Dispersion::Table {
                wavelength_um: vec![0.4, 0.6],
                n: vec![1.52, 1.50],
                kappa: Some(vec![0.02, 0.0]),
            }),
            ..Material::constant("lossy", 0.0, 0.0)
        }
        .at(550e-9)
        .unwrap();
        relief.material = Some(lossy.clone());
        relief.amplitude = Some(vec![lossy.amplitude(5e-6, 550e-9) as f32; 4]);
        let t = relief.transmission_at(550e-9, 450e-9, 1.0).unwrap();
        let want = (-TAU * 0.015 * 5e-6 / 450e-9).exp();
        assert!(
            (f64::from(t[0].norm()) - want).abs() < 1e-6,
            "{} vs {want}",
            t[0].norm()
        );
        let e = relief.transmission_at(550e-9, 700e-9, 1.0).unwrap_err();
        assert!(e.to_string().contains("400nm to 600nm"), "{e}");
    }

    #[test]
    fn material_phase_and_absorption() {
        let m = Material::constant("x", 1.5, 0.01);
        // One wavelength of (n − 1)·h = λ/2 → π.
        let lambda = 1e-3;
        assert!((m.phase(1e-3, lambda, 1.0) - std::f64::consts::PI).abs() < 1e-12);
        assert!((m.amplitude(1e-3, lambda) - (-TAU * 0.01f64).exp()).abs() < 1e-15);
        assert!((0.0..TAU as f32).contains(&wrap_phase(-1e-9)));
        assert!((wrap_phase(-1.0) - (TAU as f32 - 1.0)).abs() < 1e-6);
        assert_eq!(wrap_phase(-1e-300f64), 0.0);
        assert_eq!(wrap_phase(TAU), 0.0);
        assert!((wrap_phase(-1.0f64) - (TAU - 1.0)).abs() < 1e-15);
        assert_eq!(wrap_phase(7.5f64), 7.5f64.rem_euclid(TAU));
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "pf-system-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }
}
