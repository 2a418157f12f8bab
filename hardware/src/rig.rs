//! What every rig is: an SLM that displays the input and a camera at the detector plane.
//!
//! A diffractive network on a bench is an input SLM (or a display) lit by a laser, the
//! fabricated layers, and a camera where the detector regions lie. [`Rig`] is that bench as a
//! program sees it: [`Rig::display`] puts gray levels on the SLM, [`Rig::capture`] reads camera
//! frames. The simulated rig ([`crate::SimRig`]) and a lab's rig behind the slmsuite network
//! protocol ([`crate::RemoteRig`]) are both one; [`crate::Readout`] turns frames into answers.
//!
//! Gray levels map to the model's input values `v ∈ [0, 1]` by the input's
//! [`Encoding`]: amplitude `v = level/(2ᵇ − 1)` (an amplitude SLM, black to white); phase
//! `φ = πv = 2π·level/2ᵇ` (a phase SLM whose 2ᵇ levels span one wave, linear in phase, as
//! slmsuite's `phase2gray` writes them), so `v = level/2ᵇ⁻¹`.

use photonflow_optics::system::Encoding;
use serde::Serialize;

use crate::error::{Result, invalid};

/// The parts of a rig a program needs to know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Description {
    /// A name for reports (`simulated`, or the remote devices' names).
    pub name: String,
    /// The input SLM.
    pub slm: Device,
    /// The camera at the detector plane.
    pub camera: Device,
    /// The camera's exposure, seconds.
    pub exposure_s: f64,
    /// The camera's value for no light (its offset), ADU, when the rig knows it.
    pub black_level: Option<f64>,
    /// The camera's noise, when the rig knows it: what a single frame's certainty is
    /// estimated from ([`crate::RigPrediction::certainty`]).
    pub noise: Option<CameraNoise>,
}

/// A camera's noise in the linear model: a pixel of `s` ADU above black has the variance
/// `s/gain + (read_noise/gain)² + 1/12` ADU² (shot noise, read noise, the converter's rounding).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CameraNoise {
    /// Electrons per ADU.
    pub gain: f64,
    /// Read noise, electrons rms.
    pub read_noise: f64,
    /// Whether the electrons carry shot noise.
    pub shot_noise: bool,
}

impl Description {
    /// The camera's black level to subtract, ADU: `given`, else the rig's own, else 0.
    /// Errors unless it is a finite number ≥ 0.
    pub fn black_level_or(&self, given: Option<f64>) -> Result<f64> {
        let black = given.or(self.black_level).unwrap_or(0.0);
        if black.is_finite() && black >= 0.0 {
            Ok(black)
        } else {
            Err(invalid(
                "black level",
                format!("{black} ADU must be a finite number ≥ 0"),
            ))
        }
    }
}

/// An SLM or a camera: a grid of pixels with a bit depth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Device {
    /// Pixel rows.
    pub rows: usize,
    /// Pixel columns.
    pub cols: usize,
    /// Bits per pixel value (1 to 16): values are `0..2ᵇ`.
    pub bits: u32,
    /// Pixel pitch, metres, when known.
    pub pitch_m: Option<f64>,
}

impl Device {
    /// The largest value, `2ᵇ − 1`.
    pub fn max_level(&self) -> u16 {
        max_level(self.bits)
    }
}

/// `2ᵇ − 1` for `b` in 1..=16.
pub(crate) fn max_level(bits: u32) -> u16 {
    ((1u32 << bits.clamp(1, 16)) - 1) as u16
}

/// Checks a bit depth.
pub(crate) fn check_bits(what: &str, bits: u32) -> Result<()> {
    if (1..=16).contains(&bits) {
        Ok(())
    } else {
        Err(invalid(
            what,
            format!("{bits} bits is not supported; give 1 to 16"),
        ))
    }
}

impl CameraNoise {
    /// The variance, ADU², of a pixel `signal` ADU above black.
    pub fn variance(&self, signal: f64) -> f64 {
        let shot = if self.shot_noise {
            signal.max(0.0) / self.gain
        } else {
            0.0
        };
        shot + (self.read_noise / self.gain).powi(2) + 1.0 / 12.0
    }
}

/// One camera frame: `rows × cols` values in `0..2ᵇ`, row-major, row 0 at the top.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Pixel rows.
    pub rows: usize,
    /// Pixel columns.
    pub cols: usize,
    /// Bits per value.
    pub bits: u32,
    /// The values (right-justified: a 12-bit camera gives `0..4096`).
    pub pixels: Vec<u16>,
}

/// The SLM level that displays input value `v ∈ [0, 1]` with `encoding` on `bits` bits (the
/// nearest level; values outside `[0, 1]` are clamped).
pub fn level_of(v: f32, encoding: Encoding, bits: u32) -> u16 {
    let top = f64::from(max_level(bits));
    let v = f64::from(v.clamp(0.0, 1.0));
    match encoding {
        Encoding::Amplitude => (v * top).round() as u16,
        // φ = πv of 2π spread over 2ᵇ levels; v = 1 is level 2ᵇ⁻¹.
        Encoding::Phase => ((v * (top + 1.0) / 2.0).round() as u32).min(top as u32) as u16,
    }
}

/// The input value `v` that SLM level `level` displays with `encoding` on `bits` bits (the
/// inverse of [`level_of`] on the levels; a phase level above 2ᵇ⁻¹ gives `v > 1`, a phase
/// beyond π).
pub fn value_of(level: u16, encoding: Encoding, bits: u32) -> f32 {
    let top = f64::from(max_level(bits));
    let l = f64::from(level.min(max_level(bits)));
    (match encoding {
        Encoding::Amplitude => l / top,
        Encoding::Phase => 2.0 * l / (top + 1.0),
    }) as f32
}

/// A bench: an input SLM and a camera at the detector plane.
///
/// Implementations are the simulated rig ([`crate::SimRig`]) and a remote lab rig
/// ([`crate::RemoteRig`]); [`crate::serve`] puts any of them on the network.
pub trait Rig: Send {
    /// The SLM, the camera and the exposure.
    fn describe(&mut self) -> Result<Description>;

    /// Puts `levels` (`rows × cols` of the SLM, row-major) on the SLM and waits until it has
    /// settled.
    fn display(&mut self, levels: &[u16]) -> Result<()>;

    /// Takes `count` frames of what the camera sees now.
    fn capture(&mut self, count: usize) -> Result<Vec<Frame>>;

    /// Sets the camera's exposure, seconds.
    fn set_exposure(&mut self, seconds: f64) -> Result<()>;

    /// Displays each of `displays` in turn and takes `count` frames of each: the frames of
    /// display `k` are `result[k]`. A rig that can do this faster than one display at a time
    /// (the simulated one runs them as one batch) overrides it.
    fn run(&mut self, displays: &[Vec<u16>], count: usize) -> Result<Vec<Vec<Frame>>> {
        displays
            .iter()
            .map(|d| {
                self.display(d)?;
                self.capture(count)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_values_are_inverse_on_every_level() {
        for bits in [1, 8, 10, 12, 16] {
            let top = max_level(bits);
            for level in (0..=top).step_by((top as usize / 97).max(1)) {
                let a = value_of(level, Encoding::Amplitude, bits);
                assert_eq!(level_of(a, Encoding::Amplitude, bits), level);
                if level <= top / 2 + 1 {
                    let p = value_of(level, Encoding::Phase, bits);
                    assert_eq!(level_of(p, Encoding::Phase, bits), level, "{bits} bits");
                }
            }
        }
        // Phase: v = 1 is π, half of the 2π range.
        assert_eq!(level_of(1.0, Encoding::Phase, 8), 128);
        assert_eq!(value_of(128, Encoding::Phase, 8), 1.0);
        assert_eq!(level_of(1.0, Encoding::Amplitude, 8), 255);
        assert_eq!(level_of(2.0, Encoding::Amplitude, 8), 255);
        assert_eq!(level_of(-1.0, Encoding::Amplitude, 8), 0);
        assert!(check_bits("camera bits", 0).is_err());
        assert!(check_bits("camera bits", 17).is_err());
    }
}
