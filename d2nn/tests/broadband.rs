//! Diffractive networks under broadband and partially coherent light: the Burn forward pass
//! against an independent f64 computation (one coherent propagation per line and direction,
//! intensities added), and its gradients against finite differences.

use std::f64::consts::TAU;

use burn::tensor::{Device, Tensor, TensorData};
use num_complex::Complex;
use photonflow_d2nn::eval::{ImageRef, Pixels};
use photonflow_d2nn::network::{Band, Mask, Optics};
use photonflow_d2nn::rng::Rng;
use photonflow_optics::coherence::{Line, Profile, at_wavelength, stack_path_difference};
use photonflow_optics::material::Dispersion;
use photonflow_optics::system::{
    Input, Layer, Material, Modulation, OpticalSystem, RegionSpec, SourceSpec,
};
use photonflow_optics::{Planner, Wave};

const N: usize = 32;

/// `n` values uniform in `[lo, hi)`.
fn uniforms(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n).map(|_| rng.range(lo, hi) as f32).collect()
}
const PITCH: f64 = 2e-6;
const DESIGN: f64 = 1e-6;

/// Two layers 120 µm apart on a 32² grid of 2 µm: a phase plate with phases up to 4π (so the
/// wrap matters) and a relief of n = 1.5 up to three waves deep (so its heights, not its
/// wrapped phase, must set the phase at other wavelengths), with absorption.
fn system(rng: &mut Rng) -> OpticalSystem {
    let mut s = OpticalSystem::new("broadband", DESIGN, N, N, PITCH).unwrap();
    s.input = Input {
        encoding: photonflow_optics::system::Encoding::Amplitude,
        nx: 12,
        ny: 10,
        distance_m: 100e-6,
    };
    // phases kept 0.2 rad away from the wraps, for the finite differences
    let plate: Vec<f32> = uniforms(rng, N * N, 0.2, TAU - 0.2)
        .into_iter()
        .zip(uniforms(rng, N * N, 0.0, 1.0))
        .map(|(p, k)| p + if k < 0.5 { 0.0 } else { TAU as f32 })
        .collect();
    s.layers.push(Layer::phase_only("plate", plate, 120e-6));
    let material = Material::constant("glass", 1.5, 0.002);
    let heights = uniforms(rng, N * N, 0.0, 3.0 * DESIGN / 0.5);
    let mut relief = Layer::phase_only("relief", Vec::new(), 150e-6);
    relief.modulation = Modulation::Height;
    relief.phase = heights
        .iter()
        .map(|&h| (material.phase(f64::from(h), DESIGN, 1.0) % TAU) as f32)
        .collect();
    relief.amplitude = Some(
        heights
            .iter()
            .map(|&h| material.amplitude(f64::from(h), DESIGN) as f32)
            .collect(),
    );
    relief.height = Some(heights);
    relief.material = Some(material);
    s.layers.push(relief);
    for (label, x) in [("a", -10e-6), ("b", 10e-6)] {
        s.detector
            .regions
            .push(RegionSpec::new(label, (x, 0.0), 12e-6, 12e-6));
    }
    s.detector.classes = vec!["a".into(), "b".into()];
    s
}

/// The detector-plane intensity of `image` through `system` under its source, in f64: every
/// line planned anew, each layer's transmission computed from what it is at that wavelength
/// (the plate's phase in [0, 2π) scaled by λ₀/λ, the relief's phase and absorption from its
/// heights and its material's index there), every direction of the source's cone propagated on its own, the intensities added
/// with their weights.
fn reference(system: &OpticalSystem, image: &[f32]) -> Vec<f64> {
    let grid = system.grid().unwrap();
    let n = grid.len();
    let planner = Planner::<f64>::new();
    let gaps = system.propagations().unwrap();
    let illumination = system
        .source
        .as_ref()
        .unwrap()
        .illumination(system.wavelength_m);
    let spread = stack_path_difference(
        &grid,
        gaps.iter().map(|g| g.distance),
        1.0,
        &illumination.coherence,
    );
    let spectrum = illumination.spectrum_for(spread, 1e-3).unwrap();
    let mut input = vec![Complex::new(0f32, 0.0); n];
    system.input.encode_into(image, N, N, &mut input);
    let extent = (12.0f64 * PITCH).hypot(10.0 * PITCH);
    let mut out = vec![0.0; n];
    for line in spectrum.lines() {
        let wave = Wave::vacuum(line.wavelength).unwrap();
        let scale = DESIGN / line.wavelength;
        let layers: Vec<Vec<Complex<f64>>> = system
            .layers
            .iter()
            .map(|l| match (&l.height, &l.material) {
                (Some(h), Some(m)) => {
                    let m = m.at(line.wavelength).unwrap();
                    h.iter()
                        .map(|&h| {
                            let h = f64::from(h);
                            Complex::from_polar(
                                m.amplitude(h, line.wavelength),
                                m.phase(h, line.wavelength, 1.0),
                            )
                        })
                        .collect()
                }
                _ => l
                    .phase
                    .iter()
                    .map(|&p| at_wavelength(Complex::from_polar(1.0, f64::from(p)), scale))
                    .collect(),
            })
            .collect();
        let plans: Vec<_> = gaps
            .iter()
            .map(|g| planner.plan(&grid, wave, g).unwrap())
            .collect();
        let modes = illumination
            .coherence
            .decompose(&grid, wave, extent, 1e-3)
            .unwrap();
        let mut field = vec![Complex::new(0.0, 0.0); n];
        for j in 0..modes.len() {
            modes.fill(j, &mut field);
            for (u, e) in field.iter_mut().zip(&input) {
                *u *= Complex::new(f64::from(e.re), f64::from(e.im));
            }
            plans[0].propagate_in_place(&mut field).unwrap();
            for (t, plan) in layers.iter().zip(&plans[1..]) {
                field.iter_mut().zip(t).for_each(|(u, t)| *u *= t);
                plan.propagate_in_place(&mut field).unwrap();
            }
            let w = line.weight * modes.weights()[j];
            out.iter_mut()
                .zip(&field)
                .for_each(|(o, u)| *o += w * u.norm_sqr());
        }
    }
    out
}

fn image(rng: &mut Rng) -> Vec<f32> {
    uniforms(rng, 120, 0.0, 1.0)
}

fn image_ref(v: &[f32]) -> ImageRef<'_> {
    ImageRef {
        pixels: Pixels::F32(v),
        rows: 10,
        cols: 12,
    }
}

/// Largest difference from the reference, relative to its peak.
fn compare(optics: &Optics, system: &OpticalSystem, image: &[f32]) -> f64 {
    let masks = optics.masks_of(system);
    let got: Vec<f32> = optics
        .detector_intensity(&[image_ref(image)], &masks, &optics.bands)
        .into_data()
        .try_into_vec()
        .unwrap();
    let want = reference(system, image);
    let peak = want.iter().fold(0.0f64, |m, &v| m.max(v));
    got.iter()
        .zip(&want)
        .map(|(&g, w)| (f64::from(g) - w).abs())
        .fold(0.0, f64::max)
        / peak
}

/// A source of laser lines `(wavelength, relative power)`.
fn laser_lines(lines: &[(f64, f64)]) -> Option<SourceSpec> {
    Some(SourceSpec {
        spectrum: Some(Profile::Lines(
            lines
                .iter()
                .map(|&(wavelength, weight)| Line { wavelength, weight })
                .collect(),
        )),
        lines: None,
        na: 0.0,
    })
}

#[test]
fn broadband_networks_add_the_intensities_of_their_lines_and_directions() {
    let mut rng = Rng::new(11);
    let mut system = system(&mut rng);
    let image = image(&mut rng);
    let device = Device::flex();
    // three laser lines of unequal power, far apart (−25 %, +20 %)
    system.source = laser_lines(&[(0.75e-6, 1.0), (DESIGN, 2.0), (1.2e-6, 0.5)]);
    let optics = Optics::new(&system, &device).unwrap();
    assert_eq!(optics.bands.len(), 3);
    assert_eq!(optics.fields_per_image(), 3);
    let e = compare(&optics, &system, &image);
    eprintln!("three lines: {e:.2e}");
    assert!(e < 2e-5, "three lines: {e:.2e} of the peak");

    // a dispersive relief (n 1.60 → 1.45 and κ 0.004 → 0.001 from 0.7 to 1.3 µm; the glass
    // above at the design wavelength): its phase and absorption follow its index at each line
    let glass = system.layers[1].material.clone().unwrap();
    let dispersive = Material {
        dispersion: Some(Dispersion::Table {
            wavelength_um: vec![0.7, 1.0, 1.3],
            n: vec![1.60, 1.50, 1.45],
            kappa: Some(vec![0.004, 0.002, 0.001]),
        }),
        ..glass.clone()
    };
    dispersive.validate(DESIGN).unwrap();
    system.layers[1].material = Some(dispersive);
    let optics = Optics::new(&system, &device).unwrap();
    let e = compare(&optics, &system, &image);
    eprintln!("three lines, dispersive relief: {e:.2e}");
    assert!(e < 2e-5, "dispersive relief: {e:.2e} of the peak");
    // the same relief with its dispersion neglected is measurably different
    let mut neglected = system.clone();
    neglected.layers[1].material = Some(glass.clone());
    let e = compare(&Optics::new(&neglected, &device).unwrap(), &system, &image);
    eprintln!("dispersion neglected: {e:.2e}");
    assert!(e > 0.05, "neglecting the dispersion changes {e:.2e} only");
    // a line beyond the measured range is refused, naming it
    let mut far = system.clone();
    far.source = laser_lines(&[(1.5e-6, 1.0)]);
    let e = Optics::new(&far, &device).err().unwrap().to_string();
    assert!(e.contains("700nm to 1.3um") && e.contains("1.5um"), "{e}");
    system.layers[1].material = Some(glass);

    // one line away from the design wavelength: the relief still scales its heights' phase
    system.source = laser_lines(&[(0.75e-6, 1.0)]);
    let optics = Optics::new(&system, &device).unwrap();
    assert_eq!(optics.bands.len(), 1);
    let e = compare(&optics, &system, &image);
    assert!(e < 2e-5, "one line at 750 nm: {e:.2e} of the peak");

    // an LED: a Gaussian spectrum 20 % wide behind a condenser of NA 0.05
    system.source = Some(SourceSpec {
        spectrum: Some(Profile::Gaussian {
            centre: DESIGN,
            fwhm: 0.2 * DESIGN,
        }),
        lines: None,
        na: 0.05,
    });
    let optics = Optics::new(&system, &device).unwrap();
    let (lines, fields) = (optics.bands.len(), optics.fields_per_image());
    assert!(
        lines >= 3 && fields > 3 * lines,
        "{lines} lines, {fields} fields"
    );
    let e = compare(&optics, &system, &image);
    eprintln!("LED: {e:.2e}, {lines} lines, {fields} fields");
    assert!(
        e < 2e-5,
        "LED: {e:.2e} of the peak ({lines} lines, {fields} fields)"
    );

    // the same light seen as a laser is measurably different: the test can fail
    let laser = Optics::new(
        &OpticalSystem {
            source: None,
            ..system.clone()
        },
        &device,
    )
    .unwrap();
    let e = compare(&laser, &system, &image);
    eprintln!("laser vs LED: {e:.2e}");
    assert!(e > 0.05, "a laser differs from the LED by {e:.2e} only");

    // one direction at the design wavelength is the laser itself, bit for bit
    system.source = Some(SourceSpec {
        spectrum: None,
        lines: None,
        na: 0.0,
    });
    let same = Optics::new(&system, &device).unwrap();
    let masks = laser.masks_of(&system);
    let run = |o: &Optics| -> Vec<f32> {
        o.detector_intensity(&[image_ref(&image)], &masks, &o.bands)
            .into_data()
            .try_into_vec()
            .unwrap()
    };
    assert_eq!(run(&same), run(&laser));
}

/// The test network of `seed` and an image, under a flat band of 0.8–1.2 µm sampled by 3
/// lines, through a cone of NA `na`.
fn lit(seed: u64, na: f64) -> (OpticalSystem, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let mut system = system(&mut rng);
    system.source = Some(SourceSpec {
        spectrum: Some(Profile::Flat {
            min: 0.8e-6,
            max: 1.2e-6,
        }),
        lines: Some(3),
        na,
    });
    (system, image(&mut rng))
}

/// Training's random draws of (line, direction) pairs average to the exact intensity: the
/// estimate is unbiased, each draw is `count` single fields carrying `1/count` of the light.
#[test]
fn random_draws_of_lines_and_directions_average_to_the_exact_intensity() {
    let (system, image) = lit(21, 0.03);
    let optics = Optics::new(&system, &Device::flex()).unwrap();
    let masks = optics.masks_of(&system);
    let images = [image_ref(&image)];
    let intensity = |bands: &[Band]| -> Vec<f64> {
        let v: Vec<f32> = optics
            .detector_intensity(&images, &masks, bands)
            .into_data()
            .try_into_vec()
            .unwrap();
        v.into_iter().map(f64::from).collect()
    };
    let exact = intensity(&optics.bands);
    let peak = exact.iter().fold(0.0f64, |m, &v| m.max(v));
    let fields = optics.fields_per_image();
    assert!(fields > 20, "{fields} fields");
    let mut draws = Rng::new(4);
    let (count, rounds) = (4, 1200u32);
    let mut mean = vec![0.0; exact.len()];
    let mut one = 0.0f64;
    for r in 0..rounds {
        let bands = Band::draw(&optics.bands, &mut draws, count);
        assert_eq!(bands.len(), count);
        assert!(bands.iter().all(|b| b.fields() == 1));
        let weight: f64 = bands.iter().map(|b| b.line.weight).sum();
        assert!((weight - 1.0).abs() < 1e-12);
        let i = intensity(&bands);
        if r == 0 {
            one = i
                .iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                / peak;
        }
        mean.iter_mut()
            .zip(&i)
            .for_each(|(m, v)| *m += v / rounds as f64);
    }
    let err = mean
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / peak;
    eprintln!("{fields} fields; one draw of {count}: {one:.3}, mean of {rounds}: {err:.4}");
    assert!(
        one > 0.05,
        "a single draw is already exact ({one:.2e}): the test cannot fail"
    );
    // unbiased: the mean's error falls as 1/√rounds
    let bound = 2.0 * one / f64::from(rounds).sqrt();
    assert!(
        err < bound,
        "mean of {rounds} draws: {err:.4} (bound {bound:.4})"
    );
    // a laser's one band is not drawn from
    let laser = Optics::new(
        &OpticalSystem {
            source: None,
            ..system
        },
        &Device::flex(),
    )
    .unwrap();
    let same = Band::draw(&laser.bands, &mut draws, count);
    assert_eq!(
        (same.len(), same[0].fields(), same[0].line.weight),
        (1, 1, 1.0)
    );
}

/// Gradients of a detector score through three lines, the plate's wrap and the relief's
/// heights, against central differences.
#[test]
fn broadband_gradients_match_finite_differences() {
    let (system, image) = lit(5, 0.0);
    let device = Device::flex().autodiff();
    let optics = Optics::new(&system, &device).unwrap();
    let fixed = Optics::new(&system, &Device::flex())
        .unwrap()
        .masks_of(&system);
    let plate: Vec<f32> = system.layers[0].phase.clone();
    let loss = |phase: Tensor<2>| -> Tensor<1> {
        let masks = vec![
            Mask {
                amplitude: None,
                phase,
            },
            Mask {
                amplitude: fixed[1].amplitude.clone().map(|a| to(&a, &device)),
                phase: to(&fixed[1].phase, &device),
            },
        ];
        let e = optics.energies(&[image_ref(&image)], &masks);
        let s = optics.scores(e);
        s.narrow(1, 0, 1).reshape([1])
    };
    let leaf =
        Tensor::<2>::from_data(TensorData::new(plate.clone(), [N, N]), &device).require_grad();
    let grads = loss(leaf.clone()).backward();
    let g: Vec<f32> = leaf
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_into_vec()
        .unwrap();
    let at = |p: &[f32]| -> f64 {
        let t = Tensor::<2>::from_data(TensorData::new(p.to_vec(), [N, N]), &device);
        f64::from(loss(t).into_scalar::<f32>())
    };
    let gmax = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    // the pixels the score depends on most, where finite differences are well above rounding
    let mut order: Vec<usize> = (0..N * N).collect();
    order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
    let eps = 1e-2;
    for &k in &order[..8] {
        let (mut up, mut down) = (plate.clone(), plate.clone());
        up[k] += eps;
        down[k] -= eps;
        let fd = (at(&up) - at(&down)) / (2.0 * f64::from(eps));
        let err = (fd - f64::from(g[k])).abs() / f64::from(gmax);
        assert!(err < 2e-2, "pixel {k}: autodiff {} vs {fd:.4e}", g[k]);
    }
}

fn to(t: &Tensor<2>, device: &Device) -> Tensor<2> {
    Tensor::from_data(t.clone().into_data(), device)
}

/// A broadband source through a method whose sampling changes with the wavelength, an NA
/// beyond the medium's index and a line count of 0 are refused, each with the fix.
#[test]
fn bad_sources_are_refused_with_the_fix() {
    let mut rng = Rng::new(3);
    let mut system = system(&mut rng);
    system.source = Some(SourceSpec {
        spectrum: Some(Profile::Gaussian {
            centre: DESIGN,
            fwhm: 0.1 * DESIGN,
        }),
        lines: None,
        na: 0.0,
    });
    system.propagation.method = "fresnel-sfft".into();
    let e = Optics::new(&system, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bl-asm"), "{e}");
    system.propagation.method = "bl-asm".into();
    system.source.as_mut().unwrap().na = 1.5;
    let e = system.validate().unwrap_err().to_string();
    assert!(e.contains("NA") && e.contains("0.01"), "{e}");
    system.source.as_mut().unwrap().na = 0.0;
    system.source.as_mut().unwrap().lines = Some(0);
    let e = system.validate().unwrap_err().to_string();
    assert!(e.contains("1 to 256"), "{e}");
}
