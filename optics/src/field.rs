//! Complex scalar fields, single or batched, in one contiguous buffer.
//!
//! A [`Field`] is `[B, Ny, Nx]` complex samples, row-major with x fastest, plus the
//! [`Grid`] they are sampled on and the vacuum wavelength. The field value is the complex
//! amplitude of `E(x, y) exp(−iωt)`; `|E|²` is the intensity (arbitrary units, power = Σ|E|²·dx·dy).

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use num_complex::Complex;
use rustfft::FftNum;

use crate::error::{OpticsError, Result, positive};
use crate::grid::{Grid, check_len};

/// The real scalar types fields are made of: `f32` (training, inference) and `f64` (tests,
/// compiler precision).
pub trait Real: FftNum + num_traits::Float + Default + std::iter::Sum {
    /// Converts from f64 (rounding for f32).
    fn of(x: f64) -> Self;
    /// Converts to f64.
    fn f64(self) -> f64;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
}

/// Converts a complex f64 to the field precision.
pub(crate) fn cplx<T: Real>(z: Complex<f64>) -> Complex<T> {
    Complex::new(T::of(z.re), T::of(z.im))
}

/// A batch of complex scalar fields on one grid at one wavelength.
#[derive(Debug, Clone, PartialEq)]
pub struct Field<T> {
    data: Vec<Complex<T>>,
    batch: usize,
    grid: Grid,
    wavelength: f64,
}

impl<T: Real> Field<T> {
    /// A batch of `batch` zero fields.
    pub fn zeros(grid: Grid, wavelength: f64, batch: usize) -> Result<Self> {
        positive("wavelength", wavelength)?;
        if batch == 0 {
            return Err(OpticsError::Shape(
                "a batch needs at least one field".into(),
            ));
        }
        Ok(Self {
            data: vec![Complex::default(); batch * grid.len()],
            batch,
            grid,
            wavelength,
        })
    }

    /// Wraps a `[B, Ny, Nx]` buffer; its length must be a whole number of fields.
    pub fn from_vec(data: Vec<Complex<T>>, grid: Grid, wavelength: f64) -> Result<Self> {
        positive("wavelength", wavelength)?;
        let batch = check_len(data.len(), &grid)?;
        Ok(Self {
            data,
            batch,
            grid,
            wavelength,
        })
    }

    /// Builds a single field from a function of the sample position `(x, y)` in metres.
    pub fn from_fn(
        grid: Grid,
        wavelength: f64,
        f: impl Fn(f64, f64) -> Complex<f64>,
    ) -> Result<Self> {
        let (xs, ys) = (grid.x(), grid.y());
        let data = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
            .map(|(x, y)| cplx(f(x, y)))
            .collect();
        Self::from_vec(data, grid, wavelength)
    }

    /// Copies a `[Ny, Nx]` array (one field).
    pub fn from_array2(a: ArrayView2<Complex<T>>, grid: Grid, wavelength: f64) -> Result<Self> {
        let (ny, nx) = a.dim();
        if (ny, nx) != (grid.ny, grid.nx) {
            return Err(OpticsError::Shape(format!(
                "array is {ny}×{nx} but the grid is {}×{}",
                grid.ny, grid.nx
            )));
        }
        Self::from_vec(a.iter().copied().collect(), grid, wavelength)
    }

    /// Copies a `[B, Ny, Nx]` array (a batch).
    pub fn from_array3(a: ArrayView3<Complex<T>>, grid: Grid, wavelength: f64) -> Result<Self> {
        let (_, ny, nx) = a.dim();
        if (ny, nx) != (grid.ny, grid.nx) {
            return Err(OpticsError::Shape(format!(
                "array fields are {ny}×{nx} but the grid is {}×{}",
                grid.ny, grid.nx
            )));
        }
        Self::from_vec(a.iter().copied().collect(), grid, wavelength)
    }

    /// The batch as a `[B, Ny, Nx]` array (copies).
    pub fn to_array3(&self) -> Array3<Complex<T>> {
        Array3::from_shape_vec((self.batch, self.grid.ny, self.grid.nx), self.data.clone())
            .expect("length is batch·ny·nx by construction")
    }

    /// Field `b` as a `[Ny, Nx]` array (copies).
    pub fn to_array2(&self, b: usize) -> Array2<Complex<T>> {
        Array2::from_shape_vec((self.grid.ny, self.grid.nx), self.sample(b).to_vec())
            .expect("length is ny·nx by construction")
    }

    /// Number of fields in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The sampling grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Vacuum wavelength, metres.
    pub fn wavelength(&self) -> f64 {
        self.wavelength
    }

    /// All samples, `[B, Ny, Nx]` row-major.
    pub fn data(&self) -> &[Complex<T>] {
        &self.data
    }

    /// All samples, mutable.
    pub fn data_mut(&mut self) -> &mut [Complex<T>] {
        &mut self.data
    }

    /// Consumes the field, returning its buffer.
    pub fn into_vec(self) -> Vec<Complex<T>> {
        self.data
    }

    /// Field `b` of the batch, `[Ny, Nx]`.
    pub fn sample(&self, b: usize) -> &[Complex<T>] {
        let n = self.grid.len();
        &self.data[b * n..(b + 1) * n]
    }

    /// Field `b` of the batch, mutable.
    pub fn sample_mut(&mut self, b: usize) -> &mut [Complex<T>] {
        let n = self.grid.len();
        &mut self.data[b * n..(b + 1) * n]
    }

    /// Replaces the grid (used by propagators whose output plane has another pitch).
    pub fn set_grid(&mut self, grid: Grid) -> Result<()> {
        check_len(self.data.len(), &grid)?;
        self.grid = grid;
        Ok(())
    }

    /// Intensity `|E|²` of every sample, `[B, Ny, Nx]`.
    pub fn intensity(&self) -> Vec<T> {
        self.data.iter().map(|z| z.norm_sqr()).collect()
    }

    /// Power of each field of the batch, `Σ|E|²·dx·dy`, accumulated in f64.
    pub fn power(&self) -> Vec<f64> {
        let area = self.grid.cell_area();
        self.data
            .chunks_exact(self.grid.len())
            .map(|s| s.iter().map(|z| z.norm_sqr().f64()).sum::<f64>() * area)
            .collect()
    }

    /// Errors if any sample is NaN or infinite.
    pub fn check_finite(&self) -> Result<()> {
        check_finite(&self.data)
    }

    /// The same field in another precision.
    pub fn cast<U: Real>(&self) -> Field<U> {
        Field {
            data: self
                .data
                .iter()
                .map(|z| Complex::new(U::of(z.re.f64()), U::of(z.im.f64())))
                .collect(),
            batch: self.batch,
            grid: self.grid,
            wavelength: self.wavelength,
        }
    }

    /// Half-widths `(ax, ay)` in metres of the centred rectangle outside which every field of
    /// the batch carries at most `fraction` of its power (e.g. `1e-6`). Used by the sampling
    /// checks of methods whose validity depends on the size of the source (Fraunhofer).
    pub fn support(&self, fraction: f64) -> (f64, f64) {
        support_of(&self.data, self.grid, fraction)
    }
}

/// [`Field::support`] of a `[B, Ny, Nx]` buffer on `grid`.
pub(crate) fn support_of<T: Real>(data: &[Complex<T>], g: Grid, fraction: f64) -> (f64, f64) {
    let mut col = vec![0.0f64; g.nx];
    let mut row = vec![0.0f64; g.ny];
    for s in data.chunks_exact(g.len()) {
        for (r, line) in s.chunks_exact(g.nx).enumerate() {
            for (c, z) in line.iter().enumerate() {
                let p = z.norm_sqr().f64();
                col[c] += p;
                row[r] += p;
            }
        }
    }
    (
        half_width(&col, g.dx, fraction),
        half_width(&row, g.dy, fraction),
    )
}

/// Smallest half-width (about the centred origin) that holds all but `fraction` of `profile`.
fn half_width(profile: &[f64], d: f64, fraction: f64) -> f64 {
    let total: f64 = profile.iter().sum();
    if total == 0.0 {
        return 0.0;
    }
    let c = (profile.len() / 2) as isize;
    let max_r = c.max(profile.len() as isize - 1 - c);
    let mut inside = 0.0;
    for r in 0..=max_r {
        for j in [c - r, c + r] {
            if j >= 0 && (j as usize) < profile.len() && (r != 0 || j == c) {
                inside += profile[j as usize];
            }
        }
        if total - inside <= fraction * total {
            return (r as f64 + 0.5) * d;
        }
    }
    (max_r as f64 + 0.5) * d
}

/// The number of NaN and infinite values in `data` and the index of the first; `None` if all
/// are finite.
pub(crate) fn non_finite(data: &[f32]) -> Option<(usize, usize)> {
    let first = data.iter().position(|v| !v.is_finite())?;
    let count = data[first..].iter().filter(|v| !v.is_finite()).count();
    Some((count, first))
}

/// Errors if any sample of `data` is NaN or infinite.
pub fn check_finite<T: Real>(data: &[Complex<T>]) -> Result<()> {
    let mut count = 0;
    let mut first = usize::MAX;
    for (i, z) in data.iter().enumerate() {
        if !(z.re.is_finite() && z.im.is_finite()) {
            count += 1;
            first = first.min(i);
        }
    }
    if count > 0 {
        Err(OpticsError::NonFinite { count, first })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_power() {
        let g = Grid::new(3, 2, 1e-6, 2e-6).unwrap();
        let f = Field::<f32>::from_fn(g, 1e-6, |x, y| Complex::new(x * 1e6, y * 1e6)).unwrap();
        // x fastest: sample (row 1, col 0) is index 3, at x = -1 µm, y = 0.
        assert_eq!(f.data()[3], Complex::new(-1.0, 0.0));
        assert_eq!(f.data()[0], Complex::new(-1.0, -2.0));
        let p = f.power()[0];
        let expect: f64 = [(1., 4.), (0., 4.), (1., 4.), (1., 0.), (0., 0.), (1., 0.)]
            .iter()
            .map(|(a, b)| a + b)
            .sum::<f64>()
            * 2e-12;
        assert!((p - expect).abs() < 1e-20);
        let a = f.to_array3();
        assert_eq!(a.dim(), (1, 2, 3));
        let back = Field::from_array3(a.view(), g, 1e-6).unwrap();
        assert_eq!(back, f);
        assert!(Field::from_vec(vec![Complex::<f32>::default(); 5], g, 1e-6).is_err());
    }

    #[test]
    fn detects_non_finite() {
        let g = Grid::square(2, 1.0).unwrap();
        let mut f = Field::<f64>::zeros(g, 1e-6, 2).unwrap();
        assert!(f.check_finite().is_ok());
        f.data_mut()[5].im = f64::NAN;
        f.data_mut()[6].re = f64::INFINITY;
        match f.check_finite() {
            Err(OpticsError::NonFinite { count: 2, first: 5 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn support_of_a_centred_box() {
        let g = Grid::square(64, 1e-6).unwrap();
        let f = Field::<f64>::from_fn(g, 1e-6, |x, y| {
            Complex::from(if x.abs() < 5.5e-6 && y.abs() < 3.5e-6 {
                1.0
            } else {
                0.0
            })
        })
        .unwrap();
        let (ax, ay) = f.support(1e-9);
        assert_eq!((ax, ay), (5.5e-6, 3.5e-6));
    }
}
