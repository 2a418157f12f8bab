//! Transfer functions and impulse responses of the convolution methods, computed in f64.
//!
//! Every function here works for `z ≥ 0`; negative distances are handled once, by the caller,
//! as the complex conjugate (`H(−z) = conj H(|z|)`, the adjoint).

use std::f64::consts::PI;

use num_complex::Complex;

use super::{Evanescent, Method, Window};
use crate::error::{OpticsError, Result};
use crate::fft::{Fft2, FftCache};
use crate::field::Field;
use crate::grid::{Grid, Wave, fft_frequencies};

type C64 = Complex<f64>;

/// The padded transform the kernels are sampled on: `my × mx` samples at the field's pitch.
pub(super) struct Padded {
    pub my: usize,
    pub mx: usize,
    pub dy: f64,
    pub dx: f64,
}

/// Transfer function `H[fy, fx]` of `method` over `|z|` on the padded grid, row-major
/// `[my][mx]`, FFT order; band-limited ASM cuts at the limit of `band_distance` if given, else of
/// `|z|`. The caller conjugates for negative distances.
pub(super) fn transfer(
    method: Method,
    p: &Padded,
    wave: Wave,
    (z, band_distance): (f64, Option<f64>),
    evanescent: Evanescent,
) -> Result<Vec<C64>> {
    let z = z.abs();
    let zb = band_distance.unwrap_or(z);
    let (fy, fx) = (fft_frequencies(p.my, p.dy), fft_frequencies(p.mx, p.dx));
    let lam = wave.lambda();
    let k = wave.k();
    let from_fn = |h: &dyn Fn(f64, f64) -> C64| -> Vec<C64> {
        fy.iter()
            .flat_map(|&v| fx.iter().map(move |&u| h(v, u)))
            .collect()
    };
    let asm = |v: f64, u: f64| -> C64 {
        let s2 = (lam * u).powi(2) + (lam * v).powi(2);
        if s2 <= 1.0 {
            C64::from_polar(1.0, k * z * (1.0 - s2).sqrt())
        } else {
            match evanescent {
                Evanescent::Decay => C64::from((-k * z * (s2 - 1.0).sqrt()).exp()),
                Evanescent::Drop => C64::default(),
            }
        }
    };
    Ok(match method {
        Method::Asm => from_fn(&asm),
        Method::BandLimitedAsm => {
            let (ux, uy) = (
                band_limit(lam, zb, p.mx as f64 * p.dx),
                band_limit(lam, zb, p.my as f64 * p.dy),
            );
            from_fn(&|v, u| {
                if u.abs() <= ux && v.abs() <= uy {
                    asm(v, u)
                } else {
                    C64::default()
                }
            })
        }
        Method::FresnelTf => {
            let phase0 = k * z;
            from_fn(&|v, u| C64::from_polar(1.0, phase0 - PI * lam * z * (u * u + v * v)))
        }
        Method::FresnelIr | Method::RayleighSommerfeld => {
            if z == 0.0 {
                return Err(OpticsError::InvalidParameter {
                    name: "distance",
                    problem: format!(
                        "{method} needs a non-zero distance (its kernel is singular at z = 0)"
                    ),
                });
            }
            impulse_transfer(p, |x, y| {
                if method == Method::FresnelIr {
                    fresnel_impulse(x, y, z, wave)
                } else {
                    rs_kernel(x, y, z, wave)
                }
            })
        }
        Method::Auto | Method::FresnelSingleFft | Method::Fraunhofer | Method::Sas => {
            unreachable!("{method} has no convolution transfer function")
        }
    })
}

/// The band limit `1/(λ√((2z/W)² + 1))` of Matsushima & Shimobaba (2009) for a padded window
/// of width `w`: beyond it the transfer function's chirp is undersampled and the light it
/// carries would leave the window.
pub(super) fn band_limit(lambda: f64, z: f64, w: f64) -> f64 {
    1.0 / (lambda * ((2.0 * z / w).powi(2) + 1.0).sqrt())
}

/// Fresnel impulse response `exp(ikz)/(iλz)·exp(iπ(x² + y²)/(λz))`, 1/m².
pub(super) fn fresnel_impulse(x: f64, y: f64, z: f64, wave: Wave) -> C64 {
    let lam = wave.lambda();
    let pre = C64::from_polar(1.0, wave.k() * z) / C64::new(0.0, lam * z);
    pre * C64::from_polar(1.0, PI * (x * x + y * y) / (lam * z))
}

/// Rayleigh–Sommerfeld (first kind) impulse response
/// `h = z/(2π r²)·(1/r − ik)·exp(ikr)`, `r = √(x² + y² + z²)`, in 1/m² — the field at
/// `(x, y, z)` is `∬ U(ξ, η, 0)·h(x − ξ, y − η) dξ dη`. For `z < 0` it returns
/// `conj h(|z|)` (back-propagation as the adjoint).
pub fn rs_kernel(x: f64, y: f64, z: f64, wave: Wave) -> C64 {
    let za = z.abs();
    let k = wave.k();
    let r2 = x * x + y * y + za * za;
    let r = r2.sqrt();
    let h = za / (2.0 * PI * r2) * C64::new(1.0 / r, -k) * C64::from_polar(1.0, k * r);
    if z < 0.0 { h.conj() } else { h }
}

/// FFT of an impulse response sampled on the padded grid with wrap-around displacements,
/// times the cell area: the discrete convolution's transfer function, `[my][mx]`.
fn impulse_transfer(p: &Padded, h: impl Fn(f64, f64) -> C64) -> Vec<C64> {
    let disp = |m: usize, d: f64| -> Vec<f64> {
        (0..m)
            .map(|k| if k < m.div_ceil(2) { k as f64 } else { k as f64 - m as f64 } * d)
            .collect()
    };
    let (ys, xs) = (disp(p.my, p.dy), disp(p.mx, p.dx));
    let area = p.dx * p.dy;
    let mut out: Vec<C64> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
        .map(|(x, y)| h(x, y) * area)
        .collect();
    let cache = FftCache::<f64>::default();
    Fft2::new(&cache, p.my, p.mx).forward(&mut out);
    out
}

/// The Rayleigh–Sommerfeld integral by direct summation, `O(N⁴)`: the reference the FFT
/// methods are tested against. Output on the input's grid; every field of the batch.
pub fn rs_direct(field: &Field<f64>, wave: Wave, z: f64) -> Result<Field<f64>> {
    rs_direct_window(field, wave, z, &Window::on_axis(*field.grid()))
}

/// The Rayleigh–Sommerfeld integral by direct summation onto the points of `window`,
/// `O(N²·K²)`: the reference the window methods are tested against. Every field of the batch.
pub fn rs_direct_window(
    field: &Field<f64>,
    wave: Wave,
    z: f64,
    window: &Window,
) -> Result<Field<f64>> {
    let g: Grid = *field.grid();
    let (xs, ys) = (g.x(), g.y());
    let (wx, wy) = (window.x(), window.y());
    let area = g.cell_area();
    let mut out = Field::zeros(window.grid, field.wavelength(), field.batch())?;
    for b in 0..field.batch() {
        let src = field.sample(b);
        let dst = out.sample_mut(b);
        for (i, &y) in wy.iter().enumerate() {
            for (j, &x) in wx.iter().enumerate() {
                let mut acc = C64::default();
                for (ii, &eta) in ys.iter().enumerate() {
                    for (jj, &xi) in xs.iter().enumerate() {
                        let u = src[ii * g.nx + jj];
                        if u != C64::default() {
                            acc += u * rs_kernel(x - xi, y - eta, z, wave);
                        }
                    }
                }
                dst[i * window.grid.nx + j] = acc * area;
            }
        }
    }
    Ok(out)
}
