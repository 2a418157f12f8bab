//! A partially coherent exposure beside the same algorithm in NumPy.
//!
//! Workload: a 40 µm square aperture on an N×N grid of 1 µm pitch, lit by an incoherent disc
//! source of NA 0.03 at 530 nm (Köhler illumination: ≈ 200 plane waves, the directions
//! `DiscSource::rule` picks for the aperture), its intensity 1 mm behind through the
//! band-limited angular spectrum on the 2N-padded plane, complex64. photonflow runs
//! `Exposure::run` on one thread and on every core; `coherence_baseline.py` runs the same modes
//! through the same transfer function in NumPy (batches of 16 modes, numpy's FFT, one thread),
//! side by side: rounds alternate the two, so a slow stretch of the machine falls on both, and
//! each ratio is the median over the rounds of NumPy's time over ours in the same round. The
//! two intensities are compared (max difference over the peak).
//!
//! Run: `cargo bench -p photonflow-optics --bench coherence`; `PHOTONFLOW_BENCH_SIZES=256`
//! limits the sizes, `PHOTONFLOW_PYTHON` names the Python with NumPy (default `python3`).

// only `sizes` of the shared support is used here (no criterion results to read)
#[allow(dead_code)]
#[path = "support/estimates.rs"]
mod estimates;

use std::process::Command;
use std::time::Instant;

use num_complex::Complex;
use photonflow_optics::coherence::{Coherence, DiscSource, Exposure, Illumination, Line, Profile};
use photonflow_optics::io::npy::{self, NpyData};
use photonflow_optics::{Field, Grid, Planner, Propagation, Wave};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PITCH: f64 = 1e-6;
const WAVELENGTH: f64 = 530e-9;
const DISTANCE: f64 = 1e-3;
const HALF_WIDTH: f64 = 20e-6;
const NA: f64 = 0.03;
const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken
    let python = std::env::var("PHOTONFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/coherence_baseline.py");
    let scratch = std::env::temp_dir().join(format!("pf-coherence-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    let wave = Wave::vacuum(WAVELENGTH).unwrap();
    let disc = DiscSource::new(NA);
    let illumination = Illumination {
        spectrum: Profile::Lines(vec![Line {
            wavelength: WAVELENGTH,
            weight: 1.0,
        }]),
        lines: None,
        coherence: Coherence::Disc(disc),
    };
    let exposure = Exposure::new(illumination, Propagation::new(DISTANCE));
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let threads = rayon::current_num_threads();
    println!(
        "\nPartially coherent exposure: 40 µm square, disc source NA {NA}, 530 nm, bl-asm over 1 mm \
         (2N padding), complex64; seconds as medians; × = NumPy / photonflow, median over {ROUNDS} \
         alternating rounds"
    );
    println!(
        "| N | modes | photonflow, 1 thread | photonflow, {threads} threads | NumPy (same algorithm) | × 1 thread | × {threads} threads | max difference / peak |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in estimates::sizes(&[256, 512]) {
        let grid = Grid::square(n, PITCH).unwrap();
        let mask = Field::<f32>::from_fn(grid, WAVELENGTH, |x, y| {
            Complex::from(f64::from(x.abs() < HALF_WIDTH && y.abs() < HALF_WIDTH))
        })
        .unwrap();
        let (ax, ay) = mask.support(1e-6);
        let rule = disc.rule(wave, 2.0 * ax.hypot(ay)).unwrap();
        let workload = serde_json::json!({
            "n": n, "pitch": PITCH, "wavelength": WAVELENGTH, "distance": DISTANCE,
            "half_width": HALF_WIDTH,
            "directions": rule.iter().map(|(sx, sy, w)| [sx, sy, w]).collect::<Vec<_>>(),
        });
        let workload_path = scratch.join(format!("workload-{n}.json"));
        std::fs::write(&workload_path, workload.to_string()).unwrap();
        let planner = Planner::<f32>::new();
        let run = || {
            exposure
                .run(&planner, mask.data(), grid, &|_, _| {})
                .unwrap()
        };
        let image = run(); // plans and warms the caches
        let modes = image.lines[0].modes;
        assert_eq!(modes, rule.len());
        let time = |f: &dyn Fn()| {
            let mut v = Vec::new();
            let start = Instant::now();
            while v.len() < 3 || (start.elapsed().as_secs_f64() < 1.0 && v.len() < 20) {
                let t = Instant::now();
                f();
                v.push(t.elapsed().as_secs_f64());
            }
            median(v)
        };
        let out_path = scratch.join(format!("numpy-{n}.npy"));
        let (mut ours1, mut ours_all, mut numpy, mut r1, mut r_all) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut difference = f64::NAN;
        for _ in 0..ROUNDS {
            let py = Command::new(&python)
                .arg(script)
                .arg(&workload_path)
                .arg(&out_path)
                .arg("1")
                .output();
            let t1 = time(&|| {
                one.install(|| {
                    run();
                })
            });
            let ta = time(&|| {
                run();
            });
            ours1.push(t1);
            ours_all.push(ta);
            let Ok(py) = py else {
                continue;
            };
            if !py.status.success() {
                eprintln!(
                    "the NumPy baseline failed ({python}): {}",
                    String::from_utf8_lossy(&py.stderr)
                );
                continue;
            }
            let report: serde_json::Value =
                serde_json::from_slice(py.stdout.trim_ascii()).expect("the baseline's JSON");
            let t = report["seconds"][0].as_f64().unwrap();
            numpy.push(t);
            r1.push(t / t1);
            r_all.push(t / ta);
            if let Ok(back) = npy::read_npy(&out_path)
                && let NpyData::F64(reference) = back.data
            {
                let peak = reference.iter().cloned().fold(0.0, f64::max);
                difference = image
                    .data
                    .iter()
                    .zip(&reference)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
                    / peak;
            }
        }
        let cell = |v: &Vec<f64>, unit: &str| {
            if v.is_empty() {
                "—".to_string()
            } else {
                format!("{:.3}{unit}", median(v.clone()))
            }
        };
        println!(
            "| {n} | {modes} | {} | {} | {} | {} | {} | {difference:.1e} |",
            cell(&ours1, " s"),
            cell(&ours_all, " s"),
            cell(&numpy, " s"),
            cell(&r1, ""),
            cell(&r_all, ""),
        );
    }
    std::fs::remove_dir_all(&scratch).ok();
}
