//! Decomposition time of Haar-random unitaries into Clements and Reck meshes at N = 64, 256,
//! 1024 (`PHOTONFLOW_BENCH_SIZES` overrides), on one thread and on every core
//! (`PHOTONFLOW_BENCH_THREADS`, default `1,all`: from N = 512 a second thread takes the work the
//! nulling does not need at once — far row and column operations, part of each step's
//! triangle), with the reconstruction error, side by side with the same O(N³)
//! algorithm in NumPy (`mesh_baseline.py`, one thread, run with `$PHOTONFLOW_PYTHON` or
//! `python3`; skipped with a note when neither has NumPy).
//!
//! Each size runs once to warm up, then `PHOTONFLOW_BENCH_REPS` times (default 3), and ours
//! again until a second has passed (at most 1000 times: the small sizes take milliseconds, and a
//! median of many is steadier on a busy machine); the table gives median and best seconds and
//! the ratio of NumPy's median to ours.
//! `PHOTONFLOW_BENCH_METHODS` (`clements`, `reck` or both, comma-separated) picks the meshes.
//!
//! Run: `cargo bench -p photonflow-compiler --bench mesh`.

use std::process::Command;
use std::time::Instant;

use photonflow_compiler::mesh::{Method, decompose, haar_unitary};
use photonflow_optics::rng::Rng;

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// NumPy's median seconds per size, from the baseline script.
fn numpy(sizes: &[usize], reps: usize) -> Vec<Option<f64>> {
    let python = std::env::var("PHOTONFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/mesh_baseline.py");
    let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let out = Command::new(&python)
        .args([
            script,
            "--sizes",
            &list.join(","),
            "--reps",
            &reps.to_string(),
        ])
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        eprintln!("note: {python} with NumPy did not run mesh_baseline.py; no baseline column");
        return vec![None; sizes.len()];
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    sizes
        .iter()
        .map(|&n| {
            rows.iter()
                .find(|r| r["n"] == n)
                .and_then(|r| r["median_s"].as_f64())
        })
        .collect()
}

fn main() {
    let sizes = env_list("PHOTONFLOW_BENCH_SIZES", &[64, 256, 1024]);
    let reps = env_list("PHOTONFLOW_BENCH_REPS", &[3])[0].max(1);
    let methods: Vec<String> = std::env::var("PHOTONFLOW_BENCH_METHODS")
        .unwrap_or_else(|_| "clements,reck".into())
        .split(',')
        .map(|m| m.trim().to_lowercase())
        .collect();
    let all = [Method::Clements, Method::Reck];
    if let Some(bad) = methods.iter().find(|m| !all.iter().any(|a| a.name() == *m)) {
        eprintln!("PHOTONFLOW_BENCH_METHODS: unknown mesh {bad:?}; use clements, reck or both");
        std::process::exit(2);
    }
    let picked = |method: Method| methods.iter().any(|m| m == method.name());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads: Vec<usize> = std::env::var("PHOTONFLOW_BENCH_THREADS")
        .unwrap_or_else(|_| "1,all".into())
        .split(',')
        .map(|t| match t.trim() {
            "all" => Some(cores),
            t => t.parse().ok().filter(|&n| n > 0),
        })
        .collect::<Option<_>>()
        .unwrap_or_else(|| {
            eprintln!("PHOTONFLOW_BENCH_THREADS: a comma-separated list of counts or `all`");
            std::process::exit(2);
        });
    threads.dedup();
    // The NumPy baseline is Clements; it is not run when only Reck is timed.
    let baseline = if picked(Method::Clements) {
        numpy(&sizes, reps)
    } else {
        vec![None; sizes.len()]
    };
    println!(
        "\n{:>6} {:<9} {:>7} {:>12} {:>12} {:>10} {:>12} {:>10}",
        "N", "method", "threads", "median s", "best s", "error", "NumPy s", "× faster"
    );
    for (&n, numpy_s) in sizes.iter().zip(baseline) {
        let u = haar_unitary(n, &mut Rng::new(n as u64));
        for (method, &t) in all
            .into_iter()
            .filter(|&m| picked(m))
            .flat_map(|m| threads.iter().map(move |t| (m, t)))
        {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .expect("a thread pool");
            let run = || pool.install(|| decompose(&u, method, 1e-8).expect("a unitary"));
            let mut times = Vec::new();
            let mut mesh = run();
            let start = Instant::now();
            while times.len() < reps || (times.len() < 1000 && start.elapsed().as_secs_f64() < 1.0)
            {
                let t = Instant::now();
                mesh = run();
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let error = mesh.matrix().relative_error(&u);
            let (np, ratio) = match (method, numpy_s) {
                (Method::Clements, Some(s)) => (format!("{s:.4}"), format!("{:.1}", s / median)),
                _ => ("–".into(), "–".into()),
            };
            println!(
                "{n:>6} {:<9} {t:>7} {median:>12.6} {:>12.6} {error:>10.1e} {np:>12} {ratio:>10}",
                method.name(),
                times[0]
            );
        }
    }
}
