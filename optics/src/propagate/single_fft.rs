//! Single-FFT propagators (Fresnel and Fraunhofer): `u₂ = C·Q₂ ⊙ DFT(Q₁ ⊙ pad(u₁))`, cropped,
//! with output pitch `λ|z|/(M·dx)`.
//!
//! With centred coordinates `x₁ = (j − c)dx₁`, `x₂ = (k − c)dx₂` (`c = ⌊M/2⌋`), the kernel
//! `exp(−2πi·x₁x₂/(λz)) = exp(−2πi·s(j − c)(k − c)/M)` (`s = sign z`) is an FFT in direction `s`
//! times separable phase ramps, which are folded into the input and output weights together
//! with the chirps `Q₁ = exp(iπx₁²/(λz))` (Fresnel only), `Q₂ = exp(iπx₂²/(λz))` and the
//! constant `C = exp(ikz)/(iλz)·dx₁dy₁`. Every factor is separable in x and y.

use std::f64::consts::{PI, TAU};
use std::sync::Arc;

use num_complex::Complex;
use rustfft::FftDirection;

use super::{Method, Propagator, Spectral, Stages, batch_of};
use crate::error::{Result, invalid};
use crate::fft::{Engine, Op, Separable};
use crate::field::{Real, cplx};
use crate::grid::{Grid, Wave, centred};

type C64 = Complex<f64>;

#[derive(Debug)]
pub(super) struct SingleFft<T: Real> {
    method: Method,
    input: Grid,
    output: Grid,
    wave: Wave,
    engine: Arc<Engine<T>>,
    direction: FftDirection,
    load: Separable<T>,
    store: Separable<T>,
    adjoint_load: Separable<T>,
    adjoint_store: Separable<T>,
}

impl<T: Real> SingleFft<T> {
    pub(super) fn new(
        method: Method,
        input: Grid,
        wave: Wave,
        z: f64,
        engine: Arc<Engine<T>>,
    ) -> Result<Self> {
        if z == 0.0 {
            return Err(invalid(
                "distance",
                format!("{method} needs a non-zero distance; use bl-asm for z = 0"),
            ));
        }
        let (my, mx) = engine.padded();
        let lam = wave.lambda();
        let s = z.signum();
        let output = Grid::new(
            input.nx,
            input.ny,
            lam * z.abs() / (mx as f64 * input.dx),
            lam * z.abs() / (my as f64 * input.dy),
        )?;
        let chirp = method == Method::FresnelSingleFft;
        // One axis: load weights (ramp · Q₁) and store weights (ramp · ramp₀ · Q₂).
        let axis = |n: usize, m: usize, d1: f64, d2: f64| -> (Vec<C64>, Vec<C64>) {
            let c = (m / 2) as f64;
            let o = (m / 2 - n / 2) as f64;
            let x1 = centred(n, d1);
            let x2 = centred(n, d2);
            let load = x1
                .iter()
                .enumerate()
                .map(|(j, &x)| {
                    let q1 = if chirp { PI * x * x / (lam * z) } else { 0.0 };
                    C64::from_polar(1.0, s * TAU * (j as f64 + o) * c / m as f64 + q1)
                })
                .collect();
            let store = x2
                .iter()
                .enumerate()
                .map(|(k, &x)| {
                    let ramp = s * TAU * (c * (k as f64 + o) - c * c) / m as f64;
                    C64::from_polar(1.0, ramp + PI * x * x / (lam * z))
                })
                .collect();
            (load, store)
        };
        let (ly, mut sy) = axis(input.ny, my, input.dy, output.dy);
        let (lx, sx) = axis(input.nx, mx, input.dx, output.dx);
        let constant =
            C64::from_polar(1.0, wave.k() * z) / C64::new(0.0, lam * z) * input.cell_area();
        for v in &mut sy {
            *v *= constant;
        }
        let cast = |v: &[C64]| v.iter().map(|&z| cplx::<T>(z)).collect::<Vec<_>>();
        let load = Separable {
            wy: cast(&ly),
            wx: cast(&lx),
        };
        let store = Separable {
            wy: cast(&sy),
            wx: cast(&sx),
        };
        Ok(Self {
            method,
            input,
            output,
            wave,
            engine,
            direction: if s > 0.0 {
                FftDirection::Forward
            } else {
                FftDirection::Inverse
            },
            adjoint_load: store.conj(),
            adjoint_store: load.conj(),
            load,
            store,
        })
    }
}

impl<T: Real> Propagator<T> for SingleFft<T> {
    fn method(&self) -> Method {
        self.method
    }
    fn input_grid(&self) -> Grid {
        self.input
    }
    fn output_grid(&self) -> Grid {
        self.output
    }
    fn wave(&self) -> Wave {
        self.wave
    }
    fn padded_shape(&self) -> (usize, usize) {
        self.engine.padded()
    }
    fn propagate_in_place(&self, data: &mut [Complex<T>]) -> Result<()> {
        batch_of(data, &self.input)?;
        self.engine.run(
            data,
            &Op::Transform(self.direction),
            Some(&self.load),
            Some(&self.store),
        );
        Ok(())
    }
    fn adjoint_in_place(&self, data: &mut [Complex<T>]) -> Result<()> {
        batch_of(data, &self.output)?;
        let back = match self.direction {
            FftDirection::Forward => FftDirection::Inverse,
            FftDirection::Inverse => FftDirection::Forward,
        };
        self.engine.run(
            data,
            &Op::Transform(back),
            Some(&self.adjoint_load),
            Some(&self.adjoint_store),
        );
        Ok(())
    }
    fn stages(&self, adjoint: bool) -> Stages<T> {
        let (load, store) = if adjoint {
            (&self.adjoint_load, &self.adjoint_store)
        } else {
            (&self.load, &self.store)
        };
        Stages {
            shape: (self.input.ny, self.input.nx),
            padded: self.engine.padded(),
            offset: self.engine.offset(),
            load: Some(load.clone()),
            spectral: Spectral::Dft {
                inverse: (self.direction == FftDirection::Inverse) != adjoint,
            },
            store: Some(store.clone()),
        }
    }
}
