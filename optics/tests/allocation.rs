//! Steady-state propagation allocates nothing: plans, transfer functions and buffers are
//! reused. A counting global allocator (this test binary only) checks it for every method,
//! batch-parallel and field-parallel, forward and adjoint, and for every method onto an output
//! window.
//!
//! The calls are made from inside rayon's pool. A call from outside it hands rayon a job
//! through its global injector queue, which allocates one 63-slot block per 63 such jobs —
//! rayon's amortised cost, not ours.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use num_complex::Complex;
use photonflow_optics::propagate::Window;
use photonflow_optics::{Grid, Method, Padding, Planner, Propagation, Wave};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn steady_state_propagation_does_not_allocate() {
    let planner = Planner::<f32>::new();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let grid = Grid::new(96, 80, 4e-6, 4e-6).unwrap();
    let threads = rayon::current_num_threads();
    for method in Method::ALL
        .into_iter()
        .filter(|m| *m != Method::Auto && !m.window_only())
    {
        for padding in [Padding::Linear(2.0), Padding::Circular] {
            let p = Propagation::new(2e-3)
                .with_method(method)
                .with_padding(padding)
                .with_check(false);
            let plan = planner.plan(&grid, wave, &p).unwrap();
            // One field (row/column passes in parallel) and a batch (fields in parallel).
            for batch in [1, 2 * threads.max(1) + 1] {
                let mut data = vec![Complex::new(1.0f32, 0.5); batch * grid.len()];
                // Warm up: the pools grow to as many buffers as workers use at once.
                for _ in 0..4 {
                    plan.propagate_in_place(&mut data).unwrap();
                    plan.adjoint_in_place(&mut data).unwrap();
                }
                let count = rayon::scope(|_| {
                    let before = ALLOCATIONS.load(Ordering::SeqCst);
                    for _ in 0..3 {
                        plan.propagate_in_place(&mut data).unwrap();
                        plan.adjoint_in_place(&mut data).unwrap();
                    }
                    ALLOCATIONS.load(Ordering::SeqCst) - before
                });
                assert_eq!(
                    count, 0,
                    "{method} {padding:?} batch {batch}: {count} allocations in steady state"
                );
            }
        }
    }
    window_propagation_does_not_allocate();
}

/// The same for window plans; called by the test above, since the allocation counter is
/// global and tests run in parallel.
fn window_propagation_does_not_allocate() {
    let planner = Planner::<f32>::new();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let grid = Grid::new(48, 40, 4e-6, 4e-6).unwrap();
    let window = Window::new(Grid::new(30, 36, 7e-6, 6e-6).unwrap(), (0.1e-3, 0.0)).unwrap();
    for method in [
        Method::BandLimitedAsm,
        Method::Sas,
        Method::FresnelSingleFft,
        Method::Fraunhofer,
    ] {
        let p = Propagation::new(20e-3)
            .with_method(method)
            .with_check(false);
        let plan = planner.plan_window(&grid, wave, &p, &window).unwrap();
        for batch in [1, 3] {
            let input = vec![Complex::new(1.0f32, 0.5); batch * grid.len()];
            let mut output = vec![Complex::<f32>::default(); batch * window.grid.len()];
            let mut back = input.clone();
            for _ in 0..4 {
                plan.propagate(&input, &mut output).unwrap();
                plan.adjoint(&output, &mut back).unwrap();
            }
            let count = rayon::scope(|_| {
                let before = ALLOCATIONS.load(Ordering::SeqCst);
                for _ in 0..3 {
                    plan.propagate(&input, &mut output).unwrap();
                    plan.adjoint(&output, &mut back).unwrap();
                }
                ALLOCATIONS.load(Ordering::SeqCst) - before
            });
            assert_eq!(
                count, 0,
                "{method} onto a window, batch {batch}: {count} allocations in steady state"
            );
        }
    }
}
