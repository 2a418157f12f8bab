//! Timing of one diffractive layer (phase_modulate + propagate, bl-asm, 2× linear padding),
//! batch 32, on the Flex CPU backend, against the bare optics kernel, for each N given
//! (default 200 256 512). The PyTorch side of the same layer:
//! `python3 optics/benches/asm_baseline.py --layer --sizes 200,256,512`.
//!
//! `cargo run --release -p photonflow-d2nn --example timing [-- N...]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Distribution, Tensor};
use num_complex::Complex;
use photonflow_d2nn::{intensity, phase_modulate, propagate, region_energies};
use photonflow_optics::{Grid, Planner, Propagation, Wave};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const B: usize = 32;
const REPS: usize = 15;

/// Minimum and median of `REPS` runs of `f` (after one warm-up run).
fn time(mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut t: Vec<Duration> = (0..REPS)
        .map(|_| {
            let c = Instant::now();
            f();
            c.elapsed()
        })
        .collect();
    t.sort();
    (t[0], t[REPS / 2])
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![200, 256, 512]
    } else {
        sizes
    };
    for n in sizes {
        layer(n);
        println!();
    }
}

fn layer(n: usize) {
    let grid = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let plan = Planner::new()
        .plan(&grid, wave, &Propagation::new(2e-3))
        .unwrap();
    println!(
        "n = {n}, B = {B}, {} padded to {:?}, {} rayon threads, min / median of {REPS}",
        plan.method(),
        plan.padded_shape(),
        rayon::current_num_threads()
    );
    let report = |name: &str, (min, med): (Duration, Duration), base: Option<Duration>| {
        let ratio = base.map_or(String::new(), |b| {
            format!("  = {:.2}× kernel", min.as_secs_f64() / b.as_secs_f64())
        });
        println!(
            "{name:<44} {:7.2} ms / {:7.2} ms  ({:6.1} µs per sample){ratio}",
            min.as_secs_f64() * 1e3,
            med.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e6 / B as f64
        );
    };

    // The bare optics kernel: in place on a plain buffer.
    let mut buf = vec![Complex::<f32>::new(1.0, 0.5); B * n * n];
    let kernel = time(|| plan.propagate_in_place(black_box(&mut buf)).unwrap());
    report("optics kernel propagate_in_place", kernel, None);
    let base = Some(kernel.0);

    // Forward through burn (Flex, no autodiff); the input batch stays alive, so the first op
    // copies it.
    let device = Device::flex();
    let u = Tensor::<4>::random([B, n, n, 2], Distribution::Normal(0.0, 1.0), &device);
    let phi = Tensor::<2>::random([n, n], Distribution::Uniform(-3.0, 3.0), &device);
    let fwd = time(|| {
        let out = propagate(phase_modulate(u.clone(), phi.clone()), &plan);
        black_box(out);
    });
    report("layer forward (Flex)", fwd, base);

    // Forward + backward on the autodiff device, loss Σ w·out (linear glue).
    let ad = Device::flex().autodiff();
    let u = Tensor::<4>::random([B, n, n, 2], Distribution::Normal(0.0, 1.0), &ad);
    let w = Tensor::<4>::random([B, n, n, 2], Distribution::Normal(0.0, 1.0), &ad);
    let phi = Tensor::<2>::random([n, n], Distribution::Uniform(-3.0, 3.0), &ad).require_grad();
    let fwd_ad = time(|| {
        let out = propagate(phase_modulate(u.clone(), phi.clone()), &plan);
        black_box(out);
    });
    report("layer forward (Flex + autodiff, phi tracked)", fwd_ad, base);
    let both = time(|| {
        let out = propagate(phase_modulate(u.clone(), phi.clone()), &plan);
        let grads = (out * w.clone()).sum().backward();
        black_box(phi.grad(&grads).unwrap());
    });
    report("layer forward + backward (incl. glue)", both, base);
    let x = Tensor::<4>::random([B, n, n, 2], Distribution::Normal(0.0, 1.0), &ad).require_grad();
    let glue = time(|| {
        let grads = (x.clone() * w.clone()).sum().backward();
        black_box(x.grad(&grads).unwrap());
    });
    report("loss glue alone (Σ w·x, forward + backward)", glue, base);
    // The detector head: |u|² and 10 region energies (plain burn matmul), forward + backward.
    let weights = Tensor::<3>::random([10, n, n], Distribution::Uniform(0.0, 1.0), &ad);
    let head = time(|| {
        let e = region_energies(intensity(x.clone()), weights.clone());
        let grads = e.sum().backward();
        black_box(x.grad(&grads).unwrap());
    });
    report("intensity + 10 region energies, fwd + bwd", head, base);
    let net = both.0.saturating_sub(glue.0);
    println!(
        "layer forward + backward net of glue: {:.2} ms = {:.2}× kernel",
        net.as_secs_f64() * 1e3,
        net.as_secs_f64() / kernel.0.as_secs_f64()
    );
    println!(
        "n = {n}: forward + backward {:.1} samples/s (best), {:.1} (median)",
        B as f64 / both.0.as_secs_f64(),
        B as f64 / both.1.as_secs_f64()
    );
}
