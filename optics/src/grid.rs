//! Sampling grids: how many samples, how far apart, and where they sit.
//!
//! Convention (the same as `numpy.fft.fftshift`): sample `j` of an axis with `n` samples and
//! pitch `d` sits at `x_j = (j − ⌊n/2⌋)·d`, so the optical axis `x = 0` is sample `⌊n/2⌋`.
//! Spatial frequencies of an FFT of that axis are in FFT order: `f_k = k/(n d)` for
//! `k < ⌈n/2⌉` and `(k − n)/(n d)` above.

use crate::error::{Result, invalid, positive};

/// A rectangular sampling grid, row-major with x fastest: `[ny, nx]`, pitches in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Samples along x (columns).
    pub nx: usize,
    /// Samples along y (rows).
    pub ny: usize,
    /// Pitch along x, metres.
    pub dx: f64,
    /// Pitch along y, metres.
    pub dy: f64,
}

impl Grid {
    /// A grid of `ny` rows and `nx` columns with pitches `dx`, `dy` (metres).
    pub fn new(nx: usize, ny: usize, dx: f64, dy: f64) -> Result<Self> {
        if nx == 0 || ny == 0 {
            return Err(invalid(
                "grid size",
                format!("{ny}×{nx} has no samples; give at least 1×1"),
            ));
        }
        positive("pitch", dx)?;
        positive("pitch", dy)?;
        Ok(Self { nx, ny, dx, dy })
    }

    /// A square grid of `n × n` samples with pitch `pitch` (metres).
    pub fn square(n: usize, pitch: f64) -> Result<Self> {
        Self::new(n, n, pitch, pitch)
    }

    /// Number of samples, `nx · ny`.
    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    /// Always false: a grid has at least one sample.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Physical width `nx·dx` and height `ny·dy` of the window, metres.
    pub fn extent(&self) -> (f64, f64) {
        (self.nx as f64 * self.dx, self.ny as f64 * self.dy)
    }

    /// The edges of the sampled area, `[x_min, x_max, y_min, y_max]` in metres: the outer
    /// edges of the first and last pixels (half a pitch beyond their centres).
    pub fn edges(&self) -> [f64; 4] {
        let (w, h) = self.extent();
        let (x0, y0) = (
            -((self.nx / 2) as f64 + 0.5) * self.dx,
            -((self.ny / 2) as f64 + 0.5) * self.dy,
        );
        [x0, x0 + w, y0, y0 + h]
    }

    /// Area of one sample, `dx·dy` (m²).
    pub fn cell_area(&self) -> f64 {
        self.dx * self.dy
    }

    /// Nyquist frequencies `1/(2dx)`, `1/(2dy)` (cycles per metre).
    pub fn nyquist(&self) -> (f64, f64) {
        (0.5 / self.dx, 0.5 / self.dy)
    }

    /// x coordinates of the columns, metres (centred convention, see module docs).
    pub fn x(&self) -> Vec<f64> {
        centred(self.nx, self.dx)
    }

    /// y coordinates of the rows, metres.
    pub fn y(&self) -> Vec<f64> {
        centred(self.ny, self.dy)
    }

    /// Spatial frequencies of an FFT along x, FFT order, cycles per metre.
    pub fn fx(&self) -> Vec<f64> {
        fft_frequencies(self.nx, self.dx)
    }

    /// Spatial frequencies of an FFT along y, FFT order, cycles per metre.
    pub fn fy(&self) -> Vec<f64> {
        fft_frequencies(self.ny, self.dy)
    }

    /// The same pitches with a different number of samples.
    pub fn with_size(&self, nx: usize, ny: usize) -> Result<Self> {
        Self::new(nx, ny, self.dx, self.dy)
    }
}

/// Centred sample positions `(j − ⌊n/2⌋)·d`.
pub fn centred(n: usize, d: f64) -> Vec<f64> {
    let c = (n / 2) as f64;
    (0..n).map(|j| (j as f64 - c) * d).collect()
}

/// FFT-order frequencies of `n` samples at pitch `d` (like `numpy.fft.fftfreq`).
pub fn fft_frequencies(n: usize, d: f64) -> Vec<f64> {
    let half = n.div_ceil(2);
    (0..n)
        .map(|k| {
            let k = if k < half {
                k as f64
            } else {
                k as f64 - n as f64
            };
            k / (n as f64 * d)
        })
        .collect()
}

/// Wavelength in vacuum and refractive index of the medium the light travels in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wave {
    /// Vacuum wavelength, metres.
    pub wavelength: f64,
    /// Refractive index of the medium (1 for air/vacuum).
    pub index: f64,
}

impl Wave {
    /// Light of vacuum wavelength `wavelength` (metres) in a medium of index `index`.
    pub fn new(wavelength: f64, index: f64) -> Result<Self> {
        positive("wavelength", wavelength)?;
        positive("refractive index", index)?;
        Ok(Self { wavelength, index })
    }

    /// Light of vacuum wavelength `wavelength` in vacuum (index 1).
    pub fn vacuum(wavelength: f64) -> Result<Self> {
        Self::new(wavelength, 1.0)
    }

    /// Wavelength in the medium, `λ/n`.
    pub fn lambda(&self) -> f64 {
        self.wavelength / self.index
    }

    /// Wavenumber in the medium, `k = 2π n/λ` (rad/m).
    pub fn k(&self) -> f64 {
        std::f64::consts::TAU / self.lambda()
    }
}

/// The smallest size `≥ n` whose only prime factors are 2, 3, 5 and 7 (fast for rustfft).
pub fn next_fast_len(n: usize) -> usize {
    let mut m = n.max(1);
    loop {
        let mut r = m;
        for p in [2, 3, 5, 7] {
            while r.is_multiple_of(p) {
                r /= p;
            }
        }
        if r == 1 {
            return m;
        }
        m += 1;
    }
}

pub(crate) fn check_len(len: usize, grid: &Grid) -> Result<usize> {
    let per = grid.len();
    if len == 0 || !len.is_multiple_of(per) {
        return Err(crate::error::OpticsError::Shape(format!(
            "a buffer of {len} samples is not a whole batch of {}×{} fields",
            grid.ny, grid.nx
        )));
    }
    Ok(len / per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_follow_fftshift() {
        let g = Grid::new(4, 5, 1.0, 2.0).unwrap();
        assert_eq!(g.x(), vec![-2.0, -1.0, 0.0, 1.0]);
        assert_eq!(g.y(), vec![-4.0, -2.0, 0.0, 2.0, 4.0]);
        assert_eq!(fft_frequencies(4, 1.0), vec![0.0, 0.25, -0.5, -0.25]);
        assert_eq!(fft_frequencies(5, 1.0), vec![0.0, 0.2, 0.4, -0.4, -0.2]);
    }

    #[test]
    fn edges_are_half_a_pitch_beyond_the_outer_samples() {
        for (nx, ny) in [(4, 5), (7, 6)] {
            let g = Grid::new(nx, ny, 1.0, 2.0).unwrap();
            let [x0, x1, y0, y1] = g.edges();
            assert_eq!(x0, g.x()[0] - 0.5);
            assert_eq!(x1, g.x()[nx - 1] + 0.5);
            assert_eq!(y0, g.y()[0] - 1.0);
            assert_eq!(y1, g.y()[ny - 1] + 1.0);
        }
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Grid::new(0, 4, 1.0, 1.0).is_err());
        assert!(Grid::new(4, 4, -1.0, 1.0).is_err());
        assert!(Grid::new(4, 4, 1.0, f64::NAN).is_err());
        assert!(Wave::vacuum(0.0).is_err());
    }

    #[test]
    fn fast_lengths() {
        assert_eq!(next_fast_len(400), 400);
        assert_eq!(next_fast_len(401), 405);
        assert_eq!(next_fast_len(11), 12);
        assert_eq!(next_fast_len(1), 1);
    }
}
