//! Export time and file size of every fabrication target, as `photonflow export` runs it
//! (write, read back and check, sha256 for the manifest), for two designs:
//!
//! * `lin2018`: 5 phase layers of 200 × 200 pixels at 0.4 mm, λ = 0.75 mm (the D2NN of Lin et
//!   al. 2018), 8 levels of the THz resin on a 1 mm base. The masks are smoothed random phases
//!   (correlation length ≈ 3 pixels), which is what trained D2NN layers look like.
//! * `lens2000`: one 2000 × 2000 mask at 2 µm, an 8-level Fresnel lens (f = 50 mm, λ =
//!   632.8 nm, fused silica on a 0.5 mm base): rings down to 8 pixels per 2π at the edge — a
//!   large lithography mask, for the GDS, OASIS and STL writers.
//!
//! Each export runs once to warm up, then `PHOTONFLOW_BENCH_REPS` times (default 5); the table
//! gives the median and best time, the bytes written, and the ratio of the median to the `npy`
//! target's on the same design (writing and hashing the raw arrays: the I/O floor).
//!
//! Run: `cargo bench -p photonflow-compiler --bench export` (`--features hdf5` adds the HDF5
//! target).

use std::f64::consts::{PI, TAU};
use std::path::Path;
use std::time::Instant;

use photonflow_compiler::export::{Source, Target, export};
use photonflow_compiler::{Fabrication, Process, fabricate, material};
use photonflow_optics::OpticalSystem;
use photonflow_optics::system::Layer;

fn system(
    name: &str,
    n: usize,
    pitch: f64,
    wavelength: f64,
    layers: Vec<Vec<f32>>,
) -> OpticalSystem {
    let mut system = OpticalSystem::new(name, wavelength, n, n, pitch).expect("a valid grid");
    system.layers = layers
        .into_iter()
        .enumerate()
        .map(|(k, phase)| Layer::phase_only(format!("layer{k}"), phase, 0.03))
        .collect();
    system
}

/// A smoothed random phase: uniform noise, box-blurred twice over 3 pixels, scaled to a few
/// turns and wrapped.
fn smooth_phase(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = photonflow_optics::rng::Rng::new(seed);
    let mut v: Vec<f64> = (0..n * n).map(|_| rng.uniform()).collect();
    for _ in 0..2 {
        let src = v.clone();
        for r in 0..n {
            for c in 0..n {
                let mut sum = 0.0;
                for (dr, dc) in (-1i64..=1).flat_map(|a| (-1i64..=1).map(move |b| (a, b))) {
                    let rr = (r as i64 + dr).clamp(0, n as i64 - 1) as usize;
                    let cc = (c as i64 + dc).clamp(0, n as i64 - 1) as usize;
                    sum += src[rr * n + cc];
                }
                v[r * n + c] = sum / 9.0;
            }
        }
    }
    v.iter().map(|x| ((x * 12.0 * TAU) % TAU) as f32).collect()
}

fn fresnel_lens(n: usize, pitch: f64, wavelength: f64, focal: f64) -> Vec<f32> {
    let half = n as f64 / 2.0;
    (0..n * n)
        .map(|i| {
            let (r, c) = ((i / n) as f64 + 0.5 - half, (i % n) as f64 + 0.5 - half);
            let rho2 = (r * r + c * c) * pitch * pitch;
            (-PI * rho2 / (wavelength * focal)).rem_euclid(TAU) as f32
        })
        .collect()
}

struct Case {
    name: &'static str,
    system: OpticalSystem,
    fabrication: Fabrication,
    targets: &'static [Target],
}

fn case(
    name: &'static str,
    system: OpticalSystem,
    material: &str,
    base_m: f64,
    targets: &'static [Target],
) -> Case {
    let material = material::resolve(material)
        .and_then(|m| material::for_design(&m, system.wavelength_m, 1.0))
        .expect("built-in material");
    let process = Process {
        material,
        levels: Some(8),
        base_m,
        unwrap: false,
    };
    let fabrication = fabricate(&system, &process).expect("the design fabricates");
    Case {
        name,
        system,
        fabrication,
        targets,
    }
}

/// Median and best seconds of `reps` exports, and the bytes of the last one.
fn time(case: &Case, target: Target, dir: &Path, reps: usize) -> (f64, f64, u64) {
    let source = Source {
        model: Path::new("bench"),
        sha256: String::new(),
        simulation: None,
        gds: Default::default(),
        slm: Default::default(),
        stl_unit: Default::default(),
    };
    let out = dir.join(format!("{}-{target}", case.name));
    let run = || {
        let t = Instant::now();
        let m = export(&case.system, Some(&case.fabrication), target, &out, &source)
            .unwrap_or_else(|e| panic!("{} {target}: {e}", case.name));
        (
            t.elapsed().as_secs_f64(),
            m.files.iter().map(|f| f.bytes).sum::<u64>(),
        )
    };
    run();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..reps {
        let (t, b) = run();
        times.push(t);
        bytes = b;
    }
    times.sort_by(f64::total_cmp);
    std::fs::remove_dir_all(&out).ok();
    (times[times.len() / 2], times[0], bytes)
}

fn main() {
    let reps: usize = std::env::var("PHOTONFLOW_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let lin2018 = system(
        "lin2018",
        200,
        0.4e-3,
        0.75e-3,
        (0..5).map(|k| smooth_phase(200, k + 1)).collect(),
    );
    let lens = system(
        "lens2000",
        2000,
        2e-6,
        632.8e-9,
        vec![fresnel_lens(2000, 2e-6, 632.8e-9, 0.05)],
    );
    let cases = [
        case(
            "lin2018",
            lin2018,
            "thz-resin",
            1e-3,
            &[
                Target::Npy,
                Target::Height,
                Target::Stl,
                Target::Gds,
                Target::Oasis,
                Target::Slm,
                Target::Hdf5,
            ],
        ),
        case(
            "lens2000",
            lens,
            "fused-silica",
            0.5e-3,
            &[Target::Npy, Target::Gds, Target::Oasis, Target::Stl],
        ),
    ];
    println!(
        "\n{:<10} {:<7} {:>12} {:>12} {:>12} {:>9}",
        "design", "target", "median s", "best s", "MB written", "÷ npy"
    );
    for case in &cases {
        let mut floor = None;
        for &target in case.targets {
            if target.check_available().is_err() {
                continue; // hdf5 without the feature
            }
            let (median, best, bytes) = time(case, target, dir.path(), reps);
            let floor = *floor.get_or_insert(median);
            println!(
                "{:<10} {:<7} {:>12.4} {:>12.4} {:>12.3} {:>9.2}",
                case.name,
                target.name(),
                median,
                best,
                bytes as f64 / 1e6,
                median / floor
            );
        }
    }
}
