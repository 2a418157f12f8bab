//! Two-dimensional phase unwrapping, for reliefs without 2π steps.
//!
//! A wrapped phase map `ψ ∈ [0, 2π)` becomes `u = ψ + 2π·k` with an integer `k` per pixel,
//! chosen so that neighbouring pixels differ by less than π wherever the map allows it. The
//! result is **congruent** to the input (`u ≡ ψ mod 2π` exactly, so the wave sees the same
//! phase) and, for a map sampled finely enough (true phase steps below π between neighbours),
//! equal to the true continuous phase up to one constant.
//!
//! Method: quality-guided flood fill (Herráez et al., Appl. Opt. 41, 7437 (2002), with a
//! single growing region). The reliability of a pixel is `1/(1 + D)`, where `D²` is the sum of
//! the squared wrapped second differences along the rows, the columns and both diagonals; the
//! fill starts at the most reliable pixel and always crosses next the most reliable edge (sum
//! of its two pixels' reliabilities) from the unwrapped region to a new pixel, so noisy pixels
//! and phase singularities are reached last and their errors cannot spread. Border pixels
//! (no full second differences) have reliability 0. Cost `O(N log N)` for `N` pixels.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::f64::consts::{PI, TAU};

/// Wraps `x` into `(−π, π]`.
fn wrap(x: f64) -> f64 {
    let w = x.rem_euclid(TAU);
    if w > PI { w - TAU } else { w }
}

/// An edge into a pixel not yet unwrapped, ordered by reliability.
#[derive(Clone, Copy, PartialEq)]
struct Edge {
    reliability: f64,
    from: usize,
    to: usize,
}

impl Eq for Edge {}

impl PartialOrd for Edge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Edge {
    /// Most reliable first; ties broken by pixel index, so the result is deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        self.reliability
            .total_cmp(&other.reliability)
            .then_with(|| other.to.cmp(&self.to))
            .then_with(|| other.from.cmp(&self.from))
    }
}

/// Reliability `1/(1 + D)` of every pixel (see the module docs).
fn reliability(psi: &[f64], nx: usize, ny: usize) -> Vec<f64> {
    let mut r = vec![0.0; nx * ny];
    for y in 1..ny.saturating_sub(1) {
        for x in 1..nx - 1 {
            let at = |dy: isize, dx: isize| {
                psi[(y as isize + dy) as usize * nx + (x as isize + dx) as usize]
            };
            let c = at(0, 0);
            let second = |a: f64, b: f64| wrap(a - c) - wrap(c - b);
            let h = second(at(0, -1), at(0, 1));
            let v = second(at(-1, 0), at(1, 0));
            let d1 = second(at(-1, -1), at(1, 1));
            let d2 = second(at(-1, 1), at(1, -1));
            r[y * nx + x] = 1.0 / (1.0 + (h * h + v * v + d1 * d1 + d2 * d2).sqrt());
        }
    }
    r
}

/// Unwraps the phase map `psi` (radians, `[ny, nx]` row-major); see the module docs.
///
/// # Panics
/// If `psi.len() != nx * ny`.
pub fn unwrap_phase(psi: &[f64], nx: usize, ny: usize) -> Vec<f64> {
    assert_eq!(psi.len(), nx * ny, "phase map of {nx}×{ny}");
    let n = nx * ny;
    if n == 0 {
        return Vec::new();
    }
    let rel = reliability(psi, nx, ny);
    let mut out = psi.to_vec();
    let mut done = vec![false; n];
    let mut heap = BinaryHeap::new();
    let push_edges = |p: usize, done: &[bool], heap: &mut BinaryHeap<Edge>| {
        let (x, y) = (p % nx, p / nx);
        let mut push = |q: usize| {
            if !done[q] {
                heap.push(Edge {
                    reliability: rel[p] + rel[q],
                    from: p,
                    to: q,
                });
            }
        };
        if x > 0 {
            push(p - 1);
        }
        if x + 1 < nx {
            push(p + 1);
        }
        if y > 0 {
            push(p - nx);
        }
        if y + 1 < ny {
            push(p + nx);
        }
    };
    let start = (0..n)
        .max_by(|&a, &b| rel[a].total_cmp(&rel[b]).then_with(|| b.cmp(&a)))
        .expect("a non-empty map");
    done[start] = true;
    push_edges(start, &done, &mut heap);
    while let Some(Edge { from, to, .. }) = heap.pop() {
        if done[to] {
            continue;
        }
        out[to] = psi[to] + TAU * ((out[from] - psi[to]) / TAU).round();
        done[to] = true;
        push_edges(to, &done, &mut heap);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(nx: usize, ny: usize, curvature: f64) -> Vec<f64> {
        (0..nx * ny)
            .map(|i| {
                let (x, y) = (
                    (i % nx) as f64 - 0.4 * nx as f64,
                    (i / nx) as f64 - 0.55 * ny as f64,
                );
                -curvature * (x * x + y * y)
            })
            .collect()
    }

    #[test]
    fn a_finely_sampled_lens_unwraps_to_itself_up_to_a_constant() {
        // The steepest step between neighbours is 2·c·r ≤ 0.92 rad (r ≤ 46 pixels): below π.
        let (nx, ny) = (61, 50);
        let truth = lens(nx, ny, 0.01);
        let wrapped: Vec<f64> = truth.iter().map(|p| p.rem_euclid(TAU)).collect();
        assert!(
            wrapped.windows(2).any(|w| (w[0] - w[1]).abs() > PI),
            "the map wraps"
        );
        let u = unwrap_phase(&wrapped, nx, ny);
        let offset = u[0] - truth[0];
        assert!((offset / TAU - (offset / TAU).round()).abs() < 1e-9);
        for (a, b) in u.iter().zip(&truth) {
            assert!((a - b - offset).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn the_result_is_congruent_to_the_input_even_where_it_cannot_be_continuous() {
        // Random phases: no continuous unwrapping exists; every pixel still differs from its
        // input by a whole number of turns.
        let (nx, ny) = (23, 17);
        let mut rng = photonflow_optics::rng::Rng::new(1);
        let psi: Vec<f64> = (0..nx * ny).map(|_| rng.uniform() * TAU).collect();
        let u = unwrap_phase(&psi, nx, ny);
        for (a, b) in u.iter().zip(&psi) {
            let k = (a - b) / TAU;
            assert!((k - k.round()).abs() < 1e-12);
        }
        assert_eq!(u, unwrap_phase(&psi, nx, ny), "deterministic");
    }

    #[test]
    fn a_noisy_region_does_not_spread_its_errors() {
        // A tilt (0.8 rad per pixel) with a block of random phases in one corner: outside the
        // block the tilt comes back exactly, because the fill reaches the block last.
        let (nx, ny) = (40, 30);
        let mut rng = photonflow_optics::rng::Rng::new(2);
        let truth: Vec<f64> = (0..nx * ny)
            .map(|i| 0.8 * (i % nx) as f64 + 0.3 * (i / nx) as f64)
            .collect();
        let noisy = |i: usize| i % nx >= 30 && i / nx >= 20;
        let psi: Vec<f64> = (0..nx * ny)
            .map(|i| {
                if noisy(i) {
                    rng.uniform() * TAU
                } else {
                    truth[i].rem_euclid(TAU)
                }
            })
            .collect();
        let u = unwrap_phase(&psi, nx, ny);
        let offset = u[0] - truth[0];
        let clean = (0..nx * ny).filter(|&i| !noisy(i));
        let off: Vec<usize> = clean
            .filter(|&i| (u[i] - truth[i] - offset).abs() > 1e-9)
            .collect();
        assert!(
            off.is_empty(),
            "{} clean pixels off, e.g. {:?}",
            off.len(),
            &off[..off.len().min(5)]
        );
    }

    #[test]
    fn degenerate_shapes() {
        assert!(unwrap_phase(&[], 0, 0).is_empty());
        assert_eq!(unwrap_phase(&[1.0], 1, 1), vec![1.0]);
        let row: Vec<f64> = (0..10).map(|i| (0.9 * i as f64).rem_euclid(TAU)).collect();
        let u = unwrap_phase(&row, 10, 1);
        for (i, v) in u.iter().enumerate() {
            assert!((v - u[0] - 0.9 * i as f64).abs() < 1e-12);
        }
    }
}
