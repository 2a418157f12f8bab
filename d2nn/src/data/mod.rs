//! Training data: MNIST-style IDX files, folders of images, and single images for inference.
//!
//! * [`idx`] reads the four IDX files of MNIST, Fashion-MNIST, EMNIST (or any dataset in the
//!   same layout), gzip-compressed or raw, and checks every header, count and size.
//! * [`mod@resolve`] finds a dataset on disk, offline: `--data DIR`, `$PHOTONFLOW_DATA_DIR`, the
//!   user cache directory, Debian's `/usr/share/datasets/<name>`; nothing is downloaded — when
//!   the data are missing, the error says where to get them (URLs with sha256) and where to put
//!   them.
//! * [`folder`] turns a directory of PNG/JPEG images with one sub-folder per class into a
//!   dataset, so users can train on their own images.
//! * [`image`] decodes one PNG, JPEG or `.npy` image to grayscale in `[0, 1]` (inference input)
//!   and holds the one resampling routine used everywhere.
//!
//! Conventions: images are row-major (`pixel(r, c) = data[r·cols + c]`, row 0 at the top),
//! one byte per pixel, `0` = black (no light) and `255` = white — MNIST's convention (white
//! digit on a black background). Every error is a [`DataError`] whose message names the file
//! concerned and says how to fix the problem; no input file can make this module panic.

pub mod fetch;
pub mod folder;
pub mod idx;
pub mod image;
pub mod resolve;
pub mod synthetic;

use std::path::{Path, PathBuf};

pub use folder::{FolderOptions, is_test_sample, load_folder};
pub use idx::{Checksum, FileCheck, IdxFiles, IdxImages, read_images, read_labels, verify};
pub use image::{GrayImage, load_image};
pub use resolve::{DataSource, SearchPaths, locate, resolve};

/// Everything that can go wrong loading data. Every variant names the file or directory
/// concerned; every message ends with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused to open or read a file or directory.
    #[error("cannot {action} {}: {source}; check that it exists and is readable", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed: `read`, `open`, `list`.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `.gz` file whose compressed stream is corrupt or cut short.
    #[error(
        "{} is not valid gzip data ({source}): the file is corrupt or was cut short — {hint}",
        .path.display()
    )]
    Gzip {
        /// The file.
        path: PathBuf,
        /// What the decompressor reported.
        #[source]
        source: std::io::Error,
        /// What to do (download again, with the expected sha256 where known).
        hint: String,
    },
    /// An IDX file whose header is not what it must be (magic number, element type, number of
    /// dimensions, zero sizes).
    #[error("{} is not a valid IDX {kind} file: {problem} — {hint}", .path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// `images` or `labels`.
        kind: &'static str,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// An IDX file shorter than its header says.
    #[error(
        "{} is truncated: {what} ({expected} bytes) but the file holds {found} — {hint}",
        .path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What the header declares, e.g. `header says 60000 images of 28×28`.
        what: String,
        /// Bytes of data the header calls for (after the header).
        expected: u64,
        /// Bytes of data present (after the header).
        found: u64,
        /// What to do.
        hint: String,
    },
    /// An IDX file longer than its header says.
    #[error(
        "{} has {extra} unexpected byte(s) after its data: {what} ({expected} bytes) — the header \
         does not match the data; {hint}",
        .path.display()
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// What the header declares.
        what: String,
        /// Bytes of data the header calls for.
        expected: u64,
        /// Bytes found after them.
        extra: u64,
        /// What to do.
        hint: String,
    },
    /// The image and label files of one split hold different numbers of samples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels; the two files must come from the \
         same split of the same dataset — replace the wrong one",
        .images_path.display(), .labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Its image count.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Its label count.
        labels: usize,
    },
    /// A label is not a valid class index.
    #[error(
        "{} has label {label} at index {index}, but {dataset} has only {classes} classes \
         (0..={max}); the file belongs to another dataset or is corrupt — {hint}",
        .path.display(), max = .classes.saturating_sub(1)
    )]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Sample index.
        index: usize,
        /// The label found.
        label: u8,
        /// Dataset name.
        dataset: String,
        /// Number of classes.
        classes: usize,
        /// What to do.
        hint: String,
    },
    /// Train and test images (or two images of a folder dataset) differ in size.
    #[error(
        "{} holds {}×{} images but {} holds {}×{} (rows×cols); train and test images must have \
         the same size — the files come from different datasets, replace the wrong one",
        .train.display(), .train_size.0, .train_size.1, .test.display(), .test_size.0,
        .test_size.1
    )]
    SizeMismatch {
        /// A training file.
        train: PathBuf,
        /// Its image size (rows, cols).
        train_size: (usize, usize),
        /// A test file.
        test: PathBuf,
        /// Its image size (rows, cols).
        test_size: (usize, usize),
    },
    /// A directory holds some, but not all, of a dataset's four IDX files.
    #[error(
        "{} holds part of the {name} dataset but not {missing} (looked for {looked_for}); put all \
         four IDX files (train/test images and labels, .gz or uncompressed) in that folder",
        .dir.display()
    )]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// Dataset name.
        name: String,
        /// Which file is missing (role).
        missing: &'static str,
        /// The file names tried.
        looked_for: String,
    },
    /// The dataset was found nowhere.
    #[error("{}", not_found_message(.name, .searched, .help))]
    NotFound {
        /// Dataset name.
        name: String,
        /// Every directory searched, in order.
        searched: Vec<PathBuf>,
        /// How to get the data.
        help: String,
    },
    /// An EMNIST `*-mapping.txt` file that cannot be parsed.
    #[error(
        "{} line {line}: {problem}; each line must be `<label> <ASCII code>` as in the EMNIST \
         distribution — fix or delete the file (class names then default to numbers)",
        .path.display()
    )]
    Mapping {
        /// The mapping file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// An image file that cannot be decoded or used.
    #[error("{}: {problem}", .path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A `.npy` file the NumPy reader rejected (its message names the file).
    #[error(transparent)]
    Npy(#[from] photonflow_optics::io::npy::NpyError),
    /// A folder dataset whose layout is unusable (empty class folder, fewer than two classes…).
    #[error("{}: {problem}", .path.display())]
    Folder {
        /// The directory concerned.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A download failed or delivered a file that is not the published one.
    #[error("{}: {problem}", .path.display())]
    Download {
        /// The file that was being downloaded.
        path: PathBuf,
        /// What went wrong and what to do.
        problem: String,
    },
    /// An invalid option value (not tied to a file).
    #[error("invalid {option}: {problem}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong and the valid range.
        problem: String,
    },
}

fn not_found_message(name: &str, searched: &[PathBuf], help: &str) -> String {
    let mut msg = format!("dataset {name:?} not found; searched:");
    for dir in searched {
        msg.push_str("\n  ");
        msg.push_str(&dir.display().to_string());
    }
    msg.push('\n');
    msg.push_str(help);
    msg
}

/// Shorthand for results of this module.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// A labelled set of same-sized grayscale images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Dataset name (`mnist`, `fashion-mnist`, `emnist-letters`, or a folder's name).
    pub name: String,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// All images, one after the other, each `rows·cols` bytes, row-major; `0` = black,
    /// `255` = white. Length `len()·rows·cols`.
    pub images: Vec<u8>,
    /// One class index per image, each `< class_names.len()`.
    pub labels: Vec<u8>,
    /// Human-readable name of each class, indexed by label.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of sample `i` (`rows·cols` bytes, row-major). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.images[i * n..(i + 1) * n]
    }

    /// Class index of sample `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// Number of classes (`class_names.len()`), whether or not each occurs in this split.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Keeps the first `n` samples (all of them if `n >= len()`), as `--train-limit` and
    /// `--test-limit` do. The order is the file order, so take from a shuffled copy if the
    /// file is sorted by class (folder datasets are: class by class).
    pub fn take(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.rows * self.cols);
        self
    }

    /// Number of samples of each class, indexed by label (length `classes()`).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }
}

/// The training and test splits of a dataset (same image size, same classes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits {
    /// Training samples.
    pub train: Dataset,
    /// Test samples.
    pub test: Dataset,
}

/// Finds dataset `name` (see [`resolve()`]) and loads it: IDX files, or — when `data` points at
/// a folder of class sub-folders — a folder dataset built with `folder_opts`.
///
/// This is what `--dataset NAME [--data DIR]` does. It reads the environment
/// (`$PHOTONFLOW_DATA_DIR`, `$XDG_CACHE_HOME`, `$HOME`); use [`SearchPaths::load`] to pass the
/// search places explicitly.
pub fn load(name: &str, data: Option<&Path>, folder_opts: &FolderOptions) -> Result<Splits> {
    SearchPaths::from_env(data).load(name, folder_opts)
}
