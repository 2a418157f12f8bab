//! End-to-end tests of the `photonflow` binary: real files in, real files out, read back with
//! the same .npy parser users' numpy agrees with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use num_complex::Complex;
use photonflow::optics::io::npy::{self, NpyData, NpyDataRef};
use photonflow::optics::propagate::Window;
use photonflow::optics::{Field, Grid, Method, Planner, Propagation, Wave};

fn photonflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_photonflow"))
        .args(args)
        .output()
        .expect("the photonflow binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn last_json(o: &Output) -> serde_json::Value {
    let text = stdout(o);
    let line = text.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

fn gaussian_c64(n: usize, batch: usize) -> Vec<Complex<f32>> {
    let c = (n / 2) as f32;
    (0..batch * n * n)
        .map(|i| {
            let (b, r, col) = (i / (n * n), (i / n) % n, i % n);
            let (x, y) = (col as f32 - c, r as f32 - c);
            let w = 6.0 + b as f32;
            Complex::from_polar((-(x * x + y * y) / (w * w)).exp(), 0.01 * x)
        })
        .collect()
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
    /// Writes `gaussian_c64(n, batch)` as `name` (shape `[n, n]` or `[batch, n, n]`), returning
    /// its path.
    fn gaussian_input(&self, name: &str, n: usize, batch: usize) -> String {
        let shape = if batch == 1 {
            vec![n, n]
        } else {
            vec![batch, n, n]
        };
        npy::write_npy(
            &self.path(name),
            &shape,
            NpyDataRef::C64(&gaussian_c64(n, batch)),
        )
        .unwrap();
        self.s(name)
    }
    /// Every file in the directory (so tests see temporary leftovers too).
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

const BASE: [&str; 6] = [
    "--wavelength",
    "632.8nm",
    "--pitch",
    "8um",
    "--distance",
    "5mm",
];

#[test]
fn propagates_a_batch_and_reports_json() {
    let d = Dir::new();
    let n = 64;
    let data = gaussian_c64(n, 2);
    npy::write_npy(&d.path("in.npy"), &[2, n, n], NpyDataRef::C64(&data)).unwrap();
    let (in_path, out_path) = (d.s("in.npy"), d.s("out.npy"));
    let mut args = vec!["propagate", "-i", &in_path, "-o", &out_path];
    args.extend(BASE);
    args.push("--json");
    let o = photonflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(
        j["method"], "bl-asm",
        "auto picks bl-asm in the near field: {j}"
    );
    assert_eq!(j["requested_method"], "auto");
    assert_eq!(j["padding"], 2.0);
    assert_eq!(j["padded_shape"], serde_json::json!([128, 128]));
    assert!((j["output_pitch_m"].as_f64().unwrap() - 8e-6).abs() < 1e-18);
    assert!(j["seconds"].as_f64().unwrap() >= 0.0);
    let ratio = j["power_out"].as_f64().unwrap() / j["power_in"].as_f64().unwrap();
    assert!((ratio - 1.0).abs() < 1e-4, "power ratio {ratio}");
    // The file holds what the library computes.
    let back = npy::read_npy(&d.path("out.npy")).unwrap();
    assert_eq!(back.shape, vec![2, n, n]);
    let NpyData::C64(got) = back.data else {
        panic!("complex64 in, complex64 out, got {}", back.dtype_name())
    };
    let grid = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let mut want = Field::from_vec(data, grid, wave.wavelength).unwrap();
    Planner::new()
        .plan(&grid, wave, &Propagation::new(5e-3))
        .unwrap()
        .propagate(&mut want)
        .unwrap();
    for (a, b) in got.iter().zip(want.data()) {
        assert!((a - b).norm() < 1e-6, "{a} vs {b}");
    }
}

/// `propagate --volume`: a plane wave through an absorbing glass slab (multislice) gains
/// k₀(n − 1)L of phase and loses exp(−k₀κL) of amplitude; `--xz` records the intensity inside,
/// falling slice by slice; `--distance` goes on beyond the exit face; bad volumes are named.
#[test]
fn propagates_through_a_thick_sample() {
    let d = Dir::new();
    let (n, nz, dz, lambda) = (16, 10, 0.5e-6, 633e-9);
    let index = Complex::new(1.5, 1e-3);
    npy::write_npy(
        &d.path("ri.npy"),
        &[nz, n, n],
        NpyDataRef::C128(&vec![index; nz * n * n]),
    )
    .unwrap();
    npy::write_npy(
        &d.path("wave.npy"),
        &[n, n],
        NpyDataRef::C128(&vec![Complex::from(1.0); n * n]),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let (i, o, v) = (d.s("wave.npy"), d.s("out.npy"), d.s("ri.npy"));
        let mut args = vec![
            "propagate",
            "-i",
            &i,
            "-o",
            &o,
            "--wavelength",
            "633nm",
            "--pitch",
            "0.5um",
            "--volume",
            &v,
            "--dz",
            "0.5um",
            "--pad",
            "1",
        ];
        args.extend(extra);
        photonflow(&args)
    };
    let xz = d.s("xz.npy");
    let o = run(&["--distance", "0m", "--xz", &xz, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["volume"]["slices"], nz, "{j}");
    assert!((j["volume"]["thickness_m"].as_f64().unwrap() - 5e-6).abs() < 1e-18);
    assert!(
        j["method"].is_null(),
        "no free propagation after the exit face: {j}"
    );
    let k0 = std::f64::consts::TAU / lambda;
    let want = (Complex::i() * k0 * index * (nz as f64 * dz)).exp();
    let NpyData::C128(out) = npy::read_npy(&d.path("out.npy")).unwrap().data else {
        panic!("complex128 out")
    };
    for u in &out {
        assert!((u - want).norm() < 1e-9, "{u} vs {want}");
    }
    let back = npy::read_npy(&d.path("xz.npy")).unwrap();
    assert_eq!(back.shape, vec![nz, n]);
    let NpyData::F64(xz) = back.data else {
        panic!("float64 xz")
    };
    for (j, row) in xz.chunks(n).enumerate() {
        let want = (-2.0 * k0 * 1e-3 * (j + 1) as f64 * dz).exp();
        assert!(
            row.iter().all(|v| (v - want).abs() < 1e-9),
            "slice {j}: {row:?}"
        );
    }
    // The same record plotted: a PNG (z up).
    let xz_png = d.s("xz.png");
    let o = run(&["--distance", "0m", "--xz", &xz_png]);
    assert!(o.status.success(), "{}", stderr(&o));
    let head = std::fs::read(d.path("xz.png")).unwrap();
    assert!(head.starts_with(b"\x89PNG") && head.len() > 1000);
    // 20 µm further in air: one more phase of k₀·20 µm.
    let o = run(&[
        "--distance",
        "20um",
        "--method",
        "asm",
        "--no-check",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["method"], "asm");
    let NpyData::C128(far) = npy::read_npy(&d.path("out.npy")).unwrap().data else {
        panic!("complex128 out")
    };
    let want = want * (Complex::i() * k0 * 20e-6).exp();
    assert!(far.iter().all(|u| (u - want).norm() < 1e-9), "{:?}", far[0]);
    // Refusals name the flag and the fix.
    let o = run(&["--distance", "0m", "--spectrum", "flat:500nm:550nm"]);
    assert!(!o.status.success());
    npy::write_npy(
        &d.path("flat.npy"),
        &[n, n],
        NpyDataRef::F64(&vec![1.5; n * n]),
    )
    .unwrap();
    for (extra, needle) in [
        (vec!["--dz", "-1um"], "--dz"),
        (vec!["--polarisation", "x"], "does not go with --volume"),
        (vec!["--method", "fraunhofer"], "angular spectrum"),
    ] {
        let mut args = vec!["--distance", "0m"];
        args.extend(&extra);
        let o = run(&args);
        assert!(!o.status.success(), "{extra:?}");
        assert!(stderr(&o).contains(needle), "{extra:?}: {}", stderr(&o));
    }
    let (i, o_path, flat, ri) = (
        d.s("wave.npy"),
        d.s("out.npy"),
        d.s("flat.npy"),
        d.s("ri.npy"),
    );
    let base = [
        "propagate",
        "-i",
        &i,
        "-o",
        &o_path,
        "--wavelength",
        "633nm",
        "--pitch",
        "0.5um",
        "--distance",
        "0m",
    ];
    for (extra, needle) in [
        (
            vec!["--volume", flat.as_str(), "--dz", "1um"],
            "[Nz, Ny, Nx]",
        ),
        (vec!["--volume", ri.as_str()], "--dz"),
        (vec!["--xz", "xz.npy"], "--volume"),
    ] {
        let mut args = base.to_vec();
        args.extend(&extra);
        let o = photonflow(&args);
        assert!(!o.status.success(), "{extra:?}");
        assert!(stderr(&o).contains(needle), "{extra:?}: {}", stderr(&o));
    }
}

/// Fourier ptychography end to end: a phase bead and an absorbing disc simulated under a 7×7
/// LED array (from the array flags and from a CSV of the same LEDs: equal images), then
/// reconstructed at the synthetic aperture's resolution, the objective's defocus recovered;
/// and the flags that cannot work refused by name.
#[test]
fn fpm_simulates_and_reconstructs_a_bead() {
    use photonflow::optics::io::tiff::{Stack, write_stack};
    let d = Dir::new();
    let (n, u, dx) = (96usize, 4usize, 0.5e-6);
    let centred = |i: usize| (i as f64 - (n / 2) as f64) * dx;
    let (mut phase, mut amplitude) = (Vec::new(), Vec::new());
    for j in 0..n {
        for i in 0..n {
            let (x, y) = (centred(i), centred(j));
            let r = (x - 4e-6).hypot(y + 3e-6);
            // A bead of 1 rad, 8 µm across, soft-edged; a disc absorbing a fifth, 6 µm across.
            phase.push((1.0 / (1.0 + ((r - 4e-6) / 0.4e-6).exp())) as f32);
            let s = (x + 8e-6).hypot(y - 7e-6);
            amplitude.push(if s < 3e-6 { 0.8f32 } else { 1.0 });
        }
    }
    write_stack(
        &d.path("phase.tif"),
        &Stack::new(phase.clone(), [1, n, n]).unwrap(),
    )
    .unwrap();
    write_stack(
        &d.path("amp.tif"),
        &Stack::new(amplitude.clone(), [1, n, n]).unwrap(),
    )
    .unwrap();
    let mut csv = String::from("x,y\n");
    for r in 0..7i32 {
        for c in 0..7i32 {
            csv += &format!("{}mm,{}mm\n", 2 * c - 6, 2 * r - 6);
        }
    }
    std::fs::write(d.path("leds.csv"), csv).unwrap();
    let scope = [
        "--wavelength",
        "500nm",
        "--na",
        "0.1",
        "--pitch",
        "2um",
        "--led-height",
        "60mm",
        "--zernike",
        "4=0.4",
    ];
    let (ph, am, images, images2, leds) = (
        d.s("phase.tif"),
        d.s("amp.tif"),
        d.s("images.npy"),
        d.s("images2.npy"),
        d.s("leds.csv"),
    );
    // `fpm SUBCOMMAND <the microscope> ARGS…` (later flags override the microscope's).
    let run = |args: &[&str]| {
        let mut all = vec!["fpm", args[0]];
        all.extend(scope);
        all.extend(&args[1..]);
        photonflow(&all)
    };
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    let grid_leds = ["--leds", "7x7", "--led-pitch", "2mm"];
    let sim = |leds: &[&str], out: &str| {
        let mut a = vec![
            "simulate",
            "--phase",
            &ph,
            "--amplitude",
            &am,
            "--upsample",
            "4",
            "--out",
            out,
            "--json",
        ];
        a.extend(leds);
        ok(&a)
    };
    let j = sim(&grid_leds, &images);
    assert_eq!(j["shape"], serde_json::json!([49, n / u, n / u]));
    // The corner LEDs, (±6 mm, ±6 mm) at 60 mm: sin θ = 0.1400.
    let corner = 6.0 * 2f64.sqrt() / (72.0f64 + 3600.0).sqrt();
    assert!(
        (j["synthetic_na"].as_f64().unwrap() - 0.1 - corner).abs() < 1e-12,
        "{j}"
    );
    assert_eq!(j["bright_field"], 29); // the LEDs within 3 pitches of the centre
    sim(&["--leds", &leds], &images2);
    let read = |name: &str| match npy::read_npy(&d.path(name)).unwrap().data {
        NpyData::F64(v) => v,
        _ => panic!("float64 images"),
    };
    assert_eq!(read("images.npy"), read("images2.npy"));
    // The array turned by 90° and mirrored: LED (r, c) then sits where LED (c, 6 − r), and
    // mirrored in x, (r, 6 − c) sat.
    let plane = (n / u) * (n / u);
    let turned = |flags: &[&str], name: &str, from: &dyn Fn(usize, usize) -> usize| {
        let mut leds = grid_leds.to_vec();
        leds.extend(flags);
        sim(&leds, &d.s(name));
        let (a, b) = (read(name), read("images.npy"));
        for r in 0..7 {
            for c in 0..7 {
                let (k, j) = (r * 7 + c, from(r, c));
                let worst = a[k * plane..][..plane]
                    .iter()
                    .zip(&b[j * plane..][..plane])
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                // (cos 90° is 6·10⁻¹⁷ in floating point)
                assert!(worst < 1e-12, "{name} LED {r},{c}: {worst}");
            }
        }
    };
    // Lambertian LEDs: each image dimmed by cos⁴ θ of its LED.
    let mut leds = grid_leds.to_vec();
    leds.extend(["--led-falloff", "4"]);
    sim(&leds, &d.s("dimmed.npy"));
    let (dim, b) = (read("dimmed.npy"), read("images.npy"));
    for r in 0..7 {
        for c in 0..7 {
            let (x, y) = ((2.0 * c as f64 - 6.0) * 1e-3, (2.0 * r as f64 - 6.0) * 1e-3);
            let cos = 60e-3 / (x * x + y * y + 3.6e-3f64).sqrt();
            let k = r * 7 + c;
            for p in 0..plane {
                let want = cos.powi(4) * b[k * plane + p];
                assert!((dim[k * plane + p] - want).abs() < 1e-12, "LED {r},{c}");
            }
        }
    }
    // Multiplexed: each image the sum of its LEDs' images.
    std::fs::write(
        d.path("patterns.csv"),
        "# LEDs lit at once\n24\n0, 48\n3 10 17\n",
    )
    .unwrap();
    let patterns = d.s("patterns.csv");
    let mut leds = grid_leds.to_vec();
    leds.extend(["--patterns", patterns.as_str()]);
    let j = sim(&leds, &d.s("multiplexed.npy"));
    assert_eq!(j["shape"], serde_json::json!([3, n / u, n / u]));
    let (m, b) = (read("multiplexed.npy"), read("images.npy"));
    for (k, lit) in [vec![24], vec![0, 48], vec![3, 10, 17]].iter().enumerate() {
        for x in 0..plane {
            let sum: f64 = lit.iter().map(|&i| b[i * plane + x]).sum();
            assert!((m[k * plane + x] - sum).abs() < 1e-12, "pattern {k}");
        }
    }
    std::fs::write(d.path("bad.csv"), "0,49\n").unwrap();
    let bad = d.s("bad.csv");
    let mut args = vec![
        "simulate",
        "--phase",
        &ph,
        "--out",
        &images2,
        "--patterns",
        &bad,
    ];
    args.extend(grid_leds);
    let o = run(&args);
    assert!(
        !o.status.success() && stderr(&o).contains("--patterns"),
        "{}",
        stderr(&o)
    );
    turned(&["--led-rotation", "90"], "turned.npy", &|r, c| {
        c * 7 + 6 - r
    });
    turned(&["--led-flip", "x"], "flipped.npy", &|r, c| r * 7 + 6 - c);
    // The images as a folder of TIFFs, one per LED, named so that only a natural order
    // (led_2 before led_10) keeps the LEDs' order.
    let folder = d.path("frames");
    std::fs::create_dir(&folder).unwrap();
    for (k, image) in read("images.npy").chunks(plane).enumerate() {
        let frame = Stack::new(image.iter().map(|&v| v as f32).collect(), [1, n / u, n / u]);
        write_stack(&folder.join(format!("led_{}.tif", k + 1)), &frame.unwrap()).unwrap();
    }
    // Reconstruct with the defocus unknown (the ideal pupil is the start): `fpm reconstruct
    // --images FROM` with the array flags and the microscope without --zernike; its JSON.
    let (out, png) = (d.s("object.npy"), d.s("object.png"));
    let blind = |from: &str, extra: &[&str]| {
        let mut args = vec![
            "fpm",
            "reconstruct",
            "--images",
            from,
            "--upsample",
            "4",
            "--pupil",
            "6",
            "--iterations",
            "150",
            "--out",
            &out,
            "--json",
        ];
        args.extend(extra);
        args.extend(grid_leds);
        args.extend(&scope[..8]);
        let o = photonflow(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    let j = blind(&images, &["--png", &png]);
    let z4 = j["zernike"][0]["rad"].as_f64().unwrap();
    assert!((z4 - 0.4).abs() < 0.02, "defocus {z4}: {j}");
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
    let object = match npy::read_npy(&d.path("object.npy")).unwrap().data {
        NpyData::C128(v) => v,
        _ => panic!("complex128 object"),
    };
    let truth: Vec<Complex<f64>> = phase
        .iter()
        .zip(&amplitude)
        .map(|(&p, &a)| Complex::from_polar(f64::from(a), f64::from(p)))
        .collect();
    let inner: Complex<f64> = object.iter().zip(&truth).map(|(a, b)| a.conj() * b).sum();
    let turn = inner / inner.norm();
    let error = (object
        .iter()
        .zip(&truth)
        .map(|(a, b)| (a * turn - b).norm_sqr())
        .sum::<f64>()
        / truth.iter().map(|b| b.norm_sqr()).sum::<f64>())
    .sqrt();
    // Measured 0.76 % (the discs' edges hold detail beyond the synthetic aperture).
    assert!(error < 0.02, "relative error {error}: {j}");
    // The same from the folder (the frames in float32): the same fit.
    let k = blind(folder.to_str().unwrap(), &[]);
    let (a, b) = (
        j["misfit_start"].as_f64().unwrap(),
        k["misfit_start"].as_f64().unwrap(),
    );
    assert!((a / b - 1.0).abs() < 1e-5, "{j} vs {k}");
    assert!(
        (k["zernike"][0]["rad"].as_f64().unwrap() - z4).abs() < 1e-3,
        "{k}"
    );
    // Refusals, each naming its flag.
    let refused = |args: &[&str], want: &str| {
        let o = run(args);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    };
    let mut coarse = vec!["reconstruct", "--images", &images, "--out", &out];
    coarse.extend(grid_leds);
    coarse.extend(["--pitch", "3um"]);
    refused(&coarse, "--pitch");
    let mut few = vec!["reconstruct", "--images", &images, "--out", &out];
    few.extend(["--leds", "5x5", "--led-pitch", "2mm"]);
    refused(&few, "holds 49 images but --leds gives 25");
    let mut low = vec![
        "reconstruct",
        "--images",
        &images,
        "--out",
        &out,
        "--upsample",
        "1",
    ];
    low.extend(grid_leds);
    refused(&low, "--upsample");
    let mut pupil = vec![
        "reconstruct",
        "--images",
        &images,
        "--out",
        &out,
        "--pupil",
        "3",
    ];
    pupil.extend(grid_leds);
    refused(&pupil, "--pupil");
    refused(
        &[
            "simulate",
            "--phase",
            &ph,
            "--upsample",
            "5",
            "--out",
            &images,
            "--leds",
            "7x7",
            "--led-pitch",
            "2mm",
        ],
        "--upsample 5",
    );
    refused(
        &[
            "simulate", "--phase", &ph, "--out", &images, "--leds", "7by7",
        ],
        "ROWSxCOLS",
    );
    refused(
        &[
            "simulate", "--phase", &ph, "--out", &images, "--leds", "7x7",
        ],
        "--led-pitch",
    );
}

/// `photonflow tomography fields`: off-axis holograms (a reference tilted off the frequency
/// grid) give back their field, found automatically, relative to a sample-free hologram; and
/// `reconstruct --relative` takes such relative fields to the same fit as the absolute ones.
#[test]
fn tomography_demodulates_off_axis_holograms() {
    let d = Dir::new();
    let n = 96usize;
    let pitch = 0.2e-6;
    let coord = |i: usize| (i as f64 - (n / 2) as f64) * pitch;
    let tau = std::f64::consts::TAU;
    let field = |x: f64, y: f64| {
        let r2 = (x * x + y * y) / (2e-6f64).powi(2);
        Complex::from_polar(0.9, 1.0 * (-r2).exp())
    };
    let f_r = [1.41e6, 0.87e6];
    let (mut h, mut b) = (Vec::new(), Vec::new());
    for j in 0..n {
        for i in 0..n {
            let (x, y) = (coord(i), coord(j));
            let r = Complex::from_polar(2.0, tau * (f_r[0] * x + f_r[1] * y));
            h.push((field(x, y) + r).norm_sqr());
            b.push((Complex::from(0.9) + r).norm_sqr());
        }
    }
    npy::write_npy(&d.path("h.npy"), &[1, n, n], NpyDataRef::F64(&h)).unwrap();
    npy::write_npy(&d.path("b.npy"), &[n, n], NpyDataRef::F64(&b)).unwrap();
    let (hp, bp, out) = (d.s("h.npy"), d.s("b.npy"), d.s("fields.npy"));
    let o = photonflow(&[
        "tomography",
        "fields",
        "--holograms",
        &hp,
        "--background",
        &bp,
        "--pitch",
        "0.2um",
        "--out",
        &out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let s = &j["sideband_per_um"];
    let step = 1.0 / (n as f64 * 0.2);
    assert!((s[0].as_f64().unwrap() + 1.41).abs() <= step, "{j}");
    assert!((s[1].as_f64().unwrap() + 0.87).abs() <= step, "{j}");
    assert_eq!(j["relative"], true);
    let NpyData::C128(got) = npy::read_npy(&d.path("fields.npy")).unwrap().data else {
        panic!("complex128")
    };
    // Relative to the flat 0.9: E/0.9, inside the window's flat part.
    let mut worst = 0.0f64;
    for r in 16..n - 16 {
        for c in 16..n - 16 {
            let want = field(coord(c), coord(r)) / 0.9;
            worst = worst.max((got[r * n + c] - want).norm());
        }
    }
    assert!(worst < 1e-2, "{worst}");
    // Complex input is named as the wrong kind of file.
    let o = photonflow(&[
        "tomography",
        "fields",
        "--holograms",
        &out,
        "--pitch",
        "0.2um",
        "--out",
        &out,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("intensities"),
        "{}",
        stderr(&o)
    );
}

/// `photonflow tomography`: the fields of a bead simulated with noise, then reconstructed —
/// the fit reaches the noise and the bead's contrast comes back; mismatched inputs are named.
#[test]
fn tomography_simulates_and_reconstructs_a_bead() {
    let d = Dir::new();
    let (n, nz, pitch, dz) = (24usize, 12usize, 0.25e-6, 0.25e-6);
    let thickness = nz as f64 * dz;
    let mut ri = Vec::with_capacity(nz * n * n);
    for k in 0..nz {
        for j in 0..n {
            for i in 0..n {
                let (x, y) = ((i as f64 - 12.0) * pitch, (j as f64 - 12.0) * pitch);
                let z = (k as f64 + 0.5) * dz - thickness / 2.0;
                let inside = x * x + y * y + z * z < (0.8e-6f64).powi(2);
                ri.push(if inside { 1.353 } else { 1.333 });
            }
        }
    }
    npy::write_npy(&d.path("ri.npy"), &[nz, n, n], NpyDataRef::F64(&ri)).unwrap();
    let scope = [
        "--wavelength",
        "532nm",
        "--index",
        "1.333",
        "--pitch",
        "0.25um",
        "--dz",
        "0.25um",
        "--illumination",
        "axis+ring:0.3:6+ring:0.5:6",
        "--focus",
        "-1.5um",
        "--na",
        "1.2",
    ];
    let (ri_path, fields, out, png) = (
        d.s("ri.npy"),
        d.s("fields.npy"),
        d.s("out.npy"),
        d.s("ri.png"),
    );
    // `tomography SUBCOMMAND ARGS… <the microscope>`, succeeding; its JSON line.
    let tomography = |args: &[&str]| {
        let mut all = vec!["tomography"];
        all.extend(args);
        all.extend(scope);
        let o = photonflow(&all);
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    let sim = [
        "simulate", "--volume", &ri_path, "--out", &fields, "--noise", "0.01", "--json",
    ];
    assert_eq!(tomography(&sim)["shape"], serde_json::json!([13, n, n]));
    let j = tomography(&[
        "reconstruct",
        "--fields",
        &fields,
        "--slices",
        "12",
        "--iterations",
        "60",
        "--out",
        &out,
        "--png",
        &png,
        "--json",
    ]);
    assert!(j["misfit"].as_f64().unwrap() < 3e-4, "{j}");
    // The same fields relative to a sample-free recording, with --relative: the same fit.
    let water = vec![1.333; nz * n * n];
    npy::write_npy(&d.path("water.npy"), &[nz, n, n], NpyDataRef::F64(&water)).unwrap();
    let (water_path, empty) = (d.s("water.npy"), d.s("empty.npy"));
    tomography(&[
        "simulate",
        "--volume",
        &water_path,
        "--out",
        &empty,
        "--json",
    ]);
    let read = |name: &str| match npy::read_npy(&d.path(name)).unwrap().data {
        NpyData::C128(v) => v,
        _ => panic!("complex128"),
    };
    let relative: Vec<Complex<f64>> = read("fields.npy")
        .iter()
        .zip(read("empty.npy"))
        .map(|(f, e)| f / e)
        .collect();
    npy::write_npy(&d.path("rel.npy"), &[13, n, n], NpyDataRef::C128(&relative)).unwrap();
    let (rel, out2) = (d.s("rel.npy"), d.s("out2.npy"));
    let k = tomography(&[
        "reconstruct",
        "--fields",
        &rel,
        "--relative",
        "--slices",
        "12",
        "--iterations",
        "60",
        "--out",
        &out2,
        "--json",
    ]);
    let (a, b) = (j["misfit"].as_f64().unwrap(), k["misfit"].as_f64().unwrap());
    assert!((a / b - 1.0).abs() < 1e-6, "{j} vs {k}");
    // Refining from the written map starts where the first run ended (the map as float64).
    let r = tomography(&[
        "reconstruct",
        "--fields",
        &fields,
        "--slices",
        "12",
        "--iterations",
        "3",
        "--initial",
        &out,
        "--out",
        &out2,
        "--json",
    ]);
    let (end, start) = (
        j["objective_end"].as_f64().unwrap(),
        r["objective_start"].as_f64().unwrap(),
    );
    assert!((start / end - 1.0).abs() < 1e-9, "{j} then {r}");
    let back = npy::read_npy(&d.path("out.npy")).unwrap();
    assert_eq!(back.shape, vec![nz, n, n]);
    let NpyData::F64(found) = back.data else {
        panic!("float64 out")
    };
    let inside: Vec<f64> = found
        .iter()
        .zip(&ri)
        .filter(|(_, t)| **t > 1.34)
        .map(|(f, _)| f - 1.333)
        .collect();
    let contrast = inside.iter().sum::<f64>() / inside.len() as f64;
    assert!(
        (contrast / 0.02 - 1.0).abs() < 0.3,
        "mean Δn in the bead {contrast}"
    );
    assert!(std::fs::metadata(d.path("ri.png")).unwrap().len() > 1000);
    // Refusals: a direction per field, complex fields, a known illumination.
    let refused = |fields_path: &str, illumination: &str, needle: &str| {
        let mut flags = scope.to_vec();
        flags[9] = illumination;
        let mut args = vec![
            "tomography",
            "reconstruct",
            "--fields",
            fields_path,
            "--slices",
            "12",
            "--out",
            &out,
        ];
        args.extend(flags);
        let o = photonflow(&args);
        assert!(
            !o.status.success() && stderr(&o).contains(needle),
            "{}",
            stderr(&o)
        );
    };
    refused(
        &fields,
        "axis+ring:0.3:6",
        "one direction per recorded field",
    );
    refused(&fields, "cone:0.3", "ring:SINE:COUNT");
    refused(&ri_path, scope[9], "must be complex");
}

#[test]
fn propagates_onto_a_camera_window_off_axis_and_sas_far_away() {
    let d = Dir::new();
    let n = 64;
    let data = gaussian_c64(n, 2);
    npy::write_npy(&d.path("in.npy"), &[2, n, n], NpyDataRef::C64(&data)).unwrap();
    let (i, o, png) = (d.s("in.npy"), d.s("cam.npy"), d.s("cam.png"));
    let mut args = vec!["propagate", "-i", &i, "-o", &o];
    args.extend(BASE);
    args.extend([
        "--out-grid",
        "40x30@5um",
        "--out-centre",
        "20um,-10um",
        "--png",
        &png,
        "--json",
    ]);
    let r = photonflow(&args);
    assert!(r.status.success(), "{}", stderr(&r));
    let j = last_json(&r);
    assert_eq!(j["method"], "bl-asm", "{j}");
    assert_eq!(j["shape"], serde_json::json!([2, 30, 40]));
    assert_eq!(j["output_centre_m"], serde_json::json!([20e-6, -10e-6]));
    assert!((j["output_pitch_m"].as_f64().unwrap() - 5e-6).abs() < 1e-18);
    // The file holds what the library computes on that window.
    let grid = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let window = Window::new(Grid::new(40, 30, 5e-6, 5e-6).unwrap(), (20e-6, -10e-6)).unwrap();
    let want = Planner::new()
        .plan_window(&grid, wave, &Propagation::new(5e-3), &window)
        .unwrap()
        .apply(&Field::from_vec(data, grid, wave.wavelength).unwrap())
        .unwrap();
    let back = npy::read_npy(Path::new(&o)).unwrap();
    assert_eq!(back.shape, vec![2, 30, 40]);
    let NpyData::C64(got) = back.data else {
        panic!("complex64 in, complex64 out")
    };
    for (a, b) in got.iter().zip(want.data()) {
        assert!((a - b).norm() < 1e-6, "{a} vs {b}");
    }
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    assert_eq!(d.files(), ["cam.npy", "cam.png", "in.npy"]);
    // sas 5 cm away, on its natural pitch λz/(M·d) without --out-grid.
    let far = d.s("far.npy");
    let r = photonflow(&[
        "propagate",
        "-i",
        &i,
        "-o",
        &far,
        "--wavelength",
        "632.8nm",
        "--pitch",
        "8um",
        "--distance",
        "5cm",
        "--method",
        "sas",
        "--json",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let j = last_json(&r);
    assert_eq!(j["method"], "sas");
    assert_eq!(j["shape"], serde_json::json!([2, n, n]));
    let pitch = 632.8e-9 * 0.05 / (128.0 * 8e-6);
    assert!(
        (j["output_pitch_m"].as_f64().unwrap() / pitch - 1.0).abs() < 1e-12,
        "{j}"
    );
    // Bad windows name the flag and the fix.
    for (extra, needle) in [
        (
            vec!["--out-grid", "64x64"],
            "--out-grid '64x64': there is no '@PITCH'",
        ),
        (
            vec!["--out-centre", "1mm"],
            "--out-centre 1mm: give two lengths X,Y",
        ),
        (
            vec!["--out-grid", "8x8@2um", "--method", "rs"],
            "rs cannot propagate onto an output window; use bl-asm, sas",
        ),
        (
            vec!["--out-grid", "8x8@2um", "--method", "sas"],
            "lengthen the distance",
        ),
    ] {
        let bad = d.s("bad.npy");
        let mut args = vec!["propagate", "-i", &i, "-o", &bad];
        args.extend(BASE);
        args.extend(extra);
        let r = photonflow(&args);
        assert!(!r.status.success());
        assert!(stderr(&r).contains(needle), "{needle}: {}", stderr(&r));
        assert!(!d.path("bad.npy").exists());
    }
}

#[test]
fn real_float64_input_gives_complex128_of_the_same_rank_and_back_propagation_inverts() {
    let d = Dir::new();
    let n = 64; // the Gaussian falls to e^-28 at the edge: nothing is cut off
    let data: Vec<f64> = gaussian_c64(n, 1).iter().map(|z| z.norm() as f64).collect();
    npy::write_npy(&d.path("in.npy"), &[n, n], NpyDataRef::F64(&data)).unwrap();
    let (i, m, o) = (d.s("in.npy"), d.s("mid.npy"), d.s("out.npy"));
    // Short enough that the beam stays inside the window (the crop would lose light).
    let fwd = photonflow(&[
        "propagate",
        "-i",
        &i,
        "-o",
        &m,
        "--wavelength",
        "1um",
        "--pitch",
        "2um",
        "--distance",
        "100um",
        "--method",
        "asm",
        "--pad",
        "2",
    ]);
    assert!(fwd.status.success(), "{}", stderr(&fwd));
    assert!(stdout(&fwd).contains("asm"), "{}", stdout(&fwd));
    let bwd = photonflow(&[
        "propagate",
        "-i",
        &m,
        "-o",
        &o,
        "--wavelength",
        "1um",
        "--pitch",
        "2um",
        "--distance",
        "-100um",
        "--method",
        "asm",
        "--pad",
        "2",
    ]);
    assert!(bwd.status.success(), "{}", stderr(&bwd));
    let back = npy::read_npy(Path::new(&o)).unwrap();
    assert_eq!(back.shape, vec![n, n]);
    let NpyData::C128(v) = back.data else {
        panic!("float64 in, complex128 out")
    };
    let err = v
        .iter()
        .zip(&data)
        .map(|(a, b)| (a - b).norm())
        .fold(0.0, f64::max);
    assert!(err < 1e-9, "forward then backward differs by {err}");
}

#[test]
fn single_fft_methods_report_the_new_pitch_and_write_a_png() {
    let d = Dir::new();
    let n = 64;
    d.gaussian_input("in.npy", n, 1);
    let (i, o, png) = (d.s("in.npy"), d.s("out.npy"), d.s("far.png"));
    let r = photonflow(&[
        "propagate",
        "-i",
        &i,
        "-o",
        &o,
        "--wavelength",
        "500nm",
        "--pitch",
        "10um",
        "--distance",
        "2m",
        "--method",
        "fraunhofer",
        "--png",
        &png,
        "--json",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let j = last_json(&r);
    assert_eq!(j["method"], "fraunhofer");
    let expect = 500e-9 * 2.0 / (128.0 * 10e-6);
    assert!(
        (j["output_pitch_m"].as_f64().unwrap() / expect - 1.0).abs() < 1e-12,
        "{j}"
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(d.files(), vec!["far.png", "in.npy", "out.npy"]);
}

#[test]
fn auto_far_away_leaves_bl_asm_and_says_so() {
    let d = Dir::new();
    let n = 64;
    d.gaussian_input("in.npy", n, 1);
    let r = photonflow(&[
        "propagate",
        "-i",
        &d.s("in.npy"),
        "-o",
        &d.s("o.npy"),
        "--wavelength",
        "632.8nm",
        "--pitch",
        "8um",
        "--distance",
        "1m",
        "--json",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let j = last_json(&r);
    assert_ne!(j["method"], "bl-asm");
    assert_eq!(j["considered"][0]["method"], "bl-asm");
    assert_eq!(j["considered"][0]["valid"], false);
    let m: Method = j["method"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        j["considered"].as_array().unwrap().last().unwrap()["method"],
        m.name()
    );
}

/// Runs a failing command and checks: non-zero exit, the message names `needles`, and no
/// output file (nor a temporary one) is left.
fn fails(d: &Dir, args: &[&str], needles: &[&str]) {
    let before = d.files();
    let o = photonflow(args);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "expected failure for {args:?}; stdout {}",
        stdout(&o)
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks '{n}':\n{err}");
    }
    assert_eq!(d.files(), before, "{args:?} left files behind");
}

#[test]
fn bad_input_is_a_clear_error_and_leaves_nothing_behind() {
    let d = Dir::new();
    let n = 32;
    d.gaussian_input("ok.npy", n, 1);
    std::fs::write(d.path("text.npy"), b"this is not numpy").unwrap();
    // An int64 array, as numpy writes it.
    let mut int64 = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }";
    let padded = format!("{header:<117}\n");
    int64.extend((padded.len() as u16).to_le_bytes());
    int64.extend(padded.as_bytes());
    int64.extend([0u8; 32]);
    std::fs::write(d.path("int.npy"), &int64).unwrap();
    npy::write_npy(&d.path("rank1.npy"), &[16], NpyDataRef::F32(&[1.0; 16])).unwrap();
    let mut nan = gaussian_c64(n, 1);
    nan[100].re = f32::NAN;
    npy::write_npy(&d.path("nan.npy"), &[n, n], NpyDataRef::C64(&nan)).unwrap();

    let ok = d.s("ok.npy");
    let out = d.s("out.npy");
    let with = |input: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["propagate", "-i", input, "-o", &out]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(BASE.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>, needles: &[&str]| {
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        fails(&d, &refs, needles);
    };
    run(with(&d.s("missing.npy"), &[]), &["--input", "missing.npy"]);
    // The operating system's reason appears once: a cause its message quotes is not repeated.
    let missing = with(&d.s("missing.npy"), &[]);
    let err = stderr(&photonflow(
        &missing.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    ));
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    run(with(&d.s("text.npy"), &[]), &["text.npy", "not a NumPy"]);
    run(with(&d.s("int.npy"), &[]), &["int64", "astype"]);
    run(with(&d.s("rank1.npy"), &[]), &["[Ny, Nx] or [B, Ny, Nx]"]);
    run(with(&d.s("nan.npy"), &[]), &["non-finite", "nan.npy"]);
    run(
        with(&ok, &["--method", "asm", "--distance", "2m"]),
        &["asm", "Fix:", "bl-asm"],
    );
    run(with(&ok, &["--method", "magic"]), &["magic", "bl-asm"]);
    run(with(&ok, &["--pad", "0.5"]), &["--pad"]);
    // Negative numbers reach the checks (not the parser's "unexpected argument '-1'").
    run(with(&ok, &["--pad", "-2"]), &["--pad -2", "between 1"]);
    // A padded transform larger than the machine's memory is refused before it is built,
    // naming the flag: 1024² at --pad 64 is a 65536² transform, about 100 GB.
    if cfg!(target_os = "linux") {
        let big = d.gaussian_input("big.npy", 1024, 1);
        run(
            with(&big, &["--pad", "64", "--no-check"]),
            &[
                "--pad 64",
                "65536×65536",
                "GB of memory",
                "available",
                "less zero padding",
            ],
        );
    }
    run(with(&ok, &["--index", "-1"]), &["--index -1", "positive"]);
    run(
        with(&ok, &["--distance", "0m", "--method", "fresnel-ir"]),
        &["fresnel-ir"],
    );
    // Units and non-positive values are refused by the argument parser, naming the flag.
    let unit = |flag: &str, value: &str, needle: &str| {
        let mut a = vec!["propagate", "-i", &ok, "-o", &out];
        a.extend(BASE);
        a.extend([flag, value]);
        fails(&d, &a, &[flag, needle]);
    };
    unit("--wavelength", "0nm", "positive");
    unit("--wavelength", "-500nm", "positive");
    unit("--pitch", "8", "no unit");
    unit("--distance", "5furlong", "unknown length unit");
    // An output into a missing directory: the error names it, and nothing is written.
    let nowhere = d.s("no/such/dir/out.npy");
    let mut a = vec!["propagate", "-i", &ok, "-o", &nowhere];
    a.extend(BASE);
    fails(&d, &a, &["--output", "no/such/dir"]);
}

#[test]
fn a_reader_that_stops_early_ends_the_program_quietly() {
    // `photonflow … | head`: the reader closes its end first; printing must not panic.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_photonflow"))
        .args(["rig", "config"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn info_reports_threads_and_methods() {
    let o = photonflow(&["info", "--json"]);
    assert!(o.status.success());
    let j = last_json(&o);
    assert!(j["threads"].as_u64().unwrap() >= 1);
    assert!(
        j["methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "bl-asm")
    );
    let o = photonflow(&["--threads", "1", "info", "--json"]);
    assert_eq!(last_json(&o)["threads"], 1);
    // Absurd thread counts are refused, naming where they came from (100 000 threads made the
    // thread library panic).
    let o = photonflow(&["--threads", "100000", "info"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--threads 100000: at most 1024"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_photonflow"))
        .args(["info"])
        .env("RAYON_NUM_THREADS", "100000")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("$RAYON_NUM_THREADS 100000"),
        "{}",
        stderr(&o)
    );
}

/// `photonflow materials`: the built-in materials with their catalogue indices and Abbe
/// numbers, one at chosen wavelengths (out of range said, not failed), a table of the user's,
/// and a bad name refused naming the flag.
#[test]
fn materials_lists_indices_and_dispersion() {
    let o = photonflow(&["materials", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let all = j["materials"].as_array().unwrap();
    let names: Vec<&str> = all.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["thz-resin", "fused-silica", "pmma", "n-bk7"]);
    let bk7 = &all[3];
    assert_eq!(bk7["model"], "sellmeier");
    assert!((bk7["abbe_number"].as_f64().unwrap() - 64.17).abs() < 0.01);
    assert!((bk7["at"][1]["n"].as_f64().unwrap() - 1.5168).abs() < 1e-4);
    assert_eq!(all[0]["model"], "constant");
    assert!(all[0]["abbe_number"].is_null());

    let o = photonflow(&[
        "materials",
        "--material",
        "fused-silica",
        "--at",
        "532nm,5um",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("n = 1.4607"), "{text}");
    assert!(text.contains("not at 5um"), "{text}");

    let d = Dir::new();
    std::fs::write(
        d.path("m.toml"),
        "[[material]]\nname = \"resist\"\ndispersion = { cauchy = { a = 1.52, b_um2 = 0.0065, \
         range_um = [0.4, 1.6] } }\n",
    )
    .unwrap();
    let o = photonflow(&[
        "materials",
        "--material",
        &d.s("m.toml"),
        "--at",
        "500nm",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let n = last_json(&o)["materials"][0]["at"][0]["n"]
        .as_f64()
        .unwrap();
    assert!((n - (1.52 + 0.0065 / 0.25)).abs() < 1e-12, "{n}");

    // measured n and k (refractiveindex.info's CSV export), read as a table
    std::fs::write(
        d.path("nk.csv"),
        "wl,n\n0.4,1.60\n0.8,1.52\nwl,k\n0.4,0.01\n0.8,0.0\n",
    )
    .unwrap();
    let o = photonflow(&[
        "materials",
        "--material",
        &d.s("nk.csv"),
        "--at",
        "600nm",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let row = &j["materials"][0]["at"][0];
    assert_eq!(j["materials"][0]["model"], "table");
    assert!((row["n"].as_f64().unwrap() - 1.56).abs() < 1e-12, "{row}");
    assert!(
        (row["kappa"].as_f64().unwrap() - 0.005).abs() < 1e-12,
        "{row}"
    );

    let o = photonflow(&["materials", "--material", "unobtainium"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--material") && stderr(&o).contains("n-bk7"));
}

/// Writes an 8-bit grayscale PNG.
fn write_gray_png(path: &Path, width: usize, height: usize, pixels: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(pixels)
        .unwrap();
}

/// A folder dataset of 12×12 images in two classes: a bright bar in the left or the right
/// half, at a height that varies from image to image.
fn bars_dataset(d: &Dir) -> String {
    for (class, x0) in [("left", 1), ("right", 7)] {
        let dir = d.path("bars").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..24 {
            let y0 = k % 8;
            let pixels: Vec<u8> = (0..144)
                .map(|i| {
                    let (y, x) = (i / 12, i % 12);
                    if (x0..x0 + 4).contains(&x) && (y0..y0 + 4).contains(&y) {
                        255
                    } else {
                        0
                    }
                })
                .collect();
            write_gray_png(&dir.join(format!("{k:02}.png")), 12, 12, &pixels);
        }
    }
    d.s("bars")
}

const TINY: &str = r#"
name = "tiny"

[optics]
wavelength = "0.75mm"
pitch = "0.4mm"
neurons = 32
layers = 1
input_distance = "1cm"
detector_distance = "1cm"

[input]
size = 16

[detector]
size = "2mm"
gap = "2mm"

[training]
epochs = 3
batch = 8
lr = 0.1
"#;

#[test]
fn trains_evaluates_and_infers_on_a_folder_of_images() {
    let d = Dir::new();
    let data = bars_dataset(&d);
    std::fs::write(d.path("tiny.toml"), TINY).unwrap();
    let (config, run) = (d.s("tiny.toml"), d.s("run"));
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", &data, "--out", &run, "--json"];
        args.extend(extra);
        photonflow(&args)
    };
    let o = train(&["--config", &config]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epochs: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 3);
    for key in [
        "epoch",
        "loss",
        "train_accuracy",
        "test_accuracy",
        "samples_per_s",
    ] {
        assert!(epochs[2][key].is_number(), "{key} in {}", epochs[2]);
    }
    let accuracy = epochs[2]["test_accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.95, "{}", epochs[2]);
    let run_dir = d.path("run");
    for f in [
        "config.toml",
        "checkpoint.json",
        "metrics.jsonl",
        "model/system.json",
        "model/layer0_phase.npy",
        "plots/layers.png",
        "plots/confusion.png",
        "plots/training.png",
        "plots/outputs.png",
    ] {
        assert!(run_dir.join(f).is_file(), "{f} is missing");
    }

    // The same folder again without --resume is refused; with it, training goes on.
    let o = train(&["--config", &config]);
    assert!(
        !o.status.success() && stderr(&o).contains("--resume"),
        "{}",
        stderr(&o)
    );
    // (fine-tuning with shifted images: the one setting besides the epochs a resume may change)
    let o = train(&["--resume", "--epochs", "4", "--augment-shift", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let more: Vec<&str> = text.lines().collect();
    assert_eq!(more.len(), 1);
    let fourth: serde_json::Value = serde_json::from_str(more[0]).unwrap();
    assert_eq!(fourth["epoch"], 4);
    assert_eq!(fourth["augment_shift"], 1);
    assert_eq!(epochs[2]["augment_shift"], 0);
    let lines = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);

    // eval reads the exported model back and finds the accuracy training reported.
    let o = photonflow(&["eval", "--model", &run, "--data", &data, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = last_json(&o);
    assert_eq!(e["accuracy"], fourth["test_accuracy"], "{e}");
    assert_eq!(e["confusion_matrix"].as_array().unwrap().len(), 2);
    assert_eq!(e["per_class_accuracy"].as_array().unwrap().len(), 2);
    assert!(e["samples_per_s"].as_f64().unwrap() > 0.0);

    // Test-time imperfections are applied, reported, and reproducible for a seed.
    let perturbed = |extra: &[&str]| {
        let mut args = vec!["eval", "--model", &run, "--data", &data, "--json"];
        args.extend_from_slice(extra);
        photonflow(&args)
    };
    let o = perturbed(&["--misalign", "1px", "--levels", "4", "--axial", "1mm"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = last_json(&o);
    assert_eq!(p["perturbation"]["lateral_px"], 1, "{p}");
    assert_eq!(p["perturbation"]["levels"], 4, "{p}");
    assert!((p["perturbation"]["axial_m"].as_f64().unwrap() - 1e-3).abs() < 1e-12);
    let again = last_json(&perturbed(&[
        "--misalign",
        "1px",
        "--levels",
        "4",
        "--axial",
        "1mm",
    ]));
    assert_eq!(again["accuracy"], p["accuracy"]);
    for (bad, needle) in [
        (["--misalign", "0.3mm"], "whole pixels"),
        (["--misalign", "one"], "--misalign"),
        (["--levels", "1"], "--levels"),
        (["--axial", "-1mm"], "--axial"),
    ] {
        let o = perturbed(&bad);
        assert!(!o.status.success(), "{bad:?}");
        assert!(stderr(&o).contains(needle), "{bad:?}: {}", stderr(&o));
    }

    // The light: a laser model under an LED (3 lines of a 20 % wide spectrum, a cone of NA
    // 0.002), reported; --laser is the model's own light; bad light names its flag.
    let o = perturbed(&[
        "--spectrum",
        "gaussian:0.75mm:150um",
        "--lines",
        "3",
        "--source-na",
        "0.002",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let led = last_json(&o);
    assert_eq!(led["light"]["lines"].as_array().unwrap().len(), 3, "{led}");
    assert!(led["light"]["propagations_per_image"].as_u64().unwrap() > 3);
    assert_eq!(led["light"]["source"]["na"], 0.002, "{led}");
    let o = perturbed(&["--laser"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let laser = last_json(&o);
    assert_eq!(laser["accuracy"], e["accuracy"]);
    assert_eq!(laser["light"]["propagations_per_image"], 1);
    assert!(laser["light"]["source"].is_null(), "{laser}");
    let o = photonflow(&[
        "eval",
        "--model",
        &run,
        "--data",
        &data,
        "--spectrum",
        "lines:0.7mm=1,0.8mm=1",
    ]);
    assert!(
        o.status.success() && stdout(&o).contains("light: 2 lines from 700um to 800um"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    for (bad, needle) in [
        (vec!["--lines", "2"], "give --spectrum"),
        (vec!["--source-na", "2"], "--source-na 2"),
        (vec!["--spectrum", "gaussian:1mm"], "--spectrum"),
        (
            vec!["--laser", "--source-na", "0.01"],
            "cannot be used with",
        ),
    ] {
        let o = perturbed(&bad);
        assert!(!o.status.success(), "{bad:?}");
        assert!(stderr(&o).contains(needle), "{bad:?}: {}", stderr(&o));
    }

    // infer: both classes recognised, confidences that sum to one, the detected power reported.
    let (left, right) = (
        d.path("bars/left/00.png").to_string_lossy().into_owned(),
        d.path("bars/right/05.png").to_string_lossy().into_owned(),
    );
    let o = photonflow(&["infer", "--model", &run, &left, &right, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = last_json(&o);
    let preds = p["predictions"].as_array().unwrap();
    assert_eq!(preds[0]["label"], "left", "{p}");
    assert_eq!(preds[1]["label"], "right", "{p}");
    for pred in preds {
        let sum: f64 = pred["confidences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-5, "{pred}");
        let f = pred["detected_fraction"].as_f64().unwrap();
        assert!(f > 0.0 && f <= 1.0, "{pred}");
    }
    // 130 images run in batches of 64, 64 and 2: every answer in its place, each the same as
    // in the run of two above (to f32 rounding).
    let mut many = vec!["infer", "--model", &run, "--json"];
    for _ in 0..65 {
        many.extend([left.as_str(), right.as_str()]);
    }
    let o = photonflow(&many);
    assert!(o.status.success(), "{}", stderr(&o));
    let batched = last_json(&o);
    let batched = batched["predictions"].as_array().unwrap();
    assert_eq!(batched.len(), 130);
    for (k, pred) in batched.iter().enumerate() {
        let one = &preds[k % 2];
        assert_eq!(pred["image"], one["image"], "{k}");
        let (a, b) = (
            pred["confidences"].as_array().unwrap(),
            one["confidences"].as_array(),
        );
        for (x, y) in a.iter().zip(b.unwrap()) {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() < 1e-5, "image {k}: {x} against {y}");
        }
    }
    let o = photonflow(&["infer", "--model", &run, &left]);
    assert!(
        o.status.success() && stdout(&o).contains("left ("),
        "{}",
        stdout(&o)
    );
    let o = photonflow(&[
        "infer",
        "--model",
        &run,
        &left,
        "--json",
        "--spectrum",
        "flat:0.7mm:0.8mm",
        "--lines",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = last_json(&o);
    assert_eq!(p["light"]["lines"].as_array().unwrap().len(), 4, "{p}");
    assert_eq!(p["predictions"][0]["label"], "left", "{p}");

    rigs_classify_as_the_model_does(&d, &run, &data, [&left, &right], preds);
    export_writes_what_was_designed(&d, &run, &data);
    export_solids_masks_and_bitmaps(&d, &run, &data);
}

/// A hybrid network (a 4×4 detector array read by an electronic layer) through the CLI:
/// trained with its plot of the layer, evaluated to what training reported, and run on an
/// ideal simulated bench, whose camera frames the layer reads as the model does.
#[test]
fn hybrid_network_trains_evaluates_and_runs_on_a_rig() {
    let d = Dir::new();
    let data = bars_dataset(&d);
    let text = TINY.replace(
        "[detector]\nsize = \"2mm\"\ngap = \"2mm\"",
        "[detector]\narray = 4\n\n[readout]\nhead = \"linear\"\nhead_lr = 0.5",
    );
    assert!(text.contains("array = 4"), "{text}");
    std::fs::write(d.path("hybrid.toml"), text).unwrap();
    let run = d.s("run");
    let o = photonflow(&[
        "train",
        "--config",
        &d.s("hybrid.toml"),
        "--data",
        &data,
        "--out",
        &run,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let last = last_json(&o);
    assert!(last["test_accuracy"].as_f64().unwrap() >= 0.95, "{last}");
    let png = std::fs::read(d.path("run/plots/head.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let system: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("run/model/system.json")).unwrap())
            .unwrap();
    let head = &system["detector"]["head"];
    assert_eq!(head["weights"].as_array().unwrap().len(), 32, "{head}");
    assert_eq!(system["detector"]["regions"].as_array().unwrap().len(), 16);

    let o = photonflow(&["eval", "--model", &run, "--data", &data, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["accuracy"], last["test_accuracy"]);

    // The npy export carries the electronic layer for the computer behind the detector.
    let fab = d.s("fab");
    let o = photonflow(&["export", "--model", &run, "--target", "npy", "--out", &fab]);
    assert!(o.status.success(), "{}", stderr(&o));
    let weights = npy::read_npy(&d.path("fab/head_weights.npy")).unwrap();
    let bias = npy::read_npy(&d.path("fab/head_bias.npy")).unwrap();
    assert_eq!(
        (weights.shape.as_slice(), bias.shape.as_slice()),
        (&[2, 16][..], &[2][..])
    );
    let want: Vec<f64> = head["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect();
    assert!(
        matches!(&weights.data, NpyData::F64(v) if *v == want),
        "{weights:?}"
    );
    let manifest = std::fs::read_to_string(d.path("fab/manifest.json")).unwrap();
    assert!(
        manifest.contains("head_bias.npy") && manifest.contains("x_r = R"),
        "{manifest}"
    );

    std::fs::write(d.path("ideal.toml"), IDEAL_RIG).unwrap();
    let (left, right) = (d.s("bars/left/03.png"), d.s("bars/right/05.png"));
    let infer = |extra: &[&str]| {
        infer_json(&run, [&left, &right], extra)["predictions"]
            .as_array()
            .unwrap()
            .clone()
    };
    let model = infer(&[]);
    let rig = infer(&["--rig", "sim", "--rig-config", &d.s("ideal.toml")]);
    for ((m, r), want) in model.iter().zip(&rig).zip(["left", "right"]) {
        assert_eq!(m["label"], want, "{m}");
        assert_eq!(r["label"], want, "{r}");
        assert_eq!(m["energy_fractions"].as_array().unwrap().len(), 16, "{m}");
        let c = |p: &serde_json::Value| p["confidences"][0].as_f64().unwrap();
        assert!((c(m) - c(r)).abs() < 1e-4, "model {m} against rig {r}");
    }
}

/// `infer --json` of two images with `extra` flags, which must succeed: its JSON object.
fn infer_json(run: &str, [a, b]: [&str; 2], extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["infer", "--model", run, a, b, "--json"];
    args.extend_from_slice(extra);
    let o = photonflow(&args);
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    last_json(&o)
}

/// The rig file of an ideal bench: 16-bit SLM and camera, no noise, nothing misplaced.
const IDEAL_RIG: &str = "[source]\nphotons_per_s = 1e14\n[slm]\nbits = 16\n[camera]\nbits = 16\n\
    full_well = 1e12\nquantum_efficiency = 1.0\nread_noise = 0.0\ndark_current = 0.0\n\
    black_level = 0\nexposure = 1.0\nshot_noise = false\n";

/// `infer --rig`: an ideal simulated bench answers as the model does (its own propagation code,
/// against the model's Burn path); a realistic one still recognises the bars; the same bench
/// served over slmsuite's protocol answers as it does locally; bad rigs are named.
fn rigs_classify_as_the_model_does(
    d: &Dir,
    run: &str,
    data: &str,
    [left, right]: [&str; 2],
    model: &[serde_json::Value],
) {
    std::fs::write(d.path("ideal.toml"), IDEAL_RIG).unwrap();
    let ideal = d.s("ideal.toml");
    let confidences = |p: &serde_json::Value| -> Vec<f64> {
        p["confidences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap())
            .collect()
    };
    let on_rig = |extra: &[&str]| infer_json(run, [left, right], extra);
    let sim = on_rig(&["--rig", "sim", "--rig-config", &ideal]);
    let preds = sim["predictions"].as_array().unwrap();
    assert_eq!(sim["rig"]["camera"]["bits"], 16, "{sim}");
    for (p, m) in preds.iter().zip(model) {
        assert_eq!(p["label"], m["label"], "{p}");
        for (a, b) in confidences(p).iter().zip(confidences(m)) {
            assert!((a - b).abs() < 1e-4, "rig {a} against model {b}");
        }
        assert_eq!(p["saturated_pixels"], 0, "{p}");
    }
    // The default bench: 8-bit SLM, 12-bit camera with shot, dark and read noise; 4 frames.
    let noisy = on_rig(&["--rig", "sim", "--frames", "4"]);
    let noisy = noisy["predictions"].as_array().unwrap();
    assert_eq!(noisy[0]["label"], "left", "{noisy:?}");
    assert_eq!(noisy[1]["label"], "right", "{noisy:?}");
    assert_eq!(noisy[0]["frames"], 4);
    for p in noisy {
        let c = p["certainty"].as_f64().unwrap();
        assert!(c > 0.5 && c <= 1.0, "{p}");
        assert_eq!(p["region_signal_errors_adu"].as_array().unwrap().len(), 2);
    }
    assert_ne!(confidences(&noisy[0]), confidences(&preds[0]));

    // The ideal bench on the network, found through the port it prints.
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_photonflow"))
        .args(["rig", "serve", "--model", run, "--rig-config", &ideal])
        .args(["--bind", "127.0.0.1:0", "--requests", "40"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    let address = first
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(':').parse::<std::net::SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    assert!(address.starts_with("127.0.0.1:"), "{first}");
    let remote = on_rig(&["--rig", &address]);
    let _ = server.kill();
    let _ = server.wait();
    for (p, s) in remote["predictions"].as_array().unwrap().iter().zip(preds) {
        assert_eq!(p["label"], s["label"]);
        assert_eq!(
            confidences(p),
            confidences(s),
            "over the network against local"
        );
    }
    assert!(remote["rig"]["name"].as_str().unwrap().contains(&address));

    // eval on the ideal bench: the model's accuracy and confusion; with the default bench's
    // noise, still every bar; model perturbations are refused there.
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--model", run, "--data", data, "--json"];
        args.extend_from_slice(extra);
        photonflow(&args)
    };
    let ideal_model = last_json(&eval(&[]));
    let o = eval(&["--rig", "sim", "--rig-config", &ideal, "--batch", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let on_bench = last_json(&o);
    assert_eq!(
        on_bench["confusion_matrix"],
        ideal_model["confusion_matrix"]
    );
    assert!(on_bench["detected_fraction"].is_null(), "{on_bench}");
    assert!(
        (on_bench["loss"].as_f64().unwrap() - ideal_model["loss"].as_f64().unwrap()).abs() < 1e-3
    );
    assert_eq!(on_bench["rig"]["name"], "simulated");
    let o = eval(&["--rig", "sim", "--frames", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let two_frames = last_json(&o);
    assert_eq!(two_frames["accuracy"], ideal_model["accuracy"]);
    assert!(
        two_frames["mean_certainty"].as_f64().unwrap() > 0.5,
        "{two_frames}"
    );
    let o = eval(&["--rig", "sim", "--levels", "4"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--levels"),
        "{}",
        stderr(&o)
    );

    // A camera of its own pitch, size, offset and rotation: refused until calibrated, then
    // read through the calibration as the model reads its plane.
    let camera = format!(
        "{IDEAL_RIG}pitch = \"0.5mm\"\nrows = 24\ncols = 26\nx = \"0.3mm\"\ny = \"-0.2mm\"\n\
         rotation = 5.0\n"
    );
    std::fs::write(d.path("camera.toml"), camera).unwrap();
    let turned = d.s("camera.toml");
    let o = eval(&["--rig", "sim", "--rig-config", &turned]);
    assert!(
        !o.status.success() && stderr(&o).contains("rig calibrate"),
        "{}",
        stderr(&o)
    );
    let calibration = d.s("calibration.json");
    let o = photonflow(&[
        "rig",
        "calibrate",
        "--model",
        run,
        "--data",
        data,
        "--rig",
        "sim",
        "--rig-config",
        &turned,
        "--out",
        &calibration,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = last_json(&o);
    assert!(
        (c["pitch_m"].as_f64().unwrap() / 0.5e-3 - 1.0).abs() < 1e-3,
        "{c}"
    );
    assert!(
        (c["rotation_deg"].as_f64().unwrap() - 5.0).abs() < 0.05,
        "{c}"
    );
    let centre = c["centre_m"].as_array().unwrap();
    assert!((centre[0].as_f64().unwrap() - 0.3e-3).abs() < 5e-6, "{c}");
    assert!((centre[1].as_f64().unwrap() + 0.2e-3).abs() < 5e-6, "{c}");
    let o = eval(&[
        "--rig",
        "sim",
        "--rig-config",
        &turned,
        "--calibration",
        &calibration,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let calibrated = last_json(&o);
    assert_eq!(
        calibrated["accuracy"], ideal_model["accuracy"],
        "{calibrated}"
    );
    // A calibration of another camera is refused.
    let o = eval(&[
        "--rig",
        "sim",
        "--rig-config",
        &ideal,
        "--calibration",
        &calibration,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("calibrate it again"),
        "{}",
        stderr(&o)
    );

    // The layer placed off its design (a pixel and 0.4 of one sideways, 0.3 mm along the
    // axis) on a noisy bench: identification finds it, and its twin is a rig file eval reads.
    std::fs::write(
        d.path("moved.toml"),
        "seed = 2\n[layers]\noffsets = [{ x = \"0.4mm\", y = \"-0.16mm\", z = \"0.3mm\" }]\n",
    )
    .unwrap();
    let (moved, twin) = (d.s("moved.toml"), d.s("twin.toml"));
    let identify = |extra: &[&str]| {
        let mut args = vec![
            "rig", "identify", "--model", run, "--data", data, "--rig", "sim",
        ];
        args.extend_from_slice(extra);
        photonflow(&args)
    };
    let o = identify(&[
        "--rig-config",
        &moved,
        "--frames",
        "4",
        "--out",
        &twin,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let found = last_json(&o);
    let layer = &found["layers"][0];
    let near = |key: &str, want: f64, within: f64| {
        let got = layer[key].as_f64().unwrap();
        assert!(
            (got - want).abs() < within,
            "{key}: {got} against {want}: {found}"
        );
    };
    near("x_m", 0.4e-3, 8e-6);
    near("y_m", -0.16e-3, 8e-6);
    near("z_m", 0.3e-3, 15e-6);
    let i = &found["identification"];
    assert!(
        i["residual"].as_f64().unwrap() < 0.5 * i["residual_design"].as_f64().unwrap(),
        "{found}"
    );
    let o = eval(&["--rig", "sim", "--rig-config", &twin]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Started from the twin, as the next step of an assembly would be: the same place.
    let o = identify(&[
        "--rig-config",
        &moved,
        "--mounted",
        "1",
        "--start",
        &twin,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = last_json(&o);
    let x = again["layers"][0]["x_m"].as_f64().unwrap();
    assert!((x - 0.4e-3).abs() < 8e-6, "{again}");
    for (args, needle) in [
        (vec!["--search", "0.5px"], "--search"),
        (vec!["--search", "40px"], "at most 16px"),
        (vec!["--probes", "0"], "--probes"),
        (vec!["--no-axial", "--axial-range", "1mm"], "--no-axial"),
        (vec!["--rig-config", &turned], "calibrate"),
        (vec!["--mounted", "2"], "--mounted 2"),
        (vec!["--start", &ideal], "--start"),
    ] {
        let o = identify(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }

    // The default bench's camera measured by photon transfer (gain 10 000/4096 e⁻/ADU, read
    // noise 2 e⁻, black level 100 ADU); then read with it, as a lab's camera would be.
    let measured = d.s("camera.json");
    let o = photonflow(&[
        "rig", "camera", "--model", run, "--data", data, "--rig", "sim", "--out", &measured,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = last_json(&o);
    let camera = &m["camera"];
    let gain = camera["gain"].as_f64().unwrap();
    assert!((gain / (10_000.0 / 4096.0) - 1.0).abs() < 0.05, "{m}");
    assert!(
        (camera["black_level"].as_f64().unwrap() - 100.0).abs() < 1.0,
        "{m}"
    );
    let read = camera["read_noise"].as_f64().unwrap();
    assert!(read > 1.0 && read < 3.0, "{m}");
    let o = photonflow(&[
        "infer", "--model", run, left, "--rig", "sim", "--camera", &measured, "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = &last_json(&o)["predictions"][0];
    assert!(p["certainty"].as_f64().unwrap() > 0.5, "{p}");
    let o = photonflow(&[
        "infer", "--model", run, left, "--rig", "sim", "--camera", &twin,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--camera"),
        "{}",
        stderr(&o)
    );

    // The SLM response is measured for phase SLMs; this model's input is in amplitude.
    let o = photonflow(&[
        "rig",
        "slm",
        "--model",
        run,
        "--rig",
        "sim",
        "--out",
        &d.s("slm.csv"),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("amplitude"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path("slm.csv").exists());

    // A lookup table is for a phase SLM; this model's input is in amplitude.
    let rows: Vec<String> = (0..256)
        .map(|g| format!("{g},{}", g as f64 * 0.0245))
        .collect();
    std::fs::write(d.path("slm.csv"), rows.join("\n")).unwrap();
    let (lut, no_lut) = (d.s("slm.csv"), d.s("none.csv"));
    for (args, needle) in [
        (vec!["--rig", "sim", "--slm-lut", &lut], "phase SLM"),
        (vec!["--rig", "sim", "--slm-lut", &no_lut], "--slm-lut"),
        (vec!["--rig", "nowhere"], "HOST:PORT"),
        (
            vec!["--rig", "127.0.0.1:1", "--rig-timeout", "2"],
            "cannot connect",
        ),
        (vec!["--rig", "sim", "--frames", "0"], "--frames"),
        (vec!["--rig", "sim", "--frames", "5000"], "1 to 1024"),
        (vec!["--rig", "sim", "--rig-config", run], "--rig-config"),
        (vec!["--rig-config", &ideal], "--rig"),
    ] {
        let mut all = vec!["infer", "--model", run, left];
        all.extend_from_slice(&args);
        let o = photonflow(&all);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    std::fs::write(d.path("bad_rig.toml"), "[camera]\nbits = 20\n").unwrap();
    let o = photonflow(&[
        "infer",
        "--model",
        run,
        left,
        "--rig",
        "sim",
        "--rig-config",
        &d.s("bad_rig.toml"),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("camera.bits"),
        "{}",
        stderr(&o)
    );
    let o = photonflow(&["rig", "config"]);
    assert!(
        o.status.success() && stdout(&o).contains("[camera]"),
        "{}",
        stdout(&o)
    );
}

/// `photonflow export` of the trained folder-dataset model: level and height maps that read
/// back to the design, a manifest whose hashes match, the as-built accuracy, and refusals.
fn export_writes_what_was_designed(d: &Dir, run: &str, data: &str) {
    use photonflow::compiler::manifest::Manifest;
    use photonflow::optics::OpticalSystem;
    let out = d.s("fab");
    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--model", run, "--out", &out, "--json"];
        args.extend(extra);
        photonflow(&args)
    };
    let o = export(&[
        "--target",
        "npy",
        "--levels",
        "4",
        "--simulate",
        "--data",
        data,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = last_json(&o);
    let sim = &m["simulation"];
    for key in ["designed_accuracy", "as_built_accuracy"] {
        let a = sim[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{sim}");
    }
    // Absorption of the thz-resin relief (κ = 0.03) loses light.
    assert!(
        sim["as_built_detected_fraction"].as_f64().unwrap()
            < sim["designed_detected_fraction"].as_f64().unwrap(),
        "{sim}"
    );
    let system = OpticalSystem::load(&d.path("run/model")).unwrap();
    let manifest = Manifest::load(&d.path("fab")).unwrap();
    assert!(manifest.verify(&d.path("fab")).is_empty());
    assert_eq!(manifest.levels, Some(4));
    let full = 0.75e-3 / 0.72;
    assert!((manifest.full_wave_m.unwrap() - full).abs() < 1e-12);
    for (k, layer) in system.layers.iter().enumerate() {
        let levels = npy::read_npy(&d.path(&format!("fab/{}_levels.npy", layer.name))).unwrap();
        let heights = npy::read_npy(&d.path(&format!("fab/{}_height.npy", layer.name))).unwrap();
        assert_eq!(levels.shape, [system.ny, system.nx]);
        let (NpyData::U8(levels), NpyData::F64(heights)) = (levels.data, heights.data) else {
            panic!("levels are uint8, heights float64");
        };
        for ((&l, &h), &phase) in levels.iter().zip(&heights).zip(&layer.phase) {
            // The nearest of 4 levels of the design phase, and its height.
            let want = ((f64::from(phase) / std::f64::consts::TAU * 4.0).round() as u8) % 4;
            assert_eq!(l, want, "layer {k}");
            assert!((h - f64::from(l) * full / 4.0).abs() < 1e-15);
        }
        assert!(
            manifest
                .files
                .iter()
                .any(|f| f.layer == Some(k) && f.kind == "levels")
        );
    }
    // The height target: 16-bit PNGs on the one-2π scale, replacing the earlier export.
    let o = export(&["--target", "height", "--base", "1mm"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = Manifest::load(&d.path("fab")).unwrap();
    assert_eq!(m.target, "height");
    assert_eq!(
        m.levels, None,
        "trained without levels: a continuous relief"
    );
    assert!((m.base_m.unwrap() - 1e-3).abs() < 1e-15);
    let name = &system.layers[0].name;
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(d.path(&format!("fab/{name}_height.png"))).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Sixteen);
    let heights = npy::read_npy(&d.path(&format!("fab/{name}_height.npy"))).unwrap();
    let NpyData::F64(heights) = heights.data else {
        panic!("float64 heights")
    };
    let nx = system.nx;
    for (r, row) in heights.chunks(nx).enumerate() {
        // Image row 0 is the most positive y: the last row of the array.
        let img_row = system.ny - 1 - r;
        for (c, &h) in row.iter().enumerate() {
            let i = 2 * (img_row * nx + c);
            let g = f64::from(u16::from_be_bytes([buf[i], buf[i + 1]]));
            assert!((g / 65535.0 * full - h).abs() <= 0.5 / 65535.0 * full + 1e-15);
        }
    }
    assert!(
        !d.files().iter().any(|f| f.starts_with('.')),
        "{:?}",
        d.files()
    );

    // Refusals name the flag; nothing is written.
    std::fs::write(
        d.path("air.toml"),
        "[[material]]\nname = \"air\"\nn = 1.0\nwavelength = \"0.75mm\"\n",
    )
    .unwrap();
    let air = d.s("air.toml");
    for (args, needle) in [
        (vec!["--target", "gerber"], "--target"),
        (vec!["--target", "npy", "--levels", "1"], "--levels"),
        (
            vec!["--target", "npy", "--material", "unobtainium"],
            "--material",
        ),
        (
            vec!["--target", "npy", "--material", "fused-silica"],
            "known from 210nm to 3.71um (sellmeier dispersion), not at 750um",
        ),
        (vec!["--target", "npy", "--material", &air], "≤ the medium"),
        (vec!["--target", "npy", "--base", "-1mm"], "--base"),
    ] {
        let o = export(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    std::fs::create_dir_all(d.path("notes")).unwrap();
    std::fs::write(d.path("notes/keep.txt"), "x").unwrap();
    let notes = d.s("notes");
    let o = photonflow(&["export", "--model", run, "--target", "npy", "--out", &notes]);
    assert!(!o.status.success() && stderr(&o).contains("not a photonflow export"));
    assert!(d.path("notes/keep.txt").is_file());
    assert!(
        !d.files().iter().any(|f| f.starts_with('.')),
        "{:?}",
        d.files()
    );
}

/// Runs `script` with `$PHOTONFLOW_PYTHON` (the CI venv: numpy, gdstk, numpy-stl) on `args`;
/// `None` when the variable is not set (the caller says what it skipped).
fn python(script: &str, args: &[&str]) -> Option<String> {
    let python = std::env::var_os("PHOTONFLOW_PYTHON")?;
    let o = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run PHOTONFLOW_PYTHON");
    assert!(
        o.status.success(),
        "{python:?} failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    Some(stdout(&o))
}

/// gdstk reads the GDS library (or the OASIS file, checking its CRC-32) and rasterises every
/// cell's level-k polygons back onto the design's pixels; the result must equal the expected
/// level maps (`levels_<cell>.npy`).
const GDSTK_CHECK: &str = r#"
import sys, numpy as np, gdstk
path, folder, pitch = sys.argv[1], sys.argv[2], float(sys.argv[3])
if path.endswith(".oas"):
    valid, _ = gdstk.oas_validate(path)
    assert valid, "the OASIS CRC-32 does not match"
    lib = gdstk.read_oas(path)
else:
    lib = gdstk.read_gds(path)
assert abs(lib.unit - 1e-6) < 1e-18 and abs(lib.precision - 1e-9) < 1e-21, (lib.unit, lib.precision)
for cell in lib.cells:
    want = np.load(f"{folder}/levels_{cell.name}.npy")
    ny, nx = want.shape
    got = np.zeros_like(want)
    x0, y0 = -nx * pitch / 2, -ny * pitch / 2
    for p in cell.polygons:
        (xa, ya), (xb, yb) = p.bounding_box()
        c0, c1 = round((xa * 1e-6 - x0) / pitch), round((xb * 1e-6 - x0) / pitch)
        r0, r1 = round((ya * 1e-6 - y0) / pitch), round((yb * 1e-6 - y0) / pitch)
        assert len(p.points) == 4 and p.datatype == 0, p.points
        got[r0:r1, c0:c1] = p.layer
    assert (got == want).all(), (cell.name, np.argwhere(got != want)[:5])
    print(cell.name, len(cell.polygons), "polygons")
"#;

/// KLayout (the `klayout` Python module: the layout viewer's own readers) reads a GDSII and an
/// OASIS file and finds the same cells, instances, geometry (the XOR of every layer empty, cell
/// by cell, hierarchy included) and labels.
const KLAYOUT_SAME: &str = r#"
import sys, klayout.db as db
def load(p):
    ly = db.Layout()
    ly.read(p)
    return ly
a, b = load(sys.argv[1]), load(sys.argv[2])
assert abs(a.dbu - b.dbu) < 1e-12, (a.dbu, b.dbu)
names = sorted(c.name for c in a.each_cell())
assert names == sorted(c.name for c in b.each_cell()), names
infos = lambda ly: {(i.layer, i.datatype) for i in map(ly.get_info, ly.layer_indexes())}
layers = sorted(infos(a) | infos(b))
shapes = 0
for name in names:
    ca, cb = a.cell(name), b.cell(name)
    assert ca.child_instances() == cb.child_instances(), name
    for l, d in layers:
        ra = db.Region(ca.begin_shapes_rec(a.layer(l, d)))
        rb = db.Region(cb.begin_shapes_rec(b.layer(l, d)))
        assert (ra ^ rb).is_empty(), (name, l, d, (ra ^ rb).area())
        shapes += ra.count()
        text = lambda ly, c: sorted(
            (t.string, t.x, t.y) for t in db.Texts(c.begin_shapes_rec(ly.layer(l, d))).each()
        )
        assert text(a, ca) == text(b, cb), (name, l, d)
print(len(names), "cells,", len(layers), "layers,", shapes, "shapes: the same geometry and labels")
"#;

/// numpy-stl reads the solid: closed, of the designed volume (mm³), and (welding equal
/// coordinates in numpy) an oriented 2-manifold: every edge in two triangles, once each way.
const STL_CHECK: &str = r#"
import sys
import numpy as np
from stl import mesh
m = mesh.Mesh.from_file(sys.argv[1])
volume, _, _ = m.get_mass_properties()
want = float(sys.argv[2])
assert m.is_closed(exact=True), "not closed"
assert abs(volume - want) < 1e-4 * want, (volume, want)
_, t = np.unique(m.vectors.reshape(-1, 3), axis=0, return_inverse=True)
t = t.reshape(-1, 3)
directed = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
_, uses = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
_, once = np.unique(directed, axis=0, return_counts=True)
assert uses.min() == uses.max() == 2 and once.max() == 1, (np.bincount(uses), once.max())
print(len(m.vectors), "triangles", volume, "mm3,", len(uses), "edges, each in two triangles")
"#;

fn read_png_gray(path: &Path) -> (usize, usize, Vec<u16>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let gray = match info.bit_depth {
        png::BitDepth::Eight => buf[..w * h].iter().map(|&g| u16::from(g)).collect(),
        png::BitDepth::Sixteen => buf[..2 * w * h]
            .chunks(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect(),
        d => panic!("{d:?}"),
    };
    (w, h, gray)
}

/// `photonflow export` to STL, GDS and SLM bitmaps: each file read back by an independent
/// reader (gdstk, numpy-stl, the png crate) and compared with what the design asks for.
fn export_solids_masks_and_bitmaps(d: &Dir, run: &str, data: &str) {
    use photonflow::compiler::manifest::Manifest;
    use photonflow::optics::OpticalSystem;
    use std::f64::consts::TAU;
    let system = OpticalSystem::load(&d.path("run/model")).unwrap();
    let (nx, ny, pitch) = (system.nx, system.ny, system.pitch_m);
    let levels4 = |phase: &[f32]| -> Vec<u8> {
        phase
            .iter()
            .map(|&p| ((f64::from(p) / TAU * 4.0).round() as u8) % 4)
            .collect()
    };
    let out = d.s("fab2");
    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--model", run, "--out", &out, "--json"];
        args.extend(extra);
        photonflow(&args)
    };

    // STL: 4 levels on a 1 mm base of the THz resin (one 2π = 0.75/0.72 mm).
    let o = export(&["--target", "stl", "--levels", "4", "--base", "1mm"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = Manifest::load(&d.path("fab2")).unwrap();
    assert!(m.verify(&d.path("fab2")).is_empty());
    let full_mm = 0.75 / 0.72;
    for (k, layer) in system.layers.iter().enumerate() {
        let entry = m
            .files
            .iter()
            .find(|f| f.layer == Some(k) && f.kind == "stl");
        let entry = entry.expect("an STL per layer");
        let levels = levels4(&layer.phase);
        let pixel_mm2 = (pitch * 1e3).powi(2);
        let volume: f64 = levels
            .iter()
            .map(|&l| (1.0 + f64::from(l) * full_mm / 4.0) * pixel_mm2)
            .sum();
        let path = d.path(&format!("fab2/{}", entry.path));
        let mesh = photonflow::compiler::export::stl::read_stl(&mut std::io::BufReader::new(
            std::fs::File::open(&path).unwrap(),
        ))
        .unwrap();
        mesh.check_watertight().unwrap();
        assert!((mesh.volume() - volume).abs() < 1e-5 * volume);
        let (lo, hi) = mesh.bbox();
        let half = nx as f64 * pitch * 1e3 / 2.0;
        assert!(
            (lo[0] + half).abs() < 1e-4 && (hi[0] - half).abs() < 1e-4,
            "{lo:?} {hi:?}"
        );
        let top = 1.0 + f64::from(*levels.iter().max().unwrap()) * full_mm / 4.0;
        assert!(
            lo[2].abs() < 1e-6 && (hi[2] - top).abs() < 1e-4,
            "{lo:?} {hi:?}"
        );
        let path = path.to_string_lossy().into_owned();
        match python(STL_CHECK, &[&path, &volume.to_string()]) {
            Some(said) => eprintln!("numpy-stl: {}", said.trim()),
            None => eprintln!("note: PHOTONFLOW_PYTHON is not set; numpy-stl did not read the STL"),
        }
    }

    // The same solid in micrometres: coordinates 1000× larger.
    let o = export(&[
        "--target",
        "stl",
        "--levels",
        "4",
        "--base",
        "1mm",
        "--stl-unit",
        "um",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = last_json(&o);
    assert_eq!(m["target_settings"]["unit"], "um");
    let path = d.path(&format!("fab2/{}.stl", system.layers[0].name));
    let mesh = photonflow::compiler::export::stl::read_stl(&mut std::io::BufReader::new(
        std::fs::File::open(&path).unwrap(),
    ))
    .unwrap();
    let (lo, hi) = mesh.bbox();
    let half_um = nx as f64 * pitch * 1e6 / 2.0;
    assert!(
        (lo[0] + half_um).abs() < 0.1 && (hi[0] - half_um).abs() < 0.1,
        "{lo:?} {hi:?}"
    );

    // GDS: level k of 4 on GDS layer k, read back by gdstk.
    let o = export(&["--target", "gds", "--levels", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = last_json(&o);
    assert_eq!(m["target_settings"]["database_unit_m"], 1e-9);
    let expected = d.path("expected");
    std::fs::create_dir_all(&expected).unwrap();
    for layer in &system.layers {
        let levels = levels4(&layer.phase);
        let name = expected.join(format!("levels_{}.npy", layer.name));
        npy::write_npy(&name, &[ny, nx], NpyDataRef::U8(&levels)).unwrap();
    }
    let gds = d.s("fab2/mask.gds");
    let gds_bytes = std::fs::metadata(&gds).unwrap().len();
    let expected = expected.to_string_lossy().into_owned();
    match python(GDSTK_CHECK, &[&gds, &expected, &pitch.to_string()]) {
        Some(said) => eprintln!("gdstk: {}", said.trim()),
        None => eprintln!("note: PHOTONFLOW_PYTHON is not set; gdstk did not read the GDS"),
    }

    // OASIS: the same library, read back by photonflow (in the export), by gdstk and by
    // KLayout (the same geometry as the GDS, layer by layer), and smaller.
    let fab_oas = d.s("fab_oas");
    let o = photonflow(&[
        "export", "--model", run, "--out", &fab_oas, "--json", "--target", "oasis", "--levels", "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = last_json(&o);
    assert!(
        m["target_settings"]["format"]
            .as_str()
            .unwrap()
            .starts_with("OASIS"),
        "{m}"
    );
    assert!(m["target_settings"]["user_unit_m"].is_null(), "{m}");
    let oas = d.s("fab_oas/mask.oas");
    let oas_bytes = std::fs::metadata(&oas).unwrap().len();
    assert!(5 * oas_bytes < gds_bytes, "{oas_bytes} vs {gds_bytes}");
    let library = photonflow::compiler::export::gds::read_gds(&std::fs::read(&oas).unwrap());
    let cells = library.unwrap().cells;
    assert_eq!(cells.len(), system.layers.len());
    match python(GDSTK_CHECK, &[&oas, &expected, &pitch.to_string()]) {
        Some(said) => eprintln!("gdstk (OASIS): {}", said.trim()),
        None => eprintln!("note: PHOTONFLOW_PYTHON is not set; gdstk did not read the OASIS"),
    }
    if let Some(said) = python(KLAYOUT_SAME, &[&gds, &oas]) {
        eprintln!("KLayout: {}", said.trim());
    }
    let o = export(&["--target", "oasis", "--levels", "4", "--unwrap"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--unwrap does not apply to --target oasis"),
        "{}",
        stderr(&o)
    );

    // SLM: a measured, nonlinear, lossy lookup table on a panel of half the design's pitch.
    let table = |amplitude: f64| -> String {
        let rows: String = (0..256)
            .map(|g| {
                let phase = 6.5 * (f64::from(g) / 255.0).powf(1.3);
                format!("{g},{phase},{amplitude}\n")
            })
            .collect();
        format!("gray,phase,amplitude\n{rows}")
    };
    std::fs::write(d.path("slm.csv"), table(0.9)).unwrap();
    std::fs::write(d.path("lossless.csv"), table(1.0)).unwrap();
    let (w, h) = (2 * nx + 6, 2 * ny + 4); // no SLM pixel centre on a design pixel edge
    let panel = format!("{w}x{h}@{}um", pitch * 1e6 / 2.0);
    let (csv, lossless) = (d.s("slm.csv"), d.s("lossless.csv"));
    let slm = |lut: &str| {
        let o = export(&[
            "--target",
            "slm",
            "--slm",
            &panel,
            "--lut",
            lut,
            "--levels",
            "4",
            "--simulate",
            "--data",
            data,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    let shown = |m: &serde_json::Value| m["simulation"]["as_built_detected_fraction"].as_f64();
    let clear = shown(&slm(&lossless)).unwrap();
    let m = slm(&csv);
    assert!(m["material"].is_null(), "{m}");
    // The table's amplitude 0.9 passes 81 % of the power through every layer.
    let ratio = shown(&m).unwrap() / clear;
    assert!(
        (ratio - 0.81f64.powi(system.layers.len() as i32)).abs() < 1e-4,
        "{ratio} {m}"
    );
    let table: Vec<f64> = (0..256)
        .map(|g| 6.5 * (f64::from(g) / 255.0).powf(1.3))
        .collect();
    let nearest = |phase: f64| -> u16 {
        let dist = |p: f64| {
            let d = (phase - p).rem_euclid(TAU);
            d.min(TAU - d)
        };
        (0..256)
            .min_by(|&a, &b| dist(table[a]).total_cmp(&dist(table[b])))
            .unwrap() as u16
    };
    for layer in &system.layers {
        let (bw, bh, gray) = read_png_gray(&d.path(&format!("fab2/{}_slm.png", layer.name)));
        assert_eq!((bw, bh), (w, h));
        let levels = levels4(&layer.phase);
        let fill = nearest(0.0);
        for (i, row) in gray.chunks(w).enumerate() {
            let r = h - 1 - i; // image row 0 is the most positive y
            for (c, &g) in row.iter().enumerate() {
                // Panel pixel centre in design pixels (half the pitch, centred).
                let v = (r as f64 + 0.5 - h as f64 / 2.0) / 2.0 + ny as f64 / 2.0;
                let u = (c as f64 + 0.5 - w as f64 / 2.0) / 2.0 + nx as f64 / 2.0;
                let want = if (0.0..ny as f64).contains(&v) && (0.0..nx as f64).contains(&u) {
                    let l = levels[v as usize * nx + u as usize];
                    nearest(f64::from(l) * TAU / 4.0)
                } else {
                    fill
                };
                assert_eq!(g, want, "pixel ({i}, {c})");
            }
        }
    }

    // An unwrapped relief: no 2π steps, congruent to the design phase.
    let o = export(&["--target", "npy", "--unwrap"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["unwrapped"], true);
    let full = 0.75e-3 / 0.72;
    for layer in &system.layers {
        let h = npy::read_npy(&d.path(&format!("fab2/{}_height.npy", layer.name))).unwrap();
        let NpyData::F64(h) = h.data else {
            panic!("float64 heights")
        };
        for (&h, &p) in h.iter().zip(&layer.phase) {
            let turns = h / full - f64::from(p) / TAU;
            assert!((turns - turns.round()).abs() < 1e-5, "{h} {p}");
        }
    }

    // Refusals name the flag and the fix; nothing is written.
    std::fs::write(d.path("wiggly.csv"), "0,0\n1,3\n2,2.5\n3,6.3\n").unwrap();
    std::fs::write(d.path("short.csv"), "0,0\n1,1\n2,2\n3,3\n").unwrap();
    let (wiggly, short) = (d.s("wiggly.csv"), d.s("short.csv"));
    for (args, needles) in [
        (
            vec!["--target", "slm", "--lut", &wiggly],
            vec!["--lut", "not monotone"],
        ),
        (
            vec!["--target", "slm", "--lut", &short],
            vec!["--lut", "must cover 2π"],
        ),
        (
            vec!["--target", "slm", "--slm", "20x20@0.4mm"],
            vec!["--slm", "smaller than the design"],
        ),
        (vec!["--target", "slm", "--bits", "9"], vec!["--bits"]),
        (
            vec!["--target", "slm", "--material", "pmma"],
            vec!["--material", "does not apply"],
        ),
        (
            vec!["--target", "npy", "--lut", &csv],
            vec!["--lut", "does not apply"],
        ),
        (
            vec!["--target", "gds"],
            vec!["--levels", "continuous relief"],
        ),
        (
            vec!["--target", "gds", "--levels", "4", "--marks", "2"],
            vec!["--marks", "layer 2", "mask layers 1 … 3"],
        ),
        (
            vec!["--target", "stl", "--levels", "4"],
            vec!["--base", "base plate"],
        ),
        (
            vec!["--target", "stl", "--base", "1mm", "--stl-unit", "furlong"],
            vec!["--stl-unit", "mm"],
        ),
        (
            vec!["--target", "npy", "--stl-unit", "um"],
            vec!["--stl-unit", "does not apply"],
        ),
    ] {
        let before = std::fs::read_dir(d.path("fab2")).unwrap().count();
        let o = export(&args);
        assert!(!o.status.success(), "{args:?}");
        for needle in needles {
            assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        }
        assert_eq!(std::fs::read_dir(d.path("fab2")).unwrap().count(), before);
    }
    assert!(
        !d.files().iter().any(|f| f.starts_with('.')),
        "{:?}",
        d.files()
    );
    // An --out that cannot be created says so and names it.
    std::fs::write(d.path("plain.txt"), "x").unwrap();
    let under_file = d.s("plain.txt/fab");
    let o = photonflow(&[
        "export",
        "--model",
        run,
        "--target",
        "npy",
        "--out",
        &under_file,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("plain.txt") && stderr(&o).contains("--out"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_training_input_names_the_problem() {
    let d = Dir::new();
    let data = bars_dataset(&d);
    let run = d.s("run");
    std::fs::write(
        d.path("typo.toml"),
        TINY.replace("[training]\n", "[training]\nepoch = 2\n"),
    )
    .unwrap();
    let typo = d.s("typo.toml");
    fails(
        &d,
        &["train", "--config", &typo, "--data", &data, "--out", &run],
        &["typo.toml", "unknown field `epoch`", "`epochs`"],
    );
    assert!(
        !d.path("run").exists(),
        "nothing is written for a bad config"
    );
    std::fs::write(d.path("tiny.toml"), TINY).unwrap();
    let tiny = d.s("tiny.toml");
    // Batches whose fields cannot fit in memory (the 40 training images at once, on 50 layers of
    // 8192² neurons: a terabyte) are refused before anything is allocated or written.
    if cfg!(target_os = "linux") {
        std::fs::write(
            d.path("huge.toml"),
            TINY.replace("neurons = 32", "neurons = 8192")
                .replace("layers = 1", "layers = 50\nspacing = \"1cm\""),
        )
        .unwrap();
        let huge = d.s("huge.toml");
        fails(
            &d,
            &[
                "train", "--config", &huge, "--data", &data, "--out", &run, "--batch", "4096",
            ],
            &[
                "batches of 40 on 50 layers of 8192×8192 neurons",
                "TB of memory",
                "--batch",
            ],
        );
        assert!(
            !d.path("run").exists(),
            "nothing is written for a batch that cannot fit"
        );
    }
    let missing = d.s("no-such-dir");
    fails(
        &d,
        &[
            "train", "--config", &tiny, "--data", &missing, "--out", &run,
        ],
        &["no-such-dir"],
    );
    fails(
        &d,
        &[
            "train", "--preset", "lin2019", "--data", &data, "--out", &run,
        ],
        &["lin2019", "lin2018"],
    );
    fails(
        &d,
        &["train", "--data", &data, "--out", &run],
        &["--preset"],
    );
    fails(
        &d,
        &[
            "train", "--config", &tiny, "--data", &data, "--out", &run, "--lr", "-0.1",
        ],
        &["lr = -0.1", "must be > 0"],
    );
    fails(
        &d,
        &[
            "train", "--config", &tiny, "--data", &data, "--out", &run, "--epochs", "-1",
        ],
        &["--epochs", "'-1'"],
    );
    fails(
        &d,
        &["train", "--resume", "--data", &data, "--out", &run],
        &["config.toml"],
    );
    fails(
        &d,
        &["eval", "--model", &missing],
        &["no-such-dir", "does not exist"],
    );
    // A model to run bad images through.
    let o = photonflow(&[
        "train",
        "--config",
        &tiny,
        "--data",
        &data,
        "--out",
        &run,
        "--epochs",
        "1",
        "--no-plots",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = d.path("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    fails(
        &d,
        &["infer", "--model", &run, &text.to_string_lossy()],
        &["notes.png"],
    );
    fails(
        &d,
        &[
            "eval",
            "--model",
            &run,
            "--data",
            &data,
            "--dataset",
            "x",
            "--batch",
            "0",
        ],
        &["--batch"],
    );
}

#[test]
fn data_verify_and_fetch_report_what_they_find() {
    let d = Dir::new();
    // A tiny dataset named like MNIST: found, but its files are not the published ones.
    let mnist = d.path("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let images = [
        &[0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2][..],
        &[7; 8],
    ]
    .concat();
    let labels = [&[0, 0, 8, 1, 0, 0, 0, 2][..], &[1, 2]].concat();
    for split in ["train", "t10k"] {
        std::fs::write(mnist.join(format!("{split}-images-idx3-ubyte")), &images).unwrap();
        std::fs::write(mnist.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
    }
    let dir = d.s("mnist");
    let o = photonflow(&["data", "verify", "mnist", "--data", &dir]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("train-images-idx3-ubyte"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("differ from the published"),
        "{}",
        stderr(&o)
    );
    let o = photonflow(&["data", "fetch", "kmnist", "--to", &d.s("k")]);
    assert!(!o.status.success() && stderr(&o).contains("mnist and fashion-mnist"));
    assert!(!d.path("k").exists());
    if let Some(shared) = std::env::var_os("PHOTONFLOW_DATA_DIR") {
        let real = PathBuf::from(shared).join("mnist");
        let o = photonflow(&[
            "data",
            "verify",
            "mnist",
            "--data",
            &real.to_string_lossy(),
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let j = last_json(&o);
        let files = j["files"].as_array().unwrap();
        assert_eq!(files.len(), 4);
        assert!(files.iter().all(|f| f["status"] == "ok"), "{j}");
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_model() {
    let d = Dir::new();
    let data = bars_dataset(&d);
    // Lengths with more digits than a reader needs: the bare --resume below reads them back
    // from the run's config.toml, and must train the same system.
    let config = TINY
        .replace("epochs = 3", "epochs = 12")
        .replace("\"0.75mm\"", "\"750.1234567um\"")
        .replace("pitch = \"0.4mm\"", "pitch = \"0.40000001mm\"");
    std::fs::write(d.path("tiny.toml"), config).unwrap();
    let tiny = d.s("tiny.toml");
    let args = |out: &str| {
        vec![
            "--threads",
            "2",
            "train",
            "--config",
            &tiny,
            "--data",
            &data,
            "--out",
            out,
            "--no-plots",
            "--json",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    // Uninterrupted.
    let whole = d.s("whole");
    let o = Command::new(env!("CARGO_BIN_EXE_photonflow"))
        .args(args(&whole))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Killed (SIGKILL) as soon as its first checkpoint exists, then resumed.
    let cut = d.s("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_photonflow"))
        .args(args(&cut))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pointer = d.path("cut").join("checkpoint.json");
    while !pointer.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint was seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = std::fs::read_to_string(d.path("cut").join("metrics.jsonl")).unwrap();
    let done = lines.lines().count();
    assert!(
        done < 12,
        "the kill came after the run had finished ({done} epochs)"
    );
    eprintln!("killed after {done} of 12 epochs");
    // Resumed with the run's own config (no --config).
    let o = Command::new(env!("CARGO_BIN_EXE_photonflow"))
        .args([
            "--threads",
            "2",
            "train",
            "--resume",
            "--data",
            &data,
            "--out",
            &cut,
            "--no-plots",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Same masks, bit for bit; same losses and accuracies epoch by epoch.
    let mask = |run: &str| std::fs::read(d.path(run).join("model/layer0_phase.npy")).unwrap();
    assert_eq!(mask("cut"), mask("whole"));
    let metrics = |run: &str| -> Vec<(String, String, String)> {
        std::fs::read_to_string(d.path(run).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["loss"].to_string(),
                    v["train_accuracy"].to_string(),
                    v["test_accuracy"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(metrics("cut"), metrics("whole"));
    assert_eq!(metrics("cut").len(), 12);
}

/// `photonflow demo` with the given environment.
fn demo(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_photonflow"));
    c.arg("demo").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the photonflow binary runs")
}

#[test]
fn demo_without_mnist_falls_back_loudly_to_generated_digits() {
    let d = Dir::new();
    let home = d.s("home");
    let out = d.s("demo");
    let env = [
        ("PHOTONFLOW_DATA_DIR", ""),
        ("HOME", home.as_str()),
        ("XDG_CACHE_HOME", ""),
    ];
    let small = [
        "--out",
        &out,
        "--offline",
        "--train-limit",
        "600",
        "--test-limit",
        "300",
        "--epochs",
        "1",
        "--threads",
        "2",
    ];
    let o = demo(&small, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("NO MNIST FOUND") && err.contains("--offline"),
        "{err}"
    );
    let report = std::fs::read_to_string(d.path("demo/report.md")).unwrap();
    assert!(report.contains("no MNIST was found"), "{report}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("demo/demo.json")).unwrap()).unwrap();
    assert_eq!(summary["source"]["kind"], "synthetic", "{summary}");
    assert_eq!(summary["dataset"], "synthetic-digits");
    // The generated digits are easy: even 600 samples teach the network well above chance.
    let accuracy = summary["evaluation"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.5, "{accuracy}");
    for plot in ["layers", "outputs", "confusion", "training"] {
        assert!(
            d.path(&format!("demo/run/plots/{plot}.png")).is_file(),
            "{plot}"
        );
    }
    // The fabrication step: STL, GDS and SLM folders whose manifests verify, and the
    // as-built accuracy (8 levels of the resin, with its absorption).
    use photonflow::compiler::manifest::Manifest;
    for (target, kind) in [("stl", "stl"), ("gds", "gds"), ("slm", "bitmap")] {
        let folder = d.path(&format!("demo/fab/{target}"));
        let m = Manifest::load(&folder).unwrap();
        assert!(m.verify(&folder).is_empty(), "{target}");
        assert!(m.files.iter().all(|f| f.kind == kind), "{target}");
        assert_eq!(m.levels, Some(8), "{target}");
    }
    let fab = &summary["fabrication"];
    let built = fab["as_built"]["accuracy"].as_f64().unwrap();
    assert!(built > 0.4 && built <= 1.0, "{fab}");
    // The resin absorbs: less light reaches the detectors as built.
    assert!(
        fab["as_built"]["detected_fraction"].as_f64().unwrap()
            < summary["evaluation"]["detected_fraction"].as_f64().unwrap(),
        "{fab}"
    );
    let report = std::fs::read_to_string(d.path("demo/report.md")).unwrap();
    assert!(report.contains("## Fabrication"), "{report}");
    // One sample image per class, which `infer` reads back to the demo's own predictions.
    let samples: Vec<PathBuf> = std::fs::read_dir(d.path("demo/samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(samples.len(), 10);
    let first = summary["predictions"][0]["image"].as_str().unwrap();
    let o = photonflow(&[
        "infer",
        "--model",
        &d.s("demo/run"),
        &d.s(&format!("demo/{first}")),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        last_json(&o)["predictions"][0]["class"],
        summary["predictions"][0]["prediction"]["class"]
    );
    // A second demo replaces the first; a folder of other files is refused and left alone.
    let o = demo(&small, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::create_dir_all(d.path("mine")).unwrap();
    std::fs::write(d.path("mine/thesis.tex"), "x").unwrap();
    let mut other = small.to_vec();
    let mine = d.s("mine");
    other[1] = &mine;
    let o = demo(&other, &env);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a photonflow demo"),
        "{}",
        stderr(&o)
    );
    assert!(d.path("mine/thesis.tex").is_file());
}

#[test]
fn demo_finds_mnist_and_reports_it() {
    let Some(shared) = std::env::var_os("PHOTONFLOW_DATA_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("PHOTONFLOW_DATA_DIR is not set: skipping the MNIST demo");
        return;
    };
    let d = Dir::new();
    let out = d.s("demo");
    let o = demo(
        &[
            "--out",
            &out,
            "--data",
            &shared.to_string_lossy(),
            "--train-limit",
            "2000",
            "--test-limit",
            "1000",
            "--epochs",
            "1",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["source"]["kind"], "mnist", "{j}");
    assert_eq!(j["evaluation"]["samples"], 1000);
    let accuracy = j["evaluation"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.6, "2000 MNIST samples, one epoch: {accuracy}");
    assert!(!stderr(&o).contains("NO MNIST"));
    let report = std::fs::read_to_string(d.path("demo/report.md")).unwrap();
    assert!(report.contains("**MNIST**"), "{report}");
}

/// A Haar-random `n × n` unitary (seeded) written to `u.npy` in `d`.
fn haar_npy(d: &Dir, n: usize, seed: u64) -> photonflow::compiler::mesh::CMatrix {
    let u =
        photonflow::compiler::mesh::haar_unitary(n, &mut photonflow::optics::rng::Rng::new(seed));
    npy::write_npy(&d.path("u.npy"), &[n, n], NpyDataRef::C128(&u.data)).unwrap();
    u
}

#[test]
fn mesh_decompose_and_simulate_round_trip() {
    let d = Dir::new();
    let n = 12;
    let u = haar_npy(&d, n, 7);
    let (m, out) = (d.s("u.npy"), d.s("mesh"));
    for (method, depth) in [("clements", n), ("reck", 2 * n - 3)] {
        let o = photonflow(&[
            "mesh",
            "decompose",
            "--matrix",
            &m,
            "--method",
            method,
            "--out",
            &out,
            "--vpi",
            "4.36",
            "--ppi",
            "25mW",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let j = last_json(&o);
        assert_eq!(j["n"], n);
        assert_eq!(j["mzis"], n * (n - 1) / 2);
        assert_eq!(j["depth"], depth);
        assert!(j["error"].as_f64().unwrap() < 1e-10, "{j}");
        assert!(j["seconds"].as_f64().unwrap() >= 0.0);
        let layout: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.path("mesh/layout.json")).unwrap())
                .unwrap();
        assert!(
            layout["convention"]
                .as_str()
                .unwrap()
                .contains("B·diag(e^{iθ},1)·B")
        );
        assert_eq!(layout["output_phases"].as_array().unwrap().len(), n);
        let csv = std::fs::read_to_string(d.path("mesh/phases.csv")).unwrap();
        let rows: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rows[0],
            "element,index,column,mode,theta_rad,phi_rad,theta_V,phi_V,theta_mW,phi_mW"
        );
        assert_eq!(rows.len(), 1 + n * (n - 1) / 2 + n);
        // Every heater's power is Pπ·φ/π, and the report's total is theirs.
        let mut total_mw = 0.0;
        for row in &rows[1..] {
            let f: Vec<&str> = row.split(',').collect();
            for (rad, mw) in [(4, 8), (5, 9)] {
                if let (Ok(phase), Ok(p)) = (f[rad].parse::<f64>(), f[mw].parse::<f64>()) {
                    assert!(
                        (p - 25.0 * phase / std::f64::consts::PI).abs() < 1e-6,
                        "{row}"
                    );
                    total_mw += p;
                }
            }
        }
        let reported = j["heater_power_w"].as_f64().unwrap();
        assert!(
            (reported - total_mw / 1e3).abs() < 1e-9,
            "{reported} W, {total_mw} mW"
        );
        // A heater at φ = π needs Vπ: check one row's voltage against its phase.
        let f: Vec<&str> = rows[1].split(',').collect();
        let (theta, volts): (f64, f64) = (f[4].parse().unwrap(), f[6].parse().unwrap());
        assert!((volts - 4.36 * (theta / std::f64::consts::PI).sqrt()).abs() < 1e-6);
        // The table's phases read back as the layout's, to the bit.
        for (row, z) in rows[1..].iter().zip(layout["mzis"].as_array().unwrap()) {
            let f: Vec<&str> = row.split(',').collect();
            for (col, key) in [(4, "theta"), (5, "phi")] {
                let v: f64 = f[col].parse().unwrap();
                assert_eq!(v.to_bits(), z[key].as_f64().unwrap().to_bits(), "{row}");
            }
        }

        let chip = d.s("chip.npy");
        let o = photonflow(&[
            "mesh",
            "simulate",
            "--layout",
            &d.s("mesh/layout.json"),
            "--out",
            &chip,
            "--reference",
            &m,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let j = last_json(&o);
        assert!(j["error"].as_f64().unwrap() < 1e-10, "{j}");
        assert!((j["fidelity"].as_f64().unwrap() - 1.0).abs() < 1e-12, "{j}");
        let back = npy::read_npy(&d.path("chip.npy")).unwrap();
        let NpyData::C128(back) = back.data else {
            panic!("complex128")
        };
        let err: f64 = back
            .iter()
            .zip(&u.data)
            .map(|(a, b)| (a - b).norm_sqr())
            .sum::<f64>()
            .sqrt();
        assert!(err < 1e-9, "{err}");
    }
    // Any matrix through the SVD architecture: 3×5 real, reproduced to rounding with its scale.
    let w: Vec<f64> = (0..15).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
    npy::write_npy(&d.path("w.npy"), &[3, 5], NpyDataRef::F64(&w)).unwrap();
    let wm = d.s("w.npy");
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &wm,
        "--method",
        "svd",
        "--out",
        &out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["n"], 5);
    assert_eq!(j["mzis"], 20, "two meshes of 5 modes");
    assert!(j["error"].as_f64().unwrap() < 1e-10, "{j}");
    assert!(j["scale"].as_f64().unwrap() > 1.0, "{j}");
    let o = photonflow(&[
        "mesh",
        "simulate",
        "--layout",
        &d.s("mesh/layout.json"),
        "--out",
        &d.s("w_chip.npy"),
        "--reference",
        &wm,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert!(j["error"].as_f64().unwrap() < 1e-10, "{j}");
    assert_eq!(npy::read_npy(&d.path("w_chip.npy")).unwrap().shape, [3, 5]);
    // The same matrix embedded in a unitary of 10 modes: one Clements mesh, same block.
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &wm,
        "--method",
        "embed",
        "--out",
        &d.s("embedded"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!((j["n"].as_u64(), j["mzis"].as_u64()), (Some(10), Some(45)));
    assert!(j["error"].as_f64().unwrap() < 1e-10, "{j}");

    // The same unitary written in the Clements (2016) convention: its MZIs multiplied out here
    // with T(θ,φ) = [[e^{iφ}cos θ, −sin θ], [e^{iφ}sin θ, cos θ]] give the matrix back, and
    // `mesh simulate` (which converts back to the device's convention) agrees.
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &m,
        "--convention",
        "clements2016",
        "--out",
        &d.s("c2016"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["convention"], "clements2016");
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("c2016/layout.json")).unwrap())
            .unwrap();
    assert!(
        layout["convention"]
            .as_str()
            .unwrap()
            .starts_with("clements2016")
    );
    let mut w: Vec<Complex<f64>> = (0..n * n)
        .map(|i| Complex::new(f64::from(u8::from(i % (n + 1) == 0)), 0.0))
        .collect();
    for z in layout["mzis"].as_array().unwrap() {
        let (mode, theta, phi) = (
            z["mode"].as_u64().unwrap() as usize,
            z["theta"].as_f64().unwrap(),
            z["phi"].as_f64().unwrap(),
        );
        assert!(
            (0.0..=std::f64::consts::FRAC_PI_2).contains(&theta),
            "{theta}"
        );
        let e = Complex::from_polar(1.0, phi);
        let (s, c) = theta.sin_cos();
        for col in 0..n {
            let (x, y) = (w[mode * n + col], w[(mode + 1) * n + col]);
            w[mode * n + col] = e * c * x - s * y;
            w[(mode + 1) * n + col] = e * s * x + c * y;
        }
    }
    for (r, p) in layout["output_phases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let e = Complex::from_polar(1.0, p.as_f64().unwrap());
        for col in 0..n {
            w[r * n + col] *= e;
        }
    }
    let err: f64 = w
        .iter()
        .zip(&u.data)
        .map(|(a, b)| (a - b).norm_sqr())
        .sum::<f64>();
    assert!(err.sqrt() < 1e-10, "{}", err.sqrt());
    let o = photonflow(&[
        "mesh",
        "simulate",
        "--layout",
        &d.s("c2016/layout.json"),
        "--out",
        &d.s("c2016.npy"),
        "--reference",
        &m,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["error"].as_f64().unwrap() < 1e-10);

    // Refusals name the flag and say why.
    let mut bad = u.data.clone();
    bad[3] += Complex::new(1e-3, 0.0);
    npy::write_npy(&d.path("bad.npy"), &[n, n], NpyDataRef::C128(&bad)).unwrap();
    npy::write_npy(&d.path("rect.npy"), &[2, 3], NpyDataRef::F64(&[0.0; 6])).unwrap();
    let (bad, rect) = (d.s("bad.npy"), d.s("rect.npy"));
    for (args, needles) in [
        (
            vec!["--matrix", &bad],
            vec!["--matrix", "not unitary", "e-4"],
        ),
        (vec!["--matrix", &rect], vec!["2×3 matrix is not square"]),
        (
            vec!["--matrix", &m, "--method", "fft"],
            vec!["--method fft"],
        ),
        (vec!["--matrix", &m, "--vpi", "-1"], vec!["--vpi"]),
        (
            vec!["--matrix", &m, "--ppi", "25"],
            vec!["--ppi", "no unit", "25mW"],
        ),
        (
            vec!["--matrix", &m, "--convention", "reck1994"],
            vec!["--convention", "clements2016", "photonflow-mzi-v1"],
        ),
        (
            vec!["--matrix", &m, "--convention", "clements2016", "--vpi", "4"],
            vec!["--convention clements2016", "--vpi"],
        ),
    ] {
        let mut full = vec!["mesh", "decompose", "--out", &out];
        full.extend(args.iter().copied());
        let o = photonflow(&full);
        assert!(!o.status.success(), "{args:?}");
        for needle in needles {
            assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        }
        assert!(!stderr(&o).contains("single-precision"), "{args:?}");
    }
    // A unitary saved in single precision: refused at the default tolerance with the one to
    // pass, and compiled with it.
    let single: Vec<Complex<f32>> = (u.data.iter())
        .map(|c| Complex::new(c.re as f32, c.im as f32))
        .collect();
    npy::write_npy(&d.path("u64.npy"), &[n, n], NpyDataRef::C64(&single)).unwrap();
    let (single, single_out) = (d.s("u64.npy"), d.s("single"));
    let decompose = |extra: &[&str]| {
        let mut a = vec![
            "mesh",
            "decompose",
            "--matrix",
            &single,
            "--out",
            &single_out,
        ];
        a.extend(extra);
        photonflow(&a)
    };
    let o = decompose(&[]);
    assert!(!o.status.success());
    for needle in [
        "--matrix",
        "u64.npy",
        "single-precision",
        "--tolerance 1e-6",
    ] {
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
    let o = decompose(&["--tolerance", "1e-6", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["error"].as_f64().unwrap() < 1e-6);

    // GDSII layout of the mesh: one MZI cell referenced per MZI, on the grid, read back by
    // photonflow itself and (in CI) by gdstk.
    const MESH_GDSTK_CHECK: &str = r#"
import sys, gdstk
path, n = sys.argv[1], int(sys.argv[2])
if path.endswith(".oas"):
    assert gdstk.oas_validate(path)[0], "the OASIS CRC-32 does not match"
    lib = gdstk.read_oas(path)
else:
    lib = gdstk.read_gds(path)
assert abs(lib.unit - 1e-6) < 1e-18 and abs(lib.precision - 1e-9) < 1e-21, (lib.unit, lib.precision)
(top,) = lib.top_level()
assert top.name == "MESH", top.name
name = lambda r: r.cell if isinstance(r.cell, str) else r.cell.name
mzis = [r for r in top.references if name(r) == "MZI"]
assert len(mzis) == n * (n - 1) // 2, len(mzis)
labels = {l.text: l.origin for l in top.labels}
missing = [p for m in range(n) for p in (f"in{m}", f"out{m}") if p not in labels]
assert not missing, missing
assert labels["in0"][0] == 0 and labels["out0"][0] > 0, labels["in0"]
# Flattened, the waveguides merge into one continuous path per mode.
flat = top.copy("FLAT").flatten()
paths = gdstk.boolean([p for p in flat.polygons if p.layer == 1], [], "or")
assert len(paths) == n, len(paths)
print(len(mzis), "MZI references,", len(paths), "waveguides")
"#;
    let svd_layout = d.s("mesh/layout.json");
    for (method, depth) in [("clements", n), ("reck", 2 * n - 3)] {
        let folder = d.s(&format!("gds_{method}"));
        let o = photonflow(&[
            "mesh",
            "decompose",
            "--matrix",
            &m,
            "--method",
            method,
            "--out",
            &folder,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let gds = d.s(&format!("{method}.gds"));
        let o = photonflow(&[
            "mesh",
            "layout",
            "--layout",
            &format!("{folder}/layout.json"),
            "--out",
            &gds,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let j = last_json(&o);
        assert_eq!(j["mzis"], n * (n - 1) / 2, "{j}");
        assert_eq!(
            (j["depth"].as_u64(), j["modes"].as_u64()),
            (Some(depth as u64), Some(n as u64))
        );
        let bytes = std::fs::metadata(&gds).unwrap().len();
        assert_eq!(j["bytes"], bytes, "{j}");
        // Default tech: 25 µm mode pitch, 2 µm heaters; columns of 334.848 µm cells, 100 µm
        // output phase screen.
        let height = (n - 1) as f64 * 25.0 + 2.0;
        assert!(
            (j["height_um"].as_f64().unwrap() - height).abs() < 1e-9,
            "{j}"
        );
        let width = depth as f64 * 334.848 + 100.0;
        assert!(
            (j["width_um"].as_f64().unwrap() - width).abs() < 1e-6,
            "{j}"
        );
        match python(MESH_GDSTK_CHECK, &[&gds, &n.to_string()]) {
            Some(said) => eprintln!("gdstk: {}", said.trim()),
            None => eprintln!("note: PHOTONFLOW_PYTHON is not set; gdstk did not read the GDS"),
        }
        // The same mesh as OASIS (chosen by the extension): checked the same way, smaller.
        let oas = d.s(&format!("{method}.oas"));
        let o = photonflow(&[
            "mesh",
            "layout",
            "--layout",
            &format!("{folder}/layout.json"),
            "--out",
            &oas,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let k = last_json(&o);
        assert_eq!(
            (&k["format"], &k["mzis"]),
            (&serde_json::json!("OASIS"), &j["mzis"]),
            "{k}"
        );
        assert_eq!(k["bytes"], std::fs::metadata(&oas).unwrap().len(), "{k}");
        assert!(
            2 * k["bytes"].as_u64().unwrap() < bytes,
            "OASIS {k} against GDSII {bytes} bytes"
        );
        match python(MESH_GDSTK_CHECK, &[&oas, &n.to_string()]) {
            Some(said) => eprintln!("gdstk (OASIS): {}", said.trim()),
            None => eprintln!("note: PHOTONFLOW_PYTHON is not set; gdstk did not read the OASIS"),
        }
        if let Some(said) = python(KLAYOUT_SAME, &[&gds, &oas]) {
            eprintln!("KLayout: {}", said.trim());
        }
    }
    let o = photonflow(&[
        "mesh",
        "layout",
        "--layout",
        &svd_layout,
        "--out",
        &d.s("mesh.txt"),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--out") && stderr(&o).contains(".oas"),
        "{}",
        stderr(&o)
    );
    // The SVD mesh (5 modes) with a technology file: attenuator cells, the tech's pitches.
    let tech = d.path("tech.toml");
    std::fs::write(&tech, "mode_pitch = \"30um\"\ncolumn_pitch = \"0.4mm\"\n").unwrap();
    let o = photonflow(&[
        "mesh",
        "layout",
        "--layout",
        &svd_layout,
        "--tech",
        &d.s("tech.toml"),
        "--out",
        &d.s("svd.gds"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(
        (j["mzis"].as_u64(), j["attenuators"].as_u64()),
        (Some(20), Some(5)),
        "{j}"
    );
    // From 1 µm above mode 0 (its heater) to the idle arm of the last mode's attenuator, half a
    // pitch below it.
    assert!(
        (j["height_um"].as_f64().unwrap() - (1.0 + 4.0 * 30.0 + 15.25)).abs() < 1e-9,
        "{j}"
    );
    let o = photonflow(&[
        "mesh",
        "layout",
        "--layout",
        &svd_layout,
        "--out",
        &d.s("svd.gds"),
    ]);
    assert!(
        stdout(&o).contains("20 MZIs and 5 attenuators"),
        "{}",
        stdout(&o)
    );
    // Refusals name the flag, the file and the key.
    std::fs::write(&tech, "bend_radius = \"5um\"\n").unwrap();
    let tech = d.s("tech.toml");
    let missing = d.s("nowhere/layout.json");
    let bad_gds = d.s("bad.gds");
    for (args, needles) in [
        (
            vec!["--layout", &svd_layout, "--tech", &tech],
            vec!["--tech", "tech.toml", "bend_radius", "too small"],
        ),
        (vec!["--layout", &missing], vec!["--layout", "nowhere"]),
    ] {
        let mut full = vec!["mesh", "layout", "--out", &bad_gds];
        full.extend(args.iter().copied());
        let o = photonflow(&full);
        assert!(!o.status.success(), "{args:?}");
        for needle in needles {
            assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        }
    }
    assert!(!d.path("bad.gds").exists());
    // A layout edited so that its MZIs' columns disagree with the order light meets them (the
    // GDS would draw another mesh than `simulate` multiplies out) is refused by both.
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&svd_layout).unwrap()).unwrap();
    let mzis = edited["mzis"].as_array_mut().unwrap();
    let (column, mode) = (mzis[0]["column"].clone(), mzis[0]["mode"].as_u64().unwrap());
    let next = (mzis.iter())
        .position(|z| z["column"] != column && z["mode"].as_u64().unwrap().abs_diff(mode) == 1)
        .unwrap();
    mzis.swap(0, next);
    let edited_path = d.s("edited.json");
    std::fs::write(&edited_path, edited.to_string()).unwrap();
    for command in ["simulate", "layout"] {
        let out = d.s(if command == "simulate" {
            "edited.npy"
        } else {
            "edited.gds"
        });
        let o = photonflow(&["mesh", command, "--layout", &edited_path, "--out", &out]);
        assert!(!o.status.success(), "{command}");
        for needle in ["--layout", "edited.json", "MZI 0", "later column"] {
            assert!(stderr(&o).contains(needle), "{command}: {}", stderr(&o));
        }
        assert!(!std::path::Path::new(&out).exists(), "{command}");
    }
    // A layout that claims far more modes than memory holds (an edited `n`; the MZI-free
    // mesh is otherwise valid) is refused by simulate before its matrix is allocated.
    if cfg!(target_os = "linux") {
        let mut huge: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&svd_layout).unwrap()).unwrap();
        let n = 1_000_000;
        huge["n"] = n.into();
        huge["method"] = "clements".into();
        huge["mzis"] = serde_json::json!([]);
        huge["mzi_count"] = 0.into();
        huge["depth"] = 0.into();
        huge["output_phases"] = serde_json::json!(vec![0.0; n]);
        huge.as_object_mut().unwrap().remove("attenuators");
        huge.as_object_mut().unwrap().remove("svd");
        let huge_path = d.s("huge.json");
        std::fs::write(&huge_path, huge.to_string()).unwrap();
        let o = photonflow(&[
            "mesh",
            "simulate",
            "--layout",
            &huge_path,
            "--out",
            &d.s("h.npy"),
        ]);
        assert!(!o.status.success());
        for needle in [
            "1000000-mode mesh",
            "huge.json",
            "TB of memory",
            "check `n`",
        ] {
            assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        }
        // An 8 MB row vector is a chip of a million modes: refused before its SVD is padded.
        let row = d.path("row.npy");
        npy::write_npy(&row, &[1, n], NpyDataRef::F64(&vec![1.0; n])).unwrap();
        for method in ["svd", "embed"] {
            let args = [
                "mesh",
                "decompose",
                "--matrix",
                &d.s("row.npy"),
                "--method",
                method,
            ];
            let o = photonflow(&[&args[..], &["--out", &d.s("row")]].concat());
            assert!(!o.status.success());
            for needle in [
                "--matrix",
                "1×1000000 matrix",
                "TB of memory",
                "longer side",
            ] {
                assert!(stderr(&o).contains(needle), "{method}: {}", stderr(&o));
            }
            assert!(!d.path("row").exists());
        }
    }

    // The chip model: imperfections lower the fidelity, the correction of the splitter errors
    // raises it, and --out holds the corrected chip's matrix; bad input is refused by name.
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &m,
        "--out",
        &d.s("chip_mesh"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (layout, chip, toml) = (
        d.s("chip_mesh/layout.json"),
        d.s("chip.npy"),
        d.s("chip.toml"),
    );
    std::fs::write(
        &toml,
        "splitter_error = 0.05\nloss_db = 0.001\ndac_bits = 16\nseed = 4\n",
    )
    .unwrap();
    let simulate = |extra: &[&str]| {
        let mut a = vec![
            "mesh",
            "simulate",
            "--layout",
            &layout,
            "--out",
            &chip,
            "--imperfections",
            &toml,
        ];
        a.extend(extra);
        photonflow(&a)
    };
    let o = simulate(&["--reference", &m, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let fidelity = j["fidelity"].as_f64().unwrap();
    assert!(fidelity < 0.999, "{j}");
    assert!(j.get("fidelity_before").is_none(), "{j}");
    let o = simulate(&["--reference", &m, "--correct", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let value = |key: &str| j[key].as_f64().unwrap_or_else(|| panic!("{key}: {j}"));
    assert_eq!(value("fidelity_before"), fidelity, "{j}");
    assert!(value("fidelity_after") > fidelity, "{j}");
    assert!(value("error_after") < value("error_before") / 2.0, "{j}");
    assert_eq!(value("fidelity"), value("fidelity_after"), "{j}");
    assert_eq!(j["global"], true, "{j}");
    let NpyData::C128(back) = npy::read_npy(&d.path("chip.npy")).unwrap().data else {
        panic!("complex128")
    };
    let err: f64 = back
        .iter()
        .zip(&u.data)
        .map(|(a, b)| (a - b).norm_sqr())
        .sum::<f64>()
        .sqrt()
        / (n as f64).sqrt();
    assert!((err - value("error_after")).abs() < 1e-12, "{err} {j}");
    let o = simulate(&["--reference", &m, "--correct"]);
    assert!(
        o.status.success() && stdout(&o).contains("fidelity"),
        "{}",
        stderr(&o)
    );
    // A budget of iterations: at most that many; none, the MZI-by-MZI step alone.
    for (budget, global) in [("3", true), ("0", false)] {
        let o = simulate(&[
            "--reference",
            &m,
            "--correct",
            "--iterations",
            budget,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let k = last_json(&o);
        assert_eq!(k["global"], global, "{k}");
        assert!(
            k["iterations"].as_u64().unwrap() <= budget.parse().unwrap(),
            "{k}"
        );
    }
    let o = simulate(&["--reference", &m, "--correct", "--iterations", "0"]);
    assert!(
        stdout(&o).contains("local alone, --iterations 0"),
        "{}",
        stdout(&o)
    );
    std::fs::write(d.path("bad.toml"), "splitter_eror = 0.05\n").unwrap();
    std::fs::write(d.path("neg.toml"), "loss_db = -0.5\n").unwrap();
    let (bad_toml, neg_toml) = (d.s("bad.toml"), d.s("neg.toml"));
    for (args, needles) in [
        (vec!["--correct"], vec!["--correct needs --reference"]),
        (vec!["--iterations", "5"], vec!["--correct"]),
        (
            vec!["--imperfections", &bad_toml],
            vec!["--imperfections", "bad.toml", "splitter_eror"],
        ),
        (
            vec!["--imperfections", &neg_toml],
            vec!["--imperfections", "neg.toml", "loss_db = -0.5"],
        ),
    ] {
        let o = simulate(&args);
        assert!(!o.status.success(), "{args:?}");
        for needle in needles {
            assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        }
    }
}

/// Width, height and the number of distinct colours of a PNG the CLI wrote.
#[test]
fn mesh_reads_and_writes_matrices_as_text_tables() {
    let d = Dir::new();
    let n = 6;
    let u = haar_npy(&d, n, 11);
    // As MATLAB's writematrix writes a complex matrix (a+bi, 17 digits), and with 5 digits as
    // its csvwrite does.
    let table = |digits: usize| -> String {
        (u.data.chunks(n))
            .map(|row| {
                let cells: Vec<String> = (row.iter())
                    .map(|c| format!("{:.*e}{:+.*e}i", digits - 1, c.re, digits - 1, c.im))
                    .collect();
                cells.join(",") + "\n"
            })
            .collect()
    };
    std::fs::write(d.path("u.csv"), table(17)).unwrap();
    std::fs::write(d.path("u5.csv"), table(5)).unwrap();
    let (csv, csv5, out, chip) = (d.s("u.csv"), d.s("u5.csv"), d.s("mesh"), d.s("chip.csv"));
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &csv,
        "--out",
        &out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["error"].as_f64().unwrap() < 1e-13);
    // The implemented matrix as a table, every digit kept: the library's reader and (in CI)
    // numpy.loadtxt read back the unitary.
    let layout = d.path("mesh").join("layout.json");
    let o = photonflow(&[
        "mesh",
        "simulate",
        "--layout",
        &layout.to_string_lossy(),
        "--out",
        &chip,
        "--reference",
        &csv,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["error"].as_f64().unwrap() < 1e-13);
    let back = photonflow::compiler::mesh::text::read(&d.path("chip.csv")).unwrap();
    assert_eq!((back.matrix.rows, back.matrix.cols), (n, n));
    assert!(back.matrix.relative_error(&u) < 1e-13);
    assert!(back.digits >= 16, "{}", back.digits);
    // And what numpy.savetxt writes (complex, its default format) is read.
    match python(
        "import sys, numpy as np\n\
         m = np.loadtxt(sys.argv[1], delimiter=',', dtype=complex)\n\
         u = np.load(sys.argv[2])\n\
         print(m.shape, np.abs(m - u).max())\n\
         assert m.shape == u.shape and np.abs(m - u).max() < 1e-13\n\
         np.savetxt(sys.argv[3], u)",
        &[&chip, &d.s("u.npy"), &d.s("savetxt.txt")],
    ) {
        Some(said) => {
            println!("numpy.loadtxt: {said}");
            let o = photonflow(&[
                "mesh",
                "decompose",
                "--matrix",
                &d.s("savetxt.txt"),
                "--out",
                &out,
                "--json",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            assert!(last_json(&o)["error"].as_f64().unwrap() < 1e-13);
        }
        None => println!("PHOTONFLOW_PYTHON not set: numpy.loadtxt and savetxt not run"),
    }
    // Five digits: refused at the default tolerance with the reason and the tolerance to pass.
    let o = photonflow(&["mesh", "decompose", "--matrix", &csv5, "--out", &out]);
    assert!(!o.status.success());
    for needle in [
        "--matrix",
        "u5.csv",
        "at most 5 significant digits",
        "--tolerance 1e-",
    ] {
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &csv5,
        "--out",
        &out,
        "--tolerance",
        "1e-3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // One digit: too coarse to call unitary at any tolerance worth suggesting.
    std::fs::write(d.path("u1.csv"), "0.7,0.7\n-0.7,0.7\n").unwrap();
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &d.s("u1.csv"),
        "--out",
        &out,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("at most 1 significant digit,"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("pass --tolerance"), "{}", stderr(&o));
    // A broken table names the file and the line.
    std::fs::write(d.path("bad.csv"), "1,0\n0,x\n").unwrap();
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &d.s("bad.csv"),
        "--out",
        &out,
    ]);
    assert!(!o.status.success());
    for needle in [
        "--matrix",
        "bad.csv",
        "line 2, entry 2",
        "`x` is not a number",
    ] {
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
}

fn png_summary(path: &Path) -> (u32, u32, usize) {
    let mut reader = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let colours: std::collections::HashSet<&[u8]> =
        buf[..info.buffer_size()].chunks_exact(3).collect();
    (info.width, info.height, colours.len())
}

#[test]
fn mesh_figures_show_the_phases_and_the_matrix() {
    let d = Dir::new();
    haar_npy(&d, 8, 5);
    let (m, out) = (d.s("u.npy"), d.s("mesh"));
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &m,
        "--out",
        &out,
        "--png",
        &d.s("phases.png"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Two panels (θ; φ and the output phases), each in colour.
    let (w, h, colours) = png_summary(&d.path("phases.png"));
    assert_eq!(w, 2 * 520);
    assert!(h > 440 && colours > 50, "{w}×{h}, {colours} colours");

    let (layout, chip) = (d.s("mesh/layout.json"), d.s("chip.npy"));
    let simulate = |more: &[&str]| {
        let args = ["mesh", "simulate", "--layout", &layout, "--out", &chip];
        photonflow(&[&args[..], more].concat())
    };
    let o = simulate(&["--png", &d.s("m.png")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let width = |name: &str| png_summary(&d.path(name)).0;
    assert_eq!(width("m.png"), 520, "the implemented matrix alone");
    let o = simulate(&["--reference", &m, "--png", &d.s("mr.png")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        width("mr.png"),
        3 * 520,
        "reference, implemented, difference"
    );

    // A PNG that cannot be written names the flag and fails.
    let o = simulate(&["--png", &d.s("no/such/dir/m.png")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--png"), "{}", stderr(&o));
}

#[test]
fn mesh_simulate_runs_monte_carlo_trials_over_chips() {
    let d = Dir::new();
    haar_npy(&d, 10, 4);
    let (m, out, chip) = (d.s("u.npy"), d.s("mesh"), d.s("chip.npy"));
    let o = photonflow(&["mesh", "decompose", "--matrix", &m, "--out", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        d.path("chip.toml"),
        "splitter_error = 0.04\nloss_db = 0.1\nseed = 7\n",
    )
    .unwrap();
    std::fs::write(d.path("ideal.toml"), "loss_db = 0.1\n").unwrap();
    let layout = d.s("mesh/layout.json");
    let simulate = |more: &[&str]| {
        let args = ["mesh", "simulate", "--layout", &layout, "--out", &chip];
        photonflow(&[&args[..], more].concat())
    };
    let o = simulate(&[
        "--imperfections",
        &d.s("chip.toml"),
        "--reference",
        &m,
        "--trials",
        "6",
        "--correct",
        "--iterations",
        "0",
        "--trials-png",
        &d.s("trials.png"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let t = &j["trials"];
    let each = t["trials"].as_array().unwrap();
    let seeds: Vec<u64> = each.iter().map(|t| t["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [7, 8, 9, 10, 11, 12]);
    // The first chip is the one --out holds and the single report describes.
    assert_eq!(each[0]["fidelity"], j["fidelity_before"]);
    assert_eq!(each[0]["fidelity_corrected"], j["fidelity_after"]);
    assert_eq!(j["trials_against"], "reference");
    let mean = |key: &str| t[key]["mean"].as_f64().unwrap();
    assert!(mean("fidelity_corrected") > mean("fidelity"), "{t}");
    // The loss lowers the fidelity and the transmission, not the normalised fidelity.
    assert!(mean("fidelity_normalized") > mean("fidelity") + 0.05, "{t}");
    assert!((0.5..0.9).contains(&mean("transmission")), "{t}");
    let fidelities: Vec<f64> = each
        .iter()
        .map(|t| t["fidelity"].as_f64().unwrap())
        .collect();
    let direct = fidelities.iter().sum::<f64>() / 6.0;
    assert!((mean("fidelity") - direct).abs() < 1e-12);
    assert!(t["fidelity"]["p5"].as_f64() <= t["fidelity"]["median"].as_f64());
    let (w, _, colours) = png_summary(&d.path("trials.png"));
    assert!(w == 720 && colours > 20, "{w}, {colours} colours");
    // Without --correct the single report is the first chip's, every metric.
    let o = simulate(&[
        "--imperfections",
        &d.s("chip.toml"),
        "--reference",
        &m,
        "--trials",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    for key in ["fidelity", "fidelity_normalized", "transmission", "error"] {
        assert_eq!(j["trials"]["trials"][0][key], j[key], "{key}");
    }
    // Text report, against the ideal mesh without --reference.
    let o = simulate(&["--imperfections", &d.s("chip.toml"), "--trials", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for needle in [
        "4 chips (seeds 7…10) against the ideal mesh",
        "fidelity",
        "5–95 %",
    ] {
        assert!(stdout(&o).contains(needle), "{}", stdout(&o));
    }
    // Refusals name the flag.
    for (more, needle) in [
        (
            vec!["--imperfections", &d.s("chip.toml"), "--trials", "0"],
            "0 chips: give 1 to",
        ),
        (
            vec!["--imperfections", &d.s("ideal.toml"), "--trials", "3"],
            "no random part",
        ),
        (vec!["--trials", "3"], "no random part"),
        (vec!["--trials-png", &d.s("t.png")], "--trials"),
        (
            vec![
                "--imperfections",
                &d.s("chip.toml"),
                "--trials",
                "3",
                "--trials-png",
                &d.s("no/such/t.png"),
            ],
            "its folder does not exist",
        ),
        (vec!["--trials", "-1"], "--trials"),
    ] {
        let o = simulate(&more);
        assert!(!o.status.success(), "{more:?}");
        assert!(stderr(&o).contains(needle), "{more:?}: {}", stderr(&o));
    }
}

#[test]
fn mesh_compiles_a_small_diffractive_system_and_matches_it() {
    use photonflow::optics::OpticalSystem;
    use photonflow::optics::system::{Layer, RegionSpec};
    let d = Dir::new();
    let n = 6;
    let mut s = OpticalSystem::new("tiny", 0.75e-3, n, n, 0.4e-3).unwrap();
    s.input.distance_m = 3e-3;
    for l in 0..2 {
        let phase = (0..n * n).map(|i| ((i * 5 + l) % 7) as f32 * 0.8).collect();
        s.layers
            .push(Layer::phase_only(format!("layer{l}"), phase, 3e-3));
    }
    let one_class = |s: &mut OpticalSystem| {
        s.detector
            .regions
            .push(RegionSpec::new("0", (0.0, 0.0), 0.8e-3, 0.8e-3));
        s.detector.classes = vec!["0".into()];
    };
    one_class(&mut s);
    s.save(&d.path("model")).unwrap();
    let out = d.s("mesh");
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--system",
        &d.s("model"),
        "--method",
        "svd",
        "--out",
        &out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["n"], n * n);
    assert!(j["error"].as_f64().unwrap() < 1e-10, "{j}");
    assert!(j["system_error"].as_f64().unwrap() < 1e-10, "{j}");
    // Too large for a chip: refused with the size and the limit; neither input: refused.
    let mut big = OpticalSystem::new("big", 0.75e-3, 40, 40, 0.4e-3).unwrap();
    big.input.distance_m = 3e-3;
    big.layers
        .push(Layer::phase_only("layer0", vec![0.0; 1600], 3e-3));
    one_class(&mut big);
    big.save(&d.path("big")).unwrap();
    let o = photonflow(&["mesh", "decompose", "--system", &d.s("big"), "--out", &out]);
    assert!(
        !o.status.success() && stderr(&o).contains("1024"),
        "{}",
        stderr(&o)
    );
    let o = photonflow(&["mesh", "decompose", "--out", &out]);
    assert!(
        !o.status.success() && stderr(&o).contains("--matrix"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn mesh_compiles_for_a_chip_with_splitter_errors() {
    let d = Dir::new();
    let n = 8;
    haar_npy(&d, n, 11);
    std::fs::write(d.path("chip.toml"), "splitter_error = 0.05\nseed = 3\n").unwrap();
    let (m, chip, out) = (d.s("u.npy"), d.s("chip.toml"), d.s("mesh"));
    let decompose = |extra: &[&str]| {
        let mut args = vec![
            "mesh",
            "decompose",
            "--matrix",
            &m,
            "--out",
            &out,
            "--imperfections",
            &chip,
            "--json",
        ];
        args.extend(extra);
        let o = photonflow(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    // Without correction the layout's error is the chip's; with it, the error falls.
    let plain = decompose(&[]);
    assert!(plain["error"].as_f64().unwrap() > 1e-3, "{plain}");
    let corrected = decompose(&["--correct"]);
    let c = &corrected["correction"];
    assert!(
        c["fidelity_after"].as_f64().unwrap() > c["fidelity_before"].as_f64().unwrap(),
        "{c}"
    );
    let after = c["error_after"].as_f64().unwrap();
    assert!(after < c["error_before"].as_f64().unwrap() / 2.0, "{c}");
    assert!((corrected["error"].as_f64().unwrap() - after).abs() < 1e-12);
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("mesh/layout.json")).unwrap())
            .unwrap();
    assert_eq!(layout["imperfections"]["splitter_error"], 0.05);
    // simulate runs the layout on the chip it was compiled for, unless told otherwise.
    let o = photonflow(&[
        "mesh",
        "simulate",
        "--layout",
        &d.s("mesh/layout.json"),
        "--out",
        &d.s("c.npy"),
        "--reference",
        &m,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert!((j["error"].as_f64().unwrap() - after).abs() < 1e-9, "{j}");
    // --correct needs a chip.
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &m,
        "--out",
        &out,
        "--correct",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--imperfections"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn gds_files_are_reproducible_with_source_date_epoch() {
    use photonflow::compiler::mesh::haar_unitary;
    use photonflow::optics::rng::Rng;
    let d = Dir::new();
    let u = haar_unitary(4, &mut Rng::new(3));
    npy::write_npy(&d.path("u.npy"), &[4, 4], NpyDataRef::C128(&u.data)).unwrap();
    let o = photonflow(&[
        "mesh",
        "decompose",
        "--matrix",
        &d.s("u.npy"),
        "--out",
        &d.s("m"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let layout = d.s("m/layout.json");
    let write = |name: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_photonflow"))
            .args(["mesh", "layout", "--layout", &layout, "--out", &d.s(name)])
            .env("SOURCE_DATE_EPOCH", "1764288000") // 2025-11-28 00:00:00 UTC
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(d.path(name)).unwrap()
    };
    let (a, b) = (write("a.gds"), write("b.gds"));
    assert_eq!(a, b, "same layout, same SOURCE_DATE_EPOCH: same bytes");
    // The BGNLIB record (after HEADER, 6 bytes) holds the date: year − 1900, month, day, ….
    let date: Vec<i16> = a[10..22]
        .chunks(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(date, [125, 11, 28, 0, 0, 0]);
}

/// `psf model` writes an aberrated bead's stack (a float32 TIFF with its calibration), and
/// `psf retrieve` reads the calibration back and measures the aberrations put in.
#[test]
fn psf_model_then_retrieve_finds_the_aberrations() {
    let dir = Dir::new();
    let stack = dir.s("bead.tif");
    let objective = ["--wavelength", "520nm", "--na", "1.2", "--index", "1.333"];
    let mut args = vec!["psf", "model"];
    args.extend(objective);
    args.extend([
        "--pitch",
        "90nm",
        "--size",
        "64",
        "--planes",
        "25",
        "--z-step",
        "150nm",
        "--zernike",
        "5=0.3,8=-0.2,11=0.4",
        "--out",
        &stack,
        "--json",
    ]);
    let o = photonflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = last_json(&o);
    // Ideal NA 1.2 at 520 nm: Airy FWHM 0.5145 λ/NA = 223 nm; the aberrations widen it.
    let fx = model["fwhm_m"]["x"].as_f64().unwrap();
    assert!(fx > 223e-9 && fx < 400e-9, "{model}");
    let s = model["strehl"].as_f64().unwrap();
    let marechal = (-(0.3f64.powi(2) + 0.2f64.powi(2) + 0.4f64.powi(2))).exp();
    assert!((s - marechal).abs() < 0.05, "Strehl {s} vs {marechal}");

    let (pupil, psf_out, png) = (dir.s("pupil.json"), dir.s("model.tif"), dir.s("pupil.png"));
    let mut args = vec!["psf", "retrieve", &stack];
    args.extend(objective);
    args.extend([
        "--background",
        "0",
        "--out",
        &pupil,
        "--psf-out",
        &psf_out,
        "--png",
        &png,
        "--json",
    ]);
    let o = photonflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    assert_eq!(
        r["pitch_m"].as_f64().map(|p| (p * 1e9).round()),
        Some(90.0),
        "{r}"
    );
    assert_eq!(
        r["z_step_m"].as_f64().map(|p| (p * 1e9).round()),
        Some(150.0),
        "{r}"
    );
    for term in r["fit"]["zernike"].as_array().unwrap() {
        let j = term["noll"].as_u64().unwrap();
        let want = match j {
            5 => 0.3,
            8 => -0.2,
            11 => 0.4,
            _ => 0.0,
        };
        let got = term["rad"].as_f64().unwrap();
        assert!((got - want).abs() < 0.02, "Z{j}: {got} vs {want}");
    }
    assert!(
        r["misfit"].as_f64().unwrap() < 0.01 * r["ideal_misfit"].as_f64().unwrap(),
        "{r}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pupil).unwrap()).unwrap();
    assert_eq!(
        saved["pupil"]["phase_rad"].as_array().unwrap().len(),
        64 * 64
    );
    let model = photonflow::optics::io::tiff::read_stack(Path::new(&psf_out)).unwrap();
    assert_eq!(model.shape, [25, 64, 64]);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    assert!(
        std::fs::metadata(dir.path("pupil.sections.png"))
            .unwrap()
            .len()
            > 1000
    );
    // The retrieved pupil, at another sampling: its objective and aberrations come along.
    let again = dir.s("again.tif");
    let o = photonflow(&[
        "psf", "model", "--from", &pupil, "--pitch", "60nm", "--size", "96", "--out", &again,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = last_json(&o);
    let want = r["fit"]["strehl"].as_f64().unwrap();
    assert!(
        (m["strehl"].as_f64().unwrap() - want).abs() < 0.02,
        "{m} vs {want}"
    );
    let o = photonflow(&[
        "psf", "model", "--from", &stack, "--pitch", "60nm", "--out", &again,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("psf retrieve --out"),
        "{}",
        stderr(&o)
    );
}

/// `psf model --vectorial`: at NA 1.4 an x-polarised focus is wider along x than across it
/// and an isotropic emitter's spot is round and wider than the scalar one; a source 10 µm
/// into water under oil is brightest with the stage moved towards the objective.
#[test]
fn psf_model_vectorial_and_index_mismatch() {
    let dir = Dir::new();
    let out = dir.s("psf.tif");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "psf",
            "model",
            "--wavelength",
            "520nm",
            "--na",
            "1.4",
            "--index",
            "1.518",
            "--pitch",
            "40nm",
            "--size",
            "128",
            "--out",
            &out,
            "--json",
        ];
        a.extend(extra);
        let o = photonflow(&a);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        last_json(&o)
    };
    let width = |v: &serde_json::Value, axis: &str| v["fwhm_m"][axis].as_f64().unwrap();
    let scalar = run(&[]);
    let x = run(&["--vectorial", "--polarisation", "x"]);
    let iso = run(&["--vectorial"]);
    assert_eq!(x["model"]["polarisation"], "x", "{x}");
    assert_eq!(iso["model"]["polarisation"], "unpolarised", "{iso}");
    assert_eq!(scalar["model"]["vectorial"], false);
    assert!(width(&x, "x") > 1.3 * width(&x, "y"), "{x}");
    assert!((width(&iso, "x") - width(&iso, "y")).abs() < 1e-12, "{iso}");
    assert!(
        width(&iso, "x") > 1.05 * width(&scalar, "x"),
        "{iso} {scalar}"
    );
    let deep = run(&[
        "--vectorial",
        "--sample-index",
        "1.333",
        "--depth",
        "10um",
        "--planes",
        "61",
        "--z-step",
        "100nm",
    ]);
    // Paraxially the stage would move by 10 µm·(1 − 1.518/1.333) = −1.39 µm; at NA 1.4, more.
    let peak = deep["peak_z_m"].as_f64().unwrap();
    assert!(peak < -1.8e-6 && peak > -2.6e-6, "{deep}");
    assert_eq!(deep["model"]["sample"]["depth_m"].as_f64(), Some(10e-6));
    // A vectorial bead with spherical aberration, retrieved with the vectorial model; the
    // retrieval's file carries the model to `psf model --from`.
    let bead = dir.s("bead.tif");
    let objective = ["--wavelength", "520nm", "--na", "1.4", "--index", "1.518"];
    let mut a = vec!["psf", "model"];
    a.extend(objective);
    a.extend([
        "--pitch",
        "80nm",
        "--size",
        "64",
        "--planes",
        "25",
        "--z-step",
        "150nm",
        "--zernike",
        "11=0.3",
        "--vectorial",
        "--out",
        &bead,
    ]);
    assert!(photonflow(&a).status.success());
    let pupil = dir.s("pupil.json");
    let mut a = vec!["psf", "retrieve", &bead];
    a.extend(objective);
    a.extend([
        "--background",
        "0",
        "--vectorial",
        "--out",
        &pupil,
        "--json",
    ]);
    let o = photonflow(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    assert_eq!(r["model"]["polarisation"], "unpolarised", "{r}");
    let z11 = r["fit"]["zernike"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["noll"] == 11)
        .unwrap()["rad"]
        .as_f64()
        .unwrap();
    assert!((z11 - 0.3).abs() < 0.02, "{r}");
    let again = run(&["--from", &pupil]);
    assert_eq!(again["model"]["vectorial"], true, "{again}");
    let scalar = run(&["--from", &pupil, "--scalar"]);
    assert_eq!(scalar["model"]["vectorial"], false, "{scalar}");
}

#[test]
fn psf_refuses_bad_input_with_the_flag_to_fix() {
    let dir = Dir::new();
    let out = dir.s("psf.tif");
    let base = ["psf", "model", "--wavelength", "520nm", "--out", &out];
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(extra);
        let o = photonflow(&a);
        assert!(!o.status.success(), "{extra:?} should fail");
        stderr(&o)
    };
    assert!(run(&["--na", "1.4", "--pitch", "100nm"]).contains("immersion"));
    let oil = ["--na", "1.4", "--index", "1.518", "--pitch", "100nm"];
    assert!(run(&[&oil[..], &["--zernike", "11:0.5"]].concat()).contains("--zernike"));
    assert!(run(&[&oil[..], &["--planes", "9"]].concat()).contains("--z-step"));
    assert!(run(&["--na", "0.5", "--pitch", "1um"]).contains("λ/(2·NA)"));
    let pol = run(&[&oil[..], &["--vectorial", "--polarisation", "z"]].concat());
    assert!(
        pol.contains("--polarisation") && pol.contains("dipole:THETA,PHI"),
        "{pol}"
    );
    assert!(run(&[&oil[..], &["--polarisation", "x"]].concat()).contains("--vectorial"));
    assert!(run(&[&oil[..], &["--depth", "5um"]].concat()).contains("--sample-index"));
    let sample = ["--sample-index", "0.5", "--depth", "5um"];
    assert!(run(&[&oil[..], &sample].concat()).contains("--sample-index"));
    let above = ["--sample-index", "1.33", "--depth=-5um"];
    assert!(run(&[&oil[..], &above].concat()).contains("depth"));
    assert!(!Path::new(&out).exists());
    // A stack without its calibration needs --pitch and --z-step.
    let bare = dir.s("bare.tif");
    let s = photonflow::optics::io::tiff::Stack::new(vec![1.0; 4 * 16 * 16], [4, 16, 16]).unwrap();
    photonflow::optics::io::tiff::write_stack(Path::new(&bare), &s).unwrap();
    let o = photonflow(&[
        "psf",
        "retrieve",
        &bare,
        "--wavelength",
        "520nm",
        "--na",
        "0.8",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--pitch"),
        "{}",
        stderr(&o)
    );
    let o = photonflow(&[
        "psf",
        "retrieve",
        &dir.s("missing.tif"),
        "--wavelength",
        "520nm",
        "--na",
        "0.8",
        "--pitch",
        "100nm",
        "--z-step",
        "100nm",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("missing.tif"),
        "{}",
        stderr(&o)
    );
}

/// Two points closer than the blur's FWHM, blurred by a PSF from `psf model` (direct
/// convolution here) on a camera offset: `deconvolve` separates them.
#[test]
fn deconvolve_resolves_two_points_and_refuses_mismatched_files() {
    use photonflow::optics::io::tiff::{Stack, read_stack, write_stack};
    let dir = Dir::new();
    let psf_path = dir.s("psf.tif");
    let o = photonflow(&[
        "psf",
        "model",
        "--wavelength",
        "520nm",
        "--na",
        "0.5",
        "--pitch",
        "100nm",
        "--size",
        "32",
        "--out",
        &psf_path,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let psf = read_stack(Path::new(&psf_path)).unwrap();
    let n = 64;
    // FWHM 0.5145 λ/NA = 535 nm = 5.4 px; the points are 4 px apart.
    let points = [(32usize, 30usize), (32, 34)];
    let mut image = vec![100.0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let mut v = 0.0;
            for &(py, px) in &points {
                let (dy, dx) = (y as i64 - py as i64 + 16, x as i64 - px as i64 + 16);
                if (0..32).contains(&dy) && (0..32).contains(&dx) {
                    v += psf.data[dy as usize * 32 + dx as usize];
                }
            }
            image[y * n + x] += 5e4 * v;
        }
    }
    let mid = image[32 * n + 32] - 100.0;
    let top = image[32 * n + 30] - 100.0;
    assert!(mid > 0.9 * top, "blurred: no dip ({mid} vs {top})");
    let mut s = Stack::new(image, [1, n, n]).unwrap();
    s.spacing = psf.spacing;
    s.spacing.z = None;
    let image_path = dir.s("image.tif");
    write_stack(Path::new(&image_path), &s).unwrap();
    let out = dir.s("out.tif");
    let o = photonflow(&[
        "deconvolve",
        &image_path,
        "--psf",
        &psf_path,
        "--out",
        &out,
        "--iterations",
        "300",
        "--centre",
        "none",
        "--png",
        &dir.s("rl.png"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    assert!(
        (r["background"].as_f64().unwrap() - 100.0).abs() < 1e-3,
        "{r}"
    );
    assert!(
        r["divergence"].as_f64().unwrap() < 0.01 * r["divergence_start"].as_f64().unwrap(),
        "{r}"
    );
    let d = read_stack(Path::new(&out)).unwrap();
    assert_eq!(d.spacing.x, s.spacing.x);
    let (mid, left, right) = (
        d.data[32 * n + 32],
        d.data[32 * n + 30],
        d.data[32 * n + 34],
    );
    assert!(
        mid < 0.5 * left.min(right),
        "deconvolved: {left} {mid} {right}"
    );
    // Flux: what the points sent (5·10⁴ each) is where they were.
    let near: f32 = (28..37)
        .flat_map(|y| (26..39).map(move |x| (y, x)))
        .map(|(y, x)| d.data[y * n + x])
        .sum();
    assert!((near / 1e5 - 1.0).abs() < 0.05, "flux {near}");
    assert!(std::fs::metadata(dir.path("rl.png")).unwrap().len() > 1000);

    // A PSF sampled otherwise is refused with what to do.
    let coarse = dir.s("coarse.tif");
    let o = photonflow(&[
        "psf",
        "model",
        "--wavelength",
        "520nm",
        "--na",
        "0.5",
        "--pitch",
        "200nm",
        "--size",
        "32",
        "--out",
        &coarse,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let refused = |psf: &str, extra: &[&str], needle: &str| {
        let x = dir.s("x.tif");
        let mut args = vec!["deconvolve", &image_path, "--psf", psf, "--out", &x];
        args.extend(extra);
        let o = photonflow(&args);
        assert!(
            !o.status.success() && stderr(&o).contains(needle),
            "{extra:?}: {}",
            stderr(&o)
        );
    };
    refused(&coarse, &[], "psf model");
    refused(&psf_path, &["--centre", "middle"], "--centre");
    refused(&psf_path, &["--background", "lots"], "--background");
    assert!(!dir.path("x.tif").exists());
}

/// The shared microscopy data: `microscopy/NAME` under `$PHOTONFLOW_DATA_DIR`, or `None` (the
/// test then says it is skipped).
fn microscopy(name: &str) -> Option<String> {
    let Some(shared) = std::env::var_os("PHOTONFLOW_DATA_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("PHOTONFLOW_DATA_DIR is not set: skipping the test on {name}");
        return None;
    };
    let path = Path::new(&shared).join("microscopy").join(name);
    assert!(
        path.exists(),
        "{} is missing from the shared data",
        path.display()
    );
    Some(path.to_string_lossy().into_owned())
}

/// A measured bead of a lattice light-sheet microscope (pycudadecon's test PSF: 0.1 µm
/// pixels and planes, NA 1.1 water detection, 520 nm): the retrieved pupil explains the bead
/// better than an ideal one, with a Strehl ratio of a good objective, and the bead sits
/// within a pixel of the voxel taken as its centre.
#[test]
fn psf_retrieve_on_a_measured_light_sheet_bead() {
    let Some(bead) = microscopy("pycudadecon_lls_measured_psf.tif") else {
        return;
    };
    let retrieve = |extra: &[&str]| {
        let mut a = vec![
            "psf",
            "retrieve",
            &bead,
            "--wavelength",
            "520nm",
            "--na",
            "1.1",
            "--index",
            "1.333",
            "--pitch",
            "101nm",
            "--z-step",
            "100nm",
            "--json",
        ];
        a.extend(extra);
        let o = photonflow(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        last_json(&o)
    };
    // The vectorial model explains the measured bead better than the scalar one, both with
    // the ideal pupil and with the retrieved one.
    let r = retrieve(&[]);
    let v = retrieve(&["--vectorial"]);
    for key in ["misfit", "ideal_misfit"] {
        assert!(v[key].as_f64() < r[key].as_f64(), "{key}: {v} vs {r}");
    }
    assert_eq!(r["peak_voxel"], serde_json::json!([30, 71, 64]), "{r}");
    let (misfit, ideal) = (
        r["misfit"].as_f64().unwrap(),
        r["ideal_misfit"].as_f64().unwrap(),
    );
    assert!(misfit < 0.8 * ideal, "{misfit} vs ideal {ideal}");
    let strehl = r["fit"]["strehl"].as_f64().unwrap();
    assert!((0.6..1.0).contains(&strehl), "Strehl {strehl}");
    for p in r["fit"]["position_m"].as_array().unwrap() {
        assert!(p.as_f64().unwrap().abs() < 101e-9, "{r}");
    }
    // Lateral width: the measured bead is the model's, widened by the bead's own size.
    let w = &r["fwhm_m"];
    let (measured, retrieved) = (
        w["measured"]["x"].as_f64().unwrap(),
        w["retrieved"]["x"].as_f64().unwrap(),
    );
    assert!(retrieved < measured && retrieved > 0.75 * measured, "{w}");
}

/// The EPFL bead (flowdec's 25 % copy) deconvolved with the PSF shipped beside it: the
/// hourglass of out-of-focus light folds back into the bead.
#[test]
fn deconvolve_a_measured_bead_stack() {
    let (Some(data), Some(kernel)) = (
        microscopy("flowdec_bead25pct_data.tif"),
        microscopy("flowdec_bead25pct_kernel.tif"),
    ) else {
        return;
    };
    let dir = Dir::new();
    let out = dir.s("bead.tif");
    let o = photonflow(&[
        "deconvolve",
        &data,
        "--psf",
        &kernel,
        "--out",
        &out,
        "--iterations",
        "30",
        "--accelerate",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    assert!(
        r["divergence"].as_f64().unwrap() < 0.2 * r["divergence_start"].as_f64().unwrap(),
        "{r}"
    );
    let w = &r["brightest_object_fwhm"];
    let (z0, z1) = (
        w["before"]["z_planes"].as_f64().unwrap(),
        w["after"]["z_planes"].as_f64().unwrap(),
    );
    assert!(z1 < 0.75 * z0, "axial FWHM {z0} → {z1} planes");
    let s = photonflow::optics::io::tiff::read_stack(Path::new(&out)).unwrap();
    assert_eq!(s.shape, [64, 64, 64]);
    assert!(s.data.iter().all(|v| *v >= 0.0));
}

/// `photonflow hologram` at 532 nm behind a 100 mm lens, `--json`, into `dir/name`, with `args`
/// (the target, the panel and the rest).
fn hologram(dir: &Dir, name: &str, args: &[&str]) -> Output {
    let out = dir.s(name);
    let mut all = vec![
        "hologram",
        "--wavelength",
        "532nm",
        "--focal",
        "100mm",
        "--json",
        "--out",
        &out,
    ];
    all.extend_from_slice(args);
    photonflow(&all)
}

/// The JSON report of a run that must succeed.
fn report(o: Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(&o));
    last_json(&o)
}

/// `|DFT|²` of the SLM field `a·exp(iφ)` (`n × n` pixels, centred in an `m × m` window) at
/// window frequency pixel `(kr, kc)`, by direct summation: the Fourier hologram's far field
/// without photonflow's propagators.
fn far_field_power(phase: &[f64], n: usize, m: usize, kr: usize, kc: usize) -> f64 {
    let (c, cm) = ((n / 2) as f64, (m / 2) as f64);
    let mut sum = Complex::new(0.0f64, 0.0);
    for (j, &p) in phase.iter().enumerate() {
        let (r, col) = ((j / n) as f64 - c, (j % n) as f64 - c);
        let arg =
            p - std::f64::consts::TAU * (r * (kr as f64 - cm) + col * (kc as f64 - cm)) / m as f64;
        sum += Complex::from_polar(1.0, arg);
    }
    sum.norm_sqr()
}

#[test]
fn hologram_spots_bitmap_forms_the_spots_it_reports() {
    let dir = Dir::new();
    let out = dir.s("spots");
    let o = photonflow(&[
        "hologram",
        "--spots",
        "3x3@150um",
        "--centre",
        "0.6mm,0.3mm",
        "--wavelength",
        "532nm",
        "--slm",
        "96x96@8um",
        "--focal",
        "100mm",
        "--iterations",
        "60",
        "--out",
        &out,
        "--json",
        "--png",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = last_json(&o);
    let q = &report["quality"];
    assert!(q["uniformity"].as_f64().unwrap() > 0.99, "{report}");
    assert!(q["efficiency"].as_f64().unwrap() > 0.6, "{report}");
    // Each spot as placed: within half a target pixel of where it was asked for, at its share.
    let spots = report["spots"].as_array().unwrap();
    assert_eq!(spots.len(), 9);
    let d = report["target_plane"]["pitch_x_m"].as_f64().unwrap();
    for (k, s) in spots.iter().enumerate() {
        let x = 0.6e-3 + ((k % 3) as f64 - 1.0) * 150e-6;
        assert!(
            (s["x_m"].as_f64().unwrap() - x).abs() <= 0.5 * d + 1e-12,
            "{s}"
        );
        assert!((s["share"].as_f64().unwrap() - 1.0 / 9.0).abs() < 1e-12);
        assert!((s["relative"].as_f64().unwrap() - 1.0).abs() < 0.01, "{s}");
    }
    for f in [
        "hologram_slm.png",
        "hologram_phase.npy",
        "reconstruction.npy",
        "hologram.json",
        "hologram.png",
        "convergence.png",
    ] {
        assert!(dir.path("spots").join(f).is_file(), "{f} missing");
    }
    // The bitmap, read as a user's SLM driver reads it (image row 0 at the top, 8-bit gray,
    // 2π = 256 levels), forms the spots where they were asked for, as uniformly as reported.
    let (w, h, gray) =
        photonflow::compiler::export::slm::read_bitmap(&dir.path("spots").join("hologram_slm.png"))
            .unwrap();
    assert_eq!((w, h), (96, 96));
    let phase: Vec<f64> = gray
        .chunks_exact(w)
        .rev()
        .flatten()
        .map(|&g| std::f64::consts::TAU * f64::from(g) / 256.0)
        .collect();
    let m = 192;
    let pitch = 532e-9 * 0.1 / (m as f64 * 8e-6);
    let mut powers = Vec::new();
    for k in 0..9 {
        let (x, y) = (
            0.6e-3 + ((k % 3) as f64 - 1.0) * 150e-6,
            0.3e-3 + ((k / 3) as f64 - 1.0) * 150e-6,
        );
        let (kc, kr) = (
            (x / pitch).round() as usize + m / 2,
            (y / pitch).round() as usize + m / 2,
        );
        powers.push(far_field_power(&phase, w, m, kr, kc));
    }
    let (lo, hi) = powers
        .iter()
        .fold((f64::MAX, 0.0f64), |(a, b), &p| (a.min(p), b.max(p)));
    let uniformity = 1.0 - (hi - lo) / (hi + lo);
    assert!(
        (uniformity - q["uniformity"].as_f64().unwrap()).abs() < 1e-3,
        "{uniformity} {report}"
    );
    // Mirrored in y, the same spots would be dark.
    let mirrored = far_field_power(
        &phase,
        w,
        m,
        m / 2 - (0.3e-3 / pitch).round() as usize,
        m / 2 + (0.6e-3 / pitch).round() as usize,
    );
    assert!(mirrored < 0.01 * lo, "{mirrored} vs {lo}");
}

#[test]
fn hologram_of_an_image_conserves_power_and_reports_its_quality() {
    let dir = Dir::new();
    // A ring, 32×32, as float32 .npy.
    let n = 32;
    let ring: Vec<f32> = (0..n * n)
        .map(|i| {
            let (x, y) = ((i % n) as f32 - 15.5, (i / n) as f32 - 15.5);
            let r = (x * x + y * y).sqrt() / 15.5;
            (-((r - 0.6) / 0.15).powi(2)).exp()
        })
        .collect();
    let image = dir.s("ring.npy");
    npy::write_npy(Path::new(&image), &[n, n], NpyDataRef::F32(&ring)).unwrap();
    let out = dir.s("ring");
    let o = photonflow(&[
        "hologram",
        &image,
        "--wavelength",
        "633nm",
        "--slm",
        "80x64@10um",
        "--focal",
        "50mm",
        "--size",
        "1.2mm",
        "--centre",
        "0.8mm,0",
        "--beam-waist",
        "300um",
        "--out",
        &out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = last_json(&o);
    assert_eq!(report["algorithm"], "mraf");
    let q = &report["quality"];
    assert!(
        q["psnr_db"].as_f64().unwrap() > 30.0 && q["ssim"].as_f64().unwrap() > 0.95,
        "{report}"
    );
    // The target plane: 160×128 pixels of λf/(M·p); the light's power (1 W) is all there.
    let (nx, ny) = (
        report["target_plane"]["nx"].as_u64().unwrap(),
        report["target_plane"]["ny"].as_u64().unwrap(),
    );
    assert_eq!((nx, ny), (160, 128));
    let (dx, dy) = (
        report["target_plane"]["pitch_x_m"].as_f64().unwrap(),
        report["target_plane"]["pitch_y_m"].as_f64().unwrap(),
    );
    assert!((dx - 633e-9 * 0.05 / (160.0 * 10e-6)).abs() < 1e-12);
    let back = npy::read_npy(&dir.path("ring").join("reconstruction.npy")).unwrap();
    assert_eq!(back.shape, vec![128, 160]);
    let data = back.data;
    let NpyData::F32(i) = data else {
        panic!("float32 expected")
    };
    let power: f64 = i.iter().map(|&v| f64::from(v)).sum::<f64>() * dx * dy;
    assert!((power - 1.0).abs() < 1e-3, "{power}");
    // An 8-bit SLM: every phase within half a gray step of the design.
    assert!(
        report["bitmap"]["max_phase_error_rad"].as_f64().unwrap()
            <= std::f64::consts::PI / 256.0 + 1e-9
    );
}

#[test]
fn hologram_refuses_bad_requests_naming_the_flag() {
    let dir = Dir::new();
    let out = dir.s("h");
    let base = [
        "hologram",
        "--wavelength",
        "532nm",
        "--slm",
        "64x64@8um",
        "--out",
        &out,
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let o = photonflow(&args);
        assert!(!o.status.success(), "{extra:?} should fail");
        stderr(&o)
    };
    let e = run(&["--focal", "100mm"]);
    assert!(e.contains("give one target"), "{e}");
    let e = run(&[
        "--spots",
        "2x2@100um",
        "--focal",
        "100mm",
        "--distance",
        "5cm",
    ]);
    assert!(e.contains("--focal") && e.contains("--distance"), "{e}");
    let e = run(&["--spots", "2x2", "--focal", "100mm"]);
    assert!(
        e.contains("--spots '2x2'") && e.contains("COLSxROWS@PITCH"),
        "{e}"
    );
    let e = run(&["--spot", "50mm,0", "--focal", "100mm"]);
    assert!(e.contains("outside the target plane"), "{e}");
    let e = run(&["--spots", "2x2@100um", "--size", "1mm", "--focal", "100mm"]);
    assert!(e.contains("--size"), "{e}");
    let e = run(&[
        "--spots",
        "2x2@100um",
        "--focal",
        "100mm",
        "--algorithm",
        "magic",
    ]);
    assert!(
        e.contains("--algorithm") && e.contains("gs, wgs, mraf, gd"),
        "{e}"
    );
    let e = run(&[
        "--spots",
        "2x2@100um",
        "--distance",
        "2m",
        "--method",
        "asm",
        "--pad",
        "1",
    ]);
    assert!(e.contains("asm"), "{e}");
    let e = run(&["--spots", "2x2@100um", "--focal", "100mm", "--bits", "7"]);
    assert!(e.contains("--bits"), "{e}");
    let e = run(&[
        "--spots",
        "2x2@100um",
        "--distance",
        "5cm",
        "--fill-factor",
        "0.9",
    ]);
    assert!(e.contains("--fill-factor") && e.contains("Fourier"), "{e}");
    let e = run(&[
        "--spots",
        "2x2@100um",
        "--focal",
        "100mm",
        "--fill-factor",
        "1.5",
    ]);
    assert!(e.contains("--fill-factor"), "{e}");
}

#[test]
fn hologram_with_finite_pixels_loses_f_squared_to_the_gaps() {
    // Spots near the axis (envelope ≈ 1): the fill factor F leaves F² of the efficiency, and
    // the zero order (1 − F)² of the power lands on the axis.
    let dir = Dir::new();
    let run = |extra: &[&str], name: &str| {
        let spots = [
            "--spots",
            "3x3@120um",
            "--centre",
            "0.5mm,0.4mm",
            "--slm",
            "64x64@8um",
        ];
        report(hologram(
            &dir,
            name,
            &[&spots[..], &["--pad", "1"], extra].concat(),
        ))
    };
    let ideal = run(&[], "ideal");
    let real = run(&["--fill-factor", "0.8"], "real");
    assert_eq!(real["fill_factor"], 0.8);
    let (e0, e1) = (
        ideal["quality"]["efficiency"].as_f64().unwrap(),
        real["quality"]["efficiency"].as_f64().unwrap(),
    );
    assert!((e1 / e0 / 0.64 - 1.0).abs() < 0.03, "{e1} / {e0}");
    assert!(
        real["quality"]["uniformity"].as_f64().unwrap() > 0.99,
        "{real}"
    );
    let back = npy::read_npy(&dir.path("real").join("reconstruction.npy")).unwrap();
    let NpyData::F32(i) = back.data else {
        panic!("float32 expected")
    };
    let d = real["target_plane"]["pitch_x_m"].as_f64().unwrap();
    let zero = f64::from(i[32 * 64 + 32]) * d * d;
    // (plus what the hologram scatters onto that pixel, interfering with it)
    assert!((zero / 0.04 - 1.0).abs() < 0.1, "zero order {zero}");
}

#[test]
fn hologram_of_a_3d_spot_array_focuses_each_spot_in_its_plane() {
    let dir = Dir::new();
    let out = dir.s("3d");
    let o = photonflow(&[
        "hologram",
        "--spot",
        "-40um,0",
        "--spot",
        "40um,20um,2",
        "--spot",
        "0,-30um,0.4mm",
        "--spot",
        "30um,-50um,-0.3mm,2",
        "--wavelength",
        "532nm",
        "--slm",
        "128x128@8um",
        "--focal",
        "10mm",
        "--out",
        &out,
        "--json",
        "--png",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = last_json(&o);
    let planes: Vec<f64> = report["target"]["planes_m"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(planes, vec![-0.3e-3, 0.0, 0.4e-3]);
    // Uniformity of each spot's peak relative to its own intensity (2 for two of them).
    assert!(
        report["quality"]["uniformity"].as_f64().unwrap() > 0.99,
        "{report}"
    );
    let back = npy::read_npy(&dir.path("3d").join("reconstruction.npy")).unwrap();
    assert_eq!(back.shape, vec![3, 256, 256]);
    let NpyData::F32(i) = back.data else {
        panic!("float32 expected")
    };
    // The spot at +0.4 mm: sharp in its plane, blurred in the focal plane.
    let d = report["target_plane"]["pitch_x_m"].as_f64().unwrap();
    let pixel = (128 + (-30e-6 / d).round() as i64) as usize * 256 + 128;
    let (focused, blurred) = (i[2 * 65536 + pixel], i[65536 + pixel]);
    assert!(focused > 20.0 * blurred, "{focused} vs {blurred}");
    let e = photonflow(&[
        "hologram",
        "--spot",
        "0,0,1mm",
        "--wavelength",
        "532nm",
        "--slm",
        "64x64@8um",
        "--distance",
        "5cm",
        "--out",
        &out,
    ]);
    assert!(
        !e.status.success() && stderr(&e).contains("Fourier hologram"),
        "{}",
        stderr(&e)
    );
    let e = photonflow(&[
        "hologram",
        "--spot",
        "0,0,1mm,x",
        "--wavelength",
        "532nm",
        "--slm",
        "64x64@8um",
        "--focal",
        "5cm",
        "--out",
        &out,
    ]);
    assert!(
        !e.status.success() && stderr(&e).contains("--spot 0,0,1mm,x"),
        "{}",
        stderr(&e)
    );
}

#[test]
fn hologram_projects_onto_a_screen_of_its_own_pitch() {
    let dir = Dir::new();
    let out = dir.s("screen");
    let o = photonflow(&[
        "hologram",
        "--spots",
        "3x3@1.5mm",
        "--wavelength",
        "532nm",
        "--slm",
        "64x64@8um",
        "--distance",
        "30cm",
        "--method",
        "auto",
        "--target-pitch",
        "80um",
        "--iterations",
        "30",
        "--json",
        "--out",
        &out,
    ]);
    let j = report(o);
    assert!(
        (j["geometry"]["target_pitch_m"].as_f64().unwrap() - 80e-6).abs() < 1e-15,
        "{j}"
    );
    assert_eq!(
        j["target_plane"]["pitch_x_m"],
        j["geometry"]["target_pitch_m"]
    );
    assert!(j["quality"]["uniformity"].as_f64().unwrap() > 0.95, "{j}");
    let back = npy::read_npy(&dir.path("screen").join("reconstruction.npy")).unwrap();
    assert_eq!(back.shape, vec![128, 128]);
    let e = photonflow(&[
        "hologram",
        "--spots",
        "2x2@1mm",
        "--wavelength",
        "532nm",
        "--slm",
        "64x64@8um",
        "--focal",
        "10cm",
        "--target-pitch",
        "80um",
        "--out",
        &out,
    ]);
    assert!(
        !e.status.success() && stderr(&e).contains("--target-pitch applies to Fresnel"),
        "{}",
        stderr(&e)
    );
}

#[test]
fn hologram_adds_a_correction_pattern_from_npy_or_a_bitmap() {
    let dir = Dir::new();
    let n = 64;
    let c: Vec<f32> = (0..n * n)
        .map(|j| 0.002 * ((j % n) * (j / n)) as f32)
        .collect();
    let cpath = dir.s("correction.npy");
    npy::write_npy(Path::new(&cpath), &[n, n], NpyDataRef::F32(&c)).unwrap();
    let run = |extra: &[&str], name: &str| {
        let spots = [
            "--spots",
            "2x2@150um",
            "--centre",
            "0.5mm,0.3mm",
            "--slm",
            "64x64@8um",
        ];
        report(hologram(&dir, name, &[&spots[..], extra].concat()))
    };
    let report = run(&["--correction", &cpath], "npy");
    assert!(
        report["quality"]["uniformity"].as_f64().unwrap() > 0.99,
        "{report}"
    );
    // Every pixel shows the design plus the correction, within half a gray step.
    let (w, _, gray) =
        photonflow::compiler::export::slm::read_bitmap(&dir.path("npy").join("hologram_slm.png"))
            .unwrap();
    let NpyData::F32(phase) = npy::read_npy(&dir.path("npy").join("hologram_phase.npy"))
        .unwrap()
        .data
    else {
        panic!("float32 expected")
    };
    let gray: Vec<u16> = gray.chunks_exact(w).rev().flatten().copied().collect();
    for j in 0..n * n {
        let shown = std::f64::consts::TAU * f64::from(gray[j]) / 256.0;
        let d = (shown - f64::from(phase[j]) - f64::from(c[j])).rem_euclid(std::f64::consts::TAU);
        assert!(
            d.min(std::f64::consts::TAU - d) <= std::f64::consts::PI / 256.0 + 1e-5,
            "pixel {j}"
        );
    }
    // A bitmap of this SLM's gray levels is a correction too (here: the one just written).
    let bitmap = dir.s("npy/hologram_slm.png");
    let report = run(&["--correction", &bitmap], "png");
    assert_eq!(report["correction"], bitmap.as_str());
    let o = photonflow(&[
        "hologram",
        "--spots",
        "2x2@150um",
        "--wavelength",
        "532nm",
        "--slm",
        "32x32@8um",
        "--focal",
        "100mm",
        "--correction",
        &cpath,
        "--out",
        &dir.s("bad"),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--correction") && stderr(&o).contains("32×32"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn hologram_takes_a_measured_beam() {
    let dir = Dir::new();
    let n = 64;
    let waist = 150e-6;
    let c = (n / 2) as f64;
    let picture: Vec<u16> = (0..n * n)
        .map(|j| {
            let (x, y) = (((j % n) as f64 - c) * 8e-6, ((j / n) as f64 - c) * 8e-6);
            (60000.0 * (-2.0 * (x * x + y * y) / (waist * waist)).exp()).round() as u16
        })
        .collect();
    let beam = dir.s("beam.npy");
    npy::write_npy(Path::new(&beam), &[n, n], NpyDataRef::U16(&picture)).unwrap();
    let run = |extra: &[&str], name: &str| {
        let spots = ["--spots", "2x2@150um", "--centre", "0.5mm,0.3mm"];
        hologram(&dir, name, &[&spots[..], extra].concat())
    };
    let measured = run(&["--beam", &beam, "--slm", "64x64@8um"], "measured");
    assert!(measured.status.success(), "{}", stderr(&measured));
    let gaussian = run(&["--beam-waist", "150um", "--slm", "64x64@8um"], "gaussian");
    let (m, g) = (last_json(&measured), last_json(&gaussian));
    assert_eq!(m["beam"]["kind"], "measured");
    // A 16-bit picture of the same Gaussian: the same design to the picture's rounding.
    let (em, eg) = (
        m["quality"]["efficiency"].as_f64().unwrap(),
        g["quality"]["efficiency"].as_f64().unwrap(),
    );
    assert!((em - eg).abs() < 1e-3, "{em} vs {eg}");
    let o = run(&["--beam", &beam, "--slm", "32x32@8um"], "bad");
    assert!(
        !o.status.success() && stderr(&o).contains("--beam") && stderr(&o).contains("32×32"),
        "{}",
        stderr(&o)
    );
    let o = run(
        &["--beam", &beam, "--beam-waist", "1mm", "--slm", "64x64@8um"],
        "both",
    );
    assert!(
        !o.status.success() && stderr(&o).contains("not both"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn hologram_evaluates_a_bitmap_as_it_designed_it() {
    let dir = Dir::new();
    let run = |extra: &[&str], name: &str| {
        let spots = [
            "--spots",
            "3x2@150um",
            "--centre",
            "0.5mm,0.3mm",
            "--slm",
            "64x64@8um",
        ];
        report(hologram(&dir, name, &[&spots[..], extra].concat()))
    };
    let designed = run(&[], "design");
    let bitmap = dir.s("design/hologram_slm.png");
    let evaluated = run(&["--evaluate", &bitmap, "--png"], "eval");
    assert_eq!(evaluated["bitmap"]["evaluated"], true);
    for key in ["efficiency", "uniformity", "error"] {
        let (a, b) = (
            designed["quality"][key].as_f64().unwrap(),
            evaluated["quality"][key].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() < 1e-9 * a.abs().max(1e-3),
            "{key}: {a} vs {b}"
        );
    }
    assert!(dir.path("eval").join("hologram.png").is_file());
    assert!(!dir.path("eval").join("hologram_slm.png").exists());
    // The same bitmap on an SLM with 80 % fill factor: F² of the efficiency.
    let what_if = run(&["--evaluate", &bitmap, "--fill-factor", "0.8"], "ff");
    let ratio = what_if["quality"]["efficiency"].as_f64().unwrap()
        / designed["quality"]["efficiency"].as_f64().unwrap();
    assert!((ratio / 0.64 - 1.0).abs() < 0.03, "{ratio}");
    let o = hologram(
        &dir,
        "x",
        &["--spot", "0,0", "--slm", "32x32@8um", "--evaluate", &bitmap],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("--evaluate") && stderr(&o).contains("32×32"),
        "{}",
        stderr(&o)
    );
}

/// Broadband and partially coherent light: `propagate` writes the intensity (float32 for
/// complex64 in); one line with a source of zero NA is the coherent field's `|E|²`; an LED
/// spectrum through the Fraunhofer method lands on the mean wavelength's grid, the lines and
/// modes reported; bad flags are named.
#[test]
fn propagates_broadband_and_partially_coherent_light_as_intensity() {
    let d = Dir::new();
    let n = 48;
    let i = d.gaussian_input("in.npy", n, 2);
    let (field_out, intensity_out) = (d.s("field.npy"), d.s("intensity.npy"));
    let mut args = vec!["propagate", "-i", &i, "-o", &field_out];
    args.extend(BASE);
    assert!(photonflow(&args).status.success());
    let mut args = vec![
        "propagate",
        "-i",
        &i,
        "-o",
        &intensity_out,
        "--source-na",
        "0",
        "--json",
    ];
    args.extend(BASE);
    let r = photonflow(&args);
    assert!(r.status.success(), "{}", stderr(&r));
    let j = last_json(&r);
    assert_eq!(j["intensity"], true);
    assert_eq!(j["lines"].as_array().unwrap().len(), 1);
    assert_eq!(j["propagations"], 2);
    let NpyData::C64(field) = npy::read_npy(Path::new(&field_out)).unwrap().data else {
        panic!("complex64 field")
    };
    let back = npy::read_npy(Path::new(&intensity_out)).unwrap();
    assert_eq!(back.shape, vec![2, n, n]);
    let NpyData::F32(intensity) = back.data else {
        panic!("float32 intensity")
    };
    let peak = intensity.iter().cloned().fold(0.0f32, f32::max);
    for (e, v) in field.iter().zip(&intensity) {
        assert!((e.norm_sqr() - v).abs() <= 1e-5 * peak);
    }
    // an element designed for the wavelength it is used at is that same field
    let designed = d.s("designed.npy");
    let mut args = vec![
        "propagate",
        "-i",
        &i,
        "-o",
        &designed,
        "--design-wavelength",
        "632.8nm",
    ];
    args.extend(BASE);
    let r = photonflow(&args);
    assert!(r.status.success(), "{}", stderr(&r));
    let NpyData::F32(same) = npy::read_npy(Path::new(&designed)).unwrap().data else {
        panic!("float32 intensity")
    };
    for (e, v) in field.iter().zip(&same) {
        assert!((e.norm_sqr() - v).abs() <= 1e-5 * peak);
    }

    // an LED (Gaussian, 40 nm wide) behind a condenser of NA 0.01, 0.4 m away, far field
    let led = d.s("led.npy");
    let png = d.s("led.png");
    let r = photonflow(&[
        "propagate",
        "-i",
        &i,
        "-o",
        &led,
        "--pitch",
        "8um",
        "--distance",
        "40cm",
        "--spectrum",
        "gaussian:630nm:40nm",
        "--source-na",
        "0.002",
        "--method",
        "fraunhofer",
        "--png",
        &png,
        "--json",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let j = last_json(&r);
    let lines = j["lines"].as_array().unwrap();
    assert!(lines.len() > 1 && lines.iter().all(|l| l["method"] == "fraunhofer"));
    let modes = lines[0]["modes"].as_u64().unwrap();
    assert!(modes > 1, "{j}");
    let weights: f64 = lines.iter().map(|l| l["weight"].as_f64().unwrap()).sum();
    assert!((weights - 1.0).abs() < 1e-12);
    // the natural Fraunhofer pitch of the mean wavelength, λz/(2n·d)
    let mean = 1.0
        / lines
            .iter()
            .map(|l| l["weight"].as_f64().unwrap() / l["wavelength_m"].as_f64().unwrap())
            .sum::<f64>();
    let pitch = mean * 0.4 / (2.0 * n as f64 * 8e-6);
    assert!(
        (j["output_pitch_m"].as_f64().unwrap() / pitch - 1.0).abs() < 1e-9,
        "{j}"
    );
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    let NpyData::F32(broad) = npy::read_npy(Path::new(&led)).unwrap().data else {
        panic!("float32 intensity")
    };
    assert!(broad.iter().all(|v| v.is_finite() && *v >= 0.0));

    for (flags, needle) in [
        (vec!["--source-na", "2"], "--source-na"),
        (vec!["--spectrum", "gaussian:630nm"], "--spectrum"),
        (vec!["--spectrum", "flat:600nm:500nm"], "--spectrum"),
        (vec!["--gaussian-schell", "10um"], "--gaussian-schell"),
        (
            vec!["--source-na", "0.1", "--gaussian-schell", "10um,2um"],
            "--gaussian-schell",
        ),
        (vec!["--lines", "0", "--source-na", "0"], "--lines"),
        (vec!["--tolerance", "2", "--source-na", "0"], "--tolerance"),
    ] {
        let bad = d.s("bad.npy");
        let mut a = vec![
            "propagate",
            "-i",
            &i,
            "-o",
            &bad,
            "--pitch",
            "8um",
            "--distance",
            "5mm",
        ];
        if !flags.contains(&"--spectrum") {
            a.extend(["--wavelength", "632.8nm"]);
        }
        a.extend(flags.iter().copied());
        let r = photonflow(&a);
        assert!(!r.status.success(), "{flags:?} succeeded");
        assert!(stderr(&r).contains(needle), "{flags:?}: {}", stderr(&r));
        assert!(!Path::new(&bad).exists());
    }
}

/// `photonflow microscope`: a weak phase bump (a TIFF in radians) is invisible in focus under
/// coherent light and shows with defocus, with opposite contrast on either side of focus; a
/// blank field keeps its mean; bad input names its flag.
#[test]
fn microscope_images_a_phase_object() {
    let dir = Dir::new();
    let (phase, out) = (dir.s("phase.tif"), dir.s("image.tif"));
    let n = 64;
    let bump: Vec<f32> = (0..n * n)
        .map(|i| {
            let (y, x) = ((i / n) as f32 - 32.0, (i % n) as f32 - 32.0);
            0.05 * (-(x * x + y * y) / 18.0).exp()
        })
        .collect();
    let s = photonflow::optics::io::tiff::Stack::new(bump, [1, n, n]).unwrap();
    photonflow::optics::io::tiff::write_stack(Path::new(&phase), &s).unwrap();
    let base = [
        "microscope",
        "--phase",
        &phase,
        "--wavelength",
        "520nm",
        "--na",
        "0.5",
        "--out",
        &out,
    ];
    // `--pitch 200nm` unless the test gives its own.
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        if !extra.contains(&"--pitch") {
            a.extend(["--pitch", "200nm"]);
        }
        a.extend(extra);
        photonflow(&a)
    };
    let o = run(&["--defocus=-3um,0um,3um", "--condenser-na", "0.1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    let contrast: Vec<f64> = r["contrast"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(contrast[1] < 0.1 * contrast[0].min(contrast[2]), "{r}");
    for m in r["mean"].as_array().unwrap() {
        assert!((m.as_f64().unwrap() - 1.0).abs() < 1e-6, "{r}");
    }
    assert!(r["directions"].as_u64().unwrap() > 1, "{r}");
    let image = photonflow::optics::io::tiff::read_stack(Path::new(&out)).unwrap();
    assert_eq!(image.shape, [3, n, n]);
    let centre = |p: usize| f64::from(image.data[p * n * n + 32 * n + 32]) - 1.0;
    assert!(centre(0) * centre(2) < 0.0, "{} {}", centre(0), centre(2));
    // Bad input names its flag.
    let fails = |extra: &[&str], want: &str| {
        let o = run(extra);
        assert!(!o.status.success(), "{extra:?} should fail");
        let e = stderr(&o);
        assert!(e.contains(want), "{extra:?}: {e}");
    };
    fails(&["--pitch", "600nm"], "--pitch: invalid pitch");
    let coarse = ["--condenser-na", "0.2", "--pitch", "450nm"];
    fails(&coarse, "--pitch: the x pitch");
    fails(&coarse, "λ/(2 (NA + NA_c))");
    fails(&["--source-stride", "0"], "--source-stride");
    fails(
        &["--condenser-na", "0.1", "--condenser-inner-na", "0.2"],
        "inner NA",
    );
    fails(&["--phase-range=-1"], "--phase-range");
    fails(&["--phase-ring", "90"], "--condenser-inner-na");
    let ring = [
        "--phase-ring",
        "90",
        "--condenser-na",
        "0.25",
        "--condenser-inner-na",
        "0.2",
    ];
    fails(
        &[&ring[..], &["--ring-transmission", "0"]].concat(),
        "--phase-ring",
    );
    // Zernike phase contrast shows the bump in focus, where brightfield hardly does.
    let o = run(&[&ring[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let pc = last_json(&o);
    let c = pc["contrast"][0].as_f64().unwrap();
    assert!(
        c > 5.0 * contrast[1],
        "phase contrast {c} vs brightfield in focus {}",
        contrast[1]
    );
    assert!(
        (pc["mean"][0].as_f64().unwrap() - 0.25).abs() < 0.01,
        "{pc}"
    );
    // DIC with a quarter-wave bias: the background at half the light, the bump shaded along
    // the shear (brighter on one side than on the other) in focus.
    let o = run(&["--dic-shear", "150nm", "--dic-angle", "0", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dic = last_json(&o);
    assert!(
        (dic["mean"][0].as_f64().unwrap() - 0.5).abs() < 0.01,
        "{dic}"
    );
    assert!(
        dic["contrast"][0].as_f64().unwrap() > 5.0 * contrast[1],
        "{dic}"
    );
    let image = photonflow::optics::io::tiff::read_stack(Path::new(&out)).unwrap();
    let (left, right) = (image.data[32 * n + 29], image.data[32 * n + 35]);
    assert!((left - 0.5) * (right - 0.5) < 0.0, "{left} {right}");
    fails(&["--dic-bias", "45"], "--dic-shear");
    let png = dir.s("phase.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let o = photonflow(&[
        "microscope",
        "--phase",
        &png,
        "--wavelength",
        "520nm",
        "--na",
        "0.5",
        "--pitch",
        "200nm",
        "--out",
        &out,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--phase-range"),
        "{}",
        stderr(&o)
    );
}

/// The quantitative phase image of a cell (scikit-image's, 0.107 µm pixels; its 8-bit values
/// taken to span 3 rad): out of focus it shows, with contrast reversed across focus.
#[test]
fn microscope_images_a_measured_cell() {
    let Some(cell) = microscopy("skimage_cell_qpi.png") else {
        return;
    };
    let dir = Dir::new();
    let out = dir.s("cell.tif");
    let o = photonflow(&[
        "microscope",
        "--phase",
        &cell,
        "--phase-range",
        "3",
        "--wavelength",
        "520nm",
        "--na",
        "0.5",
        "--pitch",
        "107nm",
        "--condenser-na",
        "0.1",
        "--source-stride",
        "2",
        "--defocus=-2um,0um,2um",
        "--out",
        &out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    let c: Vec<f64> = r["contrast"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(c[0] > 5.0 * c[1] && c[2] > 5.0 * c[1], "{r}");
    let image = photonflow::optics::io::tiff::read_stack(Path::new(&out)).unwrap();
    let n = image.shape[1] * image.shape[2];
    let (a, b) = (&image.data[..n], &image.data[2 * n..]);
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x) - ma, f64::from(*y) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let correlation = ab / (aa * bb).sqrt();
    assert!(
        correlation < -0.5,
        "correlation of the ±2 µm images {correlation}"
    );
}

/// `photonflow reconstruct --autofocus`: the distance of beads' hologram found from the
/// hologram alone (no --distance), or the first of two heights found and the second moved
/// with it; the focus curve plotted; bad ranges name their flag.
#[test]
fn reconstruct_autofocus_finds_the_distance() {
    let dir = Dir::new();
    let (phase, holo, out, png) = (
        dir.s("beads.tif"),
        dir.s("holo.tif"),
        dir.s("out.tif"),
        dir.s("focus.png"),
    );
    let n = 128;
    let mut rng = photonflow::optics::rng::Rng::new(4);
    let beads: Vec<(f64, f64, f64)> = (0..14)
        .map(|_| {
            (
                rng.range(10.0, 118.0),
                rng.range(10.0, 118.0),
                rng.range(2.0, 5.0),
            )
        })
        .collect();
    let image: Vec<f32> = (0..n * n)
        .map(|i| {
            let (y, x) = ((i / n) as f64, (i % n) as f64);
            let inside = beads.iter().any(|(cx, cy, r)| (x - cx).hypot(y - cy) < *r);
            if inside { 1.0 } else { 0.0 }
        })
        .collect();
    let s = photonflow::optics::io::tiff::Stack::new(image, [1, n, n]).unwrap();
    photonflow::optics::io::tiff::write_stack(Path::new(&phase), &s).unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "reconstruct",
            "--wavelength",
            "532nm",
            "--pitch",
            "2um",
            "--iterations",
            "5",
            "--out",
            &out,
        ];
        a.extend(extra);
        photonflow(&a)
    };
    let o = run(&[
        "--distance",
        "0.7mm,1.2mm",
        "--simulate",
        &phase,
        "--photons",
        "1000",
        "--save-holograms",
        &holo,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // one hologram (the first plane of the stack, as its own file), no --distance
    let first = dir.s("first.tif");
    let stack = photonflow::optics::io::tiff::read_stack(Path::new(&holo)).unwrap();
    let plane =
        photonflow::optics::io::tiff::Stack::new(stack.data[..n * n].to_vec(), [1, n, n]).unwrap();
    photonflow::optics::io::tiff::write_stack(Path::new(&first), &plane).unwrap();
    let o = run(&[
        &first,
        "--autofocus",
        "0.3mm:1.5mm",
        "--focus-png",
        &png,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = last_json(&o);
    let z = r["distances_m"][0].as_f64().unwrap();
    assert!((z - 0.7e-3).abs() < 3e-6, "{r}");
    assert_eq!(r["autofocus"]["distance_m"].as_f64().unwrap(), z);
    assert_eq!(r["autofocus"]["steps"], 41);
    assert_eq!(r["autofocus"]["scan"].as_array().unwrap().len(), 41);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    // two heights given 0.15 mm off: the first found, the second moved with it
    let o = run(&[
        &holo,
        "--distance",
        "0.55mm,1.05mm",
        "--autofocus",
        "0.4mm:1mm",
        "--autofocus-steps",
        "31",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("autofocus: "), "{}", stdout(&o));
    let o = run(&[
        &holo,
        "--distance",
        "0.55mm,1.05mm",
        "--autofocus",
        "0.4mm:1mm",
        "--json",
    ]);
    let r = last_json(&o);
    let d: Vec<f64> = r["distances_m"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (d[0] - 0.7e-3).abs() < 3e-6 && (d[1] - d[0] - 0.5e-3).abs() < 1e-12,
        "{r}"
    );
    // bad input names its flag
    let fails = |extra: &[&str], want: &str| {
        let o = run(extra);
        assert!(!o.status.success(), "{extra:?} should fail");
        let e = stderr(&o);
        assert!(e.contains(want), "{extra:?}: {e}");
    };
    fails(&[&first, "--autofocus", "1mm"], "--autofocus");
    fails(&[&first, "--autofocus=-1mm:1mm"], "--autofocus");
    fails(&[&first, "--autofocus", "1mm:2parsecs"], "--autofocus");
    fails(
        &[&first, "--autofocus", "1mm:2mm", "--autofocus-steps", "2"],
        "--autofocus-steps",
    );
    fails(
        &["--simulate", &phase, "--autofocus", "1mm:2mm"],
        "--distance",
    );
}

/// `photonflow reconstruct`: holograms simulated from a phase image (blobs, a TIFF in
/// radians) and written out are read back and reconstructed, L-BFGS far better than
/// projections, three heights better than one; the written phase is the reported one; a
/// wrong distance is fitted; bad input names its flag.
#[test]
fn reconstruct_recovers_a_phase_object_from_holograms() {
    let dir = Dir::new();
    let (phase, holo, out) = (dir.s("phase.tif"), dir.s("holo.tif"), dir.s("out.tif"));
    let n = 64;
    let blobs: Vec<f32> = (0..n * n)
        .map(|i| {
            let (y, x) = ((i / n) as f32 - 30.0, (i % n) as f32 - 34.0);
            let (y2, x2) = (y + 12.0, x - 10.0);
            1.5 * (-(x * x + y * y) / 60.0).exp() - 0.8 * (-(x2 * x2 + y2 * y2) / 20.0).exp()
        })
        .collect();
    let s = photonflow::optics::io::tiff::Stack::new(blobs, [1, n, n]).unwrap();
    photonflow::optics::io::tiff::write_stack(Path::new(&phase), &s).unwrap();
    let base = ["reconstruct", "--wavelength", "532nm", "--pitch", "2um"];
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(["--out", &out]);
        a.extend(extra);
        photonflow(&a)
    };
    let report = |extra: &[&str]| {
        let o = run(&[extra, &["--json"]].concat());
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        last_json(&o)
    };
    // Simulated with shot noise, saved, and reconstructed.
    let three = ["--distance", "3mm,3.5mm,4mm"];
    let sim = report(
        &[
            &three[..],
            &[
                "--simulate",
                &phase,
                "--photons",
                "10000",
                "--save-holograms",
                &holo,
            ],
        ]
        .concat(),
    );
    assert!(sim["psnr_db"].as_f64().unwrap() > 30.0, "{sim}");
    let written = photonflow::optics::io::tiff::read_stack(Path::new(&out)).unwrap();
    assert_eq!(written.shape, [1, n, n]);
    // The saved holograms, read back with the truth and a flat field of ones: the same
    // numbers; divided by their mean instead (their gains then fitted), a little worse.
    let flat = dir.s("flat.tif");
    let ones = photonflow::optics::io::tiff::Stack::new(vec![1.0; n * n], [1, n, n]).unwrap();
    photonflow::optics::io::tiff::write_stack(Path::new(&flat), &ones).unwrap();
    let read = report(&[&three[..], &[&holo, "--truth", &phase, "--flat", &flat]].concat());
    let (p_read, p_sim) = (
        read["psnr_db"].as_f64().unwrap(),
        sim["psnr_db"].as_f64().unwrap(),
    );
    assert!((p_read - p_sim).abs() < 0.5, "{read} {sim}");
    let mean = report(&[&three[..], &[&holo, "--truth", &phase]].concat());
    assert!(mean["psnr_db"].as_f64().unwrap() > 25.0, "{mean}");
    let gs = report(
        &[
            &three[..],
            &[&holo, "--truth", &phase, "--flat", &flat, "--solver", "gs"],
        ]
        .concat(),
    );
    assert!(
        gs["psnr_db"].as_f64().unwrap() < read["psnr_db"].as_f64().unwrap() - 5.0,
        "{gs} {read}"
    );
    let one = report(&[
        "--distance",
        "3mm",
        "--simulate",
        &phase,
        "--photons",
        "10000",
    ]);
    assert!(
        one["psnr_db"].as_f64().unwrap() < sim["psnr_db"].as_f64().unwrap(),
        "{one} {sim}"
    );
    // A distance 0.2 mm off, fitted.
    let fit = report(
        &[
            &[
                "--distance",
                "3.2mm,3.7mm,4.2mm",
                &holo,
                "--truth",
                &phase,
                "--flat",
                &flat,
            ],
            &["--fit-distance", "0.5mm"][..],
        ]
        .concat(),
    );
    let z = fit["fitted_distances_m"][0].as_f64().unwrap();
    assert!((z - 3e-3).abs() < 20e-6, "{fit}");
    // PhysenNet's untrained network, a small one for a short run.
    let net = report(
        &[
            &three[..],
            &[
                &holo, "--truth", &phase, "--flat", &flat, "--solver", "network",
            ],
            &[
                "--channels",
                "8,16",
                "--iterations",
                "120",
                "--learning-rate",
                "1e-2",
            ],
        ]
        .concat(),
    );
    assert_eq!(net["solver"], "network");
    let (start, end) = (
        net["misfit_start"].as_f64().unwrap(),
        net["misfit"].as_f64().unwrap(),
    );
    assert!(end < 0.1 * start, "{net}");
    assert!(net["psnr_db"].as_f64().unwrap() > 20.0, "{net}");
    // Bad input names its flag.
    let fails = |extra: &[&str], want: &str| {
        let o = run(extra);
        assert!(!o.status.success(), "{extra:?} should fail");
        let e = stderr(&o);
        assert!(e.contains(want), "{extra:?}: {e}");
    };
    let network = [&three[..], &[&holo, "--solver", "network"]].concat();
    fails(
        &[&network[..], &["--object", "absorbing"]].concat(),
        "--object",
    );
    fails(
        &[&network[..], &["--fit-distance", "0.1mm"]].concat(),
        "--fit-distance",
    );
    fails(&[&network[..], &["--tv", "1e-3"]].concat(), "--tv");
    fails(
        &[&network[..], &["--channels", "8,0"]].concat(),
        "--channels",
    );
    fails(
        &[&network[..], &["--learning-rate", "0"]].concat(),
        "--learning-rate",
    );
    fails(
        &["--distance", "3mm", &holo],
        "3 hologram plane(s) for 1 --distance",
    );
    fails(&["--distance", "0mm", "--simulate", &phase], "--distance");
    fails(&["--distance", "3mm"], "give the holograms");
    fails(
        &[&three[..], &[&holo, "--object", "opaque"]].concat(),
        "--object",
    );
    fails(
        &[&three[..], &[&holo, "--solver", "newton"]].concat(),
        "lbfgs, gs or network",
    );
    fails(&[&three[..], &[&holo, "--tv=-1"]].concat(), "--tv");
    fails(
        &[&three[..], &[&holo, "--iterations", "0"]].concat(),
        "--iterations",
    );
    fails(
        &[&three[..], &[&holo, "--fit-distance", "5mm"]].concat(),
        "--fit-distance",
    );
    fails(
        &[
            &three[..],
            &[&holo, "--solver", "gs", "--fit-distance", "0.1mm"],
        ]
        .concat(),
        "--fit-distance",
    );
    fails(
        &[&three[..], &[&holo, "--margin", "1000"]].concat(),
        "--margin",
    );
    fails(&[&three[..], &[&holo, "--flat", &phase]].concat(), "--flat");
    fails(&[&three[..], &["--simulate", &holo]].concat(), "--simulate");
}

#[test]
fn propagates_polarised_light_through_jones_elements() {
    use photonflow::optics::polarisation::{
        JonesMask, JonesMatrix, JonesVector, Polarised, VectorField,
    };
    let d = Dir::new();
    let n = 64;
    let input = d.gaussian_input("g.npy", n, 1);
    let grid = Grid::square(n, 8e-6).unwrap();
    let wave = Wave::vacuum(632.8e-9).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["propagate", "-i", &input];
        args.extend(BASE);
        args.extend(extra);
        args.push("--json");
        let o = photonflow(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        last_json(&o)
    };
    let read = |name: &str| npy::read_npy(&d.path(name)).unwrap();
    // +45° light through a quarter-wave plate along x: left circular, (1, i)/√2
    let (out, stokes) = (d.s("qwp.npy"), d.s("qwp_stokes.npy"));
    let png = d.s("qwp.png");
    let j = run(&[
        "-o",
        &out,
        "--polarisation",
        "d",
        "--jones",
        "qwp:0deg",
        "--stokes",
        &stokes,
        "--png",
        &png,
    ]);
    assert_eq!(j["output_holds"], "ex,ey");
    let s = j["stokes_total"].as_array().unwrap();
    let s3 = s[3].as_f64().unwrap() / s[0].as_f64().unwrap();
    assert!((s3 + 1.0).abs() < 1e-6, "S3/S0 {s3}");
    let field = read("qwp.npy");
    assert_eq!(field.shape, vec![2, n, n]);
    let NpyData::C64(got) = field.data else {
        panic!("{}", field.dtype_name())
    };
    // the library's answer
    let NpyData::C64(g) = read("g.npy").data else {
        panic!()
    };
    let scalar = Field::from_vec(g, grid, wave.wavelength).unwrap();
    let d45 = Polarised::Uniform(JonesVector::linear(std::f64::consts::FRAC_PI_4));
    let mut v = VectorField::polarise(&scalar, &d45).unwrap();
    JonesMask::uniform(grid, JonesMatrix::quarter_wave(0.0))
        .unwrap()
        .apply(&mut v)
        .unwrap();
    let plan = Planner::new()
        .plan_onto(&grid, wave, &Propagation::new(5e-3), None)
        .unwrap();
    let want = v.propagate(&plan).unwrap();
    for (a, b) in got.iter().zip(want.field().data()) {
        assert!((a - b).norm() < 1e-6, "{a} vs {b}");
    }
    let st = read("qwp_stokes.npy");
    assert_eq!(st.shape, vec![4, n, n]);
    assert!(
        matches!(st.data, NpyData::F32(_)),
        "float32 Stokes for complex64 input"
    );
    assert!(
        png_summary(&d.path("qwp.png")).0 > 1000,
        "a 2 × 2 grid of Stokes images"
    );

    // unpolarised light through a polariser: half the power, fully polarised, Stokes out
    let out = d.s("unpol.npy");
    let j = run(&[
        "-o",
        &out,
        "--polarisation",
        "unpolarised",
        "--jones",
        "polariser:0deg",
    ]);
    assert_eq!(
        (j["modes"].as_u64(), j["output_holds"].as_str()),
        (Some(2), Some("stokes"))
    );
    let ratio = j["power_out"].as_f64().unwrap() / j["power_in"].as_f64().unwrap();
    assert!((ratio - 0.5).abs() < 1e-3, "{ratio}");
    assert!((j["degree_of_polarisation"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    let st = read("unpol.npy");
    assert_eq!(st.shape, vec![4, n, n]);
    let NpyData::F32(s) = st.data else { panic!() };
    let m = n * n;
    for k in 0..m {
        assert!(
            (s[k] - s[m + k]).abs() <= 1e-5 * s[k].abs().max(1e-6),
            "S1 = S0 behind x"
        );
    }

    // E_x and E_y in, an analyser at 60° behind: Malus's cos² 60° = 1/4
    let NpyData::C64(g) = read("g.npy").data else {
        panic!()
    };
    let mut both = g.clone();
    both.extend(vec![Complex::new(0.0f32, 0.0); m]);
    npy::write_npy(&d.path("v.npy"), &[2, n, n], NpyDataRef::C64(&both)).unwrap();
    let (vin, out) = (d.s("v.npy"), d.s("malus.npy"));
    let mut args = vec!["propagate", "-i", &vin, "-o", &out, "--vector"];
    args.extend(BASE);
    args.extend(["--analyser", "polariser:60deg", "--json"]);
    let o = photonflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let ratio = j["power_out"].as_f64().unwrap() / j["power_in"].as_f64().unwrap();
    assert!((ratio - 0.25).abs() < 1e-3, "Malus: {ratio}");
    assert!((j["aolp_deg"].as_f64().unwrap() - 60.0).abs() < 1e-6);

    // a Jones mask from a file: a half-wave plate at 22.5° turns x light to +45°; with E_z,
    // for a batch of two
    let hwp = JonesMatrix::half_wave(std::f64::consts::PI / 8.0);
    let mask: Vec<Complex<f64>> = (0..m).flat_map(|_| hwp.0.into_iter().flatten()).collect();
    npy::write_npy(&d.path("hwp.npy"), &[n, n, 2, 2], NpyDataRef::C128(&mask)).unwrap();
    let batch = d.gaussian_input("b.npy", n, 2);
    let (hwp_path, out) = (d.s("hwp.npy"), d.s("ez.npy"));
    let mut args = vec!["propagate", "-i", &batch, "-o", &out];
    args.extend(BASE);
    args.extend([
        "--polarisation",
        "x",
        "--jones",
        &hwp_path,
        "--ez",
        "--json",
    ]);
    let o = photonflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert!((j["aolp_deg"].as_f64().unwrap() - 45.0).abs() < 1e-6, "{j}");
    assert!(j["ez_power"].as_f64().unwrap() > 0.0);
    let f = read("ez.npy");
    assert_eq!(f.shape, vec![2, 3, n, n]);

    // bad polarisation flags name themselves and leave nothing behind
    let o = d.s("bad.npy");
    let with = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["propagate", "-i", &input, "-o", &o]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(BASE.iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            with(&["--jones", "hwp:0deg"]),
            vec!["need polarised light", "--polarisation"],
        ),
        (
            with(&["--polarisation", "sideways"]),
            vec!["--polarisation sideways", "radial"],
        ),
        (
            with(&["--polarisation", "x", "--jones", "hwp:45"]),
            vec!["--jones hwp:45", "no unit"],
        ),
        (
            with(&["--polarisation", "x", "--analyser", "mirror:0deg"]),
            vec!["--analyser", "unknown Jones element"],
        ),
        (with(&["--vector"]), vec!["--vector", "[2, Ny, Nx]"]),
        (
            with(&["--polarisation", "unpolarised", "--ez"]),
            vec!["--ez", "partially polarised"],
        ),
        (
            with(&["--polarisation", "stokes:1,2,0,0"]),
            vec!["--polarisation", "not physical"],
        ),
        (
            with(&["--polarisation", "x", "--source-na", "0.1"]),
            vec!["--source-na"],
        ),
        (
            with(&["--polarisation", "x", "--jones", &input]),
            vec!["--jones", "[64, 64, 2, 2]"],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&d, &args, &needles);
    }
}
