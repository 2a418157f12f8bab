//! The imperfections of a simulated rig, as a TOML file (`--rig-config rig.toml`).
//!
//! Every key is optional; a missing one takes the value of [`RigConfig::default`], a
//! realistic bench: an 8-bit SLM, layers placed exactly, a 12-bit scientific camera with shot,
//! dark and read noise. Lengths are text with a unit, as everywhere in photonflow.
//!
//! ```toml
//! seed = 0                       # the fixed draws (layer offsets, fabrication errors) and noise
//!
//! [source]
//! photons_per_s = 1e9            # photons/s through the input area when every input pixel is 1
//! # spectrum = "gaussian:532nm:10nm"  # broadband light (also flat:MIN:MAX, lines:λ=w,…, or a
//! #                              # spectrum file relative to the rig file); omit: a laser at the
//! #                              # system's wavelength
//! # lines = 9                    # lines to sample it with (omit: the fewest the bench needs)
//! # na = 0.01                    # an incoherent source's cone at the SLM (LED behind a
//! #                              # condenser); 0: a collimated, spatially coherent beam
//!
//! [slm]                          # the input SLM
//! bits = 8                       # gray levels 2^bits
//! crosstalk = 0.0                # fringing: σ of a Gaussian blur of the levels, SLM pixels
//! contrast = 1000.0              # amplitude SLMs: white/black intensity ratio (omit: perfect)
//! # lut = "slm_lut.csv"          # phase SLMs: measured gray → phase (omit: linear over 2π)
//!
//! [layers]                       # the fabricated layers as mounted
//! lateral = "0um"                # each layer off by a fixed offset uniform in ±lateral (x, y)
//! axial = "0um"                  # each layer off along z, uniform in ±axial
//! phase_error = 0.0              # fabrication: Gaussian phase error σ per pixel, radians
//! transmittance = 1.0            # power each layer passes (reflections, absorption)
//! # offsets = [{ x = "0.4mm", y = "-50um", z = "1mm" }, ...]  # where each layer sits, as
//! #                              # measured (`photonflow rig identify`); replaces the draws
//! # mounted = 2                  # only the first 2 layers in place yet (default: all)
//!
//! [camera]                       # at the detector plane, one pixel per plane pixel
//! bits = 12
//! full_well = 10000.0            # electrons
//! quantum_efficiency = 0.7
//! read_noise = 2.0               # electrons rms
//! dark_current = 5.0             # electrons/s
//! black_level = 100              # ADU added to every pixel
//! exposure = 0.01                # seconds
//! shot_noise = true
//! # gain = 2.44                  # electrons per ADU; default: full_well / 2^bits
//! # pitch = "5.86um"             # the camera's own pixels; default: the model's pitch
//! # rows = 1200                  # default: the model's grid
//! # cols = 1920
//! x = "0um"                      # where the camera's centre lies on the detector plane
//! y = "0um"
//! rotation = 0.0                 # degrees about the optical axis
//! ```
//!
//! A camera of its own pitch, size, offset or rotation needs a calibration before its frames
//! can be read ([`crate::calibrate()`]).

use std::path::{Path, PathBuf};

use photonflow_optics::coherence::Profile;
use photonflow_optics::lut::Lut;

use photonflow_optics::units::Length;
use serde::{Deserialize, Serialize};

use crate::error::{HardwareError, Result, invalid};
use crate::rig::check_bits;

/// Everything a simulated rig adds to the ideal model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RigConfig {
    /// Seed of every random draw: the fixed ones (layer offsets, fabrication errors) made once
    /// when the rig is built, and the noise of every frame.
    pub seed: u64,
    /// The light.
    pub source: Source,
    /// The input SLM.
    pub slm: Slm,
    /// The layers as fabricated and mounted.
    pub layers: Layers,
    /// The camera at the detector plane.
    pub camera: Camera,
}

/// The light source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Source {
    /// Photons per second through the input area when every input pixel is at 1 (full
    /// amplitude); an input carries the fraction of that its field power is.
    pub photons_per_s: f64,
    /// The source's spectrum, as [`Profile::parse`] reads it (`gaussian:532nm:10nm`,
    /// `flat:MIN:MAX`, `lines:λ=w,…`, or a spectrum file, relative to the rig file); none: a
    /// laser at the system's wavelength. Every line crosses the layers with the phase its
    /// wavelength gives their optical path (`φ·λ₀/λ` for an SLM or phase plate; a relief's
    /// from its heights and its material's index there, [`Layer::transmission_at`]).
    ///
    /// [`Layer::transmission_at`]: photonflow_optics::system::Layer::transmission_at
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spectrum: Option<String>,
    /// Lines to sample the spectrum with; none: the fewest that resolve the bench's path
    /// differences to 10⁻³ ([`Profile::sample_for`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<usize>,
    /// Spatial coherence: the numerical aperture of an incoherent source's cone at the input
    /// SLM (an LED or lamp behind a condenser, as plane waves over the cone); 0: a collimated,
    /// spatially coherent beam.
    pub na: f64,
}

/// The input SLM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slm {
    /// Bits per gray level (1 to 16).
    pub bits: u32,
    /// Pixel crosstalk (the fringing field of liquid-crystal SLMs): the displayed values are
    /// blurred by a Gaussian of this standard deviation, in SLM pixels; 0 for none.
    pub crosstalk: f64,
    /// Amplitude SLMs: the ratio of white to black intensity (a black pixel passes
    /// `1/contrast` of the light); none for a perfect black. Phase SLMs ignore it.
    pub contrast: Option<f64>,
    /// Phase SLMs: the measured response, a lookup table CSV (`gray,phase[,amplitude]`, see
    /// [`photonflow_optics::lut`]) relative to the rig file; none for a linear SLM whose
    /// `2^bits` levels span 2π.
    pub lut: Option<PathBuf>,
    /// The table `lut` names, read by [`RigConfig::load`] (or set in code).
    #[serde(skip)]
    pub table: Option<Lut>,
}

/// The layers as fabricated and mounted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Layers {
    /// Each layer is off by a fixed lateral offset drawn uniformly in `±lateral` along x and
    /// along y, rounded to whole pixels.
    pub lateral: Length,
    /// Each layer is off along z by a fixed distance drawn uniformly in `±axial`.
    pub axial: Length,
    /// Fabrication error of every pixel's phase: Gaussian with this standard deviation,
    /// radians, drawn once.
    pub phase_error: f64,
    /// Fraction of the power each layer passes (surface reflections, absorption), in (0, 1].
    pub transmittance: f64,
    /// Where each layer sits, one entry per layer in the order light meets them (as
    /// `photonflow rig identify` measures them): these replace the random draws of `lateral`
    /// and `axial`, which must then be 0. Lateral offsets may be fractions of a pixel
    /// ([`photonflow_optics::shift`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offsets: Vec<Offset>,
    /// Only the first this many layers are in place (a bench assembled, and identified, one
    /// layer at a time); the planes of the others are free space. None: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounted: Option<usize>,
}

/// A layer's offset from its place in the design.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Offset {
    /// Along x.
    pub x: Length,
    /// Along y.
    pub y: Length,
    /// Along z (positive: further from the input).
    pub z: Length,
}

/// A camera at the detector plane; its pixels are the plane's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Camera {
    /// ADC bits (1 to 16).
    pub bits: u32,
    /// Electrons a pixel holds before it saturates.
    pub full_well: f64,
    /// Fraction of the photons that become electrons, in (0, 1].
    pub quantum_efficiency: f64,
    /// Read noise, electrons rms.
    pub read_noise: f64,
    /// Dark current, electrons per pixel per second.
    pub dark_current: f64,
    /// Value added to every pixel (so that noise below zero is kept), ADU.
    pub black_level: u32,
    /// Exposure, seconds.
    pub exposure: f64,
    /// Electrons per ADU; `None`: `full_well / 2^bits`, so that the well and the converter
    /// saturate together.
    pub gain: Option<f64>,
    /// Photon shot noise (Poisson statistics of the photo- and dark electrons). Off, the
    /// electrons are their expected numbers.
    pub shot_noise: bool,
    /// Pixel pitch; default: the model's, one camera pixel per plane pixel.
    pub pitch: Option<Length>,
    /// Pixel rows; default: the model's grid.
    pub rows: Option<usize>,
    /// Pixel columns; default: the model's grid.
    pub cols: Option<usize>,
    /// Where the camera's centre lies on the detector plane, x.
    pub x: Length,
    /// Where the camera's centre lies on the detector plane, y.
    pub y: Length,
    /// The camera's rotation about the optical axis, degrees (counter-clockwise from the
    /// plane's x axis to its columns).
    pub rotation: f64,
}

impl Default for Source {
    fn default() -> Self {
        Self {
            photons_per_s: 1e9,
            spectrum: None,
            lines: None,
            na: 0.0,
        }
    }
}

impl Source {
    /// Whether the light is one coherent laser line at the system's wavelength.
    pub fn is_laser(&self) -> bool {
        self.spectrum.is_none() && self.na == 0.0
    }

    /// The parsed spectrum; none for a laser.
    pub fn profile(&self) -> Result<Option<Profile>> {
        self.spectrum
            .as_deref()
            .map(|text| Profile::parse(text).map_err(|e| invalid("source.spectrum", e.to_string())))
            .transpose()
    }
}

impl Default for Slm {
    fn default() -> Self {
        Self {
            bits: 8,
            crosstalk: 0.0,
            contrast: None,
            lut: None,
            table: None,
        }
    }
}

impl Default for Layers {
    fn default() -> Self {
        Self {
            lateral: Length(0.0),
            axial: Length(0.0),
            phase_error: 0.0,
            transmittance: 1.0,
            offsets: Vec::new(),
            mounted: None,
        }
    }
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            bits: 12,
            full_well: 10_000.0,
            quantum_efficiency: 0.7,
            read_noise: 2.0,
            dark_current: 5.0,
            black_level: 100,
            exposure: 0.01,
            gain: None,
            shot_noise: true,
            pitch: None,
            rows: None,
            cols: None,
            x: Length(0.0),
            y: Length(0.0),
            rotation: 0.0,
        }
    }
}

impl Camera {
    /// Electrons per ADU.
    pub fn gain(&self) -> f64 {
        self.gain
            .unwrap_or(self.full_well / f64::from(1u32 << self.bits.clamp(1, 16)))
    }
}

impl RigConfig {
    /// A rig that adds nothing the model lacks but what it cannot avoid: a 16-bit SLM, exact
    /// layers, a noiseless 16-bit camera whose well holds 10⁻² of a full input's light in one
    /// pixel. Frames are then the model's detector intensities quantised to 16 bits (for tests
    /// and comparisons).
    pub fn ideal() -> Self {
        Self {
            seed: 0,
            source: Source {
                photons_per_s: 1e14,
                ..Source::default()
            },
            slm: Slm {
                bits: 16,
                ..Slm::default()
            },
            layers: Layers::default(),
            camera: Camera {
                bits: 16,
                full_well: 1e12,
                quantum_efficiency: 1.0,
                read_noise: 0.0,
                dark_current: 0.0,
                black_level: 0,
                exposure: 1.0,
                shot_noise: false,
                ..Camera::default()
            },
        }
    }

    /// Reads a rig file (see the [module docs](self)) and checks it.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| HardwareError::Io {
            action: format!("reading the rig file {}", path.display()),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|e| {
            invalid(
                format!("rig file {}", path.display()),
                e.to_string().trim_end().to_string(),
            )
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Some(lut) = &config.slm.lut {
            config.slm.table = Some(Lut::read_csv(&dir.join(lut))?);
        }
        // a spectrum file is named relative to the rig file
        if let Some(text) = &config.source.spectrum
            && !text.contains(':')
            && dir.join(text).is_file()
        {
            config.source.spectrum = Some(dir.join(text).to_string_lossy().into_owned());
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range; the error names the key and what it may be.
    pub fn validate(&self) -> Result<()> {
        let finite_at_least = |key: &str, v: f64, low: f64| {
            if v.is_finite() && v >= low {
                Ok(())
            } else {
                Err(invalid(key, format!("{v} must be a finite number ≥ {low}")))
            }
        };
        let fraction = |key: &str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(invalid(key, format!("{v} must be in (0, 1]")))
            }
        };
        finite_at_least("source.photons_per_s", self.source.photons_per_s, 0.0)?;
        finite_at_least("source.na", self.source.na, 0.0)?;
        if self.source.na >= 1.0 {
            return Err(invalid(
                "source.na",
                format!(
                    "{}: the illumination's cone must have a numerical aperture below 1",
                    self.source.na
                ),
            ));
        }
        if self.source.lines == Some(0) {
            return Err(invalid("source.lines", "give at least one line"));
        }
        self.source.profile()?;
        check_bits("slm.bits", self.slm.bits)?;
        finite_at_least("slm.crosstalk", self.slm.crosstalk, 0.0)?;
        if self.slm.crosstalk > 16.0 {
            return Err(invalid(
                "slm.crosstalk",
                format!(
                    "{} SLM pixels is no SLM's crosstalk; give at most 16",
                    self.slm.crosstalk
                ),
            ));
        }
        if let Some(c) = self.slm.contrast {
            finite_at_least("slm.contrast", c, 1.0)?;
        }
        finite_at_least("layers.lateral", self.layers.lateral.m(), 0.0)?;
        finite_at_least("layers.axial", self.layers.axial.m(), 0.0)?;
        finite_at_least("layers.phase_error", self.layers.phase_error, 0.0)?;
        fraction("layers.transmittance", self.layers.transmittance)?;
        if !self.layers.offsets.is_empty()
            && (self.layers.lateral.m() > 0.0 || self.layers.axial.m() > 0.0)
        {
            return Err(invalid(
                "layers.offsets",
                "measured offsets replace the random ones: set layers.lateral and layers.axial \
                 to 0, or remove layers.offsets",
            ));
        }
        for (l, o) in self.layers.offsets.iter().enumerate() {
            if ![o.x, o.y, o.z].iter().all(|v| v.m().is_finite()) {
                return Err(invalid(
                    format!("layers.offsets[{l}]"),
                    "x, y and z must be finite lengths",
                ));
            }
        }
        let c = &self.camera;
        check_bits("camera.bits", c.bits)?;
        if !(c.full_well.is_finite() && c.full_well >= 1.0) {
            return Err(invalid(
                "camera.full_well",
                format!("{} must be a finite number of electrons ≥ 1", c.full_well),
            ));
        }
        fraction("camera.quantum_efficiency", c.quantum_efficiency)?;
        finite_at_least("camera.read_noise", c.read_noise, 0.0)?;
        finite_at_least("camera.dark_current", c.dark_current, 0.0)?;
        finite_at_least("camera.exposure", c.exposure, 0.0)?;
        if c.black_level > u32::from(crate::rig::max_level(c.bits)) {
            return Err(invalid(
                "camera.black_level",
                format!(
                    "{} ADU is beyond the {}-bit range (0 to {})",
                    c.black_level,
                    c.bits,
                    crate::rig::max_level(c.bits)
                ),
            ));
        }
        if let Some(p) = c.pitch
            && !(p.m().is_finite() && p.m() > 0.0)
        {
            return Err(invalid(
                "camera.pitch",
                format!("{p} must be a positive length"),
            ));
        }
        for (key, n) in [("camera.rows", c.rows), ("camera.cols", c.cols)] {
            if let Some(n) = n
                && !(1..=16384).contains(&n)
            {
                return Err(invalid(key, format!("{n} pixels: give 1 to 16384")));
            }
        }
        for (key, v) in [("camera.x", c.x.m()), ("camera.y", c.y.m())] {
            if !v.is_finite() {
                return Err(invalid(key, format!("{v} must be a finite length")));
            }
        }
        if !(c.rotation.is_finite() && c.rotation.abs() <= 180.0) {
            return Err(invalid(
                "camera.rotation",
                format!("{} must be degrees from −180 to 180", c.rotation),
            ));
        }
        if let Some(g) = c.gain
            && !(g.is_finite() && g > 0.0)
        {
            return Err(invalid(
                "camera.gain",
                format!("{g} must be a positive number of electrons per ADU"),
            ));
        }
        Ok(())
    }

    /// The file's text: every key with its value.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a rig configuration is plain TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_is_the_default_and_round_trips() {
        let doc = include_str!("config.rs");
        let toml_text: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut parsed: RigConfig = toml::from_str(&toml_text).unwrap();
        // The documented contrast is an example; the default is a perfect black.
        assert_eq!(parsed.slm.contrast, Some(1000.0));
        parsed.slm.contrast = None;
        assert_eq!(parsed, RigConfig::default());
        let back: RigConfig = toml::from_str(&RigConfig::ideal().to_toml()).unwrap();
        assert_eq!(back, RigConfig::ideal());
        let mut placed = RigConfig::default();
        placed.layers.offsets = vec![
            Offset {
                x: Length(4.1e-4),
                y: Length(-5e-5),
                z: Length(1e-3),
            },
            Offset::default(),
        ];
        let back: RigConfig = toml::from_str(&placed.to_toml()).unwrap();
        assert_eq!(back, placed);
        RigConfig::default().validate().unwrap();
        RigConfig::ideal().validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = |text: &str, key: &str| {
            let config: RigConfig = match toml::from_str(text) {
                Ok(c) => c,
                Err(e) => {
                    assert!(e.to_string().contains(key), "{text}: {e}");
                    return;
                }
            };
            let e = config.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        };
        bad("[camera]\nbits = 20", "camera.bits");
        bad(
            "[camera]\nquantum_efficiency = 0",
            "camera.quantum_efficiency",
        );
        bad("[camera]\nblack_level = 5000", "camera.black_level");
        bad("[camera]\ngain = -1.0", "camera.gain");
        bad("[camera]\nexposure = nan", "camera.exposure");
        bad("[slm]\nbits = 0", "slm.bits");
        bad("[slm]\ncrosstalk = 100.0", "slm.crosstalk");
        bad("[slm]\ncontrast = 0.5", "slm.contrast");
        bad("[layers]\nlateral = \"5\"", "unit");
        bad("[layers]\ntransmittance = 1.5", "layers.transmittance");
        bad("[camera]\nexposur = 1.0", "exposur");
        bad("[source]\nphotons_per_s = -1.0", "source.photons_per_s");
        bad("[source]\nna = 1.5", "source.na");
        bad("[source]\nna = -0.1", "source.na");
        bad("[source]\nlines = 0", "source.lines");
        bad("[source]\nspectrum = \"gaussian:532nm\"", "source.spectrum");
        bad("[source]\nspectrum = \"nowhere.csv\"", "source.spectrum");
        bad("[camera]\npitch = \"0um\"", "camera.pitch");
        bad("[camera]\nrows = 0", "camera.rows");
        bad("[camera]\nrotation = 400.0", "camera.rotation");
        bad(
            "[layers]\nlateral = \"1mm\"\noffsets = [{ x = \"1um\" }]",
            "layers.offsets",
        );
        bad("[layers]\noffsets = [{ x = \"1um\", w = \"1um\" }]", "w");
        let mut config = RigConfig::default();
        config.layers.offsets = vec![
            Offset::default(),
            Offset {
                z: Length(f64::NAN),
                ..Offset::default()
            },
        ];
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("layers.offsets[1]"), "{e}");
    }

    #[test]
    fn a_spectrum_file_is_read_beside_the_rig_file() {
        let dir = std::env::temp_dir().join(format!("pf-rig-spectrum-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("led.csv"),
            "wavelength_nm,power\n600,0\n630,1\n660,0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("rig.toml"),
            "[source]\nspectrum = \"led.csv\"\nna = 0.01\n",
        )
        .unwrap();
        let config = RigConfig::load(&dir.join("rig.toml")).unwrap();
        assert!(
            matches!(config.source.profile().unwrap(), Some(Profile::Table(t)) if t.len() == 3)
        );
        assert!(!config.source.is_laser());
        std::fs::write(
            dir.join("rig.toml"),
            "[source]\nspectrum = \"missing.csv\"\n",
        )
        .unwrap();
        let e = RigConfig::load(&dir.join("rig.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("source.spectrum"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_lookup_table_is_read_beside_the_rig_file() {
        let dir = std::env::temp_dir().join(format!("pf-rig-lut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rows: Vec<String> = (0..4)
            .map(|g| format!("{g},{}", std::f64::consts::TAU * f64::from(g) / 4.0))
            .collect();
        std::fs::write(dir.join("slm.csv"), rows.join("\n")).unwrap();
        std::fs::write(dir.join("rig.toml"), "[slm]\nbits = 2\nlut = \"slm.csv\"\n").unwrap();
        let config = RigConfig::load(&dir.join("rig.toml")).unwrap();
        assert_eq!(config.slm.table.unwrap().gray, vec![0, 1, 2, 3]);
        std::fs::write(dir.join("rig.toml"), "[slm]\nlut = \"missing.csv\"\n").unwrap();
        let e = RigConfig::load(&dir.join("rig.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.csv"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
