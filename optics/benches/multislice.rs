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

// only `sizes` of the shared support is used here (no criterion results to read)
#[allow(dead_code)]
#[path = "support/estimates.rs"]
mod estimates;
#[path = "support/side_by_side.rs"]
mod side_by_side;

use num_complex::Complex;
use photonflow_optics::propagate::multislice::{Multislice, Volume};
use photonflow_optics::{Grid, Planner, Propagation, Wave};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SLICES: usize = 64;
const PITCH: f64 = 0.1e-6;
const DZ: f64 = 0.1e-6;

fn main() {
    let sizes = estimates::sizes(&[128, 256, 512]);
    let reps = side_by_side::reps();
    let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let numpy = side_by_side::baseline(
        "multislice_baseline.py",
        &[
            "--sizes".into(),
            list.join(","),
            "--slices".into(),
            SLICES.to_string(),
            "--reps".into(),
            reps.to_string(),
        ],
    );
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
        let (all, _) = side_by_side::time(reps, &mut run);
        let (single, _) = one.install(|| side_by_side::time(reps, &mut run));
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
