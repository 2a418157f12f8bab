//! A dense complex matrix, row-major, for the mesh compiler's `O(N³)` loops: MZIs act on two
//! adjacent rows (contiguous); operations on columns are applied row by row.

use num_complex::Complex64 as C;
use photonflow_optics::rng::Rng;

/// A dense `rows × cols` complex matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CMatrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `data[r * cols + c]`.
    pub data: Vec<C>,
}

impl CMatrix {
    /// The zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![C::new(0.0, 0.0); rows * cols],
        }
    }

    /// A matrix of independent entries with real and imaginary parts uniform in `[−½, ½)`,
    /// drawn row by row (real part first) from `rng`.
    pub fn random(rows: usize, cols: usize, rng: &mut Rng) -> Self {
        let data = (0..rows * cols)
            .map(|_| {
                let re = rng.uniform() - 0.5;
                C::new(re, rng.uniform() - 0.5)
            })
            .collect();
        Self { rows, cols, data }
    }

    /// The identity.
    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = C::new(1.0, 0.0);
        }
        m
    }

    /// Columns `c0 .. c0 + w` of the `n × n` identity, as an `n × w` matrix (a block of
    /// columns to carry through a mesh).
    pub fn identity_columns(n: usize, c0: usize, w: usize) -> Self {
        let mut m = Self::zeros(n, w);
        for j in 0..w {
            m.data[(c0 + j) * w + j] = C::new(1.0, 0.0);
        }
        m
    }

    /// Element `(r, c)`.
    pub fn at(&self, r: usize, c: usize) -> C {
        self.data[r * self.cols + c]
    }

    /// Applies the 2×2 `t` from the left to rows `(k, k+1)`: `M ← T_k · M`, on the columns
    /// `cols` only (the others must be zero in both rows).
    pub fn rows_apply(&mut self, k: usize, t: &[[C; 2]; 2], cols: std::ops::Range<usize>) {
        let n = self.cols;
        let (top, bottom) = self.data[k * n..(k + 2) * n].split_at_mut(n);
        for (a, b) in top[cols.clone()].iter_mut().zip(&mut bottom[cols]) {
            let (x, y) = (*a, *b);
            *a = t[0][0] * x + t[0][1] * y;
            *b = t[1][0] * x + t[1][1] * y;
        }
    }

    /// The conjugate transpose.
    pub fn adjoint(&self) -> Self {
        let mut m = Self::zeros(self.cols, self.rows);
        for r in 0..self.rows {
            for c in 0..self.cols {
                m.data[c * self.rows + r] = self.at(r, c).conj();
            }
        }
        m
    }

    /// `‖A − B‖_F / ‖B‖_F` (`‖A‖_F` when `B` is zero).
    pub fn relative_error(&self, reference: &Self) -> f64 {
        assert_eq!((self.rows, self.cols), (reference.rows, reference.cols));
        let diff: f64 = self
            .data
            .iter()
            .zip(&reference.data)
            .map(|(a, b)| (a - b).norm_sqr())
            .sum();
        let norm: f64 = reference.data.iter().map(|b| b.norm_sqr()).sum();
        if norm == 0.0 {
            diff.sqrt()
        } else {
            (diff / norm).sqrt()
        }
    }

    /// `A · B`.
    pub fn matmul(&self, b: &Self) -> Self {
        assert_eq!(self.cols, b.rows, "inner dimensions");
        let mut out = Self::zeros(self.rows, b.cols);
        for r in 0..self.rows {
            let row = &mut out.data[r * b.cols..(r + 1) * b.cols];
            for k in 0..self.cols {
                let a = self.at(r, k);
                if a == C::new(0.0, 0.0) {
                    continue;
                }
                for (o, &x) in row.iter_mut().zip(&b.data[k * b.cols..(k + 1) * b.cols]) {
                    *o += a * x;
                }
            }
        }
        out
    }
}
