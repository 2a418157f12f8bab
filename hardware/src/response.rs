//! Measuring a phase SLM's response on the rig: the phase (and amplitude) each gray level
//! shows, through the trained layers.
//!
//! A phase SLM's gray levels are rarely linear in phase, and the table its maker measured
//! was for another wavelength, temperature or drive. [`measure_slm`] measures it where it is
//! used. The input area is split into two halves: the left shows level 0 (the reference), the
//! right each level `g` in turn. The light of the two halves, `u₀` and `u₁` on the detector
//! plane (from the bench's digital twin), interferes, so the camera sees
//!
//! `I = |u₀|² + a²·|u₁|² + 2a·cos θ·Re(u₀* u₁) − 2a·sin θ·Im(u₀* u₁)`
//!
//! with `θ` the phase of level `g` relative to level 0 and `a` its amplitude relative to level
//! 0's. A frame is `gain·I + offset`, which is linear in `(gain, gain·a², gain·a·cos θ,
//! gain·a·sin θ, offset)`: each level's frame gives them by linear least squares over its
//! unsaturated pixels, and so `θ = atan2(…)` and `a` with no search. The phases are then
//! unwrapped along the levels and made monotone (pool adjacent violators), as a lookup table
//! must be ([`photonflow_optics::lut::GrayMap::table`]).
//!
//! The twin is the model with its layers where the rig file says (`layers.offsets`, as
//! `photonflow rig identify` writes them, or the design); it does not model the SLM's crosstalk
//! at the line between the halves.

use num_complex::Complex;
use photonflow_optics::Planner;
use photonflow_optics::lut::Lut;
use photonflow_optics::system::{Encoding, OpticalSystem};
use serde::Serialize;

use crate::config::{RigConfig, Source};
use crate::error::{Result, invalid};
use crate::fit::{mean_frames, solve};
use crate::geometry::{Affine, camera_map};
use crate::readout::SlmInput;
use crate::rig::Rig;
use crate::sim::{Placement, SimRig};

/// A phase SLM's response as [`measure_slm`] found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlmResponse {
    /// The levels measured, increasing.
    pub levels: Vec<u16>,
    /// Each level's phase relative to level 0's, radians: unwrapped and monotone.
    pub phase: Vec<f64>,
    /// The phases as each level's frame gave them, unwrapped (before the monotone fit).
    pub phase_measured: Vec<f64>,
    /// Each level's amplitude relative to level 0's.
    pub amplitude: Vec<f64>,
    /// Each level's frame's root mean square residual, relative to the frame's.
    pub residual: Vec<f64>,
}

impl SlmResponse {
    /// The response as a lookup table (`--slm-lut`, `export --lut`).
    pub fn lut(&self) -> Lut {
        Lut {
            gray: self.levels.iter().map(|&g| u32::from(g)).collect(),
            phase: self.phase.clone(),
            amplitude: Some(self.amplitude.clone()),
        }
    }

    /// The table as CSV text (`gray,phase,amplitude`), as [`Lut::read_csv`] reads it.
    pub fn to_csv(&self) -> String {
        let mut text = String::from("gray,phase,amplitude\n");
        for ((g, p), a) in self.levels.iter().zip(&self.phase).zip(&self.amplitude) {
            text.push_str(&format!("{g},{p:.6},{a:.6}\n"));
        }
        text
    }
}

/// Measures the response of the phase SLM of `rig` at `levels` (see the [module docs](self)),
/// with `system` (whose input is phase-encoded) as the optics, its layers where `twin`'s
/// `layers.offsets` put them (else as designed), and the camera at `camera` (a calibration;
/// `None` when its pixels are the plane's). `frames` frames of each level are averaged, with
/// `black` (ADU) subtracted.
///
/// Errors: an amplitude-encoded system, fewer than two levels, a camera that needs a
/// calibration, a level whose frame is dark or saturated, a rig error.
#[allow(clippy::too_many_arguments)]
pub fn measure_slm(
    rig: &mut dyn Rig,
    system: &OpticalSystem,
    twin: &RigConfig,
    camera: Option<&Affine>,
    levels: &[u16],
    black: f64,
    frames: usize,
) -> Result<SlmResponse> {
    system.validate()?;
    twin.validate()?;
    if system.input.encoding != Encoding::Phase {
        return Err(invalid(
            "SLM response",
            "the model's input is in amplitude; the phase response is measured for a phase SLM \
             (a phase-encoded model)",
        ));
    }
    if levels.len() < 2 || levels.windows(2).any(|w| w[1] <= w[0]) {
        return Err(invalid(
            "SLM response",
            "give at least two levels, increasing",
        ));
    }
    let description = rig.describe()?;
    let (rows, cols) = (description.camera.rows, description.camera.cols);
    let grid = system.grid()?;
    let map = camera_map(camera, &grid, cols, rows, "SLM response")?;
    if let Some(&top) = levels.last()
        && top > description.slm.max_level()
    {
        return Err(invalid(
            "SLM response",
            format!("level {top} is beyond the {}-bit SLM", description.slm.bits),
        ));
    }

    // The twin's light of each half, u₀ (left) and u₁ (right), with unit amplitude and phase.
    let placements = if twin.layers.offsets.is_empty() {
        vec![Placement::default(); system.layers.len()]
    } else {
        Placement::of(system, twin)?
    };
    // the basis is interferometric: the twin's coherent light at the design wavelength
    let coherent = RigConfig {
        source: Source {
            spectrum: None,
            lines: None,
            na: 0.0,
            ..twin.source.clone()
        },
        ..twin.clone()
    };
    let bench =
        SimRig::twin(system, &coherent, placements, &Planner::new())?.with_camera(map, cols, rows);
    let (ix, iy) = (system.input.nx, system.input.ny);
    let (nx, ny) = (grid.nx, grid.ny);
    let n = grid.len();
    let (x0, y0) = ((nx - ix) / 2, (ny - iy) / 2);
    let mut fields = vec![Complex::new(0f32, 0.0); 2 * n];
    for r in 0..iy {
        for c in 0..ix {
            let half = usize::from(c >= ix / 2);
            fields[half * n + (y0 + r) * nx + x0 + c] = Complex::new(1.0, 0.0);
        }
    }
    bench.through(&mut fields)?;
    let (u0, u1) = fields.split_at(n);
    let basis: Vec<Vec<f64>> = [
        u0.iter().map(|z| z.norm_sqr()).collect::<Vec<f32>>(),
        u1.iter().map(|z| z.norm_sqr()).collect(),
        u0.iter()
            .zip(u1)
            .map(|(a, b)| 2.0 * (a.conj() * b).re)
            .collect(),
        u0.iter()
            .zip(u1)
            .map(|(a, b)| -2.0 * (a.conj() * b).im)
            .collect(),
    ]
    .iter()
    .map(|m| bench.on_camera(m))
    .collect();

    // Each level's frames.
    let input = SlmInput::new(system, &description, None)?;
    let displays: Vec<Vec<u16>> = levels
        .iter()
        .map(|&g| {
            let half: Vec<u16> = (0..ix * iy)
                .map(|i| if i % ix >= ix / 2 { g } else { 0 })
                .collect();
            input.place(&half)
        })
        .collect();
    let captured = rig.run(&displays, frames.max(1))?;
    let (means, keep) = mean_frames(&captured, black, description.camera.max_level());
    let frame = rows * cols;
    let mut by_level: Vec<Vec<usize>> = vec![Vec::new(); levels.len()];
    for k in keep {
        by_level[k / frame].push(k % frame);
    }

    let mut wrapped: Vec<f64> = Vec::with_capacity(levels.len());
    let mut amplitude = Vec::with_capacity(levels.len());
    let mut residual = Vec::with_capacity(levels.len());
    for ((g, mean), pixels) in levels.iter().zip(&means).zip(&by_level) {
        let column = |j: usize, i: usize| if j < 4 { basis[j][i] } else { 1.0 };
        let mut ata = vec![vec![0.0; 5]; 5];
        let mut atb = vec![0.0; 5];
        for &i in pixels {
            let row: [f64; 5] = std::array::from_fn(|j| column(j, i));
            for (line, ra) in ata.iter_mut().zip(&row) {
                for (cell, rb) in line.iter_mut().zip(&row) {
                    *cell += ra * rb;
                }
            }
            for (t, ra) in atb.iter_mut().zip(&row) {
                *t += ra * mean[i];
            }
        }
        let x = solve(ata, atb)
            .filter(|x| x[0] > 0.0 && x.iter().all(|v| v.is_finite()))
            .ok_or_else(|| {
                invalid(
                    "SLM response",
                    format!(
                        "level {g}: the frame does not fix the interference (too dark, or \
                         saturated: check the exposure)"
                    ),
                )
            })?;
        wrapped.push(x[3].atan2(x[2]));
        amplitude.push(x[2].hypot(x[3]) / x[0]);
        let (sse, ss) = pixels.iter().fold((0.0, 0.0), |(e, t), &i| {
            let model: f64 = (0..5).map(|j| x[j] * column(j, i)).sum();
            (e + (mean[i] - model).powi(2), t + mean[i] * mean[i])
        });
        residual.push((sse / ss.max(f64::MIN_POSITIVE)).sqrt());
    }
    // Relative to level 0 (the first level measured is the reference when 0 is not).
    let reference = wrapped[0];
    let mut phase_measured: Vec<f64> = Vec::with_capacity(wrapped.len());
    for w in &wrapped {
        let mut p = w - reference;
        if let Some(&last) = phase_measured.last() {
            p += std::f64::consts::TAU * ((last - p) / std::f64::consts::TAU).round();
        }
        phase_measured.push(p);
    }
    let phase = monotone(&phase_measured);
    let a0 = amplitude[0];
    Ok(SlmResponse {
        levels: levels.to_vec(),
        phase,
        phase_measured,
        amplitude: amplitude.iter().map(|a| a / a0).collect(),
        residual,
    })
}

/// The monotone sequence nearest to `v` in the least-squares sense (pool adjacent violators),
/// rising or falling as `v` does overall.
fn monotone(v: &[f64]) -> Vec<f64> {
    let falling = v.last() < v.first();
    let sign = if falling { -1.0 } else { 1.0 };
    // Blocks of (sum, count), merged while a block's mean is below the one before.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for &x in v {
        blocks.push((sign * x, 1));
        while blocks.len() >= 2 {
            let (s2, n2) = blocks[blocks.len() - 1];
            let (s1, n1) = blocks[blocks.len() - 2];
            if s1 / n1 as f64 <= s2 / n2 as f64 {
                break;
            }
            blocks.pop();
            *blocks.last_mut().expect("two blocks") = (s1 + s2, n1 + n2);
        }
    }
    blocks
        .iter()
        .flat_map(|&(s, n)| std::iter::repeat_n(sign * s / n as f64, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::monotone;

    #[test]
    fn monotone_pools_adjacent_violators() {
        assert_eq!(monotone(&[0.0, 1.0, 2.0]), vec![0.0, 1.0, 2.0]);
        assert_eq!(monotone(&[0.0, 2.0, 1.0, 3.0]), vec![0.0, 1.5, 1.5, 3.0]);
        assert_eq!(monotone(&[3.0, 1.0, 2.0, 0.0]), vec![3.0, 1.5, 1.5, 0.0]);
    }
}
