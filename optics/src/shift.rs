//! Moving a sampled mask across its grid: a layer mounted off its place.
//!
//! A layer of square pixels shifted by `(dx, dy)` pixels lands on the simulation grid, whose
//! pixels are its own, as follows. Whole pixels move it exactly (a cyclic roll: a diffractive
//! network's masks see no light at the window's edge, where the roll wraps). A fraction `f` of
//! a pixel leaves each grid pixel covered by two of the layer's pixels, a fraction `1 − f` by
//! one and `f` by its neighbour; [`shift`] gives that grid pixel the area-weighted mean of the
//! two transmittances (box sampling, separably along x and y). That is the nearest the grid can
//! come to the sub-pixel edge, whose finer structure it cannot hold: it is exact at whole
//! pixels, continuous and piecewise linear in the shift, so that a fit of where a layer sits
//! (photonflow-hardware's identification of a bench) can move it smoothly.

use num_complex::Complex;

use crate::field::Real;

/// `map` (`[ny, nx]`, row-major) moved by `dx` columns and `dy` rows (any real numbers;
/// positive towards larger indices), cyclically, with fractions of a pixel box-sampled (see the
/// [module docs](self)). Costs `O(nx·ny)`.
pub fn shift<T: Real>(
    map: &[Complex<T>],
    nx: usize,
    ny: usize,
    dx: f64,
    dy: f64,
) -> Vec<Complex<T>> {
    assert_eq!(map.len(), nx * ny, "a map of {ny} × {nx}");
    let along_x = shift_lines(map, nx, 1, nx, ny, dx);
    shift_lines(&along_x, ny, nx, 1, nx, dy)
}

/// Every one of `lines` lines (`len` samples `stride` apart; line `l` starts at `l·step`) of
/// `data` moved by `by` samples, cyclically, box-sampled.
fn shift_lines<T: Real>(
    data: &[Complex<T>],
    len: usize,
    stride: usize,
    step: usize,
    lines: usize,
    by: f64,
) -> Vec<Complex<T>> {
    if by == 0.0 || len == 0 {
        return data.to_vec();
    }
    let whole = by.floor();
    let f = T::of(by - whole);
    let keep = T::of(1.0) - f;
    let n = whole.rem_euclid(len as f64) as usize;
    let mut out = vec![Complex::new(T::of(0.0), T::of(0.0)); data.len()];
    for l in 0..lines {
        let at = |i: usize| data[l * step + (i % len) * stride];
        for j in 0..len {
            // Sample j sees, a fraction 1 − f, the source sample j − n, and f of j − n − 1.
            let a = at(j + len - n);
            let b = at(j + 2 * len - n - 1);
            out[l * step + j * stride] = a * keep + b * f;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(nx: usize, ny: usize) -> Vec<Complex<f64>> {
        (0..nx * ny)
            .map(|k| Complex::from_polar(1.0, 0.37 * (k * k % 17) as f64))
            .collect()
    }

    #[test]
    fn whole_pixels_roll_the_map_exactly() {
        let (nx, ny) = (7, 5);
        let m = map(nx, ny);
        let s = shift(&m, nx, ny, 2.0, -1.0);
        for r in 0..ny {
            for c in 0..nx {
                let from = ((r + 1) % ny) * nx + (c + nx - 2) % nx;
                assert_eq!(s[r * nx + c], m[from]);
            }
        }
        assert_eq!(shift(&s, nx, ny, -2.0, 1.0), m);
        assert_eq!(shift(&m, nx, ny, 7.0, 10.0), m);
    }

    #[test]
    fn fractions_blend_neighbours_by_area_and_compose() {
        let (nx, ny) = (6, 4);
        let m = map(nx, ny);
        let s = shift(&m, nx, ny, 0.25, 0.0);
        // 3/4 of each pixel stays, 1/4 comes from its left neighbour.
        for r in 0..ny {
            for c in 0..nx {
                let want = m[r * nx + c] * 0.75 + m[r * nx + (c + nx - 1) % nx] * 0.25;
                assert!((s[r * nx + c] - want).norm() < 1e-15);
            }
        }
        // The shift is continuous: just short of a whole pixel is nearly that pixel.
        let near = shift(&m, nx, ny, 1.0 - 1e-9, -2.0 + 1e-9);
        let whole = shift(&m, nx, ny, 1.0, -2.0);
        assert!(near.iter().zip(&whole).all(|(a, b)| (a - b).norm() < 1e-8));
        // The mean transmittance is kept (each source pixel's area lands somewhere once).
        let sum = |v: &[Complex<f64>]| v.iter().sum::<Complex<f64>>();
        let moved = shift(&m, nx, ny, -1.6, 2.3);
        assert!((sum(&moved) - sum(&m)).norm() < 1e-12);
    }
}
