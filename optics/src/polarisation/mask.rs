//! [`JonesMask`]: a thin element whose Jones matrix varies across the plane — a patterned
//! retarder, a q-plate, a geometric-phase (Pancharatnam–Berry) metasurface, a birefringent
//! meta-atom array, a micro-polariser array.

use num_complex::Complex;
use rayon::prelude::*;

use super::field::VectorField;
use super::jones::JonesMatrix;
use crate::error::{OpticsError, Result, invalid};
use crate::field::{Real, cplx};
use crate::grid::Grid;
use crate::units::parse_angle;

/// A Jones matrix per sample of a grid, `[Ny, Nx]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct JonesMask {
    grid: Grid,
    m: Vec<JonesMatrix>,
}

impl JonesMask {
    /// A mask from its matrices, `[Ny, Nx]` row-major; refused when the count does not match
    /// the grid or an entry is not finite.
    pub fn new(grid: Grid, m: Vec<JonesMatrix>) -> Result<Self> {
        if m.len() != grid.len() {
            return Err(OpticsError::Shape(format!(
                "a Jones mask of {} matrices for a {}×{} grid",
                m.len(),
                grid.ny,
                grid.nx
            )));
        }
        if let Some(k) = m.iter().position(|j| !j.is_finite()) {
            return Err(invalid(
                "Jones mask",
                format!(
                    "the matrix at row {}, column {} is not finite; clean the mask",
                    k / grid.nx,
                    k % grid.nx
                ),
            ));
        }
        Ok(Self { grid, m })
    }

    /// The matrix `f(x, y)` at every sample position (m).
    pub fn from_fn(grid: Grid, f: impl Fn(f64, f64) -> JonesMatrix) -> Result<Self> {
        let (xs, ys) = (grid.x(), grid.y());
        let m = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Self::new(grid, m)
    }

    /// The same element everywhere (a waveplate, a polariser filling the aperture).
    pub fn uniform(grid: Grid, j: JonesMatrix) -> Result<Self> {
        Self::new(grid, vec![j; grid.len()])
    }

    /// Birefringent pixels (meta-atoms, liquid-crystal cells): per sample the phases along the
    /// fast and slow axes and the fast axis' angle (radians), [`JonesMatrix::birefringent`].
    pub fn birefringent(grid: Grid, fast: &[f64], slow: &[f64], angle: &[f64]) -> Result<Self> {
        for (name, v) in [("fast", fast), ("slow", slow), ("angle", angle)] {
            if v.len() != grid.len() {
                return Err(OpticsError::Shape(format!(
                    "the {name} map has {} samples for a {}×{} grid",
                    v.len(),
                    grid.ny,
                    grid.nx
                )));
            }
        }
        let m = (0..grid.len())
            .map(|k| JonesMatrix::birefringent(fast[k], slow[k], angle[k]))
            .collect();
        Self::new(grid, m)
    }

    /// A geometric-phase (Pancharatnam–Berry) element: half-wave pixels whose fast axis is at
    /// `phase/2`. Left circular light leaves right circular with the phase `+phase`, right
    /// circular light leaves left circular with `−phase` — a lens or grating for one
    /// handedness is its opposite for the other.
    pub fn geometric_phase(grid: Grid, phase: &[f64]) -> Result<Self> {
        let half: Vec<f64> = phase.iter().map(|p| 0.5 * p).collect();
        let pi = vec![std::f64::consts::PI; grid.len()];
        Self::birefringent(grid, &vec![0.0; grid.len()], &pi, &half)
    }

    /// A q-plate (Marrucci et al., PRL 96, 163905 (2006)): a retarder of `retardance` whose fast
    /// axis turns with the azimuth `φ` about `centre`, at `q·φ + alpha` (radians). With a
    /// half-wave retardance circular light leaves with the other handedness and the vortex
    /// `exp(±2iqφ)`; in general the fraction `sin²(δ/2)` is converted.
    pub fn q_plate(
        grid: Grid,
        q: f64,
        alpha: f64,
        retardance: f64,
        centre: (f64, f64),
    ) -> Result<Self> {
        if !(q.is_finite() && alpha.is_finite() && retardance.is_finite()) {
            return Err(invalid(
                "q-plate",
                "q, the axis offset and the retardance must be finite numbers",
            ));
        }
        Self::from_fn(grid, |x, y| {
            JonesMatrix::retarder(retardance, q * (y - centre.1).atan2(x - centre.0) + alpha)
        })
    }

    /// A micro-polariser array: the `pattern` of transmission angles (radians) repeated over
    /// the grid (`pattern[r][c]` on the rows ≡ r and columns ≡ c modulo its size), each a
    /// diattenuator of intensity extinction ratio `extinction` (∞ for ideal polarisers).
    pub fn micro_polarisers(grid: Grid, pattern: &[Vec<f64>], extinction: f64) -> Result<Self> {
        if pattern.is_empty()
            || pattern[0].is_empty()
            || pattern.iter().any(|r| r.len() != pattern[0].len())
        {
            return Err(invalid(
                "pattern",
                "give a rectangular, non-empty pattern of polariser angles",
            ));
        }
        let block = extinction_amplitude(extinction)?;
        let (pr, pc) = (pattern.len(), pattern[0].len());
        let m = (0..grid.len())
            .map(|k| {
                let (r, c) = (k / grid.nx, k % grid.nx);
                JonesMatrix::diattenuator(1.0, block, pattern[r % pr][c % pc])
            })
            .collect();
        Self::new(grid, m)
    }

    /// The grid it is sampled on.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The matrices, `[Ny, Nx]` row-major.
    pub fn matrices(&self) -> &[JonesMatrix] {
        &self.m
    }

    /// `self` after `first`: the mask of the two elements in contact (`first` acts first).
    pub fn then(&self, first: &JonesMask) -> Result<Self> {
        self.check_grid(&first.grid)?;
        let m = self.m.iter().zip(&first.m).map(|(a, b)| *a * *b).collect();
        Self::new(self.grid, m)
    }

    fn check_grid(&self, grid: &Grid) -> Result<()> {
        if *grid == self.grid {
            Ok(())
        } else {
            Err(OpticsError::Shape(format!(
                "a Jones mask sampled on {}×{} at {:e} × {:e} m met a field on {}×{} at {:e} × {:e} m; \
                 sample the mask on the field's grid",
                self.grid.ny,
                self.grid.nx,
                self.grid.dx,
                self.grid.dy,
                grid.ny,
                grid.nx,
                grid.dx,
                grid.dy
            )))
        }
    }

    /// Multiplies every sample of `field` by its matrix (in place; rayon over the batch and
    /// rows). The field must be on the mask's grid.
    pub fn apply<T: Real>(&self, field: &mut VectorField<T>) -> Result<()> {
        self.check_grid(field.grid())?;
        let g = self.grid;
        let n = g.len();
        let m: Vec<[Complex<T>; 4]> = self
            .m
            .iter()
            .map(|j| {
                let [[a, b], [c, d]] = j.0;
                [cplx(a), cplx(b), cplx(c), cplx(d)]
            })
            .collect();
        field
            .field_mut()
            .data_mut()
            .par_chunks_mut(2 * n)
            .for_each(|sample| {
                let (x, y) = sample.split_at_mut(n);
                x.par_chunks_mut(g.nx)
                    .zip(y.par_chunks_mut(g.nx))
                    .zip(m.par_chunks(g.nx))
                    .for_each(|((x, y), m)| {
                        for ((x, y), [a, b, c, d]) in x.iter_mut().zip(y.iter_mut()).zip(m) {
                            let (u, v) = (*x, *y);
                            *x = *a * u + *b * v;
                            *y = *c * u + *d * v;
                        }
                    });
            });
        Ok(())
    }
}

/// The blocked amplitude of a polariser of intensity extinction ratio `extinction` (≥ 1, ∞ for
/// an ideal polariser).
pub(crate) fn extinction_amplitude(extinction: f64) -> Result<f64> {
    if extinction.is_nan() || extinction < 1.0 {
        return Err(invalid(
            "extinction ratio",
            format!(
                "{extinction}: the intensity extinction ratio of a polariser is at least 1 \
                 (e.g. 100 for a wire grid, inf for an ideal polariser)"
            ),
        ));
    }
    Ok(extinction.recip().sqrt())
}

/// A Jones element by name, as the CLI and configuration files write it, to be sampled on a
/// field's grid ([`JonesElement::mask`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JonesElement {
    /// The same matrix everywhere: a polariser, waveplate, retarder or rotator.
    Uniform(JonesMatrix),
    /// A q-plate about the grid's axis ([`JonesMask::q_plate`]).
    QPlate {
        /// Its topological charge: the fast axis turns by `q` turns per turn about the axis.
        q: f64,
        /// The fast axis' angle along x (radians).
        alpha: f64,
        /// Its retardance (radians; π converts all circular light).
        retardance: f64,
    },
}

impl JonesElement {
    /// The element sampled on `grid`.
    pub fn mask(&self, grid: Grid) -> Result<JonesMask> {
        match *self {
            Self::Uniform(j) => JonesMask::uniform(grid, j),
            Self::QPlate {
                q,
                alpha,
                retardance,
            } => JonesMask::q_plate(grid, q, alpha, retardance, (0.0, 0.0)),
        }
    }
}

impl std::str::FromStr for JonesElement {
    type Err = OpticsError;

    /// `polariser:ANGLE[,EXTINCTION]`, `hwp:ANGLE`, `qwp:ANGLE` (fast axes), `retarder:DELAY,ANGLE`,
    /// `rotator:ANGLE`, `qplate:Q[,ALPHA[,DELAY]]` (default α = 0, a half-wave delay); angles
    /// with their unit (`45deg`, `0.5rad`), e.g. `polariser:45deg`, `retarder:90deg,30deg`,
    /// `qplate:0.5`.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let usage = "use polariser:ANGLE[,EXTINCTION], hwp:ANGLE, qwp:ANGLE, retarder:DELAY,ANGLE, \
                     rotator:ANGLE or qplate:Q[,ALPHA[,DELAY]], with angles in deg or rad \
                     (e.g. polariser:45deg, qplate:0.5)";
        let (name, args) = t
            .split_once(':')
            .ok_or_else(|| OpticsError::Parse(format!("'{s}' is not a Jones element; {usage}")))?;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let count = |lo: usize, hi: usize| {
            if (lo..=hi).contains(&args.len()) {
                Ok(())
            } else {
                Err(OpticsError::Parse(format!(
                    "'{s}' has {} argument(s) where {name} takes {}; {usage}",
                    args.len(),
                    if lo == hi {
                        format!("{lo}")
                    } else {
                        format!("{lo} to {hi}")
                    }
                )))
            }
        };
        let angle = |k: usize| parse_angle(args[k]);
        Ok(match name {
            "polariser" | "polarizer" | "analyser" | "analyzer" => {
                count(1, 2)?;
                let block = match args.get(1) {
                    Some(e) => extinction_amplitude(e.parse().map_err(|_| {
                        OpticsError::Parse(format!(
                            "'{e}' in '{s}' is not an extinction ratio; give a number ≥ 1, e.g. 1000"
                        ))
                    })?)?,
                    None => 0.0,
                };
                Self::Uniform(JonesMatrix::diattenuator(1.0, block, angle(0)?))
            }
            "hwp" => {
                count(1, 1)?;
                Self::Uniform(JonesMatrix::half_wave(angle(0)?))
            }
            "qwp" => {
                count(1, 1)?;
                Self::Uniform(JonesMatrix::quarter_wave(angle(0)?))
            }
            "retarder" => {
                count(2, 2)?;
                Self::Uniform(JonesMatrix::retarder(angle(0)?, angle(1)?))
            }
            "rotator" => {
                count(1, 1)?;
                Self::Uniform(JonesMatrix::rotator(angle(0)?))
            }
            "qplate" | "q-plate" => {
                count(1, 3)?;
                let q: f64 = args[0].parse().ok().filter(|q: &f64| q.is_finite()).ok_or_else(|| {
                    OpticsError::Parse(format!(
                        "'{}' in '{s}' is not a q-plate's charge; give a number such as 0.5 or 1",
                        args[0]
                    ))
                })?;
                Self::QPlate {
                    q,
                    alpha: if args.len() > 1 { angle(1)? } else { 0.0 },
                    retardance: if args.len() > 2 {
                        angle(2)?
                    } else {
                        std::f64::consts::PI
                    },
                }
            }
            _ => {
                return Err(OpticsError::Parse(format!(
                    "unknown Jones element '{name}' in '{s}'; {usage}"
                )));
            }
        })
    }
}
