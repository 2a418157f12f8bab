//! An optical-tweezer array for a real SLM: designed for the SLM as it is (finite pixels, a
//! nonlinear gray-level response), against a design for an ideal one shown on the same SLM.
//!
//! ```sh
//! cargo run --release --example holography [-- OUT_DIR]
//! ```
//!
//! The SLM: 512 × 512 pixels of 8 µm, fill factor 0.85, and an uncalibrated liquid-crystal
//! response `φ(g) = 2π·(g/255)^1.4` (a measured table would come from `photonflow rig slm`);
//! 532 nm light, a 200 mm lens, the traps 8 × 8 over 2.5 mm, off the zero order.
//!
//! 1. *Ideal design*: weighted GS for point pixels and a linear SLM, rounded to 8-bit gray
//!    levels as if gray `g` showed `2πg/256`, then shown on the real SLM.
//! 2. *Aware design*: the same algorithm through the pixels' envelope and zero order, with the
//!    real response in its last iterations.
//!
//! Each is simulated on the real SLM: the aware design's traps reach uniformity 0.9999, the
//! ideal one's 0.90. Writes both bitmaps (8-bit PNG, read back and checked) under `OUT_DIR`
//! (default `out/`).

use std::f64::consts::TAU;
use std::path::PathBuf;

use num_complex::Complex;
use photonflow::compiler::export::SlmSettings;
use photonflow::compiler::export::slm::{SlmPanel, write_panel};
use photonflow::optics::holography::{
    Algorithm, Beam, Geometry, Options, Setup, Spot, Target, design,
};
use photonflow::optics::lut::{GrayMap, Lut};
use photonflow::optics::{Grid, Planner, Wave};

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "out".into()));
    std::fs::create_dir_all(&out)?;
    let (n, pitch, fill) = (512, 8e-6, 0.85);
    let slm = Grid::square(n, pitch)?;
    let wave = Wave::vacuum(532e-9)?;
    let geometry = Geometry::Fourier { focal: 0.2 };
    let planner = Planner::<f32>::new();
    let beam = Beam::Gaussian { waist: 1.5e-3 };
    let ideal = Setup::new(&planner, slm, wave, geometry, 2.0, beam.clone())?;
    let real = Setup::new(&planner, slm, wave, geometry, 2.0, beam)?.with_fill_factor(fill)?;

    // The SLM's response, as a measured table would give it.
    let csv: String = (0..256)
        .map(|g| format!("{g},{}\n", TAU * (f64::from(g) / 255.0).powf(1.4)))
        .collect();
    let lut = Lut::parse(&csv).map_err(anyhow::Error::msg)?;
    let response = GrayMap::table(&lut, 8).map_err(anyhow::Error::msg)?;
    let linear = GrayMap::linear(256);

    // 8 × 8 traps, 320 µm apart, centred at (1.6 mm, 1.2 mm).
    let spots: Vec<Spot> = (0..64)
        .map(|k| {
            let (i, j) = ((k % 8) as f64 - 3.5, (k / 8) as f64 - 3.5);
            Spot::new(1.6e-3 + 320e-6 * i, 1.2e-3 + 320e-6 * j)
        })
        .collect();
    let options = |map: &GrayMap| Options {
        algorithm: Algorithm::Wgs,
        iterations: 100,
        fix_phase_after: Some(50),
        quantise: Some(map.clone()),
        quantised_iterations: 10,
        ..Options::default()
    };

    // 1. Designed for an ideal SLM, shown on the real one.
    let target = Target::spots(&ideal, &spots)?;
    let naive = design(&ideal, &target, &options(&linear), |_| {})?;
    let naive_gray = naive.gray.clone().expect("quantised");
    let shown: Vec<Complex<f32>> = naive_gray
        .iter()
        .map(|&g| {
            let (phase, a) = response
                .shows(g)
                .expect("every 8-bit level is in the table");
            Complex::from_polar(a as f32, phase as f32)
        })
        .collect();
    let intensity: Vec<f64> = real
        .field(&shown)?
        .iter()
        .map(|z| f64::from(z.norm_sqr()))
        .collect();
    let real_target = Target::spots(&real, &spots)?;
    let naive_on_real = real_target.quality(&intensity)?;

    // 2. Designed for the real SLM.
    let aware = design(&real, &real_target, &options(&response), |_| {})?;

    println!("8×8 traps on a 512² SLM (fill factor {fill}, response 2π(g/255)^1.4):");
    for (name, q) in [
        ("designed for an ideal SLM, on the real one", naive_on_real),
        ("  (on the ideal SLM it was designed for)", naive.quality),
        ("designed for the real SLM", aware.quality),
    ] {
        println!(
            "  {name:<45} uniformity {:.4}, efficiency {:.1} %",
            q.uniformity.unwrap_or(f64::NAN),
            100.0 * q.efficiency
        );
    }

    // The bitmaps, as an SLM driver takes them.
    let panel = SlmPanel {
        width: n,
        height: n,
        pitch_m: pitch,
    };
    let table = SlmSettings {
        lut: Some((lut, "2π(g/255)^1.4".into())),
        ..SlmSettings::default()
    };
    let (max_err, _) = write_panel(
        &out.join("traps_aware_slm.png"),
        &panel,
        aware.gray.as_ref().expect("quantised"),
        &aware.phase,
        &table,
    )?;
    write_panel(
        &out.join("traps_ideal_slm.png"),
        &panel,
        &naive_gray,
        &naive.phase,
        &SlmSettings::default(),
    )?;
    println!(
        "wrote traps_aware_slm.png (phases within {max_err:.4} rad of the design through the \
         table) and traps_ideal_slm.png in {}",
        out.display()
    );
    Ok(())
}
