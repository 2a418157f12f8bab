//! `photonflow train`: train a diffractive network from a config or preset.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use photonflow_d2nn::config::{Config, PRESETS};
use photonflow_d2nn::data::{self, FolderOptions};
use photonflow_d2nn::eval::Evaluation;
use photonflow_d2nn::network::Optics;
use photonflow_d2nn::train::{EpochMetrics, Observer, TrainOptions, train};
use photonflow_optics::OpticalSystem;

use super::figures;

/// Arguments of `photonflow train`.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// Network and training config (TOML; see the README for every key).
    #[arg(long, value_name = "CFG.toml", conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// A preset config instead: lin2018, lin2018-differential, lin2018-hybrid or demo.
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Dataset folder: DIR/<dataset>/ with the four IDX files, that folder itself, or a
    /// folder of images with one sub-folder per class (default: $PHOTONFLOW_DATA_DIR, the user
    /// cache, /usr/share/datasets).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Dataset name (mnist, fashion-mnist, emnist-<split>, or a folder name); default: the
    /// config's `dataset`, else mnist.
    #[arg(long, value_name = "NAME")]
    dataset: Option<String>,
    /// Run folder: config, checkpoints, metrics.jsonl, the trained model and plots.
    #[arg(
        long,
        short,
        value_name = "RUN",
        required_unless_present = "print_config"
    )]
    out: Option<PathBuf>,
    /// Epochs (overrides the config).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    epochs: Option<usize>,
    /// Batch size (overrides the config).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    batch: Option<usize>,
    /// Learning rate (overrides the config).
    #[arg(long, value_name = "LR", allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Random seed (overrides the config).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    seed: Option<u64>,
    /// Translate every training image by up to ±N of its pixels, at random (overrides
    /// `[training] augment_shift`; may change on --resume, to fine-tune with it).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    augment_shift: Option<u32>,
    /// Train on the first N training samples only.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    train_limit: Option<usize>,
    /// Test on the first N test samples only.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    test_limit: Option<usize>,
    /// Continue the run in --out from its last checkpoint, with the run's config (--epochs may
    /// extend it and --augment-shift change it; both are written back to the run's config).
    #[arg(long)]
    resume: bool,
    /// Do not write PNG plots.
    #[arg(long)]
    no_plots: bool,
    /// Print the final config as TOML and exit without training.
    #[arg(long)]
    print_config: bool,
    /// Print one JSON object per epoch on stdout (no progress bars).
    #[arg(long)]
    json: bool,
}

/// Runs `photonflow train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = base_config(&args)?;
    if let Some(e) = args.epochs {
        config.training.epochs = e;
    }
    if let Some(b) = args.batch {
        config.training.batch = b;
    }
    if let Some(lr) = args.lr {
        config.training.lr = lr;
    }
    if let Some(s) = args.seed {
        config.training.seed = s;
    }
    if let Some(s) = args.augment_shift {
        config.training.augment_shift = s;
    }
    if let Some(d) = &args.dataset {
        config.dataset = Some(d.clone());
    }
    config
        .validate()
        .context("the command-line overrides make the config invalid")?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    let out = args
        .out
        .as_deref()
        .context("give the run folder: --out RUN")?;
    let name = config.dataset.clone().unwrap_or_else(|| "mnist".into());
    let splits = data::load(&name, args.data.as_deref(), &FolderOptions::default())?;
    if !args.json {
        eprintln!(
            "{}: {} layers of {}×{} neurons, dataset {name} ({} train / {} test samples, {} \
             classes) → {}",
            config.name,
            config.optics.layers,
            config.optics.neurons.xy().0,
            config.optics.neurons.xy().1,
            args.train_limit
                .map_or(splits.train.len(), |n| n.min(splits.train.len())),
            args.test_limit
                .map_or(splits.test.len(), |n| n.min(splits.test.len())),
            splits.train.class_names.len(),
            out.display()
        );
    }
    let options = TrainOptions {
        resume: args.resume,
        train_limit: args.train_limit,
        test_limit: args.test_limit,
    };
    let plots = (!args.no_plots).then(|| out.join("plots"));
    let mut observer = Progress::new(args.json, plots, &config, &splits.test);
    let trained = train(out, &config, &splits, &options, &mut observer)?;
    observer.finish();
    if let (Some(last), false) = (trained.history.last(), args.json) {
        eprintln!(
            "done: test accuracy {:.2} % after {} epochs; model in {}",
            100.0 * last.test_accuracy,
            last.epoch,
            out.join("model").display()
        );
    }
    Ok(())
}

/// The config named by --config or --preset, or the run's own config when resuming.
fn base_config(args: &Args) -> anyhow::Result<Config> {
    match (&args.config, &args.preset) {
        (Some(path), _) => Ok(Config::from_file(path)?),
        (None, Some(name)) => Ok(Config::preset(name)?),
        (None, None) if args.resume && args.out.is_some() => {
            let path = args
                .out
                .as_deref()
                .unwrap_or(Path::new("."))
                .join("config.toml");
            Config::from_file(&path)
                .with_context(|| format!("--resume: reading the run's config {}", path.display()))
        }
        (None, None) => bail!(
            "give a network: --config CFG.toml or --preset NAME (presets: {})",
            PRESETS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Progress bars, per-epoch lines and plots (also used by `photonflow demo`).
pub(super) struct Progress<'a> {
    bar: Option<ProgressBar>,
    epochs: usize,
    json: bool,
    plots: Option<PathBuf>,
    test: &'a data::Dataset,
    history: Vec<EpochMetrics>,
}

impl<'a> Progress<'a> {
    /// Bars and lines on stderr (or, with `json`, one JSON object per epoch on stdout), and
    /// the run's figures in `plots` after every epoch.
    pub(super) fn new(
        json: bool,
        plots: Option<PathBuf>,
        config: &Config,
        test: &'a data::Dataset,
    ) -> Self {
        Self {
            bar: None,
            epochs: config.training.epochs,
            json,
            plots,
            test,
            history: Vec::new(),
        }
    }

    fn bar(&mut self, len: usize, template: &str) -> &ProgressBar {
        let bar = self.bar.get_or_insert_with(|| {
            if self.json {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(0)
            }
        });
        if bar.length() != Some(len as u64) {
            bar.set_length(len as u64);
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        }
        bar
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn write_plots(
        &self,
        dir: &Path,
        system: &OpticalSystem,
        evaluation: &Evaluation,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        figures::layers(&dir.join("layers.png"), system)?;
        figures::confusion(&dir.join("confusion.png"), evaluation)?;
        figures::curves(&dir.join("training.png"), &self.history)?;
        figures::outputs(&dir.join("outputs.png"), system, self.test)?;
        figures::head(&dir.join("head.png"), system)?;
        Ok(())
    }
}

impl Observer for Progress<'_> {
    fn start(&mut self, optics: &Optics) {
        if let (false, Some(light)) = (self.json, super::light::describe(optics)) {
            eprintln!("{light}");
        }
    }

    fn batch(&mut self, epoch: usize, done: usize, total: usize, loss: f64) {
        let epochs = self.epochs;
        let bar = self.bar(
            total,
            "{prefix} {bar:30} {pos}/{len} samples {per_sec} eta {eta} {msg}",
        );
        bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        bar.set_position(done as u64);
        bar.set_message(format!("loss {loss:.4}"));
    }

    fn eval_batch(&mut self, done: usize, total: usize) {
        let bar = self.bar(total, "{prefix} {bar:30} {pos}/{len} test samples {msg}");
        bar.set_prefix("evaluating");
        bar.set_message("");
        bar.set_position(done as u64);
    }

    fn epoch(
        &mut self,
        history: &[EpochMetrics],
        system: &OpticalSystem,
        evaluation: &Evaluation,
    ) -> photonflow_d2nn::error::Result<()> {
        self.history = history.to_vec();
        let m = history.last().expect("the epoch just finished");
        if self.json {
            println!("{}", serde_json::to_string(m).expect("metrics serialise"));
        } else {
            let shift = match m.augment_shift {
                0 => String::new(),
                s => format!(" (images shifted ±{s} px)"),
            };
            let line = format!(
                "epoch {}/{}: loss {:.4}, train {:.2} %{shift}, test {:.2} %, lr {:.2e}, {:.0} \
                 samples/s, {:.1} s",
                m.epoch,
                self.epochs,
                m.loss,
                100.0 * m.train_accuracy,
                100.0 * m.test_accuracy,
                m.lr,
                m.samples_per_s,
                m.seconds
            );
            match &self.bar {
                Some(bar) if !bar.is_hidden() => bar.println(line),
                _ => eprintln!("{line}"),
            }
        }
        if let Some(dir) = &self.plots
            && let Err(e) = self.write_plots(dir, system, evaluation)
        {
            // A figure that cannot be drawn must not stop a long run; say so and go on.
            eprintln!("warning: plots not written: {e:#}");
        }
        Ok(())
    }
}
