//! How many photons does an optical classifier need? A photon-budget sweep on a simulated rig.
//!
//! ```sh
//! cargo run --release --example rig_photons [-- OUT_DIR]
//! ```
//!
//! A four-class optical system images its 32² input onto a detector plane with four regions,
//! one per quadrant. Each test pattern is a bright spot in one quadrant on a dim, random
//! background, and its class is the quadrant. The simulated rig (`photonflow-hardware`) shows
//! each pattern on an 8-bit SLM and reads it with a 12-bit camera that has shot, dark and read
//! noise. The light source is swept from 3 to 10⁶ photons per frame (for a full input). The
//! example prints and plots, at each budget, the accuracy (from chance, 25 %, up to the
//! noiseless answer), the mean confidence (the model's softmax, which stays high however noisy
//! the frame), and the mean measurement certainty (the probability that the frame's noise leaves
//! the class as it is, which falls with the light). It writes `OUT_DIR/rig_photons.png`
//! (default `out/`).

use std::path::PathBuf;

use photonflow::hardware::{Readout, Rig, RigConfig, RigPrediction, SimRig};
use photonflow::optics::OpticalSystem;
use photonflow::optics::rng::Rng;
use photonflow::optics::system::RegionSpec;
use photonflow::plot::{self, LinePlot, Series};

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "out".into()));
    std::fs::create_dir_all(&out)?;
    let pitch = 8e-6;
    let mut system = OpticalSystem::new("quadrants", 632.8e-9, 64, 64, pitch)?;
    (system.input.nx, system.input.ny, system.input.distance_m) = (32, 32, 20e-6);
    system.detector.temperature = 0.1;
    let q = 12.0 * pitch;
    for (k, centre) in [(-q, -q), (q, -q), (-q, q), (q, q)].into_iter().enumerate() {
        let region = RegionSpec::new(format!("q{k}"), centre, 16.0 * pitch, 16.0 * pitch);
        system.detector.regions.push(region);
        system.detector.classes.push(format!("q{k}"));
    }
    // 400 patterns: a spot (σ = 2 px) in a random quadrant on a background of up to 0.3.
    let mut rng = Rng::new(7);
    let patterns: Vec<(usize, Vec<f32>)> = (0..400)
        .map(|_| {
            let quadrant = rng.below(4);
            let (r0, c0) = (16.0 * (quadrant / 2) as f64, 16.0 * (quadrant % 2) as f64);
            let (cr, cc) = (r0 + rng.range(4.0, 12.0), c0 + rng.range(4.0, 12.0));
            let pixels = (0..32 * 32)
                .map(|i| {
                    let (r, c) = ((i / 32) as f64, (i % 32) as f64);
                    let spot = (-((r - cr).powi(2) + (c - cc).powi(2)) / 8.0).exp();
                    (spot + 0.3 * rng.uniform()).min(1.0) as f32
                })
                .collect();
            (quadrant, pixels)
        })
        .collect();
    println!("photons/frame  accuracy  mean confidence  mean certainty");
    let (mut accuracy, mut confidence, mut certainty) = (Vec::new(), Vec::new(), Vec::new());
    for exponent in 1..=12 {
        let photons = 10f64.powf(0.5 * f64::from(exponent));
        let mut config = RigConfig::default();
        config.source.photons_per_s = photons / config.camera.exposure;
        let mut rig = SimRig::new(&system, config)?;
        let readout = Readout::new(&system, &rig.describe()?, None, None, None)?;
        let images: Vec<Vec<f32>> = patterns.iter().map(|(_, p)| p.clone()).collect();
        let answers = readout.classify(&mut rig, &images, 1)?;
        let right = answers
            .iter()
            .zip(&patterns)
            .filter(|(a, (q, _))| a.class == *q)
            .count() as f64
            / patterns.len() as f64;
        let mean = |f: &dyn Fn(&RigPrediction) -> f64| {
            answers.iter().map(f).sum::<f64>() / answers.len() as f64
        };
        let sure = mean(&|a| a.confidences[a.class]);
        let certain = mean(&|a| a.certainty.unwrap_or(f64::NAN));
        println!(
            "{photons:>13.0}  {:>7.1} %  {sure:>15.3}  {certain:>14.3}",
            100.0 * right
        );
        accuracy.push((photons.log10(), 100.0 * right));
        confidence.push((photons.log10(), 100.0 * sure));
        certainty.push((photons.log10(), 100.0 * certain));
    }
    let path = out.join("rig_photons.png");
    plot::write_line_png(
        &path,
        &LinePlot {
            title: "A four-class optical classifier on a noisy camera",
            x_label: "log₁₀ photons per frame (full input)",
            y_label: "%",
            series: vec![
                Series {
                    name: "accuracy",
                    points: &accuracy,
                },
                Series {
                    name: "mean confidence (the model's softmax)",
                    points: &confidence,
                },
                Series {
                    name: "mean measurement certainty",
                    points: &certainty,
                },
            ],
            log_y: false,
        },
        900,
        560,
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
