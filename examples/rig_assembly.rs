//! Assembling a diffractive network on a bench, a layer at a time, and finding where each
//! layer really went.
//!
//! ```sh
//! cargo run --release --example rig_assembly
//! ```
//!
//! Four phase layers of 64² random pixels (8 µm, 632.8 nm, 2 mm apart) are mounted on a
//! simulated bench (`photonflow-hardware`): each lands off its place by a drawn lateral offset
//! (up to a pixel and a half, fractions included) and axial offset (up to 150 µm), and has a
//! fabrication phase error of 0.05 rad per pixel that no model knows; the camera has shot, dark
//! and read noise. After each layer is mounted, `identify` fits the bench's digital twin to
//! the frames of 12 random probes, starting from where the layers before were found. The
//! example prints, step by step, the residual with the layers as designed and as found, and
//! at the end each layer's offset found against the one drawn.

use photonflow::hardware::config::Offset;
use photonflow::hardware::identify::{IdentifyOptions, identify};
use photonflow::hardware::{Placement, RigConfig, SimRig};
use photonflow::optics::OpticalSystem;
use photonflow::optics::rng::Rng;
use photonflow::optics::system::{Layer, RegionSpec};
use photonflow::optics::units::{Length, format_length};

fn main() -> anyhow::Result<()> {
    let pitch = 8e-6;
    let layers = 4;
    let mut system = OpticalSystem::new("assembly", 632.8e-9, 64, 64, pitch)?;
    (system.input.nx, system.input.ny, system.input.distance_m) = (32, 32, 2e-3);
    let q = 12.0 * pitch;
    for (k, centre) in [(-q, -q), (q, -q), (-q, q), (q, q)].into_iter().enumerate() {
        let region = RegionSpec::new(format!("q{k}"), centre, 16.0 * pitch, 16.0 * pitch);
        system.detector.regions.push(region);
        system.detector.classes.push(format!("q{k}"));
    }
    let mut rng = Rng::new(9);
    for l in 0..layers {
        let phase = (0..64 * 64)
            .map(|_| rng.range(0.0, std::f64::consts::TAU) as f32)
            .collect();
        system
            .layers
            .push(Layer::phase_only(format!("layer{l}"), phase, 2e-3));
    }
    let drawn: Vec<Placement> = (0..layers)
        .map(|_| Placement {
            dx_px: (rng.range(-1.5, 1.5) * 10.0).round() / 10.0,
            dy_px: (rng.range(-1.5, 1.5) * 10.0).round() / 10.0,
            dz_m: rng.range(-150e-6, 150e-6),
        })
        .collect();
    let mut bench = RigConfig {
        seed: 3,
        ..RigConfig::default()
    };
    bench.layers.phase_error = 0.05;
    bench.layers.offsets = drawn
        .iter()
        .map(|p| Offset {
            x: Length(p.dx_px * pitch),
            y: Length(p.dy_px * pitch),
            z: Length(p.dz_m),
        })
        .collect();
    let probes: Vec<Vec<u16>> = (0..12)
        .map(|_| {
            let blocks: Vec<u16> = (0..64).map(|_| rng.below(2) as u16 * 255).collect();
            (0..32 * 32)
                .map(|i| blocks[(i / 32 / 4) * 8 + (i % 32) / 4])
                .collect()
        })
        .collect();

    println!("mounted  residual as designed  as found  twin evaluations");
    let mut found: Vec<Placement> = Vec::new();
    for mounted in 1..=layers {
        bench.layers.mounted = Some(mounted);
        let mut rig = SimRig::new(&system, bench.clone())?;
        let mut twin = RigConfig::default();
        twin.layers.mounted = Some(mounted);
        let mut start = found.clone();
        start.push(Placement::default());
        let options = IdentifyOptions {
            axial_range_m: 4.0 * pitch * pitch / system.wavelength_m,
            start,
            ..IdentifyOptions::default()
        };
        let black = f64::from(bench.camera.black_level);
        let step = identify(
            &mut rig,
            &system,
            &twin,
            None,
            &probes,
            black,
            2,
            &options,
            &mut |_| {},
        )?;
        println!(
            "{mounted:>7}  {:>19.1} %  {:>6.1} %  {:>16}",
            100.0 * step.residual_design,
            100.0 * step.residual,
            step.evaluations
        );
        found = step.placements();
    }
    println!("\nlayer   drawn x, y (px), z          found x, y (px), z");
    for (l, (d, f)) in drawn.iter().zip(&found).enumerate() {
        println!(
            "{l:>5}   {:+.2}, {:+.2}, {:>10}     {:+.3}, {:+.3}, {:>10}",
            d.dx_px,
            d.dy_px,
            format_length(d.dz_m),
            f.dx_px,
            f.dy_px,
            format_length(f.dz_m)
        );
    }
    Ok(())
}
