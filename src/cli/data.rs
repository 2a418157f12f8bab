//! `photonflow data`: where a dataset is found, check it, or fetch it into the user cache.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use photonflow_d2nn::data::fetch::{fetch, known_files, system_downloader};
use photonflow_d2nn::data::{
    self, Checksum, DataSource, Dataset, FolderOptions, SearchPaths, locate, verify,
};
use photonflow_d2nn::model::Model;
use serde_json::json;

/// Arguments of `photonflow data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Show where a dataset is found and check its files against the published sha256.
    Verify {
        /// Dataset name (mnist, fashion-mnist, emnist-<split>, or a folder).
        name: String,
        /// Look only in this folder (as `train --data`).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Download mnist or fashion-mnist (with curl or wget), check every file against its
    /// published sha256, and keep it where `train` looks (the user cache by default).
    Fetch {
        /// mnist or fashion-mnist.
        name: String,
        /// Folder to put the four files in (default: ~/.cache/photonflow/datasets/NAME).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
}

/// Runs `photonflow data`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Sub::Verify { name, data, json } => {
            let DataSource::Idx(files) = locate(&name, data.as_deref())? else {
                bail!("{name} is a folder of images: there is nothing to check it against");
            };
            let checks = verify(&files)?;
            if json {
                let list: Vec<_> = checks
                    .iter()
                    .map(|c| {
                        json!({
                            "path": c.path.display().to_string(),
                            "status": match c.checksum {
                                Checksum::Ok => "ok",
                                Checksum::Mismatch { .. } => "mismatch",
                                Checksum::Unknown => "unknown",
                            },
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    json!({ "dataset": name, "dir": files.dir.display().to_string(), "files": list })
                );
            } else {
                println!("{name}: {}", files.dir.display());
                for c in &checks {
                    println!("  {c}");
                }
            }
            if checks
                .iter()
                .any(|c| matches!(c.checksum, Checksum::Mismatch { .. }))
            {
                bail!("some files of {name} differ from the published ones (see above)");
            }
            Ok(())
        }
        Sub::Fetch { name, to } => {
            if known_files(&name).is_empty() {
                bail!("photonflow can fetch mnist and fashion-mnist, not '{name}'");
            }
            let dir = match to {
                Some(d) => d,
                None => SearchPaths::from_env(None)
                    .cache_dir
                    .context("neither $XDG_CACHE_HOME nor $HOME is set: pass --to DIR")?
                    .join(&name),
            };
            eprintln!("fetching {name} into {} …", dir.display());
            let dir = fetch(&name, &dir, &system_downloader)?;
            println!(
                "{name}: 4 files checked against their published sha256 in {}",
                dir.display()
            );
            Ok(())
        }
    }
}

/// The test set a command reads: `--data` and `--dataset`.
#[derive(Debug, clap::Args)]
pub struct TestData {
    /// Dataset folder (see `photonflow train --help`).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Dataset name; default: the one the run was trained on, else mnist.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
}

impl TestData {
    /// The dataset's name and its test split, for `model`.
    pub fn load(&self, model: &Model) -> anyhow::Result<(String, Dataset)> {
        test_set(model, self.data.as_deref(), self.dataset.as_deref())
    }
}

/// The name and the test split of `dataset` (default: the one `model` was trained on, else
/// mnist), found in `data` or the standard places.
pub fn test_set(
    model: &Model,
    data: Option<&Path>,
    dataset: Option<&str>,
) -> anyhow::Result<(String, Dataset)> {
    let name = dataset
        .map(str::to_string)
        .or_else(|| model.dataset.clone())
        .unwrap_or_else(|| "mnist".into());
    let splits = data::load(&name, data, &FolderOptions::default())?;
    Ok((name, splits.test))
}
