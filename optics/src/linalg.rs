//! Small dense linear algebra for fits: a handful of unknowns, solved directly.

/// Solves `m·x = b` (`m` square) by Gaussian elimination with partial pivoting; `None` if it is
/// singular.
pub fn solve(mut m: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        let size = m[pivot][col].abs();
        if size.is_nan() || size <= 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let (upper, lower) = m.split_at_mut(row);
            let f = lower[0][col] / upper[col][col];
            for (x, y) in lower[0][col..].iter_mut().zip(&upper[col][col..]) {
                *x -= f * y;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| m[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / m[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn solve_solves_and_refuses_singular_systems() {
        let mut rng = Rng::new(3);
        let n = 8;
        let mut m = vec![vec![0.0; n]; n];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = rng.range(-1.0, 1.0) + if i == j { 0.1 } else { 0.0 };
            }
        }
        let x: Vec<f64> = (0..n).map(|i| i as f64 - 3.5).collect();
        let b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| m[i][j] * x[j]).sum())
            .collect();
        let got = solve(m.clone(), b.clone()).unwrap();
        for (g, w) in got.iter().zip(&x) {
            assert!((g - w).abs() < 1e-10, "{got:?}");
        }
        m[7] = m[6].clone();
        let singular = solve(m, b);
        assert!(singular.is_none() || singular.unwrap().iter().any(|v| v.abs() > 1e6));
    }
}
