//! Reference functions for the unit tests.

/// The Bessel function of the first kind `J_n(x)` by its power series (to about 10⁻¹¹ for
/// `|x| ≤ 15`).
pub(crate) fn bessel_j(n: i64, x: f64) -> f64 {
    let m = n.unsigned_abs();
    let mut term = (0.5 * x).powi(m as i32) / (1..=m).map(|k| k as f64).product::<f64>();
    let mut sum = 0.0;
    for k in 0..60u64 {
        sum += term;
        term *= -(0.25 * x * x) / ((k + 1) as f64 * (k + 1 + m) as f64);
    }
    if n < 0 && m % 2 == 1 { -sum } else { sum }
}
