//! Unitary matrices into MZI meshes: Clements (rectangular) and Reck (triangular).
//!
//! Both null the matrix element by element with MZIs (see [`super::mzi`]): `L_p ⋯ L_1 · U ·
//! R_1^† ⋯ R_q^† = D` diagonal. Reck (Reck et al., PRL 73, 58 (1994)) uses column operations
//! only, row by row from the bottom: `N(N−1)/2` MZIs on a triangle of depth `2N − 3`. Clements
//! (Clements et al., Optica 3, 1460 (2016)) alternates column and row operations along the
//! anti-diagonals, then moves every `L_i^†` through `D` (`T^†·D = D'·T'`,
//! [`super::mzi::commute_inverse`]): `N(N−1)/2` MZIs on a rectangle of depth `N`, balanced
//! path lengths and losses. Each nulling updates two rows or two columns, and only the part of
//! them that is not already zero, so a decomposition costs `O(N³)`.
//!
//! The result implements `diag(e^{i·output_phases}) · T_K ⋯ T_1`, `T_1` met first.

use num_complex::Complex64 as C;
use photonflow_optics::memory;
use photonflow_optics::rng::Rng;
use serde::{Deserialize, Serialize};

use super::matrix::CMatrix;
use super::mzi::{Convention, atan2, cis, commute_inverse, phase, transfer, wrap};
use super::work::Work;
use crate::error::{CompileError, Result};

/// One MZI of a mesh.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mzi {
    /// Column of the mesh (0 = where light enters); MZIs of one column act at once.
    pub column: usize,
    /// The upper of its two modes, `(mode, mode + 1)`.
    pub mode: usize,
    /// Internal phase, radians, `[0, π]`.
    pub theta: f64,
    /// External phase, radians, `[0, 2π)`.
    pub phi: f64,
}

/// An amplitude modulator on one mode (the `Σ` column of an SVD mesh): an MZI used from one
/// input to one output, whose bar-port amplitude `sin(θ/2)` is the transmission.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Attenuator {
    /// Column of the mesh it stands in.
    pub column: usize,
    /// Its mode.
    pub mode: usize,
    /// Amplitude transmission, `[0, 1]`.
    pub transmission: f64,
    /// The internal phase of an MZI that transmits this much on its bar port: `2·asin(t)`.
    pub theta: f64,
}

/// A mesh: `n` modes, MZIs in the order light meets them (and, for SVD meshes, a column of
/// attenuators between them), and the output phase screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mesh {
    /// Modes.
    pub n: usize,
    /// The MZIs, in the order light meets them.
    pub mzis: Vec<Mzi>,
    /// Attenuators (SVD meshes only), all in one column: applied after every MZI of an earlier
    /// column and before every MZI of a later one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attenuators: Vec<Attenuator>,
    /// Phase shifters on every output, radians `[0, 2π)`.
    pub output_phases: Vec<f64>,
}

/// The mesh architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Rectangular mesh, depth `N`.
    Clements,
    /// Triangular mesh, depth `2N − 3`.
    Reck,
}

impl Method {
    /// The name on the command line and in layout files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clements => "clements",
            Self::Reck => "reck",
        }
    }
}

impl Mesh {
    /// Optical depth: the number of columns (of MZIs and attenuators).
    pub fn depth(&self) -> usize {
        depth(&self.mzis, &self.attenuators)
    }

    /// The matrix the ideal mesh implements, `diag(e^{i·output_phases}) · T_K ⋯ T_1` (with
    /// the attenuators in their column).
    pub fn matrix(&self) -> CMatrix {
        self.matrix_with(|z| transfer(z.theta, z.phi))
    }

    /// The matrix of the mesh with every MZI's 2×2 given by `mzi` (a model of the real
    /// device, called once per MZI in light order); attenuators and output phases as designed.
    ///
    /// Column `j` is the mesh applied to the unit vector `e_j`, so blocks of `MATRIX_BLOCK`
    /// columns go through the mesh independently, in parallel on the rayon pool, and in each
    /// an MZI only touches the columns its two rows can hold light in so far (each row's span
    /// starts at its own column and grows to the union of the two where an MZI mixes them):
    /// `O(N³)` with about a quarter less arithmetic than whole rows for a Clements mesh.
    pub fn matrix_with(&self, mzi: impl FnMut(&Mzi) -> [[C; 2]; 2]) -> CMatrix {
        use rayon::prelude::*;
        let n = self.n;
        let blocks: Vec<[[C; 2]; 2]> = self.mzis.iter().map(mzi).collect();
        let attenuate_at = attenuate_at(&self.mzis, &self.attenuators);
        let phases: Vec<C> = self.output_phases.iter().map(|&p| cis(p)).collect();
        let starts: Vec<usize> = (0..n).step_by(MATRIX_BLOCK).collect();
        let columns: Vec<CMatrix> = (starts.par_iter())
            .map(|&c0| {
                let w = MATRIX_BLOCK.min(n - c0);
                let mut b = CMatrix::identity_columns(n, c0, w);
                // Row r holds light in the block's columns span[r].0 .. span[r].1 (none: w .. 0).
                let mut span: Vec<(usize, usize)> = (0..n)
                    .map(|r| match r.checked_sub(c0) {
                        Some(j) if j < w => (j, j + 1),
                        _ => (w, 0),
                    })
                    .collect();
                for (i, (z, t)) in self.mzis.iter().zip(&blocks).enumerate() {
                    if attenuate_at == Some(i) {
                        self.attenuate(&mut b);
                    }
                    let m = z.mode;
                    let (lo, hi) = (span[m].0.min(span[m + 1].0), span[m].1.max(span[m + 1].1));
                    if lo >= hi {
                        continue;
                    }
                    (span[m], span[m + 1]) = ((lo, hi), (lo, hi));
                    b.rows_apply(m, t, lo..hi);
                }
                if attenuate_at == Some(self.mzis.len()) {
                    self.attenuate(&mut b);
                }
                for (row, e) in b.data.chunks_exact_mut(w).zip(&phases) {
                    row.iter_mut().for_each(|v| *v *= e);
                }
                b
            })
            .collect();
        let mut m = CMatrix::zeros(n, n);
        for (&c0, b) in starts.iter().zip(&columns) {
            for (r, row) in b.data.chunks_exact(b.cols).enumerate() {
                m.data[r * n + c0..r * n + c0 + b.cols].copy_from_slice(row);
            }
        }
        m
    }
}

/// Columns of the identity that [`Mesh::matrix_with`] carries through the mesh together.
const MATRIX_BLOCK: usize = 64;

impl Mesh {
    /// The same matrix with the phases in convention `to`, this mesh's being in `from`. Every
    /// MZI converts exactly up to a unit factor `γ` on its two modes
    /// ([`Convention::from_photonflow`]); a phase diagonal in front of an MZI leaves it as one
    /// phase on both its modes (`T(θ, φ)·diag(a, b) = b·T(θ, φ + arg(a/b))`, in either
    /// convention), so the factors are carried through the later MZIs (and through the
    /// attenuators, which commute with them) into the output phase screen.
    pub fn convert(&self, from: Convention, to: Convention) -> Mesh {
        let mut carried = vec![C::new(1.0, 0.0); self.n];
        let mzis = self
            .mzis
            .iter()
            .map(|z| {
                let (theta1, phi1, g1) = from.to_photonflow(z.theta, z.phi);
                let (theta, phi, g2) = to.from_photonflow(theta1, phi1);
                let (a, b) = (carried[z.mode], carried[z.mode + 1]);
                let carry = g1 * g2 * b;
                carried[z.mode] = carry;
                carried[z.mode + 1] = carry;
                let shift = a * b.conj();
                Mzi {
                    theta,
                    phi: wrap(phi + atan2(shift.im, shift.re)),
                    ..*z
                }
            })
            .collect();
        let output_phases = self
            .output_phases
            .iter()
            .zip(&carried)
            .map(|(p, c)| wrap(p + atan2(c.im, c.re)))
            .collect();
        Mesh {
            n: self.n,
            mzis,
            attenuators: self.attenuators.clone(),
            output_phases,
        }
    }

    /// Scales the rows of `m` (the mesh's matrix, or a block of its columns) by the
    /// attenuators' transmissions.
    fn attenuate(&self, m: &mut CMatrix) {
        for a in &self.attenuators {
            for v in &mut m.data[a.mode * m.cols..(a.mode + 1) * m.cols] {
                *v *= a.transmission;
            }
        }
    }
}

/// The number of columns the elements stand in (one past the last).
pub(crate) fn depth(mzis: &[Mzi], attenuators: &[Attenuator]) -> usize {
    let mzis = mzis.iter().map(|m| m.column + 1);
    let attenuators = attenuators.iter().map(|a| a.column + 1);
    mzis.chain(attenuators).max().unwrap_or(0)
}

/// Where the attenuators act in the order light meets the MZIs: before the first MZI in a
/// later column than theirs (after all, if none is); `None` without attenuators.
fn attenuate_at(mzis: &[Mzi], attenuators: &[Attenuator]) -> Option<usize> {
    let a = attenuators.first()?;
    Some((mzis.iter().position(|z| z.column > a.column)).unwrap_or(mzis.len()))
}

/// Checks that the columns of a mesh of `n` modes agree with the order light meets its
/// elements (`mzis` in that order, the `attenuators` where [`attenuate_at`] puts them): the
/// attenuators share one column, every element fits the modes and stands in a column before
/// `usize::MAX` (so that [`depth`] counts it), and on every mode each element stands in a later
/// column than the one before it. The mesh drawn by its columns
/// ([`super::gds::write_mesh_gds`], and the gradient of the global correction, which sweeps
/// the columns) is then the mesh multiplied out in its order ([`Mesh::matrix`]). Returns what
/// is wrong, naming the element by its index.
pub(crate) fn check_columns(
    n: usize,
    mzis: &[Mzi],
    attenuators: &[Attenuator],
) -> std::result::Result<(), String> {
    #[derive(Clone, Copy)]
    enum Last {
        Mzi(usize),
        Attenuator(usize),
    }
    let name = |e: Last| match e {
        Last::Mzi(i) => format!(
            "MZI {i} (column {}, modes {}–{})",
            mzis[i].column,
            mzis[i].mode,
            mzis[i].mode.saturating_add(1)
        ),
        Last::Attenuator(i) => format!(
            "attenuator {i} (column {}, mode {})",
            attenuators[i].column, attenuators[i].mode
        ),
    };
    if let Some(i) = attenuators
        .iter()
        .position(|a| a.column != attenuators[0].column)
    {
        return Err(format!(
            "{} is not in the column of attenuator 0 ({}): an SVD mesh has its attenuators in \
             one column",
            name(Last::Attenuator(i)),
            attenuators[0].column
        ));
    }
    // The element last met on each mode, and the first column free after it.
    let mut last: Vec<Option<(Last, usize)>> = vec![None; n];
    let mut place = |e: Last, column: usize, mode: usize, span: usize| {
        let Some(modes) = mode
            .checked_add(span)
            .filter(|&end| end <= n)
            .map(|end| mode..end)
        else {
            return Err(format!("{} does not fit {n} modes", name(e)));
        };
        let Some(free) = column.checked_add(1) else {
            return Err(format!("{} stands in no column a mesh can have", name(e)));
        };
        for m in modes.clone() {
            if let Some((before, free)) = last[m]
                && column < free
            {
                return Err(format!(
                    "{} meets light after {} on mode {m} but does not stand in a later column: \
                     on every mode the columns must increase in the order light meets the \
                     elements (mesh layout draws them by column, mesh simulate multiplies \
                     them in order)",
                    name(e),
                    name(before)
                ));
            }
        }
        for m in modes {
            last[m] = Some((e, free));
        }
        Ok(())
    };
    let at = attenuate_at(mzis, attenuators);
    for i in 0..=mzis.len() {
        if at == Some(i) {
            for (j, a) in attenuators.iter().enumerate() {
                place(Last::Attenuator(j), a.column, a.mode, 1)?;
            }
        }
        if let Some(z) = mzis.get(i) {
            place(Last::Mzi(i), z.column, z.mode, 2)?;
        }
    }
    Ok(())
}

/// Meshes from this size on compute their phases in parallel (below, handing the work to the
/// rayon pool costs more than it saves: N = 256 was 4 % slower on one thread).
const PARALLEL_PHASES: usize = 512;

/// The MZIs on `modes` (each the upper of its two, in the order light meets them), each in
/// the earliest column after the last MZI on either of its modes, the `i`-th with the phases
/// `phases(i)`: the columns in one pass, then the phases (from [`PARALLEL_PHASES`] on in
/// parallel on the rayon pool).
fn schedule(
    n: usize,
    modes: impl Iterator<Item = usize>,
    phases: impl Fn(usize) -> (f64, f64) + Sync,
) -> Vec<Mzi> {
    use rayon::prelude::*;
    let mut next = vec![0usize; n];
    let mut mzis: Vec<Mzi> = modes
        .map(|mode| {
            let column = next[mode].max(next[mode + 1]);
            next[mode] = column + 1;
            next[mode + 1] = column + 1;
            Mzi {
                column,
                mode,
                theta: 0.0,
                phi: 0.0,
            }
        })
        .collect();
    let set = |(i, z): (usize, &mut Mzi)| (z.theta, z.phi) = phases(i);
    match n >= PARALLEL_PHASES {
        true => mzis.par_iter_mut().enumerate().for_each(set),
        false => mzis.iter_mut().enumerate().for_each(set),
    }
    mzis
}

/// Clements steps between two batches of deferred row steps (applied by a second thread, or
/// by this one at once, [`Work::defer_rows_from`]).
const ROW_EPOCH: usize = 32;

/// Decomposes the unitary `u` (`N × N`, `N ≥ 1`) into a mesh. `tolerance` bounds the largest
/// deviation from unitarity accepted (entries of `U†U − I` are of the same order); a matrix
/// beyond it is refused with the deviation measured.
pub fn decompose(u: &CMatrix, method: Method, tolerance: f64) -> Result<Mesh> {
    let n = u.rows;
    if u.cols != n || n == 0 {
        return Err(CompileError::Design(format!(
            "a {}×{} matrix is not square; a mesh implements an N×N unitary (use --method svd \
             for any matrix)",
            u.rows, u.cols
        )));
    }
    // The matrix in panels (16 bytes an element) and the mesh's N(N−1)/2 MZIs (32 bytes each),
    // beside the input.
    memory::check_fits(
        memory::bytes(&[n, n, 16 + 16]),
        || format!("decomposing a {n}-mode unitary"),
        "decompose it on a machine with more memory",
    )?;
    if let Some(i) = u
        .data
        .iter()
        .position(|v| !v.re.is_finite() || !v.im.is_finite())
    {
        return Err(CompileError::Design(format!(
            "element ({}, {}) is not finite",
            i / n,
            i % n
        )));
    }
    nullings(Work::new(u), n, method, tolerance)
}

/// The nulling sequence of `method` on `w` (a copy of an `n × n` matrix), then the mesh.
fn nullings(w: Work, n: usize, method: Method, tolerance: f64) -> Result<Mesh> {
    // Clements' step i nulls i + 1 elements, from the right when i is even.
    let from_right = match method {
        Method::Reck => n * (n - 1) / 2,
        Method::Clements => (0..n - 1).step_by(2).map(|i| i + 1).sum(),
    };
    let mut right = Vec::with_capacity(from_right);
    let mut left = Vec::with_capacity(n * (n - 1) / 2 - from_right);
    let mut w = match method {
        Method::Reck => w.ascending(),
        Method::Clements => w,
    };
    match method {
        Method::Reck => {
            for r in (1..n).rev() {
                for k in 0..r {
                    right.push((k, w.null_right(r, k)));
                }
            }
        }
        Method::Clements => {
            for i in 0..n - 1 {
                if i % ROW_EPOCH == 0 {
                    // Steps i … i + ROW_EPOCH − 1 read the columns up to i + ROW_EPOCH.
                    w.defer_rows_from(i + ROW_EPOCH + 1);
                }
                if i % 2 == 0 {
                    // The worker helps with this step's column operations on the rows above.
                    w.help(Some(n - 1 - i));
                    for j in 0..=i {
                        let (r, k) = (n - 1 - j, i - j);
                        right.push((k, w.null_right(r, k)));
                    }
                    w.help(None);
                } else {
                    // Rows (k, k+1) = (n − i − 2 + j, …) at columns j, for j = 0 … i.
                    w.null_left_run(n - i - 2, 0, i + 1, &mut left);
                }
            }
        }
    }
    let (dev, mut d) = w.finish();
    if dev > tolerance || dev.is_nan() {
        return Err(CompileError::NotUnitary {
            deviation: dev,
            tolerance,
        });
    }
    // The left MZIs, commuted through the output phases in turn (each moves two of them, and
    // leaves the ratio its external phase is the argument of), in light order after the right
    // ones; then every MZI's phases from its nulling, independent of one another.
    let ratios: Vec<C> = (left.iter().rev())
        .map(|(k, z)| {
            let (ratio, d1, d2) = commute_inverse(z, d[*k], d[k + 1]);
            (d[*k], d[k + 1]) = (d1, d2);
            ratio
        })
        .collect();
    let modes = right.iter().chain(left.iter().rev()).map(|(k, _)| *k);
    let mzis = schedule(n, modes, |i| match right.get(i) {
        Some((_, z)) => (z.theta(), z.phi()),
        None => {
            let j = i - right.len();
            (left[left.len() - 1 - j].1.theta(), phase(ratios[j]))
        }
    });
    Ok(Mesh {
        n,
        mzis,
        attenuators: Vec::new(),
        output_phases: d.iter().map(|v| wrap(v.arg())).collect(),
    })
}

/// A Haar-random unitary (Mezzadri, Notices AMS 54, 592 (2007)): QR of a complex Gaussian
/// matrix with the phases of `R`'s diagonal moved into `Q`, drawn from `rng`.
pub fn haar_unitary(n: usize, rng: &mut Rng) -> CMatrix {
    // Columns of a Gaussian matrix, orthonormalised by modified Gram–Schmidt (twice, for
    // accuracy to rounding): Q of the QR, with R's diagonal real positive, which is exactly the
    // phase fix that makes Q Haar-distributed.
    let mut cols: Vec<Vec<C>> = (0..n)
        .map(|_| (0..n).map(|_| C::new(rng.normal(), rng.normal())).collect())
        .collect();
    for j in 0..n {
        for _ in 0..2 {
            for i in 0..j {
                let dot: C = cols[i]
                    .iter()
                    .zip(&cols[j])
                    .map(|(a, b)| a.conj() * b)
                    .sum();
                let (done, rest) = cols.split_at_mut(j);
                for (x, y) in rest[0].iter_mut().zip(&done[i]) {
                    *x -= dot * y;
                }
            }
        }
        let norm = cols[j].iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
        for x in &mut cols[j] {
            *x /= norm;
        }
    }
    let mut m = CMatrix::zeros(n, n);
    for (c, col) in cols.iter().enumerate() {
        for (r, v) in col.iter().enumerate() {
            m.data[r * n + c] = *v;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn haar_unitaries_reconstruct_to_1e_10_with_the_mzi_count_and_depth_of_each_mesh() {
        for n in [1, 2, 3, 4, 5, 8, 17, 32, 64, 256] {
            let u = haar_unitary(n, &mut Rng::new(n as u64));
            let unitarity = u.adjoint().matmul(&u).relative_error(&CMatrix::identity(n));
            assert!(unitarity < 1e-13, "{n}: {unitarity}");
            for method in [Method::Clements, Method::Reck] {
                let mesh = decompose(&u, method, 1e-9).unwrap();
                let err = mesh.matrix().relative_error(&u);
                assert!(err < 1e-10, "{n} {method:?}: {err}");
                assert_eq!(mesh.mzis.len(), n * (n - 1) / 2);
                let depth = match (method, n) {
                    (_, 1) => 0,
                    (_, 2) => 1,
                    (Method::Clements, _) => n,
                    (Method::Reck, _) => 2 * n - 3,
                };
                assert_eq!(mesh.depth(), depth, "{n} {method:?}");
                for z in &mesh.mzis {
                    assert!((0.0..=PI).contains(&z.theta) && (0.0..2.0 * PI).contains(&z.phi));
                    assert!(z.mode + 1 < n);
                }
                // Within a column no two MZIs share a mode.
                let mut seen = std::collections::HashSet::new();
                for z in &mesh.mzis {
                    assert!(seen.insert((z.column, z.mode)) && seen.insert((z.column, z.mode + 1)));
                }
            }
        }
    }

    /// The same MZIs in the same places, phases within `dtheta` and `dphi` (φ modulo 2π).
    fn same_mzis(a: &Mesh, b: &Mesh, dtheta: f64, dphi: f64) {
        assert_eq!(a.mzis.len(), b.mzis.len());
        for (x, y) in a.mzis.iter().zip(&b.mzis) {
            assert_eq!((x.column, x.mode), (y.column, y.mode));
            let d = (x.phi - y.phi).abs();
            assert!(
                (x.theta - y.theta).abs() < dtheta,
                "θ {} vs {}",
                x.theta,
                y.theta
            );
            assert!(d.min(2.0 * PI - d) < dphi, "φ {} vs {}", x.phi, y.phi);
        }
    }

    #[test]
    fn portable_arithmetic_gives_the_same_mesh() {
        // Where the CPU has AVX2 and FMA, `decompose` uses them; the portable path must agree.
        for n in [5, 9, 34] {
            let u = haar_unitary(n, &mut Rng::new(3 + n as u64));
            for method in [Method::Clements, Method::Reck] {
                let fast = decompose(&u, method, 1e-9).unwrap();
                let portable = nullings(Work::new(&u).portable(), n, method, 1e-9).unwrap();
                assert!(
                    portable.matrix().relative_error(&u) < 1e-12,
                    "{n} {method:?}"
                );
                same_mzis(&fast, &portable, 1e-11, 1e-9);
            }
        }
    }

    #[test]
    fn work_handed_to_a_second_thread_gives_the_same_mesh() {
        // Large matrices hand work to a worker thread: the far row steps, help with the column
        // steps and part of each row step (Clements), the column operations of the rows above
        // the nulling (both methods). Every element meets its updates in the same order, so the
        // mesh is the same to the last bit. Flushes of 50 and 400 column operations: many,
        // while the worker is still busy with earlier ones.
        for (n, ops) in [(70, 50), (161, 400), (161, 8192)] {
            let u = haar_unitary(n, &mut Rng::new(70 + n as u64));
            for method in [Method::Clements, Method::Reck] {
                let work = |on| Work::new(&u).pipelined(on).capacity(ops);
                let serial = nullings(work(false), n, method, 1e-9).unwrap();
                let piped = nullings(work(true), n, method, 1e-9).unwrap();
                assert!(piped.matrix().relative_error(&u) < 1e-12, "{n} {method:?}");
                assert_eq!(serial, piped, "{n} {method:?} {ops}");
            }
        }
    }

    #[test]
    fn meshes_convert_exactly_between_conventions() {
        for n in [2, 7, 32] {
            let u = haar_unitary(n, &mut Rng::new(40 + n as u64));
            for method in [Method::Clements, Method::Reck] {
                let mesh = decompose(&u, method, 1e-9).unwrap();
                let c = Convention::Clements2016;
                let theirs = mesh.convert(Convention::Photonflow, c);
                // Their MZIs, multiplied out with their transfer matrix, give the same matrix.
                let m = theirs.matrix_with(|z| c.transfer(z.theta, z.phi));
                assert!(m.relative_error(&u) < 1e-13, "{n} {method:?}");
                assert!(
                    theirs
                        .mzis
                        .iter()
                        .all(|z| (0.0..=PI / 2.0).contains(&z.theta))
                );
                let back = theirs.convert(c, Convention::Photonflow);
                assert!(back.matrix().relative_error(&u) < 1e-13, "{n} {method:?}");
                same_mzis(&mesh, &back, 1e-13, 1e-12);
            }
        }
        // SVD meshes carry the phases through their attenuators.
        let m = CMatrix::random(5, 3, &mut Rng::new(8));
        let (mesh, info) = crate::mesh::decompose_svd(&m, Method::Clements).unwrap();
        let theirs = mesh.convert(Convention::Photonflow, Convention::Clements2016);
        let c = Convention::Clements2016;
        let block = info.implemented(&theirs.matrix_with(|z| c.transfer(z.theta, z.phi)));
        assert!(block.relative_error(&m) < 1e-12);
    }

    #[test]
    fn the_matrix_by_blocks_of_columns_is_the_product_over_whole_rows() {
        // Over whole rows, MZI by MZI in light order: what `matrix_with` computes by blocks of
        // columns, each row over the columns its light has reached.
        let whole_rows = |mesh: &Mesh| {
            let n = mesh.n;
            let mut m = CMatrix::identity(n);
            let column = mesh.attenuators.first().map_or(usize::MAX, |a| a.column);
            let mut attenuated = mesh.attenuators.is_empty();
            for z in &mesh.mzis {
                if !attenuated && z.column > column {
                    mesh.attenuate(&mut m);
                    attenuated = true;
                }
                m.rows_apply(z.mode, &transfer(z.theta, z.phi), 0..n);
            }
            if !attenuated {
                mesh.attenuate(&mut m);
            }
            for (r, &p) in mesh.output_phases.iter().enumerate() {
                m.data[r * n..(r + 1) * n]
                    .iter_mut()
                    .for_each(|v| *v *= cis(p));
            }
            m
        };
        // Three blocks of columns, the last partial; an SVD mesh with its attenuators.
        let n = 2 * MATRIX_BLOCK + 21;
        let u = haar_unitary(n, &mut Rng::new(21));
        let (svd, _) =
            crate::mesh::decompose_svd(&CMatrix::random(n, 90, &mut Rng::new(22)), Method::Reck)
                .unwrap();
        assert!(!svd.attenuators.is_empty());
        for mesh in [
            decompose(&u, Method::Clements, 1e-9).unwrap(),
            decompose(&u, Method::Reck, 1e-9).unwrap(),
            svd,
        ] {
            let (by_blocks, whole) = (mesh.matrix(), whole_rows(&mesh));
            assert_eq!(by_blocks.relative_error(&whole), 0.0, "{}", mesh.n);
        }
    }

    #[test]
    fn real_orthogonal_permutation_and_identity_inputs() {
        // A rotation: phases come out as 0 or π.
        let (c, s) = (0.6f64, 0.8f64);
        let mut rot = CMatrix::identity(3);
        rot.data[0] = C::new(c, 0.0);
        rot.data[1] = C::new(-s, 0.0);
        rot.data[3] = C::new(s, 0.0);
        rot.data[4] = C::new(c, 0.0);
        // A permutation (every MZI bar or cross) and the identity (every MZI degenerate).
        let mut perm = CMatrix::zeros(4, 4);
        for (r, c) in [(0, 2), (1, 0), (2, 3), (3, 1)] {
            perm.data[r * 4 + c] = C::new(1.0, 0.0);
        }
        for u in [rot, perm, CMatrix::identity(6)] {
            for method in [Method::Clements, Method::Reck] {
                let mesh = decompose(&u, method, 1e-12).unwrap();
                assert!(mesh.matrix().relative_error(&u) < 1e-14, "{method:?}");
            }
        }
    }

    #[test]
    fn non_unitary_and_non_square_inputs_are_refused_with_the_deviation() {
        let mut u = haar_unitary(5, &mut Rng::new(9));
        u.data[7] += C::new(1e-4, 0.0);
        let e = decompose(&u, Method::Clements, 1e-9)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not unitary") && (e.contains("e-5") || e.contains("e-4")),
            "{e}"
        );
        // Accepted with a coarser tolerance, and then reconstructs to that order.
        let mesh = decompose(&u, Method::Clements, 1e-3).unwrap();
        assert!(mesh.matrix().relative_error(&u) < 1e-3);
        let e = decompose(&CMatrix::zeros(3, 4), Method::Reck, 1e-9)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3×4 matrix is not square") && e.contains("svd"),
            "{e}"
        );
        let mut nan = CMatrix::identity(2);
        nan.data[1] = C::new(f64::NAN, 0.0);
        let e = decompose(&nan, Method::Reck, 1e-9).unwrap_err().to_string();
        assert!(e.contains("(0, 1) is not finite"), "{e}");
    }
}
