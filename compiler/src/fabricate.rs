//! A fabrication process applied to a design: the relief of every layer, its level map, and
//! the system as built.
//!
//! A layer of phase `φ` (radians, as the system stores it: wrapped into `[0, 2π)`) becomes the
//! thinnest relief of the process's material that delays the wave by `φ`:
//!
//! ```text
//! h = φ/(2π) · h₂π,     h₂π = λ / (n − n_medium)
//! ```
//!
//! With `L` levels the phase is first rounded to the nearest of `k·2π/L`, `k = 0 … L−1`
//! (`2π` wraps to level 0), so `h = k·h₂π/L`: one level is `h₂π/L` high, the tallest pixel
//! `(L−1)/L·h₂π`. Every layer stands on a base plate of thickness `base` (the same for all
//! pixels: it adds a uniform phase and absorption). The system as built
//! ([`Fabrication::as_built`]) has height layers of the material whose phase
//! `2π(n − n_medium)(base + h)/λ` and amplitude `exp(−2πκ(base + h)/λ)` follow from the
//! relief — absorption included, which is what the design did not see.
//!
//! Layers that modulate amplitude independently of phase cannot be made as a relief of one
//! material; they are refused.

use std::f64::consts::TAU;

use photonflow_optics::OpticalSystem;
use photonflow_optics::system::{Layer, Material, Modulation};

use crate::error::{CompileError, Result};

/// The most levels a level map holds (`u16` indices).
pub const MAX_LEVELS: u32 = 1 << 16;

/// How layers are made.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// The material of the reliefs (`n` and `κ` at the design wavelength; its dispersion, if
    /// any, goes into the as-built system).
    pub material: Material,
    /// Levels to quantise to; `None` keeps the levels each layer was trained with, or a
    /// continuous relief for layers trained without.
    pub levels: Option<u32>,
    /// Thickness of the base plate under every layer, metres (≥ 0).
    pub base_m: f64,
    /// Unwrap each layer's phase ([`crate::unwrap`]) into a relief without 2π steps, taller
    /// than one 2π wherever the phase runs on (a refractive surface instead of a Fresnel
    /// one); with levels, heights are whole steps of `h₂π/L` and there is no level map.
    pub unwrap: bool,
}

/// The relief of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Relief {
    /// The layer's name in the system.
    pub name: String,
    /// Height above the base plate, metres, `[ny, nx]` row-major (row 0 at the most negative
    /// y).
    pub heights_m: Vec<f64>,
    /// Level of every pixel, `0 … L−1`, when the layer is quantised.
    pub levels: Option<Vec<u16>>,
    /// `L`, when the layer is quantised.
    pub level_count: Option<u32>,
}

/// A design as a process makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fabrication {
    /// The process.
    pub process: Process,
    /// Vacuum wavelength, metres.
    pub wavelength_m: f64,
    /// Index of the medium around the layers.
    pub medium_index: f64,
    /// Relief of one full 2π of phase, `λ/(n − n_medium)`, metres.
    pub full_wave_m: f64,
    /// Every layer, in the system's order.
    pub layers: Vec<Relief>,
}

/// Applies `process` to every layer of `system` (see the module docs).
///
/// Errors: an amplitude-modulating layer, `levels` outside `2 … 65 536`, a negative or
/// non-finite base, non-finite phases, a material with `n ≤ n_medium`.
pub fn fabricate(system: &OpticalSystem, process: &Process) -> Result<Fabrication> {
    let m = &process.material;
    m.validate(system.wavelength_m)
        .map_err(|e| CompileError::Material(e.to_string()))?;
    // (validate has refused non-finite values and κ < 0)
    if m.n <= system.medium_index {
        return Err(CompileError::Material(format!(
            "material '{}' (n = {}, κ = {}) cannot make a relief in a medium of index {}: it \
             needs n > {} and κ ≥ 0",
            m.name, m.n, m.kappa, system.medium_index, system.medium_index
        )));
    }
    if !(process.base_m >= 0.0 && process.base_m.is_finite()) {
        return Err(CompileError::Option {
            option: "--base",
            problem: format!("{} m; give a thickness ≥ 0", process.base_m),
        });
    }
    if let Some(l) = process.levels {
        check_levels(l)?;
    }
    let full_wave_m = system.wavelength_m / (m.n - system.medium_index);
    let layers = system
        .layers
        .iter()
        .map(|layer| {
            let levels = process.levels.or(layer.levels);
            if process.unwrap {
                unwrapped_relief(system, layer, levels, full_wave_m)
            } else {
                relief(layer, levels, full_wave_m)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Fabrication {
        process: process.clone(),
        wavelength_m: system.wavelength_m,
        medium_index: system.medium_index,
        full_wave_m,
        layers,
    })
}

fn check_levels(l: u32) -> Result<()> {
    if (2..=MAX_LEVELS).contains(&l) {
        Ok(())
    } else {
        Err(CompileError::Option {
            option: "--levels",
            problem: format!("{l}; give 2 … {MAX_LEVELS} levels"),
        })
    }
}

/// The phase of `layer` as a process or a modulator takes it: in turns (`φ/2π`, wrapped into
/// `[0, 1)`), rounded to the nearest of `k/L` when `levels = Some(L)` (then also the level `k`
/// of every pixel, `L/L` wrapping to level 0).
///
/// Errors: a layer that modulates amplitude independently of phase (neither a relief of one
/// material nor a phase-only modulator can make it), non-finite phases, `L` outside
/// `2 … 65 536`.
pub fn phase_turns(layer: &Layer, levels: Option<u32>) -> Result<(Vec<f64>, Option<Vec<u16>>)> {
    if layer.modulation == Modulation::AmplitudePhase {
        return Err(CompileError::Design(format!(
            "layer '{}' modulates amplitude and phase independently; a relief of one material \
             (or a phase-only modulator) sets the amplitude from the phase, so it cannot be \
             made this way — train a phase-only or height layer",
            layer.name
        )));
    }
    if let Some(bad) = layer.phase.iter().find(|p| !p.is_finite()) {
        return Err(CompileError::Design(format!(
            "layer '{}' has a non-finite phase ({bad}); the model file is corrupt",
            layer.name
        )));
    }
    let turns = layer.phase.iter().map(|&p| {
        // rem_euclid rounds a tiny negative phase up to 2π exactly: that is phase 0.
        let t = f64::from(p).rem_euclid(TAU) / TAU;
        if t >= 1.0 { 0.0 } else { t }
    });
    Ok(match levels {
        None => (turns.collect(), None),
        Some(l) => {
            check_levels(l)?;
            let k: Vec<u16> = turns
                .map(|t| ((t * f64::from(l)).round() as u32 % l) as u16)
                .collect();
            let turns = k.iter().map(|&k| f64::from(k) / f64::from(l)).collect();
            (turns, Some(k))
        }
    })
}

/// The relief of the unwrapped phase, shifted by whole turns so that its lowest pixel is less
/// than one 2π high (the phase stays congruent to the design's), quantised to steps of
/// `h₂π/L` with levels.
fn unwrapped_relief(
    system: &OpticalSystem,
    layer: &Layer,
    levels: Option<u32>,
    full_wave_m: f64,
) -> Result<Relief> {
    if let Some(l) = levels {
        check_levels(l)?;
    }
    let (turns, _) = phase_turns(layer, None)?;
    let phase: Vec<f64> = turns.iter().map(|t| t * TAU).collect();
    let mut u: Vec<f64> = crate::unwrap::unwrap_phase(&phase, system.nx, system.ny)
        .iter()
        .map(|p| p / TAU)
        .collect();
    let lowest = u.iter().copied().fold(f64::INFINITY, f64::min).floor();
    for t in &mut u {
        *t -= lowest;
        if let Some(l) = levels {
            *t = (*t * f64::from(l)).round() / f64::from(l);
        }
    }
    Ok(Relief {
        name: layer.name.clone(),
        heights_m: u.iter().map(|t| t * full_wave_m).collect(),
        levels: None,
        level_count: levels,
    })
}

fn relief(layer: &Layer, levels: Option<u32>, full_wave_m: f64) -> Result<Relief> {
    let (turns, k) = phase_turns(layer, levels)?;
    Ok(Relief {
        name: layer.name.clone(),
        heights_m: turns.iter().map(|t| t * full_wave_m).collect(),
        levels: k,
        level_count: levels,
    })
}

impl Fabrication {
    /// Height of one level of a layer quantised to `l` levels, metres.
    pub fn level_height_m(&self, l: u32) -> f64 {
        self.full_wave_m / f64::from(l)
    }

    /// `system` as built: every layer a height layer of the material, base plate included,
    /// with the phase and absorption its relief gives (see the module docs).
    pub fn as_built(&self, system: &OpticalSystem) -> OpticalSystem {
        let mut built = system.clone();
        let m = &self.process.material;
        for (layer, relief) in built.layers.iter_mut().zip(&self.layers) {
            let h: Vec<f64> = relief
                .heights_m
                .iter()
                .map(|h| h + self.process.base_m)
                .collect();
            layer.modulation = Modulation::Height;
            layer.material = Some(m.clone());
            layer.levels = relief.level_count;
            layer.phase = h
                .iter()
                .map(|&h| m.phase(h, self.wavelength_m, self.medium_index) as f32)
                .collect();
            layer.amplitude = Some(
                h.iter()
                    .map(|&h| m.amplitude(h, self.wavelength_m) as f32)
                    .collect(),
            );
            layer.height = Some(h.iter().map(|&h| h as f32).collect());
        }
        built
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use photonflow_optics::system::{Layer, RegionSpec};

    fn system(phases: Vec<f32>) -> OpticalSystem {
        let n = (phases.len() as f64).sqrt() as usize;
        let mut s = OpticalSystem::new("t", 0.75e-3, n, n, 0.4e-3).unwrap();
        s.input.distance_m = 0.03;
        s.layers.push(Layer::phase_only("layer0", phases, 0.03));
        s.detector
            .regions
            .push(RegionSpec::new("0", (0.0, 0.0), 0.4e-3, 0.4e-3));
        s.detector.classes = vec!["0".into()];
        s
    }

    fn resin() -> Material {
        Material::constant("thz-resin", 1.72, 0.03)
    }

    #[test]
    fn heights_follow_the_phase_and_levels_round_to_the_nearest() {
        use std::f32::consts::PI;
        let s = system(vec![0.0, PI / 2.0, PI, 1.99 * PI]);
        let process = Process {
            material: resin(),
            levels: None,
            base_m: 0.0,
            unwrap: false,
        };
        let f = fabricate(&s, &process).unwrap();
        let full = 0.75e-3 / 0.72;
        assert!((f.full_wave_m - full).abs() < 1e-15);
        let h = &f.layers[0].heights_m;
        for (got, want) in h.iter().zip([0.0, 0.25, 0.5, 0.995]) {
            assert!((got - want * full).abs() < 1e-6 * full, "{got} vs {want}");
        }
        // Four levels: π/2 → 1, π → 2, 1.99π → 4 ≡ 0 (wrapped).
        let f = fabricate(
            &s,
            &Process {
                levels: Some(4),
                ..process.clone()
            },
        )
        .unwrap();
        assert_eq!(f.layers[0].levels.as_deref(), Some(&[0u16, 1, 2, 0][..]));
        assert!((f.layers[0].heights_m[2] - full / 2.0).abs() < 1e-12);
        assert!((f.level_height_m(4) - full / 4.0).abs() < 1e-15);
    }

    #[test]
    fn the_as_built_system_delays_by_the_design_phase_and_absorbs() {
        let phases: Vec<f32> = (0..16).map(|k| k as f32 * 0.39).collect();
        let s = system(phases.clone());
        let base = 0.2e-3;
        let process = Process {
            material: resin(),
            levels: None,
            base_m: base,
            unwrap: false,
        };
        let built = fabricate(&s, &process).unwrap().as_built(&s);
        let l = &built.layers[0];
        assert_eq!(l.modulation, Modulation::Height);
        let base_phase = TAU * 0.72 * base / 0.75e-3;
        for ((&got, &want), &h) in l.phase.iter().zip(&phases).zip(l.height.as_ref().unwrap()) {
            // Same phase modulo 2π, up to the base plate's uniform delay.
            let d = (f64::from(got) - base_phase - f64::from(want)).rem_euclid(TAU);
            assert!(d.min(TAU - d) < 1e-5, "{got} vs {want}");
            let h = f64::from(h);
            assert!(h > base * (1.0 - 1e-6) && h < base + 0.75e-3 / 0.72, "{h}");
        }
        // Thicker pixels absorb more.
        let amp = l.amplitude.as_ref().unwrap();
        let h = l.height.as_ref().unwrap();
        let thickest = (0..16).max_by(|&a, &b| h[a].total_cmp(&h[b])).unwrap();
        let thinnest = (0..16).min_by(|&a, &b| h[a].total_cmp(&h[b])).unwrap();
        assert!(amp[thickest] < amp[thinnest]);
        assert!((f64::from(amp[thinnest]) - (-TAU * 0.03 * base / 0.75e-3).exp()).abs() < 1e-6);
        built.validate().unwrap();
    }

    #[test]
    fn an_unwrapped_lens_becomes_a_refractive_surface_congruent_to_the_design() {
        // A converging lens φ = −π r²/(λf) on 24×24 pixels of 0.4 mm at 0.75 mm, f = 1 cm:
        // several turns across the aperture, steps between pixels well below π.
        let n = 24;
        let (wl, pitch, f) = (0.75e-3, 0.4e-3, 0.01);
        let true_phase: Vec<f64> = (0..n * n)
            .map(|i| {
                let (x, y) = ((i % n) as f64 - 11.5, (i / n) as f64 - 11.5);
                -std::f64::consts::PI * (x * x + y * y) * pitch * pitch / (wl * f)
            })
            .collect();
        let s = system(
            true_phase
                .iter()
                .map(|&p| p.rem_euclid(TAU) as f32)
                .collect(),
        );
        let process = Process {
            material: resin(),
            levels: None,
            base_m: 0.0,
            unwrap: true,
        };
        let fab = fabricate(&s, &process).unwrap();
        let full = fab.full_wave_m;
        let h = &fab.layers[0].heights_m;
        assert!(fab.layers[0].levels.is_none());
        // Taller than one 2π (the wrapped relief never is), lowest pixel below one 2π.
        let (lo, hi) = h
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(lo >= 0.0 && lo < full && hi > 2.0 * full, "{lo} {hi}");
        // The surface is the lens itself: heights follow the true phase up to one constant.
        let offset = h[0] / full * TAU - true_phase[0];
        for (&hh, &p) in h.iter().zip(&true_phase) {
            assert!((hh / full * TAU - p - offset).abs() < 1e-4, "{hh}");
        }
        // And congruent: the same phase modulo 2π as the wrapped relief.
        let wrapped = fabricate(
            &s,
            &Process {
                unwrap: false,
                ..process.clone()
            },
        )
        .unwrap();
        for (a, b) in h.iter().zip(&wrapped.layers[0].heights_m) {
            let k = (a - b) / full;
            assert!((k - k.round()).abs() < 1e-5, "{a} {b}");
        }
        // With 8 levels: whole steps of h₂π/8, still congruent to the 8-level wrapped relief.
        let q = fabricate(
            &s,
            &Process {
                levels: Some(8),
                ..process.clone()
            },
        )
        .unwrap();
        let w = fabricate(
            &s,
            &Process {
                levels: Some(8),
                unwrap: false,
                ..process
            },
        )
        .unwrap();
        for (a, b) in q.layers[0].heights_m.iter().zip(&w.layers[0].heights_m) {
            let steps = a / (full / 8.0);
            assert!((steps - steps.round()).abs() < 1e-9);
            let k = (a - b) / full;
            assert!((k - k.round()).abs() < 1e-9, "{a} {b}");
        }
    }

    #[test]
    fn impossible_processes_are_refused() {
        let s = system(vec![0.0; 4]);
        let ok = Process {
            material: resin(),
            levels: None,
            base_m: 0.0,
            unwrap: false,
        };
        let err = |p: Process| fabricate(&s, &p).unwrap_err().to_string();
        assert!(
            err(Process {
                levels: Some(1),
                ..ok.clone()
            })
            .contains("--levels")
        );
        assert!(
            err(Process {
                base_m: -1e-3,
                ..ok.clone()
            })
            .contains("--base")
        );
        let mut air = ok.clone();
        air.material.n = 1.0;
        assert!(err(air).contains("n > 1"));
        let mut amp = s.clone();
        amp.layers[0].modulation = Modulation::AmplitudePhase;
        amp.layers[0].amplitude = Some(vec![0.5; 4]);
        let e = fabricate(&amp, &ok).unwrap_err().to_string();
        assert!(e.contains("layer0") && e.contains("amplitude"), "{e}");
    }
}
