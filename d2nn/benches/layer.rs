//! One diffractive layer — phase mask and band-limited ASM propagation with 2× linear padding —
//! on a batch of 32 complex f32 fields on the Flex CPU backend: forward, and forward + backward
//! of `Σ w·out` with the phase mask tracked (the input field is data, as in training), against
//! the bare optics forward kernel on the same batch. At N = 200 also the composite path (the
//! burn-operation composition that GPU backends run) on the CPU, to show its cost there.
//! Criterion times each; a table of time per sample and ratios to the kernel follows (medians),
//! then the peak memory of a 5-layer network's forward + backward at N = 200, measured by a
//! counting allocator, against the bytes of the fields the backward pass must keep.
//!
//! Run: `cargo bench -p photonflow-d2nn --bench layer` (`PHOTONFLOW_BENCH_SIZES=200` limits
//! the sizes). The same layer in PyTorch:
//! `python3 optics/benches/asm_baseline.py --layer --sizes 200,256,512`.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "../../optics/benches/support/estimates.rs"]
mod estimates;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use estimates::{criterion_dir, estimate, rate};
use mimalloc::MiMalloc;
use num_complex::Complex;
use photonflow_d2nn::{composite, intensity, phase_modulate, propagate, region_energies};
use photonflow_optics::propagate::Plan;
use photonflow_optics::{Grid, Planner, Propagation, Wave};

/// mimalloc, counting the bytes live and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const B: usize = 32;
const GROUP: &str = "layer-b32-c64";
/// The size at which the composite path is timed too.
const COMPOSITE_N: usize = 200;

fn sizes() -> Vec<usize> {
    estimates::sizes(&[200, 256, 512])
}

/// Band-limited ASM over 2 mm, 8 µm pitch, 632.8 nm, 2× linear padding.
fn plan(n: usize) -> Plan<f32> {
    let grid = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    Planner::new()
        .plan(&grid, wave, &Propagation::new(2e-3))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(B as u64));
    group.sample_size(10);
    for n in sizes() {
        let plan = plan(n);
        // Every iteration propagates a fresh copy of the same batch (the copy is not timed), so
        // the kernel always sees the data the layer sees, not a field propagated many times.
        let data = vec![Complex::<f32>::new(1.0, 0.5); B * n * n];
        group.bench_function(BenchmarkId::new("kernel", n), |b| {
            b.iter_batched_ref(
                || data.clone(),
                |buf| plan.propagate_in_place(black_box(buf)).unwrap(),
                BatchSize::LargeInput,
            )
        });
        drop(data);
        // Forward through burn (Flex, no autodiff); the input batch stays alive, so the first op
        // copies it.
        let device = Device::flex();
        let u = Tensor::<4>::random([B, n, n, 2], Distribution::Normal(0.0, 1.0), &device);
        let phi = Tensor::<2>::random([n, n], Distribution::Uniform(-3.0, 3.0), &device);
        group.bench_function(BenchmarkId::new("forward", n), |b| {
            b.iter(|| black_box(propagate(phase_modulate(u.clone(), phi.clone()), &plan)))
        });
        // Forward + backward on the autodiff device, loss Σ w·out.
        let ad = Device::flex().autodiff();
        let u = Tensor::<4>::random([B, n, n, 2], Distribution::Normal(0.0, 1.0), &ad);
        let w = Tensor::<4>::random([B, n, n, 2], Distribution::Normal(0.0, 1.0), &ad);
        let phi = Tensor::<2>::random([n, n], Distribution::Uniform(-3.0, 3.0), &ad).require_grad();
        let both = |fused: bool| {
            let out = if fused {
                propagate(phase_modulate(u.clone(), phi.clone()), &plan)
            } else {
                composite::propagate(composite::phase_modulate(u.clone(), phi.clone()), &plan)
            };
            let grads = (out * w.clone()).sum().backward();
            black_box(phi.grad(&grads).unwrap());
        };
        group.bench_function(BenchmarkId::new("forward-backward", n), |b| {
            b.iter(|| both(true))
        });
        if n == COMPOSITE_N {
            group.bench_function(BenchmarkId::new("composite-forward-backward", n), |b| {
                b.iter(|| both(false))
            });
        }
    }
    group.finish();
}

fn summary() {
    let dir = criterion_dir();
    println!(
        "\nOne layer (phase mask + bl-asm, 2× padding), batch {B} complex f32, Flex CPU, \
         {} rayon threads; µs per sample as median / best; ratios of medians to the kernel",
        rayon::current_num_threads()
    );
    println!(
        "| N | path | forward | forward + backward | fwd+bwd / kernel | samples/s (fwd+bwd) |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    let per_sample = |(median, best): (f64, f64)| {
        format!(
            "{:.0} / {:.0}",
            median * 1e-3 / B as f64,
            best * 1e-3 / B as f64
        )
    };
    let rate = |t| rate(B, t);
    for n in sizes() {
        let get = |id| estimate(&dir, GROUP, id, n);
        let (Some(kernel), Some(fwd), Some(both)) =
            (get("kernel"), get("forward"), get("forward-backward"))
        else {
            continue;
        };
        println!(
            "| {n} | optics kernel, forward only | {} | | 1 | |",
            per_sample(kernel)
        );
        println!(
            "| {n} | fused (Flex) | {} | {} | {:.2} | {} |",
            per_sample(fwd),
            per_sample(both),
            both.0 / kernel.0,
            rate(both)
        );
        if let Some(comp) = get("composite-forward-backward") {
            println!(
                "| {n} | composite (GPU path) on the CPU | | {} | {:.1} | {} |",
                per_sample(comp),
                comp.0 / kernel.0,
                rate(comp)
            );
        }
    }
}

/// Peak memory of forward + backward through a 5-layer phase-only network (propagate, then
/// five times mask and propagate, then `|u|²` and 10 detector regions) at N = 200 with 2×
/// padding, batch 32, against the fields autodiff must keep: the input of each of the five
/// modulations and the input of `|u|²`.
fn memory() {
    const N: usize = 200;
    const LAYERS: usize = 5;
    let plan = plan(N);
    let ad = Device::flex().autodiff();
    let input = Tensor::<4>::random([B, N, N, 2], Distribution::Normal(0.0, 1.0), &ad);
    let weights = Tensor::<3>::random([10, N, N], Distribution::Uniform(0.0, 1.0), &ad);
    let phases: Vec<Tensor<2>> = (0..LAYERS)
        .map(|_| Tensor::random([N, N], Distribution::Uniform(-3.0, 3.0), &ad).require_grad())
        .collect();
    let step = || {
        let mut u = propagate(input.clone(), &plan);
        for phi in &phases {
            u = propagate(phase_modulate(u, phi.clone()), &plan);
        }
        let grads = region_energies(intensity(u), weights.clone())
            .sum()
            .backward();
        let g: Vec<Tensor<2>> = phases.iter().map(|p| p.grad(&grads).unwrap()).collect();
        black_box(g);
    };
    step(); // warm-up: plans, buffer pools, rayon
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    step();
    let peak = PEAK.load(Ordering::SeqCst) - before;
    let field = N * N * size_of::<Complex<f32>>();
    let kept = (LAYERS + 1) * field;
    println!(
        "\nPeak memory, {LAYERS}-layer phase-only network, N = {N}, 2× padding, batch {B}, \
         forward + backward: {:.2} MB per sample ({:.1} MB in all) above what was live before; \
         fields autodiff must keep: {} × {:.0} kB = {:.2} MB per sample; ratio {:.2}",
        peak as f64 / B as f64 / 1e6,
        peak as f64 / 1e6,
        LAYERS + 1,
        field as f64 / 1e3,
        kept as f64 / 1e6,
        peak as f64 / (B * kept) as f64
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    summary();
    memory();
}
