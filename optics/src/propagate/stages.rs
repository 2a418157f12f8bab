//! A planned propagation described as a chain of linear stages, for code that cannot call the
//! fused kernels (e.g. a GPU backend composing the operator from matrix products).
//!
//! Every propagator is `y = S ⊙ crop(T(pad(L ⊙ u)))`: an optional separable load weight `L`, a
//! zero-pad of the `ny × nx` field into an `my × mx` array at [`Stages::offset`], a spectral
//! stage `T` (a convolution `F⁻¹ diag(h) F` or one plain 2-D DFT), a crop of the same window and
//! an optional separable store weight `S`. The data are the very arrays the kernels run with
//! (the transfer function, chirps and phase ramps of the plan), so the description cannot drift
//! from the kernels; `tests` in this module apply it by direct DFTs and compare with them.

use num_complex::Complex;

use crate::fft::Separable;

/// The spectral stage of a propagator.
#[derive(Debug, Clone, PartialEq)]
pub enum Spectral<T> {
    /// `F⁻¹ diag(h) F` with unnormalised DFTs (`F`: `exp(−2πi·jk/M)` along each axis, `F⁻¹`:
    /// `exp(+2πi·jk/M)`); `h` is `[my][mx]` row-major in FFT order and already holds the
    /// `1/(my·mx)` normalisation (and the conjugation, for an adjoint).
    Convolve(Vec<Complex<T>>),
    /// One unnormalised 2-D DFT, `exp(−2πi·jk/M)` along each axis, or `exp(+2πi·jk/M)` when
    /// `inverse`.
    Dft {
        /// The sign of the exponent is `+` (an unnormalised inverse DFT).
        inverse: bool,
    },
}

/// A propagator (or its adjoint) as linear stages; see the module docs (`propagate::stages`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages<T> {
    /// `(ny, nx)`: samples of the fields in and out.
    pub shape: (usize, usize),
    /// `(my, mx)`: size of the padded transform.
    pub padded: (usize, usize),
    /// `(oy, ox)`: where the field sits in the padded array, for the pad and the crop.
    pub offset: (usize, usize),
    /// Weight applied to the input field before padding (`None`: 1).
    pub load: Option<Separable<T>>,
    /// The transform between pad and crop.
    pub spectral: Spectral<T>,
    /// Weight applied to the cropped output (`None`: 1).
    pub store: Option<Separable<T>>,
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;

    use num_complex::Complex;

    use super::{Spectral, Stages};
    use crate::fft::Separable;
    use crate::propagate::{Method, Padding, Planner, Propagation};
    use crate::{Grid, Wave};

    type C64 = Complex<f64>;

    /// Unnormalised 1-D DFT of `x` with exponent sign `s`.
    fn dft(x: &[C64], s: f64) -> Vec<C64> {
        let m = x.len();
        (0..m)
            .map(|k| {
                x.iter()
                    .enumerate()
                    .map(|(j, v)| {
                        v * C64::from_polar(1.0, s * TAU * ((j * k) % m) as f64 / m as f64)
                    })
                    .sum()
            })
            .collect()
    }

    /// 2-D DFT of an `my × mx` array, rows then columns.
    fn dft2(a: &mut [C64], my: usize, mx: usize, s: f64) {
        for row in a.chunks_mut(mx) {
            let t = dft(row, s);
            row.copy_from_slice(&t);
        }
        for c in 0..mx {
            let col: Vec<C64> = (0..my).map(|r| a[r * mx + c]).collect();
            for (r, v) in dft(&col, s).into_iter().enumerate() {
                a[r * mx + c] = v;
            }
        }
    }

    fn weigh(u: &mut [C64], w: &Option<Separable<f64>>, nx: usize) {
        if let Some(w) = w {
            for (i, z) in u.iter_mut().enumerate() {
                *z *= w.wy[i / nx] * w.wx[i % nx];
            }
        }
    }

    /// The stages applied naively (direct DFTs on the whole padded array) to one field.
    fn apply(st: &Stages<f64>, u: &[C64]) -> Vec<C64> {
        let ((ny, nx), (my, mx), (oy, ox)) = (st.shape, st.padded, st.offset);
        let mut u = u.to_vec();
        weigh(&mut u, &st.load, nx);
        let mut a = vec![C64::default(); my * mx];
        for r in 0..ny {
            a[(r + oy) * mx + ox..][..nx].copy_from_slice(&u[r * nx..][..nx]);
        }
        match &st.spectral {
            Spectral::Convolve(h) => {
                dft2(&mut a, my, mx, -1.0);
                a.iter_mut().zip(h).for_each(|(z, h)| *z *= h);
                dft2(&mut a, my, mx, 1.0);
            }
            Spectral::Dft { inverse } => dft2(&mut a, my, mx, if *inverse { 1.0 } else { -1.0 }),
        }
        let mut y: Vec<C64> = (0..ny)
            .flat_map(|r| a[(r + oy) * mx + ox..][..nx].to_vec())
            .collect();
        weigh(&mut y, &st.store, nx);
        y
    }

    /// For every method (both paddings, both signs of z where the method allows them), the
    /// stages give the kernel's operator and its adjoint to f64 rounding.
    #[test]
    fn stages_are_the_kernels_operator() {
        let grid = Grid::new(9, 6, 4e-6, 5e-6).unwrap();
        let wave = Wave::vacuum(632.8e-9).unwrap();
        let planner = Planner::<f64>::new();
        let u: Vec<C64> = (0..grid.len())
            .map(|i| C64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
            .collect();
        let mut checked = 0;
        for method in Method::ALL
            .into_iter()
            .filter(|&m| m != Method::Auto && !m.window_only())
        {
            for padding in [Padding::Linear(2.0), Padding::Circular] {
                for z in [80e-6, -80e-6] {
                    let prop = Propagation::new(z)
                        .with_method(method)
                        .with_padding(padding)
                        .with_check(false);
                    let plan = planner.plan(&grid, wave, &prop).unwrap();
                    for adjoint in [false, true] {
                        let mut kernel = u.clone();
                        if adjoint {
                            plan.adjoint_in_place(&mut kernel).unwrap();
                        } else {
                            plan.propagate_in_place(&mut kernel).unwrap();
                        }
                        let naive = apply(&plan.stages(adjoint), &u);
                        let scale = kernel.iter().map(|z| z.norm()).fold(0.0, f64::max);
                        let err = kernel
                            .iter()
                            .zip(&naive)
                            .map(|(a, b)| (a - b).norm())
                            .fold(0.0, f64::max)
                            / scale;
                        assert!(
                            err < 1e-12,
                            "{method} {padding:?} z = {z} adjoint {adjoint}: {err:e}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 7 * 2 * 2 * 2);
    }
}
