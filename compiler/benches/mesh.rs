//! Decomposition time of Haar-random unitaries into Clements and Reck meshes at N = 64, 256,
//! 1024 (`PHOTONFLOW_BENCH_SIZES` overrides), on one thread and on every core
//! (`PHOTONFLOW_BENCH_THREADS`, default `1,all`: from N = 512 a second thread takes the work the
//! nulling does not need at once — far row and column operations, part of each step's
//! triangle), with the reconstruction error, side by side with the same O(N³)
//! algorithm in NumPy (`mesh_baseline.py`, one thread, run with `$PHOTONFLOW_PYTHON` or
//! `python3`; skipped with a note when neither has NumPy).
//!
//! Each configuration (mesh, threads) runs once to warm up; then, `PHOTONFLOW_BENCH_REPS` times
//! (default 3), NumPy decomposes the same size once and each configuration of ours runs as
//! often as fits in a third of a second (at least once): the two alternate, so that a slower
//! stretch of a busy machine falls on both. The table gives our median and best seconds,
//! NumPy's median, and the median over the rounds of NumPy's time over our median in the same
//! round.
//! `PHOTONFLOW_BENCH_METHODS` (`clements`, `reck` or both, comma-separated) picks the meshes.
//!
//! Run: `cargo bench -p photonflow-compiler --bench mesh`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use photonflow_compiler::mesh::{Method, decompose, haar_unitary};
use photonflow_optics::rng::Rng;

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// The NumPy baseline, running in its own process (`mesh_baseline.py --serve`): one
/// decomposition per request, so that its runs alternate with ours.
struct Baseline {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Baseline {
    /// Starts the baseline; `None`, with a note, where Python with NumPy is missing.
    fn start() -> Option<Self> {
        let python = std::env::var("PHOTONFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/mesh_baseline.py");
        let started = Command::new(&python)
            .args([script, "--serve"])
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut baseline = started.ok().and_then(|mut child| {
            let input = child.stdin.take()?;
            let output = BufReader::new(child.stdout.take()?);
            Some(Self {
                child,
                input,
                output,
            })
        });
        // A first small run checks that NumPy is there.
        if baseline.as_mut().and_then(|b| b.seconds(2)).is_none() {
            eprintln!("note: {python} with NumPy did not run mesh_baseline.py; no baseline column");
            return None;
        }
        baseline
    }

    /// Seconds of one NumPy decomposition of the size-`n` unitary.
    fn seconds(&mut self, n: usize) -> Option<f64> {
        writeln!(self.input, "{n}").ok()?;
        self.input.flush().ok()?;
        let mut line = String::new();
        self.output.read_line(&mut line).ok()?;
        let row: serde_json::Value = serde_json::from_str(&line).ok()?;
        row["seconds"].as_f64()
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    let mut baseline = picked(Method::Clements).then(Baseline::start).flatten();
    println!(
        "\n{:>6} {:<9} {:>7} {:>12} {:>12} {:>10} {:>12} {:>10}",
        "N", "method", "threads", "median s", "best s", "error", "NumPy s", "× faster"
    );
    for &n in &sizes {
        let u = haar_unitary(n, &mut Rng::new(n as u64));
        let configs: Vec<(Method, usize, rayon::ThreadPool)> = all
            .into_iter()
            .filter(|&m| picked(m))
            .flat_map(|m| threads.iter().map(move |&t| (m, t)))
            .map(|(m, t)| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build();
                (m, t, pool.expect("a thread pool"))
            })
            .collect();
        let run = |(method, _, pool): &(Method, usize, rayon::ThreadPool)| {
            pool.install(|| decompose(&u, *method, 1e-8).expect("a unitary"))
        };
        // A warm-up each, then `reps` rounds: NumPy once, then every configuration of ours as
        // often as fits in a third of a second (at least once, at most 300 times).
        let meshes: Vec<_> = configs.iter().map(run).collect();
        let mut numpy = Vec::new();
        let mut times = vec![Vec::new(); configs.len()];
        let mut ratios = vec![Vec::new(); configs.len()];
        for _ in 0..reps {
            let np = baseline.as_mut().and_then(|b| b.seconds(n));
            numpy.extend(np);
            for (i, config) in configs.iter().enumerate() {
                let (start, mut round) = (Instant::now(), Vec::new());
                while round.is_empty()
                    || (round.len() < 300 && start.elapsed().as_secs_f64() < 1.0 / 3.0)
                {
                    let t = Instant::now();
                    run(config);
                    round.push(t.elapsed().as_secs_f64());
                }
                if let Some(np) = np.filter(|_| config.0 == Method::Clements) {
                    ratios[i].push(np / median(round.clone()));
                }
                times[i].extend(round);
            }
        }
        for (((method, t, _), mesh), (times, ratios)) in configs
            .iter()
            .zip(&meshes)
            .zip(times.into_iter().zip(ratios))
        {
            let best = times.iter().copied().fold(f64::INFINITY, f64::min);
            let error = mesh.matrix().relative_error(&u);
            let (np, ratio) = match ratios.is_empty() {
                true => ("–".into(), "–".into()),
                false => (
                    format!("{:.4}", median(numpy.clone())),
                    format!("{:.1}", median(ratios)),
                ),
            };
            println!(
                "{n:>6} {:<9} {t:>7} {:>12.6} {best:>12.6} {error:>10.1e} {np:>12} {ratio:>10}",
                method.name(),
                median(times)
            );
        }
    }
}
