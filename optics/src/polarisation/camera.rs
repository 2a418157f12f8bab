//! [`PolarisationCamera`]: a division-of-focal-plane polarimeter — a sensor whose pixels sit
//! behind a repeating 2 × 2 pattern of micro-polarisers (Sony's IMX250MZR: 90°, 45° / 135°, 0°)
//! — and the linear Stokes images its raw frames give.

use super::field::VectorField;
use super::mask::{JonesMask, extinction_amplitude};
use crate::error::{OpticsError, Result, invalid};
use crate::field::Real;
use crate::grid::Grid;

/// A polarisation camera of 2 × 2 super-pixels, one pixel a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct PolarisationCamera {
    /// The polariser angles (radians, from x towards y) of a super-pixel, `[row][column]`.
    pub pattern: [[f64; 2]; 2],
    /// The micro-polarisers' intensity extinction ratio (∞: ideal).
    pub extinction: f64,
}

impl PolarisationCamera {
    /// Sony Polarsens (IMX250MZR and kin): 90° and 45° on the first row, 135° and 0° on the
    /// second, with the extinction ratio given (the data sheets quote a few hundred).
    pub fn polarsens(extinction: f64) -> Self {
        let d = std::f64::consts::PI / 180.0;
        Self {
            pattern: [[90.0 * d, 45.0 * d], [135.0 * d, 0.0]],
            extinction,
        }
    }

    /// The raw frame: the intensity behind each pixel's polariser, `[B, Ny, Nx]` for a field of
    /// `B` samples.
    pub fn expose<T: Real>(&self, field: &VectorField<T>) -> Result<Vec<f64>> {
        let pattern: Vec<Vec<f64>> = self.pattern.iter().map(|r| r.to_vec()).collect();
        let mut through = field.clone();
        JonesMask::micro_polarisers(*field.grid(), &pattern, self.extinction)?
            .apply(&mut through)?;
        Ok(through.intensity())
    }

    /// The linear Stokes images `[S₀, S₁, S₂]` of a raw frame of `ny × nx` pixels, one value
    /// per super-pixel (`[3, ny/2, nx/2]`; an odd last row or column is dropped), and the grid
    /// of the super-pixels (twice the pitch of `grid`, centred on the same point when `ny` and
    /// `nx` are multiples of 4). Each super-pixel's four intensities `I_θ = ½[(p² + q²)S₀ +
    /// (p² − q²)(S₁ cos 2θ + S₂ sin 2θ)]` (`p`, `q` the pass and block amplitudes) are inverted
    /// by least squares, so a finite extinction ratio is corrected, and any four distinct
    /// angles work. `S₃` is invisible to linear polarisers.
    pub fn stokes(&self, raw: &[f64], grid: &Grid) -> Result<(Vec<f64>, Grid)> {
        if raw.len() != grid.len() {
            return Err(OpticsError::Shape(format!(
                "a raw frame of {} pixels for a {}×{} sensor",
                raw.len(),
                grid.ny,
                grid.nx
            )));
        }
        if grid.nx < 2 || grid.ny < 2 {
            return Err(invalid(
                "frame",
                "a polarisation camera's frame needs at least 2 × 2 pixels",
            ));
        }
        let q2 = extinction_amplitude(self.extinction)?.powi(2);
        let (a, b) = (0.5 * (1.0 + q2), 0.5 * (1.0 - q2));
        // the design matrix's rows (a, b cos 2θ, b sin 2θ) in the order of the super-pixel
        let rows: Vec<[f64; 3]> = self
            .pattern
            .iter()
            .flatten()
            .map(|t| [a, b * (2.0 * t).cos(), b * (2.0 * t).sin()])
            .collect();
        let pinv = pseudo_inverse(&rows).ok_or_else(|| {
            invalid(
                "pattern",
                "the super-pixel's polariser angles do not determine S1 and S2: use at least \
                 three distinct angles modulo 180°",
            )
        })?;
        let (sy, sx) = (grid.ny / 2, grid.nx / 2);
        let mut out = vec![0.0; 3 * sy * sx];
        for r in 0..sy {
            for c in 0..sx {
                let i = [
                    raw[2 * r * grid.nx + 2 * c],
                    raw[2 * r * grid.nx + 2 * c + 1],
                    raw[(2 * r + 1) * grid.nx + 2 * c],
                    raw[(2 * r + 1) * grid.nx + 2 * c + 1],
                ];
                for (s, p) in pinv.iter().enumerate() {
                    out[s * sy * sx + r * sx + c] = p.iter().zip(&i).map(|(p, i)| p * i).sum();
                }
            }
        }
        Ok((out, Grid::new(sx, sy, 2.0 * grid.dx, 2.0 * grid.dy)?))
    }
}

/// `(AᵀA)⁻¹Aᵀ` of a 4 × 3 matrix, as three rows of four; `None` when `AᵀA` is singular.
fn pseudo_inverse(a: &[[f64; 3]]) -> Option<[[f64; 4]; 3]> {
    let mut n = [[0.0; 3]; 3];
    for row in a {
        for i in 0..3 {
            for j in 0..3 {
                n[i][j] += row[i] * row[j];
            }
        }
    }
    let det = n[0][0] * (n[1][1] * n[2][2] - n[1][2] * n[2][1])
        - n[0][1] * (n[1][0] * n[2][2] - n[1][2] * n[2][0])
        + n[0][2] * (n[1][0] * n[2][1] - n[1][1] * n[2][0]);
    let scale = n.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    if det.is_nan() || det.abs() <= 1e-9 * scale.powi(3) {
        return None;
    }
    // the inverse by cofactors (n is symmetric)
    let c = |i: usize, j: usize| {
        let (r0, r1) = ((i + 1) % 3, (i + 2) % 3);
        let (c0, c1) = ((j + 1) % 3, (j + 2) % 3);
        n[r0][c0] * n[r1][c1] - n[r0][c1] * n[r1][c0]
    };
    let inv: [[f64; 3]; 3] = std::array::from_fn(|i| std::array::from_fn(|j| c(j, i) / det));
    Some(std::array::from_fn(|i| {
        std::array::from_fn(|k| (0..3).map(|j| inv[i][j] * a[k][j]).sum())
    }))
}
