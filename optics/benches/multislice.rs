//! The multislice sweep through a thick sample beside the same sweep in NumPy.
//!
//! For each N, a plane wave (complex64) crosses a glass bead (n = 1.46, a quarter of the window
//! across) in water (1.333) in 64 slices of 0.1 µm on N × N samples of 0.1 µm at 532 nm,
//! padded 2× — a `Multislice<f32>` plan run on all cores and in a one-thread pool, and
//! `multislice_baseline.py` (the same padded sweep as a NumPy user writes it, one thread; run
//! with `$PHOTONFLOW_PYTHON` or `python3`, skipped with a note when neither has NumPy). The
//! two exit fields must agree (power and centre sample) before any time is printed. The table
//! gives seconds per sweep (median of `PHOTONFLOW_BENCH_REPS`, default 5, after a warm-up)
//! and NumPy's time over ours.
//!
//! Run: `cargo bench -p photonflow-optics --bench multislice`; `PHOTONFLOW_BENCH_SIZES=128,256`
//! limits the sizes.

use std::process::Command;
use std::time::Instant;

// only `sizes` of the shared support is used here (no criterion results to read)
#[allow(dead_code)]
#[path = "support/estimates.rs"]
mod estimates;

use num_complex::Complex;
use photonflow_optics::propagate::multislice::{Multislice, Volume};
use photonflow_optics::{Grid, Planner, Propagation, Wave};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SLICES: usize = 64;
const PITCH: f64 = 0.1e-6;
const DZ: f64 = 0.1e-6;

/// Median and best seconds of `reps` runs of `f` after one warm-up.
fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0])
}

/// The NumPy baseline's report, or `None` with a note.
fn baseline(sizes: &[usize], reps: usize) -> Option<serde_json::Value> {
    let python = std::env::var("PHOTONFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/multislice_baseline.py"
    );
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let out = Command::new(&python)
        .args([script, "--sizes", &sizes.join(","), "--slices"])
        .arg(SLICES.to_string())
        .args(["--reps", &reps.to_string()])
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).ok(),
        _ => {
            eprintln!("note: {python} with NumPy did not run {script}; no baseline column");
            None
        }
    }
}

fn main() {
    let sizes = estimates::sizes(&[128, 256, 512]);
    let reps: usize = std::env::var("PHOTONFLOW_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let numpy = baseline(&sizes, reps);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let wave = Wave::new(532e-9, 1.333).unwrap();
    println!(
        "\n{:>5} {:>7} {:>13} {:>13} {:>12} {:>12} {:>12}",
        "N", "slices", "ours s", "ours 1 thr s", "numpy s", "÷ ours", "÷ ours 1 thr"
    );
    for n in sizes {
        let grid = Grid::square(n, PITCH).unwrap();
        let radius = n as f64 * PITCH / 4.0;
        let centre = SLICES as f64 * DZ / 2.0;
        let volume = Volume::from_fn(grid, DZ, SLICES, |x, y, z| {
            let r2 = x * x + y * y + (z - centre).powi(2);
            Complex::from(if r2.sqrt() < radius { 1.46 } else { 1.333 })
        })
        .unwrap();
        let planner = Planner::<f32>::new();
        let plan = Multislice::new(&planner, &volume, wave, &Propagation::new(0.0)).unwrap();
        let mut field = vec![Complex::new(1.0f32, 0.0); n * n];
        let fresh = field.clone();
        let mut run = || {
            field.copy_from_slice(&fresh);
            plan.propagate_in_place(&mut field).unwrap();
        };
        let (all, _) = time(reps, &mut run);
        let (single, _) = one.install(|| time(reps, &mut run));
        let row = numpy.as_ref().map(|j| &j["sizes"][n.to_string()]);
        if let Some(row) = row {
            // The same work: the exit fields agree.
            let power: f64 = field.iter().map(|v| f64::from(v.norm_sqr())).sum();
            let c = field[(n / 2) * n + n / 2];
            let theirs = row["power"].as_f64().unwrap_or(f64::NAN);
            let tc = Complex::new(
                row["centre"][0].as_f64().unwrap_or(f64::NAN),
                row["centre"][1].as_f64().unwrap_or(f64::NAN),
            );
            let ours = Complex::new(f64::from(c.re), f64::from(c.im));
            assert!(
                (power / theirs - 1.0).abs() < 1e-3
                    && (ours - tc).norm() < 1e-3 * tc.norm().max(1.0),
                "N = {n}: the exit fields differ (power {power} vs {theirs}, centre {ours} vs {tc})"
            );
        }
        let np = row.and_then(|r| r["median"].as_f64());
        let ratio = |ours: f64| np.map_or("–".into(), |t| format!("{:.2}", t / ours));
        println!(
            "{n:>5} {SLICES:>7} {all:>13.4} {single:>13.4} {:>12} {:>12} {:>12}",
            np.map_or("–".into(), |t| format!("{t:.4}")),
            ratio(all),
            ratio(single)
        );
    }
}
