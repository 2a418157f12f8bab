use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

use num_complex::Complex;

use super::*;
use crate::error::err_text;
use crate::fft::FftCache;
use crate::propagate::Method;
use crate::rng::Rng;
use crate::{Field, Grid, Planner, Propagation, Wave};

type C = Complex<f64>;

fn random_jones(rng: &mut Rng) -> JonesMatrix {
    let mut c = || C::new(rng.normal(), rng.normal());
    JonesMatrix([[c(), c()], [c(), c()]])
}

fn random_vector(rng: &mut Rng) -> JonesVector {
    JonesVector([
        C::new(rng.normal(), rng.normal()),
        C::new(rng.normal(), rng.normal()),
    ])
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn malus_law_and_waveplates() {
    for k in 0..=12 {
        let t = k as f64 * PI / 12.0;
        // Malus: I = cos²θ
        let i = JonesMatrix::polariser(t).apply(&JonesVector::X).intensity();
        assert!(close(i, t.cos().powi(2), 1e-14), "{t}: {i}");
        // a half-wave plate at θ turns linear light at α to 2θ − α
        let alpha = 0.3;
        let out = JonesMatrix::half_wave(t).apply(&JonesVector::linear(alpha));
        let want = 2.0 * t - alpha;
        let got = out.stokes().aolp();
        let d = (got - want).rem_euclid(PI);
        assert!(d.min(PI - d) < 1e-12, "{t}: {got} vs {want}");
        assert!(close(out.stokes().dolp(), 1.0, 1e-12));
    }
    // a quarter-wave plate at ±45° makes linear light circular, of opposite handedness
    let r = JonesMatrix::quarter_wave(FRAC_PI_4)
        .apply(&JonesVector::X)
        .stokes();
    let l = JonesMatrix::quarter_wave(-FRAC_PI_4)
        .apply(&JonesVector::X)
        .stokes();
    assert!(
        close(r.0[3], 1.0, 1e-12) && close(l.0[3], -1.0, 1e-12),
        "{r:?} {l:?}"
    );
    // two quarter-wave plates are a half-wave plate; lossless elements are unitary
    let two = JonesMatrix::quarter_wave(0.4) * JonesMatrix::quarter_wave(0.4);
    let half = JonesMatrix::half_wave(0.4);
    for (a, b) in two.0.iter().flatten().zip(half.0.iter().flatten()) {
        assert!((a - b).norm() < 1e-14);
    }
    for j in [
        JonesMatrix::retarder(1.1, 0.2),
        JonesMatrix::rotator(0.7),
        JonesMatrix::birefringent(0.3, 2.0, -0.4),
    ] {
        assert!(j.unitarity_error() < 1e-14);
    }
    // polarisers are projectors: P² = P, and not unitary
    let p = JonesMatrix::polariser(0.9);
    let pp = p * p;
    for (a, b) in pp.0.iter().flatten().zip(p.0.iter().flatten()) {
        assert!((a - b).norm() < 1e-14);
    }
    assert!(p.unitarity_error() > 0.9);
}

#[test]
fn handedness_follows_the_time_convention() {
    // E(t) = Re[E exp(−iωt)]: the sense in which the tip turns, seen from +z facing the source
    // (x right, y up): anticlockwise when (E(t) × E(t + dt))_z > 0
    let turn = |e: JonesVector| {
        let at = |wt: f64| {
            let ph = C::from_polar(1.0, -wt);
            ((e.0[0] * ph).re, (e.0[1] * ph).re)
        };
        let (a, b) = (at(0.1), at(0.2));
        a.0 * b.1 - a.1 * b.0
    };
    let (r, l) = (JonesVector::RIGHT, JonesVector::LEFT);
    assert!(
        turn(r) < 0.0,
        "right circular turns clockwise facing the source"
    );
    assert!(turn(l) > 0.0);
    assert!(close(r.stokes().0[3], 1.0, 1e-15) && close(l.stokes().0[3], -1.0, 1e-15));
    assert!(close(r.stokes().ellipticity(), FRAC_PI_4, 1e-12));
    assert!(r.dot(&l).norm() < 1e-15);
}

#[test]
fn mueller_matrices_transform_stokes_vectors() {
    let mut rng = Rng::new(7);
    for _ in 0..50 {
        let (j, e) = (random_jones(&mut rng), random_vector(&mut rng));
        let direct = j.apply(&e).stokes();
        let via = e.stokes().transform(&j.mueller());
        for k in 0..4 {
            assert!(
                close(direct.0[k], via.0[k], 1e-12 * direct.0[0]),
                "{direct:?} {via:?}"
            );
        }
        // and partially polarised light: the sum of its two coherent modes
        let s = Stokes([2.0, 0.3, -0.5, 0.9]);
        let modes = s.coherent_modes().unwrap();
        let sum = modes
            .iter()
            .map(|(w, e)| {
                let s = j.apply(e).stokes();
                Stokes(s.0.map(|v| v * w))
            })
            .fold(Stokes([0.0; 4]), |a, b| a + b);
        let via = s.transform(&j.mueller());
        for k in 0..4 {
            assert!(close(sum.0[k], via.0[k], 1e-12 * sum.0[0]));
        }
    }
    // textbook matrices: an ideal horizontal polariser, a half-wave plate at 0°
    let p = JonesMatrix::polariser(0.0).mueller();
    let want = [
        [0.5, 0.5, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0],
        [0.0; 4],
        [0.0; 4],
    ];
    let h = JonesMatrix::half_wave(0.0).mueller();
    for i in 0..4 {
        for k in 0..4 {
            assert!(close(p[i][k], want[i][k], 1e-15));
            let d = if i != k {
                0.0
            } else if i < 2 {
                1.0
            } else {
                -1.0
            };
            assert!(close(h[i][k], d, 1e-15));
        }
    }
}

#[test]
fn stokes_directions_and_coherent_modes() {
    let mut rng = Rng::new(3);
    for _ in 0..50 {
        let e = random_vector(&mut rng);
        let s = e.stokes();
        assert!(close(s.dop(), 1.0, 1e-12));
        let back = JonesVector::from_stokes_direction(s.0[1], s.0[2], s.0[3]).unwrap();
        let t = back.stokes();
        for k in 1..4 {
            assert!(close(t.0[k], s.0[k] / s.0[0], 1e-12), "{s:?} {t:?}");
        }
    }
    let s = Stokes([1.0, 0.2, 0.1, -0.3]);
    let [(w1, e1), (w2, e2)] = s.coherent_modes().unwrap();
    assert!(e1.dot(&e2).norm() < 1e-14);
    assert!(close(w1 + w2, 1.0, 1e-15) && close(w1 - w2, s.polarised(), 1e-15));
    let [(a, _), (b, _)] = Stokes::unpolarised(2.0).coherent_modes().unwrap();
    assert_eq!((a, b), (1.0, 1.0));
    assert!(err_text(Stokes::new([1.0, 1.0, 1.0, 0.0])).contains("not physical"));
    assert!(err_text(JonesVector::from_stokes_direction(0.0, 0.0, 0.0)).contains("no direction"));
}

#[test]
fn parsing_states_and_complex_numbers() {
    let cases = [
        ("1", C::new(1.0, 0.0)),
        ("-0.5", C::new(-0.5, 0.0)),
        ("i", C::new(0.0, 1.0)),
        ("-2i", C::new(0.0, -2.0)),
        ("0.5-0.5i", C::new(0.5, -0.5)),
        ("1e-3+2j", C::new(1e-3, 2.0)),
        ("-1e-3-i", C::new(-1e-3, -1.0)),
        (" 2 + 3i ", C::new(2.0, 3.0)),
    ];
    for (text, z) in cases {
        assert_eq!(parse_complex(text).unwrap(), z, "{text}");
    }
    for bad in ["", "x", "1+", "nan", "1ii"] {
        assert!(parse_complex(bad).is_err(), "{bad}");
    }
    let s: JonesVector = "linear:30deg".parse().unwrap();
    assert!(close(s.stokes().aolp(), 30f64.to_radians(), 1e-12));
    let s: JonesVector = "jones:1,-i".parse().unwrap();
    assert!(close(s.normalised().stokes().0[3], 1.0, 1e-12));
    assert_eq!("RCP".parse::<JonesVector>().unwrap(), JonesVector::RIGHT);
    assert!(err_text("jones:0,0".parse::<JonesVector>()).contains("zero"));
    assert!(
        "circular"
            .parse::<JonesVector>()
            .unwrap_err()
            .to_string()
            .contains("rcp, lcp")
    );
    assert!(
        "linear:30"
            .parse::<JonesVector>()
            .unwrap_err()
            .to_string()
            .contains("no unit")
    );
    let s: Stokes = "1,0.5,0,0".parse().unwrap();
    assert!(close(s.dop(), 0.5, 1e-15));
    assert!("1,2,0,0".parse::<Stokes>().is_err());
    assert!(
        "1,0"
            .parse::<Stokes>()
            .unwrap_err()
            .to_string()
            .contains("four")
    );
}

/// Two slits 0.2 mm apart behind polarisers (x over the left, y over the right), their far
/// field 1 m away, with or without an analyser at 45°.
fn young(light: &[(f64, JonesVector)], analyser: Option<f64>) -> Vec<f64> {
    let grid = Grid::square(256, 4e-6).unwrap();
    let lambda = 633e-9;
    let slit = |x: f64, c: f64| (x - c).abs() < 10e-6;
    let mask = JonesMask::from_fn(grid, |x, y| {
        if y.abs() > 200e-6 {
            JonesMatrix([[C::new(0.0, 0.0); 2]; 2])
        } else if slit(x, -100e-6) {
            JonesMatrix::polariser(0.0)
        } else if slit(x, 100e-6) {
            JonesMatrix::polariser(FRAC_PI_2)
        } else {
            JonesMatrix([[C::new(0.0, 0.0); 2]; 2])
        }
    })
    .unwrap();
    let ones = Field::<f64>::from_fn(grid, lambda, |x, y| {
        let open = y.abs() <= 200e-6 && (slit(x, -100e-6) || slit(x, 100e-6));
        C::new(if open { 1.0 } else { 0.0 }, 0.0)
    })
    .unwrap();
    let plan = Planner::<f64>::new()
        .plan_onto(
            &grid,
            Wave::vacuum(lambda).unwrap(),
            &Propagation::new(1.0)
                .with_method(Method::Fraunhofer)
                .with_support(ones.support(1e-6)),
            None,
        )
        .unwrap();
    let mut total = vec![0.0; grid.len()];
    for (w, e) in light {
        let mut v = VectorField::polarise(&ones, &Polarised::Uniform(*e)).unwrap();
        mask.apply(&mut v).unwrap();
        let mut out = v.propagate(&plan).unwrap();
        if let Some(a) = analyser {
            let g = *out.grid();
            JonesMask::uniform(g, JonesMatrix::polariser(a))
                .unwrap()
                .apply(&mut out)
                .unwrap();
        }
        for (t, i) in total.iter_mut().zip(out.intensity()) {
            *t += w * i;
        }
    }
    // the central row
    total[128 * 256..129 * 256].to_vec()
}

/// The fringes' visibility over the central lobe (the slits' envelope): the fringe period
/// `λz/a` is 3.2 mm on the far-field grid of `λz/(M·d)` = 0.31 mm pitch, 10 samples a fringe.
fn visibility(row: &[f64]) -> f64 {
    let centre = &row[118..139];
    let (lo, hi) = centre
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    (hi - lo) / (hi + lo)
}

#[test]
fn fresnel_arago_laws() {
    let d = JonesVector::linear(FRAC_PI_4);
    // orthogonal polarisations do not interfere ...
    let crossed = visibility(&young(&[(1.0, d)], None));
    // ... until an analyser brings them to one polarisation, if they came from one state ...
    let analysed = visibility(&young(&[(1.0, d)], Some(FRAC_PI_4)));
    // ... but not if they came from the orthogonal components of unpolarised light
    let modes = Stokes::unpolarised(1.0).coherent_modes().unwrap();
    let unpolarised = visibility(&young(&modes, Some(FRAC_PI_4)));
    assert!(crossed < 0.03, "crossed slits: visibility {crossed}");
    assert!(analysed > 0.97, "analysed: visibility {analysed}");
    assert!(unpolarised < 0.03, "unpolarised: visibility {unpolarised}");
}

fn gaussian(grid: Grid, lambda: f64, w: f64) -> Field<f64> {
    Field::from_fn(grid, lambda, |x, y| {
        C::new((-(x * x + y * y) / (w * w)).exp(), 0.0)
    })
    .unwrap()
}

/// The winding number of `f`'s phase around a circle of `radius` samples about the centre.
fn winding(f: &[C], n: usize, radius: f64) -> f64 {
    let steps = 400;
    let c = (n / 2) as f64;
    let mut total = 0.0;
    let mut last = None;
    for k in 0..=steps {
        let a = 2.0 * PI * k as f64 / steps as f64;
        let (x, y) = (c + radius * a.cos(), c + radius * a.sin());
        let z = f[y.round() as usize * n + x.round() as usize];
        if let Some(p) = last {
            let mut d: f64 = z.arg() - p;
            d = (d + PI).rem_euclid(2.0 * PI) - PI;
            total += d;
        }
        last = Some(z.arg());
    }
    total / (2.0 * PI)
}

#[test]
fn q_plates_make_vortices_of_charge_two_q() {
    let n = 128;
    let grid = Grid::square(n, 2e-6).unwrap();
    let lambda = 633e-9;
    let beam = gaussian(grid, lambda, 60e-6);
    let l = JonesVector::LEFT;
    for (q, retardance) in [(0.5, PI), (1.0, PI), (0.5, FRAC_PI_2), (-1.5, 2.0)] {
        let mut v = VectorField::polarise(&beam, &Polarised::Uniform(l)).unwrap();
        JonesMask::q_plate(grid, q, 0.3, retardance, (0.0, 0.0))
            .unwrap()
            .apply(&mut v)
            .unwrap();
        let power = v.power()[0];
        let converted = v.analyse(&JonesVector::RIGHT).unwrap();
        let p_conv = converted.power()[0];
        // a sin²(δ/2) share is converted, and the q-plate is lossless
        let want = (retardance / 2.0).sin().powi(2);
        let p_in = beam.power()[0];
        assert!(close(power, p_in, 1e-12 * p_in));
        assert!(
            close(p_conv / p_in, want, 1e-9),
            "q {q}: {} vs {want}",
            p_conv / p_in
        );
        // with the vortex exp(2iqφ)
        let charge = winding(converted.sample(0), n, 20.0);
        assert!(close(charge, 2.0 * q, 1e-6), "q {q}: charge {charge}");
    }
    // the converted vortex's far field is a doughnut: dark on the axis
    let mut v = VectorField::polarise(&beam, &Polarised::Uniform(l)).unwrap();
    JonesMask::q_plate(grid, 0.5, 0.0, PI, (0.0, 0.0))
        .unwrap()
        .apply(&mut v)
        .unwrap();
    let plan = Planner::<f64>::new()
        .plan_onto(
            &grid,
            Wave::vacuum(lambda).unwrap(),
            &Propagation::new(2e-3),
            None,
        )
        .unwrap();
    let far = v.propagate(&plan).unwrap().intensity();
    let peak = far.iter().cloned().fold(0.0, f64::max);
    assert!(far[n / 2 * n + n / 2] < 1e-3 * peak);
}

#[test]
fn a_geometric_phase_lens_focuses_one_handedness() {
    let n = 256;
    let (pitch, lambda, f) = (2e-6, 532e-9, 2e-3);
    let grid = Grid::square(n, pitch).unwrap();
    let k = 2.0 * PI / lambda;
    let aperture = 100e-6;
    let beam = Field::<f64>::from_fn(grid, lambda, |x, y| {
        C::new(if x.hypot(y) < aperture { 1.0 } else { 0.0 }, 0.0)
    })
    .unwrap();
    // the phase of a converging lens, exp(−ikr²/2f), for left circular light in
    let (xs, ys) = (grid.x(), grid.y());
    let phase: Vec<f64> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| -k * (x * x + y * y) / (2.0 * f)))
        .collect();
    let lens = JonesMask::geometric_phase(grid, &phase).unwrap();
    let plan = Planner::<f64>::new()
        .plan_onto(
            &grid,
            Wave::vacuum(lambda).unwrap(),
            &Propagation::new(f),
            None,
        )
        .unwrap();
    let focus = |e: JonesVector| {
        let mut v = VectorField::polarise(&beam, &Polarised::Uniform(e)).unwrap();
        lens.apply(&mut v).unwrap();
        let out = v.propagate(&plan).unwrap();
        let c = n / 2 * n + n / 2;
        let s = out.stokes();
        (s[c], s[3 * n * n + c] / s[c])
    };
    let (left, s3_left) = focus(JonesVector::LEFT);
    let (right, _) = focus(JonesVector::RIGHT);
    let (x, s3_x) = focus(JonesVector::X);
    // left circular light converges and leaves right circular; right circular light diverges
    assert!(right < 0.01 * left, "{right} vs {left}");
    assert!(s3_left > 0.999 && s3_x > 0.99, "{s3_left} {s3_x}");
    // linear light is half of each: half the focal intensity (plus a faint diverging background)
    assert!(close(x / left, 0.5, 0.002), "{}", x / left);
}

#[test]
fn the_longitudinal_field_of_gaussian_beams() {
    let lambda = 500e-9;
    let k = 2.0 * PI / lambda;
    let n = 128;
    let grid = Grid::square(n, lambda / 4.0).unwrap();
    let cache = FftCache::default();
    // a waist of w₀ = 4λ: E_z ≈ (i/k)∂E_x/∂x = −2ix/(k w₀²)·E_x, to O(1/(k w₀)²)
    let w0 = 4.0 * lambda;
    let beam = gaussian(grid, lambda, w0);
    for (state, axis) in [(JonesVector::X, 0), (JonesVector::Y, 1)] {
        let v = VectorField::polarise(&beam, &Polarised::Uniform(state)).unwrap();
        let ez = v.longitudinal(1.0, &cache).unwrap();
        let (xs, ys) = (grid.x(), grid.y());
        let (mut err, mut norm) = (0.0, 0.0);
        for (r, &y) in ys.iter().enumerate() {
            for (c, &x) in xs.iter().enumerate() {
                let u = beam.data()[r * n + c];
                let s = if axis == 0 { x } else { y };
                let want = C::new(0.0, -2.0 * s / (k * w0 * w0)) * u;
                err += (ez.data()[r * n + c] - want).norm_sqr();
                norm += want.norm_sqr();
            }
        }
        let rel = (err / norm).sqrt();
        // the paraxial formula's own error is about 1/(k w₀)² ≈ 0.2 % (measured 0.4 %)
        assert!(rel < 0.01, "axis {axis}: relative error {rel}");
    }
    // a tilted wide beam: E_z/E_x = −tan θ at its centre
    let big = Grid::square(2 * n, lambda / 4.0).unwrap();
    let wide = lambda * 10.0;
    let theta: f64 = 0.3;
    let tilted = Field::<f64>::from_fn(big, lambda, |x, y| {
        C::from_polar(
            (-(x * x + y * y) / (wide * wide)).exp(),
            k * theta.sin() * x,
        )
    })
    .unwrap();
    let v = VectorField::polarise(&tilted, &Polarised::Uniform(JonesVector::X)).unwrap();
    let ez = v.longitudinal(1.0, &cache).unwrap();
    let ratio = ez.data()[n * 2 * n + n] / tilted.data()[n * 2 * n + n];
    assert!(
        close(ratio.re, -theta.tan(), 2e-3) && ratio.im.abs() < 1e-4,
        "{ratio}"
    );
    // an azimuthal beam has no longitudinal field; a radial one a strong one on the axis
    let ring = gaussian(grid, lambda, 3.0 * lambda);
    let c = n / 2 * n + n / 2;
    let ez_of = |p: Polarised| {
        let v = VectorField::polarise(&ring, &p).unwrap();
        let ez = v.longitudinal(1.0, &cache).unwrap();
        (ez.power()[0], ez.data()[c].norm())
    };
    let (radial, on_axis) = ez_of(Polarised::Radial { centre: (0.0, 0.0) });
    let (azimuthal, _) = ez_of(Polarised::Azimuthal { centre: (0.0, 0.0) });
    assert!(azimuthal < 1e-3 * radial, "{azimuthal} vs {radial}");
    assert!(on_axis > 0.1, "radial E_z on the axis {on_axis}");
    assert!(err_text(v.longitudinal(0.0, &cache)).contains("refractive index"));
}

#[test]
fn a_polarisation_camera_measures_linear_stokes() {
    let grid = Grid::new(8, 6, 3.45e-6, 3.45e-6).unwrap();
    let lambda = 532e-9;
    let ones = Field::<f64>::from_fn(grid, lambda, |_, _| C::new(1.0, 0.0)).unwrap();
    let light = Stokes([2.0, 0.6, -0.8, 0.5]);
    for extinction in [f64::INFINITY, 100.0, 5.0] {
        let camera = PolarisationCamera::polarsens(extinction);
        let mut raw = vec![0.0; grid.len()];
        for (w, e) in light.coherent_modes().unwrap() {
            let v = VectorField::polarise(&ones, &Polarised::Uniform(e)).unwrap();
            for (r, i) in raw.iter_mut().zip(camera.expose(&v).unwrap()) {
                *r += w * i;
            }
        }
        let (s, sg) = camera.stokes(&raw, &grid).unwrap();
        assert_eq!((sg.nx, sg.ny), (4, 3));
        assert!(close(sg.dx, 6.9e-6, 1e-18));
        let m = sg.len();
        for k in 0..m {
            for c in 0..3 {
                assert!(
                    close(s[c * m + k], light.0[c], 1e-12),
                    "{extinction}: {:?}",
                    &s
                );
            }
        }
    }
    // two angles (0°, 90° twice) cannot tell S₂
    let camera = PolarisationCamera {
        pattern: [[0.0, FRAC_PI_2], [PI, FRAC_PI_2]],
        extinction: f64::INFINITY,
    };
    assert!(err_text(camera.stokes(&vec![0.0; grid.len()], &grid)).contains("distinct"));
    let camera = PolarisationCamera::polarsens(0.5);
    assert!(err_text(camera.stokes(&vec![0.0; grid.len()], &grid)).contains("at least 1"));
}

#[test]
fn bad_vector_fields_and_masks_are_refused() {
    let grid = Grid::square(8, 1e-6).unwrap();
    let f = Field::<f32>::zeros(grid, 5e-7, 3).unwrap();
    assert!(
        VectorField::new(f)
            .unwrap_err()
            .to_string()
            .contains("even number")
    );
    let m = JonesMask::uniform(Grid::square(4, 1e-6).unwrap(), JonesMatrix::IDENTITY).unwrap();
    let mut v = VectorField::new(Field::<f32>::zeros(grid, 5e-7, 2).unwrap()).unwrap();
    assert!(
        m.apply(&mut v)
            .unwrap_err()
            .to_string()
            .contains("sample the mask")
    );
    let nan = JonesMatrix([[C::new(f64::NAN, 0.0); 2]; 2]);
    assert!(err_text(JonesMask::uniform(grid, nan)).contains("not finite"));
    assert!(JonesMask::new(grid, vec![JonesMatrix::IDENTITY; 3]).is_err());
    assert!(JonesMask::birefringent(grid, &[0.0; 64], &[0.0; 64], &[0.0; 63]).is_err());
    assert!(err_text(JonesMask::q_plate(grid, f64::NAN, 0.0, PI, (0.0, 0.0))).contains("finite"));
}

#[test]
fn masks_compose_and_fields_round_trip_their_components() {
    let grid = Grid::square(16, 1e-6).unwrap();
    let mut rng = Rng::new(11);
    let noise = (0..grid.len())
        .map(|_| C::new(rng.normal(), rng.normal()))
        .collect();
    let ex = Field::<f64>::from_vec(noise, grid, 5e-7).unwrap();
    let ey = Field::<f64>::from_fn(grid, 5e-7, |x, y| C::new(x * 1e6, y * 1e6)).unwrap();
    let v = VectorField::from_components(&ex, &ey).unwrap();
    assert_eq!(v.component(0, 0), ex.data());
    assert_eq!(v.component(0, 1), ey.data());
    let (a, b) = (random_jones(&mut rng), random_jones(&mut rng));
    let (ma, mb) = (
        JonesMask::uniform(grid, a).unwrap(),
        JonesMask::uniform(grid, b).unwrap(),
    );
    let mut one = v.clone();
    ma.apply(&mut one).unwrap();
    mb.apply(&mut one).unwrap();
    let mut two = v.clone();
    mb.then(&ma).unwrap().apply(&mut two).unwrap();
    for (p, q) in one.field().data().iter().zip(two.field().data()) {
        assert!((p - q).norm() < 1e-12);
    }
    // the analyser is the projection e†E
    let e = JonesVector::linear(0.4);
    let proj = v.analyse(&e).unwrap();
    for k in 0..grid.len() {
        let want = e.0[0].conj() * ex.data()[k] + e.0[1].conj() * ey.data()[k];
        assert!((proj.data()[k] - want).norm() < 1e-14);
    }
}

#[test]
fn named_elements_and_illuminations() {
    let grid = Grid::square(8, 1e-6).unwrap();
    let el: JonesElement = "polariser:30deg".parse().unwrap();
    let m = el.mask(grid).unwrap();
    assert_eq!(m.matrices()[5], JonesMatrix::polariser(30f64.to_radians()));
    let el: JonesElement = "polariser:0deg,100".parse().unwrap();
    let JonesElement::Uniform(j) = el else {
        panic!()
    };
    assert!(close(j.apply(&JonesVector::Y).intensity(), 0.01, 1e-15));
    assert_eq!(
        "retarder:90deg,45deg".parse::<JonesElement>().unwrap(),
        JonesElement::Uniform(JonesMatrix::quarter_wave(FRAC_PI_4))
    );
    assert_eq!(
        "qplate:0.5".parse::<JonesElement>().unwrap(),
        JonesElement::QPlate {
            q: 0.5,
            alpha: 0.0,
            retardance: PI
        }
    );
    for (bad, says) in [
        ("polariser", "not a Jones element"),
        ("hwp:10deg,3deg", "takes 1"),
        ("qwp:45", "no unit"),
        ("polariser:0deg,0.5", "at least 1"),
        ("qplate:half", "charge"),
        ("mirror:0deg", "unknown Jones element"),
    ] {
        let e = bad.parse::<JonesElement>().unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let p: Polarisation = "unpolarised".parse().unwrap();
    let modes = p.modes().unwrap();
    assert_eq!(modes.len(), 2);
    assert!(close(modes[0].0 + modes[1].0, 1.0, 1e-15));
    // fully polarised Stokes light is one mode; Stokes vectors are normalised to S₀ = 1
    let p: Polarisation = "stokes:2,0,0,-2".parse().unwrap();
    let modes = p.modes().unwrap();
    assert_eq!(modes.len(), 1);
    let Polarised::Uniform(e) = modes[0].1 else {
        panic!()
    };
    assert!(close(e.stokes().0[3], -1.0, 1e-12) && close(modes[0].0, 1.0, 1e-12));
    assert!(matches!(
        "radial".parse::<Polarisation>().unwrap(),
        Polarisation::Coherent(Polarised::Radial { .. })
    ));
    let e = "sideways".parse::<Polarisation>().unwrap_err().to_string();
    assert!(e.contains("radial, azimuthal, unpolarised"), "{e}");
}
