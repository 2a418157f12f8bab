//! One evaluation of the Fourier ptychography misfit and its gradient beside the same in NumPy.
//!
//! For each camera size N, a 15×15 LED array (2 mm apart, 60 mm below; 225 images, synthetic
//! NA 0.41) images an object on a grid 4× finer (4N × 4N) through a 0.1-NA objective at
//! 500 nm, 2 µm pixels in sample space: the misfit with its gradient (what every
//! reconstruction iteration costs; `FpmPlan::misfit` of a plan made once) on all cores and
//! in a one-thread pool, and
//! `fpm_baseline.py` (the same model as a NumPy FPM code writes it, one thread; run with
//! `$PHOTONFLOW_PYTHON` or `python3`, skipped with a note when neither has NumPy). The misfit
//! and the gradient's norm must agree before any time is printed. The table gives seconds per
//! evaluation (median of `PHOTONFLOW_BENCH_REPS`, default 5, after a warm-up) and NumPy's
//! time over ours.
//!
//! Run: `cargo bench -p photonflow-optics --bench fpm`; `PHOTONFLOW_BENCH_SIZES=64` limits the
//! sizes.

// only `sizes` of the shared support is used here (no criterion results to read)
#[allow(dead_code)]
#[path = "support/estimates.rs"]
mod estimates;
#[path = "support/side_by_side.rs"]
mod side_by_side;

use num_complex::Complex;
use photonflow_optics::Grid;
use photonflow_optics::fpm::{Fpm, Leds};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LEDS: usize = 15;

/// The analytic test objects of `fpm_baseline.py`, `[4N, 4N]`: (guess, truth).
fn objects(big: usize) -> (Vec<Complex<f64>>, Vec<Complex<f64>>) {
    let at = |f: &dyn Fn(f64, f64) -> Complex<f64>| -> Vec<Complex<f64>> {
        (0..big * big)
            .map(|k| f((k % big) as f64, (k / big) as f64))
            .collect()
    };
    (
        at(&|i, j| {
            Complex::from_polar(
                1.0 + 0.2 * (0.05 * i + 0.03 * j).cos(),
                0.5 * (0.04 * i - 0.07 * j).sin(),
            )
        }),
        at(&|i, j| {
            Complex::from_polar(
                1.0 + 0.3 * (0.11 * i - 0.05 * j).cos(),
                0.8 * (0.09 * i + 0.06 * j).sin(),
            )
        }),
    )
}

fn main() {
    let sizes = estimates::sizes(&[64, 128]);
    let reps = side_by_side::reps();
    let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let numpy = side_by_side::baseline(
        "fpm_baseline.py",
        &[
            "--sizes".into(),
            list.join(","),
            "--leds".into(),
            LEDS.to_string(),
            "--reps".into(),
            reps.to_string(),
        ],
    );
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    println!(
        "\n{:>5} {:>9} {:>7} {:>13} {:>13} {:>12} {:>12} {:>12}",
        "N", "object", "images", "ours s", "ours 1 thr s", "numpy s", "÷ ours", "÷ ours 1 thr"
    );
    for n in sizes {
        let fpm = Fpm {
            camera: Grid::square(n, 2e-6).unwrap(),
            wavelength: 0.5e-6,
            na: 0.1,
            upsample: 4,
            illuminations: Leds::array(LEDS, LEDS, 2e-3, 60e-3)
                .directions([0.0, 0.0])
                .unwrap(),
            aberrations: vec![],
            patterns: vec![],
            brightness: vec![],
        };
        let big = 4 * n;
        let (guess, truth) = objects(big);
        let plan = fpm.plan().unwrap();
        let images = fpm.recorded(&plan.images(&truth).unwrap()).unwrap();
        let mut grad = vec![Complex::default(); big * big];
        let mut value = 0.0;
        let mut run = || value = plan.misfit(&guess, &images, Some(&mut grad)).unwrap();
        let (all, _) = side_by_side::time(reps, &mut run);
        let (single, _) = one.install(|| side_by_side::time(reps, &mut run));
        let row = numpy.as_ref().map(|j| &j["sizes"][n.to_string()]);
        if let Some(row) = row {
            // The same work: the misfit and the gradient agree.
            let norm: f64 = grad.iter().map(|g| g.norm_sqr()).sum();
            let (m, g) = (
                row["misfit"].as_f64().unwrap_or(f64::NAN),
                row["gradient"].as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (value / m - 1.0).abs() < 1e-9 && (norm / g - 1.0).abs() < 1e-9,
                "N = {n}: misfit {value} vs {m}, gradient norm² {norm} vs {g}"
            );
        }
        let np = row.and_then(|r| r["median"].as_f64());
        let ratio = |ours: f64| np.map_or("–".into(), |t| format!("{:.2}", t / ours));
        println!(
            "{n:>5} {:>9} {:>7} {all:>13.4} {single:>13.4} {:>12} {:>12} {:>12}",
            format!("{big}²"),
            LEDS * LEDS,
            np.map_or("–".into(), |t| format!("{t:.4}")),
            ratio(all),
            ratio(single)
        );
    }
}
