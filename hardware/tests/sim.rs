//! The simulated rig against physics and against itself: energy conservation, layer loss,
//! SLM contrast and levels, misalignment as a moved model, unbiased noise, reproducibility,
//! and a readout that finds the lit region.

use photonflow_hardware::config::{Camera, Offset, RigConfig};
use photonflow_hardware::identify::{IdentifyOptions, identify};
use photonflow_hardware::{CameraMeasurement, Placement, Readout, Rig, SimRig, photon_transfer};
use photonflow_optics::rng::Rng;
use photonflow_optics::system::{Layer, OpticalSystem, RegionSpec};
use photonflow_optics::units::Length;

const PITCH: f64 = 8e-6;

/// 64² grid, a 32² amplitude input 2 mm before two random phase layers 2 mm apart, four
/// detector regions in the quadrants.
fn system(layers: usize) -> OpticalSystem {
    let mut s = OpticalSystem::new("test", 632.8e-9, 64, 64, PITCH).unwrap();
    s.input.nx = 32;
    s.input.ny = 32;
    s.input.distance_m = 2e-3;
    let mut rng = Rng::new(9);
    for l in 0..layers {
        let phase = (0..64 * 64)
            .map(|_| rng.range(0.0, std::f64::consts::TAU) as f32)
            .collect();
        s.layers
            .push(Layer::phase_only(format!("layer{l}"), phase, 2e-3));
    }
    let q = 12.0 * PITCH;
    for (k, (x, y)) in [(-q, -q), (q, -q), (-q, q), (q, q)].into_iter().enumerate() {
        s.detector.regions.push(RegionSpec::new(
            format!("r{k}"),
            (x, y),
            16.0 * PITCH,
            16.0 * PITCH,
        ));
        s.detector.classes.push(format!("c{k}"));
    }
    s.validate().unwrap();
    s
}

fn image(f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    (0..32 * 32).map(|i| f(i / 32, i % 32)).collect()
}

/// An input lit in one quadrant (0: top left, 1: top right, 2: bottom left, 3: bottom right).
fn quadrant_image(quadrant: usize) -> Vec<f32> {
    image(|r, c| {
        if usize::from(r >= 16) * 2 + usize::from(c >= 16) == quadrant {
            1.0
        } else {
            0.0
        }
    })
}

/// The detector region under the middle of a quadrant of the input (imaged onto the plane):
/// from the detector's own geometry.
fn quadrant_region(detector: &photonflow_optics::Detector, quadrant: usize) -> usize {
    let (r, c) = (
        if quadrant >= 2 { 24 } else { 8 },
        if quadrant % 2 == 1 { 24 } else { 8 },
    );
    (0..4)
        .find(|&k| detector.region_weights(k)[(16 + r) * 64 + 16 + c] > 0.5)
        .unwrap()
}

fn total(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum()
}

#[test]
fn phase_layers_conserve_energy_and_each_layer_passes_its_transmittance() {
    let s = system(2);
    let mut rig = SimRig::new(&s, RigConfig::ideal()).unwrap();
    let readout = Readout::new(&s, &rig.describe().unwrap(), None, None, None).unwrap();
    let white = readout.display(&vec![1.0; 32 * 32]);
    let i = rig.intensities(&[&white]).unwrap().pop().unwrap();
    // A full input carries 32² units of |u|²; phase layers and the band-limited ASM keep it
    // but for what leaves the 64² window (a few 10⁻³ here).
    let kept = total(&i) / 1024.0;
    assert!(kept > 0.99 && kept <= 1.0 + 1e-5, "{kept}");
    let mut lossy = RigConfig::ideal();
    lossy.layers.transmittance = 0.81;
    let rig2 = SimRig::new(&s, lossy).unwrap();
    let i2 = rig2.intensities(&[&white]).unwrap().pop().unwrap();
    let ratio = total(&i2) / total(&i);
    assert!((ratio - 0.81 * 0.81).abs() < 1e-5, "{ratio}");
}

#[test]
fn slm_levels_and_contrast_reach_the_input() {
    let s = system(0);
    let mut config = RigConfig::ideal();
    config.slm.contrast = Some(400.0);
    let rig = SimRig::new(&s, config).unwrap();
    // All black: every input pixel passes 1/400 of the light.
    let black = vec![0u16; 32 * 32];
    let i = rig.intensities(&[&black]).unwrap().pop().unwrap();
    let kept = total(&i) / (1024.0 / 400.0);
    assert!(kept > 0.99 && kept <= 1.0 + 1e-5, "{kept}");
    // A 1-bit SLM makes 0.7 white: the same light as a full input.
    let mut one_bit = RigConfig::ideal();
    one_bit.slm.bits = 1;
    let mut rig = SimRig::new(&s, one_bit).unwrap();
    let d = rig.describe().unwrap();
    let readout = Readout::new(&s, &d, None, None, None).unwrap();
    let levels = readout.display(&vec![0.7; 32 * 32]);
    assert!(levels.iter().all(|&l| l == 1));
    let i = rig.intensities(&[&levels]).unwrap().pop().unwrap();
    assert!((total(&i) / 1024.0 - 1.0).abs() < 0.01);
    // Levels beyond the SLM's bits and wrong sizes are refused.
    assert!(rig.display(&vec![2u16; 32 * 32]).is_err());
    assert!(rig.display(&[0u16; 10]).is_err());
}

#[test]
fn a_misaligned_rig_is_the_model_with_its_layers_moved() {
    let s = system(2);
    let mut config = RigConfig::ideal();
    config.seed = 4;
    config.layers.lateral = Length(3.0 * PITCH);
    config.layers.axial = Length(100e-6);
    let rig = SimRig::new(&s, config).unwrap();
    let places = rig.placements().to_vec();
    assert!(places.iter().any(|p| p.dx_px != 0.0 || p.dy_px != 0.0));
    assert!(
        places
            .iter()
            .all(|p| p.dx_px.abs() <= 3.0 && p.dx_px.fract() == 0.0 && p.dz_m.abs() <= 100e-6)
    );
    // The same model built by hand: masks rolled, distances changed.
    let mut moved = s.clone();
    moved.input.distance_m += places[0].dz_m;
    for (l, p) in places.iter().enumerate() {
        let layer = &mut moved.layers[l];
        let mut rolled = vec![0f32; 64 * 64];
        for r in 0..64 {
            for c in 0..64 {
                let (rr, cc) = (
                    (r as i64 + p.dy_px as i64).rem_euclid(64) as usize,
                    (c as i64 + p.dx_px as i64).rem_euclid(64) as usize,
                );
                rolled[rr * 64 + cc] = layer.phase[r * 64 + c];
            }
        }
        layer.phase = rolled;
        let next = places.get(l + 1).map_or(0.0, |q| q.dz_m);
        layer.distance_m += next - p.dz_m;
    }
    let exact = SimRig::new(&moved, RigConfig::ideal()).unwrap();
    let levels: Vec<u16> = image(|r, c| ((r * 7 + c * 3) % 11) as f32 / 10.0)
        .iter()
        .map(|&v| (v * 65535.0).round() as u16)
        .collect();
    let a = rig.intensities(&[&levels]).unwrap().pop().unwrap();
    let b = exact.intensities(&[&levels]).unwrap().pop().unwrap();
    let peak = b.iter().cloned().fold(0.0f32, f32::max);
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-4 * peak, "{diff} of {peak}");
    // And it differs from the aligned model.
    let aligned = SimRig::new(&s, RigConfig::ideal()).unwrap();
    let c = aligned.intensities(&[&levels]).unwrap().pop().unwrap();
    let moved_by = a
        .iter()
        .zip(&c)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(moved_by > 0.05 * peak, "{moved_by} of {peak}");
}

#[test]
fn noise_is_unbiased_and_reproduced_from_the_seed() {
    let s = system(1);
    let mut config = RigConfig {
        seed: 21,
        ..RigConfig::default()
    };
    config.camera = Camera {
        bits: 16,
        full_well: 1e7,
        gain: Some(1.0),
        ..Camera::default()
    };
    config.source.photons_per_s = 2e8;
    let mut rig = SimRig::new(&s, config.clone()).unwrap();
    let d = rig.describe().unwrap();
    let readout = Readout::new(&s, &d, None, None, None).unwrap();
    let levels = readout.display(&image(
        |r, c| if (r / 8 + c / 8) % 2 == 0 { 1.0 } else { 0.2 },
    ));
    let frames = rig
        .run(std::slice::from_ref(&levels), 200)
        .unwrap()
        .pop()
        .unwrap();
    // The expectation of a pixel: η·p/K + dark·t/K + black.
    let i = rig.intensities(&[&levels]).unwrap().pop().unwrap();
    let c = &config.camera;
    let scale = config.source.photons_per_s * c.exposure / 1024.0;
    let (mut chi, mut count) = (0.0, 0);
    for (k, &v) in i.iter().enumerate() {
        let electrons = c.quantum_efficiency * f64::from(v) * scale + c.dark_current * c.exposure;
        let mean = electrons + f64::from(c.black_level);
        let var = electrons + c.read_noise * c.read_noise + 1.0 / 12.0;
        let got = frames.iter().map(|f| f64::from(f.pixels[k])).sum::<f64>() / 200.0;
        chi += (got - mean).powi(2) / (var / 200.0);
        count += 1;
    }
    // Mean squared standardised error ≈ 1 over 4096 pixels.
    let m = chi / f64::from(count);
    assert!((m - 1.0).abs() < 0.1, "{m}");
    // The same seed gives the same frames; the next frames differ.
    let mut again = SimRig::new(&s, config).unwrap();
    let same = again
        .run(std::slice::from_ref(&levels), 2)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(same[0], frames[0]);
    assert_eq!(same[1], frames[1]);
    let next = again
        .run(std::slice::from_ref(&levels), 1)
        .unwrap()
        .pop()
        .unwrap();
    assert_ne!(next[0], frames[0]);
}

#[test]
fn the_readout_finds_the_lit_quadrant_with_confidence() {
    // No layers and a short gap: the input is imaged onto the detector plane, so a bright
    // quadrant of the image lights the region there.
    let mut s = system(0);
    s.input.distance_m = 20e-6;
    s.detector.temperature = 0.1;
    let mut rig = SimRig::new(&s, RigConfig::default()).unwrap();
    let d = rig.describe().unwrap();
    let readout = Readout::new(&s, &d, None, None, None).unwrap();
    let detector = s.detector().unwrap();
    for quadrant in 0..4 {
        let lit = quadrant_image(quadrant);
        let frames = rig.run(&[readout.display(&lit)], 3).unwrap().pop().unwrap();
        let p = readout.predict(&frames).unwrap();
        let expected = quadrant_region(&detector, quadrant);
        assert_eq!(p.class, expected, "quadrant {quadrant}: {p:?}");
        assert!(p.confidences[p.class] > 0.9, "{p:?}");
        assert_eq!(p.frames, 3);
        let sum: f64 = p.confidences.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12);
    }
    // A saturating exposure is reported.
    rig.set_exposure(10.0).unwrap();
    let full = readout.display(&vec![1.0; 32 * 32]);
    let frames = rig.run(&[full], 1).unwrap().pop().unwrap();
    assert!(readout.predict(&frames).unwrap().saturated_pixels > 0);
    assert!(rig.set_exposure(f64::NAN).is_err());
    assert!(readout.predict(&[]).is_err());
}

/// One raw request line to `address`, and its decoded reply.
fn raw(address: std::net::SocketAddr, line: &[u8]) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address).unwrap();
    s.write_all(line).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.ends_with('\n'), "{reply}");
    let text = photonflow_hardware::wire::unquote_plus(reply.trim_end_matches('\n')).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_served_rig_answers_slmsuite_requests_and_the_remote_client() {
    use photonflow_hardware::wire::{decode_array, encode_array, quote_plus};
    use photonflow_hardware::{RemoteRig, ServeOptions, serve};
    use serde_json::json;
    let s = system(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let config = RigConfig {
        seed: 5,
        ..RigConfig::default()
    };
    let served = config.clone();
    let system = s.clone();
    let server = std::thread::spawn(move || {
        let mut rig = SimRig::new(&system, served).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let options = ServeOptions {
            requests: Some(12),
            ..ServeOptions::default()
        };
        serve(&mut rig, &listener, &options, &stop, |_| {}).unwrap()
    });
    // slmsuite 0.5's own ping line, byte for byte (recorded from its RemoteSLM), with the name
    // changed to this server's SLM.
    let ping = b"%7B%22name%22%3A+%22slm%22%2C+%22command%22%3A+%22ping%22%2C+%22args%22%3A+%5B%5D%2C+%22kwargs%22%3A+%7B%7D%7D\n";
    assert_eq!(
        raw(address, ping),
        json!([true, {"slm": "slm", "camera": "camera"}])
    );
    let line = |v: serde_json::Value| format!("{}\n", quote_plus(&v.to_string())).into_bytes();
    let r = raw(address, &line(json!({"name": "x", "command": "pickle"})));
    assert_eq!(r[0], false);
    assert!(
        r[1].as_str()
            .unwrap()
            .contains("Did not recognize hardware 'x'"),
        "{r}"
    );
    let r = raw(address, &line(json!({"name": "slm", "command": "close"})));
    assert_eq!(r, json!([false, "slm.close not present."]));
    let r = raw(
        address,
        &line(
            json!({"name": "camera", "command": "_get_images_hw", "kwargs": {"image_count": 100000}}),
        ),
    );
    assert_eq!(r[0], false);
    let r = raw(
        address,
        &line(
            json!({"name": "slm", "command": "_set_phase_hw", "kwargs": {"display": encode_array(&[3, 3], &[0; 9], true)}}),
        ),
    );
    assert!(r[1].as_str().unwrap().contains("[32, 32]"), "{r}");
    let r = raw(
        address,
        &line(
            json!({"name": "camera", "command": "pickle", "kwargs": {"attributes": false, "metadata": true}}),
        ),
    );
    assert_eq!(r[1]["__meta__"]["shape"], json!([64, 64]), "{r}");
    assert_eq!(r[1]["__meta__"]["bitdepth"], 12);
    // Bytes that are not the protocol get an answer, not a crash.
    let r = raw(address, b"%ZZ\n");
    assert_eq!(r[0], false);

    // photonflow's client: the same frames as the same rig here (4 requests: ping, two
    // pickles, and display + capture as two more).
    let mut remote = RemoteRig::connect(
        &address.to_string(),
        "slm",
        "camera",
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let d = remote.describe().unwrap();
    assert_eq!((d.slm.rows, d.slm.cols, d.slm.bits), (32, 32, 8));
    assert_eq!((d.camera.rows, d.camera.cols, d.camera.bits), (64, 64, 12));
    assert!((d.camera.pitch_m.unwrap() - PITCH).abs() < 1e-15);
    let readout = Readout::new(&s, &d, Some(100.0), None, None).unwrap();
    let levels = readout.display(&image(|r, c| ((r + c) % 5) as f32 / 4.0));
    let over_the_wire = remote.run(std::slice::from_ref(&levels), 1).unwrap();
    let mut local = SimRig::new(&s, config).unwrap();
    let here = local.run(std::slice::from_ref(&levels), 1).unwrap();
    assert_eq!(over_the_wire, here);
    assert_eq!(server.join().unwrap(), 12);
    let wire = encode_array(&[2], &[1, 300], false);
    assert_eq!(decode_array(&wire).unwrap().values, vec![1, 300]);
    // Nobody listens any more: a clear error, not a hang.
    let gone = RemoteRig::connect(
        &address.to_string(),
        "slm",
        "camera",
        std::time::Duration::from_secs(2),
    );
    assert!(gone.unwrap_err().to_string().contains("cannot connect"));
}

#[test]
fn calibration_finds_a_turned_shifted_camera_of_its_own_pitch() {
    use photonflow_hardware::calibrate;
    use photonflow_hardware::config::Camera;
    // The input imaged onto the detector plane (no layers, a short gap), so that bright spots
    // of the input land in different places.
    let mut s = system(0);
    s.input.distance_m = 20e-6;
    s.detector.temperature = 0.1;
    let geometry = |base: Camera| Camera {
        pitch: Some(Length(12e-6)),
        cols: Some(40),
        rows: Some(36),
        rotation: 10.0,
        x: Length(16e-6),
        y: Length(-8e-6),
        ..base
    };
    let spots: Vec<Vec<f32>> = (0..12)
        .map(|k| {
            let (cr, cc) = (
                6.0 + 20.0 * ((k * 7) % 12) as f32 / 11.0,
                6.0 + 20.0 * ((k * 5) % 12) as f32 / 11.0,
            );
            image(|r, c| (-((r as f32 - cr).powi(2) + (c as f32 - cc).powi(2)) / 8.0).exp())
        })
        .collect();
    let grid = s.grid().unwrap();
    // Measured: noiseless, pitch within 10⁻⁶, rotation 10⁻⁴°, offsets 2·10⁻⁵ px; with the
    // default camera's noise and saturation, 3·10⁻⁵, 0.003° and 10⁻⁴ px.
    for (noisy, linear, offset, degrees) in [(false, 1e-5, 1e-3, 1e-3), (true, 1e-3, 1e-2, 0.02)] {
        let mut config = if noisy {
            RigConfig::default()
        } else {
            RigConfig::ideal()
        };
        config.camera = geometry(config.camera.clone());
        config.source.photons_per_s = if noisy { 1e10 } else { 1e14 };
        let mut rig = SimRig::new(&s, config.clone()).unwrap();
        let d = rig.describe().unwrap();
        assert_eq!((d.camera.rows, d.camera.cols), (36, 40));
        // Without a calibration the frames cannot be read.
        let e = Readout::new(&s, &d, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("calibrate"), "{e}");
        let input = photonflow_hardware::SlmInput::new(&s, &d, None).unwrap();
        let displays: Vec<Vec<u16>> = spots.iter().map(|i| input.display(i)).collect();
        // The model's plane: the same bench with the camera on the grid and nothing else.
        let model = SimRig::new(&s, RigConfig::ideal()).unwrap();
        let views: Vec<&[u16]> = displays.iter().map(Vec::as_slice).collect();
        let plane = model.intensities(&views).unwrap();
        let black = f64::from(config.camera.black_level);
        let c = calibrate(&mut rig, &displays, &plane, &grid, black, 4).unwrap();
        let truth = rig.camera_map();
        let scale = truth.0[0][0].hypot(truth.0[0][1]);
        for (row, truth_row) in c.map.0.iter().zip(&truth.0) {
            for k in 0..2 {
                let e = (row[k] - truth_row[k]).abs() / scale;
                assert!(e < linear, "noisy {noisy}: {c:?} against {truth:?}");
            }
            assert!(
                (row[2] - truth_row[2]).abs() < offset,
                "noisy {noisy}: {c:?}"
            );
        }
        let (pitch, rotation) = c.pitch_and_rotation();
        assert!((pitch / 12e-6 - 1.0).abs() < linear, "{pitch}");
        assert!((rotation - 10.0).abs() < degrees, "{rotation}");
        assert!(
            c.residual < if noisy { 0.05 } else { 1e-3 },
            "{}",
            c.residual
        );
        // With it, the quadrants are read as on a camera of the plane's own pixels.
        let readout = Readout::new(&s, &d, None, Some(&c.map), None).unwrap();
        let detector = s.detector().unwrap();
        for quadrant in 0..4 {
            let lit = quadrant_image(quadrant);
            let p = readout
                .classify(&mut rig, &[lit], 2)
                .unwrap()
                .pop()
                .unwrap();
            let expected = quadrant_region(&detector, quadrant);
            assert_eq!(p.class, expected, "quadrant {quadrant}: {p:?}");
        }
    }
    // Saved and read back; a file of something else is refused.
    let dir = std::env::temp_dir().join(format!("pf-cal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calibration.json");
    let mut rig = SimRig::new(&s, RigConfig::ideal()).unwrap();
    let d = rig.describe().unwrap();
    let input = photonflow_hardware::SlmInput::new(&s, &d, None).unwrap();
    let displays: Vec<Vec<u16>> = spots.iter().map(|i| input.display(i)).collect();
    let views: Vec<&[u16]> = displays.iter().map(Vec::as_slice).collect();
    let plane = rig.intensities(&views).unwrap();
    let c = calibrate(&mut rig, &displays, &plane, &grid, 0.0, 1).unwrap();
    // A camera on the grid calibrates to the grid's own map.
    let g = photonflow_hardware::Affine::grid(64, 64, PITCH);
    for (a, b) in c.map.0.iter().flatten().zip(g.0.iter().flatten()) {
        assert!((a - b).abs() < 1e-3 * g.0[0][0], "{c:?}");
    }
    c.save(&path).unwrap();
    assert_eq!(photonflow_hardware::Calibration::load(&path).unwrap(), c);
    std::fs::write(&path, "{\"format\": \"x\"}").unwrap();
    assert!(photonflow_hardware::Calibration::load(&path).is_err());
    // One pattern cannot fix a map.
    let e = calibrate(&mut rig, &displays[..1], &plane[..1], &grid, 0.0, 1).unwrap_err();
    assert!(e.to_string().contains("at least 3"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_measured_slm_table_is_what_the_bench_shows_and_what_the_client_sends() {
    use photonflow_hardware::SlmInput;
    use photonflow_optics::lut::Lut;
    use photonflow_optics::system::Encoding;
    let mut s = system(2);
    s.input.encoding = Encoding::Phase;
    // A nonlinear 8-bit SLM: phase = 2π·(g/255)^1.5 (less half a step, to close the circle).
    let table = |amplitude: f64| {
        let rows: Vec<String> = (0..256)
            .map(|g| {
                format!(
                    "{g},{},{amplitude}",
                    std::f64::consts::TAU * (g as f64 / 255.0).powf(1.5) * (1.0 - 1.0 / 512.0)
                )
            })
            .collect();
        Lut::parse(&rows.join("\n")).unwrap()
    };
    let bench = |lut: Option<Lut>| {
        let mut config = RigConfig::ideal();
        config.slm.bits = 8;
        config.slm.table = lut;
        SimRig::new(&s, config).unwrap()
    };
    let ideal = SimRig::new(&s, RigConfig::ideal()).unwrap();
    let mut measured = bench(Some(table(1.0)));
    let d = measured.describe().unwrap();
    let picture = image(|r, c| ((r * 3 + c * 5) % 17) as f32 / 16.0);
    let through = |rig: &SimRig, input: &SlmInput| {
        rig.intensities(&[&input.display(&picture)])
            .unwrap()
            .pop()
            .unwrap()
    };
    let reference = through(
        &ideal,
        &SlmInput::new(&s, &ideal_description(), None).unwrap(),
    );
    let peak = reference.iter().cloned().fold(0.0f32, f32::max);
    let deviation = |i: &[f32]| {
        i.iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
            / peak
    };
    // The client that knows the table shows the model's phases to within the table's steps;
    // one that assumes a linear SLM does not.
    let lut = table(1.0);
    let knowing = through(&measured, &SlmInput::new(&s, &d, Some(&lut)).unwrap());
    let assuming = through(&measured, &SlmInput::new(&s, &d, None).unwrap());
    // Measured: 0.7 % of the peak intensity knowing the table, 22 % assuming a linear SLM.
    assert!(deviation(&knowing) < 0.02, "{}", deviation(&knowing));
    assert!(
        deviation(&assuming) > 0.1,
        "{} {}",
        deviation(&assuming),
        deviation(&knowing)
    );
    // The table's amplitude column reaches the field: half the amplitude, a quarter the power.
    let dim = bench(Some(table(0.5)));
    let a = through(&dim, &SlmInput::new(&s, &d, Some(&lut)).unwrap());
    let ratio = total(&a) / total(&knowing);
    assert!((ratio - 0.25).abs() < 1e-5, "{ratio}");
    // Tables are for phase SLMs; an amplitude model refuses them.
    let mut config = RigConfig::ideal();
    config.slm.table = Some(lut.clone());
    let e = SimRig::new(&system(1), config).unwrap_err().to_string();
    assert!(e.contains("slm.lut"), "{e}");
    assert!(SlmInput::new(&system(1), &d, Some(&lut)).is_err());
    let _ = measured.describe();
}

/// The description of the ideal bench of [`system`].
fn ideal_description() -> photonflow_hardware::Description {
    SimRig::new(&system(0), RigConfig::ideal())
        .unwrap()
        .describe()
        .unwrap()
}

#[test]
fn certainty_follows_the_photon_budget_and_the_noise_model_matches_the_frames() {
    let mut s = system(0);
    s.input.distance_m = 20e-6;
    s.detector.temperature = 0.1;
    // A spot in quadrant 3 on a dim background.
    let spot = image(|r, c| {
        let d = (r as f32 - 24.0).powi(2) + (c as f32 - 24.0).powi(2);
        (-d / 8.0).exp() + 0.2
    });
    let detector = s.detector().unwrap();
    let expected = quadrant_region(&detector, 3);
    let run = |photons: f64, frames: usize| {
        let mut config = RigConfig::default();
        config.source.photons_per_s = photons / config.camera.exposure;
        let mut rig = SimRig::new(&s, config).unwrap();
        let d = rig.describe().unwrap();
        let readout = Readout::new(&s, &d, None, None, None).unwrap();
        let display = readout.display(&spot);
        let frames = rig.run(&[display], frames).unwrap().pop().unwrap();
        (
            readout.predict(&frames[..1]).unwrap(),
            readout.predict(&frames).unwrap(),
            frames,
        )
    };
    // Plenty of light: the class is certain.
    let (one, _, _) = run(1e7, 1);
    assert_eq!(one.class, expected);
    assert!(one.certainty.unwrap() > 0.999, "{one:?}");
    // Starved of light: read noise rules, the certainty falls far below the model's confidence.
    let (one, _, _) = run(30.0, 1);
    assert!(one.certainty.unwrap() < 0.7, "{one:?}");
    assert!(
        one.confidences[one.class] > one.certainty.unwrap(),
        "{one:?}"
    );
    // A dark, noiseless frame is a tie, not a certain answer.
    let mut dark = RigConfig::ideal();
    dark.source.photons_per_s = 0.0;
    let mut rig = SimRig::new(&s, dark).unwrap();
    let d = rig.describe().unwrap();
    let readout = Readout::new(&s, &d, None, None, None).unwrap();
    let frames = rig
        .run(&[readout.display(&spot)], 2)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(readout.predict(&frames).unwrap().certainty, Some(0.0));
    // The noise model's error of one frame is the spread of many frames (within 15 %).
    let (one, many, frames) = run(3e3, 400);
    let model = one.energy_errors.unwrap();
    let measured: Vec<f64> = many
        .energy_errors
        .unwrap()
        .iter()
        .map(|e| e * (frames.len() as f64).sqrt())
        .collect();
    for (m, e) in model.iter().zip(&measured) {
        assert!(
            (m / e - 1.0).abs() < 0.15,
            "model {model:?} against frames {measured:?}"
        );
    }
}

#[test]
fn identification_finds_where_each_layer_sits_as_the_bench_is_assembled() {
    // Three random phase layers placed off their design: whole pixels, a fraction of one, and
    // along the axis; the bench also has fabrication errors and camera noise that the twin
    // lacks. Random masks scramble the light so that it tells nothing while any layer is far
    // off; so the bench is assembled as a lab would, a layer at a time, and each layer is
    // identified as it is mounted, from where the ones before it were found. Probes: random
    // blocks on the SLM.
    let s = system(3);
    let truth = [(1.0, -1.0, 150e-6), (0.4, 0.0, -100e-6), (0.0, 2.0, 0.0)];
    let mut config = RigConfig {
        seed: 5,
        ..RigConfig::default()
    };
    config.layers.phase_error = 0.05;
    config.layers.offsets = truth
        .iter()
        .map(|&(x, y, z)| Offset {
            x: Length(x * PITCH),
            y: Length(y * PITCH),
            z: Length(z),
        })
        .collect();
    let mut rng = Rng::new(8);
    let displays: Vec<Vec<u16>> = (0..12)
        .map(|_| {
            let blocks: Vec<u16> = (0..64).map(|_| rng.below(2) as u16 * 255).collect();
            (0..32 * 32)
                .map(|i| blocks[(i / 32 / 4) * 8 + (i % 32) / 4])
                .collect()
        })
        .collect();
    let mut found: Vec<Placement> = Vec::new();
    for mounted in 1..=3 {
        config.layers.mounted = Some(mounted);
        let mut rig = SimRig::new(&s, config.clone()).unwrap();
        let mut twin = RigConfig::ideal();
        twin.layers.mounted = Some(mounted);
        let mut start = found.clone();
        start.push(Placement::default());
        let options = IdentifyOptions {
            search_px: 2,
            axial_range_m: 200e-6,
            start,
            ..IdentifyOptions::default()
        };
        let step = identify(
            &mut rig,
            &s,
            &twin,
            None,
            &displays,
            100.0,
            2,
            &options,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(step.layers.len(), mounted);
        assert!(step.residual < 0.5 * step.residual_design, "{step:?}");
        found = step.placements();
    }
    for (p, &(x, y, z)) in found.iter().zip(&truth) {
        assert!(
            (p.dx_px - x).abs() < 0.02 && (p.dy_px - y).abs() < 0.02,
            "{p:?}"
        );
        assert!((p.dz_m - z).abs() < 3e-6, "{p:?}");
    }
}

#[test]
fn photon_transfer_measures_the_cameras_black_level_gain_and_read_noise() {
    // The default 12-bit camera (gain 10 000/4096 = 2.441 e⁻/ADU, read noise 2 e⁻, black level
    // 100 ADU) behind two random layers, lit by random blocks bright enough to span the
    // converter's range over four exposures.
    let s = system(2);
    let mut config = RigConfig {
        seed: 12,
        ..RigConfig::default()
    };
    config.source.photons_per_s = 1e11;
    let mut rig = SimRig::new(&s, config.clone()).unwrap();
    let mut rng = Rng::new(4);
    let blocks: Vec<u16> = (0..64).map(|_| rng.below(256) as u16).collect();
    let display: Vec<u16> = (0..32 * 32)
        .map(|i| blocks[(i / 32 / 4) * 8 + (i % 32) / 4])
        .collect();
    let m = photon_transfer(&mut rig, &display, &[0.0025, 0.005, 0.01, 0.02]).unwrap();
    let gain = config.camera.gain();
    assert!((m.gain / gain - 1.0).abs() < 0.03, "{m:?} against {gain}");
    assert!((m.black_level - 100.0).abs() < 0.5, "{m:?}");
    assert!((m.read_noise / 2.0 - 1.0).abs() < 0.15, "{m:?}");
    assert!(m.points >= 32, "{m:?}");
    // The rig's exposure is as it was; the measurement round-trips through its file.
    assert_eq!(rig.describe().unwrap().exposure_s, config.camera.exposure);
    let path = std::env::temp_dir().join(format!("pf-camera-{}.json", std::process::id()));
    m.save(&path).unwrap();
    assert_eq!(CameraMeasurement::load(&path).unwrap(), m);
    std::fs::remove_file(&path).unwrap();
    // One exposure fixes no black level.
    let e = photon_transfer(&mut rig, &display, &[0.01, 0.01]).unwrap_err();
    assert!(e.to_string().contains("two different"), "{e}");
}

#[test]
fn a_phase_slms_response_is_measured_through_the_layers() {
    use photonflow_hardware::SlmInput;
    use photonflow_optics::lut::Lut;
    use photonflow_optics::system::Encoding;
    // A nonlinear 8-bit phase SLM, 2π·(g/255)^1.5, on a noisy bench behind two random layers
    // with fabrication errors the twin lacks; every level measured with 4 frames. (Measured:
    // every phase within 0.002 rad without the fabrication errors.)
    let mut s = system(2);
    s.input.encoding = Encoding::Phase;
    let truth = |g: f64| std::f64::consts::TAU * (g / 255.0).powf(1.5) * (1.0 - 1.0 / 512.0);
    let rows: Vec<String> = (0..256)
        .map(|g| format!("{g},{}", truth(g as f64)))
        .collect();
    let mut config = RigConfig {
        seed: 6,
        ..RigConfig::default()
    };
    config.slm.table = Some(Lut::parse(&rows.join("\n")).unwrap());
    config.layers.phase_error = 0.05;
    let mut rig = SimRig::new(&s, config).unwrap();
    let levels: Vec<u16> = (0..=255).collect();
    let r = photonflow_hardware::measure_slm(
        &mut rig,
        &s,
        &RigConfig::default(),
        None,
        &levels,
        100.0,
        4,
    )
    .unwrap();
    let worst = r
        .levels
        .iter()
        .zip(&r.phase)
        .map(|(&g, p)| (p - truth(f64::from(g))).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.03, "worst phase error {worst} rad: {:?}", r.phase);
    assert!(
        r.amplitude.iter().all(|a| (a - 1.0).abs() < 0.05),
        "{:?}",
        r.amplitude
    );
    // The table written reads back, and a client that uses it shows the model's phases.
    let lut = Lut::parse(&r.to_csv()).unwrap();
    assert_eq!(lut.len(), 256);
    let d = rig.describe().unwrap();
    assert!(SlmInput::new(&s, &d, Some(&lut)).is_ok());
    // An amplitude model has no phase response to measure.
    let e = photonflow_hardware::measure_slm(
        &mut SimRig::new(&system(1), RigConfig::default()).unwrap(),
        &system(1),
        &RigConfig::default(),
        None,
        &levels,
        100.0,
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("amplitude"), "{e}");
}

/// A broadband source is the power-weighted sum of lasers at its lines, each crossing the
/// layers with the phase its wavelength gives their optical path (`φ·λ₀/λ`): the rig with a
/// two-line source equals ¼·(the system rebuilt at 600 nm) + ¾·(at 650 nm). A single line at
/// the design wavelength is the laser; a partially coherent LED keeps the energy.
#[test]
fn a_broadband_partially_coherent_source_sums_lasers_and_modes() {
    let s = system(2);
    let white = vec![65535u16; 32 * 32];
    let quadrant: Vec<u16> = quadrant_image(1)
        .iter()
        .map(|&v| (v * 65535.0) as u16)
        .collect();
    let displays: [&[u16]; 2] = [&white, &quadrant];
    let laser = SimRig::new(&s, RigConfig::ideal()).unwrap();
    let reference = laser.intensities(&displays).unwrap();
    let mut one_line = RigConfig::ideal();
    one_line.source.spectrum = Some("lines:632.8nm".into());
    let same = SimRig::new(&s, one_line)
        .unwrap()
        .intensities(&displays)
        .unwrap();
    for (a, b) in same.iter().flatten().zip(reference.iter().flatten()) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b), "{a} vs {b}");
    }
    let rebuilt = |wavelength: f64| {
        let mut moved = s.clone();
        moved.wavelength_m = wavelength;
        for layer in &mut moved.layers {
            let scale = (s.wavelength_m / wavelength) as f32;
            layer.phase.iter_mut().for_each(|p| *p *= scale);
        }
        SimRig::new(&moved, RigConfig::ideal())
            .unwrap()
            .intensities(&displays)
            .unwrap()
    };
    let (short, long) = (rebuilt(600e-9), rebuilt(650e-9));
    let mut two = RigConfig::ideal();
    two.source.spectrum = Some("lines:600nm=1,650nm=3".into());
    let mixed = SimRig::new(&s, two)
        .unwrap()
        .intensities(&displays)
        .unwrap();
    let mut worst: f32 = 0.0;
    let peak = reference[0].iter().cloned().fold(0.0f32, f32::max);
    for ((m, a), b) in mixed
        .iter()
        .flatten()
        .zip(short.iter().flatten())
        .zip(long.iter().flatten())
    {
        worst = worst.max((m - (0.25 * a + 0.75 * b)).abs() / peak);
    }
    eprintln!("two lines = weighted lasers to {worst:.1e} of the peak");
    assert!(worst < 1e-5, "{worst}");
    // and it differs from the laser (the test can fail)
    let apart = mixed[1]
        .iter()
        .zip(&reference[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(apart > 0.01 * peak, "{apart}");

    // an LED: 40 nm wide, through a condenser of NA 0.005 — energy kept as for the laser
    let mut led = RigConfig::ideal();
    led.source.spectrum = Some("gaussian:632.8nm:40nm".into());
    led.source.na = 0.005;
    let i = SimRig::new(&s, led)
        .unwrap()
        .intensities(&[&white])
        .unwrap()
        .pop()
        .unwrap();
    let kept = total(&i) / total(&reference[0]);
    assert!((kept - 1.0).abs() < 0.01, "{kept}");
    // the partially coherent light blurs: its brightest pixel is dimmer than the laser's
    let top = i.iter().cloned().fold(0.0f32, f32::max);
    eprintln!(
        "LED: energy {kept}, brightest pixel {} of the laser's",
        top / peak
    );
    assert!(top < 0.9 * peak, "{top} vs {peak}");
}
