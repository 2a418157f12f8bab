//! Unconstrained minimisation of smooth functions of many variables: L-BFGS, the one
//! implementation the chip model's phase re-optimisation and the in-line hologram's
//! reconstruction use.

use std::collections::VecDeque;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` (value, gradient into its second argument) from `x` in place by L-BFGS (Nocedal &
/// Wright, Numerical Optimization, Alg. 7.4–7.5; 10 pairs) with a backtracking Armijo line
/// search. Stops when the value no longer falls by more than 1e-12 of itself, the line search
/// finds no decrease, or after `max_iterations`; calls `progress` with the iterations done after
/// each; returns the iterations taken.
pub fn lbfgs(
    x: &mut [f64],
    max_iterations: usize,
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    mut progress: impl FnMut(usize),
) -> usize {
    const MEMORY: usize = 10;
    let len = x.len();
    let mut g = vec![0.0; len];
    let mut value = f(x, &mut g);
    let mut pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(MEMORY);
    let (mut x_new, mut g_new) = (vec![0.0; len], vec![0.0; len]);
    for iteration in 0..max_iterations {
        let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut alpha = vec![0.0; pairs.len()];
        for (i, (s, y, rho)) in pairs.iter().enumerate().rev() {
            alpha[i] = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(d, y)| *d -= alpha[i] * y);
        }
        // Initial Hessian: the last pair's curvature, or steps of at most 0.1 at first.
        let gamma = pairs.back().map_or_else(
            || 0.1 / g.iter().fold(1e-300f64, |m, v| m.max(v.abs())),
            |(s, y, _)| dot(s, y) / dot(y, y),
        );
        d.iter_mut().for_each(|d| *d *= gamma);
        for (i, (s, y, rho)) in pairs.iter().enumerate() {
            let beta = rho * dot(y, &d);
            d.iter_mut()
                .zip(s)
                .for_each(|(d, s)| *d += (alpha[i] - beta) * s);
        }
        let slope = dot(&g, &d);
        // Not a descent direction (or NaN): nothing left to gain.
        if slope.is_nan() || slope >= 0.0 {
            return iteration;
        }
        let mut step = 1.0;
        let found = loop {
            x_new
                .iter_mut()
                .zip(x.iter().zip(&d))
                .for_each(|(n, (x, d))| *n = x + step * d);
            let v = f(&x_new, &mut g_new);
            if v <= value + 1e-4 * step * slope {
                break Some(v);
            }
            step *= 0.5;
            if step < 1e-12 {
                break None;
            }
        };
        let Some(v) = found else {
            return iteration;
        };
        let s: Vec<f64> = x_new.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 0.0 {
            if pairs.len() == MEMORY {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / sy));
        }
        let fall = value - v;
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        value = v;
        progress(iteration + 1);
        if fall <= 1e-12 * value {
            return iteration + 1;
        }
    }
    max_iterations
}

#[cfg(test)]
mod tests {
    use super::lbfgs;

    #[test]
    fn rosenbrock_is_minimised() {
        // f = Σ 100(x_{i+1} − x_i²)² + (1 − x_i)², minimum 0 at x = 1.
        let f = |x: &[f64], g: &mut [f64]| {
            g.fill(0.0);
            let mut v = 0.0;
            for i in 0..x.len() - 1 {
                let (a, b) = (x[i + 1] - x[i] * x[i], 1.0 - x[i]);
                v += 100.0 * a * a + b * b;
                g[i] += -400.0 * a * x[i] - 2.0 * b;
                g[i + 1] += 200.0 * a;
            }
            v
        };
        let mut x = vec![-1.2; 8];
        let mut calls = 0;
        let taken = lbfgs(&mut x, 500, f, |_| calls += 1);
        assert_eq!(taken, calls);
        assert!(taken < 500);
        assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-5), "{x:?}");
    }

    #[test]
    fn a_quadratic_takes_few_iterations() {
        let scales = [1.0, 3.0, 10.0, 30.0, 100.0];
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for ((x, g), s) in x.iter().zip(g.iter_mut()).zip(scales) {
                v += 0.5 * s * (x - 2.0) * (x - 2.0);
                *g = s * (x - 2.0);
            }
            v
        };
        let mut x = vec![0.0; 5];
        let taken = lbfgs(&mut x, 100, f, |_| {});
        assert!(taken <= 30, "{taken}");
        assert!(x.iter().all(|v| (v - 2.0).abs() < 1e-6), "{x:?}");
    }
}
