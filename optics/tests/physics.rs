//! Propagators tested against physics: analytic beams and diffraction patterns, self-imaging,
//! energy conservation, reversibility, the direct Rayleigh–Sommerfeld integral and adjoints.

use std::f64::consts::PI;

use num_complex::Complex;
use photonflow_optics::elements::{CircularAperture, ElementExt};
use photonflow_optics::propagate::{Evanescent, Window, rs_direct};
use photonflow_optics::sources::GaussianBeam;
use photonflow_optics::{Field, Grid, Method, Padding, Planner, Propagation, Real, Wave};

type C64 = Complex<f64>;

fn gaussian<T: Real>(grid: Grid, wave: Wave, w0: f64) -> Field<T> {
    let beam = GaussianBeam {
        waist: w0,
        waist_z: 0.0,
        centre: (0.0, 0.0),
        amplitude: 1.0,
    };
    beam.field(&grid, wave).unwrap()
}

/// Second-moment 1/e² radius along x: w = 2·√⟨x²⟩.
fn radius_x<T: Real>(f: &Field<T>) -> f64 {
    let g = f.grid();
    let xs = g.x();
    let (mut m2, mut m0) = (0.0, 0.0);
    for row in f.sample(0).chunks_exact(g.nx) {
        for (z, &x) in row.iter().zip(&xs) {
            let p = z.norm_sqr().f64();
            m0 += p;
            m2 += p * x * x;
        }
    }
    2.0 * (m2 / m0).sqrt()
}

fn centre_value<T: Real>(f: &Field<T>) -> C64 {
    let g = f.grid();
    let z = f.sample(0)[(g.ny / 2) * g.nx + g.nx / 2];
    C64::new(z.re.f64(), z.im.f64())
}

fn gaussian_beam_matches_analytic<T: Real>() {
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let grid = Grid::square(256, 4e-6).unwrap();
    let w0 = 50e-6;
    let beam = GaussianBeam {
        waist: w0,
        waist_z: 0.0,
        centre: (0.0, 0.0),
        amplitude: 1.0,
    };
    let zr = beam.rayleigh_range(wave);
    let planner = Planner::<T>::new();
    for z in [0.5 * zr, zr, 2.0 * zr, -zr] {
        let mut f = gaussian::<T>(grid, wave, w0);
        let plan = planner.plan(&grid, wave, &Propagation::new(z)).unwrap();
        plan.propagate(&mut f).unwrap();
        let w = radius_x(&f);
        let w_exact = beam.radius_at(z, wave);
        assert!(
            (w / w_exact - 1.0).abs() < 1e-3,
            "z = {z}: radius {w} vs {w_exact}"
        );
        // On-axis field relative to exp(ikz): amplitude w0/w and Gouy phase −atan(z/zR).
        let u = centre_value(&f) * C64::from_polar(1.0, -wave.k() * z);
        let exact = beam.value_at(0.0, 0.0, z, wave) * C64::from_polar(1.0, -wave.k() * z);
        assert!(
            (u.norm() / exact.norm() - 1.0).abs() < 1e-3,
            "z = {z}: amplitude {} vs {}",
            u.norm(),
            exact.norm()
        );
        let gouy = -(z / zr).atan();
        assert!(
            ((u.arg() - gouy) / gouy).abs() < 1e-3,
            "z = {z}: on-axis phase {} vs Gouy {gouy}",
            u.arg()
        );
    }
}

#[test]
fn gaussian_beam_f64() {
    gaussian_beam_matches_analytic::<f64>();
}

#[test]
fn gaussian_beam_f32() {
    gaussian_beam_matches_analytic::<f32>();
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

#[test]
fn fraunhofer_of_a_rectangle_is_sinc_squared() {
    let wave = Wave::vacuum(1e-6).unwrap();
    let grid = Grid::square(256, 1e-6).unwrap();
    // A pixel-aligned 81 × 41 µm aperture (odd widths keep it centred on the grid).
    let (a, b) = (81e-6, 41e-6);
    let mut f = Field::<f64>::from_fn(grid, wave.wavelength, |x, y| {
        C64::from(if x.abs() < a / 2.0 && y.abs() < b / 2.0 {
            1.0
        } else {
            0.0
        })
    })
    .unwrap();
    let z = 1.0; // far beyond 2D²/λ ≈ 16 mm
    let p = Propagation::new(z)
        .with_method(Method::Fraunhofer)
        .with_padding(Padding::Linear(4.0))
        .with_support(f.support(0.0));
    let plan = Planner::new().plan(&grid, wave, &p).unwrap();
    plan.propagate(&mut f).unwrap();
    let g = *f.grid();
    assert!(
        (g.dx - 1.0 / 1024.0).abs() < 1e-12,
        "output pitch λz/(M dx) = {}",
        g.dx
    );
    let peak = (a * b / (wave.wavelength * z)).powi(2);
    let (xs, ys) = (g.x(), g.y());
    let mut worst: f64 = 0.0;
    for (i, &y) in ys.iter().enumerate() {
        for (j, &x) in xs.iter().enumerate() {
            let (u, v) = (a * x / (wave.wavelength * z), b * y / (wave.wavelength * z));
            if u.abs() > 3.0 || v.abs() > 3.0 {
                continue;
            }
            let exact = peak * (sinc(u) * sinc(v)).powi(2);
            let got = f.sample(0)[i * g.nx + j].norm_sqr();
            worst = worst.max((got - exact).abs() / peak);
        }
    }
    // Residual: the aperture is a sum of point samples (a Dirichlet kernel, not a sinc).
    assert!(worst < 2e-3, "sinc² mismatch {worst}");
}

/// Uniform illumination through a disc of diameter `d` (area-weighted edges).
fn disc(grid: Grid, wave: Wave, d: f64) -> Field<f64> {
    let mut f = Field::<f64>::from_fn(grid, wave.wavelength, |_, _| C64::from(1.0)).unwrap();
    CircularAperture {
        radius: d / 2.0,
        centre: (0.0, 0.0),
        invert: false,
        supersample: 8,
    }
    .apply(&mut f)
    .unwrap();
    f
}

/// J₁(x) = (1/π)∫₀^π cos(τ − x sin τ) dτ, by the trapezoidal rule (spectrally accurate).
fn bessel_j1(x: f64) -> f64 {
    let n = 400;
    let h = PI / n as f64;
    (0..=n)
        .map(|i| {
            let t = i as f64 * h;
            let w = if i == 0 || i == n { 0.5 } else { 1.0 };
            w * (t - x * t.sin()).cos()
        })
        .sum::<f64>()
        * h
        / PI
}

/// A camera (12 µm pixels) off axis in the far field of a disc, over the first dark and
/// bright rings, sees the Airy pattern `I₀·(2J₁(v)/v)²`, `v = πDr/(λz)`, sample by sample:
/// through the Fraunhofer integral and through the scalable angular spectrum onto the window.
#[test]
fn a_camera_window_off_axis_sees_the_airy_rings() {
    let wave = Wave::vacuum(500e-9).unwrap();
    let grid = Grid::square(160, 1e-6).unwrap();
    let d = 100e-6;
    let f = disc(grid, wave, d);
    let z = 0.5;
    let camera = Window::new(Grid::square(128, 12e-6).unwrap(), (3.2e-3, 1.0e-3)).unwrap();
    let lz = wave.wavelength * z;
    let peak = (PI * d * d / 4.0 / lz).powi(2);
    let (xs, ys) = (camera.x(), camera.y());
    for (method, tolerance) in [(Method::Fraunhofer, 5e-5), (Method::Sas, 5e-5)] {
        let p = Propagation::new(z)
            .with_method(method)
            .with_support(f.support(0.0));
        let plan = Planner::new()
            .plan_window(&grid, wave, &p, &camera)
            .unwrap();
        let out = plan.apply(&f).unwrap();
        let mut worst: f64 = 0.0;
        let mut seen = (f64::INFINITY, 0.0f64);
        for (i, &y) in ys.iter().enumerate() {
            for (j, &x) in xs.iter().enumerate() {
                let v = PI * d * (x * x + y * y).sqrt() / lz;
                let exact = peak * (2.0 * bessel_j1(v) / v).powi(2);
                let got = out.sample(0)[i * camera.grid.nx + j].norm_sqr();
                worst = worst.max((got - exact).abs() / peak);
                seen = (seen.0.min(v), seen.1.max(v));
            }
        }
        // The window spans the first zero (v = 3.83) and the first bright ring (v = 5.14).
        assert!(seen.0 < 3.83 && seen.1 > 5.14, "{seen:?}");
        assert!(
            worst < tolerance,
            "{method}: Airy mismatch {worst:e} of the peak"
        );
    }
}

#[test]
fn fraunhofer_of_a_disc_is_airy_with_first_zero_at_1_22() {
    let wave = Wave::vacuum(500e-9).unwrap();
    let grid = Grid::square(160, 1e-6).unwrap();
    let d = 100e-6;
    let mut f = disc(grid, wave, d);
    let z = 0.5;
    let p = Propagation::new(z)
        .with_method(Method::Fraunhofer)
        .with_padding(Padding::Linear(8.0))
        .with_support(f.support(0.0));
    let plan = Planner::new().plan(&grid, wave, &p).unwrap();
    plan.propagate(&mut f).unwrap();
    let g = *f.grid();
    let row = &f.sample(0)[(g.ny / 2) * g.nx..(g.ny / 2 + 1) * g.nx];
    let xs = g.x();
    let c = g.nx / 2;
    // First minimum of the intensity right of the centre; near a zero I ∝ (x − x₀)², so the
    // vertex of the parabola through three samples locates it between samples.
    let int: Vec<f64> = row.iter().map(|u| u.norm_sqr()).collect();
    let i = (c + 1..g.nx - 1)
        .find(|&i| int[i] <= int[i - 1] && int[i] <= int[i + 1])
        .unwrap();
    let (a, b, cc) = (int[i - 1], int[i], int[i + 1]);
    let x0 = xs[i] + 0.5 * g.dx * (a - cc) / (a - 2.0 * b + cc);
    let expected = 1.219_670 * wave.wavelength * z / d;
    assert!(
        (x0 / expected - 1.0).abs() < 5e-3,
        "first Airy zero at {x0}, expected {expected}"
    );
    // And the whole profile: I(r) = I₀ [2 J₁(v)/v]², v = π D r/(λ z), I₀ = (π D²/4 / (λ z))².
    let i0 = (PI * d * d / 4.0 / (wave.wavelength * z)).powi(2);
    for (j, &x) in xs.iter().enumerate() {
        let v = PI * d * x.abs() / (wave.wavelength * z);
        if v > 10.0 {
            continue;
        }
        let airy = if v < 1e-9 {
            1.0
        } else {
            (2.0 * bessel_j1(v) / v).powi(2)
        };
        let got = row[j].norm_sqr() / i0;
        assert!((got - airy).abs() < 3e-3, "r = {x}: {got} vs Airy {airy}");
    }
}

#[test]
fn talbot_self_imaging() {
    // A cosine amplitude grating has three plane-wave orders, for which the transfer function
    // is exact whatever its chirp sampling: the check is off on purpose, padding is circular
    // (the grating is periodic across the window).
    let wave = Wave::vacuum(500e-9).unwrap();
    let period = 64e-6;
    let grid = Grid::new(256, 8, 2e-6, 2e-6).unwrap(); // 8 periods across x
    let t = |x: f64| 1.0 + 0.5 * (2.0 * PI * x / period).cos();
    let input = Field::<f64>::from_fn(grid, wave.wavelength, |x, _| C64::from(t(x))).unwrap();
    let zt = 2.0 * period * period / wave.wavelength;
    let planner = Planner::new();
    for (method, tol) in [(Method::FresnelTf, 1e-10), (Method::Asm, 1e-3)] {
        for (z, shift) in [(zt, 0.0), (zt / 2.0, period / 2.0)] {
            let p = Propagation::new(z)
                .with_method(method)
                .with_padding(Padding::Circular)
                .with_check(false);
            let mut f = input.clone();
            planner
                .plan(&grid, wave, &p)
                .unwrap()
                .propagate(&mut f)
                .unwrap();
            for (got, x) in f.sample(0)[..grid.nx].iter().zip(grid.x()) {
                let want = t(x + shift).powi(2);
                assert!(
                    (got.norm_sqr() - want).abs() < tol * 2.25,
                    "{method} z = {z}: I({x}) = {} vs {want}",
                    got.norm_sqr()
                );
            }
        }
    }
    // Off the Talbot plane the image is not reproduced: the test can fail.
    let mut f = input.clone();
    let p = Propagation::new(zt / 4.0)
        .with_method(Method::FresnelTf)
        .with_padding(Padding::Circular)
        .with_check(false);
    planner
        .plan(&grid, wave, &p)
        .unwrap()
        .propagate(&mut f)
        .unwrap();
    let diff: f64 = f.sample(0)[..grid.nx]
        .iter()
        .zip(grid.x())
        .map(|(g, x)| (g.norm_sqr() - t(x).powi(2)).abs())
        .fold(0.0, f64::max);
    assert!(diff > 0.1);
}

fn random_field(grid: Grid, wavelength: f64, batch: usize, seed: u64) -> Field<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    let data = (0..batch * grid.len())
        .map(|_| C64::new(next(), next()))
        .collect();
    Field::from_vec(data, grid, wavelength).unwrap()
}

fn inner(a: &[C64], b: &[C64]) -> C64 {
    a.iter().zip(b).map(|(x, y)| x * y.conj()).sum()
}

#[test]
fn every_propagator_satisfies_the_adjoint_identity() {
    let wave = Wave::new(633e-9, 1.33).unwrap();
    let grid = Grid::new(27, 20, 3e-6, 4e-6).unwrap();
    let planner = Planner::<f64>::new();
    for method in Method::ALL
        .into_iter()
        .filter(|m| *m != Method::Auto && !m.window_only())
    {
        for padding in [
            Padding::Linear(2.0),
            Padding::Circular,
            Padding::Linear(1.5),
        ] {
            for z in [2e-3, -1e-3] {
                let p = Propagation::new(z)
                    .with_method(method)
                    .with_padding(padding)
                    .with_check(false);
                let plan = planner.plan(&grid, wave, &p).unwrap();
                let x = random_field(grid, wave.wavelength, 2, 1);
                let y = random_field(plan.output_grid(), wave.wavelength, 2, 2);
                let mut ax = x.clone();
                plan.propagate(&mut ax).unwrap();
                let mut ahy = y.clone();
                plan.adjoint(&mut ahy).unwrap();
                let (l, r) = (inner(ax.data(), y.data()), inner(x.data(), ahy.data()));
                assert!(
                    (l - r).norm() < 1e-12 * l.norm().max(1e-30),
                    "{method} {padding:?} z={z}: <Ax,y> = {l}, <x,A^H y> = {r}"
                );
            }
        }
    }
}

#[test]
fn negative_distance_is_the_adjoint_for_convolution_methods() {
    let wave = Wave::vacuum(1e-6).unwrap();
    let grid = Grid::new(24, 30, 2e-6, 2e-6).unwrap();
    let planner = Planner::<f64>::new();
    for method in [
        Method::Asm,
        Method::BandLimitedAsm,
        Method::FresnelTf,
        Method::FresnelIr,
        Method::RayleighSommerfeld,
    ] {
        let p = |z| Propagation::new(z).with_method(method).with_check(false);
        let x = random_field(grid, wave.wavelength, 1, 7);
        let mut back = x.clone();
        planner
            .plan(&grid, wave, &p(-3e-4))
            .unwrap()
            .propagate(&mut back)
            .unwrap();
        let mut adj = x.clone();
        planner
            .plan(&grid, wave, &p(3e-4))
            .unwrap()
            .adjoint(&mut adj)
            .unwrap();
        for (a, b) in back.data().iter().zip(adj.data()) {
            assert!((a - b).norm() < 1e-12, "{method}");
        }
    }
}

#[test]
fn energy_is_conserved_and_backward_propagation_returns_the_input() {
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let grid = Grid::new(128, 96, 5e-6, 5e-6).unwrap();
    let w0 = 40e-6;
    let input = gaussian::<f64>(grid, wave, w0);
    let p0 = input.power()[0];
    let planner = Planner::<f64>::new();
    let z = 3e-3;
    for method in [
        Method::Asm,
        Method::BandLimitedAsm,
        Method::FresnelTf,
        Method::FresnelSingleFft,
        Method::Fraunhofer,
    ] {
        // Single-FFT methods crop their M-sample output to N samples, which cuts the beam's
        // tails unless M = N, where the operator is unitary: test them unpadded.
        let padding = if method.changes_sampling() {
            Padding::Circular
        } else {
            Padding::Linear(2.0)
        };
        let p = |z| {
            Propagation::new(z)
                .with_method(method)
                .with_padding(padding)
                .with_check(false)
        };
        let plan = planner.plan(&grid, wave, &p(z)).unwrap();
        let mut f = input.clone();
        plan.propagate(&mut f).unwrap();
        let p1 = f.power()[0];
        assert!((p1 / p0 - 1.0).abs() < 1e-9, "{method}: power {p1} vs {p0}");
        // Fraunhofer drops the source's quadratic phase, so Fraunhofer over −z is not its
        // inverse; it conserves power Σ|u|²·dx·dy at M = N, so its Euclidean adjoint times the
        // ratio of cell areas is.
        if method == Method::Fraunhofer {
            plan.adjoint(&mut f).unwrap();
            let ratio = plan.output_grid().cell_area() / grid.cell_area();
            f.data_mut().iter_mut().for_each(|z| *z *= ratio);
        } else {
            let back = planner.plan(&plan.output_grid(), wave, &p(-z)).unwrap();
            back.propagate(&mut f).unwrap();
        }
        assert_eq!(*f.grid(), grid, "{method}: back on the input grid");
        let err = f
            .data()
            .iter()
            .zip(input.data())
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(
            err < 1e-9,
            "{method}: forward then backward differs by {err}"
        );
    }
}

#[test]
fn asm_agrees_with_direct_rayleigh_sommerfeld_integration() {
    let wave = Wave::vacuum(1e-6).unwrap();
    let grid = Grid::square(40, 0.5e-6).unwrap();
    let input = gaussian::<f64>(grid, wave, 2.5e-6);
    let z = 15e-6;
    let direct = rs_direct(&input, wave, z).unwrap();
    let planner = Planner::<f64>::new();
    let rel = |a: &Field<f64>| {
        let num: f64 = a
            .data()
            .iter()
            .zip(direct.data())
            .map(|(x, y)| (x - y).norm_sqr())
            .sum();
        let den: f64 = direct.data().iter().map(|y| y.norm_sqr()).sum();
        (num / den).sqrt()
    };
    // The FFT convolution evaluates exactly the direct sum.
    let mut rs = input.clone();
    planner
        .plan(
            &grid,
            wave,
            &Propagation::new(z).with_method(Method::RayleighSommerfeld),
        )
        .unwrap()
        .propagate(&mut rs)
        .unwrap();
    assert!(rel(&rs) < 1e-12, "FFT RS vs direct RS: {}", rel(&rs));
    // The angular spectrum (exact solution of the Helmholtz equation) agrees with the
    // independently discretised RS integral to the quadrature error O((d/z)²).
    let mut asm = input.clone();
    planner
        .plan(
            &grid,
            wave,
            &Propagation::new(z)
                .with_method(Method::Asm)
                .with_evanescent(Evanescent::Decay)
                .with_check(false),
        )
        .unwrap()
        .propagate(&mut asm)
        .unwrap();
    assert!(rel(&asm) < 5e-3, "ASM vs direct RS: {}", rel(&asm));
}

#[test]
fn sampling_violations_are_errors_that_name_the_fix() {
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let grid = Grid::square(256, 8e-6).unwrap();
    let planner = Planner::<f32>::new();
    let e = planner
        .plan(&grid, wave, &Propagation::new(2.0).with_method(Method::Asm))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("asm cannot propagate") && e.contains("bl-asm"),
        "{e}"
    );
    let e = planner
        .plan(
            &grid,
            wave,
            &Propagation::new(1e-3).with_method(Method::FresnelIr),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("lengthen the distance"), "{e}");
    // Auto picks bl-asm close by and a far-field capable method far away.
    let near = planner
        .plan(
            &grid,
            wave,
            &Propagation::new(1e-2).with_method(Method::Auto),
        )
        .unwrap();
    assert_eq!(near.method(), Method::BandLimitedAsm);
    let far = planner
        .plan(
            &grid,
            wave,
            &Propagation::new(5.0).with_method(Method::Auto),
        )
        .unwrap();
    assert_ne!(far.method(), Method::BandLimitedAsm);
    assert!(!far.considered[0].holds);
}

#[test]
fn the_plan_cache_is_bounded_and_reuses_plans() {
    let wave = Wave::vacuum(1e-6).unwrap();
    let grid = Grid::square(32, 2e-6).unwrap();
    let planner = Planner::<f32>::with_capacity(4);
    let first = planner.plan(&grid, wave, &Propagation::new(1e-4)).unwrap();
    let again = planner.plan(&grid, wave, &Propagation::new(1e-4)).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first.propagator, &again.propagator));
    for i in 0..10 {
        planner
            .plan(&grid, wave, &Propagation::new(2e-5 * (i + 2) as f64))
            .unwrap();
        assert!(planner.cached_plans() <= 4);
    }
    // Evicted, so planned anew; the old plan still works for its holder.
    let later = planner.plan(&grid, wave, &Propagation::new(1e-4)).unwrap();
    assert!(!std::sync::Arc::ptr_eq(
        &first.propagator,
        &later.propagator
    ));
    let mut f = Field::<f32>::zeros(grid, wave.wavelength, 1).unwrap();
    first.propagate(&mut f).unwrap();
}

/// Two Gaussian pinholes (1/e amplitude radius `w0`) at `x = ±d/2`: a Young interferometer.
fn pinholes(grid: Grid, d: f64, w0: f64) -> Vec<C64> {
    let (xs, ys) = (grid.x(), grid.y());
    ys.iter()
        .flat_map(|y| {
            xs.iter().map(move |x| {
                let g = |c: f64| (-((x - c).powi(2) + y * y) / (w0 * w0)).exp();
                C64::from(g(-d / 2.0) + g(d / 2.0))
            })
        })
        .collect()
}

/// van Cittert–Zernike: the modes of a uniform incoherent disc source of numerical aperture
/// `NA` have the degree of coherence `2J₁(v)/v`, `v = 2π·NA·s/λ`, at every separation `s` of
/// the field; and two pinholes lit by it, seen in the far field, make fringes of exactly that
/// visibility — turning to a central dark fringe (negative `μ`) past the first zero of `J₁`.
#[test]
fn an_incoherent_disc_source_has_the_van_cittert_zernike_coherence() {
    use photonflow_optics::coherence::{Coherence, DiscSource, Exposure, Illumination, Profile};
    let wave = Wave::vacuum(500e-9).unwrap();
    let na = 0.002;
    let grid = Grid::new(320, 16, 1e-6, 1e-6).unwrap();
    let source = Coherence::Disc(DiscSource::new(na));
    let modes = source
        .decompose(&grid, wave, 300e-6, 0.0)
        .unwrap()
        .modes::<f64>()
        .unwrap();
    let mu_exact = |s: f64| {
        let v = 2.0 * PI * na * s / wave.wavelength;
        if v == 0.0 {
            1.0
        } else {
            2.0 * bessel_j1(v) / v
        }
    };
    let row = 8 * 320;
    let mut worst: f64 = 0.0;
    for sep in [0, 10, 40, 80, 121, 150, 200, 250, 300] {
        let (a, b) = (row + 10, row + 10 + sep.min(309));
        let s = (b - a) as f64 * 1e-6;
        let mu = modes.degree_of_coherence(a, b);
        worst = worst.max((mu - mu_exact(s)).norm());
    }
    eprintln!(
        "disc source: μ = 2J1(v)/v to {worst:.2e}, {} modes",
        modes.len()
    );
    assert!(worst < 1e-6, "degree of coherence off by {worst:.2e}");

    // Young's fringes 1 m away (Fraunhofer), measured at the centre and half a period out,
    // divided by the pinholes' own far-field envelope exp(−2(π·w0·x/(λz))²)
    let (z, w0) = (1.0, 2e-6);
    let mut seen = Vec::new();
    for d in [20e-6, 60e-6, 120e-6, 150e-6, 200e-6, 250e-6] {
        let object = pinholes(grid, d, w0);
        let half = wave.wavelength * z / (2.0 * d);
        let camera = Window::new(
            Grid::new(32, 1, half / 8.0, half / 8.0).unwrap(),
            (0.0, 0.0),
        )
        .unwrap();
        let light = Illumination {
            spectrum: Profile::Lines(vec![photonflow_optics::coherence::Line {
                wavelength: wave.wavelength,
                weight: 1.0,
            }]),
            lines: None,
            coherence: source,
        };
        let exposure = Exposure::new(light, Propagation::new(z).with_method(Method::Fraunhofer))
            .with_window(camera);
        let image = exposure
            .run(&Planner::new(), &object, grid, &|_, _| {})
            .unwrap();
        assert!(image.lines[0].modes > 50);
        let envelope = |x: f64| (-2.0 * (PI * w0 * x / (wave.wavelength * z)).powi(2)).exp();
        let centre = image.data[16] / envelope(0.0);
        let dark = image.data[24] / envelope(half);
        let visibility = (centre - dark) / (centre + dark);
        let expected = mu_exact(d);
        eprintln!(
            "d = {d}: visibility {visibility:.5}, 2J1(v)/v = {expected:.5}, {} modes",
            image.lines[0].modes
        );
        seen.push(visibility);
        assert!(
            (visibility - expected).abs() < 5e-4,
            "d = {d}: visibility {visibility:.5} against 2J1(v)/v = {expected:.5}"
        );
    }
    // coherent at 20 µm, incoherent near the first zero (v = 3.83 at 152 µm), reversed beyond
    assert!(
        seen[0] > 0.96 && seen[3].abs() < 0.02 && seen[4] < -0.1,
        "{seen:?}"
    );
}

/// Broadband Young fringes: two pinholes 200 µm apart lit by a Gaussian spectrum (600 nm, 60
/// nm wide) seen on one camera 0.5 m away. Every wavelength's Fraunhofer pattern has its own scale, so each
/// line lands on the camera through an output window; the sum over the few lines chosen for
/// the geometry matches the intensity integrated over the continuous spectrum (4000
/// frequencies, analytic far field of the pinholes) to 10⁻³ of the peak, and the fringes fade
/// as the path difference `d·x/z` outgrows the coherence length — which three lines miss.
#[test]
fn broadband_fringes_fade_with_the_coherence_length() {
    use photonflow_optics::coherence::{
        Coherence, Exposure, Illumination, Profile, SPEED_OF_LIGHT,
    };
    let grid = Grid::new(256, 16, 1e-6, 1e-6).unwrap();
    let (d, w0, z) = (200e-6, 1.5e-6, 0.5);
    let object = pinholes(grid, d, w0);
    let camera = Window::new(Grid::new(512, 1, 190e-6, 190e-6).unwrap(), (0.0, 0.0)).unwrap();
    let profile = Profile::Gaussian {
        centre: 600e-9,
        fwhm: 60e-9,
    };
    let expose = |lines: Option<usize>| {
        let light = Illumination {
            spectrum: profile.clone(),
            lines,
            coherence: Coherence::Full,
        };
        Exposure::new(light, Propagation::new(z).with_method(Method::Fraunhofer))
            .with_window(camera)
            .run(&Planner::<f64>::new(), &object, grid, &|_, _| {})
            .unwrap()
    };
    let image = expose(None);
    assert!(image.lines.len() < 40, "{} lines", image.lines.len());
    assert!(image.lines.iter().all(|l| l.method == Method::Fraunhofer));
    // the reference: ∫ s(ν)·2(πw0²/(λz))²·e^(−2(πw0x/(λz))²)·(1 + cos(2πdx/(λz))) dν
    let nu0 = SPEED_OF_LIGHT / 600e-9;
    let dnu = SPEED_OF_LIGHT / 570e-9 - SPEED_OF_LIGHT / 630e-9;
    let sigma = dnu / (2.0 * (2.0 * 2f64.ln()).sqrt());
    let xs = camera.x();
    let reference: Vec<f64> = xs
        .iter()
        .map(|x| {
            let (mut sum, mut norm) = (0.0, 0.0);
            for i in 0..4000 {
                let nu = nu0 + sigma * (-8.0 + 16.0 * (i as f64 + 0.5) / 4000.0);
                let s = (-(nu - nu0).powi(2) / (2.0 * sigma * sigma)).exp();
                let l = SPEED_OF_LIGHT / nu;
                let a = PI * w0 * w0 / (l * z);
                let e = (-2.0 * (PI * w0 * x / (l * z)).powi(2)).exp();
                sum += s * 2.0 * a * a * e * (1.0 + (2.0 * PI * d * x / (l * z)).cos());
                norm += s;
            }
            sum / norm
        })
        .collect();
    let peak = reference.iter().cloned().fold(0.0, f64::max);
    let error = |data: &[f64]| {
        data.iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
            / peak
    };
    let e = error(&image.data);
    eprintln!(
        "broadband: {} lines, max path {:.3e} m, error {e:.2e}; 3 lines: {:.2e}",
        image.lines.len(),
        image.max_path_difference,
        error(&expose(Some(3)).data)
    );
    assert!(e < 1e-3, "broadband intensity off by {e:.2e} of the peak");
    assert!(error(&expose(Some(3)).data) > 1e-2);
    // the fringes fade: visibility near the centre ≈ 1, beyond a coherence length ≈ 0
    let visibility = |from: usize, to: usize| {
        let w = &reference[from..to];
        let (hi, lo) = w
            .iter()
            .fold((0.0f64, f64::MAX), |(h, l), v| (h.max(*v), l.min(*v)));
        (hi - lo) / (hi + lo)
    };
    assert!(visibility(250, 262) > 0.95);
    assert!(visibility(450, 460) < 0.1, "{}", visibility(450, 460));
}

/// A Gaussian Schell-model beam (σ_S = 10 µm, σ_g = 5 µm) spreads as `σ_S·Δ(z)`,
/// `Δ² = 1 + (z/(kσ_Sδ))²`, keeping its Gaussian profile and its power, and its degree of
/// coherence widens to `σ_g·Δ` (Mandel & Wolf §5.6.4) — more than twice what a coherent beam
/// of the same width does at that distance.
#[test]
fn a_gaussian_schell_beam_spreads_as_its_coherence_says() {
    use photonflow_optics::coherence::{
        Coherence, Exposure, GaussianSchell, Illumination, Profile,
    };
    let wave = Wave::vacuum(500e-9).unwrap();
    let grid = Grid::square(256, 1e-6).unwrap();
    let gsm = GaussianSchell {
        rms_width: 10e-6,
        coherence_width: 5e-6,
        centre: (0.0, 0.0),
        power: 1.0,
    };
    let z = 1.2e-3;
    let spread = gsm.expansion(z, wave);
    assert!(spread > 2.0, "{spread}");
    let coherent = GaussianSchell {
        coherence_width: 1.0,
        ..gsm
    }
    .expansion(z, wave);
    assert!(coherent < 1.12);
    let light = Illumination {
        spectrum: Profile::Lines(vec![photonflow_optics::coherence::Line {
            wavelength: wave.wavelength,
            weight: 1.0,
        }]),
        lines: None,
        coherence: Coherence::GaussianSchell(gsm),
    };
    let ones = vec![C64::from(1.0); grid.len()];
    let mut exposure = Exposure::new(light.clone(), Propagation::new(z));
    exposure.tolerance = 1e-4;
    let image = exposure
        .run(&Planner::new(), &ones, grid, &|_, _| {})
        .unwrap();
    let s2 = (gsm.rms_width * spread).powi(2);
    let peak = 1.0 / (2.0 * PI * s2);
    let (xs, ys) = (grid.x(), grid.y());
    let mut worst: f64 = 0.0;
    for (i, v) in image.data.iter().enumerate() {
        let (x, y) = (xs[i % 256], ys[i / 256]);
        let exact = peak * (-(x * x + y * y) / (2.0 * s2)).exp();
        worst = worst.max((v - exact).abs() / peak);
    }
    eprintln!(
        "gsm: {} modes, intensity off by {worst:.2e}, spread {spread}, coherent {coherent}",
        image.lines[0].modes
    );
    assert!(worst < 5e-4, "intensity off by {worst:.2e} of the peak");
    let power: f64 = image.data.iter().sum::<f64>() * grid.cell_area();
    assert!((power - 1.0).abs() < 2e-4, "{power}");

    // the degree of coherence after propagation, from the propagated modes
    let mut modes = Coherence::GaussianSchell(gsm)
        .decompose(&grid, wave, 0.0, 1e-3)
        .unwrap()
        .modes::<f32>()
        .unwrap();
    let plan = Planner::new()
        .plan(&grid, wave, &Propagation::new(z))
        .unwrap();
    modes.propagate(&*plan.propagator).unwrap();
    let centre = 128 * 256 + 128;
    for offset in [5usize, 10, 20] {
        let mu = modes.degree_of_coherence(centre, centre + offset).norm();
        let r = offset as f64 * 1e-6;
        let exact = (-(r * r) / (2.0 * (gsm.coherence_width * spread).powi(2))).exp();
        eprintln!("gsm |μ| at {r}: {mu} vs {exact}");
        assert!((mu - exact).abs() < 5e-4, "|μ| at {r}: {mu} vs {exact}");
    }
}

/// Coherent monochromatic light through an exposure is the propagated field's intensity.
#[test]
fn a_coherent_exposure_is_the_propagated_intensity() {
    use photonflow_optics::coherence::{Exposure, Illumination};
    let wave = Wave::vacuum(633e-9).unwrap();
    let grid = Grid::square(64, 2e-6).unwrap();
    let f = random_field(grid, wave.wavelength, 3, 7);
    let propagation = Propagation::new(150e-6);
    let image = Exposure::new(Illumination::coherent(wave.wavelength), propagation.clone())
        .run(&Planner::new(), f.data(), grid, &|_, _| {})
        .unwrap();
    assert_eq!(image.batch, 3);
    let mut g = f.clone();
    Planner::new()
        .plan(&grid, wave, &propagation)
        .unwrap()
        .propagate(&mut g)
        .unwrap();
    for (a, b) in image.data.iter().zip(g.data()) {
        assert!((a - b.norm_sqr()).abs() < 1e-12 * (1.0 + a));
    }
}

/// A blazed grating designed for 500 nm (an 8-step staircase from 0 to 2π, one wave deep) used
/// at other wavelengths: its phase becomes `φ·λ₀/λ`, and the first order carries
/// `[sin(π(α − 1)) / (P·sin(π(α − 1)/P))]²` of the light, `α = λ₀/λ` (the sampled form of the
/// scalar `sinc²(α − 1)`), all of it at the design wavelength; the light is conserved.
#[test]
fn a_blazed_grating_loses_its_first_order_away_from_its_design_wavelength() {
    use photonflow_optics::coherence::{Exposure, Illumination};
    let (n, period) = (256usize, 8usize);
    let grid = Grid::new(n, 4, 1e-6, 1e-6).unwrap();
    let grating: Vec<C64> = (0..grid.len())
        .map(|i| C64::from_polar(1.0, 2.0 * PI * ((i % n) % period) as f64 / period as f64))
        .collect();
    for wavelength in [500e-9, 550e-9, 650e-9, 800e-9] {
        let exposure = Exposure::new(
            Illumination::coherent(wavelength),
            Propagation::new(1.0)
                .with_method(Method::Fraunhofer)
                .with_padding(Padding::Circular),
        )
        .with_design_wavelength(500e-9);
        let image = exposure
            .run(&Planner::new(), &grating, grid, &|_, _| {})
            .unwrap();
        let total: f64 = image.data.iter().sum();
        let first = image.data[2 * n + n / 2 + n / period] / total;
        let a = 500e-9 / wavelength - 1.0;
        let p = period as f64;
        let expected = if a == 0.0 {
            1.0
        } else {
            ((PI * a).sin() / (p * (PI * a / p).sin())).powi(2)
        };
        assert!(
            (first - expected).abs() < 1e-9,
            "{wavelength}: first order {first} against {expected}"
        );
        let power = total * image.grid.cell_area() / (grid.len() as f64 * grid.cell_area());
        assert!((power - 1.0).abs() < 1e-9, "{power}");
    }
}
