//! [`VectorField`]: a batch of polarised fields, propagated by the scalar plans component by
//! component, with its Stokes images and longitudinal component.

use num_complex::Complex;
use rayon::prelude::*;

use super::jones::{JonesVector, Stokes};
use crate::error::{OpticsError, Result, invalid};
use crate::fft::{Fft2, FftCache};
use crate::field::{Field, Real, cplx};
use crate::grid::{Grid, fft_frequencies, next_fast_len};
use crate::memory;
use crate::propagate::Planned;

/// The polarisation a scalar field is given by [`VectorField::polarise`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Polarised {
    /// The same Jones vector everywhere (normalised: the scalar field keeps its intensity).
    Uniform(JonesVector),
    /// Radial, `(cos φ, sin φ)` about `centre` (m): a cylindrical vector beam.
    Radial {
        /// The axis `(x, y)`, m.
        centre: (f64, f64),
    },
    /// Azimuthal, `(−sin φ, cos φ)` about `centre` (m).
    Azimuthal {
        /// The axis `(x, y)`, m.
        centre: (f64, f64),
    },
}

impl Polarised {
    /// The unit Jones vector at `(x, y)`; zero on the axis of a radial or azimuthal beam, where
    /// the direction is undefined (such a beam is dark there).
    pub fn at(&self, x: f64, y: f64) -> JonesVector {
        let about = |c: (f64, f64)| {
            let (dx, dy) = (x - c.0, y - c.1);
            let r = dx.hypot(dy);
            if r > 0.0 {
                Some((dx / r, dy / r))
            } else {
                None
            }
        };
        let real = |a: f64, b: f64| JonesVector([Complex::new(a, 0.0), Complex::new(b, 0.0)]);
        match *self {
            Self::Uniform(e) => e.normalised(),
            Self::Radial { centre } => about(centre).map_or(real(0.0, 0.0), |(c, s)| real(c, s)),
            Self::Azimuthal { centre } => {
                about(centre).map_or(real(0.0, 0.0), |(c, s)| real(-s, c))
            }
        }
    }
}

/// A batch of `B` polarised fields: one [`Field`] of `2B` components ordered
/// `[E_x⁽⁰⁾, E_y⁽⁰⁾, E_x⁽¹⁾, E_y⁽¹⁾, …]`, each `[Ny, Nx]`.
///
/// In a homogeneous isotropic medium the transverse components propagate independently with
/// the scalar transfer function (the vector angular spectrum), so every scalar plan — any
/// method, any output window — propagates a vector field: [`VectorField::propagate`].
/// Scalar elements (apertures, lenses, phase masks) act on both components alike
/// (`element.apply(vector.field_mut())`); Jones masks ([`super::JonesMask`]) mix them. The
/// longitudinal component follows from `∇·E = 0`: [`VectorField::longitudinal`].
#[derive(Debug, Clone, PartialEq)]
pub struct VectorField<T> {
    field: Field<T>,
}

impl<T: Real> VectorField<T> {
    /// Wraps a field of `2B` components (`E_x`, `E_y` of each sample in turn).
    pub fn new(field: Field<T>) -> Result<Self> {
        if !field.batch().is_multiple_of(2) {
            return Err(OpticsError::Shape(format!(
                "a vector field holds E_x and E_y of each sample, an even number of components; \
                 this field has {}",
                field.batch()
            )));
        }
        Ok(Self { field })
    }

    /// `B` samples from their components (two fields of the same batch, grid and wavelength).
    pub fn from_components(ex: &Field<T>, ey: &Field<T>) -> Result<Self> {
        if ex.grid() != ey.grid() || ex.batch() != ey.batch() || ex.wavelength() != ey.wavelength()
        {
            return Err(OpticsError::Shape(
                "E_x and E_y must share their batch, grid and wavelength".into(),
            ));
        }
        let n = ex.grid().len();
        let mut data = Vec::with_capacity(2 * ex.data().len());
        for b in 0..ex.batch() {
            data.extend_from_slice(&ex.data()[b * n..(b + 1) * n]);
            data.extend_from_slice(&ey.data()[b * n..(b + 1) * n]);
        }
        Self::new(Field::from_vec(data, *ex.grid(), ex.wavelength())?)
    }

    /// Each scalar field of the batch with the polarisation `state` (`E = u·e(x, y)`).
    pub fn polarise(scalar: &Field<T>, state: &Polarised) -> Result<Self> {
        let grid = *scalar.grid();
        let (xs, ys) = (grid.x(), grid.y());
        let e: Vec<JonesVector> = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| state.at(x, y)))
            .collect();
        let n = grid.len();
        let mut data = vec![Complex::default(); 2 * scalar.data().len()];
        data.par_chunks_mut(2 * n)
            .zip(scalar.data().par_chunks(n))
            .for_each(|(out, u)| {
                let (x, y) = out.split_at_mut(n);
                for (k, &u) in u.iter().enumerate() {
                    x[k] = u * cplx::<T>(e[k].0[0]);
                    y[k] = u * cplx::<T>(e[k].0[1]);
                }
            });
        Self::new(Field::from_vec(data, grid, scalar.wavelength())?)
    }

    /// The number of polarised samples `B`.
    pub fn batch(&self) -> usize {
        self.field.batch() / 2
    }

    /// The sampling grid.
    pub fn grid(&self) -> &Grid {
        self.field.grid()
    }

    /// The vacuum wavelength (m).
    pub fn wavelength(&self) -> f64 {
        self.field.wavelength()
    }

    /// The `2B` components as one scalar batch.
    pub fn field(&self) -> &Field<T> {
        &self.field
    }

    /// The components, mutable: scalar elements apply to both alike.
    pub fn field_mut(&mut self) -> &mut Field<T> {
        &mut self.field
    }

    /// The `2B` components.
    pub fn into_field(self) -> Field<T> {
        self.field
    }

    /// `E_x` (`c = 0`) or `E_y` (`c = 1`) of sample `b`.
    pub fn component(&self, b: usize, c: usize) -> &[Complex<T>] {
        self.field.sample(2 * b + c)
    }

    /// Propagates every component with `plan` (any method, onto a grid or a window).
    pub fn propagate(&self, plan: &Planned<T>) -> Result<Self> {
        Self::new(plan.apply(&self.field)?)
    }

    /// `|E_x|² + |E_y|²` of every sample, `[B, Ny, Nx]`.
    pub fn intensity(&self) -> Vec<f64> {
        let n = self.grid().len();
        self.field
            .data()
            .chunks(2 * n)
            .flat_map(|s| {
                let (x, y) = s.split_at(n);
                x.iter()
                    .zip(y)
                    .map(|(a, b)| a.norm_sqr().f64() + b.norm_sqr().f64())
            })
            .collect()
    }

    /// Transverse power `Σ(|E_x|² + |E_y|²)·dx·dy` of every sample.
    pub fn power(&self) -> Vec<f64> {
        let n = self.grid().len();
        let da = self.grid().cell_area();
        self.intensity()
            .chunks(n)
            .map(|s| s.iter().sum::<f64>() * da)
            .collect()
    }

    /// The Stokes images of every sample, `[B, 4, Ny, Nx]` (`S₀ … S₃`, see [`Stokes`]).
    pub fn stokes(&self) -> Vec<f64> {
        let n = self.grid().len();
        let mut out = vec![0.0; 4 * self.batch() * n];
        out.par_chunks_mut(4 * n)
            .zip(self.field.data().par_chunks(2 * n))
            .for_each(|(s, e)| {
                let (x, y) = e.split_at(n);
                for k in 0..n {
                    let v = Stokes::of(
                        Complex::new(x[k].re.f64(), x[k].im.f64()),
                        Complex::new(y[k].re.f64(), y[k].im.f64()),
                    );
                    for (c, value) in v.0.into_iter().enumerate() {
                        s[c * n + k] = value;
                    }
                }
            });
        out
    }

    /// The field passed through an analyser that transmits the state `e` (normalised): the
    /// scalar projection `e†·E` of every sample, `[B, Ny, Nx]`.
    pub fn analyse(&self, e: &JonesVector) -> Result<Field<T>> {
        let e = e.normalised();
        let (ax, ay) = (cplx::<T>(e.0[0].conj()), cplx::<T>(e.0[1].conj()));
        let n = self.grid().len();
        let data = self
            .field
            .data()
            .chunks(2 * n)
            .flat_map(|s| {
                let (x, y) = s.split_at(n);
                x.iter().zip(y).map(move |(&a, &b)| ax * a + ay * b)
            })
            .collect();
        Field::from_vec(data, *self.grid(), self.wavelength())
    }

    /// The longitudinal component `E_z` of every sample in a medium of refractive index
    /// `index`, `[B, Ny, Nx]`: from `∇·E = 0`, each plane wave of the angular spectrum has
    /// `Ẽ_z = −(f_x Ẽ_x + f_y Ẽ_y)/f_z` with `f_z = √((n/λ)² − f_x² − f_y²)` (imaginary for
    /// evanescent waves). The transform is zero-padded to twice the grid (linear, not circular,
    /// derivatives); frequencies within 10⁻⁶ of the cut-off circle, where `E_z/E_⊥` diverges,
    /// are left out. Paraxially `E_z ≈ (i/k)·∂E_x/∂x + (i/k)·∂E_y/∂y`: small for beams much wider
    /// than the wavelength, of the order of `E_⊥` for tight foci.
    pub fn longitudinal(&self, index: f64, cache: &FftCache<T>) -> Result<Field<T>> {
        if !(index.is_finite() && index > 0.0) {
            return Err(invalid(
                "index",
                format!("{index} is not a refractive index; give a positive number"),
            ));
        }
        let g = *self.grid();
        let (my, mx) = (next_fast_len(2 * g.ny), next_fast_len(2 * g.nx));
        memory::check_fits(
            memory::bytes(&[4, my, mx, std::mem::size_of::<Complex<T>>()]),
            || format!("the longitudinal field's {my}×{mx} spectra"),
            "the output is too large for its E_z; crop it or use a coarser grid",
        )?;
        let (fx, fy) = (fft_frequencies(mx, g.dx), fft_frequencies(my, g.dy));
        let k2 = (index / self.wavelength()).powi(2);
        // −f_x/f_z and −f_y/f_z on the padded spectrum, in f64 and rounded once
        let (wx, wy): (Vec<Complex<T>>, Vec<Complex<T>>) = fy
            .iter()
            .flat_map(|&v| fx.iter().map(move |&u| (u, v)))
            .map(|(u, v)| {
                let a = k2 - u * u - v * v;
                if a.abs() < 1e-6 * k2 {
                    return (Complex::default(), Complex::default());
                }
                let fz = if a > 0.0 {
                    Complex::new(a.sqrt(), 0.0)
                } else {
                    Complex::new(0.0, (-a).sqrt())
                };
                (
                    cplx::<T>(-Complex::new(u, 0.0) / fz),
                    cplx::<T>(-Complex::new(v, 0.0) / fz),
                )
            })
            .unzip();
        let fft = Fft2::new(cache, my, mx);
        let n = g.len();
        let scale = T::of(1.0 / (mx * my) as f64);
        let mut out = vec![Complex::default(); self.batch() * n];
        // one pair of padded buffers, reused sample after sample (the FFT runs on all cores)
        let mut px = vec![Complex::default(); mx * my];
        let mut py = vec![Complex::default(); mx * my];
        for (ez, e) in out.chunks_mut(n).zip(self.field.data().chunks(2 * n)) {
            px.fill(Complex::default());
            py.fill(Complex::default());
            for r in 0..g.ny {
                px[r * mx..r * mx + g.nx].copy_from_slice(&e[r * g.nx..(r + 1) * g.nx]);
                py[r * mx..r * mx + g.nx].copy_from_slice(&e[n + r * g.nx..n + (r + 1) * g.nx]);
            }
            fft.forward(&mut px);
            fft.forward(&mut py);
            px.par_iter_mut()
                .zip(py.par_iter())
                .zip(wx.par_iter().zip(wy.par_iter()))
                .for_each(|((x, y), (a, b))| *x = *x * *a + *y * *b);
            fft.inverse(&mut px);
            for r in 0..g.ny {
                for (o, v) in ez[r * g.nx..(r + 1) * g.nx]
                    .iter_mut()
                    .zip(&px[r * mx..r * mx + g.nx])
                {
                    *o = *v * scale;
                }
            }
        }
        Field::from_vec(out, g, self.wavelength())
    }
}

/// The polarisation of the light a scalar field is lit with: coherent (one state per point), or
/// partially polarised (described by its Stokes vector, run as two incoherent coherent modes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Polarisation {
    /// Fully polarised light.
    Coherent(Polarised),
    /// Partially polarised (or unpolarised) light of this normalised Stokes vector.
    Partial(Stokes),
}

impl Polarisation {
    /// The coherent modes to propagate and their weights (the intensities to add): one for
    /// coherent light; for partial light the two of [`Stokes::coherent_modes`] (of `S₀ = 1`),
    /// without a mode of zero weight.
    pub fn modes(&self) -> Result<Vec<(f64, Polarised)>> {
        Ok(match *self {
            Self::Coherent(p) => vec![(1.0, p)],
            Self::Partial(s) => {
                let s = Stokes::new(s.0.map(|v| v / s.0[0]))?;
                s.coherent_modes()?
                    .into_iter()
                    .filter(|(w, _)| *w > 1e-12)
                    .map(|(w, e)| (w, Polarised::Uniform(e)))
                    .collect()
            }
        })
    }
}

impl std::str::FromStr for Polarisation {
    type Err = OpticsError;

    /// A Jones vector's name ([`JonesVector`]'s `x`, `y`, `d`, `a`, `rcp`, `lcp`,
    /// `linear:ANGLE`, `jones:EX,EY`), `radial`, `azimuthal` (about the grid's axis),
    /// `unpolarised`, or `stokes:S0,S1,S2,S3`.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let axis = (0.0, 0.0);
        Ok(match t.as_str() {
            "radial" => Self::Coherent(Polarised::Radial { centre: axis }),
            "azimuthal" => Self::Coherent(Polarised::Azimuthal { centre: axis }),
            "unpolarised" | "unpolarized" | "natural" => Self::Partial(Stokes::unpolarised(1.0)),
            _ => match t.strip_prefix("stokes:") {
                Some(v) => Self::Partial(v.parse()?),
                None => Self::Coherent(Polarised::Uniform(t.parse().map_err(|e| match e {
                    OpticsError::Parse(m) => OpticsError::Parse(format!(
                        "{m}; or radial, azimuthal, unpolarised, stokes:S0,S1,S2,S3"
                    )),
                    e => e,
                })?)),
            },
        })
    }
}
