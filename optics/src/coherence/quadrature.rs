//! Gauss–Legendre quadrature (Golub–Welsch): the nodes and weights that sample a band of
//! wavelengths or a disc of directions with the fewest propagations for a given accuracy.
//!
//! An `n`-point Gauss rule integrates polynomials of degree `≤ 2n − 1` against its weight
//! function exactly; smooth integrands (the phase factors a spectrum or a source brings) converge
//! exponentially in `n`.

use nalgebra::{DMatrix, SymmetricEigen};

/// A quadrature rule: `∫ f(x) w(x) dx ≈ Σ weights[i]·f(nodes[i])`, nodes ascending.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

/// The `n`-point Gauss–Legendre rule for the weight `1` on `[−1, 1]` (`Σ weights = 2`).
pub(crate) fn gauss_legendre(n: usize) -> Rule {
    golub_welsch(
        n,
        |k| {
            let k = k as f64;
            k / (4.0 * k * k - 1.0).sqrt()
        },
        2.0,
    )
}

/// The Gauss rule of a symmetric weight whose orthonormal polynomials have the three-term
/// recurrence with zero diagonal and off-diagonal `beta(k)`, `k = 1 … n`; `mu0` is the
/// weight's total mass. Nodes are the eigenvalues of the Jacobi matrix, each polished by two
/// Newton steps on `pₙ`; weights by the Christoffel formula `mu0/Σₖ pₖ(x)²` (relative accuracy
/// that the eigenvectors' first components lack for the outer nodes).
fn golub_welsch(n: usize, beta: impl Fn(usize) -> f64, mu0: f64) -> Rule {
    let n = n.max(1);
    let mut jacobi = DMatrix::<f64>::zeros(n, n);
    for k in 1..n {
        jacobi[(k, k - 1)] = beta(k);
        jacobi[(k - 1, k)] = beta(k);
    }
    let eigen = SymmetricEigen::new(jacobi);
    let betas: Vec<f64> = (0..=n)
        .map(|k| if k == 0 { 0.0 } else { beta(k) })
        .collect();
    // (pₙ(x), pₙ'(x), Σ_{k<n} pₖ(x)²) by the recurrence β_{k+1}p_{k+1} = x·pₖ − βₖp_{k−1}
    let evaluate = |x: f64| {
        let (mut p0, mut p1, mut d0, mut d1, mut sum) = (0.0, 1.0, 0.0, 0.0, 0.0);
        for k in 0..n {
            sum += p1 * p1;
            let p2 = (x * p1 - betas[k] * p0) / betas[k + 1];
            let d2 = (p1 + x * d1 - betas[k] * d0) / betas[k + 1];
            (p0, p1, d0, d1) = (p1, p2, d1, d2);
        }
        (p1, d1, sum)
    };
    let mut pairs: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let mut x = eigen.eigenvalues[i];
            for _ in 0..2 {
                let (p, d, _) = evaluate(x);
                if d != 0.0 && (p / d).is_finite() {
                    x -= p / d;
                }
            }
            (x, mu0 / evaluate(x).2)
        })
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The rules are symmetric: symmetrise the rounding so that odd moments vanish exactly.
    for i in 0..n / 2 {
        let j = n - 1 - i;
        let x = 0.5 * (pairs[j].0 - pairs[i].0);
        let w = 0.5 * (pairs[i].1 + pairs[j].1);
        pairs[i] = (-x, w);
        pairs[j] = (x, w);
    }
    if n % 2 == 1 {
        pairs[n / 2].0 = 0.0;
    }
    Rule {
        nodes: pairs.iter().map(|p| p.0).collect(),
        weights: pairs.iter().map(|p| p.1).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `∫_{−1}^{1} x^(2k) dx = 2/(2k + 1)`: exact up to degree `2n − 1`, and not beyond (the test
    /// would pass for any rule otherwise).
    #[test]
    fn legendre_is_exact_to_degree_2n_minus_1() {
        for n in [1, 2, 5, 12, 40, 120] {
            let l = gauss_legendre(n);
            let moment = |k: usize| -> f64 {
                l.nodes
                    .iter()
                    .zip(&l.weights)
                    .map(|(x, w)| w * x.powi(2 * k as i32))
                    .sum()
            };
            for k in 0..n {
                let exact = 2.0 / (2 * k + 1) as f64;
                assert!((moment(k) - exact).abs() <= 1e-13, "n={n} k={k}");
            }
            // degree 2n is no longer exact (visibly so for few nodes)
            if n <= 5 {
                assert!((moment(n) - 2.0 / (2 * n + 1) as f64).abs() > 1e-6, "n={n}");
            }
        }
        // reference values (Abramowitz & Stegun 25.4)
        let l = gauss_legendre(5);
        assert!((l.nodes[4] - 0.906_179_845_938_664).abs() < 1e-15);
        assert!((l.weights[4] - 0.236_926_885_056_189_1).abs() < 1e-15);
    }
}
