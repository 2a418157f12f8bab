use std::f64::consts::{PI, TAU};

use num_complex::Complex;

use super::solve::loss_and_gradient;
use super::*;
use crate::error::err_text;
use crate::lut::GrayMap;
use crate::rng::Rng;

const LAMBDA: f64 = 532e-9;

fn fourier(n: usize, pad: f64, beam: Beam) -> Setup<f64> {
    let slm = Grid::square(n, 8e-6).unwrap();
    let geometry = Geometry::Fourier { focal: 0.1 };
    Setup::new(
        &Planner::new(),
        slm,
        Wave::vacuum(LAMBDA).unwrap(),
        geometry,
        pad,
        beam,
    )
    .unwrap()
}

/// `k × k` spots `spacing` target pixels apart, centred at `offset` pixels.
fn spot_grid(setup: &Setup<f64>, k: usize, spacing: f64, offset: (f64, f64)) -> Vec<Spot> {
    let g = setup.target_grid();
    let c = (k as f64 - 1.0) / 2.0;
    (0..k * k)
        .map(|i| {
            let (x, y) = ((i % k) as f64 - c, (i / k) as f64 - c);
            Spot::new(
                (x * spacing + offset.0) * g.dx,
                (y * spacing + offset.1) * g.dy,
            )
        })
        .collect()
}

fn options(algorithm: Algorithm, iterations: usize) -> Options {
    Options {
        algorithm,
        iterations,
        ..Options::default()
    }
}

#[test]
fn a_fourier_setup_conserves_power_and_samples_at_lambda_f_over_m_p() {
    let setup = fourier(48, 2.0, Beam::Gaussian { waist: 150e-6 });
    let g = setup.target_grid();
    assert_eq!((g.nx, g.ny), (96, 96));
    assert!((g.dx - LAMBDA * 0.1 / (96.0 * 8e-6)).abs() < 1e-15);
    assert_eq!(setup.resolution_cell(), (2.0, 2.0));
    let mut rng = Rng::new(3);
    let t: Vec<Complex<f64>> = (0..48 * 48)
        .map(|_| Complex::from_polar(1.0, rng.uniform() * TAU))
        .collect();
    let u = setup.field(&t).unwrap();
    let power: f64 = u.iter().map(|z| z.norm_sqr()).sum::<f64>() * g.cell_area();
    assert!((power - 1.0).abs() < 1e-12, "{power}");
}

#[test]
fn a_blazed_grating_puts_all_light_in_one_spot() {
    // Without padding, a grating of period N/5 pixels sends the uniform beam's light into the
    // fifth diffraction order, exactly one target pixel: efficiency 1, and GS finds it.
    let n = 40;
    let setup = fourier(n, 1.0, Beam::Uniform);
    let g = setup.target_grid();
    let target = Target::spots(&setup, &[Spot::new(5.0 * g.dx, -3.0 * g.dy)]).unwrap();
    let grating: Vec<Complex<f64>> = (0..n * n)
        .map(|j| {
            Complex::from_polar(
                1.0,
                TAU * (5.0 * (j % n) as f64 - 3.0 * (j / n) as f64) / n as f64,
            )
        })
        .collect();
    let u = setup.field(&grating).unwrap();
    let q = target
        .quality(&u.iter().map(|z| z.norm_sqr()).collect::<Vec<_>>())
        .unwrap();
    assert!((q.efficiency - 1.0).abs() < 1e-12, "{q:?}");
    let d = design(&setup, &target, &options(Algorithm::Gs, 5), |_| {}).unwrap();
    assert!(d.quality.efficiency > 1.0 - 1e-9, "{:?}", d.quality);
    assert_eq!(d.quality.uniformity, Some(1.0));
}

#[test]
fn weighted_gs_makes_uniform_spot_arrays_where_gs_does_not() {
    let setup = fourier(64, 2.0, Beam::Gaussian { waist: 200e-6 });
    let spots = spot_grid(&setup, 5, 7.0, (9.0, 4.0));
    let target = Target::spots(&setup, &spots).unwrap();
    let gs = design(&setup, &target, &options(Algorithm::Gs, 60), |_| {}).unwrap();
    let wgs = design(&setup, &target, &options(Algorithm::Wgs, 60), |_| {}).unwrap();
    let kim = Options {
        fix_phase_after: Some(20),
        ..options(Algorithm::Wgs, 60)
    };
    let kim = design(&setup, &target, &kim, |_| {}).unwrap();
    let (u_gs, u_wgs, u_kim) = (
        gs.quality.uniformity.unwrap(),
        wgs.quality.uniformity.unwrap(),
        kim.quality.uniformity.unwrap(),
    );
    // Plain WGS oscillates about uniformity; fixing the phase lets the weights settle.
    assert!(u_wgs > 0.97 && u_kim > 0.999, "WGS {u_wgs}, Kim {u_kim}");
    assert!(u_gs < u_wgs - 0.05, "GS {u_gs} vs WGS {u_wgs}");
    assert!(wgs.quality.efficiency > 0.7, "{:?}", wgs.quality);
    // The history is what was run, and the pixel error falls.
    assert_eq!(wgs.history.len(), 60);
    assert!(
        wgs.history[59].error < 0.2 * wgs.history[5].error,
        "{:?}",
        wgs.history[59]
    );
}

#[test]
fn weights_follow_unequal_spot_intensities() {
    let setup = fourier(64, 2.0, Beam::Uniform);
    let mut spots = spot_grid(&setup, 3, 9.0, (0.0, 6.0));
    for (k, s) in spots.iter_mut().enumerate() {
        s.intensity = 1.0 + k as f64 / 4.0;
    }
    let target = Target::spots(&setup, &spots).unwrap();
    let d = design(&setup, &target, &options(Algorithm::Wgs, 60), |_| {}).unwrap();
    // Uniformity is of each spot's power relative to its own target.
    assert!(d.quality.uniformity.unwrap() > 0.97, "{:?}", d.quality);
}

/// A smooth ring target on a `size × size` block.
fn ring(size: usize) -> Vec<f64> {
    let c = (size as f64 - 1.0) / 2.0;
    (0..size * size)
        .map(|i| {
            let (x, y) = ((i % size) as f64 - c, (i / size) as f64 - c);
            let r = (x * x + y * y).sqrt() / c;
            (-((r - 0.6) / 0.15).powi(2)).exp() + 0.3 * (-(r / 0.2).powi(2)).exp()
        })
        .collect()
}

#[test]
fn mraf_forms_images_that_gs_cannot() {
    let setup = fourier(64, 2.0, Beam::Gaussian { waist: 220e-6 });
    let g = setup.target_grid();
    let target = Target::image(&setup, &ring(24), 24, 24, (20.0 * g.dx, 0.0)).unwrap();
    let gs = design(&setup, &target, &options(Algorithm::Gs, 80), |_| {}).unwrap();
    let mraf = design(&setup, &target, &options(Algorithm::Mraf, 80), |_| {}).unwrap();
    let (q_gs, q_mraf) = (gs.quality, mraf.quality);
    // GS speckles (every pixel of the plane is constrained); MRAF lets the noise go outside.
    assert!(
        q_mraf.error < 0.5 * q_gs.error,
        "MRAF {q_mraf:?} vs GS {q_gs:?}"
    );
    assert!(
        q_mraf.error < 0.04 && q_mraf.ssim.unwrap() > 0.99,
        "{q_mraf:?}"
    );
    assert!(q_mraf.psnr.unwrap() > q_gs.psnr.unwrap() + 10.0);
    // From a random start, vortices stay in the image whatever the iterations.
    let random = Options {
        initial: Initial::Random,
        ..options(Algorithm::Mraf, 80)
    };
    let random = design(&setup, &target, &random, |_| {}).unwrap().quality;
    assert!(random.error > 3.0 * q_mraf.error, "{random:?}");
    // The price: light outside the image.
    assert!(
        q_mraf.efficiency > 0.2 && q_mraf.efficiency < q_gs.efficiency,
        "{q_mraf:?} {q_gs:?}"
    );
}

#[test]
fn the_gd_gradient_matches_finite_differences() {
    // Both geometries; the Fresnel one through the padded band-limited angular spectrum,
    // whose adjoint is not its inverse.
    let slm = Grid::new(12, 10, 8e-6, 8e-6).unwrap();
    let wave = Wave::vacuum(LAMBDA).unwrap();
    let planner = Planner::<f64>::new();
    let geometries = [
        Geometry::Fourier { focal: 0.05 },
        Geometry::Fresnel {
            distance: 2e-3,
            method: Method::BandLimitedAsm,
            target_pitch: None,
        },
    ];
    for geometry in geometries {
        let beam = Beam::Gaussian { waist: 40e-6 };
        let setup = Setup::new(&planner, slm, wave, geometry, 1.5, beam).unwrap();
        let g = setup.target_grid();
        let target = match geometry {
            Geometry::Fourier { .. } => Target::spots(
                &setup,
                &[
                    Spot::new(2.0 * g.dx, g.dy),
                    Spot::new(-3.0 * g.dx, -2.0 * g.dy),
                ],
            )
            .unwrap(),
            Geometry::Fresnel { .. } => {
                Target::image(&setup, &ring(12)[..12 * 12], 12, 12, (0.0, 0.0)).unwrap()
            }
        };
        let mut rng = Rng::new(7);
        let phase: Vec<f64> = (0..slm.len()).map(|_| rng.uniform() * TAU).collect();
        let (loss, grad) = loss_and_gradient(&setup, &target, &phase);
        assert!(loss.is_finite() && loss > 0.0);
        let h = 1e-6;
        let mut worst = 0.0f64;
        let scale = grad.iter().map(|g| g.abs()).fold(0.0, f64::max);
        for j in (0..slm.len()).step_by(7) {
            let mut p = phase.clone();
            p[j] += h;
            let up = loss_and_gradient(&setup, &target, &p).0;
            p[j] -= 2.0 * h;
            let down = loss_and_gradient(&setup, &target, &p).0;
            let fd = (up - down) / (2.0 * h);
            worst = worst.max((fd - grad[j]).abs() / scale);
        }
        assert!(worst < 1e-6, "{geometry:?}: worst relative error {worst}");
    }
}

#[test]
fn gradient_descent_designs_spot_arrays_and_images() {
    let setup = fourier(48, 2.0, Beam::Uniform);
    let target = Target::spots(&setup, &spot_grid(&setup, 3, 8.0, (6.0, 0.0))).unwrap();
    let gd = design(&setup, &target, &options(Algorithm::Gd, 150), |_| {}).unwrap();
    let wgs = design(&setup, &target, &options(Algorithm::Wgs, 150), |_| {}).unwrap();
    assert!(gd.quality.uniformity.unwrap() > 0.85, "{:?}", gd.quality);
    assert!(
        gd.quality.efficiency > 0.95 * wgs.quality.efficiency,
        "{:?}",
        gd.quality
    );
    // An image: between GS (efficient, speckled) and MRAF (exact, wasteful).
    let setup = fourier(64, 2.0, Beam::Gaussian { waist: 220e-6 });
    let g = setup.target_grid();
    let target = Target::image(&setup, &ring(24), 24, 24, (20.0 * g.dx, 0.0)).unwrap();
    let gd = design(&setup, &target, &options(Algorithm::Gd, 80), |_| {})
        .unwrap()
        .quality;
    let gs = design(&setup, &target, &options(Algorithm::Gs, 80), |_| {})
        .unwrap()
        .quality;
    assert!(
        gd.error < 0.5 * gs.error && gd.efficiency > 0.85,
        "GD {gd:?}, GS {gs:?}"
    );
}

#[test]
fn a_fresnel_hologram_of_one_point_is_a_fresnel_lens() {
    // Light focused onto an on-axis point at distance z: the SLM's phase is the lens
    // −πr²/(λz) (up to a constant), which GS finds from a random start in one iteration.
    let n = 64;
    let z = 20e-3;
    let slm = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(LAMBDA).unwrap();
    let geometry = Geometry::Fresnel {
        distance: z,
        method: Method::BandLimitedAsm,
        target_pitch: None,
    };
    let setup =
        Setup::<f64>::new(&Planner::new(), slm, wave, geometry, 1.0, Beam::Uniform).unwrap();
    let target = Target::spots(&setup, &[Spot::new(0.0, 0.0)]).unwrap();
    let d = design(&setup, &target, &options(Algorithm::Gs, 2), |_| {}).unwrap();
    let (xs, ys) = (slm.x(), slm.y());
    let lens = |j: usize| -PI * (xs[j % n].powi(2) + ys[j / n].powi(2)) / (LAMBDA * z);
    // The designed phase minus the lens, wrapped, inside the panel's inscribed disc (the lens's
    // local frequency r/(λz) stays below the grid's Nyquist frequency out to 665 µm). The
    // sampled, band-limited point response ripples about the continuous chirp by ~0.1 rad; a
    // focal length off by 1 % would add a bowl of 0.18 rad at the rim, which the fit of
    // `e = c₀ + c₁r²` sees.
    let centre = (n / 2) * n + n / 2;
    let offset = d.phase[centre] - lens(centre);
    let (mut s, mut sr, mut srr, mut se, mut sre, mut see) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for j in 0..n * n {
        let r2 = xs[j % n].powi(2) + ys[j / n].powi(2);
        if r2 < 250e-6f64.powi(2) {
            let e = (d.phase[j] - lens(j) - offset + PI).rem_euclid(TAU) - PI;
            let q = r2 / 250e-6f64.powi(2);
            (s, sr, srr, se, sre, see) = (
                s + 1.0,
                sr + q,
                srr + q * q,
                se + e,
                sre + q * e,
                see + e * e,
            );
        }
    }
    let bowl = (s * sre - sr * se) / (s * srr - sr * sr);
    let rms = (see / s - (se / s).powi(2)).sqrt();
    // 1 % of focal length is 0.18 rad of bowl.
    assert!(
        bowl.abs() < 0.036 && rms < 0.08,
        "bowl {bowl} rad at the rim, ripple {rms} rad RMS"
    );
}

#[test]
fn quantised_iterations_beat_rounding_the_phase() {
    let setup = fourier(64, 2.0, Beam::Uniform);
    let target = Target::spots(&setup, &spot_grid(&setup, 4, 7.0, (10.0, 2.0))).unwrap();
    let map = GrayMap::linear(4);
    let rounded = Options {
        quantise: Some(map.clone()),
        quantised_iterations: 0,
        ..options(Algorithm::Wgs, 60)
    };
    let aware = Options {
        quantise: Some(map.clone()),
        quantised_iterations: 20,
        ..options(Algorithm::Wgs, 40)
    };
    let rounded = design(&setup, &target, &rounded, |_| {}).unwrap();
    let aware = design(&setup, &target, &aware, |_| {}).unwrap();
    let (r, a) = (
        rounded.quality.uniformity.unwrap(),
        aware.quality.uniformity.unwrap(),
    );
    assert!(a > r + 0.05 && a > 0.9, "rounded {r}, aware {a}");
    // What is reported is what the gray levels show.
    let gray = aware.gray.as_ref().unwrap();
    assert!(gray.iter().all(|&g| g < 4));
    let t: Vec<Complex<f64>> = gray
        .iter()
        .map(|&g| Complex::from_polar(1.0, TAU * f64::from(g) / 4.0))
        .collect();
    let u = setup.field(&t).unwrap();
    let i: Vec<f64> = u.iter().map(|z| z.norm_sqr()).collect();
    assert_eq!(target.quality(&i).unwrap(), aware.quality);
    assert!(aware.history.iter().skip(40).all(|s| s.quantised));
}

#[test]
fn bad_targets_and_options_are_refused_with_the_fix() {
    let setup = fourier(32, 2.0, Beam::Uniform);
    let g = setup.target_grid();
    let e = err_text(Target::spots(&setup, &[Spot::new(40.0 * g.dx, 0.0)]));
    assert!(e.contains("outside the target plane"), "{e}");
    let e = err_text(Target::spots(
        &setup,
        &[Spot::new(0.0, 0.0), Spot::new(g.dx, 0.0)],
    ));
    assert!(e.contains("closer than the SLM's resolution cell"), "{e}");
    let e = err_text(Target::image(
        &setup,
        &vec![1.0; 40 * 40],
        40,
        40,
        (30.0 * g.dx, 0.0),
    ));
    assert!(e.contains("do not fit"), "{e}");
    let e = err_text(Target::image(&setup, &[0.0; 4], 2, 2, (0.0, 0.0)));
    assert!(e.contains("black"), "{e}");
    let other = fourier(16, 2.0, Beam::Uniform);
    let target = Target::spots(&other, &[Spot::new(0.0, 0.0)]).unwrap();
    let e = err_text(design(&setup, &target, &Options::default(), |_| {}));
    assert!(e.contains("another setup"), "{e}");
    let target = Target::spots(&setup, &[Spot::new(0.0, 0.0)]).unwrap();
    let e = err_text(design(
        &setup,
        &target,
        &Options {
            mix: 1.5,
            ..Options::default()
        },
        |_| {},
    ));
    assert!(e.contains("mix"), "{e}");
    let slm = Grid::square(32, 8e-6).unwrap();
    let wave = Wave::vacuum(LAMBDA).unwrap();
    let e = err_text(Setup::<f64>::new(
        &Planner::new(),
        slm,
        wave,
        Geometry::Fourier { focal: 0.1 },
        40.0,
        Beam::Uniform,
    ));
    assert!(e.contains("pad"), "{e}");
    // A Fresnel distance the plain angular spectrum would alias at is refused with its limit.
    let far = Geometry::Fresnel {
        distance: 1.0,
        method: Method::Asm,
        target_pitch: None,
    };
    let e = err_text(Setup::<f64>::new(
        &Planner::new(),
        slm,
        wave,
        far,
        1.0,
        Beam::Uniform,
    ));
    assert!(e.contains("asm"), "{e}");
    assert_eq!("mraf".parse::<Algorithm>().unwrap(), Algorithm::Mraf);
    assert!(
        "wgs2"
            .parse::<Algorithm>()
            .unwrap_err()
            .to_string()
            .contains("gs, wgs, mraf, gd")
    );
}

#[test]
fn finite_pixels_dim_off_axis_orders_and_leave_a_zero_order() {
    // A blazed grating into order (12, −7) of a 40-pixel window (pad 1): the spot's amplitude
    // is F·sinc(aX/λf)·sinc(aY/λf), the zero order's (1 − F), both exactly.
    let n = 40;
    let fill = 0.81;
    let setup = fourier(n, 1.0, Beam::Uniform)
        .with_fill_factor(fill)
        .unwrap();
    assert_eq!(setup.fill_factor(), fill);
    let g = setup.target_grid();
    let (kx, ky) = (12.0, -7.0);
    let grating: Vec<Complex<f64>> = (0..n * n)
        .map(|j| {
            Complex::from_polar(
                1.0,
                TAU * (kx * (j % n) as f64 + ky * (j / n) as f64) / n as f64,
            )
        })
        .collect();
    let u = setup.field(&grating).unwrap();
    let sinc = |t: f64| (PI * t).sin() / (PI * t);
    // a·X/(λf) = √F·p·k·λf/(N·p)/(λf) = √F·k/N.
    let envelope = fill * sinc(fill.sqrt() * kx / n as f64) * sinc(fill.sqrt() * ky / n as f64);
    let spot =
        u[((ky + (n / 2) as f64) as usize) * n + (kx as usize + n / 2)].norm_sqr() * g.cell_area();
    assert!(
        (spot - envelope * envelope).abs() < 1e-12,
        "{spot} vs {}",
        envelope * envelope
    );
    let zero = u[(n / 2) * n + n / 2].norm_sqr() * g.cell_area();
    assert!((zero - (1.0 - fill).powi(2)).abs() < 1e-12, "{zero}");

    // Spots across the field: weighted GS through the pixel model evens the envelope out; a
    // design for ideal pixels, shown on these, leaves the outer spots dimmer.
    let ideal = fourier(64, 2.0, Beam::Uniform);
    let real = fourier(64, 2.0, Beam::Uniform)
        .with_fill_factor(0.6)
        .unwrap();
    let spots: Vec<Spot> = (0..5)
        .map(|k| {
            Spot::new(
                (k as f64 * 12.0 + 8.0) * ideal.target_grid().dx,
                5.0 * ideal.target_grid().dy,
            )
        })
        .collect();
    let kim = |setup: &Setup<f64>| {
        let target = Target::spots(setup, &spots).unwrap();
        let o = Options {
            fix_phase_after: Some(30),
            ..options(Algorithm::Wgs, 60)
        };
        (design(setup, &target, &o, |_| {}).unwrap(), target)
    };
    let (aware, target) = kim(&real);
    let (naive, _) = kim(&ideal);
    let shown: Vec<Complex<f64>> = naive
        .phase
        .iter()
        .map(|&p| Complex::from_polar(1.0, p))
        .collect();
    let naive_on_real: Vec<f64> = real
        .field(&shown)
        .unwrap()
        .iter()
        .map(|z| z.norm_sqr())
        .collect();
    let naive_q = target.quality(&naive_on_real).unwrap();
    let (a, b) = (
        aware.quality.uniformity.unwrap(),
        naive_q.uniformity.unwrap(),
    );
    assert!(a > 0.999 && b < 0.9, "aware {a}, naive {b}");
    assert!(err_text(fourier(8, 1.0, Beam::Uniform).with_fill_factor(1.2)).contains("fill factor"));
}

#[test]
fn spots_off_the_focal_plane_are_focused_there() {
    // NA ≈ 0.05 (1 mm of SLM behind a 10 mm lens): depth of focus λ/NA² ≈ 0.2 mm.
    let n = 128;
    let slm = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(LAMBDA).unwrap();
    let f = 10e-3;
    let setup = Setup::<f64>::new(
        &Planner::new(),
        slm,
        wave,
        Geometry::Fourier { focal: f },
        2.0,
        Beam::Uniform,
    )
    .unwrap();
    let g = setup.target_grid();
    // One spot 0.5 mm beyond the focal plane: GS's hologram is the diverging lens
    // +k r² dz/(2f²) (7.7 rad at the rim; with the sign wrong, 15 rad of bowl).
    let dz = 0.5e-3;
    let target = Target::spots(&setup, &[Spot::at(0.0, 0.0, dz)]).unwrap();
    assert_eq!(target.planes(), &[dz]);
    let d = design(&setup, &target, &options(Algorithm::Gs, 2), |_| {}).unwrap();
    let k = TAU / LAMBDA;
    let (xs, ys) = (slm.x(), slm.y());
    let lens = |j: usize| k * (xs[j % n].powi(2) + ys[j / n].powi(2)) * dz / (2.0 * f * f);
    let centre = (n / 2) * n + n / 2;
    let offset = d.phase[centre] - lens(centre);
    let worst = (0..n * n)
        .map(|j| ((d.phase[j] - lens(j) - offset + PI).rem_euclid(TAU) - PI).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-6, "largest deviation from the lens {worst} rad");

    // Spots in three planes at once: weighted GS makes them uniform, each focused in its own
    // plane and blurred in the others.
    let spots = [
        Spot::at(-20.0 * g.dx, 0.0, 0.0),
        Spot::at(20.0 * g.dx, 10.0 * g.dy, 0.0),
        Spot::at(0.0, -15.0 * g.dy, 0.5e-3),
        Spot::at(-10.0 * g.dx, 25.0 * g.dy, 0.5e-3),
        Spot::at(25.0 * g.dx, -20.0 * g.dy, -0.4e-3),
    ];
    let target = Target::spots(&setup, &spots).unwrap();
    assert_eq!(target.planes(), &[-0.4e-3, 0.0, 0.5e-3]);
    let o = Options {
        fix_phase_after: Some(40),
        ..options(Algorithm::Wgs, 80)
    };
    let d = design(&setup, &target, &o, |_| {}).unwrap();
    assert!(
        d.quality.uniformity.unwrap() > 0.99 && d.quality.efficiency > 0.5,
        "{:?}",
        d.quality
    );
    assert_eq!(d.intensity.len(), 3 * g.len());
    // Spot 2 (at +0.5 mm): its peak there against the same pixel in the focal plane.
    let pixel = (g.ny / 2 - 15) * g.nx + g.nx / 2;
    let (focused, blurred) = (
        d.intensity[2 * g.len() + pixel],
        d.intensity[g.len() + pixel],
    );
    assert!(focused > 20.0 * blurred, "{focused} vs {blurred}");
    // Fresnel holograms and finite pixels refuse spots off the plane.
    let fresnel = Setup::<f64>::new(
        &Planner::new(),
        slm,
        wave,
        Geometry::Fresnel {
            distance: 5e-3,
            method: Method::BandLimitedAsm,
            target_pitch: None,
        },
        1.0,
        Beam::Uniform,
    )
    .unwrap();
    let e = err_text(Target::spots(&fresnel, &[Spot::at(0.0, 0.0, 1e-3)]));
    assert!(e.contains("Fourier hologram"), "{e}");
    let pixels = fourier(32, 2.0, Beam::Uniform)
        .with_fill_factor(0.9)
        .unwrap();
    let e = err_text(Target::spots(&pixels, &[Spot::at(0.0, 0.0, 1e-3)]));
    assert!(e.contains("fill factor"), "{e}");
}

/// A rig the model does not know: a Gaussian beam where the model has a uniform one, an SLM
/// whose gray `g` shows `2π(g/256)^1.3` and that adds 2.5 rad of astigmatism and coma, and a camera
/// whose spot readings carry `noise` (relative, uniform).
fn unknown_rig(n: usize, target: &Target, noise: f64) -> impl FnMut(&[u16]) -> Result<Vec<f64>> {
    let truth = fourier(n, 2.0, Beam::Gaussian { waist: 150e-6 });
    let slm = truth.slm();
    let (xs, ys) = (slm.x(), slm.y());
    let r2 = (slm.extent().0 / 2.0).powi(2);
    let aberration: Vec<f64> = (0..n * n)
        .map(|j| {
            let (x, y) = (xs[j % n], ys[j / n]);
            2.5 * (x * x - y * y) / r2 + 2.5 * x * (x * x + y * y) / r2.powf(1.5)
        })
        .collect();
    let signal = target.signal().to_vec();
    let mut rng = Rng::new(11);
    move |gray: &[u16]| {
        let t: Vec<Complex<f64>> = gray
            .iter()
            .zip(&aberration)
            .map(|(&g, a)| Complex::from_polar(1.0, TAU * (f64::from(g) / 256.0).powf(1.3) + a))
            .collect();
        let u = truth.field(&t)?;
        Ok(signal
            .iter()
            .map(|&k| u[k].norm_sqr() * (1.0 + noise * (2.0 * rng.uniform() - 1.0)))
            .collect())
    }
}

#[test]
fn camera_feedback_evens_out_spots_on_a_rig_the_model_does_not_know() {
    let n = 64;
    let model = fourier(n, 2.0, Beam::Uniform);
    let target = Target::spots(&model, &spot_grid(&model, 4, 8.0, (12.0, 6.0))).unwrap();
    let o = Options {
        fix_phase_after: Some(40),
        quantise: Some(GrayMap::linear(256)),
        ..options(Algorithm::Wgs, 80)
    };
    let start = design(&model, &target, &o, |_| {}).unwrap();
    assert!(start.quality.uniformity.unwrap() > 0.99);
    for (noise, bar) in [(0.0, 0.99), (0.01, 0.95)] {
        let f = refine(
            &model,
            &target,
            &o,
            &start,
            15,
            unknown_rig(n, &target, noise),
            |_| {},
        )
        .unwrap();
        let (first, last) = (f.rounds[0].uniformity, f.rounds[15].uniformity);
        assert_eq!(f.rounds.len(), 16);
        assert!(
            first < 0.85 && last > bar,
            "noise {noise}: {first} → {last}"
        );
        assert!(f.gray.iter().all(|&g| g < 256));
    }
    // Bad measurements and targets are refused.
    let e = err_text(refine(
        &model,
        &target,
        &o,
        &start,
        2,
        |_| Ok(vec![1.0; 3]),
        |_| {},
    ));
    assert!(e.contains("one finite intensity"), "{e}");
    let no_levels = Options {
        quantise: None,
        ..o.clone()
    };
    let e = err_text(refine(
        &model,
        &target,
        &no_levels,
        &start,
        2,
        |_| Ok(vec![1.0; 16]),
        |_| {},
    ));
    assert!(e.contains("gray levels"), "{e}");
}

#[test]
fn a_correction_pattern_is_shown_and_cancels_the_panels_aberration() {
    let n = 48;
    let setup = fourier(n, 2.0, Beam::Uniform);
    let target = Target::spots(&setup, &spot_grid(&setup, 3, 8.0, (8.0, 4.0))).unwrap();
    // A maker's correction: smooth, several radians.
    let slm = setup.slm();
    let (xs, ys) = (slm.x(), slm.y());
    let correction: Vec<f64> = (0..n * n)
        .map(|j| 3.0 * (xs[j % n] / 192e-6).powi(2) - 2.0 * (ys[j / n] / 192e-6))
        .collect();
    let map = GrayMap::linear(256);
    let plain = Options {
        quantise: Some(map.clone()),
        ..options(Algorithm::Wgs, 60)
    };
    let corrected = Options {
        correction: Some(correction.clone()),
        ..plain.clone()
    };
    let a = design(&setup, &target, &plain, |_| {}).unwrap();
    let b = design(&setup, &target, &corrected, |_| {}).unwrap();
    // The design, shown with the correction added …
    let (ga, gb) = (a.gray.unwrap(), b.gray.unwrap());
    let map_ok = (0..n * n).all(|j| gb[j] == map.gray(b.phase[j] + correction[j]));
    assert!(map_ok, "gray levels are not the design plus the correction");
    assert_ne!(ga, gb);
    // … and on a panel whose aberration is its negative the light sees the design.
    let t: Vec<Complex<f64>> = gb
        .iter()
        .zip(&correction)
        .map(|(&g, c)| Complex::from_polar(1.0, TAU * f64::from(g) / 256.0 - c))
        .collect();
    let i: Vec<f64> = setup
        .field(&t)
        .unwrap()
        .iter()
        .map(|z| z.norm_sqr())
        .collect();
    let q = target.quality(&i).unwrap();
    assert!((q.uniformity.unwrap() - b.quality.uniformity.unwrap()).abs() < 1e-9);
    assert!((q.efficiency - b.quality.efficiency).abs() < 1e-9);
    assert!(b.quality.uniformity.unwrap() > 0.99, "{:?}", b.quality);
    let bad = Options {
        correction: Some(vec![0.0; 5]),
        ..plain
    };
    assert!(err_text(design(&setup, &target, &bad, |_| {})).contains("correction"));
}

#[test]
fn a_measured_beam_is_the_beam_it_measures() {
    // A camera's picture of a Gaussian beam (any scale) gives the Gaussian's design.
    let n = 48;
    let waist = 120e-6;
    let slm = Grid::square(n, 8e-6).unwrap();
    let (xs, ys) = (slm.x(), slm.y());
    let picture: Vec<f64> = (0..n * n)
        .map(|j| 3e4 * (-2.0 * (xs[j % n].powi(2) + ys[j / n].powi(2)) / (waist * waist)).exp())
        .collect();
    let gaussian = fourier(n, 2.0, Beam::Gaussian { waist });
    let measured = fourier(n, 2.0, Beam::Measured(picture.into()));
    for (a, b) in gaussian.beam().iter().zip(measured.beam()) {
        assert!((a - b).abs() < 1e-9 * a.abs().max(1.0), "{a} vs {b}");
    }
    assert!((gaussian.beam_radius - measured.beam_radius).abs() < 1e-12);
    let target = Target::spots(&gaussian, &spot_grid(&gaussian, 3, 8.0, (8.0, 0.0))).unwrap();
    let (a, b) = (
        design(&gaussian, &target, &options(Algorithm::Wgs, 30), |_| {}).unwrap(),
        design(
            &measured,
            &Target::spots(&measured, &spot_grid(&measured, 3, 8.0, (8.0, 0.0))).unwrap(),
            &options(Algorithm::Wgs, 30),
            |_| {},
        )
        .unwrap(),
    );
    assert!((a.quality.efficiency - b.quality.efficiency).abs() < 1e-6);
    // Bad pictures are refused.
    let wave = Wave::vacuum(LAMBDA).unwrap();
    let g = Geometry::Fourier { focal: 0.1 };
    let planner = Planner::<f64>::new();
    let e = err_text(Setup::new(
        &planner,
        slm,
        wave,
        g,
        2.0,
        Beam::Measured(vec![1.0; 5].into()),
    ));
    assert!(e.contains("measured beam of 5 values"), "{e}");
    let e = err_text(Setup::new(
        &planner,
        slm,
        wave,
        g,
        2.0,
        Beam::Measured(vec![0.0; n * n].into()),
    ));
    assert!(e.contains("no light"), "{e}");
    let mut nan = vec![1.0; n * n];
    nan[7] = f64::NAN;
    let e = err_text(Setup::new(
        &planner,
        slm,
        wave,
        g,
        2.0,
        Beam::Measured(nan.into()),
    ));
    assert!(e.contains("finite"), "{e}");
}

/// A lensless projection onto a screen ten times the SLM's size: the target plane sampled at
/// 40 µm (the SLM at 8 µm) 30 cm away, through the scalable angular spectrum. The spots the
/// design reports are where the Rayleigh–Sommerfeld integral of the SLM's field, summed
/// directly at each spot, puts them.
#[test]
fn a_fresnel_hologram_projects_onto_a_screen_of_its_own_pitch() {
    let n = 128;
    let slm = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(LAMBDA).unwrap();
    let z = 0.3;
    let geometry = Geometry::Fresnel {
        distance: z,
        method: Method::Sas,
        target_pitch: Some(40e-6),
    };
    let setup =
        Setup::<f64>::new(&Planner::new(), slm, wave, geometry, 2.0, Beam::Uniform).unwrap();
    let g = setup.target_grid();
    assert_eq!((g.nx, g.ny, g.dx), (256, 256, 40e-6));
    assert_eq!(setup.method(), Method::Sas);
    let spots: Vec<Spot> = (0..9)
        .map(|k| {
            Spot::new(
                ((k % 3) as f64 - 1.0) * 1.5e-3,
                ((k / 3) as f64 - 1.0) * 1.5e-3,
            )
        })
        .collect();
    let target = Target::spots(&setup, &spots).unwrap();
    let d = design(&setup, &target, &options(Algorithm::Wgs, 40), |_| {}).unwrap();
    let (u, e) = (d.quality.uniformity.unwrap(), d.quality.efficiency);
    assert!(u > 0.99 && e > 0.6, "uniformity {u}, efficiency {e}");
    // The SLM's field, and the RS integral at each spot.
    let beam = setup.beam();
    let slm_field = crate::Field::from_vec(
        (0..slm.len())
            .map(|j| Complex::from_polar(beam[j], d.phase[j]))
            .collect(),
        slm,
        LAMBDA,
    )
    .unwrap();
    let designed = setup
        .field(
            &d.phase
                .iter()
                .map(|&p| Complex::from_polar(1.0, p))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    for (x, y, _, _) in target.placed_spots() {
        let at = Window::new(Grid::square(1, 40e-6).unwrap(), (x, y)).unwrap();
        let direct = crate::propagate::rs_direct_window(&slm_field, wave, z, &at).unwrap();
        let (c, r) = (
            (x / g.dx).round() as i64 + (g.nx / 2) as i64,
            (y / g.dy).round() as i64 + (g.ny / 2) as i64,
        );
        let ours = designed[r as usize * g.nx + c as usize];
        let e = (ours - direct.data()[0]).norm() / direct.data()[0].norm();
        assert!(
            e < 1e-6,
            "spot at ({x}, {y}): {ours} vs direct {}",
            direct.data()[0]
        );
    }
}
