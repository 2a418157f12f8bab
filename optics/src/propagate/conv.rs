//! The convolution propagators (ASM, band-limited ASM, Fresnel TF/IR, Rayleigh–Sommerfeld):
//! `u ↦ crop(F⁻¹ H F pad(u))` on the shared pruned engine. Only the transfer function differs.

use std::sync::Arc;

use num_complex::Complex;

use super::kernels::{Padded, transfer};
use super::{Evanescent, Method, Propagator, Spectral, Stages, batch_of};
use crate::error::Result;
use crate::fft::{Engine, Op};
use crate::field::{Real, cplx};
use crate::grid::{Grid, Wave};

/// A convolution propagator; the output grid is the input grid.
#[derive(Debug)]
pub(super) struct Convolution<T: Real> {
    method: Method,
    grid: Grid,
    wave: Wave,
    engine: Arc<Engine<T>>,
    /// `H/(my·mx)`, transposed to `[mx][my]` for the engine's column pass; conjugated for z < 0.
    h: Vec<Complex<T>>,
}

impl<T: Real> Convolution<T> {
    pub(super) fn new(
        method: Method,
        grid: Grid,
        wave: Wave,
        (z, band_limit): (f64, Option<f64>),
        evanescent: Evanescent,
        engine: Arc<Engine<T>>,
    ) -> Result<Self> {
        let (my, mx) = engine.padded();
        let padded = Padded {
            my,
            mx,
            dy: grid.dy,
            dx: grid.dx,
        };
        let h64 = transfer(method, &padded, wave, (z, band_limit), evanescent)?;
        let scale = 1.0 / (my * mx) as f64;
        let mut h = vec![Complex::default(); my * mx];
        for r in 0..my {
            for c in 0..mx {
                let v = h64[r * mx + c] * scale;
                h[c * my + r] = cplx(if z < 0.0 { v.conj() } else { v });
            }
        }
        Ok(Self {
            method,
            grid,
            wave,
            engine,
            h,
        })
    }

    fn run(&self, data: &mut [Complex<T>], conj: bool) -> Result<()> {
        batch_of(data, &self.grid)?;
        self.engine
            .run(data, &Op::Convolve { h: &self.h, conj }, None, None);
        Ok(())
    }
}

impl<T: Real> Propagator<T> for Convolution<T> {
    fn method(&self) -> Method {
        self.method
    }
    fn input_grid(&self) -> Grid {
        self.grid
    }
    fn output_grid(&self) -> Grid {
        self.grid
    }
    fn wave(&self) -> Wave {
        self.wave
    }
    fn padded_shape(&self) -> (usize, usize) {
        self.engine.padded()
    }
    fn propagate_in_place(&self, data: &mut [Complex<T>]) -> Result<()> {
        self.run(data, false)
    }
    fn adjoint_in_place(&self, data: &mut [Complex<T>]) -> Result<()> {
        self.run(data, true)
    }
    fn stages(&self, adjoint: bool) -> Stages<T> {
        let (my, mx) = self.engine.padded();
        // `h` is held transposed, `[mx][my]`; the stages hold it row-major `[my][mx]`.
        let h = (0..my * mx)
            .map(|i| self.h[(i % mx) * my + i / mx])
            .map(|h| if adjoint { h.conj() } else { h })
            .collect();
        Stages {
            shape: (self.grid.ny, self.grid.nx),
            padded: (my, mx),
            offset: self.engine.offset(),
            load: None,
            spectral: Spectral::Convolve(h),
            store: None,
        }
    }
}
