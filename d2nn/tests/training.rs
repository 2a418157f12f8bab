//! Training end to end on real MNIST (from `$PHOTONFLOW_DATA_DIR`): a small network learns,
//! the exported system evaluates to the accuracy training reported, and a resumed run continues
//! exactly.

use std::path::PathBuf;

use photonflow_d2nn::config::Config;
use photonflow_d2nn::data::{self, FolderOptions, Splits};
use photonflow_d2nn::eval::{Perturbation, evaluate, evaluate_perturbed};
use photonflow_d2nn::model::Model;
use photonflow_d2nn::train::{TrainOptions, train};

const SMALL: &str = r#"
name = "small"
dataset = "mnist"

[optics]
wavelength = "0.75mm"
pitch = "0.4mm"
neurons = 48
layers = 2
spacing = "2cm"
input_distance = "2cm"
detector_distance = "2cm"

[input]
size = 28

[detector]
size = "1.6mm"
gap = "0.8mm"

[training]
epochs = 2
batch = 16
lr = 0.05
"#;

fn mnist() -> Option<Splits> {
    let Some(dir) = std::env::var_os("PHOTONFLOW_DATA_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("PHOTONFLOW_DATA_DIR is not set: skipping the MNIST training test");
        return None;
    };
    Some(
        data::load(
            "mnist",
            Some(&PathBuf::from(dir).join("mnist")),
            &FolderOptions::default(),
        )
        .unwrap(),
    )
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pf-train-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

fn opts(resume: bool) -> TrainOptions {
    TrainOptions {
        resume,
        train_limit: Some(2000),
        test_limit: Some(500),
    }
}

#[test]
fn small_network_learns_mnist_and_resumes_exactly() {
    let Some(splits) = mnist() else { return };
    let config = Config::from_toml(SMALL, "small").unwrap();
    let run = tempdir("straight");
    let clock = std::time::Instant::now();
    let trained = train(&run, &config, &splits, &opts(false), &mut ()).unwrap();
    for m in &trained.history {
        println!("{m:?}");
    }
    println!("{:.1} s", clock.elapsed().as_secs_f64());
    let last = trained.history.last().unwrap();
    assert!(last.test_accuracy > 0.7, "{last:?}");
    assert!(trained.history[1].loss < trained.history[0].loss);

    // The exported model, read back from disk, scores what training reported.
    let model = Model::load(&run).unwrap();
    let test = splits.test.clone().take(500);
    let e = evaluate(&model.optics, &model.masks, &test, 64, |_, _| {}).unwrap();
    assert!(
        (e.accuracy - last.test_accuracy).abs() < 1e-12,
        "{} vs {}",
        e.accuracy,
        last.test_accuracy
    );

    // Test-time imperfections: fine quantisation changes nothing much, binary phase and
    // 3-pixel misalignments cost accuracy, and the draws are reproducible.
    let perturbed = |p: Perturbation| {
        evaluate_perturbed(&model.optics, &model.masks, &test, 64, &p, |_, _| {})
            .unwrap()
            .accuracy
    };
    let fine = perturbed(Perturbation {
        levels: Some(256),
        ..Perturbation::default()
    });
    let binary = perturbed(Perturbation {
        levels: Some(2),
        ..Perturbation::default()
    });
    let shaken = Perturbation {
        lateral_px: 3,
        seed: 1,
        ..Perturbation::default()
    };
    let moved = Perturbation {
        axial_m: 6e-3,
        seed: 1,
        ..Perturbation::default()
    };
    let (lateral, axial) = (perturbed(shaken.clone()), perturbed(moved));
    println!(
        "ideal {:.3}, 256 levels {fine:.3}, 2 levels {binary:.3}, ±3 px {lateral:.3}, ±6 mm \
         {axial:.3}",
        e.accuracy
    );
    assert!(
        (fine - e.accuracy).abs() <= 0.01,
        "{fine} vs {}",
        e.accuracy
    );
    assert!(binary < e.accuracy - 0.05, "{binary} vs {}", e.accuracy);
    assert!(lateral < e.accuracy - 0.03, "{lateral} vs {}", e.accuracy);
    assert!(axial < e.accuracy, "{axial} vs {}", e.accuracy);
    assert_eq!(perturbed(shaken.clone()), lateral, "same seed, same draws");

    // One epoch, then resume for the second: the same masks, bit for bit.
    let split = tempdir("resumed");
    let mut one = config.clone();
    one.training.epochs = 1;
    train(&split, &one, &splits, &opts(false), &mut ()).unwrap();
    let again = train(&split, &one, &splits, &opts(false), &mut ())
        .unwrap_err()
        .to_string();
    assert!(again.contains("--resume"), "{again}");
    let resumed = train(&split, &config, &splits, &opts(true), &mut ()).unwrap();
    assert_eq!(resumed.history.len(), 2);
    assert_eq!(resumed.history[1].loss, trained.history[1].loss);
    for (a, b) in resumed.system.layers.iter().zip(&trained.system.layers) {
        assert_eq!(a.phase, b.phase);
    }
    let lines = std::fs::read_to_string(split.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    for d in [run, split] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// Two classes of 12×12 images: a bright 4×4 square in the left or the right half.
fn bars(n: usize) -> data::Dataset {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for k in 0..n {
        let class = k % 2;
        let (x0, y0) = (1 + 6 * class, (k / 2) % 8);
        images.extend((0..144).map(|i| {
            let (y, x) = (i / 12, i % 12);
            if (x0..x0 + 4).contains(&x) && (y0..y0 + 4).contains(&y) {
                255u8
            } else {
                0
            }
        }));
        labels.push(class as u8);
    }
    data::Dataset {
        name: "bars".into(),
        rows: 12,
        cols: 12,
        images,
        labels,
        class_names: vec!["left".into(), "right".into()],
    }
}

/// A one- or two-layer network small enough to train in a fraction of a second, without a
/// `[fabrication]` section.
fn tiny(layers: usize) -> String {
    format!(
        r#"
        [optics]
        wavelength = "0.75mm"
        pitch = "0.4mm"
        neurons = 32
        layers = {layers}
        spacing = "1cm"
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
        "#
    )
}

/// Trains `config` on the bars dataset (96 training, 32 test images) in `run`.
fn train_bars(run: &std::path::Path, config: &Config) -> photonflow_d2nn::train::Trained {
    let splits = Splits {
        train: bars(96),
        test: bars(32),
    };
    train(run, config, &splits, &TrainOptions::default(), &mut ()).unwrap()
}

#[test]
fn fabrication_aware_training_exports_quantised_masks_and_still_learns() {
    for estimator in ["straight-through", "gumbel-softmax"] {
        let text = format!(
            "{}\n[fabrication]\nlevels = 4\nestimator = \"{estimator}\"\n\
             lateral_misalignment = \"0.4mm\"\naxial_misalignment = \"0.5mm\"\n\
             detector_noise = 0.02\n",
            tiny(2)
        );
        let config = Config::from_toml(&text, "fabrication").unwrap();
        let run = tempdir(estimator);
        let trained = train_bars(&run, &config);
        let last = trained.history.last().unwrap();
        assert!(
            last.test_accuracy >= 0.9,
            "{estimator}: {:?}",
            trained.history
        );
        let step = std::f32::consts::TAU / 4.0;
        for layer in &trained.system.layers {
            assert_eq!(layer.levels, Some(4));
            for &p in &layer.phase {
                let level = p / step;
                let on_level = (level - level.round()).abs() < 1e-4 && level.round() <= 4.0;
                assert!(
                    on_level,
                    "{estimator}: phase {p} is not one of the 4 levels"
                );
            }
        }
        std::fs::remove_dir_all(run).ok();
    }
}

#[test]
fn shift_augmentation_trains_reproducibly_and_can_be_switched_on_when_resuming() {
    let plain = Config::from_toml(&tiny(1), "plain").unwrap();
    let mut shifted = plain.clone();
    shifted.training.augment_shift = 2;
    let [a, b, c] = ["shift-a", "shift-b", "shift-plain"].map(tempdir);
    let first = train_bars(&a, &shifted);
    let again = train_bars(&b, &shifted);
    let unshifted = train_bars(&c, &plain);
    // The same seed draws the same shifts; the shifts change what is learned.
    assert_eq!(first.history[0].loss, again.history[0].loss);
    assert_ne!(first.history[0].loss, unshifted.history[0].loss);
    assert!(first.history.iter().all(|m| m.augment_shift == 2));
    assert!(
        first.history.last().unwrap().test_accuracy >= 0.9,
        "{:?}",
        first.history
    );

    // Fine-tune the plain run with shifts: allowed, and recorded per epoch; any other change
    // of the config is still refused.
    let mut tune = shifted.clone();
    tune.training.epochs = 4;
    let splits = Splits {
        train: bars(96),
        test: bars(32),
    };
    let resume = |config: &Config| {
        let options = TrainOptions {
            resume: true,
            ..TrainOptions::default()
        };
        train(&c, config, &splits, &options, &mut ())
    };
    let tuned = resume(&tune).unwrap();
    let shifts: Vec<u32> = tuned.history.iter().map(|m| m.augment_shift).collect();
    assert_eq!(shifts, [0, 0, 0, 2]);
    // The run's config now says so: a later resume that reads it continues the same plan.
    let stored = Config::from_file(&c.join("config.toml")).unwrap();
    assert_eq!(
        (stored.training.epochs, stored.training.augment_shift),
        (4, 2)
    );
    tune.training.epochs = 5;
    tune.training.lr *= 0.5;
    let refused = resume(&tune).unwrap_err().to_string();
    assert!(refused.contains("augment_shift may change"), "{refused}");
    // Shifts of half the 12×12 images or more are refused before anything is written.
    let mut wild = plain.clone();
    wild.training.augment_shift = 6;
    let d = tempdir("shift-wild");
    let refused = train(&d, &wild, &splits, &TrainOptions::default(), &mut ())
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("12×12") && refused.contains("at most 5"),
        "{refused}"
    );
    assert!(!d.exists());
    for d in [a, b, c] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn training_through_a_measured_slm_lookup_table() {
    let dir = tempdir("lut");
    std::fs::create_dir_all(&dir).unwrap();
    // An 8-level SLM whose phase response is not linear and whose amplitude dips mid-range.
    let mut csv = String::from("gray,phase,amplitude\n");
    for g in 0..8 {
        let x = f64::from(g) / 7.0;
        csv += &format!(
            "{},{},{}\n",
            g * 32,
            6.0 * x * x,
            1.0 - 0.2 * (std::f64::consts::PI * x).sin()
        );
    }
    std::fs::write(dir.join("slm.csv"), &csv).unwrap();
    let text = format!("{}\n[fabrication]\nlut = \"slm.csv\"\n", tiny(1));
    std::fs::write(dir.join("net.toml"), text).unwrap();
    let config = Config::from_file(&dir.join("net.toml")).unwrap();
    assert!(config.fabrication.lut.as_ref().unwrap().is_absolute());
    let lut = config.lut().unwrap().unwrap();
    let run = dir.join("run");
    let trained = train_bars(&run, &config);
    assert!(
        trained.history.last().unwrap().test_accuracy >= 0.9,
        "{:?}",
        trained.history
    );
    let layer = &trained.system.layers[0];
    assert_eq!(layer.levels, Some(8));
    let amplitude = layer.amplitude.as_ref().unwrap();
    for (p, a) in layer.phase.iter().zip(amplitude) {
        // Every pixel sits on one row of the table (phases are wrapped into [0, 2π) on export).
        let row = lut.phase.iter().position(|&q| {
            let d = (f64::from(*p) - q).rem_euclid(std::f64::consts::TAU);
            d.min(std::f64::consts::TAU - d) < 1e-4
        });
        let row = row.unwrap_or_else(|| panic!("phase {p} is not in the table"));
        assert!((f64::from(*a) - lut.amplitude.as_ref().unwrap()[row]).abs() < 1e-5);
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A network trained under an LED (a 20 % wide spectrum on 3 lines, a cone of NA 0.002; 4
/// (line, direction) pairs drawn per batch) learns, records its light in system.json, and a
/// model read back from the run evaluates under that light (every line and direction) to the
/// numbers training reported; bad `[source]` sections are refused with the fix.
#[test]
fn training_under_broadband_partially_coherent_light() {
    let text = format!(
        "{}\n[source]\nspectrum = \"gaussian:0.75mm:150um\"\nlines = 3\nna = 0.002\n\
         samples = 4\n",
        tiny(2)
    );
    let config = Config::from_toml(&text, "led").unwrap();
    let run = tempdir("led");
    let trained = train_bars(&run, &config);
    let last = trained.history.last().unwrap();
    assert!(last.test_accuracy >= 0.9, "{:?}", trained.history);
    let model = Model::load(&run).unwrap();
    let source = model.system.source.clone().expect("the light is recorded");
    assert_eq!((source.lines, source.na), (Some(3), 0.002));
    assert_eq!(model.optics.bands.len(), 3);
    let fields = model.optics.fields_per_image();
    assert!(fields > 3, "{fields} fields: the cone's directions");
    let test = bars(32);
    let e = evaluate(&model.optics, &model.masks, &test, 32, |_, _| {}).unwrap();
    assert_eq!(e.accuracy, last.test_accuracy);
    assert!(
        (e.loss - last.test_loss).abs() <= 1e-6 * last.test_loss,
        "{} vs {}",
        e.loss,
        last.test_loss
    );
    // under a laser the same masks give other numbers
    let laser = model.with_source(None).unwrap();
    let l = evaluate(&laser.optics, &laser.masks, &test, 32, |_, _| {}).unwrap();
    assert!(
        (l.loss - e.loss).abs() > 1e-2 * e.loss,
        "{} vs {}",
        l.loss,
        e.loss
    );
    std::fs::remove_dir_all(run).ok();

    for (section, needs) in [
        ("[source]\nlines = 3\n", "give spectrum"),
        ("[source]\nna = 1.5\n", "0 … 1"),
        ("[source]\nspectrum = \"gaussian:0.75mm\"\n", "CENTRE:FWHM"),
        ("[source]\nspectrum = \"flat:0.8mm:0.7mm\"\n", "[source]"),
        ("[source]\nwidth = 3\n", "unknown field"),
        ("[source]\nsamples = 4\n", "give spectrum or na"),
    ] {
        let e = Config::from_toml(&format!("{}\n{section}", tiny(1)), "bad")
            .unwrap_err()
            .to_string();
        assert!(e.contains(needs), "{section}: {e}");
    }
}

/// A hybrid optical–electronic network (a 4×4 detector array read by a fully connected layer)
/// learns with its masks; its trained layer is exported and read back, scores as the f64
/// readout of measured frames does, and a resumed run continues it bit for bit.
#[test]
fn hybrid_network_trains_its_electronic_layer_with_the_masks() {
    let text = tiny(2).replace(
        "[detector]\n        size = \"2mm\"\n        gap = \"2mm\"",
        "[detector]\n        array = 4\n\n        [readout]\n        head = \"linear\"",
    );
    let config = Config::from_toml(&text, "hybrid").unwrap();
    assert_eq!(config.readout.temperature(), 1.0);
    let run = tempdir("hybrid");
    let trained = train_bars(&run, &config);
    let last = trained.history.last().unwrap();
    assert!(last.test_accuracy >= 0.9, "{:?}", trained.history);
    let detector = &trained.system.detector;
    assert_eq!(detector.regions.len(), 16);
    assert_eq!(detector.regions[5].label, "r1c1");
    // 31 × 0.4 mm: the widest block centred on the axis, in 4 pixels without gaps
    assert!((detector.regions[0].width_m - 3.1e-3).abs() < 1e-12);
    assert!((detector.regions[1].x_m - detector.regions[0].x_m - 3.1e-3).abs() < 1e-12);
    let head = detector
        .head
        .clone()
        .expect("the electronic layer is exported");
    assert_eq!((head.weights.len(), head.bias.len()), (32, 2));
    let template = photonflow_d2nn::network::system_template(
        &config,
        &["left".to_string(), "right".to_string()],
    )
    .unwrap();
    let start = template.detector.head.unwrap();
    let moved = head
        .weights
        .iter()
        .zip(&start.weights)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(moved > 1e-2, "the layer trained: {moved}");
    assert!(head.bias.iter().any(|b| b.abs() > 1e-4), "{:?}", head.bias);

    // Read back from disk: the same accuracy and loss, and the tensors' scores are the f64
    // readout's (what a rig applies to camera frames).
    let model = Model::load(&run).unwrap();
    assert_eq!(model.system.detector.head.as_ref(), Some(&head));
    let test = bars(32);
    let e = evaluate(&model.optics, &model.masks, &test, 32, |_, _| {}).unwrap();
    assert_eq!(e.accuracy, last.test_accuracy);
    assert!(
        (e.loss - last.test_loss).abs() <= 1e-6 * last.test_loss.max(1e-3),
        "{} vs {}",
        e.loss,
        last.test_loss
    );
    let images: Vec<_> = (0..4).map(|i| test.image_ref(i)).collect();
    let out = photonflow_d2nn::eval::run_batch(&model.optics, &model.masks, &images);
    for (energies, scores) in out.energies.iter().zip(&out.scores) {
        let wide: Vec<f64> = energies.iter().map(|&e| f64::from(e)).collect();
        let readout = model.system.detector.scores(&wide);
        // scale-free: a brighter source or a camera's gain changes nothing
        let brighter: Vec<f64> = wide.iter().map(|e| 37.0 * e).collect();
        for ((a, b), c) in readout
            .iter()
            .zip(scores)
            .zip(model.system.detector.scores(&brighter))
        {
            assert!(
                (a - f64::from(*b)).abs() < 1e-4 * (1.0 + a.abs()),
                "{a} vs {b}"
            );
            assert!((a - c).abs() < 1e-12 * (1.0 + a.abs()), "{a} vs {c}");
        }
    }

    // One epoch, then resume: the same layer and masks as the uninterrupted run.
    let split = tempdir("hybrid-resumed");
    let mut one = config.clone();
    one.training.epochs = 1;
    train_bars(&split, &one);
    let splits = Splits {
        train: bars(96),
        test: bars(32),
    };
    let options = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let resumed = train(&split, &config, &splits, &options, &mut ()).unwrap();
    assert_eq!(resumed.system.detector.head, trained.system.detector.head);
    assert_eq!(
        resumed.system.layers[1].phase,
        trained.system.layers[1].phase
    );

    // Detector noise lands on the layer's inputs; it still learns.
    let noisy = Config::from_toml(
        &format!("{text}\n[fabrication]\ndetector_noise = 0.05\n"),
        "noisy",
    )
    .unwrap();
    let n = tempdir("hybrid-noisy");
    let t = train_bars(&n, &noisy);
    assert!(
        t.history.last().unwrap().test_accuracy >= 0.9,
        "{:?}",
        t.history
    );
    assert_ne!(t.history[0].loss, trained.history[0].loss);
    for d in [run, split, n] {
        std::fs::remove_dir_all(d).ok();
    }

    for (section, needs) in [
        ("[detector]\narray = 4\n", "head = \"linear\""),
        (
            "[detector]\narray = 4\ndifferential = true\n[readout]\nhead = \"linear\"\n",
            "leave out regions and differential",
        ),
        (
            "[detector]\ndifferential = true\n[readout]\nhead = \"linear\"\n",
            "cannot follow differential detection",
        ),
        (
            "[detector]\narray = 0\n[readout]\nhead = \"linear\"\n",
            "at least one",
        ),
        ("[readout]\nhead = \"mlp\"\n", "`linear`"),
    ] {
        let base = tiny(1).replace(
            "[detector]\n        size = \"2mm\"\n        gap = \"2mm\"",
            "",
        );
        let e = Config::from_toml(&format!("{base}\n{section}"), "bad")
            .unwrap_err()
            .to_string();
        assert!(e.contains(needs), "{section}: {e}");
    }
}
