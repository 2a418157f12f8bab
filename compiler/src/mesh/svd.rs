//! Any matrix into a mesh: the SVD architecture `M = σ_max · U · (Σ/σ_max) · V†` (Miller,
//! Photonics Res. 1, 1 (2013); Shen et al., Nat. Photonics 11, 441 (2017)).
//!
//! An `m × n` matrix is zero-padded to `K × K`, `K = max(m, n)`, so that inputs `0 … n−1`
//! and outputs `0 … m−1` of a `K`-mode chip carry it (the padding's singular values are 0:
//! those attenuators block). `V†` becomes a first mesh; its output phase screen `D_v` commutes
//! with the diagonal `Σ` and is folded into the second mesh (`U·D_v` is decomposed instead of
//! `U`), so the chip is: mesh of `V†` (no phase screen), one column of attenuators with
//! transmissions `σ_i/σ_max ≤ 1`, mesh of `U·D_v` with its output phases — and the scale
//! `σ_max` that the chip cannot supply (an amplifier or the detector's gain does).

use nalgebra::DMatrix;
use num_complex::Complex64 as C;
use photonflow_optics::memory;
use serde::{Deserialize, Serialize};

use super::decompose::{Attenuator, Mesh, Method, decompose};
use super::matrix::CMatrix;
use super::mzi::cis;
use crate::error::{CompileError, Result};

/// What an SVD mesh adds to a layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SvdInfo {
    /// Rows `m` of the matrix (outputs `0 … m−1`).
    pub rows: usize,
    /// Columns `n` (inputs `0 … n−1`).
    pub cols: usize,
    /// `σ_max`: the chip implements `M / scale`.
    pub scale: f64,
    /// Singular values of the padded `K × K` matrix, descending.
    pub singular_values: Vec<f64>,
}

/// The SVD of `M` zero-padded to `K × K`, singular values descending: `M = U·diag(σ)·V†`.
struct Factors {
    u: CMatrix,
    sigma: Vec<f64>,
    vh: CMatrix,
}

/// [`Factors`] of `m`; refuses non-finite, empty and zero matrices.
fn factors(m: &CMatrix) -> Result<Factors> {
    if let Some(i) = m
        .data
        .iter()
        .position(|v| !v.re.is_finite() || !v.im.is_finite())
    {
        return Err(CompileError::Design(format!(
            "element ({}, {}) is not finite",
            i / m.cols,
            i % m.cols
        )));
    }
    let k = m.rows.max(m.cols);
    if k == 0 {
        return Err(CompileError::Design("the matrix is empty".into()));
    }
    // The padded matrix, U, V† and the SVD's working copy, K × K complex each.
    memory::check_fits(
        memory::bytes(&[k, k, 4 * 16]),
        || {
            format!(
                "the SVD of a {}×{} matrix, padded to {k}×{k} (a chip of max(M, N) = {k} modes)",
                m.rows, m.cols
            )
        },
        "check the matrix's shape: a mesh needs as many modes as the longer side",
    )?;
    let padded = DMatrix::from_fn(k, k, |r, c| {
        if r < m.rows && c < m.cols {
            m.at(r, c)
        } else {
            C::new(0.0, 0.0)
        }
    });
    let svd = padded.svd(true, true);
    let (u, v_t) = (
        svd.u.expect("U was asked for"),
        svd.v_t.expect("V† was asked for"),
    );
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let sigma: Vec<f64> = order.iter().map(|&i| svd.singular_values[i]).collect();
    if sigma[0] <= 0.0 || sigma[0].is_nan() {
        return Err(CompileError::Design(
            "the matrix is zero: there is nothing for a mesh to implement".into(),
        ));
    }
    let mut uo = CMatrix::zeros(k, k);
    let mut vh = CMatrix::zeros(k, k);
    for (j, &i) in order.iter().enumerate() {
        for r in 0..k {
            uo.data[r * k + j] = u[(r, i)];
            vh.data[j * k + r] = v_t[(i, r)];
        }
    }
    Ok(Factors { u: uo, sigma, vh })
}

/// `M` embedded in a unitary of twice its size (Halmos dilation), for a single Clements or
/// Reck mesh of `2K` modes: with `A = M/scale` (`scale = max(σ_max, 1)`, so `‖A‖₂ ≤ 1`) and
/// `A = U·Σ·V†`,
///
/// ```text
/// W = [[ A,                 U·√(I − Σ²)·U† ],
///      [ V·√(I − Σ²)·V†,    −A†            ]]
/// ```
///
/// is unitary; inputs `0 … n−1` and outputs `0 … m−1` carry `A` (the [`SvdInfo`] says which
/// block and the scale).
pub fn embed(m: &CMatrix) -> Result<(CMatrix, SvdInfo)> {
    let Factors { u, sigma, vh } = factors(m)?;
    let k = sigma.len();
    let scale = sigma[0].max(1.0);
    let s: Vec<f64> = sigma.iter().map(|x| x / scale).collect();
    let d: Vec<f64> = s.iter().map(|x| (1.0 - x * x).max(0.0).sqrt()).collect();
    // X·diag(w)·Y for k×k X, Y.
    let product = |x: &CMatrix, w: &[f64], y: &CMatrix| {
        let mut xw = x.clone();
        for r in 0..k {
            for (c, &wc) in w.iter().enumerate() {
                xw.data[r * k + c] *= wc;
            }
        }
        xw.matmul(y)
    };
    let a = product(&u, &s, &vh);
    let top = product(&u, &d, &u.adjoint());
    let v = vh.adjoint();
    let bottom = product(&v, &d, &vh);
    let a_dagger = a.adjoint();
    let n = 2 * k;
    let mut w = CMatrix::zeros(n, n);
    for r in 0..k {
        for c in 0..k {
            w.data[r * n + c] = a.at(r, c);
            w.data[r * n + k + c] = top.at(r, c);
            w.data[(k + r) * n + c] = bottom.at(r, c);
            w.data[(k + r) * n + k + c] = -a_dagger.at(r, c);
        }
    }
    Ok((
        w,
        SvdInfo {
            rows: m.rows,
            cols: m.cols,
            scale,
            singular_values: sigma,
        },
    ))
}

/// `M` as an SVD mesh of `max(m, n)` modes, each unitary as a `method` mesh.
pub fn decompose_svd(m: &CMatrix, method: Method) -> Result<(Mesh, SvdInfo)> {
    let Factors { u, sigma, vh } = factors(m)?;
    let k = sigma.len();
    let scale = sigma[0];
    let tolerance = 1e-8;
    let mesh_v = decompose(&vh, method, tolerance)?;
    // U·D_v: D_v's phases multiply U's columns.
    let mut ud = CMatrix::zeros(k, k);
    for r in 0..k {
        for c in 0..k {
            ud.data[r * k + c] = u.at(r, c) * cis(mesh_v.output_phases[c]);
        }
    }
    let mesh_u = decompose(&ud, method, tolerance)?;
    let column = mesh_v.depth();
    let mut mzis = mesh_v.mzis;
    mzis.extend(mesh_u.mzis.iter().map(|z| {
        let mut z = *z;
        z.column += column + 1;
        z
    }));
    let attenuators = sigma
        .iter()
        .enumerate()
        .map(|(mode, s)| {
            let t = (s / scale).clamp(0.0, 1.0);
            Attenuator {
                column,
                mode,
                transmission: t,
                theta: 2.0 * t.asin(),
            }
        })
        .collect();
    Ok((
        Mesh {
            n: k,
            mzis,
            attenuators,
            output_phases: mesh_u.output_phases,
        },
        SvdInfo {
            rows: m.rows,
            cols: m.cols,
            scale,
            singular_values: sigma,
        },
    ))
}

impl SvdInfo {
    /// The `m × n` matrix a `K`-mode SVD mesh implements: `scale` times the top-left block of
    /// its transfer matrix.
    pub fn implemented(&self, chip: &CMatrix) -> CMatrix {
        let mut out = CMatrix::zeros(self.rows, self.cols);
        for r in 0..self.rows {
            for c in 0..self.cols {
                out.data[r * self.cols + c] = chip.at(r, c) * self.scale;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(rows: usize, cols: usize, seed: u64) -> CMatrix {
        CMatrix::random(rows, cols, &mut photonflow_optics::rng::Rng::new(seed))
    }

    #[test]
    fn any_matrix_is_reproduced_by_its_svd_mesh() {
        for (rows, cols) in [(1, 1), (4, 4), (6, 3), (3, 7), (16, 16)] {
            let m = random(rows, cols, (rows * 31 + cols) as u64);
            for method in [Method::Clements, Method::Reck] {
                let (mesh, info) = decompose_svd(&m, method).unwrap();
                let k = rows.max(cols);
                assert_eq!(mesh.n, k);
                assert_eq!(mesh.mzis.len(), k * (k - 1));
                assert_eq!(mesh.attenuators.len(), k);
                let err = info.implemented(&mesh.matrix()).relative_error(&m);
                assert!(err < 1e-10, "{rows}×{cols} {method:?}: {err}");
                assert!(info.singular_values.windows(2).all(|w| w[0] >= w[1]));
                assert!((mesh.attenuators[0].transmission - 1.0).abs() < 1e-15);
                // The padding's singular values are zero: those attenuators block.
                for a in &mesh.attenuators[rows.min(cols)..] {
                    assert!(a.transmission < 1e-12, "{a:?}");
                }
                assert!(
                    mesh.attenuators
                        .iter()
                        .all(|a| { (a.theta / 2.0).sin() - a.transmission < 1e-12 })
                );
            }
        }
    }

    #[test]
    fn a_contraction_embeds_in_a_unitary_of_twice_its_size() {
        for (rows, cols) in [(3, 3), (4, 2), (2, 5)] {
            let m = random(rows, cols, (rows * 13 + cols) as u64);
            let (w, info) = embed(&m).unwrap();
            let n = 2 * rows.max(cols);
            assert_eq!((w.rows, w.cols), (n, n));
            let unitarity = w.adjoint().matmul(&w).relative_error(&CMatrix::identity(n));
            assert!(unitarity < 1e-13, "{unitarity}");
            let mesh = decompose(&w, Method::Clements, 1e-9).unwrap();
            let err = info.implemented(&mesh.matrix()).relative_error(&m);
            assert!(err < 1e-10, "{rows}×{cols}: {err}");
            // A matrix larger than a contraction is scaled down by σ_max, a smaller one not.
            assert!((info.scale - info.singular_values[0].max(1.0)).abs() < 1e-15);
        }
        let mut small = random(3, 3, 5);
        for v in &mut small.data {
            *v *= 0.1;
        }
        assert_eq!(embed(&small).unwrap().1.scale, 1.0);
    }

    #[test]
    fn a_rank_deficient_matrix_and_refusals() {
        // Rank 1: one attenuator open, the rest closed.
        let (a, b) = (random(5, 1, 3), random(1, 5, 4));
        let m = a.matmul(&b);
        let (mesh, info) = decompose_svd(&m, Method::Clements).unwrap();
        assert!(info.implemented(&mesh.matrix()).relative_error(&m) < 1e-10);
        assert!(mesh.attenuators[1..].iter().all(|a| a.transmission < 1e-12));
        let e = decompose_svd(&CMatrix::zeros(3, 3), Method::Clements)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero"), "{e}");
        let mut nan = random(2, 2, 1);
        nan.data[3] = C::new(0.0, f64::INFINITY);
        let e = decompose_svd(&nan, Method::Reck).unwrap_err().to_string();
        assert!(e.contains("(1, 1) is not finite"), "{e}");
    }
}
