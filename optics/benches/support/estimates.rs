//! What the optics and d2nn benches share (through `#[path]`): the sizes to run, and reading
//! criterion's results back for their summary tables.

use std::path::{Path, PathBuf};

/// Criterion's median and best per-iteration time (ns) of benchmark `group/id/n`, from its
/// output directory. The median is robust to the interruptions of a shared machine; the best is what
/// the code can do. The Python baseline reports both the same way.
pub fn estimate(dir: &Path, group: &str, id: &str, n: usize) -> Option<(f64, f64)> {
    let run = dir.join(group).join(id).join(n.to_string()).join("new");
    let read = |f: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(run.join(f)).ok()?).ok()
    };
    let median = read("estimates.json")?["median"]["point_estimate"].as_f64()?;
    let sample = read("sample.json")?;
    let (iters, times) = (sample["iters"].as_array()?, sample["times"].as_array()?);
    let best = iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
        .fold(f64::INFINITY, f64::min);
    Some((median, best))
}

/// Where criterion writes: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
/// `criterion` folder of the target directory the bench binary runs from.
pub fn criterion_dir() -> PathBuf {
    if let Ok(home) = std::env::var("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    // target/release/deps/<bench>-<hash> → target/criterion
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("criterion"))
        .unwrap_or_default()
}

/// The sizes in `$PHOTONFLOW_BENCH_SIZES` (comma-separated), else `default`.
pub fn sizes(default: &[usize]) -> Vec<usize> {
    std::env::var("PHOTONFLOW_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// Items per second of `batch` items per iteration, as "median / best" from
/// [`estimate`]'s times.
pub fn rate(batch: usize, (median, best): (f64, f64)) -> String {
    format!(
        "{:.1} / {:.1}",
        batch as f64 / (median * 1e-9),
        batch as f64 / (best * 1e-9)
    )
}
