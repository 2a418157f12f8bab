//! Propagation onto output windows against the FFT floor.
//!
//! For each N, a complex64 batch of 8 fields (8 µm pitch, 632.8 nm) is propagated
//!
//! - `sas`: 1 m with the scalable angular spectrum onto its natural window (N samples at
//!   `λz/(2N·d)`): three FFT passes over the 2N-padded plane, as in the reference algorithm;
//! - `sas-zoom`: the same onto a window of N samples at 0.73× that pitch, off axis (chirp-z
//!   transforms instead of plain FFTs in the last step);
//! - `bl-asm-window`: 5 mm with the band-limited angular spectrum onto a camera of N×N
//!   samples at 1.5× the input pitch, a quarter of the field off axis;
//!
//! and the bare forward + inverse 2-D FFT pair at 2N (the floor) is timed. Criterion reports
//! fields/s; a table at the end prints each against the floor (ratios of medians).
//! `optics/benches/window_baseline.py` times the reference SAS in NumPy on the same workload.
//!
//! Run: `cargo bench -p photonflow-optics --bench window`; `PHOTONFLOW_BENCH_SIZES=256,512`
//! limits the sizes.

use std::hint::black_box;

#[path = "support/estimates.rs"]
mod estimates;

use criterion::{BenchmarkId, Criterion, Throughput};
use estimates::{criterion_dir, estimate, rate};
use num_complex::Complex;
use photonflow_optics::fft::Fft2;
use photonflow_optics::propagate::Window;
use photonflow_optics::{Grid, Method, Planner, Propagation, Wave};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 8;
const GROUP: &str = "window-b8-c64";
const PITCH: f64 = 8e-6;
const WAVELENGTH: f64 = 632.8e-9;

fn sizes() -> Vec<usize> {
    estimates::sizes(&[256, 512, 1024])
}

fn data(len: usize) -> Vec<Complex<f32>> {
    (0..len)
        .map(|i| Complex::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()))
        .collect()
}

/// The three window geometries of the module docs for N samples.
fn cases(n: usize) -> [(&'static str, Method, f64, Window); 3] {
    let natural = WAVELENGTH * 1.0 / (2.0 * n as f64 * PITCH);
    let square = |pitch: f64| Grid::square(n, pitch).unwrap();
    let quarter = n as f64 * PITCH / 4.0;
    [
        ("sas", Method::Sas, 1.0, Window::on_axis(square(natural))),
        (
            "sas-zoom",
            Method::Sas,
            1.0,
            Window::new(square(0.73 * natural), (quarter, 0.0)).unwrap(),
        ),
        (
            "bl-asm-window",
            Method::BandLimitedAsm,
            5e-3,
            Window::new(square(1.5 * PITCH), (quarter, quarter)).unwrap(),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let planner = Planner::<f32>::new();
    let wave = Wave::vacuum(WAVELENGTH).unwrap();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(BATCH as u64));
    for n in sizes() {
        group.sample_size(if n >= 1024 { 10 } else { 20 });
        let grid = Grid::square(n, PITCH).unwrap();
        let input = data(BATCH * n * n);
        for (name, method, z, window) in cases(n) {
            let p = Propagation::new(z).with_method(method).with_check(false);
            let plan = planner.plan_window(&grid, wave, &p, &window).unwrap();
            let mut output = vec![Complex::default(); BATCH * window.grid.len()];
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| plan.propagate(black_box(&input), &mut output).unwrap())
            });
        }
        let fft = Fft2::new(planner.fft_cache(), 2 * n, 2 * n);
        let mut buf = data(BATCH * 4 * n * n);
        group.bench_function(BenchmarkId::new("fft-floor", 2 * n), |b| {
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
        "\nBatch of {BATCH} complex64 fields onto output windows; fields/s as median / best; \
         floor = forward + inverse 2-D FFT at 2N; ratios of medians"
    );
    println!(
        "| N | sas | sas-zoom | bl-asm-window | floor 2N | sas / floor | sas-zoom / floor | bl-asm-window / floor |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rate = |t| rate(BATCH, t);
    for n in sizes() {
        let (Some(sas), Some(zoom), Some(asm), Some(floor)) = (
            estimate(&dir, GROUP, "sas", n),
            estimate(&dir, GROUP, "sas-zoom", n),
            estimate(&dir, GROUP, "bl-asm-window", n),
            estimate(&dir, GROUP, "fft-floor", 2 * n),
        ) else {
            continue;
        };
        println!(
            "| {n} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            rate(sas),
            rate(zoom),
            rate(asm),
            rate(floor),
            sas.0 / floor.0,
            zoom.0 / floor.0,
            asm.0 / floor.0
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    summary();
}
