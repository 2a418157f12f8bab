//! Propagation throughput against the FFT floor.
//!
//! For each N, a complex64 batch of 8 fields is propagated with the band-limited angular
//! spectrum (a) with the default 2× linear padding and (b) circularly (no padding), and the
//! bare forward + inverse 2-D FFT pair (the floor) is timed at the transform sizes those use
//! (2N and N). Criterion reports fields/s for each; at the end a table prints the ratios
//! propagation / floor read from criterion's own estimates (medians) (a ratio below 1 means the pruned
//! engine beats the full padded FFT pair).
//!
//! Run: `cargo bench -p photonflow-optics --bench propagate` (`-- 512` to filter one size).
//! `PHOTONFLOW_BENCH_SIZES=200,400` limits the sizes.

use std::hint::black_box;

#[path = "support/estimates.rs"]
mod estimates;

use criterion::{BenchmarkId, Criterion, Throughput};
use estimates::{criterion_dir, estimate, rate};
use num_complex::Complex;
use photonflow_optics::fft::Fft2;
use photonflow_optics::{Grid, Method, Padding, Planner, Propagation, Wave};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 8;
const GROUP: &str = "propagate-b8-c64";

fn sizes() -> Vec<usize> {
    estimates::sizes(&[200, 256, 400, 512, 1024, 2048])
}

fn data(len: usize) -> Vec<Complex<f32>> {
    (0..len)
        .map(|i| Complex::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()))
        .collect()
}

fn bench(c: &mut Criterion) {
    let planner = Planner::<f32>::new();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(BATCH as u64));
    for n in sizes() {
        let samples = if n >= 1024 { 10 } else { 20 };
        group.sample_size(samples);
        let grid = Grid::square(n, 8e-6).unwrap();
        for (name, padding) in [
            ("linear", Padding::Linear(2.0)),
            ("circular", Padding::Circular),
        ] {
            let p = Propagation::new(5e-3)
                .with_method(Method::BandLimitedAsm)
                .with_padding(padding)
                .with_check(false);
            let plan = planner.plan(&grid, wave, &p).unwrap();
            let mut buf = data(BATCH * n * n);
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| plan.propagate_in_place(black_box(&mut buf)).unwrap())
            });
        }
    }
    let floors: std::collections::BTreeSet<usize> =
        sizes().iter().flat_map(|&n| [n, 2 * n]).collect();
    for m in floors {
        group.sample_size(if m >= 1024 { 10 } else { 20 });
        let fft = Fft2::new(planner.fft_cache(), m, m);
        let mut buf = data(BATCH * m * m);
        group.bench_function(BenchmarkId::new("fft-floor", m), |b| {
            b.iter(|| {
                fft.forward(black_box(&mut buf));
                fft.inverse(black_box(&mut buf));
            })
        });
    }
    group.finish();
}

fn summary() {
    let dir = criterion_dir();
    println!(
        "\nBatch of {BATCH} complex64 fields, band-limited ASM; fields/s as median / best; \
         floor = forward + inverse 2-D FFT at the transform size; ratios of medians"
    );
    println!(
        "| N | linear 2× | floor 2N | linear / floor(2N) | circular | floor N | circular / floor(N) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let rate = |t| rate(BATCH, t);
    for n in sizes() {
        let (Some(lin), Some(circ), Some(f1), Some(f2)) = (
            estimate(&dir, GROUP, "linear", n),
            estimate(&dir, GROUP, "circular", n),
            estimate(&dir, GROUP, "fft-floor", n),
            estimate(&dir, GROUP, "fft-floor", 2 * n),
        ) else {
            continue;
        };
        println!(
            "| {n} | {} | {} | {:.2} | {} | {} | {:.2} |",
            rate(lin),
            rate(f2),
            lin.0 / f2.0,
            rate(circ),
            rate(f1),
            circ.0 / f1.0
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    summary();
}
