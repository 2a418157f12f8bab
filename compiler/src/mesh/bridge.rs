//! The co-design bridge: a diffractive system as the matrix a photonic chip implements.
//!
//! Free-space propagation and thin masks are linear in the field, so a diffractive system of
//! `nx × ny` pixels is one `K × K` complex matrix, `K = nx·ny`, from the input-plane field to
//! the detector-plane field (both row-major, row 0 at the most negative y). Column `j` is the
//! detector-plane field of a unit impulse at input pixel `j`, computed in f64 with the
//! system's own propagators and masks; the matrix is then compiled like any other (an SVD
//! mesh: it is not unitary — padding lets light leave the window). [`forward`] runs the system
//! on fields directly, so the two can be compared on the same inputs.

use num_complex::Complex64 as C;
use photonflow_optics::{Field, OpticalSystem, Planner};

use super::matrix::CMatrix;
use crate::error::{CompileError, Result};

/// The largest system the bridge compiles: `K = nx·ny` modes (a 32 × 32 grid).
pub const MAX_MODES: usize = 1024;

/// Runs `system` on a batch of input fields (`data`: whole `nx·ny` fields, row-major, one after
/// the other), f64: every gap propagated with the system's method and padding, every layer's
/// transmission applied. Returns the detector-plane fields.
pub fn forward(system: &OpticalSystem, data: Vec<C>) -> Result<Vec<C>> {
    let (method, _) = system.propagation.parse()?;
    if method.changes_sampling() {
        return Err(CompileError::Design(format!(
            "the system propagates with {}, whose output sampling differs from its input; the \
             bridge needs a convolution method (bl-asm, asm, fresnel-tf, fresnel-ir, rs)",
            method.name()
        )));
    }
    let grid = system.grid()?;
    let wave = system.wave()?;
    let planner = Planner::<f64>::new();
    let plans = system
        .propagations()?
        .iter()
        .map(|p| planner.plan(&grid, wave, p))
        .collect::<photonflow_optics::Result<Vec<_>>>()?;
    let mut field = Field::from_vec(data, grid, system.wavelength_m)?;
    let k = system.nx * system.ny;
    plans[0].propagate(&mut field)?;
    for (layer, plan) in system.layers.iter().zip(&plans[1..]) {
        let t: Vec<C> = layer
            .transmission()
            .iter()
            .map(|v| C::new(v.re.into(), v.im.into()))
            .collect();
        for sample in field.data_mut().chunks_exact_mut(k) {
            for (u, t) in sample.iter_mut().zip(&t) {
                *u *= t;
            }
        }
        plan.propagate(&mut field)?;
    }
    Ok(field.into_vec())
}

/// The `K × K` transfer matrix of `system` (see the module docs); refused above
/// [`MAX_MODES`].
pub fn system_matrix(system: &OpticalSystem) -> Result<CMatrix> {
    let k = system.nx * system.ny;
    if k > MAX_MODES {
        return Err(CompileError::Design(format!(
            "a {}×{} system is a {k}×{k} matrix, a mesh of {k} modes; the bridge compiles up \
             to {MAX_MODES} modes (a 32×32 grid) — design a smaller system for a chip",
            system.nx, system.ny
        )));
    }
    let mut impulses = vec![C::new(0.0, 0.0); k * k];
    for j in 0..k {
        impulses[j * k + j] = C::new(1.0, 0.0);
    }
    // Sample j holds column j of the matrix.
    let columns = forward(system, impulses)?;
    let mut m = CMatrix::zeros(k, k);
    for (j, column) in columns.chunks_exact(k).enumerate() {
        for (i, &v) in column.iter().enumerate() {
            m.data[i * k + j] = v;
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{Method, decompose_svd};
    use photonflow_optics::system::Layer;

    fn system() -> OpticalSystem {
        let n = 6;
        let mut s = OpticalSystem::new("bridge", 0.75e-3, n, n, 0.4e-3).unwrap();
        s.input.distance_m = 3e-3;
        for l in 0..2 {
            let phase = (0..n * n)
                .map(|i| ((i * 7 + l * 3) % 11) as f32 * 0.57)
                .collect();
            s.layers
                .push(Layer::phase_only(format!("layer{l}"), phase, 3e-3));
        }
        s
    }

    #[test]
    fn the_matrix_acts_on_fields_as_the_system_does_and_compiles_into_a_mesh() {
        let s = system();
        let m = system_matrix(&s).unwrap();
        let k = 36;
        assert_eq!((m.rows, m.cols), (k, k));
        // Three random input fields through the system and through the matrix.
        let inputs: Vec<C> = (0..3 * k)
            .map(|i| C::new((i as f64 * 0.37).sin(), (i as f64 * 0.91).cos()))
            .collect();
        let out = forward(&s, inputs.clone()).unwrap();
        for b in 0..3 {
            let x = &inputs[b * k..(b + 1) * k];
            for i in 0..k {
                let mx: C = (0..k).map(|j| m.at(i, j) * x[j]).sum();
                assert!((mx - out[b * k + i]).norm() < 1e-12, "{b} {i}");
            }
        }
        // Padding lets light leave: the matrix is a contraction, not unitary.
        let (mesh, info) = decompose_svd(&m, Method::Clements).unwrap();
        assert!(info.scale <= 1.0 + 1e-9 && info.singular_values[k - 1] < 0.999);
        let chip = info.implemented(&mesh.matrix());
        assert!(chip.relative_error(&m) < 1e-10);
    }

    #[test]
    fn large_systems_and_single_fft_methods_are_refused() {
        let big = OpticalSystem::new("big", 0.75e-3, 40, 40, 0.4e-3).unwrap();
        let e = system_matrix(&big).unwrap_err().to_string();
        assert!(e.contains("1600×1600") && e.contains("1024"), "{e}");
        let mut far = system();
        far.propagation.method = "fraunhofer".into();
        let e = system_matrix(&far).unwrap_err().to_string();
        assert!(
            e.contains("fraunhofer") && e.contains("convolution method"),
            "{e}"
        );
    }
}
