//! Training a diffractive network: Adam over mini-batches, a checkpoint every epoch, exact
//! resumption, and the exported [`OpticalSystem`] after every epoch.
//!
//! A run folder holds:
//!
//! | path | what |
//! |---|---|
//! | `config.toml` | the run's config as started, with the latest resume's `epochs` and `augment_shift` (resuming checks the rest) |
//! | `model/` | the trained [`OpticalSystem`] after the latest epoch (`system.json` + masks) |
//! | `metrics.jsonl` | one JSON object per finished epoch ([`EpochMetrics`]) |
//! | `checkpoint.json` | the latest complete checkpoint: epoch, folder, metrics so far |
//! | `checkpoints/epoch-NNNN/` | the parameters (`model.bpk`) and Adam state (`optim.bpk`) |
//!
//! Every file is written to a temporary name and renamed; `checkpoint.json` is renamed last,
//! after the checkpoint folder it names is complete, so a run killed at any moment resumes from
//! its last finished epoch and loses at most the current one. Everything random (initial masks,
//! shuffling, image shifts, misalignment, noise) is drawn from streams keyed by
//! `(seed, epoch, batch)`, so a resumed run continues exactly as if it had not stopped (same
//! thread count).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use photonflow_optics::OpticalSystem;
use photonflow_optics::io::write_atomic;
use photonflow_optics::memory;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Loss};
use crate::data::{Dataset, Splits};
use crate::error::{D2nnError, Result};
use crate::eval::{Evaluation, ImageRef, Pixels, argmax, evaluate};
use crate::network::{Band, Dense, Layers, Optics, Parameterisation, shift_mask, system_template};
use crate::rng::Rng;

/// Stream keys of [`Rng::stream`].
const SHUFFLE_STREAM: u64 = 2;
const MISALIGN_STREAM: u64 = 3;
const NOISE_STREAM: u64 = 4;
const AXIAL_STREAM: u64 = 5;
const GUMBEL_STREAM: u64 = 6;
const SHIFT_STREAM: u64 = 7;
const SOURCE_STREAM: u64 = 8;

/// Limits and switches of one `train` call.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in the folder from its last checkpoint.
    pub resume: bool,
    /// Use only the first N training samples.
    pub train_limit: Option<usize>,
    /// Use only the first N test samples.
    pub test_limit: Option<usize>,
}

/// What one epoch did; one line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub loss: f64,
    /// Fraction of training samples classified correctly during the epoch (masks as they were
    /// at each batch, with the training perturbations).
    pub train_accuracy: f64,
    /// Accuracy of the exported system on the test set.
    pub test_accuracy: f64,
    /// Mean cross-entropy of the exported system on the test set.
    pub test_loss: f64,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// `[training] augment_shift` of the epoch (it may change when a run is resumed).
    #[serde(default)]
    pub augment_shift: u32,
    /// Training samples per second (forward + backward + step).
    pub samples_per_s: f64,
    /// Wall-clock seconds of the epoch, evaluation included.
    pub seconds: f64,
}

/// The pointer to the latest complete checkpoint (`checkpoint.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    /// Epochs finished.
    epoch: usize,
    /// Folder of the parameters, relative to the run folder.
    dir: String,
    /// Metrics of the finished epochs.
    history: Vec<EpochMetrics>,
}

/// Callbacks for progress display and plots.
pub trait Observer {
    /// Once the network's optics are planned, before the first batch.
    fn start(&mut self, _optics: &Optics) {}
    /// After every training batch: samples `done` of `total` in epoch `epoch` (from 1), and the
    /// batch's loss.
    fn batch(&mut self, _epoch: usize, _done: usize, _total: usize, _loss: f64) {}
    /// After every evaluation batch of the test set.
    fn eval_batch(&mut self, _done: usize, _total: usize) {}
    /// After every epoch, once its checkpoint and model are written, with the metrics of every
    /// epoch of the run so far (the one just finished last).
    fn epoch(
        &mut self,
        _history: &[EpochMetrics],
        _system: &OpticalSystem,
        _evaluation: &Evaluation,
    ) -> Result<()> {
        Ok(())
    }
}

/// An observer that does nothing.
impl Observer for () {}

/// The outcome of [`train`].
#[derive(Debug, Clone)]
pub struct Trained {
    /// The exported system of the last epoch.
    pub system: OpticalSystem,
    /// Metrics of every epoch of the run (resumed ones included).
    pub history: Vec<EpochMetrics>,
    /// Test-set evaluation of the last epoch (`None` if no epoch ran in this call, e.g.
    /// resuming a finished run).
    pub evaluation: Option<Evaluation>,
}

/// Trains `config` on `data` in run folder `run`; see the module docs for the files.
///
/// Errors: a folder that already holds a run without `resume`; `resume` without a checkpoint,
/// or with a config that differs from the run's (other than `[training] epochs`); datasets
/// whose classes do not match the detector; a non-finite loss; I/O.
pub fn train(
    run: &Path,
    config: &Config,
    data: &Splits,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    let train = limit(&data.train, options.train_limit);
    let test = limit(&data.test, options.test_limit);
    if train.is_empty() || test.is_empty() {
        return Err(D2nnError::Config {
            origin: String::new(),
            problem: format!(
                "{} training and {} test samples: need at least one of each (check \
                 --train-limit / --test-limit)",
                train.len(),
                test.len()
            ),
        });
    }
    // Image shifts of the augmentation are drawn from −shift…shift.
    let shift = i64::from(config.training.augment_shift);
    let side = train.rows.min(train.cols);
    if shift > 0 && 2 * shift >= side as i64 {
        return Err(D2nnError::Config {
            origin: String::new(),
            problem: format!(
                "[training] augment_shift = {shift} (--augment-shift): the training images are \
                 {}×{} pixels, so shifts up to half of that would push the object out of \
                 frame; use at most {} (1–2 for MNIST)",
                train.rows,
                train.cols,
                (side - 1) / 2
            ),
        });
    }
    // one field per sample before anything is planned, then the source's real count
    check_batch_fits(config, train.len(), 1)?;
    let device = Device::flex().autodiff();
    let classes = data.train.class_names.clone();
    let template = system_template(config, &classes)?;
    let mut optics = Optics::new(&template, &device)?;
    let fields = optics.fields_per_image();
    check_batch_fits(
        config,
        train.len(),
        config.source.samples.map_or(fields, |k| k.min(fields)),
    )?;
    observer.start(&optics);
    fs::create_dir_all(run).map_err(|e| io(run, format!("cannot create the run folder ({e})")))?;
    let pointer = run.join("checkpoint.json");
    let config_path = run.join("config.toml");
    let param = Parameterisation::from_config(config)?;
    let (nx, ny) = config.optics.neurons.xy();
    let mut layers = param.init(
        config.optics.layers,
        (nx, ny),
        config.training.init_phase,
        config.training.seed,
        &device,
    );
    // a hybrid network trains its electronic layer with the masks, from the template's start
    layers.head = Dense::of(&template.detector, &device);
    let mut optim = AdamConfig::new().init();
    let mut history = Vec::new();
    if options.resume {
        let checkpoint = read_checkpoint(&pointer)?;
        check_same_run(&config_path, config)?;
        let dir = run.join(&checkpoint.dir);
        let bytes = |name: &str| -> Result<Bytes> {
            let p = dir.join(name);
            fs::read(&p)
                .map(Bytes::from_bytes_vec)
                .map_err(|e| run_error(&p, format!("cannot read the checkpoint ({e})")))
        };
        let record = ModuleRecord::from_bytes(bytes("model.bpk")?)
            .map_err(|e| run_error(&dir, format!("model.bpk is corrupt: {e}")))?;
        layers = layers
            .try_load_record(record)
            .map_err(|e| run_error(&dir, format!("model.bpk does not fit this network: {e}")))?;
        optim = optim
            .from_bytes(bytes("optim.bpk")?)
            .map_err(|e| run_error(&dir, format!("optim.bpk is corrupt: {e}")))?;
        history = checkpoint.history;
        // A later bare `--resume` reads the run's config: it continues this plan.
        write_text(&config_path, &config.to_toml())?;
    } else {
        if pointer.exists() {
            return Err(run_error(
                run,
                "already holds a training run; pass --resume to continue it, or choose another \
                 output folder",
            ));
        }
        write_text(&config_path, &config.to_toml())?;
    }
    write_metrics(run, &history)?;

    let batch = config.training.batch;
    let c = classes.len();
    let mut last = None;
    let mut system = param.export(&layers, &template);
    for epoch in history.len()..config.training.epochs {
        let clock = Instant::now();
        let lr = config.learning_rate(epoch);
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::stream(config.training.seed, &[SHUFFLE_STREAM, epoch as u64]).shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (b, idx) in order.chunks(batch).enumerate() {
            let key = [epoch as u64, b as u64];
            let mut images: Vec<ImageRef> = idx.iter().map(|&i| train.image_ref(i)).collect();
            let shifted: Vec<Vec<f32>>;
            if shift > 0 {
                let mut rng = Rng::stream(config.training.seed, &[SHIFT_STREAM, key[0], key[1]]);
                let mut draw = || rng.below(2 * shift as usize + 1) as i64 - shift;
                shifted = images
                    .iter()
                    .map(|im| im.translated(draw(), draw()))
                    .collect();
                for (im, pixels) in images.iter_mut().zip(&shifted) {
                    im.pixels = Pixels::F32(pixels);
                }
            }
            let mut gumbel = Rng::stream(config.training.seed, &[GUMBEL_STREAM, key[0], key[1]]);
            let mut masks = param.masks(&layers, Some(&mut gumbel));
            if let Some(sigma) = config.fabrication.lateral_misalignment {
                let mut rng = Rng::stream(config.training.seed, &[MISALIGN_STREAM, key[0], key[1]]);
                let px = sigma.m() / config.optics.pitch.m();
                masks = masks
                    .into_iter()
                    .map(|m| {
                        let dx = (rng.normal() * px).round() as i64;
                        let dy = (rng.normal() * px).round() as i64;
                        shift_mask(m, dx, dy)
                    })
                    .collect();
            }
            let mut bands = match config.source.samples {
                Some(k) => {
                    let mut rng =
                        Rng::stream(config.training.seed, &[SOURCE_STREAM, key[0], key[1]]);
                    Band::draw(&optics.bands, &mut rng, k)
                }
                None => optics.bands.clone(),
            };
            if let Some(sigma) = config.fabrication.axial_misalignment
                && sigma.m() > 0.0
            {
                let mut rng = Rng::stream(config.training.seed, &[AXIAL_STREAM, key[0], key[1]]);
                let step = sigma.m() / 4.0;
                let dz: Vec<f64> = (0..masks.len())
                    .map(|_| (rng.normal() * 4.0).round() * step)
                    .collect();
                bands = optics.displaced(&bands, &dz)?;
            }
            let energies = optics.energies_with(&images, &masks, &bands);
            let n = idx.len();
            // detector noise: on the class scores, or on the electronic layer's inputs
            let noisy = |t: Tensor<2>| {
                let s = config.fabrication.detector_noise;
                if s == 0.0 {
                    return t;
                }
                let [n, width] = t.dims();
                let mut rng = Rng::stream(config.training.seed, &[NOISE_STREAM, key[0], key[1]]);
                let v: Vec<f32> = (0..n * width).map(|_| (rng.normal() * s) as f32).collect();
                t + Tensor::from_data(TensorData::new(v, [n, width]), &device)
            };
            let scores = match &layers.head {
                Some(head) => head.forward(noisy(Dense::input(energies))),
                None => noisy(optics.scores_with(energies, None)),
            };
            let mut onehot = vec![0f32; n * c];
            for (k, &i) in idx.iter().enumerate() {
                onehot[k * c + usize::from(train.labels[i])] = 1.0;
            }
            let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, c]), &device);
            let loss = match config.readout.loss {
                Loss::CrossEntropy => {
                    (optics.log_confidences(scores.clone()) * onehot)
                        .sum()
                        .neg()
                        / n as f64
                }
                Loss::Mse => {
                    (optics.confidences(scores.clone()) - onehot).square().sum() / n as f64
                }
            };
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(D2nnError::Diverged {
                    epoch: epoch + 1,
                    batch: b + 1,
                    loss: value as f32,
                });
            }
            let mut grads = loss.backward();
            // the electronic layer at its own rate, the masks at the schedule's
            let head = layers
                .head
                .as_ref()
                .map(|h| GradientsParams::from_module(&mut grads, h));
            let grads = GradientsParams::from_grads(grads, &layers);
            layers = optim.step(lr, layers, grads);
            if let Some(head) = head {
                layers = optim.step(lr * config.readout.head_lr(), layers, head);
            }
            let s = scores
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 scores");
            correct += idx
                .iter()
                .enumerate()
                .filter(|&(k, &i)| argmax(&s[k * c..(k + 1) * c]) == usize::from(train.labels[i]))
                .count();
            loss_sum += value * n as f64;
            observer.batch(
                epoch + 1,
                (b * batch + n).min(train.len()),
                train.len(),
                value,
            );
        }
        let train_seconds = clock.elapsed().as_secs_f64();
        system = param.export(&layers, &template);
        let masks = optics.masks_of(&system);
        optics.load_head(&system);
        let evaluation = evaluate(&optics, &masks, &test, batch.max(32), |d, t| {
            observer.eval_batch(d, t)
        })?;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            loss: loss_sum / train.len() as f64,
            train_accuracy: correct as f64 / train.len() as f64,
            test_accuracy: evaluation.accuracy,
            test_loss: evaluation.loss,
            lr,
            augment_shift: config.training.augment_shift,
            samples_per_s: train.len() as f64 / train_seconds.max(1e-9),
            seconds: clock.elapsed().as_secs_f64(),
        };
        history.push(metrics);
        system.save(&run.join("model"))?;
        save_checkpoint(run, &layers, &optim, &history)?;
        write_metrics(run, &history)?;
        observer.epoch(&history, &system, &evaluation)?;
        last = Some(evaluation);
    }
    Ok(Trained {
        system,
        history,
        evaluation: last,
    })
}

/// The first `n` samples of `data` (all of them without a limit).
fn limit(data: &Dataset, n: Option<usize>) -> Dataset {
    match n {
        Some(n) if n < data.len() => data.clone().take(n),
        _ => data.clone(),
    }
}

/// Writes the checkpoint folder of the latest epoch, then points `checkpoint.json` at it, then
/// removes older checkpoint folders.
fn save_checkpoint(
    run: &Path,
    layers: &Layers,
    optim: &burn::optim::ModuleOptimizer,
    history: &[EpochMetrics],
) -> Result<()> {
    let epoch = history.len();
    let name = format!("epoch-{epoch:04}");
    let folder = run.join("checkpoints");
    let dir = folder.join(&name);
    fs::create_dir_all(&dir).map_err(|e| io(&dir, format!("cannot create it ({e})")))?;
    let model = layers
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| io(&dir, format!("cannot serialise the parameters: {e}")))?;
    write_bytes(&dir.join("model.bpk"), &model)?;
    let state = optim
        .into_bytes()
        .map_err(|e| io(&dir, format!("cannot serialise the optimiser state: {e}")))?;
    write_bytes(&dir.join("optim.bpk"), &state)?;
    let pointer = Checkpoint {
        epoch,
        dir: format!("checkpoints/{name}"),
        history: history.to_vec(),
    };
    let json = serde_json::to_string_pretty(&pointer).expect("checkpoints serialise");
    write_text(&run.join("checkpoint.json"), &json)?;
    if let Ok(entries) = fs::read_dir(&folder) {
        for entry in entries.flatten() {
            if entry.file_name() != name.as_str() {
                fs::remove_dir_all(entry.path()).ok();
            }
        }
    }
    Ok(())
}

fn read_checkpoint(pointer: &Path) -> Result<Checkpoint> {
    let text = fs::read_to_string(pointer).map_err(|_| {
        run_error(
            pointer.parent().unwrap_or(pointer),
            "holds no checkpoint to resume (checkpoint.json is missing); start a new run without \
             --resume",
        )
    })?;
    serde_json::from_str(&text).map_err(|e| run_error(pointer, format!("is corrupt: {e}")))
}

/// Refuses a batch whose fields, kept for the backward pass, would not fit in the memory the
/// machine has left, before anything is written: `layers + 2` complex `f32` fields per sample
/// (measured at the peak of 3 layers of 800² neurons: 5 per sample, 25.7 MB, beside ≈ 0.3 GB
/// for everything else), times the `fields` each sample propagates (the lines and directions
/// of a broadband or partially coherent source). What it refuses cannot run; a batch just
/// below the limit may still run out of memory. A batch holds at most the `samples` of the
/// training set.
fn check_batch_fits(config: &Config, samples: usize, fields: usize) -> Result<()> {
    let (nx, ny) = config.optics.neurons.xy();
    let batch = config.training.batch.min(samples);
    let layers = config.optics.layers;
    Ok(memory::check_fits(
        memory::bytes(&[batch, nx, ny, 8, layers + 2, fields]),
        || {
            format!(
                "training with batches of {batch} on {layers} layers of {nx}×{ny} neurons, \
                 {fields} field(s) per sample"
            )
        },
        "use a smaller [training] batch (--batch), fewer neurons, or fewer [source] lines or \
         a smaller na",
    )?)
}

/// Refuses to resume with a config that differs from the run's in anything but the number of
/// epochs and the augmentation shift.
fn check_same_run(path: &Path, config: &Config) -> Result<()> {
    let mut stored = Config::from_file(path)?;
    stored.training.epochs = config.training.epochs;
    stored.training.augment_shift = config.training.augment_shift;
    // Lengths are written with every digit, so the text reads back as the same config.
    if stored != *config {
        return Err(run_error(
            path,
            "the run was started with another config; resume with the same config (only \
             [training] epochs / --epochs and augment_shift may change), or start a new run in \
             another folder",
        ));
    }
    Ok(())
}

/// Rewrites `metrics.jsonl` from the metrics so far.
fn write_metrics(run: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in history {
        text.push_str(&serde_json::to_string(m).expect("metrics serialise"));
        text.push('\n');
    }
    write_text(&run.join("metrics.jsonl"), &text)
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(bytes)).map_err(|e| io(path, format!("cannot write ({e})")))
}

fn io(path: &Path, problem: impl Into<String>) -> D2nnError {
    D2nnError::Io {
        path: PathBuf::from(path),
        problem: problem.into(),
    }
}

fn run_error(path: &Path, problem: impl Into<String>) -> D2nnError {
    D2nnError::Run {
        path: PathBuf::from(path),
        problem: problem.into(),
    }
}
