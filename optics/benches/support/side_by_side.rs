//! Timing and the NumPy baseline run of the benches that print a side-by-side table.

use std::process::Command;
use std::time::Instant;

/// Median and best seconds of `reps` runs of `f` after one warm-up.
pub fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
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

/// Repetitions: `$PHOTONFLOW_BENCH_REPS`, default 5.
pub fn reps() -> usize {
    std::env::var("PHOTONFLOW_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// The JSON report of `benches/<script>` run with `args` by `$PHOTONFLOW_PYTHON` (or
/// `python3`), or `None` with a note when it does not run (no NumPy).
pub fn baseline(script: &str, args: &[String]) -> Option<serde_json::Value> {
    let python = std::env::var("PHOTONFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let path = format!("{}/benches/{script}", env!("CARGO_MANIFEST_DIR"));
    match Command::new(&python).arg(&path).args(args).output() {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).ok(),
        _ => {
            eprintln!("note: {python} with NumPy did not run {path}; no baseline column");
            None
        }
    }
}
