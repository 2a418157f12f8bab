//! [`Planned`]: a propagation planned onto the input's own grid or onto an output window, for
//! code that takes either (the CLI, holography, exposures of broadband light).

use num_complex::Complex;

use super::{Criterion, Method, Plan, Planner, Propagation, Window, WindowPlan};
use crate::error::{OpticsError, Result};
use crate::field::{Field, Real};
use crate::grid::{Grid, Wave};

/// A propagation planned by [`Planner::plan_onto`]: in place on the input's grid (or a
/// single-FFT method's), or onto an output [`Window`].
#[derive(Debug)]
pub enum Planned<T: Real> {
    /// On the input's grid.
    Grid(Plan<T>),
    /// Onto an output window.
    Window(Box<WindowPlan<T>>),
}

impl<T: Real> Planner<T> {
    /// Plans `propagation` from `grid` at `wave` onto `window` ([`Planner::plan_window`]), or
    /// onto the input's grid ([`Planner::plan`]) when there is none.
    pub fn plan_onto(
        &self,
        grid: &Grid,
        wave: Wave,
        propagation: &Propagation,
        window: Option<&Window>,
    ) -> Result<Planned<T>> {
        Ok(match window {
            Some(w) => Planned::Window(Box::new(self.plan_window(grid, wave, propagation, w)?)),
            None => Planned::Grid(self.plan(grid, wave, propagation)?),
        })
    }
}

impl<T: Real> Planned<T> {
    /// The method run (never `Auto`).
    pub fn method(&self) -> Method {
        match self {
            Planned::Grid(p) => p.method(),
            Planned::Window(w) => w.method(),
        }
    }

    /// The light it was planned for.
    pub fn wave(&self) -> Wave {
        match self {
            Planned::Grid(p) => p.wave(),
            Planned::Window(w) => w.wave(),
        }
    }

    /// Sampling of the input plane.
    pub fn input_grid(&self) -> Grid {
        match self {
            Planned::Grid(p) => p.input_grid(),
            Planned::Window(w) => w.input_grid(),
        }
    }

    /// Sampling of the output plane.
    pub fn output_grid(&self) -> Grid {
        match self {
            Planned::Grid(p) => p.output_grid(),
            Planned::Window(w) => w.window().grid,
        }
    }

    /// Centre of the output plane's samples, metres (off axis for an off-axis window).
    pub fn centre(&self) -> (f64, f64) {
        match self {
            Planned::Grid(_) => (0.0, 0.0),
            Planned::Window(w) => w.window().centre,
        }
    }

    /// Transform size `(my, mx)` after padding.
    pub fn padded_shape(&self) -> (usize, usize) {
        match self {
            Planned::Grid(p) => p.padded_shape(),
            Planned::Window(w) => w.padded_shape(),
        }
    }

    /// The sampling criterion of the method, evaluated for this geometry.
    pub fn criterion(&self) -> &Criterion {
        match self {
            Planned::Grid(p) => &p.criterion,
            Planned::Window(w) => &w.criterion,
        }
    }

    /// For `Auto`: every criterion considered, in order.
    pub fn considered(&self) -> &[Criterion] {
        match self {
            Planned::Grid(p) => &p.considered,
            Planned::Window(w) => &w.considered,
        }
    }

    /// Propagates `input` (`[B, ny, nx]` on the input grid) into `output` (`[B, …]` on the
    /// output grid); a grid plan copies and propagates in place.
    pub fn propagate(&self, input: &[Complex<T>], output: &mut [Complex<T>]) -> Result<()> {
        match self {
            Planned::Grid(p) => {
                if input.len() != output.len() {
                    return Err(OpticsError::Shape(format!(
                        "{} values in, {} out: a propagation on the input's grid keeps the size",
                        input.len(),
                        output.len()
                    )));
                }
                output.copy_from_slice(input);
                p.propagate_in_place(output)
            }
            Planned::Window(w) => w.propagate(input, output),
        }
    }

    /// Runs the propagation (or, with `adjoint`, its adjoint) in place on `buf`, which the
    /// input and output grids must both fit (same sample counts); a window plan goes through
    /// `scratch`, a copy it reuses.
    pub fn run_in_place(
        &self,
        buf: &mut [Complex<T>],
        adjoint: bool,
        scratch: &mut Vec<Complex<T>>,
    ) -> Result<()> {
        match self {
            Planned::Grid(p) if adjoint => p.adjoint_in_place(buf),
            Planned::Grid(p) => p.propagate_in_place(buf),
            Planned::Window(w) => {
                scratch.clear();
                scratch.extend_from_slice(buf);
                if adjoint {
                    w.adjoint(scratch, buf)
                } else {
                    w.propagate(scratch, buf)
                }
            }
        }
    }

    /// Propagates a [`Field`], returning it on the output grid.
    pub fn apply(&self, field: &Field<T>) -> Result<Field<T>> {
        match self {
            Planned::Grid(p) => {
                let mut out = field.clone();
                p.propagate(&mut out)?;
                Ok(out)
            }
            Planned::Window(w) => w.apply(field),
        }
    }
}
